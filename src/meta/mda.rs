//! A metadata area: its 512-byte header and the circular buffer of metadata
//! text after it.
//!
//! Header layout, little-endian (lvm2 lib/format_text/layout.h):
//!
//! ```text
//!   0  checksum_xl u32 (CRC of bytes 4..512)
//!   4  magic " LVM2 x[5A%r0N*>"
//!  20  version u32 (= 1)
//!  24  start u64 (absolute byte offset of the area on the device)
//!  32  size u64 (bytes, header included)
//!  40  raw_locn[0] (committed), 64 raw_locn[1] (precommitted), each
//!      {offset u64 (from the area start), size u64, checksum u32, flags u32}
//! ```
//!
//! The rest of the header sector is zero in everything lvm2 writes.
//!
//! The text buffer is `[512, size)` of the area. A copy of the metadata
//! (text plus its trailing NUL, which counts in `size` and in the checksum)
//! starts 512-aligned after the previous copy and may run past the end of the
//! area, continuing at offset 512. [`next_placement`] follows lvm2's
//! `_vg_write_raw` and `_next_rlocn_offset` (format-text.c, 2.03.16) exactly,
//! including its overlap check, so that lvm2 and cairn write the same copies
//! at the same offsets.

use std::fmt;

use thiserror::Error;

use crate::meta::crc::{calc_crc, INITIAL_CRC};

/// The header's size; the text buffer starts right after it (`MDA_HEADER_SIZE`).
pub const MDA_HEADER_SIZE: u64 = 512;
/// `FMTT_MAGIC`.
pub const FMTT_MAGIC: &[u8; 16] = b" LVM2 x[5A%r0N*>";
/// `FMTT_VERSION`.
pub const FMTT_VERSION: u32 = 1;
/// `RAW_LOCN_IGNORED`: set in slot 0 when the area is marked metadataignore.
pub const RAW_LOCN_IGNORED: u32 = 1;
/// Copies start on this boundary (`MDA_ORIGINAL_ALIGNMENT`).
pub const MDA_ALIGNMENT: u64 = 512;
/// The smallest area whose maximum text size, `(size - 512) / 2 - 512`, is
/// not negative.
pub const MDA_MIN_SIZE: u64 = MDA_HEADER_SIZE + 2 * MDA_ALIGNMENT;

const HEADER_LEN: usize = MDA_HEADER_SIZE as usize;
const MAGIC: usize = 4;
const VERSION: usize = 20;
const START: usize = 24;
const SIZE: usize = 32;
const RAW_LOCNS: usize = 40;
const RAW_LOCN_SIZE: usize = 24;

/// Where one copy of the metadata is (`struct raw_locn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawLocn {
    /// From the start of the metadata area (so at least 512).
    pub offset: u64,
    /// Text length including its trailing NUL.
    pub size: u64,
    /// `calc_crc(INITIAL_CRC, text including the NUL)`.
    pub checksum: u32,
    /// [`RAW_LOCN_IGNORED`] or 0.
    pub flags: u32,
}

impl RawLocn {
    /// lvm2's "no metadata here": offset and size both 0.
    pub fn is_empty(&self) -> bool {
        self.offset == 0 && self.size == 0
    }

    /// Whether [`RAW_LOCN_IGNORED`] is set (`pvchange --metadataignore y`).
    pub fn is_ignored(&self) -> bool {
        self.flags & RAW_LOCN_IGNORED != 0
    }
}

/// The two raw_locn slots lvm2 uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Slot 0: what every reader uses.
    Committed = 0,
    /// Slot 1: written by vg_precommit, zeroed again by vg_commit.
    Precommitted = 1,
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Slot::Committed => "committed",
            Slot::Precommitted => "precommitted",
        })
    }
}

/// `struct mda_header`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdaHeader {
    /// Absolute byte offset of the area (and of this header) on the device.
    pub start: u64,
    /// Size of the area in bytes, header included.
    pub size: u64,
    /// Indexed by [`Slot`].
    pub raw_locns: [RawLocn; 2],
}

/// A run of bytes in the metadata area, offsets from the area start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Start, in bytes from the area start.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Span {
    /// One past the last byte, from the area start.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }
}

/// Where lvm2 puts the next copy of the metadata: the new raw_locn's offset
/// and size, the one or two runs that hold the text, and the zeros written
/// after the last run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The new raw_locn offset (= `first.offset`).
    pub offset: u64,
    /// Text length including the NUL (= `first.len + second.len`).
    pub size: u64,
    /// From `offset`, up to the end of the area at most.
    pub first: Span,
    /// The rest of a copy that wraps, from offset 512.
    pub second: Option<Span>,
    /// lvm2 extends the last write with zeros to the next 512-byte boundary
    /// (so that the gap before the next copy is clean); clipped at the end of
    /// the area, as lvm2's bcache clips it, and (unlike lvm2) short of a
    /// committed copy that starts unaligned.
    pub zero_fill: Span,
}

/// Something wrong with a metadata area or a copy in it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MdaError {
    /// Fewer than 512 bytes where the header should be.
    #[error("metadata area at {start}: header needs {MDA_HEADER_SIZE} bytes, got {found}")]
    Truncated {
        /// Absolute byte offset of the metadata area on the device.
        start: u64,
        /// Bytes available.
        found: usize,
    },
    /// No `FMTT_MAGIC`: not a metadata area header.
    #[error("metadata area at {start}: bad magic {found:?}, not an mda header")]
    BadMagic {
        /// Absolute byte offset of the metadata area on the device.
        start: u64,
        /// The 16 magic bytes found, lossily as text.
        found: String,
    },
    /// The header's CRC does not match its bytes (torn or foreign write).
    #[error("metadata area at {start}: bad checksum {found:#x}, expected {expected:#x}")]
    BadChecksum {
        /// Absolute byte offset of the metadata area on the device.
        start: u64,
        /// What the header carries.
        found: u32,
        /// The CRC of bytes 4..512 as they are.
        expected: u32,
    },
    /// A header version other than 1.
    #[error("metadata area at {start}: header version {found}, expected {FMTT_VERSION}")]
    BadVersion {
        /// Absolute byte offset of the metadata area on the device.
        start: u64,
        /// The version found.
        found: u32,
    },
    /// The header records another start than where it was read (a copied or moved area).
    #[error("metadata area at {start}: header says the area starts at {found}")]
    WrongStart {
        /// Absolute byte offset of the metadata area on the device.
        start: u64,
        /// The start the header records, in bytes.
        found: u64,
    },
    /// The header claims more bytes than the PV header gives the area.
    #[error(
        "metadata area at {start}: header says the area is {size} bytes, but the PV header \
         gives it {area_size}"
    )]
    LargerThanArea {
        /// Absolute byte offset of the metadata area on the device.
        start: u64,
        /// The size the header records, in bytes.
        size: u64,
        /// The area's size in bytes, header included.
        area_size: u64,
    },
    /// The text buffer is too large to allocate.
    #[error("metadata area at {start}: cannot set aside {size} bytes for its text")]
    NoMemory {
        /// Absolute byte offset of the metadata area on the device.
        start: u64,
        /// The buffer's size in bytes.
        size: u64,
    },
    /// The slot to read holds no metadata (offset and size 0).
    #[error("metadata area at {start}: {slot} slot is empty")]
    SlotEmpty {
        /// Absolute byte offset of the metadata area on the device.
        start: u64,
        /// Which slot.
        slot: Slot,
    },
    /// A raw_locn points outside the text buffer.
    #[error(
        "metadata area at {start}: text at offset {offset}, size {size} is outside \
         the text buffer {MDA_HEADER_SIZE}..{area_size}"
    )]
    OutOfArea {
        /// Absolute byte offset of the metadata area on the device.
        start: u64,
        /// The copy's offset from the area start, in bytes.
        offset: u64,
        /// The copy's size in bytes, NUL included.
        size: u64,
        /// The area's size in bytes, header included.
        area_size: u64,
    },
    /// Fewer bytes of the area were supplied than the copy needs.
    #[error("metadata area at {start}: need its first {needed} bytes, got {found}")]
    AreaShort {
        /// Absolute byte offset of the metadata area on the device.
        start: u64,
        /// Bytes needed from the area start.
        needed: u64,
        /// Bytes supplied.
        found: usize,
    },
    /// The text's CRC does not match its raw_locn's.
    #[error(
        "metadata area at {start}: text at offset {offset}: bad checksum {found:#x}, \
         expected {expected:#x}"
    )]
    BadTextChecksum {
        /// Absolute byte offset of the metadata area on the device.
        start: u64,
        /// The copy's offset from the area start, in bytes.
        offset: u64,
        /// The CRC of the text as it is.
        found: u32,
        /// The raw_locn's checksum.
        expected: u32,
    },
    /// The copy does not end in the NUL lvm2 writes.
    #[error(
        "metadata area at {start}: text at offset {offset} ({size} bytes) does not end in NUL"
    )]
    MissingNul {
        /// Absolute byte offset of the metadata area on the device.
        start: u64,
        /// The copy's offset from the area start, in bytes.
        offset: u64,
        /// The copy's size in bytes, NUL included.
        size: u64,
    },
    /// The area cannot hold two copies, as lvm2 requires for a rewrite.
    #[error(
        "metadata area at {start}: size {size} is too small for two copies of metadata \
         (at least {MDA_MIN_SIZE})"
    )]
    AreaTooSmall {
        /// Absolute byte offset of the metadata area on the device.
        start: u64,
        /// The area's size in bytes, header included.
        size: u64,
    },
    /// The area does not start on a 512-byte boundary.
    #[error("metadata area at {start} is not {MDA_ALIGNMENT}-byte aligned")]
    Unaligned {
        /// Absolute byte offset of the metadata area on the device.
        start: u64,
    },
    /// The text exceeds half of the buffer less 512 bytes, lvm2's limit.
    #[error("metadata area at {start}: metadata of {size} bytes exceeds the maximum {max}")]
    TextTooLarge {
        /// Absolute byte offset of the metadata area on the device.
        start: u64,
        /// The text's size in bytes, NUL included.
        size: u64,
        /// The most bytes a copy may have in this area.
        max: u64,
    },
    /// The text is empty (lvm2 needs at least one character and the NUL).
    #[error(
        "metadata area at {start}: metadata of {size} bytes is too small \
         (at least one character and the NUL)"
    )]
    TextTooSmall {
        /// Absolute byte offset of the metadata area on the device.
        start: u64,
        /// The text's size in bytes, NUL included.
        size: u64,
    },
    /// The next copy would overwrite the committed copy (lvm2 refuses the same).
    #[error(
        "metadata area at {start}: new copy at offset {new_offset} ({new_size} bytes) \
         would overlap the committed copy at offset {old_offset} ({old_size} bytes)"
    )]
    Overlap {
        /// Absolute byte offset of the metadata area on the device.
        start: u64,
        /// Where the new copy would start, from the area start, in bytes.
        new_offset: u64,
        /// Its size in bytes.
        new_size: u64,
        /// Where the committed copy starts, in bytes.
        old_offset: u64,
        /// Its size in bytes.
        old_size: u64,
    },
    /// The text to write contains a NUL, which would end it early for lvm2.
    #[error("metadata text has a NUL at byte {at}; lvm2 would stop reading there")]
    EmbeddedNul {
        /// Byte index of the NUL in the text.
        at: usize,
    },
    /// The text given is not as long as its placement.
    #[error("metadata area at {start}: placement is for {expected} bytes, got {found}")]
    LengthMismatch {
        /// Absolute byte offset of the metadata area on the device.
        start: u64,
        /// Bytes the placement holds.
        expected: u64,
        /// Bytes supplied.
        found: usize,
    },
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

impl MdaHeader {
    /// The header pvcreate writes: no metadata yet.
    pub fn new(start: u64, size: u64) -> MdaHeader {
        MdaHeader {
            start,
            size,
            raw_locns: [RawLocn::default(); 2],
        }
    }

    /// Decodes the header in `sector` (at least 512 bytes; the first 512 are
    /// read) read at absolute offset `expected_start`, checking what lvm2's
    /// `_raw_read_mda_header` checks: magic, checksum, version, start.
    /// Slots after the second are ignored, as lvm2 only uses two.
    pub fn decode(sector: &[u8], expected_start: u64) -> Result<MdaHeader, MdaError> {
        let start = expected_start;
        let bytes = sector.get(..HEADER_LEN).ok_or(MdaError::Truncated {
            start,
            found: sector.len(),
        })?;
        // Magic first: with a wrong magic this is not a header at all, which
        // says more than its checksum being wrong.
        if &bytes[MAGIC..VERSION] != FMTT_MAGIC {
            return Err(MdaError::BadMagic {
                start,
                found: String::from_utf8_lossy(&bytes[MAGIC..VERSION]).into_owned(),
            });
        }
        let found = le_u32(bytes, 0);
        let expected = calc_crc(INITIAL_CRC, &bytes[MAGIC..]);
        if found != expected {
            return Err(MdaError::BadChecksum {
                start,
                found,
                expected,
            });
        }
        let version = le_u32(bytes, VERSION);
        if version != FMTT_VERSION {
            return Err(MdaError::BadVersion {
                start,
                found: version,
            });
        }
        let recorded = le_u64(bytes, START);
        if recorded != start {
            return Err(MdaError::WrongStart {
                start,
                found: recorded,
            });
        }
        let slot = |i: usize| {
            let at = RAW_LOCNS + i * RAW_LOCN_SIZE;
            RawLocn {
                offset: le_u64(bytes, at),
                size: le_u64(bytes, at + 8),
                checksum: le_u32(bytes, at + 16),
                flags: le_u32(bytes, at + 20),
            }
        };
        Ok(MdaHeader {
            start,
            size: le_u64(bytes, SIZE),
            raw_locns: [slot(0), slot(1)],
        })
    }

    /// The 512 bytes lvm2 writes for this header (`_raw_write_mda_header`).
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[MAGIC..VERSION].copy_from_slice(FMTT_MAGIC);
        out[VERSION..START].copy_from_slice(&FMTT_VERSION.to_le_bytes());
        out[START..SIZE].copy_from_slice(&self.start.to_le_bytes());
        out[SIZE..RAW_LOCNS].copy_from_slice(&self.size.to_le_bytes());
        for (i, l) in self.raw_locns.iter().enumerate() {
            let at = RAW_LOCNS + i * RAW_LOCN_SIZE;
            out[at..at + 8].copy_from_slice(&l.offset.to_le_bytes());
            out[at + 8..at + 16].copy_from_slice(&l.size.to_le_bytes());
            out[at + 16..at + 20].copy_from_slice(&l.checksum.to_le_bytes());
            out[at + 20..at + 24].copy_from_slice(&l.flags.to_le_bytes());
        }
        let crc = calc_crc(INITIAL_CRC, &out[MAGIC..]);
        out[..MAGIC].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// The raw_locn of `slot`.
    pub fn slot(&self, slot: Slot) -> &RawLocn {
        &self.raw_locns[slot as usize]
    }

    /// The area is marked metadataignore (lvm2 reads the flag of slot 0);
    /// lvm2 neither reads nor writes text in such an area.
    pub fn is_ignored(&self) -> bool {
        self.raw_locns[0].is_ignored()
    }

    /// The largest copy (text and NUL) lvm2 writes into this area:
    /// `(size - 512) / 2 - 512`, so that two copies, each rounded to start
    /// on a sector, always fit.
    pub fn max_text_size(&self) -> Result<u64, MdaError> {
        if self.size < MDA_MIN_SIZE {
            return Err(MdaError::AreaTooSmall {
                start: self.start,
                size: self.size,
            });
        }
        Ok((self.size - MDA_HEADER_SIZE) / 2 - MDA_ALIGNMENT)
    }

    /// The free space lvm2 reports for this area (`pv_mda_free`,
    /// `vg_mda_free`): the maximum text size less the committed copy, in
    /// whole sectors (read_metadata_location_summary).
    pub fn free_bytes(&self) -> Result<u64, MdaError> {
        let max = self.max_text_size()?;
        let committed = &self.raw_locns[0];
        let free = if committed.offset == 0 {
            max
        } else {
            max.saturating_sub(committed.size)
        };
        Ok(free / 512 * 512)
    }

    /// What lvm2's vg_precommit does to the header of an area in use: slot 1
    /// points at the new copy, slot 0 stays. A `new` of size 0 is lvm2's
    /// revert: slot 1 is cleared.
    pub fn precommit(&mut self, new: &RawLocn) {
        self.update(new, Slot::Precommitted);
    }

    /// What lvm2's vg_commit does: slot 0 points at the new copy, slot 1 is
    /// cleared. A `new` of size 0 only clears slot 1, as in lvm2.
    pub fn commit(&mut self, new: &RawLocn) {
        self.update(new, Slot::Committed);
    }

    /// `_vg_commit_raw_rlocn` for an area that is not ignored: only offset,
    /// size and checksum move between slots; slot 0's ignore bit is cleared.
    fn update(&mut self, new: &RawLocn, slot: Slot) {
        let clear = |l: &mut RawLocn| {
            l.offset = 0;
            l.size = 0;
            l.checksum = 0;
        };
        let [slot0, slot1] = &mut self.raw_locns;
        // An area without committed metadata (or one that was ignored)
        // starts over: nothing in either slot is trusted.
        if slot0.is_ignored() || slot0.is_empty() {
            clear(slot0);
            clear(slot1);
        }
        let set = |l: &mut RawLocn| {
            l.offset = new.offset;
            l.size = new.size;
            l.checksum = new.checksum;
        };
        if new.size == 0 {
            clear(slot1);
        } else if slot == Slot::Precommitted {
            set(slot1);
        } else {
            set(slot0);
            clear(slot1);
        }
        slot0.flags &= !RAW_LOCN_IGNORED;
    }
}

/// Where an existing copy's bytes are: one span, or two when it wraps past
/// the end of the area back to offset 512. Refuses locations that cannot
/// hold a copy: before the text buffer, starting past its end, empty, or
/// longer than the buffer (the wrapped part would run into its own start).
pub fn locate_text(header: &MdaHeader, locn: &RawLocn) -> Result<(Span, Option<Span>), MdaError> {
    let area_size = header.size;
    let out_of_area = MdaError::OutOfArea {
        start: header.start,
        offset: locn.offset,
        size: locn.size,
        area_size,
    };
    if locn.offset < MDA_HEADER_SIZE
        || locn.offset >= area_size
        || locn.size == 0
        || locn.size > area_size - MDA_HEADER_SIZE
    {
        return Err(out_of_area);
    }
    // Both terms are below area_size, but area_size may be near u64::MAX.
    let end = locn.offset.checked_add(locn.size).ok_or(out_of_area)?;
    if end <= area_size {
        return Ok((
            Span {
                offset: locn.offset,
                len: locn.size,
            },
            None,
        ));
    }
    let wrap = end - area_size;
    Ok((
        Span {
            offset: locn.offset,
            len: locn.size - wrap,
        },
        Some(Span {
            offset: MDA_HEADER_SIZE,
            len: wrap,
        }),
    ))
}

fn span_bytes<'a>(header: &MdaHeader, area: &'a [u8], span: &Span) -> Result<&'a [u8], MdaError> {
    let short = MdaError::AreaShort {
        start: header.start,
        needed: span.end(),
        found: area.len(),
    };
    let from = usize::try_from(span.offset).map_err(|_| short.clone())?;
    let to = usize::try_from(span.end()).map_err(|_| short.clone())?;
    area.get(from..to).ok_or(short)
}

/// Reads the copy `locn` points at out of `area` (the area's bytes from its
/// start, header included; at least up to the end of the copy), checks its
/// checksum and trailing NUL, and returns the text without the NUL.
pub fn read_text(header: &MdaHeader, area: &[u8], locn: &RawLocn) -> Result<Vec<u8>, MdaError> {
    let (first, second) = locate_text(header, locn)?;
    // Slice before allocating: the size comes from disk.
    let head = span_bytes(header, area, &first)?;
    let tail = match second {
        Some(second) => span_bytes(header, area, &second)?,
        None => &[],
    };
    let mut text = Vec::with_capacity(head.len() + tail.len());
    text.extend_from_slice(head);
    text.extend_from_slice(tail);
    check_text(header, locn, text)
}

/// The header's own size checked against the area the PV header gives it
/// (`area_size`, itself checked against the device by the caller): every
/// offset and size in the header is then bounded by bytes that exist, and
/// nothing is sized from the header alone. lvm2 writes both sizes equal.
pub fn check_area_size(header: &MdaHeader, area_size: u64) -> Result<(), MdaError> {
    if header.size > area_size {
        return Err(MdaError::LargerThanArea {
            start: header.start,
            size: header.size,
            area_size,
        });
    }
    Ok(())
}

/// Checks the bytes of the copy `locn` points at (read by the caller from
/// the spans [`locate_text`] gave, in order): their checksum and trailing
/// NUL. Returns the text without the NUL.
pub fn check_text(
    header: &MdaHeader,
    locn: &RawLocn,
    mut text: Vec<u8>,
) -> Result<Vec<u8>, MdaError> {
    let found = calc_crc(INITIAL_CRC, &text);
    if found != locn.checksum {
        return Err(MdaError::BadTextChecksum {
            start: header.start,
            offset: locn.offset,
            found,
            expected: locn.checksum,
        });
    }
    if text.pop() != Some(0) {
        return Err(MdaError::MissingNul {
            start: header.start,
            offset: locn.offset,
            size: locn.size,
        });
    }
    Ok(text)
}

/// [`read_text`] of a slot; an empty slot is an error. Does not look at the
/// ignore flag: check [`MdaHeader::is_ignored`] first, as lvm2 does.
pub fn read_slot_text(header: &MdaHeader, area: &[u8], slot: Slot) -> Result<Vec<u8>, MdaError> {
    let locn = header.slot(slot);
    if locn.is_empty() {
        return Err(MdaError::SlotEmpty {
            start: header.start,
            slot,
        });
    }
    read_text(header, area, locn)
}

/// Where lvm2 2.03.16 puts the next copy of `size` bytes (text and NUL) in
/// this area, given the committed copy in slot 0 (`_vg_write_raw`):
///
/// - no committed copy (slot 0 empty or ignored): at 512;
/// - otherwise after the committed copy's last byte (of its wrapped part if
///   it wraps), rounded up to 512 from the area start; back to 512 if the
///   last byte is within 512 bytes of the area's end or the rounded start is
///   past `size - 512`;
/// - a copy that runs past the end continues at 512;
/// - refused if larger than [`MdaHeader::max_text_size`] or if it would
///   overlap the committed copy (lvm2's own check, kept as it is).
///
/// Also refused, where lvm2 would go ahead: an area whose start is not
/// 512-aligned on the device (lvm2 never makes one), and a committed slot
/// that does not point inside the text buffer.
pub fn next_placement(header: &MdaHeader, size: u64) -> Result<Placement, MdaError> {
    let start = header.start;
    let area = header.size;
    // The zero fill is aligned on the device, the start of a copy on the
    // area: they agree only for an aligned area, the only kind lvm2 makes.
    // Refuse the other kind rather than let the fill clip the next copy.
    if start % MDA_ALIGNMENT != 0 {
        return Err(MdaError::Unaligned { start });
    }
    let max = header.max_text_size()?;
    // lvm2's overlap test wants new_last > new_start: a lone NUL is refused.
    if size < 2 {
        return Err(MdaError::TextTooSmall { start, size });
    }
    if size > max {
        return Err(MdaError::TextTooLarge { start, size, max });
    }

    let committed = header.raw_locns[0];
    let old = if committed.is_ignored() || committed.is_empty() {
        None
    } else {
        // Also proves the committed copy lies in the buffer, so the
        // arithmetic below cannot overflow.
        locate_text(header, &committed)?;
        Some(committed)
    };

    // First and last byte of each copy, lvm2's old_/new_ start, last, wrap.
    let (old_start, old_last, old_wrap) = match old {
        None => (0, 0, 0),
        Some(o) => match (o.offset + o.size).checked_sub(area) {
            Some(wrap) if wrap > 0 => (o.offset, wrap + MDA_HEADER_SIZE - 1, wrap),
            _ => (o.offset, o.offset + o.size - 1, 0),
        },
    };

    let new_start = match old {
        None => MDA_HEADER_SIZE,
        Some(_) if area - old_last < MDA_ALIGNMENT => MDA_HEADER_SIZE,
        Some(_) => {
            let next = (old_last + 1).next_multiple_of(MDA_ALIGNMENT);
            if next > area - MDA_ALIGNMENT {
                MDA_HEADER_SIZE
            } else {
                next
            }
        }
    };

    // Only an area near 2^64 bytes could overflow here.
    let new_end = new_start
        .checked_add(size)
        .ok_or(MdaError::TextTooLarge { start, size, max })?;
    let (new_last, new_wrap) = match new_end.checked_sub(area) {
        Some(wrap) if wrap > 0 => (wrap + MDA_HEADER_SIZE - 1, wrap),
        _ => (new_end - 1, 0),
    };

    // lvm2's overlap check, case by case, as written there.
    let fits = match (old_wrap > 0, new_wrap > 0) {
        (true, true) => false,
        (false, false) => {
            (new_start > old_last && new_last > new_start)
                || (new_start < old_start && new_last < old_start)
        }
        (true, false) => old_last < new_start && new_start < new_last && new_last < old_start,
        (false, true) => new_last < old_start && old_start < old_last && old_last < new_start,
    };
    if !fits {
        return Err(MdaError::Overlap {
            start,
            new_offset: new_start,
            new_size: size,
            old_offset: old_start,
            old_size: old.map_or(0, |o| o.size),
        });
    }

    let (first, second) = if new_wrap == 0 {
        (
            Span {
                offset: new_start,
                len: size,
            },
            None,
        )
    } else {
        (
            Span {
                offset: new_start,
                len: size - new_wrap,
            },
            Some(Span {
                offset: MDA_HEADER_SIZE,
                len: new_wrap,
            }),
        )
    };
    // A wrapping copy's first write ends at the end of the area and is not
    // extended; the last write is, to the next sector, clipped at the end.
    let last = second.unwrap_or(first);
    let over = last.end() % MDA_ALIGNMENT;
    let fill = if over == 0 { 0 } else { MDA_ALIGNMENT - over };
    let mut fill_end = last.end() + fill.min(area - last.end());
    // Copies lvm2 writes start 512-aligned, so the fill never reaches the
    // committed one; lvm2 would zero the head of a committed copy that
    // starts unaligned (not its doing). Stop the zeros short of it instead.
    if let Some(o) = old {
        let (old_first, old_second) = locate_text(header, &o)?;
        for span in std::iter::once(old_first).chain(old_second) {
            if span.offset >= last.end() && span.offset < fill_end {
                fill_end = span.offset;
            }
        }
    }
    let zero_fill = Span {
        offset: last.end(),
        len: fill_end - last.end(),
    };
    Ok(Placement {
        offset: new_start,
        size,
        first,
        second,
        zero_fill,
    })
}

/// Writes `bytes` (the text and its NUL, `placement.size` long) and the zero
/// fill into `area` (the area's bytes from its start) where `placement`
/// says. Nothing is written unless everything fits.
pub fn apply_placement(
    header: &MdaHeader,
    area: &mut [u8],
    placement: &Placement,
    bytes: &[u8],
) -> Result<(), MdaError> {
    let second_len = placement.second.map_or(0, |s| s.len);
    let expected = placement.first.len.checked_add(second_len);
    if expected != Some(bytes.len() as u64) || placement.size != bytes.len() as u64 {
        return Err(MdaError::LengthMismatch {
            start: header.start,
            expected: placement.size,
            found: bytes.len(),
        });
    }
    // Check every target before touching anything.
    let spans = [
        Some(placement.first),
        placement.second,
        Some(placement.zero_fill),
    ];
    let mut ranges = Vec::with_capacity(3);
    for span in spans.into_iter().flatten() {
        let short = MdaError::AreaShort {
            start: header.start,
            needed: span.offset.saturating_add(span.len),
            found: area.len(),
        };
        let from = usize::try_from(span.offset).map_err(|_| short.clone())?;
        let len = usize::try_from(span.len).map_err(|_| short.clone())?;
        let to = from.checked_add(len).ok_or(short.clone())?;
        if to > area.len() {
            return Err(short);
        }
        ranges.push(from..to);
    }
    let (head, tail) = bytes.split_at(ranges[0].len());
    area[ranges[0].clone()].copy_from_slice(head);
    if placement.second.is_some() {
        area[ranges[1].clone()].copy_from_slice(tail);
    }
    if let Some(fill) = ranges.last() {
        area[fill.clone()].fill(0);
    }
    Ok(())
}

/// Writes `text` (without NUL) as the next copy, as lvm2's vg_write does,
/// and returns the raw_locn for it. The header is not changed: pass the
/// result to [`MdaHeader::precommit`] and [`MdaHeader::commit`], then write
/// the header.
pub fn write_text(header: &MdaHeader, area: &mut [u8], text: &[u8]) -> Result<RawLocn, MdaError> {
    if let Some(at) = text.iter().position(|&b| b == 0) {
        return Err(MdaError::EmbeddedNul { at });
    }
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend_from_slice(text);
    bytes.push(0);
    let placement = next_placement(header, bytes.len() as u64)?;
    apply_placement(header, area, &placement, &bytes)?;
    Ok(RawLocn {
        offset: placement.offset,
        size: placement.size,
        checksum: calc_crc(INITIAL_CRC, &bytes),
        flags: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::meta::fixtures::{FRESH, VGALL_B, VGALL_C, VGALL_D, VGNESTED, VGONE, VGWRAP};
    const VGONE_PVCK: &str = include_str!("../../tests/fixtures/lvm2/vgone-pvck-metadata.txt");
    const VGWRAP_PVCK: &str = include_str!("../../tests/fixtures/lvm2/vgwrap-pvck-metadata.txt");
    const VGALL_PVCK: &str = include_str!("../../tests/fixtures/lvm2/vgall-pvck-metadata.txt");

    /// Every fixture's mda is at 4096 (pvcreate's default).
    const MDA_START: usize = 4096;

    fn header_of(device: &[u8]) -> MdaHeader {
        MdaHeader::decode(&device[MDA_START..MDA_START + 512], MDA_START as u64).unwrap()
    }

    /// The area's bytes, from its header to its end (the fixtures hold the
    /// whole area: 4096 + size <= 1 MiB).
    fn area_of(device: &[u8]) -> &[u8] {
        let h = header_of(device);
        &device[MDA_START..MDA_START + h.size as usize]
    }

    fn locn(offset: u64, size: u64, checksum: u32) -> RawLocn {
        RawLocn {
            offset,
            size,
            checksum,
            flags: 0,
        }
    }

    /// The text pvck printed between its "---" lines (it adds a newline).
    fn pvck_text(dump: &str) -> &str {
        let from = dump.find("  ---\n").unwrap() + 6;
        let to = dump.rfind("  ---\n").unwrap();
        dump[from..to].strip_suffix('\n').unwrap()
    }

    /// Copies of `vg`'s metadata still whole in the buffer: (seqno, offset,
    /// size with NUL), by seqno. A copy starts 512-aligned with "<vg> {\n".
    fn copies_in(area: &[u8], vg: &str) -> Vec<(u64, u64, u64)> {
        let head = format!("{vg} {{\n");
        let mut out = Vec::new();
        for offset in (512..area.len()).step_by(512) {
            if !area[offset..].starts_with(head.as_bytes()) {
                continue;
            }
            let len = area[offset..].iter().position(|&b| b == 0).unwrap();
            let text = std::str::from_utf8(&area[offset..offset + len]).unwrap();
            let seqno = text
                .lines()
                .find_map(|l| l.strip_prefix("seqno = "))
                .unwrap()
                .parse()
                .unwrap();
            out.push((seqno, offset as u64, len as u64 + 1));
        }
        out.sort();
        out
    }

    /// pv-fresh-pvck-headers.txt: mda_header_1 after pvcreate.
    #[test]
    fn fresh_header_matches_pvck() {
        let h = header_of(FRESH);
        assert_eq!(le_u32(FRESH, MDA_START), 0xdb8e_d616);
        assert_eq!(h, MdaHeader::new(4096, 1_044_480));
        assert!(h.slot(Slot::Committed).is_empty());
        assert!(h.slot(Slot::Precommitted).is_empty());
        assert_eq!(h.encode()[..], FRESH[MDA_START..MDA_START + 512]);
    }

    /// vgwrap-pvck-headers.txt: a small area (61440) after 51 commits.
    #[test]
    fn vgwrap_header_matches_pvck() {
        let h = header_of(VGWRAP);
        assert_eq!(le_u32(VGWRAP, MDA_START), 0xa403_a955);
        assert_eq!((h.start, h.size), (4096, 61_440));
        assert_eq!(h.raw_locns[0], locn(4608, 3866, 0x4ede_4b98));
        assert!(h.raw_locns[1].is_empty());
        assert!(!h.is_ignored());
    }

    #[test]
    fn every_fixture_header_re_encodes_byte_identically() {
        for (name, device) in [
            ("pv-fresh", FRESH),
            ("vgone", VGONE),
            ("vgwrap", VGWRAP),
            ("vgall-b", VGALL_B),
            ("vgall-c", VGALL_C),
            ("vgall-d", VGALL_D),
            ("vgnested", VGNESTED),
        ] {
            assert_eq!(
                header_of(device).encode()[..],
                device[MDA_START..MDA_START + 512],
                "{name}"
            );
        }
    }

    /// The committed text equals what lvm2's pvck printed; its checksum is
    /// the one pvck printed (read_text checks it against the header).
    #[test]
    fn committed_text_matches_pvck() {
        for (device, dump, crc, at) in [
            (VGONE, VGONE_PVCK, 0x5639_defc, 4608),
            (VGWRAP, VGWRAP_PVCK, 0x4ede_4b98, 8704),
            (VGALL_B, VGALL_PVCK, 0x3c74_febc, 84992),
        ] {
            let h = header_of(device);
            let text = read_slot_text(&h, area_of(device), Slot::Committed).unwrap();
            assert_eq!(std::str::from_utf8(&text).unwrap(), pvck_text(dump));
            assert_eq!(h.raw_locns[0].checksum, crc);
            // pvck's "metadata text at" is absolute.
            assert_eq!(h.start + h.raw_locns[0].offset, at);
        }
    }

    /// lvm2 writes the same bytes at the same place in every PV of a VG.
    #[test]
    fn vgall_mdas_agree() {
        let b = header_of(VGALL_B);
        for device in [VGALL_C, VGALL_D] {
            assert_eq!(header_of(device).raw_locns, b.raw_locns);
            assert_eq!(
                read_slot_text(&b, area_of(device), Slot::Committed).unwrap(),
                read_slot_text(&b, area_of(VGALL_B), Slot::Committed).unwrap()
            );
        }
        assert_eq!(b.raw_locns[0], locn(80896, 6270, 0x3c74_febc));
        let nested = header_of(VGNESTED);
        assert_eq!(nested.raw_locns[0], locn(1536, 1103, 0x9e5f_ab1c));
        let text = read_slot_text(&nested, area_of(VGNESTED), Slot::Committed).unwrap();
        assert!(text.starts_with(b"vgnested {\n"));
    }

    /// vgwrap's committed copy (seqno 51 at 4608) does not straddle the end
    /// of the area: the buffer wrapped before it (seqno 49 at 57344, seqno
    /// 50 back at 512).
    #[test]
    fn vgwrap_current_copy_does_not_straddle() {
        let h = header_of(VGWRAP);
        let (first, second) = locate_text(&h, &h.raw_locns[0]).unwrap();
        assert_eq!(
            first,
            Span {
                offset: 4608,
                len: 3866
            }
        );
        assert_eq!(second, None);
    }

    /// The offsets lvm2 chose, commit after commit, are the ones
    /// next_placement chooses: every pair of consecutive copies still whole
    /// in each buffer, including vgwrap's wrap from 57344 back to 512.
    #[test]
    fn next_placement_reproduces_lvm2s_offsets() {
        for (device, vg, pairs) in [
            (VGWRAP, "vgwrap", 13),
            (VGALL_B, "vgall", 23),
            (VGALL_D, "vgall", 23),
            (VGNESTED, "vgnested", 1),
            (VGONE, "vgone", 0),
        ] {
            let area = area_of(device);
            let h = header_of(device);
            let copies = copies_in(area, vg);
            let mut checked = 0;
            for pair in copies.windows(2) {
                let [(seq, offset, size), (next_seq, next_offset, next_size)] = pair else {
                    unreachable!()
                };
                if next_seq != &(seq + 1) {
                    continue;
                }
                let mut before = h.clone();
                before.raw_locns = [locn(*offset, *size, 0), RawLocn::default()];
                let p = next_placement(&before, *next_size).unwrap();
                assert_eq!(p.offset, *next_offset, "{vg} seqno {next_seq}");
                checked += 1;
            }
            assert_eq!(checked, pairs, "{vg}: {copies:?}");
            // The first copy of a VG goes to 512.
            if copies[0].0 == 1 {
                let p = next_placement(&MdaHeader::new(h.start, h.size), copies[0].2).unwrap();
                assert_eq!(p.offset, 512);
            }
        }
        let wrap = copies_in(area_of(VGWRAP), "vgwrap");
        assert_eq!(wrap.first(), Some(&(38, 12288, 3775)));
        assert!(wrap.contains(&(49, 57344, 3852)));
        assert!(wrap.contains(&(50, 512, 3859)));
        assert_eq!(wrap.last(), Some(&(51, 4608, 3866)));
    }

    /// Between seqno 51 (ends at 8474) and 8704 lvm2 wrote zeros, and no
    /// further: from 8704 on, the tail of seqno 37 survives, its NUL at
    /// 11959; a copy ending there is followed at 12288, where seqno 38 is.
    #[test]
    fn zero_fill_and_an_older_copy_match_lvm2() {
        let area = area_of(VGWRAP);
        let h = header_of(VGWRAP);
        let mut before = h.clone();
        before.raw_locns[0] = locn(512, 3859, 0); // seqno 50
        let p = next_placement(&before, 3866).unwrap();
        assert_eq!(
            p.first,
            Span {
                offset: 4608,
                len: 3866
            }
        );
        assert_eq!(
            p.zero_fill,
            Span {
                offset: 8474,
                len: 230
            }
        );
        assert!(area[8474..8704].iter().all(|&b| b == 0));
        assert!(area[8704..11959].iter().all(|&b| b != 0));
        assert_eq!(area[11959], 0);
        assert!(area[11596..].starts_with(b"# Generated by LVM2"));
        // Any copy whose last byte (its NUL) is 11959 is followed at 12288.
        before.raw_locns[0] = locn(8192, 11960 - 8192, 0);
        assert_eq!(next_placement(&before, 3775).unwrap().offset, 12288);
    }

    /// Writing a VG's text the way lvm2 does (vg_write, precommit, commit)
    /// reproduces lvm2's bytes: the whole area of vgone from pvcreate's
    /// empty one, and the last commit of vgwrap (4608..8704) and vgall.
    #[test]
    fn writing_like_lvm2_gives_lvm2s_bytes() {
        // vgcreate vgone on the fresh PV: header and all 1044480 bytes.
        let text = read_slot_text(&header_of(VGONE), area_of(VGONE), Slot::Committed).unwrap();
        let mut h = header_of(FRESH);
        let mut area = vec![0u8; h.size as usize];
        area[..4096].copy_from_slice(&FRESH[MDA_START..MDA_START + 4096]);
        let new = write_text(&h, &mut area, &text).unwrap();
        h.precommit(&new);
        assert_eq!(h.raw_locns[1], new);
        assert!(h.raw_locns[0].is_empty());
        h.commit(&new);
        area[..512].copy_from_slice(&h.encode());
        assert!(area == area_of(VGONE), "vgone area differs");

        // Last commits of vgwrap (50 -> 51) and vgall (23 -> 24), over
        // scribbled bytes: the write covers 4608..8704 whole.
        for (device, vg) in [(VGWRAP, "vgwrap"), (VGALL_B, "vgall")] {
            let lvm2 = area_of(device);
            let copies = copies_in(lvm2, vg);
            let [.., (_, prev_off, prev_size), (_, cur_off, cur_size)] = copies[..] else {
                unreachable!()
            };
            let prev_text = &lvm2[prev_off as usize..(prev_off + prev_size) as usize];
            let mut h = header_of(device);
            h.raw_locns[0] = locn(prev_off, prev_size, calc_crc(INITIAL_CRC, prev_text));
            let mut area = lvm2.to_vec();
            let cur_end = (cur_off + cur_size).next_multiple_of(512) as usize;
            area[cur_off as usize..cur_end].fill(0xa5);
            let text = read_slot_text(&header_of(device), lvm2, Slot::Committed).unwrap();
            let new = write_text(&h, &mut area, &text).unwrap();
            h.precommit(&new);
            h.commit(&new);
            assert_eq!(h, header_of(device), "{vg}");
            assert_eq!(h.encode()[..], lvm2[..512], "{vg}");
            assert!(area == lvm2, "{vg}: area differs");
        }
    }

    /// vgwrap's 49 -> 50: the copy goes back to 512 because 49 ends 245
    /// bytes before the end of the area.
    #[test]
    fn vgwrap_wrap_back_to_512_gives_lvm2s_bytes() {
        let lvm2 = area_of(VGWRAP);
        let text49 = &lvm2[57344..57344 + 3852];
        let text50 = &lvm2[512..512 + 3858];
        let mut h = header_of(VGWRAP);
        h.raw_locns[0] = locn(57344, 3852, calc_crc(INITIAL_CRC, text49));
        let mut area = lvm2.to_vec();
        area[512..4608].fill(0x5a);
        let new = write_text(&h, &mut area, text50).unwrap();
        assert_eq!((new.offset, new.size), (512, 3859));
        assert!(area == lvm2);
    }

    /// A copy that straddles the end of the area, built by hand from the
    /// real text of seqno 51: 1024 bytes at the end, the rest at 512.
    #[test]
    fn reads_a_copy_that_straddles_the_end() {
        let h0 = header_of(VGWRAP);
        let lvm2 = area_of(VGWRAP);
        let text = &lvm2[4608..4608 + 3866]; // with its NUL
        let mut area = lvm2.to_vec();
        area[60416..61440].copy_from_slice(&text[..1024]);
        area[512..512 + 2842].copy_from_slice(&text[1024..]);
        let mut h = h0.clone();
        h.raw_locns[0] = locn(60416, 3866, 0x4ede_4b98);
        assert_eq!(
            locate_text(&h, &h.raw_locns[0]).unwrap(),
            (
                Span {
                    offset: 60416,
                    len: 1024
                },
                Some(Span {
                    offset: 512,
                    len: 2842
                })
            )
        );
        let read = read_slot_text(&h, &area, Slot::Committed).unwrap();
        assert_eq!(read, &text[..3865]);
        // Same text, unwrapped: equal.
        assert_eq!(read, read_slot_text(&h0, lvm2, Slot::Committed).unwrap());
        // A straddling copy whose second half is damaged is caught.
        area[600] ^= 1;
        assert!(matches!(
            read_slot_text(&h, &area, Slot::Committed),
            Err(MdaError::BadTextChecksum { offset: 60416, .. })
        ));
    }

    /// And one that next_placement makes straddle: after a pretend copy of
    /// 3000 bytes at 57344 (last byte 60343) the next starts at 60416 and
    /// wraps after 1024 bytes; the pretend copy is left whole.
    #[test]
    fn writes_a_copy_that_straddles_the_end() {
        let lvm2 = area_of(VGWRAP);
        let text = read_slot_text(&header_of(VGWRAP), lvm2, Slot::Committed).unwrap();
        let mut area = lvm2.to_vec();
        area[57344 + 2999] = 0; // the pretend copy's NUL
        let old_text = area[57344..57344 + 3000].to_vec();
        let mut h = header_of(VGWRAP);
        let old = locn(57344, 3000, calc_crc(INITIAL_CRC, &old_text));
        h.raw_locns[0] = old;
        let p = next_placement(&h, 3866).unwrap();
        assert_eq!(
            p,
            Placement {
                offset: 60416,
                size: 3866,
                first: Span {
                    offset: 60416,
                    len: 1024
                },
                second: Some(Span {
                    offset: 512,
                    len: 2842
                }),
                zero_fill: Span {
                    offset: 3354,
                    len: 230
                },
            }
        );
        let new = write_text(&h, &mut area, &text).unwrap();
        assert_eq!(area[57344..60344], old_text[..]);
        assert_eq!(read_text(&h, &area, &old).unwrap(), &old_text[..2999]);
        h.commit(&new);
        assert_eq!(read_slot_text(&h, &area, Slot::Committed).unwrap(), text);
        assert!(area[3354..3584].iter().all(|&b| b == 0));
    }

    /// lvm2's reports (vgs/pvs --units b): vg_mda_free and pv_mda_free.
    #[test]
    fn free_space_matches_lvm2s_reports() {
        assert_eq!(header_of(VGWRAP).max_text_size().unwrap(), 29_952);
        assert_eq!(header_of(VGONE).max_text_size().unwrap(), 521_472);
        assert_eq!(header_of(VGWRAP).free_bytes().unwrap(), 25_600);
        assert_eq!(header_of(VGONE).free_bytes().unwrap(), 520_704);
        assert_eq!(header_of(VGALL_B).free_bytes().unwrap(), 515_072);
        assert_eq!(header_of(FRESH).free_bytes().unwrap(), 521_216);
    }

    #[test]
    fn header_errors() {
        let good: [u8; 512] = FRESH[MDA_START..MDA_START + 512].try_into().unwrap();
        let resign = |mut b: [u8; 512]| {
            let crc = calc_crc(INITIAL_CRC, &b[4..]);
            b[..4].copy_from_slice(&crc.to_le_bytes());
            b
        };

        assert_eq!(
            MdaHeader::decode(&good[..100], 4096).unwrap_err(),
            MdaError::Truncated {
                start: 4096,
                found: 100
            }
        );

        let mut b = good;
        b[5] = b'X';
        let err = MdaHeader::decode(&b, 4096).unwrap_err();
        assert!(
            matches!(err, MdaError::BadMagic { start: 4096, .. }),
            "{err}"
        );
        assert!(MdaHeader::decode(&[0u8; 512], 4096).is_err());

        let mut b = good;
        b[100] = 1;
        let err = MdaHeader::decode(&b, 4096).unwrap_err();
        assert_eq!(
            err,
            MdaError::BadChecksum {
                start: 4096,
                found: 0xdb8e_d616,
                expected: calc_crc(INITIAL_CRC, &b[4..]),
            }
        );
        assert!(err
            .to_string()
            .starts_with("metadata area at 4096: bad checksum 0xdb8ed616, expected 0x"));

        let mut b = good;
        b[20] = 2;
        assert_eq!(
            MdaHeader::decode(&resign(b), 4096).unwrap_err(),
            MdaError::BadVersion {
                start: 4096,
                found: 2
            }
        );

        assert_eq!(
            MdaHeader::decode(&good, 8192).unwrap_err(),
            MdaError::WrongStart {
                start: 8192,
                found: 4096
            }
        );
    }

    #[test]
    fn text_errors() {
        let h = header_of(VGWRAP);
        let lvm2 = area_of(VGWRAP);

        assert_eq!(
            read_slot_text(&h, lvm2, Slot::Precommitted).unwrap_err(),
            MdaError::SlotEmpty {
                start: 4096,
                slot: Slot::Precommitted
            }
        );
        assert_eq!(
            read_slot_text(&header_of(FRESH), &FRESH[4096..], Slot::Committed)
                .unwrap_err()
                .to_string(),
            "metadata area at 4096: committed slot is empty"
        );

        let mut area = lvm2.to_vec();
        area[5000] ^= 0x20;
        let err = read_slot_text(&h, &area, Slot::Committed).unwrap_err();
        assert_eq!(
            err,
            MdaError::BadTextChecksum {
                start: 4096,
                offset: 4608,
                found: calc_crc(INITIAL_CRC, &area[4608..4608 + 3866]),
                expected: 0x4ede_4b98,
            }
        );

        // The last byte is not a NUL, yet the checksum matches it.
        let mut area = lvm2.to_vec();
        area[4608 + 3865] = b'\n';
        let mut h2 = h.clone();
        h2.raw_locns[0].checksum = calc_crc(INITIAL_CRC, &area[4608..4608 + 3866]);
        assert_eq!(
            read_slot_text(&h2, &area, Slot::Committed).unwrap_err(),
            MdaError::MissingNul {
                start: 4096,
                offset: 4608,
                size: 3866
            }
        );

        for (offset, size) in [
            (0, 10),              // inside the header
            (100, 10),            // inside the header
            (61440, 10),          // at the end
            (70000, 10),          // past the end
            (512, 0),             // nothing
            (512, 61440 - 511),   // longer than the buffer
            (4608, u64::MAX),     // absurd
            (u64::MAX, u64::MAX), // absurd
        ] {
            let mut h2 = h.clone();
            h2.raw_locns[0] = locn(offset, size, 0);
            assert_eq!(
                read_slot_text(&h2, lvm2, Slot::Committed).unwrap_err(),
                MdaError::OutOfArea {
                    start: 4096,
                    offset,
                    size,
                    area_size: 61440
                },
                "{offset} {size}"
            );
        }

        // The caller gave too few bytes of the area.
        assert_eq!(
            read_slot_text(&h, &lvm2[..8000], Slot::Committed).unwrap_err(),
            MdaError::AreaShort {
                start: 4096,
                needed: 8474,
                found: 8000
            }
        );
        // An absurd area size with a copy far beyond the bytes given.
        let mut h2 = h.clone();
        h2.size = u64::MAX;
        h2.raw_locns[0] = locn(u64::MAX - 10, 5, 0);
        assert!(matches!(
            read_slot_text(&h2, lvm2, Slot::Committed),
            Err(MdaError::AreaShort { .. })
        ));
    }

    #[test]
    fn placement_errors() {
        let h = header_of(VGWRAP);
        let max = h.max_text_size().unwrap();
        assert_eq!(
            next_placement(&h, max + 1).unwrap_err(),
            MdaError::TextTooLarge {
                start: 4096,
                size: max + 1,
                max
            }
        );
        assert!(next_placement(&h, max).is_ok());
        for size in [0, 1] {
            assert_eq!(
                next_placement(&h, size).unwrap_err(),
                MdaError::TextTooSmall { start: 4096, size }
            );
        }
        assert_eq!(
            next_placement(&MdaHeader::new(4096, 1535), 100).unwrap_err(),
            MdaError::AreaTooSmall {
                start: 4096,
                size: 1535
            }
        );
        // The smallest area: one byte of text and its NUL.
        let tiny = MdaHeader::new(4096, 1536);
        assert_eq!(tiny.max_text_size().unwrap(), 0);
        assert_eq!(
            next_placement(&MdaHeader::new(4096, 2560), 2)
                .unwrap()
                .offset,
            512
        );
        assert_eq!(
            next_placement(&MdaHeader::new(4100, 61440), 100).unwrap_err(),
            MdaError::Unaligned { start: 4100 }
        );
        // A committed copy larger than today's maximum (older lvm2 allowed
        // it) that the next copy would wrap into.
        let mut big = h.clone();
        big.raw_locns[0] = locn(10240, 45000, 0);
        assert_eq!(
            next_placement(&big, 20000).unwrap_err(),
            MdaError::Overlap {
                start: 4096,
                new_offset: 55296,
                new_size: 20000,
                old_offset: 10240,
                old_size: 45000,
            }
        );
        // A committed slot pointing outside the buffer: refuse to write.
        let mut bad = h.clone();
        bad.raw_locns[0] = locn(61440, 100, 0);
        assert!(matches!(
            next_placement(&bad, 100),
            Err(MdaError::OutOfArea { offset: 61440, .. })
        ));
        // An ignored or empty slot 0: start over at 512.
        let mut ignored = h.clone();
        ignored.raw_locns[0].flags = RAW_LOCN_IGNORED;
        assert_eq!(next_placement(&ignored, 100).unwrap().offset, 512);
    }

    #[test]
    fn write_and_apply_errors() {
        let h = header_of(VGWRAP);
        let mut area = area_of(VGWRAP).to_vec();
        assert_eq!(
            write_text(&h, &mut area, b"vg {\0}").unwrap_err(),
            MdaError::EmbeddedNul { at: 4 }
        );
        let p = next_placement(&h, 10).unwrap();
        assert_eq!(
            apply_placement(&h, &mut area, &p, b"short").unwrap_err(),
            MdaError::LengthMismatch {
                start: 4096,
                expected: 10,
                found: 5
            }
        );
        let mut short = vec![0u8; 5000];
        let before = short.clone();
        assert_eq!(
            apply_placement(&h, &mut short, &p, b"123456789\0").unwrap_err(),
            MdaError::AreaShort {
                start: 4096,
                needed: 8714,
                found: 5000
            }
        );
        assert_eq!(short, before, "nothing written on error");
    }

    #[test]
    fn commit_protocol_like_lvm2() {
        let mut h = header_of(VGWRAP);
        let old = h.raw_locns[0];
        let new = locn(8704, 100, 0x1234);
        h.precommit(&new);
        assert_eq!(h.raw_locns, [old, new]);
        h.commit(&new);
        assert_eq!(h.raw_locns, [new, RawLocn::default()]);
        // Revert (size 0) clears only the precommitted slot.
        h.precommit(&locn(9216, 100, 1));
        h.precommit(&RawLocn::default());
        assert_eq!(h.raw_locns, [new, RawLocn::default()]);
        // An ignored slot 0 is reset before use, and loses its flag.
        h.raw_locns[0].flags = RAW_LOCN_IGNORED;
        h.raw_locns[1] = locn(1, 2, 3);
        h.precommit(&new);
        assert_eq!(h.raw_locns, [RawLocn::default(), new]);
    }

    fn arb_locn() -> impl Strategy<Value = RawLocn> {
        (any::<u64>(), any::<u64>(), any::<u32>(), any::<u32>()).prop_map(
            |(offset, size, checksum, flags)| RawLocn {
                offset,
                size,
                checksum,
                flags,
            },
        )
    }

    /// Bytes of a text of `len` characters (no NUL), different per commit.
    fn text_for(commit: usize, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| b'!' + ((i * 7 + commit * 13) % 90) as u8)
            .collect()
    }

    /// Byte ranges (half-open) a copy occupies.
    fn ranges(first: Span, second: Option<Span>) -> Vec<(u64, u64)> {
        std::iter::once(first)
            .chain(second)
            .map(|s| (s.offset, s.end()))
            .collect()
    }

    fn intersects(a: &[(u64, u64)], b: &[(u64, u64)]) -> bool {
        a.iter()
            .any(|&(a0, a1)| b.iter().any(|&(b0, b1)| a0 < b1 && b0 < a1))
    }

    proptest! {
        #[test]
        fn header_round_trip(start in any::<u64>(), size in any::<u64>(), a in arb_locn(), b in arb_locn()) {
            let h = MdaHeader { start, size, raw_locns: [a, b] };
            let bytes = h.encode();
            prop_assert_eq!(MdaHeader::decode(&bytes, start).unwrap(), h.clone());
            prop_assert_eq!(MdaHeader::decode(&bytes, start).unwrap().encode(), bytes);
        }

        /// Commits of random sizes into a random area: every copy lands in
        /// the buffer, 512-aligned, without touching the committed copy
        /// (text or zero fill), and reads back; the committed copy still
        /// reads back after the next one is written.
        #[test]
        fn commits_never_clobber_the_committed_copy(
            sectors in 3u64..160,
            start_sector in 1u64..4096,
            fractions in proptest::collection::vec(0.0f64..=1.0, 1..120),
        ) {
            let size = sectors * 512;
            let mut h = MdaHeader::new(start_sector * 512, size);
            let max = h.max_text_size().unwrap();
            prop_assume!(max >= 2);
            let mut area = vec![0u8; size as usize];
            let mut committed: Option<(RawLocn, Vec<u8>)> = None;
            for (i, f) in fractions.iter().enumerate() {
                let copy_size = 2 + ((max - 2) as f64 * f) as u64;
                let text = text_for(i, copy_size as usize - 1);
                let p = next_placement(&h, copy_size).unwrap();
                prop_assert_eq!(p.offset % 512, 0);
                prop_assert!(p.offset >= 512 && p.first.end() <= size);
                if let Some(s) = p.second {
                    prop_assert_eq!(s.offset, 512);
                    prop_assert_eq!(p.first.end(), size);
                }
                prop_assert!(p.zero_fill.end() <= size);
                prop_assert!(p.zero_fill.end() % 512 == 0 || p.zero_fill.end() == size);
                if let Some((old, _)) = &committed {
                    let (f, s) = locate_text(&h, old).unwrap();
                    let mut written = ranges(p.first, p.second);
                    written.push((p.zero_fill.offset, p.zero_fill.end()));
                    prop_assert!(!intersects(&written, &ranges(f, s)),
                        "commit {i}: {p:?} hits {old:?}");
                }
                let new = write_text(&h, &mut area, &text).unwrap();
                prop_assert_eq!((new.offset, new.size), (p.offset, p.size));
                if let Some((old, old_text)) = &committed {
                    prop_assert_eq!(&read_text(&h, &area, old).unwrap(), old_text);
                }
                h.precommit(&new);
                prop_assert_eq!(&read_slot_text(&h, &area, Slot::Precommitted).unwrap(), &text);
                h.commit(&new);
                let h2 = MdaHeader::decode(&h.encode(), h.start).unwrap();
                prop_assert_eq!(&read_slot_text(&h2, &area, Slot::Committed).unwrap(), &text);
                committed = Some((new, text));
            }
        }

        /// Sizes beyond the maximum are refused, never placed.
        #[test]
        fn too_large_is_refused(sectors in 3u64..4096, extra in 1u64..100_000) {
            let h = MdaHeader::new(4096, sectors * 512);
            let max = h.max_text_size().unwrap();
            let is_too_large = matches!(
                next_placement(&h, max + extra),
                Err(MdaError::TextTooLarge { .. })
            );
            prop_assert!(is_too_large);
        }

        /// Whatever the committed copy (even one larger than today's
        /// maximum, or in an area whose size is not a multiple of 512):
        /// either the new copy lands clear of it, or lvm2's overlap check
        /// refuses.
        #[test]
        fn placement_is_clear_of_any_committed_copy(
            size in 1536u64..70_000,
            offset_f in 0.0f64..1.0,
            old_f in 0.0f64..1.0,
            new_f in 0.0f64..=1.0,
        ) {
            let mut h = MdaHeader::new(4096, size);
            let offset = 512 + ((size - 512) as f64 * offset_f) as u64;
            let old_size = 1 + ((size - 513) as f64 * old_f) as u64;
            h.raw_locns[0] = locn(offset.min(size - 1), old_size, 0);
            let old = h.raw_locns[0];
            let max = h.max_text_size().unwrap();
            prop_assume!(max >= 2);
            let new_size = 2 + ((max - 2) as f64 * new_f) as u64;
            match next_placement(&h, new_size) {
                Ok(p) => {
                    let (f, s) = locate_text(&h, &old).unwrap();
                    let mut written = ranges(p.first, p.second);
                    written.push((p.zero_fill.offset, p.zero_fill.end()));
                    prop_assert!(!intersects(&written, &ranges(f, s)), "{p:?} hits {old:?}");
                    prop_assert!(written.iter().all(|&(a, b)| a >= 512 && b <= size));
                }
                Err(MdaError::Overlap { .. }) => prop_assert!(old.size > max || size % 512 != 0),
                Err(e) => prop_assert!(false, "{e}"),
            }
        }

        /// Reading any slot of any header over any bytes never panics.
        #[test]
        fn reading_arbitrary_slots_never_panics(
            size in any::<u64>(),
            a in arb_locn(),
            small in (0u64..70_000, 0u64..70_000, any::<u32>()),
            area in proptest::collection::vec(any::<u8>(), 0..4096),
        ) {
            let b = locn(small.0, small.1, small.2);
            for size in [size, size % 70_000] {
                let h = MdaHeader { start: 4096, size, raw_locns: [a, b] };
                let _ = read_slot_text(&h, &area, Slot::Committed);
                let _ = read_slot_text(&h, &area, Slot::Precommitted);
                let _ = h.free_bytes();
                let mut copy = area.clone();
                let _ = write_text(&h, &mut copy, b"vg {\n}\n");
            }
        }
    }
}
