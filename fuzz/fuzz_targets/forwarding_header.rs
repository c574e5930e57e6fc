//! Fuzzes the forwarding header decoder (RFC 6940 §6.3.2) and `RawMessage::split`.
//!
//! Invariant: whatever `ForwardingHeader::decode` accepts, `ForwardingHeader::encode`
//! (with the declared `length`) writes back byte for byte, so a forwarding peer can
//! re-emit a header it has parsed without changing it. Any panic is a codec bug.

#![no_main]

use libfuzzer_sys::fuzz_target;
use reload_wire::{ForwardingHeader, RawMessage, Reader, Writer};

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    if let Ok((header, length)) = ForwardingHeader::decode(&mut r) {
        let consumed = &data[..data.len() - r.remaining()];
        let mut w = Writer::new();
        header.encode(&mut w, length).expect("a decoded header encodes");
        assert_eq!(w.as_slice(), consumed, "encode(decode(b)) != b for {header:?}");
        assert_eq!(header.encoded_len().expect("a decoded header encodes"), consumed.len());
    }

    if let Ok(raw) = RawMessage::split(data, usize::MAX) {
        // split checked that the declared length equals data.len(), so it fits a u32.
        let length = u32::try_from(data.len()).expect("declared length is a u32");
        let mut w = Writer::new();
        raw.header.encode(&mut w, length).expect("a decoded header encodes");
        assert_eq!(w.as_slice(), &data[..data.len() - raw.payload.len()]);
        // A whole message's payload splits at the contents/security boundary, or fails cleanly.
        if let Ok((contents, security)) = raw.contents_and_security() {
            assert_eq!(contents.len() + security.len(), raw.payload.len());
        }
    }
    // The default size limit (5000 bytes) must refuse cleanly, never panic.
    let _ = RawMessage::split(data, 5000);
});
