//! `lv extend` / `lv reduce` / `thinpool extend` of every LV type the seed
//! resizes, twin against twin with lvextend and lvreduce: thin LVs (live,
//! no flush), a thin pool's metadata (with the pool metadata spare), a
//! thick snapshot's COW store under a live origin, an inactive origin; and
//! the requests lvm2 refuses, refused the same way with nothing changed.

use crate::lab::{Guest, TestResult};
use crate::twin::Twins;
use crate::{ensure, expect_refusals};

const FIELDS: &str = "lv_name,lv_attr,lv_size,segtype,seg_pe_ranges,lv_metadata_size,\
                      transaction_id,origin";

pub fn resizes_of_every_type_as_lvm2s(g: &Guest) -> TestResult {
    let t = Twins::new(g, 512, 256)?;
    let both = |lvm2: &str, cairn: &[&str]| -> TestResult {
        g.sh(lvm2)?;
        g.cairn(cairn)?;
        Ok(())
    };
    for vg in ["vgl", "vgc"] {
        let (hdd, _) = t.disks(vg);
        g.sh(&format!(
            "set -e; lvcreate -q -y -L 40M -T {vg}/pool {hdd}
            lvcreate -q -V 20M -T {vg}/pool -n thin
            lvcreate -q -y -L 20M -n origin {vg} {hdd}
            lvcreate -q -y -L 8M -s -n snap {vg}/origin"
        ))?;
    }
    t.same_lvs(g, "lvs -a before the resizes", FIELDS)?;

    // A thin LV with a file system on it grows live.
    g.sh(
        "mkfs.ext4 -q /dev/vgc/thin && mkdir -p /mnt/t && mount /dev/vgc/thin /mnt/t
        dd if=/dev/urandom of=/mnt/t/a bs=1M count=8 status=none && sync",
    )?;
    let plan = g.cairn(&["lv", "extend", "vgc/thin", "-L", "+20M", "--plan"])?;
    ensure!(
        plan.contains("dm suspend vgc-thin (noflush)") && !plan.contains("dm suspend vgc-pool"),
        "plan: {plan}"
    );
    both(
        "lvextend -q -L +20M vgl/thin",
        &["lv", "extend", "vgc/thin", "-L", "+20M"],
    )?;
    g.sh("resize2fs -f /dev/vgc/thin >/dev/null 2>&1
        dd if=/dev/urandom of=/mnt/t/b bs=1M count=24 status=none && sync")?;
    let fs = g.sh("df -m /mnt/t | awk 'NR==2 {print $2}'")?;
    ensure!(
        fs.trim().parse::<u64>().unwrap_or(0) > 30,
        "ext4 did not grow: {fs}"
    );
    g.sh("umount /mnt/t")?;
    t.same_lvs(g, "lvs -a after extending the thin LVs", FIELDS)?;
    t.same_tables(g, "tables after extending the thin LVs")?;
    // ...and shrinks when closed (lvreduce asks; cairn wants --yes).
    both(
        "lvreduce -q -y -L 8M vgl/thin",
        &["lv", "reduce", "--yes", "vgc/thin", "-L", "8M"],
    )?;
    t.same_lvs(g, "lvs -a after reducing the thin LVs", FIELDS)?;
    t.same_tables(g, "tables after reducing the thin LVs")?;

    // A pool's metadata: the spare grows with it.
    let plan = g.cairn(&[
        "thinpool",
        "extend",
        "vgc/pool",
        "--poolmetadatasize",
        "+8M",
        "--plan",
    ])?;
    ensure!(
        plan.contains("metadata 4.00m -> 12.00m")
            && plan.contains("pool metadata spare lvol0_pmspare extended")
            && plan.contains("dm load vgc-pool_tmeta")
            && plan.contains("dm suspend vgc-pool-tpool (noflush)"),
        "plan: {plan}"
    );
    both(
        "lvextend -q --poolmetadatasize +8M vgl/pool",
        &[
            "thinpool",
            "extend",
            "vgc/pool",
            "--poolmetadatasize",
            "+8M",
        ],
    )?;
    t.same_lvs(g, "lvs -a after growing the pool metadata", FIELDS)?;
    t.same_tables(g, "tables after growing the pool metadata")?;
    // The kernel sees the bigger metadata device (status: used/total).
    let total = g.sh("dmsetup status vgc-pool-tpool | awk '{split($5, m, \"/\"); print m[2]}'")?;
    ensure!(
        total.trim() == "3072",
        "kernel metadata blocks {total} (want 3072 = 12 MiB)"
    );
    // Data and metadata through `lv extend` too (lvextend's syntax sugar).
    both(
        "lvextend -q -L +20M vgl/pool",
        &["lv", "extend", "vgc/pool", "-L", "+20M"],
    )?;
    t.same_lvs(g, "lvs -a after growing the pool data", FIELDS)?;

    // The COW store of a live snapshot of a live origin.
    let plan = g.cairn(&["lv", "extend", "vgc/snap", "-L", "+8M", "--plan"])?;
    ensure!(plan.contains("dm load vgc-snap-cow"), "plan: {plan}");
    both(
        "lvextend -q -L +8M vgl/snap",
        &["lv", "extend", "vgc/snap", "-L", "+8M"],
    )?;
    t.same_lvs(g, "lvs -a after growing the COW stores", FIELDS)?;
    t.same_tables(g, "tables after growing the COW stores")?;
    // Fill more than the old COW size: the snapshot stays valid.
    g.sh("dd if=/dev/urandom of=/dev/vgc/origin bs=1M count=12 oflag=direct status=none")?;
    let attr = g.sh("lvs --noheadings -o lv_attr vgc/snap")?;
    ensure!(
        attr.trim() == "swi-a-s---",
        "snapshot after 12 MiB of changes: {attr}"
    );

    // An origin grows only while inactive.
    expect_refusals(
        g,
        &[
            (
                &["lv", "extend", "vgc/origin", "-L", "+4M"],
                "only while inactive",
            ),
            (
                &["lv", "reduce", "--yes", "vgc/origin", "-L", "4M"],
                "origins are not reduced",
            ),
            (
                &["lv", "reduce", "--yes", "vgc/snap", "-L", "4M"],
                "COW store is not reduced",
            ),
            (
                &["lv", "reduce", "--yes", "vgc/pool", "-L", "4M"],
                "pools are not reduced",
            ),
            (
                &["lv", "extend", "vgc/pool_tdata", "-L", "+4M"],
                "hidden part",
            ),
            (
                &["thinpool", "extend", "vgc/pool", "--poolmetadatasize", "4M"],
                "does not shrink",
            ),
        ],
    )?;
    g.sh("lvchange -q -an vgl/origin vgc/origin")?;
    both(
        "lvextend -q -L +4M vgl/origin",
        &["lv", "extend", "vgc/origin", "-L", "+4M"],
    )?;
    g.sh("lvchange -q -ay vgl/origin vgc/origin")?;
    t.same_lvs(g, "lvs -a after growing the inactive origins", FIELDS)?;
    t.same_tables(g, "tables after growing the origins")?;
    g.run(&["vgck", "vgc"])?;
    g.sh(
        "set -e; vgchange -q -an vgc; lvchange -q -y -ay vgc/pool_tmeta
        thin_check /dev/vgc/pool_tmeta; lvchange -q -an vgc/pool_tmeta",
    )?;
    t.remove(g)
}
