//! Eight bytes at a time: the word tricks the head and chunk scanners and the encoder's field
//! checks share.
//!
//! Each `*_flags` function sets the high bit of every byte of a word that matches; only the
//! lowest flag is exact (a borrow can flag bytes above a true match), which is all a scan for
//! the first match needs.

/// `0x01` in every byte.
pub(crate) const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
/// `0x80` in every byte.
pub(crate) const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);

/// Eight bytes as a little-endian word (so the lowest bits are the first byte).
#[inline(always)]
pub(crate) fn word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

/// Flags the bytes of `x` that are zero.
#[inline(always)]
pub(crate) fn zeros(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGH
}

/// Flags the bytes below 0x20 or equal to 0x7f.
#[inline(always)]
pub(crate) fn controls(x: u64) -> u64 {
    (x.wrapping_sub(ONES * 0x20) & !x & HIGH) | zeros(x ^ (ONES * 0x7f))
}

/// The index of the first `byte` in `raw` at or after `i`. For the short runs of a head or a
/// chunk-size line, where `memchr`'s vector set-up costs more than the search.
#[inline(always)]
pub(crate) fn find(raw: &[u8], mut i: usize, byte: u8) -> Option<usize> {
    while let Some(w) = raw.get(i..i + 8) {
        let m = zeros(word(w) ^ (ONES * u64::from(byte)));
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    raw.get(i..)?.iter().position(|&b| b == byte).map(|j| i + j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_agrees_with_a_plain_search() {
        let hay: Vec<u8> = (0..40u8).map(|i| b'a' + i % 7).collect();
        for from in 0..=hay.len() {
            for byte in [b'a', b'c', b'g', b'z'] {
                let want = hay[from..]
                    .iter()
                    .position(|&b| b == byte)
                    .map(|j| from + j);
                assert_eq!(find(&hay, from, byte), want, "{from} {byte}");
            }
        }
    }

    #[test]
    fn the_lowest_flag_is_exact() {
        for pos in 0..8 {
            for bad in [0u8, b'\r', b'\n', 0x1f, 0x7f] {
                let mut w = *b"abcdefgh";
                w[pos] = bad;
                // Bytes after the control byte may be flagged too; the first flag is exact.
                let m = controls(u64::from_le_bytes(w));
                assert_eq!(m.trailing_zeros() / 8, pos as u32, "{bad} at {pos}");
            }
        }
        // Space, `~` and letters are not controls; the tab is.
        let m = controls(u64::from_le_bytes(*b"a b\t~! Z"));
        assert_eq!(m.trailing_zeros(), 3 * 8 + 7);
        assert_eq!(controls(u64::from_le_bytes(*b"a b ~! Z")), 0);
    }
}
