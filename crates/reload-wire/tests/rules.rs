//! The RFC's rules that the codec carries beyond byte layout: critical forwarding
//! options and extensions, unknown Kinds, fragments, and the checks on values.

use reload_wire::forwarding::option_flags;
use reload_wire::samples;
use reload_wire::*;

fn option(option_type: u8, flags: u8) -> ForwardingOption {
    ForwardingOption {
        option_type: ForwardingOptionType(option_type),
        flags,
        value: vec![1],
    }
}

#[test]
fn critical_forwarding_options_are_refused_as_the_flags_say() {
    // RFC 6940 §6.3.2.3.
    let mut header = samples::all()[0].message.header.clone();
    header.options = vec![
        option(200, option_flags::RESPONSE_COPY),
        option(201, option_flags::DESTINATION_CRITICAL),
        option(202, option_flags::FORWARD_CRITICAL),
    ];
    let understood_none = |_| false;
    let (refused, code) = header.refused_option(true, understood_none).expect("forwarder refuses");
    assert_eq!(refused.option_type, ForwardingOptionType(202));
    assert_eq!(code, ErrorCode::UNSUPPORTED_FORWARDING_OPTION);
    let (refused, _) = header
        .refused_option(false, understood_none)
        .expect("responder refuses");
    assert_eq!(refused.option_type, ForwardingOptionType(201));
    // An option the node implements is never a reason to refuse.
    assert!(header.refused_option(true, |t| t.0 == 202).is_none());
    // Non-critical unknown options are kept and forwarded as they are.
    let bytes = Message {
        header: header.clone(),
        ..samples::all()[0].message.clone()
    }
    .encode()
    .expect("encodes");
    let back = Message::decode(&bytes, &WireConfig::default()).expect("decodes");
    assert_eq!(back.header.options, header.options);
    // RESPONSE_COPY options go into the response with all three flags cleared.
    let copied = header.options_for_response();
    assert_eq!(copied, vec![option(200, 0)]);
}

#[test]
fn critical_unknown_extension_is_found() {
    // RFC 6940 §6.3.3: critical and not understood means Error_Unknown_Extension.
    let mut contents = samples::all()[0].message.contents.clone();
    contents.extensions = vec![
        MessageExtension {
            extension_type: MessageExtensionType(0x100),
            critical: false,
            extension_contents: vec![],
        },
        MessageExtension {
            extension_type: MessageExtensionType(0x101),
            critical: true,
            extension_contents: vec![9],
        },
    ];
    let found = contents.unknown_critical_extension(|_| false).expect("found");
    assert_eq!(found.extension_type, MessageExtensionType(0x101));
    assert!(contents.unknown_critical_extension(|t| t.0 == 0x101).is_none());
}

#[test]
fn unknown_kinds_are_all_listed_for_error_unknown_kind() {
    // RFC 6940 §7.4.1.2: Error_Unknown_Kind lists every unrecognized Kind.
    let store = StoreReq {
        resource: samples::alice_resource(),
        replica_number: 0,
        kind_data: [0xf000_0009u32, 0x1, 0xf000_0002]
            .into_iter()
            .map(|k| StoreKindData {
                kind: KindId(k),
                generation_counter: 0,
                values: vec![samples::sip_registration_data()],
            })
            .collect(),
    };
    let bytes = store.to_bytes().expect("encodes");
    let err = MessageBody::decode(MessageCode::STORE_REQ, &bytes, &DataModels::registered()).expect_err("unknown");
    assert_eq!(
        err.kind,
        DecodeErrorKind::UnknownKinds(vec![KindId(0xf000_0002), KindId(0xf000_0009)])
    );
    let answer = ErrorResponse::unknown_kinds(&[KindId(0xf000_0002), KindId(0xf000_0009)]).expect("encodes");
    assert_eq!(answer.error_code, ErrorCode::UNKNOWN_KIND);
    // Once the overlay defines them, the same bytes decode.
    let mut models = DataModels::registered();
    models.insert(KindId(0xf000_0009), DataModel::Dictionary);
    models.insert(KindId(0xf000_0002), DataModel::Dictionary);
    assert!(MessageBody::decode(MessageCode::STORE_REQ, &bytes, &models).is_ok());
}

#[test]
fn generation_counter_too_low_carries_a_store_answer() {
    let current = StoreAns {
        kind_responses: vec![StoreKindResponse {
            kind: KindId::SIP_REGISTRATION,
            generation_counter: 12,
            replicas: Vec::new(),
        }],
    };
    let e = ErrorResponse::generation_counter_too_low(&current).expect("encodes");
    assert_eq!(e.error_code, ErrorCode::GENERATION_COUNTER_TOO_LOW);
    assert_eq!(e.decode_generation_counters().expect("decodes"), current);
}

#[test]
fn fragments_are_split_but_not_parsed() {
    // RFC 6940 §6.7: only the final destination reassembles; a fragment's payload
    // is a piece of the contents and security block.
    let mut m = samples::all()[0].message.clone();
    m.header.fragment = Fragment::new(256, false).expect("offset fits");
    let bytes = m.encode().expect("encodes");
    let raw = RawMessage::split(&bytes, 5000).expect("header decodes");
    assert_eq!(raw.header.fragment.offset(), 256);
    assert!(!raw.header.fragment.is_last());
    let err = Message::decode(&bytes, &WireConfig::default()).expect_err("a fragment is not a whole message");
    assert_eq!(
        err.kind,
        DecodeErrorKind::Fragment {
            offset: 256,
            last: false
        }
    );
    assert_eq!(Fragment::UNFRAGMENTED.0, 0xc000_0000);
    assert!(Fragment::new(1 << 24, true).is_none());
}

#[test]
fn fragment_field_without_its_high_bit_is_refused() {
    // RFC 6940 §6.7: "implementations SHOULD discard any message with it set to 0".
    let mut bytes = samples::all()[0].message.encode().expect("encodes");
    bytes[12] &= 0x7f;
    let err = Message::decode(&bytes, &WireConfig::default()).expect_err("refused");
    assert_eq!(err.field, "ForwardingHeader.fragment");
}

#[test]
fn wrong_relo_token_and_bad_booleans_name_their_field() {
    let mut bytes = samples::all()[0].message.encode().expect("encodes");
    bytes[0] = 0x52;
    assert_eq!(
        Message::decode(&bytes, &WireConfig::default())
            .expect_err("token")
            .field,
        "ForwardingHeader.relo_token"
    );

    // AttachReqAns.send_update is a Boolean: 2 is not one.
    let attach = AttachReqAns {
        ufrag: vec![],
        password: vec![],
        role: vec![],
        candidates: vec![],
        send_update: true,
    };
    let mut bytes = attach.to_bytes().expect("encodes");
    *bytes.last_mut().expect("non-empty") = 2;
    let err = AttachReqAns::from_bytes(&bytes).expect_err("not a Boolean");
    assert_eq!(err.field, "AttachReqAns.send_update");
    assert!(err.to_string().contains("Boolean"), "{err}");
}

#[test]
fn destinations_keep_unknown_types_and_refuse_invalid_ones() {
    let unknown = Destination::from_bytes(&[0x05, 0x02, 0xaa, 0xbb]).expect("kept");
    assert_eq!(
        unknown,
        Destination::Unknown {
            destination_type: DestinationType(5),
            data: vec![0xaa, 0xbb],
        }
    );
    assert_eq!(unknown.to_bytes().expect("encodes"), vec![0x05, 0x02, 0xaa, 0xbb]);
    assert!(
        Destination::from_bytes(&[0x00, 0x00]).is_err(),
        "invalidDestinationType(0)"
    );
    // A node destination must hold exactly a 16-byte Node-ID.
    assert!(Destination::from_bytes(&[0x01, 0x02, 0xaa, 0xbb]).is_err());
    // A 255-byte Resource-ID cannot be a destination: the TLV length would be 256.
    let long = Destination::resource(ResourceId::new(vec![0; 255]).expect("fits a ResourceId"));
    assert!(long.to_bytes().is_err());
    // The compressed form needs its top bit.
    assert!(Destination::Compressed { id: 0x1234 }.to_bytes().is_err());
}

#[test]
fn oversized_messages_are_refused_before_parsing() {
    let bytes = samples::fetch_sip_registration_answer().encode().expect("encodes");
    let small = WireConfig {
        max_message_size: 100,
        ..WireConfig::default()
    };
    let err = Message::decode(&bytes, &small).expect_err("too large");
    assert_eq!(
        err.kind,
        DecodeErrorKind::MessageTooLarge {
            size: bytes.len(),
            max: 100
        }
    );
    assert!(samples::fetch_sip_registration_answer().encode_limited(100).is_err());
}

#[test]
fn every_sample_round_trips() {
    for s in samples::all() {
        let bytes = s.message.encode().expect("encodes");
        let back = Message::decode(&bytes, &WireConfig::default()).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        assert_eq!(back, s.message, "{}", s.name);
        assert_eq!(
            back.contents.code().name(),
            Some(s.name),
            "sample names are the registry's code names"
        );
    }
}

#[test]
fn signature_input_is_overlay_transaction_contents_identity() {
    // RFC 6940 §6.3.4: overlay || transaction_id || MessageContents || SignerIdentity.
    let m = samples::all()[0].message.clone();
    let bytes = m.encode().expect("encodes");
    let raw = RawMessage::split(&bytes, 5000).expect("splits");
    let (contents, _) = raw.contents_and_security().expect("whole");
    assert_eq!(contents, m.contents.to_bytes().expect("encodes").as_slice());
    let input = message::message_signature_input(
        m.header.overlay,
        m.header.transaction_id,
        contents,
        &m.security.signature.identity,
    )
    .expect("encodes");
    let mut want = m.header.overlay.0.to_be_bytes().to_vec();
    want.extend_from_slice(&m.header.transaction_id.0.to_be_bytes());
    want.extend_from_slice(contents);
    want.extend_from_slice(&m.security.signature.identity.to_bytes().expect("encodes"));
    assert_eq!(input, want);
}
