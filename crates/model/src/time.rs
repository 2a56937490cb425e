//! Calendar arithmetic for the timestamps Remora writes: the session cookie's `Expires` and the
//! access log's `time`. Pure functions over seconds since the Unix epoch (UTC), no clock reads.

use std::fmt::Write;
use std::time::SystemTime;

/// Howard Hinnant's days-to-civil: (year, month 1-12, day 1-31) of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
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

/// nginx's `ngx_http_cookie_time`: `Thu, 26-Nov-26 06:35:19 GMT`, with a two-digit year up to
/// 2037 and four digits after, as ingress-nginx sends it.
pub fn cookie_time(out: &mut String, unix: u64) {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    let weekday = DAYS[(days % 7) as usize];
    let month = MONTHS[(month - 1) as usize];
    let (h, m, sec) = (secs / 3600, secs / 60 % 60, secs % 60);
    if year > 2037 {
        let _ = write!(
            out,
            "{weekday}, {day:02}-{month}-{year} {h:02}:{m:02}:{sec:02} GMT"
        );
    } else {
        let yy = year % 100;
        let _ = write!(
            out,
            "{weekday}, {day:02}-{month}-{yy:02} {h:02}:{m:02}:{sec:02} GMT"
        );
    }
}

/// RFC 3339 in UTC with milliseconds: `2026-11-26T06:35:19.123Z`. Times before the epoch are
/// written as the epoch.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn cookie_time_formats() {
        let f = |t| {
            let mut s = String::new();
            cookie_time(&mut s, t);
            s
        };
        assert_eq!(f(0), "Thu, 01-Jan-70 00:00:00 GMT");
        assert_eq!(f(951_782_400), "Tue, 29-Feb-00 00:00:00 GMT");
        assert_eq!(f(2_145_916_800), "Fri, 01-Jan-2038 00:00:00 GMT");
        assert_eq!(f(2_177_452_800), "Sat, 01-Jan-2039 00:00:00 GMT");
    }

    #[test]
    fn timestamps() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_519_123);
        assert_eq!(rfc3339(t), "2026-11-18T11:15:19.123Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }
}
