//! find_label on arbitrary bytes: never panics, and whatever it accepts
//! re-encodes (when lvm2 could write it) to a label that decodes the same.
#![no_main]

use cairn::meta::crc::{calc_crc, INITIAL_CRC};
use cairn::meta::label::{find_label, Label, LabelError};
use libfuzzer_sys::fuzz_target;

fn check(found: Result<Option<Label>, LabelError>) {
    if let Ok(Some(label)) = found {
        if let Ok(bytes) = label.encode() {
            let again = Label::decode(&bytes, label.sector).expect("re-encoded label decodes");
            assert_eq!(again, label);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(find_label(data));
    // Arbitrary bytes almost never carry a good CRC: also read them as the
    // body of a label with the right id, sector, offset, type and CRC, so
    // that the pv_header parser sees them.
    if let Some(body) = data.get(..512) {
        let mut sector = [0u8; 512];
        sector.copy_from_slice(body);
        sector[..8].copy_from_slice(b"LABELONE");
        sector[8..16].copy_from_slice(&1u64.to_le_bytes());
        sector[20..24].copy_from_slice(&32u32.to_le_bytes());
        sector[24..32].copy_from_slice(b"LVM2 001");
        let crc = calc_crc(INITIAL_CRC, &sector[20..]);
        sector[16..20].copy_from_slice(&crc.to_le_bytes());
        check(Label::decode(&sector, 1).map(Some));
    }
});
