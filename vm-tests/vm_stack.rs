//! The stack from one file (examples/lab.toml) in one VM boot: apply on md
//! RAID1s of loop devices, checked against lvm2, /proc/drbd and lxc; a
//! second apply does nothing; drift made with lvm2 is reported; containers
//! made and removed on the command line; down and up keep the data; bad
//! files change nothing; an apply killed at several steps is finished by
//! the next one.

#[path = "lab/mod.rs"]
mod lab;
mod stack;

use std::time::Duration;

use lab::guest::CAIRN;
use lab::{Group, Guest, TestResult, VmTest};
use stack::LAB_TOML;

const DISK_DIR: &str = "/tmp/stack-disks";

/// Fresh md RAIDs on fresh loop devices, and nothing of an earlier stack
/// (cairn down first, then the disks go).
fn reset(g: &Guest) -> TestResult {
    if std::path::Path::new("/dev/md0").exists() {
        g.sh(&format!("{CAIRN} down {LAB_TOML} >/dev/null 2>&1 || true"))?;
        g.sh(
            "for c in $(lxc-ls 2>/dev/null); do lxc-stop -k -n $c 2>/dev/null || true; done
              dmsetup remove_all 2>/dev/null || true
              for r in r0-U r0; do /lib/drbd/drbdsetup-84 down $r 2>/dev/null || true; done
              mdadm --stop /dev/md0 /dev/md1 2>/dev/null || true
              losetup -D; rm -rf /tmp/stack-disks",
        )?;
    }
    g.sh("rm -rf /etc/drbd.d/r0.res /etc/drbd.d/r0-U.res /var/lib/lxc/* /var/lib/cairn /etc/lvm/archive /etc/lvm/backup")?;
    stack::loop_raids(g, DISK_DIR)
}

fn setup(g: &Guest) -> TestResult {
    reset(g)?;
    stack::configure_host(g, LAB_TOML)
}

fn apply_builds_the_seed_stack(g: &Guest) -> TestResult {
    setup(g)?;
    let plan = g.cairn(&["plan", LAB_TOML])?;
    ensure!(plan.contains("25 steps"), "plan of a new stack:\n{plan}");
    let out = g.cairn(&["apply", LAB_TOML])?;
    ensure!(out.contains("applied: 25 steps"), "apply:\n{out}");
    stack::lvm2_agrees(g)?;
    stack::seed_structure(g)?;
    stack::drbd_primary(g)?;
    let s = stack::container_state(g, "my-container")?;
    ensure!(s == "RUNNING", "my-container is {s}");
    // The resource files drbd-utils reads are cairn's; drbdadm agrees.
    let dump = g.sh("drbdadm dump r0-U 2>&1")?;
    ensure!(
        dump.contains("protocol") && dump.contains("A;"),
        "drbdadm dump r0-U:\n{dump}"
    );
    let cfg = g.sh("grep '^lxc.rootfs.path' /var/lib/lxc/my-container/config")?;
    ensure!(
        cfg.contains("lvm:/dev/DRBDVG2/my-container"),
        "lxc config: {cfg}"
    );
    Ok(())
}

fn second_apply_does_nothing(g: &Guest) -> TestResult {
    let seqnos = g.sh("vgs --noheadings -o vg_name,vg_seqno 2>/dev/null")?;
    let plan = g.cairn(&["--json", "plan", LAB_TOML])?;
    let v: serde_json::Value = serde_json::from_str(&plan).map_err(|e| e.to_string())?;
    ensure!(
        v["steps"].as_array().is_some_and(|s| s.is_empty()),
        "plan after apply:\n{plan}"
    );
    let out = g.cairn(&["apply", LAB_TOML])?;
    ensure!(out.contains("nothing to do"), "second apply:\n{out}");
    let after = g.sh("vgs --noheadings -o vg_name,vg_seqno 2>/dev/null")?;
    ensure!(
        seqnos == after,
        "a second apply wrote metadata: {seqnos} -> {after}"
    );
    Ok(())
}

fn status_shows_every_layer(g: &Guest) -> TestResult {
    let text = g.cairn(&["status", LAB_TOML])?;
    for want in [
        "VG VG1 on /dev/md0 /dev/md1: up",
        "cachedlv 2.00g active, cached (writethrough smq",
        "DRBD r0 /dev/drbd0",
        "StandAlone Primary/Unknown UpToDate/DUnknown",
        "DRBD r0-U /dev/drbd10",
        "WFConnection Primary/Unknown UpToDate/DUnknown",
        "thin pool VPSthinpool 1.00g",
        "auto-extend at 50% by 10%",
        "container my-container RUNNING (autostart)",
    ] {
        ensure!(text.contains(want), "status lacks {want:?}:\n{text}");
    }
    let json = g.cairn(&["--json", "status", LAB_TOML])?;
    let v: serde_json::Value = serde_json::from_str(&json).map_err(|e| e.to_string())?;
    let layers = v["layers"].as_array().ok_or("no layers")?;
    let names: Vec<&str> = layers.iter().filter_map(|l| l["name"].as_str()).collect();
    ensure!(
        names == ["VG1", "DRBDVG", "r0", "r0-U", "DRBDVG2"],
        "layer order {names:?}"
    );
    let r0u = &layers[3];
    ensure!(
        r0u["role"] == "Primary" && r0u["protocol"] == "A",
        "r0-U: {r0u}"
    );
    let cache = &layers[0]["lvs"][0]["cache"];
    ensure!(
        cache["blocks_total"].as_u64().unwrap_or(0) > 0,
        "cache: {cache}"
    );
    let pool = &layers[4]["thinpools"][0];
    let used = pool["data_percent"].as_f64().unwrap_or(0.0);
    ensure!(used.is_finite() && used > 0.0, "pool: {pool}");
    Ok(())
}

fn drift_made_with_lvm2_is_reported(g: &Guest) -> TestResult {
    // The pool grown by hand: noted, not shrunk.
    g.sh("lvextend -q -L +8M DRBDVG2/VPSthinpool 2>&1")?;
    let plan = g.cairn(&["plan", LAB_TOML])?;
    ensure!(
        plan.contains("VPSthinpool holds <1.01g of data, the file says 1.00g")
            && plan.contains("nothing to do"),
        "plan after lvextend:\n{plan}"
    );
    // The cache split off by hand: apply attaches it again.
    g.sh("lvconvert -q -y --splitcache VG1/cachedlv 2>&1")?;
    let plan = g.cairn(&["plan", LAB_TOML])?;
    ensure!(
        plan.contains("cache attach VG1/cachedata to VG1/cachedlv") && plan.contains("1 step"),
        "plan after --splitcache:\n{plan}"
    );
    g.cairn(&["apply", LAB_TOML])?;
    stack::seed_structure(g)?;
    stack::lvm2_agrees(g)?;
    // A container's volume grown in the file: extended, filesystem too.
    let bigger = std::fs::read_to_string(LAB_TOML)
        .map_err(|e| e.to_string())?
        .replace("size = \"500M\"", "size = \"600M\"");
    std::fs::write("/tmp/bigger.toml", bigger).map_err(|e| e.to_string())?;
    let out = g.cairn(&["apply", "/tmp/bigger.toml"])?;
    ensure!(
        out.contains("lv extend DRBDVG2/my-container from 500.00m to 600.00m")
            && out.contains("resize2fs"),
        "{out}"
    );
    let df = g.sh("lxc-attach -n my-container -- df -k / | tail -1")?;
    // Size, Used, Available, Use%, Mounted on: the size is fifth from the end.
    let fields: Vec<&str> = df.split_whitespace().collect();
    let kb: u64 = fields
        .len()
        .checked_sub(5)
        .and_then(|i| fields[i].parse().ok())
        .unwrap_or(0);
    ensure!(
        kb > 550_000,
        "the container's filesystem did not grow: {df}"
    );
    // Back to the file's size: a shrink is refused and changes nothing.
    let seq = g.sh("vgs --noheadings -o vg_seqno DRBDVG2 2>/dev/null")?;
    let out = g.output(&[CAIRN, "apply", LAB_TOML])?;
    let plan = g.cairn(&["plan", LAB_TOML])?;
    ensure!(
        out.status.success() && plan.contains("cairn does not shrink a container's filesystem"),
        "{plan}"
    );
    ensure!(
        seq == g.sh("vgs --noheadings -o vg_seqno DRBDVG2 2>/dev/null")?,
        "metadata changed"
    );
    Ok(())
}

/// examples/embed.rs, the embedding program, on the lab's stack:
/// up, a container made, a thin snapshot of its volume, the status, all
/// through the façade in one process; lvm2 sees the snapshot's origin.
fn a_program_embeds_cairn(g: &Guest) -> TestResult {
    let embed = lab::guest::example("embed")?;
    let out = g.sh(&format!("{embed} {LAB_TOML} embedded 2>&1"))?;
    ensure!(
        out.contains("container embedded:") && out.contains("snapshot DRBDVG2/embedded-snap made"),
        "{out}"
    );
    ensure!(
        out.contains("commit DRBDVG2 seqno") && out.contains("VPSthinpool"),
        "no commit or no status tree: {out}"
    );
    let lvs = g.sh("lvs --noheadings -o lv_name,origin,segtype DRBDVG2/embedded-snap")?;
    let f: Vec<&str> = lvs.split_whitespace().collect();
    ensure!(
        f == ["embedded-snap", "embedded", "thin"],
        "lvm2 sees {lvs}"
    );
    // Run again, the name is taken: the error's kind says so.
    let again = g.output(&[&embed, LAB_TOML, "embedded"])?;
    let err = String::from_utf8_lossy(&again.stderr);
    ensure!(!again.status.success(), "a second run succeeded");
    ensure!(
        err.contains("exists already") || err.contains("already"),
        "{err}"
    );
    g.cairn(&["snapshot", "remove", "DRBDVG2/embedded-snap", "--yes"])?;
    g.cairn(&["container", "remove", "embedded", "--yes", "-f", LAB_TOML])?;
    let left = g.sh("lvs --noheadings -o lv_name DRBDVG2")?;
    ensure!(!left.contains("embedded"), "left behind: {left}");
    Ok(())
}

fn containers_on_the_command_line(g: &Guest) -> TestResult {
    let out = g.cairn(&[
        "container",
        "create",
        "web",
        "--size",
        "200M",
        "--start",
        "-f",
        LAB_TOML,
    ])?;
    ensure!(out.contains("thin create DRBDVG2/web"), "{out}");
    ensure!(
        stack::container_state(g, "web")? == "RUNNING",
        "web not running"
    );
    let sum = stack::write_in(g, "web", "hello-web")?;
    ensure!(!sum.is_empty(), "no data");
    let list = g.cairn(&["container", "list", "-f", LAB_TOML])?;
    ensure!(
        list.contains("web") && list.contains("RUNNING") && list.contains("my-container"),
        "{list}"
    );
    // cairn stops and starts it, and so does lxc itself.
    g.cairn(&["container", "stop", "web", "-f", LAB_TOML])?;
    ensure!(
        stack::container_state(g, "web")? == "STOPPED",
        "web after cairn container stop"
    );
    g.cairn(&["container", "start", "web", "-f", LAB_TOML])?;
    ensure!(
        stack::container_state(g, "web")? == "RUNNING",
        "web after cairn container start"
    );
    g.sh("lxc-stop -n web && lxc-start -n web")?;
    ensure!(
        stack::read_in(g, "web")? == sum,
        "data after lxc-stop/start"
    );
    // Bad input: an invalid name, a missing pool, an existing name.
    for (args, why) in [
        (
            vec!["container", "create", "bad/name", "--size", "10M"],
            "name",
        ),
        (
            vec![
                "container",
                "create",
                "x",
                "--size",
                "10M",
                "--pool",
                "DRBDVG2/nopool",
            ],
            "no thin pool",
        ),
        (
            vec!["container", "create", "web", "--size", "10M"],
            "already",
        ),
    ] {
        let mut a = args.clone();
        a.extend(["-f", LAB_TOML]);
        let mut argv = vec![CAIRN];
        argv.extend(a);
        let o = g.output(&argv)?;
        let err = String::from_utf8_lossy(&o.stderr);
        ensure!(!o.status.success() && err.contains(why), "{argv:?}: {err}");
    }
    // remove asks: without a terminal and --yes it changes nothing.
    let o = g.output(&[CAIRN, "container", "remove", "web", "-f", LAB_TOML])?;
    ensure!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--yes"),
        "remove without --yes"
    );
    ensure!(
        stack::container_state(g, "web")? == "RUNNING",
        "web touched"
    );
    g.cairn(&["container", "remove", "web", "--yes", "-f", LAB_TOML])?;
    let lvs = g.sh("lvs --noheadings -o lv_name DRBDVG2 2>/dev/null")?;
    ensure!(
        !lvs.contains("web") && !std::path::Path::new("/var/lib/lxc/web").exists(),
        "web left: {lvs}"
    );
    // `container create` killed after its thin create: run again, it
    // finishes the container...
    lab::guest::crash_points()?;
    let o = g.sh(&format!(
        "CAIRN_CRASH_AT=apply-step-2 {CAIRN} container create half --size 50M -f {LAB_TOML} 2>&1 || echo rc=$?"
    ))?;
    ensure!(o.contains("rc=134"), "no crash: {o}");
    let out = g.cairn(&[
        "container",
        "create",
        "half",
        "--size",
        "50M",
        "--start",
        "-f",
        LAB_TOML,
    ])?;
    ensure!(out.contains("mkfs.ext4 /dev/DRBDVG2/half"), "{out}");
    ensure!(
        stack::container_state(g, "half")? == "RUNNING",
        "half not running"
    );
    g.cairn(&["container", "remove", "half", "--yes", "-f", LAB_TOML])?;
    // ... unless its volume was written to since by someone else: left
    // alone. (Killed inside the thin create this time: with an mkfs under
    // way, half a filesystem could not be told from somebody's data.)
    let o = g.sh(&format!(
        "CAIRN_CRASH_AT=thin-after-commit-a {CAIRN} container create other --size 50M -f {LAB_TOML} 2>&1 || echo rc=$?"
    ))?;
    ensure!(o.contains("rc=134"), "no crash: {o}");
    // Runs `container create other` again: (succeeded, stderr).
    let create_other = || -> Result<(bool, String), String> {
        let o = g.output(&[
            CAIRN,
            "container",
            "create",
            "other",
            "--size",
            "50M",
            "-f",
            LAB_TOML,
        ])?;
        Ok((
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ))
    };
    g.cairn(&["lv", "activate", "DRBDVG2/other"])?;
    let sum = g.sh(
        "dd if=/dev/urandom of=/dev/DRBDVG2/other bs=1M count=2 oflag=direct status=none; \
                    dd if=/dev/DRBDVG2/other bs=1M count=2 iflag=direct status=none | md5sum",
    )?;
    let (ok, err) = create_other()?;
    ensure!(!ok && err.contains("now holds something else"), "{err}");
    let after = g.sh("dd if=/dev/DRBDVG2/other bs=1M count=2 iflag=direct status=none | md5sum")?;
    ensure!(sum == after, "the other volume's data was changed");
    // The same with the volume left inactive: the plan cannot look at it,
    // so the mkfs step looks right before it would run, and refuses.
    g.cairn(&["lv", "deactivate", "DRBDVG2/other"])?;
    let (ok, err) = create_other()?;
    ensure!(
        !ok && err.contains("not what cairn was making"),
        "container create over an inactive, written volume: {err}"
    );
    g.cairn(&["lv", "activate", "DRBDVG2/other"])?;
    let after = g.sh("dd if=/dev/DRBDVG2/other bs=1M count=2 iflag=direct status=none | md5sum")?;
    ensure!(sum == after, "the inactive volume's data was changed");
    g.sh("rm -f /var/lib/cairn/container.journal")?;
    g.cairn(&["lv", "remove", "DRBDVG2/other", "--yes"])?;
    // A root filesystem from a tarball (here lxc's own busybox template's,
    // made offline into a directory and packed).
    g.sh("lxc-create -q -n tmpl -t busybox -B dir >/dev/null 2>&1
          tar -C /var/lib/lxc/tmpl/rootfs -czf /tmp/rootfs.tgz .
          lxc-destroy -q -n tmpl")?;
    let out = g.cairn(&[
        "container",
        "create",
        "fromtar",
        "--size",
        "100M",
        "--rootfs",
        "/tmp/rootfs.tgz",
        "--start",
        "-f",
        LAB_TOML,
    ])?;
    ensure!(out.contains("rootfs of fromtar: /tmp/rootfs.tgz"), "{out}");
    ensure!(
        stack::container_state(g, "fromtar")? == "RUNNING",
        "fromtar not running"
    );
    let sum = stack::write_in(g, "fromtar", "from-a-tarball")?;
    ensure!(!sum.is_empty(), "no data in fromtar");
    g.cairn(&["container", "remove", "fromtar", "--yes", "-f", LAB_TOML])?;
    Ok(())
}

fn down_and_up_keep_the_data(g: &Guest) -> TestResult {
    let sum = stack::write_in(g, "my-container", "before-down")?;
    let out = g.cairn(&["down", LAB_TOML])?;
    ensure!(
        out.contains("lxc-stop my-container") && out.contains("drbd down r0"),
        "{out}"
    );
    let dm = g.sh("dmsetup ls")?;
    ensure!(dm.contains("No devices"), "left after down: {dm}");
    let p = g.sh("cat /proc/drbd")?;
    ensure!(
        !p.contains(" 0: ") && !p.contains("10: "),
        "DRBD after down:\n{p}"
    );
    let out = g.cairn(&["up", LAB_TOML])?;
    ensure!(out.contains("lxc-start my-container"), "up:\n{out}");
    stack::drbd_primary(g)?;
    ensure!(
        stack::container_state(g, "my-container")? == "RUNNING",
        "not running after up"
    );
    ensure!(
        stack::read_in(g, "my-container")? == sum,
        "data changed across down/up"
    );
    let again = g.cairn(&["up", LAB_TOML])?;
    ensure!(again.contains("nothing to do"), "a second up:\n{again}");
    stack::lvm2_agrees(g)?;
    Ok(())
}

/// Issue 12 on the stack: a device left suspended (here the container's
/// volume and the cached LV under DRBD) never blocks `cairn up`, which
/// resumes it; `container remove` takes only the container's own volume;
/// a damaged journal is refused, not skimmed.
fn up_resumes_suspended_devices_and_removes_only_its_own(g: &Guest) -> TestResult {
    let sum = stack::write_in(g, "my-container", "before-suspend")?;
    g.sh("dmsetup suspend DRBDVG2-my--container; dmsetup suspend VG1-cachedlv")?;
    // The whole-host scan reads the DRBD devices, whose backing disk stands
    // on the suspended cachedlv (DRBD links no holder in sysfs): it must say
    // so, not wait.
    let o = g.output(&["timeout", "120", CAIRN, "vgs"])?;
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(
        o.status.code() != Some(124) && err.contains("VG1-cachedlv is suspended"),
        "vgs with cachedlv suspended under DRBD: {:?} {err}",
        o.status
    );
    let out = g.sh(&format!("timeout 300 {CAIRN} up {LAB_TOML} 2>&1"))?;
    ensure!(
        out.contains("left suspended"),
        "up should say what it resumed:
{out}"
    );
    for dev in ["DRBDVG2-my--container", "VG1-cachedlv"] {
        let info = g.sh(&format!("dmsetup info {dev}"))?;
        ensure!(
            info.contains("ACTIVE") && !info.contains("SUSPENDED"),
            "{dev} after up:
{info}"
        );
    }
    g.sh("timeout 60 dd if=/dev/DRBDVG2/my-container of=/dev/null bs=4k count=16 iflag=direct status=none")?;
    ensure!(
        stack::read_in(g, "my-container")? == sum,
        "data changed across the suspend"
    );
    // A container whose config names another container's volume.
    g.cairn(&[
        "container",
        "create",
        "thief",
        "--size",
        "20M",
        "-f",
        LAB_TOML,
    ])?;
    let cfg = "/var/lib/lxc/thief/config";
    g.sh(&format!(
        "sed -i 's|^lxc.rootfs.path.*|lxc.rootfs.path = lvm:/dev/DRBDVG2/my-container|' {cfg}"
    ))?;
    let o = g.output(&[
        CAIRN,
        "container",
        "remove",
        "thief",
        "--yes",
        "-f",
        LAB_TOML,
    ])?;
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(
        !o.status.success() && err.contains("not its own volume"),
        "container remove of a config naming my-container's volume: {err}"
    );
    ensure!(
        stack::container_state(g, "my-container")? == "RUNNING",
        "my-container after the refusal"
    );
    g.sh(&format!(
        "sed -i 's|^lxc.rootfs.path.*|lxc.rootfs.path = lvm:/dev/DRBDVG2/thief|' {cfg}"
    ))?;
    g.cairn(&["container", "remove", "thief", "--yes", "-f", LAB_TOML])?;
    // A journal line that is whole but does not parse is damage.
    g.sh(
        "mkdir -p /var/lib/cairn; printf '%s\nnot json\n%s\n'          '{\"event\":\"start\",\"file\":\"x\",\"command\":\"c\",\"time\":1}'          '{\"event\":\"done\",\"n\":1}' > /var/lib/cairn/apply.journal",
    )?;
    let o = g.output(&[CAIRN, "plan", LAB_TOML])?;
    let err = String::from_utf8_lossy(&o.stderr);
    g.sh("rm -f /var/lib/cairn/apply.journal")?;
    ensure!(
        !o.status.success() && err.contains("line 2 is damaged"),
        "plan with a damaged journal: {err}"
    );
    stack::lvm2_agrees(g)?;
    Ok(())
}

fn bad_files_change_nothing(g: &Guest) -> TestResult {
    let base = std::fs::read_to_string(LAB_TOML).map_err(|e| e.to_string())?;
    let before = g.sh("vgs --noheadings -o vg_name,vg_seqno 2>/dev/null; dmsetup table | sort")?;
    let cases = [
        (base.replace("name = \"DRBDLV1\"", "name = \"DRBDLV1\"\nsize2 = 1"), ":21: unknown field `size2`"),
        (base.replace("minor = 10", "minor = \"10\""), "invalid type"),
        (base.replace("pool = \"DRBDVG2/VPSthinpool\"", "pool = \"DRBDVG2/nopool\""), "no [[vg.thinpool]] nopool"),
        (base.replace("name = \"my-container\"", "name = \"bad name\""), "container name"),
        (base.replace("pvs = [\"/dev/drbd10\"]", "pvs = [\"/dev/drbd11\"]"), "no [[drbd]] in this file has that device"),
        (format!("{base}\n[[vg]]\nname = \"X\"\npvs = [\"/dev/Y/b\"]\n[[vg.lv]]\nname = \"a\"\nsize = \"4M\"\n[[vg]]\nname = \"Y\"\npvs = [\"/dev/X/a\"]\n[[vg.lv]]\nname = \"b\"\nsize = \"4M\"\n"), "dependency cycle"),
        (format!("{base}\n[[container]]\nname = \"huge\"\nsize = \"1G\"\n[[vg.lv]]\nname = \"big\"\nsize = \"100G\"\n"), "free"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let path = format!("/tmp/bad{i}.toml");
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        let o = g.output(&[CAIRN, "apply", &path])?;
        let err = String::from_utf8_lossy(&o.stderr);
        ensure!(
            !o.status.success() && err.contains(want),
            "case {i}: wanted {want:?}, got {err}"
        );
    }
    // A device in use: a PV that carries a filesystem.
    g.sh("truncate -s 64M /tmp/used.img && mkfs.ext4 -q -F /tmp/used.img && losetup -f --show /tmp/used.img > /tmp/used.dev")?;
    let used = std::fs::read_to_string("/tmp/used.dev").map_err(|e| e.to_string())?;
    let text = base.replace(
        "pvs = [\"/dev/md0\", \"/dev/md1\"]",
        &format!("pvs = [\"/dev/md0\", \"/dev/md1\", \"{}\"]", used.trim()),
    );
    std::fs::write("/tmp/inuse.toml", text).map_err(|e| e.to_string())?;
    let o = g.output(&[CAIRN, "apply", "/tmp/inuse.toml"])?;
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(
        !o.status.success() && err.contains("ext4 (filesystem"),
        "in use: {err}"
    );
    g.sh(&format!("losetup -d {}", used.trim()))?;
    // A device with a partition table, and one with an md superblock.
    for (prep, want) in [
        ("printf '\\125\\252' | dd of=/tmp/sig.img bs=1 seek=510 conv=notrunc status=none", "partition table"),
        ("mdadm --create /dev/md9 --run --quiet --level=1 --raid-devices=2 --force --metadata=1.2 /tmp/sig.img missing 2>/dev/null || true; mdadm --stop /dev/md9 2>/dev/null || true", "linux_raid_member (raid"),
    ] {
        g.sh("rm -f /tmp/sig.img && truncate -s 64M /tmp/sig.img")?;
        let dev = g.sh("losetup -f --show /tmp/sig.img")?.trim().to_owned();
        g.sh(&prep.replace("/tmp/sig.img", &dev))?;
        let text = base.replace(
            "pvs = [\"/dev/md0\", \"/dev/md1\"]",
            &format!("pvs = [\"/dev/md0\", \"/dev/md1\", \"{dev}\"]"),
        );
        std::fs::write("/tmp/sig.toml", text).map_err(|e| e.to_string())?;
        let o = g.output(&[CAIRN, "apply", "/tmp/sig.toml"])?;
        let err = String::from_utf8_lossy(&o.stderr);
        g.sh(&format!("losetup -d {dev}"))?;
        ensure!(!o.status.success() && err.contains(want), "{want}: {err}");
    }
    // A container name LXC already has (another rootfs): refused, its
    // config untouched.
    g.sh("lxc-create -q -n clash -t busybox -B dir >/dev/null 2>&1")?;
    let before_cfg =
        std::fs::read_to_string("/var/lib/lxc/clash/config").map_err(|e| e.to_string())?;
    std::fs::write(
        "/tmp/clash.toml",
        format!("{base}\n[[container]]\nname = \"clash\"\nsize = \"100M\"\n"),
    )
    .map_err(|e| e.to_string())?;
    let o = g.output(&[CAIRN, "apply", "/tmp/clash.toml"])?;
    let err = String::from_utf8_lossy(&o.stderr);
    let after_cfg =
        std::fs::read_to_string("/var/lib/lxc/clash/config").map_err(|e| e.to_string())?;
    g.sh("lxc-destroy -q -n clash")?;
    ensure!(
        !o.status.success() && err.contains("LXC has a container of that name"),
        "clash: {err}"
    );
    ensure!(
        before_cfg == after_cfg,
        "the other container's config was changed"
    );
    let after = g.sh("vgs --noheadings -o vg_name,vg_seqno 2>/dev/null; dmsetup table | sort")?;
    ensure!(
        before == after,
        "bad input changed something:\n{before}\n->\n{after}"
    );
    Ok(())
}

/// kill -9 (an abort at a crash point) at step N of a fresh apply; the
/// next apply finishes, and the stack is whole.
fn crash_at(g: &Guest, point: &str) -> TestResult {
    lab::guest::crash_points()?;
    reset(g)?;
    let o = g.sh(&format!(
        "CAIRN_CRASH_AT={point} {CAIRN} apply {LAB_TOML} 2>&1 || echo rc=$?"
    ))?;
    ensure!(
        o.contains("rc=134"),
        "the apply did not crash at {point}:\n{o}"
    );
    let out = g.cairn(&["apply", LAB_TOML])?;
    ensure!(out.contains("applied:"), "{out}");
    let o = g.output(&[CAIRN, "apply", LAB_TOML])?;
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(
        !err.contains("interrupted"),
        "the journal was not closed: {err}"
    );
    stack::lvm2_agrees(g)?;
    stack::seed_structure(g)?;
    stack::drbd_primary(g)?;
    ensure!(
        stack::container_state(g, "my-container")? == "RUNNING",
        "after {point}"
    );
    ensure!(
        String::from_utf8_lossy(&o.stdout).contains("nothing to do"),
        "after {point}"
    );
    Ok(())
}

fn crash_at_several_steps_then_apply_finishes(g: &Guest) -> TestResult {
    // 6: cache attach; 12: r0 up; 17: r0-U primary; 21: thin create
    // (and inside it, after the metadata commit); 22: mkfs; 23: rootfs.
    for point in [
        "apply-step-6",
        "apply-step-12",
        "apply-step-17",
        "thin-after-commit-a",
        "apply-step-22",
        "apply-step-23",
    ] {
        crash_at(g, point).map_err(|e| format!("{point}: {e}"))?;
    }
    Ok(())
}

/// A pool with no thin LV is active under its own name (as lvm2 does
/// it); apply, plan and status see it so.
fn a_pool_without_volumes_is_up_after_apply(g: &Guest) -> TestResult {
    reset(g)?;
    let lab = std::fs::read_to_string(LAB_TOML).map_err(|e| e.to_string())?;
    // A small pool, so that a little data takes it past its threshold.
    let bare = lab
        .split("[[container]]")
        .next()
        .unwrap_or(&lab)
        .replace("size = \"1G\"", "size = \"64M\"");
    std::fs::write("/tmp/bare.toml", bare).map_err(|e| e.to_string())?;
    g.cairn(&["apply", "/tmp/bare.toml"])?;
    let plan = g.cairn(&["plan", "/tmp/bare.toml"])?;
    ensure!(plan.contains("nothing to do"), "plan after apply:\n{plan}");
    let status = g.cairn(&["status", "/tmp/bare.toml"])?;
    ensure!(
        status.contains("thin pool VPSthinpool 64.00m (metadata 16.00m) active: data 0.00%")
            && !status.contains("WARNING"),
        "{status}"
    );
    // 40 MiB written into a volume of the 64 MiB pool: past 50%, warned.
    g.cairn(&[
        "lv",
        "create",
        "DRBDVG2",
        "-n",
        "fill",
        "-V",
        "60M",
        "-T",
        "VPSthinpool",
    ])?;
    g.sh("dd if=/dev/urandom of=/dev/DRBDVG2/fill bs=1M count=40 oflag=direct status=none")?;
    let status = g.cairn(&["status", "/tmp/bare.toml"])?;
    ensure!(
        status.contains("WARNING: past the threshold")
            && status.contains(
                "WARNING: thin pool DRBDVG2/VPSthinpool is past its auto-extend threshold of 50%"
            ),
        "{status}"
    );
    let json = g.cairn(&["--json", "status", "/tmp/bare.toml"])?;
    let v: serde_json::Value = serde_json::from_str(&json).map_err(|e| e.to_string())?;
    ensure!(
        v["layers"][4]["thinpools"][0]["over_threshold"] == true,
        "{json}"
    );
    g.cairn(&["down", "/tmp/bare.toml"])?;
    let out = g.cairn(&["up", "/tmp/bare.toml"])?;
    ensure!(out.contains("activate DRBDVG2: VPSthinpool"), "{out}");
    Ok(())
}

fn main() {
    lab::main(Group {
        name: "vm_stack",
        nodes: 1,
        mem_mib: 2048,
        timeout: Duration::from_secs(1200),
        tests: vec![
            VmTest {
                name: "apply_builds_the_seed_stack",
                run: apply_builds_the_seed_stack,
            },
            VmTest {
                name: "second_apply_does_nothing",
                run: second_apply_does_nothing,
            },
            VmTest {
                name: "status_shows_every_layer",
                run: status_shows_every_layer,
            },
            VmTest {
                name: "drift_made_with_lvm2_is_reported",
                run: drift_made_with_lvm2_is_reported,
            },
            VmTest {
                name: "containers_on_the_command_line",
                run: containers_on_the_command_line,
            },
            VmTest {
                name: "a_program_embeds_cairn",
                run: a_program_embeds_cairn,
            },
            VmTest {
                name: "down_and_up_keep_the_data",
                run: down_and_up_keep_the_data,
            },
            VmTest {
                name: "up_resumes_suspended_devices_and_removes_only_its_own",
                run: up_resumes_suspended_devices_and_removes_only_its_own,
            },
            VmTest {
                name: "bad_files_change_nothing",
                run: bad_files_change_nothing,
            },
            VmTest {
                name: "crash_at_several_steps_then_apply_finishes",
                run: crash_at_several_steps_then_apply_finishes,
            },
            VmTest {
                name: "a_pool_without_volumes_is_up_after_apply",
                run: a_pool_without_volumes_is_up_after_apply,
            },
        ],
        stream_log: false,
        boots: 1,
        disks: &[],
    });
}
