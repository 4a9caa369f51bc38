//! The stack: the seed's layers described in one file and made, brought up,
//! inspected and taken down by composing [`crate::meta`], [`crate::lvm`],
//! [`crate::drbd`], [`crate::fs`] and [`crate::lxc`]. Those modules know
//! nothing of the stack; this one knows nothing of their formats.
//!
//! - [`file`]: the stack file (TOML), checked before anything is touched.
//! - [`observe`]: what exists now, layer by layer.
//! - [`plan`]: the steps between what exists and what the file says.
//! - [`step`]: one step, its description and how it is done.
//! - [`journal`]: which step an apply was at, for the run after a crash.
//! - [`run`]: plan, apply, up, down, each in bring-up (or reverse) order.
//! - [`snapshot`]: snapshots of containers, taken frozen, in one transaction.
//! - [`status`]: the whole stack as a tree.
//! - [`filter`]: the lvm.conf filter that keeps lvm2 off the lower layers.

pub mod file;
pub mod filter;
pub mod journal;
pub mod observe;
pub mod plan;
pub mod run;
pub mod snapshot;
pub mod status;
pub mod step;

use crate::drbd::adm::AdmError;
use crate::drbd::admin::DrbdError;
use crate::lvm::action::VolumeError;
use crate::lvm::thin::ThinError;

/// Why a stack operation (plan, apply, up, down, status, a container
/// command) stopped: the layer that failed, with its own error.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The stack file does not parse or does not add up (at a line).
    #[error(transparent)]
    File(#[from] file::FileError),
    /// An LVM operation on a VG or LV (create, resize, activate).
    #[error(transparent)]
    Volume(#[from] VolumeError),
    /// A thin pool or thin LV operation.
    #[error(transparent)]
    Thin(#[from] ThinError),
    /// A DRBD resource's configuration, metadata or bring-up.
    #[error(transparent)]
    Adm(#[from] AdmError),
    /// DRBD's kernel interface (generic netlink).
    #[error(transparent)]
    Drbd(#[from] DrbdError),
    /// An LVM2 metadata operation (pvcreate, vgcreate, vgextend).
    #[error(transparent)]
    Op(#[from] crate::meta::ops::OpError),
    /// Scanning devices for PVs and their metadata.
    #[error(transparent)]
    Scan(#[from] crate::meta::scan::ScanError),
    /// Device-mapper (reading tables and status).
    #[error(transparent)]
    Dm(#[from] crate::dm::Error),
    /// A container's ext4 (mkfs, resize, mount).
    #[error(transparent)]
    Fs(#[from] crate::fs::FsError),
    /// An LXC container (its config, rootfs, lxc-start and lxc-stop).
    #[error(transparent)]
    Lxc(#[from] crate::lxc::LxcError),
    /// The stack refuses: the message says why and what to do (another
    /// run holds the lock, a shrink not allowed, somebody's data in the way).
    #[error("{0}")]
    Refused(crate::error::Refusal),
    /// Step `n` of a run failed; `source` is why (its kind is the step's).
    #[error("step {n} ({step}) failed: {source}")]
    Step {
        /// The step's number in the run (1-based, as progress shows it).
        n: usize,
        /// The step, as progress shows it.
        step: String,
        /// What failed.
        source: Box<StackError>,
    },
    /// A file of the stack's own (journal, lock, resource file) could not
    /// be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The system's error.
        source: std::io::Error,
    },
}

/// A result whose error is a [`StackError`].
pub type Result<T> = std::result::Result<T, StackError>;

/// What a stack run needs of the host: the metadata layer's environment
/// (locks, archive, scan, who is running), where device nodes go, and the
/// state directory that holds the journals (absolute: two runs started
/// from different directories must share one lock).
#[derive(Debug, Clone)]
pub struct Context {
    pub env: crate::meta::ops::Env,
    pub dev: crate::lvm::engine::Dev,
    pub state_dir: std::path::PathBuf,
}

/// A refusal of this kind.
pub(crate) fn refused(kind: crate::error::ErrorKind, message: impl Into<String>) -> StackError {
    StackError::Refused(crate::error::Refusal::new(kind, message))
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StackError {
    let what = what.into();
    move |source| StackError::Io { what, source }
}
