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
