//! One well-formed message of every method, request and answer, plus an Error:
//! the sample set behind `p2psip wire sample`, the golden tests, the fuzz seeds and
//! the benchmarks. The values are realistic; the signatures are placeholders of the
//! right shape (this crate does no cryptography).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::attach::{AppAttach, AttachReqAns, CandidateType, IceCandidate, IceExtension};
use crate::chord::{ChordLeaveData, ChordRouteQueryAns, ChordUpdate, ChordUpdateData};
use crate::codes::{
    ApplicationId, ErrorCode, ForwardingOptionType, HashAlgorithm, MessageExtensionType, OverlayLinkType,
    ProbeInformationType,
};
use crate::config_update::{ConfigUpdateReq, KindDescription};
use crate::error_response::ErrorResponse;
use crate::forwarding::{Destination, ForwardingHeader, ForwardingOption, option_flags};
use crate::ids::{KindId, NodeId, OverlayHash, ResourceId, TransactionId};
use crate::kinds::{SipRegistration, TurnServer};
use crate::message::{Message, MessageBody, MessageContents, MessageExtension};
use crate::ping::{PingAns, PingReq};
use crate::probe::{ProbeAns, ProbeInformation, ProbeReq};
use crate::security::{GenericCertificate, SecurityBlock, Signature, SignatureAndHashAlgorithm, SignerIdentity};
use crate::storage::{
    ArrayRange, DataValue, DictionaryKey, FetchAns, FetchKindResponse, FetchReq, FindAns, FindKindData, FindReq,
    MetaData, MetaDataValue, ModelSpecifier, StatAns, StatKindResponse, StoreAns, StoreKindData, StoreKindResponse,
    StoreReq, StoredData, StoredDataSpecifier, StoredDataValue, StoredMetaData,
};
use crate::topology::{JoinAns, JoinReq, LeaveReq, RouteQueryReq};
use crate::{Encode, codec::Writer};

/// A self-signed ECDSA P-256 certificate for `alice@example.org` with Node-ID
/// 000102...0f in a `reload://` URI SAN, as RFC 6940 §11.3 issues them.
pub const ALICE_CERT_DER: &[u8] = include_bytes!("alice-cert.der");

/// The overlay the samples belong to.
pub const OVERLAY_NAME: &str = "overlay.example.org";

/// alice's Node-ID (the one in [`ALICE_CERT_DER`]).
pub const ALICE: NodeId = NodeId([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);

/// The peer alice talks to.
pub const BOB: NodeId = NodeId([
    0x80, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
]);

/// A third peer, on the path.
pub const CAROL: NodeId = NodeId([0x40; 16]);

/// A named sample message.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Short name, e.g. `store_req`.
    pub name: &'static str,
    /// The message.
    pub message: Message,
}

fn node(n: NodeId) -> Destination {
    Destination::node(n)
}

/// Resource-ID of alice's AOR, standing in for SHA-1(AOR) truncated to 128 bits (§10.2).
pub fn alice_resource() -> ResourceId {
    ResourceId::from(NodeId([
        0x3a, 0x97, 0x2c, 0x51, 0x0e, 0x6b, 0xd4, 0x88, 0x21, 0x5f, 0xc0, 0x7e, 0x19, 0xa3, 0x44, 0xd2,
    ]))
}

/// A signature by alice of the right shape: ECDSA-SHA256, identified by certificate hash.
pub fn alice_signature() -> Signature {
    Signature {
        algorithm: SignatureAndHashAlgorithm::ECDSA_SHA256,
        identity: SignerIdentity::CertHash {
            hash_alg: HashAlgorithm::SHA256,
            certificate_hash: (0u8..32).collect(),
        },
        signature_value: (0u8..64).map(|i| i.wrapping_mul(7)).collect(),
    }
}

fn security(with_cert: bool) -> SecurityBlock {
    SecurityBlock {
        certificates: if with_cert {
            vec![GenericCertificate::x509(ALICE_CERT_DER.to_vec())]
        } else {
            Vec::new()
        },
        signature: alice_signature(),
    }
}

fn message(txid: u64, to: Vec<Destination>, via: Vec<Destination>, body: MessageBody) -> Message {
    let mut header = ForwardingHeader::new(OverlayHash::from_overlay_name(OVERLAY_NAME), TransactionId(txid), to);
    header.via_list = via;
    header.configuration_sequence = 7;
    Message {
        header,
        contents: MessageContents::new(body),
        security: security(false),
    }
}

fn request(txid: u64, to: Destination, body: MessageBody) -> Message {
    message(txid, vec![to], Vec::new(), body)
}

fn answer(txid: u64, body: MessageBody) -> Message {
    let mut m = message(txid, vec![node(ALICE)], Vec::new(), body);
    m.header.ttl = 97;
    m
}

fn host_candidate(addr: SocketAddr, link: OverlayLinkType) -> IceCandidate {
    IceCandidate {
        addr_port: addr.into(),
        overlay_link: link,
        foundation: b"1".to_vec(),
        priority: 2_130_706_431,
        candidate_type: CandidateType::Host,
        extensions: Vec::new(),
    }
}

fn candidates() -> Vec<IceCandidate> {
    let v4 = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 10), 6084));
    let v6 = SocketAddr::from((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10), 6084));
    vec![
        host_candidate(v4, OverlayLinkType::DTLS_UDP_SR),
        host_candidate(v6, OverlayLinkType::DTLS_UDP_SR),
        IceCandidate {
            addr_port: SocketAddr::from((Ipv4Addr::new(198, 51, 100, 7), 40_001)).into(),
            overlay_link: OverlayLinkType::DTLS_UDP_SR,
            foundation: b"2".to_vec(),
            priority: 1_694_498_815,
            candidate_type: CandidateType::Srflx {
                rel_addr_port: v4.into(),
            },
            extensions: vec![IceExtension {
                name: b"generation".to_vec(),
                value: b"0".to_vec(),
            }],
        },
        IceCandidate {
            addr_port: SocketAddr::from((Ipv4Addr::new(203, 0, 113, 5), 49_152)).into(),
            overlay_link: OverlayLinkType::DTLS_UDP_SR,
            foundation: b"3".to_vec(),
            priority: 16_777_215,
            candidate_type: CandidateType::Relay {
                rel_addr_port: SocketAddr::from((Ipv4Addr::new(198, 51, 100, 7), 40_001)).into(),
            },
            extensions: Vec::new(),
        },
    ]
}

/// The SIP registration alice's node stores: a route to her Node-ID (RFC 7904 §3.2).
pub fn alice_sip_registration() -> SipRegistration {
    SipRegistration::Route {
        contact_prefs: b"(sip.schemes=SIPS)".to_vec(),
        destination_list: vec![node(ALICE)],
    }
}

fn encoded<T: Encode>(v: &T) -> Vec<u8> {
    let mut w = Writer::new();
    // Sample values are built to fit their length prefixes.
    if let Err(e) = v.encode(&mut w) {
        unreachable!("sample does not encode: {e}");
    }
    w.into_vec()
}

/// alice's SIP-REGISTRATION entry as StoredData: dictionary key = her Node-ID.
pub fn sip_registration_data() -> StoredData {
    StoredData {
        storage_time: 1_795_000_000_000,
        lifetime: 3600,
        value: StoredDataValue::Dictionary {
            key: ALICE.0.to_vec(),
            value: DataValue::new(encoded(&alice_sip_registration())),
        },
        signature: alice_signature(),
    }
}

/// A Store request carrying alice's SIP registration (the benchmark's message).
pub fn store_sip_registration() -> Message {
    let mut m = request(
        0x1001,
        Destination::resource(alice_resource()),
        MessageBody::StoreReq(StoreReq {
            resource: alice_resource(),
            replica_number: 0,
            kind_data: vec![StoreKindData {
                kind: KindId::SIP_REGISTRATION,
                generation_counter: 0,
                values: vec![sip_registration_data()],
            }],
        }),
    );
    m.security = security(true);
    m
}

/// A Fetch answer returning alice's SIP registration (the benchmark's other message).
pub fn fetch_sip_registration_answer() -> Message {
    let mut m = answer(
        0x1002,
        MessageBody::FetchAns(FetchAns {
            kind_responses: vec![FetchKindResponse {
                kind: KindId::SIP_REGISTRATION,
                generation: 3,
                values: vec![sip_registration_data()],
            }],
        }),
    );
    m.security = security(true);
    m
}

/// Every method's request and answer, and an Error.
pub fn all() -> Vec<Sample> {
    let turn = TurnServer {
        iteration: 1,
        server_address: SocketAddr::from((Ipv4Addr::new(192, 0, 2, 99), 3478)).into(),
    };
    let turn_data = StoredData {
        storage_time: 1_795_000_000_500,
        lifetime: 600,
        value: StoredDataValue::Single {
            value: DataValue::new(encoded(&turn)),
        },
        signature: alice_signature(),
    };
    let cert_data = StoredData {
        storage_time: 1_795_000_001_000,
        lifetime: 86_400,
        value: StoredDataValue::Array {
            index: 0,
            value: DataValue::new(ALICE_CERT_DER.to_vec()),
        },
        signature: alice_signature(),
    };
    let uri_registration = StoredData {
        storage_time: 1_795_000_002_000,
        lifetime: 3600,
        value: StoredDataValue::Dictionary {
            key: BOB.0.to_vec(),
            value: DataValue::new(encoded(&SipRegistration::Uri {
                uri: b"sip:alice@example.org".to_vec(),
            })),
        },
        signature: alice_signature(),
    };
    let meta = |exists| MetaData {
        exists,
        value_length: 48,
        hash_algorithm: HashAlgorithm::SHA256,
        hash_value: (100u8..132).collect(),
    };

    let mut probe_req = request(
        0x0101,
        node(BOB),
        MessageBody::ProbeReq(ProbeReq {
            requested_info: vec![
                ProbeInformationType::RESPONSIBLE_SET,
                ProbeInformationType::NUM_RESOURCES,
                ProbeInformationType::UPTIME,
            ],
        }),
    );
    // One request shows a forwarding option and a message extension, both non-critical.
    probe_req.header.options.push(ForwardingOption {
        option_type: ForwardingOptionType::EXP_FORWARD,
        flags: option_flags::RESPONSE_COPY,
        value: vec![0xde, 0xad],
    });
    probe_req.contents.extensions.push(MessageExtension {
        extension_type: MessageExtensionType::EXP_EXT,
        critical: false,
        extension_contents: b"hello".to_vec(),
    });

    let mut attach_req = request(
        0x0301,
        node(BOB),
        MessageBody::AttachReq(AttachReqAns {
            ufrag: b"aX7f".to_vec(),
            password: b"pw0123456789abcdefghij".to_vec(),
            role: b"passive".to_vec(),
            candidates: candidates(),
            send_update: true,
        }),
    );
    // Routed via carol: she appears in the via list, bob is still ahead.
    attach_req.header.via_list = vec![node(CAROL)];
    attach_req.header.ttl = 99;

    vec![
        Sample {
            name: "probe_req",
            message: probe_req,
        },
        Sample {
            name: "probe_ans",
            message: answer(
                0x0101,
                MessageBody::ProbeAns(ProbeAns {
                    probe_info: vec![
                        ProbeInformation::ResponsibleSet(250_000_000),
                        ProbeInformation::NumResources(42),
                        ProbeInformation::Uptime(86_400),
                    ],
                }),
            ),
        },
        Sample {
            name: "attach_req",
            message: attach_req,
        },
        Sample {
            name: "attach_ans",
            message: answer(
                0x0301,
                MessageBody::AttachAns(AttachReqAns {
                    ufrag: b"Qm2z".to_vec(),
                    password: b"pwzyxwvutsrqponmlkjihg".to_vec(),
                    role: b"active".to_vec(),
                    candidates: vec![host_candidate(
                        SocketAddr::from((Ipv4Addr::new(192, 0, 2, 20), 6084)),
                        OverlayLinkType::DTLS_UDP_SR,
                    )],
                    send_update: false,
                }),
            ),
        },
        Sample {
            name: "store_req",
            message: store_sip_registration(),
        },
        Sample {
            name: "store_ans",
            message: answer(
                0x1001,
                MessageBody::StoreAns(StoreAns {
                    kind_responses: vec![StoreKindResponse {
                        kind: KindId::SIP_REGISTRATION,
                        generation_counter: 4,
                        replicas: vec![CAROL, BOB],
                    }],
                }),
            ),
        },
        Sample {
            name: "fetch_req",
            message: request(
                0x1002,
                Destination::resource(alice_resource()),
                MessageBody::FetchReq(FetchReq {
                    resource: alice_resource(),
                    specifiers: vec![
                        StoredDataSpecifier {
                            kind: KindId::SIP_REGISTRATION,
                            generation: 0,
                            model_specifier: ModelSpecifier::Dictionary(vec![DictionaryKey(ALICE.0.to_vec())]),
                        },
                        StoredDataSpecifier {
                            kind: KindId::CERTIFICATE_BY_USER,
                            generation: 0,
                            model_specifier: ModelSpecifier::Array(vec![ArrayRange {
                                first: 0,
                                last: 0xffff_ffff,
                            }]),
                        },
                        StoredDataSpecifier {
                            kind: KindId::TURN_SERVICE,
                            generation: 2,
                            model_specifier: ModelSpecifier::Single,
                        },
                    ],
                }),
            ),
        },
        Sample {
            name: "fetch_ans",
            message: {
                let mut m = fetch_sip_registration_answer();
                if let MessageBody::FetchAns(f) = &mut m.contents.body {
                    f.kind_responses[0].values.push(uri_registration);
                    f.kind_responses.push(FetchKindResponse {
                        kind: KindId::CERTIFICATE_BY_USER,
                        generation: 1,
                        values: vec![cert_data.clone()],
                    });
                    f.kind_responses.push(FetchKindResponse {
                        kind: KindId::TURN_SERVICE,
                        generation: 9,
                        values: vec![turn_data.clone()],
                    });
                }
                m
            },
        },
        Sample {
            name: "find_req",
            message: request(
                0x0d01,
                Destination::resource(alice_resource()),
                MessageBody::FindReq(FindReq {
                    resource: alice_resource(),
                    kinds: vec![KindId::TURN_SERVICE, KindId::SIP_REGISTRATION],
                }),
            ),
        },
        Sample {
            name: "find_ans",
            message: answer(
                0x0d01,
                MessageBody::FindAns(FindAns {
                    results: vec![
                        FindKindData {
                            kind: KindId::TURN_SERVICE,
                            closest: ResourceId::from(CAROL),
                        },
                        FindKindData {
                            kind: KindId::SIP_REGISTRATION,
                            closest: alice_resource(),
                        },
                    ],
                }),
            ),
        },
        Sample {
            name: "join_req",
            message: request(
                0x0f01,
                node(BOB),
                MessageBody::JoinReq(JoinReq {
                    joining_peer_id: ALICE,
                    overlay_specific_data: Vec::new(),
                }),
            ),
        },
        Sample {
            name: "join_ans",
            message: answer(0x0f01, MessageBody::JoinAns(JoinAns::default())),
        },
        Sample {
            name: "leave_req",
            message: request(
                0x1101,
                node(BOB),
                MessageBody::LeaveReq(LeaveReq {
                    leaving_peer_id: ALICE,
                    chord: Some(ChordLeaveData::FromPred {
                        predecessors: vec![CAROL],
                    }),
                }),
            ),
        },
        Sample {
            name: "leave_ans",
            message: answer(0x1101, MessageBody::LeaveAns),
        },
        Sample {
            name: "update_req",
            message: request(
                0x1301,
                node(BOB),
                MessageBody::UpdateReq(ChordUpdate {
                    uptime: 3600,
                    data: ChordUpdateData::Full {
                        predecessors: vec![ALICE, CAROL],
                        successors: vec![BOB],
                        fingers: vec![ALICE, CAROL, BOB],
                    },
                }),
            ),
        },
        Sample {
            name: "update_ans",
            message: answer(0x1301, MessageBody::UpdateAns),
        },
        Sample {
            name: "route_query_req",
            message: request(
                0x1501,
                node(BOB),
                MessageBody::RouteQueryReq(RouteQueryReq {
                    send_update: false,
                    destination: Destination::resource(alice_resource()),
                    overlay_specific_data: Vec::new(),
                }),
            ),
        },
        Sample {
            name: "route_query_ans",
            message: answer(
                0x1501,
                MessageBody::RouteQueryAns(ChordRouteQueryAns { next_peer: CAROL }),
            ),
        },
        Sample {
            name: "ping_req",
            message: request(
                0x1701,
                node(BOB),
                MessageBody::PingReq(PingReq { padding: vec![0; 16] }),
            ),
        },
        Sample {
            name: "ping_ans",
            message: answer(
                0x1701,
                MessageBody::PingAns(PingAns {
                    response_id: 0x0123_4567_89ab_cdef,
                    time: 1_795_000_003_000,
                }),
            ),
        },
        Sample {
            name: "stat_req",
            message: request(
                0x1901,
                Destination::resource(alice_resource()),
                MessageBody::StatReq(FetchReq {
                    resource: alice_resource(),
                    specifiers: vec![StoredDataSpecifier {
                        kind: KindId::SIP_REGISTRATION,
                        generation: 0,
                        model_specifier: ModelSpecifier::Dictionary(Vec::new()),
                    }],
                }),
            ),
        },
        Sample {
            name: "stat_ans",
            message: answer(
                0x1901,
                MessageBody::StatAns(StatAns {
                    kind_responses: vec![
                        StatKindResponse {
                            kind: KindId::SIP_REGISTRATION,
                            generation: 3,
                            values: vec![StoredMetaData {
                                storage_time: 1_795_000_000_000,
                                lifetime: 3600,
                                metadata: MetaDataValue::Dictionary {
                                    key: ALICE.0.to_vec(),
                                    value: meta(true),
                                },
                            }],
                        },
                        StatKindResponse {
                            kind: KindId::TURN_SERVICE,
                            generation: 9,
                            values: vec![StoredMetaData {
                                storage_time: 1_795_000_000_500,
                                lifetime: 600,
                                metadata: MetaDataValue::Single { value: meta(true) },
                            }],
                        },
                    ],
                }),
            ),
        },
        Sample {
            name: "app_attach_req",
            message: request(
                0x1d01,
                node(BOB),
                MessageBody::AppAttachReq(AppAttach {
                    ufrag: b"s1pU".to_vec(),
                    password: b"sippassword0123456789x".to_vec(),
                    application: ApplicationId::SIP,
                    role: b"passive".to_vec(),
                    candidates: vec![host_candidate(
                        SocketAddr::from((Ipv4Addr::new(192, 0, 2, 10), 5060)),
                        OverlayLinkType::TLS_TCP_FH_NO_ICE,
                    )],
                }),
            ),
        },
        Sample {
            name: "app_attach_ans",
            message: answer(
                0x1d01,
                MessageBody::AppAttachAns(AppAttach {
                    ufrag: b"s1pV".to_vec(),
                    password: b"sippassword9876543210y".to_vec(),
                    application: ApplicationId::SIP,
                    role: b"active".to_vec(),
                    candidates: vec![host_candidate(
                        SocketAddr::from((Ipv4Addr::new(192, 0, 2, 20), 5060)),
                        OverlayLinkType::TLS_TCP_FH_NO_ICE,
                    )],
                }),
            ),
        },
        Sample {
            name: "config_update_req",
            message: request(
                0x2101,
                node(BOB),
                MessageBody::ConfigUpdateReq(ConfigUpdateReq::Kind {
                    kinds: vec![KindDescription(
                        b"<kind name=\"SIP-REGISTRATION\"><data-model>DICTIONARY</data-model>\
                          <access-control>USER-NODE-MATCH</access-control><max-count>10</max-count>\
                          <max-size>1000</max-size></kind>"
                            .to_vec(),
                    )],
                }),
            ),
        },
        Sample {
            name: "config_update_ans",
            message: answer(0x2101, MessageBody::ConfigUpdateAns),
        },
        Sample {
            name: "error",
            message: answer(
                0x0e01,
                MessageBody::Error(ErrorResponse::with_text(
                    ErrorCode::NOT_FOUND,
                    "no SIP-REGISTRATION at this Resource-ID",
                )),
            ),
        },
    ]
}
