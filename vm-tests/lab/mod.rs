//! The cairn lab: runs VM tests on a stock Debian kernel under QEMU (TCG).
//! Compiled into each VM test target; each target uses part of it.
#![allow(dead_code, unused_imports, unused_macros)]

pub mod group;
pub mod guest;
pub mod host;
pub mod tables;

pub use group::{main, Group, TestResult, VmTest};
pub use guest::Guest;
