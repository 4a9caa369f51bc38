//! The harness checks itself: a hung guest is killed at its timeout with its
//! console shown, a guest kernel panic is reported, no QEMU outlives its
//! run, and a missing tool names its Debian package. These trials run on the
//! host and boot their own VMs.

#[path = "lab/mod.rs"]
mod lab;

use std::process::Command;
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};

/// Guest side: what each trial asks its VM to do.
fn guest(mode: &str) -> ! {
    match mode {
        "--lab-hang" => {
            println!("harness self-test: hanging on purpose");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        "--lab-panic" => {
            println!("harness self-test: crashing the kernel on purpose");
            let _ = std::fs::write("/proc/sysrq-trigger", "c");
            std::thread::sleep(Duration::from_secs(60));
            std::process::exit(0)
        }
        other => {
            eprintln!("unknown self-test mode {other}");
            std::process::exit(2)
        }
    }
}

/// QEMU processes whose command line mentions `needle`.
fn qemus_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains("qemu-system") && text.contains(needle) {
                found.push(format!(
                    "pid {}: {text}",
                    entry.file_name().to_string_lossy()
                ));
            }
        }
    }
    found
}

fn hung_guest_is_killed_at_its_timeout() -> Result<(), String> {
    // Long enough for a boot on a loaded machine (the check is that the
    // guest booted, then hung, and was killed at this point).
    let timeout = Duration::from_secs(45);
    let started = Instant::now();
    let report = lab::group::boot_and_run(
        "selftest-hang",
        1,
        512,
        timeout,
        &["--lab-hang".into()],
        false,
    )?;
    let took = started.elapsed();
    let trouble = report.trouble.ok_or("a hung guest was not reported")?;
    ensure!(trouble.contains("timed out"), "reported as {trouble:?}");
    ensure!(report.ends[0].timed_out, "not marked as timed out");
    ensure!(
        took < timeout + Duration::from_secs(10),
        "killed only after {took:?}"
    );
    let console = std::fs::read_to_string(report.dirs[0].join("console.log")).unwrap_or_default();
    ensure!(
        console.contains("CAIRN-LAB-READY"),
        "the console log did not capture the boot: {console}"
    );
    let left = qemus_mentioning(&report.dirs[0].to_string_lossy());
    ensure!(left.is_empty(), "QEMU left running: {left:?}");
    Ok(())
}

fn guest_kernel_panic_is_reported() -> Result<(), String> {
    let report = lab::group::boot_and_run(
        "selftest-panic",
        1,
        512,
        Duration::from_secs(60),
        &["--lab-panic".into()],
        false,
    )?;
    let trouble = report.trouble.ok_or("a kernel panic was not reported")?;
    ensure!(trouble.contains("panicked"), "reported as {trouble:?}");
    ensure!(
        !report.ends[0].timed_out,
        "the VM did not stop by itself after the panic"
    );
    ensure!(
        qemus_mentioning(&report.dirs[0].to_string_lossy()).is_empty(),
        "QEMU left running"
    );
    Ok(())
}

/// Runs this binary's `--lab-probe` (Lab::discover) with one variable set.
fn probe_with(key: &str, value: &std::ffi::OsStr) -> Result<(bool, String), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .arg("--lab-probe")
        .env(key, value)
        .output()
        .map_err(|e| e.to_string())?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn missing_qemu_names_the_package() -> Result<(), String> {
    let empty = lab::group::lab_dir().join("empty-path");
    std::fs::create_dir_all(&empty).map_err(|e| e.to_string())?;
    let (ok, err) = probe_with("PATH", empty.as_os_str())?;
    ensure!(!ok, "the probe passed without qemu on PATH");
    ensure!(
        err.contains("apt-get install qemu-system-x86"),
        "message does not name the package: {err}"
    );
    Ok(())
}

fn missing_kernel_names_the_version() -> Result<(), String> {
    let (ok, err) = probe_with("CAIRN_LAB_KERNEL", "0.0.0-none".as_ref())?;
    ensure!(!ok, "the probe passed with a kernel that does not exist");
    ensure!(
        err.contains("/boot/vmlinuz-0.0.0-none"),
        "message does not say what is missing: {err}"
    );
    Ok(())
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if std::env::var_os("CAIRN_LAB_GUEST").is_some() {
        guest(argv.get(1).map(String::as_str).unwrap_or(""))
    }
    if argv.get(1).map(String::as_str) == Some("--lab-probe") {
        match lab::host::Lab::discover(&lab::group::lab_dir()) {
            Ok(_) => std::process::exit(0),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1)
            }
        }
    }
    let args = Arguments::from_args();
    let in_lab = std::env::var("CAIRN_LAB").as_deref() == Ok("1");
    let trial = |name: &str, f: fn() -> Result<(), String>| {
        Trial::test(name, move || f().map_err(Failed::from)).with_ignored_flag(!in_lab)
    };
    if !in_lab {
        eprintln!("vm_harness: the harness self-tests boot VMs: run them with CAIRN_LAB=1 (see docs/lab.md).");
    }
    let trials = vec![
        trial(
            "hung_guest_is_killed_at_its_timeout",
            hung_guest_is_killed_at_its_timeout,
        ),
        trial(
            "guest_kernel_panic_is_reported",
            guest_kernel_panic_is_reported,
        ),
        trial(
            "missing_qemu_names_the_package",
            missing_qemu_names_the_package,
        ),
        trial(
            "missing_kernel_names_the_version",
            missing_kernel_names_the_version,
        ),
    ];
    libtest_mimic::run(&args, trials).exit()
}
