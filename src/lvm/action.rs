//! What every LV operation shares: the error they return, the record of
//! what they do (`Action`, printed by `--plan` and kept for the caller) and
//! whether they run or only plan (`Run`). Its own module so that the
//! operations (linear, pool, thin, snapshot, cache, resize, remove) and the
//! activation commands (volume) depend on it rather than on each other.

use std::fmt;

use crate::dm;
use crate::error::{ErrorKind, Refusal};
use crate::meta::alloc::AllocError;
use crate::meta::model::{LogicalVolume, VolumeGroup};
use crate::meta::ops::OpError;

use super::activate::PlanError;
use super::engine::{EngineError, Step};

/// Why an LVM operation on a VG or its LVs (create, resize, remove,
/// activate, cache, snapshot) stopped.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// The metadata layer: scan, lock, commit, or its own refusal.
    #[error(transparent)]
    Op(#[from] OpError),
    /// The LV's tables could not be planned from its metadata.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The device-mapper steps failed (and what they did was undone).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Device-mapper refused a read (status, table, device list).
    #[error(transparent)]
    Dm(#[from] dm::Error),
    /// lvm.conf does not parse.
    #[error(transparent)]
    Config(#[from] super::config::ConfigError),
    /// The VG or one of its LVs refused, with the refusal's kind (a VG
    /// lvm2 would not activate on this host, an LV that does not exist,
    /// an interrupted thin command that cannot be completed).
    #[error("volume group {vg} {refusal}")]
    Refused {
        /// The VG.
        vg: String,
        /// Why, and what kind of refusal it is.
        refusal: Refusal,
    },
    #[error(
        "volume group {vg}: {done}; refused for partial LV(s) (a PV they need is missing):\n  {}",
        partial.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  ")
    )]
    /// Some LVs of the VG need a PV that is missing: what could be done
    /// was done, these were refused.
    Partial {
        /// The VG.
        vg: String,
        /// What was done for the other LVs ("activated", ...).
        done: &'static str,
        /// Why each partial LV was refused.
        partial: Vec<PlanError>,
    },
}

impl From<crate::meta::scan::ScanError> for VolumeError {
    fn from(e: crate::meta::scan::ScanError) -> Self {
        VolumeError::Op(OpError::from(e))
    }
}

impl From<crate::meta::lock::LockError> for VolumeError {
    fn from(e: crate::meta::lock::LockError) -> Self {
        VolumeError::Op(OpError::from(e))
    }
}

pub type Result<T> = std::result::Result<T, VolumeError>;

/// A refusal of a change to VG `vg`, of this kind: the metadata layer's
/// own refusal, so that it reads the same whichever layer refused.
pub(crate) fn refused(vg: &str, kind: ErrorKind, why: String) -> VolumeError {
    VolumeError::Op(OpError::refused(vg, kind, why))
}

/// LV `name` of `vg`, or the refusal (kind NotFound) that it has none.
pub(crate) fn find_lv<'v>(vg: &'v VolumeGroup, name: &str) -> Result<&'v LogicalVolume> {
    vg.lv(name).ok_or_else(|| {
        refused(
            &vg.name,
            ErrorKind::NotFound,
            format!("has no LV named {name}"),
        )
    })
}

/// [`find_lv`], refused also (kind InvalidInput) when it is a hidden part
/// of another LV (a pool's `_tdata`, a cache's `_corig`): `verb` that LV
/// instead.
pub(crate) fn find_visible_lv<'v>(
    vg: &'v VolumeGroup,
    name: &str,
    verb: &str,
) -> Result<&'v LogicalVolume> {
    let lv = find_lv(vg, name)?;
    if !vg.lv_is_visible(lv) {
        return Err(refused(
            &vg.name,
            ErrorKind::InvalidInput,
            format!("LV {name} is a hidden part of another LV: {verb} that LV instead"),
        ));
    }
    Ok(lv)
}

/// A change to VG `vg` refused because its extents could not be
/// allocated: [`ErrorKind::NoSpace`] when the VG is short of free extents.
pub(crate) fn alloc_refused(vg: &str, e: AllocError) -> VolumeError {
    VolumeError::Op(OpError::Refused {
        vg: vg.to_owned(),
        refusal: e.into(),
    })
}

/// One thing a volume command does, for `--plan` and for the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A metadata commit, with what it changes.
    Commit {
        /// The volume group's name.
        vg: String,
        /// The metadata's sequence number once committed (lvm2's `seqno`).
        seqno: u64,
        /// What the commit changes, in words.
        what: String,
    },
    /// A device-mapper change (create, load, resume, message, remove, ...).
    Dm(Step),
    /// Zeroes the start of a new LV.
    Wipe {
        /// The device written through.
        path: String,
        /// How much is zeroed, in bytes from the start.
        bytes: u64,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Commit { vg, seqno, what } => {
                write!(f, "metadata commit {vg} seqno {seqno}: {what}")
            }
            Action::Dm(step) => step.fmt(f),
            Action::Wipe { path, bytes } => write!(f, "zero the first {bytes} bytes of {path}"),
        }
    }
}

/// Run the steps, or only compute them (`--plan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// Commit the metadata and change the kernel.
    Apply,
    /// Change nothing: return the actions that `Apply` would take.
    PlanOnly,
}
