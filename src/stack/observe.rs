//! What exists now, read from the devices and the kernel: PV labels and VG
//! metadata, active dm devices, DRBD metadata and kernel state, container
//! filesystems and LXC configs. Nothing here changes anything.

use std::collections::BTreeSet;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::file::{Container, Drbd, Stack, Vg};
use super::Result;
use crate::blockdev::SysfsGraph;
use crate::dm::Control;
use crate::drbd::admin::MinorStatus;
use crate::drbd::md::{MdDevice, MdError};
use crate::lvm::inspect::{self, LvKind, VgInfo};
use crate::lvm::names::dm_name;
use crate::meta::scan::{read_pv, read_pv_in};

/// A device the file wants as a PV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PvSeen {
    /// No such device (yet).
    Missing,
    /// No label, no filesystem, not held: free to use.
    Blank,
    /// Something else has it (why).
    InUse(String),
    /// An LVM label without a VG.
    Orphan,
    /// A PV of this VG.
    Member(String),
    /// A PV in some VG (its label is marked used) that keeps no metadata of
    /// its own: which VG, only the metadata on that VG's other PVs says.
    MarkedUsed,
}

/// Why a device cannot be taken, if it cannot: held open exclusively by
/// the kernel (mounted, a dm or md member, DRBD) or carrying any signature
/// libblkid knows (a filesystem, RAID member, partition table, ...).
pub fn in_use(path: &Path) -> Option<String> {
    let excl = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_EXCL)
        .open(path);
    if let Err(e) = excl {
        if e.raw_os_error() == Some(nix::libc::EBUSY) {
            return Some(format!(
                "{} is in use (mounted, or held by device-mapper, md or DRBD)",
                path.display()
            ));
        }
    }
    match crate::signature::probe(path) {
        Ok(found) if found.is_empty() => None,
        Ok(found) => Some(format!(
            "{} holds {}: wipe it first (wipefs -a) if its data is not needed",
            path.display(),
            crate::signature::describe_all(&found)
        )),
        // What cannot be read cannot be shown to be free.
        Err(e) => Some(e.to_string()),
    }
}

/// What a device the file wants as a PV holds (`sysfs`: the graph of the
/// observation reading it, which reads the same device again).
fn pv(path: &Path, sysfs: &mut SysfsGraph) -> PvSeen {
    if !path.exists() {
        return PvSeen::Missing;
    }
    match read_pv_in(path, sysfs) {
        Ok(Some(pv)) => match pv.newest_copy() {
            Some(c) if !c.vg_name.is_empty() => PvSeen::Member(c.vg_name.clone()),
            // No copy of its own, but in a VG: which one only the metadata
            // on the VG's other PVs says ([`vg_with_fresh`] looks).
            _ if pv.marked_used() => PvSeen::MarkedUsed,
            _ => PvSeen::Orphan,
        },
        Ok(None) => match in_use(path) {
            Some(why) => PvSeen::InUse(why),
            None => PvSeen::Blank,
        },
        Err(e) => PvSeen::InUse(format!("{} cannot be read as a PV: {e}", path.display())),
    }
}

/// A VG as it is: what its metadata says and which of its LVs have dm
/// devices. Default: no PVs, no VG, no dm device.
#[derive(Debug, Clone, Default)]
pub struct VgSeen {
    pub pvs: Vec<PvSeen>,
    pub vg: Option<VgInfo>,
    /// dm names that exist (of any VG; looked up by [`VgSeen::active`]).
    pub dm_names: BTreeSet<String>,
    /// dm names of this VG's suspended devices: a command stopped between a
    /// suspend and its resume left them so, and all I/O to them waits.
    pub suspended: BTreeSet<String>,
}

impl VgSeen {
    pub fn active(&self, vg: &str, lv: &str, layer: Option<&str>) -> bool {
        self.dm_names.contains(&dm_name(vg, lv, layer))
    }

    /// The suspended devices of VG `vg` (its LVs and their layers).
    pub fn suspended_in(&self, vg: &str) -> Vec<&str> {
        self.suspended
            .iter()
            .filter(|n| crate::meta::scan::split_dm_name(n).is_some_and(|(v, _)| v == vg))
            .map(String::as_str)
            .collect()
    }

    /// The dm device that carries thin pool `pool`'s thin-pool target: its
    /// `-tpool` layer, or, for a pool activated with no thin LV active, the
    /// pool's own name (lvm2 then loads the target there).
    pub fn pool_device(&self, vg: &str, pool: &str) -> Option<String> {
        inspect::pool_device(&self.dm_names, vg, pool)
    }

    /// Size of LV `name` in bytes.
    pub fn lv_bytes(&self, name: &str) -> Option<u64> {
        self.vg.as_ref()?.lv_bytes(name)
    }

    pub fn kind(&self, name: &str) -> Option<&LvKind> {
        self.vg.as_ref()?.kind(name)
    }

    /// Thin LVs of `pool` (name, activation skip).
    pub fn thin_lvs(&self, pool: &str) -> Vec<(String, bool)> {
        let Some(vg) = &self.vg else { return vec![] };
        vg.thin_lvs(pool)
            .map(|lv| (lv.name.clone(), lv.activation_skip))
            .collect()
    }
}

pub fn dm_names(ctl: &Control) -> Result<BTreeSet<String>> {
    Ok(ctl.devices()?.into_iter().map(|d| d.name).collect())
}

/// The dm devices there are, by name, and which of those of VG `vg` are
/// suspended (one status ioctl for each of the VG's devices, none for the
/// rest of the host: the planner asks only about the VG it plans).
fn dm_names_and_suspended(ctl: &Control, vg: &str) -> Result<(BTreeSet<String>, BTreeSet<String>)> {
    let names = dm_names(ctl)?;
    let mut suspended = BTreeSet::new();
    for name in &names {
        let of_vg = crate::meta::scan::split_dm_name(name).is_some_and(|(v, _)| v == vg);
        if of_vg && ctl.info(name)?.is_some_and(|i| i.suspended) {
            suspended.insert(name.clone());
        }
    }
    Ok((names, suspended))
}

pub fn vg(v: &Vg, ctl: &Control) -> Result<VgSeen> {
    vg_with_fresh(v, ctl, &[])
}

/// A VG of which the PVs at the `fresh` indexes are devices made in this
/// run: blank, whatever an older device left on the same extents.
pub fn vg_with_fresh(v: &Vg, ctl: &Control, fresh: &[usize]) -> Result<VgSeen> {
    // One look at sysfs for both reads of each PV (its label, then the VG's scan).
    let mut sysfs = SysfsGraph::default();
    let pvs: Vec<PvSeen> = v
        .pvs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if fresh.contains(&i) {
                PvSeen::Blank
            } else {
                pv(&p.path, &mut sysfs)
            }
        })
        .collect();
    let present: Vec<PathBuf> = v
        .pvs
        .iter()
        .zip(&pvs)
        .filter(|(_, s)| matches!(s, PvSeen::Member(_) | PvSeen::Orphan | PvSeen::MarkedUsed))
        .map(|(p, _)| p.path.clone())
        .collect();
    let mut pvs = pvs;
    let vg = if pvs.iter().any(|s| *s == PvSeen::Member(v.name.clone())) {
        let (info, members) = VgInfo::read_on(&present, &v.name, &mut sysfs)?;
        // A PV of this VG without metadata of its own is a member, not a
        // device somebody else uses.
        for (p, seen) in v.pvs.iter().zip(pvs.iter_mut()) {
            let listed = present
                .iter()
                .zip(&members)
                .any(|(d, m)| *m && *d == p.path);
            if *seen == PvSeen::MarkedUsed && listed {
                *seen = PvSeen::Member(v.name.clone());
            }
        }
        Some(info)
    } else {
        None
    };
    let (dm_names, suspended) = dm_names_and_suspended(ctl, &v.name)?;
    Ok(VgSeen {
        pvs,
        vg,
        dm_names,
        suspended,
    })
}

/// A VG by name, from the devices `env` scans (for VGs outside the file).
pub fn vg_named(env: &crate::meta::ops::Env, name: &str, ctl: &Control) -> Result<VgSeen> {
    let scan = env.scan(&[])?;
    let vg = VgInfo::find(&scan, name)?;
    let (dm_names, suspended) = dm_names_and_suspended(ctl, name)?;
    Ok(VgSeen {
        pvs: vec![],
        vg,
        dm_names,
        suspended,
    })
}

/// A DRBD resource's metadata on its backing disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MdSeen {
    /// The backing device does not exist.
    NoDisk,
    /// No DRBD metadata, nothing else either.
    Blank,
    /// Something else is on the disk (why).
    Foreign(String),
    /// v08 metadata: whether DRBD last saw this data up to date, and
    /// whether it is as create-md left it (never attached and promoted:
    /// no data of anyone's can be on it).
    Present {
        was_up_to_date: bool,
        just_created: bool,
    },
}

#[derive(Debug, Clone)]
pub struct DrbdSeen {
    /// The resource file as it is now.
    pub config: Option<String>,
    pub md: MdSeen,
    pub kernel: Option<MinorStatus>,
}

pub fn drbd_md(disk: &Path, attached: bool) -> MdSeen {
    if !disk.exists() {
        return MdSeen::NoDisk;
    }
    // Read even while attached: the kernel keeps the current generation
    // as create-md wrote it until the resource is first promoted.
    let sb = MdDevice::open(disk, false).and_then(|m| m.superblock());
    match sb {
        Ok(sb) => MdSeen::Present {
            was_up_to_date: sb.flags.contains(crate::drbd::md::MdFlags::WAS_UP_TO_DATE),
            // A sync target keeps create-md's generation until its resync
            // ends: metadata that was ever connected is not "just created".
            just_created: sb.uuid[0] == crate::drbd::md::UUID_JUST_CREATED
                && !sb.flags.contains(crate::drbd::md::MdFlags::CONNECTED_IND),
        },
        Err(_) if attached => MdSeen::Present {
            was_up_to_date: true,
            just_created: false,
        },
        Err(MdError::NotFound { .. }) => match read_pv(disk) {
            Ok(Some(_)) => MdSeen::Foreign(format!("{} is an LVM PV", disk.display())),
            _ => match in_use(disk) {
                Some(why) => MdSeen::Foreign(why),
                None => MdSeen::Blank,
            },
        },
        Err(e) => MdSeen::Foreign(e.to_string()),
    }
}

pub fn drbd(stack: &Stack, d: &Drbd, kernel: Option<MinorStatus>) -> DrbdSeen {
    let path = super::step::drbd_config_path(stack, &d.name);
    let attached = kernel.as_ref().is_some_and(|k| k.state.disk != "Diskless");
    DrbdSeen {
        config: std::fs::read_to_string(path).ok(),
        md: drbd_md(&d.disk.path, attached),
        kernel,
    }
}

/// A container as it is.
#[derive(Debug, Clone, Default)]
pub struct ContainerSeen {
    /// What a new thin LV's size is rounded up to (extents, and pool
    /// chunks when larger), as thin create rounds it.
    pub round_to: u64,
    pub volume_bytes: Option<u64>,
    pub active: bool,
    /// The thin volume has no block mapped: nothing was ever written to it.
    pub unwritten: bool,
    pub fs: Option<crate::fs::Filesystem>,
    pub config: Option<crate::lxc::ContainerConfig>,
    pub state: Option<crate::lxc::State>,
}

pub fn container(
    stack: &Stack,
    c: &Container,
    vg: &VgSeen,
    ctl: &Control,
) -> Result<ContainerSeen> {
    let volume_bytes = vg.lv_bytes(&c.name);
    let active = vg.active(&c.vg, &c.name, None);
    let unwritten =
        active && inspect::thin_mapped(ctl, &c.vg, &c.name).is_some_and(|(mapped, _)| mapped == 0);
    let device = PathBuf::from(crate::lvm::names::lv_path(&c.vg, &c.name));
    let fs = if active {
        crate::fs::probe(&device)?
    } else {
        None
    };
    let config = crate::lxc::read_config(&stack.lxc_path, &c.name)?;
    let state = match &config {
        Some(_) => Some(crate::lxc::state(&stack.lxc_path, &c.name)?),
        None => None,
    };
    // No VG read (yet): lvm2's default extent.
    let round_to = vg.vg.as_ref().map_or(4 << 20, |v| v.thin_granule(&c.pool));
    Ok(ContainerSeen {
        round_to,
        volume_bytes,
        active,
        unwritten,
        fs,
        config,
        state,
    })
}
