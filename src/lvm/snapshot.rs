//! Thick (COW) snapshots without lvm2: create (`lvcreate -L S -s VG/LV`)
//! and remove, as lvm2 2.03.16 does them (docs/research/lvm2-ops.md §7).
//!
//! Create: commit 1 adds the COW LV as a plain LV; its first 4 KiB are
//! zeroed through a private device (a stale exception-store header would be
//! read as the snapshot's); commit 2 hides it and adds `snapshotN` with the
//! snapshot segment. If the origin is active, the kernel follows in an order
//! where no write can reach the origin untracked: the origin's extents as
//! `-real` and the COW as `-cow` come up first, the origin's new table
//! (snapshot-origin) is loaded, the origin suspended with a flush, the
//! snapshot's table loaded and resumed, then the origin resumed.

use crate::dm::table::TableLine;
use crate::dm::{Control, Suspend};
use crate::meta::model::{LvStatus, Segment, SegmentKind, VolumeGroup};
use crate::meta::ops::{self, Env};
use crate::units::Bytes;

use super::action::{find_lv, refused, Action, Run, VolumeError};
use super::activate::{PlannedDevice, Planner};
use super::engine::{self, Dev, Step};
use super::names;
use crate::error::ErrorKind;

pub type Result<T> = std::result::Result<T, VolumeError>;

/// `cairn snapshot create VG/ORIGIN -n NAME -L SIZE [-c CHUNK]`.
#[derive(Debug, Clone)]
pub struct NewSnapshot {
    pub vg: String,
    pub origin: String,
    pub name: String,
    pub cow_bytes: Bytes,
    /// Chunk in bytes: a power of two from 4 KiB to 512 KiB (default 4 KiB).
    pub chunk_bytes: Option<Bytes>,
}

/// The largest COW an origin can use (lvm2's _cow_max_size), in sectors.
fn cow_max_sectors(origin_sectors: u64, chunk: u64) -> u64 {
    let chunks = origin_sectors.div_ceil(chunk);
    let per_md = chunk * 512 / 16;
    let md = (chunks + per_md) / per_md;
    (1 + chunks + md) * chunk
}

fn check_origin(vg: &VolumeGroup, origin: &str) -> Result<()> {
    let lv = find_lv(vg, origin)?;
    let plain = lv
        .segments
        .iter()
        .all(|s| matches!(s.kind, SegmentKind::Striped { .. }));
    if !vg.lv_is_visible(lv) || !plain || vg.snapshot_of_cow(origin).is_some() {
        return Err(refused(
            &vg.name,
            ErrorKind::Unsupported,
            format!(
                "{origin} cannot be a thick snapshot's origin: cairn snapshots visible linear or \
                 striped LVs (thin LVs get thin snapshots: leave out -L)"
            ),
        ));
    }
    let merging = vg.lvs.iter().any(|l| {
        matches!(l.segments.first().map(|s| &s.kind),
            Some(SegmentKind::Snapshot { origin: o, merging: true, .. }) if o == origin)
    });
    if merging {
        return Err(refused(
            &vg.name,
            ErrorKind::Busy,
            format!("{origin} has a snapshot merging into it: wait for the merge to finish"),
        ));
    }
    Ok(())
}

pub fn create(env: &Env, dev: &Dev, req: &NewSnapshot, run: Run) -> Result<Vec<Action>> {
    let vg_name = req.vg.as_str();
    ops::check_lv_name(&req.name)?;
    let chunk = req.chunk_bytes.unwrap_or(Bytes(4096)).sectors().0;
    if !chunk.is_power_of_two() || !(8..=1024).contains(&chunk) {
        return Err(refused(
            vg_name,
            ErrorKind::InvalidInput,
            "a snapshot's chunk size must be a power of 2 from 4 KiB to 512 KiB".into(),
        ));
    }
    let mut change = ops::begin_change(env, vg_name, &[])?;
    let vg = &change.metadata.vg;
    check_origin(vg, &req.origin)?;
    if vg.lv(&req.name).is_some() {
        return Err(refused(
            vg_name,
            ErrorKind::AlreadyExists,
            format!("already has an LV named {}", req.name),
        ));
    }
    let origin_sectors = vg.lv(&req.origin).map_or(0, |l| l.extent_count()) * vg.extent_size;
    let extent = vg.extent_size;
    let max = cow_max_sectors(origin_sectors, chunk).div_ceil(extent);
    let extents = req.cow_bytes.extents_ceil(vg.extent_bytes()).0.min(max);
    if extents * extent < 3 * chunk {
        return Err(refused(
            vg_name,
            ErrorKind::InvalidInput,
            "a snapshot needs at least 3 chunks".into(),
        ));
    }
    let before = change.metadata.clone();
    // Commit 1: the COW as a plain LV.
    ops::add_linear_lv(&mut change.metadata.vg, &req.name, extents, None)?;
    let mut staged = change.metadata.vg.clone();
    let n = (0..)
        .find(|n| staged.lv(&format!("snapshot{n}")).is_none())
        .expect("a free name");
    let origin_extents = staged.lv(&req.origin).map_or(0, |l| l.extent_count());
    let cow = staged.lv_mut(&req.name).expect("just added");
    cow.status.remove(LvStatus::VISIBLE);
    let snap = ops::new_lv(
        &format!("snapshot{n}"),
        vec![Segment {
            start_extent: 0,
            extent_count: origin_extents,
            reshape_count: None,
            type_flags: vec![],
            tags: vec![],
            kind: SegmentKind::Snapshot {
                chunk_size: chunk,
                origin: req.origin.clone(),
                cow: req.name.clone(),
                merging: false,
            },
            extra: Default::default(),
        }],
    )?;
    staged.lvs.push(snap);

    let mut actions = vec![
        Action::Commit {
            vg: vg_name.to_owned(),
            seqno: change.metadata.vg.seqno,
            what: format!(
                "COW LV {} ({}) as a plain LV",
                req.name,
                crate::units::human(extents * extent * 512)
            ),
        },
        Action::Wipe {
            path: names::lv_path(vg_name, &req.name),
            bytes: 4096,
        },
        Action::Commit {
            vg: vg_name.to_owned(),
            seqno: change.metadata.vg.seqno + 1,
            what: format!(
                "{} becomes snapshot{n} of {} (chunk {})",
                req.name,
                req.origin,
                crate::units::human(chunk * 512)
            ),
        },
    ];
    let ctl = dev.control()?;
    let devices = change.pv_devices();
    let origin_name = names::dm_name(vg_name, &req.origin, None);
    let origin_active = ctl.info(&origin_name)?.is_some_and(|i| i.live_table);
    let steps = if origin_active {
        let plan = Planner::new(&staged, &devices).lv(&req.origin)?;
        let mut new = Vec::new();
        for d in plan.devices {
            if d.name == origin_name || ctl.info(&d.name)?.is_none() {
                new.push(d);
            }
        }
        // An origin already (with other snapshots) keeps its table.
        let reload = !ctl
            .table(&origin_name)?
            .iter()
            .any(|l| l.target.type_name() == "snapshot-origin");
        snapshot_steps(&new, &origin_name, reload)
    } else {
        Vec::new()
    };
    if run == Run::PlanOnly {
        actions.extend(steps.into_iter().map(Action::Dm));
        return Ok(actions);
    }
    change.commit_and_continue(env)?;
    let cow_table = Planner::new(&change.metadata.vg, &devices)
        .lv(&req.name)?
        .devices
        .remove(0)
        .table;
    if let Err(e) = super::pool::zero_through(&ctl, vg_name, &req.name, &cow_table, 4096) {
        return Err(super::extents::restore(env, &mut change, before, e));
    }
    staged.seqno = change.metadata.vg.seqno;
    change.metadata.vg = staged;
    change.commit_and_continue(env)?;
    if let Err(e) = engine::run(&ctl, dev, &steps) {
        return Err(super::extents::restore(env, &mut change, before, e.into()));
    }
    actions.extend(steps.into_iter().map(Action::Dm));
    Ok(actions)
}

/// The order that keeps every write to the origin tracked (module comment).
fn snapshot_steps(devices: &[PlannedDevice], origin: &str, reload_origin: bool) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut origin_table: Vec<TableLine> = Vec::new();
    let mut origin_read_only = false;
    let mut snaps = Vec::new();
    for d in devices {
        if d.name == origin {
            origin_table = d.table.clone();
            origin_read_only = d.read_only;
        } else if d.name.ends_with("-real") || d.name.ends_with("-cow") {
            steps.extend(engine::bring_up(d));
            steps.push(Step::Node {
                name: d.name.clone(),
            });
        } else {
            snaps.push(d);
        }
    }
    for s in &snaps {
        steps.push(Step::Create {
            name: s.name.clone(),
            uuid: s.uuid.clone(),
            read_only: s.read_only,
        });
    }
    if reload_origin {
        steps.push(Step::Load {
            name: origin.to_owned(),
            table: origin_table,
            read_only: origin_read_only,
        });
    }
    steps.push(Step::Suspend {
        name: origin.to_owned(),
        how: Suspend::Flush,
    });
    for s in &snaps {
        steps.push(Step::Load {
            name: s.name.clone(),
            table: s.table.clone(),
            read_only: s.read_only,
        });
        steps.push(Step::Resume {
            name: s.name.clone(),
        });
    }
    steps.push(Step::Resume {
        name: origin.to_owned(),
    });
    for s in &snaps {
        steps.push(Step::Node {
            name: s.name.clone(),
        });
        if let Some(link) = &s.link {
            steps.push(Step::Link {
                link: link.clone(),
                name: s.name.clone(),
            });
        }
    }
    steps
}

/// The thick snapshot whose COW LV is `name`: (snapshotN, origin, merging).
fn snapshot_of(vg: &VolumeGroup, name: &str) -> Result<(String, String, bool)> {
    match vg.snapshot_of_cow(name) {
        Some((
            snap,
            Segment {
                kind:
                    SegmentKind::Snapshot {
                        origin, merging, ..
                    },
                ..
            },
        )) => Ok((snap.name.clone(), origin.clone(), *merging)),
        _ => Err(refused(
            &vg.name,
            ErrorKind::InvalidInput,
            format!("{name} is not a thick snapshot"),
        )),
    }
}

/// `lvremove VG/SNAP` of a thick snapshot: its devices go first (refused
/// while it is open), then the metadata, then an origin left without
/// snapshots is reloaded as the plain LV it was and its `-real` removed.
pub fn remove(env: &Env, dev: &Dev, vg_name: &str, name: &str, run: Run) -> Result<Vec<Action>> {
    let mut change = ops::begin_change(env, vg_name, &[])?;
    let vg = &change.metadata.vg;
    let (snap_lv, origin, merging) = snapshot_of(vg, name)?;
    if merging {
        return Err(refused(
            vg_name,
            ErrorKind::Busy,
            format!("{name} is merging into {origin}: it goes away by itself when the merge ends"),
        ));
    }
    let ctl = dev.control()?;
    let snap_dm = names::dm_name(vg_name, name, None);
    let cow_dm = names::dm_name(vg_name, name, Some("cow"));
    if let Some(info) = ctl.info(&snap_dm)? {
        if info.open_count > 0 {
            return Err(VolumeError::Engine(engine::EngineError::InUse {
                lv: name.to_owned(),
                name: snap_dm,
                count: info.open_count,
            }));
        }
    }
    let mut down = Vec::new();
    if ctl.info(&snap_dm)?.is_some() {
        down.push(Step::Unlink {
            link: names::lv_path(vg_name, name),
        });
        down.push(Step::RemoveNode {
            name: snap_dm.clone(),
        });
        down.push(Step::Remove { name: snap_dm });
    }
    if ctl.info(&cow_dm)?.is_some() {
        down.push(Step::RemoveNode {
            name: cow_dm.clone(),
        });
        down.push(Step::Remove { name: cow_dm });
    }
    let vg = &mut change.metadata.vg;
    vg.lvs.retain(|l| l.name != name && l.name != snap_lv);
    let others = vg.lvs.iter().any(|l| {
        matches!(l.segments.first().map(|s| &s.kind),
            Some(SegmentKind::Snapshot { origin: o, .. }) if *o == origin)
    });
    let origin_dm = names::dm_name(vg_name, &origin, None);
    let real_dm = names::dm_name(vg_name, &origin, Some("real"));
    let mut reload = Vec::new();
    if !others && ctl.info(&origin_dm)?.is_some() {
        let devices = change.pv_devices();
        let plan = Planner::new(&change.metadata.vg, &devices).lv(&origin)?;
        let own = plan
            .devices
            .iter()
            .find(|d| d.name == origin_dm)
            .expect("the origin's own device");
        reload.push(Step::Load {
            name: origin_dm.clone(),
            table: own.table.clone(),
            read_only: own.read_only,
        });
        reload.push(Step::Suspend {
            name: origin_dm.clone(),
            how: Suspend::Flush,
        });
        reload.push(Step::Resume { name: origin_dm });
        if ctl.info(&real_dm)?.is_some() {
            reload.push(Step::RemoveNode {
                name: real_dm.clone(),
            });
            reload.push(Step::Remove { name: real_dm });
        }
    }
    let mut actions: Vec<Action> = down.iter().cloned().map(Action::Dm).collect();
    actions.push(Action::Commit {
        vg: vg_name.to_owned(),
        seqno: change.metadata.vg.seqno,
        what: format!("snapshot {name} of {origin} removed"),
    });
    actions.extend(reload.iter().cloned().map(Action::Dm));
    if run == Run::PlanOnly {
        return Ok(actions);
    }
    engine::run(&ctl, dev, &down)?;
    change.commit_and_continue(env)?;
    engine::run(&ctl, dev, &reload)?;
    Ok(actions)
}

/// Whether the kernel is past the end of a merge whose commit is still to
/// come: the COW's device is gone and the origin is no snapshot-merge any
/// more (plain again, or a snapshot-origin for its other snapshots). A
/// merge not started yet has the COW active under the snapshot; one under
/// way has the origin a snapshot-merge over it.
fn merged_in_kernel(ctl: &Control, vg: &str, cow: &str, origin_dm: &str) -> Result<bool> {
    if ctl.info(&names::dm_name(vg, cow, Some("cow")))?.is_some() {
        return Ok(false);
    }
    let table = ctl.table(origin_dm)?;
    Ok(!table.is_empty()
        && !table
            .iter()
            .any(|l| matches!(l.target, crate::dm::table::Target::SnapshotMerge { .. })))
}

/// How long a merge may take before `merge` stops waiting (it goes on in
/// the kernel; running the command again finishes it).
const MERGE_WAIT: std::time::Duration = std::time::Duration::from_secs(3600);

/// `lvconvert --merge VG/SNAP`: the origin goes back to the snapshot's
/// content (the seed's restore of its whole-stack snapshot).
///
/// The metadata marks the merge first (`merging_store`, snapshotN hidden).
/// If the origin is active and neither it nor the snapshot is open, the
/// snapshot's device goes, the origin gets `snapshot-merge` (loaded, then
/// suspended and resumed), cairn waits until the kernel reports the COW
/// empty, and the merge is finished: snapshotN and the COW LV leave the
/// metadata, the origin is reloaded plain and its layers removed. Otherwise
/// the merge starts on the origin's next activation (as lvm2 does), and
/// running this command again then finishes it.
pub fn merge(env: &Env, dev: &Dev, vg_name: &str, name: &str, run: Run) -> Result<Vec<Action>> {
    let mut change = ops::begin_change(env, vg_name, &[])?;
    let vg = &change.metadata.vg;
    let (snap_lv, origin, merging) = snapshot_of(vg, name)?;
    let already = merging;
    let ctl = dev.control()?;
    let snap_dm = names::dm_name(vg_name, name, None);
    let origin_dm = names::dm_name(vg_name, &origin, None);
    if let Some(lines) = ctl
        .info(&snap_dm)?
        .is_some()
        .then(|| ctl.status(&snap_dm))
        .transpose()?
    {
        if lines
            .first()
            .is_some_and(|(_, _, _, p)| p.trim() == "Invalid")
        {
            return Err(refused(
                vg_name,
                ErrorKind::Refused,
                format!("snapshot {name} overflowed and is invalid: it cannot be merged"),
            ));
        }
    }
    let open = |dm: &str| -> Result<bool> { Ok(ctl.info(dm)?.is_some_and(|i| i.open_count > 0)) };
    let origin_active = ctl.info(&origin_dm)?.is_some_and(|i| i.live_table);
    if already && origin_active && merged_in_kernel(&ctl, vg_name, name, &origin_dm)? {
        // A crash after the kernel finished the merge and before its
        // commit, or a COW device gone for another reason (removed by hand,
        // a failed activation) with exceptions still to merge: only the
        // store on disk tells, and only an empty one lets the snapshot go.
        let store = super::cow_store::read(&change.metadata.vg, &change.pv_devices(), name)
            .map_err(|e| {
                refused(
                    vg_name, ErrorKind::Refused,
                    format!(
                        "the merge of {name} into {origin} is marked, the kernel is not merging, and its exception store cannot be read ({e}): cairn does not drop the snapshot without seeing it empty; deactivate {origin} and activate it again so that the merge runs, then run this command again"
                    ),
                )
            })?;
        if store != super::cow_store::Store::Empty {
            return Err(refused(
                vg_name, ErrorKind::Refused,
                format!(
                    "the merge of {name} into {origin} is marked, but the kernel is not merging and the snapshot's exception store is {}: dropping it now would lose what is not merged; deactivate {origin} and activate it again (`cairn lv deactivate {vg_name}/{origin}`, `cairn lv activate {vg_name}/{origin}`) so that the merge runs, then run this command again",
                    match store {
                        super::cow_store::Store::Invalid => "marked invalid",
                        _ => "not empty",
                    }
                ),
            ));
        }
        if run == Run::PlanOnly {
            return Ok(vec![Action::Commit {
                vg: vg_name.to_owned(),
                seqno: change.metadata.vg.seqno,
                what: format!("merge of {name} into {origin} finished, snapshot removed"),
            }]);
        }
        return finish_merge(
            env,
            dev,
            &ctl,
            change,
            (name, &snap_lv, &origin),
            Vec::new(),
        );
    }
    let live = origin_active && !open(&origin_dm)? && !open(&snap_dm)?;
    let mut actions = Vec::new();
    if !already {
        let vg = &mut change.metadata.vg;
        if let Some(SegmentKind::Snapshot { merging, .. }) = vg
            .lv_mut(&snap_lv)
            .and_then(|l| l.segments.first_mut())
            .map(|s| &mut s.kind)
        {
            *merging = true;
        }
        if let Some(l) = vg.lv_mut(&snap_lv) {
            l.status.remove(LvStatus::VISIBLE);
        }
        actions.push(Action::Commit {
            vg: vg_name.to_owned(),
            seqno: change.metadata.vg.seqno,
            what: format!("snapshot {name} marked to merge into {origin}"),
        });
    }
    let devices = change.pv_devices();
    let plan = Planner::new(&change.metadata.vg, &devices).lv(&origin)?;
    let mut start = Vec::new();
    if live && ctl.info(&snap_dm)?.is_some() {
        start.push(Step::Unlink {
            link: names::lv_path(vg_name, name),
        });
        start.push(Step::RemoveNode {
            name: snap_dm.clone(),
        });
        start.push(Step::Remove { name: snap_dm });
    }
    if live {
        // The snapshot's own device was just taken down: the origin takes
        // the exception store over from the COW as it is on disk.
        let mut without = plan.clone();
        without.devices.retain(|d| d.lv != name);
        start.extend(engine::reload_steps(&ctl, &without, Suspend::Flush)?);
    }
    actions.extend(start.iter().cloned().map(Action::Dm));
    if run == Run::PlanOnly {
        return Ok(actions);
    }
    if !already {
        change.commit_and_continue(env)?;
    }
    if !live {
        return Ok(actions);
    }
    engine::run(&ctl, dev, &start)?;
    // Wait for the kernel: done when only the COW's metadata is left.
    let started = std::time::Instant::now();
    loop {
        let lines = ctl.status(&origin_dm)?;
        let params = lines
            .first()
            .map(|(_, _, _, p)| p.clone())
            .unwrap_or_default();
        match crate::dm::status::parse("snapshot-merge", &params) {
            Ok(crate::dm::status::TargetStatus::Snapshot(s))
                if s.sectors_allocated == s.metadata_sectors =>
            {
                break
            }
            Ok(crate::dm::status::TargetStatus::Snapshot(_)) => {}
            Ok(other) => {
                return Err(refused(
                    vg_name,
                    ErrorKind::System,
                    format!("the merge into {origin} failed ({other:?}): see dmesg"),
                ))
            }
            Err(e) => return Err(refused(vg_name, ErrorKind::Inconsistent, e.to_string())),
        }
        if started.elapsed() > MERGE_WAIT {
            return Err(refused(
                vg_name,
                ErrorKind::Busy,
                format!(
                    "the merge into {origin} is still running after an hour: run this \
                     command again to wait for it and finish it"
                ),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    finish_merge(env, dev, &ctl, change, (name, &snap_lv, &origin), actions)
}

/// The end of a merge the kernel has finished: the origin is reloaded
/// plain and the COW's device removed first, and only then does the commit
/// free the COW's extents (so no free extent is ever mapped). A crash in
/// between leaves a merging snapshot in the metadata whose exception store
/// is empty: running the merge again finds the kernel done and commits.
fn finish_merge(
    env: &Env,
    dev: &Dev,
    ctl: &Control,
    mut change: ops::Change,
    (name, snap_lv, origin): (&str, &str, &str),
    mut actions: Vec<Action>,
) -> Result<Vec<Action>> {
    let vg_name = change.metadata.vg.name.clone();
    let devices = change.pv_devices();
    let vg = &mut change.metadata.vg;
    vg.lvs.retain(|l| l.name != name && l.name != snap_lv);
    let seqno = vg.seqno;
    // The origin is plain again, or a snapshot-origin for the snapshots it
    // still has (the kernel kept them valid through the merge).
    let others = change.metadata.vg.is_snapshot_origin(origin);
    let plain = Planner::new(&change.metadata.vg, &devices).lv(origin)?;
    let mut finish = engine::reload_steps(ctl, &plain, Suspend::Flush)?;
    let layers: &[&str] = if others { &["cow"] } else { &["cow", "real"] };
    for &layer in layers {
        let owner = if layer == "cow" { name } else { origin };
        let dm = names::dm_name(&vg_name, owner, Some(layer));
        if ctl.info(&dm)?.is_some() {
            finish.push(Step::RemoveNode { name: dm.clone() });
            finish.push(Step::Remove { name: dm });
        }
    }
    engine::run(ctl, dev, &finish)?;
    actions.extend(finish.into_iter().map(Action::Dm));
    crate::failpoint::hit("merge-after-kernel");
    change.commit_and_continue(env).map_err(|e| {
        refused(
            &vg_name,
            ErrorKind::System,
            format!(
                "the merge of {name} into {origin} is done in the kernel, but committing its \
                 end failed ({e}): run this command again to finish it"
            ),
        )
    })?;
    actions.push(Action::Commit {
        vg: vg_name.clone(),
        seqno,
        what: format!("merge of {name} into {origin} finished, snapshot removed"),
    });
    Ok(actions)
}
