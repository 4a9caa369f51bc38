//! The command line on a host without device-mapper (the build machines):
//! help that explains, and clear errors that change nothing.

use std::path::Path;
use std::process::Command;

fn cairn(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .output()
        .expect("run cairn")
}

#[test]
fn help_lists_the_dm_commands() {
    let out = cairn(&["dm", "--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("targets") && text.contains("ls"), "{text}");
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let out = cairn(&["dm", "frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
}

#[test]
fn dm_without_device_mapper_says_what_to_do() {
    if Path::new("/dev/mapper/control").exists() {
        eprintln!("skipped: this host has device-mapper (the lab's vm_dm covers it)");
        return;
    }
    for args in [&["dm", "ls"][..], &["--json", "dm", "targets"][..]] {
        let out = cairn(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            out.stdout.is_empty(),
            "{args:?} printed {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("/dev/mapper/control") && err.contains("modprobe dm-mod"),
            "{err}"
        );
    }
}

#[test]
fn archive_keep_must_be_a_count() {
    let out = cairn(&["--archive-keep", "many", "vgs"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--archive-keep"));
}

/// A relative state directory would let two applies started from two
/// directories take two locks: the stack's commands refuse it, naming the
/// variable, before touching anything; commands that keep no state do not
/// read it.
#[test]
fn a_relative_state_dir_stops_only_the_commands_that_keep_state() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/lab.toml");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(args)
            .env("CAIRN_STATE_DIR", "relative/state")
            .output()
            .expect("run cairn")
    };
    for args in [
        &["plan", file][..],
        &["apply", file],
        &["container", "list"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("CAIRN_STATE_DIR=\"relative/state\" is not an absolute path"),
            "{args:?}: {err}"
        );
    }
    let out = run(&["lvm-filter", file]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("filter"));
    assert!(!Path::new("relative").exists());
}
