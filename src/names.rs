//! The rules a name obeys before cairn makes a path, a device name or a
//! line of a config file from it: VG and LV names (lvm2's own rules, for
//! names given by a user and names read from a disk's metadata alike),
//! DRBD resource and host names, and paths written into resource files.
//!
//! A VG name becomes /etc/lvm/backup/VG, /run/lock/lvm/V_VG and /dev/VG; a
//! resource name /etc/drbd.d/NAME.res; a host, a disk or an address a line
//! of that file. Each rule keeps out what could make such a path leave its
//! directory (`/`, `..`) or such a line say something else (newlines,
//! quotes, `;`, braces), and what a tool would read as an option (a
//! leading `-`). Each returns why a name is refused, for the caller's
//! error (which says where the name came from).

/// lvm2's limit on VG and LV names (NAME_LEN less the terminating NUL).
pub const LVM_NAME_MAX: usize = 127;

/// The longest host name (HOST_NAME_MAX, as uname's nodename).
pub const HOST_NAME_MAX: usize = 64;

/// lvm2's `validate_name`, for VG and LV names wherever they come from:
/// not empty, at most 127 characters of `[a-zA-Z0-9+_.-]`, not starting
/// with `-`, not `.` or `..`.
pub fn lvm(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > LVM_NAME_MAX {
        return Err("it is longer than 127 characters");
    }
    if name == "." || name == ".." {
        return Err("it is . or ..");
    }
    if name.starts_with('-') {
        return Err("it starts with '-'");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+_.-".contains(&b))
    {
        return Err("only letters, digits and + _ . - are allowed");
    }
    Ok(())
}

/// Suffixes lvm2 gives its hidden sub-LVs (cache and thin pool data and
/// metadata, mirror and raid images, ...), which a new LV's name may not
/// contain.
const RESERVED_LV_PARTS: [&str; 17] = [
    "_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_wcorig", "_mimage", "_mlog", "_rimage",
    "_rmeta", "_tdata", "_tmeta", "_vdata", "_imeta", "_iorig", "_pmspare", "_vorigin",
];

/// lvm2's `apply_lvname_restrictions`, for the name of an LV a user
/// creates (on top of [`lvm`]): lvm2 keeps names starting "pvmove" or
/// "snapshot" and names including its sub-LV suffixes for its own LVs.
/// Names read from disk are not held to this: lvm2 writes such LVs itself.
pub fn lvm_new_lv(name: &str) -> Result<(), String> {
    lvm(name).map_err(str::to_owned)?;
    for prefix in ["pvmove", "snapshot"] {
        if name.starts_with(prefix) {
            return Err(format!("names starting \"{prefix}\" are reserved by lvm2"));
        }
    }
    if let Some(part) = RESERVED_LV_PARTS.iter().find(|r| name.contains(*r)) {
        return Err(format!("names including \"{part}\" are reserved by lvm2"));
    }
    Ok(())
}

/// A DRBD resource name: it becomes `<drbd.d>/NAME.res`, a word of that
/// file and the kernel's resource name. The characters lvm2 allows, not
/// starting with `-` or `.`, at most 127 of them.
pub fn drbd_resource(name: &str) -> Result<(), &'static str> {
    lvm(name)?;
    if name.starts_with('.') {
        return Err("it starts with '.'");
    }
    Ok(())
}

/// A host name in a DRBD resource file's `on HOST` section (drbd-utils
/// compares it with uname's nodename): letters, digits, `-`, `_` and `.`,
/// starting with a letter or digit, at most 64 characters.
pub fn host(name: &str) -> Result<(), &'static str> {
    let Some(first) = name.chars().next() else {
        return Err("it is empty");
    };
    if name.len() > HOST_NAME_MAX {
        return Err("it is longer than 64 characters");
    }
    if !first.is_ascii_alphanumeric() {
        return Err("it does not start with a letter or digit");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err("only letters, digits and - _ . are allowed");
    }
    Ok(())
}

/// A path cairn writes into a config file or makes files under: absolute,
/// without `.` or `..` components, and without white space, control
/// characters, quotes or any of `; { } # \` (which would end the word or
/// the line in a resource file).
pub fn config_path(path: &str) -> Result<(), &'static str> {
    if !path.starts_with('/') {
        return Err("it is not an absolute path");
    }
    if let Some(c) = path
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "\"'`;{}#\\".contains(*c))
    {
        return Err(match c {
            c if c.is_whitespace() || c.is_control() => {
                "it holds white space or a control character"
            }
            _ => "it holds one of \" ' ` ; { } # \\",
        });
    }
    if path.split('/').any(|part| part == "." || part == "..") {
        return Err("it has a . or .. component");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lvm_names_follow_lvm2s_validate_name() {
        for ok in [
            "vg0",
            "DRBDVG2",
            "my-container",
            "a+b_c.d",
            "x.",
            "_x",
            "+x",
            "a--b",
        ] {
            assert_eq!(lvm(ok), Ok(()), "{ok:?}");
        }
        assert_eq!(lvm(&"v".repeat(127)), Ok(()));
        for (bad, why) in [
            ("", "empty"),
            (".", ". or .."),
            ("..", ". or .."),
            ("-vg", "starts with '-'"),
            ("../x", "only letters"),
            ("a/b", "only letters"),
            ("a b", "only letters"),
            ("a\nb", "only letters"),
            ("a\0b", "only letters"),
            ("a\"b", "only letters"),
            ("é", "only letters"),
        ] {
            let e = lvm(bad).expect_err(bad);
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        assert!(lvm(&"v".repeat(128)).unwrap_err().contains("127"));
    }

    #[test]
    fn new_lv_names_follow_lvm2s_restrictions() {
        for ok in ["lv", "pool", "data_tdat", "my_snap", "xsnapshot", "pvmov"] {
            assert_eq!(lvm_new_lv(ok), Ok(()), "{ok:?}");
        }
        for (bad, why) in [
            ("snapshot0", "starting \"snapshot\""),
            ("pvmove0", "starting \"pvmove\""),
            ("pool_tdata", "\"_tdata\""),
            ("x_tmeta", "\"_tmeta\""),
            ("c_cpool", "\"_cpool\""),
            ("lvol0_pmspare", "\"_pmspare\""),
            ("x_vorigin", "\"_vorigin\""),
            ("a_rimage_0", "\"_rimage\""),
            ("-x", "starts with '-'"),
            ("..", ". or .."),
        ] {
            let e = lvm_new_lv(bad).expect_err(bad);
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        // A name read from disk may carry them: lvm2 names its sub-LVs so.
        assert_eq!(lvm("pool_tdata"), Ok(()));
        assert_eq!(lvm("snapshot0"), Ok(()));
    }

    #[test]
    fn drbd_resource_names() {
        for ok in ["r0", "r0-U", "data_1", "a+b", "x.y"] {
            assert_eq!(drbd_resource(ok), Ok(()), "{ok:?}");
        }
        for bad in [
            "", ".", "..", ".hidden", "-r", "r/0", "../r", "r 0", "r\n0", "r;", "r{",
        ] {
            assert!(drbd_resource(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn host_names() {
        for ok in [
            "cairn-a",
            "node1.example.com",
            "a",
            "web_01",
            &"h".repeat(64),
        ] {
            assert_eq!(host(ok), Ok(()), "{ok:?}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("-a", "start with a letter"),
            (".a", "start with a letter"),
            ("a b", "only letters"),
            ("a\n}", "only letters"),
            ("a;", "only letters"),
            ("a\"", "only letters"),
            ("a/b", "only letters"),
            ("a{", "only letters"),
        ] {
            let e = host(bad).expect_err(bad);
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        assert!(host(&"h".repeat(65)).unwrap_err().contains("64"));
    }

    #[test]
    fn config_paths() {
        for ok in [
            "/dev/md0",
            "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4-part1",
            "/dev/disk/by-path/pci-0000:00:1f.2-ata-1",
            "/dev/VG1/cachedlv",
            "/var/lib/lxc",
            "/etc/drbd.d",
            "/dev/..x",
        ] {
            assert_eq!(config_path(ok), Ok(()), "{ok:?}");
        }
        for (bad, why) in [
            ("dev/md0", "absolute"),
            ("", "absolute"),
            ("/dev/../etc/shadow", ". or .."),
            ("/dev/./md0", ". or .."),
            ("/dev/..", ". or .."),
            ("/dev/md0 ", "white space"),
            ("/dev/md0\n};", "white space"),
            ("/dev/md0\0", "control"),
            ("/dev/md0;", "one of"),
            ("/dev/\"x", "one of"),
            ("/dev/x}", "one of"),
            ("/dev/x#", "one of"),
        ] {
            let e = config_path(bad).expect_err(bad);
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }
}
