//! The seam in front of the kernel: every device-mapper call cairn's
//! engine and thin transactions make, as a trait. [`Control`] is the real
//! kernel (ioctls on /dev/mapper/control); [`super::sim::SimDm`] is a
//! simulated one, for host tests of the logic above it (undo, activation
//! order, thin transaction ids) that run in seconds and need no root.
//!
//! The trait also covers the block nodes under /dev that name the devices
//! (`/dev/mapper/<name>` and the `/dev/<vg>/<lv>` links) and the device
//! numbers of other nodes (PVs): making a block node needs CAP_MKNOD, and
//! a simulated device has no real number, so a simulation answers those
//! too. The default methods are the real ones.

use std::io;
use std::path::Path;

use super::table::TableLine;
use super::{nodes, Control, Device, Info, Result, Suspend};

/// Device-mapper as cairn uses it. `Sync`: an activation brings a wave
/// of devices up side by side, from several threads.
pub trait DeviceMapper: Sync {
    /// Full information on the device called `name`, or None if there is none.
    fn info(&self, name: &str) -> Result<Option<Info>>;
    /// Creates a device with no table (read-only devices refuse writes
    /// whatever their table says).
    fn create(&self, name: &str, uuid: &str, read_only: bool) -> Result<Info>;
    /// Loads a table into the device's inactive slot; a resume makes it live.
    fn load(&self, name: &str, table: &[TableLine], read_only: bool) -> Result<()>;
    /// Drops a table loaded into the inactive slot (undoes `load`).
    fn clear(&self, name: &str) -> Result<()>;
    /// Suspends a device: new I/O queues until the next resume.
    fn suspend(&self, name: &str, how: Suspend) -> Result<()>;
    /// Resumes a device: a table in the inactive slot becomes live.
    fn resume(&self, name: &str) -> Result<Info>;
    /// Removes a device (its open count must be 0).
    fn remove(&self, name: &str) -> Result<()>;
    /// Sends a target message (thin-pool: create_thin, delete, ...).
    fn message(&self, name: &str, message: &str) -> Result<Option<String>>;
    /// The live table, as the kernel prints it.
    fn table(&self, name: &str) -> Result<Vec<TableLine>>;
    /// The table in the inactive slot (empty when none is loaded).
    fn inactive_table(&self, name: &str) -> Result<Vec<TableLine>>;
    /// The status lines of the live table: (start, length, target type, status).
    fn status(&self, name: &str) -> Result<Vec<(u64, u64, String, String)>>;
    /// Existing devices, sorted by name.
    fn devices(&self) -> Result<Vec<Device>>;

    /// The `major:minor` of the block node at `path`.
    fn device_number(&self, path: &Path) -> io::Result<(u32, u32)> {
        nodes::block_device_number(path)
    }
    /// Makes `<root>/mapper/<name>` for `major:minor`.
    fn make_node(&self, root: &Path, name: &str, major: u32, minor: u32) -> io::Result<()> {
        nodes::make_node(root, name, major, minor)
    }
    /// Removes `<root>/mapper/<name>` (absent is fine).
    fn remove_node(&self, root: &Path, name: &str) -> io::Result<()> {
        nodes::remove_node(root, name)
    }
    /// Whether the symlink `link` (a `/dev/...` path, under `root`) points
    /// at `/dev/mapper/<name>`.
    fn link_points_to(&self, root: &Path, link: &str, name: &str) -> bool {
        nodes::link_points_to(root, link, name)
    }
    /// Makes the symlink `link` to `/dev/mapper/<name>`.
    fn make_link(&self, root: &Path, link: &str, name: &str) -> io::Result<()> {
        nodes::make_link(root, link, name)
    }
    /// Removes the symlink `link` (absent is fine).
    fn remove_link(&self, root: &Path, link: &str) -> io::Result<()> {
        nodes::remove_link(root, link)
    }
}

impl DeviceMapper for Control {
    fn info(&self, name: &str) -> Result<Option<Info>> {
        Control::info(self, name)
    }
    fn create(&self, name: &str, uuid: &str, read_only: bool) -> Result<Info> {
        Control::create(self, name, uuid, read_only)
    }
    fn load(&self, name: &str, table: &[TableLine], read_only: bool) -> Result<()> {
        Control::load(self, name, table, read_only)
    }
    fn clear(&self, name: &str) -> Result<()> {
        Control::clear(self, name)
    }
    fn suspend(&self, name: &str, how: Suspend) -> Result<()> {
        Control::suspend(self, name, how)
    }
    fn resume(&self, name: &str) -> Result<Info> {
        Control::resume(self, name)
    }
    fn remove(&self, name: &str) -> Result<()> {
        Control::remove(self, name)
    }
    fn message(&self, name: &str, message: &str) -> Result<Option<String>> {
        Control::message(self, name, message)
    }
    fn table(&self, name: &str) -> Result<Vec<TableLine>> {
        Control::table(self, name)
    }
    fn inactive_table(&self, name: &str) -> Result<Vec<TableLine>> {
        Control::inactive_table(self, name)
    }
    fn status(&self, name: &str) -> Result<Vec<(u64, u64, String, String)>> {
        Control::status(self, name)
    }
    fn devices(&self) -> Result<Vec<Device>> {
        Control::devices(self)
    }
}

/// The kernel a command talks to: the host's, opened when the command
/// first needs it (a request refused before that needs no device-mapper,
/// and says why rather than that device-mapper is missing), or a given one.
#[derive(Clone, Copy)]
pub enum Kernel<'k> {
    /// The host's device-mapper, each wait for udev bounded by this long.
    Host(std::time::Duration),
    /// A kernel the caller made (a [`super::sim::SimDm`] in host tests).
    Given(&'k (dyn DeviceMapper + 'static)),
}

/// A [`Kernel`] opened.
pub enum Opened<'k> {
    /// /dev/mapper/control, opened.
    Host(Control),
    /// The caller's kernel, as given.
    Given(&'k (dyn DeviceMapper + 'static)),
}

impl<'k> Kernel<'k> {
    /// Opens the host's control node, or hands back the given kernel.
    pub fn open(self) -> Result<Opened<'k>> {
        Ok(match self {
            Kernel::Host(udev_wait) => Opened::Host(Control::open_with(udev_wait)?),
            Kernel::Given(k) => Opened::Given(k),
        })
    }
}

impl std::ops::Deref for Opened<'_> {
    type Target = dyn DeviceMapper + 'static;
    fn deref(&self) -> &Self::Target {
        match self {
            Opened::Host(c) => c,
            Opened::Given(k) => *k,
        }
    }
}
