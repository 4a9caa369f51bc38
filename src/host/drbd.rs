//! The façade's DRBD: drbdadm's verbs on one resource of drbd-utils'
//! configuration, the kernel's status and events, and a device's metadata.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::{Error, Result};
use super::Host;
use crate::drbd::adm::{self, Setup, Target};
use crate::drbd::admin::{Drbd, Event, MinorStatus, Resize};
use crate::drbd::kernel::DrbdKernel;
use crate::drbd::md::{self, Applied, MdDevice, MdFlags};

/// One DRBD resource (or its stacked upper half) of drbd-utils' configuration.
#[derive(Debug, Clone)]
pub struct DrbdResource<'h> {
    host: &'h Host,
    name: String,
    stacked: bool,
}

/// A device's DRBD 8.4 metadata, as `cairn drbd dump-md` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MdDump {
    /// The device read.
    pub device: PathBuf,
    /// Whether the activity log was applied when it was last written.
    pub clean: bool,
    /// The superblock's magic (hex).
    pub magic: String,
    /// The last agreed size, in sectors.
    pub la_size_sect: u64,
    /// Sectors usable for data under this metadata.
    pub usable_sectors: u64,
    /// The generation uuids (hex).
    pub uuids: Vec<String>,
    /// The device uuid (hex).
    pub device_uuid: String,
    /// The superblock's flags, lower case.
    pub flags: Vec<String>,
    /// The metadata's size in sectors.
    pub md_size_sect: u32,
    /// Where the activity log starts, in sectors from the superblock.
    pub al_offset: i32,
    /// Where the bitmap starts, in sectors from the superblock.
    pub bm_offset: i32,
    /// Activity log extents.
    pub al_extents: u32,
    /// Activity log stripes.
    pub al_stripes: u32,
    /// Activity log stripe size, in 4 KiB blocks.
    pub al_stripe_size_4k: u32,
    /// The peer's largest request size last agreed.
    pub la_peer_max_bio_size: u32,
    /// Update transactions in the activity log.
    pub al_transactions: usize,
    /// Extents the activity log holds hot.
    pub hot_extents: Vec<u32>,
    /// Bitmap bits set (4 KiB blocks out of sync).
    pub bits_set: u64,
    /// The same in bytes.
    pub out_of_sync_bytes: u64,
    /// The Primary flag was set when last written.
    #[serde(skip)]
    pub was_primary: bool,
}

impl Host {
    /// A resource of drbd-utils' configuration (`stacked`: its stacked half, as drbdadm -S).
    pub fn drbd(&self, name: &str, stacked: bool) -> DrbdResource<'_> {
        DrbdResource {
            host: self,
            name: name.to_owned(),
            stacked,
        }
    }

    fn drbd_setup(&self) -> Setup {
        Setup {
            config: self.options().drbd_config.clone(),
            ..Setup::default()
        }
    }

    /// Every minor's state, or only the resources named (each must be up).
    pub fn drbd_status(&self, resources: &[String]) -> Result<Vec<MinorStatus>> {
        let mut all = Drbd::open()?.status(None)?;
        if !resources.is_empty() {
            all.retain(|s| resources.contains(&s.resource));
            if let Some(r) = resources
                .iter()
                .find(|r| !all.iter().any(|s| &s.resource == *r))
            {
                return Err(Error::Input {
                    kind: crate::error::ErrorKind::NotFound,
                    message: format!("resource {r} is not up"),
                });
            }
        }
        Ok(all)
    }

    /// DRBD's events (state changes, sync progress, helper calls) as they come.
    pub fn drbd_events(&self) -> Result<impl Iterator<Item = Result<Event>>> {
        let mut events = Drbd::open()?.events()?;
        Ok(std::iter::from_fn(move || loop {
            match events.next_event() {
                Err(e) => return Some(Err(Error::from(crate::drbd::admin::DrbdError::from(e)))),
                Ok(m) => {
                    if let Some(e) = Event::from_message(&m) {
                        return Some(Ok(e));
                    }
                }
            }
        }))
    }

    /// A device's DRBD metadata (superblock, activity log, bitmap use).
    pub fn drbd_dump_md(&self, device: &Path) -> Result<MdDump> {
        let dev = MdDevice::open(device, false)?;
        let sb = dev.superblock()?;
        let layout = sb.layout(dev.layout.device_sectors);
        let log = dev.transactions(&layout)?;
        let bits = dev.bits_set(&layout)?;
        Ok(MdDump {
            device: device.to_owned(),
            clean: sb.is_clean(),
            magic: format!("{:#010x}", sb.magic),
            la_size_sect: sb.la_size_sect,
            usable_sectors: layout.usable_sectors(),
            uuids: sb.uuid.iter().map(|u| format!("{u:016X}")).collect(),
            device_uuid: format!("{:016X}", sb.device_uuid),
            flags: sb
                .flags
                .iter_names()
                .map(|(n, _)| n.to_lowercase())
                .collect(),
            md_size_sect: sb.md_size_sect,
            al_offset: sb.al_offset,
            bm_offset: sb.bm_offset,
            al_extents: sb.al_nr_extents,
            al_stripes: sb.al_stripes,
            al_stripe_size_4k: sb.al_stripe_size_4k,
            la_peer_max_bio_size: sb.la_peer_max_bio_size,
            al_transactions: log
                .iter()
                .filter(|t| t.transaction_type == md::AL_TR_UPDATE)
                .count(),
            hot_extents: md::hot_extents(&log),
            bits_set: bits,
            out_of_sync_bytes: bits * 4096,
            was_primary: sb.flags.contains(MdFlags::PRIMARY_IND),
        })
    }
}

impl DrbdResource<'_> {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The resource resolved for this host: minor, disk, peer.
    pub fn target(&self) -> Result<Target> {
        Ok(self.host.drbd_setup().target(&self.name, self.stacked)?)
    }

    /// Writes fresh metadata on its disk (as drbdadm create-md); `force`
    /// over an existing filesystem or metadata. Returns the disk.
    pub fn create_md(&self, force: bool) -> Result<String> {
        let t = self.target()?;
        // Without the module loaded nothing can be attached: no check needed.
        let mut drbd = Drbd::open().ok();
        adm::create_md(drbd.as_mut().map(|d| d as &mut dyn DrbdKernel), &t, force)?;
        Ok(t.disk)
    }

    /// Replays the activity log into the bitmap (as drbdadm apply-al).
    /// Returns the disk and what was applied.
    pub fn apply_al(&self) -> Result<(String, Applied)> {
        let t = self.target()?;
        let mut drbd = Drbd::open().ok();
        let applied = adm::apply_al(drbd.as_mut().map(|d| d as &mut dyn DrbdKernel), &t)?;
        Ok((t.disk, applied))
    }

    /// Brings it up (resource, minor, attach, connect); returns what was
    /// done, empty when it was up already.
    pub fn up(&self) -> Result<Vec<String>> {
        let t = self.target()?;
        Ok(adm::up(&mut Drbd::open()?, &t)?)
    }

    /// Takes it down; false when it was not up.
    pub fn down(&self) -> Result<bool> {
        let t = self.target()?;
        Ok(adm::down(&mut Drbd::open()?, &t)?)
    }

    /// Makes it Primary; `force` even without an UpToDate peer or disk.
    pub fn primary(&self, force: bool) -> Result<()> {
        let t = self.target()?;
        Ok(Drbd::open()?.primary(t.minor, force)?)
    }

    /// Makes it Secondary.
    pub fn secondary(&self) -> Result<()> {
        let t = self.target()?;
        Ok(Drbd::open()?.secondary(t.minor)?)
    }

    /// Resizes it to its disk (or `r.size_sectors`); returns (before, after) in sectors.
    pub fn resize(&self, r: &Resize) -> Result<(u64, u64)> {
        let t = self.target()?;
        Ok(adm::resize(&mut Drbd::open()?, &t, r)?)
    }
}
