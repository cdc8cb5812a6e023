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

/// Flags the bytes of `x` that are not ASCII letters or `-`, the bytes of most field names.
/// Exact for every byte (no borrow crosses a byte: each sum stays below 0x100).
#[inline(always)]
pub(crate) fn not_name_letters(x: u64) -> u64 {
    let y = x & !HIGH;
    // Folded to lowercase, then 0x61..=0x7a: the sum with 0x1f reaches 0x80, with 0x05 not.
    let l = y | (ONES * 0x20);
    let letter = l.wrapping_add(ONES * 0x1f) & !l.wrapping_add(ONES * 0x05);
    // Exactly 0x2d: `d + 0x7f` stays below 0x80 only for `d == 0`.
    let dash = !(y ^ (ONES * 0x2d)).wrapping_add(ONES * 0x7f);
    !((letter | dash) & !x) & HIGH
}

/// The index of the first byte in `raw` at or after `i` that is not an ASCII letter or `-`
/// (see [`not_name_letters`]): the colon after a field name, or a byte to look at more
/// closely. Sixteen bytes a step, so most names take one.
#[inline(always)]
pub(crate) fn find_not_name_letter(raw: &[u8], mut i: usize) -> Option<usize> {
    while let Some(w) = raw.get(i..i + 16) {
        let (lo, hi) = (
            not_name_letters(word(&w[..8])),
            not_name_letters(word(&w[8..])),
        );
        if lo | hi != 0 {
            let (m, base) = if lo != 0 { (lo, i) } else { (hi, i + 8) };
            return Some(base + (m.trailing_zeros() / 8) as usize);
        }
        i += 16;
    }
    raw.get(i..)?
        .iter()
        .position(|&b| !(b.is_ascii_alphabetic() || b == b'-'))
        .map(|j| i + j)
}

/// The index of the first control byte (below 0x20, or DEL) in `raw` at or after `i`: the end
/// of a field value, or a byte it may not hold. Sixteen bytes a step (two words, one branch),
/// since values run long (user agents, cookies).
#[inline(always)]
pub(crate) fn find_control(raw: &[u8], mut i: usize) -> Option<usize> {
    while let Some(w) = raw.get(i..i + 16) {
        let (lo, hi) = (controls(word(&w[..8])), controls(word(&w[8..])));
        if lo | hi != 0 {
            // The lowest flag of the first flagged word is exact.
            let (m, base) = if lo != 0 { (lo, i) } else { (hi, i + 8) };
            return Some(base + (m.trailing_zeros() / 8) as usize);
        }
        i += 16;
    }
    if let Some(w) = raw.get(i..i + 8) {
        let m = controls(word(w));
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    raw.get(i..)?
        .iter()
        .position(|&b| b < 0x20 || b == 0x7f)
        .map(|j| i + j)
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
    fn find_control_agrees_with_a_plain_search() {
        for len in 0..40 {
            for bad in [0u8, b'\t', b'\r', b'\n', 0x1f, 0x7f] {
                for at in 0..=len {
                    let mut hay: Vec<u8> = (0..len).map(|i| b' ' + (i * 7 % 95) as u8).collect();
                    hay.extend_from_slice(&[0x80, 0xff, b'~']);
                    if at < len {
                        hay[at] = bad;
                    }
                    for from in 0..=hay.len() {
                        let want = hay[from..]
                            .iter()
                            .position(|&b| b < 0x20 || b == 0x7f)
                            .map(|j| from + j);
                        assert_eq!(find_control(&hay, from), want, "{len} {bad} {at} {from}");
                    }
                }
            }
        }
    }

    #[test]
    fn name_letters_are_exact_for_every_byte() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut w = *b"aZ-q-Bcd";
                w[pos] = b;
                let m = not_name_letters(u64::from_le_bytes(w));
                let want = !(b.is_ascii_alphabetic() || b == b'-');
                assert_eq!(m, u64::from(want) << (pos * 8 + 7), "{b} at {pos}");
            }
        }
        for len in 0..40 {
            let hay: Vec<u8> = (0..len).map(|i| b"aB-zZ"[i % 5]).chain(*b":x").collect();
            for from in 0..=hay.len() {
                let want = (from <= len).then_some(len);
                assert_eq!(find_not_name_letter(&hay, from), want, "{len} {from}");
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
