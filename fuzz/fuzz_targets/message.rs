//! Fuzzes whole-message decoding (RFC 6940 §6.3): forwarding header, contents with
//! every typed body, and the security block.
//!
//! Invariant: whatever `Message::decode` accepts re-encodes to exactly the input,
//! and the re-encoding decodes to an equal `Message`. Any panic is a codec bug.

#![no_main]

use libfuzzer_sys::fuzz_target;
use reload_wire::{Message, WireConfig};

fuzz_target!(|data: &[u8]| {
    let unlimited = WireConfig {
        max_message_size: usize::MAX,
        ..Default::default()
    };
    if let Ok(msg) = Message::decode(data, &unlimited) {
        let bytes = msg.encode().expect("a decoded message encodes");
        assert_eq!(bytes, data, "encode(decode(b)) != b for {msg:?}");
        let again = Message::decode(&bytes, &unlimited).expect("a re-encoded message decodes");
        assert_eq!(again, msg);
    }

    // Default config: the 5000-byte max-message-size must refuse larger input cleanly.
    let limited = WireConfig::default();
    let result = Message::decode(data, &limited);
    if data.len() > limited.max_message_size {
        assert!(
            result.is_err(),
            "a {}-byte message passed the 5000-byte limit",
            data.len()
        );
    }
});
