//! The reports against lvm2 2.03.16's own JSON for the same VGs
//! (tests/fixtures/lvm2, captured in a lab VM with every VG inactive).

use super::*;
use crate::meta::model::{parse, VolumeGroup};
use serde_json::Value;

/// What the first MiB of a PV (as lvm2 left it) says: the committed text and
/// what a scan would learn from the label and the mda header.
struct Dump {
    text: String,
    pv_uuid: String,
    device_size: u64,
    mda_count: u32,
    ext_version: u32,
    mda_size: u64,
    text_size: u64,
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

/// Reads the label (pv_header: uuid, device size, data and metadata area
/// lists, extension) and mda header slot 0, and the text the slot points
/// at, which may wrap from the end of the area back to its byte 512.
fn dump(area: &[u8]) -> Dump {
    let label = (0..4)
        .map(|s| s * 512)
        .find(|&o| &area[o..o + 8] == b"LABELONE")
        .expect("a label in sectors 0-3");
    let pvh = label + u32_at(area, label + 20) as usize;
    let pv_uuid = String::from_utf8(area[pvh..pvh + 32].to_vec()).unwrap();
    let device_size = u64_at(area, pvh + 32);
    // Data areas, then metadata areas, each list ending at offset 0.
    let mut at = pvh + 40;
    while u64_at(area, at) != 0 {
        at += 16;
    }
    at += 16;
    let mut mda_offsets = Vec::new();
    while u64_at(area, at) != 0 {
        mda_offsets.push(u64_at(area, at) as usize);
        at += 16;
    }
    at += 16;
    let ext_version = u32_at(area, at);
    assert_eq!(mda_offsets, [4096], "the fixtures have one mda at 4096");

    let mdah = 4096;
    let (start, size) = (u64_at(area, mdah + 24) as usize, u64_at(area, mdah + 32));
    let (offset, len) = (u64_at(area, mdah + 40) as usize, u64_at(area, mdah + 48));
    let mut bytes = Vec::new();
    for i in 0..len as usize {
        let rel = offset + i;
        let rel = if rel as u64 >= size {
            rel - size as usize + 512
        } else {
            rel
        };
        bytes.push(area[start + rel]);
    }
    assert_eq!(bytes.pop(), Some(0), "text ends with a NUL");
    Dump {
        text: String::from_utf8(bytes).unwrap(),
        pv_uuid,
        device_size,
        mda_count: mda_offsets.len() as u32,
        ext_version,
        mda_size: size,
        text_size: len,
    }
}

macro_rules! fixture_bytes {
    ($name:literal) => {
        include_bytes!(concat!("../../../tests/fixtures/lvm2/", $name)).as_slice()
    };
}

macro_rules! fixture_text {
    ($name:literal) => {
        include_str!(concat!("../../../tests/fixtures/lvm2/", $name))
    };
}

/// The VG and, per PV of its metadata, what the scan found, from the PVs'
/// dumps. The device path is the one lvm2 reported, given by `names` (PV
/// uuid -> path; vgall-devices.txt) or else the text's `device` hint.
fn scanned(dumps: &[Dump], names: &HashMap<String, String>) -> (VolumeGroup, Vec<Option<PvInfo>>) {
    let vg = parse(&dumps[0].text).unwrap().vg;
    let infos = vg
        .pvs
        .iter()
        .map(|pv| {
            let uuid = pv.id.replace('-', "");
            let d = dumps.iter().find(|d| d.pv_uuid == uuid)?;
            assert_eq!(d.text, dumps[0].text, "every PV holds the same text");
            let name = names
                .get(&pv.id)
                .cloned()
                .or_else(|| pv.device.clone())
                .unwrap();
            Some(PvInfo {
                name,
                dev_size_bytes: d.device_size,
                mda_count: d.mda_count,
                mda_size: d.mda_size,
                mda_free: mda_free(d.mda_size, d.text_size),
                ext_version: d.ext_version,
                mda_ignored: false,
            })
        })
        .collect();
    (vg, infos)
}

/// Compares every field of every row with lvm2's JSON, then the whole
/// document, then the bytes.
fn assert_same_report(kind: ReportKind, rows: &[Row], lvm2_json: &str) {
    // Fixtures captured before Data%/Meta% were reported lack them: compare
    // the document without them (the loop below checks they are empty).
    let live = ["data_percent", "metadata_percent"];
    let without_live: Vec<Row> = rows
        .iter()
        .map(|r| {
            let mut out = Row::new();
            for (f, v) in r
                .iter()
                .filter(|(f, _)| lvm2_json.contains(f) || !live.contains(f))
            {
                out.insert(f, v.to_owned());
            }
            out
        })
        .collect();
    let ours = to_lvm2_json(kind, &without_live);
    let theirs: Value = serde_json::from_str(lvm2_json).unwrap();
    let ours_value: Value = serde_json::from_str(&ours).expect("our JSON parses");
    let their_rows = theirs["report"][0][kind.as_str()].as_array().unwrap();
    assert_eq!(rows.len(), their_rows.len(), "{} rows", kind.as_str());
    let mut differences = Vec::new();
    for (row, theirs) in rows.iter().zip(their_rows) {
        let theirs = theirs.as_object().unwrap();
        // lvm2 printed exactly the fields cairn computes, in its order.
        let their_keys: Vec<&str> = theirs.keys().map(String::as_str).collect();
        let mut sorted: Vec<&str> = kind
            .fields()
            .iter()
            .copied()
            .filter(|f| !live.contains(f) || theirs.contains_key(*f))
            .collect();
        sorted.sort_unstable();
        assert_eq!(their_keys, sorted, "lvm2's fields (serde_json sorts them)");
        for field in live.iter().filter(|f| !theirs.contains_key(**f)) {
            if kind.fields().contains(field) {
                assert_eq!(
                    row.get(field).map(String::as_str),
                    Some(""),
                    "{field} of an inactive LV"
                );
            }
        }
        for field in sorted.iter() {
            let want = theirs[*field].as_str().unwrap();
            let got = row.get(field).map(String::as_str);
            if got != Some(want) {
                differences.push(format!(
                    "{} {:?} {field}: cairn {got:?}, lvm2 {want:?}",
                    kind.as_str(),
                    theirs[kind.fields()[0]].as_str().unwrap()
                ));
            }
        }
    }
    assert!(differences.is_empty(), "\n{}", differences.join("\n"));
    assert_eq!(ours_value, theirs);
    assert_eq!(ours, lvm2_json, "byte for byte, as lvm2 lays it out");
}

fn inactive(_: &str) -> LvActivity {
    LvActivity::INACTIVE
}

fn vgall() -> (VolumeGroup, Vec<Option<PvInfo>>) {
    let dumps = [
        dump(fixture_bytes!("vgall-pv-b-mda.bin")),
        dump(fixture_bytes!("vgall-pv-c-mda.bin")),
        dump(fixture_bytes!("vgall-pv-d-mda.bin")),
    ];
    // vgall-devices.txt says which loop device each dumped PV was.
    let vg = parse(&dumps[0].text).unwrap().vg;
    let mut names = HashMap::new();
    for (line, d) in fixture_text!("vgall-devices.txt").lines().zip(&dumps) {
        let (_, dev) = line.split_once(' ').unwrap();
        let pv = vg
            .pvs
            .iter()
            .find(|pv| pv.id.replace('-', "") == d.pv_uuid)
            .unwrap();
        names.insert(pv.id.clone(), dev.to_owned());
    }
    scanned(&dumps, &names)
}

fn single(bin: &[u8]) -> (VolumeGroup, Vec<Option<PvInfo>>) {
    scanned(&[dump(bin)], &HashMap::new())
}

#[test]
fn mda_free_is_lvm2s_half_area_rule() {
    let d = dump(fixture_bytes!("vgall-pv-b-mda.bin"));
    assert_eq!((d.mda_size, d.text_size), (1_044_480, 6270));
    assert_eq!(mda_free(1_044_480, 6270), 515_072);
    // An area without committed text offers the whole half.
    assert_eq!(mda_free(1_044_480, 0), 521_216);
    // A text past the half leaves nothing, not a wrapped number.
    assert_eq!(mda_free(61_440, 40_000), 0);
    assert_eq!(mda_free(0, 0), 0);
}

#[test]
fn vgall_lvs_equal_lvm2s() {
    let (vg, pvs) = vgall();
    let rows = lv_rows(&vg, &pvs, &inactive, true).unwrap();
    assert_same_report(ReportKind::Lv, &rows, fixture_text!("vgall-lvs.json"));
}

#[test]
fn vgall_vgs_equal_lvm2s() {
    let (vg, pvs) = vgall();
    let row = vg_row(&vg, &pvs).unwrap();
    assert_same_report(ReportKind::Vg, &[row], fixture_text!("vgall-vgs.json"));
}

#[test]
fn vgall_pvs_equal_lvm2s() {
    let (vg, pvs) = vgall();
    let rows = pv_rows(&vg, &pvs).unwrap();
    assert_same_report(ReportKind::Pv, &rows, fixture_text!("vgall-pvs.json"));
}

#[test]
fn vgone_reports_equal_lvm2s() {
    let (vg, pvs) = single(fixture_bytes!("vgone-pv0-mda.bin"));
    let lvs = lv_rows(&vg, &pvs, &inactive, true).unwrap();
    assert_same_report(ReportKind::Lv, &lvs, fixture_text!("vgone-lvs.json"));
    let vgs = [vg_row(&vg, &pvs).unwrap()];
    assert_same_report(ReportKind::Vg, &vgs, fixture_text!("vgone-vgs.json"));
    let pvs = pv_rows(&vg, &pvs).unwrap();
    assert_same_report(ReportKind::Pv, &pvs, fixture_text!("vgone-pvs.json"));
}

#[test]
fn vgwrap_reports_equal_lvm2s() {
    let (vg, pvs) = single(fixture_bytes!("vgwrap-pv0-mda.bin"));
    let lvs = lv_rows(&vg, &pvs, &inactive, true).unwrap();
    assert_same_report(ReportKind::Lv, &lvs, fixture_text!("vgwrap-lvs.json"));
    let vgs = [vg_row(&vg, &pvs).unwrap()];
    assert_same_report(ReportKind::Vg, &vgs, fixture_text!("vgwrap-vgs.json"));
    let pvs = pv_rows(&vg, &pvs).unwrap();
    assert_same_report(ReportKind::Pv, &pvs, fixture_text!("vgwrap-pvs.json"));
}

// ---- beyond the fixtures: lvm2's rules where no capture shows them --------

fn attr_of(rows: &[Row], lv: &str) -> String {
    rows.iter()
        .find(|r| r["lv_name"] == lv)
        .unwrap_or_else(|| panic!("no row for {lv}"))["lv_attr"]
        .clone()
}

#[test]
fn without_all_hidden_lvs_are_left_out() {
    let (vg, pvs) = vgall();
    let rows = lv_rows(&vg, &pvs, &inactive, false).unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["lv_name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "cached",
            "origin",
            "plain",
            "striped",
            "thick",
            "thin1",
            "thin1snap",
            "thin2",
            "tp"
        ]
    );
    // lvs without -a lists exactly the LVs vgs counts.
    assert_eq!(
        vg_row(&vg, &pvs).unwrap()["lv_count"],
        names.len().to_string()
    );
}

#[test]
fn activity_sets_state_open_and_read_only() {
    let (vg, pvs) = vgall();
    let activity = |name: &str| match name {
        "plain" => LvActivity::active(true),
        "striped" => LvActivity {
            read_only: true,
            ..LvActivity::active(false)
        },
        "thin2" => LvActivity {
            suspended: true,
            ..LvActivity::active(false)
        },
        "tp" => LvActivity {
            target: TargetState::OutOfDataSpace,
            ..LvActivity::active(false)
        },
        "thick" => LvActivity {
            target: TargetState::SnapshotInvalid,
            ..LvActivity::active(false)
        },
        "cached" => LvActivity {
            target: TargetState::NeedsCheck,
            ..LvActivity::active(true)
        },
        // A used cache pool has no device of its own: lvm2 shows none,
        // whatever is passed, but takes the cache's health.
        "cdata_cpool" => LvActivity {
            target: TargetState::Failed,
            ..LvActivity::active(true)
        },
        "thin1" => LvActivity {
            exists: true,
            inactive_table: true,
            ..LvActivity::INACTIVE
        },
        _ => LvActivity::INACTIVE,
    };
    let rows = lv_rows(&vg, &pvs, &activity, true).unwrap();
    assert_eq!(attr_of(&rows, "plain"), "-wi-ao----");
    assert_eq!(attr_of(&rows, "striped"), "-Ri-a-----");
    assert_eq!(attr_of(&rows, "thin2"), "Vwi-s-tz--");
    assert_eq!(attr_of(&rows, "tp"), "twi-a-tzD-");
    assert_eq!(attr_of(&rows, "thick"), "swi-I-s---");
    assert_eq!(attr_of(&rows, "cached"), "Cwi-coC---");
    assert_eq!(attr_of(&rows, "[cdata_cpool]"), "Cwi---C-F-");
    assert_eq!(attr_of(&rows, "thin1"), "Vwi-i-tz--");
    assert_eq!(attr_of(&rows, "origin"), "owi---s---");
}

#[test]
fn a_pv_the_scan_did_not_find_makes_its_lvs_partial() {
    let (vg, mut pvs) = vgall();
    // /dev/loop3 (pv2) holds the cache pool's data and metadata.
    pvs[2] = None;
    let rows = lv_rows(&vg, &pvs, &inactive, true).unwrap();
    assert_eq!(attr_of(&rows, "[cdata_cpool_cdata]"), "Cwi-----p-");
    assert_eq!(attr_of(&rows, "[cdata_cpool_cmeta]"), "ewi-----p-");
    // Partial spreads to what stands on them: the pool and the cached LV.
    assert_eq!(attr_of(&rows, "[cdata_cpool]"), "Cwi---C-p-");
    assert_eq!(attr_of(&rows, "cached"), "Cwi---C-p-");
    // but not to the cached LV's origin, which is on another PV.
    assert_eq!(attr_of(&rows, "[cached_corig]"), "owi---C---");
    assert_eq!(attr_of(&rows, "plain"), "-wi-------");
    let cdata = rows
        .iter()
        .find(|r| r["lv_name"] == "[cdata_cpool_cdata]")
        .unwrap();
    assert_eq!(cdata["devices"], "[unknown](2)");
    assert_eq!(cdata["seg_pe_ranges"], "[unknown]:2-16");

    assert_eq!(vg_row(&vg, &pvs).unwrap()["vg_attr"], "wz-pn-");
    assert_eq!(vg_row(&vg, &pvs).unwrap()["vg_mda_count"], "2");
    let pv_rows = pv_rows(&vg, &pvs).unwrap();
    let missing = pv_rows.last().unwrap();
    assert_eq!(missing["pv_name"], "[unknown]");
    assert_eq!(missing["pv_attr"], "a-m");
    assert_eq!(
        (
            missing["dev_size"].as_str(),
            missing["pv_mda_count"].as_str(),
            missing["pv_ext_vsn"].as_str()
        ),
        ("0", "0", "")
    );
    // What the metadata knows is still reported.
    assert_eq!(missing["pv_pe_alloc_count"], "17");
}

#[test]
fn thick_snapshot_partial_follows_lvm2s_visit_order() {
    // A thick origin and its COW depend on each other. lvm2 visits LVs in
    // list order ("origin" before "thick"), depth first: the COW is finished
    // while the origin is still open, so a missing origin does not reach
    // the COW, while a missing COW does reach the origin.
    let (vg, mut pvs) = vgall();
    pvs[1] = None; // /dev/loop2: origin (and cached_corig, half of striped)
    let rows = lv_rows(&vg, &pvs, &inactive, true).unwrap();
    assert_eq!(attr_of(&rows, "origin"), "owi---s-p-");
    assert_eq!(attr_of(&rows, "thick"), "swi---s---");
    assert_eq!(attr_of(&rows, "striped"), "-wi-----p-");
    assert_eq!(attr_of(&rows, "cached"), "Cwi---C-p-");

    let (vg, mut pvs) = vgall();
    pvs[0] = None; // /dev/loop1: thick (and plain, the thin pool's data)
    let rows = lv_rows(&vg, &pvs, &inactive, true).unwrap();
    assert_eq!(attr_of(&rows, "thick"), "swi---s-p-");
    assert_eq!(attr_of(&rows, "origin"), "owi---s-p-");
    // Thin LVs stand on the pool, whose data is on loop1.
    assert_eq!(attr_of(&rows, "thin2"), "Vwi---tzp-");
}

#[test]
fn multi_segment_lvs_report_a_row_per_segment() {
    let (vg, pvs) = vgall();
    // Split plain (loop1 0-9) into two segments: 0-5 and 6-9.
    let text = fixture_text_of_vgall().replacen(
        "segment_count = 1\n\nsegment1 {\nstart_extent = 0\nextent_count = 10\n\ntype = \"striped\"\nstripe_count = 1\n\nstripes = [\n\"pv0\", 0\n]\n}",
        "segment_count = 2\n\nsegment1 {\nstart_extent = 0\nextent_count = 6\n\ntype = \"striped\"\nstripe_count = 1\n\nstripes = [\n\"pv0\", 0\n]\n}\nsegment2 {\nstart_extent = 6\nextent_count = 4\n\ntype = \"striped\"\nstripe_count = 1\n\nstripes = [\n\"pv0\", 6\n]\n}",
        1,
    );
    let split = parse(&text).unwrap().vg;
    assert_ne!(split, vg, "the edit applied");
    let rows = lv_rows(&split, &pvs, &inactive, false).unwrap();
    let plain: Vec<&Row> = rows.iter().filter(|r| r["lv_name"] == "plain").collect();
    assert_eq!(plain.len(), 2);
    assert_eq!(plain[0]["seg_pe_ranges"], "/dev/loop1:0-5");
    assert_eq!(plain[1]["seg_pe_ranges"], "/dev/loop1:6-9");
    for row in plain {
        assert_eq!(
            (row["seg_count"].as_str(), row["lv_size"].as_str()),
            ("2", "41943040")
        );
    }
}

fn fixture_text_of_vgall() -> String {
    dump(fixture_bytes!("vgall-pv-b-mda.bin")).text
}

#[test]
fn unsupported_segment_types_are_refused_not_guessed() {
    let (_, pvs) = vgall();
    let text = fixture_text_of_vgall().replacen("type = \"striped\"", "type = \"raid1\"", 1);
    let vg = parse(&text).unwrap().vg;
    let err = lv_rows(&vg, &pvs, &inactive, true).unwrap_err();
    assert!(
        matches!(&err, ReportError::UnsupportedSegment { segtype, .. } if segtype == "raid1"),
        "{err}"
    );
    assert!(vg_row(&vg, &pvs).is_err());
    assert!(pv_rows(&vg, &pvs).is_err());
    let (vg, _) = vgall();
    assert!(matches!(
        vg_row(&vg, &pvs[..2]),
        Err(ReportError::PvCount {
            expected: 3,
            got: 2,
            ..
        })
    ));
}

#[test]
fn json_escapes_what_json_needs() {
    let mut row = Row::new();
    row.insert("vg_name", "a\"b\\c".to_owned());
    let json = to_lvm2_json(ReportKind::Vg, &[row]);
    let value: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["report"][0]["vg"][0]["vg_name"], "a\"b\\c");
}
