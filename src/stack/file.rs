//! The stack file: one TOML file that describes the whole stack (PVs, VGs,
//! LVs with their cache, DRBD resources, thin pools, containers). This
//! module owns its syntax and its checks; every error names the file, the
//! line and what to fix, and is found before anything is changed.
//!
//! docs/stack.md is the reference of every key.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::units::{self, Size};

/// Where `cairn up`, `down` and `status` look when no file is given.
pub const DEFAULT_PATH: &str = "/etc/cairn/stack.toml";

/// An error in a stack file, at a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct FileError {
    /// The stack file's path.
    pub file: String,
    /// The line at fault, from 1.
    pub line: usize,
    /// What is wrong there and what to write instead.
    pub message: String,
    /// Why the file could not be read at all (then `line` is 0).
    pub unreadable: Option<std::io::ErrorKind>,
}

// ---------------------------------------------------------------------------
// The file as written (serde); spans give the lines for later checks.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    host: Option<RawHost>,
    #[serde(default)]
    vg: Vec<Spanned<RawVg>>,
    #[serde(default)]
    drbd: Vec<Spanned<RawDrbd>>,
    #[serde(default)]
    container: Vec<Spanned<RawContainer>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: Option<Spanned<String>>,
    lxc_path: Option<Spanned<String>>,
    drbd_config_dir: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVg {
    name: Spanned<String>,
    pvs: Spanned<Vec<Spanned<String>>>,
    extent_size: Option<Spanned<String>>,
    #[serde(default)]
    lv: Vec<Spanned<RawLv>>,
    #[serde(default)]
    thinpool: Vec<Spanned<RawThinPool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLv {
    name: Spanned<String>,
    size: Spanned<String>,
    #[serde(default)]
    pvs: Vec<Spanned<String>>,
    cache: Option<Spanned<RawCache>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    pool: Option<Spanned<String>>,
    size: Spanned<String>,
    metadata: Option<Spanned<String>>,
    chunk: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    policy: Option<Spanned<String>>,
    #[serde(default)]
    pvs: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThinPool {
    name: Spanned<String>,
    size: Spanned<String>,
    metadata: Option<Spanned<String>>,
    chunk: Option<Spanned<String>>,
    autoextend_threshold: Option<Spanned<i64>>,
    autoextend_percent: Option<Spanned<i64>>,
    #[serde(default)]
    pvs: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDrbd {
    name: Spanned<String>,
    minor: Spanned<i64>,
    disk: Option<Spanned<String>>,
    stacked_on: Option<Spanned<String>>,
    address: Spanned<String>,
    protocol: Option<Spanned<String>>,
    peer: Option<Spanned<RawPeer>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    host: Spanned<String>,
    address: Spanned<String>,
    minor: Option<Spanned<i64>>,
    disk: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContainer {
    name: Spanned<String>,
    size: Spanned<String>,
    pool: Option<Spanned<String>>,
    #[serde(default)]
    autostart: bool,
    rootfs: Option<Spanned<String>>,
}

// ---------------------------------------------------------------------------
// The checked stack.

/// How big an LV or pool is to be. A share of free space is resolved when
/// the LV is created and not revisited (the space is then gone).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SizeSpec {
    /// A size in bytes.
    Bytes(u64),
    /// A share of the VG's free space, in percent (`100%FREE`).
    PercentFree(f64),
}

impl fmt::Display for SizeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeSpec::Bytes(b) => f.write_str(&units::human(*b)),
            SizeSpec::PercentFree(p) => write!(f, "{p}%FREE"),
        }
    }
}

/// What a PV path (or a DRBD backing disk) is: a device from outside the
/// file, or a device the file itself makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// A device the stack does not make (an md RAID, a disk, a loop device).
    External,
    /// An LV the file defines.
    Lv { vg: String, lv: String },
    /// A DRBD resource the file defines.
    Drbd(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub path: PathBuf,
    pub provider: Provider,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cache {
    /// The cache pool's name as created (attached, lvm2 hides it as
    /// `<pool>_cpool`).
    pub pool: String,
    pub size: u64,
    pub metadata: Option<u64>,
    pub chunk: Option<u64>,
    pub mode: String,
    pub policy: String,
    pub pvs: Vec<PathBuf>,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Lv {
    pub name: String,
    pub size: SizeSpec,
    pub pvs: Vec<PathBuf>,
    pub cache: Option<Cache>,
    pub line: usize,
}

/// lvm.conf's thin_pool_autoextend_threshold and _percent, per pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoExtend {
    pub threshold: u32,
    pub percent: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ThinPool {
    pub name: String,
    pub size: SizeSpec,
    pub metadata: Option<u64>,
    pub chunk: Option<u64>,
    pub autoextend: Option<AutoExtend>,
    pub pvs: Vec<PathBuf>,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Vg {
    pub name: String,
    pub pvs: Vec<Device>,
    pub extent_size: u64,
    pub lvs: Vec<Lv>,
    pub thinpools: Vec<ThinPool>,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub host: String,
    pub address: SocketAddr,
    pub minor: u32,
    pub disk: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drbd {
    pub name: String,
    pub minor: u32,
    /// The backing device: the file's `disk`, or the lower resource's
    /// DRBD device when stacked.
    pub disk: Device,
    pub stacked_on: Option<String>,
    pub address: SocketAddr,
    pub protocol: char,
    pub peer: Option<Peer>,
    pub line: usize,
}

impl Drbd {
    pub fn device(&self) -> PathBuf {
        drbd_device(self.minor)
    }
}

/// Where a container's root filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rootfs {
    Busybox,
    Tarball(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    pub name: String,
    pub size: u64,
    pub vg: String,
    pub pool: String,
    pub autostart: bool,
    pub rootfs: Rootfs,
    pub line: usize,
}

/// One node of the stack's dependency graph, in the order of bring-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Node {
    Vg(usize),
    Drbd(usize),
}

/// A checked stack file.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    pub path: PathBuf,
    /// This node's name in DRBD's `on` sections.
    pub host: String,
    pub lxc_path: PathBuf,
    /// Where the drbd-utils resource files go (drbd.conf includes *.res there).
    pub drbd_config_dir: PathBuf,
    pub vgs: Vec<Vg>,
    pub drbd: Vec<Drbd>,
    pub containers: Vec<Container>,
    /// VGs and DRBD resources, each after everything it stands on.
    pub order: Vec<Node>,
}

impl Stack {
    pub fn vg(&self, name: &str) -> Option<&Vg> {
        self.vgs.iter().find(|v| v.name == name)
    }

    pub fn drbd(&self, name: &str) -> Option<&Drbd> {
        self.drbd.iter().find(|d| d.name == name)
    }

    /// Thin pools as (VG, pool).
    pub fn thinpools(&self) -> impl Iterator<Item = (&Vg, &ThinPool)> {
        self.vgs
            .iter()
            .flat_map(|vg| vg.thinpools.iter().map(move |p| (vg, p)))
    }

    /// The pool a container goes to when none is named: the file's only one.
    pub fn default_pool(&self) -> Option<(String, String)> {
        let mut pools = self.thinpools();
        let (vg, pool) = pools.next()?;
        pools
            .next()
            .is_none()
            .then(|| (vg.name.clone(), pool.name.clone()))
    }

    pub fn node_name(&self, node: Node) -> String {
        match node {
            Node::Vg(i) => format!("VG {}", self.vgs[i].name),
            Node::Drbd(i) => format!("DRBD resource {}", self.drbd[i].name),
        }
    }
}

pub fn drbd_device(minor: u32) -> PathBuf {
    PathBuf::from(format!("/dev/drbd{minor}"))
}

/// Reads and checks a stack file.
pub fn load(path: &Path) -> Result<Stack, FileError> {
    let text = std::fs::read_to_string(path).map_err(|e| FileError {
        file: path.display().to_string(),
        line: 0,
        message: format!("cannot read it: {e}"),
        unreadable: Some(e.kind()),
    })?;
    parse(path, &text)
}

/// Checks a stack file's text; `path` names it in errors.
pub fn parse(path: &Path, text: &str) -> Result<Stack, FileError> {
    let ctx = Ctx {
        file: path.display().to_string(),
        text,
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(0, |s| ctx.line(s.start));
        FileError {
            file: ctx.file.clone(),
            line,
            message: e.message().trim().to_owned(),
            unreadable: None,
        }
    })?;
    ctx.check(path, raw)
}

struct Ctx<'a> {
    file: String,
    text: &'a str,
}

type Checked<T> = Result<T, FileError>;

impl Ctx<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .bytes()
            .filter(|b| *b == b'\n')
            .count()
            + 1
    }

    fn at<T>(&self, spanned: &Spanned<T>, message: impl Into<String>) -> FileError {
        FileError {
            file: self.file.clone(),
            line: self.line(spanned.span().start),
            message: message.into(),
            unreadable: None,
        }
    }

    fn size(&self, s: &Spanned<String>, what: &str, percent_ok: bool) -> Checked<SizeSpec> {
        match units::parse_size(s.get_ref(), 1 << 20) {
            Ok(Size::Bytes(0)) => Err(self.at(s, format!("{what} must be more than 0"))),
            Ok(Size::Bytes(b)) => Ok(SizeSpec::Bytes(b)),
            Ok(Size::PercentFree(p)) if percent_ok => Ok(SizeSpec::PercentFree(p)),
            Ok(Size::PercentFree(_)) => Err(self.at(
                s,
                format!("{what} must be a size (such as 16M), not a share of free space"),
            )),
            Err(e) => Err(self.at(s, format!("{what}: {e}"))),
        }
    }

    fn bytes(&self, s: &Spanned<String>, what: &str) -> Checked<u64> {
        match self.size(s, what, false)? {
            SizeSpec::Bytes(b) => Ok(b),
            SizeSpec::PercentFree(_) => unreachable!("percentages refused above"),
        }
    }

    fn opt_bytes(&self, s: &Option<Spanned<String>>, what: &str) -> Checked<Option<u64>> {
        s.as_ref().map(|s| self.bytes(s, what)).transpose()
    }

    /// A chunk size: bare numbers in KiB (as lvm2's -c), a multiple of 32 KiB.
    fn chunk(&self, s: &Option<Spanned<String>>) -> Checked<Option<u64>> {
        let Some(s) = s else { return Ok(None) };
        match units::parse_size(s.get_ref(), 1 << 10) {
            Ok(Size::Bytes(b)) if b >= 32 << 10 && b % (32 << 10) == 0 => Ok(Some(b)),
            Ok(_) => Err(self.at(s, "chunk must be a multiple of 32K (such as 64K or 512K)")),
            Err(e) => Err(self.at(s, format!("chunk: {e}"))),
        }
    }

    fn name(&self, s: &Spanned<String>, what: &str) -> Checked<String> {
        crate::meta::ops::check_lv_name(s.get_ref())
            .map_err(|e| self.at(s, format!("{what} {:?}: {e}", s.get_ref())))?;
        Ok(s.get_ref().clone())
    }

    fn paths(&self, list: &[Spanned<String>], what: &str) -> Checked<Vec<PathBuf>> {
        list.iter()
            .map(|p| {
                if !p.get_ref().starts_with("/dev/") {
                    return Err(self.at(
                        p,
                        format!("{what} {:?} must be a path under /dev", p.get_ref()),
                    ));
                }
                // It is written into DRBD resource files and opened.
                crate::names::config_path(p.get_ref())
                    .map_err(|why| self.at(p, format!("{what} {:?}: {why}", p.get_ref())))?;
                Ok(PathBuf::from(p.get_ref()))
            })
            .collect()
    }

    fn check(&self, path: &Path, raw: RawFile) -> Checked<Stack> {
        // The host name goes into DRBD resource files (`on HOST {`).
        let host = match raw.host.as_ref().and_then(|h| h.name.as_ref()) {
            Some(h) if h.get_ref().is_empty() => return Err(self.at(h, "host name is empty")),
            Some(h) => {
                crate::names::host(h.get_ref())
                    .map_err(|why| self.at(h, format!("host name {:?}: {why}", h.get_ref())))?;
                h.get_ref().clone()
            }
            None => {
                let node = nix::sys::utsname::uname()
                    .map(|u| u.nodename().to_string_lossy().into_owned())
                    .unwrap_or_default();
                match (raw.drbd.first(), crate::names::host(&node)) {
                    (Some(d), Err(why)) => {
                        return Err(self.at(
                            d,
                            format!(
                                "this machine's name {node:?} (uname) cannot name it in DRBD's \
                                 resource files ({why}): give `name` in [host]"
                            ),
                        ))
                    }
                    _ => node,
                }
            }
        };
        let dir = |v: Option<&Spanned<String>>, default: &str| -> Checked<PathBuf> {
            match v {
                Some(p) if !p.get_ref().starts_with('/') => {
                    Err(self.at(p, "give an absolute path"))
                }
                Some(p) => {
                    crate::names::config_path(p.get_ref())
                        .map_err(|why| self.at(p, format!("{:?}: {why}", p.get_ref())))?;
                    Ok(PathBuf::from(p.get_ref()))
                }
                None => Ok(PathBuf::from(default)),
            }
        };
        let lxc_path = dir(
            raw.host.as_ref().and_then(|h| h.lxc_path.as_ref()),
            crate::lxc::DEFAULT_LXC_PATH,
        )?;
        let drbd_config_dir = dir(
            raw.host.as_ref().and_then(|h| h.drbd_config_dir.as_ref()),
            "/etc/drbd.d",
        )?;

        let mut vgs = Vec::new();
        for v in &raw.vg {
            vgs.push(self.vg(v)?);
        }
        self.unique(raw.vg.iter().map(|v| &v.get_ref().name), "VG")?;
        let mut drbd = Vec::new();
        for d in &raw.drbd {
            drbd.push(self.drbd(d, &raw.drbd)?);
        }
        self.unique(raw.drbd.iter().map(|d| &d.get_ref().name), "DRBD resource")?;
        let mut stack = Stack {
            path: path.to_path_buf(),
            host,
            lxc_path,
            drbd_config_dir,
            vgs,
            drbd,
            containers: Vec::new(),
            order: Vec::new(),
        };
        self.resolve_providers(&mut stack, &raw)?;
        stack.order = self.order(&stack, &raw)?;
        for c in &raw.container {
            let container = self.container(c, &stack)?;
            stack.containers.push(container);
        }
        self.unique(raw.container.iter().map(|c| &c.get_ref().name), "container")?;
        Ok(stack)
    }

    fn unique<'s>(
        &self,
        names: impl Iterator<Item = &'s Spanned<String>>,
        what: &str,
    ) -> Checked<()> {
        let mut seen = BTreeMap::new();
        for n in names {
            if let Some(first) = seen.insert(n.get_ref().clone(), self.line(n.span().start)) {
                return Err(self.at(
                    n,
                    format!(
                        "{what} {:?} is defined twice (first at line {first}): give each its own name",
                        n.get_ref()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn vg(&self, v: &Spanned<RawVg>) -> Checked<Vg> {
        let raw = v.get_ref();
        crate::meta::ops::check_name(raw.name.get_ref())
            .map_err(|e| self.at(&raw.name, format!("VG name {:?}: {e}", raw.name.get_ref())))?;
        if raw.pvs.get_ref().is_empty() {
            return Err(self.at(&raw.pvs, "a VG needs at least one PV in `pvs`"));
        }
        let pvs = self
            .paths(raw.pvs.get_ref(), "PV")?
            .into_iter()
            .zip(raw.pvs.get_ref())
            .map(|(path, s)| Device {
                path,
                provider: Provider::External,
                line: self.line(s.span().start),
            })
            .collect::<Vec<_>>();
        self.unique(raw.pvs.get_ref().iter(), "PV")?;
        let extent_size = match &raw.extent_size {
            None => 4 << 20,
            Some(s) => {
                let b = self.bytes(s, "extent_size")?;
                if !b.is_power_of_two() || b < 4096 {
                    return Err(self.at(
                        s,
                        "extent_size must be a power of two of at least 4K (lvm2's default: 4M)",
                    ));
                }
                b
            }
        };
        let vg_pvs: Vec<&PathBuf> = pvs.iter().map(|d| &d.path).collect();
        let on_vg = |list: &[Spanned<String>], what: &str| -> Checked<Vec<PathBuf>> {
            let paths = self.paths(list, what)?;
            for (p, s) in paths.iter().zip(list) {
                if !vg_pvs.contains(&p) {
                    return Err(self.at(
                        s,
                        format!(
                            "{} is not a PV of VG {}: add it to the VG's `pvs` or leave it out here",
                            p.display(),
                            raw.name.get_ref()
                        ),
                    ));
                }
            }
            Ok(paths)
        };
        let mut lvs = Vec::new();
        for l in &raw.lv {
            let r = l.get_ref();
            let cache = match &r.cache {
                None => None,
                Some(c) => {
                    let rc = c.get_ref();
                    let pool = match &rc.pool {
                        Some(p) => self.name(p, "cache pool name")?,
                        None => format!("{}_cachepool", r.name.get_ref()),
                    };
                    let mode = match &rc.mode {
                        None => "writethrough".to_owned(),
                        Some(m) => match m.get_ref().as_str() {
                            "writethrough" | "writeback" | "passthrough" => m.get_ref().clone(),
                            other => {
                                return Err(self.at(
                                    m,
                                    format!("cache mode {other:?}: give writethrough, writeback or passthrough"),
                                ))
                            }
                        },
                    };
                    let policy = match &rc.policy {
                        None => "smq".to_owned(),
                        Some(p) => match p.get_ref().as_str() {
                            "smq" | "mq" => p.get_ref().clone(),
                            other => {
                                return Err(
                                    self.at(p, format!("cache policy {other:?}: give smq or mq"))
                                )
                            }
                        },
                    };
                    Some(Cache {
                        pool,
                        size: self.bytes(&rc.size, "cache size")?,
                        metadata: self.opt_bytes(&rc.metadata, "cache metadata")?,
                        chunk: self.chunk(&rc.chunk)?,
                        mode,
                        policy,
                        pvs: on_vg(&rc.pvs, "cache PV")?,
                        line: self.line(c.span().start),
                    })
                }
            };
            lvs.push(Lv {
                name: self.name(&r.name, "LV name")?,
                size: self.size(&r.size, "size", true)?,
                pvs: on_vg(&r.pvs, "PV")?,
                cache,
                line: self.line(l.span().start),
            });
        }
        let mut thinpools = Vec::new();
        for p in &raw.thinpool {
            let r = p.get_ref();
            let percent = |v: &Option<Spanned<i64>>, what: &str, range: (i64, i64)| {
                v.as_ref()
                    .map(|v| {
                        let n = *v.get_ref();
                        if n < range.0 || n > range.1 {
                            Err(self.at(
                                v,
                                format!("{what} must be between {} and {}", range.0, range.1),
                            ))
                        } else {
                            Ok(n as u32)
                        }
                    })
                    .transpose()
            };
            // lvm.conf's semantics: a threshold of 100 turns auto-extension off.
            let threshold = percent(&r.autoextend_threshold, "autoextend_threshold", (50, 100))?;
            let pct = percent(&r.autoextend_percent, "autoextend_percent", (1, 1000))?;
            let autoextend = match (threshold, pct) {
                (None, None) => None,
                (Some(t), Some(p)) => Some(AutoExtend {
                    threshold: t,
                    percent: p,
                }),
                _ => {
                    let given = r
                        .autoextend_threshold
                        .as_ref()
                        .or(r.autoextend_percent.as_ref())
                        .expect("one of the two is given");
                    return Err(self.at(
                        given,
                        "give autoextend_threshold and autoextend_percent together (the seed: 50 and 10)",
                    ));
                }
            };
            thinpools.push(ThinPool {
                name: self.name(&r.name, "thin pool name")?,
                size: self.size(&r.size, "size", true)?,
                metadata: self.opt_bytes(&r.metadata, "metadata")?,
                chunk: self.chunk(&r.chunk)?,
                autoextend,
                pvs: on_vg(&r.pvs, "PV")?,
                line: self.line(p.span().start),
            });
        }
        let names = raw
            .lv
            .iter()
            .map(|l| &l.get_ref().name)
            .chain(raw.thinpool.iter().map(|p| &p.get_ref().name))
            .chain(
                raw.lv
                    .iter()
                    .filter_map(|l| l.get_ref().cache.as_ref()?.get_ref().pool.as_ref()),
            );
        self.unique(names, &format!("LV of VG {}", raw.name.get_ref()))?;
        Ok(Vg {
            name: raw.name.get_ref().clone(),
            pvs,
            extent_size,
            lvs,
            thinpools,
            line: self.line(v.span().start),
        })
    }

    fn drbd(&self, d: &Spanned<RawDrbd>, all: &[Spanned<RawDrbd>]) -> Checked<Drbd> {
        let r = d.get_ref();
        let name = r.name.get_ref();
        // It becomes <drbd_config_dir>/NAME.res and a word of that file.
        crate::names::drbd_resource(name).map_err(|why| {
            self.at(
                &r.name,
                format!("DRBD resource name {name:?}: {why} (use letters, digits and - _ . +)"),
            )
        })?;
        let minor = *r.minor.get_ref();
        if !(0..=1_048_575).contains(&minor) {
            return Err(self.at(
                &r.minor,
                "minor must be between 0 and 1048575 (/dev/drbdMINOR)",
            ));
        }
        let address = self.address(&r.address)?;
        let protocol = match &r.protocol {
            None => 'C',
            Some(p) => match p.get_ref().as_str() {
                "A" | "B" | "C" => p.get_ref().chars().next().expect("one letter"),
                other => return Err(self.at(p, format!("protocol {other:?}: give A, B or C"))),
            },
        };
        let disk =
            match (&r.disk, &r.stacked_on) {
                (Some(disk), None) => Device {
                    path: self.paths(std::slice::from_ref(disk), "disk")?.remove(0),
                    provider: Provider::External,
                    line: self.line(disk.span().start),
                },
                (None, Some(lower)) => {
                    let Some(l) = all
                        .iter()
                        .find(|o| o.get_ref().name.get_ref() == lower.get_ref())
                    else {
                        return Err(self.at(
                            lower,
                            format!(
                                "stacked_on {:?}: no [[drbd]] of that name in this file",
                                lower.get_ref()
                            ),
                        ));
                    };
                    let lower_minor = *l.get_ref().minor.get_ref();
                    Device {
                        path: drbd_device(lower_minor.clamp(0, u32::MAX as i64) as u32),
                        provider: Provider::Drbd(lower.get_ref().clone()),
                        line: self.line(lower.span().start),
                    }
                }
                (Some(disk), Some(_)) => return Err(self.at(
                    disk,
                    "a stacked resource's disk is the lower resource's device: leave out `disk`",
                )),
                (None, None) => {
                    return Err(self.at(
                        d,
                        format!("DRBD resource {name}: give `disk` or `stacked_on`"),
                    ))
                }
            };
        let peer = match &r.peer {
            None => None,
            Some(p) => {
                let rp = p.get_ref();
                if rp.host.get_ref().is_empty() {
                    return Err(self.at(&rp.host, "peer host is empty"));
                }
                crate::names::host(rp.host.get_ref()).map_err(|why| {
                    self.at(
                        &rp.host,
                        format!("peer host {:?}: {why}", rp.host.get_ref()),
                    )
                })?;
                if let Some(disk) = &rp.disk {
                    crate::names::config_path(disk.get_ref()).map_err(|why| {
                        self.at(disk, format!("peer disk {:?}: {why}", disk.get_ref()))
                    })?;
                }
                let peer_minor = match &rp.minor {
                    None => minor as u32,
                    Some(m) if (0..=1_048_575).contains(m.get_ref()) => *m.get_ref() as u32,
                    Some(m) => return Err(self.at(m, "peer minor must be between 0 and 1048575")),
                };
                Some(Peer {
                    host: rp.host.get_ref().clone(),
                    address: self.address(&rp.address)?,
                    minor: peer_minor,
                    disk: rp
                        .disk
                        .as_ref()
                        .map(|s| s.get_ref().clone())
                        .unwrap_or_else(|| "/dev/null".into()),
                })
            }
        };
        Ok(Drbd {
            name: name.clone(),
            minor: minor as u32,
            disk,
            stacked_on: r.stacked_on.as_ref().map(|s| s.get_ref().clone()),
            address,
            protocol,
            peer,
            line: self.line(d.span().start),
        })
    }

    fn address(&self, s: &Spanned<String>) -> Checked<SocketAddr> {
        s.get_ref().parse().map_err(|_| {
            self.at(
                s,
                format!(
                    "address {:?}: give IP:PORT, such as 127.0.0.1:7789",
                    s.get_ref()
                ),
            )
        })
    }

    /// Which PVs and DRBD disks are devices the file makes itself.
    fn resolve_providers(&self, stack: &mut Stack, raw: &RawFile) -> Checked<()> {
        let lv_paths: BTreeMap<PathBuf, (String, String)> = stack
            .vgs
            .iter()
            .flat_map(|vg| {
                vg.lvs.iter().flat_map(move |lv| {
                    [
                        crate::lvm::names::lv_path(&vg.name, &lv.name),
                        crate::lvm::activate::mapper_path(&crate::lvm::names::dm_name(
                            &vg.name, &lv.name, None,
                        )),
                    ]
                    .map(|p| (PathBuf::from(p), (vg.name.clone(), lv.name.clone())))
                })
            })
            .collect();
        let drbd_paths: BTreeMap<PathBuf, String> = stack
            .drbd
            .iter()
            .map(|d| (d.device(), d.name.clone()))
            .collect();
        let pools: Vec<PathBuf> = stack
            .thinpools()
            .flat_map(|(vg, p)| {
                [
                    crate::lvm::names::lv_path(&vg.name, &p.name),
                    crate::lvm::activate::mapper_path(&crate::lvm::names::dm_name(
                        &vg.name, &p.name, None,
                    )),
                ]
                .map(PathBuf::from)
            })
            .collect();
        let provider = |dev: &Device| -> Checked<Provider> {
            if let Some((vg, lv)) = lv_paths.get(&dev.path) {
                return Ok(Provider::Lv {
                    vg: vg.clone(),
                    lv: lv.clone(),
                });
            }
            if let Some(name) = drbd_paths.get(&dev.path) {
                return Ok(Provider::Drbd(name.clone()));
            }
            if pools.contains(&dev.path) {
                return Err(FileError {
                    file: self.file.clone(),
                    line: dev.line,
                    message: format!(
                        "{} is a thin pool: a PV or DRBD disk goes on an LV or a device",
                        dev.path.display()
                    ),
                    unreadable: None,
                });
            }
            // /dev/drbdN (Path::starts_with compares whole components).
            let drbd_minor = dev
                .path
                .to_str()
                .and_then(|p| p.strip_prefix("/dev/drbd"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if drbd_minor {
                return Err(FileError {
                    file: self.file.clone(),
                    line: dev.line,
                    message: format!(
                        "{}: no [[drbd]] in this file has that device (minor); add the resource or fix the path",
                        dev.path.display()
                    ),
                    unreadable: None,
                });
            }
            Ok(Provider::External)
        };
        for vg in &mut stack.vgs {
            for pv in &mut vg.pvs {
                pv.provider = provider(pv)?;
            }
        }
        for d in &mut stack.drbd {
            if d.stacked_on.is_none() {
                d.disk.provider = provider(&d.disk)?;
            }
        }
        // One user per device: two VGs, or a VG and DRBD, on one device
        // would destroy each other.
        // An LV is one device under both its names (/dev/VG/LV, /dev/mapper/VG-LV).
        let mut users: BTreeMap<PathBuf, (usize, String)> = BTreeMap::new();
        let uses = stack
            .vgs
            .iter()
            .flat_map(|vg| vg.pvs.iter().map(move |p| (p, format!("VG {}", vg.name))))
            .chain(
                stack
                    .drbd
                    .iter()
                    .map(|d| (&d.disk, format!("DRBD resource {}", d.name))),
            );
        for (dev, user) in uses {
            let key = match &dev.provider {
                Provider::Lv { vg, lv } => PathBuf::from(crate::lvm::names::lv_path(vg, lv)),
                _ => dev.path.clone(),
            };
            if let Some((line, first)) = users.insert(key, (dev.line, user.clone())) {
                return Err(FileError {
                    file: self.file.clone(),
                    line: dev.line,
                    message: format!(
                        "{} is used by {user} and by {first} (line {line}): a device holds one of them",
                        dev.path.display()
                    ),
                    unreadable: None,
                });
            }
        }
        let minors = stack.drbd.iter().map(|d| (d.minor, d)).collect::<Vec<_>>();
        for (i, (m, d)) in minors.iter().enumerate() {
            if let Some((_, first)) = minors[..i].iter().find(|(o, _)| o == m) {
                return Err(FileError {
                    file: self.file.clone(),
                    line: d.line,
                    message: format!(
                        "minor {m} is used by {} and {}: give each resource its own",
                        first.name, d.name
                    ),
                    unreadable: None,
                });
            }
        }
        let _ = raw;
        Ok(())
    }

    /// VGs and DRBD resources in bring-up order (each after what it stands
    /// on); a cycle is an error naming its members.
    fn order(&self, stack: &Stack, _raw: &RawFile) -> Checked<Vec<Node>> {
        let node_of = |p: &Provider| -> Option<Node> {
            match p {
                Provider::External => None,
                Provider::Lv { vg, .. } => {
                    stack.vgs.iter().position(|v| &v.name == vg).map(Node::Vg)
                }
                Provider::Drbd(name) => stack
                    .drbd
                    .iter()
                    .position(|d| &d.name == name)
                    .map(Node::Drbd),
            }
        };
        let deps = |n: Node| -> Vec<Node> {
            match n {
                Node::Vg(i) => stack.vgs[i]
                    .pvs
                    .iter()
                    .filter_map(|p| node_of(&p.provider))
                    .collect(),
                Node::Drbd(i) => node_of(&stack.drbd[i].disk.provider).into_iter().collect(),
            }
        };
        let line_of = |n: Node| match n {
            Node::Vg(i) => stack.vgs[i].line,
            Node::Drbd(i) => stack.drbd[i].line,
        };
        let all: Vec<Node> = (0..stack.vgs.len())
            .map(Node::Vg)
            .chain((0..stack.drbd.len()).map(Node::Drbd))
            .collect();
        // Depth-first, in file order, so the order is the file's wherever
        // the dependencies allow it.
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let mut mark: BTreeMap<Node, Mark> = all.iter().map(|n| (*n, Mark::New)).collect();
        let mut order = Vec::new();
        fn visit(
            n: Node,
            deps: &dyn Fn(Node) -> Vec<Node>,
            mark: &mut BTreeMap<Node, Mark>,
            path: &mut Vec<Node>,
            order: &mut Vec<Node>,
        ) -> Result<(), Vec<Node>> {
            match mark[&n] {
                Mark::Done => return Ok(()),
                Mark::Open => {
                    let start = path.iter().position(|p| *p == n).unwrap_or(0);
                    return Err(path[start..].to_vec());
                }
                Mark::New => {}
            }
            mark.insert(n, Mark::Open);
            path.push(n);
            for d in deps(n) {
                visit(d, deps, mark, path, order)?;
            }
            path.pop();
            mark.insert(n, Mark::Done);
            order.push(n);
            Ok(())
        }
        for n in &all {
            let mut path = Vec::new();
            if let Err(cycle) = visit(*n, &deps, &mut mark, &mut path, &mut order) {
                let names = cycle
                    .iter()
                    .chain(cycle.first())
                    .map(|n| stack.node_name(*n))
                    .collect::<Vec<_>>()
                    .join(" -> ");
                return Err(FileError {
                    file: self.file.clone(),
                    line: line_of(cycle[0]),
                    message: format!(
                        "dependency cycle: {names}; each layer must stand on the ones defined below it"
                    ),
                    unreadable: None,
                });
            }
        }
        Ok(order)
    }

    fn container(&self, c: &Spanned<RawContainer>, stack: &Stack) -> Checked<Container> {
        let r = c.get_ref();
        crate::lxc::check_name(r.name.get_ref()).map_err(|e| self.at(&r.name, e.to_string()))?;
        crate::meta::ops::check_lv_name(r.name.get_ref()).map_err(|e| {
            self.at(
                &r.name,
                format!(
                    "container name {:?} cannot name its thin volume: {e}",
                    r.name.get_ref()
                ),
            )
        })?;
        let (vg, pool) = match &r.pool {
            Some(p) => {
                let Some((vg, pool)) = p.get_ref().split_once('/') else {
                    return Err(self.at(p, "pool: give VG/POOL, such as DRBDVG2/VPSthinpool"));
                };
                if !stack
                    .vg(vg)
                    .is_some_and(|v| v.thinpools.iter().any(|tp| tp.name == pool))
                {
                    return Err(self.at(
                        p,
                        format!(
                            "pool {:?}: no [[vg.thinpool]] {pool} in a [[vg]] {vg} of this file",
                            p.get_ref()
                        ),
                    ));
                }
                (vg.to_owned(), pool.to_owned())
            }
            None => stack.default_pool().ok_or_else(|| {
                self.at(
                    c,
                    "give the container a `pool = \"VG/POOL\"`: the file does not have exactly one thin pool",
                )
            })?,
        };
        let clash = stack.vg(&vg).is_some_and(|v| {
            v.lvs.iter().any(|l| {
                &l.name == r.name.get_ref()
                    || l.cache
                        .as_ref()
                        .is_some_and(|c| &c.pool == r.name.get_ref())
            }) || v.thinpools.iter().any(|p| &p.name == r.name.get_ref())
        });
        if clash {
            return Err(self.at(
                &r.name,
                format!(
                    "container {:?}: VG {vg} has an LV of that name in this file",
                    r.name.get_ref()
                ),
            ));
        }
        let rootfs = match &r.rootfs {
            None => Rootfs::Busybox,
            Some(s) if s.get_ref() == "busybox" => Rootfs::Busybox,
            Some(s) if s.get_ref().starts_with('/') => Rootfs::Tarball(PathBuf::from(s.get_ref())),
            Some(s) => {
                return Err(self.at(
                    s,
                    "rootfs: give \"busybox\" or the absolute path of a tarball",
                ))
            }
        };
        Ok(Container {
            name: r.name.get_ref().clone(),
            size: self.bytes(&r.size, "size")?,
            vg,
            pool,
            autostart: r.autostart,
            rootfs,
            line: self.line(c.span().start),
        })
    }
}

#[cfg(test)]
mod tests;
