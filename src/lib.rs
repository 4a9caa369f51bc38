//! cairn: a storage engine for LXC hosts on a layered stack (md RAID, LVM with
//! dm-cache, DRBD, stacked DRBD, thin pools), driving the kernel directly:
//! device-mapper ioctls, DRBD's generic netlink family and LVM2's on-disk
//! metadata, so that lvm2 and drbd-utils still see everything as their own.
//!
//! Programs embed cairn through one façade, [`Host`]: see its module
//! ([`host`]) and the guide below (docs/embedding.md).
//!
//! Layers: [`meta`] (LVM2 on-disk format), [`dm`] (device-mapper) and
//! [`drbd`] (DRBD) know nothing of each other nor of the stack; [`lvm`]
//! composes meta and dm; the stack composes lvm, drbd, fs and lxc; the
//! façade ([`host`]) sits on all of them, and the CLI (src/main.rs) is thin
//! over the façade.
#![doc = include_str!("../docs/embedding.md")]
#![warn(missing_docs)]

pub mod blockdev;
pub mod dm;
pub mod drbd;
pub mod error;
pub mod failpoint;
pub(crate) mod fs;
pub(crate) mod guard;
pub mod host;
pub mod lvm;
pub(crate) mod lxc;
pub mod meta;
pub mod names;
pub mod signature;
pub(crate) mod stack;
pub mod units;
pub mod warnings;

pub use error::{ErrorKind, Refusal};
pub use host::error::{Error, Result};
pub use host::{Host, HostOptions, Outcome, Progress};
/// Whether an operation changes things or only says what it would do.
pub use lvm::action::Run;
