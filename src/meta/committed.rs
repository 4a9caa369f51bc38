//! A change past its commit point. Once one PV's commit slot holds the new
//! metadata, lvm2 reads the new state: what fails after that (another PV's
//! header, the backup file) does not undo the change, and a caller that
//! treated it as a failed change would leave its kernel steps half-done.
//! Such failures are warnings: carried with the result, and printed by the
//! command at its end.

use std::path::PathBuf;

use super::archive::ArchiveError;
use super::commit::CommitError;
use super::model::Metadata;

/// Something that failed after a commit point.
#[derive(Debug, thiserror::Error)]
pub enum CommitWarning {
    /// A PV did not take the commit; its copy is older than the others.
    #[error(
        "volume group {vg}: seqno {seqno} is committed, but {path} did not take it ({source}): \
         its copy is older until the next change (lvm2 reports the VG inconsistent; \
         `vgck --updatemetadata {vg}` rewrites it)"
    )]
    PvLagging {
        /// The VG's name.
        vg: String,
        /// The committed seqno.
        seqno: u64,
        /// The PV.
        path: PathBuf,
        /// What failed.
        source: Box<CommitError>,
    },
    /// The backup file (lvm2's /etc/lvm/backup) was not written.
    #[error(
        "volume group {vg}: seqno {seqno} is committed, but its backup file was not written \
         ({source}): run `vgcfgbackup {vg}`"
    )]
    Backup {
        /// The VG's name.
        vg: String,
        /// The committed seqno.
        seqno: u64,
        /// What failed.
        source: ArchiveError,
    },
}

/// A change that reached its commit point, with what failed after it.
#[derive(Debug)]
#[must_use = "the warnings of a commit are for the user"]
pub struct Committed {
    /// The metadata as committed.
    pub metadata: Metadata,
    /// What failed after the commit point.
    pub warnings: Vec<CommitWarning>,
}

impl Committed {
    /// The metadata, the warnings recorded for the caller ([`crate::warnings`]).
    pub fn deferring_warnings(self) -> Metadata {
        defer(self.warnings);
        self.metadata
    }
}

/// Records warnings of commits whose callers return no [`Committed`] (a
/// change of several commits), for the caller to take at its end.
pub fn defer(warnings: Vec<CommitWarning>) {
    for w in warnings {
        crate::warnings::record(w);
    }
}
