//! An mda header and the text of its slots on arbitrary bytes: never panics.
//! The input is the area itself, header first. Arbitrary bytes almost never
//! carry the magic and a good checksum, so the header is also read with
//! those made right (start taken from the header itself), to get to the
//! slots; a new copy is then written and must read back, leaving the
//! committed copy as it was.
#![no_main]

use cairn::meta::crc::{calc_crc, INITIAL_CRC};
use cairn::meta::mda::{read_slot_text, read_text, write_text, MdaHeader, Slot, FMTT_MAGIC};
use libfuzzer_sys::fuzz_target;

fn exercise(area: &[u8], header: &MdaHeader) {
    let _ = header.free_bytes();
    for slot in [Slot::Committed, Slot::Precommitted] {
        let _ = read_slot_text(header, area, slot);
    }
    let committed = header.slot(Slot::Committed);
    let old = read_text(header, area, committed);
    let text = match &old {
        Ok(text) => text.clone(),
        Err(_) => b"vg {\n}\n".to_vec(),
    };
    let mut copy = area.to_vec();
    if let Ok(new) = write_text(header, &mut copy, &text) {
        assert_eq!(
            read_text(header, &copy, &new).expect("new copy reads"),
            text
        );
        // An ignored area has no committed copy to keep: lvm2 starts over
        // at 512 in it (as when metadataignore is turned off).
        if let (Ok(old), false) = (old, header.is_ignored()) {
            let still = read_text(header, &copy, committed).expect("committed copy intact");
            assert_eq!(still, old);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let start = data
        .get(24..32)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes);
    if let Ok(header) = MdaHeader::decode(data, start) {
        exercise(data, &header);
    }
    if data.len() >= 512 {
        let mut area = data.to_vec();
        area[4..20].copy_from_slice(FMTT_MAGIC);
        area[20..24].copy_from_slice(&1u32.to_le_bytes());
        let crc = calc_crc(INITIAL_CRC, &area[4..512]);
        area[..4].copy_from_slice(&crc.to_le_bytes());
        let header = MdaHeader::decode(&area, start).expect("re-signed header decodes");
        exercise(&area, &header);
    }
});
