//! Thin transactions on a simulated kernel, over a VG on image files: the
//! transaction id moves by one per batch of messages, an interrupted
//! transaction is completed, a failed one is undone, a plan is what apply
//! does.

use super::*;
use crate::dm::sim::Fault;
use crate::lvm::thin_lab::Lab;

const TPOOL: &str = "vg-pool-tpool";

/// The messages that create thin device `id` at transaction id `from`.
fn create_batch(id: u64, from: u64) -> [String; 3] {
    [
        format!("message {TPOOL} delete {id}"),
        format!("message {TPOOL} create_thin {id}"),
        format!("message {TPOOL} set_transaction_id {from} {}", from + 1),
    ]
}

#[test]
fn each_thin_lv_moves_the_transaction_id_by_exactly_one() {
    let lab = Lab::new("tid");
    lab.thin("t1", Run::Apply).unwrap();
    assert_eq!(lab.messages(), create_batch(1, 0));
    let pool = lab.sim.pool(TPOOL).unwrap();
    assert_eq!((pool.transaction_id, pool.thins.len()), (1, 1));
    assert_eq!(lab.pool_meta(), (1, 0), "metadata level, queue empty");
    assert!(lab.sim.device("vg-t1").unwrap().live.is_some());
    // The pool came up under its -tpool layout (transaction id 1).
    assert!(lab.sim.device("vg-pool_tmeta").is_some());

    lab.sim.clear_calls();
    lab.thin("t2", Run::Apply).unwrap();
    let sent = lab.messages();
    assert_eq!(
        sent.iter()
            .filter(|m| m.contains("set_transaction_id"))
            .collect::<Vec<_>>(),
        ["message vg-pool-tpool set_transaction_id 1 2"]
    );
    assert_eq!(lab.sim.pool(TPOOL).unwrap().transaction_id, 2);
    assert_eq!(lab.pool_meta(), (2, 0));
}

#[test]
fn a_snapshot_suspends_its_active_origin_around_create_snap() {
    let lab = Lab::new("snap");
    lab.thin("t1", Run::Apply).unwrap();
    lab.sim.clear_calls();
    lab.create(
        "s1",
        Request::Snapshot {
            origin: "t1".into(),
        },
        Run::Apply,
    )
    .unwrap();
    let calls = lab.sim.calls();
    let at = |c: &str| calls.iter().position(|x| x == c).unwrap();
    assert!(at("suspend vg-t1") < at("message vg-pool-tpool create_snap 2 1"));
    assert!(at("message vg-pool-tpool create_snap 2 1") < at("resume vg-t1"));
    assert!(at("message vg-pool-tpool set_transaction_id 1 2") < at("resume vg-t1"));
    assert!(!lab.sim.device("vg-t1").unwrap().suspended);
    assert_eq!(lab.pool_meta(), (2, 0));
}

#[test]
fn removing_a_thin_lv_deletes_its_device_and_moves_the_id() {
    let lab = Lab::new("remove");
    lab.thin("t1", Run::Apply).unwrap();
    lab.sim.set_opens("vg-t1", 1);
    let e = lab.remove("t1").unwrap_err();
    assert!(e.to_string().contains("in use"), "{e}");
    assert_eq!(lab.pool_meta(), (1, 0), "refused before any change");
    lab.sim.set_opens("vg-t1", 0);
    lab.remove("t1").unwrap();
    assert!(lab.sim.device("vg-t1").is_none());
    let pool = lab.sim.pool(TPOOL).unwrap();
    assert_eq!((pool.transaction_id, pool.thins.len()), (2, 0));
    assert_eq!(lab.pool_meta(), (2, 0));
    assert!(lab.vg().lv("t1").is_none());
}

#[test]
fn a_failed_set_transaction_id_undoes_the_create_and_restores_the_metadata() {
    let lab = Lab::new("undo");
    lab.thin("t1", Run::Apply).unwrap();
    let ids_before = lab.sim.pool(TPOOL).unwrap().thins;
    lab.sim
        .fail(Fault::op("message").containing("set_transaction_id"));
    let e = lab.thin("t2", Run::Apply).unwrap_err();
    assert!(e.to_string().contains("the metadata was restored"), "{e}");
    let pool = lab.sim.pool(TPOOL).unwrap();
    assert_eq!(pool.transaction_id, 1, "kernel unchanged");
    assert_eq!(pool.thins, ids_before, "create_thin 2 undone by delete 2");
    assert_eq!(lab.pool_meta(), (1, 0), "metadata as before");
    assert!(lab.vg().lv("t2").is_none());
    // The next try works, and still moves the id by one.
    lab.thin("t2", Run::Apply).unwrap();
    assert_eq!(lab.sim.pool(TPOOL).unwrap().transaction_id, 2);
}

#[test]
fn a_kernel_that_disagrees_with_the_metadata_is_left_alone() {
    let lab = Lab::new("mismatch");
    lab.thin("t1", Run::Apply).unwrap();
    lab.sim.with_pool(TPOOL, |p| p.transaction_id = 7);
    let before = lab.sim.snapshot();
    lab.sim.clear_calls();
    let e = lab.thin("t2", Run::Apply).unwrap_err();
    assert!(
        matches!(
            e,
            ThinError::TransactionMismatch {
                kernel: 7,
                metadata: 1,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(lab.sim.snapshot(), before);
    assert!(lab.sim.calls().is_empty());
    assert_eq!(lab.pool_meta(), (1, 0));
}

/// Commits the metadata of a thin LV `name` with its create queued, as a
/// run stopped after commit A leaves it.
fn queue_create(lab: &Lab, name: &str, device_id: u64) {
    let mut change = ops::begin_change(&lab.env, "vg", &[]).unwrap();
    let vg = &mut change.metadata.vg;
    let tid = thin_pool_seg(vg, "pool").unwrap().0;
    let lv = ops::new_lv(
        name,
        vec![Segment {
            start_extent: 0,
            extent_count: 2,
            reshape_count: None,
            type_flags: vec![],
            tags: vec![],
            kind: SegmentKind::Thin {
                thin_pool: "pool".into(),
                transaction_id: tid,
                device_id,
                external_origin: None,
                origin: None,
                merge: None,
            },
            extra: Default::default(),
        }],
    )
    .unwrap();
    vg.lvs.push(lv);
    queue_message(vg, "pool", tid, ThinMessage::Create(name.into()));
    let _ = change.commit(&lab.env, &[]).unwrap();
}

/// A pool with thin LV t1, and t2's create stopped after commit A, the
/// kernel having taken `sent` of its messages; then the queue completed.
fn stopped(tag: &str, sent: &[&str]) -> Lab {
    let lab = Lab::new(tag);
    lab.thin("t1", Run::Apply).unwrap();
    queue_create(&lab, "t2", 2);
    for m in sent {
        lab.sim.message(TPOOL, m).unwrap();
    }
    lab.sim.clear_calls();
    complete_queued_in(Kernel::Given(&lab.sim), &lab.env, &lab.dev, "vg", "pool").unwrap();
    lab
}

#[test]
fn new_commands_refuse_a_pool_with_queued_messages() {
    let lab = Lab::new("queued");
    lab.thin("t1", Run::Apply).unwrap();
    queue_create(&lab, "t2", 2);
    assert_eq!(lab.pool_meta(), (2, 1));
    // New commands refuse the pool until the queue is done.
    let e = lab.thin("t3", Run::Apply).unwrap_err();
    assert!(e.to_string().contains("queued"), "{e}");
    assert_eq!(e.kind(), ErrorKind::Refused);
}

#[test]
fn a_create_stopped_after_commit_a_is_replayed_delete_first_on_the_next_activation() {
    // Whether or not the stopped run had sent create_thin (never
    // set_transaction_id), the replay is the same: "delete 2" first (its
    // ENODATA, when the kernel never had the id, tolerated), then the create.
    for (tag, sent) in [("unsent", &[][..]), ("replay", &["create_thin 2"][..])] {
        let lab = stopped(tag, sent);
        assert_eq!(lab.messages(), create_batch(2, 1), "{tag}");
        let pool = lab.sim.pool(TPOOL).unwrap();
        assert_eq!((pool.transaction_id, pool.thins.len()), (2, 2), "{tag}");
        assert_eq!(lab.pool_meta(), (2, 0), "{tag}");
    }
}

#[test]
fn a_transaction_the_kernel_finished_before_the_stop_only_empties_the_queue() {
    let lab = stopped("level", &["create_thin 2", "set_transaction_id 1 2"]);
    assert!(lab.messages().is_empty(), "{:?}", lab.messages());
    assert_eq!(lab.sim.pool(TPOOL).unwrap().transaction_id, 2);
    assert_eq!(lab.pool_meta(), (2, 0));
}

/// Actions as printed, with uuids (new for each LV made) masked.
fn printed(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .map(|a| {
            a.to_string()
                .split(' ')
                .map(|w| if w.starts_with("LVM-") { "LVM-*" } else { w })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn a_plan_is_what_apply_does_and_changes_nothing() {
    let lab = Lab::new("plan");
    for lv in ["t1", "t2"] {
        let kernel = lab.sim.snapshot();
        let meta = lab.vg();
        let plan = lab.thin(lv, Run::PlanOnly).unwrap();
        assert_eq!(
            lab.sim.snapshot(),
            kernel,
            "{lv}: the plan changed the kernel"
        );
        assert_eq!(lab.vg(), meta, "{lv}: the plan changed the metadata");
        let done = lab.thin(lv, Run::Apply).unwrap();
        assert_eq!(printed(&plan), printed(&done), "{lv}");
        // The new LV's own device comes up with its uuid (the plan's
        // own LV: each run makes a new one), not a placeholder.
        let vg_id = lab.vg().id.replace('-', "");
        assert!(
            plan.iter().any(|a| a
                .to_string()
                .starts_with(&format!("dm create vg-{lv} uuid LVM-{vg_id}"))),
            "{plan:?}"
        );
    }
}

/// A PV that is itself a dm device (an LV of a lower VG, LUKS, multipath)
/// with a low minor: the plan's copy of the kernel must not give its
/// number to a device it makes (once, the pool's metadata then led back to
/// itself and the plan overflowed the stack).
#[test]
fn a_plan_on_a_pv_that_is_a_dm_device_numbers_around_it() {
    let lab = Lab::new("dm-pv");
    let disk = lab.dir.join("a.img");
    lab.sim.add_disk(&disk, crate::dm::sim::MAJOR, 0);
    let plan = lab.thin("t1", Run::PlanOnly).unwrap();
    let done = lab.thin("t1", Run::Apply).unwrap();
    assert_eq!(printed(&plan), printed(&done));
    let numbers: Vec<(u32, u32)> = lab
        .sim
        .snapshot()
        .devices
        .values()
        .map(|d| (d.major, d.minor))
        .collect();
    assert!(
        !numbers.contains(&(crate::dm::sim::MAJOR, 0)),
        "{numbers:?}"
    );
}

#[test]
fn refusals_say_what_kind_they_are() {
    let lab = Lab::new("kinds");
    lab.thin("t1", Run::Apply).unwrap();
    let volume = |pool: &str, bytes: u64| Request::Volume {
        pool: pool.into(),
        size_bytes: crate::units::Bytes(bytes),
    };
    let kind = |r: Result<Vec<Action>>| r.unwrap_err().kind();
    assert_eq!(kind(lab.thin("t1", Run::Apply)), ErrorKind::AlreadyExists);
    let e = lab
        .create("t2", volume("nosuch", 8 << 20), Run::Apply)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.to_string(), "VG vg has no LV named nosuch");
    let not_a_pool = lab.create("t2", volume("t1", 8 << 20), Run::Apply);
    assert_eq!(kind(not_a_pool), ErrorKind::InvalidInput);
    let empty = lab.create("t2", volume("pool", 0), Run::Apply);
    assert_eq!(kind(empty), ErrorKind::InvalidInput);
    let origin = Request::Snapshot {
        origin: "nosuch".into(),
    };
    assert_eq!(
        kind(lab.create("s", origin, Run::Apply)),
        ErrorKind::NotFound
    );
    // A kernel step that failed, undone: the kernel's failure, not a refusal.
    lab.sim
        .fail(Fault::op("message").containing("set_transaction_id"));
    let e = lab.thin("t2", Run::Apply).unwrap_err();
    assert!(e.to_string().ends_with("the metadata was restored"), "{e}");
    assert_eq!(e.kind(), ErrorKind::System);
}
