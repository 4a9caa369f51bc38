//! A simulated DRBD 8.4 module (the DRBD half of the kernel seam, as
//! [`crate::dm::sim`] is device-mapper's): resources with their
//! connection (StandAlone, WFConnection, Connected), minors with their
//! role, attached disk, disk state and capacity, and backing devices with
//! or without metadata. Host tests drive [`super::adm`] through it.
//!
//! It answers as the module does where drbdadm's logic depends on it,
//! with DRBD's own ret_codes ([`super::codes`]): an unknown resource is
//! ERR_RES_NOT_KNOWN, an unknown minor ERR_MINOR_INVALID, a second minor
//! or volume ERR_MINOR_OR_VOLUME_EXISTS; attach of a disk that cannot be
//! opened (missing, or a DRBD device that is not Primary) ERR_OPEN_DISK,
//! of a disk another minor holds ERR_BDCLAIM_DISK, of one without
//! metadata ERR_MD_INVALID, to a minor that has a disk ERR_DISK_CONFIGURED;
//! connect of a connected resource ERR_NET_CONFIGURED, on an address
//! another resource uses ERR_LOCAL_ADDR / ERR_PEER_ADDR; primary without
//! UpToDate data and without force SS_NO_UP_TO_DATE_DISK; secondary or
//! down of an open Primary SS_DEVICE_IN_USE; del-minor of a minor that is
//! attached, connected or Primary ERR_MINOR_CONFIGURED; del-resource of
//! one with minors ERR_RES_IN_USE; resize of a diskless minor ERR_NO_DISK,
//! with both nodes Secondary ERR_NO_PRIMARY, beyond the disk
//! ERR_DISK_TOO_SMALL, shrinking without a size ERR_IMPLICIT_SHRINK.
//!
//! What it leaves out: the peer (a connection stays WFConnection unless a
//! test says the peer came, [`SimDrbd::peer_connects`]), resync, the
//! activity log and bitmap (the metadata is a flag), events.
//!
//! Failures are injected with [`Fault`]: the n-th request from now, or
//! the next request of one verb, answered with EIO or a given ret_code.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::admin::{DiskConf, DrbdError, MinorStatus, Protocol, Resize, Result};
use super::codes;
use super::genl::GenlError;
use super::kernel::DrbdKernel;
use super::md::Layout;
use super::state::{
    State, C_CONNECTED, C_STANDALONE, C_WF_CONNECTION, D_CONSISTENT, D_DISKLESS, D_INCONSISTENT,
    D_UNKNOWN, D_UP_TO_DATE, R_PRIMARY, R_SECONDARY, R_UNKNOWN,
};

// The ret_codes the simulation answers with (enum drbd_ret_code,
// enum drbd_state_rv).
const ERR_LOCAL_ADDR: i32 = 102;
const ERR_PEER_ADDR: i32 = 103;
const ERR_OPEN_DISK: i32 = 104;
const ERR_DISK_TOO_SMALL: i32 = 111;
const ERR_BDCLAIM_DISK: i32 = 114;
const ERR_MD_INVALID: i32 = 119;
const ERR_DISK_CONFIGURED: i32 = 124;
const ERR_NET_CONFIGURED: i32 = 125;
const ERR_MINOR_INVALID: i32 = 127;
const ERR_RESIZE_RESYNC: i32 = 130;
const ERR_NO_PRIMARY: i32 = 131;
const ERR_NO_DISK: i32 = 138;
const ERR_RES_NOT_KNOWN: i32 = 158;
const ERR_RES_IN_USE: i32 = 159;
const ERR_MINOR_CONFIGURED: i32 = 160;
const ERR_MINOR_OR_VOLUME_EXISTS: i32 = 161;
const ERR_INVALID_REQUEST: i32 = 162;
const ERR_IMPLICIT_SHRINK: i32 = 170;
const SS_TWO_PRIMARIES: i32 = -1;
const SS_NO_UP_TO_DATE_DISK: i32 = -2;
const SS_DEVICE_IN_USE: i32 = -12;

/// The verbs that change something (the others only read).
const CHANGES: [&str; 12] = [
    "new-resource",
    "new-minor",
    "attach",
    "connect",
    "disconnect",
    "primary",
    "secondary",
    "resize",
    "detach",
    "down",
    "del-minor",
    "del-resource",
];

/// A backing device the simulated module can open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimDisk {
    /// Its size in 512-byte sectors (ignored for a `/dev/drbdN`, whose
    /// size is that minor's capacity).
    pub sectors: u64,
    /// Whether it holds DRBD metadata (create-md was run on it).
    pub metadata: bool,
    /// Whether its metadata says the data is UpToDate (it was Primary
    /// once); otherwise an attach leaves it Inconsistent, as after a
    /// fresh create-md.
    pub up_to_date: bool,
}

impl SimDisk {
    /// A device of `sectors` with fresh metadata: attaches Inconsistent.
    pub fn new(sectors: u64) -> SimDisk {
        SimDisk {
            sectors,
            metadata: true,
            up_to_date: false,
        }
    }
}

/// A resource: its connection, shared by its minors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimResource {
    /// Connection state, numbered as [`super::state`]'s `C_*`.
    pub connection: u32,
    /// The peer's role as this node knows it (`R_*`).
    pub peer_role: u32,
    /// The peer's disk state as this node knows it (`D_*`).
    pub peer_disk: u32,
    /// This end's address, once connect was sent.
    pub my: Option<SocketAddr>,
    /// The peer's address, once connect was sent.
    pub peer: Option<SocketAddr>,
    /// The replication protocol, once connect was sent.
    pub protocol: Option<Protocol>,
}

/// A minor: /dev/drbdN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimMinor {
    /// The resource it belongs to.
    pub resource: String,
    /// Its volume number within the resource.
    pub volume: u32,
    /// Its role (`R_*`).
    pub role: u32,
    /// Its disk state (`D_*`): Diskless until attached.
    pub disk: u32,
    /// The attached backing device.
    pub backing: Option<String>,
    /// The device's size in sectors (0 while diskless).
    pub capacity_sectors: u64,
    /// A size fixed by `disk { size }` or `resize --size`, in sectors.
    pub size_sectors: Option<u64>,
    /// Opens of /dev/drbdN by something else than a stacked minor (a mount).
    pub opens: u32,
}

/// A failure to inject: which request fails, and how.
#[derive(Debug, Clone)]
pub struct Fault {
    nth: Option<usize>,
    verb: Option<&'static str>,
    code: Option<i32>,
    left: usize,
    /// `count` when the fault was set.
    base: usize,
}

impl Fault {
    /// The n-th request from now fails (0: the next one), once; queries
    /// (status, resource-exists) count too.
    pub fn nth(n: usize) -> Fault {
        Fault {
            nth: Some(n),
            verb: None,
            code: None,
            left: 1,
            base: 0,
        }
    }

    /// The next request of `verb` (drbdsetup's spelling: `attach`,
    /// `new-minor`, `status`, ...) fails, once.
    pub fn call(verb: &'static str) -> Fault {
        Fault {
            nth: None,
            verb: Some(verb),
            ..Fault::nth(0)
        }
    }

    /// Answered with this ret_code (as the module refuses) instead of an
    /// EIO from the netlink exchange.
    pub fn code(mut self, code: i32) -> Fault {
        self.code = Some(code);
        self
    }

    /// Fires every time it matches, not once.
    pub fn always(mut self) -> Fault {
        self.left = usize::MAX;
        self
    }
}

/// The simulated module: what is configured, the disks it can open, the
/// requests it was sent.
#[derive(Debug, Clone, Default)]
pub struct SimDrbd {
    resources: BTreeMap<String, SimResource>,
    minors: BTreeMap<u32, SimMinor>,
    disks: BTreeMap<String, SimDisk>,
    calls: Vec<String>,
    count: usize,
    faults: Vec<Fault>,
}

fn refused(what: &str, code: i32, info: Option<&str>) -> DrbdError {
    let (name, meaning) = codes::describe(code);
    DrbdError::Refused {
        what: what.to_owned(),
        code,
        name,
        meaning,
        info: info.map(str::to_owned),
    }
}

/// The minor a `/dev/drbdN` path names.
fn drbd_minor(path: &str) -> Option<u32> {
    path.strip_prefix("/dev/drbd")?.parse().ok()
}

impl SimDrbd {
    /// A module with nothing configured and no disks.
    pub fn new() -> SimDrbd {
        SimDrbd::default()
    }

    /// Makes `path` a device the module can open (a `/dev/drbdN` needs an
    /// entry too, for its metadata flags).
    pub fn add_disk(&mut self, path: &str, disk: SimDisk) {
        self.disks.insert(path.to_owned(), disk);
    }

    /// The device at `path`, to read or change (grow it, mark its data UpToDate).
    pub fn disk_mut(&mut self, path: &str) -> Option<&mut SimDisk> {
        self.disks.get_mut(path)
    }

    /// The device at `path`.
    pub fn disk(&self, path: &str) -> Option<&SimDisk> {
        self.disks.get(path)
    }

    /// The resource called `name`, if it exists.
    pub fn resource(&self, name: &str) -> Option<&SimResource> {
        self.resources.get(name)
    }

    /// The minor `minor`, if it exists.
    pub fn minor(&self, minor: u32) -> Option<&SimMinor> {
        self.minors.get(&minor)
    }

    /// Whether nothing is configured: no resource, no minor.
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty() && self.minors.is_empty()
    }

    /// Sets how often /dev/drbdN is held open by something else (a mount):
    /// an open Primary refuses secondary and down. False when no such minor.
    pub fn set_opens(&mut self, minor: u32, opens: u32) -> bool {
        self.minors
            .get_mut(&minor)
            .map(|m| m.opens = opens)
            .is_some()
    }

    /// The peer of a connecting resource answers: Connected, the peer
    /// Secondary with UpToDate data. False unless it was WFConnection.
    pub fn peer_connects(&mut self, name: &str) -> bool {
        match self.resources.get_mut(name) {
            Some(r) if r.connection == C_WF_CONNECTION => {
                r.connection = C_CONNECTED;
                r.peer_role = R_SECONDARY;
                r.peer_disk = D_UP_TO_DATE;
                true
            }
            _ => false,
        }
    }

    /// Injects a failure.
    pub fn fail(&mut self, mut fault: Fault) {
        fault.base = self.count;
        self.faults.push(fault);
    }

    /// Drops the failures not fired yet.
    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }

    /// Every request sent, oldest first, as drbdsetup's command line spells
    /// it (`new-minor r0 0 0`, `attach 0 /dev/x`, `status r0`, ...).
    pub fn calls(&self) -> Vec<String> {
        self.calls.clone()
    }

    /// The requests that change something, oldest first (queries left out).
    pub fn changes(&self) -> Vec<String> {
        self.calls
            .iter()
            .filter(|c| CHANGES.iter().any(|v| c.split(' ').next() == Some(v)))
            .cloned()
            .collect()
    }

    /// Forgets the requests sent so far.
    pub fn clear_calls(&mut self) {
        self.calls.clear();
    }

    /// Records a request and fires the fault it matches, if any.
    fn begin(&mut self, verb: &'static str, what: &str) -> Result<()> {
        let n = self.count;
        self.count += 1;
        self.calls.push(what.to_owned());
        let hit = self.faults.iter().position(|f| {
            f.nth.is_none_or(|k| n == f.base + k) && f.verb.is_none_or(|v| v == verb)
        });
        let Some(i) = hit else { return Ok(()) };
        let fault = &mut self.faults[i];
        let code = fault.code;
        fault.left -= 1;
        if fault.left == 0 {
            self.faults.remove(i);
        }
        Err(match code {
            Some(code) => refused(what, code, Some("injected")),
            None => DrbdError::Genl(GenlError::Errno(std::io::Error::from_raw_os_error(
                nix::libc::EIO,
            ))),
        })
    }

    fn minor_mut(&mut self, minor: u32, what: &str) -> Result<&mut SimMinor> {
        self.minors
            .get_mut(&minor)
            .ok_or_else(|| refused(what, ERR_MINOR_INVALID, None))
    }

    fn resource_of(&self, m: &SimMinor) -> &SimResource {
        &self.resources[&m.resource]
    }

    /// Opens of /dev/drbdN: its own count and the minors stacked on it.
    fn opens(&self, minor: u32) -> u32 {
        let path = format!("/dev/drbd{minor}");
        let stacked = self
            .minors
            .values()
            .filter(|m| m.backing.as_deref() == Some(path.as_str()))
            .count() as u32;
        self.minors.get(&minor).map_or(0, |m| m.opens) + stacked
    }

    /// The size of the device at `path` in sectors, if the module can
    /// open it: a DRBD device only while it is Primary.
    fn open_disk(&self, path: &str) -> Option<u64> {
        let disk = self.disks.get(path)?;
        match drbd_minor(path) {
            Some(n) => {
                let m = self.minors.get(&n)?;
                (m.role == R_PRIMARY && m.disk != D_DISKLESS).then_some(m.capacity_sectors)
            }
            None => Some(disk.sectors),
        }
    }
}

impl DrbdKernel for SimDrbd {
    fn new_resource(&mut self, name: &str) -> Result<()> {
        self.begin("new-resource", &format!("new-resource {name}"))?;
        self.resources
            .entry(name.to_owned())
            .or_insert(SimResource {
                connection: C_STANDALONE,
                peer_role: R_UNKNOWN,
                peer_disk: D_UNKNOWN,
                my: None,
                peer: None,
                protocol: None,
            });
        Ok(())
    }

    fn new_minor(&mut self, name: &str, minor: u32, volume: u32) -> Result<()> {
        let what = format!("new-minor {name} {minor} {volume}");
        self.begin("new-minor", &what)?;
        if !self.resources.contains_key(name) {
            return Err(refused(&what, ERR_RES_NOT_KNOWN, None));
        }
        let volume_taken = self
            .minors
            .values()
            .any(|m| m.resource == name && m.volume == volume);
        if self.minors.contains_key(&minor) || volume_taken {
            return Err(refused(&what, ERR_MINOR_OR_VOLUME_EXISTS, None));
        }
        self.minors.insert(
            minor,
            SimMinor {
                resource: name.to_owned(),
                volume,
                role: R_SECONDARY,
                disk: D_DISKLESS,
                backing: None,
                capacity_sectors: 0,
                size_sectors: None,
                opens: 0,
            },
        );
        Ok(())
    }

    fn attach(&mut self, minor: u32, disk: &DiskConf) -> Result<()> {
        let what = format!("attach {minor} {}", disk.backing_dev);
        self.begin("attach", &what)?;
        let path = disk.backing_dev.as_str();
        if self.minor_mut(minor, &what)?.disk != D_DISKLESS {
            return Err(refused(&what, ERR_DISK_CONFIGURED, None));
        }
        let sectors = self
            .open_disk(path)
            .ok_or_else(|| refused(&what, ERR_OPEN_DISK, None))?;
        if self
            .minors
            .values()
            .any(|m| m.backing.as_deref() == Some(path))
        {
            return Err(refused(&what, ERR_BDCLAIM_DISK, None));
        }
        let d = &self.disks[path];
        if !d.metadata {
            return Err(refused(&what, ERR_MD_INVALID, None));
        }
        let usable = Layout::internal(sectors).usable_sectors();
        if disk.size_sectors.is_some_and(|s| s > usable) {
            return Err(refused(&what, ERR_DISK_TOO_SMALL, None));
        }
        let state = if d.up_to_date {
            D_UP_TO_DATE
        } else {
            D_INCONSISTENT
        };
        let m = self.minor_mut(minor, &what)?;
        m.disk = state;
        m.backing = Some(path.to_owned());
        m.size_sectors = disk.size_sectors;
        m.capacity_sectors = disk.size_sectors.unwrap_or(usable);
        Ok(())
    }

    fn connect(
        &mut self,
        name: &str,
        my: &SocketAddr,
        peer: &SocketAddr,
        protocol: Protocol,
    ) -> Result<()> {
        let what = format!("connect {name} {my} {peer}");
        self.begin("connect", &what)?;
        let r = self
            .resources
            .get(name)
            .ok_or_else(|| refused(&what, ERR_RES_NOT_KNOWN, None))?;
        if r.connection != C_STANDALONE {
            return Err(refused(&what, ERR_NET_CONFIGURED, None));
        }
        let others = || self.resources.iter().filter(|(n, _)| n.as_str() != name);
        if others().any(|(_, o)| o.my == Some(*my)) {
            return Err(refused(&what, ERR_LOCAL_ADDR, None));
        }
        if others().any(|(_, o)| o.peer == Some(*peer)) {
            return Err(refused(&what, ERR_PEER_ADDR, None));
        }
        let r = self.resources.get_mut(name).expect("checked above");
        r.connection = C_WF_CONNECTION;
        r.my = Some(*my);
        r.peer = Some(*peer);
        r.protocol = Some(protocol);
        Ok(())
    }

    fn disconnect(&mut self, my: &SocketAddr, peer: &SocketAddr, _force: bool) -> Result<()> {
        let what = format!("disconnect {my} {peer}");
        self.begin("disconnect", &what)?;
        let r = self
            .resources
            .values_mut()
            .find(|r| r.my == Some(*my) && r.peer == Some(*peer))
            .ok_or_else(|| refused(&what, ERR_INVALID_REQUEST, Some("unknown connection")))?;
        r.connection = C_STANDALONE;
        r.peer_role = R_UNKNOWN;
        r.peer_disk = D_UNKNOWN;
        r.my = None;
        r.peer = None;
        r.protocol = None;
        Ok(())
    }

    fn primary(&mut self, minor: u32, force: bool) -> Result<()> {
        let what = format!("primary {minor}{}", if force { " --force" } else { "" });
        self.begin("primary", &what)?;
        let m = self.minor_mut(minor, &what)?.clone();
        if m.role == R_PRIMARY {
            return Ok(());
        }
        let r = self.resource_of(&m);
        if r.peer_role == R_PRIMARY {
            return Err(refused(&what, SS_TWO_PRIMARIES, None));
        }
        let peer_has_data = r.connection >= C_CONNECTED && r.peer_disk == D_UP_TO_DATE;
        // --force makes an attached disk UpToDate, as drbd_set_role does
        // for Inconsistent..Consistent; a diskless minor it cannot help.
        let forced = force && (D_INCONSISTENT..=D_CONSISTENT).contains(&m.disk);
        if m.disk != D_UP_TO_DATE && !peer_has_data && !forced {
            return Err(refused(&what, SS_NO_UP_TO_DATE_DISK, None));
        }
        if forced {
            if let Some(d) = m.backing.as_deref().and_then(|b| self.disks.get_mut(b)) {
                d.up_to_date = true;
            }
        }
        let m = self.minor_mut(minor, &what)?;
        if forced {
            m.disk = D_UP_TO_DATE;
        }
        m.role = R_PRIMARY;
        Ok(())
    }

    fn secondary(&mut self, minor: u32) -> Result<()> {
        let what = format!("secondary {minor}");
        self.begin("secondary", &what)?;
        self.minor_mut(minor, &what)?;
        if self.opens(minor) > 0 {
            return Err(refused(&what, SS_DEVICE_IN_USE, None));
        }
        self.minor_mut(minor, &what)?.role = R_SECONDARY;
        Ok(())
    }

    fn resize(&mut self, minor: u32, r: &Resize) -> Result<()> {
        let what = format!("resize {minor}");
        self.begin("resize", &what)?;
        let m = self.minor_mut(minor, &what)?.clone();
        let res = self.resource_of(&m);
        let Some(sectors) = m.backing.as_deref().and_then(|b| self.open_disk(b)) else {
            return Err(refused(&what, ERR_NO_DISK, None));
        };
        if res.connection > C_CONNECTED {
            return Err(refused(&what, ERR_RESIZE_RESYNC, None));
        }
        if m.role == R_SECONDARY && res.peer_role == R_SECONDARY {
            return Err(refused(&what, ERR_NO_PRIMARY, None));
        }
        let usable = Layout::internal(sectors).usable_sectors();
        if r.size_sectors.is_some_and(|s| s > usable) {
            return Err(refused(&what, ERR_DISK_TOO_SMALL, None));
        }
        let fixed = r.size_sectors.or(m.size_sectors);
        if fixed.is_none() && usable < m.capacity_sectors {
            return Err(refused(&what, ERR_IMPLICIT_SHRINK, None));
        }
        let mut size = fixed.unwrap_or(usable);
        // Without a peer to ask, DRBD keeps the size it had unless told the
        // peer has the space.
        if res.connection < C_CONNECTED && !r.assume_peer_has_space {
            size = size.min(m.capacity_sectors);
        }
        let m = self.minor_mut(minor, &what)?;
        m.capacity_sectors = size;
        if r.size_sectors.is_some() {
            m.size_sectors = r.size_sectors;
        }
        Ok(())
    }

    fn detach(&mut self, minor: u32, _force: bool) -> Result<()> {
        let what = format!("detach {minor}");
        self.begin("detach", &what)?;
        // Detaching a diskless minor is SS_NOTHING_TO_DO: a success.
        let m = self.minor_mut(minor, &what)?;
        m.disk = D_DISKLESS;
        m.backing = None;
        m.capacity_sectors = 0;
        Ok(())
    }

    fn down(&mut self, name: &str) -> Result<()> {
        let what = format!("down {name}");
        self.begin("down", &what)?;
        if !self.resources.contains_key(name) {
            return Err(refused(&what, ERR_RES_NOT_KNOWN, None));
        }
        let mine: Vec<u32> = self
            .minors
            .iter()
            .filter(|(_, m)| m.resource == name)
            .map(|(n, _)| *n)
            .collect();
        if mine
            .iter()
            .any(|&n| self.minors[&n].role == R_PRIMARY && self.opens(n) > 0)
        {
            return Err(refused(&what, SS_DEVICE_IN_USE, None));
        }
        for n in mine {
            self.minors.remove(&n);
        }
        self.resources.remove(name);
        Ok(())
    }

    fn del_minor(&mut self, minor: u32) -> Result<()> {
        let what = format!("del-minor {minor}");
        self.begin("del-minor", &what)?;
        let m = self.minor_mut(minor, &what)?.clone();
        if m.disk != D_DISKLESS
            || m.role != R_SECONDARY
            || self.resource_of(&m).connection != C_STANDALONE
        {
            return Err(refused(&what, ERR_MINOR_CONFIGURED, None));
        }
        self.minors.remove(&minor);
        Ok(())
    }

    fn del_resource(&mut self, name: &str) -> Result<()> {
        let what = format!("del-resource {name}");
        self.begin("del-resource", &what)?;
        let r = self
            .resources
            .get(name)
            .ok_or_else(|| refused(&what, ERR_RES_NOT_KNOWN, None))?;
        if r.connection != C_STANDALONE {
            return Err(refused(&what, ERR_NET_CONFIGURED, None));
        }
        if self.minors.values().any(|m| m.resource == name) {
            return Err(refused(&what, ERR_RES_IN_USE, None));
        }
        self.resources.remove(name);
        Ok(())
    }

    fn status(&mut self, resource: Option<&str>) -> Result<Vec<MinorStatus>> {
        let what = match resource {
            Some(r) => format!("status {r}"),
            None => "status".to_owned(),
        };
        self.begin("status", &what)?;
        Ok(self
            .minors
            .iter()
            .filter(|(_, m)| resource.is_none_or(|r| m.resource == r))
            .map(|(&minor, m)| {
                let r = self.resource_of(m);
                let word =
                    m.role | r.peer_role << 2 | r.connection << 4 | m.disk << 9 | r.peer_disk << 13;
                MinorStatus {
                    capacity_sectors: m.capacity_sectors,
                    backing_dev: m.backing.clone(),
                    my_addr: r.my.map(|a| a.to_string()),
                    peer_addr: r.peer.map(|a| a.to_string()),
                    protocol: r.protocol,
                    ..MinorStatus::new(minor, &m.resource, m.volume, State::decode(word))
                }
            })
            .collect())
    }

    fn resource_exists(&mut self, resource: &str) -> Result<bool> {
        self.begin("resource-exists", &format!("resource-exists {resource}"))?;
        Ok(self.resources.contains_key(resource))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<()>) -> i32 {
        match r {
            Err(DrbdError::Refused { code, .. }) => code,
            other => panic!("not a refusal: {other:?}"),
        }
    }

    /// r0 on minor 0, attached to /dev/x (1 GiB), Secondary.
    fn r0() -> SimDrbd {
        let mut sim = SimDrbd::new();
        sim.add_disk("/dev/x", SimDisk::new(2 << 20));
        sim.new_resource("r0").unwrap();
        sim.new_minor("r0", 0, 0).unwrap();
        sim.attach(0, &DiskConf::internal("/dev/x")).unwrap();
        sim
    }

    #[test]
    fn configured_things_are_refused_as_the_module_refuses_them() {
        let mut sim = r0();
        assert_eq!(code(sim.new_minor("r0", 0, 1)), ERR_MINOR_OR_VOLUME_EXISTS);
        assert_eq!(code(sim.new_minor("nope", 1, 0)), ERR_RES_NOT_KNOWN);
        assert_eq!(
            code(sim.attach(0, &DiskConf::internal("/dev/x"))),
            ERR_DISK_CONFIGURED
        );
        sim.new_minor("r0", 1, 1).unwrap();
        assert_eq!(
            code(sim.attach(1, &DiskConf::internal("/dev/x"))),
            ERR_BDCLAIM_DISK
        );
        assert_eq!(
            code(sim.attach(1, &DiskConf::internal("/dev/missing"))),
            ERR_OPEN_DISK
        );
        sim.add_disk(
            "/dev/blank",
            SimDisk {
                metadata: false,
                ..SimDisk::new(2 << 20)
            },
        );
        assert_eq!(
            code(sim.attach(1, &DiskConf::internal("/dev/blank"))),
            ERR_MD_INVALID
        );
        assert_eq!(code(sim.del_minor(0)), ERR_MINOR_CONFIGURED);
        assert_eq!(code(sim.del_resource("r0")), ERR_RES_IN_USE);
        assert_eq!(code(sim.resize(1, &Resize::default())), ERR_NO_DISK);
        assert_eq!(code(sim.primary(7, true)), ERR_MINOR_INVALID);
        // Diskless cannot be forced UpToDate.
        assert_eq!(code(sim.primary(1, true)), SS_NO_UP_TO_DATE_DISK);

        let (a, b) = (
            "10.0.0.1:7789".parse().unwrap(),
            "10.0.0.2:7789".parse().unwrap(),
        );
        sim.connect("r0", &a, &b, Protocol::C).unwrap();
        assert_eq!(
            code(sim.connect("r0", &a, &b, Protocol::C)),
            ERR_NET_CONFIGURED
        );
        sim.new_resource("r1").unwrap();
        assert_eq!(code(sim.connect("r1", &a, &b, Protocol::C)), ERR_LOCAL_ADDR);
        // Connected, both Secondary: a resize needs a Primary.
        assert!(sim.peer_connects("r0"));
        assert_eq!(code(sim.resize(0, &Resize::default())), ERR_NO_PRIMARY);
        assert_eq!(code(sim.del_resource("r0")), ERR_NET_CONFIGURED);

        sim.detach(0, false).unwrap();
        sim.disconnect(&a, &b, false).unwrap();
        sim.del_minor(0).unwrap();
        sim.del_minor(1).unwrap();
        sim.del_resource("r0").unwrap();
        assert!(sim.resource("r0").is_none());
    }

    #[test]
    fn a_stacked_minor_needs_its_lower_device_primary_and_holds_it_open() {
        let mut sim = r0();
        sim.add_disk("/dev/drbd0", SimDisk::new(0));
        sim.new_resource("r0-U").unwrap();
        sim.new_minor("r0-U", 10, 0).unwrap();
        let upper = DiskConf::internal("/dev/drbd0");
        assert_eq!(code(sim.attach(10, &upper)), ERR_OPEN_DISK);
        sim.primary(0, true).unwrap();
        sim.attach(10, &upper).unwrap();
        let lower = sim.minor(0).unwrap().capacity_sectors;
        assert_eq!(
            sim.minor(10).unwrap().capacity_sectors,
            Layout::internal(lower).usable_sectors()
        );
        assert_eq!(code(sim.secondary(0)), SS_DEVICE_IN_USE);
        assert_eq!(code(sim.down("r0")), SS_DEVICE_IN_USE);
        sim.down("r0-U").unwrap();
        sim.secondary(0).unwrap();
        sim.down("r0").unwrap();
        assert!(sim.is_empty());
    }

    #[test]
    fn faults_fire_where_they_are_aimed_and_then_stop() {
        let mut sim = r0();
        sim.fail(Fault::call("secondary").code(ERR_INVALID_REQUEST));
        sim.fail(Fault::nth(1));
        // The 0th request from now passes, the 1st fails with EIO.
        sim.status(None).unwrap();
        assert!(matches!(
            sim.status(None),
            Err(DrbdError::Genl(GenlError::Errno(_)))
        ));
        sim.status(None).unwrap();
        assert_eq!(code(sim.secondary(0)), ERR_INVALID_REQUEST);
        sim.secondary(0).unwrap();
        sim.fail(Fault::call("detach").always());
        assert!(sim.detach(0, false).is_err() && sim.detach(0, false).is_err());
        sim.clear_faults();
        sim.detach(0, false).unwrap();
        assert_eq!(
            sim.changes(),
            [
                "new-resource r0",
                "new-minor r0 0 0",
                "attach 0 /dev/x",
                "secondary 0",
                "secondary 0",
                "detach 0",
                "detach 0",
                "detach 0"
            ]
        );
    }
}
