//! IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7) without a clock: the
//! caller passes the time, typically once a second.

/// Length of an IMF-fixdate.
pub const DATE_LEN: usize = 29;

const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Formats seconds since the Unix epoch as an IMF-fixdate.
///
/// ```
/// assert_eq!(&codec_http::format_date(784111777), b"Sun, 06 Nov 1994 08:49:37 GMT");
/// ```
pub fn format_date(unix_secs: u64) -> [u8; DATE_LEN] {
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    put2(&mut out[5..7], day);
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    let y = year.clamp(0, 9999) as u32;
    put2(&mut out[12..14], y / 100);
    put2(&mut out[14..16], y % 100);
    put2(&mut out[17..19], (secs / 3600) as u32);
    put2(&mut out[20..22], (secs / 60 % 60) as u32);
    put2(&mut out[23..25], (secs % 60) as u32);
    out
}

fn put2(dst: &mut [u8], v: u32) {
    dst[0] = b'0' + (v / 10) as u8;
    dst[1] = b'0' + (v % 10) as u8;
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The `Date` value, formatted once per second.
///
/// ```
/// let mut date = codec_http::DateCache::new(0);
/// assert_eq!(date.get(), b"Thu, 01 Jan 1970 00:00:00 GMT");
/// assert!(date.update(86_400 * 365));
/// assert_eq!(date.get(), b"Fri, 01 Jan 1971 00:00:00 GMT");
/// assert!(!date.update(86_400 * 365));
/// ```
#[derive(Clone, Debug)]
pub struct DateCache {
    secs: u64,
    text: [u8; DATE_LEN],
}

impl DateCache {
    /// A cache holding the date for `unix_secs`.
    pub fn new(unix_secs: u64) -> DateCache {
        DateCache {
            secs: unix_secs,
            text: format_date(unix_secs),
        }
    }

    /// Moves to `unix_secs`; returns whether the text changed.
    pub fn update(&mut self, unix_secs: u64) -> bool {
        if unix_secs == self.secs {
            return false;
        }
        self.secs = unix_secs;
        self.text = format_date(unix_secs);
        true
    }

    /// The formatted date.
    pub fn get(&self) -> &[u8; DATE_LEN] {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(&format_date(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&format_date(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(
            &format_date(1_709_164_799),
            b"Wed, 28 Feb 2024 23:59:59 GMT"
        );
        assert_eq!(
            &format_date(4_102_444_800),
            b"Fri, 01 Jan 2100 00:00:00 GMT"
        );
    }
}
