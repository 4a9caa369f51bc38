//! dm-cache without lvm2 (src/lvm/cache.rs), twin against twin: a cache
//! pool made by `cairn cache create` and by `lvcreate --type cache-pool`,
//! attached live by `cairn cache attach` and `lvconvert --type cache`,
//! grown, detached with and without dirty blocks: the same `lvs -a`, the
//! same kernel tables and dm names, the same data; cache_check and vgck
//! clean; lvm2 re-activates what cairn made.

use crate::lab::{Guest, TestResult};
use crate::twin::Twins;
use crate::{ensure, expect_refusals};

const FIELDS: &str = "lv_name,lv_attr,lv_size,segtype,seg_pe_ranges,chunk_size,cache_mode,\
                      cache_policy,lv_metadata_size,data_lv,metadata_lv,pool_lv";

/// sha256 of the first 8 MiB of `dev`.
fn sum(g: &Guest, dev: &str) -> Result<String, String> {
    g.sh(&format!(
        "dd if={dev} bs=1M count=8 iflag=direct status=none | sha256sum"
    ))
}

/// cache_check on a cache pool's metadata, with the cached LV down
/// (lvm2 activates a pool's metadata alone, read-only, for this).
fn cache_check(g: &Guest, vg: &str, cmeta: &str) -> TestResult {
    g.sh(&format!(
        "set -e; lvchange -q -an {vg}/lv
        lvchange -q -y -ay {vg}/{cmeta}
        cache_check /dev/{vg}/{cmeta}
        lvchange -q -an {vg}/{cmeta}
        lvchange -q -ay {vg}/lv"
    ))?;
    Ok(())
}

pub fn cache_pool_attach_extend_detach_as_lvm2s(g: &Guest) -> TestResult {
    let t = Twins::new(g, 512, 256)?;
    for vg in ["vgl", "vgc"] {
        let (hdd, _) = t.disks(vg);
        g.run(&["lvcreate", "-q", "-y", "-L", "100M", "-n", "lv", vg, hdd])?;
    }
    g.sh("dd if=/dev/urandom of=/tmp/data bs=1M count=8 status=none
        dd if=/tmp/data of=/dev/vgl/lv bs=1M oflag=direct status=none
        dd if=/tmp/data of=/dev/vgc/lv bs=1M oflag=direct status=none")?;
    let data = sum(g, "/dev/vgl/lv")?;

    // The pool.
    let (_, ssd_l) = t.disks("vgl");
    let (_, ssd_c) = t.disks("vgc");
    g.run(&[
        "lvcreate",
        "-q",
        "-y",
        "--type",
        "cache-pool",
        "-L",
        "40M",
        "-n",
        "cp",
        "vgl",
        ssd_l,
    ])?;
    let plan = g.cairn(&["cache", "create", "vgc/cp", "-L", "40M", ssd_c, "--plan"])?;
    ensure!(
        plan.contains("cache pool cp (40.00m data, 8.00m metadata, chunk 64.00k)")
            && plan.contains("pool metadata spare lvol0_pmspare"),
        "plan: {plan}"
    );
    ensure!(
        g.run(&["lvs", "--noheadings", "-o", "lv_name", "vgc"])?
            .trim()
            == "lv",
        "--plan changed the VG"
    );
    g.cairn(&["cache", "create", "vgc/cp", "-L", "40M", ssd_c])?;
    t.same_lvs(g, "lvs -a of the cache pools", FIELDS)?;
    g.run(&["vgck", "vgc"])?;
    // An unused cache pool has no device: VG activation passes it by.
    g.cairn(&["vg", "activate", "vgc"])?;

    // Attach, live.
    g.run(&[
        "lvconvert",
        "-q",
        "-y",
        "--type",
        "cache",
        "--cachepool",
        "vgl/cp",
        "vgl/lv",
    ])?;
    let plan = g.cairn(&["cache", "attach", "vgc/lv", "--pool", "cp", "--plan"])?;
    ensure!(
        plan.contains("dm create vgc-cp_cpool_cmeta")
            && plan.contains("dm create vgc-lv_corig")
            && plan.contains("dm load vgc-lv\n")
            && plan.contains("dm suspend vgc-lv\n"),
        "plan: {plan}"
    );
    g.cairn(&["cache", "attach", "vgc/lv", "--pool", "cp"])?;
    t.same_lvs(g, "lvs -a of the cached LVs", FIELDS)?;
    t.same_tables(g, "tables of the cached LVs")?;
    t.same_dm_names(g, "dm names of the cached LVs")?;
    ensure!(
        sum(g, "/dev/vgc/lv")? == data,
        "the cached LV lost its data"
    );
    g.run(&["vgck", "vgc"])?;
    cache_check(g, "vgc", "cp_cpool_cmeta")?;
    // lvm2 takes it down and up again; the data is there.
    g.sh("set -e; vgchange -q -an vgc; vgchange -q -ay vgc")?;
    t.same_tables(g, "tables after lvm2 re-activated cairn's cache")?;
    ensure!(
        sum(g, "/dev/vgc/lv")? == data,
        "data lost across lvm2's re-activation"
    );

    // Extend: the origin grows, the cache follows.
    g.run(&["lvextend", "-q", "-L", "+20M", "vgl/lv"])?;
    g.cairn(&["lv", "extend", "vgc/lv", "-L", "+20M"])?;
    t.same_lvs(g, "lvs -a after extending the cached LVs", FIELDS)?;
    t.same_tables(g, "tables after extending the cached LVs")?;
    g.sh("dd if=/dev/urandom of=/tmp/tail bs=1M count=4 status=none
        dd if=/tmp/tail of=/dev/vgc/lv bs=1M seek=116 oflag=direct status=none")?;
    let tail =
        g.sh("dd if=/dev/vgc/lv bs=1M skip=116 count=4 iflag=direct status=none | sha256sum")?;
    ensure!(
        tail == g.sh("sha256sum < /tmp/tail")?,
        "the grown part of the cached LV does not read back"
    );
    g.sh("dd if=/tmp/tail of=/dev/vgl/lv bs=1M seek=116 oflag=direct status=none")?;

    // Detach a clean writethrough cache, keeping the pool.
    g.run(&["lvconvert", "-q", "-y", "--splitcache", "vgl/lv"])?;
    g.cairn(&["cache", "detach", "vgc/lv"])?;
    t.same_lvs(g, "lvs -a after splitcache", FIELDS)?;
    t.same_tables(g, "tables after splitcache")?;
    t.same_dm_names(g, "dm names after splitcache")?;
    ensure!(sum(g, "/dev/vgc/lv")? == data, "data lost by the detach");
    g.run(&["vgck", "vgc"])?;

    // Writeback: dirty blocks are flushed before the cache goes.
    g.run(&[
        "lvconvert",
        "-q",
        "-y",
        "--type",
        "cache",
        "--cachepool",
        "vgl/cp",
        "--cachemode",
        "writeback",
        "vgl/lv",
    ])?;
    g.cairn(&[
        "cache",
        "attach",
        "vgc/lv",
        "--pool",
        "vgc/cp",
        "--cachemode",
        "writeback",
    ])?;
    t.same_lvs(g, "lvs -a of the writeback caches", FIELDS)?;
    t.same_tables(g, "tables of the writeback caches")?;
    g.sh("dd if=/dev/urandom of=/tmp/data bs=1M count=8 status=none
        dd if=/tmp/data of=/dev/vgc/lv bs=1M oflag=direct status=none
        dd if=/tmp/data of=/dev/vgl/lv bs=1M oflag=direct status=none")?;
    let data = g.sh("sha256sum < /tmp/data")?;
    let dirty: u64 = g
        .sh("dmsetup status vgc-lv | awk '{print $14}'")?
        .trim()
        .parse()
        .map_err(|e| format!("dirty count: {e}"))?;
    ensure!(dirty > 0, "writeback cache has no dirty blocks to flush");
    g.run(&["lvconvert", "-q", "-y", "--uncache", "vgl/lv"])?;
    let out = g.output(&[
        crate::lab::guest::CAIRN,
        "cache",
        "detach",
        "vgc/lv",
        "--remove-pool",
    ])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success() && err.contains("Flushing"),
        "detach of a dirty cache: {err}"
    );
    t.same_lvs(g, "lvs -a after uncache", FIELDS)?;
    t.same_tables(g, "tables after uncache")?;
    ensure!(
        g.sh("dmsetup ls | grep -c '^vgc-' || true")?.trim() == "1",
        "cache layers left"
    );
    // The flushed data is on the origin itself now.
    ensure!(sum(g, "/dev/vgc/lv")? == data, "dirty blocks were lost");
    g.run(&["vgck", "vgc"])?;

    // Bad requests change nothing.
    g.cairn(&["cache", "create", "vgc/cp2", "-L", "20M", ssd_c])?;
    g.cairn(&["lv", "create", "vgc", "-n", "other", "-L", "8M"])?;
    g.cairn(&["cache", "attach", "vgc/other", "--pool", "cp2"])?;
    g.cairn(&["thinpool", "create", "vgc/tp", "-L", "20M"])?;
    let before = g.sh("vgs --noheadings -o seqno vgc; dmsetup table | sort")?;
    expect_refusals(
        g,
        &[
            (
                &["cache", "attach", "vgc/lv", "--pool", "cp2"],
                "already in use by other",
            ),
            (
                &["cache", "attach", "vgc/lv", "--pool", "nope"],
                "has no LV named nope",
            ),
            (
                &["cache", "attach", "vgc/lv", "--pool", "lv"],
                "is not a cache pool",
            ),
            (
                &["cache", "attach", "vgc/tp", "--pool", "cp2"],
                "cannot cache LV tp",
            ),
            (
                &["cache", "attach", "vgc/other", "--pool", "cp2"],
                "is cached already",
            ),
            (
                &[
                    "cache",
                    "create",
                    "vgc/cp3",
                    "-L",
                    "8M",
                    "--cachemode",
                    "fast",
                ],
                "not one of",
            ),
            (&["cache", "create", "vgc/cp3", "-L", "4G"], "free extents"),
            (
                &["cache", "create", "vgc/cp3", "-L", "8M", "-c", "48k"],
                "multiple of 32 KiB",
            ),
            (&["cache", "detach", "vgc/lv"], "is not cached"),
            (
                &["lv", "remove", "--yes", "vgc/other"],
                "not a plain linear LV",
            ),
        ],
    )?;
    ensure!(
        g.sh("vgs --noheadings -o seqno vgc; dmsetup table | sort")? == before,
        "a refused request changed the VG or the kernel"
    );
    t.remove(g)
}
