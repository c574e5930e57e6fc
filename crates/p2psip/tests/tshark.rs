//! Wireshark cross-check: the pcap of `p2psip wire sample --pcap` is decoded by
//! tshark's RELOAD dissector, and every value tshark shows must be the value the
//! samples encode. tshark must flag nothing as malformed, and no expert info at
//! warning or error level.
//!
//! Where tshark 4.0 and RFC 6940 disagree, the RFC wins: the test pins down the
//! specific disagreement, naming the section, so that a tshark that changes its
//! mind shows up here.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use reload_wire::samples::{self, Sample};
use reload_wire::{
    CandType, CandidateType, ChordLeaveData, ChordLeaveType, ChordUpdateData, ChordUpdateType, ConfigUpdateReq,
    ConfigUpdateType, DataValue, Decode, Destination, DestinationType, Encode, IceCandidate, IpAddressPort, KindId,
    MessageBody, MessageCode, MetaData, MetaDataValue, ModelSpecifier, ProbeInformation, SignerIdentity,
    SipRegistration, SipRegistrationType, StoredData, StoredDataSpecifier, StoredDataValue, TurnServer, Writer,
};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// The sample pcap's endpoints (`crates/p2psip/src/wire.rs`): the TCP client, the
/// peer it connects to, and the client's UDP socket.
const CLIENT_IP: &str = "192.0.2.10";
const CLIENT_TCP_PORT: u128 = 50_000;
const PEER_IP: &str = "192.0.2.20";
const RELOAD_PORT: u128 = 6084;

/// `relo_token` (RFC 6940 §6.3.2).
const RELO_TOKEN: u128 = 0xd245_4c4f;
/// FramedMessageType data and ack (RFC 6940 §6.6.2).
const FRAME_DATA: u128 = 128;
const FRAME_ACK: u128 = 129;
/// Wireshark's expert severities: PI_CHAT < PI_NOTE < PI_WARN < PI_ERROR.
const PI_WARN: u128 = 0x0060_0000;

// ---------------------------------------------------------------------------
// Running the binary and tshark
// ---------------------------------------------------------------------------

/// Removes the pcap however the test ends.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn tshark(args: &[&str]) -> Vec<u8> {
    let out = match Command::new("tshark").args(args).env("TZ", "UTC").output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "tshark is not installed, and this test needs it: `.ci/run` installs it \
             (apt-get install tshark). It is never skipped."
        ),
        Err(e) => panic!("running tshark {args:?}: {e}"),
    };
    assert!(
        out.status.success(),
        "tshark {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn write_sample_pcap(path: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_p2psip"))
        .args(["wire", "sample", "--pcap"])
        .arg(path)
        .output()
        .expect("running p2psip");
    assert!(
        out.status.success(),
        "p2psip wire sample --pcap failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------
// tshark's JSON, keeping duplicate keys
// ---------------------------------------------------------------------------

/// A JSON value whose objects keep their members in order, duplicates included:
/// tshark's `-T json` writes a key once per occurrence of a field (three probe
/// types are three `reload.probe_information.type` members of one object), which a
/// map would collapse to the last one.
#[derive(Debug)]
enum J {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl<'de> Deserialize<'de> for J {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JVisitor)
    }
}

struct JVisitor;

impl<'de> Visitor<'de> for JVisitor {
    type Value = J;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<J, E> {
        Ok(J::Null)
    }
    fn visit_none<E>(self) -> Result<J, E> {
        Ok(J::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<J, E> {
        Ok(J::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<J, E> {
        Ok(J::Num(v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<J, E> {
        Ok(J::Num(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<J, E> {
        Ok(J::Num(v.to_string()))
    }
    fn visit_str<E>(self, v: &str) -> Result<J, E> {
        Ok(J::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<J, E> {
        Ok(J::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<J, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = a.next_element()? {
            items.push(item);
        }
        Ok(J::Arr(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<J, A::Error> {
        let mut members = Vec::new();
        while let Some(member) = a.next_entry::<String, J>()? {
            members.push(member);
        }
        Ok(J::Obj(members))
    }
}

impl J {
    fn members(&self) -> &[(String, J)] {
        match self {
            J::Obj(m) => m,
            _ => &[],
        }
    }

    /// Every value under `key`, at any depth, in document order.
    fn descendants<'a>(&'a self, key: &str, out: &mut Vec<&'a J>) {
        match self {
            J::Obj(m) => {
                for (k, v) in m {
                    if k == key {
                        out.push(v);
                    }
                    v.descendants(key, out);
                }
            }
            J::Arr(items) => items.iter().for_each(|v| v.descendants(key, out)),
            _ => {}
        }
    }

    fn has_key(&self, key: &str) -> bool {
        let mut found = Vec::new();
        self.descendants(key, &mut found);
        !found.is_empty()
    }
}

/// A node of tshark's tree with the path that led to it, for the messages.
#[derive(Clone, Copy)]
struct At<'a> {
    node: &'a J,
    path: &'a str,
}

/// Paths are leaked: a test's worth of short strings, and `At` stays `Copy`.
fn join(path: &str, key: &str) -> &'static str {
    Box::leak(format!("{path} / {key}").into_boxed_str())
}

impl<'a> At<'a> {
    /// Every direct child named `key`, in order.
    fn many(self, key: &str) -> Vec<At<'a>> {
        let path = join(self.path, key);
        self.node
            .members()
            .iter()
            .filter(|(k, _)| k == key)
            .enumerate()
            .map(|(i, (_, node))| At {
                node,
                path: if i == 0 {
                    path
                } else {
                    join(self.path, &format!("{key}[{i}]"))
                },
            })
            .collect()
    }

    /// The direct child named `key`, if there is exactly one.
    fn opt(self, key: &str) -> Option<At<'a>> {
        let mut all = self.many(key);
        assert!(all.len() <= 1, "{}: {} members named {key}", self.path, all.len());
        all.pop()
    }

    /// The one direct child named `key`.
    fn one(self, key: &str) -> At<'a> {
        self.opt(key).unwrap_or_else(|| {
            let keys: Vec<&str> = self.node.members().iter().map(|(k, _)| k.as_str()).collect();
            panic!("{}: no {key} here; tshark shows {keys:?}", self.path)
        })
    }

    fn text(self) -> &'a str {
        match self.node {
            J::Str(s) | J::Num(s) => s,
            J::Bool(true) => "True",
            J::Bool(false) => "False",
            other => panic!("{}: expected a value, tshark shows {other:?}", self.path),
        }
    }

    /// A number as tshark prints it: decimal, `0x` hex, or a boolean.
    fn as_num(self) -> u128 {
        let t = self.text().trim();
        let n = match t {
            "True" | "true" => Some(1),
            "False" | "false" => Some(0),
            _ => match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(h) => u128::from_str_radix(h, 16).ok(),
                None => t.parse().ok(),
            },
        };
        n.unwrap_or_else(|| panic!("{}: {t:?} is not a number", self.path))
    }

    /// Bytes as tshark prints them: `aa:bb:cc` or `aabbcc`.
    fn as_bytes(self) -> Vec<u8> {
        let t: String = self.text().chars().filter(|c| *c != ':').collect();
        reload_wire::hex::decode(&t).unwrap_or_else(|| panic!("{}: {t:?} is not hex", self.path))
    }

    fn num(self, key: &str) -> u128 {
        self.one(key).as_num()
    }

    fn expect_num(self, key: &str, want: impl Into<u128>) {
        let want = want.into();
        let got = self.num(key);
        assert_eq!(
            got,
            want,
            "{}: tshark shows {got} ({got:#x}), the sample encodes {want} ({want:#x})",
            join(self.path, key)
        );
    }

    fn expect_bytes(self, key: &str, want: &[u8]) {
        let got = self.one(key).as_bytes();
        assert_eq!(got, want, "{}", join(self.path, key));
    }

    fn expect_text(self, key: &str, want: &str) {
        let got = self.one(key).text();
        assert_eq!(got, want, "{}", join(self.path, key));
    }

    /// The bytes of an `opaque<..>` node: its length member and its data (absent
    /// when empty).
    fn opaque_here(self) -> Vec<u8> {
        let data = self.opt("reload.opaque.data").map(At::as_bytes).unwrap_or_default();
        let len = self.length();
        assert_eq!(len, data.len() as u128, "{}: length and data disagree", self.path);
        data
    }

    /// The text of an `opaque<..>` node tshark shows as a string.
    fn opaque_text_here(self) -> String {
        let text = self.opt("reload.opaque.string").map(At::text).unwrap_or_default();
        assert_eq!(
            self.length(),
            text.len() as u128,
            "{}: length and string disagree",
            self.path
        );
        text.to_owned()
    }

    /// The node's one `reload.length.N` member.
    fn length(self) -> u128 {
        let lengths: Vec<&J> = self
            .node
            .members()
            .iter()
            .filter(|(k, _)| k.starts_with("reload.length."))
            .map(|(_, v)| v)
            .collect();
        assert_eq!(lengths.len(), 1, "{}: expected one reload.length.N member", self.path);
        At {
            node: lengths[0],
            path: self.path,
        }
        .as_num()
    }

    fn expect_length(self, want: usize) {
        let got = self.length();
        assert_eq!(got, want as u128, "{}: length", self.path);
    }

    fn expect_opaque(self, key: &str, want: &[u8]) {
        let node = self.one(key);
        assert_eq!(node.opaque_here(), want, "{}", node.path);
    }

    fn expect_opaque_text(self, key: &str, want: &[u8]) {
        let node = self.one(key);
        assert_eq!(node.opaque_text_here().as_bytes(), want, "{}", node.path);
    }

    /// An FT_ABSOLUTE_TIME as tshark prints it in UTC ("Nov 18, 2026
    /// 11:06:40.500000000 UTC"), in nanoseconds since the epoch.
    fn as_unix_nanos(self) -> u128 {
        let t = self.text();
        parse_utc(t).unwrap_or_else(|| panic!("{}: {t:?} is not a time tshark prints", self.path))
    }

    /// RELOAD times are milliseconds since the epoch (RFC 6940 §7.2 storage_time,
    /// §6.5.3.2 time).
    fn expect_time_ms(self, key: &str, want_ms: u64) {
        let got = self.one(key).as_unix_nanos();
        assert_eq!(got, u128::from(want_ms) * 1_000_000, "{}", join(self.path, key));
    }
}

fn parse_utc(t: &str) -> Option<u128> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = t.split_whitespace();
    let month = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let day: i64 = parts.next()?.trim_end_matches(',').parse().ok()?;
    let year: i64 = parts.next()?.parse().ok()?;
    let clock = parts.next()?;
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, "0"));
    if parts.next()? != "UTC" {
        return None;
    }
    let mut hms = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    // Days from 1970-01-01 to year-month-day (H. Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u128::try_from(days * 86_400 + h * 3600 + m * 60 + s).ok()?;
    let nanos: u128 = format!("{frac:0<9}").get(..9)?.parse().ok()?;
    Some(secs * 1_000_000_000 + nanos)
}

// ---------------------------------------------------------------------------
// Expected values
// ---------------------------------------------------------------------------

fn enc<T: Encode>(v: &T) -> Vec<u8> {
    let mut w = Writer::new();
    v.encode(&mut w).expect("sample values encode");
    w.into_vec()
}

fn encoded_len<T: Encode>(items: &[T]) -> usize {
    items.iter().map(|i| enc(i).len()).sum()
}

fn is_request(sample: &Sample) -> bool {
    sample.name.ends_with("_req")
}

// ---------------------------------------------------------------------------
// Checks of one message
// ---------------------------------------------------------------------------

fn check_destination(d: At<'_>, want: &Destination) {
    match want {
        Destination::Node { node_id } => {
            d.expect_num("reload.forwarding.destination.type", DestinationType::NODE.0);
            d.expect_length(node_id.0.len());
            d.expect_bytes("reload.destination.data.nodeid", &node_id.0);
        }
        Destination::Resource { resource_id } => {
            d.expect_num("reload.forwarding.destination.type", DestinationType::RESOURCE.0);
            d.expect_length(1 + resource_id.as_bytes().len());
            d.expect_opaque("reload.destination.data.resourceid", resource_id.as_bytes());
        }
        other => panic!("{}: the samples now use {other:?}; write its check", d.path),
    }
}

/// `Destination via_list[..]` / `destination_list[..]`: tshark leaves the list out
/// when it is empty.
fn check_destination_list(list: Option<At<'_>>, want: &[Destination], what: &str) {
    let got = list.map(|l| l.many("reload.destination")).unwrap_or_default();
    assert_eq!(got.len(), want.len(), "{what}: entries");
    for (d, w) in got.into_iter().zip(want) {
        check_destination(d, w);
    }
}

fn check_node_ids(list: At<'_>, want: &[reload_wire::NodeId]) {
    list.expect_length(16 * want.len());
    let got: Vec<Vec<u8>> = list.many("reload.nodeid").into_iter().map(At::as_bytes).collect();
    let want: Vec<Vec<u8>> = want.iter().map(|n| n.0.to_vec()).collect();
    assert_eq!(got, want, "{}", list.path);
}

fn check_ip_address_port(a: At<'_>, want: &IpAddressPort) {
    match want {
        IpAddressPort::Socket(SocketAddr::V4(v4)) => {
            a.expect_num("reload.ipaddressport.type", 1u8);
            a.expect_length(6);
            let v = a.one("reload.ipv4addrport");
            v.expect_text("reload.ipv4addr", &v4.ip().to_string());
            v.expect_num("reload.port", v4.port());
        }
        IpAddressPort::Socket(SocketAddr::V6(v6)) => {
            a.expect_num("reload.ipaddressport.type", 2u8);
            a.expect_length(18);
            let v = a.one("reload.ipv6addrport");
            v.expect_text("reload.ipv6addr", &v6.ip().to_string());
            v.expect_num("reload.port", v6.port());
        }
        other => panic!("{}: the samples now use {other:?}; write its check", a.path),
    }
}

fn check_candidates(list: At<'_>, want: &[IceCandidate]) {
    list.expect_length(encoded_len(want));
    let got = list.many("reload.icecandidate");
    assert_eq!(got.len(), want.len(), "{}: number of candidates", list.path);
    for (c, w) in got.into_iter().zip(want) {
        check_ip_address_port(c.one("reload.icecandidate.addr_port"), &w.addr_port);
        c.expect_num("reload.overlaylink.type", w.overlay_link.0);
        c.expect_opaque_text("reload.icecandidate.foundation", &w.foundation);

        // RFC 6940 §6.5.1.1: `uint32 priority` follows the foundation. tshark 4.0
        // reads it at the start of the IceCandidate instead, so it shows the first
        // four bytes of addr_port (type, length and two address bytes).
        let got = c.num("reload.icecandidate.priority");
        let addr = enc(&w.addr_port);
        let misread = u32::from_be_bytes([addr[0], addr[1], addr[2], addr[3]]);
        assert_ne!(
            got,
            u128::from(w.priority),
            "{}: tshark now shows the encoded priority (RFC 6940 §6.5.1.1): its misreading is fixed, \
             so check the priority for equality here",
            c.path
        );
        assert_eq!(
            got,
            u128::from(misread),
            "{}: RFC 6940 §6.5.1.1 puts priority {} after the foundation; tshark 4.0 was expected to misread \
             the candidate's first four bytes ({misread}) instead",
            c.path,
            w.priority
        );

        let relay = c.opt("reload.icecandidate.relay_addr");
        match &w.candidate_type {
            CandidateType::Host => {
                c.expect_num("reload.icecandidate.type", CandType::HOST.0);
                assert!(relay.is_none(), "{}: a host candidate has no rel_addr_port", c.path);
            }
            CandidateType::Srflx { rel_addr_port } | CandidateType::Relay { rel_addr_port } => {
                let ty = if matches!(w.candidate_type, CandidateType::Srflx { .. }) {
                    CandType::SRFLX
                } else {
                    CandType::RELAY
                };
                c.expect_num("reload.icecandidate.type", ty.0);
                let relay = relay.unwrap_or_else(|| panic!("{}: no rel_addr_port", c.path));
                check_ip_address_port(relay, rel_addr_port);
            }
        }

        let exts = c.one("reload.iceextensions");
        exts.expect_length(w.extensions.iter().map(|e| 4 + e.name.len() + e.value.len()).sum());
        let got = exts.many("reload.iceextension");
        assert_eq!(got.len(), w.extensions.len(), "{}: extensions", exts.path);
        for (e, we) in got.into_iter().zip(&w.extensions) {
            e.expect_opaque("reload.iceextension.name", &we.name);
            e.expect_opaque("reload.iceextension.value", &we.value);
        }
    }
}

fn check_signature(sig: At<'_>, want: &reload_wire::Signature) {
    let alg = sig.one("reload.signatureandhashalgorithm");
    alg.expect_num("reload.hash_algorithm", want.algorithm.hash.0);
    alg.expect_num("reload.signature_algorithm", want.algorithm.signature.0);
    let id = sig.one("reload.signature.identity");
    id.expect_num("reload.signature.identity.type", want.identity.identity_type().0);
    match &want.identity {
        SignerIdentity::CertHash {
            hash_alg,
            certificate_hash,
        } => {
            id.expect_length(2 + certificate_hash.len());
            let value = id
                .one("reload.signature.identity.identity")
                .one("reload.signature.identity.value");
            value.expect_num("reload.signeridentityvalue.hash_alg", hash_alg.0);
            value.expect_opaque("reload.signature.identity.value.certificate_hash", certificate_hash);
        }
        other => panic!("{}: the samples now use {other:?}; write its check", id.path),
    }
    sig.expect_opaque("reload.signature.value", &want.signature_value);
}

fn check_data_value(v: At<'_>, want: &DataValue, kind: KindId) {
    v.expect_num("reload.datavalue.exists", want.exists);
    v.expect_length(want.value.len());
    match kind {
        KindId::SIP_REGISTRATION => {
            let reg = SipRegistration::from_bytes(&want.value).expect("sample SIP registrations decode");
            let r = v.one("reload.sipregistration");
            let data = r.one("reload.sipregistration.data");
            match &reg {
                SipRegistration::Uri { uri } => {
                    r.expect_num("reload.sipregistration.type", SipRegistrationType::URI.0);
                    data.expect_opaque_text("reload.sipregistration.data.uri", uri);
                }
                SipRegistration::Route {
                    contact_prefs,
                    destination_list,
                } => {
                    r.expect_num("reload.sipregistration.type", SipRegistrationType::ROUTE.0);
                    data.expect_opaque_text("reload.sipregistration.data.contact_prefs", contact_prefs);
                    let list = data.one("reload.sipregistration.data.destination_list");
                    list.expect_length(encoded_len(destination_list));
                    check_destination_list(Some(list), destination_list, list.path);
                }
                other => panic!("{}: the samples now use {other:?}; write its check", r.path),
            }
            r.expect_length(enc(&reg).len() - 3);
        }
        KindId::TURN_SERVICE => {
            let turn = TurnServer::from_bytes(&want.value).expect("sample TURN servers decode");
            let t = v.one("reload.turnserver");
            t.expect_num("reload.turnserver.iteration", turn.iteration);
            check_ip_address_port(t.one("reload.turnserver.server_address"), &turn.server_address);
        }
        KindId::CERTIFICATE_BY_USER | KindId::CERTIFICATE_BY_NODE => {
            // tshark hands the value to its X.509 dissector.
            let cert = v.one("reload.certificate");
            assert!(
                cert.node.has_key("x509af.signedCertificate_element"),
                "{}: not decoded as a certificate",
                cert.path
            );
        }
        other => panic!("{}: the samples now store Kind {other:?}; write its check", v.path),
    }
}

fn check_dictionary_key(entry: At<'_>, want: &[u8]) {
    let key = entry.one("reload.dictionarykey");
    key.expect_length(want.len());
    // tshark shows a 16-byte key as a Node-ID, others as opaque data.
    let got = key
        .opt("reload.nodeid")
        .or_else(|| key.opt("reload.opaque.data"))
        .map(At::as_bytes)
        .unwrap_or_default();
    assert_eq!(got, want, "{}", key.path);
}

fn check_stored_data(sd: At<'_>, want: &StoredData, kind: KindId) {
    sd.expect_length(enc(want).len() - 4);
    sd.expect_time_ms("reload.storeddata.storage_time", want.storage_time);
    sd.expect_num("reload.storeddata.lifetime", want.lifetime);
    let v = sd.one("reload.value");
    match &want.value {
        StoredDataValue::Single { value } => check_data_value(v, value, kind),
        StoredDataValue::Array { index, value } => {
            v.expect_num("reload.arrayentry.index", *index);
            check_data_value(v.one("reload.arrayentry.value"), value, kind);
        }
        StoredDataValue::Dictionary { key, value } => {
            check_dictionary_key(v, key);
            check_data_value(v.one("reload.dictionary.value"), value, kind);
        }
    }
    check_signature(sd.one("reload.signature"), &want.signature);
}

fn check_values(values: At<'_>, key: &str, want: &[StoredData], kind: KindId) {
    values.expect_length(encoded_len(want));
    let got = values.many(key);
    assert_eq!(got.len(), want.len(), "{}: values", values.path);
    for (sd, w) in got.into_iter().zip(want) {
        check_stored_data(sd, w, kind);
    }
}

fn check_metadata(m: At<'_>, want: &MetaData) {
    m.expect_num("reload.datavalue.exists", want.exists);
    m.expect_num("reload.metadata.value_length", want.value_length);
    m.expect_num("reload.hash_algorithm", want.hash_algorithm.0);
    m.expect_opaque("reload.metadata.hash_value", &want.hash_value);
}

/// `StoredDataSpecifier specifiers<0..2^16-1>` of a Fetch or Stat request.
fn check_specifiers(specs: At<'_>, want: &[StoredDataSpecifier]) {
    specs.expect_length(encoded_len(want));
    let mut items = specs
        .node
        .members()
        .iter()
        .filter(|(k, _)| !k.starts_with("reload.length."));
    for (i, w) in want.iter().enumerate() {
        let (key, node) = items
            .next()
            .unwrap_or_else(|| panic!("{}: specifier {i} missing", specs.path));
        assert_eq!(key, "reload.storeddataspecifier", "{}: item {i}", specs.path);
        let s = At {
            node,
            path: join(specs.path, &format!("reload.storeddataspecifier[{i}]")),
        };
        s.expect_num("reload.kinddata.kind", w.kind.0);
        s.expect_num("reload.generation_counter", w.generation);
        // kind, generation and the length itself come before the model specifier.
        s.expect_length(enc(w).len() - (4 + 8 + 2));
        match &w.model_specifier {
            ModelSpecifier::Single => {
                assert!(s.opt("reload.storeddataspecifier.indices").is_none(), "{}", s.path);
            }
            ModelSpecifier::Array(ranges) => {
                let indices = s.one("reload.storeddataspecifier.indices");
                indices.expect_length(8 * ranges.len());
                // tshark shows an ArrayRange only as text ("[0-end]"), no fields.
                assert_eq!(
                    indices.many("reload.arrayrange").len(),
                    ranges.len(),
                    "{}",
                    indices.path
                );
            }
            ModelSpecifier::Dictionary(keys) => {
                // tshark adds the keys next to the specifier rather than inside it.
                let (key, node) = items.next().unwrap_or_else(|| panic!("{}: keys missing", s.path));
                assert_eq!(
                    key, "reload.storeddataspecifier.keys",
                    "{}: after specifier {i}",
                    specs.path
                );
                let got = At {
                    node,
                    path: join(specs.path, &format!("reload.storeddataspecifier.keys[{i}]")),
                }
                .many("reload.dictionarykey");
                if keys.is_empty() {
                    assert!(got.is_empty(), "{}: no keys were encoded", s.path);
                } else {
                    // RFC 6940 §7.4.2.1: `DictionaryKey keys<0..2^16-1>`, each key an
                    // `opaque<0..2^16-1>`. tshark 4.0 reads every key at the start of the
                    // StoredDataSpecifier (the top two bytes of the Kind-ID, zero here)
                    // instead of inside the vector: it shows keys_length / 2 empty keys.
                    assert!(
                        w.kind.0 >> 16 == 0,
                        "{}: the model below assumes a Kind-ID < 2^16",
                        s.path
                    );
                    let keys_len: usize = keys.iter().map(|k| 2 + k.0.len()).sum();
                    let got_keys: Vec<u128> = got.iter().map(|k| k.length()).collect();
                    let rfc_keys: Vec<u128> = keys.iter().map(|k| k.0.len() as u128).collect();
                    assert_ne!(
                        got_keys, rfc_keys,
                        "{}: tshark now decodes the dictionary keys as RFC 6940 §7.4.2.1 lays them out; \
                         check their bytes for equality here",
                        s.path
                    );
                    assert_eq!(
                        got_keys,
                        vec![0; keys_len.div_ceil(2)],
                        "{}: RFC 6940 §7.4.2.1 encodes {} key(s) of lengths {rfc_keys:?}; tshark 4.0 was expected \
                         to show {} empty keys read at the specifier's start",
                        s.path,
                        keys.len(),
                        keys_len.div_ceil(2)
                    );
                }
            }
        }
    }
    if let Some((key, _)) = items.next() {
        panic!("{}: unexpected {key} after the specifiers", specs.path);
    }
}

fn check_empty_body(body: At<'_>) {
    let keys: Vec<&str> = body.node.members().iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["reload.length.32"], "{}: an empty body", body.path);
}

/// The body's main fields, by method. Exhaustive: a new method needs its check.
fn check_body(body: At<'_>, want: &MessageBody) {
    match want {
        MessageBody::ProbeReq(p) => {
            let info = body.one("reload.probereq").one("reload.probereq.requested_info");
            info.expect_length(p.requested_info.len());
            let got: Vec<u128> = info
                .many("reload.probe_information.type")
                .into_iter()
                .map(At::as_num)
                .collect();
            let want: Vec<u128> = p.requested_info.iter().map(|t| t.0.into()).collect();
            assert_eq!(got, want, "{}: requested types", info.path);
        }
        MessageBody::ProbeAns(p) => {
            let got = body
                .one("reload.probeans")
                .one("reload.probe_info")
                .many("reload.probe_information");
            assert_eq!(got.len(), p.probe_info.len(), "{}: probe_info entries", body.path);
            for (g, w) in got.into_iter().zip(&p.probe_info) {
                let data = g.one("reload.probe_information_data");
                let (ty, key, value) = match w {
                    ProbeInformation::ResponsibleSet(v) => (1u8, "reload.responsible_set", v),
                    ProbeInformation::NumResources(v) => (2, "reload.num_resources", v),
                    ProbeInformation::Uptime(v) => (3, "reload.uptime", v),
                    other => panic!("{}: the samples now use {other:?}; write its check", g.path),
                };
                g.expect_num("reload.probe_information.type", ty);
                g.expect_length(4);
                data.expect_num(key, *value);
            }
        }
        MessageBody::AttachReq(a) | MessageBody::AttachAns(a) => {
            let n = body.one("reload.attachreqans");
            n.expect_opaque_text("reload.ufrag", &a.ufrag);
            n.expect_opaque_text("reload.password", &a.password);
            n.expect_opaque_text("reload.role", &a.role);
            check_candidates(n.one("reload.icecandidates"), &a.candidates);
            n.expect_num("reload.sendupdate", a.send_update);
        }
        MessageBody::AppAttachReq(a) | MessageBody::AppAttachAns(a) => {
            let key = if matches!(want, MessageBody::AppAttachReq(_)) {
                "reload.appattachreq"
            } else {
                "reload.appattachans"
            };
            let n = body.one(key);
            n.expect_opaque_text("reload.ufrag", &a.ufrag);
            n.expect_opaque_text("reload.password", &a.password);
            n.expect_num("reload.application", a.application.0);
            n.expect_opaque_text("reload.role", &a.role);
            check_candidates(n.one("reload.icecandidates"), &a.candidates);
        }
        MessageBody::StoreReq(s) => {
            let n = body.one("reload.storereq");
            n.expect_opaque("reload.resource", s.resource.as_bytes());
            n.expect_num("reload.store.replica_number", s.replica_number);
            let kd = n.one("reload.store.kind_data");
            kd.expect_length(encoded_len(&s.kind_data));
            let got = kd.many("reload.kinddata");
            assert_eq!(got.len(), s.kind_data.len(), "{}: kinds", kd.path);
            for (g, w) in got.into_iter().zip(&s.kind_data) {
                g.expect_num("reload.kinddata.kind", w.kind.0);
                g.expect_num("reload.generation_counter", w.generation_counter);
                check_values(
                    g.one("reload.kinddata.values_length"),
                    "reload.storeddata",
                    &w.values,
                    w.kind,
                );
            }
        }
        MessageBody::StoreAns(s) => {
            let responses = body.one("reload.storeans").one("reload.storeans.kind_responses");
            responses.expect_length(encoded_len(&s.kind_responses));
            let got = responses.many("reload.storekindresponse");
            assert_eq!(got.len(), s.kind_responses.len(), "{}: kinds", responses.path);
            for (g, w) in got.into_iter().zip(&s.kind_responses) {
                g.expect_num("reload.kinddata.kind", w.kind.0);
                g.expect_num("reload.generation_counter", w.generation_counter);
                check_node_ids(g.one("reload.storekindresponse.replicas"), &w.replicas);
            }
        }
        MessageBody::FetchReq(f) | MessageBody::StatReq(f) => {
            let key = if matches!(want, MessageBody::FetchReq(_)) {
                "reload.fetchreq"
            } else {
                "reload.statreq"
            };
            let n = body.one(key);
            n.expect_opaque("reload.resource", f.resource.as_bytes());
            check_specifiers(n.one("reload.fetchreq.specifiers"), &f.specifiers);
        }
        MessageBody::FetchAns(f) => {
            let n = body.one("reload.fetchans");
            n.expect_length(encoded_len(&f.kind_responses));
            let got = n.many("reload.kinddata");
            assert_eq!(got.len(), f.kind_responses.len(), "{}: kinds", n.path);
            for (g, w) in got.into_iter().zip(&f.kind_responses) {
                g.expect_num("reload.kinddata.kind", w.kind.0);
                g.expect_num("reload.generation_counter", w.generation);
                check_values(
                    g.one("reload.kinddata.values_length"),
                    "reload.storeddata",
                    &w.values,
                    w.kind,
                );
            }
        }
        MessageBody::StatAns(s) => {
            let n = body.one("reload.statans");
            n.expect_length(encoded_len(&s.kind_responses));
            let got = n.many("reload.statkindresponse");
            assert_eq!(got.len(), s.kind_responses.len(), "{}: kinds", n.path);
            for (g, w) in got.into_iter().zip(&s.kind_responses) {
                g.expect_num("reload.kinddata.kind", w.kind.0);
                g.expect_num("reload.generation_counter", w.generation);
                let values = g.one("reload.kinddata.values_length");
                values.expect_length(encoded_len(&w.values));
                let got = values.many("reload.storedmetadata");
                assert_eq!(got.len(), w.values.len(), "{}: values", values.path);
                for (m, wm) in got.into_iter().zip(&w.values) {
                    m.expect_length(enc(wm).len() - 4);
                    m.expect_time_ms("reload.storeddata.storage_time", wm.storage_time);
                    m.expect_num("reload.storeddata.lifetime", wm.lifetime);
                    let v = m.one("reload.value");
                    match &wm.metadata {
                        MetaDataValue::Single { value } => check_metadata(v, value),
                        MetaDataValue::Dictionary { key, value } => {
                            check_dictionary_key(v, key);
                            check_metadata(v.one("reload.dictionary.value"), value);
                        }
                        other => panic!("{}: the samples now use {other:?}; write its check", v.path),
                    }
                }
            }
        }
        MessageBody::FindReq(f) => {
            let n = body.one("reload.findreq");
            n.expect_opaque("reload.resource", f.resource.as_bytes());
            let list = n.one("reload.kindid_list");
            list.expect_length(4 * f.kinds.len());
            let got: Vec<u128> = list.many("reload.kindid").into_iter().map(At::as_num).collect();
            let want: Vec<u128> = f.kinds.iter().map(|k| k.0.into()).collect();
            assert_eq!(got, want, "{}: kinds", list.path);
        }
        MessageBody::FindAns(f) => {
            let n = body.one("reload.findans");
            n.expect_length(encoded_len(&f.results));
            let got = n.many("reload.findkinddata");
            assert_eq!(got.len(), f.results.len(), "{}: results", n.path);
            for (g, w) in got.into_iter().zip(&f.results) {
                g.expect_num("reload.kinddata.kind", w.kind.0);
                g.expect_opaque("reload.findkindata.closest", w.closest.as_bytes());
            }
        }
        MessageBody::JoinReq(j) => {
            let n = body.one("reload.joinreq");
            n.expect_bytes("reload.joinreq.joining_peer_id", &j.joining_peer_id.0);
            n.expect_opaque("reload.overlay_specific_data", &j.overlay_specific_data);
        }
        MessageBody::JoinAns(j) => {
            body.one("reload.joinans")
                .expect_opaque("reload.overlay_specific_data", &j.overlay_specific_data);
        }
        MessageBody::LeaveReq(l) => {
            let n = body.one("reload.leavereq");
            n.expect_bytes("reload.leavereq.leaving_peer_id", &l.leaving_peer_id.0);
            let data = n.one("reload.overlay_specific_data");
            match &l.chord {
                None => data.expect_length(0),
                Some(leave) => {
                    let c = data.one("reload.chordleavedata");
                    let (ty, key, ids) = match leave {
                        ChordLeaveData::FromSucc { successors } => (
                            ChordLeaveType::FROM_SUCC,
                            "reload.chordleavedata.successors",
                            successors,
                        ),
                        ChordLeaveData::FromPred { predecessors } => (
                            ChordLeaveType::FROM_PRED,
                            "reload.chordleavedata.predecessors",
                            predecessors,
                        ),
                    };
                    c.expect_num("reload.chordleavedata.type", ty.0);
                    check_node_ids(c.one(key), ids);
                }
            }
        }
        MessageBody::UpdateReq(u) => {
            let n = body.one("reload.chordupdate");
            n.expect_num("reload.uptime", u.uptime);
            let (ty, lists): (ChordUpdateType, Vec<(&str, &[reload_wire::NodeId])>) = match &u.data {
                ChordUpdateData::PeerReady => (ChordUpdateType::PEER_READY, Vec::new()),
                ChordUpdateData::Neighbors {
                    predecessors,
                    successors,
                } => (
                    ChordUpdateType::NEIGHBORS,
                    vec![
                        ("reload.chordupdate.predecessors", predecessors),
                        ("reload.chordupdate.successors", successors),
                    ],
                ),
                ChordUpdateData::Full {
                    predecessors,
                    successors,
                    fingers,
                } => (
                    ChordUpdateType::FULL,
                    vec![
                        ("reload.chordupdate.predecessors", predecessors),
                        ("reload.chordupdate.successors", successors),
                        ("reload.chordupdate.fingers", fingers),
                    ],
                ),
            };
            n.expect_num("reload.chordupdate.type", ty.0);
            for (key, ids) in lists {
                check_node_ids(n.one(key), ids);
            }
        }
        MessageBody::RouteQueryReq(r) => {
            let n = body.one("reload.routequeryreq");
            n.expect_num("reload.sendupdate", r.send_update);
            check_destination(n.one("reload.routequeryreq.destination"), &r.destination);
            n.expect_opaque("reload.overlay_specific_data", &r.overlay_specific_data);
        }
        MessageBody::RouteQueryAns(r) => {
            body.one("reload.chordroutequeryans")
                .expect_bytes("reload.chordroutequeryans.nodeid", &r.next_peer.0);
        }
        MessageBody::PingReq(p) => {
            body.one("reload.pingreq").expect_opaque("reload.padding", &p.padding);
        }
        MessageBody::PingAns(p) => {
            let n = body.one("reload.pingans");
            n.expect_num("reload.ping.response_id", p.response_id);
            n.expect_time_ms("reload.ping.time", p.time);
        }
        MessageBody::ConfigUpdateReq(c) => {
            let n = body.one("reload.configupdatereq");
            n.expect_length(enc(c).len() - 5);
            match c {
                ConfigUpdateReq::Kind { kinds } => {
                    n.expect_num("reload.configupdatereq.type", ConfigUpdateType::KIND.0);
                    let list = n.one("reload.configupdatereq.kinds");
                    list.expect_length(encoded_len(kinds));
                    let got = list.many("reload.configupdatereq.kinddescription");
                    assert_eq!(got.len(), kinds.len(), "{}: kind descriptions", list.path);
                    for (g, w) in got.into_iter().zip(kinds) {
                        g.expect_length(w.0.len());
                        // tshark hands the description to its XML dissector; its first
                        // tag is the description's first tag.
                        let text = String::from_utf8_lossy(&w.0);
                        let first_tag = &text[..=text.find('>').expect("a kind description is XML")];
                        g.one("xml").expect_text("xml.tag", first_tag);
                    }
                }
                other => panic!("{}: the samples now use {other:?}; write its check", n.path),
            }
        }
        MessageBody::Error(e) => {
            let n = body.one("reload.error_response");
            n.expect_num("reload.error_response.code", e.error_code.0);
            n.expect_opaque_text("reload.error_response_info", &e.error_info);
        }
        MessageBody::LeaveAns | MessageBody::UpdateAns | MessageBody::ConfigUpdateAns => check_empty_body(body),
        MessageBody::Other { code, .. } => panic!("{}: the samples now use code {code:?}; write its check", body.path),
    }
}

/// The `reload` layer against the sample it carries.
fn check_message(reload: At<'_>, sample: &Sample, bytes: &[u8]) {
    let m = &sample.message;
    let h = &m.header;
    let fwd = reload.one("reload.forwarding");
    fwd.expect_num("reload.forwarding.token", RELO_TOKEN);
    fwd.expect_num("reload.forwarding.overlay", h.overlay.0);
    fwd.expect_num("reload.forwarding.configuration_sequence", h.configuration_sequence);
    // RFC 6940 §6.3.2: "This document describes version 1.0, with a value of 0x0a."
    // tshark 4.0 knows only the drafts' 0x01 and labels 0x0a "Unknown"; its raw value
    // must still be 0x0a.
    assert_eq!(
        h.version, 0x0a,
        "{}: the samples must be RELOAD 1.0 (RFC 6940 §6.3.2)",
        sample.name
    );
    let version = fwd.num("reload.forwarding.version");
    assert_eq!(
        version, 0x0a,
        "{}: RFC 6940 §6.3.2 version 1.0 is 0x0a; tshark (which labels it Unknown) shows {version:#x}",
        fwd.path
    );
    fwd.expect_num("reload.forwarding.ttl", h.ttl);
    fwd.expect_num("reload.forwarding.fragment", h.fragment.0);
    fwd.expect_num("reload.length.32", bytes.len() as u128);
    fwd.expect_num("reload.forwarding.trans_id", h.transaction_id.0);
    fwd.expect_num("reload.forwarding.max_response_length", h.max_response_length);
    fwd.expect_num("reload.forwarding.via_list.length", encoded_len(&h.via_list) as u128);
    fwd.expect_num(
        "reload.forwarding.destination_list.length",
        encoded_len(&h.destination_list) as u128,
    );
    fwd.expect_num("reload.forwarding.options.length", encoded_len(&h.options) as u128);
    check_destination_list(
        fwd.opt("reload.forwarding.via_list"),
        &h.via_list,
        join(fwd.path, "reload.forwarding.via_list"),
    );
    check_destination_list(
        fwd.opt("reload.forwarding.destination_list"),
        &h.destination_list,
        join(fwd.path, "reload.forwarding.destination_list"),
    );
    let options = fwd
        .opt("reload.forwarding.options")
        .map(|o| o.many("reload.forwarding.option"))
        .unwrap_or_default();
    assert_eq!(options.len(), h.options.len(), "{}: forwarding options", fwd.path);
    for (o, w) in options.into_iter().zip(&h.options) {
        // RFC 6940 §14.12 registers 1 as exp-forward; tshark 4.0 labels it
        // "Unknown", its raw value must still be the one sent.
        o.expect_num("reload.forwarding.option.type", w.option_type.0);
        o.expect_num("reload.forwarding.option.flags", w.flags);
        o.expect_length(w.value.len());
        o.expect_bytes("reload.opaque.data", &w.value);
    }

    let contents = reload.one("reload.message.contents");
    contents.expect_num("reload.message.code", m.contents.code().0);
    let body = contents.one("reload.message.body");
    let mut w = Writer::new();
    m.contents.body.encode_body(&mut w).expect("sample bodies encode");
    body.expect_length(w.len());
    check_body(body, &m.contents.body);
    let exts = contents.one("reload.message.extensions");
    exts.expect_length(
        m.contents
            .extensions
            .iter()
            .map(|e| 2 + 1 + 4 + e.extension_contents.len())
            .sum(),
    );
    let got = exts.many("reload.message_extension");
    assert_eq!(got.len(), m.contents.extensions.len(), "{}: extensions", exts.path);
    for (e, w) in got.into_iter().zip(&m.contents.extensions) {
        e.expect_num("reload.message_extension.type", w.extension_type.0);
        e.expect_num("reload.message_extension.critical", w.critical);
        assert_eq!(
            e.one("reload.message_extension.content_tree").opaque_here(),
            w.extension_contents,
            "{}: extension contents",
            e.path
        );
    }

    let sec = reload.one("reload.security_block");
    let certs = sec.one("reload.certificates");
    let got = certs.many("reload.genericcertificate");
    assert_eq!(got.len(), m.security.certificates.len(), "{}: certificates", certs.path);
    certs.expect_length(m.security.certificates.iter().map(|c| 3 + c.certificate.len()).sum());
    for (c, w) in got.into_iter().zip(&m.security.certificates) {
        c.expect_num("reload.certificate.type", w.certificate_type.0);
        c.expect_length(w.certificate.len());
        assert!(
            c.one("reload.certificate")
                .node
                .has_key("x509af.signedCertificate_element"),
            "{}: not decoded as X.509",
            c.path
        );
    }
    check_signature(sec.one("reload.signature"), &m.security.signature);
}

/// A data frame (RFC 6940 §6.6.2) around `bytes`.
fn check_data_frame(framing: At<'_>, sequence: u32, bytes: &[u8]) {
    framing.expect_num("reload_framing.type", FRAME_DATA);
    framing.expect_num("reload_framing.sequence", sequence);
    let message = framing.one("reload_framing.message");
    message.expect_num("reload_framing.message.length", bytes.len() as u128);
    message.expect_bytes("reload_framing.message.data", bytes);
}

// ---------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------

struct Packet<'a> {
    number: u128,
    layers: At<'a>,
}

impl<'a> Packet<'a> {
    fn layer(&self, key: &str) -> At<'a> {
        self.layers.one(key)
    }

    fn expect_endpoints(&self, transport: &str, src: (&str, u128), dst: (&str, u128)) {
        let ip = self.layer("ip");
        ip.expect_text("ip.src", src.0);
        ip.expect_text("ip.dst", dst.0);
        let t = self.layer(transport);
        t.expect_num(&format!("{transport}.srcport"), src.1);
        t.expect_num(&format!("{transport}.dstport"), dst.1);
    }
}

/// Nothing malformed, no expert info at warning level or above, in any packet.
fn check_no_complaints(packets: &[Packet<'_>]) {
    for p in packets {
        assert!(
            !p.layers.node.has_key("_ws.malformed"),
            "frame {}: tshark reports a malformed packet",
            p.number
        );
        let mut experts = Vec::new();
        p.layers.node.descendants("_ws.expert", &mut experts);
        for e in experts {
            let e = At {
                node: e,
                path: join(&format!("frame {}", p.number), "_ws.expert"),
            };
            let severity = e.num("_ws.expert.severity");
            let message = e.opt("_ws.expert.message").map(At::text).unwrap_or("?");
            assert!(
                severity < PI_WARN,
                "frame {}: tshark expert info at severity {severity:#x} (warning or error): {message}",
                p.number
            );
        }
    }
}

#[test]
fn tshark_decodes_the_sample_pcap_as_encoded() {
    let pcap = TempFile(std::env::temp_dir().join(format!("p2psip-tshark-{}.pcap", std::process::id())));
    write_sample_pcap(&pcap.0);
    let file = pcap.0.to_str().expect("the temp dir is UTF-8");

    let json = tshark(&["-r", file, "-T", "json"]);
    let root: J = serde_json::from_slice(&json).expect("tshark -T json output parses");
    let J::Arr(raw_packets) = &root else {
        panic!("tshark -T json: not an array of packets")
    };
    let packets: Vec<Packet<'_>> = raw_packets
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let top = At { node, path: "packet" };
            let layers = top.one("_source").one("layers");
            let number = layers.one("frame").num("frame.number");
            assert_eq!(number, i as u128 + 1, "packets in order");
            Packet {
                number,
                layers: At {
                    node: layers.node,
                    path: Box::leak(format!("frame {number}").into_boxed_str()),
                },
            }
        })
        .collect();

    // Every packet: nothing malformed, nothing at warning level or above.
    check_no_complaints(&packets);
    let expert = String::from_utf8_lossy(&tshark(&["-r", file, "-q", "-z", "expert"])).into_owned();
    for group in ["Errors", "Warns", "Warnings"] {
        assert!(
            !expert
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{group} ("))),
            "tshark -z expert lists {group}:\n{expert}"
        );
    }

    let samples = samples::all();
    let encoded: Vec<Vec<u8>> = samples
        .iter()
        .map(|s| s.message.encode().expect("samples encode"))
        .collect();
    // Handshake, one TCP segment per sample, then UDP: data frame, ack, bare message.
    assert_eq!(packets.len(), 3 + samples.len() + 3, "packets in the pcap");

    let (mut client_frames, mut peer_frames) = (0u32, 0u32);
    // Transaction id and class of each message seen, per transport, for tshark's
    // duplicate marking below.
    let mut seen: Vec<(&str, u64, bool, u128)> = Vec::new();
    let mut duplicates_expected = Vec::new();
    let mut note_message = |transport: &'static str, frame: u128, sample: &Sample| {
        let request = is_request(sample);
        let txid = sample.message.header.transaction_id.0;
        if let Some((.., first)) = seen
            .iter()
            .find(|(t, id, r, _)| *t == transport && *id == txid && *r == request)
        {
            duplicates_expected.push((frame, *first));
        } else {
            seen.push((transport, txid, request, frame));
        }
    };

    for (i, (sample, bytes)) in samples.iter().zip(&encoded).enumerate() {
        let p = &packets[3 + i];
        let request = is_request(sample);
        if request {
            p.expect_endpoints("tcp", (CLIENT_IP, CLIENT_TCP_PORT), (PEER_IP, RELOAD_PORT));
        } else {
            p.expect_endpoints("tcp", (PEER_IP, RELOAD_PORT), (CLIENT_IP, CLIENT_TCP_PORT));
        }
        p.layer("tcp").expect_num("tcp.len", (8 + bytes.len()) as u128);
        // Each direction of the connection numbers its data frames from 0 (§6.6.2).
        let counter = if request { &mut client_frames } else { &mut peer_frames };
        check_data_frame(p.layer("reload-framing"), *counter, bytes);
        *counter += 1;
        check_message(p.layer("reload"), sample, bytes);
        note_message("tcp", p.number, sample);
    }

    // UDP: the first sample framed, its ack, and the first sample bare.
    let (first, first_bytes) = (&samples[0], &encoded[0]);
    assert!(is_request(first), "the UDP part sends the first sample from the client");
    let base = 3 + samples.len();
    let data = &packets[base];
    data.expect_endpoints("udp", (CLIENT_IP, RELOAD_PORT), (PEER_IP, RELOAD_PORT));
    check_data_frame(data.layer("reload-framing"), 0, first_bytes);
    check_message(data.layer("reload"), first, first_bytes);
    note_message("udp", data.number, first);

    let ack = &packets[base + 1];
    ack.expect_endpoints("udp", (PEER_IP, RELOAD_PORT), (CLIENT_IP, RELOAD_PORT));
    let framing = ack.layer("reload-framing");
    framing.expect_num("reload_framing.type", FRAME_ACK);
    framing.expect_num("reload_framing.ack_sequence", 0u8);
    framing.expect_num("reload_framing.received", 0u8);
    framing.expect_num("reload_framing.response-to", data.number);
    assert!(
        ack.layers.opt("reload").is_none(),
        "frame {}: an ack carries no message",
        ack.number
    );

    let bare = &packets[base + 2];
    bare.expect_endpoints("udp", (CLIENT_IP, RELOAD_PORT), (PEER_IP, RELOAD_PORT));
    bare.layer("udp")
        .expect_num("udp.length", (8 + first_bytes.len()) as u128);
    assert!(
        bare.layers.opt("reload-framing").is_none(),
        "frame {}: sent without framing",
        bare.number
    );
    check_message(bare.layer("reload"), first, first_bytes);
    note_message("udp", bare.number, first);

    // tshark marks a second request (or a second answer) of a transaction it has
    // seen on the same conversation as a duplicate of the first. Today's samples
    // have two: the Error reuses the Fetch's transaction 0x1002 (it is the Error a
    // Fetch could get instead of its FetchAns), and the bare UDP Probe repeats the
    // framed one. Nothing else may be marked.
    let mut duplicates = Vec::new();
    for p in &packets {
        if let Some(reload) = p.layers.opt("reload") {
            if let Some(d) = reload.opt("reload.duplicate") {
                duplicates.push((p.number, d.as_num()));
            }
        }
    }
    assert_eq!(
        duplicates, duplicates_expected,
        "(frame, duplicate of frame) tshark reports"
    );

    // Every method's request and answer, and the Error, were in the pcap and went
    // through check_message and its exhaustive check_body.
    let codes: std::collections::BTreeSet<u16> = samples.iter().map(|s| s.message.contents.code().0).collect();
    for code in MessageCode::ALL {
        let experimental = code.name().is_some_and(|n| n.starts_with("exp_"));
        assert!(
            experimental || codes.contains(&code.0),
            "no sample of {code}: the pcap should show every method"
        );
    }
}
