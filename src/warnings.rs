//! Warnings raised where no returned value can carry them: a `Drop` that
//! fails to unmount, udev's watchdog thread, a PV that did not take a
//! commit in the middle of a change of several commits. They are recorded
//! here, process-wide, and the caller takes them once its operation is over
//! ([`crate::host::take_warnings`]; the CLI prints them on stderr).
//!
//! What a result can carry it carries instead ([`crate::Outcome::warnings`]).

use std::sync::Mutex;

static RECORDED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The most kept: a long-lived program that never takes them must not grow
/// without bound. The last slot says how many more were dropped.
const KEPT: usize = 1000;

/// Records a warning for the caller to take.
pub(crate) fn record(warning: impl std::fmt::Display) {
    keep(
        &mut RECORDED.lock().unwrap_or_else(|e| e.into_inner()),
        warning.to_string(),
    );
}

/// Adds `warning` to `kept`, or counts it in the last slot once full.
fn keep(kept: &mut Vec<String>, warning: String) {
    const DROPPED: &str = "more warnings were dropped (none taken)";
    match kept.len() {
        n if n < KEPT - 1 => kept.push(warning),
        n if n == KEPT - 1 => kept.push(format!("1 {DROPPED}")),
        _ => {
            let last = &mut kept[KEPT - 1];
            let dropped: u64 = last
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            *last = format!("{} {DROPPED}", dropped + 1);
        }
    }
}

/// Takes the warnings recorded so far, oldest first.
pub fn take() -> Vec<String> {
    std::mem::take(&mut *RECORDED.lock().unwrap_or_else(|e| e.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sink_keeps_the_first_warnings_and_counts_the_rest() {
        let mut kept = Vec::new();
        for i in 0..KEPT + 5 {
            keep(&mut kept, i.to_string());
        }
        assert_eq!(kept.len(), KEPT);
        assert_eq!(kept[0], "0");
        assert_eq!(kept[KEPT - 2], (KEPT - 2).to_string());
        // Warnings KEPT - 1 .. KEPT + 4: six of them.
        assert_eq!(kept[KEPT - 1], "6 more warnings were dropped (none taken)");
    }
}
