//! A running container held still through the cgroup v2 freezer: every
//! process of its payload cgroup stopped at once (`cgroup.freeze`), as
//! `lxc-freeze` does, without a process per container. Found from its
//! cgroup (`lxc.payload.NAME`), not from LXC's tools: a snapshot of fifty
//! containers must not start fifty `lxc-info`s.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{check_name, LxcError};

/// Where cgroup v2 is mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// A running container: its payload cgroup and a process inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// The container.
    pub name: String,
    /// Its payload cgroup's directory.
    pub cgroup: PathBuf,
    /// A process inside it (its root file system is `/proc/PID/root`).
    pub pid: u32,
    /// Frozen already (by `lxc-freeze`, by hand): left frozen, neither
    /// frozen again nor thawed by a snapshot.
    pub frozen_before: bool,
}

impl Running {
    /// The container's root directory as the host reaches it.
    pub fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.pid))
    }

    /// The file that freezes and thaws it (for a watchdog: `0` thaws).
    pub fn freeze_file(&self) -> PathBuf {
        self.cgroup.join("cgroup.freeze")
    }
}

fn io(name: &str, what: String) -> impl FnOnce(std::io::Error) -> LxcError + '_ {
    move |source| LxcError::Io {
        subject: format!("container {name}"),
        what,
        source,
        hint: "check that cgroup v2 is mounted at /sys/fs/cgroup and that you are root",
    }
}

/// The container `name` if it runs (its payload cgroup has a process),
/// under the cgroup v2 hierarchy at `root`: LXC names the cgroup
/// `lxc.payload.NAME`, at the top of the hierarchy or a few levels down.
pub fn running_in(root: &Path, name: &str) -> Result<Option<Running>, LxcError> {
    check_name(name)?;
    let wanted = format!("lxc.payload.{name}");
    let Some(cgroup) = find_dir(root, &wanted, 3) else {
        return Ok(None);
    };
    let frozen_before =
        std::fs::read_to_string(cgroup.join("cgroup.freeze")).is_ok_and(|v| v.trim() == "1");
    Ok(first_pid(&cgroup, 3).map(|pid| Running {
        name: name.to_owned(),
        cgroup,
        pid,
        frozen_before,
    }))
}

/// [`running_in`] on the host's hierarchy.
pub fn running(name: &str) -> Result<Option<Running>, LxcError> {
    running_in(Path::new(CGROUP_ROOT), name)
}

/// The first answer `look` gives for `dir` or a directory at most `depth`
/// levels under it, nearest first (cgroup trees are shallow).
fn search<T>(dir: &Path, depth: usize, look: &dyn Fn(&Path) -> Option<T>) -> Option<T> {
    if let Some(found) = look(dir) {
        return Some(found);
    }
    if depth == 0 {
        return None;
    }
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .find_map(|e| search(&e.path(), depth - 1, look))
}

/// The directory called `wanted` at most `depth` levels under `dir`.
fn find_dir(dir: &Path, wanted: &str, depth: usize) -> Option<PathBuf> {
    search(dir, depth, &|d: &Path| {
        Some(d.join(wanted)).filter(|p| p.is_dir())
    })
}

/// A process of the cgroup at `dir` or of one below it.
fn first_pid(dir: &Path, depth: usize) -> Option<u32> {
    search(dir, depth, &|d: &Path| {
        std::fs::read_to_string(d.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.trim().parse().ok())
    })
}

/// Whether the cgroup's `cgroup.events` says it is frozen.
fn is_frozen(cgroup: &Path) -> bool {
    std::fs::read_to_string(cgroup.join("cgroup.events"))
        .is_ok_and(|e| e.lines().any(|l| l.trim() == "frozen 1"))
}

/// Freezes every container of `all` at once (each cgroup is asked first,
/// then all are waited for), within `timeout`. On failure every one of
/// them is thawed again and the error names the first that would not.
pub fn freeze(all: &[Running], timeout: Duration) -> Result<(), LxcError> {
    let ours: Vec<&Running> = all.iter().filter(|r| !r.frozen_before).collect();
    let thaw_all = || {
        for r in &ours {
            let _ = std::fs::write(r.freeze_file(), "0");
        }
    };
    for r in &ours {
        if let Err(e) = std::fs::write(r.freeze_file(), "1") {
            thaw_all();
            return Err(io(&r.name, format!("write {}", r.freeze_file().display()))(
                e,
            ));
        }
    }
    let started = Instant::now();
    for r in &ours {
        while !is_frozen(&r.cgroup) {
            if started.elapsed() > timeout {
                thaw_all();
                return Err(LxcError::Command {
                    subject: format!("container {}", r.name),
                    command: format!("echo 1 > {}", r.freeze_file().display()),
                    status: format!("not frozen after {} ms", timeout.as_millis()),
                    detail: "a process of the container did not stop (one in uninterruptible I/O?)".into(),
                    hint: "nothing was snapshot and every container is running again; retry, or snapshot it stopped".into(),
                });
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    Ok(())
}

/// Thaws a container [`freeze`] froze (or a watchdog thawed already); one
/// frozen before is left so.
pub fn thaw(r: &Running) -> Result<(), LxcError> {
    if r.frozen_before {
        return Ok(());
    }
    std::fs::write(r.freeze_file(), "0")
        .map_err(io(&r.name, format!("write {}", r.freeze_file().display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cgroup hierarchy in a temporary directory: `lxc.payload.NAME`
    /// one level down, with `pids` in it (none: stopped).
    fn hierarchy(tag: &str, name: &str, pids: &[u32], frozen: bool) -> PathBuf {
        let root = std::env::temp_dir().join(format!("cairn-cg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let cg = root.join("lxc.slice").join(format!("lxc.payload.{name}"));
        std::fs::create_dir_all(&cg).unwrap();
        let procs: String = pids.iter().map(|p| format!("{p}\n")).collect();
        std::fs::write(cg.join("cgroup.procs"), procs).unwrap();
        std::fs::write(
            cg.join("cgroup.events"),
            format!("populated 1\nfrozen {}\n", u8::from(frozen)),
        )
        .unwrap();
        std::fs::write(cg.join("cgroup.freeze"), "0").unwrap();
        root
    }

    #[test]
    fn a_running_container_is_found_by_its_payload_cgroup() {
        let root = hierarchy("find", "web1", &[4242, 4300], false);
        let r = running_in(&root, "web1").unwrap().unwrap();
        assert_eq!(r.pid, 4242);
        assert_eq!(r.root(), PathBuf::from("/proc/4242/root"));
        assert!(r.cgroup.ends_with("lxc.slice/lxc.payload.web1"));
        assert_eq!(
            running_in(&root, "web2").unwrap(),
            None,
            "no cgroup: not running"
        );
        assert!(running_in(&root, "../etc").is_err(), "names are checked");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_cgroup_without_a_process_is_not_running() {
        let root = hierarchy("empty", "web1", &[], false);
        assert_eq!(running_in(&root, "web1").unwrap(), None);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn freezing_asks_every_cgroup_and_waits_for_frozen() {
        let root = hierarchy("frozen", "web1", &[7], true);
        let r = running_in(&root, "web1").unwrap().unwrap();
        freeze(std::slice::from_ref(&r), Duration::from_secs(1)).unwrap();
        assert_eq!(std::fs::read_to_string(r.freeze_file()).unwrap(), "1");
        thaw(&r).unwrap();
        assert_eq!(std::fs::read_to_string(r.freeze_file()).unwrap(), "0");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_container_frozen_before_stays_frozen() {
        let root = hierarchy("before", "web1", &[7], true);
        let cg = root.join("lxc.slice/lxc.payload.web1");
        std::fs::write(cg.join("cgroup.freeze"), "1").unwrap();
        let r = running_in(&root, "web1").unwrap().unwrap();
        assert!(r.frozen_before);
        freeze(std::slice::from_ref(&r), Duration::from_millis(20)).unwrap();
        thaw(&r).unwrap();
        assert_eq!(
            std::fs::read_to_string(r.freeze_file()).unwrap(),
            "1",
            "still frozen"
        );
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_container_that_will_not_freeze_is_thawed_and_named() {
        let root = hierarchy("stuck", "web1", &[7], false);
        let r = running_in(&root, "web1").unwrap().unwrap();
        let e = freeze(std::slice::from_ref(&r), Duration::from_millis(20)).unwrap_err();
        assert!(e.to_string().contains("container web1"), "{e}");
        assert!(e.to_string().contains("nothing was snapshot"), "{e}");
        assert_eq!(
            std::fs::read_to_string(r.freeze_file()).unwrap(),
            "0",
            "thawed again"
        );
        std::fs::remove_dir_all(root).unwrap();
    }
}
