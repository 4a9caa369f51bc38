//! lvm2's own bytes, captured in the lab by tests/fixtures/lvm2/capture.sh,
//! for the unit tests of the on-disk formats (one copy, shared).

/// The first 8 KiB of a device right after `pvcreate`.
pub const FRESH: &[u8] = include_bytes!("../../tests/fixtures/lvm2/pv-fresh-8k.bin");
/// First MiB of PVs in VGs: one PV and no LV; a wrapped small area; every
/// seed segment type on three PVs; a VG on a cached LV.
pub const VGONE: &[u8] = include_bytes!("../../tests/fixtures/lvm2/vgone-pv0-mda.bin");
pub const VGWRAP: &[u8] = include_bytes!("../../tests/fixtures/lvm2/vgwrap-pv0-mda.bin");
pub const VGALL_B: &[u8] = include_bytes!("../../tests/fixtures/lvm2/vgall-pv-b-mda.bin");
pub const VGALL_C: &[u8] = include_bytes!("../../tests/fixtures/lvm2/vgall-pv-c-mda.bin");
pub const VGALL_D: &[u8] = include_bytes!("../../tests/fixtures/lvm2/vgall-pv-d-mda.bin");
pub const VGNESTED: &[u8] = include_bytes!("../../tests/fixtures/lvm2/vgnested-pv0-mda.bin");
