//! Code points of the RELOAD registries (RFC 6940 §14, RFC 7904 §9, RFC 5246 for the
//! TLS algorithm registries). Each is a newtype over its wire integer, so a value the
//! registry does not know yet is kept exactly as received; the named constants are
//! the registered values.

use std::fmt;

use serde::{Serialize, Serializer};

macro_rules! code_point {
    (
        $(#[$meta:meta])*
        pub struct $name:ident($ty:ty);
        $( $(#[$cmeta:meta])* $konst:ident = $value:literal => $text:literal, )*
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $ty);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: $name = $name($value); )*

            /// The registered name, or `None` for a value the registry does not define.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some($text), )*
                    _ => None,
                }
            }

            /// Every registered value.
            pub const ALL: &'static [$name] = &[$( $name($value) ),*];
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}({:#x})", stringify!($name), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self.name() {
                    Some(n) => s.serialize_str(n),
                    None => s.serialize_u64(self.0.into()),
                }
            }
        }

        impl From<$ty> for $name {
            fn from(v: $ty) -> Self {
                $name(v)
            }
        }
    };
}

code_point! {
    /// `message_code` (RFC 6940 §6.3.3, registry §14.8). Requests are odd, the
    /// answer is the request plus one, 0xffff is Error.
    pub struct MessageCode(u16);
    /// Probe request.
    PROBE_REQ = 0x1 => "probe_req",
    /// Probe answer.
    PROBE_ANS = 0x2 => "probe_ans",
    /// Attach request.
    ATTACH_REQ = 0x3 => "attach_req",
    /// Attach answer.
    ATTACH_ANS = 0x4 => "attach_ans",
    /// Store request.
    STORE_REQ = 0x7 => "store_req",
    /// Store answer.
    STORE_ANS = 0x8 => "store_ans",
    /// Fetch request.
    FETCH_REQ = 0x9 => "fetch_req",
    /// Fetch answer.
    FETCH_ANS = 0xa => "fetch_ans",
    /// Find request.
    FIND_REQ = 0xd => "find_req",
    /// Find answer.
    FIND_ANS = 0xe => "find_ans",
    /// Join request.
    JOIN_REQ = 0xf => "join_req",
    /// Join answer.
    JOIN_ANS = 0x10 => "join_ans",
    /// Leave request.
    LEAVE_REQ = 0x11 => "leave_req",
    /// Leave answer.
    LEAVE_ANS = 0x12 => "leave_ans",
    /// Update request.
    UPDATE_REQ = 0x13 => "update_req",
    /// Update answer.
    UPDATE_ANS = 0x14 => "update_ans",
    /// RouteQuery request.
    ROUTE_QUERY_REQ = 0x15 => "route_query_req",
    /// RouteQuery answer.
    ROUTE_QUERY_ANS = 0x16 => "route_query_ans",
    /// Ping request.
    PING_REQ = 0x17 => "ping_req",
    /// Ping answer.
    PING_ANS = 0x18 => "ping_ans",
    /// Stat request.
    STAT_REQ = 0x19 => "stat_req",
    /// Stat answer.
    STAT_ANS = 0x1a => "stat_ans",
    /// AppAttach request.
    APP_ATTACH_REQ = 0x1d => "app_attach_req",
    /// AppAttach answer.
    APP_ATTACH_ANS = 0x1e => "app_attach_ans",
    /// ConfigUpdate request.
    CONFIG_UPDATE_REQ = 0x21 => "config_update_req",
    /// ConfigUpdate answer.
    CONFIG_UPDATE_ANS = 0x22 => "config_update_ans",
    /// Experimental request A.
    EXP_A_REQ = 0x23 => "exp_a_req",
    /// Experimental answer A.
    EXP_A_ANS = 0x24 => "exp_a_ans",
    /// Experimental request B.
    EXP_B_REQ = 0x25 => "exp_b_req",
    /// Experimental answer B.
    EXP_B_ANS = 0x26 => "exp_b_ans",
    /// An ErrorResponse.
    ERROR = 0xffff => "error",
}

impl MessageCode {
    /// Codes 0x1..0x7fff pair requests (odd) with answers (even).
    pub fn is_request(self) -> bool {
        (1..0x8000).contains(&self.0) && self.0 % 2 == 1
    }

    /// An answer or an Error.
    pub fn is_response(self) -> bool {
        self == MessageCode::ERROR || ((1..0x8000).contains(&self.0) && self.0 % 2 == 0)
    }

    /// The answer code that goes with a request code.
    pub fn answer(self) -> Option<MessageCode> {
        self.is_request().then(|| MessageCode(self.0 + 1))
    }
}

code_point! {
    /// `error_code` of an ErrorResponse (RFC 6940 §6.3.3.1, registry §14.9).
    pub struct ErrorCode(u16);
    /// The requester may not do this.
    FORBIDDEN = 0x2 => "Error_Forbidden",
    /// No such resource or node.
    NOT_FOUND = 0x3 => "Error_Not_Found",
    /// No response in time.
    REQUEST_TIMEOUT = 0x4 => "Error_Request_Timeout",
    /// A store's generation counter precedes the stored one.
    GENERATION_COUNTER_TOO_LOW = 0x5 => "Error_Generation_Counter_Too_Low",
    /// Another overlay, algorithm or parameter.
    INCOMPATIBLE_WITH_OVERLAY = 0x6 => "Error_Incompatible_with_Overlay",
    /// A critical forwarding option is not understood.
    UNSUPPORTED_FORWARDING_OPTION = 0x7 => "Error_Unsupported_Forwarding_Option",
    /// A value exceeds the Kind's size limits.
    DATA_TOO_LARGE = 0x8 => "Error_Data_Too_Large",
    /// A store's storage_time precedes the stored one.
    DATA_TOO_OLD = 0x9 => "Error_Data_Too_Old",
    /// The TTL ran out.
    TTL_EXCEEDED = 0xa => "Error_TTL_Exceeded",
    /// The request exceeds the message size limit.
    MESSAGE_TOO_LARGE = 0xb => "Error_Message_Too_Large",
    /// A Kind-ID is unknown; error_info lists them.
    UNKNOWN_KIND = 0xc => "Error_Unknown_Kind",
    /// A critical extension is not understood.
    UNKNOWN_EXTENSION = 0xd => "Error_Unknown_Extension",
    /// The answer would exceed max_response_length.
    RESPONSE_TOO_LARGE = 0xe => "Error_Response_Too_Large",
    /// The request's configuration sequence is too old.
    CONFIG_TOO_OLD = 0xf => "Error_Config_Too_Old",
    /// The request's configuration sequence is too new.
    CONFIG_TOO_NEW = 0x10 => "Error_Config_Too_New",
    /// An Attach to this peer is already in progress.
    IN_PROGRESS = 0x11 => "Error_In_Progress",
    /// Experimental A.
    EXP_A = 0x12 => "Error_Exp_A",
    /// Experimental B.
    EXP_B = 0x13 => "Error_Exp_B",
    /// Anything else wrong with the message.
    INVALID_MESSAGE = 0x14 => "Error_Invalid_Message",
}

code_point! {
    /// `ForwardingOptionType` (RFC 6940 §6.3.2.3, registry §14.12).
    pub struct ForwardingOptionType(u8);
    /// Experimental forwarding option.
    EXP_FORWARD = 0x1 => "exp-forward",
}

code_point! {
    /// `MessageExtensionType` (RFC 6940 §6.3.3, registry §14.14).
    pub struct MessageExtensionType(u16);
    /// Experimental extension.
    EXP_EXT = 0x1 => "exp-ext",
}

code_point! {
    /// `ProbeInformationType` (RFC 6940 §6.4.2.5.1, registry §14.13).
    pub struct ProbeInformationType(u8);
    /// Fraction of the overlay the peer is responsible for, in parts per billion.
    RESPONSIBLE_SET = 0x1 => "responsible_set",
    /// Number of resources the peer stores.
    NUM_RESOURCES = 0x2 => "num_resources",
    /// Seconds the peer has been up.
    UPTIME = 0x3 => "uptime",
    /// Experimental.
    EXP_PROBE = 0x4 => "exp-probe",
}

code_point! {
    /// `OverlayLinkType` of an ICE candidate (RFC 6940 §6.5.1.1, registry §14.10).
    pub struct OverlayLinkType(u8);
    /// DTLS over UDP with simple reliability, with ICE.
    DTLS_UDP_SR = 1 => "DTLS-UDP-SR",
    /// DTLS over UDP with simple reliability, without ICE.
    DTLS_UDP_SR_NO_ICE = 3 => "DTLS-UDP-SR-NO-ICE",
    /// TLS over TCP with the framing header, without ICE.
    TLS_TCP_FH_NO_ICE = 4 => "TLS-TCP-FH-NO-ICE",
    /// Experimental.
    EXP_LINK = 5 => "EXP-LINK",
}

impl OverlayLinkType {
    /// Whether candidates of this link type skip ICE (§6.5.1.1: "No-ICE" protocols).
    pub fn is_no_ice(self) -> bool {
        matches!(
            self,
            OverlayLinkType::DTLS_UDP_SR_NO_ICE | OverlayLinkType::TLS_TCP_FH_NO_ICE
        )
    }
}

code_point! {
    /// Application-ID of an AppAttach (RFC 6940 §6.5.2.1, registry §14.5).
    pub struct ApplicationId(u16);
    /// SIP (RFC 7904 §5).
    SIP = 5060 => "SIP",
    /// SIP over TLS (RFC 7904 §5).
    SIPS = 5061 => "SIPS",
}

code_point! {
    /// TLS `HashAlgorithm` (RFC 5246 §7.4.1.4.1), used in signatures and metadata.
    pub struct HashAlgorithm(u8);
    /// No hash.
    NONE = 0 => "none",
    /// MD5.
    MD5 = 1 => "md5",
    /// SHA-1.
    SHA1 = 2 => "sha1",
    /// SHA-224.
    SHA224 = 3 => "sha224",
    /// SHA-256.
    SHA256 = 4 => "sha256",
    /// SHA-384.
    SHA384 = 5 => "sha384",
    /// SHA-512.
    SHA512 = 6 => "sha512",
}

code_point! {
    /// TLS `SignatureAlgorithm` (RFC 5246 §7.4.1.4.1).
    pub struct SignatureAlgorithm(u8);
    /// No signature: only for values the storing peer synthesizes (§7.4.2.2).
    ANONYMOUS = 0 => "anonymous",
    /// RSASSA-PKCS1-v1_5.
    RSA = 1 => "rsa",
    /// DSA.
    DSA = 2 => "dsa",
    /// ECDSA.
    ECDSA = 3 => "ecdsa",
}

code_point! {
    /// `CertificateType` of a GenericCertificate (RFC 6091 §3.1, as RFC 6940 §6.3.4 uses it).
    pub struct CertificateType(u8);
    /// A DER X.509 certificate.
    X509 = 0 => "X.509",
    /// An OpenPGP key.
    OPENPGP = 1 => "OpenPGP",
}

code_point! {
    /// `DestinationType` (RFC 6940 §6.3.2.2). Values 128..255 are not allowed: the
    /// top bit marks the 16-bit compressed form.
    pub struct DestinationType(u8);
    /// A Node-ID.
    NODE = 1 => "node",
    /// A Resource-ID.
    RESOURCE = 2 => "resource",
    /// An opaque (compressed) id.
    OPAQUE_ID = 3 => "opaque_id_type",
}

code_point! {
    /// `SignerIdentityType` (RFC 6940 §6.3.4).
    pub struct SignerIdentityType(u8);
    /// Hash of the signer's certificate.
    CERT_HASH = 1 => "cert_hash",
    /// Hash of the Node-ID and the certificate.
    CERT_HASH_NODE_ID = 2 => "cert_hash_node_id",
    /// No identity: synthesized values only.
    NONE = 3 => "none",
}

code_point! {
    /// `CandType` of an ICE candidate (RFC 6940 §6.5.1.1).
    pub struct CandType(u8);
    /// Host candidate.
    HOST = 1 => "host",
    /// Server-reflexive candidate.
    SRFLX = 2 => "srflx",
    /// Relayed candidate.
    RELAY = 4 => "relay",
}

code_point! {
    /// `AddressType` of an IpAddressPort (RFC 6940 §6.3.1.1).
    pub struct AddressType(u8);
    /// IPv4.
    IPV4 = 1 => "ipv4_address",
    /// IPv6.
    IPV6 = 2 => "ipv6_address",
}

code_point! {
    /// `ConfigUpdateType` (RFC 6940 §6.5.4.1).
    pub struct ConfigUpdateType(u8);
    /// A whole configuration document.
    CONFIG = 1 => "config",
    /// Kind descriptions.
    KIND = 2 => "kind",
}

code_point! {
    /// `ChordUpdateType` (RFC 6940 §10.7).
    pub struct ChordUpdateType(u8);
    /// The sender is ready to route.
    PEER_READY = 1 => "peer_ready",
    /// Predecessors and successors.
    NEIGHBORS = 2 => "neighbors",
    /// Predecessors, successors and fingers.
    FULL = 3 => "full",
}

code_point! {
    /// `ChordLeaveType` (RFC 6940 §10.9).
    pub struct ChordLeaveType(u8);
    /// Sent by a successor.
    FROM_SUCC = 1 => "from_succ",
    /// Sent by a predecessor.
    FROM_PRED = 2 => "from_pred",
}

code_point! {
    /// `SipRegistrationType` (RFC 7904 §3.2).
    pub struct SipRegistrationType(u8);
    /// AOR to AOR.
    URI = 1 => "sip_registration_uri",
    /// AOR to destination list.
    ROUTE = 2 => "sip_registration_route",
}

code_point! {
    /// `FramedMessageType` (RFC 6940 §6.6.2).
    pub struct FramedMessageType(u8);
    /// A data frame.
    DATA = 128 => "data",
    /// An acknowledgement.
    ACK = 129 => "ack",
}
