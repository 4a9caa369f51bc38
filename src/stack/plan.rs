//! The steps between what exists and what the stack file says, one node
//! (VG, DRBD resource, container) at a time. Pure: observations in, steps
//! and notes out; [`super::run`] observes and executes.
//!
//! Rules: whatever the file names and is missing is made; what is smaller
//! than the file says grows; what exists and is not in the file is left
//! alone; differences the plan does not change are noted; anything that
//! would destroy data (a shrink, a device that belongs to something else,
//! a re-creation) is refused unless a flag allows it. apply plans the
//! whole stack first, so a refusal in any layer that can be read stops it
//! before its first change; a layer that cannot be read until the layers
//! under it are up is checked when apply reaches it.

use super::file::{Container, Drbd, Lv, SizeSpec, Stack, ThinPool, Vg};
use super::observe::{ContainerSeen, DrbdSeen, MdSeen, PvSeen, VgSeen};
use super::step::{drbd_config_text, rootfs_text, Step};
use super::{Result, StackError};
use crate::error::{ErrorKind, Refusal};
use crate::lvm::inspect::{round_up, LvKind, VgInfo};
use crate::lvm::names::lv_path;
use crate::units::human;

/// What the flags allow.
#[derive(Debug, Clone, Copy, Default)]
pub struct Allow {
    /// Shrink LVs the file makes smaller (their data past the new end is lost).
    pub shrink: bool,
}

/// The steps of one node, and what the plan noticed on the way.
#[derive(Debug, Default)]
pub struct NodePlan {
    pub steps: Vec<Step>,
    /// Differences the plan does not change (drift, things not in the file).
    pub notes: Vec<String>,
}

fn refuse(kind: ErrorKind, msg: String) -> StackError {
    StackError::Refused(Refusal::new(kind, msg))
}

/// Why a device the file names as a PV of `vg` cannot be one (for a
/// device that is missing, in use, or another VG's).
fn pv_refusal(vg: &Vg, dev: &super::file::Device, seen: &PvSeen) -> StackError {
    let (path, line) = (dev.path.display(), dev.line);
    let kind = match seen {
        PvSeen::Missing => ErrorKind::NotFound,
        PvSeen::InUse(_) => ErrorKind::Busy,
        _ => ErrorKind::Refused,
    };
    refuse(
        kind,
        match seen {
            PvSeen::Missing => format!(
                "VG {}: PV {path} (line {line}) does not exist: bring the device up (an md RAID \
             assembled, the layer under it up) or fix the path",
                vg.name
            ),
            PvSeen::InUse(why) => {
                format!("VG {}: cannot take {path} (line {line}): {why}", vg.name)
            }
            PvSeen::Member(other) => format!(
            "VG {}: {path} (line {line}) is a PV of VG {other}: name another device, or take it \
             out of {other} first",
            vg.name
        ),
            PvSeen::MarkedUsed => format!(
            "VG {}: {path} (line {line}) is a PV of another volume group that keeps no metadata \
             on it (its label is marked used): `pvs -o+vg_name` names that VG; name another \
             device",
            vg.name
        ),
            PvSeen::Blank | PvSeen::Orphan => {
                unreachable!("blank and orphan PVs are taken, not refused")
            }
        },
    )
}

/// A VG that does not exist yet, made whole.
pub fn fresh_vg(vg: &Vg, pvs: &[PvSeen]) -> Result<NodePlan> {
    let mut plan = NodePlan::default();
    for (dev, seen) in vg.pvs.iter().zip(pvs) {
        match seen {
            PvSeen::Blank => plan.steps.push(Step::PvCreate {
                device: dev.path.clone(),
            }),
            PvSeen::Orphan => {}
            other => return Err(pv_refusal(vg, dev, other)),
        }
    }
    plan.steps.push(Step::VgCreate {
        vg: vg.name.clone(),
        pvs: vg.pvs.iter().map(|p| p.path.clone()).collect(),
        extent_size: vg.extent_size,
    });
    for lv in &vg.lvs {
        plan.steps.extend(new_lv(vg, lv));
    }
    for pool in &vg.thinpools {
        plan.steps.push(new_pool(vg, pool));
    }
    Ok(plan)
}

fn new_lv(vg: &Vg, lv: &Lv) -> Vec<Step> {
    let mut steps = vec![Step::LvCreate {
        vg: vg.name.clone(),
        lv: lv.name.clone(),
        size: lv.size,
        pvs: lv.pvs.clone(),
    }];
    if let Some(c) = &lv.cache {
        steps.push(Step::CachePoolCreate {
            vg: vg.name.clone(),
            pool: c.pool.clone(),
            size: c.size,
            metadata: c.metadata,
            chunk: c.chunk,
            pvs: c.pvs.clone(),
        });
        steps.push(cache_attach(vg, lv));
    }
    steps
}

fn cache_attach(vg: &Vg, lv: &Lv) -> Step {
    let c = lv.cache.as_ref().expect("called for cached LVs");
    Step::CacheAttach {
        vg: vg.name.clone(),
        lv: lv.name.clone(),
        pool: c.pool.clone(),
        mode: c.mode.clone(),
        policy: c.policy.clone(),
    }
}

fn new_pool(vg: &Vg, pool: &ThinPool) -> Step {
    Step::ThinPoolCreate {
        vg: vg.name.clone(),
        pool: pool.name.clone(),
        size: pool.size,
        metadata: pool.metadata,
        chunk: pool.chunk,
        pvs: pool.pvs.clone(),
    }
}

/// The steps for a VG that exists (or, with no metadata, [`fresh_vg`]).
/// `containers` are the file's containers in this VG: their thin LVs are
/// activated with their pool.
pub fn vg(stack: &Stack, vg: &Vg, seen: &VgSeen, allow: Allow) -> Result<NodePlan> {
    let Some(md) = &seen.vg else {
        return fresh_vg(vg, &seen.pvs);
    };
    let mut plan = NodePlan::default();
    let extent = md.extent_bytes;
    // PVs: the file's that are not in the VG join it.
    let mut joining = Vec::new();
    for (dev, s) in vg.pvs.iter().zip(&seen.pvs) {
        match s {
            PvSeen::Member(n) if *n == vg.name => {}
            PvSeen::Blank => {
                plan.steps.push(Step::PvCreate {
                    device: dev.path.clone(),
                });
                joining.push(dev.path.clone());
            }
            PvSeen::Orphan => joining.push(dev.path.clone()),
            other => return Err(pv_refusal(vg, dev, other)),
        }
    }
    if !joining.is_empty() {
        plan.steps.push(Step::VgExtend {
            vg: vg.name.clone(),
            pvs: joining,
        });
    }
    let members = seen
        .pvs
        .iter()
        .filter(|s| **s == PvSeen::Member(vg.name.clone()))
        .count();
    if md.pv_count > members {
        plan.notes.push(format!(
            "VG {} has {} PVs, the file lists {members} of them: the others are left alone",
            vg.name, md.pv_count
        ));
    }
    if extent != vg.extent_size {
        plan.notes.push(format!(
            "VG {} has {} extents, the file says {} (an extent size is set at vgcreate; left as it is)",
            vg.name,
            human(extent),
            human(vg.extent_size)
        ));
    }
    let mut activate = Vec::new();
    for lv in &vg.lvs {
        let Some(kind) = seen.kind(&lv.name) else {
            plan.steps.extend(new_lv(vg, lv));
            continue;
        };
        let now = seen.lv_bytes(&lv.name).unwrap_or(0);
        let cached_pool = match kind {
            LvKind::Linear => None,
            LvKind::Cache { pool } => Some(pool.clone()),
            other => {
                return Err(refuse(
                    ErrorKind::AlreadyExists,
                    format!(
                    "{}/{} (line {}) is a {} LV, the file describes a plain LV: rename one of them",
                    vg.name,
                    lv.name,
                    lv.line,
                    other.type_name()
                ),
                ))
            }
        };
        if let SizeSpec::Bytes(b) = lv.size {
            let want = round_up(b, extent);
            if want > now {
                plan.steps.push(Step::LvResize {
                    vg: vg.name.clone(),
                    lv: lv.name.clone(),
                    from: now,
                    to: want,
                });
            } else if want < now {
                if !allow.shrink {
                    return Err(refuse(ErrorKind::Refused, format!(
                        "{}/{} is {} and the file says {} (line {}): shrinking loses the data past {}; \
                         pass --allow-shrink if that is meant, or fix the file",
                        vg.name,
                        lv.name,
                        human(now),
                        human(want),
                        lv.line,
                        human(want)
                    )));
                }
                plan.steps.push(Step::LvResize {
                    vg: vg.name.clone(),
                    lv: lv.name.clone(),
                    from: now,
                    to: want,
                });
            }
        }
        match (&lv.cache, cached_pool) {
            (Some(c), None) => {
                match seen.kind(&c.pool) {
                    None => plan.steps.push(Step::CachePoolCreate {
                        vg: vg.name.clone(),
                        pool: c.pool.clone(),
                        size: c.size,
                        metadata: c.metadata,
                        chunk: c.chunk,
                        pvs: c.pvs.clone(),
                    }),
                    Some(LvKind::CachePool { .. }) => {}
                    Some(other) => {
                        return Err(refuse(ErrorKind::AlreadyExists, format!(
                            "{}/{}: the cache pool name is taken by a {} LV (line {}): name the pool otherwise",
                            vg.name,
                            c.pool,
                            other.type_name(),
                            c.line
                        )))
                    }
                }
                plan.steps.push(cache_attach(vg, lv));
            }
            (Some(c), Some(pool)) => {
                if let Some(LvKind::CachePool { mode, .. }) = seen.kind(&pool) {
                    if *mode != c.mode {
                        plan.notes.push(format!(
                            "{}/{} caches {mode}, the file says {} (line {}): cairn does not change a live cache; \
                             `cairn cache detach` then apply to re-attach it",
                            vg.name, lv.name, c.mode, c.line
                        ));
                    }
                }
                if pool != c.pool && pool != format!("{}_cpool", c.pool) {
                    plan.notes.push(format!(
                        "{}/{} is cached by pool {pool}, the file names {} (line {})",
                        vg.name, lv.name, c.pool, c.line
                    ));
                }
            }
            (None, Some(pool)) => plan.notes.push(format!(
                "{}/{} is cached (pool {pool}) and the file has no cache for it: left cached; \
                 `cairn cache detach {}/{}` to uncache",
                vg.name, lv.name, vg.name, lv.name
            )),
            (None, None) => {}
        }
        if !seen.active(&vg.name, &lv.name, None) {
            activate.push(lv.name.clone());
        }
    }
    for pool in &vg.thinpools {
        let Some(kind) = seen.kind(&pool.name) else {
            plan.steps.push(new_pool(vg, pool));
            continue;
        };
        let LvKind::ThinPool {
            metadata,
            chunk_bytes,
        } = kind
        else {
            return Err(refuse(
                ErrorKind::AlreadyExists,
                format!(
                    "{}/{} (line {}) is a {} LV, the file describes a thin pool",
                    vg.name,
                    pool.name,
                    pool.line,
                    kind.type_name()
                ),
            ));
        };
        let now = seen.lv_bytes(&pool.name).unwrap_or(0);
        let md_now = seen.lv_bytes(metadata).unwrap_or(0);
        let mut grow = (None, None);
        match pool.size {
            SizeSpec::Bytes(b) if round_up(b, extent) > now => grow.0 = Some(round_up(b, extent)),
            SizeSpec::Bytes(b) if round_up(b, extent) < now => plan.notes.push(format!(
                "{}/{} holds {} of data, the file says {} (line {}): grown outside the file \
                 (by hand or auto-extension); a pool cannot shrink: write the new size into the file",
                vg.name,
                pool.name,
                human(now),
                human(b),
                pool.line
            )),
            _ => {}
        }
        if let Some(m) = pool.metadata {
            let m = round_up(m, extent);
            if m > md_now {
                grow.1 = Some(m);
            } else if m < md_now {
                plan.notes.push(format!(
                    "{}/{} has {} of metadata, the file says {} (line {}): metadata cannot shrink",
                    vg.name,
                    pool.name,
                    human(md_now),
                    human(m),
                    pool.line
                ));
            }
        }
        if grow != (None, None) {
            plan.steps.push(Step::ThinPoolExtend {
                vg: vg.name.clone(),
                pool: pool.name.clone(),
                data: grow.0,
                metadata: grow.1,
            });
        }
        if let Some(c) = pool.chunk {
            if c != *chunk_bytes {
                plan.notes.push(format!(
                    "{}/{} has {} chunks, the file says {} (line {}): set at creation; left as it is",
                    vg.name,
                    pool.name,
                    human(*chunk_bytes),
                    human(c),
                    pool.line
                ));
            }
        }
        // The pool comes up with every thin LV in it (cairn's containers,
        // and those made with `cairn container create` or lvm2); thin
        // snapshots keep lvm2's activation skip.
        let mut lvs: Vec<String> = seen
            .thin_lvs(&pool.name)
            .into_iter()
            .filter(|(_, skip)| !skip)
            .map(|(n, _)| n)
            .filter(|n| !seen.active(&vg.name, n, None))
            .collect();
        if seen.pool_device(&vg.name, &pool.name).is_none() || !lvs.is_empty() {
            lvs.insert(0, pool.name.clone());
            activate.extend(lvs);
        }
    }
    check_room(&stack.path, vg, md, &plan.steps)?;
    let suspended = seen.suspended_in(&vg.name);
    if !suspended.is_empty() {
        // Activation resumes what a stopped command left suspended (the
        // engine keeps the live tables): every LV the stack brings up goes
        // through it again, active or not.
        plan.notes.push(format!(
            "VG {}: {} left suspended (a command stopped half-way): resumed",
            vg.name,
            suspended.join(", ")
        ));
        let mut all: Vec<String> = vg.lvs.iter().map(|lv| lv.name.clone()).collect();
        for pool in &vg.thinpools {
            all.push(pool.name.clone());
            all.extend(
                seen.thin_lvs(&pool.name)
                    .into_iter()
                    .filter(|(_, skip)| !skip)
                    .map(|(n, _)| n),
            );
        }
        for name in all {
            if !activate.contains(&name) && seen.kind(&name).is_some() {
                activate.push(name);
            }
        }
    }
    if !activate.is_empty() {
        plan.steps.push(Step::Activate {
            vg: vg.name.clone(),
            lvs: activate,
        });
    }
    Ok(plan)
}

/// The steps for a DRBD resource. `fresh`: its disk is made in this run.
pub fn drbd(stack: &Stack, d: &Drbd, seen: &DrbdSeen, fresh: bool) -> Result<NodePlan> {
    let mut plan = NodePlan::default();
    let (text, path) = drbd_config_text(stack, &d.name)?;
    match &seen.config {
        Some(now) if *now == text => {}
        Some(now) if !now.starts_with("# Written by cairn") => {
            return Err(refuse(
                ErrorKind::Refused,
                format!(
                "DRBD resource {}: {} exists and was not written by cairn: move it away (cairn \
                 writes the resource from the stack file)",
                d.name,
                path.display()
            ),
            ))
        }
        _ => plan.steps.push(Step::DrbdConfig {
            resource: d.name.clone(),
            path,
            text,
        }),
    }
    let md = if fresh {
        MdSeen::Blank
    } else {
        seen.md.clone()
    };
    let force = match md {
        MdSeen::NoDisk => {
            return Err(refuse(
                ErrorKind::NotFound,
                format!(
                "DRBD resource {}: its disk {} does not exist (line {}): bring up what it stands \
                 on, or fix `disk`",
                d.name,
                d.disk.path.display(),
                d.disk.line
            ),
            ))
        }
        MdSeen::Foreign(why) => {
            return Err(refuse(
                ErrorKind::Refused,
                format!(
                    "DRBD resource {}: will not put metadata on {} (line {}): {why}",
                    d.name,
                    d.disk.path.display(),
                    d.disk.line
                ),
            ))
        }
        MdSeen::Blank => {
            plan.steps.push(Step::DrbdCreateMd {
                resource: d.name.clone(),
                disk: d.disk.path.clone(),
            });
            // New metadata is Inconsistent; this node's data is all there
            // is, so it is made UpToDate as the seed does.
            true
        }
        // Metadata as create-md left it holds nobody's data (an apply that
        // stopped before the first promotion); a resource with no peer has
        // no other copy that could be newer: both are forced, as the
        // seed's startup script forces. A resource with a peer is not
        // forced once it holds data (the peer may have taken over).
        MdSeen::Present {
            was_up_to_date: _,
            just_created,
        } => just_created || d.peer.is_none(),
    };
    let k = seen.kernel.as_ref();
    let attached = k.is_some_and(|k| k.state.disk != "Diskless");
    let unconnected = d.peer.is_some() && k.is_some_and(|k| k.state.connection == "StandAlone");
    if !attached || unconnected {
        plan.steps.push(Step::DrbdUp {
            resource: d.name.clone(),
        });
    }
    if k.is_none_or(|k| k.state.role != "Primary") {
        plan.steps.push(Step::DrbdPrimary {
            resource: d.name.clone(),
            force,
        });
    }
    Ok(plan)
}

/// "container NAME (line N)", or without the line for one made on the
/// command line (it has none).
fn named(c: &Container) -> String {
    if c.line == 0 {
        format!("container {}", c.name)
    } else {
        format!("container {} (line {})", c.name, c.line)
    }
}

/// What an interrupted run left of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Nothing: the container is taken as it is.
    No,
    /// It was being made (volume, filesystem or root): made again if its
    /// volume still holds only what that run wrote.
    Unfinished,
    /// As Unfinished, and cut off inside mkfs: half a filesystem with no
    /// superblock yet, made again.
    MkfsCut,
}

/// The steps for a container (`seen`: what exists of it; for a pool made
/// in this run, only its LXC config can exist). `resume`: an interrupted
/// apply was making this container (its volume may hold half a
/// filesystem), so it is made again.
pub fn container(c: &Container, seen: &ContainerSeen, resume: Resume) -> Result<NodePlan> {
    let mkfs_cut = resume == Resume::MkfsCut;
    let resume = resume != Resume::No;
    let mut plan = NodePlan::default();
    let device = std::path::PathBuf::from(lv_path(&c.vg, &c.name));
    let make_fs = |plan: &mut NodePlan| {
        plan.steps.push(Step::Mkfs {
            container: c.name.clone(),
            device: device.clone(),
            mkfs_cut,
        });
        plan.steps.push(Step::Populate {
            container: c.name.clone(),
            device: device.clone(),
            rootfs: rootfs_text(&c.rootfs),
        });
        plan.steps.push(Step::LxcConfig {
            container: c.name.clone(),
            device: device.clone(),
            autostart: c.autostart,
            rootfs: rootfs_text(&c.rootfs),
        });
    };
    let Some(now) = seen.volume_bytes else {
        if let Some(cfg) = &seen.config {
            return Err(refuse(
                ErrorKind::AlreadyExists,
                format!(
                    "{}: LXC has a container of that name (rootfs {:?}) and {} \
                 does not exist: cairn does not replace it; pick another name, or remove that \
                 container (lxc-destroy) if it is not needed",
                    named(c),
                    cfg.rootfs_path.as_deref().unwrap_or("(none)"),
                    device.display()
                ),
            ));
        }
        plan.steps.push(Step::ThinCreate {
            vg: c.vg.clone(),
            pool: c.pool.clone(),
            lv: c.name.clone(),
            size: c.size,
        });
        make_fs(&mut plan);
        if c.autostart {
            plan.steps.push(Step::ContainerStart {
                container: c.name.clone(),
            });
        }
        return Ok(plan);
    };
    let want = round_up(c.size, seen.round_to.max(1));
    // The filesystem is short of its volume when a resize stopped between
    // the volume and the filesystem.
    let fs_short = seen
        .fs
        .as_ref()
        .is_some_and(|fs| fs.size_bytes() + fs.block_size <= now);
    if want > now {
        plan.steps.push(Step::LvResize {
            vg: c.vg.clone(),
            lv: c.name.clone(),
            from: now,
            to: want,
        });
    } else if want < now {
        plan.notes.push(format!(
            "container {}: its volume is {}, the file says {} (line {}): cairn does not shrink a container's \
             filesystem; write the size into the file",
            c.name,
            human(now),
            human(c.size),
            c.line
        ));
    }
    if (want > now || fs_short) && !resume && seen.config.is_some() {
        plan.steps.push(Step::Resize2fs {
            container: c.name.clone(),
            device: device.clone(),
        });
    }
    // What an interrupted run was making is made again only if it is
    // still what that run left: a volume never written to, or an ext4 that
    // carries the container's label (cairn's mkfs gives it). Anything else
    // on it is somebody's data.
    let half_made = mkfs_cut
        || seen.unwritten
        || seen
            .fs
            .as_ref()
            .is_some_and(|fs| fs.label == super::step::fs_label(&c.name));
    match (&seen.config, resume) {
        (None, true) if !half_made && seen.active => {
            return Err(refuse(ErrorKind::Refused, format!(
                "{}: an interrupted run was making it, but {} now holds \
                 something else ({}): cairn leaves it alone; remove it (`cairn lv remove`) or pick \
                 another name",
                named(c),
                device.display(),
                seen.fs
                    .as_ref()
                    .map_or("data".to_owned(), |fs| format!("an {} labelled {:?}", fs.kind, fs.label))
            )))
        }
        (None, true) => make_fs(&mut plan),
        (None, false) if seen.fs.is_none() && seen.active => {
            return Err(refuse(ErrorKind::Refused, format!(
                "{}: volume {} exists with no filesystem and no LXC config, and no \
                 interrupted apply made it: cairn leaves it alone; remove it (`cairn lv remove`) or pick \
                 another name",
                named(c),
                device.display()
            )))
        }
        (None, false) => plan.steps.push(Step::LxcConfig {
            container: c.name.clone(),
            device: device.clone(),
            autostart: c.autostart,
            rootfs: rootfs_text(&c.rootfs),
        }),
        (Some(cfg), _) => {
            if cfg.rootfs_device.as_deref() != Some(device.as_path()) {
                return Err(refuse(ErrorKind::AlreadyExists, format!(
                    "{}: its LXC config has rootfs {:?}, not {}: another container of \
                     that name exists; pick another name",
                    named(c),
                    cfg.rootfs_path.as_deref().unwrap_or("(none)"),
                    device.display()
                )));
            }
            if cfg.start_auto != c.autostart {
                plan.steps.push(Step::LxcAutostart {
                    container: c.name.clone(),
                    autostart: c.autostart,
                });
            }
        }
    }
    let running = seen
        .state
        .as_ref()
        .is_some_and(|s| *s == crate::lxc::State::Running);
    if c.autostart && !running {
        plan.steps.push(Step::ContainerStart {
            container: c.name.clone(),
        });
    }
    Ok(plan)
}

/// Refuses new LVs and pools of fixed sizes that the VG's free space
/// cannot hold, before anything is done (lvm2 would stop half-way).
fn check_room(file: &std::path::Path, vg: &Vg, md: &VgInfo, steps: &[Step]) -> Result<()> {
    let extent = md.extent_bytes;
    let free = *md
        .free_bytes
        .as_ref()
        .map_err(|e| refuse(ErrorKind::Inconsistent, format!("VG {}: {e}", vg.name)))?;
    let mut need = 0u64;
    for step in steps {
        let (bytes, name) = match step {
            Step::LvCreate {
                lv,
                size: SizeSpec::Bytes(b),
                ..
            } => (round_up(*b, extent), lv),
            Step::ThinPoolCreate {
                pool,
                size: SizeSpec::Bytes(b),
                metadata,
                ..
            } => {
                // Data, metadata and (at most) a spare of the metadata's size.
                let m = round_up(metadata.unwrap_or(4 << 20), extent);
                (round_up(*b, extent) + 2 * m, pool)
            }
            Step::CachePoolCreate {
                pool,
                size,
                metadata,
                ..
            } => {
                let m = round_up(metadata.unwrap_or(8 << 20), extent);
                (round_up(*size, extent) + 2 * m, pool)
            }
            Step::LvResize { lv, from, to, .. } if to > from => (to - from, lv),
            _ => continue,
        };
        need += bytes;
        if need > free {
            let line = vg
                .lvs
                .iter()
                .find(|l| &l.name == name)
                .map(|l| l.line)
                .or_else(|| {
                    vg.thinpools
                        .iter()
                        .find(|p| &p.name == name)
                        .map(|p| p.line)
                })
                .unwrap_or(vg.line);
            return Err(refuse(
                ErrorKind::NoSpace,
                format!(
                    "{}:{line}: VG {}: {name} needs more than the {} free: the new LVs need {}; \
                 make them smaller or give the VG another PV",
                    file.display(),
                    vg.name,
                    human(free),
                    human(need)
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
