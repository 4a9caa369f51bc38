//! Device-mapper through its ioctls (crate `devicemapper`), never dmsetup.

pub mod kernel;
pub(crate) mod nodes;
pub(crate) mod scratch_node;
pub mod sim;
pub mod status;
pub mod table;
pub(crate) mod udev;

pub use kernel::{DeviceMapper, Kernel};

use devicemapper::DM;
use serde::Serialize;

/// The device-mapper control node.
pub const CONTROL_PATH: &str = "/dev/mapper/control";

/// A device-mapper failure, with what cairn was doing when it happened.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// /dev/mapper/control is missing or cannot be opened (no dm-mod, or
    /// not root).
    #[error(
        "device-mapper is not available ({0}): load the dm-mod kernel module (`modprobe dm-mod`) \
         and run as root"
    )]
    Unavailable(String),
    /// An ioctl that names no device failed (version, list devices, list
    /// targets, device status).
    #[error("device-mapper {operation} failed: {source}")]
    Ioctl {
        /// What cairn asked the kernel ("list devices", ...).
        operation: &'static str,
        /// The devicemapper crate's error.
        #[source]
        source: devicemapper::DmError,
    },
    // The crate's own message carries both ioctl headers in Debug form:
    // the errno says it all, so only errors without one show the message.
    /// An ioctl on one device failed (create, load, suspend, resume,
    /// remove, message, table, status).
    #[error("device-mapper {operation} of {device} failed: {}{}", cause(*errno, error), hint(*errno))]
    Device {
        /// What cairn asked the kernel ("table load", "resume", ...).
        operation: &'static str,
        /// The device-mapper name of the device.
        device: String,
        /// The errno the kernel returned, when the failure was an ioctl's.
        errno: Option<i32>,
        /// Not a `source`: its text repeats both ioctl headers in Debug form.
        error: devicemapper::DmError,
    },
    /// What the simulated kernel ([`sim::SimDm`]) answered: the errno the
    /// real ioctl returns in the same case.
    #[error("device-mapper {operation} of {device} failed: {}{}", describe(*errno), hint(Some(*errno)))]
    Simulated {
        /// What cairn asked the simulated kernel ("table load", ...).
        operation: &'static str,
        /// The device-mapper name of the device.
        device: String,
        /// The errno the real kernel returns in the same case.
        errno: i32,
    },
    /// A name or uuid the ioctl cannot carry: empty, not ASCII, or longer
    /// than 127 bytes (its field holds 128 with the NUL).
    #[error("{0:?} is not a valid device-mapper name or uuid")]
    BadName(String),
    /// A table the kernel printed that [`table::Target::parse`] cannot
    /// read.
    #[error("the kernel's table of {device} does not parse: {message}")]
    Table {
        /// The device-mapper name of the device.
        device: String,
        /// What in the table did not parse.
        message: String,
    },
}

impl Error {
    /// The errno the kernel returned, when the failure was an ioctl's.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Device { errno, .. } => *errno,
            Error::Ioctl { source, .. } => errno_of(source),
            Error::Simulated { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

fn dm_name(name: &str) -> Result<&devicemapper::DmName> {
    devicemapper::DmName::new(name).map_err(|_| Error::BadName(name.to_owned()))
}

/// The size of the kernel's `struct dm_ioctl` (linux/dm-ioctl.h).
const DM_IOCTL_SIZE: usize = 312;

/// The raw request that resumes device `name` (`DM_DEV_SUSPEND` without
/// the suspend flag) on /dev/mapper/control, as a request number and its
/// buffer: for a watchdog child that may make only system calls after a
/// fork (crate::guard). Resuming a device that is not suspended does
/// nothing.
pub fn raw_resume_request(name: &str) -> Result<(nix::libc::c_ulong, Vec<u8>)> {
    let dm = dm_name(name)?.as_bytes();
    let mut buf = vec![0u8; DM_IOCTL_SIZE];
    let put =
        |buf: &mut Vec<u8>, at: usize, v: u32| buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    // version 4.0.0, data_size, data_start; flags 0 (resume).
    put(&mut buf, 0, 4);
    put(&mut buf, 12, DM_IOCTL_SIZE as u32);
    put(&mut buf, 16, DM_IOCTL_SIZE as u32);
    // name[128] at byte 48, NUL-terminated (DmName caps it at 127).
    buf[48..48 + dm.len()].copy_from_slice(dm);
    let request = nix::request_code_readwrite!(0xfd, 6, DM_IOCTL_SIZE) as nix::libc::c_ulong;
    Ok((request, buf))
}

fn device_error(operation: &'static str, device: &str, error: devicemapper::DmError) -> Error {
    Error::Device {
        operation,
        device: device.to_owned(),
        errno: errno_of(&error),
        error,
    }
}

fn cause(errno: Option<i32>, source: &devicemapper::DmError) -> String {
    match errno {
        Some(e) => describe(e),
        None => source.to_string(),
    }
}

fn describe(errno: i32) -> String {
    let e = nix::errno::Errno::from_raw(errno);
    format!("{} ({e})", e.desc())
}

/// What an errno means for the one who reads the error.
fn hint(errno: Option<i32>) -> &'static str {
    match errno {
        Some(nix::libc::EBUSY) => " (the device is in use: unmount it or stop what holds it open)",
        Some(nix::libc::ENXIO) => " (no such device)",
        Some(nix::libc::EEXIST) => " (a device of that name or uuid exists already)",
        Some(nix::libc::EINVAL) => {
            " (the kernel refused the table or message: see `dmesg` for the target's reason)"
        }
        Some(nix::libc::ENOSPC) => " (no space left: the pool is full)",
        Some(nix::libc::EOPNOTSUPP) => {
            " (the target refuses this in its current mode: a thin pool that switched to \
             read-only or failed, often out of metadata space; see `dmesg`)"
        }
        _ => "",
    }
}

/// The errno inside a devicemapper error, if it came from an ioctl.
fn errno_of(e: &devicemapper::DmError) -> Option<i32> {
    match e {
        devicemapper::DmError::Core(devicemapper::errors::Error::Ioctl(_, _, _, errno)) => {
            Some(*errno.as_ref() as i32)
        }
        _ => None,
    }
}

/// A device-mapper call's result.
pub type Result<T> = std::result::Result<T, Error>;

/// What DM_DEV_STATUS (or any ioctl's reply) says about one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Info {
    /// The device-mapper name (`vg-lv` for an LV, `-` doubled inside names).
    pub name: String,
    /// The device-mapper uuid (`LVM-<vg uuid><lv uuid>` for an LV); empty
    /// when the device has none.
    pub uuid: String,
    /// The block device's major number.
    pub major: u32,
    /// The block device's minor number.
    pub minor: u32,
    /// How many openers hold the device (mounts, holders above it, processes).
    pub open_count: i32,
    /// The event counter, which targets bump (a thin pool crossing its
    /// low-water mark, a cache changing mode).
    pub event_nr: u32,
    /// Whether the device is suspended (I/O queued, not passed down).
    pub suspended: bool,
    /// Whether a table is live.
    pub live_table: bool,
    /// Whether a table waits in the inactive slot for a resume.
    pub inactive_table: bool,
    /// Whether the device refuses writes.
    pub read_only: bool,
}

impl Info {
    fn from_dm(info: &devicemapper::DeviceInfo) -> Info {
        use devicemapper::DmFlags;
        let flags = info.flags();
        let dev = info.device();
        Info {
            name: info.name().map(|n| n.to_string()).unwrap_or_default(),
            uuid: info.uuid().map(|u| u.to_string()).unwrap_or_default(),
            major: dev.major,
            minor: dev.minor,
            open_count: info.open_count(),
            event_nr: info.event_nr(),
            suspended: flags.contains(DmFlags::DM_SUSPEND),
            live_table: flags.contains(DmFlags::DM_ACTIVE_PRESENT),
            inactive_table: flags.contains(DmFlags::DM_INACTIVE_PRESENT),
            read_only: flags.contains(DmFlags::DM_READONLY),
        }
    }
}

/// How a suspend treats the device's pending I/O and file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suspend {
    /// Flush queued I/O and freeze a mounted file system first (the default).
    Flush,
    /// Keep queued I/O queued and skip the freeze (lvm2 uses it for a thin
    /// pool, whose queued I/O may wait for the very space a resize adds).
    NoFlush,
    /// Flush queued I/O but skip the freeze: the file system on the device
    /// is frozen already (FIFREEZE by the caller), and the kernel's own
    /// freeze of a frozen file system would fail.
    FlushFrozen,
}

/// A target type the kernel has loaded, as `dmsetup targets` lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Target {
    /// The target type's name (`thin-pool`, `cache`, `linear`, ...).
    pub name: String,
    /// The target's version (major, minor, patch).
    pub version: [u32; 3],
}

/// A device-mapper device, as `dmsetup ls` lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Device {
    /// The device-mapper name.
    pub name: String,
    /// The block device's major number.
    pub major: u32,
    /// The block device's minor number.
    pub minor: u32,
    /// Event counter (kernels with DM ioctl >= 4.37 report it in the listing).
    pub event_nr: Option<u32>,
}

/// What DM_DEV_STATUS says about one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeviceState {
    /// How many openers hold the device (mounts, holders above it, processes).
    pub open_count: i32,
    /// Whether the device is suspended (I/O queued, not passed down).
    pub suspended: bool,
    /// Whether a table is live.
    pub live_table: bool,
    /// Whether a table waits in the inactive slot for a resume.
    pub inactive_table: bool,
    /// Whether the device refuses writes.
    pub read_only: bool,
}

/// An open handle on /dev/mapper/control.
pub struct Control {
    dm: DM,
    /// How long a uevent-making ioctl may wait for udev (udev.rs).
    udev_timeout: std::time::Duration,
}

impl Control {
    /// The control node, with udev waits bounded by the default (the
    /// façade's `HostOptions` sets its own).
    pub fn open() -> Result<Control> {
        Control::open_with(udev::DEFAULT_TIMEOUT)
    }

    /// The control node, with each wait for udev bounded by `udev_wait`.
    pub fn open_with(udev_wait: std::time::Duration) -> Result<Control> {
        if !std::path::Path::new(CONTROL_PATH).exists() {
            return Err(Error::Unavailable(format!("{CONTROL_PATH} is missing")));
        }
        let dm = DM::new().map_err(|e| Error::Unavailable(e.to_string()))?;
        Ok(Control {
            dm,
            udev_timeout: udev_wait,
        })
    }

    /// The ioctl interface version (major, minor, patch).
    pub fn version(&self) -> Result<[u32; 3]> {
        let (a, b, c) = self.dm.version().map_err(|source| Error::Ioctl {
            operation: "version",
            source,
        })?;
        Ok([a, b, c])
    }

    /// Loaded target types, sorted by name.
    pub fn targets(&self) -> Result<Vec<Target>> {
        let mut targets: Vec<Target> = self
            .dm
            .list_versions()
            .map_err(|source| Error::Ioctl {
                operation: "list target versions",
                source,
            })?
            .into_iter()
            .map(|(name, a, b, c)| Target {
                name,
                version: [a, b, c],
            })
            .collect();
        targets.sort();
        Ok(targets)
    }

    /// The state of the device called `name`, or None if there is none.
    pub fn state(&self, name: &str) -> Result<Option<DeviceState>> {
        use devicemapper::{DevId, DmFlags, DmName};
        let Ok(dm_name) = DmName::new(name) else {
            return Ok(None);
        };
        match self.dm.device_info(&DevId::Name(dm_name)) {
            Ok(info) => {
                let flags = info.flags();
                Ok(Some(DeviceState {
                    open_count: info.open_count(),
                    suspended: flags.contains(DmFlags::DM_SUSPEND),
                    live_table: flags.contains(DmFlags::DM_ACTIVE_PRESENT),
                    inactive_table: flags.contains(DmFlags::DM_INACTIVE_PRESENT),
                    read_only: flags.contains(DmFlags::DM_READONLY),
                }))
            }
            Err(devicemapper::DmError::Core(devicemapper::errors::Error::Ioctl(_, _, _, e)))
                if *e.as_ref() as i32 == nix::libc::ENXIO =>
            {
                Ok(None)
            }
            Err(source) => Err(Error::Ioctl {
                operation: "device status",
                source,
            }),
        }
    }

    /// Full information on the device called `name`, or None if there is none.
    pub fn info(&self, name: &str) -> Result<Option<Info>> {
        match self
            .dm
            .device_info(&devicemapper::DevId::Name(dm_name(name)?))
        {
            Ok(info) => Ok(Some(Info::from_dm(&info))),
            Err(e) if errno_of(&e) == Some(nix::libc::ENXIO) => Ok(None),
            Err(source) => Err(device_error("status", name, source)),
        }
    }

    /// Creates a device with no table. Read-only devices refuse writes
    /// whatever their table says (lvm2's thin-pool "-pool" layer).
    pub fn create(&self, name: &str, uuid: &str, read_only: bool) -> Result<Info> {
        use devicemapper::{DmFlags, DmOptions, DmUuid};
        let dm_uuid = DmUuid::new(uuid).map_err(|_| Error::BadName(uuid.to_owned()))?;
        let mut options = DmOptions::default();
        if read_only {
            options = options.set_flags(DmFlags::DM_READONLY);
        }
        self.dm
            .device_create(dm_name(name)?, Some(dm_uuid), options)
            .map(|i| Info::from_dm(&i))
            .map_err(|source| device_error("create", name, source))
    }

    /// Loads a table into the device's inactive slot; a resume makes it live.
    pub fn load(&self, name: &str, table: &[table::TableLine], read_only: bool) -> Result<()> {
        use devicemapper::{DmFlags, DmOptions};
        let lines: Vec<(u64, u64, String, String)> = table
            .iter()
            .map(|l| {
                (
                    l.start,
                    l.length,
                    l.target.type_name().to_owned(),
                    l.target.params(),
                )
            })
            .collect();
        let mut options = DmOptions::default();
        if read_only {
            options = options.set_flags(DmFlags::DM_READONLY);
        }
        self.dm
            .table_load(&devicemapper::DevId::Name(dm_name(name)?), &lines, options)
            .map(|_| ())
            .map_err(|source| device_error("table load", name, source))
    }

    /// Drops a table loaded into the inactive slot (undoes `load`).
    pub fn clear(&self, name: &str) -> Result<()> {
        self.dm
            .table_clear(&devicemapper::DevId::Name(dm_name(name)?))
            .map(|_| ())
            .map_err(|source| device_error("table clear", name, source))
    }

    /// Suspends a device: new I/O queues until the next resume.
    pub fn suspend(&self, name: &str, how: Suspend) -> Result<()> {
        use devicemapper::{DmFlags, DmOptions};
        let mut flags = DmFlags::DM_SUSPEND;
        match how {
            Suspend::Flush => {}
            Suspend::NoFlush => flags |= DmFlags::DM_NOFLUSH | DmFlags::DM_SKIP_LOCKFS,
            Suspend::FlushFrozen => flags |= DmFlags::DM_SKIP_LOCKFS,
        }
        self.dm
            .device_suspend(
                &devicemapper::DevId::Name(dm_name(name)?),
                DmOptions::default().set_flags(flags),
            )
            .map(|_| ())
            .map_err(|source| device_error("suspend", name, source))
    }

    /// Resumes a device: a table in the inactive slot becomes live.
    pub fn resume(&self, name: &str) -> Result<Info> {
        let id = dm_name(name)?;
        udev::bounded(&format!("the resume of {name}"), self.udev_timeout, || {
            self.dm.device_suspend(
                &devicemapper::DevId::Name(id),
                devicemapper::DmOptions::default(),
            )
        })
        .map(|i| Info::from_dm(&i))
        .map_err(|source| device_error("resume", name, source))
    }

    /// Removes a device (the crate retries EBUSY: udev and blkid open new
    /// devices briefly).
    pub fn remove(&self, name: &str) -> Result<()> {
        let id = dm_name(name)?;
        udev::bounded(&format!("the removal of {name}"), self.udev_timeout, || {
            self.dm.device_remove(
                &devicemapper::DevId::Name(id),
                devicemapper::DmOptions::default(),
            )
        })
        .map(|_| ())
        .map_err(|source| device_error("remove", name, source))
    }

    /// Sends a target message (thin-pool: create_thin, delete, ...).
    pub fn message(&self, name: &str, message: &str) -> Result<Option<String>> {
        self.dm
            .target_msg(&devicemapper::DevId::Name(dm_name(name)?), None, message)
            .map(|(_, out)| out)
            .map_err(|source| device_error("message", name, source))
    }

    /// The live table, as the kernel prints it.
    pub fn table(&self, name: &str) -> Result<Vec<table::TableLine>> {
        let raw = self.table_or_status(name, true)?;
        Self::parse_lines(name, raw)
    }

    fn parse_lines(
        name: &str,
        raw: Vec<(u64, u64, String, String)>,
    ) -> Result<Vec<table::TableLine>> {
        raw.into_iter()
            .map(|(start, length, kind, params)| {
                Ok(table::TableLine {
                    start,
                    length,
                    target: table::Target::parse(&kind, &params).map_err(|e| Error::Table {
                        device: name.to_owned(),
                        message: e.to_string(),
                    })?,
                })
            })
            .collect()
    }

    /// The table in the inactive slot (empty when none is loaded).
    pub fn inactive_table(&self, name: &str) -> Result<Vec<table::TableLine>> {
        use devicemapper::{DmFlags, DmOptions};
        let options = DmOptions::default()
            .set_flags(DmFlags::DM_STATUS_TABLE | DmFlags::DM_QUERY_INACTIVE_TABLE);
        let raw = self
            .dm
            .table_status(&devicemapper::DevId::Name(dm_name(name)?), options)
            .map(|(_, lines)| lines)
            .map_err(|source| device_error("inactive table", name, source))?;
        Self::parse_lines(name, raw)
    }

    /// The status lines of the live table: (start, length, target type, status).
    pub fn status(&self, name: &str) -> Result<Vec<(u64, u64, String, String)>> {
        self.table_or_status(name, false)
    }

    fn table_or_status(&self, name: &str, table: bool) -> Result<Vec<(u64, u64, String, String)>> {
        use devicemapper::{DmFlags, DmOptions};
        let mut options = DmOptions::default();
        if table {
            options = options.set_flags(DmFlags::DM_STATUS_TABLE);
        }
        self.dm
            .table_status(&devicemapper::DevId::Name(dm_name(name)?), options)
            .map(|(_, lines)| lines)
            .map_err(|source| device_error(if table { "table" } else { "status" }, name, source))
    }

    /// Existing devices, sorted by name.
    pub fn devices(&self) -> Result<Vec<Device>> {
        let mut devices: Vec<Device> = self
            .dm
            .list_devices()
            .map_err(|source| Error::Ioctl {
                operation: "list devices",
                source,
            })?
            .into_iter()
            .map(|(name, dev, event_nr)| Device {
                name: name.to_string(),
                major: dev.major,
                minor: dev.minor,
                event_nr,
            })
            .collect();
        devices.sort();
        Ok(devices)
    }
}
