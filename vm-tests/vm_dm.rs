//! `cairn dm` against the kernel, with dmsetup as the oracle.

#[path = "lab/mod.rs"]
mod lab;

use std::collections::BTreeSet;
use std::time::Duration;

use lab::{Group, Guest, TestResult, VmTest};
use serde_json::Value;

fn cairn_json(g: &Guest, args: &[&str]) -> Result<Vec<Value>, String> {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    let out = g.cairn(&full)?;
    serde_json::from_str::<Vec<Value>>(&out)
        .map_err(|e| format!("cairn {args:?} printed bad JSON ({e}): {out}"))
}

fn targets_match_dmsetup(g: &Guest) -> TestResult {
    let oracle: BTreeSet<(String, String)> = g
        .run(&["dmsetup", "targets"])?
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_owned(), w.next()?.to_owned()))
        })
        .collect();
    let ours: BTreeSet<(String, String)> = cairn_json(g, &["dm", "targets"])?
        .iter()
        .map(|t| {
            let v: Vec<String> = t["version"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.to_string())
                .collect();
            (
                t["name"].as_str().unwrap().to_owned(),
                format!("v{}", v.join(".")),
            )
        })
        .collect();
    ensure!(
        ours == oracle,
        "cairn dm targets {ours:?}\n!= dmsetup targets {oracle:?}"
    );
    for needed in [
        "linear",
        "striped",
        "thin-pool",
        "thin",
        "cache",
        "snapshot",
        "snapshot-origin",
        "snapshot-merge",
        "flakey",
        "error",
    ] {
        ensure!(
            ours.iter().any(|(n, _)| n == needed),
            "target {needed} not loaded: {ours:?}"
        );
    }
    // The text form lists the same lines as dmsetup's.
    let text = g.cairn(&["dm", "targets"])?;
    let text_set: BTreeSet<(String, String)> = text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_owned(), w.next()?.to_owned()))
        })
        .collect();
    ensure!(
        text_set == oracle,
        "text output differs from dmsetup targets:\n{text}"
    );
    Ok(())
}

/// (name, major, minor, event_nr) of every device, from dmsetup.
fn oracle_devices(g: &Guest) -> Result<BTreeSet<(String, u64, u64, u64)>, String> {
    let out = g.output(&[
        "dmsetup",
        "info",
        "-c",
        "--noheadings",
        "--separator",
        " ",
        "-o",
        "name,major,minor,events",
    ])?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "dmsetup info failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("No devices found"))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let n = |i: usize| {
                w.get(i)
                    .and_then(|s| s.parse().ok())
                    .ok_or(format!("bad dmsetup line {l:?}"))
            };
            Ok((w[0].to_owned(), n(1)?, n(2)?, n(3)?))
        })
        .collect()
}

fn ours_devices(g: &Guest) -> Result<BTreeSet<(String, u64, u64, u64)>, String> {
    Ok(cairn_json(g, &["dm", "ls"])?
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap_or_default().to_owned(),
                d["major"].as_u64().unwrap_or(u64::MAX),
                d["minor"].as_u64().unwrap_or(u64::MAX),
                d["event_nr"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect())
}

fn ls_matches_dmsetup(g: &Guest) -> TestResult {
    // Nothing yet: both empty, and the text form says so as dmsetup does.
    ensure!(
        oracle_devices(g)?.is_empty(),
        "the lab VM started with dm devices"
    );
    ensure!(
        ours_devices(g)?.is_empty(),
        "cairn lists devices dmsetup does not"
    );
    ensure!(
        g.cairn(&["dm", "ls"])?.trim() == "No devices found",
        "empty text listing differs"
    );

    let disk = g.loop_disk("dm-ls", 64)?;
    let names = ["lab-linear", "lab--dashed-name", "lab-zero"];
    let result = (|| -> TestResult {
        g.sh(&format!(
            "echo '0 65536 linear {} 0' | dmsetup create {}",
            disk.dev, names[0]
        ))?;
        g.sh(&format!(
            "echo '0 1024 linear {} 65536' | dmsetup create {}",
            disk.dev, names[1]
        ))?;
        g.sh(&format!("echo '0 2048 zero' | dmsetup create {}", names[2]))?;
        // Suspend/resume so that one device's event counter may move; the
        // listing must report whatever the kernel says.
        g.run(&["dmsetup", "suspend", names[0]])?;
        g.run(&["dmsetup", "resume", names[0]])?;
        let oracle = oracle_devices(g)?;
        let ours = ours_devices(g)?;
        ensure!(oracle.len() == 3, "dmsetup shows {oracle:?}");
        ensure!(
            ours == oracle,
            "cairn dm ls {ours:?}\n!= dmsetup {oracle:?}"
        );
        let text = g.cairn(&["dm", "ls"])?;
        let dm_text = g.run(&["dmsetup", "ls"])?;
        let norm = |s: &str| -> BTreeSet<String> {
            s.lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect()
        };
        ensure!(
            norm(&text) == norm(&dm_text),
            "text listing:\n{text}\ndmsetup ls:\n{dm_text}"
        );
        Ok(())
    })();
    for n in names {
        let _ = g.run(&["dmsetup", "remove", n]);
    }
    result?;
    ensure!(ours_devices(g)?.is_empty(), "devices left after removal");
    Ok(())
}

fn main() {
    lab::main(Group {
        name: "vm_dm",
        nodes: 1,
        mem_mib: 1024,
        timeout: Duration::from_secs(180),
        tests: vec![
            VmTest {
                name: "dm_targets_match_dmsetup",
                run: targets_match_dmsetup,
            },
            VmTest {
                name: "dm_ls_matches_dmsetup",
                run: ls_matches_dmsetup,
            },
        ],
        stream_log: false,
        boots: 1,
        disks: &[],
    })
}
