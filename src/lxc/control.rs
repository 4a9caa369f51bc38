//! Starting, stopping and watching containers through LXC's own tools
//! (`lxc-start`, `lxc-stop`, `lxc-info`): they own the
//! container's lifecycle (monitor process, cgroups, namespaces), and cairn
//! only asks them.

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{check_name, command_line, container, last_lines, run, tail, LxcError};

/// Where [`start`] has lxc-start write each container's log
/// (`lxc-NAME.log`): under /run, so it goes with the boot it describes.
pub const LOG_DIR: &str = "/run/cairn";
const LXC_HINT: &str = "install lxc (apt-get install lxc)";

/// A container's state, as LXC names them (`lxc-info -s`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Stopped,
    Starting,
    Running,
    Stopping,
    Aborting,
    Freezing,
    Frozen,
    Thawed,
    /// A name this list does not know (a newer LXC), kept verbatim.
    Unknown(String),
}

impl State {
    /// Parses LXC's upper-case state name (case-insensitively).
    pub fn parse(s: &str) -> State {
        match s.trim().to_ascii_uppercase().as_str() {
            "STOPPED" => State::Stopped,
            "STARTING" => State::Starting,
            "RUNNING" => State::Running,
            "STOPPING" => State::Stopping,
            "ABORTING" => State::Aborting,
            "FREEZING" => State::Freezing,
            "FROZEN" => State::Frozen,
            "THAWED" => State::Thawed,
            _ => State::Unknown(s.trim().to_owned()),
        }
    }
}

impl fmt::Display for State {
    /// LXC's upper-case name of the state, as `lxc-info -s` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Stopped => "STOPPED",
            State::Starting => "STARTING",
            State::Running => "RUNNING",
            State::Stopping => "STOPPING",
            State::Aborting => "ABORTING",
            State::Freezing => "FREEZING",
            State::Frozen => "FROZEN",
            State::Thawed => "THAWED",
            State::Unknown(s) => s,
        })
    }
}

/// The state in `lxc-info -s` output: `STOPPED` with `-H` (what [`state`]
/// asks for), `State:          STOPPED` without; `None` when there is none.
pub fn parse_info_state(output: &str) -> Option<State> {
    let line = output.lines().map(str::trim).find(|l| !l.is_empty())?;
    let value = line.strip_prefix("State:").unwrap_or(line).trim();
    (!value.is_empty()).then(|| State::parse(value))
}

fn lxcpath_args<'a>(lxcpath: &'a Path, name: &'a str) -> Vec<&'a OsStr> {
    vec![
        OsStr::new("-P"),
        lxcpath.as_os_str(),
        OsStr::new("-n"),
        OsStr::new(name),
    ]
}

fn failed(
    name: &str,
    tool: &str,
    args: &[&OsStr],
    out: &std::process::Output,
    detail: String,
    hint: String,
) -> LxcError {
    LxcError::Command {
        subject: container(name),
        command: command_line(tool, args),
        status: out.status.to_string(),
        detail: if detail.is_empty() {
            "no output".to_owned()
        } else {
            detail
        },
        hint,
    }
}

/// The container's state (`lxc-info -s -H`). A container not defined in
/// `lxcpath` is an error.
pub fn state(lxcpath: &Path, name: &str) -> Result<State, LxcError> {
    check_name(name)?;
    let mut args = lxcpath_args(lxcpath, name);
    args.extend([OsStr::new("-s"), OsStr::new("-H")]);
    let out = run(&container(name), OsStr::new("lxc-info"), &args, LXC_HINT)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match parse_info_state(&stdout) {
        Some(state) if out.status.success() => Ok(state),
        _ => Err(failed(
            name,
            "lxc-info",
            &args,
            &out,
            tail(&out, 5),
            format!("check that it is defined: lxc-ls -P {}", lxcpath.display()),
        )),
    }
}

/// The PID of a running container's init (`lxc-info -p -H`), None when
/// it is not running.
pub fn init_pid(lxcpath: &Path, name: &str) -> Result<Option<u32>, LxcError> {
    check_name(name)?;
    let mut args = lxcpath_args(lxcpath, name);
    args.extend([OsStr::new("-p"), OsStr::new("-H")]);
    let out = run(&container(name), OsStr::new("lxc-info"), &args, LXC_HINT)?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse().ok())
}

/// Starts the container in the background (`lxc-start`, which returns
/// once it runs), logging at INFO level to `LOG_DIR/lxc-NAME.log`; on
/// failure the error carries the end of what this start logged.
pub fn start(lxcpath: &Path, name: &str) -> Result<(), LxcError> {
    check_name(name)?;
    let log = log_path(name)?;
    let logged_before = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let mut args = lxcpath_args(lxcpath, name);
    args.extend([
        OsStr::new("-o"),
        log.as_os_str(),
        OsStr::new("-l"),
        OsStr::new("INFO"),
    ]);
    let out = run(&container(name), OsStr::new("lxc-start"), &args, LXC_HINT)?;
    if out.status.success() {
        return Ok(());
    }
    let logged = read_from(&log, logged_before);
    let detail = [tail(&out, 5), last_lines(&logged, 15)]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    Err(failed(
        name,
        "lxc-start",
        &args,
        &out,
        detail,
        format!(
            "the whole log is {}; check that its root filesystem device is there (lxc-info, lxc-start -F -n {name} to see it boot)",
            log.display()
        ),
    ))
}

/// `LOG_DIR/lxc-NAME.log`, making `LOG_DIR`.
fn log_path(name: &str) -> Result<PathBuf, LxcError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(LOG_DIR)
        .map_err(|source| LxcError::Io {
            subject: container(name),
            what: format!("make {LOG_DIR}"),
            source,
            hint: "cairn must run as root with /run writable",
        })?;
    Ok(Path::new(LOG_DIR).join(format!("lxc-{name}.log")))
}

/// What a file holds past `offset`, best effort (it is only for a message).
fn read_from(path: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = fs::File::open(path) {
        if f.seek(SeekFrom::Start(offset)).is_ok() {
            let mut bytes = Vec::new();
            let _ = f.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    text
}

/// Stops the container: asks its init to halt (`lxc-stop -t SECS`, the
/// timeout rounded up to whole seconds) and lets lxc-stop kill it when it
/// is not down by then; a zero timeout kills at once (`-k`: lxc-stop's
/// `-t 0` would only ask and not wait). A container that is not running
/// is already stopped.
pub fn stop(lxcpath: &Path, name: &str, timeout: Duration) -> Result<(), LxcError> {
    check_name(name)?;
    let secs = whole_seconds(timeout).to_string();
    let mut args = lxcpath_args(lxcpath, name);
    if timeout.is_zero() {
        args.push(OsStr::new("-k"));
    } else {
        args.extend([OsStr::new("-t"), OsStr::new(&secs)]);
    }
    let out = run(&container(name), OsStr::new("lxc-stop"), &args, LXC_HINT)?;
    // Exit status 2: "the specified container exists but was not running".
    if out.status.success() || out.status.code() == Some(2) {
        return Ok(());
    }
    Err(failed(
        name,
        "lxc-stop",
        &args,
        &out,
        tail(&out, 5),
        format!("try lxc-stop -k -P {} -n {name}", lxcpath.display()),
    ))
}

fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_output_forms() {
        assert_eq!(parse_info_state("STOPPED\n"), Some(State::Stopped));
        assert_eq!(
            parse_info_state("State:          RUNNING\n"),
            Some(State::Running)
        );
        assert_eq!(parse_info_state("\n  frozen \n"), Some(State::Frozen));
        assert_eq!(
            parse_info_state("State: HIBERNATING"),
            Some(State::Unknown("HIBERNATING".into()))
        );
        assert_eq!(parse_info_state(""), None);
        assert_eq!(parse_info_state("State:   \n"), None);
    }

    #[test]
    fn state_names_round_trip() {
        let all = [
            State::Stopped,
            State::Starting,
            State::Running,
            State::Stopping,
            State::Aborting,
            State::Freezing,
            State::Frozen,
            State::Thawed,
        ];
        for s in all {
            assert_eq!(State::parse(&s.to_string()), s);
        }
        assert_eq!(State::Unknown("X".into()).to_string(), "X");
    }

    #[test]
    fn timeouts_round_up() {
        assert_eq!(whole_seconds(Duration::ZERO), 0);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(30)), 30);
        assert_eq!(whole_seconds(Duration::from_millis(30_001)), 31);
    }

    #[test]
    fn bad_names_never_reach_lxc() {
        let p = Path::new("/nonexistent");
        assert!(matches!(state(p, "../x"), Err(LxcError::Name { .. })));
        assert!(matches!(start(p, ""), Err(LxcError::Name { .. })));
        assert!(matches!(
            stop(p, "-k", Duration::ZERO),
            Err(LxcError::Name { .. })
        ));
    }

    #[test]
    fn log_tail_from_offset() {
        let dir = super::super::testutil::scratch("log");
        let log = dir.join("x.log");
        fs::write(&log, "old\nnew 1\nnew 2\n").unwrap();
        assert_eq!(read_from(&log, 4), "new 1\nnew 2\n");
        assert_eq!(read_from(&dir.join("none"), 0), "");
    }

    /// lxc's tools against a temporary LXC path, with nothing running:
    /// skipped where lxc is not installed.
    #[test]
    fn lxc_tools_on_a_stopped_container() {
        let lxcpath = super::super::testutil::scratch("tools");
        super::super::write_config(&lxcpath, "c1", "lxc.uts.name = c1\n").unwrap();
        let s = match state(&lxcpath, "c1") {
            Err(LxcError::Spawn { .. }) => {
                eprintln!("note: lxc-info not found; test skipped (install lxc)");
                return;
            }
            other => other.unwrap(),
        };
        assert_eq!(s, State::Stopped);
        let e = state(&lxcpath, "nope").unwrap_err().to_string();
        assert!(
            e.contains("container nope") && e.contains("lxc-info -P"),
            "{e}"
        );
        stop(&lxcpath, "c1", Duration::from_secs(1)).unwrap();
    }
}
