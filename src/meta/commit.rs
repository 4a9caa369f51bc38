//! Writing a new version of a VG's metadata the way lvm2 does: the text
//! into every metadata area of every PV (after the committed copy, never
//! over it), each header's precommit slot pointed at it; only when all of
//! that is on disk, each header's commit slot. A failure before the commit
//! phase leaves every PV's committed copy untouched (the precommit slots are
//! cleared again); a failure during it leaves some PVs newer, and readers
//! take the newest, as lvm2's do. One seqno increment per commit.
//!
//! The commit point is the first commit slot written: from there on lvm2
//! reads the new metadata, so a PV that then fails is reported as lagging
//! behind (a warning the caller carries on with), not as a failed commit.
//! Before writing anything, each area's committed slot is compared with
//! what the scan read: if someone else committed meanwhile (lvm2 without
//! cairn's lock, another host), the commit refuses and writes nothing.

use std::path::{Path, PathBuf};

use super::device::{Device, DeviceError};
use super::label::{DiskLocn, Label};
use super::mda::{self, MdaError, MdaHeader, RawLocn, Slot, MDA_HEADER_SIZE};
use super::model::{Metadata, WriteContext};

/// Why a commit of VG metadata failed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Opening or I/O on a PV failed.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// A metadata area header or text could not be read or placed.
    #[error("{path}: metadata area at byte {start}: {source}")]
    Mda {
        /// The PV.
        path: PathBuf,
        /// Absolute byte offset of the metadata area on the PV.
        start: u64,
        /// What failed.
        source: MdaError,
    },
    /// The label could not be encoded.
    #[error("{path}: writing the label: {source}")]
    Label {
        /// The PV.
        path: PathBuf,
        /// What failed.
        source: super::label::LabelError,
    },
    /// No PV of the VG has a metadata area in use.
    #[error(
        "volume group {vg}: no metadata area to write to (every PV has metadataignore set or none)"
    )]
    NoMetadataArea {
        /// The VG's name.
        vg: String,
    },
    /// A metadata area changed since it was read: another writer committed meanwhile.
    #[error(
        "volume group {vg}: the metadata on {path} (area at byte {start}) changed since cairn read \
         it: someone else (lvm2 without cairn's lock, or another host) committed meanwhile; \
         nothing was written: check what changed (lvs, vgck) and run the command again"
    )]
    Moved {
        /// The VG's name.
        vg: String,
        /// The PV.
        path: PathBuf,
        /// Absolute byte offset of the metadata area on the PV.
        start: u64,
    },
    /// A write failed before the commit point; the previous metadata is intact.
    #[error(
        "volume group {vg}: writing seqno {seqno} failed on {path} before anything was committed \
         (the previous metadata is intact): {source}"
    )]
    Aborted {
        /// The VG's name.
        vg: String,
        /// The seqno being written.
        seqno: u64,
        /// The PV.
        path: PathBuf,
        /// What failed.
        source: Box<CommitError>,
    },
}

/// Result of a commit step.
pub type Result<T> = std::result::Result<T, CommitError>;

/// What a commit expects to find on disk: the committed slot of each
/// metadata area as cairn last read (or wrote) it, by device and area start.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    areas: Vec<(PathBuf, u64, RawLocn)>,
}

impl Expected {
    /// The committed slots the scan read.
    pub fn from_scan(scan: &super::scan::Scan) -> Expected {
        let mut e = Expected::default();
        for pv in &scan.pvs {
            for m in &pv.mdas {
                e.set(&pv.path, m.header.start, *m.header.slot(Slot::Committed));
            }
        }
        e
    }

    fn get(&self, path: &Path, start: u64) -> Option<&RawLocn> {
        self.areas
            .iter()
            .find(|(p, s, _)| p == path && *s == start)
            .map(|(_, _, l)| l)
    }

    fn set(&mut self, path: &Path, start: u64, locn: RawLocn) {
        match self
            .areas
            .iter_mut()
            .find(|(p, s, _)| p == path && *s == start)
        {
            Some(entry) => entry.2 = locn,
            None => self.areas.push((path.to_owned(), start, locn)),
        }
    }
}

/// A PV that did not take a commit the others took: its copy is older.
#[derive(Debug)]
pub struct Lagging {
    /// The PV.
    pub path: PathBuf,
    /// Why it did not take the commit.
    pub source: CommitError,
}

/// A commit past its commit point: the text lvm2 now reads, and the PVs
/// that failed after that point.
#[derive(Debug)]
pub struct Written {
    /// The committed text (without its NUL).
    pub text: String,
    /// PVs that failed after the commit point, their copies older.
    pub lagging: Vec<Lagging>,
}

/// One metadata area to write: where, and (filled in as we go) what.
struct Target {
    dev: Device,
    header: MdaHeader,
    new: Option<RawLocn>,
}

fn mda_err(path: &Path, start: u64) -> impl FnOnce(MdaError) -> CommitError + '_ {
    move |source| CommitError::Mda {
        path: path.to_owned(),
        start,
        source,
    }
}

/// The header of the metadata area `area`, refused if larger than the area
/// (a header sized past it would place copies over the extents after it).
fn read_header(dev: &Device, area: &DiskLocn) -> Result<MdaHeader> {
    let start = area.offset;
    let bytes = dev.read_at(start, MDA_HEADER_SIZE as usize)?;
    let header = MdaHeader::decode(&bytes, start).map_err(mda_err(&dev.path, start))?;
    mda::check_area_size(&header, area.size).map_err(mda_err(&dev.path, start))?;
    Ok(header)
}

fn write_header(dev: &Device, header: &MdaHeader) -> Result<()> {
    dev.write_at(header.start, &header.encode())?;
    Ok(())
}

/// Writes `metadata` (whose seqno the caller has set) to every metadata
/// area of `devices`, the VG's PVs, and commits it; `expected` is checked
/// first and then updated to what this commit wrote. An `Err` means nothing
/// was committed; `Ok` means lvm2 reads the new text now.
pub fn commit(
    metadata: &Metadata,
    ctx: &WriteContext,
    devices: &[(PathBuf, Label)],
    expected: &mut Expected,
) -> Result<Written> {
    let text = metadata.to_text(ctx);
    let vg = &metadata.vg;
    let mut targets = Vec::new();
    for (path, label) in devices {
        for area in &label.pv_header.metadata_areas {
            let dev = Device::open(path, true)?;
            let header = read_header(&dev, area)?;
            if header.is_ignored() {
                continue;
            }
            check_unmoved(&vg.name, path, &header, expected)?;
            targets.push(Target {
                dev,
                header,
                new: None,
            });
        }
    }
    if targets.is_empty() {
        return Err(CommitError::NoMetadataArea {
            vg: vg.name.clone(),
        });
    }
    let mut bytes = text.clone().into_bytes();
    bytes.push(0);
    let locn_for =
        |header: &MdaHeader| -> std::result::Result<(mda::Placement, RawLocn), MdaError> {
            let placement = mda::next_placement(header, bytes.len() as u64)?;
            let locn = RawLocn {
                offset: placement.offset,
                size: placement.size,
                checksum: super::crc::calc_crc(super::crc::INITIAL_CRC, &bytes),
                flags: 0,
            };
            Ok((placement, locn))
        };

    // Phase 1: text and precommit slot, everywhere.
    let mut failure = None;
    for t in targets.iter_mut() {
        let step = (|| -> Result<()> {
            let (placement, locn) =
                locn_for(&t.header).map_err(mda_err(&t.dev.path, t.header.start))?;
            let (head, tail) = bytes.split_at(placement.first.len as usize);
            t.dev
                .write_at(t.header.start + placement.first.offset, head)?;
            if let Some(second) = placement.second {
                t.dev.write_at(t.header.start + second.offset, tail)?;
            }
            if placement.zero_fill.len > 0 {
                t.dev.write_at(
                    t.header.start + placement.zero_fill.offset,
                    &vec![0; placement.zero_fill.len as usize],
                )?;
            }
            let mut header = t.header.clone();
            header.precommit(&locn);
            write_header(&t.dev, &header)?;
            t.header = header;
            t.new = Some(locn);
            Ok(())
        })();
        if let Err(e) = step {
            failure = Some((t.dev.path.clone(), e));
            break;
        }
    }
    if let Some((path, e)) = failure {
        return Err(abort(&targets, vg, path, e));
    }

    // Phase 2: commit slot, everywhere. The first one written is the
    // commit point; a failure after it leaves that PV lagging, not the
    // commit undone (lvm2 already reads the new text from the others).
    let mut lagging = Vec::new();
    let mut committed_any = false;
    for t in &targets {
        let locn = t.new.expect("precommitted above");
        let mut header = t.header.clone();
        header.commit(&locn);
        // The lab's way to fail a PV after the commit point: named per VG,
        // so that only the test's VG is touched.
        let fail_here = committed_any
            && crate::failpoint::ENABLED
            && crate::failpoint::fail(&format!("commit-phase2-after-first:{}", vg.name));
        let written = if fail_here {
            Err(CommitError::Device(DeviceError::Io {
                path: t.dev.path.clone(),
                what: "write (CAIRN_FAIL_AT)",
                offset: header.start,
                len: 512,
                source: std::io::Error::from_raw_os_error(nix::libc::EIO),
            }))
        } else {
            write_header(&t.dev, &header)
        };
        match written {
            Ok(()) => {
                committed_any = true;
                expected.set(&t.dev.path, header.start, locn);
            }
            Err(e) if !committed_any => return Err(abort(&targets, vg, t.dev.path.clone(), e)),
            Err(source) => lagging.push(Lagging {
                path: t.dev.path.clone(),
                source,
            }),
        }
    }
    Ok(Written { text, lagging })
}

/// Undoes the precommits of a commit that reached no commit slot (slot 1
/// cleared, slot 0 never touched) and says where it failed.
fn abort(
    targets: &[Target],
    vg: &super::model::VolumeGroup,
    path: PathBuf,
    e: CommitError,
) -> CommitError {
    for t in targets.iter().filter(|t| t.new.is_some()) {
        let mut header = t.header.clone();
        header.precommit(&RawLocn::default());
        let _ = write_header(&t.dev, &header);
    }
    CommitError::Aborted {
        vg: vg.name.clone(),
        seqno: vg.seqno,
        path,
        source: Box::new(e),
    }
}

/// Clears every metadata area of a PV (no copy in either slot), as lvm2
/// does when a PV leaves its VG or the VG is removed.
/// Refuses when the committed slot of `header`'s area is not the one
/// cairn last read or wrote there: someone committed since (lvm2 without
/// cairn's lock, another host), and writing now would undo their change.
fn check_unmoved(vg: &str, path: &Path, header: &MdaHeader, expected: &Expected) -> Result<()> {
    let moved = expected
        .get(path, header.start)
        .is_some_and(|seen| seen != header.slot(Slot::Committed));
    if moved {
        return Err(CommitError::Moved {
            vg: vg.to_owned(),
            path: path.to_owned(),
            start: header.start,
        });
    }
    Ok(())
}

/// Checks every metadata area of `devices` against `expected` without
/// writing anything (what a change that writes no metadata text, a VG's
/// removal, checks before it clears the areas).
pub fn check_devices_unmoved(
    vg: &str,
    devices: &[(PathBuf, Label)],
    expected: &Expected,
) -> Result<()> {
    for (path, label) in devices {
        let dev = Device::open(path, false)?;
        for area in &label.pv_header.metadata_areas {
            check_unmoved(vg, path, &read_header(&dev, area)?, expected)?;
        }
    }
    Ok(())
}

/// Empties both raw_locn slots of each metadata area of a PV (the text
/// stays, unreferenced), as lvm2 leaves a PV that is in no VG.
pub fn clear_areas(path: &Path, label: &Label) -> Result<()> {
    let dev = Device::open(path, true)?;
    for area in &label.pv_header.metadata_areas {
        let mut header = read_header(&dev, area)?;
        header.raw_locns = Default::default();
        write_header(&dev, &header)?;
    }
    Ok(())
}

/// Rewrites a PV's label (e.g. to set or clear PV_EXT_USED).
pub fn write_label(path: &Path, label: &Label) -> Result<()> {
    let sector = label.encode().map_err(|source| CommitError::Label {
        path: path.to_owned(),
        source,
    })?;
    let dev = Device::open(path, true)?;
    dev.write_at(label.sector * 512, &sector)?;
    Ok(())
}
