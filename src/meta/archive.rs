//! Copies of previous metadata, where lvm2 keeps them, so `vgcfgrestore`
//! can bring a VG back: before each change the old text goes to
//! `<archive>/<vg>_<NNNNN>-<random>.vg`, after it the new text to
//! `<backup>/<vg>`.
//!
//! Pruning follows lvm2's `backup/retain_min` and `backup/retain_days`
//! (lvm.conf defaults 10 and 30): the oldest copies go while more than
//! `keep` remain and they are older than `retain_days`. Unlike lvm2, cairn
//! removes only copies it wrote itself (their first line is
//! [`CAIRN_MARK`]): lvm2's own archives on a shared host are lvm2's to
//! prune. The newest copy is never removed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// lvm2's archive_dir: copies of a VG's metadata from before each change.
pub const DEFAULT_ARCHIVE_DIR: &str = "/etc/lvm/archive";
/// lvm2's backup_dir: the newest metadata of each VG, one file per VG.
pub const DEFAULT_BACKUP_DIR: &str = "/etc/lvm/backup";
/// lvm2's retain_min default.
pub const DEFAULT_KEEP: usize = 10;
/// lvm2's retain_days default.
pub const DEFAULT_RETAIN_DAYS: u64 = 30;
/// The first line of every archive cairn writes (a comment to lvm2's
/// vgcfgrestore): what marks a copy as cairn's to prune.
pub const CAIRN_MARK: &str = "# Archived by cairn before a change; cairn prunes only such copies";

/// lvm2's metadata archive and backup, as lvm.conf's `backup` section sets them.
#[derive(Debug, Clone)]
pub struct Archive {
    /// Where archives go ([`DEFAULT_ARCHIVE_DIR`]), for vgcfgrestore.
    pub archive_dir: PathBuf,
    /// Where backups go ([`DEFAULT_BACKUP_DIR`]).
    pub backup_dir: PathBuf,
    /// Copies kept per VG at least (lvm2's retain_min); 0 turns archiving off.
    pub keep: usize,
    /// Copies younger than this many days are kept too (lvm2's retain_days).
    pub retain_days: u64,
}

impl Default for Archive {
    fn default() -> Self {
        Archive {
            archive_dir: PathBuf::from(DEFAULT_ARCHIVE_DIR),
            backup_dir: PathBuf::from(DEFAULT_BACKUP_DIR),
            keep: DEFAULT_KEEP,
            retain_days: DEFAULT_RETAIN_DAYS,
        }
    }
}

/// An archive or backup file that could not be written, read or pruned.
#[derive(Debug, thiserror::Error)]
#[error("metadata archive {path}: {source}")]
pub struct ArchiveError {
    /// The file or directory.
    pub path: PathBuf,
    /// The I/O error.
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
        write_atomically(&path, &format!("{CAIRN_MARK}\n{text}"))?;
        let mut all = existing;
        all.push((next, path.clone()));
        self.prune(&all)?;
        Ok(Some(path))
    }

    /// lvm2's `_remove_expired` on `all` (one VG's copies, oldest first, the
    /// newest last), restricted to cairn's own copies: from the oldest,
    /// while more than `keep` remain, each copy cairn wrote goes unless it
    /// is younger than `retain_days` (which ends the pruning: the rest are
    /// younger still). lvm2's copies are passed over and still count.
    fn prune(&self, all: &[(u64, PathBuf)]) -> Result<(), ArchiveError> {
        let mut remaining = all.len();
        let oldest_kept = SystemTime::now()
            .checked_sub(Duration::from_secs(self.retain_days.saturating_mul(86_400)))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let Some((_newest, older)) = all.split_last() else {
            return Ok(());
        };
        for (_, path) in older {
            if remaining <= self.keep {
                break;
            }
            if !written_by_cairn(path) {
                continue;
            }
            let modified = std::fs::metadata(path)
                .and_then(|m| m.modified())
                .map_err(err(path))?;
            if modified > oldest_kept {
                break;
            }
            std::fs::remove_file(path).map_err(err(path))?;
            remaining -= 1;
        }
        Ok(())
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

/// Whether the archive at `path` starts with [`CAIRN_MARK`] (unreadable: no).
fn written_by_cairn(path: &Path) -> bool {
    use std::io::Read;
    let mut head = vec![0u8; CAIRN_MARK.len() + 1];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|_| head == format!("{CAIRN_MARK}\n").as_bytes())
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
            retain_days: 0,
        };
        for i in 0..5 {
            a.archive("vg0", &format!("seqno = {i}\n")).unwrap();
        }
        a.archive("vg0_b", "other\n").unwrap();
        let kept = a.list("vg0").unwrap();
        assert_eq!(kept.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(
            std::fs::read_to_string(&kept[2].1).unwrap(),
            format!("{CAIRN_MARK}\nseqno = 4\n")
        );
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

    fn archive_in(tag: &str, keep: usize, retain_days: u64) -> Archive {
        let root = std::env::temp_dir().join(format!("cairn-archive-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        Archive {
            archive_dir: root.join("archive"),
            backup_dir: root.join("backup"),
            keep,
            retain_days,
        }
    }

    fn numbers(a: &Archive, vg: &str) -> Vec<u64> {
        a.list(vg).unwrap().iter().map(|(n, _)| *n).collect()
    }

    fn age(path: &Path, days: u64) {
        let when = SystemTime::now() - Duration::from_secs(days * 86_400);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }

    /// lvm2's archives in the same directory are never removed, however
    /// old and however many; cairn's own older ones go, its newest stays.
    #[test]
    fn prunes_only_its_own_copies_and_never_the_newest() {
        let a = archive_in("lvm2s", 2, 0);
        std::fs::create_dir_all(&a.archive_dir).unwrap();
        for i in 0..5 {
            let path = a.archive_dir.join(format!("vg0_{i:05}-{}.vg", 1000 + i));
            std::fs::write(
                &path,
                "# Generated by LVM2 version 2.03.16(2) (2022-05-18): ...\n",
            )
            .unwrap();
            age(&path, 400);
        }
        for i in 0..3 {
            a.archive("vg0", &format!("seqno = {i}\n")).unwrap();
        }
        assert_eq!(
            numbers(&a, "vg0"),
            [0, 1, 2, 3, 4, 7],
            "lvm2's five and cairn's newest"
        );
        let newest = &a.list("vg0").unwrap()[5].1;
        assert!(std::fs::read_to_string(newest)
            .unwrap()
            .ends_with("seqno = 2\n"));
        std::fs::remove_dir_all(a.archive_dir.parent().unwrap()).unwrap();
    }

    /// lvm2's retain_days: copies younger than it stay even past `keep`;
    /// older ones go, oldest first, while more than `keep` remain.
    #[test]
    fn young_copies_are_kept_past_keep() {
        let a = archive_in("days", 1, 30);
        for i in 0..3 {
            a.archive("vg0", &format!("seqno = {i}\n")).unwrap();
        }
        assert_eq!(numbers(&a, "vg0"), [0, 1, 2], "all younger than 30 days");
        let all = a.list("vg0").unwrap();
        age(&all[0].1, 40);
        age(&all[1].1, 31);
        a.archive("vg0", "seqno = 3\n").unwrap();
        assert_eq!(
            numbers(&a, "vg0"),
            [2, 3],
            "the two older than 30 days went"
        );
        std::fs::remove_dir_all(a.archive_dir.parent().unwrap()).unwrap();
    }
}
