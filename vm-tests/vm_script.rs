//! Runs a shell script in a lab VM (`vm-tests/lab.sh run SCRIPT [OUTDIR]`):
//! for capturing what lvm2, drbd-utils or the kernel write (test fixtures),
//! and for trying things out. The script gets $OUT (a directory the host
//! copies back to OUTDIR) and the usual lab set-up (modules, lvm2 without
//! udev). Not a test: `cargo test` leaves it out.

#[path = "lab/mod.rs"]
mod lab;

use std::path::PathBuf;
use std::time::Duration;

fn guest(script: &str) -> ! {
    let status = std::process::Command::new("bash")
        .args(["-euo", "pipefail", script])
        .env("OUT", "/lab/out/files")
        .status();
    std::process::exit(match status {
        Ok(s) => s.code().unwrap_or(1),
        Err(e) => {
            eprintln!("cannot run {script}: {e}");
            1
        }
    })
}

fn host() -> Result<(), String> {
    let script = std::env::var("CAIRN_LAB_SCRIPT")
        .map_err(|_| "set CAIRN_LAB_SCRIPT to the script to run")?;
    // A copy under the lab dir, which the guest sees at the same path
    // (the script itself may live anywhere, /tmp included).
    let copy = lab::group::lab_dir().join("script-input.sh");
    std::fs::create_dir_all(lab::group::lab_dir()).map_err(|e| e.to_string())?;
    std::fs::copy(&script, &copy).map_err(|e| format!("{script}: {e}"))?;
    let script = copy;
    let timeout = std::env::var("CAIRN_LAB_TIMEOUT")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(600);
    let args = vec![
        "--lab-script".to_owned(),
        script.to_string_lossy().into_owned(),
    ];
    // The script's own output is streamed; files it leaves in $OUT come back.
    let report =
        lab::group::boot_and_run("script", 1, 2048, Duration::from_secs(timeout), &args, true)?;
    let produced = report.dirs[0].join("files");
    if let Ok(dest) = std::env::var("CAIRN_LAB_SCRIPT_OUT") {
        let dest = PathBuf::from(dest);
        std::fs::create_dir_all(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        for entry in std::fs::read_dir(&produced).into_iter().flatten().flatten() {
            let to = dest.join(entry.file_name());
            std::fs::copy(entry.path(), &to).map_err(|e| format!("{}: {e}", to.display()))?;
            println!("copied {}", to.display());
        }
    }
    if let Some(trouble) = report.trouble {
        return Err(trouble);
    }
    let code = std::fs::read_to_string(report.dirs[0].join("exit")).unwrap_or_default();
    if code.trim() != "0" {
        return Err(format!("the script exited with {}", code.trim()));
    }
    Ok(())
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if std::env::var_os("CAIRN_LAB_GUEST").is_some() {
        let _ = std::fs::create_dir_all("/lab/out/files");
        guest(argv.get(2).map(String::as_str).unwrap_or(""))
    }
    if let Err(e) = host() {
        eprintln!("cairn-lab: {e}");
        std::process::exit(1);
    }
}
