//! Locking compatible with lvm2's file locks (locking_type 1): flock on
//! `/run/lock/lvm/V_<vg>` for a VG and P_global for the PV/VG namespace, with
//! lvm2's write priority (an exclusive `<file>:aux` lock taken around the
//! request), so cairn and lvm2 never write one VG at the same time. Also the
//! hints invalidation lvm2 does after PV changes.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// lvm2's default locking_dir.
pub const DEFAULT_LOCK_DIR: &str = "/run/lock/lvm";
/// lvm2's run dir, where the device hints live.
pub const DEFAULT_RUN_DIR: &str = "/run/lvm";

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The lock directory or file could not be created or opened.
    #[error("cannot open lock file {path}: {source}")]
    Open {
        /// The lock file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another process held the lock longer than the wait allows.
    #[error(
        "{what} is locked by another process (lvm2 or cairn) and stayed locked for {waited:?}: \
         try again when it is done"
    )]
    Busy {
        /// What is locked, in words (e.g. "volume group vg0").
        what: String,
        /// How long cairn waited.
        waited: Duration,
    },
    /// flock(2) failed other than by contention.
    #[error("cannot lock {path}: {source}")]
    Flock {
        /// The lock file or directory.
        path: PathBuf,
        /// Why.
        source: Errno,
    },
}

/// How a lock is held, as lvm2's read and write locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// For reading: many holders at once (LCK_READ).
    Shared,
    /// For writing: one holder (LCK_WRITE).
    Exclusive,
}

/// Where the lock files live, and how long to wait for one.
#[derive(Debug, Clone)]
pub struct Locks {
    /// lvm2's locking_dir ([`DEFAULT_LOCK_DIR`]).
    pub dir: PathBuf,
    /// How long to wait for a held lock before giving up (default 30 s).
    pub wait: Duration,
}

impl Default for Locks {
    fn default() -> Self {
        Locks {
            dir: PathBuf::from(DEFAULT_LOCK_DIR),
            wait: Duration::from_secs(30),
        }
    }
}

/// A held lock; released when dropped (as lvm2's are when it closes the file).
#[derive(Debug)]
pub struct Held {
    _lock: Flock<File>,
    /// The lock file.
    pub path: PathBuf,
    /// How it is held.
    pub mode: Mode,
}

impl Locks {
    /// The lock lvm2 takes on VG `vg` (`V_<vg>`) to read or write it.
    pub fn vg(&self, vg: &str, mode: Mode) -> Result<Held, LockError> {
        self.lock(&format!("V_{vg}"), mode, &format!("volume group {vg}"))
    }

    /// The global lock lvm2 takes for PV and VG name changes (pvcreate, vgcreate, vgremove...).
    pub fn global(&self, mode: Mode) -> Result<Held, LockError> {
        self.lock("P_global", mode, "the global LVM lock")
    }

    fn lock(&self, name: &str, mode: Mode, what: &str) -> Result<Held, LockError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| LockError::Open {
            path: self.dir.clone(),
            source,
        })?;
        let path = self.dir.join(name);
        let aux = self.dir.join(format!("{name}:aux"));
        let deadline = Instant::now() + self.wait;
        // Write priority as lvm2 does: a writer holds aux while it waits, so
        // new readers queue behind it; a reader passes through aux first.
        let aux_lock = flock_until(&aux, Mode::Exclusive, deadline, what, self.wait)?;
        let held = match mode {
            Mode::Exclusive => {
                let held = flock_until(&path, mode, deadline, what, self.wait);
                drop(aux_lock);
                held?
            }
            Mode::Shared => {
                drop(aux_lock);
                flock_until(&path, mode, deadline, what, self.wait)?
            }
        };
        Ok(Held {
            _lock: held,
            path,
            mode,
        })
    }
}

/// Opens and flocks `path`, retrying until `deadline`; like lvm2, checks the
/// locked file is still the one at `path` (another process may have removed
/// and recreated it in between).
fn flock_until(
    path: &Path,
    mode: Mode,
    deadline: Instant,
    what: &str,
    wait: Duration,
) -> Result<Flock<File>, LockError> {
    let arg = match mode {
        Mode::Shared => FlockArg::LockSharedNonblock,
        Mode::Exclusive => FlockArg::LockExclusiveNonblock,
    };
    loop {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(|source| LockError::Open {
                path: path.to_owned(),
                source,
            })?;
        match Flock::lock(file, arg) {
            Ok(locked) => {
                let same = match (std::fs::metadata(path), locked.metadata()) {
                    (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
                    _ => false,
                };
                if same {
                    return Ok(locked);
                }
            }
            Err((_, Errno::EWOULDBLOCK)) => {}
            Err((_, e)) => {
                return Err(LockError::Flock {
                    path: path.to_owned(),
                    source: e,
                })
            }
        }
        if Instant::now() >= deadline {
            return Err(LockError::Busy {
                what: what.to_owned(),
                waited: wait,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Tells lvm2 its device hints are stale after PVs were created, removed or
/// changed VG (what lvm2's clear_hint_file does): the hints file emptied
/// under its lock, and a `newhints` marker. Does nothing where lvm2 keeps no
/// run dir.
pub fn invalidate_hints(run_dir: &Path) -> std::io::Result<()> {
    if !run_dir.is_dir() {
        return Ok(());
    }
    let hints = run_dir.join("hints");
    let nohints = run_dir.join("nohints");
    // nohints tells other commands not to wait on the hints lock meanwhile.
    File::create(&nohints)?;
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&hints)?;
    let locked =
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| std::io::Error::from(e))?;
    let _ = std::fs::remove_file(&nohints);
    let mut file = locked.unlock().map_err(|(_, e)| std::io::Error::from(e))?;
    file.set_len(0)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    writeln!(
        file,
        "# Created empty by cairn pid {} {}",
        std::process::id(),
        super::model::ctime(now)
    )?;
    File::create(run_dir.join("newhints"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cairn-lock-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn exclusive_excludes_and_shared_shares() {
        let dir = temp_dir("x");
        let locks = Locks {
            dir: dir.clone(),
            wait: Duration::from_millis(100),
        };
        let first = locks.vg("vg0", Mode::Exclusive).unwrap();
        assert!(dir.join("V_vg0").exists());
        let e = locks.vg("vg0", Mode::Shared).unwrap_err();
        assert!(e.to_string().contains("volume group vg0 is locked"), "{e}");
        assert!(
            locks.vg("other", Mode::Exclusive).is_ok(),
            "other VGs are independent"
        );
        drop(first);
        let a = locks.vg("vg0", Mode::Shared).unwrap();
        let b = locks.vg("vg0", Mode::Shared).unwrap();
        assert!(locks.vg("vg0", Mode::Exclusive).is_err());
        drop((a, b));
        assert!(locks.global(Mode::Exclusive).is_ok());
        assert!(dir.join("P_global").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_lock_held_by_another_process_counts() {
        // flock(1) from util-linux holds the lock in a child, as lvm2 would.
        let dir = temp_dir("proc");
        let path = dir.join("V_shared");
        let mut child = std::process::Command::new("flock")
            .args(["-x", "-o", path.to_str().unwrap(), "sleep", "5"])
            .spawn()
            .expect("flock(1) from util-linux");
        let locks = Locks {
            dir: dir.clone(),
            wait: Duration::from_millis(300),
        };
        // Wait until the child holds it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while locks.vg("shared", Mode::Shared).is_ok() {
            assert!(Instant::now() < deadline, "the child never took the lock");
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(locks.vg("shared", Mode::Exclusive).is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn hints_are_emptied_and_marked_new() {
        let dir = temp_dir("hints");
        std::fs::write(dir.join("hints"), "scan_lvs:0\n/dev/loop0\n").unwrap();
        invalidate_hints(&dir).unwrap();
        let text = std::fs::read_to_string(dir.join("hints")).unwrap();
        assert!(text.starts_with("# Created empty by cairn pid"), "{text}");
        assert!(!text.contains("/dev/loop0"));
        assert!(dir.join("newhints").exists());
        assert!(!dir.join("nohints").exists());
        invalidate_hints(&dir.join("absent")).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }
}
