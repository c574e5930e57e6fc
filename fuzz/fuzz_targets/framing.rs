//! Fuzzes the per-hop framing header (RFC 6940 §6.6.2) and the message inside a
//! data frame.
//!
//! Invariants: a frame that decodes re-encodes to exactly the input; `frame_len`
//! agrees with `from_bytes` on where a frame ends. Any panic is a codec bug.

#![no_main]

use libfuzzer_sys::fuzz_target;
use reload_wire::{Decode, Encode, FramedMessage, Message, WireConfig};

fuzz_target!(|data: &[u8]| {
    let frame_len = FramedMessage::frame_len(data);

    if let Ok(frame) = FramedMessage::from_bytes(data) {
        let bytes = frame.to_bytes().expect("a decoded frame encodes");
        assert_eq!(bytes, data, "to_bytes(from_bytes(b)) != b for {frame:?}");
        assert_eq!(
            frame_len.as_ref().ok().copied().flatten(),
            Some(data.len()),
            "frame_len disagrees with from_bytes"
        );

        if let FramedMessage::Data { message, .. } = &frame {
            let config = WireConfig {
                max_message_size: usize::MAX,
                ..Default::default()
            };
            if let Ok(msg) = Message::decode(message, &config) {
                let again = msg.encode().expect("a decoded message encodes");
                assert_eq!(&again, message, "inner message does not round-trip: {msg:?}");
            }
            let _ = Message::decode(message, &WireConfig::default());
        }
    }

    // Where frame_len says a whole frame is buffered, that prefix must decode as one
    // frame, as a stream transport will cut it there.
    if let Ok(Some(n)) = frame_len {
        if let Some(prefix) = data.get(..n) {
            let frame = FramedMessage::from_bytes(prefix);
            assert!(frame.is_ok(), "frame_len said {n} but from_bytes failed: {frame:?}");
        }
    }
});
