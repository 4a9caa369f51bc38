//! lvm2's percentages (Data%, Meta%): kept as integers in millionths of a
//! percent, as libdm's dm_percent_t, and printed the way lvm2 prints them,
//! so that a pool 1 block short of full never reads 100.00 and a pool with
//! one block used never reads 0.00.

/// Millionths of a percent (libdm's dm_percent_t).
pub type Percent = i32;

const PERCENT_1: i32 = 1_000_000;
pub const PERCENT_0: Percent = 0;
pub const PERCENT_100: Percent = 100 * PERCENT_1;

/// libdm's dm_make_percent.
pub fn make(numerator: u64, denominator: u64) -> Percent {
    if denominator == 0 {
        return PERCENT_100;
    }
    if numerator == 0 {
        return PERCENT_0;
    }
    if numerator == denominator {
        return PERCENT_100;
    }
    // C converts the double to int32 by truncation.
    let p = (f64::from(PERCENT_100) * (numerator as f64 / denominator as f64)) as i32;
    match p {
        PERCENT_100 => PERCENT_100 - 1,
        PERCENT_0 => PERCENT_0 + 1,
        p => p,
    }
}

/// The report's text: "" when there is none, else two decimals, rounded as
/// libdm's dm_percent_to_round_float(p, 2) does (in single precision).
pub fn display(p: Option<Percent>) -> String {
    let Some(p) = p else {
        return String::new();
    };
    let hundredth = PERCENT_1 as f32 * 0.01f32;
    let mut f = p as f32 / PERCENT_1 as f32 + 0.0;
    if (p as f32) < hundredth && p > PERCENT_0 {
        f = 0.01;
    } else if (p as f32) > (PERCENT_100 as f32 - hundredth) && p < PERCENT_100 {
        f = (PERCENT_100 as f32 - hundredth) / PERCENT_1 as f32;
    }
    format!("{:.2}", f64::from(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(n: u64, d: u64) -> String {
        display(Some(make(n, d)))
    }

    #[test]
    fn as_lvm2_printed_them_in_the_lab() {
        // tests/fixtures/dm: status.txt against lvs.json.
        assert_eq!(shown(320, 1600), "20.00", "pool data");
        assert_eq!(shown(114, 1024), "11.13", "pool metadata");
        assert_eq!(shown(40960, 409600), "10.00", "thin");
        assert_eq!(shown(4128, 16384), "25.20", "snapshot");
        assert_eq!(shown(10, 2048), "0.49", "cache metadata");
        assert_eq!(shown(0, 640), "0.00", "cache data");
        assert_eq!(display(Some(PERCENT_100)), "100.00", "invalid snapshot");
        assert_eq!(display(None), "");
    }

    #[test]
    fn never_rounds_to_empty_or_full() {
        assert_eq!(shown(1, 1_000_000), "0.01");
        assert_eq!(shown(999_999, 1_000_000), "99.99");
        assert_eq!(shown(7, 7), "100.00");
        assert_eq!(shown(5, 0), "100.00", "libdm's choice for an empty total");
    }
}
