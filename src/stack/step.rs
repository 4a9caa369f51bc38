//! One step of a plan: what it changes (Display, as `cairn plan` prints it),
//! and how it is done, by the lower modules.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::file::{Rootfs, SizeSpec, Stack};
use super::{io, refused, Result};
use crate::drbd::adm;
use crate::drbd::admin::Drbd;
use crate::error::ErrorKind;
use crate::lvm::action::Run;
use crate::lvm::engine::Dev;
use crate::lvm::inspect::VgInfo;
use crate::lvm::volume::Selection;
use crate::lvm::{cache, extents, linear, pool, resize, thin, volume};
use crate::meta::ops::{self, Env};
use crate::units::{human, Bytes};

/// One change to one layer of the stack, in that layer's words: what a plan
/// lists, an apply, up or down does in order, and what the progress
/// callback is shown. Display prints it as `cairn plan` does; serialized
/// (JSON) with its kind in a `step` field, kebab-case (`pv-create`). All
/// sizes are in bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// Writes an LVM label and metadata area on a blank device, making it a
    /// PV (the plan asks for it only where it saw the device blank).
    PvCreate {
        /// The device, as the stack file names it (a RAID, a DRBD device).
        device: PathBuf,
    },
    /// Creates a VG on PVs and commits its first metadata.
    VgCreate {
        /// The new VG's name.
        vg: String,
        /// Its PVs, made by earlier steps.
        pvs: Vec<PathBuf>,
        /// Its extent size, in bytes.
        extent_size: u64,
    },
    /// Adds PVs the stack file lists to a VG that lacks them.
    VgExtend {
        /// The VG.
        vg: String,
        /// The PVs to add.
        pvs: Vec<PathBuf>,
    },
    /// Creates a linear LV and loads its table (active).
    LvCreate {
        /// The VG it is allocated in.
        vg: String,
        /// The new LV's name.
        lv: String,
        /// Its size: bytes, or a share of the VG's free space resolved now
        /// (serialized as text: `10 GiB`, `100%FREE`).
        #[serde(serialize_with = "size_spec")]
        size: SizeSpec,
        /// The PVs its extents come from; empty: any of the VG's.
        pvs: Vec<PathBuf>,
    },
    /// Grows or shrinks an LV (a linear LV or a container's thin volume):
    /// metadata commit, then a table reload. A shrink is planned only when
    /// the caller allowed it; the filesystem is resized by its own step.
    LvResize {
        /// The LV's VG.
        vg: String,
        /// The LV.
        lv: String,
        /// Its size now, in bytes.
        from: u64,
        /// Its size after the step, in bytes (rounded up to whole extents).
        to: u64,
    },
    /// Creates the cache pool (data and metadata LVs, metadata zeroed) a
    /// cached LV will use, on the fast PVs.
    CachePoolCreate {
        /// The VG.
        vg: String,
        /// The new cache pool's name.
        pool: String,
        /// Its data size, in bytes.
        size: u64,
        /// Its metadata size, in bytes; `None`: sized as lvm2 would.
        metadata: Option<u64>,
        /// Its cache block (chunk) size, in bytes; `None`: lvm2's choice.
        chunk: Option<u64>,
        /// The PVs it is allocated on; empty: any of the VG's.
        pvs: Vec<PathBuf>,
    },
    /// Puts a cache pool in front of an LV (dm-cache): the LV's extents
    /// become `LV_corig` under a cache table.
    CacheAttach {
        /// The VG of both.
        vg: String,
        /// The LV to cache.
        lv: String,
        /// The cache pool, made in the same VG.
        pool: String,
        /// dm-cache's mode: `writethrough`, `writeback` or `passthrough`.
        mode: String,
        /// dm-cache's policy (`smq`).
        policy: String,
    },
    /// Creates a thin pool (data, metadata and the metadata spare LVs,
    /// zeroing new blocks, discards passed down) and activates it.
    ThinPoolCreate {
        /// The VG.
        vg: String,
        /// The new pool's name.
        pool: String,
        /// Its data size: bytes, or a share of the VG's free space resolved
        /// now with room left for the metadata (serialized as text).
        #[serde(serialize_with = "size_spec")]
        size: SizeSpec,
        /// Its metadata size, in bytes; `None`: sized as lvm2 would.
        metadata: Option<u64>,
        /// Its chunk size, in bytes; `None`: lvm2's choice.
        chunk: Option<u64>,
        /// The PVs it is allocated on; empty: any of the VG's.
        pvs: Vec<PathBuf>,
    },
    /// Grows a thin pool's data, its metadata, or both, to what the stack
    /// file says (a pool never shrinks).
    ThinPoolExtend {
        /// The VG.
        vg: String,
        /// The pool.
        pool: String,
        /// The new data size, in bytes; `None`: unchanged.
        data: Option<u64>,
        /// The new metadata size, in bytes; `None`: unchanged.
        metadata: Option<u64>,
    },
    /// Activates LVs of one VG: loads their device-mapper tables, with what
    /// they stand on (a cached LV's origin and cache pool, a thin LV's
    /// pool).
    Activate {
        /// The VG.
        vg: String,
        /// The LVs to activate, by name.
        lvs: Vec<String>,
    },
    /// Deactivates LVs of one VG: removes their device-mapper devices, top
    /// down (thin LVs before their pool).
    Deactivate {
        /// The VG.
        vg: String,
        /// The LVs that are up, by name.
        lvs: Vec<String>,
    },
    /// Writes (or replaces, atomically) the drbd-utils resource file cairn
    /// keeps for a DRBD resource, so `drbdadm` and the kernel's helper see
    /// the resource as the stack file describes it.
    DrbdConfig {
        /// The DRBD resource.
        resource: String,
        /// The resource file (`NAME.res` in the stack's DRBD config
        /// directory).
        path: PathBuf,
        /// The file's whole content.
        text: String,
    },
    /// Writes fresh DRBD metadata (v08, internal: at the end of the
    /// backing disk); planned only where the disk holds none.
    DrbdCreateMd {
        /// The DRBD resource.
        resource: String,
        /// Its backing disk (an LV, or the lower DRBD device when stacked).
        disk: PathBuf,
    },
    /// Brings a DRBD resource up in the kernel: whatever is missing of
    /// new-resource, new-minor, attach and connect.
    DrbdUp {
        /// The DRBD resource.
        resource: String,
    },
    /// Makes this node the DRBD resource's primary, so its device can be
    /// opened for writing (by the VG on top).
    DrbdPrimary {
        /// The DRBD resource.
        resource: String,
        /// Force a disk that is not UpToDate, as the seed's `primary --force`
        /// (only for metadata this stack made, or data that was up to date).
        force: bool,
    },
    /// Takes a DRBD resource down in the kernel (disconnect, detach,
    /// delete), its on-disk metadata left as it is.
    DrbdDown {
        /// The DRBD resource.
        resource: String,
    },
    /// Creates a container's thin volume in a pool (a pool message, then a
    /// metadata commit) and activates it.
    ThinCreate {
        /// The pool's VG.
        vg: String,
        /// The thin pool.
        pool: String,
        /// The new thin LV (named after the container).
        lv: String,
        /// Its virtual size, in bytes.
        size: u64,
    },
    /// Makes an ext4 filesystem, labelled with the container's name, on a
    /// container's new volume, after checking that the volume holds only
    /// what cairn wrote.
    Mkfs {
        /// The container.
        container: String,
        /// Its volume (`/dev/VG/LV`).
        device: PathBuf,
        /// The run this one finishes was cut off inside mkfs: half a
        /// filesystem, with no superblock to recognise, is expected there.
        mkfs_cut: bool,
    },
    /// Grows a container's ext4 to its volume's size: online through the
    /// running container's root (`/proc/PID/root`), offline otherwise.
    Resize2fs {
        /// The container.
        container: String,
        /// Its volume (`/dev/VG/LV`).
        device: PathBuf,
    },
    /// Fills a container's new filesystem with its root: a busybox system
    /// or a tarball extracted, through a temporary mount.
    Populate {
        /// The container.
        container: String,
        /// Its volume (`/dev/VG/LV`).
        device: PathBuf,
        /// `busybox`, or the tarball's path.
        rootfs: String,
    },
    /// Writes a container's LXC configuration (rootfs `lvm:` on its volume)
    /// under the stack's LXC path.
    LxcConfig {
        /// The container.
        container: String,
        /// Its volume, the configuration's rootfs.
        device: PathBuf,
        /// Whether LXC starts it at boot (`lxc.start.auto`).
        autostart: bool,
        /// `busybox`, or the tarball's path: what the root was made from.
        rootfs: String,
    },
    /// Sets `lxc.start.auto` in an existing container's configuration.
    LxcAutostart {
        /// The container.
        container: String,
        /// Whether LXC starts it at boot.
        autostart: bool,
    },
    /// Starts a container (`lxc-start`).
    ContainerStart {
        /// The container.
        container: String,
    },
    /// Stops a container (`lxc-stop`: its init is asked to halt and is
    /// killed after 30 s).
    ContainerStop {
        /// The container.
        container: String,
    },
    /// Removes a container's thin volume (a pool message and a metadata
    /// commit; refused while it is open): its data is gone.
    ThinRemove {
        /// The pool's VG.
        vg: String,
        /// The thin LV.
        lv: String,
    },
    /// Removes a container's LXC directory (its config and empty mount
    /// point; refused, removing nothing, when it holds anything else).
    LxcRemove {
        /// The container.
        container: String,
    },
}

fn size_spec<S: serde::Serializer>(s: &SizeSpec, ser: S) -> std::result::Result<S::Ok, S::Error> {
    ser.serialize_str(&s.to_string())
}

fn paths(p: &[PathBuf]) -> String {
    p.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::PvCreate { device } => write!(f, "pv create {} (LVM label and metadata area)", device.display()),
            Step::VgCreate { vg, pvs, extent_size } => write!(
                f,
                "vg create {vg} on {} (extents {})",
                paths(pvs),
                human(*extent_size)
            ),
            Step::VgExtend { vg, pvs } => write!(f, "vg extend {vg} with {}", paths(pvs)),
            Step::LvCreate { vg, lv, size, pvs } => {
                write!(f, "lv create {vg}/{lv} of {size}")?;
                if !pvs.is_empty() {
                    write!(f, " on {}", paths(pvs))?;
                }
                write!(f, " (metadata commit, linear table)")
            }
            Step::LvResize { vg, lv, from, to } => write!(
                f,
                "lv {} {vg}/{lv} from {} to {} (metadata commit, table reload)",
                if to > from { "extend" } else { "reduce" },
                human(*from),
                human(*to)
            ),
            Step::CachePoolCreate { vg, pool, size, metadata, pvs, .. } => write!(
                f,
                "cache pool create {vg}/{pool}: data {}, metadata {} on {} (metadata zeroed)",
                human(*size),
                metadata.map_or("as lvm2 sizes it".to_owned(), human),
                paths(pvs)
            ),
            Step::CacheAttach { vg, lv, pool, mode, policy } => write!(
                f,
                "cache attach {vg}/{pool} to {vg}/{lv} ({mode}, {policy}; tables: cache over {lv}_corig)"
            ),
            Step::ThinPoolCreate { vg, pool, size, metadata, chunk, .. } => write!(
                f,
                "thin pool create {vg}/{pool}: data {size}, metadata {}, chunk {} (thin-pool table)",
                metadata.map_or("as lvm2 sizes it".to_owned(), human),
                chunk.map_or("as lvm2 chooses it".to_owned(), human)
            ),
            Step::ThinPoolExtend { vg, pool, data, metadata } => {
                write!(f, "thin pool extend {vg}/{pool}:")?;
                if let Some(d) = data {
                    write!(f, " data to {}", human(*d))?;
                }
                if let Some(m) = metadata {
                    write!(f, " metadata to {}", human(*m))?;
                }
                Ok(())
            }
            Step::Activate { vg, lvs } => write!(f, "activate {vg}: {} (dm tables)", lvs.join(" ")),
            Step::Deactivate { vg, lvs } => write!(f, "deactivate {vg}: {} (dm remove)", lvs.join(" ")),
            Step::DrbdConfig { resource, path, .. } => write!(
                f,
                "drbd config {resource}: write {} (for drbd-utils and the kernel's helper)",
                path.display()
            ),
            Step::DrbdCreateMd { resource, disk } => write!(
                f,
                "drbd create-md {resource} on {} (v08, internal)",
                disk.display()
            ),
            Step::DrbdUp { resource } => write!(
                f,
                "drbd up {resource} (what is missing of new-resource, new-minor, attach, connect)"
            ),
            Step::DrbdPrimary { resource, force } => write!(
                f,
                "drbd primary {resource}{}",
                if *force { " --force" } else { "" }
            ),
            Step::DrbdDown { resource } => write!(f, "drbd down {resource}"),
            Step::ThinCreate { vg, pool, lv, size } => write!(
                f,
                "thin create {vg}/{lv} of {} in {pool} (pool message, metadata commit)",
                human(*size)
            ),
            Step::Mkfs { device, .. } => write!(f, "mkfs.ext4 {}", device.display()),
            Step::Resize2fs { device, .. } => write!(f, "resize2fs {}", device.display()),
            Step::Populate { container, rootfs, .. } => {
                write!(f, "rootfs of {container}: {rootfs}")
            }
            Step::LxcConfig { container, device, autostart, .. } => write!(
                f,
                "lxc config {container}: rootfs lvm:{}{}",
                device.display(),
                if *autostart { ", lxc.start.auto = 1" } else { "" }
            ),
            Step::LxcAutostart { container, autostart } => write!(
                f,
                "lxc config {container}: lxc.start.auto = {}",
                u8::from(*autostart)
            ),
            Step::ContainerStart { container } => write!(f, "lxc-start {container}"),
            Step::ContainerStop { container } => write!(f, "lxc-stop {container}"),
            Step::ThinRemove { vg, lv } => {
                write!(f, "thin remove {vg}/{lv} (pool message, metadata commit)")
            }
            Step::LxcRemove { container } => write!(f, "lxc config {container}: remove"),
        }
    }
}

impl Step {
    /// The container whose volume, filesystem, root or configuration this
    /// step makes from nothing: what a re-run after a crash may make again
    /// without losing anything. `None` for every other step.
    pub fn container(&self) -> Option<&str> {
        match self {
            Step::ThinCreate { lv, .. } => Some(lv),
            Step::Mkfs { container, .. }
            | Step::Populate { container, .. }
            | Step::LxcConfig { container, .. } => Some(container),
            _ => None,
        }
    }
}

/// What steps run with.
pub struct Ctx<'a> {
    pub stack: &'a Stack,
    pub env: Env,
    pub dev: Dev,
    drbd: Option<Drbd>,
}

impl<'a> Ctx<'a> {
    pub fn new(stack: &'a Stack, env: Env) -> Ctx<'a> {
        Ctx {
            stack,
            env,
            dev: Dev::default(),
            drbd: None,
        }
    }

    /// The env for one VG: only its PVs are scanned (fast, and the lower
    /// copies of stacked PVs are never seen).
    pub fn env_for(&self, vg: &str) -> Env {
        let mut env = self.env.clone();
        if let Some(v) = self.stack.vg(vg) {
            env.devices = v.pvs.iter().map(|p| p.path.clone()).collect();
        }
        env
    }

    pub fn drbd(&mut self) -> Result<&mut Drbd> {
        if self.drbd.is_none() {
            self.drbd = Some(Drbd::open()?);
        }
        Ok(self.drbd.as_mut().expect("opened above"))
    }

    /// The drbd-utils view of resource `name`, from the file cairn writes.
    pub fn drbd_target(&self, name: &str) -> Result<adm::Target> {
        // All of the file's resources: a stacked one needs its lower one.
        let mut text = String::new();
        for d in &self.stack.drbd {
            text.push_str(&drbd_config_text(self.stack, &d.name)?.0);
        }
        let path = drbd_config_path(self.stack, name);
        let config = crate::drbd::config::Config::parse(
            &path.display().to_string(),
            &text,
            &self.stack.drbd_config_dir,
        )
        .map_err(adm::AdmError::from)?;
        let setup = adm::Setup {
            config: path,
            hostname: self.stack.host.clone(),
        };
        let stacked = self
            .stack
            .drbd(name)
            .is_some_and(|d| d.stacked_on.is_some());
        Ok(setup.target_in(&config, name, stacked)?)
    }

    /// Does `step`.
    pub fn run(&mut self, step: &Step) -> Result<()> {
        match step {
            Step::PvCreate { device } => {
                // Not forced: the plan only asks for it where the device
                // was seen blank; anything written since is refused.
                ops::pv_create(&self.env, device, &ops::PvCreate::default())?;
            }
            Step::VgCreate {
                vg,
                pvs,
                extent_size,
            } => {
                ops::vg_create(&self.env_for(vg), vg, pvs, *extent_size)?.deferring_warnings();
            }
            Step::VgExtend { vg, pvs } => {
                ops::vg_extend(&self.env_for(vg), vg, pvs)?.deferring_warnings();
            }
            Step::LvCreate { vg, lv, size, pvs } => {
                let req = linear::NewLinear {
                    vg: vg.clone(),
                    name: lv.clone(),
                    size: match size {
                        SizeSpec::Bytes(b) => extents::Size::Bytes(Bytes(*b)),
                        SizeSpec::PercentFree(p) => extents::Size::PercentFree(*p),
                    },
                    pvs: pvs.clone(),
                    activate: true,
                };
                linear::create(&self.env_for(vg), &self.dev, &req, Run::Apply)?;
            }
            Step::LvResize { vg, lv, from, to } => {
                let req = resize::Resize {
                    vg: vg.clone(),
                    name: lv.clone(),
                    size: Some(extents::Size::Bytes(Bytes(*to))),
                    metadata: None,
                    pvs: vec![],
                };
                let env = self.env_for(vg);
                if to > from {
                    resize::extend(&env, &self.dev, &req, Run::Apply)?;
                } else {
                    resize::reduce(&env, &self.dev, &req, Run::Apply)?;
                }
            }
            Step::CachePoolCreate {
                vg,
                pool,
                size,
                metadata,
                chunk,
                pvs,
            } => {
                let req = cache::NewCachePool {
                    vg: vg.clone(),
                    name: pool.clone(),
                    data_bytes: Bytes(*size),
                    metadata_bytes: metadata.map(Bytes),
                    chunk_bytes: chunk.map(Bytes),
                    mode: None,
                    policy: None,
                    pvs: pvs.clone(),
                };
                cache::create_pool(&self.env_for(vg), &self.dev, &req, Run::Apply)?;
            }
            Step::CacheAttach {
                vg,
                lv,
                pool,
                mode,
                policy,
            } => {
                let req = cache::Attach {
                    vg: vg.clone(),
                    lv: lv.clone(),
                    pool: pool.clone(),
                    mode: Some(mode.clone()),
                    policy: Some(policy.clone()),
                };
                cache::attach(&self.env_for(vg), &self.dev, &req, Run::Apply)?;
            }
            Step::ThinPoolCreate {
                vg,
                pool,
                size,
                metadata,
                chunk,
                pvs,
            } => {
                let env = self.env_for(vg);
                let data_bytes = match size {
                    SizeSpec::Bytes(b) => *b,
                    SizeSpec::PercentFree(p) => pool_share(&env, vg, *p, *metadata)?,
                };
                let req = pool::NewPool {
                    vg: vg.clone(),
                    name: pool.clone(),
                    data_bytes: Bytes(data_bytes),
                    metadata_bytes: metadata.map(Bytes),
                    chunk_bytes: chunk.map(Bytes),
                    zero: true,
                    discards: "passdown".into(),
                    pvs: pvs.clone(),
                    activate: true,
                };
                pool::create(&env, &self.dev, &req, Run::Apply)?;
            }
            Step::ThinPoolExtend {
                vg,
                pool,
                data,
                metadata,
            } => {
                let req = resize::Resize {
                    vg: vg.clone(),
                    name: pool.clone(),
                    size: data.map(|b| extents::Size::Bytes(Bytes(b))),
                    metadata: metadata.map(|b| extents::Size::Bytes(Bytes(b))),
                    pvs: vec![],
                };
                resize::extend_pool(&self.env_for(vg), &self.dev, &req, Run::Apply)?;
            }
            Step::Activate { vg, lvs } => {
                let sel = Selection {
                    vg: vg.clone(),
                    lvs: lvs.clone(),
                    ignore_skip: false,
                };
                volume::activate(&self.env_for(vg), &self.dev, &sel, Run::Apply)?;
            }
            Step::Deactivate { vg, lvs } => {
                let sel = Selection {
                    vg: vg.clone(),
                    lvs: lvs.clone(),
                    ignore_skip: true,
                };
                volume::deactivate(&self.env_for(vg), &self.dev, &sel, Run::Apply)?;
            }
            Step::DrbdConfig { path, text, .. } => write_resource_file(path, text)?,
            Step::DrbdCreateMd { resource, .. } => {
                let t = self.drbd_target(resource)?;
                let drbd = self.drbd()?;
                // Forced: the plan only asks for it where no metadata is.
                adm::create_md(Some(drbd), &t, true)?;
            }
            Step::DrbdUp { resource } => {
                let t = self.drbd_target(resource)?;
                adm::up(self.drbd()?, &t)?;
            }
            Step::DrbdPrimary { resource, force } => {
                let t = self.drbd_target(resource)?;
                self.drbd()?.primary(t.minor, *force)?;
            }
            Step::DrbdDown { resource } => {
                let t = self.drbd_target(resource)?;
                adm::down(self.drbd()?, &t)?;
            }
            Step::ThinCreate { vg, pool, lv, size } => {
                let req = thin::Create {
                    vg: vg.clone(),
                    name: lv.clone(),
                    what: thin::Request::Volume {
                        pool: pool.clone(),
                        size_bytes: Bytes(*size),
                    },
                    activate: true,
                };
                thin::create(&self.env_for(vg), &self.dev, &req, Run::Apply)?;
            }
            Step::Mkfs {
                container,
                device,
                mkfs_cut,
            } => {
                check_mkfs_target(&self.dev, container, device, *mkfs_cut)?;
                crate::fs::mkfs_ext4(device, Some(&fs_label(container)))?;
            }
            Step::Resize2fs { container, device } => {
                // A running container has its root mounted in its own
                // namespace: grown online through /proc/PID/root.
                match crate::lxc::init_pid(&self.stack.lxc_path, container)? {
                    Some(pid) => crate::fs::grow_mounted_ext4(
                        device,
                        &PathBuf::from(format!("/proc/{pid}/root")),
                    )?,
                    None => crate::fs::resize_ext4_offline(device)?,
                }
            }
            Step::Populate { device, rootfs, .. } => {
                let mounted = crate::fs::mount_temporarily(device, "ext4")?;
                let root = mounted.path().to_path_buf();
                let result = populate(&root, rootfs);
                mounted.unmount()?;
                result?;
            }
            Step::LxcConfig {
                container,
                device,
                autostart,
                rootfs,
            } => {
                let default_conf =
                    std::fs::read_to_string("/etc/lxc/default.conf").unwrap_or_default();
                let cfg = crate::lxc::NewConfig {
                    name: container.clone(),
                    rootfs_device: device.clone(),
                    autostart: *autostart,
                    source: rootfs_source(rootfs),
                };
                let text = crate::lxc::render(&cfg, &default_conf);
                crate::lxc::write_config(&self.stack.lxc_path, container, &text)?;
            }
            Step::LxcAutostart {
                container,
                autostart,
            } => crate::lxc::set_start_auto(&self.stack.lxc_path, container, *autostart)?,
            Step::ContainerStart { container } => {
                crate::lxc::start(&self.stack.lxc_path, container)?;
            }
            Step::ContainerStop { container } => {
                crate::lxc::stop(&self.stack.lxc_path, container, Duration::from_secs(30))?;
            }
            Step::ThinRemove { vg, lv } => {
                thin::remove(&self.env_for(vg), &self.dev, vg, lv, Run::Apply)?;
            }
            Step::LxcRemove { container } => {
                crate::lxc::remove_config(&self.stack.lxc_path, container)?;
            }
        }
        Ok(())
    }
}

/// The label cairn gives a container's filesystem (ext4 allows 16 bytes).
/// Looks at a container's volume right before mkfs, whatever the plan saw
/// (a volume planned while inactive could not be looked at): it must hold
/// only what cairn wrote: nothing mapped (a new thin LV), an ext4 with the
/// container's label (a run cut off after its mkfs), or, when the run was
/// cut off inside mkfs, no filesystem at all. Anything else is somebody's
/// data and is left alone.
fn check_mkfs_target(dev: &Dev, container: &str, device: &Path, mkfs_cut: bool) -> Result<()> {
    let refuse = |what: String| {
        Err(refused(
            ErrorKind::Refused,
            format!(
            "container {container}: {} holds {what}, not what cairn was making: cairn leaves it \
             alone; remove the volume (`cairn lv remove`) or pick another name",
            device.display()
        ),
        ))
    };
    // Every signature libblkid knows, not only ext's: half of cairn's own
    // mkfs has none, anything else that has one is somebody's.
    let found = crate::signature::probe(device)
        .map_err(|e| refused(ErrorKind::Refused, format!("container {container}: {e}")))?;
    let ours = |s: &crate::signature::Signature| {
        s.kind.starts_with("ext") && s.label.as_deref() == Some(fs_label(container).as_str())
    };
    match found.as_slice() {
        [only] if ours(only) => Ok(()),
        [_, ..] => refuse(crate::signature::describe_all(&found)),
        [] if mkfs_cut => Ok(()),
        [] => {
            let (vg, lv) = crate::lvm::names::split_lv_path(device).ok_or_else(|| {
                refused(
                    ErrorKind::InvalidInput,
                    format!(
                        "container {container}: {} is not a /dev/VG/LV path",
                        device.display()
                    ),
                )
            })?;
            let ctl = dev.control()?;
            match crate::lvm::inspect::thin_mapped(&ctl, &vg, &lv) {
                Some((0, _)) => Ok(()),
                Some((mapped, _)) => refuse(format!("{mapped} written sectors and no filesystem")),
                None => refuse("no active thin volume".to_owned()),
            }
        }
    }
}

pub fn fs_label(container: &str) -> String {
    container.chars().take(16).collect()
}

pub fn rootfs_text(r: &Rootfs) -> String {
    match r {
        Rootfs::Busybox => "busybox".into(),
        Rootfs::Tarball(p) => p.display().to_string(),
    }
}

fn rootfs_source(text: &str) -> crate::lxc::RootfsSource {
    if text == "busybox" {
        crate::lxc::RootfsSource::Busybox
    } else {
        crate::lxc::RootfsSource::Tarball(PathBuf::from(text))
    }
}

fn populate(root: &Path, rootfs: &str) -> Result<()> {
    match rootfs_source(rootfs) {
        crate::lxc::RootfsSource::Busybox => {
            let busybox = crate::lxc::find_busybox().ok_or_else(|| {
                refused(ErrorKind::Unsupported,
                    "no busybox on this host: install busybox-static, or give the container a rootfs tarball",
                )
            })?;
            crate::lxc::build_busybox_rootfs(root, &busybox)?;
        }
        crate::lxc::RootfsSource::Tarball(t) => crate::lxc::extract_tarball(root, &t)?,
    }
    Ok(())
}

/// Writes a drbd-utils resource file so that a crash leaves the old file
/// or the new.
fn write_resource_file(path: &Path, text: &str) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let tmp = format!(
        ".{}.cairn-new",
        path.file_name()
            .map_or("res".into(), |n| n.to_string_lossy())
    );
    crate::fs::replace_file(path, text.as_bytes(), 0o644, &tmp)
        .map_err(io(format!("cannot write {}", path.display())))
}

/// A thin pool's data size for `percent` of the VG's free space, leaving
/// room for its metadata and the pool metadata spare (lvm2 takes both from
/// what is left).
fn pool_share(env: &Env, vg: &str, percent: f64, metadata: Option<u64>) -> Result<u64> {
    let vg = VgInfo::read(&env.scan(&[])?, vg)?;
    let extent = vg.extent_bytes;
    let total_free = *vg
        .free_bytes
        .as_ref()
        .map_err(|e| refused(ErrorKind::Inconsistent, format!("VG {}: {e}", vg.name)))?;
    let wanted = (total_free as f64 * percent / 100.0) as u64 / extent * extent;
    let (_, md_sectors) = pool::sizes(wanted / 512, extent / 512, None, metadata.map(|m| m / 512));
    let md = (md_sectors * 512).div_ceil(extent) * extent;
    let room = total_free.saturating_sub(2 * md) / extent * extent;
    Ok(wanted.min(room))
}

/// The drbd-utils resource file cairn writes for `name`: (text, path).
pub fn drbd_config_text(stack: &Stack, name: &str) -> Result<(String, PathBuf)> {
    let d = stack.drbd(name).ok_or_else(|| {
        refused(
            ErrorKind::NotFound,
            format!("no DRBD resource {name} in {}", stack.path.display()),
        )
    })?;
    check_resource_words(stack, d)?;
    let mut t = format!(
        "# Written by cairn from its stack file (edit that, then `cairn apply`).\nresource {} {{\n",
        d.name
    );
    if d.protocol != 'C' {
        t.push_str(&format!("  net {{\n    protocol {};\n  }}\n", d.protocol));
    }
    let device = d.device();
    match &d.stacked_on {
        Some(lower) => t.push_str(&format!(
            "  stacked-on-top-of {lower} {{\n    device {};\n    address {};\n  }}\n",
            device.display(),
            d.address
        )),
        None => t.push_str(&format!(
            "  on {} {{\n    device {};\n    disk {};\n    address {};\n    meta-disk internal;\n  }}\n",
            stack.host,
            device.display(),
            d.disk.path.display(),
            d.address
        )),
    }
    if let Some(p) = &d.peer {
        t.push_str(&format!(
            "  on {} {{\n    device /dev/drbd{};\n    disk {};\n    address {};\n    meta-disk internal;\n  }}\n",
            p.host, p.minor, p.disk, p.address
        ));
    }
    t.push_str("}\n");
    Ok((t, drbd_config_path(stack, name)))
}

/// Every name and path the resource file is made of, checked again where
/// the text is made (the stack file's checks made them; a [`Stack`] built
/// by other code must not slip a newline or a `}` into drbd-utils' file).
fn check_resource_words(stack: &Stack, d: &crate::stack::file::Drbd) -> Result<()> {
    let bad = |what: &str, value: &str, why: &str| {
        refused(
            ErrorKind::InvalidInput,
            format!(
                "DRBD resource {:?}: {what} {value:?} cannot go into its resource file: {why}",
                d.name
            ),
        )
    };
    crate::names::drbd_resource(&d.name).map_err(|why| bad("the name", &d.name, why))?;
    if let Some(lower) = &d.stacked_on {
        crate::names::drbd_resource(lower).map_err(|why| bad("stacked_on", lower, why))?;
    } else {
        crate::names::host(&stack.host).map_err(|why| bad("the host", &stack.host, why))?;
        let disk = d.disk.path.to_string_lossy();
        crate::names::config_path(&disk).map_err(|why| bad("the disk", &disk, why))?;
    }
    if let Some(p) = &d.peer {
        crate::names::host(&p.host).map_err(|why| bad("the peer host", &p.host, why))?;
        crate::names::config_path(&p.disk).map_err(|why| bad("the peer disk", &p.disk, why))?;
    }
    Ok(())
}

pub fn drbd_config_path(stack: &Stack, name: &str) -> PathBuf {
    stack.drbd_config_dir.join(format!("{name}.res"))
}
