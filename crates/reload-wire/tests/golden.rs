//! Golden byte vectors, written by hand from the structure definitions of RFC 6940
//! and RFC 7904, at least one per method. Each vector must decode to the expected
//! value, and the value must encode to exactly the vector.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use reload_wire::*;

/// Parses the hex of a vector; spaces and line breaks are ignored.
fn bytes(hex_text: &str) -> Vec<u8> {
    hex::decode(hex_text).expect("golden vectors are valid hex")
}

const N1: NodeId = NodeId([0x11; 16]);
const N2: NodeId = NodeId([0x22; 16]);
const N1_HEX: &str = "11111111111111111111111111111111";
const N2_HEX: &str = "22222222222222222222222222222222";

/// Checks a message body both ways under `code`.
fn body(code: MessageCode, hex_text: &str, expected: MessageBody) {
    let wire = bytes(hex_text);
    let decoded = MessageBody::decode(code, &wire, &DataModels::registered())
        .unwrap_or_else(|e| panic!("{code:?} golden vector does not decode: {e}"));
    assert_eq!(decoded, expected, "{code:?} decodes to the wrong value");
    assert_eq!(decoded.code(), code);
    let mut w = Writer::new();
    expected.encode_body(&mut w).expect("encodes");
    assert_eq!(
        hex::encode(w.as_slice()),
        hex::encode(&wire),
        "{code:?} encodes to other bytes"
    );
}

/// Checks a context-free structure both ways.
fn structure<T: Encode + Decode + PartialEq + std::fmt::Debug>(hex_text: &str, expected: T) {
    let wire = bytes(hex_text);
    assert_eq!(T::from_bytes(&wire).expect("decodes"), expected);
    assert_eq!(hex::encode(&expected.to_bytes().expect("encodes")), hex::encode(&wire));
}

fn sig() -> (&'static str, Signature) {
    (
        concat!(
            "04 03",       // SignatureAndHashAlgorithm: sha256(4), ecdsa(3)
            "01 0004",     // SignerIdentity: cert_hash(1), length 4
            "04 02 abcd",  //   hash_alg sha256, certificate_hash<0..2^8-1> = abcd
            "0003 010203", // signature_value<0..2^16-1>
        ),
        Signature {
            algorithm: SignatureAndHashAlgorithm::ECDSA_SHA256,
            identity: SignerIdentity::CertHash {
                hash_alg: HashAlgorithm::SHA256,
                certificate_hash: vec![0xab, 0xcd],
            },
            signature_value: vec![1, 2, 3],
        },
    )
}

#[test]
fn ip_address_port_example_of_section_6_3_1_1() {
    // RFC 6940 §6.3.1.1 gives this exact encoding of 192.0.2.1 port 6084.
    structure(
        "01 06 c0000201 17c4",
        IpAddressPort::Socket(SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 6084))),
    );
    structure(
        "02 12 20010db8000000000000000000000001 13c4",
        IpAddressPort::Socket(SocketAddr::from((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 5060))),
    );
}

#[test]
fn resource_id_example_of_section_6_3_1_1() {
    // "the 3-byte value "FOO" would be encoded as: 03 46 4f 4f"
    structure("03 464f4f", ResourceId::new(b"FOO".to_vec()).expect("short"));
}

#[test]
fn destinations_of_section_6_3_2_2() {
    structure(&format!("01 10 {N1_HEX}"), Destination::node(N1));
    // The TLV length covers the Resource-ID's own length byte.
    structure(
        "02 04 03 aabbcc",
        Destination::resource(ResourceId::new(vec![0xaa, 0xbb, 0xcc]).expect("short")),
    );
    structure(
        "03 03 02 beef",
        Destination::OpaqueId {
            opaque_id: vec![0xbe, 0xef],
        },
    );
    // The 16-bit compressed form: top bit set, no type or length.
    structure("8123", Destination::Compressed { id: 0x8123 });
}

#[test]
fn forwarding_header_and_whole_message() {
    let (sig_hex, signature) = sig();
    let wire = bytes(&format!(
        "{}{}{}",
        concat!(
            "d2454c4f",         // relo_token
            "a1b2c3d4",         // overlay
            "0007",             // configuration_sequence
            "0a",               // version 1.0
            "64",               // ttl 100
            "c0000000",         // fragment: last, offset 0
            "00000056",         // length: 86 bytes in all
            "0102030405060708", // transaction_id
            "00000000",         // max_response_length
            "0000",             // via_list_length
            "0012",             // destination_list_length 18
            "0000",             // options_length
        ),
        format_args!("01 10 {N2_HEX}"), // destination: node N2
        format_args!(
            "{}{}",
            concat!(
                "0017",      // message_code ping_req
                "00000004",  // message_body length
                "0002 0000", // PingReq.padding<0..2^16-1> = 0000
                "00000000",  // extensions: none
                "0000",      // certificates: none
            ),
            sig_hex
        ),
    ));
    assert_eq!(wire.len(), 0x56);
    let mut header = ForwardingHeader::new(
        OverlayHash(0xa1b2_c3d4),
        TransactionId(0x0102_0304_0506_0708),
        vec![Destination::node(N2)],
    );
    header.configuration_sequence = 7;
    let expected = Message {
        header,
        contents: MessageContents::new(MessageBody::PingReq(PingReq { padding: vec![0, 0] })),
        security: SecurityBlock {
            certificates: Vec::new(),
            signature,
        },
    };
    assert_eq!(
        Message::decode(&wire, &WireConfig::default()).expect("decodes"),
        expected
    );
    assert_eq!(hex::encode(&expected.encode().expect("encodes")), hex::encode(&wire));
}

#[test]
fn framing_header_of_section_6_6_2() {
    structure(
        "80 00000005 000003 d2454c",
        FramedMessage::Data {
            sequence: 5,
            message: vec![0xd2, 0x45, 0x4c],
        },
    );
    structure(
        "81 00000009 00000005",
        FramedMessage::Ack {
            ack_sequence: 9,
            received: 5,
        },
    );
}

#[test]
fn probe() {
    body(
        MessageCode::PROBE_REQ,
        "03 01 02 03", // requested_info<0..2^8-1>: responsible_set, num_resources, uptime
        MessageBody::ProbeReq(ProbeReq {
            requested_info: vec![
                ProbeInformationType::RESPONSIBLE_SET,
                ProbeInformationType::NUM_RESOURCES,
                ProbeInformationType::UPTIME,
            ],
        }),
    );
    body(
        MessageCode::PROBE_ANS,
        concat!(
            "000c",           // probe_info<0..2^16-1>: 12 bytes
            "01 04 0ee6b280", // responsible_set, length 4, 250 000 000 ppb
            "03 04 00015180", // uptime 86 400 s
        ),
        MessageBody::ProbeAns(ProbeAns {
            probe_info: vec![
                ProbeInformation::ResponsibleSet(250_000_000),
                ProbeInformation::Uptime(86_400),
            ],
        }),
    );
}

#[test]
fn attach() {
    let wire = concat!(
        "02 6162",             // ufrag "ab"
        "02 7077",             // password "pw"
        "07 70617373697665",   // role "passive"
        "0012",                // candidates<0..2^16-1>: 18 bytes
        "01 06 c0000201 17c4", //   addr_port 192.0.2.1:6084
        "01",                  //   overlay_link DTLS-UDP-SR
        "01 31",               //   foundation "1"
        "7effffff",            //   priority
        "01",                  //   type host
        "0000",                //   extensions: none
        "01",                  // send_update true
    );
    let value = AttachReqAns {
        ufrag: b"ab".to_vec(),
        password: b"pw".to_vec(),
        role: b"passive".to_vec(),
        candidates: vec![IceCandidate {
            addr_port: SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 6084)).into(),
            overlay_link: OverlayLinkType::DTLS_UDP_SR,
            foundation: b"1".to_vec(),
            priority: 0x7eff_ffff,
            candidate_type: CandidateType::Host,
            extensions: Vec::new(),
        }],
        send_update: true,
    };
    body(MessageCode::ATTACH_REQ, wire, MessageBody::AttachReq(value.clone()));
    body(MessageCode::ATTACH_ANS, wire, MessageBody::AttachAns(value));
}

#[test]
fn ice_candidate_with_related_address_and_extension() {
    structure(
        concat!(
            "01 06 c6336407 9c41",      // 198.51.100.7:40001
            "01",                       // DTLS-UDP-SR
            "01 32",                    // foundation "2"
            "64ffffff",                 // priority
            "02",                       // srflx
            "01 06 c0000201 17c4",      // rel_addr_port
            "0008 0001 67 0003 303030", // extensions: name "g", value "000"
        ),
        IceCandidate {
            addr_port: SocketAddr::from((Ipv4Addr::new(198, 51, 100, 7), 40_001)).into(),
            overlay_link: OverlayLinkType::DTLS_UDP_SR,
            foundation: b"2".to_vec(),
            priority: 0x64ff_ffff,
            candidate_type: CandidateType::Srflx {
                rel_addr_port: SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 6084)).into(),
            },
            extensions: vec![IceExtension {
                name: b"g".to_vec(),
                value: b"000".to_vec(),
            }],
        },
    );
}

#[test]
fn app_attach() {
    let wire = concat!(
        "01 75",           // ufrag "u"
        "01 70",           // password "p"
        "13c4",            // application 5060 (SIP)
        "06 616374697665", // role "active"
        "0000",            // candidates: none
    );
    let value = AppAttach {
        ufrag: b"u".to_vec(),
        password: b"p".to_vec(),
        application: ApplicationId::SIP,
        role: b"active".to_vec(),
        candidates: Vec::new(),
    };
    body(
        MessageCode::APP_ATTACH_REQ,
        wire,
        MessageBody::AppAttachReq(value.clone()),
    );
    body(MessageCode::APP_ATTACH_ANS, wire, MessageBody::AppAttachAns(value));
}

#[test]
fn ping() {
    body(MessageCode::PING_REQ, "0000", MessageBody::PingReq(PingReq::default()));
    body(
        MessageCode::PING_ANS,
        "0123456789abcdef 0000019f3b1c2d00", // response_id, time (ms since 1970)
        MessageBody::PingAns(PingAns {
            response_id: 0x0123_4567_89ab_cdef,
            time: 0x0000_019f_3b1c_2d00,
        }),
    );
}

#[test]
fn config_update() {
    body(
        MessageCode::CONFIG_UPDATE_REQ,
        concat!(
            "01",            // type config
            "00000006",      // length of the rest
            "000003 3c612f", // config_data<0..2^24-1> = "<a/"
        ),
        MessageBody::ConfigUpdateReq(ConfigUpdateReq::Config {
            config_data: b"<a/".to_vec(),
        }),
    );
    body(
        MessageCode::CONFIG_UPDATE_REQ,
        concat!(
            "02",          // type kind
            "00000008",    // length of the rest
            "000005",      // kinds<0..2^24-1>: 5 bytes
            "0003 3c6b2f", //   KindDescription "<k/"
        ),
        MessageBody::ConfigUpdateReq(ConfigUpdateReq::Kind {
            kinds: vec![KindDescription(b"<k/".to_vec())],
        }),
    );
    body(MessageCode::CONFIG_UPDATE_ANS, "", MessageBody::ConfigUpdateAns);
}

#[test]
fn join_and_leave() {
    body(
        MessageCode::JOIN_REQ,
        &format!("{N1_HEX} 0000"), // joining_peer_id, overlay_specific_data empty
        MessageBody::JoinReq(JoinReq {
            joining_peer_id: N1,
            overlay_specific_data: Vec::new(),
        }),
    );
    body(MessageCode::JOIN_ANS, "0000", MessageBody::JoinAns(JoinAns::default()));
    body(
        MessageCode::LEAVE_REQ,
        // leaving_peer_id, overlay_specific_data<0..2^16-1> holding ChordLeaveData:
        // from_pred(2), predecessors<0..2^16-1> = [N2]
        &format!("{N1_HEX} 0013 02 0010 {N2_HEX}"),
        MessageBody::LeaveReq(LeaveReq {
            leaving_peer_id: N1,
            chord: Some(ChordLeaveData::FromPred { predecessors: vec![N2] }),
        }),
    );
    body(MessageCode::LEAVE_ANS, "", MessageBody::LeaveAns);
}

#[test]
fn update_and_route_query() {
    body(
        MessageCode::UPDATE_REQ,
        // ChordUpdate: uptime 60, neighbors(2), predecessors [N1], successors [N2]
        &format!("0000003c 02 0010 {N1_HEX} 0010 {N2_HEX}"),
        MessageBody::UpdateReq(ChordUpdate {
            uptime: 60,
            data: ChordUpdateData::Neighbors {
                predecessors: vec![N1],
                successors: vec![N2],
            },
        }),
    );
    body(
        MessageCode::UPDATE_REQ,
        "00000001 01", // peer_ready
        MessageBody::UpdateReq(ChordUpdate {
            uptime: 1,
            data: ChordUpdateData::PeerReady,
        }),
    );
    body(MessageCode::UPDATE_ANS, "", MessageBody::UpdateAns);
    body(
        MessageCode::ROUTE_QUERY_REQ,
        &format!("01 01 10 {N2_HEX} 0000"), // send_update, destination node N2, no data
        MessageBody::RouteQueryReq(RouteQueryReq {
            send_update: true,
            destination: Destination::node(N2),
            overlay_specific_data: Vec::new(),
        }),
    );
    body(
        MessageCode::ROUTE_QUERY_ANS,
        N1_HEX, // ChordRouteQueryAns.next_peer
        MessageBody::RouteQueryAns(ChordRouteQueryAns { next_peer: N1 }),
    );
}

#[test]
fn store() {
    let (sig_hex, signature) = sig();
    // SipRegistration route (RFC 7904 §3.2): type 2, length, contact_prefs "", destination_list [N1]
    let registration = format!("02 0016 0000 0012 01 10 {N1_HEX}");
    let value_len = bytes(&registration).len();
    assert_eq!(value_len, 25);
    let stored = format!(
        "{}{}{}{}",
        "0000019f3b1c2d00 00000e10",                        // storage_time, lifetime 3600
        format_args!("0010 {N1_HEX} 01 {:08x}", value_len), // DictionaryEntry: key N1, exists, value length
        registration,
        sig_hex,
    );
    let stored_len = bytes(&stored).len();
    let wire = format!(
        "03 aabbcc 00 {:08x} 00000001 0000000000000000 {:08x} {:08x} {}",
        stored_len + 4 + 12 + 4, // kind_data<0..2^32-1>
        stored_len + 4,          // values<0..2^32-1>
        stored_len,              // StoredData.length
        stored
    );
    let expected = StoreReq {
        resource: ResourceId::new(vec![0xaa, 0xbb, 0xcc]).expect("short"),
        replica_number: 0,
        kind_data: vec![StoreKindData {
            kind: KindId::SIP_REGISTRATION,
            generation_counter: 0,
            values: vec![StoredData {
                storage_time: 0x0000_019f_3b1c_2d00,
                lifetime: 3600,
                value: StoredDataValue::Dictionary {
                    key: N1.0.to_vec(),
                    value: DataValue::new(bytes(&registration)),
                },
                signature,
            }],
        }],
    };
    body(MessageCode::STORE_REQ, &wire, MessageBody::StoreReq(expected));
    structure(
        &registration,
        SipRegistration::Route {
            contact_prefs: Vec::new(),
            destination_list: vec![Destination::node(N1)],
        },
    );
    body(
        MessageCode::STORE_ANS,
        // kind_responses<0..2^16-1>: kind 1, generation 4, replicas<0..2^16-1> [N2]
        &format!("001e 00000001 0000000000000004 0010 {N2_HEX}"),
        MessageBody::StoreAns(StoreAns {
            kind_responses: vec![StoreKindResponse {
                kind: KindId::SIP_REGISTRATION,
                generation_counter: 4,
                replicas: vec![N2],
            }],
        }),
    );
}

#[test]
fn fetch_and_stat_requests() {
    let wire = concat!(
        "02 abcd",                                               // resource
        "003a",                                                  // specifiers<0..2^16-1>: 58 bytes
        "00000001 0000000000000000 0006 0004 0002 6b31",         // SIP-REGISTRATION: keys ["k1"]
        "00000010 0000000000000002 000a 0008 00000000 ffffffff", // CERTIFICATE_BY_USER: range 0..last
        "00000002 0000000000000000 0000",                        // TURN-SERVICE (single): empty specifier
    );
    let req = FetchReq {
        resource: ResourceId::new(vec![0xab, 0xcd]).expect("short"),
        specifiers: vec![
            StoredDataSpecifier {
                kind: KindId::SIP_REGISTRATION,
                generation: 0,
                model_specifier: ModelSpecifier::Dictionary(vec![DictionaryKey(b"k1".to_vec())]),
            },
            StoredDataSpecifier {
                kind: KindId::CERTIFICATE_BY_USER,
                generation: 2,
                model_specifier: ModelSpecifier::Array(vec![ArrayRange {
                    first: 0,
                    last: 0xffff_ffff,
                }]),
            },
            StoredDataSpecifier {
                kind: KindId::TURN_SERVICE,
                generation: 0,
                model_specifier: ModelSpecifier::Single,
            },
        ],
    };
    body(MessageCode::FETCH_REQ, wire, MessageBody::FetchReq(req.clone()));
    body(MessageCode::STAT_REQ, wire, MessageBody::StatReq(req));
}

#[test]
fn fetch_answer() {
    let (sig_hex, signature) = sig();
    // TURN-SERVICE (single value) holding TurnServer{iteration 1, 192.0.2.1:3478}.
    let turn = "01 01 06 c0000201 0d96";
    let stored = format!("0000000000000001 00000258 01 00000009 {turn} {sig_hex}");
    let stored_len = bytes(&stored).len();
    let wire = format!(
        "{:08x} 00000002 0000000000000009 {:08x} {:08x} {stored}",
        4 + 8 + 4 + 4 + stored_len,
        4 + stored_len,
        stored_len
    );
    body(
        MessageCode::FETCH_ANS,
        &wire,
        MessageBody::FetchAns(FetchAns {
            kind_responses: vec![FetchKindResponse {
                kind: KindId::TURN_SERVICE,
                generation: 9,
                values: vec![StoredData {
                    storage_time: 1,
                    lifetime: 600,
                    value: StoredDataValue::Single {
                        value: DataValue::new(bytes(turn)),
                    },
                    signature,
                }],
            }],
        }),
    );
    structure(
        turn,
        TurnServer {
            iteration: 1,
            server_address: SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 3478)).into(),
        },
    );
}

#[test]
fn stat_answer() {
    // CERTIFICATE_BY_NODE (array): one StoredMetaData whose first field is the length
    // of the rest, like StoredData.length (§7.4.3.2).
    let meta = "0000000000000001 0000003c 00000000 01 000001c0 04 02 abcd";
    let meta_len = bytes(meta).len();
    assert_eq!(meta_len, 25);
    body(
        MessageCode::STAT_ANS,
        &format!("0000002d 00000003 0000000000000002 0000001d 00000019 {meta}"),
        MessageBody::StatAns(StatAns {
            kind_responses: vec![StatKindResponse {
                kind: KindId::CERTIFICATE_BY_NODE,
                generation: 2,
                values: vec![StoredMetaData {
                    storage_time: 1,
                    lifetime: 60,
                    metadata: MetaDataValue::Array {
                        index: 0,
                        value: MetaData {
                            exists: true,
                            value_length: 0x1c0,
                            hash_algorithm: HashAlgorithm::SHA256,
                            hash_value: vec![0xab, 0xcd],
                        },
                    },
                }],
            }],
        }),
    );
}

#[test]
fn find() {
    body(
        MessageCode::FIND_REQ,
        "01 07 08 00000002 00000001", // resource 07, kinds<0..2^8-1> [TURN-SERVICE, SIP-REGISTRATION]
        MessageBody::FindReq(FindReq {
            resource: ResourceId::new(vec![7]).expect("short"),
            kinds: vec![KindId::TURN_SERVICE, KindId::SIP_REGISTRATION],
        }),
    );
    body(
        MessageCode::FIND_ANS,
        "0007 00000002 02 0809", // results<0..2^16-1>: TURN-SERVICE closest 0809
        MessageBody::FindAns(FindAns {
            results: vec![FindKindData {
                kind: KindId::TURN_SERVICE,
                closest: ResourceId::new(vec![8, 9]).expect("short"),
            }],
        }),
    );
}

#[test]
fn error_responses() {
    body(
        MessageCode::ERROR,
        "0003 0002 6e6f", // Error_Not_Found, error_info "no"
        MessageBody::Error(ErrorResponse::with_text(ErrorCode::NOT_FOUND, "no")),
    );
    // Error_Unknown_Kind carries KindId unknown_kinds<0..2^8-1> (§7.4.1.2).
    let e = ErrorResponse::unknown_kinds(&[KindId(0xf000_0001)]).expect("encodes");
    body(
        MessageCode::ERROR,
        "000c 0005 04 f0000001",
        MessageBody::Error(e.clone()),
    );
    assert_eq!(e.decode_unknown_kinds().expect("decodes"), vec![KindId(0xf000_0001)]);
}

#[test]
fn every_error_code_of_section_14_9_has_a_name() {
    let codes: Vec<u16> = ErrorCode::ALL.iter().map(|c| c.0).collect();
    assert_eq!(codes, (2..=0x14).collect::<Vec<u16>>());
    for c in ErrorCode::ALL {
        assert!(c.name().is_some_and(|n| n.starts_with("Error_")));
    }
}

#[test]
fn every_method_has_a_golden_vector() {
    // The tests above cover these codes; a method added to the registry must add one.
    let requests: Vec<u16> = MessageCode::ALL
        .iter()
        .map(|c| c.0)
        .filter(|c| c % 2 == 1 && *c < 0x23)
        .collect();
    assert_eq!(
        requests,
        vec![0x1, 0x3, 0x7, 0x9, 0xd, 0xf, 0x11, 0x13, 0x15, 0x17, 0x19, 0x1d, 0x21]
    );
}
