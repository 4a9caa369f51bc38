//! Linear LVs without lvm2: create (optionally only on named PVs) and
//! remove (refused while open); resizing them is [`super::resize`]'s.
//!
//! A creation commits first, then the kernel follows: the new LV is
//! activated and its first 4 KiB zeroed (as lvm2's wipe does, so an old
//! signature under it is not taken for the new LV's); if the kernel step
//! fails, the metadata of before the call is committed again. A removal
//! goes the other way (deactivated first, then the commit), so that no
//! crash leaves an extent free in the metadata while a device still maps it.

use std::path::PathBuf;

use crate::meta::model::{SegmentKind, VolumeGroup};
use crate::meta::ops::{self, Env};

use super::action::{find_visible_lv, refused, Action, Run, VolumeError};
use super::activate::Planner;
use super::engine::{self, Dev};
use super::extents::{extents_for, pv_indices, restore, Size};
use super::names;
use crate::error::ErrorKind;

pub type Result<T> = std::result::Result<T, VolumeError>;

/// A new linear LV.
#[derive(Debug, Clone)]
pub struct NewLinear {
    pub vg: String,
    pub name: String,
    pub size: Size,
    /// Allocate only on these PVs (all of the VG's when empty).
    pub pvs: Vec<PathBuf>,
    pub activate: bool,
}

/// `lvcreate -L SIZE -n NAME VG [PV...]`.
pub fn create(env: &Env, dev: &Dev, req: &NewLinear, run: Run) -> Result<Vec<Action>> {
    let (vg_name, name, size, pvs, activate) =
        (&req.vg, &req.name, req.size, &req.pvs, req.activate);
    let mut change = ops::begin_change(env, vg_name, pvs)?;
    let on = pv_indices(&change, pvs)?;
    let extents = extents_for(&change.metadata.vg, size, on.as_deref())?;
    if extents == 0 {
        return Err(refused(
            vg_name,
            ErrorKind::InvalidInput,
            "cannot hold an LV of 0 extents: give a size".into(),
        ));
    }
    let before = change.metadata.clone();
    ops::add_linear_lv(&mut change.metadata.vg, name, extents, on.as_deref())?;
    let mut actions = vec![Action::Commit {
        vg: vg_name.to_owned(),
        seqno: change.metadata.vg.seqno,
        what: format!(
            "new linear LV {name} ({})",
            crate::units::human(extents * change.metadata.vg.extent_bytes())
        ),
    }];
    let devices = change.pv_devices();
    let plan = Planner::new(&change.metadata.vg, &devices).lv(name)?;
    let ctl = if activate { Some(dev.control()?) } else { None };
    if run == Run::PlanOnly {
        if let (true, Some(ctl)) = (activate, &ctl) {
            actions.extend(
                engine::activation_steps(ctl, dev, &plan)?
                    .into_iter()
                    .map(Action::Dm),
            );
            actions.push(Action::Wipe {
                path: names::lv_path(vg_name, name),
                bytes: 4096,
            });
        }
        return Ok(actions);
    }
    change.commit_and_continue(env)?;
    if activate {
        let ctl = ctl.expect("opened to apply");
        let done = engine::activation_steps(&ctl, dev, &plan)
            .map_err(VolumeError::from)
            .and_then(|steps| {
                engine::run(&ctl, dev, &steps)?;
                Ok(steps)
            })
            .and_then(|steps| {
                let path = plan.devices.last().expect("one device").path();
                wipe_start(&path)?;
                Ok(steps)
            });
        match done {
            Ok(steps) => actions.extend(steps.into_iter().map(Action::Dm)),
            Err(e) => {
                // Take down what came up, then forget the LV.
                if let Ok(down) = engine::deactivation_steps(&ctl, &plan, &[name.to_owned()]) {
                    let _ = engine::run(&ctl, dev, &down);
                }
                return Err(restore(env, &mut change, before, e));
            }
        }
    }
    Ok(actions)
}

/// Zeroes an LV's first 4 KiB, as lvm2 wipes a new LV.
fn wipe_start(path: &str) -> Result<()> {
    let d = crate::blockdev::Device::open(std::path::Path::new(path), true)
        .map_err(|e| VolumeError::Op(e.into()))?;
    d.write_at(0, &[0u8; 4096])
        .map_err(|e| VolumeError::Op(e.into()))?;
    Ok(())
}

/// Checks `name` is a plain linear (or striped) LV that nothing stacks on.
fn check_plain(vg: &VolumeGroup, name: &str) -> Result<()> {
    let lv = find_visible_lv(vg, name, "change")?;
    let plain = lv
        .segments
        .iter()
        .all(|s| matches!(s.kind, SegmentKind::Striped { .. }));
    let cow = vg.snapshot_of_cow(name).is_some();
    let origin = vg.is_snapshot_origin(name);
    if !plain || cow || origin {
        return Err(refused(
            &vg.name,
            ErrorKind::Unsupported,
            format!(
                "LV {name} is not a plain linear LV (a pool, thin, cached LV, snapshot or \
                 snapshot origin): cairn does not resize or remove those this way yet"
            ),
        ));
    }
    Ok(())
}

/// `lvremove VG/LV` of a plain linear LV: deactivated first (refused while
/// it is open), then dropped from the metadata.
pub fn remove(env: &Env, dev: &Dev, vg_name: &str, name: &str, run: Run) -> Result<Vec<Action>> {
    let mut change = ops::begin_change(env, vg_name, &[])?;
    check_plain(&change.metadata.vg, name)?;
    let ctl = dev.control()?;
    let devices = change.pv_devices();
    let plan = Planner::new(&change.metadata.vg, &devices).lv(name)?;
    let down = engine::deactivation_steps(&ctl, &plan, &[name.to_owned()])?;
    change.metadata.vg.lvs.retain(|l| l.name != name);
    let mut actions: Vec<Action> = down.iter().cloned().map(Action::Dm).collect();
    actions.push(Action::Commit {
        vg: vg_name.to_owned(),
        seqno: change.metadata.vg.seqno,
        what: format!("LV {name} removed"),
    });
    if run == Run::PlanOnly {
        return Ok(actions);
    }
    engine::run(&ctl, dev, &down)?;
    change.commit_and_continue(env)?;
    Ok(actions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvm::fixture::every_kind;

    #[test]
    fn only_plain_lvs_are_removed_as_linear() {
        let vg = every_kind();
        for plain in ["lin", "two", "str"] {
            check_plain(&vg, plain).unwrap();
        }
        let refusal = |name: &str| check_plain(&vg, name).unwrap_err().to_string();
        for other in ["thin", "pool", "cached", "origin", "snap"] {
            assert!(
                refusal(other).contains("is not a plain linear LV"),
                "{other}: {}",
                refusal(other)
            );
        }
        assert!(refusal("pool_tmeta").contains("hidden part of another LV"));
        assert!(refusal("nosuch").contains("has no LV named nosuch"));
    }
}
