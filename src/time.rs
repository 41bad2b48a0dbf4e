//! Wall-clock times as people and JSON read them: RFC 3339 in UTC, without a date crate; and the
//! waits and timeouts people give in seconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest wait or timeout rigs accepts, in seconds: 365 days. Longer ones are typos (or
/// "forever", which is leaving the option out); without a bound, `1e20` overflows `Duration`
/// and the deadlines computed from it, and rigs would crash instead of saying so.
pub const MAX_SECONDS: u64 = 365 * 86_400;

/// What [`seconds`] accepts, for messages: "above 0 and at most 31536000 (365 days)".
pub fn seconds_range() -> String {
    format!("above 0 and at most {MAX_SECONDS} (365 days)")
}

/// A wait or timeout given in seconds, when it is above 0 and at most [`MAX_SECONDS`] (so not
/// NaN or infinite either).
pub fn seconds(secs: f64) -> Option<Duration> {
    (secs > 0.0 && secs <= MAX_SECONDS as f64).then(|| Duration::from_secs_f64(secs))
}

/// Seconds since the Unix epoch as RFC 3339 in UTC, e.g. `2026-12-01T08:30:00Z`.
pub fn rfc3339(secs: u64) -> String {
    let (year, month, day) = civil_from_days(secs / 86_400);
    let time = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        time / 3_600,
        time / 60 % 60,
        time % 60
    )
}

/// The Gregorian (year, month, day) of a count of days since 1970-01-01, after Howard Hinnant's
/// `civil_from_days`.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Counting from 0000-03-01 puts the leap day at the end of each year and makes every 400-year
    // era 146 097 days long.
    let from_march_0 = days + 719_468;
    let era = from_march_0 / 146_097;
    let day_of_era = from_march_0 % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

/// Now, as RFC 3339 in UTC.
pub fn now() -> String {
    rfc3339(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_bounded() {
        assert_eq!(seconds(1.5), Some(Duration::from_millis(1500)));
        assert_eq!(
            seconds(MAX_SECONDS as f64),
            Some(Duration::from_secs(MAX_SECONDS))
        );
        for bad in [
            0.0,
            -1.0,
            1e20,
            MAX_SECONDS as f64 + 1.0,
            f64::NAN,
            f64::INFINITY,
        ] {
            assert_eq!(seconds(bad), None, "{bad}");
        }
    }
}
