//! Sizes as lvm2 users write them: `125` (in a default unit), `4M`, `1.5g`,
//! `512k`, `8s` (sectors), `100%FREE`-style percentages later, all binary
//! (k = 1024), case-insensitive as lvm2's -L is; and the units sizes come
//! in at the API's edge ([`Bytes`], [`Sectors`], [`Extents`]), so that a
//! request says which one it means.

use std::fmt;

/// Bytes in a sector, the unit of device-mapper tables and of LVM2's
/// metadata.
pub const SECTOR: u64 = 512;

/// A count in one unit: a `u64` that says which unit it counts, and
/// serializes as the bare number.
macro_rules! unit {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub u64);
    };
}

unit!(
    /// A size in bytes, at the API's edge: what a request asks for, before
    /// it is rounded to extents or chunks. Shown as `4096b`, which
    /// [`parse_size`] reads back.
    Bytes
);
unit!(
    /// A size in 512-byte sectors. Shown as `8s`, which [`parse_size`]
    /// reads back.
    Sectors
);
unit!(
    /// A count of a VG's physical extents (whose size the VG sets).
    Extents
);

impl Bytes {
    /// The whole sectors in this many bytes (a partial sector is dropped,
    /// as the requests that take bytes have always counted them).
    pub fn sectors(self) -> Sectors {
        Sectors(self.0 / SECTOR)
    }

    /// The extents of `extent_bytes` each that hold this many bytes (the
    /// last one partly filled).
    pub fn extents_ceil(self, extent_bytes: u64) -> Extents {
        Extents(self.0.div_ceil(extent_bytes))
    }
}

impl Sectors {
    /// The same size in bytes (512 per sector).
    pub fn bytes(self) -> Bytes {
        Bytes(self.0 * SECTOR)
    }
}

impl Extents {
    /// This many extents of `extent_sectors` each (a VG's `extent_size`).
    pub fn sectors(self, extent_sectors: u64) -> Sectors {
        Sectors(self.0 * extent_sectors)
    }
}

impl From<Sectors> for Bytes {
    fn from(s: Sectors) -> Bytes {
        s.bytes()
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}b", self.0)
    }
}

impl fmt::Display for Sectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

impl fmt::Display for Extents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = if self.0 == 1 { "" } else { "s" };
        write!(f, "{} extent{s}", self.0)
    }
}

/// A size request: bytes, or a share of something.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Size {
    /// A size in bytes.
    Bytes(u64),
    /// Percentage of free space (`50%FREE`).
    PercentFree(f64),
}

/// Text that is not a size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid size {input:?}: {why} (examples: 125M, 1.5G, 512k, 8s, 50%FREE)")]
pub struct SizeError {
    /// The text as given.
    pub input: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// Parses `text`; a bare number is in `default_unit` bytes (lvm2's -L uses MiB).
pub fn parse_size(text: &str, default_unit: u64) -> Result<Size, SizeError> {
    let err = |why| SizeError {
        input: text.to_owned(),
        why,
    };
    let t = text.trim();
    if let Some(p) = t.strip_suffix("%FREE").or_else(|| t.strip_suffix("%free")) {
        let v: f64 = p.parse().map_err(|_| err("not a number before %FREE"))?;
        if !(v > 0.0 && v <= 100.0) {
            return Err(err("a percentage must be in (0, 100]"));
        }
        return Ok(Size::PercentFree(v));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    if number.is_empty() {
        return Err(err("it does not start with a number"));
    }
    let value: f64 = number.parse().map_err(|_| err("not a number"))?;
    let unit = unit.to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b').filter(|u| !u.is_empty()))
        .unwrap_or(&unit);
    let factor: u64 = match unit {
        "" => default_unit,
        "b" => 1,
        "s" => 512,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return Err(err("unknown unit")),
    };
    let bytes = value * factor as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(err("too large"));
    }
    Ok(Size::Bytes(bytes.round() as u64))
}

/// Bytes in lvm2's short human form (`4.00m`, `1020.00m`, `1.50g`).
pub fn human(bytes: u64) -> String {
    const UNITS: [(&str, u64); 5] = [
        ("p", 1 << 50),
        ("t", 1 << 40),
        ("g", 1 << 30),
        ("m", 1 << 20),
        ("k", 1 << 10),
    ];
    for (suffix, size) in UNITS {
        if bytes >= size {
            // lvm2 marks a figure that rounding made larger than the size.
            let exact = bytes as f64 / size as f64;
            let shown = (exact * 100.0).round() / 100.0;
            let marker = if shown > exact { "<" } else { "" };
            return format!("{marker}{shown:.2}{suffix}");
        }
    }
    format!("{bytes}b")
}

/// The civil date (year, month 1-12, day 1-31) of a day counted from
/// 1970-01-01 (Howard Hinnant's algorithm): for UTC times printed without
/// a date crate.
pub fn civil_date(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lvm2_style_sizes() {
        let m = 1 << 20;
        assert_eq!(parse_size("125", m), Ok(Size::Bytes(125 * m)));
        assert_eq!(parse_size("4M", 1), Ok(Size::Bytes(4 * m)));
        assert_eq!(parse_size("4MiB", 1), Ok(Size::Bytes(4 * m)));
        assert_eq!(parse_size("1.5g", 1), Ok(Size::Bytes(3 << 29)));
        assert_eq!(parse_size("8s", 1), Ok(Size::Bytes(4096)));
        assert_eq!(parse_size("512k", 1), Ok(Size::Bytes(512 << 10)));
        assert_eq!(parse_size("50%FREE", 1), Ok(Size::PercentFree(50.0)));
        for bad in ["", "M", "4X", "1e9", "0%FREE", "200%FREE", "99999999999P"] {
            assert!(parse_size(bad, m).is_err(), "{bad}");
        }
        assert!(parse_size("4X", 1)
            .unwrap_err()
            .to_string()
            .contains("examples"));
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(4 << 20), "4.00m");
        assert_eq!(human(1020 << 20), "1020.00m");
        assert_eq!(human(3 << 29), "1.50g");
        assert_eq!(human(100), "100b");
        // As lvm2 prints the seed's stack: 1.50g less 4 MiB, 2 GiB less 4 MiB.
        assert_eq!(human((3 << 29) - (4 << 20)), "<1.50g");
        assert_eq!(human((2 << 30) - (4 << 20)), "<2.00g");
        assert_eq!(human(132 << 20), "132.00m");
    }

    #[test]
    fn unit_newtypes_convert_and_read_back() {
        assert_eq!(Sectors(8).bytes(), Bytes(4096));
        assert_eq!(Bytes::from(Sectors(3)), Bytes(1536));
        // Bytes to sectors drops a partial sector, as requests always did.
        assert_eq!(Bytes(4096).sectors(), Sectors(8));
        assert_eq!(Bytes(4097).sectors(), Sectors(8));
        assert_eq!(Bytes(4 << 20).extents_ceil(4 << 20), Extents(1));
        assert_eq!(Bytes((4 << 20) + 1).extents_ceil(4 << 20), Extents(2));
        assert_eq!(Bytes(0).extents_ceil(4 << 20), Extents(0));
        assert_eq!(Extents(3).sectors(8192), Sectors(3 * 8192));
        assert_eq!(Extents(3).sectors(8192).bytes(), Bytes(12 << 20));
        // Shown in lvm2's unit letters, which parse_size reads back.
        for b in [0, 1, 512, 4096, 3 << 29, u64::MAX >> 12] {
            let shown = Bytes(b).to_string();
            assert_eq!(parse_size(&shown, 1 << 20), Ok(Size::Bytes(b)), "{shown}");
        }
        for s in [0, 1, 8, 1 << 21] {
            let shown = Sectors(s).to_string();
            assert_eq!(
                parse_size(&shown, 1 << 20),
                Ok(Size::Bytes(Sectors(s).bytes().0)),
                "{shown}"
            );
        }
        assert_eq!(Extents(1).to_string(), "1 extent");
        assert_eq!(Extents(25).to_string(), "25 extents");
        // Serialized as the bare number, as the u64 fields they replace.
        assert_eq!(serde_json::to_string(&Bytes(4096)).unwrap(), "4096");
        assert_eq!(serde_json::from_str::<Sectors>("8").unwrap(), Sectors(8));
        assert_eq!(serde_json::to_string(&Extents(2)).unwrap(), "2");
    }
}
