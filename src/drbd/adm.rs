//! drbdadm's verbs for one resource of a drbd-utils configuration, without
//! drbdadm: `create-md`, `up`, `down`, `primary`, `secondary`, `resize`,
//! `status`. Each composes requests to the module (through
//! [`super::kernel::DrbdKernel`]: netlink's [`super::admin::Drbd`], or the
//! simulated [`super::sim::SimDrbd`] in host tests) and [`super::md`]
//! (the metadata), in drbdadm's order (docs/research/drbd84.md §2): up is
//! new-resource, new-minor, apply-al, attach, then connect when the
//! resource has a peer. A step that fails undoes what this call did, so no
//! half-configured resource is left behind.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use super::admin::{DiskConf, DrbdError, MinorStatus, Resize};
use super::config::{Config, ConfigError, Host, Resource};
use super::kernel::DrbdKernel;
use super::md::{MdDevice, MdError, Superblock, SECTOR};
use crate::blockdev::DeviceError;
use crate::error::{ErrorKind, Refusal};
use crate::signature::SignatureError;

/// Why a drbdadm verb failed.
#[derive(Debug, thiserror::Error)]
pub enum AdmError {
    /// The drbd-utils configuration (drbd.conf and its includes) could not be read or parsed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The kernel refused or failed a generic netlink request.
    #[error(transparent)]
    Drbd(#[from] DrbdError),
    /// Reading or writing the on-disk DRBD metadata failed.
    #[error(transparent)]
    Md(#[from] MdError),
    /// Probing the backing device for an existing signature failed.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// cairn refused the verb before touching anything.
    #[error("resource {resource}: {refusal}")]
    Refused {
        /// The resource's name in the configuration.
        resource: String,
        /// Why, with a machine-readable kind.
        refusal: Refusal,
    },
    /// The verb failed, and undoing the steps it had already taken failed too:
    /// the resource may be half configured.
    #[error("{failed}; undoing what this call did failed too: {undo}")]
    UndoFailed {
        /// The first failure.
        failed: Box<AdmError>,
        /// What went wrong while undoing.
        undo: String,
    },
}

impl AdmError {
    fn refused(resource: &str, kind: ErrorKind, why: impl Into<String>) -> AdmError {
        AdmError::Refused {
            resource: resource.to_owned(),
            refusal: Refusal::new(kind, why),
        }
    }
}

/// Result of a drbdadm verb.
pub type Result<T> = std::result::Result<T, AdmError>;

/// Where the configuration is and which host this is.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The drbd-utils configuration file (default /etc/drbd.conf).
    pub config: PathBuf,
    /// This host's name as `on NAME { }` sections spell it (default: uname's nodename).
    pub hostname: String,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            config: PathBuf::from(super::config::DEFAULT_CONF),
            hostname: nix::sys::utsname::uname()
                .map(|u| u.nodename().to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }
}

/// One resource, resolved for this host.
#[derive(Debug, Clone)]
pub struct Target {
    /// The resource as the configuration defines it.
    pub resource: Resource,
    /// This host's `on` (or `stacked-on-top-of`) section.
    pub local: Host,
    /// The DRBD minor: /dev/drbdMINOR.
    pub minor: u32,
    /// The backing device (for a stacked resource, the lower one's DRBD device).
    pub disk: String,
    /// The other host's section; `None` for a resource without a peer.
    pub peer: Option<Host>,
}

impl Setup {
    /// Resolves `name`; `stacked` must be given for a stacked resource and
    /// only for one, as drbdadm insists.
    pub fn target(&self, name: &str, stacked: bool) -> Result<Target> {
        let config = Config::load(&self.config)?;
        self.target_in(&config, name, stacked)
    }

    /// Resolves `name` in an already loaded `config`, as [`Setup::target`].
    pub fn target_in(&self, config: &Config, name: &str, stacked: bool) -> Result<Target> {
        let refuse = |kind: ErrorKind, why: String| AdmError::refused(name, kind, why);
        let r = config.resource(name).ok_or_else(|| {
            refuse(
                ErrorKind::NotFound,
                format!(
                    "unknown: {} defines {}",
                    self.config.display(),
                    if config.resources.is_empty() {
                        "no resource".to_owned()
                    } else {
                        config
                            .resources
                            .iter()
                            .map(|r| r.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            )
        })?;
        // Where this host has an `on` section, the resource is plain here
        // (the off-site end of a stacked one too); else it must be the
        // stacked side, which drbdadm wants named with --stacked.
        let local = match (r.on_host(&self.hostname), &r.stacked_on, stacked) {
            (Some(_), _, true) => {
                return Err(refuse(
                    ErrorKind::InvalidInput,
                    format!(
                        "runs on this host ({}) as a plain resource: leave out --stacked",
                        self.hostname
                    ),
                ))
            }
            (Some(h), _, false) => h.clone(),
            (None, Some((lower, _)), false) => {
                return Err(refuse(
                    ErrorKind::InvalidInput,
                    format!("is stacked on {lower}: give --stacked (as drbdadm wants)"),
                ))
            }
            (None, Some((_, h)), true) => h.clone(),
            (None, None, true) => {
                return Err(refuse(
                    ErrorKind::InvalidInput,
                    "is not a stacked resource: leave out --stacked".into(),
                ))
            }
            (None, None, false) => {
                return Err(refuse(
                    ErrorKind::InvalidInput,
                    format!(
                        "has no `on {}` section for this host ({}:{})",
                        self.hostname, r.file, r.line
                    ),
                ))
            }
        };
        let minor = local.minor.ok_or_else(|| {
            refuse(
                ErrorKind::InvalidInput,
                format!("`on {}` has no device", local.name),
            )
        })?;
        if let Some(md) = &local.meta_disk {
            if md != "internal" {
                return Err(refuse(
                    ErrorKind::Unsupported,
                    format!("meta-disk {md}: cairn handles internal metadata only"),
                ));
            }
        }
        let disk = match (&r.stacked_on, stacked) {
            (Some((lower, _)), true) => {
                let lr = config.resource(lower).ok_or_else(|| {
                    refuse(
                        ErrorKind::InvalidInput,
                        format!("is stacked on {lower}, which is not defined"),
                    )
                })?;
                lr.on_host(&self.hostname)
                    .and_then(|h| h.device.clone())
                    .ok_or_else(|| {
                        refuse(
                            ErrorKind::InvalidInput,
                            format!("is stacked on {lower}, which has no device on this host"),
                        )
                    })?
            }
            _ => local.disk.clone().ok_or_else(|| {
                refuse(
                    ErrorKind::InvalidInput,
                    format!("`on {}` has no disk", local.name),
                )
            })?,
        };
        Ok(Target {
            peer: r.peer(&self.hostname, stacked).cloned(),
            resource: r.clone(),
            local,
            minor,
            disk,
        })
    }
}

fn disk_conf(t: &Target) -> Result<DiskConf> {
    let mut conf = DiskConf::internal(&t.disk);
    let name = &t.resource.name;
    let num = |key: &str, v: &str| -> Result<u32> {
        // drbd-utils units: bare numbers, or K/M suffixes for rates.
        let (digits, mult) = match v.chars().last() {
            Some('k' | 'K') => (&v[..v.len() - 1], 1),
            Some('M') => (&v[..v.len() - 1], 1024),
            _ => (v, 1),
        };
        digits.parse::<u32>().map(|n| n * mult).map_err(|_| {
            AdmError::refused(
                name,
                ErrorKind::InvalidInput,
                format!("disk option {key} {v:?} is not a number"),
            )
        })
    };
    for (k, v) in &t.resource.disk_options {
        match k.as_str() {
            "resync-rate" => conf.resync_rate_kib = Some(num(k, v)?),
            "al-extents" => conf.al_extents = Some(num(k, v)?),
            "on-io-error" => {
                conf.on_io_error = Some(match v.as_str() {
                    "pass_on" => 0,
                    "call-local-io-error" => 1,
                    "detach" => 2,
                    _ => {
                        return Err(AdmError::refused(
                            name,
                            ErrorKind::InvalidInput,
                            format!(
                                "on-io-error {v:?}: give pass_on, call-local-io-error or detach"
                            ),
                        ))
                    }
                })
            }
            _ => {}
        }
    }
    Ok(conf)
}

/// The minor's status, if it exists.
fn minor_status(drbd: &mut dyn DrbdKernel, t: &Target) -> Result<Option<MinorStatus>> {
    Ok(drbd
        .status(Some(&t.resource.name))?
        .into_iter()
        .find(|s| s.minor == t.minor))
}

/// Whether `addr`'s IP is one of this host's (DRBD refuses others, late).
fn address_is_local(addr: &SocketAddr) -> bool {
    TcpListener::bind(SocketAddr::new(addr.ip(), 0)).is_ok()
}

/// `drbdadm up RES`: what is not up yet comes up; what is up stays.
/// Returns the steps taken, for the record.
pub fn up(drbd: &mut dyn DrbdKernel, t: &Target) -> Result<Vec<String>> {
    let name = t.resource.name.as_str();
    let refuse = |kind: ErrorKind, why: String| AdmError::refused(name, kind, why);
    if let (Some(peer), Some(my)) = (&t.peer, &t.local.address) {
        if peer.address.is_none() {
            return Err(refuse(
                ErrorKind::InvalidInput,
                format!("peer `on {}` has no address", peer.name),
            ));
        }
        if !address_is_local(my) {
            return Err(refuse(
                ErrorKind::InvalidInput,
                format!(
                    "address {my} is not an address of this host: fix `address` in {}",
                    t.resource.file
                ),
            ));
        }
    }
    if !Path::new(&t.disk).exists() {
        return Err(refuse(
            ErrorKind::NotFound,
            format!("backing device {} does not exist", t.disk),
        ));
    }
    let existed = drbd.resource_exists(name)?;
    let before = if existed {
        minor_status(drbd, t)?
    } else {
        None
    };
    let mut done: Vec<String> = Vec::new();
    let result = (|| -> Result<()> {
        if !existed {
            drbd.new_resource(name)?;
            done.push(format!("new-resource {name}"));
        }
        if before.is_none() {
            drbd.new_minor(name, t.minor, 0)?;
            done.push(format!("new-minor {name} {} 0", t.minor));
        }
        let attached = before.as_ref().is_some_and(|s| s.state.disk != "Diskless");
        if !attached {
            let applied = open_md(t, "apply-al")?.apply_al()?;
            if applied != Default::default() {
                done.push(format!(
                    "apply-al {} ({} transactions, {} extents marked)",
                    t.disk,
                    applied.transactions,
                    applied.extents_marked.len()
                ));
            }
            drbd.attach(t.minor, &disk_conf(t)?)?;
            done.push(format!("attach {} {}", t.minor, t.disk));
        }
        let connected = before
            .as_ref()
            .is_some_and(|s| s.state.connection != "StandAlone");
        if let (Some(peer), Some(my), false) = (&t.peer, &t.local.address, connected) {
            let peer_addr = peer.address.expect("checked above");
            drbd.connect(name, my, &peer_addr, t.resource.protocol)?;
            done.push(format!("connect {name} {my} {peer_addr}"));
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(done),
        Err(failed) => {
            // Undo, newest first, what this call did: a resource it made
            // goes whole (down); in a resource that was there, the disk it
            // attached is detached and the minor it made deleted.
            let did = |step: &str| done.iter().any(|d| d.starts_with(step));
            let undo = if !existed && !done.is_empty() {
                drbd.down(name).err()
            } else {
                let detached = if did("attach") {
                    drbd.detach(t.minor, false).err()
                } else {
                    None
                };
                detached.or_else(|| {
                    did("new-minor")
                        .then(|| drbd.del_minor(t.minor).err())
                        .flatten()
                })
            };
            match undo {
                None => Err(failed),
                Some(e) => Err(AdmError::UndoFailed {
                    failed: Box::new(failed),
                    undo: e.to_string(),
                }),
            }
        }
    }
}

/// `drbdadm down RES`: nothing to do when it is not up.
pub fn down(drbd: &mut dyn DrbdKernel, t: &Target) -> Result<bool> {
    if !drbd.resource_exists(&t.resource.name)? {
        return Ok(false);
    }
    drbd.down(&t.resource.name)?;
    Ok(true)
}

/// How much of a device's start drbdmeta looks at before create-md: any
/// byte there that is not zero makes it ask ("This might destroy existing
/// data!").
const CHECKED_HEAD: usize = 68 << 10;

/// The backing disk, opened to write its metadata and claimed O_EXCL, as
/// drbdmeta does: a disk another minor has attached (DRBD claims its
/// backing disk), or that is mounted or held by device-mapper or md, is
/// refused before anything is read or written.
fn open_md(t: &Target, verb: &str) -> Result<MdDevice> {
    MdDevice::open_exclusive(Path::new(&t.disk)).map_err(|e| match e {
        MdError::Device(DeviceError::Busy { .. }) => AdmError::refused(
            &t.resource.name,
            ErrorKind::Busy,
            format!(
                "{} is in use (attached by a DRBD minor, mounted, or held by device-mapper or \
                 md): {verb} would write metadata that its holder owns; nothing was changed",
                t.disk
            ),
        ),
        e => e.into(),
    })
}

/// What create-md would destroy, refused as drbdmeta refuses or asks first.
/// Always: an ext filesystem that reaches into the metadata area (writing
/// the metadata would truncate it). Without `force`: v08 metadata (its
/// bitmap and generations), metadata DRBD 8.4 cannot use or that does not
/// fit the device, any signature libblkid knows (a filesystem, a PV label,
/// a RAID member, ...), or other data in the device's first 68 KiB.
/// Returns the v08 superblock found, whose device uuid create-md keeps.
fn check_overwrite(md: &MdDevice, t: &Target, force: bool) -> Result<Option<Superblock>> {
    let refuse = |kind: ErrorKind, why: String| Err(AdmError::refused(&t.resource.name, kind, why));
    let disk = Path::new(&t.disk);
    let usable = md.layout.usable_sectors() * SECTOR;
    if let Ok(Some(fs)) = crate::fs::probe(disk) {
        let size = fs.block_size.saturating_mul(fs.blocks_count);
        if size > usable {
            return refuse(
                ErrorKind::Refused,
                format!(
                "{} holds an {} filesystem of {size} bytes, but internal metadata leaves {usable}: \
                 the metadata would overwrite its end. Shrink it, or wipe it (wipefs -a) if its \
                 data is not needed; nothing was changed",
                t.disk, fs.kind
            ),
            );
        }
    }
    let old = match md.superblock() {
        Ok(sb) => Some(sb),
        Err(MdError::NotFound { .. }) => None,
        Err(e @ (MdError::OtherVersion { .. } | MdError::Inconsistent { .. })) => {
            if !force {
                return refuse(
                    ErrorKind::Refused,
                    format!("{e}; give --force to create new v08 metadata over it"),
                );
            }
            None
        }
        Err(e) => return Err(e.into()),
    };
    if force {
        return Ok(old);
    }
    if old.is_some() {
        return refuse(
            ErrorKind::Refused,
            format!(
                "{} has DRBD metadata already (its bitmap and generation ids would be lost): \
             give --force to create new metadata",
                t.disk
            ),
        );
    }
    let found = crate::signature::probe(disk)?;
    if !found.is_empty() {
        return refuse(
            ErrorKind::Refused,
            format!(
                "{} holds {}: create-md would overwrite its end; give --force if its data is not \
             needed",
                t.disk,
                crate::signature::describe_all(&found)
            ),
        );
    }
    if md.head(CHECKED_HEAD)?.iter().any(|&b| b != 0) {
        return refuse(
            ErrorKind::Refused,
            format!(
                "{} holds data in its first 68 KiB that no known signature names (drbdmeta asks \
             before overwriting it): give --force if its data is not needed",
                t.disk
            ),
        );
    }
    Ok(None)
}

/// `drbdadm create-md RES`: refused while the device is attached or held,
/// where an ext filesystem would be truncated, and, without `force`, where
/// anything is on the device: metadata, a signature libblkid knows, or other
/// data in its first 68 KiB.
pub fn create_md(drbd: Option<&mut dyn DrbdKernel>, t: &Target, force: bool) -> Result<u64> {
    let name = &t.resource.name;
    if let Some(drbd) = drbd {
        if drbd.resource_exists(name)?
            && minor_status(drbd, t)?.is_some_and(|s| s.state.disk != "Diskless")
        {
            return Err(AdmError::refused(
                name,
                ErrorKind::Busy,
                format!(
                    "minor {} is attached to {}: take the resource down first",
                    t.minor, t.disk
                ),
            ));
        }
    }
    let md = open_md(t, "create-md")?;
    let old = check_overwrite(&md, t, force)?;
    // drbdadm keeps the device's uuid, or draws one.
    let device_uuid = match old.map(|s| s.device_uuid) {
        Some(u) if u != 0 => u,
        _ => {
            let mut b = [0u8; 8];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
                .map_err(|e| {
                    AdmError::refused(name, ErrorKind::System, format!("/dev/urandom: {e}"))
                })?;
            u64::from_ne_bytes(b)
        }
    };
    md.create(device_uuid)?;
    Ok(device_uuid)
}

/// `drbdadm apply-al RES`: refused while the minor is attached (the
/// kernel owns the metadata then), or the disk is held by anything else.
pub fn apply_al(drbd: Option<&mut dyn DrbdKernel>, t: &Target) -> Result<super::md::Applied> {
    if let Some(drbd) = drbd {
        if drbd.resource_exists(&t.resource.name)?
            && minor_status(drbd, t)?.is_some_and(|s| s.state.disk != "Diskless")
        {
            return Err(AdmError::refused(
                &t.resource.name,
                ErrorKind::Busy,
                format!(
                    "minor {} is attached: the kernel owns its metadata",
                    t.minor
                ),
            ));
        }
    }
    Ok(open_md(t, "apply-al")?.apply_al()?)
}

/// `drbdadm resize RES`: the device's size before and after.
pub fn resize(drbd: &mut dyn DrbdKernel, t: &Target, r: &Resize) -> Result<(u64, u64)> {
    let size = |drbd: &mut dyn DrbdKernel| -> Result<u64> {
        minor_status(drbd, t)?
            .map(|s| s.capacity_sectors)
            .ok_or_else(|| AdmError::refused(&t.resource.name, ErrorKind::Refused, "is not up"))
    };
    let before = size(drbd)?;
    drbd.resize(t.minor, r)?;
    Ok((before, size(drbd)?))
}

#[cfg(test)]
mod on_sim;

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn setup(host: &str) -> (Setup, Config) {
        let text = r#"
resource r0 { on h1 { device /dev/drbd0; disk /dev/vg/lv; address 127.0.0.1:7789; meta-disk internal; } }
resource r0-U {
  net { protocol A; }
  stacked-on-top-of r0 { device /dev/drbd10; address 127.0.0.1:7791; }
  on far { device /dev/drbd10; disk /dev/x; address 10.9.9.9:7794; meta-disk internal; }
}
resource ext { on h1 { device /dev/drbd1; disk /dev/a; meta-disk /dev/b; } }
"#;
        let config = Config::parse("t.res", text, Path::new("/etc")).unwrap();
        (
            Setup {
                config: "t.res".into(),
                hostname: host.into(),
            },
            config,
        )
    }

    #[test]
    fn targets_resolve_as_drbdadm_s() {
        let (s, c) = setup("h1");
        let r0 = s.target_in(&c, "r0", false).unwrap();
        assert_eq!((r0.minor, r0.disk.as_str()), (0, "/dev/vg/lv"));
        assert!(r0.peer.is_none());
        let u = s.target_in(&c, "r0-U", true).unwrap();
        assert_eq!((u.minor, u.disk.as_str()), (10, "/dev/drbd0"));
        assert_eq!(u.peer.unwrap().name, "far");
    }

    #[test]
    fn bad_targets_say_what_to_do() {
        let (s, c) = setup("h1");
        let cases = [
            ("r0-U", false, "give --stacked", ErrorKind::InvalidInput),
            ("r0", true, "leave out --stacked", ErrorKind::InvalidInput),
            (
                "nope",
                false,
                "unknown: t.res defines r0, r0-U, ext",
                ErrorKind::NotFound,
            ),
            (
                "ext",
                false,
                "internal metadata only",
                ErrorKind::Unsupported,
            ),
        ];
        for (name, stacked, what, kind) in cases {
            let e = s.target_in(&c, name, stacked).unwrap_err();
            assert!(e.to_string().contains(what), "{name}: {e}");
            assert_eq!(e.kind(), kind, "{name}: {e}");
        }
        // On the far end, r0-U is plain, its peer the stacked side.
        let (far, c) = setup("far");
        let u = far.target_in(&c, "r0-U", false).unwrap();
        assert_eq!((u.minor, u.disk.as_str()), (10, "/dev/x"));
        assert_eq!(
            u.peer.unwrap().address,
            Some("127.0.0.1:7791".parse().unwrap())
        );
        assert!(far
            .target_in(&c, "r0-U", true)
            .unwrap_err()
            .to_string()
            .contains("as a plain resource"));
        let (other, c) = setup("h2");
        let e = other.target_in(&c, "r0", false).unwrap_err().to_string();
        assert!(e.contains("no `on h2` section"), "{e}");
    }

    /// r0 with its disk on a zeroed 64 MiB image, edited by `prepare`.
    fn on_image(tag: &str, prepare: impl Fn(&std::fs::File)) -> (Target, PathBuf) {
        let path = std::env::temp_dir().join(format!("cairn-cmd-{tag}-{}", std::process::id()));
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(64 << 20).unwrap();
        prepare(&f);
        let (s, c) = setup("h1");
        let mut t = s.target_in(&c, "r0", false).unwrap();
        t.disk = path.display().to_string();
        (t, path)
    }

    fn put(f: &std::fs::File, offset: u64, data: &[u8]) {
        std::os::unix::fs::FileExt::write_all_at(f, data, offset).unwrap();
    }

    /// An ext2 superblock (revision 1, 1 KiB blocks) of `blocks` blocks.
    fn ext2(f: &std::fs::File, blocks: u32) {
        put(f, 1024 + 4, &blocks.to_le_bytes());
        put(f, 1024 + 76, &1u32.to_le_bytes());
        put(f, 1080, &[0x53, 0xEF]);
    }

    #[test]
    fn create_md_refuses_what_it_would_destroy_and_changes_nothing() {
        let end = (64u64 << 20) - 4096;
        let v09 = |f: &std::fs::File| put(f, end + 60, &0x8374_026Du32.to_be_bytes());
        let misfit = |f: &std::fs::File| {
            // v08 metadata made for a 1 GiB device (shrunk offline).
            let layout = super::super::md::Layout::internal((1u64 << 30) / SECTOR);
            put(f, end, &Superblock::created(&layout).encode());
        };
        type Prepare<'a> = &'a dyn Fn(&std::fs::File);
        let cases: [(&str, Prepare, &str); 5] = [
            ("ext2", &|f| ext2(f, 8192), "ext2 (filesystem) at byte 1080"),
            ("v09", &v09, "DRBD 9 (v09)"),
            ("misfit", &misfit, "does not fit the device"),
            ("data", &|f| put(f, 60 << 10, b"some data"), "first 68 KiB"),
            (
                "swap",
                &|f| {
                    put(f, 1024, &1u32.to_le_bytes());
                    put(f, 1028, &((64u32 << 20) / 4096 - 1).to_le_bytes());
                    put(f, 4086, b"SWAPSPACE2");
                },
                "swap (other)",
            ),
        ];
        for (tag, prepare, want) in cases {
            let (t, path) = on_image(tag, prepare);
            let before = std::fs::read(&path).unwrap();
            let e = create_md(None, &t, false).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("--force"), "{tag}: {e}");
            assert_eq!(std::fs::read(&path).unwrap(), before, "{tag}: changed");
            create_md(None, &t, true).unwrap();
            std::fs::remove_file(&path).unwrap();
        }

        // A blank device takes metadata; then it has some, kept without --force.
        let (t, path) = on_image("blank", |_| {});
        create_md(None, &t, false).unwrap();
        let before = std::fs::read(&path).unwrap();
        let e = create_md(None, &t, false).unwrap_err().to_string();
        assert!(e.contains("has DRBD metadata already"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
        std::fs::remove_file(&path).unwrap();

        // A filesystem that reaches into the metadata area: refused even
        // with --force, as drbdmeta does (the metadata would truncate it).
        let (t, path) = on_image("big", |f| ext2(f, 64 << 10));
        let before = std::fs::read(&path).unwrap();
        let e = create_md(None, &t, true).unwrap_err().to_string();
        assert!(e.contains("would overwrite its end"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
        std::fs::remove_file(&path).unwrap();
    }
}
