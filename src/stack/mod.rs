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
//! - [`status`]: the whole stack as a tree.
//! - [`filter`]: the lvm.conf filter that keeps lvm2 off the lower layers.

pub mod file;
pub mod filter;
pub mod journal;
pub mod observe;
pub mod plan;
pub mod run;
pub mod status;
pub mod step;

use crate::drbd::adm::AdmError;
use crate::drbd::admin::DrbdError;
use crate::lvm::thin::ThinError;
use crate::lvm::volume::VolumeError;

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    File(#[from] file::FileError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error(transparent)]
    Thin(#[from] ThinError),
    #[error(transparent)]
    Adm(#[from] AdmError),
    #[error(transparent)]
    Drbd(#[from] DrbdError),
    #[error(transparent)]
    Op(#[from] crate::meta::ops::OpError),
    #[error(transparent)]
    Scan(#[from] crate::meta::scan::ScanError),
    #[error(transparent)]
    Dm(#[from] crate::dm::Error),
    #[error(transparent)]
    Fs(#[from] crate::fs::FsError),
    #[error(transparent)]
    Lxc(#[from] crate::lxc::LxcError),
    #[error("{0}")]
    Refused(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

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

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StackError {
    let what = what.into();
    move |source| StackError::Io { what, source }
}
