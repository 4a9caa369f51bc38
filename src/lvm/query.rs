//! `pvs`, `vgs`, `lvs`: a device scan (crate::meta::scan), the kernel's view
//! of each LV (device-mapper, when there is one) and lvm2's report rules
//! (super::report), put together.

use std::collections::{BTreeMap, BTreeSet};

use super::names::dm_name;
use super::percent::{self, Percent};
use super::report::{self, LvActivity, PvInfo, ReportError, Row, TargetState};
use crate::dm;
use crate::meta::model::SegmentKind;
use crate::meta::scan::{Scan, ScanError, ScannedPv, VgView};

/// Why a `pvs`/`vgs`/`lvs` report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Scanning the devices for PVs and their metadata failed.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// The metadata holds what lvm2's report rules cannot render (a
    /// segment type cairn keeps uninterpreted, a dangling reference).
    #[error(transparent)]
    Report(#[from] ReportError),
    /// The kernel's device-mapper could not be asked about the LVs.
    #[error(transparent)]
    Dm(#[from] dm::Error),
    /// No scanned device holds metadata of the named VG.
    #[error("volume group {0} not found")]
    NoSuchVg(String),
}

/// A result whose error is a [`QueryError`].
pub type Result<T> = std::result::Result<T, QueryError>;

/// What the scan knows of one PV, for the report.
pub fn pv_info(pv: &ScannedPv) -> PvInfo {
    let copy_size = |m: &crate::meta::scan::ScannedMda| m.header.raw_locns[0].size;
    PvInfo {
        name: pv.path.display().to_string(),
        dev_size_bytes: pv.size,
        mda_count: pv.mdas.len() as u32,
        mda_size: pv.mdas.iter().map(|m| m.header.size).min().unwrap_or(0),
        mda_free: pv
            .mdas
            .iter()
            .map(|m| report::mda_free(m.header.size, copy_size(m)))
            .min()
            .unwrap_or(0),
        ext_version: pv
            .label
            .pv_header
            .extension
            .as_ref()
            .map(|e| e.version)
            .unwrap_or(0),
        mda_ignored: !pv.mdas.is_empty() && pv.mdas.iter().all(|m| m.header.is_ignored()),
    }
}

fn pv_infos(scan: &Scan, view: &VgView) -> Vec<Option<PvInfo>> {
    view.devices
        .iter()
        .map(|d| d.map(|i| pv_info(&scan.pvs[i])))
        .collect()
}

/// The VGs named (all when `names` is empty), in name order. Only these
/// VGs' texts get parsed.
fn select(scan: &Scan, names: &[String]) -> Result<Vec<VgView>> {
    if names.is_empty() {
        return Ok(scan.vgs()?.into_values().collect());
    }
    let mut sorted = names.to_vec();
    sorted.sort();
    sorted.dedup();
    sorted
        .iter()
        .map(|n| {
            scan.vg(n).map_err(|e| match e {
                ScanError::NoSuchVg(n) => QueryError::NoSuchVg(n),
                e => e.into(),
            })
        })
        .collect()
}

/// How each LV of `view` looks in the kernel, by LV name (lvm2's lv_info:
/// the LV's own device, except a thin pool, which is its `-tpool` layer
/// while its own device exists).
fn activity(
    view: &VgView,
    control: Option<&dm::Control>,
    existing: &BTreeSet<String>,
) -> Result<BTreeMap<String, LvActivity>> {
    let mut out = BTreeMap::new();
    let Some(control) = control else {
        return Ok(out);
    };
    let vg = &view.metadata.vg;
    let state = |name: String| -> Result<Option<dm::DeviceState>> {
        if existing.contains(&name) {
            Ok(control.state(&name)?)
        } else {
            Ok(None)
        }
    };
    for lv in &vg.lvs {
        let own_name = dm_name(&vg.name, &lv.name, None);
        let own = state(own_name.clone())?;
        let kind = lv.segments.first().map(|s| &s.kind);
        let is_pool = matches!(kind, Some(SegmentKind::ThinPool { .. }));
        // A pool's status is its -tpool layer's; a new pool (transaction
        // id 0) carries the thin-pool target on its own name.
        let (state, device) = match (is_pool, own) {
            (true, Some(own)) => {
                let tpool = dm_name(&vg.name, &lv.name, Some("tpool"));
                match state(tpool.clone())? {
                    Some(t) => (Some(t), tpool),
                    None => (Some(own), own_name),
                }
            }
            (true, None) => (None, own_name),
            (false, own) => (own, own_name),
        };
        let mut act = LvActivity::INACTIVE;
        if let Some(s) = state {
            act = LvActivity {
                exists: true,
                live_table: s.live_table,
                inactive_table: s.inactive_table,
                suspended: s.suspended,
                open: s.open_count > 0,
                read_only: s.read_only,
                ..LvActivity::INACTIVE
            };
            if s.live_table {
                (act.data_percent, act.metadata_percent, act.target) =
                    status_facts(control, vg, &lv.name, &device)?;
            }
        } else if let Some(SegmentKind::CachePool { .. }) = kind {
            // A cache pool in use reports its cached LV's figures.
            let user = vg.lvs.iter().find(|c| {
                matches!(c.segments.first().map(|s| &s.kind),
                    Some(SegmentKind::Cache { cache_pool, .. }) if *cache_pool == lv.name)
            });
            if let Some(user) = user {
                let name = dm_name(&vg.name, &user.name, None);
                if existing.contains(&name) {
                    (act.data_percent, act.metadata_percent, _) =
                        status_facts(control, vg, &user.name, &name)?;
                }
            }
            if act.data_percent.is_none() {
                continue;
            }
        } else {
            continue;
        }
        out.insert(lv.name.clone(), act);
    }
    Ok(out)
}

/// Data% and Meta% of LV `lv` from the status of its device `device`, by
/// lvm2's rules (lvseg_percent_with_info_and_seg_status; None where lvm2
/// prints nothing), and the health lv_attr shows.
fn status_facts(
    control: &dm::Control,
    vg: &crate::meta::model::VolumeGroup,
    lv: &str,
    device: &str,
) -> Result<(Option<Percent>, Option<Percent>, TargetState)> {
    use dm::status::TargetStatus;
    let Some(model) = vg.lv(lv) else {
        return Ok((None, None, TargetState::Healthy));
    };
    let wanted = matches!(
        model.segments.first().map(|s| &s.kind),
        Some(
            SegmentKind::ThinPool { .. }
                | SegmentKind::Thin { .. }
                | SegmentKind::Cache { .. }
                | SegmentKind::CachePool { .. }
        )
    ) || vg.snapshot_of_cow(lv).is_some();
    if !wanted {
        return Ok((None, None, TargetState::Healthy));
    }
    let lines = control.status(device)?;
    let Some((_, _, target, params)) = lines.first() else {
        return Ok((None, None, TargetState::Unknown));
    };
    // A status cairn cannot read is shown as lvm2 shows an unknown one.
    let Ok(status) = dm::status::parse(target, params) else {
        return Ok((None, None, TargetState::Unknown));
    };
    let health = match &status {
        TargetStatus::ThinPool(p) if p.needs_check => TargetState::NeedsCheck,
        TargetStatus::ThinPool(p) => match p.mode {
            dm::status::PoolMode::ReadOnly => TargetState::ReadOnly,
            dm::status::PoolMode::OutOfDataSpace => TargetState::OutOfDataSpace,
            _ => TargetState::Healthy,
        },
        TargetStatus::Failed => TargetState::Failed,
        TargetStatus::Error => TargetState::Unknown,
        TargetStatus::Invalid => TargetState::SnapshotInvalid,
        TargetStatus::MergeFailed => TargetState::SnapshotMergeFailed,
        _ => TargetState::Healthy,
    };
    let (data, meta) = match status {
        TargetStatus::ThinPool(p) => (
            Some(percent::make(p.data_used, p.data_total)),
            Some(percent::make(p.metadata_used, p.metadata_total)),
        ),
        TargetStatus::Thin(t) => {
            // The pool maps whole chunks: the size rounds up to one.
            let chunk = match model.segments.first().map(|s| &s.kind) {
                Some(SegmentKind::Thin { thin_pool, .. }) => match vg
                    .lv(thin_pool)
                    .and_then(|p| p.segments.first())
                    .map(|s| &s.kind)
                {
                    Some(SegmentKind::ThinPool { chunk_size, .. }) => (*chunk_size).max(1),
                    _ => 1,
                },
                _ => 1,
            };
            let size = model.extent_count() * vg.extent_size;
            let csize = size.div_ceil(chunk) * chunk;
            let p = if t.mapped_sectors <= csize {
                percent::make(t.mapped_sectors, csize)
            } else {
                percent::PERCENT_100
            };
            (Some(p), None)
        }
        TargetStatus::Cache(c) => (
            Some(percent::make(c.blocks_used, c.blocks_total)),
            Some(percent::make(c.metadata_used, c.metadata_total)),
        ),
        TargetStatus::Snapshot(s) => {
            let p = if s.metadata_sectors > 0 && s.sectors_allocated == s.metadata_sectors {
                percent::PERCENT_0
            } else {
                percent::make(s.sectors_allocated, s.total_sectors)
            };
            (Some(p), None)
        }
        TargetStatus::Invalid => (Some(percent::PERCENT_100), None),
        _ => (None, None),
    };
    Ok((data, meta, health))
}

/// `lvs [-a] [VG...]`. `control` is None where there is no device-mapper:
/// every LV then reports inactive.
pub fn lvs(
    scan: &Scan,
    names: &[String],
    all: bool,
    control: Option<&dm::Control>,
) -> Result<Vec<Row>> {
    // One device listing, then a status ioctl only for devices that exist:
    // inactive LVs cost nothing.
    let existing: BTreeSet<String> = match control {
        Some(c) => c.devices()?.into_iter().map(|d| d.name).collect(),
        None => BTreeSet::new(),
    };
    let mut rows = Vec::new();
    for view in &select(scan, names)? {
        let act = activity(view, control, &existing)?;
        let lookup = |lv: &str| act.get(lv).copied().unwrap_or(LvActivity::INACTIVE);
        rows.extend(report::lv_rows(
            &view.metadata.vg,
            &pv_infos(scan, view),
            &lookup,
            all,
        )?);
    }
    Ok(rows)
}

/// `vgs [VG...]`.
pub fn vgs(scan: &Scan, names: &[String]) -> Result<Vec<Row>> {
    select(scan, names)?
        .iter()
        .map(|view| Ok(report::vg_row(&view.metadata.vg, &pv_infos(scan, view))?))
        .collect()
}

/// `pvs`: the PVs of the VGs named (all PVs, orphans included, when none are).
pub fn pvs(scan: &Scan, names: &[String]) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for view in &select(scan, names)? {
        rows.extend(report::pv_rows(&view.metadata.vg, &pv_infos(scan, view))?);
    }
    if names.is_empty() {
        for pv in scan.orphans() {
            rows.push(report::orphan_pv_row(&pv_info(pv), &pv.label));
        }
        rows.sort_by(|a, b| a.get("pv_name").cmp(&b.get("pv_name")));
    }
    Ok(rows)
}
