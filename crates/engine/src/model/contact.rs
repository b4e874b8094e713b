//! A member's contact data, checked at the door: a name that says who they
//! are, a phone number a message can reach, the language they read.
//!
//! Every way in (the admin API, the CLI through it, the console through
//! it) enrols and edits members through [`crate::admin::Admin`], which
//! checks with these; a record in the ledger therefore holds a name that is
//! not blank and a phone number that is either absent or one Iranian mobile
//! in one form, `09` and nine digits, so lookups and opt-outs by number find
//! it whichever way it was typed.

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// A language a person reads the switch's pages and messages in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Language {
    Persian,
    English,
}

/// Longest name kept, in characters (an SMS greeting quotes it).
pub const NAME_MAX: usize = 80;

/// `digit` as an ASCII digit, whether written in Latin, Persian (U+06F0..)
/// or Arabic-Indic (U+0660..) digits.
pub fn ascii_digit(c: char) -> Option<char> {
    match c {
        '0'..='9' => Some(c),
        '\u{06F0}'..='\u{06F9}' => char::from_digit(c as u32 - 0x06F0, 10),
        '\u{0660}'..='\u{0669}' => char::from_digit(c as u32 - 0x0660, 10),
        _ => None,
    }
}

/// A member's name, trimmed: refused when blank, longer than
/// [`NAME_MAX`] or holding control characters (a line break would split an
/// SMS or a CSV row).
pub fn person_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(EngineError::invalid("a member's name must not be empty"));
    }
    if name.chars().count() > NAME_MAX {
        return Err(EngineError::invalid(format!(
            "a member's name is at most {NAME_MAX} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(EngineError::invalid(
            "a member's name must not hold control characters",
        ));
    }
    Ok(name.to_owned())
}

/// A phone number reduced to digits for looking it up (a partial one
/// too, unlike [`mobile`]): digits only (Persian and
/// Arabic-Indic digits read as theirs), and the Iranian international
/// prefixes (`+98`, `0098`) written as the national `0`.
pub fn normal_phone(phone: &str) -> String {
    let digits: String = phone.chars().filter_map(ascii_digit).collect();
    if let Some(rest) = digits.strip_prefix("0098") {
        format!("0{rest}")
    } else if let (Some(rest), true) = (digits.strip_prefix("98"), digits.len() == 12) {
        format!("0{rest}")
    } else {
        digits
    }
}

/// An Iranian mobile number in its one stored form, `09` and nine digits,
/// from any of the forms people type: `0912 123 4567`, `+98 912 123 4567`,
/// `00989121234567`, `9121234567`, in Latin or Persian digits, with spaces,
/// dashes, dots or brackets. Anything else (letters, a landline, too few or
/// too many digits) is refused with a message saying what is expected.
pub fn mobile(phone: &str) -> Result<String> {
    let bad = || {
        EngineError::invalid(format!(
            "not an Iranian mobile number (09xxxxxxxxx, +989xxxxxxxxx or 00989xxxxxxxxx): {:?}",
            phone.trim()
        ))
    };
    let mut digits = String::with_capacity(14);
    for (i, c) in phone.trim().chars().enumerate() {
        match (ascii_digit(c), c) {
            (Some(d), _) => digits.push(d),
            (None, '+') if i == 0 => {}
            (None, ' ' | '-' | '.' | '(' | ')' | '\u{200C}') => {}
            _ => return Err(bad()),
        }
    }
    let national = if let Some(rest) = digits.strip_prefix("0098") {
        rest
    } else if let (Some(rest), 12) = (digits.strip_prefix("98"), digits.len()) {
        rest
    } else if let Some(rest) = digits.strip_prefix('0') {
        rest
    } else {
        digits.as_str()
    };
    if national.len() == 10 && national.starts_with('9') {
        Ok(format!("0{national}"))
    } else {
        Err(bad())
    }
}

/// A phone number as a member record keeps it: empty (a card handed out
/// before its holder gave a number; such a member gets no messages) or a
/// mobile in its one form.
pub fn optional_mobile(phone: &str) -> Result<String> {
    if phone.trim().is_empty() {
        Ok(String::new())
    } else {
        mobile(phone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_way_of_typing_a_mobile_number_keeps_one_form() {
        for typed in [
            "09121234567",
            "0912 123 4567",
            "+989121234567",
            "+98 912 123-4567",
            "00989121234567",
            "989121234567",
            "9121234567",
            "۰۹۱۲۱۲۳۴۵۶۷",
            "+۹۸۹۱۲۱۲۳۴۵۶۷",
            "(0912) 123.4567",
        ] {
            assert_eq!(mobile(typed).unwrap(), "09121234567", "{typed}");
        }
    }

    #[test]
    fn letters_landlines_and_wrong_lengths_are_not_mobile_numbers() {
        for typed in [
            "abc",
            "",
            "0912123456",
            "091212345678",
            "02188776655",
            "+442071234567",
            "0912-123-456x",
            "09+121234567",
        ] {
            let e = mobile(typed).unwrap_err().to_string();
            assert!(e.contains("not an Iranian mobile number"), "{typed}: {e}");
        }
        assert_eq!(optional_mobile("  ").unwrap(), "");
        assert!(optional_mobile("abc").is_err());
    }

    #[test]
    fn a_name_is_trimmed_and_never_blank_or_broken_across_lines() {
        assert_eq!(person_name("  سارا احمدی ").unwrap(), "سارا احمدی");
        assert!(person_name("").is_err());
        assert!(person_name(" \t ").is_err());
        assert!(person_name("Sara\nX").is_err());
        assert!(person_name(&"a".repeat(NAME_MAX + 1)).is_err());
        assert!(person_name(&"ب".repeat(NAME_MAX)).is_ok());
    }
}
