//! Thin snapshots of several thin LVs of one pool in one pool transaction:
//! one commit A with every new LV and its `create_snap` message queued
//! (the pool's transaction id moves by one for the whole batch, as lvm2's
//! queue does), every active origin suspended together, the messages, one
//! `set_transaction_id`, the resumes, commit B. The instant the origins
//! are suspended is the same for all of them: a snapshot of several
//! containers is consistent across them.
//!
//! The caller's [`Window`] hook runs around the suspends (to freeze what
//! writes to the origins for just that instant). A batch of one is the
//! `cairn snapshot create` of a thin LV, with tags and a window.

use crate::dm::{Kernel, Suspend};
use crate::error::ErrorKind;
use crate::meta::model::ThinMessage;
use crate::meta::ops::{self, Env};

use super::action::{Action, Run};
use super::engine::Dev;
use super::names;
use super::thin::{
    device_ids, idle_pool_tid, queue_message, refused, thin_lv, thin_segment, transact, Result, Tx,
    WindowHook, MAX_DEVICE_ID,
};

/// One snapshot of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewThinSnapshot {
    /// The thin LV it is a snapshot of.
    pub origin: String,
    /// The new LV's name.
    pub name: String,
    /// Tags for the new LV (lvm2's `tags`), e.g. what made it and for whom.
    pub tags: Vec<String>,
    /// Activate it once made (a thin snapshot is made with activation
    /// skip, as lvm2 does, and stays inactive otherwise).
    pub activate: bool,
    /// The origin's file system is frozen already (FIFREEZE by the
    /// caller, inside its window): its suspend skips the freeze the kernel
    /// would otherwise do.
    pub frozen: bool,
}

/// Makes every snapshot of `snaps` in VG `vg` in one transaction of their
/// pool (all origins must be thin LVs of one pool); `window` is called
/// around the suspends when applied. Refused, changing nothing, for a
/// name taken (in the VG or twice in the batch), an origin that is not a
/// thin LV, origins in two pools, a bad tag, an empty batch.
pub fn create(
    kernel: Kernel,
    env: &Env,
    dev: &Dev,
    vg: &str,
    snaps: &[NewThinSnapshot],
    window: &mut WindowHook<'_>,
    run: Run,
) -> Result<Vec<Action>> {
    if snaps.is_empty() {
        return Err(refused(
            ErrorKind::InvalidInput,
            "no snapshot to make: name at least one origin",
        ));
    }
    for s in snaps {
        ops::check_lv_name(&s.name)?;
        for t in &s.tags {
            ops::check_tag(t)?;
        }
    }
    for (i, s) in snaps.iter().enumerate() {
        if snaps[..i].iter().any(|o| o.name == s.name) {
            return Err(refused(
                ErrorKind::InvalidInput,
                format!("{vg}/{} is named twice in one batch", s.name),
            ));
        }
    }
    let mut change = ops::begin_change(env, vg, &[])?;
    let meta = &change.metadata.vg;
    let mut pool = None;
    let mut origins = Vec::new();
    for s in snaps {
        if meta.lv(&s.name).is_some() {
            return Err(refused(
                ErrorKind::AlreadyExists,
                format!(
                    "VG {vg} already has an LV named {}: choose another name",
                    s.name
                ),
            ));
        }
        let (p, origin_id) = thin_lv(meta, &s.origin, "thin snapshots are made of thin LVs")?;
        match &pool {
            None => pool = Some(p),
            Some(first) if *first != p => {
                return Err(refused(
                    ErrorKind::Unsupported,
                    format!(
                        "{vg}/{} is in pool {p}, {vg}/{} in {first}: one transaction takes one \
                         pool's LVs (snapshot each pool's apart)",
                        s.origin, snaps[0].origin
                    ),
                ))
            }
            Some(_) => {}
        }
        let extents = meta.lv(&s.origin).map_or(0, |o| o.extent_count());
        origins.push((origin_id, extents));
    }
    let pool = pool.expect("a batch of at least one");
    let tid = idle_pool_tid(meta, &pool)?;
    let first_id = device_ids(meta, &pool)
        .iter()
        .map(|(_, id)| *id)
        .max()
        .unwrap_or(0)
        + 1;
    let last_id = first_id + snaps.len() as u64 - 1;
    if last_id > MAX_DEVICE_ID {
        return Err(refused(
            ErrorKind::NoSpace,
            format!(
                "thin pool {vg}/{pool} has device ids only up to {MAX_DEVICE_ID}: {} more do not fit",
                snaps.len()
            ),
        ));
    }

    let mut tx = Tx {
        what: String::new(),
        messages: Vec::new(),
        undo: Vec::new(),
        suspend: Vec::new(),
        activate: Vec::new(),
        deactivate: None,
        window,
    };
    let mut what = Vec::new();
    for (i, (s, (origin_id, extents))) in snaps.iter().zip(origins).enumerate() {
        let device_id = first_id + i as u64;
        let segment = thin_segment(&pool, extents, tid, device_id, Some(s.origin.clone()));
        let mut lv = ops::new_lv(&s.name, vec![segment])?;
        lv.flags.push("ACTIVATION_SKIP".to_owned());
        lv.tags = s.tags.clone();
        let vg_meta = &mut change.metadata.vg;
        vg_meta.lvs.push(lv);
        queue_message(vg_meta, &pool, tid, ThinMessage::Create(s.name.clone()));
        tx.messages
            .push(format!("create_snap {device_id} {origin_id}"));
        tx.undo.push(format!("delete {device_id}"));
        let how = if s.frozen {
            Suspend::FlushFrozen
        } else {
            Suspend::Flush
        };
        let origin_dm = names::dm_name(vg, &s.origin, None);
        if !tx.suspend.iter().any(|(o, _)| *o == origin_dm) {
            tx.suspend.push((origin_dm, how));
        }
        if s.activate {
            tx.activate.push(s.name.clone());
        }
        what.push(format!(
            "{} of {} (device id {device_id})",
            s.name, s.origin
        ));
    }
    tx.what = format!(
        "thin snapshot{} {}",
        if snaps.len() == 1 { "" } else { "s" },
        what.join(", ")
    );
    transact(kernel, env, dev, &mut change, &pool, tx, run)
}

#[cfg(test)]
#[path = "thin_snapshots_tests.rs"]
mod tests;
