//! Finding PVs and volume groups on devices: labels, metadata areas, the
//! newest consistent copy of each VG's text. Topology-aware: the same PV
//! seen through a stacked device (a dm-cache origin `_corig` under its
//! cached LV, a DRBD backing device under /dev/drbdN, a lower DRBD under a
//! stacked one) is one PV on the top device, not a "duplicate PV".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::device::{Device, DeviceError};
use super::label::{find_label, Label, LabelError, LABEL_SCAN_BYTES};
use super::mda::{self, MdaError, MdaHeader, Slot, MDA_HEADER_SIZE};
use super::model::{self, Metadata, ModelError};

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("{path}: {source}")]
    Label { path: PathBuf, source: LabelError },
    #[error("{path}: {source}")]
    Mda {
        path: PathBuf,
        start: u64,
        source: MdaError,
    },
    #[error("{path}: metadata area at byte {start}: {source}")]
    Text {
        path: PathBuf,
        start: u64,
        source: ModelError,
    },
    #[error("{path} is not an LVM physical volume (no LVM2 label in its first 4 sectors): run `cairn pv create {path}` first")]
    NotAPv { path: PathBuf },
    #[error("volume group {0} not found")]
    NoSuchVg(String),
    #[error(
        "volume group {vg}: the copies with seqno {seqno} differ ({copies}): the metadata is \
         inconsistent; nothing was changed. Inspect with `pvck --dump metadata` and restore with vgcfgrestore"
    )]
    Inconsistent {
        vg: String,
        seqno: u64,
        copies: String,
    },
    #[error("two volume groups are named {name} (ids {a} and {b}): rename one with lvm2 (vgrename by uuid)")]
    NameClash { name: String, a: String, b: String },
    #[error("PV {uuid} is seen on {devices}, and cairn cannot tell which device is on top: name the right one explicitly")]
    Ambiguous { uuid: String, devices: String },
}

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
            | ScanError::NotAPv { path } => Some(path),
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
    pub text: String,
    pub checksum: u32,
    /// Text length including the NUL, as in the raw_locn.
    pub size: u64,
    pub vg_name: String,
    pub vg_id: String,
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

#[derive(Debug, Clone)]
pub struct ScannedMda {
    pub header: MdaHeader,
    /// None when the area holds no copy (a PV not in a VG) or is ignored.
    pub committed: Option<Copy>,
}

/// A PV as found on one device.
#[derive(Debug, Clone)]
pub struct ScannedPv {
    pub path: PathBuf,
    pub devno: Option<(u32, u32)>,
    /// Bytes.
    pub size: u64,
    pub label: Label,
    pub mdas: Vec<ScannedMda>,
}

impl ScannedPv {
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
    let dev = Device::open(path, false)?;
    if dev.size < LABEL_SCAN_BYTES as u64 {
        return Ok(None);
    }
    let head = dev.read_at(0, LABEL_SCAN_BYTES)?;
    let Some(label) = find_label(&head).map_err(|source| ScanError::Label {
        path: path.to_owned(),
        source,
    })?
    else {
        return Ok(None);
    };
    let mut mdas = Vec::new();
    for area in &label.pv_header.metadata_areas {
        mdas.push(read_mda(&dev, area.offset)?);
    }
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

fn read_mda(dev: &Device, start: u64) -> Result<ScannedMda> {
    let mda_err = |source| ScanError::Mda {
        path: dev.path.clone(),
        start,
        source,
    };
    let head = dev.read_at(start, MDA_HEADER_SIZE as usize)?;
    let header = MdaHeader::decode(&head, start).map_err(mda_err)?;
    let locn = *header.slot(Slot::Committed);
    if locn.is_empty() || header.is_ignored() {
        return Ok(ScannedMda {
            header,
            committed: None,
        });
    }
    // Only the copy's bytes are read (one span, or two when it wraps), into
    // a buffer laid out as the area: after many commits the copy sits deep
    // in a large ring, and reading up to it cost a megabyte per scan.
    let (first, second) = mda::locate_text(&header, &locn).map_err(mda_err)?;
    let end = second
        .map(|_| header.size)
        .unwrap_or(first.end())
        .min(header.size);
    let mut area = vec![0u8; end as usize];
    let n = head.len().min(area.len());
    area[..n].copy_from_slice(&head[..n]);
    for span in std::iter::once(first).chain(second) {
        let from = span.offset.min(end) as usize;
        let to = span.end().min(end) as usize;
        if to > from {
            area[from..to].copy_from_slice(&dev.read_at(start + from as u64, to - from)?);
        }
    }
    let text = mda::read_text(&header, &area, &locn).map_err(mda_err)?;
    let text = String::from_utf8(text).map_err(|_| ScanError::Text {
        path: dev.path.clone(),
        start,
        source: ModelError::Invalid {
            path: "metadata".into(),
            message: "text is not UTF-8".into(),
        },
    })?;
    let copy = Copy::new(text, locn.checksum, locn.size, &dev.path, start)?;
    Ok(ScannedMda {
        header,
        committed: Some(copy),
    })
}

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

/// Every block device worth looking at, as lvm2 would name it: /dev/mapper/<name>
/// for device-mapper devices, /dev/<name> otherwise. Empty devices are skipped.
pub fn block_devices() -> Vec<PathBuf> {
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
    pub pvs: Vec<ScannedPv>,
    /// Lower copies of PVs, dropped in favour of the device stacked on them.
    pub hidden: Vec<(PathBuf, PathBuf)>,
    pub problems: Vec<ScanError>,
}

impl Scan {
    /// Scans the given devices (all block devices when empty). A device
    /// that cannot be read or carries damaged metadata is recorded in
    /// `problems`, not fatal: its PV then counts as missing, and a VG with a
    /// missing PV is read but never written.
    pub fn devices(paths: &[PathBuf]) -> Result<Scan> {
        let paths = if paths.is_empty() {
            block_devices()
        } else {
            paths.to_vec()
        };
        let mut found = Vec::new();
        let mut problems = Vec::new();
        for path in &paths {
            match read_pv(path) {
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

    /// Scanned PVs that belong to no VG (orphans).
    pub fn orphans(&self) -> Vec<&ScannedPv> {
        self.pvs
            .iter()
            .filter(|p| p.newest_copy().is_none())
            .collect()
    }
}

/// A volume group as the scan sees it.
#[derive(Debug, Clone)]
pub struct VgView {
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
    pub fn missing_pvs(&self) -> Vec<&str> {
        self.devices
            .iter()
            .zip(&self.metadata.vg.pvs)
            .filter(|(d, _)| d.is_none())
            .map(|(_, p)| p.id.as_str())
            .collect()
    }
}

// ---- topology ----------------------------------------------------------------

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
