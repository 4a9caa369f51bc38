//! DRBD 8.4 (the Debian 12 kernel's in-tree module). Knows nothing of LVM or
//! the stack.

pub mod adm;
pub mod admin;
pub mod codes;
pub mod config;
pub mod genl;
pub mod kernel;
pub mod md;
pub mod procfs;
pub mod sim;
pub mod state;
