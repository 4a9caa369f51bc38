//! The stack file on the host: both examples, every default, and each
//! refusal with its line and what it says.

use super::*;

const SEED: &str = include_str!("../../../examples/seed.toml");
const LAB: &str = include_str!("../../../examples/lab.toml");

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Parses `text`; a leading newline is dropped, so line 1 is the line
/// after the opening quote.
fn parse_text(text: &str) -> Result<Stack, FileError> {
    let text = text.strip_prefix('\n').unwrap_or(text);
    parse(Path::new("t.toml"), text)
}

fn ok(text: &str) -> Stack {
    parse_text(text).unwrap_or_else(|e| panic!("refused: {e}"))
}

/// Asserts that `text` is refused at `line` with a message containing `part`.
#[track_caller]
fn refused(text: &str, line: usize, part: &str) -> FileError {
    let e = match parse_text(text) {
        Ok(_) => panic!("accepted, expected line {line}: {part}"),
        Err(e) => e,
    };
    assert_eq!(e.line, line, "wrong line for: {e}");
    assert!(e.message.contains(part), "{part:?} not in: {e}");
    assert!(
        e.to_string().starts_with(&format!("t.toml:{line}: ")),
        "Display is not FILE:LINE: message: {e}"
    );
    e
}

fn order(stack: &Stack) -> Vec<String> {
    stack.order.iter().map(|n| stack.node_name(*n)).collect()
}

fn lv<'s>(stack: &'s Stack, vg: &str, name: &str) -> &'s Lv {
    let vg = stack.vg(vg).expect("VG");
    vg.lvs.iter().find(|l| l.name == name).expect("LV")
}

// ---------------------------------------------------------------------------
// The examples.

#[test]
fn the_seed_parses_and_resolves_as_the_seed_stack() {
    let s = parse(Path::new("examples/seed.toml"), SEED).unwrap();
    assert_eq!(s.host, "livenode5");
    assert_eq!(s.path, PathBuf::from("examples/seed.toml"));
    assert_eq!(s.lxc_path, PathBuf::from("/var/lib/lxc"));
    assert_eq!(s.drbd_config_dir, PathBuf::from("/etc/drbd.d"));
    assert_eq!(
        order(&s),
        [
            "VG VG1",
            "VG DRBDVG",
            "DRBD resource r0",
            "DRBD resource r0-U",
            "VG DRBDVG2"
        ]
    );

    // VG1 on the two RAIDs, from outside the file.
    let vg1 = s.vg("VG1").unwrap();
    let pvs: Vec<_> = vg1
        .pvs
        .iter()
        .map(|p| (p.path.clone(), p.provider.clone()))
        .collect();
    assert_eq!(
        pvs,
        [
            (PathBuf::from("/dev/md0"), Provider::External),
            (PathBuf::from("/dev/md1"), Provider::External)
        ]
    );
    assert_eq!(vg1.extent_size, 4 * MIB);
    let cachedlv = lv(&s, "VG1", "cachedlv");
    assert_eq!(cachedlv.size, SizeSpec::Bytes(10 * GIB));
    assert_eq!(cachedlv.pvs, [PathBuf::from("/dev/md0")]);
    let cache = cachedlv.cache.as_ref().expect("cachedlv is cached");
    assert_eq!(cache.pool, "cachedata");
    assert_eq!(cache.size, 4 * GIB);
    assert_eq!(cache.metadata, Some(100 * MIB));
    assert_eq!(cache.chunk, None);
    assert_eq!(cache.mode, "writethrough");
    assert_eq!(cache.policy, "smq");
    assert_eq!(cache.pvs, [PathBuf::from("/dev/md1")]);

    // DRBDVG on the cached LV.
    let drbdvg = s.vg("DRBDVG").unwrap();
    assert_eq!(drbdvg.pvs.len(), 1);
    assert_eq!(drbdvg.pvs[0].path, PathBuf::from("/dev/VG1/cachedlv"));
    assert_eq!(
        drbdvg.pvs[0].provider,
        Provider::Lv {
            vg: "VG1".into(),
            lv: "cachedlv".into()
        }
    );
    assert_eq!(
        lv(&s, "DRBDVG", "DRBDLV1").size,
        SizeSpec::PercentFree(100.0)
    );
    assert_eq!(lv(&s, "DRBDVG", "DRBDLV1").size.to_string(), "100%FREE");

    // r0 on DRBDLV1, named by its /dev/mapper path.
    let r0 = s.drbd("r0").unwrap();
    assert_eq!(r0.minor, 0);
    assert_eq!(r0.device(), PathBuf::from("/dev/drbd0"));
    assert_eq!(r0.disk.path, PathBuf::from("/dev/mapper/DRBDVG-DRBDLV1"));
    assert_eq!(
        r0.disk.provider,
        Provider::Lv {
            vg: "DRBDVG".into(),
            lv: "DRBDLV1".into()
        }
    );
    assert_eq!(r0.protocol, 'C');
    assert_eq!(r0.address, "127.0.0.1:7789".parse().unwrap());
    assert_eq!(r0.stacked_on, None);
    assert_eq!(r0.peer, None);

    // r0-U stacked on r0: its disk is r0's device.
    let u = s.drbd("r0-U").unwrap();
    assert_eq!(u.minor, 10);
    assert_eq!(u.stacked_on.as_deref(), Some("r0"));
    assert_eq!(u.disk.path, PathBuf::from("/dev/drbd0"));
    assert_eq!(u.disk.provider, Provider::Drbd("r0".into()));
    assert_eq!(u.protocol, 'A');
    assert_eq!(u.address, "127.0.0.1:7791".parse().unwrap());
    assert_eq!(
        u.peer,
        Some(Peer {
            host: "bullshit".into(),
            address: "127.0.0.1:7794".parse().unwrap(),
            minor: 10,
            disk: "/dev/bulldisk".into(),
        })
    );

    // DRBDVG2 on r0-U, with the thin pool.
    let vg2 = s.vg("DRBDVG2").unwrap();
    assert_eq!(vg2.pvs[0].path, PathBuf::from("/dev/drbd10"));
    assert_eq!(vg2.pvs[0].provider, Provider::Drbd("r0-U".into()));
    assert_eq!(vg2.thinpools.len(), 1);
    let pool = &vg2.thinpools[0];
    assert_eq!(pool.name, "VPSthinpool");
    assert_eq!(pool.size, SizeSpec::Bytes(128 * MIB));
    assert_eq!(pool.metadata, Some(16 * MIB));
    assert_eq!(pool.chunk, Some(64 << 10));
    assert_eq!(
        pool.autoextend,
        Some(AutoExtend {
            threshold: 50,
            percent: 10
        })
    );
    assert_eq!(
        s.default_pool(),
        Some(("DRBDVG2".into(), "VPSthinpool".into()))
    );

    assert_eq!(s.containers.len(), 1);
    let c = &s.containers[0];
    assert_eq!(c.name, "my-container");
    assert_eq!(c.size, 500 * MIB);
    assert_eq!((c.vg.as_str(), c.pool.as_str()), ("DRBDVG2", "VPSthinpool"));
    assert!(c.autostart);
    assert_eq!(c.rootfs, Rootfs::Busybox);

    // Lines point into the file.
    let lines: Vec<&str> = SEED.lines().collect();
    assert_eq!(lines[vg1.line - 1], "[[vg]]");
    assert!(lines[cache.line - 1].starts_with("cache = {"));
    assert!(lines[vg2.pvs[0].line - 1].contains("/dev/drbd10"));
}

#[test]
fn the_lab_file_is_the_seed_scaled_down() {
    let s = parse(Path::new("examples/lab.toml"), LAB).unwrap();
    let seed = parse(Path::new("examples/seed.toml"), SEED).unwrap();
    assert_eq!(order(&s), order(&seed));
    let cachedlv = lv(&s, "VG1", "cachedlv");
    assert_eq!(cachedlv.size, SizeSpec::Bytes(2 * GIB));
    let cache = cachedlv.cache.as_ref().unwrap();
    assert_eq!((cache.size, cache.metadata), (400 * MIB, Some(8 * MIB)));
    assert_eq!(
        s.vg("DRBDVG2").unwrap().thinpools[0].size,
        SizeSpec::Bytes(GIB)
    );
    assert_eq!(
        s.drbd("r0-U")
            .unwrap()
            .peer
            .as_ref()
            .map(|p| p.host.as_str()),
        Some("offsite")
    );
    assert_eq!(
        s.drbd("r0-U").unwrap().disk.provider,
        Provider::Drbd("r0".into())
    );
    // No rootfs: busybox.
    assert_eq!(s.containers[0].rootfs, Rootfs::Busybox);
    assert!(s.containers[0].autostart);
    // No [host] name: this machine's.
    let uname = nix::sys::utsname::uname().unwrap();
    assert_eq!(s.host, uname.nodename().to_string_lossy());
}

// ---------------------------------------------------------------------------
// Defaults and units.

#[test]
fn bare_numbers_are_mib_and_chunks_kib_and_defaults_apply() {
    let s = ok(r#"
[host]
name = "n"
lxc_path = "/srv/lxc"
drbd_config_dir = "/etc/cairn/drbd"

[[vg]]
name = "V"
pvs = ["/dev/sdb"]
extent_size = "1M"

[[vg.lv]]
name = "l"
size = "100"
cache = { size = "8", chunk = "64" }

[[vg.thinpool]]
name = "p"
size = "50%FREE"
chunk = "128"

[[drbd]]
name = "d"
minor = 3
disk = "/dev/sdc"
address = "10.0.0.1:7789"
peer = { host = "other", address = "10.0.0.2:7789" }

[[container]]
name = "c1"
size = "1G"
rootfs = "/srv/rootfs.tar.xz"
"#);
    assert_eq!(s.lxc_path, PathBuf::from("/srv/lxc"));
    assert_eq!(s.drbd_config_dir, PathBuf::from("/etc/cairn/drbd"));
    let vg = s.vg("V").unwrap();
    assert_eq!(vg.extent_size, MIB);
    let l = &vg.lvs[0];
    assert_eq!(l.size, SizeSpec::Bytes(100 * MIB));
    let c = l.cache.as_ref().unwrap();
    assert_eq!(c.pool, "l_cachepool");
    assert_eq!(c.size, 8 * MIB);
    assert_eq!(c.chunk, Some(64 << 10));
    assert_eq!(
        (c.mode.as_str(), c.policy.as_str()),
        ("writethrough", "smq")
    );
    let p = &vg.thinpools[0];
    assert_eq!(p.size, SizeSpec::PercentFree(50.0));
    assert_eq!(p.chunk, Some(128 << 10));
    assert_eq!(p.autoextend, None);
    let d = s.drbd("d").unwrap();
    assert_eq!(d.protocol, 'C');
    assert_eq!(d.disk.provider, Provider::External);
    let peer = d.peer.as_ref().unwrap();
    assert_eq!((peer.minor, peer.disk.as_str()), (3, "/dev/null"));
    // The only pool is the default; autostart is off unless asked.
    let ct = &s.containers[0];
    assert_eq!((ct.vg.as_str(), ct.pool.as_str()), ("V", "p"));
    assert!(!ct.autostart);
    assert_eq!(ct.rootfs, Rootfs::Tarball("/srv/rootfs.tar.xz".into()));
    // Independent nodes keep the file's order.
    assert_eq!(order(&s), ["VG V", "DRBD resource d"]);
}

#[test]
fn an_empty_file_is_an_empty_stack() {
    let s = ok("");
    assert!(s.vgs.is_empty() && s.drbd.is_empty() && s.containers.is_empty());
    assert_eq!(s.default_pool(), None);
}

#[test]
fn a_layer_defined_after_its_user_still_comes_first() {
    let s = ok(r#"
[[vg]]
name = "TOP"
pvs = ["/dev/BOTTOM/l"]

[[vg]]
name = "BOTTOM"
pvs = ["/dev/sdb"]

[[vg.lv]]
name = "l"
size = "1G"
"#);
    assert_eq!(order(&s), ["VG BOTTOM", "VG TOP"]);
}

// ---------------------------------------------------------------------------
// Syntax: unknown keys and wrong types.

#[test]
fn an_unknown_top_level_key_is_refused_at_its_line() {
    refused(
        r#"
[host]
name = "n"

colour = "blue"
"#,
        4,
        "unknown field `colour`",
    );
}

#[test]
fn an_unknown_key_in_an_lv_is_refused_at_its_line() {
    let e = refused(
        r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]

[[vg.lv]]
name = "l"
sise = "1G"
"#,
        7,
        "unknown field `sise`",
    );
    // serde says what was expected.
    assert!(e.message.contains("size"), "{e}");
}

#[test]
fn an_unknown_key_in_an_inline_cache_is_refused_at_its_line() {
    refused(
        r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb", "/dev/sdc"]

[[vg.lv]]
name = "l"
size = "1G"
cache = { size = "100M", cachemode = "writeback" }
"#,
        8,
        "unknown field `cachemode`",
    );
}

#[test]
fn a_number_where_a_size_string_is_wanted_is_refused() {
    refused(
        r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]

[[vg.lv]]
name = "l"
size = 5
"#,
        7,
        "invalid type: integer `5`, expected a string",
    );
}

#[test]
fn a_string_minor_is_refused() {
    refused(
        r#"
[[drbd]]
name = "r0"
minor = "0"
disk = "/dev/sdb"
address = "127.0.0.1:7789"
"#,
        3,
        "invalid type: string \"0\", expected i64",
    );
}

#[test]
fn a_missing_required_key_is_refused() {
    refused(
        r#"
[[vg]]
name = "V"
"#,
        1,
        "missing field `pvs`",
    );
}

// ---------------------------------------------------------------------------
// Sizes and chunks.

#[test]
fn a_bad_size_string_is_refused() {
    refused(
        r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]

[[vg.lv]]
name = "l"
size = "10 gigs"
"#,
        7,
        "size: invalid size \"10 gigs\": unknown unit",
    );
    refused(
        r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]

[[vg.lv]]
name = "l"
size = "0"
"#,
        7,
        "size must be more than 0",
    );
}

#[test]
fn a_share_of_free_space_is_refused_where_a_size_is_wanted() {
    refused(
        r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb", "/dev/sdc"]

[[vg.lv]]
name = "l"
size = "1G"
cache = { size = "100%FREE", pvs = ["/dev/sdc"] }
"#,
        8,
        "cache size must be a size (such as 16M), not a share of free space",
    );
    refused(
        r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]

[[vg.thinpool]]
name = "p"
size = "1G"
metadata = "10%FREE"
"#,
        8,
        "metadata must be a size",
    );
    refused(
        r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]

[[vg.thinpool]]
name = "p"
size = "1G"

[[container]]
name = "c"
size = "50%FREE"
"#,
        11,
        "size must be a size",
    );
}

#[test]
fn a_chunk_that_is_not_a_multiple_of_32k_is_refused() {
    refused(
        r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]

[[vg.thinpool]]
name = "p"
size = "1G"
chunk = "48K"
"#,
        8,
        "chunk must be a multiple of 32K",
    );
    refused(
        r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]

[[vg.lv]]
name = "l"
size = "1G"
cache = { size = "100M", chunk = "16" }
"#,
        8,
        "chunk must be a multiple of 32K",
    );
}

#[test]
fn an_extent_size_must_be_a_power_of_two() {
    refused(
        r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]
extent_size = "3M"
"#,
        4,
        "extent_size must be a power of two",
    );
}

// ---------------------------------------------------------------------------
// Names.

#[test]
fn a_vg_defined_twice_is_refused_at_the_second() {
    refused(
        r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]

[[vg]]
name = "V"
pvs = ["/dev/sdc"]
"#,
        6,
        "VG \"V\" is defined twice (first at line 2)",
    );
}

#[test]
fn an_lv_name_used_twice_in_a_vg_is_refused() {
    refused(
        r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]

[[vg.lv]]
name = "l"
size = "1G"

[[vg.thinpool]]
name = "l"
size = "1G"
"#,
        10,
        "LV of VG V \"l\" is defined twice (first at line 6)",
    );
}

#[test]
fn a_cache_pool_named_as_another_lv_is_refused() {
    refused(
        r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]

[[vg.lv]]
name = "data"
size = "1G"

[[vg.lv]]
name = "l"
size = "1G"
cache = { pool = "data", size = "100M" }
"#,
        12,
        "\"data\" is defined twice (first at line 6)",
    );
}

#[test]
fn a_container_named_as_a_cache_pool_is_refused() {
    refused(
        r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]
[[vg.lv]]
name = "l"
size = "1G"
cache = { pool = "c", size = "100M" }
[[vg.thinpool]]
name = "p"
size = "1G"

[[container]]
name = "c"
size = "1G"
"#,
        13,
        "container \"c\": VG V has an LV of that name",
    );
}

#[test]
fn the_same_lv_name_in_two_vgs_is_fine() {
    ok(r#"
[[vg]]
name = "A"
pvs = ["/dev/sdb"]
[[vg.lv]]
name = "l"
size = "1G"

[[vg]]
name = "B"
pvs = ["/dev/sdc"]
[[vg.lv]]
name = "l"
size = "1G"
"#);
}

#[test]
fn a_container_defined_twice_is_refused() {
    refused(
        r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]
[[vg.thinpool]]
name = "p"
size = "1G"

[[container]]
name = "c"
size = "100M"

[[container]]
name = "c"
size = "200M"
"#,
        13,
        "container \"c\" is defined twice (first at line 9)",
    );
}

#[test]
fn a_drbd_resource_defined_twice_is_refused() {
    refused(
        r#"
[[drbd]]
name = "r0"
minor = 0
disk = "/dev/sdb"
address = "127.0.0.1:7789"

[[drbd]]
name = "r0"
minor = 1
disk = "/dev/sdc"
address = "127.0.0.1:7790"
"#,
        8,
        "DRBD resource \"r0\" is defined twice (first at line 2)",
    );
}

#[test]
fn a_minor_used_twice_is_refused() {
    refused(
        r#"
[[drbd]]
name = "r0"
minor = 0
disk = "/dev/sdb"
address = "127.0.0.1:7789"

[[drbd]]
name = "r1"
minor = 0
disk = "/dev/sdc"
address = "127.0.0.1:7790"
"#,
        7,
        "minor 0 is used by r0 and r1",
    );
}

#[test]
fn bad_container_names_are_refused() {
    let pool = r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]
[[vg.thinpool]]
name = "p"
size = "1G"

[[container]]
"#;
    refused(
        &format!("{pool}name = \"a/b\"\nsize = \"1G\"\n"),
        9,
        "invalid container name \"a/b\": it has a character outside",
    );
    refused(
        &format!("{pool}name = \"-x\"\nsize = \"1G\"\n"),
        9,
        "invalid container name \"-x\": it does not start with a letter or digit",
    );
    // A valid LXC name that lvm2 keeps for itself.
    refused(
        &format!("{pool}name = \"x_tmeta\"\nsize = \"1G\"\n"),
        9,
        "cannot name its thin volume",
    );
    // The name of an LV of the pool's VG.
    refused(
        &format!("{pool}name = \"p\"\nsize = \"1G\"\n"),
        9,
        "VG V has an LV of that name",
    );
}

#[test]
fn bad_vg_lv_and_drbd_names_are_refused() {
    refused(
        r#"
[[vg]]
name = "V G"
pvs = ["/dev/sdb"]
"#,
        2,
        "VG name \"V G\"",
    );
    refused(
        r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]
[[vg.lv]]
name = "snapshot1"
size = "1G"
"#,
        5,
        "reserved by lvm2",
    );
    refused(
        r#"
[[drbd]]
name = "r/0"
minor = 0
disk = "/dev/sdb"
address = "127.0.0.1:7789"
"#,
        2,
        "DRBD resource name \"r/0\"",
    );
}

/// Names and paths that become file names or words of a DRBD resource
/// file: each bad one refused at its own line, before anything is written.
#[test]
fn names_and_paths_for_resource_files_are_refused_when_unsafe() {
    let drbd = |name: &str, disk: &str, peer: &str| {
        format!(
            "[[drbd]]\nname = {name}\nminor = 0\ndisk = {disk}\naddress = \"127.0.0.1:7789\"\n{peer}"
        )
    };
    let peer = |host: &str, disk: &str| {
        format!("[drbd.peer]\nhost = {host}\naddress = \"10.0.0.2:7789\"\ndisk = {disk}\n")
    };
    let good_peer = peer("\"b\"", "\"/dev/sdb\"");
    for (name, why) in [
        ("\"..\"", "it is . or .."),
        ("\".r0\"", "it starts with '.'"),
        ("\"-r0\"", "it starts with '-'"),
        ("\"../../etc/passwd\"", "only letters"),
        ("\"r0\\n}\"", "only letters"),
        ("\"r\\\"0\"", "only letters"),
    ] {
        refused(&drbd(name, "\"/dev/sdb\"", ""), 2, why);
    }
    for (disk, why) in [
        ("\"/dev/../etc/shadow\"", "a . or .. component"),
        ("\"/dev/sdb\\n}\"", "white space"),
        ("\"/dev/sdb }\"", "white space"),
        ("\"/dev/s{b\"", "one of"),
    ] {
        refused(&drbd("\"r0\"", disk, ""), 4, why);
    }
    for (host, why) in [
        ("\"b\\n}\"", "peer host \"b\\n}\": only letters"),
        ("\"b;\"", "only letters"),
        ("\"-b\"", "does not start with a letter or digit"),
        ("\"a/b\"", "only letters"),
    ] {
        refused(
            &drbd("\"r0\"", "\"/dev/sdb\"", &peer(host, "\"/dev/sdb\"")),
            7,
            why,
        );
    }
    refused(
        &drbd("\"r0\"", "\"/dev/sdb\"", &peer("\"b\"", "\"/dev/x y\"")),
        9,
        "peer disk \"/dev/x y\": it holds white space",
    );
    refused(
        &drbd("\"r0\"", "\"/dev/sdb\"", &peer("\"b\"", "\"sdb\"")),
        9,
        "not an absolute path",
    );
    // This node's name, given or (with DRBD resources) from uname.
    let host = |h: &str| {
        format!(
            "[host]\nname = {h}\n{}",
            drbd("\"r0\"", "\"/dev/sdb\"", &good_peer)
        )
    };
    refused(&host("\"a\\n}\""), 2, "host name \"a\\n}\": only letters");
    refused(&host("\"a b\""), 2, "only letters");
    refused(&host("\".a\""), 2, "does not start with a letter or digit");
    ok(&host("\"node-1.example.com\""));
    // Directories the host section names.
    refused(
        "[host]\nlxc_path = \"/var/lib/../../etc\"\n",
        2,
        "a . or .. component",
    );
    refused(
        "[host]\ndrbd_config_dir = \"/etc/drbd.d\\n\"\n",
        2,
        "white space",
    );
    // A PV path.
    refused(
        "[[vg]]\nname = \"V\"\npvs = [\"/dev/../dev/sdb\"]\n",
        3,
        "PV \"/dev/../dev/sdb\": it has a . or .. component",
    );
    // What the file accepts still writes its resource file.
    let s = ok(&drbd(
        "\"r0-U.1\"",
        "\"/dev/disk/by-path/pci-0000:00:1f.2-ata-1\"",
        &good_peer,
    ));
    let (text, path) = crate::stack::step::drbd_config_text(&s, "r0-U.1").unwrap();
    assert!(text.contains("resource r0-U.1 {"), "{text}");
    assert_eq!(path, PathBuf::from("/etc/drbd.d/r0-U.1.res"));
}

/// The resource file's text is checked where it is made, too: a Stack
/// built by other code than the file's parser cannot slip a line in.
#[test]
fn resource_file_text_refuses_unsafe_words() {
    let text = "[host]\nname = \"a\"\n[[drbd]]\nname = \"r0\"\nminor = 0\ndisk = \"/dev/sdb\"\naddress = \"127.0.0.1:7789\"\n[drbd.peer]\nhost = \"b\"\naddress = \"10.0.0.2:7789\"\n";
    let good = ok(text);
    for (edit, part) in [
        (
            (|s: &mut Stack| s.host = "a\n}\nresource evil {".into()) as fn(&mut Stack),
            "the host",
        ),
        (|s: &mut Stack| s.drbd[0].name = "../r0".into(), "the name"),
        (
            |s: &mut Stack| s.drbd[0].peer.as_mut().unwrap().host = "b;".into(),
            "the peer host",
        ),
        (
            |s: &mut Stack| s.drbd[0].peer.as_mut().unwrap().disk = "/dev/x;".into(),
            "the peer disk",
        ),
        (
            |s: &mut Stack| s.drbd[0].disk.path = "/dev/x\n".into(),
            "the disk",
        ),
    ] {
        let mut s = good.clone();
        edit(&mut s);
        let name = s.drbd[0].name.clone();
        let e = crate::stack::step::drbd_config_text(&s, &name)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(part) && e.contains("cannot go into its resource file"),
            "{e}"
        );
    }
}

// ---------------------------------------------------------------------------
// Devices: one user each, paths that name the file's own layers.

#[test]
fn two_vgs_on_one_pv_are_refused() {
    refused(
        r#"
[[vg]]
name = "A"
pvs = ["/dev/sdb"]

[[vg]]
name = "B"
pvs = ["/dev/sdc", "/dev/sdb"]
"#,
        7,
        "/dev/sdb is used by VG B and by VG A (line 3)",
    );
}

#[test]
fn a_drbd_disk_that_is_also_a_pv_is_refused() {
    refused(
        r#"
[[vg]]
name = "A"
pvs = ["/dev/sdb"]

[[drbd]]
name = "r0"
minor = 0
disk = "/dev/sdb"
address = "127.0.0.1:7789"
"#,
        8,
        "/dev/sdb is used by DRBD resource r0 and by VG A (line 3)",
    );
}

#[test]
fn one_lv_under_two_names_is_still_one_device() {
    // /dev/VG/LV and /dev/mapper/VG-LV are the same LV.
    refused(
        r#"
[[vg]]
name = "A"
pvs = ["/dev/sdb"]
[[vg.lv]]
name = "l"
size = "1G"

[[vg]]
name = "B"
pvs = ["/dev/A/l"]

[[drbd]]
name = "r0"
minor = 0
disk = "/dev/mapper/A-l"
address = "127.0.0.1:7789"
"#,
        15,
        "is used by DRBD resource r0 and by VG B (line 10)",
    );
}

#[test]
fn a_pv_path_must_be_under_dev() {
    refused(
        r#"
[[vg]]
name = "A"
pvs = ["sdb"]
"#,
        3,
        "PV \"sdb\" must be a path under /dev",
    );
}

#[test]
fn a_pv_of_an_lv_must_be_a_pv_of_its_vg() {
    refused(
        r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]

[[vg.lv]]
name = "l"
size = "1G"
pvs = ["/dev/sdb", "/dev/sdc"]
"#,
        8,
        "/dev/sdc is not a PV of VG V",
    );
    refused(
        r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]

[[vg.lv]]
name = "l"
size = "1G"
cache = { size = "100M", pvs = ["/dev/md1"] }
"#,
        8,
        "/dev/md1 is not a PV of VG V",
    );
    refused(
        r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]

[[vg.thinpool]]
name = "p"
size = "1G"
pvs = [
  "/dev/sdb",
  "/dev/sdd",
]
"#,
        10,
        "/dev/sdd is not a PV of VG V",
    );
}

#[test]
fn a_thin_pool_is_not_a_pv() {
    let base = r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]
[[vg.thinpool]]
name = "p"
size = "1G"

[[vg]]
name = "W"
"#;
    refused(
        &format!("{base}pvs = [\"/dev/V/p\"]\n"),
        10,
        "/dev/V/p is a thin pool",
    );
    refused(
        &format!("{base}pvs = [\"/dev/mapper/V-p\"]\n"),
        10,
        "/dev/mapper/V-p is a thin pool",
    );
}

#[test]
fn a_drbd_pv_with_no_such_resource_is_refused() {
    refused(
        r#"
[[drbd]]
name = "r0"
minor = 0
disk = "/dev/sdb"
address = "127.0.0.1:7789"

[[vg]]
name = "V"
pvs = ["/dev/drbd5"]
"#,
        9,
        "/dev/drbd5: no [[drbd]] in this file has that device (minor)",
    );
}

#[test]
fn a_drbd_disk_named_by_its_minor_is_the_resource() {
    // r1 on r0's device without stacked_on: still a dependency.
    let s = ok(r#"
[[drbd]]
name = "r1"
minor = 1
disk = "/dev/drbd0"
address = "127.0.0.1:7790"

[[drbd]]
name = "r0"
minor = 0
disk = "/dev/sdb"
address = "127.0.0.1:7789"
"#);
    assert_eq!(
        s.drbd("r1").unwrap().disk.provider,
        Provider::Drbd("r0".into())
    );
    assert_eq!(order(&s), ["DRBD resource r0", "DRBD resource r1"]);
}

#[test]
fn a_dependency_cycle_is_refused_naming_its_members() {
    let e = refused(
        r#"
[[vg]]
name = "A"
pvs = ["/dev/B/lb"]
[[vg.lv]]
name = "la"
size = "1G"

[[vg]]
name = "B"
pvs = ["/dev/A/la"]
[[vg.lv]]
name = "lb"
size = "1G"
"#,
        1,
        "dependency cycle: VG A -> VG B -> VG A",
    );
    assert!(e.message.contains("each layer must stand on"), "{e}");
}

#[test]
fn a_cycle_through_drbd_is_refused() {
    refused(
        r#"
[[vg]]
name = "A"
pvs = ["/dev/drbd0"]
[[vg.lv]]
name = "l"
size = "1G"

[[drbd]]
name = "r0"
minor = 0
disk = "/dev/A/l"
address = "127.0.0.1:7789"
"#,
        1,
        "dependency cycle: VG A -> DRBD resource r0 -> VG A",
    );
}

// ---------------------------------------------------------------------------
// DRBD.

#[test]
fn stacked_on_a_missing_resource_is_refused() {
    refused(
        r#"
[[drbd]]
name = "r0-U"
minor = 10
stacked_on = "r9"
address = "127.0.0.1:7791"
"#,
        4,
        "stacked_on \"r9\": no [[drbd]] of that name in this file",
    );
}

#[test]
fn disk_and_stacked_on_are_one_or_the_other() {
    refused(
        r#"
[[drbd]]
name = "r0"
minor = 0
address = "127.0.0.1:7789"
"#,
        1,
        "give `disk` or `stacked_on`",
    );
    refused(
        r#"
[[drbd]]
name = "r0"
minor = 0
disk = "/dev/sdb"
address = "127.0.0.1:7789"

[[drbd]]
name = "r0-U"
minor = 10
stacked_on = "r0"
disk = "/dev/sdc"
address = "127.0.0.1:7791"
"#,
        11,
        "leave out `disk`",
    );
}

#[test]
fn a_bad_protocol_is_refused() {
    refused(
        r#"
[[drbd]]
name = "r0"
minor = 0
disk = "/dev/sdb"
address = "127.0.0.1:7789"
protocol = "D"
"#,
        6,
        "protocol \"D\": give A, B or C",
    );
}

#[test]
fn a_bad_address_is_refused() {
    refused(
        r#"
[[drbd]]
name = "r0"
minor = 0
disk = "/dev/sdb"
address = "127.0.0.1"
"#,
        5,
        "address \"127.0.0.1\": give IP:PORT",
    );
    refused(
        r#"
[[drbd]]
name = "r0"
minor = 0
disk = "/dev/sdb"
address = "127.0.0.1:7789"
peer = { host = "b", address = "peer-b:7789" }
"#,
        6,
        "address \"peer-b:7789\"",
    );
}

#[test]
fn a_minor_out_of_range_is_refused() {
    refused(
        r#"
[[drbd]]
name = "r0"
minor = -1
disk = "/dev/sdb"
address = "127.0.0.1:7789"
"#,
        3,
        "minor must be between 0 and 1048575",
    );
}

// ---------------------------------------------------------------------------
// Thin pools and containers.

#[test]
fn autoextend_threshold_without_percent_is_refused() {
    refused(
        r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]

[[vg.thinpool]]
name = "p"
size = "1G"
autoextend_threshold = 70
"#,
        8,
        "give autoextend_threshold and autoextend_percent together",
    );
}

#[test]
fn autoextend_threshold_below_50_is_refused() {
    refused(
        r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]

[[vg.thinpool]]
name = "p"
size = "1G"
autoextend_threshold = 20
autoextend_percent = 10
"#,
        8,
        "autoextend_threshold must be between 50 and 100",
    );
}

#[test]
fn a_container_on_a_missing_pool_is_refused() {
    let base = r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]
[[vg.thinpool]]
name = "p"
size = "1G"

[[container]]
name = "c"
size = "1G"
"#;
    refused(
        &format!("{base}pool = \"X/Y\"\n"),
        11,
        "pool \"X/Y\": no [[vg.thinpool]] Y in a [[vg]] X of this file",
    );
    refused(
        &format!("{base}pool = \"V/q\"\n"),
        11,
        "no [[vg.thinpool]] q in a [[vg]] V",
    );
    refused(&format!("{base}pool = \"p\"\n"), 11, "pool: give VG/POOL");
}

#[test]
fn a_container_with_no_pool_needs_exactly_one_in_the_file() {
    let two = r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]
[[vg.thinpool]]
name = "p"
size = "1G"
[[vg.thinpool]]
name = "q"
size = "1G"

[[container]]
name = "c"
size = "1G"
"#;
    // At the container's table header.
    refused(two, 11, "give the container a `pool = \"VG/POOL\"`");
    refused(
        r#"
[[container]]
name = "c"
size = "1G"
"#,
        1,
        "does not have exactly one thin pool",
    );
    let s = ok(&format!("{two}pool = \"V/q\"\n"));
    assert_eq!(s.containers[0].pool, "q");
}

#[test]
fn a_bad_rootfs_is_refused() {
    refused(
        r#"
[[vg]]
name = "V"
pvs = ["/dev/sdb"]
[[vg.thinpool]]
name = "p"
size = "1G"

[[container]]
name = "c"
size = "1G"
rootfs = "alpine.tar"
"#,
        11,
        "rootfs: give \"busybox\" or the absolute path of a tarball",
    );
}

#[test]
fn host_paths_must_be_absolute() {
    refused(
        r#"
[host]
lxc_path = "lxc"
"#,
        2,
        "give an absolute path",
    );
    refused(
        r#"
[host]
name = ""
"#,
        2,
        "host name is empty",
    );
}
