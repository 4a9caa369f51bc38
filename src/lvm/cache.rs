//! dm-cache without lvm2: cache pools, attaching one to an LV (the seed's
//! `lvconvert --type cache`), detaching it with its dirty blocks flushed
//! first, as lvm2 2.03.16 does (docs/research/lvm2-ops.md §6):
//!
//! - a cache pool is `<pool>` (segment `cache-pool`) over `<pool>_cdata`
//!   and `<pool>_cmeta`, laid out after the VG's pool metadata spare:
//!   spare, metadata, data. The metadata is zeroed whole through a private
//!   device while its extents are still free, so the one commit that makes
//!   the pool never points at stale metadata, and a crash before it leaves
//!   nothing behind;
//! - attaching renames the pool `<pool>_cpool` (and its sub-LVs), moves the
//!   LV's segments to a new hidden `<lv>_corig`, gives the LV one `cache`
//!   segment and the pool lvm2's defaults (metadata format 2, policy smq,
//!   writethrough); the first 4 KiB of the pool metadata are zeroed first
//!   (a pool detached earlier still describes its old origin). An active LV
//!   is reloaded live: the new layers come up, then the LV is suspended
//!   with a flush and resumed as a cache;
//! - detaching: while the LV is active and the cache may hold dirty blocks
//!   (writeback, or any dirty count), the policy becomes `cleaner` (a
//!   commit and a reload) and cairn waits until the kernel reports no dirty
//!   block; then the LV takes its origin's segments back, is reloaded as
//!   linear and the cache layers are removed. The pool is kept (renamed
//!   back, as `--splitcache`) or removed (as `--uncache`): in a second
//!   commit, once no device maps its extents. Between the two the pool
//!   carries the tag `cairn:uncache:<lv>`, so that the same command run
//!   after a crash there finds it and finishes the removal. A cache the
//!   kernel reports failed, read-only or needing a check is not detached
//!   while it may hold dirty blocks (a failed writethrough cache is, with
//!   lvm2's warning: it holds none).

use std::path::PathBuf;
use std::time::Duration;

use crate::dm::status::{self, TargetStatus};
use crate::dm::{Control, Suspend};
use crate::meta::alloc;
use crate::meta::model::{CacheSettings, LvStatus, Segment, SegmentKind, VolumeGroup};
use crate::meta::ops::{self, Env};
use crate::units::Bytes;

use super::action::{alloc_refused, find_lv, refused, Action, Run, VolumeError};
use super::activate::{PlannedDevice, Planner};
use super::cache_switch;
use super::config::LvmConfig;
use super::engine::{self, Dev, Step};
use super::names;
use crate::error::ErrorKind;

pub type Result<T> = std::result::Result<T, VolumeError>;

/// 64 KiB, lvm2's default cache chunk; also the unit chunks come in.
const DEFAULT_CHUNK: u64 = 128;
const MIN_CHUNK: u64 = 64;
/// 1 GiB, dm-cache's largest block.
const MAX_CHUNK: u64 = 2_097_152;
/// lvm2's allocation/cache_pool_max_chunks default.
const MAX_CHUNKS: u64 = 1_000_000;
/// 16 GiB: lvm2's largest cache pool metadata, in sectors.
const MAX_METADATA: u64 = 33_554_432;
/// lvm2's estimate per cached chunk (mapping 16 + hint 20 + hint overhead
/// 8 bytes) over a fixed 4 MiB (thin-provisioning-tools'
/// cache_metadata_size agrees).
const BYTES_PER_CHUNK: u64 = 44;
const TRANSACTION_OVERHEAD: u64 = 4 << 20;

/// The cache modes dm-cache knows.
pub const MODES: [&str; 3] = ["writethrough", "writeback", "passthrough"];
/// The policies cairn lets users choose (dm-cache also has `cleaner`,
/// which only detaching uses).
pub const POLICIES: [&str; 2] = ["smq", "mq"];

fn check_mode(vg: &str, mode: &Option<String>, policy: &Option<String>) -> Result<()> {
    if let Some(m) = mode {
        if !MODES.contains(&m.as_str()) {
            return Err(refused(
                vg,
                ErrorKind::InvalidInput,
                format!("cache mode {m:?} is not one of {}", MODES.join(", ")),
            ));
        }
    }
    if let Some(p) = policy {
        if !POLICIES.contains(&p.as_str()) {
            return Err(refused(
                vg,
                ErrorKind::InvalidInput,
                format!("cache policy {p:?} is not one of {}", POLICIES.join(", ")),
            ));
        }
    }
    Ok(())
}

/// (chunk, metadata) in sectors for a cache pool of `data` sectors, as
/// lvm2's update_cache_pool_params chooses them; `Err` holds the reason a
/// given chunk cannot serve.
pub fn sizes(
    data: u64,
    extent: u64,
    chunk: Option<u64>,
    metadata: Option<u64>,
) -> std::result::Result<(u64, u64), String> {
    let min_chunk = data.div_ceil(MAX_CHUNKS).div_ceil(MIN_CHUNK).max(1) * MIN_CHUNK;
    let chunk = match chunk {
        None => DEFAULT_CHUNK.max(min_chunk.next_power_of_two()),
        Some(c) if c < min_chunk => {
            return Err(format!(
                "chunk size {} is less than the {} a cache pool of {} needs (at most {MAX_CHUNKS} \
                 chunks): give a larger -c",
                crate::units::human(c * 512),
                crate::units::human(min_chunk * 512),
                crate::units::human(data * 512)
            ))
        }
        Some(c) => c,
    };
    if !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk) || chunk % MIN_CHUNK != 0 {
        return Err("a cache chunk is 32 KiB to 1 GiB, a multiple of 32 KiB".into());
    }
    if chunk > data {
        return Err("the cache pool is smaller than one chunk".into());
    }
    let round = |s: u64| s.div_ceil(extent) * extent;
    let min_md = round((TRANSACTION_OVERHEAD + (data / chunk) * BYTES_PER_CHUNK).div_ceil(512));
    let md = metadata.map_or(min_md, round).max(min_md).min(MAX_METADATA);
    Ok((chunk, md))
}

/// `cairn cache create` (as `lvcreate --type cache-pool -L SIZE -n POOL VG [PV...]`).
#[derive(Debug, Clone)]
pub struct NewCachePool {
    /// The volume group to create it in.
    pub vg: String,
    /// The cache pool LV's name.
    pub name: String,
    /// The cache data LV's size (`_cdata`), in bytes, rounded up to
    /// extents.
    pub data_bytes: Bytes,
    /// The cache metadata LV's size (`_cmeta`), in bytes; None: the
    /// smallest lvm2 allows for the data size and chunk.
    pub metadata_bytes: Option<Bytes>,
    /// The cache block, in bytes; None: lvm2's choice for the data size.
    pub chunk_bytes: Option<Bytes>,
    /// `writethrough`, `writeback` or `passthrough`.
    /// Stored on the pool only when given (lvm2 leaves unset ones to attach).
    pub mode: Option<String>,
    /// `smq` or `mq`; stored only when given, like `mode`.
    pub policy: Option<String>,
    /// The PVs to allocate on (device paths); empty: any PV of the VG.
    pub pvs: Vec<PathBuf>,
}

pub fn create_pool(env: &Env, dev: &Dev, req: &NewCachePool, run: Run) -> Result<Vec<Action>> {
    let vg_name = req.vg.as_str();
    ops::check_lv_name(&req.name)?;
    check_mode(vg_name, &req.mode, &req.policy)?;
    let mut change = ops::begin_change(env, vg_name, &req.pvs)?;
    let meta_name = format!("{}_cmeta", req.name);
    let data_name = format!("{}_cdata", req.name);
    for n in [&req.name, &meta_name, &data_name] {
        if change.metadata.vg.lv(n).is_some() {
            return Err(refused(
                vg_name,
                ErrorKind::AlreadyExists,
                format!("already has an LV named {n}"),
            ));
        }
    }
    let on = super::extents::pv_indices(&change, &req.pvs)?;
    let vg = &mut change.metadata.vg;
    let extent = vg.extent_size;
    let data_extents = req.data_bytes.extents_ceil(vg.extent_bytes()).0;
    if data_extents == 0 {
        return Err(refused(
            vg_name,
            ErrorKind::InvalidInput,
            "cannot hold a cache pool of 0 bytes: give -L".into(),
        ));
    }
    let (chunk, md_sectors) = sizes(
        data_extents * extent,
        extent,
        req.chunk_bytes.map(|b| b.sectors().0),
        req.metadata_bytes.map(|b| b.sectors().0),
    )
    .map_err(|why| refused(vg_name, ErrorKind::InvalidInput, why))?;
    let md_extents = md_sectors / extent;
    let mut what = vec![format!(
        "cache pool {} ({} data, {} metadata, chunk {})",
        req.name,
        crate::units::human(data_extents * extent * 512),
        crate::units::human(md_extents * extent * 512),
        crate::units::human(chunk * 512)
    )];
    // lvm2's order: the spare, the metadata, then the data.
    what.extend(super::pool::ensure_spare(vg, md_extents, on.as_deref())?);
    let meta_runs = alloc::allocate(vg, md_extents, on.as_deref(), None)
        .map_err(|e| alloc_refused(vg_name, e))?;
    let mut cmeta = ops::new_lv(&meta_name, alloc::linear_segments(&meta_runs))?;
    let mut scratch = vg.clone();
    scratch.lvs.push(cmeta.clone());
    let data_runs = alloc::allocate(&scratch, data_extents, on.as_deref(), None)
        .map_err(|e| alloc_refused(vg_name, e))?;
    let mut cdata = ops::new_lv(&data_name, alloc::linear_segments(&data_runs))?;
    let pool = ops::new_lv(
        &req.name,
        vec![Segment {
            start_extent: 0,
            extent_count: data_extents,
            reshape_count: None,
            type_flags: vec![],
            tags: vec![],
            kind: SegmentKind::CachePool {
                data: data_name.clone(),
                metadata: meta_name.clone(),
                metadata_format: None,
                settings: CacheSettings {
                    chunk_size: Some(chunk),
                    cache_mode: req.mode.clone(),
                    policy: req.policy.clone(),
                    policy_settings: None,
                },
            },
            extra: Default::default(),
        }],
    )?;
    let devices = change.pv_devices();
    // The metadata's table, from a VG where it is an ordinary LV.
    let meta_table = Planner::new(&scratch, &devices).lv(&meta_name)?.devices[0]
        .table
        .clone();
    cmeta.status.remove(LvStatus::VISIBLE);
    cdata.status.remove(LvStatus::VISIBLE);
    let vg = &mut change.metadata.vg;
    vg.lvs.push(pool);
    vg.lvs.push(cmeta);
    vg.lvs.push(cdata);
    let actions = vec![
        Action::Wipe {
            path: format!("the extents of {vg_name}/{meta_name} (free until the commit)"),
            bytes: md_extents * extent * 512,
        },
        Action::Commit {
            vg: vg_name.to_owned(),
            seqno: change.metadata.vg.seqno,
            what: what.join("; "),
        },
    ];
    if run == Run::PlanOnly {
        return Ok(actions);
    }
    let ctl = dev.control()?;
    super::pool::zero_through(&ctl, vg_name, &meta_name, &meta_table, u64::MAX)?;
    change.commit(env, &[])?.deferring_warnings();
    Ok(actions)
}

/// `cairn cache attach` (as `lvconvert --type cache --cachepool POOL VG/LV`).
#[derive(Debug, Clone)]
pub struct Attach {
    pub vg: String,
    pub lv: String,
    pub pool: String,
    pub mode: Option<String>,
    pub policy: Option<String>,
}

fn rename_prefix(name: &str, from: &str, to: &str) -> String {
    match name.strip_prefix(from) {
        Some(rest) => format!("{to}{rest}"),
        None => name.to_owned(),
    }
}

/// Renames the cache pool `from` to `to` with its data and metadata LVs
/// (`from_cdata` -> `to_cdata`), as lvm2's _rename_sub_lv.
fn rename_pool(vg: &mut VolumeGroup, from: &str, to: &str) {
    let (old_prefix, new_prefix) = (format!("{from}_"), format!("{to}_"));
    let Some(SegmentKind::CachePool { data, metadata, .. }) = vg
        .lv(from)
        .and_then(|l| l.segments.first())
        .map(|s| s.kind.clone())
    else {
        return;
    };
    let (new_data, new_meta) = (
        rename_prefix(&data, &old_prefix, &new_prefix),
        rename_prefix(&metadata, &old_prefix, &new_prefix),
    );
    for lv in &mut vg.lvs {
        if lv.name == data {
            lv.name = new_data.clone();
        } else if lv.name == metadata {
            lv.name = new_meta.clone();
        } else if lv.name == from {
            lv.name = to.to_owned();
            if let Some(SegmentKind::CachePool { data, metadata, .. }) =
                lv.segments.first_mut().map(|s| &mut s.kind)
            {
                (*data, *metadata) = (new_data.clone(), new_meta.clone());
            }
        }
        for seg in &mut lv.segments {
            if let SegmentKind::Cache { cache_pool, .. } = &mut seg.kind {
                if cache_pool == from {
                    *cache_pool = to.to_owned();
                }
            }
        }
    }
}

/// Whether `lv` is an LV nothing else is layered with: linear or striped,
/// visible, no snapshot origin or COW, not part of a pool.
fn check_cacheable(vg: &VolumeGroup, name: &str) -> Result<()> {
    let lv = find_lv(vg, name)?;
    let plain = !lv.segments.is_empty()
        && lv
            .segments
            .iter()
            .all(|s| matches!(s.kind, SegmentKind::Striped { .. }));
    let origin = vg.is_snapshot_origin(name);
    if !vg.lv_is_visible(lv) || !plain || origin || vg.snapshot_of_cow(name).is_some() {
        let what = match lv.segments.first().map(|s| &s.kind) {
            Some(SegmentKind::Cache { .. }) => "is cached already".to_owned(),
            _ if origin => "is a snapshot origin".to_owned(),
            _ if !vg.lv_is_visible(lv) => "is a hidden part of another LV".to_owned(),
            Some(k) => format!("is a {} LV", k.type_name()),
            None => "has no segments".to_owned(),
        };
        return Err(refused(
            &vg.name,
            ErrorKind::Unsupported,
            format!("cannot cache LV {name}: it {what}; cairn caches linear and striped LVs"),
        ));
    }
    Ok(())
}

pub fn attach(env: &Env, dev: &Dev, req: &Attach, run: Run) -> Result<Vec<Action>> {
    let vg_name = req.vg.as_str();
    check_mode(vg_name, &req.mode, &req.policy)?;
    let mut change = ops::begin_change(env, vg_name, &[])?;
    let vg = &change.metadata.vg;
    check_cacheable(vg, &req.lv)?;
    let Some(pool) = vg.lv(&req.pool) else {
        // An attached pool goes by <pool>_cpool.
        let attached = format!("{}_cpool", req.pool);
        if let Some(user) = vg.lvs.iter().find(|l| {
            matches!(l.segments.first().map(|s| &s.kind), Some(SegmentKind::Cache { cache_pool, .. }) if *cache_pool == attached)
        }) {
            return Err(refused(
                vg_name, ErrorKind::Busy,
                format!(
                    "cache pool {} is already in use by {} (as {attached})",
                    req.pool, user.name
                ),
            ));
        }
        return Err(refused(
            vg_name,
            ErrorKind::NotFound,
            format!("has no LV named {}", req.pool),
        ));
    };
    let Some(SegmentKind::CachePool { metadata, .. }) = pool.segments.first().map(|s| &s.kind)
    else {
        return Err(refused(
            vg_name,
            ErrorKind::InvalidInput,
            format!(
                "LV {} is not a cache pool: make one with cairn cache create",
                req.pool
            ),
        ));
    };
    let metadata = metadata.clone();
    if let Some(user) = vg.lvs.iter().find(|l| {
        matches!(l.segments.first().map(|s| &s.kind), Some(SegmentKind::Cache { cache_pool, .. }) if *cache_pool == req.pool)
    }) {
        return Err(refused(
            vg_name, ErrorKind::Busy,
            format!("cache pool {} is already in use by {}", req.pool, user.name),
        ));
    }
    // A detach stopped before it removed the pool's layers leaves them in
    // the kernel, perhaps still under the LV it cached: a second cache on
    // the same devices would be two dm-cache targets on one cache.
    let ctl = dev.control()?;
    let mapped = mapped_layers(&ctl, vg, &req.pool)?;
    if !mapped.is_empty() {
        let who = pool
            .tags
            .iter()
            .find_map(|t| t.strip_prefix("cairn:uncache:"))
            .map_or("the LV it cached".to_owned(), |lv| {
                format!("{vg_name}/{lv}")
            });
        return Err(refused(
            vg_name, ErrorKind::Refused,
            format!(
                "cache pool {} is still mapped by the kernel ({}): a cache detach was interrupted; run `cairn cache detach` of {who} again to finish it, then attach",
                req.pool,
                mapped.join(", ")
            ),
        ));
    }
    let cpool = format!("{}_cpool", req.pool);
    let corig = format!("{}_corig", req.lv);
    for n in [&cpool, &corig] {
        if vg.lv(n).is_some() {
            return Err(refused(
                vg_name,
                ErrorKind::AlreadyExists,
                format!("already has an LV named {n}"),
            ));
        }
    }
    let devices = change.pv_devices();
    // The pool metadata's table (the LV is hidden: planned as if visible).
    let meta_table = {
        let mut scratch = vg.clone();
        if let Some(m) = scratch.lv_mut(&metadata) {
            m.status.insert(LvStatus::VISIBLE);
        }
        Planner::new(&scratch, &devices).lv(&metadata)?.devices[0]
            .table
            .clone()
    };
    let before = change.metadata.clone();
    let vg = &mut change.metadata.vg;
    rename_pool(vg, &req.pool, &cpool);
    let pool = vg.lv_mut(&cpool).expect("renamed");
    pool.status.remove(LvStatus::VISIBLE);
    // Attached again: no interrupted removal to finish any more.
    pool.tags.retain(|t| !t.starts_with("cairn:uncache:"));
    let seg = &mut pool.segments[0];
    if !seg.type_flags.iter().any(|f| f == "METADATA_FORMAT") {
        seg.type_flags.push("METADATA_FORMAT".into());
    }
    let mode = if let SegmentKind::CachePool {
        metadata_format,
        settings,
        ..
    } = &mut seg.kind
    {
        *metadata_format = Some(2);
        if req.mode.is_some() || settings.cache_mode.is_none() {
            settings.cache_mode = Some(req.mode.clone().unwrap_or("writethrough".into()));
        }
        if req.policy.is_some() || settings.policy.is_none() {
            settings.policy = Some(req.policy.clone().unwrap_or("smq".into()));
        }
        settings.cache_mode.clone().unwrap_or_default()
    } else {
        unreachable!("checked to be a cache pool")
    };
    let lv = vg.lv_mut(&req.lv).expect("checked");
    let extents = lv.extent_count();
    let mut origin = ops::new_lv(&corig, std::mem::take(&mut lv.segments))?;
    origin.status.remove(LvStatus::VISIBLE);
    lv.segments = vec![Segment {
        start_extent: 0,
        extent_count: extents,
        reshape_count: None,
        type_flags: vec![],
        tags: vec![],
        kind: SegmentKind::Cache {
            cache_pool: cpool.clone(),
            origin: corig.clone(),
            cleaner: false,
        },
        extra: Default::default(),
    }];
    vg.lvs.push(origin);
    let mut actions = vec![
        Action::Wipe {
            path: format!("{vg_name}/{metadata} (the pool's old cache metadata)"),
            bytes: 4096,
        },
        Action::Commit {
            vg: vg_name.to_owned(),
            seqno: change.metadata.vg.seqno,
            what: format!(
                "{} cached by {} ({mode}); {} renamed {cpool}, the LV's extents move to {corig}",
                req.lv, req.pool, req.pool
            ),
        },
    ];
    let config = LvmConfig::for_vg(&env.lvm_dir, &change.metadata.vg)?;
    let plan = Planner::new(&change.metadata.vg, &devices)
        .with_config(config)
        .lv(&req.lv)?;
    let top = names::dm_name(vg_name, &req.lv, None);
    let steps = engine::update_steps(&ctl, dev, &plan, &top, Suspend::Flush, &[])?;
    if run == Run::PlanOnly {
        actions.extend(steps.into_iter().map(Action::Dm));
        return Ok(actions);
    }
    super::pool::zero_through(&ctl, vg_name, &metadata, &meta_table, 4096)?;
    change.commit_and_continue(env)?;
    if let Err(e) = engine::run(&ctl, dev, &steps) {
        return Err(super::extents::restore(env, &mut change, before, e.into()));
    }
    actions.extend(steps.into_iter().map(Action::Dm));
    Ok(actions)
}

/// `cairn cache detach`: keep the pool (as `lvconvert --splitcache`) or
/// remove it (as `lvconvert --uncache`).
#[derive(Debug, Clone)]
pub struct Detach {
    pub vg: String,
    pub lv: String,
    pub remove_pool: bool,
    /// How long to wait between two looks at the dirty count.
    pub poll: Duration,
}

/// The cache status of an active cached LV.
fn cache_status(ctl: &Control, vg: &str, name: &str) -> Result<Option<status::CacheStatus>> {
    if ctl.info(name)?.is_none() {
        return Ok(None);
    }
    let lines = ctl.status(name)?;
    match lines.first().map(|(_, _, t, p)| status::parse(t, p)) {
        Some(Ok(TargetStatus::Cache(s))) => Ok(Some(s)),
        // A failed cache cannot be flushed; lvm2 warns and goes on.
        Some(Ok(TargetStatus::Failed)) | Some(Ok(TargetStatus::Error)) => Ok(None),
        Some(Ok(_)) => Ok(None),
        Some(Err(e)) => Err(refused(vg, ErrorKind::Inconsistent, e.to_string())),
        None => Ok(None),
    }
}

/// Refuses to detach a cache the kernel cannot flush while it may hold
/// dirty blocks: detaching would drop them, and the LV would read stale
/// data where they were. A failed writethrough cache holds none: it is
/// detached with a warning, as lvm2 does.
fn check_flushable(
    ctl: &Control,
    vg: &str,
    lv: &str,
    top: &str,
    writeback: bool,
    progress: &mut dyn FnMut(String),
) -> Result<()> {
    if ctl.info(top)?.is_none() {
        return Ok(());
    }
    let lines = ctl.status(top)?;
    let repair = format!(
        "repair the cache pool's metadata first (lvconvert --repair {vg}/{lv} with lvm2), then \
         detach again"
    );
    match lines.first().map(|(_, _, t, p)| status::parse(t, p)) {
        Some(Ok(TargetStatus::Failed)) if writeback => Err(refused(
            vg,
            ErrorKind::Refused,
            format!(
                "the writeback cache of {lv} has failed: its dirty blocks cannot be written back, \
                 and detaching now would drop them; {repair}"
            ),
        )),
        Some(Ok(TargetStatus::Failed)) => {
            progress(format!(
                "WARNING: Skipping flush for failed cache {vg}/{lv} (writethrough: nothing is dirty)."
            ));
            Ok(())
        }
        Some(Ok(TargetStatus::Cache(st)))
            if (st.needs_check || st.read_only) && (writeback || st.dirty > 0) =>
        {
            let why = if st.needs_check {
                "needs a metadata check"
            } else {
                "has read-only metadata"
            };
            Err(refused(
                vg,
                ErrorKind::Refused,
                format!(
                    "the cache of {lv} {why}: it cannot write back its {} dirty block(s), and \
                     detaching now would drop them; {repair}",
                    st.dirty
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// Detaches the cache of `req.lv`; `progress` hears of each flush round.
pub fn detach(
    env: &Env,
    dev: &Dev,
    req: &Detach,
    run: Run,
    progress: &mut dyn FnMut(String),
) -> Result<Vec<Action>> {
    let vg_name = req.vg.as_str();
    let mut change = ops::begin_change(env, vg_name, &[])?;
    let vg = &change.metadata.vg;
    let lv = find_lv(vg, &req.lv)?;
    let Some(SegmentKind::Cache {
        cache_pool, origin, ..
    }) = lv.segments.first().map(|s| s.kind.clone())
    else {
        let pool = pending_pool(vg, &req.lv).filter(|_| req.remove_pool);
        return finish_interrupted(env, dev, change, req, pool, run, progress);
    };
    let Some(SegmentKind::CachePool { data, metadata, .. }) = vg
        .lv(&cache_pool)
        .and_then(|l| l.segments.first())
        .map(|s| s.kind.clone())
    else {
        return Err(refused(
            vg_name,
            ErrorKind::Unsupported,
            format!(
                "the cache of {} is not a cache pool (cachevol?): cairn does not detach those",
                req.lv
            ),
        ));
    };
    let ctl = dev.control()?;
    let devices = change.pv_devices();
    let top = names::dm_name(vg_name, &req.lv, None);
    let mut actions = Vec::new();
    let mut activated = false;
    // An inactive writeback cache may hold dirty blocks: it comes up for
    // the flush, and goes down again at the end (lvm2 does the same).
    if ctl.info(&top)?.is_none() && is_writeback(vg, &cache_pool) {
        let plan = Planner::new(vg, &devices)
            .with_config(LvmConfig::for_vg(&env.lvm_dir, vg)?)
            .lv(&req.lv)?;
        let up = engine::activation_steps(&ctl, dev, &plan)?;
        actions.extend(up.iter().cloned().map(Action::Dm));
        if run == Run::Apply {
            engine::run(&ctl, dev, &up)?;
        }
        activated = true;
    }
    // The LV takes its origin's extents back; the pool is kept unused
    // (renamed back, as --splitcache), or removed by a second commit once
    // no device maps its extents (see finish_removal).
    let edit = Uncache {
        lv: req.lv.clone(),
        origin: origin.clone(),
        cache_pool: cache_pool.clone(),
        remove_pool: req.remove_pool,
    };
    let mut after = change.metadata.vg.clone();
    let to = edit.apply(&mut after);
    let linear = linear_device(&after, &devices, &req.lv, &top)?;
    let gone: Vec<String> = [&data, &metadata, &origin]
        .iter()
        .map(|lv| names::dm_name(vg_name, lv, None))
        .collect();
    let result = (|| -> Result<()> {
        if run == Run::PlanOnly {
            actions.extend(planned_switch(
                &ctl,
                &linear,
                &gone,
                Some(format!("{} is not cached and {to} is unused", req.lv)),
                &after,
            )?);
            if req.remove_pool {
                actions.push(removal_commit(&after, &to));
            }
            return Ok(());
        }
        let mut sw = Detaching {
            env,
            ctl: &ctl,
            dev,
            change: &mut change,
            top: top.clone(),
            linear,
            gone,
            edit: Some(edit),
            flushed_once: false,
            finishing: false,
            poll: req.poll,
            progress,
            actions: &mut actions,
        };
        sw.run()?;
        if req.remove_pool {
            crate::failpoint::hit("uncache-after-kernel");
            actions.push(removal_commit(&change.metadata.vg, &to));
            remove_pool(&mut change.metadata.vg, &to);
            change.commit_and_continue(env)?;
        }
        Ok(())
    })();
    // What came up for the flush goes down again (now a plain LV).
    if activated && run == Run::Apply {
        let plan = Planner::new(&change.metadata.vg, &devices).lv(&req.lv)?;
        let down = engine::deactivation_steps(&ctl, &plan, std::slice::from_ref(&req.lv))?;
        engine::run(&ctl, dev, &down)?;
        actions.extend(down.into_iter().map(Action::Dm));
    }
    result?;
    Ok(actions)
}

fn is_writeback(vg: &VolumeGroup, cache_pool: &str) -> bool {
    matches!(vg.lv(cache_pool).and_then(|l| l.segments.first()).map(|s| &s.kind),
        Some(SegmentKind::CachePool { settings, .. }) if settings.cache_mode.as_deref() == Some("writeback"))
}

/// The metadata change of a detach: the LV takes its origin's segments
/// back, the pool becomes visible and unused (renamed back from
/// `<pool>_cpool` when that name is free), tagged when its removal follows.
struct Uncache {
    lv: String,
    origin: String,
    cache_pool: String,
    remove_pool: bool,
}

impl Uncache {
    /// Applies the change to `vg`; returns the pool's name after it.
    fn apply(&self, vg: &mut VolumeGroup) -> String {
        let segments = vg
            .lv_mut(&self.origin)
            .map(|o| std::mem::take(&mut o.segments))
            .unwrap_or_default();
        if let Some(lv) = vg.lv_mut(&self.lv) {
            lv.segments = segments;
        }
        vg.lvs.retain(|l| l.name != self.origin);
        let cache_pool = &self.cache_pool;
        let pool_name = cache_pool
            .strip_suffix("_cpool")
            .unwrap_or(cache_pool)
            .to_owned();
        let to = if pool_name != *cache_pool && vg.lv(&pool_name).is_none() {
            pool_name
        } else {
            cache_pool.clone()
        };
        rename_pool(vg, cache_pool, &to);
        if let Some(p) = vg.lv_mut(&to) {
            p.status.insert(LvStatus::VISIBLE);
            if self.remove_pool {
                // Says which LV's detach the pool's removal finishes, if a
                // crash stops this command before it (see finish_removal).
                p.tags.push(pending_tag(&self.lv));
            }
        }
        to
    }
}

/// The device of the linear LV `lv` in `vg` (its metadata after a detach).
fn linear_device(
    vg: &VolumeGroup,
    devices: &[Option<PathBuf>],
    lv: &str,
    top: &str,
) -> Result<PlannedDevice> {
    Planner::new(vg, devices)
        .lv(lv)?
        .devices
        .into_iter()
        .find(|d| d.name == top)
        .ok_or_else(|| {
            refused(
                &vg.name,
                ErrorKind::Inconsistent,
                format!("no device planned for {lv}"),
            )
        })
}

/// What a switch would do, for `--plan`: load, suspend, the commit (if
/// any), resume, the layers removed.
fn planned_switch(
    ctl: &Control,
    linear: &PlannedDevice,
    gone: &[String],
    commit: Option<String>,
    after: &VolumeGroup,
) -> Result<Vec<Action>> {
    let mut actions = Vec::new();
    let active = ctl.info(&linear.name)?.is_some();
    if active {
        actions.push(Action::Dm(Step::Load {
            name: linear.name.clone(),
            table: linear.table.clone(),
            read_only: linear.read_only,
        }));
        actions.push(Action::Dm(Step::Suspend {
            name: linear.name.clone(),
            how: Suspend::Flush,
        }));
    }
    if let Some(what) = commit {
        actions.push(Action::Commit {
            vg: after.name.clone(),
            seqno: after.seqno,
            what,
        });
    }
    if active {
        actions.push(Action::Dm(Step::Resume {
            name: linear.name.clone(),
        }));
    }
    for name in gone {
        if ctl.info(name)?.is_some() {
            actions.push(Action::Dm(Step::RemoveNode { name: name.clone() }));
            actions.push(Action::Dm(Step::Remove { name: name.clone() }));
        }
    }
    Ok(actions)
}

/// A detach's switch on the kernel and the metadata
/// ([`cache_switch::switch_when_clean`] orders it).
struct Detaching<'a> {
    env: &'a Env,
    ctl: &'a Control,
    dev: &'a Dev,
    change: &'a mut ops::Change,
    /// The LV's own device.
    top: String,
    /// That device as the metadata after the detach plans it.
    linear: PlannedDevice,
    /// The cache's layers, removed once the LV no longer stands on them.
    gone: Vec<String>,
    /// The metadata change to commit; None when an interrupted run
    /// committed it already.
    edit: Option<Uncache>,
    flushed_once: bool,
    /// Finishing an interrupted run: layers still open are left alone.
    finishing: bool,
    poll: Duration,
    progress: &'a mut dyn FnMut(String),
    actions: &'a mut Vec<Action>,
}

impl Detaching<'_> {
    fn vg(&self) -> String {
        self.change.metadata.vg.name.clone()
    }

    fn steps(&mut self, steps: Vec<Step>) -> Result<()> {
        engine::run(self.ctl, self.dev, &steps)?;
        self.actions.extend(steps.into_iter().map(Action::Dm));
        Ok(())
    }

    /// The switch when the LV is active; the commit and the removal of
    /// layers left behind when it is not.
    fn run(&mut self) -> Result<()> {
        if self.ctl.info(&self.top)?.is_some() {
            return cache_switch::switch_when_clean(self);
        }
        cache_switch::Switch::commit(self)?;
        self.remove_layers()
    }

    fn remove_layers(&mut self) -> Result<()> {
        for name in self.gone.clone() {
            let Some(info) = self.ctl.info(&name)? else {
                continue;
            };
            // A finishing run's candidates may include another LV's layers.
            if self.edit.is_none() && self.finishing && info.open_count > 0 {
                continue;
            }
            {
                self.steps(vec![
                    Step::RemoveNode { name: name.clone() },
                    Step::Remove { name },
                ])?;
            }
        }
        Ok(())
    }

    /// Waits until the live cache holds no dirty block. While the metadata
    /// still has the cache, the cleaner policy is committed and loaded
    /// first where it is needed (writeback, or blocks dirty).
    fn flush(&mut self) -> Result<()> {
        let vg_name = self.vg();
        let lv = self.linear.lv.clone();
        let mut cleaner = false;
        while let Some(st) = cache_status(self.ctl, &vg_name, &self.top)? {
            let wb = st.features.iter().any(|f| f == "writeback");
            let cached_in_metadata = self.edit.is_some();
            if st.dirty == 0 && (st.policy == "cleaner" || !wb || !cached_in_metadata) {
                break;
            }
            (self.progress)(format!(
                "Flushing {} blocks for cache {vg_name}/{lv}.",
                st.dirty
            ));
            if cleaner || !cached_in_metadata {
                std::thread::sleep(self.poll);
                continue;
            }
            let before = self.change.metadata.clone();
            if let Some(SegmentKind::Cache { cleaner, .. }) = self
                .change
                .metadata
                .vg
                .lv_mut(&lv)
                .and_then(|l| l.segments.first_mut())
                .map(|s| &mut s.kind)
            {
                *cleaner = true;
            }
            let devices = self.change.pv_devices();
            let plan = Planner::new(&self.change.metadata.vg, &devices)
                .with_config(LvmConfig::for_vg(
                    &self.env.lvm_dir,
                    &self.change.metadata.vg,
                )?)
                .lv(&lv)?;
            let steps = engine::reload_steps(self.ctl, &plan, Suspend::Flush)?;
            self.actions.push(Action::Commit {
                vg: vg_name.clone(),
                seqno: self.change.metadata.vg.seqno,
                what: format!("cache of {lv} switched to the cleaner policy"),
            });
            self.change.commit_and_continue(self.env)?;
            if let Err(e) = engine::run(self.ctl, self.dev, &steps) {
                return Err(super::extents::restore(
                    self.env,
                    self.change,
                    before,
                    e.into(),
                ));
            }
            self.actions.extend(steps.into_iter().map(Action::Dm));
            cleaner = true;
        }
        Ok(())
    }
}

impl cache_switch::Switch for Detaching<'_> {
    type Error = VolumeError;

    fn wait_clean(&mut self) -> Result<()> {
        // A run killed between its suspend and its resume left the LV
        // suspended: the cleaner cannot write back while it is, and the
        // cache is what the LV reads until the commit. It is resumed with
        // its live table (a table loaded inactive is dropped first).
        if let Some(info) = self.ctl.info(&self.top)? {
            if info.suspended {
                let mut steps = Vec::new();
                if info.inactive_table {
                    steps.push(Step::Clear {
                        name: self.top.clone(),
                    });
                }
                steps.push(Step::Resume {
                    name: self.top.clone(),
                });
                self.steps(steps)?;
            }
        }
        if !self.flushed_once {
            self.flushed_once = true;
            let vg = self.vg();
            let lv = self.linear.lv.clone();
            // A cache with the metadata's cache segment gone (an interrupted
            // run) kept the cleaner of its flush, or writes back through
            // smq: it is treated as writeback.
            let writeback = match &self.edit {
                Some(e) => is_writeback(&self.change.metadata.vg, &e.cache_pool),
                None => true,
            };
            check_flushable(
                self.ctl,
                &vg,
                &lv,
                &self.top,
                writeback,
                &mut *self.progress,
            )?;
        }
        self.flush()
    }

    fn load_and_suspend(&mut self) -> Result<()> {
        self.steps(vec![
            Step::Load {
                name: self.top.clone(),
                table: self.linear.table.clone(),
                read_only: self.linear.read_only,
            },
            Step::Suspend {
                name: self.top.clone(),
                how: Suspend::Flush,
            },
        ])
    }

    fn dirty(&mut self) -> Result<u64> {
        let vg = self.vg();
        Ok(cache_status(self.ctl, &vg, &self.top)?.map_or(0, |s| s.dirty))
    }

    fn back_out(&mut self) -> Result<()> {
        self.steps(vec![
            Step::Clear {
                name: self.top.clone(),
            },
            Step::Resume {
                name: self.top.clone(),
            },
        ])
    }

    fn commit(&mut self) -> Result<()> {
        let Some(edit) = &self.edit else {
            return Ok(());
        };
        let before = self.change.metadata.clone();
        let to = edit.apply(&mut self.change.metadata.vg);
        self.actions.push(Action::Commit {
            vg: self.change.metadata.vg.name.clone(),
            seqno: self.change.metadata.vg.seqno,
            what: format!("{} is not cached and {to} is unused", edit.lv),
        });
        if let Err(e) = self.change.commit_and_continue(self.env) {
            self.change.metadata = before;
            self.actions.pop();
            return Err(e.into());
        }
        self.edit = None;
        Ok(())
    }

    fn resume(&mut self) -> Result<()> {
        self.steps(vec![Step::Resume {
            name: self.top.clone(),
        }])?;
        self.remove_layers()
    }

    fn tell(&mut self, message: String) {
        (self.progress)(message)
    }
}

/// The device-mapper names the data and metadata LVs of the unattached
/// cache pool `pool` have, or had while it was attached (`<pool>_cpool_*`).
fn pool_layer_names(vg: &VolumeGroup, pool: &str) -> Vec<String> {
    let Some(SegmentKind::CachePool { data, metadata, .. }) = vg
        .lv(pool)
        .and_then(|l| l.segments.first())
        .map(|s| &s.kind)
    else {
        return Vec::new();
    };
    let (old_prefix, attached_prefix) = (format!("{pool}_"), format!("{pool}_cpool_"));
    let mut out = Vec::new();
    for part in [data, metadata] {
        for name in [
            part.clone(),
            rename_prefix(part, &old_prefix, &attached_prefix),
        ] {
            let dm = names::dm_name(&vg.name, &name, None);
            if !out.contains(&dm) {
                out.push(dm);
            }
        }
    }
    out
}

/// The layers of the pool's devices that exist in the kernel.
fn mapped_layers(ctl: &Control, vg: &VolumeGroup, pool: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for name in pool_layer_names(vg, pool) {
        if ctl.info(&name)?.is_some() {
            out.push(name);
        }
    }
    Ok(out)
}

/// Finishes a detach of `req.lv` that a crash stopped after its commit
/// (the LV is linear in the metadata): the LV's device is switched to its
/// linear table if the kernel still has the cache (suspended with the
/// linear table inactive, or live), the cache's layers left in the kernel
/// are removed, and with `pool` (the removal was asked for) the pool goes,
/// once no device maps its extents. An LV that is not cached and has no
/// such leftovers is refused as before.
fn finish_interrupted(
    env: &Env,
    dev: &Dev,
    change: ops::Change,
    req: &Detach,
    pool: Option<String>,
    run: Run,
    progress: &mut dyn FnMut(String),
) -> Result<Vec<Action>> {
    let vg_name = req.vg.as_str();
    let ctl = dev.control()?;
    let vg = change.metadata.vg.clone();
    let corig = names::dm_name(vg_name, &format!("{}_corig", req.lv), None);
    let mut gone = Vec::new();
    let has_corig = ctl.info(&corig)?.is_some();
    if has_corig {
        gone.push(corig);
    }
    let mut unused_layer = false;
    let unused_pools: Vec<String> = vg
        .lvs
        .iter()
        .filter(|l| {
            matches!(
                l.segments.first().map(|s| &s.kind),
                Some(SegmentKind::CachePool { .. })
            )
        })
        .map(|l| l.name.clone())
        .filter(|p| {
            !vg.lvs.iter().any(|l| {
                matches!(l.segments.first().map(|s| &s.kind),
                    Some(SegmentKind::Cache { cache_pool, .. }) if cache_pool == p)
            })
        })
        .collect();
    for p in &unused_pools {
        if pool.as_ref().is_some_and(|only| only != p) {
            continue;
        }
        for name in mapped_layers(&ctl, &vg, p)? {
            // One still open may be another LV's, whose own detach was
            // interrupted before its switch: left to that LV's re-run.
            if ctl.info(&name)?.is_some_and(|i| i.open_count == 0) {
                unused_layer = true;
            }
            gone.push(name);
        }
    }
    if pool.is_none() && !has_corig && !unused_layer {
        return Err(refused(
            vg_name,
            ErrorKind::InvalidInput,
            format!("LV {} is not cached", req.lv),
        ));
    }
    let devices = change.pv_devices();
    let top = names::dm_name(vg_name, &req.lv, None);
    let linear = linear_device(&vg, &devices, &req.lv, &top)?;
    if run == Run::PlanOnly {
        let mut actions = planned_switch(&ctl, &linear, &gone, None, &vg)?;
        if let Some(p) = &pool {
            actions.push(removal_commit(&vg, p));
        }
        return Ok(actions);
    }
    let mut change = change;
    let mut actions = Vec::new();
    let mut sw = Detaching {
        env,
        ctl: &ctl,
        dev,
        change: &mut change,
        top,
        linear,
        gone,
        edit: None,
        flushed_once: false,
        finishing: true,
        poll: req.poll,
        progress,
        actions: &mut actions,
    };
    sw.run()?;
    if let Some(p) = &pool {
        let still = mapped_layers(&ctl, &change.metadata.vg, p)?;
        if !still.is_empty() {
            return Err(refused(
                vg_name,
                ErrorKind::Busy,
                format!(
                    "cache pool {p} is still mapped by the kernel ({}): stop what uses those \
                     devices, then run the detach again",
                    still.join(", ")
                ),
            ));
        }
        actions.push(removal_commit(&change.metadata.vg, p));
        remove_pool(&mut change.metadata.vg, p);
        change.commit_and_continue(env)?;
    }
    Ok(actions)
}

/// The tag a cache pool carries between the two commits of `cache detach
/// --remove-pool` of `lv` (lvm2 keeps such tags as any other).
fn pending_tag(lv: &str) -> String {
    format!("cairn:uncache:{lv}")
}

/// The unused cache pool an interrupted `cache detach --remove-pool` of
/// `lv` left behind, if any.
fn pending_pool(vg: &VolumeGroup, lv: &str) -> Option<String> {
    let tag = pending_tag(lv);
    vg.lvs
        .iter()
        .find(|l| {
            l.tags.contains(&tag)
                && matches!(
                    l.segments.first().map(|s| &s.kind),
                    Some(SegmentKind::CachePool { .. })
                )
        })
        .map(|l| l.name.clone())
}

fn removal_commit(vg: &VolumeGroup, pool: &str) -> Action {
    Action::Commit {
        vg: vg.name.clone(),
        seqno: vg.seqno,
        what: format!("cache pool {pool} removed"),
    }
}

/// Drops the unused cache pool `pool`, its data and metadata LVs, and the
/// pool metadata spare when no pool needs it any more.
fn remove_pool(vg: &mut VolumeGroup, pool: &str) {
    let parts = match vg
        .lv(pool)
        .and_then(|l| l.segments.first())
        .map(|s| &s.kind)
    {
        Some(SegmentKind::CachePool { data, metadata, .. }) => vec![data.clone(), metadata.clone()],
        _ => Vec::new(),
    };
    vg.lvs
        .retain(|l| l.name != pool && !parts.contains(&l.name));
    if super::pool::largest_pool_metadata(vg) == 0 {
        vg.lvs.retain(|l| !l.name.ends_with("_pmspare"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_lvm2_chooses_them() {
        let ext = 8192; // 4 MiB
                        // The probe's 40 MiB pool: 64 KiB chunks, 4 MiB + 640 * 44 bytes
                        // of metadata -> two extents.
        assert_eq!(sizes(81_920, ext, None, None), Ok((128, 16_384)));
        // Given metadata is kept when large enough, raised when not.
        assert_eq!(
            sizes(40_960, ext, Some(256), Some(16_384)),
            Ok((256, 16_384))
        );
        assert_eq!(sizes(81_920, ext, None, Some(2048)), Ok((128, 16_384)));
        // 100 GiB: 64 KiB chunks would be 1.6 M chunks: the chunk becomes
        // the next power of two above 100 GiB / 1 M, 128 KiB.
        let data = 100u64 << 21;
        assert_eq!(sizes(data, ext, None, None).map(|s| s.0), Ok(256));
        // A given chunk below that minimum is an error, not silently raised.
        assert!(sizes(data, ext, Some(128), None)
            .unwrap_err()
            .contains("less than"));
        assert!(sizes(81_920, ext, Some(100), None).is_err());
    }

    #[test]
    fn pool_rename_follows_lvm2() {
        assert_eq!(
            rename_prefix("cp_cdata", "cp_", "cp_cpool_"),
            "cp_cpool_cdata"
        );
        assert_eq!(
            rename_prefix("cp_cpool_cmeta", "cp_cpool_", "cp_"),
            "cp_cmeta"
        );
        assert_eq!(rename_prefix("other", "cp_", "x_"), "other");
    }
}
