//! Whatever arrives on a link, a node answers with the RFC's error or drops the
//! message and counts it; it never panics and keeps working.

use proptest::prelude::*;
use reload_core::{LinkId, Node, NodeConfig, StandInCrypto, Time};
use reload_wire::*;

fn overlay() -> OverlayHash {
    OverlayHash::from_overlay_name("hostile.example")
}

fn node() -> (Node, NodeId) {
    let me = NodeId([0x10; 16]);
    let peer = NodeId([0x90; 16]);
    let mut n = Node::new(NodeConfig::new(overlay(), me), Box::new(StandInCrypto::new(me)), 1);
    n.start(Time::ZERO, Vec::new(), true);
    n.handle_link_up(Time::ZERO, LinkId(1), peer, false);
    while n.poll_transmit().is_some() || n.poll_action().is_some() || n.poll_event().is_some() {}
    (n, peer)
}

/// A valid, signed Ping from `from` to `to`.
fn ping(from: NodeId, to: NodeId) -> Vec<u8> {
    ping_under(from, to, 0)
}

/// The same, made under configuration sequence `sequence`.
fn ping_under(from: NodeId, to: NodeId, sequence: u16) -> Vec<u8> {
    let mut header = ForwardingHeader::new(overlay(), TransactionId(7), vec![Destination::node(to)]);
    header.configuration_sequence = sequence;
    let body = MessageBody::PingReq(PingReq::default());
    reload_core::crypto::signed_message(&StandInCrypto::new(from), header, body, 5000).expect("encodes")
}

fn total_drops(n: &Node) -> u64 {
    let s = n.stats();
    s.dropped_malformed
        + s.dropped_incompatible
        + s.dropped_ttl
        + s.dropped_loop
        + s.dropped_no_route
        + s.dropped_bad_signature
        + s.dropped_unknown_link
        + s.dropped_unexpected_response
        + s.dropped_wrong_responder
        + s.dropped_reassembly
}

#[test]
fn a_valid_ping_is_answered() {
    let (mut n, peer) = node();
    n.handle_message(Time::ZERO, LinkId(1), &ping(peer, n.node_id()));
    let answer = n.poll_transmit().expect("an answer");
    let m = Message::decode(&answer.bytes, &WireConfig::default()).expect("decodes");
    assert!(matches!(m.contents.body, MessageBody::PingAns(_)));
    assert_eq!(m.header.destination_list, vec![Destination::node(peer)]);
}

#[test]
fn a_ttl_above_initial_ttl_gets_error_ttl_exceeded() {
    let (mut n, peer) = node();
    let mut bytes = ping(peer, n.node_id());
    bytes[11] = 101; // ttl
    n.handle_message(Time::ZERO, LinkId(1), &bytes);
    let answer = n.poll_transmit().expect("an error answer");
    let m = Message::decode(&answer.bytes, &WireConfig::default()).expect("decodes");
    match m.contents.body {
        MessageBody::Error(e) => assert_eq!(e.error_code, ErrorCode::TTL_EXCEEDED),
        other => panic!("expected Error_TTL_Exceeded, got {other:?}"),
    }
}

fn error_code_of_answer(n: &mut Node) -> ErrorCode {
    let answer = n.poll_transmit().expect("an answer");
    match Message::decode(&answer.bytes, &WireConfig::default())
        .expect("decodes")
        .contents
        .body
    {
        MessageBody::Error(e) => e.error_code,
        other => panic!("expected an Error, got {other:?}"),
    }
}

#[test]
fn requests_under_another_configuration_are_refused() {
    // §6.3.2.1; the node's own sequence is 0.
    let (mut n, peer) = node();
    n.handle_message(Time::ZERO, LinkId(1), &ping_under(peer, n.node_id(), 3));
    assert_eq!(error_code_of_answer(&mut n), ErrorCode::CONFIG_TOO_NEW);
    // 65000 is behind 0 modulo 2^16.
    n.handle_message(Time::ZERO, LinkId(1), &ping_under(peer, n.node_id(), 65000));
    assert_eq!(error_code_of_answer(&mut n), ErrorCode::CONFIG_TOO_OLD);
}

#[test]
fn a_request_from_another_overlay_gets_error_incompatible_with_overlay() {
    let (mut n, peer) = node();
    let mut bytes = ping(peer, n.node_id());
    bytes[4] ^= 0xff; // overlay hash
    n.handle_message(Time::ZERO, LinkId(1), &bytes);
    assert_eq!(error_code_of_answer(&mut n), ErrorCode::INCOMPATIBLE_WITH_OVERLAY);
    assert_eq!(n.stats().dropped_incompatible, 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_bytes_are_dropped_and_counted(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let (mut n, _) = node();
        let before = total_drops(&n) + n.stats().errors_sent + n.stats().requests_answered;
        n.handle_message(Time::ZERO, LinkId(1), &bytes);
        let after = total_drops(&n) + n.stats().errors_sent + n.stats().requests_answered;
        prop_assert!(after > before, "every message is answered, refused or counted as dropped");
    }

    #[test]
    fn mutated_messages_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
        let (mut n, peer) = node();
        let mut bytes = ping(peer, n.node_id());
        for (at, x) in flips {
            let i = at % bytes.len();
            bytes[i] ^= x;
        }
        bytes.truncate(cut % (bytes.len() + 1));
        n.handle_message(Time::ZERO, LinkId(1), &bytes);
        while n.poll_transmit().is_some() {}
        // And the node still answers a good ping afterwards.
        n.handle_message(Time::ZERO, LinkId(1), &ping(peer, n.node_id()));
        prop_assert!(n.poll_transmit().is_some());
    }
}
