//! Thin LVs without lvm2: create, snapshot and remove, keeping the pool's
//! transaction id in step with the kernel exactly as lvm2 does (a mismatch
//! makes lvm2 refuse the pool: the most reported LXD/LVM failure).
//!
//! lvm2's protocol (docs/research/lvm2-ops.md §2-4), which cairn follows:
//! 1. the kernel's transaction id must equal the metadata's, N;
//! 2. commit A: the change, the pool's transaction id N+1 and the message
//!    queued in the metadata (`message1 { create = "thin" }`);
//! 3. the messages to the live thin-pool device (`create_thin D`,
//!    `create_snap D O` with the origin suspended, or `delete D`), then
//!    `set_transaction_id N N+1`;
//! 4. commit B: the queue emptied.
//!
//! A crash between 2 and 3 leaves kernel N, metadata N+1 with the message
//! queued; between 3 and 4, kernel N+1 and metadata N+1: both are states
//! lvm2 recognises and completes. An error in 3 sends what undoes the
//! messages already sent and commits the metadata of before the call again.

use crate::dm::sim::SimDm;
use crate::dm::status::{PoolMode, TargetStatus};
use crate::dm::{self, DeviceMapper, Kernel, Suspend};
use crate::error::{ErrorKind, Refusal};
use crate::meta::model::{LogicalVolume, Segment, SegmentKind, ThinMessage, VolumeGroup};
use crate::meta::ops::{self, Change, Env, OpError};
use crate::units::Bytes;

use super::action::{Run, VolumeError};
use super::activate::{activation_skip, Planner};
use super::engine::{self, Dev, Step};
use super::names;

/// The largest thin device id the kernel takes (24 bits).
pub(super) const MAX_DEVICE_ID: u64 = (1 << 24) - 1;

pub use super::action::Action;

/// Why a thin pool or thin LV operation (create, snapshot, remove, the
/// completion of a queued transaction) stopped.
#[derive(Debug, thiserror::Error)]
pub enum ThinError {
    /// The LVM operation under it (metadata, tables, device-mapper).
    #[error(transparent)]
    Volume(#[from] VolumeError),
    /// The thin operation refused (or failed and was undone), with the
    /// refusal's kind: an LV that does not exist or is not a thin pool /
    /// thin LV, a name taken, a pool out of space or needing repair, a
    /// kernel step that failed before anything stayed changed, ...
    #[error("{0}")]
    Refused(Refusal),
    #[error(
        "thin pool {pool}: the kernel's transaction id is {kernel}, the metadata's {metadata}: \
         cairn changes nothing in a pool whose metadata and kernel disagree (compare \
         `lvs -o+transaction_id` with `dmsetup status`; lvm2's `lvconvert --repair` may be \
         needed)"
    )]
    /// The pool's transaction id in the kernel and in the metadata differ:
    /// a change was half made by someone; cairn leaves the pool alone.
    TransactionMismatch {
        /// The pool (VG/POOL).
        pool: String,
        /// The kernel's transaction id.
        kernel: u64,
        /// The metadata's.
        metadata: u64,
    },
    /// The operation failed and undoing it failed too.
    #[error("{failed}; then undoing it failed too: {undo} (the metadata may show an LV the kernel does not have: check with `cairn lvs` and `dmsetup status`)")]
    UndoFailed {
        /// What failed first.
        failed: String,
        /// Why the undo failed.
        undo: String,
    },
}

impl From<OpError> for ThinError {
    fn from(e: OpError) -> Self {
        ThinError::Volume(e.into())
    }
}

impl From<dm::Error> for ThinError {
    fn from(e: dm::Error) -> Self {
        ThinError::Volume(e.into())
    }
}

impl From<engine::EngineError> for ThinError {
    fn from(e: engine::EngineError) -> Self {
        ThinError::Volume(e.into())
    }
}

impl From<super::activate::PlanError> for ThinError {
    fn from(e: super::activate::PlanError) -> Self {
        ThinError::Volume(e.into())
    }
}

pub type Result<T> = std::result::Result<T, ThinError>;

/// What to make.
#[derive(Debug, Clone)]
pub enum Request {
    /// A thin LV of `size_bytes` in `pool`.
    Volume { pool: String, size_bytes: Bytes },
    /// A snapshot of the thin LV `origin` (same pool, same size).
    Snapshot { origin: String },
}

/// `cairn thin create` / `cairn thin snapshot`.
#[derive(Debug, Clone)]
pub struct Create {
    pub vg: String,
    pub name: String,
    pub what: Request,
    /// Activate the new LV (a snapshot is made with activation skip, as
    /// lvm2 does, and stays inactive unless this is set).
    pub activate: bool,
}

pub(super) fn refused(kind: ErrorKind, msg: impl Into<String>) -> ThinError {
    ThinError::Refused(Refusal::new(kind, msg))
}

/// What the first segment of LV `name` is.
fn first_kind<'v>(vg: &'v VolumeGroup, name: &str) -> Result<Option<&'v SegmentKind>> {
    let lv = vg.lv(name).ok_or_else(|| {
        refused(
            ErrorKind::NotFound,
            format!("VG {} has no LV named {name}", vg.name),
        )
    })?;
    Ok(lv.segments.first().map(|s| &s.kind))
}

pub(super) fn thin_pool_seg(vg: &VolumeGroup, pool: &str) -> Result<(u64, u64, usize)> {
    match first_kind(vg, pool)? {
        Some(SegmentKind::ThinPool {
            transaction_id,
            chunk_size,
            messages,
            ..
        }) => Ok((*transaction_id, *chunk_size, messages.len())),
        _ => Err(refused(
            ErrorKind::InvalidInput,
            format!("{}/{pool} is not a thin pool", vg.name),
        )),
    }
}

/// A thin LV's pool and device id; `otherwise` says what to do if it is not one.
pub(super) fn thin_lv(vg: &VolumeGroup, name: &str, otherwise: &str) -> Result<(String, u64)> {
    match first_kind(vg, name)? {
        Some(SegmentKind::Thin {
            thin_pool,
            device_id,
            ..
        }) => Ok((thin_pool.clone(), *device_id)),
        _ => Err(refused(
            ErrorKind::InvalidInput,
            format!("{}/{name} is not a thin LV: {otherwise}", vg.name),
        )),
    }
}

/// The pool's transaction id, when no message of an interrupted command
/// is still queued in it.
pub(super) fn idle_pool_tid(vg: &VolumeGroup, pool: &str) -> Result<u64> {
    let (tid, _, queued) = thin_pool_seg(vg, pool)?;
    if queued > 0 {
        return Err(refused(
            ErrorKind::Refused,
            format!(
                "thin pool {}/{pool} has {queued} message(s) queued by an interrupted command: \
             activate the pool once (cairn lv activate {}/{pool}) so they are completed, then \
             retry",
                vg.name, vg.name
            ),
        ));
    }
    Ok(tid)
}

/// Queues `message` in the pool's metadata and moves its transaction id
/// from `tid` to `tid + 1` (one step per batch of messages, as lvm2).
pub(super) fn queue_message(vg: &mut VolumeGroup, pool: &str, tid: u64, message: ThinMessage) {
    if let SegmentKind::ThinPool {
        transaction_id,
        messages,
        ..
    } = pool_seg_mut(vg, pool)
    {
        *transaction_id = tid + 1;
        messages.push(message);
    }
}

fn pool_seg_mut<'v>(vg: &'v mut VolumeGroup, pool: &str) -> &'v mut SegmentKind {
    &mut vg
        .lv_mut(pool)
        .expect("pool checked")
        .segments
        .first_mut()
        .expect("pool segment checked")
        .kind
}

/// The device id of each thin LV of the pool.
pub(super) fn device_ids(vg: &VolumeGroup, pool: &str) -> Vec<(String, u64)> {
    vg.lvs
        .iter()
        .filter_map(|lv| match lv.segments.first().map(|s| &s.kind) {
            Some(SegmentKind::Thin {
                thin_pool,
                device_id,
                ..
            }) if thin_pool == pool => Some((lv.name.clone(), *device_id)),
            _ => None,
        })
        .collect()
}

/// The pool's thin-pool target: its name, and its status when active.
fn pool_state(
    ctl: &dyn DeviceMapper,
    vg: &VolumeGroup,
    pool: &str,
) -> Result<(String, Option<crate::dm::status::ThinPoolStatus>)> {
    let (tid, _, _) = thin_pool_seg(vg, pool)?;
    let name = if tid == 0 {
        names::dm_name(&vg.name, pool, None)
    } else {
        names::dm_name(&vg.name, pool, Some("tpool"))
    };
    let Some(info) = ctl.info(&name)? else {
        return Ok((name, None));
    };
    if !info.live_table {
        return Ok((name, None));
    }
    let lines = ctl.status(&name)?;
    let (_, _, target, params) = lines
        .first()
        .ok_or_else(|| refused(ErrorKind::Inconsistent, format!("{name} has no table")))?;
    match crate::dm::status::parse(target, params) {
        Ok(TargetStatus::ThinPool(st)) => Ok((name, Some(st))),
        Ok(TargetStatus::Failed) | Ok(TargetStatus::Error) => Err(refused(
            ErrorKind::Inconsistent,
            format!(
                "thin pool {}/{pool} has failed (the kernel reports {target} status {params:?}): \
             nothing was changed; see `dmesg`",
                vg.name
            ),
        )),
        Ok(_) => Err(refused(
            ErrorKind::Inconsistent,
            format!("{name} is not a thin-pool device"),
        )),
        Err(e) => Err(refused(ErrorKind::Inconsistent, e.to_string())),
    }
}

/// Refuses pools the kernel will not take messages for.
fn check_usable(
    vg: &str,
    pool: &str,
    st: &crate::dm::status::ThinPoolStatus,
    creating: bool,
) -> Result<()> {
    use ErrorKind::{Inconsistent, NoSpace};
    let why = if st.needs_check {
        Some((
            Inconsistent,
            "needs a metadata check (needs_check is set): run thin_check / lvconvert --repair",
        ))
    } else if st.mode == PoolMode::ReadOnly {
        Some((
            Inconsistent,
            "has read-only metadata (the kernel switched it after an error): repair it first",
        ))
    } else if creating && st.mode == PoolMode::OutOfDataSpace {
        Some((NoSpace, "is out of data space: extend it first"))
    } else if creating && st.metadata_used >= st.metadata_total {
        Some((NoSpace, "is out of metadata space: extend its metadata first (cairn thinpool extend --poolmetadatasize +SIZE)"))
    } else {
        None
    };
    match why {
        Some((kind, why)) => Err(refused(
            kind,
            format!("thin pool {vg}/{pool} {why}; nothing was changed"),
        )),
        None => Ok(()),
    }
}

/// `lvcreate -V S -T vg/pool -n name` and `lvcreate -s vg/thin -n name`.
pub fn create(env: &Env, dev: &Dev, req: &Create, run: Run) -> Result<Vec<Action>> {
    create_in(Kernel::Host(dev.udev_wait), env, dev, req, run)
}

/// [`create`] on a given kernel.
pub fn create_in(
    kernel: Kernel,
    env: &Env,
    dev: &Dev,
    req: &Create,
    run: Run,
) -> Result<Vec<Action>> {
    ops::check_lv_name(&req.name)?;
    let mut change = ops::begin_change(env, &req.vg, &[])?;
    let vg = &change.metadata.vg;
    if vg.lv(&req.name).is_some() {
        return Err(refused(
            ErrorKind::AlreadyExists,
            format!(
                "VG {} already has an LV named {}: choose another name",
                req.vg, req.name
            ),
        ));
    }
    // Pool, size and origin.
    let (pool, extents, origin) = match &req.what {
        Request::Volume {
            pool,
            size_bytes: Bytes(size_bytes),
        } => {
            let (_, chunk, _) = thin_pool_seg(vg, pool)?;
            if *size_bytes == 0 {
                return Err(refused(
                    ErrorKind::InvalidInput,
                    "a thin LV needs a size above 0",
                ));
            }
            // lvm2 rounds a thin LV up to whole pool chunks too.
            let extents = super::inspect::thin_extents(*size_bytes, vg.extent_bytes(), chunk * 512);
            (pool.clone(), extents, None)
        }
        Request::Snapshot { origin } => {
            let (pool, origin_id) = thin_lv(
                vg,
                origin,
                "cairn makes thin snapshots of thin LVs (thick snapshots: a later cairn)",
            )?;
            let extents = vg.lv(origin).map_or(0, |o| o.extent_count());
            (pool, extents, Some((origin.clone(), origin_id)))
        }
    };
    let tid = idle_pool_tid(vg, &pool)?;
    let ids = device_ids(vg, &pool);
    let device_id = ids.iter().map(|(_, id)| *id).max().unwrap_or(0) + 1;
    if device_id > MAX_DEVICE_ID {
        return Err(refused(
            ErrorKind::NoSpace,
            format!(
                "thin pool {}/{pool} has used every device id up to {MAX_DEVICE_ID}",
                req.vg
            ),
        ));
    }

    // The new metadata: the LV, the pool's transaction id and queue.
    let segment = thin_segment(
        &pool,
        extents,
        tid,
        device_id,
        origin.as_ref().map(|(o, _)| o.clone()),
    );
    let mut lv: LogicalVolume = ops::new_lv(&req.name, vec![segment])?;
    if origin.is_some() {
        lv.flags.push("ACTIVATION_SKIP".to_owned());
    }
    let vg = &mut change.metadata.vg;
    vg.lvs.push(lv);
    queue_message(vg, &pool, tid, ThinMessage::Create(req.name.clone()));
    let message = match &origin {
        Some((_, origin_id)) => format!("create_snap {device_id} {origin_id}"),
        None => format!("create_thin {device_id}"),
    };
    let size = crate::units::human(extents * change.metadata.vg.extent_bytes());
    let what = match &origin {
        Some((o, _)) => format!(
            "thin snapshot {} of {o} ({size}, device id {device_id})",
            req.name
        ),
        None => format!("thin LV {} ({size}, device id {device_id})", req.name),
    };
    // An active origin is suspended (with a flush) while the pool snapshots it.
    let suspend = origin
        .as_ref()
        .map(|(o, _)| names::dm_name(&req.vg, o, None));
    let activate = req.activate
        || !change
            .metadata
            .vg
            .lv(&req.name)
            .is_some_and(activation_skip);
    transact(
        kernel,
        env,
        dev,
        &mut change,
        &pool,
        Tx {
            what,
            messages: vec![message],
            undo: vec![format!("delete {device_id}")],
            suspend: suspend.into_iter().map(|o| (o, Suspend::Flush)).collect(),
            activate: activate.then(|| req.name.clone()).into_iter().collect(),
            deactivate: None,
            window: &mut no_window,
        },
        run,
    )
}

/// The one segment of a thin LV of `extents` in `pool`, made at pool
/// transaction `tid` as device `device_id`, a snapshot of `origin` if given.
pub(super) fn thin_segment(
    pool: &str,
    extents: u64,
    tid: u64,
    device_id: u64,
    origin: Option<String>,
) -> Segment {
    Segment {
        start_extent: 0,
        extent_count: extents,
        reshape_count: None,
        type_flags: vec![],
        tags: vec![],
        kind: SegmentKind::Thin {
            thin_pool: pool.to_owned(),
            transaction_id: tid,
            device_id,
            external_origin: None,
            origin,
            merge: None,
        },
        extra: Default::default(),
    }
}

/// `lvremove vg/thin`: refused while the LV is open.
pub fn remove(env: &Env, dev: &Dev, vg_name: &str, name: &str, run: Run) -> Result<Vec<Action>> {
    remove_in(Kernel::Host(dev.udev_wait), env, dev, vg_name, name, run)
}

/// [`remove`] on a given kernel.
pub fn remove_in(
    kernel: Kernel,
    env: &Env,
    dev: &Dev,
    vg_name: &str,
    name: &str,
    run: Run,
) -> Result<Vec<Action>> {
    let mut change = ops::begin_change(env, vg_name, &[])?;
    let vg = &change.metadata.vg;
    let (pool, device_id) = thin_lv(vg, name, "cairn lv remove removes thin LVs only, so far")?;
    let tid = idle_pool_tid(vg, &pool)?;
    let vg = &mut change.metadata.vg;
    vg.lvs.retain(|l| l.name != name);
    // Snapshots of the removed LV become plain thin LVs (lvm2 does the same).
    for l in &mut vg.lvs {
        if let Some(SegmentKind::Thin { origin, .. }) = l.segments.first_mut().map(|s| &mut s.kind)
        {
            if origin.as_deref() == Some(name) {
                *origin = None;
            }
        }
    }
    queue_message(vg, &pool, tid, ThinMessage::Delete(device_id as i64));
    transact(
        kernel,
        env,
        dev,
        &mut change,
        &pool,
        Tx {
            what: format!("remove thin LV {name} (device id {device_id})"),
            messages: vec![format!("delete {device_id}")],
            undo: vec![],
            suspend: vec![],
            activate: vec![],
            deactivate: Some(name.to_owned()),
            window: &mut no_window,
        },
        run,
    )
}

/// One pool transaction: see the module comment.
pub(super) struct Tx<'w> {
    pub(super) what: String,
    /// Messages before `set_transaction_id`.
    pub(super) messages: Vec<String>,
    /// What undoes the messages, if the transaction fails after them.
    pub(super) undo: Vec<String>,
    /// Devices to suspend around the messages (snapshots' origins), and how.
    pub(super) suspend: Vec<(String, Suspend)>,
    /// LVs to activate once done.
    pub(super) activate: Vec<String>,
    /// An LV to deactivate before anything else (a removal).
    pub(super) deactivate: Option<String>,
    /// Called around the suspends (see [`Window`]).
    pub(super) window: &'w mut WindowHook<'w>,
}

/// The edges of the window in which a transaction's origins are suspended:
/// a caller that must hold something still for that instant (freeze
/// containers) opens it at [`Window::Open`] and releases it at
/// [`Window::Close`], which always follows an Open that succeeded. Only
/// when the transaction is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Before the first origin is suspended (after commit A and the
    /// pool's activation: the window holds only the kernel's part).
    Open,
    /// After the last origin is resumed, or the transaction failed.
    Close,
}

/// What to call at the window's edges: Err from Open stops the
/// transaction before any suspend (and undoes commit A).
pub type WindowHook<'a> = dyn FnMut(Window) -> std::result::Result<(), String> + 'a;

/// A transaction without a window.
fn no_window(_: Window) -> std::result::Result<(), String> {
    Ok(())
}

pub(super) fn transact(
    kernel: Kernel,
    env: &Env,
    dev: &Dev,
    change: &mut Change,
    pool: &str,
    tx: Tx<'_>,
    run: Run,
) -> Result<Vec<Action>> {
    let window = tx.window;
    let vg_name = change.metadata.vg.name.clone();
    let host = kernel.open()?;
    let old = change.committed().clone();
    let old_tid = thin_pool_seg(&old.vg, pool)?.0;
    let new_tid = old_tid + 1;
    let creating = !tx.activate.is_empty() || tx.deactivate.is_none();
    let apply = run == Run::Apply;
    let mut actions = Vec::new();

    // The kernel must agree with the metadata before anything changes.
    let (before_name, before) = pool_state(&*host, &old.vg, pool)?;
    if let Some(st) = &before {
        if st.transaction_id != old_tid {
            return Err(ThinError::TransactionMismatch {
                pool: format!("{vg_name}/{pool}"),
                kernel: st.transaction_id,
                metadata: old_tid,
            });
        }
        check_usable(&vg_name, pool, st, creating)?;
    }
    // Metadata commits, written only when applying.
    let commit = |change: &mut Change| -> Result<()> {
        if apply {
            change.commit_and_continue(env)?;
        } else {
            change.metadata.vg.seqno += 1;
        }
        Ok(())
    };
    let crash_point = |point: &str| {
        if apply {
            crate::failpoint::hit(point);
        }
    };
    let devices = change.pv_devices();
    let config =
        super::config::LvmConfig::for_vg(&env.lvm_dir, &old.vg).map_err(VolumeError::from)?;
    let planner = |vg| Planner::new(vg, &devices).with_config(config);
    // After commit A the pool's target is under its new layout.
    let new_plan = planner(&change.metadata.vg).thin_pool_target(pool)?;
    // A plan is the transaction run on a copy of the devices it touches:
    // what it prints is what apply does, with the values apply would use.
    let copy = match apply {
        true => None,
        false => {
            let mut planned = planner(&old.vg).thin_pool_target(pool)?.devices;
            planned.extend(new_plan.devices.iter().cloned());
            if let Some(lv) = &tx.deactivate {
                planned.extend(planner(&old.vg).lv(lv)?.devices);
            }
            for lv in &tx.activate {
                planned.extend(planner(&change.metadata.vg).lv(lv)?.devices);
            }
            let mut names: Vec<(String, Option<String>)> =
                planned.into_iter().map(|d| (d.name, d.link)).collect();
            names.extend(tx.suspend.iter().map(|(o, _)| (o.clone(), None)));
            let disks: Vec<std::path::PathBuf> = devices.iter().flatten().cloned().collect();
            Some(SimDm::copy_of(&*host, &dev.root, &names, &disks)?)
        }
    };
    let ctl: &dyn DeviceMapper = match &copy {
        Some(copy) => copy,
        None => &*host,
    };

    // A removal deactivates the LV first (refused while it is open).
    let mut deactivation = Vec::new();
    if let Some(lv) = &tx.deactivate {
        let plan = planner(&old.vg).lv(lv)?;
        // Only the LV's own device: the pool stays up for the message.
        let own = super::activate::Plan {
            devices: plan.devices.into_iter().filter(|d| d.lv == *lv).collect(),
            partial: vec![],
        };
        deactivation = engine::deactivation_steps(ctl, &own, std::slice::from_ref(lv))?;
    }
    // A new pool (transaction id 0) active under its first layout is taken
    // down: with id 1 it gets lvm2's -tpool layout.
    let mut relayout = Vec::new();
    if old_tid == 0 && before.is_some() {
        let plan = planner(&old.vg).thin_pool_target(pool)?;
        relayout = engine::deactivation_steps(ctl, &plan, &[pool.to_owned()])?;
        if relayout
            .iter()
            .all(|s| !matches!(s, Step::Remove { name } if *name == before_name))
        {
            return Err(refused(
                ErrorKind::Busy,
                format!(
                    "thin pool {vg_name}/{pool} is open: it cannot take its first thin LV while \
                 something uses the pool device itself"
                ),
            ));
        }
    }
    let target = new_plan
        .devices
        .last()
        .expect("a thin pool plan ends with its target")
        .name
        .clone();

    engine::run(ctl, dev, &deactivation)?;
    engine::run(ctl, dev, &relayout)?;
    actions.extend(deactivation.into_iter().map(Action::Dm));
    actions.extend(relayout.into_iter().map(Action::Dm));
    // Commit A.
    actions.push(Action::Commit {
        vg: vg_name.clone(),
        seqno: change.metadata.vg.seqno,
        what: format!(
            "{}; pool {pool} transaction id {old_tid} -> {new_tid}, message queued",
            tx.what
        ),
    });
    commit(change)?;
    crash_point("thin-after-commit-a");
    // `kind` is the failure's: what was done is undone, so it is what the
    // caller sees (unless the undo fails too).
    let undo_metadata = |change: &mut Change, kind: ErrorKind, failed: String| -> ThinError {
        if !apply {
            return refused(kind, failed);
        }
        let mut back = old.clone();
        back.vg.seqno = change.metadata.vg.seqno;
        change.metadata = back;
        match change.commit_and_continue(env) {
            Ok(()) => refused(kind, format!("{failed}; the metadata was restored")),
            Err(e) => ThinError::UndoFailed {
                failed,
                undo: e.to_string(),
            },
        }
    };
    // The pool's target, up under the new layout.
    let steps = match engine::activation_steps(ctl, dev, &new_plan) {
        Ok(s) => s,
        Err(e) => return Err(undo_metadata(change, ErrorKind::System, e.to_string())),
    };
    if let Err(e) = engine::run(ctl, dev, &steps) {
        return Err(undo_metadata(change, ErrorKind::System, e.to_string()));
    }
    actions.extend(steps.into_iter().map(Action::Dm));
    if let Some(copy) = &copy {
        // The copy does not read the pool's metadata: it learns from the
        // VG's what the kernel reads from the pool's (checked above when
        // the pool was active).
        copy.with_pool(&target, |p| {
            p.transaction_id = old_tid;
            p.thins = device_ids(&old.vg, pool)
                .into_iter()
                .map(|(_, id)| id)
                .collect();
        });
    }
    let (_, now) = pool_state(ctl, &change.metadata.vg, pool)?;
    let kernel = now.as_ref().map(|s| s.transaction_id);
    if kernel != Some(old_tid) {
        let e = ThinError::TransactionMismatch {
            pool: format!("{vg_name}/{pool}"),
            kernel: kernel.unwrap_or(u64::MAX),
            metadata: old_tid,
        };
        return Err(undo_metadata(
            change,
            ErrorKind::Inconsistent,
            e.to_string(),
        ));
    }
    if let Some(st) = &now {
        if let Err(e) = check_usable(&vg_name, pool, st, creating) {
            let kind = match &e {
                ThinError::Refused(r) => r.kind,
                _ => ErrorKind::Refused,
            };
            return Err(undo_metadata(change, kind, e.to_string()));
        }
    }

    let mut messages: Vec<String> = tx.messages.clone();
    messages.push(format!("set_transaction_id {old_tid} {new_tid}"));
    // The messages, with the origins of snapshots suspended, inside the
    // caller's window.
    let mut to_suspend = Vec::new();
    for (origin, how) in &tx.suspend {
        if ctl.info(origin)?.is_some() {
            to_suspend.push((origin.clone(), *how));
        }
    }
    if apply {
        if let Err(why) = window(Window::Open) {
            window(Window::Close).ok();
            return Err(undo_metadata(change, ErrorKind::Busy, why));
        }
    }
    let mut suspended = Vec::new();
    let mut failure = None;
    for (origin, how) in &to_suspend {
        match ctl.suspend(origin, *how) {
            Ok(()) => {
                actions.push(Action::Dm(Step::Suspend {
                    name: origin.clone(),
                    how: *how,
                }));
                suspended.push(origin.clone());
            }
            Err(e) => {
                // A suspend that failed may have suspended all the same.
                let _ = ctl.resume(origin);
                failure = Some(e.to_string());
                break;
            }
        }
    }
    let mut sent = 0;
    let messages_to_send = if failure.is_none() {
        &messages[..]
    } else {
        &[]
    };
    for m in messages_to_send {
        if m.starts_with("set_transaction_id") {
            crash_point("thin-before-transaction-id");
        }
        if let Some(id) = created_id(m) {
            // A create whose undo failed earlier (an ignored delete after a
            // failed set_transaction_id) left the id in the kernel while the
            // metadata was restored without it: the create would fail with
            // EEXIST from then on. The id is new in this transaction, so
            // nothing uses such a device: it goes first, as libdm does;
            // "no such device" is the usual answer.
            let delete = format!("delete {id}");
            match ctl.message(&target, &delete) {
                Ok(_) => actions.push(Action::Dm(Step::Message {
                    name: target.clone(),
                    message: delete,
                })),
                Err(e) if e.errno() == Some(nix::libc::ENODATA) => {}
                Err(e) => {
                    failure = Some(format!("{delete}: {e}"));
                    break;
                }
            }
        }
        match ctl.message(&target, m) {
            Ok(_) => {
                actions.push(Action::Dm(Step::Message {
                    name: target.clone(),
                    message: m.clone(),
                }));
                sent += 1;
            }
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    for origin in suspended.iter().rev() {
        let resumed = ctl.resume(origin);
        actions.push(Action::Dm(Step::Resume {
            name: origin.clone(),
        }));
        if let (Err(e), None) = (resumed, &failure) {
            failure = Some(format!("resume of {origin}: {e}"));
        }
    }
    if apply {
        if let Err(why) = window(Window::Close) {
            crate::warnings::record(format!("after the snapshot: {why}"));
        }
    }
    if let Some(failed) = failure {
        // Undo the messages the kernel took (never the transaction id: it
        // only moves once all of them are in).
        if sent > 0 && sent < messages.len() {
            for u in &tx.undo {
                let _ = ctl.message(&target, u);
            }
        }
        if sent == messages.len() {
            // Everything reached the kernel; only the resume failed.
            return Err(refused(ErrorKind::System, failed));
        }
        if messages[..sent].iter().any(|m| m.starts_with("delete ")) {
            // A thin device the kernel deleted cannot come back: restoring
            // the metadata would bring back an LV with no device. The
            // metadata keeps the removal queued (commit A), and the pool's
            // next activation finishes it.
            return Err(refused(
                ErrorKind::System,
                format!(
                    "{failed}; the pool has already deleted the thin device, so the removal stays \
                 queued in the metadata and completes on the pool's next activation \
                 (`cairn lv activate {vg_name}/{pool}`)"
                ),
            ));
        }
        return Err(undo_metadata(change, ErrorKind::System, failed));
    }

    crash_point("thin-after-messages");
    // Commit B: the queue emptied.
    if let SegmentKind::ThinPool { messages, .. } = pool_seg_mut(&mut change.metadata.vg, pool) {
        messages.clear();
    }
    actions.push(Action::Commit {
        vg: vg_name.clone(),
        seqno: change.metadata.vg.seqno,
        what: "pool message done, queue emptied".to_owned(),
    });
    commit(change)?;

    for lv in &tx.activate {
        let plan = Planner::new(&change.metadata.vg, &devices)
            .with_config(config)
            .lv(lv)?;
        let steps = engine::activation_steps(ctl, dev, &plan)?;
        engine::run(ctl, dev, &steps)?;
        actions.extend(steps.into_iter().map(Action::Dm));
    }
    Ok(actions)
}

/// Completes what an interrupted command left queued in `pool` (commit A
/// done, its messages perhaps not sent), as lvm2 does when the pool is
/// next activated: the pool's target comes up; if the kernel is still one
/// transaction behind the metadata, the queued messages and
/// `set_transaction_id` are sent (they were not); if it is level, they
/// were; anything else is a mismatch nothing is done about. Then the queue
/// is committed empty. Returns what was done.
pub fn complete_queued(env: &Env, dev: &Dev, vg_name: &str, pool: &str) -> Result<Vec<Action>> {
    complete_queued_in(Kernel::Host(dev.udev_wait), env, dev, vg_name, pool)
}

/// [`complete_queued`] on a given kernel.
pub fn complete_queued_in(
    kernel: Kernel,
    env: &Env,
    dev: &Dev,
    vg_name: &str,
    pool: &str,
) -> Result<Vec<Action>> {
    let mut change = ops::begin_change(env, vg_name, &[])?;
    let vg = &change.metadata.vg;
    let (tid, _, queued) = thin_pool_seg(vg, pool)?;
    let mut actions = Vec::new();
    if queued == 0 {
        return Ok(actions);
    }
    let SegmentKind::ThinPool { messages, .. } = first_kind(vg, pool)?.expect("a pool") else {
        unreachable!("thin_pool_seg checked")
    };
    // The kernel's words for the queued ones; a snapshot's origin is
    // suspended around its create_snap when active.
    // (message, whether "no such device" is its expected, harmless failure)
    let mut kernel_messages: Vec<(String, bool)> = Vec::new();
    let mut suspend = None;
    for m in messages {
        match m {
            ThinMessage::Create(name) => match first_kind(vg, name)? {
                Some(SegmentKind::Thin {
                    device_id, origin, ..
                }) => {
                    // The interrupted run may have sent this create before
                    // it stopped (the transaction id moves only after all
                    // messages): the kernel then has the device, and a
                    // second create fails with EEXIST, blocking the pool.
                    // The id is new in this transaction, so nothing uses
                    // the device yet: delete it (an error when absent is
                    // expected) and create it again, as libdm does.
                    kernel_messages.push((format!("delete {device_id}"), true));
                    match origin {
                        Some(o) => {
                            let (_, origin_id) =
                                thin_lv(vg, o, "a snapshot's origin must be thin")?;
                            kernel_messages.push((format!("create_snap {device_id} {origin_id}"), false));
                            suspend = Some(names::dm_name(vg_name, o, None));
                        }
                        None => kernel_messages.push((format!("create_thin {device_id}"), false)),
                    }
                }
                _ => {
                    return Err(refused(ErrorKind::Inconsistent, format!(
                        "pool {vg_name}/{pool} has a queued create of {name}, which is not a thin LV of it: repair the metadata with lvm2"
                    )))
                }
            },
            // The interrupted run may have sent it: the device is gone,
            // which is what the delete is for.
            ThinMessage::Delete(id) => kernel_messages.push((format!("delete {id}"), true)),
        }
    }
    let from = tid.checked_sub(1).ok_or_else(|| {
        refused(
            ErrorKind::Inconsistent,
            format!("pool {vg_name}/{pool} has messages at transaction id 0"),
        )
    })?;
    kernel_messages.push((format!("set_transaction_id {from} {tid}"), false));
    let ctl = kernel.open()?;
    let ctl = &*ctl;
    let devices = change.pv_devices();
    let config = super::config::LvmConfig::for_vg(&env.lvm_dir, vg).map_err(VolumeError::from)?;
    let plan = Planner::new(vg, &devices)
        .with_config(config)
        .thin_pool_target(pool)?;
    let target = plan.devices.last().expect("a pool's target").name.clone();
    let up = engine::activation_steps(ctl, dev, &plan)?;
    engine::run(ctl, dev, &up)?;
    actions.extend(up.into_iter().map(Action::Dm));
    let (_, st) = pool_state(ctl, vg, pool)?;
    let now = st.map(|s| s.transaction_id).unwrap_or(u64::MAX);
    if now == from {
        let suspended = match &suspend {
            Some(o) if ctl.info(o)?.is_some() => {
                ctl.suspend(o, Suspend::Flush)?;
                Some(o.clone())
            }
            _ => None,
        };
        let mut failed = None;
        for (m, may_fail) in &kernel_messages {
            match ctl.message(&target, m) {
                // dm-thin's answer to a delete of an id it does not have.
                Err(e) if *may_fail && e.errno() == Some(nix::libc::ENODATA) => continue,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
                Ok(_) => {}
            }
            actions.push(Action::Dm(Step::Message {
                name: target.clone(),
                message: m.clone(),
            }));
        }
        if let Some(o) = suspended {
            ctl.resume(&o)?;
        }
        if let Some(e) = failed {
            return Err(e.into());
        }
    } else if now != tid {
        return Err(ThinError::TransactionMismatch {
            pool: format!("{vg_name}/{pool}"),
            kernel: now,
            metadata: tid,
        });
    }
    if let SegmentKind::ThinPool { messages, .. } = pool_seg_mut(&mut change.metadata.vg, pool) {
        messages.clear();
    }
    actions.push(Action::Commit {
        vg: vg_name.to_owned(),
        seqno: change.metadata.vg.seqno,
        what: format!("pool {pool}: queued messages done, queue emptied"),
    });
    change.commit(env, &[])?.deferring_warnings();
    Ok(actions)
}

/// The device id a `create_thin`/`create_snap` message makes.
fn created_id(message: &str) -> Option<&str> {
    let mut words = message.split_whitespace();
    match words.next()? {
        "create_thin" | "create_snap" => words.next(),
        _ => None,
    }
}

#[cfg(test)]
#[path = "thin_tests.rs"]
mod tests;
