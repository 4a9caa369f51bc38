//! The apply journal: one JSON line per event, fsynced before the step it
//! announces runs, so that after a kill -9 or a power cut the next apply
//! knows which step was under way and which containers it was making.
//!
//! Every step is planned again from what exists, so finishing a crashed
//! apply is an ordinary apply; the journal adds what cannot be seen on the
//! devices: that a container's new volume may hold half a filesystem and
//! is to be made again rather than left alone.
//!
//! Files in the state directory (the host's, default /var/lib/cairn):
//! `apply.lock` (flock: one apply at a time), `apply.journal` (the running
//! or interrupted apply), `apply.journal.last` (the last finished one).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{io, refused, Result};
use crate::error::ErrorKind;

pub const DEFAULT_STATE_DIR: &str = "/var/lib/cairn";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Entry {
    Start {
        file: String,
        command: String,
        time: u64,
    },
    /// Containers an earlier, interrupted apply left half-made, carried
    /// until made (so a second interruption does not forget them).
    Unfinished {
        containers: Vec<String>,
        /// Of those, the ones whose mkfs was cut off (their volume holds
        /// half a filesystem, with no superblock yet).
        #[serde(default)]
        mkfs_cut: Vec<String>,
    },
    Begin {
        n: usize,
        step: String,
        /// The container a step makes, if it makes one.
        container: Option<String>,
    },
    Done {
        n: usize,
    },
    End,
}

/// What an interrupted run (a crash, a kill, a power cut) left, as its
/// journal tells: the run that finishes it makes these again.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interrupted {
    /// The stack file that run applied.
    pub file: String,
    /// The step under way when it stopped (its number from 1, as a plan
    /// prints it, and its description).
    pub at: Option<(usize, String)>,
    /// Containers it began making and did not finish (no config written).
    pub unfinished_containers: Vec<String>,
    /// Of those, the ones whose mkfs.ext4 was under way when it stopped.
    pub mkfs_cut: Vec<String>,
}

/// Reads the entries of a journal. A torn last line (a write cut off by the
/// crash: no newline after it) is dropped; any other line that does not
/// parse is an error, since dropping it could forget a container that is
/// half-made and let a later run mistake it for somebody's data, or worse.
pub fn read(path: &Path) -> Result<Vec<Entry>> {
    let text =
        std::fs::read_to_string(path).map_err(io(format!("cannot read {}", path.display())))?;
    parse(&text).map_err(|(line, e)| {
        refused(
            ErrorKind::Inconsistent,
            format!(
                "journal {} line {line} is damaged ({e}): cairn cannot tell what the interrupted \
             run was doing; read it, then move it away (the next run plans from what exists)",
                path.display()
            ),
        )
    })
}

/// The entries of a journal's text; Err((line number, why)) for a damaged line.
fn parse(text: &str) -> std::result::Result<Vec<Entry>, (usize, String)> {
    let torn_tail = !text.is_empty() && !text.ends_with('\n');
    let count = text.lines().count();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match serde_json::from_str(line) {
            Ok(e) => out.push(e),
            Err(_) if torn_tail && i + 1 == count => {}
            Err(e) => return Err((i + 1, e.to_string())),
        }
    }
    Ok(out)
}

/// What the entries say about an apply that did not end.
pub fn interrupted(entries: &[Entry]) -> Option<Interrupted> {
    let mut out = Interrupted::default();
    // The step begun and not yet done: (number, description, container).
    let mut open: Option<(usize, String, Option<String>)> = None;
    let mut making: Vec<String> = Vec::new();
    let mut finished: Vec<String> = Vec::new();
    for e in entries {
        match e {
            Entry::Start { file, .. } => out.file = file.clone(),
            Entry::Unfinished {
                containers,
                mkfs_cut,
            } => {
                for c in containers {
                    if !making.contains(c) {
                        making.push(c.clone());
                    }
                }
                out.mkfs_cut.extend(mkfs_cut.iter().cloned());
            }
            Entry::Begin { n, step, container } => {
                // Making a container's volume, filesystem or root: until
                // its config is written it may hold half of them. A config
                // step alone (for a container whose volume was there)
                // makes nothing that a re-run should make again.
                if let Some(c) = container
                    .as_ref()
                    .filter(|_| !step.starts_with("lxc config"))
                {
                    if !making.contains(c) {
                        making.push(c.clone());
                    }
                }
                open = Some((*n, step.clone(), container.clone()));
            }
            Entry::Done { n } => {
                if let Some((m, step, container)) = open.take() {
                    // A container is finished when its config, written
                    // last, is done.
                    if m == *n && step.starts_with("lxc config") {
                        finished.extend(container);
                    } else if m != *n {
                        open = Some((m, step, container));
                    }
                }
            }
            Entry::End => return None,
        }
    }
    if let Some((_, step, Some(c))) = &open {
        if step.starts_with("mkfs.ext4") && !out.mkfs_cut.contains(c) {
            out.mkfs_cut.push(c.clone());
        }
    }
    out.at = open.map(|(n, step, _)| (n, step));
    out.unfinished_containers = making
        .into_iter()
        .filter(|c| !finished.contains(c))
        .collect();
    let unfinished = out.unfinished_containers.clone();
    out.mkfs_cut.retain(|c| unfinished.contains(c));
    Some(out)
}

/// A journal being written (holds the apply lock).
pub struct Journal {
    dir: PathBuf,
    name: String,
    file: File,
    _lock: File,
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Journal {
    /// Takes the stack's lock and starts the journal `name` (`apply`, `up`,
    /// `down`, a container command) in `dir`; returns what an earlier,
    /// interrupted run of the same journal left, if one did. Each command
    /// has a journal of its own, so an interrupted apply's journal waits
    /// for the next apply, which alone finishes it.
    pub fn start_named(
        dir: &Path,
        name: &str,
        file: &str,
        command: &str,
    ) -> Result<(Journal, Option<Interrupted>)> {
        std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("apply.lock"))
            .map_err(io(format!(
                "cannot open {}",
                dir.join("apply.lock").display()
            )))?;
        // SAFETY: flock on a descriptor we own.
        let locked =
            unsafe { nix::libc::flock(lock.as_raw_fd(), nix::libc::LOCK_EX | nix::libc::LOCK_NB) };
        if locked != 0 {
            return Err(refused(
                ErrorKind::Busy,
                format!(
                    "another cairn apply, up or down is running (lock {}): wait for it",
                    dir.join("apply.lock").display()
                ),
            ));
        }
        let path = dir.join(format!("{name}.journal"));
        let earlier = if path.exists() {
            interrupted(&read(&path)?)
        } else {
            None
        };
        if earlier.is_some() {
            // Kept for the record; the new journal replaces the old in one
            // rename, once it carries what the old one left unfinished.
            let _ = std::fs::copy(&path, dir.join(format!("{name}.journal.interrupted")));
        }
        let new_path = dir.join(format!("{name}.journal.new"));
        let f =
            File::create(&new_path).map_err(io(format!("cannot create {}", new_path.display())))?;
        let mut j = Journal {
            dir: dir.to_path_buf(),
            name: name.to_owned(),
            file: f,
            _lock: lock,
        };
        j.write(&Entry::Start {
            file: file.to_owned(),
            command: command.to_owned(),
            time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        })?;
        if let Some(e) = earlier
            .as_ref()
            .filter(|e| !e.unfinished_containers.is_empty())
        {
            j.write(&Entry::Unfinished {
                containers: e.unfinished_containers.clone(),
                mkfs_cut: e.mkfs_cut.clone(),
            })?;
        }
        std::fs::rename(&new_path, &path)
            .map_err(io(format!("cannot rename {}", new_path.display())))?;
        sync_dir(dir);
        Ok((j, earlier))
    }

    pub fn write(&mut self, e: &Entry) -> Result<()> {
        let mut line = serde_json::to_string(e).expect("entries serialize");
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.sync_data())
            .map_err(io("cannot write the apply journal"))
    }

    /// Ends the journal: the apply finished.
    pub fn finish(mut self) -> Result<()> {
        self.write(&Entry::End)?;
        let path = self.dir.join(format!("{}.journal", self.name));
        std::fs::rename(&path, self.dir.join(format!("{}.journal.last", self.name)))
            .map_err(io(format!("cannot rename {}", path.display())))?;
        let _ = std::fs::remove_file(self.dir.join(format!("{}.journal.interrupted", self.name)));
        sync_dir(&self.dir);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn begin(n: usize, step: &str, c: Option<&str>) -> Entry {
        Entry::Begin {
            n,
            step: step.into(),
            container: c.map(Into::into),
        }
    }

    #[test]
    fn an_ended_journal_is_not_interrupted() {
        let e = vec![
            Entry::Start {
                file: "f".into(),
                command: "c".into(),
                time: 0,
            },
            begin(1, "vg create", None),
            Entry::Done { n: 1 },
            Entry::End,
        ];
        assert_eq!(interrupted(&e), None);
    }

    #[test]
    fn the_open_step_and_unfinished_containers_are_found() {
        let e = vec![
            Entry::Start {
                file: "/etc/cairn/stack.toml".into(),
                command: "c".into(),
                time: 0,
            },
            begin(1, "thin create a", Some("a")),
            Entry::Done { n: 1 },
            begin(2, "mkfs.ext4 /dev/V/a", Some("a")),
            Entry::Done { n: 2 },
            begin(3, "lxc config a: ...", Some("a")),
            Entry::Done { n: 3 },
            begin(4, "thin create b", Some("b")),
            Entry::Done { n: 4 },
            begin(5, "mkfs.ext4 /dev/V/b", Some("b")),
        ];
        let i = interrupted(&e).expect("no End");
        assert_eq!(i.file, "/etc/cairn/stack.toml");
        assert_eq!(i.at, Some((5, "mkfs.ext4 /dev/V/b".into())));
        assert_eq!(i.unfinished_containers, vec!["b".to_owned()]);
        assert_eq!(i.mkfs_cut, vec!["b".to_owned()]);
    }

    #[test]
    fn a_config_step_alone_makes_nothing_to_redo() {
        let e = vec![
            Entry::Start {
                file: "f".into(),
                command: "c".into(),
                time: 0,
            },
            begin(1, "lxc config c: rootfs lvm:/dev/V/c", Some("c")),
        ];
        let i = interrupted(&e).expect("no End");
        assert_eq!(i.at, Some((1, "lxc config c: rootfs lvm:/dev/V/c".into())));
        assert!(i.unfinished_containers.is_empty());
    }

    #[test]
    fn unfinished_containers_are_carried_until_made() {
        let e = vec![
            Entry::Start {
                file: "f".into(),
                command: "c".into(),
                time: 0,
            },
            Entry::Unfinished {
                containers: vec!["a".into(), "b".into()],
                mkfs_cut: vec!["b".into()],
            },
            begin(1, "lxc config a: rootfs", Some("a")),
            Entry::Done { n: 1 },
            begin(2, "vg create X", None),
        ];
        let i = interrupted(&e).expect("no End");
        assert_eq!(i.unfinished_containers, vec!["b".to_owned()]);
        assert_eq!(i.mkfs_cut, vec!["b".to_owned()]);
    }

    #[test]
    fn only_a_torn_last_line_is_dropped() {
        let good = serde_json::to_string(&Entry::Done { n: 1 }).unwrap();
        assert_eq!(
            parse(&format!("{good}\n{{\"event\":\"do")).unwrap().len(),
            1
        );
        // A complete line that does not parse is damage, not a torn write.
        assert_eq!(parse(&format!("{good}\ngarbage\n")).unwrap_err().0, 2);
        assert_eq!(parse(&format!("garbage\n{good}\n")).unwrap_err().0, 1);
        assert_eq!(
            parse(&format!("{good}\nnot json\n{good}")).unwrap_err().0,
            2
        );
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn journal_files_round_trip_and_a_torn_line_is_dropped() {
        let dir = std::env::temp_dir().join(format!("cairn-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (mut j, earlier) =
            Journal::start_named(&dir, "apply", "f.toml", "cairn apply").unwrap();
        assert_eq!(earlier, None);
        j.write(&begin(1, "pv create /dev/x", None)).unwrap();
        drop(j);
        // A crash mid-line leaves a torn last line.
        let path = dir.join("apply.journal");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"event\":\"do").unwrap();
        let (j, earlier) = Journal::start_named(&dir, "apply", "f.toml", "cairn apply").unwrap();
        let earlier = earlier.expect("the first apply did not end");
        assert_eq!(earlier.at, Some((1, "pv create /dev/x".into())));
        j.finish().unwrap();
        assert!(!path.exists());
        assert!(dir.join("apply.journal.last").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
