//! Thin pool creation without lvm2 (`lvcreate -L SIZE -T VG/POOL`), sized
//! and laid out as lvm2 2.03.16 does it (docs/research/lvm2-ops.md §1):
//!
//! - chunk: 64 KiB, doubled while the metadata estimate (64 bytes per chunk)
//!   exceeds 128 MiB; metadata: that estimate, rounded up to extents, at
//!   least 2 MiB, at most 15.875 GiB;
//! - a pool metadata spare (`lvol<N>_pmspare`, hidden, never zeroed) at
//!   least as large as the biggest pool metadata LV of the VG;
//! - commit 1: the pool as a plain visible LV over the metadata extents;
//!   that LV is activated alone and zeroed whole (lvm2's zero_metadata), so a
//!   crash here leaves an ordinary LV, never a pool with garbage metadata;
//! - commit 2: the metadata extents become `<pool>_tmeta`, the data extents
//!   `<pool>_tdata`, and the pool a thin-pool with transaction id 0; then it
//!   is activated (unless asked not to).
//!
//! Growing a pool is super::resize's ([`super::resize::extend_pool`]), by
//! the sizing rules here.

use std::path::PathBuf;

use crate::dm::scratch_node::ScratchNode;
use crate::dm::table::TableLine;
use crate::dm::Control;
use crate::meta::alloc;
use crate::meta::model::{LvStatus, Segment, SegmentKind, VolumeGroup};
use crate::meta::ops::{self, Env};
use crate::units::Bytes;

use super::action::{alloc_refused, refused, Action, Run, VolumeError};
use super::activate::Planner;
use super::config::LvmConfig;
use super::engine::{self, Dev};
use super::names;
use crate::error::ErrorKind;

pub type Result<T> = std::result::Result<T, VolumeError>;

/// 64 KiB, lvm2's generic default chunk, in sectors.
const DEFAULT_CHUNK: u64 = 128;
const MAX_CHUNK: u64 = 2_097_152;
/// 128 MiB: above this estimate, lvm2 doubles the chunk instead.
const OPTIMAL_METADATA: u64 = 262_144;
/// 2 MiB and 15.875 GiB (without metadata cropping), in sectors.
const MIN_METADATA: u64 = 4096;
pub(crate) const MAX_METADATA: u64 = 33_292_800;

/// `cairn thinpool create`.
#[derive(Debug, Clone)]
pub struct NewPool {
    /// The volume group to create it in.
    pub vg: String,
    /// The pool LV's name.
    pub name: String,
    /// The data LV's size (`_tdata`), in bytes, rounded up to extents.
    pub data_bytes: Bytes,
    /// The metadata LV's size (`_tmeta`), in bytes; None: lvm2's choice
    /// for the data size and chunk.
    pub metadata_bytes: Option<Bytes>,
    /// The allocation chunk, in bytes; None: lvm2's choice (64 KiB,
    /// doubled while the metadata estimate exceeds 128 MiB).
    pub chunk_bytes: Option<Bytes>,
    /// Whether the pool zeroes a newly allocated chunk before use
    /// (lvm2's `zero_new_blocks`, `lvcreate -Z`).
    pub zero: bool,
    /// "passdown", "nopassdown" or "ignore".
    pub discards: String,
    /// The PVs to allocate on (device paths); empty: any PV of the VG.
    pub pvs: Vec<PathBuf>,
    /// Whether to activate the pool once created.
    pub activate: bool,
}

/// (chunk, metadata) in sectors for `data` sectors, as lvm2 chooses them.
pub fn sizes(data: u64, extent: u64, chunk: Option<u64>, metadata: Option<u64>) -> (u64, u64) {
    let estimate = |chunk: u64| data / (chunk * 8);
    let (chunk, md) = match (chunk, metadata) {
        (Some(c), Some(m)) => (c, m),
        (Some(c), None) => (c, estimate(c)),
        (None, Some(m)) => {
            // The chunk that makes `m` enough: a power of two in range.
            let mut c = DEFAULT_CHUNK;
            while c < MAX_CHUNK && estimate(c) > m {
                c <<= 1;
            }
            (c, m)
        }
        (None, None) => {
            let mut c = DEFAULT_CHUNK;
            let mut md = estimate(c);
            while md > OPTIMAL_METADATA && c < MAX_CHUNK {
                c <<= 1;
                md >>= 1;
            }
            (c, md)
        }
    };
    let round = |s: u64| s.div_ceil(extent) * extent;
    let md = round(md).max(round(MIN_METADATA)).min(round(MAX_METADATA));
    (chunk, md)
}

fn hidden(lv: &mut crate::meta::model::LogicalVolume) {
    lv.status.remove(LvStatus::VISIBLE);
}

/// Makes the VG's pool metadata spare (`lvol<N>_pmspare`, hidden, never
/// zeroed: lvm2 zeroes it when a repair takes it) at least `extents` long,
/// creating it if the VG has none; returns what it did, for the plan.
pub(crate) fn ensure_spare(
    vg: &mut VolumeGroup,
    extents: u64,
    on: Option<&[usize]>,
) -> Result<Option<String>> {
    let spare = vg.lvs.iter().position(|l| l.name.ends_with("_pmspare"));
    let needed = match spare {
        None => extents,
        Some(i) => extents.saturating_sub(vg.lvs[i].extent_count()),
    };
    if needed == 0 {
        return Ok(None);
    }
    let vg_name = vg.name.clone();
    match spare {
        Some(i) => {
            let name = vg.lvs[i].name.clone();
            super::extents::grow_lv(vg, &name, needed, on)?;
            Ok(Some(format!("pool metadata spare {name} extended")))
        }
        None => {
            let runs =
                alloc::allocate(vg, needed, on, None).map_err(|e| alloc_refused(&vg_name, e))?;
            let n = (0..)
                .find(|n| vg.lv(&format!("lvol{n}_pmspare")).is_none())
                .expect("a free name");
            let mut lv = ops::new_lv(&format!("lvol{n}_pmspare"), alloc::linear_segments(&runs))?;
            hidden(&mut lv);
            let what = format!("pool metadata spare {}", lv.name);
            vg.lvs.push(lv);
            Ok(Some(what))
        }
    }
}

/// The largest pool metadata LV of the VG (thin `_tmeta`, cache `_cmeta`), in extents.
pub(crate) fn largest_pool_metadata(vg: &VolumeGroup) -> u64 {
    vg.lvs
        .iter()
        .filter_map(|l| match l.segments.first().map(|s| &s.kind) {
            Some(SegmentKind::ThinPool { metadata, .. })
            | Some(SegmentKind::CachePool { metadata, .. }) => vg.lv(metadata),
            _ => None,
        })
        .map(|m| m.extent_count())
        .max()
        .unwrap_or(0)
}

/// `lvcreate -L SIZE -T VG/POOL [--poolmetadatasize M] [-c C] [-Z y|n] [--discards D] [PV...]`.
pub fn create(env: &Env, dev: &Dev, req: &NewPool, run: Run) -> Result<Vec<Action>> {
    let vg_name = req.vg.as_str();
    ops::check_lv_name(&req.name)?;
    if !matches!(req.discards.as_str(), "passdown" | "nopassdown" | "ignore") {
        return Err(refused(
            vg_name,
            ErrorKind::InvalidInput,
            format!(
                "discards {:?} is not one of passdown, nopassdown, ignore",
                req.discards
            ),
        ));
    }
    let mut change = ops::begin_change(env, vg_name, &req.pvs)?;
    let vg = &change.metadata.vg;
    for n in [
        req.name.clone(),
        format!("{}_tmeta", req.name),
        format!("{}_tdata", req.name),
    ] {
        if vg.lv(&n).is_some() {
            return Err(refused(
                vg_name,
                ErrorKind::AlreadyExists,
                format!("already has an LV named {n}"),
            ));
        }
    }
    let on = super::extents::pv_indices(&change, &req.pvs)?;
    let vg = &change.metadata.vg;
    let extent = vg.extent_size;
    let data_extents = req.data_bytes.extents_ceil(vg.extent_bytes()).0;
    if data_extents == 0 {
        return Err(refused(
            vg_name,
            ErrorKind::InvalidInput,
            "cannot hold a pool of 0 bytes: give -L".into(),
        ));
    }
    let chunk = req.chunk_bytes.map(|b| b.sectors().0);
    if let Some(c) = chunk {
        if !(DEFAULT_CHUNK..=MAX_CHUNK).contains(&c) || c % DEFAULT_CHUNK != 0 {
            return Err(refused(
                vg_name,
                ErrorKind::InvalidInput,
                "a thin pool's chunk size is 64 KiB to 1 GiB, a multiple of 64 KiB".into(),
            ));
        }
    }
    let (chunk, md_sectors) = sizes(
        data_extents * extent,
        extent,
        chunk,
        req.metadata_bytes.map(|b| b.sectors().0),
    );
    if chunk > data_extents * extent {
        return Err(refused(
            vg_name,
            ErrorKind::InvalidInput,
            "the pool is smaller than one chunk".into(),
        ));
    }
    let md_extents = md_sectors / extent;

    let mut what = vec![format!(
        "thin pool {} ({} data, {} metadata, chunk {})",
        req.name,
        crate::units::human(data_extents * extent * 512),
        crate::units::human(md_extents * extent * 512),
        crate::units::human(chunk * 512)
    )];
    {
        let vg = &mut change.metadata.vg;
        what.extend(ensure_spare(vg, md_extents, on.as_deref())?);
        // Data first, then metadata, as lvm2 lays them out.
        let data_runs = alloc::allocate(vg, data_extents, on.as_deref(), None)
            .map_err(|e| alloc_refused(vg_name, e))?;
        let mut scratch = vg.clone();
        let mut tdata = ops::new_lv(
            &format!("{}_tdata", req.name),
            alloc::linear_segments(&data_runs),
        )?;
        hidden(&mut tdata);
        scratch.lvs.push(tdata.clone());
        let meta_runs = alloc::allocate(&scratch, md_extents, on.as_deref(), None)
            .map_err(|e| alloc_refused(vg_name, e))?;
        // Commit 1: the pool as a plain LV over the metadata extents.
        vg.lvs
            .push(ops::new_lv(&req.name, alloc::linear_segments(&meta_runs))?);
        // What commit 2 will hold.
        let mut tmeta = ops::new_lv(
            &format!("{}_tmeta", req.name),
            alloc::linear_segments(&meta_runs),
        )?;
        hidden(&mut tmeta);
        let mut staged = vg.clone();
        let pool = staged.lv_mut(&req.name).expect("just pushed");
        pool.segments = vec![Segment {
            start_extent: 0,
            extent_count: data_extents,
            reshape_count: None,
            type_flags: vec![],
            tags: vec![],
            kind: SegmentKind::ThinPool {
                metadata: tmeta.name.clone(),
                pool: tdata.name.clone(),
                transaction_id: 0,
                chunk_size: chunk,
                discards: Some(req.discards.clone()),
                zero_new_blocks: req.zero,
                crop_metadata: None,
                messages: vec![],
            },
            extra: Default::default(),
        }];
        staged.lvs.push(tmeta);
        staged.lvs.push(tdata);
        finish(env, dev, change, staged, req, what.join("; "), run)
    }
}

fn finish(
    env: &Env,
    dev: &Dev,
    mut change: ops::Change,
    mut staged: VolumeGroup,
    req: &NewPool,
    what: String,
    run: Run,
) -> Result<Vec<Action>> {
    let vg_name = req.vg.clone();
    let meta_path = names::lv_path(&vg_name, &format!("{}_tmeta", req.name));
    let mut actions = vec![
        Action::Commit {
            vg: vg_name.clone(),
            seqno: change.metadata.vg.seqno,
            what: format!("{what}: the metadata extents as a plain LV {}", req.name),
        },
        Action::Wipe {
            path: meta_path,
            bytes: staged
                .lv(&format!("{}_tmeta", req.name))
                .map_or(0, |l| l.extent_count() * staged.extent_bytes()),
        },
        Action::Commit {
            vg: vg_name.clone(),
            seqno: change.metadata.vg.seqno + 1,
            what: format!("{} becomes a thin pool (transaction id 0)", req.name),
        },
    ];
    if run == Run::PlanOnly {
        return Ok(actions);
    }
    let ctl = dev.control()?;
    change.commit_and_continue(env)?;
    // Zero the metadata through a private device over its extents.
    let devices = change.pv_devices();
    let plain = Planner::new(&change.metadata.vg, &devices).lv(&req.name)?;
    let table: Vec<TableLine> = plain.devices[0].table.clone();
    zero_through(
        &ctl,
        &vg_name,
        &format!("{}_tmeta", req.name),
        &table,
        u64::MAX,
    )?;
    staged.seqno = change.metadata.vg.seqno;
    change.metadata.vg = staged;
    change.commit_and_continue(env)?;
    if req.activate {
        let config = LvmConfig::for_vg(&env.lvm_dir, &change.metadata.vg)?;
        let plan = Planner::new(&change.metadata.vg, &devices)
            .with_config(config)
            .lv(&req.name)?;
        let steps = engine::activation_steps(&ctl, dev, &plan)?;
        engine::run(&ctl, dev, &steps)?;
        actions.extend(steps.into_iter().map(Action::Dm));
    }
    Ok(actions)
}

/// Writes zeros over the first `bytes` of LV `lv`'s extents (`table`)
/// through a temporary device, for an LV that must not be activated yet.
pub(crate) fn zero_through(
    ctl: &Control,
    vg: &str,
    lv: &str,
    table: &[TableLine],
    bytes: u64,
) -> Result<()> {
    let name = names::dm_name(vg, lv, Some("zero"));
    let uuid = format!("CAIRN-zero-{name}");
    ctl.create(&name, &uuid, false)?;
    let resolved = match engine::resolve_table(ctl, table) {
        Ok(t) => t,
        Err(e) => {
            let _ = ctl.remove(&name);
            return Err(e.into());
        }
    };
    let result = (|| -> Result<()> {
        ctl.load(&name, &resolved, false)?;
        let info = ctl.resume(&name)?;
        let sectors: u64 = table.iter().map(|l| l.length).sum();
        let bytes = bytes.min(sectors * 512);
        // A node of cairn's own, in a private directory: nobody else can
        // put a symlink or another device where the zeros go.
        let parents = crate::dm::scratch_node::default_parents();
        let node = ScratchNode::new(&parents, &name, info.major, info.minor).map_err(|e| {
            refused(
                vg,
                ErrorKind::System,
                format!("cannot make a node to zero the metadata: {e}"),
            )
        })?;
        node.open_write()
            .and_then(|f| zero_device(f, bytes))
            .map_err(|e| {
                refused(
                    vg,
                    ErrorKind::System,
                    format!("zeroing the pool metadata failed: {e}"),
                )
            })
    })();
    let removed = ctl.remove(&name);
    result?;
    removed?;
    Ok(())
}

fn zero_device(mut f: std::fs::File, bytes: u64) -> std::io::Result<()> {
    use std::io::Write;
    let chunk = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_lvm2_chooses_them() {
        let ext = 8192; // 4 MiB
                        // 1 GiB: 64 KiB chunks, 2 MiB estimate -> one 4 MiB extent.
        assert_eq!(sizes(2 * 1024 * 1024, ext, None, None), (128, 8192));
        // 512 MiB (the lab's bench pool).
        assert_eq!(sizes(1_048_576, ext, None, None), (128, 8192));
        // 128 GiB: 64 KiB chunks need exactly 128 MiB of metadata: kept.
        assert_eq!(sizes(1 << 28, ext, None, None), (128, 262_144));
        // 256 GiB: the estimate would be 256 MiB, so the chunk doubles.
        assert_eq!(sizes(1 << 29, ext, None, None), (256, 262_144));
        // 1 TiB: 512 KiB chunks.
        assert_eq!(sizes(1 << 31, ext, None, None), (1024, 262_144));
        // 2 TiB with 64 MiB of metadata given: the chunk grows until it fits.
        assert_eq!(sizes(1 << 32, ext, None, Some(131_072)), (4096, 131_072));
        // Clamped to at least 2 MiB, rounded to extents.
        assert_eq!(sizes(8192, ext, None, None), (128, 8192));
    }
}
