//! What a VG and its LVs are, in the terms a caller of the LVM layer needs
//! (the stack, and later the façade): each LV's kind, size and visibility,
//! a VG's size and free space, the size rounding rules, and what the
//! kernel says of an active thin LV, thin pool or cached LV.
//!
//! [`VgInfo`] is a plain value made once from the metadata
//! ([`VgInfo::of`]): nothing in it refers to the metadata model, so code
//! above this layer (and its host tests) builds and reads it without
//! knowing how LVM writes a VG down.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::names::dm_name;
use crate::blockdev::SysfsGraph;
use crate::dm;
use crate::meta::alloc::AllocError;
use crate::meta::model::{LogicalVolume, SegmentKind, VolumeGroup};
use crate::meta::scan::{PvOwner, Scan, ScanError};

/// lvm2's cache mode when the metadata names none.
pub const DEFAULT_CACHE_MODE: &str = "writethrough";
/// lvm2's cache policy when the metadata names none.
pub const DEFAULT_CACHE_POLICY: &str = "smq";

/// What an LV is (the kind of its first segment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LvKind {
    /// Plain extents on PVs: linear, or striped (lvm2's `striped` type).
    Linear,
    /// A thin pool.
    ThinPool {
        /// Its hidden metadata LV (`POOL_tmeta`).
        metadata: String,
        /// Its chunk size (the unit it maps data in), in bytes.
        chunk_bytes: u64,
    },
    /// A thin volume (or thin snapshot).
    Thin {
        /// The thin pool it is in.
        pool: String,
        /// The thin LV it is a snapshot of, when the metadata names one
        /// (lvm2's `origin`; gone once that LV is removed).
        origin: Option<String>,
    },
    /// A cache pool (lvm2's defaults when the metadata names none).
    CachePool {
        /// dm-cache's mode (`writethrough`, `writeback`, `passthrough`).
        mode: String,
        /// dm-cache's policy (`smq`).
        policy: String,
    },
    /// An LV with a dm-cache in front of it.
    Cache {
        /// The cache pool attached to it.
        pool: String,
    },
    /// A thick (COW) snapshot.
    Snapshot {
        /// The LV it is a snapshot of.
        origin: String,
    },
    /// A segment type cairn does not interpret (raid, mirror, vdo, ...).
    Other(String),
}

impl LvKind {
    fn of(kind: &SegmentKind) -> LvKind {
        match kind {
            SegmentKind::Striped { .. } => LvKind::Linear,
            SegmentKind::ThinPool {
                metadata,
                chunk_size,
                ..
            } => LvKind::ThinPool {
                metadata: metadata.clone(),
                chunk_bytes: chunk_size * 512,
            },
            SegmentKind::Thin {
                thin_pool, origin, ..
            } => LvKind::Thin {
                pool: thin_pool.clone(),
                origin: origin.clone(),
            },
            SegmentKind::CachePool { settings, .. } => LvKind::CachePool {
                mode: settings
                    .cache_mode
                    .clone()
                    .unwrap_or_else(|| DEFAULT_CACHE_MODE.to_owned()),
                policy: settings
                    .policy
                    .clone()
                    .unwrap_or_else(|| DEFAULT_CACHE_POLICY.to_owned()),
            },
            SegmentKind::Cache { cache_pool, .. } => LvKind::Cache {
                pool: cache_pool.clone(),
            },
            SegmentKind::Snapshot { origin, .. } => LvKind::Snapshot {
                origin: origin.clone(),
            },
            SegmentKind::Other { type_name } => LvKind::Other(type_name.clone()),
        }
    }

    /// lvm2's segment type name, as messages name the kind.
    pub fn type_name(&self) -> &str {
        match self {
            LvKind::Linear => "striped",
            LvKind::ThinPool { .. } => "thin-pool",
            LvKind::Thin { .. } => "thin",
            LvKind::CachePool { .. } => "cache-pool",
            LvKind::Cache { .. } => "cache",
            LvKind::Snapshot { .. } => "snapshot",
            LvKind::Other(name) => name,
        }
    }
}

/// One LV of a [`VgInfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvInfo {
    /// The LV's name.
    pub name: String,
    /// None for an LV with no segments (lvm2 never writes one; callers
    /// treat it as absent).
    pub kind: Option<LvKind>,
    /// Its size: its extents, in bytes (a thin LV's virtual size, a thin
    /// pool's data).
    pub bytes: u64,
    /// Not a hidden sub-LV (`_tdata`, `_cmeta`, `lvol0_pmspare`, ...).
    pub visible: bool,
    /// Flagged to stay inactive unless named (lvm2's thin snapshots).
    pub activation_skip: bool,
    /// Its tags (lvm2's `tags`).
    pub tags: Vec<String>,
    /// When it was made (seconds since the epoch), if the metadata says.
    pub created: Option<u64>,
}

impl LvInfo {
    /// A visible LV without activation skip (hand-made VGs in tests).
    pub fn new(name: &str, kind: LvKind, bytes: u64) -> LvInfo {
        LvInfo {
            name: name.to_owned(),
            kind: Some(kind),
            bytes,
            visible: true,
            activation_skip: false,
            tags: Vec::new(),
            created: None,
        }
    }

    fn of(vg: &VolumeGroup, lv: &LogicalVolume) -> LvInfo {
        LvInfo {
            name: lv.name.clone(),
            kind: lv.segments.first().map(|s| LvKind::of(&s.kind)),
            bytes: lv.extent_count() * vg.extent_bytes(),
            visible: lv.is_visible(),
            activation_skip: super::activate::activation_skip(lv),
            tags: lv.tags.clone(),
            created: lv.creation_time,
        }
    }
}

/// A VG as its metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VgInfo {
    /// The VG's name.
    pub name: String,
    /// Its extent size, in bytes.
    pub extent_bytes: u64,
    /// PVs the metadata lists.
    pub pv_count: usize,
    /// The PVs' extents, in bytes.
    pub size_bytes: u64,
    /// Unallocated extents on allocatable PVs, in bytes; an error when the
    /// metadata's allocation does not add up (segments past a PV's end).
    pub free_bytes: Result<u64, AllocError>,
    /// In the metadata's order (visible LVs first).
    pub lvs: Vec<LvInfo>,
}

impl VgInfo {
    /// What the metadata of `vg` says of it.
    pub fn of(vg: &VolumeGroup) -> VgInfo {
        let extent = vg.extent_bytes();
        VgInfo {
            name: vg.name.clone(),
            extent_bytes: extent,
            pv_count: vg.pvs.len(),
            size_bytes: vg.pvs.iter().map(|p| p.pe_count).sum::<u64>() * extent,
            free_bytes: crate::meta::alloc::free_runs(vg)
                .map(|runs| runs.iter().map(|r| r.count).sum::<u64>() * extent),
            lvs: vg.lvs.iter().map(|lv| LvInfo::of(vg, lv)).collect(),
        }
    }

    /// VG `name` as the newest metadata of `scan` says.
    pub fn read(scan: &Scan, name: &str) -> Result<VgInfo, ScanError> {
        Ok(VgInfo::of(&scan.vg(name)?.metadata.vg))
    }

    /// VG `name` from `scan`, or None when no device of it has it.
    pub fn find(scan: &Scan, name: &str) -> Result<Option<VgInfo>, ScanError> {
        match VgInfo::read(scan, name) {
            Ok(v) => Ok(Some(v)),
            Err(ScanError::NoSuchVg(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// VG `name` read from `devices`, and for each of them whether the VG
    /// has it as a PV (by the metadata on all of them: a PV that keeps no
    /// copy of its own is one its VG's other PVs list).
    pub fn read_on(
        devices: &[PathBuf],
        name: &str,
        sysfs: &mut SysfsGraph,
    ) -> Result<(VgInfo, Vec<bool>), ScanError> {
        let scan = Scan::devices_in(devices, sysfs)?;
        let members = devices
            .iter()
            .map(|d| {
                scan.pvs
                    .iter()
                    .find(|s| crate::blockdev::same_device(&s.path, d))
                    .is_some_and(|s| scan.owner(s) == PvOwner::Vg(name.to_owned()))
            })
            .collect();
        Ok((VgInfo::read(&scan, name)?, members))
    }

    /// LV `name`, hidden sub-LVs included.
    pub fn lv(&self, name: &str) -> Option<&LvInfo> {
        self.lvs.iter().find(|lv| lv.name == name)
    }

    /// Size of LV `name` in bytes.
    pub fn lv_bytes(&self, name: &str) -> Option<u64> {
        Some(self.lv(name)?.bytes)
    }

    /// What LV `name` is (None when there is no such LV).
    pub fn kind(&self, name: &str) -> Option<&LvKind> {
        self.lv(name)?.kind.as_ref()
    }

    /// The thin LVs of `pool`, in the metadata's order.
    pub fn thin_lvs<'a>(&'a self, pool: &'a str) -> impl Iterator<Item = &'a LvInfo> + 'a {
        self.lvs
            .iter()
            .filter(move |lv| matches!(&lv.kind, Some(LvKind::Thin { pool: p, .. }) if p == pool))
    }

    /// `bytes` rounded up to whole extents.
    pub fn round_to_extents(&self, bytes: u64) -> u64 {
        round_up(bytes, self.extent_bytes)
    }

    /// What a new thin LV of `pool` is rounded up to ([`thin_granule`]);
    /// whole extents when `pool` is not a thin pool of this VG.
    pub fn thin_granule(&self, pool: &str) -> u64 {
        let chunk = match self.kind(pool) {
            Some(LvKind::ThinPool { chunk_bytes, .. }) => *chunk_bytes,
            _ => 0,
        };
        thin_granule(self.extent_bytes, chunk)
    }
}

/// `bytes` rounded up to a multiple of `unit`.
pub fn round_up(bytes: u64, unit: u64) -> u64 {
    bytes.div_ceil(unit) * unit
}

/// The unit a new thin LV's size is rounded up to, in bytes: whole extents,
/// and whole pool chunks when a chunk is larger than an extent (as lvm2
/// rounds it).
pub fn thin_granule(extent_bytes: u64, chunk_bytes: u64) -> u64 {
    if chunk_bytes > extent_bytes {
        chunk_bytes.div_ceil(extent_bytes) * extent_bytes
    } else {
        extent_bytes
    }
}

/// The extents of a new thin LV of `size_bytes` ([`thin_granule`]'s rule).
pub fn thin_extents(size_bytes: u64, extent_bytes: u64, chunk_bytes: u64) -> u64 {
    let granule = thin_granule(extent_bytes, chunk_bytes);
    size_bytes.div_ceil(granule) * (granule / extent_bytes)
}

/// The dm device that carries thin pool `pool`'s thin-pool target, among
/// the devices `existing`: its `-tpool` layer, or, for a pool activated
/// with no thin LV active, the pool's own name (lvm2 then loads the
/// target there).
pub fn pool_device(existing: &BTreeSet<String>, vg: &str, pool: &str) -> Option<String> {
    [dm_name(vg, pool, Some("tpool")), dm_name(vg, pool, None)]
        .into_iter()
        .find(|n| existing.contains(n))
}

/// The first target's status of dm device `device`, when it can be read.
fn status(ctl: &dm::Control, device: &str) -> Option<(u64, dm::status::TargetStatus)> {
    let lines = ctl.status(device).ok()?;
    let (_, len, target, params) = lines.into_iter().next()?;
    Some((len, dm::status::parse(&target, &params).ok()?))
}

/// An active thin LV's mapped sectors and length in sectors, from the
/// kernel's status (None when it is not an active thin LV).
pub fn thin_mapped(ctl: &dm::Control, vg: &str, lv: &str) -> Option<(u64, u64)> {
    match status(ctl, &dm_name(vg, lv, None))? {
        (len, dm::status::TargetStatus::Thin(t)) => Some((t.mapped_sectors, len)),
        _ => None,
    }
}

/// How full an active thin pool is, in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolUse {
    /// Data blocks mapped, in percent of the pool's data.
    pub data_percent: f64,
    /// Metadata blocks used, in percent of its metadata LV.
    pub metadata_percent: f64,
}

/// The use of the thin pool whose target is on dm device `device`
/// ([`pool_device`]); None when that is not a readable thin-pool status.
pub fn pool_use(ctl: &dm::Control, device: &str) -> Option<PoolUse> {
    match status(ctl, device)? {
        (_, dm::status::TargetStatus::ThinPool(p)) => Some(PoolUse {
            data_percent: p.data_percent(),
            metadata_percent: p.metadata_percent(),
        }),
        _ => None,
    }
}

/// An active cached LV's cache, as its kernel status counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheUse {
    /// The cache's data size, in bytes (blocks times block size).
    pub size_bytes: u64,
    /// Cache blocks holding data.
    pub blocks_used: u64,
    /// Cache blocks in all.
    pub blocks_total: u64,
    /// Reads served from the cache since the table was loaded.
    pub read_hits: u64,
    /// Reads that went to the origin.
    pub read_misses: u64,
    /// Writes that went to the cache.
    pub write_hits: u64,
    /// Writes that went to the origin.
    pub write_misses: u64,
    /// Cache blocks not yet written back to the origin.
    pub dirty_blocks: u64,
}

/// The cache of LV `vg`/`lv`; None when it is not an active cached LV.
pub fn cache_use(ctl: &dm::Control, vg: &str, lv: &str) -> Option<CacheUse> {
    match status(ctl, &dm_name(vg, lv, None))? {
        (_, dm::status::TargetStatus::Cache(c)) => Some(CacheUse {
            size_bytes: c.blocks_total * c.block_sectors * 512,
            blocks_used: c.blocks_used,
            blocks_total: c.blocks_total,
            read_hits: c.read_hits,
            read_misses: c.read_misses,
            write_hits: c.write_hits,
            write_misses: c.write_misses,
            dirty_blocks: c.dirty,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
