//! What a device holds, as `blkid -p` and `wipefs -n` name it: every
//! signature libblkid knows (filesystems, RAID and volume-manager members
//! such as md 0.90/1.0/1.2, LVM2, ZFS, bcache, ceph, DRBD metadata at the
//! end of the device, swap, LUKS, squashfs, iso9660, partition tables, ...).
//! Before cairn writes a label or metadata over a device it asks here, so
//! that nothing another tool made is overwritten unless the user says so.
//!
//! libblkid is the detector lvm2 (pvcreate), mkfs and wipefs use; a hand
//! list of magics would always lag behind it. It is linked statically like
//! the rest of cairn (Debian's libblkid-dev ships libblkid.a; its only
//! dependency is libc), and only its low-level probing is used: no cache
//! file, no configuration, nothing written.

use std::ffi::{c_char, c_int, CStr};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// One signature found on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// blkid's TYPE (superblocks) or PTTYPE (partition tables): "ext4",
    /// "LVM2_member", "linux_raid_member", "drbd", "gpt", ...
    pub kind: String,
    /// blkid's USAGE ("filesystem", "raid", "crypto", "other"), or
    /// "partition table".
    pub usage: String,
    /// Where the magic lies, in bytes from the start of the device.
    pub offset: Option<u64>,
    /// The magic's length: zeroing `offset..offset + magic_len` erases the
    /// signature, as `wipefs` does.
    pub magic_len: usize,
    /// blkid's LABEL: the filesystem's or array's name, when it has one.
    pub label: Option<String>,
}

impl Signature {
    /// For messages, as blkid names it: `ext4 (filesystem, label "data")
    /// at byte 1080`.
    pub fn describe(&self) -> String {
        let mut s = format!("{} ({}", self.kind, self.usage);
        if let Some(l) = self.label.as_deref().filter(|l| !l.is_empty()) {
            s.push_str(&format!(", label {l:?}"));
        }
        s.push(')');
        if let Some(o) = self.offset {
            s.push_str(&format!(" at byte {o}"));
        }
        s
    }
}

/// The signatures as one phrase, for refusals.
pub fn describe_all(found: &[Signature]) -> String {
    found
        .iter()
        .map(Signature::describe)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a device's signatures could not be read: then nothing is known
/// of it, and callers refuse to write over it.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// The device could not be opened for reading.
    #[error("{path}: cannot open to look for signatures: {source}")]
    Open {
        /// The device.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// libblkid failed (set up its probe, or read the device).
    #[error("{path}: libblkid could not {what}")]
    Probe {
        /// The device.
        path: PathBuf,
        /// What it could not do, as the message's verb phrase.
        what: &'static str,
    },
    /// A suspended device-mapper device lies under the device: it was not
    /// read, since the read would hang until the device is resumed.
    #[error(
        "{path} was not read: device-mapper device {suspended} is suspended and reading would \
         wait until it is resumed (`cairn vg activate` of its VG, or `cairn up`)"
    )]
    Suspended {
        /// The device.
        path: PathBuf,
        /// The suspended device-mapper device's name.
        suspended: String,
    },
}

/// The signatures on `path` (a block device or an image file), in
/// libblkid's order: superblocks first, then partition tables. The device
/// is opened read-only and buffered (libblkid's reads are not O_DIRECT
/// aligned); a caller may hold it open O_EXCL meanwhile.
pub fn probe(path: &Path) -> Result<Vec<Signature>, SignatureError> {
    if let Some(suspended) = crate::blockdev::suspended_under(path) {
        return Err(SignatureError::Suspended {
            path: path.to_owned(),
            suspended,
        });
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_CLOEXEC | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|source| SignatureError::Open {
            path: path.to_owned(),
            source,
        })?;
    let fail = |what| SignatureError::Probe {
        path: path.to_owned(),
        what,
    };
    let pr = Probe::new().ok_or_else(|| fail("allocate a probe"))?;
    // SAFETY: pr is a live probe; the fd stays open (file) until pr is freed
    // (pr is dropped first: declared after file).
    unsafe {
        if ffi::blkid_probe_set_device(pr.0, file.as_raw_fd(), 0, 0) != 0 {
            return Err(fail("read the device's size"));
        }
        // wipefs's choice: signatures with a bad checksum count too (a torn
        // superblock still means data lies there).
        let sb_flags = ffi::BLKID_SUBLKS_TYPE
            | ffi::BLKID_SUBLKS_USAGE
            | ffi::BLKID_SUBLKS_LABEL
            | ffi::BLKID_SUBLKS_MAGIC
            | ffi::BLKID_SUBLKS_BADCSUM;
        if ffi::blkid_probe_enable_superblocks(pr.0, 1) != 0
            || ffi::blkid_probe_set_superblocks_flags(pr.0, sb_flags) != 0
            || ffi::blkid_probe_enable_partitions(pr.0, 1) != 0
            || ffi::blkid_probe_set_partitions_flags(pr.0, ffi::BLKID_PARTS_MAGIC) != 0
        {
            return Err(fail("set up probing"));
        }
    }
    let mut found = Vec::new();
    loop {
        // SAFETY: as above. Each call runs the next prober of the enabled
        // chains and keeps one result: 0 found, 1 done, negative error.
        match unsafe { ffi::blkid_do_probe(pr.0) } {
            0 => {}
            1 => break,
            _ => return Err(fail("read the device")),
        }
        let (kind, usage, offset, magic_len) = match pr.value(c"TYPE") {
            Some(t) => (
                t,
                pr.value(c"USAGE").unwrap_or_else(|| "other".into()),
                pr.value(c"SBMAGIC_OFFSET"),
                pr.len(c"SBMAGIC"),
            ),
            None => match pr.value(c"PTTYPE") {
                Some(t) => (
                    t,
                    "partition table".into(),
                    pr.value(c"PTMAGIC_OFFSET"),
                    pr.len(c"PTMAGIC"),
                ),
                None => continue,
            },
        };
        found.push(Signature {
            kind,
            usage,
            offset: offset.and_then(|o| o.parse().ok()),
            magic_len: magic_len.unwrap_or(0),
            label: pr.value(c"LABEL"),
        });
    }
    Ok(found)
}

/// A libblkid probe, freed on drop.
struct Probe(*mut ffi::BlkidProbe);

impl Probe {
    fn new() -> Option<Probe> {
        // SAFETY: no arguments; null on allocation failure.
        let p = unsafe { ffi::blkid_new_probe() };
        (!p.is_null()).then_some(Probe(p))
    }

    /// The value `name` of the current result.
    fn value(&self, name: &CStr) -> Option<String> {
        let mut data: *const c_char = std::ptr::null();
        // SAFETY: the probe is live; on success data points to a
        // NUL-terminated string owned by the probe, copied out at once.
        unsafe {
            if ffi::blkid_probe_lookup_value(self.0, name.as_ptr(), &mut data, std::ptr::null_mut())
                != 0
                || data.is_null()
            {
                return None;
            }
            Some(CStr::from_ptr(data).to_string_lossy().into_owned())
        }
    }
}

impl Probe {
    /// The length of the binary value `name` (a magic) of the current result.
    fn len(&self, name: &CStr) -> Option<usize> {
        let mut data: *const c_char = std::ptr::null();
        let mut len = 0usize;
        // SAFETY: as in value(); len receives the value's size.
        let rc =
            unsafe { ffi::blkid_probe_lookup_value(self.0, name.as_ptr(), &mut data, &mut len) };
        (rc == 0).then_some(len)
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        // SAFETY: allocated by blkid_new_probe, freed once.
        unsafe { ffi::blkid_free_probe(self.0) }
    }
}

/// The few libblkid calls used (blkid.h, util-linux >= 2.23).
mod ffi {
    use super::{c_char, c_int};

    #[repr(C)]
    pub struct BlkidProbe {
        _opaque: [u8; 0],
    }

    pub const BLKID_SUBLKS_LABEL: c_int = 1 << 1;
    pub const BLKID_SUBLKS_TYPE: c_int = 1 << 5;
    pub const BLKID_SUBLKS_USAGE: c_int = 1 << 7;
    pub const BLKID_SUBLKS_MAGIC: c_int = 1 << 9;
    pub const BLKID_SUBLKS_BADCSUM: c_int = 1 << 10;
    pub const BLKID_PARTS_MAGIC: c_int = 1 << 3;

    #[link(name = "blkid")]
    extern "C" {
        pub fn blkid_new_probe() -> *mut BlkidProbe;
        pub fn blkid_free_probe(pr: *mut BlkidProbe);
        pub fn blkid_probe_set_device(pr: *mut BlkidProbe, fd: c_int, off: i64, size: i64)
            -> c_int;
        pub fn blkid_probe_enable_superblocks(pr: *mut BlkidProbe, enable: c_int) -> c_int;
        pub fn blkid_probe_set_superblocks_flags(pr: *mut BlkidProbe, flags: c_int) -> c_int;
        pub fn blkid_probe_enable_partitions(pr: *mut BlkidProbe, enable: c_int) -> c_int;
        pub fn blkid_probe_set_partitions_flags(pr: *mut BlkidProbe, flags: c_int) -> c_int;
        pub fn blkid_do_probe(pr: *mut BlkidProbe) -> c_int;
        pub fn blkid_probe_lookup_value(
            pr: *mut BlkidProbe,
            name: *const c_char,
            data: *mut *const c_char,
            len: *mut usize,
        ) -> c_int;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(name: &str, bytes: usize) -> PathBuf {
        let path = std::env::temp_dir().join(format!("cairn-sig-{name}-{}", std::process::id()));
        std::fs::write(&path, vec![0u8; bytes]).unwrap();
        path
    }

    fn put(path: &Path, offset: u64, data: &[u8]) {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.write_all_at(data, offset).unwrap();
    }

    #[test]
    fn a_zeroed_device_holds_nothing() {
        let p = image("zero", 8 << 20);
        assert_eq!(probe(&p).unwrap(), vec![]);
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn swap_and_drbd_metadata_at_the_end_are_named() {
        let p = image("swap", 8 << 20);
        // mkswap's signature: the page's last 10 bytes, with a version-1
        // header (version 1, last page) that libblkid checks.
        put(&p, 1024, &1u32.to_le_bytes());
        put(&p, 1028, &((8u32 << 20) / 4096 - 1).to_le_bytes());
        put(&p, 4086, b"SWAPSPACE2");
        let found = probe(&p).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].kind.as_str(), found[0].offset, found[0].magic_len),
            ("swap", Some(4086), 10)
        );
        std::fs::remove_file(&p).unwrap();

        // DRBD v08 metadata lives in the device's last 4 KiB: the magic
        // sits 64 bytes into that superblock.
        let size = 64u64 << 20;
        let p = image("drbd", size as usize);
        let tail = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/drbd/created.md"
        ))
        .unwrap();
        put(&p, size - tail.len() as u64, &tail);
        let found = probe(&p).unwrap();
        assert!(
            found.iter().any(|s| s.kind == "drbd"),
            "v08 metadata at the end of the device: {found:?}"
        );
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn a_missing_device_is_an_error_that_names_it() {
        let e = probe(Path::new("/nonexistent/cairn")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/cairn"), "{e}");
    }
}
