//! A simulated device-mapper (stratisd's SimEngine idea, at the ioctl
//! level): devices with names, uuids and minors, live and inactive table
//! slots, suspension, open counts (devices whose tables stand on a device
//! hold it open, as in the kernel) and event numbers; thin pools with a
//! transaction id and thin device ids, driven by the thin-pool messages
//! and reported in the kernel's status format (so [`super::status`] reads
//! them); and the /dev nodes and links of the devices, kept in memory.
//!
//! It answers as the kernel does where cairn's logic depends on it: a
//! name or uuid in use is EBUSY, a device that is not there ENXIO, a thin
//! device id the pool does not have ENODATA, a `set_transaction_id` whose
//! old id is not the pool's EINVAL, a table over a device that does not
//! exist ENXIO, a thin table whose id the pool lacks EINVAL, removing an
//! open device EBUSY.
//!
//! Failures are injected with [`Fault`]: the n-th change (create, load,
//! clear, suspend, resume, remove, message) from now, or every change of
//! one kind, optionally to one device, optionally after it took effect (a
//! suspend that suspended, then reported an error).
//!
//! A `SimDm` is a handle: clones share one simulated kernel ([`SimDm::fork`]
//! makes an independent copy).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use nix::libc;

use super::kernel::DeviceMapper;
use super::table::{DevRef, TableLine, Target};
use super::{nodes, Device, Error, Info, Result, Suspend};

/// The major number of the simulation's devices.
pub const MAJOR: u32 = 253;

/// A simulated kernel (a handle: clones share it).
#[derive(Clone, Default)]
pub struct SimDm {
    state: Arc<Mutex<State>>,
}

#[derive(Clone, Default)]
struct State {
    devices: BTreeMap<String, SimDevice>,
    /// Thin pool metadata, by what stores it (it outlives the pool's
    /// device: a pool re-laid out under another name finds it again).
    pools: BTreeMap<String, Pool>,
    next_minor: u32,
    /// The major of the devices it makes: [`MAJOR`], or the host's
    /// device-mapper major in a [`SimDm::copy_of`] (it is dynamic).
    major: Option<u32>,
    /// Whether every device-mapper device of the host is in `devices`
    /// (a [`SimDm::copy_of`] holds only some).
    partial: bool,
    calls: Vec<String>,
    changes: usize,
    faults: Vec<Fault>,
    nodes: BTreeMap<PathBuf, Option<(u32, u32)>>,
    links: BTreeMap<PathBuf, Option<PathBuf>>,
    disks: BTreeMap<PathBuf, (u32, u32)>,
}

/// One simulated device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimDevice {
    /// The device-mapper uuid it was created with.
    pub uuid: String,
    /// The block device's major number (made up).
    pub major: u32,
    /// The block device's minor number (made up, unique).
    pub minor: u32,
    /// Whether it was created read-only.
    pub read_only: bool,
    /// None before the first resume with a loaded table.
    pub live: Option<Vec<TableLine>>,
    /// The table in the inactive slot, loaded and not yet resumed.
    pub inactive: Option<Vec<TableLine>>,
    /// Whether it is suspended.
    pub suspended: bool,
    /// Opens by something other than the simulated devices (a mount).
    pub opens: i32,
    /// The event counter the status ioctl reports.
    pub event_nr: u32,
}

/// A thin pool's metadata, as dm-thin keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// The transaction id in the pool's metadata (`set_transaction_id`
    /// messages move it; lvm2 keeps the VG's copy equal to it).
    pub transaction_id: u64,
    /// The thin device ids in the pool (`create_thin`, `create_snap`,
    /// `delete` messages change them).
    pub thins: BTreeSet<u64>,
    /// Metadata blocks in use, as the thin-pool status reports them.
    pub metadata_used: u64,
    /// Metadata blocks in all, as the thin-pool status reports them.
    pub metadata_total: u64,
    /// Data blocks in use (of the pool's chunk size).
    pub data_used: u64,
    /// Data blocks in all (of the pool's chunk size).
    pub data_total: u64,
    /// `rw`, `ro` or `out_of_data_space`.
    pub mode: String,
    /// Whether the metadata is flagged for `thin_check` (the status's
    /// `needs_check`).
    pub needs_check: bool,
    /// The data size the pool last resumed with, in sectors: dm-thin
    /// records it in the pool's metadata and refuses a smaller table after.
    pub data_sectors: u64,
}

impl Default for Pool {
    fn default() -> Pool {
        Pool {
            transaction_id: 0,
            thins: BTreeSet::new(),
            metadata_used: 10,
            metadata_total: 1024,
            data_used: 0,
            data_total: 1024,
            mode: "rw".to_owned(),
            needs_check: false,
            data_sectors: 0,
        }
    }
}

impl Pool {
    /// The status dm-thin prints for the pool (`dmsetup status`).
    fn status(&self) -> String {
        format!(
            "{} {}/{} {}/{} - {} discard_passdown queue_if_no_space {} 768",
            self.transaction_id,
            self.metadata_used,
            self.metadata_total,
            self.data_used,
            self.data_total,
            self.mode,
            if self.needs_check { "needs_check" } else { "-" },
        )
    }
}

/// A failure to inject: which change fails, and how.
#[derive(Debug, Clone)]
pub struct Fault {
    /// The n-th change from when the fault was set (0: the next one).
    nth: Option<usize>,
    op: Option<&'static str>,
    device: Option<String>,
    /// Text the change's entry in the call log contains.
    text: Option<String>,
    errno: i32,
    /// The change takes effect, then the error is returned.
    after: bool,
    /// How many more times it fires.
    left: usize,
    /// `changes` when the fault was set.
    base: usize,
}

impl Fault {
    /// The n-th change from now fails (0: the next one), once.
    pub fn nth(n: usize) -> Fault {
        Fault {
            nth: Some(n),
            op: None,
            device: None,
            text: None,
            errno: libc::EIO,
            after: false,
            left: 1,
            base: 0,
        }
    }

    /// The next `op` (create, load, clear, suspend, resume, remove,
    /// message) fails, once.
    pub fn op(op: &'static str) -> Fault {
        Fault {
            op: Some(op),
            ..Fault::nth(0)
        }
        .any_time()
    }

    fn any_time(mut self) -> Fault {
        self.nth = None;
        self
    }

    /// Only for the device called `name`.
    pub fn on(mut self, name: &str) -> Fault {
        self.device = Some(name.to_owned());
        self
    }

    /// Only a change whose call log entry contains `text` (a message's
    /// words: `set_transaction_id`).
    pub fn containing(mut self, text: &str) -> Fault {
        self.text = Some(text.to_owned());
        self
    }

    /// With this errno (EIO unless told).
    pub fn errno(mut self, errno: i32) -> Fault {
        self.errno = errno;
        self
    }

    /// The change is made, then reported as failed.
    pub fn after_effect(mut self) -> Fault {
        self.after = true;
        self
    }

    /// Every time, not once.
    pub fn always(mut self) -> Fault {
        self.left = usize::MAX;
        self
    }
}

/// The state of a simulated kernel, to compare before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Every device, by device-mapper name.
    pub devices: BTreeMap<String, SimDevice>,
    /// Every thin pool's metadata, keyed by what stores its metadata device
    /// (so that the metadata outlives the thin-pool device, as on disk).
    pub pools: BTreeMap<String, Pool>,
}

fn fail(operation: &'static str, device: &str, errno: i32) -> Error {
    Error::Simulated {
        operation,
        device: device.to_owned(),
        errno,
    }
}

impl State {
    fn by_number(&self, major: u32, minor: u32) -> Option<(&String, &SimDevice)> {
        self.devices
            .iter()
            .find(|(_, d)| d.major == major && d.minor == minor)
    }

    fn get(&self, op: &'static str, name: &str) -> Result<&SimDevice> {
        self.devices
            .get(name)
            .ok_or_else(|| fail(op, name, libc::ENXIO))
    }

    fn get_mut(&mut self, op: &'static str, name: &str) -> Result<&mut SimDevice> {
        self.devices
            .get_mut(name)
            .ok_or_else(|| fail(op, name, libc::ENXIO))
    }

    /// Opens of the device: its own, and one per device whose table (live
    /// or loaded) stands on it.
    fn open_count(&self, d: &SimDevice) -> i32 {
        let me = DevRef::Number(d.major, d.minor);
        let held = self
            .devices
            .values()
            .flat_map(|o| o.live.iter().chain(o.inactive.iter()))
            .filter(|t| t.iter().any(|l| l.target.devices().contains(&&me)))
            .count();
        d.opens + held as i32
    }

    fn info(&self, name: &str, d: &SimDevice) -> Info {
        Info {
            name: name.to_owned(),
            uuid: d.uuid.clone(),
            major: d.major,
            minor: d.minor,
            open_count: self.open_count(d),
            event_nr: d.event_nr,
            suspended: d.suspended,
            live_table: d.live.is_some(),
            inactive_table: d.inactive.is_some(),
            read_only: d.read_only,
        }
    }

    /// What stores the data behind `dev`: a simulated device's live
    /// table, down to the devices outside the simulation.
    fn storage_key(&self, dev: &DevRef) -> String {
        self.storage_key_below(dev, 0)
    }

    /// [`State::storage_key`], `depth` devices down. Stacks are a few
    /// devices deep; a table that leads back to itself (numbers that the
    /// simulation and the host both use) stops at the number.
    fn storage_key_below(&self, dev: &DevRef, depth: usize) -> String {
        const DEEPEST: usize = 64;
        match dev {
            DevRef::Number(a, b) if depth < DEEPEST => match self.by_number(*a, *b) {
                Some((_, d)) => d
                    .live
                    .iter()
                    .flatten()
                    .map(|l| {
                        let mut t = l.target.clone();
                        for r in t.devices_mut() {
                            *r = DevRef::Path(self.storage_key_below(r, depth + 1));
                        }
                        format!("{} {} {}", l.start, l.length, t.params())
                    })
                    .collect::<Vec<_>>()
                    .join(";"),
                None => dev.to_string(),
            },
            DevRef::Number(..) => dev.to_string(),
            DevRef::Path(p) => p.clone(),
        }
    }

    /// The pool metadata of the thin-pool device `name`.
    fn pool_key(&self, name: &str) -> Option<String> {
        let d = self.devices.get(name)?;
        match &d.live.as_ref()?.first()?.target {
            Target::ThinPool { metadata, .. } => Some(self.storage_key(metadata)),
            _ => None,
        }
    }

    /// Whether a table may be loaded: its devices exist; a thin device's
    /// pool is live and has its id.
    fn check_table(&self, name: &str, table: &[TableLine]) -> Result<()> {
        for line in table {
            for dev in line.target.devices() {
                if let DevRef::Number(a, b) = dev {
                    let dm_major = *a == self.major.unwrap_or(MAJOR);
                    let disk = self.disks.values().any(|n| *n == (*a, *b));
                    if self.by_number(*a, *b).is_none() && dm_major && !disk && !self.partial {
                        return Err(fail("table load", name, libc::ENXIO));
                    }
                }
            }
            if let Target::Thin {
                pool: DevRef::Number(a, b),
                device_id,
                ..
            } = &line.target
            {
                let has = self
                    .by_number(*a, *b)
                    .and_then(|(pool, _)| self.pool_key(pool))
                    .and_then(|k| self.pools.get(&k))
                    .is_some_and(|p| p.thins.contains(device_id));
                if !has && (*a == self.major.unwrap_or(MAJOR) || self.by_number(*a, *b).is_some()) {
                    return Err(fail("table load", name, libc::EINVAL));
                }
            }
        }
        Ok(())
    }

    /// A fault that fires for this change, if any (and counts the change).
    fn fault(&mut self, op: &'static str, name: &str, detail: &str) -> Option<Fault> {
        let index = self.changes;
        self.changes += 1;
        let call = format!("{op} {name}{detail}");
        let pos = self.faults.iter().position(|f| {
            f.nth.is_none_or(|n| f.base + n == index)
                && f.op.is_none_or(|o| o == op)
                && f.device.as_deref().is_none_or(|d| d == name)
                && f.text.as_deref().is_none_or(|t| call.contains(t))
        });
        self.calls.push(call);
        let pos = pos?;
        let f = self.faults[pos].clone();
        self.faults[pos].left -= 1;
        if self.faults[pos].left == 0 {
            self.faults.remove(pos);
        }
        Some(f)
    }

    fn message(&mut self, name: &str, message: &str) -> Result<()> {
        let bad = |errno| fail("message", name, errno);
        let key = self.pool_key(name).ok_or_else(|| bad(libc::EINVAL))?;
        let pool = self.pools.entry(key).or_default();
        let words: Vec<&str> = message.split_whitespace().collect();
        let num = |i: usize| -> Result<u64> {
            words
                .get(i)
                .and_then(|w| w.parse().ok())
                .ok_or_else(|| bad(libc::EINVAL))
        };
        match words.first().copied() {
            Some("create_thin") => {
                if !pool.thins.insert(num(1)?) {
                    return Err(bad(libc::EEXIST));
                }
            }
            Some("create_snap") => {
                let (id, origin) = (num(1)?, num(2)?);
                if !pool.thins.contains(&origin) {
                    return Err(bad(libc::ENODATA));
                }
                if !pool.thins.insert(id) {
                    return Err(bad(libc::EEXIST));
                }
            }
            Some("delete") => {
                if !pool.thins.remove(&num(1)?) {
                    return Err(bad(libc::ENODATA));
                }
            }
            Some("set_transaction_id") => {
                if num(1)? != pool.transaction_id {
                    return Err(bad(libc::EINVAL));
                }
                pool.transaction_id = num(2)?;
            }
            _ => return Err(bad(libc::EINVAL)),
        }
        Ok(())
    }
}

impl SimDm {
    /// An empty simulated kernel.
    pub fn new() -> SimDm {
        SimDm::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A simulated kernel holding the devices `names` of `kernel` as they
    /// are now (tables, suspension, open counts, thin pools' transaction
    /// ids and modes, their nodes under `root` and the links named beside
    /// them) and the numbers of the block devices `disks`: what a command
    /// would do can be run on it, changing nothing on `kernel`. A pool's
    /// thin device ids are not in its status: give them with
    /// [`SimDm::with_pool`].
    pub fn copy_of(
        kernel: &dyn DeviceMapper,
        root: &Path,
        names: &[(String, Option<String>)],
        disks: &[PathBuf],
    ) -> Result<SimDm> {
        let sim = SimDm::new();
        let mut s = sim.lock();
        s.partial = true;
        // New devices are numbered above every dm device of the host,
        // copied or not (the host itself takes the lowest free minor; only
        // the names matter to a plan): a number taken by a device outside
        // the copy (a PV that is itself a dm device) must never name a
        // simulated one.
        for d in kernel.devices()? {
            s.major.get_or_insert(d.major);
            s.next_minor = s.next_minor.max(d.minor + 1);
        }
        let major = s.major.unwrap_or(MAJOR);
        for disk in disks {
            if let Ok(n) = kernel.device_number(disk) {
                s.disks.insert(disk.clone(), n);
                if n.0 == major {
                    s.next_minor = s.next_minor.max(n.1 + 1);
                }
            }
        }
        let mut pools = Vec::new();
        for (name, link) in names {
            let node = root.join("mapper").join(name);
            let number = kernel.device_number(&node).ok();
            s.nodes.insert(node, number);
            if let Some(link) = link {
                let points = kernel.link_points_to(root, link, name);
                s.links.insert(
                    nodes::under(root, link),
                    points.then(|| Path::new("/dev/mapper").join(name)),
                );
            }
            let Some(info) = kernel.info(name)? else {
                continue;
            };
            let live = info.live_table.then(|| kernel.table(name)).transpose()?;
            let inactive = info
                .inactive_table
                .then(|| kernel.inactive_table(name))
                .transpose()?;
            if let Some(Target::ThinPool { .. }) = live.iter().flatten().next().map(|l| &l.target) {
                for (_, _, target, params) in kernel.status(name)? {
                    if let Ok(super::status::TargetStatus::ThinPool(st)) =
                        super::status::parse(&target, &params)
                    {
                        pools.push((name.clone(), st));
                    }
                }
            }
            s.next_minor = s.next_minor.max(info.minor + 1);
            s.devices.insert(
                name.clone(),
                SimDevice {
                    uuid: info.uuid,
                    major: info.major,
                    minor: info.minor,
                    read_only: info.read_only,
                    live,
                    inactive,
                    suspended: info.suspended,
                    opens: info.open_count,
                    event_nr: info.event_nr,
                },
            );
        }
        // The opens the copied devices account for themselves.
        let names: Vec<String> = s.devices.keys().cloned().collect();
        for name in &names {
            let d = s.devices[name].clone();
            let held = s.open_count(&SimDevice { opens: 0, ..d });
            s.devices.get_mut(name).expect("listed").opens -= held;
        }
        for (name, st) in pools {
            if let Some(key) = s.pool_key(&name) {
                let data_sectors = s.devices[&name]
                    .live
                    .iter()
                    .flatten()
                    .map(|l| l.length)
                    .sum();
                s.pools.insert(
                    key,
                    Pool {
                        transaction_id: st.transaction_id,
                        thins: BTreeSet::new(),
                        metadata_used: st.metadata_used,
                        metadata_total: st.metadata_total,
                        data_used: st.data_used,
                        data_total: st.data_total,
                        mode: match st.mode {
                            super::status::PoolMode::ReadWrite => "rw".to_owned(),
                            super::status::PoolMode::ReadOnly => "ro".to_owned(),
                            super::status::PoolMode::OutOfDataSpace => {
                                "out_of_data_space".to_owned()
                            }
                            super::status::PoolMode::Other(m) => m,
                        },
                        needs_check: st.needs_check,
                        data_sectors,
                    },
                );
            }
        }
        drop(s);
        Ok(sim)
    }

    /// An independent copy of this kernel (faults and call log included).
    pub fn fork(&self) -> SimDm {
        SimDm {
            state: Arc::new(Mutex::new(self.lock().clone())),
        }
    }

    /// The devices and pools, to compare.
    pub fn snapshot(&self) -> Snapshot {
        let s = self.lock();
        Snapshot {
            devices: s.devices.clone(),
            pools: s.pools.clone(),
        }
    }

    /// A device, as the simulation holds it.
    pub fn device(&self, name: &str) -> Option<SimDevice> {
        self.lock().devices.get(name).cloned()
    }

    /// The changes made so far, in order (`create NAME`, `load NAME`,
    /// `message NAME create_thin 1`, ...), failed ones included.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// Forgets the changes made so far (the call log).
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// How many changes were asked for so far.
    pub fn changes(&self) -> usize {
        self.lock().changes
    }

    /// Injects a failure.
    pub fn fail(&self, mut fault: Fault) {
        let mut s = self.lock();
        fault.base = s.changes;
        s.faults.push(fault);
    }

    /// Drops the faults not fired yet.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Sets the opens of `name` by something outside device-mapper (a mount).
    pub fn set_opens(&self, name: &str, opens: i32) {
        if let Some(d) = self.lock().devices.get_mut(name) {
            d.opens = opens;
        }
    }

    /// Registers a block device outside device-mapper (a PV on an image
    /// file, in a test) with its number.
    pub fn add_disk(&self, path: &Path, major: u32, minor: u32) {
        let mut s = self.lock();
        s.disks.insert(path.to_path_buf(), (major, minor));
        // A dm device outside the simulation (a PV on an LV): its number
        // is taken.
        if major == s.major.unwrap_or(MAJOR) {
            s.next_minor = s.next_minor.max(minor + 1);
        }
    }

    /// The thin pool whose thin-pool device is `name` (live).
    pub fn pool(&self, name: &str) -> Option<Pool> {
        let s = self.lock();
        let key = s.pool_key(name)?;
        s.pools.get(&key).cloned()
    }

    /// Changes the thin pool of the live thin-pool device `name`; false if
    /// there is none.
    pub fn with_pool(&self, name: &str, f: impl FnOnce(&mut Pool)) -> bool {
        let mut s = self.lock();
        let Some(key) = s.pool_key(name) else {
            return false;
        };
        f(s.pools.entry(key).or_default());
        true
    }

    /// Runs `change` unless a fault fires before it; a fault "after
    /// effect" lets it run, then fails.
    fn change<T>(
        &self,
        op: &'static str,
        name: &str,
        detail: &str,
        change: impl FnOnce(&mut State) -> Result<T>,
    ) -> Result<T> {
        let mut s = self.lock();
        match s.fault(op, name, detail) {
            None => change(&mut s),
            Some(f) if f.after => {
                change(&mut s)?;
                Err(fail(op, name, f.errno))
            }
            Some(f) => Err(fail(op, name, f.errno)),
        }
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() >= 128 || name.contains('/') {
        return Err(Error::BadName(name.to_owned()));
    }
    Ok(())
}

impl DeviceMapper for SimDm {
    fn info(&self, name: &str) -> Result<Option<Info>> {
        check_name(name)?;
        let s = self.lock();
        Ok(s.devices.get(name).map(|d| s.info(name, d)))
    }

    fn create(&self, name: &str, uuid: &str, read_only: bool) -> Result<Info> {
        check_name(name)?;
        self.change("create", name, "", |s| {
            if s.devices.contains_key(name)
                || (!uuid.is_empty() && s.devices.values().any(|d| d.uuid == uuid))
            {
                return Err(fail("create", name, libc::EBUSY));
            }
            let minor = s.next_minor;
            s.next_minor += 1;
            let d = SimDevice {
                uuid: uuid.to_owned(),
                major: s.major.unwrap_or(MAJOR),
                minor,
                read_only,
                live: None,
                inactive: None,
                suspended: false,
                opens: 0,
                event_nr: 0,
            };
            let info = s.info(name, &d);
            s.devices.insert(name.to_owned(), d);
            Ok(info)
        })
    }

    fn load(&self, name: &str, table: &[TableLine], read_only: bool) -> Result<()> {
        self.change("load", name, "", |s| {
            s.get("table load", name)?;
            s.check_table(name, table)?;
            let d = s.get_mut("table load", name)?;
            d.inactive = Some(table.to_vec());
            d.read_only |= read_only;
            Ok(())
        })
    }

    fn clear(&self, name: &str) -> Result<()> {
        self.change("clear", name, "", |s| {
            s.get_mut("table clear", name)?.inactive = None;
            Ok(())
        })
    }

    fn suspend(&self, name: &str, how: Suspend) -> Result<()> {
        // Calls name the one mode a caller chooses for itself.
        let detail = if how == Suspend::FlushFrozen {
            " (frozen)"
        } else {
            ""
        };
        self.change("suspend", name, detail, |s| {
            s.get_mut("suspend", name)?.suspended = true;
            Ok(())
        })
    }

    fn resume(&self, name: &str) -> Result<Info> {
        self.change("resume", name, "", |s| {
            let d = s.get_mut("resume", name)?;
            if let Some(t) = d.inactive.take() {
                d.live = Some(t);
                d.event_nr += 1;
            }
            d.suspended = false;
            let is_pool = matches!(
                d.live.as_ref().and_then(|t| t.first()).map(|l| &l.target),
                Some(Target::ThinPool { .. })
            );
            let length: u64 = d.live.iter().flatten().map(|l| l.length).sum();
            if is_pool {
                // A new pool's metadata is formatted when first loaded;
                // a pool never shrinks (dm-thin's preresume: "pool target
                // too small"): the smaller table is live, the device stays
                // suspended.
                let key = s.pool_key(name).expect("a thin-pool table");
                let pool = s.pools.entry(key).or_default();
                if length < pool.data_sectors {
                    s.get_mut("resume", name)?.suspended = true;
                    return Err(fail("resume", name, libc::EINVAL));
                }
                pool.data_sectors = length;
            }
            let d = s.get("resume", name)?;
            Ok(s.info(name, d))
        })
    }

    fn remove(&self, name: &str) -> Result<()> {
        self.change("remove", name, "", |s| {
            let d = s.get("remove", name)?;
            if s.open_count(d) > 0 {
                return Err(fail("remove", name, libc::EBUSY));
            }
            s.devices.remove(name);
            Ok(())
        })
    }

    fn message(&self, name: &str, message: &str) -> Result<Option<String>> {
        self.change("message", name, &format!(" {message}"), |s| {
            s.get("message", name)?;
            s.message(name, message)?;
            Ok(None)
        })
    }

    fn table(&self, name: &str) -> Result<Vec<TableLine>> {
        let s = self.lock();
        Ok(s.get("table", name)?.live.clone().unwrap_or_default())
    }

    fn inactive_table(&self, name: &str) -> Result<Vec<TableLine>> {
        let s = self.lock();
        Ok(s.get("inactive table", name)?
            .inactive
            .clone()
            .unwrap_or_default())
    }

    fn status(&self, name: &str) -> Result<Vec<(u64, u64, String, String)>> {
        let s = self.lock();
        let d = s.get("status", name)?;
        let lines = d.live.iter().flatten().map(|l| {
            let status = match &l.target {
                Target::ThinPool { .. } => s
                    .pool_key(name)
                    .and_then(|k| s.pools.get(&k))
                    .map_or_else(|| "Fail".to_owned(), Pool::status),
                Target::Thin {
                    pool: DevRef::Number(a, b),
                    device_id,
                    ..
                } => {
                    let has = s
                        .by_number(*a, *b)
                        .and_then(|(p, _)| s.pool_key(p))
                        .and_then(|k| s.pools.get(&k))
                        .is_some_and(|p| p.thins.contains(device_id));
                    if has { "0 -" } else { "Fail" }.to_owned()
                }
                _ => String::new(),
            };
            (l.start, l.length, l.target.type_name().to_owned(), status)
        });
        Ok(lines.collect())
    }

    fn devices(&self) -> Result<Vec<Device>> {
        Ok(self
            .lock()
            .devices
            .iter()
            .map(|(name, d)| Device {
                name: name.clone(),
                major: d.major,
                minor: d.minor,
                event_nr: Some(d.event_nr),
            })
            .collect())
    }

    fn device_number(&self, path: &Path) -> io::Result<(u32, u32)> {
        let s = self.lock();
        match s.nodes.get(path) {
            Some(Some(n)) => return Ok(*n),
            Some(None) => return Err(io::ErrorKind::NotFound.into()),
            None => {}
        }
        if let Some(n) = s.disks.get(path) {
            return Ok(*n);
        }
        drop(s);
        nodes::block_device_number(path)
    }

    fn make_node(&self, root: &Path, name: &str, major: u32, minor: u32) -> io::Result<()> {
        self.lock()
            .nodes
            .insert(root.join("mapper").join(name), Some((major, minor)));
        Ok(())
    }

    fn remove_node(&self, root: &Path, name: &str) -> io::Result<()> {
        self.lock()
            .nodes
            .insert(root.join("mapper").join(name), None);
        Ok(())
    }

    fn link_points_to(&self, root: &Path, link: &str, name: &str) -> bool {
        match self.lock().links.get(&nodes::under(root, link)) {
            Some(target) => target.as_deref() == Some(&Path::new("/dev/mapper").join(name)),
            None => nodes::link_points_to(root, link, name),
        }
    }

    fn make_link(&self, root: &Path, link: &str, name: &str) -> io::Result<()> {
        self.lock().links.insert(
            nodes::under(root, link),
            Some(Path::new("/dev/mapper").join(name)),
        );
        Ok(())
    }

    fn remove_link(&self, root: &Path, link: &str) -> io::Result<()> {
        self.lock().links.insert(nodes::under(root, link), None);
        Ok(())
    }
}
