//! cairn: a storage engine for LXC hosts on a layered stack (md RAID, LVM with
//! dm-cache, DRBD, stacked DRBD, thin pools), driving the kernel directly:
//! device-mapper ioctls, DRBD's generic netlink family and LVM2's on-disk
//! metadata, so that lvm2 and drbd-utils still see everything as their own.
//!
//! Layers: [`meta`] (LVM2 on-disk format), [`dm`] (device-mapper) and
//! [`drbd`] (DRBD) know nothing of each other nor of the stack; the stack
//! composes them; the CLI (src/main.rs) is thin.

pub mod blockdev;
pub mod dm;
pub mod drbd;
pub mod failpoint;
pub mod fs;
pub mod lvm;
pub mod lxc;
pub mod meta;
pub mod names;
pub mod signature;
pub mod stack;
pub mod units;
