//! Sizes as lvm2 users write them: `125` (in a default unit), `4M`, `1.5g`,
//! `512k`, `8s` (sectors), `100%FREE`-style percentages later, all binary
//! (k = 1024), case-insensitive as lvm2's -L is.

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
}
