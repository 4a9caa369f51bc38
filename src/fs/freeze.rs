//! FIFREEZE and FITHAW: a mounted file system held still for the instant
//! of a snapshot, its dirty data written and new writes blocked, so that
//! the snapshot holds a clean file system (no journal replay needed).
//!
//! Frozen through a directory of the file system: a container's root is
//! mounted in the container's mount namespace, reached as
//! `/proc/PID/root` of a process inside it.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::FsError;

nix::ioctl_readwrite!(fifreeze, b'X', 119, nix::libc::c_int);
nix::ioctl_readwrite!(fithaw, b'X', 120, nix::libc::c_int);

/// A file system held through a directory of it: opened first (so that a
/// watchdog can be given the descriptor before anything is frozen), then
/// frozen; thawed by [`Frozen::thaw`], or when dropped (an early return
/// must not leave it frozen).
#[derive(Debug)]
pub struct Frozen {
    dir: PathBuf,
    fd: Option<OwnedFd>,
    frozen: bool,
}

/// Opens the file system that `dir` is on, to freeze it.
pub fn open(dir: &Path) -> Result<Frozen, FsError> {
    let fd = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| FsError::Freeze {
        dir: dir.to_owned(),
        source: e.into(),
    })?;
    // SAFETY: open returned a descriptor this process now owns.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    Ok(Frozen {
        dir: dir.to_owned(),
        fd: Some(fd),
        frozen: false,
    })
}

impl Frozen {
    /// Freezes it (FIFREEZE: dirty data written, new writes blocked).
    pub fn freeze(&mut self) -> Result<(), FsError> {
        let Some(fd) = &self.fd else {
            return Ok(());
        };
        let mut unused: nix::libc::c_int = 0;
        // SAFETY: FIFREEZE on an open directory; the argument is not read.
        unsafe { fifreeze(fd.as_raw_fd(), &mut unused) }.map_err(|e| FsError::Freeze {
            dir: self.dir.clone(),
            source: e.into(),
        })?;
        self.frozen = true;
        Ok(())
    }

    /// The descriptor and request that thaw it, for a watchdog process
    /// (crate::guard): the descriptor stays open as long as `self`.
    pub fn thaw_request(&self) -> (RawFd, nix::libc::c_ulong) {
        (
            self.fd.as_ref().map_or(-1, |f| f.as_raw_fd()),
            nix::request_code_readwrite!(b'X', 120, std::mem::size_of::<nix::libc::c_int>())
                as nix::libc::c_ulong,
        )
    }

    /// The device the file system is on (`st_dev`): a caller checks that
    /// the directory it was given is on the file system it means to freeze.
    pub fn device(&self) -> Option<u64> {
        let fd = self.fd.as_ref()?;
        nix::sys::stat::fstat(fd.as_raw_fd()).ok().map(|s| s.st_dev)
    }

    /// Thaws it if this froze it. EINVAL (not frozen: a watchdog thawed it
    /// first) is no error.
    pub fn thaw(mut self) -> Result<(), FsError> {
        self.thaw_now()
    }

    fn thaw_now(&mut self) -> Result<(), FsError> {
        if !std::mem::take(&mut self.frozen) {
            return Ok(());
        }
        let Some(fd) = &self.fd else {
            return Ok(());
        };
        let mut unused: nix::libc::c_int = 0;
        // SAFETY: FITHAW on the descriptor FIFREEZE took.
        match unsafe { fithaw(fd.as_raw_fd(), &mut unused) } {
            Ok(_) | Err(nix::Error::EINVAL) => Ok(()),
            Err(e) => Err(FsError::Thaw {
                dir: self.dir.clone(),
                source: e.into(),
            }),
        }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if let Err(e) = self.thaw_now() {
            crate::warnings::record(e);
        }
    }
}
