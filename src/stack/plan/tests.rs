//! The plan on the host: the lab's stack file (examples/lab.toml) against
//! what exists, written down by hand as the observers would report it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::*;
use crate::drbd::admin::MinorStatus;
use crate::drbd::state::State;
use crate::lvm::inspect::LvInfo;
use crate::lxc::ContainerConfig;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const EXTENT: u64 = 4 * MIB;

const LAB: &str = include_str!("../../../examples/lab.toml");

/// The lab stack, on a host named "labnode".
fn lab() -> Stack {
    lab_with(|t| t)
}

/// The lab stack with its text edited by `edit` first.
fn lab_with(edit: impl FnOnce(String) -> String) -> Stack {
    let text = edit(format!("[host]\nname = \"labnode\"\n\n{LAB}"));
    crate::stack::file::parse(Path::new("lab.toml"), &text)
        .unwrap_or_else(|e| panic!("the lab file is refused: {e}"))
}

fn vg_of<'s>(stack: &'s Stack, name: &str) -> &'s Vg {
    stack.vg(name).expect("VG in the lab file")
}

/// Each step's kind as `cairn plan --json` names it.
fn kinds(plan: &NodePlan) -> Vec<String> {
    plan.steps
        .iter()
        .map(|s| {
            serde_json::to_value(s).unwrap()["step"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// VG `name` with `lvs`, 4 MiB extents, `pvs` PVs and `free` bytes free.
fn vg_info(name: &str, pvs: usize, free: u64, lvs: Vec<LvInfo>) -> VgInfo {
    VgInfo {
        name: name.into(),
        extent_bytes: EXTENT,
        pv_count: pvs,
        size_bytes: 4 * GIB,
        free_bytes: Ok(free),
        lvs,
    }
}

fn hidden(name: &str, bytes: u64) -> LvInfo {
    LvInfo {
        visible: false,
        ..LvInfo::new(name, LvKind::Linear, bytes)
    }
}

/// VG1 as the lab's apply leaves it: cachedlv of `size`, cached by
/// `cachedata` (hidden as cachedata_cpool), its PVs members, `active` dm
/// devices.
fn vg1_seen(size: u64, active: &[&str]) -> VgSeen {
    VgSeen {
        pvs: vec![PvSeen::Member("VG1".into()), PvSeen::Member("VG1".into())],
        vg: Some(vg_info(
            "VG1",
            2,
            GIB,
            vec![
                LvInfo::new(
                    "cachedlv",
                    LvKind::Cache {
                        pool: "cachedata_cpool".into(),
                    },
                    size,
                ),
                LvInfo {
                    visible: false,
                    ..LvInfo::new(
                        "cachedata_cpool",
                        LvKind::CachePool {
                            mode: "writethrough".into(),
                            policy: "smq".into(),
                        },
                        400 * MIB,
                    )
                },
                hidden("cachedlv_corig", size),
            ],
        )),
        dm_names: names(active),
        suspended: BTreeSet::new(),
    }
}

/// DRBDVG2 with its thin pool of `size` (64 KiB chunks, 16 MiB of
/// metadata) holding the container's volume and a thin snapshot of it.
fn vg2_seen(size: u64, active: &[&str]) -> VgSeen {
    let thin = |name: &str, skip: bool| LvInfo {
        activation_skip: skip,
        ..LvInfo::new(
            name,
            LvKind::Thin {
                pool: "VPSthinpool".into(),
                origin: None,
            },
            500 * MIB,
        )
    };
    VgSeen {
        pvs: vec![PvSeen::Member("DRBDVG2".into())],
        vg: Some(vg_info(
            "DRBDVG2",
            1,
            GIB,
            vec![
                LvInfo::new(
                    "VPSthinpool",
                    LvKind::ThinPool {
                        metadata: "VPSthinpool_tmeta".into(),
                        chunk_bytes: 64 * 1024,
                    },
                    size,
                ),
                thin("my-container", false),
                thin("snap1", true),
                hidden("VPSthinpool_tmeta", 16 * MIB),
                hidden("VPSthinpool_tdata", size),
            ],
        )),
        dm_names: names(active),
        suspended: BTreeSet::new(),
    }
}

#[track_caller]
fn refused(r: Result<NodePlan>, part: &str) -> String {
    match r {
        Ok(p) => panic!("planned {:?}, expected a refusal with {part:?}", kinds(&p)),
        Err(StackError::Refused(crate::error::Refusal { message: m, .. })) => {
            assert!(m.contains(part), "{part:?} not in: {m}");
            m
        }
        Err(e) => panic!("not a refusal: {e}"),
    }
}

/// The plan of VG `name` of `stack` against `seen`, with no flag.
fn plan_vg(stack: &Stack, name: &str, seen: &VgSeen) -> NodePlan {
    vg(stack, vg_of(stack, name), seen, Allow::default()).unwrap()
}

/// Asserts that `plan` changes nothing and notes one thing, with `part`.
#[track_caller]
fn only_note(plan: &NodePlan, part: &str) {
    assert!(plan.steps.is_empty(), "{:?}", kinds(plan));
    assert_eq!(plan.notes.len(), 1, "{:?}", plan.notes);
    assert!(
        plan.notes[0].contains(part),
        "{part:?} not in: {}",
        plan.notes[0]
    );
}

fn activate(vg: &str, lvs: &[&str]) -> Step {
    Step::Activate {
        vg: vg.into(),
        lvs: lvs.iter().map(|l| l.to_string()).collect(),
    }
}

/// DRBDVG2's pool (on both names) and its volume up.
const VG2_UP: [&str; 3] = [
    "DRBDVG2-VPSthinpool",
    "DRBDVG2-VPSthinpool-tpool",
    "DRBDVG2-my--container",
];

// ---------------------------------------------------------------------------
// VGs.

#[test]
fn a_fresh_vg_is_built_pvs_first_then_the_vg_then_its_lvs_and_cache() {
    let stack = lab();
    let vg1 = vg_of(&stack, "VG1");
    let seen = VgSeen {
        pvs: vec![PvSeen::Blank, PvSeen::Blank],
        ..VgSeen::default()
    };
    let plan = vg(&stack, vg1, &seen, Allow::default()).unwrap();
    assert_eq!(
        kinds(&plan),
        [
            "pv-create",
            "pv-create",
            "vg-create",
            "lv-create",
            "cache-pool-create",
            "cache-attach"
        ]
    );
    assert_eq!(
        plan.steps[2],
        Step::VgCreate {
            vg: "VG1".into(),
            pvs: vec![PathBuf::from("/dev/md0"), PathBuf::from("/dev/md1")],
            extent_size: EXTENT,
        }
    );
    assert_eq!(
        plan.steps[3],
        Step::LvCreate {
            vg: "VG1".into(),
            lv: "cachedlv".into(),
            size: SizeSpec::Bytes(2 * GIB),
            pvs: vec![PathBuf::from("/dev/md0")],
        }
    );
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
}

#[test]
fn a_fresh_vg_takes_an_orphan_pv_without_pvcreate_and_makes_its_thin_pool() {
    let stack = lab();
    let plan = fresh_vg(vg_of(&stack, "DRBDVG2"), &[PvSeen::Orphan]).unwrap();
    assert_eq!(kinds(&plan), ["vg-create", "thin-pool-create"]);
    assert_eq!(
        plan.steps[1],
        Step::ThinPoolCreate {
            vg: "DRBDVG2".into(),
            pool: "VPSthinpool".into(),
            size: SizeSpec::Bytes(GIB),
            metadata: Some(16 * MIB),
            chunk: Some(64 * 1024),
            pvs: vec![],
        }
    );
}

#[test]
fn a_pv_that_is_another_vgs_or_in_use_or_missing_is_refused() {
    let stack = lab();
    let vg1 = vg_of(&stack, "VG1");
    let m = refused(
        fresh_vg(vg1, &[PvSeen::Blank, PvSeen::Member("other".into())]),
        "is a PV of VG other",
    );
    assert!(m.contains("/dev/md1"), "{m}");
    refused(
        fresh_vg(vg1, &[PvSeen::InUse("mounted".into()), PvSeen::Blank]),
        "cannot take /dev/md0",
    );
    refused(
        fresh_vg(vg1, &[PvSeen::Missing, PvSeen::Blank]),
        "does not exist",
    );
    refused(
        fresh_vg(vg1, &[PvSeen::MarkedUsed, PvSeen::Blank]),
        "marked used",
    );
}

/// Each refusal says what kind it is, for programs that act on it.
#[test]
fn refusals_carry_their_kind() {
    use crate::error::ErrorKind;
    let stack = lab();
    let vg1 = vg_of(&stack, "VG1");
    let kind = |r: Result<NodePlan>| r.map(|_| ()).unwrap_err().kind();
    for (seen, expected) in [
        (PvSeen::Missing, ErrorKind::NotFound),
        (PvSeen::InUse("mounted".into()), ErrorKind::Busy),
        (PvSeen::Member("other".into()), ErrorKind::Refused),
    ] {
        assert_eq!(kind(fresh_vg(vg1, &[seen, PvSeen::Blank])), expected);
    }
    let larger = vg1_seen(3 * GIB, &["VG1-cachedlv"]);
    assert_eq!(
        kind(vg(&stack, vg1, &larger, Allow::default())),
        ErrorKind::Refused
    );
}

#[test]
fn a_vg_that_is_as_the_file_says_and_up_needs_nothing() {
    let stack = lab();
    let seen = vg1_seen(2 * GIB, &["VG1-cachedlv"]);
    let plan = plan_vg(&stack, "VG1", &seen);
    assert_eq!(kinds(&plan), Vec::<String>::new());
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
}

#[test]
fn an_inactive_lv_is_activated() {
    let stack = lab();
    let seen = vg1_seen(2 * GIB, &[]);
    let plan = plan_vg(&stack, "VG1", &seen);
    assert_eq!(plan.steps, [activate("VG1", &["cachedlv"])]);
}

#[test]
fn an_lv_smaller_than_the_file_grows_to_whole_extents() {
    // 2049 MiB in the file: 2 GiB and one more (4 MiB) extent.
    let stack = lab_with(|t| t.replace("size = \"2G\"", "size = \"2049M\""));
    let seen = vg1_seen(2 * GIB, &["VG1-cachedlv"]);
    let plan = plan_vg(&stack, "VG1", &seen);
    assert_eq!(
        plan.steps,
        [Step::LvResize {
            vg: "VG1".into(),
            lv: "cachedlv".into(),
            from: 2 * GIB,
            to: 2 * GIB + EXTENT,
        }]
    );
}

#[test]
fn an_lv_larger_than_the_file_is_shrunk_only_when_allowed() {
    let stack = lab();
    let vg1 = vg_of(&stack, "VG1");
    let seen = vg1_seen(3 * GIB, &["VG1-cachedlv"]);
    let m = refused(
        vg(&stack, vg1, &seen, Allow::default()),
        "shrinking loses the data",
    );
    assert!(m.contains("--allow-shrink"), "{m}");
    let plan = vg(&stack, vg1, &seen, Allow { shrink: true }).unwrap();
    assert_eq!(
        plan.steps,
        [Step::LvResize {
            vg: "VG1".into(),
            lv: "cachedlv".into(),
            from: 3 * GIB,
            to: 2 * GIB,
        }]
    );
}

#[test]
fn an_lv_of_another_kind_under_the_files_name_is_refused() {
    let stack = lab();
    let mut seen = vg1_seen(2 * GIB, &["VG1-cachedlv"]);
    seen.vg.as_mut().unwrap().lvs[0].kind = Some(LvKind::Thin {
        pool: "p".into(),
        origin: None,
    });
    refused(
        vg(&stack, vg_of(&stack, "VG1"), &seen, Allow::default()),
        "VG1/cachedlv (line 12) is a thin LV, the file describes a plain LV",
    );
}

#[test]
fn an_uncached_lv_gets_its_cache_pool_and_attach() {
    let stack = lab();
    let seen = VgSeen {
        vg: Some(vg_info(
            "VG1",
            2,
            GIB,
            vec![LvInfo::new("cachedlv", LvKind::Linear, 2 * GIB)],
        )),
        ..vg1_seen(2 * GIB, &["VG1-cachedlv"])
    };
    let plan = plan_vg(&stack, "VG1", &seen);
    assert_eq!(kinds(&plan), ["cache-pool-create", "cache-attach"]);
}

#[test]
fn a_live_cache_in_another_mode_is_noted_not_changed() {
    let stack = lab();
    let mut seen = vg1_seen(2 * GIB, &["VG1-cachedlv"]);
    seen.vg.as_mut().unwrap().lvs[1].kind = Some(LvKind::CachePool {
        mode: "writeback".into(),
        policy: "smq".into(),
    });
    let plan = plan_vg(&stack, "VG1", &seen);
    only_note(
        &plan,
        "VG1/cachedlv caches writeback, the file says writethrough",
    );
}

#[test]
fn new_lvs_that_the_free_space_cannot_hold_are_refused_before_anything() {
    let stack = lab();
    // VG1 exists with no LV and 1 GiB free: cachedlv alone needs 2 GiB.
    let seen = VgSeen {
        vg: Some(vg_info("VG1", 2, GIB, vec![])),
        ..vg1_seen(0, &[])
    };
    let m = refused(
        vg(&stack, vg_of(&stack, "VG1"), &seen, Allow::default()),
        "VG VG1: cachedlv needs more than the 1.00g free",
    );
    assert!(m.starts_with("lab.toml:12: "), "{m}");
}

#[test]
fn an_inactive_thin_pool_comes_up_with_its_volumes_but_not_skipped_snapshots() {
    let stack = lab();
    let seen = vg2_seen(GIB, &[]);
    let plan = plan_vg(&stack, "DRBDVG2", &seen);
    assert_eq!(
        plan.steps,
        [activate("DRBDVG2", &["VPSthinpool", "my-container"])]
    );
    // Up (its -tpool layer and the volume): nothing to do.
    let seen = vg2_seen(GIB, &VG2_UP);
    let plan = plan_vg(&stack, "DRBDVG2", &seen);
    assert!(plan.steps.is_empty(), "{:?}", kinds(&plan));
}

#[test]
fn a_thin_pool_grows_to_the_file_and_a_larger_one_is_noted() {
    let stack = lab();
    let up = ["DRBDVG2-VPSthinpool-tpool", "DRBDVG2-my--container"];
    let plan = plan_vg(&stack, "DRBDVG2", &vg2_seen(512 * MIB, &up));
    assert_eq!(
        plan.steps,
        [Step::ThinPoolExtend {
            vg: "DRBDVG2".into(),
            pool: "VPSthinpool".into(),
            data: Some(GIB),
            metadata: None,
        }]
    );
    let plan = plan_vg(&stack, "DRBDVG2", &vg2_seen(2 * GIB, &up));
    only_note(&plan, "a pool cannot shrink");
}

#[test]
fn a_suspended_device_makes_every_lv_of_the_vg_go_through_activation() {
    let stack = lab();
    let mut seen = vg2_seen(GIB, &VG2_UP);
    seen.suspended = names(&["DRBDVG2-VPSthinpool-tpool", "VG1-cachedlv"]);
    let plan = plan_vg(&stack, "DRBDVG2", &seen);
    assert_eq!(
        plan.steps,
        [activate("DRBDVG2", &["VPSthinpool", "my-container"])]
    );
    // Only this VG's suspended devices are named.
    assert_eq!(
        plan.notes,
        ["VG DRBDVG2: DRBDVG2-VPSthinpool-tpool left suspended (a command stopped half-way): resumed"]
    );
}

// ---------------------------------------------------------------------------
// DRBD.

fn minor(role: &'static str, connection: &'static str, disk: &'static str) -> MinorStatus {
    MinorStatus::new(
        0,
        "r0",
        0,
        State {
            role,
            peer: "Unknown",
            connection,
            disk,
            peer_disk: "DUnknown",
            suspended: false,
            pause_after: false,
            pause_peer: false,
            pause_user: false,
        },
    )
}

/// Resource `name` configured as cairn writes it, with data that was up
/// to date, attached (StandAlone) in `role`.
fn up_seen(stack: &Stack, name: &str, role: &'static str) -> DrbdSeen {
    let (text, _) = drbd_config_text(stack, name).unwrap();
    DrbdSeen {
        config: Some(text),
        md: MdSeen::Present {
            was_up_to_date: true,
            just_created: false,
        },
        kernel: Some(minor(role, "StandAlone", "UpToDate")),
    }
}

#[test]
fn a_new_drbd_resource_gets_its_file_metadata_up_and_forced_primary() {
    let stack = lab();
    let r0 = stack.drbd("r0").unwrap();
    let seen = DrbdSeen {
        config: None,
        md: MdSeen::Blank,
        kernel: None,
    };
    let plan = drbd(&stack, r0, &seen, false).unwrap();
    assert_eq!(
        kinds(&plan),
        ["drbd-config", "drbd-create-md", "drbd-up", "drbd-primary"]
    );
    assert_eq!(
        plan.steps[3],
        Step::DrbdPrimary {
            resource: "r0".into(),
            force: true
        }
    );
    // A disk made in this run is blank whatever was read from it.
    let seen = DrbdSeen {
        md: MdSeen::Foreign("old data".into()),
        ..seen
    };
    assert_eq!(
        kinds(&drbd(&stack, r0, &seen, true).unwrap())[1],
        "drbd-create-md"
    );
}

#[test]
fn a_drbd_resource_that_is_up_and_primary_needs_nothing() {
    let stack = lab();
    let seen = up_seen(&stack, "r0", "Primary");
    let plan = drbd(&stack, stack.drbd("r0").unwrap(), &seen, false).unwrap();
    assert!(plan.steps.is_empty(), "{:?}", kinds(&plan));
}

#[test]
fn a_drbd_resource_with_a_peer_is_brought_up_again_when_standalone_and_not_forced() {
    let stack = lab();
    let seen = up_seen(&stack, "r0-U", "Secondary");
    let plan = drbd(&stack, stack.drbd("r0-U").unwrap(), &seen, false).unwrap();
    assert_eq!(
        plan.steps,
        [
            Step::DrbdUp {
                resource: "r0-U".into()
            },
            Step::DrbdPrimary {
                resource: "r0-U".into(),
                force: false
            }
        ]
    );
}

#[test]
fn a_drbd_file_not_written_by_cairn_or_a_foreign_disk_is_refused() {
    let stack = lab();
    let r0 = stack.drbd("r0").unwrap();
    let seen = DrbdSeen {
        config: Some("resource r0 { }\n".into()),
        md: MdSeen::Blank,
        kernel: None,
    };
    refused(drbd(&stack, r0, &seen, false), "was not written by cairn");
    let seen = DrbdSeen {
        config: None,
        md: MdSeen::Foreign("/dev/x is an LVM PV".into()),
        kernel: None,
    };
    refused(
        drbd(&stack, r0, &seen, false),
        "will not put metadata on /dev/mapper/DRBDVG-DRBDLV1",
    );
    let seen = DrbdSeen {
        md: MdSeen::NoDisk,
        ..seen
    };
    refused(drbd(&stack, r0, &seen, false), "does not exist");
}

// ---------------------------------------------------------------------------
// Containers.

fn lab_container(stack: &Stack) -> &Container {
    &stack.containers[0]
}

const DEVICE: &str = "/dev/DRBDVG2/my-container";

fn ext4(label: &str, bytes: u64) -> crate::fs::Filesystem {
    crate::fs::Filesystem {
        kind: "ext4",
        block_size: 4096,
        blocks_count: bytes / 4096,
        free_blocks_count: 0,
        uuid: "00000000-0000-0000-0000-000000000000".into(),
        label: label.into(),
    }
}

fn config(rootfs: &str) -> ContainerConfig {
    ContainerConfig {
        name: "my-container".into(),
        rootfs_path: Some(format!("lvm:{rootfs}")),
        rootfs_device: Some(PathBuf::from(rootfs)),
        start_auto: true,
        start_order: None,
    }
}

/// The lab's container as apply leaves it: 500 MiB (whole 4 MiB extents),
/// its filesystem, config and running.
fn made() -> ContainerSeen {
    ContainerSeen {
        round_to: EXTENT,
        volume_bytes: Some(500 * MIB),
        active: true,
        unwritten: false,
        fs: Some(ext4("my-container", 500 * MIB)),
        config: Some(config(DEVICE)),
        state: Some(crate::lxc::State::Running),
    }
}

#[test]
fn a_new_container_is_made_whole_and_started() {
    let stack = lab();
    let plan = container(lab_container(&stack), &ContainerSeen::default(), Resume::No).unwrap();
    assert_eq!(
        kinds(&plan),
        [
            "thin-create",
            "mkfs",
            "populate",
            "lxc-config",
            "container-start"
        ]
    );
    assert_eq!(
        plan.steps[0],
        Step::ThinCreate {
            vg: "DRBDVG2".into(),
            pool: "VPSthinpool".into(),
            lv: "my-container".into(),
            size: 500 * MIB,
        }
    );
}

#[test]
fn a_container_that_is_made_and_running_needs_nothing() {
    let stack = lab();
    let plan = container(lab_container(&stack), &made(), Resume::No).unwrap();
    assert!(plan.steps.is_empty(), "{:?}", kinds(&plan));
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    // Stopped: started again.
    let seen = ContainerSeen {
        state: Some(crate::lxc::State::Stopped),
        ..made()
    };
    let plan = container(lab_container(&stack), &seen, Resume::No).unwrap();
    assert_eq!(kinds(&plan), ["container-start"]);
}

#[test]
fn a_container_volume_measures_against_the_thin_rounding() {
    let stack = lab();
    // Chunks of 6 MiB on 4 MiB extents: a new 500 MiB volume was made
    // 504 MiB, and that is what the file's 500M means.
    let seen = ContainerSeen {
        round_to: 8 * MIB,
        volume_bytes: Some(504 * MIB),
        fs: Some(ext4("my-container", 504 * MIB)),
        ..made()
    };
    let plan = container(lab_container(&stack), &seen, Resume::No).unwrap();
    assert!(plan.steps.is_empty(), "{:?}", kinds(&plan));
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
}

#[test]
fn a_smaller_container_volume_grows_with_its_filesystem() {
    let stack = lab();
    let seen = ContainerSeen {
        volume_bytes: Some(400 * MIB),
        fs: Some(ext4("my-container", 400 * MIB)),
        ..made()
    };
    let plan = container(lab_container(&stack), &seen, Resume::No).unwrap();
    assert_eq!(
        plan.steps,
        [
            Step::LvResize {
                vg: "DRBDVG2".into(),
                lv: "my-container".into(),
                from: 400 * MIB,
                to: 500 * MIB,
            },
            Step::Resize2fs {
                container: "my-container".into(),
                device: PathBuf::from(DEVICE),
            }
        ]
    );
    // Larger: noted, never shrunk.
    let seen = ContainerSeen {
        volume_bytes: Some(600 * MIB),
        fs: Some(ext4("my-container", 600 * MIB)),
        ..made()
    };
    let plan = container(lab_container(&stack), &seen, Resume::No).unwrap();
    assert!(plan.steps.is_empty(), "{:?}", kinds(&plan));
    assert!(
        plan.notes[0].contains("does not shrink"),
        "{:?}",
        plan.notes
    );
}

#[test]
fn a_half_made_container_is_made_again_when_resumed() {
    let stack = lab();
    // Cut off after its volume: nothing written, no config.
    let unwritten = ContainerSeen {
        unwritten: true,
        fs: None,
        config: None,
        state: None,
        ..made()
    };
    let plan = container(lab_container(&stack), &unwritten, Resume::Unfinished).unwrap();
    assert_eq!(
        kinds(&plan),
        ["mkfs", "populate", "lxc-config", "container-start"]
    );
    assert_eq!(
        plan.steps[0],
        Step::Mkfs {
            container: "my-container".into(),
            device: PathBuf::from(DEVICE),
            mkfs_cut: false,
        }
    );
    // Cut off after its mkfs: cairn's own label.
    let labelled = ContainerSeen {
        unwritten: false,
        fs: Some(ext4("my-container", 500 * MIB)),
        ..unwritten.clone()
    };
    let plan = container(lab_container(&stack), &labelled, Resume::Unfinished).unwrap();
    assert_eq!(kinds(&plan)[0], "mkfs");
    // Cut inside mkfs: no filesystem, written blocks, still ours.
    let cut = ContainerSeen {
        fs: None,
        ..labelled.clone()
    };
    let plan = container(lab_container(&stack), &cut, Resume::MkfsCut).unwrap();
    assert_eq!(
        plan.steps[0],
        Step::Mkfs {
            container: "my-container".into(),
            device: PathBuf::from(DEVICE),
            mkfs_cut: true,
        }
    );
}

#[test]
fn a_resumed_container_whose_volume_holds_something_else_is_refused() {
    let stack = lab();
    let foreign = ContainerSeen {
        fs: Some(ext4("somebody", 500 * MIB)),
        config: None,
        state: None,
        ..made()
    };
    let m = refused(
        container(lab_container(&stack), &foreign, Resume::Unfinished),
        "now holds something else (an ext4 labelled \"somebody\")",
    );
    assert!(m.starts_with("container my-container (line "), "{m}");
    // Not resumed, no filesystem and no config: somebody's volume.
    let bare = ContainerSeen {
        fs: None,
        ..foreign
    };
    refused(
        container(lab_container(&stack), &bare, Resume::No),
        "exists with no filesystem and no LXC config",
    );
}

#[test]
fn a_container_name_lxc_has_for_another_rootfs_is_refused() {
    let stack = lab();
    // No volume, but LXC has a container of that name.
    let seen = ContainerSeen {
        config: Some(config("/dev/other/vol")),
        ..ContainerSeen::default()
    };
    refused(
        container(lab_container(&stack), &seen, Resume::No),
        "LXC has a container of that name",
    );
    // A volume, and a config of that name on another device.
    let seen = ContainerSeen {
        config: Some(config("/dev/other/vol")),
        ..made()
    };
    refused(
        container(lab_container(&stack), &seen, Resume::No),
        "another container of that name exists",
    );
}
