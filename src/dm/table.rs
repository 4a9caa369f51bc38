//! Device-mapper table lines as typed values, for the targets LVM stacks
//! use: `Display` writes the line the kernel takes (and prints back, in its
//! canonical form), `FromStr` reads what the kernel prints. One round trip
//! per target is proven on tables lvm2 loaded in the lab.

use std::fmt;
use std::str::FromStr;

/// A device in a table: the kernel prints `major:minor`; a table may also
/// name a path, which the kernel resolves on load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevRef {
    /// `major:minor`, as the kernel prints it.
    Number(u32, u32),
    /// An absolute path to a block node, resolved by the kernel on load.
    Path(String),
}

impl fmt::Display for DevRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DevRef::Number(a, b) => write!(f, "{a}:{b}"),
            DevRef::Path(p) => f.write_str(p),
        }
    }
}

impl FromStr for DevRef {
    type Err = TableError;
    fn from_str(s: &str) -> Result<Self, TableError> {
        if let Some((a, b)) = s.split_once(':') {
            if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
                return Ok(DevRef::Number(a, b));
            }
        }
        if s.starts_with('/') {
            return Ok(DevRef::Path(s.to_owned()));
        }
        Err(TableError(format!(
            "{s:?} is neither major:minor nor a path"
        )))
    }
}

/// One target's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `linear`: maps the line's sectors onto one device, from an offset.
    Linear {
        /// The device written to.
        dev: DevRef,
        /// Where on it the mapping starts, in 512-byte sectors.
        offset: u64,
    },
    /// `striped`: spreads the line's sectors over several devices in
    /// chunks, round robin.
    Striped {
        /// The stripe size, in 512-byte sectors.
        chunk_sectors: u64,
        /// Each stripe's device and its start on it, in 512-byte sectors.
        stripes: Vec<(DevRef, u64)>,
    },
    /// `thin-pool`: the pool that thin devices allocate blocks from.
    ThinPool {
        /// The pool's metadata device (lvm2's `_tmeta`).
        metadata: DevRef,
        /// The pool's data device (lvm2's `_tdata`).
        data: DevRef,
        /// The allocation block (lvm2's chunk size), in 512-byte sectors.
        block_sectors: u64,
        /// Free data blocks below which the pool raises an event (for
        /// autoextension), in pool blocks.
        low_water_mark: u64,
        /// Feature words (`skip_block_zeroing`, `error_if_no_space`, ...).
        features: Vec<String>,
    },
    /// `thin`: one thin volume in a pool.
    Thin {
        /// The pool's `-tpool` device.
        pool: DevRef,
        /// The thin device's id in the pool's metadata (lvm2's
        /// `device_id`).
        device_id: u64,
        /// A read-only device read where the thin volume has no block yet
        /// (an external origin).
        external_origin: Option<DevRef>,
    },
    /// `cache`: an origin device with a faster cache device in front of it.
    Cache {
        /// The cache's metadata device (lvm2's `_cmeta`).
        metadata: DevRef,
        /// The fast device that holds cached blocks (lvm2's `_cdata`).
        cache: DevRef,
        /// The slow device cached (lvm2's `_corig`).
        origin: DevRef,
        /// The cache block, in 512-byte sectors.
        block_sectors: u64,
        /// Feature words (`writeback`, `writethrough`, `passthrough`,
        /// `metadata2`, ...).
        features: Vec<String>,
        /// The policy's name (`smq`, `cleaner`).
        policy: String,
        /// The policy's `key value` settings (`migration_threshold 2048`).
        policy_args: Vec<(String, String)>,
    },
    /// `snapshot`: an old-style (COW) snapshot of an origin.
    /// `persistence`: P (persistent), N (transient), PO (persistent, overflow allowed).
    Snapshot {
        /// The origin's real device (lvm2's `-real`).
        origin: DevRef,
        /// The exception store (lvm2's `-cow`).
        cow: DevRef,
        /// `P`, `N` or `PO`, as above.
        persistence: String,
        /// The exception chunk, in 512-byte sectors.
        chunk_sectors: u64,
    },
    /// `snapshot-origin`: the origin's public device, which copies a chunk
    /// to every snapshot's COW before writing it.
    SnapshotOrigin {
        /// The origin's real device (lvm2's `-real`).
        origin: DevRef,
    },
    /// `snapshot-merge`: a snapshot merging back into its origin (the
    /// origin's table while the merge runs).
    SnapshotMerge {
        /// The origin's real device (lvm2's `-real`).
        origin: DevRef,
        /// The exception store being merged.
        cow: DevRef,
        /// `P`, `N` or `PO`, as on [`Target::Snapshot`].
        persistence: String,
        /// The exception chunk, in 512-byte sectors.
        chunk_sectors: u64,
    },
    /// `error`: fails every I/O (lvm2 loads it over a missing device).
    Error,
    /// `zero`: reads zeros, drops writes.
    Zero,
}

/// A whole table line: `start length target params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLine {
    /// Where the line starts in the device, in 512-byte sectors.
    pub start: u64,
    /// How long it is, in 512-byte sectors.
    pub length: u64,
    /// What maps those sectors.
    pub target: Target,
}

/// A table line or parameter string that does not parse, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad device-mapper table line: {0}")]
pub struct TableError(pub String);

impl Target {
    /// The kernel's name for the target type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Target::Linear { .. } => "linear",
            Target::Striped { .. } => "striped",
            Target::ThinPool { .. } => "thin-pool",
            Target::Thin { .. } => "thin",
            Target::Cache { .. } => "cache",
            Target::Snapshot { .. } => "snapshot",
            Target::SnapshotOrigin { .. } => "snapshot-origin",
            Target::SnapshotMerge { .. } => "snapshot-merge",
            Target::Error => "error",
            Target::Zero => "zero",
        }
    }

    /// Every device the target refers to, in table order.
    pub fn devices(&self) -> Vec<&DevRef> {
        match self {
            Target::Linear { dev, .. } => vec![dev],
            Target::Striped { stripes, .. } => stripes.iter().map(|(d, _)| d).collect(),
            Target::ThinPool { metadata, data, .. } => vec![metadata, data],
            Target::Thin {
                pool,
                external_origin,
                ..
            } => std::iter::once(pool).chain(external_origin).collect(),
            Target::Cache {
                metadata,
                cache,
                origin,
                ..
            } => vec![metadata, cache, origin],
            Target::Snapshot { origin, cow, .. } | Target::SnapshotMerge { origin, cow, .. } => {
                vec![origin, cow]
            }
            Target::SnapshotOrigin { origin } => vec![origin],
            Target::Error | Target::Zero => vec![],
        }
    }

    /// The same, to change in place (paths to numbers).
    pub fn devices_mut(&mut self) -> Vec<&mut DevRef> {
        match self {
            Target::Linear { dev, .. } => vec![dev],
            Target::Striped { stripes, .. } => stripes.iter_mut().map(|(d, _)| d).collect(),
            Target::ThinPool { metadata, data, .. } => vec![metadata, data],
            Target::Thin {
                pool,
                external_origin,
                ..
            } => std::iter::once(pool).chain(external_origin).collect(),
            Target::Cache {
                metadata,
                cache,
                origin,
                ..
            } => vec![metadata, cache, origin],
            Target::Snapshot { origin, cow, .. } | Target::SnapshotMerge { origin, cow, .. } => {
                vec![origin, cow]
            }
            Target::SnapshotOrigin { origin } => vec![origin],
            Target::Error | Target::Zero => vec![],
        }
    }

    /// The parameter string the kernel takes.
    pub fn params(&self) -> String {
        let list = |v: &[String]| {
            let mut s = v.len().to_string();
            for w in v {
                s.push(' ');
                s.push_str(w);
            }
            s
        };
        match self {
            Target::Linear { dev, offset } => format!("{dev} {offset}"),
            Target::Striped {
                chunk_sectors,
                stripes,
            } => {
                let mut s = format!("{} {chunk_sectors}", stripes.len());
                for (dev, offset) in stripes {
                    s.push_str(&format!(" {dev} {offset}"));
                }
                s
            }
            Target::ThinPool {
                metadata,
                data,
                block_sectors,
                low_water_mark,
                features,
            } => {
                format!(
                    "{metadata} {data} {block_sectors} {low_water_mark} {}",
                    list(features)
                )
            }
            Target::Thin {
                pool,
                device_id,
                external_origin,
            } => match external_origin {
                Some(o) => format!("{pool} {device_id} {o}"),
                None => format!("{pool} {device_id}"),
            },
            Target::Cache {
                metadata,
                cache,
                origin,
                block_sectors,
                features,
                policy,
                policy_args,
            } => {
                let args: Vec<String> = policy_args
                    .iter()
                    .flat_map(|(k, v)| [k.clone(), v.clone()])
                    .collect();
                format!(
                    "{metadata} {cache} {origin} {block_sectors} {} {policy} {}",
                    list(features),
                    list(&args)
                )
            }
            Target::Snapshot {
                origin,
                cow,
                persistence,
                chunk_sectors,
            }
            | Target::SnapshotMerge {
                origin,
                cow,
                persistence,
                chunk_sectors,
            } => {
                format!("{origin} {cow} {persistence} {chunk_sectors}")
            }
            Target::SnapshotOrigin { origin } => origin.to_string(),
            Target::Error | Target::Zero => String::new(),
        }
    }

    /// Reads a target from its type name and parameter words.
    pub fn parse(type_name: &str, params: &str) -> Result<Target, TableError> {
        let w: Vec<&str> = params.split_whitespace().collect();
        let err = |why: &str| TableError(format!("{type_name} {params}: {why}"));
        let word = |i: usize| w.get(i).copied().ok_or_else(|| err("too few parameters"));
        let num = |i: usize| -> Result<u64, TableError> {
            word(i)?
                .parse()
                .map_err(|_| err(&format!("parameter {} is not a number", i + 1)))
        };
        let dev = |i: usize| -> Result<DevRef, TableError> { word(i)?.parse() };
        // A counted list of words starting at `i`: (the words, the index after them).
        let counted = |i: usize| -> Result<(Vec<String>, usize), TableError> {
            let n = num(i)? as usize;
            let items = w
                .get(i + 1..i + 1 + n)
                .ok_or_else(|| err("a counted list is cut short"))?;
            Ok((items.iter().map(|s| s.to_string()).collect(), i + 1 + n))
        };
        let target = match type_name {
            "linear" => Target::Linear {
                dev: dev(0)?,
                offset: num(1)?,
            },
            "striped" => {
                let n = num(0)? as usize;
                let stripes = (0..n)
                    .map(|k| Ok((dev(2 + 2 * k)?, num(3 + 2 * k)?)))
                    .collect::<Result<Vec<_>, TableError>>()?;
                if w.len() != 2 + 2 * n {
                    return Err(err("stripe count does not match the devices listed"));
                }
                Target::Striped {
                    chunk_sectors: num(1)?,
                    stripes,
                }
            }
            "thin-pool" => {
                let (features, end) = counted(4)?;
                if end != w.len() {
                    return Err(err("words after the feature list"));
                }
                Target::ThinPool {
                    metadata: dev(0)?,
                    data: dev(1)?,
                    block_sectors: num(2)?,
                    low_water_mark: num(3)?,
                    features,
                }
            }
            "thin" => Target::Thin {
                pool: dev(0)?,
                device_id: num(1)?,
                external_origin: w.get(2).map(|s| s.parse()).transpose()?,
            },
            "cache" => {
                let (features, next) = counted(4)?;
                let policy = word(next)?.to_owned();
                let (args, end) = counted(next + 1)?;
                if args.len() % 2 != 0 || end != w.len() {
                    return Err(err("policy arguments must be key/value pairs"));
                }
                let policy_args = args
                    .chunks(2)
                    .map(|c| (c[0].clone(), c[1].clone()))
                    .collect();
                Target::Cache {
                    metadata: dev(0)?,
                    cache: dev(1)?,
                    origin: dev(2)?,
                    block_sectors: num(3)?,
                    features,
                    policy,
                    policy_args,
                }
            }
            "snapshot" | "snapshot-merge" => {
                let (origin, cow, persistence, chunk_sectors) =
                    (dev(0)?, dev(1)?, word(2)?.to_owned(), num(3)?);
                if !matches!(persistence.as_str(), "P" | "N" | "PO") {
                    return Err(err("persistence must be P, N or PO"));
                }
                if type_name == "snapshot" {
                    Target::Snapshot {
                        origin,
                        cow,
                        persistence,
                        chunk_sectors,
                    }
                } else {
                    Target::SnapshotMerge {
                        origin,
                        cow,
                        persistence,
                        chunk_sectors,
                    }
                }
            }
            "snapshot-origin" => Target::SnapshotOrigin { origin: dev(0)? },
            "error" => Target::Error,
            "zero" => Target::Zero,
            other => {
                return Err(TableError(format!(
                    "target type {other} is not one cairn builds"
                )))
            }
        };
        Ok(target)
    }
}

impl fmt::Display for TableLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.start,
            self.length,
            self.target.type_name()
        )?;
        let params = self.target.params();
        if !params.is_empty() {
            write!(f, " {params}")?;
        }
        Ok(())
    }
}

impl FromStr for TableLine {
    type Err = TableError;
    fn from_str(line: &str) -> Result<Self, TableError> {
        let mut parts = line.trim().splitn(4, char::is_whitespace);
        let bad = || TableError(format!("{line:?}: expected `start length target params`"));
        let start = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let length = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let type_name = parts.next().filter(|s| !s.is_empty()).ok_or_else(bad)?;
        let target = Target::parse(type_name, parts.next().unwrap_or(""))?;
        Ok(TableLine {
            start,
            length,
            target,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dmsetup table` of every LV type lvm2 makes, captured in the lab.
    const TABLES: &str = include_str!("../../tests/fixtures/dm/table.txt");

    #[test]
    fn every_lvm2_table_round_trips() {
        for l in TABLES.lines() {
            let (name, table) = l.split_once(": ").unwrap();
            let parsed: TableLine = table.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
            // The kernel prints a trailing space after an empty feature list.
            assert_eq!(parsed.to_string(), table.trim_end(), "{name}");
        }
    }

    #[test]
    fn typed_values_of_the_seed_targets() {
        let get = |name: &str| -> TableLine {
            TABLES
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .unwrap()
                .parse()
                .unwrap()
        };
        assert_eq!(
            get("vg-cached").target,
            Target::Cache {
                metadata: DevRef::Number(254, 10),
                cache: DevRef::Number(254, 9),
                origin: DevRef::Number(254, 11),
                block_sectors: 128,
                features: vec!["metadata2".into(), "writethrough".into()],
                policy: "smq".into(),
                policy_args: vec![],
            }
        );
        assert_eq!(
            get("vg-pool-tpool").target,
            Target::ThinPool {
                metadata: DevRef::Number(254, 2),
                data: DevRef::Number(254, 3),
                block_sectors: 128,
                low_water_mark: 0,
                features: vec![],
            }
        );
        assert_eq!(
            get("vg-thin").target,
            Target::Thin {
                pool: DevRef::Number(254, 4),
                device_id: 1,
                external_origin: None
            }
        );
        assert_eq!(
            get("vg-str").target,
            Target::Striped {
                chunk_sectors: 128,
                stripes: vec![(DevRef::Number(7, 0), 133120), (DevRef::Number(7, 1), 2048)]
            }
        );
        assert_eq!(
            get("vg-snap").target,
            Target::Snapshot {
                origin: DevRef::Number(254, 13),
                cow: DevRef::Number(254, 14),
                persistence: "P".into(),
                chunk_sectors: 8
            }
        );
    }

    #[test]
    fn written_lines_read_back() {
        let lines = [
            "0 2048 thin-pool /dev/mapper/m /dev/mapper/d 128 0 2 skip_block_zeroing no_discard_passdown",
            "0 100 cache 1:1 1:2 1:3 64 1 writeback smq 2 migration_threshold 2048",
            "0 8 thin 254:4 7 254:9",
            "0 8 snapshot-merge 254:1 254:2 PO 16",
            "0 8 error",
            "0 8 zero",
        ];
        for l in lines {
            let parsed: TableLine = l.parse().unwrap();
            assert_eq!(parsed.to_string(), l);
        }
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        for (line, what) in [
            ("0 8 linear 7:0", "too few parameters"),
            ("0 8 linear sda 0", "neither major:minor nor a path"),
            ("0 8 striped 2 128 7:0 0", "too few parameters"),
            (
                "0 8 thin-pool 1:1 1:2 128 0 2 skip_block_zeroing",
                "cut short",
            ),
            ("0 8 cache 1:1 1:2 1:3 64 0 smq 1 odd", "key/value"),
            ("0 8 snapshot 1:1 1:2 X 8", "persistence"),
            ("0 8 raid1 x", "not one cairn builds"),
            ("x 8 linear 7:0 0", "expected `start length target params`"),
        ] {
            let e = line.parse::<TableLine>().unwrap_err().to_string();
            assert!(e.contains(what), "{line}: {e}");
        }
    }
}
