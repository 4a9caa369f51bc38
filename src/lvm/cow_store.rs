//! Reads a thick snapshot's exception store (dm-snapshot's persistent
//! format) from disk: the proof that a merge has nothing left to merge.
//!
//! The store begins with a header chunk (magic "SnAp", valid, version,
//! chunk size, little-endian u32s), followed by areas of exceptions
//! (old chunk, new chunk: little-endian u64s); an exception with new chunk
//! 0 ends the list. A merge takes exceptions off the end and writes the
//! area back, so the store is empty exactly when the first exception of
//! the first area is such an end. An all-zero header is a store the kernel
//! never used (lvm2 zeroes it on create): empty too.

use std::path::PathBuf;

use crate::blockdev::Device;
use crate::meta::model::{Area, SegmentKind, VolumeGroup};

const MAGIC: u32 = 0x7041_6e53;

/// What the store says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// No exception: nothing left to merge.
    Empty,
    /// At least one exception not merged.
    Holds,
    /// The kernel marked the snapshot invalid (it overflowed).
    Invalid,
}

/// The store from its first two chunks' leading bytes: `header` (at least
/// 16 bytes) and `area` (at least 16 bytes of chunk 1).
pub fn parse(header: &[u8], area: &[u8]) -> Result<Store, String> {
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
    if header.len() < 16 || area.len() < 16 {
        return Err("short read of the exception store".into());
    }
    match u32_at(header, 0) {
        0 => return Ok(Store::Empty),
        MAGIC => {}
        m => return Err(format!("no snapshot exception store (magic {m:#x})")),
    }
    if u32_at(header, 4) == 0 {
        return Ok(Store::Invalid);
    }
    let new_chunk = u64::from_le_bytes(area[8..16].try_into().expect("8 bytes"));
    Ok(if new_chunk == 0 {
        Store::Empty
    } else {
        Store::Holds
    })
}

/// Reads the store of the COW LV `cow` (its first segment on one PV) from
/// the PV itself, O_DIRECT, whether or not a device maps it.
pub fn read(vg: &VolumeGroup, devices: &[Option<PathBuf>], cow: &str) -> Result<Store, String> {
    let lv = vg.lv(cow).ok_or_else(|| format!("no LV named {cow}"))?;
    let seg = lv.segments.first().ok_or("a COW without segments")?;
    let SegmentKind::Striped { stripes, .. } = &seg.kind else {
        return Err(format!("COW {cow} is not linear"));
    };
    let [Area::Pv { pv, pe }] = stripes.as_slice() else {
        return Err(format!("COW {cow} is not linear"));
    };
    let path = devices
        .get(*pv)
        .and_then(|p| p.as_ref())
        .ok_or_else(|| format!("the PV of COW {cow} is missing"))?;
    let on = vg.pvs.get(*pv).ok_or("a PV index past the VG's PVs")?;
    let es = vg.extent_size;
    let start = pe
        .checked_mul(es)
        .and_then(|s| s.checked_add(on.pe_start))
        .ok_or("COW offset overflows")?
        * 512;
    let dev = Device::open(path, false).map_err(|e| e.to_string())?;
    let header = dev.read_at(start, 4096).map_err(|e| e.to_string())?;
    let chunk = u64::from(u32::from_le_bytes(
        header[12..16].try_into().expect("4 bytes"),
    ));
    if u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) != MAGIC {
        return parse(&header, &[0; 16]);
    }
    if chunk == 0 || chunk.saturating_mul(2) > seg.extent_count.saturating_mul(es) {
        return Err(format!(
            "COW {cow}: chunk size {chunk} does not fit its first segment"
        ));
    }
    let area = dev
        .read_at(start + chunk * 512, 4096)
        .map_err(|e| e.to_string())?;
    parse(&header, &area)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(magic: u32, valid: u32) -> Vec<u8> {
        [magic, valid, 1, 16]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect()
    }

    fn area(first: (u64, u64)) -> Vec<u8> {
        [first.0, first.1]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect()
    }

    #[test]
    fn a_store_is_empty_only_when_its_first_exception_ends_the_list() {
        assert_eq!(parse(&header(MAGIC, 1), &area((0, 0))), Ok(Store::Empty));
        // Chunk 0 of the origin copied to chunk 2 of the COW: not merged.
        assert_eq!(parse(&header(MAGIC, 1), &area((0, 2))), Ok(Store::Holds));
        assert_eq!(parse(&header(0, 0), &area((5, 9))), Ok(Store::Empty));
        assert_eq!(parse(&header(MAGIC, 0), &area((0, 2))), Ok(Store::Invalid));
        assert!(parse(&header(0xdead, 1), &area((0, 0))).is_err());
        assert!(parse(&[0; 8], &area((0, 0))).is_err());
    }
}
