//! `lvremove VG/LV` by the LV's kind: a thin LV (or thin snapshot) leaves
//! its pool through a thin transaction, a thick snapshot drops its COW
//! store, anything else is removed as a plain linear LV (which refuses the
//! kinds it cannot remove). `cairn snapshot remove` takes only snapshots.

use crate::error::{ErrorKind, Refusal};
use crate::meta::lock::Mode;
use crate::meta::model::{SegmentKind, VolumeGroup};
use crate::meta::ops::Env;

use super::action::{Action, Run, VolumeError};
use super::engine::Dev;
use super::thin::ThinError;
use super::{linear, snapshot, thin};

#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error(transparent)]
    Thin(#[from] ThinError),
    /// `snapshot remove` named an LV that is no snapshot.
    #[error("{vg}/{name} is a {kind} LV, not a snapshot: remove it with cairn lv remove")]
    NotASnapshot {
        vg: String,
        name: String,
        kind: String,
    },
}

/// Which LVs the caller takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Any LV (`lv remove`).
    Any,
    /// A thin or thick snapshot (`snapshot remove`): other LVs are refused
    /// before anything changes.
    Snapshot,
}

/// Who removes an LV of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Remover {
    Thin,
    Snapshot,
    Linear,
}

/// The remover for an LV of `kind` (as [`lv_kind`] names it), or the
/// refusal when the caller expects a snapshot and this is none. A thin LV
/// is a snapshot when its metadata names an origin (lvm2's `origin` or
/// `external_origin`); one whose origin was removed since no longer does,
/// and is refused too (on the safe side: `lv remove` takes it).
fn remover(
    vg: &str,
    name: &str,
    (kind, snapshot): (&str, bool),
    expect: Expect,
) -> Result<Remover, RemoveError> {
    match (kind, expect) {
        ("thin", Expect::Any) => Ok(Remover::Thin),
        ("thin", Expect::Snapshot) if snapshot => Ok(Remover::Thin),
        ("snapshot", _) => Ok(Remover::Snapshot),
        (_, Expect::Any) => Ok(Remover::Linear),
        (other, Expect::Snapshot) => Err(RemoveError::NotASnapshot {
            vg: vg.to_owned(),
            name: name.to_owned(),
            kind: other.to_owned(),
        }),
    }
}

/// Whether LV `lv` is a thin snapshot: a thin LV with an origin.
fn thin_snapshot(vg: &VolumeGroup, lv: &str) -> bool {
    vg.lv(lv)
        .and_then(|lv| lv.segments.first())
        .is_some_and(|s| {
            matches!(&s.kind, SegmentKind::Thin { origin, external_origin, .. }
                if origin.is_some() || external_origin.is_some())
        })
}

/// [`lv_type`] in a VG at hand.
fn lv_kind(vg: &VolumeGroup, lv: &str) -> Result<String, VolumeError> {
    let lv = vg.lv(lv).ok_or_else(|| VolumeError::Refused {
        vg: vg.name.clone(),
        refusal: Refusal::new(ErrorKind::NotFound, format!("has no LV named {lv}")),
    })?;
    if vg.snapshot_of_cow(&lv.name).is_some() {
        return Ok("snapshot".to_owned());
    }
    Ok(lv
        .segments
        .first()
        .map(|s| s.kind.type_name().to_owned())
        .unwrap_or_default())
}

/// The segment type of LV `lv`'s first segment ("striped", "thin", ...; a
/// thick snapshot's COW LV is "snapshot"), as the disks have it, read under
/// a shared lock: for commands that differ by kind.
pub fn lv_type(env: &Env, vg: &str, lv: &str) -> Result<String, VolumeError> {
    let _lock = env.locks.vg(vg, Mode::Shared)?;
    let scan = env.scan(&[])?;
    let view = scan.vg(vg)?;
    lv_kind(&view.metadata.vg, lv)
}

/// [`lv_type`], and whether the LV is a thin snapshot.
fn kind_and_snapshot(env: &Env, vg: &str, lv: &str) -> Result<(String, bool), VolumeError> {
    let _lock = env.locks.vg(vg, Mode::Shared)?;
    let scan = env.scan(&[])?;
    let view = scan.vg(vg)?;
    let meta = &view.metadata.vg;
    Ok((lv_kind(meta, lv)?, thin_snapshot(meta, lv)))
}

/// Removes LV `vg`/`name` the way its kind is removed (see the module
/// comment); with [`Expect::Snapshot`], only if it is a snapshot.
pub fn remove(
    env: &Env,
    dev: &Dev,
    vg: &str,
    name: &str,
    run: Run,
    expect: Expect,
) -> Result<Vec<Action>, RemoveError> {
    let (kind, snapshot) = kind_and_snapshot(env, vg, name)?;
    Ok(match remover(vg, name, (&kind, snapshot), expect)? {
        Remover::Thin => thin::remove(env, dev, vg, name, run)?,
        Remover::Snapshot => snapshot::remove(env, dev, vg, name, run)?,
        Remover::Linear => linear::remove(env, dev, vg, name, run)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_as_the_metadata_has_them() {
        let vg = crate::lvm::fixture::every_kind();
        let kind = |lv: &str| lv_kind(&vg, lv).unwrap();
        assert_eq!(kind("lin"), "striped");
        assert_eq!(kind("thin"), "thin");
        assert_eq!(kind("thinsnap"), "thin");
        assert_eq!(kind("pool"), "thin-pool");
        assert_eq!(kind("cached"), "cache");
        // A thick snapshot is named by its COW LV, whose own segment is striped.
        assert_eq!(kind("snap"), "snapshot");
        assert_eq!(kind("origin"), "striped");
        let missing = lv_kind(&vg, "nosuch").unwrap_err().to_string();
        assert!(missing.ends_with("has no LV named nosuch"), "{missing}");
    }

    #[test]
    fn each_kind_goes_to_its_remover() {
        for expect in [Expect::Any, Expect::Snapshot] {
            assert_eq!(
                remover("vg", "t", ("thin", true), expect).unwrap(),
                Remover::Thin
            );
            assert_eq!(
                remover("vg", "s", ("snapshot", false), expect).unwrap(),
                Remover::Snapshot
            );
        }
        assert_eq!(
            remover("vg", "t", ("thin", false), Expect::Any).unwrap(),
            Remover::Thin
        );
        for kind in ["striped", "thin-pool", "cache", ""] {
            assert_eq!(
                remover("vg", "x", (kind, false), Expect::Any).unwrap(),
                Remover::Linear
            );
        }
    }

    #[test]
    fn snapshot_remove_refuses_other_kinds_in_the_cli_s_words() {
        let e = remover("vg0", "data", ("striped", false), Expect::Snapshot).unwrap_err();
        assert!(matches!(e, RemoveError::NotASnapshot { .. }));
        assert_eq!(
            e.to_string(),
            "vg0/data is a striped LV, not a snapshot: remove it with cairn lv remove"
        );
        let e = remover("vg0", "pool", ("thin-pool", false), Expect::Snapshot).unwrap_err();
        assert_eq!(
            e.to_string(),
            "vg0/pool is a thin-pool LV, not a snapshot: remove it with cairn lv remove"
        );
        // A container's volume: thin, but no snapshot.
        let e = remover("vg0", "web", ("thin", false), Expect::Snapshot).unwrap_err();
        assert_eq!(
            e.to_string(),
            "vg0/web is a thin LV, not a snapshot: remove it with cairn lv remove"
        );
    }

    #[test]
    fn a_thin_lv_is_a_snapshot_when_it_names_an_origin() {
        let vg = crate::lvm::fixture::every_kind();
        assert!(thin_snapshot(&vg, "thinsnap"));
        assert!(!thin_snapshot(&vg, "thin"));
        assert!(!thin_snapshot(&vg, "lin"));
    }
}
