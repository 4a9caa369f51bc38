//! `cairn drbd ...`: drbdadm's verbs (src/drbd/adm.rs) on the command line.

use std::path::PathBuf;

use clap::Subcommand;

use cairn::host::{parse_bytes, DrbdEvent as Event, DrbdResize as Resize, MinorStatus};
use cairn::Host;

#[derive(Subcommand)]
pub enum DrbdCommand {
    /// Write fresh v08 internal metadata on the resource's disk (as drbdadm create-md)
    CreateMd {
        resource: String,
        #[arg(short = 'S', long)]
        stacked: bool,
        /// Overwrite existing DRBD metadata (its bitmap and generation ids are lost)
        #[arg(long)]
        force: bool,
    },
    /// Replay the activity log into the bitmap and mark the metadata clean (as drbdadm
    /// apply-al; `up` does it before every attach)
    ApplyAl {
        resource: String,
        #[arg(short = 'S', long)]
        stacked: bool,
    },
    /// Bring the resource up: new-resource, new-minor, apply-al, attach, connect when it has
    /// a peer (as drbdadm up); what is up already stays
    Up {
        resource: String,
        #[arg(short = 'S', long)]
        stacked: bool,
    },
    /// Take the resource down: demote, disconnect, detach, delete (as drbdadm down)
    Down {
        resource: String,
        #[arg(short = 'S', long)]
        stacked: bool,
    },
    /// Make the resource Primary (as drbdadm primary)
    Primary {
        resource: String,
        #[arg(short = 'S', long)]
        stacked: bool,
        /// Become Primary without UpToDate data (a fresh device)
        #[arg(long)]
        force: bool,
    },
    /// Make the resource Secondary (as drbdadm secondary)
    Secondary {
        resource: String,
        #[arg(short = 'S', long)]
        stacked: bool,
    },
    /// Grow the device to its backing device's new size (as drbdadm resize)
    Resize {
        resource: String,
        #[arg(short = 'S', long)]
        stacked: bool,
        /// A fixed size instead (lvm2 units; bare numbers MiB)
        #[arg(long)]
        size: Option<String>,
        /// Grow while not connected (the peer is trusted to have the space)
        #[arg(long)]
        assume_peer_has_space: bool,
        /// Do not resync the new area (connected only)
        #[arg(long)]
        assume_clean: bool,
    },
    /// Role, connection, disk states, out-of-sync and sync progress of every minor (or of
    /// the resources named)
    Status { resources: Vec<String> },
    /// Stream DRBD's events (state changes, sync progress, helpers), one line each
    Events {
        /// Stop after this many events
        #[arg(long)]
        count: Option<usize>,
    },
    /// Print a device's v08 metadata (superblock, activity log, bitmap use)
    DumpMd { device: PathBuf },
}

fn human_sectors(s: u64) -> String {
    cairn::units::human(s * 512)
}

fn status_line(s: &MinorStatus) -> String {
    let mut line = format!(
        "{} minor {}: {} {}/{} {}/{}",
        s.resource,
        s.minor,
        s.state.connection,
        s.state.role,
        s.state.peer,
        s.state.disk,
        s.state.peer_disk
    );
    if let Some(p) = s.protocol {
        line.push_str(&format!(" protocol {p:?}"));
    }
    line.push_str(&format!(" size {}", human_sectors(s.capacity_sectors)));
    if let Some(oos) = s.bits_oos {
        line.push_str(&format!(" out-of-sync {}", cairn::units::human(oos * 4096)));
    }
    if let (Some(total), Some(failed)) = (s.bits_rs_total, s.bits_rs_failed) {
        let left = s.bits_oos.unwrap_or(0);
        if total > 0 {
            line.push_str(&format!(
                " synced {:.1}%{}",
                100.0 * (total.saturating_sub(left)) as f64 / total as f64,
                if failed > 0 {
                    format!(" ({failed} blocks failed)")
                } else {
                    String::new()
                }
            ));
        }
    }
    if let Some(peer) = &s.peer_addr {
        line.push_str(&format!(" peer {peer}"));
    }
    line
}

fn event_line(e: &Event) -> String {
    let mut line = format!("minor {} {}", e.minor, e.reason);
    if let Some(s) = &e.state {
        line.push_str(&format!(
            " {} {}/{} {}/{}",
            s.connection, s.role, s.peer, s.disk, s.peer_disk
        ));
    }
    if let Some(p) = &e.previous {
        line.push_str(&format!(
            " (was {} {}/{} {}/{})",
            p.connection, p.role, p.peer, p.disk, p.peer_disk
        ));
    }
    if let Some(oos) = e.bits_oos {
        line.push_str(&format!(" out-of-sync {}", cairn::units::human(oos * 4096)));
    }
    if let Some(h) = &e.helper {
        line.push_str(&format!(" helper {h}"));
    }
    line
}

pub fn run(
    host: &Host,
    json: bool,
    command: &DrbdCommand,
) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        DrbdCommand::CreateMd {
            resource,
            stacked,
            force,
        } => {
            let disk = host.drbd(resource, *stacked).create_md(*force)?;
            println!("New drbd meta data block successfully created on {disk}.");
        }
        DrbdCommand::ApplyAl { resource, stacked } => {
            let (disk, applied) = host.drbd(resource, *stacked).apply_al()?;
            println!(
                "{disk}: {} transactions replayed, {} extents marked out of sync{}",
                applied.transactions,
                applied.extents_marked.len(),
                if applied.marked_clean {
                    ", metadata marked clean"
                } else {
                    ""
                }
            );
        }
        DrbdCommand::Up { resource, stacked } => {
            let done = host.drbd(resource, *stacked).up()?;
            if done.is_empty() {
                println!("{resource} is up already: nothing to do");
            } else {
                for d in done {
                    println!("{d}");
                }
            }
        }
        DrbdCommand::Down { resource, stacked } => {
            if host.drbd(resource, *stacked).down()? {
                println!("{resource} is down");
            } else {
                println!("{resource} is not up: nothing to do");
            }
        }
        DrbdCommand::Primary {
            resource,
            stacked,
            force,
        } => host.drbd(resource, *stacked).primary(*force)?,
        DrbdCommand::Secondary { resource, stacked } => {
            host.drbd(resource, *stacked).secondary()?
        }
        DrbdCommand::Resize {
            resource,
            stacked,
            size,
            assume_peer_has_space,
            assume_clean,
        } => {
            let size_sectors = size
                .as_deref()
                .map(|s| parse_bytes(s, 1 << 20, "a DRBD size"))
                .transpose()?
                .map(|b| b.sectors().0);
            let (before, after) = host.drbd(resource, *stacked).resize(&Resize {
                size_sectors,
                assume_peer_has_space: *assume_peer_has_space,
                assume_clean: *assume_clean,
            })?;
            if before == after {
                println!(
                    "{resource} stays {}{}",
                    human_sectors(after),
                    if *assume_peer_has_space {
                        ""
                    } else {
                        " (not connected, DRBD grows only with --assume-peer-has-space)"
                    }
                );
            } else {
                println!(
                    "{resource}: {} -> {}",
                    human_sectors(before),
                    human_sectors(after)
                );
            }
        }
        DrbdCommand::Status { resources } => {
            let all = host.drbd_status(resources)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else if all.is_empty() {
                println!("no DRBD resource is up");
            } else {
                for s in &all {
                    println!("{}", status_line(s));
                }
            }
        }
        DrbdCommand::Events { count } => {
            use std::io::Write;
            let stdout = std::io::stdout();
            let events = host.drbd_events()?;
            for e in events.take(count.unwrap_or(usize::MAX)) {
                let e = e?;
                let mut out = stdout.lock();
                if json {
                    writeln!(out, "{}", serde_json::to_string(&e)?)?;
                } else {
                    writeln!(out, "{}", event_line(&e))?;
                }
                out.flush()?;
            }
        }
        DrbdCommand::DumpMd { device } => {
            let md = host.drbd_dump_md(device)?;
            let report = serde_json::to_value(&md)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                let obj = report.as_object().expect("an object");
                for (k, v) in obj {
                    println!("{k}: {v}");
                }
                if !md.clean {
                    println!(
                        "# unclean: the activity log is applied before the next attach \
                         (cairn drbd up does it)"
                    );
                }
                if md.was_primary {
                    println!("# was Primary when last written");
                }
            }
        }
    }
    Ok(())
}
