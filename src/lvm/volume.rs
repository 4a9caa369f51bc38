//! Volume commands that touch the kernel: activation and deactivation of a
//! VG or of some of its LVs, and removal of a whole VG. Metadata is read
//! under lvm2's VG lock, the plan made (super::activate), turned into steps
//! against what the kernel has (super::engine), then either printed
//! (`--plan`) or run. What LV operations share (the error, `Action`, `Run`)
//! is in super::action.

use std::path::PathBuf;

use crate::dm::{self, Control};
use crate::error::{ErrorKind, Refusal};
use crate::meta::lock::Mode;
use crate::meta::ops::Env;
use crate::meta::scan::{Scan, VgView};

use super::action::{Result, Run, VolumeError};
use super::activate::{Plan, PlanError, Planner};
use super::config::LvmConfig;
use super::engine::{self, Dev, Step};

/// What to (de)activate.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub vg: String,
    /// LV names; empty for every LV of the VG.
    pub lvs: Vec<String>,
    /// Also LVs flagged "activation skip" (thin snapshots), as lvm2's -K.
    pub ignore_skip: bool,
}

fn pv_devices(scan: &Scan, view: &VgView) -> Vec<Option<PathBuf>> {
    view.devices
        .iter()
        .map(|d| d.map(|i| scan.pvs[i].path.clone()))
        .collect()
}

/// VGs lvm2 would not activate on this host.
fn check_activatable(view: &VgView) -> Result<()> {
    match crate::meta::ops::foreign_reason(&view.metadata.vg) {
        Some(why) => Err(VolumeError::Refused {
            vg: view.metadata.vg.name.clone(),
            refusal: Refusal::new(
                ErrorKind::Refused,
                format!("{why}: cairn will not activate it"),
            ),
        }),
        None => Ok(()),
    }
}

/// The thin pools of `plan` that hold messages an interrupted command
/// queued (their transaction is completed before they are used).
fn pools_with_queued_messages(vg: &crate::meta::model::VolumeGroup, plan: &Plan) -> Vec<String> {
    use crate::meta::model::SegmentKind;
    vg.lvs
        .iter()
        .filter(|lv| {
            matches!(lv.segments.first().map(|s| &s.kind),
                Some(SegmentKind::ThinPool { messages, .. }) if !messages.is_empty())
                && plan.devices.iter().any(|d| d.lv == lv.name)
        })
        .map(|lv| lv.name.clone())
        .collect()
}

/// The plan for a selection, and the pools of it with queued messages. The
/// caller holds the VG lock, and keeps it until the kernel has the plan's
/// tables: released in between, an lvremove and lvcreate by lvm2 could
/// hand the plan's extents to another LV before the tables are loaded.
fn plan_and_queued(env: &Env, sel: &Selection, deactivating: bool) -> Result<(Plan, Vec<String>)> {
    let scan = env.scan(&[])?;
    let view = scan.vg(&sel.vg)?;
    check_activatable(&view)?;
    let vg = &view.metadata.vg;
    let devices = pv_devices(&scan, &view);
    let planner = Planner::new(&view.metadata.vg, &devices)
        .with_config(LvmConfig::for_vg(&env.lvm_dir, &view.metadata.vg)?);
    // Deactivation covers skipped LVs too: they may have been activated
    // explicitly, and must not be left behind.
    let ignore_skip = sel.ignore_skip || deactivating;
    let plan = if sel.lvs.is_empty() {
        planner.vg(ignore_skip)?
    } else {
        let mut plan = Plan::default();
        for lv in &sel.lvs {
            for d in planner.lv(lv)?.devices {
                if plan.device(&d.name).is_none() {
                    plan.devices.push(d);
                }
            }
        }
        plan
    };
    let queued = pools_with_queued_messages(vg, &plan);
    Ok((plan, queued))
}

/// Activates a VG or some of its LVs; returns the steps (done, or planned).
pub fn activate(env: &Env, dev: &Dev, sel: &Selection, run: Run) -> Result<Vec<Step>> {
    let mut lock = env.locks.vg(&sel.vg, Mode::Shared)?;
    let (mut plan, queued) = plan_and_queued(env, sel, false)?;
    if run == Run::Apply && !queued.is_empty() {
        // An interrupted thin command is finished first (under its own
        // exclusive lock), as lvm2 does on the pool's activation; then the
        // plan is made again under the shared lock.
        drop(lock);
        for pool in &queued {
            super::thin::complete_queued(env, dev, &sel.vg, pool).map_err(|e| {
                // Activation is refused until the interrupted command is finished.
                VolumeError::Refused {
                    vg: sel.vg.clone(),
                    refusal: Refusal::new(
                        ErrorKind::Refused,
                        format!("cannot complete what was queued in pool {pool}: {e}"),
                    ),
                }
            })?;
        }
        lock = env.locks.vg(&sel.vg, Mode::Shared)?;
        plan = plan_and_queued(env, sel, false)?.0;
    }
    crate::failpoint::delay("activate-planned");
    let ctl = dev.control()?;
    let (steps, differs) = engine::activation_steps_resuming(&ctl, dev, &plan)?;
    if let Some(e) = differs.into_iter().next() {
        // Nothing else is done, but no device is left suspended.
        let resumes: Vec<Step> = steps
            .into_iter()
            .filter(|s| matches!(s, Step::Clear { .. } | Step::Resume { .. }))
            .collect();
        if run == Run::Apply {
            engine::run(&ctl, dev, &resumes)?;
        }
        return Err(e.into());
    }
    if run == Run::Apply {
        engine::run(&ctl, dev, &steps)?;
    }
    drop(lock);
    partial_refused(sel, "the other LVs are active", plan)?;
    Ok(steps)
}

/// The error for LVs a whole-VG plan left out (their PV is missing), once
/// the others are done, as lvm2 reports them (exit status 5).
fn partial_refused(sel: &Selection, done: &'static str, plan: Plan) -> Result<()> {
    if plan.partial.is_empty() {
        return Ok(());
    }
    Err(VolumeError::Partial {
        vg: sel.vg.clone(),
        done,
        partial: plan.partial,
    })
}

/// Deactivates a VG or some of its LVs (refused while one is in use).
pub fn deactivate(env: &Env, dev: &Dev, sel: &Selection, run: Run) -> Result<Vec<Step>> {
    let _lock = env.locks.vg(&sel.vg, Mode::Shared)?;
    let mut plan = plan_and_queued(env, sel, true)?.0;
    let ctl = dev.control()?;
    let mut steps = engine::deactivation_steps(&ctl, &plan, &sel.lvs)?;
    if !plan.partial.is_empty() {
        // LVs on a missing PV cannot be planned (their tables need the PV),
        // but their devices can still go, found by uuid, as lvm2 does.
        let scan = env.scan(&[])?;
        let vg = scan.vg(&sel.vg)?.metadata.vg;
        let mut left = Vec::new();
        for e in std::mem::take(&mut plan.partial) {
            let PlanError::MissingPv { lv, .. } = &e else {
                left.push(e);
                continue;
            };
            match partial_down_steps(&ctl, &vg, lv)? {
                Some(down) => steps.extend(down),
                None => left.push(e),
            }
        }
        plan.partial = left;
    }
    if run == Run::Apply {
        engine::run(&ctl, dev, &steps)?;
    }
    partial_refused(sel, "the other LVs are inactive", plan)?;
    Ok(steps)
}

/// The steps that take down the devices of LV `lv` (its own and its
/// layers', by uuid) when it cannot be planned; None when one of them is
/// held by something outside them (then it stays, and is reported).
fn partial_down_steps(
    ctl: &Control,
    vg: &crate::meta::model::VolumeGroup,
    lv: &str,
) -> Result<Option<Vec<Step>>> {
    let Some(l) = vg.lv(lv) else {
        return Ok(None);
    };
    let prefix = format!("LVM-{}{}", vg.id.replace('-', ""), l.id.replace('-', ""));
    let mut found = devices_by_uuid(ctl, &prefix)?;
    // The LV's own device (no layer suffix) first: it stands on the others.
    found.sort_by_key(|i| i.uuid.len() != prefix.len());
    let own = found.len();
    let mut steps = Vec::new();
    for (i, info) in found.iter().enumerate() {
        // A layer is opened once by the LV's own device.
        let inside = i32::from(i > 0 && own > 1);
        if info.open_count > inside {
            return Ok(None);
        }
        if i == 0 && info.uuid.len() == prefix.len() {
            steps.push(Step::Unlink {
                link: super::names::lv_path(&vg.name, lv),
            });
        }
        steps.push(Step::RemoveNode {
            name: info.name.clone(),
        });
        steps.push(Step::Remove {
            name: info.name.clone(),
        });
    }
    Ok(Some(steps))
}

/// `vgremove [-f] VG`. With `force`, the VG's LVs are deactivated first, as
/// `vgremove -f` does, and the removal is refused, before anything changes,
/// while one of them is open (mounted, held by DRBD or another VG, a
/// process). Without it, a VG with LVs is refused. Under the VG's exclusive
/// lock, the last check before the PVs are wiped is that the kernel maps no
/// device of the VG any more.
pub fn remove_vg(env: &Env, dev: &Dev, name: &str, force: bool) -> Result<()> {
    if force {
        let sel = Selection {
            vg: name.to_owned(),
            ..Default::default()
        };
        deactivate(env, dev, &sel, Run::Apply)?;
    }
    let ctl = dev.control()?;
    crate::meta::ops::vg_remove_checked(env, name, force, |vg| {
        let active =
            active_devices(&ctl, vg).map_err(|e| Refusal::new(ErrorKind::System, e.to_string()))?;
        if active.is_empty() {
            return Ok(());
        }
        Err(Refusal::new(
            ErrorKind::Busy,
            format!(
            "still has active devices ({}): deactivate them first (`cairn vg deactivate {name}`)",
            active.join(", ")
            ),
        ))
    })?;
    Ok(())
}

/// The dm devices the kernel has for LVs of `vg`, found by uuid (`LVM-`,
/// the VG's id, then the LV's), whatever their names.
pub fn active_devices(
    ctl: &dyn dm::DeviceMapper,
    vg: &crate::meta::model::VolumeGroup,
) -> Result<Vec<String>> {
    let prefix = format!("LVM-{}", vg.id.replace('-', ""));
    Ok(devices_by_uuid(ctl, &prefix)?
        .into_iter()
        .map(|i| i.name)
        .collect())
}

/// The dm devices whose uuid starts with `prefix`, whatever their names.
fn devices_by_uuid(ctl: &dyn dm::DeviceMapper, prefix: &str) -> Result<Vec<dm::Info>> {
    let mut out = Vec::new();
    for d in ctl.devices()? {
        if let Some(info) = ctl.info(&d.name)? {
            if info.uuid.starts_with(prefix) {
                out.push(info);
            }
        }
    }
    Ok(out)
}
