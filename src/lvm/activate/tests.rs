//! The planner against lvm2's own activation of a VG with every LV type
//! (tests/fixtures/activation, captured in the lab by capture.sh there).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::*;
use crate::dm::table::{DevRef, TableLine};

use crate::lvm::fixture::DIR;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{DIR}{name}")).unwrap()
}

fn vg() -> VolumeGroup {
    crate::lvm::fixture::every_kind()
}

/// Where lvm2 last saw each PV (the backup's `device` hints: the loops).
fn pv_devices(vg: &VolumeGroup) -> Vec<Option<PathBuf>> {
    vg.pvs
        .iter()
        .map(|p| p.device.as_ref().map(PathBuf::from))
        .collect()
}

/// `dmsetup info -c -o name,uuid,attr,major,minor` rows by name.
struct Info {
    uuid: String,
    read_only: bool,
    devno: (u32, u32),
}

fn info() -> BTreeMap<String, Info> {
    fixture("info.txt")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (
                f[0].to_owned(),
                Info {
                    uuid: f[1].to_owned(),
                    read_only: f[2].ends_with('r'),
                    devno: (f[3].parse().unwrap(), f[4].parse().unwrap()),
                },
            )
        })
        .collect()
}

/// Replaces paths with the numbers the kernel prints.
fn resolve(line: &TableLine, info: &BTreeMap<String, Info>) -> String {
    let loops: BTreeMap<String, String> = fixture("loops.txt")
        .lines()
        .map(|l| {
            let mut w = l.split_whitespace();
            (w.next().unwrap().to_owned(), w.next().unwrap().to_owned())
        })
        .collect();
    let mut target = line.target.clone();
    for d in target.devices_mut() {
        if let DevRef::Path(p) = d {
            *d = match p.strip_prefix("/dev/mapper/") {
                Some(name) => {
                    let (a, b) = info[name].devno;
                    DevRef::Number(a, b)
                }
                None => loops[p.as_str()].parse().unwrap(),
            };
        }
    }
    TableLine {
        start: line.start,
        length: line.length,
        target,
    }
    .to_string()
}

#[test]
fn vg_activation_is_lvm2s_device_for_device() {
    let vg = vg();
    let devices = pv_devices(&vg);
    let plan = Planner::new(&vg, &devices).vg(false).unwrap();
    let info = info();

    // The same devices, with the same uuids and read-only flags...
    let planned: Vec<&str> = plan.devices.iter().map(|d| d.name.as_str()).collect();
    let mut sorted = planned.clone();
    sorted.sort();
    assert_eq!(sorted, info.keys().map(String::as_str).collect::<Vec<_>>());
    for d in &plan.devices {
        assert_eq!(d.uuid, info[&d.name].uuid, "{}", d.name);
        assert_eq!(d.read_only, info[&d.name].read_only, "{}", d.name);
    }
    // ... created in lvm2's order (the kernel hands out minors in order) ...
    let mut by_minor: Vec<(&u32, &str)> =
        info.iter().map(|(n, i)| (&i.devno.1, n.as_str())).collect();
    by_minor.sort();
    let lvm2_order: Vec<&str> = by_minor.into_iter().map(|(_, n)| n).collect();
    assert_eq!(planned, lvm2_order);

    // ... with the tables lvm2 loaded, as the kernel prints them back.
    let mut tables: Vec<String> = plan
        .devices
        .iter()
        .flat_map(|d| {
            d.table
                .iter()
                .map(|l| format!("{}: {}", d.name, resolve(l, &info)))
                .collect::<Vec<_>>()
        })
        .collect();
    tables.sort();
    let mut lvm2: Vec<String> = fixture("table.txt")
        .lines()
        .map(|l| l.trim_end().to_owned())
        .collect();
    lvm2.sort();
    assert_eq!(tables, lvm2);

    // /dev/vg links exactly where lvm2 made them.
    let links: Vec<String> = plan.devices.iter().filter_map(|d| d.link.clone()).collect();
    let lvm2_links: Vec<String> = fixture("nodes.txt")
        .lines()
        .filter(|l| l.starts_with("vg/"))
        .map(|l| format!("/dev/{}", l.split_whitespace().next().unwrap()))
        .collect();
    let mut sorted_links = links.clone();
    sorted_links.sort();
    assert_eq!(sorted_links, lvm2_links);
}

#[test]
fn skipped_thin_snapshot_activates_with_ignore_skip_only() {
    let vg = vg();
    let devices = pv_devices(&vg);
    let planner = Planner::new(&vg, &devices);
    assert!(planner.vg(false).unwrap().device("vg-thinsnap").is_none());
    let with = planner.vg(true).unwrap();
    let snap = with.device("vg-thinsnap").unwrap();
    let info = info();
    // thinsnap.txt is `dmsetup table vg-thinsnap` after lvchange -ay -K.
    assert_eq!(
        resolve(&snap.table[0], &info),
        fixture("thinsnap.txt").trim_end()
    );
    // One LV alone: its pool's thin-pool device, not the pool LV's layer.
    let one = planner.lv("thin").unwrap();
    let names: Vec<&str> = one.devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        ["vg-pool_tmeta", "vg-pool_tdata", "vg-pool-tpool", "vg-thin"]
    );
}

#[test]
fn bad_requests_name_the_lv_and_what_to_do() {
    let vg = vg();
    let mut devices = pv_devices(&vg);
    let planner = Planner::new(&vg, &devices);
    let e = planner.lv("nope").unwrap_err();
    assert_eq!(e.to_string(), "VG vg has no LV named nope");
    let e = planner.lv("pool_tdata").unwrap_err();
    assert!(e.to_string().contains("hidden part of another LV"), "{e}");
    devices[1] = None;
    let planner = Planner::new(&vg, &devices);
    assert!(planner.lv("lin").is_ok(), "lin lives on the first PV only");
    let e = planner.lv("two").unwrap_err();
    assert!(
        e.to_string().starts_with("LV vg/two needs PV ") && e.to_string().contains("--devices"),
        "{e}"
    );
}
