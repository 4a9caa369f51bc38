//! Snapshots on the lab stack (examples/lab.toml) in one VM boot:
//! container snapshots taken with the container frozen, their data equal
//! to what was there at that instant, lvm2 seeing their origins; several
//! containers in one pool transaction; a cairn killed while containers are
//! frozen, and the watchdog thawing them.

#[path = "lab/mod.rs"]
mod lab;
mod stack;

use std::time::Duration;

use lab::guest::CAIRN;
use lab::{Group, Guest, TestResult, VmTest};
use serde_json::Value;
use stack::LAB_TOML;

const DISK_DIR: &str = "/tmp/snap-disks";
const CT: &str = "my-container";

/// The lab stack applied on fresh RAIDs, my-container running.
fn setup(g: &Guest) -> TestResult {
    stack::loop_raids(g, DISK_DIR)?;
    g.sh("rm -f /etc/drbd.d/*.res")?;
    stack::configure_host(g, LAB_TOML)?;
    g.cairn(&["apply", LAB_TOML])?;
    ensure!(
        stack::container_state(g, CT)? == "RUNNING",
        "my-container is not running"
    );
    Ok(())
}

/// The container's init PID (its root is /proc/PID/root).
fn pid(g: &Guest, name: &str) -> Result<String, String> {
    Ok(g.sh(&format!("lxc-info -n {name} -p -H"))?
        .trim()
        .to_owned())
}

/// Writes 4 MiB of random data to `file` in the container's root (from the
/// host, through its mount) and returns its checksum.
fn write_file(g: &Guest, name: &str, file: &str) -> Result<String, String> {
    let p = pid(g, name)?;
    g.sh(&format!(
        "timeout 20 dd if=/dev/urandom of=/proc/{p}/root/{file} bs=1M count=4 status=none
         sync
         sha256sum < /proc/{p}/root/{file}"
    ))
}

/// Neither the container's cgroup nor its file system is frozen, and it runs.
fn thawed(g: &Guest, name: &str) -> TestResult {
    ensure!(
        stack::container_state(g, name)? == "RUNNING",
        "{name} is not running"
    );
    let events = g.sh(&format!(
        "cat $(find /sys/fs/cgroup -maxdepth 4 -type d -name lxc.payload.{name} | head -1)/cgroup.events"
    ))?;
    ensure!(events.contains("frozen 0"), "{name}'s cgroup: {events}");
    // A write completes (it would block on a frozen file system).
    let p = pid(g, name)?;
    g.sh(&format!(
        "timeout 10 sh -c 'echo x > /proc/{p}/root/thaw-check && sync'"
    ))?;
    Ok(())
}

/// Checks a snapshot LV the way a user would: activated (skip ignored),
/// e2fsck clean without a journal replay, `file` there with `sum`, and
/// `absent` not there. Deactivated again.
fn snapshot_holds(g: &Guest, lv: &str, file: &str, sum: &str, absent: &str) -> TestResult {
    g.sh(&format!("lvchange -q -ay -K DRBDVG2/{lv}"))?;
    // A file system frozen when the snapshot was taken has its journal
    // flushed and needs_recovery cleared (ext4_freeze): the proof that the
    // freeze happened, which a clean e2fsck alone is not.
    let features = g.sh(&format!(
        "dumpe2fs -h /dev/DRBDVG2/{lv} 2>/dev/null | grep -i features"
    ))?;
    ensure!(
        !features.contains("needs_recovery"),
        "{lv} was not frozen: {features}"
    );
    let fsck = g.sh(&format!("e2fsck -fn /dev/DRBDVG2/{lv} 2>&1 || echo rc=$?"))?;
    ensure!(!fsck.contains("rc="), "e2fsck of {lv}:\n{fsck}");
    let got = g.sh(&format!(
        "mkdir -p /tmp/snapmnt
         mount -o ro,noload /dev/DRBDVG2/{lv} /tmp/snapmnt
         sha256sum < /tmp/snapmnt/{file}
         test ! -e /tmp/snapmnt/{absent} || echo PRESENT
         umount /tmp/snapmnt"
    ));
    g.sh(&format!("lvchange -q -an DRBDVG2/{lv}"))?;
    let got = got?;
    ensure!(got.starts_with(sum.trim()), "{lv}/{file}: {got} != {sum}");
    ensure!(
        !got.contains("PRESENT"),
        "{lv} has {absent}, written after it"
    );
    Ok(())
}

fn json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("{e}: {text}"))
}

/// The pool's transaction id, as lvm2 reads it from the metadata.
fn transaction_id(g: &Guest) -> Result<u64, String> {
    g.sh("lvs --noheadings -o transaction_id DRBDVG2/VPSthinpool")?
        .trim()
        .parse()
        .map_err(|e| format!("transaction_id: {e}"))
}

fn a_running_container_is_snapshot_frozen_and_thawed(g: &Guest) -> TestResult {
    setup(g)?;
    let sum = write_file(g, CT, "before")?;
    let out = g.cairn(&["--json", "container", "snapshot", CT, "s1", "-f", LAB_TOML])?;
    let taken = json(&out)?;
    ensure!(taken["frozen"] == serde_json::json!([CT]), "{taken}");
    let window = taken["freeze_window_ms"]
        .as_f64()
        .ok_or("no freeze window")?;
    ensure!(
        window > 0.0 && window < 10_000.0,
        "freeze window {window} ms"
    );
    ensure!(taken["snapshots"][0]["lv"] == "my-container.s1", "{taken}");
    ensure!(taken["warnings"] == serde_json::json!([]), "{taken}");
    thawed(g, CT)?;
    write_file(g, CT, "after")?;
    // lvm2 agrees: the origin, the tags, a thin LV with activation skip.
    let lvs = g.sh("lvs --noheadings -o lv_name,origin,lv_tags,segtype DRBDVG2/my-container.s1")?;
    let f: Vec<&str> = lvs.split_whitespace().collect();
    ensure!(
        f.first() == Some(&"my-container.s1")
            && f.get(1) == Some(&CT)
            && f.get(2)
                .is_some_and(|t| t.contains("cairn:container=my-container")
                    && t.contains("cairn:snapshot=s1"))
            && f.get(3) == Some(&"thin"),
        "lvm2 sees: {lvs}"
    );
    snapshot_holds(g, "my-container.s1", "before", &sum, "after")?;
    // A snapshot lvm2 makes is listed too, as another tool's.
    g.sh("lvcreate -q -s -n byhand DRBDVG2/my-container")?;
    let list = json(&g.cairn(&["--json", "container", "snapshots", CT, "-f", LAB_TOML])?)?;
    let rows: Vec<(String, String)> = list
        .as_array()
        .ok_or("not a list")?
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or("").to_owned(),
                s["made_by"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    ensure!(
        rows.contains(&("s1".into(), "cairn".into()))
            && rows.contains(&("byhand".into(), "other".into())),
        "{list}"
    );
    // A name taken, an unknown container, a bad name: refused, nothing made.
    let before = g.sh("lvs --noheadings -o lv_name DRBDVG2 | sort")?;
    for (args, words) in [
        (vec!["container", "snapshot", CT, "s1"], "already"),
        (
            vec!["container", "snapshot", "nosuch", "s2"],
            "no container named nosuch",
        ),
        (
            vec!["container", "snapshot", CT, "a.b"],
            "invalid snapshot name",
        ),
        (
            vec!["container", "snapshot-remove", CT, "nosuch", "--yes"],
            "no snapshot named nosuch",
        ),
    ] {
        let mut argv = vec![CAIRN];
        argv.extend(&args);
        argv.extend(["-f", LAB_TOML]);
        let o = g.output(&argv)?;
        let err = String::from_utf8_lossy(&o.stderr);
        ensure!(
            !o.status.success() && err.contains(words),
            "{args:?}: {err}"
        );
    }
    ensure!(
        g.sh("lvs --noheadings -o lv_name DRBDVG2 | sort")? == before,
        "a refusal changed the VG"
    );
    thawed(g, CT)?;
    // Removal: cairn's by its name, lvm2's by its LV's.
    g.cairn(&[
        "container",
        "snapshot-remove",
        CT,
        "s1",
        "--yes",
        "-f",
        LAB_TOML,
    ])?;
    g.cairn(&[
        "container",
        "snapshot-remove",
        CT,
        "byhand",
        "--yes",
        "-f",
        LAB_TOML,
    ])?;
    let left = g.sh("lvs --noheadings -o lv_name DRBDVG2")?;
    ensure!(
        !left.contains("s1") && !left.contains("byhand"),
        "left: {left}"
    );
    Ok(())
}

fn several_containers_in_one_pool_transaction(g: &Guest) -> TestResult {
    for c in ["c2", "c3"] {
        g.cairn(&[
            "container",
            "create",
            c,
            "--size",
            "100M",
            "--start",
            "-f",
            LAB_TOML,
        ])?;
    }
    let sums: Vec<String> = [CT, "c2", "c3"]
        .iter()
        .map(|c| write_file(g, c, "group-before"))
        .collect::<Result<_, _>>()?;
    let tid = transaction_id(g)?;
    let out = g.cairn(&[
        "--json",
        "snapshot",
        "containers",
        "--all",
        "-n",
        "g1",
        "--tag",
        "nightly",
        "-f",
        LAB_TOML,
    ])?;
    let taken = json(&out)?;
    ensure!(
        transaction_id(g)? == tid + 1,
        "more than one pool transaction: {tid} -> {}",
        transaction_id(g)?
    );
    let frozen = taken["frozen"].as_array().map_or(0, |a| a.len());
    ensure!(frozen == 3, "frozen: {taken}");
    ensure!(
        taken["freeze_window_ms"].as_f64().is_some_and(|w| w > 0.0),
        "{taken}"
    );
    ensure!(taken["warnings"] == serde_json::json!([]), "{taken}");
    for (c, sum) in [CT, "c2", "c3"].iter().zip(&sums) {
        thawed(g, c)?;
        write_file(g, c, "group-after")?;
        let lv = format!("{c}.g1");
        let tags = g.sh(&format!("lvs --noheadings -o lv_tags DRBDVG2/{lv}"))?;
        ensure!(tags.contains("cairn:group=nightly"), "{lv}: {tags}");
        snapshot_holds(g, &lv, "group-before", sum, "group-after")?;
    }
    Ok(())
}

fn a_cairn_killed_while_containers_are_frozen_leaves_them_thawed(g: &Guest) -> TestResult {
    lab::guest::crash_points()?;
    for point in ["snapshot-frozen", "thin-before-transaction-id"] {
        let o = g.sh(&format!(
            "CAIRN_CRASH_AT={point} {CAIRN} container snapshot {CT} crash -f {LAB_TOML} 2>&1 || echo rc=$?"
        ))?;
        ensure!(o.contains("rc=134"), "no crash at {point}:\n{o}");
        // The watchdog thaws what the dead process held: at once, not at
        // the deadline (the pipe closed).
        std::thread::sleep(Duration::from_secs(1));
        thawed(g, CT)?;
        let suspended =
            g.sh("dmsetup info -c --noheadings -o name,suspended | grep -i suspended || true")?;
        ensure!(
            suspended.trim().is_empty(),
            "left suspended after {point}: {suspended}"
        );
        // A crash after commit A left the snapshot queued: activating the
        // pool finishes it (or takes it back), then it can be removed.
        g.cairn(&["lv", "activate", "DRBDVG2/VPSthinpool"])?;
        let list = g.cairn(&["container", "snapshots", CT, "-f", LAB_TOML])?;
        if list.contains("crash") {
            g.cairn(&[
                "container",
                "snapshot-remove",
                CT,
                "crash",
                "--yes",
                "-f",
                LAB_TOML,
            ])?;
        }
    }
    // A signal to cairn's whole process group (timeout, Ctrl-C, a service
    // stop) inside the freeze: the watchdog is in a session of its own.
    let o = g.sh(&format!(
        "CAIRN_DELAY_AT=snapshot-frozen:8000 timeout -s TERM 3 {CAIRN} container snapshot {CT} term \
         -f {LAB_TOML} 2>&1 || echo rc=$?"
    ))?;
    ensure!(o.contains("rc=124"), "not stopped by timeout:\n{o}");
    std::thread::sleep(Duration::from_secs(1));
    thawed(g, CT)?;
    g.cairn(&["lv", "activate", "DRBDVG2/VPSthinpool"])?;
    if g.cairn(&["container", "snapshots", CT, "-f", LAB_TOML])?
        .contains("term")
    {
        g.cairn(&[
            "container",
            "snapshot-remove",
            CT,
            "term",
            "--yes",
            "-f",
            LAB_TOML,
        ])?;
    }
    // A deadline that passes while cairn lives (held 3 s inside the
    // freeze, deadline 1 s): the watchdog thaws, and the snapshots, maybe
    // not consistent, are taken back.
    let err = g.sh(&format!(
        "CAIRN_DELAY_AT=snapshot-frozen:3000 {CAIRN} container snapshot {CT} late \\
         --freeze-deadline 1 -f {LAB_TOML} 2>&1 || echo rc=$?"
    ))?;
    ensure!(
        err.contains("rc=") && err.contains("past the freeze deadline"),
        "{err}"
    );
    ensure!(
        !g.sh("lvs --noheadings -o lv_name DRBDVG2")?
            .contains("late"),
        "kept: {err}"
    );
    thawed(g, CT)?;
    // A container frozen by its owner stays frozen.
    g.sh(&format!("lxc-freeze -n {CT}"))?;
    g.cairn(&["container", "snapshot", CT, "while-frozen", "-f", LAB_TOML])?;
    ensure!(
        stack::container_state(g, CT)? == "FROZEN",
        "cairn thawed a container frozen before"
    );
    g.sh(&format!("lxc-unfreeze -n {CT}"))?;
    thawed(g, CT)?;
    // The pool's metadata is sound: thin_check with the VG down.
    g.sh("for c in $(lxc-ls); do lxc-stop -k -n $c; done")?;
    g.sh("vgchange -q -an DRBDVG2
         lvchange -q -y -ay DRBDVG2/VPSthinpool_tmeta
         thin_check /dev/DRBDVG2/VPSthinpool_tmeta
         lvchange -q -an DRBDVG2/VPSthinpool_tmeta")?;
    g.sh("vgck DRBDVG2")?;
    Ok(())
}

fn main() {
    lab::main(Group {
        name: "vm_snapshot",
        nodes: 1,
        mem_mib: 2048,
        timeout: Duration::from_secs(1200),
        tests: vec![
            VmTest {
                name: "a_running_container_is_snapshot_frozen_and_thawed",
                run: a_running_container_is_snapshot_frozen_and_thawed,
            },
            VmTest {
                name: "several_containers_in_one_pool_transaction",
                run: several_containers_in_one_pool_transaction,
            },
            VmTest {
                name: "a_cairn_killed_while_containers_are_frozen_leaves_them_thawed",
                run: a_cairn_killed_while_containers_are_frozen_leaves_them_thawed,
            },
        ],
        stream_log: false,
        boots: 1,
        disks: &[],
    });
}
