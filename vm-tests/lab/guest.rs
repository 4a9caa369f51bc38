//! Guest side of the lab: what a VM test uses to drive the kernel and the
//! oracles (lvm2, drbd-utils, dmsetup, lxc), with every command and its
//! output logged to the job log the host shows on failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::host::{NODE_ADDRS, NODE_HOSTNAMES, NODE_NAMES};

/// Fails the test with a formatted message unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// The cairn binary cargo built for this test target.
pub const CAIRN: &str = env!("CARGO_BIN_EXE_cairn");

/// An example program of the crate (examples/NAME.rs), built beside
/// [`CAIRN`] (`cargo test` and `lab.sh vm` build the examples).
pub fn example(name: &str) -> Result<String, String> {
    let path = std::path::Path::new(CAIRN)
        .parent()
        .map(|d| d.join("examples").join(name))
        .ok_or("the cairn binary has no directory")?;
    if !path.exists() {
        return Err(format!(
            "{} is not built: run `cargo build --examples` (lab.sh vm and test do)",
            path.display()
        ));
    }
    Ok(path.display().to_string())
}

/// For crash tests (`CAIRN_CRASH_AT`): whether [`CAIRN`] has crash points,
/// which only debug test builds do (src/failpoint.rs). The binary and this
/// test target are built with the same profile and features.
pub fn crash_points() -> Result<(), String> {
    if cairn::failpoint::ENABLED {
        Ok(())
    } else {
        Err(format!(
            "{CAIRN} has no crash points (CAIRN_CRASH_AT): they exist only in debug \
             test builds; run the VM tests without --release"
        ))
    }
}

/// Where sparse files behind loop "disks" live (tmpfs sized to all memory).
const DISK_DIR: &str = "/tmp/lab-disks";

pub struct Guest {
    pub node: usize,
}

impl Guest {
    pub fn new(node: usize) -> Guest {
        Guest { node }
    }

    pub fn node_name(&self) -> &'static str {
        NODE_NAMES[self.node]
    }

    pub fn hostname(&self) -> &'static str {
        NODE_HOSTNAMES[self.node]
    }

    pub fn addr(&self) -> &'static str {
        NODE_ADDRS[self.node]
    }

    /// Which boot of its group the guest is in (1 unless the group boots
    /// several times).
    pub fn boot(&self) -> u32 {
        std::fs::read_to_string("/proc/cmdline")
            .ok()
            .and_then(|c| {
                c.split_whitespace()
                    .find_map(|w| w.strip_prefix("cairn.boot=").and_then(|b| b.parse().ok()))
            })
            .unwrap_or(1)
    }

    /// The group's persistent disk number `i` (`Group::disks`).
    pub fn disk(&self, i: usize) -> String {
        format!("/dev/vd{}", (b'a' + i as u8) as char)
    }

    pub fn peer_addr(&self) -> &'static str {
        NODE_ADDRS[1 - self.node]
    }

    /// Runs a bash script (`set -euo pipefail`) and returns its stdout.
    pub fn sh(&self, script: &str) -> Result<String, String> {
        self.exec(
            Command::new("bash").args(["-euo", "pipefail", "-c", script]),
            script,
        )
    }

    /// Runs a program with arguments and returns its stdout.
    pub fn run(&self, argv: &[&str]) -> Result<String, String> {
        let (prog, rest) = argv.split_first().ok_or("empty command")?;
        self.exec(Command::new(prog).args(rest), &argv.join(" "))
    }

    /// Runs the cairn binary under test.
    pub fn cairn(&self, args: &[&str]) -> Result<String, String> {
        self.exec(
            Command::new(CAIRN).args(args),
            &format!("cairn {}", args.join(" ")),
        )
    }

    /// Runs a command and returns its whole output, whatever its exit status.
    pub fn output(&self, argv: &[&str]) -> Result<Output, String> {
        let (prog, rest) = argv.split_first().ok_or("empty command")?;
        let out = Command::new(prog)
            .args(rest)
            .output()
            .map_err(|e| format!("cannot run {prog}: {e}"))?;
        log_output(&argv.join(" "), &out, None);
        Ok(out)
    }

    fn exec(&self, cmd: &mut Command, shown: &str) -> Result<String, String> {
        let started = Instant::now();
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
        log_output(shown, &out, Some(started.elapsed()));
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "`{shown}` failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// A loop device over a new sparse file of `mib` MiB; detached on drop.
    pub fn loop_disk(&self, name: &str, mib: u64) -> Result<LoopDisk, String> {
        std::fs::create_dir_all(DISK_DIR).map_err(|e| format!("cannot create {DISK_DIR}: {e}"))?;
        let file = Path::new(DISK_DIR).join(format!("{name}.img"));
        let f = std::fs::File::create(&file)
            .map_err(|e| format!("cannot create {}: {e}", file.display()))?;
        f.set_len(mib << 20)
            .map_err(|e| format!("cannot size {}: {e}", file.display()))?;
        drop(f);
        let dev = self.run(&["losetup", "--find", "--show", &file.to_string_lossy()])?;
        Ok(LoopDisk {
            dev: dev.trim().to_owned(),
            file,
        })
    }

    /// Polls `check` until it returns true or `timeout` passes.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Result<bool, String>,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if check()? {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("timed out after {:?} waiting for {what}", timeout));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Checks that a program of a Debian package is installed, naming the package if not.
    pub fn require(&self, program: &str, package: &str) -> Result<PathBuf, String> {
        super::host::which(program).ok_or_else(|| {
            format!("{program} not found in the guest: install the host package {package}")
        })
    }
}

fn log_output(shown: &str, out: &Output, took: Option<Duration>) {
    let took = took
        .map(|d| format!(" [{:.0} ms]", d.as_secs_f64() * 1000.0))
        .unwrap_or_default();
    println!("$ {shown}{took} -> {}", out.status);
    for (tag, bytes) in [("out", &out.stdout), ("err", &out.stderr)] {
        for line in String::from_utf8_lossy(bytes).lines().take(200) {
            println!("  {tag}| {line}");
        }
    }
}

/// A loop device over a sparse file in the guest's tmpfs.
pub struct LoopDisk {
    pub dev: String,
    pub file: PathBuf,
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
        let _ = std::fs::remove_file(&self.file);
    }
}
