//! What the kernel's device-mapper tables map, for the tests that must
//! prove no two devices ever map the same sectors (a free extent still
//! mapped, two LVs given one extent): crash tests, races with lvm2.

use std::collections::BTreeMap;

use crate::ensure;
use crate::lab::{Guest, TestResult};

/// One range of a device some table maps: (device, first sector, end).
pub type Range = (String, u64, u64);

/// The sectors each table of `dmsetup table` output maps on the devices
/// under it, for the targets that own their sectors: linear, striped,
/// cache (metadata and cache devices whole, the origin for the LV's
/// length), snapshot-origin (its origin for its length). Snapshots share
/// their origin's `-real` with it by design and are left out, as are thin
/// LVs (their pool maps the data).
pub fn mapped(table: &str) -> Result<BTreeMap<String, Vec<Range>>, String> {
    let mut out: BTreeMap<String, Vec<Range>> = BTreeMap::new();
    for line in table.lines().filter(|l| !l.trim().is_empty()) {
        let (name, rest) = line
            .split_once(": ")
            .ok_or_else(|| format!("dmsetup table line {line:?}"))?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| -> Result<u64, String> {
            f.get(i)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("field {i} of {line:?}"))
        };
        let len = num(1)?;
        let mut add = |dev: &str, start: u64, n: u64| {
            out.entry(name.to_owned()).or_default().push((
                dev.to_owned(),
                start,
                start.saturating_add(n),
            ));
        };
        match f.get(2).copied() {
            Some("linear") => add(f[3], num(4)?, len),
            Some("striped") => {
                let stripes = num(3)?;
                for s in 0..stripes as usize {
                    add(f[5 + 2 * s], num(6 + 2 * s)?, len / stripes);
                }
            }
            Some("cache") => {
                add(f[3], 0, u64::MAX);
                add(f[4], 0, u64::MAX);
                add(f[5], 0, len);
            }
            Some("snapshot-origin") => add(f[3], 0, len),
            _ => {}
        }
    }
    Ok(out)
}

/// Fails when two devices map the same sectors of one device.
pub fn no_overlap(g: &Guest, when: &str) -> TestResult {
    let table = g.sh("dmsetup table")?;
    let ranges: Vec<(String, Range)> = mapped(&table)?
        .into_iter()
        .flat_map(|(name, rs)| rs.into_iter().map(move |r| (name.clone(), r)))
        .collect();
    for (i, (a, (da, sa, ea))) in ranges.iter().enumerate() {
        for (b, (db, sb, eb)) in &ranges[i + 1..] {
            ensure!(
                a == b || da != db || ea <= sb || eb <= sa,
                "{when}: {a} and {b} both map sectors {}..{} of {da}:\n{table}",
                sa.max(sb),
                ea.min(eb)
            );
        }
    }
    Ok(())
}
