//! Proptest strategies producing arbitrary *valid* values of every public wire type
//! of `reload-wire`: every value generated here must encode without error, and its
//! encoding must decode back to the same value.
//!
//! Sizes are kept small (lists of 0..4 elements, byte strings of 0..40 bytes) so the
//! properties run fast; length-limited fields occasionally get a value at or near
//! their limit so the boundaries are exercised too.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use proptest::collection::vec;
use proptest::prelude::*;
use reload_wire::*;

/// Byte strings of 0..40 bytes.
pub fn small_bytes() -> BoxedStrategy<Vec<u8>> {
    vec(any::<u8>(), 0..40).boxed()
}

/// Byte strings for a field whose length prefix allows at most `max` bytes: mostly
/// short, sometimes right at the limit.
pub fn bytes_up_to(max: usize) -> BoxedStrategy<Vec<u8>> {
    let near = max.saturating_sub(4);
    prop_oneof![
        12 => vec(any::<u8>(), 0..40.min(max + 1)),
        1 => vec(any::<u8>(), near..=max),
    ]
    .boxed()
}

/// Lists of 0..4 elements.
pub fn list<T: std::fmt::Debug + 'static>(element: impl Strategy<Value = T> + 'static) -> BoxedStrategy<Vec<T>> {
    vec(element, 0..4).boxed()
}

// ---------------------------------------------------------------------------
// Identifiers
// ---------------------------------------------------------------------------

/// Any Node-ID.
pub fn node_id() -> BoxedStrategy<NodeId> {
    prop_oneof![
        8 => any::<[u8; NODE_ID_LEN]>().prop_map(NodeId),
        1 => Just(NodeId::WILDCARD),
        1 => Just(NodeId::ZERO),
    ]
    .boxed()
}

/// A Resource-ID of 0..=254 bytes (254 so that it also fits in a Destination).
pub fn resource_id() -> BoxedStrategy<ResourceId> {
    prop_oneof![
        4 => any::<[u8; NODE_ID_LEN]>().prop_map(|b| b.to_vec()),
        4 => small_bytes(),
        1 => vec(any::<u8>(), 240..=254),
    ]
    .prop_map(|b| ResourceId::new(b).expect("at most 254 bytes"))
    .boxed()
}

/// Any Kind-ID (for the structures that carry a Kind-ID without needing its model).
pub fn kind_id() -> BoxedStrategy<KindId> {
    prop_oneof![
        3 => any::<u32>().prop_map(KindId),
        1 => prop::sample::select(vec![
            KindId::SIP_REGISTRATION,
            KindId::TURN_SERVICE,
            KindId::CERTIFICATE_BY_NODE,
            KindId::CERTIFICATE_BY_USER,
        ]),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------
// Forwarding header
// ---------------------------------------------------------------------------

/// Every Destination variant.
pub fn destination() -> BoxedStrategy<Destination> {
    prop_oneof![
        node_id().prop_map(Destination::node),
        resource_id().prop_map(Destination::resource),
        bytes_up_to(254).prop_map(|opaque_id| Destination::OpaqueId { opaque_id }),
        (0x8000u16..=0xffff).prop_map(|id| Destination::Compressed { id }),
        (4u8..=127, bytes_up_to(255)).prop_map(|(t, data)| Destination::Unknown {
            destination_type: DestinationType(t),
            data,
        }),
    ]
    .boxed()
}

/// Any forwarding option.
pub fn forwarding_option() -> BoxedStrategy<ForwardingOption> {
    (any::<u8>(), any::<u8>(), small_bytes())
        .prop_map(|(t, flags, value)| ForwardingOption {
            option_type: ForwardingOptionType(t),
            flags,
            value,
        })
        .boxed()
}

/// A fragment field a decoder accepts: the high bit set, anything else free.
pub fn fragment() -> BoxedStrategy<Fragment> {
    prop_oneof![
        1 => Just(Fragment::UNFRAGMENTED),
        2 => (0u32..=0xff_ffff, any::<bool>()).prop_map(|(o, l)| Fragment::new(o, l).expect("24-bit offset")),
        2 => any::<u32>().prop_map(|v| Fragment(v | 0x8000_0000)),
    ]
    .boxed()
}

/// A fragment field of a whole message (last fragment, offset 0), reserved bits free.
pub fn whole_fragment() -> BoxedStrategy<Fragment> {
    prop_oneof![
        3 => Just(Fragment::UNFRAGMENTED),
        1 => (0u32..0x40).prop_map(|reserved| Fragment(0xc000_0000 | (reserved << 24))),
    ]
    .boxed()
}

fn header_with(fragment: BoxedStrategy<Fragment>) -> BoxedStrategy<ForwardingHeader> {
    (
        (any::<u32>(), any::<u16>(), any::<u8>(), any::<u8>(), fragment),
        (any::<u64>(), any::<u32>()),
        (list(destination()), list(destination()), list(forwarding_option())),
    )
        .prop_map(
            |(
                (overlay, configuration_sequence, version, ttl, fragment),
                (transaction_id, max_response_length),
                (via_list, destination_list, options),
            )| ForwardingHeader {
                overlay: OverlayHash(overlay),
                configuration_sequence,
                version,
                ttl,
                fragment,
                transaction_id: TransactionId(transaction_id),
                max_response_length,
                via_list,
                destination_list,
                options,
            },
        )
        .boxed()
}

/// Any forwarding header a decoder accepts (possibly a fragment).
pub fn forwarding_header() -> BoxedStrategy<ForwardingHeader> {
    header_with(fragment())
}

/// A forwarding header of a whole, unfragmented message.
pub fn whole_message_header() -> BoxedStrategy<ForwardingHeader> {
    header_with(whole_fragment())
}

// ---------------------------------------------------------------------------
// Addresses, Attach, AppAttach
// ---------------------------------------------------------------------------

/// IPv4, IPv6 (no flow info or scope id: the wire form has neither) and unknown types.
pub fn ip_address_port() -> BoxedStrategy<IpAddressPort> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| IpAddressPort::Socket(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| IpAddressPort::Socket(SocketAddr::V6(
            SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0)
        ))),
        (3u8..=255, bytes_up_to(255)).prop_map(|(t, data)| IpAddressPort::Unknown {
            address_type: AddressType(t),
            data,
        }),
    ]
    .boxed()
}

/// Any ICE extension.
pub fn ice_extension() -> BoxedStrategy<IceExtension> {
    (small_bytes(), small_bytes())
        .prop_map(|(name, value)| IceExtension { name, value })
        .boxed()
}

/// Every candidate type.
pub fn candidate_type() -> BoxedStrategy<CandidateType> {
    prop_oneof![
        Just(CandidateType::Host),
        ip_address_port().prop_map(|rel_addr_port| CandidateType::Srflx { rel_addr_port }),
        ip_address_port().prop_map(|rel_addr_port| CandidateType::Relay { rel_addr_port }),
    ]
    .boxed()
}

/// Any ICE candidate.
pub fn ice_candidate() -> BoxedStrategy<IceCandidate> {
    (
        ip_address_port(),
        any::<u8>(),
        bytes_up_to(255),
        any::<u32>(),
        candidate_type(),
        list(ice_extension()),
    )
        .prop_map(
            |(addr_port, link, foundation, priority, candidate_type, extensions)| IceCandidate {
                addr_port,
                overlay_link: OverlayLinkType(link),
                foundation,
                priority,
                candidate_type,
                extensions,
            },
        )
        .boxed()
}

/// Any Attach request or answer body.
pub fn attach_req_ans() -> BoxedStrategy<AttachReqAns> {
    (
        bytes_up_to(255),
        bytes_up_to(255),
        prop_oneof![Just(b"passive".to_vec()), Just(b"active".to_vec()), small_bytes()],
        list(ice_candidate()),
        any::<bool>(),
    )
        .prop_map(|(ufrag, password, role, candidates, send_update)| AttachReqAns {
            ufrag,
            password,
            role,
            candidates,
            send_update,
        })
        .boxed()
}

/// Any AppAttach request or answer body.
pub fn app_attach() -> BoxedStrategy<AppAttach> {
    (
        small_bytes(),
        small_bytes(),
        any::<u16>(),
        bytes_up_to(255),
        list(ice_candidate()),
    )
        .prop_map(|(ufrag, password, app, role, candidates)| AppAttach {
            ufrag,
            password,
            application: ApplicationId(app),
            role,
            candidates,
        })
        .boxed()
}

// ---------------------------------------------------------------------------
// Probe, Ping, ConfigUpdate
// ---------------------------------------------------------------------------

/// Any Probe request.
pub fn probe_req() -> BoxedStrategy<ProbeReq> {
    prop_oneof![
        8 => vec(any::<u8>(), 0..8),
        1 => vec(any::<u8>(), 250..=255),
    ]
    .prop_map(|types| ProbeReq {
        requested_info: types.into_iter().map(ProbeInformationType).collect(),
    })
    .boxed()
}

/// Every ProbeInformation variant (unknown types 4..=255).
pub fn probe_information() -> BoxedStrategy<ProbeInformation> {
    prop_oneof![
        any::<u32>().prop_map(ProbeInformation::ResponsibleSet),
        any::<u32>().prop_map(ProbeInformation::NumResources),
        any::<u32>().prop_map(ProbeInformation::Uptime),
        (4u8..=255, bytes_up_to(255)).prop_map(|(t, value)| ProbeInformation::Unknown {
            info_type: ProbeInformationType(t),
            value,
        }),
    ]
    .boxed()
}

/// Any Probe answer.
pub fn probe_ans() -> BoxedStrategy<ProbeAns> {
    list(probe_information())
        .prop_map(|probe_info| ProbeAns { probe_info })
        .boxed()
}

/// Any Ping request.
pub fn ping_req() -> BoxedStrategy<PingReq> {
    prop_oneof![
        8 => small_bytes(),
        1 => vec(any::<u8>(), 1000..1200),
    ]
    .prop_map(|padding| PingReq { padding })
    .boxed()
}

/// Any Ping answer.
pub fn ping_ans() -> BoxedStrategy<PingAns> {
    (any::<u64>(), any::<u64>())
        .prop_map(|(response_id, time)| PingAns { response_id, time })
        .boxed()
}

/// Any kind description.
pub fn kind_description() -> BoxedStrategy<KindDescription> {
    small_bytes().prop_map(KindDescription).boxed()
}

/// Every ConfigUpdateReq variant (unknown types 3..=255).
pub fn config_update_req() -> BoxedStrategy<ConfigUpdateReq> {
    prop_oneof![
        small_bytes().prop_map(|config_data| ConfigUpdateReq::Config { config_data }),
        list(kind_description()).prop_map(|kinds| ConfigUpdateReq::Kind { kinds }),
        (3u8..=255, small_bytes()).prop_map(|(t, data)| ConfigUpdateReq::Unknown {
            update_type: ConfigUpdateType(t),
            data,
        }),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------
// Topology and CHORD-RELOAD
// ---------------------------------------------------------------------------

/// Any Join request.
pub fn join_req() -> BoxedStrategy<JoinReq> {
    (node_id(), small_bytes())
        .prop_map(|(joining_peer_id, overlay_specific_data)| JoinReq {
            joining_peer_id,
            overlay_specific_data,
        })
        .boxed()
}

/// Any Join answer.
pub fn join_ans() -> BoxedStrategy<JoinAns> {
    small_bytes()
        .prop_map(|overlay_specific_data| JoinAns { overlay_specific_data })
        .boxed()
}

/// Both ChordLeaveData variants.
pub fn chord_leave_data() -> BoxedStrategy<ChordLeaveData> {
    prop_oneof![
        list(node_id()).prop_map(|successors| ChordLeaveData::FromSucc { successors }),
        list(node_id()).prop_map(|predecessors| ChordLeaveData::FromPred { predecessors }),
    ]
    .boxed()
}

/// Leave requests with and without CHORD data.
pub fn leave_req() -> BoxedStrategy<LeaveReq> {
    (node_id(), prop::option::of(chord_leave_data()))
        .prop_map(|(leaving_peer_id, chord)| LeaveReq { leaving_peer_id, chord })
        .boxed()
}

/// Any RouteQuery request.
pub fn route_query_req() -> BoxedStrategy<RouteQueryReq> {
    (any::<bool>(), destination(), small_bytes())
        .prop_map(|(send_update, destination, overlay_specific_data)| RouteQueryReq {
            send_update,
            destination,
            overlay_specific_data,
        })
        .boxed()
}

/// Every ChordUpdate type.
pub fn chord_update() -> BoxedStrategy<ChordUpdate> {
    let data = prop_oneof![
        Just(ChordUpdateData::PeerReady),
        (list(node_id()), list(node_id())).prop_map(|(predecessors, successors)| ChordUpdateData::Neighbors {
            predecessors,
            successors
        }),
        (list(node_id()), list(node_id()), list(node_id())).prop_map(|(predecessors, successors, fingers)| {
            ChordUpdateData::Full {
                predecessors,
                successors,
                fingers,
            }
        }),
    ];
    (any::<u32>(), data)
        .prop_map(|(uptime, data)| ChordUpdate { uptime, data })
        .boxed()
}

/// Any CHORD RouteQuery answer.
pub fn chord_route_query_ans() -> BoxedStrategy<ChordRouteQueryAns> {
    node_id().prop_map(|next_peer| ChordRouteQueryAns { next_peer }).boxed()
}

// ---------------------------------------------------------------------------
// Security
// ---------------------------------------------------------------------------

/// Any generic certificate.
pub fn generic_certificate() -> BoxedStrategy<GenericCertificate> {
    (any::<u8>(), small_bytes())
        .prop_map(|(t, certificate)| GenericCertificate {
            certificate_type: CertificateType(t),
            certificate,
        })
        .boxed()
}

/// Every SignerIdentity variant (unknown types 4..=255).
pub fn signer_identity() -> BoxedStrategy<SignerIdentity> {
    prop_oneof![
        (any::<u8>(), bytes_up_to(255)).prop_map(|(h, certificate_hash)| SignerIdentity::CertHash {
            hash_alg: HashAlgorithm(h),
            certificate_hash,
        }),
        (any::<u8>(), bytes_up_to(255)).prop_map(|(h, certificate_node_id_hash)| SignerIdentity::CertHashNodeId {
            hash_alg: HashAlgorithm(h),
            certificate_node_id_hash,
        }),
        Just(SignerIdentity::None),
        (4u8..=255, small_bytes()).prop_map(|(t, identity)| SignerIdentity::Unknown {
            identity_type: SignerIdentityType(t),
            identity,
        }),
    ]
    .boxed()
}

/// Any signature.
pub fn signature() -> BoxedStrategy<Signature> {
    (any::<u8>(), any::<u8>(), signer_identity(), small_bytes())
        .prop_map(|(hash, sig, identity, signature_value)| Signature {
            algorithm: SignatureAndHashAlgorithm {
                hash: HashAlgorithm(hash),
                signature: SignatureAlgorithm(sig),
            },
            identity,
            signature_value,
        })
        .boxed()
}

/// Any security block.
pub fn security_block() -> BoxedStrategy<SecurityBlock> {
    (list(generic_certificate()), signature())
        .prop_map(|(certificates, signature)| SecurityBlock {
            certificates,
            signature,
        })
        .boxed()
}

// ---------------------------------------------------------------------------
// Storage
// ---------------------------------------------------------------------------

/// Kind-IDs defined only in these tests, one per data model.
pub const EXTRA_SINGLE: KindId = KindId(0xf000_0001);
/// An extra array Kind.
pub const EXTRA_ARRAY: KindId = KindId(0xf000_0002);
/// An extra dictionary Kind.
pub const EXTRA_DICTIONARY: KindId = KindId(0xf000_0003);

/// The registered Kinds plus one extra Kind per data model: the only Kinds the
/// storage strategies use.
pub fn models() -> DataModels {
    let mut m = DataModels::registered();
    m.insert(EXTRA_SINGLE, DataModel::Single);
    m.insert(EXTRA_ARRAY, DataModel::Array);
    m.insert(EXTRA_DICTIONARY, DataModel::Dictionary);
    m
}

/// A Kind of [`models`] with its data model.
pub fn known_kind() -> BoxedStrategy<(KindId, DataModel)> {
    prop::sample::select(models().iter().collect::<Vec<_>>()).boxed()
}

/// Any data model.
pub fn data_model() -> BoxedStrategy<DataModel> {
    prop_oneof![
        Just(DataModel::Single),
        Just(DataModel::Array),
        Just(DataModel::Dictionary)
    ]
    .boxed()
}

/// Any DataValue.
pub fn data_value() -> BoxedStrategy<DataValue> {
    prop_oneof![
        4 => small_bytes().prop_map(DataValue::new),
        1 => Just(DataValue::absent()),
        1 => (any::<bool>(), small_bytes()).prop_map(|(exists, value)| DataValue { exists, value }),
    ]
    .boxed()
}

/// A StoredDataValue of `model`.
pub fn stored_data_value(model: DataModel) -> BoxedStrategy<StoredDataValue> {
    match model {
        DataModel::Single => data_value().prop_map(|value| StoredDataValue::Single { value }).boxed(),
        DataModel::Array => (
            prop_oneof![3 => any::<u32>(), 1 => Just(storage::ARRAY_APPEND)],
            data_value(),
        )
            .prop_map(|(index, value)| StoredDataValue::Array { index, value })
            .boxed(),
        DataModel::Dictionary => (small_bytes(), data_value())
            .prop_map(|(key, value)| StoredDataValue::Dictionary { key, value })
            .boxed(),
    }
}

/// A StoredData whose value is of `model`.
pub fn stored_data(model: DataModel) -> BoxedStrategy<StoredData> {
    (any::<u64>(), any::<u32>(), stored_data_value(model), signature())
        .prop_map(|(storage_time, lifetime, value, signature)| StoredData {
            storage_time,
            lifetime,
            value,
            signature,
        })
        .boxed()
}

/// A data model and a StoredData of that model.
pub fn stored_data_any_model() -> BoxedStrategy<(DataModel, StoredData)> {
    data_model().prop_flat_map(|m| (Just(m), stored_data(m))).boxed()
}

/// A StoreKindData of a known Kind; all its values share the Kind's data model.
pub fn store_kind_data() -> BoxedStrategy<StoreKindData> {
    known_kind()
        .prop_flat_map(|(kind, model)| (Just(kind), any::<u64>(), list(stored_data(model))))
        .prop_map(|(kind, generation_counter, values)| StoreKindData {
            kind,
            generation_counter,
            values,
        })
        .boxed()
}

/// Any Store request over known Kinds.
pub fn store_req() -> BoxedStrategy<StoreReq> {
    (resource_id(), any::<u8>(), list(store_kind_data()))
        .prop_map(|(resource, replica_number, kind_data)| StoreReq {
            resource,
            replica_number,
            kind_data,
        })
        .boxed()
}

/// Any StoreKindResponse.
pub fn store_kind_response() -> BoxedStrategy<StoreKindResponse> {
    (kind_id(), any::<u64>(), list(node_id()))
        .prop_map(|(kind, generation_counter, replicas)| StoreKindResponse {
            kind,
            generation_counter,
            replicas,
        })
        .boxed()
}

/// Any Store answer.
pub fn store_ans() -> BoxedStrategy<StoreAns> {
    list(store_kind_response())
        .prop_map(|kind_responses| StoreAns { kind_responses })
        .boxed()
}

/// Any ArrayRange.
pub fn array_range() -> BoxedStrategy<ArrayRange> {
    (any::<u32>(), any::<u32>())
        .prop_map(|(first, last)| ArrayRange { first, last })
        .boxed()
}

/// Any DictionaryKey.
pub fn dictionary_key() -> BoxedStrategy<DictionaryKey> {
    small_bytes().prop_map(DictionaryKey).boxed()
}

/// A model specifier of `model`.
pub fn model_specifier(model: DataModel) -> BoxedStrategy<ModelSpecifier> {
    match model {
        DataModel::Single => Just(ModelSpecifier::Single).boxed(),
        DataModel::Array => list(array_range()).prop_map(ModelSpecifier::Array).boxed(),
        DataModel::Dictionary => list(dictionary_key()).prop_map(ModelSpecifier::Dictionary).boxed(),
    }
}

/// A StoredDataSpecifier of a known Kind, its specifier matching the Kind's model.
pub fn stored_data_specifier() -> BoxedStrategy<StoredDataSpecifier> {
    known_kind()
        .prop_flat_map(|(kind, model)| (Just(kind), any::<u64>(), model_specifier(model)))
        .prop_map(|(kind, generation, model_specifier)| StoredDataSpecifier {
            kind,
            generation,
            model_specifier,
        })
        .boxed()
}

/// Any Fetch (or Stat) request over known Kinds.
pub fn fetch_req() -> BoxedStrategy<FetchReq> {
    (resource_id(), list(stored_data_specifier()))
        .prop_map(|(resource, specifiers)| FetchReq { resource, specifiers })
        .boxed()
}

/// A FetchKindResponse of a known Kind.
pub fn fetch_kind_response() -> BoxedStrategy<FetchKindResponse> {
    known_kind()
        .prop_flat_map(|(kind, model)| (Just(kind), any::<u64>(), list(stored_data(model))))
        .prop_map(|(kind, generation, values)| FetchKindResponse {
            kind,
            generation,
            values,
        })
        .boxed()
}

/// Any Fetch answer over known Kinds.
pub fn fetch_ans() -> BoxedStrategy<FetchAns> {
    list(fetch_kind_response())
        .prop_map(|kind_responses| FetchAns { kind_responses })
        .boxed()
}

/// Any MetaData.
pub fn meta_data() -> BoxedStrategy<MetaData> {
    (any::<bool>(), any::<u32>(), any::<u8>(), bytes_up_to(255))
        .prop_map(|(exists, value_length, h, hash_value)| MetaData {
            exists,
            value_length,
            hash_algorithm: HashAlgorithm(h),
            hash_value,
        })
        .boxed()
}

/// A MetaDataValue of `model`.
pub fn meta_data_value(model: DataModel) -> BoxedStrategy<MetaDataValue> {
    match model {
        DataModel::Single => meta_data().prop_map(|value| MetaDataValue::Single { value }).boxed(),
        DataModel::Array => (any::<u32>(), meta_data())
            .prop_map(|(index, value)| MetaDataValue::Array { index, value })
            .boxed(),
        DataModel::Dictionary => (small_bytes(), meta_data())
            .prop_map(|(key, value)| MetaDataValue::Dictionary { key, value })
            .boxed(),
    }
}

/// A StoredMetaData of `model`.
pub fn stored_meta_data(model: DataModel) -> BoxedStrategy<StoredMetaData> {
    (any::<u64>(), any::<u32>(), meta_data_value(model))
        .prop_map(|(storage_time, lifetime, metadata)| StoredMetaData {
            storage_time,
            lifetime,
            metadata,
        })
        .boxed()
}

/// A StatKindResponse of a known Kind.
pub fn stat_kind_response() -> BoxedStrategy<StatKindResponse> {
    known_kind()
        .prop_flat_map(|(kind, model)| (Just(kind), any::<u64>(), list(stored_meta_data(model))))
        .prop_map(|(kind, generation, values)| StatKindResponse {
            kind,
            generation,
            values,
        })
        .boxed()
}

/// Any Stat answer over known Kinds.
pub fn stat_ans() -> BoxedStrategy<StatAns> {
    list(stat_kind_response())
        .prop_map(|kind_responses| StatAns { kind_responses })
        .boxed()
}

/// Any Find request (its Kinds need no data model).
pub fn find_req() -> BoxedStrategy<FindReq> {
    (
        resource_id(),
        prop_oneof![8 => list(kind_id()), 1 => vec(kind_id(), 60..=63)],
    )
        .prop_map(|(resource, kinds)| FindReq { resource, kinds })
        .boxed()
}

/// Any FindKindData.
pub fn find_kind_data() -> BoxedStrategy<FindKindData> {
    (kind_id(), resource_id())
        .prop_map(|(kind, closest)| FindKindData { kind, closest })
        .boxed()
}

/// Any Find answer.
pub fn find_ans() -> BoxedStrategy<FindAns> {
    list(find_kind_data()).prop_map(|results| FindAns { results }).boxed()
}

// ---------------------------------------------------------------------------
// Message contents and whole messages
// ---------------------------------------------------------------------------

/// Any ErrorResponse, sometimes with a structured error_info.
pub fn error_response() -> BoxedStrategy<ErrorResponse> {
    prop_oneof![
        3 => (any::<u16>(), bytes_up_to(300)).prop_map(|(code, error_info)| ErrorResponse {
            error_code: ErrorCode(code),
            error_info,
        }),
        1 => list(kind_id()).prop_map(|k| ErrorResponse::unknown_kinds(&k).expect("few kinds")),
        1 => store_ans().prop_map(|a| ErrorResponse::generation_counter_too_low(&a).expect("small StoreAns")),
    ]
    .boxed()
}

/// Any message extension.
pub fn message_extension() -> BoxedStrategy<MessageExtension> {
    (any::<u16>(), any::<bool>(), small_bytes())
        .prop_map(|(t, critical, extension_contents)| MessageExtension {
            extension_type: MessageExtensionType(t),
            critical,
            extension_contents,
        })
        .boxed()
}

/// Message codes without a defined body: the experimental ones, the unassigned
/// ones below 0x8000 and the reserved range 0x8000..=0xfffe.
pub fn other_message_code() -> BoxedStrategy<MessageCode> {
    prop_oneof![
        (0x23u16..=0x26),
        prop::sample::select(vec![0x5u16, 0x6, 0xb, 0xc, 0x1b, 0x1c, 0x1f, 0x20]),
        (0x27u16..=0x7fff),
        (0x8000u16..=0xfffe),
    ]
    .prop_map(MessageCode)
    .boxed()
}

/// Every MessageBody variant.
pub fn message_body() -> BoxedStrategy<MessageBody> {
    use MessageBody as B;
    prop_oneof![
        probe_req().prop_map(B::ProbeReq),
        probe_ans().prop_map(B::ProbeAns),
        attach_req_ans().prop_map(B::AttachReq),
        attach_req_ans().prop_map(B::AttachAns),
        store_req().prop_map(B::StoreReq),
        store_ans().prop_map(B::StoreAns),
        fetch_req().prop_map(B::FetchReq),
        fetch_ans().prop_map(B::FetchAns),
        find_req().prop_map(B::FindReq),
        find_ans().prop_map(B::FindAns),
        join_req().prop_map(B::JoinReq),
        join_ans().prop_map(B::JoinAns),
        leave_req().prop_map(B::LeaveReq),
        Just(B::LeaveAns),
        chord_update().prop_map(B::UpdateReq),
        Just(B::UpdateAns),
        route_query_req().prop_map(B::RouteQueryReq),
        chord_route_query_ans().prop_map(B::RouteQueryAns),
        ping_req().prop_map(B::PingReq),
        ping_ans().prop_map(B::PingAns),
        fetch_req().prop_map(B::StatReq),
        stat_ans().prop_map(B::StatAns),
        app_attach().prop_map(B::AppAttachReq),
        app_attach().prop_map(B::AppAttachAns),
        config_update_req().prop_map(B::ConfigUpdateReq),
        Just(B::ConfigUpdateAns),
        error_response().prop_map(B::Error),
        (other_message_code(), small_bytes()).prop_map(|(code, body)| B::Other { code, body }),
    ]
    .boxed()
}

/// Any message contents.
pub fn message_contents() -> BoxedStrategy<MessageContents> {
    (message_body(), list(message_extension()))
        .prop_map(|(body, extensions)| MessageContents { body, extensions })
        .boxed()
}

/// Any whole (unfragmented) message.
pub fn message() -> BoxedStrategy<Message> {
    (whole_message_header(), message_contents(), security_block())
        .prop_map(|(header, contents, security)| Message {
            header,
            contents,
            security,
        })
        .boxed()
}

/// Both frame types; data frames carry random bytes or a real encoded message.
pub fn framed_message() -> BoxedStrategy<FramedMessage> {
    prop_oneof![
        (any::<u32>(), small_bytes()).prop_map(|(sequence, message)| FramedMessage::Data { sequence, message }),
        (any::<u32>(), message()).prop_map(|(sequence, m)| FramedMessage::Data {
            sequence,
            message: m.encode().expect("valid message"),
        }),
        (any::<u32>(), any::<u32>()).prop_map(|(ack_sequence, received)| FramedMessage::Ack { ack_sequence, received }),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------
// Values of the registered Kinds
// ---------------------------------------------------------------------------

/// Any TurnServer.
pub fn turn_server() -> BoxedStrategy<TurnServer> {
    (any::<u8>(), ip_address_port())
        .prop_map(|(iteration, server_address)| TurnServer {
            iteration,
            server_address,
        })
        .boxed()
}

/// A destination list that is valid in a SipRegistration route: non-empty and at
/// least 3 bytes long (`Destination destination_list<3..2^16-1>`), so not a lone
/// 2-byte compressed id or empty unknown destination.
pub fn route_destination_list() -> BoxedStrategy<Vec<Destination>> {
    vec(destination(), 1..4)
        .prop_filter("destination_list<3..2^16-1> needs at least 3 bytes", |l| {
            l.iter()
                .map(|d| d.to_bytes().expect("valid destination").len())
                .sum::<usize>()
                >= 3
        })
        .boxed()
}

/// Every SipRegistration variant (unknown types 3..=255).
pub fn sip_registration() -> BoxedStrategy<SipRegistration> {
    prop_oneof![
        prop_oneof![Just(b"sip:alice@example.com".to_vec()), small_bytes()]
            .prop_map(|uri| SipRegistration::Uri { uri }),
        (small_bytes(), route_destination_list()).prop_map(|(contact_prefs, destination_list)| {
            SipRegistration::Route {
                contact_prefs,
                destination_list,
            }
        }),
        (3u8..=255, small_bytes()).prop_map(|(t, data)| SipRegistration::Unknown {
            registration_type: SipRegistrationType(t),
            data,
        }),
    ]
    .boxed()
}
