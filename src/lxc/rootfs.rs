//! A container's root filesystem content: the tree the lxc-busybox
//! template builds around a static busybox, or a distribution tarball
//! unpacked. Takes the directory the filesystem is mounted on.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{command_line, run, tail, LxcError};

const IO_HINT: &str = "check that the root filesystem is mounted there, writable, with free space";

/// The directories the lxc-busybox template makes (all mode 0755 but tmp).
const TREE: &[&str] = &[
    "selinux",
    "dev",
    "home",
    "root",
    "etc",
    "etc/init.d",
    "bin",
    "usr/bin",
    "sbin",
    "usr/sbin",
    "proc",
    "sys",
    "mnt",
    "tmp",
    "var/log",
    "var/run",
    "dev/pts",
    "lib",
    "usr/lib",
    "lib64",
    "usr/lib64",
];

/// busybox init's table: rcS once, a getty on tty1, a shell on the
/// console (lxc-console / lxc-attach).
const INITTAB: &str = "\
::sysinit:/etc/init.d/rcS
tty1::respawn:/bin/getty -L tty1 115200 vt100
console::askfirst:/bin/sh
";

/// The template's rcS without its `/bin/udhcpc`: the lab's container
/// network has no DHCP server, and udhcpc would hold up boot retrying.
const RCS: &str = "\
#!/bin/sh
# No /bin/udhcpc (the lxc-busybox template runs it): there is no DHCP
# server on this network; configure eth0 with ip(8) if needed.
/bin/syslogd
/bin/mount -a
";

/// The busybox binaries distributions install (Debian's busybox-static
/// puts it in /bin, merged /usr in /usr/bin).
pub fn find_busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Builds in `root` what `lxc-create -t busybox` does: the directory
/// tree (tmp 1777), root in passwd/group, empty shadow and fstab, inittab,
/// rcS, `busybox` copied to bin/busybox with a `bin/<applet> -> busybox`
/// symlink for every applet it lists, sbin/init a hard link to it, and
/// setuid for passwd. Refuses a dynamically linked busybox: the container
/// sees none of the host's libraries. Running it again rebuilds the same
/// tree.
pub fn build_busybox_rootfs(root: &Path, busybox: &Path) -> Result<(), LxcError> {
    check_static(busybox)?;
    let applets = list_applets(busybox)?;
    make_tree(root)?;
    write_etc(root)?;
    install_busybox(root, busybox, &applets)
}

fn io_err(root: &Path, what: String) -> impl FnOnce(std::io::Error) -> LxcError + '_ {
    move |source| LxcError::Io {
        subject: format!("rootfs {}", root.display()),
        what,
        source,
        hint: IO_HINT,
    }
}

/// Refuses a binary that asks for a dynamic loader (a PT_INTERP header).
fn check_static(busybox: &Path) -> Result<(), LxcError> {
    let bytes = fs::read(busybox).map_err(|source| LxcError::Io {
        subject: format!("busybox {}", busybox.display()),
        what: "read it".to_owned(),
        source,
        hint: "install busybox-static (apt-get install busybox-static)",
    })?;
    match elf_interpreter(&bytes) {
        Ok(None) => Ok(()),
        Ok(Some(interp)) => Err(LxcError::NotStatic {
            path: busybox.to_owned(),
            interp,
        }),
        Err(why) => Err(LxcError::NotElf {
            path: busybox.to_owned(),
            why,
        }),
    }
}

/// The program interpreter an ELF file asks for (its PT_INTERP segment),
/// `None` for a static executable. ELF32 and ELF64, either byte order.
fn elf_interpreter(b: &[u8]) -> Result<Option<String>, &'static str> {
    const PT_INTERP: u32 = 3;
    if b.get(..4) != Some(b"\x7fELF") {
        return Err("no ELF magic");
    }
    let wide = match b.get(4) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err("unknown ELF class"),
    };
    let big = match b.get(5) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err("unknown ELF byte order"),
    };
    // Offsets come from the file: checked, so that a corrupt one is an
    // error rather than an overflow.
    let slice = |off: u64, len: u64| -> Result<&[u8], &'static str> {
        let start = usize::try_from(off).map_err(|_| "truncated")?;
        let len = usize::try_from(len).map_err(|_| "truncated")?;
        b.get(start..start.checked_add(len).ok_or("truncated")?)
            .ok_or("truncated")
    };
    let field = |off: u64, len: u64| -> Result<u64, &'static str> {
        let fold = |acc: u64, &x: &u8| acc << 8 | u64::from(x);
        let bytes = slice(off, len)?;
        Ok(if big {
            bytes.iter().fold(0, fold)
        } else {
            bytes.iter().rev().fold(0, fold)
        })
    };
    let word = if wide { 8 } else { 4 };
    // e_phoff, e_phentsize, e_phnum; in a program header p_type, p_offset
    // and p_filesz.
    let (phoff, phentsize, phnum) = if wide {
        (field(32, 8)?, field(54, 2)?, field(56, 2)?)
    } else {
        (field(28, 4)?, field(42, 2)?, field(44, 2)?)
    };
    let (p_offset, p_filesz) = if wide { (8, 32) } else { (4, 16) };
    for i in 0..phnum {
        // phentsize and phnum are 16-bit: i * phentsize cannot overflow.
        let ph = phoff.checked_add(i * phentsize).ok_or("truncated")?;
        if field(ph, 4)? == u64::from(PT_INTERP) {
            let start = field(ph + p_offset, word)?;
            let path = slice(start, field(ph + p_filesz, word)?)?;
            let path = path.split(|&c| c == 0).next().unwrap_or_default();
            return Ok(Some(String::from_utf8_lossy(path).into_owned()));
        }
    }
    Ok(None)
}

/// `busybox --list`: the applets, but for busybox itself (as the
/// template's `grep -v busybox`), and only plain file names.
fn list_applets(busybox: &Path) -> Result<Vec<String>, LxcError> {
    let subject = format!("busybox {}", busybox.display());
    let args = [OsStr::new("--list")];
    let hint = "pass a working busybox binary (busybox-static)";
    let out = run(&subject, busybox.as_os_str(), &args, hint)?;
    if !out.status.success() {
        return Err(LxcError::Command {
            subject,
            command: command_line(&busybox.to_string_lossy(), &args),
            status: out.status.to_string(),
            detail: tail(&out, 5),
            hint: hint.to_owned(),
        });
    }
    Ok(parse_applets(&String::from_utf8_lossy(&out.stdout)))
}

fn parse_applets(list: &str) -> Vec<String> {
    list.lines()
        .map(str::trim)
        .filter(|a| {
            !a.is_empty() && !a.contains("busybox") && !a.contains('/') && *a != "." && *a != ".."
        })
        .map(str::to_owned)
        .collect()
}

fn make_tree(root: &Path) -> Result<(), LxcError> {
    for dir in TREE {
        let path = root.join(dir);
        fs::create_dir_all(&path).map_err(io_err(root, format!("make {}", path.display())))?;
        let mode = if *dir == "tmp" { 0o1777 } else { 0o755 };
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .map_err(io_err(root, format!("chmod {}", path.display())))?;
    }
    Ok(())
}

fn write_etc(root: &Path) -> Result<(), LxcError> {
    let files: [(&str, &str, u32); 6] = [
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644),
        ("etc/group", "root:x:0:root\n", 0o644),
        // Empty, as the template leaves it, but for root only: busybox
        // passwd writes password hashes there.
        ("etc/shadow", "", 0o600),
        // Must exist for rcS's `mount -a`.
        ("etc/fstab", "", 0o644),
        ("etc/inittab", INITTAB, 0o644),
        ("etc/init.d/rcS", RCS, 0o744),
    ];
    for (rel, text, mode) in files {
        write_file(root, rel, text, mode)?;
    }
    Ok(())
}

fn write_file(root: &Path, rel: &str, text: &str, mode: u32) -> Result<(), LxcError> {
    let path = root.join(rel);
    fs::write(&path, text)
        .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(mode)))
        .map_err(io_err(root, format!("write {}", path.display())))
}

fn install_busybox(root: &Path, busybox: &Path, applets: &[String]) -> Result<(), LxcError> {
    let bin = root.join("bin/busybox");
    // A fresh inode: a previous build's bin/busybox is also sbin/init.
    remove_if_present(root, &bin)?;
    fs::copy(busybox, &bin)
        .and_then(|_| fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)))
        .map_err(io_err(
            root,
            format!("copy {} to {}", busybox.display(), bin.display()),
        ))?;
    let mut seen = HashSet::new();
    for applet in applets.iter().filter(|a| seen.insert(a.as_str())) {
        let link = root.join("bin").join(applet);
        remove_if_present(root, &link)?;
        std::os::unix::fs::symlink("busybox", &link)
            .map_err(io_err(root, format!("link {}", link.display())))?;
    }
    let init = root.join("sbin/init");
    remove_if_present(root, &init)?;
    fs::hard_link(&bin, &init).map_err(io_err(root, format!("link {}", init.display())))?;
    if seen.contains("passwd") {
        // The template's `chmod +s bin/passwd` follows the symlink: the
        // binary (and so sbin/init, the same inode) becomes setuid and
        // setgid; busybox drops the privileges for applets that need none.
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o6755))
            .map_err(io_err(root, format!("chmod +s {}", bin.display())))?;
    }
    Ok(())
}

fn remove_if_present(root: &Path, path: &Path) -> Result<(), LxcError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(io_err(root, format!("replace {}", path.display()))(e))
        }
        _ => Ok(()),
    }
}

/// Unpacks a root filesystem tarball into `root` with GNU tar (any
/// compression it detects), keeping numeric owners and modes: the
/// container's ids are not the host's names.
pub fn extract_tarball(root: &Path, tarball: &Path) -> Result<(), LxcError> {
    let subject = format!("rootfs {}", root.display());
    let args = [
        OsStr::new("--numeric-owner"),
        OsStr::new("-xpf"),
        tarball.as_os_str(),
        OsStr::new("-C"),
        root.as_os_str(),
    ];
    let out = run(&subject, OsStr::new("tar"), &args, "install tar")?;
    if out.status.success() {
        return Ok(());
    }
    Err(LxcError::Command {
        subject,
        command: command_line("tar", &args),
        status: out.status.to_string(),
        detail: tail(&out, 10),
        hint: format!(
            "check that {} is a root filesystem tarball and that the filesystem has room",
            tarball.display()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::scratch;
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A minimal ELF64 little-endian header with one program header of
    /// type `p_type` pointing at "/lib/ld.so\0".
    fn elf64(p_type: u32) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56 + 16];
        b[..6].copy_from_slice(b"\x7fELF\x02\x01");
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&1u16.to_le_bytes());
        b[64..68].copy_from_slice(&p_type.to_le_bytes());
        b[64 + 8..64 + 16].copy_from_slice(&120u64.to_le_bytes());
        b[64 + 32..64 + 40].copy_from_slice(&11u64.to_le_bytes());
        b[120..131].copy_from_slice(b"/lib/ld.so\0");
        b
    }

    #[test]
    fn elf_parsing() {
        assert_eq!(elf_interpreter(&elf64(3)), Ok(Some("/lib/ld.so".into())));
        assert_eq!(elf_interpreter(&elf64(1)), Ok(None));
        assert_eq!(elf_interpreter(b"#!/bin/sh\n"), Err("no ELF magic"));
        assert_eq!(elf_interpreter(&elf64(3)[..100]), Err("truncated"));
        let mut huge = elf64(3);
        huge[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            elf_interpreter(&huge),
            Err("truncated"),
            "e_phoff past the end"
        );

        // ELF32 big-endian, same layout idea.
        let mut b = vec![0u8; 52 + 32 + 8];
        b[..6].copy_from_slice(b"\x7fELF\x01\x02");
        b[28..32].copy_from_slice(&52u32.to_be_bytes());
        b[42..44].copy_from_slice(&32u16.to_be_bytes());
        b[44..46].copy_from_slice(&1u16.to_be_bytes());
        b[52..56].copy_from_slice(&3u32.to_be_bytes());
        b[56..60].copy_from_slice(&84u32.to_be_bytes());
        b[68..72].copy_from_slice(&4u32.to_be_bytes());
        b[84..88].copy_from_slice(b"/ld\0");
        assert_eq!(elf_interpreter(&b), Ok(Some("/ld".into())));
    }

    #[test]
    fn host_binaries() {
        if let Some(bb) = find_busybox() {
            let static_ = elf_interpreter(&fs::read(&bb).unwrap()).unwrap().is_none();
            eprintln!(
                "note: {} is {}",
                bb.display(),
                if static_ { "static" } else { "dynamic" }
            );
        }
        // The test binary itself is an ELF executable.
        let me = std::env::current_exe().unwrap();
        assert!(elf_interpreter(&fs::read(me).unwrap()).is_ok());
    }

    #[test]
    fn applet_list() {
        assert_eq!(
            parse_applets("[\n[[\nbusybox\nls\n\n../x\nsh\n"),
            ["[", "[[", "ls", "sh"]
        );
    }

    #[test]
    fn refuses_a_dynamic_busybox() {
        let dir = scratch("dyn");
        let fake = dir.join("busybox");
        fs::write(&fake, elf64(3)).unwrap();
        let e = build_busybox_rootfs(&dir.join("root"), &fake).unwrap_err();
        assert!(matches!(e, LxcError::NotStatic { .. }), "{e}");
        assert!(e.to_string().contains("busybox-static"), "{e}");
        assert!(!dir.join("root").exists(), "nothing built");
        fs::write(&fake, "#!/bin/sh\n").unwrap();
        let e = build_busybox_rootfs(&dir.join("root"), &fake).unwrap_err();
        assert!(matches!(e, LxcError::NotElf { .. }), "{e}");
    }

    #[test]
    fn busybox_tree_like_the_template() {
        let Some(bb) = find_busybox().filter(|bb| check_static(bb).is_ok()) else {
            eprintln!(
                "note: no static busybox on this host; test skipped (install busybox-static)"
            );
            return;
        };
        let root = scratch("bb");
        build_busybox_rootfs(&root, &bb).unwrap();
        build_busybox_rootfs(&root, &bb).unwrap(); // again: same tree
        let meta = |rel: &str| fs::symlink_metadata(root.join(rel)).unwrap();
        let mode = |rel: &str| meta(rel).mode() & 0o7777;
        for dir in TREE {
            assert_eq!(
                mode(dir),
                if *dir == "tmp" { 0o1777 } else { 0o755 },
                "{dir}"
            );
        }
        assert_eq!(mode("etc/init.d/rcS"), 0o744);
        let rcs = fs::read_to_string(root.join("etc/init.d/rcS")).unwrap();
        assert!(rcs.starts_with("#!/bin/sh\n") && rcs.contains("/bin/mount -a\n"));
        assert!(!rcs.lines().any(|l| l.starts_with("/bin/udhcpc")));
        assert_eq!(
            fs::read_to_string(root.join("etc/inittab")).unwrap(),
            INITTAB
        );
        assert_eq!(
            fs::read_to_string(root.join("etc/passwd")).unwrap(),
            "root:x:0:0:root:/root:/bin/sh\n"
        );
        assert!(root.join("etc/fstab").is_file() && root.join("etc/shadow").is_file());

        assert_eq!(
            mode("bin/busybox"),
            0o6755,
            "setuid for passwd, as chmod +s bin/passwd"
        );
        assert_eq!(
            meta("sbin/init").ino(),
            meta("bin/busybox").ino(),
            "hard link"
        );
        let applets = list_applets(&bb).unwrap();
        for a in &applets {
            assert_eq!(
                fs::read_link(root.join("bin").join(a)).unwrap(),
                Path::new("busybox"),
                "{a}"
            );
        }
        assert!(applets.iter().any(|a| a == "sh"));
        // bin holds the applets and busybox, nothing else.
        assert_eq!(
            fs::read_dir(root.join("bin")).unwrap().count(),
            applets.len() + 1
        );
    }

    #[test]
    fn tarball_round_trip() {
        let dir = scratch("tar");
        let src = dir.join("src");
        fs::create_dir_all(src.join("etc")).unwrap();
        fs::write(src.join("etc/os-release"), "ID=test\n").unwrap();
        fs::set_permissions(src.join("etc"), fs::Permissions::from_mode(0o750)).unwrap();
        let tarball = dir.join("root.tar.gz");
        let ok = std::process::Command::new("tar")
            .args([
                OsStr::new("-czf"),
                tarball.as_os_str(),
                OsStr::new("-C"),
                src.as_os_str(),
                OsStr::new("."),
            ])
            .status();
        if !ok.map(|s| s.success()).unwrap_or(false) {
            eprintln!("note: tar could not make a test tarball; test skipped");
            return;
        }
        let root = dir.join("root");
        fs::create_dir(&root).unwrap();
        extract_tarball(&root, &tarball).unwrap();
        assert_eq!(
            fs::read_to_string(root.join("etc/os-release")).unwrap(),
            "ID=test\n"
        );
        assert_eq!(
            fs::metadata(root.join("etc")).unwrap().mode() & 0o777,
            0o750,
            "modes kept"
        );

        let e = extract_tarball(&root, &dir.join("missing.tar"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tar --numeric-owner -xpf") && e.contains("missing.tar"),
            "{e}"
        );
    }
}
