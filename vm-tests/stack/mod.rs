//! The lab's stack (examples/lab.toml) on md RAID1s: set-up shared by the
//! stack tests, the reboot test and the demo.
#![allow(dead_code)]

use crate::ensure;
use crate::lab::Guest;

/// The example the tests and the demo apply.
pub const LAB_TOML: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/lab.toml");

/// The "HDD" (two 3 GiB members) and "SSD" (two 600 MiB members) RAID1s.
pub const HDD_MIB: u64 = 3072;
pub const SSD_MIB: u64 = 600;

/// md RAID1 /dev/md0 over `hdd` and /dev/md1 over `ssd` (member devices),
/// made without a resync (`--assume-clean`: the members are all zeros).
pub fn make_raids(g: &Guest, hdd: [&str; 2], ssd: [&str; 2]) -> Result<(), String> {
    g.require("mdadm", "mdadm")?;
    for (md, [a, b]) in [("/dev/md0", hdd), ("/dev/md1", ssd)] {
        g.sh(&format!(
            "mdadm --create {md} --run --quiet --level=1 --raid-devices=2 --assume-clean \
             --metadata=1.2 {a} {b}"
        ))?;
    }
    Ok(())
}

/// The two RAIDs on four fresh loop devices over image files in `dir`.
pub fn loop_raids(g: &Guest, dir: &str) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut devs = Vec::new();
    for (name, mib) in [
        ("h1", HDD_MIB),
        ("h2", HDD_MIB),
        ("s1", SSD_MIB),
        ("s2", SSD_MIB),
    ] {
        let f = format!("{dir}/{name}.img");
        g.sh(&format!("truncate -s {mib}M {f}"))?;
        devs.push(g.sh(&format!("losetup -f --show {f}"))?.trim().to_owned());
    }
    make_raids(g, [&devs[0], &devs[1]], [&devs[2], &devs[3]])
}

/// Assembles the RAIDs again (after a reboot), as the OS does before cairn-up.service.
pub fn assemble_raids(g: &Guest, hdd: [&str; 2], ssd: [&str; 2]) -> Result<(), String> {
    for (md, [a, b]) in [("/dev/md0", hdd), ("/dev/md1", ssd)] {
        g.sh(&format!("mdadm --assemble --run --quiet {md} {a} {b}"))?;
    }
    Ok(())
}

/// LXC without lxc-net and AppArmor (the lab has neither), and lvm2 (the
/// oracle) configured with the filter `cairn lvm-filter` prints, so that it
/// sees the stack's PVs once each.
pub fn configure_host(g: &Guest, stack_file: &str) -> Result<(), String> {
    g.require("lxc-start", "lxc")?;
    g.require("mkfs.ext4", "e2fsprogs")?;
    std::fs::write(
        "/etc/lxc/default.conf",
        "lxc.net.0.type = empty\nlxc.apparmor.profile = unconfined\n",
    )
    .map_err(|e| format!("cannot write /etc/lxc/default.conf: {e}"))?;
    let filter = g.cairn(&["lvm-filter", stack_file])?;
    let mut conf = std::fs::read_to_string("/etc/lvm/lvmlocal.conf").unwrap_or_default();
    conf.push_str(&filter);
    std::fs::write("/etc/lvm/lvmlocal.conf", conf)
        .map_err(|e| format!("cannot write /etc/lvm/lvmlocal.conf: {e}"))?;
    Ok(())
}

/// lvm2's checks of the three VGs: `vgck` clean, and no duplicate-PV
/// warning anywhere (the filter works).
pub fn lvm2_agrees(g: &Guest) -> Result<(), String> {
    for vg in ["VG1", "DRBDVG", "DRBDVG2"] {
        let out = g.sh(&format!("vgck {vg} 2>&1"))?;
        ensure!(
            !out.contains("WARNING") && !out.contains("duplicate"),
            "vgck {vg} warns:\n{out}"
        );
    }
    Ok(())
}

/// `lvs -a` as JSON rows (vg, lv, attr, segtype, pool, origin, size in MiB).
pub fn lvs(g: &Guest) -> Result<Vec<serde_json::Value>, String> {
    let out = g.sh("lvs -a --reportformat json --units m --nosuffix \
         -o vg_name,lv_name,lv_attr,segtype,pool_lv,origin,lv_size,data_percent 2>/dev/null")?;
    let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| format!("lvs json: {e}"))?;
    Ok(v["report"][0]["lv"].as_array().cloned().unwrap_or_default())
}

pub fn lv<'a>(
    rows: &'a [serde_json::Value],
    vg: &str,
    lv: &str,
) -> Result<&'a serde_json::Value, String> {
    rows.iter()
        .find(|r| r["vg_name"] == vg && r["lv_name"] == lv)
        .ok_or_else(|| format!("lvs has no {vg}/{lv}: {rows:?}"))
}

/// The seed's structure, as lvm2 reports it.
pub fn seed_structure(g: &Guest) -> Result<(), String> {
    let rows = lvs(g)?;
    let cached = lv(&rows, "VG1", "cachedlv")?;
    ensure!(cached["segtype"] == "cache", "cachedlv: {cached}");
    ensure!(
        cached["pool_lv"] == "[cachedata_cpool]",
        "cachedlv pool: {cached}"
    );
    ensure!(
        cached["origin"] == "[cachedlv_corig]",
        "cachedlv origin: {cached}"
    );
    let drbdlv = lv(&rows, "DRBDVG", "DRBDLV1")?;
    ensure!(drbdlv["segtype"] == "linear", "DRBDLV1: {drbdlv}");
    ensure!(
        drbdlv["lv_attr"]
            .as_str()
            .unwrap_or("")
            .starts_with("-wi-ao"),
        "DRBDLV1 open: {drbdlv}"
    );
    let pool = lv(&rows, "DRBDVG2", "VPSthinpool")?;
    ensure!(pool["segtype"] == "thin-pool", "pool: {pool}");
    let c = lv(&rows, "DRBDVG2", "my-container")?;
    ensure!(
        c["segtype"] == "thin" && c["pool_lv"] == "VPSthinpool",
        "container volume: {c}"
    );
    Ok(())
}

/// /proc/drbd: r0 Primary UpToDate, r0-U Primary UpToDate over protocol A.
pub fn drbd_primary(g: &Guest) -> Result<(), String> {
    let p = g.sh("cat /proc/drbd")?;
    ensure!(
        p.contains(" 0: cs:StandAlone ro:Primary/Unknown ds:UpToDate/DUnknown"),
        "r0 in /proc/drbd:\n{p}"
    );
    ensure!(
        p.contains("10: cs:WFConnection ro:Primary/Unknown ds:UpToDate/DUnknown A "),
        "r0-U in /proc/drbd:\n{p}"
    );
    Ok(())
}

pub fn container_state(g: &Guest, name: &str) -> Result<String, String> {
    Ok(g.sh(&format!(
        "lxc-info -n {name} -s -H 2>/dev/null || lxc-info -n {name} -s"
    ))?
    .trim()
    .trim_start_matches("State:")
    .trim()
    .to_owned())
}

/// Writes `text` into a running container's /root/data and returns its checksum.
pub fn write_in(g: &Guest, name: &str, text: &str) -> Result<String, String> {
    g.sh(&format!(
        "lxc-attach -n {name} -- /bin/sh -c 'echo {text} > /root/data; sync'"
    ))?;
    read_in(g, name)
}

pub fn read_in(g: &Guest, name: &str) -> Result<String, String> {
    Ok(g.sh(&format!(
        "lxc-attach -n {name} -- /bin/sh -c 'cat /root/data | md5sum'"
    ))?
    .trim()
    .to_owned())
}
