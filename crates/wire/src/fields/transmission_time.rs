//! The transmission date and time (DE 7), and the Unix time it names.

use serde::{Deserialize, Serialize};

use super::civil::{civil_from_days, days_from_civil, days_in_month};
use super::digits::{digits, write_digits};
use crate::error::{invalid, FieldError};

/// Transmission date and time (DE 7, MMDDhhmmss, UTC).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct TransmissionTime {
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

impl TransmissionTime {
    pub fn from_bytes(field: u8, raw: &[u8]) -> Result<TransmissionTime, FieldError> {
        digits::<10>(field, raw)?;
        let two = |i: usize| (raw[i] - b'0') * 10 + (raw[i + 1] - b'0');
        let t = TransmissionTime {
            month: two(0),
            day: two(2),
            hour: two(4),
            minute: two(6),
            second: two(8),
        };
        let valid = (1..=12).contains(&t.month)
            && t.day >= 1
            && t.day <= days_in_month(2000, t.month) // leap-year tolerant
            && t.hour < 24
            && t.minute < 60
            && t.second < 60;
        if valid {
            Ok(t)
        } else {
            Err(invalid(field, "not a valid MMDDhhmmss"))
        }
    }

    pub fn to_bytes(self) -> [u8; 10] {
        let v = u64::from(self.month) * 100_000_000
            + u64::from(self.day) * 1_000_000
            + u64::from(self.hour) * 10_000
            + u64::from(self.minute) * 100
            + u64::from(self.second);
        write_digits::<10>(v)
    }

    /// The transmission time of a Unix time (UTC).
    pub fn from_unix(secs: i64) -> TransmissionTime {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (_, month, day) = civil_from_days(days);
        TransmissionTime {
            month,
            day,
            hour: (rem / 3600) as u8,
            minute: (rem / 60 % 60) as u8,
            second: (rem % 60) as u8,
        }
    }

    /// The Unix time this DE 7 most plausibly names, given the switch's clock
    /// `now`: DE 7 has no year, so the year (now's, the one before or the one
    /// after) that puts it nearest to `now` is taken.
    pub fn nearest_unix(self, now: i64) -> i64 {
        // 29 February with no leap year near: treat as 1 March (such a
        // DE 7 is outside any window, see `skew`).
        self.nearest(now).unwrap_or_else(|| {
            let (year, _, _) = civil_from_days(now.div_euclid(86_400));
            days_from_civil(year, 3, 1) * 86_400
        })
    }

    /// As [`TransmissionTime::nearest_unix`]; `None` when none of the three
    /// years has the day (29 February, no leap year among them).
    fn nearest(self, now: i64) -> Option<i64> {
        let (year, _, _) = civil_from_days(now.div_euclid(86_400));
        [year - 1, year, year + 1]
            .into_iter()
            .filter(|y| self.day <= days_in_month(*y, self.month))
            .map(|y| {
                days_from_civil(y, self.month, self.day) * 86_400
                    + i64::from(self.hour) * 3600
                    + i64::from(self.minute) * 60
                    + i64::from(self.second)
            })
            .min_by_key(|t| (t - now).abs())
    }

    /// Seconds between this DE 7 and `now` (absolute); the most there is
    /// for a day none of the years near `now` has, which no window admits.
    pub fn skew(self, now: i64) -> u64 {
        self.nearest(now)
            .map_or(u64::MAX, |t| (t - now).unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmission_time_validates_calendar_fields() {
        assert!(TransmissionTime::from_bytes(7, b"1122183000").is_ok());
        assert!(TransmissionTime::from_bytes(7, b"1322183000").is_err());
        assert!(TransmissionTime::from_bytes(7, b"0431183000").is_err());
        assert!(TransmissionTime::from_bytes(7, b"1122243000").is_err());
        assert!(TransmissionTime::from_bytes(7, b"0229000000").is_ok());
    }

    #[test]
    fn a_29_february_with_no_leap_year_near_is_outside_every_window() {
        // 2026-03-01T00:00:30Z: 2025, 2026 and 2027 have no 29 February.
        let now = days_from_civil(2026, 3, 1) * 86_400 + 30;
        let t = TransmissionTime::from_bytes(7, b"0229000000").unwrap();
        assert_eq!(t.skew(now), u64::MAX);
        // A leap year near: the day is real, and near.
        let leap = days_from_civil(2028, 2, 29) * 86_400 + 30;
        assert_eq!(t.skew(leap), 30);
    }

    #[test]
    fn transmission_time_picks_the_nearest_year() {
        // 2026-11-22T18:30:00Z
        let now = days_from_civil(2026, 11, 22) * 86_400 + 18 * 3600 + 30 * 60;
        let t = TransmissionTime::from_unix(now);
        assert_eq!(&t.to_bytes(), b"1122183000");
        assert_eq!(t.nearest_unix(now), now);
        // Just before new year, a terminal slightly ahead sends 0101.
        let eve = days_from_civil(2026, 12, 31) * 86_400 + 86_399;
        let t = TransmissionTime::from_bytes(7, b"0101000010").unwrap();
        assert_eq!(t.skew(eve), 11);
    }
}
