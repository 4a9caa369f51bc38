//! Activation plans: which device-mapper devices an LV needs, with lvm2's
//! names, uuids, tables and flags, in the order lvm2 creates them. Pure: the
//! plan is a function of the VG's metadata and of where its PVs are, so it is
//! proven on the host against what lvm2 itself activated in the lab
//! (tests/fixtures/activation); `lvm::engine` carries it out.
//!
//! Tables name their devices by path: a PV's device, or `/dev/mapper/<name>`
//! for a device of the plan. The engine turns paths into `major:minor` once
//! the devices exist; `--plan` prints them as they are, which reads better.
//!
//! lvm2's shapes (lib/activate/dev_manager.c, libdm-deptree.c; seen in the
//! lab with lvm2 2.03.16):
//! - linear/striped: one line per segment, over the PVs.
//! - thin pool: `<pool>_tmeta`, `<pool>_tdata` (uuid suffixes -tmeta, -tdata),
//!   then the thin-pool target as `vg-pool-tpool` (-tpool) and the pool LV
//!   itself as a read-only linear over it (`vg-pool`, -pool). A pool whose
//!   transaction id is still 0 (no thin LV was ever made in it) is loaded
//!   directly as `vg-pool` with uuid suffix -tpool, and gets a /dev/vg link.
//! - thin: `thin <tpool> <device id>`.
//! - cached LV: the cache pool's `_cdata`, `_cmeta`, the origin `_corig`
//!   (suffix -real), then `cache <cmeta> <cdata> <corig> ...`.
//! - thick snapshots: the origin's segments as `vg-origin-real` (-real), the
//!   origin as `snapshot-origin <real>`; each snapshot's COW LV as
//!   `vg-snap-cow` (-cow) and the snapshot as `snapshot <real> <cow> P <chunk>`.
//!   A merging snapshot turns the origin's table into `snapshot-merge`.

use std::path::PathBuf;

use crate::dm::table::{DevRef, TableLine, Target};
use crate::meta::model::{Area, LogicalVolume, Segment, SegmentKind, VolumeGroup};

use super::config::LvmConfig;
use super::names;

/// One device-mapper device of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedDevice {
    /// The LV this device belongs to (a layer of it, or the LV itself).
    pub lv: String,
    pub name: String,
    pub uuid: String,
    pub read_only: bool,
    pub table: Vec<TableLine>,
    /// `/dev/<vg>/<lv>`, for the device an LV is used through.
    pub link: Option<String>,
}

impl PlannedDevice {
    pub fn path(&self) -> String {
        mapper_path(&self.name)
    }
}

/// The devices to create, dependencies first; each device appears once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub devices: Vec<PlannedDevice>,
    /// LVs of a whole-VG plan left out because a PV they need is missing
    /// (partial LVs): the others are planned.
    pub partial: Vec<PlanError>,
}

impl Plan {
    pub fn device(&self, name: &str) -> Option<&PlannedDevice> {
        self.devices.iter().find(|d| d.name == name)
    }

    fn push(&mut self, device: PlannedDevice) {
        if self.device(&device.name).is_none() {
            self.devices.push(device);
        }
    }
}

/// Why an LV's devices cannot be planned from the VG's metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The VG's metadata has no LV of that name.
    #[error("VG {vg} has no LV named {lv}")]
    NoSuchLv {
        /// The volume group's name.
        vg: String,
        /// The LV's name.
        lv: String,
    },
    /// A PV the LV has extents on is missing.
    #[error(
        "LV {vg}/{lv} needs PV {pv_uuid}, which is missing (not found on any device, or flagged \
         MISSING by lvm2: the VG was written while it was away): connect it, or point --devices \
         at it; once it is back, `cairn vg extend --restoremissing {vg} DEVICE`"
    )]
    MissingPv {
        /// The volume group's name.
        vg: String,
        /// The LV's name.
        lv: String,
        /// The missing PV's uuid, as the metadata spells it.
        pv_uuid: String,
    },
    /// A segment type or layout cairn cannot map yet (another segment
    /// type, a thin pool of several segments, an external origin, ...).
    #[error("LV {vg}/{lv}: {what} cannot be activated by cairn yet (use lvm2 for it)")]
    Unsupported {
        /// The volume group's name.
        vg: String,
        /// The LV's name.
        lv: String,
        /// What the LV has that cairn cannot map.
        what: String,
    },
    /// The metadata contradicts itself for this LV (no segments, a pool
    /// that is not a thin pool, an unknown cache mode, ...).
    #[error("LV {vg}/{lv}: metadata is inconsistent: {message}")]
    Inconsistent {
        /// The volume group's name.
        vg: String,
        /// The LV's name.
        lv: String,
        /// What contradicts what.
        message: String,
    },
    /// The LV is a hidden sub-LV (`_tdata`, `_cmeta`, ...), activated only
    /// as part of the LV that uses it.
    #[error("LV {vg}/{lv} is a hidden part of another LV: activate that LV instead")]
    Hidden {
        /// The volume group's name.
        vg: String,
        /// The hidden LV's name.
        lv: String,
    },
}

pub type Result<T> = std::result::Result<T, PlanError>;

/// `/dev/mapper/<name>`.
pub fn mapper_path(name: &str) -> String {
    format!("/dev/mapper/{name}")
}

/// Plans one VG's activation.
pub struct Planner<'a> {
    vg: &'a VolumeGroup,
    /// Device path of each PV (index as in `vg.pvs`), None when missing.
    pv_devices: &'a [Option<PathBuf>],
    config: LvmConfig,
}

impl<'a> Planner<'a> {
    /// A planner with lvm2's default settings.
    pub fn new(vg: &'a VolumeGroup, pv_devices: &'a [Option<PathBuf>]) -> Planner<'a> {
        Planner {
            vg,
            pv_devices,
            config: LvmConfig::default(),
        }
    }

    /// The lvm.conf settings the tables depend on (the thin pools'
    /// low-water mark).
    pub fn with_config(mut self, config: LvmConfig) -> Planner<'a> {
        self.config = config;
        self
    }

    /// What `vgchange -ay` activates: every visible LV in metadata order,
    /// except those flagged for activation skip (thin snapshots) unless
    /// `ignore_skip` (lvm2's -K).
    pub fn vg(&self, ignore_skip: bool) -> Result<Plan> {
        let mut plan = Plan::default();
        for lv in &self.vg.lvs {
            if !self.vg.lv_is_visible(lv) || (!ignore_skip && activation_skip(lv)) {
                continue;
            }
            // An LV on a missing PV is refused, the others still come up
            // (lvm2: "Refusing activation of partial LV").
            let mut own = Plan::default();
            match self.add_visible(&mut own, lv) {
                Ok(()) => own.devices.into_iter().for_each(|d| plan.push(d)),
                Err(e @ PlanError::MissingPv { .. }) => plan.partial.push(e),
                Err(e) => return Err(e),
            }
        }
        Ok(plan)
    }

    /// A visible LV of [`Planner::vg`], unless it has no device of its own.
    fn add_visible(&self, plan: &mut Plan, lv: &'a LogicalVolume) -> Result<()> {
        // An unused cache pool has no device (lvm2 skips it too).
        if matches!(
            lv.segments.first().map(|s| &s.kind),
            Some(SegmentKind::CachePool { .. })
        ) {
            return Ok(());
        }
        self.add_lv(plan, lv)
    }

    /// What activating one visible LV takes (with everything under it).
    pub fn lv(&self, name: &str) -> Result<Plan> {
        let lv = self.find(name)?;
        if !self.vg.lv_is_visible(lv) {
            return Err(PlanError::Hidden {
                vg: self.vg.name.clone(),
                lv: name.to_owned(),
            });
        }
        let mut plan = Plan::default();
        self.add_lv(&mut plan, lv)?;
        Ok(plan)
    }

    /// The devices a thin pool's thin LVs stand on (`_tmeta`, `_tdata`
    /// and the thin-pool target), without the pool LV's own read-only
    /// layer: what messages are sent to. The last device is the target.
    pub fn thin_pool_target(&self, name: &str) -> Result<Plan> {
        let pool = self.find(name)?;
        if !matches!(
            pool.segments.first().map(|s| &s.kind),
            Some(SegmentKind::ThinPool { .. })
        ) {
            return Err(self.inconsistent(pool, "is not a thin pool"));
        }
        let mut plan = Plan::default();
        self.add_thin_pool(&mut plan, pool, false)?;
        Ok(plan)
    }

    fn find(&self, name: &str) -> Result<&'a LogicalVolume> {
        self.vg.lv(name).ok_or_else(|| PlanError::NoSuchLv {
            vg: self.vg.name.clone(),
            lv: name.to_owned(),
        })
    }

    fn unsupported(&self, lv: &LogicalVolume, what: impl Into<String>) -> PlanError {
        PlanError::Unsupported {
            vg: self.vg.name.clone(),
            lv: lv.name.clone(),
            what: what.into(),
        }
    }

    fn inconsistent(&self, lv: &LogicalVolume, message: impl Into<String>) -> PlanError {
        PlanError::Inconsistent {
            vg: self.vg.name.clone(),
            lv: lv.name.clone(),
            message: message.into(),
        }
    }

    fn dm_name(&self, lv: &str, layer: Option<&str>) -> String {
        names::dm_name(&self.vg.name, lv, layer)
    }

    fn dm_uuid(&self, lv: &LogicalVolume, suffix: Option<&str>) -> String {
        names::dm_uuid(&self.vg.id, &lv.id, suffix)
    }

    fn link(&self, lv: &LogicalVolume) -> Option<String> {
        Some(names::lv_path(&self.vg.name, &lv.name))
    }

    /// Adds a visible LV and what it stands on.
    fn add_lv(&self, plan: &mut Plan, lv: &'a LogicalVolume) -> Result<()> {
        // An origin and its thick snapshots go up together, whichever of
        // them is asked for (lvm2: "Change of snapshot ... will also change
        // its origin ... and N other snapshot(s)").
        if let Some((_, seg)) = self.vg.snapshot_of_cow(&lv.name) {
            let SegmentKind::Snapshot { origin, .. } = &seg.kind else {
                unreachable!("snapshot_of_cow returns snapshot segments")
            };
            return self.add_origin_with_snapshots(plan, self.find(origin)?);
        }
        if self.is_origin(lv) {
            return self.add_origin_with_snapshots(plan, lv);
        }
        let first = lv
            .segments
            .first()
            .ok_or_else(|| self.inconsistent(lv, "no segments"))?;
        match &first.kind {
            SegmentKind::Striped { .. } => {
                let table = self.striped_table(lv)?;
                plan.push(PlannedDevice {
                    lv: lv.name.clone(),
                    name: self.dm_name(&lv.name, None),
                    uuid: self.dm_uuid(lv, None),
                    read_only: self.read_only(lv, None),
                    table,
                    link: self.link(lv),
                });
                Ok(())
            }
            SegmentKind::ThinPool { .. } => self.add_thin_pool(plan, lv, true).map(|_| ()),
            SegmentKind::Thin { .. } => self.add_thin(plan, lv),
            SegmentKind::Cache { .. } => self.add_cached(plan, lv),
            SegmentKind::CachePool { .. } => Err(self.unsupported(
                lv,
                "a cache pool that is not attached to an LV (it has no device of its own)",
            )),
            SegmentKind::Snapshot { .. } => Err(PlanError::Hidden {
                vg: self.vg.name.clone(),
                lv: lv.name.clone(),
            }),
            SegmentKind::Other { type_name } => {
                Err(self.unsupported(lv, format!("segment type {type_name}")))
            }
        }
    }

    /// Whether the device of `lv` (or of its `layer`) is loaded read-only,
    /// as lvm2 decides it: an LV or VG without the WRITE permission
    /// (`lvchange -p r`, `lvcreate -s -p r`) is read-only, except a
    /// snapshot's COW store (the origin's writes still land there); a thin
    /// pool's own `-pool` device is always read-only (nothing may write to
    /// the pool but through its thin LVs).
    fn read_only(&self, lv: &LogicalVolume, layer: Option<&str>) -> bool {
        use crate::meta::model::{LvStatus, VgStatus};
        match layer {
            Some("cow") => false,
            Some("pool") => true,
            _ => !self.vg.status.contains(VgStatus::WRITE) || !lv.status.contains(LvStatus::WRITE),
        }
    }

    /// A hidden LV used whole as a layer (`_tdata`, `_cmeta`, `_corig`, ...):
    /// linear or striped over PVs, named after the LV, uuid with `suffix`.
    fn add_sub_lv(&self, plan: &mut Plan, name: &str, suffix: &str) -> Result<String> {
        let lv = self.find(name)?;
        let table = self.striped_table(lv)?;
        let dm_name = self.dm_name(name, None);
        plan.push(PlannedDevice {
            lv: name.to_owned(),
            name: dm_name.clone(),
            uuid: self.dm_uuid(lv, Some(suffix)),
            read_only: self.read_only(lv, Some(suffix)),
            table,
            link: None,
        });
        Ok(dm_name)
    }

    /// The thin pool's devices; returns the name of the device thin LVs use.
    /// `whole`: the pool LV itself is being activated (vgchange, lvchange on
    /// the pool), so its read-only `-pool` layer is wanted too.
    fn add_thin_pool(
        &self,
        plan: &mut Plan,
        pool: &'a LogicalVolume,
        whole: bool,
    ) -> Result<String> {
        let seg = single_segment(pool)
            .ok_or_else(|| self.unsupported(pool, "a thin pool with more than one segment"))?;
        let SegmentKind::ThinPool {
            metadata,
            pool: data,
            transaction_id,
            chunk_size,
            discards,
            zero_new_blocks,
            ..
        } = &seg.kind
        else {
            return Err(self.inconsistent(pool, "is not a thin pool"));
        };
        let meta_dev = self.add_sub_lv(plan, metadata, "tmeta")?;
        let data_dev = self.add_sub_lv(plan, data, "tdata")?;
        let mut features = Vec::new();
        if !zero_new_blocks {
            features.push("skip_block_zeroing".to_owned());
        }
        // lvm2 reads a missing `discards` as "ignore" (thin.c).
        match discards.as_deref() {
            Some("passdown") => {}
            None => features.push("ignore_discard".to_owned()),
            Some("nopassdown") => features.push("no_discard_passdown".to_owned()),
            Some("ignore") => features.push("ignore_discard".to_owned()),
            Some(other) => {
                return Err(self.inconsistent(pool, format!("unknown discards mode {other:?}")))
            }
        }
        if pool.flags.iter().any(|f| f == "ERROR_WHEN_FULL") {
            features.push("error_if_no_space".to_owned());
        }
        let length = self.sectors(pool);
        let target = Target::ThinPool {
            metadata: DevRef::Path(mapper_path(&meta_dev)),
            data: DevRef::Path(mapper_path(&data_dev)),
            block_sectors: *chunk_size,
            // From lvm.conf's autoextend threshold, not from the metadata.
            low_water_mark: self.config.low_water_mark(length, *chunk_size),
            features,
        };
        let line = one_line(length, target);
        if *transaction_id == 0 {
            // A new pool: the thin-pool target goes on the pool LV's own name.
            let name = self.dm_name(&pool.name, None);
            plan.push(PlannedDevice {
                lv: pool.name.clone(),
                name: name.clone(),
                uuid: self.dm_uuid(pool, Some("tpool")),
                read_only: self.read_only(pool, Some("tpool")),
                table: line,
                link: self.link(pool),
            });
            return Ok(name);
        }
        let tpool = self.dm_name(&pool.name, Some("tpool"));
        plan.push(PlannedDevice {
            lv: pool.name.clone(),
            name: tpool.clone(),
            uuid: self.dm_uuid(pool, Some("tpool")),
            read_only: self.read_only(pool, Some("tpool")),
            table: line,
            link: None,
        });
        if whole {
            plan.push(PlannedDevice {
                lv: pool.name.clone(),
                name: self.dm_name(&pool.name, None),
                uuid: self.dm_uuid(pool, Some("pool")),
                read_only: self.read_only(pool, Some("pool")),
                table: one_line(
                    length,
                    Target::Linear {
                        dev: DevRef::Path(mapper_path(&tpool)),
                        offset: 0,
                    },
                ),
                link: None,
            });
        }
        Ok(tpool)
    }

    fn add_thin(&self, plan: &mut Plan, lv: &'a LogicalVolume) -> Result<()> {
        let seg = single_segment(lv)
            .ok_or_else(|| self.unsupported(lv, "a thin LV with more than one segment"))?;
        let SegmentKind::Thin {
            thin_pool,
            device_id,
            external_origin,
            ..
        } = &seg.kind
        else {
            return Err(self.inconsistent(lv, "is not a thin LV"));
        };
        if external_origin.is_some() {
            return Err(self.unsupported(lv, "a thin LV with an external origin"));
        }
        let pool = self.find(thin_pool)?;
        // Activating a thin LV alone brings up the pool's thin-pool device
        // but not the pool LV's own read-only layer (as lvm2 does).
        let pool_dev = self.add_thin_pool(plan, pool, false)?;
        plan.push(PlannedDevice {
            lv: lv.name.clone(),
            name: self.dm_name(&lv.name, None),
            uuid: self.dm_uuid(lv, None),
            read_only: self.read_only(lv, None),
            table: one_line(
                self.sectors(lv),
                Target::Thin {
                    pool: DevRef::Path(mapper_path(&pool_dev)),
                    device_id: *device_id,
                    external_origin: None,
                },
            ),
            link: self.link(lv),
        });
        Ok(())
    }

    fn add_cached(&self, plan: &mut Plan, lv: &'a LogicalVolume) -> Result<()> {
        let seg = single_segment(lv)
            .ok_or_else(|| self.unsupported(lv, "a cached LV with more than one segment"))?;
        let SegmentKind::Cache {
            cache_pool,
            origin,
            cleaner,
        } = &seg.kind
        else {
            return Err(self.inconsistent(lv, "is not a cached LV"));
        };
        let pool = self.find(cache_pool)?;
        let pool_seg = single_segment(pool)
            .ok_or_else(|| self.unsupported(pool, "a cache pool with more than one segment"))?;
        let SegmentKind::CachePool {
            data,
            metadata,
            metadata_format,
            settings,
        } = &pool_seg.kind
        else {
            return Err(self.unsupported(
                lv,
                format!("a cache on {cache_pool}, which is not a cache pool (cachevol?)"),
            ));
        };
        // lvm2's order: data, metadata, origin, then the cache.
        let data_dev = self.add_sub_lv(plan, data, "cdata")?;
        let meta_dev = self.add_sub_lv(plan, metadata, "cmeta")?;
        let origin_dev = self.add_sub_lv(plan, origin, "real")?;
        let mut features = Vec::new();
        if *metadata_format == Some(2) {
            features.push("metadata2".to_owned());
        }
        let mode = settings.cache_mode.as_deref().unwrap_or("writethrough");
        if !matches!(mode, "writethrough" | "writeback" | "passthrough") {
            return Err(self.inconsistent(pool, format!("unknown cache mode {mode:?}")));
        }
        features.push(mode.to_owned());
        let (policy, policy_args) = if *cleaner {
            ("cleaner".to_owned(), Vec::new())
        } else {
            let args = settings
                .policy_settings
                .as_ref()
                .map(|s| {
                    s.entries
                        .iter()
                        .map(|(k, v)| match v {
                            crate::meta::text::Node::Value(v) => Ok((
                                k.clone(),
                                v.as_str()
                                    .map(str::to_owned)
                                    .unwrap_or_else(|| v.to_string()),
                            )),
                            crate::meta::text::Node::Section(_) => {
                                Err(self
                                    .inconsistent(pool, format!("policy setting {k} is a section")))
                            }
                        })
                        .collect::<Result<Vec<_>>>()
                })
                .transpose()?
                .unwrap_or_default();
            (
                settings.policy.clone().unwrap_or_else(|| "smq".to_owned()),
                args,
            )
        };
        let chunk = settings
            .chunk_size
            .ok_or_else(|| self.inconsistent(pool, "cache pool without chunk_size"))?;
        plan.push(PlannedDevice {
            lv: lv.name.clone(),
            name: self.dm_name(&lv.name, None),
            uuid: self.dm_uuid(lv, None),
            read_only: self.read_only(lv, None),
            table: one_line(
                self.sectors(lv),
                Target::Cache {
                    metadata: DevRef::Path(mapper_path(&meta_dev)),
                    cache: DevRef::Path(mapper_path(&data_dev)),
                    origin: DevRef::Path(mapper_path(&origin_dev)),
                    block_sectors: chunk,
                    features,
                    policy,
                    policy_args,
                },
            ),
            link: self.link(lv),
        });
        Ok(())
    }

    /// Snapshot segments (in hidden `snapshotN` LVs) whose origin is `lv`.
    fn snapshots_of<'b>(&'b self, origin_name: &'b str) -> impl Iterator<Item = &'a Segment> + 'b {
        self.vg.lvs.iter().filter_map(move |s| {
            let seg = s.segments.first()?;
            matches!(&seg.kind, SegmentKind::Snapshot { origin, .. } if origin == origin_name)
                .then_some(seg)
        })
    }

    fn is_origin(&self, lv: &LogicalVolume) -> bool {
        self.snapshots_of(&lv.name).next().is_some()
    }

    /// An origin of thick snapshots: its segments as `-real`, and the
    /// origin as snapshot-origin (or snapshot-merge while one merges).
    fn add_origin(&self, plan: &mut Plan, lv: &'a LogicalVolume) -> Result<String> {
        let real = self.dm_name(&lv.name, Some("real"));
        plan.push(PlannedDevice {
            lv: lv.name.clone(),
            name: real.clone(),
            uuid: self.dm_uuid(lv, Some("real")),
            read_only: self.read_only(lv, Some("real")),
            table: self.striped_table(lv)?,
            link: None,
        });
        let merging = self.snapshots_of(&lv.name).find_map(|seg| match &seg.kind {
            SegmentKind::Snapshot {
                cow,
                chunk_size,
                merging: true,
                ..
            } => Some((cow.clone(), *chunk_size)),
            _ => None,
        });
        let mut merging_cow = None;
        let target = match merging {
            Some((cow_name, chunk)) => {
                let cow_lv = self.find(&cow_name)?;
                let cow = self.add_cow(plan, cow_lv)?;
                merging_cow = Some(cow_lv);
                Target::SnapshotMerge {
                    origin: DevRef::Path(mapper_path(&real)),
                    cow: DevRef::Path(mapper_path(&cow)),
                    persistence: "P".to_owned(),
                    chunk_sectors: chunk,
                }
            }
            None => Target::SnapshotOrigin {
                origin: DevRef::Path(mapper_path(&real)),
            },
        };
        plan.push(PlannedDevice {
            lv: lv.name.clone(),
            name: self.dm_name(&lv.name, None),
            uuid: self.dm_uuid(lv, None),
            read_only: self.read_only(lv, None),
            table: one_line(self.sectors(lv), target),
            link: self.link(lv),
        });
        // The merging snapshot's own device stays, as an error target
        // (lvm2 keeps it so that nothing reads a half-merged snapshot).
        if let Some(cow_lv) = merging_cow {
            plan.push(PlannedDevice {
                lv: cow_lv.name.clone(),
                name: self.dm_name(&cow_lv.name, None),
                uuid: self.dm_uuid(cow_lv, None),
                read_only: self.read_only(cow_lv, None),
                table: one_line(self.sectors(lv), Target::Error),
                link: None,
            });
        }
        Ok(real)
    }

    fn add_origin_with_snapshots(&self, plan: &mut Plan, origin: &'a LogicalVolume) -> Result<()> {
        self.add_origin(plan, origin)?;
        for cow in &self.vg.lvs {
            let Some((_, seg)) = self.vg.snapshot_of_cow(&cow.name) else {
                continue;
            };
            if matches!(&seg.kind, SegmentKind::Snapshot { origin: o, .. } if *o == origin.name) {
                self.add_snapshot(plan, cow, seg)?;
            }
        }
        Ok(())
    }

    fn add_cow(&self, plan: &mut Plan, cow: &'a LogicalVolume) -> Result<String> {
        let name = self.dm_name(&cow.name, Some("cow"));
        plan.push(PlannedDevice {
            lv: cow.name.clone(),
            name: name.clone(),
            uuid: self.dm_uuid(cow, Some("cow")),
            read_only: self.read_only(cow, Some("cow")),
            table: self.striped_table(cow)?,
            link: None,
        });
        Ok(name)
    }

    /// A thick snapshot: its COW LV `cow_lv` and the snapshot segment.
    fn add_snapshot(
        &self,
        plan: &mut Plan,
        cow_lv: &'a LogicalVolume,
        seg: &Segment,
    ) -> Result<()> {
        let SegmentKind::Snapshot {
            origin,
            chunk_size,
            merging,
            ..
        } = &seg.kind
        else {
            return Err(self.inconsistent(cow_lv, "is not a snapshot"));
        };
        let origin_lv = self.find(origin)?;
        if *merging {
            // Merging into the origin: the origin's snapshot-merge stands for it.
            self.add_origin(plan, origin_lv)?;
            return Ok(());
        }
        let real = self.add_origin(plan, origin_lv)?;
        let cow = self.add_cow(plan, cow_lv)?;
        plan.push(PlannedDevice {
            lv: cow_lv.name.clone(),
            name: self.dm_name(&cow_lv.name, None),
            uuid: self.dm_uuid(cow_lv, None),
            read_only: self.read_only(cow_lv, None),
            table: one_line(
                self.sectors(origin_lv),
                Target::Snapshot {
                    origin: DevRef::Path(mapper_path(&real)),
                    cow: DevRef::Path(mapper_path(&cow)),
                    persistence: "P".to_owned(),
                    chunk_sectors: *chunk_size,
                },
            ),
            link: self.link(cow_lv),
        });
        Ok(())
    }

    fn sectors(&self, lv: &LogicalVolume) -> u64 {
        lv.extent_count() * self.vg.extent_size
    }

    /// Linear or striped lines over PVs, one per segment.
    fn striped_table(&self, lv: &LogicalVolume) -> Result<Vec<TableLine>> {
        let es = self.vg.extent_size;
        lv.segments
            .iter()
            .map(|seg| {
                let SegmentKind::Striped {
                    stripe_size,
                    stripes,
                } = &seg.kind
                else {
                    return Err(self.unsupported(
                        lv,
                        format!("a {} segment inside a layer", seg.kind.type_name()),
                    ));
                };
                let mut devs = Vec::with_capacity(stripes.len());
                for area in stripes {
                    let Area::Pv { pv, pe } = area else {
                        return Err(self.unsupported(lv, "a segment stacked on another LV"));
                    };
                    let marked = self.vg.pvs.get(*pv).is_some_and(|p| p.is_marked_missing());
                    let path = self
                        .pv_devices
                        .get(*pv)
                        .and_then(|p| p.as_ref())
                        .filter(|_| !marked)
                        .ok_or_else(|| PlanError::MissingPv {
                            vg: self.vg.name.clone(),
                            lv: lv.name.clone(),
                            pv_uuid: self
                                .vg
                                .pvs
                                .get(*pv)
                                .map(|p| p.id.clone())
                                .unwrap_or_default(),
                        })?;
                    // An area past its PV's extents would map sectors of
                    // whatever follows: refused, not wrapped or trusted.
                    let on_pv = &self.vg.pvs[*pv];
                    let run = seg.extent_count / stripes.len().max(1) as u64;
                    if pe.checked_add(run).is_none_or(|end| end > on_pv.pe_count) {
                        return Err(self.inconsistent(
                            lv,
                            format!(
                                "an area at extent {pe} past the {} extents of its PV",
                                on_pv.pe_count
                            ),
                        ));
                    }
                    devs.push((
                        DevRef::Path(path.display().to_string()),
                        on_pv.pe_start + pe * es,
                    ));
                }
                let target = if devs.len() == 1 {
                    let (dev, offset) = devs.pop().expect("one stripe");
                    Target::Linear { dev, offset }
                } else {
                    Target::Striped {
                        chunk_sectors: stripe_size.ok_or_else(|| {
                            self.inconsistent(lv, "striped segment without stripe_size")
                        })?,
                        stripes: devs,
                    }
                };
                Ok(TableLine {
                    start: seg.start_extent * es,
                    length: seg.extent_count * es,
                    target,
                })
            })
            .collect()
    }
}

/// A table of one line over the whole device.
fn one_line(length: u64, target: Target) -> Vec<TableLine> {
    vec![TableLine {
        start: 0,
        length,
        target,
    }]
}

fn single_segment(lv: &LogicalVolume) -> Option<&Segment> {
    match lv.segments.as_slice() {
        [one] => Some(one),
        _ => None,
    }
}

/// lvm2's activation skip: thin snapshots are made with it.
pub fn activation_skip(lv: &LogicalVolume) -> bool {
    lv.flags.iter().any(|f| f == "ACTIVATION_SKIP")
}

#[cfg(test)]
mod tests;
