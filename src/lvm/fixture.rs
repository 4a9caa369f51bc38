//! The VG host tests of this layer run against: lvm2's own backup of a VG
//! with every LV kind cairn knows (tests/fixtures/activation, captured in
//! the lab by capture.sh there). Its layout, for tests that allocate: 4 MiB
//! extents; pv0 has 255 extents, used up to 112 (`snap2`, a COW store, ends
//! there), pv1 has 63, used up to 27; `lin` is pv0 0-15, followed by `two`.

use crate::meta::model::VolumeGroup;

pub(crate) const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/activation/");

pub(crate) fn every_kind() -> VolumeGroup {
    let text = std::fs::read_to_string(format!("{DIR}vg.vgcfg")).unwrap();
    crate::meta::model::parse(&text).unwrap().vg
}
