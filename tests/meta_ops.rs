//! PV/VG operations and scanning on image files (no root, no kernel):
//! byte-level agreement with lvm2's fixtures, commits that wrap the
//! metadata buffer, and bad input that changes nothing. The same operations
//! run against real devices and lvm2 in the lab (vm-tests/vm_meta.rs).

use std::path::{Path, PathBuf};

use cairn::meta::label::{find_label, PvUuid};
use cairn::meta::ops::{self, Env, OpError};
use cairn::meta::scan::{Scan, ScanError};
use cairn::{ErrorKind, Refusal};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lvm2");

/// `pv create` options for an image file (what `--allow-file` gives).
fn image(uuid: Option<PvUuid>) -> ops::PvCreate {
    ops::PvCreate {
        uuid,
        force: false,
        allow_file: true,
    }
}

struct Lab {
    dir: PathBuf,
    env: Env,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let dir = std::env::temp_dir().join(format!("cairn-ops-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let env = Env::under(&dir, &format!("test {tag}"));
        Lab { dir, env }
    }

    /// A sparse image file standing in for a disk.
    fn disk(&mut self, name: &str, mib: u64) -> PathBuf {
        let path = self.dir.join(format!("{name}.img"));
        std::fs::File::create(&path)
            .unwrap()
            .set_len(mib << 20)
            .unwrap();
        self.env.devices.push(path.clone());
        path
    }

    /// A disk whose first MiB is an lvm2 fixture.
    fn fixture_disk(&mut self, name: &str, fixture: &str, mib: u64) -> PathBuf {
        let path = self.disk(name, mib);
        let bytes = std::fs::read(Path::new(FIXTURES).join(fixture)).unwrap();
        let dev = cairn::meta::device::Device::open(&path, true).unwrap();
        dev.write_at(0, &bytes).unwrap();
        path
    }

    fn scan(&self) -> Scan {
        Scan::devices(&self.env.devices).unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn pv_create_writes_what_pvcreate_writes() {
    let mut lab = Lab::new("pvcreate");
    let fixture = std::fs::read(Path::new(FIXTURES).join("pv-fresh-8k.bin")).unwrap();
    let lvm2_label = find_label(&fixture[..2048]).unwrap().unwrap();
    let disk = lab.disk("a", 256);
    let uuid: PvUuid = lvm2_label.pv_header.uuid;
    ops::pv_create(&lab.env, &disk, &image(Some(uuid))).unwrap();
    let ours = std::fs::read(&disk).unwrap();
    assert_eq!(
        &ours[..8192],
        &fixture[..],
        "first 8 KiB differ from pvcreate's"
    );
    assert!(ours[8192..1 << 20].iter().all(|&b| b == 0));
    assert!(lab.dir.join("run").exists() || !lab.dir.join("run/hints").exists());

    // A second pv create changes nothing and says why.
    let before = std::fs::read(&disk).unwrap();
    let e = ops::pv_create(&lab.env, &disk, &image(None)).unwrap_err();
    assert!(matches!(e, OpError::AlreadyPv { .. }), "{e}");
    assert_eq!(std::fs::read(&disk).unwrap(), before);
}

#[test]
fn pv_create_refuses_file_systems_and_tiny_devices() {
    let mut lab = Lab::new("refuse");
    let disk = lab.disk("ext4", 16);
    let dev = cairn::meta::device::Device::open(&disk, true).unwrap();
    // An ext2 superblock as libblkid reads it: the magic at 1080 and a
    // revision-1 header (no journal, no features).
    dev.write_at(1024 + 76, &1u32.to_le_bytes()).unwrap();
    dev.write_at(1080, &[0x53, 0xEF]).unwrap();
    let before = std::fs::read(&disk).unwrap();
    let e = ops::pv_create(&lab.env, &disk, &image(None)).unwrap_err();
    assert!(matches!(e, OpError::InUse { .. }), "{e}");
    assert!(
        e.to_string().contains("ext2 (filesystem) at byte 1080"),
        "{e}"
    );
    assert!(e.to_string().contains("--force"), "{e}");
    assert_eq!(std::fs::read(&disk).unwrap(), before, "nothing written");

    // A regular file is refused unless asked for (lvm2 takes block
    // devices only), before anything is read or written.
    let e = ops::pv_create(&lab.env, &disk, &ops::PvCreate::default()).unwrap_err();
    assert!(matches!(e, OpError::NotABlockDevice { .. }), "{e}");
    assert!(e.to_string().contains("--allow-file"), "{e}");
    assert_eq!(std::fs::read(&disk).unwrap(), before, "nothing written");

    // Forced: the signature is wiped and the PV is all libblkid sees.
    let forced = ops::PvCreate {
        force: true,
        ..image(None)
    };
    ops::pv_create(&lab.env, &disk, &forced).unwrap();
    let kinds: Vec<String> = cairn::signature::probe(&disk)
        .unwrap()
        .into_iter()
        .map(|s| s.kind)
        .collect();
    assert_eq!(kinds, ["LVM2_member"]);

    let tiny = lab.disk("tiny", 2);
    assert!(matches!(
        ops::pv_create(&lab.env, &tiny, &image(None)),
        Err(OpError::TooSmall { .. })
    ));
}

#[test]
fn vg_lifecycle_create_extend_commit_remove() {
    let mut lab = Lab::new("vg");
    let (a, b, c) = (lab.disk("a", 64), lab.disk("b", 64), lab.disk("c", 32));
    for d in [&a, &b, &c] {
        ops::pv_create(&lab.env, d, &image(None)).unwrap();
    }
    let md = ops::vg_create(
        &lab.env,
        "vg0",
        &[a.clone(), b.clone()],
        ops::DEFAULT_EXTENT_SIZE,
    )
    .unwrap()
    .metadata;
    assert_eq!(md.vg.pvs.len(), 2);
    assert_eq!(md.vg.pvs[0].pe_count, 15, "(64 MiB - 1 MiB) / 4 MiB");

    let scan = lab.scan();
    let view = scan.vg("vg0").unwrap();
    assert_eq!(view.metadata.vg, md.vg, "what was written reads back");
    assert_eq!(scan.orphans().len(), 1);
    for pv in &scan.pvs {
        let used = pv.label.pv_header.extension.as_ref().unwrap().flags & 1;
        assert_eq!(
            used == 1,
            pv.path != c,
            "PV_EXT_USED on {}",
            pv.path.display()
        );
    }
    assert!(lab.dir.join("backup/vg0").exists());

    let md = ops::vg_extend(&lab.env, "vg0", std::slice::from_ref(&c))
        .unwrap()
        .metadata;
    assert_eq!((md.vg.seqno, md.vg.pvs.len()), (2, 3));
    assert_eq!(lab.scan().vg("vg0").unwrap().metadata.vg.seqno, 2);
    assert!(lab.scan().orphans().is_empty());

    // Bad input: nothing changes.
    for (e, what) in [
        (
            ops::vg_create(
                &lab.env,
                "vg0",
                std::slice::from_ref(&a),
                ops::DEFAULT_EXTENT_SIZE,
            )
            .unwrap_err(),
            "already exists",
        ),
        (
            ops::vg_create(
                &lab.env,
                "-x",
                std::slice::from_ref(&a),
                ops::DEFAULT_EXTENT_SIZE,
            )
            .unwrap_err(),
            "starts with '-'",
        ),
        (
            ops::vg_create(
                &lab.env,
                "vg1",
                std::slice::from_ref(&a),
                ops::DEFAULT_EXTENT_SIZE,
            )
            .unwrap_err(),
            "belongs to volume group vg0",
        ),
        (
            ops::vg_create(&lab.env, "vg1", std::slice::from_ref(&a), 3000).unwrap_err(),
            "power of two",
        ),
        (
            ops::pv_remove(&lab.env, &a).unwrap_err(),
            "remove it from the VG",
        ),
    ] {
        assert!(e.to_string().contains(what), "expected {what:?} in {e}");
    }
    assert_eq!(lab.scan().vg("vg0").unwrap().metadata.vg.seqno, 2);

    ops::vg_remove(&lab.env, "vg0", false).unwrap();
    let scan = lab.scan();
    assert!(matches!(scan.vg("vg0"), Err(ScanError::NoSuchVg(_))));
    assert_eq!(scan.orphans().len(), 3);
    assert!(!lab.dir.join("backup/vg0").exists());
    ops::pv_remove(&lab.env, &c).unwrap();
    assert_eq!(lab.scan().pvs.len(), 2);
    let e = ops::pv_remove(&lab.env, &c).unwrap_err();
    assert!(e.to_string().contains("not an LVM physical volume"), "{e}");
}

#[test]
fn sixty_commits_wrap_the_buffer_and_the_newest_always_reads_back() {
    let mut lab = Lab::new("wrap");
    let a = lab.disk("a", 64);
    ops::pv_create(&lab.env, &a, &image(None)).unwrap();
    let _ = ops::vg_create(
        &lab.env,
        "vgw",
        std::slice::from_ref(&a),
        ops::DEFAULT_EXTENT_SIZE,
    )
    .unwrap();
    let mut offsets = Vec::new();
    for i in 0..60 {
        let mut change = ops::begin_change(&lab.env, "vgw", &[]).unwrap();
        // Each tag adds 1.5 KiB: the copies grow past 90 KiB, and 60 of them wrap the 1020 KiB area.
        change
            .metadata
            .vg
            .tags
            .push(format!("tag{i:03}_{}", "x".repeat(1500)));
        let md = change.commit(&lab.env, &[]).unwrap().metadata;
        let scan = lab.scan();
        let view = scan.vg("vgw").unwrap();
        assert_eq!(view.metadata.vg, md.vg, "commit {i}");
        let header = &scan.pvs[0].mdas[0].header;
        offsets.push(header.raw_locns[0].offset);
        assert!(
            header.raw_locns[1].is_empty(),
            "precommit slot cleared after commit {i}"
        );
    }
    assert_eq!(lab.scan().vg("vgw").unwrap().metadata.vg.seqno, 61);
    assert!(
        offsets.windows(2).any(|w| w[1] < w[0]),
        "the buffer never wrapped: {offsets:?}"
    );
    let archived = lab.env.archive.list("vgw").unwrap();
    assert_eq!(archived.len(), 5, "the archive stays bounded");
}

/// The committed copy of one PV's first metadata area, rewritten with other
/// text (and a valid checksum for it).
fn rewrite_copy(path: &Path, edit: impl Fn(&str) -> String) {
    let scan = Scan::devices(&[path.to_owned()]).unwrap();
    let pv = &scan.pvs[0];
    let mda = &pv.mdas[0];
    let text = edit(&mda.committed.as_ref().unwrap().text);
    let mut bytes = text.into_bytes();
    bytes.push(0);
    let dev = cairn::meta::device::Device::open(path, true).unwrap();
    let mut header = mda.header.clone();
    let slot = header.raw_locns[0];
    assert!(
        slot.offset + bytes.len() as u64 <= header.size,
        "edit keeps the copy unwrapped"
    );
    dev.write_at(header.start + slot.offset, &bytes).unwrap();
    header.raw_locns[0].size = bytes.len() as u64;
    header.raw_locns[0].checksum =
        cairn::meta::crc::calc_crc(cairn::meta::crc::INITIAL_CRC, &bytes);
    dev.write_at(header.start, &header.encode()).unwrap();
}

#[test]
fn lvm2s_vg_with_every_segment_type_is_found_and_guarded() {
    let mut lab = Lab::new("vgall");
    let b = lab.fixture_disk("b", "vgall-pv-b-mda.bin", 512);
    let c = lab.fixture_disk("c", "vgall-pv-c-mda.bin", 512);
    let d = lab.fixture_disk("d", "vgall-pv-d-mda.bin", 256);
    let scan = lab.scan();
    let view = scan.vg("vgall").unwrap();
    assert_eq!(view.metadata.vg.seqno, 24);
    assert!(view.devices.iter().all(Option::is_some));
    let e = ops::vg_remove(&lab.env, "vgall", false).unwrap_err();
    assert!(matches!(&e, OpError::VgHasLvs { count: 9, .. }), "{e}");

    // Same seqno, different text on one PV: inconsistent, nothing written.
    rewrite_copy(&c, |t| t.replace("\"site_a\"", "\"site_b\""));
    let e = lab.scan().vg("vgall").unwrap_err();
    assert!(
        matches!(e, ScanError::Inconsistent { seqno: 24, .. }),
        "{e}"
    );
    let e = ops::vg_extend(&lab.env, "vgall", &[]).unwrap_err();
    assert!(e.to_string().contains("inconsistent"), "{e}");

    // An older copy on one PV is stale, not an error: the newest wins.
    rewrite_copy(&c, |t| {
        t.replace("\"site_b\"", "\"site_a\"")
            .replacen("seqno = 24", "seqno = 23", 1)
    });
    let view = lab.scan().vg("vgall").unwrap();
    assert_eq!(view.metadata.vg.seqno, 24);
    assert_eq!(view.stale, std::slice::from_ref(&c));

    // A missing PV: reads, but no writes.
    lab.env.devices.retain(|p| p != &d);
    let view = lab.scan().vg("vgall").unwrap();
    assert_eq!(view.missing_pvs().len(), 1);
    let e = ops::vg_extend(&lab.env, "vgall", &[]).unwrap_err();
    assert!(matches!(e, OpError::MissingPvs { .. }), "{e}");
    let _ = b;
}

#[test]
fn foreign_and_shared_vgs_are_refused() {
    for (edit, what) in [
        ("system_id = \"otherhost\"\n", "another host"),
        ("lock_type = \"sanlock\"\n", "lvmlockd"),
    ] {
        let mut lab = Lab::new(&format!("foreign{}", what.len()));
        let a = lab.fixture_disk("a", "vgone-pv0-mda.bin", 256);
        rewrite_copy(&a, |t| {
            t.replacen("extent_size", &format!("{edit}extent_size"), 1)
        });
        let before = std::fs::read(&a).unwrap();
        let e = ops::vg_remove(&lab.env, "vgone", true).unwrap_err();
        assert!(e.to_string().contains(what), "{e}");
        assert_eq!(std::fs::read(&a).unwrap(), before, "nothing written");
    }
}

/// lvm2 2.03 skips VGs flagged CLUSTERED (clvmd) or SHARED (lvmlockd);
/// cairn refuses to change or activate them, saying why, writing nothing.
#[test]
fn clustered_and_shared_status_vgs_are_refused() {
    for (flag, what) in [("CLUSTERED", "is clustered"), ("SHARED", "is shared")] {
        let mut lab = Lab::new(&format!("status-{flag}"));
        let a = lab.fixture_disk("a", "vgone-pv0-mda.bin", 256);
        rewrite_copy(&a, |t| {
            t.replacen(
                "status = [\"RESIZEABLE\", \"READ\", \"WRITE\"]",
                &format!("status = [\"RESIZEABLE\", \"READ\", \"WRITE\", \"{flag}\"]"),
                1,
            )
        });
        let view = lab.scan().vg("vgone").unwrap();
        assert!(ops::foreign_reason(&view.metadata.vg).is_some_and(|w| w.contains(what)));
        let before = std::fs::read(&a).unwrap();
        let e = ops::vg_remove(&lab.env, "vgone", true).unwrap_err();
        assert!(e.to_string().contains(what), "{flag}: {e}");
        let e = ops::vg_extend(&lab.env, "vgone", &[]).unwrap_err();
        assert!(e.to_string().contains(what), "{flag}: {e}");
        assert_eq!(std::fs::read(&a).unwrap(), before, "nothing written");
    }
}

#[test]
fn damaged_metadata_names_the_device() {
    let mut lab = Lab::new("damaged");
    let a = lab.fixture_disk("a", "vgone-pv0-mda.bin", 256);
    let dev = cairn::meta::device::Device::open(&a, true).unwrap();
    // One byte of the mda header's magic.
    dev.write_at(4096 + 5, b"X").unwrap();
    let scan = Scan::devices(std::slice::from_ref(&a)).unwrap();
    assert!(scan.pvs.is_empty());
    let msg = scan.problem_with(&a).unwrap().to_string();
    assert!(
        msg.contains(&a.display().to_string()) && msg.contains("4096"),
        "{msg}"
    );
    // A label with a bad CRC.
    let b = lab.fixture_disk("b", "vgone-pv0-mda.bin", 256);
    let dev = cairn::meta::device::Device::open(&b, true).unwrap();
    dev.write_at(512 + 40, b"Z").unwrap();
    let e = Scan::devices(std::slice::from_ref(&b))
        .unwrap()
        .problem_with(&b)
        .unwrap()
        .to_string();
    assert!(
        e.contains(&b.display().to_string()) && e.to_lowercase().contains("crc"),
        "{e}"
    );
    // Not a PV at all.
    let c = lab.disk("c", 8);
    let e = ops::vg_create(
        &lab.env,
        "x",
        std::slice::from_ref(&c),
        ops::DEFAULT_EXTENT_SIZE,
    )
    .unwrap_err();
    assert!(e.to_string().contains("cairn pv create"), "{e}");
    // Naming a damaged PV says what is wrong with it.
    let e = ops::vg_create(
        &lab.env,
        "x",
        std::slice::from_ref(&a),
        ops::DEFAULT_EXTENT_SIZE,
    )
    .unwrap_err();
    assert!(e.to_string().contains("bad magic"), "{e}");
}

#[test]
fn linear_lvs_are_allocated_committed_and_reported() {
    let mut lab = Lab::new("lvs");
    let (a, b) = (lab.disk("a", 64), lab.disk("b", 64));
    ops::pv_create(&lab.env, &a, &image(None)).unwrap();
    ops::pv_create(&lab.env, &b, &image(None)).unwrap();
    let _ = ops::vg_create(
        &lab.env,
        "vgl",
        &[a.clone(), b.clone()],
        ops::DEFAULT_EXTENT_SIZE,
    )
    .unwrap();
    let mut change = ops::begin_change(&lab.env, "vgl", &[]).unwrap();
    ops::add_linear_lv(&mut change.metadata.vg, "small", 2, None).unwrap();
    ops::add_linear_lv(&mut change.metadata.vg, "on-b", 3, Some(&[1])).unwrap();
    // 15 + 15 extents in all; 20 do not fit on one PV: two segments.
    ops::add_linear_lv(&mut change.metadata.vg, "big", 20, None).unwrap();
    let e = ops::add_linear_lv(&mut change.metadata.vg, "big", 1, None).unwrap_err();
    assert!(e.to_string().contains("already has an LV named big"), "{e}");
    let e = ops::add_linear_lv(&mut change.metadata.vg, "huge", 100, None).unwrap_err();
    assert!(e.to_string().contains("free extents"), "{e}");
    let _ = change.commit(&lab.env, &[]).unwrap();

    let scan = lab.scan();
    let rows = cairn::lvm::query::lvs(&scan, &["vgl".to_owned()], false, None).unwrap();
    let row = |name: &str| rows.iter().find(|r| r["lv_name"] == name).unwrap().clone();
    assert_eq!(row("small")["lv_size"], (8u64 << 20).to_string());
    assert_eq!(row("small")["devices"], format!("{}(0)", a.display()));
    assert_eq!(row("on-b")["devices"], format!("{}(0)", b.display()));
    assert_eq!(
        rows.iter().filter(|r| r["lv_name"] == "big").count(),
        2,
        "one row per segment"
    );
    assert!(
        rows.iter().all(|r| r["lv_attr"] == "-wi-------"),
        "inactive linear LVs"
    );
    let vg = cairn::lvm::query::vgs(&scan, &[]).unwrap();
    assert_eq!(
        (vg[0]["lv_count"].as_str(), vg[0]["vg_free_count"].as_str()),
        ("3", "5")
    );
}

/// A VG of two PVs on image files, for the commit-point tests.
fn two_pv_vg(lab: &mut Lab, vg: &str) -> (PathBuf, PathBuf) {
    let (a, b) = (lab.disk("a", 64), lab.disk("b", 64));
    ops::pv_create(&lab.env, &a, &image(None)).unwrap();
    ops::pv_create(&lab.env, &b, &image(None)).unwrap();
    let _ = ops::vg_create(
        &lab.env,
        vg,
        &[a.clone(), b.clone()],
        ops::DEFAULT_EXTENT_SIZE,
    )
    .unwrap();
    (a, b)
}

#[test]
fn a_backup_failing_after_the_commit_is_a_warning_not_a_failed_change() {
    let mut lab = Lab::new("backupwarn");
    two_pv_vg(&mut lab, "vgb");
    // The backup directory cannot be made: a file stands where it goes.
    let blocker = lab.dir.join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    lab.env.archive.backup_dir = blocker.join("backup");

    let mut change = ops::begin_change(&lab.env, "vgb", &[]).unwrap();
    change.metadata.vg.tags.push("one".into());
    let committed = change.commit(&lab.env, &[]).expect("committed");
    assert_eq!(committed.metadata.vg.seqno, 2);
    assert!(
        matches!(
            committed.warnings.as_slice(),
            [cairn::meta::committed::CommitWarning::Backup { vg, seqno: 2, .. }] if vg == "vgb"
        ),
        "{:?}",
        committed.warnings
    );
    assert_eq!(lab.scan().vg("vgb").unwrap().metadata.vg.seqno, 2);

    // A change of several commits goes on past it; the warning is deferred.
    let mut change = ops::begin_change(&lab.env, "vgb", &[]).unwrap();
    change.metadata.vg.tags.push("two".into());
    change.commit_and_continue(&lab.env).expect("committed");
    change.metadata.vg.tags.push("three".into());
    change
        .commit_and_continue(&lab.env)
        .expect("committed again");
    let deferred: Vec<String> = cairn::host::take_warnings()
        .iter()
        .map(|w| w.to_string())
        .filter(|w| w.contains("volume group vgb:"))
        .collect();
    assert_eq!(deferred.len(), 2, "{deferred:?}");
    assert!(deferred[0].contains("vgcfgbackup vgb"), "{deferred:?}");
    let vg = lab.scan().vg("vgb").unwrap().metadata.vg;
    assert_eq!((vg.seqno, vg.tags.len()), (4, 3));
}

/// Another writer (lvm2 without cairn's lock, another host) commits the
/// next seqno of `vg`, tagged "theirs", straight to the PVs.
fn commit_behind_cairns_back(lab: &Lab, vg: &str) -> Result<(), String> {
    let scan = lab.scan();
    let mut theirs = scan.vg(vg).unwrap().metadata;
    theirs.vg.seqno += 1;
    theirs.vg.tags.push("theirs".into());
    let devices: Vec<_> = scan
        .pvs
        .iter()
        .map(|p| (p.path.clone(), p.label.clone()))
        .collect();
    cairn::meta::commit::commit(
        &theirs,
        &lab.env.write_context(),
        &devices,
        &mut Default::default(),
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

#[test]
fn a_commit_refuses_when_someone_else_committed_since_the_scan() {
    let mut lab = Lab::new("moved");
    two_pv_vg(&mut lab, "vgm");
    let mut ours = ops::begin_change(&lab.env, "vgm", &[]).unwrap();
    ours.metadata.vg.tags.push("ours".into());

    // Another writer (lvm2 without cairn's lock, another host) commits
    // seqno 2 first, straight to the PVs.
    commit_behind_cairns_back(&lab, "vgm").unwrap();

    let e = ours.commit(&lab.env, &[]).unwrap_err();
    assert!(e.to_string().contains("changed since cairn read it"), "{e}");
    let vg = lab.scan().vg("vgm").unwrap().metadata.vg;
    assert_eq!(
        vg.tags,
        ["theirs"],
        "their commit stands, ours wrote nothing"
    );
    for pv in &lab.scan().pvs {
        let header = &pv.mdas[0].header;
        assert!(
            header.raw_locns[1].offset == 0,
            "no precommit left on {}",
            pv.path.display()
        );
    }
}

/// VG and LV names read from disk become paths (/dev/VG/LV, the backup
/// file, the lock file): one lvm2 would not accept (a `..`, a `/`, a
/// leading `-`) is refused at scan time, with the device named, and the VG
/// is neither listed nor written.
#[test]
fn bad_names_in_metadata_are_refused_naming_the_device() {
    for (i, bad) in ["\"../x\"", "..", "\"-x\"", "\"a/b\"", "\"a\nb\""]
        .iter()
        .enumerate()
    {
        let mut lab = Lab::new(&format!("badvgname{i}"));
        let a = lab.fixture_disk("a", "vgone-pv0-mda.bin", 256);
        rewrite_copy(&a, |t| t.replacen("vgone {", &format!("{bad} {{"), 1));
        let before = std::fs::read(&a).unwrap();
        let scan = lab.scan();
        assert!(scan.pvs.is_empty(), "{bad}: the PV was taken");
        let msg = scan.problem_with(&a).expect(bad).to_string();
        assert!(
            msg.contains(&a.display().to_string())
                && msg.contains("VG name")
                && msg.contains("not one lvm2 accepts"),
            "{bad}: {msg}"
        );
        assert!(scan.vg_names().unwrap().is_empty(), "{bad}");
        let e = ops::vg_remove(&lab.env, "vgone", true).unwrap_err();
        assert!(e.to_string().contains("not found"), "{bad}: {e}");
        assert_eq!(std::fs::read(&a).unwrap(), before, "{bad}: written");
    }

    // An LV's name, in a VG on three PVs: the VG cannot be read.
    let mut lab = Lab::new("badlvname");
    let disks = [
        lab.fixture_disk("b", "vgall-pv-b-mda.bin", 512),
        lab.fixture_disk("c", "vgall-pv-c-mda.bin", 512),
        lab.fixture_disk("d", "vgall-pv-d-mda.bin", 256),
    ];
    for d in &disks {
        rewrite_copy(d, |t| t.replacen("\nplain {", "\n\"../plain\" {", 1));
    }
    let e = lab.scan().vg("vgall").unwrap_err().to_string();
    assert!(
        disks.iter().any(|d| e.contains(&d.display().to_string()))
            && e.contains("LV name \"../plain\" is not one lvm2 accepts"),
        "{e}"
    );
    let e = ops::vg_extend(&lab.env, "vgall", &[]).unwrap_err();
    assert!(e.to_string().contains("../plain"), "{e}");
}

#[test]
fn a_vg_removal_refuses_when_someone_else_committed_since_the_scan() {
    let mut lab = Lab::new("moved-remove");
    two_pv_vg(&mut lab, "vgr");
    // Another writer commits (a new LV's text, say) between cairn's scan and
    // its wipe of the areas: the removal must not erase it unseen.
    let e = ops::vg_remove_checked(&lab.env, "vgr", true, |_| {
        commit_behind_cairns_back(&lab, "vgr").map_err(|e| Refusal::new(ErrorKind::System, e))
    })
    .unwrap_err();
    assert!(e.to_string().contains("changed since cairn read it"), "{e}");
    let vg = lab.scan().vg("vgr").unwrap().metadata.vg;
    assert_eq!(
        (vg.seqno, vg.tags.as_slice()),
        (2, &["theirs".to_owned()][..]),
        "the VG and their commit stand"
    );
}

/// One PV of two failing its commit slot after the first PV's was written
/// (the commit point): the change stands, with a warning naming the lagging
/// PV; the scan reads the new text and sees the PV as stale; the next commit
/// brings it up to date. (The failure is injected: CAIRN_FAIL_AT, named per
/// VG so no other test's commits are touched.)
#[test]
fn a_pv_failing_after_the_commit_point_is_a_warning_not_a_failed_change() {
    let mut lab = Lab::new("phase2");
    two_pv_vg(&mut lab, "vgphase2");
    std::env::set_var("CAIRN_FAIL_AT", "commit-phase2-after-first:vgphase2");
    let mut change = ops::begin_change(&lab.env, "vgphase2", &[]).unwrap();
    change.metadata.vg.tags.push("new".into());
    let committed = change.commit(&lab.env, &[]);
    std::env::remove_var("CAIRN_FAIL_AT");
    let committed = committed.expect("the change stands past its commit point");
    assert!(
        matches!(
            committed.warnings.as_slice(),
            [cairn::meta::committed::CommitWarning::PvLagging { vg, seqno: 2, .. }] if vg == "vgphase2"
        ),
        "{:?}",
        committed.warnings
    );
    let scan = lab.scan();
    let view = scan.vg("vgphase2").unwrap();
    assert_eq!(view.metadata.vg.seqno, 2);
    assert_eq!(view.metadata.vg.tags, ["new"]);
    assert_eq!(view.stale.len(), 1, "one PV lags: {:?}", view.stale);
    let mut change = ops::begin_change(&lab.env, "vgphase2", &[]).unwrap();
    change.metadata.vg.tags.push("next".into());
    let _ = change.commit(&lab.env, &[]).unwrap();
    assert!(lab.scan().vg("vgphase2").unwrap().stale.is_empty());
}

/// A refusal of the metadata layer says what kind it is (the façade's
/// `ErrorKind`), while its message stays the one the CLI prints.
#[test]
fn refusals_say_what_kind_they_are() {
    let mut lab = Lab::new("kinds");
    let (a, _) = two_pv_vg(&mut lab, "vgk");
    let mut change = ops::begin_change(&lab.env, "vgk", &[]).unwrap();
    let vg = &mut change.metadata.vg;
    ops::add_linear_lv(vg, "lv", 2, None).unwrap();
    let e = ops::add_linear_lv(vg, "lv", 1, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    assert_eq!(
        e.to_string(),
        "volume group vgk already has an LV named lv: cairn will not change it"
    );
    let e = ops::add_linear_lv(vg, "huge", 1000, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpace, "{e}");
    drop(change);
    // Restoring a PV the VG does not have, or one that is not missing.
    let c = lab.disk("c", 64);
    let e = ops::vg_restore_missing(&lab.env, "vgk", &[c]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let e = ops::vg_restore_missing(&lab.env, "vgk", &[a]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    // The check a caller runs before a VG goes keeps the kind it gave.
    let e = ops::vg_remove_checked(&lab.env, "vgk", true, |_| {
        Err(Refusal::new(ErrorKind::Busy, "still has active devices"))
    })
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy, "{e}");
    assert_eq!(
        e.to_string(),
        "volume group vgk still has active devices: cairn will not change it"
    );
}
