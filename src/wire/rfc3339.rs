//! Times from the system clock written as RFC 3339 in UTC, with no time-zone database: to the
//! second (`2026-11-18T11:06:40Z`, the demo server's clock) or to the millisecond (the audit
//! log's lines).

use std::time::{SystemTime, UNIX_EPOCH};

/// `time` to the second: `2026-11-18T11:06:40Z`.
pub fn utc_seconds(time: SystemTime) -> String {
    let (date, secs) = civil(time);
    format!("{date}T{}Z", clock(secs))
}

/// `time` to the millisecond: `2026-11-18T11:06:40.042Z`.
pub fn utc_millis(time: SystemTime) -> String {
    let (date, secs) = civil(time);
    let millis = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_millis();
    format!("{date}T{}.{millis:03}Z", clock(secs))
}

/// The date (`YYYY-MM-DD`) of `time` and its seconds into that day; a time before the epoch
/// is the epoch.
fn civil(time: SystemTime) -> (String, i64) {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm), for the proleptic Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (format!("{year:04}-{month:02}-{day:02}"), of_day)
}

/// `HH:MM:SS` of `secs` into a day.
fn clock(secs: i64) -> String {
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc_dates_to_the_second() {
        assert_eq!(utc_seconds(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(utc_seconds(t), "2026-11-18T11:06:40Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc_seconds(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn formats_utc_dates_to_the_millisecond() {
        assert_eq!(utc_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_000_000_042);
        assert_eq!(utc_millis(t), "2026-11-18T11:06:40.042Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc_millis(leap), "2000-02-29T00:00:00.000Z");
    }
}
