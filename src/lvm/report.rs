//! lvm2's report fields, computed from the model: what `lvs -a`, `vgs` and
//! `pvs` print with `--reportformat json --units b --nosuffix` (lvm2 2.03.16),
//! so that `cairn lvs --json` can print exactly what lvm2 prints.
//!
//! Every field follows the lvm2 function that computes it (lib/report/report.c
//! and what it calls in lib/metadata/lv.c, lv_manip.c, pv.c, vg.c,
//! snapshot_manip.c, cache_manip.c, thin_manip.c); the comments name them.
//! The inputs are of three kinds:
//!
//! * the metadata ([`VolumeGroup`]): almost every field;
//! * what a device scan found for each PV ([`PvInfo`]): the device path
//!   (`pv_name`, and the names in `devices`/`seg_pe_ranges`), `dev_size`, the
//!   metadata areas (`*_mda_count`, `*_mda_size`, `*_mda_free`) and the PV
//!   header extension version (`pv_ext_vsn`). The metadata text does not
//!   record these (its `device` key is a hint lvm2 does not report). A PV the
//!   scan did not find is `None`, which lvm2 treats as missing;
//! * device-mapper state per LV ([`LvActivity`]): lv_attr characters 5 and 6,
//!   the 'R' of character 2 and the kernel health of character 9.
//!
//! Segment types the model keeps uninterpreted ([`SegmentKind::Other`]: raid,
//! mirror, vdo, writecache, integrity, error, zero, ...) make every report of
//! their VG fail with [`ReportError::UnsupportedSegment`]: their areas, and so
//! PE allocation, stripes and devices, are unknown to cairn, and a guess would
//! be a report that differs from lvm2's.

use std::collections::HashMap;

use crate::meta::model::{
    Area, LogicalVolume, LvStatus, PvStatus, Segment, SegmentKind, VgStatus, VolumeGroup,
};

/// One report row: field name to lvm2's string for it, in the order the
/// fields were set. Rows are built in report-field order, so a lookup that
/// starts after the previous hit (`get_from`) finds each field in one step:
/// a 1000-LV report is 24000 lookups, and a map's key comparisons were a
/// tenth of `cairn lvs`'s instructions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    fields: Vec<(&'static str, String)>,
}

impl Row {
    /// A row with no field yet, room made for an `lvs` row's fields.
    pub fn new() -> Row {
        Row {
            fields: Vec::with_capacity(LV_FIELDS.len()),
        }
    }

    /// Sets a field. Each field is set once per row (checked in tests).
    pub fn insert(&mut self, field: &'static str, value: String) {
        debug_assert!(
            self.fields.iter().all(|(f, _)| *f != field),
            "report field {field} set twice"
        );
        self.fields.push((field, value));
    }

    /// lvm2's string for `field`, when the row has it.
    pub fn get(&self, field: &str) -> Option<&String> {
        self.get_from(field, 0).map(|(_, v)| v)
    }

    /// Looks `field` up starting at index `start` and wrapping around;
    /// returns where it was found, for the next lookup to start after it.
    fn get_from(&self, field: &str, start: usize) -> Option<(usize, &String)> {
        let n = self.fields.len();
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| self.fields[i].0 == field)
            .map(|i| (i, &self.fields[i].1))
    }

    /// The fields and their strings, in the order they were set.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.fields.iter().map(|(f, v)| (*f, v.as_str()))
    }
}

impl std::ops::Index<&str> for Row {
    type Output = String;
    fn index(&self, field: &str) -> &String {
        self.get(field)
            .unwrap_or_else(|| panic!("report row has no field {field}"))
    }
}

/// `lvs` fields, in the order cairn prints them.
pub const LV_FIELDS: [&str; 26] = [
    "lv_name",
    "vg_name",
    "lv_uuid",
    "lv_size",
    "segtype",
    "pool_lv",
    "origin",
    "lv_attr",
    "lv_tags",
    "data_lv",
    "metadata_lv",
    "lv_metadata_size",
    "seg_count",
    "stripes",
    "stripe_size",
    "chunk_size",
    "transaction_id",
    "thin_id",
    "cache_mode",
    "cache_policy",
    "devices",
    "seg_pe_ranges",
    "lv_role",
    "lv_layout",
    "data_percent",
    "metadata_percent",
];

/// `vgs` fields, in the order cairn prints them.
pub const VG_FIELDS: [&str; 16] = [
    "vg_name",
    "vg_uuid",
    "vg_size",
    "vg_free",
    "vg_seqno",
    "vg_extent_size",
    "vg_extent_count",
    "vg_free_count",
    "pv_count",
    "lv_count",
    "snap_count",
    "vg_attr",
    "vg_tags",
    "vg_mda_count",
    "vg_mda_size",
    "vg_mda_free",
];

/// `pvs` fields, in the order cairn prints them.
pub const PV_FIELDS: [&str; 16] = [
    "pv_name",
    "vg_name",
    "pv_uuid",
    "pv_size",
    "pv_free",
    "pv_used",
    "pe_start",
    "pv_pe_count",
    "pv_pe_alloc_count",
    "pv_attr",
    "pv_tags",
    "dev_size",
    "pv_mda_count",
    "pv_mda_size",
    "pv_mda_free",
    "pv_ext_vsn",
];

/// Which report: the name lvm2 gives its JSON array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// `lvs`: one row per LV (hidden ones too, as `lvs -a`).
    Lv,
    /// `vgs`: one row per VG.
    Vg,
    /// `pvs`: one row per PV.
    Pv,
}

impl ReportKind {
    /// lvm2's JSON name of the report's rows: `lv`, `vg` or `pv`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Lv => "lv",
            ReportKind::Vg => "vg",
            ReportKind::Pv => "pv",
        }
    }

    /// The fields of this report, in print order.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            ReportKind::Lv => &LV_FIELDS,
            ReportKind::Vg => &VG_FIELDS,
            ReportKind::Pv => &PV_FIELDS,
        }
    }
}

/// What the device scan knows about one PV of the VG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvInfo {
    /// The device path where the PV was found, e.g. `/dev/loop1`.
    pub name: String,
    /// The size of that device, in bytes (lvm2 asks the device, not the
    /// metadata's `dev_size`).
    pub dev_size_bytes: u64,
    /// Metadata areas the PV header lists.
    pub mda_count: u32,
    /// The smallest of those areas, in bytes (the mda header's `size`).
    pub mda_size: u64,
    /// The least free space among them, in bytes: [`mda_free`] of each area.
    pub mda_free: u64,
    /// The PV header extension version (2 for PVs lvm2 2.02.116+ created).
    pub ext_version: u32,
    /// The areas carry the "ignored" flag (`pvchange --metadataignore y`):
    /// lvm2 still counts them in vg_mda_count but leaves them out of
    /// vg_mda_size and vg_mda_free (vg.c uses `metadata_areas_in_use`).
    pub mda_ignored: bool,
}

/// Free space lvm2 reports for a metadata area (`pv_mda_free`, `vg_mda_free`),
/// in bytes, as lvm2 2.03.16's read_metadata_location_summary
/// (lib/format_text/format-text.c) computes it: one copy of the text may take
/// at most half of the area after its 512-byte header, less 512 bytes because
/// each copy starts on a sector boundary; what the committed copy leaves of
/// that is rounded down to whole sectors. `mda_size` is the area size from the
/// mda header (header included); `text_size_with_nul` is raw location slot 0's
/// `size` (the text and its NUL), 0 for an area with no committed text.
pub fn mda_free(mda_size: u64, text_size_with_nul: u64) -> u64 {
    const MDA_HEADER_SIZE: u64 = 512;
    let max_size = (mda_size.saturating_sub(MDA_HEADER_SIZE) / 2).saturating_sub(512);
    max_size.saturating_sub(text_size_with_nul) / SECTOR * SECTOR
}

/// What device-mapper says about an LV's device, as lvm2's lv_info reads it
/// (the fields of DM_DEV_STATUS plus the target's status line). The device
/// lvm2 asks about is `vg-lv`, except: a thin pool's `-tpool` layer (which
/// lvm2 counts as inactive when the pool's own `vg-pool` device is absent);
/// a used cache pool, which has no device (its activity is ignored here,
/// its health is the cache LV's). [`LvActivity::INACTIVE`] for an LV without
/// a device gives what lvm2 prints for an inactive VG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LvActivity {
    /// A device exists.
    pub exists: bool,
    /// It has a live table.
    pub live_table: bool,
    /// It has an inactive (loaded, not resumed) table.
    pub inactive_table: bool,
    /// It is suspended (I/O to it waits).
    pub suspended: bool,
    /// Its open count is not 0.
    pub open: bool,
    /// It is read-only.
    pub read_only: bool,
    /// What its target's status line says, as far as lv_attr shows it.
    pub target: TargetState,
    /// Data% from the status line (lvm2's lvseg_percent rules): a thin
    /// pool's or thin LV's mapped data, a snapshot's COW use, a cache's
    /// used blocks.
    pub data_percent: Option<super::percent::Percent>,
    /// Meta% from the status line, by the same rules: a thin pool's or
    /// cache's metadata use.
    pub metadata_percent: Option<super::percent::Percent>,
}

impl LvActivity {
    /// No device: lv_attr shows `--` at characters 5 and 6.
    pub const INACTIVE: LvActivity = LvActivity {
        exists: false,
        live_table: false,
        inactive_table: false,
        suspended: false,
        open: false,
        read_only: false,
        target: TargetState::Healthy,
        data_percent: None,
        metadata_percent: None,
    };

    /// A running device with a live table, open or not.
    pub fn active(open: bool) -> LvActivity {
        LvActivity {
            exists: true,
            live_table: true,
            open,
            ..LvActivity::INACTIVE
        }
    }
}

/// The states of a target's status line that lvm2 folds into lv_attr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetState {
    /// Nothing to flag (also: no device).
    #[default]
    Healthy,
    /// The status could not be read or parsed: lvm2 prints 'X'.
    Unknown,
    /// thin-pool, thin or cache target reports `Fail`.
    Failed,
    /// thin-pool reports `out_of_data_space`.
    OutOfDataSpace,
    /// thin-pool or cache target runs read-only (metadata trouble).
    ReadOnly,
    /// thin-pool or cache target has `needs_check` set.
    NeedsCheck,
    /// A snapshot target reports `Invalid` (the COW filled up).
    SnapshotInvalid,
    /// A snapshot-merge target reports `Merge failed`.
    SnapshotMergeFailed,
}

/// Why a report cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The caller gave a [`PvInfo`] list whose length is not the VG's PV
    /// count.
    #[error("{vg}: {got} PV infos given for {expected} PVs")]
    PvCount {
        /// The VG.
        vg: String,
        /// PVs its metadata lists.
        expected: usize,
        /// PV infos given.
        got: usize,
    },
    /// An LV has a segment type cairn keeps uninterpreted (raid, mirror,
    /// vdo, ...): the VG's report would differ from lvm2's.
    #[error("{vg}/{lv}: segment type {segtype} is not one cairn can report on")]
    UnsupportedSegment {
        /// The VG.
        vg: String,
        /// The LV.
        lv: String,
        /// lvm2's name of the segment type.
        segtype: String,
    },
    /// A segment names an LV (pool, origin, metadata) the metadata lacks.
    #[error("{vg}/{lv}: refers to LV {name}, which the VG does not have")]
    UnknownLv {
        /// The VG.
        vg: String,
        /// The LV whose segment refers to it.
        lv: String,
        /// The missing LV's name.
        name: String,
    },
    /// A segment's area names a PV number the metadata lacks.
    #[error("{vg}/{lv}: refers to PV number {pv}, which the VG does not have")]
    UnknownPv {
        /// The VG.
        vg: String,
        /// The LV whose segment refers to it.
        lv: String,
        /// The PV number (`pvN` in the metadata text).
        pv: usize,
    },
}

const SECTOR: u64 = 512;

/// Sectors to bytes; metadata numbers are not trusted not to overflow.
fn bytes(sectors: u64) -> u64 {
    sectors.saturating_mul(SECTOR)
}

// ---- what lvm2 derives while reading a VG -----------------------------------

/// How a segment uses an LV (one entry of lvm2's `segs_using_this_lv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    /// As area number n (striped areas, pool data, cache origin).
    Area(usize),
    /// As the thin pool of a thin LV or the cache pool of a cache LV.
    Pool,
    /// As a pool's metadata LV.
    Metadata,
    /// As the origin of a thin snapshot.
    ThinOrigin,
    /// As the merge target of a thin snapshot that is not its origin.
    Merge,
    /// As the external origin of a thin LV.
    External,
}

/// The status bits and back references lvm2 sets on an LV while reading the
/// VG (import_vsn1.c and the segment handlers), which the model leaves
/// implicit in the segments that name the LV.
#[derive(Debug, Clone, Default)]
struct LvFacts {
    thin_pool: bool,
    thin_pool_data: bool,
    thin_pool_metadata: bool,
    thin_volume: bool,
    cache_pool: bool,
    cache_pool_data: bool,
    cache_pool_metadata: bool,
    cache: bool,
    cache_vol: bool,
    /// SNAPSHOT: the internal `snapshotN` LV of a thick snapshot.
    snapshot: bool,
    /// VIRTUAL: a segment without areas (thin, snapshot).
    virtual_: bool,
    /// VIRTUAL_ORIGIN: the origin of a thick snapshot was hidden.
    virtual_origin: bool,
    /// MERGING on the LV itself: a merging origin.
    merging: bool,
    /// POOL_METADATA_SPARE.
    pmspare: bool,
    /// LOCKD_SANLOCK_LV.
    sanlock: bool,
    origin_count: usize,
    external_count: usize,
    /// lvm2's `lv->snapshot`: the snapshot segment (LV, segment index) whose
    /// COW this LV is, or which merges into it.
    snapshot_seg: Option<(usize, usize)>,
    /// The COW LVs of the snapshots of this origin, in list order.
    cows: Vec<usize>,
    used_by: Vec<(usize, Use)>,
    partial: bool,
}

/// The VG with lvm2's derived facts, ready to report.
struct Vg<'a> {
    vg: &'a VolumeGroup,
    index: HashMap<&'a str, usize>,
    pvs: &'a [Option<PvInfo>],
    lvs: Vec<LvFacts>,
    /// Per PV: lvm2's is_missing_pv.
    pv_missing: Vec<bool>,
    /// Per PV: pe_alloc_count.
    pv_alloc: Vec<u64>,
}

/// A segment's areas: where each stripe lives and for how many extents.
enum AreaRef<'a> {
    Pv { pv: usize, pe: u64, len: u64 },
    Lv(&'a str),
}

fn segment_areas(seg: &Segment) -> Vec<AreaRef<'_>> {
    match &seg.kind {
        SegmentKind::Striped { stripes, .. } => {
            // lvm2's area_len for striped: the segment's extents split evenly.
            let len = seg.extent_count / (stripes.len().max(1) as u64);
            stripes
                .iter()
                .map(|a| match a {
                    Area::Pv { pv, pe } => AreaRef::Pv {
                        pv: *pv,
                        pe: *pe,
                        len,
                    },
                    Area::Lv { lv, .. } => AreaRef::Lv(lv),
                })
                .collect()
        }
        // attach_pool_data_lv: the data LV is area 0 of a pool segment.
        SegmentKind::ThinPool { pool, .. } => vec![AreaRef::Lv(pool)],
        SegmentKind::CachePool { data, .. } => vec![AreaRef::Lv(data)],
        // cache.c: the origin is area 0 of the cache segment.
        SegmentKind::Cache { origin, .. } => vec![AreaRef::Lv(origin)],
        SegmentKind::Thin { .. } | SegmentKind::Snapshot { .. } | SegmentKind::Other { .. } => {
            Vec::new()
        }
    }
}

/// An LV's length in extents (its segments' sum).
fn lv_extents(lv: &LogicalVolume) -> u64 {
    lv.segments
        .iter()
        .fold(0u64, |n, s| n.saturating_add(s.extent_count))
}

fn has_flag(flags: &[String], flag: &str) -> bool {
    flags.iter().any(|f| f == flag)
}

impl<'a> Vg<'a> {
    fn new(vg: &'a VolumeGroup, pvs: &'a [Option<PvInfo>]) -> Result<Vg<'a>, ReportError> {
        if pvs.len() != vg.pvs.len() {
            return Err(ReportError::PvCount {
                vg: vg.name.clone(),
                expected: vg.pvs.len(),
                got: pvs.len(),
            });
        }
        let index: HashMap<&str, usize> = vg
            .lvs
            .iter()
            .enumerate()
            .map(|(i, lv)| (lv.name.as_str(), i))
            .collect();
        let mut lvs = vec![LvFacts::default(); vg.lvs.len()];
        let mut pv_alloc = vec![0u64; vg.pvs.len()];
        for (i, lv) in vg.lvs.iter().enumerate() {
            let find = |name: &str| {
                index
                    .get(name)
                    .copied()
                    .ok_or_else(|| ReportError::UnknownLv {
                        vg: vg.name.clone(),
                        lv: lv.name.clone(),
                        name: name.to_owned(),
                    })
            };
            for (j, seg) in lv.segments.iter().enumerate() {
                for (n, area) in segment_areas(seg).into_iter().enumerate() {
                    match area {
                        AreaRef::Pv { pv, len, .. } => {
                            let alloc = pv_alloc.get_mut(pv).ok_or(ReportError::UnknownPv {
                                vg: vg.name.clone(),
                                lv: lv.name.clone(),
                                pv,
                            })?;
                            *alloc = alloc.saturating_add(len);
                        }
                        AreaRef::Lv(name) => lvs[find(name)?].used_by.push((i, Use::Area(n))),
                    }
                }
                match &seg.kind {
                    SegmentKind::Striped { .. } => {}
                    SegmentKind::ThinPool { metadata, pool, .. } => {
                        lvs[i].thin_pool = true;
                        lvs[find(pool)?].thin_pool_data = true;
                        let m = find(metadata)?;
                        lvs[m].thin_pool_metadata = true;
                        lvs[m].used_by.push((i, Use::Metadata));
                    }
                    SegmentKind::CachePool { data, metadata, .. } => {
                        lvs[i].cache_pool = true;
                        lvs[find(data)?].cache_pool_data = true;
                        let m = find(metadata)?;
                        lvs[m].cache_pool_metadata = true;
                        lvs[m].used_by.push((i, Use::Metadata));
                    }
                    SegmentKind::Thin {
                        thin_pool,
                        external_origin,
                        origin,
                        merge,
                        ..
                    } => {
                        lvs[i].thin_volume = true;
                        lvs[i].virtual_ = true;
                        // attach_pool_lv: origin first, then the pool, then a
                        // merge target that is not the origin.
                        let o = origin.as_deref().map(find).transpose()?;
                        if let Some(o) = o {
                            lvs[o].used_by.push((i, Use::ThinOrigin));
                        }
                        let p = find(thin_pool)?;
                        lvs[p].used_by.push((i, Use::Pool));
                        if let Some(m) = merge.as_deref().map(find).transpose()? {
                            if Some(m) != o {
                                lvs[m].used_by.push((i, Use::Merge));
                            }
                            // init_snapshot_merge
                            lvs[m].merging = true;
                            lvs[m].snapshot_seg = Some((i, j));
                        }
                        if let Some(e) = external_origin.as_deref().map(find).transpose()? {
                            lvs[e].external_count += 1;
                            lvs[e].used_by.push((i, Use::External));
                        }
                    }
                    SegmentKind::Cache { cache_pool, .. } => {
                        lvs[i].cache = true;
                        let p = find(cache_pool)?;
                        lvs[p].used_by.push((i, Use::Pool));
                        if has_flag(&seg.type_flags, "CACHE_USES_CACHEVOL") {
                            lvs[p].cache_vol = true;
                        }
                    }
                    SegmentKind::Snapshot {
                        origin,
                        cow,
                        merging,
                        ..
                    } => {
                        // init_snapshot_seg
                        lvs[i].snapshot = true;
                        lvs[i].virtual_ = true;
                        let o = find(origin)?;
                        let c = find(cow)?;
                        lvs[c].snapshot_seg = Some((i, j));
                        lvs[o].origin_count += 1;
                        lvs[o].cows.push(c);
                        if !vg.lvs[o].is_visible() {
                            lvs[o].virtual_origin = true;
                        }
                        if *merging {
                            lvs[o].merging = true;
                            lvs[o].snapshot_seg = Some((i, j));
                        }
                    }
                    SegmentKind::Other { type_name } => {
                        return Err(ReportError::UnsupportedSegment {
                            vg: vg.name.clone(),
                            lv: lv.name.clone(),
                            segtype: type_name.clone(),
                        })
                    }
                }
            }
            // import_vsn1.c _read_lvnames: hidden LVs named *_pmspare (the
            // first only) and "lvmlock" get their roles by name.
            if !lv.is_visible() {
                if lv.name.contains("_pmspare") && !lvs.iter().any(|f| f.pmspare) {
                    lvs[i].pmspare = true;
                }
                if lv.name == "lvmlock" {
                    lvs[i].sanlock = true;
                }
            }
            // The LV's own CACHE_VOL flag (written for cachevols).
            if has_flag(&lv.flags, "CACHE_VOL") {
                lvs[i].cache_vol = true;
            }
        }
        let pv_missing = vg
            .pvs
            .iter()
            .zip(pvs)
            .map(|(pv, info)| {
                pv.status.contains(PvStatus::MISSING)
                    || has_flag(&pv.flags, "MISSING")
                    || info.is_none()
            })
            .collect();
        let mut this = Vg {
            vg,
            index,
            pvs,
            lvs,
            pv_missing,
            pv_alloc,
        };
        this.mark_partial();
        Ok(this)
    }

    /// lvm2's _lv_each_dependency, in its order: the snapshot segment's
    /// origin and COW, then per segment the external origin, pool, metadata
    /// LV and area LVs, then an origin's COWs.
    fn dependencies(&self, i: usize) -> Vec<usize> {
        let find = |name: &str| self.index_of(name);
        let mut deps = Vec::new();
        if let Some((s, j)) = self.lvs[i].snapshot_seg {
            if let Some(seg) = self.vg.lvs[s].segments.get(j) {
                match &seg.kind {
                    SegmentKind::Snapshot { origin, cow, .. } => {
                        deps.extend(find(origin));
                        deps.extend(find(cow));
                    }
                    SegmentKind::Thin { origin, .. } => {
                        deps.extend(origin.as_deref().and_then(find));
                    }
                    _ => {}
                }
            }
        }
        for seg in &self.vg.lvs[i].segments {
            match &seg.kind {
                SegmentKind::Thin {
                    thin_pool,
                    external_origin,
                    ..
                } => {
                    deps.extend(external_origin.as_deref().and_then(find));
                    deps.extend(find(thin_pool));
                }
                SegmentKind::Cache { cache_pool, .. } => deps.extend(find(cache_pool)),
                SegmentKind::ThinPool { metadata, .. }
                | SegmentKind::CachePool { metadata, .. } => deps.extend(find(metadata)),
                _ => {}
            }
            for area in segment_areas(seg) {
                if let AreaRef::Lv(name) = area {
                    deps.extend(find(name));
                }
            }
        }
        if self.lvs[i].origin_count > 0 {
            deps.extend(self.lvs[i].cows.iter().copied());
        }
        deps
    }

    /// vg_mark_partial_lvs: an LV is partial when one of its areas is on a
    /// missing PV or an LV it depends on is partial, visited depth-first in
    /// post-order from each LV in list order. A dependency still being
    /// visited (a snapshot's origin and COW depend on each other) counts as
    /// it stands at that moment, as in lvm2, so the order matters.
    fn mark_partial(&mut self) {
        const NEW: u8 = 0;
        const OPEN: u8 = 1;
        const DONE: u8 = 2;
        let mut state = vec![NEW; self.lvs.len()];
        for root in 0..self.lvs.len() {
            if state[root] != NEW {
                continue;
            }
            state[root] = OPEN;
            // An explicit stack: dependency chains come from the input.
            let mut stack = vec![(root, self.dependencies(root), 0usize)];
            while let Some((i, deps, next)) = stack.last_mut() {
                if let Some(&d) = deps.get(*next) {
                    *next += 1;
                    if state[d] == NEW {
                        state[d] = OPEN;
                        let dd = self.dependencies(d);
                        stack.push((d, dd, 0));
                    }
                    continue;
                }
                let (i, deps) = (*i, std::mem::take(deps));
                stack.pop();
                let own = self.vg.lvs[i].segments.iter().any(|seg| {
                    segment_areas(seg).iter().any(|a| {
                        matches!(a, AreaRef::Pv { pv, .. } if self.pv_missing.get(*pv).copied().unwrap_or(true))
                    })
                });
                if own || deps.iter().any(|&d| self.lvs[d].partial) {
                    self.lvs[i].partial = true;
                }
                state[i] = DONE;
            }
        }
    }

    // ---- lvm2's predicates ---------------------------------------------------

    fn lv(&self, i: usize) -> &'a LogicalVolume {
        &self.vg.lvs[i]
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    fn snapshot_segment(&self, i: usize) -> Option<&'a Segment> {
        let (s, j) = self.lvs[i].snapshot_seg?;
        self.vg.lvs[s].segments.get(j)
    }

    /// lv_is_origin: a thick snapshot's origin.
    fn is_origin(&self, i: usize) -> bool {
        self.lvs[i].origin_count > 0
    }

    /// lv_is_cow: the COW store of a thick snapshot (not a merging origin).
    fn is_cow(&self, i: usize) -> bool {
        let f = &self.lvs[i];
        f.snapshot_seg.is_some() && !f.thin_volume && f.origin_count == 0
    }

    fn is_merging_cow(&self, i: usize) -> bool {
        self.is_cow(i)
            && matches!(
                self.snapshot_segment(i).map(|s| &s.kind),
                Some(SegmentKind::Snapshot { merging: true, .. })
            )
    }

    /// The origin of a COW LV (origin_from_cow).
    fn cow_origin(&self, i: usize) -> Option<usize> {
        match &self.snapshot_segment(i)?.kind {
            SegmentKind::Snapshot { origin, .. } => self.index_of(origin),
            _ => None,
        }
    }

    fn is_merging_origin(&self, i: usize) -> bool {
        self.lvs[i].merging && self.lvs[i].snapshot_seg.is_some()
    }

    /// lv_is_merging_thin_snapshot: the first segment is merging.
    fn is_merging_thin_snapshot(&self, i: usize) -> bool {
        matches!(
            self.lv(i).segments.first().map(|s| &s.kind),
            Some(SegmentKind::Thin { merge: Some(_), .. })
        )
    }

    /// lv_is_cache_origin: exactly one segment uses the LV, as area 0 of a
    /// cache LV.
    fn is_cache_origin(&self, i: usize) -> bool {
        match self.lvs[i].used_by.as_slice() {
            [(user, Use::Area(0))] => self.lvs[*user].cache,
            _ => false,
        }
    }

    fn is_used_cache_pool(&self, i: usize) -> bool {
        self.lvs[i].cache_pool && !self.lvs[i].used_by.is_empty()
    }

    /// lv_is_thin_origin: how many thin snapshots have this LV as origin.
    fn thin_snapshot_count(&self, i: usize) -> usize {
        if !self.lvs[i].thin_volume {
            return 0;
        }
        self.lvs[i]
            .used_by
            .iter()
            .filter(|(_, u)| *u == Use::ThinOrigin)
            .count()
    }

    /// lv_is_thin_snapshot: a thin LV with an origin or an external origin.
    fn is_thin_snapshot(&self, i: usize) -> bool {
        matches!(
            self.lv(i).segments.first().map(|s| &s.kind),
            Some(SegmentKind::Thin { origin, external_origin, .. })
                if origin.is_some() || external_origin.is_some()
        )
    }

    /// lv_is_visible (snapshot_manip.c): the internal snapshotN LV never is;
    /// a COW is when its origin is virtual, never while merging, else as its
    /// origin; other LVs by their VISIBLE flag.
    fn visible(&self, mut i: usize) -> bool {
        // Each step moves from a COW to its origin; a longer walk is a loop.
        for _ in 0..=self.lvs.len() {
            if self.lvs[i].snapshot {
                return false;
            }
            if !self.is_cow(i) {
                return self.lv(i).is_visible();
            }
            let Some(origin) = self.cow_origin(i) else {
                return false;
            };
            if self.lvs[origin].virtual_origin {
                return true;
            }
            if self.is_merging_cow(i) {
                return false;
            }
            i = origin;
        }
        false
    }

    /// An LV name as _lvname_disp prints it: hidden LVs in brackets.
    fn display_name(&self, i: usize) -> String {
        if self.visible(i) {
            self.lv(i).name.clone()
        } else {
            format!("[{}]", self.lv(i).name)
        }
    }

    fn display_name_of(&self, name: &str) -> String {
        match self.index_of(name) {
            Some(i) => self.display_name(i),
            None => name.to_owned(),
        }
    }

    fn lv_bytes(&self, i: usize) -> u64 {
        lv_extents(self.lv(i)).saturating_mul(bytes(self.vg.extent_size))
    }

    fn pv_name(&self, pv: usize) -> &str {
        // dev_name() of a PV without a device: DEFAULT_UNKNOWN_DEVICE_NAME.
        match self.pvs.get(pv) {
            Some(Some(info)) => &info.name,
            _ => "[unknown]",
        }
    }

    // ---- lv_attr ------------------------------------------------------------

    /// lv_attr_dup_with_info_and_seg_status (lib/metadata/lv.c), for the LV
    /// kinds the model has. Kinds it rejects (raid, mirror, vdo, integrity,
    /// writecache, error/zero) never get here.
    fn lv_attr(&self, i: usize, act: &LvActivity) -> String {
        let lv = self.lv(i);
        let f = &self.lvs[i];
        let mut attr = ['-'; 10];

        // 1: volume type, first match wins. A thick origin (or a thin
        // external origin) takes precedence over everything but pvmove:
        // 'O' while a snapshot merges into it.
        attr[0] = if lv.status.contains(LvStatus::PVMOVE) {
            'p'
        } else if self.is_origin(i) || f.external_count > 0 {
            if self.is_merging_origin(i) {
                'O'
            } else {
                'o'
            }
        // pool metadata (_tmeta, _cmeta) and the pool metadata spare: 'e'
        } else if f.thin_pool_metadata || f.cache_pool_metadata || f.pmspare {
            'e'
        // lv_is_cache_type: cached LV, cache pool, cachevol, _cdata: 'C'
        } else if f.cache || f.cache_pool || f.cache_vol || f.cache_pool_data {
            'C'
        // thin volume: 'V'; 'O' when a thin snapshot merges into it, 'S' for
        // the merging thin snapshot
        } else if f.thin_volume {
            if self.is_merging_origin(i) {
                'O'
            } else if self.is_merging_thin_snapshot(i) {
                'S'
            } else {
                'V'
            }
        } else if f.virtual_ {
            'v'
        } else if f.thin_pool {
            't'
        } else if f.thin_pool_data {
            'T'
        // thick snapshot COW: 's', 'S' while merging
        } else if self.is_cow(i) {
            if self.is_merging_cow(i) {
                'S'
            } else {
                's'
            }
        // a cached LV's _corig
        } else if self.is_cache_origin(i) {
            'o'
        } else {
            '-'
        };

        // 2: permissions. WRITE_LOCKED (lvmlockd) reads as WRITE
        // (import_vsn1.c); 'R' below for a read-only device.
        attr[1] = if lv.status.contains(LvStatus::PVMOVE) {
            '-'
        } else if lv.status.contains(LvStatus::WRITE) || has_flag(&lv.flags, "WRITE_LOCKED") {
            'w'
        } else if lv.status.contains(LvStatus::READ) {
            'r'
        } else {
            '-'
        };

        // 3: allocation policy (alloc_policy_char), upper case when LOCKED.
        attr[2] = alloc_char(lv.allocation_policy.as_deref(), 'i');
        if lv.status.contains(LvStatus::LOCKED) {
            attr[2] = attr[2].to_ascii_uppercase();
        }

        // 4: fixed minor.
        if lv.status.contains(LvStatus::FIXED_MINOR) {
            attr[3] = 'm';
        }

        // 5, 6: device state and open. A used cache pool has no device
        // (lv_info_with_seg_status sets no info for it); its status is the
        // cache LV's.
        let snapshot_status = self.is_cow(i) || self.is_merging_origin(i);
        let cache_status = f.cache || self.is_used_cache_pool(i);
        let has_device = act.exists && !self.is_used_cache_pool(i);
        if act.target == TargetState::Unknown {
            attr[4] = 'X';
            attr[5] = 'X';
        } else if has_device {
            attr[4] = if act.suspended {
                's'
            } else if act.live_table {
                'a'
            } else if act.inactive_table {
                'i'
            } else {
                'd'
            };
            if act.live_table && snapshot_status {
                match act.target {
                    TargetState::SnapshotInvalid => attr[4] = if act.suspended { 'S' } else { 'I' },
                    TargetState::SnapshotMergeFailed => {
                        attr[4] = if act.suspended { 'M' } else { 'm' }
                    }
                    _ => {}
                }
            }
            if act.target == TargetState::NeedsCheck && (f.thin_pool || f.cache) {
                attr[4] = if act.suspended { 'C' } else { 'c' };
            }
            if attr[1] != 'r' && act.read_only {
                attr[1] = 'R';
            }
            if act.open {
                attr[5] = 'o';
            }
        }

        // 7: target type.
        attr[6] = if f.thin_pool || f.thin_volume {
            't'
        } else if f.cache_pool || f.cache_vol || f.cache || self.is_cache_origin(i) {
            'C'
        } else if lv.status.contains(LvStatus::PVMOVE) {
            'm'
        } else if self.is_cow(i) || self.is_origin(i) {
            's'
        } else if f.virtual_ {
            'v'
        } else {
            '-'
        };

        // 8: newly allocated thin blocks are zeroed (the pool's setting).
        let zeroing_pool = if f.thin_pool {
            Some(i)
        } else if f.thin_volume {
            match lv.segments.first().map(|s| &s.kind) {
                Some(SegmentKind::Thin { thin_pool, .. }) => self.index_of(thin_pool),
                _ => None,
            }
        } else {
            None
        };
        if zeroing_pool.is_some_and(|p| {
            matches!(
                self.lv(p).segments.first().map(|s| &s.kind),
                Some(SegmentKind::ThinPool {
                    zero_new_blocks: true,
                    ..
                })
            )
        }) {
            attr[7] = 'z';
        }

        // 9: health: partial (an area on a missing PV, here or below), else
        // what the target's status says.
        attr[8] = if f.partial {
            'p'
        } else {
            match act.target {
                TargetState::Unknown => 'X',
                TargetState::Failed if cache_status || f.thin_pool || f.thin_volume => 'F',
                TargetState::ReadOnly if cache_status || f.thin_pool => 'M',
                TargetState::OutOfDataSpace if f.thin_pool => 'D',
                _ => '-',
            }
        };

        // 10: skip activation (the ACTIVATION_SKIP compat flag).
        if has_flag(&lv.flags, "ACTIVATION_SKIP") {
            attr[9] = 'k';
        }
        attr.iter().collect()
    }

    // ---- lv_layout, lv_role ---------------------------------------------------

    /// lv_layout_and_role (lib/metadata/lv_manip.c) for the kinds the model
    /// has: roles are collected per family, then "public" or "private" goes
    /// first; a layout no family set is linear and/or striped by segments.
    fn layout_and_role(&self, i: usize) -> (Vec<&'static str>, Vec<&'static str>) {
        let f = &self.lvs[i];
        let mut layout: Vec<&'static str> = Vec::new();
        let mut role: Vec<&'static str> = Vec::new();
        let mut public = true;
        // str_list_add skips an item already listed; the _no_dup_check
        // variant does not.
        fn add_once(list: &mut Vec<&'static str>, item: &'static str) {
            if !list.contains(&item) {
                list.push(item);
            }
        }

        // Thin family (_lv_layout_and_role_thin).
        let thin_type = f.thin_pool || f.thin_volume || f.thin_pool_data || f.thin_pool_metadata;
        if thin_type || f.external_count > 0 {
            if f.thin_pool_metadata {
                role.extend(["thin", "pool", "metadata"]);
                public = false;
            } else if f.thin_pool_data {
                role.extend(["thin", "pool", "data"]);
                public = false;
            } else {
                if f.thin_volume {
                    layout.extend(["thin", "sparse"]);
                    let snaps = self.thin_snapshot_count(i);
                    if snaps > 0 {
                        add_once(&mut role, "origin");
                        role.push("thinorigin");
                        if snaps > 1 {
                            role.push("multithinorigin");
                        }
                    }
                    if self.is_thin_snapshot(i) {
                        add_once(&mut role, "snapshot");
                        role.push("thinsnapshot");
                    }
                } else if f.thin_pool {
                    layout.extend(["thin", "pool"]);
                    public = false;
                }
                if f.external_count > 0 {
                    add_once(&mut role, "origin");
                    role.push("extthinorigin");
                    if f.external_count > 1 {
                        role.push("multiextthinorigin");
                    }
                }
            }
        }

        // Cache family (_lv_layout_and_role_cache).
        let cache_type =
            f.cache || f.cache_pool || f.cache_vol || f.cache_pool_data || f.cache_pool_metadata;
        let cache_origin = self.is_cache_origin(i);
        if cache_type || cache_origin {
            if f.cache_pool_metadata {
                role.extend(["cache", "pool", "metadata"]);
                public = false;
            } else if f.cache_pool_data {
                role.extend(["cache", "pool", "data"]);
                if f.cache {
                    layout.push("cache");
                }
                public = false;
            } else if cache_origin {
                add_once(&mut role, "cache");
                add_once(&mut role, "origin");
                role.push("cacheorigin");
                if f.cache {
                    layout.push("cache");
                }
                public = false;
            } else {
                // The top-level chain: lvm2's `if (cache && !add) ... else if`
                // goes on to the cachevol and pool tests after a cache LV.
                if f.cache {
                    layout.push("cache");
                }
                if f.cache_vol {
                    layout.extend(["cache", "cachevol"]);
                    public = false;
                } else if f.cache_pool {
                    layout.extend(["cache", "pool"]);
                    public = false;
                }
            }
        }

        if f.pmspare {
            role.extend(["pool", "spare"]);
            public = false;
        }

        // Thick snapshots (_lv_layout_and_role_thick_origin_snapshot).
        if self.is_origin(i) {
            add_once(&mut role, "origin");
            role.push("thickorigin");
            if f.virtual_ && !f.thin_volume {
                layout.push("virtual");
                public = false;
            }
            if f.origin_count > 1 {
                role.push("multithickorigin");
            }
        } else if self.is_cow(i) {
            add_once(&mut role, "snapshot");
            role.push("thicksnapshot");
        }

        if f.sanlock {
            role.extend(["lockd", "sanlock"]);
            public = false;
        }

        if layout.is_empty() {
            let mut linear = false;
            let mut striped = false;
            for seg in &self.lv(i).segments {
                if let SegmentKind::Striped { stripes, .. } = &seg.kind {
                    if stripes.len() == 1 {
                        linear = true;
                    } else {
                        striped = true;
                    }
                }
            }
            if linear {
                layout.push("linear");
            }
            if striped {
                layout.push("striped");
            }
            if !linear && !striped {
                layout.push("unknown");
            }
        }
        role.insert(0, if public { "public" } else { "private" });
        (layout, role)
    }

    // ---- segment fields --------------------------------------------------------

    /// The cache settings a segment of LV `owner` reports (the
    /// "setting_seg" of _cache_policy_disp, display_cache_mode and
    /// lvseg_chunksize): a cache pool's own, a cachevol's cache segment's,
    /// or for a cache LV its pool's.
    fn cache_settings(&self, owner: usize, seg: &'a Segment) -> Option<CacheSettingsView<'a>> {
        match &seg.kind {
            SegmentKind::CachePool { settings, .. } => Some(CacheSettingsView {
                chunk_size: settings.chunk_size,
                mode: settings.cache_mode.as_deref(),
                policy: settings.policy.as_deref(),
                // cache.c _fix_missing_defaults: a used pool without these
                // reads as writethrough and mq.
                defaults: self.is_used_cache_pool(owner),
            }),
            SegmentKind::Cache { cache_pool, .. } => {
                let p = self.index_of(cache_pool)?;
                if self.lvs[p].cache_vol {
                    // A cachevol's settings live in the cache segment (the
                    // model keeps them in `extra`).
                    return Some(CacheSettingsView {
                        chunk_size: seg
                            .extra
                            .int("chunk_size")
                            .and_then(|v| u64::try_from(v).ok()),
                        mode: seg.extra.str("cache_mode"),
                        policy: seg.extra.str("policy"),
                        defaults: false,
                    });
                }
                let pool_seg = self.lv(p).segments.first()?;
                match pool_seg.kind {
                    SegmentKind::CachePool { .. } => self.cache_settings(p, pool_seg),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// lvseg_chunksize, in bytes.
    fn chunk_size(&self, i: usize, seg: &'a Segment) -> u64 {
        let sectors = if self.is_cow(i) {
            match self.snapshot_segment(i).map(|s| &s.kind) {
                Some(SegmentKind::Snapshot { chunk_size, .. }) => *chunk_size,
                _ => 0,
            }
        } else {
            match &seg.kind {
                SegmentKind::ThinPool { chunk_size, .. } => *chunk_size,
                SegmentKind::CachePool { .. } | SegmentKind::Cache { .. } => self
                    .cache_settings(i, seg)
                    .and_then(|s| s.chunk_size)
                    .unwrap_or(0),
                _ => 0,
            }
        };
        bytes(sectors)
    }

    /// `devices` and `seg_pe_ranges` (_format_pvsegs): a PV area as its
    /// device name with its first PE / PE range; an LV area as the LV's bare
    /// name with extent 0 and the LV's whole length, whatever extent the
    /// area starts at (lvm2 prints seg_le only for raid metadata areas).
    fn devices_and_ranges(&self, seg: &Segment) -> (String, String) {
        let mut devices = Vec::new();
        let mut ranges = Vec::new();
        for area in segment_areas(seg) {
            let (name, extent, len) = match area {
                AreaRef::Pv { pv, pe, len } => (self.pv_name(pv).to_owned(), pe, len),
                AreaRef::Lv(name) => {
                    let len = self.index_of(name).map_or(0, |l| lv_extents(self.lv(l)));
                    (name.to_owned(), 0, len)
                }
            };
            devices.push(format!("{name}({extent})"));
            // lvm2 formats the range end as a u32: extent + len - 1.
            let end = (extent as u32).wrapping_add(len as u32).wrapping_sub(1);
            ranges.push(format!("{name}:{extent}-{end}"));
        }
        (devices.join(","), ranges.join(" "))
    }

    fn lv_row(&self, i: usize, seg: &'a Segment, act: &LvActivity) -> Row {
        let lv = self.lv(i);
        let f = &self.lvs[i];
        let first = lv.segments.first();
        let mut row = Row::new();
        let mut set = |k: &'static str, v: String| {
            row.insert(k, v);
        };
        set("lv_name", self.display_name(i));
        set("vg_name", self.vg.name.clone());
        set("lv_uuid", lv.id.clone());

        // _lv_size_disp: extents less a raid reshape's spare space
        // (reshape_len per data stripe; parity_devs is 0 for the kinds here).
        let mut extents = lv_extents(lv);
        if let Some(first) = first {
            let areas = segment_areas(first).len() as u64;
            let reshape = first.reshape_count.unwrap_or(0);
            extents =
                extents.saturating_sub(reshape.saturating_mul(if areas > 2 { areas } else { 1 }));
        }
        set(
            "lv_size",
            extents
                .saturating_mul(bytes(self.vg.extent_size))
                .to_string(),
        );

        // lvseg_name: striped with one area reads "linear".
        set(
            "segtype",
            match &seg.kind {
                SegmentKind::Striped { stripes, .. } if stripes.len() == 1 => "linear".to_owned(),
                kind => kind.type_name().to_owned(),
            },
        );

        // lv_pool_lv: the first segment's pool of a thin or cache LV.
        let pool = match first.map(|s| &s.kind) {
            Some(SegmentKind::Thin { thin_pool, .. }) if f.thin_volume => Some(thin_pool),
            Some(SegmentKind::Cache { cache_pool, .. }) if f.cache => Some(cache_pool),
            _ => None,
        };
        set(
            "pool_lv",
            pool.map_or_else(String::new, |p| self.display_name_of(p)),
        );

        // lv_origin_lv: a COW's origin, a cache LV's area 0, a thin LV's
        // origin or else its external origin.
        let origin = if self.is_cow(i) {
            self.cow_origin(i).map(|o| self.display_name(o))
        } else {
            match first.map(|s| &s.kind) {
                Some(SegmentKind::Cache { origin, .. }) if f.cache => {
                    Some(self.display_name_of(origin))
                }
                Some(SegmentKind::Thin {
                    origin,
                    external_origin,
                    ..
                }) if f.thin_volume => origin
                    .as_deref()
                    .or(external_origin.as_deref())
                    .map(|o| self.display_name_of(o)),
                _ => None,
            }
        };
        set("origin", origin.unwrap_or_default());
        set("lv_attr", self.lv_attr(i, act));
        set("lv_tags", format_tags(&lv.tags));

        // lv_data_lv, lv_metadata_lv, lv_metadata_size: for pools.
        let (data, metadata) = match first.map(|s| &s.kind) {
            Some(SegmentKind::ThinPool { pool, metadata, .. }) if f.thin_pool => {
                (Some(pool), Some(metadata))
            }
            Some(SegmentKind::CachePool { data, metadata, .. }) if f.cache_pool => {
                (Some(data), Some(metadata))
            }
            _ => (None, None),
        };
        set(
            "data_lv",
            data.map_or_else(String::new, |d| self.display_name_of(d)),
        );
        set(
            "metadata_lv",
            metadata.map_or_else(String::new, |m| self.display_name_of(m)),
        );
        let metadata_size = match (metadata, first.map(|s| (&s.kind, s))) {
            (Some(m), _) => self.index_of(m).map(|m| self.lv_bytes(m)),
            // A cache LV on a cachevol: the cache segment's metadata_len.
            (None, Some((SegmentKind::Cache { cache_pool, .. }, s)))
                if self
                    .index_of(cache_pool)
                    .is_some_and(|p| self.lvs[p].cache_vol) =>
            {
                s.extra
                    .int("metadata_len")
                    .and_then(|v| u64::try_from(v).ok())
                    .map(bytes)
            }
            _ => None,
        };
        set(
            "lv_metadata_size",
            metadata_size.map_or_else(String::new, |v| v.to_string()),
        );
        set("seg_count", lv.segments.len().to_string());

        // Segment fields.
        set("stripes", segment_areas(seg).len().to_string());
        let stripe_size = match &seg.kind {
            // striped.c reads stripe_size only with more than one stripe.
            SegmentKind::Striped {
                stripe_size,
                stripes,
            } if stripes.len() > 1 => stripe_size.unwrap_or(0),
            _ => 0,
        };
        set("stripe_size", bytes(stripe_size).to_string());
        set("chunk_size", self.chunk_size(i, seg).to_string());
        set(
            "transaction_id",
            match &seg.kind {
                SegmentKind::ThinPool { transaction_id, .. }
                | SegmentKind::Thin { transaction_id, .. } => transaction_id.to_string(),
                _ => String::new(),
            },
        );
        set(
            "thin_id",
            match &seg.kind {
                SegmentKind::Thin { device_id, .. } => device_id.to_string(),
                _ => String::new(),
            },
        );
        let cache = self.cache_settings(i, seg);
        set(
            "cache_mode",
            cache
                .as_ref()
                .map_or_else(String::new, CacheSettingsView::mode),
        );
        set(
            "cache_policy",
            cache
                .as_ref()
                .map_or_else(String::new, CacheSettingsView::policy),
        );
        let (devices, ranges) = self.devices_and_ranges(seg);
        set("devices", devices);
        set("seg_pe_ranges", ranges);
        let (layout, role) = self.layout_and_role(i);
        set("lv_role", role.join(","));
        set("lv_layout", layout.join(","));
        set("data_percent", super::percent::display(act.data_percent));
        set(
            "metadata_percent",
            super::percent::display(act.metadata_percent),
        );
        row
    }
}

/// The cache settings a segment reports, borrowed from where they live.
struct CacheSettingsView<'a> {
    chunk_size: Option<u64>,
    mode: Option<&'a str>,
    policy: Option<&'a str>,
    /// A used cache pool: missing settings take lvm2's old defaults.
    defaults: bool,
}

impl CacheSettingsView<'_> {
    /// display_cache_mode: set_cache_mode reads the name case-insensitively,
    /// cache_mode_num_to_str prints it in lower case.
    fn mode(&self) -> String {
        match self.mode {
            Some(m) => m.to_ascii_lowercase(),
            None if self.defaults => "writethrough".to_owned(),
            None => String::new(),
        }
    }

    fn policy(&self) -> String {
        match self.policy {
            Some(p) => p.to_owned(),
            None if self.defaults => "mq".to_owned(),
            None => String::new(),
        }
    }
}

/// alloc_policy_char of get_alloc_from_string's reading of a policy name;
/// lvm2 warns about an unknown name and uses the default.
fn alloc_char(policy: Option<&str>, default: char) -> char {
    match policy {
        Some("contiguous") => 'c',
        Some("cling") | Some("cling_by_tags") => 'l',
        Some("normal") | Some("next free") => 'n',
        Some("anywhere") => 'a',
        Some("inherit") => 'i',
        _ => default,
    }
}

/// A tag list as _tags_disp prints it: sorted (strcmp), without duplicates
/// (str_list_add drops them when lvm2 reads the list), comma-separated.
fn format_tags(tags: &[String]) -> String {
    let mut tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    tags.sort_unstable();
    tags.dedup();
    tags.join(",")
}

// ---- the reports ----------------------------------------------------------------

/// `lvs [-a]` for one VG: one row per segment of each LV lvm2 lists (the
/// report has segment fields), sorted as lvm2's default `vg_name,lv_name`
/// (by the bare name; rows of one LV stay in segment order; for several VGs,
/// concatenate their rows in VG name order). `all` adds hidden LVs, shown as `[name]`; the internal
/// `snapshotN` LV of a thick snapshot is never listed (process_each_lv_in_vg).
/// `activity` gives each LV's device state by LV name.
pub fn lv_rows(
    vg: &VolumeGroup,
    pvs: &[Option<PvInfo>],
    activity: &dyn Fn(&str) -> LvActivity,
    all: bool,
) -> Result<Vec<Row>, ReportError> {
    let facts = Vg::new(vg, pvs)?;
    let mut rows = Vec::new();
    for (i, lv) in vg.lvs.iter().enumerate() {
        if facts.lvs[i].snapshot || (!all && !facts.visible(i)) {
            continue;
        }
        let act = activity(&lv.name);
        for seg in &lv.segments {
            rows.push((lv.name.as_str(), facts.lv_row(i, seg, &act)));
        }
    }
    // A stable sort, as glibc's merge sort under lvm2's qsort is.
    rows.sort_by(|a, b| a.0.cmp(b.0));
    Ok(rows.into_iter().map(|(_, row)| row).collect())
}

/// `vgs`: the VG's row.
pub fn vg_row(vg: &VolumeGroup, pvs: &[Option<PvInfo>]) -> Result<Row, ReportError> {
    let facts = Vg::new(vg, pvs)?;
    let extent_bytes = bytes(vg.extent_size);
    let extent_count = vg
        .pvs
        .iter()
        .fold(0u64, |n, pv| n.saturating_add(pv.pe_count));
    let allocated = facts
        .pv_alloc
        .iter()
        .fold(0u64, |n, a| n.saturating_add(*a));
    let free_count = extent_count.saturating_sub(allocated);
    let mut row = Row::new();
    let mut set = |k: &'static str, v: String| {
        row.insert(k, v);
    };
    set("vg_name", vg.name.clone());
    set("vg_uuid", vg.id.clone());
    set(
        "vg_size",
        extent_count.saturating_mul(extent_bytes).to_string(),
    );
    set(
        "vg_free",
        free_count.saturating_mul(extent_bytes).to_string(),
    );
    set("vg_seqno", vg.seqno.to_string());
    set("vg_extent_size", extent_bytes.to_string());
    set("vg_extent_count", extent_count.to_string());
    set("vg_free_count", free_count.to_string());
    set("pv_count", vg.pvs.len().to_string());
    // vg_visible_lvs, snapshot_count (COW LVs).
    let lv_count = (0..vg.lvs.len()).filter(|&i| facts.visible(i)).count();
    let snap_count = (0..vg.lvs.len()).filter(|&i| facts.is_cow(i)).count();
    set("lv_count", lv_count.to_string());
    set("snap_count", snap_count.to_string());
    set("vg_attr", vg_attr(vg, &facts));
    set("vg_tags", format_tags(&vg.tags));
    // vg_mda_count counts every area of the PVs found; vg_mda_size and
    // vg_mda_free the smallest of those in use, 0 when there is none.
    let found = || pvs.iter().flatten();
    let in_use = || found().filter(|p| !p.mda_ignored && p.mda_count > 0);
    let mda_count: u64 = found().map(|p| u64::from(p.mda_count)).sum();
    let mda_size = in_use().map(|p| p.mda_size / SECTOR * SECTOR).min();
    let mda_free = in_use().map(|p| p.mda_free / SECTOR * SECTOR).min();
    set("vg_mda_count", mda_count.to_string());
    set("vg_mda_size", mda_size.unwrap_or(0).to_string());
    set("vg_mda_free", mda_free.unwrap_or(0).to_string());
    Ok(row)
}

/// vg_attr_dup (lib/metadata/vg.c).
fn vg_attr(vg: &VolumeGroup, facts: &Vg) -> String {
    // WRITE_LOCKED (lvmlockd) reads as WRITE (import_vsn1.c).
    let write = vg.status.contains(VgStatus::WRITE) || has_flag(&vg.flags, "WRITE_LOCKED");
    // vg_is_shared: a lockd lock type.
    let shared = matches!(vg.lock_type.as_deref(), Some("dlm" | "sanlock" | "idm"));
    [
        if write { 'w' } else { 'r' },
        if vg.status.contains(VgStatus::RESIZEABLE) {
            'z'
        } else {
            '-'
        },
        if vg.status.contains(VgStatus::EXPORTED) {
            'x'
        } else {
            '-'
        },
        // partial: some PV is missing (vg_missing_pv_count)
        if facts.pv_missing.iter().any(|&m| m) {
            'p'
        } else {
            '-'
        },
        alloc_char(vg.allocation_policy.as_deref(), 'n'),
        if vg.status.contains(VgStatus::CLUSTERED) {
            'c'
        } else if shared {
            's'
        } else {
            '-'
        },
    ]
    .iter()
    .collect()
}

/// `pvs` (for the PVs of one VG): one row per PV, sorted by `pv_name` as
/// lvm2's default. A PV the scan did not find reports as lvm2 reports one
/// without a device: named `[unknown]`, sizes and metadata areas 0, no
/// extension version.
pub fn pv_rows(vg: &VolumeGroup, pvs: &[Option<PvInfo>]) -> Result<Vec<Row>, ReportError> {
    let facts = Vg::new(vg, pvs)?;
    let extent_bytes = bytes(vg.extent_size);
    let mut rows: Vec<Row> = Vec::new();
    for (n, pv) in vg.pvs.iter().enumerate() {
        let info = pvs.get(n).and_then(Option::as_ref);
        let alloc = facts.pv_alloc.get(n).copied().unwrap_or(0);
        let mut row = Row::new();
        let mut set = |k: &'static str, v: String| {
            row.insert(k, v);
        };
        set("pv_name", facts.pv_name(n).to_owned());
        set("vg_name", vg.name.clone());
        set("pv_uuid", pv.id.clone());
        // pv_size_field: the extents, or the metadata's size without any.
        let size = if pv.pe_count == 0 {
            bytes(pv.dev_size.unwrap_or(0))
        } else {
            pv.pe_count.saturating_mul(extent_bytes)
        };
        set("pv_size", size.to_string());
        set(
            "pv_free",
            pv.pe_count
                .saturating_sub(alloc)
                .saturating_mul(extent_bytes)
                .to_string(),
        );
        let used = if pv.pe_count == 0 {
            0
        } else {
            alloc.saturating_mul(extent_bytes)
        };
        set("pv_used", used.to_string());
        set("pe_start", bytes(pv.pe_start).to_string());
        set("pv_pe_count", pv.pe_count.to_string());
        set("pv_pe_alloc_count", alloc.to_string());
        // pv_attr_dup: allocatable ('u' used otherwise: a PV in a VG is
        // always used), exported, missing. ('d', an unused duplicate device,
        // never applies to the device a VG uses.)
        let attr: String = [
            if pv.status.contains(PvStatus::ALLOCATABLE) {
                'a'
            } else {
                'u'
            },
            if pv.status.contains(PvStatus::EXPORTED) {
                'x'
            } else {
                '-'
            },
            if facts.pv_missing.get(n).copied().unwrap_or(true) {
                'm'
            } else {
                '-'
            },
        ]
        .iter()
        .collect();
        set("pv_attr", attr);
        set("pv_tags", format_tags(&pv.tags));
        set(
            "dev_size",
            info.map_or(0, |i| i.dev_size_bytes / SECTOR * SECTOR)
                .to_string(),
        );
        set("pv_mda_count", info.map_or(0, |i| i.mda_count).to_string());
        set(
            "pv_mda_size",
            info.map_or(0, |i| i.mda_size / SECTOR * SECTOR).to_string(),
        );
        set(
            "pv_mda_free",
            info.map_or(0, |i| i.mda_free / SECTOR * SECTOR).to_string(),
        );
        set(
            "pv_ext_vsn",
            info.map_or_else(String::new, |i| i.ext_version.to_string()),
        );
        rows.push(row);
    }
    rows.sort_by(|a, b| a.get("pv_name").cmp(&b.get("pv_name")));
    Ok(rows)
}

/// The JSON lvm2 prints for one report (`--reportformat json`), laid out
/// byte for byte as lvm2 2.03.16 lays it out: every value a string, the
/// fields of each row in [`ReportKind::fields`] order (fields a row lacks
/// are left out).
pub fn to_lvm2_json(kind: ReportKind, rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str("  {\n      \"report\": [\n          {\n");
    out.push_str(&format!("              \"{}\": [\n", kind.as_str()));
    // Written straight into one buffer: for 1000 LVs this is 24000 fields.
    for (n, row) in rows.iter().enumerate() {
        out.push_str("                  {");
        let mut first = true;
        let mut at = 0;
        for k in kind.fields() {
            if let Some((i, v)) = row.get_from(k, at) {
                at = i + 1;
                if !first {
                    out.push_str(", ");
                }
                first = false;
                out.push('"');
                out.push_str(k);
                out.push_str("\":");
                push_json_string(&mut out, v);
            }
        }
        out.push('}');
        if n + 1 < rows.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str("              ]\n          }\n      ]\n  }\n");
    out
}

/// A JSON string. lvm2 escapes only '"'; names and tags cannot hold '\\'
/// or control characters, but escaping them keeps the output valid JSON
/// whatever the metadata says.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests;

/// `pvs` for a PV in no VG (an orphan): lvm2 counts its whole device as
/// its size and free space (pv_size_field and pv_free with no extents),
/// none as used; it is not allocatable until it joins a VG. A label that
/// says "used" (PV_EXT_USED) without a VG means the VG is missing: no free
/// space then, as _pvfree_disp says.
pub fn orphan_pv_row(info: &PvInfo, label: &crate::meta::label::Label) -> Row {
    let header = &label.pv_header;
    let used = header
        .extension
        .as_ref()
        .is_some_and(|e| e.flags & crate::meta::label::PV_EXT_USED != 0);
    let size = header.device_size;
    let pe_start = header.data_areas.first().map(|d| d.offset).unwrap_or(0);
    let mut row = Row::new();
    for (field, value) in [
        ("pv_name", info.name.clone()),
        ("vg_name", String::new()),
        ("pv_uuid", header.uuid.to_dashed()),
        ("pv_size", size.to_string()),
        ("pv_free", if used { "0".into() } else { size.to_string() }),
        ("pv_used", "0".into()),
        ("pe_start", pe_start.to_string()),
        ("pv_pe_count", "0".into()),
        ("pv_pe_alloc_count", "0".into()),
        ("pv_attr", "---".into()),
        ("pv_tags", String::new()),
        ("dev_size", info.dev_size_bytes.to_string()),
        ("pv_mda_count", info.mda_count.to_string()),
        ("pv_mda_size", info.mda_size.to_string()),
        ("pv_mda_free", info.mda_free.to_string()),
        ("pv_ext_vsn", info.ext_version.to_string()),
    ] {
        row.insert(field, value);
    }
    row
}
