//! Warnings raised where no returned value can carry them: a `Drop` that
//! fails to unmount, udev's watchdog thread, a PV that did not take a
//! commit in the middle of a change of several commits. They are recorded
//! here, process-wide, and the caller takes them once its operation is over
//! ([`crate::host::take_warnings`]; the CLI prints them on stderr).
//!
//! What a result can carry it carries instead ([`crate::Outcome::warnings`]).

use std::sync::Mutex;

static RECORDED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records a warning for the caller to take.
pub(crate) fn record(warning: impl std::fmt::Display) {
    RECORDED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(warning.to_string());
}

/// Takes the warnings recorded so far, oldest first.
pub fn take() -> Vec<String> {
    std::mem::take(&mut *RECORDED.lock().unwrap_or_else(|e| e.into_inner()))
}
