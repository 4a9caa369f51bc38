//! Device nodes for device-mapper devices where no udev makes them (the lab's
//! VMs, appliances, early boot), as libdm does with udev rules off:
//! `/dev/mapper/<name>`, a block node of mode 0660 owned by root:disk, and
//! absolute symlinks to it (lvm2's `/dev/<vg>/<lv>`). Every function takes
//! the `/dev` root so tests can use a scratch directory.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{major, makedev, minor, mknod, Mode, SFlag};

/// The group lvm2 (Debian's build) gives the nodes: `disk`. Read from
/// /etc/group directly: a static binary cannot load glibc's NSS modules.
fn disk_gid() -> u32 {
    std::fs::read_to_string("/etc/group")
        .ok()
        .and_then(|groups| {
            groups.lines().find_map(|l| {
                let mut f = l.split(':');
                (f.next() == Some("disk"))
                    .then(|| f.nth(1).and_then(|gid| gid.parse().ok()))
                    .flatten()
            })
        })
        .unwrap_or(6)
}

fn node_path(root: &Path, name: &str) -> PathBuf {
    root.join("mapper").join(name)
}

/// Where a `/dev/...` path lands under `root`.
pub(crate) fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.strip_prefix("/dev/").unwrap_or(path))
}

/// The `major:minor` of a block device node.
pub fn block_device_number(path: &Path) -> io::Result<(u32, u32)> {
    let meta = std::fs::metadata(path)?;
    if !meta.file_type().is_block_device() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a block device",
        ));
    }
    let rdev = meta.rdev();
    Ok((major(rdev) as u32, minor(rdev) as u32))
}

/// Makes `/dev/mapper/<name>` for `major:minor`, replacing a stale node.
pub fn make_node(root: &Path, name: &str, maj: u32, min: u32) -> io::Result<()> {
    make_node_at(&node_path(root, name), maj, min)
}

/// Makes a block node at `path` (0660 root:disk), replacing a stale one.
pub fn make_node_at(path: &Path, maj: u32, min: u32) -> io::Result<()> {
    let path = path.to_path_buf();
    if let Ok((a, b)) = block_device_number(&path) {
        if (a, b) == (maj, min) {
            return Ok(());
        }
    }
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::create_dir_all(path.parent().expect("mapper dir"))?;
    match mknod(
        &path,
        SFlag::S_IFBLK,
        Mode::from_bits_truncate(0o660),
        makedev(maj.into(), min.into()),
    ) {
        // Made meanwhile by someone else (udev): fine if it is this device.
        Err(nix::errno::Errno::EEXIST)
            if block_device_number(&path).is_ok_and(|n| n == (maj, min)) =>
        {
            return Ok(())
        }
        r => r.map_err(io::Error::from)?,
    }
    // mknod honours the umask: set the mode lvm2 sets, then the owner.
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o660))?;
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(&path, Some(0), Some(disk_gid()))?;
    }
    Ok(())
}

/// Removes `/dev/mapper/<name>` (absent is fine).
pub fn remove_node(root: &Path, name: &str) -> io::Result<()> {
    match std::fs::remove_file(node_path(root, name)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Whether the symlink `link` points at `/dev/mapper/<name>`.
pub fn link_points_to(root: &Path, link: &str, name: &str) -> bool {
    std::fs::read_link(under(root, link)).is_ok_and(|t| t == Path::new("/dev/mapper").join(name))
}

/// Makes the symlink `link` (a `/dev/...` path) to `/dev/mapper/<name>`.
pub fn make_link(root: &Path, link: &str, name: &str) -> io::Result<()> {
    let path = under(root, link);
    let target = PathBuf::from("/dev/mapper").join(name);
    if link_points_to(root, link, name) {
        return Ok(());
    }
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::os::unix::fs::symlink(target, &path)
}

/// Removes the symlink `link`, and its directory once empty (lvm2 removes
/// `/dev/<vg>` with the VG's last link).
pub fn remove_link(root: &Path, link: &str) -> io::Result<()> {
    let path = under(root, link);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    if let Some(dir) = path.parent() {
        if dir != root {
            // Not empty, or gone: either way nothing to do.
            let _ = std::fs::remove_dir(dir);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_absolute_replace_stale_ones_and_take_their_directory_along() {
        let root = std::env::temp_dir().join(format!("cairn-nodes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        make_link(&root, "/dev/vg/lv", "vg-old").unwrap();
        make_link(&root, "/dev/vg/lv", "vg-lv").unwrap();
        assert_eq!(
            std::fs::read_link(root.join("vg/lv")).unwrap(),
            Path::new("/dev/mapper/vg-lv")
        );
        make_link(&root, "/dev/vg/other", "vg-other").unwrap();
        remove_link(&root, "/dev/vg/lv").unwrap();
        assert!(root.join("vg").is_dir(), "vg/other is still there");
        remove_link(&root, "/dev/vg/other").unwrap();
        assert!(!root.join("vg").exists(), "the empty VG directory goes");
        remove_link(&root, "/dev/vg/other").unwrap();
        remove_node(&root, "absent").unwrap();
        let e = block_device_number(&root).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
