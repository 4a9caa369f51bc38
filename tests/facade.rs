//! The façade on image files (no root, no kernel): a program makes PVs and
//! a VG, reads the reports and changes tags through `cairn::Host` alone,
//! gets typed outcomes, and bad input comes back with the right
//! `ErrorKind` and nothing changed. The kernel side of the same façade is
//! proven in the lab (vm_stack runs examples/embed.rs).

use std::path::PathBuf;
use std::time::Duration;

use cairn::host::PvCreate;
use cairn::units::Bytes;
use cairn::{ErrorKind, Host, HostOptions};

struct Lab {
    dir: PathBuf,
    host: Host,
    disks: Vec<PathBuf>,
}

impl Lab {
    /// A host whose locks, archive, state and scan are all under a
    /// scratch directory, with two 64 MiB image files as its only devices.
    fn new(tag: &str) -> Lab {
        let dir = std::env::temp_dir().join(format!("cairn-facade-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let disks: Vec<PathBuf> = ["a", "b"]
            .iter()
            .map(|n| {
                let p = dir.join(format!("{n}.img"));
                std::fs::File::create(&p)
                    .unwrap()
                    .set_len(64 << 20)
                    .unwrap();
                p
            })
            .collect();
        let host = Host::new(HostOptions {
            scan_devices: disks.clone(),
            scan_lvs: Some(false),
            lvm_dir: dir.join("lvm"),
            lock_dir: dir.join("lock"),
            run_dir: dir.join("run"),
            lock_wait: Duration::from_secs(2),
            state_dir: dir.join("state"),
            dev_dir: dir.join("dev"),
            command: format!("facade test {tag}"),
            ..HostOptions::default()
        })
        .unwrap();
        Lab { dir, host, disks }
    }

    fn pvs(&self) {
        let opts = PvCreate {
            uuid: None,
            force: false,
            allow_file: true,
        };
        for d in &self.disks {
            let uuid = self.host.pv_create(d, &opts).unwrap();
            assert_eq!(uuid.len(), 38, "lvm2's uuid form: {uuid}");
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_vg_made_and_changed_through_the_facade() {
    let lab = Lab::new("vg");
    lab.pvs();
    let made = lab
        .host
        .vg("vg0")
        .create(&lab.disks, Bytes(4 << 20))
        .unwrap();
    assert!(made.applied);
    assert_eq!(made.commits().collect::<Vec<_>>(), [("vg0", 1, "created")]);
    assert!(made.warnings.is_empty(), "{:?}", made.warnings);

    let vgs = lab.host.vgs(&[]).unwrap();
    assert_eq!(vgs.rows.len(), 1);
    let row = &vgs.rows[0];
    assert_eq!(row.get("vg_name").map(String::as_str), Some("vg0"));
    assert_eq!(row.get("pv_count").map(String::as_str), Some("2"));
    assert!(vgs.to_lvm2_json().contains("\"vg_name\":\"vg0\""));

    let tagged = lab
        .host
        .vg("vg0")
        .change_tags(&["web".into(), "db".into()], &[])
        .unwrap();
    assert_eq!(tagged.commits().next().map(|c| c.1), Some(2));
    let untagged = lab.host.vg("vg0").change_tags(&[], &["db".into()]).unwrap();
    assert_eq!(untagged.commits().next().map(|c| c.1), Some(3));
    let row = &lab.host.vgs(&["vg0".into()]).unwrap().rows[0];
    assert_eq!(row.get("vg_tags").map(String::as_str), Some("web"));

    let pvs = lab.host.pvs(&["vg0".into()]).unwrap();
    assert_eq!(pvs.rows.len(), 2);
    assert!(pvs.problems.is_empty(), "{:?}", pvs.problems);
    // lvm2's archive, under the host's lvm_dir: the metadata before each
    // change of an existing VG (creation archives nothing, as vgcreate).
    let archived = std::fs::read_dir(lab.dir.join("lvm/archive"))
        .unwrap()
        .count();
    assert_eq!(archived, 2);
}

#[test]
fn bad_input_has_a_kind_and_changes_nothing() {
    let lab = Lab::new("bad");
    lab.pvs();
    let vg = lab.host.vg("vg0");
    vg.create(&lab.disks, Bytes(4 << 20)).unwrap();
    let kinds = [
        (
            vg.create(&lab.disks, Bytes(4 << 20)).map(|_| ()),
            ErrorKind::AlreadyExists,
        ),
        (
            lab.host.vg("nope").extend(&lab.disks).map(|_| ()),
            ErrorKind::NotFound,
        ),
        (
            lab.host
                .vg("vg1")
                .create(&lab.disks, Bytes(3 << 20))
                .map(|_| ()),
            ErrorKind::InvalidInput,
        ),
        (
            vg.change_tags(&["bad tag!".into()], &[]).map(|_| ()),
            ErrorKind::InvalidInput,
        ),
        (
            lab.host
                .pv_create(
                    &lab.disks[0],
                    &PvCreate {
                        uuid: None,
                        force: false,
                        allow_file: true,
                    },
                )
                .map(|_| ()),
            ErrorKind::AlreadyExists,
        ),
        (lab.host.pv_remove(&lab.disks[1]), ErrorKind::Refused),
    ];
    for (i, (result, kind)) in kinds.into_iter().enumerate() {
        let e = result.expect_err(&format!("case {i} succeeded"));
        assert_eq!(e.kind(), kind, "case {i}: {e}");
    }
    // Nothing changed: the VG is at its first commit, both PVs in it.
    let row = &lab.host.vgs(&[]).unwrap().rows[0];
    assert_eq!(row.get("vg_seqno").map(String::as_str), Some("1"));
    assert_eq!(row.get("pv_count").map(String::as_str), Some("2"));
}

/// Metadata that outgrows its area (lvm2 users meet it with many LVs or
/// tags) is out of room, not a system failure: a program can tell it from
/// an I/O error, and the VG stays at its last commit.
#[test]
fn metadata_that_outgrows_its_area_is_no_space() {
    let lab = Lab::new("full");
    lab.pvs();
    let vg = lab.host.vg("vg0");
    vg.create(&lab.disks, Bytes(4 << 20)).unwrap();
    // 1 MiB areas take about 500 KiB of text: 6000 tags of 100 bytes are more.
    let tags: Vec<String> = (0..6000).map(|i| format!("t{i:099}")).collect();
    let e = vg.change_tags(&tags, &[]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpace, "{e}");
    assert!(e.to_string().contains("exceeds the maximum"), "{e}");
    let row = &lab.host.vgs(&[]).unwrap().rows[0];
    assert_eq!(row.get("vg_seqno").map(String::as_str), Some("1"));
    assert_eq!(row.get("vg_tags").map(String::as_str), Some(""));
}

#[test]
fn bad_options_names_and_stack_files_have_their_kinds() {
    let e = Host::new(HostOptions {
        udev_wait: Duration::ZERO,
        scan_lvs: Some(false),
        ..HostOptions::default()
    })
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = cairn::host::parse_lv_size("+10G", false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        cairn::host::split_lv_name("vg0").unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    // A stack file that is not there is not found; one that does not
    // parse is bad input.
    let lab = Lab::new("stackfile");
    let missing = lab.dir.join("no-such-stack.toml");
    let Err(e) = lab.host.stack(&missing) else {
        panic!("no such file, yet a stack")
    };
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let bad = lab.dir.join("bad.toml");
    std::fs::write(&bad, "[[vg]]\nname = 5\n").unwrap();
    let Err(e) = lab.host.stack(&bad) else {
        panic!("does not parse, yet a stack")
    };
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}
