//! LVM2's on-disk metadata (label, PV header, metadata areas, text format).
//! Knows nothing of device-mapper, DRBD or the stack.

pub mod alloc;
pub mod archive;
pub mod commit;
pub mod crc;
pub mod device;
#[cfg(test)]
mod fixtures;
pub mod label;
pub mod lock;
pub mod mda;
pub mod model;
pub mod ops;
pub mod scan;
pub mod text;
