//! A bound on udev's answer. When udev runs, device-mapper ioctls that
//! make uevents (resume, remove, rename) carry a cookie: a SysV semaphore
//! udev's rules release (`dmsetup udevcomplete`) once they have made the
//! /dev entries. The devicemapper crate waits for that without a timeout,
//! so a udev that is stuck, or runs without device-mapper's rules
//! installed (appliances, containers), would hang cairn forever.
//!
//! cairn waits at most [`timeout`] instead: a watchdog thread releases the
//! semaphores this process created during the ioctl (as `dmsetup
//! udevcomplete_all` would) and the call goes on with a warning; the device
//! nodes are then made by cairn itself (engine's node steps), as without
//! udev. Without udev (the VM lab, early boot) there is no cookie and no
//! thread.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

/// libdm's cookie magic: the upper 16 bits of every cookie semaphore key.
const COOKIE_MAGIC: u32 = 0x0D4D;
/// Where the devicemapper crate (and libdm) look for a running udev.
const UDEV_CONTROL: &str = "/run/udev/control";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether udev runs, as the devicemapper crate decides it.
pub fn running() -> bool {
    std::path::Path::new(UDEV_CONTROL).exists()
}

/// How long cairn waits for udev: `CAIRN_UDEV_TIMEOUT` seconds (fractions
/// allowed), else 30 s.
pub fn timeout() -> Duration {
    std::env::var("CAIRN_UDEV_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// Warnings of released waits, for the caller to print.
static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Takes the warnings so far.
pub fn take_warnings() -> Vec<String> {
    std::mem::take(&mut *WARNINGS.lock().unwrap_or_else(|e| e.into_inner()))
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
                WARNINGS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!(
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
