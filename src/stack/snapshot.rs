//! Snapshots of containers: thin snapshots of their volumes, all in one
//! pool transaction, taken with every running container frozen for just
//! that instant — its processes through the cgroup freezer, its ext4
//! through FIFREEZE — and thawed by a watchdog if cairn dies or the
//! freeze outlasts its deadline.
//!
//! A snapshot is an LV `VOLUME.SNAP` tagged `cairn:container=NAME` and
//! `cairn:snapshot=SNAP`: the tags, not the name, say whose it is (a
//! restore gives the container a new volume, and its snapshots stay its
//! own). Thin snapshots of a container's volume that lvm2 or another tool
//! made are listed too, as made by them.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::file::Stack;
use super::{observe, refused, Context, Result};
use crate::dm::Kernel;
use crate::error::ErrorKind;
use crate::guard::{Ended, Guard, Release};
use crate::lvm::action::{Action, Run};
use crate::lvm::inspect::{LvKind, VgInfo};
use crate::lvm::thin::Window;
use crate::lvm::thin_snapshots::{self, NewThinSnapshot};
use crate::lxc::freeze::Running;

/// The tag naming the container a snapshot is of.
pub const TAG_CONTAINER: &str = "cairn:container=";
/// The tag naming the snapshot within its container.
pub const TAG_SNAPSHOT: &str = "cairn:snapshot=";
/// The tag naming the group a snapshot was taken with (`--tag`).
pub const TAG_GROUP: &str = "cairn:group=";

/// How long containers may stay frozen before the watchdog thaws them.
pub const DEFAULT_FREEZE_DEADLINE: Duration = Duration::from_secs(10);

/// One snapshot of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerSnapshot {
    /// The container.
    pub container: String,
    /// The snapshot's name within the container (for one another tool
    /// made: its LV's name).
    pub name: String,
    /// Its VG.
    pub vg: String,
    /// Its LV.
    pub lv: String,
    /// The LV it was taken of (the container's volume then), when the
    /// metadata still names it.
    pub origin: Option<String>,
    /// When it was taken (seconds since the epoch).
    pub created: Option<u64>,
    /// `thin`.
    pub kind: &'static str,
    /// Who made it: `cairn`, or `other` (lvm2, by hand).
    pub made_by: &'static str,
    /// The group it was taken with (`--tag`), if any.
    pub group: Option<String>,
}

/// What `take` did.
#[derive(Debug, Default, Serialize)]
pub struct Taken {
    /// The snapshots made.
    pub snapshots: Vec<ContainerSnapshot>,
    /// The containers that were running and so were frozen.
    pub frozen: Vec<String>,
    /// From the first freeze to the last thaw (None when nothing ran).
    pub freeze_window_ms: Option<f64>,
    /// The metadata commits and device-mapper steps, in order.
    #[serde(skip)]
    pub actions: Vec<Action>,
    /// What went wrong without undoing the snapshots.
    pub warnings: Vec<String>,
}

/// A request for snapshots of containers.
#[derive(Debug, Clone)]
pub struct TakeRequest {
    /// The containers.
    pub containers: Vec<String>,
    /// The snapshot's name in each of them.
    pub name: String,
    /// A group tag shared by all of them.
    pub group: Option<String>,
    /// The longest the containers may stay frozen.
    pub freeze_deadline: Duration,
}

/// A container's volume: (VG, LV), from its LXC config.
fn volume(stack: &Stack, name: &str) -> Result<(String, String)> {
    crate::lxc::check_name(name)?;
    let cfg = crate::lxc::read_config(&stack.lxc_path, name)?.ok_or_else(|| {
        refused(
            ErrorKind::NotFound,
            format!(
                "no container named {name} in {} (cairn container list shows them)",
                stack.lxc_path.display()
            ),
        )
    })?;
    cfg.rootfs_device
        .as_deref()
        .and_then(crate::lvm::names::split_lv_path)
        .ok_or_else(|| {
            refused(
                ErrorKind::Unsupported,
                format!(
                    "container {name} has its root file system at {:?}, not on an LV: cairn \
                     snapshots containers on thin LVs",
                    cfg.rootfs_path.unwrap_or_default()
                ),
            )
        })
}

/// The snapshot name rule: an LV name's characters, no dot (the LV is
/// `VOLUME.SNAP`).
fn check_snapshot_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-'))
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(refused(
            ErrorKind::InvalidInput,
            format!(
                "invalid snapshot name {name:?}: 1 to 64 characters from A-Z a-z 0-9 _ + -, not \
                 starting with -"
            ),
        ))
    }
}

/// A snapshot name from a time (seconds since the epoch): its UTC date and
/// time, `YYYYMMDD-HHMMSS`, which sorts as the snapshots were taken.
pub fn default_name(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = crate::units::civil_date(days);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The environment that scans the VG's PVs as the stack file names them.
fn env_for(stack: &Stack, cx: &Context, vg: &str) -> crate::meta::ops::Env {
    let mut env = cx.env.clone();
    env.devices = stack
        .vg(vg)
        .map(|v| v.pvs.iter().map(|p| p.path.clone()).collect())
        .unwrap_or_default();
    env
}

/// The VG as its metadata is now.
fn read_vg(stack: &Stack, cx: &Context, vg: &str) -> Result<VgInfo> {
    let ctl = cx.dev.control()?;
    observe::vg_named(&env_for(stack, cx, vg), vg, &ctl)?
        .vg
        .ok_or_else(|| {
            refused(
                ErrorKind::NotFound,
                format!("no VG named {vg} on this host"),
            )
        })
}

fn tag_value<'t>(tags: &'t [String], key: &str) -> Option<&'t str> {
    tags.iter().find_map(|t| t.strip_prefix(key))
}

/// The snapshots of `container` (whose volume is `vg`/`volume`) in `info`.
fn snapshots_in(info: &VgInfo, container: &str, volume: &str) -> Vec<ContainerSnapshot> {
    let mut out = Vec::new();
    for lv in &info.lvs {
        let Some(LvKind::Thin { origin, .. }) = &lv.kind else {
            continue;
        };
        let ours = tag_value(&lv.tags, TAG_CONTAINER) == Some(container);
        let theirs = !ours
            && tag_value(&lv.tags, TAG_CONTAINER).is_none()
            && origin.as_deref() == Some(volume);
        if !ours && !theirs {
            continue;
        }
        out.push(ContainerSnapshot {
            container: container.to_owned(),
            name: tag_value(&lv.tags, TAG_SNAPSHOT)
                .filter(|_| ours)
                .unwrap_or(&lv.name)
                .to_owned(),
            vg: info.name.clone(),
            lv: lv.name.clone(),
            origin: origin.clone(),
            created: lv.created,
            kind: "thin",
            made_by: if ours { "cairn" } else { "other" },
            group: tag_value(&lv.tags, TAG_GROUP).map(str::to_owned),
        });
    }
    out.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
    out
}

/// The snapshots of container `name`, oldest first.
pub fn list(stack: &Stack, cx: &Context, name: &str) -> Result<Vec<ContainerSnapshot>> {
    let (vg, lv) = volume(stack, name)?;
    Ok(snapshots_in(&read_vg(stack, cx, &vg)?, name, &lv))
}

/// What the freeze window holds while it is open.
#[derive(Default)]
struct Hold {
    guard: Option<Guard>,
    fs: Vec<crate::fs::Frozen>,
    // Kept open for the guard's resume requests.
    control: Option<std::os::fd::OwnedFd>,
    opened: Option<Instant>,
    window: Option<Duration>,
    fired: bool,
    warnings: Vec<String>,
}

impl Hold {
    /// Opens the window: the watchdog first (so that a death from here on
    /// is covered), then the cgroups, then the file systems. `running`:
    /// the running containers with their volumes' dm names; `origins`:
    /// every volume's dm name (a stopped container's active volume is
    /// suspended too).
    fn open(
        &mut self,
        running: &[(Running, String)],
        origins: &[String],
        deadline: Duration,
    ) -> std::result::Result<(), String> {
        use std::os::fd::AsRawFd;
        let mut releases = Vec::new();
        let control = nix::fcntl::open(
            "/dev/mapper/control",
            nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| format!("cannot open /dev/mapper/control: {e}"))?;
        // SAFETY: open returned a descriptor this process now owns.
        let control =
            unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(control) };
        // A device left suspended is resumed before the file system on it
        // is thawed (thawing writes its superblock).
        for origin in origins {
            let (request, arg) =
                crate::dm::raw_resume_request(origin).map_err(|e| e.to_string())?;
            releases.push(Release::Ioctl {
                fd: control.as_raw_fd(),
                request,
                arg,
            });
        }
        for (r, origin) in running {
            let fs = crate::fs::open_to_freeze(&r.root()).map_err(|e| e.to_string())?;
            // The root reached through the process must be the volume's
            // file system: a process that left the container, or a PID
            // reused, must never get the host's root frozen.
            let volume = nix::sys::stat::stat(&Path::new("/dev/mapper").join(origin))
                .map(|s| s.st_rdev)
                .ok();
            if fs.device().is_none() || fs.device() != volume {
                return Err(format!(
                    "container {}: {} is not on its volume {origin}: not frozen, nothing snapshot",
                    r.name,
                    r.root().display()
                ));
            }
            let (fd, request) = fs.thaw_request();
            releases.push(Release::Ioctl {
                fd,
                request,
                arg: vec![0; 4],
            });
            self.fs.push(fs);
        }
        for (r, _) in running.iter().filter(|(r, _)| !r.frozen_before) {
            let path = r.freeze_file();
            releases.push(Release::Write {
                path: std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
                    .map_err(|e| e.to_string())?,
                data: b"0".to_vec(),
            });
        }
        self.control = Some(control);
        self.guard = Some(Guard::spawn(releases, deadline).map_err(|e| e.to_string())?);
        self.opened = Some(Instant::now());
        let cgroups: Vec<Running> = running.iter().map(|(r, _)| r.clone()).collect();
        crate::lxc::freeze::freeze(&cgroups, deadline / 2).map_err(|e| e.to_string())?;
        for fs in &mut self.fs {
            fs.freeze().map_err(|e| e.to_string())?;
        }
        crate::failpoint::hit("snapshot-frozen");
        crate::failpoint::delay("snapshot-frozen");
        Ok(())
    }

    /// Closes it: file systems, then cgroups thawed; the watchdog stood
    /// down, or, when a thaw failed, let go so that it tries too.
    fn close(&mut self, running: &[(Running, String)]) {
        let mut failed = false;
        for fs in self.fs.drain(..) {
            if let Err(e) = fs.thaw() {
                failed = true;
                self.warnings.push(e.to_string());
            }
        }
        for (r, _) in running {
            if let Err(e) = crate::lxc::freeze::thaw(r) {
                failed = true;
                self.warnings.push(e.to_string());
            }
        }
        self.window = self.opened.take().map(|t| t.elapsed());
        if let Some(guard) = self.guard.take() {
            if failed {
                // Dropped undisarmed: it releases everything now.
                drop(guard);
            } else if guard.disarm() == Ended::Fired {
                self.fired = true;
            }
        }
        self.control = None;
    }
}

/// Takes snapshot `req.name` of every container of `req`, all at one
/// instant. Refused, changing nothing, for an unknown container, one not
/// on a thin LV, containers on different VGs, a bad or taken name.
pub fn take(stack: &Stack, cx: &Context, req: &TakeRequest, run: Run) -> Result<Taken> {
    check_snapshot_name(&req.name)?;
    if let Some(g) = &req.group {
        check_snapshot_name(g)?;
    }
    if req.containers.is_empty() {
        return Err(refused(
            ErrorKind::InvalidInput,
            "name at least one container (or --all)",
        ));
    }
    let mut volumes = Vec::new();
    for name in &req.containers {
        if volumes
            .iter()
            .any(|(n, _, _): &(String, String, String)| n == name)
        {
            return Err(refused(
                ErrorKind::InvalidInput,
                format!("container {name} is named twice"),
            ));
        }
        let (vg, lv) = volume(stack, name)?;
        volumes.push((name.clone(), vg, lv));
    }
    let vg = volumes[0].1.clone();
    if let Some((n, other, _)) = volumes.iter().find(|(_, v, _)| *v != vg) {
        return Err(refused(
            ErrorKind::Unsupported,
            format!(
                "container {n} is on VG {other}, {} on {vg}: snapshot each VG's containers apart",
                volumes[0].0
            ),
        ));
    }
    // A snapshot of this name in one of them already?
    let info = read_vg(stack, cx, &vg)?;
    for (name, _, lv) in &volumes {
        if let Some(s) = snapshots_in(&info, name, lv)
            .into_iter()
            .find(|s| s.made_by == "cairn" && s.name == req.name)
        {
            return Err(refused(
                ErrorKind::AlreadyExists,
                format!(
                    "container {name} has a snapshot named {} already ({}/{}): choose another name",
                    req.name, s.vg, s.lv
                ),
            ));
        }
    }
    // The running ones, each with its volume's dm name.
    let mut running: Vec<(Running, String)> = Vec::new();
    for (name, vg, lv) in &volumes {
        if let Some(r) = crate::lxc::freeze::running(name)? {
            running.push((r, crate::lvm::names::dm_name(vg, lv, None)));
        }
    }
    let snaps: Vec<NewThinSnapshot> = volumes
        .iter()
        .map(|(name, _, lv)| {
            let mut tags = vec![
                format!("{TAG_CONTAINER}{name}"),
                format!("{TAG_SNAPSHOT}{}", req.name),
            ];
            if let Some(g) = &req.group {
                tags.push(format!("{TAG_GROUP}{g}"));
            }
            NewThinSnapshot {
                origin: lv.clone(),
                name: format!("{lv}.{}", req.name),
                tags,
                activate: false,
                frozen: running.iter().any(|(r, _)| r.name == *name),
            }
        })
        .collect();
    // Every volume is suspended while its snapshot is taken, a stopped
    // container's too: the watchdog resumes them all.
    let origins: Vec<String> = volumes
        .iter()
        .map(|(_, vg, lv)| crate::lvm::names::dm_name(vg, lv, None))
        .collect();

    let mut hold = Hold::default();
    let env = env_for(stack, cx, &vg);
    let made = {
        let mut window = |w: Window| match w {
            Window::Open => hold.open(&running, &origins, req.freeze_deadline),
            Window::Close => {
                hold.close(&running);
                Ok(())
            }
        };
        thin_snapshots::create(
            Kernel::Host(cx.dev.udev_wait),
            &env,
            &cx.dev,
            &vg,
            &snaps,
            &mut window,
            run,
        )
    };
    let actions = match made {
        Ok(actions) => actions,
        Err(e) => {
            for w in hold.warnings.drain(..) {
                crate::warnings::record(w);
            }
            return Err(e.into());
        }
    };
    if hold.fired {
        // The watchdog resumed and thawed before the snapshots were all
        // taken, maybe in the middle of one: they are not what was asked.
        let mut left = Vec::new();
        for s in &snaps {
            if let Err(e) = crate::lvm::thin::remove(&env, &cx.dev, &vg, &s.name, Run::Apply) {
                left.push(format!("{vg}/{}: {e}", s.name));
            }
        }
        return Err(refused(
            ErrorKind::Busy,
            format!(
                "the containers stayed frozen past the freeze deadline of {} s, so the watchdog \
                 thawed them before the snapshots were all taken; {} (retry with a longer \
                 --freeze-deadline, or with the containers stopped)",
                req.freeze_deadline.as_secs_f64(),
                if left.is_empty() {
                    "the snapshots were removed".to_owned()
                } else {
                    format!("removing the snapshots failed too: {}", left.join("; "))
                }
            ),
        ));
    }
    let mut taken = Taken {
        frozen: running.iter().map(|(r, _)| r.name.clone()).collect(),
        freeze_window_ms: hold.window.map(|w| w.as_secs_f64() * 1000.0),
        actions,
        warnings: std::mem::take(&mut hold.warnings),
        snapshots: Vec::new(),
    };
    if run == Run::Apply {
        let info = read_vg(stack, cx, &vg)?;
        for (name, _, lv) in &volumes {
            taken.snapshots.extend(
                snapshots_in(&info, name, lv)
                    .into_iter()
                    .filter(|s| s.made_by == "cairn" && s.name == req.name),
            );
        }
    }
    Ok(taken)
}

/// Removes snapshot `snap` of container `name` (one cairn made, by its
/// snapshot name, or one another tool made, by its LV's name).
pub fn remove(
    stack: &Stack,
    cx: &Context,
    name: &str,
    snap: &str,
    run: Run,
) -> Result<Vec<Action>> {
    let (vg, lv) = volume(stack, name)?;
    let info = read_vg(stack, cx, &vg)?;
    let found = snapshots_in(&info, name, &lv)
        .into_iter()
        .find(|s| s.name == snap)
        .ok_or_else(|| {
            refused(
                ErrorKind::NotFound,
                format!(
                    "container {name} has no snapshot named {snap} (cairn container snapshots {name} lists them)"
                ),
            )
        })?;
    // A thin snapshot of this volume that another container runs on (as
    // `lxc-copy -s` makes) is that container's root, not a snapshot.
    let device = Path::new("/dev").join(&vg).join(&found.lv);
    if let Some(other) = crate::lxc::list(&stack.lxc_path)?
        .into_iter()
        .find(|c| c.rootfs_device.as_deref() == Some(device.as_path()))
    {
        return Err(refused(
            ErrorKind::Refused,
            format!(
                "{vg}/{} is the root volume of container {}: not removed (cairn container remove {} \
                 removes that container)",
                found.lv, other.name, other.name
            ),
        ));
    }
    let env = env_for(stack, cx, &vg);
    Ok(crate::lvm::thin::remove(
        &env, &cx.dev, &vg, &found.lv, run,
    )?)
}

/// The container names of the stack file's containers and of the LXC
/// configs on its VGs (`--all`).
pub fn all_containers(stack: &Stack) -> Result<Vec<String>> {
    let mut names: Vec<String> = stack.containers.iter().map(|c| c.name.clone()).collect();
    for cfg in crate::lxc::list(&stack.lxc_path)? {
        if super::run::on_stack(stack, cfg.rootfs_device.as_deref()) && !names.contains(&cfg.name) {
            names.push(cfg.name);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvm::inspect::LvInfo;

    fn thin(name: &str, origin: Option<&str>, tags: &[&str], created: u64) -> LvInfo {
        LvInfo {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            created: Some(created),
            ..LvInfo::new(
                name,
                LvKind::Thin {
                    pool: "pool".into(),
                    origin: origin.map(str::to_owned),
                },
                100 << 20,
            )
        }
    }

    fn vg(lvs: Vec<LvInfo>) -> VgInfo {
        VgInfo {
            name: "DRBDVG2".into(),
            extent_bytes: 4 << 20,
            pv_count: 1,
            size_bytes: 1 << 30,
            free_bytes: Ok(0),
            lvs,
        }
    }

    #[test]
    fn a_container_s_snapshots_are_those_tagged_for_it_and_those_others_made_of_its_volume() {
        let info = vg(vec![
            thin("web1", None, &[], 100),
            thin(
                "web1.daily",
                Some("web1"),
                &["cairn:container=web1", "cairn:snapshot=daily"],
                200,
            ),
            // After a restore: the old volume kept as a snapshot, no origin.
            thin(
                "web1.before",
                None,
                &[
                    "cairn:container=web1",
                    "cairn:snapshot=before",
                    "cairn:group=g",
                ],
                150,
            ),
            thin("byhand", Some("web1"), &[], 300),
            thin(
                "web2.daily",
                Some("web2"),
                &["cairn:container=web2", "cairn:snapshot=daily"],
                200,
            ),
            // Another container's snapshot taken of web1's volume stays its own.
            thin(
                "odd",
                Some("web1"),
                &["cairn:container=web2", "cairn:snapshot=odd"],
                250,
            ),
        ]);
        let got = snapshots_in(&info, "web1", "web1");
        let names: Vec<(&str, &str, &str)> = got
            .iter()
            .map(|s| (s.name.as_str(), s.lv.as_str(), s.made_by))
            .collect();
        assert_eq!(
            names,
            [
                ("before", "web1.before", "cairn"),
                ("daily", "web1.daily", "cairn"),
                ("byhand", "byhand", "other"),
            ]
        );
        assert_eq!(got[0].group.as_deref(), Some("g"));
        assert_eq!(got[1].origin.as_deref(), Some("web1"));
    }

    #[test]
    fn default_names_are_the_utc_time() {
        assert_eq!(default_name(0), "19700101-000000");
        // date -u -d @1765161845 +%Y%m%d-%H%M%S
        assert_eq!(default_name(1_765_161_845), "20251208-024405");
        assert_eq!(default_name(951_782_400), "20000229-000000", "a leap day");
        check_snapshot_name(&default_name(4_102_444_800)).unwrap();
    }

    #[test]
    fn snapshot_names_are_lv_name_characters_without_a_dot() {
        for good in ["daily", "2026-12-08_0100", "a+b"] {
            check_snapshot_name(good).unwrap();
        }
        for bad in ["", "a.b", "-x", "a b", "a/b", &"x".repeat(65)] {
            let e = check_snapshot_name(bad).unwrap_err();
            assert!(
                e.to_string().contains("invalid snapshot name"),
                "{bad:?}: {e}"
            );
        }
    }
}
