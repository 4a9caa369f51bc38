//! Batches of thin snapshots on a simulated kernel: one transaction for
//! all, every origin suspended at once inside the caller's window, and
//! nothing changed by a refusal or a failure.

use std::cell::RefCell;

use super::*;
use crate::lvm::thin::Window;

/// A window that does nothing.
fn no_window(_: Window) -> std::result::Result<(), String> {
    Ok(())
}
use crate::dm::sim::Fault;
use crate::lvm::thin_lab::Lab;
use crate::meta::model::{SegmentKind, VolumeGroup};

const TPOOL: &str = "vg-pool-tpool";

fn snap(origin: &str, name: &str) -> NewThinSnapshot {
    NewThinSnapshot {
        origin: origin.into(),
        name: name.into(),
        tags: vec!["cairn:container=".to_owned() + origin],
        activate: false,
        frozen: true,
    }
}

/// A lab with active thin LVs t1, t2, t3 (device ids 1-3, transaction id 3).
fn lab_with_three(tag: &str) -> Lab {
    let lab = Lab::new(tag);
    for t in ["t1", "t2", "t3"] {
        lab.thin(t, Run::Apply).unwrap();
    }
    lab.sim.clear_calls();
    lab
}

fn batch(
    lab: &Lab,
    snaps: &[NewThinSnapshot],
    window: &mut WindowHook<'_>,
    run: Run,
) -> Result<Vec<Action>> {
    create(
        Kernel::Given(&lab.sim),
        &lab.env,
        &lab.dev,
        "vg",
        snaps,
        window,
        run,
    )
}

fn thin_origin(vg: &VolumeGroup, lv: &str) -> Option<String> {
    match vg.lv(lv)?.segments.first().map(|s| &s.kind) {
        Some(SegmentKind::Thin { origin, .. }) => origin.clone(),
        _ => None,
    }
}

#[test]
fn a_batch_is_one_transaction_with_every_origin_suspended_inside_the_window() {
    let lab = lab_with_three("batch");
    let seqno = lab.vg().seqno;
    // What the window saw: the kernel calls made before each edge.
    let edges = RefCell::new(Vec::new());
    let mut window = |w: Window| {
        edges.borrow_mut().push((w, lab.sim.calls().len()));
        Ok(())
    };
    let snaps = [snap("t1", "s1"), snap("t2", "s2"), snap("t3", "s3")];
    batch(&lab, &snaps, &mut window, Run::Apply).unwrap();

    let calls = lab.sim.calls();
    let messages: Vec<&str> = calls
        .iter()
        .filter(|c| c.starts_with("message "))
        .map(String::as_str)
        .collect();
    let mut expected = Vec::new();
    for (id, origin) in [(4, 1), (5, 2), (6, 3)] {
        expected.push(format!("message {TPOOL} delete {id}"));
        expected.push(format!("message {TPOOL} create_snap {id} {origin}"));
    }
    expected.push(format!("message {TPOOL} set_transaction_id 3 4"));
    assert_eq!(messages, expected, "one id step for the batch");
    // The origins are suspended together, before the first message, with
    // their file systems' freeze skipped (the caller froze them); resumed
    // after the last message.
    let at = |c: &str| {
        calls
            .iter()
            .position(|x| x == c)
            .unwrap_or_else(|| panic!("{c} not in {calls:?}"))
    };
    let first_message = calls
        .iter()
        .position(|c| c.starts_with("message "))
        .unwrap();
    let last_message = calls
        .iter()
        .rposition(|c| c.starts_with("message "))
        .unwrap();
    for t in ["t1", "t2", "t3"] {
        assert!(
            at(&format!("suspend vg-{t} (frozen)")) < first_message,
            "{calls:?}"
        );
        assert!(at(&format!("resume vg-{t}")) > last_message, "{calls:?}");
    }
    // The window opened before the first suspend and closed after the
    // last resume.
    let edges = edges.into_inner();
    assert_eq!(
        edges.iter().map(|e| e.0).collect::<Vec<_>>(),
        [Window::Open, Window::Close]
    );
    let first_suspend = calls
        .iter()
        .position(|c| c.starts_with("suspend "))
        .unwrap();
    let last_resume = calls
        .iter()
        .rposition(|c| c.starts_with("resume vg-t"))
        .unwrap();
    assert!(
        edges[0].1 <= first_suspend && edges[1].1 > last_resume,
        "{edges:?} {calls:?}"
    );

    // Two commits (A and B); the new LVs with their origins, tags and
    // activation skip; none activated; the kernel has the devices.
    let vg = lab.vg();
    assert_eq!(vg.seqno, seqno + 2);
    for (s, o) in [("s1", "t1"), ("s2", "t2"), ("s3", "t3")] {
        assert_eq!(thin_origin(&vg, s).as_deref(), Some(o));
        let lv = vg.lv(s).unwrap();
        assert_eq!(lv.tags, [format!("cairn:container={o}")]);
        assert!(lv.flags.iter().any(|f| f == "ACTIVATION_SKIP"));
        assert!(lab.sim.device(&format!("vg-{s}")).is_none());
    }
    let pool = lab.sim.pool(TPOOL).unwrap();
    assert_eq!(pool.transaction_id, 4);
    assert_eq!(pool.thins.len(), 6);
    assert_eq!(lab.pool_meta(), (4, 0));
}

#[test]
fn bad_batches_are_refused_before_anything_changes() {
    let lab = lab_with_three("refused");
    let seqno = lab.vg().seqno;
    let mut bad_tag = snap("t1", "s1");
    bad_tag.tags = vec!["no spaces allowed".into()];
    let cases: Vec<(Vec<NewThinSnapshot>, ErrorKind, &str)> = vec![
        (vec![], ErrorKind::InvalidInput, "no snapshot"),
        (
            vec![snap("t1", "s1"), snap("t2", "s1")],
            ErrorKind::InvalidInput,
            "named twice",
        ),
        (
            vec![snap("t1", "t2")],
            ErrorKind::AlreadyExists,
            "already has an LV named t2",
        ),
        (
            vec![snap("pool", "s1")],
            ErrorKind::InvalidInput,
            "not a thin LV",
        ),
        (
            vec![snap("nosuch", "s1")],
            ErrorKind::NotFound,
            "no LV named nosuch",
        ),
        (vec![bad_tag], ErrorKind::InvalidInput, "tag"),
    ];
    for (snaps, kind, words) in cases {
        let opened = RefCell::new(false);
        let mut window = |_: Window| {
            *opened.borrow_mut() = true;
            Ok(())
        };
        let e = batch(&lab, &snaps, &mut window, Run::Apply).unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.to_string().contains(words), "{words:?} not in: {e}");
        assert!(!opened.into_inner(), "the window opened for a refusal: {e}");
    }
    assert_eq!(lab.vg().seqno, seqno, "the metadata changed");
    assert!(lab.sim.calls().is_empty(), "{:?}", lab.sim.calls());
}

#[test]
fn a_window_that_will_not_open_changes_nothing_and_is_closed() {
    let lab = lab_with_three("no-window");
    let before = lab.vg();
    let edges = RefCell::new(Vec::new());
    let mut window = |w: Window| {
        edges.borrow_mut().push(w);
        match w {
            Window::Open => Err("container c1 would not freeze".to_owned()),
            Window::Close => Ok(()),
        }
    };
    let e = batch(&lab, &[snap("t1", "s1")], &mut window, Run::Apply).unwrap_err();
    assert!(e.to_string().contains("would not freeze"), "{e}");
    assert_eq!(edges.into_inner(), [Window::Open, Window::Close]);
    let calls = lab.sim.calls();
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("suspend ") || c.starts_with("message ")),
        "{calls:?}"
    );
    let after = lab.vg();
    assert!(after.lv("s1").is_none());
    assert_eq!(lab.pool_meta(), (3, 0));
    assert_eq!(after.seqno, before.seqno + 2, "commit A, then the restore");
}

#[test]
fn a_failed_suspend_resumes_the_origins_already_suspended_and_undoes_the_batch() {
    let lab = lab_with_three("suspend-fails");
    lab.sim.fail(Fault::op("suspend").on("vg-t2"));
    let mut closed = false;
    let mut window = |w: Window| {
        closed |= w == Window::Close;
        Ok(())
    };
    batch(
        &lab,
        &[snap("t1", "s1"), snap("t2", "s2")],
        &mut window,
        Run::Apply,
    )
    .unwrap_err();
    assert!(closed);
    let snapshot = lab.sim.snapshot();
    assert!(
        snapshot.devices.values().all(|d| !d.suspended),
        "{snapshot:?}"
    );
    assert!(!lab.sim.calls().iter().any(|c| c.starts_with("message ")));
    assert!(lab.vg().lv("s1").is_none() && lab.vg().lv("s2").is_none());
    assert_eq!(lab.pool_meta(), (3, 0));
    assert_eq!(lab.sim.pool(TPOOL).unwrap().thins.len(), 3);
}

#[test]
fn a_batch_plan_is_what_apply_does_and_never_opens_the_window() {
    let lab = lab_with_three("plan");
    let snaps = [snap("t1", "s1"), snap("t3", "s3")];
    let kernel = lab.sim.snapshot();
    let meta = lab.vg();
    let mut opened = false;
    let plan = batch(
        &lab,
        &snaps,
        &mut |_| {
            opened = true;
            Ok(())
        },
        Run::PlanOnly,
    )
    .unwrap();
    assert!(!opened);
    assert_eq!(lab.sim.snapshot(), kernel);
    assert_eq!(lab.vg(), meta);
    let done = batch(&lab, &snaps, &mut no_window, Run::Apply).unwrap();
    let text = |a: &[Action]| {
        a.iter()
            .map(|a| {
                a.to_string()
                    .split(" uuid ")
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(text(&plan), text(&done));
}
