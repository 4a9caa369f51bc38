//! Reading and writing metadata on a block device (or an image file) the
//! way lvm2 and drbdmeta do: O_DIRECT, so that what cairn writes is what any reader of
//! the device sees next, whatever page cache sits on another path to it.
//! Falls back to buffered I/O plus fdatasync where O_DIRECT is refused
//! (image files on tmpfs, in host tests).

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// O_DIRECT alignment that satisfies 512-byte and 4 KiB-sector devices.
const ALIGN: usize = 4096;

/// Why a device (or image file) could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// open(2), or reading its type and size, failed.
    #[error("{path}: cannot open: {source}")]
    Open {
        /// The device.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// A read, a write or the fdatasync after it failed.
    #[error("{path}: {what} at byte {offset} ({len} bytes) failed: {source}")]
    Io {
        /// The device.
        path: PathBuf,
        /// `read`, `write` or `fdatasync`.
        what: &'static str,
        /// Where it began, in bytes from the device's start.
        offset: u64,
        /// How much it was to move, in bytes.
        len: usize,
        /// The system's error.
        source: std::io::Error,
    },
    /// The path is something else (a directory, a character device).
    #[error("{path}: is neither a block device nor a regular file")]
    NotADevice {
        /// The path.
        path: PathBuf,
    },
    /// The exclusive open was refused (EBUSY): something holds the device.
    #[error(
        "{path} is in use (mounted, held by device-mapper, md or DRBD, or open exclusively by \
         another program): nothing was changed; stop what holds it first"
    )]
    Busy {
        /// The device.
        path: PathBuf,
    },
    /// A read or write reaching past the device's end, refused before any
    /// I/O.
    #[error("{path}: {offset}+{len} lies past the end of the device ({size} bytes)")]
    PastEnd {
        /// The device.
        path: PathBuf,
        /// Where it was to begin, in bytes.
        offset: u64,
        /// How much it was to move, in bytes.
        len: usize,
        /// The device's size, in bytes.
        size: u64,
    },
}

/// A result whose error is a [`DeviceError`].
pub type Result<T> = std::result::Result<T, DeviceError>;

mod ioctl {
    // BLKGETSIZE64: a block device's size in bytes. In a module of its own
    // since the macro makes a `pub fn`, which is no part of this API.
    nix::ioctl_read!(blkgetsize64, 0x12, 114, u64);
}

/// A block device (or an image file standing in for one), open for
/// direct I/O where the kernel allows it.
#[derive(Debug)]
pub struct Device {
    file: File,
    /// The path it was opened by.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// (major, minor) for block devices.
    pub devno: Option<(u32, u32)>,
    direct: bool,
}

/// A heap buffer aligned for O_DIRECT.
struct Aligned {
    ptr: *mut u8,
    len: usize,
}

impl Aligned {
    fn zeroed(len: usize) -> Aligned {
        let len = len.max(ALIGN);
        let layout = std::alloc::Layout::from_size_align(len, ALIGN).expect("valid layout");
        // SAFETY: the layout has non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Aligned { ptr, len }
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr is valid for len initialised bytes until drop.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and we hold the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        let layout = std::alloc::Layout::from_size_align(self.len, ALIGN).expect("valid layout");
        // SAFETY: allocated above with this layout.
        unsafe { std::alloc::dealloc(self.ptr, layout) };
    }
}

impl Device {
    /// Opens `path`, for writing too when `writable`, without claiming it:
    /// others may hold it (reading a PV's label while its VG is active).
    pub fn open(path: &Path, writable: bool) -> Result<Device> {
        Device::open_with(path, writable, 0)
    }

    /// Opens `path` and, if it is a block device, claims it exclusively
    /// (O_EXCL), as mkfs, pvcreate and drbdmeta do before writing over it:
    /// refused ([`DeviceError::Busy`]) while it is mounted or held by
    /// device-mapper, md, DRBD (an attached backing disk) or another
    /// exclusive opener, and nobody else can claim it until this Device is
    /// dropped. (Linux ignores O_EXCL without O_CREAT on regular files.)
    pub fn open_exclusive(path: &Path, writable: bool) -> Result<Device> {
        Device::open_with(path, writable, nix::libc::O_EXCL).map_err(|e| match e {
            DeviceError::Open { path, source }
                if source.raw_os_error() == Some(nix::libc::EBUSY) =>
            {
                DeviceError::Busy { path }
            }
            e => e,
        })
    }

    /// Whether this is a block device (not an image file).
    pub fn is_block_device(&self) -> bool {
        self.devno.is_some()
    }

    fn open_with(path: &Path, writable: bool, flags: i32) -> Result<Device> {
        let open = |direct: bool| {
            let mut o = OpenOptions::new();
            o.read(true).write(writable);
            o.custom_flags(flags | if direct { nix::libc::O_DIRECT } else { 0 });
            o.open(path)
        };
        let (file, direct) = match open(true) {
            Ok(f) => (f, true),
            Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => (
                open(false).map_err(|source| DeviceError::Open {
                    path: path.to_owned(),
                    source,
                })?,
                false,
            ),
            Err(source) => {
                return Err(DeviceError::Open {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let meta = file.metadata().map_err(|source| DeviceError::Open {
            path: path.to_owned(),
            source,
        })?;
        let (size, devno) = if meta.file_type().is_block_device() {
            let mut size = 0u64;
            // SAFETY: BLKGETSIZE64 writes one u64.
            unsafe { ioctl::blkgetsize64(file.as_raw_fd(), &mut size) }.map_err(|e| {
                DeviceError::Open {
                    path: path.to_owned(),
                    source: std::io::Error::from(e),
                }
            })?;
            let rdev = meta.rdev();
            (
                size,
                Some((
                    nix::sys::stat::major(rdev) as u32,
                    nix::sys::stat::minor(rdev) as u32,
                )),
            )
        } else if meta.file_type().is_file() {
            (meta.len(), None)
        } else {
            return Err(DeviceError::NotADevice {
                path: path.to_owned(),
            });
        };
        Ok(Device {
            file,
            path: path.to_owned(),
            size,
            devno,
            direct,
        })
    }

    fn check_range(&self, offset: u64, len: usize) -> Result<()> {
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > self.size)
        {
            return Err(DeviceError::PastEnd {
                path: self.path.clone(),
                offset,
                len,
                size: self.size,
            });
        }
        Ok(())
    }

    /// Reads `len` bytes at `offset`.
    pub fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        self.check_range(offset, len)?;
        let start = offset - offset % ALIGN as u64;
        let end = (offset + len as u64).div_ceil(ALIGN as u64) * ALIGN as u64;
        let end = end.min(self.size.div_ceil(ALIGN as u64) * ALIGN as u64);
        let mut buf = Aligned::zeroed((end - start) as usize);
        self.read_exact_at(start, buf.as_mut_slice())?;
        let skip = (offset - start) as usize;
        Ok(buf.as_slice()[skip..skip + len].to_vec())
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let n =
                nix::sys::uio::pread(&self.file, &mut buf[done..], (offset + done as u64) as i64)
                    .map_err(|e| DeviceError::Io {
                    path: self.path.clone(),
                    what: "read",
                    offset,
                    len: buf.len(),
                    source: std::io::Error::from(e),
                })?;
            if n == 0 {
                // End of a device whose size is not a multiple of the alignment.
                break;
            }
            done += n;
        }
        Ok(())
    }

    /// Writes `data` at `offset` (read-modify-write of partial blocks under
    /// O_DIRECT), then waits for it to reach the device.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.check_range(offset, data.len())?;
        let io_err = |what, source| DeviceError::Io {
            path: self.path.clone(),
            what,
            offset,
            len: data.len(),
            source,
        };
        if self.direct {
            let start = offset - offset % ALIGN as u64;
            let end = (offset + data.len() as u64).div_ceil(ALIGN as u64) * ALIGN as u64;
            let mut buf = Aligned::zeroed((end - start) as usize);
            if start != offset || end != offset + data.len() as u64 {
                self.read_exact_at(start, buf.as_mut_slice())?;
            }
            let skip = (offset - start) as usize;
            buf.as_mut_slice()[skip..skip + data.len()].copy_from_slice(data);
            self.write_all_at(start, buf.as_slice())?;
        } else {
            self.write_all_at(offset, data)?;
        }
        nix::unistd::fdatasync(self.file.as_raw_fd())
            .map_err(|e| io_err("fdatasync", std::io::Error::from(e)))
    }

    fn write_all_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let n = nix::sys::uio::pwrite(&self.file, &buf[done..], (offset + done as u64) as i64)
                .map_err(|e| DeviceError::Io {
                    path: self.path.clone(),
                    what: "write",
                    offset,
                    len: buf.len(),
                    source: std::io::Error::from(e),
                })?;
            done += n;
        }
        Ok(())
    }
}

/// Whether two paths name one device (`/dev/VG/LV`, `/dev/mapper/VG-LV`
/// and `/dev/dm-N` are one LV).
pub fn same_device(a: &Path, b: &Path) -> bool {
    a == b
        || matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
}

// ---- suspended devices -------------------------------------------------------

mod suspended;
pub use suspended::{suspended_under, SysfsGraph};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unaligned_reads_and_writes_on_an_image_file() {
        let path = std::env::temp_dir().join(format!("cairn-dev-{}", std::process::id()));
        std::fs::write(&path, vec![0xAA; 3 * 4096 + 100]).unwrap();
        let dev = Device::open(&path, true).unwrap();
        assert_eq!((dev.size, dev.devno), (3 * 4096 + 100, None));
        dev.write_at(4090, b"across a block boundary").unwrap();
        assert_eq!(dev.read_at(4090, 23).unwrap(), b"across a block boundary");
        assert_eq!(dev.read_at(4089, 1).unwrap(), [0xAA]);
        assert_eq!(
            dev.read_at(3 * 4096 + 99, 1).unwrap(),
            [0xAA],
            "the unaligned tail is readable"
        );
        let e = dev.read_at(3 * 4096 + 99, 2).unwrap_err();
        assert!(e.to_string().contains("past the end"), "{e}");
        assert!(dev.write_at(u64::MAX - 1, b"xx").is_err());
        std::fs::remove_file(&path).unwrap();
        let e = Device::open(&path, false).unwrap_err();
        assert!(e.to_string().contains("cannot open"), "{e}");
        assert!(matches!(
            Device::open(Path::new("/dev/null"), false),
            Err(DeviceError::NotADevice { .. })
        ));
    }
}
