//! LVM semantics over the on-disk model: dm names, reports, queries; later activation plans.
//!
//! This layer composes [`crate::meta`] (what the metadata text says) with
//! facts it is handed (what a device scan found, which device-mapper devices
//! exist). `report` and `names` never touch the kernel, so they are pure
//! functions of their inputs, testable on any build machine; `query` is
//! where a scan and device-mapper's answers are gathered for them.

pub mod action;
pub mod activate;
pub mod cache;
pub mod cache_switch;
pub mod config;
pub mod cow_store;
pub mod engine;
pub mod extents;
#[cfg(test)]
mod fixture;
pub mod inspect;
pub mod linear;
pub mod names;
pub mod percent;
pub mod pool;
pub mod query;
pub mod remove;
pub mod report;
pub mod resize;
pub mod snapshot;
pub mod thin;
pub mod volume;
