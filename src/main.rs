//! The cairn command line: parses, calls the library, prints. Nothing else.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Device-mapper: what the kernel has (read-only)
    Dm {
        #[command(subcommand)]
        command: DmCommand,
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
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprint!("cairn: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                eprint!(": {s}");
                source = s.source();
            }
            eprintln!();
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), Box<dyn std::error::Error>> {
    match &cli.command {
        Command::Dm { command } => {
            let control = cairn::dm::Control::open()?;
            match command {
                DmCommand::Targets => {
                    let targets = control.targets()?;
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
                    let devices = control.devices()?;
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
            }
        }
    }
    Ok(())
}
