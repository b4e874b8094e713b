#![no_main]
//! Decodes arbitrary bytes as a message; whatever decodes must re-encode to
//! the same bytes (unless it carried an empty secondary bitmap, which is
//! accepted, as pyiso8583 accepts it, but never sent) and decode to the same
//! message.

use bytes::Bytes;
use clubswitch_wire::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = Bytes::copy_from_slice(data);
    match decode(&raw) {
        Ok(msg) => {
            let again = encode(&msg);
            let sent_secondary = data[4] & 0x80 != 0;
            if sent_secondary == msg.has_secondary_bitmap() {
                assert_eq!(&again[..], data, "re-encoding differs");
            }
            assert_eq!(decode(&again.freeze()).ok(), Some(msg));
        }
        Err(e) => assert!(e.offset <= data.len()),
    }
});
