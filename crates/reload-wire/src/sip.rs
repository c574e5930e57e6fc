//! The wire side of the SIP usage (RFC 7904): the SIP-REGISTRATION value
//! ([`SipRegistration`], §3.2, defined with the other Kinds' values in
//! [`crate::kinds`]), how to build and read it, and the destination list a GRUU
//! carries in its `gr` parameter (§6).
//!
//! A `SipRegistration` is `type || uint16 length || data`: the length lets a
//! reader skip a registration type it does not know (kept as
//! [`SipRegistration::Unknown`]), so a new type stored by a newer node never makes
//! a Fetch answer unreadable.

use crate::codec::{Decode, Encode, Reader, Writer};
use crate::codes::SipRegistrationType;
use crate::error::{DecodeError, EncodeError};
use crate::forwarding::Destination;
use crate::ids::NodeId;

pub use crate::codes::ApplicationId;
pub use crate::kinds::SipRegistration;

/// Application-ID of a SIP connection opened with AppAttach (RFC 7904 §5.1).
pub const APPLICATION_SIP: ApplicationId = ApplicationId::SIP;
/// Application-ID of a SIPS connection opened with AppAttach (RFC 7904 §5.1).
pub const APPLICATION_SIPS: ApplicationId = ApplicationId::SIPS;

impl SipRegistration {
    /// `sip_registration_uri` (RFC 7904 §3.1, second mapping): "to reach me,
    /// dereference this AOR".
    pub fn uri(aor: impl Into<Vec<u8>>) -> Self {
        SipRegistration::Uri { uri: aor.into() }
    }

    /// `sip_registration_route` (RFC 7904 §3.1, first mapping): "to reach me, form a
    /// connection along this destination list".
    pub fn route(contact_prefs: impl Into<Vec<u8>>, destination_list: Vec<Destination>) -> Self {
        SipRegistration::Route {
            contact_prefs: contact_prefs.into(),
            destination_list,
        }
    }

    /// A route to one node: the trivial destination list `[node]` (RFC 7904 §3.1).
    pub fn route_to_node(contact_prefs: impl Into<Vec<u8>>, node: NodeId) -> Self {
        Self::route(contact_prefs, vec![Destination::node(node)])
    }

    /// The registration's type code (§3.2).
    pub fn registration_type(&self) -> SipRegistrationType {
        match self {
            SipRegistration::Uri { .. } => SipRegistrationType::URI,
            SipRegistration::Route { .. } => SipRegistrationType::ROUTE,
            SipRegistration::Unknown { registration_type, .. } => *registration_type,
        }
    }
}

/// The bytes of a destination list as a GRUU embeds it (RFC 7904 §6): the
/// `Destination` structures one after the other, without a length prefix (the
/// URI parameter delimits them). The list must not be empty.
pub fn encode_destination_list(list: &[Destination]) -> Result<Vec<u8>, EncodeError> {
    if list.is_empty() {
        return Err(EncodeError::invalid(
            "destination_list",
            "a GRUU names at least one destination",
        ));
    }
    let mut w = Writer::new();
    for d in list {
        d.encode(&mut w)?;
    }
    Ok(w.into_vec())
}

/// Reads the destination list [`encode_destination_list`] wrote: every byte must
/// belong to a `Destination`, and there must be at least one.
pub fn decode_destination_list(bytes: &[u8]) -> Result<Vec<Destination>, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::invalid("destination_list", 0, "at least one destination"));
    }
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    while !r.is_empty() {
        // Each Destination takes at least two bytes, so this ends.
        out.push(Destination::decode(&mut r)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ResourceId;
    use proptest::prelude::*;

    fn alice() -> NodeId {
        NodeId([0xa1; 16])
    }

    #[test]
    fn a_route_to_one_node_is_byte_exact() {
        let reg = SipRegistration::route_to_node(&b"(sip.schemes=SIPS)"[..], alice());
        let bytes = reg.to_bytes().expect("encodes");
        let mut expected = vec![2u8]; // sip_registration_route
        let prefs = b"(sip.schemes=SIPS)";
        let dest_len = 2 + 16; // type, length, Node-ID
        let body_len = 2 + prefs.len() + 2 + dest_len;
        expected.extend_from_slice(&(body_len as u16).to_be_bytes());
        expected.extend_from_slice(&(prefs.len() as u16).to_be_bytes());
        expected.extend_from_slice(prefs);
        expected.extend_from_slice(&(dest_len as u16).to_be_bytes());
        expected.extend_from_slice(&[1, 16]); // node, 16 bytes
        expected.extend_from_slice(&alice().0);
        assert_eq!(bytes, expected);
        assert_eq!(SipRegistration::from_bytes(&bytes).expect("decodes"), reg);
        assert_eq!(reg.registration_type(), SipRegistrationType::ROUTE);
    }

    #[test]
    fn a_uri_is_type_1_with_its_length() {
        let reg = SipRegistration::uri("sam@example.com");
        let bytes = reg.to_bytes().expect("encodes");
        assert_eq!(&bytes[..5], &[1, 0, 17, 0, 15]);
        assert_eq!(&bytes[5..], b"sam@example.com");
        assert_eq!(SipRegistration::from_bytes(&bytes).expect("decodes"), reg);
    }

    #[test]
    fn an_unknown_type_is_skipped_by_its_length_and_kept() {
        // Type 9, 3 bytes of data, then another value after it in the same buffer.
        let bytes = [9u8, 0, 3, 0xde, 0xad, 0xbe, 0xff];
        let mut r = Reader::new(&bytes);
        let reg = SipRegistration::decode(&mut r).expect("decodes");
        assert_eq!(
            reg,
            SipRegistration::Unknown {
                registration_type: SipRegistrationType(9),
                data: vec![0xde, 0xad, 0xbe],
            }
        );
        assert_eq!(r.rest(), &[0xff]);
        assert_eq!(reg.to_bytes().expect("encodes"), bytes[..6].to_vec());
    }

    #[test]
    fn a_route_needs_a_destination() {
        // RFC 7904 §3.2: destination_list<3..2^16-1>.
        assert!(SipRegistration::route(Vec::new(), Vec::new()).to_bytes().is_err());
        let empty_list = [2u8, 0, 4, 0, 0, 0, 0];
        assert!(SipRegistration::from_bytes(&empty_list).is_err());
    }

    #[test]
    fn type_0_and_short_lengths_are_errors() {
        assert!(SipRegistration::from_bytes(&[0, 0, 0]).is_err());
        assert!(
            SipRegistration::from_bytes(&[1, 0, 9, 0, 1]).is_err(),
            "length past the end"
        );
        assert!(
            SipRegistration::from_bytes(&[1, 0, 3, 0, 2, b'a']).is_err(),
            "uri past its length"
        );
        assert!(
            SipRegistration::from_bytes(&[1, 0, 3, 0, 0, b'a']).is_err(),
            "bytes left in the data"
        );
    }

    #[test]
    fn a_gruu_destination_list_round_trips() {
        let list = vec![
            Destination::node(alice()),
            Destination::resource(ResourceId::new(vec![7; 16]).expect("short")),
        ];
        let bytes = encode_destination_list(&list).expect("encodes");
        assert_eq!(&bytes[..2], &[1, 16]);
        assert_eq!(decode_destination_list(&bytes).expect("decodes"), list);
        assert!(encode_destination_list(&[]).is_err());
        assert!(decode_destination_list(&[]).is_err());
        assert!(decode_destination_list(&bytes[..bytes.len() - 1]).is_err());
    }

    fn destination() -> impl Strategy<Value = Destination> {
        prop_oneof![
            any::<[u8; 16]>().prop_map(|b| Destination::node(NodeId(b))),
            proptest::collection::vec(any::<u8>(), 0..40)
                .prop_map(|b| Destination::resource(ResourceId::new(b).expect("short"))),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(|opaque_id| Destination::OpaqueId { opaque_id }),
            (0x8000u16..=0xffff).prop_map(|id| Destination::Compressed { id }),
        ]
    }

    fn registration() -> impl Strategy<Value = SipRegistration> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..64);
        prop_oneof![
            bytes().prop_map(SipRegistration::uri),
            // A Node-ID destination first makes the list at least 3 bytes (§3.2).
            (
                bytes(),
                any::<[u8; 16]>(),
                proptest::collection::vec(destination(), 0..4)
            )
                .prop_map(|(prefs, first, mut rest)| {
                    rest.insert(0, Destination::node(NodeId(first)));
                    SipRegistration::route(prefs, rest)
                }),
            (3u8..=255, bytes()).prop_map(|(t, data)| SipRegistration::Unknown {
                registration_type: SipRegistrationType(t),
                data,
            }),
        ]
    }

    proptest! {
        #[test]
        fn registrations_round_trip(reg in registration()) {
            let bytes = reg.to_bytes().expect("encodes");
            prop_assert_eq!(SipRegistration::from_bytes(&bytes).expect("decodes"), reg);
        }

        #[test]
        fn destination_lists_round_trip(list in proptest::collection::vec(destination(), 1..6)) {
            let bytes = encode_destination_list(&list).expect("encodes");
            prop_assert_eq!(decode_destination_list(&bytes).expect("decodes"), list);
        }

        #[test]
        fn any_bytes_decode_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(reg) = SipRegistration::from_bytes(&bytes) {
                // What decodes encodes back to the same bytes.
                prop_assert_eq!(reg.to_bytes().expect("re-encodes"), bytes.clone());
            }
            let _ = decode_destination_list(&bytes);
        }
    }
}
