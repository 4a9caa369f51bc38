//! Sizes into extents and extents onto LVs, for the commands that
//! allocate within a metadata [`Change`] (linear create and resize, pool
//! create and growth, cache pools, snapshots): the PVs a request may
//! allocate on, the extent count a size asks for, growing an LV in place,
//! and committing the metadata of before the call again when the kernel
//! step after a commit fails.

use std::path::PathBuf;

use crate::meta::alloc;
use crate::meta::model::{Area, Metadata, SegmentKind, VolumeGroup};
use crate::meta::ops::{Change, Env};
use crate::units::Bytes;

use super::action::{alloc_refused, refused, Result, VolumeError};
use crate::error::ErrorKind;

/// How big: bytes (rounded up to extents), or a share of the free space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Size {
    /// This many bytes, rounded up to whole extents.
    Bytes(Bytes),
    /// This percentage (0 to 100) of the free extents (on the request's
    /// PVs, when it names some), rounded down.
    PercentFree(f64),
    /// This much more than now (extend only).
    More(Bytes),
}

pub(crate) fn extents_for(vg: &VolumeGroup, size: Size, on_pvs: Option<&[usize]>) -> Result<u64> {
    Ok(match size {
        Size::Bytes(b) | Size::More(b) => b.extents_ceil(vg.extent_bytes()).0,
        Size::PercentFree(p) => {
            let free: u64 = alloc::free_runs(vg)
                .map_err(|e| alloc_refused(&vg.name, e))?
                .iter()
                .filter(|r| on_pvs.is_none_or(|pvs| pvs.contains(&r.pv)))
                .map(|r| r.count)
                .sum();
            (free as f64 * p / 100.0).floor() as u64
        }
    })
}

/// The extent count a resize asks for, from `now`: SIZE is absolute,
/// +SIZE and N%FREE come on top.
pub(crate) fn target_extents(
    vg: &VolumeGroup,
    size: Size,
    now: u64,
    on_pvs: Option<&[usize]>,
) -> Result<u64> {
    Ok(match size {
        Size::Bytes(b) => b.extents_ceil(vg.extent_bytes()).0,
        Size::PercentFree(_) | Size::More(_) => now + extents_for(vg, size, on_pvs)?,
    })
}

/// PV paths to indices in the VG.
pub(crate) fn pv_indices(change: &Change, pvs: &[PathBuf]) -> Result<Option<Vec<usize>>> {
    if pvs.is_empty() {
        return Ok(None);
    }
    let devices = change.pv_devices();
    let vg = &change.metadata.vg.name;
    pvs.iter()
        .map(|p| {
            let canon = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            devices
                .iter()
                .position(|d| {
                    d.as_ref().is_some_and(|d| {
                        *d == *p || std::fs::canonicalize(d).is_ok_and(|c| c == canon)
                    })
                })
                .ok_or_else(|| {
                    refused(
                        vg,
                        ErrorKind::NotFound,
                        format!("has no PV on {}", p.display()),
                    )
                })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Commits `to` (the metadata of before the call) again after a kernel
/// step failed, with the next seqno; unless the kernel kept part of the
/// change (a grown thin pool cannot shrink back): then the new metadata
/// stays, as it describes what the kernel now maps.
pub(crate) fn restore(
    env: &Env,
    change: &mut Change,
    to: Metadata,
    failed: VolumeError,
) -> VolumeError {
    if matches!(
        failed,
        VolumeError::Engine(super::engine::EngineError::PartlyApplied { .. })
    ) {
        return failed;
    }
    let seqno = change.committed().vg.seqno + 1;
    change.metadata = to;
    change.metadata.vg.seqno = seqno;
    match change.commit_and_continue(env) {
        Ok(()) => failed,
        Err(e) => refused(
            &change.metadata.vg.name,
            ErrorKind::Unrecovered,
            format!("{failed}; restoring the metadata failed too: {e}"),
        ),
    }
}

/// The (PV, next extent) where a linear LV ends, for growing in place.
fn end_of(vg: &VolumeGroup, name: &str) -> Option<(usize, u64)> {
    let seg = vg.lv(name)?.segments.last()?;
    match &seg.kind {
        SegmentKind::Striped { stripes, .. } if stripes.len() == 1 => match &stripes[0] {
            Area::Pv { pv, pe } => Some((*pv, pe + seg.extent_count)),
            Area::Lv { .. } => None,
        },
        _ => None,
    }
}

/// Gives the linear LV `name` `extents` more, in place when the extents
/// after its end are free; extents that continue its last segment on the
/// same PV join that segment (lvm2 merges adjacent segments).
pub(crate) fn grow_lv(
    vg: &mut VolumeGroup,
    name: &str,
    extents: u64,
    on: Option<&[usize]>,
) -> Result<()> {
    let after = end_of(vg, name);
    let runs = alloc::allocate(vg, extents, on, after).map_err(|e| alloc_refused(&vg.name, e))?;
    let vg_name = vg.name.clone();
    let lv = vg.lv_mut(name).ok_or_else(|| {
        refused(
            &vg_name,
            ErrorKind::NotFound,
            format!("has no LV named {name}"),
        )
    })?;
    for seg in alloc::linear_segments(&runs) {
        let joins = match (lv.segments.last(), &seg.kind) {
            (Some(last), SegmentKind::Striped { stripes, .. }) => {
                match (&last.kind, &stripes[..]) {
                    (SegmentKind::Striped { stripes: ls, .. }, [Area::Pv { pv, pe }])
                        if ls.len() == 1 =>
                    {
                        matches!(&ls[0], Area::Pv { pv: lp, pe: lpe } if lp == pv && lpe + last.extent_count == *pe)
                    }
                    _ => false,
                }
            }
            _ => false,
        };
        if joins {
            lv.segments.last_mut().expect("joins").extent_count += seg.extent_count;
        } else {
            let mut seg = seg;
            seg.start_extent = lv.extent_count();
            lv.segments.push(seg);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvm::fixture::every_kind;

    const MIB4: u64 = 4 << 20;

    #[test]
    fn sizes_in_extents_from_now() {
        let vg = every_kind();
        let t = |size, on: Option<&[usize]>| target_extents(&vg, size, 16, on).unwrap();
        // SIZE is absolute, rounded up to whole extents.
        assert_eq!(t(Size::Bytes(Bytes(100 << 20)), None), 25);
        assert_eq!(t(Size::Bytes(Bytes(MIB4)), None), 1);
        // +SIZE comes on top of the 16 extents the LV has.
        assert_eq!(t(Size::More(Bytes(1)), None), 17);
        assert_eq!(t(Size::More(Bytes(2 * MIB4)), None), 18);
        // N%FREE of the free extents (pv0 143, pv1 36), rounded down, on top.
        assert_eq!(t(Size::PercentFree(100.0), None), 16 + 179);
        assert_eq!(t(Size::PercentFree(50.0), None), 16 + 89);
        assert_eq!(t(Size::PercentFree(100.0), Some(&[1])), 16 + 36);
        // A new LV's count is the size alone.
        let e = extents_for(&vg, Size::PercentFree(100.0), Some(&[0])).unwrap();
        assert_eq!(e, 143);
    }

    #[test]
    fn growing_in_place_joins_the_last_segment() {
        let mut vg = every_kind();
        // snap2 ends at pv0 extent 112, where the free space starts.
        grow_lv(&mut vg, "snap2", 3, None).unwrap();
        let lv = vg.lv("snap2").unwrap();
        assert_eq!((lv.segments.len(), lv.extent_count()), (1, 5));
    }

    #[test]
    fn growing_where_the_next_extent_is_used_adds_a_segment() {
        let mut vg = every_kind();
        // `two` follows lin on pv0: the new extents go elsewhere.
        grow_lv(&mut vg, "lin", 2, None).unwrap();
        let lv = vg.lv("lin").unwrap();
        assert_eq!((lv.segments.len(), lv.extent_count()), (2, 18));
        assert_eq!(lv.segments[1].start_extent, 16);
        let SegmentKind::Striped { stripes, .. } = &lv.segments[1].kind else {
            panic!("a linear segment")
        };
        assert!(matches!(stripes[..], [Area::Pv { .. }]));
        // The new extents came out of the free ones (179 before).
        let free: u64 = alloc::free_runs(&vg).unwrap().iter().map(|r| r.count).sum();
        assert_eq!(free, 177);
    }

    #[test]
    fn growing_past_the_free_space_or_a_missing_lv_is_refused() {
        let mut vg = every_kind();
        let e = grow_lv(&mut vg, "lin", 180, None).unwrap_err().to_string();
        assert!(e.contains("volume group vg"), "{e}");
        assert_eq!(vg.lv("lin").unwrap().extent_count(), 16, "unchanged");
        let e = grow_lv(&mut vg, "nosuch", 1, None).unwrap_err().to_string();
        assert!(e.contains("volume group vg has no LV named nosuch"), "{e}");
    }

    #[test]
    fn a_refused_growth_says_what_kind_it_is() {
        let mut vg = every_kind();
        let kind = |e: VolumeError| e.kind();
        let short = grow_lv(&mut vg, "lin", 180, None).unwrap_err();
        assert_eq!(kind(short), ErrorKind::NoSpace);
        let missing = grow_lv(&mut vg, "nosuch", 1, None).unwrap_err();
        assert_eq!(kind(missing), ErrorKind::NotFound);
    }
}
