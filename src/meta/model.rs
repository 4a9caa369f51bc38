//! The typed volume group: what lvm2's metadata text says, as Rust values,
//! read from the text tree ([`super::text`]) and written back in the layout
//! lvm2's export.c writes to disk (2.03.16), so that a VG cairn rewrites
//! reads the same to lvm2 and differs from lvm2's own text only in the
//! header comment, description and timestamps.
//!
//! Keys cairn does not know are kept in `extra` and written back, so a
//! rewrite never drops what a newer lvm2 put there.

use bitflags::bitflags;

use super::text::{self, Node, Section, Value};

/// What is wrong with a metadata text, and where (`vg/logical_volumes/lv/segment1`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The text does not parse as lvm2's config syntax.
    #[error("metadata text: {0}")]
    Syntax(#[from] text::ParseError),
    #[error("{path}: missing {key}")]
    /// A required key is absent.
    Missing {
        /// Where, e.g. `vg/physical_volumes/pv0`.
        path: String,
        /// The key.
        key: &'static str,
    },
    #[error("{path}: {key} has the wrong type (expected {expected})")]
    /// A key holds another type than lvm2 writes there, or a value out of its range.
    WrongType {
        /// Where.
        path: String,
        /// The key.
        key: &'static str,
        /// What it should hold, in words.
        expected: &'static str,
    },
    #[error("{path}: unknown {what} flag {flag:?}: this metadata needs a newer tool than cairn; change nothing")]
    /// A `status` flag cairn does not know: refused, as lvm2 refuses
    /// metadata with flags it does not know.
    UnknownFlag {
        /// Where.
        path: String,
        /// Whose flag: "VG", "PV" or "LV".
        what: &'static str,
        /// The flag as written.
        flag: String,
    },
    #[error("{path}: {message}")]
    /// Well-typed but inconsistent metadata (a bad name, a dangling reference, ...).
    Invalid {
        /// Where.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// Result of reading metadata into the model.
pub type Result<T> = std::result::Result<T, ModelError>;

bitflags! {
    /// VG `status` flags.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct VgStatus: u32 {
        /// `vgexport`ed: no host may use it until `vgimport`.
        const EXPORTED = 1 << 0;
        /// PVs may be added and removed (always set by lvm2 today).
        const RESIZEABLE = 1 << 1;
        /// A pvmove is in progress.
        const PVMOVE = 1 << 2;
        /// Readable.
        const READ = 1 << 3;
        /// Writable.
        const WRITE = 1 << 4;
        /// Clustered (clvmd, lvm2 before 2.03).
        const CLUSTERED = 1 << 5;
        /// Shared through lvmlockd.
        const SHARED = 1 << 6;
    }

    /// PV `status` flags.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct PvStatus: u32 {
        /// New extents may be allocated on it (`pvchange -x y`).
        const ALLOCATABLE = 1 << 0;
        /// Its VG is exported.
        const EXPORTED = 1 << 1;
        /// The device was missing when the VG was written.
        const MISSING = 1 << 2;
    }

    /// LV `status` flags.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct LvStatus: u32 {
        /// Readable.
        const READ = 1 << 0;
        /// Writable (not `lvchange -p r`).
        const WRITE = 1 << 1;
        /// Activated with the `major`/`minor` it records (`lvchange -My`).
        const FIXED_MINOR = 1 << 2;
        /// Shown to users; hidden LVs (`[pool_tdata]`, ...) lack it.
        const VISIBLE = 1 << 3;
        /// The temporary pvmove LV.
        const PVMOVE = 1 << 4;
        /// Being moved by pvmove.
        const LOCKED = 1 << 5;
        /// A mirror or raid created without initial sync (`--nosync`).
        const NOTSYNCED = 1 << 6;
        /// A raid image to be rebuilt.
        const REBUILD = 1 << 7;
        /// A raid1 image that is written but read only when others fail.
        const WRITEMOSTLY = 1 << 8;
    }
}

// The names in the order lvm2's flags.c tables print them.
const VG_STATUS_NAMES: &[(&str, VgStatus)] = &[
    ("EXPORTED", VgStatus::EXPORTED),
    ("RESIZEABLE", VgStatus::RESIZEABLE),
    ("PVMOVE", VgStatus::PVMOVE),
    ("READ", VgStatus::READ),
    ("WRITE", VgStatus::WRITE),
    ("CLUSTERED", VgStatus::CLUSTERED),
    ("SHARED", VgStatus::SHARED),
];
const PV_STATUS_NAMES: &[(&str, PvStatus)] = &[
    ("ALLOCATABLE", PvStatus::ALLOCATABLE),
    ("EXPORTED", PvStatus::EXPORTED),
    ("MISSING", PvStatus::MISSING),
];
const LV_STATUS_NAMES: &[(&str, LvStatus)] = &[
    ("READ", LvStatus::READ),
    ("WRITE", LvStatus::WRITE),
    ("FIXED_MINOR", LvStatus::FIXED_MINOR),
    ("VISIBLE", LvStatus::VISIBLE),
    ("PVMOVE", LvStatus::PVMOVE),
    ("LOCKED", LvStatus::LOCKED),
    ("NOTSYNCED", LvStatus::NOTSYNCED),
    ("REBUILD", LvStatus::REBUILD),
    ("WRITEMOSTLY", LvStatus::WRITEMOSTLY),
];
/// Flags lvm2 appends to a segment's type with '+' (SEGTYPE_FLAG).
const SEGTYPE_FLAGS: &[&str] = &[
    "RESHAPE",
    "RESHAPE_DATA_OFFSET",
    "RESHAPE_DELTA_DISKS_PLUS",
    "RESHAPE_DELTA_DISKS_MINUS",
    "REMOVE_AFTER_RESHAPE",
    "METADATA_FORMAT",
    "CROP_METADATA",
    "CACHE_USES_CACHEVOL",
];

/// A whole metadata text: the VG and the trailer lines after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// The volume group section.
    pub vg: VolumeGroup,
    /// `description`, `creation_host`, `creation_time` and any other top-level keys.
    pub trailer: Trailer,
}

/// The lines after the VG section: what wrote this copy, when, and why.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trailer {
    /// Why it was written, e.g. `Created *after* executing 'lvcreate ...'`.
    pub description: String,
    /// The host that wrote it (the comment after it, uname, is not kept).
    pub creation_host: String,
    /// When, in seconds since the epoch.
    pub creation_time: u64,
    /// Top-level keys cairn does not interpret, kept for the rewrite.
    pub extra: Section,
}

/// A volume group: its settings, PVs and LVs.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeGroup {
    /// The VG name (the section's name in the text).
    pub name: String,
    /// The VG UUID as lvm2 prints it (32 characters with dashes, 38 in all).
    pub id: String,
    /// Generation number, raised by one on each commit; the copy with the
    /// highest seqno is current.
    pub seqno: u64,
    /// `format`: "lvm2" for the text format (absent in old texts).
    pub format: Option<String>,
    /// `status` flags.
    pub status: VgStatus,
    /// Compatibility flags (WRITE_LOCKED, NOAUTOACTIVATE, ...), as written.
    pub flags: Vec<String>,
    /// `vgchange --addtag` tags.
    pub tags: Vec<String>,
    /// The owning host's system ID (lvm.conf `system_id_source`); None: any host.
    pub system_id: Option<String>,
    /// lvmlockd lock type ("sanlock", "dlm", "idm") of a shared VG.
    pub lock_type: Option<String>,
    /// lvmlockd's VG lock arguments.
    pub lock_args: Option<String>,
    /// In 512-byte sectors.
    pub extent_size: u64,
    /// Most LVs allowed; 0: no limit.
    pub max_lv: u64,
    /// Most PVs allowed; 0: no limit.
    pub max_pv: u64,
    /// `alloc`: normal, contiguous, cling, anywhere; None: normal.
    pub allocation_policy: Option<String>,
    /// An lvm2 metadata profile name.
    pub profile: Option<String>,
    /// `vgmetadatacopies`: metadata areas lvm2 keeps in use; 0: unmanaged (all).
    pub metadata_copies: u64,
    /// The PVs, in the text's order (pv0, pv1, ...); [`Area::Pv`] indexes this.
    pub pvs: Vec<PhysicalVolume>,
    /// In lvm2's list order (the text has visible LVs first).
    pub lvs: Vec<LogicalVolume>,
    /// VG keys cairn does not interpret, kept for the rewrite.
    pub extra: Section,
}

/// One physical volume as the VG records it.
#[derive(Debug, Clone, PartialEq)]
pub struct PhysicalVolume {
    /// The PV UUID (with dashes), matching its PV header.
    pub id: String,
    /// Where lvm2 last saw it (a hint only).
    pub device: Option<String>,
    /// lvm2's devices file id type (`sys_wwid`, `devname`, ...).
    pub device_id_type: Option<String>,
    /// lvm2's devices file id of the device.
    pub device_id: Option<String>,
    /// `status` flags.
    pub status: PvStatus,
    /// Compatibility flags (MISSING, ...), as written.
    pub flags: Vec<String>,
    /// `pvchange --addtag` tags.
    pub tags: Vec<String>,
    /// In sectors; None when the text has none (kept absent on a rewrite).
    pub dev_size: Option<u64>,
    /// In sectors.
    pub pe_start: u64,
    /// Physical extents on the PV (each [`VolumeGroup::extent_size`] sectors).
    pub pe_count: u64,
    /// Start of the bootloader area in sectors (`pvcreate --bootloaderareasize`).
    pub ba_start: Option<u64>,
    /// Size of the bootloader area in sectors.
    pub ba_size: Option<u64>,
    /// PV keys cairn does not interpret, kept for the rewrite.
    pub extra: Section,
}

impl PhysicalVolume {
    /// lvm2 wrote the VG while this PV was away (`flags = ["MISSING"]`): its
    /// copy of the data may be stale even once the device is back, so
    /// nothing writes the VG or activates LVs on it until
    /// `vgextend --restoremissing` clears the flag.
    pub fn is_marked_missing(&self) -> bool {
        self.flags.iter().any(|f| f == "MISSING")
    }
}

/// One logical volume, visible or internal.
#[derive(Debug, Clone, PartialEq)]
pub struct LogicalVolume {
    /// The LV name (hidden ones like `pool_tdata` without lvs' brackets).
    pub name: String,
    /// The LV UUID (with dashes).
    pub id: String,
    /// `status` flags.
    pub status: LvStatus,
    /// Compatibility flags (lvm2's `flags` key), as written.
    pub flags: Vec<String>,
    /// `lvchange --addtag` tags.
    pub tags: Vec<String>,
    /// When it was created, in seconds since the epoch.
    pub creation_time: Option<u64>,
    /// The host that created it.
    pub creation_host: Option<String>,
    /// lvmlockd's LV lock arguments.
    pub lock_args: Option<String>,
    /// `alloc` policy, overriding the VG's.
    pub allocation_policy: Option<String>,
    /// An lvm2 metadata profile name.
    pub profile: Option<String>,
    /// Read-ahead in sectors; None: auto (lvm2 writes no key then).
    pub read_ahead: Option<i64>,
    /// Persistent device major (with [`LvStatus::FIXED_MINOR`]).
    pub major: Option<i64>,
    /// Persistent device minor (with [`LvStatus::FIXED_MINOR`]).
    pub minor: Option<i64>,
    /// Segments in LE order (segment1, segment2, ...).
    pub segments: Vec<Segment>,
    /// LV keys cairn does not interpret, kept for the rewrite.
    pub extra: Section,
}

/// A run of an LV's logical extents mapped one way.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// First logical extent (LE) of the LV it maps.
    pub start_extent: u64,
    /// Length in extents.
    pub extent_count: u64,
    /// raid reshape's extra extents (`reshape_count`).
    pub reshape_count: Option<u64>,
    /// SEGTYPE flags after '+' in `type` (METADATA_FORMAT, ...).
    pub type_flags: Vec<String>,
    /// Segment tags (rare; lvm2 reads and writes them).
    pub tags: Vec<String>,
    /// The segment type and its type-specific keys.
    pub kind: SegmentKind,
    /// Segment keys cairn does not interpret, kept for the rewrite.
    pub extra: Section,
}

/// Where one stripe of a segment lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Area {
    /// Index into `VolumeGroup::pvs`, first extent on that PV.
    Pv {
        /// Index into `VolumeGroup::pvs`.
        pv: usize,
        /// First physical extent (PE) on it.
        pe: u64,
    },
    /// Another LV (by name), first extent in it.
    Lv {
        /// The sub-LV's name.
        lv: String,
        /// First logical extent in it.
        le: u64,
    },
}

/// A segment's type (lvm2's `type` key) with the keys that type has.
#[derive(Debug, Clone, PartialEq)]
pub enum SegmentKind {
    /// `striped` (linear is one stripe).
    Striped {
        /// Stripe size in sectors; None for one stripe.
        stripe_size: Option<u64>,
        /// Where each stripe lives (`stripes = [ "pv0", 0, ... ]`).
        stripes: Vec<Area>,
    },
    /// `thin-pool`: maps through the pool's metadata and data sub-LVs.
    ThinPool {
        /// The metadata sub-LV (`pool_tmeta`).
        metadata: String,
        /// The data sub-LV (`pool_tdata`).
        pool: String,
        /// The pool's transaction id, which the kernel's must match on activation.
        transaction_id: u64,
        /// Data block size in sectors.
        chunk_size: u64,
        /// `ignore`, `nopassdown` or `passdown`; None: lvm2's default (passdown).
        discards: Option<String>,
        /// New blocks are zeroed before first use (`lvcreate -Z y`).
        zero_new_blocks: bool,
        /// The metadata LV is used only up to the kernel's 15.81 GiB
        /// (lvm2's `crop_metadata`); None: the key is absent.
        crop_metadata: Option<bool>,
        /// Queued messages (message1, message2, ...).
        messages: Vec<ThinMessage>,
    },
    /// `thin`: a thin volume in a pool.
    Thin {
        /// The pool LV's name.
        thin_pool: String,
        /// The pool transaction that created it.
        transaction_id: u64,
        /// The thin device id in the pool's metadata (24 bits).
        device_id: u64,
        /// A read-only LV outside the pool it is a snapshot of.
        external_origin: Option<String>,
        /// The thin LV it is a snapshot of.
        origin: Option<String>,
        /// The snapshot being merged into it.
        merge: Option<String>,
    },
    /// `cache-pool`: the data and metadata sub-LVs dm-cache caches through.
    CachePool {
        /// The data sub-LV (`pool_cdata`).
        data: String,
        /// The metadata sub-LV (`pool_cmeta`).
        metadata: String,
        /// dm-cache metadata format, 1 or 2; None: not yet decided.
        metadata_format: Option<u64>,
        /// chunk size, mode and policy.
        settings: CacheSettings,
    },
    /// `cache`: an origin LV cached through a cache pool.
    Cache {
        /// The cache pool LV's name.
        cache_pool: String,
        /// The origin sub-LV (`lv_corig`).
        origin: String,
        /// The cleaner policy is flushing the cache (lvm2's `cleaner = 1`).
        cleaner: bool,
    },
    /// A thick (COW) snapshot; lives in a hidden LV `snapshotN`.
    Snapshot {
        /// COW chunk size in sectors.
        chunk_size: u64,
        /// The origin LV's name.
        origin: String,
        /// The LV holding the exceptions (`cow_store` or `merging_store`).
        cow: String,
        /// Being merged into the origin (`merging_store` instead of `cow_store`).
        merging: bool,
    },
    /// A segment type cairn does not interpret (raid, mirror, vdo, ...):
    /// kept as it was read.
    Other {
        /// The `type` as written, flags removed.
        type_name: String,
    },
}

/// A cache pool's (or cache's) dm-cache settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CacheSettings {
    /// Cache block size in sectors.
    pub chunk_size: Option<u64>,
    /// `writethrough`, `writeback` or `passthrough`.
    pub cache_mode: Option<String>,
    /// The dm-cache policy, e.g. `smq`.
    pub policy: Option<String>,
    /// `policy_settings { }`: tunables of the policy.
    pub policy_settings: Option<Section>,
}

/// A thin-pool message lvm2 queued for the kernel (sent on next activation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThinMessage {
    /// Create the thin device of the named LV.
    Create(String),
    /// Delete the thin device with this id.
    Delete(i64),
}

impl SegmentKind {
    /// lvm2's segment type name (`segtype` in reports uses "linear" for one stripe).
    pub fn type_name(&self) -> &str {
        match self {
            SegmentKind::Striped { .. } => "striped",
            SegmentKind::ThinPool { .. } => "thin-pool",
            SegmentKind::Thin { .. } => "thin",
            SegmentKind::CachePool { .. } => "cache-pool",
            SegmentKind::Cache { .. } => "cache",
            SegmentKind::Snapshot { .. } => "snapshot",
            SegmentKind::Other { type_name } => type_name,
        }
    }
}

impl VolumeGroup {
    /// The LV called `name`.
    pub fn lv(&self, name: &str) -> Option<&LogicalVolume> {
        self.lvs.iter().find(|lv| lv.name == name)
    }

    /// The LV called `name`, to change.
    pub fn lv_mut(&mut self, name: &str) -> Option<&mut LogicalVolume> {
        self.lvs.iter_mut().find(|lv| lv.name == name)
    }

    /// The snapshot segment whose COW store is `lv`, if any.
    pub fn snapshot_of_cow(&self, lv: &str) -> Option<(&LogicalVolume, &Segment)> {
        self.lvs.iter().find_map(|s| {
            let seg = s.segments.first()?;
            matches!(&seg.kind, SegmentKind::Snapshot { cow, .. } if cow == lv).then_some((s, seg))
        })
    }

    /// Whether LV `name` is the origin of a thick snapshot.
    pub fn is_snapshot_origin(&self, name: &str) -> bool {
        self.lvs.iter().any(|l| {
            matches!(l.segments.first().map(|s| &s.kind),
                Some(SegmentKind::Snapshot { origin, .. }) if origin == name)
        })
    }

    /// Whether lvm2 counts the LV as visible (lv_is_visible): the internal
    /// `snapshotN` LV never is, though it carries VISIBLE; a COW LV is when
    /// its origin is, though it does not carry VISIBLE; others by the flag.
    pub fn lv_is_visible(&self, lv: &LogicalVolume) -> bool {
        if lv
            .segments
            .first()
            .is_some_and(|s| matches!(s.kind, SegmentKind::Snapshot { .. }))
        {
            return false;
        }
        if let Some((_, seg)) = self.snapshot_of_cow(&lv.name) {
            if let SegmentKind::Snapshot {
                origin, merging, ..
            } = &seg.kind
            {
                return !merging && self.lv(origin).is_some_and(|o| self.lv_is_visible(o));
            }
        }
        lv.is_visible()
    }

    /// Extent size in bytes.
    pub fn extent_bytes(&self) -> u64 {
        self.extent_size * 512
    }
}

impl LogicalVolume {
    /// A new visible, read-write LV with `segments` and nothing optional set.
    pub fn new(name: &str, id: String, segments: Vec<Segment>) -> LogicalVolume {
        LogicalVolume {
            name: name.to_owned(),
            id,
            status: LvStatus::READ | LvStatus::WRITE | LvStatus::VISIBLE,
            flags: vec![],
            tags: vec![],
            creation_time: None,
            creation_host: None,
            lock_args: None,
            allocation_policy: None,
            profile: None,
            read_ahead: None,
            major: None,
            minor: None,
            segments,
            extra: Section::default(),
        }
    }

    /// Whether it carries the VISIBLE flag (see [`VolumeGroup::lv_is_visible`]
    /// for what lvm2 shows).
    pub fn is_visible(&self) -> bool {
        self.status.contains(LvStatus::VISIBLE)
    }

    /// Its size in extents: all segments.
    pub fn extent_count(&self) -> u64 {
        self.segments.iter().map(|s| s.extent_count).sum()
    }
}

// ---- reading ---------------------------------------------------------------

/// Parses a metadata text (one VG) into the model.
pub fn parse(text: &str) -> Result<Metadata> {
    let root = text::parse(text)?;
    from_tree(&root)
}

/// The most sectors whose byte count fits in a u64.
const MAX_SECTORS: u64 = u64::MAX / 512;

/// lvm2's `DM_THIN_MAX_DEVICE_ID`: thin device ids have 24 bits.
pub const MAX_THIN_DEVICE_ID: u64 = (1 << 24) - 1;

/// The keys of a section that a reader consumed; the rest become `extra`.
struct Reader<'a> {
    section: &'a Section,
    path: String,
    used: Vec<&'static str>,
}

impl<'a> Reader<'a> {
    fn new(section: &'a Section, path: String) -> Self {
        Reader {
            section,
            path,
            used: Vec::new(),
        }
    }

    fn wrong(&self, key: &'static str, expected: &'static str) -> ModelError {
        ModelError::WrongType {
            path: self.path.clone(),
            key,
            expected,
        }
    }

    /// The value under `key`. A section there is the wrong type, not an
    /// absence: taken as absent, it would be kept in `extra`, and lost on a
    /// rewrite behind the value the writer puts in its place.
    fn value(&self, key: &'static str, expected: &'static str) -> Result<Option<&'a Value>> {
        match self.section.get(key) {
            None => Ok(None),
            Some(Node::Value(v)) => Ok(Some(v)),
            Some(Node::Section(_)) => Err(self.wrong(key, expected)),
        }
    }

    fn opt_str(&mut self, key: &'static str) -> Result<Option<String>> {
        match self.value(key, "a string")? {
            None => Ok(None),
            Some(Value::Str(s)) => {
                self.used.push(key);
                Ok(Some(s.clone()))
            }
            Some(_) => Err(self.wrong(key, "a string")),
        }
    }

    fn str(&mut self, key: &'static str) -> Result<String> {
        self.opt_str(key)?.ok_or(ModelError::Missing {
            path: self.path.clone(),
            key,
        })
    }

    fn opt_i64(&mut self, key: &'static str) -> Result<Option<i64>> {
        match self.value(key, "an integer")? {
            None => Ok(None),
            Some(Value::Int(i)) => {
                self.used.push(key);
                Ok(Some(*i))
            }
            Some(_) => Err(self.wrong(key, "an integer")),
        }
    }

    fn opt_u64(&mut self, key: &'static str) -> Result<Option<u64>> {
        match self.opt_i64(key)? {
            None => Ok(None),
            Some(i) => u64::try_from(i)
                .map(Some)
                .map_err(|_| self.wrong(key, "a non-negative integer")),
        }
    }

    fn u64(&mut self, key: &'static str) -> Result<u64> {
        self.opt_u64(key)?.ok_or(ModelError::Missing {
            path: self.path.clone(),
            key,
        })
    }

    /// A field lvm2 keeps in 32 bits (`uint32_t`): a larger value is not
    /// something lvm2 wrote, and would wrap in lvm2 and overflow sizes here.
    fn opt_u32(&mut self, key: &'static str) -> Result<Option<u64>> {
        match self.opt_u64(key)? {
            Some(v) if v > u64::from(u32::MAX) => Err(self.wrong(key, "an integer of 32 bits")),
            v => Ok(v),
        }
    }

    fn u32(&mut self, key: &'static str) -> Result<u64> {
        self.opt_u32(key)?.ok_or(ModelError::Missing {
            path: self.path.clone(),
            key,
        })
    }

    /// A thin device id: 24 bits in the kernel and in lvm2.
    fn thin_device_id(&mut self, key: &'static str) -> Result<u64> {
        match self.u64(key)? {
            v if v > MAX_THIN_DEVICE_ID => Err(self.wrong(key, "a thin device id below 2^24")),
            v => Ok(v),
        }
    }

    /// A size or offset in 512-byte sectors, which must stay countable in
    /// bytes (every user multiplies it by 512).
    fn opt_sectors(&mut self, key: &'static str) -> Result<Option<u64>> {
        match self.opt_u64(key)? {
            Some(v) if v > MAX_SECTORS => Err(self.wrong(key, "a size in sectors below 2^55")),
            v => Ok(v),
        }
    }

    fn str_list(&mut self, key: &'static str) -> Result<Option<Vec<String>>> {
        match self.value(key, "a list")? {
            None => Ok(None),
            Some(Value::List(items)) => {
                let strings = items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>();
                let strings = strings.ok_or_else(|| self.wrong(key, "a list of strings"))?;
                self.used.push(key);
                Ok(Some(strings))
            }
            Some(_) => Err(self.wrong(key, "a list")),
        }
    }

    fn status<F: Copy + std::ops::BitOr<Output = F> + Default>(
        &mut self,
        what: &'static str,
        names: &[(&str, F)],
    ) -> Result<F> {
        let list = self.str_list("status")?.ok_or(ModelError::Missing {
            path: self.path.clone(),
            key: "status",
        })?;
        let mut flags = F::default();
        for name in list {
            let flag = names.iter().find(|(n, _)| *n == name).map(|(_, f)| *f);
            flags = flags
                | flag.ok_or_else(|| ModelError::UnknownFlag {
                    path: self.path.clone(),
                    what,
                    flag: name.clone(),
                })?;
        }
        Ok(flags)
    }

    /// The section under `key` (a value there is the wrong type, as above).
    fn section(&mut self, key: &'static str) -> Result<Option<&'a Section>> {
        match self.section.get(key) {
            None => Ok(None),
            Some(Node::Section(s)) => {
                self.used.push(key);
                Ok(Some(s))
            }
            Some(Node::Value(_)) => Err(self.wrong(key, "a section")),
        }
    }

    /// Everything not consumed, in its original order. A key read (or
    /// `skip`ped: read by the caller) was read from its first entry, as
    /// lookups take the first: later entries under the same key (lvm2
    /// never writes them) are kept too, so a rewrite drops nothing.
    ///
    /// Except repeated sections (physical_volumes, segment1, ...: the
    /// writer puts extra entries before them, where a repeat would come
    /// first) and repeats after an empty first entry (`[]`, 0: the writer
    /// leaves such a value out, and a repeat would take its place when the
    /// text is read again). lvm2 drops all repeats (it warns and reads the
    /// first).
    fn extra(&self, skip: impl Fn(&str) -> bool) -> Section {
        let mut seen: Vec<&str> = Vec::new();
        Section {
            entries: self
                .section
                .entries
                .iter()
                .filter(|(k, node)| {
                    let consumed = self.used.contains(&k.as_str()) || skip(k);
                    let first = !seen.contains(&k.as_str());
                    seen.push(k);
                    if !consumed {
                        return true;
                    }
                    !first
                        && matches!(node, Node::Value(_))
                        && self.section.get(k).is_some_and(|n| !is_empty_like(n))
                })
                .cloned()
                .collect(),
        }
    }
}

/// Reads the model from an already parsed text tree.
pub fn from_tree(root: &Section) -> Result<Metadata> {
    let mut vgs = root.sections();
    let (name, vg_section) = vgs.next().ok_or(ModelError::Invalid {
        path: "metadata".into(),
        message: "no volume group section".into(),
    })?;
    if let Some((other, _)) = vgs.next() {
        return Err(ModelError::Invalid {
            path: "metadata".into(),
            message: format!("more than one volume group section ({name}, {other})"),
        });
    }
    // The trailer's keys are values beside the VG's section (which may have
    // any name, "description" too).
    let values = Section {
        entries: root
            .entries
            .iter()
            .filter(|(_, n)| matches!(n, Node::Value(_)))
            .cloned()
            .collect(),
    };
    let mut top = Reader::new(&values, "metadata".into());
    if let Some(contents) = top.opt_str("contents")? {
        if contents != "Text Format Volume Group" {
            return Err(ModelError::Invalid {
                path: "metadata".into(),
                message: format!("contents is {contents:?}"),
            });
        }
    }
    match top.opt_i64("version")? {
        None | Some(1) => {}
        Some(v) => {
            return Err(ModelError::Invalid {
                path: "metadata".into(),
                message: format!("text format version {v} (cairn reads version 1)"),
            })
        }
    }
    let trailer = Trailer {
        description: top.opt_str("description")?.unwrap_or_default(),
        creation_host: top.opt_str("creation_host")?.unwrap_or_default(),
        creation_time: top.opt_u64("creation_time")?.unwrap_or(0),
        extra: top.extra(|_| false),
    };
    let vg = read_vg(name, vg_section)?;
    Ok(Metadata { vg, trailer })
}

fn read_vg(name: &str, section: &Section) -> Result<VolumeGroup> {
    // The name becomes paths (/dev/VG, the backup file, the lock file):
    // one lvm2 would not accept is refused before anything uses it.
    crate::names::lvm(name).map_err(|why| ModelError::Invalid {
        path: "metadata".into(),
        message: format!("the VG name {name:?} is not one lvm2 accepts ({why})"),
    })?;
    let mut r = Reader::new(section, name.to_owned());
    let mut vg = VolumeGroup {
        name: name.to_owned(),
        id: r.str("id")?,
        seqno: r.u32("seqno")?,
        format: r.opt_str("format")?,
        status: r.status("VG status", VG_STATUS_NAMES)?,
        flags: r.str_list("flags")?.unwrap_or_default(),
        tags: r.str_list("tags")?.unwrap_or_default(),
        system_id: r.opt_str("system_id")?,
        lock_type: r.opt_str("lock_type")?,
        lock_args: r.opt_str("lock_args")?,
        extent_size: r.u32("extent_size")?,
        max_lv: r.u32("max_lv")?,
        max_pv: r.u32("max_pv")?,
        allocation_policy: r.opt_str("allocation_policy")?,
        profile: r.opt_str("profile")?,
        metadata_copies: r.opt_u32("metadata_copies")?.unwrap_or(0),
        pvs: Vec::new(),
        lvs: Vec::new(),
        extra: Section::default(),
    };
    if vg.extent_size == 0 {
        return Err(ModelError::Invalid {
            path: name.to_owned(),
            message: "extent_size is 0".into(),
        });
    }
    let mut pv_keys = Vec::new();
    if let Some(pvs) = r.section("physical_volumes")? {
        for (key, pv) in pvs.sections() {
            pv_keys.push(key.to_owned());
            let path = format!("{name}/physical_volumes/{key}");
            let pv = read_pv(&path, pv)?;
            // Where its extents end, in sectors, must be countable in bytes:
            // every mapping of an extent adds to pe_start.
            let extents_end = pv
                .pe_count
                .checked_mul(vg.extent_size)
                .and_then(|n| n.checked_add(pv.pe_start))
                .filter(|&end| end <= MAX_SECTORS);
            if extents_end.is_none() {
                return Err(ModelError::Invalid {
                    path,
                    message: format!(
                        "pe_start {} and {} extents of {} sectors end past 2^55 sectors",
                        pv.pe_start, pv.pe_count, vg.extent_size
                    ),
                });
            }
            vg.pvs.push(pv);
        }
    }
    if let Some(lvs) = r.section("logical_volumes")? {
        for (lv_name, lv) in lvs.sections() {
            vg.lvs.push(read_lv(name, lv_name, lv, &pv_keys)?);
        }
    }
    vg.extra = r.extra(|_| false);
    // As lvm2's vg_validate: every lookup by name (origins, pools, areas)
    // must find one LV.
    let mut names = std::collections::HashSet::new();
    if let Some(lv) = vg.lvs.iter().find(|lv| !names.insert(lv.name.as_str())) {
        return Err(ModelError::Invalid {
            path: format!("{name}/logical_volumes"),
            message: format!("two LVs are named {:?}", lv.name),
        });
    }
    check_snapshots(&vg)?;
    // lvm2 (text_import_areas) refuses an area that names neither a PV nor
    // an LV. Accepting one would also let a rewrite change its meaning: PVs
    // are written as pv0, pv1, ..., so a dangling "pv0" would become a PV.
    for lv in &vg.lvs {
        for (i, seg) in lv.segments.iter().enumerate() {
            let SegmentKind::Striped { stripes, .. } = &seg.kind else {
                continue;
            };
            for area in stripes {
                if let Area::Lv { lv: target, .. } = area {
                    let message = if vg.lv(target).is_none() {
                        format!("stripes name {target:?}, neither a PV nor an LV")
                    } else if target
                        .strip_prefix("pv")
                        .and_then(|n| n.parse::<usize>().ok())
                        .is_some_and(|n| n < vg.pvs.len() && format!("pv{n}") == *target)
                    {
                        // Only with PV keys lvm2 never writes; an LV named
                        // so would read back as the PV of that name.
                        format!("stripes name LV {target:?}, which a rewrite names a PV")
                    } else {
                        continue;
                    };
                    return Err(ModelError::Invalid {
                        path: format!("{name}/logical_volumes/{}/segment{}", lv.name, i + 1),
                        message,
                    });
                }
            }
        }
    }
    Ok(vg)
}

/// What lvm2 checks of a snapshot when it links it (vg_add_snapshot): its
/// origin and COW store are LVs, not the same one, a COW store serves one
/// snapshot and is no snapshot's origin (no snapshots of snapshots). This also
/// keeps `lv_is_visible`, which goes from a COW store to its origin, from
/// going round in circles.
fn check_snapshots(vg: &VolumeGroup) -> Result<()> {
    let snapshots: Vec<(&LogicalVolume, usize, &str, &str)> = vg
        .lvs
        .iter()
        .flat_map(|lv| {
            lv.segments
                .iter()
                .enumerate()
                .filter_map(move |(i, seg)| match &seg.kind {
                    SegmentKind::Snapshot { origin, cow, .. } => Some((lv, i, &**origin, &**cow)),
                    _ => None,
                })
        })
        .collect();
    for (n, &(lv, i, origin, cow)) in snapshots.iter().enumerate() {
        let message = if vg.lv(origin).is_none() {
            format!("snapshot origin {origin:?} is no LV")
        } else if vg.lv(cow).is_none() {
            format!("snapshot COW store {cow:?} is no LV")
        } else if origin == cow {
            format!("snapshot origin and COW store are both {cow:?}")
        } else if snapshots[..n].iter().any(|s| s.3 == cow) {
            format!("COW store {cow:?} serves more than one snapshot")
        } else if snapshots.iter().any(|s| s.3 == origin) {
            format!("snapshot origin {origin:?} is a COW store (snapshots of snapshots are not supported)")
        } else {
            continue;
        };
        return Err(ModelError::Invalid {
            path: format!("{}/logical_volumes/{}/segment{}", vg.name, lv.name, i + 1),
            message,
        });
    }
    Ok(())
}

fn read_pv(path: &str, section: &Section) -> Result<PhysicalVolume> {
    let mut r = Reader::new(section, path.to_owned());
    let pv = PhysicalVolume {
        id: r.str("id")?,
        device: r.opt_str("device")?,
        device_id_type: r.opt_str("device_id_type")?,
        device_id: r.opt_str("device_id")?,
        status: r.status("PV status", PV_STATUS_NAMES)?,
        flags: r.str_list("flags")?.unwrap_or_default(),
        tags: r.str_list("tags")?.unwrap_or_default(),
        dev_size: r.opt_sectors("dev_size")?,
        pe_start: r.opt_sectors("pe_start")?.ok_or(ModelError::Missing {
            path: path.to_owned(),
            key: "pe_start",
        })?,
        pe_count: r.u32("pe_count")?,
        ba_start: r.opt_sectors("ba_start")?,
        ba_size: r.opt_sectors("ba_size")?,
        extra: Section::default(),
    };
    // lvm2 refuses an "incomplete bootloader area specification" (and
    // writes the two together).
    if pv.ba_start.is_some() != pv.ba_size.is_some() {
        return Err(ModelError::Invalid {
            path: path.to_owned(),
            message: "incomplete bootloader area (ba_start and ba_size go together)".into(),
        });
    }
    Ok(PhysicalVolume {
        extra: r.extra(|_| false),
        ..pv
    })
}

fn read_lv(vg: &str, name: &str, section: &Section, pv_keys: &[String]) -> Result<LogicalVolume> {
    // As the VG's: an LV name becomes /dev/VG/LV and a dm name.
    crate::names::lvm(name).map_err(|why| ModelError::Invalid {
        path: format!("{vg}/logical_volumes"),
        message: format!("the LV name {name:?} is not one lvm2 accepts ({why})"),
    })?;
    let path = format!("{vg}/logical_volumes/{name}");
    let mut r = Reader::new(section, path.clone());
    let mut lv = LogicalVolume {
        name: name.to_owned(),
        id: r.str("id")?,
        status: r.status("LV status", LV_STATUS_NAMES)?,
        flags: r.str_list("flags")?.unwrap_or_default(),
        tags: r.str_list("tags")?.unwrap_or_default(),
        creation_time: r.opt_u64("creation_time")?,
        creation_host: r.opt_str("creation_host")?,
        lock_args: r.opt_str("lock_args")?,
        allocation_policy: r.opt_str("allocation_policy")?,
        profile: r.opt_str("profile")?,
        read_ahead: r.opt_i64("read_ahead")?,
        major: r.opt_i64("major")?,
        minor: r.opt_i64("minor")?,
        segments: Vec::new(),
        extra: Section::default(),
    };
    // lvm2 (_read_lvnames) reads the two together and refuses either alone;
    // cairn writes creation_host only beside creation_time.
    if lv.creation_time.is_some() != lv.creation_host.is_some() {
        return Err(ModelError::Missing {
            path,
            key: if lv.creation_time.is_some() {
                "creation_host"
            } else {
                "creation_time"
            },
        });
    }
    let count = r.u32("segment_count")?;
    for n in 1..=count {
        let key = format!("segment{n}");
        let seg = section.section(&key).ok_or_else(|| ModelError::Invalid {
            path: path.clone(),
            message: format!("segment_count is {count} but {key} is missing"),
        })?;
        lv.segments
            .push(read_segment(&format!("{path}/{key}"), seg, pv_keys)?);
    }
    let is_segment = |k: &str| {
        k.strip_prefix("segment")
            .is_some_and(|n| n.parse::<u64>().is_ok_and(|n| n >= 1 && n <= count))
    };
    lv.extra = r.extra(is_segment);
    let mut expected_start = 0;
    for (i, seg) in lv.segments.iter().enumerate() {
        if seg.start_extent != expected_start {
            return Err(ModelError::Invalid {
                path: format!("{path}/segment{}", i + 1),
                message: format!(
                    "starts at extent {}, expected {expected_start}",
                    seg.start_extent
                ),
            });
        }
        expected_start += seg.extent_count;
    }
    Ok(lv)
}

fn read_segment(path: &str, section: &Section, pv_keys: &[String]) -> Result<Segment> {
    let mut r = Reader::new(section, path.to_owned());
    let start_extent = r.u32("start_extent")?;
    let extent_count = r.u32("extent_count")?;
    let reshape_count = r.opt_u32("reshape_count")?;
    let full_type = r.str("type")?;
    let mut parts = full_type.split('+');
    let type_name = parts.next().unwrap_or_default().to_owned();
    let type_flags: Vec<String> = parts.map(str::to_owned).collect();
    if let Some(bad) = type_flags
        .iter()
        .find(|f| !SEGTYPE_FLAGS.contains(&f.as_str()))
    {
        return Err(ModelError::UnknownFlag {
            path: path.to_owned(),
            what: "segment type",
            flag: bad.clone(),
        });
    }
    let tags = r.str_list("tags")?.unwrap_or_default();
    let kind = match type_name.as_str() {
        "striped" => {
            let stripe_count = r.u32("stripe_count")?;
            // As striped.c, which reads stripe_size only with more than one
            // stripe (and writes it only then): with one, it stays in extra.
            let stripe_size = if stripe_count > 1 {
                r.opt_u32("stripe_size")?
            } else {
                None
            };
            let areas = read_areas(&mut r, "stripes", pv_keys)?;
            if areas.len() as u64 != stripe_count {
                return Err(ModelError::Invalid {
                    path: path.to_owned(),
                    message: format!(
                        "stripe_count is {stripe_count} but {} stripes are listed",
                        areas.len()
                    ),
                });
            }
            SegmentKind::Striped {
                stripe_size,
                stripes: areas,
            }
        }
        "thin-pool" => {
            // lvm2 (thin.c) takes every sub-section of a thin-pool segment as
            // a message, whatever its number: with gaps or repeats all are
            // kept (and written back as message1..N, as lvm2 writes them).
            let mut messages = Vec::new();
            for (key, msg) in section.sections().filter(|(k, _)| is_message_key(k)) {
                let mut m = Reader::new(msg, format!("{path}/{key}"));
                messages.push(match (m.opt_str("create")?, m.opt_i64("delete")?) {
                    (Some(lv), None) => ThinMessage::Create(lv),
                    (None, Some(id)) if (0..=MAX_THIN_DEVICE_ID as i64).contains(&id) => {
                        ThinMessage::Delete(id)
                    }
                    (None, Some(_)) => return Err(m.wrong("delete", "a thin device id below 2^24")),
                    _ => {
                        return Err(ModelError::Invalid {
                            path: m.path,
                            message: "a message needs create or delete".into(),
                        })
                    }
                });
            }
            SegmentKind::ThinPool {
                metadata: r.str("metadata")?,
                pool: r.str("pool")?,
                transaction_id: r.u64("transaction_id")?,
                chunk_size: r.u32("chunk_size")?,
                discards: r.opt_str("discards")?,
                zero_new_blocks: r.opt_i64("zero_new_blocks")?.unwrap_or(0) != 0,
                crop_metadata: r.opt_i64("crop_metadata")?.map(|v| v != 0),
                messages,
            }
        }
        "thin" => SegmentKind::Thin {
            thin_pool: r.str("thin_pool")?,
            transaction_id: r.u64("transaction_id")?,
            device_id: r.thin_device_id("device_id")?,
            external_origin: r.opt_str("external_origin")?,
            origin: r.opt_str("origin")?,
            merge: r.opt_str("merge")?,
        },
        "cache-pool" => SegmentKind::CachePool {
            data: r.str("data")?,
            metadata: r.str("metadata")?,
            metadata_format: r.opt_u32("metadata_format")?,
            settings: read_cache_settings(&mut r)?,
        },
        "cache" => SegmentKind::Cache {
            cache_pool: r.str("cache_pool")?,
            origin: r.str("origin")?,
            cleaner: r.opt_i64("cleaner")?.unwrap_or(0) != 0,
        },
        "snapshot" => {
            let chunk_size = r.u32("chunk_size")?;
            let origin = r.str("origin")?;
            let (cow, merging) = match (r.opt_str("cow_store")?, r.opt_str("merging_store")?) {
                (Some(c), None) => (c, false),
                (None, Some(m)) => (m, true),
                _ => {
                    return Err(ModelError::Invalid {
                        path: path.to_owned(),
                        message: "a snapshot needs exactly one of cow_store, merging_store".into(),
                    })
                }
            };
            SegmentKind::Snapshot {
                chunk_size,
                origin,
                cow,
                merging,
            }
        }
        _ => SegmentKind::Other { type_name },
    };
    let mut extra = r.extra(|_| false);
    // Every message section was read above (a value under such a name
    // stays in extra).
    if matches!(kind, SegmentKind::ThinPool { .. }) {
        extra
            .entries
            .retain(|(k, n)| !(is_message_key(k) && matches!(n, Node::Section(_))));
    }
    Ok(Segment {
        start_extent,
        extent_count,
        reshape_count,
        type_flags,
        tags,
        kind,
        extra,
    })
}

/// A value the writer may leave out as a default: `[]`, an empty section, 0.
fn is_empty_like(node: &Node) -> bool {
    match node {
        Node::Value(Value::List(items)) => items.is_empty(),
        Node::Value(Value::Int(0)) => true,
        Node::Value(_) => false,
        Node::Section(s) => s.entries.is_empty(),
    }
}

/// `message<N>` with N a number: the names lvm2 gives thin-pool messages.
fn is_message_key(key: &str) -> bool {
    key.strip_prefix("message")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn read_cache_settings(r: &mut Reader) -> Result<CacheSettings> {
    let settings = CacheSettings {
        chunk_size: r.opt_u32("chunk_size")?,
        cache_mode: r.opt_str("cache_mode")?,
        policy: r.opt_str("policy")?,
        // As lvm2's cache.c: empty settings are none (it writes none then).
        policy_settings: r
            .section("policy_settings")?
            .filter(|s| !s.entries.is_empty())
            .cloned(),
    };
    if settings.policy_settings.is_some() && settings.policy.is_none() {
        return Err(ModelError::Invalid {
            path: r.path.clone(),
            message: "cache policy settings require a policy name".into(),
        });
    }
    Ok(settings)
}

fn read_areas(r: &mut Reader, key: &'static str, pv_keys: &[String]) -> Result<Vec<Area>> {
    let items = match r.section.value(key) {
        Some(Value::List(items)) => items,
        Some(_) => return Err(r.wrong(key, "a list")),
        None => {
            return Err(ModelError::Missing {
                path: r.path.clone(),
                key,
            })
        }
    };
    r.used.push(key);
    if items.len() % 2 != 0 {
        return Err(ModelError::Invalid {
            path: r.path.clone(),
            message: format!("{key} has an odd number of items"),
        });
    }
    items
        .chunks(2)
        .map(|pair| match (&pair[0], &pair[1]) {
            // Extents are counted in 32 bits, as in lvm2.
            (Value::Str(name), Value::Int(start)) if (0..=u32::MAX as i64).contains(start) => {
                let start = *start as u64;
                // lvm2 looks names up as PVs first, then as LVs.
                Ok(match pv_keys.iter().position(|k| k == name) {
                    Some(pv) => Area::Pv { pv, pe: start },
                    None => Area::Lv {
                        lv: name.clone(),
                        le: start,
                    },
                })
            }
            _ => Err(ModelError::Invalid {
                path: r.path.clone(),
                message: format!("{key} must pair a name with a start extent"),
            }),
        })
        .collect()
}

// ---- writing ---------------------------------------------------------------

fn flag_names<F: Copy + PartialEq + std::ops::BitAnd<Output = F> + Default>(
    flags: F,
    names: &[(&str, F)],
) -> Value {
    let set: Vec<&str> = names
        .iter()
        .filter(|(_, f)| flags & *f != F::default())
        .map(|(n, _)| *n)
        .collect();
    Value::str_list(&set)
}

/// What the header comment and trailer of a written copy say.
#[derive(Debug, Clone)]
pub struct WriteContext {
    /// The first line: `# Generated by <generator>: <time>`.
    pub generator: String,
    /// `uname` fields for the creation_host comment: sysname, nodename, release, version, machine.
    pub uname: [String; 5],
    /// Seconds since the epoch.
    pub time: u64,
    /// The `description` line: why this copy was written.
    pub description: String,
}

impl Metadata {
    /// The text as lvm2 writes it into a metadata area (no indentation,
    /// the VG first, then the trailer). The caller appends the NUL.
    pub fn to_text(&self, ctx: &WriteContext) -> String {
        let mut w = text::Writer::new();
        write_vg(&mut w, &self.vg);
        let when = ctime(ctx.time);
        // ctime()'s own newline leaves a blank line after the comment, as in lvm2's text.
        w.comment(&format!("Generated by {}: {when}", ctx.generator))
            .blank();
        w.value("contents", &Value::str("Text Format Volume Group"));
        w.value("version", &Value::Int(1));
        w.blank();
        w.value("description", &Value::str(&ctx.description));
        w.blank();
        let [sys, node, release, version, machine] = &ctx.uname;
        w.value_with_comment(
            "creation_host",
            &Value::str(node),
            &format!("{sys} {node} {release} {version} {machine}"),
        );
        w.value_with_comment("creation_time", &Value::Int(ctx.time as i64), &when);
        // Keys after lvm2's own that this copy was read with (a newer
        // writer's), kept as read.
        w.section_entries(&self.trailer.extra);
        w.blank();
        w.finish()
    }
}

fn opt_str(w: &mut text::Writer, key: &str, value: &Option<String>) {
    if let Some(v) = value {
        w.value(key, &Value::str(v));
    }
}

fn opt_int(w: &mut text::Writer, key: &str, value: Option<u64>) {
    if let Some(v) = value {
        w.value(key, &Value::Int(v as i64));
    }
}

fn int(w: &mut text::Writer, key: &str, value: u64) {
    w.value(key, &Value::Int(value as i64));
}

fn list(w: &mut text::Writer, key: &str, items: &[String]) {
    if !items.is_empty() {
        w.value(key, &Value::str_list(items));
    }
}

fn write_vg(w: &mut text::Writer, vg: &VolumeGroup) {
    w.begin(&vg.name);
    w.value("id", &Value::str(&vg.id));
    int(w, "seqno", vg.seqno);
    opt_str(w, "format", &vg.format);
    w.value("status", &flag_names(vg.status, VG_STATUS_NAMES));
    w.value("flags", &Value::str_list(&vg.flags));
    list(w, "tags", &vg.tags);
    opt_str(w, "system_id", &vg.system_id);
    opt_str(w, "lock_type", &vg.lock_type);
    opt_str(w, "lock_args", &vg.lock_args);
    int(w, "extent_size", vg.extent_size);
    int(w, "max_lv", vg.max_lv);
    int(w, "max_pv", vg.max_pv);
    if let Some(policy) = &vg.allocation_policy {
        w.blank().value("allocation_policy", &Value::str(policy));
    }
    opt_str(w, "profile", &vg.profile);
    int(w, "metadata_copies", vg.metadata_copies);
    w.section_entries(&vg.extra);
    w.blank();

    w.begin("physical_volumes");
    for (i, pv) in vg.pvs.iter().enumerate() {
        w.blank().begin(&format!("pv{i}"));
        w.value("id", &Value::str(&pv.id));
        opt_str(w, "device", &pv.device);
        w.blank();
        opt_str(w, "device_id_type", &pv.device_id_type);
        opt_str(w, "device_id", &pv.device_id);
        w.value("status", &flag_names(pv.status, PV_STATUS_NAMES));
        w.value("flags", &Value::str_list(&pv.flags));
        list(w, "tags", &pv.tags);
        opt_int(w, "dev_size", pv.dev_size);
        int(w, "pe_start", pv.pe_start);
        int(w, "pe_count", pv.pe_count);
        if let (Some(start), Some(size)) = (pv.ba_start, pv.ba_size) {
            int(w, "ba_start", start);
            int(w, "ba_size", size);
        }
        w.section_entries(&pv.extra);
        w.end();
    }
    w.end().blank();

    if !vg.lvs.is_empty() {
        w.begin("logical_volumes");
        // lvm2 writes visible LVs first, then hidden ones, each in list order.
        let (visible, hidden): (Vec<&LogicalVolume>, Vec<&LogicalVolume>) =
            vg.lvs.iter().partition(|lv| vg.lv_is_visible(lv));
        for lv in visible.into_iter().chain(hidden) {
            write_lv(w, lv);
        }
        w.end();
    }
    w.blank();
    w.end();
}

fn write_lv(w: &mut text::Writer, lv: &LogicalVolume) {
    w.blank().begin(&lv.name);
    w.value("id", &Value::str(&lv.id));
    w.value("status", &flag_names(lv.status, LV_STATUS_NAMES));
    w.value("flags", &Value::str_list(&lv.flags));
    list(w, "tags", &lv.tags);
    if let Some(time) = lv.creation_time {
        int(w, "creation_time", time);
        w.value(
            "creation_host",
            &Value::str(lv.creation_host.as_deref().unwrap_or_default()),
        );
    }
    opt_str(w, "lock_args", &lv.lock_args);
    opt_str(w, "allocation_policy", &lv.allocation_policy);
    opt_str(w, "profile", &lv.profile);
    if let Some(ra) = lv.read_ahead {
        w.value("read_ahead", &Value::Int(ra));
    }
    if let Some(major) = lv.major {
        w.value("major", &Value::Int(major));
    }
    if let Some(minor) = lv.minor {
        w.value("minor", &Value::Int(minor));
    }
    int(w, "segment_count", lv.segments.len() as u64);
    w.section_entries(&lv.extra);
    w.blank();
    for (i, seg) in lv.segments.iter().enumerate() {
        write_segment(w, i + 1, seg);
    }
    w.end();
}

fn write_segment(w: &mut text::Writer, n: usize, seg: &Segment) {
    w.begin(&format!("segment{n}"));
    int(w, "start_extent", seg.start_extent);
    int(w, "extent_count", seg.extent_count);
    w.blank();
    opt_int(w, "reshape_count", seg.reshape_count);
    let mut type_name = seg.kind.type_name().to_owned();
    for flag in &seg.type_flags {
        type_name.push('+');
        type_name.push_str(flag);
    }
    w.value("type", &Value::str(&type_name));
    list(w, "tags", &seg.tags);
    match &seg.kind {
        SegmentKind::Striped {
            stripe_size,
            stripes,
        } => {
            int(w, "stripe_count", stripes.len() as u64);
            if stripes.len() > 1 {
                opt_int(w, "stripe_size", *stripe_size);
            }
            w.blank();
            let items: Vec<Value> = stripes
                .iter()
                .flat_map(|a| match a {
                    Area::Pv { pv, pe } => [Value::str(format!("pv{pv}")), Value::Int(*pe as i64)],
                    Area::Lv { lv, le } => [Value::str(lv), Value::Int(*le as i64)],
                })
                .collect();
            w.list_by_lines("stripes", &items, 2);
        }
        SegmentKind::ThinPool {
            metadata,
            pool,
            transaction_id,
            chunk_size,
            discards,
            zero_new_blocks,
            crop_metadata,
            messages,
        } => {
            w.value("metadata", &Value::str(metadata));
            w.value("pool", &Value::str(pool));
            int(w, "transaction_id", *transaction_id);
            int(w, "chunk_size", *chunk_size);
            opt_str(w, "discards", discards);
            if *zero_new_blocks {
                int(w, "zero_new_blocks", 1);
            }
            if let Some(crop) = crop_metadata {
                int(w, "crop_metadata", u64::from(*crop));
            }
            for (i, msg) in messages.iter().enumerate() {
                if i == 0 {
                    w.blank();
                }
                w.begin(&format!("message{}", i + 1));
                match msg {
                    ThinMessage::Create(lv) => w.value("create", &Value::str(lv)),
                    ThinMessage::Delete(id) => w.value("delete", &Value::Int(*id)),
                };
                w.end();
            }
        }
        SegmentKind::Thin {
            thin_pool,
            transaction_id,
            device_id,
            external_origin,
            origin,
            merge,
        } => {
            w.value("thin_pool", &Value::str(thin_pool));
            int(w, "transaction_id", *transaction_id);
            int(w, "device_id", *device_id);
            opt_str(w, "external_origin", external_origin);
            opt_str(w, "origin", origin);
            opt_str(w, "merge", merge);
        }
        SegmentKind::CachePool {
            data,
            metadata,
            metadata_format,
            settings,
        } => {
            w.value("data", &Value::str(data));
            w.value("metadata", &Value::str(metadata));
            opt_int(w, "metadata_format", *metadata_format);
            write_cache_settings(w, settings);
        }
        SegmentKind::Cache {
            cache_pool,
            origin,
            cleaner,
        } => {
            w.value("cache_pool", &Value::str(cache_pool));
            w.value("origin", &Value::str(origin));
            if *cleaner {
                int(w, "cleaner", 1);
            }
        }
        SegmentKind::Snapshot {
            chunk_size,
            origin,
            cow,
            merging,
        } => {
            int(w, "chunk_size", *chunk_size);
            w.value("origin", &Value::str(origin));
            w.value(
                if *merging {
                    "merging_store"
                } else {
                    "cow_store"
                },
                &Value::str(cow),
            );
        }
        SegmentKind::Other { .. } => {}
    }
    w.section_entries(&seg.extra);
    w.end();
}

fn write_cache_settings(w: &mut text::Writer, s: &CacheSettings) {
    opt_int(w, "chunk_size", s.chunk_size);
    opt_str(w, "cache_mode", &s.cache_mode);
    if let Some(policy) = &s.policy {
        w.value("policy", &Value::str(policy));
        if let Some(settings) = &s.policy_settings {
            if !settings.entries.is_empty() {
                w.begin("policy_settings").section_entries(settings).end();
            }
        }
    }
}

/// `ctime(3)` of a UTC time, without its newline: "Tue Nov 24 05:43:25 2026".
pub fn ctime(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = crate::units::civil_date(days);
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        year
    )
}

#[cfg(test)]
mod tests;
