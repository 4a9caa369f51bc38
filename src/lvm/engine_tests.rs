//! The engine on a simulated kernel: activation order, idempotence, and
//! undo when any change of an activation or reload fails.

use super::*;
use crate::dm::sim::{Fault, SimDm, MAJOR};
use crate::dm::table::Target;
use crate::dm::DeviceMapper;

fn linear(dev: DevRef, offset: u64, length: u64) -> TableLine {
    TableLine {
        start: 0,
        length,
        target: Target::Linear { dev, offset },
    }
}

fn device(name: &str, table: Vec<TableLine>, link: bool) -> PlannedDevice {
    PlannedDevice {
        lv: name.trim_start_matches("vg-").to_owned(),
        name: name.to_owned(),
        uuid: format!("LVM-{name}"),
        read_only: false,
        table,
        link: link.then(|| format!("/dev/vg/{}", name.trim_start_matches("vg-"))),
    }
}

/// An LV over a layer over a disk (8:16), each `length` sectors; the
/// layer at `offset` on the disk, the LV at `offset / 1024` on the layer.
fn stack(length: u64, offset: u64) -> Plan {
    Plan {
        devices: vec![
            device(
                "vg-lower",
                vec![linear(DevRef::Number(8, 16), offset, length)],
                false,
            ),
            device(
                "vg-top",
                vec![linear(
                    DevRef::Path(mapper_path("vg-lower")),
                    offset / 1024,
                    length,
                )],
                true,
            ),
        ],
        partial: vec![],
    }
}

fn dev() -> Dev {
    Dev {
        root: std::env::temp_dir().join("cairn-engine-sim-dev"),
        ..Dev::default()
    }
}

fn activated(plan: &Plan) -> SimDm {
    let sim = SimDm::new();
    let steps = activation_steps(&sim, &dev(), plan).unwrap();
    run(&sim, &dev(), &steps).unwrap();
    sim.clear_calls();
    sim
}

/// No device suspended and no table left in an inactive slot.
fn settled(sim: &SimDm) -> bool {
    sim.snapshot()
        .devices
        .values()
        .all(|d| !d.suspended && d.inactive.is_none())
}

#[test]
fn activation_brings_layers_up_before_what_stands_on_them() {
    let plan = stack(1000, 2048);
    let sim = SimDm::new();
    let steps = activation_steps(&sim, &dev(), &plan).unwrap();
    run(&sim, &dev(), &steps).unwrap();
    let calls = sim.calls();
    let at = |c: &str| calls.iter().position(|x| x == c).unwrap();
    assert!(at("resume vg-lower") < at("load vg-top"), "{calls:?}");
    let lower = sim.device("vg-lower").unwrap();
    let top = sim.device("vg-top").unwrap();
    assert_eq!(
        top.live.unwrap()[0].target,
        Target::Linear {
            dev: DevRef::Number(MAJOR, lower.minor),
            offset: 2
        }
    );
    assert!(sim.link_points_to(&dev().root, "/dev/vg/top", "vg-top"));
    assert_eq!(
        sim.device_number(&dev().root.join("mapper/vg-top"))
            .unwrap(),
        (MAJOR, top.minor)
    );
    // The same activation again changes nothing.
    let again = activation_steps(&sim, &dev(), &plan).unwrap();
    assert!(again.is_empty(), "{again:?}");
}

#[test]
fn an_active_device_with_another_table_is_refused_before_any_change() {
    let sim = activated(&stack(1000, 2048));
    let before = sim.snapshot();
    let e = activation_steps(&sim, &dev(), &stack(1000, 4096)).unwrap_err();
    assert!(
        matches!(e, EngineError::Differs { ref name, .. } if name == "vg-lower"),
        "{e}"
    );
    assert_eq!(sim.snapshot(), before);
}

#[test]
fn a_foreign_device_of_the_same_name_is_refused() {
    let sim = SimDm::new();
    sim.create("vg-lower", "someone-else", false).unwrap();
    let e = activation_steps(&sim, &dev(), &stack(1000, 2048)).unwrap_err();
    assert!(matches!(e, EngineError::Foreign { .. }), "{e}");
}

#[test]
fn a_failed_activation_removes_every_device_it_made_whichever_change_fails() {
    let plan = stack(1000, 2048);
    let steps = activation_steps(&SimDm::new(), &dev(), &plan).unwrap();
    let total = {
        let sim = SimDm::new();
        run(&sim, &dev(), &steps).unwrap();
        sim.changes()
    };
    assert_eq!(total, 6, "create, load, resume for each device");
    for k in 0..total {
        let sim = SimDm::new();
        sim.fail(Fault::nth(k));
        let e = run(&sim, &dev(), &steps).unwrap_err();
        assert!(matches!(e, EngineError::Dm(_)), "change {k}: {e}");
        assert!(
            sim.snapshot().devices.is_empty(),
            "change {k} failed, devices left: {:?}",
            sim.calls()
        );
    }
}

#[test]
fn a_failed_reload_leaves_no_device_suspended_nor_a_table_loaded() {
    // Both devices move to other extents, same size: load both, suspend
    // top-down, resume bottom-up.
    let old = stack(1000, 2048);
    let new = stack(1000, 8192);
    let base = activated(&old);
    let steps = reload_steps(&base, &new, Suspend::NoFlush).unwrap();
    let kinds: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        kinds
            .iter()
            .map(|s| s.lines().next().unwrap())
            .collect::<Vec<_>>(),
        [
            "dm load vg-lower",
            "dm load vg-top",
            "dm suspend vg-top (noflush)",
            "dm suspend vg-lower (noflush)",
            "dm resume vg-lower",
            "dm resume vg-top",
        ]
    );
    let before = base.snapshot();
    for k in 0..steps.len() {
        // A change that took effect and still failed: a suspend that
        // suspended, a resume that swapped its table in before the
        // target refused (a table load is atomic).
        let half_way = !matches!(steps[k], Step::Load { .. });
        for after_effect in [false, true].into_iter().filter(|&a| !a || half_way) {
            let sim = base.fork();
            let mut fault = Fault::nth(k);
            if after_effect {
                fault = fault.after_effect();
            }
            sim.fail(fault);
            run(&sim, &dev(), &steps).unwrap_err();
            assert!(
                settled(&sim),
                "change {k} ({after_effect}): {:?}",
                sim.snapshot()
            );
            // Whatever failed, resumes included, the old tables are live
            // again: the caller restores the old metadata.
            let live = |s: &crate::dm::sim::Snapshot| {
                s.devices
                    .iter()
                    .map(|(n, d)| (n.clone(), d.live.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                live(&sim.snapshot()),
                live(&before),
                "change {k} ({after_effect})"
            );
        }
    }
    // Unfailed, the new tables are live.
    let sim = base.fork();
    run(&sim, &dev(), &steps).unwrap();
    assert_eq!(
        sim.device("vg-lower").unwrap().live.unwrap()[0].target,
        Target::Linear {
            dev: DevRef::Number(8, 16),
            offset: 8192
        }
    );
}

/// A thin pool of `sectors` of data: `_tmeta` and `_tdata` on the disk,
/// the thin-pool target (`-tpool`) over them, and the pool LV's own layer.
fn pool(sectors: u64) -> Plan {
    let on_disk = |name: &str, offset, length| {
        device(
            name,
            vec![linear(DevRef::Number(8, 16), offset, length)],
            false,
        )
    };
    Plan {
        devices: vec![
            on_disk("vg-pool_tmeta", 0, 1024),
            on_disk("vg-pool_tdata", 2048, sectors),
            device(
                "vg-pool-tpool",
                vec![TableLine {
                    start: 0,
                    length: sectors,
                    target: Target::ThinPool {
                        metadata: DevRef::Path(mapper_path("vg-pool_tmeta")),
                        data: DevRef::Path(mapper_path("vg-pool_tdata")),
                        block_sectors: 128,
                        low_water_mark: 0,
                        features: vec![],
                    },
                }],
                false,
            ),
            device(
                "vg-pool",
                vec![linear(
                    DevRef::Path(mapper_path("vg-pool-tpool")),
                    0,
                    sectors,
                )],
                true,
            ),
        ],
        partial: vec![],
    }
}

/// A pool grows tdata, then the thin-pool target, then its own layer. Once
/// the thin-pool target has resumed bigger, dm-thin refuses it smaller: a
/// later failure leaves tdata and -tpool grown (PartlyApplied, the caller
/// keeps the new metadata) rather than shrinking tdata under a pool that
/// counts on it; before that, everything goes back.
#[test]
fn a_pool_that_grew_is_never_shrunk_back_by_an_undo() {
    let base = activated(&pool(4096));
    let steps = reload_steps(&base, &pool(8192), Suspend::NoFlush).unwrap();
    let live_len = |sim: &SimDm, name: &str| -> u64 {
        sim.device(name)
            .unwrap()
            .live
            .unwrap()
            .iter()
            .map(|l| l.length)
            .sum()
    };
    let tpool_resume = steps
        .iter()
        .position(|s| matches!(s, Step::Resume { name } if name == "vg-pool-tpool"))
        .unwrap();
    let mut rolled_forward = 0;
    for k in 0..steps.len() {
        let sim = base.fork();
        sim.fail(Fault::nth(k));
        let e = run(&sim, &dev(), &steps).unwrap_err();
        assert!(settled(&sim), "change {k}: {:?}", sim.snapshot());
        if k > tpool_resume {
            assert!(
                matches!(e, EngineError::PartlyApplied { .. }),
                "change {k}: {e}"
            );
            assert!(e.to_string().contains("vg-pool-tpool"), "{e}");
            rolled_forward += 1;
            for grown in ["vg-pool_tdata", "vg-pool-tpool"] {
                assert_eq!(live_len(&sim, grown), 8192, "change {k}: {grown}");
            }
        } else {
            assert!(
                !matches!(e, EngineError::PartlyApplied { .. }),
                "change {k}: {e}"
            );
            for name in ["vg-pool_tdata", "vg-pool-tpool", "vg-pool"] {
                assert_eq!(live_len(&sim, name), 4096, "change {k}: {name}");
            }
        }
    }
    assert!(
        rolled_forward > 0,
        "no step after the pool's resume: {steps:?}"
    );
    // The roll-forward's error says what to do, and its kind is Unrecovered.
    let sim = base.fork();
    sim.fail(Fault::nth(steps.len() - 1));
    let e = run(&sim, &dev(), &steps).unwrap_err();
    assert!(e.to_string().contains("lvchange --refresh VG/LV"), "{e}");
    assert_eq!(e.kind(), crate::error::ErrorKind::Unrecovered);
}

#[test]
fn an_undo_that_fails_too_is_reported_with_the_failure() {
    let plan = stack(1000, 2048);
    let sim = SimDm::new();
    let steps = activation_steps(&sim, &dev(), &plan).unwrap();
    sim.fail(Fault::op("load").on("vg-top"));
    sim.fail(Fault::op("remove").on("vg-lower").always());
    let e = run(&sim, &dev(), &steps).unwrap_err();
    assert!(matches!(e, EngineError::UndoFailed { .. }), "{e}");
    assert!(e.to_string().contains("dm create vg-lower"), "{e}");
    assert!(sim.device("vg-top").is_none(), "what could be undone was");
}

#[test]
fn a_device_left_suspended_with_a_table_loaded_is_resumed_with_its_live_table() {
    let plan = stack(1000, 2048);
    let sim = activated(&plan);
    sim.load(
        "vg-lower",
        &[linear(DevRef::Number(8, 16), 9999, 1000)],
        false,
    )
    .unwrap();
    sim.suspend("vg-lower", Suspend::NoFlush).unwrap();
    let before = sim.device("vg-lower").unwrap().live;
    let (steps, differs) = activation_steps_resuming(&sim, &dev(), &plan).unwrap();
    assert!(differs.is_empty());
    run(&sim, &dev(), &steps).unwrap();
    assert!(settled(&sim));
    assert_eq!(sim.device("vg-lower").unwrap().live, before);
}

#[test]
fn deactivation_refuses_an_open_lv_and_takes_down_a_free_one_top_first() {
    let plan = stack(1000, 2048);
    let sim = activated(&plan);
    sim.set_opens("vg-top", 1);
    let e = deactivation_steps(&sim, &plan, &[]).unwrap_err();
    assert!(matches!(e, EngineError::InUse { count: 1, .. }), "{e}");
    sim.set_opens("vg-top", 0);
    let steps = deactivation_steps(&sim, &plan, &[]).unwrap();
    run(&sim, &dev(), &steps).unwrap();
    assert!(sim.snapshot().devices.is_empty());
    assert_eq!(sim.calls(), ["remove vg-top", "remove vg-lower"]);
    assert!(!sim.link_points_to(&dev().root, "/dev/vg/top", "vg-top"));
}
