//! LVM semantics over the on-disk model: dm names, reports, queries; later activation plans.
//!
//! This layer composes [`crate::meta`] (what the metadata text says) with
//! facts it is handed (what a device scan found, which device-mapper devices
//! exist). `report` and `names` never touch the kernel, so they are pure
//! functions of their inputs, testable on any build machine; `query` is
//! where a scan and device-mapper's answers are gathered for them.

pub(crate) mod action;
pub(crate) mod activate;
pub(crate) mod cache;
pub(crate) mod cache_switch;
pub(crate) mod config;
pub(crate) mod cow_store;
pub(crate) mod engine;
pub(crate) mod extents;
#[cfg(test)]
mod fixture;
pub mod inspect;
pub(crate) mod linear;
pub mod names;
pub(crate) mod percent;
pub(crate) mod pool;
pub mod query;
pub(crate) mod remove;
pub mod report;
pub(crate) mod resize;
pub(crate) mod snapshot;
pub(crate) mod thin;
#[cfg(test)]
mod thin_lab;
pub(crate) mod thin_snapshots;
pub(crate) mod volume;
