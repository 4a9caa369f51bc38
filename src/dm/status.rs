//! Status lines of the targets LVM stacks are made of (what DM_TABLE_STATUS
//! returns, as `dmsetup status` prints it after the target name), parsed
//! tolerantly: fields a newer kernel appends are ignored, and the kernel's
//! own failure words (`Fail`, `Error`, `Invalid`, `Merge failed`) are states,
//! not parse errors.

/// A thin pool's status (dm-thin-pool's pool_status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThinPoolStatus {
    pub transaction_id: u64,
    pub metadata_used: u64,
    pub metadata_total: u64,
    pub data_used: u64,
    pub data_total: u64,
    /// The held metadata root ("-" when none is held).
    pub held_root: Option<u64>,
    pub mode: PoolMode,
    pub discard_passdown: Option<bool>,
    /// `error_if_no_space` rather than `queue_if_no_space`.
    pub error_if_no_space: Option<bool>,
    pub needs_check: bool,
    pub metadata_low_watermark: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolMode {
    ReadWrite,
    ReadOnly,
    OutOfDataSpace,
    Other(String),
}

/// A thin volume's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThinStatus {
    pub mapped_sectors: u64,
    /// None when nothing is mapped yet ("-").
    pub highest_mapped_sector: Option<u64>,
}

/// A cache's status (dm-cache's cache_status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheStatus {
    pub metadata_block_sectors: u64,
    pub metadata_used: u64,
    pub metadata_total: u64,
    pub block_sectors: u64,
    pub blocks_used: u64,
    pub blocks_total: u64,
    pub read_hits: u64,
    pub read_misses: u64,
    pub write_hits: u64,
    pub write_misses: u64,
    pub demotions: u64,
    pub promotions: u64,
    pub dirty: u64,
    pub features: Vec<String>,
    pub core_args: Vec<(String, String)>,
    pub policy: String,
    pub policy_args: Vec<String>,
    pub read_only: bool,
    pub needs_check: bool,
}

/// A thick snapshot's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotStatus {
    pub sectors_allocated: u64,
    pub total_sectors: u64,
    pub metadata_sectors: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetStatus {
    ThinPool(ThinPoolStatus),
    Thin(ThinStatus),
    Cache(CacheStatus),
    Snapshot(SnapshotStatus),
    /// The kernel says the device failed (`Fail`).
    Failed,
    /// The kernel could not produce a status (`Error`).
    Error,
    /// A snapshot whose COW overflowed, or was invalidated (`Invalid`).
    Invalid,
    /// A snapshot merge that failed (`Merge failed`).
    MergeFailed,
    /// A target with nothing to parse here (linear, striped, snapshot-origin, ...).
    Other {
        target: String,
        params: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the {target} status {params:?}: {why}")]
pub struct StatusError {
    pub target: String,
    pub params: String,
    pub why: String,
}

/// Parses the status `params` of a `target` (the words after the target name).
pub fn parse(target: &str, params: &str) -> Result<TargetStatus, StatusError> {
    let trimmed = params.trim();
    match trimmed {
        "Fail" => return Ok(TargetStatus::Failed),
        "Error" => return Ok(TargetStatus::Error),
        "Invalid" if target.starts_with("snapshot") => return Ok(TargetStatus::Invalid),
        "Merge failed" if target.starts_with("snapshot") => return Ok(TargetStatus::MergeFailed),
        _ => {}
    }
    let err = |why: &str| StatusError {
        target: target.to_owned(),
        params: params.to_owned(),
        why: why.to_owned(),
    };
    let words: Vec<&str> = trimmed.split_whitespace().collect();
    let num = |i: usize| -> Result<u64, StatusError> {
        words
            .get(i)
            .ok_or_else(|| err("too few fields"))?
            .parse()
            .map_err(|_| err(&format!("field {} is not a number", i + 1)))
    };
    let ratio = |i: usize| -> Result<(u64, u64), StatusError> {
        let w = words.get(i).ok_or_else(|| err("too few fields"))?;
        let (a, b) = w
            .split_once('/')
            .ok_or_else(|| err(&format!("field {} is not used/total", i + 1)))?;
        Ok((
            a.parse().map_err(|_| err("bad used count"))?,
            b.parse().map_err(|_| err("bad total count"))?,
        ))
    };
    match target {
        "thin-pool" => {
            let (metadata_used, metadata_total) = ratio(1)?;
            let (data_used, data_total) = ratio(2)?;
            let mut s = ThinPoolStatus {
                transaction_id: num(0)?,
                metadata_used,
                metadata_total,
                data_used,
                data_total,
                held_root: words.get(3).and_then(|w| w.parse().ok()),
                mode: match words.get(4).copied() {
                    Some("rw") => PoolMode::ReadWrite,
                    Some("ro") => PoolMode::ReadOnly,
                    Some("out_of_data_space") => PoolMode::OutOfDataSpace,
                    Some(other) => PoolMode::Other(other.to_owned()),
                    None => return Err(err("no mode field")),
                },
                discard_passdown: None,
                error_if_no_space: None,
                needs_check: false,
                metadata_low_watermark: None,
            };
            // Later fields by their words, tolerating additions and reorderings.
            for (i, w) in words.iter().enumerate().skip(5) {
                match *w {
                    "discard_passdown" => s.discard_passdown = Some(true),
                    "no_discard_passdown" | "ignore_discard" => s.discard_passdown = Some(false),
                    "error_if_no_space" => s.error_if_no_space = Some(true),
                    "queue_if_no_space" => s.error_if_no_space = Some(false),
                    "needs_check" => s.needs_check = true,
                    w if i == words.len() - 1 => s.metadata_low_watermark = w.parse().ok(),
                    _ => {}
                }
            }
            Ok(TargetStatus::ThinPool(s))
        }
        "thin" => Ok(TargetStatus::Thin(ThinStatus {
            mapped_sectors: num(0)?,
            highest_mapped_sector: match words.get(1) {
                Some(&"-") | None => None,
                Some(w) => Some(w.parse().map_err(|_| err("bad highest mapped sector"))?),
            },
        })),
        "cache" => {
            let (metadata_used, metadata_total) = ratio(1)?;
            let (blocks_used, blocks_total) = ratio(3)?;
            let mut at = 11;
            let count = |at: usize| num(at).map(|n| n as usize);
            let n_features = count(at)?;
            let features: Vec<String> = words
                .get(at + 1..at + 1 + n_features)
                .ok_or_else(|| err("features cut short"))?
                .iter()
                .map(|s| s.to_string())
                .collect();
            at += 1 + n_features;
            let n_core = count(at)?;
            let core = words
                .get(at + 1..at + 1 + n_core)
                .ok_or_else(|| err("core arguments cut short"))?;
            let core_args = core
                .chunks(2)
                .map(|c| {
                    (
                        c[0].to_owned(),
                        c.get(1).copied().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            at += 1 + n_core;
            let policy = words.get(at).ok_or_else(|| err("no policy"))?.to_string();
            let n_policy = count(at + 1)?;
            let policy_args = words
                .get(at + 2..at + 2 + n_policy)
                .ok_or_else(|| err("policy arguments cut short"))?
                .iter()
                .map(|s| s.to_string())
                .collect();
            at += 2 + n_policy;
            Ok(TargetStatus::Cache(CacheStatus {
                metadata_block_sectors: num(0)?,
                metadata_used,
                metadata_total,
                block_sectors: num(2)?,
                blocks_used,
                blocks_total,
                read_hits: num(4)?,
                read_misses: num(5)?,
                write_hits: num(6)?,
                write_misses: num(7)?,
                demotions: num(8)?,
                promotions: num(9)?,
                dirty: num(10)?,
                features,
                core_args,
                policy,
                policy_args,
                read_only: words.get(at) == Some(&"ro"),
                needs_check: words.get(at + 1) == Some(&"needs_check"),
            }))
        }
        "snapshot" | "snapshot-merge" => {
            let (sectors_allocated, total_sectors) = ratio(0)?;
            Ok(TargetStatus::Snapshot(SnapshotStatus {
                sectors_allocated,
                total_sectors,
                metadata_sectors: num(1)?,
            }))
        }
        _ => Ok(TargetStatus::Other {
            target: target.to_owned(),
            params: trimmed.to_owned(),
        }),
    }
}

impl ThinPoolStatus {
    /// Data use in percent, as lvm2's Data% (two decimals).
    pub fn data_percent(&self) -> f64 {
        percent(self.data_used, self.data_total)
    }

    pub fn metadata_percent(&self) -> f64 {
        percent(self.metadata_used, self.metadata_total)
    }
}

impl SnapshotStatus {
    /// COW use in percent, as lvm2's Data% for a thick snapshot.
    pub fn percent(&self) -> f64 {
        percent(self.sectors_allocated, self.total_sectors)
    }
}

fn percent(used: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        used as f64 * 100.0 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dmsetup status` of every LV type, captured in the lab (tests/fixtures/dm/capture.sh).
    const STATUS: &str = include_str!("../../tests/fixtures/dm/status.txt");

    fn line(name: &str) -> TargetStatus {
        let l = STATUS
            .lines()
            .find(|l| l.starts_with(&format!("{name}: ")))
            .unwrap();
        let mut words = l.splitn(5, ' ');
        let (_, _start, _len, target) = (
            words.next(),
            words.next(),
            words.next(),
            words.next().unwrap(),
        );
        parse(target, words.next().unwrap_or("")).unwrap()
    }

    #[test]
    fn every_captured_line_parses() {
        for l in STATUS.lines() {
            let mut words = l.splitn(5, ' ');
            let target = words.nth(3).unwrap();
            parse(target, words.next().unwrap_or("")).unwrap_or_else(|e| panic!("{l}: {e}"));
        }
    }

    #[test]
    fn thin_pool_and_thin() {
        let TargetStatus::ThinPool(p) = line("vg-pool-tpool") else {
            panic!()
        };
        assert_eq!(
            (
                p.transaction_id,
                p.metadata_used,
                p.metadata_total,
                p.data_used,
                p.data_total
            ),
            (2, 114, 1024, 320, 1600)
        );
        assert_eq!(
            (
                p.held_root,
                p.mode.clone(),
                p.discard_passdown,
                p.error_if_no_space
            ),
            (None, PoolMode::ReadWrite, Some(true), Some(false))
        );
        assert!(!p.needs_check);
        assert_eq!(p.metadata_low_watermark, Some(256));
        // lvm2's Data% for the same pool, from the same capture.
        let lvs = include_str!("../../tests/fixtures/dm/lvs.json");
        assert!(
            lvs.contains(&format!("\"data_percent\":\"{:.2}\"", p.data_percent())),
            "{lvs}"
        );
        assert!(
            lvs.contains(&format!(
                "\"metadata_percent\":\"{:.2}\"",
                p.metadata_percent()
            )),
            "{lvs}"
        );
        assert_eq!(
            line("vg-thin"),
            TargetStatus::Thin(ThinStatus {
                mapped_sectors: 40960,
                highest_mapped_sector: Some(40959)
            })
        );
        assert_eq!(
            parse("thin", "0 -"),
            Ok(TargetStatus::Thin(ThinStatus {
                mapped_sectors: 0,
                highest_mapped_sector: None
            }))
        );
    }

    #[test]
    fn cache() {
        let TargetStatus::Cache(c) = line("vg-cached") else {
            panic!()
        };
        assert_eq!(
            (c.metadata_block_sectors, c.metadata_used, c.metadata_total),
            (8, 10, 2048)
        );
        assert_eq!(
            (c.block_sectors, c.blocks_used, c.blocks_total),
            (128, 0, 640)
        );
        assert_eq!(c.features, ["metadata2", "writethrough"]);
        assert_eq!(
            c.core_args,
            [("migration_threshold".to_owned(), "2048".to_owned())]
        );
        assert_eq!(
            (
                c.policy.as_str(),
                c.policy_args.len(),
                c.read_only,
                c.needs_check
            ),
            ("smq", 0, false, false)
        );
    }

    #[test]
    fn snapshots_and_their_failure_states() {
        assert_eq!(
            line("vg-snap"),
            TargetStatus::Snapshot(SnapshotStatus {
                sectors_allocated: 4128,
                total_sectors: 16384,
                metadata_sectors: 32
            })
        );
        assert_eq!(line("vg-full"), TargetStatus::Invalid);
        assert_eq!(
            parse("snapshot-merge", "Merge failed"),
            Ok(TargetStatus::MergeFailed)
        );
        assert_eq!(parse("thin-pool", "Fail"), Ok(TargetStatus::Failed));
        assert_eq!(parse("cache", "Error"), Ok(TargetStatus::Error));
    }

    #[test]
    fn unknown_additions_are_tolerated_and_damage_is_an_error() {
        let newer =
            "2 114/1024 320/1600 - rw discard_passdown queue_if_no_space - 256 some_new_flag 7";
        assert!(matches!(
            parse("thin-pool", newer),
            Ok(TargetStatus::ThinPool(_))
        ));
        assert!(matches!(
            parse("linear", ""),
            Ok(TargetStatus::Other { .. })
        ));
        for (target, bad) in [
            ("thin-pool", "x 1/2 3/4 - rw"),
            ("thin-pool", "2 114 320/1600 - rw"),
            ("cache", "8 10/2048 128"),
            ("snapshot", "12"),
        ] {
            let e = parse(target, bad).unwrap_err();
            assert!(e.to_string().contains(target), "{e}");
        }
    }
}
