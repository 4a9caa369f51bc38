//! Crash points for crash-injection tests: `CAIRN_CRASH_AT=name[,name...]`
//! makes the process abort at the named points, as a kill -9 or a power
//! cut would stop it there (no destructor, no cleanup, no undo). Without
//! the variable a point costs one environment lookup.

/// Aborts the process if `CAIRN_CRASH_AT` names `point`.
pub fn hit(point: &str) {
    if let Some(list) = std::env::var_os("CAIRN_CRASH_AT") {
        if list.to_string_lossy().split(',').any(|p| p.trim() == point) {
            eprintln!("cairn: crash point {point} reached (CAIRN_CRASH_AT): aborting");
            std::process::abort();
        }
    }
}

/// Sleeps at `point` when `CAIRN_DELAY_AT=point:MILLISECONDS[,...]` names it:
/// widens a window between two steps so that a test can make another
/// process act inside it (a race made certain instead of lucky).
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
