//! The façade's stack: one stack file's layers, made, brought up,
//! inspected and taken down, and the containers on them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{Error, Result};
use super::outcome::Progress;
use super::Host;
use crate::stack::file::{self, Container, Rootfs, Stack};
use crate::stack::plan::Allow;
use crate::stack::run::{self, ContainerRow, Mode, Report};
use crate::stack::status::Status;
use crate::stack::step::Step;
use crate::stack::Context;
use crate::units::Bytes;

/// Where the stack file is unless one is named: `/etc/cairn/stack.toml`.
pub const DEFAULT_STACK_FILE: &str = file::DEFAULT_PATH;

/// A new container, as `cairn container create` takes it.
#[derive(Debug, Clone)]
pub struct NewContainer {
    /// Its name (an LXC name that is also a valid LV name).
    pub name: String,
    /// Its volume's size.
    pub size: Bytes,
    /// The thin pool as (VG, pool); None: the stack file's only pool.
    pub pool: Option<(String, String)>,
    /// Its root filesystem: a tarball, or None for a busybox one built from
    /// the host's static busybox.
    pub rootfs: Option<PathBuf>,
    /// Start it with `up` (lxc.start.auto = 1).
    pub autostart: bool,
    /// Start it once made (which also sets `autostart`: a container
    /// started by hand comes back with `up`).
    pub start: bool,
}

/// The stack of one stack file on a [`Host`].
#[derive(Debug, Clone)]
pub struct StackHandle<'h> {
    host: &'h Host,
    stack: Stack,
}

impl Host {
    /// The stack that the file at `path` describes, checked (nothing is
    /// touched until an operation runs).
    pub fn stack(&self, path: &Path) -> Result<StackHandle<'_>> {
        Ok(StackHandle {
            host: self,
            stack: file::load(path)?,
        })
    }

    /// The stack of the file at `path` if it exists, else an empty one
    /// (for container commands that name their pool).
    pub fn stack_or_empty(&self, path: &Path) -> Result<StackHandle<'_>> {
        if path.exists() {
            return self.stack(path);
        }
        Ok(StackHandle {
            host: self,
            stack: file::parse(path, "")?,
        })
    }

    fn stack_context(&self) -> Context {
        Context {
            env: self.env().clone(),
            dev: self.dev().clone(),
            state_dir: self.state_dir().to_owned(),
        }
    }
}

/// Calls `progress` for each step of a run.
fn on_step<'a>(
    progress: &'a mut dyn FnMut(Progress<'_>),
) -> impl FnMut(usize, &Step, Option<Duration>) + 'a {
    move |number, step, done| progress(Progress::Step { number, step, done })
}

impl StackHandle<'_> {
    /// The stack file as read.
    pub fn file(&self) -> &Stack {
        &self.stack
    }

    /// The file's thin pool as (VG, pool), when it names exactly one.
    pub fn default_pool(&self) -> Option<(String, String)> {
        self.stack.default_pool()
    }

    /// The steps between what exists and what the file says (changes nothing).
    pub fn plan(&self, progress: &mut dyn FnMut(Progress<'_>)) -> Result<Report> {
        self.converge(Mode::Plan, Allow::default(), progress)
    }

    /// Makes the stack as the file says: only what differs, journaled, so
    /// that a run after a crash finishes it. `allow_shrink` lets it shrink
    /// LVs the file makes smaller (their data past the new end is lost).
    pub fn apply(
        &self,
        allow_shrink: bool,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Report> {
        let allow = Allow {
            shrink: allow_shrink,
        };
        self.converge(Mode::Apply, allow, progress)
    }

    /// Brings up what exists (after a reboot); makes nothing new.
    pub fn up(&self, progress: &mut dyn FnMut(Progress<'_>)) -> Result<Report> {
        self.converge(Mode::Up, Allow::default(), progress)
    }

    fn converge(
        &self,
        mode: Mode,
        allow: Allow,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Report> {
        let cx = self.host.stack_context();
        Ok(run::converge(
            &self.stack,
            &cx,
            mode,
            allow,
            &mut on_step(progress),
        )?)
    }

    /// Takes the stack down, the reverse of up: containers stopped, LVs
    /// deactivated, DRBD down.
    pub fn down(&self, progress: &mut dyn FnMut(Progress<'_>)) -> Result<Report> {
        let cx = self.host.stack_context();
        Ok(run::down(&self.stack, &cx, &mut on_step(progress))?)
    }

    /// The whole stack as a tree: sizes, states, cache hits, DRBD, pool use, containers.
    pub fn status(&self) -> Result<Status> {
        Ok(crate::stack::status::read(&self.stack, self.host.dev())?)
    }

    /// The status as `cairn status` prints it.
    pub fn render_status(status: &Status) -> String {
        crate::stack::status::render(status)
    }

    /// The lvm.conf settings that keep lvm2 on this host off the stack's lower layers.
    pub fn lvm_filter(&self) -> String {
        crate::stack::filter::render(&self.stack)
    }

    /// The containers on the stack's VGs: state, volume, use.
    pub fn containers(&self) -> Result<Vec<ContainerRow>> {
        Ok(run::containers(&self.stack, &self.host.stack_context())?)
    }

    /// Makes a container: a thin volume, ext4, a root filesystem and an LXC
    /// config; journaled like apply, so a run after a crash finishes it.
    pub fn create_container(
        &self,
        new: &NewContainer,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Report> {
        let (vg, pool) = match &new.pool {
            Some(p) => p.clone(),
            None => self.stack.default_pool().ok_or_else(|| {
                Error::invalid(if self.stack.path.exists() {
                    format!(
                        "give --pool VG/POOL: {} does not name exactly one thin pool",
                        self.stack.path.display()
                    )
                } else {
                    format!(
                        "give --pool VG/POOL, or -f STACKFILE (there is no {})",
                        self.stack.path.display()
                    )
                })
            })?,
        };
        crate::lxc::check_name(&new.name)?;
        crate::meta::ops::check_lv_name(&new.name)?;
        if let Some(t) = &new.rootfs {
            if !t.is_file() {
                return Err(Error::invalid(format!(
                    "--rootfs {}: no such file",
                    t.display()
                )));
            }
        }
        if new.size.0 == 0 {
            return Err(Error::invalid("a container's size must be more than 0"));
        }
        let c = Container {
            name: new.name.clone(),
            size: new.size.0,
            vg,
            pool,
            autostart: new.autostart || new.start,
            rootfs: new.rootfs.clone().map_or(Rootfs::Busybox, Rootfs::Tarball),
            line: 0,
        };
        let cx = self.host.stack_context();
        Ok(run::create_container(
            &self.stack,
            &cx,
            &c,
            new.start,
            &mut on_step(progress),
        )?)
    }

    /// Removes a container: stopped, its own thin volume and its LXC config
    /// removed. The caller asks the user first: the data is lost.
    pub fn remove_container(
        &self,
        name: &str,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Report> {
        let cx = self.host.stack_context();
        Ok(run::remove_container(
            &self.stack,
            &cx,
            name,
            &mut on_step(progress),
        )?)
    }

    /// Starts a container (lxc-start).
    pub fn start_container(&self, name: &str) -> Result<()> {
        Ok(crate::lxc::start(&self.stack.lxc_path, name)?)
    }

    /// Stops a container (lxc-stop), waiting at most `wait`.
    pub fn stop_container(&self, name: &str, wait: Duration) -> Result<()> {
        Ok(crate::lxc::stop(&self.stack.lxc_path, name, wait)?)
    }

    /// Takes snapshot `req.name` of every container of `req` at one instant:
    /// their volumes' thin snapshots in one pool transaction, the running
    /// ones frozen (processes and file systems) only for that instant, a
    /// watchdog thawing them if this process dies or `req.freeze_deadline`
    /// passes. Refused, changing nothing, for an unknown container, one not
    /// on a thin LV, a name taken or bad.
    pub fn snapshot_containers(
        &self,
        req: &crate::stack::snapshot::TakeRequest,
        run: crate::lvm::action::Run,
    ) -> Result<crate::stack::snapshot::Taken> {
        let cx = self.host.stack_context();
        Ok(crate::stack::snapshot::take(&self.stack, &cx, req, run)?)
    }

    /// The snapshots of container `name`, oldest first: those cairn took
    /// (tagged for it) and thin snapshots of its volume other tools made.
    pub fn container_snapshots(
        &self,
        name: &str,
    ) -> Result<Vec<crate::stack::snapshot::ContainerSnapshot>> {
        let cx = self.host.stack_context();
        Ok(crate::stack::snapshot::list(&self.stack, &cx, name)?)
    }

    /// Removes snapshot `snap` of container `name`. The caller asks the user
    /// first: the snapshot's data is lost.
    pub fn remove_container_snapshot(
        &self,
        name: &str,
        snap: &str,
        run: crate::lvm::action::Run,
    ) -> Result<super::Outcome> {
        let cx = self.host.stack_context();
        super::lvm::timed(run, || {
            Ok(crate::stack::snapshot::remove(
                &self.stack,
                &cx,
                name,
                snap,
                run,
            )?)
        })
    }

    /// Every container of the stack: the file's and the LXC configs whose
    /// volume is on one of its VGs.
    pub fn all_containers(&self) -> Result<Vec<String>> {
        Ok(crate::stack::snapshot::all_containers(&self.stack)?)
    }
}
