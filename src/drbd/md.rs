//! DRBD 8.4's v08 internal metadata ("flex-internal"), as the kernel and
//! drbdmeta lay it out at the end of the backing device
//! (docs/research/drbd84.md §4):
//!
//! ```text
//! | data ............ | bitmap | activity log (32 KiB) | superblock (4 KiB) |
//!                     ^ first metadata sector = usable size
//! ```
//!
//! Everything on disk is big-endian except the bitmap (bit n of the device
//! is bit n%8 of byte n/8). This module computes the layout, encodes and
//! decodes the superblock and activity-log transactions, and does what
//! `drbdmeta create-md` and `drbdmeta apply-al` do; [`MdDevice`] reads and
//! writes them with O_DIRECT, as drbdmeta does, so the kernel's own writes
//! (which bypass the page cache) are what cairn reads.

use std::path::Path;

use crate::blockdev::{Device, DeviceError};

/// A sector: the unit of every size and offset in DRBD metadata, in bytes.
pub const SECTOR: u64 = 512;
/// A clean v08 superblock.
pub const MAGIC_08: u32 = 0x8374_026B;
/// What the 8.4 kernel writes while attached: the activity log must be
/// replayed (apply-al) before the next attach.
pub const MAGIC_84_UNCLEAN: u32 = 0x8374_026C;
/// Every activity-log transaction block starts with it.
pub const AL_MAGIC: u32 = 0x69CB_65A2;
/// `uuid[CURRENT]` of freshly created metadata.
pub const UUID_JUST_CREATED: u64 = 4;
/// An activity-log slot with no extent.
pub const LC_FREE: u32 = u32::MAX;
/// drbdmeta create-md's al-extents.
pub const DEFAULT_AL_EXTENTS: u32 = 257;
/// One bitmap bit per 4 KiB.
pub const BM_BYTES_PER_BIT: u32 = 4096;
/// One activity-log extent: 4 MiB, that is 128 bitmap bytes.
pub const AL_EXTENT_BYTES: u64 = 4 << 20;
const BITMAP_BYTES_PER_EXTENT: u64 = AL_EXTENT_BYTES / BM_BYTES_PER_BIT as u64 / 8;
/// Transaction type of a transaction that changes slots (AL_TR_UPDATE).
pub const AL_TR_UPDATE: u16 = 0;
/// Transaction type of an empty, initialised slot (AL_TR_INITIALIZED).
pub const AL_TR_INITIALIZED: u16 = 0xFFFF;
const AL_UPDATES_PER_TRANSACTION: usize = 64;
const AL_CONTEXT_PER_TRANSACTION: usize = 919;
const BLOCK: usize = 4096;

bitflags::bitflags! {
    /// `MDF_*`, the superblock's flags (linux/drbd.h).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct MdFlags: u32 {
        /// MDF_CONSISTENT: the data is consistent (not mid-resync as target).
        const CONSISTENT = 0x1;
        /// MDF_PRIMARY_IND: the node was primary when the metadata was last written.
        const PRIMARY_IND = 0x2;
        /// MDF_CONNECTED_IND: it was connected.
        const CONNECTED_IND = 0x4;
        /// MDF_FULL_SYNC: a full resync is due.
        const FULL_SYNC = 0x8;
        /// MDF_WAS_UP_TO_DATE: the disk was UpToDate.
        const WAS_UP_TO_DATE = 0x10;
        /// MDF_PEER_OUT_DATED: the peer's disk is known to be Outdated.
        const PEER_OUT_DATED = 0x20;
        /// MDF_CRASHED_PRIMARY: it went away while primary.
        const CRASHED_PRIMARY = 0x40;
        /// MDF_AL_CLEAN: the activity log needs no replay.
        const AL_CLEAN = 0x80;
        /// MDF_AL_DISABLED: the activity log is off (`disk { disable-al }`, 8.4.5+).
        const AL_DISABLED = 0x100;
        const _ = !0;
    }
}

/// Why DRBD metadata could not be read, written or created.
#[derive(Debug, thiserror::Error)]
pub enum MdError {
    /// Opening or I/O on the backing device failed.
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(
        "{path}: no DRBD v08 metadata at the end of the device (magic {magic:#010x}): create it \
         with `cairn drbd create-md`"
    )]
    /// The superblock has no v08 magic.
    NotFound {
        /// The backing device.
        path: String,
        /// The magic found there.
        magic: u32,
    },
    #[error(
        "{path}: holds {version} metadata, which DRBD 8.4 cannot use: convert it with drbdmeta, \
         or create v08 metadata (cairn drbd create-md --force; the bitmap is lost)"
    )]
    /// The superblock is another metadata version's (v06, v07, v09).
    OtherVersion {
        /// The backing device.
        path: String,
        /// The version found, e.g. "v09".
        version: &'static str,
    },
    #[error("{path}: metadata does not fit the device: {why}")]
    /// The superblock describes a layout this device cannot hold.
    Inconsistent {
        /// The backing device.
        path: String,
        /// What does not fit.
        why: String,
    },
    #[error(
        "{path}: the device is too small for DRBD's internal metadata ({sectors} sectors; it \
         needs more than {needed})"
    )]
    /// The device cannot hold the metadata and any data.
    TooSmall {
        /// The backing device.
        path: String,
        /// Its size in 512-byte sectors.
        sectors: u64,
        /// Sectors it needs at least.
        needed: u64,
    },
}

/// Result of a metadata operation.
pub type Result<T> = std::result::Result<T, MdError>;

/// Where the metadata of a device of `device_sectors` lives, in sectors
/// relative to the superblock (negative: before it), as the kernel and
/// drbdmeta compute it for internal metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The backing device's size in 512-byte sectors.
    pub device_sectors: u64,
    /// Activity-log stripes (drbdmeta's `--al-stripes`, default 1).
    pub al_stripes: u32,
    /// Size of one activity-log stripe in 4 KiB blocks (`--al-stripe-size`, default 8: 32 KiB).
    pub al_stripe_size_4k: u32,
}

impl Layout {
    /// The default activity log: one stripe of 32 KiB.
    pub fn internal(device_sectors: u64) -> Layout {
        Layout {
            device_sectors,
            al_stripes: 1,
            al_stripe_size_4k: 8,
        }
    }

    /// The activity log's size in sectors.
    pub fn al_sectors(&self) -> u64 {
        u64::from(self.al_stripes) * u64::from(self.al_stripe_size_4k) * 8
    }

    /// The bitmap's size: one bit per 4 KiB of the whole device, rounded
    /// up to 64 bits and then to 4 KiB.
    pub fn bitmap_bytes(&self) -> u64 {
        let bits = self.device_sectors.div_ceil(8).next_multiple_of(64);
        (bits / 8).next_multiple_of(BLOCK as u64)
    }

    /// The whole metadata's size in sectors: bitmap, activity log and the
    /// 4 KiB superblock (the superblock's `md_size_sect`).
    pub fn md_size_sectors(&self) -> u64 {
        self.bitmap_bytes() / SECTOR + 8 + self.al_sectors()
    }

    /// Byte offset of the superblock: the last 4 KiB-aligned 4 KiB.
    pub fn superblock_offset(&self) -> u64 {
        ((self.device_sectors & !7) - 8) * SECTOR
    }

    /// The activity log's offset from the superblock in sectors (negative),
    /// as the superblock's `al_offset` stores it.
    pub fn al_offset_sectors(&self) -> i32 {
        -(self.al_sectors() as i32)
    }

    /// The bitmap's offset from the superblock in sectors (negative), as the
    /// superblock's `bm_offset` stores it.
    pub fn bm_offset_sectors(&self) -> i32 {
        -(self.md_size_sectors() as i32) + 8
    }

    /// Byte offset of the activity log on the device.
    pub fn al_offset(&self) -> u64 {
        self.superblock_offset() - self.al_sectors() * SECTOR
    }

    /// Byte offset of the bitmap on the device.
    pub fn bitmap_offset(&self) -> u64 {
        self.al_offset() - self.bitmap_bytes()
    }

    /// Sectors left for data: everything before the bitmap.
    pub fn usable_sectors(&self) -> u64 {
        (self.device_sectors & !7).saturating_sub(self.md_size_sectors())
    }

    fn check(&self, path: &str) -> Result<()> {
        let needed = self.md_size_sectors() + 8;
        if self.device_sectors < needed {
            return Err(MdError::TooSmall {
                path: path.to_owned(),
                sectors: self.device_sectors,
                needed,
            });
        }
        Ok(())
    }
}

/// The 4 KiB superblock (`struct meta_data_on_disk`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// The size last agreed on, in sectors (0 until first attached).
    pub la_size_sect: u64,
    /// CURRENT, BITMAP, HISTORY_START, HISTORY_END.
    pub uuid: [u64; 4],
    /// A random id of this device's data, 0 until the kernel sets one.
    pub device_uuid: u64,
    /// MDF_* flags.
    pub flags: MdFlags,
    /// [`MAGIC_08`] when clean, [`MAGIC_84_UNCLEAN`] while attached.
    pub magic: u32,
    /// The metadata's size in sectors ([`Layout::md_size_sectors`]).
    pub md_size_sect: u32,
    /// The activity log's offset from the superblock in sectors (negative).
    pub al_offset: i32,
    /// `al-extents`: activity-log slots in use.
    pub al_nr_extents: u32,
    /// The bitmap's offset from the superblock in sectors (negative).
    pub bm_offset: i32,
    /// Bytes of data per bitmap bit: [`BM_BYTES_PER_BIT`].
    pub bm_bytes_per_bit: u32,
    /// The largest I/O the peer accepted last time, in bytes (0 until connected).
    pub la_peer_max_bio_size: u32,
    /// Activity-log stripes.
    pub al_stripes: u32,
    /// One activity-log stripe's size in 4 KiB blocks.
    pub al_stripe_size_4k: u32,
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn be_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

impl Superblock {
    /// What `drbdmeta create-md` writes for `layout`.
    pub fn created(layout: &Layout) -> Superblock {
        Superblock {
            la_size_sect: 0,
            uuid: [UUID_JUST_CREATED, 0, 0, 0],
            device_uuid: 0,
            flags: MdFlags::AL_CLEAN,
            magic: MAGIC_08,
            md_size_sect: layout.md_size_sectors() as u32,
            al_offset: layout.al_offset_sectors(),
            al_nr_extents: DEFAULT_AL_EXTENTS,
            bm_offset: layout.bm_offset_sectors(),
            bm_bytes_per_bit: BM_BYTES_PER_BIT,
            la_peer_max_bio_size: 0,
            al_stripes: layout.al_stripes,
            al_stripe_size_4k: layout.al_stripe_size_4k,
        }
    }

    /// The 4 KiB block as it is on disk (big-endian).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; BLOCK];
        b[0..8].copy_from_slice(&self.la_size_sect.to_be_bytes());
        for (i, u) in self.uuid.iter().enumerate() {
            b[8 + 8 * i..16 + 8 * i].copy_from_slice(&u.to_be_bytes());
        }
        b[40..48].copy_from_slice(&self.device_uuid.to_be_bytes());
        // 48..56: reserved.
        let words: [(usize, u32); 11] = [
            (56, self.flags.bits()),
            (60, self.magic),
            (64, self.md_size_sect),
            (68, self.al_offset as u32),
            (72, self.al_nr_extents),
            (76, self.bm_offset as u32),
            (80, self.bm_bytes_per_bit),
            (84, self.la_peer_max_bio_size),
            (88, self.al_stripes),
            (92, self.al_stripe_size_4k),
            (96, 0),
        ];
        for (at, v) in words {
            b[at..at + 4].copy_from_slice(&v.to_be_bytes());
        }
        b
    }

    /// Reads a superblock from its 4 KiB block; checks nothing (see `magic`).
    pub fn decode(b: &[u8]) -> Superblock {
        let mut uuid = [0u64; 4];
        for (i, u) in uuid.iter_mut().enumerate() {
            *u = be_u64(b, 8 + 8 * i);
        }
        Superblock {
            la_size_sect: be_u64(b, 0),
            uuid,
            device_uuid: be_u64(b, 40),
            flags: MdFlags::from_bits_retain(be_u32(b, 56)),
            magic: be_u32(b, 60),
            md_size_sect: be_u32(b, 64),
            al_offset: be_u32(b, 68) as i32,
            al_nr_extents: be_u32(b, 72),
            bm_offset: be_u32(b, 76) as i32,
            bm_bytes_per_bit: be_u32(b, 80),
            la_peer_max_bio_size: be_u32(b, 84),
            al_stripes: be_u32(b, 88),
            al_stripe_size_4k: be_u32(b, 92),
        }
    }

    /// Whether the kernel will attach it as it is (else: ERR_MD_UNCLEAN
    /// 165 until the activity log is applied).
    pub fn is_clean(&self) -> bool {
        self.magic == MAGIC_08 && self.flags.contains(MdFlags::AL_CLEAN)
    }

    /// The layout it describes on a device of `device_sectors`.
    pub fn layout(&self, device_sectors: u64) -> Layout {
        // 0/0 is read as the default 1 x 32 KiB (the kernel does the same).
        let (stripes, size) = match (self.al_stripes, self.al_stripe_size_4k) {
            (0, 0) => (1, 8),
            other => other,
        };
        Layout {
            device_sectors,
            al_stripes: stripes,
            al_stripe_size_4k: size,
        }
    }
}

/// DRBD's activity-log checksum: CRC-32C with seed 0 and no final
/// inversion (the kernel's raw `crc32c(0, ...)`).
pub const CRC32C_RAW: crc::Algorithm<u32> = crc::Algorithm {
    width: 32,
    poly: 0x1EDC_6F41,
    init: 0,
    refin: true,
    refout: true,
    xorout: 0,
    check: 0,
    residue: 0,
};

fn al_crc(block: &[u8]) -> u32 {
    let mut copy = block.to_vec();
    copy[8..12].fill(0);
    crc::Crc::<u32>::new(&CRC32C_RAW).checksum(&copy)
}

/// One 4 KiB activity-log transaction (8.4 format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlTransaction {
    /// Sequence number: the highest is the newest.
    pub tr_number: u32,
    /// [`AL_TR_UPDATE`] or [`AL_TR_INITIALIZED`].
    pub transaction_type: u16,
    /// (slot, extent) pairs this transaction changed.
    pub updates: Vec<(u16, u32)>,
    /// Slots in the log (the al-extents in force).
    pub context_size: u16,
    /// First slot of the window `context` carries.
    pub context_start_slot_nr: u16,
    /// Extents of slots `context_start_slot_nr..`, up to 919 of them.
    pub context: Vec<u32>,
}

impl AlTransaction {
    /// What create-md and apply-al write in every slot.
    pub fn initialized() -> AlTransaction {
        AlTransaction {
            tr_number: 0,
            transaction_type: AL_TR_INITIALIZED,
            updates: Vec::new(),
            context_size: 0,
            context_start_slot_nr: 0,
            context: Vec::new(),
        }
    }

    /// The 4 KiB block as it is on disk, with its CRC.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; BLOCK];
        b[0..4].copy_from_slice(&AL_MAGIC.to_be_bytes());
        b[4..8].copy_from_slice(&self.tr_number.to_be_bytes());
        b[12..14].copy_from_slice(&self.transaction_type.to_be_bytes());
        b[14..16].copy_from_slice(&(self.updates.len() as u16).to_be_bytes());
        b[16..18].copy_from_slice(&self.context_size.to_be_bytes());
        b[18..20].copy_from_slice(&self.context_start_slot_nr.to_be_bytes());
        if self.transaction_type != AL_TR_INITIALIZED {
            // Unused update slots read "none", as the kernel writes them.
            for i in 0..AL_UPDATES_PER_TRANSACTION {
                let (slot, extent) = self.updates.get(i).copied().unwrap_or((u16::MAX, LC_FREE));
                b[36 + 2 * i..38 + 2 * i].copy_from_slice(&slot.to_be_bytes());
                b[164 + 4 * i..168 + 4 * i].copy_from_slice(&extent.to_be_bytes());
            }
            for i in 0..AL_CONTEXT_PER_TRANSACTION {
                let extent = self.context.get(i).copied().unwrap_or(LC_FREE);
                b[420 + 4 * i..424 + 4 * i].copy_from_slice(&extent.to_be_bytes());
            }
        }
        let crc = al_crc(&b);
        b[8..12].copy_from_slice(&crc.to_be_bytes());
        b
    }

    /// A valid transaction, or None (no magic, or a torn write: bad CRC).
    pub fn decode(b: &[u8]) -> Option<AlTransaction> {
        if be_u32(b, 0) != AL_MAGIC || be_u32(b, 8) != al_crc(b) {
            return None;
        }
        let n_updates = usize::from(be_u16(b, 14)).min(AL_UPDATES_PER_TRANSACTION);
        let updates = (0..n_updates)
            .map(|i| (be_u16(b, 36 + 2 * i), be_u32(b, 164 + 4 * i)))
            .collect();
        let context = (0..AL_CONTEXT_PER_TRANSACTION)
            .map(|i| be_u32(b, 420 + 4 * i))
            .collect();
        Some(AlTransaction {
            tr_number: be_u32(b, 4),
            transaction_type: be_u16(b, 12),
            updates,
            context_size: be_u16(b, 16),
            context_start_slot_nr: be_u16(b, 18),
            context,
        })
    }
}

/// The extents the activity log says were hot (possibly being written)
/// when the device went away: the update transactions replayed oldest
/// first, each setting its context window, then its updates.
pub fn hot_extents(transactions: &[AlTransaction]) -> Vec<u32> {
    let mut updates: Vec<&AlTransaction> = transactions
        .iter()
        .filter(|t| t.transaction_type == AL_TR_UPDATE)
        .collect();
    updates.sort_by_key(|t| t.tr_number);
    let size = updates
        .iter()
        .map(|t| usize::from(t.context_size))
        .max()
        .unwrap_or(0);
    let mut slots = vec![LC_FREE; size];
    for t in updates {
        let start = usize::from(t.context_start_slot_nr);
        for (i, &extent) in t.context.iter().enumerate() {
            let slot = start + i;
            if slot >= usize::from(t.context_size) || slot >= slots.len() {
                break;
            }
            slots[slot] = extent;
        }
        for &(slot, extent) in &t.updates {
            if let Some(s) = slots.get_mut(usize::from(slot)) {
                *s = extent;
            }
        }
    }
    let mut hot: Vec<u32> = slots.into_iter().filter(|&e| e != LC_FREE).collect();
    hot.sort_unstable();
    hot.dedup();
    hot
}

/// What apply-al did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Applied {
    /// Update transactions found in the log.
    pub transactions: usize,
    /// Extents whose bitmap bits were set (the device was primary).
    pub extents_marked: Vec<u32>,
    /// The log was re-initialised.
    pub log_reset: bool,
    /// The superblock was marked clean.
    pub marked_clean: bool,
}

/// A device's metadata, read and written with O_DIRECT.
pub struct MdDevice {
    dev: Device,
    /// Where the metadata lies on this device.
    pub layout: Layout,
}

impl MdDevice {
    /// Opens `path` for its internal metadata (writable for create/apply).
    pub fn open(path: &Path, writable: bool) -> Result<MdDevice> {
        let dev = Device::open(path, writable)?;
        let layout = Layout::internal(dev.size / SECTOR);
        layout.check(&path.display().to_string())?;
        Ok(MdDevice { dev, layout })
    }

    /// Opens `path` writable and claims it O_EXCL, as drbdmeta does for
    /// create-md and apply-al: refused ([`DeviceError::Busy`]) while a DRBD
    /// minor has it attached (the kernel claims its backing disk), or it is
    /// mounted or held by device-mapper or md; nobody can attach it until
    /// this is dropped.
    pub fn open_exclusive(path: &Path) -> Result<MdDevice> {
        let dev = Device::open_exclusive(path, true)?;
        let layout = Layout::internal(dev.size / SECTOR);
        layout.check(&path.display().to_string())?;
        Ok(MdDevice { dev, layout })
    }

    /// The first `len` bytes of the device (where its data starts).
    pub fn head(&self, len: usize) -> Result<Vec<u8>> {
        Ok(self.dev.read_at(0, len.min(self.dev.size as usize))?)
    }

    fn path(&self) -> String {
        self.dev.path.display().to_string()
    }

    /// The superblock, checked to be v08 metadata that fits the device.
    pub fn superblock(&self) -> Result<Superblock> {
        let raw = self.dev.read_at(self.layout.superblock_offset(), BLOCK)?;
        let sb = Superblock::decode(&raw);
        let other = match sb.magic {
            0x8374_026A => Some("DRBD 0.7 (v07)"),
            0x8374_026D => Some("DRBD 9 (v09)"),
            _ => None,
        };
        if let Some(version) = other {
            return Err(MdError::OtherVersion {
                path: self.path(),
                version,
            });
        }
        if sb.magic != MAGIC_08 && sb.magic != MAGIC_84_UNCLEAN {
            return Err(MdError::NotFound {
                path: self.path(),
                magic: sb.magic,
            });
        }
        let layout = sb.layout(self.layout.device_sectors);
        let why = if sb.bm_bytes_per_bit != BM_BYTES_PER_BIT {
            Some(format!("{} bytes per bitmap bit", sb.bm_bytes_per_bit))
        } else if sb.al_offset != layout.al_offset_sectors() {
            Some(format!(
                "activity log at {} sectors, expected {} (external metadata, or the device was resized \
                 offline)",
                sb.al_offset,
                layout.al_offset_sectors()
            ))
        } else if i64::from(sb.md_size_sect) != layout.md_size_sectors() as i64
            || sb.bm_offset != layout.bm_offset_sectors()
        {
            Some(format!(
                "metadata of {} sectors with the bitmap at {}; this device needs {} at {} (was it \
                 resized offline?)",
                sb.md_size_sect,
                sb.bm_offset,
                layout.md_size_sectors(),
                layout.bm_offset_sectors()
            ))
        } else if sb.la_size_sect > layout.usable_sectors() {
            Some(format!(
                "last agreed size {} sectors exceeds the {} usable",
                sb.la_size_sect,
                layout.usable_sectors()
            ))
        } else {
            None
        };
        if let Some(why) = why {
            return Err(MdError::Inconsistent {
                path: self.path(),
                why,
            });
        }
        Ok(sb)
    }

    /// The activity log's transactions that are valid.
    pub fn transactions(&self, layout: &Layout) -> Result<Vec<AlTransaction>> {
        let raw = self
            .dev
            .read_at(layout.al_offset(), (layout.al_sectors() * SECTOR) as usize)?;
        Ok(raw
            .chunks(BLOCK)
            .filter_map(AlTransaction::decode)
            .collect())
    }

    /// `drbdmeta create-md`: a zeroed bitmap, an initialised activity log
    /// and a fresh superblock, written in that order (the superblock last:
    /// until it lands, the device has no metadata).
    pub fn create(&self, device_uuid: u64) -> Result<Superblock> {
        let layout = self.layout;
        let zeros = vec![0u8; 1 << 20];
        let mut at = layout.bitmap_offset();
        while at < layout.al_offset() {
            let n = (layout.al_offset() - at).min(zeros.len() as u64) as usize;
            self.dev.write_at(at, &zeros[..n])?;
            at += n as u64;
        }
        self.write_initialized_log(&layout)?;
        let mut sb = Superblock::created(&layout);
        sb.device_uuid = device_uuid;
        self.dev
            .write_at(layout.superblock_offset(), &sb.encode())?;
        Ok(sb)
    }

    fn write_initialized_log(&self, layout: &Layout) -> Result<()> {
        let block = AlTransaction::initialized().encode();
        let log: Vec<u8> = (0..layout.al_sectors() / 8)
            .flat_map(|_| block.clone())
            .collect();
        self.dev.write_at(layout.al_offset(), &log)?;
        Ok(())
    }

    /// `drbdmeta apply-al`: what must happen before every attach. The log
    /// is replayed; if the device was primary, every hot extent's bitmap
    /// bits are set (those 4 MiB may differ from the peer's); the log is
    /// re-initialised when it held updates; the superblock is marked clean.
    pub fn apply_al(&self) -> Result<Applied> {
        let mut sb = self.superblock()?;
        let layout = sb.layout(self.layout.device_sectors);
        let log = self.transactions(&layout)?;
        let updates = log
            .iter()
            .filter(|t| t.transaction_type == AL_TR_UPDATE)
            .count();
        let mut applied = Applied {
            transactions: updates,
            ..Applied::default()
        };
        if sb.flags.contains(MdFlags::PRIMARY_IND) && updates > 0 {
            let bitmap = layout.bitmap_bytes();
            for extent in hot_extents(&log) {
                let start = u64::from(extent) * BITMAP_BYTES_PER_EXTENT;
                if start >= bitmap {
                    continue;
                }
                let len = BITMAP_BYTES_PER_EXTENT.min(bitmap - start) as usize;
                self.write_bitmap_ones(layout.bitmap_offset() + start, len)?;
                applied.extents_marked.push(extent);
            }
        }
        if updates > 0 {
            self.write_initialized_log(&layout)?;
            applied.log_reset = true;
        }
        if !sb.is_clean() {
            sb.flags |= MdFlags::AL_CLEAN;
            sb.magic = MAGIC_08;
            self.dev
                .write_at(layout.superblock_offset(), &sb.encode())?;
            applied.marked_clean = true;
        }
        Ok(applied)
    }

    /// Sets `len` bitmap bytes at `offset` to all ones (a read-modify-write
    /// of the 4 KiB blocks around them: O_DIRECT writes whole blocks).
    fn write_bitmap_ones(&self, offset: u64, len: usize) -> Result<()> {
        let start = offset - offset % BLOCK as u64;
        let end = (offset + len as u64).next_multiple_of(BLOCK as u64);
        let mut blocks = self.dev.read_at(start, (end - start) as usize)?;
        let from = (offset - start) as usize;
        blocks[from..from + len].fill(0xFF);
        self.dev.write_at(start, &blocks)?;
        Ok(())
    }

    /// The number of bits set in the bitmap (4 KiB blocks out of sync).
    pub fn bits_set(&self, layout: &Layout) -> Result<u64> {
        let raw = self
            .dev
            .read_at(layout.bitmap_offset(), layout.bitmap_bytes() as usize)?;
        Ok(raw.iter().map(|b| u64::from(b.count_ones())).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/drbd");
    /// The captured device: 64 MiB; each fixture is its last 64 KiB.
    const SECTORS: u64 = 131_072;
    const TAIL: u64 = 65_536;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}/{name}.md")).expect("fixture")
    }

    /// `offset` on the device, as an index into a fixture.
    fn at(offset: u64) -> usize {
        (offset - (SECTORS * SECTOR - TAIL)) as usize
    }

    #[test]
    fn layout_as_drbdmeta_and_the_kernel() {
        let l = Layout::internal(SECTORS);
        assert_eq!(l.md_size_sectors(), 80);
        assert_eq!(l.al_offset_sectors(), -64);
        assert_eq!(l.bm_offset_sectors(), -72);
        assert_eq!(l.superblock_offset(), 67_104_768);
        assert_eq!(l.al_offset(), 67_072_000);
        assert_eq!(l.bitmap_offset(), 67_067_904);
        // The size the kernel gave the attached device (la-size-sect).
        assert_eq!(l.usable_sectors(), 130_992);
        // 1 GiB: 64 bitmap sectors + 8 + 64 (docs/research/drbd84.md).
        let g = Layout::internal(2_097_152);
        assert_eq!(g.md_size_sectors(), 136);
        assert_eq!(g.usable_sectors(), 2_097_016);
        // A size that is not a multiple of 4 KiB: the tail is cut.
        let odd = Layout::internal(2_097_155);
        assert_eq!(odd.superblock_offset(), (2_097_152 - 8) * 512);
    }

    #[test]
    fn create_md_writes_drbdmeta_s_bytes() {
        let captured = fixture("created");
        let l = Layout::internal(SECTORS);
        let sb = Superblock::created(&l).encode();
        assert_eq!(&captured[at(l.superblock_offset())..], &sb[..]);
        let init = AlTransaction::initialized().encode();
        for slot in 0..8 {
            let off = at(l.al_offset()) + slot * BLOCK;
            assert_eq!(&captured[off..off + BLOCK], &init[..], "AL slot {slot}");
        }
        let bm = at(l.bitmap_offset());
        assert!(captured[bm..bm + l.bitmap_bytes() as usize]
            .iter()
            .all(|&b| b == 0));
        // What lies before the metadata is not create-md's (0xff pattern).
        assert!(captured[..bm].iter().all(|&b| b == 0xFF));
    }

    #[test]
    fn superblocks_round_trip_and_read_as_drbdmeta_dumps_them() {
        let l = Layout::internal(SECTORS);
        for name in ["created", "down", "applied"] {
            let raw = &fixture(name)[at(l.superblock_offset())..];
            let sb = Superblock::decode(raw);
            assert_eq!(sb.encode(), raw, "{name}");
        }
        let down = Superblock::decode(&fixture("down")[at(l.superblock_offset())..]);
        // drbdmeta dump-md of that state (tests/fixtures/drbd/down.dump).
        assert_eq!(down.magic, MAGIC_84_UNCLEAN);
        assert!(!down.is_clean());
        assert_eq!(down.la_size_sect, 130_992);
        assert_eq!(down.uuid, [0x6E8D_78CC_D8D8_FC67, 4, 0, 0]);
        assert_eq!(down.al_nr_extents, 1237);
        assert_eq!(down.la_peer_max_bio_size, 4096);
        assert_eq!(down.flags, MdFlags::CONSISTENT | MdFlags::WAS_UP_TO_DATE);
        let applied = Superblock::decode(&fixture("applied")[at(l.superblock_offset())..]);
        assert!(applied.is_clean());
        assert_eq!(applied.flags, down.flags | MdFlags::AL_CLEAN);
    }

    #[test]
    fn the_kernel_s_log_decodes_with_valid_checksums() {
        let l = Layout::internal(SECTORS);
        let raw = fixture("down");
        let log: Vec<AlTransaction> = raw[at(l.al_offset())..at(l.superblock_offset())]
            .chunks(BLOCK)
            .map(|b| AlTransaction::decode(b).expect("a valid transaction"))
            .collect();
        assert_eq!(
            log.iter().map(|t| t.tr_number).collect::<Vec<_>>(),
            (0..8).collect::<Vec<_>>()
        );
        assert!(log.iter().all(|t| t.transaction_type == AL_TR_UPDATE));
        // Re-encoding reproduces the kernel's block, checksum included.
        for (t, block) in log.iter().zip(raw[at(l.al_offset())..].chunks(BLOCK)) {
            assert_eq!(t.encode(), block);
        }
        // A torn block is not a transaction.
        let mut torn = raw[at(l.al_offset())..at(l.al_offset()) + BLOCK].to_vec();
        torn[500] ^= 1;
        assert!(AlTransaction::decode(&torn).is_none());
    }

    /// A 64 MiB sparse image whose tail is the fixture `name`.
    fn image(name: &str) -> std::path::PathBuf {
        use std::io::{Seek, SeekFrom, Write};
        let path = std::env::temp_dir().join(format!(
            "cairn-md-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let mut f = std::fs::File::create(&path).expect("image");
        f.set_len(SECTORS * SECTOR).expect("size");
        f.seek(SeekFrom::Start(SECTORS * SECTOR - TAIL))
            .expect("seek");
        f.write_all(&fixture(name)).expect("write");
        path
    }

    fn tail(path: &std::path::Path) -> Vec<u8> {
        let all = std::fs::read(path).expect("read");
        all[(SECTORS * SECTOR - TAIL) as usize..].to_vec()
    }

    #[test]
    fn apply_al_leaves_what_drbdmeta_apply_al_left() {
        let path = image("down");
        let md = MdDevice::open(&path, true).expect("open");
        let applied = md.apply_al().expect("apply-al");
        assert_eq!(applied.transactions, 8);
        assert!(applied.log_reset && applied.marked_clean);
        // Not primary when it went down: no bitmap bit is added.
        assert!(applied.extents_marked.is_empty());
        assert_eq!(tail(&path), fixture("applied"));
        // Applying again changes nothing.
        let again = md.apply_al().expect("apply-al twice");
        assert_eq!(again, Applied::default());
        assert_eq!(tail(&path), fixture("applied"));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_crashed_primary_gets_its_hot_extents_marked() {
        let path = image("down");
        let md = MdDevice::open(&path, true).expect("open");
        let l = md.layout;
        // As the kernel leaves it when the machine dies while primary, with
        // a clear bitmap and two hot extents in the log.
        let mut sb = md.superblock().expect("superblock");
        sb.flags |= MdFlags::PRIMARY_IND;
        md.dev
            .write_at(l.superblock_offset(), &sb.encode())
            .unwrap();
        md.dev
            .write_at(l.bitmap_offset(), &vec![0u8; l.bitmap_bytes() as usize])
            .unwrap();
        let t = AlTransaction {
            tr_number: 8,
            transaction_type: AL_TR_UPDATE,
            updates: vec![(0, 3), (1, 15)],
            context_size: 1237,
            context_start_slot_nr: 0,
            context: vec![],
        };
        md.dev.write_at(l.al_offset(), &t.encode()).unwrap();
        let applied = md.apply_al().expect("apply-al");
        assert_eq!(applied.extents_marked, vec![3, 15]);
        // Each hot extent is 4 MiB: 1024 bits.
        assert_eq!(md.bits_set(&l).unwrap(), 2 * 1024);
        let sb = md.superblock().unwrap();
        assert!(sb.is_clean() && sb.flags.contains(MdFlags::PRIMARY_IND));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn create_on_an_image_equals_the_fixture() {
        let path = image("created");
        // Scribble over the metadata, then create it again.
        {
            let md = MdDevice::open(&path, true).unwrap();
            md.dev
                .write_at(md.layout.bitmap_offset(), &vec![0x5A; 40 * 1024])
                .unwrap();
            md.create(0).unwrap();
        }
        assert_eq!(tail(&path), fixture("created"));
        let md = MdDevice::open(&path, false).unwrap();
        assert!(md.superblock().unwrap().is_clean());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn foreign_or_misfit_metadata_is_refused() {
        let path = image("created");
        let md = MdDevice::open(&path, true).unwrap();
        let l = md.layout;
        let mut sb = md.superblock().unwrap();
        sb.bm_offset -= 8;
        md.dev
            .write_at(l.superblock_offset(), &sb.encode())
            .unwrap();
        assert!(matches!(md.superblock(), Err(MdError::Inconsistent { .. })));
        md.dev
            .write_at(l.superblock_offset(), &[0u8; 4096])
            .unwrap();
        let e = md.superblock().unwrap_err().to_string();
        assert!(
            e.contains("no DRBD v08 metadata") && e.contains("create-md"),
            "{e}"
        );
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn hot_extents_replay_context_then_updates_in_order() {
        let t = |n: u32, updates: Vec<(u16, u32)>, start: u16, context: Vec<u32>| AlTransaction {
            tr_number: n,
            transaction_type: AL_TR_UPDATE,
            updates,
            context_size: 4,
            context_start_slot_nr: start,
            context,
        };
        let log = vec![
            t(2, vec![(1, 9)], 2, vec![LC_FREE, 7]),
            t(1, vec![(0, 5), (1, 6)], 0, vec![LC_FREE, LC_FREE]),
        ];
        // tr 1: slots 0,1 = 5,6; tr 2: context slots 2,3 = free,7, then slot 1 = 9.
        assert_eq!(hot_extents(&log), vec![5, 7, 9]);
        assert!(hot_extents(&[AlTransaction::initialized()]).is_empty());
    }

    #[test]
    fn crc_is_the_kernel_s_raw_crc32c() {
        // crc32c(0, "123456789") without the inversions of the standard
        // CRC-32C (whose check value is 0xe3069283).
        let raw = crc::Crc::<u32>::new(&CRC32C_RAW).checksum(b"123456789");
        let standard = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(b"123456789");
        assert_eq!(standard, 0xE306_9283);
        assert_ne!(raw, standard);
        // The initialised block's checksum as drbdmeta wrote it.
        assert_eq!(
            &AlTransaction::initialized().encode()[8..12],
            &[0x70, 0x9c, 0xc6, 0x51]
        );
    }
}
