//! Filesystems on block devices, for the containers' volumes: what is on a
//! device (the ext2/3/4 superblock, read directly so that a probe costs one
//! read and no tool), making and growing ext4 with e2fsprogs (as
//! `lxc-create -B lvm` and `lvextend -r` run them: their on-disk format is
//! theirs to write), and a temporary mount to fill a new root filesystem.
//!
//! Knows nothing of LVM, DRBD or the stack: everything takes a device path.

mod freeze;
pub use freeze::{open as open_to_freeze, Frozen};

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Where [`mount_temporarily`] makes its mount points: under /run, so that
/// a crash leaves nothing behind after a reboot.
pub const MOUNT_DIR: &str = "/run/cairn/mnt";

/// Byte offset of the ext2/3/4 superblock on the device.
const SUPERBLOCK_OFFSET: usize = 1024;
/// Bytes of the superblock that [`parse_superblock`] reads.
const SUPERBLOCK_LEN: usize = 1024;
const EXT_MAGIC: u16 = 0xEF53;

const COMPAT_HAS_JOURNAL: u32 = 0x4;
const INCOMPAT_EXTENTS: u32 = 0x40;
const INCOMPAT_64BIT: u32 = 0x80;
const INCOMPAT_FLEX_BG: u32 = 0x200;

/// Why work on a container's ext4 (probe, mkfs, resize, mount) failed.
/// `device` is always the volume it is on.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// The superblock could not be read.
    #[error("{}: cannot read the superblock: {source}; check that the device exists and is readable (as root)", device.display())]
    Read {
        /// The volume.
        device: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// An e2fsprogs tool could not be started: not installed.
    #[error("{}: cannot run {tool}: {source}; install e2fsprogs", device.display())]
    Spawn {
        /// The volume.
        device: PathBuf,
        /// The program (`mkfs.ext4`, `resize2fs`, `e2fsck`).
        tool: &'static str,
        /// The system's error.
        source: std::io::Error,
    },
    /// An e2fsprogs tool ran and failed.
    #[error("{}: {tool} failed ({status}): {stderr}; {hint}", device.display())]
    Tool {
        /// The volume.
        device: PathBuf,
        /// The program.
        tool: &'static str,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
        /// What to do next.
        hint: &'static str,
    },
    /// The temporary mount point under /run could not be made.
    #[error("{}: cannot make the mount point {}: {source}; cairn must run as root with /run writable", device.display(), dir.display())]
    MountPoint {
        /// The volume.
        device: PathBuf,
        /// The mount point.
        dir: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// mount(2) failed.
    #[error("{}: mount on {} as {fstype} failed: {source}; check that it is a block device holding {fstype} and not mounted elsewhere (blkid, findmnt)", device.display(), dir.display())]
    Mount {
        /// The volume.
        device: PathBuf,
        /// The mount point.
        dir: PathBuf,
        /// The filesystem type asked for (`ext4`).
        fstype: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// umount(2) failed: something still uses the filesystem, which stays
    /// mounted.
    #[error("{}: unmount of {} failed: {source}; find what still uses it (fuser -vm {}) and run umount {} yourself", device.display(), dir.display(), dir.display(), dir.display())]
    Unmount {
        /// The volume.
        device: PathBuf,
        /// The mount point.
        dir: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// Growing a mounted ext4 (a running container's root) failed.
    #[error("{}: online resize through {} failed: {source}; stop the container and apply again (the filesystem is then resized offline)", device.display(), dir.display())]
    OnlineResize {
        /// The volume.
        device: PathBuf,
        /// Where it is mounted (`/proc/PID/root` of the container's init).
        dir: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// FIFREEZE of a mounted file system failed (before a snapshot).
    #[error("cannot freeze the file system at {}: {source}; nothing was snapshot (is it mounted, and are you root?)", dir.display())]
    Freeze {
        /// The directory it was frozen through (`/proc/PID/root`).
        dir: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// FITHAW of a file system this process froze failed.
    #[error("cannot thaw the file system at {}: {source}; thaw it yourself (fsfreeze -u {}) before its users time out", dir.display(), dir.display())]
    Thaw {
        /// The directory it was frozen through.
        dir: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The filesystem was unmounted, but its temporary mount point stayed.
    #[error("{}: unmounted, but removing the mount point {} failed: {source}; remove it yourself", device.display(), dir.display())]
    RemoveMountPoint {
        /// The volume.
        device: PathBuf,
        /// The mount point left behind.
        dir: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
}

/// What [`probe`] found on a device: an ext2, ext3 or ext4 filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filesystem {
    /// "ext2", "ext3" or "ext4", decided from the feature flags as blkid
    /// does in the common cases (extents, flex_bg or 64bit: ext4; a journal:
    /// ext3).
    pub kind: &'static str,
    pub block_size: u64,
    pub blocks_count: u64,
    pub free_blocks_count: u64,
    /// Canonical 8-4-4-4-12 lowercase form, as `blkid` and `dumpe2fs` print it.
    pub uuid: String,
    /// The volume name (`mkfs.ext4 -L`), empty when none.
    pub label: String,
}

impl Filesystem {
    /// The filesystem's size in bytes, to compare with its device's.
    pub fn size_bytes(&self) -> u64 {
        self.blocks_count.saturating_mul(self.block_size)
    }
}

/// Reads the ext2/3/4 superblock of `device` (a block device or an image
/// file): `None` when it holds no ext filesystem (no magic, or too short).
pub fn probe(device: &Path) -> Result<Option<Filesystem>, FsError> {
    let read_err = |source| FsError::Read {
        device: device.to_owned(),
        source,
    };
    if let Some(suspended) = crate::blockdev::suspended_under(device) {
        return Err(read_err(std::io::Error::other(format!(
            "device-mapper device {suspended} is suspended: reading would wait until it is \
             resumed (`cairn vg activate` of its VG, or `cairn up`)"
        ))));
    }
    let mut buf = Vec::with_capacity(4096);
    File::open(device)
        .map_err(read_err)?
        .take(4096)
        .read_to_end(&mut buf)
        .map_err(read_err)?;
    Ok(parse_superblock(&buf))
}

/// Decodes the superblock from the first bytes of a device.
fn parse_superblock(dev: &[u8]) -> Option<Filesystem> {
    let sb = dev.get(SUPERBLOCK_OFFSET..SUPERBLOCK_OFFSET + SUPERBLOCK_LEN)?;
    let u16_at = |o: usize| u16::from_le_bytes([sb[o], sb[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes([sb[o], sb[o + 1], sb[o + 2], sb[o + 3]]);
    if u16_at(56) != EXT_MAGIC {
        return None;
    }
    let compat = u32_at(92);
    let incompat = u32_at(96);
    let wide = incompat & INCOMPAT_64BIT != 0;
    let count = |lo: usize, hi: usize| {
        let high = if wide { u64::from(u32_at(hi)) } else { 0 };
        high << 32 | u64::from(u32_at(lo))
    };
    let kind = if incompat & (INCOMPAT_EXTENTS | INCOMPAT_FLEX_BG | INCOMPAT_64BIT) != 0 {
        "ext4"
    } else if compat & COMPAT_HAS_JOURNAL != 0 {
        "ext3"
    } else {
        "ext2"
    };
    let label = &sb[120..136];
    let label_len = label.iter().position(|&b| b == 0).unwrap_or(label.len());
    Some(Filesystem {
        kind,
        // s_log_block_size is at most 6 (64 KiB) on any valid filesystem;
        // the cap keeps a corrupt one from overflowing the shift.
        block_size: 1024u64 << u32_at(24).min(16),
        blocks_count: count(4, 0x150),
        free_blocks_count: count(12, 0x158),
        uuid: format_uuid(&sb[104..120]),
        label: String::from_utf8_lossy(&label[..label_len]).into_owned(),
    })
}

fn format_uuid(b: &[u8]) -> String {
    let hex =
        |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "{}-{}-{}-{}-{}",
        hex(0..4),
        hex(4..6),
        hex(6..8),
        hex(8..10),
        hex(10..16)
    )
}

/// Makes an ext4 filesystem on `device`, as `lxc-create -B lvm` does, with
/// e2fsprogs' defaults (`-F`: a regular image file or a device that held
/// something before is no reason to ask).
pub fn mkfs_ext4(device: &Path, label: Option<&str>) -> Result<(), FsError> {
    let mut args: Vec<&OsStr> = vec![OsStr::new("-q"), OsStr::new("-F")];
    if let Some(label) = label {
        args.extend([OsStr::new("-L"), OsStr::new(label)]);
    }
    args.push(device.as_os_str());
    run_e2fs(
        device,
        "mkfs.ext4",
        &args,
        "check that the device exists, is writable and is not mounted or open elsewhere",
    )
}

/// Grows the ext4 filesystem on `device` to the device's size (after the
/// volume under it grew). Works mounted (online resize) or not.
pub fn resize_ext4(device: &Path) -> Result<(), FsError> {
    run_e2fs(
        device,
        "resize2fs",
        &[device.as_os_str()],
        "if it asks for a check, run e2fsck -f on the unmounted device first",
    )
}

/// Grows an unmounted ext4 to its device: `e2fsck -f -p` first, as
/// resize2fs insists on a checked filesystem.
pub fn resize_ext4_offline(device: &Path) -> Result<(), FsError> {
    run_e2fs(
        device,
        "e2fsck",
        &[OsStr::new("-f"), OsStr::new("-p"), device.as_os_str()],
        "run e2fsck -f on the device yourself and look at what it reports",
    )?;
    resize_ext4(device)
}

nix::ioctl_write_ptr!(ext4_ioc_resize_fs, b'f', 16, u64);

/// Grows a mounted ext4 (on `device`) to the device's size through any
/// directory of it, `root` (a container's root as /proc/PID/root: the
/// filesystem is mounted in the container's namespace, where resize2fs
/// cannot find it). The ioctl is the one resize2fs uses for online growth.
pub fn grow_mounted_ext4(device: &Path, root: &Path) -> Result<(), FsError> {
    let online = |source: std::io::Error| FsError::OnlineResize {
        device: device.to_owned(),
        dir: root.to_owned(),
        source,
    };
    let fs = probe(device)?.ok_or_else(|| online(std::io::Error::other("no ext4 superblock")))?;
    let size = crate::blockdev::Device::open(device, false)
        .map_err(|e| online(std::io::Error::other(e.to_string())))?
        .size;
    let blocks = size / fs.block_size.max(1);
    if blocks <= fs.blocks_count {
        return Ok(());
    }
    let dir = File::open(root).map_err(online)?;
    // SAFETY: the ioctl reads one u64 from the pointer we pass.
    unsafe { ext4_ioc_resize_fs(std::os::fd::AsRawFd::as_raw_fd(&dir), &blocks) }
        .map_err(|e| online(std::io::Error::from(e)))?;
    Ok(())
}

/// Runs an e2fsprogs tool, its stderr in the error when it fails.
fn run_e2fs(
    device: &Path,
    tool: &'static str,
    args: &[&OsStr],
    hint: &'static str,
) -> Result<(), FsError> {
    let out = Command::new(sbin_tool(tool))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| FsError::Spawn {
            device: device.to_owned(),
            tool,
            source,
        })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(if out.stderr.is_empty() {
        &out.stdout
    } else {
        &out.stderr
    });
    Err(FsError::Tool {
        device: device.to_owned(),
        tool,
        status: out.status.to_string(),
        stderr: stderr.trim().to_owned(),
        hint,
    })
}

/// e2fsprogs live in /sbin, which a non-root PATH often lacks.
fn sbin_tool(tool: &str) -> PathBuf {
    ["/usr/sbin", "/sbin"]
        .iter()
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(tool))
}

/// A filesystem mounted by [`mount_temporarily`]: unmounted, and its mount
/// point removed, when dropped (errors then only warned about on stderr;
/// call [`Mounted::unmount`] to see them).
#[derive(Debug)]
pub struct Mounted {
    device: PathBuf,
    dir: PathBuf,
    mounted: bool,
}

/// Mounts `device` (read-write, nosuid, nodev: the host must not run or
/// open anything of a container's from there) on a fresh directory under
/// [`MOUNT_DIR`], to fill or inspect a container's root filesystem without
/// a mount point anyone else knows of.
pub fn mount_temporarily(device: &Path, fstype: &str) -> Result<Mounted, FsError> {
    let dir = fresh_mount_point(device)?;
    let flags = nix::libc::MS_NOSUID | nix::libc::MS_NODEV;
    if let Err(source) = sys_mount(device, &dir, fstype, flags) {
        let _ = std::fs::remove_dir(&dir);
        return Err(FsError::Mount {
            device: device.to_owned(),
            dir,
            fstype: fstype.to_owned(),
            source,
        });
    }
    Ok(Mounted {
        device: device.to_owned(),
        dir,
        mounted: true,
    })
}

/// Makes `MOUNT_DIR/<device name>.<pid>.<n>` (mode 0700), a name no other
/// call of this or another process uses.
fn fresh_mount_point(device: &Path) -> Result<PathBuf, FsError> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let err = |dir: &Path, source| FsError::MountPoint {
        device: device.to_owned(),
        dir: dir.to_owned(),
        source,
    };
    let base = Path::new(MOUNT_DIR);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(base)
        .and_then(|()| std::fs::set_permissions(base, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| err(base, e))?;
    let stem = device
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dev".to_owned());
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("{stem}.{}.{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(err(&dir, e)),
        }
    }
}

impl Mounted {
    /// Where the filesystem is mounted.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Unmounts and removes the mount point, reporting what failed (a
    /// process still using the filesystem, typically).
    pub fn unmount(mut self) -> Result<(), FsError> {
        self.release()
    }

    fn release(&mut self) -> Result<(), FsError> {
        if !self.mounted {
            return Ok(());
        }
        sys_umount(&self.dir).map_err(|source| FsError::Unmount {
            device: self.device.clone(),
            dir: self.dir.clone(),
            source,
        })?;
        self.mounted = false;
        std::fs::remove_dir(&self.dir).map_err(|source| FsError::RemoveMountPoint {
            device: self.device.clone(),
            dir: self.dir.clone(),
            source,
        })
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = self.release() {
            crate::warnings::record(e);
        }
    }
}

fn c_path(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
}

// nix's safe mount(2) wrappers sit behind its "mount" feature, which
// cairn's Cargo.toml does not enable; these two calls go through the libc
// that nix re-exports instead.
fn sys_mount(
    device: &Path,
    dir: &Path,
    fstype: &str,
    flags: nix::libc::c_ulong,
) -> std::io::Result<()> {
    let (src, target) = (c_path(device)?, c_path(dir)?);
    let fstype =
        CString::new(fstype).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: every pointer is a NUL-terminated string alive for the call;
    // data may be NULL.
    let rc = unsafe {
        nix::libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            std::ptr::null(),
        )
    };
    nix::errno::Errno::result(rc)
        .map(drop)
        .map_err(std::io::Error::from)
}

fn sys_umount(dir: &Path) -> std::io::Result<()> {
    let target = c_path(dir)?;
    // SAFETY: target is a NUL-terminated string alive for the call.
    let rc = unsafe { nix::libc::umount2(target.as_ptr(), 0) };
    nix::errno::Errno::result(rc)
        .map(drop)
        .map_err(std::io::Error::from)
}

/// Replaces the file `target` with `bytes` (mode `mode`) so that a crash
/// leaves the old file or the new one, never a torn one: a temporary file
/// `tmp_name` in the same directory, fsync, rename, fsync of the directory.
pub fn replace_file(target: &Path, bytes: &[u8], mode: u32, tmp_name: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = target.parent().unwrap_or(Path::new("/"));
    let tmp = dir.join(tmp_name);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, target)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn scratch_file(tag: &str, len: u64) -> PathBuf {
        let path = std::env::temp_dir().join(format!("cairn-fs-{tag}-{}", std::process::id()));
        let f = File::create(&path).unwrap();
        f.set_len(len).unwrap();
        path
    }

    fn have_mkfs() -> bool {
        let found = sbin_tool("mkfs.ext4").is_absolute();
        if !found {
            eprintln!(
                "note: mkfs.ext4 not found in /sbin or /usr/sbin; test skipped (install e2fsprogs)"
            );
        }
        found
    }

    /// The "Filesystem UUID:" line of `dumpe2fs -h`.
    fn dumpe2fs_uuid(image: &Path) -> String {
        let out = Command::new(sbin_tool("dumpe2fs"))
            .arg("-h")
            .arg(image)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("Filesystem UUID:"))
            .unwrap_or_else(|| panic!("no UUID line in dumpe2fs -h output:\n{text}"))
            .trim()
            .to_owned()
    }

    #[test]
    fn probe_reads_what_mkfs_wrote() {
        if !have_mkfs() {
            return;
        }
        let image = scratch_file("probe", 16 * MIB);
        mkfs_ext4(&image, Some("testlabel")).unwrap();
        let fs = probe(&image).unwrap().expect("an ext4 filesystem");
        assert_eq!(fs.kind, "ext4");
        assert_eq!(fs.label, "testlabel");
        assert_eq!(fs.size_bytes(), 16 * MIB);
        assert!(fs.free_blocks_count > 0 && fs.free_blocks_count < fs.blocks_count);
        assert_eq!(fs.uuid, dumpe2fs_uuid(&image));
        std::fs::remove_file(&image).unwrap();
    }

    #[test]
    fn resize_grows_to_the_file_size() {
        if !have_mkfs() {
            return;
        }
        let image = scratch_file("resize", 16 * MIB);
        mkfs_ext4(&image, None).unwrap();
        let before = probe(&image).unwrap().unwrap();
        assert_eq!(before.label, "");
        File::options()
            .write(true)
            .open(&image)
            .unwrap()
            .set_len(32 * MIB)
            .unwrap();
        resize_ext4(&image).unwrap();
        let after = probe(&image).unwrap().unwrap();
        assert_eq!(after.blocks_count, 2 * before.blocks_count);
        assert_eq!(after.uuid, before.uuid);
        std::fs::remove_file(&image).unwrap();
    }

    #[test]
    fn no_filesystem_is_none() {
        let image = scratch_file("zero", MIB);
        assert_eq!(probe(&image).unwrap(), None);
        std::fs::remove_file(&image).unwrap();
        assert_eq!(parse_superblock(&[0u8; 100]), None, "too short");
    }

    #[test]
    fn missing_device_is_an_error_naming_it() {
        let e = probe(Path::new("/nonexistent/cairn-dev")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/cairn-dev"), "{e}");
    }

    #[test]
    fn mkfs_failure_carries_its_stderr() {
        if !have_mkfs() {
            return;
        }
        let e = mkfs_ext4(Path::new("/nonexistent/cairn-dev"), None).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, FsError::Tool { .. }), "{msg}");
        assert!(
            msg.contains("mkfs.ext4 failed") && msg.contains("/nonexistent/cairn-dev"),
            "{msg}"
        );
    }

    /// A synthetic superblock: kind from the feature flags, 64-bit counts,
    /// label and uuid.
    #[test]
    fn superblock_fields() {
        let mut dev = vec![0u8; 4096];
        let sb = &mut dev[SUPERBLOCK_OFFSET..SUPERBLOCK_OFFSET + SUPERBLOCK_LEN];
        sb[56..58].copy_from_slice(&EXT_MAGIC.to_le_bytes());
        sb[4..8].copy_from_slice(&7u32.to_le_bytes());
        sb[0x150..0x154].copy_from_slice(&1u32.to_le_bytes());
        sb[24..28].copy_from_slice(&2u32.to_le_bytes());
        sb[104..120].copy_from_slice(&(0u8..16).collect::<Vec<_>>());
        sb[120..136].copy_from_slice(b"sixteen-bytes-ok");
        let fs = parse_superblock(&dev).unwrap();
        assert_eq!((fs.kind, fs.block_size, fs.blocks_count), ("ext2", 4096, 7));
        assert_eq!(fs.uuid, "00010203-0405-0607-0809-0a0b0c0d0e0f");
        assert_eq!(fs.label, "sixteen-bytes-ok");

        let set = |dev: &mut Vec<u8>, off: usize, v: u32| {
            dev[SUPERBLOCK_OFFSET + off..SUPERBLOCK_OFFSET + off + 4]
                .copy_from_slice(&v.to_le_bytes())
        };
        set(&mut dev, 92, COMPAT_HAS_JOURNAL);
        assert_eq!(parse_superblock(&dev).unwrap().kind, "ext3");
        set(&mut dev, 96, INCOMPAT_64BIT);
        let fs = parse_superblock(&dev).unwrap();
        assert_eq!((fs.kind, fs.blocks_count), ("ext4", (1 << 32) + 7));
        set(&mut dev, 96, INCOMPAT_EXTENTS);
        assert_eq!(
            parse_superblock(&dev).unwrap().blocks_count,
            7,
            "hi ignored without 64bit"
        );
    }
}
