//! Data safety (issue 12), in one boot, with lvm2 and the kernel as oracles:
//! PVs that keep no metadata belong to their VG; `vg remove --force` never
//! wipes a VG in use; activation holds the VG lock through its table loads;
//! PVs lvm2 flagged MISSING are refused until restored; read-only LVs come
//! up read-only; a suspended device never blocks cairn and is resumed by
//! activation; a host scan never takes a PV label a tenant wrote into an LV.

#[path = "lab/mod.rs"]
mod lab;

use std::collections::BTreeMap;
use std::time::Duration;

use lab::guest::{LoopDisk, CAIRN};
use lab::{Group, Guest, TestResult, VmTest};

/// What an earlier test that failed half-way may have left.
fn clean(g: &Guest, vgs: &str) -> TestResult {
    g.sh(&format!(
        "umount /mnt/safety 2>/dev/null || true
         for vg in {vgs}; do vgchange -q -an $vg 2>/dev/null || true; done
         dmsetup remove_all 2>/dev/null || true
         for vg in {vgs}; do vgremove -q -ff $vg 2>/dev/null || true; rm -rf /dev/$vg; done"
    ))?;
    Ok(())
}

fn disks(g: &Guest, names: &[&str], mib: u64) -> Result<Vec<LoopDisk>, String> {
    names.iter().map(|n| g.loop_disk(n, mib)).collect()
}

/// A cairn command that must fail: its output (stderr included).
fn refused(g: &Guest, args: &[&str]) -> Result<String, String> {
    let out = g.output(&[&[CAIRN][..], args].concat())?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        !out.status.success(),
        "cairn {} should have been refused:\n{text}",
        args.join(" ")
    );
    Ok(text)
}

fn seqno(g: &Guest, vg: &str) -> Result<String, String> {
    Ok(g.sh(&format!("vgs --noheadings -o vg_seqno {vg}"))?
        .trim()
        .to_owned())
}

fn vgck_clean(g: &Guest, vg: &str) -> TestResult {
    let out = g.sh(&format!("vgck {vg} 2>&1"))?;
    ensure!(out.trim().is_empty(), "vgck {vg}:\n{out}");
    Ok(())
}

/// Item 1: a PV made with --metadatacopies 0, or whose area lvm2 ignores,
/// holds no copy of its VG; it is still the VG's, and nothing takes it.
fn pvs_without_metadata_are_their_vgs(g: &Guest) -> TestResult {
    clean(g, "A B C")?;
    let d = disks(g, &["m1", "m2", "m3", "m4", "m5"], 64)?;
    g.sh(&format!(
        "set -e
         pvcreate -q {l1}; pvcreate -q --metadatacopies 0 {l2}; vgcreate -q A {l1} {l2}
         pvcreate -q {l3}; vgcreate -q B {l3}
         pvcreate -q {l4} {l5}; vgcreate -q C {l4} {l5}; pvchange -q --metadataignore y {l5}",
        l1 = d[0].dev,
        l2 = d[1].dev,
        l3 = d[2].dev,
        l4 = d[3].dev,
        l5 = d[4].dev,
    ))?;
    let before = (seqno(g, "A")?, seqno(g, "B")?, seqno(g, "C")?);
    for (pv, vg) in [(&d[1].dev, "A"), (&d[4].dev, "C")] {
        let out = refused(g, &["vg", "extend", "B", pv])?;
        ensure!(
            out.contains(&format!("volume group {vg}")),
            "vg extend B {pv} should name {vg}:\n{out}"
        );
        let out = refused(g, &["pv", "remove", "--yes", pv])?;
        ensure!(
            out.contains(&format!("volume group {vg}")),
            "pv remove {pv} should name {vg}:\n{out}"
        );
        let owner = g.sh(&format!("pvs --noheadings -o vg_name {pv}"))?;
        ensure!(owner.trim() == vg, "lvm2 says {pv} is in {owner:?}");
    }
    ensure!(
        (seqno(g, "A")?, seqno(g, "B")?, seqno(g, "C")?) == before,
        "a refusal changed a VG"
    );
    for vg in ["A", "B", "C"] {
        vgck_clean(g, vg)?;
    }
    // The stack file naming such a PV is refused before anything is done.
    let file = "/tmp/safety-stack.toml";
    std::fs::write(
        file,
        format!(
            "[[vg]]\nname = \"S\"\npvs = [\"{}\"]\n\n[[vg.lv]]\nname = \"lv\"\nsize = \"8M\"\n",
            d[1].dev
        ),
    )
    .map_err(|e| e.to_string())?;
    let out = refused(g, &["plan", file])?;
    ensure!(
        out.contains("another volume group"),
        "the stack took a PV of A:\n{out}"
    );
    ensure!(seqno(g, "A")? == before.0, "plan changed A");
    clean(g, "A B C")
}

/// Item 3: `vg remove --yes --force` deactivates closed LVs and refuses,
/// changing nothing, while one is open (mounted).
fn vg_remove_force_refuses_open_lvs(g: &Guest) -> TestResult {
    clean(g, "V")?;
    let d = g.loop_disk("r1", 128)?;
    g.sh(&format!(
        "set -e
         pvcreate -q {dev}; vgcreate -q V {dev}
         lvcreate -q -y -L 16M -n mounted V; lvcreate -q -y -L 16M -n idle V
         mkfs.ext4 -q /dev/V/mounted; mkdir -p /mnt/safety; mount /dev/V/mounted /mnt/safety
         echo kept > /mnt/safety/data; sync",
        dev = d.dev
    ))?;
    let before = seqno(g, "V")?;
    let out = refused(g, &["vg", "remove", "--yes", "--force", "V"])?;
    ensure!(
        out.contains("in use"),
        "refusal should say the LV is in use:\n{out}"
    );
    ensure!(seqno(g, "V")? == before, "the refused remove changed V");
    vgck_clean(g, "V")?;
    let data = g.sh("cat /mnt/safety/data")?;
    ensure!(data.trim() == "kept", "mounted data: {data:?}");
    let lvs = g.sh("lvs --noheadings -o lv_name V")?;
    ensure!(
        lvs.contains("mounted") && lvs.contains("idle"),
        "LVs after the refusal: {lvs}"
    );
    g.sh("umount /mnt/safety")?;
    g.cairn(&["vg", "remove", "--yes", "--force", "V"])?;
    let left = g.sh("dmsetup ls | grep '^V-' || true")?;
    ensure!(left.trim().is_empty(), "devices left: {left}");
    let pv = g.sh(&format!("pvs --noheadings -o vg_name {} 2>&1", d.dev))?;
    ensure!(pv.trim().is_empty(), "the PV should be an orphan: {pv:?}");
    Ok(())
}

/// Item 5: cairn holds the VG lock from reading the metadata to loading the
/// tables: an lvremove + lvcreate by lvm2 inside that window (made certain
/// by a delay after the plan) waits, and never gets the extents of the LV
/// cairn is loading.
fn activation_holds_the_vg_lock(g: &Guest) -> TestResult {
    clean(g, "L")?;
    let d = g.loop_disk("k1", 64)?;
    g.sh(&format!(
        "set -e; pvcreate -q {dev}; vgcreate -q L {dev}
         lvcreate -q -an -Zn -y -L 8M -n x L; lvcreate -q -an -Zn -y -L 8M -n keep L",
        dev = d.dev
    ))?;
    for round in 0..3 {
        let out = g.sh(&format!(
            "CAIRN_DELAY_AT=activate-planned:3000 {CAIRN} lv activate L/x > /tmp/act.log 2>&1 &
             pid=$!
             sleep 1
             # lvm2 inside the window: x goes, y takes its extents and comes up.
             s=$(date +%s%N)
             lvremove -q -f L/x
             e=$(date +%s%N)
             lvcreate -q -y -Zn -L 8M -n y L
             wait $pid; echo cairn=$? waited_ms=$(( (e - s) / 1000000 ))"
        ))?;
        ensure!(
            out.contains("cairn=0"),
            "round {round}: cairn's activation failed: {out}"
        );
        // lvm2's lvremove waited for the lock cairn held (about 2 s of
        // the 3 s window were left when it started).
        let waited: u64 = out
            .split("waited_ms=")
            .nth(1)
            .and_then(|v| v.trim().parse().ok())
            .ok_or(format!("no timing: {out}"))?;
        ensure!(
            waited >= 1500,
            "round {round}: lvremove did not wait for cairn's lock ({waited} ms)"
        );
        let y = g.sh("dmsetup ls | grep -c '^L-y' || true")?;
        ensure!(y.trim() == "1", "round {round}: lvm2's L/y is not active");
        lab::tables::no_overlap(g, &format!("round {round}")).map_err(|e| {
            let log = g.sh("cat /tmp/act.log").unwrap_or_default();
            format!("{e}\n{log}")
        })?;
        g.sh("lvremove -q -f L/y; lvcreate -q -an -Zn -y -L 8M -n x L; dmsetup remove L-x 2>/dev/null || true")?;
    }
    vgck_clean(g, "L")?;
    clean(g, "L")
}

/// Item 6: lvm2 wrote the VG while a PV was away (vgreduce --removemissing
/// flags it MISSING); with the device back, cairn refuses to write the VG and
/// to activate LVs on it (the others still come up), until
/// `vg extend --restoremissing`, after which lvm2 agrees and all come up.
fn missing_pvs_refused_until_restored(g: &Guest) -> TestResult {
    clean(g, "M")?;
    let a = g.loop_disk("x1", 64)?;
    g.sh("truncate -s 64M /tmp/safety-x2.img")?;
    let b = g
        .sh("losetup -f --show /tmp/safety-x2.img")?
        .trim()
        .to_owned();
    let result = (|| {
        g.sh(&format!(
            "set -e; vgcreate -q M {a} {b}
             lvcreate -q -an -Zn -y -L 8M -n on1 M {a}; lvcreate -q -an -Zn -y -L 8M -n on2 M {b}
             lvcreate -q -an -Zn -y -l 4 -n span M {a}:10-11 {b}:10-11
             losetup -d {b}
             vgreduce -q --removemissing M >/dev/null 2>&1 || true
             losetup {b} /tmp/safety-x2.img",
            a = a.dev
        ))?;
        let flags = missing_flags(g)?;
        ensure!(flags == "1", "lvm2 should flag one PV MISSING: {flags}");
        let before = seqno(g, "M")?;
        let out = refused(g, &["lv", "create", "-L", "4M", "-n", "new", "M"])?;
        ensure!(out.contains("restoremissing"), "lv create refusal:\n{out}");
        let out = refused(g, &["vg", "activate", "M"])?;
        ensure!(
            out.contains("on2") && out.contains("span"),
            "activation should name the partial LVs:\n{out}"
        );
        let active = g.sh("dmsetup ls | awk '{print $1}' | grep '^M-' || true")?;
        ensure!(
            active.trim() == "M-on1",
            "only on1 should be active: {active}"
        );
        ensure!(seqno(g, "M")? == before, "a refusal wrote M");
        // Partial LVs lvm2 brought up anyway are still taken down (by uuid:
        // their tables cannot be planned).
        g.sh("vgchange -q -ay --activationmode partial M >/dev/null 2>&1 || true")?;
        let up = g.sh("dmsetup ls | grep -c '^M-' || true")?;
        ensure!(up.trim() == "3", "lvm2's partial activation: {up}");
        g.cairn(&["vg", "deactivate", "M"])?;
        let left = g.sh("dmsetup ls | grep '^M-' || true")?;
        ensure!(left.trim().is_empty(), "left after deactivate: {left}");
        g.cairn(&["vg", "extend", "--restoremissing", "M", &b])?;
        let flags = missing_flags(g)?;
        ensure!(flags == "0", "still flagged MISSING: {flags}");
        vgck_clean(g, "M")?;
        g.cairn(&["vg", "activate", "M"])?;
        let active = g.sh("dmsetup ls | awk '{print $1}' | grep -c '^M-'")?;
        ensure!(active.trim() == "3", "all three LVs should be up: {active}");
        Ok(())
    })();
    let _ = clean(g, "M");
    let _ = g.sh(&format!("losetup -d {b}; rm -f /tmp/safety-x2.img"));
    result
}

/// How many PVs of VG M lvm2's metadata flags MISSING.
fn missing_flags(g: &Guest) -> Result<String, String> {
    Ok(g.sh(
        "vgcfgbackup -q -f /tmp/safety-M.txt M >/dev/null 2>&1; grep -c '\"MISSING\"' /tmp/safety-M.txt || true",
    )?
    .trim()
    .to_owned())
}

/// The read-only flag of every dm device of VG `vg`.
fn ro_flags(g: &Guest, vg: &str) -> Result<BTreeMap<String, String>, String> {
    let out = g.sh(&format!(
        "for d in $(dmsetup ls | awk '{{print $1}}' | grep '^{vg}-'); do echo $d $(blockdev --getro /dev/mapper/$d); done"
    ))?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect())
}

/// Item 7: LVs without the write permission (lvchange -p r, read-only thin
/// LVs and snapshots) come up read-only, as lvm2 brings them up.
fn read_only_lvs_come_up_read_only(g: &Guest) -> TestResult {
    clean(g, "R")?;
    let d = g.loop_disk("ro1", 256)?;
    g.sh(&format!(
        "set -e; pvcreate -q {dev}; vgcreate -q R {dev}
         lvcreate -q -y -an -Zn -L 16M -n ro R; lvchange -q -pr R/ro
         lvcreate -q -y -L 16M -n orig R; lvcreate -q -y -s -pr -L 8M -n snapro R/orig
         lvcreate -q -y -L 40M -T R/pool
         lvcreate -q -y -V 16M -T R/pool -n thin; lvcreate -q -y -V 16M -T R/pool -n thinro -pr
         vgchange -q -ay R",
        dev = d.dev
    ))?;
    let lvm2 = ro_flags(g, "R")?;
    g.sh("vgchange -q -an R")?;
    g.cairn(&["vg", "activate", "R"])?;
    let cairn = ro_flags(g, "R")?;
    ensure!(
        cairn == lvm2,
        "read-only flags differ:\n  lvm2:  {lvm2:?}\n  cairn: {cairn:?}"
    );
    for dev in ["R-ro", "R-snapro", "R-thinro", "R-pool"] {
        ensure!(
            cairn.get(dev).map(String::as_str) == Some("1"),
            "{dev} is not read-only: {cairn:?}"
        );
    }
    ensure!(
        cairn.get("R-snapro-cow").map(String::as_str) == Some("0"),
        "the COW store must stay writable: {cairn:?}"
    );
    let write = g.output(&[
        "dd",
        "if=/dev/zero",
        "of=/dev/R/ro",
        "bs=4k",
        "count=1",
        "oflag=direct",
    ])?;
    ensure!(
        !write.status.success(),
        "a write to read-only R/ro succeeded"
    );
    clean(g, "R")
}

/// Item 8: a device left suspended never blocks cairn (the scan skips it
/// and says so), and activation resumes it, keeping its live table even
/// when a table was loaded into its inactive slot.
fn suspended_devices_never_block_and_are_resumed(g: &Guest) -> TestResult {
    clean(g, "P")?;
    let d = g.loop_disk("s1", 64)?;
    g.sh(&format!(
        "set -e; pvcreate -q {dev}; vgcreate -q P {dev}
         lvcreate -q -y -Zn -L 8M -n a P; lvcreate -q -y -Zn -L 8M -n b P
         dd if=/dev/urandom of=/dev/P/a bs=1M count=8 oflag=direct status=none",
        dev = d.dev
    ))?;
    let sum = g.sh("md5sum < /dev/P/a")?;
    let live = g.sh("dmsetup table P-a")?;
    // Suspended with a different table waiting in its inactive slot, as a
    // reload stopped between its load and its resume leaves it.
    g.sh("dmsetup load P-a --table \"0 16384 error\"; dmsetup suspend P-a")?;
    let vgs = g.sh(&format!("timeout 60 {CAIRN} vgs 2>&1"))?;
    ensure!(vgs.contains("P "), "vgs while P-a is suspended:\n{vgs}");
    g.sh(&format!("timeout 60 {CAIRN} vg activate P"))?;
    let info = g.sh("dmsetup info P-a")?;
    ensure!(
        info.contains("ACTIVE") && !info.contains("SUSPENDED") && !info.contains("INACTIVE"),
        "P-a after activation:\n{info}"
    );
    ensure!(g.sh("dmsetup table P-a")? == live, "the live table changed");
    ensure!(
        g.sh("timeout 30 md5sum < /dev/P/a")? == sum,
        "data of P-a changed"
    );
    // A PV that is itself a suspended LV: its VG's scan refuses to read it
    // rather than hang, and names it.
    g.sh("dmsetup suspend P-b")?;
    let out = g.output(&[
        "timeout",
        "60",
        CAIRN,
        "--devices",
        "/dev/mapper/P-b",
        "pvs",
    ])?;
    let text = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() != Some(124) && text.contains("suspended"),
        "pvs of a suspended device: {:?} {text}",
        out.status
    );
    // A device stacked on the suspended one is refused the same way, naming
    // the suspended device under it.
    let size = g.sh("blockdev --getsz /dev/mapper/P-b")?;
    g.sh(&format!(
        "dmsetup create P_stacked --table \"0 {} linear /dev/mapper/P-b 0\"; dmsetup mknodes P_stacked",
        size.trim()
    ))?;
    let out = g.output(&[
        "timeout",
        "60",
        CAIRN,
        "--devices",
        "/dev/mapper/P_stacked",
        "pvs",
    ])?;
    let text = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() != Some(124) && text.contains("P-b is suspended"),
        "pvs of a device on a suspended one: {:?} {text}",
        out.status
    );
    g.cairn(&["vg", "activate", "P"])?;
    g.sh("dmsetup remove P_stacked")?;
    g.sh("timeout 30 dd if=/dev/zero of=/dev/P/b bs=4k count=1 oflag=direct status=none")?;
    clean(g, "P")
}

/// Item 10: an LV holds what its user writes; a copy of a host PV's label
/// and metadata written into one must not win the scan (lvm2's scan_lvs is
/// off by default, and cairn follows it).
fn a_pv_label_inside_an_lv_is_not_scanned(g: &Guest) -> TestResult {
    clean(g, "H")?;
    let d = g.loop_disk("t1", 64)?;
    g.sh(&format!(
        "set -e; pvcreate -q {dev}; vgcreate -q H {dev}
         lvcreate -q -y -Zn -L 8M -n tenant H
         # The tenant copies the host PV's first MiB (label and metadata).
         dd if={dev} of=/dev/H/tenant bs=1M count=1 oflag=direct status=none",
        dev = d.dev
    ))?;
    let tenant = g.sh("md5sum < /dev/H/tenant")?;
    let pvs = g.cairn(&["--json", "pvs"])?;
    ensure!(
        pvs.contains(&format!("\"{}\"", d.dev)) && !pvs.contains("/dev/H/tenant"),
        "the host's PV must be {}:\n{pvs}",
        d.dev
    );
    g.cairn(&["lv", "create", "-L", "4M", "-n", "more", "H"])?;
    ensure!(
        g.sh("md5sum < /dev/H/tenant")? == tenant,
        "cairn wrote into the tenant's LV"
    );
    vgck_clean(g, "H")?;
    clean(g, "H")
}

/// Lower-severity item: a writeback cache whose metadata device fails (the
/// kernel turns the cache read-only or failed, dirty blocks stranded) is not
/// detached as if flushed: refused, saying to repair, and still cached.
fn a_failed_cache_is_not_detached_as_flushed(g: &Guest) -> TestResult {
    clean(g, "F")?;
    let d = disks(g, &["f1", "f2"], 128)?;
    g.sh(&format!(
        "set -e; pvcreate -q {a} {b}; vgcreate -q F {a} {b}
         lvcreate -q -y -Zn -L 64M -n lv F {a}
         lvcreate -q -y --type cache-pool -L 16M -n cp F {b}
         lvconvert -q -y --type cache --cachepool F/cp --cachemode writeback F/lv
         dd if=/dev/urandom of=/dev/F/lv bs=1M count=8 oflag=direct status=none
         # The cache's metadata device starts failing every I/O.
         n=$(blockdev --getsz /dev/mapper/F-cp_cpool_cmeta)
         dmsetup suspend F-cp_cpool_cmeta
         dmsetup load F-cp_cpool_cmeta --table \"0 $n error\"
         dmsetup resume F-cp_cpool_cmeta
         # New writes need metadata the cache can no longer commit.
         dd if=/dev/urandom of=/dev/F/lv bs=1M count=4 seek=32 oflag=direct status=none || true
         sync; sleep 2",
        a = d[0].dev,
        b = d[1].dev
    ))?;
    let status = g.sh("dmsetup status F-lv")?;
    let out = refused(g, &["cache", "detach", "F/lv"])?;
    ensure!(
        out.contains("repair"),
        "detach of a failed writeback cache (status {status}) should say to repair:\n{out}"
    );
    let seg = g.sh("lvs --noheadings -o segtype F/lv")?;
    ensure!(seg.trim() == "cache", "F/lv is no longer cached: {seg}");
    let table = g.sh("dmsetup table F-lv")?;
    ensure!(
        table.contains(" cache "),
        "the kernel's F/lv is not a cache: {table}"
    );
    clean(g, "F")
}

fn main() {
    lab::main(Group {
        name: "vm_safety",
        nodes: 1,
        mem_mib: 1024,
        timeout: Duration::from_secs(600),
        tests: vec![
            VmTest {
                name: "pvs_without_metadata_are_their_vgs",
                run: pvs_without_metadata_are_their_vgs,
            },
            VmTest {
                name: "vg_remove_force_refuses_open_lvs",
                run: vg_remove_force_refuses_open_lvs,
            },
            VmTest {
                name: "activation_holds_the_vg_lock",
                run: activation_holds_the_vg_lock,
            },
            VmTest {
                name: "missing_pvs_refused_until_restored",
                run: missing_pvs_refused_until_restored,
            },
            VmTest {
                name: "read_only_lvs_come_up_read_only",
                run: read_only_lvs_come_up_read_only,
            },
            VmTest {
                name: "suspended_devices_never_block_and_are_resumed",
                run: suspended_devices_never_block_and_are_resumed,
            },
            VmTest {
                name: "a_pv_label_inside_an_lv_is_not_scanned",
                run: a_pv_label_inside_an_lv_is_not_scanned,
            },
            VmTest {
                name: "a_failed_cache_is_not_detached_as_flushed",
                run: a_failed_cache_is_not_detached_as_flushed,
            },
        ],
        stream_log: false,
        boots: 1,
        disks: &[],
    });
}
