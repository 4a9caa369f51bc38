//! PV and VG operations on metadata alone, each one call, lvm2-compatible:
//! pv create/remove, vg create/extend/remove. Every change takes lvm2's
//! locks, checks everything before writing anything, archives the old text,
//! commits the new one and invalidates lvm2's device hints.

use std::path::{Path, PathBuf};

use crate::blockdev::same_device;
use crate::error::{ErrorKind, Refusal};

use super::archive::{Archive, ArchiveError};
use super::commit::{self, CommitError, Expected};
use super::committed::{self, CommitWarning, Committed};
use super::device::{Device, DeviceError};
use super::label::{
    DiskLocn, Label, PvHeader, PvHeaderExtension, PvUuid, PV_EXT_USED, PV_HEADER_EXTENSION_VERSION,
};
use super::lock::{self, LockError, Locks, Mode};
use super::mda::MdaHeader;
use super::model::{
    Metadata, PhysicalVolume, PvStatus, Trailer, VgStatus, VolumeGroup, WriteContext,
};
use super::scan::{self, Scan, ScanError};
use super::text::Section;

/// Where lvm2 puts the first extent by default: 1 MiB.
pub const DEFAULT_PE_START: u64 = 1 << 20;
/// Where the first metadata area starts.
pub const MDA_START: u64 = 4096;
/// lvm2's default extent size: 4 MiB.
pub const DEFAULT_EXTENT_SIZE: u64 = 4 << 20;

/// Why a PV or VG operation failed; nothing was written unless it says so.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// Scanning devices for PVs and VGs failed.
    #[error(transparent)]
    Scan(Box<ScanError>),
    /// Writing the new metadata failed.
    #[error(transparent)]
    Commit(Box<CommitError>),
    /// Opening or I/O on a device failed.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// Taking lvm2's file locks failed.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// Archiving the old metadata (lvm2's /etc/lvm/archive) failed.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// `pv create` on a device that already has an LVM2 label.
    #[error("{path} is already a physical volume{vg}: nothing was changed")]
    AlreadyPv {
        /// The device.
        path: PathBuf,
        /// " in volume group NAME" when its VG is known, else empty.
        vg: String,
    },
    /// `pv create` on a device with another signature (filesystem, RAID, ...), without force.
    #[error(
        "{path} holds {what}: nothing was changed; if its data is no longer needed, wipe it \
         (wipefs -a) or give --force"
    )]
    InUse {
        /// The device.
        path: PathBuf,
        /// The signatures found, described.
        what: String,
    },
    /// A regular file was given where a block device is needed.
    #[error(
        "{path} is not a block device: nothing was changed; attach it to a loop device \
         (losetup -f --show {path}), or give --allow-file to use the file itself"
    )]
    NotABlockDevice {
        /// The device.
        path: PathBuf,
    },
    /// Probing the device for other signatures failed.
    #[error(transparent)]
    Signature(#[from] crate::signature::SignatureError),
    /// The device cannot hold a PV (label, metadata area and one extent).
    #[error("{path} is too small for a physical volume ({size} bytes; at least {min} needed)")]
    TooSmall {
        /// The device.
        path: PathBuf,
        /// The device's size in bytes.
        size: u64,
        /// The least a PV needs, in bytes.
        min: u64,
    },
    /// `pv remove` on a PV that a VG lists.
    #[error("{path} belongs to volume group {vg}: remove it from the VG first")]
    InVg {
        /// The device.
        path: PathBuf,
        /// The VG that lists it.
        vg: String,
    },
    /// The PV header says it is in a VG (PV_EXT_USED), but no scanned VG lists it.
    #[error(
        "{path} is marked as a PV of a volume group (PV_EXT_USED), but no VG found lists it: its \
         VG's metadata is on other devices. Scan them too (name them on the command line), or, \
         if that VG is gone for good, clear the PV with `pvremove -ff`"
    )]
    MarkedUsed {
        /// The device.
        path: PathBuf,
    },
    /// A VG name lvm2 would refuse.
    #[error("invalid name {name:?}: {why}")]
    BadName {
        /// The name given.
        name: String,
        /// Why it is refused.
        why: &'static str,
    },
    /// An LV name lvm2 would refuse.
    #[error("invalid LV name {name:?}: {why}; choose another name")]
    BadLvName {
        /// The name given.
        name: String,
        /// Why it is refused.
        why: String,
    },
    /// `vg create` with the name of an existing VG.
    #[error("volume group {0} already exists")]
    VgExists(String),
    /// `vg remove` of a VG that still has LVs, without force.
    #[error("volume group {vg} still has {count} logical volume(s) ({names}): remove them first, or pass --force")]
    VgHasLvs {
        /// The VG.
        vg: String,
        /// How many LVs it has.
        count: usize,
        /// Their names, comma-separated.
        names: String,
    },
    /// The VG lacks PVs (absent, or flagged MISSING): writing it could lose data.
    #[error(
        "volume group {vg} is missing PV(s) {uuids} (not found, or flagged MISSING because the VG \
         was written while they were away): cairn will not write it until they are back and \
         restored (`cairn vg extend --restoremissing {vg} DEVICE`)"
    )]
    MissingPvs {
        /// The VG.
        vg: String,
        /// The missing PVs' UUIDs, comma-separated.
        uuids: String,
    },
    /// A change to the VG refused, with the refusal's kind: the VG must not
    /// be written by this host (foreign system ID, shared, exported,
    /// read-only: [`ErrorKind::Refused`]), or the change itself cannot be
    /// made (an LV that does not exist, a name taken, too few free extents,
    /// a bad size, an LV kind cairn does not handle, ...).
    #[error("volume group {vg} {refusal}: cairn will not change it")]
    Refused {
        /// The VG.
        vg: String,
        /// Why it is refused, and what kind of refusal it is.
        refusal: Refusal,
    },
    /// An extent size, in bytes, that is not a power of two of at least 4 KiB.
    #[error("the extent size must be a power of two of at least 4 KiB (got {0} bytes)")]
    BadExtentSize(u64),
    /// Reading random bytes for a new UUID failed.
    #[error("cannot read random bytes for a uuid: {0}")]
    Random(std::io::Error),
}

/// Result of a PV or VG operation.
pub type Result<T> = std::result::Result<T, OpError>;

impl OpError {
    /// A refusal of a change to VG `vg`, of this kind.
    pub(crate) fn refused(
        vg: impl Into<String>,
        kind: ErrorKind,
        why: impl Into<String>,
    ) -> OpError {
        OpError::Refused {
            vg: vg.into(),
            refusal: Refusal::new(kind, why),
        }
    }
}

// Boxed: these errors are large, and every operation returns an OpError.
impl From<ScanError> for OpError {
    fn from(e: ScanError) -> Self {
        OpError::Scan(Box::new(e))
    }
}

impl From<CommitError> for OpError {
    fn from(e: CommitError) -> Self {
        OpError::Commit(Box::new(e))
    }
}

/// Where and how operations work: locks, archive, lvm2's run dir, who we are.
#[derive(Debug, Clone)]
pub struct Env {
    /// lvm2's lock directory (/run/lock/lvm), shared with lvm2's commands.
    pub locks: Locks,
    /// Where old metadata is archived (lvm2's /etc/lvm/archive and backup).
    pub archive: Archive,
    /// lvm2's run directory (/run/lvm), whose device hints are invalidated after a change.
    pub run_dir: PathBuf,
    /// lvm2's configuration directory (lvm.conf, lvmlocal.conf).
    pub lvm_dir: PathBuf,
    /// Devices to scan; all block devices when empty.
    pub devices: Vec<PathBuf>,
    /// Whether a scan of all block devices reads LVs too (lvm.conf's
    /// devices/scan_lvs; off by default, as in lvm2 2.03). Devices named
    /// in `devices` are always read.
    pub scan_lvs: bool,
    /// The command line, for the metadata's description line.
    pub command: String,
}

impl Env {
    /// Everything lvm2 keeps on the host (locks, run dir, archive, lvm.conf)
    /// under `dir` instead, devices to be given: for scratch VGs on image
    /// files (tests, image builders) that must not touch the host's lvm2.
    /// Lock waits of 2 s, the last 5 archives kept.
    pub fn under(dir: &Path, command: &str) -> Env {
        Env {
            locks: Locks {
                dir: dir.join("lock"),
                wait: std::time::Duration::from_secs(2),
            },
            archive: Archive {
                archive_dir: dir.join("archive"),
                backup_dir: dir.join("backup"),
                keep: 5,
                retain_days: 0,
            },
            run_dir: dir.join("run"),
            lvm_dir: dir.join("lvm"),
            devices: Vec::new(),
            scan_lvs: false,
            command: command.to_owned(),
        }
    }
}

impl Default for Env {
    fn default() -> Self {
        Env {
            locks: Locks::default(),
            archive: Archive::default(),
            run_dir: PathBuf::from(lock::DEFAULT_RUN_DIR),
            lvm_dir: PathBuf::from("/etc/lvm"),
            devices: Vec::new(),
            scan_lvs: false,
            command: String::new(),
        }
    }
}

impl Env {
    /// Scans the env's devices (all block devices when none are set) plus
    /// `extra` (devices a command names, when the list is restricted).
    pub fn scan(&self, extra: &[PathBuf]) -> Result<Scan> {
        let mut devices = self.devices.clone();
        if !devices.is_empty() {
            for d in extra {
                if !devices.contains(d) {
                    devices.push(d.clone());
                }
            }
        }
        Ok(Scan::devices_or_host(&devices, self.scan_lvs)?)
    }

    /// The header comment and trailer for a copy this env writes: cairn as
    /// generator, this host's uname, now, and the command as description.
    pub fn write_context(&self) -> WriteContext {
        let uname = nix::sys::utsname::uname().ok();
        let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
            uname
                .as_ref()
                .map(|u| f(u).to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        WriteContext {
            generator: format!("cairn {}", env!("CARGO_PKG_VERSION")),
            uname: [
                field(|u| u.sysname()),
                field(|u| u.nodename()),
                field(|u| u.release()),
                field(|u| u.version()),
                field(|u| u.machine()),
            ],
            time: now(),
            description: format!("Write from {}.", self.command),
        }
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A new random uuid, as lvm2's id_create makes them ([0-9a-zA-Z]).
pub fn random_uuid() -> Result<PvUuid> {
    const CHARS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut out = [0u8; 32];
    let mut filled = 0;
    let mut urandom = std::fs::File::open("/dev/urandom").map_err(OpError::Random)?;
    while filled < 32 {
        let mut buf = [0u8; 64];
        std::io::Read::read_exact(&mut urandom, &mut buf).map_err(OpError::Random)?;
        // Rejection sampling keeps the 62 characters equally likely.
        for b in buf {
            if b < 248 && filled < 32 {
                out[filled] = CHARS[(b % 62) as usize];
                filled += 1;
            }
        }
    }
    Ok(PvUuid::from_bytes(out).expect("alphanumeric by construction"))
}

/// lvm2's name rules for VGs (and LVs): [a-zA-Z0-9+_.-], no leading '-',
/// not "." or "..", at most 127 characters (crate::names::lvm).
pub fn check_name(name: &str) -> Result<()> {
    crate::names::lvm(name).map_err(|why| OpError::BadName {
        name: name.to_owned(),
        why,
    })
}

/// An LV name a user may give: a valid name (check_name) that is not one
/// lvm2 keeps for its own LVs (apply_lvname_restrictions).
pub fn check_lv_name(name: &str) -> Result<()> {
    check_name(name)?;
    crate::names::lvm_new_lv(name).map_err(|why| OpError::BadLvName {
        name: name.to_owned(),
        why,
    })
}

/// lvm2's tag rules (validate_tag): not empty, [a-zA-Z0-9_+.-/=!:&#], any length.
pub fn check_tag(tag: &str) -> Result<()> {
    let bad = |why| {
        Err(OpError::BadName {
            name: tag.to_owned(),
            why,
        })
    };
    if tag.is_empty() {
        return bad("a tag cannot be empty");
    }
    if !tag
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+.-/=!:&#".contains(&b))
    {
        return bad("tags allow letters, digits and _ + . - / = ! : & #");
    }
    Ok(())
}

/// How `pv create` treats what it finds on the device.
#[derive(Debug, Clone, Default)]
pub struct PvCreate {
    /// The PV's uuid (drawn at random if none).
    pub uuid: Option<PvUuid>,
    /// Write over the signatures libblkid finds (filesystems, RAID members,
    /// partition tables, ...): each is wiped first, as `pvcreate -y` and
    /// `wipefs -a` do, so that no tool sees both it and the PV.
    pub force: bool,
    /// Accept a regular file. lvm2 only takes block devices (attach a file
    /// to a loop device); image files are for tests and appliance builds.
    pub allow_file: bool,
}

/// `pvcreate`: label, PV header and an empty metadata area, as lvm2 writes
/// them (first extent at 1 MiB, one metadata area from 4 KiB up to it).
/// The device is claimed O_EXCL throughout (refused while mounted or held
/// by dm, md or DRBD); a device that holds a PV or, without `force`, any
/// signature libblkid knows, is refused with nothing written.
pub fn pv_create(env: &Env, path: &Path, opts: &PvCreate) -> Result<Label> {
    let _global = env.locks.global(Mode::Exclusive)?;
    let dev = Device::open_exclusive(path, true)?;
    if !dev.is_block_device() && !opts.allow_file {
        return Err(OpError::NotABlockDevice {
            path: path.to_owned(),
        });
    }
    let min = DEFAULT_PE_START + DEFAULT_EXTENT_SIZE;
    if dev.size < min {
        return Err(OpError::TooSmall {
            path: path.to_owned(),
            size: dev.size,
            min,
        });
    }
    let head = dev.read_at(0, (128 << 10).min(dev.size as usize))?;
    if let Ok(Some(_)) = super::label::find_label(&head) {
        let vg = scan::read_pv(path)?
            .and_then(|p| {
                p.newest_copy()
                    .map(|c| format!(" in volume group {}", c.vg_name))
            })
            .unwrap_or_default();
        return Err(OpError::AlreadyPv {
            path: path.to_owned(),
            vg,
        });
    }
    let found = crate::signature::probe(path)?;
    if !found.is_empty() && !opts.force {
        return Err(OpError::InUse {
            path: path.to_owned(),
            what: crate::signature::describe_all(&found),
        });
    }
    for sig in &found {
        if let Some(offset) = sig.offset {
            dev.write_at(offset, &vec![0u8; sig.magic_len])?;
        }
    }
    let uuid = match opts.uuid {
        Some(u) => u,
        None => random_uuid()?,
    };
    let label = Label {
        sector: super::label::DEFAULT_LABEL_SECTOR,
        pv_header: PvHeader {
            uuid,
            device_size: dev.size,
            data_areas: vec![DiskLocn {
                offset: DEFAULT_PE_START,
                size: 0,
            }],
            metadata_areas: vec![DiskLocn {
                offset: MDA_START,
                size: DEFAULT_PE_START - MDA_START,
            }],
            extension: Some(PvHeaderExtension {
                version: PV_HEADER_EXTENSION_VERSION,
                flags: 0,
                bootloader_areas: vec![],
            }),
        },
    };
    // As lvm2: wipe the label sectors and the start of the metadata area,
    // then the header, then the label last (a crash before it leaves no PV).
    dev.write_at(0, &[0u8; 2048])?;
    dev.write_at(MDA_START, &[0u8; 4096])?;
    dev.write_at(
        MDA_START,
        &MdaHeader::new(MDA_START, DEFAULT_PE_START - MDA_START).encode(),
    )?;
    commit::write_label(path, &label)?;
    let _ = lock::invalidate_hints(&env.run_dir);
    Ok(label)
}

/// The refusal to take the PV at `path` for a new use, or None when it is free.
fn owner_refusal(owner: &scan::PvOwner, path: &Path) -> Option<OpError> {
    match owner {
        scan::PvOwner::Orphan => None,
        scan::PvOwner::Vg(vg) => Some(OpError::InVg {
            path: path.to_owned(),
            vg: vg.clone(),
        }),
        scan::PvOwner::UnknownVg => Some(OpError::MarkedUsed {
            path: path.to_owned(),
        }),
    }
}

/// `pvremove`: wipes the label of a PV that is in no VG.
pub fn pv_remove(env: &Env, path: &Path) -> Result<()> {
    let _global = env.locks.global(Mode::Exclusive)?;
    let pv = scan::read_pv(path)?.ok_or_else(|| ScanError::NotAPv {
        path: path.to_owned(),
    })?;
    // The whole scan: a PV without metadata of its own is known to be in a
    // VG only from the metadata on that VG's other PVs.
    let scan = env.scan(&[path.to_owned()])?;
    let scanned = scan
        .pvs
        .iter()
        .find(|p| p.label.pv_header.uuid == pv.label.pv_header.uuid)
        .unwrap_or(&pv);
    if let Some(refusal) = owner_refusal(&scan.owner(scanned), path) {
        return Err(refusal);
    }
    // A PV that can carry no copy of a VG (no area, or areas ignored) is
    // free only if every other PV could be read: one the scan could not read may
    // hold the VG that lists it (and lvm2 older than 2.02.158 never marks a
    // PV used in its label).
    let keeps_no_copy = scanned.mdas.iter().all(|m| m.header.is_ignored());
    if keeps_no_copy && !scan.problems.is_empty() {
        return Err(OpError::refused(
            "(unknown)",
            ErrorKind::Refused,
            format!(
                "may own {}: it carries no metadata of its own and {} could not be read ({}); \
                 make them readable (or name the devices to scan with --devices) and retry",
                path.display(),
                scan.problems.len(),
                scan.problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ));
    }
    // Claimed: a device something else holds (a dm table, a mount) is not wiped.
    let dev = Device::open_exclusive(path, true)?;
    dev.write_at(pv.label.sector * 512, &[0u8; 512])?;
    let _ = lock::invalidate_hints(&env.run_dir);
    Ok(())
}

fn pv_entry(label: &Label, path: &Path, extent_sectors: u64) -> PhysicalVolume {
    let pe_start_bytes = label
        .pv_header
        .data_areas
        .first()
        .map(|d| d.offset)
        .unwrap_or(DEFAULT_PE_START);
    let dev_sectors = label.pv_header.device_size / 512;
    let pe_start = pe_start_bytes / 512;
    PhysicalVolume {
        id: label.pv_header.uuid.to_dashed(),
        device: Some(path.display().to_string()),
        device_id_type: None,
        device_id: None,
        status: PvStatus::ALLOCATABLE,
        flags: vec![],
        tags: vec![],
        dev_size: Some(dev_sectors),
        pe_start,
        pe_count: dev_sectors.saturating_sub(pe_start) / extent_sectors,
        ba_start: None,
        ba_size: None,
        extra: Section::default(),
    }
}

/// The orphan PVs at `paths`, each checked to be a PV in no VG.
fn orphan_labels(scan: &Scan, paths: &[PathBuf]) -> Result<Vec<(PathBuf, Label)>> {
    let mut out = Vec::new();
    for path in paths {
        let Some(pv) = scan.pvs.iter().find(|p| same_device(&p.path, path)) else {
            // Say why: unreadable or damaged beats "not a PV".
            let damaged = scan
                .problems
                .iter()
                .any(|e| e.path().is_some_and(|p| same_device(p, path)));
            return Err(match scan::read_pv(path) {
                Err(e) if damaged => e.into(),
                _ => ScanError::NotAPv { path: path.clone() }.into(),
            });
        };
        if let Some(refusal) = owner_refusal(&scan.owner(pv), path) {
            return Err(refusal);
        }
        out.push((pv.path.clone(), pv.label.clone()));
    }
    Ok(out)
}

fn mark_used(label: &Label, used: bool) -> Label {
    let mut l = label.clone();
    let ext = l.pv_header.extension.get_or_insert(PvHeaderExtension {
        version: PV_HEADER_EXTENSION_VERSION,
        flags: 0,
        bootloader_areas: vec![],
    });
    if used {
        ext.flags |= PV_EXT_USED;
    } else {
        ext.flags &= !PV_EXT_USED;
    }
    l
}

/// Why this host must not use a VG at all (activate it or change it):
/// lvmlockd-shared, another host's, exported. None when it may.
pub fn foreign_reason(vg: &VolumeGroup) -> Option<String> {
    if let Some(lock_type) = &vg.lock_type {
        return Some(format!(
            "is shared through lvmlockd (lock_type {lock_type})"
        ));
    }
    if let Some(id) = vg.system_id.as_ref().filter(|s| !s.is_empty()) {
        return Some(format!("belongs to another host (system_id {id})"));
    }
    if vg.status.contains(VgStatus::EXPORTED) {
        return Some("is exported (vgimport it first)".to_owned());
    }
    // lvm2 2.03 skips a CLUSTERED VG (clvmd's, gone from lvm2) unless told
    // to convert it, and a SHARED one without its lock manager: neither is
    // this host's alone to change or activate.
    if vg.status.contains(VgStatus::CLUSTERED) {
        return Some(
            "is clustered (the CLUSTERED flag of clvmd, which lvm2 2.03 skips too): if no \
             other host uses it, make it local with lvm2's `vgchange --lock-type none \
             --lockopt force`"
                .to_owned(),
        );
    }
    if vg.status.contains(VgStatus::SHARED) {
        return Some(
            "is shared (its SHARED flag belongs to lvmlockd): change it through lvmlockd, or \
             make it local with lvm2's `vgchange --lock-type none` once no other host uses it"
                .to_owned(),
        );
    }
    None
}

/// Checks a VG cairn is about to change is one it may change.
fn check_writable(view: &scan::VgView) -> Result<()> {
    let vg = &view.metadata.vg;
    // Not this host's to write: a refusal to protect the VG.
    let refuse = |why: String| Err(OpError::refused(&vg.name, ErrorKind::Refused, why));
    if let Some(why) = foreign_reason(vg) {
        return refuse(why);
    }
    if vg.flags.iter().any(|f| f == "WRITE_LOCKED") || !vg.status.contains(VgStatus::WRITE) {
        return refuse("is read-only".to_owned());
    }
    let missing = view.missing_pvs();
    if !missing.is_empty() {
        return Err(OpError::MissingPvs {
            vg: vg.name.clone(),
            uuids: missing.join(", "),
        });
    }
    Ok(())
}

/// The (path, label) of every PV of a VG.
fn vg_devices(scan: &Scan, view: &scan::VgView) -> Vec<(PathBuf, Label)> {
    view.devices
        .iter()
        .flatten()
        .map(|&i| (scan.pvs[i].path.clone(), scan.pvs[i].label.clone()))
        .collect()
}

/// Commits `metadata` to `devices` and writes its backup file: Err when
/// nothing was committed; past the commit point, what failed comes back as
/// warnings.
fn commit_and_backup(
    env: &Env,
    metadata: &Metadata,
    devices: &[(PathBuf, Label)],
    expected: &mut Expected,
) -> Result<(String, Vec<CommitWarning>)> {
    let vg = &metadata.vg;
    let written = commit::commit(metadata, &env.write_context(), devices, expected)?;
    let mut warnings: Vec<CommitWarning> = written
        .lagging
        .into_iter()
        .map(|l| CommitWarning::PvLagging {
            vg: vg.name.clone(),
            seqno: vg.seqno,
            path: l.path,
            source: Box::new(l.source),
        })
        .collect();
    if let Err(source) = env.archive.backup(&vg.name, &written.text) {
        warnings.push(CommitWarning::Backup {
            vg: vg.name.clone(),
            seqno: vg.seqno,
            source,
        });
    }
    Ok((written.text, warnings))
}

/// `vgcreate NAME DEV...`: a new VG on orphan PVs.
pub fn vg_create(env: &Env, name: &str, paths: &[PathBuf], extent_size: u64) -> Result<Committed> {
    check_name(name)?;
    if extent_size < 4096 || !extent_size.is_power_of_two() {
        return Err(OpError::BadExtentSize(extent_size));
    }
    let _global = env.locks.global(Mode::Exclusive)?;
    let _vg_lock = env.locks.vg(name, Mode::Exclusive)?;
    let scan = env.scan(paths)?;
    if scan.vgs()?.contains_key(name) {
        return Err(OpError::VgExists(name.to_owned()));
    }
    let members = orphan_labels(&scan, paths)?;
    let extent_sectors = extent_size / 512;
    let vg = VolumeGroup {
        name: name.to_owned(),
        id: random_uuid()?.to_dashed(),
        seqno: 1,
        format: Some("lvm2".into()),
        status: VgStatus::RESIZEABLE | VgStatus::READ | VgStatus::WRITE,
        flags: vec![],
        tags: vec![],
        system_id: None,
        lock_type: None,
        lock_args: None,
        extent_size: extent_sectors,
        max_lv: 0,
        max_pv: 0,
        allocation_policy: None,
        profile: None,
        metadata_copies: 0,
        pvs: members
            .iter()
            .map(|(p, l)| pv_entry(l, p, extent_sectors))
            .collect(),
        lvs: vec![],
        extra: Section::default(),
    };
    let metadata = Metadata {
        vg,
        trailer: Trailer::default(),
    };
    let used: Vec<(PathBuf, Label)> = members
        .iter()
        .map(|(p, l)| (p.clone(), mark_used(l, true)))
        .collect();
    for (path, label) in &used {
        commit::write_label(path, label)?;
    }
    let (_, warnings) = commit_and_backup(env, &metadata, &used, &mut Expected::from_scan(&scan))?;
    let _ = lock::invalidate_hints(&env.run_dir);
    Ok(Committed { metadata, warnings })
}

/// Reads a VG for a change: locked, checked, archived. The caller commits.
pub struct Change {
    /// The scan the VG was read from.
    pub scan: Scan,
    /// The VG as read, before the change.
    pub view: scan::VgView,
    /// The VG to change, its seqno already raised by one: what the next commit writes.
    pub metadata: Metadata,
    /// Whether the text of before the change is archived already: a change
    /// of several commits archives once, the state before the command (the
    /// one to restore), as lvm2 archives once per command.
    archived: bool,
    /// What the metadata areas should still hold when the next commit
    /// writes (the scan's reading, then this change's own commits).
    expected: Expected,
    _lock: lock::Held,
}

/// Locks VG `name` for writing (lvm2's `V_name` lock), scans (with
/// `extra_devices`), checks that this host may write it, and returns it to change.
pub fn begin_change(env: &Env, name: &str, extra_devices: &[PathBuf]) -> Result<Change> {
    begin_checked(env, name, extra_devices, check_writable)
}

/// [`begin_change`] with its own check of the VG read.
fn begin_checked(
    env: &Env,
    name: &str,
    extra_devices: &[PathBuf],
    check: impl FnOnce(&scan::VgView) -> Result<()>,
) -> Result<Change> {
    let lock = env.locks.vg(name, Mode::Exclusive)?;
    let scan = env.scan(extra_devices)?;
    let view = scan.vg(name)?;
    check(&view)?;
    let mut metadata = view.metadata.clone();
    metadata.vg.seqno += 1;
    Ok(Change {
        expected: Expected::from_scan(&scan),
        scan,
        view,
        metadata,
        archived: false,
        _lock: lock,
    })
}

impl Change {
    /// Archives the old text, commits the new metadata to the VG's PVs plus
    /// `more` (PVs joining it), records the backup.
    pub fn commit(mut self, env: &Env, more: &[(PathBuf, Label)]) -> Result<Committed> {
        if !self.archived {
            env.archive
                .archive(&self.metadata.vg.name, &self.view.text)?;
        }
        let mut devices = vg_devices(&self.scan, &self.view);
        devices.extend(more.iter().cloned());
        let (_, warnings) = commit_and_backup(env, &self.metadata, &devices, &mut self.expected)?;
        Ok(Committed {
            metadata: self.metadata,
            warnings,
        })
    }
}

impl Change {
    /// Commits the metadata as it stands and keeps the lock, for a change
    /// made in several commits (a thin LV: the queued pool message, then its
    /// removal once the kernel has it). The next commit gets the next seqno.
    /// `Ok` once committed: what failed after the commit point is deferred
    /// as a warning ([`crate::warnings`]) and the caller goes on
    /// with its kernel steps.
    pub fn commit_and_continue(&mut self, env: &Env) -> Result<()> {
        if !self.archived {
            env.archive
                .archive(&self.metadata.vg.name, &self.view.text)?;
            self.archived = true;
        }
        let devices = vg_devices(&self.scan, &self.view);
        let (text, warnings) =
            commit_and_backup(env, &self.metadata, &devices, &mut self.expected)?;
        committed::defer(warnings);
        self.view.text = text;
        self.view.metadata = self.metadata.clone();
        self.metadata.vg.seqno += 1;
        Ok(())
    }

    /// The metadata as last committed (what the kernel should agree with).
    pub fn committed(&self) -> &Metadata {
        &self.view.metadata
    }

    /// The device path of each PV of the VG (None when missing).
    pub fn pv_devices(&self) -> Vec<Option<PathBuf>> {
        self.view
            .devices
            .iter()
            .map(|d| d.map(|i| self.scan.pvs[i].path.clone()))
            .collect()
    }
}

/// `vgextend VG DEV...`: adds orphan PVs.
pub fn vg_extend(env: &Env, name: &str, paths: &[PathBuf]) -> Result<Committed> {
    let _global = env.locks.global(Mode::Exclusive)?;
    let mut change = begin_change(env, name, paths)?;
    let members = orphan_labels(&change.scan, paths)?;
    let extent = change.metadata.vg.extent_size;
    for (path, label) in &members {
        let entry = pv_entry(label, path, extent);
        change.metadata.vg.pvs.push(entry);
    }
    let used: Vec<(PathBuf, Label)> = members
        .iter()
        .map(|(p, l)| (p.clone(), mark_used(l, true)))
        .collect();
    for (path, label) in &used {
        commit::write_label(path, label)?;
    }
    let md = change.commit(env, &used)?;
    let _ = lock::invalidate_hints(&env.run_dir);
    Ok(md)
}

/// `vgextend --restoremissing VG DEV...`: PVs of the VG that lvm2 flagged
/// MISSING (it wrote the VG while they were away) and that are back are
/// taken in again: the flag goes, and the next commit brings their stale
/// metadata copies up to date. Refused for devices that are not such a PV.
pub fn vg_restore_missing(env: &Env, name: &str, paths: &[PathBuf]) -> Result<Committed> {
    // Not check_writable: the flag this clears is what it refuses. Every
    // other reason to leave the VG alone still holds.
    let mut change = begin_checked(env, name, paths, |view| {
        match foreign_reason(&view.metadata.vg) {
            Some(why) => Err(OpError::refused(name, ErrorKind::Refused, why)),
            None => Ok(()),
        }
    })?;
    for path in paths {
        let found = change
            .scan
            .pvs
            .iter()
            .position(|p| same_device(&p.path, path));
        let index = found.and_then(|i| change.view.devices.iter().position(|d| *d == Some(i)));
        let Some(index) = index else {
            return Err(OpError::refused(
                name,
                ErrorKind::NotFound,
                format!("has no PV on {}: nothing to restore", path.display()),
            ));
        };
        let pv = &mut change.metadata.vg.pvs[index];
        if !pv.is_marked_missing() {
            return Err(OpError::refused(
                name,
                ErrorKind::InvalidInput,
                format!(
                    "{} is not flagged MISSING: nothing to restore",
                    path.display()
                ),
            ));
        }
        pv.flags.retain(|f| f != "MISSING");
    }
    let still = change
        .view
        .devices
        .iter()
        .zip(&change.metadata.vg.pvs)
        .filter(|(d, p)| d.is_none() || p.is_marked_missing())
        .map(|(_, p)| p.id.clone())
        .collect::<Vec<_>>();
    if !still.is_empty() {
        return Err(OpError::MissingPvs {
            vg: name.to_owned(),
            uuids: still.join(", "),
        });
    }
    change.commit(env, &[])
}

/// `vgremove VG`: its PVs become orphans. Refuses while LVs exist unless `force`
/// (the LVs must be inactive; the caller checks the kernel).
pub fn vg_remove(env: &Env, name: &str, force: bool) -> Result<()> {
    vg_remove_checked(env, name, force, |_| Ok(()))
}

/// [`vg_remove`], with `check` run under the VG's exclusive lock just
/// before anything is written: the caller's last word on whether the VG may
/// go (the kernel layer refuses there while one of its LVs is active, and
/// no other command can activate one meanwhile).
pub fn vg_remove_checked(
    env: &Env,
    name: &str,
    force: bool,
    check: impl FnOnce(&VolumeGroup) -> std::result::Result<(), Refusal>,
) -> Result<()> {
    let _global = env.locks.global(Mode::Exclusive)?;
    let change = begin_change(env, name, &[])?;
    check(&change.metadata.vg).map_err(|refusal| OpError::Refused {
        vg: name.to_owned(),
        refusal,
    })?;
    let vg = &change.metadata.vg;
    if !vg.lvs.is_empty() && !force {
        let names: Vec<&str> = vg
            .lvs
            .iter()
            .filter(|lv| vg.lv_is_visible(lv))
            .map(|lv| lv.name.as_str())
            .collect();
        return Err(OpError::VgHasLvs {
            vg: name.to_owned(),
            count: names.len(),
            names: names.join(", "),
        });
    }
    // Metadata someone committed since the scan (lvm2 without cairn's lock)
    // is not wiped on the strength of the older text.
    let devices = vg_devices(&change.scan, &change.view);
    commit::check_devices_unmoved(name, &devices, &change.expected)?;
    env.archive.archive(name, &change.view.text)?;
    for (path, label) in devices {
        commit::clear_areas(&path, &label)?;
        commit::write_label(&path, &mark_used(&label, false))?;
    }
    env.archive.remove_backup(name)?;
    let _ = lock::invalidate_hints(&env.run_dir);
    Ok(())
}

/// Adds a linear LV of `extents` extents to the model (metadata only: no
/// device is made, nothing is written; issue-4 activation builds on it).
/// Extents come from [`super::alloc::allocate`], only on `on_pvs` if given.
pub fn add_linear_lv(
    vg: &mut VolumeGroup,
    name: &str,
    extents: u64,
    on_pvs: Option<&[usize]>,
) -> Result<()> {
    check_lv_name(name)?;
    if vg.lv(name).is_some() {
        return Err(OpError::refused(
            &vg.name,
            ErrorKind::AlreadyExists,
            format!("already has an LV named {name}"),
        ));
    }
    let runs = super::alloc::allocate(vg, extents, on_pvs, None).map_err(|e| OpError::Refused {
        vg: vg.name.clone(),
        refusal: e.into(),
    })?;
    let segments = super::alloc::linear_segments(&runs);
    vg.lvs.push(new_lv(name, segments)?);
    Ok(())
}

/// A new visible LV as lvm2 records one: a fresh uuid, the creation time
/// and this host's name.
pub fn new_lv(
    name: &str,
    segments: Vec<super::model::Segment>,
) -> Result<super::model::LogicalVolume> {
    let host = nix::sys::utsname::uname()
        .map(|u| u.nodename().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut lv = super::model::LogicalVolume::new(name, random_uuid()?.to_dashed(), segments);
    (lv.creation_time, lv.creation_host) = (Some(now()), Some(host));
    Ok(lv)
}
