//! DRBD 8.4 administration over generic netlink: the requests drbdsetup-84
//! sends for drbdadm's verbs, typed (docs/research/drbd84.md §1.4-1.7).
//! Each call is one request; its ret_code becomes a [`DrbdError`] that
//! names the answer and says what to do. Knows nothing of LVM or the stack.

use std::net::SocketAddr;

use serde::Serialize;

use super::codes;
use super::genl::{DrbdMessage, Field, Genl, GenlError, Tla, NO_MINOR};
use super::state::State;

/// `genlmsghdr.cmd` values (enum drbd_genl_ops).
pub mod cmd {
    /// DRBD_ADM_GET_STATUS: a status dump of one resource's or every minor.
    pub const GET_STATUS: u8 = 2;
    /// DRBD_ADM_NEW_MINOR: `new-minor`: creates a minor (volume) in a resource.
    pub const NEW_MINOR: u8 = 5;
    /// DRBD_ADM_DEL_MINOR: `del-minor`: deletes an unconfigured minor.
    pub const DEL_MINOR: u8 = 6;
    /// DRBD_ADM_NEW_RESOURCE: `new-resource`: creates a resource (connection object).
    pub const NEW_RESOURCE: u8 = 7;
    /// DRBD_ADM_DEL_RESOURCE: `del-resource`: deletes a resource without minors.
    pub const DEL_RESOURCE: u8 = 8;
    /// DRBD_ADM_CONNECT: `connect`: sets the network configuration and starts connecting.
    pub const CONNECT: u8 = 10;
    /// DRBD_ADM_DISCONNECT: `disconnect`: drops the connection.
    pub const DISCONNECT: u8 = 11;
    /// DRBD_ADM_ATTACH: `attach`: attaches backing device and metadata to a minor.
    pub const ATTACH: u8 = 12;
    /// DRBD_ADM_RESIZE: `resize`: adopts a new size of the backing device.
    pub const RESIZE: u8 = 13;
    /// DRBD_ADM_PRIMARY: `primary`: promotes a minor.
    pub const PRIMARY: u8 = 14;
    /// DRBD_ADM_SECONDARY: `secondary`: demotes a minor.
    pub const SECONDARY: u8 = 15;
    /// DRBD_ADM_DETACH: `detach`: releases the backing device, keeping the minor diskless.
    pub const DETACH: u8 = 18;
    /// DRBD_ADM_DOWN: `down`: tears the whole resource down in one request.
    pub const DOWN: u8 = 27;
}

/// Top-level attribute ids.
pub mod tla {
    /// DRBD_NLA_CFG_REPLY: the kernel's reply text (info string) to a request.
    pub const CFG_REPLY: u16 = 1;
    /// DRBD_NLA_CFG_CONTEXT: which resource, volume and connection endpoints a request addresses.
    pub const CFG_CONTEXT: u16 = 2;
    /// DRBD_NLA_DISK_CONF: disk options of `attach`.
    pub const DISK_CONF: u16 = 3;
    /// DRBD_NLA_NET_CONF: net options of `connect`.
    pub const NET_CONF: u16 = 5;
    /// DRBD_NLA_SET_ROLE_PARMS: `primary --force`.
    pub const SET_ROLE_PARMS: u16 = 6;
    /// DRBD_NLA_RESIZE_PARMS: `resize` options.
    pub const RESIZE_PARMS: u16 = 7;
    /// DRBD_NLA_STATE_INFO: a minor's state and counters in status dumps and events.
    pub const STATE_INFO: u16 = 8;
    /// DRBD_NLA_DISCONNECT_PARMS: `disconnect --force`.
    pub const DISCONNECT_PARMS: u16 = 12;
    /// DRBD_NLA_DETACH_PARMS: `detach --force`.
    pub const DETACH_PARMS: u16 = 13;
}

/// `meta_dev_idx` for internal metadata (DRBD_MD_INDEX_FLEX_INT), what
/// drbdsetup sends for "internal".
pub const MD_INDEX_FLEX_INT: i32 = -3;

/// Why a DRBD request failed.
#[derive(Debug, thiserror::Error)]
pub enum DrbdError {
    /// The netlink exchange itself failed (no module, socket, errno, bad reply).
    #[error(transparent)]
    Genl(#[from] GenlError),
    /// The kernel answered with a ret_code other than NO_ERROR (enum drbd_ret_code).
    #[error("DRBD refused {what}: ({code}) {name}: {meaning}{}", info.as_deref().map(|i| format!(" [kernel: {i}]")).unwrap_or_default())]
    Refused {
        /// The request, as drbdsetup's command line would spell it.
        what: String,
        /// The ret_code (ERR_* values from 101 on).
        code: i32,
        /// The ret_code's name in DRBD's sources, e.g. `ERR_DISK_TOO_SMALL`.
        name: &'static str,
        /// What it means and what to do, in words.
        meaning: &'static str,
        /// The kernel's own message from DRBD_NLA_CFG_REPLY, if it sent one.
        info: Option<String>,
    },
}

/// Result of a DRBD request.
pub type Result<T> = std::result::Result<T, DrbdError>;

/// The replication protocol (net { protocol }).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Protocol {
    /// Asynchronous: a write completes once it is on the local disk and in the TCP send buffer.
    A,
    /// Memory-synchronous: a write completes once the peer has received it.
    B,
    /// Synchronous: a write completes once it is on both disks.
    C,
}

impl Protocol {
    fn wire(self) -> u32 {
        match self {
            Protocol::A => 1,
            Protocol::B => 2,
            Protocol::C => 3,
        }
    }
    fn from_wire(v: u32) -> Option<Protocol> {
        match v {
            1 => Some(Protocol::A),
            2 => Some(Protocol::B),
            3 => Some(Protocol::C),
            _ => None,
        }
    }
}

/// A `struct sockaddr_in`/`sockaddr_in6` as the kernel stores and compares
/// it: family in host order, port and address big-endian.
pub fn sockaddr_bytes(addr: &SocketAddr) -> Vec<u8> {
    match addr {
        SocketAddr::V4(a) => {
            let mut b = Vec::with_capacity(16);
            b.extend_from_slice(&(nix::libc::AF_INET as u16).to_ne_bytes());
            b.extend_from_slice(&a.port().to_be_bytes());
            b.extend_from_slice(&a.ip().octets());
            b.extend_from_slice(&[0; 8]);
            b
        }
        SocketAddr::V6(a) => {
            let mut b = Vec::with_capacity(28);
            b.extend_from_slice(&(nix::libc::AF_INET6 as u16).to_ne_bytes());
            b.extend_from_slice(&a.port().to_be_bytes());
            b.extend_from_slice(&a.flowinfo().to_be_bytes());
            b.extend_from_slice(&a.ip().octets());
            b.extend_from_slice(&a.scope_id().to_ne_bytes());
            b
        }
    }
}

fn sockaddr_parse(b: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes(b.get(0..2)?.try_into().ok()?);
    let port = u16::from_be_bytes(b.get(2..4)?.try_into().ok()?);
    match i32::from(family) {
        nix::libc::AF_INET => {
            let ip: [u8; 4] = b.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::from((ip, port)))
        }
        nix::libc::AF_INET6 => {
            let ip: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            Some(SocketAddr::from((ip, port)))
        }
        _ => None,
    }
}

/// What `attach` sends in DISK_CONF: the devices, and the options a
/// resource file set (unset ones keep the kernel's defaults, as drbdsetup
/// leaves them out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskConf {
    /// The backing block device (drbdsetup's `backing_dev`).
    pub backing_dev: String,
    /// The metadata device (the backing device itself for internal).
    pub meta_dev: String,
    /// Index of the metadata on `meta_dev`: [`MD_INDEX_FLEX_INT`] for internal.
    pub meta_dev_idx: i32,
    /// `disk { size }`: the usable size in 512-byte sectors, if fixed.
    pub size_sectors: Option<u64>,
    /// `disk { resync-rate }` in KiB/s.
    pub resync_rate_kib: Option<u32>,
    /// `disk { al-extents }`: activity log slots (4 MiB extents each).
    pub al_extents: Option<u32>,
    /// 0 pass_on, 1 call-local-io-error, 2 detach.
    pub on_io_error: Option<u32>,
}

impl DiskConf {
    /// Internal metadata on `disk`.
    pub fn internal(disk: &str) -> DiskConf {
        DiskConf {
            backing_dev: disk.to_owned(),
            meta_dev: disk.to_owned(),
            meta_dev_idx: MD_INDEX_FLEX_INT,
            ..DiskConf::default()
        }
    }

    fn tla(&self) -> Tla {
        let mut fields = vec![
            Field::str(1, &self.backing_dev),
            Field::str(2, &self.meta_dev),
            Field::u32(3, self.meta_dev_idx as u32),
        ];
        if let Some(s) = self.size_sectors {
            fields.push(Field::u64(4, s).mandatory());
        }
        if let Some(v) = self.on_io_error {
            fields.push(Field::u32(6, v).mandatory());
        }
        if let Some(v) = self.resync_rate_kib {
            fields.push(Field::u32(8, v).mandatory());
        }
        if let Some(v) = self.al_extents {
            fields.push(Field::u32(10, v).mandatory());
        }
        Tla {
            kind: tla::DISK_CONF,
            fields,
        }
    }
}

/// What `resize` sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resize {
    /// A fixed size in 512-byte sectors; None: as large as the backing device allows.
    pub size_sectors: Option<u64>,
    /// --assume-peer-has-space (needed to grow while not connected).
    pub assume_peer_has_space: bool,
    /// --assume-clean: no resync of the new area (connected only).
    pub assume_clean: bool,
}

/// One minor, as a status dump reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MinorStatus {
    /// The minor: /dev/drbdMINOR.
    pub minor: u32,
    /// The resource the minor belongs to.
    pub resource: String,
    /// Its volume number within the resource (0 for cairn's resources).
    pub volume: u32,
    /// Roles, connection and disk states.
    pub state: State,
    /// The DRBD device's size in sectors.
    pub capacity_sectors: u64,
    /// The attached backing device; None while diskless.
    pub backing_dev: Option<String>,
    /// This end's address (IP:PORT) once connect was sent.
    pub my_addr: Option<String>,
    /// The peer's address (IP:PORT) once connect was sent.
    pub peer_addr: Option<String>,
    /// The replication protocol of the connection, once configured.
    pub protocol: Option<Protocol>,
    /// MDF_* flags of the attached disk.
    pub disk_flags: Option<u32>,
    /// Bitmap bits (4 KiB blocks) in total and out of sync.
    pub bits_total: Option<u64>,
    /// Bitmap bits out of sync: data a resync still has to copy (4 KiB each).
    pub bits_oos: Option<u64>,
    /// Bits the running resync started with.
    pub bits_rs_total: Option<u64>,
    /// Bits the running resync failed to copy.
    pub bits_rs_failed: Option<u64>,
    /// 512-byte sectors sent to the peer (/proc/drbd's ns, in KiB there).
    pub sent: Option<u64>,
    /// Sectors received from the peer (nr).
    pub received: Option<u64>,
    /// Sectors read from the local disk (dr).
    pub read: Option<u64>,
    /// Sectors written to the local disk (dw).
    pub written: Option<u64>,
    /// Activity log updates (al), a count of metadata writes.
    pub al_writes: Option<u64>,
    /// Bitmap updates (bm), a count of metadata writes.
    pub bm_writes: Option<u64>,
}

impl MinorStatus {
    /// A minor in `state`, with nothing else known: no size, no disk, no
    /// addresses, no counters (what a test or a simulation fills in).
    pub fn new(minor: u32, resource: &str, volume: u32, state: State) -> MinorStatus {
        MinorStatus {
            minor,
            resource: resource.to_owned(),
            volume,
            state,
            capacity_sectors: 0,
            backing_dev: None,
            my_addr: None,
            peer_addr: None,
            protocol: None,
            disk_flags: None,
            bits_total: None,
            bits_oos: None,
            bits_rs_total: None,
            bits_rs_failed: None,
            sent: None,
            received: None,
            read: None,
            written: None,
            al_writes: None,
            bm_writes: None,
        }
    }

    fn from_message(m: &DrbdMessage) -> Option<MinorStatus> {
        let ctx = m.tla(tla::CFG_CONTEXT)?;
        let info = m.tla(tla::STATE_INFO)?;
        let u64f = |nr| info.field(nr).and_then(|f| f.as_u64());
        Some(MinorStatus {
            minor: m.minor,
            resource: ctx.field(2).and_then(|f| f.as_str()).unwrap_or_default(),
            volume: ctx.field(1).and_then(|f| f.as_u32()).unwrap_or(0),
            state: State::decode(info.field(2).and_then(|f| f.as_u32())?),
            capacity_sectors: u64f(3).unwrap_or(0),
            backing_dev: m
                .tla(tla::DISK_CONF)
                .and_then(|d| d.field(1))
                .and_then(|f| f.as_str()),
            my_addr: ctx
                .field(3)
                .and_then(|f| sockaddr_parse(&f.value))
                .map(|a| a.to_string()),
            peer_addr: ctx
                .field(4)
                .and_then(|f| sockaddr_parse(&f.value))
                .map(|a| a.to_string()),
            protocol: m
                .tla(tla::NET_CONF)
                .and_then(|n| n.field(6))
                .and_then(|f| f.as_u32())
                .and_then(Protocol::from_wire),
            disk_flags: info.field(8).and_then(|f| f.as_u32()),
            bits_total: u64f(9),
            bits_oos: u64f(10),
            bits_rs_total: u64f(11),
            bits_rs_failed: u64f(12),
            sent: u64f(15),
            received: u64f(16),
            read: u64f(17),
            written: u64f(18),
            al_writes: u64f(19),
            bm_writes: u64f(20),
        })
    }
}

fn ctx_resource(name: &str) -> Tla {
    Tla {
        kind: tla::CFG_CONTEXT,
        fields: vec![Field::str(2, name).mandatory()],
    }
}

fn flag_tla(kind: u16, on: bool) -> Option<Tla> {
    on.then(|| Tla {
        kind,
        fields: vec![Field::u8(1, 1).mandatory()],
    })
}

/// The DRBD 8.4 module, through its netlink family.
pub struct Drbd {
    genl: Genl,
}

impl Drbd {
    /// Opens a generic netlink socket and resolves the `drbd` family
    /// (fails when the module is not loaded).
    pub fn open() -> Result<Drbd> {
        Ok(Drbd {
            genl: Genl::open()?,
        })
    }

    /// One request; its ret_code checked.
    fn call(&mut self, what: String, cmd: u8, minor: u32, tlas: Vec<Tla>) -> Result<DrbdMessage> {
        let replies = self.genl.request(
            DrbdMessage {
                cmd,
                minor,
                flags: 0,
                tlas,
            },
            false,
        )?;
        let reply = replies
            .into_iter()
            .next()
            .ok_or(GenlError::NoAnswer("a DRBD request"))?;
        let code = reply.ret_code();
        if codes::is_success(code) {
            return Ok(reply);
        }
        let (name, meaning) = codes::describe(code);
        Err(DrbdError::Refused {
            what,
            code,
            name,
            meaning,
            info: reply
                .tla(tla::CFG_REPLY)
                .and_then(|t| t.field(1))
                .and_then(|f| f.as_str())
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.trim().to_owned()),
        })
    }

    /// `drbdsetup new-resource NAME`.
    pub fn new_resource(&mut self, name: &str) -> Result<()> {
        self.call(
            format!("new-resource {name}"),
            cmd::NEW_RESOURCE,
            NO_MINOR,
            vec![ctx_resource(name)],
        )
        .map(|_| ())
    }

    /// `drbdsetup new-minor NAME MINOR VOLUME`: creates /dev/drbdMINOR, diskless and unconnected.
    pub fn new_minor(&mut self, name: &str, minor: u32, volume: u32) -> Result<()> {
        self.call(
            format!("new-minor {name} {minor} {volume}"),
            cmd::NEW_MINOR,
            minor,
            vec![Tla {
                kind: tla::CFG_CONTEXT,
                fields: vec![
                    Field::str(2, name).mandatory(),
                    Field::u32(1, volume).mandatory(),
                ],
            }],
        )
        .map(|_| ())
    }

    /// `drbdsetup attach`: gives `minor` its backing device and metadata.
    pub fn attach(&mut self, minor: u32, disk: &DiskConf) -> Result<()> {
        self.call(
            format!("attach {minor} {}", disk.backing_dev),
            cmd::ATTACH,
            minor,
            vec![disk.tla()],
        )
        .map(|_| ())
    }

    /// `drbdsetup connect NAME MY PEER --protocol P`: starts connecting to the peer.
    pub fn connect(
        &mut self,
        name: &str,
        my: &SocketAddr,
        peer: &SocketAddr,
        protocol: Protocol,
    ) -> Result<()> {
        self.call(
            format!("connect {name} {my} {peer}"),
            cmd::CONNECT,
            NO_MINOR,
            vec![
                Tla {
                    kind: tla::CFG_CONTEXT,
                    fields: vec![
                        Field::str(2, name).mandatory(),
                        Field::bin(3, &sockaddr_bytes(my)).mandatory(),
                        Field::bin(4, &sockaddr_bytes(peer)).mandatory(),
                    ],
                },
                Tla {
                    kind: tla::NET_CONF,
                    fields: vec![Field::u32(6, protocol.wire()).mandatory()],
                },
            ],
        )
        .map(|_| ())
    }

    /// Addressed by the connection's two endpoints, not the resource.
    pub fn disconnect(&mut self, my: &SocketAddr, peer: &SocketAddr, force: bool) -> Result<()> {
        let mut tlas = vec![Tla {
            kind: tla::CFG_CONTEXT,
            fields: vec![
                Field::bin(3, &sockaddr_bytes(my)).mandatory(),
                Field::bin(4, &sockaddr_bytes(peer)).mandatory(),
            ],
        }];
        tlas.extend(flag_tla(tla::DISCONNECT_PARMS, force));
        self.call(
            format!("disconnect {my} {peer}"),
            cmd::DISCONNECT,
            NO_MINOR,
            tlas,
        )
        .map(|_| ())
    }

    /// `drbdsetup primary MINOR [--force]`; force promotes without up-to-date data
    /// (the first primary of a new resource).
    pub fn primary(&mut self, minor: u32, force: bool) -> Result<()> {
        self.call(
            format!("primary {minor}{}", if force { " --force" } else { "" }),
            cmd::PRIMARY,
            minor,
            flag_tla(tla::SET_ROLE_PARMS, force).into_iter().collect(),
        )
        .map(|_| ())
    }

    /// `drbdsetup secondary MINOR`.
    pub fn secondary(&mut self, minor: u32) -> Result<()> {
        self.call(format!("secondary {minor}"), cmd::SECONDARY, minor, vec![])
            .map(|_| ())
    }

    /// `drbdsetup resize MINOR`: makes the device follow its backing device's size.
    pub fn resize(&mut self, minor: u32, r: &Resize) -> Result<()> {
        let mut fields = Vec::new();
        if let Some(s) = r.size_sectors {
            fields.push(Field::u64(1, s).mandatory());
        }
        if r.assume_peer_has_space {
            fields.push(Field::u8(2, 1).mandatory());
        }
        if r.assume_clean {
            fields.push(Field::u8(3, 1).mandatory());
        }
        self.call(
            format!("resize {minor}"),
            cmd::RESIZE,
            minor,
            vec![Tla {
                kind: tla::RESIZE_PARMS,
                fields,
            }],
        )
        .map(|_| ())
    }

    /// `drbdsetup detach MINOR [--force]`: the minor stays, diskless.
    pub fn detach(&mut self, minor: u32, force: bool) -> Result<()> {
        self.call(
            format!("detach {minor}"),
            cmd::DETACH,
            minor,
            flag_tla(tla::DETACH_PARMS, force).into_iter().collect(),
        )
        .map(|_| ())
    }

    /// In one call: every minor demoted, disconnected, detached, deleted,
    /// then the resource.
    pub fn down(&mut self, name: &str) -> Result<()> {
        self.call(
            format!("down {name}"),
            cmd::DOWN,
            NO_MINOR,
            vec![ctx_resource(name)],
        )
        .map(|_| ())
    }

    /// `drbdsetup del-minor MINOR` (the minor must be unconfigured).
    pub fn del_minor(&mut self, minor: u32) -> Result<()> {
        self.call(format!("del-minor {minor}"), cmd::DEL_MINOR, minor, vec![])
            .map(|_| ())
    }

    /// `drbdsetup del-resource NAME` (the resource must have no minors).
    pub fn del_resource(&mut self, name: &str) -> Result<()> {
        self.call(
            format!("del-resource {name}"),
            cmd::DEL_RESOURCE,
            NO_MINOR,
            vec![ctx_resource(name)],
        )
        .map(|_| ())
    }

    /// Every configured minor (of `resource` only, if given). A resource
    /// without minors has no entry.
    pub fn status(&mut self, resource: Option<&str>) -> Result<Vec<MinorStatus>> {
        let tlas = resource.map(ctx_resource).into_iter().collect();
        let replies = match self.genl.request(
            DrbdMessage {
                cmd: cmd::GET_STATUS,
                minor: NO_MINOR,
                flags: 0,
                tlas,
            },
            true,
        ) {
            Ok(r) => r,
            // A filter naming an unknown resource ends the dump with -ENODEV.
            Err(GenlError::Errno(e)) if e.raw_os_error() == Some(nix::libc::ENODEV) => vec![],
            Err(e) => return Err(e.into()),
        };
        Ok(replies
            .iter()
            .filter(|m| m.minor != NO_MINOR)
            .filter_map(MinorStatus::from_message)
            .collect())
    }

    /// Whether `resource` exists in the kernel (with or without minors).
    pub fn resource_exists(&mut self, resource: &str) -> Result<bool> {
        match self.genl.request(
            DrbdMessage {
                cmd: cmd::GET_STATUS,
                minor: NO_MINOR,
                flags: 0,
                tlas: vec![ctx_resource(resource)],
            },
            true,
        ) {
            Ok(r) => Ok(!r.is_empty()),
            Err(GenlError::Errno(e)) if e.raw_os_error() == Some(nix::libc::ENODEV) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// A subscription to DRBD's broadcasts.
    pub fn events(&self) -> Result<super::genl::Events> {
        Ok(self.genl.subscribe()?)
    }
}

/// One event, decoded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// The minor it concerns.
    pub minor: u32,
    /// SIB reason: "status", "state-change", "helper-pre", "helper-post", "sync-progress".
    pub reason: &'static str,
    /// The state now (after a change).
    pub state: Option<State>,
    /// The state before, for a state change.
    pub previous: Option<State>,
    /// Bitmap bits out of sync (4 KiB each), for sync progress.
    pub bits_oos: Option<u64>,
    /// The user-mode helper run (e.g. `before-resync-target`), for helper events.
    pub helper: Option<String>,
}

impl Event {
    /// Decodes a broadcast; None if it carries no STATE_INFO.
    pub fn from_message(m: &DrbdMessage) -> Option<Event> {
        let info = m.tla(tla::STATE_INFO)?;
        let u32f = |nr| info.field(nr).and_then(|f| f.as_u32());
        let reason = match u32f(1)? {
            1 => "status",
            2 => "state-change",
            3 => "helper-pre",
            4 => "helper-post",
            5 => "sync-progress",
            _ => "unknown",
        };
        Some(Event {
            minor: m.minor,
            reason,
            state: u32f(6).or(u32f(2)).map(State::decode),
            previous: u32f(5).map(State::decode),
            bits_oos: info.field(10).and_then(|f| f.as_u64()),
            helper: info.field(13).and_then(|f| f.as_str()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_the_kernel_stores_them() {
        let a: SocketAddr = "127.0.0.1:7789".parse().unwrap();
        let b = sockaddr_bytes(&a);
        assert_eq!(b.len(), 16);
        assert_eq!(&b[2..4], &[0x1e, 0x6d]); // 7789, big-endian
        assert_eq!(&b[4..8], &[127, 0, 0, 1]);
        assert_eq!(sockaddr_parse(&b), Some(a));
        let v6: SocketAddr = "[::1]:7791".parse().unwrap();
        assert_eq!(sockaddr_bytes(&v6).len(), 28);
        assert_eq!(sockaddr_parse(&sockaddr_bytes(&v6)), Some(v6));
    }

    #[test]
    fn attach_sends_what_drbdsetup_sends_for_internal_metadata() {
        let t = DiskConf::internal("/dev/mapper/DRBDVG-DRBDLV1").tla();
        assert_eq!(t.kind, tla::DISK_CONF);
        // Devices and index without the mandatory bit, as the kernel marks them.
        assert_eq!(t.fields[0].kind, 1);
        assert_eq!(t.fields[2].kind, 3);
        assert_eq!(t.fields[2].as_u32().unwrap() as i32, -3);
        assert_eq!(t.fields.len(), 3, "unset options are not sent");
    }

    #[test]
    fn a_status_reply_decodes() {
        let m = DrbdMessage {
            cmd: cmd::GET_STATUS,
            minor: 10,
            flags: 101,
            tlas: vec![
                Tla {
                    kind: tla::CFG_CONTEXT,
                    fields: vec![
                        Field::u32(1, 0),
                        Field::str(2, "r0-U"),
                        Field::bin(3, &sockaddr_bytes(&"127.0.0.1:7791".parse().unwrap())),
                        Field::bin(4, &sockaddr_bytes(&"10.0.0.2:7791".parse().unwrap())),
                    ],
                },
                Tla {
                    kind: tla::NET_CONF,
                    fields: vec![Field::u32(6, 1)],
                },
                Tla {
                    kind: tla::STATE_INFO,
                    fields: vec![
                        Field::u32(1, 1),
                        Field::u32(2, 0xD001 | (8 << 4)),
                        Field::u64(3, 2_000_000),
                        Field::u64(10, 12),
                    ],
                },
            ],
        };
        let s = MinorStatus::from_message(&m).unwrap();
        assert_eq!(s.resource, "r0-U");
        assert_eq!(s.state.connection, "WFConnection");
        assert_eq!(s.protocol, Some(Protocol::A));
        assert_eq!(s.peer_addr.as_deref(), Some("10.0.0.2:7791"));
        assert_eq!(s.bits_oos, Some(12));
    }
}
