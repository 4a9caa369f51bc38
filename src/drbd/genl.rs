//! DRBD 8.4's generic-netlink family "drbd" on the wire
//! (docs/research/drbd84.md §1): after the generic header, an 8-byte DRBD
//! header (the minor, then request flags or the reply's ret_code, both in
//! host byte order), then top-level attributes (TLAs), each a nest of
//! fields. The kernel parses TLAs strictly (each must carry NLA_F_NESTED)
//! and fields liberally (an unknown field is refused only when it carries
//! DRBD's "mandatory" bit, 0x4000). Replies may come back without the
//! nested flag and with the mandatory bit set, so decoding masks both.
//!
//! [`Genl`] is a blocking client on a netlink-sys socket: the family is
//! resolved through the controller (netlink-packet-generic's `GenlCtrl`),
//! its version checked (8.4 registers version 1; DRBD 9 reuses the name
//! with version 2 and a different protocol), then each request gets its
//! replies, a dump until NLMSG_DONE. Async crates (genetlink) would bring a
//! runtime into a short-lived CLI for nothing: one request at a time is
//! what the kernel serialises anyway (no parallel ops in the family).

use netlink_packet_core::{
    DecodeError, Emitable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NlasIterator,
    ParseableParametrized, NLA_F_NESTED, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_generic::ctrl::nlas::{GenlCtrlAttrs, McastGrpAttrs};
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};
use netlink_sys::{protocols::NETLINK_GENERIC, Socket, SocketAddr};

/// The generic netlink family name DRBD registers.
pub const FAMILY: &str = "drbd";
/// The in-tree 8.4 module's family version (GENL_MAGIC_VERSION).
pub const VERSION_84: u32 = 1;
/// DRBD 9's.
pub const VERSION_9: u32 = 2;
/// sizeof(struct drbd_genlmsghdr).
pub const DRBD_HEADER_LEN: usize = 8;
/// The minor of requests addressed to a resource or connection.
pub const NO_MINOR: u32 = u32::MAX;
/// A field the kernel must understand (DRBD_GENLA_F_MANDATORY).
pub const MANDATORY: u16 = 0x4000;
const TYPE_MASK: u16 = 0x3FFF;

/// One field of a TLA: its number (with [`MANDATORY`] when the kernel
/// marks it so) and its raw value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The field number, possibly with [`MANDATORY`] set (the netlink attribute type).
    pub kind: u16,
    /// The value in host byte order, as the kernel stores it.
    pub value: Vec<u8>,
}

impl Field {
    /// The field number without flags.
    pub fn nr(&self) -> u16 {
        self.kind & TYPE_MASK
    }

    /// A one-byte field (also DRBD's flags).
    pub fn u8(nr: u16, v: u8) -> Field {
        Field {
            kind: nr,
            value: vec![v],
        }
    }
    /// A 32-bit field, host byte order.
    pub fn u32(nr: u16, v: u32) -> Field {
        Field {
            kind: nr,
            value: v.to_ne_bytes().to_vec(),
        }
    }
    /// A 64-bit field, host byte order.
    pub fn u64(nr: u16, v: u64) -> Field {
        Field {
            kind: nr,
            value: v.to_ne_bytes().to_vec(),
        }
    }
    /// A NUL-terminated string (NLA_NUL_STRING).
    pub fn str(nr: u16, v: &str) -> Field {
        let mut value = v.as_bytes().to_vec();
        value.push(0);
        Field { kind: nr, value }
    }
    /// Raw bytes (NLA_BINARY), e.g. a sockaddr.
    pub fn bin(nr: u16, v: &[u8]) -> Field {
        Field {
            kind: nr,
            value: v.to_vec(),
        }
    }
    /// Sets [`MANDATORY`], as drbdsetup does for option fields: a kernel that
    /// does not know the field then refuses the request instead of ignoring it.
    pub fn mandatory(mut self) -> Field {
        self.kind |= MANDATORY;
        self
    }

    /// The first byte; None for an empty value.
    pub fn as_u8(&self) -> Option<u8> {
        self.value.first().copied()
    }
    /// The value as a host-order u32; None if shorter than 4 bytes.
    pub fn as_u32(&self) -> Option<u32> {
        Some(u32::from_ne_bytes(self.value.get(..4)?.try_into().ok()?))
    }
    /// The value as a host-order u64; None if shorter than 8 bytes.
    pub fn as_u64(&self) -> Option<u64> {
        Some(u64::from_ne_bytes(self.value.get(..8)?.try_into().ok()?))
    }
    /// The value up to its first NUL as UTF-8; None if not UTF-8.
    pub fn as_str(&self) -> Option<String> {
        let end = self
            .value
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.value.len());
        String::from_utf8(self.value[..end].to_vec()).ok()
    }
}

/// A top-level attribute: a nest of fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tla {
    /// The TLA id (see `admin::tla`), without NLA_F_NESTED.
    pub kind: u16,
    /// The nested fields, in wire order.
    pub fields: Vec<Field>,
}

impl Tla {
    /// The field numbered `nr`, ignoring flag bits.
    pub fn field(&self, nr: u16) -> Option<&Field> {
        self.fields.iter().find(|f| f.nr() == nr)
    }
}

fn nla_len(value: usize) -> usize {
    4 + value.next_multiple_of(4)
}

fn emit_nla(buf: &mut [u8], kind: u16, value_len: usize) -> usize {
    buf[0..2].copy_from_slice(&((4 + value_len) as u16).to_ne_bytes());
    buf[2..4].copy_from_slice(&kind.to_ne_bytes());
    4
}

/// A message of the drbd family (what follows the generic header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrbdMessage {
    /// `genlmsghdr.cmd`: the request (see `admin::cmd`).
    pub cmd: u8,
    /// The minor addressed, or [`NO_MINOR`] for a resource or connection.
    pub minor: u32,
    /// Request flags, or the reply's ret_code.
    pub flags: u32,
    /// The top-level attributes.
    pub tlas: Vec<Tla>,
}

impl DrbdMessage {
    /// The reply's ret_code (enum drbd_ret_code; NO_ERROR is 101).
    pub fn ret_code(&self) -> i32 {
        self.flags as i32
    }

    /// The TLA with id `kind`, ignoring flag bits.
    pub fn tla(&self, kind: u16) -> Option<&Tla> {
        self.tlas.iter().find(|t| t.kind & TYPE_MASK == kind)
    }
}

impl GenlFamily for DrbdMessage {
    fn family_name() -> &'static str {
        FAMILY
    }
    fn command(&self) -> u8 {
        self.cmd
    }
    fn version(&self) -> u8 {
        VERSION_84 as u8
    }
}

impl Emitable for DrbdMessage {
    fn buffer_len(&self) -> usize {
        DRBD_HEADER_LEN
            + self
                .tlas
                .iter()
                .map(|t| nla_len(t.fields.iter().map(|f| nla_len(f.value.len())).sum()))
                .sum::<usize>()
    }

    fn emit(&self, buf: &mut [u8]) {
        buf[0..4].copy_from_slice(&self.minor.to_ne_bytes());
        buf[4..8].copy_from_slice(&self.flags.to_ne_bytes());
        let mut at = DRBD_HEADER_LEN;
        for t in &self.tlas {
            let inner: usize = t.fields.iter().map(|f| nla_len(f.value.len())).sum();
            at += emit_nla(&mut buf[at..], t.kind | NLA_F_NESTED, inner);
            for f in &t.fields {
                let n = emit_nla(&mut buf[at..], f.kind, f.value.len());
                buf[at + n..at + n + f.value.len()].copy_from_slice(&f.value);
                let padded = f.value.len().next_multiple_of(4);
                buf[at + n + f.value.len()..at + n + padded].fill(0);
                at += n + padded;
            }
        }
    }
}

fn parse_fields(buf: &[u8]) -> std::result::Result<Vec<Field>, DecodeError> {
    let mut fields = Vec::new();
    for nla in NlasIterator::new(buf) {
        let nla = nla?;
        // Type 0 is padding (nla_put_64bit on some architectures).
        // (The buffer's kind() is already without the flag bits.)
        if nla.kind() == 0 {
            continue;
        }
        let mandatory = if nla.network_byte_order_flag() {
            MANDATORY
        } else {
            0
        };
        fields.push(Field {
            kind: nla.kind() | mandatory,
            value: nla.value().to_vec(),
        });
    }
    Ok(fields)
}

impl ParseableParametrized<[u8], GenlHeader> for DrbdMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> std::result::Result<Self, DecodeError> {
        if buf.len() < DRBD_HEADER_LEN {
            return Err(DecodeError::buffer_too_small(buf.len(), DRBD_HEADER_LEN));
        }
        let minor = u32::from_ne_bytes(buf[0..4].try_into().expect("4 bytes"));
        let flags = u32::from_ne_bytes(buf[4..8].try_into().expect("4 bytes"));
        let mut tlas = Vec::new();
        for nla in NlasIterator::new(&buf[DRBD_HEADER_LEN..]) {
            let nla = nla?;
            tlas.push(Tla {
                kind: nla.kind(),
                fields: parse_fields(nla.value())?,
            });
        }
        Ok(DrbdMessage {
            cmd: header.cmd,
            minor,
            flags,
            tlas,
        })
    }
}

/// Why a netlink exchange with DRBD failed.
#[derive(Debug, thiserror::Error)]
pub enum GenlError {
    /// The controller does not know the `drbd` family.
    #[error(
        "the kernel has no DRBD module loaded (no generic-netlink family \"drbd\"): run \
         `modprobe drbd`"
    )]
    NoModule,
    /// The family has another version than 8.4's (DRBD 9 registers version 2).
    #[error(
        "the loaded DRBD speaks generic-netlink version {0}: cairn drives DRBD 8.4 (version 1); \
         DRBD 9 is not supported yet"
    )]
    Version(u32),
    /// The family's header size is not 8.4's 8 bytes.
    #[error("the drbd family header is {0} bytes, not 8: not the DRBD 8.4 this was built for")]
    HeaderSize(u32),
    /// Opening, binding or using the netlink socket failed.
    #[error("netlink socket: {0}")]
    Socket(#[source] std::io::Error),
    /// The kernel answered the request with a netlink error (an errno).
    #[error("the kernel refused the request: {0}")]
    Errno(#[source] std::io::Error),
    /// A reply that does not parse.
    #[error("cannot decode the kernel's answer: {0}")]
    Decode(String),
    /// The kernel closed a request without any reply message.
    #[error("the kernel sent no answer to {0}")]
    NoAnswer(&'static str),
}

impl From<DecodeError> for GenlError {
    fn from(e: DecodeError) -> Self {
        GenlError::Decode(e.to_string())
    }
}

/// Result of a netlink exchange.
pub type Result<T> = std::result::Result<T, GenlError>;

/// The family must be DRBD 8.4's: version 1 with an 8-byte header. DRBD 9
/// registers the same name with version 2 and another protocol.
pub fn check_family(version: Option<u32>, hdrsize: Option<u32>) -> Result<()> {
    match version {
        Some(VERSION_84) => {}
        Some(v) => return Err(GenlError::Version(v)),
        None => return Err(GenlError::NoAnswer("the family version")),
    }
    match hdrsize {
        Some(h) if h as usize != DRBD_HEADER_LEN => Err(GenlError::HeaderSize(h)),
        _ => Ok(()),
    }
}

/// A connection to the drbd family.
pub struct Genl {
    socket: Socket,
    family: u16,
    /// The "events" multicast group.
    pub events_group: Option<u32>,
    seq: u32,
}

fn send<T>(socket: &Socket, msg: &mut NetlinkMessage<T>) -> Result<()>
where
    T: netlink_packet_core::NetlinkSerializable + std::fmt::Debug,
{
    msg.finalize();
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut buf);
    socket
        .send_to(&buf, &SocketAddr::new(0, 0), 0)
        .map_err(GenlError::Socket)?;
    Ok(())
}

/// Reads one datagram and yields the messages it holds.
fn receive<T>(socket: &Socket) -> Result<Vec<NetlinkMessage<T>>>
where
    T: netlink_packet_core::NetlinkDeserializable + std::fmt::Debug,
{
    let (data, _) = socket.recv_from_full().map_err(GenlError::Socket)?;
    let mut out = Vec::new();
    let mut at = 0;
    while at + 16 <= data.len() {
        let len = u32::from_ne_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
        if len < 16 || at + len > data.len() {
            return Err(GenlError::Decode(format!(
                "a netlink message of {len} bytes in a datagram of {}",
                data.len()
            )));
        }
        out.push(NetlinkMessage::<T>::deserialize(&data[at..at + len])?);
        at += len.next_multiple_of(4);
    }
    Ok(out)
}

impl Genl {
    /// Resolves the drbd family and checks it is DRBD 8.4's.
    pub fn open() -> Result<Genl> {
        let mut socket = Socket::new(NETLINK_GENERIC).map_err(GenlError::Socket)?;
        socket.bind_auto().map_err(GenlError::Socket)?;
        // drbdsetup's buffers: a status dump of many minors is large.
        let _ = socket.set_rx_buf_sz(1 << 20);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST;
        header.sequence_number = 1;
        let mut msg = NetlinkMessage::new(
            header,
            NetlinkPayload::from(GenlMessage::from_payload(GenlCtrl {
                cmd: GenlCtrlCmd::GetFamily,
                nlas: vec![GenlCtrlAttrs::FamilyName(FAMILY.to_owned())],
            })),
        );
        send(&socket, &mut msg)?;
        let replies = receive::<GenlMessage<GenlCtrl>>(&socket)?;
        let reply = replies
            .into_iter()
            .next()
            .ok_or(GenlError::NoAnswer("the family lookup"))?;
        let attrs = match reply.payload {
            NetlinkPayload::InnerMessage(m) => m.payload.nlas,
            NetlinkPayload::Error(e) if e.raw_code() == -nix::libc::ENOENT => {
                return Err(GenlError::NoModule)
            }
            NetlinkPayload::Error(e) => return Err(GenlError::Errno(e.to_io())),
            other => return Err(GenlError::Decode(format!("{other:?}"))),
        };
        let (mut family, mut version, mut hdrsize, mut events_group) = (None, None, None, None);
        for a in attrs {
            match a {
                GenlCtrlAttrs::FamilyId(id) => family = Some(id),
                GenlCtrlAttrs::Version(v) => version = Some(v),
                GenlCtrlAttrs::HdrSize(h) => hdrsize = Some(h),
                GenlCtrlAttrs::McastGroups(groups) => {
                    for g in groups {
                        let name = g.iter().find_map(|x| match x {
                            McastGrpAttrs::Name(n) => Some(n.clone()),
                            _ => None,
                        });
                        let id = g.iter().find_map(|x| match x {
                            McastGrpAttrs::Id(i) => Some(*i),
                            _ => None,
                        });
                        if name.as_deref() == Some("events") {
                            events_group = id;
                        }
                    }
                }
                _ => {}
            }
        }
        let family = family.ok_or(GenlError::NoAnswer("the family id"))?;
        check_family(version, hdrsize)?;
        Ok(Genl {
            socket,
            family,
            events_group,
            seq: 1,
        })
    }

    /// Sends `msg` and collects the replies: one for a request, all of a
    /// dump. A netlink-level refusal (an errno) is an error; DRBD's own
    /// ret_code is left to the caller.
    pub fn request(&mut self, msg: DrbdMessage, dump: bool) -> Result<Vec<DrbdMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { 0 };
        header.sequence_number = seq;
        let mut genl = GenlMessage::from_payload(msg);
        genl.set_resolved_family_id(self.family);
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::from(genl));
        send(&self.socket, &mut nl)?;
        let mut replies = Vec::new();
        loop {
            for m in receive::<GenlMessage<DrbdMessage>>(&self.socket)? {
                if m.header.sequence_number != seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::InnerMessage(g) => {
                        replies.push(g.payload);
                        if !dump {
                            return Ok(replies);
                        }
                    }
                    NetlinkPayload::Done(d) => {
                        if d.code < 0 {
                            return Err(GenlError::Errno(std::io::Error::from_raw_os_error(
                                -d.code,
                            )));
                        }
                        return Ok(replies);
                    }
                    NetlinkPayload::Error(e) if e.code.is_some() => {
                        return Err(GenlError::Errno(e.to_io()))
                    }
                    // An ack: the reply came before it.
                    NetlinkPayload::Error(_) => return Ok(replies),
                    _ => {}
                }
            }
        }
    }

    /// A second socket joined to the "events" group: DRBD's broadcasts.
    pub fn subscribe(&self) -> Result<Events> {
        let group = self
            .events_group
            .ok_or(GenlError::NoAnswer("the events group"))?;
        let mut socket = Socket::new(NETLINK_GENERIC).map_err(GenlError::Socket)?;
        socket.bind_auto().map_err(GenlError::Socket)?;
        socket.add_membership(group).map_err(GenlError::Socket)?;
        Ok(Events {
            socket,
            family: self.family,
            pending: Vec::new(),
        })
    }
}

/// DRBD's event broadcasts, one message at a time.
pub struct Events {
    socket: Socket,
    family: u16,
    pending: Vec<DrbdMessage>,
}

impl Events {
    /// The next event (blocks).
    pub fn next_event(&mut self) -> Result<DrbdMessage> {
        loop {
            if !self.pending.is_empty() {
                return Ok(self.pending.remove(0));
            }
            for m in receive::<GenlMessage<DrbdMessage>>(&self.socket)? {
                if m.header.message_type != self.family {
                    continue;
                }
                if let NetlinkPayload::InnerMessage(g) = m.payload {
                    self.pending.push(g.payload);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `new-resource r0` as drbdsetup-84 sends it (docs/research/drbd84.md §3).
    #[test]
    fn new_resource_matches_drbdsetup_s_bytes() {
        let msg = DrbdMessage {
            cmd: 7,
            minor: NO_MINOR,
            flags: 0,
            tlas: vec![Tla {
                kind: 2,
                fields: vec![Field::str(2, "r0").mandatory()],
            }],
        };
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.emit(&mut buf);
        let mut expected = Vec::new();
        expected.extend_from_slice(&u32::MAX.to_ne_bytes());
        expected.extend_from_slice(&0u32.to_ne_bytes());
        expected.extend_from_slice(&12u16.to_ne_bytes());
        expected.extend_from_slice(&0x8002u16.to_ne_bytes());
        expected.extend_from_slice(&7u16.to_ne_bytes());
        expected.extend_from_slice(&0x4002u16.to_ne_bytes());
        expected.extend_from_slice(b"r0\0\0");
        assert_eq!(buf, expected);
        // And it parses back (the mandatory bit kept, the nested flag gone).
        let back = DrbdMessage::parse_with_param(&buf, GenlHeader { cmd: 7, version: 1 }).unwrap();
        assert_eq!(back, msg);
        assert_eq!(
            back.tla(2).unwrap().field(2).unwrap().as_str().unwrap(),
            "r0"
        );
    }

    #[test]
    fn only_drbd_8_4_s_family_is_taken() {
        assert!(check_family(Some(VERSION_84), Some(8)).is_ok());
        let nine = check_family(Some(VERSION_9), Some(8))
            .unwrap_err()
            .to_string();
        assert!(
            nine.contains("version 2") && nine.contains("DRBD 9"),
            "{nine}"
        );
        assert!(matches!(
            check_family(Some(1), Some(12)),
            Err(GenlError::HeaderSize(12))
        ));
        assert!(check_family(None, Some(8)).is_err());
    }

    #[test]
    fn fields_encode_in_host_order_and_pad() {
        let t = Tla {
            kind: 3,
            fields: vec![
                Field::str(1, "/dev/loop0"),
                Field::u32(3, (-3i32) as u32),
                Field::u64(4, 1 << 33).mandatory(),
                Field::u8(16, 1).mandatory(),
            ],
        };
        let msg = DrbdMessage {
            cmd: 12,
            minor: 10,
            flags: 0,
            tlas: vec![t],
        };
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.emit(&mut buf);
        // 8 header + 4 nest + (4+12) + (4+4) + (4+8) + (4+4)
        assert_eq!(buf.len(), 8 + 4 + 16 + 8 + 12 + 8);
        let back = DrbdMessage::parse_with_param(
            &buf,
            GenlHeader {
                cmd: 12,
                version: 1,
            },
        )
        .unwrap();
        let t = back.tla(3).unwrap();
        assert_eq!(t.field(1).unwrap().as_str().unwrap(), "/dev/loop0");
        assert_eq!(t.field(3).unwrap().as_u32().unwrap() as i32, -3);
        assert_eq!(t.field(4).unwrap().as_u64().unwrap(), 1 << 33);
        assert_eq!(t.field(16).unwrap().as_u8().unwrap(), 1);
        assert_eq!(back.minor, 10);
    }

    #[test]
    fn replies_without_the_nested_flag_and_with_pad_attributes_parse() {
        // CFG_REPLY built with nla_nest_start_noflag, an info_text with the
        // mandatory bit, and a type-0 pad before it.
        let mut buf = Vec::new();
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&165u32.to_ne_bytes());
        let text = b"Unclean\0";
        buf.extend_from_slice(&((4 + 4 + 4 + text.len()) as u16).to_ne_bytes());
        buf.extend_from_slice(&1u16.to_ne_bytes());
        buf.extend_from_slice(&4u16.to_ne_bytes());
        buf.extend_from_slice(&0u16.to_ne_bytes());
        buf.extend_from_slice(&((4 + text.len()) as u16).to_ne_bytes());
        buf.extend_from_slice(&0x4001u16.to_ne_bytes());
        buf.extend_from_slice(text);
        let m = DrbdMessage::parse_with_param(
            &buf,
            GenlHeader {
                cmd: 12,
                version: 1,
            },
        )
        .unwrap();
        assert_eq!(m.ret_code(), 165);
        let reply = m.tla(1).unwrap();
        assert_eq!(reply.fields.len(), 1);
        assert_eq!(reply.field(1).unwrap().as_str().unwrap(), "Unclean");
    }
}
