//! Crash points for crash-injection tests: `CAIRN_CRASH_AT=name[,name...]`
//! makes the process abort at the named points, as a kill -9 or a power
//! cut would stop it there (no destructor, no cleanup, no undo).
//!
//! They exist only in debug builds with the `failpoints` feature: the
//! lab's test builds (the dev-dependency on cairn itself turns the feature
//! on, Cargo.toml). Anywhere else [`hit`] is an empty inline function and
//! the variable is never read, so a shipped binary cannot be made to abort
//! half-way through a change by its environment. Two conditions, not one:
//! the feature keeps `cargo build` (debug too) free of them, and debug
//! assertions keep every optimised build free of them even where cargo
//! turns the feature on (`cargo bench` also builds dev-dependencies, and
//! leaves its binary at `target/<triple>/release/cairn`, where a release
//! build's would be).

/// Whether this build has crash points (the lab's crash tests need them).
pub const ENABLED: bool = cfg!(all(feature = "failpoints", debug_assertions));

/// Aborts the process if `CAIRN_CRASH_AT` names `point`.
#[cfg(all(feature = "failpoints", debug_assertions))]
pub fn hit(point: &str) {
    if let Some(list) = std::env::var_os("CAIRN_CRASH_AT") {
        if list.to_string_lossy().split(',').any(|p| p.trim() == point) {
            eprintln!("cairn: crash point {point} reached (CAIRN_CRASH_AT): aborting");
            std::process::abort();
        }
    }
}

/// Without crash points: nothing.
#[cfg(not(all(feature = "failpoints", debug_assertions)))]
#[inline(always)]
pub fn hit(_point: &str) {}

/// Sleeps at `point` when `CAIRN_DELAY_AT=point:MILLISECONDS[,...]` names it:
/// widens a window between two steps so that a test can make another
/// process act inside it (a race made certain instead of lucky). Like the
/// crash points, only in the lab's test builds.
#[cfg(all(feature = "failpoints", debug_assertions))]
pub fn delay(point: &str) {
    if let Some(list) = std::env::var_os("CAIRN_DELAY_AT") {
        for item in list.to_string_lossy().split(',') {
            if let Some((p, ms)) = item.trim().split_once(':') {
                if p == point {
                    if let Ok(ms) = ms.parse::<u64>() {
                        std::thread::sleep(std::time::Duration::from_millis(ms));
                    }
                }
            }
        }
    }
}

/// Without delay points: nothing.
#[cfg(not(all(feature = "failpoints", debug_assertions)))]
#[inline(always)]
pub fn delay(_point: &str) {}

/// Whether `CAIRN_FAIL_AT=name[,name...]` names `point`: the code there
/// then fails as if its I/O had (an error path made reachable on demand,
/// where the lab cannot make a device fail). Only in the lab's test builds.
#[cfg(all(feature = "failpoints", debug_assertions))]
pub fn fail(point: &str) -> bool {
    std::env::var_os("CAIRN_FAIL_AT")
        .is_some_and(|list| list.to_string_lossy().split(',').any(|p| p.trim() == point))
}

/// Without fail points: never.
#[cfg(not(all(feature = "failpoints", debug_assertions)))]
#[inline(always)]
pub fn fail(_point: &str) -> bool {
    false
}
