//! How long a text is as SMS: its encoding, length and the parts it is
//! sent in (what a gateway charges by).
//!
//! A text of only GSM 03.38 characters goes in the 7-bit alphabet: 160 in
//! one part, 153 per part when split (the rest is the header that joins
//! the parts); the characters of the extension table (`{ } [ ] ~ \ | ^ €`
//! and form feed) take two. Any other character, Persian letters and
//! digits among them, sends the whole text in UCS-2: 70 in one part, 67 per
//! part, counted in UTF-16 units (an emoji takes two).

use serde::Serialize;

/// The basic GSM 03.38 alphabet.
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table: each takes an escape and itself.
const GSM_EXTENDED: &str = "\u{000C}^{}\\[~]|€";

/// A text's size as SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Length {
    /// Characters as the encoding counts them (septets or UTF-16 units).
    pub units: usize,
    /// Parts it is sent in (0 for an empty text).
    pub parts: usize,
    /// Sent in UCS-2 (any character outside the GSM alphabet).
    pub unicode: bool,
}

impl Length {
    pub fn of(text: &str) -> Length {
        let septets = text.chars().try_fold(0usize, |n, c| {
            if GSM_BASIC.contains(c) {
                Some(n + 1)
            } else if GSM_EXTENDED.contains(c) {
                Some(n + 2)
            } else {
                None
            }
        });
        let (units, single, multi, unicode) = match septets {
            Some(n) => (n, 160, 153, false),
            None => (text.encode_utf16().count(), 70, 67, true),
        };
        let parts = match units {
            0 => 0,
            n if n <= single => 1,
            n => n.div_ceil(multi),
        };
        Length {
            units,
            parts,
            unicode,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Length;

    #[test]
    fn latin_text_is_gsm_with_160_in_one_part_and_153_per_part_after() {
        assert_eq!(Length::of("").parts, 0);
        let one = "a".repeat(160);
        assert_eq!(
            Length::of(&one),
            Length {
                units: 160,
                parts: 1,
                unicode: false
            }
        );
        assert_eq!(Length::of(&"a".repeat(161)).parts, 2);
        assert_eq!(Length::of(&"a".repeat(306)).parts, 2);
        assert_eq!(Length::of(&"a".repeat(307)).parts, 3);
        // The extension table takes two septets.
        assert_eq!(Length::of("{€}").units, 6);
    }

    #[test]
    fn persian_text_is_ucs2_with_70_in_one_part_and_67_per_part_after() {
        let one = "س".repeat(70);
        assert_eq!(
            Length::of(&one),
            Length {
                units: 70,
                parts: 1,
                unicode: true
            }
        );
        assert_eq!(Length::of(&"س".repeat(71)).parts, 2);
        assert_eq!(Length::of(&"س".repeat(134)).parts, 2);
        assert_eq!(Length::of(&"س".repeat(135)).parts, 3);
        // One Persian letter makes the whole text UCS-2.
        let mixed = format!("{}ب", "a".repeat(100));
        assert_eq!(Length::of(&mixed).parts, 2);
        // An emoji is two UTF-16 units.
        assert_eq!(Length::of("🎂").units, 2);
    }
}
