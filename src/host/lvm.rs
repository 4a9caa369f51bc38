//! The façade's LVM: reports, PVs, VGs, LVs, thin pools, snapshots and
//! caches, each a method of [`Host`] or of a handle it gives ([`Vg`],
//! [`Lv`], [`Pool`]).

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::error::{Error, Result};
use super::outcome::{Outcome, Progress};
use super::Host;
use crate::lvm::action::{Action, Run};
use crate::lvm::cache::NewCachePool;
use crate::lvm::pool::NewPool;
use crate::lvm::remove::Expect;
use crate::lvm::report::{ReportKind, Row};
use crate::lvm::volume::Selection;
use crate::lvm::{cache, linear, pool, query, remove, resize, snapshot, thin, volume};
use crate::meta::committed::Committed;
use crate::meta::ops;
use crate::units::{parse_size, Bytes, Size};

/// How big an LV is to be: bytes (rounded up to extents), a share of the
/// VG's free space, or (extend only) this much more than now.
pub use crate::lvm::extents::Size as LvSize;

/// A report as `pvs`, `vgs` or `lvs` gives it: lvm2's fields, row by row.
#[derive(Debug, Clone)]
pub struct Report {
    /// Which report.
    pub kind: ReportKind,
    /// One row per PV, VG or LV, with lvm2's field names.
    pub rows: Vec<Row>,
    /// Devices the scan could not read (the report goes on without them).
    pub problems: Vec<String>,
}

impl Report {
    /// The report as lvm2's `--reportformat json` prints it.
    pub fn to_lvm2_json(&self) -> String {
        crate::lvm::report::to_lvm2_json(self.kind, &self.rows)
    }
}

/// A snapshot's kind: thick (a COW area of its own) or thin (in the origin's pool).
#[derive(Debug, Clone, Copy)]
pub enum SnapshotKind {
    /// A classic snapshot with a COW area of `cow_bytes` (as `lvcreate -s -L`).
    Thick {
        /// COW size.
        cow_bytes: Bytes,
        /// COW chunk size (default 4 KiB, as lvm2's).
        chunk_bytes: Option<Bytes>,
    },
    /// A thin snapshot of a thin LV (as `lvcreate -s` without -L).
    Thin {
        /// Activate it (thin snapshots are flagged "activation skip").
        activate: bool,
    },
}

/// A size in bytes from lvm2-style text (`125M`, `1.5g`; a bare number is
/// in `default_unit` bytes); `what` names it in the error. Percentages are
/// refused: they are for LV sizes ([`parse_lv_size`]).
pub fn parse_bytes(text: &str, default_unit: u64, what: &str) -> Result<Bytes> {
    match parse_size(text, default_unit)? {
        Size::Bytes(b) => Ok(Bytes(b)),
        Size::PercentFree(_) => Err(Error::invalid(format!("{what} cannot be a percentage"))),
    }
}

/// An LV size from lvm2-style text: SIZE (bare numbers MiB), N%FREE, and
/// when `extending`, +SIZE or +N%FREE.
pub fn parse_lv_size(text: &str, extending: bool) -> Result<LvSize> {
    let (more, rest) = match text.strip_prefix('+') {
        Some(rest) if extending => (true, rest),
        Some(_) => {
            return Err(Error::invalid(format!(
                "{text:?}: +SIZE is for lv extend; give the new size"
            )))
        }
        None => (false, text),
    };
    Ok(match parse_size(rest, 1 << 20)? {
        Size::Bytes(b) if more => LvSize::More(Bytes(b)),
        Size::Bytes(b) => LvSize::Bytes(Bytes(b)),
        Size::PercentFree(p) => LvSize::PercentFree(p),
    })
}

/// `VG/LV` into its parts.
pub fn split_lv_name(arg: &str) -> Result<(String, String)> {
    match arg.split_once('/') {
        Some((vg, lv)) if !vg.is_empty() && !lv.is_empty() && !lv.contains('/') => {
            Ok((vg.to_owned(), lv.to_owned()))
        }
        _ => Err(Error::invalid(format!("{arg:?}: name the LV as VG/LV"))),
    }
}

/// Times an LVM operation and wraps what it did.
pub(super) fn timed(run: Run, f: impl FnOnce() -> Result<Vec<Action>>) -> Result<Outcome> {
    let started = Instant::now();
    let changes = f()?;
    Ok(Outcome {
        changes,
        applied: run == Run::Apply,
        warnings: Vec::new(),
        elapsed: started.elapsed(),
    })
}

/// A commit's outcome: the commit itself and its warnings.
fn committed(vg: &str, what: &str, started: Instant, c: Committed) -> Outcome {
    Outcome {
        changes: vec![Action::Commit {
            vg: vg.to_owned(),
            seqno: c.metadata.vg.seqno,
            what: what.to_owned(),
        }],
        applied: true,
        warnings: c.warnings.iter().map(ToString::to_string).collect(),
        elapsed: started.elapsed(),
    }
}

impl Host {
    /// `pvs`: the PVs of the VGs named (all PVs when none).
    pub fn pvs(&self, vgs: &[String]) -> Result<Report> {
        let scan = self.env().scan(&[])?;
        let rows = query::pvs(&scan, vgs)?;
        Ok(Report {
            kind: ReportKind::Pv,
            rows,
            problems: scan.problems.iter().map(ToString::to_string).collect(),
        })
    }

    /// `vgs`: the VGs named (all when none).
    pub fn vgs(&self, names: &[String]) -> Result<Report> {
        let scan = self.env().scan(&[])?;
        let rows = query::vgs(&scan, names)?;
        Ok(Report {
            kind: ReportKind::Vg,
            rows,
            problems: scan.problems.iter().map(ToString::to_string).collect(),
        })
    }

    /// `lvs`: the LVs of the VGs named (all when none); `all` includes
    /// hidden LVs (pool data and metadata, cache origins...).
    pub fn lvs(&self, vgs: &[String], all: bool) -> Result<Report> {
        let scan = self.env().scan(&[])?;
        // Without device-mapper every LV reports inactive.
        let control = self.dev().control().ok();
        let rows = query::lvs(&scan, vgs, all, control.as_ref())?;
        Ok(Report {
            kind: ReportKind::Lv,
            rows,
            problems: scan.problems.iter().map(ToString::to_string).collect(),
        })
    }

    /// Makes `device` a PV (as pvcreate); refuses a device with any
    /// signature libblkid knows unless `opts.force`. Returns its uuid.
    pub fn pv_create(&self, device: &Path, opts: &ops::PvCreate) -> Result<String> {
        let label = ops::pv_create(self.env(), device, opts)?;
        Ok(label.pv_header.uuid.to_string())
    }

    /// Wipes the LVM label of a PV that belongs to no VG (as pvremove).
    pub fn pv_remove(&self, device: &Path) -> Result<()> {
        Ok(ops::pv_remove(self.env(), device)?)
    }

    /// The device-mapper targets the kernel has loaded.
    pub fn dm_targets(&self) -> Result<Vec<crate::dm::Target>> {
        Ok(self.dev().control()?.targets()?)
    }

    /// The device-mapper devices the kernel has.
    pub fn dm_devices(&self) -> Result<Vec<crate::dm::Device>> {
        Ok(self.dev().control()?.devices()?)
    }

    /// A volume group by name (it need not exist yet: see [`Vg::create`]).
    pub fn vg(&self, name: &str) -> Vg<'_> {
        Vg {
            host: self,
            name: name.to_owned(),
        }
    }

    /// A logical volume by VG and name.
    pub fn lv(&self, vg: &str, name: &str) -> Lv<'_> {
        Lv {
            host: self,
            vg: vg.to_owned(),
            name: name.to_owned(),
        }
    }

    /// Runs the device-mapper steps of a planned (de)activation
    /// ([`Vg::activate`] or [`Host::activate_lvs`] with `Run::PlanOnly`)
    /// through cairn's engine, as the real call would run them: the
    /// kernel's part alone, for measuring its floor. Refused for a plan
    /// that holds anything but device-mapper steps (a metadata commit is
    /// only made by the operation itself, under its lock).
    ///
    /// For the bench only (feature `bench-floor`, off in every build that
    /// ships): it takes no VG lock and does not check that the metadata is
    /// still what was planned, so between the plan and this call another
    /// command could give the plan's extents to another LV, and a thin
    /// command left half-done is not finished first (the real activation
    /// does both).
    #[cfg(feature = "bench-floor")]
    pub fn run_planned_steps(&self, plan: &Outcome) -> Result<()> {
        let steps = plan
            .changes
            .iter()
            .map(|a| match a {
                Action::Dm(step) => Ok(step.clone()),
                other => Err(Error::invalid(format!(
                    "a plan with more than device-mapper steps ({other}) is run by the \
                     operation itself"
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        let ctl = self.dev().control()?;
        Ok(crate::lvm::engine::run(&ctl, self.dev(), &steps)
            .map_err(crate::lvm::action::VolumeError::from)?)
    }

    /// Makes a thin pool (as lvcreate --type thin-pool).
    pub fn create_thin_pool(&self, new: &NewPool, run: Run) -> Result<Outcome> {
        timed(run, || Ok(pool::create(self.env(), self.dev(), new, run)?))
    }

    /// Makes a cache pool (as lvcreate --type cache-pool).
    pub fn create_cache_pool(&self, new: &NewCachePool, run: Run) -> Result<Outcome> {
        timed(run, || {
            Ok(cache::create_pool(self.env(), self.dev(), new, run)?)
        })
    }

    /// A thin pool by VG and name.
    pub fn pool(&self, vg: &str, name: &str) -> Pool<'_> {
        Pool {
            host: self,
            vg: vg.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// One volume group.
#[derive(Debug, Clone)]
pub struct Vg<'h> {
    host: &'h Host,
    name: String,
}

impl Vg<'_> {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Makes it on `devices` (PVs of no VG) with extents of `extent_size` (as vgcreate).
    pub fn create(&self, devices: &[PathBuf], extent_size: Bytes) -> Result<Outcome> {
        let started = Instant::now();
        let c = ops::vg_create(self.host.env(), &self.name, devices, extent_size.0)?;
        Ok(committed(&self.name, "created", started, c))
    }

    /// Adds PVs to it (as vgextend).
    pub fn extend(&self, devices: &[PathBuf]) -> Result<Outcome> {
        let started = Instant::now();
        let c = ops::vg_extend(self.host.env(), &self.name, devices)?;
        Ok(committed(&self.name, "extended", started, c))
    }

    /// Takes back PVs flagged MISSING that are back (as vgextend --restoremissing).
    pub fn restore_missing(&self, devices: &[PathBuf]) -> Result<Outcome> {
        let started = Instant::now();
        let c = ops::vg_restore_missing(self.host.env(), &self.name, devices)?;
        Ok(committed(&self.name, "missing PVs restored", started, c))
    }

    /// Adds and removes tags (as vgchange --addtag/--deltag), in one commit.
    pub fn change_tags(&self, add: &[String], remove: &[String]) -> Result<Outcome> {
        for t in add {
            ops::check_tag(t)?;
        }
        let started = Instant::now();
        let env = self.host.env();
        let mut change = ops::begin_change(env, &self.name, &[])?;
        let tags = &mut change.metadata.vg.tags;
        for t in add {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        tags.retain(|t| !remove.contains(t));
        let c = change.commit(env, &[])?;
        Ok(committed(&self.name, "tags changed", started, c))
    }

    /// Activates every LV (as vgchange -ay); `ignore_skip` also those
    /// flagged "activation skip" (-K).
    pub fn activate(&self, ignore_skip: bool, run: Run) -> Result<Outcome> {
        let sel = Selection {
            vg: self.name.clone(),
            lvs: vec![],
            ignore_skip,
        };
        activation(self.host, &sel, true, run)
    }

    /// Deactivates every LV (as vgchange -an).
    pub fn deactivate(&self, run: Run) -> Result<Outcome> {
        let sel = Selection {
            vg: self.name.clone(),
            ..Default::default()
        };
        activation(self.host, &sel, false, run)
    }

    /// Removes it (its PVs stay PVs); `force` also removes its inactive LVs.
    pub fn remove(&self, force: bool) -> Result<()> {
        Ok(volume::remove_vg(
            self.host.env(),
            self.host.dev(),
            &self.name,
            force,
        )?)
    }
}

/// (De)activation of a selection, as an outcome of device-mapper steps.
fn activation(host: &Host, sel: &Selection, up: bool, run: Run) -> Result<Outcome> {
    let started = Instant::now();
    let steps = if up {
        volume::activate(host.env(), host.dev(), sel, run)?
    } else {
        volume::deactivate(host.env(), host.dev(), sel, run)?
    };
    Ok(Outcome {
        changes: steps.into_iter().map(Action::Dm).collect(),
        applied: run == Run::Apply,
        warnings: Vec::new(),
        elapsed: started.elapsed(),
    })
}

impl Host {
    /// Activates several LVs of one VG at once (in dependency order, as
    /// lvchange -ay VG/A VG/B); `ignore_skip` also those flagged "activation skip".
    pub fn activate_lvs(
        &self,
        vg: &str,
        lvs: &[String],
        ignore_skip: bool,
        run: Run,
    ) -> Result<Outcome> {
        let sel = Selection {
            vg: vg.to_owned(),
            lvs: lvs.to_vec(),
            ignore_skip,
        };
        activation(self, &sel, true, run)
    }

    /// Deactivates several LVs of one VG at once (top first).
    pub fn deactivate_lvs(&self, vg: &str, lvs: &[String], run: Run) -> Result<Outcome> {
        let sel = Selection {
            vg: vg.to_owned(),
            lvs: lvs.to_vec(),
            ignore_skip: false,
        };
        activation(self, &sel, false, run)
    }
}

/// One logical volume.
#[derive(Debug, Clone)]
pub struct Lv<'h> {
    host: &'h Host,
    vg: String,
    name: String,
}

impl Lv<'_> {
    /// Its VG's name.
    pub fn vg(&self) -> &str {
        &self.vg
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its first segment's type as lvm2's metadata names it (`striped` for a
    /// linear LV, `thin`, `thin-pool`, `cache`...; a thick snapshot is
    /// `snapshot`, named by its COW LV).
    pub fn kind(&self) -> Result<String> {
        Ok(remove::lv_type(self.host.env(), &self.vg, &self.name)?)
    }

    /// Makes it a linear LV of `size` (as lvcreate -L), on `pvs` if given.
    pub fn create_linear(
        &self,
        size: LvSize,
        pvs: &[PathBuf],
        activate: bool,
        run: Run,
    ) -> Result<Outcome> {
        let req = linear::NewLinear {
            vg: self.vg.clone(),
            name: self.name.clone(),
            size,
            pvs: pvs.to_vec(),
            activate,
        };
        timed(run, || {
            Ok(linear::create(self.host.env(), self.host.dev(), &req, run)?)
        })
    }

    /// Grows it (a linear LV, live when active; as lvextend).
    pub fn extend(&self, size: LvSize, pvs: &[PathBuf], run: Run) -> Result<Outcome> {
        let req = resize::Resize {
            vg: self.vg.clone(),
            name: self.name.clone(),
            size: Some(size),
            metadata: None,
            pvs: pvs.to_vec(),
        };
        timed(run, || {
            Ok(resize::extend(self.host.env(), self.host.dev(), &req, run)?)
        })
    }

    /// Shrinks it: the data past the new end is lost (as lvreduce).
    pub fn reduce(&self, size: LvSize, run: Run) -> Result<Outcome> {
        let req = resize::Resize {
            vg: self.vg.clone(),
            name: self.name.clone(),
            size: Some(size),
            metadata: None,
            pvs: vec![],
        };
        timed(run, || {
            Ok(resize::reduce(self.host.env(), self.host.dev(), &req, run)?)
        })
    }

    /// Removes it, whatever its kind (as lvremove).
    pub fn remove(&self, run: Run) -> Result<Outcome> {
        self.remove_expecting(Expect::Any, run)
    }

    /// Removes it, refused (kind InvalidInput, nothing changed) unless it is
    /// a snapshot: a thick snapshot, or a thin LV whose metadata names an
    /// origin. A thin snapshot whose origin was removed since names none
    /// and is refused too: [`Lv::remove`] takes it.
    pub fn remove_snapshot(&self, run: Run) -> Result<Outcome> {
        self.remove_expecting(Expect::Snapshot, run)
    }

    fn remove_expecting(&self, expect: Expect, run: Run) -> Result<Outcome> {
        let (env, dev) = (self.host.env(), self.host.dev());
        timed(run, || {
            Ok(remove::remove(env, dev, &self.vg, &self.name, run, expect)?)
        })
    }

    /// Activates it; `ignore_skip` also when flagged "activation skip".
    pub fn activate(&self, ignore_skip: bool, run: Run) -> Result<Outcome> {
        self.host
            .activate_lvs(&self.vg, std::slice::from_ref(&self.name), ignore_skip, run)
    }

    /// Deactivates it.
    pub fn deactivate(&self, run: Run) -> Result<Outcome> {
        self.host
            .deactivate_lvs(&self.vg, std::slice::from_ref(&self.name), run)
    }

    /// Makes a snapshot of it named `name`.
    pub fn snapshot(&self, name: &str, kind: SnapshotKind, run: Run) -> Result<Outcome> {
        let (env, dev) = (self.host.env(), self.host.dev());
        timed(run, || match kind {
            SnapshotKind::Thick {
                cow_bytes,
                chunk_bytes,
            } => {
                let req = snapshot::NewSnapshot {
                    vg: self.vg.clone(),
                    origin: self.name.clone(),
                    name: name.to_owned(),
                    cow_bytes,
                    chunk_bytes,
                };
                Ok(snapshot::create(env, dev, &req, run)?)
            }
            SnapshotKind::Thin { activate } => {
                let req = thin::Create {
                    vg: self.vg.clone(),
                    name: name.to_owned(),
                    what: thin::Request::Snapshot {
                        origin: self.name.clone(),
                    },
                    activate,
                };
                Ok(thin::create(env, dev, &req, run)?)
            }
        })
    }

    /// Merges this thick snapshot back into its origin (as lvconvert
    /// --merge). [`Outcome::merged`] tells whether the merge finished now
    /// or waits for the origin's next activation.
    pub fn merge(&self, run: Run) -> Result<Outcome> {
        timed(run, || {
            Ok(snapshot::merge(
                self.host.env(),
                self.host.dev(),
                &self.vg,
                &self.name,
                run,
            )?)
        })
    }

    /// Caches it with the unused cache pool `pool` of its VG (as lvconvert --type cache).
    pub fn cache_attach(
        &self,
        pool: &str,
        mode: Option<String>,
        policy: Option<String>,
        run: Run,
    ) -> Result<Outcome> {
        let req = cache::Attach {
            vg: self.vg.clone(),
            lv: self.name.clone(),
            pool: pool.to_owned(),
            mode,
            policy,
        };
        timed(run, || {
            Ok(cache::attach(self.host.env(), self.host.dev(), &req, run)?)
        })
    }

    /// Uncaches it, dirty blocks written back first; `remove_pool` also
    /// removes the cache pool. `progress` hears of the flush.
    pub fn cache_detach(
        &self,
        remove_pool: bool,
        run: Run,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Outcome> {
        let req = cache::Detach {
            vg: self.vg.clone(),
            lv: self.name.clone(),
            remove_pool,
            poll: std::time::Duration::from_millis(500),
        };
        timed(run, || {
            Ok(cache::detach(
                self.host.env(),
                self.host.dev(),
                &req,
                run,
                &mut |line| progress(Progress::Note(&line)),
            )?)
        })
    }
}

impl Outcome {
    /// For a snapshot merge: whether the merge finished (false: it starts
    /// on the origin's next activation).
    pub fn merged(&self) -> bool {
        self.changes
            .iter()
            .any(|a| matches!(a, Action::Commit { what, .. } if what.contains("finished")))
    }
}

/// One thin pool.
#[derive(Debug, Clone)]
pub struct Pool<'h> {
    host: &'h Host,
    vg: String,
    name: String,
}

impl Pool<'_> {
    /// Grows its data and/or metadata (as lvextend of a thin pool).
    pub fn extend(
        &self,
        data: Option<LvSize>,
        metadata: Option<LvSize>,
        pvs: &[PathBuf],
        run: Run,
    ) -> Result<Outcome> {
        let req = resize::Resize {
            vg: self.vg.clone(),
            name: self.name.clone(),
            size: data,
            metadata,
            pvs: pvs.to_vec(),
        };
        timed(run, || {
            Ok(resize::extend_pool(
                self.host.env(),
                self.host.dev(),
                &req,
                run,
            )?)
        })
    }

    /// Makes a thin LV of `size_bytes` in it (as lvcreate -V -T).
    pub fn create_volume(
        &self,
        name: &str,
        size_bytes: Bytes,
        activate: bool,
        run: Run,
    ) -> Result<Outcome> {
        let req = thin::Create {
            vg: self.vg.clone(),
            name: name.to_owned(),
            what: thin::Request::Volume {
                pool: self.name.clone(),
                size_bytes,
            },
            activate,
        };
        timed(run, || {
            Ok(thin::create(self.host.env(), self.host.dev(), &req, run)?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn lv_sizes_parse_as_lvm2s() {
        assert_eq!(
            parse_lv_size("10", false).unwrap(),
            LvSize::Bytes(Bytes(10 << 20))
        );
        assert_eq!(
            parse_lv_size("+1G", true).unwrap(),
            LvSize::More(Bytes(1 << 30))
        );
        assert_eq!(
            parse_lv_size("50%FREE", false).unwrap(),
            LvSize::PercentFree(50.0)
        );
        let e = parse_lv_size("+1G", false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("+SIZE is for lv extend"), "{e}");
    }

    #[test]
    fn fixed_sizes_refuse_percentages() {
        assert_eq!(parse_bytes("4", 1 << 10, "a chunk").unwrap(), Bytes(4096));
        let e = parse_bytes("10%FREE", 1 << 20, "a COW size").unwrap_err();
        assert_eq!(e.to_string(), "a COW size cannot be a percentage");
        assert_eq!(
            parse_bytes("12Q", 1, "x").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn lv_names_need_one_slash() {
        assert_eq!(split_lv_name("vg/lv").unwrap(), ("vg".into(), "lv".into()));
        for bad in ["vg", "/lv", "vg/", "vg/lv/x"] {
            assert!(split_lv_name(bad).is_err(), "{bad}");
        }
    }
}
