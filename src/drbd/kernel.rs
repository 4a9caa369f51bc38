//! The seam in front of DRBD: every request drbdadm's verbs ([`super::adm`])
//! and the façade make of the DRBD 8.4 module, as a trait. [`Drbd`] is the
//! real module (generic netlink); [`super::sim::SimDrbd`] is a simulated
//! one, for host tests of the logic above it (drbdadm's order, undo of a
//! half-done `up`, what is refused when) that run in seconds and need no
//! root and no module.

use std::net::SocketAddr;

use super::admin::{DiskConf, Drbd, MinorStatus, Protocol, Resize, Result};

/// The DRBD 8.4 module as cairn drives it: each method is one drbdsetup
/// request, named as drbdsetup's command line spells it, and fails with
/// the kernel's own ret_code ([`super::admin::DrbdError::Refused`]).
pub trait DrbdKernel {
    /// `new-resource NAME`: an empty resource (no minors, StandAlone);
    /// an existing one is no error.
    fn new_resource(&mut self, name: &str) -> Result<()>;
    /// `new-minor NAME MINOR VOLUME`: /dev/drbdMINOR, Secondary, diskless
    /// and unconnected.
    fn new_minor(&mut self, name: &str, minor: u32, volume: u32) -> Result<()>;
    /// `attach`: gives `minor` its backing device and metadata.
    fn attach(&mut self, minor: u32, disk: &DiskConf) -> Result<()>;
    /// `connect NAME MY PEER --protocol P`: starts connecting to the peer
    /// (WFConnection until it answers).
    fn connect(
        &mut self,
        name: &str,
        my: &SocketAddr,
        peer: &SocketAddr,
        protocol: Protocol,
    ) -> Result<()>;
    /// `disconnect MY PEER [--force]`: the connection named by its two
    /// endpoints goes StandAlone.
    fn disconnect(&mut self, my: &SocketAddr, peer: &SocketAddr, force: bool) -> Result<()>;
    /// `primary MINOR [--force]`; force promotes without UpToDate data
    /// (the first primary of a new resource).
    fn primary(&mut self, minor: u32, force: bool) -> Result<()>;
    /// `secondary MINOR`.
    fn secondary(&mut self, minor: u32) -> Result<()>;
    /// `resize MINOR`: the device follows its backing device's size (or
    /// takes `r.size_sectors`).
    fn resize(&mut self, minor: u32, r: &Resize) -> Result<()>;
    /// `detach MINOR [--force]`: the minor stays, diskless.
    fn detach(&mut self, minor: u32, force: bool) -> Result<()>;
    /// `down NAME`: every minor demoted, disconnected, detached, deleted,
    /// then the resource, in one request.
    fn down(&mut self, name: &str) -> Result<()>;
    /// `del-minor MINOR` (the minor must be unconfigured).
    fn del_minor(&mut self, minor: u32) -> Result<()>;
    /// `del-resource NAME` (the resource must have no minors).
    fn del_resource(&mut self, name: &str) -> Result<()>;
    /// Every configured minor (of `resource` only, if given); a resource
    /// without minors has no entry, an unknown one none either.
    fn status(&mut self, resource: Option<&str>) -> Result<Vec<MinorStatus>>;
    /// Whether `resource` exists in the kernel (with or without minors).
    fn resource_exists(&mut self, resource: &str) -> Result<bool>;
}

impl DrbdKernel for Drbd {
    fn new_resource(&mut self, name: &str) -> Result<()> {
        Drbd::new_resource(self, name)
    }
    fn new_minor(&mut self, name: &str, minor: u32, volume: u32) -> Result<()> {
        Drbd::new_minor(self, name, minor, volume)
    }
    fn attach(&mut self, minor: u32, disk: &DiskConf) -> Result<()> {
        Drbd::attach(self, minor, disk)
    }
    fn connect(
        &mut self,
        name: &str,
        my: &SocketAddr,
        peer: &SocketAddr,
        protocol: Protocol,
    ) -> Result<()> {
        Drbd::connect(self, name, my, peer, protocol)
    }
    fn disconnect(&mut self, my: &SocketAddr, peer: &SocketAddr, force: bool) -> Result<()> {
        Drbd::disconnect(self, my, peer, force)
    }
    fn primary(&mut self, minor: u32, force: bool) -> Result<()> {
        Drbd::primary(self, minor, force)
    }
    fn secondary(&mut self, minor: u32) -> Result<()> {
        Drbd::secondary(self, minor)
    }
    fn resize(&mut self, minor: u32, r: &Resize) -> Result<()> {
        Drbd::resize(self, minor, r)
    }
    fn detach(&mut self, minor: u32, force: bool) -> Result<()> {
        Drbd::detach(self, minor, force)
    }
    fn down(&mut self, name: &str) -> Result<()> {
        Drbd::down(self, name)
    }
    fn del_minor(&mut self, minor: u32) -> Result<()> {
        Drbd::del_minor(self, minor)
    }
    fn del_resource(&mut self, name: &str) -> Result<()> {
        Drbd::del_resource(self, name)
    }
    fn status(&mut self, resource: Option<&str>) -> Result<Vec<MinorStatus>> {
        Drbd::status(self, resource)
    }
    fn resource_exists(&mut self, resource: &str) -> Result<bool> {
        Drbd::resource_exists(self, resource)
    }
}
