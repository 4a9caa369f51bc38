//! Embedding cairn: the stack of a stack file brought up, a container made
//! on its thin pool, a thin snapshot of the container's volume, and the
//! stack's status printed, all through the façade (`cairn::Host`), in one
//! process. The lab's VM tests run it on examples/lab.toml (vm_stack).
//!
//! As root, on a host with the stack's devices:
//!
//! ```sh
//! cargo run --example embed -- /etc/cairn/stack.toml web1
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use cairn::host::{NewContainer, SnapshotKind, StackHandle, DEFAULT_STACK_FILE};
use cairn::{ErrorKind, Host, HostOptions, Progress, Run};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let file = PathBuf::from(args.next().unwrap_or_else(|| DEFAULT_STACK_FILE.into()));
    let name = args.next().unwrap_or_else(|| "embedded".into());
    match embed(&file, &name) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The kind tells a program what to do without parsing the text.
            let advice = match e.kind() {
                ErrorKind::AlreadyExists => "pick another container name",
                ErrorKind::Busy => "retry once it is released",
                ErrorKind::InvalidInput | ErrorKind::NotFound => "fix the arguments",
                _ => "see the message",
            };
            eprintln!("embed: {e}\nembed: ({:?}: {advice})", e.kind());
            ExitCode::FAILURE
        }
    }
}

fn embed(file: &std::path::Path, name: &str) -> cairn::Result<()> {
    // Every setting is explicit; these are the defaults but for the
    // description written into each metadata commit and journal.
    let host = Host::new(HostOptions {
        command: format!("embed {} {name}", file.display()),
        ..HostOptions::default()
    })?;
    let stack = host.stack(file)?;

    // Bring up what exists; steps are reported as they start and end.
    let report = stack.up(&mut |p| {
        if let Progress::Step {
            number,
            step,
            done: Some(took),
        } = p
        {
            println!("up [{number}] {step} ({} ms)", took.as_millis());
        }
    })?;
    for note in &report.notes {
        println!("note: {note}");
    }

    // A container on the file's thin pool, not started.
    let (vg, pool) = stack
        .default_pool()
        .ok_or_else(|| cairn::Error::invalid("the stack file names no single thin pool"))?;
    let made = stack.create_container(
        &NewContainer {
            name: name.to_owned(),
            size: cairn::units::Bytes(64 << 20),
            pool: Some((vg.clone(), pool)),
            rootfs: None,
            autostart: false,
            start: false,
        },
        &mut |_| {},
    )?;
    println!("container {name}: {} steps", made.steps.len());

    // A thin snapshot of its volume: one metadata commit and one pool message.
    let snapshot = format!("{name}-snap");
    let done = host.lv(&vg, name).snapshot(
        &snapshot,
        SnapshotKind::Thin { activate: false },
        Run::Apply,
    )?;
    for (vg, seqno, what) in done.commits() {
        println!("commit {vg} seqno {seqno}: {what}");
    }
    println!(
        "snapshot {vg}/{snapshot} made in {} ms",
        done.elapsed.as_millis()
    );

    // The whole stack, as `cairn status` prints it.
    print!("{}", StackHandle::render_status(&stack.status()?));
    Ok(())
}
