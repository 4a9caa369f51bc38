//! The façade's error, and what kind of failure each layer's errors are.
//!
//! Every layer keeps its own error type, whose message says what happened
//! and what to do next; this module gives each of them a machine-readable
//! [`ErrorKind`] and gathers them into the façade's [`Error`]. The kinds are
//! decided here, in one table, rather than beside each type, so that the
//! whole policy (what is the caller's input, what is the disk's state, what
//! is the kernel's doing) can be read and reviewed at once.

pub use crate::error::{ErrorKind, Refusal};
// The layers' errors an [`Error`] carries, so that a caller can name them.
pub use crate::fs::FsError;
pub use crate::lvm::action::VolumeError;
pub use crate::lvm::activate::PlanError;
pub use crate::lvm::config::ConfigError as LvmConfigError;
pub use crate::lvm::engine::EngineError;
pub use crate::lvm::thin::ThinError;
pub use crate::lxc::LxcError;
pub use crate::stack::file::FileError;
pub use crate::stack::StackError;

use crate::blockdev::DeviceError;
use crate::dm;
use crate::drbd::adm::AdmError;
use crate::drbd::admin::DrbdError;
use crate::drbd::genl::GenlError;
use crate::drbd::md::MdError;
use crate::lvm::query::QueryError;
use crate::lvm::remove::RemoveError;
use crate::lvm::report::ReportError;
use crate::meta::commit::CommitError;
use crate::meta::lock::LockError;
use crate::meta::ops::OpError;
use crate::meta::scan::ScanError;
use crate::signature::SignatureError;

/// An error of the façade: one of the layers' errors (boxed: they are
/// large, and every call returns a `Result`), or bad input caught at the
/// façade itself. [`Error::kind`] classifies all of them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The stack (its file, plan, apply, up, down, containers).
    #[error(transparent)]
    Stack(Box<StackError>),
    /// An LVM operation on VGs and LVs (activation, resize, snapshots).
    #[error(transparent)]
    Volume(Box<VolumeError>),
    /// A thin pool or thin LV operation.
    #[error(transparent)]
    Thin(Box<ThinError>),
    /// LVM2's on-disk metadata (PVs, VGs, commits, locks).
    #[error(transparent)]
    Metadata(Box<OpError>),
    /// A report (`pvs`, `vgs`, `lvs`).
    #[error(transparent)]
    Query(Box<QueryError>),
    /// A DRBD resource (its configuration, metadata or the kernel's answer).
    #[error(transparent)]
    Drbd(Box<AdmError>),
    /// Device-mapper.
    #[error(transparent)]
    DeviceMapper(Box<dm::Error>),
    /// An LXC container.
    #[error(transparent)]
    Container(Box<LxcError>),
    /// Input the façade itself refuses, before any layer is called.
    #[error("{message}")]
    Input {
        /// Always [`ErrorKind::InvalidInput`], [`ErrorKind::NotFound`] or [`ErrorKind::Refused`].
        kind: ErrorKind,
        /// What is wrong and what to give instead.
        message: String,
    },
}

impl Error {
    /// Bad input, said before anything was touched.
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::Input {
            kind: ErrorKind::InvalidInput,
            message: message.into(),
        }
    }

    /// A refusal at the façade (a destructive action without its flag).
    pub fn refused(message: impl Into<String>) -> Error {
        Error::Input {
            kind: ErrorKind::Refused,
            message: message.into(),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Stack(e) => e.kind(),
            Error::Volume(e) => e.kind(),
            Error::Thin(e) => e.kind(),
            Error::Metadata(e) => e.kind(),
            Error::Query(e) => e.kind(),
            Error::Drbd(e) => e.kind(),
            Error::DeviceMapper(e) => e.kind(),
            Error::Container(e) => e.kind(),
            Error::Input { kind, .. } => *kind,
        }
    }
}

impl From<StackError> for Error {
    fn from(e: StackError) -> Error {
        Error::Stack(Box::new(e))
    }
}

impl From<VolumeError> for Error {
    fn from(e: VolumeError) -> Error {
        Error::Volume(Box::new(e))
    }
}

impl From<ThinError> for Error {
    fn from(e: ThinError) -> Error {
        Error::Thin(Box::new(e))
    }
}

impl From<OpError> for Error {
    fn from(e: OpError) -> Error {
        Error::Metadata(Box::new(e))
    }
}

impl From<QueryError> for Error {
    fn from(e: QueryError) -> Error {
        Error::Query(Box::new(e))
    }
}

impl From<AdmError> for Error {
    fn from(e: AdmError) -> Error {
        Error::Drbd(Box::new(e))
    }
}

impl From<dm::Error> for Error {
    fn from(e: dm::Error) -> Error {
        Error::DeviceMapper(Box::new(e))
    }
}

impl From<LxcError> for Error {
    fn from(e: LxcError) -> Error {
        Error::Container(Box::new(e))
    }
}

impl From<RemoveError> for Error {
    fn from(e: RemoveError) -> Error {
        match e {
            RemoveError::Volume(e) => e.into(),
            RemoveError::Thin(e) => e.into(),
            e @ RemoveError::NotASnapshot { .. } => Error::invalid(e.to_string()),
        }
    }
}

impl From<crate::meta::scan::ScanError> for Error {
    fn from(e: ScanError) -> Error {
        Error::from(OpError::from(e))
    }
}

impl From<DrbdError> for Error {
    fn from(e: DrbdError) -> Error {
        Error::from(AdmError::from(e))
    }
}

impl From<MdError> for Error {
    fn from(e: MdError) -> Error {
        Error::from(AdmError::from(e))
    }
}

impl From<crate::drbd::config::ConfigError> for Error {
    fn from(e: crate::drbd::config::ConfigError) -> Error {
        Error::from(AdmError::from(e))
    }
}

impl From<crate::units::SizeError> for Error {
    fn from(e: crate::units::SizeError) -> Error {
        Error::invalid(e.to_string())
    }
}

impl From<crate::stack::file::FileError> for Error {
    fn from(e: crate::stack::file::FileError) -> Error {
        Error::from(StackError::from(e))
    }
}

/// The façade's result.
pub type Result<T> = std::result::Result<T, Error>;

// ---------------------------------------------------------------------------
// The table: each layer's errors, kind by kind.

fn io_kind(e: &std::io::Error) -> ErrorKind {
    use std::io::ErrorKind as Io;
    match e.kind() {
        Io::NotFound => ErrorKind::NotFound,
        Io::AlreadyExists => ErrorKind::AlreadyExists,
        // Not a refusal a flag would lift: the caller lacks a privilege.
        Io::PermissionDenied => ErrorKind::System,
        Io::ResourceBusy | Io::WouldBlock => ErrorKind::Busy,
        Io::StorageFull => ErrorKind::NoSpace,
        Io::InvalidInput => ErrorKind::InvalidInput,
        _ => ErrorKind::System,
    }
}

fn errno_kind(errno: i32) -> ErrorKind {
    match errno {
        nix::libc::EBUSY => ErrorKind::Busy,
        nix::libc::ENXIO | nix::libc::ENOENT | nix::libc::ENODEV => ErrorKind::NotFound,
        nix::libc::EEXIST => ErrorKind::AlreadyExists,
        nix::libc::ENOSPC => ErrorKind::NoSpace,
        nix::libc::EPERM | nix::libc::EACCES => ErrorKind::System,
        _ => ErrorKind::System,
    }
}

impl DeviceError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DeviceError::Open { source, .. } | DeviceError::Io { source, .. } => io_kind(source),
            DeviceError::NotADevice { .. } => ErrorKind::InvalidInput,
            DeviceError::Busy { .. } => ErrorKind::Busy,
            DeviceError::PastEnd { .. } => ErrorKind::Inconsistent,
        }
    }
}

impl ScanError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ScanError::Device(e) => e.kind(),
            ScanError::Label { .. }
            | ScanError::Mda { .. }
            | ScanError::Text { .. }
            | ScanError::AreaPastEnd { .. }
            | ScanError::Inconsistent { .. } => ErrorKind::Inconsistent,
            ScanError::NotAPv { .. } => ErrorKind::InvalidInput,
            ScanError::NoSuchVg(_) => ErrorKind::NotFound,
            ScanError::NameClash { .. } | ScanError::Ambiguous { .. } => ErrorKind::Refused,
            ScanError::Suspended { .. } => ErrorKind::Busy,
        }
    }
}

impl CommitError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CommitError::Device(e) => e.kind(),
            CommitError::Mda { source, .. } => mda_kind(source),
            CommitError::Label { .. } => ErrorKind::System,
            CommitError::NoMetadataArea { .. } => ErrorKind::Refused,
            // Another writer committed meanwhile, maybe after a first
            // commit of this operation: look before running it again.
            CommitError::Moved { .. } => ErrorKind::Inconsistent,
            // Nothing was committed: the cause tells what to do.
            CommitError::Aborted { source, .. } => source.kind(),
        }
    }
}

/// A metadata area that cannot take the new text is out of room (lvm2
/// users meet it with many LVs or tags); one whose header or copy reads
/// wrong is damaged.
fn mda_kind(e: &crate::meta::mda::MdaError) -> ErrorKind {
    use crate::meta::mda::MdaError as M;
    match e {
        M::TextTooLarge { .. } | M::AreaTooSmall { .. } | M::Overlap { .. } => ErrorKind::NoSpace,
        M::Unaligned { .. } | M::BadVersion { .. } => ErrorKind::Unsupported,
        M::NoMemory { .. } => ErrorKind::System,
        _ => ErrorKind::Inconsistent,
    }
}

impl LockError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LockError::Open { source, .. } => io_kind(source),
            LockError::Busy { .. } => ErrorKind::Busy,
            LockError::Flock { source, .. } => errno_kind(*source as i32),
        }
    }
}

impl OpError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            OpError::Scan(e) => e.kind(),
            OpError::Commit(e) => e.kind(),
            OpError::Device(e) => e.kind(),
            OpError::Lock(e) => e.kind(),
            OpError::Archive(e) => io_kind(&e.source),
            OpError::Signature(e) => e.kind(),
            OpError::AlreadyPv { .. } | OpError::VgExists(_) => ErrorKind::AlreadyExists,
            OpError::InUse { .. } | OpError::InVg { .. } | OpError::MarkedUsed { .. } => {
                ErrorKind::Refused
            }
            OpError::VgHasLvs { .. } | OpError::MissingPvs { .. } => ErrorKind::Refused,
            OpError::Refused { refusal, .. } => refusal.kind,
            OpError::NotABlockDevice { .. }
            | OpError::BadName { .. }
            | OpError::BadLvName { .. }
            | OpError::BadExtentSize(_) => ErrorKind::InvalidInput,
            OpError::TooSmall { .. } => ErrorKind::NoSpace,
            OpError::Random(e) => io_kind(e),
        }
    }
}

impl SignatureError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SignatureError::Open { source, .. } => io_kind(source),
            SignatureError::Probe { .. } => ErrorKind::System,
            SignatureError::Suspended { .. } => ErrorKind::Busy,
        }
    }
}

impl dm::Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            dm::Error::Unavailable(_) => ErrorKind::Unsupported,
            dm::Error::BadName(_) => ErrorKind::InvalidInput,
            dm::Error::Table { .. } => ErrorKind::Inconsistent,
            dm::Error::Ioctl { .. } | dm::Error::Device { .. } | dm::Error::Simulated { .. } => {
                self.errno().map_or(ErrorKind::System, errno_kind)
            }
        }
    }
}

impl EngineError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Dm(e) => e.kind(),
            EngineError::Foreign { .. } => ErrorKind::AlreadyExists,
            // Metadata and kernel out of step.
            EngineError::Differs { .. } => ErrorKind::Inconsistent,
            EngineError::InUse { .. } => ErrorKind::Busy,
            EngineError::Resolve { source, .. } | EngineError::Node { source, .. } => {
                io_kind(source)
            }
            EngineError::UndoFailed { .. } | EngineError::PartlyApplied { .. } => {
                ErrorKind::Unrecovered
            }
        }
    }
}

impl PlanError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PlanError::NoSuchLv { .. } => ErrorKind::NotFound,
            PlanError::MissingPv { .. } => ErrorKind::Refused,
            PlanError::Unsupported { .. } => ErrorKind::Unsupported,
            PlanError::Inconsistent { .. } => ErrorKind::Inconsistent,
            PlanError::Hidden { .. } => ErrorKind::InvalidInput,
        }
    }
}

impl VolumeError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            VolumeError::Op(e) => e.kind(),
            VolumeError::Plan(e) => e.kind(),
            VolumeError::Engine(e) => e.kind(),
            VolumeError::Dm(e) => e.kind(),
            VolumeError::Config(_) => ErrorKind::InvalidInput,
            VolumeError::Refused { refusal, .. } => refusal.kind,
            VolumeError::Partial { .. } => ErrorKind::Refused,
        }
    }
}

impl ThinError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ThinError::Volume(e) => e.kind(),
            ThinError::Refused(r) => r.kind,
            ThinError::TransactionMismatch { .. } => ErrorKind::Inconsistent,
            ThinError::UndoFailed { .. } => ErrorKind::Unrecovered,
        }
    }
}

impl QueryError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            QueryError::Scan(e) => e.kind(),
            QueryError::Report(e) => match e {
                ReportError::UnsupportedSegment { .. } => ErrorKind::Unsupported,
                // A segment naming an LV the VG lacks.
                ReportError::UnknownLv { .. } | ReportError::UnknownPv { .. } => {
                    ErrorKind::Inconsistent
                }
                ReportError::PvCount { .. } => ErrorKind::System,
            },
            QueryError::Dm(e) => e.kind(),
            QueryError::NoSuchVg(_) => ErrorKind::NotFound,
        }
    }
}

impl GenlError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            GenlError::NoModule | GenlError::Version(_) | GenlError::HeaderSize(_) => {
                ErrorKind::Unsupported
            }
            GenlError::Socket(e) | GenlError::Errno(e) => io_kind(e),
            GenlError::Decode(_) | GenlError::NoAnswer(_) => ErrorKind::System,
        }
    }
}

impl DrbdError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DrbdError::Genl(e) => e.kind(),
            DrbdError::Refused { code, .. } => drbd_code_kind(*code),
        }
    }
}

/// DRBD's ret_codes (drbd/codes.rs names them): what is not configured is
/// not there, what does not fit has no room; the rest are DRBD's refusals
/// (a peer still Primary, a disk not UpToDate...).
fn drbd_code_kind(code: i32) -> ErrorKind {
    match code {
        // ERR_MINOR_INVALID, ERR_NO_DISK, ERR_RES_NOT_KNOWN
        127 | 138 | 158 => ErrorKind::NotFound,
        // ERR_DISK_TOO_SMALL, ERR_MD_DISK_TOO_SMALL
        111 | 112 => ErrorKind::NoSpace,
        // ERR_NOMEM, ERR_NOMEM_BITMAP; ERR_PERM (a privilege, as
        // permission denied elsewhere)
        122 | 140 | 152 => ErrorKind::System,
        // ERR_MINOR_OR_VOLUME_EXISTS
        161 => ErrorKind::AlreadyExists,
        _ => ErrorKind::Refused,
    }
}

impl MdError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            MdError::Device(e) => e.kind(),
            MdError::NotFound { .. } => ErrorKind::NotFound,
            MdError::OtherVersion { .. } => ErrorKind::Unsupported,
            MdError::Inconsistent { .. } => ErrorKind::Inconsistent,
            MdError::TooSmall { .. } => ErrorKind::NoSpace,
        }
    }
}

impl AdmError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AdmError::Config(_) => ErrorKind::InvalidInput,
            AdmError::Drbd(e) => e.kind(),
            AdmError::Md(e) => e.kind(),
            AdmError::Signature(e) => e.kind(),
            AdmError::Refused { refusal, .. } => refusal.kind,
            AdmError::UndoFailed { .. } => ErrorKind::Unrecovered,
        }
    }
}

impl FsError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            FsError::Read { source, .. } => io_kind(source),
            FsError::Spawn { .. } => ErrorKind::Unsupported,
            FsError::Unmount { .. } => ErrorKind::Busy,
            // EBUSY: frozen already (by someone else).
            FsError::Freeze { source, .. } => io_kind(source),
            FsError::Thaw { .. } => ErrorKind::Unrecovered,
            FsError::Tool { .. }
            | FsError::MountPoint { .. }
            | FsError::Mount { .. }
            | FsError::OnlineResize { .. }
            | FsError::RemoveMountPoint { .. } => ErrorKind::System,
        }
    }
}

impl LxcError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LxcError::Name { .. } | LxcError::NotStatic { .. } | LxcError::NotElf { .. } => {
                ErrorKind::InvalidInput
            }
            LxcError::Io { source, .. } => io_kind(source),
            LxcError::Config { .. } => ErrorKind::Inconsistent,
            LxcError::NotOurs { .. } => ErrorKind::Refused,
            LxcError::Spawn { .. } => ErrorKind::Unsupported,
            LxcError::Command { .. } => ErrorKind::System,
        }
    }
}

impl StackError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StackError::File(e) => match e.unreadable {
                Some(std::io::ErrorKind::NotFound) => ErrorKind::NotFound,
                // Not text, or a directory: the path given is wrong.
                Some(std::io::ErrorKind::InvalidData | std::io::ErrorKind::IsADirectory) | None => {
                    ErrorKind::InvalidInput
                }
                Some(_) => ErrorKind::System,
            },
            StackError::Volume(e) => e.kind(),
            StackError::Thin(e) => e.kind(),
            StackError::Adm(e) => e.kind(),
            StackError::Drbd(e) => e.kind(),
            StackError::Op(e) => e.kind(),
            StackError::Scan(e) => e.kind(),
            StackError::Dm(e) => e.kind(),
            StackError::Fs(e) => e.kind(),
            StackError::Lxc(e) => e.kind(),
            StackError::Refused(r) => r.kind,
            StackError::Step { source, .. } => source.kind(),
            StackError::Io { source, .. } => io_kind(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_layers_down() {
        let missing = ScanError::NoSuchVg("vg0".into());
        let op = OpError::from(missing);
        assert_eq!(op.kind(), ErrorKind::NotFound);
        let stack = StackError::Op(op);
        assert_eq!(Error::from(stack).kind(), ErrorKind::NotFound);
    }

    #[test]
    fn errnos_decide_kernel_failures() {
        assert_eq!(errno_kind(nix::libc::EBUSY), ErrorKind::Busy);
        assert_eq!(errno_kind(nix::libc::ENOSPC), ErrorKind::NoSpace);
        assert_eq!(errno_kind(nix::libc::EEXIST), ErrorKind::AlreadyExists);
        assert_eq!(errno_kind(nix::libc::EIO), ErrorKind::System);
    }

    #[test]
    fn input_errors_keep_their_kind_and_message() {
        let e = Error::invalid("-L 12Q: not a size");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.to_string(), "-L 12Q: not a size");
        assert_eq!(Error::refused("add --yes").kind(), ErrorKind::Refused);
    }

    #[test]
    fn kinds_serialize_as_kebab_case() {
        let json = serde_json::to_string(&ErrorKind::AlreadyExists).unwrap();
        assert_eq!(json, "\"already-exists\"");
    }

    #[test]
    fn drbd_refusals_take_their_kind_from_drbd_s_code() {
        let refused = |code| DrbdError::Refused {
            what: "primary r0".into(),
            code,
            name: crate::drbd::codes::describe(code).0,
            meaning: crate::drbd::codes::describe(code).1,
            info: None,
        };
        assert_eq!(refused(158).kind(), ErrorKind::NotFound); // ERR_RES_NOT_KNOWN
        assert_eq!(refused(127).kind(), ErrorKind::NotFound); // ERR_MINOR_INVALID
        assert_eq!(refused(111).kind(), ErrorKind::NoSpace); // ERR_DISK_TOO_SMALL
        assert_eq!(refused(151).kind(), ErrorKind::Refused); // ERR_CONNECTED
                                                             // The table's numbers are the codes they name.
        assert_eq!(crate::drbd::codes::describe(158).0, "ERR_RES_NOT_KNOWN");
        assert_eq!(crate::drbd::codes::describe(138).0, "ERR_NO_DISK");
        assert_eq!(crate::drbd::codes::describe(112).0, "ERR_MD_DISK_TOO_SMALL");
        assert_eq!(crate::drbd::codes::describe(140).0, "ERR_NOMEM_BITMAP");
    }
}
