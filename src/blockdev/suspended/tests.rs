//! The graph on a sysfs copy in a temporary directory, shaped as the lab
//! stack's: md RAID on loop devices, the cached LV, DRBDLV1 under DRBD
//! (which registers no sysfs links), the stacked pool and a thin LV on
//! /dev/drbd10.

use super::*;
use std::os::unix::fs::symlink;

struct FakeSys {
    root: PathBuf,
}

impl FakeSys {
    fn new(tag: &str) -> FakeSys {
        let root = std::env::temp_dir().join(format!("cairn-sysfs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("dev/block")).unwrap();
        FakeSys { root }
    }

    /// A device `name` (`dm_name` for a dm device) standing on `slaves`.
    fn device(&self, name: &str, devno: Devno, dm_name: Option<&str>, slaves: &[&str]) {
        let dir = self.root.join("block").join(name);
        std::fs::create_dir_all(dir.join("slaves")).unwrap();
        std::fs::create_dir_all(dir.join("holders")).unwrap();
        std::fs::write(dir.join("dev"), format!("{}:{}\n", devno.0, devno.1)).unwrap();
        if let Some(dm) = dm_name {
            std::fs::create_dir_all(dir.join("dm")).unwrap();
            std::fs::write(dir.join("dm/name"), format!("{dm}\n")).unwrap();
            std::fs::write(dir.join("dm/suspended"), "0\n").unwrap();
        }
        symlink(
            format!("../../block/{name}"),
            self.root.join(format!("dev/block/{}:{}", devno.0, devno.1)),
        )
        .unwrap();
        for s in slaves {
            symlink(format!("../../{s}"), dir.join("slaves").join(s)).unwrap();
            symlink(
                format!("../../{name}"),
                self.root.join("block").join(s).join("holders").join(name),
            )
            .unwrap();
        }
    }

    fn suspend(&self, name: &str) {
        std::fs::write(
            self.root.join("block").join(name).join("dm/suspended"),
            "1\n",
        )
        .unwrap();
    }
}

impl Drop for FakeSys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

const LOOP0: Devno = (7, 0);
const MD0: Devno = (9, 0);
const CACHEDLV: Devno = (253, 0);
const DRBDLV1: Devno = (253, 1);
const DRBD0: Devno = (147, 0);
const DRBD10: Devno = (147, 10);
const TPOOL: Devno = (253, 2);
const THIN: Devno = (253, 3);
const ALL: [Devno; 8] = [LOOP0, MD0, CACHEDLV, DRBDLV1, DRBD0, DRBD10, TPOOL, THIN];

fn lab_stack(tag: &str) -> FakeSys {
    let sys = FakeSys::new(tag);
    sys.device("loop0", LOOP0, None, &[]);
    sys.device("md0", MD0, None, &["loop0"]);
    sys.device("dm-0", CACHEDLV, Some("VG1-cachedlv"), &["md0"]);
    sys.device("dm-1", DRBDLV1, Some("DRBDVG-DRBDLV1"), &["dm-0"]);
    // DRBD holds DRBDLV1 and drbd0 without sysfs links.
    sys.device("drbd0", DRBD0, None, &[]);
    sys.device("drbd10", DRBD10, None, &[]);
    sys.device(
        "dm-2",
        TPOOL,
        Some("DRBDVG2-VPSthinpool-tpool"),
        &["drbd10"],
    );
    sys.device("dm-3", THIN, Some("DRBDVG2-vps01"), &["dm-2"]);
    sys
}

fn answers(sys: &FakeSys) -> Vec<Option<String>> {
    let mut graph = SysfsGraph::at(&sys.root);
    ALL.iter()
        .map(|&d| graph.suspended_under_devno(d))
        .collect()
}

#[test]
fn nothing_suspended_blocks_nothing() {
    let sys = lab_stack("none");
    assert_eq!(answers(&sys), vec![None; ALL.len()]);
}

#[test]
fn a_suspended_lv_under_drbd_blocks_everything_above_drbd() {
    let sys = lab_stack("under-drbd");
    sys.suspend("dm-1");
    let lv = Some("DRBDVG-DRBDLV1".to_owned());
    // Through slaves for the dm device itself; through "any unheld
    // suspended dm device" for the DRBD devices and what stands on them.
    assert_eq!(
        answers(&sys),
        vec![
            None,
            None,
            None,
            lv.clone(),
            lv.clone(),
            lv.clone(),
            lv.clone(),
            lv
        ]
    );
}

#[test]
fn a_suspended_device_above_drbd_does_not_block_drbd() {
    let sys = lab_stack("above-drbd");
    sys.suspend("dm-3");
    let thin = Some("DRBDVG2-vps01".to_owned());
    // The thin LV is unheld and suspended, but it stands on drbd10: it
    // cannot be drbd10's backing disk. drbd0 is not under it either, but
    // sysfs cannot tell (DRBD registers no links): it may be.
    assert_eq!(
        answers(&sys),
        vec![None, None, None, None, thin.clone(), None, None, thin]
    );
}

#[test]
fn one_graph_answers_as_a_fresh_graph_per_question() {
    let sys = lab_stack("memo");
    sys.suspend("dm-0");
    let shared = answers(&sys);
    let fresh: Vec<_> = ALL
        .iter()
        .map(|&d| SysfsGraph::at(&sys.root).suspended_under_devno(d))
        .collect();
    assert_eq!(shared, fresh);
    let cached = Some("VG1-cachedlv".to_owned());
    assert_eq!(shared[2], cached);
    assert_eq!(
        shared[7], cached,
        "thin LV -> drbd10 -> DRBDLV1 -> cachedlv"
    );
}
