//! DRBD 8.4 without drbdadm (src/drbd), with drbd-utils as the oracle:
//! cairn's create-md against drbdmeta's, the seed's r0 and stacked r0-U
//! brought up by cairn and taken down by drbdadm and the other way round,
//! a crashed Primary's metadata replayed before attach, online resize,
//! and the refusals that must leave nothing configured.

#[path = "lab/mod.rs"]
mod lab;
#[path = "reference/mod.rs"]
mod reference;

use std::time::Duration;

use lab::{Group, Guest, TestResult, VmTest};

const DRBDSETUP: &str = "/lib/drbd/drbdsetup-84";
const CONF: &str = "/tmp/cairn-drbd.conf";

/// The seed's r0 and r0-U, as the reference scenario writes them
/// (vm-tests/reference/mod.rs), with r0 on `disk`.
fn seed_conf(g: &Guest, disk: &str) -> String {
    reference::drbd_resources(g.hostname()).replace("/dev/mapper/DRBDVG-DRBDLV1", disk)
}

fn write_conf(g: &Guest, text: &str) -> TestResult {
    std::fs::write(CONF, text).map_err(|e| format!("cannot write {CONF}: {e}"))?;
    g.sh("true")?;
    Ok(())
}

fn drbd(g: &Guest, args: &[&str]) -> Result<String, String> {
    let mut argv = vec!["drbd", "-c", CONF];
    argv.extend_from_slice(args);
    g.cairn(&argv)
}

/// Each command fails, and its error says what is expected.
fn expect_refusals(g: &Guest, cases: &[(&[&str], &str)]) -> TestResult {
    for (args, expect) in cases {
        let mut argv = vec![lab::guest::CAIRN, "drbd", "-c", CONF];
        argv.extend_from_slice(args);
        let out = g.output(&argv)?;
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(
            !out.status.success() && err.contains(expect),
            "cairn drbd {args:?}: expected {expect:?}, got {err}"
        );
    }
    Ok(())
}

fn proc_drbd(g: &Guest) -> Result<String, String> {
    g.sh("cat /proc/drbd")
}

fn ensure_down(g: &Guest) -> TestResult {
    g.sh("grep -q '^drbd ' /proc/modules || modprobe drbd; ip link set lo up")?;
    g.sh(&format!(
        "{DRBDSETUP} down r0-U 2>/dev/null || true; {DRBDSETUP} down r0 2>/dev/null || true
        {DRBDSETUP} down rc 2>/dev/null || true; {DRBDSETUP} down rx 2>/dev/null || true"
    ))?;
    let p = proc_drbd(g)?;
    ensure!(
        !p.lines().any(|l| l.contains(": cs:")),
        "DRBD minors are left:\n{p}"
    );
    Ok(())
}

/// Without the module, cairn says to load it.
fn module_not_loaded_is_a_clear_error(g: &Guest) -> TestResult {
    // The lab's boot loads it; nothing uses it yet.
    g.sh("if grep -q '^drbd ' /proc/modules; then rmmod drbd; fi")?;
    let out = g.output(&[lab::guest::CAIRN, "drbd", "status"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("modprobe drbd"),
        "status without the module: {err}"
    );
    g.sh("modprobe drbd && ip link set lo up")?;
    let out = g.cairn(&["drbd", "status"])?;
    ensure!(out.contains("no DRBD resource is up"), "status: {out}");
    Ok(())
}

/// cairn's create-md and drbdmeta's agree in drbdmeta's own dump (all but
/// the dump's header and the device uuid drbdadm draws), and each reads
/// the other's.
fn create_md_as_drbdmeta(g: &Guest) -> TestResult {
    ensure_down(g)?;
    let a = g.loop_disk("mda", 200)?;
    let b = g.loop_disk("mdb", 200)?;
    write_conf(g, &seed_conf(g, &a.dev))?;
    g.sh(&format!(
        "dd if=/dev/urandom of={0} bs=1M count=200 status=none; \
         dd if=/dev/urandom of={1} bs=1M count=200 status=none",
        a.dev, b.dev
    ))?;
    // drbdmeta asks before writing over data; cairn refuses without --force.
    expect_refusals(g, &[(&["create-md", "r0"], "give --force")])?;
    drbd(g, &["create-md", "r0", "--force"])?;
    g.run(&[
        "drbdmeta",
        "--force",
        "0",
        "v08",
        &b.dev,
        "internal",
        "create-md",
    ])?;
    let dump = |dev: &str| -> Result<String, String> {
        Ok(g.sh(&format!(
            "drbdmeta --force 0 v08 {dev} internal dump-md | grep -v '^#' | grep -v device-uuid"
        ))?
        .to_string())
    };
    let (ours, theirs) = (dump(&a.dev)?, dump(&b.dev)?);
    ensure!(
        ours == theirs,
        "dump-md differs:\ncairn:\n{ours}\ndrbdmeta:\n{theirs}"
    );
    // drbdadm's create-md gives the device a uuid; cairn too.
    let uuid = g.sh(&format!(
        "drbdmeta --force 0 v08 {} internal dump-md | grep device-uuid",
        a.dev
    ))?;
    ensure!(
        !uuid.contains("0x0000000000000000"),
        "no device uuid: {uuid}"
    );
    // cairn reads drbdmeta's metadata.
    let md = g.cairn(&["--json", "drbd", "dump-md", &b.dev])?;
    ensure!(
        md.contains("\"clean\": true") && md.contains("\"md_size_sect\": 88"),
        "dump-md of drbdmeta's metadata: {md}"
    );
    // Existing metadata is not overwritten without --force.
    expect_refusals(g, &[(&["create-md", "r0"], "give --force")])?;
    drbd(g, &["create-md", "r0", "--force"])?;
    Ok(())
}

/// The seed's bring-up by cairn; drbdadm takes it down; drbdadm's bring-up
/// taken down by cairn.
fn seed_r0_and_stacked_r0u(g: &Guest) -> TestResult {
    ensure_down(g)?;
    let a = g.loop_disk("r0", 256)?;
    write_conf(g, &seed_conf(g, &a.dev))?;
    drbd(g, &["create-md", "r0", "--force"])?;
    let up = drbd(g, &["up", "r0"])?;
    ensure!(up.contains("attach 0"), "up r0: {up}");
    drbd(g, &["primary", "r0", "--force"])?;
    drbd(g, &["create-md", "--stacked", "r0-U", "--force"])?;
    drbd(g, &["up", "--stacked", "r0-U"])?;
    drbd(g, &["primary", "--stacked", "r0-U", "--force"])?;
    let p = proc_drbd(g)?;
    ensure!(
        p.contains(" 0: cs:StandAlone ro:Primary/Unknown ds:UpToDate/DUnknown")
            && p.contains("10: cs:WFConnection ro:Primary/Unknown ds:UpToDate/DUnknown A "),
        "/proc/drbd after cairn's bring-up:\n{p}"
    );
    // drbd-utils' own view: drbdsetup-84 status (it reads the kernel).
    for res in ["r0", "r0-U"] {
        let st = g.sh(&format!("{DRBDSETUP} status {res}"))?;
        ensure!(
            st.starts_with(&format!("{res} role:Primary")) && st.contains("disk:UpToDate"),
            "drbdsetup status {res}:\n{st}"
        );
    }
    // Idempotent: a second up changes nothing.
    let again = drbd(g, &["up", "r0"])?;
    ensure!(again.contains("nothing to do"), "second up: {again}");
    // status agrees with /proc/drbd.
    let st = g.cairn(&["--json", "drbd", "status"])?;
    let v: serde_json::Value = serde_json::from_str(&st).map_err(|e| e.to_string())?;
    let minors = v.as_array().ok_or("status is not a list")?;
    ensure!(minors.len() == 2, "status: {st}");
    let u = minors
        .iter()
        .find(|m| m["minor"] == 10)
        .ok_or("no minor 10")?;
    ensure!(
        u["state"]["connection"] == "WFConnection"
            && u["protocol"] == "A"
            && u["resource"] == "r0-U"
            && u["peer_addr"] == "127.0.0.1:7794",
        "minor 10: {u}"
    );
    let size: u64 = g
        .sh("blockdev --getsz /dev/drbd10")?
        .trim()
        .parse()
        .unwrap_or(0);
    ensure!(
        u["capacity_sectors"] == size,
        "capacity {} vs blockdev {size}",
        u["capacity_sectors"]
    );
    // Data through the stack.
    g.sh("dd if=/dev/urandom of=/dev/drbd10 bs=1M count=8 oflag=direct status=none")?;
    // drbdadm (8.4) takes down what cairn brought up.
    g.sh(&format!(
        "drbdadm -c {CONF} down --stacked r0-U && drbdadm -c {CONF} down r0"
    ))?;
    ensure_down(g)?;
    // drbdadm's bring-up (r0 without a peer makes drbdadm exit non-zero
    // after attaching: the seed says to ignore it), taken down by cairn.
    g.sh(&format!(
        "drbdadm -c {CONF} up r0 || true; drbdadm -c {CONF} primary --force r0
        drbdadm -c {CONF} up --stacked r0-U; drbdadm -c {CONF} primary --force --stacked r0-U"
    ))?;
    let p = proc_drbd(g)?;
    ensure!(
        p.contains("10: cs:WFConnection"),
        "drbdadm's bring-up:\n{p}"
    );
    drbd(g, &["down", "--stacked", "r0-U"])?;
    drbd(g, &["down", "r0"])?;
    ensure_down(g)?;
    let again = drbd(g, &["down", "r0"])?;
    ensure!(again.contains("nothing to do"), "second down: {again}");
    Ok(())
}

/// Up, write, down, up: data intact. A Primary that dies leaves unclean
/// metadata with its hot extents in the activity log: the kernel refuses
/// to attach it as it is (165), cairn's up replays the log first.
fn crash_and_reboot_cycles(g: &Guest) -> TestResult {
    ensure_down(g)?;
    let a = g.loop_disk("cyc", 128)?;
    write_conf(g, &seed_conf(g, &a.dev))?;
    drbd(g, &["create-md", "r0", "--force"])?;
    drbd(g, &["up", "r0"])?;
    drbd(g, &["primary", "r0", "--force"])?;
    g.sh("dd if=/dev/urandom of=/tmp/d bs=1M count=16 status=none
        dd if=/tmp/d of=/dev/drbd0 bs=1M oflag=direct status=none")?;
    let sum = g.sh("sha256sum < /tmp/d")?;
    let read = || g.sh("dd if=/dev/drbd0 bs=1M count=16 iflag=direct status=none | sha256sum");
    drbd(g, &["down", "r0"])?;
    drbd(g, &["up", "r0"])?;
    drbd(g, &["primary", "r0"])?;
    ensure!(read()? == sum, "data changed across down/up");
    // The crash: the backing device as it is on disk while Primary (the
    // kernel writes its metadata synchronously), copied under a new name.
    g.sh(&format!(
        "dd if=/dev/urandom of=/dev/drbd0 bs=4k count=64 seek=1000 oflag=direct status=none
        dd if=/dev/drbd0 bs=1M count=16 iflag=direct status=none | sha256sum > /tmp/crashsum
        sync; dd if={} of=/tmp/crash.img bs=1M iflag=direct status=none",
        a.dev
    ))?;
    let crashed = g.sh("losetup -f --show /tmp/crash.img")?.trim().to_owned();
    let md = g.cairn(&["drbd", "dump-md", &crashed])?;
    ensure!(
        md.contains("clean: false") && md.contains("was Primary"),
        "crashed metadata: {md}"
    );
    let mut conf = seed_conf(g, &a.dev);
    conf.push_str(&format!(
        "resource rc {{\n  on {} {{\n    device /dev/drbd1;\n    disk {crashed};\n    meta-disk internal;\n  }}\n}}\n",
        g.hostname()
    ));
    write_conf(g, &conf)?;
    // The kernel alone refuses it.
    let raw = g.sh(&format!(
        "{DRBDSETUP} new-resource rc; {DRBDSETUP} new-minor rc 1 0
        {DRBDSETUP} attach 1 {crashed} {crashed} internal 2>&1 || true; {DRBDSETUP} down rc"
    ))?;
    ensure!(raw.contains("(165)"), "attach without apply-al: {raw}");
    let up = drbd(g, &["up", "rc"])?;
    ensure!(up.contains("apply-al"), "up of the crashed copy: {up}");
    drbd(g, &["primary", "rc"])?;
    let back = g.sh("dd if=/dev/drbd1 bs=1M count=16 iflag=direct status=none | sha256sum")?;
    ensure!(
        back == g.sh("cat /tmp/crashsum")?,
        "the crashed copy's data differs"
    );
    drbd(g, &["down", "rc"])?;
    drbd(g, &["down", "r0"])?;
    g.sh(&format!("losetup -d {crashed}; rm -f /tmp/crash.img"))?;
    Ok(())
}

/// The seed's resize: the backing device grows, r0 then r0-U follow
/// (--assume-peer-has-space: r0-U's peer is away).
fn online_resize_as_the_seed(g: &Guest) -> TestResult {
    ensure_down(g)?;
    // As the seed: r0 on an LV (DRBDVG/DRBDLV1), grown with cairn.
    g.sh("vgchange -q -an DRBDVG 2>/dev/null || true; vgremove -q -ff DRBDVG 2>/dev/null || true")?;
    let pv = g.loop_disk("rs", 512)?;
    g.cairn(&["pv", "create", &pv.dev])?;
    g.cairn(&["vg", "create", "DRBDVG", &pv.dev])?;
    g.cairn(&["lv", "create", "DRBDVG", "-n", "DRBDLV1", "-L", "128M"])?;
    write_conf(g, &seed_conf(g, "/dev/mapper/DRBDVG-DRBDLV1"))?;
    drbd(g, &["create-md", "r0", "--force"])?;
    drbd(g, &["up", "r0"])?;
    drbd(g, &["primary", "r0", "--force"])?;
    drbd(g, &["create-md", "--stacked", "r0-U", "--force"])?;
    drbd(g, &["up", "--stacked", "r0-U"])?;
    drbd(g, &["primary", "--stacked", "r0-U", "--force"])?;
    let size = |dev: &str| -> Result<u64, String> {
        g.sh(&format!("blockdev --getsz {dev}"))?
            .trim()
            .parse()
            .map_err(|e| format!("{dev}: {e}"))
    };
    let (r0, u) = (size("/dev/drbd0")?, size("/dev/drbd10")?);
    // The LV grows live under DRBD (it holds it open).
    g.cairn(&["lv", "extend", "DRBDVG/DRBDLV1", "-L", "+64M"])?;
    // Standalone, DRBD grows only when told the (absent) peer has room;
    // without it cairn says so.
    let plain = drbd(g, &["resize", "r0"])?;
    ensure!(
        plain.contains("--assume-peer-has-space"),
        "resize without it: {plain}"
    );
    drbd(g, &["resize", "r0", "--assume-peer-has-space"])?;
    let r0_after = size("/dev/drbd0")?;
    ensure!(r0_after > r0 + 120_000, "r0 {r0} -> {r0_after}");
    // 64 MiB more for r0 minus a few bitmap sectors.
    ensure!(
        r0_after == 393_216 - 8 * 393_216_u64.div_ceil(262_144) - 8 - 64,
        "r0 size {r0_after} is not the backing size less the internal metadata"
    );
    drbd(
        g,
        &["resize", "--stacked", "r0-U", "--assume-peer-has-space"],
    )?;
    let u_after = size("/dev/drbd10")?;
    ensure!(u_after > u + 120_000, "r0-U {u} -> {u_after}");
    let st = g.cairn(&["--json", "drbd", "status", "r0-U"])?;
    ensure!(
        st.contains(&format!("\"capacity_sectors\": {u_after}")),
        "{st}"
    );
    // The metadata moved to the new end: a cycle attaches it there.
    drbd(g, &["down", "--stacked", "r0-U"])?;
    drbd(g, &["down", "r0"])?;
    drbd(g, &["up", "r0"])?;
    drbd(g, &["primary", "r0"])?;
    drbd(g, &["up", "--stacked", "r0-U"])?;
    // (Secondary: the device cannot be opened; status has its size.)
    let st = g.cairn(&["--json", "drbd", "status", "r0-U"])?;
    ensure!(
        st.contains(&format!("\"capacity_sectors\": {u_after}")),
        "r0-U's size after a cycle: {st}"
    );
    drbd(g, &["down", "--stacked", "r0-U"])?;
    drbd(g, &["down", "r0"])?;
    g.run(&["vgck", "DRBDVG"])?;
    g.cairn(&["vg", "deactivate", "DRBDVG"])?;
    g.sh("vgremove -q -ff DRBDVG")?;
    Ok(())
}

/// `cairn drbd events` streams the state changes of an up, a promotion,
/// a demotion and a down, as JSON lines.
fn events_stream_state_changes(g: &Guest) -> TestResult {
    ensure_down(g)?;
    let a = g.loop_disk("ev", 64)?;
    write_conf(g, &seed_conf(g, &a.dev))?;
    drbd(g, &["create-md", "r0", "--force"])?;
    g.sh(&format!(
        "setsid {} --json drbd events --count 50 > /tmp/events.json 2>&1 < /dev/null &
        echo $! > /tmp/events.pid; sleep 1",
        lab::guest::CAIRN
    ))?;
    drbd(g, &["up", "r0"])?;
    drbd(g, &["primary", "r0", "--force"])?;
    drbd(g, &["secondary", "r0"])?;
    drbd(g, &["down", "r0"])?;
    g.sh("sleep 1; kill $(cat /tmp/events.pid) 2>/dev/null || true")?;
    let text = g.sh("cat /tmp/events.json")?;
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{e}: {l}")))
        .collect::<Result<_, _>>()?;
    let change = |from: &str, to: &str| {
        events.iter().any(|e| {
            e["reason"] == "state-change"
                && e["minor"] == 0
                && e["previous"]["role"] == from
                && e["state"]["role"] == to
        })
    };
    ensure!(
        change("Secondary", "Primary"),
        "no promotion event in:\n{text}"
    );
    ensure!(
        change("Primary", "Secondary"),
        "no demotion event in:\n{text}"
    );
    ensure!(
        events
            .iter()
            .any(|e| e["state"]["disk"] == "UpToDate" && e["previous"]["disk"] != "UpToDate"),
        "no disk state change in:\n{text}"
    );
    Ok(())
}

/// Refusals leave no resource behind.
fn bad_requests_leave_nothing_configured(g: &Guest) -> TestResult {
    ensure_down(g)?;
    let a = g.loop_disk("bad", 64)?;
    let blank = g.loop_disk("blank", 64)?;
    let clash = g.loop_disk("clash", 64)?;
    let v9 = g.loop_disk("v9", 64)?;
    let mut conf = seed_conf(g, &a.dev);
    conf.push_str(&format!(
        "resource far {{\n  on {h} {{ device /dev/drbd2; disk {d}; address 10.99.99.99:7800; meta-disk internal; }}\n  on peer {{ device /dev/drbd2; disk /dev/x; address 10.99.99.98:7800; meta-disk internal; }}\n}}\n\
         resource nomd {{\n  on {h} {{ device /dev/drbd3; disk {b}; meta-disk internal; }}\n}}\n\
         resource gone {{\n  on {h} {{ device /dev/drbd4; disk /dev/nonexistent; meta-disk internal; }}\n}}\n\
         resource twice {{\n  on {h} {{ device /dev/drbd5; disk {d}; meta-disk internal; }}\n}}\n\
         resource v9 {{\n  on {h} {{ device /dev/drbd7; disk {v}; meta-disk internal; }}\n}}\n\
         resource clash {{\n  on {h} {{ device /dev/drbd6; disk {c}; address 127.0.0.1:7791; meta-disk internal; }}\n  on other {{ device /dev/drbd6; disk /dev/x; address 127.0.0.1:7795; meta-disk internal; }}\n}}\n",
        h = g.hostname(),
        d = a.dev,
        b = blank.dev,
        c = clash.dev,
        v = v9.dev
    ));
    write_conf(g, &conf)?;
    g.sh(&format!(
        "dd if=/dev/zero of={} bs=1M count=64 status=none",
        blank.dev
    ))?;
    drbd(g, &["create-md", "r0", "--force"])?;
    drbd(g, &["create-md", "clash", "--force"])?;
    // DRBD 9's metadata on a disk: not the 8.4 kernel's.
    g.run(&[
        "drbdmeta",
        "--force",
        "7",
        "v09",
        &v9.dev,
        "internal",
        "create-md",
        "1",
    ])?;
    drbd(g, &["up", "r0"])?;
    // r0-U listens on 127.0.0.1:7791; clash wants the same address. The
    // kernel refuses the connect after the attach: both are undone.
    drbd(g, &["primary", "r0", "--force"])?;
    drbd(g, &["create-md", "--stacked", "r0-U", "--force"])?;
    drbd(g, &["up", "--stacked", "r0-U"])?;
    expect_refusals(g, &[(&["up", "clash"], "ERR_LOCAL_ADDR")])?;
    // The same inside a resource that existed before the call: it stays,
    // without the minor this call made.
    g.sh(&format!("{DRBDSETUP} new-resource clash"))?;
    expect_refusals(g, &[(&["up", "clash"], "ERR_LOCAL_ADDR")])?;
    let left = g.sh(&format!("{DRBDSETUP} show clash"))?;
    ensure!(
        !left.contains("volume") && !left.contains("minor 6"),
        "clash kept a minor:\n{left}"
    );
    g.sh(&format!("{DRBDSETUP} down clash"))?;
    drbd(g, &["down", "--stacked", "r0-U"])?;
    drbd(g, &["secondary", "r0"])?;
    // r0's superblock as the attached kernel keeps it: unclean (the log
    // is live). An apply-al on that disk would mark it clean under the
    // kernel; `up twice` must not touch it.
    let r0_md = || {
        g.sh(&format!(
            "dd if={} bs=4096 skip=$(( $(blockdev --getsz {0}) / 8 - 1 )) count=1 iflag=direct \
             status=none | sha256sum; \
             dd if={0} bs=4096 skip=$(( $(blockdev --getsz {0}) / 8 - 1 )) count=1 iflag=direct \
             status=none | od -A n -t x1 -j 60 -N 4",
            a.dev
        ))
    };
    let md_before = r0_md()?;
    ensure!(
        md_before.contains("83 74 02 6c"),
        "r0's attached metadata is not the kernel's unclean v08 (84 unclean magic): {md_before}"
    );
    expect_refusals(
        g,
        &[
            (&["up", "nope"], "unknown"),
            (&["up", "r0-U"], "give --stacked"),
            (&["up", "far"], "not an address of this host"),
            (&["up", "nomd"], "no DRBD v08 metadata"),
            (&["up", "v9"], "holds DRBD 9 (v09) metadata"),
            (&["up", "gone"], "does not exist"),
            // r0 holds the disk (DRBD claims it exclusively): twice's
            // apply-al is refused before it reads or writes anything.
            (&["up", "twice"], "is in use (attached by a DRBD minor"),
            (
                &["apply-al", "twice"],
                "is in use (attached by a DRBD minor",
            ),
            (
                &["create-md", "r0", "--force"],
                "take the resource down first",
            ),
        ],
    )?;
    let md_after = r0_md()?;
    ensure!(
        md_before == md_after,
        "r0's metadata changed under the kernel:\n{md_before}\n{md_after}"
    );
    let p = proc_drbd(g)?;
    let minors: Vec<&str> = p.lines().filter(|l| l.contains(": cs:")).collect();
    ensure!(
        minors.len() == 1 && minors[0].trim_start().starts_with("0:"),
        "a refused up left something configured:\n{p}"
    );
    let st = g.cairn(&["--json", "drbd", "status"])?;
    ensure!(
        !st.contains("\"nomd\"") && !st.contains("\"twice\""),
        "{st}"
    );
    drbd(g, &["down", "r0"])?;
    Ok(())
}

/// Without --force, create-md refuses a disk that holds anything (a
/// filesystem, a PV label, an md superblock at the end), as drbdmeta asks
/// first; with or without it, a mounted disk (O_EXCL). Nothing is written.
fn create_md_refuses_data(g: &Guest) -> TestResult {
    ensure_down(g)?;
    let vg = g.loop_disk("sigvg", 128)?;
    let pv = g.loop_disk("sigpv", 64)?;
    let md = g.loop_disk("sigmd", 64)?;
    g.sh(&format!(
        "vgcreate -q sigvg {} && lvcreate -q -y -L 64M -n data sigvg && mkfs.ext4 -q /dev/sigvg/data 60M
         pvcreate -q {}
         mdadm --create /dev/md9 --run --quiet --level=1 --raid-devices=2 --force --metadata=1.0 {} missing
         mdadm --stop /dev/md9",
        vg.dev, pv.dev, md.dev
    ))?;
    let sum = |dev: &str| g.sh(&format!("sha256sum < {dev}"));
    let cases = [
        ("/dev/sigvg/data", "ext4 (filesystem)"),
        (pv.dev.as_str(), "LVM2_member (raid)"),
        (md.dev.as_str(), "linux_raid_member (raid"),
    ];
    for (disk, want) in cases {
        write_conf(g, &seed_conf(g, disk))?;
        let before = sum(disk)?;
        expect_refusals(g, &[(&["create-md", "r0"], want)])?;
        ensure!(sum(disk)? == before, "{disk}: create-md changed it");
    }
    g.run(&["e2fsck", "-fn", "/dev/sigvg/data"])?;
    g.run(&["pvs", &pv.dev])?;
    g.run(&["mdadm", "--examine", &md.dev])?;
    // Mounted: even --force is refused (the exclusive open fails).
    write_conf(g, &seed_conf(g, "/dev/sigvg/data"))?;
    g.sh("mkdir -p /tmp/sigmnt && mount /dev/sigvg/data /tmp/sigmnt")?;
    let refused = expect_refusals(g, &[(&["create-md", "r0", "--force"], "is in use")]);
    g.sh("umount /tmp/sigmnt")?;
    refused?;
    g.run(&["e2fsck", "-fn", "/dev/sigvg/data"])?;
    // Forced, unmounted: the filesystem (60 of 64 MiB) ends before the
    // metadata, so create-md proceeds as drbdmeta does, and leaves it whole.
    drbd(g, &["create-md", "r0", "--force"])?;
    g.run(&["e2fsck", "-fn", "/dev/sigvg/data"])?;
    // A filesystem that fills the LV would lose its end to the metadata:
    // refused even forced, as drbdmeta refuses it.
    g.run(&["mkfs.ext4", "-q", "-F", "/dev/sigvg/data"])?;
    let before = sum("/dev/sigvg/data")?;
    expect_refusals(
        g,
        &[(&["create-md", "r0", "--force"], "would overwrite its end")],
    )?;
    ensure!(
        sum("/dev/sigvg/data")? == before,
        "forced create-md changed the LV"
    );
    g.run(&["e2fsck", "-fn", "/dev/sigvg/data"])?;
    g.sh(&format!(
        "vgremove -q -f sigvg >/dev/null; pvremove -q {} {} >/dev/null",
        vg.dev, pv.dev
    ))?;
    Ok(())
}

fn main() {
    lab::main(Group {
        name: "vm_drbd",
        nodes: 1,
        mem_mib: 1024,
        timeout: Duration::from_secs(900),
        stream_log: false,
        boots: 1,
        disks: &[],
        tests: vec![
            VmTest {
                name: "module_not_loaded_is_a_clear_error",
                run: module_not_loaded_is_a_clear_error,
            },
            VmTest {
                name: "create_md_as_drbdmeta",
                run: create_md_as_drbdmeta,
            },
            VmTest {
                name: "seed_r0_and_stacked_r0u",
                run: seed_r0_and_stacked_r0u,
            },
            VmTest {
                name: "crash_and_reboot_cycles",
                run: crash_and_reboot_cycles,
            },
            VmTest {
                name: "online_resize_as_the_seed",
                run: online_resize_as_the_seed,
            },
            VmTest {
                name: "events_stream_state_changes",
                run: events_stream_state_changes,
            },
            VmTest {
                name: "create_md_refuses_data",
                run: create_md_refuses_data,
            },
            VmTest {
                name: "bad_requests_leave_nothing_configured",
                run: bad_requests_leave_nothing_configured,
            },
        ],
    });
}
