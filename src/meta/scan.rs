//! Finding PVs and volume groups on devices: labels, metadata areas, the
//! newest consistent copy of each VG's text. Topology-aware: the same PV
//! seen through a stacked device (a dm-cache origin `_corig` under its
//! cached LV, a DRBD backing device under /dev/drbdN, a lower DRBD under a
//! stacked one) is one PV on the top device, not a "duplicate PV".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::blockdev::SysfsGraph;

use super::device::{Device, DeviceError};
use super::label::{find_label, DiskLocn, Label, LabelError, LABEL_SCAN_BYTES};
use super::mda::{self, MdaError, MdaHeader, Slot, MDA_HEADER_SIZE};
use super::model::{self, Metadata, ModelError};
use super::reader::DeviceRead;

/// Why a device or VG could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Opening or reading a device failed.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The LVM2 label or PV header is damaged.
    #[error("{path}: {source}")]
    Label {
        /// The device.
        path: PathBuf,
        /// What is wrong.
        source: LabelError,
    },
    /// A metadata area header or its committed copy is damaged.
    #[error("{path}: {source}")]
    Mda {
        /// The device.
        path: PathBuf,
        /// Absolute byte offset of the metadata area on the device.
        start: u64,
        /// What is wrong.
        source: MdaError,
    },
    /// The committed metadata text does not read as a VG.
    #[error("{path}: metadata area at byte {start}: {source}")]
    Text {
        /// The device.
        path: PathBuf,
        /// Absolute byte offset of the metadata area on the device.
        start: u64,
        /// What is wrong.
        source: ModelError,
    },
    /// The PV header places a metadata area beyond the device's end.
    #[error(
        "{path}: the PV header places a metadata area at byte {offset} ({size} bytes), past \
         the end of the device ({device_size} bytes): the label is damaged or not lvm2's"
    )]
    AreaPastEnd {
        /// The device.
        path: PathBuf,
        /// The area's start in bytes, as the PV header gives it.
        offset: u64,
        /// The area's size in bytes.
        size: u64,
        /// The device's size in bytes.
        device_size: u64,
    },
    /// The device has no LVM2 label.
    #[error("{path} is not an LVM physical volume (no LVM2 label in its first 4 sectors): run `cairn pv create {path}` first")]
    NotAPv {
        /// The device.
        path: PathBuf,
    },
    /// No scanned PV carries the named VG.
    #[error("volume group {0} not found")]
    NoSuchVg(String),
    /// Copies of a VG with the same seqno differ (lvm2 calls this inconsistent metadata).
    #[error(
        "volume group {vg}: the copies with seqno {seqno} differ ({copies}): the metadata is \
         inconsistent; nothing was changed. Inspect with `pvck --dump metadata` and restore with vgcfgrestore"
    )]
    Inconsistent {
        /// The VG's name.
        vg: String,
        /// The seqno the differing copies share.
        seqno: u64,
        /// The differing checksums and the devices holding them.
        copies: String,
    },
    /// Two different VGs (by UUID) have the same name.
    #[error("two volume groups are named {name} (ids {a} and {b}): rename one with lvm2 (vgrename by uuid)")]
    NameClash {
        /// The shared name.
        name: String,
        /// One VG's UUID.
        a: String,
        /// The other's.
        b: String,
    },
    /// The same PV UUID is on devices none of which is stacked on the others.
    #[error("PV {uuid} is seen on {devices}, and cairn cannot tell which device is on top: name the right one explicitly")]
    Ambiguous {
        /// The PV UUID.
        uuid: String,
        /// The devices it is seen on, comma-separated.
        devices: String,
    },
    /// The device sits on a suspended device-mapper device, so reading it would hang.
    #[error(
        "{path} was not read: device-mapper device {suspended} is suspended, and reading would \
         wait until somebody resumes it (`cairn vg activate` or `cairn up` resumes the devices of \
         their VGs; `dmsetup resume {suspended}` by hand)"
    )]
    Suspended {
        /// The device.
        path: PathBuf,
        /// The suspended dm device's name.
        suspended: String,
    },
}

/// Result of a scan.
pub type Result<T> = std::result::Result<T, ScanError>;

impl ScanError {
    /// The device the error is about, if it is about one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ScanError::Device(DeviceError::Open { path, .. } | DeviceError::Io { path, .. })
            | ScanError::Device(
                DeviceError::NotADevice { path } | DeviceError::PastEnd { path, .. },
            )
            | ScanError::Label { path, .. }
            | ScanError::Mda { path, .. }
            | ScanError::Text { path, .. }
            | ScanError::AreaPastEnd { path, .. }
            | ScanError::NotAPv { path }
            | ScanError::Suspended { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// The committed copy of a VG's text found in one metadata area. Only its
/// first lines (name, id, seqno) are read at scan time; the whole text is
/// parsed when the VG is asked for, so a report on one VG does not pay for
/// every other VG on the host.
#[derive(Debug, Clone)]
pub struct Copy {
    /// The metadata text, without its NUL.
    pub text: String,
    /// The raw_locn's checksum of the text (with the NUL).
    pub checksum: u32,
    /// Text length including the NUL, as in the raw_locn.
    pub size: u64,
    /// The VG's name, from the text's first line.
    pub vg_name: String,
    /// The VG's UUID.
    pub vg_id: String,
    /// The VG's seqno: the highest among a VG's copies is current.
    pub seqno: u64,
    /// Where it was read, for errors.
    path: PathBuf,
    start: u64,
    parsed: std::cell::OnceCell<std::result::Result<Metadata, ModelError>>,
}

impl Copy {
    fn new(text: String, checksum: u32, size: u64, path: &Path, start: u64) -> Result<Copy> {
        let text_err = |source| ScanError::Text {
            path: path.to_owned(),
            start,
            source,
        };
        let mut copy = Copy {
            text,
            checksum,
            size,
            vg_name: String::new(),
            vg_id: String::new(),
            seqno: 0,
            path: path.to_owned(),
            start,
            parsed: std::cell::OnceCell::new(),
        };
        match peek_header(&copy.text) {
            Some((name, id, seqno)) => (copy.vg_name, copy.vg_id, copy.seqno) = (name, id, seqno),
            // Not laid out as lvm2 lays it out: parse it all now.
            None => {
                let md = model::parse(&copy.text).map_err(text_err)?;
                (copy.vg_name, copy.vg_id, copy.seqno) =
                    (md.vg.name.clone(), md.vg.id.clone(), md.vg.seqno);
                let _ = copy.parsed.set(Ok(md));
            }
        }
        Ok(copy)
    }

    /// The whole VG (parsed on first use).
    pub fn metadata(&self) -> Result<&Metadata> {
        self.parsed
            .get_or_init(|| model::parse(&self.text))
            .as_ref()
            .map_err(|e| ScanError::Text {
                path: self.path.clone(),
                start: self.start,
                source: e.clone(),
            })
    }
}

/// The VG name, id and seqno from the first lines of a text written as lvm2
/// writes it (`name {`, `id = "..."`, `seqno = N`); None otherwise.
fn peek_header(text: &str) -> Option<(String, String, u64)> {
    let mut lines = text.lines();
    let name = lines.next()?.strip_suffix(" {")?;
    // A name lvm2 would refuse goes to the full parse, which says why.
    if !super::text::is_plain_key(name) || crate::names::lvm(name).is_err() {
        return None;
    }
    let id = lines.next()?.strip_prefix("id = \"")?.strip_suffix('"')?;
    let seqno = lines.next()?.strip_prefix("seqno = ")?.parse().ok()?;
    Some((name.to_owned(), id.to_owned(), seqno))
}

/// One metadata area of a scanned PV.
#[derive(Debug, Clone)]
pub struct ScannedMda {
    /// The area's header.
    pub header: MdaHeader,
    /// None when the area holds no copy (a PV not in a VG) or is ignored.
    pub committed: Option<Copy>,
}

/// A PV as found on one device.
#[derive(Debug, Clone)]
pub struct ScannedPv {
    /// The device it was read from.
    pub path: PathBuf,
    /// The device's (major, minor), when it is a block device.
    pub devno: Option<(u32, u32)>,
    /// Bytes.
    pub size: u64,
    /// Its label, PV header and extension.
    pub label: Label,
    /// Its metadata areas (0, 1 or 2), in PV header order.
    pub mdas: Vec<ScannedMda>,
}

impl ScannedPv {
    /// Whether the label says the PV belongs to a VG (`PV_EXT_USED`, set by
    /// lvm2 >= 2.02.158 and by cairn). A PV with no metadata area, or whose
    /// areas are ignored, carries no copy of its VG: this flag, or the VG's
    /// metadata on its other PVs, are the only ways to know it is taken.
    pub fn marked_used(&self) -> bool {
        self.label
            .pv_header
            .extension
            .as_ref()
            .is_some_and(|e| e.flags & super::label::PV_EXT_USED != 0)
    }

    /// The newest copy this PV carries.
    pub fn newest_copy(&self) -> Option<&Copy> {
        self.mdas
            .iter()
            .filter_map(|m| m.committed.as_ref())
            .max_by_key(|c| c.seqno)
    }
}

/// Reads one device: Ok(None) when it carries no LVM2 label.
pub fn read_pv(path: &Path) -> Result<Option<ScannedPv>> {
    read_pv_in(path, &mut SysfsGraph::default())
}

/// [`read_pv`], with the sysfs graph of the scan reading it (read once for
/// all the devices of one scan).
pub fn read_pv_in(path: &Path, sysfs: &mut SysfsGraph) -> Result<Option<ScannedPv>> {
    refuse_suspended(path, sysfs)?;
    let dev = Device::open(path, false)?;
    let Some((label, mdas)) = read_label_and_mdas(&dev)? else {
        return Ok(None);
    };
    // lvm2's name for the device: /dev/vg/lv for an LV, not the path given.
    let path = dev
        .devno
        .and_then(preferred_name)
        .unwrap_or_else(|| path.to_owned());
    Ok(Some(ScannedPv {
        path,
        devno: dev.devno,
        size: dev.size,
        label,
        mdas,
    }))
}

/// The label of a device and what its metadata areas hold: Ok(None) when
/// it carries no LVM2 label. Everything read is bounded by the device: an
/// area the PV header places past the device's end, a header larger than
/// its area, or a copy outside it is an error naming the device (the scan
/// records it as a problem with that device and goes on), never a read or
/// an allocation sized by what the disk says.
pub fn read_label_and_mdas(dev: &impl DeviceRead) -> Result<Option<(Label, Vec<ScannedMda>)>> {
    if dev.size() < LABEL_SCAN_BYTES as u64 {
        return Ok(None);
    }
    let head = dev.read_at(0, LABEL_SCAN_BYTES)?;
    let Some(label) = find_label(&head).map_err(|source| ScanError::Label {
        path: dev.path().to_owned(),
        source,
    })?
    else {
        return Ok(None);
    };
    let mut mdas = Vec::new();
    for area in &label.pv_header.metadata_areas {
        if area
            .offset
            .checked_add(area.size)
            .is_none_or(|end| end > dev.size())
        {
            return Err(ScanError::AreaPastEnd {
                path: dev.path().to_owned(),
                offset: area.offset,
                size: area.size,
                device_size: dev.size(),
            });
        }
        mdas.push(read_mda(dev, area)?);
    }
    Ok(Some((label, mdas)))
}

/// Reads the metadata area `area` (inside the device: checked by the
/// caller): its header, checked against the area, then only the committed
/// copy's bytes (one span, or two when it wraps), which
/// [`mda::locate_text`] keeps inside the header's size.
fn read_mda(dev: &impl DeviceRead, area: &DiskLocn) -> Result<ScannedMda> {
    let start = area.offset;
    let mda_err = |source| ScanError::Mda {
        path: dev.path().to_owned(),
        start,
        source,
    };
    let head = dev.read_at(start, MDA_HEADER_SIZE as usize)?;
    let header = MdaHeader::decode(&head, start).map_err(mda_err)?;
    mda::check_area_size(&header, area.size).map_err(mda_err)?;
    let locn = *header.slot(Slot::Committed);
    if locn.is_empty() || header.is_ignored() {
        return Ok(ScannedMda {
            header,
            committed: None,
        });
    }
    let (first, second) = mda::locate_text(&header, &locn).map_err(mda_err)?;
    // locn.size <= header.size <= area.size <= the device's size. The
    // reservation may still fail for a huge device: an error, not an abort.
    let no_memory = || {
        mda_err(MdaError::NoMemory {
            start,
            size: locn.size,
        })
    };
    let mut bytes = Vec::new();
    usize::try_from(locn.size)
        .ok()
        .and_then(|n| bytes.try_reserve_exact(n).ok())
        .ok_or_else(no_memory)?;
    for span in std::iter::once(first).chain(second) {
        // In pieces, so that no read buffer is larger than a piece.
        let mut done = 0;
        while done < span.len {
            let piece = (span.len - done).min(READ_PIECE);
            bytes.extend_from_slice(&dev.read_at(start + span.offset + done, piece as usize)?);
            done += piece;
        }
    }
    let text = mda::check_text(&header, &locn, bytes).map_err(mda_err)?;
    let text = String::from_utf8(text).map_err(|_| ScanError::Text {
        path: dev.path().to_owned(),
        start,
        source: ModelError::Invalid {
            path: "metadata".into(),
            message: "text is not UTF-8".into(),
        },
    })?;
    let copy = Copy::new(text, locn.checksum, locn.size, dev.path(), start)?;
    Ok(ScannedMda {
        header,
        committed: Some(copy),
    })
}

/// The largest single read of a copy's text (lvm2's default area is 1 MiB).
const READ_PIECE: u64 = 1 << 20;

/// The name lvm2 shows for a device-mapper device: `/dev/<vg>/<lv>` for an
/// LV (uuid `LVM-` with no layer suffix) whose link exists, otherwise
/// `/dev/mapper/<name>`. None for other devices (their path stays as given).
pub fn preferred_name((major, minor): (u32, u32)) -> Option<PathBuf> {
    let sys = format!("/sys/dev/block/{major}:{minor}/dm");
    let name = std::fs::read_to_string(format!("{sys}/name"))
        .ok()?
        .trim()
        .to_owned();
    let uuid = std::fs::read_to_string(format!("{sys}/uuid")).unwrap_or_default();
    let uuid = uuid.trim();
    // "LVM-" + 32 + 32 characters is an LV itself; a suffix marks a layer.
    if uuid.starts_with("LVM-") && uuid.len() == 68 {
        if let Some((vg, lv)) = split_dm_name(&name) {
            let link = PathBuf::from("/dev").join(vg).join(lv);
            if link.exists() {
                return Some(link);
            }
        }
    }
    Some(PathBuf::from("/dev/mapper").join(name))
}

/// Undoes lvm2's dm name escaping: the VG and LV are joined by the first
/// single '-', and each '-' inside them is doubled.
pub fn split_dm_name(name: &str) -> Option<(String, String)> {
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'-' {
            if bytes.get(i + 1) == Some(&b'-') {
                i += 2;
                continue;
            }
            let (vg, lv) = (&name[..i], &name[i + 1..]);
            return Some((vg.replace("--", "-"), lv.replace("--", "-")));
        }
        i += 1;
    }
    None
}

/// Every block device worth looking at, as lvm2 would name it: `/dev/mapper/<name>`
/// for device-mapper devices, `/dev/<name>` otherwise. Empty devices are
/// skipped, and LVs unless `scan_lvs` (lvm.conf's devices/scan_lvs): an LV
/// holds whatever its user writes (a container, a VM), and a copy of a
/// host PV's label written there must never be taken for the PV.
pub fn block_devices(scan_lvs: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/sys/class/block") else {
        return out;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let sys = entry.path();
        let size: u64 = std::fs::read_to_string(sys.join("size"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if size == 0 || name.starts_with("ram") || name.starts_with("zram") {
            continue;
        }
        if !scan_lvs
            && std::fs::read_to_string(sys.join("dm/uuid")).is_ok_and(|u| u.starts_with("LVM-"))
        {
            continue;
        }
        let path = match std::fs::read_to_string(sys.join("dm/name")) {
            Ok(dm) => PathBuf::from("/dev/mapper").join(dm.trim()),
            Err(_) => PathBuf::from("/dev").join(&name),
        };
        out.push(if path.exists() {
            path
        } else {
            PathBuf::from("/dev").join(&name)
        });
    }
    out.sort();
    out
}

/// What a scan found: PVs (duplicates resolved to the top device) and
/// problems that do not stop the scan (a device that cannot be read).
#[derive(Debug, Default)]
pub struct Scan {
    /// The PVs found, each on its top device.
    pub pvs: Vec<ScannedPv>,
    /// Lower copies of PVs, dropped in favour of the device stacked on them.
    pub hidden: Vec<(PathBuf, PathBuf)>,
    /// Devices that could not be read, or read as damaged.
    pub problems: Vec<ScanError>,
}

impl Scan {
    /// Scans the given devices (the host's, LVs left out, when empty). A
    /// device that cannot be read or carries damaged metadata is recorded
    /// in `problems`, not fatal: its PV then counts as missing, and a VG
    /// with a missing PV is read but never written.
    pub fn devices(paths: &[PathBuf]) -> Result<Scan> {
        Self::devices_or_host(paths, false)
    }

    /// [`Scan::devices`] of given devices, with the sysfs graph of a caller
    /// that reads the same devices more than once.
    pub fn devices_in(paths: &[PathBuf], sysfs: &mut SysfsGraph) -> Result<Scan> {
        Self::read(
            if paths.is_empty() {
                block_devices(false)
            } else {
                paths.to_vec()
            },
            sysfs,
        )
    }

    /// [`Scan::devices`]; when `paths` is empty, the host's block devices,
    /// LVs included only with `scan_lvs`.
    pub fn devices_or_host(paths: &[PathBuf], scan_lvs: bool) -> Result<Scan> {
        let paths = if paths.is_empty() {
            block_devices(scan_lvs)
        } else {
            paths.to_vec()
        };
        Self::read(paths, &mut SysfsGraph::default())
    }

    /// Reads `paths` and resolves the PVs seen on more than one of them.
    fn read(paths: Vec<PathBuf>, sysfs: &mut SysfsGraph) -> Result<Scan> {
        let mut found = Vec::new();
        let mut problems = Vec::new();
        for path in &paths {
            match read_pv_in(path, sysfs) {
                Ok(Some(pv)) => found.push(pv),
                Ok(None) => {}
                Err(e) => problems.push(e),
            }
        }
        let mut scan = Scan {
            pvs: Vec::new(),
            hidden: Vec::new(),
            problems,
        };
        let mut by_uuid: BTreeMap<String, Vec<ScannedPv>> = BTreeMap::new();
        for pv in found {
            by_uuid
                .entry(pv.label.pv_header.uuid.as_str().to_owned())
                .or_default()
                .push(pv);
        }
        for (uuid, copies) in by_uuid {
            if copies.len() == 1 {
                scan.pvs.extend(copies);
                continue;
            }
            let top = pick_top(&copies).ok_or_else(|| ScanError::Ambiguous {
                uuid: uuid.clone(),
                devices: copies
                    .iter()
                    .map(|c| c.path.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
            match top {
                Ok(i) => {
                    for (j, c) in copies.iter().enumerate() {
                        if j != i {
                            scan.hidden.push((c.path.clone(), copies[i].path.clone()));
                        }
                    }
                    scan.pvs
                        .push(copies.into_iter().nth(i).expect("index in range"));
                }
                Err(e) => scan.problems.push(e),
            }
        }
        scan.pvs.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(scan)
    }

    /// The VG called `name`, from the newest consistent copy.
    pub fn vg(&self, name: &str) -> Result<VgView> {
        let newest = self.newest_copies()?;
        let (seqno, copy) = newest
            .get(name)
            .ok_or_else(|| ScanError::NoSuchVg(name.to_owned()))?;
        self.view(*seqno, copy)
    }

    /// Names of every VG seen.
    pub fn vg_names(&self) -> Result<Vec<String>> {
        Ok(self.newest_copies()?.into_keys().collect())
    }

    /// Every VG seen, by name.
    pub fn vgs(&self) -> Result<BTreeMap<String, VgView>> {
        self.newest_copies()?
            .into_iter()
            .map(|(name, (seqno, copy))| Ok((name, self.view(seqno, copy)?)))
            .collect()
    }

    /// For each VG name, its newest copy, checked for name clashes and for
    /// copies of one seqno that differ.
    fn newest_copies(&self) -> Result<BTreeMap<String, (u64, &Copy)>> {
        // name -> (seqno, checksum, device, the copy)
        let mut newest: BTreeMap<String, (u64, u32, usize, &Copy)> = BTreeMap::new();
        for (i, pv) in self.pvs.iter().enumerate() {
            for copy in pv.mdas.iter().filter_map(|m| m.committed.as_ref()) {
                match newest.get(&copy.vg_name) {
                    Some((_, _, _, other)) if other.vg_id != copy.vg_id => {
                        return Err(ScanError::NameClash {
                            name: copy.vg_name.clone(),
                            a: other.vg_id.clone(),
                            b: copy.vg_id.clone(),
                        })
                    }
                    Some((seqno, checksum, at, _))
                        if *seqno == copy.seqno && *checksum != copy.checksum =>
                    {
                        return Err(ScanError::Inconsistent {
                            vg: copy.vg_name.clone(),
                            seqno: copy.seqno,
                            copies: format!(
                                "checksum {checksum:#x} on {}, {:#x} on {}",
                                self.pvs[*at].path.display(),
                                copy.checksum,
                                pv.path.display()
                            ),
                        })
                    }
                    Some((seqno, _, _, _)) if *seqno >= copy.seqno => {}
                    _ => {
                        newest.insert(copy.vg_name.clone(), (copy.seqno, copy.checksum, i, copy));
                    }
                }
            }
        }
        Ok(newest
            .into_iter()
            .map(|(name, (seqno, _, _, copy))| (name, (seqno, copy)))
            .collect())
    }

    fn view(&self, seqno: u64, copy: &Copy) -> Result<VgView> {
        {
            let metadata = copy.metadata()?.clone();
            // Which scanned PV is each PV of the VG (None: missing).
            let devices = metadata
                .vg
                .pvs
                .iter()
                .map(|p| {
                    let uuid: String = p.id.chars().filter(|c| *c != '-').collect();
                    self.pvs
                        .iter()
                        .position(|s| s.label.pv_header.uuid.as_str() == uuid)
                })
                .collect::<Vec<_>>();
            let stale = devices
                .iter()
                .flatten()
                .filter(|&&d| self.pvs[d].newest_copy().is_some_and(|c| c.seqno < seqno))
                .map(|&d| self.pvs[d].path.clone())
                .collect();
            Ok(VgView {
                metadata,
                text: copy.text.clone(),
                size: copy.size,
                devices,
                stale,
            })
        }
    }

    /// The problem found on `path`, if reading it failed.
    pub fn problem_with(&self, path: &Path) -> Option<&ScanError> {
        self.problems.iter().find(|e| e.path() == Some(path))
    }

    /// Scanned PVs that no VG seen lists (orphans, and PVs marked used
    /// whose VG is not in this scan: see [`Scan::owner`]).
    pub fn orphans(&self) -> Vec<&ScannedPv> {
        self.pvs
            .iter()
            .filter(|p| !matches!(self.owner(p), PvOwner::Vg(_)))
            .collect()
    }

    /// Which VG `pv` belongs to. A PV's own copy names its VG; a PV without
    /// a copy (`pvcreate --metadatacopies 0`, areas ignored with
    /// `--metadataignore` or `vgchange --vgmetadatacopies`) belongs to the VG
    /// whose metadata on other PVs lists its uuid; failing that, a label
    /// marked used means a VG whose PVs were not scanned holds it.
    pub fn owner(&self, pv: &ScannedPv) -> PvOwner {
        if let Some(copy) = pv.newest_copy() {
            return PvOwner::Vg(copy.vg_name.clone());
        }
        let uuid = pv.label.pv_header.uuid.as_str();
        // Copies that clash or disagree hide which VG lists the PV: taken.
        let Ok(newest) = self.newest_copies() else {
            return PvOwner::UnknownVg;
        };
        for (name, (_, copy)) in newest {
            let listed = copy.metadata().is_ok_and(|m| {
                m.vg.pvs
                    .iter()
                    .any(|p| p.id.chars().filter(|c| *c != '-').eq(uuid.chars()))
            });
            if listed {
                return PvOwner::Vg(name);
            }
        }
        if pv.marked_used() {
            PvOwner::UnknownVg
        } else {
            PvOwner::Orphan
        }
    }
}

/// Who a scanned PV belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PvOwner {
    /// A VG of this name lists it.
    Vg(String),
    /// Its label is marked used, but no VG of the scan lists it: its VG's
    /// metadata is on devices not scanned (or lost). Never free to take.
    UnknownVg,
    /// Free: in no VG.
    Orphan,
}

/// A volume group as the scan sees it.
#[derive(Debug, Clone)]
pub struct VgView {
    /// The VG, parsed from its newest copy.
    pub metadata: Metadata,
    /// The text it was read from (what gets archived before a change).
    pub text: String,
    /// Its size with the NUL, as in the raw_locn.
    pub size: u64,
    /// For each PV of the VG (same order), the index of its scanned device.
    pub devices: Vec<Option<usize>>,
    /// Devices whose copy is older than the newest (rewritten on the next commit).
    pub stale: Vec<PathBuf>,
}

impl VgView {
    /// PVs of the VG that are not here: no device found, or flagged MISSING
    /// by lvm2 (written while away, not yet restored).
    pub fn missing_pvs(&self) -> Vec<&str> {
        self.devices
            .iter()
            .zip(&self.metadata.vg.pvs)
            .filter(|(d, p)| d.is_none() || p.is_marked_missing())
            .map(|(_, p)| p.id.as_str())
            .collect()
    }
}

// ---- topology ----------------------------------------------------------------

/// Refuses to read a device whose I/O would wait on a suspended
/// device-mapper device (lvm2 skips suspended devices in its scan for the
/// same reason; a command stopped between suspend and resume leaves them so).
fn refuse_suspended(path: &Path, sysfs: &mut SysfsGraph) -> Result<()> {
    match sysfs.suspended_under(path) {
        Some(suspended) => Err(ScanError::Suspended {
            path: path.to_owned(),
            suspended,
        }),
        None => Ok(()),
    }
}

/// The devices holding `devno` open through the kernel (dm tables, md
/// arrays), transitively, from sysfs.
fn holders(devno: (u32, u32)) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut todo = vec![devno];
    while let Some((major, minor)) = todo.pop() {
        let dir = format!("/sys/dev/block/{major}:{minor}/holders");
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let dev = std::fs::read_to_string(entry.path().join("dev")).unwrap_or_default();
            if let Some((a, b)) = dev.trim().split_once(':') {
                if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
                    if !out.contains(&(a, b)) {
                        out.push((a, b));
                        todo.push((a, b));
                    }
                }
            }
        }
    }
    out
}

/// Whether something in the kernel holds the device exclusively (a dm
/// table, DRBD's backing-device claim, md): opening it O_EXCL fails.
fn claimed(path: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_EXCL)
        .open(path)
        .is_err_and(|e| e.raw_os_error() == Some(nix::libc::EBUSY))
}

/// Which of several devices showing the same PV label is the one the PV
/// lives on. (1) A device held (through sysfs) by another candidate is below
/// it: a cache origin under its cached LV. (2) Stacking with internal
/// metadata (DRBD) makes each upper device smaller than the one below: the
/// smallest is on top. (3) Among equals, a device nothing holds is the top.
fn pick_top(copies: &[ScannedPv]) -> Option<usize> {
    let mut candidates: Vec<usize> = (0..copies.len())
        .filter(|&i| {
            let Some(devno) = copies[i].devno else {
                return true;
            };
            let above = holders(devno);
            !copies
                .iter()
                .enumerate()
                .any(|(j, c)| j != i && c.devno.is_some_and(|d| above.contains(&d)))
        })
        .collect();
    let smallest = candidates.iter().map(|&i| copies[i].size).min()?;
    candidates.retain(|&i| copies[i].size == smallest);
    if candidates.len() > 1 {
        let free: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&i| !claimed(&copies[i].path))
            .collect();
        if free.len() == 1 {
            return Some(free[0]);
        }
    }
    (candidates.len() == 1).then(|| candidates[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::fixtures::{VGONE, VGWRAP};
    use crate::meta::mda::RawLocn;
    use crate::meta::reader::ImageDevice;

    /// Where pvcreate puts the (first) metadata area.
    const MDA_START: u64 = 4096;

    /// `image` with its mda header changed by `edit` and signed again.
    fn with_header(image: &[u8], edit: impl FnOnce(&mut MdaHeader)) -> Vec<u8> {
        let mut out = image.to_vec();
        let at = MDA_START as usize;
        let mut header = MdaHeader::decode(&out[at..at + 512], MDA_START).unwrap();
        edit(&mut header);
        out[at..at + 512].copy_from_slice(&header.encode());
        out
    }

    fn read(image: &[u8]) -> Result<Option<(Label, Vec<ScannedMda>)>> {
        read_label_and_mdas(&ImageDevice::new("/dev/crafted", image))
    }

    #[test]
    fn lvm2s_images_read_whole() {
        for (image, vg) in [(VGONE, "vgone"), (VGWRAP, "vgwrap")] {
            let (label, mdas) = read(image).unwrap().unwrap();
            assert_eq!(label.pv_header.metadata_areas[0].offset, MDA_START);
            let copy = mdas[0].committed.as_ref().unwrap();
            assert_eq!(copy.vg_name, vg);
            assert_eq!(copy.metadata().unwrap().vg.name, vg);
        }
    }

    /// Crafted headers, each signed as lvm2 signs them: an error naming the
    /// device and the area, never a panic or a buffer of the header's size.
    #[test]
    fn crafted_mda_headers_are_errors_not_aborts() {
        let committed = *MdaHeader::decode(&VGONE[4096..4608], MDA_START)
            .unwrap()
            .slot(Slot::Committed);
        let at = move |offset: u64, size: u64| RawLocn {
            offset,
            size,
            ..committed
        };
        type Edit = Box<dyn Fn(&mut MdaHeader)>;
        let cases: Vec<(&str, Edit, &str)> = vec![
            (
                "huge area, copy deep in it",
                Box::new(move |h| {
                    h.size = u64::MAX;
                    h.raw_locns[0] = at(1 << 40, 4096);
                }),
                "header says the area is 18446744073709551615 bytes",
            ),
            (
                "area larger than the PV header's",
                Box::new(|h| h.size += 512),
                "but the PV header gives it",
            ),
            (
                "copy past the area",
                Box::new(move |h| h.raw_locns[0] = at(h.size, 1000)),
                "outside the text buffer",
            ),
            (
                "copy longer than the area",
                Box::new(move |h| h.raw_locns[0] = at(512, h.size)),
                "outside the text buffer",
            ),
            (
                "offset and size that wrap u64",
                Box::new(move |h| h.raw_locns[0] = at(u64::MAX - 10, 100)),
                "outside the text buffer",
            ),
            (
                "copy that wraps past the end onto the header's checksum",
                Box::new(move |h| h.raw_locns[0] = at(h.size - 512, 4096)),
                "bad checksum",
            ),
            (
                "area size 0",
                Box::new(|h| h.size = 0),
                "outside the text buffer",
            ),
            (
                "copy in the header",
                Box::new(move |h| h.raw_locns[0] = at(0, 4096)),
                "outside the text buffer",
            ),
        ];
        for (what, edit, expected) in cases {
            let image = with_header(VGONE, edit);
            let e = read(&image).expect_err(what);
            let shown = e.to_string();
            assert!(
                shown.starts_with("/dev/crafted: metadata area at 4096: ")
                    && shown.contains(expected),
                "{what}: {shown}"
            );
            assert_eq!(e.path(), Some(Path::new("/dev/crafted")), "{what}");
        }
    }

    /// The PV header is on disk too: an area it places past the device's
    /// end is refused before anything is read from it.
    #[test]
    fn a_pv_header_area_past_the_device_is_an_error() {
        for (offset, size) in [(4096, 1 << 40), (u64::MAX - 511, 1024), (1 << 20, 1)] {
            let mut label = find_label(&VGONE[..LABEL_SCAN_BYTES]).unwrap().unwrap();
            label.pv_header.metadata_areas[0] = DiskLocn { offset, size };
            let mut image = VGONE.to_vec();
            let sector = label.sector as usize * 512;
            image[sector..sector + 512].copy_from_slice(&label.encode().unwrap());
            let e = read(&image).unwrap_err();
            assert!(
                matches!(e, ScanError::AreaPastEnd { .. })
                    && e.to_string()
                        .contains("past the end of the device (1048576 bytes)"),
                "{offset}+{size}: {e}"
            );
        }
    }

    /// The full scan of two devices, one with a crafted header: the other
    /// VG is listed, the crafted device is a problem of the scan.
    #[test]
    fn a_crafted_header_on_one_device_leaves_the_scan_of_the_others() {
        let dir = std::env::temp_dir().join(format!("cairn-scan-crafted-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good");
        let bad = dir.join("bad");
        std::fs::write(&good, VGONE).unwrap();
        let at = |offset, size| RawLocn {
            offset,
            size,
            checksum: 0,
            flags: 0,
        };
        std::fs::write(
            &bad,
            with_header(VGWRAP, |h| {
                h.size = u64::MAX;
                h.raw_locns[0] = at(1 << 42, 1 << 20);
            }),
        )
        .unwrap();
        let scan = Scan::devices(&[good.clone(), bad.clone()]).unwrap();
        assert_eq!(scan.vg_names().unwrap(), ["vgone"]);
        let problem = scan
            .problem_with(&bad)
            .expect("the crafted device is a problem");
        assert!(
            problem.to_string().contains("header says the area is"),
            "{problem}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A commit reads the header again: one larger than its area would place
    /// the new copy past it, over the PV's extents. Refused, nothing written.
    #[test]
    fn a_commit_refuses_a_header_larger_than_its_area() {
        let path =
            std::env::temp_dir().join(format!("cairn-commit-crafted-{}", std::process::id()));
        let (label, mdas) = read(VGONE).unwrap().unwrap();
        let metadata = mdas[0]
            .committed
            .as_ref()
            .unwrap()
            .metadata()
            .unwrap()
            .clone();
        let image = with_header(VGONE, |h| h.size *= 4);
        std::fs::write(&path, &image).unwrap();
        let ctx = model::WriteContext {
            generator: "cairn test".into(),
            uname: Default::default(),
            time: 0,
            description: String::new(),
        };
        let mut expected = super::super::commit::Expected::default();
        let e =
            super::super::commit::commit(&metadata, &ctx, &[(path.clone(), label)], &mut expected)
                .unwrap_err()
                .to_string();
        assert!(e.contains("but the PV header gives it"), "{e}");
        assert!(std::fs::read(&path).unwrap() == image, "nothing written");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn dm_names_split_back_into_vg_and_lv() {
        assert_eq!(
            split_dm_name("vgall-cached"),
            Some(("vgall".into(), "cached".into()))
        );
        assert_eq!(
            split_dm_name("DRBDVG2-my--container"),
            Some(("DRBDVG2".into(), "my-container".into()))
        );
        assert_eq!(
            split_dm_name("a--b-c--d"),
            Some(("a-b".into(), "c-d".into()))
        );
        assert_eq!(split_dm_name("nodash"), None);
    }
}
