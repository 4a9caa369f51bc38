//! `cairn plan|apply|up|down|status|lvm-filter` and `cairn container ...`:
//! the stack (src/stack) on the command line.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Subcommand;

use cairn::host::{parse_bytes, NewContainer, StackHandle, StackReport as Report};
use cairn::{Host, Progress};

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
    }
}
