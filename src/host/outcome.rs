//! What an operation did: the typed result the CLI renders and a program
//! inspects.

use std::time::Duration;

use crate::lvm::action::Action;

/// What an LVM operation did, or (planned with [`Run::PlanOnly`](crate::Run::PlanOnly))
/// would do, in the order it does it.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Metadata commits, device-mapper steps and wipes, in order.
    pub changes: Vec<Action>,
    /// Whether the changes were made (false: only planned).
    pub applied: bool,
    /// Things that went wrong without undoing the change, worth telling the
    /// user: today a PV that did not take a VG operation's commit
    /// ([`crate::host::Vg`]'s create, extend, restore and tags). What has no
    /// result to ride on (udev that did not answer, a lagging PV in the
    /// middle of an LV operation's commits, an unmount that failed) goes to
    /// [`crate::host::take_warnings`] instead.
    pub warnings: Vec<String>,
    /// How long the operation took.
    pub elapsed: Duration,
}

impl Outcome {
    /// Whether there was nothing to do.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The metadata commits among the changes, as (VG, seqno, what).
    pub fn commits(&self) -> impl Iterator<Item = (&str, u64, &str)> {
        self.changes.iter().filter_map(|a| match a {
            Action::Commit { vg, seqno, what } => Some((vg.as_str(), *seqno, what.as_str())),
            _ => None,
        })
    }
}

/// Progress of a long operation, handed to the caller's callback as it
/// happens (the CLI prints it on a terminal).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// Step `number` of a stack run starts (`done` None) or has ended
    /// (`done` how long it took). A plan reports each step once, with None.
    Step {
        /// 1-based, in the run's order.
        number: usize,
        /// The step.
        step: &'a crate::stack::step::Step,
        /// How long it took, once done.
        done: Option<Duration>,
    },
    /// A line about work under way (dirty cache blocks left to flush, ...).
    Note(&'a str),
}
