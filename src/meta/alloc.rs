//! Physical extent allocation: which free extents of which PVs a new or
//! growing LV gets. Contiguous first (one run if any PV has one), then
//! normal (the largest free runs first, so an LV gets as few pieces as
//! possible); an LV that grows continues right after its last extent when
//! that space is free. "Only on these PVs" is honoured throughout (the seed
//! puts the cache pool on the SSD PV only).

use super::model::{Area, SegmentKind, VolumeGroup};
use crate::error::{ErrorKind, Refusal};

/// A run of free (or allocated) extents on one PV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExtentRun {
    /// Index into `VolumeGroup::pvs`.
    pub pv: usize,
    /// First physical extent (PE) on that PV.
    pub start: u64,
    /// Length in extents.
    pub count: u64,
}

/// Why extents could not be allocated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// Not enough free extents on the allowed PVs.
    #[error(
        "volume group {vg} has {free} free extents on {where_}, {needed} are needed: \
         extend the volume group (cairn vg extend) or allow other PVs"
    )]
    NoSpace {
        /// The VG's name.
        vg: String,
        /// Free extents where allocation may take them.
        free: u64,
        /// Extents needed.
        needed: u64,
        /// Which PVs were allowed, described.
        where_: String,
    },
    /// A segment names a PV index the VG does not have.
    #[error("{vg}: PV index {pv} does not exist")]
    NoSuchPv {
        /// The VG's name.
        vg: String,
        /// Index into the VG's PVs.
        pv: usize,
    },
    /// A segment uses extents past the end of its PV.
    #[error("{vg}: LV {lv} segment {segment} uses extents {start}..{end} of PV {pv}, which has {pe_count}")]
    OutOfRange {
        /// The VG's name.
        vg: String,
        /// The LV's name.
        lv: String,
        /// The segment's number, 1-based as in `segment1`.
        segment: usize,
        /// Index into the VG's PVs.
        pv: usize,
        /// First extent (PE) of the run.
        start: u64,
        /// One past its last extent.
        end: u64,
        /// Extents on the PV.
        pe_count: u64,
    },
    /// Two LVs claim the same extents.
    #[error("{vg}: extents {start}..{end} of PV {pv} are used by both {a} and {b}")]
    Overlap {
        /// The VG's name.
        vg: String,
        /// Index into the VG's PVs.
        pv: usize,
        /// First extent (PE) of the run.
        start: u64,
        /// One past its last extent.
        end: u64,
        /// One LV using them.
        a: String,
        /// The other.
        b: String,
    },
    /// An LV has a segment type cairn does not read, so its extents are unknown.
    #[error(
        "{vg}: LV {lv} has a {segtype} segment, which cairn does not interpret; \
         allocating could hand out its extents, so cairn will not allocate in this VG"
    )]
    Unknown {
        /// The VG's name.
        vg: String,
        /// The LV's name.
        lv: String,
        /// The segment type as written.
        segtype: String,
    },
}

/// Allocation failures reach callers only as the refusal of the change
/// that needed the extents: the kind says whether more space would help
/// (`NoSpace`) or the VG's metadata itself stands in the way.
impl From<AllocError> for Refusal {
    fn from(e: AllocError) -> Refusal {
        let kind = match e {
            AllocError::NoSpace { .. } => ErrorKind::NoSpace,
            AllocError::NoSuchPv { .. }
            | AllocError::OutOfRange { .. }
            | AllocError::Overlap { .. } => ErrorKind::Inconsistent,
            AllocError::Unknown { .. } => ErrorKind::Unsupported,
        };
        Refusal::new(kind, e.to_string())
    }
}

/// The segments of a linear LV laid over `runs`, one per run, in order.
pub fn linear_segments(runs: &[ExtentRun]) -> Vec<super::model::Segment> {
    let mut start = 0;
    runs.iter()
        .map(|r| {
            let seg = super::model::Segment {
                start_extent: start,
                extent_count: r.count,
                reshape_count: None,
                type_flags: vec![],
                tags: vec![],
                kind: SegmentKind::Striped {
                    stripe_size: None,
                    stripes: vec![Area::Pv {
                        pv: r.pv,
                        pe: r.start,
                    }],
                },
                extra: super::text::Section::default(),
            };
            start += r.count;
            seg
        })
        .collect()
}

/// Every allocated run, with the LV that owns it; checked for overlaps and bounds.
pub fn used_runs(vg: &VolumeGroup) -> Result<Vec<(ExtentRun, &str)>, AllocError> {
    let mut used = Vec::new();
    for lv in &vg.lvs {
        for (i, seg) in lv.segments.iter().enumerate() {
            match &seg.kind {
                SegmentKind::Striped { stripes, .. } => {
                    // Each stripe holds an equal share of the segment's extents.
                    let per_stripe = seg.extent_count / stripes.len().max(1) as u64;
                    for area in stripes {
                        if let Area::Pv { pv, pe } = area {
                            let pe_count = vg
                                .pvs
                                .get(*pv)
                                .ok_or(AllocError::NoSuchPv {
                                    vg: vg.name.clone(),
                                    pv: *pv,
                                })?
                                .pe_count;
                            if pe + per_stripe > pe_count {
                                return Err(AllocError::OutOfRange {
                                    vg: vg.name.clone(),
                                    lv: lv.name.clone(),
                                    segment: i + 1,
                                    pv: *pv,
                                    start: *pe,
                                    end: pe + per_stripe,
                                    pe_count,
                                });
                            }
                            used.push((
                                ExtentRun {
                                    pv: *pv,
                                    start: *pe,
                                    count: per_stripe,
                                },
                                lv.name.as_str(),
                            ));
                        }
                    }
                }
                SegmentKind::Other { type_name } => {
                    return Err(AllocError::Unknown {
                        vg: vg.name.clone(),
                        lv: lv.name.clone(),
                        segtype: type_name.clone(),
                    })
                }
                _ => {}
            }
        }
    }
    used.sort_by_key(|(r, _)| (r.pv, r.start));
    for pair in used.windows(2) {
        let ((a, a_lv), (b, b_lv)) = (&pair[0], &pair[1]);
        if a.pv == b.pv && a.start + a.count > b.start && a.count > 0 && b.count > 0 {
            return Err(AllocError::Overlap {
                vg: vg.name.clone(),
                pv: a.pv,
                start: b.start,
                end: (a.start + a.count).min(b.start + b.count),
                a: a_lv.to_string(),
                b: b_lv.to_string(),
            });
        }
    }
    Ok(used)
}

/// Free runs of every PV that is allocatable, in PV then extent order.
pub fn free_runs(vg: &VolumeGroup) -> Result<Vec<ExtentRun>, AllocError> {
    let used = used_runs(vg)?;
    let mut free = Vec::new();
    for (pv_index, pv) in vg.pvs.iter().enumerate() {
        if !pv.status.contains(super::model::PvStatus::ALLOCATABLE) {
            continue;
        }
        let mut next = 0;
        for (run, _) in used.iter().filter(|(r, _)| r.pv == pv_index) {
            if run.start > next {
                free.push(ExtentRun {
                    pv: pv_index,
                    start: next,
                    count: run.start - next,
                });
            }
            next = next.max(run.start + run.count);
        }
        if next < pv.pe_count {
            free.push(ExtentRun {
                pv: pv_index,
                start: next,
                count: pv.pe_count - next,
            });
        }
    }
    Ok(free)
}

/// Chooses `extents` free extents, only on `on_pvs` when given. `after`
/// is where the LV being extended ends (PV, first extent past its end).
pub fn allocate(
    vg: &VolumeGroup,
    extents: u64,
    on_pvs: Option<&[usize]>,
    after: Option<(usize, u64)>,
) -> Result<Vec<ExtentRun>, AllocError> {
    if let Some(&pv) = on_pvs.and_then(|pvs| pvs.iter().find(|&&p| p >= vg.pvs.len())) {
        return Err(AllocError::NoSuchPv {
            vg: vg.name.clone(),
            pv,
        });
    }
    let mut free: Vec<ExtentRun> = free_runs(vg)?
        .into_iter()
        .filter(|r| on_pvs.is_none_or(|pvs| pvs.contains(&r.pv)))
        .collect();
    let available: u64 = free.iter().map(|r| r.count).sum();
    if available < extents {
        let where_ = match on_pvs {
            None => "its PVs".to_owned(),
            Some(pvs) => {
                let names: Vec<String> = pvs
                    .iter()
                    .map(|&p| vg.pvs[p].device.clone().unwrap_or_else(|| format!("pv{p}")))
                    .collect();
                names.join(", ")
            }
        };
        return Err(AllocError::NoSpace {
            vg: vg.name.clone(),
            free: available,
            needed: extents,
            where_,
        });
    }
    let mut chosen = Vec::new();
    let mut needed = extents;
    // Growing: continue in place when the next extents are free.
    if let Some((pv, next)) = after {
        if let Some(i) = free.iter().position(|r| r.pv == pv && r.start == next) {
            let take = free[i].count.min(needed);
            chosen.push(ExtentRun {
                pv,
                start: next,
                count: take,
            });
            needed -= take;
            free[i].start += take;
            free[i].count -= take;
        }
    }
    if needed == 0 {
        return Ok(chosen);
    }
    // Contiguous: the first run (PV order) that holds all of it.
    if let Some(run) = free.iter().find(|r| r.count >= needed) {
        chosen.push(ExtentRun {
            pv: run.pv,
            start: run.start,
            count: needed,
        });
        return Ok(chosen);
    }
    // Normal: largest runs first, ties in PV order.
    free.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.pv.cmp(&b.pv))
            .then(a.start.cmp(&b.start))
    });
    for run in free {
        if needed == 0 {
            break;
        }
        let take = run.count.min(needed);
        if take > 0 {
            chosen.push(ExtentRun {
                pv: run.pv,
                start: run.start,
                count: take,
            });
            needed -= take;
        }
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::model::{LogicalVolume, PhysicalVolume, PvStatus};
    use crate::meta::text::Section;
    use proptest::prelude::*;

    fn pv(pe_count: u64) -> PhysicalVolume {
        PhysicalVolume {
            id: "x".into(),
            device: None,
            device_id_type: None,
            device_id: None,
            status: PvStatus::ALLOCATABLE,
            flags: vec![],
            tags: vec![],
            dev_size: None,
            pe_start: 2048,
            pe_count,
            ba_start: None,
            ba_size: None,
            extra: Section::default(),
        }
    }

    fn vg(pes: &[u64]) -> VolumeGroup {
        VolumeGroup {
            name: "vg".into(),
            id: "x".into(),
            seqno: 1,
            format: None,
            status: Default::default(),
            flags: vec![],
            tags: vec![],
            system_id: None,
            lock_type: None,
            lock_args: None,
            extent_size: 8192,
            max_lv: 0,
            max_pv: 0,
            allocation_policy: None,
            profile: None,
            metadata_copies: 0,
            pvs: pes.iter().map(|&n| pv(n)).collect(),
            lvs: vec![],
            extra: Section::default(),
        }
    }

    /// Adds an LV made of the given runs (one linear segment each).
    fn add_lv(vg: &mut VolumeGroup, name: &str, runs: &[ExtentRun]) {
        vg.lvs
            .push(LogicalVolume::new(name, "x".into(), linear_segments(runs)));
    }

    #[test]
    fn first_lv_starts_at_extent_zero_of_the_first_pv() {
        let v = vg(&[100, 100]);
        assert_eq!(
            allocate(&v, 10, None, None).unwrap(),
            [ExtentRun {
                pv: 0,
                start: 0,
                count: 10
            }]
        );
    }

    #[test]
    fn only_on_named_pvs() {
        let v = vg(&[100, 50]);
        assert_eq!(
            allocate(&v, 10, Some(&[1]), None).unwrap(),
            [ExtentRun {
                pv: 1,
                start: 0,
                count: 10
            }]
        );
        let e = allocate(&v, 51, Some(&[1]), None).unwrap_err();
        assert!(
            matches!(
                e,
                AllocError::NoSpace {
                    free: 50,
                    needed: 51,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("pv1"));
        assert!(matches!(
            allocate(&v, 1, Some(&[7]), None),
            Err(AllocError::NoSuchPv { pv: 7, .. })
        ));
    }

    #[test]
    fn contiguous_before_split() {
        let mut v = vg(&[100, 100]);
        add_lv(
            &mut v,
            "a",
            &[ExtentRun {
                pv: 0,
                start: 0,
                count: 60,
            }],
        );
        // pv0 has 40 free, pv1 100: 70 fit contiguously on pv1 only.
        assert_eq!(
            allocate(&v, 70, None, None).unwrap(),
            [ExtentRun {
                pv: 1,
                start: 0,
                count: 70
            }]
        );
        // 130 do not fit anywhere in one piece: largest first.
        assert_eq!(
            allocate(&v, 130, None, None).unwrap(),
            [
                ExtentRun {
                    pv: 1,
                    start: 0,
                    count: 100
                },
                ExtentRun {
                    pv: 0,
                    start: 60,
                    count: 30
                }
            ]
        );
        assert!(matches!(
            allocate(&v, 141, None, None),
            Err(AllocError::NoSpace { free: 140, .. })
        ));
    }

    #[test]
    fn growing_continues_in_place() {
        let mut v = vg(&[100]);
        add_lv(
            &mut v,
            "a",
            &[ExtentRun {
                pv: 0,
                start: 0,
                count: 10,
            }],
        );
        add_lv(
            &mut v,
            "b",
            &[ExtentRun {
                pv: 0,
                start: 20,
                count: 10,
            }],
        );
        assert_eq!(
            allocate(&v, 5, None, Some((0, 10))).unwrap(),
            [ExtentRun {
                pv: 0,
                start: 10,
                count: 5
            }]
        );
        assert_eq!(
            allocate(&v, 15, None, Some((0, 10))).unwrap(),
            [
                ExtentRun {
                    pv: 0,
                    start: 10,
                    count: 10
                },
                ExtentRun {
                    pv: 0,
                    start: 30,
                    count: 5
                }
            ]
        );
    }

    #[test]
    fn broken_maps_are_reported() {
        let mut v = vg(&[100]);
        add_lv(
            &mut v,
            "a",
            &[ExtentRun {
                pv: 0,
                start: 0,
                count: 10,
            }],
        );
        add_lv(
            &mut v,
            "b",
            &[ExtentRun {
                pv: 0,
                start: 5,
                count: 10,
            }],
        );
        assert!(matches!(
            free_runs(&v),
            Err(AllocError::Overlap {
                start: 5,
                end: 10,
                ..
            })
        ));
        let mut v = vg(&[10]);
        add_lv(
            &mut v,
            "a",
            &[ExtentRun {
                pv: 0,
                start: 5,
                count: 10,
            }],
        );
        assert!(matches!(free_runs(&v), Err(AllocError::OutOfRange { .. })));
        let mut v = vg(&[10]);
        add_lv(
            &mut v,
            "r",
            &[ExtentRun {
                pv: 0,
                start: 0,
                count: 1,
            }],
        );
        v.lvs[0].segments[0].kind = SegmentKind::Other {
            type_name: "raid1".into(),
        };
        assert!(matches!(
            allocate(&v, 1, None, None),
            Err(AllocError::Unknown { .. })
        ));
    }

    #[test]
    fn unallocatable_pvs_are_skipped() {
        let mut v = vg(&[10, 10]);
        v.pvs[0].status = PvStatus::empty();
        assert_eq!(
            allocate(&v, 3, None, None).unwrap(),
            [ExtentRun {
                pv: 1,
                start: 0,
                count: 3
            }]
        );
    }

    proptest! {
        /// Any sequence of allocations hands out exactly what was asked,
        /// inside the PVs, never an extent twice, until space runs out.
        #[test]
        fn allocations_never_overlap(pes in prop::collection::vec(1u64..200, 1..4), asks in prop::collection::vec(1u64..120, 1..25)) {
            let mut v = vg(&pes);
            let total: u64 = pes.iter().sum();
            let mut given = 0;
            for (i, ask) in asks.into_iter().enumerate() {
                match allocate(&v, ask, None, None) {
                    Ok(runs) => {
                        prop_assert_eq!(runs.iter().map(|r| r.count).sum::<u64>(), ask);
                        given += ask;
                        add_lv(&mut v, &format!("lv{i}"), &runs);
                        prop_assert!(used_runs(&v).is_ok());
                    }
                    Err(AllocError::NoSpace { free, .. }) => prop_assert_eq!(free, total - given),
                    Err(e) => prop_assert!(false, "{}", e),
                }
            }
        }
    }
}
