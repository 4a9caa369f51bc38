//! LXC containers as cairn composes them: container names, the config
//! file `lxc-create -B lvm -t busybox` would write ([`config`]), the root
//! filesystem's content ([`rootfs`]), and start/stop/state through LXC's
//! own tools ([`control`]), so that every container cairn makes is one
//! `lxc-ls`, `lxc-start` and `lxc-destroy` know as their own.
//!
//! Knows nothing of LVM, DRBD or the stack: it takes device paths and
//! names. Everything takes the LXC path (`lxc-* -P`, [`DEFAULT_LXC_PATH`])
//! so that tests run on temporary directories.

pub mod config;
pub mod control;
pub mod freeze;
pub mod rootfs;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

pub use config::{
    list, read_config, remove_config, render, set_start_auto, write_config, ContainerConfig,
    NewConfig, RootfsSource,
};
pub use control::{init_pid, start, state, stop, State};
pub use rootfs::{build_busybox_rootfs, extract_tarball, find_busybox};

/// LXC's default container directory (`lxc-config lxc.lxcpath`).
pub const DEFAULT_LXC_PATH: &str = "/var/lib/lxc";

/// The longest container name cairn accepts: it becomes a directory, an
/// LV name, a hostname (`lxc.uts.name`, at most 64 bytes) and part of
/// cgroup and log file names.
pub const MAX_NAME_LEN: usize = 64;

/// The rule [`check_name`] enforces, for error messages.
const NAME_RULE: &str =
    "a name is 1 to 64 characters from A-Z a-z 0-9 _ . -, starting with a letter or digit";

/// Why a container operation failed (its config, its rootfs, LXC's tools).
#[derive(Debug, thiserror::Error)]
pub enum LxcError {
    /// The container name breaks cairn's rule (refused before LXC is run).
    #[error("invalid container name {name:?}: {why}; {NAME_RULE}")]
    Name {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A file or directory of the container could not be read or written.
    #[error("{subject}: cannot {what}: {source}; {hint}")]
    Io {
        /// "container NAME" or "rootfs PATH".
        subject: String,
        /// What was being done, with the path.
        what: String,
        /// The system's error.
        source: std::io::Error,
        /// What to check.
        hint: &'static str,
    },
    /// A line of the container's LXC config does not parse.
    #[error("container {name}: {}:{line}: {why}; fix or remove that line", path.display())]
    Config {
        /// The container.
        name: String,
        /// Its config file.
        path: PathBuf,
        /// The line at fault, from 1.
        line: usize,
        /// What is wrong there.
        why: String,
    },
    /// Removing the container's directory was refused: it holds something
    /// cairn did not put there, so nothing was removed.
    #[error("container {name}: refusing to remove {}: it holds {entry:?}, which cairn did not make (only `config` and an empty `rootfs` are cairn's); move it away first", dir.display())]
    NotOurs {
        /// The container.
        name: String,
        /// Its directory under the LXC path.
        dir: PathBuf,
        /// The first entry that is not cairn's.
        entry: String,
    },
    /// An LXC tool (or tar) could not be started: not installed.
    #[error("{subject}: cannot run {tool}: {source}; {hint}")]
    Spawn {
        /// "container NAME" or "rootfs PATH".
        subject: String,
        /// The program.
        tool: String,
        /// The system's error.
        source: std::io::Error,
        /// How to install it.
        hint: &'static str,
    },
    /// An LXC tool (or tar) ran and failed.
    #[error("{subject}: `{command}` failed ({status}): {detail}; {hint}")]
    Command {
        /// "container NAME" or "rootfs PATH".
        subject: String,
        /// The command line run.
        command: String,
        /// Its exit status.
        status: String,
        /// The end of its output (or of the container's log).
        detail: String,
        /// What to look at next.
        hint: String,
    },
    /// The busybox given for a rootfs is dynamically linked: it would not
    /// run in a container without the host's libraries.
    #[error("{}: is dynamically linked (its loader is {interp}) and a container has no host libraries; install busybox-static (apt-get install busybox-static) and pass its /bin/busybox", path.display())]
    NotStatic {
        /// The binary.
        path: PathBuf,
        /// Its ELF interpreter (dynamic loader).
        interp: String,
    },
    /// The busybox given for a rootfs is not an ELF executable.
    #[error("{}: not an ELF executable ({why}); pass a busybox binary (busybox-static installs /bin/busybox)", path.display())]
    NotElf {
        /// The file.
        path: PathBuf,
        /// What its header says instead.
        why: &'static str,
    },
}

/// Checks a container name: non-empty, at most [`MAX_NAME_LEN`]
/// characters of `[A-Za-z0-9_.-]`, starting with a letter or digit (so
/// also neither `.` nor `..`). Stricter than LXC, which takes almost any
/// file name: the name also becomes an LV name and a hostname, and must
/// never escape the LXC path.
pub fn check_name(name: &str) -> Result<(), LxcError> {
    let bad = |why| {
        Err(LxcError::Name {
            name: name.to_owned(),
            why,
        })
    };
    let Some(first) = name.chars().next() else {
        return bad("it is empty");
    };
    if name.len() > MAX_NAME_LEN {
        return bad("it is too long");
    }
    if !first.is_ascii_alphanumeric() {
        return bad("it does not start with a letter or digit");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return bad("it has a character outside A-Z a-z 0-9 _ . -");
    }
    Ok(())
}

fn container(name: &str) -> String {
    format!("container {name}")
}

/// Runs a tool with stdin closed and its output captured.
fn run(
    subject: &str,
    tool: &OsStr,
    args: &[&OsStr],
    hint: &'static str,
) -> Result<Output, LxcError> {
    Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LxcError::Spawn {
            subject: subject.to_owned(),
            tool: tool.to_string_lossy().into_owned(),
            source,
            hint,
        })
}

/// `tool arg arg`, for error messages.
fn command_line(tool: &str, args: &[&OsStr]) -> String {
    std::iter::once(tool.into())
        .chain(args.iter().map(|a| a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last `lines` lines of a tool's stderr (else stdout), trimmed.
fn tail(out: &Output, lines: usize) -> String {
    let text = if out.stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        &out.stderr
    } else {
        &out.stdout
    };
    last_lines(&String::from_utf8_lossy(text), lines)
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fresh, empty directory under the system temp dir, removed on drop
    /// with the lock directory lxc's tools make for it as an LXC path
    /// (/run/lxc/lock/<path>, or under $XDG_RUNTIME_DIR when not root).
    pub struct Scratch(PathBuf);

    impl std::ops::Deref for Scratch {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
            let rel = self.0.strip_prefix("/").unwrap_or(&self.0);
            let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(|d| Path::new(&d).join("lxc"));
            for base in [Some(PathBuf::from("/run/lxc")), runtime]
                .into_iter()
                .flatten()
            {
                let lock = base.join("lock");
                let _ = std::fs::remove_dir_all(lock.join(rel));
                // And its parents lxc made, while empty (remove_dir fails otherwise).
                for dir in lock.join(rel).ancestors().skip(1) {
                    if dir == lock || !dir.starts_with(&lock) || std::fs::remove_dir(dir).is_err() {
                        break;
                    }
                }
            }
        }
    }

    pub fn scratch(tag: &str) -> Scratch {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("cairn-lxc-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["c1", "C", "web-01.example_a", "0", &"a".repeat(64)] {
            check_name(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
        for bad in [
            "",
            ".",
            "..",
            "-x",
            "_x",
            ".hidden",
            "a/b",
            "a b",
            "é",
            &"a".repeat(65),
        ] {
            let e = check_name(bad).expect_err(bad);
            assert!(e.to_string().contains("1 to 64 characters"), "{e}");
        }
    }

    #[test]
    fn tails() {
        assert_eq!(last_lines("a\n\nb\nc\n  \n", 2), "b\nc");
        assert_eq!(last_lines("a\n", 5), "a");
        assert_eq!(
            command_line("lxc-stop", &[OsStr::new("-n"), OsStr::new("c1")]),
            "lxc-stop -n c1"
        );
    }
}
