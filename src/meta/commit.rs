//! Writing a new version of a VG's metadata the way lvm2 does: the text
//! into every metadata area of every PV (after the committed copy, never
//! over it), each header's precommit slot pointed at it; only when all of
//! that is on disk, each header's commit slot. A failure before the commit
//! phase leaves every PV's committed copy untouched (the precommit slots are
//! cleared again); a failure during it leaves some PVs newer, and readers
//! take the newest, as lvm2's do. One seqno increment per commit.

use std::path::{Path, PathBuf};

use super::device::{Device, DeviceError};
use super::label::{DiskLocn, Label};
use super::mda::{self, MdaError, MdaHeader, RawLocn, Slot, MDA_HEADER_SIZE};
use super::model::{Metadata, WriteContext};

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("{path}: metadata area at byte {start}: {source}")]
    Mda {
        path: PathBuf,
        start: u64,
        source: MdaError,
    },
    #[error("{path}: writing the label: {source}")]
    Label {
        path: PathBuf,
        source: super::label::LabelError,
    },
    #[error(
        "volume group {vg}: no metadata area to write to (every PV has metadataignore set or none)"
    )]
    NoMetadataArea { vg: String },
    #[error(
        "volume group {vg}: writing seqno {seqno} failed on {path} before anything was committed \
         (the previous metadata is intact): {source}"
    )]
    Aborted {
        vg: String,
        seqno: u64,
        path: PathBuf,
        source: Box<CommitError>,
    },
}

pub type Result<T> = std::result::Result<T, CommitError>;

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
/// area of `devices`, the VG's PVs, and commits it. Returns the text written.
pub fn commit(
    metadata: &Metadata,
    ctx: &WriteContext,
    devices: &[(PathBuf, Label)],
) -> Result<String> {
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
        // Undo the precommits: slot 1 cleared, slot 0 never touched.
        for t in targets.iter_mut().filter(|t| t.new.is_some()) {
            let mut header = t.header.clone();
            header.precommit(&RawLocn::default());
            let _ = write_header(&t.dev, &header);
        }
        return Err(CommitError::Aborted {
            vg: vg.name.clone(),
            seqno: vg.seqno,
            path,
            source: Box::new(e),
        });
    }

    // Phase 2: commit slot, everywhere.
    for t in &mut targets {
        let locn = t.new.expect("precommitted above");
        let mut header = t.header.clone();
        header.commit(&locn);
        write_header(&t.dev, &header)?;
        debug_assert_eq!(header.slot(Slot::Committed), &locn);
    }
    Ok(text)
}

/// Clears every metadata area of a PV (no copy in either slot), as lvm2
/// does when a PV leaves its VG or the VG is removed.
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
