//! The two languages the switch speaks to people in: Persian (right to
//! left, Persian digits, Jalali dates) and English. How numbers, dates and
//! times are written in each, shared by the console's pages and the
//! messages sent to members, so both write a date the same way.

use clubswitch_engine::calendar::jalali_of_day;

/// A language a page or a message is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Fa,
    En,
}

impl Lang {
    pub fn from_code(code: &str) -> Lang {
        if code == "en" {
            Lang::En
        } else {
            Lang::Fa
        }
    }

    /// The language a user keeps in the ledger, as a page's.
    pub fn of(language: clubswitch_engine::Language) -> Lang {
        match language {
            clubswitch_engine::Language::Persian => Lang::Fa,
            clubswitch_engine::Language::English => Lang::En,
        }
    }

    /// This language as the ledger keeps a user's choice.
    pub fn language(self) -> clubswitch_engine::Language {
        match self {
            Lang::Fa => clubswitch_engine::Language::Persian,
            Lang::En => clubswitch_engine::Language::English,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Fa => "fa",
            Lang::En => "en",
        }
    }

    pub fn dir(self) -> &'static str {
        match self {
            Lang::Fa => "rtl",
            Lang::En => "ltr",
        }
    }

    /// `s` with its ASCII digits written in this language's digits.
    pub fn digits(self, s: &str) -> String {
        match self {
            Lang::En => s.to_owned(),
            Lang::Fa => s
                .chars()
                .map(|c| match c.to_digit(10) {
                    Some(d) => char::from_u32(0x06F0 + d).unwrap_or(c),
                    None => c,
                })
                .collect(),
        }
    }

    /// A whole number with thousands separators: `12,500,000` or
    /// `۱۲٬۵۰۰٬۰۰۰`.
    pub fn number(self, n: i64) -> String {
        let digits = n.unsigned_abs().to_string();
        let sep = match self {
            Lang::Fa => '\u{066C}',
            Lang::En => ',',
        };
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
        if n < 0 {
            out.push('-');
        }
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(sep);
            }
            out.push(c);
        }
        self.digits(&out)
    }

    /// A local day (days since 1970-01-01): Jalali `1405/09/11` in
    /// Persian, ISO `2026-12-02` in English.
    pub fn date(self, day: i64) -> String {
        match (self, jalali_of_day(day)) {
            (Lang::Fa, Some((y, m, d))) => self.digits(&format!("{y:04}/{m:02}/{d:02}")),
            _ => clubswitch_engine::iso_date(day),
        }
    }

    /// A moment (Unix seconds) at `offset` seconds east of UTC: its date
    /// and hour and minute.
    pub fn time(self, unix: i64, offset: i64) -> String {
        let local = unix + offset;
        let (day, secs) = (local.div_euclid(86_400), local.rem_euclid(86_400));
        let hm = format!("{:02}:{:02}", secs / 3600, secs % 3600 / 60);
        format!("{} {}", self.date(day), self.digits(&hm))
    }
}
