//! A container's LXC config file, `<lxcpath>/<name>/config`: rendered as
//! `lxc-create -B lvm -t busybox` writes it, written atomically, read back
//! for the few keys cairn acts on, listed, removed.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{check_name, container, LxcError};

/// Mode of a container's directory, as lxc-create makes it: the config
/// may name devices and keys that other users have no business reading.
const CONTAINER_DIR_MODE: u32 = 0o770;
/// Mode of the config file, as lxc-create leaves it.
const CONFIG_MODE: u32 = 0o640;
/// Mode of the (empty) `rootfs` mount point, as lxc-create makes it.
const ROOTFS_DIR_MODE: u32 = 0o755;
/// Prefix of [`write_config`]'s temporary file, which a crash can leave.
const TEMP_PREFIX: &str = ".config.cairn-";
const IO_HINT: &str = "cairn must run as root, with the LXC path on a writable filesystem";

/// The config common to distribution images (what lxc-download's configs
/// include).
pub const COMMON_CONF: &str = "/usr/share/lxc/config/common.conf";

/// What goes into a new container's root filesystem; decides the config
/// lines that suit its init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootfsSource {
    /// A static busybox (`lxc-busybox` template's tree, see
    /// [`super::rootfs::build_busybox_rootfs`]).
    Busybox,
    /// A root filesystem tarball (a distribution image).
    Tarball(PathBuf),
}

/// A container to be created: input of [`render`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConfig {
    /// Must pass [`check_name`].
    pub name: String,
    /// The block device holding the root filesystem (e.g. /dev/DRBDVG2/c1).
    pub rootfs_device: PathBuf,
    /// Started at boot by lxc's autostart (`lxc.start.auto = 1`).
    pub autostart: bool,
    pub source: RootfsSource,
}

/// The config `lxc-create -n NAME -B lvm -t busybox` would write (or, for
/// a tarball, the distribution images' common include), so that lxc's own
/// tools treat the container as one of theirs. `default_conf` is the text
/// of /etc/lxc/default.conf, which lxc-create copies in first.
///
/// The busybox template's read-only bind mounts of the host's /lib,
/// /usr/lib, /lib64 and /usr/lib64 are left out: they serve a dynamically
/// linked busybox, and cairn only installs a static one.
pub fn render(cfg: &NewConfig, default_conf: &str) -> String {
    let mut out = format!(
        "# Written by cairn for container {}: the config lxc-create -B lvm would write.\n\n",
        cfg.name
    );
    out.push_str(default_conf);
    if !default_conf.is_empty() && !default_conf.ends_with('\n') {
        out.push('\n');
    }
    let mut line = |key: &str, value: &str| out.push_str(&format!("{key} = {value}\n"));
    line(
        "lxc.rootfs.path",
        &format!("lvm:{}", cfg.rootfs_device.display()),
    );
    line("lxc.uts.name", &cfg.name);
    match cfg.source {
        RootfsSource::Busybox => BUSYBOX_LINES.iter().for_each(|(k, v)| line(k, v)),
        RootfsSource::Tarball(_) => line("lxc.include", COMMON_CONF),
    }
    if cfg.autostart {
        line("lxc.start.auto", "1");
    }
    out
}

/// The lxc-busybox template's `copy_configuration` lines, but for the
/// host library bind mounts. busybox's init halts on SIGUSR1 and reboots
/// on SIGTERM, hence the signals.
const BUSYBOX_LINES: &[(&str, &str)] = &[
    ("lxc.signal.halt", "SIGUSR1"),
    ("lxc.signal.reboot", "SIGTERM"),
    ("lxc.autodev", "1"),
    ("lxc.tty.max", "5"),
    ("lxc.pty.max", "1"),
    ("lxc.cap.drop", "sys_module mac_admin mac_override sys_time"),
    ("lxc.mount.auto", "cgroup:mixed proc:mixed sys:ro"),
    (
        "lxc.mount.entry",
        "shm dev/shm tmpfs defaults,create=dir 0 0",
    ),
    (
        "lxc.mount.entry",
        "mqueue dev/mqueue mqueue defaults,optional,create=dir 0 0",
    ),
    (
        "lxc.mount.entry",
        "/sys/kernel/security sys/kernel/security none ro,bind,optional 0 0",
    ),
];

/// A maker of I/O errors on container `name`'s files: `io(what)` maps an
/// io::Error to one saying what was being done.
fn io_error<'n>(
    name: &'n str,
) -> impl Fn(String) -> Box<dyn FnOnce(std::io::Error) -> LxcError + 'n> + 'n {
    move |what: String| {
        Box::new(move |source| LxcError::Io {
            subject: container(name),
            what,
            source,
            hint: IO_HINT,
        })
    }
}

/// Writes `<lxcpath>/<name>/config` atomically (a temporary file in the
/// same directory, fsync, rename, fsync of the directory: a crash leaves
/// the old config or the new one, never a torn one), making the
/// container's directory and its empty `rootfs` mount point as lxc-create
/// does. Returns the config's path.
pub fn write_config(lxcpath: &Path, name: &str, text: &str) -> Result<PathBuf, LxcError> {
    check_name(name)?;
    let io = io_error(name);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(lxcpath)
        .map_err(io(format!("make the LXC path {}", lxcpath.display())))?;
    let dir = lxcpath.join(name);
    make_dir(&dir, CONTAINER_DIR_MODE).map_err(io(format!("make {}", dir.display())))?;
    let rootfs = dir.join("rootfs");
    make_dir(&rootfs, ROOTFS_DIR_MODE).map_err(io(format!("make {}", rootfs.display())))?;
    let config = dir.join("config");
    replace_config(&config, text).map_err(io(format!("write {}", config.display())))?;
    Ok(config)
}

fn replace_config(config: &Path, text: &str) -> std::io::Result<()> {
    let tmp = format!("{TEMP_PREFIX}{}", std::process::id());
    crate::fs::replace_file(config, text.as_bytes(), CONFIG_MODE, &tmp)
}

/// Sets `lxc.start.auto` in a container's config (1, or the line gone),
/// keeping every other line, atomically as [`write_config`] writes.
pub fn set_start_auto(lxcpath: &Path, name: &str, on: bool) -> Result<(), LxcError> {
    check_name(name)?;
    let path = lxcpath.join(name).join("config");
    let io = io_error(name);
    let text = fs::read_to_string(&path).map_err(io(format!("read {}", path.display())))?;
    let mut out: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.split_once('=')
                .is_none_or(|(k, _)| k.trim() != "lxc.start.auto")
        })
        .collect();
    if on {
        out.push("lxc.start.auto = 1");
    }
    replace_config(&path, &(out.join("\n") + "\n")).map_err(io(format!("write {}", path.display())))
}

/// Makes `dir` with `mode` (whatever the umask), or leaves an existing
/// directory as it is.
fn make_dir(dir: &Path, mode: u32) -> std::io::Result<()> {
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(mode)),
        Err(e) if e.kind() == ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// What cairn reads back from a container's config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerConfig {
    pub name: String,
    /// `lxc.rootfs.path` verbatim (e.g. `lvm:/dev/DRBDVG2/c1`, `dir:/...`).
    pub rootfs_path: Option<String>,
    /// The root filesystem's block device: `lxc.rootfs.path` without its
    /// `lvm:` prefix, or a bare /dev path; `None` for other backends.
    pub rootfs_device: Option<PathBuf>,
    /// `lxc.start.auto = 1`: lxc-autostart starts it at boot.
    pub start_auto: bool,
    /// `lxc.start.order`, when set.
    pub start_order: Option<i64>,
}

/// Reads `<lxcpath>/<name>/config`; `None` when the container has none
/// (it is not defined). `lxc.include`d files are not followed: cairn's
/// keys are always in the container's own file.
pub fn read_config(lxcpath: &Path, name: &str) -> Result<Option<ContainerConfig>, LxcError> {
    check_name(name)?;
    read_at(lxcpath, name)
}

/// [`read_config`] for a name that need not pass [`check_name`] (one
/// found in the LXC path, made by lxc itself).
fn read_at(lxcpath: &Path, name: &str) -> Result<Option<ContainerConfig>, LxcError> {
    let path = lxcpath.join(name).join("config");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LxcError::Io {
                subject: container(name),
                what: format!("read {}", path.display()),
                source,
                hint: IO_HINT,
            })
        }
    };
    parse(name, &text)
        .map(Some)
        .map_err(|(line, why)| LxcError::Config {
            name: name.to_owned(),
            path,
            line,
            why,
        })
}

/// Parses config text as lxc does (`key = value`, blanks around both
/// trimmed, one pair of quotes around the value stripped, `#` comments,
/// the last value of a key wins, an empty value clears it). Errors are
/// (line number, why).
fn parse(name: &str, text: &str) -> Result<ContainerConfig, (usize, String)> {
    let mut c = ContainerConfig {
        name: name.to_owned(),
        ..ContainerConfig::default()
    };
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: String| (i + 1, why);
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| bad(format!("{line:?} is not `key = value`")))?;
        let value = unquote(value.trim());
        match key.trim() {
            "lxc.rootfs.path" => c.set_rootfs_path(value),
            "lxc.start.auto" => {
                c.start_auto = match value {
                    "" | "0" => false,
                    "1" => true,
                    _ => return Err(bad(format!("lxc.start.auto = {value}: lxc takes 0 or 1"))),
                }
            }
            "lxc.start.order" => {
                c.start_order = match value {
                    "" => None,
                    v => Some(
                        v.parse()
                            .map_err(|_| bad(format!("lxc.start.order = {v}: not an integer")))?,
                    ),
                }
            }
            _ => {}
        }
    }
    Ok(c)
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

impl ContainerConfig {
    fn set_rootfs_path(&mut self, value: &str) {
        self.rootfs_path = (!value.is_empty()).then(|| value.to_owned());
        self.rootfs_device = match value.strip_prefix("lvm:") {
            Some(dev) if !dev.is_empty() => Some(PathBuf::from(dev)),
            None if value.starts_with("/dev/") => Some(PathBuf::from(value)),
            _ => None,
        };
    }
}

/// Every container defined in `lxcpath` (a directory holding a `config`,
/// as lxc-ls counts them), sorted by name. A missing LXC path has none.
pub fn list(lxcpath: &Path) -> Result<Vec<ContainerConfig>, LxcError> {
    let io = |source| LxcError::Io {
        subject: format!("LXC path {}", lxcpath.display()),
        what: "list it".to_owned(),
        source,
        hint: IO_HINT,
    };
    let entries = match fs::read_dir(lxcpath) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io)?;
        // A name that is not UTF-8 was not made by cairn, nor is it one a
        // cairn command could be given.
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if entry.path().is_dir() {
            found.extend(read_at(lxcpath, &name)?);
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Removes `<lxcpath>/<name>/`: its config, its empty `rootfs` mount
/// point, empty files and directories. Refuses, removing nothing, when it
/// holds anything else (a rootfs still mounted there, a user's file), so
/// that no data goes with it. A container without a directory is already
/// removed.
pub fn remove_config(lxcpath: &Path, name: &str) -> Result<(), LxcError> {
    check_name(name)?;
    let dir = lxcpath.join(name);
    let io = io_error(name);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(format!("list {}", dir.display()))(e)),
    };
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    for entry in entries {
        let entry = entry.map_err(io(format!("list {}", dir.display())))?;
        let path = entry.path();
        match removable(&entry).map_err(io(format!("inspect {}", path.display())))? {
            Some(true) => dirs.push(path),
            Some(false) => files.push(path),
            None => {
                return Err(LxcError::NotOurs {
                    name: name.to_owned(),
                    dir,
                    entry: entry.file_name().to_string_lossy().into_owned(),
                })
            }
        }
    }
    for f in &files {
        fs::remove_file(f).map_err(io(format!("remove {}", f.display())))?;
    }
    // remove_dir, never remove_dir_all: what appeared since the check stays.
    for d in dirs.iter().chain([&dir]) {
        fs::remove_dir(d).map_err(io(format!("remove {}", d.display())))?;
    }
    Ok(())
}

/// Whether an entry of a container's directory may go: `Some(true)` an
/// empty directory, `Some(false)` the config, cairn's temporary file or an
/// empty file, `None` anything else.
fn removable(entry: &fs::DirEntry) -> std::io::Result<Option<bool>> {
    let kind = entry.file_type()?;
    let name = entry.file_name();
    if kind.is_dir() {
        let empty = fs::read_dir(entry.path())?.next().is_none();
        return Ok(empty.then_some(true));
    }
    let ours = name == "config" || name.to_string_lossy().starts_with(TEMP_PREFIX);
    Ok((kind.is_file() && (ours || entry.metadata()?.len() == 0)).then_some(false))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::scratch;
    use super::*;

    const DEFAULT_CONF: &str = "\
lxc.net.0.type = veth
lxc.net.0.link = lxcbr0
lxc.net.0.flags = up

lxc.apparmor.profile = generated
lxc.apparmor.allow_nesting = 1
";

    fn new(name: &str, source: RootfsSource, autostart: bool) -> NewConfig {
        NewConfig {
            name: name.to_owned(),
            rootfs_device: PathBuf::from(format!("/dev/DRBDVG2/{name}")),
            autostart,
            source,
        }
    }

    #[test]
    fn busybox_config_golden() {
        let text = render(&new("c1", RootfsSource::Busybox, true), DEFAULT_CONF);
        assert_eq!(
            text,
            "\
# Written by cairn for container c1: the config lxc-create -B lvm would write.

lxc.net.0.type = veth
lxc.net.0.link = lxcbr0
lxc.net.0.flags = up

lxc.apparmor.profile = generated
lxc.apparmor.allow_nesting = 1
lxc.rootfs.path = lvm:/dev/DRBDVG2/c1
lxc.uts.name = c1
lxc.signal.halt = SIGUSR1
lxc.signal.reboot = SIGTERM
lxc.autodev = 1
lxc.tty.max = 5
lxc.pty.max = 1
lxc.cap.drop = sys_module mac_admin mac_override sys_time
lxc.mount.auto = cgroup:mixed proc:mixed sys:ro
lxc.mount.entry = shm dev/shm tmpfs defaults,create=dir 0 0
lxc.mount.entry = mqueue dev/mqueue mqueue defaults,optional,create=dir 0 0
lxc.mount.entry = /sys/kernel/security sys/kernel/security none ro,bind,optional 0 0
lxc.start.auto = 1
"
        );
    }

    #[test]
    fn tarball_config_golden() {
        let src = RootfsSource::Tarball(PathBuf::from("/srv/debian.tar.xz"));
        let text = render(&new("web", src, false), "lxc.net.0.type = empty");
        assert_eq!(
            text,
            "\
# Written by cairn for container web: the config lxc-create -B lvm would write.

lxc.net.0.type = empty
lxc.rootfs.path = lvm:/dev/DRBDVG2/web
lxc.uts.name = web
lxc.include = /usr/share/lxc/config/common.conf
"
        );
    }

    #[test]
    fn write_then_read_back() {
        let tmp = scratch("rw");
        let lxcpath = tmp.join("lxc");
        let text = render(&new("c1", RootfsSource::Busybox, true), DEFAULT_CONF);
        let path = write_config(&lxcpath, "c1", &text).unwrap();
        assert_eq!(path, lxcpath.join("c1/config"));
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&lxcpath.join("c1")), 0o770);
        assert_eq!(mode(&path), 0o640);
        assert_eq!(mode(&lxcpath.join("c1/rootfs")), 0o755);
        assert_eq!(
            fs::read_dir(lxcpath.join("c1")).unwrap().count(),
            2,
            "config and rootfs only"
        );

        let c = read_config(&lxcpath, "c1").unwrap().unwrap();
        assert_eq!(
            c,
            ContainerConfig {
                name: "c1".into(),
                rootfs_path: Some("lvm:/dev/DRBDVG2/c1".into()),
                rootfs_device: Some("/dev/DRBDVG2/c1".into()),
                start_auto: true,
                start_order: None,
            }
        );
        // Rewriting replaces the file.
        write_config(&lxcpath, "c1", "lxc.start.auto = 0\n").unwrap();
        assert!(!read_config(&lxcpath, "c1").unwrap().unwrap().start_auto);
        assert_eq!(read_config(&lxcpath, "nope").unwrap(), None);
        assert!(write_config(&lxcpath, "../evil", "").is_err());
    }

    #[test]
    fn parse_rules() {
        let text = "\
  # a comment
lxc.rootfs.path = dir:/var/lib/lxc/x/rootfs
lxc.start.auto=1
   lxc.start.order   =   -5
lxc.uts.name = \"x\"
lxc.rootfs.path = '/dev/vg/x'
lxc.start.auto =
";
        let c = parse("x", text).unwrap();
        assert_eq!(
            c.rootfs_path.as_deref(),
            Some("/dev/vg/x"),
            "last wins, quotes stripped"
        );
        assert_eq!(
            c.rootfs_device,
            Some(PathBuf::from("/dev/vg/x")),
            "bare /dev path"
        );
        assert!(!c.start_auto, "an empty value clears");
        assert_eq!(c.start_order, Some(-5));

        let dir = parse("x", "lxc.rootfs.path = dir:/srv/x\n").unwrap();
        assert_eq!(
            (dir.rootfs_path.as_deref(), dir.rootfs_device),
            (Some("dir:/srv/x"), None)
        );
        assert_eq!(parse("x", "\n\nlxc.start.order = soon\n").unwrap_err().0, 3);
        assert!(parse("x", "lxc.start.auto = 2")
            .unwrap_err()
            .1
            .contains("0 or 1"));
        assert!(parse("x", "garbage").is_err());
    }

    #[test]
    fn bad_config_names_file_and_line() {
        let lxcpath = scratch("bad");
        write_config(&lxcpath, "b", "# ok\nlxc.start.order = x\n").unwrap();
        let e = read_config(&lxcpath, "b").unwrap_err().to_string();
        assert!(e.contains("container b") && e.contains("b/config:2"), "{e}");
    }

    #[test]
    fn list_sorted_with_config_only() {
        let lxcpath = scratch("list");
        assert_eq!(list(&lxcpath.join("missing")).unwrap(), vec![]);
        for name in ["zeta", "alpha", "mid"] {
            write_config(
                &lxcpath,
                name,
                &format!("lxc.start.order = {}\n", name.len()),
            )
            .unwrap();
        }
        fs::create_dir(lxcpath.join("noconfig")).unwrap();
        fs::write(lxcpath.join("stray-file"), "x").unwrap();
        let names: Vec<_> = list(&lxcpath)
            .unwrap()
            .into_iter()
            .map(|c| (c.name, c.start_order))
            .collect();
        assert_eq!(
            names,
            [
                ("alpha".into(), Some(5)),
                ("mid".into(), Some(3)),
                ("zeta".into(), Some(4))
            ]
        );
    }

    #[test]
    fn remove_only_what_is_ours() {
        let lxcpath = scratch("rm");
        write_config(&lxcpath, "c1", "x = 1\n").unwrap();
        fs::write(lxcpath.join("c1/empty.log"), "").unwrap();
        fs::write(lxcpath.join("c1/rootfs/data"), "user data").unwrap();
        let e = remove_config(&lxcpath, "c1").unwrap_err();
        assert!(
            matches!(&e, LxcError::NotOurs { entry, .. } if entry == "rootfs"),
            "{e}"
        );
        assert!(lxcpath.join("c1/config").exists(), "nothing removed");

        fs::remove_file(lxcpath.join("c1/rootfs/data")).unwrap();
        fs::write(lxcpath.join("c1/notes"), "mine").unwrap();
        assert!(remove_config(&lxcpath, "c1").is_err());
        fs::remove_file(lxcpath.join("c1/notes")).unwrap();

        remove_config(&lxcpath, "c1").unwrap();
        assert!(!lxcpath.join("c1").exists());
        remove_config(&lxcpath, "c1").unwrap();
    }
}
