//! A DRBD 8.4 device's state word (`union drbd_dev_state`, the
//! `current_state` of status replies and the prev/new state of events),
//! with the names /proc/drbd and drbdsetup print (drbd_strings.c).
//!
//! Bits: role 0-1, peer role 2-3, connection 4-8, disk 9-12, peer disk
//! 13-16, suspended 17, sync-pause flags 18-20 (after dependency, peer,
//! user), suspended no-data 21, suspended fencing 22.

use serde::Serialize;

const ROLES: [&str; 3] = ["Unknown", "Primary", "Secondary"];
const CONNS: [&str; 24] = [
    "StandAlone",
    "Disconnecting",
    "Unconnected",
    "Timeout",
    "BrokenPipe",
    "NetworkFailure",
    "ProtocolError",
    "TearDown",
    "WFConnection",
    "WFReportParams",
    "Connected",
    "StartingSyncS",
    "StartingSyncT",
    "WFBitMapS",
    "WFBitMapT",
    "WFSyncUUID",
    "SyncSource",
    "SyncTarget",
    "VerifyS",
    "VerifyT",
    "PausedSyncS",
    "PausedSyncT",
    "Ahead",
    "Behind",
];
const DISKS: [&str; 9] = [
    "Diskless",
    "Attaching",
    "Failed",
    "Negotiating",
    "Inconsistent",
    "Outdated",
    "DUnknown",
    "Consistent",
    "UpToDate",
];

fn name(table: &[&'static str], i: u32) -> &'static str {
    table.get(i as usize).copied().unwrap_or("?")
}

/// The decoded state word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct State {
    /// This node's role: Primary, Secondary or Unknown.
    pub role: &'static str,
    /// The peer's role as this node knows it (Unknown while not connected).
    pub peer: &'static str,
    /// Connection state: StandAlone, WFConnection, Connected, SyncSource, ...
    pub connection: &'static str,
    /// This node's disk state: Diskless, Inconsistent, UpToDate, ...
    pub disk: &'static str,
    /// The peer's disk state (DUnknown while not connected).
    pub peer_disk: &'static str,
    /// I/O is suspended (`susp`).
    pub suspended: bool,
    /// Sync paused by a resync-after dependency (`aftr_isp`).
    pub pause_after: bool,
    /// Sync paused by the peer (`peer_isp`).
    pub pause_peer: bool,
    /// Sync paused by the user, `drbdadm pause-sync` (`user_isp`).
    pub pause_user: bool,
}

/// Connection state StandAlone, numbered as the kernel does (enum drbd_conns).
pub const C_STANDALONE: u32 = 0;
/// Connection state WFConnection: waiting for the peer to connect.
pub const C_WF_CONNECTION: u32 = 8;
/// Connection state Connected; states above it are resync or verify.
pub const C_CONNECTED: u32 = 10;
/// Disk state Diskless (enum drbd_disk_state).
pub const D_DISKLESS: u32 = 0;
/// Disk state Inconsistent: attached, data not known good (fresh metadata).
pub const D_INCONSISTENT: u32 = 4;
/// Disk state DUnknown: the peer's disk while not connected.
pub const D_UNKNOWN: u32 = 6;
/// Disk state Consistent: good data, not known to be the newest.
pub const D_CONSISTENT: u32 = 7;
/// Disk state UpToDate.
pub const D_UP_TO_DATE: u32 = 8;
/// Role Unknown: the peer's role while not connected.
pub const R_UNKNOWN: u32 = 0;
/// Role Primary (enum drbd_role).
pub const R_PRIMARY: u32 = 1;
/// Role Secondary.
pub const R_SECONDARY: u32 = 2;

impl State {
    /// Decodes a state word as status replies and events carry it.
    pub fn decode(word: u32) -> State {
        State {
            role: name(&ROLES, word & 0x3),
            peer: name(&ROLES, (word >> 2) & 0x3),
            connection: name(&CONNS, (word >> 4) & 0x1F),
            disk: name(&DISKS, (word >> 9) & 0xF),
            peer_disk: name(&DISKS, (word >> 13) & 0xF),
            suspended: word & (1 << 17) != 0,
            pause_after: word & (1 << 18) != 0,
            pause_peer: word & (1 << 19) != 0,
            pause_user: word & (1 << 20) != 0,
        }
    }

    /// The number of a connection-state name (for comparisons).
    pub fn connection_nr(&self) -> u32 {
        CONNS
            .iter()
            .position(|c| *c == self.connection)
            .unwrap_or(0) as u32
    }

    /// /proc/drbd's flag string (`r-----`: running or suspended, then the
    /// pause flags a p u, then "d" unused in 8.4 status, "s" for suspended
    /// by fencing is not in the device word; cairn prints what it has).
    pub fn io_flags(&self) -> String {
        format!(
            "{}{}{}{}",
            if self.suspended { 's' } else { 'r' },
            if self.pause_after { 'a' } else { '-' },
            if self.pause_peer { 'p' } else { '-' },
            if self.pause_user { 'u' } else { '-' },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_s_words_decode() {
        // A fresh minor: Secondary/Unknown, StandAlone, Diskless/DUnknown.
        let fresh = State::decode(0xC002);
        assert_eq!(
            (
                fresh.role,
                fresh.peer,
                fresh.connection,
                fresh.disk,
                fresh.peer_disk
            ),
            ("Secondary", "Unknown", "StandAlone", "Diskless", "DUnknown")
        );
        // The seed's r0: StandAlone Primary UpToDate/DUnknown.
        let r0 = State::decode(0xD001);
        assert_eq!(
            (r0.role, r0.connection, r0.disk, r0.peer_disk),
            ("Primary", "StandAlone", "UpToDate", "DUnknown")
        );
        // r0-U waiting for its peer: WFConnection.
        let u = State::decode(0xD001 | (C_WF_CONNECTION << 4));
        assert_eq!(u.connection, "WFConnection");
        assert_eq!(u.connection_nr(), C_WF_CONNECTION);
        assert_eq!(State::decode(0xD001 | (1 << 20)).io_flags(), "r--u");
    }
}
