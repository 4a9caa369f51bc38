//! `cairn drbd ...`: drbdadm's verbs (src/drbd/adm.rs) on the command line.

use std::path::PathBuf;

use clap::Subcommand;

use cairn::drbd::adm::{self, Setup};
use cairn::drbd::admin::{Drbd, Event, MinorStatus, Resize};
use cairn::drbd::md::{MdDevice, MdFlags};

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
    config: Option<&PathBuf>,
    json: bool,
    command: &DrbdCommand,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut setup = Setup::default();
    if let Some(c) = config {
        setup.config = c.clone();
    }
    match command {
        DrbdCommand::CreateMd {
            resource,
            stacked,
            force,
        } => {
            let t = setup.target(resource, *stacked)?;
            // Without the module loaded nothing can be attached: no check needed.
            let mut drbd = Drbd::open().ok();
            adm::create_md(drbd.as_mut(), &t, *force)?;
            println!(
                "New drbd meta data block successfully created on {}.",
                t.disk
            );
        }
        DrbdCommand::ApplyAl { resource, stacked } => {
            let t = setup.target(resource, *stacked)?;
            let mut drbd = Drbd::open().ok();
            let applied = adm::apply_al(drbd.as_mut(), &t)?;
            println!(
                "{}: {} transactions replayed, {} extents marked out of sync{}",
                t.disk,
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
            let t = setup.target(resource, *stacked)?;
            let mut drbd = Drbd::open()?;
            let done = adm::up(&mut drbd, &t)?;
            if done.is_empty() {
                println!("{resource} is up already: nothing to do");
            } else {
                for d in done {
                    println!("{d}");
                }
            }
        }
        DrbdCommand::Down { resource, stacked } => {
            let t = setup.target(resource, *stacked)?;
            let mut drbd = Drbd::open()?;
            if adm::down(&mut drbd, &t)? {
                println!("{resource} is down");
            } else {
                println!("{resource} is not up: nothing to do");
            }
        }
        DrbdCommand::Primary {
            resource,
            stacked,
            force,
        } => {
            let t = setup.target(resource, *stacked)?;
            Drbd::open()?.primary(t.minor, *force)?;
        }
        DrbdCommand::Secondary { resource, stacked } => {
            let t = setup.target(resource, *stacked)?;
            Drbd::open()?.secondary(t.minor)?;
        }
        DrbdCommand::Resize {
            resource,
            stacked,
            size,
            assume_peer_has_space,
            assume_clean,
        } => {
            let t = setup.target(resource, *stacked)?;
            let size_sectors = match size {
                Some(s) => match cairn::units::parse_size(s, 1 << 20)? {
                    cairn::units::Size::Bytes(b) => Some(b / 512),
                    cairn::units::Size::PercentFree(_) => {
                        return Err("a DRBD size cannot be a percentage".into())
                    }
                },
                None => None,
            };
            let mut drbd = Drbd::open()?;
            let (before, after) = adm::resize(
                &mut drbd,
                &t,
                &Resize {
                    size_sectors,
                    assume_peer_has_space: *assume_peer_has_space,
                    assume_clean: *assume_clean,
                },
            )?;
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
            let mut drbd = Drbd::open()?;
            let mut all = drbd.status(None)?;
            if !resources.is_empty() {
                all.retain(|s| resources.contains(&s.resource));
                for r in resources {
                    if !all.iter().any(|s| &s.resource == r) {
                        return Err(format!("resource {r} is not up").into());
                    }
                }
            }
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
            let drbd = Drbd::open()?;
            let mut events = drbd.events()?;
            let mut seen = 0;
            let stdout = std::io::stdout();
            while count.is_none_or(|c| seen < c) {
                let m = events.next_event()?;
                let Some(e) = Event::from_message(&m) else {
                    continue;
                };
                let mut out = stdout.lock();
                if json {
                    writeln!(out, "{}", serde_json::to_string(&e)?)?;
                } else {
                    writeln!(out, "{}", event_line(&e))?;
                }
                out.flush()?;
                seen += 1;
            }
        }
        DrbdCommand::DumpMd { device } => {
            let md = MdDevice::open(device, false)?;
            let sb = md.superblock()?;
            let layout = sb.layout(md.layout.device_sectors);
            let log = md.transactions(&layout)?;
            let bits = md.bits_set(&layout)?;
            let flags: Vec<String> = sb
                .flags
                .iter_names()
                .map(|(n, _)| n.to_lowercase())
                .collect();
            let report = serde_json::json!({
                "device": device,
                "clean": sb.is_clean(),
                "magic": format!("{:#010x}", sb.magic),
                "la_size_sect": sb.la_size_sect,
                "usable_sectors": layout.usable_sectors(),
                "uuids": sb.uuid.iter().map(|u| format!("{u:016X}")).collect::<Vec<_>>(),
                "device_uuid": format!("{:016X}", sb.device_uuid),
                "flags": flags,
                "md_size_sect": sb.md_size_sect,
                "al_offset": sb.al_offset,
                "bm_offset": sb.bm_offset,
                "al_extents": sb.al_nr_extents,
                "al_stripes": sb.al_stripes,
                "al_stripe_size_4k": sb.al_stripe_size_4k,
                "la_peer_max_bio_size": sb.la_peer_max_bio_size,
                "al_transactions": log.iter().filter(|t| t.transaction_type == cairn::drbd::md::AL_TR_UPDATE).count(),
                "hot_extents": cairn::drbd::md::hot_extents(&log),
                "bits_set": bits,
                "out_of_sync_bytes": bits * 4096,
            });
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                let obj = report.as_object().expect("an object");
                for (k, v) in obj {
                    println!("{k}: {v}");
                }
                if !sb.is_clean() {
                    println!(
                        "# unclean: the activity log is applied before the next attach \
                         (cairn drbd up does it)"
                    );
                }
                if sb.flags.contains(MdFlags::PRIMARY_IND) {
                    println!("# was Primary when last written");
                }
            }
        }
    }
    Ok(())
}
