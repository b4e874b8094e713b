//! Fixed-width decimal digits, the profile's `n` fields: parsing them to a
//! number and writing a number as them, for the numeric value types.

use crate::error::{invalid, FieldError};

pub(super) fn digits<const N: usize>(field: u8, raw: &[u8]) -> Result<u64, FieldError> {
    if raw.len() != N || !raw.iter().all(u8::is_ascii_digit) {
        return Err(invalid(field, "not all digits"));
    }
    Ok(raw
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')))
}

pub(super) fn write_digits<const N: usize>(mut v: u64) -> [u8; N] {
    let mut out = [b'0'; N];
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out
}
