#![no_main]
//! Decodes arbitrary bytes as a message; whatever decodes must re-encode to
//! the same bytes and decode to the same message.

use bytes::Bytes;
use clubswitch_wire::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = Bytes::copy_from_slice(data);
    match decode(&raw) {
        Ok(msg) => {
            let again = encode(&msg);
            assert_eq!(&again[..], data, "re-encoding differs");
            assert_eq!(decode(&again.freeze()).ok(), Some(msg));
        }
        Err(e) => assert!(e.offset <= data.len()),
    }
});
