//! Carries activation plans out on the kernel: the steps (create, load,
//! suspend, resume, remove, message, device nodes) are computed first from
//! the plan and what exists, so `--plan` can print exactly what a command
//! would do; then they run in order, and a failure undoes the steps already
//! taken, newest first (a loaded table is cleared, a suspended device
//! resumed, a created device removed), leaving the kernel as it was.
//!
//! Ordering follows lvm2 and the lessons of devicemapper-rs: a new table is
//! loaded into the inactive slot before anything is suspended; devices are
//! suspended top-down and resumed bottom-up.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::dm::table::{DevRef, TableLine};
use crate::dm::{self, DeviceMapper, Suspend};

use super::activate::{mapper_path, Plan, PlannedDevice};

/// One thing done to the kernel or /dev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// DM_DEV_CREATE: a new device with no table (no I/O until a load and
    /// a resume). Undone by removing it.
    Create {
        /// The device-mapper name (`vg-lv`, `vg-pool-tpool`, ...).
        name: String,
        /// The device-mapper uuid (`LVM-<vg uuid><lv uuid>[-suffix]`).
        uuid: String,
        /// Whether the device refuses writes whatever its table.
        read_only: bool,
    },
    /// A table into the inactive slot (devices named by path).
    /// DM_TABLE_LOAD: nothing changes for I/O until the resume. Undone by
    /// clearing the slot.
    Load {
        /// The device-mapper name.
        name: String,
        /// The table loaded.
        table: Vec<TableLine>,
        /// Whether the table is loaded read-only.
        read_only: bool,
    },
    /// DM_DEV_SUSPEND: new I/O to the device queues until its resume.
    /// Undone by resuming it.
    Suspend {
        /// The device-mapper name.
        name: String,
        /// Whether queued I/O is flushed and the file system frozen first.
        how: Suspend,
    },
    /// DM_DEV_SUSPEND without the suspend flag: a table in the inactive
    /// slot goes live, and queued I/O resumes.
    Resume {
        /// The device-mapper name.
        name: String,
    },
    /// Drops the table in the inactive slot (one a stopped command loaded),
    /// so that the next resume keeps the live one (DM_TABLE_CLEAR).
    Clear {
        /// The device-mapper name.
        name: String,
    },
    /// DM_DEV_REMOVE: the device goes (it must not be open).
    Remove {
        /// The device-mapper name.
        name: String,
    },
    /// DM_TARGET_MSG to sector 0 (a thin pool's `create_thin`,
    /// `create_snap`, `delete`, `set_transaction_id`). The engine does not
    /// undo it: a thin transaction sends its own undo messages.
    Message {
        /// The device-mapper name (a `-tpool` device).
        name: String,
        /// The message, as `dmsetup message <name> 0` takes it.
        message: String,
    },
    /// `/dev/mapper/<name>` (made by cairn when udev does not).
    Node {
        /// The device-mapper name.
        name: String,
    },
    /// Removes `/dev/mapper/<name>` (absent is fine).
    RemoveNode {
        /// The device-mapper name.
        name: String,
    },
    /// `/dev/<vg>/<lv>` -> `/dev/mapper/<name>`.
    Link {
        /// The link's path (`/dev/<vg>/<lv>`).
        link: String,
        /// The device-mapper name it points at.
        name: String,
    },
    /// Removes the link `/dev/<vg>/<lv>` (absent is fine).
    Unlink {
        /// The link's path (`/dev/<vg>/<lv>`).
        link: String,
    },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Create {
                name,
                uuid,
                read_only,
            } => write!(
                f,
                "dm create {name} uuid {uuid}{}",
                if *read_only { " read-only" } else { "" }
            ),
            Step::Load { name, table, .. } => {
                write!(f, "dm load {name}")?;
                for line in table {
                    write!(f, "\n    {line}")?;
                }
                Ok(())
            }
            Step::Suspend { name, how } => write!(
                f,
                "dm suspend {name}{}",
                match how {
                    Suspend::Flush => "",
                    Suspend::NoFlush => " (noflush)",
                    Suspend::FlushFrozen => " (skip lockfs: frozen)",
                }
            ),
            Step::Resume { name } => write!(f, "dm resume {name}"),
            Step::Clear { name } => write!(f, "dm clear {name}"),
            Step::Remove { name } => write!(f, "dm remove {name}"),
            Step::Message { name, message } => write!(f, "dm message {name} 0 {message}"),
            Step::Node { name } => write!(f, "mknod {}", mapper_path(name)),
            Step::RemoveNode { name } => write!(f, "rm {}", mapper_path(name)),
            Step::Link { link, name } => write!(f, "ln -s {} {link}", mapper_path(name)),
            Step::Unlink { link } => write!(f, "rm {link}"),
        }
    }
}

/// Why activation steps could not be computed or run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A device-mapper ioctl failed.
    #[error(transparent)]
    Dm(#[from] dm::Error),
    /// A device of the LV's name exists with another uuid: not this LV's,
    /// so cairn leaves it alone.
    #[error(
        "a device-mapper device named {name} exists with uuid {found:?}, not {expected:?}: it is \
         not this LV's; rename or remove it (dmsetup remove {name}) and retry"
    )]
    Foreign {
        /// The device-mapper name.
        name: String,
        /// The uuid the LV's device has.
        expected: String,
        /// The uuid the existing device has.
        found: String,
    },
    /// The LV is active with a table other than its metadata gives
    /// (activation is idempotent only for the same table).
    #[error(
        "{name} is active with a different table than the metadata gives:\n  live: \
         {live}\n  metadata: {planned}\ndeactivate it first (or reload it with the \
         command that changes it)"
    )]
    Differs {
        /// The device-mapper name.
        name: String,
        /// The live table, as the kernel prints it.
        live: String,
        /// The table the metadata gives.
        planned: String,
    },
    /// A deactivation or removal met a device that is open.
    #[error("LV {lv} is in use ({name} is open {count} time(s)): unmount it or stop what uses it, then retry")]
    InUse {
        /// The LV's name.
        lv: String,
        /// The open device's device-mapper name (the LV's or one under it).
        name: String,
        /// Its open count.
        count: i32,
    },
    /// A device path in a table has no device number (a missing PV node).
    #[error("cannot resolve {path} to a device number: {source}")]
    Resolve {
        /// The path in the table.
        path: String,
        /// Why it did not resolve.
        #[source]
        source: std::io::Error,
    },
    /// Making or removing a node or link under /dev failed.
    #[error("{path}: {source}")]
    Node {
        /// The node's or link's path.
        path: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A step failed after devices had resumed with new tables that could
    /// not be put back (a thin pool keeps the size it grew to): the change
    /// rolls forward. The caller keeps its new metadata; reloading the LV
    /// from it (`lvchange --refresh`) loads the rest.
    #[error(
        "{failed}; {} kept the new table{} (it cannot go back once resumed), so the new \
         metadata is kept: reload the LV's devices from it to finish the change (lvm2's \
         `lvchange --refresh VG/LV`, or deactivate and activate the LV){}",
        kept.join(", "),
        if kept.len() == 1 { "" } else { "s" },
        if undo.is_empty() { String::new() } else { format!("; undoing the rest also failed: {undo}") }
    )]
    PartlyApplied {
        /// The step's failure.
        failed: Box<EngineError>,
        /// The devices left with their new tables live.
        kept: Vec<String>,
        /// What the undo could not do, if anything.
        undo: String,
    },
    /// A step failed, and so did undoing the steps before it: the kernel
    /// is left part way (the `undo` text says where).
    #[error("{failed}; undoing what this call did also failed: {undo}")]
    UndoFailed {
        /// The step's failure.
        failed: Box<EngineError>,
        /// What the undo could not do.
        undo: String,
    },
}

/// An engine call's result.
pub type Result<T> = std::result::Result<T, EngineError>;

/// Where device nodes go (tests point it elsewhere), and how long a
/// device-mapper change waits for udev to make them.
#[derive(Debug, Clone)]
pub struct Dev {
    /// The directory that stands for /dev (nodes go to `<root>/mapper`,
    /// links to `<root>/<vg>`).
    pub root: PathBuf,
    /// How long a change that makes a uevent waits for udev.
    pub udev_wait: std::time::Duration,
}

impl Default for Dev {
    fn default() -> Dev {
        Dev {
            root: PathBuf::from("/dev"),
            udev_wait: dm::udev::DEFAULT_TIMEOUT,
        }
    }
}

impl Dev {
    /// The device-mapper control node, with this udev wait.
    pub fn control(&self) -> dm::Result<dm::Control> {
        dm::Control::open_with(self.udev_wait)
    }
}

/// A new device with its table, live: create, load, resume.
pub fn bring_up(d: &PlannedDevice) -> [Step; 3] {
    [
        Step::Create {
            name: d.name.clone(),
            uuid: d.uuid.clone(),
            read_only: d.read_only,
        },
        Step::Load {
            name: d.name.clone(),
            table: d.table.clone(),
            read_only: d.read_only,
        },
        Step::Resume {
            name: d.name.clone(),
        },
    ]
}

/// The steps that activate `plan`: devices that do not exist are created,
/// loaded and resumed, dependencies first; devices that exist must already
/// have the planned table (activation is idempotent), else the call stops
/// before changing anything.
pub fn activation_steps(ctl: &dyn DeviceMapper, dev: &Dev, plan: &Plan) -> Result<Vec<Step>> {
    let (steps, differs) = activation_steps_resuming(ctl, dev, plan)?;
    match differs.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(steps),
    }
}

/// [`activation_steps`] for an activation that must not leave a device
/// suspended: a suspended device whose live table differs from the plan
/// (and whose inactive slot does not hold the planned one) is still
/// resumed with its live table (its inactive slot cleared first), and the
/// difference is returned beside the steps, to report once they have run.
/// A table left in the inactive slot of a device that is not suspended is
/// cleared (under the VG lock no other command is loading it; a later
/// resume by anyone would make it live).
pub fn activation_steps_resuming(
    ctl: &dyn DeviceMapper,
    dev: &Dev,
    plan: &Plan,
) -> Result<(Vec<Step>, Vec<EngineError>)> {
    let mut steps = Vec::new();
    let mut differs = Vec::new();
    for d in &plan.devices {
        let info = ctl.info(&d.name)?;
        let exists = info.is_some();
        let node_ok = info.as_ref().is_some_and(|i| {
            ctl.device_number(&dev.root.join("mapper").join(&d.name))
                .is_ok_and(|n| n == (i.major, i.minor))
        });
        match info {
            None => steps.extend(bring_up(d)),
            Some(info) => {
                check_ours(d, &info)?;
                let live = ctl.table(&d.name)?;
                let planned = resolve_table(ctl, &d.table)?;
                if same_table(&live, &planned) {
                    steps.extend(resume_left_suspended(d, &info));
                } else if info.inactive_table && same_table(&ctl.inactive_table(&d.name)?, &planned)
                {
                    // A reload stopped between its load and its resume: the
                    // metadata has the new table, the inactive slot holds
                    // it. The swap finishes it.
                    if !info.suspended {
                        steps.push(Step::Suspend {
                            name: d.name.clone(),
                            how: Suspend::NoFlush,
                        });
                    }
                    steps.push(Step::Resume {
                        name: d.name.clone(),
                    });
                } else {
                    if info.suspended {
                        steps.extend(resume_left_suspended(d, &info));
                    }
                    differs.push(EngineError::Differs {
                        name: d.name.clone(),
                        live: join(&live),
                        planned: join(&planned),
                    });
                }
            }
        }
        if !node_ok {
            steps.push(Step::Node {
                name: d.name.clone(),
            });
        }
        if let Some(link) = &d.link {
            if !exists || !ctl.link_points_to(&dev.root, link, &d.name) {
                steps.push(Step::Link {
                    link: link.clone(),
                    name: d.name.clone(),
                });
            }
        }
    }
    Ok((steps, differs))
}

/// A device with the planned table that a stopped command left suspended
/// (every I/O to it, and to what stands on it, waits): resumed, keeping its
/// live table (a table that command loaded into the inactive slot is
/// dropped first, or the resume would make it live).
fn resume_left_suspended(d: &PlannedDevice, info: &dm::Info) -> Vec<Step> {
    let mut steps = Vec::new();
    if info.inactive_table {
        steps.push(Step::Clear {
            name: d.name.clone(),
        });
    }
    if info.suspended {
        steps.push(Step::Resume {
            name: d.name.clone(),
        });
    }
    steps
}

/// The steps that give active devices the tables of `plan` (an LV that
/// grew or shrank): new tables into the inactive slots, then the changed
/// devices suspended top-down and resumed bottom-up, so that no device is
/// suspended while a table is still being loaded. Devices of the plan that
/// are not active are left alone (they get the new table when activated).
pub fn reload_steps(ctl: &dyn DeviceMapper, plan: &Plan, how: Suspend) -> Result<Vec<Step>> {
    reload_steps_cycling(ctl, plan, how, &[])
}

/// [`reload_steps`], with the active devices named in `cycle` suspended and
/// resumed even when their table stays the same: a target that reads its
/// devices' sizes on resume (a thin pool whose metadata grew) sees them so.
pub fn reload_steps_cycling(
    ctl: &dyn DeviceMapper,
    plan: &Plan,
    how: Suspend,
    cycle: &[String],
) -> Result<Vec<Step>> {
    let mut changed = Vec::new();
    let mut steps = Vec::new();
    for d in &plan.devices {
        let Some(info) = ctl.info(&d.name)? else {
            continue;
        };
        check_ours(d, &info)?;
        let live = ctl.table(&d.name)?;
        let planned = resolve_table(ctl, &d.table)?;
        if same_table(&live, &planned) {
            if cycle.contains(&d.name) {
                changed.push(d.name.clone());
            }
            continue;
        }
        steps.push(Step::Load {
            name: d.name.clone(),
            table: d.table.clone(),
            read_only: d.read_only,
        });
        // A linear layer under another device of the plan that grows is
        // swapped at once (lvm2's preload does the same): the layer above
        // still maps only the old range, and its own new, longer table is
        // refused by targets that check their devices' size (dm-cache).
        let grows = planned.iter().map(|l| l.length).sum::<u64>()
            > live.iter().map(|l| l.length).sum::<u64>();
        let linear = planned.iter().all(|l| {
            matches!(
                l.target,
                crate::dm::table::Target::Linear { .. } | crate::dm::table::Target::Striped { .. }
            )
        });
        let me = DevRef::Path(mapper_path(&d.name));
        let under = plan
            .devices
            .iter()
            .any(|o| o.table.iter().any(|l| l.target.devices().contains(&&me)));
        if grows && linear && under {
            steps.push(Step::Suspend {
                name: d.name.clone(),
                how,
            });
            steps.push(Step::Resume {
                name: d.name.clone(),
            });
            continue;
        }
        changed.push(d.name.clone());
    }
    swap(&mut steps, &changed, how);
    Ok(steps)
}

/// The loaded tables of `changed` (in plan order, dependencies first) go
/// live: suspended top-down, resumed bottom-up.
fn swap(steps: &mut Vec<Step>, changed: &[String], how: Suspend) {
    for name in changed.iter().rev() {
        steps.push(Step::Suspend {
            name: name.clone(),
            how,
        });
    }
    for name in changed {
        steps.push(Step::Resume { name: name.clone() });
    }
}

/// The steps that move an active LV onto `plan` when its layers change
/// (lvm2's `lv_update_and_reload`: a cache attached or detached, a COW
/// grown): layers the plan adds are created, loaded and resumed first
/// (nothing uses them yet); changed tables go into the inactive slots; the
/// changed devices are suspended top-down and resumed bottom-up; then the
/// devices named in `gone`, which nothing uses any more, are removed.
/// Nothing when `top` (the LV's own device) is not active: the metadata
/// alone changes then.
pub fn update_steps(
    ctl: &dyn DeviceMapper,
    dev: &Dev,
    plan: &Plan,
    top: &str,
    how: Suspend,
    gone: &[String],
) -> Result<Vec<Step>> {
    if ctl.info(top)?.is_none() {
        return Ok(Vec::new());
    }
    let mut steps = Vec::new();
    let mut changed = Vec::new();
    let mut created: Vec<String> = Vec::new();
    for d in &plan.devices {
        match ctl.info(&d.name)? {
            None => {
                created.push(mapper_path(&d.name));
                steps.extend(bring_up(d));
                steps.push(Step::Node {
                    name: d.name.clone(),
                });
                if let Some(link) = &d.link {
                    steps.push(Step::Link {
                        link: link.clone(),
                        name: d.name.clone(),
                    });
                }
            }
            Some(info) => {
                check_ours(d, &info)?;
                // A table over a layer this call creates is new by definition
                // (and cannot be resolved before that layer exists).
                let over_new = d.table.iter().any(|l| {
                    l.target
                        .devices()
                        .iter()
                        .any(|r| matches!(r, DevRef::Path(p) if created.contains(p)))
                });
                if over_new || !same_table(&ctl.table(&d.name)?, &resolve_table(ctl, &d.table)?) {
                    steps.push(Step::Load {
                        name: d.name.clone(),
                        table: d.table.clone(),
                        read_only: d.read_only,
                    });
                    changed.push(d.name.clone());
                }
                if let Some(link) = &d.link {
                    if !ctl.link_points_to(&dev.root, link, &d.name) {
                        steps.push(Step::Link {
                            link: link.clone(),
                            name: d.name.clone(),
                        });
                    }
                }
            }
        }
    }
    swap(&mut steps, &changed, how);
    for name in gone {
        if ctl.info(name)?.is_some() {
            steps.push(Step::RemoveNode { name: name.clone() });
            steps.push(Step::Remove { name: name.clone() });
        }
    }
    Ok(steps)
}

/// The steps that deactivate `plan`'s LVs: the devices of `targets` (LV
/// names; all of the plan's when empty) and every layer under them that
/// nothing outside the plan still uses, top-down. Refused, before anything
/// changes, when one of the LVs asked for is open.
pub fn deactivation_steps(
    ctl: &dyn DeviceMapper,
    plan: &Plan,
    targets: &[String],
) -> Result<Vec<Step>> {
    let mut infos = Vec::with_capacity(plan.devices.len());
    for d in &plan.devices {
        let info = ctl.info(&d.name)?;
        if let Some(info) = &info {
            check_ours(d, info)?;
        }
        infos.push(info);
    }
    let wanted = |d: &PlannedDevice| targets.is_empty() || targets.contains(&d.lv);
    // What each existing device's live table stands on: the kernel's view,
    // which may differ from the plan (a merge waiting for activation).
    let mut deps = Vec::with_capacity(plan.devices.len());
    for (d, info) in plan.devices.iter().zip(&infos) {
        deps.push(match info {
            Some(_) => ctl
                .table(&d.name)?
                .iter()
                .flat_map(|l| l.target.devices().into_iter().cloned().collect::<Vec<_>>())
                .collect::<Vec<_>>(),
            None => Vec::new(),
        });
    }
    let mut removed = vec![false; plan.devices.len()];
    for i in (0..plan.devices.len()).rev() {
        let d = &plan.devices[i];
        let Some(info) = &infos[i] else { continue };
        // Opens by devices of the plan that this call removes.
        let me = DevRef::Number(info.major, info.minor);
        let inside = (0..plan.devices.len())
            .filter(|&j| removed[j] && deps[j].contains(&me))
            .count() as i32;
        let outside = info.open_count - inside;
        if outside <= 0 {
            removed[i] = true;
        } else if wanted(d) && d.link.is_some() {
            return Err(EngineError::InUse {
                lv: d.lv.clone(),
                name: d.name.clone(),
                count: outside,
            });
        }
        // A shared layer still in use by others stays.
    }
    let mut steps = Vec::new();
    for (i, d) in plan.devices.iter().enumerate().rev() {
        if !removed[i] {
            continue;
        }
        if let Some(link) = &d.link {
            steps.push(Step::Unlink { link: link.clone() });
        }
        steps.push(Step::RemoveNode {
            name: d.name.clone(),
        });
        steps.push(Step::Remove {
            name: d.name.clone(),
        });
    }
    Ok(steps)
}

fn check_ours(d: &PlannedDevice, info: &dm::Info) -> Result<()> {
    if info.uuid != d.uuid {
        return Err(EngineError::Foreign {
            name: d.name.clone(),
            expected: d.uuid.clone(),
            found: info.uuid.clone(),
        });
    }
    Ok(())
}

fn join(table: &[TableLine]) -> String {
    table
        .iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Tables compare as the kernel prints them back.
fn same_table(live: &[TableLine], planned: &[TableLine]) -> bool {
    live.len() == planned.len()
        && live
            .iter()
            .zip(planned)
            .all(|(a, b)| a.to_string() == b.to_string())
}

/// Replaces device paths with `major:minor`: `/dev/mapper/<name>` from the
/// kernel (the node may not exist yet), anything else from the node itself.
pub fn resolve_table(ctl: &dyn DeviceMapper, table: &[TableLine]) -> Result<Vec<TableLine>> {
    table
        .iter()
        .map(|l| {
            Ok(TableLine {
                start: l.start,
                length: l.length,
                target: {
                    let mut target = l.target.clone();
                    for d in target.devices_mut() {
                        *d = resolve(ctl, d)?;
                    }
                    target
                },
            })
        })
        .collect()
}

fn resolve(ctl: &dyn DeviceMapper, dev: &DevRef) -> Result<DevRef> {
    let DevRef::Path(path) = dev else {
        return Ok(dev.clone());
    };
    if let Some(name) = path.strip_prefix("/dev/mapper/") {
        if let Some(info) = ctl.info(name)? {
            return Ok(DevRef::Number(info.major, info.minor));
        }
    }
    let (major, minor) =
        ctl.device_number(Path::new(path))
            .map_err(|source| EngineError::Resolve {
                path: path.clone(),
                source,
            })?;
    Ok(DevRef::Number(major, minor))
}

/// One device's part of an activation: its create, load, resume, node and
/// link, and the devices of the same run its table stands on.
struct Unit<'s> {
    /// Its place in the plan: devices are created in plan order.
    index: usize,
    name: &'s str,
    steps: Vec<&'s Step>,
    wave: usize,
}

/// An activation's steps as waves of devices: every device of a wave
/// stands only on devices of earlier waves (or on devices that exist), so
/// a wave's devices may come up side by side. None when the steps are not
/// a pure activation (anything but create/load/resume/node/link).
fn activation_waves(steps: &[Step]) -> Option<Vec<Vec<Unit<'_>>>> {
    let units = group_units(steps, |step| match step {
        Step::Create { name, .. }
        | Step::Load { name, .. }
        | Step::Resume { name }
        | Step::Node { name }
        | Step::Link { name, .. } => Some(Some(name.as_str())),
        _ => None,
    })?;
    // An existing device resumed (one left suspended) goes in order,
    // bottom-up: a resume may do I/O to the devices below it (a thin pool's
    // commit), which must not be suspended still.
    let resumes_existing = |u: &Unit| {
        u.steps.iter().any(|s| matches!(s, Step::Resume { .. }))
            && !u.steps.iter().any(|s| matches!(s, Step::Create { .. }))
    };
    if units.iter().any(resumes_existing) {
        return None;
    }
    let needs: Vec<Vec<String>> = units
        .iter()
        .map(|u| {
            u.steps
                .iter()
                .filter_map(|s| match s {
                    Step::Load { table, .. } => Some(table),
                    _ => None,
                })
                .flat_map(|t| t.iter().flat_map(|l| l.target.devices()))
                .filter_map(|d| match d {
                    DevRef::Path(p) => p.strip_prefix("/dev/mapper/").map(str::to_owned),
                    DevRef::Number(..) => None,
                })
                .collect()
        })
        .collect();
    let names: Vec<&str> = units.iter().map(|u| u.name).collect();
    Some(into_waves(units, |i, j| {
        needs[i].iter().any(|n| n == names[j])
    }))
}

/// The steps as units, one per device, in step order. `device_of` names a
/// step's device (`Some(None)`: a step that names none, which opens a unit
/// the next step names); None when a step does not belong in such a run,
/// or a device's steps are not together.
fn group_units<'s>(
    steps: &'s [Step],
    device_of: impl Fn(&Step) -> Option<Option<&str>>,
) -> Option<Vec<Unit<'s>>> {
    let mut units: Vec<Unit> = Vec::new();
    for step in steps {
        match (units.last_mut(), device_of(step)?) {
            (Some(u), Some(n)) if u.name == n || u.name.is_empty() => {
                u.name = n;
                u.steps.push(step);
            }
            (_, name) => {
                let name = name.unwrap_or("");
                if !name.is_empty() && units.iter().any(|u| u.name == name) {
                    return None;
                }
                units.push(Unit {
                    index: units.len(),
                    name,
                    steps: vec![step],
                    wave: 0,
                });
            }
        }
    }
    (!units.iter().any(|u| u.name.is_empty())).then_some(units)
}

/// Groups `units` (in step order) into waves: unit `i` goes in the wave
/// after every earlier unit `j` with `after(i, j)`.
fn into_waves(
    mut units: Vec<Unit<'_>>,
    after: impl Fn(usize, usize) -> bool,
) -> Vec<Vec<Unit<'_>>> {
    for i in 0..units.len() {
        units[i].wave = (0..i)
            .filter(|&j| after(i, j))
            .map(|j| units[j].wave + 1)
            .max()
            .unwrap_or(0);
    }
    let mut waves: Vec<Vec<Unit>> = Vec::new();
    for u in units {
        while waves.len() <= u.wave {
            waves.push(Vec::new());
        }
        waves[u.wave].push(u);
    }
    waves
}

/// How many devices of one wave come up at once. Each resume waits for
/// the kernel's RCU grace periods, which threads share: many thin LVs come
/// up in a fraction of the time one after another takes.
const PARALLEL_DEVICES: usize = 16;

/// An activation run wave by wave, the devices of a wave side by side; on
/// failure everything this call made is undone, newest wave first.
///
/// The devices are first created one after another in plan order (a
/// create is cheap and gives the device its minor): the minors are then
/// the ones lvm2 gives the same plan, whatever order the loads and
/// resumes finish in.
fn run_waves(ctl: &dyn DeviceMapper, dev: &Dev, waves: &[Vec<Unit<'_>>]) -> Result<()> {
    fn is_create(s: &&&Step) -> bool {
        matches!(s, Step::Create { .. })
    }
    let mut in_plan_order: Vec<&Unit> = waves.iter().flatten().collect();
    in_plan_order.sort_by_key(|u| u.index);
    let mut created: Vec<&Step> = Vec::new();
    let mut failure = None;
    for u in in_plan_order {
        for step in u.steps.iter().filter(is_create) {
            if let Err(e) = run_one(ctl, dev, step) {
                failure = Some(e);
                break;
            }
            created.push(*step);
        }
        if failure.is_some() {
            break;
        }
    }
    let mut done: Vec<Vec<Vec<&Step>>> = Vec::new();
    let waves_to_run = if failure.is_none() { waves } else { &[] };
    for wave in waves_to_run {
        let per_thread = wave.len().div_ceil(PARALLEL_DEVICES).max(1);
        let results: Vec<(Vec<&Step>, Option<EngineError>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = wave
                .chunks(per_thread)
                .map(|chunk| {
                    scope.spawn(move || {
                        chunk
                            .iter()
                            .map(|u| {
                                let mut ok = Vec::new();
                                for step in u.steps.iter().filter(|s| !is_create(s)) {
                                    if let Err(e) = run_one(ctl, dev, step) {
                                        return (ok, Some(e));
                                    }
                                    ok.push(*step);
                                }
                                (ok, None)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("an activation thread panicked"))
                .collect()
        });
        let mut wave_done = Vec::new();
        for (ok, err) in results {
            wave_done.push(ok);
            if failure.is_none() {
                failure = err;
            }
        }
        done.push(wave_done);
        if failure.is_some() {
            break;
        }
    }
    let Some(e) = failure else { return Ok(()) };
    let mut undo_errors = Vec::new();
    let mut undo = |s: &Step| {
        if let Err(u) = undo_one(ctl, dev, s, &Replaced::default()) {
            undo_errors.push(format!("undo of `{s}`: {u}"));
        }
    };
    for wave in done.iter().rev() {
        for unit in wave {
            for s in unit.iter().rev() {
                undo(s);
            }
        }
    }
    // The creates last, newest first: a device goes once nothing of this
    // call stands on it.
    for s in created.iter().rev() {
        undo(s);
    }
    Err(if undo_errors.is_empty() {
        e
    } else {
        EngineError::UndoFailed {
            failed: Box::new(e),
            undo: undo_errors.join("; "),
        }
    })
}

/// A deactivation's steps as waves of devices, top first: every device of
/// a wave is stood on only by devices of earlier waves (read from the
/// kernel's live tables), so a wave's devices may go side by side. None
/// when the steps are not a pure deactivation (unlink, node removal and
/// removal, each device's together) or a table cannot be read.
fn deactivation_waves<'s>(ctl: &dyn DeviceMapper, steps: &'s [Step]) -> Option<Vec<Vec<Unit<'s>>>> {
    // An unlink comes first in its device's group and names no device.
    let units = group_units(steps, |step| match step {
        Step::RemoveNode { name } | Step::Remove { name } => Some(Some(name.as_str())),
        Step::Unlink { .. } => Some(None),
        _ => None,
    })?;
    // Which units each unit's live table stands on.
    let numbers: Vec<(u32, u32)> = units
        .iter()
        .map(|u| ctl.info(u.name).ok().flatten().map(|i| (i.major, i.minor)))
        .collect::<Option<_>>()?;
    let mut under: Vec<Vec<usize>> = Vec::with_capacity(units.len());
    for u in &units {
        let table = ctl.table(u.name).ok()?;
        under.push(
            table
                .iter()
                .flat_map(|l| l.target.devices())
                .filter_map(|d| match d {
                    DevRef::Number(a, b) => numbers.iter().position(|n| *n == (*a, *b)),
                    DevRef::Path(_) => None,
                })
                .collect(),
        );
    }
    // Top-down: a unit goes after those that stand on it (they come
    // earlier in the steps).
    Some(into_waves(units, |i, j| under[j].contains(&i)))
}

/// A deactivation run wave by wave, top first, a wave's devices side by
/// side (each removal waits for grace periods, as a resume does). Nothing
/// of a deactivation is undone (as in [`run`]); a wave that fails stops
/// the run before the devices under it.
fn run_removal_waves(ctl: &dyn DeviceMapper, dev: &Dev, waves: &[Vec<Unit<'_>>]) -> Result<()> {
    for wave in waves {
        let per_thread = wave.len().div_ceil(PARALLEL_DEVICES).max(1);
        let failed: Option<EngineError> = std::thread::scope(|scope| {
            let handles: Vec<_> = wave
                .chunks(per_thread)
                .map(|chunk| {
                    scope.spawn(move || {
                        for u in chunk {
                            for step in &u.steps {
                                run_one(ctl, dev, step)?;
                            }
                        }
                        Ok::<(), EngineError>(())
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().expect("a deactivation thread panicked").err())
                .next()
        });
        if let Some(e) = failed {
            return Err(e);
        }
    }
    Ok(())
}

/// Runs `steps` in order; on failure, undoes the steps done, newest first.
/// An activation or deactivation whose devices can come and go side by
/// side (the thin LVs of a pool) runs in waves instead (`run_waves`,
/// `run_removal_waves`).
pub fn run(ctl: &dyn DeviceMapper, dev: &Dev, steps: &[Step]) -> Result<()> {
    if let Some(waves) = activation_waves(steps) {
        if waves.iter().any(|w| w.len() > 1) {
            return run_waves(ctl, dev, &waves);
        }
    }
    if let Some(waves) = deactivation_waves(ctl, steps) {
        if waves.iter().any(|w| w.len() > 1) {
            return run_removal_waves(ctl, dev, &waves);
        }
    }
    let mut done: Vec<&Step> = Vec::new();
    let mut replaced = Replaced::default();
    for step in steps {
        let ran = replaced
            .note(ctl, step, &done)
            .and_then(|()| run_one(ctl, dev, step));
        if let Err(e) = ran {
            let mut undo_errors = Vec::new();
            // A resume that swapped its table in and then failed (the
            // target's preresume refused) took effect: it counts as done.
            if let Step::Resume { name } = step {
                if ctl
                    .info(name)
                    .ok()
                    .flatten()
                    .is_some_and(|i| !i.inactive_table)
                {
                    done.push(step);
                }
            }
            // Devices resumed with new tables: the old ones come back only
            // when every such device is a plain remap. A thin pool (or a
            // cache, a snapshot) records its new size as it resumes and
            // refuses a smaller table after: then nothing is put back and
            // the change rolls forward (the caller keeps its new metadata).
            let resumed: Vec<&str> = done
                .iter()
                .filter_map(|s| match s {
                    Step::Resume { name } if replaced.replaced(name) => Some(name.as_str()),
                    _ => None,
                })
                .collect();
            let revert = resumed.iter().all(|n| replaced.revertible(n));
            // The tables this call loaded are dropped first: undoing a
            // suspend resumes the device, which would make a table still
            // in its inactive slot live.
            let (loads, others): (Vec<&Step>, Vec<&Step>) =
                done.iter().partition(|s| matches!(s, Step::Load { .. }));
            let mut reverting = revert;
            let mut left_new: Vec<String> = Vec::new();
            for s in loads.iter().rev().chain(others.iter().rev()) {
                if let Step::Resume { name } = s {
                    if !replaced.replaced(name) {
                        continue;
                    }
                    // Upper layers first: once one cannot be put back, the
                    // layers under it keep their new tables too.
                    if !reverting {
                        left_new.push(name.clone());
                        continue;
                    }
                }
                if let Err(u) = undo_one(ctl, dev, s, &replaced) {
                    undo_errors.push(format!("undo of `{s}`: {u}"));
                    if let Step::Resume { name } = s {
                        reverting = false;
                        left_new.push(name.clone());
                    }
                }
            }
            // A step that failed half-way (a suspend that did suspend) is
            // undone too where that is harmless.
            if let Step::Suspend { name, .. } = step {
                let _ = ctl.resume(name);
            }
            return Err(if !left_new.is_empty() {
                EngineError::PartlyApplied {
                    failed: Box::new(e),
                    kept: left_new,
                    undo: undo_errors.join("; "),
                }
            } else if undo_errors.is_empty() {
                e
            } else {
                EngineError::UndoFailed {
                    failed: Box::new(e),
                    undo: undo_errors.join("; "),
                }
            });
        }
        done.push(step);
    }
    Ok(())
}

fn run_one(ctl: &dyn DeviceMapper, dev: &Dev, step: &Step) -> Result<()> {
    match step {
        Step::Create {
            name,
            uuid,
            read_only,
        } => {
            ctl.create(name, uuid, *read_only)?;
        }
        Step::Load {
            name,
            table,
            read_only,
        } => {
            let resolved = resolve_table(ctl, table)?;
            ctl.load(name, &resolved, *read_only)?;
        }
        Step::Suspend { name, how } => ctl.suspend(name, *how)?,
        Step::Resume { name } => {
            ctl.resume(name)?;
        }
        Step::Clear { name } => ctl.clear(name)?,
        Step::Remove { name } => ctl.remove(name)?,
        Step::Message { name, message } => {
            ctl.message(name, message)?;
        }
        Step::Node { name } => {
            let info = ctl.info(name)?.ok_or_else(|| EngineError::Node {
                path: mapper_path(name),
                source: std::io::Error::from_raw_os_error(nix::libc::ENXIO),
            })?;
            ctl.make_node(&dev.root, name, info.major, info.minor)
                .map_err(|source| EngineError::Node {
                    path: mapper_path(name),
                    source,
                })?;
        }
        Step::RemoveNode { name } => {
            ctl.remove_node(&dev.root, name)
                .map_err(|source| EngineError::Node {
                    path: mapper_path(name),
                    source,
                })?
        }
        Step::Link { link, name } => {
            ctl.make_link(&dev.root, link, name)
                .map_err(|source| EngineError::Node {
                    path: link.clone(),
                    source,
                })?
        }
        Step::Unlink { link } => {
            ctl.remove_link(&dev.root, link)
                .map_err(|source| EngineError::Node {
                    path: link.clone(),
                    source,
                })?
        }
    }
    Ok(())
}

/// The live tables a run replaces, as they were: a device resumed with its
/// new table before a later step failed gets its old one back, so that
/// the kernel is as the metadata the caller restores says (an LV's lower
/// layer grown while the layer above failed to resume would otherwise map
/// extents the restored metadata calls free). Only plain remaps (linear,
/// striped, error, zero) are put back: a target with state of its own
/// (a thin pool records its data size as it resumes) is not.
#[derive(Default)]
struct Replaced {
    /// Old tables of the devices a load replaces (with their read-only flag);
    /// `None` for one that cannot be put back.
    tables: std::collections::BTreeMap<String, Option<(Vec<TableLine>, bool)>>,
}

impl Replaced {
    /// Before `step` runs: a load into a device that this run did not
    /// create and that has a live table keeps that table.
    fn note(&mut self, ctl: &dyn DeviceMapper, step: &Step, done: &[&Step]) -> Result<()> {
        let Step::Load { name, table, .. } = step else {
            return Ok(());
        };
        let created = done
            .iter()
            .any(|s| matches!(s, Step::Create { name: n, .. } if n == name));
        if created || self.tables.contains_key(name) {
            return Ok(());
        }
        if let Some(info) = ctl.info(name)?.filter(|i| i.live_table) {
            let old = ctl.table(name)?;
            let plain = |t: &[TableLine]| {
                t.iter().all(|l| {
                    matches!(
                        l.target,
                        dm::table::Target::Linear { .. }
                            | dm::table::Target::Striped { .. }
                            | dm::table::Target::Error
                            | dm::table::Target::Zero
                    )
                })
            };
            let revertible = plain(&old) && plain(table);
            self.tables
                .insert(name.clone(), revertible.then_some((old, info.read_only)));
        }
        Ok(())
    }

    /// Whether this run replaced the live table of `name`.
    fn replaced(&self, name: &str) -> bool {
        self.tables.contains_key(name)
    }

    /// Whether `name`'s old table can be put back.
    fn revertible(&self, name: &str) -> bool {
        self.tables.get(name).is_some_and(Option::is_some)
    }
}

/// The inverse of a step that succeeded.
fn undo_one(ctl: &dyn DeviceMapper, dev: &Dev, step: &Step, replaced: &Replaced) -> Result<()> {
    match step {
        Step::Create { name, .. } => ctl.remove(name)?,
        Step::Load { name, .. } => {
            // Resumed since? Then the Resume's undo cannot bring the old
            // table back; a created device goes away with its Create.
            if ctl.info(name)?.is_some_and(|i| i.inactive_table) {
                ctl.clear(name)?;
            }
        }
        Step::Suspend { name, .. } => {
            ctl.resume(name)?;
        }
        Step::Node { name } => {
            let _ = ctl.remove_node(&dev.root, name);
        }
        Step::Link { link, .. } => {
            let _ = ctl.remove_link(&dev.root, link);
        }
        // A device this run resumed with a new table: its old one again
        // (noflush: queued I/O waits, and nothing above it is resumed yet).
        Step::Resume { name } => {
            if let Some(Some((table, read_only))) = replaced.tables.get(name) {
                if ctl.info(name)?.is_some_and(|i| i.live_table) && ctl.table(name)? != *table {
                    ctl.load(name, table, *read_only)?;
                    ctl.suspend(name, Suspend::NoFlush)?;
                    ctl.resume(name)?;
                }
            }
        }
        // Removes, messages and unlinks are not undone: a device created
        // and resumed by this call is removed by its Create's undo;
        // removals run last in a deactivation, after the check that
        // nothing is open.
        Step::Clear { .. }
        | Step::Remove { .. }
        | Step::Message { .. }
        | Step::RemoveNode { .. }
        | Step::Unlink { .. } => {}
    }
    Ok(())
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
