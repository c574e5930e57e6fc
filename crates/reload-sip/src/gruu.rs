//! GRUUs in a RELOAD overlay (RFC 7904 §6): a Globally Routable User Agent URI
//! names one node directly by embedding a destination list in the URI's `gr`
//! parameter, so reaching it needs no Fetch.
//!
//! The parameter is the base64 encoding (RFC 4648 Table 1, the standard
//! alphabet) of the destination list, with `~` in place of the padding `=` (which
//! would end a URI parameter). The destination list is the `Destination`
//! structures one after the other with no length prefix
//! ([`reload_wire::sip::encode_destination_list`]): RFC 7904 does not say whether
//! a prefix is included, and the parameter delimits the bytes already.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reload_wire::sip::{decode_destination_list, encode_destination_list};
use reload_wire::{Destination, NodeId};

/// Why a `gr` parameter could not be made or read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GruuError {
    /// The parameter is not base64 (with `~` for `=`).
    #[error("the gr parameter is not base64: {0}")]
    Base64(String),
    /// The bytes are not a destination list.
    #[error("the gr parameter is not a RELOAD destination list: {0}")]
    DestinationList(String),
    /// The URI has no `gr` parameter, or an empty one.
    #[error("not a RELOAD GRUU: no gr parameter")]
    NotAGruu,
}

/// The `gr` parameter for a destination list of Node-IDs (RFC 7904 §6); for the
/// usual GRUU, the one Node-ID of the node the user agent runs on.
pub fn gruu_param(nodes: &[NodeId]) -> String {
    let list: Vec<Destination> = nodes.iter().copied().map(Destination::node).collect();
    // Node-ID destinations always encode; an empty list gives an empty parameter.
    gruu_param_for(&list).unwrap_or_default()
}

/// The `gr` parameter for any destination list (RFC 7904 §6). Fails for an empty
/// list or a destination that does not encode.
pub fn gruu_param_for(list: &[Destination]) -> Result<String, GruuError> {
    let bytes = encode_destination_list(list).map_err(|e| GruuError::DestinationList(e.to_string()))?;
    Ok(STANDARD.encode(bytes).replace('=', "~"))
}

/// Reads a `gr` parameter back into its destination list (RFC 7904 §6). `=` is
/// accepted in place of `~` too.
pub fn parse_gruu_param(param: &str) -> Result<Vec<Destination>, GruuError> {
    if param.is_empty() {
        return Err(GruuError::NotAGruu);
    }
    let bytes = STANDARD
        .decode(param.replace('~', "="))
        .map_err(|e| GruuError::Base64(e.to_string()))?;
    decode_destination_list(&bytes).map_err(|e| GruuError::DestinationList(e.to_string()))
}

/// A GRUU for `aor` (`alice@example.com`, no scheme) at the node(s) `nodes`:
/// `sip:alice@example.com;gr=...` (RFC 7904 §6).
pub fn gruu_uri(aor: &str, nodes: &[NodeId]) -> String {
    format!("sip:{aor};gr={}", gruu_param(nodes))
}

/// The destination list of a URI's `gr` parameter, if the URI has one: `None`
/// for a URI that is not a GRUU (RFC 7904 §4.1, "AOR is a GRUU?"). Accepts a URI
/// in angle brackets and with other parameters around `gr`.
pub fn gruu_destinations(uri: &str) -> Option<Result<Vec<Destination>, GruuError>> {
    let uri = uri.trim();
    let uri = match (uri.find('<'), uri.rfind('>')) {
        (Some(start), Some(end)) if start < end => &uri[start + 1..end],
        _ => uri,
    };
    // Parameters follow the host part, after the '@' (a user part may hold ';').
    let after_user = uri.rfind('@').map_or(uri, |at| &uri[at + 1..]);
    let params = after_user.split('?').next().unwrap_or_default();
    params.split(';').skip(1).find_map(|p| {
        let (name, value) = p.split_once('=').unwrap_or((p, ""));
        name.trim()
            .eq_ignore_ascii_case("gr")
            .then(|| parse_gruu_param(value.trim()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gruu_round_trips_with_tilde_padding() {
        let node = NodeId([0x42; 16]);
        let param = gruu_param(&[node]);
        // 18 bytes (type, length, 16-byte Node-ID) are 24 base64 characters, no padding.
        assert_eq!(param, STANDARD.encode([[1u8, 16].as_slice(), &[0x42; 16]].concat()));
        assert_eq!(parse_gruu_param(&param), Ok(vec![Destination::node(node)]));

        // A Node-ID and a 2-byte Resource-ID: 23 bytes, so one padding character.
        let list = vec![
            Destination::node(node),
            Destination::resource(reload_wire::ResourceId::new(vec![1, 2]).expect("short")),
        ];
        let param = gruu_param_for(&list).expect("encodes");
        assert!(param.ends_with('~') && !param.contains('='), "{param}");
        assert_eq!(parse_gruu_param(&param), Ok(list.clone()));
        assert_eq!(parse_gruu_param(&param.replace('~', "=")), Ok(list));
    }

    #[test]
    fn a_gruu_uri_names_its_node() {
        let node = NodeId([7; 16]);
        let uri = gruu_uri("alice@example.com", &[node]);
        assert!(uri.starts_with("sip:alice@example.com;gr="), "{uri}");
        assert_eq!(gruu_destinations(&uri), Some(Ok(vec![Destination::node(node)])));
        let bracketed = format!("\"Alice\" <{uri};transport=tls>;expires=60");
        assert_eq!(gruu_destinations(&bracketed), Some(Ok(vec![Destination::node(node)])));
        assert_eq!(gruu_destinations("sip:alice@example.com;transport=tls"), None);
        assert_eq!(
            gruu_destinations("sip:alice@example.com;gr"),
            Some(Err(GruuError::NotAGruu))
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(matches!(parse_gruu_param("!!!"), Err(GruuError::Base64(_))));
        // RFC 7904's own example decodes ("0123456789012345678") but is no destination list.
        assert!(matches!(
            parse_gruu_param("MDEyMzQ1Njc4OTAxMjM0NTY3ODk~"),
            Err(GruuError::DestinationList(_))
        ));
        assert_eq!(parse_gruu_param(""), Err(GruuError::NotAGruu));
        assert_eq!(gruu_param(&[]), "");
    }

    proptest::proptest! {
        #[test]
        fn node_lists_round_trip(ids in proptest::collection::vec(proptest::prelude::any::<[u8; 16]>(), 1..5)) {
            let nodes: Vec<NodeId> = ids.into_iter().map(NodeId).collect();
            let expected: Vec<Destination> = nodes.iter().copied().map(Destination::node).collect();
            proptest::prop_assert_eq!(parse_gruu_param(&gruu_param(&nodes)), Ok(expected));
        }

        #[test]
        fn any_text_parses_or_fails_without_panicking(s in "\\PC{0,80}") {
            let _ = parse_gruu_param(&s);
            let _ = gruu_destinations(&s);
        }
    }
}
