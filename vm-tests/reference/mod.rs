//! The reference scenario: the procedure of shared/seed-testcase3.txt run
//! with lvm2 + drbdadm + lxc on loop devices ("HDD" 2 GiB, "SSD" 512 MiB).
//! It is the oracle for what cairn must build and the baseline its speed is
//! measured against: the test runs every step with its check, the bench
//! times every step's command.

#![allow(dead_code)] // shared by the test and the bench, which use different parts

use std::time::Duration;

use serde_json::Value;

use crate::ensure;

use super::lab::guest::LoopDisk;
use super::lab::{Guest, TestResult};

pub const HDD_MIB: u64 = 2048;
pub const SSD_MIB: u64 = 512;
pub const CONTAINER: &str = "my-container";

/// One step of the procedure: the seed's command, then what must hold.
pub struct Step {
    pub name: &'static str,
    pub command: String,
    /// An error the seed documents for this command (its text), which the
    /// procedure ignores: the check decides whether the step worked.
    pub known_error: Option<&'static str>,
    pub check: fn(&Guest, &Disks) -> TestResult,
}

pub struct Disks {
    pub hdd: LoopDisk,
    pub ssd: LoopDisk,
}

/// How a step's command went.
pub enum Ran {
    Ok,
    /// Failed with the error the seed documents (the check decides).
    KnownError,
}

impl Step {
    /// Runs the step's command (not its check).
    pub fn run(&self, g: &Guest) -> Result<Ran, String> {
        match (g.sh(&self.command), self.known_error) {
            (Ok(_), _) => Ok(Ran::Ok),
            (Err(e), Some(known)) if e.contains(known) => Ok(Ran::KnownError),
            (Err(e), _) => Err(format!("step {}: {e}", self.name)),
        }
    }
}

fn no_check(_: &Guest, _: &Disks) -> TestResult {
    Ok(())
}

/// The seed's lvm.conf additions: lvm2 >= 2.03 ignores PVs on LVs unless
/// scan_lvs is set, and the filter keeps lvm2 off the lower copies of the
/// stacked PVs (the cache origin, DRBD's backing LV, /dev/drbd0).
const LVM_SEED_DEVICES: &str = r#"    scan_lvs = 1
    filter = [ "r|/dev/mapper/VG1-cachedlv_corig|", "r|/dev/mapper/DRBDVG-DRBDLV1|", "r|/dev/drbd0|" ]"#;

const LVM_SEED_ACTIVATION: &str = r#"    thin_pool_autoextend_threshold = 50
    thin_pool_autoextend_percent = 10"#;

/// Loop disks, lvm.conf, the DRBD resource file and the container's
/// template need, as the seed's sections 3.1-3.4 set them up.
pub fn prepare(g: &Guest) -> Result<Disks, String> {
    g.require("lvm", "lvm2")?;
    g.require("drbdadm", "drbd-utils")?;
    g.require("lxc-start", "lxc")?;
    g.require("thin_check", "thin-provisioning-tools")?;
    g.require("mkfs.ext4", "e2fsprogs")?;
    let disks = Disks {
        hdd: g.loop_disk("hdd", HDD_MIB)?,
        ssd: g.loop_disk("ssd", SSD_MIB)?,
    };
    g.sh(&format!(
        "cd /etc/lvm && grep -q scan_lvs lvmlocal.conf || {{ \
           awk -v dev='{}' -v act='{}' '{{print}} /^devices \\{{/{{print dev}} /^activation \\{{/{{print act}}' \
             lvmlocal.conf > l.new && mv l.new lvmlocal.conf; }}; lvmconfig devices/scan_lvs devices/filter",
        LVM_SEED_DEVICES, LVM_SEED_ACTIVATION
    ))?;
    // The lab runs neither lxc-net (no lxcbr0 bridge) nor AppArmor: the
    // containers get no network and no LSM profile.
    std::fs::write(
        "/etc/lxc/default.conf",
        "lxc.net.0.type = empty\nlxc.apparmor.profile = unconfined\n",
    )
    .map_err(|e| format!("cannot write /etc/lxc/default.conf: {e}"))?;
    std::fs::write("/etc/drbd.d/r0.res", drbd_resources(g.hostname()))
        .map_err(|e| format!("cannot write /etc/drbd.d/r0.res: {e}"))?;
    Ok(disks)
}

/// The seed's r0.res, with this host's name in the `on` section.
pub fn drbd_resources(hostname: &str) -> String {
    format!(
        r#"resource r0 {{
  on {hostname} {{
    device /dev/drbd0;
    disk /dev/mapper/DRBDVG-DRBDLV1;
    address 127.0.0.1:7789;
    meta-disk internal;
  }}
}}

resource r0-U {{
  net {{
    protocol A;
  }}

  stacked-on-top-of r0 {{
    device /dev/drbd10;
    address 127.0.0.1:7791;
  }}

  on offsite {{
    device /dev/drbd10;
    disk /dev/bulldisk;
    address 127.0.0.1:7794;
    meta-disk internal;
  }}
}}
"#
    )
}

pub fn steps(d: &Disks) -> Vec<Step> {
    let (hdd, ssd) = (&d.hdd.dev, &d.ssd.dev);
    let step = |name, command: String, check| Step {
        name,
        command,
        known_error: None,
        check,
    };
    vec![
        // 3.3: VG1 on the HDD with cachedlv, then the cache pool on the SSD.
        step("pvcreate_hdd", format!("pvcreate {hdd}"), check_pv_hdd),
        step("vgcreate_vg1", format!("vgcreate VG1 {hdd}"), no_check),
        step("lvcreate_cachedlv", format!("lvcreate -L 1536M -n cachedlv VG1 {hdd}"), check_cachedlv),
        step("pvcreate_ssd", format!("pvcreate {ssd}"), no_check),
        step("vgextend_vg1", format!("vgextend VG1 {ssd}"), check_vg1_two_pvs),
        step("lvcreate_cachemeta", format!("lvcreate -L 8M -n cachemeta VG1 {ssd}"), no_check),
        step("lvcreate_cachedata", format!("lvcreate -L 400M -n cachedata VG1 {ssd}"), check_cache_lvs_on_ssd),
        step(
            "lvconvert_cache_pool",
            "lvconvert -y --type cache-pool --cachemode writethrough --poolmetadata VG1/cachemeta VG1/cachedata".into(),
            check_cache_pool,
        ),
        step("lvconvert_cache", "lvconvert -y --type cache --cachepool VG1/cachedata VG1/cachedlv".into(), check_cached),
        // 3.4: DRBDVG on the cached LV, DRBDLV1, r0 and the stacked r0-U.
        step("pvcreate_cachedlv", "pvcreate /dev/VG1/cachedlv".into(), no_check),
        step("vgcreate_drbdvg", "vgcreate DRBDVG /dev/VG1/cachedlv".into(), check_drbdvg),
        step("lvcreate_drbdlv1", "lvcreate -L 1200M -n DRBDLV1 DRBDVG".into(), no_check),
        step("drbdadm_create_md_r0", "drbdadm create-md r0".into(), no_check),
        // "IGNORE FOLLOWING ERROR" (seed 3.4): drbdadm wants a peer section
        // for r0 and fails after attaching; r0 works as a local device.
        Step {
            name: "drbdadm_up_r0",
            command: "drbdadm up r0".into(),
            known_error: Some("Missing section 'on <PEER> { ... }'"),
            check: check_r0_up,
        },
        step("drbdadm_primary_r0", "drbdadm primary --force r0".into(), check_r0_primary),
        step("drbdadm_create_md_r0u", "drbdadm create-md --stacked r0-U".into(), no_check),
        step("drbdadm_up_r0u", "drbdadm up --stacked r0-U".into(), no_check),
        step("drbdadm_primary_r0u", "drbdadm primary --force --stacked r0-U".into(), check_r0u_primary),
        // 3.5: DRBDVG2 on /dev/drbd10 and the VPS thin pool (the seed's sizes).
        step("pvcreate_drbd10", "pvcreate /dev/drbd10".into(), no_check),
        step("vgcreate_drbdvg2", "vgcreate DRBDVG2 /dev/drbd10".into(), check_drbdvg2),
        step("lvcreate_pool_data", "lvcreate -n VPSthinpool -L 125 DRBDVG2".into(), no_check),
        step("lvcreate_pool_meta", "lvcreate -n VPSthinpool_meta -L 13 DRBDVG2".into(), no_check),
        step(
            "lvconvert_thin_pool",
            "lvconvert -y --type thin-pool --poolmetadata DRBDVG2/VPSthinpool_meta DRBDVG2/VPSthinpool".into(),
            check_thin_pool,
        ),
        // 3.6: a container on a thin volume (busybox template: no internet).
        step(
            "lxc_create_lvm_thin",
            format!(
                "lxc-create -n {CONTAINER} -t busybox -B lvm --vgname DRBDVG2 --thinpool VPSthinpool --fssize 500M"
            ),
            check_container_volume,
        ),
        step(
            "lxc_start",
            format!("lxc-start -n {CONTAINER} -l INFO -o /tmp/lxc-start.log || {{ cat /tmp/lxc-start.log >&2; false; }}"),
            check_container_running,
        ),
        // 4.1: both kinds of snapshot.
        step("lvcreate_thin_snapshot", format!("lvcreate -s -n {CONTAINER}_thinsnap DRBDVG2/{CONTAINER}"), check_thin_snapshot),
        step("lvcreate_stack_snapshot", "lvcreate -L 200M -s -n DRBDLV1_snap1 /dev/DRBDVG/DRBDLV1".into(), check_stack_snapshot),
        step("lvs_all", "lvs -a".into(), no_check),
        step("lxc_stop", format!("lxc-stop -n {CONTAINER}"), check_container_stopped),
    ]
}

/// The seed's startup script (3.7) undone: everything down in reverse order.
pub const TEARDOWN: &str = "lxc-stop -n my-container -k 2>/dev/null || true
lxc-destroy -n my-container -f 2>/dev/null || true
vgchange -an DRBDVG2 || true
drbdadm down --stacked r0-U || true
drbdadm down r0 || true
vgchange -an DRBDVG || true
vgchange -an VG1 || true
dmsetup remove_all || true";

pub fn teardown(g: &Guest) -> TestResult {
    g.sh(TEARDOWN)?;
    Ok(())
}

// ---- checks -------------------------------------------------------------

/// One lvm2 JSON report (`lvs`, `vgs`, `pvs`) as rows of field -> value.
pub fn report(g: &Guest, command: &str, fields: &str, select: &str) -> Result<Vec<Value>, String> {
    let out = g.sh(&format!(
        "{command} --reportformat json --units b --nosuffix -o {fields} {select}"
    ))?;
    let v: Value = serde_json::from_str(&out)
        .map_err(|e| format!("{command} printed bad JSON ({e}): {out}"))?;
    let key = command
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_end_matches('s')
        .to_owned();
    Ok(v["report"][0][key].as_array().cloned().unwrap_or_default())
}

fn lv(g: &Guest, vg: &str, name: &str, fields: &str) -> Result<Value, String> {
    report(g, "lvs -a", &format!("lv_name,{fields}"), vg)?
        .into_iter()
        .find(|r| {
            r["lv_name"]
                .as_str()
                .map(|n| n.trim_matches(|c| c == '[' || c == ']'))
                == Some(name)
        })
        .ok_or_else(|| format!("lvs shows no {vg}/{name}"))
}

fn field<'a>(row: &'a Value, name: &str) -> &'a str {
    row[name].as_str().unwrap_or_default()
}

fn mib(row: &Value, name: &str) -> u64 {
    field(row, name).parse::<u64>().unwrap_or(0) >> 20
}

fn check_pv_hdd(g: &Guest, d: &Disks) -> TestResult {
    let pvs = report(g, "pvs", "pv_name,vg_name", "")?;
    ensure!(
        pvs.iter().any(|p| field(p, "pv_name") == d.hdd.dev),
        "pvs does not list {}: {pvs:?}",
        d.hdd.dev
    );
    Ok(())
}

fn check_cachedlv(g: &Guest, _: &Disks) -> TestResult {
    let row = lv(g, "VG1", "cachedlv", "lv_size,lv_attr")?;
    ensure!(mib(&row, "lv_size") == 1536, "cachedlv size {row}");
    ensure!(
        field(&row, "lv_attr").starts_with("-wi-a"),
        "cachedlv attr {row}"
    );
    Ok(())
}

fn check_vg1_two_pvs(g: &Guest, _: &Disks) -> TestResult {
    let vg = report(g, "vgs", "vg_name,pv_count", "VG1")?;
    ensure!(
        vg.first().map(|v| field(v, "pv_count")) == Some("2"),
        "VG1: {vg:?}"
    );
    Ok(())
}

fn check_cache_lvs_on_ssd(g: &Guest, d: &Disks) -> TestResult {
    for name in ["cachemeta", "cachedata"] {
        let row = lv(g, "VG1", name, "devices")?;
        ensure!(
            field(&row, "devices").starts_with(&d.ssd.dev),
            "{name} is not on the SSD only: {row}"
        );
    }
    Ok(())
}

fn check_cache_pool(g: &Guest, _: &Disks) -> TestResult {
    let row = lv(g, "VG1", "cachedata", "segtype,lv_attr,cache_mode")?;
    ensure!(field(&row, "segtype") == "cache-pool", "cachedata: {row}");
    ensure!(
        field(&row, "lv_attr").starts_with('C'),
        "cachedata attr: {row}"
    );
    ensure!(
        field(&row, "cache_mode") == "writethrough",
        "cache mode: {row}"
    );
    Ok(())
}

fn check_cached(g: &Guest, _: &Disks) -> TestResult {
    let row = lv(g, "VG1", "cachedlv", "segtype,pool_lv,cache_mode,lv_attr")?;
    ensure!(field(&row, "segtype") == "cache", "cachedlv: {row}");
    // lvm2 2.03 renames the attached cache pool to <pool>_cpool (hidden).
    ensure!(
        field(&row, "pool_lv") == "[cachedata_cpool]",
        "cachedlv pool: {row}"
    );
    ensure!(
        field(&row, "cache_mode") == "writethrough",
        "cachedlv mode: {row}"
    );
    ensure!(
        field(&row, "lv_attr").starts_with("Cwi-a-C"),
        "cachedlv attr: {row}"
    );
    for hidden in [
        "cachedata_cpool",
        "cachedata_cpool_cdata",
        "cachedata_cpool_cmeta",
        "cachedlv_corig",
        "lvol0_pmspare",
    ] {
        lv(g, "VG1", hidden, "lv_attr")?;
    }
    let table = g.run(&["dmsetup", "table", "VG1-cachedlv"])?;
    ensure!(
        table.contains(" cache ") && table.contains("writethrough"),
        "VG1-cachedlv table: {table}"
    );
    Ok(())
}

fn check_drbdvg(g: &Guest, _: &Disks) -> TestResult {
    let pvs = report(g, "pvs", "pv_name,vg_name", "")?;
    ensure!(
        pvs.iter()
            .any(|p| field(p, "vg_name") == "DRBDVG" && field(p, "pv_name").contains("cachedlv")),
        "DRBDVG is not on the cached LV: {pvs:?}"
    );
    Ok(())
}

fn proc_drbd(g: &Guest) -> Result<cairn::drbd::procfs::ProcDrbd, String> {
    let text = g.run(&["cat", "/proc/drbd"])?;
    cairn::drbd::procfs::parse(&text).map_err(|e| e.to_string())
}

fn check_minor(
    g: &Guest,
    minor: u32,
    connection: &str,
    role: &str,
    disk: &str,
    protocol: Option<char>,
) -> TestResult {
    let p = proc_drbd(g)?;
    let m = p
        .minors
        .iter()
        .find(|m| m.minor == minor)
        .ok_or(format!("/proc/drbd has no minor {minor}"))?;
    ensure!(
        m.connection == connection,
        "drbd{minor}: cs {} != {connection}",
        m.connection
    );
    ensure!(
        m.role.as_deref() == Some(role),
        "drbd{minor}: ro {:?} != {role}",
        m.role
    );
    ensure!(
        m.disk.as_deref() == Some(disk),
        "drbd{minor}: ds {:?} != {disk}",
        m.disk
    );
    ensure!(
        m.protocol == protocol,
        "drbd{minor}: protocol {:?} != {protocol:?}",
        m.protocol
    );
    Ok(())
}

fn check_r0_up(g: &Guest, _: &Disks) -> TestResult {
    let p = proc_drbd(g)?;
    ensure!(
        p.version.starts_with("8.4."),
        "DRBD module {} is not 8.4",
        p.version
    );
    check_minor(g, 0, "StandAlone", "Secondary", "Inconsistent", None)
}

fn check_r0_primary(g: &Guest, _: &Disks) -> TestResult {
    check_minor(g, 0, "StandAlone", "Primary", "UpToDate", None)
}

fn check_r0u_primary(g: &Guest, _: &Disks) -> TestResult {
    check_minor(g, 0, "StandAlone", "Primary", "UpToDate", None)?;
    check_minor(g, 10, "WFConnection", "Primary", "UpToDate", Some('A'))?;
    let status = g.run(&["drbdsetup", "status", "r0-U"])?;
    ensure!(
        status.contains("role:Primary"),
        "drbdsetup status r0-U: {status}"
    );
    Ok(())
}

fn check_drbdvg2(g: &Guest, _: &Disks) -> TestResult {
    let pvs = report(g, "pvs", "pv_name,vg_name", "")?;
    ensure!(
        pvs.iter()
            .any(|p| field(p, "vg_name") == "DRBDVG2" && field(p, "pv_name") == "/dev/drbd10"),
        "DRBDVG2 is not on /dev/drbd10: {pvs:?}"
    );
    Ok(())
}

fn check_thin_pool(g: &Guest, _: &Disks) -> TestResult {
    let pool = lv(
        g,
        "DRBDVG2",
        "VPSthinpool",
        "segtype,lv_size,lv_metadata_size",
    )?;
    ensure!(
        field(&pool, "segtype") == "thin-pool",
        "VPSthinpool: {pool}"
    );
    ensure!(
        mib(&pool, "lv_size") == 128,
        "pool data rounded to 128 MiB as in the seed: {pool}"
    );
    ensure!(
        mib(&pool, "lv_metadata_size") == 16,
        "pool metadata rounded to 16 MiB: {pool}"
    );
    for hidden in ["VPSthinpool_tdata", "VPSthinpool_tmeta", "lvol0_pmspare"] {
        lv(g, "DRBDVG2", hidden, "lv_attr")?;
    }
    Ok(())
}

fn check_container_volume(g: &Guest, _: &Disks) -> TestResult {
    let row = lv(g, "DRBDVG2", CONTAINER, "segtype,pool_lv,lv_size")?;
    ensure!(field(&row, "segtype") == "thin", "{CONTAINER}: {row}");
    ensure!(
        field(&row, "pool_lv") == "VPSthinpool",
        "{CONTAINER} pool: {row}"
    );
    ensure!(mib(&row, "lv_size") == 500, "{CONTAINER} size: {row}");
    let fstype = g.run(&[
        "blkid",
        "-o",
        "value",
        "-s",
        "TYPE",
        &format!("/dev/DRBDVG2/{CONTAINER}"),
    ])?;
    ensure!(
        fstype.trim() == "ext4",
        "{CONTAINER} holds {fstype:?}, not ext4"
    );
    let rootfs = g.sh(&format!(
        "grep '^lxc.rootfs.path' /var/lib/lxc/{CONTAINER}/config"
    ))?;
    ensure!(
        rootfs.contains(&format!("/dev/DRBDVG2/{CONTAINER}")),
        "rootfs: {rootfs}"
    );
    Ok(())
}

fn check_container_running(g: &Guest, _: &Disks) -> TestResult {
    g.wait_for("the container to run", Duration::from_secs(60), || {
        Ok(g.run(&["lxc-info", "-n", CONTAINER, "-s"])?
            .contains("RUNNING"))
    })?;
    let inside = g.run(&[
        "lxc-attach",
        "-n",
        CONTAINER,
        "--",
        "/bin/sh",
        "-c",
        "echo hello > /root/mark; cat /root/mark; mount",
    ])?;
    ensure!(inside.starts_with("hello"), "lxc-attach output: {inside}");
    Ok(())
}

fn check_thin_snapshot(g: &Guest, _: &Disks) -> TestResult {
    let row = lv(
        g,
        "DRBDVG2",
        &format!("{CONTAINER}_thinsnap"),
        "segtype,origin,pool_lv",
    )?;
    ensure!(
        field(&row, "segtype") == "thin" && field(&row, "origin") == CONTAINER,
        "thin snapshot: {row}"
    );
    Ok(())
}

fn check_stack_snapshot(g: &Guest, _: &Disks) -> TestResult {
    let row = lv(g, "DRBDVG", "DRBDLV1_snap1", "segtype,origin,lv_attr")?;
    ensure!(field(&row, "origin") == "DRBDLV1", "stack snapshot: {row}");
    ensure!(
        field(&row, "lv_attr").starts_with("swi-a-s"),
        "stack snapshot attr: {row}"
    );
    Ok(())
}

fn check_container_stopped(g: &Guest, _: &Disks) -> TestResult {
    let state = g.run(&["lxc-info", "-n", CONTAINER, "-s"])?;
    ensure!(state.contains("STOPPED"), "after lxc-stop: {state}");
    Ok(())
}
