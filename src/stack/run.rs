//! plan, apply, up and down: the stack's nodes in bring-up order (down:
//! the reverse), each observed just before it is planned, so that every
//! layer is read once the layers under it are up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::file::{Node, Provider, Stack};
use super::journal::{self, Entry, Interrupted, Journal};
use super::observe::{self, VgSeen};
use super::plan::{self, Allow, NodePlan};
use super::step::{Ctx, Step};
use super::{refused, Context, Result, StackError};
use crate::dm::Control;
use crate::error::ErrorKind;
use crate::lvm::inspect::LvKind;
use crate::lvm::names::{dm_name, lv_path};

/// What a run of the stack may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only say what apply would do.
    Plan,
    /// Make everything so.
    Apply,
    /// Bring up what exists (after a reboot); refuse to make anything.
    Up,
}

/// How far a device the file makes is, for planning what stands on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Avail {
    /// There, with what is on it readable.
    Now,
    /// Made by this plan: empty.
    Fresh,
    /// Brought up by this plan: what is on it is read once it is up.
    Later,
}

/// What a run of the stack did (apply, up, down, a container command) or,
/// planning, would do.
#[derive(Debug, Default)]
pub struct Report {
    /// Steps done (apply, up, down) or planned.
    pub steps: Vec<Step>,
    /// Differences left alone, and why.
    pub notes: Vec<String>,
    /// Layers the plan cannot read before the layers under them are up.
    pub deferred: Vec<String>,
    /// What an interrupted apply left, when this run finished it.
    pub resumed: Option<Interrupted>,
}

/// Called with each step as it starts (apply/up/down) or is planned
/// (`None`), and again when done (`Some(how long it took)`).
pub type OnStep<'a> = &'a mut dyn FnMut(usize, &Step, Option<std::time::Duration>);

struct Runner<'a, 'b> {
    ctx: Ctx<'a>,
    mode: Mode,
    allow: Allow,
    ctl: Control,
    journal: Option<Journal>,
    report: Report,
    avail: BTreeMap<PathBuf, Avail>,
    on_step: OnStep<'b>,
}

/// Steps `cairn up` may take: nothing is made, only brought up.
fn up_may(step: &Step) -> bool {
    matches!(
        step,
        Step::Activate { .. }
            | Step::DrbdUp { .. }
            | Step::DrbdPrimary { .. }
            | Step::ContainerStart { .. }
    )
}

/// Steps that make something new (up refuses them: apply's work).
fn makes(step: &Step) -> bool {
    matches!(
        step,
        Step::PvCreate { .. }
            | Step::VgCreate { .. }
            | Step::LvCreate { .. }
            | Step::CachePoolCreate { .. }
            | Step::CacheAttach { .. }
            | Step::ThinPoolCreate { .. }
            | Step::DrbdCreateMd { .. }
            | Step::ThinCreate { .. }
            | Step::Mkfs { .. }
            | Step::Populate { .. }
            | Step::LxcConfig { .. }
    )
}

impl<'a, 'b> Runner<'a, 'b> {
    /// A runner; with a journal `journal` (taking the lock) unless only
    /// planning. Returns what an interrupted run of that journal left.
    fn new(
        stack: &'a Stack,
        cx: &Context,
        mode: Mode,
        allow: Allow,
        on_step: OnStep<'b>,
        journal: Option<&str>,
    ) -> Result<(Runner<'a, 'b>, Option<Interrupted>)> {
        let (journal, earlier) = match journal {
            Some(name) => {
                let (j, earlier) = Journal::start_named(
                    &cx.state_dir,
                    name,
                    &stack.path.display().to_string(),
                    &cx.env.command,
                )?;
                (Some(j), earlier)
            }
            None => (None, None),
        };
        let mut ctx = Ctx::new(stack, cx.env.clone());
        ctx.dev = cx.dev.clone();
        let runner = Runner {
            ctx,
            mode,
            allow,
            ctl: cx.dev.control()?,
            journal,
            report: Report::default(),
            avail: BTreeMap::new(),
            on_step,
        };
        Ok((runner, earlier))
    }

    fn execute(&mut self, steps: Vec<Step>) -> Result<()> {
        for step in steps {
            let n = self.report.steps.len() + 1;
            (self.on_step)(n, &step, None);
            if self.mode != Mode::Plan {
                let started = std::time::Instant::now();
                if let Some(j) = &mut self.journal {
                    j.write(&Entry::Begin {
                        n,
                        step: step.to_string(),
                        container: step.container().map(str::to_owned),
                    })?;
                }
                crate::failpoint::hit(&format!("apply-step-{n}"));
                self.ctx.run(&step).map_err(|e| StackError::Step {
                    n,
                    step: step.to_string(),
                    source: Box::new(e),
                })?;
                if let Some(j) = &mut self.journal {
                    j.write(&Entry::Done { n })?;
                }
                (self.on_step)(n, &step, Some(started.elapsed()));
            }
            self.report.steps.push(step);
        }
        Ok(())
    }

    /// Keeps the steps up may take; refuses where something is missing.
    fn filter_up(&mut self, what: &str, plan: NodePlan) -> Result<Vec<Step>> {
        self.report.notes.extend(plan.notes);
        let mut keep = Vec::new();
        for step in plan.steps {
            if up_may(&step) {
                keep.push(step);
            } else if makes(&step) {
                return Err(refused(
                    ErrorKind::Refused,
                    format!(
                        "{what} is not made yet ({step}): run `cairn apply {}` first",
                        self.ctx.stack.path.display()
                    ),
                ));
            } else {
                self.report.notes.push(format!(
                    "{what}: the file asks for a change that apply makes: {step}"
                ));
            }
        }
        Ok(keep)
    }

    fn take(&mut self, what: &str, plan: NodePlan) -> Result<Vec<Step>> {
        if self.mode == Mode::Up {
            return self.filter_up(what, plan);
        }
        self.report.notes.extend(plan.notes);
        Ok(plan.steps)
    }

    fn avail_of(&self, p: &Provider, path: &Path) -> Avail {
        match p {
            Provider::External => Avail::Now,
            _ => self.avail.get(path).copied().unwrap_or(Avail::Now),
        }
    }

    /// How far the devices `node` provides are after its steps: made in
    /// this run (so empty, whatever an older device left in the same
    /// extents), brought up by a plan not yet run, or there.
    fn set_outputs(&mut self, node: Node, steps: &[Step], inputs: Avail) {
        let stack = self.ctx.stack;
        let executed = self.mode != Mode::Plan;
        let avail = |created: bool, activated: bool| {
            if inputs == Avail::Fresh || created {
                Avail::Fresh
            } else if !executed && (inputs == Avail::Later || activated) {
                Avail::Later
            } else {
                Avail::Now
            }
        };
        match node {
            Node::Vg(i) => {
                let vg = &stack.vgs[i];
                for lv in &vg.lvs {
                    let created = steps
                        .iter()
                        .any(|s| matches!(s, Step::LvCreate { lv: n, .. } if *n == lv.name));
                    let activated = steps
                        .iter()
                        .any(|s| matches!(s, Step::Activate { lvs, .. } if lvs.contains(&lv.name)));
                    let a = avail(created, activated);
                    for p in [
                        lv_path(&vg.name, &lv.name),
                        crate::lvm::activate::mapper_path(&dm_name(&vg.name, &lv.name, None)),
                    ] {
                        self.avail.insert(PathBuf::from(p), a);
                    }
                }
                for pool in &vg.thinpools {
                    let created = steps.iter().any(
                        |s| matches!(s, Step::ThinPoolCreate { pool: n, .. } if *n == pool.name),
                    );
                    let activated = steps.iter().any(
                        |s| matches!(s, Step::Activate { lvs, .. } if lvs.contains(&pool.name)),
                    );
                    self.avail.insert(
                        PathBuf::from(lv_path(&vg.name, &pool.name)),
                        avail(created, activated),
                    );
                }
            }
            Node::Drbd(i) => {
                let d = &stack.drbd[i];
                let created = steps.iter().any(|s| matches!(s, Step::DrbdCreateMd { .. }));
                let activated = steps
                    .iter()
                    .any(|s| matches!(s, Step::DrbdUp { .. } | Step::DrbdPrimary { .. }));
                self.avail.insert(d.device(), avail(created, activated));
            }
        }
    }

    fn node(&mut self, node: Node) -> Result<()> {
        let stack = self.ctx.stack;
        let inputs: Vec<(Provider, PathBuf)> = match node {
            Node::Vg(i) => stack.vgs[i]
                .pvs
                .iter()
                .map(|p| (p.provider.clone(), p.path.clone()))
                .collect(),
            Node::Drbd(i) => vec![(
                stack.drbd[i].disk.provider.clone(),
                stack.drbd[i].disk.path.clone(),
            )],
        };
        let worst = inputs
            .iter()
            .map(|(p, path)| self.avail_of(p, path))
            .max()
            .unwrap_or(Avail::Now);
        let name = stack.node_name(node);
        let plan = match (worst, node) {
            (Avail::Later, _) => {
                self.report.deferred.push(format!(
                    "{name}: read once the layers under it are up (apply does it then)"
                ));
                self.set_outputs(node, &[], Avail::Later);
                return Ok(());
            }
            (Avail::Fresh, Node::Vg(i)) => {
                // Some PVs are made in this run; the others may carry the
                // VG already (a VG growing onto a new LV).
                let vg = &stack.vgs[i];
                let fresh: Vec<usize> = vg
                    .pvs
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| self.avail_of(&p.provider, &p.path) == Avail::Fresh)
                    .map(|(k, _)| k)
                    .collect();
                let seen = observe::vg_with_fresh(vg, &self.ctl, &fresh)?;
                plan::vg(stack, vg, &seen, self.allow)?
            }
            (Avail::Fresh, Node::Drbd(i)) => {
                let d = &stack.drbd[i];
                let seen = observe::DrbdSeen {
                    config: std::fs::read_to_string(super::step::drbd_config_path(stack, &d.name))
                        .ok(),
                    md: observe::MdSeen::Blank,
                    kernel: None,
                };
                plan::drbd(stack, d, &seen, true)?
            }
            (Avail::Now, Node::Vg(i)) => {
                let seen = observe::vg(&stack.vgs[i], &self.ctl)?;
                plan::vg(stack, &stack.vgs[i], &seen, self.allow)?
            }
            (Avail::Now, Node::Drbd(i)) => {
                let d = &stack.drbd[i];
                let kernel = self
                    .ctx
                    .drbd()?
                    .status(Some(&d.name))?
                    .into_iter()
                    .find(|s| s.minor == d.minor);
                let seen = observe::drbd(stack, d, kernel);
                plan::drbd(stack, d, &seen, false)?
            }
        };
        let steps = self.take(&name, plan)?;
        self.set_outputs(node, &steps, worst);
        self.execute(steps)
    }

    fn containers(&mut self, left: &Interrupted) -> Result<()> {
        let resume_of = |name: &String| {
            if left.mkfs_cut.contains(name) {
                plan::Resume::MkfsCut
            } else if left.unfinished_containers.contains(name) {
                plan::Resume::Unfinished
            } else {
                plan::Resume::No
            }
        };
        let stack = self.ctx.stack;
        let mut seen_vgs: BTreeMap<String, Option<VgSeen>> = BTreeMap::new();
        for c in &stack.containers {
            let pool = PathBuf::from(lv_path(&c.vg, &c.pool));
            let a = self.avail.get(&pool).copied().unwrap_or(Avail::Now);
            if a == Avail::Later {
                self.report.deferred.push(format!(
                    "container {}: read once its pool {}/{} is up",
                    c.name, c.vg, c.pool
                ));
                continue;
            }
            let seen = if a == Avail::Fresh {
                // A new pool holds no volume; LXC may still know the name.
                observe::ContainerSeen {
                    config: crate::lxc::read_config(&stack.lxc_path, &c.name)?,
                    ..Default::default()
                }
            } else {
                if !seen_vgs.contains_key(&c.vg) {
                    let vg = stack.vg(&c.vg).expect("checked by the file");
                    let s = observe::vg(vg, &self.ctl)?;
                    seen_vgs.insert(c.vg.clone(), Some(s));
                }
                let vg_seen = seen_vgs[&c.vg].as_ref().expect("inserted above");
                observe::container(stack, c, vg_seen, &self.ctl)?
            };
            let what = format!("container {}", c.name);
            let planned = plan::container(c, &seen, resume_of(&c.name))
                .and_then(|plan| self.take(&what, plan));
            match planned {
                Ok(steps) => self.execute(steps)?,
                // up brings up what it can: one container that apply has
                // to make or fix does not keep the others down.
                Err(e) if self.mode == Mode::Up => self.report.notes.push(format!(
                    "{what} left down: {e}{}",
                    if resume_of(&c.name) != plan::Resume::No {
                        " (an interrupted apply was making it: `cairn apply` finishes it)"
                    } else {
                        ""
                    }
                )),
                Err(e) => return Err(e),
            }
        }
        if self.mode == Mode::Up {
            self.autostart_others()?;
        }
        Ok(())
    }

    /// `up` also starts containers made outside the file (`cairn container
    /// create`) on the file's VGs, when their config says lxc.start.auto.
    fn autostart_others(&mut self) -> Result<()> {
        let stack = self.ctx.stack;
        let mut steps = Vec::new();
        for cfg in crate::lxc::list(&stack.lxc_path)? {
            if stack.containers.iter().any(|c| c.name == cfg.name) || !cfg.start_auto {
                continue;
            }
            if !on_stack(stack, cfg.rootfs_device.as_deref()) {
                continue;
            }
            if crate::lxc::state(&stack.lxc_path, &cfg.name)? != crate::lxc::State::Running {
                steps.push(Step::ContainerStart {
                    container: cfg.name.clone(),
                });
            }
        }
        self.execute(steps)
    }
}

/// Whether a container's rootfs device is on one of the stack's VGs.
pub fn on_stack(stack: &Stack, device: Option<&Path>) -> bool {
    device.is_some_and(|d| {
        stack
            .vgs
            .iter()
            .any(|vg| d.starts_with(format!("/dev/{}/", vg.name)))
    })
}

/// plan, apply or up. `on_step` sees each step as it starts.
pub fn converge(
    stack: &Stack,
    cx: &Context,
    mode: Mode,
    allow: Allow,
    on_step: OnStep<'_>,
) -> Result<Report> {
    if mode == Mode::Apply {
        // Everything that can be refused from what is readable now is
        // refused before the first change (layers not up yet are checked
        // when apply reaches them).
        converge(stack, cx, Mode::Plan, allow, &mut |_, _, _| {})?;
    }
    // up keeps a journal of its own: an interrupted apply is apply's to finish.
    let journal_name = match mode {
        Mode::Plan => None,
        Mode::Apply => Some("apply"),
        Mode::Up => Some("up"),
    };
    let (mut runner, earlier) = Runner::new(stack, cx, mode, allow, on_step, journal_name)?;
    // What an interrupted apply was making: apply makes it again, plan
    // shows that, up says it left it down.
    let apply_left = match mode {
        Mode::Apply => earlier.clone(),
        Mode::Plan | Mode::Up => interrupted_apply(&cx.state_dir)?,
    };
    let resume = apply_left.clone().unwrap_or_default();
    runner.report.resumed = match mode {
        Mode::Plan => apply_left,
        Mode::Apply | Mode::Up => earlier,
    };
    for node in stack.order.clone() {
        runner.node(node)?;
    }
    runner.containers(&resume)?;
    finish(runner)
}

/// What an interrupted apply left, from its journal.
fn interrupted_apply(state_dir: &Path) -> Result<Option<Interrupted>> {
    let path = state_dir.join("apply.journal");
    if !path.exists() {
        return Ok(None);
    }
    Ok(journal::interrupted(&journal::read(&path)?))
}

/// `cairn down`: containers stopped, then every layer taken down in the
/// reverse of bring-up order. What is down already is skipped.
pub fn down(stack: &Stack, cx: &Context, on_step: OnStep<'_>) -> Result<Report> {
    let (mut runner, _) = Runner::new(
        stack,
        cx,
        Mode::Apply,
        Allow::default(),
        on_step,
        Some("down"),
    )?;
    let mut steps = Vec::new();
    for cfg in crate::lxc::list(&stack.lxc_path)? {
        if on_stack(stack, cfg.rootfs_device.as_deref())
            && crate::lxc::state(&stack.lxc_path, &cfg.name)? != crate::lxc::State::Stopped
        {
            steps.push(Step::ContainerStop {
                container: cfg.name.clone(),
            });
        }
    }
    runner.execute(steps)?;
    for node in stack.order.iter().rev() {
        let steps = match *node {
            Node::Vg(i) => {
                let vg = &stack.vgs[i];
                let names = observe::dm_names(&runner.ctl)?;
                if !vg.pvs.iter().all(|p| p.path.exists()) {
                    continue;
                }
                let seen = observe::vg(vg, &runner.ctl)?;
                let Some(md) = &seen.vg else { continue };
                let whole = vg.pvs.iter().all(|p| p.provider != Provider::External);
                let mut lvs: Vec<String> = Vec::new();
                if whole {
                    lvs.extend(md.lvs.iter().filter(|l| l.visible).map(|l| l.name.clone()));
                } else {
                    for pool in &vg.thinpools {
                        lvs.extend(seen.thin_lvs(&pool.name).into_iter().map(|(n, _)| n));
                        lvs.push(pool.name.clone());
                    }
                    lvs.extend(vg.lvs.iter().map(|l| l.name.clone()));
                }
                // Only what is up; a pool is up when its -tpool layer is.
                lvs.retain(|lv| {
                    names.contains(&dm_name(&vg.name, lv, None))
                        || names.contains(&dm_name(&vg.name, lv, Some("tpool")))
                });
                if lvs.is_empty() {
                    continue;
                }
                vec![Step::Deactivate {
                    vg: vg.name.clone(),
                    lvs,
                }]
            }
            Node::Drbd(i) => {
                let d = &stack.drbd[i];
                if !runner.ctx.drbd()?.resource_exists(&d.name)? {
                    continue;
                }
                vec![Step::DrbdDown {
                    resource: d.name.clone(),
                }]
            }
        };
        runner.execute(steps)?;
    }
    finish(runner)
}

/// A runner for the container commands, and what an interrupted one left.
fn runner<'a, 'b>(
    stack: &'a Stack,
    cx: &Context,
    on_step: OnStep<'b>,
) -> Result<(Runner<'a, 'b>, Option<Interrupted>)> {
    Runner::new(
        stack,
        cx,
        Mode::Apply,
        Allow::default(),
        on_step,
        Some("container"),
    )
}

fn finish(mut r: Runner<'_, '_>) -> Result<Report> {
    let report = std::mem::take(&mut r.report);
    if let Some(j) = r.journal.take() {
        j.finish()?;
    }
    Ok(report)
}

/// `cairn container create`: a container outside the stack file, made
/// with the same steps (and journal) as apply makes the file's.
pub fn create_container(
    stack: &Stack,
    cx: &Context,
    c: &super::file::Container,
    start: bool,
    on_step: OnStep<'_>,
) -> Result<Report> {
    let (mut r, earlier) = runner(stack, cx, on_step)?;
    // A `container create` of this name that was interrupted left a
    // volume that may hold half a filesystem: this run makes it again.
    let left = earlier.unwrap_or_default();
    let unfinished = left.unfinished_containers.contains(&c.name);
    let resume = if left.mkfs_cut.contains(&c.name) {
        plan::Resume::MkfsCut
    } else {
        plan::Resume::Unfinished
    };
    let seen = observe::vg_named(&r.ctx.env_for(&c.vg), &c.vg, &r.ctl)?;
    match seen.kind(&c.pool) {
        Some(LvKind::ThinPool { .. }) => {}
        _ => {
            return Err(refused(
                ErrorKind::NotFound,
                format!(
                    "VG {} has no thin pool {}: give --pool VG/POOL of an existing pool",
                    c.vg, c.pool
                ),
            ))
        }
    }
    if seen.kind(&c.name).is_some() && !unfinished {
        return Err(refused(
            ErrorKind::AlreadyExists,
            format!(
                "VG {} has an LV {} already: pick another container name",
                c.vg, c.name
            ),
        ));
    }
    if crate::lxc::read_config(&stack.lxc_path, &c.name)?.is_some() {
        return Err(refused(
            ErrorKind::AlreadyExists,
            format!(
                "container {} exists already ({}): pick another name",
                c.name,
                stack.lxc_path.join(&c.name).display()
            ),
        ));
    }
    let mut steps = if unfinished && seen.kind(&c.name).is_some() {
        let cseen = observe::container(stack, c, &seen, &r.ctl)?;
        let mut steps = plan::container(c, &cseen, resume)?.steps;
        if !cseen.active {
            steps.insert(
                0,
                Step::Activate {
                    vg: c.vg.clone(),
                    lvs: vec![c.name.clone()],
                },
            );
        }
        steps
    } else {
        plan::container(c, &observe::ContainerSeen::default(), plan::Resume::No)?.steps
    };
    steps.retain(|s| start || !matches!(s, Step::ContainerStart { .. }));
    r.execute(steps)?;
    finish(r)
}

/// `cairn container remove`: stopped, its volume removed, its config removed.
pub fn remove_container(
    stack: &Stack,
    cx: &Context,
    name: &str,
    on_step: OnStep<'_>,
) -> Result<Report> {
    let cfg = crate::lxc::read_config(&stack.lxc_path, name)?.ok_or_else(|| {
        refused(
            ErrorKind::NotFound,
            format!(
                "no container {name} in {}: nothing was changed",
                stack.lxc_path.display()
            ),
        )
    })?;
    let (vg, lv) = cfg
        .rootfs_device
        .as_deref()
        .and_then(crate::lvm::names::split_lv_path)
        .ok_or_else(|| {
            refused(
                ErrorKind::Unsupported,
                format!(
                "container {name}: its rootfs {:?} is not an LV (/dev/VG/LV): cairn removes only \
                 containers on volumes; use lxc-destroy",
                cfg.rootfs_path.as_deref().unwrap_or("(none)")
            ),
            )
        })?;
    // Only the container's own volume goes: a thin LV named after it, as
    // cairn and `lxc-create -B lvm` make them, that no other container
    // uses. A config can name any device (edited by hand, or a container
    // made on somebody else's LV), and that data is not this command's.
    let ours = cfg.rootfs_device.as_deref();
    let shared = crate::lxc::list(&stack.lxc_path)?.into_iter().find(|c| {
        c.name != name
            && matches!((c.rootfs_device.as_deref(), ours), (Some(a), Some(b)) if crate::blockdev::same_device(a, b))
    });
    if lv != name || shared.is_some() {
        return Err(refused(
            ErrorKind::Refused,
            format!(
            "container {name}: its rootfs is {vg}/{lv}, which is not its own volume ({}): cairn \
             removes only a container's own thin LV; nothing was changed. Remove the container \
             with lxc-destroy, and the volume yourself if it is no longer needed",
            match shared {
                Some(c) => format!("container {} uses it too", c.name),
                None => format!("its own would be {vg}/{name}"),
            }
        ),
        ));
    }
    let (mut r, _) = runner(stack, cx, on_step)?;
    let mut steps = Vec::new();
    if crate::lxc::state(&stack.lxc_path, name)? != crate::lxc::State::Stopped {
        steps.push(Step::ContainerStop {
            container: name.to_owned(),
        });
    }
    let seen = observe::vg_named(&r.ctx.env_for(&vg), &vg, &r.ctl)?;
    match seen.kind(&lv) {
        Some(LvKind::Thin { .. }) => steps.push(Step::ThinRemove { vg, lv }),
        Some(other) => {
            return Err(refused(
                ErrorKind::Refused,
                format!(
                    "container {name}: its rootfs {vg}/{lv} is a {} LV, not a thin volume cairn \
                 made: nothing was changed; remove the container with lxc-destroy",
                    other.type_name()
                ),
            ))
        }
        None => {}
    }
    steps.push(Step::LxcRemove {
        container: name.to_owned(),
    });
    r.execute(steps)?;
    finish(r)
}

/// One LXC container on the stack, as `cairn container list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContainerRow {
    /// The container's name.
    pub name: String,
    /// Its state, upper-case as LXC names it (`RUNNING`, `STOPPED`), or
    /// `UNKNOWN` when LXC could not say.
    pub state: String,
    /// Its rootfs block device (`/dev/VG/LV`), when its config names one.
    pub volume: Option<String>,
    /// That volume's size, in bytes, when it is an LV of a readable VG.
    pub size: Option<u64>,
    /// Share of the thin volume the pool has mapped, in percent (while
    /// active).
    pub used_percent: Option<f64>,
    /// Whether LXC starts it at boot (`lxc.start.auto`).
    pub autostart: bool,
}

/// Containers on the stack's VGs (every container, with no VG in the file).
pub fn containers(stack: &Stack, cx: &Context) -> Result<Vec<ContainerRow>> {
    let ctl = cx.dev.control()?;
    let mut rows = Vec::new();
    let mut vgs: BTreeMap<String, Option<VgSeen>> = BTreeMap::new();
    for cfg in crate::lxc::list(&stack.lxc_path)? {
        if !stack.vgs.is_empty() && !on_stack(stack, cfg.rootfs_device.as_deref()) {
            continue;
        }
        let state = crate::lxc::state(&stack.lxc_path, &cfg.name)
            .map(|s| format!("{s:?}").to_uppercase())
            .unwrap_or_else(|_| "UNKNOWN".into());
        let vl = cfg
            .rootfs_device
            .as_deref()
            .and_then(crate::lvm::names::split_lv_path);
        let (size, used_percent) = match &vl {
            Some((vg, lv)) => {
                if !vgs.contains_key(vg) {
                    let mut env = cx.env.clone();
                    env.devices = stack
                        .vg(vg)
                        .map(|v| v.pvs.iter().map(|p| p.path.clone()).collect())
                        .unwrap_or_default();
                    vgs.insert(vg.clone(), observe::vg_named(&env, vg, &ctl).ok());
                }
                let size = vgs[vg].as_ref().and_then(|s| s.lv_bytes(lv));
                let used = thin_used(&ctl, vg, lv);
                (size, used)
            }
            None => (None, None),
        };
        rows.push(ContainerRow {
            name: cfg.name.clone(),
            state,
            volume: cfg.rootfs_device.as_ref().map(|d| d.display().to_string()),
            size,
            used_percent,
            autostart: cfg.start_auto,
        });
    }
    Ok(rows)
}

/// How much of a thin LV its pool has mapped, in percent (lvm2's Data%).
pub fn thin_used(ctl: &Control, vg: &str, lv: &str) -> Option<f64> {
    let (mapped, len) = crate::lvm::inspect::thin_mapped(ctl, vg, lv)?;
    (len > 0).then(|| mapped as f64 * 100.0 / len as f64)
}
