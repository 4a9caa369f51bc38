//! The checksum lvm2 puts on its label, metadata area header and metadata
//! text: CRC-32 (reflected, polynomial 0xEDB88320) started from 0xf597a6cf and
//! with no final inversion (lvm2's `calc_crc`).

/// lvm2's initial CRC value (`INITIAL_CRC`).
pub const INITIAL_CRC: u32 = 0xf597_a6cf;

/// lvm2's `calc_crc(initial, buf)`.
///
/// crc32fast keeps the same register but inverts it on the way in and out,
/// so undo both inversions around it.
pub fn calc_crc(initial: u32, buf: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new_with_initial(!initial);
    hasher.update(buf);
    !hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit-at-a-time reference, straight from the definition.
    fn reference(initial: u32, buf: &[u8]) -> u32 {
        let mut crc = initial;
        for &byte in buf {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }

    #[test]
    fn empty_buffer_keeps_the_initial_value() {
        assert_eq!(calc_crc(INITIAL_CRC, b""), INITIAL_CRC);
    }

    #[test]
    fn matches_the_bitwise_definition() {
        let data: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in [1, 7, 64, 511, 4096] {
            assert_eq!(
                calc_crc(INITIAL_CRC, &data[..len]),
                reference(INITIAL_CRC, &data[..len]),
                "len {len}"
            );
        }
    }

    #[test]
    fn chains_like_lvm2() {
        // lvm2 checksums the label from offset 20 in one call; splitting the
        // buffer and chaining must give the same value.
        let data = b"LABELONE\x01\x00\x00\x00 some header bytes";
        let whole = calc_crc(INITIAL_CRC, data);
        let chained = calc_crc(calc_crc(INITIAL_CRC, &data[..10]), &data[10..]);
        assert_eq!(whole, chained);
    }
}
