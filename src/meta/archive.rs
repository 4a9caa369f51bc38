//! Copies of previous metadata, where lvm2 keeps them, so `vgcfgrestore`
//! can bring a VG back: before each change the old text goes to
//! `<archive>/<vg>_<NNNNN>-<random>.vg`, after it the new text to
//! `<backup>/<vg>`. Unlike lvm2's archive, which grows without bound on busy
//! hosts (100k files is a known pain), cairn keeps the newest `keep` copies
//! per VG and removes older ones.

use std::io::Write;
use std::path::{Path, PathBuf};

pub const DEFAULT_ARCHIVE_DIR: &str = "/etc/lvm/archive";
pub const DEFAULT_BACKUP_DIR: &str = "/etc/lvm/backup";
/// lvm2's retain_min default.
pub const DEFAULT_KEEP: usize = 10;

#[derive(Debug, Clone)]
pub struct Archive {
    pub archive_dir: PathBuf,
    pub backup_dir: PathBuf,
    /// Copies kept per VG; 0 turns archiving off.
    pub keep: usize,
}

impl Default for Archive {
    fn default() -> Self {
        Archive {
            archive_dir: PathBuf::from(DEFAULT_ARCHIVE_DIR),
            backup_dir: PathBuf::from(DEFAULT_BACKUP_DIR),
            keep: DEFAULT_KEEP,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("metadata archive {path}: {source}")]
pub struct ArchiveError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

fn err(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError {
        path: path.to_owned(),
        source,
    }
}

/// Writes `text` to `path` through a temporary file and a rename, so a
/// crash never leaves half a copy.
fn write_atomically(path: &Path, text: &str) -> Result<(), ArchiveError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(err(&tmp))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(err(path))
}

impl Archive {
    /// The archived copies of `vg`, oldest first, with their sequence numbers.
    pub fn list(&self, vg: &str) -> Result<Vec<(u64, PathBuf)>, ArchiveError> {
        let entries = match std::fs::read_dir(&self.archive_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(ArchiveError {
                    path: self.archive_dir.clone(),
                    source: e,
                })
            }
        };
        let prefix = format!("{vg}_");
        let mut found: Vec<(u64, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let rest = name.strip_prefix(&prefix)?.strip_suffix(".vg")?;
                let (number, _random) = rest.split_once('-')?;
                // Only lvm2's own 5-digit pattern: "vg_a" must not match "vg_a_b_00001-1.vg".
                (number.len() == 5).then_some(())?;
                Some((number.parse().ok()?, e.path()))
            })
            .collect();
        found.sort();
        Ok(found)
    }

    /// Keeps `text` (the VG's metadata before a change) and prunes old copies.
    pub fn archive(&self, vg: &str, text: &str) -> Result<Option<PathBuf>, ArchiveError> {
        if self.keep == 0 {
            return Ok(None);
        }
        std::fs::create_dir_all(&self.archive_dir).map_err(err(&self.archive_dir))?;
        let existing = self.list(vg)?;
        let next = existing.last().map(|(n, _)| n + 1).unwrap_or(0) % 100_000;
        let path = self
            .archive_dir
            .join(format!("{vg}_{next:05}-{}.vg", random_suffix()));
        write_atomically(&path, text)?;
        let mut all = existing;
        all.push((next, path.clone()));
        let excess = all.len().saturating_sub(self.keep);
        for (_, old) in all.iter().take(excess) {
            std::fs::remove_file(old).map_err(err(old))?;
        }
        Ok(Some(path))
    }

    /// Records `text` (the VG's metadata after a change) as its current backup.
    pub fn backup(&self, vg: &str, text: &str) -> Result<(), ArchiveError> {
        std::fs::create_dir_all(&self.backup_dir).map_err(err(&self.backup_dir))?;
        write_atomically(&self.backup_dir.join(vg), text)
    }

    /// Forgets a removed VG's current backup (its archive stays, for vgcfgrestore).
    pub fn remove_backup(&self, vg: &str) -> Result<(), ArchiveError> {
        let path = self.backup_dir.join(vg);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(ArchiveError { path, source: e })
            }
            _ => Ok(()),
        }
    }
}

fn random_suffix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ std::process::id().rotate_left(16)) % 1_000_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_copies_per_vg() {
        let root = std::env::temp_dir().join(format!("cairn-archive-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let a = Archive {
            archive_dir: root.join("archive"),
            backup_dir: root.join("backup"),
            keep: 3,
        };
        for i in 0..5 {
            a.archive("vg0", &format!("seqno = {i}\n")).unwrap();
        }
        a.archive("vg0_b", "other\n").unwrap();
        let kept = a.list("vg0").unwrap();
        assert_eq!(kept.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(std::fs::read_to_string(&kept[2].1).unwrap(), "seqno = 4\n");
        assert_eq!(
            a.list("vg0_b").unwrap().len(),
            1,
            "another VG's copies are separate"
        );
        a.backup("vg0", "current\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("backup/vg0")).unwrap(),
            "current\n"
        );
        a.remove_backup("vg0").unwrap();
        a.remove_backup("vg0").unwrap();
        let off = Archive {
            keep: 0,
            ..a.clone()
        };
        assert_eq!(off.archive("vg0", "x").unwrap(), None);
        std::fs::remove_dir_all(root).unwrap();
    }
}
