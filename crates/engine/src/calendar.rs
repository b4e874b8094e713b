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
