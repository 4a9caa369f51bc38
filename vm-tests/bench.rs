//! The lab's bench: in one boot, times every step of the reference scenario
//! (the lvm2/drbdadm/lxc baseline), then runs named pairs (a cairn command
//! and the lvm2/drbdadm/dmsetup command doing the same work) alternately,
//! after a warm-up, on the stack the scenario left up.
//!
//! `cargo bench --bench lab [-- FILTER]`; rounds: CAIRN_BENCH_ROUNDS (pairs,
//! default 30), CAIRN_BENCH_SCENARIO_ROUNDS (default 3). Results: a table on
//! stdout and JSON in target/x86_64-unknown-linux-gnu/tmp/lab/bench.json (or CAIRN_BENCH_JSON).
//! Timings live here, never in a test's pass/fail.

#[path = "lab/mod.rs"]
mod lab;
#[path = "reference/mod.rs"]
mod reference;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lab::guest::CAIRN;
use lab::Guest;
use serde_json::{json, Value};

/// A cairn command and the command it replaces.
struct Pair {
    name: &'static str,
    cairn: Vec<String>,
    baseline: Vec<String>,
}

fn pairs() -> Vec<Pair> {
    let argv = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    let cairn = |words: &[&str]| {
        let mut v = vec![CAIRN.to_owned()];
        v.extend(argv(words));
        v
    };
    vec![
        Pair {
            name: "dm_ls",
            cairn: cairn(&["dm", "ls"]),
            baseline: argv(&["dmsetup", "ls"]),
        },
        Pair {
            name: "dm_targets",
            cairn: cairn(&["dm", "targets"]),
            baseline: argv(&["dmsetup", "targets"]),
        },
    ]
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The user's filter: the first argument that is not an option.
fn filter() -> Option<String> {
    std::env::args().skip(1).find(|a| !a.starts_with('-'))
}

fn selected(name: &str) -> bool {
    filter().is_none_or(|f| name.contains(&f))
}

fn time_argv(argv: &[String]) -> Result<f64, String> {
    let started = Instant::now();
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if !status.success() {
        return Err(format!("`{}` failed: {status}", argv.join(" ")));
    }
    Ok(ms)
}

fn median(v: &[f64]) -> f64 {
    percentile(v, 0.5)
}

fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let pos = p * (s.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
}

fn run_pair(pair: &Pair, warmup: usize, rounds: usize) -> Result<Value, String> {
    for _ in 0..warmup {
        time_argv(&pair.cairn)?;
        time_argv(&pair.baseline)?;
    }
    let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which side goes first so neither always runs warm.
        let (a, b) = if round % 2 == 0 {
            let a = time_argv(&pair.cairn)?;
            (a, time_argv(&pair.baseline)?)
        } else {
            let b = time_argv(&pair.baseline)?;
            (time_argv(&pair.cairn)?, b)
        };
        ours.push(a);
        theirs.push(b);
        ratios.push(b / a);
    }
    Ok(json!({
        "name": pair.name,
        "cairn": pair.cairn.join(" ").replace(CAIRN, "cairn"),
        "baseline": pair.baseline.join(" "),
        "rounds": rounds,
        "cairn_ms": ours,
        "baseline_ms": theirs,
        "cairn_median_ms": median(&ours),
        "baseline_median_ms": median(&theirs),
        "ratio_median": median(&ratios),
        "ratio_p25": percentile(&ratios, 0.25),
        "ratio_p75": percentile(&ratios, 0.75),
    }))
}

/// Runs the reference scenario `rounds` times, timing each step's command;
/// leaves the last round's stack up for the pairs.
fn scenario_baseline(g: &Guest, rounds: usize) -> Result<(Vec<Value>, reference::Disks), String> {
    let mut times: Vec<(String, String, Vec<f64>)> = Vec::new();
    let mut last = None;
    for round in 0..rounds {
        if let Some(disks) = last.take() {
            reference::teardown(g)?;
            drop(disks);
        }
        let disks = reference::prepare(g)?;
        for (i, step) in reference::steps(&disks).into_iter().enumerate() {
            let started = Instant::now();
            step.run(g).map_err(|e| format!("round {round}: {e}"))?;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            if round == 0 {
                times.push((step.name.to_owned(), step.command.clone(), Vec::new()));
            }
            times[i].2.push(ms);
        }
        last = Some(disks);
    }
    let steps = times
        .into_iter()
        .map(|(name, command, ms)| json!({"name": name, "command": command, "ms": ms, "median_ms": median(&ms)}))
        .collect();
    Ok((steps, last.expect("at least one round")))
}

fn guest_main() -> Result<(), String> {
    let g = Guest::new(0);
    let scenario_rounds = env_usize("CAIRN_BENCH_SCENARIO_ROUNDS", 3).max(1);
    let (rounds, warmup) = (env_usize("CAIRN_BENCH_ROUNDS", 30).max(1), 3);
    let (steps, disks) = scenario_baseline(&g, scenario_rounds)?;
    let dm_devices = g.run(&["dmsetup", "ls"])?.lines().count();
    // What any command costs here: fork + exec of /bin/true under TCG.
    let floor: Vec<f64> = (0..rounds)
        .map(|_| time_argv(&["true".to_owned()]))
        .collect::<Result<_, _>>()?;
    let mut results = Vec::new();
    for pair in pairs().iter().filter(|p| selected(p.name)) {
        results.push(run_pair(pair, warmup, rounds)?);
    }
    reference::teardown(&g)?;
    drop(disks);
    let report = json!({
        "kernel": g.run(&["uname", "-r"])?.trim(),
        "vcpus": 2,
        "accel": "tcg",
        "dm_devices_during_pairs": dm_devices,
        "exec_floor_median_ms": median(&floor),
        "scenario_rounds": scenario_rounds,
        "scenario_steps": steps,
        "pair_rounds": rounds,
        "pair_warmup": warmup,
        "pairs": results,
    });
    std::fs::write(
        "/lab/out/bench.json",
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .map_err(|e| format!("cannot write bench.json: {e}"))
}

fn print_report(report: &Value) {
    println!(
        "\ncairn lab bench (kernel {}, TCG, 2 vCPUs)",
        report["kernel"].as_str().unwrap_or("?")
    );
    println!(
        "\nPairs ({} rounds after {} warm-up, alternating; {} dm devices present):",
        report["pair_rounds"], report["pair_warmup"], report["dm_devices_during_pairs"]
    );
    println!(
        "(the floor, fork+exec of /bin/true, is {:.2} ms here)",
        report["exec_floor_median_ms"].as_f64().unwrap_or(f64::NAN)
    );
    println!(
        "{:<14} {:>12} {:>14} {:>8} {:>16}  commands",
        "pair", "cairn ms", "baseline ms", "ratio", "ratio p25-p75"
    );
    for p in report["pairs"].as_array().into_iter().flatten() {
        println!(
            "{:<14} {:>12.2} {:>14.2} {:>7.1}x {:>7.1}-{:<7.1}  {} | {}",
            p["name"].as_str().unwrap_or("?"),
            p["cairn_median_ms"].as_f64().unwrap_or(f64::NAN),
            p["baseline_median_ms"].as_f64().unwrap_or(f64::NAN),
            p["ratio_median"].as_f64().unwrap_or(f64::NAN),
            p["ratio_p25"].as_f64().unwrap_or(f64::NAN),
            p["ratio_p75"].as_f64().unwrap_or(f64::NAN),
            p["cairn"].as_str().unwrap_or("?"),
            p["baseline"].as_str().unwrap_or("?"),
        );
    }
    println!(
        "\nReference scenario baseline (lvm2/drbdadm/lxc, median of {} rounds):",
        report["scenario_rounds"]
    );
    let mut total = 0.0;
    for s in report["scenario_steps"].as_array().into_iter().flatten() {
        let ms = s["median_ms"].as_f64().unwrap_or(f64::NAN);
        total += ms;
        println!(
            "{:<26} {:>8.0} ms  {}",
            s["name"].as_str().unwrap_or("?"),
            ms,
            s["command"].as_str().unwrap_or("?")
        );
    }
    println!("{:<26} {:>8.0} ms", "total", total);
}

fn host_main() -> Result<(), String> {
    let mut command: Vec<String> = std::env::args().skip(1).collect();
    command.push("--lab-guest".into());
    let report =
        lab::group::boot_and_run("bench", 1, 2048, Duration::from_secs(1200), &command, false)?;
    if let Some(trouble) = report.trouble {
        return Err(trouble);
    }
    let produced = report.dirs[0].join("bench.json");
    let text = std::fs::read_to_string(&produced).map_err(|e| {
        format!(
            "the bench produced no results ({e}); its log: {}",
            lab::host::tail_lines(&report.dirs[0].join("job.log"), 40)
        )
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|e| format!("bad bench.json: {e}"))?;
    print_report(&value);
    let dest = std::env::var("CAIRN_BENCH_JSON")
        .map(Into::into)
        .unwrap_or_else(|_| lab::group::lab_dir().join("bench.json"));
    std::fs::write(&dest, text).map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
    println!("\nJSON: {}", dest.display());
    Ok(())
}

fn main() {
    let in_guest = std::env::var_os("CAIRN_LAB_GUEST").is_some();
    let result = if in_guest { guest_main() } else { host_main() };
    if let Err(e) = result {
        eprintln!("cairn-lab bench: {e}");
        std::process::exit(1);
    }
}
