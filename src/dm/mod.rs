//! Device-mapper through its ioctls (crate `devicemapper`), never dmsetup.

pub mod status;
pub mod table;

use devicemapper::DM;
use serde::Serialize;

/// The device-mapper control node.
pub const CONTROL_PATH: &str = "/dev/mapper/control";

/// A device-mapper failure, with what cairn was doing when it happened.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "device-mapper is not available ({0}): load the dm-mod kernel module (`modprobe dm-mod`) \
         and run as root"
    )]
    Unavailable(String),
    #[error("device-mapper {operation} failed: {source}")]
    Ioctl {
        operation: &'static str,
        #[source]
        source: devicemapper::DmError,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// A target type the kernel has loaded, as `dmsetup targets` lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Target {
    pub name: String,
    pub version: [u32; 3],
}

/// A device-mapper device, as `dmsetup ls` lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Device {
    pub name: String,
    pub major: u32,
    pub minor: u32,
    /// Event counter (kernels with DM ioctl >= 4.37 report it in the listing).
    pub event_nr: Option<u32>,
}

/// What DM_DEV_STATUS says about one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeviceState {
    pub open_count: i32,
    pub suspended: bool,
    pub live_table: bool,
    pub inactive_table: bool,
    pub read_only: bool,
}

/// An open handle on /dev/mapper/control.
pub struct Control {
    dm: DM,
}

impl Control {
    pub fn open() -> Result<Control> {
        if !std::path::Path::new(CONTROL_PATH).exists() {
            return Err(Error::Unavailable(format!("{CONTROL_PATH} is missing")));
        }
        let dm = DM::new().map_err(|e| Error::Unavailable(e.to_string()))?;
        Ok(Control { dm })
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
