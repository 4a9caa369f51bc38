//! A watchdog process that lets go of what this process holds still — a
//! frozen cgroup, a frozen file system, a suspended device-mapper device —
//! if this process dies or a deadline passes before it lets go itself.
//!
//! A container frozen for a snapshot must never stay frozen: not when
//! cairn is killed in the middle, not when a step hangs. A thread cannot
//! promise that (it dies with the process), so the guard is a forked
//! child. It waits on a socket whose only other end is this process's: a byte
//! means "released, stand down"; end-of-file (this process died) or the
//! deadline means "release everything now". The releases are prepared
//! before the fork (paths, ioctl buffers, open descriptors) and the child
//! makes nothing but system calls, so that a fork from a threaded program
//! is safe.
//!
//! The order of releases is the caller's: a suspended device before the
//! file system on it is thawed (thawing writes the superblock), the file
//! system before the cgroup (its processes would block on it).

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::libc;

/// One thing to let go of.
#[derive(Debug)]
pub enum Release {
    /// `ioctl(fd, request, arg)`: FITHAW on a frozen file system's
    /// descriptor, a device-mapper resume on /dev/mapper/control. The
    /// caller keeps `fd` open until the guard is disarmed.
    Ioctl {
        /// The descriptor (inherited by the guard).
        fd: RawFd,
        /// The request number.
        request: libc::c_ulong,
        /// The argument buffer, passed by pointer (may be empty: no argument).
        arg: Vec<u8>,
    },
    /// Writes `data` to the file at `path` (a cgroup's `cgroup.freeze`).
    Write {
        /// The file.
        path: CString,
        /// What to write.
        data: Vec<u8>,
    },
}

/// Why the guard could not be set.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// pipe(2) or fork(2) failed.
    #[error("cannot start the watchdog that thaws what a snapshot freezes ({what}): {source}; nothing was frozen")]
    Start {
        /// `socketpair` or `fork`.
        what: &'static str,
        /// The system's error.
        source: nix::Error,
    },
}

/// A running guard: disarm it once everything is released.
#[derive(Debug)]
pub struct Guard {
    pid: nix::unistd::Pid,
    /// The write end of the pipe: dropping it (process death) fires the guard.
    stand_down: Option<OwnedFd>,
}

/// How a guard ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Disarmed in time: it released nothing.
    StoodDown,
    /// The deadline passed first: it released everything (what it guarded
    /// was held longer than allowed).
    Fired,
}

impl Guard {
    /// Forks the guard for `releases`, to fire after `deadline`.
    pub fn spawn(releases: Vec<Release>, deadline: Duration) -> Result<Guard, GuardError> {
        // A socket pair rather than a pipe: standing down is a send with
        // MSG_NOSIGNAL, which cannot kill this process with SIGPIPE when
        // the guard has fired and gone. Close-on-exec: a command this
        // process runs meanwhile must not hold it open past this process's
        // death.
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        let (read, write) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|source| GuardError::Start {
            what: "socketpair",
            source,
        })?;
        let timeout_ms = deadline.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: the child only makes system calls on data prepared here
        // (no allocation, no lock), then _exit()s.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => {
                drop(write);
                // Out of cairn's session and deaf to the signals a terminal
                // or a service manager sends the whole group: Ctrl-C or a
                // systemd stop that kills cairn must not kill its guard.
                // SAFETY: setsid and signal are async-signal-safe.
                unsafe {
                    libc::setsid();
                    for sig in [
                        libc::SIGINT,
                        libc::SIGTERM,
                        libc::SIGHUP,
                        libc::SIGQUIT,
                        libc::SIGTSTP,
                        libc::SIGTTIN,
                        libc::SIGTTOU,
                        libc::SIGPIPE,
                    ] {
                        libc::signal(sig, libc::SIG_IGN);
                    }
                }
                let code = watch(read.as_raw_fd(), timeout_ms, &releases);
                unsafe { libc::_exit(code) }
            }
            Ok(nix::unistd::ForkResult::Parent { child }) => {
                drop(read);
                Ok(Guard {
                    pid: child,
                    stand_down: Some(write),
                })
            }
            Err(source) => Err(GuardError::Start {
                what: "fork",
                source,
            }),
        }
    }

    /// Tells the guard to stand down and reaps it: [`Ended::Fired`] when
    /// the deadline had passed and it released everything already.
    pub fn disarm(mut self) -> Ended {
        if let Some(fd) = self.stand_down.take() {
            let _ = nix::sys::socket::send(
                fd.as_raw_fd(),
                b"d",
                nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
            );
        }
        self.reap()
    }

    fn reap(&mut self) -> Ended {
        loop {
            match nix::sys::wait::waitpid(self.pid, None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => return Ended::StoodDown,
                Ok(nix::sys::wait::WaitStatus::Exited(..))
                | Ok(nix::sys::wait::WaitStatus::Signaled(..)) => return Ended::Fired,
                Ok(_) | Err(nix::Error::EINTR) => continue,
                Err(_) => return Ended::Fired,
            }
        }
    }
}

impl Drop for Guard {
    /// A guard dropped without [`Guard::disarm`] (an early return, a
    /// panic) fires now: closing the pipe is what process death does.
    fn drop(&mut self) {
        if self.stand_down.take().is_some() {
            self.reap();
        }
    }
}

/// The child: wait for a byte, end-of-file or the deadline. Exit 0 when
/// told to stand down, 1 after releasing.
fn watch(fd: RawFd, timeout_ms: i32, releases: &[Release]) -> i32 {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ready = loop {
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if n >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break n;
        }
    };
    if ready > 0 {
        let mut byte = 0u8;
        // SAFETY: reads one byte into a local.
        let n = unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) };
        if n == 1 && byte == b'd' {
            return 0;
        }
    }
    for r in releases {
        match r {
            Release::Ioctl { fd, request, arg } => {
                let ptr = if arg.is_empty() {
                    std::ptr::null_mut()
                } else {
                    arg.as_ptr() as *mut libc::c_void
                };
                // SAFETY: the buffer outlives the call; the kernel may
                // write into it (the child's own copy).
                unsafe { libc::ioctl(*fd, *request, ptr) };
            }
            Release::Write { path, data } => {
                // SAFETY: a NUL-terminated path and a buffer of data.len().
                unsafe {
                    let f = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if f >= 0 {
                        libc::write(f, data.as_ptr().cast(), data.len());
                        libc::close(f);
                    }
                }
            }
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(tag: &str) -> (std::path::PathBuf, Release) {
        let path = std::env::temp_dir().join(format!("cairn-guard-{tag}-{}", std::process::id()));
        std::fs::write(&path, "held").unwrap();
        let release = Release::Write {
            path: CString::new(path.to_str().unwrap()).unwrap(),
            data: b"released".to_vec(),
        };
        (path, release)
    }

    #[test]
    fn a_guard_disarmed_in_time_releases_nothing() {
        let (path, release) = marker("disarmed");
        let guard = Guard::spawn(vec![release], Duration::from_secs(30)).unwrap();
        assert_eq!(guard.disarm(), Ended::StoodDown);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "held");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_guard_past_its_deadline_releases_everything() {
        let (a, ra) = marker("deadline-a");
        let (b, rb) = marker("deadline-b");
        let guard = Guard::spawn(vec![ra, rb], Duration::from_millis(50)).unwrap();
        std::thread::sleep(Duration::from_millis(400));
        for p in [&a, &b] {
            assert_eq!(std::fs::read_to_string(p).unwrap(), "released");
        }
        // Standing down a guard that is gone must not raise SIGPIPE (the
        // cairn binary keeps its default action, which kills).
        let before = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
        assert_eq!(guard.disarm(), Ended::Fired);
        unsafe { libc::signal(libc::SIGPIPE, before) };
        std::fs::remove_file(a).unwrap();
        std::fs::remove_file(b).unwrap();
    }

    /// What process death does to the pipe, dropping the guard does.
    #[test]
    fn a_guard_whose_holder_goes_away_releases_at_once() {
        let (path, release) = marker("dropped");
        let guard = Guard::spawn(vec![release], Duration::from_secs(30)).unwrap();
        let started = std::time::Instant::now();
        drop(guard);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "released");
        assert!(started.elapsed() < Duration::from_secs(10));
        std::fs::remove_file(path).unwrap();
    }
}
