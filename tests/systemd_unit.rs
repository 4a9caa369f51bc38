//! systemd/cairn-up.service: ordered after the local disks and before LXC,
//! `cairn up` to start and `cairn down` to stop, kept "active" in between.

use std::collections::BTreeMap;

/// section -> key -> values (a key may repeat).
fn parse(text: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let (k, v) = line.split_once('=').expect("key=value");
        out.entry(section.clone())
            .or_default()
            .entry(k.trim().to_owned())
            .or_default()
            .push(v.trim().to_owned());
    }
    out
}

#[test]
fn cairn_up_service_is_ordered_between_the_disks_and_lxc() {
    let text = include_str!("../systemd/cairn-up.service");
    let unit = parse(text);
    let words = |section: &str, key: &str| -> Vec<String> {
        unit.get(section)
            .and_then(|s| s.get(key))
            .map(|v| {
                v.iter()
                    .flat_map(|l| l.split_whitespace().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let after = words("Unit", "After");
    assert!(
        after.contains(&"local-fs.target".to_owned()),
        "After: {after:?}"
    );
    let before = words("Unit", "Before");
    assert!(
        before.contains(&"lxc.service".to_owned()),
        "Before: {before:?}"
    );
    assert_eq!(words("Service", "Type"), ["oneshot"]);
    assert_eq!(words("Service", "RemainAfterExit"), ["yes"]);
    let start = words("Service", "ExecStart");
    let stop = words("Service", "ExecStop");
    assert!(
        start[0].ends_with("/cairn") && start[1] == "up",
        "ExecStart: {start:?}"
    );
    assert!(
        stop[0].ends_with("/cairn") && stop[1] == "down",
        "ExecStop: {stop:?}"
    );
    assert_eq!(start[2], stop[2], "up and down read the same stack file");
    assert_eq!(words("Install", "WantedBy"), ["multi-user.target"]);
    // Where systemd is installed, its own checker agrees.
    if let Ok(out) = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/systemd/cairn-up.service"
        ))
        .output()
    {
        let err = String::from_utf8_lossy(&out.stderr);
        // A host without the binary installed says so; nothing else may appear.
        let other: Vec<&str> = err
            .lines()
            .filter(|l| {
                !l.contains("/usr/local/sbin/cairn") && !l.contains("lxc") && !l.trim().is_empty()
            })
            .collect();
        assert!(other.is_empty(), "systemd-analyze verify: {err}");
    }
}
