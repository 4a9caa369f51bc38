//! VgInfo read from lvm2's own metadata (the vgall fixture: every seed
//! segment type on three PVs), and the rounding rules.

use super::*;

const MIB: u64 = 1 << 20;

/// The committed text of the vgall fixture's metadata area.
fn vgall() -> VgInfo {
    let area: &[u8] = include_bytes!("../../../tests/fixtures/lvm2/vgall-pv-b-mda.bin");
    let u64_at = |o: usize| u64::from_le_bytes(area[o..o + 8].try_into().unwrap());
    let (start, size) = (u64_at(4096 + 24) as usize, u64_at(4096 + 32) as usize);
    let (offset, len) = (u64_at(4096 + 40) as usize, u64_at(4096 + 48) as usize);
    let bytes: Vec<u8> = (0..len - 1)
        .map(|i| {
            // The copy may wrap past the end of the area back to its byte 512.
            let rel = offset + i;
            area[start + if rel >= size { rel - size + 512 } else { rel }]
        })
        .collect();
    let md = crate::meta::model::parse(std::str::from_utf8(&bytes).unwrap()).unwrap();
    VgInfo::of(&md.vg)
}

#[test]
fn a_vg_reads_as_its_size_free_space_and_pvs() {
    let vg = vgall();
    assert_eq!(vg.name, "vgall");
    assert_eq!(vg.extent_bytes, 4 * MIB);
    assert_eq!(vg.pv_count, 3);
    assert_eq!(vg.size_bytes, (127 + 127 + 63) * 4 * MIB);
    // plain 10, striped 8, cached_corig 25, origin 15, the snapshot's COW
    // 3, cache pool data 15 and metadata 2, thin pool data 16 and
    // metadata 2, the spare 2: 98 extents of 317 in use.
    assert_eq!(vg.free_bytes, Ok((317 - 98) * 4 * MIB));
}

#[test]
fn each_segment_type_reads_as_its_kind() {
    let vg = vgall();
    assert_eq!(vg.kind("plain"), Some(&LvKind::Linear));
    assert_eq!(vg.kind("striped"), Some(&LvKind::Linear));
    assert_eq!(
        vg.kind("tp"),
        Some(&LvKind::ThinPool {
            metadata: "tp_tmeta".into(),
            chunk_bytes: 64 * 1024
        })
    );
    assert_eq!(
        vg.kind("thin1"),
        Some(&LvKind::Thin {
            pool: "tp".into(),
            origin: None
        })
    );
    assert_eq!(
        vg.kind("cached"),
        Some(&LvKind::Cache {
            pool: "cdata_cpool".into()
        })
    );
    assert_eq!(
        vg.kind("cdata_cpool"),
        Some(&LvKind::CachePool {
            mode: "writethrough".into(),
            policy: "smq".into()
        })
    );
    assert_eq!(
        vg.kind("snapshot0"),
        Some(&LvKind::Snapshot {
            origin: "origin".into()
        })
    );
    assert_eq!(vg.kind("nosuch"), None);
    // Messages name kinds as lvm2's segment types.
    let names: Vec<&str> = ["plain", "tp", "thin1", "cdata_cpool", "cached", "snapshot0"]
        .iter()
        .map(|n| vg.kind(n).unwrap().type_name())
        .collect();
    assert_eq!(
        names,
        [
            "striped",
            "thin-pool",
            "thin",
            "cache-pool",
            "cache",
            "snapshot"
        ]
    );
}

#[test]
fn sizes_visibility_and_activation_skip_come_from_the_lv() {
    let vg = vgall();
    assert_eq!(vg.lv_bytes("thin1"), Some(25 * 4 * MIB));
    assert_eq!(vg.lv_bytes("tp_tmeta"), Some(2 * 4 * MIB));
    assert_eq!(vg.lv_bytes("nosuch"), None);
    assert!(vg.lv("plain").unwrap().visible);
    assert!(!vg.lv("tp_tdata").unwrap().visible);
    let thins: Vec<(&str, bool)> = vg
        .thin_lvs("tp")
        .map(|lv| (lv.name.as_str(), lv.activation_skip))
        .collect();
    assert_eq!(
        thins,
        [("thin1", false), ("thin2", false), ("thin1snap", true)]
    );
    assert_eq!(vg.thin_lvs("plain").count(), 0);
}

#[test]
fn a_cache_pool_without_mode_or_policy_reads_as_lvm2s_defaults() {
    let kind = LvKind::of(&SegmentKind::CachePool {
        data: "d".into(),
        metadata: "m".into(),
        metadata_format: None,
        settings: Default::default(),
    });
    assert_eq!(
        kind,
        LvKind::CachePool {
            mode: DEFAULT_CACHE_MODE.into(),
            policy: DEFAULT_CACHE_POLICY.into()
        }
    );
}

#[test]
fn sizes_round_up_to_extents() {
    let vg = vgall();
    assert_eq!(vg.round_to_extents(1), 4 * MIB);
    assert_eq!(vg.round_to_extents(4 * MIB), 4 * MIB);
    assert_eq!(vg.round_to_extents(4 * MIB + 1), 8 * MIB);
    assert_eq!(vg.round_to_extents(0), 0);
}

#[test]
fn a_thin_lv_rounds_to_extents_and_to_chunks_larger_than_an_extent() {
    let vg = vgall();
    // 64 KiB chunks fit in a 4 MiB extent: extents only.
    assert_eq!(vg.thin_granule("tp"), 4 * MIB);
    // Not a pool: extents.
    assert_eq!(vg.thin_granule("plain"), 4 * MIB);
    // 6 MiB chunks on 4 MiB extents: two extents at a time.
    assert_eq!(thin_granule(4 * MIB, 6 * MIB), 8 * MIB);
    assert_eq!(thin_extents(MIB, 4 * MIB, 6 * MIB), 2);
    assert_eq!(thin_extents(9 * MIB, 4 * MIB, 6 * MIB), 4);
    assert_eq!(thin_extents(9 * MIB, 4 * MIB, 64 * 1024), 3);
}

#[test]
fn thin_extents_is_the_rule_thin_create_had() {
    // lvm2's rule as thin create wrote it: whole extents, then whole
    // runs of the extents one chunk spans.
    let old = |size: u64, ext: u64, chunk: u64| {
        let mut extents = size.div_ceil(ext);
        if chunk > ext {
            let per = chunk.div_ceil(ext);
            extents = extents.div_ceil(per) * per;
        }
        extents
    };
    for ext in [512 * 1024, MIB, 4 * MIB] {
        for chunk in [64 * 1024, MIB, 3 * MIB, 4 * MIB, 5 * MIB, 16 * MIB] {
            for size in [1, MIB - 1, MIB, 7 * MIB + 3, 100 * MIB, 1 << 30] {
                assert_eq!(
                    thin_extents(size, ext, chunk),
                    old(size, ext, chunk),
                    "size {size} extent {ext} chunk {chunk}"
                );
                // And what the stack expects a new volume to measure.
                assert_eq!(
                    thin_extents(size, ext, chunk) * ext,
                    round_up(size, thin_granule(ext, chunk))
                );
            }
        }
    }
}

#[test]
fn a_pools_target_is_on_its_tpool_layer_or_its_own_name() {
    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        pool_device(&set(&["vg-tp", "vg-tp-tpool"]), "vg", "tp").as_deref(),
        Some("vg-tp-tpool")
    );
    assert_eq!(
        pool_device(&set(&["vg-tp"]), "vg", "tp").as_deref(),
        Some("vg-tp")
    );
    assert_eq!(pool_device(&set(&["vg-other"]), "vg", "tp"), None);
}
