//! The kinds of failure, and a refusal that carries its kind: a leaf
//! module, so that every layer can say what kind its refusals are without
//! depending on the façade's error ([`crate::Error`], in src/host/error.rs,
//! which depends on every layer).

use serde::Serialize;

/// What kind of failure an error is: what a program embedding cairn may do
/// about it without reading the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// A name, size or option is not valid, or a file does not parse: fix the input.
    InvalidInput,
    /// What was named does not exist (a VG, an LV, a container, a resource).
    NotFound,
    /// What would be made exists already.
    AlreadyExists,
    /// Something holds it (open, mounted, locked, suspended, running): retry once it is released.
    Busy,
    /// Refused to protect data or because the state does not allow it; the
    /// message names the flag (`--force`, `--allow-shrink`) or the action that lets it go ahead.
    Refused,
    /// Not enough space (free extents, a pool, a device too small).
    NoSpace,
    /// What is on disk or in the kernel is damaged or disagrees with itself
    /// (bad checksums, metadata and kernel out of step): look before retrying.
    Inconsistent,
    /// A kernel feature, module or tool is missing, or cairn does not support it yet.
    Unsupported,
    /// The kernel, a device or a tool failed (I/O error, ioctl, netlink, a command's exit status),
    /// or the caller lacks a privilege (permission denied: not root).
    System,
    /// It failed and undoing it failed too: the message says what is left to clean up.
    Unrecovered,
}

/// A refusal: the layer will not do what was asked, for a reason of this
/// kind, said in the message (which names what to do instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// What kind of refusal this is.
    pub kind: ErrorKind,
    /// What was refused and why, and what to do next.
    pub message: String,
}

impl Refusal {
    /// A refusal of this kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Refusal {
        Refusal {
            kind,
            message: message.into(),
        }
    }
}
