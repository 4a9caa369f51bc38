//! `lvremove VG/LV` by the LV's kind: a thin LV (or thin snapshot) leaves
//! its pool through a thin transaction, a thick snapshot drops its COW
//! store, anything else is removed as a plain linear LV (which refuses the
//! kinds it cannot remove). `cairn snapshot remove` takes only snapshots.

use crate::error::{ErrorKind, Refusal};
use crate::meta::lock::Mode;
use crate::meta::model::VolumeGroup;
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
/// counts as a snapshot: whether it was made as one, its pool does not say.
fn remover(vg: &str, name: &str, kind: &str, expect: Expect) -> Result<Remover, RemoveError> {
    match (kind, expect) {
        ("thin", _) => Ok(Remover::Thin),
        ("snapshot", _) => Ok(Remover::Snapshot),
        (_, Expect::Any) => Ok(Remover::Linear),
        (other, Expect::Snapshot) => Err(RemoveError::NotASnapshot {
            vg: vg.to_owned(),
            name: name.to_owned(),
            kind: other.to_owned(),
        }),
    }
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
    let kind = lv_type(env, vg, name)?;
    Ok(match remover(vg, name, &kind, expect)? {
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
            assert_eq!(remover("vg", "t", "thin", expect).unwrap(), Remover::Thin);
            assert_eq!(
                remover("vg", "s", "snapshot", expect).unwrap(),
                Remover::Snapshot
            );
        }
        for kind in ["striped", "thin-pool", "cache", ""] {
            assert_eq!(
                remover("vg", "x", kind, Expect::Any).unwrap(),
                Remover::Linear
            );
        }
    }

    #[test]
    fn snapshot_remove_refuses_other_kinds_in_the_cli_s_words() {
        let e = remover("vg0", "data", "striped", Expect::Snapshot).unwrap_err();
        assert!(matches!(e, RemoveError::NotASnapshot { .. }));
        assert_eq!(
            e.to_string(),
            "vg0/data is a striped LV, not a snapshot: remove it with cairn lv remove"
        );
        let e = remover("vg0", "pool", "thin-pool", Expect::Snapshot).unwrap_err();
        assert_eq!(
            e.to_string(),
            "vg0/pool is a thin-pool LV, not a snapshot: remove it with cairn lv remove"
        );
    }
}
