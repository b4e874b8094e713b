//! The field layout of the profile: pyiso8583's `default` spec, data element by
//! data element.

mod table;

/// How a field's bytes are carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// ASCII text; every byte is below 0x80.
    Ascii,
    /// Raw bytes.
    Binary,
}

/// How a field's length is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// Exactly this many bytes, no prefix.
    Fixed(u16),
    /// A 2-ASCII-digit length prefix, then up to this many bytes.
    LlVar(u16),
    /// A 3-ASCII-digit length prefix, then up to this many bytes.
    LllVar(u16),
}

impl Length {
    /// Width of the length prefix in bytes.
    pub const fn prefix_len(self) -> usize {
        match self {
            Length::Fixed(_) => 0,
            Length::LlVar(_) => 2,
            Length::LllVar(_) => 3,
        }
    }

    /// Largest number of data bytes the field can carry.
    pub const fn max(self) -> usize {
        match self {
            Length::Fixed(n) | Length::LlVar(n) | Length::LllVar(n) => n as usize,
        }
    }
}

/// The layout of one data element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    pub number: u8,
    pub name: &'static str,
    pub encoding: Encoding,
    pub length: Length,
}

/// Highest data element number of the profile.
pub const MAX_FIELD: u8 = 128;

/// The layout of data element `number`, for 2..=128 except 65 (which the
/// `default` spec reserves as the tertiary-bitmap indicator).
pub fn field(number: u8) -> Option<&'static FieldSpec> {
    if is_data_element(number) {
        table::TABLE.get(usize::from(number))
    } else {
        None
    }
}

/// Whether `number` names a data element that can carry data.
pub const fn is_data_element(number: u8) -> bool {
    number >= 2 && number <= MAX_FIELD && number != 65
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_indexed_by_field_number() {
        for (i, spec) in table::TABLE.iter().enumerate() {
            assert_eq!(usize::from(spec.number), i);
        }
    }

    #[test]
    fn profile_fields_have_the_profile_layout() {
        let expect = [
            (3, Encoding::Ascii, Length::Fixed(6)),
            (4, Encoding::Ascii, Length::Fixed(12)),
            (7, Encoding::Ascii, Length::Fixed(10)),
            (11, Encoding::Ascii, Length::Fixed(6)),
            (37, Encoding::Ascii, Length::Fixed(12)),
            (41, Encoding::Ascii, Length::Fixed(8)),
            (42, Encoding::Ascii, Length::Fixed(15)),
            (54, Encoding::Ascii, Length::LllVar(240)),
            (64, Encoding::Binary, Length::Fixed(8)),
            (90, Encoding::Ascii, Length::Fixed(42)),
            (120, Encoding::Ascii, Length::LllVar(999)),
            (128, Encoding::Binary, Length::Fixed(8)),
        ];
        for (n, enc, len) in expect {
            let spec = field(n).unwrap();
            assert_eq!((spec.encoding, spec.length), (enc, len), "DE {n}");
        }
    }

    #[test]
    fn bitmaps_are_not_data_elements() {
        assert!(field(0).is_none());
        assert!(field(1).is_none());
        assert!(field(65).is_none());
        assert!(field(129).is_none());
    }
}
