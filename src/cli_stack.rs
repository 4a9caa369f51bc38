//! `cairn plan|apply|up|down|status|lvm-filter` and `cairn container ...`:
//! the stack (src/stack) on the command line.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Subcommand;

use cairn::host::{
    parse_bytes, ContainerSnapshotRequest, NewContainer, StackHandle, StackReport as Report,
};
use cairn::{Host, Progress, Run};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(Subcommand)]
pub enum ContainerCommand {
    /// Make a container: a thin volume, ext4 on it, a root filesystem and an LXC config
    /// whose rootfs is the volume (as `lxc-create -B lvm`), so `lxc-start -n NAME` works
    Create {
        name: String,
        /// The volume's size (lvm2 units; bare numbers MiB)
        #[arg(short = 'L', long)]
        size: String,
        /// The thin pool as VG/POOL (default: the stack file's only pool)
        #[arg(long)]
        pool: Option<String>,
        /// Root filesystem from this tarball (any compression tar reads)
        #[arg(long, conflicts_with = "busybox")]
        rootfs: Option<PathBuf>,
        /// Root filesystem built from the host's static busybox (the default)
        #[arg(long)]
        busybox: bool,
        /// Start it with `cairn up` (lxc.start.auto = 1)
        #[arg(long)]
        autostart: bool,
        /// Start it now
        #[arg(long)]
        start: bool,
    },
    /// Start a container (lxc-start)
    Start { name: String },
    /// Stop a container (lxc-stop)
    Stop { name: String },
    /// Containers on the stack's VGs: state, volume, use
    List,
    /// Remove a container: stop it, remove its volume and its LXC config (asks unless --yes)
    Remove {
        name: String,
        /// Do not ask
        #[arg(long)]
        yes: bool,
    },
    /// Snapshot a container's volume (a thin snapshot; a running container is frozen for
    /// the instant of the snapshot, and thawed by a watchdog even if cairn dies)
    Snapshot {
        name: String,
        /// The snapshot's name (default: the UTC time, YYYYMMDD-HHMMSS)
        snapshot: Option<String>,
        #[command(flatten)]
        freeze: FreezeArgs,
        /// Print the metadata commits and device-mapper steps in order and change nothing
        #[arg(long)]
        plan: bool,
    },
    /// A container's snapshots: name, when, origin, kind, who made it
    Snapshots { name: String },
    /// Remove a snapshot of a container (asks unless --yes)
    SnapshotRemove {
        name: String,
        snapshot: String,
        /// Do not ask
        #[arg(long)]
        yes: bool,
        /// Print the metadata commits and device-mapper steps in order and change nothing
        #[arg(long)]
        plan: bool,
    },
}

/// How long a snapshot may keep containers frozen.
#[derive(clap::Args, Clone, Copy)]
pub struct FreezeArgs {
    /// Thaw the containers after this many seconds whatever happens (the snapshots are
    /// then only crash-consistent)
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    freeze_deadline: f64,
}

impl FreezeArgs {
    fn deadline(self) -> Res<Duration> {
        Duration::try_from_secs_f64(self.freeze_deadline)
            .ok()
            .filter(|d| !d.is_zero() && *d <= Duration::from_secs(3600))
            .ok_or_else(|| {
                format!(
                    "--freeze-deadline {}: give seconds, more than 0 and at most 3600",
                    self.freeze_deadline
                )
                .into()
            })
    }
}

/// Takes the snapshots and prints what was done.
fn take_snapshots(
    stack: &StackHandle<'_>,
    containers: Vec<String>,
    snapshot: Option<String>,
    group: Option<String>,
    freeze: FreezeArgs,
    plan: bool,
    json: bool,
) -> Res<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let req = ContainerSnapshotRequest {
        containers,
        name: snapshot.unwrap_or_else(|| cairn::host::default_snapshot_name(now)),
        group,
        freeze_deadline: freeze.deadline()?,
    };
    let run = if plan { Run::PlanOnly } else { Run::Apply };
    let taken = stack.snapshot_containers(&req, run)?;
    for w in taken.warnings.iter().chain(&cairn::host::take_warnings()) {
        eprintln!("cairn: warning: {w}");
    }
    if plan {
        for a in &taken.actions {
            println!("{a}");
        }
        return Ok(());
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&taken)?);
        return Ok(());
    }
    println!(
        "snapshot {} of {} taken",
        req.name,
        req.containers.join(", ")
    );
    match taken.freeze_window_ms {
        Some(ms) => println!("frozen: {} for {ms:.1} ms", taken.frozen.join(", ")),
        None => println!("frozen: none (no container was running)"),
    }
    Ok(())
}

/// `cairn snapshot containers`.
#[derive(clap::Args)]
pub struct SnapshotContainers {
    /// The containers (or --all)
    names: Vec<String>,
    /// Every container of the stack
    #[arg(long)]
    all: bool,
    /// The snapshot's name in each container (default: the UTC time, YYYYMMDD-HHMMSS)
    #[arg(short = 'n', long)]
    name: Option<String>,
    /// A group tag the snapshots share (cairn:group=TAG)
    #[arg(long)]
    tag: Option<String>,
    /// The stack file (default /etc/cairn/stack.toml)
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    #[command(flatten)]
    freeze: FreezeArgs,
    /// Print the metadata commits and device-mapper steps in order and change nothing
    #[arg(long)]
    plan: bool,
}

/// `cairn snapshot containers`.
pub fn snapshot_containers(host: &Host, args: &SnapshotContainers, json: bool) -> Res<()> {
    let SnapshotContainers {
        names,
        all,
        name: snapshot,
        tag: group,
        file,
        freeze,
        plan,
    } = args;
    let stack = load(host, file)?;
    let containers = match (*all, names.is_empty()) {
        (true, true) => stack.all_containers()?,
        (false, false) => names.to_vec(),
        (true, false) => return Err("give container names or --all, not both".into()),
        (false, true) => return Err("give the containers to snapshot, or --all".into()),
    };
    if containers.is_empty() {
        return Err(format!(
            "{} has no container to snapshot",
            stack_path(file).display()
        )
        .into());
    }
    take_snapshots(
        &stack,
        containers,
        snapshot.clone(),
        group.clone(),
        *freeze,
        *plan,
        json,
    )
}

fn stack_path(file: &Option<PathBuf>) -> PathBuf {
    file.clone()
        .unwrap_or_else(|| PathBuf::from(cairn::host::DEFAULT_STACK_FILE))
}

fn load<'h>(host: &'h Host, file: &Option<PathBuf>) -> Res<StackHandle<'h>> {
    Ok(host.stack(&stack_path(file))?)
}

/// `[n] step` when it starts, ` (T ms)` on the same line when it is done;
/// nothing with --json.
fn progress(json: bool) -> impl FnMut(Progress<'_>) {
    move |p| {
        if json {
            return;
        }
        if let Progress::Step { number, step, done } = p {
            match done {
                None => print!("[{number}] {step}"),
                Some(d) => println!(" ({:.0} ms)", d.as_secs_f64() * 1000.0),
            }
            let _ = std::io::stdout().flush();
        }
    }
}

fn print_report(report: &Report, json: bool, what: &str, started: Instant) -> Res<()> {
    if json {
        let out = serde_json::json!({
            "steps": report.steps,
            "notes": report.notes,
            "deferred": report.deferred,
            "resumed": report.resumed.as_ref().map(|r| serde_json::json!({
                "file": r.file,
                "at": r.at,
                "unfinished_containers": r.unfinished_containers,
            })),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    for n in &report.notes {
        println!("note: {n}");
    }
    for d in &report.deferred {
        println!("later: {d}");
    }
    if report.steps.is_empty() && report.deferred.is_empty() {
        println!("nothing to do: the stack is as the file says");
    } else {
        println!(
            "{what}: {} step{} in {:.2} s",
            report.steps.len(),
            if report.steps.len() == 1 { "" } else { "s" },
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// What an interrupted earlier run left, and what this one did about it (stderr).
fn resumed(report: &Report, what: &str, then: &str) {
    if let Some(r) = &report.resumed {
        let at = r.at.as_ref().map_or("between steps".to_owned(), |(n, s)| {
            format!("at step {n} ({s})")
        });
        eprintln!(
            "cairn: the previous {what} of {} was interrupted {at}; {then}",
            r.file
        );
    }
}

pub fn plan(host: &Host, file: &Option<PathBuf>, json: bool) -> Res<()> {
    let stack = load(host, file)?;
    let started = Instant::now();
    let report = stack.plan(&mut |p| {
        if let (false, Progress::Step { number, step, .. }) = (json, p) {
            println!("{number:3}. {step}");
        }
    })?;
    resumed(
        &report,
        "apply",
        "the next apply finishes it (the plan above includes it)",
    );
    print_report(&report, json, "plan", started)
}

pub fn apply(host: &Host, file: &Option<PathBuf>, allow_shrink: bool, json: bool) -> Res<()> {
    let stack = load(host, file)?;
    let started = Instant::now();
    let report = stack.apply(allow_shrink, &mut progress(json))?;
    resumed(&report, "apply", "this run finished it");
    print_report(&report, json, "applied", started)
}

pub fn up(host: &Host, file: &Option<PathBuf>, json: bool) -> Res<()> {
    let stack = load(host, file)?;
    let started = Instant::now();
    let report = stack.up(&mut progress(json))?;
    resumed(&report, "up", "this run brought up what it could");
    print_report(&report, json, "up", started)
}

pub fn down(host: &Host, file: &Option<PathBuf>, json: bool) -> Res<()> {
    let stack = load(host, file)?;
    let started = Instant::now();
    let report = stack.down(&mut progress(json))?;
    if report.steps.is_empty() && !json {
        println!("nothing to do: the stack is down");
        return Ok(());
    }
    print_report(&report, json, "down", started)
}

pub fn status(host: &Host, file: &Option<PathBuf>, json: bool) -> Res<()> {
    let status = load(host, file)?.status()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", StackHandle::render_status(&status));
    }
    Ok(())
}

pub fn lvm_filter(host: &Host, file: &Option<PathBuf>) -> Res<()> {
    print!("{}", load(host, file)?.lvm_filter());
    Ok(())
}

fn confirm(question: &str) -> Res<bool> {
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

pub fn container(
    host: &Host,
    file: &Option<PathBuf>,
    cmd: &ContainerCommand,
    json: bool,
) -> Res<()> {
    // Without a file (and none at the default path) containers are made
    // with --pool on any VG.
    let stack = match file {
        Some(_) => load(host, file)?,
        None => host.stack_or_empty(&stack_path(file))?,
    };
    match cmd {
        ContainerCommand::Create {
            name,
            size,
            pool,
            rootfs,
            busybox: _,
            autostart,
            start,
        } => {
            let pool = match pool {
                Some(p) => {
                    let (vg, pool) = p
                        .split_once('/')
                        .ok_or_else(|| format!("--pool {p:?}: give VG/POOL"))?;
                    Some((vg.to_owned(), pool.to_owned()))
                }
                None => None,
            };
            let size_bytes = match parse_bytes(size, 1 << 20, "a container's size") {
                Ok(b) if b.0 > 0 => b,
                Ok(_) => return Err(format!("--size {size:?}: give a size such as 500M").into()),
                Err(e) => return Err(format!("--size {size:?}: {e}").into()),
            };
            let new = NewContainer {
                name: name.clone(),
                size: size_bytes,
                pool,
                rootfs: rootfs.clone(),
                autostart: *autostart,
                start: *start,
            };
            let started = Instant::now();
            let report = stack.create_container(&new, &mut progress(json))?;
            print_report(&report, json, &format!("container {name} made"), started)
        }
        ContainerCommand::Start { name } => Ok(stack.start_container(name)?),
        ContainerCommand::Stop { name } => Ok(stack.stop_container(name, Duration::from_secs(30))?),
        ContainerCommand::List => {
            let rows = stack.containers()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            println!(
                "{:<20} {:<9} {:<28} {:>9} {:>6} {:>5}",
                "NAME", "STATE", "VOLUME", "SIZE", "USED%", "AUTO"
            );
            for r in rows {
                println!(
                    "{:<20} {:<9} {:<28} {:>9} {:>6} {:>5}",
                    r.name,
                    r.state,
                    r.volume.as_deref().unwrap_or("-"),
                    r.size.map_or("-".into(), cairn::units::human),
                    r.used_percent.map_or("-".into(), |p| format!("{p:.2}")),
                    if r.autostart { "yes" } else { "no" }
                );
            }
            Ok(())
        }
        ContainerCommand::Remove { name, yes } => {
            if !yes
                && !confirm(&format!(
                    "Remove container {name} and its volume (its data is lost)?"
                ))?
            {
                return Err(format!(
                    "container {name}: nothing was changed; add --yes to remove it and its volume"
                )
                .into());
            }
            stack.remove_container(name, &mut progress(json))?;
            if !json {
                println!("container {name} removed");
            }
            Ok(())
        }
        ContainerCommand::Snapshot {
            name,
            snapshot,
            freeze,
            plan,
        } => take_snapshots(
            &stack,
            vec![name.clone()],
            snapshot.clone(),
            None,
            *freeze,
            *plan,
            json,
        ),
        ContainerCommand::Snapshots { name } => {
            let snaps = stack.container_snapshots(name)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&snaps)?);
                return Ok(());
            }
            println!(
                "{:<24} {:<20} {:<16} {:<6} {:<6} LV",
                "SNAPSHOT", "CREATED (UTC)", "ORIGIN", "KIND", "BY"
            );
            for s in snaps {
                println!(
                    "{:<24} {:<20} {:<16} {:<6} {:<6} {}/{}",
                    s.name,
                    s.created
                        .map_or("-".into(), cairn::host::default_snapshot_name),
                    s.origin.as_deref().unwrap_or("-"),
                    s.kind,
                    s.made_by,
                    s.vg,
                    s.lv
                );
            }
            Ok(())
        }
        ContainerCommand::SnapshotRemove {
            name,
            snapshot,
            yes,
            plan,
        } => {
            if !yes
                && !plan
                && !confirm(&format!(
                    "Remove snapshot {snapshot} of container {name} (its data is lost)?"
                ))?
            {
                return Err(format!(
                    "container {name}: nothing was changed; add --yes to remove snapshot {snapshot}"
                )
                .into());
            }
            let run = if *plan { Run::PlanOnly } else { Run::Apply };
            let done = stack.remove_container_snapshot(name, snapshot, run)?;
            if *plan {
                for a in &done.changes {
                    println!("{a}");
                }
            } else if !json {
                println!("snapshot {snapshot} of container {name} removed");
            }
            Ok(())
        }
    }
}
