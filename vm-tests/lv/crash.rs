//! Changes that free extents, killed (CAIRN_CRASH_AT: the process aborts,
//! as kill -9 would stop it) between the kernel step and the commit that
//! frees the extents: lvm2 then allocates every free extent
//! (`lvcreate -l100%FREE`), and no two device-mapper tables may map the
//! same sectors of a device (a free extent still mapped would be written
//! by two LVs). The same command run again finishes the change: vgck
//! clean, lvs as lvm2 would leave it, the surviving LV's data intact.

use crate::ensure;
use crate::lab::guest::LoopDisk;
use crate::lab::tables::{mapped, no_overlap};
use crate::lab::{self, Guest, TestResult};

/// Runs cairn with a crash point and checks it died there.
fn crash_at(g: &Guest, point: &str, args: &str) -> TestResult {
    let out = g.sh(&format!(
        "CAIRN_CRASH_AT={point} {} {args} 2>&1 || echo rc=$?",
        lab::guest::CAIRN
    ))?;
    ensure!(
        out.contains(&format!("crash point {point} reached")) && out.contains("rc=134"),
        "no crash at {point}: {out}"
    );
    Ok(())
}

fn fresh_vg(g: &Guest, mib: u64) -> Result<LoopDisk, String> {
    g.sh(
        "umount /mnt/t 2>/dev/null || true; vgchange -q -an vg 2>/dev/null || true
        dmsetup remove_all || true; vgremove -q -ff vg 2>/dev/null || true; rm -rf /dev/vg",
    )?;
    let d = g.loop_disk("crash", mib)?;
    g.sh(&format!(
        "set -e; pvcreate -q {0}; vgcreate -q vg {0}",
        d.dev
    ))?;
    Ok(d)
}

/// sha256 of the first `mib` MiB of `dev`.
fn sum(g: &Guest, dev: &str, mib: u64) -> Result<String, String> {
    g.sh(&format!(
        "dd if={dev} bs=1M count={mib} iflag=direct status=none | sha256sum"
    ))
}

fn lv_list(g: &Guest) -> Result<String, String> {
    Ok(
        g.sh("lvs --noheadings -a -o lv_name,lv_size --units m vg | sort")?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// `lv reduce` killed after the kernel took the smaller table and before
/// the commit: the freed extents are still allocated, lvm2's fill does not
/// get them; run again, the reduce commits.
pub fn reduce_killed_before_its_commit(g: &Guest) -> TestResult {
    // The checker itself: stripes split, an overlap found.
    let m = mapped("a: 0 8192 striped 2 128 7:0 6144 7:1 2048\nb: 0 64 linear 7:1 6000\n")?;
    ensure!(
        m["a"] == [("7:0".into(), 6144, 10240), ("7:1".into(), 2048, 6144)]
            && m["b"] == [("7:1".into(), 6000, 6064)],
        "mapped: {m:?}"
    );
    let _d = fresh_vg(g, 256)?;
    g.cairn(&["lv", "create", "vg", "-n", "x", "-L", "64M"])?;
    g.sh("dd if=/dev/urandom of=/dev/vg/x bs=1M count=64 oflag=direct status=none")?;
    let kept = sum(g, "/dev/vg/x", 32)?;
    crash_at(g, "reduce-after-kernel", "lv reduce vg/x -L 32M --yes")?;
    let size = g.sh("blockdev --getsize64 /dev/vg/x")?;
    ensure!(
        size.trim() == (32u64 << 20).to_string(),
        "kernel size {size}"
    );
    ensure!(
        lv_list(g)? == "x 64.00m",
        "the metadata after the crash: {}",
        lv_list(g)?
    );
    g.run(&["lvcreate", "-q", "-y", "-l100%FREE", "-n", "fill", "vg"])?;
    no_overlap(g, "after the crash and lvm2's fill")?;
    g.sh("dd if=/dev/zero of=/dev/vg/fill bs=1M oflag=direct status=none || true")?;
    g.cairn(&["lv", "reduce", "vg/x", "-L", "32M", "--yes"])?;
    ensure!(
        lv_list(g)?.starts_with("fill ") && lv_list(g)?.ends_with("x 32.00m"),
        "after the re-run: {}",
        lv_list(g)?
    );
    ensure!(sum(g, "/dev/vg/x", 32)? == kept, "x's data changed");
    g.run(&["vgck", "vg"])?;
    no_overlap(g, "after the re-run")?;
    g.run(&["vgremove", "-q", "-ff", "vg"])?;
    Ok(())
}

/// A merge killed after the kernel finished it (origin plain, COW device
/// gone) and before the commit that drops the snapshot: the COW's extents
/// are still allocated; run again, the merge commits its end.
pub fn merge_killed_before_its_last_commit(g: &Guest) -> TestResult {
    let _d = fresh_vg(g, 256)?;
    g.cairn(&["lv", "create", "vg", "-n", "origin", "-L", "64M"])?;
    g.sh("dd if=/dev/urandom of=/dev/vg/origin bs=1M count=16 oflag=direct status=none")?;
    let before = sum(g, "/dev/vg/origin", 16)?;
    g.cairn(&["snapshot", "create", "vg/origin", "-n", "s", "-L", "16M"])?;
    g.sh("dd if=/dev/urandom of=/dev/vg/origin bs=1M count=4 oflag=direct status=none")?;
    crash_at(g, "merge-after-kernel", "snapshot merge vg/s")?;
    let table = g.sh("dmsetup table vg-origin")?;
    ensure!(table.contains("linear"), "origin after the crash: {table}");
    g.run(&["lvcreate", "-q", "-y", "-l100%FREE", "-n", "fill", "vg"])?;
    no_overlap(g, "after the crash and lvm2's fill")?;
    g.sh("dd if=/dev/zero of=/dev/vg/fill bs=1M oflag=direct status=none || true")?;
    let out = g.cairn(&["snapshot", "merge", "vg/s"])?;
    ensure!(out.contains("finished"), "the re-run: {out}");
    ensure!(
        lv_list(g)?.contains("origin 64.00m") && !lv_list(g)?.contains(" s "),
        "after the re-run: {}",
        lv_list(g)?
    );
    ensure!(
        sum(g, "/dev/vg/origin", 16)? == before,
        "the origin is not back to the snapshot's data"
    );
    g.run(&["vgck", "vg"])?;
    no_overlap(g, "after the re-run")?;
    g.run(&["vgremove", "-q", "-ff", "vg"])?;
    Ok(())
}

/// `cache detach --remove-pool` killed between its two commits (the LV is
/// linear in kernel and metadata, the pool unused and still allocated):
/// lvm2's fill gets none of the pool's extents; run again, the pool goes.
pub fn uncache_killed_between_its_commits(g: &Guest) -> TestResult {
    let _d = fresh_vg(g, 512)?;
    g.cairn(&["lv", "create", "vg", "-n", "lv", "-L", "100M"])?;
    g.cairn(&["cache", "create", "vg/cp", "-L", "40M"])?;
    g.cairn(&[
        "cache",
        "attach",
        "vg/lv",
        "--pool",
        "cp",
        "--cachemode",
        "writeback",
    ])?;
    g.sh("dd if=/dev/urandom of=/dev/vg/lv bs=1M count=32 oflag=direct status=none")?;
    let kept = sum(g, "/dev/vg/lv", 32)?;
    crash_at(
        g,
        "uncache-after-kernel",
        "cache detach vg/lv --remove-pool",
    )?;
    let table = g.sh("dmsetup table vg-lv")?;
    ensure!(table.contains("linear"), "the LV after the crash: {table}");
    let tags = g.sh("lvs --noheadings -o lv_tags vg/cp")?;
    ensure!(tags.contains("cairn:uncache:lv"), "pool tags {tags}");
    g.run(&["lvcreate", "-q", "-y", "-l100%FREE", "-n", "fill", "vg"])?;
    no_overlap(g, "after the crash and lvm2's fill")?;
    g.sh("dd if=/dev/zero of=/dev/vg/fill bs=1M oflag=direct status=none || true")?;
    g.cairn(&["cache", "detach", "vg/lv", "--remove-pool"])?;
    let lvs = lv_list(g)?;
    ensure!(
        lvs.contains("lv 100.00m") && !lvs.contains("cp") && !lvs.contains("pmspare"),
        "after the re-run: {lvs}"
    );
    ensure!(sum(g, "/dev/vg/lv", 32)? == kept, "the LV's data changed");
    g.run(&["vgck", "vg"])?;
    no_overlap(g, "after the re-run")?;
    g.run(&["vgremove", "-q", "-ff", "vg"])?;
    Ok(())
}

/// A thin device id the kernel holds while the metadata does not (a
/// create whose undo failed: the metadata was restored, the delete was
/// not taken): the next create of that id deletes the stale device first
/// instead of failing with EEXIST for ever.
pub fn thin_create_over_a_stale_kernel_device_id(g: &Guest) -> TestResult {
    let _d = fresh_vg(g, 512)?;
    g.run(&["lvcreate", "-q", "-y", "-L", "200M", "-T", "vg/pool"])?;
    g.cairn(&["lv", "create", "vg", "-n", "t1", "-V", "64M", "-T", "pool"])?;
    let tpool =
        g.sh("dmsetup info -c --noheadings -o name | grep -x 'vg-pool-tpool' || echo vg-pool")?;
    g.sh(&format!(
        "dmsetup message {} 0 'create_thin 2'",
        tpool.trim()
    ))?;
    g.cairn(&["lv", "create", "vg", "-n", "t2", "-V", "64M", "-T", "pool"])?;
    let id = g.sh("lvs --noheadings -o thin_id vg/t2")?;
    ensure!(id.trim() == "2", "t2 took id {id}, not the stale one");
    g.sh("dd if=/dev/urandom of=/dev/vg/t2 bs=1M count=8 oflag=direct status=none")?;
    let tid = g.sh("lvs --noheadings -o transaction_id vg/pool")?;
    let status = g.sh(&format!("dmsetup status {}", tpool.trim()))?;
    ensure!(
        status.split_whitespace().nth(3) == Some(tid.trim()),
        "kernel {status} vs metadata transaction id {tid}"
    );
    g.run(&["vgchange", "-q", "-an", "vg"])?;
    g.run(&["vgck", "vg"])?;
    g.run(&["vgremove", "-q", "-ff", "vg"])?;
    Ok(())
}

/// `cache detach` killed after its commit and before its resume: lvm2's
/// order (load, suspend, commit, resume) leaves the LV suspended with its
/// linear table inactive, the pool allocated and unused. The pool is not
/// attached elsewhere while its layers are mapped; activation swaps the
/// linear table in; the re-run removes the layers; data intact, no two
/// tables on the same sectors, lvm2 and cache_check agree. Then the same
/// with `--remove-pool`, finished by the re-run alone.
pub fn uncache_killed_after_its_commit(g: &Guest) -> TestResult {
    let _d = fresh_vg(g, 512)?;
    g.cairn(&["lv", "create", "vg", "-n", "lv", "-L", "100M"])?;
    g.cairn(&["lv", "create", "vg", "-n", "other", "-L", "64M"])?;
    g.cairn(&["cache", "create", "vg/cp", "-L", "40M"])?;
    let attach = |lv: &str| {
        g.cairn(&[
            "cache",
            "attach",
            &format!("vg/{lv}"),
            "--pool",
            "cp",
            "--cachemode",
            "writeback",
        ])
    };
    attach("lv")?;
    g.sh("dd if=/dev/urandom of=/dev/vg/lv bs=1M count=32 oflag=direct status=none")?;
    let kept = sum(g, "/dev/vg/lv", 32)?;
    crash_at(g, "uncache-after-commit", "cache detach vg/lv")?;
    let info = g.sh("dmsetup info vg-lv")?;
    ensure!(
        info.contains("SUSPENDED") && info.contains("LIVE & INACTIVE"),
        "the LV after the crash: {info}"
    );
    let seg = g.sh("lvs --noheadings -o segtype vg/lv")?;
    ensure!(
        seg.trim() == "linear",
        "the metadata after the crash: {seg}"
    );
    let refused = g.sh(&format!(
        "{} cache attach vg/other --pool cp 2>&1 || echo rc=$?",
        lab::guest::CAIRN
    ))?;
    ensure!(
        refused.contains("still mapped") && refused.contains("rc="),
        "attach of the mapped pool: {refused}"
    );
    g.cairn(&["vg", "activate", "vg"])?;
    let info = g.sh("dmsetup info vg-lv; dmsetup table vg-lv")?;
    ensure!(
        info.contains("ACTIVE") && !info.contains("SUSPENDED") && info.contains("linear"),
        "the LV after activation: {info}"
    );
    // The cache's layers are left to the re-run; nothing stands on them
    // (the origin's layer maps the LV's own extents, unused).
    let opens = g.sh(
        "dmsetup info -c --noheadings -o open vg-lv_corig vg-cp_cpool_cdata vg-cp_cpool_cmeta",
    )?;
    ensure!(
        opens.split_whitespace().all(|n| n == "0"),
        "the layers after activation are open: {opens}"
    );
    ensure!(sum(g, "/dev/vg/lv", 32)? == kept, "the LV's data changed");
    g.cairn(&["cache", "detach", "vg/lv"])?;
    let left = g.sh("dmsetup ls | grep -E 'corig|cpool' || true")?;
    ensure!(left.trim().is_empty(), "layers left: {left}");
    no_overlap(g, "after the re-run")?;
    let lvs = lv_list(g)?;
    ensure!(
        lvs.contains("cp 40.00m") && lvs.contains("lv 100.00m") && !lvs.contains("corig"),
        "after the re-run: {lvs}"
    );
    let seg = g.sh("lvs --noheadings -o segtype vg/lv; lvs --noheadings -o segtype vg/cp")?;
    ensure!(
        seg.split_whitespace().collect::<Vec<_>>() == ["linear", "cache-pool"],
        "lvm2's segment types: {seg}"
    );
    g.run(&["vgck", "vg"])?;
    g.sh(
        "set -e; lvchange -q -y -ay vg/cp_cmeta; cache_check /dev/vg/cp_cmeta
        lvchange -q -an vg/cp_cmeta",
    )?;
    ensure!(sum(g, "/dev/vg/lv", 32)? == kept, "the LV's data changed");

    // --remove-pool, killed at the same point: the re-run finishes.
    attach("other")?;
    g.sh("dd if=/dev/urandom of=/dev/vg/other bs=1M count=16 oflag=direct status=none")?;
    let other = sum(g, "/dev/vg/other", 16)?;
    crash_at(
        g,
        "uncache-after-commit",
        "cache detach vg/other --remove-pool",
    )?;
    g.cairn(&["cache", "detach", "vg/other", "--remove-pool"])?;
    let lvs = lv_list(g)?;
    ensure!(
        !lvs.contains("cp") && !lvs.contains("pmspare") && lvs.contains("other 64.00m"),
        "after the --remove-pool re-run: {lvs}"
    );
    let left = g.sh("dmsetup ls | grep -E 'corig|cpool|cdata|cmeta' || true")?;
    ensure!(left.trim().is_empty(), "layers left: {left}");
    ensure!(
        sum(g, "/dev/vg/other", 16)? == other,
        "other's data changed"
    );
    g.run(&["lvcreate", "-q", "-y", "-l100%FREE", "-n", "fill", "vg"])?;
    no_overlap(g, "after lvm2's fill")?;
    g.run(&["vgck", "vg"])?;
    g.run(&["vgremove", "-q", "-ff", "vg"])?;
    Ok(())
}

/// A merge marked in the metadata whose COW device went away before the
/// kernel merged anything (removed by hand here, as a failed activation
/// would leave it): the origin is no snapshot-merge and no `-cow` exists,
/// as after a finished merge, but the exception store on disk still holds
/// the snapshot's chunks. The re-run refuses to drop the snapshot; the
/// origin's reactivation starts the merge, and the next run finishes it.
pub fn merge_not_run_is_not_taken_for_finished(g: &Guest) -> TestResult {
    let _d = fresh_vg(g, 256)?;
    g.cairn(&["lv", "create", "vg", "-n", "origin", "-L", "64M"])?;
    g.sh("dd if=/dev/urandom of=/dev/vg/origin bs=1M count=16 oflag=direct status=none")?;
    let before = sum(g, "/dev/vg/origin", 16)?;
    g.cairn(&["snapshot", "create", "vg/origin", "-n", "s", "-L", "16M"])?;
    g.sh("dd if=/dev/urandom of=/dev/vg/origin bs=1M count=4 oflag=direct status=none")?;
    // The origin held open: the merge is only marked.
    g.sh("sleep 600 < /dev/vg/origin > /dev/null 2>&1 & echo $! > /tmp/holder")?;
    let out = g.cairn(&["snapshot", "merge", "vg/s"])?;
    g.sh("kill $(cat /tmp/holder); sleep 1")?;
    ensure!(!out.contains("finished"), "the held merge: {out}");
    g.sh("dmsetup remove vg-s && dmsetup remove vg-s-cow")?;
    let out = g.sh(&format!(
        "{} snapshot merge vg/s 2>&1 || echo rc=$?",
        lab::guest::CAIRN
    ))?;
    ensure!(
        out.contains("not empty") && out.contains("rc="),
        "the re-run without the COW device: {out}"
    );
    let names = g.sh("lvs -a --noheadings -o lv_name vg")?;
    ensure!(
        names.split_whitespace().any(|n| n == "s" || n == "[s]"),
        "the snapshot was dropped: {names}"
    );
    g.run(&["vgck", "vg"])?;
    g.cairn(&["lv", "deactivate", "vg/origin"])?;
    g.cairn(&["lv", "activate", "vg/origin"])?;
    let out = g.cairn(&["snapshot", "merge", "vg/s"])?;
    ensure!(
        out.contains("finished"),
        "the merge after reactivation: {out}"
    );
    ensure!(
        sum(g, "/dev/vg/origin", 16)? == before,
        "the origin is not back to the snapshot's data"
    );
    g.run(&["vgck", "vg"])?;
    g.run(&["vgremove", "-q", "-ff", "vg"])?;
    Ok(())
}
