//! LV activation without lvm2 (src/lvm/activate.rs, engine.rs), with lvm2 as
//! the oracle: on a VG holding every LV type of the seed, cairn's activation
//! gives the kernel the same devices, uuids, tables and /dev entries as
//! `vgchange -ay`; each side deactivates what the other activated; data
//! reads back the same; open LVs, name clashes and --plan change nothing.

#[path = "lv/cache.rs"]
mod cache;
#[path = "lv/crash.rs"]
mod crash;
#[path = "lab/mod.rs"]
mod lab;
#[path = "lv/resize.rs"]
mod resize;
#[path = "lv/twin.rs"]
mod twin;

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

/// Each command fails, and its error says what is expected.
fn expect_refusals(g: &Guest, cases: &[(&[&str], &str)]) -> TestResult {
    for (args, expect) in cases {
        let mut argv = vec![lab::guest::CAIRN];
        argv.extend_from_slice(args);
        let out = g.output(&argv)?;
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(
            !out.status.success() && err.contains(expect),
            "cairn {args:?}: expected {expect:?}, got {err}"
        );
    }
    Ok(())
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

/// A VG with a thin pool made by lvm2, as the seed makes DRBDVG2's.
fn pool_vg(g: &Guest, mib: u64) -> Result<LoopDisk, String> {
    g.sh(
        "umount /mnt/t 2>/dev/null || true; vgchange -q -an vg 2>/dev/null || true
        dmsetup remove_all || true; vgremove -q -ff vg 2>/dev/null || true; rm -rf /dev/vg",
    )?;
    let d = g.loop_disk("thin", mib)?;
    g.sh(&format!(
        "set -e; pvcreate -q {0}; vgcreate -q vg {0}; lvcreate -q -y -L 200M -T vg/pool",
        d.dev
    ))?;
    Ok(d)
}

/// lvm2's view of the pool: (metadata transaction id, kernel transaction id).
fn transaction_ids(g: &Guest) -> Result<(u64, u64), String> {
    let meta = g.sh("lvs --noheadings -o transaction_id vg/pool")?;
    let meta: u64 = meta
        .trim()
        .parse()
        .map_err(|_| format!("lvs said {meta:?}"))?;
    let status = g.sh("dmsetup status vg-pool-tpool 2>/dev/null || dmsetup status vg-pool")?;
    let kernel: u64 = status
        .split_whitespace()
        .nth(3)
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| format!("bad thin-pool status {status:?}"))?;
    Ok((meta, kernel))
}

/// thin_check on the pool's metadata, with the pool down (lvm2 lets the
/// metadata LV be activated alone, read-only, for this).
fn thin_check(g: &Guest) -> TestResult {
    g.sh("vgchange -q -an vg
        lvchange -q -y -ay vg/pool_tmeta
        thin_check /dev/vg/pool_tmeta
        lvchange -q -an vg/pool_tmeta")?;
    Ok(())
}

fn thin_lvs_snapshots_and_removal_as_lvm2s(g: &Guest) -> TestResult {
    let _disk = pool_vg(g, 512)?;
    // The pool's first thin LV (transaction id 0 -> 1, pool re-laid out).
    let plan = g.cairn(&[
        "lv", "create", "vg", "-n", "t1", "-V", "64M", "-T", "pool", "--plan",
    ])?;
    ensure!(
        plan.contains("dm message vg-pool-tpool 0 create_thin 1")
            && plan.contains("set_transaction_id 0 1"),
        "plan:\n{plan}"
    );
    ensure!(transaction_ids(g)? == (0, 0), "--plan changed the pool");
    g.cairn(&["lv", "create", "vg", "-n", "t1", "-V", "64M", "-T", "pool"])?;
    ensure!(
        transaction_ids(g)? == (1, 1),
        "ids after t1: {:?}",
        transaction_ids(g)?
    );
    let lvs = g.sh(
        "lvs --noheadings -o lv_name,segtype,pool_lv,thin_id,lv_size,lv_attr --units m vg/t1",
    )?;
    let f: Vec<&str> = lvs.split_whitespace().collect();
    ensure!(
        f[..5] == ["t1", "thin", "pool", "1", "64.00m"] && f[5].starts_with("Vwi-a"),
        "lvs shows {lvs:?}"
    );
    g.run(&["vgck", "vg"])?;
    g.sh("dd if=/dev/urandom of=/dev/vg/t1 bs=1M count=8 oflag=direct status=none")?;
    let before = g.sh("dd if=/dev/vg/t1 bs=1M count=8 iflag=direct status=none | sha256sum")?;

    // A thin snapshot: inactive (activation skip), keeps the old data.
    g.cairn(&["snapshot", "create", "vg/t1", "-n", "s1"])?;
    ensure!(transaction_ids(g)? == (2, 2), "ids after s1");
    let attr = g.sh("lvs --noheadings -o lv_attr,origin,thin_id vg/s1")?;
    ensure!(
        attr.split_whitespace().collect::<Vec<_>>() == ["Vwi---tz-k", "t1", "2"],
        "s1: {attr:?}"
    );
    g.sh("dd if=/dev/urandom of=/dev/vg/t1 bs=1M count=8 oflag=direct status=none")?;
    g.run(&["lvchange", "-q", "-ay", "-K", "vg/s1"])?;
    let snap = g.sh("dd if=/dev/vg/s1 bs=1M count=8 iflag=direct status=none | sha256sum")?;
    ensure!(snap == before, "the snapshot lost the old data");
    let t1 = g.sh("dd if=/dev/vg/t1 bs=1M count=8 iflag=direct status=none | sha256sum")?;

    // lvm2 re-activates what cairn made; the data is there.
    g.run(&["vgchange", "-q", "-an", "vg"])?;
    g.run(&["vgchange", "-q", "-ay", "vg"])?;
    let again = g.sh("dd if=/dev/vg/t1 bs=1M count=8 iflag=direct status=none | sha256sum")?;
    ensure!(again == t1, "t1 changed across lvm2's re-activation");

    // Mounted: not removed, nothing changed. Without --yes: refused.
    g.sh("mkfs.ext4 -q /dev/vg/t1 && mkdir -p /mnt/t && mount /dev/vg/t1 /mnt/t")?;
    let seqno = g.sh("vgs --noheadings -o vg_seqno vg")?;
    let out = g.output(&[lab::guest::CAIRN, "lv", "remove", "vg/t1", "--yes"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success() && err.contains("in use"), "{err}");
    ensure!(
        g.sh("vgs --noheadings -o vg_seqno vg")? == seqno,
        "metadata changed"
    );
    g.sh("umount /mnt/t")?;
    let out = g.output(&[lab::guest::CAIRN, "lv", "remove", "vg/t1"])?;
    ensure!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--yes"),
        "remove without --yes"
    );

    // Removal of the origin: the snapshot becomes a plain thin LV.
    g.cairn(&["lv", "remove", "vg/t1", "--yes"])?;
    ensure!(transaction_ids(g)? == (3, 3), "ids after removal");
    let origin = g.sh("lvs --noheadings -o origin vg/s1")?;
    ensure!(origin.trim().is_empty(), "s1 still has origin {origin:?}");
    // lvm2 goes on from cairn's transaction id, and cairn from lvm2's.
    g.run(&[
        "lvcreate", "-q", "-V", "16M", "-T", "vg/pool", "-n", "bylvm2",
    ])?;
    g.cairn(&["lv", "create", "vg", "-n", "t3", "-V", "16M", "-T", "pool"])?;
    ensure!(transaction_ids(g)? == (5, 5), "ids after the mix");
    let ids = g.sh("lvs --noheadings -o lv_name,thin_id --select segtype=thin vg | sort")?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    ensure!(
        ids == ["bylvm2", "3", "s1", "2", "t3", "4"],
        "device ids: {ids:?}"
    );
    g.run(&["vgck", "vg"])?;
    thin_check(g)?;
    g.run(&["vgremove", "-q", "-ff", "vg"])?;
    Ok(())
}

fn bad_thin_requests_change_nothing(g: &Guest) -> TestResult {
    let _disk = pool_vg(g, 512)?;
    g.cairn(&["lv", "create", "vg", "-n", "t1", "-V", "16M", "-T", "pool"])?;
    let seqno = || g.sh("vgs --noheadings -o vg_seqno vg");
    let s0 = seqno()?;
    let cases: [(&[&str], &str); 6] = [
        (
            &["lv", "create", "vg", "-n", "t1", "-V", "16M", "-T", "pool"],
            "already has an LV named t1",
        ),
        (
            &["lv", "create", "vg", "-n", "x", "-V", "16M", "-T", "nopool"],
            "no LV named nopool",
        ),
        (
            &[
                "lv", "create", "vg", "-n", "x_tdata", "-V", "16M", "-T", "pool",
            ],
            "reserved",
        ),
        (
            &["lv", "create", "vg", "-n", "x", "-V", "0", "-T", "pool"],
            "above 0",
        ),
        (
            &["snapshot", "create", "vg/pool", "-n", "x"],
            "not a thin LV",
        ),
        (&["lv", "remove", "vg/nope", "--yes"], "no LV named nope"),
    ];
    expect_refusals(g, &cases)?;
    ensure!(seqno()? == s0, "a refused command changed the metadata");
    // The kernel's transaction id moved behind cairn's back: refused.
    g.run(&[
        "dmsetup",
        "message",
        "vg-pool-tpool",
        "0",
        "set_transaction_id 1 7",
    ])?;
    let out = g.output(&[
        lab::guest::CAIRN,
        "lv",
        "create",
        "vg",
        "-n",
        "t2",
        "-V",
        "16M",
        "-T",
        "pool",
    ])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("kernel's transaction id is 7, the metadata's 1"),
        "{err}"
    );
    ensure!(seqno()? == s0, "metadata changed despite the mismatch");
    g.run(&[
        "dmsetup",
        "message",
        "vg-pool-tpool",
        "0",
        "set_transaction_id 7 1",
    ])?;
    // A pool the kernel holds read-only (here by its table's read_only
    // feature, as after a metadata error) takes no create and no removal.
    let reload = |extra: &str| {
        g.sh(&format!(
            "read -r s l t m d c w n rest <<< \"$(dmsetup table vg-pool-tpool)\"
            rest=$(echo \"$rest\" | sed 's/ *read_only//')
            f=$(( n - $(dmsetup table vg-pool-tpool | grep -c read_only || true) {extra} ))
            dmsetup suspend --noflush vg-pool-tpool
            dmsetup load vg-pool-tpool --table \"$s $l $t $m $d $c $w $f $rest {}\"
            dmsetup resume vg-pool-tpool
            dmsetup status vg-pool-tpool",
            if extra.is_empty() { "" } else { "read_only" }
        ))
    };
    let st = reload("+ 1")?;
    ensure!(st.contains(" ro "), "the pool did not turn read-only: {st}");
    expect_refusals(
        g,
        &[
            (
                &["lv", "create", "vg", "-n", "t3", "-V", "16M", "-T", "pool"],
                "read-only metadata",
            ),
            (&["lv", "remove", "vg/t1", "--yes"], "read-only metadata"),
        ],
    )?;
    ensure!(seqno()? == s0, "metadata changed for a read-only pool");
    let st = reload("")?;
    ensure!(
        st.contains(" rw "),
        "the pool did not return to read-write: {st}"
    );
    g.cairn(&["lv", "create", "vg", "-n", "t3", "-V", "16M", "-T", "pool"])?;
    g.run(&["vgremove", "-q", "-ff", "vg"])?;
    Ok(())
}

fn hundred_thin_lvs_each_side(g: &Guest) -> TestResult {
    let _disk = pool_vg(g, 1024)?;
    for i in 0..100 {
        g.cairn(&[
            "lv",
            "create",
            "vg",
            "-n",
            &format!("c{i:03}"),
            "-V",
            "4M",
            "-T",
            "pool",
            "--inactive",
        ])?;
    }
    ensure!(
        transaction_ids(g)? == (100, 100),
        "after cairn: {:?}",
        transaction_ids(g)?
    );
    g.sh("for i in $(seq -w 0 99); do lvcreate -q -an -V 4M -T vg/pool -n l$i; done")?;
    ensure!(
        transaction_ids(g)? == (200, 200),
        "after lvm2: {:?}",
        transaction_ids(g)?
    );
    let n =
        g.sh("lvs --noheadings -o thin_id --select segtype=thin vg | sort -n | uniq | wc -l")?;
    ensure!(n.trim() == "200", "{n} distinct thin ids");
    g.run(&["vgck", "vg"])?;
    thin_check(g)?;
    println!("200 thin LVs, transaction id 200 in metadata and kernel, thin_check clean");
    g.run(&["vgremove", "-q", "-ff", "vg"])?;
    Ok(())
}

/// lvm.conf's autoextend threshold gives the pool a low-water mark; cairn
/// loads the same one (or lvm2 and cairn would disagree on the table).
fn autoextend_threshold_sets_lvm2s_low_water_mark(g: &Guest) -> TestResult {
    let _disk = pool_vg(g, 512)?;
    g.run(&["lvcreate", "-q", "-V", "16M", "-T", "vg/pool", "-n", "t1"])?;
    g.sh("cp /etc/lvm/lvmlocal.conf /tmp/lvmlocal.conf.orig
        sed -i '/^activation {/a thin_pool_autoextend_threshold = 70' /etc/lvm/lvmlocal.conf
        vgchange -q -an vg && vgchange -q -ay vg")?;
    let result = (|| {
        let lvm2 = snapshot(g)?;
        ensure!(
            lvm2.contains("thin-pool 254:0 254:1 128 960 0"),
            "lvm2 did not set the low-water mark 200 MiB / 64 KiB * (100 - 70) % = 960:\n{lvm2}"
        );
        g.run(&["vgchange", "-q", "-an", "vg"])?;
        g.cairn(&["vg", "activate", "vg"])?;
        diff("activation with a threshold", &lvm2, &snapshot(g)?)?;
        // A second cairn command on the live pool takes it as its own.
        g.cairn(&["lv", "create", "vg", "-n", "t2", "-V", "16M", "-T", "pool"])?;
        Ok(())
    })();
    g.sh("cp /tmp/lvmlocal.conf.orig /etc/lvm/lvmlocal.conf")?;
    result?;
    g.run(&["vgremove", "-q", "-ff", "vg"])?;
    Ok(())
}

fn linear_lvs_as_lvm2s(g: &Guest) -> TestResult {
    g.sh(
        "vgchange -q -an vg 2>/dev/null || true; dmsetup remove_all || true
        vgremove -q -ff vg 2>/dev/null || true; rm -rf /dev/vg",
    )?;
    let a = g.loop_disk("la", 128)?;
    let b = g.loop_disk("lb", 128)?;
    // Old data everywhere: a new LV must not show it at its start. (Whole
    // blocks from the pipe, written past the page cache: a short or cached
    // fill once left the LV's second block unfilled.)
    g.sh(&format!(
        "set -e
        for d in {a} {b}; do tr '\\0' '\\377' < /dev/zero | dd of=$d bs=1M count=128 iflag=fullblock oflag=direct status=none || true; done
        pvcreate -q {a} {b}; vgcreate -q vg {a} {b}",
        a = a.dev,
        b = b.dev
    ))?;
    let seqno = || g.sh("vgs --noheadings -o vg_seqno vg");
    g.cairn(&["lv", "create", "vg", "-n", "l1", "-L", "20M", &b.dev])?;
    let lvs = g.sh("lvs --noheadings -o lv_name,lv_size,lv_attr,devices --units m vg/l1")?;
    let f: Vec<&str> = lvs.split_whitespace().collect();
    ensure!(
        f == ["l1", "20.00m", "-wi-a-----", &format!("{}(0)", b.dev)],
        "lvs: {lvs:?}"
    );
    let first = g.sh("dd if=/dev/vg/l1 bs=4096 count=1 status=none | tr -d '\\0' | wc -c")?;
    ensure!(
        first.trim() == "0",
        "{first} non-zero bytes in the first 4 KiB"
    );
    let second =
        g.sh("dd if=/dev/vg/l1 bs=4096 skip=1 count=1 status=none | tr -d '\\377' | wc -c")?;
    ensure!(second.trim() == "0", "more than the first 4 KiB was wiped");

    // Grow it under a mounted file system.
    g.sh(
        "mkfs.ext4 -q /dev/vg/l1 && mkdir -p /mnt/t && mount /dev/vg/l1 /mnt/t
        dd if=/dev/urandom of=/mnt/t/data bs=1M count=8 status=none && sync
        sha256sum /mnt/t/data > /tmp/sum",
    )?;
    let plan = g.cairn(&["lv", "extend", "vg/l1", "-L", "+16M", "--plan"])?;
    ensure!(
        plan.contains("dm load vg-l1")
            && plan.contains("dm suspend vg-l1")
            && plan.contains("dm resume vg-l1"),
        "plan: {plan}"
    );
    g.cairn(&["lv", "extend", "vg/l1", "-L", "+16M"])?;
    g.sh("resize2fs -f /dev/vg/l1 >/dev/null 2>&1 && sha256sum -c /tmp/sum >/dev/null")?;
    g.cairn(&["lv", "extend", "vg/l1", "-L", "60M", &a.dev])?;
    let size = g.sh("lvs --noheadings -o lv_size --units m vg/l1")?;
    ensure!(size.trim() == "60.00m", "size after extends: {size}");
    // The live table is the one lvm2 loads for the new metadata.
    let ours = g.run(&["dmsetup", "table", "vg-l1"])?;
    g.sh("umount /mnt/t && vgchange -q -an vg && vgchange -q -ay vg")?;
    let theirs = g.run(&["dmsetup", "table", "vg-l1"])?;
    ensure!(
        ours == theirs,
        "cairn's live table:\n{ours}lvm2's:\n{theirs}"
    );
    g.run(&["vgck", "vg"])?;

    // Reduce: refused without --yes and while open; then done.
    let s0 = seqno()?;
    let out = g.output(&[lab::guest::CAIRN, "lv", "reduce", "vg/l1", "-L", "30M"])?;
    ensure!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--yes"),
        "reduce without --yes"
    );
    g.sh("mount /dev/vg/l1 /mnt/t")?;
    let out = g.output(&[
        lab::guest::CAIRN,
        "lv",
        "reduce",
        "vg/l1",
        "-L",
        "30M",
        "--yes",
    ])?;
    ensure!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("is open"),
        "reduce while mounted: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = g.output(&[lab::guest::CAIRN, "lv", "remove", "vg/l1", "--yes"])?;
    ensure!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("in use"),
        "remove while mounted"
    );
    ensure!(seqno()? == s0, "a refused command changed the metadata");
    g.sh("umount /mnt/t")?;
    g.cairn(&["lv", "reduce", "vg/l1", "-L", "30M", "--yes"])?;
    let size = g.sh("lvs --noheadings -o lv_size --units m vg/l1")?;
    ensure!(size.trim() == "32.00m", "size after reduce: {size}");
    ensure!(
        g.run(&["blockdev", "--getsize64", "/dev/vg/l1"])?.trim() == (32u64 << 20).to_string(),
        "the kernel's size did not follow"
    );

    // Bad requests change nothing.
    let s1 = seqno()?;
    let cases: [(&[&str], &str); 5] = [
        (
            &["lv", "create", "vg", "-n", "big", "-L", "1G"],
            "free extents",
        ),
        (
            &["lv", "create", "vg", "-n", "l1", "-L", "4M"],
            "already has an LV named l1",
        ),
        (
            &["lv", "create", "vg", "-n", "x", "-L", "4M", "/dev/null"],
            "has no PV on /dev/null",
        ),
        (
            &["lv", "extend", "vg/l1", "-L", "8M"],
            "extend to more than that",
        ),
        (
            &["lv", "create", "vg", "-n", "snapshot1", "-L", "4M"],
            "reserved",
        ),
    ];
    expect_refusals(g, &cases)?;
    ensure!(seqno()? == s1, "a refused command changed the metadata");

    g.cairn(&["lv", "remove", "vg/l1", "--yes"])?;
    ensure!(
        g.sh("lvs --noheadings vg | wc -l")?.trim() == "0",
        "l1 still listed"
    );
    ensure_no_devices(g)?;
    g.run(&["vgck", "vg"])?;
    g.run(&["vgremove", "-q", "-ff", "vg"])?;
    Ok(())
}

fn thin_pool_create_as_lvcreate_t(g: &Guest) -> TestResult {
    g.sh(
        "vgchange -q -an vg vgc vgl 2>/dev/null || true; dmsetup remove_all || true
        vgremove -q -ff vg vgc vgl 2>/dev/null || true; rm -rf /dev/vg /dev/vgc /dev/vgl",
    )?;
    let l = g.loop_disk("pl", 512)?;
    let c = g.loop_disk("pc", 512)?;
    g.sh(&format!(
        "set -e; pvcreate -q {l} {c}; vgcreate -q vgl {l}; vgcreate -q vgc {c}
        lvcreate -q -y -L 100M -T vgl/pool",
        l = l.dev,
        c = c.dev
    ))?;
    let plan = g.cairn(&["thinpool", "create", "vgc/pool", "-L", "100M", "--plan"])?;
    ensure!(
        plan.contains("zero the first 4194304 bytes of /dev/vgc/pool_tmeta"),
        "plan: {plan}"
    );
    // A mark at the path the zeroing node had before (a predictable
    // $TMPDIR/cairn-<dm name>): left alone now, and the private node goes
    // with its directory.
    g.sh("ln -sfn /dev/null /tmp/cairn-vgc-pool_tmeta-zero")?;
    g.cairn(&["thinpool", "create", "vgc/pool", "-L", "100M"])?;
    let left = g.sh(
        "readlink /tmp/cairn-vgc-pool_tmeta-zero; rm -f /tmp/cairn-vgc-pool_tmeta-zero
        ls -a /dev /tmp | grep '^\\.cairn-' || true",
    )?;
    ensure!(
        left.trim() == "/dev/null",
        "the planted link was touched, or a scratch directory left: {left:?}"
    );
    let fields = "lv_name,lv_size,lv_attr,segtype,chunk_size,lv_metadata_size,data_lv,\
                  metadata_lv,transaction_id,zero,discards,seg_pe_ranges";
    let report = |vg: &str, dev: &str| -> Result<String, String> {
        Ok(
            g.sh(&format!("lvs -a --noheadings --units b -o {fields} {vg}"))?
                .replace(dev, "PV"),
        )
    };
    let (theirs, ours) = (report("vgl", &l.dev)?, report("vgc", &c.dev)?);
    diff("lvs -a of the pools", &theirs, &ours)?;
    // The kernel tables: the same, up to device numbers.
    let tables = |vg: &str| -> Result<String, String> {
        g.sh(&format!(
            "dmsetup table | grep '^{vg}-' | sed 's/^{vg}-//; s/[0-9]*:[0-9]*/D/g' | sort"
        ))
    };
    diff("pool tables", &tables("vgl")?, &tables("vgc")?)?;
    g.run(&["vgck", "vgc"])?;
    g.sh(
        "set -e; vgchange -q -an vgc; lvchange -q -y -ay vgc/pool_tmeta
        thin_check /dev/vgc/pool_tmeta; lvchange -q -an vgc/pool_tmeta; vgchange -q -ay vgc",
    )?;
    // Thin LVs from both sides.
    g.cairn(&["lv", "create", "vgc", "-n", "t1", "-V", "64M", "-T", "pool"])?;
    g.run(&["lvcreate", "-q", "-V", "64M", "-T", "vgc/pool", "-n", "t2"])?;
    g.sh("dd if=/dev/urandom of=/dev/vgc/t1 bs=1M count=8 oflag=direct status=none")?;
    let ids = g.sh("lvs --noheadings -o transaction_id vgc/pool")?;
    ensure!(ids.trim() == "2", "transaction id {ids}");
    expect_refusals(
        g,
        &[
            (
                &["thinpool", "create", "vgc/pool", "-L", "8M"],
                "already has an LV named pool",
            ),
            (
                &[
                    "thinpool",
                    "create",
                    "vgc/p2",
                    "-L",
                    "8M",
                    "--discards",
                    "maybe",
                ],
                "not one of",
            ),
            (
                &["thinpool", "create", "vgc/p2", "-L", "8M", "-c", "32k"],
                "64 KiB to 1 GiB",
            ),
            (
                &["thinpool", "create", "vgc/p2", "-L", "2G"],
                "free extents",
            ),
        ],
    )?;
    g.run(&["vgck", "vgc"])?;
    g.sh("vgchange -q -an vgc vgl && vgremove -q -ff vgc vgl")?;
    Ok(())
}

fn thin_pool_extend_live(g: &Guest) -> TestResult {
    let _disk = pool_vg(g, 512)?;
    g.run(&["lvcreate", "-q", "-V", "300M", "-T", "vg/pool", "-n", "t1"])?;
    g.sh(
        "mkfs.ext4 -q /dev/vg/t1 && mkdir -p /mnt/t && mount /dev/vg/t1 /mnt/t
        dd if=/dev/urandom of=/mnt/t/a bs=1M count=60 status=none && sync
        sha256sum /mnt/t/a > /tmp/sum",
    )?;
    let plan = g.cairn(&["thinpool", "extend", "vg/pool", "-L", "+100M", "--plan"])?;
    ensure!(
        plan.contains("dm suspend vg-pool-tpool (noflush)")
            && plan.contains("dm load vg-pool_tdata"),
        "plan: {plan}"
    );
    g.cairn(&["thinpool", "extend", "vg/pool", "-L", "+100M"])?;
    // Written while and after the pool grew; all of it reads back.
    g.sh(
        "dd if=/dev/urandom of=/mnt/t/b bs=1M count=60 status=none && sync
        sha256sum /mnt/t/b >> /tmp/sum && sha256sum -c /tmp/sum >/dev/null",
    )?;
    let size = g.sh("lvs --noheadings --units m -o lv_size vg/pool")?;
    ensure!(size.trim() == "300.00m", "pool size {size}");
    let ours = g.sh("dmsetup table | grep '^vg-pool' | sort")?;
    g.sh("umount /mnt/t && vgchange -q -an vg && vgchange -q -ay vg")?;
    let theirs = g.sh("dmsetup table | grep '^vg-pool' | sort")?;
    diff("pool tables after the extension", &theirs, &ours)?;
    g.run(&["vgck", "vg"])?;
    thin_check(g)?;
    expect_refusals(
        g,
        &[
            (
                &["thinpool", "extend", "vg/pool", "-L", "100M"],
                "pools do not shrink",
            ),
            (
                &["thinpool", "extend", "vg/t1", "-L", "+4M"],
                "not a thin pool",
            ),
        ],
    )?;
    g.run(&["vgremove", "-q", "-ff", "vg"])?;
    Ok(())
}

/// The seed's whole-stack snapshot: a thick snapshot of a mounted LV.
fn thick_snapshots_as_lvcreate_s(g: &Guest) -> TestResult {
    g.sh(
        "umount /mnt/t /mnt/s 2>/dev/null || true; vgchange -q -an vg 2>/dev/null || true
        dmsetup remove_all || true; vgremove -q -ff vg 2>/dev/null || true; rm -rf /dev/vg",
    )?;
    let d = g.loop_disk("snap", 512)?;
    g.sh(&format!(
        "set -e; pvcreate -q {0}; vgcreate -q vg {0}; lvcreate -q -y -L 100M -n origin vg
        mkfs.ext4 -q /dev/vg/origin; mkdir -p /mnt/t /mnt/s; mount /dev/vg/origin /mnt/t
        echo before > /mnt/t/f; sync",
        d.dev
    ))?;
    let plan = g.cairn(&[
        "snapshot",
        "create",
        "vg/origin",
        "-n",
        "s1",
        "-L",
        "40M",
        "--plan",
    ])?;
    let suspend = plan
        .find("dm suspend vg-origin")
        .ok_or(format!("plan: {plan}"))?;
    let load_snap = plan
        .find("dm load vg-s1\n")
        .ok_or(format!("plan: {plan}"))?;
    ensure!(
        suspend < load_snap,
        "the snapshot is loaded before the origin is suspended:\n{plan}"
    );
    g.cairn(&["snapshot", "create", "vg/origin", "-n", "s1", "-L", "40M"])?;
    g.sh("echo after > /mnt/t/f; sync")?;
    let lvs = g.sh("lvs --noheadings -o lv_name,origin,lv_attr,lv_size --units m vg/s1")?;
    let f: Vec<&str> = lvs.split_whitespace().collect();
    ensure!(
        f == ["s1", "origin", "swi-a-s---", "40.00m"],
        "lvs: {lvs:?}"
    );
    g.sh("mount -o ro,noload /dev/vg/s1 /mnt/s")?;
    let old = g.sh("cat /mnt/s/f")?;
    ensure!(old.trim() == "before", "the snapshot reads {old:?}");
    g.sh("umount /mnt/s")?;
    // A second snapshot of the same origin, then the tables as lvm2 loads them.
    g.cairn(&["snapshot", "create", "vg/origin", "-n", "s2", "-L", "8M"])?;
    // Made live, the origin kept its minor while lvm2's fresh activation
    // makes -real first: compare up to device numbers.
    let masked = |text: String| -> String {
        text.lines()
            .map(|l| {
                l.split([' ', ':'])
                    .filter(|w| !w.chars().all(|c| c.is_ascii_hexdigit()) || w.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let ours = masked(snapshot(g)?);
    g.sh("umount /mnt/t; vgchange -q -an vg; vgchange -q -ay vg")?;
    diff(
        "kernel and /dev state with two snapshots",
        &masked(snapshot(g)?),
        &ours,
    )?;
    g.run(&["vgck", "vg"])?;
    // Overflow the small snapshot: lv_attr and Data% say so, as lvm2's do.
    g.sh("mount /dev/vg/origin /mnt/t
        dd if=/dev/urandom of=/mnt/t/big bs=1M count=12 conv=fsync status=none; umount /mnt/t")?;
    let fields = "lv_name,lv_attr,data_percent";
    let theirs = g.sh(&format!("lvs --noheadings -o {fields} vg"))?;
    let ours = g.cairn(&["--json", "lvs", "vg"])?;
    let v: serde_json::Value = serde_json::from_str(&ours).map_err(|e| e.to_string())?;
    let ours: String = v["report"][0]["lv"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            format!(
                "{} {} {}",
                r["lv_name"].as_str().unwrap_or(""),
                r["lv_attr"].as_str().unwrap_or(""),
                r["data_percent"].as_str().unwrap_or("")
            )
            .trim_end()
            .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let theirs: String = theirs
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n");
    ensure!(theirs.contains("s2 swi-I-s--- 100.00"), "lvm2: {theirs}");
    diff(
        "lv_attr and Data% with an overflowed snapshot",
        &theirs,
        &ours,
    )?;
    // Removal: the snapshots' devices go, the origin is plain again.
    g.sh("mount -o ro,noload /dev/vg/s1 /mnt/s")?;
    expect_refusals(g, &[(&["lv", "remove", "vg/s1", "--yes"], "in use")])?;
    g.sh("umount /mnt/s")?;
    g.cairn(&["lv", "remove", "vg/s2", "--yes"])?;
    g.cairn(&["lv", "remove", "vg/s1", "--yes"])?;
    let ours = snapshot(g)?;
    ensure!(
        !ours.contains("-real")
            && !ours.contains("-cow")
            && ours.contains("vg-origin: 0 204800 linear"),
        "after removal:\n{ours}"
    );
    g.sh("vgchange -q -an vg; vgchange -q -ay vg")?;
    diff(
        "state after the snapshots' removal",
        &masked(snapshot(g)?),
        &masked(ours),
    )?;
    let lvs = g.sh("lvs --noheadings -a -o lv_name vg")?;
    ensure!(
        lvs.split_whitespace().collect::<Vec<_>>() == ["origin"],
        "lvs -a: {lvs}"
    );
    g.run(&["vgck", "vg"])?;
    expect_refusals(
        g,
        &[
            (
                &[
                    "snapshot",
                    "create",
                    "vg/origin",
                    "-n",
                    "x",
                    "-L",
                    "4M",
                    "-c",
                    "3k",
                ],
                "power of 2",
            ),
            (
                &["snapshot", "create", "vg/nope", "-n", "x", "-L", "4M"],
                "no LV named nope",
            ),
            (
                &["snapshot", "create", "vg/origin", "-n", "x"],
                "not a thin LV",
            ),
        ],
    )?;
    g.run(&["vgremove", "-q", "-ff", "vg"])?;
    Ok(())
}

/// The seed's restore: a thick snapshot merged back into its origin, live
/// and, for an open origin, on its next activation.
fn thick_snapshot_merge_restores_the_origin(g: &Guest) -> TestResult {
    g.sh(
        "umount /mnt/t /mnt/s 2>/dev/null || true; vgchange -q -an vg 2>/dev/null || true
        dmsetup remove_all || true; vgremove -q -ff vg 2>/dev/null || true; rm -rf /dev/vg",
    )?;
    let d = g.loop_disk("merge", 512)?;
    g.sh(&format!(
        "set -e; pvcreate -q {0}; vgcreate -q vg {0}; lvcreate -q -y -L 100M -n origin vg
        mkfs.ext4 -q /dev/vg/origin; mkdir -p /mnt/t; mount /dev/vg/origin /mnt/t
        echo before > /mnt/t/f; sync",
        d.dev
    ))?;
    g.cairn(&["snapshot", "create", "vg/origin", "-n", "s1", "-L", "40M"])?;
    g.sh("echo middle > /mnt/t/f; sync")?;
    g.cairn(&["snapshot", "create", "vg/origin", "-n", "s2", "-L", "40M"])?;
    g.sh("echo later > /mnt/t/f; sync; umount /mnt/t")?;
    let plan = g.cairn(&["snapshot", "merge", "vg/s1", "--plan"])?;
    ensure!(
        plan.contains("marked to merge") && plan.contains("snapshot-merge"),
        "plan: {plan}"
    );
    let out = g.cairn(&["snapshot", "merge", "vg/s1"])?;
    ensure!(out.contains("has finished"), "merge: {out}");
    g.sh("mount /dev/vg/origin /mnt/t")?;
    let back = g.sh("cat /mnt/t/f")?;
    ensure!(
        back.trim() == "before",
        "after the merge the origin reads {back:?}"
    );
    // The other snapshot kept its own view through the merge.
    g.sh("mkdir -p /mnt/s && mount -o ro /dev/vg/s2 /mnt/s")?;
    let kept = g.sh("cat /mnt/s/f; umount /mnt/s")?;
    ensure!(kept.trim() == "middle", "s2 reads {kept:?} after s1 merged");
    let lvs = g.sh("lvs --noheadings -a -o lv_name,origin vg | sort")?;
    let lvs: Vec<&str> = lvs.split_whitespace().collect();
    ensure!(
        lvs == ["origin", "s2", "origin"],
        "lvs -a after the merge: {lvs:?}"
    );
    g.sh("umount /mnt/t")?;
    let ours = g.sh("dmsetup table | sed 's/[0-9]*:[0-9]*/D/g' | sort")?;
    g.sh("vgchange -q -an vg && vgchange -q -ay vg")?;
    let theirs = g.sh("dmsetup table | sed 's/[0-9]*:[0-9]*/D/g' | sort")?;
    diff("tables after merging one of two snapshots", &theirs, &ours)?;
    expect_refusals(
        g,
        &[(
            &["snapshot", "remove", "vg/origin", "--yes"],
            "not a snapshot",
        )],
    )?;
    g.cairn(&["snapshot", "remove", "vg/s2", "--yes"])?;
    g.sh("mount /dev/vg/origin /mnt/t")?;
    let ours = g.sh("dmsetup table | sort")?;
    ensure!(
        ours.trim().lines().count() == 1 && ours.contains("vg-origin: 0 204800 linear"),
        "devices after the merge:\n{ours}"
    );
    g.run(&["vgck", "vg"])?;

    // Asked while the origin is mounted: it happens on the next activation,
    // and the command run again then finishes it.
    g.cairn(&["snapshot", "create", "vg/origin", "-n", "s3", "-L", "40M"])?;
    g.sh("echo newer > /mnt/t/f; sync")?;
    let out = g.cairn(&["snapshot", "merge", "vg/s3"])?;
    ensure!(
        out.contains("next activation"),
        "merge of an open origin: {out}"
    );
    let attr = g.sh("lvs --noheadings -o lv_attr vg/origin")?;
    ensure!(
        attr.trim().starts_with('O'),
        "origin attr while a merge waits: {attr}"
    );
    g.sh("umount /mnt/t")?;
    g.cairn(&["lv", "deactivate", "vg/origin"])?;
    g.cairn(&["lv", "activate", "vg/origin"])?;
    let out = g.cairn(&["snapshot", "merge", "vg/s3"])?;
    ensure!(out.contains("has finished"), "second merge call: {out}");
    g.sh("mount /dev/vg/origin /mnt/t")?;
    let back = g.sh("cat /mnt/t/f")?;
    ensure!(
        back.trim() == "before",
        "after the delayed merge the origin reads {back:?}"
    );
    g.sh("umount /mnt/t")?;
    g.run(&["vgck", "vg"])?;
    g.run(&["vgremove", "-q", "-ff", "vg"])?;
    Ok(())
}

/// A thin create killed between its two commits (before the kernel got
/// the message, and after) leaves a pool with the message queued; cairn
/// refuses to stack another change on it and completes it on the pool's
/// next activation, as lvm2 does: kernel and metadata agree again.
fn interrupted_thin_creates_complete_on_activation(g: &Guest) -> TestResult {
    let _disk = pool_vg(g, 512)?;
    g.cairn(&["lv", "create", "vg", "-n", "t1", "-V", "64M", "-T", "pool"])?;
    let crash = |point: &str, name: &str| -> TestResult {
        lab::guest::crash_points()?;
        let out = g.sh(&format!(
            "CAIRN_CRASH_AT={point} {} lv create vg -n {name} -V 64M -T pool 2>&1 || echo rc=$?",
            lab::guest::CAIRN
        ))?;
        ensure!(
            out.contains(&format!("crash point {point} reached")) && out.contains("rc=134"),
            "no crash at {point}: {out}"
        );
        Ok(())
    };
    let queued =
        || g.sh("vgcfgbackup -q -f /tmp/q.vg vg >/dev/null; grep -c 'message1' /tmp/q.vg || true");
    // Killed before the messages: kernel 1, metadata 2 with create queued.
    crash("thin-after-commit-a", "t2")?;
    ensure!(
        transaction_ids(g)? == (2, 1),
        "ids after the first crash: {:?}",
        transaction_ids(g)?
    );
    ensure!(queued()?.trim() == "1", "no queued message");
    let seqno = g.sh("vgs --noheadings -o seqno vg")?;
    expect_refusals(
        g,
        &[(
            &["lv", "create", "vg", "-n", "t9", "-V", "8M", "-T", "pool"],
            "queued by an interrupted command",
        )],
    )?;
    ensure!(
        g.sh("vgs --noheadings -o seqno vg")? == seqno,
        "a refused create changed the VG"
    );
    g.cairn(&["lv", "activate", "vg/t2"])?;
    ensure!(
        transaction_ids(g)? == (2, 2),
        "ids after completion: {:?}",
        transaction_ids(g)?
    );
    ensure!(queued()?.trim() == "0", "the queue was not emptied");
    g.sh("dd if=/dev/urandom of=/dev/vg/t2 bs=1M count=4 oflag=direct status=none")?;
    // Killed after the messages, before the queue was emptied: level ids.
    crash("thin-after-messages", "t3")?;
    ensure!(
        transaction_ids(g)? == (3, 3),
        "ids after the second crash: {:?}",
        transaction_ids(g)?
    );
    ensure!(queued()?.trim() == "1", "no queued message");
    g.cairn(&["vg", "activate", "vg"])?;
    ensure!(queued()?.trim() == "0", "the queue was not emptied");
    g.sh("dd if=/dev/urandom of=/dev/vg/t3 bs=1M count=4 oflag=direct status=none")?;
    // lvm2 agrees: the next create by lvm2 continues the ids.
    g.run(&["lvcreate", "-q", "-V", "8M", "-T", "vg/pool", "-n", "t4"])?;
    ensure!(
        transaction_ids(g)? == (4, 4),
        "ids after lvm2's create: {:?}",
        transaction_ids(g)?
    );
    // Killed between the create and the transaction id: the kernel has the
    // new thin device but not the new id. Sending the create again would
    // fail (EEXIST) and block the pool; the replay deletes it first.
    crash("thin-before-transaction-id", "t5")?;
    ensure!(
        transaction_ids(g)? == (5, 4),
        "ids after the third crash: {:?}",
        transaction_ids(g)?
    );
    g.cairn(&["vg", "activate", "vg"])?;
    ensure!(
        transaction_ids(g)? == (5, 5),
        "ids after the replay: {:?}",
        transaction_ids(g)?
    );
    ensure!(queued()?.trim() == "0", "the queue was not emptied");
    g.sh("dd if=/dev/urandom of=/dev/vg/t5 bs=1M count=4 oflag=direct status=none")?;
    // A removal killed at the same point: the kernel deleted the device;
    // the replayed delete finds none (ENODATA) and goes on.
    let out = g.sh(&format!(
        "CAIRN_CRASH_AT=thin-before-transaction-id {} lv remove --yes vg/t5 2>&1 || echo rc=$?",
        lab::guest::CAIRN
    ))?;
    ensure!(out.contains("rc=134"), "no crash in lv remove: {out}");
    ensure!(
        transaction_ids(g)? == (6, 5),
        "ids after the crashed removal: {:?}",
        transaction_ids(g)?
    );
    g.cairn(&["vg", "activate", "vg"])?;
    ensure!(
        transaction_ids(g)? == (6, 6),
        "ids after the removal's replay: {:?}",
        transaction_ids(g)?
    );
    let lvs = g.sh("lvs --noheadings -o lv_name vg")?;
    ensure!(!lvs.contains("t5"), "t5 is still there: {lvs}");
    g.run(&["vgck", "vg"])?;
    thin_check(g)?;
    g.run(&["vgremove", "-q", "-ff", "vg"])?;
    Ok(())
}

/// A udev that takes cookies but never answers (a control socket and no
/// daemon: what a stuck udev or one without device-mapper's rules looks
/// like to the ioctl) costs cairn its timeout per wait, not a hang.
fn a_silent_udev_does_not_hang_cairn(g: &Guest) -> TestResult {
    g.sh("vgchange -q -an vgu 2>/dev/null || true; vgremove -q -ff vgu 2>/dev/null || true")?;
    let d = g.loop_disk("udev", 64)?;
    g.sh(&format!(
        "set -e; pvcreate -q {0}; vgcreate -q vgu {0}; lvcreate -q -an -L 8M -n x vgu",
        d.dev
    ))?;
    let run = |verb: &str| -> Result<(String, f64), String> {
        let out = g.sh(&format!(
            "mkdir -p /run/udev && touch /run/udev/control
            s=$(date +%s.%N)
            CAIRN_UDEV_TIMEOUT=1 timeout 120 {cairn} lv {verb} vgu/x >/dev/null 2>/tmp/udev.err; rc=$?
            e=$(date +%s.%N); rm -f /run/udev/control
            echo \"$rc $(echo \"$e - $s\" | bc)\"; cat /tmp/udev.err",
            cairn = lab::guest::CAIRN
        ))?;
        let (first, err) = out.split_once('\n').unwrap_or((&out, ""));
        let mut f = first.split_whitespace();
        let rc = f.next().unwrap_or("?");
        let secs: f64 = f.next().and_then(|s| s.parse().ok()).unwrap_or(f64::MAX);
        ensure!(
            rc == "0",
            "cairn lv {verb} under a silent udev: exit {rc}: {err}"
        );
        Ok((err.to_owned(), secs))
    };
    let (err, secs) = run("activate")?;
    ensure!(
        err.contains("udev did not confirm the resume of vgu-x within 1.0 s"),
        "no warning: {err}"
    );
    let quick = secs < 30.0;
    ensure!(quick, "activation took {secs} s");
    ensure!(
        g.sh("test -b /dev/mapper/vgu-x && readlink /dev/vgu/x")?
            .trim()
            == "/dev/mapper/vgu-x",
        "nodes missing after the timeout"
    );
    let (err, secs) = run("deactivate")?;
    ensure!(err.contains("the removal of vgu-x"), "no warning: {err}");
    let quick = secs < 30.0;
    ensure!(quick, "deactivation took {secs} s");
    ensure!(
        g.sh("dmsetup ls | grep -c vgu || true")?.trim() == "0",
        "vgu-x is still there"
    );
    // No cookie semaphore is left behind.
    let sems = g.sh("awk 'NR > 1 && int($1 / 65536) == 3405' /proc/sysvipc/sem | wc -l")?;
    ensure!(sems.trim() == "0", "{sems} cookie semaphores left");
    g.sh("vgremove -q -ff vgu")?;
    Ok(())
}

fn main() {
    lab::main(Group {
        name: "vm_lv",
        nodes: 1,
        mem_mib: 2048,
        // A hang guard, not a speed test: 22 tests take 590 s on an idle
        // 2-core machine and 835 s beside a parallel cargo build.
        timeout: Duration::from_secs(1500),
        tests: vec![
            VmTest {
                name: "reduce_killed_before_its_commit",
                run: crash::reduce_killed_before_its_commit,
            },
            VmTest {
                name: "merge_killed_before_its_last_commit",
                run: crash::merge_killed_before_its_last_commit,
            },
            VmTest {
                name: "uncache_killed_between_its_commits",
                run: crash::uncache_killed_between_its_commits,
            },
            VmTest {
                name: "thin_create_over_a_stale_kernel_device_id",
                run: crash::thin_create_over_a_stale_kernel_device_id,
            },
            VmTest {
                name: "uncache_killed_after_its_commit",
                run: crash::uncache_killed_after_its_commit,
            },
            VmTest {
                name: "merge_not_run_is_not_taken_for_finished",
                run: crash::merge_not_run_is_not_taken_for_finished,
            },
            VmTest {
                name: "interrupted_thin_creates_complete_on_activation",
                run: interrupted_thin_creates_complete_on_activation,
            },
            VmTest {
                name: "a_silent_udev_does_not_hang_cairn",
                run: a_silent_udev_does_not_hang_cairn,
            },
            VmTest {
                name: "cache_pool_attach_extend_detach_as_lvm2s",
                run: cache::cache_pool_attach_extend_detach_as_lvm2s,
            },
            VmTest {
                name: "resizes_of_every_type_as_lvm2s",
                run: resize::resizes_of_every_type_as_lvm2s,
            },
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
            VmTest {
                name: "thin_lvs_snapshots_and_removal_as_lvm2s",
                run: thin_lvs_snapshots_and_removal_as_lvm2s,
            },
            VmTest {
                name: "bad_thin_requests_change_nothing",
                run: bad_thin_requests_change_nothing,
            },
            VmTest {
                name: "autoextend_threshold_sets_lvm2s_low_water_mark",
                run: autoextend_threshold_sets_lvm2s_low_water_mark,
            },
            VmTest {
                name: "linear_lvs_as_lvm2s",
                run: linear_lvs_as_lvm2s,
            },
            VmTest {
                name: "thin_pool_create_as_lvcreate_t",
                run: thin_pool_create_as_lvcreate_t,
            },
            VmTest {
                name: "thin_pool_extend_live",
                run: thin_pool_extend_live,
            },
            VmTest {
                name: "thick_snapshots_as_lvcreate_s",
                run: thick_snapshots_as_lvcreate_s,
            },
            VmTest {
                name: "thick_snapshot_merge_restores_the_origin",
                run: thick_snapshot_merge_restores_the_origin,
            },
            VmTest {
                name: "hundred_thin_lvs_each_side",
                run: hundred_thin_lvs_each_side,
            },
        ],
        stream_log: false,
        boots: 1,
        disks: &[],
    })
}
