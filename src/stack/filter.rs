//! The lvm.conf settings that let lvm2 on the host live with the stack.
//!
//! The stack puts PVs on devices that sit on other devices with the same
//! first bytes: a cached LV's `_corig` layer, DRBD's backing LV and the
//! lower DRBD device all show the PV label of what is stacked on them (the
//! seed's "Found duplicate PV" pain). lvm2 looks at every name of a device
//! and accepts it when any name matches an `a` pattern first, so rejecting
//! the lower copies by name is fragile (they also appear as /dev/dm-N).
//! The filter cairn prints therefore accepts exactly the stack's PVs, by
//! every name the file gives them, and rejects the rest; and since lvm2
//! 2.03 scans no LVs unless `scan_lvs = 1`, it says so for PVs on LVs.
//! cairn itself needs none of this: its scan recognises lower copies.

use super::file::{Provider, Stack};
use crate::lvm::activate::mapper_path;
use crate::lvm::names::{dm_name, lv_path};

/// lvm2's regex for exactly `path`.
fn exact(path: &str) -> String {
    let mut re = String::from("^");
    for c in path.chars() {
        if "\\.+*?()[]{}|^$".contains(c) {
            re.push('\\');
        }
        re.push(c);
    }
    re.push('$');
    re
}

/// The devices section for lvm.conf (global_filter and scan_lvs).
pub fn render(stack: &Stack) -> String {
    let mut names: Vec<(String, String)> = Vec::new();
    let mut on_lv = false;
    for vg in &stack.vgs {
        for pv in &vg.pvs {
            let why = format!("PV of {}", vg.name);
            match &pv.provider {
                Provider::Lv { vg: v, lv } => {
                    on_lv = true;
                    for name in [lv_path(v, lv), mapper_path(&dm_name(v, lv, None))] {
                        names.push((name, why.clone()));
                    }
                }
                _ => names.push((pv.path.display().to_string(), why)),
            }
        }
    }
    names.dedup();
    let mut out = format!(
        "# lvm.conf for a host running the stack of {} (printed by `cairn lvm-filter`).\n\
         # lvm2 accepts a device when any of its names matches an \"a\" pattern first: the\n\
         # lower copies of stacked PVs (cache origins, DRBD backing devices, /dev/drbd0 under\n\
         # a stacked resource) match none here and are not scanned, so lvm2 sees no duplicate\n\
         # PVs. Add an \"a\" line for every other PV this host has (its root VG, say).\n\
         devices {{\n",
        stack.path.display()
    );
    if on_lv {
        out.push_str(
            "    # A PV of the stack is an LV; lvm2 2.03 scans LVs only when told to.\n    scan_lvs = 1\n",
        );
    }
    out.push_str("    global_filter = [\n");
    for (name, why) in &names {
        out.push_str(&format!("        \"a|{}|\",   # {why}\n", exact(name)));
    }
    out.push_str("        \"r|.*|\"\n    ]\n}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_filter_accepts_its_pvs_by_every_name_and_nothing_else() {
        let text = include_str!("../../examples/seed.toml");
        let stack = super::super::file::parse(std::path::Path::new("seed.toml"), text).unwrap();
        let f = render(&stack);
        for accepted in [
            "\"a|^/dev/md0$|\"",
            "\"a|^/dev/md1$|\"",
            "\"a|^/dev/VG1/cachedlv$|\"",
            "\"a|^/dev/mapper/VG1-cachedlv$|\"",
            "\"a|^/dev/drbd10$|\"",
        ] {
            assert!(f.contains(accepted), "{accepted} missing from\n{f}");
        }
        assert!(f.contains("scan_lvs = 1"));
        assert!(f.trim_end().ends_with("\"r|.*|\"\n    ]\n}"));
        // The lower copies are never accepted.
        for lower in ["corig", "DRBDLV1", "drbd0$"] {
            assert!(
                !f.lines().any(|l| l.contains("\"a|") && l.contains(lower)),
                "{lower} accepted in\n{f}"
            );
        }
    }

    #[test]
    fn regex_metacharacters_are_escaped() {
        assert_eq!(exact("/dev/a.b+c"), "^/dev/a\\.b\\+c$");
    }
}
