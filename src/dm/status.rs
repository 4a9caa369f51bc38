//! Status lines of the targets LVM stacks are made of (what DM_TABLE_STATUS
//! returns, as `dmsetup status` prints it after the target name), parsed
//! tolerantly: fields a newer kernel appends are ignored, and the kernel's
//! own failure words (`Fail`, `Error`, `Invalid`, `Merge failed`) are states,
//! not parse errors.

/// A thin pool's status (dm-thin-pool's pool_status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThinPoolStatus {
    /// The transaction id in the pool's metadata (lvm2 keeps the VG's
    /// `transaction_id` equal to it).
    pub transaction_id: u64,
    /// Metadata blocks in use (4 KiB blocks).
    pub metadata_used: u64,
    /// Metadata blocks in all (4 KiB blocks).
    pub metadata_total: u64,
    /// Data blocks in use (blocks of the pool's chunk size).
    pub data_used: u64,
    /// Data blocks in all (blocks of the pool's chunk size).
    pub data_total: u64,
    /// The held metadata root ("-" when none is held).
    pub held_root: Option<u64>,
    /// Whether the pool takes writes, and if not why.
    pub mode: PoolMode,
    /// Whether discards pass down to the data device (None on kernels that
    /// do not say).
    pub discard_passdown: Option<bool>,
    /// `error_if_no_space` rather than `queue_if_no_space`.
    pub error_if_no_space: Option<bool>,
    /// The metadata is flagged for `thin_check`: the pool will not
    /// activate again until it is repaired.
    pub needs_check: bool,
    /// Free metadata blocks below which the pool raises an event (kernels
    /// that report it).
    pub metadata_low_watermark: Option<u64>,
}

/// A thin pool's mode, the status's fifth word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolMode {
    /// `rw`: the pool works.
    ReadWrite,
    /// `ro`: the pool went read-only (a metadata failure, or metadata
    /// space ran out).
    ReadOnly,
    /// `out_of_data_space`: data space ran out; writes that need a new
    /// block queue or fail (per `error_if_no_space`).
    OutOfDataSpace,
    /// A word this parser does not know (`fail`, or a newer kernel's).
    Other(String),
}

/// A thin volume's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThinStatus {
    /// Sectors the volume has blocks for in the pool, in 512-byte sectors.
    pub mapped_sectors: u64,
    /// None when nothing is mapped yet ("-").
    pub highest_mapped_sector: Option<u64>,
}

/// A cache's status (dm-cache's cache_status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheStatus {
    /// The metadata block, in 512-byte sectors.
    pub metadata_block_sectors: u64,
    /// Metadata blocks in use.
    pub metadata_used: u64,
    /// Metadata blocks in all.
    pub metadata_total: u64,
    /// The cache block, in 512-byte sectors.
    pub block_sectors: u64,
    /// Cache blocks holding origin data.
    pub blocks_used: u64,
    /// Cache blocks in all.
    pub blocks_total: u64,
    /// Reads served from the cache device (bios).
    pub read_hits: u64,
    /// Reads served from the origin (bios).
    pub read_misses: u64,
    /// Writes to blocks in the cache (bios).
    pub write_hits: u64,
    /// Writes to blocks not in the cache (bios).
    pub write_misses: u64,
    /// Blocks moved out of the cache.
    pub demotions: u64,
    /// Blocks moved into the cache.
    pub promotions: u64,
    /// Cache blocks not yet written back to the origin.
    pub dirty: u64,
    /// Feature words (`writeback`, `writethrough`, `passthrough`,
    /// `metadata2`, ...).
    pub features: Vec<String>,
    /// Core settings as `key value` pairs (`migration_threshold 2048`).
    pub core_args: Vec<(String, String)>,
    /// The policy's name (`smq`, `cleaner`).
    pub policy: String,
    /// The policy's own words, unparsed.
    pub policy_args: Vec<String>,
    /// The cache's metadata went read-only (`ro`, after a metadata error).
    pub read_only: bool,
    /// The metadata is flagged for `cache_check`.
    pub needs_check: bool,
}

/// A thick snapshot's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotStatus {
    /// COW space in use, metadata included, in 512-byte sectors.
    pub sectors_allocated: u64,
    /// The COW device's size, in 512-byte sectors.
    pub total_sectors: u64,
    /// COW space holding the exception store's metadata, in 512-byte
    /// sectors.
    pub metadata_sectors: u64,
}

/// One status line, parsed by its target type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetStatus {
    /// A `thin-pool` line.
    ThinPool(ThinPoolStatus),
    /// A `thin` line.
    Thin(ThinStatus),
    /// A `cache` line.
    Cache(CacheStatus),
    /// A `snapshot` or `snapshot-merge` line.
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
        /// The target type's name.
        target: String,
        /// Its status words, unparsed.
        params: String,
    },
}

/// A status line that does not parse as its target's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the {target} status {params:?}: {why}")]
pub struct StatusError {
    /// The target type's name.
    pub target: String,
    /// The status words as the kernel gave them.
    pub params: String,
    /// What did not parse.
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

    /// Metadata use in percent, as lvm2's Meta%.
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
