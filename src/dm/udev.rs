//! A bound on udev's answer. When udev runs, device-mapper ioctls that
//! make uevents (resume, remove, rename) carry a cookie: a SysV semaphore
//! udev's rules release (`dmsetup udevcomplete`) once they have made the
//! /dev entries. The devicemapper crate waits for that without a timeout,
//! so a udev that is stuck, or runs without device-mapper's rules
//! installed (appliances, containers), would hang cairn forever.
//!
//! cairn waits at most the caller's limit instead (the host's udev wait,
//! [`DEFAULT_TIMEOUT`] unless set): a watchdog thread releases the
//! semaphores this process created during the ioctl (as `dmsetup
//! udevcomplete_all` would) and the call goes on with a warning; the device
//! nodes are then made by cairn itself (engine's node steps), as without
//! udev. Without udev (the VM lab, early boot) there is no cookie and no
//! thread.

use std::collections::HashSet;
use std::time::Duration;

/// libdm's cookie magic: the upper 16 bits of every cookie semaphore key.
const COOKIE_MAGIC: u32 = 0x0D4D;
/// Where the devicemapper crate (and libdm) look for a running udev.
const UDEV_CONTROL: &str = "/run/udev/control";
/// How long cairn waits for udev unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether udev runs, as the devicemapper crate decides it.
pub fn running() -> bool {
    std::path::Path::new(UDEV_CONTROL).exists()
}

/// The longest wait a caller may ask for (one hour).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// A wait given as text in seconds (the command line's `CAIRN_UDEV_TIMEOUT`;
/// None: unset, the default) as a duration, or why it cannot be one, saying
/// that the default is used instead. Zero is refused: it would release
/// udev's cookies at once, racing udev for every node.
pub fn parse_timeout(value: Option<&str>) -> Result<Duration, String> {
    let Some(value) = value else {
        return Ok(DEFAULT_TIMEOUT);
    };
    let bad = |why: &str| {
        Err(format!(
            "{value:?} {why}: udev waits use the default {} s instead \
             (give seconds, such as 30 or 2.5, more than 0 and at most {})",
            DEFAULT_TIMEOUT.as_secs(),
            MAX_TIMEOUT.as_secs()
        ))
    };
    let Ok(secs) = value.trim().parse::<f64>() else {
        return bad("is not a number");
    };
    match Duration::try_from_secs_f64(secs) {
        _ if secs.is_nan() => bad("is not a number"),
        Ok(t) if t.is_zero() => bad("is 0"),
        Ok(t) if t <= MAX_TIMEOUT => Ok(t),
        Ok(_) => bad("is more than an hour"),
        Err(_) if secs > 0.0 => bad("is more than an hour"),
        Err(_) => bad("is negative"),
    }
}

/// The ids of the device-mapper cookie semaphores this user owns, from
/// /proc/sysvipc/sem (key semid perms nsems uid gid cuid cgid ...).
fn cookie_semaphores() -> HashSet<i32> {
    let uid = nix::unistd::geteuid().as_raw();
    let Ok(text) = std::fs::read_to_string("/proc/sysvipc/sem") else {
        return HashSet::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let key: i64 = f.first()?.parse().ok()?;
            let semid: i32 = f.get(1)?.parse().ok()?;
            let cuid: u32 = f.get(6)?.parse().ok()?;
            ((key as u32) >> 16 == COOKIE_MAGIC && cuid == uid).then_some(semid)
        })
        .collect()
}

/// Lowers a cookie semaphore to zero, which ends the wait on it.
fn release(semid: i32) -> bool {
    let mut op = nix::libc::sembuf {
        sem_num: 0,
        sem_op: -1,
        sem_flg: nix::libc::IPC_NOWAIT as i16,
    };
    // SAFETY: one valid sembuf for a semaphore set id read from the kernel;
    // a set removed meanwhile makes semop fail, which is harmless.
    unsafe { nix::libc::semop(semid, &mut op, 1) == 0 }
}

/// Runs `op` (an ioctl that may wait for udev) with the wait bounded by
/// `limit`; `what` names it in the warning.
pub fn bounded<T>(what: &str, limit: Duration, op: impl FnOnce() -> T) -> T {
    if !running() {
        return op();
    }
    let before = cookie_semaphores();
    let (finished, wake) = std::sync::mpsc::channel::<()>();
    let what = what.to_owned();
    let watchdog = std::thread::spawn(move || {
        // Woken at once when the call returns; else every `limit`, the
        // cookies this call made are released.
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wake.recv_timeout(limit) {
            let stuck: Vec<i32> = cookie_semaphores().difference(&before).copied().collect();
            if stuck.iter().filter(|&&s| release(s)).count() > 0 {
                crate::warnings::record(format!(
                    "udev did not confirm {what} within {:.1} s; cairn went on without it \
                         and made the device nodes itself (is udev stuck, or are \
                         device-mapper's udev rules missing?)",
                    limit.as_secs_f64()
                ));
            }
        }
    });
    let result = op();
    let _ = finished.send(());
    let _ = watchdog.join();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_in_seconds() {
        assert_eq!(parse_timeout(None), Ok(DEFAULT_TIMEOUT));
        assert_eq!(parse_timeout(Some("1")), Ok(Duration::from_secs(1)));
        assert_eq!(
            parse_timeout(Some(" 2.5 ")),
            Ok(Duration::from_millis(2500))
        );
        assert_eq!(parse_timeout(Some("3600")), Ok(MAX_TIMEOUT));
    }

    /// Each bad value is refused with a message saying what was wrong and
    /// that the default was used; none panics (from_secs_f64 would on
    /// "1e30") and none becomes a zero wait.
    #[test]
    fn bad_timeouts_fall_back_with_a_reason() {
        for (value, why) in [
            ("", "is not a number"),
            ("abc", "is not a number"),
            ("30s", "is not a number"),
            ("NaN", "is not a number"),
            ("0", "is 0"),
            ("-0", "is 0"),
            ("0.0000000001", "is 0"),
            ("-1", "is negative"),
            ("-inf", "is negative"),
            ("3600.5", "is more than an hour"),
            ("1e30", "is more than an hour"),
            ("inf", "is more than an hour"),
        ] {
            let e = parse_timeout(Some(value)).expect_err(value);
            assert!(e.contains(why), "{value:?}: {e}");
            assert!(e.contains("the default 30 s"), "{value:?}: {e}");
        }
    }
}
