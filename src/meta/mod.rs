//! LVM2's on-disk metadata (label, PV header, metadata areas, text format).
//! Knows nothing of device-mapper, DRBD or the stack.

pub mod alloc;
pub mod archive;
pub mod commit;
pub mod committed;
pub mod crc;
/// Block device I/O (shared with src/drbd): re-exported where it began.
pub use crate::blockdev as device;
#[cfg(test)]
mod fixtures;
pub mod label;
pub mod lock;
pub mod mda;
pub mod model;
pub mod ops;
pub mod reader;
pub mod scan;
pub mod text;
