//! LVM semantics over the on-disk model: reports, later naming and activation plans.
//!
//! This layer composes [`crate::meta`] (what the metadata text says) with
//! facts it is handed (what a device scan found, which device-mapper devices
//! exist): it never calls device-mapper itself, so everything here is a pure
//! function of its inputs and testable on any build machine.

pub mod report;
