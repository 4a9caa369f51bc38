//! `cairn status`: the whole stack as a tree, layer by layer in bring-up
//! order: sizes and states, the cache's hit rates and dirty blocks, DRBD's
//! role, connection, disk states and out-of-sync data, each thin pool's use
//! (with a warning past its auto-extend threshold) and each container's
//! volume use and state. Complete in JSON; one line per thing as text.

use std::fmt::Write as _;

use serde::Serialize;

use super::file::{Node, Stack};
use super::observe::{self, VgSeen};
use super::run::thin_used;
use super::Result;
use crate::dm::Control;
use crate::drbd::admin::Drbd;
use crate::lvm::inspect::{self, LvKind, DEFAULT_CACHE_MODE, DEFAULT_CACHE_POLICY};
use crate::units::human;

/// The whole stack of one stack file, layer by layer in bring-up order, as
/// read from the metadata, the kernel and LXC. Sizes are in bytes; `None`
/// where a layer is down or not made and so cannot say.
#[derive(Debug, Serialize)]
pub struct Status {
    /// The stack file's path.
    pub file: String,
    /// This host's name in the stack file.
    pub host: String,
    /// The VGs and DRBD resources, each after the layers it stands on.
    pub layers: Vec<Layer>,
    /// Things that want attention (pools past their threshold, layers down).
    pub warnings: Vec<String>,
}

/// One layer of the stack: a VG or a DRBD resource (serialized with a
/// `kind` field, `vg` or `drbd`).
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Layer {
    /// A VG with its LVs and thin pools.
    Vg(VgStatus),
    /// A DRBD resource.
    Drbd(DrbdStatus),
}

/// A VG of the stack file.
#[derive(Debug, Serialize)]
pub struct VgStatus {
    /// The VG's name.
    pub name: String,
    /// Its PVs, as the stack file names them.
    pub pvs: Vec<String>,
    /// "up", or why it cannot be read ("PV /dev/drbd10 missing: r0-U is down").
    pub state: String,
    /// Its PVs' extents, in bytes.
    pub size: Option<u64>,
    /// Its unallocated extents, in bytes.
    pub free: Option<u64>,
    /// The plain (linear, maybe cached) LVs the stack file defines.
    pub lvs: Vec<LvStatus>,
    /// The thin pools the stack file defines.
    pub thinpools: Vec<PoolStatus>,
}

/// A plain LV of the stack file (a lower layer's disk, a PV of the VG above).
#[derive(Debug, Serialize)]
pub struct LvStatus {
    /// The LV's name.
    pub name: String,
    /// Its size, in bytes.
    pub size: Option<u64>,
    /// Whether its device-mapper device is loaded.
    pub active: bool,
    /// Its dm-cache, when a cache pool is attached.
    pub cache: Option<CacheInfo>,
}

/// The dm-cache in front of an LV. The counters are the kernel's, since
/// the cache was last loaded, and 0 while the LV is inactive.
#[derive(Debug, Serialize)]
pub struct CacheInfo {
    /// The cache pool's name.
    pub pool: String,
    /// dm-cache's mode (`writethrough`, `writeback`, `passthrough`).
    pub mode: String,
    /// dm-cache's policy (`smq`).
    pub policy: String,
    /// The cache's data size, in bytes (while active).
    pub size: Option<u64>,
    /// Cache blocks holding data.
    pub blocks_used: u64,
    /// Cache blocks in all.
    pub blocks_total: u64,
    /// Reads served from the cache.
    pub read_hits: u64,
    /// Reads that went to the origin.
    pub read_misses: u64,
    /// Writes that went to the cache.
    pub write_hits: u64,
    /// Writes that went to the origin.
    pub write_misses: u64,
    /// Cache blocks not yet written back to the origin (writeback mode).
    pub dirty_blocks: u64,
    /// Read hits among all reads, in percent (`None` before any read).
    pub read_hit_percent: Option<f64>,
    /// Write hits among all writes, in percent (`None` before any write).
    pub write_hit_percent: Option<f64>,
}

/// A thin pool of the stack file, with its thin volumes.
#[derive(Debug, Serialize)]
pub struct PoolStatus {
    /// The pool's name.
    pub name: String,
    /// Its data size, in bytes.
    pub size: Option<u64>,
    /// Its metadata LV's size, in bytes.
    pub metadata_size: Option<u64>,
    /// Whether its thin-pool target is loaded.
    pub active: bool,
    /// Data blocks in use, in percent (while active).
    pub data_percent: Option<f64>,
    /// Metadata blocks in use, in percent (while active).
    pub metadata_percent: Option<f64>,
    /// The use, in percent, past which the stack file wants it extended.
    pub autoextend_threshold: Option<u32>,
    /// By how much, in percent of its size, it is then to be extended.
    pub autoextend_percent: Option<u32>,
    /// Data or metadata use is at or past the threshold (a warning says so).
    pub over_threshold: bool,
    /// Its thin LVs, in the metadata's order.
    pub volumes: Vec<VolumeStatus>,
}

/// A thin LV of a pool, and the container on it.
#[derive(Debug, Serialize)]
pub struct VolumeStatus {
    /// The thin LV's name.
    pub name: String,
    /// Its virtual size, in bytes.
    pub size: Option<u64>,
    /// Whether its device-mapper device is loaded.
    pub active: bool,
    /// Share of it the pool has mapped, in percent (lvm2's Data%).
    pub used_percent: Option<f64>,
    /// The LXC container on it, when one has it as rootfs.
    pub container: Option<String>,
    /// That container's state, upper-case as LXC names it (`RUNNING`).
    pub container_state: Option<String>,
    /// Whether LXC starts that container at boot (`lxc.start.auto`).
    pub autostart: bool,
}

/// A DRBD resource of the stack file, with what the kernel says of it.
#[derive(Debug, Serialize)]
pub struct DrbdStatus {
    /// The resource's name.
    pub name: String,
    /// Its device (`/dev/drbdN`).
    pub device: String,
    /// Its backing disk (an LV, or the lower resource's device).
    pub disk: String,
    /// The lower resource, for a stacked one.
    pub stacked_on: Option<String>,
    /// DRBD's replication protocol (`A`, `B` or `C`).
    pub protocol: char,
    /// The peer, as `HOST ADDRESS:PORT`.
    pub peer: Option<String>,
    /// "up", or "down" (not configured in the kernel).
    pub state: String,
    /// Its usable size, in bytes (while up).
    pub size: Option<u64>,
    /// This node's role (`Primary`, `Secondary`).
    pub role: Option<String>,
    /// The peer's role, as this node knows it (`Unknown` when disconnected).
    pub peer_role: Option<String>,
    /// The connection state (`Connected`, `StandAlone`, `WFConnection`...).
    pub connection: Option<String>,
    /// This node's disk state (`UpToDate`, `Inconsistent`, `Diskless`...).
    pub disk_state: Option<String>,
    /// The peer's disk state.
    pub peer_disk_state: Option<String>,
    /// Data not in sync with the peer, in bytes (4 KiB bitmap blocks).
    pub out_of_sync: Option<u64>,
}

impl CacheInfo {
    /// A cache through `pool` in `mode` with `policy`, and what its active
    /// device counts (no size and zero counters while inactive).
    fn new(pool: String, mode: String, policy: String, used: Option<inspect::CacheUse>) -> Self {
        let c = used.unwrap_or_default();
        let active = used.is_some();
        CacheInfo {
            pool,
            mode,
            policy,
            size: active.then_some(c.size_bytes),
            blocks_used: c.blocks_used,
            blocks_total: c.blocks_total,
            read_hits: c.read_hits,
            read_misses: c.read_misses,
            write_hits: c.write_hits,
            write_misses: c.write_misses,
            dirty_blocks: c.dirty_blocks,
            read_hit_percent: pct(c.read_hits, c.read_misses),
            write_hit_percent: pct(c.write_hits, c.write_misses),
        }
    }
}

fn pct(hits: u64, misses: u64) -> Option<f64> {
    let all = hits + misses;
    (all > 0).then(|| hits as f64 * 100.0 / all as f64)
}

fn vg_status(
    stack: &Stack,
    i: usize,
    ctl: &Control,
    warnings: &mut Vec<String>,
) -> Result<VgStatus> {
    let v = &stack.vgs[i];
    let mut out = VgStatus {
        name: v.name.clone(),
        pvs: v.pvs.iter().map(|p| p.path.display().to_string()).collect(),
        state: "up".into(),
        size: None,
        free: None,
        lvs: vec![],
        thinpools: vec![],
    };
    if let Some(missing) = v.pvs.iter().find(|p| !p.path.exists()) {
        out.state = format!("down (PV {} is not there)", missing.path.display());
        return Ok(out);
    }
    let seen: VgSeen = observe::vg(v, ctl)?;
    let Some(md) = &seen.vg else {
        out.state = "not made (`cairn apply`)".into();
        return Ok(out);
    };
    out.size = Some(md.size_bytes);
    out.free = md.free_bytes.as_ref().ok().copied();
    for lv in &v.lvs {
        let active = seen.active(&v.name, &lv.name, None);
        let cache = match seen.kind(&lv.name) {
            Some(LvKind::Cache { pool }) => {
                let (mode, policy) = match seen.kind(pool) {
                    Some(LvKind::CachePool { mode, policy }) => (mode.clone(), policy.clone()),
                    _ => (DEFAULT_CACHE_MODE.into(), DEFAULT_CACHE_POLICY.into()),
                };
                let used = if active {
                    inspect::cache_use(ctl, &v.name, &lv.name)
                } else {
                    None
                };
                Some(CacheInfo::new(pool.clone(), mode, policy, used))
            }
            _ => None,
        };
        out.lvs.push(LvStatus {
            name: lv.name.clone(),
            size: seen.lv_bytes(&lv.name),
            active,
            cache,
        });
    }
    let containers = crate::lxc::list(&stack.lxc_path).unwrap_or_default();
    for p in &v.thinpools {
        let pool_device = seen.pool_device(&v.name, &p.name);
        let active = pool_device.is_some();
        let metadata_size = match seen.kind(&p.name) {
            Some(LvKind::ThinPool { metadata, .. }) => seen.lv_bytes(metadata),
            _ => None,
        };
        let used = pool_device
            .as_deref()
            .and_then(|d| inspect::pool_use(ctl, d));
        let data_percent = used.map(|u| u.data_percent);
        let metadata_percent = used.map(|u| u.metadata_percent);
        let threshold = p.autoextend.map(|a| a.threshold);
        let over = threshold.is_some_and(|t| {
            t < 100
                && (data_percent.is_some_and(|d| d >= t as f64)
                    || metadata_percent.is_some_and(|m| m >= t as f64))
        });
        if over {
            warnings.push(format!(
                "thin pool {}/{} is past its auto-extend threshold of {}% (data {:.2}%, metadata {:.2}%): \
                 extend it (`cairn thinpool extend`) or raise its size in the file",
                v.name,
                p.name,
                threshold.unwrap_or(100),
                data_percent.unwrap_or(0.0),
                metadata_percent.unwrap_or(0.0)
            ));
        }
        let mut volumes = Vec::new();
        for (name, _) in seen.thin_lvs(&p.name) {
            let device = std::path::PathBuf::from(crate::lvm::names::lv_path(&v.name, &name));
            let cfg = containers
                .iter()
                .find(|c| c.rootfs_device.as_deref() == Some(device.as_path()));
            let state = cfg.and_then(|c| {
                crate::lxc::state(&stack.lxc_path, &c.name)
                    .ok()
                    .map(|s| format!("{s:?}").to_uppercase())
            });
            volumes.push(VolumeStatus {
                active: seen.active(&v.name, &name, None),
                used_percent: thin_used(ctl, &v.name, &name),
                size: seen.lv_bytes(&name),
                container: cfg.map(|c| c.name.clone()),
                container_state: state,
                autostart: cfg.is_some_and(|c| c.start_auto),
                name,
            });
        }
        out.thinpools.push(PoolStatus {
            name: p.name.clone(),
            size: seen.lv_bytes(&p.name),
            metadata_size,
            active,
            data_percent,
            metadata_percent,
            autoextend_threshold: threshold,
            autoextend_percent: p.autoextend.map(|a| a.percent),
            over_threshold: over,
            volumes,
        });
    }
    Ok(out)
}

fn drbd_status(stack: &Stack, i: usize, drbd: Option<&mut Drbd>) -> Result<DrbdStatus> {
    let d = &stack.drbd[i];
    let k = match drbd {
        Some(drbd) => drbd
            .status(Some(&d.name))?
            .into_iter()
            .find(|s| s.minor == d.minor),
        None => None,
    };
    Ok(DrbdStatus {
        name: d.name.clone(),
        device: d.device().display().to_string(),
        disk: d.disk.path.display().to_string(),
        stacked_on: d.stacked_on.clone(),
        protocol: d.protocol,
        peer: d.peer.as_ref().map(|p| format!("{} {}", p.host, p.address)),
        state: if k.is_some() { "up" } else { "down" }.into(),
        size: k.as_ref().map(|k| k.capacity_sectors * 512),
        role: k.as_ref().map(|k| k.state.role.to_owned()),
        peer_role: k.as_ref().map(|k| k.state.peer.to_owned()),
        connection: k.as_ref().map(|k| k.state.connection.to_owned()),
        disk_state: k.as_ref().map(|k| k.state.disk.to_owned()),
        peer_disk_state: k.as_ref().map(|k| k.state.peer_disk.to_owned()),
        out_of_sync: k.as_ref().and_then(|k| k.bits_oos.map(|b| b * 4096)),
    })
}

/// Reads the whole stack (`dev`: where device nodes are, how long to wait for udev).
pub fn read(stack: &Stack, dev: &crate::lvm::engine::Dev) -> Result<Status> {
    let ctl = dev.control()?;
    // No DRBD module loaded means every resource is down, not an error.
    let mut drbd = Drbd::open().ok();
    let mut warnings = Vec::new();
    let mut layers = Vec::new();
    for node in &stack.order {
        layers.push(match *node {
            Node::Vg(i) => Layer::Vg(vg_status(stack, i, &ctl, &mut warnings)?),
            Node::Drbd(i) => Layer::Drbd(drbd_status(stack, i, drbd.as_mut())?),
        });
    }
    Ok(Status {
        file: stack.path.display().to_string(),
        host: stack.host.clone(),
        layers,
        warnings,
    })
}

fn opt_size(s: Option<u64>) -> String {
    s.map_or("-".into(), human)
}

/// The tree, as a terminal shows it.
pub fn render(s: &Status) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "stack {} on {}", s.file, s.host);
    let n = s.layers.len();
    for (i, layer) in s.layers.iter().enumerate() {
        let last = i + 1 == n;
        let (branch, pad) = if last {
            ("└─", "   ")
        } else {
            ("├─", "│  ")
        };
        match layer {
            Layer::Vg(v) => {
                let _ = writeln!(
                    o,
                    "{branch} VG {} on {}: {}{}",
                    v.name,
                    v.pvs.join(" "),
                    v.state,
                    match (v.size, v.free) {
                        (Some(sz), Some(f)) => format!(", {} ({} free)", human(sz), human(f)),
                        _ => String::new(),
                    }
                );
                let items = v.lvs.len() + v.thinpools.len();
                let mut k = 0;
                for lv in &v.lvs {
                    k += 1;
                    let b = if k == items { "└─" } else { "├─" };
                    let _ = write!(
                        o,
                        "{pad}{b} {} {} {}",
                        lv.name,
                        opt_size(lv.size),
                        if lv.active { "active" } else { "inactive" }
                    );
                    if let Some(c) = &lv.cache {
                        let _ = write!(
                            o,
                            ", cached ({} {}, {}): {}/{} blocks, read hits {}, write hits {}, dirty {}",
                            c.mode,
                            c.policy,
                            opt_size(c.size),
                            c.blocks_used,
                            c.blocks_total,
                            c.read_hit_percent.map_or("-".into(), |p| format!("{p:.1}%")),
                            c.write_hit_percent.map_or("-".into(), |p| format!("{p:.1}%")),
                            c.dirty_blocks
                        );
                    }
                    o.push('\n');
                }
                for p in &v.thinpools {
                    k += 1;
                    let (b, sub) = if k == items {
                        ("└─", "   ")
                    } else {
                        ("├─", "│  ")
                    };
                    let _ = writeln!(
                        o,
                        "{pad}{b} thin pool {} {} (metadata {}) {}: data {}, metadata {}{}{}",
                        p.name,
                        opt_size(p.size),
                        opt_size(p.metadata_size),
                        if p.active { "active" } else { "inactive" },
                        p.data_percent.map_or("-".into(), |d| format!("{d:.2}%")),
                        p.metadata_percent
                            .map_or("-".into(), |d| format!("{d:.2}%")),
                        match (p.autoextend_threshold, p.autoextend_percent) {
                            (Some(t), Some(pc)) => format!(", auto-extend at {t}% by {pc}%"),
                            _ => String::new(),
                        },
                        if p.over_threshold {
                            "  WARNING: past the threshold"
                        } else {
                            ""
                        }
                    );
                    let m = p.volumes.len();
                    for (j, vol) in p.volumes.iter().enumerate() {
                        let b = if j + 1 == m { "└─" } else { "├─" };
                        let _ = writeln!(
                            o,
                            "{pad}{sub}{b} {} {} {}, used {}{}",
                            vol.name,
                            opt_size(vol.size),
                            if vol.active { "active" } else { "inactive" },
                            vol.used_percent.map_or("-".into(), |u| format!("{u:.2}%")),
                            match (&vol.container, &vol.container_state) {
                                (Some(c), Some(st)) => format!(
                                    ", container {c} {st}{}",
                                    if vol.autostart { " (autostart)" } else { "" }
                                ),
                                (Some(c), None) => format!(", container {c}"),
                                _ => String::new(),
                            }
                        );
                    }
                }
            }
            Layer::Drbd(d) => {
                let _ = write!(
                    o,
                    "{branch} DRBD {} {} on {} (protocol {}{}): ",
                    d.name,
                    d.device,
                    d.disk,
                    d.protocol,
                    d.peer
                        .as_ref()
                        .map_or(String::new(), |p| format!(", peer {p}"))
                );
                if d.state == "down" {
                    o.push_str("down\n");
                } else {
                    let _ = writeln!(
                        o,
                        "{} {}/{} {}/{}, {}, out of sync {}",
                        d.connection.as_deref().unwrap_or("-"),
                        d.role.as_deref().unwrap_or("-"),
                        d.peer_role.as_deref().unwrap_or("-"),
                        d.disk_state.as_deref().unwrap_or("-"),
                        d.peer_disk_state.as_deref().unwrap_or("-"),
                        opt_size(d.size),
                        opt_size(d.out_of_sync)
                    );
                }
            }
        }
    }
    for w in &s.warnings {
        let _ = writeln!(o, "WARNING: {w}");
    }
    o
}
