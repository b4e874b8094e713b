//! The settlement calendar: which days are working days.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Working days for settlement due dates. Days are counted since
/// 1970-01-01 in the switch's local time zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calendar {
    /// Weekend days, bit 0 Monday .. bit 6 Sunday. Default: Friday.
    pub weekend: u8,
    /// Public holidays (days since 1970-01-01).
    pub holidays: BTreeSet<i64>,
}

impl Default for Calendar {
    fn default() -> Self {
        Calendar {
            weekend: 1 << 4,
            holidays: BTreeSet::new(),
        }
    }
}

/// Day of the week of a day number, Monday = 0.
pub fn weekday(day: i64) -> u8 {
    // 1970-01-01 was a Thursday.
    (day + 3).rem_euclid(7) as u8
}

/// The day number (days since 1970-01-01) of Jalali (Solar Hijri) date
/// `year`/`month`/`day`, or `None` if there is no such date (month 13, day
/// 31 of month 7, 30 Esfand of a common year).
pub fn day_from_jalali(year: i32, month: u8, day: u8) -> Option<i64> {
    let date = icu_calendar::Date::try_new_persian(year, month, day).ok()?;
    let iso = date.to_calendar(icu_calendar::Iso);
    Some(clubswitch_wire::fields::days_from_civil(
        i64::from(iso.year().extended_year()),
        iso.month().ordinal,
        iso.day_of_month().0,
    ))
}

/// The Jalali date (year, month 1–12, day) of a day number.
pub fn jalali_of_day(day: i64) -> Option<(i32, u8, u8)> {
    let (y, m, d) = clubswitch_wire::fields::civil_from_days(day);
    let iso = icu_calendar::Date::try_new_iso(i32::try_from(y).ok()?, m, d).ok()?;
    let p = iso.to_calendar(icu_calendar::cal::Persian);
    Some((
        p.year().extended_year(),
        p.month().ordinal,
        p.day_of_month().0,
    ))
}

impl Calendar {
    pub fn is_working_day(&self, day: i64) -> bool {
        self.weekend & (1 << weekday(day)) == 0 && !self.holidays.contains(&day)
    }

    /// The first working day after `day`.
    pub fn next_working_day(&self, day: i64) -> i64 {
        // A calendar with every day off would loop forever; a year of
        // holidays is the most any real calendar has.
        (day + 1..day + 400)
            .find(|d| self.is_working_day(*d))
            .unwrap_or(day + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clubswitch_wire::fields::days_from_civil;

    #[test]
    fn friday_is_the_default_weekend() {
        let cal = Calendar::default();
        let thursday = days_from_civil(2026, 11, 26);
        assert_eq!(weekday(thursday), 3);
        let saturday = days_from_civil(2026, 11, 28);
        assert_eq!(cal.next_working_day(thursday), saturday);
    }

    #[test]
    fn jalali_dates_convert_both_ways_and_impossible_ones_are_refused() {
        // Nowruz 1405 is 2026-03-21; 1 Dey 1405 is 2026-12-22.
        assert_eq!(
            day_from_jalali(1405, 1, 1),
            Some(days_from_civil(2026, 3, 21))
        );
        assert_eq!(
            day_from_jalali(1405, 10, 1),
            Some(days_from_civil(2026, 12, 22))
        );
        assert_eq!(
            jalali_of_day(days_from_civil(2026, 12, 2)),
            Some((1405, 9, 11))
        );
        // 1403 is a leap year (30 Esfand exists), 1404 is not.
        assert!(day_from_jalali(1403, 12, 30).is_some());
        assert_eq!(day_from_jalali(1404, 12, 30), None);
        assert_eq!(day_from_jalali(1405, 7, 31), None);
        assert_eq!(day_from_jalali(1405, 13, 1), None);
        for d in days_from_civil(2020, 1, 1)..days_from_civil(2031, 1, 1) {
            let (y, m, dd) = jalali_of_day(d).unwrap();
            assert_eq!(day_from_jalali(y, m, dd), Some(d));
        }
    }

    #[test]
    fn holidays_are_skipped() {
        let mut cal = Calendar::default();
        let wed = days_from_civil(2026, 11, 25);
        cal.holidays.insert(wed + 1);
        assert_eq!(
            cal.next_working_day(wed),
            wed + 3,
            "Thu holiday, Fri weekend"
        );
    }
}
