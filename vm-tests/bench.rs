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
#[path = "stack/mod.rs"]
mod stack;

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
    /// Run (untimed) after each timed command, to undo what it did.
    reset: Option<Vec<String>>,
    /// Rounds, when fewer than the default suit a slow pair.
    rounds: Option<usize>,
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// The LVM reports (cairn vs lvm2, same fields) and vg create, on the VGs
/// that `meta_setup` builds: vgb200 with 200 LVs, and a spare PV.
fn meta_pairs(spare: &str) -> Vec<Pair> {
    let cairn = |args: &str| {
        let mut v = vec![CAIRN.to_owned()];
        v.extend(words(args));
        v
    };
    let lvm = |cmd: &str, fields: &str, vg: &str| {
        words(&format!(
            "{cmd} --reportformat json --units b --nosuffix -o {fields} {vg}"
        ))
    };
    let lv_fields = cairn::lvm::report::LV_FIELDS.join(",");
    let vg_fields = cairn::lvm::report::VG_FIELDS.join(",");
    let pv_fields = cairn::lvm::report::PV_FIELDS.join(",");
    vec![
        Pair {
            name: "lvs_200",
            cairn: cairn("--json lvs vgb200"),
            baseline: lvm("lvs", &lv_fields, "vgb200"),
            reset: None,
            rounds: None,
        },
        Pair {
            name: "vgs",
            cairn: cairn("--json vgs vgb200"),
            baseline: lvm("vgs", &vg_fields, "vgb200"),
            reset: None,
            rounds: None,
        },
        Pair {
            name: "pvs",
            cairn: cairn("--json pvs --vg vgb200"),
            baseline: words(&format!(
                "pvs --reportformat json --units b --nosuffix -o {pv_fields} --select vg_name=vgb200"
            )),
            reset: None,
            rounds: None,
        },
        Pair {
            name: "vg_create",
            cairn: cairn(&format!("vg create vgnew {spare}")),
            baseline: words(&format!("vgcreate -q vgnew {spare}")),
            reset: Some(words("vgremove -q -f vgnew")),
            rounds: Some(10),
        },
    ]
}

/// Builds the VGs the LVM pairs use, through cairn's library (200 and 1000
/// lvcreates with lvm2 would take minutes here): returns the spare PV.
fn meta_setup(g: &Guest) -> Result<(Vec<lab::guest::LoopDisk>, String), String> {
    let disks = vec![
        g.loop_disk("b200", 2048)?,
        g.loop_disk("b1000", 8192)?,
        g.loop_disk("spare", 64)?,
    ];
    let env = cairn::meta::ops::Env {
        command: "cairn bench setup".into(),
        ..Default::default()
    };
    for d in &disks {
        g.cairn(&["pv", "create", &d.dev])?;
    }
    for (vg, disk, count) in [("vgb200", &disks[0], 200), ("vgb1000", &disks[1], 1000)] {
        g.cairn(&["vg", "create", vg, &disk.dev])?;
        let mut change =
            cairn::meta::ops::begin_change(&env, vg, &[]).map_err(|e| e.to_string())?;
        for i in 0..count {
            cairn::meta::ops::add_linear_lv(&mut change.metadata.vg, &format!("lv{i:04}"), 1, None)
                .map_err(|e| e.to_string())?;
        }
        let _ = change.commit(&env, &[]).map_err(|e| e.to_string())?;
    }
    let spare = disks[2].dev.clone();
    Ok((disks, spare))
}

/// Peak RSS (KiB) of a command: measured by a fresh copy of this binary,
/// so that no other child counts (RUSAGE_CHILDREN keeps the maximum).
fn peak_rss_kib(argv: &[String]) -> Result<u64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .arg("--rss-of")
        .args(argv)
        .output()
        .map_err(|e| e.to_string())?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| format!("rss probe failed: {}", String::from_utf8_lossy(&out.stderr)))
}

/// Gives `pool` in `vg` `n` more thin LVs named `{prefix}NNNN`, the fast
/// way (one metadata commit, then the create_thin messages): lvcreate 1000
/// times would take most of an hour here. The pool must already have a
/// thin LV (so its layout is final) and be active.
fn bulk_thin(vg: &str, pool: &str, prefix: &str, n: u64) -> Result<(), String> {
    use cairn::meta::model::{Segment, SegmentKind};
    let env = cairn::meta::ops::Env {
        command: "cairn bench setup".into(),
        ..Default::default()
    };
    let mut change = cairn::meta::ops::begin_change(&env, vg, &[]).map_err(|e| e.to_string())?;
    let v = &mut change.metadata.vg;
    let mut next = v
        .lvs
        .iter()
        .filter_map(|l| match l.segments.first().map(|s| &s.kind) {
            Some(SegmentKind::Thin { device_id, .. }) => Some(*device_id),
            _ => None,
        })
        .max()
        .unwrap_or(0)
        + 1;
    let tid = match v.lv(pool).and_then(|p| p.segments.first()).map(|s| &s.kind) {
        Some(SegmentKind::ThinPool { transaction_id, .. }) => *transaction_id,
        _ => return Err(format!("{vg}/{pool} is not a thin pool")),
    };
    let first = next;
    for i in 0..n {
        let seg = Segment {
            start_extent: 0,
            extent_count: 1,
            reshape_count: None,
            type_flags: vec![],
            tags: vec![],
            kind: SegmentKind::Thin {
                thin_pool: pool.to_owned(),
                transaction_id: tid,
                device_id: next,
                external_origin: None,
                origin: None,
                merge: None,
            },
            extra: Default::default(),
        };
        v.lvs.push(
            cairn::meta::ops::new_lv(&format!("{prefix}{i:04}"), vec![seg])
                .map_err(|e| e.to_string())?,
        );
        next += 1;
    }
    if let Some(SegmentKind::ThinPool { transaction_id, .. }) = v
        .lv_mut(pool)
        .and_then(|p| p.segments.first_mut())
        .map(|s| &mut s.kind)
    {
        *transaction_id = tid + 1;
    }
    let ctl = cairn::dm::Control::open().map_err(|e| e.to_string())?;
    let tpool = cairn::lvm::names::dm_name(vg, pool, Some("tpool"));
    for id in first..next {
        ctl.message(&tpool, &format!("create_thin {id}"))
            .map_err(|e| e.to_string())?;
    }
    ctl.message(&tpool, &format!("set_transaction_id {tid} {}", tid + 1))
        .map_err(|e| e.to_string())?;
    let _ = change.commit(&env, &[]).map_err(|e| e.to_string())?;
    Ok(())
}

/// VGs for the LV pairs: vgt (a pool with a few thin LVs), vgt200 (200 thin
/// LVs, inactive), vgt1000 (1000 thin LVs).
fn lv_setup(g: &Guest) -> Result<Vec<lab::guest::LoopDisk>, String> {
    let disks = vec![
        g.loop_disk("t", 1024)?,
        g.loop_disk("t200", 1024)?,
        g.loop_disk("t1000", 2048)?,
    ];
    for (vg, disk) in [
        ("vgt", &disks[0]),
        ("vgt200", &disks[1]),
        ("vgt1000", &disks[2]),
    ] {
        g.sh(&format!(
            "set -e; pvcreate -q {0}; vgcreate -q {vg} {0}
            lvcreate -q -y -L 512M --poolmetadatasize 64M -T {vg}/pool
            lvcreate -q -V 4M -T {vg}/pool -n base",
            disk.dev
        ))?;
    }
    g.run(&["lvcreate", "-q", "-V", "4M", "-T", "vgt/pool", "-n", "br"])?;
    // For the linear, thick snapshot and cache pairs.
    g.sh(
        "set -e; lvcreate -q -y -L 4M -n le vgt; lvcreate -q -y -L 8M -n so vgt
        lvcreate -q -y -L 16M -n co vgt; lvcreate -q -y --type cache-pool -L 16M -n cpb vgt
        lvcreate -q -y -L 16M -n cd vgt; lvcreate -q -y --type cache-pool -L 16M -n cpd vgt
        lvconvert -q -y --type cache --cachepool vgt/cpd vgt/cd",
    )?;
    bulk_thin("vgt200", "pool", "t", 199)?;
    bulk_thin("vgt1000", "pool", "t", 999)?;
    g.run(&["vgchange", "-q", "-an", "vgt200"])?;
    Ok(disks)
}

/// Thin LV create, snapshot, remove; VG activation with 200 thin LVs.
fn lv_pairs() -> Vec<Pair> {
    let cairn = |args: &str| {
        let mut v = vec![CAIRN.to_owned()];
        v.extend(words(args));
        v
    };
    vec![
        Pair {
            name: "thin_create",
            cairn: cairn("lv create vgt -n bt -V 4M -T pool"),
            baseline: words("lvcreate -q -V 4M -T vgt/pool -n bt"),
            reset: Some(words("lvremove -q -f vgt/bt")),
            rounds: Some(15),
        },
        Pair {
            name: "thin_create_1000",
            cairn: cairn("lv create vgt1000 -n bt -V 4M -T pool"),
            baseline: words("lvcreate -q -V 4M -T vgt1000/pool -n bt"),
            reset: Some(words("lvremove -q -f vgt1000/bt")),
            rounds: Some(10),
        },
        Pair {
            name: "thin_snapshot",
            cairn: cairn("snapshot create vgt/base -n bs"),
            baseline: words("lvcreate -q -s vgt/base -n bs"),
            reset: Some(words("lvremove -q -f vgt/bs")),
            rounds: Some(15),
        },
        Pair {
            name: "thin_remove",
            cairn: cairn("lv remove vgt/br --yes"),
            baseline: words("lvremove -q -f vgt/br"),
            reset: Some(words("lvcreate -q -V 4M -T vgt/pool -n br")),
            rounds: Some(15),
        },
        Pair {
            name: "linear_create",
            cairn: cairn("lv create vgt -n bl -L 8M"),
            baseline: words("lvcreate -q -y -L 8M -n bl vgt"),
            reset: Some(words("lvremove -q -f vgt/bl")),
            rounds: Some(15),
        },
        Pair {
            name: "linear_extend",
            cairn: cairn("lv extend vgt/le -L +4M"),
            baseline: words("lvextend -q -L +4M vgt/le"),
            reset: Some(words("lvreduce -q -f -L 4M vgt/le")),
            rounds: Some(15),
        },
        Pair {
            name: "thick_snapshot",
            cairn: cairn("snapshot create vgt/so -n ts -L 8M"),
            baseline: words("lvcreate -q -y -L 8M -s -n ts vgt/so"),
            reset: Some(words("lvremove -q -f vgt/ts")),
            rounds: Some(15),
        },
        Pair {
            name: "thinpool_create",
            cairn: cairn("thinpool create vgt/bp -L 16M"),
            baseline: words("lvcreate -q -y -L 16M -T vgt/bp"),
            reset: Some(words("lvremove -q -f vgt/bp")),
            rounds: Some(10),
        },
        Pair {
            name: "cache_attach",
            cairn: cairn("cache attach vgt/co --pool cpb"),
            baseline: words("lvconvert -q -y --type cache --cachepool vgt/cpb vgt/co"),
            reset: Some(words("lvconvert -q -y --splitcache vgt/co")),
            rounds: Some(10),
        },
        Pair {
            name: "cache_detach",
            cairn: cairn("cache detach vgt/cd"),
            baseline: words("lvconvert -q -y --splitcache vgt/cd"),
            reset: Some(words(
                "lvconvert -q -y --type cache --cachepool vgt/cpd vgt/cd",
            )),
            rounds: Some(10),
        },
        Pair {
            name: "vg_activate_200",
            cairn: cairn("vg activate vgt200"),
            baseline: words("vgchange -q -ay vgt200"),
            reset: Some(words("vgchange -q -an vgt200")),
            rounds: Some(5),
        },
        Pair {
            name: "vg_deactivate_200",
            cairn: cairn("vg deactivate vgt200"),
            baseline: words("vgchange -q -an vgt200"),
            reset: Some(words("vgchange -q -ay vgt200")),
            rounds: Some(5),
        },
    ]
}

/// The resource file of the DRBD pairs: the seed's r0 + r0-U under other
/// names, minors and ports, so they stand next to the scenario's stack.
const DRBD_CONF: &str = "/tmp/cairn-bench-drbd.conf";

fn drbd_setup(g: &Guest) -> Result<lab::guest::LoopDisk, String> {
    let disk = g.loop_disk("drbdb", 256)?;
    std::fs::write(
        DRBD_CONF,
        format!(
            "resource rb {{\n  on {h} {{\n    device /dev/drbd20;\n    disk {d};\n    \
             address 127.0.0.1:7889;\n    meta-disk internal;\n  }}\n}}\n\
             resource rb-U {{\n  net {{ protocol A; }}\n  stacked-on-top-of rb {{\n    \
             device /dev/drbd30;\n    address 127.0.0.1:7891;\n  }}\n  on offsite {{\n    \
             device /dev/drbd30;\n    disk /dev/bulldisk;\n    address 127.0.0.1:7894;\n    \
             meta-disk internal;\n  }}\n}}\n",
            h = g.hostname(),
            d = disk.dev
        ),
    )
    .map_err(|e| e.to_string())?;
    // Metadata on both levels, made once by drbdadm.
    g.sh(&format!(
        "drbdadm -c {DRBD_CONF} create-md --force rb
        drbdadm -c {DRBD_CONF} up rb || true; drbdadm -c {DRBD_CONF} primary --force rb
        drbdadm -c {DRBD_CONF} create-md --force --stacked rb-U
        drbdadm -c {DRBD_CONF} down rb"
    ))?;
    Ok(disk)
}

/// Bring-up of r0 + r0-U (up, primary, up stacked, primary), status,
/// create-md: cairn against the drbdadm commands of the seed.
fn drbd_pairs(disk: &str) -> Vec<Pair> {
    let sh = |script: String| vec!["sh".to_owned(), "-c".to_owned(), script];
    let c = format!("{CAIRN} drbd -c {DRBD_CONF}");
    let d = format!("drbdadm -c {DRBD_CONF}");
    let down = sh("/lib/drbd/drbdsetup-84 down rb-U; /lib/drbd/drbdsetup-84 down rb".to_owned());
    vec![
        Pair {
            name: "drbd_bring_up",
            cairn: sh(format!(
                "{c} up rb >/dev/null && {c} primary --force rb && {c} up --stacked rb-U \
                 >/dev/null && {c} primary --force --stacked rb-U"
            )),
            // drbdadm up of a resource without a peer exits 1 after attaching.
            baseline: sh(format!(
                "{d} up rb 2>/dev/null; {d} primary --force rb && {d} up --stacked rb-U \
                 && {d} primary --force --stacked rb-U"
            )),
            reset: Some(down),
            rounds: Some(10),
        },
        Pair {
            name: "drbd_create_md",
            cairn: sh(format!("{c} create-md --force rb >/dev/null")),
            // drbdmeta itself (drbdadm's create-md runs it three times).
            baseline: sh(format!(
                "drbdmeta --force 20 v08 {disk} internal create-md >/dev/null 2>&1"
            )),
            reset: None,
            rounds: Some(10),
        },
    ]
}

/// The bring-up of rb + rb-U inside one process (cairn's library: config,
/// apply-al, netlink), without process starts: the floor under the four
/// commands of the pair. Each round is taken down untimed.
fn drbd_bring_up_in_process(g: &Guest, rounds: usize) -> Result<Vec<f64>, String> {
    use cairn::drbd::{adm, admin::Drbd};
    let setup = adm::Setup {
        config: DRBD_CONF.into(),
        hostname: g.hostname().to_owned(),
    };
    let e = |e: adm::AdmError| e.to_string();
    let mut times = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let mut drbd = Drbd::open().map_err(|e| e.to_string())?;
        let rb = setup.target("rb", false).map_err(e)?;
        adm::up(&mut drbd, &rb).map_err(e)?;
        drbd.primary(rb.minor, true).map_err(|e| e.to_string())?;
        let u = setup.target("rb-U", true).map_err(e)?;
        adm::up(&mut drbd, &u).map_err(e)?;
        drbd.primary(u.minor, true).map_err(|e| e.to_string())?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        g.sh("/lib/drbd/drbdsetup-84 down rb-U; /lib/drbd/drbdsetup-84 down rb")?;
    }
    Ok(times)
}

/// Status of the two resources, up: cairn over netlink against drbdadm's.
fn drbd_status_pair() -> Pair {
    Pair {
        name: "drbd_status",
        cairn: words(&format!("{CAIRN} drbd -c {DRBD_CONF} status")),
        baseline: words(&format!("drbdadm -c {DRBD_CONF} status rb")),
        reset: None,
        rounds: Some(30),
    }
}

/// The bare ioctls of a thin LV's creation (two pool messages, then create,
/// load and resume of the thin device), timed in-process: the floor under
/// `cairn lv create`. Each round is undone untimed.
fn thin_create_ioctls(rounds: usize) -> Result<Vec<f64>, String> {
    use cairn::dm::table::{DevRef, TableLine, Target};
    let ctl = cairn::dm::Control::open().map_err(|e| e.to_string())?;
    let e = |e: cairn::dm::Error| e.to_string();
    let tpool = "vgt-pool-tpool";
    let st = ctl.status(tpool).map_err(e)?;
    let tid: u64 = st[0]
        .3
        .split_whitespace()
        .next()
        .and_then(|t| t.parse().ok())
        .ok_or("bad pool status")?;
    let pool = ctl.info(tpool).map_err(e)?.ok_or("no pool")?;
    let mut times = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        ctl.message(tpool, "create_thin 999999").map_err(e)?;
        ctl.message(tpool, &format!("set_transaction_id {tid} {}", tid + 1))
            .map_err(e)?;
        ctl.create("bench-thin", "bench-thin-uuid", false)
            .map_err(e)?;
        let table = [TableLine {
            start: 0,
            length: 8192,
            target: Target::Thin {
                pool: DevRef::Number(pool.major, pool.minor),
                device_id: 999999,
                external_origin: None,
            },
        }];
        ctl.load("bench-thin", &table, false).map_err(e)?;
        ctl.resume("bench-thin").map_err(e)?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        ctl.remove("bench-thin").map_err(e)?;
        ctl.message(tpool, "delete 999999").map_err(e)?;
        ctl.message(tpool, &format!("set_transaction_id {} {tid}", tid + 1))
            .map_err(e)?;
    }
    Ok(times)
}

/// `--rss-of CMD...`: runs CMD, prints its peak RSS in KiB.
fn rss_of(argv: &[String]) -> ! {
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .stdout(Stdio::null())
        .status();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN);
    match (status, usage) {
        (Ok(s), Ok(u)) if s.success() => {
            println!("{}", u.max_rss());
            std::process::exit(0)
        }
        (s, u) => {
            eprintln!("{s:?} {u:?}");
            std::process::exit(1)
        }
    }
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
            reset: None,
            rounds: None,
        },
        Pair {
            name: "dm_targets",
            cairn: cairn(&["dm", "targets"]),
            baseline: argv(&["dmsetup", "targets"]),
            reset: None,
            rounds: None,
        },
    ]
}

const STACK_BENCH_TOML: &str = "/tmp/bench-stack.toml";
const STACK_VOLUMES: u64 = 50;

/// The lab stack (examples/lab.toml without its container) applied on md
/// RAID1s, with 50 thin volumes in the pool; lvm2 configured with cairn's
/// filter. Leaves the stack up.
fn stack_setup(g: &Guest) -> Result<Vec<lab::guest::LoopDisk>, String> {
    let mut disks = Vec::new();
    for (name, mib) in [
        ("sh1", stack::HDD_MIB),
        ("sh2", stack::HDD_MIB),
        ("ss1", stack::SSD_MIB),
        ("ss2", stack::SSD_MIB),
    ] {
        disks.push(g.loop_disk(name, mib)?);
    }
    stack::make_raids(
        g,
        [&disks[0].dev, &disks[1].dev],
        [&disks[2].dev, &disks[3].dev],
    )?;
    let lab = std::fs::read_to_string(stack::LAB_TOML).map_err(|e| e.to_string())?;
    let without_container = lab.split("[[container]]").next().unwrap_or(&lab).to_owned();
    std::fs::write(STACK_BENCH_TOML, without_container).map_err(|e| e.to_string())?;
    // The reference scenario's resource file would clash with cairn's.
    g.sh("rm -f /etc/drbd.d/*.res")?;
    stack::configure_host(g, STACK_BENCH_TOML)?;
    g.cairn(&["apply", STACK_BENCH_TOML])?;
    g.sh(&format!(
        "for i in $(seq -w 1 {STACK_VOLUMES}); do \
           {CAIRN} lv create DRBDVG2 -n vps$i -V 100M -T VPSthinpool >/dev/null; done"
    ))?;
    g.cairn(&["down", STACK_BENCH_TOML])?;
    g.cairn(&["up", STACK_BENCH_TOML])?;
    Ok(disks)
}

/// The bring-up after a reboot: `cairn up` against the seed's way (lvm2
/// activates the VGs, drbdadm brings up and promotes r0, then the stacked
/// r0-U, then lvm2 activates DRBDVG2 with its pool and volumes); and the
/// inspection: `cairn status` against the seed's lvs, vgs, /proc/drbd.
fn stack_pairs() -> Vec<Pair> {
    let sh = |script: String| vec!["sh".to_owned(), "-c".to_owned(), script];
    let f = STACK_BENCH_TOML;
    vec![
        Pair {
            name: "stack_status",
            cairn: sh(format!("{CAIRN} status {f} >/dev/null")),
            baseline: sh(
                "lvs -a >/dev/null 2>&1; vgs >/dev/null 2>&1; cat /proc/drbd >/dev/null".to_owned(),
            ),
            reset: None,
            rounds: Some(10),
        },
        Pair {
            name: "stack_up",
            cairn: sh(format!("{CAIRN} up {f} >/dev/null")),
            // drbdadm up of a resource without a peer exits 1 after attaching.
            baseline: sh(
                "vgchange -q -ay VG1 >/dev/null 2>&1 && vgchange -q -ay DRBDVG >/dev/null 2>&1 \
                 && { drbdadm up r0 2>/dev/null; drbdadm primary --force r0; } \
                 && drbdadm up --stacked r0-U && drbdadm primary --force --stacked r0-U \
                 && vgchange -q -ay DRBDVG2 >/dev/null 2>&1"
                    .to_owned(),
            ),
            reset: Some(sh(format!("{CAIRN} down {f} >/dev/null"))),
            rounds: Some(10),
        },
    ]
}

/// The kernel's part of `cairn up`'s biggest step, the activation of
/// DRBDVG2 (pool, 50 thin LVs): the dm ioctls and nodes alone, planned
/// untimed, run in-process (in waves, as cairn runs them); each round is
/// taken down untimed. No implementation of the bring-up can go below it.
fn stack_activation_floor(g: &Guest, rounds: usize) -> Result<Vec<f64>, String> {
    let host = cairn::Host::new(cairn::HostOptions {
        scan_devices: vec!["/dev/drbd10".into()],
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    let mut times = Vec::new();
    for _ in 0..rounds {
        g.cairn(&["vg", "deactivate", "DRBDVG2", "--devices", "/dev/drbd10"])?;
        let plan = host
            .vg("DRBDVG2")
            .activate(false, cairn::Run::PlanOnly)
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        host.run_planned_steps(&plan).map_err(|e| e.to_string())?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(times)
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
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if !out.status.success() {
        return Err(format!(
            "`{}` failed: {}: {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
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
    let rounds = pair.rounds.unwrap_or(rounds).min(rounds);
    let reset = || -> Result<(), String> {
        if let Some(r) = &pair.reset {
            time_argv(r)?;
        }
        Ok(())
    };
    // A timed command followed by its (untimed) reset.
    let timed = |argv: &[String]| -> Result<f64, String> {
        let ms = time_argv(argv)?;
        reset()?;
        Ok(ms)
    };
    for _ in 0..warmup {
        timed(&pair.cairn)?;
        timed(&pair.baseline)?;
    }
    let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which side goes first so neither always runs warm.
        let (a, b) = if round % 2 == 0 {
            let a = timed(&pair.cairn)?;
            (a, timed(&pair.baseline)?)
        } else {
            let b = timed(&pair.baseline)?;
            (timed(&pair.cairn)?, b)
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
    // ... and of a static, non-PIE executable like cairn: busybox-static.
    let floor_static: Vec<f64> = (0..rounds)
        .map(|_| time_argv(&["busybox".to_owned(), "true".to_owned()]))
        .collect::<Result<_, _>>()?;
    let mut results = Vec::new();
    for pair in pairs().iter().filter(|p| selected(p.name)) {
        results.push(run_pair(pair, warmup, rounds)?);
    }
    reference::teardown(&g)?;
    drop(disks);
    // LVM metadata: reports on a 200-LV VG, vg create, memory at 1000 LVs.
    let (meta_disks, spare) = meta_setup(&g)?;
    for pair in meta_pairs(&spare).iter().filter(|p| selected(p.name)) {
        results.push(run_pair(pair, warmup, rounds)?);
    }
    let lvs_1000: Vec<String> = [CAIRN, "--json", "lvs", "vgb1000"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let rss_1000 = peak_rss_kib(&lvs_1000)?;
    let lvm_lvs_1000: Vec<String> =
        words("lvs --reportformat json -o lv_name,lv_size,lv_attr vgb1000");
    let lvm_rss_1000 = peak_rss_kib(&lvm_lvs_1000)?;
    let _ = g.sh("vgremove -q -ff vgb200 vgb1000");
    drop(meta_disks);
    // LV operations: thin LVs, activation.
    let lv_disks = lv_setup(&g)?;
    for pair in lv_pairs().iter().filter(|p| selected(p.name)) {
        results.push(run_pair(pair, 1, rounds)?);
    }
    let ioctls = thin_create_ioctls(rounds.min(15))?;
    let rss_thin_1000 = peak_rss_kib(
        &[
            CAIRN, "lv", "create", "vgt1000", "-n", "rss", "-V", "4M", "-T", "pool",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>(),
    )?;
    let _ = g.sh("vgchange -q -an vgt vgt200 vgt1000; vgremove -q -ff vgt vgt200 vgt1000");
    drop(lv_disks);
    // DRBD: bring-up, create-md, status.
    let drbd_disk = drbd_setup(&g)?;
    for pair in drbd_pairs(&drbd_disk.dev)
        .iter()
        .filter(|p| selected(p.name))
    {
        results.push(run_pair(pair, 1, rounds)?);
    }
    let status = drbd_status_pair();
    if selected(status.name) {
        g.sh(&format!(
            "{CAIRN} drbd -c {DRBD_CONF} up rb && {CAIRN} drbd -c {DRBD_CONF} primary --force rb \
             && {CAIRN} drbd -c {DRBD_CONF} up --stacked rb-U"
        ))?;
        results.push(run_pair(&status, 3, rounds)?);
    }
    let _ = g.sh("/lib/drbd/drbdsetup-84 down rb-U; /lib/drbd/drbdsetup-84 down rb");
    let drbd_floor = if selected("drbd_bring_up") {
        drbd_bring_up_in_process(&g, rounds.min(10))?
    } else {
        Vec::new()
    };
    drop(drbd_disk);
    // The stack last: its lvm2 filter accepts only the stack's PVs.
    let mut stack_lvs = 0;
    let mut stack_floor = Vec::new();
    if stack_pairs().iter().any(|p| selected(p.name)) {
        let stack_disks = stack_setup(&g)?;
        stack_lvs = g.run(&["dmsetup", "ls"])?.lines().count();
        for pair in stack_pairs().iter().filter(|p| selected(p.name)) {
            results.push(run_pair(pair, 1, rounds)?);
        }
        g.cairn(&["up", STACK_BENCH_TOML])?;
        stack_floor = stack_activation_floor(&g, rounds.min(10))?;
        g.cairn(&["down", STACK_BENCH_TOML])?;
        g.sh("mdadm --stop /dev/md0 /dev/md1")?;
        drop(stack_disks);
    }
    let report = json!({
        "stack_volumes": STACK_VOLUMES,
        "stack_activation_ioctls_ms": stack_floor,
        "stack_activation_ioctls_median_ms": median(&stack_floor),
        "stack_dm_devices_up": stack_lvs,
        "kernel": g.run(&["uname", "-r"])?.trim(),
        "vcpus": 2,
        "accel": "tcg",
        "dm_devices_during_pairs": dm_devices,
        "exec_floor_median_ms": median(&floor),
        "exec_floor_static_median_ms": median(&floor_static),
        "scenario_rounds": scenario_rounds,
        "scenario_steps": steps,
        "pair_rounds": rounds,
        "pair_warmup": warmup,
        "pairs": results,
        "cairn_lvs_1000_peak_rss_kib": rss_1000,
        "thin_create_ioctls_ms": ioctls,
        "thin_create_ioctls_median_ms": median(&ioctls),
        "cairn_thin_create_at_1000_peak_rss_kib": rss_thin_1000,
        "drbd_bring_up_in_process_ms": drbd_floor,
        "drbd_bring_up_in_process_median_ms": median(&drbd_floor),
        "lvm2_lvs_1000_peak_rss_kib": lvm_rss_1000,
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
        "(the floor, fork+exec of /bin/true, is {:.2} ms here; of static busybox true, {:.2} ms)",
        report["exec_floor_median_ms"].as_f64().unwrap_or(f64::NAN),
        report["exec_floor_static_median_ms"]
            .as_f64()
            .unwrap_or(f64::NAN)
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
        "\nPeak RSS of `cairn --json lvs` on a VG with 1000 LVs: {} KiB (lvm2's lvs: {} KiB)",
        report["cairn_lvs_1000_peak_rss_kib"], report["lvm2_lvs_1000_peak_rss_kib"]
    );
    println!(
        "Bare ioctls of a thin LV's creation (2 messages, create, load, resume): {:.2} ms; \
         peak RSS of `cairn lv create` in a pool of 1000 thin LVs: {} KiB",
        report["thin_create_ioctls_median_ms"]
            .as_f64()
            .unwrap_or(f64::NAN),
        report["cairn_thin_create_at_1000_peak_rss_kib"]
    );
    println!(
        "DRBD bring-up of rb + rb-U inside one process (no process starts): {:.2} ms",
        report["drbd_bring_up_in_process_median_ms"]
            .as_f64()
            .unwrap_or(f64::NAN)
    );
    println!(
        "cairn up's activation of DRBDVG2 ({} thin LVs, {} dm devices up in all): its dm ioctls alone, \
         in-process, in waves: {:.2} ms",
        report["stack_volumes"],
        report["stack_dm_devices_up"],
        report["stack_activation_ioctls_median_ms"]
            .as_f64()
            .unwrap_or(f64::NAN)
    );
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
        // A hang guard: the whole bench (scenario, pairs, 1000 thin LVs,
        // the stack) ran past 1200 s once issue 12 held the VG lock through
        // activation.
        lab::group::boot_and_run("bench", 1, 2048, Duration::from_secs(3600), &command, false)?;
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
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--rss-of") {
        rss_of(&argv[2..])
    }
    let in_guest = std::env::var_os("CAIRN_LAB_GUEST").is_some();
    let result = if in_guest { guest_main() } else { host_main() };
    if let Err(e) = result {
        eprintln!("cairn-lab bench: {e}");
        std::process::exit(1);
    }
}
