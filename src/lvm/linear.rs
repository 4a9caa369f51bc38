//! Linear LVs without lvm2: create (optionally only on named PVs), extend,
//! reduce (guarded: it destroys data) and remove (refused while open).
//!
//! What allocates extents commits first, then the kernel follows: a new LV
//! is activated and its first 4 KiB zeroed (as lvm2's wipe does, so an old
//! signature under it is not taken for the new LV's); an active LV that
//! grows gets its new table loaded, then suspended and resumed. If the
//! kernel step fails, the metadata of before the call is committed again.
//! What frees extents goes the other way (a reduce: the kernel first, then
//! the commit; a removal: deactivated first), so that no crash leaves an
//! extent free in the metadata while a device still maps it.

use std::path::PathBuf;

use crate::dm::{Control, Suspend};
use crate::meta::alloc;
use crate::meta::model::{Area, Metadata, SegmentKind, VolumeGroup};
use crate::meta::ops::{self, Change, Env};

use super::action::{refused, Action, Run, VolumeError};
use super::activate::Planner;
use super::config::LvmConfig;
use super::engine::{self, Dev};
use super::names;

pub type Result<T> = std::result::Result<T, VolumeError>;

/// How big: bytes (rounded up to extents), or a share of the free space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Size {
    Bytes(u64),
    PercentFree(f64),
    /// This much more than now (extend only).
    More(u64),
}

fn extents_for(vg: &VolumeGroup, size: Size, on_pvs: Option<&[usize]>) -> Result<u64> {
    Ok(match size {
        Size::Bytes(b) | Size::More(b) => b.div_ceil(vg.extent_bytes()),
        Size::PercentFree(p) => {
            let free: u64 = alloc::free_runs(vg)
                .map_err(|e| refused(&vg.name, e.to_string()))?
                .iter()
                .filter(|r| on_pvs.is_none_or(|pvs| pvs.contains(&r.pv)))
                .map(|r| r.count)
                .sum();
            (free as f64 * p / 100.0).floor() as u64
        }
    })
}

/// The extent count a resize asks for, from `now`: SIZE is absolute,
/// +SIZE and N%FREE come on top.
pub(crate) fn target_extents(
    vg: &VolumeGroup,
    size: Size,
    now: u64,
    on_pvs: Option<&[usize]>,
) -> Result<u64> {
    Ok(match size {
        Size::Bytes(b) => b.div_ceil(vg.extent_bytes()),
        Size::PercentFree(_) | Size::More(_) => now + extents_for(vg, size, on_pvs)?,
    })
}

/// PV paths to indices in the VG.
pub(crate) fn pv_indices(change: &Change, pvs: &[PathBuf]) -> Result<Option<Vec<usize>>> {
    if pvs.is_empty() {
        return Ok(None);
    }
    let devices = change.pv_devices();
    let vg = &change.metadata.vg.name;
    pvs.iter()
        .map(|p| {
            let canon = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            devices
                .iter()
                .position(|d| {
                    d.as_ref().is_some_and(|d| {
                        *d == *p || std::fs::canonicalize(d).is_ok_and(|c| c == canon)
                    })
                })
                .ok_or_else(|| refused(vg, format!("has no PV on {}", p.display())))
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Commits `to` (the metadata of before the call) again after a kernel
/// step failed, with the next seqno.
pub(crate) fn restore(
    env: &Env,
    change: &mut Change,
    to: Metadata,
    failed: VolumeError,
) -> VolumeError {
    let seqno = change.committed().vg.seqno + 1;
    change.metadata = to;
    change.metadata.vg.seqno = seqno;
    match change.commit_and_continue(env) {
        Ok(()) => failed,
        Err(e) => refused(
            &change.metadata.vg.name,
            format!("{failed}; restoring the metadata failed too: {e}"),
        ),
    }
}

/// A new linear LV.
#[derive(Debug, Clone)]
pub struct NewLinear {
    pub vg: String,
    pub name: String,
    pub size: Size,
    /// Allocate only on these PVs (all of the VG's when empty).
    pub pvs: Vec<PathBuf>,
    pub activate: bool,
}

/// `lvcreate -L SIZE -n NAME VG [PV...]`.
pub fn create(env: &Env, dev: &Dev, req: &NewLinear, run: Run) -> Result<Vec<Action>> {
    let (vg_name, name, size, pvs, activate) =
        (&req.vg, &req.name, req.size, &req.pvs, req.activate);
    let mut change = ops::begin_change(env, vg_name, pvs)?;
    let on = pv_indices(&change, pvs)?;
    let extents = extents_for(&change.metadata.vg, size, on.as_deref())?;
    if extents == 0 {
        return Err(refused(
            vg_name,
            "cannot hold an LV of 0 extents: give a size".into(),
        ));
    }
    let before = change.metadata.clone();
    ops::add_linear_lv(&mut change.metadata.vg, name, extents, on.as_deref())?;
    let mut actions = vec![Action::Commit {
        vg: vg_name.to_owned(),
        seqno: change.metadata.vg.seqno,
        what: format!(
            "new linear LV {name} ({})",
            crate::units::human(extents * change.metadata.vg.extent_bytes())
        ),
    }];
    let devices = change.pv_devices();
    let plan = Planner::new(&change.metadata.vg, &devices).lv(name)?;
    let ctl = if activate {
        Some(Control::open()?)
    } else {
        None
    };
    if run == Run::PlanOnly {
        if let (true, Some(ctl)) = (activate, &ctl) {
            actions.extend(
                engine::activation_steps(ctl, dev, &plan)?
                    .into_iter()
                    .map(Action::Dm),
            );
            actions.push(Action::Wipe {
                path: names::lv_path(vg_name, name),
                bytes: 4096,
            });
        }
        return Ok(actions);
    }
    change.commit_and_continue(env)?;
    if activate {
        let ctl = ctl.expect("opened to apply");
        let done = engine::activation_steps(&ctl, dev, &plan)
            .map_err(VolumeError::from)
            .and_then(|steps| {
                engine::run(&ctl, dev, &steps)?;
                Ok(steps)
            })
            .and_then(|steps| {
                let path = plan.devices.last().expect("one device").path();
                wipe_start(&path)?;
                Ok(steps)
            });
        match done {
            Ok(steps) => actions.extend(steps.into_iter().map(Action::Dm)),
            Err(e) => {
                // Take down what came up, then forget the LV.
                if let Ok(down) = engine::deactivation_steps(&ctl, &plan, &[name.to_owned()]) {
                    let _ = engine::run(&ctl, dev, &down);
                }
                return Err(restore(env, &mut change, before, e));
            }
        }
    }
    Ok(actions)
}

/// Zeroes an LV's first 4 KiB, as lvm2 wipes a new LV.
fn wipe_start(path: &str) -> Result<()> {
    let d = crate::blockdev::Device::open(std::path::Path::new(path), true)
        .map_err(|e| VolumeError::Op(e.into()))?;
    d.write_at(0, &[0u8; 4096])
        .map_err(|e| VolumeError::Op(e.into()))?;
    Ok(())
}

/// The (PV, next extent) where a linear LV ends, for growing in place.
fn end_of(vg: &VolumeGroup, name: &str) -> Option<(usize, u64)> {
    let seg = vg.lv(name)?.segments.last()?;
    match &seg.kind {
        SegmentKind::Striped { stripes, .. } if stripes.len() == 1 => match &stripes[0] {
            Area::Pv { pv, pe } => Some((*pv, pe + seg.extent_count)),
            Area::Lv { .. } => None,
        },
        _ => None,
    }
}

/// Gives the linear LV `name` `extents` more, in place when the extents
/// after its end are free; extents that continue its last segment on the
/// same PV join that segment (lvm2 merges adjacent segments).
pub(crate) fn grow_lv(
    vg: &mut VolumeGroup,
    name: &str,
    extents: u64,
    on: Option<&[usize]>,
) -> Result<()> {
    let after = end_of(vg, name);
    let runs =
        alloc::allocate(vg, extents, on, after).map_err(|e| refused(&vg.name, e.to_string()))?;
    let lv = vg
        .lv_mut(name)
        .ok_or_else(|| refused("", format!("has no LV named {name}")))?;
    for seg in alloc::linear_segments(&runs) {
        let joins = match (lv.segments.last(), &seg.kind) {
            (Some(last), SegmentKind::Striped { stripes, .. }) => {
                match (&last.kind, &stripes[..]) {
                    (SegmentKind::Striped { stripes: ls, .. }, [Area::Pv { pv, pe }])
                        if ls.len() == 1 =>
                    {
                        matches!(&ls[0], Area::Pv { pv: lp, pe: lpe } if lp == pv && lpe + last.extent_count == *pe)
                    }
                    _ => false,
                }
            }
            _ => false,
        };
        if joins {
            lv.segments.last_mut().expect("joins").extent_count += seg.extent_count;
        } else {
            let mut seg = seg;
            seg.start_extent = lv.extent_count();
            lv.segments.push(seg);
        }
    }
    Ok(())
}

/// Checks `name` is a plain linear (or striped) LV that nothing stacks on.
fn check_plain(vg: &VolumeGroup, name: &str) -> Result<()> {
    let lv = vg
        .lv(name)
        .ok_or_else(|| refused(&vg.name, format!("has no LV named {name}")))?;
    if !vg.lv_is_visible(lv) {
        return Err(refused(
            &vg.name,
            format!("LV {name} is a hidden part of another LV: change that LV instead"),
        ));
    }
    let plain = lv
        .segments
        .iter()
        .all(|s| matches!(s.kind, SegmentKind::Striped { .. }));
    let cow = vg.snapshot_of_cow(name).is_some();
    let origin = vg.is_snapshot_origin(name);
    if !plain || cow || origin {
        return Err(refused(
            &vg.name,
            format!(
                "LV {name} is not a plain linear LV (a pool, thin, cached LV, snapshot or \
                 snapshot origin): cairn does not resize or remove those this way yet"
            ),
        ));
    }
    Ok(())
}

/// A resize of a linear LV.
#[derive(Debug, Clone)]
pub struct Resize {
    pub vg: String,
    pub name: String,
    /// The new size (`None`: a pool whose metadata alone grows).
    pub size: Option<Size>,
    /// A thin pool's new metadata size.
    pub metadata: Option<Size>,
    /// Allocate only on these PVs (extend).
    pub pvs: Vec<PathBuf>,
}

/// `lvextend -L [+]SIZE` of a linear LV, active or not.
pub fn extend(env: &Env, dev: &Dev, req: &Resize, run: Run) -> Result<Vec<Action>> {
    resize(env, dev, req, true, run)
}

/// `lvreduce -L SIZE`: the caller has the user's --yes.
pub fn reduce(env: &Env, dev: &Dev, req: &Resize, run: Run) -> Result<Vec<Action>> {
    resize(env, dev, req, false, run)
}

/// What a resize changes, by the LV's type (lvm2's resizable layer).
enum Resizable {
    /// Linear or striped: its own extents.
    Plain,
    /// A snapshot origin: its own extents, only while inactive.
    Origin,
    /// A thin pool: its `_tdata` (extend only).
    ThinPool,
    /// A thin LV: the size in its pool; nothing is allocated.
    Thin,
    /// A cached LV: the extents of its `_corig`.
    Cached { corig: String },
    /// A thick snapshot: its COW store, reloaded under its origin.
    Cow { origin: String },
}

fn resizable(vg: &VolumeGroup, name: &str, grow: bool) -> Result<Resizable> {
    let lv = vg
        .lv(name)
        .ok_or_else(|| refused(&vg.name, format!("has no LV named {name}")))?;
    if !vg.lv_is_visible(lv) {
        return Err(refused(
            &vg.name,
            format!("LV {name} is a hidden part of another LV: resize that LV instead"),
        ));
    }
    if let Some((_, seg)) = vg.snapshot_of_cow(name) {
        let SegmentKind::Snapshot { origin, .. } = &seg.kind else {
            unreachable!("snapshot_of_cow finds snapshot segments")
        };
        if !grow {
            return Err(refused(
                &vg.name,
                format!(
                    "LV {name} is a thick snapshot: its COW store is not reduced (it may hold                      more than the new size); remove the snapshot instead"
                ),
            ));
        }
        return Ok(Resizable::Cow {
            origin: origin.clone(),
        });
    }
    let is_origin = vg.is_snapshot_origin(name);
    let single = |what: &str| -> Result<()> {
        if lv.segments.len() == 1 {
            Ok(())
        } else {
            Err(refused(
                &vg.name,
                format!("LV {name} is a {what} with several segments: cairn does not resize those"),
            ))
        }
    };
    let kind = match lv.segments.first().map(|s| &s.kind) {
        Some(SegmentKind::Striped { .. }) if is_origin => {
            if !grow {
                return Err(refused(
                    &vg.name,
                    format!(
                        "LV {name} is a snapshot origin: origins are not reduced (lvm2 neither)"
                    ),
                ));
            }
            Resizable::Origin
        }
        Some(SegmentKind::ThinPool { .. }) => {
            if !grow {
                return Err(refused(
                    &vg.name,
                    format!("LV {name} is a thin pool: pools are not reduced (lvm2 neither)"),
                ));
            }
            Resizable::ThinPool
        }
        Some(SegmentKind::Thin { .. }) => {
            single("thin LV")?;
            Resizable::Thin
        }
        Some(SegmentKind::Cache { origin, .. }) => {
            single("cached LV")?;
            Resizable::Cached {
                corig: origin.clone(),
            }
        }
        _ if lv
            .segments
            .iter()
            .all(|s| matches!(s.kind, SegmentKind::Striped { .. })) =>
        {
            Resizable::Plain
        }
        Some(other) => {
            return Err(refused(
                &vg.name,
                format!(
                    "LV {name} is of type {}: cairn does not resize those",
                    other.type_name()
                ),
            ))
        }
        None => return Err(refused(&vg.name, format!("LV {name} has no segments"))),
    };
    Ok(kind)
}

/// Cuts `name`'s segments to `keep` extents.
fn cut_lv(vg: &mut VolumeGroup, name: &str, keep: u64) {
    let lv = vg.lv_mut(name).expect("checked");
    let mut keep = keep;
    lv.segments.retain_mut(|s| {
        if keep == 0 {
            return false;
        }
        if s.extent_count > keep {
            s.extent_count = keep;
        }
        keep -= s.extent_count;
        true
    });
}

fn resize(env: &Env, dev: &Dev, req: &Resize, grow: bool, run: Run) -> Result<Vec<Action>> {
    let (vg_name, name, pvs) = (&req.vg, &req.name, &req.pvs);
    let mut change = ops::begin_change(env, vg_name, pvs)?;
    let kind = resizable(&change.metadata.vg, name, grow)?;
    if let Resizable::ThinPool = kind {
        return super::pool::extend_in(env, dev, change, req, run);
    }
    if req.metadata.is_some() {
        return Err(refused(
            vg_name,
            format!("LV {name} is not a thin pool: only pools have a metadata size"),
        ));
    }
    let Some(size) = req.size else {
        return Err(refused(vg_name, format!("give LV {name}'s new size (-L)")));
    };
    let on = pv_indices(&change, pvs)?;
    let vg = &change.metadata.vg;
    // The layer whose extents change, and the LV whose tree is reloaded.
    let (layer, top) = match &kind {
        Resizable::Cached { corig } => (corig.clone(), name.clone()),
        Resizable::Cow { origin } => (name.clone(), origin.clone()),
        _ => (name.clone(), name.clone()),
    };
    let current = vg.lv(name).map_or(0, |l| l.extent_count());
    let target = target_extents(vg, size, current, on.as_deref())?;
    let human = |e: u64| crate::units::human(e * vg.extent_bytes());
    if grow && target <= current {
        return Err(refused(
            vg_name,
            format!(
                "LV {name} is {} already; extend to more than that (reduce shrinks)",
                human(current)
            ),
        ));
    }
    if !grow && (target >= current || target == 0) {
        return Err(refused(
            vg_name,
            format!(
                "LV {name} is {}: reduce to less than that, and more than 0",
                human(current)
            ),
        ));
    }
    let what = format!("LV {name} {} -> {}", human(current), human(target));
    let before = change.metadata.clone();
    let ctl = Control::open()?;
    if let Resizable::Origin = kind {
        if ctl.info(&names::dm_name(vg_name, name, None))?.is_some() {
            return Err(refused(
                vg_name,
                format!(
                    "LV {name} is a snapshot origin: origins are resized only while inactive                      (cairn lv deactivate {vg_name}/{name}), as lvm2 insists"
                ),
            ));
        }
    }
    let vg = &mut change.metadata.vg;
    if !matches!(kind, Resizable::Thin) {
        let layer_now = vg.lv(&layer).map_or(0, |l| l.extent_count());
        if grow {
            grow_lv(vg, &layer, target - current, on.as_deref())?;
        } else {
            cut_lv(vg, &layer, layer_now - (current - target));
        }
    }
    if matches!(kind, Resizable::Thin | Resizable::Cached { .. }) {
        let lv = vg.lv_mut(name).expect("checked");
        lv.segments[0].extent_count = target;
    }
    let mut actions = vec![Action::Commit {
        vg: vg_name.to_owned(),
        seqno: change.metadata.vg.seqno,
        what,
    }];
    let devices = change.pv_devices();
    let config = LvmConfig::for_vg(&change.metadata.vg)?;
    let plan = Planner::new(&change.metadata.vg, &devices)
        .with_config(config)
        .lv(&top)?;
    // lvm2 flushes before every table swap except a thin LV's growth (a
    // full pool may hold the very I/O a flush would wait for).
    let how = match kind {
        Resizable::Thin if grow => Suspend::NoFlush,
        _ => Suspend::Flush,
    };
    let steps = engine::reload_steps(&ctl, &plan, how)?;
    if run == Run::PlanOnly {
        actions.extend(steps.into_iter().map(Action::Dm));
        return Ok(actions);
    }
    if !grow {
        // Shrinking under an open LV cuts data from under its user.
        if let Some(info) = ctl.info(&names::dm_name(vg_name, name, None))? {
            if info.open_count > 0 {
                return Err(refused(
                    vg_name,
                    format!(
                        "LV {name} is open: unmount it (and shrink its file system first) before reducing it"
                    ),
                ));
            }
        }
    }
    if !grow {
        return shrink(env, dev, &ctl, change, (&before, &top), steps, actions);
    }
    change.commit_and_continue(env)?;
    if let Err(e) = engine::run(&ctl, dev, &steps) {
        return Err(restore(env, &mut change, before, e.into()));
    }
    actions.extend(steps.into_iter().map(Action::Dm));
    Ok(actions)
}

/// A reduce frees extents, so the kernel goes first: the smaller tables
/// are loaded, swapped in and resumed, and only then does the commit free
/// the extents (lvm2 stops I/O to them before its commit too, by loading
/// and suspending first). A crash in between leaves the metadata larger
/// than the kernel's tables, never a free extent still mapped; the same
/// command run again finds the tables done and commits. If the commit
/// fails, the old tables are put back.
fn shrink(
    env: &Env,
    dev: &Dev,
    ctl: &Control,
    mut change: Change,
    (before, top): (&Metadata, &str),
    steps: Vec<engine::Step>,
    mut actions: Vec<Action>,
) -> Result<Vec<Action>> {
    engine::run(ctl, dev, &steps)?;
    crate::failpoint::hit("reduce-after-kernel");
    if let Err(e) = change.commit_and_continue(env) {
        return Err(put_back(ctl, dev, &change, before, top, e.into()));
    }
    // The plan shows the commit after the kernel steps, as they ran.
    let commit = actions.remove(0);
    actions.extend(steps.into_iter().map(Action::Dm));
    actions.push(commit);
    Ok(actions)
}

/// Reloads `top`'s tables as `before` (the committed metadata) has them,
/// after the commit of a change the kernel had already followed failed.
pub(crate) fn put_back(
    ctl: &Control,
    dev: &Dev,
    change: &Change,
    before: &Metadata,
    top: &str,
    failed: VolumeError,
) -> VolumeError {
    let devices = change.pv_devices();
    let back = (|| -> Result<()> {
        let plan = Planner::new(&before.vg, &devices)
            .with_config(LvmConfig::for_vg(&before.vg)?)
            .lv(top)?;
        engine::run(ctl, dev, &engine::reload_steps(ctl, &plan, Suspend::Flush)?)?;
        Ok(())
    })();
    match back {
        Ok(()) => failed,
        Err(e) => refused(
            &before.vg.name,
            format!("{failed}; putting the old tables back failed too: {e}"),
        ),
    }
}

/// `lvremove VG/LV` of a plain linear LV: deactivated first (refused while
/// it is open), then dropped from the metadata.
pub fn remove(env: &Env, dev: &Dev, vg_name: &str, name: &str, run: Run) -> Result<Vec<Action>> {
    let mut change = ops::begin_change(env, vg_name, &[])?;
    check_plain(&change.metadata.vg, name)?;
    let ctl = Control::open()?;
    let devices = change.pv_devices();
    let plan = Planner::new(&change.metadata.vg, &devices).lv(name)?;
    let down = engine::deactivation_steps(&ctl, &plan, &[name.to_owned()])?;
    change.metadata.vg.lvs.retain(|l| l.name != name);
    let mut actions: Vec<Action> = down.iter().cloned().map(Action::Dm).collect();
    actions.push(Action::Commit {
        vg: vg_name.to_owned(),
        seqno: change.metadata.vg.seqno,
        what: format!("LV {name} removed"),
    });
    if run == Run::PlanOnly {
        return Ok(actions);
    }
    engine::run(&ctl, dev, &down)?;
    change.commit_and_continue(env)?;
    Ok(actions)
}
