//! A block node only cairn can reach, for writing through a temporary
//! device before it has a public name (zeroing a new pool's metadata, a
//! cache pool's, a COW's header).
//!
//! A node at a predictable path in a shared directory (`$TMPDIR/cairn-...`)
//! could be a symlink or another device's node planted there by someone
//! else, and cairn would write zeros through it. This one lives in a fresh
//! directory of mode 0700 made by mkdtemp (no other user can create
//! anything in it), is made with mknod (which refuses an existing path and
//! never follows a symlink), is opened without following symlinks and
//! checked to be the device asked for, and goes with its directory on drop.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{major, makedev, minor, mknod, Mode, SFlag};

/// Where a scratch node's directory goes, first that works: /dev, which is
/// made for nodes (a /tmp mounted `nodev`, as systemd mounts it, makes a
/// node there unopenable), then the temp dir.
pub fn default_parents() -> Vec<PathBuf> {
    vec![PathBuf::from("/dev"), std::env::temp_dir()]
}

/// A block node in a private directory, removed (with the directory) on drop.
#[derive(Debug)]
pub struct ScratchNode {
    dir: PathBuf,
    path: PathBuf,
    devno: (u32, u32),
}

impl ScratchNode {
    /// A node for `major:minor` named `name` in a new private directory
    /// under the first of `parents` where one can be made.
    pub fn new(parents: &[PathBuf], name: &str, maj: u32, min: u32) -> io::Result<ScratchNode> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name:?} is not a file name"),
            ));
        }
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no directory to make it in");
        for parent in parents {
            match nix::unistd::mkdtemp(&parent.join(".cairn-XXXXXX")) {
                Ok(dir) => {
                    let node = ScratchNode {
                        path: dir.join(name),
                        dir,
                        devno: (maj, min),
                    };
                    // On failure, the drop removes the directory.
                    make_new_node(&node.path, maj, min)?;
                    return Ok(node);
                }
                Err(e) => last = io::Error::from(e),
            }
        }
        Err(last)
    }

    /// Where the node is (the tests check what is made there).
    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The node opened for writing, checked to be the device it was made
    /// for.
    pub fn open_write(&self) -> io::Result<File> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&self.path)?;
        check_device(&f.metadata()?, self.devno)?;
        Ok(f)
    }
}

impl Drop for ScratchNode {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Makes a block node at `path` (mode 0600) and refuses whatever is
/// already there: a file, a node, a symlink (mknod does not follow one).
pub fn make_new_node(path: &Path, maj: u32, min: u32) -> io::Result<()> {
    mknod(
        path,
        SFlag::S_IFBLK,
        Mode::from_bits_truncate(0o600),
        makedev(maj.into(), min.into()),
    )
    .map_err(io::Error::from)
}

fn check_device(meta: &std::fs::Metadata, devno: (u32, u32)) -> io::Result<()> {
    let found = (major(meta.rdev()) as u32, minor(meta.rdev()) as u32);
    if !meta.file_type().is_block_device() || found != devno {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the scratch node is not block device {}:{} (found {}:{})",
                devno.0, devno.1, found.0, found.1
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// /dev/null's numbers are those of a char device: the tests make a
    /// block node of the loop driver's major with a minor no loop device
    /// uses, which is never opened (opening it would need the device).
    const MAJ: u32 = 7;
    const MIN: u32 = 999_999;

    fn scratch(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("cairn-scratchnode-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn the_node_is_private_and_goes_with_its_directory() {
        if !root() {
            eprintln!("skipped: mknod needs root");
            return;
        }
        let parent = scratch("private");
        let node = ScratchNode::new(
            std::slice::from_ref(&parent),
            "vg-pool_tmeta-zero",
            MAJ,
            MIN,
        )
        .unwrap();
        let dir = node.path().parent().unwrap().to_path_buf();
        assert_eq!(dir.parent().unwrap(), parent);
        let dir_meta = std::fs::symlink_metadata(&dir).unwrap();
        assert_eq!(dir_meta.permissions().mode() & 0o777, 0o700);
        let meta = std::fs::symlink_metadata(node.path()).unwrap();
        assert!(meta.file_type().is_block_device());
        assert_eq!(
            (major(meta.rdev()), minor(meta.rdev())),
            (MAJ.into(), MIN.into())
        );
        // A second node of the same name gets its own directory.
        let other = ScratchNode::new(
            std::slice::from_ref(&parent),
            "vg-pool_tmeta-zero",
            MAJ,
            MIN,
        )
        .unwrap();
        assert_ne!(other.path(), node.path());
        drop(node);
        drop(other);
        assert!(!dir.exists(), "directory left behind");
        assert_eq!(std::fs::read_dir(&parent).unwrap().count(), 0);
        std::fs::remove_dir_all(&parent).unwrap();
    }

    #[test]
    fn a_planted_path_is_refused_and_left_alone() {
        let dir = scratch("planted");
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        // A symlink to a file, a dangling symlink, a file: mknod refuses
        // each (EEXIST comes before the permission check, so this holds
        // without root too) and writes nothing through them.
        let link = dir.join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let dangling = dir.join("dangling");
        std::os::unix::fs::symlink(dir.join("absent"), &dangling).unwrap();
        for path in [&link, &dangling, &victim] {
            let e = make_new_node(path, MAJ, MIN).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{}", path.display());
        }
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!dir.join("absent").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn opening_checks_the_device() {
        if !root() {
            eprintln!("skipped: mknod needs root");
            return;
        }
        let parent = scratch("check");
        let node = ScratchNode::new(std::slice::from_ref(&parent), "x", MAJ, MIN).unwrap();
        // Swapped for another node behind cairn's back: refused.
        std::fs::remove_file(node.path()).unwrap();
        std::fs::write(node.path(), "").unwrap();
        let e = node.open_write().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        // A symlink there is not followed.
        std::fs::remove_file(node.path()).unwrap();
        std::os::unix::fs::symlink("/dev/null", node.path()).unwrap();
        assert!(node.open_write().is_err());
        drop(node);
        std::fs::remove_dir_all(&parent).unwrap();
    }

    #[test]
    fn bad_names_and_unusable_parents_are_refused() {
        for name in ["", "a/b", ".", ".."] {
            assert!(ScratchNode::new(&[std::env::temp_dir()], name, MAJ, MIN).is_err());
        }
        let absent = [PathBuf::from("/nonexistent-cairn-dir")];
        assert!(ScratchNode::new(&absent, "x", MAJ, MIN).is_err());
    }
}
