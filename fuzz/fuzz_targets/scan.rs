//! The scan's reading of a whole device, end to end, on arbitrary bytes: the
//! input is a device image (label sector, PV header, metadata areas where
//! the PV header puts them, copies where the mda headers point), read
//! through `read_label_and_mdas` as the scan reads a block device. It never
//! panics, never reads or allocates past the image, and a copy it returns
//! lies inside the image. Arbitrary bytes almost never carry good CRCs, so
//! the image is also read with the label in sector 1 and each mda header it
//! names signed as lvm2 signs them (ids, sector, start, checksums made
//! right), to get to the sizes and offsets inside.
#![no_main]

use cairn::meta::crc::{calc_crc, INITIAL_CRC};
use cairn::meta::label::{find_label, LABEL_SCAN_BYTES};
use cairn::meta::mda::FMTT_MAGIC;
use cairn::meta::reader::ImageDevice;
use cairn::meta::scan::read_label_and_mdas;
use libfuzzer_sys::fuzz_target;

fn exercise(image: &[u8]) {
    let dev = ImageDevice::new("/dev/fuzz", image);
    let Ok(Some((label, mdas))) = read_label_and_mdas(&dev) else {
        return;
    };
    assert_eq!(mdas.len(), label.pv_header.metadata_areas.len());
    for (mda, area) in mdas.iter().zip(&label.pv_header.metadata_areas) {
        assert!(area.offset + area.size <= image.len() as u64, "area past the image");
        assert!(mda.header.size <= area.size, "header larger than its area");
        if let Some(copy) = &mda.committed {
            assert!(copy.size <= mda.header.size, "copy larger than its area");
            assert_eq!(copy.text.len() as u64 + 1, copy.size);
            // The whole text, as a command that asks for the VG parses it.
            let _ = copy.metadata();
        }
    }
}

/// Signs the label in sector 1 as lvm2 writes it, then each mda header the
/// PV header names (where it lies inside the image).
fn signed(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < LABEL_SCAN_BYTES {
        return None;
    }
    let mut image = data.to_vec();
    let sector = &mut image[512..1024];
    sector[..8].copy_from_slice(b"LABELONE");
    sector[8..16].copy_from_slice(&1u64.to_le_bytes());
    sector[20..24].copy_from_slice(&32u32.to_le_bytes());
    sector[24..32].copy_from_slice(b"LVM2 001");
    let crc = calc_crc(INITIAL_CRC, &sector[20..]);
    sector[16..20].copy_from_slice(&crc.to_le_bytes());
    // Another sector's label would be found first: sector 1 is the one.
    image[..8].fill(0);
    let label = find_label(&image[..LABEL_SCAN_BYTES]).ok().flatten()?;
    for area in &label.pv_header.metadata_areas {
        let Some(at) = usize::try_from(area.offset).ok() else {
            continue;
        };
        let Some(header) = image.get_mut(at..at.saturating_add(512)) else {
            continue;
        };
        header[4..20].copy_from_slice(FMTT_MAGIC);
        header[20..24].copy_from_slice(&1u32.to_le_bytes());
        header[24..32].copy_from_slice(&area.offset.to_le_bytes());
        let crc = calc_crc(INITIAL_CRC, &header[4..512]);
        header[..4].copy_from_slice(&crc.to_le_bytes());
    }
    Some(image)
}

fuzz_target!(|data: &[u8]| {
    exercise(data);
    if let Some(image) = signed(data) {
        exercise(&image);
    }
});
