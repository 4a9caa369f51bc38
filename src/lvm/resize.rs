//! Resizing LVs without lvm2 (`lvextend`, `lvreduce`): linear and striped
//! LVs, snapshot origins (inactive only), thin LVs, cached LVs (their
//! origin layer), thick snapshots' COW stores, and thin pools' data and
//! metadata, each as lvm2 resizes that kind.
//!
//! What allocates extents commits first, then the kernel follows (an
//! active LV gets its new tables loaded, then suspended and resumed); if
//! the kernel step fails, the metadata of before the call is committed
//! again. A reduce frees extents, so it goes the other way: the kernel
//! first, then the commit, so that no crash leaves an extent free in the
//! metadata while a device still maps it.

use std::path::PathBuf;

use crate::dm::{Control, Suspend};
use crate::meta::model::{Metadata, SegmentKind, VolumeGroup};
use crate::meta::ops::{self, Change, Env};

use super::action::{find_lv, find_visible_lv, refused, Action, Result, Run, VolumeError};
use super::activate::Planner;
use super::config::LvmConfig;
use super::engine::{self, Dev};
use super::extents::{grow_lv, pv_indices, restore, target_extents, Size};
use super::names;
use super::pool::{ensure_spare, largest_pool_metadata, sizes, MAX_METADATA};
use crate::error::ErrorKind;

/// A resize of an LV (of any kind [`extend`] and [`reduce`] take) or of a
/// thin pool ([`extend_pool`]).
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

/// `lvextend -L [+]SIZE` of an LV, active or not.
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
    let lv = find_visible_lv(vg, name, "resize")?;
    if let Some((_, seg)) = vg.snapshot_of_cow(name) {
        let SegmentKind::Snapshot { origin, .. } = &seg.kind else {
            unreachable!("snapshot_of_cow finds snapshot segments")
        };
        if !grow {
            return Err(refused(
                &vg.name, ErrorKind::Refused,
                format!(
                    "LV {name} is a thick snapshot: its COW store is not reduced (it may hold more than the new size); remove the snapshot instead"
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
                ErrorKind::Unsupported,
                format!("LV {name} is a {what} with several segments: cairn does not resize those"),
            ))
        }
    };
    let kind = match lv.segments.first().map(|s| &s.kind) {
        Some(SegmentKind::Striped { .. }) if is_origin => {
            if !grow {
                return Err(refused(
                    &vg.name,
                    ErrorKind::Unsupported,
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
                    ErrorKind::Unsupported,
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
                ErrorKind::Unsupported,
                format!(
                    "LV {name} is of type {}: cairn does not resize those",
                    other.type_name()
                ),
            ))
        }
        None => {
            return Err(refused(
                &vg.name,
                ErrorKind::Inconsistent,
                format!("LV {name} has no segments"),
            ))
        }
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
        return extend_pool_in(env, dev, change, req, run);
    }
    if req.metadata.is_some() {
        return Err(refused(
            vg_name,
            ErrorKind::InvalidInput,
            format!("LV {name} is not a thin pool: only pools have a metadata size"),
        ));
    }
    let Some(size) = req.size else {
        return Err(refused(
            vg_name,
            ErrorKind::InvalidInput,
            format!("give LV {name}'s new size (-L)"),
        ));
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
            ErrorKind::InvalidInput,
            format!(
                "LV {name} is {} already; extend to more than that (reduce shrinks)",
                human(current)
            ),
        ));
    }
    if !grow && (target >= current || target == 0) {
        return Err(refused(
            vg_name,
            ErrorKind::InvalidInput,
            format!(
                "LV {name} is {}: reduce to less than that, and more than 0",
                human(current)
            ),
        ));
    }
    let what = format!("LV {name} {} -> {}", human(current), human(target));
    let before = change.metadata.clone();
    let ctl = dev.control()?;
    if let Resizable::Origin = kind {
        if ctl.info(&names::dm_name(vg_name, name, None))?.is_some() {
            return Err(refused(
                vg_name, ErrorKind::Busy,
                format!(
                    "LV {name} is a snapshot origin: origins are resized only while inactive (cairn lv deactivate {vg_name}/{name}), as lvm2 insists"
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
    let config = LvmConfig::for_vg(&env.lvm_dir, &change.metadata.vg)?;
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
                    vg_name, ErrorKind::Busy,
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
        return Err(put_back(env, ctl, dev, &change, before, top, e.into()));
    }
    // The plan shows the commit after the kernel steps, as they ran.
    let commit = actions.remove(0);
    actions.extend(steps.into_iter().map(Action::Dm));
    actions.push(commit);
    Ok(actions)
}

/// Reloads `top`'s tables as `before` (the committed metadata) has them,
/// after the commit of a change the kernel had already followed failed.
fn put_back(
    env: &Env,
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
            .with_config(LvmConfig::for_vg(&env.lvm_dir, &before.vg)?)
            .lv(top)?;
        engine::run(ctl, dev, &engine::reload_steps(ctl, &plan, Suspend::Flush)?)?;
        Ok(())
    })();
    match back {
        Ok(()) => failed,
        Err(e) => refused(
            &before.vg.name,
            ErrorKind::Unrecovered,
            format!("{failed}; putting the old tables back failed too: {e}"),
        ),
    }
}

/// `lvextend -L [+]SIZE VG/POOL`: more data space for a thin pool; an
/// active pool is reloaded live (data layer, thin-pool target and the
/// pool's own layer: loaded, suspended top-down without flushing, resumed
/// bottom-up, as lvm2 does for pools).
pub fn extend_pool(env: &Env, dev: &Dev, req: &Resize, run: Run) -> Result<Vec<Action>> {
    let change = ops::begin_change(env, &req.vg, &req.pvs)?;
    extend_pool_in(env, dev, change, req, run)
}

/// [`extend_pool`] within a change already begun: data (`-L`), metadata
/// (`--poolmetadatasize`) or both. Data growth without a metadata size and
/// without named PVs grows the metadata too when lvm2's estimate for the
/// new data size exceeds it, as lvextend does; metadata growth grows the
/// VG's pool metadata spare with it.
fn extend_pool_in(
    env: &Env,
    dev: &Dev,
    mut change: Change,
    req: &Resize,
    run: Run,
) -> Result<Vec<Action>> {
    let vg_name = req.vg.as_str();
    let on = pv_indices(&change, &req.pvs)?;
    let vg = &change.metadata.vg;
    let pool = find_lv(vg, &req.name)?;
    let Some(SegmentKind::ThinPool {
        pool: data,
        metadata,
        chunk_size,
        ..
    }) = pool.segments.first().map(|s| &s.kind)
    else {
        return Err(refused(
            vg_name,
            ErrorKind::InvalidInput,
            format!("{} is not a thin pool", req.name),
        ));
    };
    let (data, metadata, chunk) = (data.clone(), metadata.clone(), *chunk_size);
    let current = pool.extent_count();
    let md_current = vg.lv(&metadata).map_or(0, |l| l.extent_count());
    let extent = vg.extent_bytes();
    let new_size =
        |size: Size, now: u64| -> Result<u64> { target_extents(vg, size, now, on.as_deref()) };
    if req.size.is_none() && req.metadata.is_none() {
        return Err(refused(
            vg_name,
            ErrorKind::InvalidInput,
            "give the pool's new data size (-L) or metadata size (--poolmetadatasize)".into(),
        ));
    }
    let human = |e: u64| crate::units::human(e * extent);
    let target = match req.size {
        Some(size) => new_size(size, current)?,
        None => current,
    };
    if req.size.is_some() && target <= current {
        return Err(refused(
            vg_name,
            ErrorKind::InvalidInput,
            format!(
                "pool {} is {} already: give a larger size (pools do not shrink)",
                req.name,
                human(current)
            ),
        ));
    }
    let md_target = match req.metadata {
        Some(size) => {
            let t = new_size(size, md_current)?;
            if t <= md_current {
                return Err(refused(
                    vg_name,
                    ErrorKind::InvalidInput,
                    format!(
                        "the metadata of pool {} is {} already: give a larger size (pool \
                         metadata does not shrink)",
                        req.name,
                        human(md_current)
                    ),
                ));
            }
            let max = MAX_METADATA.div_ceil(vg.extent_size);
            if t > max {
                return Err(refused(
                    vg_name,
                    ErrorKind::InvalidInput,
                    format!(
                        "pool metadata is at most {} (the thin target's limit)",
                        human(max)
                    ),
                ));
            }
            t
        }
        // lvm2's estimate for the new data size, if it outgrows the metadata.
        None if req.pvs.is_empty() && target > current => {
            let (_, wanted) = sizes(target * vg.extent_size, vg.extent_size, Some(chunk), None);
            md_current.max(wanted / vg.extent_size)
        }
        None => md_current,
    };
    let before = change.metadata.clone();
    let mut what = Vec::new();
    {
        let vg = &mut change.metadata.vg;
        if md_target > md_current {
            grow_lv(vg, &metadata, md_target - md_current, on.as_deref())?;
            what.push(format!(
                "thin pool {} metadata {} -> {}",
                req.name,
                human(md_current),
                human(md_target)
            ));
            if req.pvs.is_empty() {
                let largest = largest_pool_metadata(vg);
                what.extend(ensure_spare(vg, largest, None)?);
            }
        }
        if target > current {
            grow_lv(vg, &data, target - current, on.as_deref())?;
            let pool = vg.lv_mut(&req.name).expect("checked");
            pool.segments[0].extent_count = target;
            what.insert(
                0,
                format!(
                    "thin pool {} data {} -> {}",
                    req.name,
                    human(current),
                    human(target)
                ),
            );
        }
    }
    let mut actions = vec![Action::Commit {
        vg: vg_name.to_owned(),
        seqno: change.metadata.vg.seqno,
        what: what.join("; "),
    }];
    let ctl = dev.control()?;
    let devices = change.pv_devices();
    let config = LvmConfig::for_vg(&env.lvm_dir, &change.metadata.vg)?;
    let plan = Planner::new(&change.metadata.vg, &devices)
        .with_config(config)
        .lv(&req.name)?;
    // The thin-pool target reads its metadata device's size on resume, so
    // the pool is cycled when only the metadata grew (same table).
    let cycle: Vec<String> = if md_target > md_current {
        plan.devices
            .iter()
            .filter(|d| is_pool_target(d))
            .map(|d| d.name.clone())
            .collect()
    } else {
        Vec::new()
    };
    let steps = engine::reload_steps_cycling(&ctl, &plan, crate::dm::Suspend::NoFlush, &cycle)?;
    if run == Run::PlanOnly {
        actions.extend(steps.into_iter().map(Action::Dm));
        return Ok(actions);
    }
    check_pool_usable(&ctl, vg_name, &req.name, &plan)?;
    change.commit_and_continue(env)?;
    if let Err(e) = engine::run(&ctl, dev, &steps) {
        return Err(restore(env, &mut change, before, e.into()));
    }
    actions.extend(steps.into_iter().map(Action::Dm));
    Ok(actions)
}

/// Whether a planned device is the thin-pool target itself.
fn is_pool_target(d: &super::activate::PlannedDevice) -> bool {
    d.table
        .iter()
        .any(|l| matches!(l.target, crate::dm::table::Target::ThinPool { .. }))
}

/// A pool the kernel has put in `needs_check` or failed mode is not
/// changed: its metadata must be repaired first (lvm2 refuses too). A pool
/// that is read-only or out of data space may be extended: that is the cure.
fn check_pool_usable(
    ctl: &Control,
    vg: &str,
    pool: &str,
    plan: &super::activate::Plan,
) -> Result<()> {
    use crate::dm::status::{self, TargetStatus};
    for d in &plan.devices {
        if !is_pool_target(d) {
            continue;
        }
        if ctl.info(&d.name)?.is_none() {
            continue;
        }
        for (_, _, target, params) in ctl.status(&d.name)? {
            match status::parse(&target, &params) {
                Ok(TargetStatus::ThinPool(s)) if s.needs_check => {
                    return Err(refused(
                        vg,
                        ErrorKind::Inconsistent,
                        format!(
                            "thin pool {pool} needs a metadata check (the kernel flagged it): \
                             deactivate it and repair it with lvconvert --repair {vg}/{pool} \
                             before changing it"
                        ),
                    ))
                }
                Ok(TargetStatus::Failed) | Ok(TargetStatus::Error) | Err(_) => {
                    return Err(refused(
                        vg,
                        ErrorKind::Inconsistent,
                        format!(
                            "thin pool {pool} has failed (status {params:?}): deactivate and \
                             repair it (lvconvert --repair {vg}/{pool}) before changing it"
                        ),
                    ))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvm::fixture::every_kind;

    #[test]
    fn each_kind_resizes_its_own_layer() {
        let vg = every_kind();
        let kind = |name: &str, grow: bool| resizable(&vg, name, grow).unwrap();
        for grow in [true, false] {
            assert!(matches!(kind("lin", grow), Resizable::Plain));
            // Two segments, and one of two stripes.
            assert!(matches!(kind("two", grow), Resizable::Plain));
            assert!(matches!(kind("str", grow), Resizable::Plain));
            assert!(matches!(kind("thin", grow), Resizable::Thin));
            assert!(
                matches!(kind("cached", grow), Resizable::Cached { corig } if corig == "cached_corig")
            );
        }
        assert!(matches!(kind("origin", true), Resizable::Origin));
        assert!(matches!(kind("pool", true), Resizable::ThinPool));
        assert!(matches!(kind("snap", true), Resizable::Cow { origin } if origin == "origin"));
    }

    #[test]
    fn what_lvm2_does_not_resize_is_refused() {
        let vg = every_kind();
        let refusal = |name: &str, grow: bool| match resizable(&vg, name, grow) {
            Ok(_) => panic!("{name} resizable"),
            Err(e) => e.to_string(),
        };
        assert!(refusal("origin", false).contains("origins are not reduced"));
        assert!(refusal("pool", false).contains("pools are not reduced"));
        assert!(refusal("snap", false).contains("is a thick snapshot"));
        for hidden in ["pool_tdata", "pool_tmeta", "cached_corig", "lvol0_pmspare"] {
            assert!(refusal(hidden, true).contains("hidden part of another LV"));
        }
        assert!(refusal("nosuch", true).contains("has no LV named nosuch"));
    }

    #[test]
    fn refusals_say_what_kind_they_are() {
        let vg = every_kind();
        let kind = |name: &str, grow: bool| resizable(&vg, name, grow).err().map(|e| e.kind());
        assert_eq!(kind("nosuch", true), Some(ErrorKind::NotFound));
        assert_eq!(kind("pool_tdata", true), Some(ErrorKind::InvalidInput));
        assert_eq!(kind("pool", false), Some(ErrorKind::Unsupported));
        assert_eq!(kind("snap", false), Some(ErrorKind::Refused));
    }

    #[test]
    fn a_cut_keeps_the_first_extents() {
        let mut vg = every_kind();
        // `two`: 2 extents on pv0, then 2 on pv1.
        cut_lv(&mut vg, "two", 3);
        let counts = |vg: &VolumeGroup| -> Vec<u64> {
            vg.lv("two")
                .unwrap()
                .segments
                .iter()
                .map(|s| s.extent_count)
                .collect()
        };
        assert_eq!(counts(&vg), [2, 1]);
        cut_lv(&mut vg, "two", 2);
        assert_eq!(counts(&vg), [2]);
        cut_lv(&mut vg, "two", 1);
        assert_eq!(counts(&vg), [1]);
    }
}
