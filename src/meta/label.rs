//! The LVM2 label and PV header: the 512-byte sector (one of sectors 0-3,
//! sector 1 as pvcreate writes it) that makes a device a PV.
//!
//! Layout, all integers little-endian (lvm2 lib/label/label.h,
//! lib/format_text/layout.h):
//!
//! ```text
//!   0  id "LABELONE"          8  sector_xl u64 (the sector this label is in)
//!  16  crc_xl u32 (CRC of bytes 20..512)   20  offset_xl u32 (= 32)
//!  24  type "LVM2 001"
//!  32  pv_header: pv_uuid[32] (ASCII, no dashes), device_size_xl u64,
//!  72  data areas {offset u64, size u64}..., terminator {0, 0},
//!      metadata areas {offset, size}..., terminator {0, 0},
//!      pv_header_extension {version u32, flags u32},
//!      bootloader areas {offset, size}..., terminator {0, 0}
//! ```
//!
//! lvm2 ends each list at the first entry whose offset is 0, and treats an
//! extension version of 0 as "no extension"; both rules are kept here so that
//! cairn reads exactly what lvm2 reads. Everything after the structure is zero
//! in what lvm2 writes, so [`Label::encode`] is byte-identical to lvm2's label.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::meta::crc::{calc_crc, INITIAL_CRC};

/// Bytes in a sector, and in a label.
pub const SECTOR_SIZE: usize = 512;
/// lvm2 looks for a label in sectors 0..LABEL_SCAN_SECTORS (`LABEL_SCAN_SECTORS`).
pub const LABEL_SCAN_SECTORS: u64 = 4;
/// The bytes [`find_label`] wants: the first four sectors of the device.
pub const LABEL_SCAN_BYTES: usize = SECTOR_SIZE * LABEL_SCAN_SECTORS as usize;
/// The sector pvcreate puts its label in.
pub const DEFAULT_LABEL_SECTOR: u64 = 1;
/// `LABEL_ID`.
pub const LABEL_ID: &[u8; 8] = b"LABELONE";
/// `LVM2_LABEL`: the type of a text-format (LVM2) label.
pub const LABEL_TYPE: &[u8; 8] = b"LVM2 001";
/// Where the pv_header starts, from the start of the label (`offset_xl`).
pub const PV_HEADER_OFFSET: u32 = 32;
/// `PV_HEADER_EXTENSION_VSN`: what lvm2 2.03 writes.
pub const PV_HEADER_EXTENSION_VERSION: u32 = 2;
/// `PV_EXT_USED`: the PV belongs to a VG.
pub const PV_EXT_USED: u32 = 1;

/// Length of a PV uuid without dashes (`ID_LEN`).
pub const UUID_LEN: usize = 32;

// Offsets inside the 512-byte label.
const SECTOR_XL: usize = 8;
const CRC_XL: usize = 16;
const OFFSET_XL: usize = 20;
const TYPE: usize = 24;
const PV_UUID: usize = PV_HEADER_OFFSET as usize;
const DEVICE_SIZE: usize = PV_UUID + UUID_LEN;
const DISK_AREAS: usize = DEVICE_SIZE + 8;
const LOCN_SIZE: usize = 16;
const EXT_HEADER_SIZE: usize = 8;

/// lvm2's grouping of the 32 uuid characters when it prints them.
const UUID_GROUPS: [usize; 7] = [6, 4, 4, 4, 4, 4, 6];

/// Something wrong with a PV uuid given as text or found on disk.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UuidError {
    /// Not 32 characters once dashes are removed.
    #[error("uuid has {found} characters without dashes, expected 32")]
    WrongLength {
        /// Characters found, dashes not counted.
        found: usize,
    },
    /// `position` counts characters of the input (dashes included).
    #[error("uuid has invalid character {ch:?} at position {position} (only 0-9, a-z, A-Z)")]
    InvalidChar {
        /// The character.
        ch: char,
        /// Its index in the input.
        position: usize,
    },
}

/// A PV uuid: 32 ASCII characters from [0-9a-zA-Z], stored without dashes.
///
/// lvm2's `id_valid` also accepts '!' and '#', but `id_create` never makes
/// them; cairn accepts only what lvm2 generates.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PvUuid([u8; UUID_LEN]);

impl PvUuid {
    /// The uuid as stored in the pv_header.
    pub fn from_bytes(bytes: [u8; UUID_LEN]) -> Result<PvUuid, UuidError> {
        if let Some(position) = bytes.iter().position(|b| !b.is_ascii_alphanumeric()) {
            return Err(UuidError::InvalidChar {
                ch: char::from(bytes[position]),
                position,
            });
        }
        Ok(PvUuid(bytes))
    }

    /// Parses a uuid as lvm2's `id_read_format` does: dashes anywhere are
    /// dropped, and 32 valid characters must remain. Accepts both the dashed
    /// form ("uYUppv-LLIU-dFLP-dHec-f4ij-ONCV-q7M7Ad") and the bare one.
    pub fn parse(text: &str) -> Result<PvUuid, UuidError> {
        let mut bytes = [0u8; UUID_LEN];
        let mut len = 0;
        for (position, ch) in text.chars().enumerate() {
            if ch == '-' {
                continue;
            }
            if !ch.is_ascii_alphanumeric() {
                return Err(UuidError::InvalidChar { ch, position });
            }
            if len < UUID_LEN {
                // is_ascii_alphanumeric above makes this a one-byte char.
                bytes[len] = ch as u8;
            }
            len += 1;
        }
        if len != UUID_LEN {
            return Err(UuidError::WrongLength { found: len });
        }
        Ok(PvUuid(bytes))
    }

    /// The 32 bytes as stored on disk.
    pub fn as_bytes(&self) -> &[u8; UUID_LEN] {
        &self.0
    }

    /// The 32 characters without dashes.
    pub fn as_str(&self) -> &str {
        // Only ASCII alphanumerics get in (from_bytes and parse check).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The uuid with lvm2's dashes (6-4-4-4-4-4-6), as lvm2 prints it and as
    /// it appears in the metadata text (`id = "..."`).
    pub fn to_dashed(&self) -> String {
        let mut out = String::with_capacity(UUID_LEN + UUID_GROUPS.len() - 1);
        let mut start = 0;
        for (i, len) in UUID_GROUPS.iter().enumerate() {
            if i > 0 {
                out.push('-');
            }
            out.push_str(&self.as_str()[start..start + len]);
            start += len;
        }
        out
    }
}

impl fmt::Display for PvUuid {
    /// The dashed form, like lvm2's reports.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_dashed())
    }
}

impl fmt::Debug for PvUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PvUuid({})", self.to_dashed())
    }
}

impl FromStr for PvUuid {
    type Err = UuidError;
    fn from_str(s: &str) -> Result<PvUuid, UuidError> {
        PvUuid::parse(s)
    }
}

/// An area on the PV (`struct disk_locn`), in bytes from the start of the
/// device. A data area of size 0 means "to the end of the device".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DiskLocn {
    /// Start in bytes from the device start.
    pub offset: u64,
    /// Length in bytes; 0 for a data area: to the end of the device.
    pub size: u64,
}

/// `struct pv_header_extension`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvHeaderExtension {
    /// 1 added bootloader areas, 2 added [`PV_EXT_USED`]. Never 0: on disk,
    /// version 0 means there is no extension.
    pub version: u32,
    /// [`PV_EXT_USED`] once the PV is in a VG.
    pub flags: u32,
    /// Bootloader areas (`pvcreate --bootloaderareasize`), usually none.
    pub bootloader_areas: Vec<DiskLocn>,
}

/// `struct pv_header`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvHeader {
    /// The PV UUID.
    pub uuid: PvUuid,
    /// The device size in bytes when the label was written.
    pub device_size: u64,
    /// Where the extents are: lvm2 writes one, {pe_start, 0}.
    pub data_areas: Vec<DiskLocn>,
    /// Metadata areas: {mda_start, mda_size}, one by default.
    pub metadata_areas: Vec<DiskLocn>,
    /// The extension after the lists; None: absent (labels of old lvm2).
    pub extension: Option<PvHeaderExtension>,
}

/// A decoded LVM2 label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The sector the label is in (0..4), recorded in the label itself.
    pub sector: u64,
    /// The PV header that follows the label in the same sector.
    pub pv_header: PvHeader,
}

/// Why a label could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LabelError {
    /// Fewer than 512 bytes where the label sector should be.
    #[error("label in sector {sector}: need {SECTOR_SIZE} bytes, got {found}")]
    Truncated {
        /// The label's sector (0..4, 512 bytes each).
        sector: u64,
        /// Bytes available.
        found: usize,
    },
    /// No `LABELONE` id: no label in this sector.
    #[error("label in sector {sector}: id is {found:?}, not \"LABELONE\"")]
    BadId {
        /// The label's sector (0..4, 512 bytes each).
        sector: u64,
        /// The 8 id bytes, lossily as text.
        found: String,
    },
    /// The label records another sector than the one it was read from.
    #[error("label in sector {sector} says it belongs in sector {recorded}")]
    WrongSector {
        /// The label's sector (0..4, 512 bytes each).
        sector: u64,
        /// The sector the label records.
        recorded: u64,
    },
    /// The label's CRC does not match its bytes.
    #[error("label in sector {sector}: bad CRC {found:#x}, expected {expected:#x}")]
    BadCrc {
        /// The label's sector (0..4, 512 bytes each).
        sector: u64,
        /// The CRC the label carries.
        found: u32,
        /// The CRC of bytes 20..512 as they are.
        expected: u32,
    },
    /// The pv_header is not at byte 32, where lvm2 puts it (`offset_xl`).
    #[error("label in sector {sector}: pv_header offset {offset}, expected {PV_HEADER_OFFSET}")]
    BadOffset {
        /// The label's sector (0..4, 512 bytes each).
        sector: u64,
        /// The pv_header offset recorded, in bytes from the label start.
        offset: u32,
    },
    /// A label type other than `LVM2 001` (not lvm2's text format).
    #[error("label in sector {sector}: type {found:?}, not \"LVM2 001\"")]
    BadType {
        /// The label's sector (0..4, 512 bytes each).
        sector: u64,
        /// The 8 type bytes, lossily as text.
        found: String,
    },
    /// The PV UUID in the pv_header is not one lvm2 would write.
    #[error("label in sector {sector}: PV uuid: {source}")]
    BadUuid {
        /// The label's sector (0..4, 512 bytes each).
        sector: u64,
        /// What is wrong with it.
        source: UuidError,
    },
    /// A disk_locn list runs to the end of the sector without its zero entry.
    #[error("label in sector {sector}: {list} list has no terminator within the sector")]
    Unterminated {
        /// The label's sector (0..4, 512 bytes each).
        sector: u64,
        /// Which list: "data area", "metadata area" or "bootloader area".
        list: &'static str,
    },
    /// The pv_header extension would not fit in the sector.
    #[error("label in sector {sector}: no room for the pv_header extension at byte {at}")]
    NoRoomForExtension {
        /// The label's sector (0..4, 512 bytes each).
        sector: u64,
        /// Byte in the sector where it would start.
        at: usize,
    },
    /// Writing a label outside sectors 0-3.
    #[error("cannot write a label in sector {sector}: lvm2 only looks in sectors 0-3")]
    SectorOutOfRange {
        /// The label's sector (0..4, 512 bytes each).
        sector: u64,
    },
    /// The encoded label would not fit in a sector.
    #[error("cannot write a label: it needs {needed} bytes, a sector has {SECTOR_SIZE}")]
    TooLarge {
        /// Bytes it needs.
        needed: usize,
    },
    /// An area with offset 0, which would end its list early on disk.
    #[error("cannot write a label: {list} area {index} has offset 0, which ends the list on disk")]
    ZeroOffset {
        /// Which list: "data", "metadata" or "bootloader".
        list: &'static str,
        /// The area's index in its list.
        index: usize,
    },
    /// A pv_header without a data area.
    #[error("cannot write a label without a data area (lvm2 refuses too)")]
    NoDataArea,
    /// A pv_header extension of version 0, which on disk means "none".
    #[error("cannot write a pv_header extension of version 0: on disk 0 means no extension")]
    ExtensionVersionZero,
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Printable form of on-disk bytes for error messages.
fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The CRC lvm2 keeps in a label: bytes 20 (offset_xl) to the end of the sector.
fn label_crc(sector: &[u8; SECTOR_SIZE]) -> u32 {
    calc_crc(INITIAL_CRC, &sector[OFFSET_XL..])
}

/// Reads a `{0,0}`-terminated list (lvm2: ends at the first offset 0)
/// starting at `at`; returns the entries and the position after the
/// terminator.
fn read_locns(
    sector: &[u8; SECTOR_SIZE],
    mut at: usize,
    number: u64,
    list: &'static str,
) -> Result<(Vec<DiskLocn>, usize), LabelError> {
    let mut out = Vec::new();
    loop {
        if at + LOCN_SIZE > SECTOR_SIZE {
            return Err(LabelError::Unterminated {
                sector: number,
                list,
            });
        }
        let offset = le_u64(sector, at);
        let size = le_u64(sector, at + 8);
        at += LOCN_SIZE;
        if offset == 0 {
            return Ok((out, at));
        }
        out.push(DiskLocn { offset, size });
    }
}

impl Label {
    /// Decodes the label in `sector` (at least 512 bytes; only the first 512
    /// are read), which was read from sector `sector_number` of the device.
    /// Checks what lvm2 checks (id, sector, CRC, type) and that the pv_header
    /// fits in the sector.
    pub fn decode(sector: &[u8], sector_number: u64) -> Result<Label, LabelError> {
        let Some(bytes) = sector.first_chunk::<SECTOR_SIZE>() else {
            return Err(LabelError::Truncated {
                sector: sector_number,
                found: sector.len(),
            });
        };
        if &bytes[..SECTOR_XL] != LABEL_ID {
            return Err(LabelError::BadId {
                sector: sector_number,
                found: show(&bytes[..SECTOR_XL]),
            });
        }
        let recorded = le_u64(bytes, SECTOR_XL);
        if recorded != sector_number {
            return Err(LabelError::WrongSector {
                sector: sector_number,
                recorded,
            });
        }
        let found = le_u32(bytes, CRC_XL);
        let expected = label_crc(bytes);
        if found != expected {
            return Err(LabelError::BadCrc {
                sector: sector_number,
                found,
                expected,
            });
        }
        // lvm2 would follow any offset; it has only ever written 32, and a
        // different one in a label with a good CRC is not something lvm2 made.
        let offset = le_u32(bytes, OFFSET_XL);
        if offset != PV_HEADER_OFFSET {
            return Err(LabelError::BadOffset {
                sector: sector_number,
                offset,
            });
        }
        if &bytes[TYPE..TYPE + 8] != LABEL_TYPE {
            return Err(LabelError::BadType {
                sector: sector_number,
                found: show(&bytes[TYPE..TYPE + 8]),
            });
        }
        let pv_header = decode_pv_header(bytes, sector_number)?;
        Ok(Label {
            sector: sector_number,
            pv_header,
        })
    }

    /// The 512 bytes lvm2 would write for this label: header, pv_header,
    /// zeros, CRC. Fails for what lvm2 could not write or read back the
    /// same (sector beyond 3, too many areas, an area at offset 0, no data
    /// area, extension version 0).
    pub fn encode(&self) -> Result<[u8; SECTOR_SIZE], LabelError> {
        if self.sector >= LABEL_SCAN_SECTORS {
            return Err(LabelError::SectorOutOfRange {
                sector: self.sector,
            });
        }
        let pvh = &self.pv_header;
        if pvh.data_areas.is_empty() {
            return Err(LabelError::NoDataArea);
        }
        let lists: [(&'static str, &[DiskLocn]); 3] = [
            ("data", &pvh.data_areas),
            ("metadata", &pvh.metadata_areas),
            (
                "bootloader",
                pvh.extension
                    .as_ref()
                    .map_or(&[][..], |e| &e.bootloader_areas),
            ),
        ];
        for (list, locns) in lists {
            if let Some(index) = locns.iter().position(|l| l.offset == 0) {
                return Err(LabelError::ZeroOffset { list, index });
            }
        }
        if pvh.extension.as_ref().is_some_and(|e| e.version == 0) {
            return Err(LabelError::ExtensionVersionZero);
        }
        let needed = pv_header_len(pvh);
        if needed > SECTOR_SIZE {
            return Err(LabelError::TooLarge { needed });
        }

        let mut out = [0u8; SECTOR_SIZE];
        out[..SECTOR_XL].copy_from_slice(LABEL_ID);
        out[SECTOR_XL..CRC_XL].copy_from_slice(&self.sector.to_le_bytes());
        out[OFFSET_XL..TYPE].copy_from_slice(&PV_HEADER_OFFSET.to_le_bytes());
        out[TYPE..PV_UUID].copy_from_slice(LABEL_TYPE);
        out[PV_UUID..DEVICE_SIZE].copy_from_slice(pvh.uuid.as_bytes());
        out[DEVICE_SIZE..DISK_AREAS].copy_from_slice(&pvh.device_size.to_le_bytes());
        let mut at = DISK_AREAS;
        // The terminators and a missing extension are zeros, already there.
        let mut put_list = |at: &mut usize, locns: &[DiskLocn]| {
            for l in locns {
                out[*at..*at + 8].copy_from_slice(&l.offset.to_le_bytes());
                out[*at + 8..*at + 16].copy_from_slice(&l.size.to_le_bytes());
                *at += LOCN_SIZE;
            }
            *at += LOCN_SIZE;
        };
        put_list(&mut at, &pvh.data_areas);
        put_list(&mut at, &pvh.metadata_areas);
        if let Some(ext) = &pvh.extension {
            let ext_at = at;
            at += EXT_HEADER_SIZE;
            put_list(&mut at, &ext.bootloader_areas);
            out[ext_at..ext_at + 4].copy_from_slice(&ext.version.to_le_bytes());
            out[ext_at + 4..ext_at + 8].copy_from_slice(&ext.flags.to_le_bytes());
        }
        let crc = label_crc(&out);
        out[CRC_XL..OFFSET_XL].copy_from_slice(&crc.to_le_bytes());
        Ok(out)
    }
}

/// Bytes from the start of the label to the end of what the pv_header uses
/// (including the room for the extension header that a reader looks at even
/// when there is no extension).
fn pv_header_len(pvh: &PvHeader) -> usize {
    let ext_locns = pvh
        .extension
        .as_ref()
        .map_or(0, |e| (e.bootloader_areas.len() + 1) * LOCN_SIZE);
    DISK_AREAS
        + (pvh.data_areas.len() + 1) * LOCN_SIZE
        + (pvh.metadata_areas.len() + 1) * LOCN_SIZE
        + EXT_HEADER_SIZE
        + ext_locns
}

fn decode_pv_header(bytes: &[u8; SECTOR_SIZE], number: u64) -> Result<PvHeader, LabelError> {
    let mut raw_uuid = [0u8; UUID_LEN];
    raw_uuid.copy_from_slice(&bytes[PV_UUID..DEVICE_SIZE]);
    let uuid = PvUuid::from_bytes(raw_uuid).map_err(|source| LabelError::BadUuid {
        sector: number,
        source,
    })?;
    let device_size = le_u64(bytes, DEVICE_SIZE);
    let (data_areas, at) = read_locns(bytes, DISK_AREAS, number, "data area")?;
    let (metadata_areas, at) = read_locns(bytes, at, number, "metadata area")?;
    if at + EXT_HEADER_SIZE > SECTOR_SIZE {
        return Err(LabelError::NoRoomForExtension { sector: number, at });
    }
    let version = le_u32(bytes, at);
    let extension = if version == 0 {
        None
    } else {
        let flags = le_u32(bytes, at + 4);
        let (bootloader_areas, _) =
            read_locns(bytes, at + EXT_HEADER_SIZE, number, "bootloader area")?;
        Some(PvHeaderExtension {
            version,
            flags,
            bootloader_areas,
        })
    };
    Ok(PvHeader {
        uuid,
        device_size,
        data_areas,
        metadata_areas,
        extension,
    })
}

/// Finds the label in the first four sectors of a device, as lvm2's label
/// scan does (`_find_lvm_header`): the first sector that holds a "LABELONE"
/// with the right sector number, a good CRC and type "LVM2 001" wins, and
/// any other is ignored.
///
/// `first_bytes` is the start of the device, [`LABEL_SCAN_BYTES`] long (or
/// the whole device when it is smaller); only whole sectors are looked at.
///
/// Returns `Ok(None)` when no sector starts with "LABELONE". Where lvm2 would
/// silently skip a damaged label (wrong sector, bad CRC) and see no PV at
/// all, this returns that label's error instead: a device with a damaged
/// label is not a blank device.
pub fn find_label(first_bytes: &[u8]) -> Result<Option<Label>, LabelError> {
    let mut rejected = None;
    for number in 0..LABEL_SCAN_SECTORS {
        let start = number as usize * SECTOR_SIZE;
        let Some(sector) = first_bytes.get(start..start + SECTOR_SIZE) else {
            // A partial sector at the end: report it only if it claims to
            // be a label.
            if let Some(tail) = first_bytes.get(start..) {
                if tail.len() >= LABEL_ID.len() && &tail[..LABEL_ID.len()] == LABEL_ID {
                    rejected.get_or_insert(LabelError::Truncated {
                        sector: number,
                        found: tail.len(),
                    });
                }
            }
            break;
        };
        if &sector[..LABEL_ID.len()] != LABEL_ID {
            continue;
        }
        match Label::decode(sector, number) {
            Ok(label) => return Ok(Some(label)),
            Err(err) => {
                rejected.get_or_insert(err);
            }
        }
    }
    match rejected {
        Some(err) => Err(err),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::meta::fixtures::{FRESH, VGALL_B, VGALL_C, VGALL_D, VGNESTED, VGONE, VGWRAP};

    fn locn(offset: u64, size: u64) -> DiskLocn {
        DiskLocn { offset, size }
    }

    fn sector_of(device: &[u8], n: usize) -> [u8; SECTOR_SIZE] {
        device[n * SECTOR_SIZE..(n + 1) * SECTOR_SIZE]
            .try_into()
            .unwrap()
    }

    /// Every field against pv-fresh-pvck-headers.txt (lvm2's own decoding).
    #[test]
    fn fresh_pv_label_matches_pvck() {
        let label = find_label(&FRESH[..LABEL_SCAN_BYTES]).unwrap().unwrap();
        // label_header at 512, .sector 1, .offset 32, .type LVM2 001
        assert_eq!(label.sector, 1);
        // label_header.crc 0x745a4142
        assert_eq!(le_u32(FRESH, 512 + CRC_XL), 0x745a_4142);
        let pvh = &label.pv_header;
        assert_eq!(pvh.uuid.as_str(), "uYUppvLLIUdFLPdHecf4ijONCVq7M7Ad");
        assert_eq!(pvh.device_size, 268_435_456);
        assert_eq!(pvh.data_areas, vec![locn(1_048_576, 0)]);
        assert_eq!(pvh.metadata_areas, vec![locn(4096, 1_044_480)]);
        assert_eq!(
            pvh.extension,
            Some(PvHeaderExtension {
                version: 2,
                flags: 0,
                bootloader_areas: vec![],
            })
        );
    }

    /// vgwrap-pvck-headers.txt: a PV in a VG (flags 1), small mda, 64 KiB pe_start.
    #[test]
    fn vgwrap_label_matches_pvck() {
        let label = find_label(&VGWRAP[..LABEL_SCAN_BYTES]).unwrap().unwrap();
        assert_eq!(label.sector, 1);
        assert_eq!(le_u32(VGWRAP, 512 + CRC_XL), 0x0512_8942);
        let pvh = &label.pv_header;
        assert_eq!(pvh.uuid.as_str(), "uxVu7ATHO11Jeqv4npVHQUa9eMOrX6Ug");
        assert_eq!(
            pvh.uuid.to_dashed(),
            "uxVu7A-THO1-1Jeq-v4np-VHQU-a9eM-OrX6Ug"
        );
        assert_eq!(pvh.device_size, 67_108_864);
        assert_eq!(pvh.data_areas, vec![locn(65_536, 0)]);
        assert_eq!(pvh.metadata_areas, vec![locn(4096, 61_440)]);
        let ext = pvh.extension.as_ref().unwrap();
        assert_eq!((ext.version, ext.flags), (2, PV_EXT_USED));
        assert!(ext.bootloader_areas.is_empty());
    }

    /// The uuids lvm2 printed in the metadata text (pvck --dump metadata) and
    /// the JSON reports are the label's uuid with dashes.
    #[test]
    fn uuids_match_the_metadata_text() {
        for (device, dashed) in [
            (FRESH, "uYUppv-LLIU-dFLP-dHec-f4ij-ONCV-q7M7Ad"),
            (VGONE, "uYUppv-LLIU-dFLP-dHec-f4ij-ONCV-q7M7Ad"),
            (VGALL_B, "GV5p6B-VeDb-AsGO-YpEP-dGnM-a6Dc-9ZjHJm"),
            (VGALL_C, "Zvq8cU-5RXs-pViC-OnXd-SxOU-jsLF-82PoNg"),
            (VGALL_D, "hr2bWV-2GQi-AQ2L-k5hk-3dyW-AScP-pi0q03"),
            (VGWRAP, "uxVu7A-THO1-1Jeq-v4np-VHQU-a9eM-OrX6Ug"),
        ] {
            let label = find_label(&device[..LABEL_SCAN_BYTES]).unwrap().unwrap();
            assert_eq!(label.pv_header.uuid.to_string(), dashed);
            assert_eq!(PvUuid::parse(dashed).unwrap(), label.pv_header.uuid);
        }
    }

    /// Decode, re-encode: all 512 bytes equal to what lvm2 wrote, for every
    /// fixture (fresh PV, PVs in VGs, a PV on an LV).
    #[test]
    fn encode_is_byte_identical_to_lvm2() {
        for (name, device) in [
            ("pv-fresh", FRESH),
            ("vgone", VGONE),
            ("vgwrap", VGWRAP),
            ("vgall-b", VGALL_B),
            ("vgall-c", VGALL_C),
            ("vgall-d", VGALL_D),
            ("vgnested", VGNESTED),
        ] {
            let label = Label::decode(&device[512..1024], 1).unwrap();
            assert_eq!(
                label.encode().unwrap(),
                sector_of(device, 1),
                "{name}: re-encoded label differs from lvm2's"
            );
        }
    }

    /// After vgcreate lvm2 rewrites the label with PV_EXT_USED; nothing else
    /// in the pv_header changes.
    #[test]
    fn vgcreate_sets_pv_ext_used() {
        let fresh = find_label(FRESH).unwrap().unwrap();
        let used = find_label(VGONE).unwrap().unwrap();
        assert_eq!(fresh.pv_header.extension.as_ref().unwrap().flags, 0);
        let mut expect = fresh.clone();
        expect.pv_header.extension.as_mut().unwrap().flags = PV_EXT_USED;
        assert_eq!(used, expect);
        assert_eq!(expect.encode().unwrap(), sector_of(VGONE, 1));
    }

    #[test]
    fn sectors_0_2_3_of_the_fixtures_hold_no_label() {
        // pvcreate zeroes 0..2048 and writes sector 1 only.
        for n in [0, 2, 3] {
            assert!(sector_of(FRESH, n).iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn no_label_is_none() {
        assert_eq!(find_label(&[0u8; LABEL_SCAN_BYTES]).unwrap(), None);
        assert_eq!(find_label(&[]).unwrap(), None);
        // The mda header at 4096 is not a label.
        assert_eq!(find_label(&FRESH[4096..4096 + 2048]).unwrap(), None);
    }

    #[test]
    fn label_in_any_of_the_four_sectors_is_found() {
        let label = find_label(FRESH).unwrap().unwrap();
        for n in 0..LABEL_SCAN_SECTORS {
            let mut moved = label.clone();
            moved.sector = n;
            let mut dev = vec![0u8; LABEL_SCAN_BYTES];
            let at = n as usize * SECTOR_SIZE;
            dev[at..at + SECTOR_SIZE].copy_from_slice(&moved.encode().unwrap());
            assert_eq!(find_label(&dev).unwrap(), Some(moved));
        }
    }

    #[test]
    fn bad_crc_is_an_error_naming_sector_and_both_crcs() {
        let mut dev = FRESH[..LABEL_SCAN_BYTES].to_vec();
        dev[512 + 100] ^= 0x40; // inside the CRC'd range (the mda locn)
        let err = find_label(&dev).unwrap_err();
        let expected = calc_crc(INITIAL_CRC, &dev[512 + 20..1024]);
        assert_eq!(
            err,
            LabelError::BadCrc {
                sector: 1,
                found: 0x745a_4142,
                expected,
            }
        );
        let msg = err.to_string();
        assert!(msg.contains("sector 1"), "{msg}");
        assert!(msg.contains("0x745a4142"), "{msg}");
        assert!(msg.contains(&format!("{expected:#x}")), "{msg}");
    }

    #[test]
    fn bytes_before_offset_20_are_not_under_the_crc() {
        // lvm2's CRC starts at offset_xl: the id, sector and CRC fields are
        // outside it. Corrupting the CRC field itself is still caught.
        let mut dev = FRESH[..LABEL_SCAN_BYTES].to_vec();
        dev[512 + 16] ^= 1;
        assert!(matches!(
            find_label(&dev),
            Err(LabelError::BadCrc { sector: 1, .. })
        ));
    }

    #[test]
    fn a_good_label_wins_over_a_damaged_one() {
        // lvm2 skips a label with a bad CRC and takes the next good one.
        let mut dev = FRESH[..LABEL_SCAN_BYTES].to_vec();
        let good = sector_of(FRESH, 1);
        dev[..SECTOR_SIZE].copy_from_slice(&good); // says sector 1, sits in 0
        assert_eq!(find_label(&dev).unwrap().unwrap().sector, 1);
        let mut broken = good;
        broken[300] ^= 1;
        dev[1536..2048].copy_from_slice(&good);
        dev[512..1024].copy_from_slice(&broken);
        // Sector 0: wrong sector; 1: bad CRC; 3: wrong sector again. None good.
        assert!(matches!(
            find_label(&dev),
            Err(LabelError::WrongSector {
                sector: 0,
                recorded: 1
            })
        ));
        let mut in3 = find_label(FRESH).unwrap().unwrap();
        in3.sector = 3;
        dev[1536..2048].copy_from_slice(&in3.encode().unwrap());
        assert_eq!(find_label(&dev).unwrap(), Some(in3));
    }

    #[test]
    fn first_good_label_wins() {
        let label = find_label(FRESH).unwrap().unwrap();
        let mut dev = vec![0u8; LABEL_SCAN_BYTES];
        let mut second = label.clone();
        second.sector = 2;
        second.pv_header.device_size = 1;
        dev[512..1024].copy_from_slice(&label.encode().unwrap());
        dev[1024..1536].copy_from_slice(&second.encode().unwrap());
        assert_eq!(find_label(&dev).unwrap(), Some(label));
    }

    #[test]
    fn wrong_sector_number_is_an_error() {
        let err = Label::decode(&FRESH[512..1024], 2).unwrap_err();
        assert_eq!(
            err,
            LabelError::WrongSector {
                sector: 2,
                recorded: 1
            }
        );
        assert_eq!(
            err.to_string(),
            "label in sector 2 says it belongs in sector 1"
        );
    }

    #[test]
    fn truncated_input_is_an_error() {
        for len in [0, 8, 31, 100, 511] {
            let err = Label::decode(&FRESH[512..512 + len], 1).unwrap_err();
            assert_eq!(
                err,
                LabelError::Truncated {
                    sector: 1,
                    found: len
                }
            );
        }
        // A device cut inside its label sector.
        let err = find_label(&FRESH[..700]).unwrap_err();
        assert_eq!(
            err,
            LabelError::Truncated {
                sector: 1,
                found: 188
            }
        );
        // Cut before the label: nothing claims to be one.
        assert_eq!(find_label(&FRESH[..515]).unwrap(), None);
    }

    /// Re-signs a modified label so that only the intended check fails.
    fn resign(mut sector: [u8; SECTOR_SIZE]) -> [u8; SECTOR_SIZE] {
        let crc = label_crc(&sector);
        sector[CRC_XL..OFFSET_XL].copy_from_slice(&crc.to_le_bytes());
        sector
    }

    #[test]
    fn bad_id_offset_and_type_are_errors() {
        let good = sector_of(FRESH, 1);

        let mut s = good;
        s[..8].copy_from_slice(b"LABELTWO");
        let err = Label::decode(&s, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "label in sector 1: id is \"LABELTWO\", not \"LABELONE\""
        );

        let mut s = good;
        s[OFFSET_XL] = 64;
        assert_eq!(
            Label::decode(&resign(s), 1).unwrap_err(),
            LabelError::BadOffset {
                sector: 1,
                offset: 64
            }
        );

        let mut s = good;
        s[TYPE..TYPE + 8].copy_from_slice(b"LVM1 001");
        assert_eq!(
            Label::decode(&resign(s), 1).unwrap_err(),
            LabelError::BadType {
                sector: 1,
                found: "LVM1 001".into()
            }
        );
    }

    #[test]
    fn bad_uuid_is_an_error() {
        let mut s = sector_of(FRESH, 1);
        s[PV_UUID + 5] = b'-';
        assert_eq!(
            Label::decode(&resign(s), 1).unwrap_err(),
            LabelError::BadUuid {
                sector: 1,
                source: UuidError::InvalidChar {
                    ch: '-',
                    position: 5
                }
            }
        );
    }

    #[test]
    fn unterminated_lists_are_errors_not_panics() {
        let mut s = sector_of(FRESH, 1);
        // Fill every disk_locn slot after the uuid with non-zero offsets.
        for at in (DISK_AREAS..SECTOR_SIZE).step_by(LOCN_SIZE) {
            if at + 8 <= SECTOR_SIZE {
                s[at..at + 8].copy_from_slice(&4096u64.to_le_bytes());
            }
        }
        assert_eq!(
            Label::decode(&resign(s), 1).unwrap_err(),
            LabelError::Unterminated {
                sector: 1,
                list: "data area"
            }
        );
    }

    #[test]
    fn offset_zero_ends_a_list_like_lvm2() {
        // lvm2 stops a list at offset 0 even if size is not 0.
        let mut s = sector_of(FRESH, 1);
        // data area terminator at 88: give it a size.
        s[88 + 8..88 + 16].copy_from_slice(&7u64.to_le_bytes());
        let label = Label::decode(&resign(s), 1).unwrap();
        assert_eq!(label.pv_header.data_areas, vec![locn(1_048_576, 0)]);
        assert_eq!(label.pv_header.metadata_areas, vec![locn(4096, 1_044_480)]);
    }

    #[test]
    fn extension_version_zero_is_no_extension() {
        let mut s = sector_of(FRESH, 1);
        // pvck: pv_header_extension at 648, i.e. byte 136 of the sector.
        s[136..140].copy_from_slice(&0u32.to_le_bytes());
        let label = Label::decode(&resign(s), 1).unwrap();
        assert_eq!(label.pv_header.extension, None);
        // And encoding no extension writes version 0.
        assert_eq!(label.encode().unwrap(), resign(s));
    }

    #[test]
    fn encode_refuses_what_lvm2_could_not_read_back() {
        let label = find_label(FRESH).unwrap().unwrap();

        let mut l = label.clone();
        l.sector = 4;
        assert_eq!(
            l.encode().unwrap_err(),
            LabelError::SectorOutOfRange { sector: 4 }
        );

        let mut l = label.clone();
        l.pv_header.metadata_areas.push(locn(0, 4096));
        assert_eq!(
            l.encode().unwrap_err(),
            LabelError::ZeroOffset {
                list: "metadata",
                index: 1
            }
        );

        let mut l = label.clone();
        l.pv_header.data_areas.clear();
        assert_eq!(l.encode().unwrap_err(), LabelError::NoDataArea);

        let mut l = label.clone();
        l.pv_header.extension.as_mut().unwrap().version = 0;
        assert_eq!(l.encode().unwrap_err(), LabelError::ExtensionVersionZero);

        let mut l = label.clone();
        l.pv_header.data_areas = vec![locn(1, 1); 25];
        assert!(matches!(l.encode(), Err(LabelError::TooLarge { needed }) if needed > 512));
    }

    #[test]
    fn the_fullest_label_that_fits() {
        // With one mda and an empty extension: 72 + 16*(n+1) + 32 + 8 + 16
        // = 144 + 16n bytes, so 23 data areas fill the sector exactly.
        let mut label = find_label(FRESH).unwrap().unwrap();
        label.pv_header.data_areas = (1..=23).map(|i| locn(i * 512, i)).collect();
        assert_eq!(pv_header_len(&label.pv_header), SECTOR_SIZE);
        let bytes = label.encode().unwrap();
        assert_eq!(Label::decode(&bytes, 1).unwrap(), label);
        label.pv_header.data_areas.push(locn(99, 99));
        assert!(label.encode().is_err());
    }

    #[test]
    fn uuid_format_and_parse() {
        let uuid = PvUuid::parse("uYUppvLLIUdFLPdHecf4ijONCVq7M7Ad").unwrap();
        assert_eq!(uuid.to_dashed(), "uYUppv-LLIU-dFLP-dHec-f4ij-ONCV-q7M7Ad");
        assert_eq!(format!("{uuid}"), "uYUppv-LLIU-dFLP-dHec-f4ij-ONCV-q7M7Ad");
        assert_eq!(
            "uYUppv-LLIU-dFLP-dHec-f4ij-ONCV-q7M7Ad"
                .parse::<PvUuid>()
                .unwrap(),
            uuid
        );
        assert_eq!(
            PvUuid::parse("uYUppv-LLIU-dFLP-dHec-f4ij-ONCV-q7M7A").unwrap_err(),
            UuidError::WrongLength { found: 31 }
        );
        assert_eq!(
            PvUuid::parse("uYUppv-LLIU-dFLP-dHec-f4ij-ONCV-q7M7Adx").unwrap_err(),
            UuidError::WrongLength { found: 33 }
        );
        assert_eq!(
            PvUuid::parse("uYUppv-LLIU-dFLP-dHec-f4ij-ONCV-q7M7A!").unwrap_err(),
            UuidError::InvalidChar {
                ch: '!',
                position: 37
            }
        );
        assert_eq!(
            PvUuid::parse("uYUppv-LLIU-dFLP-dHéc-f4ij-ONCV-q7M7Ad").unwrap_err(),
            UuidError::InvalidChar {
                ch: 'é',
                position: 19
            }
        );
        assert!(PvUuid::from_bytes([b'a'; 32]).is_ok());
        assert_eq!(
            PvUuid::from_bytes([0; 32]).unwrap_err(),
            UuidError::InvalidChar {
                ch: '\0',
                position: 0
            }
        );
    }

    fn arb_uuid() -> impl Strategy<Value = PvUuid> {
        proptest::collection::vec(
            proptest::sample::select(
                b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".to_vec(),
            ),
            UUID_LEN,
        )
        .prop_map(|v| PvUuid::from_bytes(v.try_into().unwrap()).unwrap())
    }

    fn arb_locns(max: usize) -> impl Strategy<Value = Vec<DiskLocn>> {
        proptest::collection::vec(
            (1u64.., any::<u64>()).prop_map(|(offset, size)| DiskLocn { offset, size }),
            0..=max,
        )
    }

    fn arb_label() -> impl Strategy<Value = Label> {
        (
            0..LABEL_SCAN_SECTORS,
            arb_uuid(),
            any::<u64>(),
            arb_locns(8).prop_filter("lvm2 needs a data area", |v| !v.is_empty()),
            arb_locns(8),
            proptest::option::of((1u32.., any::<u32>(), arb_locns(6))),
        )
            .prop_map(|(sector, uuid, device_size, da, mda, ext)| Label {
                sector,
                pv_header: PvHeader {
                    uuid,
                    device_size,
                    data_areas: da,
                    metadata_areas: mda,
                    extension: ext.map(|(version, flags, bootloader_areas)| PvHeaderExtension {
                        version,
                        flags,
                        bootloader_areas,
                    }),
                },
            })
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(label in arb_label()) {
            match label.encode() {
                Ok(bytes) => {
                    prop_assert_eq!(Label::decode(&bytes, label.sector).unwrap(), label.clone());
                    // Found where it sits, whatever the other sectors hold.
                    let mut dev = vec![0u8; LABEL_SCAN_BYTES];
                    let at = label.sector as usize * SECTOR_SIZE;
                    dev[at..at + SECTOR_SIZE].copy_from_slice(&bytes);
                    prop_assert_eq!(find_label(&dev).unwrap(), Some(label));
                }
                Err(LabelError::TooLarge { needed }) => {
                    prop_assert!(needed > SECTOR_SIZE);
                    prop_assert_eq!(needed, pv_header_len(&label.pv_header));
                }
                Err(e) => prop_assert!(false, "unexpected error {e}"),
            }
        }

        #[test]
        fn decode_then_encode_is_identity_on_lvm2_shaped_bytes(label in arb_label()) {
            if let Ok(bytes) = label.encode() {
                let again = Label::decode(&bytes, label.sector).unwrap().encode().unwrap();
                prop_assert_eq!(again, bytes);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2100)) {
            let _ = find_label(&bytes);
            let _ = Label::decode(&bytes, 1);
        }

        #[test]
        fn any_pv_header_behind_a_good_crc_never_panics(
            body in proptest::collection::vec(any::<u8>(), SECTOR_SIZE - DEVICE_SIZE),
            zero_words in proptest::collection::vec(0usize..(SECTOR_SIZE - DISK_AREAS) / 8, 0..40),
        ) {
            // Random bytes rarely say "LABELONE" or pass the CRC: start from
            // lvm2's label (keeping its uuid) and re-sign it, so the list
            // parser itself sees arbitrary content, with zeroed 8-byte words
            // sprinkled in so that lists end at random places.
            let mut sector = sector_of(FRESH, 1);
            sector[DEVICE_SIZE..].copy_from_slice(&body);
            for w in zero_words {
                let at = DISK_AREAS + w * 8;
                sector[at..at + 8].fill(0);
            }
            if let Ok(label) = Label::decode(&resign(sector), 1) {
                if let Ok(bytes) = label.encode() {
                    prop_assert_eq!(Label::decode(&bytes, 1).unwrap(), label);
                }
            }
        }

        #[test]
        fn any_single_bit_flip_in_a_label_is_caught(bit in 0usize..SECTOR_SIZE * 8) {
            // Every bit of the sector is checked directly (sector), under
            // the CRC, or is the CRC; a flip in the id makes it no label.
            let mut dev = FRESH[..LABEL_SCAN_BYTES].to_vec();
            dev[512 + bit / 8] ^= 1 << (bit % 8);
            if bit < 64 {
                prop_assert_eq!(find_label(&dev), Ok(None));
            } else {
                prop_assert!(find_label(&dev).is_err());
            }
        }

        #[test]
        fn uuid_dashes_round_trip(uuid in arb_uuid()) {
            let dashed = uuid.to_dashed();
            prop_assert_eq!(dashed.len(), 38);
            prop_assert_eq!(
                dashed.char_indices().filter(|&(_, c)| c == '-').map(|(i, _)| i).collect::<Vec<_>>(),
                vec![6, 11, 16, 21, 26, 31]
            );
            prop_assert_eq!(PvUuid::parse(&dashed).unwrap(), uuid);
            prop_assert_eq!(PvUuid::parse(uuid.as_str()).unwrap(), uuid);
        }
    }
}
