//! The façade: one [`Host`] value, built from explicit [`HostOptions`],
//! through which a program does everything the `cairn` command does.
//!
//! The library reads no environment variable and prints nothing: what the
//! command line takes from its environment (`CAIRN_STATE_DIR`,
//! `CAIRN_UDEV_TIMEOUT`, the command line itself) it puts into
//! [`HostOptions`]; what it prints it renders from the typed values the
//! operations return ([`Outcome`], [`StackReport`], [`StackStatus`], report
//! rows).
//!
//! - [`Host`]: the host's devices, locks, archive and state, and the
//!   operations on physical volumes, volume groups and device-mapper.
//! - [`Host::lv`], [`Host::pool`]: one logical volume, one thin pool.
//! - [`Host::stack`]: the stack of one stack file: plan, apply, up, down,
//!   status, containers.
//! - [`Host::drbd`]: one DRBD resource of drbd-utils' configuration.

mod drbd;
pub mod error;
mod lvm;
mod outcome;
mod stack;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use drbd::{DrbdResource, MdDump};
pub use lvm::{
    parse_bytes, parse_lv_size, split_lv_name, Lv, LvSize, Pool, Report, SnapshotKind, Vg,
};
pub use outcome::{Outcome, Progress};
pub use stack::{NewContainer, StackHandle, DEFAULT_STACK_FILE};

// Types the façade's operations take or give, from the layers that own them.
pub use crate::drbd::admin::{Event as DrbdEvent, MinorStatus, Resize as DrbdResize};
pub use crate::drbd::md::Applied as AlApplied;
pub use crate::lvm::action::Action;
pub use crate::lvm::cache::NewCachePool;
pub use crate::lvm::pool::NewPool;
pub use crate::meta::ops::PvCreate;
pub use crate::stack::file::SizeSpec;
pub use crate::stack::journal::Interrupted;
pub use crate::stack::run::{ContainerRow, Report as StackReport};
pub use crate::stack::snapshot::{
    default_name as default_snapshot_name, ContainerSnapshot,
    TakeRequest as ContainerSnapshotRequest, Taken as ContainerSnapshotsTaken,
    DEFAULT_FREEZE_DEADLINE,
};
pub use crate::stack::status::{
    CacheInfo, DrbdStatus, Layer as StackLayer, LvStatus, PoolStatus, Status as StackStatus,
    VgStatus, VolumeStatus,
};
pub use crate::stack::step::Step as StackStep;

use crate::lvm::engine::Dev;
use crate::meta::archive::Archive;
use crate::meta::lock::Locks;
use crate::meta::ops::Env;
use error::{Error, Result};

/// Where cairn finds and keeps things on this host, and how long it waits.
/// [`HostOptions::default`] is what the `cairn` command uses when given
/// nothing: lvm2's and drbd-utils' standard paths, `/var/lib/cairn`, 30 s waits.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Devices to look for PVs on; every block device when empty (as lvm2
    /// without a devices file).
    pub scan_devices: Vec<PathBuf>,
    /// Whether a scan of every block device reads LVs too (lvm.conf's
    /// devices/scan_lvs); `None` reads it from lvm.conf under `lvm_dir`.
    pub scan_lvs: Option<bool>,
    /// lvm2's configuration directory: lvm.conf, and the archive/ and
    /// backup/ copies of each VG's metadata.
    pub lvm_dir: PathBuf,
    /// lvm2's lock directory (VG locks shared with lvm2).
    pub lock_dir: PathBuf,
    /// lvm2's run directory (its hints file, which cairn invalidates).
    pub run_dir: PathBuf,
    /// How long to wait for a VG lock another process holds.
    pub lock_wait: Duration,
    /// Copies of old metadata kept per VG at least (lvm2's retain_min; 0: none).
    pub archive_keep: usize,
    /// Copies younger than this many days are kept too (lvm2's retain_days).
    pub archive_days: u64,
    /// Where the stack's journals and locks live; must be absolute, so that
    /// two runs started from different directories share one lock.
    pub state_dir: PathBuf,
    /// How long a device-mapper change waits for udev to make its nodes
    /// (only when udev runs); more than 0, at most an hour.
    pub udev_wait: Duration,
    /// Where device nodes and /dev/VG/LV links are made (`/dev`). Another
    /// directory is a test hook for the engine's nodes and links: tables,
    /// wipes of new LVs and the stack still name `/dev/mapper/..` and
    /// `/dev/VG/LV`, so without udev an LV made elsewhere fails at its
    /// wipe (and is undone).
    pub dev_dir: PathBuf,
    /// drbd-utils' configuration file (`drbd.conf`).
    pub drbd_config: PathBuf,
    /// Who is changing things, written into each metadata commit's
    /// description and each journal (the command line, for the CLI).
    pub command: String,
}

impl Default for HostOptions {
    fn default() -> HostOptions {
        HostOptions {
            scan_devices: Vec::new(),
            scan_lvs: None,
            lvm_dir: PathBuf::from(crate::lvm::config::LVM_CONF_DIR),
            lock_dir: PathBuf::from(crate::meta::lock::DEFAULT_LOCK_DIR),
            run_dir: PathBuf::from(crate::meta::lock::DEFAULT_RUN_DIR),
            lock_wait: Locks::default().wait,
            archive_keep: crate::meta::archive::DEFAULT_KEEP,
            archive_days: crate::meta::archive::DEFAULT_RETAIN_DAYS,
            state_dir: PathBuf::from(crate::stack::journal::DEFAULT_STATE_DIR),
            udev_wait: crate::dm::udev::DEFAULT_TIMEOUT,
            dev_dir: PathBuf::from("/dev"),
            drbd_config: PathBuf::from(crate::drbd::config::DEFAULT_CONF),
            command: String::from("cairn"),
        }
    }
}

/// Warnings the layers recorded as they went (udev waits released, PVs
/// that lagged a commit) and that no returned value carried: the caller
/// shows them once the operation is over.
pub fn take_warnings() -> Vec<String> {
    crate::warnings::take()
}

/// A udev wait given as text in seconds (such as an environment
/// variable's value; None: unset) as a duration; Err says why it cannot be
/// one and that the default is used.
pub fn parse_udev_wait(text: Option<&str>) -> std::result::Result<Duration, String> {
    crate::dm::udev::parse_timeout(text)
}

/// The longest udev wait [`HostOptions::udev_wait`] may ask for.
pub const MAX_UDEV_WAIT: Duration = crate::dm::udev::MAX_TIMEOUT;

/// This host, as cairn sees and changes it. Cheap to clone; holds no open
/// file: each operation opens what it needs and takes lvm2's locks.
///
/// ```no_run
/// use cairn::{Host, HostOptions};
///
/// let host = Host::new(HostOptions::default())?;
/// for row in host.vgs(&[])?.rows {
///     println!("{:?} {:?}", row.get("vg_name"), row.get("vg_size"));
/// }
/// # Ok::<(), cairn::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Host {
    options: HostOptions,
    env: Env,
    dev: Dev,
}

impl Host {
    /// A host with these options, checked. No device is opened; lvm.conf's
    /// `scan_lvs` is read once here when `options.scan_lvs` is `None`.
    pub fn new(options: HostOptions) -> Result<Host> {
        if !options.state_dir.is_absolute() {
            return Err(Error::invalid(format!(
                "the state directory {:?} is not an absolute path: give one (default {})",
                options.state_dir,
                crate::stack::journal::DEFAULT_STATE_DIR
            )));
        }
        if options.udev_wait.is_zero() || options.udev_wait > MAX_UDEV_WAIT {
            return Err(Error::invalid(format!(
                "a udev wait of {:?}: give more than 0 and at most {} s (zero would race udev \
                 for every node)",
                options.udev_wait,
                MAX_UDEV_WAIT.as_secs()
            )));
        }
        let scan_lvs = options
            .scan_lvs
            .unwrap_or_else(|| crate::lvm::config::LvmConfig::scan_lvs(&options.lvm_dir));
        let env = Env {
            locks: Locks {
                dir: options.lock_dir.clone(),
                wait: options.lock_wait,
            },
            archive: Archive {
                archive_dir: options.lvm_dir.join("archive"),
                backup_dir: options.lvm_dir.join("backup"),
                keep: options.archive_keep,
                retain_days: options.archive_days,
            },
            run_dir: options.run_dir.clone(),
            lvm_dir: options.lvm_dir.clone(),
            devices: options.scan_devices.clone(),
            scan_lvs,
            command: options.command.clone(),
        };
        let dev = Dev {
            root: options.dev_dir.clone(),
            udev_wait: options.udev_wait,
        };
        Ok(Host { options, env, dev })
    }

    /// The options this host was made with.
    pub fn options(&self) -> &HostOptions {
        &self.options
    }

    /// The metadata layer's view of the options (locks, archive, scan).
    pub(crate) fn env(&self) -> &Env {
        &self.env
    }

    /// Where device nodes go and how long to wait for udev.
    pub(crate) fn dev(&self) -> &Dev {
        &self.dev
    }

    /// The state directory (journals, locks of stack runs).
    pub(crate) fn state_dir(&self) -> &Path {
        &self.options.state_dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn a_relative_state_dir_is_refused() {
        // Two runs started from different directories would take two
        // different locks and run together.
        for bad in ["", "state", "./state", "../var/lib/cairn"] {
            let e = Host::new(HostOptions {
                state_dir: PathBuf::from(bad),
                scan_lvs: Some(false),
                ..HostOptions::default()
            })
            .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(
                e.to_string().contains("not an absolute path"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn udev_waits_out_of_range_are_refused() {
        for wait in [Duration::ZERO, MAX_UDEV_WAIT + Duration::from_secs(1)] {
            let e = Host::new(HostOptions {
                udev_wait: wait,
                scan_lvs: Some(false),
                ..HostOptions::default()
            })
            .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{wait:?}");
        }
    }

    #[test]
    fn the_options_reach_the_layers() {
        let host = Host::new(HostOptions {
            scan_devices: vec![PathBuf::from("/dev/loop7")],
            scan_lvs: Some(true),
            lvm_dir: PathBuf::from("/tmp/lvm"),
            archive_keep: 3,
            dev_dir: PathBuf::from("/tmp/dev"),
            udev_wait: Duration::from_secs(2),
            command: "test".into(),
            ..HostOptions::default()
        })
        .unwrap();
        assert_eq!(host.env().devices, [PathBuf::from("/dev/loop7")]);
        assert!(host.env().scan_lvs);
        assert_eq!(host.env().archive.keep, 3);
        assert_eq!(
            host.env().archive.archive_dir,
            Path::new("/tmp/lvm/archive")
        );
        assert_eq!(host.env().command, "test");
        assert_eq!(host.dev().root, Path::new("/tmp/dev"));
        assert_eq!(host.dev().udev_wait, Duration::from_secs(2));
    }
}
