//! The `reload:` URI (RFC 6940 §14.15) as it names a node in a certificate (§11.3).
//!
//! ```text
//! RELOAD-URI  = "reload://" destination "@" overlay "/" [specifier]
//! destination = 1*HEXDIG   ; a hex-encoded Destination List
//! ```
//!
//! §11.3 says each Node-ID in a certificate is a reload URI that "MUST contain a
//! Destination List with a single entry of type node_id". So the destination is the
//! hex of one `Destination` structure (§6.3.2.2): type `node` (01), length (10 for
//! 16-byte Node-IDs), then the Node-ID — `reload://0110<32 hex digits>@overlay/`.
//! That is what [`reload_uri`] writes. Some certificates in the wild (and our own
//! early samples) put the bare Node-ID there instead; [`parse_reload_uri`] accepts
//! both, and hex digits of either case.

use reload_wire::{Decode, Destination, NODE_ID_LEN, NodeId, hex};

use crate::error::TrustError;

/// A `reload:` URI that names a node: the Node-ID and the overlay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadUri {
    /// The node.
    pub node_id: NodeId,
    /// The overlay name, as written in the URI.
    pub overlay: String,
}

/// The reload URI of `node_id` in `overlay`, as an enrollment server puts it in the
/// subjectAltName (RFC 6940 §11.3, §14.15): `reload://0110<node id hex>@<overlay>/`.
pub fn reload_uri(node_id: &NodeId, overlay: &str) -> String {
    // 01 = DestinationType node, then the TLV length of the Node-ID (§6.3.2.2).
    format!(
        "reload://01{:02x}{}@{overlay}/",
        NODE_ID_LEN,
        hex::encode(node_id.as_bytes())
    )
}

/// Whether `uri` uses the `reload` scheme (case-insensitive, RFC 3986 §3.1).
pub fn is_reload_uri(uri: &str) -> bool {
    uri.get(..9).is_some_and(|s| s.eq_ignore_ascii_case("reload://"))
}

/// Parses a reload URI that names a node (RFC 6940 §14.15).
///
/// Accepts a Destination List of exactly one Node-ID entry, or a bare Node-ID (see
/// the module documentation), in hex of either case. Refuses a URI with a specifier
/// (it names a stored value, not a node), an empty or ill-formed overlay name, and
/// anything else.
pub fn parse_reload_uri(uri: &str) -> Result<ReloadUri, TrustError> {
    let bad = |why: &str| TrustError::Malformed(format!("reload URI {uri:?}: {why}"));
    if !is_reload_uri(uri) {
        return Err(bad("not a reload:// URI"));
    }
    let rest = &uri[9..];
    let (destination, rest) = rest
        .split_once('@')
        .ok_or_else(|| bad("no '@' after the destination"))?;
    let (overlay, specifier) = rest.split_once('/').ok_or_else(|| bad("no '/' after the overlay"))?;
    if !specifier.is_empty() {
        return Err(bad("has a specifier, so it names a stored value, not a node"));
    }
    if overlay.is_empty() || !overlay.bytes().all(is_reg_name_byte) {
        return Err(bad("the overlay is not a reg-name"));
    }
    if destination.is_empty() || !destination.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("the destination is not hex"));
    }
    let bytes = hex::decode(destination).ok_or_else(|| bad("the destination has an odd number of hex digits"))?;
    let node_id = if let Ok(id) = <[u8; NODE_ID_LEN]>::try_from(bytes.as_slice()) {
        NodeId(id)
    } else {
        match Destination::from_bytes(&bytes) {
            Ok(Destination::Node { node_id }) => node_id,
            Ok(_) => return Err(bad("the destination is not a single Node-ID")),
            Err(e) => return Err(bad(&format!("the destination list is not one Node-ID: {e}"))),
        }
    };
    Ok(ReloadUri {
        node_id,
        overlay: overlay.to_owned(),
    })
}

/// RFC 3986 reg-name: unreserved / pct-encoded / sub-delims.
fn is_reg_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: NodeId = NodeId([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);

    #[test]
    fn writes_a_destination_list_of_one_node() {
        assert_eq!(
            reload_uri(&N, "overlay.example.org"),
            "reload://0110000102030405060708090a0b0c0d0e0f@overlay.example.org/"
        );
    }

    #[test]
    fn round_trips_and_accepts_either_case_and_the_bare_form() {
        let want = ReloadUri {
            node_id: N,
            overlay: "overlay.example.org".into(),
        };
        assert_eq!(
            parse_reload_uri(&reload_uri(&N, "overlay.example.org")),
            Ok(want.clone())
        );
        assert_eq!(
            parse_reload_uri("RELOAD://0110000102030405060708090A0B0C0D0E0F@overlay.example.org/"),
            Ok(want.clone())
        );
        assert_eq!(
            parse_reload_uri("reload://000102030405060708090a0b0c0d0e0f@overlay.example.org/"),
            Ok(want)
        );
    }

    #[test]
    fn refuses_what_is_not_a_node_uri() {
        for bad in [
            "sip:alice@example.org",
            "reload://",
            "reload://0110@o/",
            "reload://zz@o/",
            "reload://000102030405060708090a0b0c0d0e0f@/",
            "reload://000102030405060708090a0b0c0d0e0f@o",
            "reload://000102030405060708090a0b0c0d0e0f@o/01",
            "reload://000102030405060708090a0b0c0d0e0f@o o/",
            "reload://000102030405060708090a0b0c0d0e0@o/",
            // A resource destination, not a node.
            "reload://0211100102030405060708090a0b0c0d0e0f10@o/",
            // Two node destinations.
            "reload://0110000102030405060708090a0b0c0d0e0f0110000102030405060708090a0b0c0d0e0f@o/",
            "reload://é@o/",
        ] {
            assert!(parse_reload_uri(bad).is_err(), "{bad}");
        }
    }
}
