//! A boot group: the VM tests of one test target, run in one boot (or one
//! boot of two VMs on a private wire). The same binary is the host side (it
//! boots the VMs) and the guest side (it runs the tests); libtest-mimic gives
//! both cargo's filtering, listing and summary line.
//!
//! Modes, chosen by the environment:
//! - `CAIRN_LAB_GUEST=1` (set by the lab's job script): run the tests here.
//! - `CAIRN_LAB=1` on the host: boot the VMs, run the selected tests there,
//!   report their results here.
//! - `CAIRN_LAB=shell`: boot one VM of this group with a shell on the terminal.
//! - otherwise: report every VM test as ignored, saying how to run them.

use std::fs;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::json;

use super::guest::Guest;
use super::host::{self, Lab, Vm, VmSpec, Wire};

pub type TestResult = Result<(), String>;

/// One VM test: runs inside the guest, on every node of its group.
pub struct VmTest {
    pub name: &'static str,
    pub run: fn(&Guest) -> TestResult,
}

/// The VM tests of one test target and how to boot for them.
pub struct Group {
    pub name: &'static str,
    /// 1, or 2 for tests that need a peer on the lab's private wire.
    pub nodes: usize,
    pub mem_mib: u32,
    /// For the whole boot, tests included; the VMs are killed at this point.
    pub timeout: Duration,
    pub tests: Vec<VmTest>,
    /// Stream the guest's output to the terminal while it runs (the demo).
    pub stream_log: bool,
    /// How many times the VM(s) boot, on the same `disks`: every test runs
    /// in each boot (`Guest::boot` says which) and passes when it passed
    /// in all. A boot ends as every lab boot does, `sync` then an
    /// immediate power-off: what is still up is cut off, as in a power cut.
    pub boots: u32,
    /// Disks (name, MiB) that live on the host and keep their contents
    /// from one boot to the next: `/dev/vda`, `/dev/vdb`, ... in the guest
    /// (`Guest::disk`). Fresh and zeroed before the first boot.
    pub disks: &'static [(&'static str, u64)],
}

const RESULTS: &str = "results.jsonl";

/// The directory the lab works in on the host (initramfs, per-VM results).
pub fn lab_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lab")
}

/// What the guest must see of the host at the same paths: the project and
/// its target directory (test binaries, the cairn binary).
pub fn shared_paths() -> Vec<PathBuf> {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(Path::to_path_buf);
    let mut paths = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR"))];
    paths.extend(target.filter(|t| !t.starts_with(env!("CARGO_MANIFEST_DIR"))));
    paths
}

pub fn main(group: Group) -> ! {
    let args = Arguments::from_args();
    if std::env::var_os("CAIRN_LAB_GUEST").is_some() {
        guest_main(group, args)
    }
    match std::env::var("CAIRN_LAB").as_deref() {
        Ok("1") => host_main(group, args),
        Ok("shell") => shell_main(group),
        _ => skip_main(group, args),
    }
}

fn skip_main(group: Group, args: Arguments) -> ! {
    eprintln!(
        "{}: {} VM test(s) not run: they need device-mapper, DRBD and md, which this host's kernel \
         lacks. Run them in the lab VM: `CAIRN_LAB=1 cargo test --test {}` (all: `vm-tests/lab.sh test`).",
        group.name,
        group.tests.len(),
        group.name
    );
    let trials = group
        .tests
        .iter()
        .map(|t| {
            Trial::test(t.name, || {
                Err("a VM test: run it with CAIRN_LAB=1 (see docs/lab.md)".into())
            })
            .with_ignored_flag(true)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit()
}

fn guest_main(group: Group, mut args: Arguments) -> ! {
    // Tests of a group share one kernel: run them one after another.
    args.test_threads = Some(1);
    let node: usize = match std::env::var("CAIRN_LAB_NODE").as_deref() {
        Ok("b") => 1,
        _ => 0,
    };
    let out = PathBuf::from(std::env::var("CAIRN_LAB_OUT").unwrap_or_else(|_| "/lab/out".into()));
    let trials = group
        .tests
        .into_iter()
        .map(|t| {
            let out = out.clone();
            Trial::test(t.name, move || {
                let guest = Guest::new(node);
                let started = Instant::now();
                println!("==== {} on node {} ====", t.name, guest.node_name());
                let result = match panic::catch_unwind(AssertUnwindSafe(|| (t.run)(&guest))) {
                    Ok(r) => r,
                    Err(p) => Err(format!(
                        "panicked: {}",
                        p.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default()
                    )),
                };
                record(&out, t.name, &result, started.elapsed());
                result.map_err(Failed::from)
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit()
}

fn record(out: &Path, name: &str, result: &TestResult, took: Duration) {
    let line = json!({
        "name": name,
        "ok": result.is_ok(),
        "message": result.as_ref().err(),
        "secs": took.as_secs_f64(),
    });
    let written = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out.join(RESULTS))
        .and_then(|mut f| writeln!(f, "{line}").and_then(|_| f.sync_all()));
    if let Err(e) = written {
        eprintln!("cairn-lab: cannot record the result of {name}: {e}");
    }
}

/// A test's outcome as the guest recorded it.
#[derive(Debug, Clone)]
struct Recorded {
    ok: bool,
    message: String,
    secs: f64,
}

fn read_results(dir: &Path) -> Vec<(String, Recorded)> {
    let text = fs::read_to_string(dir.join(RESULTS)).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            (
                v["name"].as_str().unwrap_or_default().to_owned(),
                Recorded {
                    ok: v["ok"].as_bool().unwrap_or(false),
                    message: v["message"].as_str().unwrap_or_default().to_owned(),
                    secs: v["secs"].as_f64().unwrap_or(0.0),
                },
            )
        })
        .collect()
}

/// The arguments the guest's copy of this binary gets: the user's filters,
/// minus options the guest sets itself.
fn guest_args() -> Vec<String> {
    let mut out = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--test-threads" || a == "--logfile" {
            args.next();
        } else if a.starts_with("--test-threads=") || a.starts_with("--logfile=") {
        } else {
            out.push(a);
        }
    }
    out
}

/// Writes the job script each VM runs after stage 2.
fn write_job(dir: &Path, node: usize, command: &[String]) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this test binary: {e}"))?;
    let mut job = String::from("# written by the cairn lab harness\n");
    job.push_str(&format!(
        "export CAIRN_LAB_GUEST=1 CAIRN_LAB_NODE={} CAIRN_LAB_OUT=/lab/out RUST_BACKTRACE=1\n",
        host::NODE_NAMES[node]
    ));
    job.push_str(&format!(
        "cd {}\n",
        host::shell_quote(env!("CARGO_MANIFEST_DIR"))
    ));
    job.push_str("exec ");
    job.push_str(&host::shell_quote(&exe.to_string_lossy()));
    for a in command {
        job.push(' ');
        job.push_str(&host::shell_quote(a));
    }
    job.push('\n');
    fs::write(dir.join("job.sh"), job).map_err(|e| format!("cannot write the job script: {e}"))
}

/// What a finished boot left: per node, its results and how it ended.
pub struct BootReport {
    pub dirs: Vec<PathBuf>,
    pub ends: Vec<host::VmEnd>,
    /// Set when the boot itself went wrong (timeout, panic, QEMU error, no exit code).
    pub trouble: Option<String>,
}

/// Boots the group's VM(s), runs `command` (this binary's arguments) in each
/// and waits for them all.
pub fn boot_and_run(
    label: &str,
    nodes: usize,
    mem_mib: u32,
    timeout: Duration,
    command: &[String],
    stream_log: bool,
) -> Result<BootReport, String> {
    boot_and_run_with(label, nodes, mem_mib, timeout, command, stream_log, 1, &[])
}

/// [`boot_and_run`], `boots` times on the same persistent `disks`.
#[allow(clippy::too_many_arguments)]
pub fn boot_and_run_with(
    label: &str,
    nodes: usize,
    mem_mib: u32,
    timeout: Duration,
    command: &[String],
    stream_log: bool,
    boots: u32,
    disks: &[(&str, u64)],
) -> Result<BootReport, String> {
    let lab = Lab::discover(&lab_dir())?;
    let initramfs = lab.initramfs()?;
    let wire = if nodes > 1 { Some(Wire::new()?) } else { None };
    let mut dirs = Vec::new();
    let mut images = Vec::new();
    for node in 0..nodes {
        let dir = lab_dir()
            .join("runs")
            .join(format!("{label}-{}", host::NODE_NAMES[node]));
        host::fresh_dir(&dir)?;
        write_job(&dir, node, command)?;
        let disk_dir = lab_dir()
            .join("disks")
            .join(format!("{label}-{}", host::NODE_NAMES[node]));
        host::fresh_dir(&disk_dir)?;
        let mut mine = Vec::new();
        for (name, mib) in disks {
            let path = disk_dir.join(format!("{name}.img"));
            let f = fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            f.set_len(mib << 20)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            mine.push(path);
        }
        images.push(mine);
        dirs.push(dir);
    }
    let mut ends = Vec::new();
    let mut trouble = Vec::new();
    for boot in 1..=boots {
        let mut vms = Vec::new();
        for node in 0..nodes {
            // The exit status is per boot; results accumulate.
            let _ = fs::remove_file(dirs[node].join("exit"));
            let spec = VmSpec {
                label: format!("{label}/{}", host::NODE_NAMES[node]),
                paths: shared_paths(),
                node,
                mem_mib,
                out_dir: dirs[node].clone(),
                wire,
                interactive: false,
                disks: images[node].clone(),
                boot,
            };
            vms.push(Vm::boot(&lab, &initramfs, spec)?);
        }
        let follow = stream_log.then(|| dirs[0].join("job.log"));
        ends = host::wait_all(&mut vms, timeout, follow.as_deref())?;
        check_ends(&ends, &dirs, &mut trouble);
    }
    let trouble = (!trouble.is_empty()).then(|| trouble.join("; "));
    Ok(BootReport {
        dirs,
        ends,
        trouble,
    })
}

/// What went wrong with each VM of a boot, reported and collected.
fn check_ends(ends: &[host::VmEnd], dirs: &[PathBuf], trouble: &mut Vec<String>) {
    for (end, dir) in ends.iter().zip(dirs) {
        let console = dir.join("console.log");
        let why = if end.timed_out {
            Some(format!(
                "timed out after {:.0} s and was killed",
                end.elapsed.as_secs_f64()
            ))
        } else if let Some(q) = &end.qemu_failed {
            Some(q.clone())
        } else if let Ok(e) = fs::read_to_string(dir.join("setup-error")) {
            Some(format!("guest set-up failed: {}", e.trim()))
        } else if host::tail(&console, 64 * 1024).contains("Kernel panic") {
            Some("the guest kernel panicked".to_owned())
        } else if !dir.join("exit").exists() {
            Some("powered off without an exit status".to_owned())
        } else {
            None
        };
        if let Some(why) = why {
            eprintln!(
                "---- {}: {why}; console tail ({}):",
                end.label,
                console.display()
            );
            eprintln!("{}", host::tail_lines(&console, 60));
            eprintln!("---- {}: job output tail:", end.label);
            eprintln!("{}", host::tail_lines(&dir.join("job.log"), 40));
            trouble.push(format!("{}: {why}", end.label));
        }
        eprintln!(
            "cairn-lab: {}: ready after {}, done after {:.1} s",
            end.label,
            end.ready_after
                .map(|d| format!("{:.1} s", d.as_secs_f64()))
                .unwrap_or_else(|| "never".into()),
            end.elapsed.as_secs_f64()
        );
    }
}

fn host_main(group: Group, args: Arguments) -> ! {
    let probe: Vec<Trial> = group
        .tests
        .iter()
        .map(|t| Trial::test(t.name, || Ok(())))
        .collect();
    let selected = probe
        .iter()
        .filter(|t| !args.is_filtered_out(t) && !args.is_ignored(t))
        .count();
    if args.list || selected == 0 {
        libtest_mimic::run(&args, probe).exit()
    }
    let mut command = guest_args();
    command.push("--test-threads=1".into());
    let outcome = boot_and_run_with(
        group.name,
        group.nodes,
        group.mem_mib,
        group.timeout,
        &command,
        group.stream_log,
        group.boots.max(1),
        group.disks,
    );
    let trials = group
        .tests
        .iter()
        .map(|t| {
            let verdict = match &outcome {
                Err(e) => Err(format!("the lab could not boot: {e}")),
                Ok(report) => verdict_for(t.name, report),
            };
            Trial::test(t.name, move || verdict.map_err(Failed::from))
        })
        .collect();
    libtest_mimic::run(&args, trials).exit()
}

/// A test passes when every node recorded a pass for it.
fn verdict_for(name: &str, report: &BootReport) -> TestResult {
    let mut failures = Vec::new();
    for (dir, end) in report.dirs.iter().zip(&report.ends) {
        // One record per boot: all must pass.
        let records: Vec<_> = read_results(dir)
            .into_iter()
            .filter(|(n, _)| n == name)
            .map(|(_, r)| r)
            .collect();
        let failed = records.iter().find(|r| !r.ok);
        match (records.last(), failed) {
            (Some(_), Some(r)) => failures.push(format!("{}: {}", end.label, r.message)),
            (Some(_), None) => eprintln!(
                "cairn-lab: {name} passed on {} in {:.1} s",
                end.label,
                records.iter().map(|r| r.secs).sum::<f64>()
            ),
            (None, _) => failures.push(format!(
                "{}: no result (the VM stopped before this test finished: {})",
                end.label,
                report
                    .trouble
                    .as_deref()
                    .unwrap_or("see the job output above")
            )),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

fn shell_main(group: Group) -> ! {
    let run = || -> Result<(), String> {
        let lab = Lab::discover(&lab_dir())?;
        let initramfs = lab.initramfs()?;
        let dir = lab_dir().join("runs").join(format!("{}-shell", group.name));
        host::fresh_dir(&dir)?;
        let spec = VmSpec {
            label: format!("{}/shell", group.name),
            paths: shared_paths(),
            node: 0,
            mem_mib: group.mem_mib,
            out_dir: dir,
            wire: None,
            interactive: true,
            disks: Vec::new(),
            boot: 1,
        };
        eprintln!("cairn-lab: booting a shell VM (quit QEMU with Ctrl-a x)");
        Vm::boot(&lab, &initramfs, spec)?.wait_interactive()
    };
    match run() {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("cairn-lab: {e}");
            std::process::exit(1)
        }
    }
}
