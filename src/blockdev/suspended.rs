//! Which suspended device-mapper device I/O to a device would wait on,
//! read from sysfs's graph of block devices.
//!
//! A whole-host scan asks this of every block device, and the devices of a
//! stack share most of what lies below them (every thin LV stands on the
//! same pool, DRBD device and RAID): walking sysfs afresh for each made a
//! scan quadratic in the number of LVs (about 100 ms more per thin LV in
//! the lab, with 50 LVs in the pool). [`SysfsGraph`] reads each device's
//! sysfs entries once and answers every question of one scan from them.

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// A block device's number (major, minor).
type Devno = (u32, u32);

/// What one device's sysfs entry says, as far as suspension goes.
#[derive(Debug, Clone, Default)]
struct Node {
    /// Its dm name, when it is a suspended dm device.
    suspended: Option<String>,
    /// A DRBD device (sysfs's link to it names a drbd device).
    drbd: bool,
    /// The devices it stands on (`slaves`).
    slaves: Vec<Devno>,
}

/// sysfs's block-device graph, read lazily and once per device. Lives as
/// long as one scan. Whether any dm device is suspended at all is looked
/// at again when the last look is older than 50 ms; the walk below a
/// device reads each device's entries once per graph (a device suspended
/// after that is not seen, as with any check made before a read).
#[derive(Debug)]
pub struct SysfsGraph {
    root: PathBuf,
    nodes: HashMap<Devno, Node>,
    /// The dm devices nothing in sysfs holds, once listed.
    unheld_dm: Option<Vec<Devno>>,
    /// For each DRBD device asked about: the suspended dm device it may be on.
    under_drbd: HashMap<Devno, Option<String>>,
    /// Whether any dm device is suspended at all, and when that was
    /// looked at: almost never, and then no device needs its walk.
    any_suspended: Option<(bool, std::time::Instant)>,
}

impl Default for SysfsGraph {
    fn default() -> Self {
        Self::at("/sys")
    }
}

impl SysfsGraph {
    /// The graph of the sysfs mounted at `root` (`/sys`, or a copy in a test).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        SysfsGraph {
            root: root.into(),
            nodes: HashMap::new(),
            unheld_dm: None,
            under_drbd: HashMap::new(),
            any_suspended: None,
        }
    }

    /// The name of a suspended device-mapper device that I/O to `path`
    /// would wait on, if there is one: `path` itself, a device under it
    /// (sysfs `slaves`, transitively), or, for a DRBD device, any suspended
    /// dm device that nothing in sysfs holds (DRBD registers no holder
    /// links, so its backing device cannot be told from sysfs; such a
    /// device may be it). Nothing for a path that is not a block device.
    pub fn suspended_under(&mut self, path: &Path) -> Option<String> {
        if !self.any_suspended() {
            return None;
        }
        let meta = std::fs::metadata(path).ok()?;
        if !meta.file_type().is_block_device() {
            return None;
        }
        let rdev = meta.rdev();
        self.suspended_under_devno((
            nix::sys::stat::major(rdev) as u32,
            nix::sys::stat::minor(rdev) as u32,
        ))
    }

    /// [`SysfsGraph::suspended_under`] by device number.
    pub fn suspended_under_devno(&mut self, devno: Devno) -> Option<String> {
        if !self.any_suspended() {
            return None;
        }
        let mut todo = vec![devno];
        let mut seen = Vec::new();
        while let Some(d) = todo.pop() {
            if seen.contains(&d) {
                continue;
            }
            seen.push(d);
            let node = self.node(d);
            if node.suspended.is_some() {
                return node.suspended;
            }
            if node.drbd {
                if let Some(name) = self.suspended_under_drbd(d) {
                    return Some(name);
                }
            }
            todo.extend(node.slaves);
        }
        None
    }

    /// A suspended dm device in or under a dm device that nothing holds
    /// (so one DRBD may have as its backing disk) and that does not stand
    /// on `drbd` (one above it cannot be under it).
    fn suspended_under_drbd(&mut self, drbd: Devno) -> Option<String> {
        if let Some(known) = self.under_drbd.get(&drbd) {
            return known.clone();
        }
        let mut found = None;
        for top in self.unheld_dm() {
            if self.stands_on(top, drbd) {
                continue;
            }
            let mut todo = vec![top];
            while let Some(d) = todo.pop() {
                let node = self.node(d);
                if node.suspended.is_some() {
                    found = node.suspended;
                    break;
                }
                todo.extend(node.slaves);
            }
            if found.is_some() {
                break;
            }
        }
        self.under_drbd.insert(drbd, found.clone());
        found
    }

    /// Whether `top` stands on `below` (through `slaves`, transitively).
    fn stands_on(&mut self, top: Devno, below: Devno) -> bool {
        let mut todo = self.node(top).slaves;
        let mut seen = Vec::new();
        while let Some(d) = todo.pop() {
            if d == below {
                return true;
            }
            if !seen.contains(&d) {
                seen.push(d);
                todo.extend(self.node(d).slaves);
            }
        }
        false
    }

    /// Whether some dm device (`/sys/block/dm-N`) is suspended: one read
    /// per dm device, instead of a walk per device asked about.
    fn any_suspended(&mut self) -> bool {
        // Looked again when older than this: a long scan must not miss a
        // device another command suspended meanwhile for longer than a
        // moment (one pass per scan would; one per device would make a
        // whole-host scan quadratic again).
        const FRESH: std::time::Duration = std::time::Duration::from_millis(50);
        if let Some((known, at)) = self.any_suspended {
            if at.elapsed() < FRESH {
                return known;
            }
        }
        let block = self.root.join("block");
        let any = std::fs::read_dir(block)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("dm-"))
            .any(|e| {
                std::fs::read_to_string(e.path().join("dm/suspended"))
                    .is_ok_and(|v| v.trim() == "1")
            });
        self.any_suspended = Some((any, std::time::Instant::now()));
        any
    }

    /// The dm devices in `/sys/block` that no device holds.
    fn unheld_dm(&mut self) -> Vec<Devno> {
        if let Some(known) = &self.unheld_dm {
            return known.clone();
        }
        let mut out = Vec::new();
        let block = self.root.join("block");
        for entry in std::fs::read_dir(block).into_iter().flatten().flatten() {
            let dir = entry.path();
            if !dir.join("dm").exists() || !links(&dir.join("holders")).is_empty() {
                continue;
            }
            if let Some(devno) = read_devno(&dir.join("dev")) {
                out.push(devno);
            }
        }
        self.unheld_dm = Some(out.clone());
        out
    }

    /// The device's entry, read on first use.
    fn node(&mut self, devno: Devno) -> Node {
        if let Some(node) = self.nodes.get(&devno) {
            return node.clone();
        }
        let dir = self.root.join(format!("dev/block/{}:{}", devno.0, devno.1));
        let suspended = std::fs::read_to_string(dir.join("dm/suspended"))
            .ok()
            .filter(|s| s.trim() == "1")
            .map(|_| {
                std::fs::read_to_string(dir.join("dm/name"))
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            });
        let drbd = std::fs::read_link(&dir).is_ok_and(|t| t.to_string_lossy().contains("/drbd"));
        let node = Node {
            suspended,
            drbd,
            slaves: links(&dir.join("slaves")),
        };
        self.nodes.insert(devno, node.clone());
        node
    }
}

/// [`SysfsGraph::suspended_under`] with a graph of its own: for one device.
/// Reading would block until somebody resumes the device, so every reader
/// of devices it does not own looks here first.
pub fn suspended_under(path: &Path) -> Option<String> {
    SysfsGraph::default().suspended_under(path)
}

/// The device numbers of the block devices linked from a sysfs directory
/// (`slaves`, `holders`).
fn links(dir: &Path) -> Vec<Devno> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| read_devno(&entry.path().join("dev")))
        .collect()
}

/// A sysfs `dev` file: `major:minor`.
fn read_devno(path: &Path) -> Option<Devno> {
    let text = std::fs::read_to_string(path).ok()?;
    let (a, b) = text.trim().split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

#[cfg(test)]
mod tests;
