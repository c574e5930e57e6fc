//! Lower-case hex, for identifiers and opaque bytes in human and JSON output.

use serde::Serializer;

/// Hex-encodes bytes.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// Decodes hex (either case, whitespace ignored); `None` on any other character or
/// an odd number of digits.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| (b as char).to_digit(16).map(|d| d as u8))
        .collect::<Option<_>>()?;
    if digits.len() % 2 != 0 {
        return None;
    }
    Some(digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect())
}

/// `serialize_with` helper: opaque bytes as a hex string.
pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&encode(bytes))
}

/// `serialize_with` helper for fields that are text by convention (ICE ufrag, SIP
/// URIs, error_info): the UTF-8 string if it is printable, else `hex:` and the bytes.
pub fn serialize_text<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    match std::str::from_utf8(bytes) {
        Ok(t) if !t.chars().any(char::is_control) => s.serialize_str(t),
        _ => s.serialize_str(&format!("hex:{}", encode(bytes))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        assert_eq!(super::encode(&[0x00, 0xab, 0x7f]), "00ab7f");
        assert_eq!(super::decode("00 AB 7f"), Some(vec![0x00, 0xab, 0x7f]));
        assert_eq!(super::decode("0"), None);
        assert_eq!(super::decode("zz"), None);
    }
}
