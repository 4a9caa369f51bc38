//! `cairn plan|apply|up|down|status|lvm-filter` and `cairn container ...`:
//! the stack (src/stack) on the command line.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Subcommand;

use cairn::meta::ops::Env;
use cairn::stack::file::{self, Container, Rootfs, Stack};
use cairn::stack::plan::Allow;
use cairn::stack::run::{self, Mode, Report};
use cairn::stack::step::Step;

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
        .unwrap_or_else(|| PathBuf::from(file::DEFAULT_PATH))
}

pub fn load(file: &Option<PathBuf>) -> Res<Stack> {
    Ok(file::load(&stack_path(file))?)
}

/// `[n] step` when it starts, ` (T ms)` on the same line when it is done.
fn progress(n: usize, s: &Step, done: Option<Duration>) {
    match done {
        None => print!("[{n}] {s}"),
        Some(d) => println!(" ({:.0} ms)", d.as_secs_f64() * 1000.0),
    }
    let _ = std::io::stdout().flush();
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

fn resumed(report: &Report, mode: Mode) {
    if let Some(r) = &report.resumed {
        let at = r.at.as_ref().map_or("between steps".to_owned(), |(n, s)| {
            format!("at step {n} ({s})")
        });
        let (what, then) = match mode {
            Mode::Plan => (
                "apply",
                "the next apply finishes it (the plan above includes it)",
            ),
            Mode::Apply => ("apply", "this run finished it"),
            Mode::Up => ("up", "this run brought up what it could"),
        };
        eprintln!(
            "cairn: the previous {what} of {} was interrupted {at}; {then}",
            r.file
        );
    }
}

pub fn converge(file: &Option<PathBuf>, env: Env, mode: Mode, allow: Allow, json: bool) -> Res<()> {
    let stack = load(file)?;
    let started = Instant::now();
    let verb = match mode {
        Mode::Plan => "plan",
        Mode::Apply => "applied",
        Mode::Up => "up",
    };
    let mut on_step = |n: usize, s: &Step, done: Option<Duration>| {
        if !json {
            match (mode, done) {
                (Mode::Plan, _) => println!("{n:3}. {s}"),
                _ => progress(n, s, done),
            }
        }
    };
    let report = run::converge(&stack, env, mode, allow, &mut on_step)?;
    resumed(&report, mode);
    print_report(&report, json, verb, started)
}

pub fn down(file: &Option<PathBuf>, env: Env, json: bool) -> Res<()> {
    let stack = load(file)?;
    let started = Instant::now();
    let mut on_step = |n: usize, s: &Step, done: Option<Duration>| {
        if !json {
            progress(n, s, done);
        }
    };
    let report = run::down(&stack, env, &mut on_step)?;
    if report.steps.is_empty() && !json {
        println!("nothing to do: the stack is down");
        return Ok(());
    }
    print_report(&report, json, "down", started)
}

pub fn status(file: &Option<PathBuf>, json: bool) -> Res<()> {
    let stack = load(file)?;
    let status = cairn::stack::status::read(&stack)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", cairn::stack::status::render(&status));
    }
    Ok(())
}

pub fn lvm_filter(file: &Option<PathBuf>) -> Res<()> {
    let stack = load(file)?;
    print!("{}", cairn::stack::filter::render(&stack));
    Ok(())
}

/// The stack file if there is one; else an empty stack (containers made
/// with --pool on any VG).
fn stack_or_empty(file: &Option<PathBuf>) -> Res<Stack> {
    let path = stack_path(file);
    if file.is_some() || path.exists() {
        return load(file);
    }
    Ok(file::parse(&path, "")?)
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

pub fn container(file: &Option<PathBuf>, env: Env, cmd: &ContainerCommand, json: bool) -> Res<()> {
    let stack = stack_or_empty(file)?;
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
            let (vg, pool) = match pool {
                Some(p) => {
                    let (vg, pool) = p
                        .split_once('/')
                        .ok_or_else(|| format!("--pool {p:?}: give VG/POOL"))?;
                    (vg.to_owned(), pool.to_owned())
                }
                None => stack.default_pool().ok_or_else(|| {
                    if stack.path.exists() {
                        format!(
                            "give --pool VG/POOL: {} does not name exactly one thin pool",
                            stack.path.display()
                        )
                    } else {
                        format!(
                            "give --pool VG/POOL, or -f STACKFILE (there is no {})",
                            stack.path.display()
                        )
                    }
                })?,
            };
            cairn::lxc::check_name(name)?;
            cairn::meta::ops::check_lv_name(name)?;
            if let Some(t) = rootfs {
                if !t.is_file() {
                    return Err(format!("--rootfs {}: no such file", t.display()).into());
                }
            }
            let size = match cairn::units::parse_size(size, 1 << 20)? {
                cairn::units::Size::Bytes(b) if b > 0 => b,
                _ => return Err(format!("--size {size:?}: give a size such as 500M").into()),
            };
            let c = Container {
                name: name.clone(),
                size,
                vg,
                pool,
                autostart: *autostart || *start,
                rootfs: rootfs.clone().map_or(Rootfs::Busybox, Rootfs::Tarball),
                line: 0,
            };
            let started = Instant::now();
            let mut on_step = |n: usize, s: &Step, done: Option<Duration>| {
                if !json {
                    progress(n, s, done);
                }
            };
            let report = run::create_container(&stack, env, &c, *start, &mut on_step)?;
            print_report(&report, json, &format!("container {name} made"), started)
        }
        ContainerCommand::Start { name } => Ok(cairn::lxc::start(&stack.lxc_path, name)?),
        ContainerCommand::Stop { name } => Ok(cairn::lxc::stop(
            &stack.lxc_path,
            name,
            std::time::Duration::from_secs(30),
        )?),
        ContainerCommand::List => {
            let rows = run::containers(&stack)?;
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
            let mut on_step = |n: usize, s: &Step, done: Option<Duration>| {
                if !json {
                    progress(n, s, done);
                }
            };
            run::remove_container(&stack, env, name, &mut on_step)?;
            if !json {
                println!("container {name} removed");
            }
            Ok(())
        }
    }
}
