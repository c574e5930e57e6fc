//! RFC 4475 ("SIP Torture Test Messages") against the proxy's parser
//! (`message::parse`) and the proxy itself (`proxy::Proxy`).
//!
//! The messages are written out below with CRLF line ends and the RFC's odd
//! octets (NUL, BEL, DEL, UTF-8, the DER of mpart01) as explicit escapes, as
//! the RFC prints them (its `<allOneLine>` lines joined, its `<hex>` decoded).
//! Every case says what the code does and why that is right, or is marked
//! `#[ignore]` with the product bug it shows (the suite stays green; run them
//! with `--ignored`).
//!
//! Through the proxy, messages come from a trusted conventional SIP server
//! (no digest challenge), and the overlay answers every lookup with another
//! node ([`OTHER`]) and every DNS question with [`ELSEWHERE`], so a request
//! the proxy accepts is seen leaving. The proptests at the end feed random
//! and mutated traffic (RFC 4475's messages among the seeds) to a proxy with
//! a registered phone, replies and timers included.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use reload_sip::locate::Destination;
use reload_sip::message::{self, Message, ParseError, Request, Response};
use reload_sip::proxy::{Output, Peer, Proxy, ProxyConfig, Resolved, ResolvedRoute, Transport};
use reload_sip::usage::{DomainPattern, DomainRestriction};
use reload_wire::NodeId;

/// The proxy's own node and one other overlay node.
const NODE: NodeId = NodeId([0x11; 16]);
const OTHER: NodeId = NodeId([0x22; 16]);
/// The registered phone: caller@example.net, from this address.
const PHONE: &str = "192.0.2.5:5060";
/// Somebody who never registered.
const STRANGER: &str = "192.0.2.99:5060";
/// A conventional SIP server the node trusts: its requests are routed
/// without a digest challenge.
const TRUSTED: &str = "192.0.2.200:5060";
/// Where a host of another domain resolves to.
const ELSEWHERE: &str = "203.0.113.9:5060";
const UNIX_NOW: u64 = 1_700_000_000;

fn udp(addr: &str) -> Peer {
    Peer::Sip {
        transport: Transport::Udp,
        addr: addr.parse().unwrap(),
    }
}

fn config() -> ProxyConfig {
    let addr = |s: &str| -> SocketAddr { s.parse().unwrap() };
    ProxyConfig {
        node_id: NODE,
        domains: DomainRestriction::Patterns(vec![
            DomainPattern::new("example.com").unwrap(),
            DomainPattern::new("example.net").unwrap(),
        ]),
        udp: addr("198.51.100.1:5060"),
        tcp: addr("198.51.100.1:5060"),
        tls: None,
        overlay_sip: addr("198.51.100.1:5061"),
        accounts: HashMap::from([
            ("caller@example.net".to_owned(), "pw".to_owned()),
            ("j.user@example.com".to_owned(), "pw".to_owned()),
        ]),
        trusted: vec![TRUSTED.parse::<SocketAddr>().unwrap().ip()],
        realm: "example.net".into(),
        outbound_proxy: None,
    }
}

struct Harness {
    proxy: Proxy,
    now: Instant,
}

impl Harness {
    fn new() -> Harness {
        let now = Instant::now();
        Harness {
            proxy: Proxy::new(config(), now, UNIX_NOW, [7u8; 32]),
            now,
        }
    }

    /// A proxy at which caller@example.net registered from [`PHONE`].
    fn registered() -> Harness {
        let mut h = Harness::new();
        let register = |cseq: u32, auth: Option<String>| -> Vec<u8> {
            let mut text = format!(
                "REGISTER sip:example.net SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {PHONE};branch=z9hG4bK-reg{cseq}\r\n\
                 Max-Forwards: 70\r\n\
                 From: <sip:caller@example.net>;tag=reg\r\n\
                 To: <sip:caller@example.net>\r\n\
                 Call-ID: registration@192.0.2.5\r\n\
                 CSeq: {cseq} REGISTER\r\n\
                 Contact: <sip:caller@{PHONE}>\r\n"
            );
            if let Some(a) = auth {
                text.push_str(&format!("Authorization: {a}\r\n"));
            }
            text.push_str("Content-Length: 0\r\n\r\n");
            text.into_bytes()
        };
        h.proxy.handle_message(h.now, udp(PHONE), &register(1, None));
        let out = drain(&mut h.proxy);
        let challenge = match response_of(&out) {
            Some(r) if r.code == 401 => message::first(&r.headers, "WWW-Authenticate").unwrap().to_owned(),
            other => panic!("{other:?}"),
        };
        let auth =
            reload_sip::digest::authorization(&challenge, "REGISTER", "sip:example.net", "caller", "pw", "c0ffee")
                .unwrap();
        h.proxy.handle_message(h.now, udp(PHONE), &register(2, Some(auth)));
        let out = drain(&mut h.proxy);
        let id = match out.as_slice() {
            [Output::Store { id, aor, .. }] if aor == "caller@example.net" => *id,
            other => panic!("{other:?}"),
        };
        h.proxy.store_done(h.now, id, Ok(()));
        let out = drain(&mut h.proxy);
        assert_eq!(response_of(&out).map(|r| r.code), Some(200), "{out:?}");
        h
    }

    /// `bytes` from `from`, the overlay's answers given (see [`Harness::settle`]).
    fn send(&mut self, from: Peer, bytes: &[u8]) -> Vec<Output> {
        self.proxy.handle_message(self.now, from, bytes);
        let out = drain(&mut self.proxy);
        self.settle(out)
    }

    /// `bytes` from the trusted server, which needs no digest.
    fn forward(&mut self, bytes: &[u8]) -> Outcome {
        Outcome::of(self.send(udp(TRUSTED), bytes))
    }

    /// Answers what the proxy asked the overlay and DNS, until it asks no more:
    /// every AOR lives at [`OTHER`], every host is [`ELSEWHERE`], stores succeed.
    /// Returns everything it output, the questions included.
    fn settle(&mut self, mut out: Vec<Output>) -> Vec<Output> {
        let mut all = Vec::new();
        while !out.is_empty() {
            for o in std::mem::take(&mut out) {
                match &o {
                    Output::Lookup { id, aor } => {
                        let resolved = Resolved {
                            routes: vec![ResolvedRoute {
                                aor: aor.clone(),
                                node: OTHER,
                            }],
                            external: Vec::new(),
                        };
                        self.proxy.lookup_done(self.now, *id, Ok(resolved));
                    }
                    Output::Locate { id, .. } => {
                        let elsewhere = Destination {
                            transport: Transport::Udp,
                            addr: ELSEWHERE.parse().unwrap(),
                        };
                        self.proxy.located(self.now, *id, Ok(vec![elsewhere]));
                    }
                    Output::Store { id, .. } | Output::Remove { id, .. } => {
                        self.proxy.store_done(self.now, *id, Ok(()));
                    }
                    Output::Send { .. } => {}
                }
                out.extend(drain(&mut self.proxy));
                all.push(o);
            }
        }
        all
    }
}

/// What the proxy did with one message.
#[derive(Default)]
struct Outcome {
    /// Responses it sent, with their status codes.
    responses: Vec<(u16, Vec<u8>)>,
    /// Requests it sent on, and where.
    forwarded: Vec<(Peer, Vec<u8>)>,
    /// Everything else (lookups, DNS, stores).
    asked: Vec<Output>,
}

/// Messages shown as text, not as lists of numbers.
impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        f.debug_struct("Outcome")
            .field(
                "responses",
                &self.responses.iter().map(|(_, b)| show(b)).collect::<Vec<_>>(),
            )
            .field(
                "forwarded",
                &self.forwarded.iter().map(|(to, b)| (to, show(b))).collect::<Vec<_>>(),
            )
            .field("asked", &self.asked)
            .finish()
    }
}

impl Outcome {
    fn of(out: Vec<Output>) -> Outcome {
        let mut o = Outcome::default();
        for output in out {
            match output {
                Output::Send { bytes, .. } if bytes.starts_with(b"SIP/2.0 ") => {
                    let code = std::str::from_utf8(&bytes[8..11]).unwrap().parse().unwrap();
                    o.responses.push((code, bytes));
                }
                Output::Send { to, bytes } => o.forwarded.push((to, bytes)),
                other => o.asked.push(other),
            }
        }
        o
    }

    /// The status codes other than 100.
    fn finals(&self) -> Vec<u16> {
        self.responses.iter().map(|(c, _)| *c).filter(|c| *c != 100).collect()
    }
}

fn drain(proxy: &mut Proxy) -> Vec<Output> {
    std::iter::from_fn(|| proxy.poll_output()).collect()
}

/// The first response the proxy sent, parsed.
fn response_of(out: &[Output]) -> Option<Response> {
    out.iter().find_map(|o| match o {
        Output::Send { bytes, .. } => match message::parse(bytes) {
            Ok(Message::Response(r)) => Some(r),
            _ => None,
        },
        _ => None,
    })
}

fn request(bytes: &[u8]) -> Request {
    match message::parse(bytes) {
        Ok(Message::Request(r)) => r,
        other => panic!("{other:?}"),
    }
}

fn response(bytes: &[u8]) -> Response {
    match message::parse(bytes) {
        Ok(Message::Response(r)) => r,
        other => panic!("{other:?}"),
    }
}
// ---------------------------------------------------------------------------
// The messages of RFC 4475, CRLF line ends. Each request head is a list of
// lines (joined with CRLF, then the empty line); bodies are written out. Odd
// bytes are explicit `\xNN` escapes; lines with quotes and backslashes are raw
// byte strings so they read as the RFC prints them.
// ---------------------------------------------------------------------------

/// A message: every head line ends in CRLF, then the empty line, then `body`.
fn msg(head: &[&[u8]], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in head {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// The SDP body most messages carry (150 octets with `192.0.2.1` and `t=0 0`).
fn sdp(o_ip: &str, c_ip: &str, t: &str) -> Vec<u8> {
    format!(
        "v=0\r\no=mhandley 29739 7272939 IN IP4 {o_ip}\r\ns=-\r\nc=IN IP4 {c_ip}\r\nt={t}\r\n\
         m=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n"
    )
    .into_bytes()
}

// ---- §3.1.1 valid messages ----

/// §3.1.1.1 A Short Tortuous INVITE.
fn wsinv() -> Vec<u8> {
    msg(
        &[
            b"INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0",
            b"TO :",
            b" sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n",
            br#"from   : "J Rosenberg \\\""       <sip:jdrosen@example.com>"#,
            b"  ;",
            b"  tag = 98asjd8",
            b"MaX-fOrWaRdS: 0068",
            b"Call-ID: wsinv.ndaksdj@192.0.2.1",
            b"Content-Length   : 150",
            b"cseq: 0009",
            b"  INVITE",
            b"Via  : SIP  /   2.0",
            b" /UDP",
            b"    192.0.2.2;branch=390skdjuw",
            b"s :",
            b"NewFangledHeader:   newfangled value",
            b" continued newfangled value",
            b"UnknownHeaderWithUnusualValue: ;;,,;;,;",
            b"Content-Type: application/sdp",
            b"Route:",
            b" <sip:services.example.com;lr;unknownwith=value;unknown-no-value>",
            b"v:  SIP  / 2.0  / TCP     spindle.example.com   ;",
            b"  branch  =   z9hG4bK9ikj8  ,",
            b" SIP  /    2.0   / UDP  192.168.255.111   ; branch=",
            b" z9hG4bK30239",
            br#"m:"Quoted string \"\"" <sip:jdrosen@example.com> ; newparam ="#,
            b"      newvalue ;",
            b"  secondparam ; q = 0.33",
        ],
        &sdp("192.0.2.3", "192.0.2.4", "0 0"),
    )
}

const INTMETH_METHOD: &str = "!interesting-Method0123456789_*+`.%indeed'~";
const INTMETH_RURI: &str =
    "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com";

/// §3.1.1.2 Wide Range of Valid Characters: BEL, NUL and DEL as quoted-pairs
/// in the To display name, UTF-8 in a From parameter and an extension header.
fn intmeth() -> Vec<u8> {
    msg(
        &[
            b"!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0",
            b"Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~",
            b"To: \"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7F\" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>",
            b"From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"\xD1\x80\xD0\xB0\xD0\xB1\xD0\xBE\xD1\x82\xD0\xB0\xD1\x8E\xD1\x89\xD0\xB8\xD0\xB9\";tag=_token~1'+`*%!-.",
            br#"Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\/"][?}{"#,
            b"CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~",
            b"Max-Forwards: 255",
            b"extensionHeader-!.%*+_`'~:\xEF\xBB\xBF\xE5\xA4\xA7\xE5\x81\x9C\xE9\x9B\xBB",
            b"Content-Length: 0",
        ],
        b"",
    )
}

/// §3.1.1.3 Valid Use of the % Escaping Mechanism.
fn esc01() -> Vec<u8> {
    msg(
        &[
            b"INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0",
            b"To: sip:%75se%72@example.com",
            b"From: <sip:I%20have%20spaces@example.net>;tag=938",
            b"Max-Forwards: 87",
            b"i: esc01.239409asdfakjkn23onasd0-3234",
            b"CSeq: 234234 INVITE",
            b"Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw",
            b"C: application/sdp",
            b"Contact:",
            b"  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>",
            b"Content-Length: 150",
        ],
        &sdp("192.0.2.1", "192.0.2.1", "0 0"),
    )
}

/// §3.1.1.4 Escaped Nulls in URIs.
fn escnull() -> Vec<u8> {
    msg(
        &[
            b"REGISTER sip:example.com SIP/2.0",
            b"To: sip:null-%00-null@example.com",
            b"From: sip:null-%00-null@example.com;tag=839923423",
            b"Max-Forwards: 70",
            b"Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd",
            b"CSeq: 14398234 REGISTER",
            b"Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw",
            b"Contact: <sip:%00@host5.example.com>",
            b"Contact: <sip:%00%00@host5.example.com>",
            b"L:0",
        ],
        b"",
    )
}

/// §3.1.1.5 Use of % When It Is Not an Escape.
fn esc02() -> Vec<u8> {
    msg(
        &[
            b"RE%47IST%45R sip:registrar.example.com SIP/2.0",
            br#"To: "%Z%45" <sip:resource@example.com>"#,
            br#"From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23"#,
            b"Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf",
            b"Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234",
            b"CSeq: 29344 RE%47IST%45R",
            b"Max-Forwards: 70",
            b"Contact: <sip:alias1@host1.example.com>",
            b"C%6Fntact: <sip:alias2@host2.example.com>",
            b"Contact: <sip:alias3@host3.example.com>",
            b"l: 0",
        ],
        b"",
    )
}

/// §3.1.1.6 Message with No LWS between Display Name and <.
fn lwsdisp() -> Vec<u8> {
    msg(
        &[
            b"OPTIONS sip:user@example.com SIP/2.0",
            b"To: sip:user@example.com",
            b"From: caller<sip:caller@example.com>;tag=323",
            b"Max-Forwards: 70",
            b"Call-ID: lwsdisp.1234abcd@funky.example.com",
            b"CSeq: 60 OPTIONS",
            b"Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw",
            b"l: 0",
        ],
        b"",
    )
}

const LONGREQ_BRANCH: &str = "verylonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglongbranchvalue";

/// §3.1.1.7 Long Values in Header Fields: 34 Via values, the topmost without
/// a branch (only the last, the UAC's, has one).
fn longreq() -> Vec<u8> {
    let via_last = format!("Via: SIP/2.0/TCP host.example.com;received=192.0.2.5;branch={LONGREQ_BRANCH}");
    msg(
        &[
            b"INVITE sip:user@example.com SIP/2.0",
            br#"To: "I have a user name of extremeextremeextremeextremeextremeextremeextremeextremeextremeextreme proportion"<sip:user@example.com:6000;unknownparam1=verylonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglongvalue;longparamnamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamename=shortvalue;verylonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglongParameterNameWithNoValue>"#,
            b"F: sip:amazinglylongcallernameamazinglylongcallernameamazinglylongcallernameamazinglylongcallernameamazinglylongcallername@example.net;tag=12982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982424;unknownheaderparamnamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamename=unknowheaderparamvaluevaluevaluevaluevaluevaluevaluevaluevaluevaluevaluevaluevaluevaluevalue;unknownValuelessparamnameparamnameparamnameparamnameparamnameparamnameparamnameparamnameparamnameparamname",
            b"Call-ID: longreq.onereallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallylongcallid",
            b"CSeq: 3882340 INVITE",
            b"Unknown-LongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLong-Name: unknown-longlonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglong-value; unknown-longlonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglong-parameter-name = unknown-longlonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglong-parameter-value",
            b"Via: SIP/2.0/TCP sip33.example.com",
            b"v: SIP/2.0/TCP sip32.example.com",
            b"V: SIP/2.0/TCP sip31.example.com",
            b"Via: SIP/2.0/TCP sip30.example.com",
            b"ViA: SIP/2.0/TCP sip29.example.com",
            b"VIa: SIP/2.0/TCP sip28.example.com",
            b"VIA: SIP/2.0/TCP sip27.example.com",
            b"via: SIP/2.0/TCP sip26.example.com",
            b"viA: SIP/2.0/TCP sip25.example.com",
            b"vIa: SIP/2.0/TCP sip24.example.com",
            b"vIA: SIP/2.0/TCP sip23.example.com",
            b"V :  SIP/2.0/TCP sip22.example.com",
            b"v :  SIP/2.0/TCP sip21.example.com",
            b"V  : SIP/2.0/TCP sip20.example.com",
            b"v  : SIP/2.0/TCP sip19.example.com",
            b"Via : SIP/2.0/TCP sip18.example.com",
            b"Via  : SIP/2.0/TCP sip17.example.com",
            b"Via: SIP/2.0/TCP sip16.example.com",
            b"Via: SIP/2.0/TCP sip15.example.com",
            b"Via: SIP/2.0/TCP sip14.example.com",
            b"Via: SIP/2.0/TCP sip13.example.com",
            b"Via: SIP/2.0/TCP sip12.example.com",
            b"Via: SIP/2.0/TCP sip11.example.com",
            b"Via: SIP/2.0/TCP sip10.example.com",
            b"Via: SIP/2.0/TCP sip9.example.com",
            b"Via: SIP/2.0/TCP sip8.example.com",
            b"Via: SIP/2.0/TCP sip7.example.com",
            b"Via: SIP/2.0/TCP sip6.example.com",
            b"Via: SIP/2.0/TCP sip5.example.com",
            b"Via: SIP/2.0/TCP sip4.example.com",
            b"Via: SIP/2.0/TCP sip3.example.com",
            b"Via: SIP/2.0/TCP sip2.example.com",
            b"Via: SIP/2.0/TCP sip1.example.com",
            via_last.as_bytes(),
            b"Max-Forwards: 70",
            b"Contact: <sip:amazinglylongcallernameamazinglylongcallernameamazinglylongcallernameamazinglylongcallernameamazinglylongcallername@host5.example.net>",
            b"Content-Type: application/sdp",
            b"l: 150",
        ],
        &sdp("192.0.2.1", "192.0.2.1", "0 0"),
    )
}

/// §3.1.1.8 Extra Trailing Octets in a UDP Datagram: a REGISTER with
/// `Content-Length: 0`, then (after one more CRLF, as in the RFC's file)
/// octets that look like an INVITE.
fn dblreq() -> Vec<u8> {
    let mut out = msg(
        &[
            b"REGISTER sip:example.com SIP/2.0",
            b"To: sip:j.user@example.com",
            b"From: sip:j.user@example.com;tag=43251j3j324",
            b"Max-Forwards: 8",
            b"I: dblreq.0ha0isndaksdj99sdfafnl3lk233412",
            b"Contact: sip:j.user@host.example.com",
            b"CSeq: 8 REGISTER",
            b"Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492",
            b"Content-Length: 0",
        ],
        b"\r\n",
    );
    out.extend(msg(
        &[
            b"INVITE sip:joe@example.com SIP/2.0",
            b"t: sip:joe@example.com",
            b"From: sip:caller@example.net;tag=141334",
            b"Max-Forwards: 8",
            b"Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15",
            b"CSeq: 8 INVITE",
            b"Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234",
            b"Content-Type: application/sdp",
            b"Content-Length: 150",
        ],
        b"v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.15\r\ns=-\r\nc=IN IP4 192.0.2.15\r\nt=0 0\r\n\
          m=audio 49217 RTP/AVP 0 12\r\nm =video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n",
    ));
    out
}

/// §3.1.1.9 Semicolon-Separated Parameters in URI User Part.
fn semiuri() -> Vec<u8> {
    msg(
        &[
            b"OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0",
            b"To: sip:j_user@example.com",
            b"From: sip:caller@example.org;tag=33242",
            b"Max-Forwards: 3",
            b"Call-ID: semiuri.0ha0isndaksdj",
            b"CSeq: 8 OPTIONS",
            b"Accept: application/sdp, application/pkcs7-mime,",
            b"        multipart/mixed, multipart/signed,",
            b"        message/sip, message/sipfrag",
            b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw",
            b"l: 0",
        ],
        b"",
    )
}

/// §3.1.1.10 Varied and Unknown Transport Types.
fn transports() -> Vec<u8> {
    msg(
        &[
            b"OPTIONS sip:user@example.com SIP/2.0",
            b"To: sip:user@example.com",
            b"From: <sip:caller@example.com>;tag=323",
            b"Max-Forwards: 70",
            b"Call-ID:  transports.kijh4akdnaqjkwendsasfdj",
            b"Accept: application/sdp",
            b"CSeq: 60 OPTIONS",
            b"Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw",
            b"Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf",
            b"Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj",
            b"Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en",
            b"Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee",
            b"l: 0",
        ],
        b"",
    )
}

/// The DER (PKCS#7 signedData) part of mpart01, from the RFC's hex: it holds
/// NUL octets and a CR.
const MPART01_DER: &[u8] = b"\
\x30\x82\x01\x52\x06\x09\x2A\x86\x48\x86\xF7\x0D\x01\x07\x02\xA0\x82\x01\x43\x30\x82\x01\x3F\x02\
\x01\x01\x31\x09\x30\x07\x06\x05\x2B\x0E\x03\x02\x1A\x30\x0B\x06\x09\x2A\x86\x48\x86\xF7\x0D\x01\
\x07\x01\x31\x82\x01\x20\x30\x82\x01\x1C\x02\x01\x01\x30\x7C\x30\x70\x31\x0B\x30\x09\x06\x03\x55\
\x04\x06\x13\x02\x55\x53\x31\x13\x30\x11\x06\x03\x55\x04\x08\x13\x0A\x43\x61\x6C\x69\x66\x6F\x72\
\x6E\x69\x61\x31\x11\x30\x0F\x06\x03\x55\x04\x07\x13\x08\x53\x61\x6E\x20\x4A\x6F\x73\x65\x31\x0E\
\x30\x0C\x06\x03\x55\x04\x0A\x13\x05\x73\x69\x70\x69\x74\x31\x29\x30\x27\x06\x03\x55\x04\x0B\x13\
\x20\x53\x69\x70\x69\x74\x20\x54\x65\x73\x74\x20\x43\x65\x72\x74\x69\x66\x69\x63\x61\x74\x65\x20\
\x41\x75\x74\x68\x6F\x72\x69\x74\x79\x02\x08\x01\x95\x00\x71\x02\x33\x01\x13\x30\x07\x06\x05\x2B\
\x0E\x03\x02\x1A\x30\x0D\x06\x09\x2A\x86\x48\x86\xF7\x0D\x01\x01\x01\x05\x00\x04\x81\x80\x8E\xF4\
\x66\xF9\x48\xF0\x52\x2D\xD2\xE5\x97\x8E\x9D\x95\xAA\xE9\xF2\xFE\x15\xA0\x66\x59\x71\x62\x92\xE8\
\xDA\x2A\xA8\xD8\x35\x0A\x68\xCE\xFF\xAE\x3C\xBD\x2B\xFF\x16\x75\xDD\xD5\x64\x8E\x59\x3D\xD6\x47\
\x28\xF2\x62\x20\xF7\xE9\x41\x74\x9E\x33\x0D\x9A\x15\xED\xAB\xDB\x93\xD1\x0C\x42\x10\x2E\x7B\x72\
\x89\xD2\x9C\xC0\xC9\xAE\x2E\xFB\xC7\xC0\xCF\xF9\x17\x2F\x3B\x02\x7E\x4F\xC0\x27\xE1\x54\x6D\xE4\
\xB6\xAA\x3A\xBB\x3E\x66\xCC\xCB\x5D\xD6\xC6\x4B\x83\x83\x14\x9C\xB8\xE6\xFF\x18\x2D\x94\x4F\xE5\
\x7B\x65\xBC\x99\xD0\x05";

/// §3.1.1.11 Multipart MIME Message: a binary part with NUL octets.
fn mpart01() -> Vec<u8> {
    let mut body = b"--7a9cbec02ceef655\r\n\
        Content-Type: text/plain\r\n\
        Content-Transfer-Encoding: binary\r\n\
        \r\n\
        Hello\r\n\
        --7a9cbec02ceef655\r\n\
        Content-Type: application/octet-stream\r\n\
        Content-Transfer-Encoding: binary\r\n\
        \r\n"
        .to_vec();
    body.extend_from_slice(MPART01_DER);
    body.extend_from_slice(b"\r\n--7a9cbec02ceef655--\r\n");
    msg(
        &[
            b"MESSAGE sip:kumiko@example.org SIP/2.0",
            b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport",
            b"Max-Forwards: 70",
            b"Route: <sip:127.0.0.1:5080>",
            b"Identity: r5mwreLuyDRYBi/0TiPwEsY3rEVsk/G2WxhgTV1PF7hHuLIK0YWVKZhKv9Mj8UeXqkMVbnVq37CD+813gvYjcBUaZngQmXc9WNZSDNGCzA+fWl9MEUHWIZo1CeJebdY/XlgKeTa0Olvq0rt70Q5jiSfbqMJmQFteeivUhkMWYUA=",
            b"Contact: <sip:fluffy@127.0.0.1:5070>",
            b"To: <sip:kumiko@example.org>",
            b"From: <sip:fluffy@example.com>;tag=2fb0dcc9",
            b"Call-ID: 3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..",
            b"CSeq: 1 MESSAGE",
            b"Content-Transfer-Encoding: binary",
            b"Content-Type: multipart/mixed;boundary=7a9cbec02ceef655",
            b"Date: Sat, 15 Oct 2005 04:44:56 GMT",
            b"User-Agent: SIPimp.org/0.2.5 (curses)",
            b"Content-Length: 553",
        ],
        &body,
    )
}

/// The reason phrase of unreason, UTF-8 Cyrillic after `= 2**3 * 5**2 `.
const UNREASON_PHRASE: &[u8] = b"= 2**3 * 5**2 \xD0\xBD\xD0\xBE \xD1\x81\xD1\x82\xD0\xBE \
\xD0\xB4\xD0\xB5\xD0\xB2\xD1\x8F\xD0\xBD\xD0\xBE\xD1\x81\xD1\x82\xD0\xBE \
\xD0\xB4\xD0\xB5\xD0\xB2\xD1\x8F\xD1\x82\xD1\x8C - \
\xD0\xBF\xD1\x80\xD0\xBE\xD1\x81\xD1\x82\xD0\xBE\xD0\xB5";

/// §3.1.1.12 Unusual Reason Phrase.
fn unreason() -> Vec<u8> {
    let mut status = b"SIP/2.0 200 ".to_vec();
    status.extend_from_slice(UNREASON_PHRASE);
    msg(
        &[
            &status,
            b"Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923",
            b"Call-ID: unreason.1234ksdfak3j2erwedfsASdf",
            b"CSeq: 35 INVITE",
            b"From: sip:user@example.com;tag=11141343",
            b"To: sip:user@example.edu;tag=2229",
            b"Content-Length: 154",
            b"Content-Type: application/sdp",
            b"Contact: <sip:user@host198.example.com>",
        ],
        &sdp("192.0.2.198", "192.0.2.198", "0 0"),
    )
}

/// §3.1.1.13 Empty Reason Phrase (the SP after the code is there).
fn noreason() -> Vec<u8> {
    msg(
        &[
            b"SIP/2.0 100 ",
            b"Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe",
            b"Call-ID: noreason.asndj203insdf99223ndf",
            b"CSeq: 35 INVITE",
            b"From: <sip:user@example.com>;tag=39ansfi3",
            b"To: <sip:user@example.edu>;tag=902jndnke3",
            b"Content-Length: 0",
            b"Contact: <sip:user@host105.example.com>",
        ],
        b"",
    )
}

// ---- §3.1.2 invalid messages ----

/// §3.1.2.1 Extraneous Header Field Separators.
fn badinv01() -> Vec<u8> {
    msg(
        &[
            b"INVITE sip:user@example.com SIP/2.0",
            b"To: sip:j.user@example.com",
            b"From: sip:caller@example.net;tag=134161461246",
            b"Max-Forwards: 7",
            b"Call-ID: badinv01.0ha0isndaksdjasdf3234nas",
            b"CSeq: 8 INVITE",
            b"Via: SIP/2.0/UDP 192.0.2.15;;,;,,",
            br#"Contact: "Joe" <sip:joe@example.org>;;;;"#,
            b"Content-Length: 152",
            b"Content-Type: application/sdp",
        ],
        &sdp("192.0.2.15", "192.0.2.15", "0 0"),
    )
}

/// §3.1.2.2 Content Length Larger Than Message.
fn clerr() -> Vec<u8> {
    msg(
        &[
            b"INVITE sip:user@example.com SIP/2.0",
            b"Max-Forwards: 80",
            b"To: sip:j.user@example.com",
            b"From: sip:caller@example.net;tag=93942939o2",
            b"Contact: <sip:caller@hungry.example.net>",
            b"Call-ID: clerr.0ha0isndaksdjweiafasdk3",
            b"CSeq: 8 INVITE",
            b"Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523",
            b"Content-Type: application/sdp",
            b"Content-Length: 9999",
        ],
        &sdp("192.0.2.155", "192.0.2.155", "0 0"),
    )
}

/// §3.1.2.3 Negative Content-Length.
fn ncl() -> Vec<u8> {
    msg(
        &[
            b"INVITE sip:user@example.com SIP/2.0",
            b"Max-Forwards: 254",
            b"To: sip:j.user@example.com",
            b"From: sip:caller@example.net;tag=32394234",
            b"Call-ID: ncl.0ha0isndaksdj2193423r542w35",
            b"CSeq: 0 INVITE",
            b"Via: SIP/2.0/UDP 192.0.2.53;branch=z9hG4bKkdjuw",
            b"Contact: <sip:caller@example53.example.net>",
            b"Content-Type: application/sdp",
            b"Content-Length: -999",
        ],
        &sdp("192.0.2.53", "192.0.2.53", "0 0"),
    )
}

/// §3.1.2.4 Request Scalar Fields with Overlarge Values.
fn scalar02() -> Vec<u8> {
    msg(
        &[
            b"REGISTER sip:example.com SIP/2.0",
            b"Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3",
            b"To: <sip:user@example.com>",
            b"From: <sip:user@example.com>;tag=239232jh3",
            b"CSeq: 36893488147419103232 REGISTER",
            b"Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32",
            b"Max-Forwards: 300",
            b"Expires: 10000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
            b"Contact: <sip:user@host129.example.com>",
            b"  ;expires=280297596632815",
            b"Content-Length: 0",
        ],
        b"",
    )
}

/// §3.1.2.5 Response Scalar Fields with Overlarge Values.
fn scalarlg() -> Vec<u8> {
    msg(
        &[
            b"SIP/2.0 503 Service Unavailable",
            b"Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129",
            b"To: <sip:user@example.com>",
            b"From: <sip:other@example.net>;tag=2easdjfejw",
            b"CSeq: 9292394834772304023312 OPTIONS",
            b"Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r",
            b"Retry-After: 949302838503028349304023988",
            br#"Warning: 1812 overture "In Progress""#,
            b"Content-Length: 0",
        ],
        b"",
    )
}

/// §3.1.2.6 Unterminated Quoted String in Display Name.
fn quotbal() -> Vec<u8> {
    msg(
        &[
            b"INVITE sip:user@example.com SIP/2.0",
            br#"To: "Mr. J. User <sip:j.user@example.com>"#,
            b"From: sip:caller@example.net;tag=93334",
            b"Max-Forwards: 10",
            b"Call-ID: quotbal.aksdj",
            b"Contact: <sip:caller@host59.example.net>",
            b"CSeq: 8 INVITE",
            b"Via: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234",
            b"Content-Type: application/sdp",
            b"Content-Length: 152",
        ],
        &sdp("192.0.2.15", "192.0.2.15", "0 0"),
    )
}

/// §3.1.2.7 <> Enclosing Request-URI (and a top Via without a branch).
fn ltgtruri() -> Vec<u8> {
    msg(
        &[
            b"INVITE <sip:user@example.com> SIP/2.0",
            b"To: sip:user@example.com",
            b"From: sip:caller@example.net;tag=39291",
            b"Max-Forwards: 23",
            b"Call-ID: ltgtruri.1@192.0.2.5",
            b"CSeq: 1 INVITE",
            b"Via: SIP/2.0/UDP 192.0.2.5",
            b"Contact: <sip:caller@host5.example.net>",
            b"Content-Type: application/sdp",
            b"Content-Length: 159",
        ],
        &sdp("192.0.2.5", "192.0.2.5", "3149328700 0"),
    )
}

/// §3.1.2.8 Malformed SIP Request-URI (embedded LWS).
fn lwsruri() -> Vec<u8> {
    msg(
        &[
            b"INVITE sip:user@example.com; lr SIP/2.0",
            b"To: sip:user@example.com;tag=3xfe-9921883-z9f",
            b"From: sip:caller@example.net;tag=231413434",
            b"Max-Forwards: 5",
            b"Call-ID: lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423",
            b"CSeq: 2130706432 INVITE",
            b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKkdjuw2395",
            b"Contact: <sip:caller@host1.example.net>",
            b"Content-Type: application/sdp",
            b"Content-Length: 159",
        ],
        &sdp("192.0.2.1", "192.0.2.1", "3149328700 0"),
    )
}

/// §3.1.2.9 Multiple SP Separating Request-Line Elements.
fn lwsstart() -> Vec<u8> {
    msg(
        &[
            b"INVITE  sip:user@example.com  SIP/2.0",
            b"Max-Forwards: 8",
            b"To: sip:user@example.com",
            b"From: sip:caller@example.net;tag=8814",
            b"Call-ID: lwsstart.dfknq234oi243099adsdfnawe3@example.com",
            b"CSeq: 1893884 INVITE",
            b"Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw3923",
            b"Contact: <sip:caller@host1.example.net>",
            b"Content-Type: application/sdp",
            b"Content-Length: 150",
        ],
        &sdp("192.0.2.1", "192.0.2.1", "0 0"),
    )
}

/// §3.1.2.10 SP Characters at End of Request-Line.
fn trws() -> Vec<u8> {
    msg(
        &[
            b"OPTIONS sip:remote-target@example.com SIP/2.0  ",
            b"Via: SIP/2.0/TCP host1.examle.com;branch=z9hG4bK299342093",
            b"To: <sip:remote-target@example.com>",
            b"From: <sip:local-resource@example.com>;tag=329429089",
            b"Call-ID: trws.oicu34958239neffasdhr2345r",
            b"Accept: application/sdp",
            b"CSeq: 238923 OPTIONS",
            b"Max-Forwards: 70",
            b"Content-Length: 0",
        ],
        b"",
    )
}

/// §3.1.2.11 Escaped Headers in SIP Request-URI.
fn escruri() -> Vec<u8> {
    msg(
        &[
            b"INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0",
            b"To: sip:user@example.com",
            b"From: sip:caller@example.net;tag=341518",
            b"Max-Forwards: 7",
            b"Contact: <sip:caller@host39923.example.net>",
            b"Call-ID: escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5",
            b"CSeq: 149209342 INVITE",
            b"Via: SIP/2.0/UDP host-of-the-hour.example.com;branch=z9hG4bKkdjuw",
            b"Content-Type: application/sdp",
            b"Content-Length: 150",
        ],
        &sdp("192.0.2.1", "192.0.2.1", "0 0"),
    )
}

/// §3.1.2.12 Invalid Time Zone in Date Header Field.
fn baddate() -> Vec<u8> {
    msg(
        &[
            b"INVITE sip:user@example.com SIP/2.0",
            b"To: sip:user@example.com",
            b"From: sip:caller@example.net;tag=2234923",
            b"Max-Forwards: 70",
            b"Call-ID: baddate.239423mnsadf3j23lj42--sedfnm234",
            b"CSeq: 1392934 INVITE",
            b"Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw",
            b"Date: Fri, 01 Jan 2010 16:00:00 EST",
            b"Contact: <sip:caller@host5.example.net>",
            b"Content-Type: application/sdp",
            b"Content-Length: 150",
        ],
        &sdp("192.0.2.5", "192.0.2.5", "0 0"),
    )
}

/// §3.1.2.13 Failure to Enclose name-addr URI in <>.
fn regbadct() -> Vec<u8> {
    msg(
        &[
            b"REGISTER sip:example.com SIP/2.0",
            b"To: sip:user@example.com",
            b"From: sip:user@example.com;tag=998332",
            b"Max-Forwards: 70",
            b"Call-ID: regbadct.k345asrl3fdbv@10.0.0.1",
            b"CSeq: 1 REGISTER",
            b"Via: SIP/2.0/UDP 135.180.130.133:5060;branch=z9hG4bKkdjuw",
            b"Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            b"l: 0",
        ],
        b"",
    )
}

/// §3.1.2.14 Spaces within addr-spec.
fn badaspec() -> Vec<u8> {
    msg(
        &[
            b"OPTIONS sip:user@example.org SIP/2.0",
            b"Via: SIP/2.0/UDP host4.example.com:5060;branch=z9hG4bKkdju43234",
            b"Max-Forwards: 70",
            br#"From: "Bell, Alexander" <sip:a.g.bell@example.com>;tag=433423"#,
            br#"To: "Watson, Thomas" < sip:t.watson@example.org >"#,
            b"Call-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3",
            b"Accept: application/sdp",
            b"CSeq: 3923239 OPTIONS",
            b"l: 0",
        ],
        b"",
    )
}

/// §3.1.2.15 Non-token Characters in Display Name.
fn baddn() -> Vec<u8> {
    msg(
        &[
            b"OPTIONS sip:t.watson@example.org SIP/2.0",
            b"Via:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw",
            b"Max-Forwards:      70",
            b"From:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            b"To:      Watson, Thomas <sip:t.watson@example.org>",
            b"Call-ID: baddn.31415@c.example.com",
            b"Accept: application/sdp",
            b"CSeq:    3923239 OPTIONS",
            b"l: 0",
        ],
        b"",
    )
}

/// §3.1.2.16 Unknown Protocol Version.
fn badvers() -> Vec<u8> {
    msg(
        &[
            b"OPTIONS sip:t.watson@example.org SIP/7.0",
            b"Via:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw",
            b"Max-Forwards:     70",
            b"From:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe",
            b"To:      T. Watson <sip:t.watson@example.org>",
            b"Call-ID: badvers.31417@c.example.com",
            b"CSeq:    1 OPTIONS",
            b"l: 0",
        ],
        b"",
    )
}

/// §3.1.2.17 Start Line and CSeq Method Mismatch.
fn mismatch01() -> Vec<u8> {
    msg(
        &[
            b"OPTIONS sip:user@example.com SIP/2.0",
            b"To: sip:j.user@example.com",
            b"From: sip:caller@example.net;tag=34525",
            b"Max-Forwards: 6",
            b"Call-ID: mismatch01.dj0234sxdfl3",
            b"CSeq: 8 INVITE",
            b"Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw",
            b"l: 0",
        ],
        b"",
    )
}

/// §3.1.2.18 Unknown Method with CSeq Method Mismatch.
fn mismatch02() -> Vec<u8> {
    msg(
        &[
            b"NEWMETHOD sip:user@example.com SIP/2.0",
            b"To: sip:j.user@example.com",
            b"From: sip:caller@example.net;tag=34525",
            b"Max-Forwards: 6",
            b"Call-ID: mismatch02.dj0234sxdfl3",
            b"CSeq: 8 INVITE",
            b"Contact: <sip:caller@host.example.net>",
            b"Via: SIP/2.0/UDP host.example.net;branch=z9hG4bKkdjuw",
            b"Content-Type: application/sdp",
            b"l: 138",
        ],
        b"v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.1\r\n\
          m=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n",
    )
}

/// §3.1.2.19 Overlarge Response Code.
fn bigcode() -> Vec<u8> {
    msg(
        &[
            b"SIP/2.0 4294967301 better not break the receiver",
            b"Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe",
            b"Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i",
            b"CSeq: 353494 INVITE",
            b"From: <sip:user@example.com>;tag=39ansfi3",
            b"To: <sip:user@example.edu>;tag=902jndnke3",
            b"Content-Length: 0",
            b"Contact: <sip:user@host105.example.com>",
        ],
        b"",
    )
}

// ---- §3.2 transaction layer, §3.3 application layer, §3.4 RFC 2543 ----

/// §3.2.1 Missing Transaction Identifier (`branch=z9hG4bK` and nothing more).
fn badbranch() -> Vec<u8> {
    msg(
        &[
            b"OPTIONS sip:user@example.com SIP/2.0",
            b"To: sip:user@example.com",
            b"From: sip:caller@example.org;tag=33242",
            b"Max-Forwards: 3",
            b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK",
            b"Accept: application/sdp",
            b"Call-ID: badbranch.sadonfo23i420jv0as0derf3j3n",
            b"CSeq: 8 OPTIONS",
            b"l: 0",
        ],
        b"",
    )
}

/// §3.3.1 Missing Required Header Fields (no From, To, Call-ID, Max-Forwards).
fn insuf() -> Vec<u8> {
    msg(
        &[
            b"INVITE sip:user@example.com SIP/2.0",
            b"CSeq: 193942 INVITE",
            b"Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf",
            b"Content-Type: application/sdp",
            b"l: 152",
        ],
        &sdp("192.0.2.95", "192.0.2.95", "0 0"),
    )
}

/// §3.3.2 Request-URI with Unknown Scheme.
fn unkscm() -> Vec<u8> {
    msg(
        &[
            b"OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0",
            b"To: sip:user@example.com",
            b"From: sip:caller@example.net;tag=384",
            b"Max-Forwards: 3",
            b"Call-ID: unkscm.nasdfasser0q239nwsdfasdkl34",
            b"CSeq: 3923423 OPTIONS",
            b"Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234",
            b"Content-Length: 0",
        ],
        b"",
    )
}

/// §3.3.3 Request-URI with Known but Atypical Scheme.
fn novelsc() -> Vec<u8> {
    msg(
        &[
            b"OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0",
            b"To: sip:user@example.com",
            b"From: sip:caller@example.net;tag=384",
            b"Max-Forwards: 3",
            b"Call-ID: novelsc.asdfasser0q239nwsdfasdkl34",
            b"CSeq: 3923423 OPTIONS",
            b"Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234",
            b"Content-Length: 0",
        ],
        b"",
    )
}

/// §3.3.4 Unknown URI Schemes in Header Fields.
fn unksm2() -> Vec<u8> {
    msg(
        &[
            b"REGISTER sip:example.com SIP/2.0",
            b"To: isbn:2983792873",
            b"From: <http://www.example.com>;tag=3234233",
            b"Call-ID: unksm2.daksdj@hyphenated-host.example.com",
            b"CSeq: 234902 REGISTER",
            b"Max-Forwards: 70",
            b"Via: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bKkdjuw",
            b"Contact: <name:John_Smith>",
            b"l: 0",
        ],
        b"",
    )
}

/// §3.3.5 Proxy-Require and Require.
fn bext01() -> Vec<u8> {
    msg(
        &[
            b"OPTIONS sip:user@example.com SIP/2.0",
            b"To: sip:j_user@example.com",
            b"From: sip:caller@example.net;tag=242etr",
            b"Max-Forwards: 6",
            b"Call-ID: bext01.0ha0isndaksdj",
            b"Require: nothingSupportsThis, nothingSupportsThisEither",
            b"Proxy-Require: noProxiesSupportThis, norDoAnyProxiesSupportThis",
            b"CSeq: 8 OPTIONS",
            b"Via: SIP/2.0/TLS fold-and-staple.example.com;branch=z9hG4bKkdjuw",
            b"Content-Length: 0",
        ],
        b"",
    )
}

/// §3.3.6 Unknown Content-Type.
fn invut() -> Vec<u8> {
    msg(
        &[
            b"INVITE sip:user@example.com SIP/2.0",
            b"Contact: <sip:caller@host5.example.net>",
            b"To: sip:j.user@example.com",
            b"From: sip:caller@example.net;tag=8392034",
            b"Max-Forwards: 70",
            b"Call-ID: invut.0ha0isndaksdjadsfij34n23d",
            b"CSeq: 235448 INVITE",
            b"Via: SIP/2.0/UDP somehost.example.com;branch=z9hG4bKkdjuw",
            b"Content-Type: application/unknownformat",
            b"Content-Length: 40",
        ],
        b"<audio>\r\n <pcmu port=\"443\"/>\r\n</audio>\r\n",
    )
}

/// §3.3.7 Unknown Authorization Scheme.
fn regaut01() -> Vec<u8> {
    msg(
        &[
            b"REGISTER sip:example.com SIP/2.0",
            b"To: sip:j.user@example.com",
            b"From: sip:j.user@example.com;tag=87321hj23128",
            b"Max-Forwards: 8",
            b"Call-ID: regaut01.0ha0isndaksdj",
            b"CSeq: 9338 REGISTER",
            b"Via: SIP/2.0/TCP 192.0.2.253;branch=z9hG4bKkdjuw",
            b"Authorization: NoOneKnowsThisScheme opaque-data=here",
            b"Content-Length:0",
        ],
        b"",
    )
}

/// §3.3.8 Multiple Values in Single Value Required Fields.
fn multi01() -> Vec<u8> {
    let mut body = sdp("192.0.2.25", "192.0.2.25", "0 0");
    body.extend_from_slice(b"\r\n");
    msg(
        &[
            b"INVITE sip:user@company.com SIP/2.0",
            b"Contact: <sip:caller@host25.example.net>",
            b"Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKkdjuw",
            b"Max-Forwards: 70",
            b"CSeq: 5 INVITE",
            b"Call-ID: multi01.98asdh@192.0.2.1",
            b"CSeq: 59 INVITE",
            b"Call-ID: multi01.98asdh@192.0.2.2",
            b"From: sip:caller@example.com;tag=3413415",
            b"To: sip:user@example.com",
            b"To: sip:other@example.net",
            b"From: sip:caller@example.net;tag=2923420123",
            b"Content-Type: application/sdp",
            b"l: 154",
            b"Contact: <sip:caller@host36.example.net>",
            b"Max-Forwards: 5",
        ],
        &body,
    )
}

/// §3.3.9 Multiple Content-Length Values.
fn mcl01() -> Vec<u8> {
    msg(
        &[
            b"OPTIONS sip:user@example.com SIP/2.0",
            b"Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bK293423",
            b"To: sip:user@example.com",
            b"From: sip:other@example.net;tag=3923942",
            b"Call-ID: mcl01.fhn2323orihawfdoa3o4r52o3irsdf",
            b"CSeq: 15932 OPTIONS",
            b"Content-Length: 13",
            b"Max-Forwards: 60",
            b"Content-Length: 5",
            b"Content-Type: text/plain",
        ],
        b"There's no way to know how many octets are supposed to be here.\r\n",
    )
}

/// §3.3.10 200 OK Response with Broadcast Via Header Field Value.
fn bcast() -> Vec<u8> {
    msg(
        &[
            b"SIP/2.0 200 OK",
            b"Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923",
            b"Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1saber23",
            b"Call-ID: bcast.0384840201234ksdfak3j2erwedfsASdf",
            b"CSeq: 35 INVITE",
            b"From: sip:user@example.com;tag=11141343",
            b"To: sip:user@example.edu;tag=2229",
            b"Content-Length: 154",
            b"Content-Type: application/sdp",
            b"Contact: <sip:user@host28.example.com>",
        ],
        &sdp("192.0.2.198", "192.0.2.198", "0 0"),
    )
}

/// §3.3.11 Max-Forwards of Zero.
fn zeromf() -> Vec<u8> {
    msg(
        &[
            b"OPTIONS sip:user@example.com SIP/2.0",
            b"To: sip:user@example.com",
            b"From: sip:caller@example.net;tag=3ghsd41",
            b"Call-ID: zeromf.jfasdlfnm2o2l43r5u0asdfas",
            b"CSeq: 39234321 OPTIONS",
            b"Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw2349i",
            b"Max-Forwards: 0",
            b"Content-Length: 0",
        ],
        b"",
    )
}

/// §3.3.12 REGISTER with a Contact Header Parameter.
fn cparam01() -> Vec<u8> {
    msg(
        &[
            b"REGISTER sip:example.com SIP/2.0",
            b"Via: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw",
            b"Max-Forwards: 70",
            b"From: sip:watson@example.com;tag=DkfVgjkrtMwaerKKpe",
            b"To: sip:watson@example.com",
            b"Call-ID: cparam01.70710@saturn.example.com",
            b"CSeq: 2 REGISTER",
            b"Contact: sip:+19725552222@gw1.example.net;unknownparam",
            b"l: 0",
        ],
        b"",
    )
}

/// §3.3.13 REGISTER with a url-parameter.
fn cparam02() -> Vec<u8> {
    msg(
        &[
            b"REGISTER sip:example.com SIP/2.0",
            b"Via: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw",
            b"Max-Forwards: 70",
            b"From: sip:watson@example.com;tag=838293",
            b"To: sip:watson@example.com",
            b"Call-ID: cparam02.70710@saturn.example.com",
            b"CSeq: 3 REGISTER",
            b"Contact: <sip:+19725552222@gw1.example.net;unknownparam>",
            b"l: 0",
        ],
        b"",
    )
}

/// §3.3.14 REGISTER with a URL Escaped Header.
fn regescrt() -> Vec<u8> {
    msg(
        &[
            b"REGISTER sip:example.com SIP/2.0",
            b"To: sip:user@example.com",
            b"From: sip:user@example.com;tag=8",
            b"Max-Forwards: 70",
            b"Call-ID: regescrt.k345asrl3fdbv@192.0.2.1",
            b"CSeq: 14398234 REGISTER",
            b"Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw",
            b"M: <sip:user@example.com?Route=%3Csip:sip.example.com%3E>",
            b"L:0",
        ],
        b"",
    )
}

/// §3.3.15 Unacceptable Accept Offering.
fn sdp01() -> Vec<u8> {
    msg(
        &[
            b"INVITE sip:user@example.com SIP/2.0",
            b"To: sip:j_user@example.com",
            b"Contact: <sip:caller@host15.example.net>",
            b"From: sip:caller@example.net;tag=234",
            b"Max-Forwards: 5",
            b"Call-ID: sdp01.ndaksdj9342dasdd",
            b"Accept: text/nobodyKnowsThis",
            b"CSeq: 8 INVITE",
            b"Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw",
            b"Content-Length: 150",
            b"Content-Type: application/sdp",
        ],
        &sdp("192.0.2.5", "192.0.2.5", "0 0"),
    )
}

/// §3.4.1 INVITE with RFC 2543 Syntax: no branch, no From tag, no
/// Max-Forwards, no Content-Length (the body runs to the end of the datagram).
fn inv2543() -> Vec<u8> {
    msg(
        &[
            b"INVITE sip:UserB@example.com SIP/2.0",
            b"Via: SIP/2.0/UDP iftgw.example.com",
            b"From: <sip:+13035551111@ift.client.example.net;user=phone>",
            b"Record-Route: <sip:UserB@example.com;maddr=ss1.example.com>",
            b"To: sip:+16505552222@ss1.example.net;user=phone",
            b"Call-ID: inv2543.1717@ift.client.example.com",
            b"CSeq: 56 INVITE",
            b"Content-Type: application/sdp",
        ],
        b"v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 192.0.2.5\r\nt=0 0\r\n\
          m=audio 49217 RTP/AVP 0\r\n",
    )
}

// ---------------------------------------------------------------------------
// Checks shared by the cases.
// ---------------------------------------------------------------------------

/// Every message of RFC 4475 reproduced here, by its file name in the RFC.
fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("wsinv", wsinv()),
        ("intmeth", intmeth()),
        ("esc01", esc01()),
        ("escnull", escnull()),
        ("esc02", esc02()),
        ("lwsdisp", lwsdisp()),
        ("longreq", longreq()),
        ("dblreq", dblreq()),
        ("semiuri", semiuri()),
        ("transports", transports()),
        ("mpart01", mpart01()),
        ("unreason", unreason()),
        ("noreason", noreason()),
        ("badinv01", badinv01()),
        ("clerr", clerr()),
        ("ncl", ncl()),
        ("scalar02", scalar02()),
        ("scalarlg", scalarlg()),
        ("quotbal", quotbal()),
        ("ltgtruri", ltgtruri()),
        ("lwsruri", lwsruri()),
        ("lwsstart", lwsstart()),
        ("trws", trws()),
        ("escruri", escruri()),
        ("baddate", baddate()),
        ("regbadct", regbadct()),
        ("badaspec", badaspec()),
        ("baddn", baddn()),
        ("badvers", badvers()),
        ("mismatch01", mismatch01()),
        ("mismatch02", mismatch02()),
        ("bigcode", bigcode()),
        ("badbranch", badbranch()),
        ("insuf", insuf()),
        ("unkscm", unkscm()),
        ("novelsc", novelsc()),
        ("unksm2", unksm2()),
        ("bext01", bext01()),
        ("invut", invut()),
        ("regaut01", regaut01()),
        ("multi01", multi01()),
        ("mcl01", mcl01()),
        ("bcast", bcast()),
        ("zeromf", zeromf()),
        ("cparam01", cparam01()),
        ("cparam02", cparam02()),
        ("regescrt", regescrt()),
        ("sdp01", sdp01()),
        ("inv2543", inv2543()),
    ]
}

fn head_end(bytes: &[u8]) -> usize {
    bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("blank line") + 4
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The proxy answered `code` (a 100 Trying aside) and sent nothing on;
/// returns the answer.
#[track_caller]
fn answered(bytes: &[u8], code: u16) -> String {
    let o = Harness::new().forward(bytes);
    assert!(o.forwarded.is_empty(), "forwarded {o:?}");
    assert_eq!(o.finals(), vec![code], "{o:?}");
    let (_, answer) = o.responses.iter().find(|(c, _)| *c == code).unwrap();
    text(answer)
}

/// `parse` refuses the message and the proxy answers 400 (RFC 3261 §16.3:
/// a proxy that cannot validate a request answers it as a UAS would).
#[track_caller]
fn refused_with_400(bytes: &[u8]) -> (ParseError, String) {
    let err = message::parse(bytes).expect_err("the parser must refuse it");
    let answer = answered(bytes, 400);
    assert!(answer.starts_with("SIP/2.0 400 "), "{answer}");
    (err, answer)
}

/// The proxy sent exactly one request on; returns where and what.
#[track_caller]
fn forwarded(bytes: &[u8]) -> (Peer, Request) {
    let o = Harness::new().forward(bytes);
    assert!(o.finals().is_empty(), "answered {o:?}");
    match o.forwarded.as_slice() {
        [(to, sent)] => (to.clone(), request(sent)),
        _ => panic!("{o:?}"),
    }
}

/// The proxy did nothing at all.
#[track_caller]
fn dropped(bytes: &[u8]) {
    let o = Harness::new().forward(bytes);
    assert!(
        o.responses.is_empty() && o.forwarded.is_empty() && o.asked.is_empty(),
        "{o:?}"
    );
}

fn request_line(bytes: &[u8]) -> String {
    let end = bytes.windows(2).position(|w| w == b"\r\n").unwrap();
    text(&bytes[..end])
}

// ---------------------------------------------------------------------------
// The corpus itself.
// ---------------------------------------------------------------------------

/// The transcription matches what the RFC declares: CRLF line ends in every
/// head, and bodies as long as their Content-Length says (for the messages
/// whose length is right on purpose).
#[test]
fn the_messages_are_transcribed_faithfully() {
    for (name, bytes) in corpus() {
        let head = &bytes[..head_end(&bytes)];
        for (i, b) in head.iter().enumerate() {
            if *b == b'\n' {
                assert!(i > 0 && head[i - 1] == b'\r', "{name}: bare LF at {i}");
            }
        }
    }
    let declared = [
        ("wsinv", wsinv(), 150),
        ("esc01", esc01(), 150),
        ("longreq", longreq(), 150),
        ("mpart01", mpart01(), 553),
        ("unreason", unreason(), 154),
        ("badinv01", badinv01(), 152),
        ("quotbal", quotbal(), 152),
        ("ltgtruri", ltgtruri(), 159),
        ("lwsruri", lwsruri(), 159),
        ("lwsstart", lwsstart(), 150),
        ("escruri", escruri(), 150),
        ("baddate", baddate(), 150),
        ("mismatch02", mismatch02(), 138),
        ("insuf", insuf(), 152),
        ("invut", invut(), 40),
        ("multi01", multi01(), 154),
        ("bcast", bcast(), 154),
        ("sdp01", sdp01(), 150),
    ];
    for (name, bytes, length) in declared {
        assert_eq!(bytes.len() - head_end(&bytes), length, "{name}");
    }
    // The binary part of mpart01 is the RFC's DER: NUL octets and a CR inside.
    assert_eq!(MPART01_DER.len(), 342);
    assert!(MPART01_DER.contains(&0) && MPART01_DER.contains(&b'\r'));
    // clerr claims 9999 octets and carries far fewer.
    assert!(clerr().len() - head_end(&clerr()) < 200);
}

// ---------------------------------------------------------------------------
// §3.1.1 Valid messages: `parse` must accept them and read the Request-URI
// (verbatim), the top Via's branch, CSeq and Call-ID.
// ---------------------------------------------------------------------------

#[test]
fn wsinv_is_accepted_with_folding_lws_and_unknown_headers() {
    let bytes = wsinv();
    let r = request(&bytes);
    assert_eq!(r.method.to_string(), "INVITE");
    assert_eq!(r.uri, "sip:vivekg@chair-dnrc.example.com;unknownparam");
    assert_eq!(r.branch().as_deref(), Some("390skdjuw"));
    // "cseq: 0009\r\n  INVITE": leading zeros and a fold.
    assert_eq!(message::cseq(&r.headers), Some((9, "INVITE".into())));
    assert_eq!(message::first(&r.headers, "Call-ID"), Some("wsinv.ndaksdj@192.0.2.1"));
    assert_eq!(message::first(&r.headers, "Max-Forwards").map(str::trim), Some("0068"));
    // Three Via values in two fields, one of them in compact form, LWS everywhere.
    let vias = message::all_values(&r.headers, "Via");
    assert_eq!(vias.len(), 3, "{vias:?}");
    assert_eq!(message::param(&vias[1], "branch").as_deref(), Some("z9hG4bK9ikj8"));
    assert_eq!(message::param(&vias[2], "branch").as_deref(), Some("z9hG4bK30239"));
    let to = message::first(&r.headers, "To").unwrap();
    assert_eq!(message::param(to, "tag").as_deref(), Some("1918181833n"));
    assert_eq!(message::uri_of(to), "sip:vivekg@chair-dnrc.example.com");
    // The display name holds an escaped backslash and an escaped quote.
    let from = message::first(&r.headers, "From").unwrap();
    assert_eq!(message::uri_of(from), "sip:jdrosen@example.com");
    assert_eq!(message::param(from, "tag").as_deref(), Some("98asjd8"));
    let contact = message::first(&r.headers, "Contact").unwrap();
    assert_eq!(message::uri_of(contact), "sip:jdrosen@example.com");
    assert_eq!(message::param(contact, "q").as_deref(), Some("0.33"));
    assert_eq!(message::param(contact, "newparam").as_deref(), Some("newvalue"));
    // Unknown header fields are kept as they came (a fold is one SP, §7.3.1).
    assert_eq!(
        message::first(&r.headers, "UnknownHeaderWithUnusualValue"),
        Some(";;,,;;,;")
    );
    assert_eq!(
        message::first(&r.headers, "NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(r.body, bytes[head_end(&bytes)..]);
    // What the proxy would send reads the same.
    let again = request(&r.to_bytes());
    assert_eq!(again.uri, r.uri);
    assert_eq!(again.branch(), r.branch());
    assert_eq!(message::cseq(&again.headers), message::cseq(&r.headers));
    assert_eq!(message::all_values(&again.headers, "Via").len(), 3);
    assert_eq!(again.body, r.body);
}

/// The Route names a host, not an address: the next hop is found by RFC 3263
/// from the topmost Route value (RFC 3261 §16.6 step 7).
#[test]
fn wsinv_is_forwarded_toward_its_route_host_with_unknown_headers_unchanged() {
    let mut h = Harness::new();
    let o = h.forward(&wsinv());
    assert!(
        o.asked
            .iter()
            .any(|a| matches!(a, Output::Locate { target, .. } if target.host == "services.example.com")),
        "{o:?}"
    );
    let [(_, sent)] = o.forwarded.as_slice() else {
        panic!("{o:?}")
    };
    let text = text(sent);
    assert!(text.contains("UnknownHeaderWithUnusualValue: ;;,,;;,;\r\n"), "{text}");
    assert!(text.contains("Max-Forwards: 67\r\n"), "{text}");
}

/// §3.1.1.2: a method, Request-URI and branch of unusual but legal characters.
/// rsipstack's `Method` has no extension method, so `parse` refuses the
/// request and the proxy drops it without an answer; RFC 3261 §16.3 step 1:
/// "An element MUST NOT refuse to proxy a request because it contains a method
/// or header field it does not know about" (RFC 4475: forward, or 404).
#[test]
fn intmeth_is_accepted_with_an_extension_method() {
    let bytes = intmeth();
    let r = request(&bytes);
    assert_eq!(r.method.to_string(), INTMETH_METHOD);
    assert_eq!(r.uri, INTMETH_RURI);
    assert_eq!(r.branch().as_deref(), Some("z9hG4bK-.!%66*_+`'~"));
    assert_eq!(message::cseq(&r.headers), Some((139122385, INTMETH_METHOD.to_owned())));
    assert_eq!(
        message::first(&r.headers, "Call-ID"),
        Some(r#"intmeth.word%ZK-!.*_+'@word`~)(><:\/"][?}{"#)
    );
    let from = message::first(&r.headers, "From").unwrap();
    assert_eq!(message::param(from, "tag").as_deref(), Some("_token~1'+`*%!-."));
    let o = Harness::new().forward(&bytes);
    assert!(
        !o.forwarded.is_empty() || !o.finals().is_empty(),
        "dropped silently: {o:?}"
    );
}

/// The user part of a SIP URI may hold `?` (RFC 3261 §25.1 user-unreserved);
/// `SipUri::parse` cuts the URI at the first `?` before looking for `@`, so
/// intmeth's Request-URI and To URI come apart wrongly (host = part of the user).
#[test]
fn intmeth_uris_come_apart_at_the_right_at_sign() {
    let u = message::SipUri::parse(INTMETH_RURI).expect("uri");
    assert_eq!(u.host, "example.com");
    assert_eq!(
        u.user.as_deref(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    let to = "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com";
    assert_eq!(message::SipUri::parse(to).expect("uri").host, "example.com");
}

#[test]
fn esc01_keeps_its_escapes_verbatim() {
    let bytes = esc01();
    let r = request(&bytes);
    assert_eq!(r.uri, "sip:sips%3Auser%40example.com@example.net");
    assert_eq!(r.branch().as_deref(), Some("z9hG4bKkdjuw"));
    assert_eq!(message::cseq(&r.headers), Some((234234, "INVITE".into())));
    // Compact Call-ID ("i:").
    assert_eq!(
        message::first(&r.headers, "Call-ID"),
        Some("esc01.239409asdfakjkn23onasd0-3234")
    );
    let to = message::first(&r.headers, "To").unwrap();
    assert_eq!(message::uri_of(to), "sip:%75se%72@example.com");
    // The AOR of RFC 7904 is the unescaped user@host.
    assert_eq!(
        reload_sip::proxy::aor_of_uri(&message::uri_of(to)).as_deref(),
        Some("user@example.com")
    );
    assert_eq!(
        message::uri_of(message::first(&r.headers, "Contact").unwrap()),
        "sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31"
    );
    // Forwarded with the Request-URI exactly as it came (rsipstack would
    // re-escape it), looked up under the unescaped AOR.
    let o = Harness::new().forward(&bytes);
    assert!(
        o.asked
            .iter()
            .any(|a| matches!(a, Output::Lookup { aor, .. } if aor == "sips:user@example.com@example.net")),
        "{o:?}"
    );
    let [(to, sent)] = o.forwarded.as_slice() else {
        panic!("{o:?}")
    };
    assert_eq!(*to, Peer::Node(OTHER));
    assert_eq!(
        request_line(sent),
        "INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0"
    );
    assert_eq!(request(sent).body, bytes[head_end(&bytes)..]);
}

#[test]
fn escnull_keeps_escaped_nulls_in_the_aor() {
    let r = request(&escnull());
    assert_eq!(r.uri, "sip:example.com");
    assert_eq!(r.branch().as_deref(), Some("z9hG4bKkdjuw"));
    assert_eq!(message::cseq(&r.headers), Some((14398234, "REGISTER".into())));
    assert_eq!(
        message::first(&r.headers, "Call-ID"),
        Some("escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd")
    );
    // The AOR is not cut at the NUL.
    let to = message::uri_of(message::first(&r.headers, "To").unwrap());
    assert_eq!(
        reload_sip::proxy::aor_of_uri(&to).as_deref(),
        Some("null-\0-null@example.com")
    );
    // Two distinct contacts.
    assert_eq!(
        message::all_values(&r.headers, "Contact"),
        vec!["<sip:%00@host5.example.com>", "<sip:%00%00@host5.example.com>"]
    );
    // This node holds no credentials for that AOR (RFC 7904 §3.3).
    answered(&escnull(), 403);
}

/// §3.1.1.5: `%` is no escape in a method or a header name: RE%47IST%45R is
/// an unknown method (not REGISTER), C%6Fntact an unknown header. Refused like
/// intmeth; the proxy must forward or reject it (RFC 3261 §16.3 step 1).
#[test]
fn esc02_is_accepted_with_an_extension_method() {
    let bytes = esc02();
    let r = request(&bytes);
    assert_eq!(r.method.to_string(), "RE%47IST%45R");
    assert_eq!(r.uri, "sip:registrar.example.com");
    assert_eq!(r.branch().as_deref(), Some("z9hG4bK209%fzsnel234"));
    assert_eq!(message::cseq(&r.headers), Some((29344, "RE%47IST%45R".into())));
    assert_eq!(message::all_values(&r.headers, "Contact").len(), 2);
    assert_eq!(
        message::first(&r.headers, "C%6Fntact"),
        Some("<sip:alias2@host2.example.com>")
    );
    let o = Harness::new().forward(&bytes);
    assert!(
        !o.forwarded.is_empty() || !o.finals().is_empty(),
        "dropped silently: {o:?}"
    );
}

#[test]
fn lwsdisp_is_accepted_and_forwarded() {
    let r = request(&lwsdisp());
    assert_eq!(r.uri, "sip:user@example.com");
    assert_eq!(r.branch().as_deref(), Some("z9hG4bKkdjuw"));
    assert_eq!(message::cseq(&r.headers), Some((60, "OPTIONS".into())));
    let from = message::first(&r.headers, "From").unwrap();
    assert_eq!(message::uri_of(from), "sip:caller@example.com");
    assert_eq!(message::param(from, "tag").as_deref(), Some("323"));
    let (to, sent) = forwarded(&lwsdisp());
    assert_eq!(to, Peer::Node(OTHER));
    assert_eq!(message::first(&sent.headers, "From"), Some(from));
}

/// §3.1.1.7: parses whole. The topmost of its 34 Via values (sip33, an RFC
/// 2543 proxy) has no branch, and this proxy keys transactions by branch only:
/// it answers 400 instead of using RFC 3261 §17.2.3's backward-compatible
/// matching. A limitation, reported.
#[test]
fn longreq_parses_whole_and_the_proxy_wants_a_branch() {
    let bytes = longreq();
    let r = request(&bytes);
    assert_eq!(r.uri, "sip:user@example.com");
    assert_eq!(r.branch(), None);
    let vias = message::all_values(&r.headers, "Via");
    assert_eq!(vias.len(), 34);
    assert_eq!(message::param(&vias[33], "branch").as_deref(), Some(LONGREQ_BRANCH));
    assert_eq!(message::cseq(&r.headers), Some((3882340, "INVITE".into())));
    assert!(
        message::first(&r.headers, "Call-ID")
            .unwrap()
            .ends_with("reallylongcallid")
    );
    let from = message::first(&r.headers, "From").unwrap();
    assert!(message::param(from, "tag").unwrap().ends_with("982982424"));
    assert_eq!(
        message::SipUri::parse(&message::uri_of(message::first(&r.headers, "To").unwrap()))
            .unwrap()
            .port,
        Some(6000)
    );
    assert_eq!(r.body.len(), 150);
    let answer = answered(&bytes, 400);
    assert!(answer.contains("Call-ID: longreq."), "{answer}");
}

/// §3.1.1.8: the octets after the zero-length body are noise (RFC 3261 §18.3).
#[test]
fn dblreq_ignores_the_octets_after_the_body() {
    let bytes = dblreq();
    let r = request(&bytes);
    assert_eq!(r.method.to_string(), "REGISTER");
    assert!(r.body.is_empty());
    assert_eq!(r.branch().as_deref(), Some("z9hG4bKkdjuw23492"));
    assert_eq!(message::cseq(&r.headers), Some((8, "REGISTER".into())));
    assert_eq!(
        message::first(&r.headers, "Call-ID"),
        Some("dblreq.0ha0isndaksdj99sdfafnl3lk233412")
    );
    // One answer, to the REGISTER (a digest challenge for j.user's account);
    // nothing about the INVITE.
    let o = Harness::new().forward(&bytes);
    assert_eq!(o.finals(), vec![401], "{o:?}");
    assert_eq!(o.responses.len(), 1);
    assert!(o.forwarded.is_empty() && o.asked.is_empty(), "{o:?}");
    assert!(text(&o.responses[0].1).contains("CSeq: 8 REGISTER\r\n"));
}

#[test]
fn semiuri_keeps_the_user_part_with_its_parameter() {
    let r = request(&semiuri());
    assert_eq!(r.uri, "sip:user;par=u%40example.net@example.com");
    let u = message::SipUri::parse(&r.uri).unwrap();
    assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
    assert_eq!(u.host, "example.com");
    assert_eq!(r.branch().as_deref(), Some("z9hG4bKkdjuw"));
    assert_eq!(message::cseq(&r.headers), Some((8, "OPTIONS".into())));
    assert_eq!(message::first(&r.headers, "Call-ID"), Some("semiuri.0ha0isndaksdj"));
    let o = Harness::new().forward(&semiuri());
    assert!(
        o.asked
            .iter()
            .any(|a| matches!(a, Output::Lookup { aor, .. } if aor == "user;par=u@example.net@example.com")),
        "{o:?}"
    );
    let [(_, sent)] = o.forwarded.as_slice() else {
        panic!("{o:?}")
    };
    assert_eq!(
        request_line(sent),
        "OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0"
    );
}

#[test]
fn transports_reads_every_via_transport() {
    let r = request(&transports());
    assert_eq!(r.uri, "sip:user@example.com");
    assert_eq!(r.branch().as_deref(), Some("z9hG4bKkdjuw"));
    assert_eq!(message::cseq(&r.headers), Some((60, "OPTIONS".into())));
    assert_eq!(
        message::first(&r.headers, "Call-ID").map(str::trim),
        Some("transports.kijh4akdnaqjkwendsasfdj")
    );
    let kinds: Vec<String> = message::all_values(&r.headers, "Via")
        .iter()
        .map(|v| message::parse_via(v).unwrap().transport)
        .collect();
    assert_eq!(kinds, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    // Forwarded with all five under the proxy's own.
    let (_, sent) = forwarded(&transports());
    assert_eq!(message::all_values(&sent.headers, "Via").len(), 6);
}

/// §3.1.1.11: a body with NUL octets must be framed by its Content-Length and
/// forwarded octet for octet.
#[test]
fn mpart01_keeps_its_binary_body() {
    let bytes = mpart01();
    let r = request(&bytes);
    assert_eq!(r.method.to_string(), "MESSAGE");
    assert_eq!(r.uri, "sip:kumiko@example.org");
    assert_eq!(
        r.branch().as_deref(),
        Some("z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-")
    );
    assert_eq!(message::cseq(&r.headers), Some((1, "MESSAGE".into())));
    assert_eq!(
        message::first(&r.headers, "Call-ID"),
        Some("3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..")
    );
    assert_eq!(r.body.len(), 553);
    assert_eq!(r.body, bytes[head_end(&bytes)..]);
    // The Route is an address: forwarded there, body and Identity untouched.
    let (to, sent) = forwarded(&bytes);
    assert_eq!(to, udp("127.0.0.1:5080"));
    assert_eq!(sent.body, r.body);
    assert_eq!(
        message::first(&sent.headers, "Content-Length").map(str::trim),
        Some("553")
    );
    assert_eq!(
        message::first(&sent.headers, "Identity"),
        message::first(&r.headers, "Identity")
    );
}

/// §3.1.1.12: accepted; a response matching no transaction is dropped.
#[test]
fn unreason_is_accepted() {
    let bytes = unreason();
    let r = response(&bytes);
    assert_eq!(r.code, 200);
    assert_eq!(r.branch().as_deref(), Some("z9hG4bK1324923"));
    assert_eq!(r.cseq_method().as_deref(), Some("INVITE"));
    assert_eq!(
        message::first(&r.headers, "Call-ID"),
        Some("unreason.1234ksdfak3j2erwedfsASdf")
    );
    assert_eq!(r.body.len(), 154);
    dropped(&bytes);
}

/// `Response::reason` is read with rsipstack's `reason_phrase()`, which
/// returns the value of a `Reason:` *header* (RFC 3326), not the
/// Reason-Phrase of the status line (rsipstack's `wire_reason`). Every
/// response the proxy relays loses its phrase ("SIP/2.0 486 \r\n"), or gets a
/// Reason header's text as its phrase.
#[test]
fn unreason_keeps_its_reason_phrase() {
    let r = response(&unreason());
    assert_eq!(r.reason.as_bytes(), UNREASON_PHRASE);
    let busy = b"SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-1\r\n\
        From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>;tag=2\r\nCall-ID: c\r\n\
        CSeq: 1 INVITE\r\nReason: SIP;cause=600;text=\"Busy Everywhere\"\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(response(busy).reason, "Busy Here");
}

#[test]
fn noreason_is_accepted() {
    let r = response(&noreason());
    assert_eq!(r.code, 100);
    assert_eq!(r.reason, "");
    assert_eq!(r.branch().as_deref(), Some("z9hG4bK2398ndaoe"));
    assert_eq!(
        message::first(&r.headers, "Call-ID"),
        Some("noreason.asndj203insdf99223ndf")
    );
    dropped(&noreason());
}

// ---------------------------------------------------------------------------
// §3.1.2 Invalid messages. Each either is refused by `parse` (and the proxy
// answers 400 when it can read Via, Call-ID and CSeq) or is accepted because a
// proxy may reasonably forward it; the comment says which and why.
// ---------------------------------------------------------------------------

/// §3.1.2.1 badinv01 — accepted by `parse` (header values stay raw strings),
/// but the top Via "SIP/2.0/UDP 192.0.2.15;;,;,," has no branch: the proxy
/// answers 400, as the RFC asks.
#[test]
fn badinv01_gets_a_400() {
    let r = request(&badinv01());
    assert_eq!(r.branch(), None);
    let answer = answered(&badinv01(), 400);
    assert!(
        answer.contains("Call-ID: badinv01.0ha0isndaksdjasdf3234nas\r\n"),
        "{answer}"
    );
}

/// §3.1.2.2 clerr — refused: Content-Length 9999, far fewer octets in the
/// datagram (RFC 3261 §18.3: a request SHOULD get a 400).
#[test]
fn clerr_is_refused_with_400() {
    let (err, answer) = refused_with_400(&clerr());
    assert_eq!(err, ParseError::ContentLength("9999".into()));
    assert!(
        answer.contains("Call-ID: clerr.0ha0isndaksdjweiafasdk3\r\n"),
        "{answer}"
    );
    assert!(answer.contains("CSeq: 8 INVITE\r\n"), "{answer}");
    assert!(
        answer.contains("Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523\r\n"),
        "{answer}"
    );
}

/// §3.1.2.3 ncl — refused: a negative Content-Length never becomes a length.
#[test]
fn ncl_is_refused_with_400() {
    let (err, answer) = refused_with_400(&ncl());
    assert_eq!(err, ParseError::ContentLength("-999".into()));
    assert!(
        answer.contains("Call-ID: ncl.0ha0isndaksdj2193423r542w35\r\n"),
        "{answer}"
    );
}

/// §3.1.2.4 scalar02 — refused for the CSeq beyond 2**32-1, as the RFC asks.
#[test]
fn scalar02_is_refused_with_400() {
    let (err, answer) = refused_with_400(&scalar02());
    assert_eq!(err, ParseError::Header("CSeq"));
    assert!(
        answer.contains("Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32\r\n"),
        "{answer}"
    );
}

/// §3.1.2.5 scalarlg — a response with an overlarge CSeq: refused and dropped
/// (RFC: "An element receiving this response will simply discard it").
#[test]
fn scalarlg_is_dropped() {
    assert_eq!(message::parse(&scalarlg()), Err(ParseError::Header("CSeq")));
    dropped(&scalarlg());
}

/// §3.1.2.6 quotbal — accepted: the unterminated quote is in To, which a proxy
/// neither routes on nor rewrites (RFC 3261 §16.3 step 1: components not
/// involved in validation or forwarding are ignored and left unchanged); the
/// RFC allows an element to be liberal here. Forwarded with To unchanged.
#[test]
fn quotbal_is_forwarded_with_to_unchanged() {
    let r = request(&quotbal());
    assert_eq!(r.branch().as_deref(), Some("z9hG4bKkdjuw39234"));
    let (_, sent) = forwarded(&quotbal());
    assert_eq!(
        message::first(&sent.headers, "To"),
        Some(r#""Mr. J. User <sip:j.user@example.com>"#)
    );
}

/// §3.1.2.7 ltgtruri — `parse` keeps the Request-URI verbatim, brackets and
/// all; the message's Via has no branch, so the proxy answers 400. With a
/// branch, "<sip:...>" is no SIP URI to the proxy: 416. Either way it is
/// never forwarded with the brackets (the RFC's one requirement).
#[test]
fn ltgtruri_is_rejected_never_forwarded() {
    let (err, _) = refused_with_400(&ltgtruri());
    assert!(matches!(err, ParseError::RequestUri(_)), "{err:?}");
    let with_branch = text(&ltgtruri()).replace(
        "Via: SIP/2.0/UDP 192.0.2.5\r\n",
        "Via: SIP/2.0/UDP 192.0.2.5;branch=z9hG4bK-ltgt\r\n",
    );
    answered(with_branch.as_bytes(), 400);
}

/// §3.1.2.8 lwsruri — refused: the codec reads "lr SIP/2.0" as the version.
#[test]
fn lwsruri_is_refused() {
    assert!(matches!(message::parse(&lwsruri()), Err(ParseError::Syntax(_))));
}

/// ... but no answer comes back although Via, Call-ID and CSeq are plain:
/// `answer_malformed` re-parses with the codec that just refused the message.
/// RFC 4475: "should respond with a 400"; RFC 3261 §16.3: a failed check is
/// answered as a UAS would. The client retransmits for 32 s instead.
#[test]
fn lwsruri_gets_a_400() {
    refused_with_400(&lwsruri());
}

/// §3.1.2.9 lwsstart — refused (the codec finds an empty Request-URI between
/// the two SPs; rejecting is allowed by the RFC).
#[test]
fn lwsstart_is_refused() {
    assert!(matches!(message::parse(&lwsstart()), Err(ParseError::Syntax(_))));
}

/// ... with no answer at all, for the same reason as lwsruri.
#[test]
fn lwsstart_gets_a_400() {
    refused_with_400(&lwsstart());
}

/// §3.1.2.10 trws — accepted (the RFC allows ignoring the trailing SP), and
/// forwarded without it.
#[test]
fn trws_is_forwarded_without_the_trailing_spaces() {
    let r = request(&trws());
    assert_eq!(r.uri, "sip:remote-target@example.com");
    assert_eq!(r.branch().as_deref(), Some("z9hG4bK299342093"));
    let o = Harness::new().forward(&trws());
    let [(_, sent)] = o.forwarded.as_slice() else {
        panic!("{o:?}")
    };
    assert_eq!(request_line(sent), "OPTIONS sip:remote-target@example.com SIP/2.0");
}

/// §3.1.2.11 escruri — accepted (liberal); the escaped Route in the
/// Request-URI is refused: RFC 4475 §3.1.2.11 says the escaped headers must
/// not reach the next hop, and RFC 3261 §19.1.1 (table) allows no headers in a
/// Request-URI, so the proxy answers 400 and forwards nothing.
#[test]
fn escruri_is_refused_not_forwarded_with_its_headers() {
    let (err, _) = refused_with_400(&escruri());
    assert!(matches!(err, ParseError::RequestUri(_)), "{err:?}");
}

/// §3.1.2.12 baddate — accepted and forwarded with the Date untouched (RFC
/// 3261 §16.3 step 1 gives exactly this example).
#[test]
fn baddate_is_forwarded_with_its_date() {
    let (_, sent) = forwarded(&baddate());
    assert_eq!(
        message::first(&sent.headers, "Date"),
        Some("Fri, 01 Jan 2010 16:00:00 EST")
    );
}

/// §3.1.2.13 regbadct — accepted (the RFC allows inferring the brackets): the
/// Contact URI is read whole, escaped header and all. The registrar then
/// refuses the AOR for lack of credentials (RFC 7904 §3.3), not for syntax.
#[test]
fn regbadct_is_accepted() {
    let r = request(&regbadct());
    assert_eq!(
        message::uri_of(message::first(&r.headers, "Contact").unwrap()),
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E"
    );
    answered(&regbadct(), 403);
}

/// §3.1.2.14 badaspec — accepted (liberal: the proxy does not read To);
/// forwarded to example.org's server with To unchanged.
#[test]
fn badaspec_is_forwarded() {
    let (to, sent) = forwarded(&badaspec());
    assert_eq!(to, udp(ELSEWHERE));
    assert_eq!(
        message::first(&sent.headers, "To"),
        Some(r#""Watson, Thomas" < sip:t.watson@example.org >"#)
    );
}

/// §3.1.2.15 baddn — refused: the display names are unquoted and hold commas,
/// which a token cannot. RFC 4475: reject with 400, or infer the quotes, but "If
/// this element were a proxy, it must not propagate the error into the request
/// it forwards"; a proxy that quoted them would rewrite From and To, which it
/// must otherwise leave alone, so it answers 400.
#[test]
fn baddn_is_refused_with_400() {
    let err = message::parse(&baddn()).expect_err("the parser must refuse it");
    assert!(matches!(err, ParseError::DisplayName("From")), "{err:?}");
    answered(&baddn(), 400);
}

/// §3.1.2.16 badvers — refused (request line not SIP/2.0) and answered 400.
/// RFC 4475's preferred answer: 505 (Version Not Supported).
#[test]
fn badvers_is_refused_with_505() {
    let err = message::parse(&badvers()).expect_err("the parser must refuse it");
    assert!(matches!(err, ParseError::Version(_)), "{err:?}");
    answered(&badvers(), 505);
}

/// §3.1.2.17 mismatch01 — refused: CSeq says INVITE, the request is OPTIONS.
#[test]
fn mismatch01_is_refused_with_400() {
    let (err, answer) = refused_with_400(&mismatch01());
    assert_eq!(
        err,
        ParseError::CSeqMismatch {
            method: "OPTIONS".into(),
            cseq: "INVITE".into()
        }
    );
    assert!(answer.contains("Call-ID: mismatch01.dj0234sxdfl3\r\n"), "{answer}");
}

/// §3.1.2.18 mismatch02 — refused: the extension method NEWMETHOD is read,
/// and its CSeq says INVITE.
#[test]
fn mismatch02_is_refused() {
    assert!(matches!(
        message::parse(&mismatch02()),
        Err(ParseError::CSeqMismatch { .. })
    ));
}

/// ... and dropped without an answer: the RFC asks for 501 (400 acceptable).
/// Same root as intmeth: the codec has no extension methods, and
/// answer_malformed needs the codec to read the message.
#[test]
fn mismatch02_gets_501_or_400() {
    let o = Harness::new().forward(&mismatch02());
    assert!(matches!(o.finals().as_slice(), [501] | [400]), "{o:?}");
}

/// §3.1.2.19 bigcode — a status code beyond u16: refused, dropped.
#[test]
fn bigcode_is_dropped() {
    assert!(matches!(message::parse(&bigcode()), Err(ParseError::Syntax(_))));
    dropped(&bigcode());
}

// ---------------------------------------------------------------------------
// §3.2, §3.3, §3.4: transaction and application semantics.
// ---------------------------------------------------------------------------

/// §3.2.1 badbranch — accepted; "z9hG4bK" alone is used as the branch (the
/// RFC allows a 400 or falling back; either way the parser must not break).
#[test]
fn badbranch_is_accepted() {
    let r = request(&badbranch());
    assert_eq!(r.branch().as_deref(), Some("z9hG4bK"));
    forwarded(&badbranch());
}

/// §3.3.1 insuf — refused (no From, To, Call-ID); the 400 echoes what there
/// is: the Via and the CSeq.
#[test]
fn insuf_is_refused_with_400() {
    let (err, answer) = refused_with_400(&insuf());
    assert_eq!(err, ParseError::Header("From"));
    assert!(
        answer.contains("Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf\r\n"),
        "{answer}"
    );
    assert!(answer.contains("CSeq: 193942 INVITE\r\n"), "{answer}");
}

/// §3.3.2 unkscm — accepted by the parser; the proxy answers 416 (RFC 3261
/// §16.3 step 2).
#[test]
fn unkscm_gets_416() {
    assert_eq!(request(&unkscm()).uri, "nobodyKnowsThisScheme:totallyopaquecontent");
    answered(&unkscm(), 416);
}

/// §3.3.3 novelsc — a scheme the proxy does not route: 416 (allowed by the RFC).
#[test]
fn novelsc_gets_416() {
    assert_eq!(request(&novelsc()).uri, "soap.beep://192.0.2.103:3002");
    answered(&novelsc(), 416);
}

/// §3.3.4 unksm2 — accepted by the parser; the registrar cannot bind a
/// non-SIP AOR: 400.
#[test]
fn unksm2_is_refused_by_the_registrar() {
    let r = request(&unksm2());
    assert_eq!(message::first(&r.headers, "To"), Some("isbn:2983792873"));
    let answer = answered(&unksm2(), 400);
    assert!(answer.contains("To is not a SIP URI"), "{answer}");
}

/// §3.3.5 bext01 — the proxy forwards a request whose Proxy-Require lists
/// option tags it does not know. RFC 3261 §16.3 step 5: it "MUST return a 420
/// (Bad Extension) response" with an Unsupported header listing them.
#[test]
fn bext01_gets_420_listing_the_proxy_require_tags() {
    let answer = answered(&bext01(), 420);
    let unsupported = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("unsupported:"))
        .unwrap_or_default()
        .to_owned();
    assert!(unsupported.contains("noProxiesSupportThis"), "{answer}");
    assert!(unsupported.contains("norDoAnyProxiesSupportThis"), "{answer}");
    assert!(!unsupported.contains("nothingSupportsThis"), "{answer}");
}

/// §3.3.6 invut — an unknown body type is the UAS's business: forwarded, body intact.
#[test]
fn invut_is_forwarded_with_its_body() {
    let (_, sent) = forwarded(&invut());
    assert_eq!(sent.body, b"<audio>\r\n <pcmu port=\"443\"/>\r\n</audio>\r\n");
}

/// §3.3.7 regaut01 — an unknown authorization scheme: the registrar
/// challenges with Digest (401), as the RFC expects.
#[test]
fn regaut01_gets_a_digest_challenge() {
    let answer = answered(&regaut01(), 401);
    assert!(answer.contains("WWW-Authenticate: Digest "), "{answer}");
}

/// §3.3.8 multi01 — two CSeq, Call-ID, To, From and Max-Forwards values. The
/// proxy reads the first of each and forwards; a next hop may read others
/// (two Call-IDs: two views of one transaction). RFC 4475: "would respond
/// with a 400"; RFC 3261 §16.3 step 1: what the proxy routes and matches on
/// MUST be well-formed, and these fields take one value (§7.3, §20).
#[test]
fn multi01_is_refused_with_400() {
    refused_with_400(&multi01());
}

/// §3.3.9 mcl01 — two Content-Length values disagree: refused, 400.
#[test]
fn mcl01_is_refused_with_400() {
    let (err, _) = refused_with_400(&mcl01());
    assert_eq!(err, ParseError::Header("Content-Length"));
}

/// §3.3.10 bcast — a response for no transaction of ours: dropped, never
/// sent to the broadcast address in its second Via.
#[test]
fn bcast_is_dropped() {
    assert_eq!(response(&bcast()).code, 200);
    dropped(&bcast());
}

/// §3.3.11 zeromf — Max-Forwards 0: 483 (RFC 3261 §16.3 step 3).
#[test]
fn zeromf_gets_483() {
    answered(&zeromf(), 483);
}

/// §3.3.12, §3.3.13 cparam01, cparam02 — without angle brackets the parameter
/// belongs to the Contact header field; within them to the URI.
#[test]
fn cparam_contact_parameters_land_where_they_belong() {
    let c1 = request(&cparam01());
    assert_eq!(
        message::uri_of(message::first(&c1.headers, "Contact").unwrap()),
        "sip:+19725552222@gw1.example.net"
    );
    let c2 = request(&cparam02());
    assert_eq!(
        message::uri_of(message::first(&c2.headers, "Contact").unwrap()),
        "sip:+19725552222@gw1.example.net;unknownparam"
    );
    // No credentials for watson@example.com at this node.
    answered(&cparam01(), 403);
    answered(&cparam02(), 403);
}

/// §3.3.14 regescrt — accepted; the compact "M:" Contact is read whole.
#[test]
fn regescrt_is_accepted() {
    let r = request(&regescrt());
    assert_eq!(
        message::all_values(&r.headers, "Contact"),
        vec!["<sip:user@example.com?Route=%3Csip:sip.example.com%3E>"]
    );
    answered(&regescrt(), 403);
}

/// §3.3.15 sdp01 — Accept is the UAS's business: forwarded.
#[test]
fn sdp01_is_forwarded() {
    let (_, sent) = forwarded(&sdp01());
    assert_eq!(message::first(&sent.headers, "Accept"), Some("text/nobodyKnowsThis"));
}

/// §3.4.1 inv2543 — parses, but like longreq has no branch: the proxy answers
/// 400 rather than falling back to RFC 2543 matching (RFC 3261 §17.2.3) — the
/// same reported limitation. (Its body, which has no Content-Length and runs
/// to the end of the datagram, is lost too: see
/// `a_udp_request_without_content_length_keeps_its_body`.)
#[test]
fn inv2543_parses_and_the_proxy_wants_a_branch() {
    let r = request(&inv2543());
    assert_eq!(r.branch(), None);
    assert_eq!(message::cseq(&r.headers), Some((56, "INVITE".into())));
    answered(&inv2543(), 400);
}

// ---------------------------------------------------------------------------
// Scalars, lengths and framing beyond the RFC's own messages.
// ---------------------------------------------------------------------------

/// A request from the trusted server the edge cases below vary.
const BASE: &str = "INVITE sip:user@example.com SIP/2.0\r\n\
    Via: SIP/2.0/UDP 192.0.2.200:5060;branch=z9hG4bK-edge\r\n\
    Max-Forwards: 70\r\n\
    From: <sip:caller@example.net>;tag=e1\r\n\
    To: <sip:user@example.com>\r\n\
    Call-ID: edge@192.0.2.200\r\n\
    CSeq: 1 INVITE\r\n\
    Content-Type: text/plain\r\n\
    Content-Length: 4\r\n\
    \r\n\
    body";

fn base_with(old: &str, new: &str) -> Vec<u8> {
    assert!(BASE.contains(old), "{old}");
    BASE.replacen(old, new, 1).into_bytes()
}

#[test]
fn the_base_request_is_forwarded() {
    let (to, sent) = forwarded(BASE.as_bytes());
    assert_eq!(to, Peer::Node(OTHER));
    assert_eq!(sent.body, b"body");
}

/// Negative, huge, overflowing and non-numeric Content-Length values, and
/// lengths larger than what arrived: refused, 400 — never a length to
/// allocate or index with.
#[test]
fn bad_content_lengths_are_refused_with_400() {
    for value in [
        "-1",
        "-999",
        "5",
        "9999",
        "65536",
        "4294967296",
        "18446744073709551615",
        "18446744073709551616",
        "99999999999999999999999999999999999999",
        "0x4",
        "4.0",
        "4 4",
        "four",
        "",
    ] {
        let bytes = base_with("Content-Length: 4", &format!("Content-Length: {value}"));
        let (err, answer) = refused_with_400(&bytes);
        assert_eq!(err, ParseError::ContentLength(value.into()), "{value}");
        assert!(answer.contains("Call-ID: edge@192.0.2.200\r\n"), "{value}: {answer}");
    }
    // The compact form is held to the same rule.
    refused_with_400(&base_with("Content-Length: 4", "l: 99999999999999999999"));
    // A response with a bad length is dropped.
    let resp = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.200;branch=z9hG4bK-x\r\n\
        From: <sip:a@example.net>;tag=1\r\nTo: <sip:b@example.com>;tag=2\r\nCall-ID: x\r\n\
        CSeq: 1 INVITE\r\nContent-Length: 18446744073709551616\r\n\r\n";
    dropped(resp.as_bytes());
}

/// A Content-Length smaller than what arrived: the rest of the datagram is
/// discarded (RFC 3261 §18.3), the message is fine.
#[test]
fn octets_beyond_the_content_length_are_discarded() {
    let bytes = base_with("Content-Length: 4", "Content-Length: 2");
    assert_eq!(request(&bytes).body, b"bo");
    let (_, sent) = forwarded(&bytes);
    assert_eq!(sent.body, b"bo");
    assert_eq!(
        message::first(&sent.headers, "Content-Length").map(str::trim),
        Some("2")
    );
}

/// Max-Forwards is 0..=255 (RFC 3261 §20.22): beyond, negative or not a
/// number is refused with 400 (RFC 4475 §3.1.2.4 allows either this or
/// ignoring the field). Leading zeros are fine.
#[test]
fn max_forwards_out_of_range_is_refused_with_400() {
    for value in [
        "256",
        "300",
        "65536",
        "99999999999999999999",
        "-1",
        "",
        "seventy",
        "7 0",
    ] {
        let bytes = base_with("Max-Forwards: 70", &format!("Max-Forwards: {value}"));
        let (err, _) = refused_with_400(&bytes);
        assert_eq!(err, ParseError::Header("Max-Forwards"), "{value}");
    }
    let (_, sent) = forwarded(&base_with("Max-Forwards: 70", "Max-Forwards: 0068"));
    assert_eq!(message::first(&sent.headers, "Max-Forwards"), Some("67"));
    let (_, sent) = forwarded(&base_with("Max-Forwards: 70", "Max-Forwards: 255"));
    assert_eq!(message::first(&sent.headers, "Max-Forwards"), Some("254"));
    answered(&base_with("Max-Forwards: 70", "Max-Forwards: 0"), 483);
    // Absent: taken as 70.
    let (_, sent) = forwarded(&base_with("Max-Forwards: 70\r\n", ""));
    assert_eq!(message::first(&sent.headers, "Max-Forwards"), Some("69"));
}

/// The CSeq number is 32 bits (RFC 3261 §8.1.1.5); anything else malformed.
#[test]
fn bad_cseq_is_refused_with_400() {
    for value in [
        "4294967296 INVITE",
        "99999999999999999999999 INVITE",
        "-1 INVITE",
        "1",
        "INVITE",
        "1 INVITE INVITE",
        "",
    ] {
        let bytes = base_with("CSeq: 1 INVITE", &format!("CSeq: {value}"));
        let (err, _) = refused_with_400(&bytes);
        assert_eq!(err, ParseError::Header("CSeq"), "{value:?}");
    }
    forwarded(&base_with("CSeq: 1 INVITE", "CSeq: 4294967295 INVITE"));
}

/// Each mandatory header missing in turn (RFC 3261 §8.1.1): refused; a 400
/// when there is a Via to send it along, nothing otherwise.
#[test]
fn each_missing_mandatory_header_is_refused() {
    for (name, line) in [
        ("From", "From: <sip:caller@example.net>;tag=e1\r\n"),
        ("To", "To: <sip:user@example.com>\r\n"),
        ("Call-ID", "Call-ID: edge@192.0.2.200\r\n"),
        ("CSeq", "CSeq: 1 INVITE\r\n"),
    ] {
        let bytes = base_with(line, "");
        let (err, _) = refused_with_400(&bytes);
        assert_eq!(err, ParseError::Header(name));
    }
    let no_via = base_with("Via: SIP/2.0/UDP 192.0.2.200:5060;branch=z9hG4bK-edge\r\n", "");
    assert_eq!(message::parse(&no_via), Err(ParseError::Header("Via")));
    dropped(&no_via);
}

/// Larger than any datagram: refused before the codec sees it; at most one
/// answer, no panic. Exactly the limit is fine.
#[test]
fn oversized_messages_are_refused() {
    let pad = |total: usize| {
        let filler = total - BASE.len() - "X-Pad: \r\n".len();
        base_with(
            "CSeq: 1 INVITE\r\n",
            &format!("CSeq: 1 INVITE\r\nX-Pad: {}\r\n", "a".repeat(filler)),
        )
    };
    let at_limit = pad(message::MAX_MESSAGE_SIZE);
    assert_eq!(at_limit.len(), message::MAX_MESSAGE_SIZE);
    assert_eq!(request(&at_limit).body, b"body");
    let over = pad(message::MAX_MESSAGE_SIZE + 1);
    assert_eq!(message::parse(&over), Err(ParseError::TooLarge(over.len())));
    let o = Harness::new().forward(&over);
    assert!(o.forwarded.is_empty() && o.responses.len() <= 1, "{o:?}");
}

fn padded_to_the_limit() -> Vec<u8> {
    let filler = message::MAX_MESSAGE_SIZE - BASE.len() - "X-Pad: \r\n".len();
    base_with(
        "CSeq: 1 INVITE\r\n",
        &format!("CSeq: 1 INVITE\r\nX-Pad: {}\r\n", "a".repeat(filler)),
    )
}

/// A request of 65535 octets is accepted, and forwarded to the next node with
/// the proxy's Via and Record-Route added: larger than `MAX_MESSAGE_SIZE`,
/// which the next node's `StreamFramer` refuses by closing the whole SIP TLS
/// connection between the two nodes (frontend.rs `spawn_stream`). Anyone who
/// may send this node a request can cut its links to other nodes this way.
/// The proxy should answer 513 (Message Too Large, RFC 3261 §21.5.12) rather
/// than send on what no receiver accepts.
#[test]
fn a_request_at_the_size_limit_is_not_forwarded_beyond_it() {
    let o = Harness::new().forward(&padded_to_the_limit());
    for (_, sent) in &o.forwarded {
        assert!(
            sent.len() <= message::MAX_MESSAGE_SIZE,
            "forwarded {} octets",
            sent.len()
        );
    }
    assert!(!o.forwarded.is_empty() || o.finals() == vec![513], "{:?}", o.finals());
}

/// Inputs that are hardly SIP at all: no panic, at most one answer.
#[test]
fn degenerate_inputs_do_no_harm() {
    let lf_only = BASE.replace("\r\n", "\n");
    let folds = base_with(
        "To: <sip:user@example.com>\r\n",
        &format!("To: <sip:user@example.com>\r\n{}", " ;x\r\n".repeat(10_000)),
    );
    let vias = base_with(
        "Max-Forwards: 70\r\n",
        &"Via: SIP/2.0/UDP h;branch=z9hG4bK-v\r\n".repeat(1500),
    );
    let inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\r\n".to_vec(),
        b"\r\n\r\n".to_vec(),
        vec![0; 100],
        vec![0xff; 100],
        lf_only.into_bytes(),
        b"SIP/2.0 200 OK\r\n\r\n".to_vec(),
        b"INVITE\r\n\r\n".to_vec(),
        b"INVITE sip:a@b SIP/2.0\r\n\r\n".to_vec(),
        b"INVITE sip:a@b SIP/2.0\r\n: \r\n:\r\n\r\n".to_vec(),
        b"\xff\xfe sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK-1\r\n\r\n".to_vec(),
        folds,
        vias,
    ];
    for bytes in inputs {
        let _ = message::parse(&bytes);
        let o = Harness::new().forward(&bytes);
        assert!(o.responses.len() + o.forwarded.len() <= 2, "{o:?}");
    }
}

/// RFC 3261 §18.3: over UDP, "If the message has no Content-Length header
/// field, the message body is assumed to end at the end of the transport
/// packet". rsipstack takes a missing Content-Length as 0 and `parse` keeps
/// no body: the proxy forwards the INVITE without its SDP.
#[test]
fn a_udp_request_without_content_length_keeps_its_body() {
    let bytes = base_with("Content-Length: 4\r\n", "");
    assert_eq!(request(&bytes).body, b"body");
}

/// A request that came over UDP without Content-Length is forwarded to the
/// next node over TLS still without one; the receiving framer
/// (`framing::StreamFramer`) refuses it and drops the connection. RFC 3261
/// §20.14 / §18.3: "The Content-Length header field MUST be used with stream
/// oriented transports."
#[test]
fn a_request_forwarded_onto_a_stream_carries_content_length() {
    let bytes = base_with("Content-Length: 4\r\n\r\nbody", "\r\n");
    let o = Harness::new().forward(&bytes);
    let [(to, sent)] = o.forwarded.as_slice() else {
        panic!("{o:?}")
    };
    assert_eq!(*to, Peer::Node(OTHER));
    let mut framer = reload_sip::framing::StreamFramer::default();
    framer.push(sent);
    assert!(matches!(
        framer.next_frame(),
        Ok(Some(reload_sip::framing::Frame::Message(_)))
    ));
}

/// A header line that is not UTF-8 (here Latin-1 "café") makes rsipstack
/// stop reading header lines, silently: every header after it is gone —
/// here the Route and the Content-Length — and with them the body. `parse`
/// accepts the rest, and the proxy routes it by lookup instead of by its
/// Route, bodiless. Header values are UTF-8 (RFC 3261 §25.1 TEXT-UTF8): the
/// message should be refused (400), or read whole.
#[test]
fn a_non_utf8_header_line_does_not_hide_the_rest() {
    let bytes = base_with(
        "Content-Type: text/plain\r\n",
        "Subject: caf\u{e9}\r\nRoute: <sip:203.0.113.50;lr>\r\n",
    );
    // Make the é Latin-1.
    let bytes = {
        let s = String::from_utf8(bytes).unwrap();
        let i = s.find('\u{e9}').unwrap();
        let mut b = s.into_bytes();
        b.splice(i..i + 2, [0xe9]);
        b
    };
    match message::parse(&bytes) {
        Err(_) => {
            answered(&bytes, 400);
        }
        Ok(Message::Request(r)) => {
            assert_eq!(message::first(&r.headers, "Route"), Some("<sip:203.0.113.50;lr>"));
            assert_eq!(r.body, b"body");
        }
        Ok(other) => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Random and mutated input through the proxy: no panic, and only a handful of
// outputs for any one input, however long it runs.
// ---------------------------------------------------------------------------

/// Outputs one input may cause, the overlay's answers included (e.g. 100
/// Trying, Lookup, the forwarded request, an ACK, a CANCEL, a relayed final).
const HANDFUL: usize = 8;

fn peers() -> [Peer; 5] {
    [
        udp(PHONE),
        udp(STRANGER),
        udp(TRUSTED),
        Peer::Node(OTHER),
        Peer::Sip {
            transport: Transport::Tcp,
            addr: PHONE.parse().unwrap(),
        },
    ]
}

/// Valid requests to start mutating from, besides RFC 4475's.
fn seeds() -> Vec<Vec<u8>> {
    let other = OTHER.0.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let common = "From: <sip:caller@example.net>;tag=s1\r\nCall-ID: seed@192.0.2.5\r\nMax-Forwards: 70\r\n";
    let mut seeds = vec![
        BASE.as_bytes().to_vec(),
        format!(
            "INVITE sip:user@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE};branch=z9hG4bK-s1;rport\r\n\
             {common}To: <sip:user@example.com>\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{PHONE}>\r\n\
             Content-Type: application/sdp\r\nContent-Length: 150\r\n\r\n"
        )
        .into_bytes(),
        format!(
            "CANCEL sip:user@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE};branch=z9hG4bK-s1;rport\r\n\
             {common}To: <sip:user@example.com>\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes(),
        format!(
            "ACK sip:user@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE};branch=z9hG4bK-s1;rport\r\n\
             {common}To: <sip:user@example.com>;tag=t1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes(),
        format!(
            "BYE sip:user@198.51.100.7 SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE};branch=z9hG4bK-s2;rport\r\n\
             {common}To: <sip:user@example.com>;tag=t1\r\nCSeq: 2 BYE\r\n\
             Route: <sip:198.51.100.1:5060;transport=udp;lr>, <sip:{other}@203.0.113.7:5061;transport=tls;lr>\r\n\
             Content-Length: 0\r\n\r\n"
        )
        .into_bytes(),
        format!(
            "REGISTER sip:example.net SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE};branch=z9hG4bK-s3\r\n\
             {common}To: <sip:caller@example.net>\r\nCSeq: 9 REGISTER\r\n\
             Contact: <sip:caller@{PHONE}>;expires=60, *\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes(),
        format!(
            "OPTIONS sip:caller@{PHONE} SIP/2.0\r\nVia: SIP/2.0/TLS 203.0.113.7:5061;branch=z9hG4bK-s4\r\n\
             {common}To: <sip:caller@example.net>\r\nCSeq: 3 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes(),
    ];
    seeds[1].extend(sdp("192.0.2.5", "192.0.2.5", "0 0"));
    seeds
}

/// Header lines worth splicing into a message.
const SPLICE: &[&str] = &[
    "Content-Length: 99999999999999999999",
    "l: -1",
    "Content-Length: 0",
    "Max-Forwards: 0",
    "Max-Forwards: 256",
    "CSeq: 1 BYE",
    "CSeq: 4294967296 INVITE",
    "Call-ID: another",
    "Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-s1",
    "Via: SIP/2.0/UDP 192.0.2.9",
    "v: ,,,",
    "Route: <sip:203.0.113.50;lr>",
    "Route: <sip:22222222222222222222222222222222@203.0.113.7;transport=tls;lr>",
    "Route: <tel:+1>",
    "Contact: *",
    "Expires: 0",
    "Expires: 99999999999999",
    "To: <sip:caller@example.net>;tag=x",
    "From: \"unterminated <sip:a@b>",
    "Proxy-Authorization: Digest username=\"caller\", realm=\"example.net\", nonce=\"x\", uri=\"sip:a\", response=\"0\"",
    " folded continuation",
    "",
];

/// One mutation: (kind, position, byte, length).
type Mutation = (u8, usize, u8, usize);

fn mutate(mut b: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for &(kind, pos, byte, len) in mutations {
        if b.is_empty() {
            b.push(byte);
            continue;
        }
        let p = pos % b.len();
        match kind % 7 {
            0 => b[p] = byte,
            1 => {
                b.splice(p..p, std::iter::repeat_n(byte, len % 64));
            }
            2 => {
                let end = (p + len % 256).min(b.len());
                b.drain(p..end);
            }
            3 => b.truncate(p),
            4 => {
                // Duplicate the line holding p.
                let start = b[..p].iter().rposition(|c| *c == b'\n').map_or(0, |i| i + 1);
                let end = b[p..].iter().position(|c| *c == b'\n').map_or(b.len(), |i| p + i + 1);
                let line = b[start..end].to_vec();
                b.splice(start..start, line);
            }
            5 => {
                // Splice a header line in at the start of the line after p.
                let at = b[p..].iter().position(|c| *c == b'\n').map_or(b.len(), |i| p + i + 1);
                let line = format!("{}\r\n", SPLICE[len % SPLICE.len()]);
                b.splice(at..at, line.into_bytes());
            }
            _ => {
                // Replace the digits around p with a long run, or a sign.
                if b[p].is_ascii_digit() {
                    let start = b[..p].iter().rposition(|c| !c.is_ascii_digit()).map_or(0, |i| i + 1);
                    let end = b[p..]
                        .iter()
                        .position(|c| !c.is_ascii_digit())
                        .map_or(b.len(), |i| p + i);
                    let run: Vec<u8> = if byte % 2 == 0 {
                        std::iter::repeat_n(b'9', 1 + len % 40).collect()
                    } else {
                        b"-1".to_vec()
                    };
                    b.splice(start..end, run);
                }
            }
        }
    }
    b
}

/// What one step of a run does.
#[derive(Debug, Clone)]
enum Step {
    /// A message from one of [`peers`].
    Message { peer: usize, bytes: Vec<u8> },
    /// A response to the latest request the proxy sent on, from where it went,
    /// maybe mutated.
    Reply { code: u16, mutations: Vec<Mutation> },
    /// Time passes.
    Tick { secs: u64 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    (any::<u8>(), any::<usize>(), any::<u8>(), any::<usize>())
}

fn mutated(seeds: Vec<Vec<u8>>, most: usize) -> impl Strategy<Value = Vec<u8>> {
    (0..seeds.len(), proptest::collection::vec(mutation(), 0..most))
        .prop_map(move |(i, m)| mutate(seeds[i].clone(), &m))
}

/// One of the valid seeds or RFC 4475's messages, mutated a little or a lot.
fn mutated_seed() -> impl Strategy<Value = Vec<u8>> {
    let mut all = seeds();
    all.extend(corpus().into_iter().map(|(_, b)| b));
    mutated(all, 6)
}

/// Mostly the phone and the trusted server, which get past authentication.
fn peer() -> impl Strategy<Value = usize> {
    prop_oneof![3 => Just(0usize), 3 => Just(2usize), 1 => Just(1usize), 1 => Just(3usize), 1 => Just(4usize)]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (peer(), prop_oneof![2 => mutated(seeds(), 1), 1 => mutated(seeds(), 3)])
            .prop_map(|(peer, bytes)| Step::Message { peer, bytes }),
        1 => (peer(), mutated_seed()).prop_map(|(peer, bytes)| Step::Message { peer, bytes }),
        1 => (peer(), proptest::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(peer, bytes)| Step::Message { peer, bytes }),
        4 => (prop_oneof![Just(100u16), Just(180), Just(200), Just(486), Just(503), 100u16..700],
              proptest::collection::vec(mutation(), 0..2))
            .prop_map(|(code, mutations)| Step::Reply { code, mutations }),
        1 => (0u64..400).prop_map(|secs| Step::Tick { secs }),
    ]
}

/// Runs `steps` through one proxy at which caller@example.net registered,
/// checking every step's outputs; then lets all timers fire.
fn run(steps: &[Step]) -> Result<(), TestCaseError> {
    let mut h = Harness::registered();
    let peers = peers();
    let mut sent_on: Option<(Peer, Vec<u8>)> = None;
    for (i, step) in steps.iter().enumerate() {
        let out = match step {
            Step::Message { peer, bytes } => h.send(peers[*peer].clone(), bytes),
            Step::Reply { code, mutations } => {
                let Some((to, req)) = sent_on.clone() else {
                    continue;
                };
                let Ok(Message::Request(req)) = message::parse(&req) else {
                    continue;
                };
                let resp = req.response(*code, "Whatever", Some("callee")).to_bytes();
                h.send(to, &mutate(resp, mutations))
            }
            Step::Tick { secs } => {
                h.now += Duration::from_secs(*secs);
                h.proxy.handle_timeout(h.now);
                let out = drain(&mut h.proxy);
                h.settle(out)
            }
        };
        let limit = match step {
            Step::Tick { .. } => HANDFUL * (i + 2),
            _ => HANDFUL,
        };
        prop_assert!(out.len() <= limit, "step {i} {step:?}: {} outputs: {out:?}", out.len());
        for o in out {
            if let Output::Send { to, bytes } = o
                && !bytes.starts_with(b"SIP/2.0 ")
            {
                sent_on = Some((to, bytes));
            }
        }
    }
    // Far in the future every timer has fired; a second pass finds nothing new.
    for hours in [1, 2] {
        h.proxy.handle_timeout(h.now + Duration::from_secs(3600 * hours));
        let out = drain(&mut h.proxy);
        let out = h.settle(out);
        prop_assert!(
            out.len() <= HANDFUL * (steps.len() + 1),
            "{} outputs: {out:?}",
            out.len()
        );
    }
    let _ = h.proxy.poll_timeout();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_through_the_proxy(peer in 0..5usize, bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
        run(&[Step::Message { peer, bytes }])?;
    }

    #[test]
    fn mutated_requests_through_the_proxy(peer in 0..5usize, bytes in mutated_seed()) {
        let _ = message::parse(&bytes);
        run(&[Step::Message { peer, bytes }])?;
    }

    #[test]
    fn runs_of_mutated_traffic_through_one_proxy(steps in proptest::collection::vec(step(), 1..12)) {
        run(&steps)?;
    }
}
