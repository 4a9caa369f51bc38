//! The cairn command line: parses, calls the library, prints. Nothing else.

use std::path::PathBuf;
use std::process::ExitCode;

use cairn::host::{parse_bytes, parse_lv_size, split_lv_name, NewPool, SnapshotKind};
use cairn::units::Bytes;
use cairn::{Host, HostOptions, Outcome, Run};

use clap::{Parser, Subcommand};

mod cli_drbd;
mod cli_stack;

#[derive(Parser)]
#[command(
    name = "cairn",
    version,
    about = "Storage engine for LXC hosts: LVM2, dm-cache, DRBD and thin pools driven without lvm2 or drbdadm",
    long_about = "cairn drives the kernel directly: device-mapper ioctls, DRBD's generic netlink \
                  family and LVM2's on-disk metadata, so lvm2 and drbd-utils keep seeing \
                  everything as their own. Commands that print data accept --json."
)]
struct Cli {
    /// Print machine-readable JSON instead of text
    #[arg(long, global = true)]
    json: bool,
    /// Look for PVs only on these devices (comma-separated; default: all block devices)
    // Its own id: subcommands have positional `devices` of their own, and
    // clap would merge arguments that share an id.
    #[arg(long = "devices", global = true, value_delimiter = ',')]
    scan_devices: Vec<PathBuf>,
    /// Copies of old metadata kept per VG in /etc/lvm/archive at least (lvm2's retain_min; cairn prunes only its own copies, older than 30 days; 0: none)
    #[arg(long, global = true, default_value_t = HostOptions::default().archive_keep)]
    archive_keep: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the steps between what exists and the stack file (changes nothing)
    Plan {
        /// The stack file (default /etc/cairn/stack.toml)
        file: Option<PathBuf>,
    },
    /// Make the stack as the file says: only what differs; journaled, so a run after a
    /// crash finishes it
    Apply {
        /// The stack file (default /etc/cairn/stack.toml)
        file: Option<PathBuf>,
        /// Shrink LVs the file makes smaller (the data past their new end is lost)
        #[arg(long)]
        allow_shrink: bool,
    },
    /// Bring the stack up after a reboot (VGs, cache, DRBD primary, pools, containers
    /// marked autostart); makes nothing new
    Up {
        /// The stack file (default /etc/cairn/stack.toml)
        file: Option<PathBuf>,
    },
    /// Take the stack down, the reverse of up: containers stopped, LVs deactivated, DRBD down
    Down {
        /// The stack file (default /etc/cairn/stack.toml)
        file: Option<PathBuf>,
    },
    /// The whole stack as a tree: sizes, states, cache hits, DRBD roles and sync, pool use,
    /// containers (--json: everything)
    Status {
        /// The stack file (default /etc/cairn/stack.toml)
        file: Option<PathBuf>,
    },
    /// Print the lvm.conf settings that keep lvm2 on this host off the stack's lower layers
    LvmFilter {
        /// The stack file (default /etc/cairn/stack.toml)
        file: Option<PathBuf>,
    },
    /// LXC containers on thin volumes: create, start, stop, list, remove
    Container {
        /// The stack file (default /etc/cairn/stack.toml, if it exists)
        #[arg(short = 'f', long = "file", global = true)]
        file: Option<PathBuf>,
        #[command(subcommand)]
        command: cli_stack::ContainerCommand,
    },
    /// DRBD 8.4 through its netlink family, with drbdadm's verbs and resource files
    Drbd {
        /// The drbd-utils configuration to read
        #[arg(short = 'c', long = "config-file")]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: cli_drbd::DrbdCommand,
    },
    /// Device-mapper: what the kernel has (read-only)
    Dm {
        #[command(subcommand)]
        command: DmCommand,
    },
    /// Report physical volumes (as pvs; --json prints lvm2's JSON report, sizes in bytes)
    Pvs {
        /// Only the PVs of these volume groups (comma-separated)
        #[arg(long, value_delimiter = ',')]
        vg: Vec<String>,
    },
    /// Report volume groups (as vgs)
    Vgs {
        /// Volume groups to show (default: all)
        #[arg(value_delimiter = ',')]
        vgs: Vec<String>,
    },
    /// Report logical volumes (as lvs)
    Lvs {
        /// Include hidden LVs (pool data/metadata, cache origins, ...), shown as [name]
        #[arg(short = 'a', long)]
        all: bool,
        /// Volume groups to show (default: all)
        #[arg(value_delimiter = ',')]
        vgs: Vec<String>,
    },
    /// Physical volumes: create, remove
    Pv {
        #[command(subcommand)]
        command: PvCommand,
    },
    /// Volume groups: create, extend, change tags, activate, deactivate, remove
    Vg {
        #[command(subcommand)]
        command: VgCommand,
    },
    /// Logical volumes: create, extend, reduce, remove, activate, deactivate
    Lv {
        #[command(subcommand)]
        command: LvCommand,
    },
    /// Thin pools: create, extend
    Thinpool {
        #[command(subcommand)]
        command: ThinpoolCommand,
    },
    /// Snapshots: create, remove, merge
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
    /// dm-cache: cache pools, attach one to an LV, detach it
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
}

#[derive(Subcommand)]
enum CacheCommand {
    /// Create a cache pool (as lvcreate --type cache-pool -L SIZE -n POOL VG [PV...]):
    /// data and metadata (zeroed), the VG's pool metadata spare, sized as lvm2 sizes them
    Create {
        /// The pool as VG/POOL
        pool: String,
        /// Allocate only on these PVs (the fast ones)
        pvs: Vec<PathBuf>,
        /// Data size: how much the cache holds (lvm2 units; bare numbers MiB)
        #[arg(short = 'L', long)]
        size: String,
        /// Metadata size (default: 4 MiB + 44 bytes per chunk, rounded up to extents)
        #[arg(long)]
        poolmetadatasize: Option<String>,
        /// Chunk size, a multiple of 32 KiB (default: 64 KiB, larger for pools of over 1 M chunks)
        #[arg(short = 'c', long)]
        chunksize: Option<String>,
        /// writethrough, writeback or passthrough (default: chosen at attach, writethrough)
        #[arg(long)]
        cachemode: Option<String>,
        /// smq or mq (default: chosen at attach, smq)
        #[arg(long)]
        cachepolicy: Option<String>,
        /// Print the metadata commit and the zeroing and change nothing
        #[arg(long)]
        plan: bool,
    },
    /// Cache an LV with an unused cache pool (as lvconvert --type cache --cachepool POOL
    /// VG/LV); an active LV is reloaded live
    Attach {
        /// The LV as VG/LV
        lv: String,
        /// The cache pool of the same VG
        #[arg(long)]
        pool: String,
        /// writethrough (default), writeback or passthrough
        #[arg(long)]
        cachemode: Option<String>,
        /// smq (default) or mq
        #[arg(long)]
        cachepolicy: Option<String>,
        /// Print the metadata commit and device-mapper steps in order and change nothing
        #[arg(long)]
        plan: bool,
    },
    /// Uncache an LV: dirty blocks are written back first (cleaner policy), then the LV is
    /// reloaded as it was; the pool is kept unused (as lvconvert --splitcache) or removed
    /// with --remove-pool (as lvconvert --uncache)
    Detach {
        /// The LV as VG/LV
        lv: String,
        /// Remove the cache pool too
        #[arg(long)]
        remove_pool: bool,
        /// Print the metadata commits and device-mapper steps in order and change nothing
        #[arg(long)]
        plan: bool,
    },
}

#[derive(Subcommand)]
enum ThinpoolCommand {
    /// Give a thin pool more data space (as lvextend -L [+]SIZE VG/POOL), more metadata
    /// space (as lvextend --poolmetadatasize [+]SIZE VG/POOL), or both; an active pool is
    /// reloaded live
    Extend {
        /// The pool as VG/POOL
        pool: String,
        /// Allocate only on these PVs
        pvs: Vec<PathBuf>,
        /// New data size, or +SIZE more, or +N%FREE
        #[arg(
            short = 'L',
            long,
            allow_hyphen_values = true,
            required_unless_present = "poolmetadatasize"
        )]
        size: Option<String>,
        /// New metadata size, or +SIZE more (grows the VG's pool metadata spare with it)
        #[arg(long, allow_hyphen_values = true)]
        poolmetadatasize: Option<String>,
        /// Print the metadata commits and device-mapper steps in order and change nothing
        #[arg(long)]
        plan: bool,
    },
    /// Create a thin pool (as lvcreate -L SIZE -T VG/POOL): data, metadata (zeroed),
    /// the VG's pool metadata spare, sized as lvm2 sizes them
    Create {
        /// The pool as VG/POOL
        pool: String,
        /// Allocate only on these PVs
        pvs: Vec<PathBuf>,
        /// Data size (lvm2 units; bare numbers MiB)
        #[arg(short = 'L', long)]
        size: String,
        /// Metadata size (default: 64 bytes per chunk, 2 MiB to 15.875 GiB)
        #[arg(long)]
        poolmetadatasize: Option<String>,
        /// Chunk size, 64 KiB to 1 GiB, a multiple of 64 KiB (default: 64 KiB, larger for big pools)
        #[arg(short = 'c', long)]
        chunksize: Option<String>,
        /// Zero new blocks before first use (y|n)
        #[arg(short = 'Z', long, default_value = "y")]
        zero: String,
        /// Discards: passdown, nopassdown or ignore
        #[arg(long, default_value = "passdown")]
        discards: String,
        /// Leave the pool inactive
        #[arg(long)]
        inactive: bool,
        /// Print the metadata commits and device-mapper steps in order and change nothing
        #[arg(long)]
        plan: bool,
    },
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Snapshot containers at one instant: every one frozen (processes and file system),
    /// all their volumes' thin snapshots in one pool transaction, all thawed; prints the
    /// freeze window
    Containers(cli_stack::SnapshotContainers),
    /// Remove a thick or thin snapshot (as lvremove VG/SNAP); refused while it is open
    Remove {
        /// The snapshot as VG/SNAP
        snapshot: String,
        /// Confirm: the snapshot's data is destroyed
        #[arg(long)]
        yes: bool,
        /// Print the metadata commits and device-mapper steps in order and change nothing
        #[arg(long)]
        plan: bool,
    },
    /// Merge a thick snapshot back into its origin (as lvconvert --merge VG/SNAP): the
    /// origin returns to the snapshot's content; waits for the kernel, then removes the
    /// snapshot. An open or inactive origin merges on its next activation
    Merge {
        /// The snapshot as VG/SNAP
        snapshot: String,
        /// Print the metadata commits and device-mapper steps in order and change nothing
        #[arg(long)]
        plan: bool,
    },
    /// Snapshot an LV (as lvcreate -s VG/LV -n NAME [-L COW]): a thin LV gets a thin
    /// snapshot in its pool (activation skip, left inactive unless --activate); with -L,
    /// a linear LV gets a thick snapshot with a COW store of that size
    Create {
        /// The origin as VG/LV
        origin: String,
        /// Name of the snapshot
        #[arg(short = 'n', long)]
        name: String,
        /// Size of the COW store: makes a thick snapshot
        #[arg(short = 'L', long)]
        size: Option<String>,
        /// Chunk size of a thick snapshot, a power of 2 from 4 KiB to 512 KiB (default 4 KiB)
        #[arg(short = 'c', long, requires = "size")]
        chunksize: Option<String>,
        /// Activate a thin snapshot (a thick snapshot is active when its origin is)
        #[arg(long, conflicts_with = "size")]
        activate: bool,
        /// Print the metadata commits and device-mapper steps in order and change nothing
        #[arg(long)]
        plan: bool,
    },
}

#[derive(Subcommand)]
enum LvCommand {
    /// Create an LV: linear with -L (as lvcreate -L SIZE -n NAME VG [PV...]), or thin
    /// with -V and -T (as lvcreate -V SIZE -T VG/POOL -n NAME)
    Create {
        /// The volume group
        vg: String,
        /// Allocate only on these PVs (linear)
        pvs: Vec<PathBuf>,
        /// Name of the new LV
        #[arg(short = 'n', long)]
        name: String,
        /// Size of a linear LV (lvm2 units: 10G, 512m, bare numbers MiB; or N%FREE)
        #[arg(short = 'L', long, conflicts_with_all = ["virtual_size", "thinpool"])]
        size: Option<String>,
        /// Virtual size of a thin LV
        #[arg(short = 'V', long = "virtualsize", requires = "thinpool")]
        virtual_size: Option<String>,
        /// The thin pool of the VG to put a thin LV in
        #[arg(short = 'T', long, requires = "virtual_size")]
        thinpool: Option<String>,
        /// Leave the new LV inactive
        #[arg(long)]
        inactive: bool,
        /// Print the metadata commits and device-mapper steps in order and change nothing
        #[arg(long)]
        plan: bool,
    },
    /// Grow an LV (as lvextend -L [+]SIZE VG/LV [PV...]): linear, thin, thin pool (its
    /// data), cached (its origin), thick snapshot (its COW store), snapshot origin
    /// (inactive only); an active LV is reloaded live
    Extend {
        /// The LV as VG/LV
        lv: String,
        /// Allocate only on these PVs
        pvs: Vec<PathBuf>,
        /// New size, or +SIZE more, or N%FREE more
        #[arg(short = 'L', long, allow_hyphen_values = true)]
        size: String,
        /// Print the metadata commits and device-mapper steps in order and change nothing
        #[arg(long)]
        plan: bool,
    },
    /// Shrink a linear, thin or cached LV (as lvreduce -L SIZE VG/LV): data past the new
    /// end is lost; refused while the LV is open
    Reduce {
        /// The LV as VG/LV
        lv: String,
        /// New size
        #[arg(short = 'L', long)]
        size: String,
        /// Confirm: shrink the file system first, data past the new end is destroyed
        #[arg(long)]
        yes: bool,
        /// Print the metadata commits and device-mapper steps in order and change nothing
        #[arg(long)]
        plan: bool,
    },
    /// Remove a linear or thin LV (as lvremove VG/LV); refused while it is open
    Remove {
        /// The LV as VG/LV
        lv: String,
        /// Confirm: the LV's data is destroyed
        #[arg(long)]
        yes: bool,
        /// Print the metadata commits and device-mapper steps in order and change nothing
        #[arg(long)]
        plan: bool,
    },
    /// Activate LVs, with everything under them (as lvchange -ay VG/LV)
    Activate {
        /// LVs as VG/LV, all of one VG
        #[arg(required = true)]
        lvs: Vec<String>,
        /// Activate LVs flagged "activation skip" too (thin snapshots), as lvchange -K
        #[arg(short = 'K', long)]
        ignore_activation_skip: bool,
        /// Print the device-mapper steps in order and change nothing
        #[arg(long)]
        plan: bool,
    },
    /// Deactivate LVs, and the layers under them nothing else uses (as lvchange -an VG/LV)
    Deactivate {
        /// LVs as VG/LV, all of one VG
        #[arg(required = true)]
        lvs: Vec<String>,
        /// Print the device-mapper steps in order and change nothing
        #[arg(long)]
        plan: bool,
    },
}

#[derive(Subcommand)]
enum PvCommand {
    /// Make devices LVM physical volumes (as pvcreate: label, header, metadata area)
    Create {
        #[arg(required = true)]
        devices: Vec<PathBuf>,
        /// Wipe the signatures found (filesystem, RAID member, partition
        /// table, DRBD metadata, ...) and create the PV over them
        #[arg(long)]
        force: bool,
        /// Accept regular files (images) as well as block devices
        #[arg(long)]
        allow_file: bool,
    },
    /// Wipe the LVM label of PVs that belong to no VG (as pvremove)
    Remove {
        #[arg(required = true)]
        devices: Vec<PathBuf>,
        /// Confirm: the label is destroyed
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum VgCommand {
    /// Create a volume group on PVs (as vgcreate)
    Create {
        name: String,
        #[arg(required = true)]
        devices: Vec<PathBuf>,
        /// Extent size (lvm2 units: 4M, 8m, 1g; bare numbers are MiB)
        #[arg(short = 's', long, default_value = "4M")]
        extent_size: String,
    },
    /// Add PVs to a volume group (as vgextend)
    Extend {
        name: String,
        #[arg(required = true)]
        devices: Vec<PathBuf>,
        /// Take back PVs of the VG that lvm2 flagged MISSING (the VG was written while they
        /// were away) and that are back (as vgextend --restoremissing)
        #[arg(long)]
        restoremissing: bool,
    },
    /// Add or remove tags (as vgchange --addtag/--deltag)
    Change {
        name: String,
        #[arg(long = "addtag")]
        add: Vec<String>,
        #[arg(long = "deltag")]
        del: Vec<String>,
    },
    /// Activate every LV of a volume group (as vgchange -ay)
    Activate {
        name: String,
        /// Activate LVs flagged "activation skip" too (thin snapshots), as vgchange -K
        #[arg(short = 'K', long)]
        ignore_activation_skip: bool,
        /// Print the device-mapper steps in order and change nothing
        #[arg(long)]
        plan: bool,
    },
    /// Deactivate every LV of a volume group (as vgchange -an)
    Deactivate {
        name: String,
        /// Print the device-mapper steps in order and change nothing
        #[arg(long)]
        plan: bool,
    },
    /// Remove a volume group; its PVs stay PVs (as vgremove)
    Remove {
        name: String,
        /// Confirm the removal
        #[arg(long)]
        yes: bool,
        /// Remove it even if it still has logical volumes (they must be inactive)
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum DmCommand {
    /// List the kernel's loaded target types with versions (as `dmsetup targets`)
    Targets,
    /// List device-mapper devices with major:minor (as `dmsetup ls`)
    Ls,
}

fn main() -> ExitCode {
    // A report piped into `head` ends quietly, as lvm2's does, instead of
    // panicking on the closed pipe (Rust ignores SIGPIPE by default).
    // SAFETY: the default action for SIGPIPE has no handler to race with.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        )
    };
    let cli = Cli::parse();
    let result = host(&cli).and_then(|host| run(&cli, &host));
    for w in cairn::host::take_warnings() {
        eprintln!("cairn: warning: {w}");
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Causes most messages quote already are not repeated.
            let mut message = format!("cairn: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                let cause = s.to_string();
                if !message.contains(&cause) {
                    message.push_str(": ");
                    message.push_str(&cause);
                }
                source = s.source();
            }
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The host as the command line and its environment describe it: the
/// library reads no environment variable, so this is where they are read.
fn host(cli: &Cli) -> Res<Host> {
    let mut options = HostOptions {
        scan_devices: cli.scan_devices.clone(),
        archive_keep: cli.archive_keep,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        ..HostOptions::default()
    };
    if let Command::Drbd {
        config: Some(c), ..
    } = &cli.command
    {
        options.drbd_config = c.clone();
    }
    // Only the stack's commands keep state (the apply journal and lock):
    // the others never read the variable, so a bad value stops only those.
    match std::env::var_os("CAIRN_STATE_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => options.state_dir = dir,
        Some(dir) if keeps_state(&cli.command) => {
            return Err(format!(
                "CAIRN_STATE_DIR={dir:?} is not an absolute path: give one (default {}), \
                 or leave the variable unset",
                options.state_dir.display()
            )
            .into())
        }
        _ => {}
    }
    let udev = std::env::var_os("CAIRN_UDEV_TIMEOUT");
    match cairn::host::parse_udev_wait(udev.as_ref().map(|v| v.to_string_lossy()).as_deref()) {
        Ok(wait) => options.udev_wait = wait,
        Err(why) => eprintln!("cairn: warning: CAIRN_UDEV_TIMEOUT={why}"),
    }
    Ok(Host::new(options)?)
}

/// Whether `command` opens the state directory (the stack's journal and
/// apply lock, or a report of an interrupted apply).
fn keeps_state(command: &Command) -> bool {
    matches!(
        command,
        Command::Plan { .. }
            | Command::Apply { .. }
            | Command::Up { .. }
            | Command::Down { .. }
            | Command::Status { .. }
            | Command::Container { .. }
    )
}

/// Devices the scan could not read, on stderr (the report goes on without them).
fn warn_problems(problems: &[String]) {
    for p in problems {
        eprintln!("cairn: warning: {p}");
    }
}

/// What a destructive command says when --yes is missing.
fn needs_yes(what: String) -> Box<dyn std::error::Error> {
    cairn::Error::refused(format!(
        "{what}: nothing was changed; add --yes to go ahead"
    ))
    .into()
}

fn run_mode(plan: bool) -> Run {
    if plan {
        Run::PlanOnly
    } else {
        Run::Apply
    }
}

/// `VG/LV` arguments, all of one VG: (VG, LVs).
fn selection(lvs: &[String]) -> Res<(String, Vec<String>)> {
    let mut vg = String::new();
    let mut names = Vec::new();
    for arg in lvs {
        let (v, lv) = split_lv_name(arg)?;
        if !vg.is_empty() && vg != v {
            return Err(
                format!("{arg:?}: give LVs of one volume group per call ({vg} first)").into(),
            );
        }
        vg = v;
        names.push(lv);
    }
    Ok((vg, names))
}

/// A chunk size (bare numbers are KiB, as lvm2's -c).
fn chunk_size(text: Option<&str>) -> Res<Option<Bytes>> {
    Ok(text
        .map(|t| parse_bytes(t, 1 << 10, "the chunk size"))
        .transpose()?)
}

/// Prints the changes of a `--plan`, or what was done.
fn report(plan: bool, outcome: &Outcome, done: &str) {
    if plan {
        for a in &outcome.changes {
            println!("{a}");
        }
    } else {
        println!("{done}");
    }
    for w in &outcome.warnings {
        eprintln!("cairn: warning: {w}");
    }
}

/// Prints the device-mapper steps of a `--plan`, or what was done.
fn report_steps(plan: bool, outcome: &Outcome, done: &str) {
    if plan {
        if outcome.is_empty() {
            println!("nothing to do");
        }
        for s in &outcome.changes {
            println!("{s}");
        }
    } else if outcome.is_empty() {
        println!("{done} (nothing to do)");
    } else {
        println!("{done}");
    }
}

/// Prints a report as lvm2's JSON or as a table of some columns.
fn print_report(cli: &Cli, report: &cairn::host::Report, columns: &[(&str, &str)]) {
    if cli.json {
        println!("{}", report.to_lvm2_json());
    } else {
        let size_field = |f: &str| f.ends_with("_size") || f.ends_with("_free");
        let cells: Vec<Vec<String>> = report
            .rows
            .iter()
            .map(|r| {
                columns
                    .iter()
                    .map(|(field, _)| {
                        let v = r.get(field).cloned().unwrap_or_default();
                        match v.parse::<u64>() {
                            Ok(b) if size_field(field) => cairn::units::human(b),
                            _ => v,
                        }
                    })
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = columns
            .iter()
            .enumerate()
            .map(|(i, (_, h))| {
                cells
                    .iter()
                    .map(|c| c[i].len())
                    .chain([h.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |items: Vec<&str>| {
            let padded: Vec<String> = items
                .iter()
                .zip(&widths)
                .map(|(s, w)| format!("{s:<w$}"))
                .collect();
            println!("  {}", padded.join(" ").trim_end());
        };
        line(columns.iter().map(|(_, h)| *h).collect());
        for c in &cells {
            line(c.iter().map(String::as_str).collect());
        }
    }
    warn_problems(&report.problems);
}

fn run(cli: &Cli, host: &Host) -> Res<()> {
    match &cli.command {
        Command::Plan { file } => return cli_stack::plan(host, file, cli.json),
        Command::Apply { file, allow_shrink } => {
            return cli_stack::apply(host, file, *allow_shrink, cli.json)
        }
        Command::Up { file } => return cli_stack::up(host, file, cli.json),
        Command::Down { file } => return cli_stack::down(host, file, cli.json),
        Command::Status { file } => return cli_stack::status(host, file, cli.json),
        Command::LvmFilter { file } => return cli_stack::lvm_filter(host, file),
        Command::Container { file, command } => {
            return cli_stack::container(host, file, command, cli.json)
        }
        Command::Pvs { vg } => {
            let cols = [
                ("pv_name", "PV"),
                ("vg_name", "VG"),
                ("pv_attr", "Attr"),
                ("pv_size", "PSize"),
                ("pv_free", "PFree"),
            ];
            print_report(cli, &host.pvs(vg)?, &cols);
        }
        Command::Vgs { vgs } => {
            let cols = [
                ("vg_name", "VG"),
                ("pv_count", "#PV"),
                ("lv_count", "#LV"),
                ("snap_count", "#SN"),
                ("vg_attr", "Attr"),
                ("vg_size", "VSize"),
                ("vg_free", "VFree"),
            ];
            print_report(cli, &host.vgs(vgs)?, &cols);
        }
        Command::Lvs { all, vgs } => {
            let cols = [
                ("lv_name", "LV"),
                ("vg_name", "VG"),
                ("lv_attr", "Attr"),
                ("lv_size", "LSize"),
                ("pool_lv", "Pool"),
                ("origin", "Origin"),
            ];
            print_report(cli, &host.lvs(vgs, *all)?, &cols);
        }
        Command::Pv { command } => match command {
            PvCommand::Create {
                devices,
                force,
                allow_file,
            } => {
                let opts = cairn::host::PvCreate {
                    uuid: None,
                    force: *force,
                    allow_file: *allow_file,
                };
                for d in devices {
                    let uuid = host.pv_create(d, &opts)?;
                    println!(
                        "Physical volume \"{}\" successfully created ({uuid}).",
                        d.display()
                    );
                }
            }
            PvCommand::Remove { devices, yes } => {
                if !yes {
                    return Err(needs_yes(format!(
                        "pv remove wipes the LVM label of {}",
                        devices.len()
                    )));
                }
                for d in devices {
                    host.pv_remove(d)?;
                    println!(
                        "Labels on physical volume \"{}\" successfully wiped.",
                        d.display()
                    );
                }
            }
        },
        Command::Vg { command } => match command {
            VgCommand::Create {
                name,
                devices,
                extent_size,
            } => {
                let size = parse_bytes(extent_size, 1 << 20, "the extent size")?;
                let done = host.vg(name).create(devices, size)?;
                report(
                    false,
                    &done,
                    &format!("Volume group \"{name}\" successfully created"),
                );
            }
            VgCommand::Extend {
                name,
                devices,
                restoremissing,
            } => {
                let vg = host.vg(name);
                let done = if *restoremissing {
                    vg.restore_missing(devices)?
                } else {
                    vg.extend(devices)?
                };
                report(
                    false,
                    &done,
                    &format!("Volume group \"{name}\" successfully extended"),
                );
            }
            VgCommand::Change { name, add, del } => {
                let done = host.vg(name).change_tags(add, del)?;
                report(
                    false,
                    &done,
                    &format!("Volume group \"{name}\" successfully changed"),
                );
            }
            VgCommand::Activate {
                name,
                ignore_activation_skip,
                plan,
            } => {
                let done = host
                    .vg(name)
                    .activate(*ignore_activation_skip, run_mode(*plan))?;
                report_steps(*plan, &done, &format!("volume group {name} is active"));
            }
            VgCommand::Deactivate { name, plan } => {
                let done = host.vg(name).deactivate(run_mode(*plan))?;
                report_steps(*plan, &done, &format!("volume group {name} is inactive"));
            }
            VgCommand::Remove { name, yes, force } => {
                if !yes {
                    return Err(needs_yes(format!("vg remove destroys volume group {name}")));
                }
                host.vg(name).remove(*force)?;
                println!("Volume group \"{name}\" successfully removed");
            }
        },
        Command::Thinpool { command } => match command {
            ThinpoolCommand::Extend {
                pool,
                pvs,
                size,
                poolmetadatasize,
                plan,
            } => {
                let (vg, name) = split_lv_name(pool)?;
                let size = size
                    .as_deref()
                    .map(|s| parse_lv_size(s, true))
                    .transpose()?;
                let metadata = poolmetadatasize
                    .as_deref()
                    .map(|s| parse_lv_size(s, true))
                    .transpose()?;
                let done = host
                    .pool(&vg, &name)
                    .extend(size, metadata, pvs, run_mode(*plan))?;
                report(
                    *plan,
                    &done,
                    &format!("Logical volume {vg}/{name} successfully resized."),
                );
            }
            ThinpoolCommand::Create {
                pool,
                pvs,
                size,
                poolmetadatasize,
                chunksize,
                zero,
                discards,
                inactive,
                plan,
            } => {
                let (vg, name) = split_lv_name(pool)?;
                let zero = match zero.as_str() {
                    "y" | "yes" => true,
                    "n" | "no" => false,
                    other => return Err(format!("-Z {other:?}: give y or n").into()),
                };
                let new = NewPool {
                    vg,
                    name: name.clone(),
                    data_bytes: parse_bytes(size, 1 << 20, "a pool's size")?,
                    metadata_bytes: poolmetadatasize
                        .as_deref()
                        .map(|m| parse_bytes(m, 1 << 20, "the metadata size"))
                        .transpose()?,
                    chunk_bytes: chunk_size(chunksize.as_deref())?,
                    zero,
                    discards: discards.clone(),
                    pvs: pvs.clone(),
                    activate: !inactive,
                };
                let done = host.create_thin_pool(&new, run_mode(*plan))?;
                report(*plan, &done, &format!("Logical volume \"{name}\" created."));
            }
        },
        Command::Cache { command } => match command {
            CacheCommand::Create {
                pool,
                pvs,
                size,
                poolmetadatasize,
                chunksize,
                cachemode,
                cachepolicy,
                plan,
            } => {
                let (vg, name) = split_lv_name(pool)?;
                let new = cairn::host::NewCachePool {
                    vg,
                    name: name.clone(),
                    data_bytes: parse_bytes(size, 1 << 20, "a cache pool's size")?,
                    metadata_bytes: poolmetadatasize
                        .as_deref()
                        .map(|m| parse_bytes(m, 1 << 20, "the metadata size"))
                        .transpose()?,
                    chunk_bytes: chunk_size(chunksize.as_deref())?,
                    mode: cachemode.clone(),
                    policy: cachepolicy.clone(),
                    pvs: pvs.clone(),
                };
                let done = host.create_cache_pool(&new, run_mode(*plan))?;
                report(*plan, &done, &format!("Logical volume \"{name}\" created."));
            }
            CacheCommand::Attach {
                lv,
                pool,
                cachemode,
                cachepolicy,
                plan,
            } => {
                let (vg, name) = split_lv_name(lv)?;
                let pool = match pool.split_once('/') {
                    Some((pvg, p)) if pvg == vg => p.to_owned(),
                    Some(_) => {
                        return Err(format!("the cache pool {pool} is not in VG {vg}").into())
                    }
                    None => pool.clone(),
                };
                let done = host.lv(&vg, &name).cache_attach(
                    &pool,
                    cachemode.clone(),
                    cachepolicy.clone(),
                    run_mode(*plan),
                )?;
                report(
                    *plan,
                    &done,
                    &format!("Logical volume {vg}/{name} is now cached."),
                );
            }
            CacheCommand::Detach {
                lv,
                remove_pool,
                plan,
            } => {
                let (vg, name) = split_lv_name(lv)?;
                let done =
                    host.lv(&vg, &name)
                        .cache_detach(*remove_pool, run_mode(*plan), &mut |p| {
                            if let cairn::Progress::Note(line) = p {
                                eprintln!("{line}");
                            }
                        })?;
                report(
                    *plan,
                    &done,
                    &format!("Logical volume {vg}/{name} is not cached."),
                );
            }
        },
        Command::Snapshot { command } => match command {
            SnapshotCommand::Containers(args) => {
                return cli_stack::snapshot_containers(host, args, cli.json)
            }
            SnapshotCommand::Remove {
                snapshot,
                yes,
                plan,
            } => {
                if !yes && !plan {
                    return Err(needs_yes(format!(
                        "snapshot remove destroys {snapshot} and its data"
                    )));
                }
                let (vg, name) = split_lv_name(snapshot)?;
                let done = host.lv(&vg, &name).remove_snapshot(run_mode(*plan))?;
                report(
                    *plan,
                    &done,
                    &format!("Logical volume \"{name}\" successfully removed."),
                );
            }
            SnapshotCommand::Merge { snapshot, plan } => {
                let (vg, name) = split_lv_name(snapshot)?;
                let done = host.lv(&vg, &name).merge(run_mode(*plan))?;
                let message = if done.merged() {
                    format!("Merge of snapshot into logical volume {vg}/{name} has finished.")
                } else {
                    format!(
                        "Merging of snapshot {vg}/{name} will occur on the next activation of its \
                         origin; run this command again after it to finish the merge."
                    )
                };
                report(*plan, &done, &message);
            }
            SnapshotCommand::Create {
                origin,
                name,
                size,
                chunksize,
                activate,
                plan,
            } => {
                let (vg, origin) = split_lv_name(origin)?;
                let kind = match size {
                    Some(size) => SnapshotKind::Thick {
                        cow_bytes: parse_bytes(size, 1 << 20, "a COW size")?,
                        chunk_bytes: chunk_size(chunksize.as_deref())?,
                    },
                    None => SnapshotKind::Thin {
                        activate: *activate,
                    },
                };
                let done = host
                    .lv(&vg, &origin)
                    .snapshot(name, kind, run_mode(*plan))?;
                report(*plan, &done, &format!("Logical volume \"{name}\" created."));
            }
        },
        Command::Lv { command } => match command {
            LvCommand::Create {
                vg,
                pvs,
                name,
                size,
                virtual_size,
                thinpool,
                inactive,
                plan,
            } => {
                let done = match (size, virtual_size, thinpool) {
                    (None, Some(virtual_size), Some(thinpool)) => {
                        let size = parse_bytes(virtual_size, 1 << 20, "a thin LV's virtual size")?;
                        if !pvs.is_empty() {
                            return Err("a thin LV takes no PVs: its pool decides".into());
                        }
                        host.pool(vg, thinpool).create_volume(
                            name,
                            size,
                            !inactive,
                            run_mode(*plan),
                        )?
                    }
                    (Some(size), None, None) => host.lv(vg, name).create_linear(
                        parse_lv_size(size, false)?,
                        pvs,
                        !inactive,
                        run_mode(*plan),
                    )?,
                    _ => {
                        return Err(
                            "give -L SIZE for a linear LV, or -V SIZE -T POOL for a thin LV".into(),
                        )
                    }
                };
                report(*plan, &done, &format!("Logical volume \"{name}\" created."));
            }
            LvCommand::Extend {
                lv,
                pvs,
                size,
                plan,
            } => {
                let (vg, name) = split_lv_name(lv)?;
                let done =
                    host.lv(&vg, &name)
                        .extend(parse_lv_size(size, true)?, pvs, run_mode(*plan))?;
                report(
                    *plan,
                    &done,
                    &format!("Logical volume {vg}/{name} successfully resized."),
                );
            }
            LvCommand::Reduce {
                lv,
                size,
                yes,
                plan,
            } => {
                if !yes && !plan {
                    return Err(needs_yes(format!(
                        "lv reduce destroys the data of {lv} past its new end"
                    )));
                }
                let (vg, name) = split_lv_name(lv)?;
                let done = host
                    .lv(&vg, &name)
                    .reduce(parse_lv_size(size, false)?, run_mode(*plan))?;
                report(
                    *plan,
                    &done,
                    &format!("Logical volume {vg}/{name} successfully resized."),
                );
            }
            LvCommand::Remove { lv, yes, plan } => {
                if !yes && !plan {
                    return Err(needs_yes(format!("lv remove destroys {lv} and its data")));
                }
                let (vg, name) = split_lv_name(lv)?;
                let done = host.lv(&vg, &name).remove(run_mode(*plan))?;
                report(
                    *plan,
                    &done,
                    &format!("Logical volume \"{name}\" successfully removed."),
                );
            }
            LvCommand::Activate {
                lvs,
                ignore_activation_skip,
                plan,
            } => {
                let (vg, names) = selection(lvs)?;
                let done =
                    host.activate_lvs(&vg, &names, *ignore_activation_skip, run_mode(*plan))?;
                report_steps(*plan, &done, &format!("{} active", lvs.join(", ")));
            }
            LvCommand::Deactivate { lvs, plan } => {
                let (vg, names) = selection(lvs)?;
                let done = host.deactivate_lvs(&vg, &names, run_mode(*plan))?;
                report_steps(*plan, &done, &format!("{} inactive", lvs.join(", ")));
            }
        },
        Command::Drbd { config: _, command } => cli_drbd::run(host, cli.json, command)?,
        Command::Dm { command } => match command {
            DmCommand::Targets => {
                let targets = host.dm_targets()?;
                if cli.json {
                    println!("{}", serde_json::to_string_pretty(&targets)?);
                } else {
                    for t in targets {
                        let [a, b, c] = t.version;
                        println!("{:<16} v{a}.{b}.{c}", t.name);
                    }
                }
            }
            DmCommand::Ls => {
                let devices = host.dm_devices()?;
                if cli.json {
                    println!("{}", serde_json::to_string_pretty(&devices)?);
                } else if devices.is_empty() {
                    println!("No devices found");
                } else {
                    for d in devices {
                        println!("{}\t({}:{})", d.name, d.major, d.minor);
                    }
                }
            }
        },
    }
    Ok(())
}
