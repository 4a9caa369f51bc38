//! What DRBD 8.4 answers: `enum drbd_ret_code` (ERR_*, 101 = no error) and
//! `enum drbd_state_rv` (SS_*, 1..4 = success), named and explained
//! (linux/drbd.h, drbd_strings.c; docs/research/drbd84.md §1.9).

/// `NO_ERROR`.
pub const NO_ERROR: i32 = 101;

/// Whether a reply's ret_code means success: NO_ERROR, or a state change
/// that succeeded or had nothing to do (SS_SUCCESS..SS_CW_NO_NEED).
pub fn is_success(code: i32) -> bool {
    code == NO_ERROR || (1..=4).contains(&code)
}

/// The name and meaning of a ret_code, with what to do where that helps.
pub fn describe(code: i32) -> (&'static str, &'static str) {
    match code {
        101 => ("NO_ERROR", "success"),
        102 => (
            "ERR_LOCAL_ADDR",
            "the local address (port) is already in use",
        ),
        103 => ("ERR_PEER_ADDR", "the peer address (port) is already in use"),
        104 => (
            "ERR_OPEN_DISK",
            "cannot open the backing device (missing, or held exclusively by something else: \
             mounted, a PV of an active VG, another DRBD)",
        ),
        105 => ("ERR_OPEN_MD_DISK", "cannot open the metadata device"),
        107 => (
            "ERR_DISK_NOT_BDEV",
            "the backing device is not a block device",
        ),
        108 => (
            "ERR_MD_NOT_BDEV",
            "the metadata device is not a block device",
        ),
        111 => ("ERR_DISK_TOO_SMALL", "the backing device is too small"),
        112 => ("ERR_MD_DISK_TOO_SMALL", "the metadata device is too small"),
        114 => (
            "ERR_BDCLAIM_DISK",
            "the backing device is in use by something else (mounted, an LVM PV, another DRBD)",
        ),
        115 => (
            "ERR_BDCLAIM_MD_DISK",
            "the metadata device is in use by something else",
        ),
        116 => ("ERR_MD_IDX_INVALID", "invalid metadata index"),
        118 => ("ERR_IO_MD_DISK", "I/O error reading the metadata"),
        119 => (
            "ERR_MD_INVALID",
            "no valid metadata signature on the device: create it (cairn drbd create-md)",
        ),
        120 => (
            "ERR_AUTH_ALG",
            "the authentication algorithm is not available",
        ),
        121 => (
            "ERR_AUTH_ALG_ND",
            "the authentication algorithm is not a digest",
        ),
        122 => ("ERR_NOMEM", "the kernel is out of memory"),
        123 => (
            "ERR_DISCARD_IMPOSSIBLE",
            "discard-my-data is not possible now",
        ),
        124 => (
            "ERR_DISK_CONFIGURED",
            "the device has a disk attached already: detach it first",
        ),
        125 => (
            "ERR_NET_CONFIGURED",
            "the resource has a network configuration: disconnect it first",
        ),
        126 => (
            "ERR_MANDATORY_TAG",
            "a required attribute is missing or unknown to the kernel",
        ),
        127 => ("ERR_MINOR_INVALID", "no such minor (device) is configured"),
        129 => ("ERR_INTR", "interrupted while waiting for the state change"),
        130 => ("ERR_RESIZE_RESYNC", "cannot resize while a resync runs"),
        131 => ("ERR_NO_PRIMARY", "a resize needs one node Primary"),
        132 => (
            "ERR_RESYNC_AFTER",
            "the resync-after minor is not configured",
        ),
        133 => ("ERR_RESYNC_AFTER_CYCLE", "resync-after would make a cycle"),
        134 => ("ERR_PAUSE_IS_SET", "the sync is paused already"),
        135 => ("ERR_PAUSE_IS_CLEAR", "the sync is not paused"),
        137 => ("ERR_PACKET_NR", "unknown packet number"),
        138 => ("ERR_NO_DISK", "the device has no disk attached"),
        139 => ("ERR_NOT_PROTO_C", "this needs protocol C"),
        140 => ("ERR_NOMEM_BITMAP", "out of memory for the bitmap"),
        141 => (
            "ERR_INTEGRITY_ALG",
            "the integrity algorithm is not available",
        ),
        142 => (
            "ERR_INTEGRITY_ALG_ND",
            "the integrity algorithm is not a digest",
        ),
        143 => ("ERR_CPU_MASK_PARSE", "invalid cpu mask"),
        144 => ("ERR_CSUMS_ALG", "the csums algorithm is not available"),
        145 => ("ERR_CSUMS_ALG_ND", "the csums algorithm is not a digest"),
        146 => ("ERR_VERIFY_ALG", "the verify algorithm is not available"),
        147 => ("ERR_VERIFY_ALG_ND", "the verify algorithm is not a digest"),
        148 => (
            "ERR_CSUMS_RESYNC_RUNNING",
            "cannot change csums-alg during a resync",
        ),
        149 => (
            "ERR_VERIFY_RUNNING",
            "cannot change verify-alg during a verify",
        ),
        150 => ("ERR_DATA_NOT_CURRENT", "the local data is not current"),
        151 => ("ERR_CONNECTED", "the device is connected"),
        152 => ("ERR_PERM", "permission denied (CAP_SYS_ADMIN needed)"),
        153 => ("ERR_NEED_APV_93", "the peer is too old for this"),
        154 => (
            "ERR_STONITH_AND_PROT_A",
            "fencing resource-and-stonith needs protocol B or C",
        ),
        155 => (
            "ERR_CONG_NOT_PROTO_A",
            "on-congestion policies need protocol A",
        ),
        156 => (
            "ERR_PIC_AFTER_DEP",
            "sync-pause flag already set by a resync-after dependency",
        ),
        157 => (
            "ERR_PIC_PEER_DEP",
            "sync-pause flag already set by the peer",
        ),
        158 => ("ERR_RES_NOT_KNOWN", "unknown resource"),
        159 => (
            "ERR_RES_IN_USE",
            "the resource still has minors: delete them first",
        ),
        160 => (
            "ERR_MINOR_CONFIGURED",
            "the minor is still configured (attached or Primary): detach and demote it first",
        ),
        161 => (
            "ERR_MINOR_OR_VOLUME_EXISTS",
            "the minor or volume exists already",
        ),
        162 => ("ERR_INVALID_REQUEST", "invalid request"),
        163 => ("ERR_NEED_APV_100", "the peer is too old for this"),
        164 => ("ERR_NEED_ALLOW_TWO_PRI", "this needs allow-two-primaries"),
        165 => (
            "ERR_MD_UNCLEAN",
            "unclean metadata: the activity log must be applied before attaching (cairn drbd \
             up does it; by hand: drbdadm apply-al)",
        ),
        166 => (
            "ERR_MD_LAYOUT_CONNECTED",
            "cannot change the metadata layout while connected",
        ),
        167 => (
            "ERR_MD_LAYOUT_TOO_BIG",
            "the new activity-log layout is too big",
        ),
        168 => (
            "ERR_MD_LAYOUT_TOO_SMALL",
            "the new activity-log layout is too small",
        ),
        169 => (
            "ERR_MD_LAYOUT_NO_FIT",
            "the new activity-log layout does not fit",
        ),
        170 => (
            "ERR_IMPLICIT_SHRINK",
            "the backing device shrank: DRBD will not shrink implicitly (give the size \
             explicitly)",
        ),
        4 => ("SS_CW_NO_NEED", "nothing to change"),
        3 => ("SS_CW_SUCCESS", "success"),
        2 => ("SS_NOTHING_TO_DO", "nothing to do"),
        1 => ("SS_SUCCESS", "success"),
        0 => (
            "SS_UNKNOWN_ERROR",
            "state change failed for an unknown reason",
        ),
        -1 => (
            "SS_TWO_PRIMARIES",
            "multiple primaries are not allowed by the configuration",
        ),
        -2 => (
            "SS_NO_UP_TO_DATE_DISK",
            "needs access to UpToDate data (a fresh device becomes Primary only with --force)",
        ),
        -4 => (
            "SS_NO_LOCAL_DISK",
            "cannot detach or do this without a local disk",
        ),
        -5 => ("SS_NO_REMOTE_DISK", "the peer has no disk"),
        -6 => (
            "SS_CONNECTED_OUTDATES",
            "refusing to be Outdated while connected",
        ),
        -7 => (
            "SS_PRIMARY_NOP",
            "refusing to be Primary while the peer is not outdated",
        ),
        -8 => ("SS_RESYNC_RUNNING", "a resync is running"),
        -9 => ("SS_ALREADY_STANDALONE", "already StandAlone"),
        -10 => (
            "SS_CW_FAILED_BY_PEER",
            "the state change was refused by the peer",
        ),
        -11 => (
            "SS_IS_DISKLESS",
            "the device is diskless: the action needs a local disk",
        ),
        -12 => (
            "SS_DEVICE_IN_USE",
            "the device is held open (mounted, an LVM PV in use, a stacked DRBD on it)",
        ),
        -13 => ("SS_NO_NET_CONFIG", "no network configuration"),
        -14 => ("SS_NO_VERIFY_ALG", "no verify algorithm configured"),
        -15 => ("SS_NEED_CONNECTION", "this needs a connection"),
        -16 => (
            "SS_LOWER_THAN_OUTDATED",
            "the disk state is lower than Outdated",
        ),
        -17 => ("SS_NOT_SUPPORTED", "not supported by the peer"),
        -18 => ("SS_IN_TRANSIENT_STATE", "in a transient state: retry"),
        -19 => (
            "SS_CONCURRENT_ST_CHG",
            "another state change is in progress: retry",
        ),
        -20 => ("SS_O_VOL_PEER_PRI", "another volume's peer is Primary"),
        -21 => ("SS_OUTDATE_WO_CONN", "cannot outdate without a connection"),
        _ => ("UNKNOWN", "an answer this version of cairn does not know"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_is_no_error_or_a_state_change_that_worked() {
        for ok in [101, 1, 2, 3, 4] {
            assert!(is_success(ok), "{ok}");
        }
        for bad in [0, -2, -12, 165, 119, 158] {
            assert!(!is_success(bad), "{bad}");
        }
        assert_eq!(describe(165).0, "ERR_MD_UNCLEAN");
        assert!(describe(-2).1.contains("--force"));
        assert_eq!(describe(999).0, "UNKNOWN");
    }
}
