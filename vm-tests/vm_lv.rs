//! LV activation without lvm2 (src/lvm/activate.rs, engine.rs), with lvm2 as
//! the oracle: on a VG holding every LV type of the seed, cairn's activation
//! gives the kernel the same devices, uuids, tables and /dev entries as
//! `vgchange -ay`; each side deactivates what the other activated; data
//! reads back the same; open LVs, name clashes and --plan change nothing.

#[path = "lab/mod.rs"]
mod lab;

use std::time::Duration;

use lab::guest::LoopDisk;
use lab::{Group, Guest, TestResult, VmTest};

/// Builds VG `vg` with lvm2: linear (two segments), striped, thin pools
/// (default features, zeroing off + no passdown, one still new), thin LVs
/// and a thin snapshot, cached LVs (writethrough, writeback), and an origin
/// with two thick snapshots; writes data into some. Leaves it inactive.
fn build_vg(g: &Guest) -> Result<Vec<LoopDisk>, String> {
    // What an earlier test that failed half-way may have left.
    g.sh(
        "umount /mnt/t 2>/dev/null || true; vgchange -q -an vg 2>/dev/null || true
        dmsetup remove_all || true; vgremove -q -ff vg 2>/dev/null || true; rm -rf /dev/vg",
    )?;
    let a = g.loop_disk("a", 1024)?;
    let b = g.loop_disk("b", 256)?;
    let (a_dev, b_dev) = (&a.dev, &b.dev);
    g.sh(&format!(
        "set -e
        pvcreate -q {a_dev} {b_dev}; vgcreate -q vg {a_dev} {b_dev}
        lvcreate -q -y -L 64M -n lin vg {a_dev}
        lvcreate -q -y -L 8M -n two vg {b_dev}; lvextend -q -L 16M vg/two {a_dev}
        lvcreate -q -y -i 2 -I 64k -L 32M -n str vg {a_dev} {b_dev}
        lvcreate -q -y -L 100M -T vg/pool -c 64k
        lvcreate -q -y -V 200M -T vg/pool -n thin
        lvcreate -q -y -L 40M -T vg/pool2 -Zn --discards nopassdown
        lvcreate -q -y -V 20M -T vg/pool2 -n thin2
        lvcreate -q -y -L 20M -T vg/newpool
        lvcreate -q -y -L 100M -n cached vg {a_dev}
        lvcreate -q -y --type cache-pool -L 40M -n cpool vg {b_dev}
        lvconvert -q -y --type cache --cachepool vg/cpool --cachemode writethrough vg/cached
        lvcreate -q -y -L 40M -n cachedwb vg {a_dev}
        lvcreate -q -y --type cache-pool -L 12M -n cpoolwb vg {b_dev}
        lvconvert -q -y --type cache --cachepool vg/cpoolwb --cachemode writeback vg/cachedwb
        lvcreate -q -y -L 40M -n origin vg {a_dev}
        for lv in lin two str thin thin2 cached cachedwb origin; do
            dd if=/dev/urandom of=/dev/vg/$lv bs=1M count=4 oflag=direct status=none
        done
        lvcreate -q -y -s -n thinsnap vg/thin
        lvcreate -q -y -L 8M -s -n snap vg/origin
        dd if=/dev/urandom of=/dev/vg/origin bs=1M count=1 oflag=direct status=none
        lvcreate -q -y -L 8M -s -n snap2 vg/origin
        vgchange -q -an vg"
    ))?;
    ensure_no_devices(g)?;
    Ok(vec![a, b])
}

fn ensure_no_devices(g: &Guest) -> TestResult {
    let ls = g.run(&["dmsetup", "ls"])?;
    ensure!(
        ls.trim() == "No devices found",
        "device-mapper devices are left:\n{ls}"
    );
    ensure!(
        g.sh("test -e /dev/vg && echo yes || echo no")?.trim() == "no",
        "/dev/vg is left behind"
    );
    Ok(())
}

/// What the kernel and /dev show: tables, names/uuids/flags, nodes and links.
fn snapshot(g: &Guest) -> Result<String, String> {
    g.sh("dmsetup table | sort
        echo ---
        dmsetup info -c --noheadings -o name,uuid,attr,major,minor | sort
        echo ---
        cd /dev && find mapper $(test -d vg && echo vg) -mindepth 1 | sort | while read -r p; do
            stat -c '%n %F %a %u:%g %t:%T' \"$p\"
            if [ -L \"$p\" ]; then echo \"  -> $(readlink \"$p\")\"; fi
        done")
}

/// Checksums of the first 4 MiB of every visible, active LV.
fn checksums(g: &Guest) -> Result<String, String> {
    g.sh("for l in /dev/vg/*; do
            case $l in */pool|*/pool2|*/newpool) continue;; esac
            echo \"$l $(dd if=$l bs=1M count=4 iflag=direct status=none | sha256sum)\"
        done")
}

fn diff(what: &str, lvm2: &str, cairn: &str) -> TestResult {
    if lvm2 == cairn {
        return Ok(());
    }
    let l: Vec<&str> = lvm2.lines().collect();
    let c: Vec<&str> = cairn.lines().collect();
    let only_lvm2: Vec<&&str> = l.iter().filter(|x| !c.contains(x)).collect();
    let only_cairn: Vec<&&str> = c.iter().filter(|x| !l.contains(x)).collect();
    Err(format!(
        "{what} differ.\nonly after lvm2:\n{}\nonly after cairn:\n{}",
        only_lvm2
            .iter()
            .map(|s| format!("  {s}"))
            .collect::<Vec<_>>()
            .join("\n"),
        only_cairn
            .iter()
            .map(|s| format!("  {s}"))
            .collect::<Vec<_>>()
            .join("\n")
    ))
}

fn vg_activation_equals_lvm2s(g: &Guest) -> TestResult {
    let _disks = build_vg(g)?;

    // lvm2's activation: the reference.
    g.run(&["vgchange", "-q", "-ay", "vg"])?;
    let lvm2 = snapshot(g)?;
    let lvm2_sums = checksums(g)?;
    g.run(&["vgchange", "-q", "-an", "vg"])?;
    ensure_no_devices(g)?;

    // --plan prints the steps and touches nothing.
    let plan = g.cairn(&["vg", "activate", "vg", "--plan"])?;
    ensure!(
        plan.contains("dm create vg-pool-tpool uuid LVM-")
            && plan.contains("ln -s /dev/mapper/vg-lin /dev/vg/lin"),
        "unexpected plan:\n{plan}"
    );
    ensure_no_devices(g)?;

    // cairn's: the same devices, minors, tables, uuids, nodes and links.
    g.cairn(&["vg", "activate", "vg"])?;
    let ours = snapshot(g)?;
    diff("kernel and /dev state after activation", &lvm2, &ours)?;
    diff("LV contents", &lvm2_sums, &checksums(g)?)?;
    println!(
        "{} devices, {} table lines identical to lvm2's",
        lvm2.split("---")
            .nth(1)
            .unwrap_or("")
            .trim()
            .lines()
            .count(),
        lvm2.split("---")
            .next()
            .unwrap_or("")
            .trim()
            .lines()
            .count()
    );

    // Idempotent: a second activation does nothing.
    let again = g.cairn(&["vg", "activate", "vg"])?;
    ensure!(
        again.contains("nothing to do"),
        "second activation: {again}"
    );

    // lvm2 deactivates what cairn activated, and vice versa.
    g.run(&["vgchange", "-q", "-an", "vg"])?;
    ensure_no_devices(g)?;
    g.run(&["vgchange", "-q", "-ay", "vg"])?;
    g.cairn(&["vg", "deactivate", "vg"])?;
    ensure_no_devices(g)?;

    // lvm2 reads the LVs' data as cairn's devices showed it.
    g.cairn(&["vg", "activate", "vg"])?;
    g.run(&["vgchange", "-q", "-an", "vg"])?;
    g.run(&["vgchange", "-q", "-ay", "vg"])?;
    diff(
        "LV contents after re-activation",
        &lvm2_sums,
        &checksums(g)?,
    )?;
    g.run(&["vgchange", "-q", "-an", "vg"])?;
    g.run(&["vgremove", "-q", "-ff", "vg"])?;
    Ok(())
}

fn one_lv_at_a_time_as_lvchange(g: &Guest) -> TestResult {
    let _disks = build_vg(g)?;
    for lv in ["thin", "cached", "snap", "origin", "str"] {
        g.run(&["lvchange", "-q", "-y", "-ay", &format!("vg/{lv}")])?;
        let lvm2 = snapshot(g)?;
        g.run(&["lvchange", "-q", "-y", "-an", &format!("vg/{lv}")])?;
        let lvm2_after = snapshot(g)?;
        // lvm2 may leave layers it brought up (a snapshot's origin): start
        // each side from nothing.
        g.run(&["vgchange", "-q", "-an", "vg"])?;
        g.cairn(&["lv", "activate", &format!("vg/{lv}")])?;
        diff(&format!("lv activate vg/{lv}"), &lvm2, &snapshot(g)?)?;
        g.cairn(&["lv", "deactivate", &format!("vg/{lv}")])?;
        diff(
            &format!("lv deactivate vg/{lv}"),
            &lvm2_after,
            &snapshot(g)?,
        )?;
        g.run(&["vgchange", "-q", "-an", "vg"])?;
        println!("vg/{lv}: activation and deactivation as lvchange's");
    }
    // The thin snapshot is skipped unless asked for.
    let e = g.cairn(&["lv", "activate", "vg/thinsnap", "--plan"])?;
    ensure!(e.contains("dm create vg-thinsnap"), "{e}");
    g.cairn(&["lv", "activate", "-K", "vg/thinsnap"])?;
    ensure!(
        g.run(&["dmsetup", "table", "vg-thinsnap"])?
            .contains(" thin "),
        "thinsnap not active"
    );
    g.cairn(&["vg", "deactivate", "vg"])?;
    ensure_no_devices(g)?;
    g.run(&["vgremove", "-q", "-ff", "vg"])?;
    Ok(())
}

fn open_lvs_and_name_clashes_change_nothing(g: &Guest) -> TestResult {
    let _disks = build_vg(g)?;
    g.cairn(&["vg", "activate", "vg"])?;
    let before = snapshot(g)?;
    // Mounted: refused, nothing removed.
    g.sh("mkfs.ext4 -q /dev/vg/thin && mkdir -p /mnt/t && mount /dev/vg/thin /mnt/t")?;
    let out = g.output(&[lab::guest::CAIRN, "vg", "deactivate", "vg"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("LV thin is in use") && err.contains("unmount"),
        "deactivating a mounted LV: {err}"
    );
    diff(
        "state after the refused deactivation",
        &before,
        &snapshot(g)?,
    )?;
    let out = g.output(&[lab::guest::CAIRN, "lv", "deactivate", "vg/thin"])?;
    ensure!(
        !out.status.success(),
        "lv deactivate of a mounted LV worked"
    );
    // Another thin LV of the pool goes; the pool stays for the mounted one.
    g.cairn(&["lv", "deactivate", "vg/thin2", "vg/pool2"])?;
    ensure!(
        g.run(&["dmsetup", "info", "vg-pool-tpool"]).is_ok(),
        "pool of the mounted LV was removed"
    );
    g.sh("umount /mnt/t")?;
    g.cairn(&["vg", "deactivate", "vg"])?;
    ensure_no_devices(g)?;

    // A device of another owner on one of the LV's names: refused, and the
    // devices made before it in the same call are removed again.
    g.run(&["dmsetup", "create", "vg-str", "--table", "0 8 zero"])?;
    let out = g.output(&[lab::guest::CAIRN, "vg", "activate", "vg"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("vg-str exists with uuid"),
        "name clash: {err}"
    );
    let ls = g.run(&["dmsetup", "ls"])?;
    ensure!(
        ls.lines().count() == 1 && ls.starts_with("vg-str"),
        "devices left after a refused activation:\n{ls}"
    );
    g.run(&["dmsetup", "remove", "vg-str"])?;

    // A step that fails half-way (the node of vg-str cannot be made): the
    // devices this call created are removed again, newest first.
    g.sh("mkdir -p /dev/mapper/vg-str")?;
    let out = g.output(&[lab::guest::CAIRN, "vg", "activate", "vg"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("/dev/mapper/vg-str"),
        "activation with a blocked node: {err}"
    );
    g.sh("rmdir /dev/mapper/vg-str")?;
    ensure_no_devices(g)?;
    g.run(&["vgremove", "-q", "-ff", "vg"])?;
    Ok(())
}

fn main() {
    lab::main(Group {
        name: "vm_lv",
        nodes: 1,
        mem_mib: 2048,
        timeout: Duration::from_secs(600),
        tests: vec![
            VmTest {
                name: "vg_activation_equals_lvm2s",
                run: vg_activation_equals_lvm2s,
            },
            VmTest {
                name: "one_lv_at_a_time_as_lvchange",
                run: one_lv_at_a_time_as_lvchange,
            },
            VmTest {
                name: "open_lvs_and_name_clashes_change_nothing",
                run: open_lvs_and_name_clashes_change_nothing,
            },
        ],
        stream_log: false,
    })
}
