//! drbdadm's verbs against the simulated module: the order of the steps,
//! what a second call does, the undo of a failed `up`, and what is
//! refused. The disks are sparse image files with fresh metadata (`up`
//! replays their activity log before attaching).

use std::path::PathBuf;

use super::tests::setup;
use super::*;
use crate::drbd::admin::DrbdError;
use crate::drbd::kernel::DrbdKernel;
use crate::drbd::sim::{Fault, SimDisk, SimDrbd};
use crate::drbd::state::C_WF_CONNECTION;

const IMAGE_BYTES: u64 = 64 << 20;

/// r0 (plain, no peer) and r0-U (stacked on it, peer `far`) on this host,
/// their disks on images with metadata, known to the simulated module.
struct Lab {
    sim: SimDrbd,
    r0: Target,
    u: Target,
    images: Vec<PathBuf>,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let (s, c) = setup("h1");
        let mut lab = Lab {
            sim: SimDrbd::new(),
            r0: s.target_in(&c, "r0", false).unwrap(),
            u: s.target_in(&c, "r0-U", true).unwrap(),
            images: Vec::new(),
        };
        for (which, t) in [("r0", &mut lab.r0), ("u", &mut lab.u)] {
            let path = std::env::temp_dir()
                .join(format!("cairn-admsim-{tag}-{which}-{}", std::process::id()));
            std::fs::File::create(&path)
                .unwrap()
                .set_len(IMAGE_BYTES)
                .unwrap();
            t.disk = path.display().to_string();
            create_md(None, t, false).unwrap();
            lab.sim
                .add_disk(&t.disk, SimDisk::new(IMAGE_BYTES / SECTOR));
            lab.images.push(path);
        }
        lab
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for p in &self.images {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The ret_code of a refusal by the module.
fn code(e: &AdmError) -> Option<i32> {
    match e {
        AdmError::Drbd(DrbdError::Refused { code, .. }) => Some(*code),
        _ => None,
    }
}

fn state(sim: &mut SimDrbd, minor: u32) -> MinorStatus {
    sim.status(None)
        .unwrap()
        .into_iter()
        .find(|s| s.minor == minor)
        .unwrap()
}

#[test]
fn up_of_a_plain_resource_goes_in_drbdadm_s_order_and_a_second_up_does_nothing() {
    let mut lab = Lab::new("plain");
    let d = lab.r0.disk.clone();
    let done = up(&mut lab.sim, &lab.r0).unwrap();
    let want = [
        "new-resource r0",
        "new-minor r0 0 0",
        &format!("attach 0 {d}"),
    ];
    assert_eq!(done, want);
    // What was sent is what the record says, and the existence check came first.
    assert_eq!(lab.sim.changes(), want);
    assert_eq!(lab.sim.calls()[0], "resource-exists r0");
    let s = state(&mut lab.sim, 0);
    assert_eq!(
        (s.state.role, s.state.connection, s.state.disk),
        ("Secondary", "StandAlone", "Inconsistent")
    );
    assert_eq!(s.backing_dev.as_deref(), Some(d.as_str()));
    let usable = crate::drbd::md::Layout::internal(IMAGE_BYTES / SECTOR).usable_sectors();
    assert_eq!(s.capacity_sectors, usable);

    lab.sim.clear_calls();
    assert!(up(&mut lab.sim, &lab.r0).unwrap().is_empty());
    assert!(lab.sim.changes().is_empty(), "{:?}", lab.sim.changes());
}

#[test]
fn up_of_a_stacked_resource_connects_last_and_brings_up_only_what_is_down() {
    let mut lab = Lab::new("stacked");
    up(&mut lab.sim, &lab.r0).unwrap();
    lab.sim.primary(0, true).unwrap();
    lab.sim.clear_calls();
    let d = lab.u.disk.clone();
    let done = up(&mut lab.sim, &lab.u).unwrap();
    let want = [
        "new-resource r0-U".to_owned(),
        "new-minor r0-U 10 0".to_owned(),
        format!("attach 10 {d}"),
        "connect r0-U 127.0.0.1:7791 10.9.9.9:7794".to_owned(),
    ];
    assert_eq!(done, want);
    assert_eq!(lab.sim.changes(), want);
    let r = lab.sim.resource("r0-U").unwrap();
    assert_eq!(r.connection, C_WF_CONNECTION);
    assert_eq!(r.protocol, Some(crate::drbd::admin::Protocol::A));

    lab.sim.clear_calls();
    assert!(up(&mut lab.sim, &lab.u).unwrap().is_empty());
    assert!(lab.sim.changes().is_empty());

    // Disconnected (StandAlone), the next up only connects again.
    let my = "127.0.0.1:7791".parse().unwrap();
    let peer = "10.9.9.9:7794".parse().unwrap();
    lab.sim.disconnect(&my, &peer, false).unwrap();
    lab.sim.clear_calls();
    let done = up(&mut lab.sim, &lab.u).unwrap();
    assert_eq!(done, ["connect r0-U 127.0.0.1:7791 10.9.9.9:7794"]);
}

#[test]
fn up_that_fails_at_any_request_leaves_nothing_behind() {
    // Plain r0 sends resource-exists, new-resource, new-minor, attach:
    // whichever fails, the resource it made goes (down) and nothing is left.
    for n in 0..4 {
        let mut lab = Lab::new(&format!("nth{n}"));
        lab.sim.fail(Fault::nth(n));
        let e = up(&mut lab.sim, &lab.r0).unwrap_err();
        assert!(matches!(e, AdmError::Drbd(_)), "request {n}: {e}");
        assert!(lab.sim.is_empty(), "request {n}: {:?}", lab.sim.changes());
    }
    let mut lab = Lab::new("nth4");
    lab.sim.fail(Fault::nth(4));
    up(&mut lab.sim, &lab.r0).unwrap();
}

#[test]
fn up_whose_attach_or_connect_fails_undoes_what_it_did() {
    // The module cannot open the disk (it does not know it): the kernel's
    // own refusal, and the resource made for it is taken down.
    let mut lab = Lab::new("undo");
    let mut other = SimDrbd::new();
    let e = up(&mut other, &lab.r0).unwrap_err();
    assert_eq!(code(&e), Some(104), "{e}");
    assert!(other.is_empty());
    assert_eq!(other.changes().last().unwrap(), "down r0");

    // The connect of the stacked resource fails: r0-U goes, r0 stays.
    up(&mut lab.sim, &lab.r0).unwrap();
    lab.sim.primary(0, true).unwrap();
    lab.sim.fail(Fault::call("connect").code(102));
    let e = up(&mut lab.sim, &lab.u).unwrap_err();
    assert_eq!(code(&e), Some(102), "{e}");
    assert!(lab.sim.resource("r0-U").is_none() && lab.sim.minor(10).is_none());
    assert!(lab.sim.resource("r0").is_some() && lab.sim.minor(0).is_some());

    // In a resource that was there already (no minor yet), only what this
    // call made is undone: the minor is deleted, the resource stays.
    lab.sim.new_resource("r0-U").unwrap();
    lab.sim.clear_calls();
    lab.sim.fail(Fault::call("connect"));
    up(&mut lab.sim, &lab.u).unwrap_err();
    let changes = lab.sim.changes();
    assert_eq!(changes[changes.len() - 2..], ["detach 10", "del-minor 10"]);
    assert!(lab.sim.resource("r0-U").is_some() && lab.sim.minor(10).is_none());

    // When the undo fails too, the error says both.
    lab.sim.fail(Fault::call("attach").code(104));
    lab.sim.fail(Fault::call("del-minor"));
    let e = up(&mut lab.sim, &lab.u).unwrap_err();
    assert!(matches!(e, AdmError::UndoFailed { .. }), "{e}");
}

#[test]
fn down_of_a_resource_that_is_not_up_says_so() {
    let mut lab = Lab::new("down");
    assert!(!down(&mut lab.sim, &lab.r0).unwrap());
    assert!(lab.sim.changes().is_empty());
    up(&mut lab.sim, &lab.r0).unwrap();
    assert!(down(&mut lab.sim, &lab.r0).unwrap());
    assert!(lab.sim.is_empty());
    assert!(!down(&mut lab.sim, &lab.r0).unwrap());
}

#[test]
fn resize_refuses_a_resource_that_is_not_up_and_follows_its_disk() {
    let mut lab = Lab::new("resize");
    let grow = Resize {
        assume_peer_has_space: true,
        ..Resize::default()
    };
    let e = resize(&mut lab.sim, &lab.r0, &grow).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused);
    assert!(e.to_string().contains("is not up"), "{e}");
    // A resource without its minor is not up either.
    lab.sim.new_resource("r0").unwrap();
    assert!(resize(&mut lab.sim, &lab.r0, &grow).is_err());
    assert!(!lab.sim.changes().iter().any(|c| c.starts_with("resize")));

    up(&mut lab.sim, &lab.r0).unwrap();
    let before = state(&mut lab.sim, 0).capacity_sectors;
    lab.sim.disk_mut(&lab.r0.disk).unwrap().sectors *= 2;
    // Without a peer to ask, DRBD keeps its size unless told the peer has room.
    let same = resize(&mut lab.sim, &lab.r0, &Resize::default()).unwrap();
    assert_eq!(same, (before, before));
    let (b, after) = resize(&mut lab.sim, &lab.r0, &grow).unwrap();
    assert_eq!(b, before);
    assert!(after > before * 19 / 10, "{before} -> {after}");
}

#[test]
fn primary_and_secondary_round_trip_and_the_data_stays_up_to_date() {
    let mut lab = Lab::new("roles");
    up(&mut lab.sim, &lab.r0).unwrap();
    // Fresh metadata: Inconsistent, so Primary only with --force.
    let e = lab.sim.primary(0, false).unwrap_err();
    assert!(matches!(e, DrbdError::Refused { code: -2, .. }), "{e}");
    lab.sim.primary(0, true).unwrap();
    let s = state(&mut lab.sim, 0);
    assert_eq!((s.state.role, s.state.disk), ("Primary", "UpToDate"));

    // Mounted: neither secondary nor down.
    lab.sim.set_opens(0, 1);
    let e = lab.sim.secondary(0).unwrap_err();
    assert!(matches!(e, DrbdError::Refused { code: -12, .. }), "{e}");
    assert!(down(&mut lab.sim, &lab.r0).is_err());
    lab.sim.set_opens(0, 0);
    lab.sim.secondary(0).unwrap();
    assert_eq!(state(&mut lab.sim, 0).state.role, "Secondary");

    // The metadata remembers: after down and up, Primary without --force.
    assert!(down(&mut lab.sim, &lab.r0).unwrap());
    up(&mut lab.sim, &lab.r0).unwrap();
    assert_eq!(state(&mut lab.sim, 0).state.disk, "UpToDate");
    lab.sim.primary(0, false).unwrap();
}

#[test]
fn metadata_verbs_refuse_an_attached_minor() {
    let mut lab = Lab::new("md");
    up(&mut lab.sim, &lab.r0).unwrap();
    let e = create_md(Some(&mut lab.sim), &lab.r0, true).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy, "{e}");
    let e = apply_al(Some(&mut lab.sim), &lab.r0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy, "{e}");
    // Diskless again, both go through.
    lab.sim.detach(0, false).unwrap();
    apply_al(Some(&mut lab.sim), &lab.r0).unwrap();
    create_md(Some(&mut lab.sim), &lab.r0, true).unwrap();
}
