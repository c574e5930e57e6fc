//! SIP messages as the proxy handles them (RFC 3261 §7).
//!
//! rsipstack's codec parses; this module keeps what a proxy must forward
//! byte for byte. The Request-URI stays the string that arrived, because
//! rsipstack re-escapes `%` when it prints a parsed URI, and the header values
//! stay rsipstack's raw strings. Helpers read the few fields routing needs
//! (the top Via's branch, CSeq, tags, URIs in Route and Contact) without
//! rewriting anything else.

use rsipstack::sip::{self as rsip, Header, Headers};

/// Largest SIP message accepted on any transport. A UDP datagram cannot be
/// larger; on TCP and TLS it bounds what one message may make us buffer.
pub const MAX_MESSAGE_SIZE: usize = 65_535;

/// Why bytes are not a SIP message this node can handle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The codec refused the bytes.
    #[error("not a SIP message: {0}")]
    Syntax(String),
    /// A header every request or response must have (RFC 3261 §8.1.1) is missing
    /// or unreadable.
    #[error("missing or malformed {0} header")]
    Header(&'static str),
    /// The CSeq method differs from the request's method (RFC 3261 §8.1.1.5).
    #[error("CSeq method {cseq} does not match request method {method}")]
    CSeqMismatch {
        /// The method in the request line.
        method: String,
        /// The method in CSeq.
        cseq: String,
    },
    /// Content-Length is not a number or claims more body than arrived (RFC 3261 §18.3).
    #[error("Content-Length {0:?} does not match the body")]
    ContentLength(String),
    /// The version is not SIP/2.0 (a server answers 505, RFC 3261 §21.5.7).
    #[error("SIP version {0:?} is not supported")]
    Version(String),
    /// The Request-URI cannot be forwarded as it is.
    #[error("bad Request-URI {0}")]
    RequestUri(String),
    /// The message is larger than [`MAX_MESSAGE_SIZE`].
    #[error("message of {0} bytes is larger than {MAX_MESSAGE_SIZE}")]
    TooLarge(usize),
    /// A From or To display name that is neither tokens nor a quoted string
    /// (RFC 3261 §25.1; RFC 4475 §3.1.2.15: a proxy must not pass it on).
    #[error("the display name in {0} must be quoted: it has characters a token cannot hold")]
    DisplayName(&'static str),
}

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The Request-URI exactly as received or as this node set it.
    pub uri: String,
    /// The headers, in order.
    pub headers: Headers,
    /// The body.
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub code: u16,
    /// The reason phrase.
    pub reason: String,
    /// The headers, in order.
    pub headers: Headers,
    /// The body.
    pub body: Vec<u8>,
}

/// A request or a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

/// A request method (RFC 3261 §7.1, §27.4): the registered ones, and any other
/// token, which a proxy forwards like any request (§16.3 step 1). Method names
/// are case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE.
    Invite,
    /// ACK.
    Ack,
    /// CANCEL.
    Cancel,
    /// BYE.
    Bye,
    /// REGISTER.
    Register,
    /// OPTIONS.
    Options,
    /// SUBSCRIBE (RFC 6665).
    Subscribe,
    /// NOTIFY (RFC 6665).
    Notify,
    /// REFER (RFC 3515).
    Refer,
    /// Any other token: MESSAGE, INFO, UPDATE, PRACK, PUBLISH, extensions.
    Other(String),
}

impl Method {
    /// The method a request line's token names.
    pub fn from_token(token: &str) -> Method {
        match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "CANCEL" => Method::Cancel,
            "BYE" => Method::Bye,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            other => Method::Other(other.to_owned()),
        }
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Cancel => "CANCEL",
            Method::Bye => "BYE",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Other(t) => t,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RFC 3261 §25.1 `token` characters.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// The headers and what follows them. rsipstack parses the headers behind a
/// request line of our own, so that what it does not know in a start line
/// (extension methods, unusual URIs) cannot hide them (RFC 3261 §16.3 step 1).
pub fn parse_headers(bytes: &[u8]) -> Result<(Headers, Vec<u8>), ParseError> {
    let line_end = bytes
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or_else(|| ParseError::Syntax("no line end".into()))?;
    let head_end = body_offset(bytes).ok_or_else(|| ParseError::Syntax("no blank line after the headers".into()))?;
    // rsipstack stops at a header line that is not UTF-8 and drops the rest:
    // refuse the message instead of routing what is left of it.
    std::str::from_utf8(&bytes[..head_end]).map_err(|_| ParseError::Syntax("header section is not UTF-8".into()))?;
    let mut normalized = b"OPTIONS sip:parse.invalid SIP/2.0".to_vec();
    normalized.extend_from_slice(&bytes[line_end..head_end]);
    match rsip::SipMessage::try_from(normalized.as_slice()) {
        Ok(rsip::SipMessage::Request(r)) => Ok((r.headers, bytes[head_end..].to_vec())),
        Ok(rsip::SipMessage::Response(_)) => Err(ParseError::Syntax("headers".into())),
        Err(e) => Err(ParseError::Syntax(e.to_string())),
    }
}

/// The headers every SIP message has once (RFC 3261 §8.1.1, §20; RFC 4475 §3.3.8).
const SINGLE: [&str; 6] = ["Call-ID", "CSeq", "From", "To", "Max-Forwards", "Content-Length"];

/// Parses one whole message, checking what a proxy relies on: the start line,
/// the mandatory headers of RFC 3261 §8.1.1 (once each), CSeq against the
/// method, and Content-Length against the body (§18.3, §20.14).
pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
    if bytes.len() > MAX_MESSAGE_SIZE {
        return Err(ParseError::TooLarge(bytes.len()));
    }
    let (headers, rest) = parse_headers(bytes)?;
    let body = match first(&headers, "Content-Length") {
        Some(value) => {
            let claimed: usize = value
                .trim()
                .parse()
                .map_err(|_| ParseError::ContentLength(value.to_owned()))?;
            if claimed > rest.len() {
                return Err(ParseError::ContentLength(value.to_owned()));
            }
            rest[..claimed].to_vec()
        }
        // A datagram without Content-Length: the body runs to its end (§18.3).
        None => rest,
    };
    for (name, present) in [
        ("Via", first(&headers, "Via").is_some()),
        ("From", first(&headers, "From").is_some()),
        ("To", first(&headers, "To").is_some()),
        ("Call-ID", first(&headers, "Call-ID").is_some()),
    ] {
        if !present {
            return Err(ParseError::Header(name));
        }
    }
    for name in SINGLE {
        if headers.iter().filter(|h| same_name(h.name(), name)).count() > 1 {
            return Err(ParseError::Header(name));
        }
    }
    let (_, cseq_method) = cseq(&headers).ok_or(ParseError::Header("CSeq"))?;
    let line = start_line(bytes).ok_or_else(|| ParseError::Syntax("start line".into()))?;
    if let Some(status) = line.strip_prefix("SIP/2.0 ") {
        let (code, reason) = status.split_once(' ').unwrap_or((status, ""));
        let code: u16 = code
            .parse()
            .ok()
            .filter(|c| (100..700).contains(c))
            .ok_or_else(|| ParseError::Syntax(format!("status code {code:?}")))?;
        return Ok(Message::Response(Response {
            code,
            reason: reason.to_owned(),
            headers,
            body,
        }));
    }
    // Trailing whitespace on the request line is tolerated (RFC 4475 §3.1.2.5).
    let mut parts = line.trim_end().split(' ');
    let (Some(method), Some(uri), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::Syntax(
            "request line is not METHOD SP URI SP SIP/2.0".into(),
        ));
    };
    if version != "SIP/2.0" {
        return Err(ParseError::Version(version.to_owned()));
    }
    if !is_token(method) {
        return Err(ParseError::Syntax(format!("method {method:?} is not a token")));
    }
    check_request_uri(uri)?;
    if cseq_method != method {
        return Err(ParseError::CSeqMismatch {
            method: method.to_owned(),
            cseq: cseq_method,
        });
    }
    if let Some(mf) = first(&headers, "Max-Forwards")
        && mf.trim().parse::<u8>().is_err()
    {
        return Err(ParseError::Header("Max-Forwards"));
    }
    for name in ["From", "To"] {
        if first(&headers, name).is_some_and(|v| !display_name_is_valid(v)) {
            return Err(ParseError::DisplayName(name));
        }
    }
    Ok(Message::Request(Request {
        method: Method::from_token(method),
        uri: uri.to_owned(),
        headers,
        body,
    }))
}

/// Whether the display name of a name-addr header value is well formed (RFC 3261
/// §25.1: `display-name = *(token LWS) / quoted-string`). A value without `<` is
/// an addr-spec and has none; a quoted name is left to the header parser.
fn display_name_is_valid(value: &str) -> bool {
    let value = value.trim_start();
    if value.starts_with('"') {
        return true;
    }
    match value.split_once('<') {
        Some((name, _)) => name.split_whitespace().all(is_token),
        None => true,
    }
}

/// The start line, if it is UTF-8.
fn start_line(bytes: &[u8]) -> Option<&str> {
    let end = bytes.windows(2).position(|w| w == b"\r\n")?;
    std::str::from_utf8(&bytes[..end]).ok()
}

/// A Request-URI a proxy can forward (RFC 3261 §19.1.1): an absolute URI with
/// no spaces or angle brackets; a SIP or SIPS URI must parse and carry no
/// headers component.
fn check_request_uri(uri: &str) -> Result<(), ParseError> {
    let bad = |why: &str| Err(ParseError::RequestUri(format!("{uri:?}: {why}")));
    if uri
        .bytes()
        .any(|b| b.is_ascii_control() || b == b'<' || b == b'>' || b == b'"')
    {
        return bad("characters a URI cannot hold");
    }
    let Some((scheme, _)) = uri.split_once(':') else {
        return bad("no scheme");
    };
    if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
        // Other schemes are the router's business (416, §16.3 step 2).
        return Ok(());
    }
    match SipUri::parse(uri) {
        Some(u) if u.headers => bad("a Request-URI has no headers component"),
        Some(_) => Ok(()),
        None => bad("not a SIP URI"),
    }
}

fn body_offset(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

impl Request {
    /// The wire form: the request line, the headers and the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Content-Length is always written: the next hop may be a stream (§18.3).
        let length = if first(&self.headers, "Content-Length").is_none() {
            format!("Content-Length: {}\r\n", self.body.len())
        } else {
            String::new()
        };
        let mut out = format!("{} {} SIP/2.0\r\n{}{length}\r\n", self.method, self.uri, self.headers).into_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    /// The top Via's branch, the transaction's key (RFC 3261 §17.2.3).
    pub fn branch(&self) -> Option<String> {
        top_via(&self.headers).and_then(|v| v.branch)
    }

    /// A response to this request (RFC 3261 §8.2.6): Via, From, To, Call-ID and
    /// CSeq copied, a To tag added when `to_tag` is given and none is there.
    pub fn response(&self, code: u16, reason: &str, to_tag: Option<&str>) -> Response {
        let mut headers = Headers::default();
        for h in self.headers.iter() {
            match h {
                Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => headers.push(h.clone()),
                Header::To(to) => {
                    let value = match to_tag {
                        Some(tag) if param(to.value(), "tag").is_none() => format!("{};tag={tag}", to.value()),
                        _ => to.value().to_owned(),
                    };
                    headers.push(Header::To(rsip::To::new(value)));
                }
                _ => {}
            }
        }
        Response {
            code,
            reason: reason.to_owned(),
            headers,
            body: Vec::new(),
        }
    }
}

impl Response {
    /// The wire form. Content-Length is added when missing.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!("SIP/2.0 {} {}\r\n{}", self.code, self.reason, self.headers);
        if first(&self.headers, "Content-Length").is_none() {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    /// The top Via's branch: which client transaction this answers (§17.1.3).
    pub fn branch(&self) -> Option<String> {
        top_via(&self.headers).and_then(|v| v.branch)
    }

    /// The CSeq method.
    pub fn cseq_method(&self) -> Option<String> {
        cseq(&self.headers).map(|(_, m)| m)
    }

    /// Adds a header at the end.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push(rsip::headers::make_header(name, value.into()));
        self
    }
}

/// The value of the first header called `name` (full or compact form).
pub fn first<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers.iter().find(|h| same_name(h.name(), name)).map(|h| h.value())
}

/// Every value of the headers called `name`, comma-separated lists split
/// (RFC 3261 §7.3.1), in order.
pub fn all_values(headers: &Headers, name: &str) -> Vec<String> {
    headers
        .iter()
        .filter(|h| same_name(h.name(), name))
        .flat_map(|h| split_list(h.value()))
        .collect()
}

fn same_name(a: &str, b: &str) -> bool {
    const COMPACT: [(&str, &str); 8] = [
        ("v", "Via"),
        ("f", "From"),
        ("t", "To"),
        ("i", "Call-ID"),
        ("m", "Contact"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("k", "Supported"),
    ];
    let long = |n: &str| {
        COMPACT
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(n))
            .map_or(n.to_owned(), |(_, l)| (*l).to_owned())
    };
    long(a).eq_ignore_ascii_case(&long(b))
}

/// Splits a header value at the commas that separate list elements, not at
/// commas inside quotes or angle brackets.
pub fn split_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    let mut current = String::new();
    for c in value.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(current.trim().to_owned());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

/// The parts of a Via value a proxy uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// `UDP`, `TCP`, `TLS`.
    pub transport: String,
    /// `host[:port]`.
    pub sent_by: String,
    /// The branch parameter.
    pub branch: Option<String>,
}

/// The topmost Via (RFC 3261 §8.1.1.7).
pub fn top_via(headers: &Headers) -> Option<Via> {
    let value = all_values(headers, "Via").into_iter().next()?;
    parse_via(&value)
}

/// Reads one Via value: `SIP/2.0/UDP host:port;branch=...`.
pub fn parse_via(value: &str) -> Option<Via> {
    // sent-protocol may have LWS around its slashes (§25.1 SLASH).
    let value = value.trim();
    let mut slashes = 0;
    let mut split = None;
    for (i, c) in value.char_indices() {
        match c {
            '/' => slashes += 1,
            c if c.is_whitespace() && slashes == 2 => {
                let before = value[..i].trim_end();
                if !before.ends_with('/') {
                    split = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let (protocol, rest) = value.split_at(split?);
    let transport = protocol.rsplit('/').next()?.trim().to_ascii_uppercase();
    let sent_by = rest.trim().split(';').next()?.trim().to_owned();
    Some(Via {
        transport,
        sent_by,
        branch: param(value, "branch"),
    })
}

/// The CSeq number and method.
pub fn cseq(headers: &Headers) -> Option<(u32, String)> {
    let value = first(headers, "CSeq")?;
    let mut parts = value.split_whitespace();
    let number = parts.next()?.parse().ok()?;
    let method = parts.next()?.to_owned();
    parts.next().is_none().then_some((number, method))
}

/// A parameter of a header value or URI (`;name=value`), outside quotes and
/// angle brackets when the value has them.
pub fn param(value: &str, name: &str) -> Option<String> {
    let params = &value[name_addr_end(value)..];
    split_outside_quotes(params, ';').into_iter().skip(1).find_map(|p| {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Where the header parameters of a name-addr begin: after its unquoted `>`,
/// or 0 for an addr-spec (RFC 3261 §25.1; a display name or a parameter such
/// as `+sip.instance="<urn:...>"` may hold angle brackets inside quotes).
fn name_addr_end(value: &str) -> usize {
    let (mut quoted, mut escaped, mut open) = (false, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => open = true,
            '>' if !quoted && open => return i + 1,
            ';' if !quoted && !open => return 0,
            _ => {}
        }
    }
    0
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut escaped, mut start) = (false, false, 0);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// The URI inside a name-addr (`"Bob" <sip:bob@x>;tag=1` → `sip:bob@x`) or an addr-spec.
pub fn uri_of(value: &str) -> String {
    // The display name may be a quoted string holding '<' (RFC 3261 §25.1).
    let (mut quoted, mut escaped) = (false, false);
    let mut open = None;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => {
                open = Some(i);
                break;
            }
            _ => {}
        }
    }
    match open.and_then(|a| value[a..].find('>').map(|b| (a, a + b))) {
        Some((a, b)) => value[a + 1..b].trim().to_owned(),
        None => value.split(';').next().unwrap_or(value).trim().to_owned(),
    }
}

/// A SIP or SIPS URI taken apart (RFC 3261 §19.1.1), enough to route on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sip` or `sips`.
    pub scheme: String,
    /// The user part, if any, still escaped.
    pub user: Option<String>,
    /// The host, lowercase; IPv6 references keep their brackets.
    pub host: String,
    /// The port, if given.
    pub port: Option<u16>,
    /// URI parameters, names lowercase.
    pub params: Vec<(String, Option<String>)>,
    /// Whether it has a headers component (`?name=value`).
    pub headers: bool,
}

impl SipUri {
    /// Parses `sip:user:password@host:port;params?headers`.
    pub fn parse(uri: &str) -> Option<SipUri> {
        let (scheme, rest) = uri.trim().split_once(':')?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "sip" && scheme != "sips" {
            return None;
        }
        // The userinfo ends at the first '@' (it may hold '?' and ';', §25.1
        // user-unreserved); the headers component starts at the first '?'
        // after the host.
        let (user, hostpart) = match rest.split_once('@') {
            Some((userinfo, after)) => (Some(userinfo.split(':').next().unwrap_or("").to_owned()), after),
            None => (None, rest),
        };
        let (hostpart, headers) = match hostpart.split_once('?') {
            Some((h, _)) => (h, true),
            None => (hostpart, false),
        };
        let mut pieces = hostpart.split(';');
        let hostport = pieces.next()?;
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']')?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p.parse().ok()?),
                None if after.is_empty() => None,
                None => return None,
            };
            (format!("[{h}]"), port)
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p.parse().ok()?)),
                None => (hostport.to_owned(), None),
            }
        };
        if host.is_empty() {
            return None;
        }
        let params = pieces
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((n, v)) => (n.to_ascii_lowercase(), Some(v.to_owned())),
                None => (p.to_ascii_lowercase(), None),
            })
            .collect();
        Some(SipUri {
            scheme,
            headers,
            user,
            host: host.to_ascii_lowercase(),
            port,
            params,
        })
    }

    /// A URI parameter's value (`Some(None)` for a flag such as `lr`).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// The transport the URI asks for, lowercase (`udp` when none is given and
    /// the scheme is `sip`, §18.1).
    pub fn transport(&self) -> String {
        match self.param("transport") {
            Some(Some(t)) => t.to_ascii_lowercase(),
            _ if self.scheme == "sips" => "tls".to_owned(),
            _ => "udp".to_owned(),
        }
    }

    /// The socket address, when the host is an IP literal.
    pub fn socket_addr(&self) -> Option<std::net::SocketAddr> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let ip: std::net::IpAddr = host.parse().ok()?;
        let default = if self.scheme == "sips" { 5061 } else { 5060 };
        Some(std::net::SocketAddr::new(ip, self.port.unwrap_or(default)))
    }
}

/// Removes the first header called `name` whose value (one list element) is
/// exactly `value`; a header holding a comma list loses just that element.
pub fn remove_value(headers: &mut Headers, name: &str, value: &str) {
    let Some(index) = headers
        .iter()
        .position(|h| same_name(h.name(), name) && split_list(h.value()).iter().any(|v| v == value))
    else {
        return;
    };
    let header = &headers.0[index];
    let header_name = header.name().to_owned();
    let rest: Vec<String> = split_list(header.value()).into_iter().filter(|v| v != value).collect();
    if rest.is_empty() {
        headers.0.remove(index);
    } else {
        headers.0[index] = rsip::headers::make_header(&header_name, rest.join(", "));
    }
}

/// Stamps the top Via with where the request really came from: `received`
/// when the sent-by host differs from the source address (RFC 3261 §18.2.1),
/// and the source port in an empty `rport` (RFC 3581 §4).
pub fn stamp_received(headers: &mut Headers, source: std::net::SocketAddr) {
    let Some(index) = headers.0.iter().position(|h| same_name(h.name(), "Via")) else {
        return;
    };
    let mut values = split_list(headers.0[index].value());
    let Some(top) = values.first_mut() else {
        return;
    };
    let Some(via) = parse_via(top) else {
        return;
    };
    let host = via.sent_by.rsplit_once(':').map_or(via.sent_by.as_str(), |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            via.sent_by.as_str()
        }
    });
    let ip = source.ip().to_string();
    let mut params: Vec<String> = top.split(';').map(str::to_owned).collect();
    let mut rport = false;
    for p in params.iter_mut().skip(1) {
        if p.trim().eq_ignore_ascii_case("rport") {
            *p = format!("rport={}", source.port());
            rport = true;
        }
    }
    let has_received = params
        .iter()
        .skip(1)
        .any(|p| p.trim().to_ascii_lowercase().starts_with("received="));
    if (rport || host.trim_matches(['[', ']']) != ip) && !has_received {
        params.push(format!("received={ip}"));
    }
    *top = params.join(";");
    let joined = values.join(", ");
    headers.0[index] = rsip::headers::make_header("Via", joined);
}

/// Puts a header at the top (Via and Record-Route are added on top, §16.6).
pub fn push_front(headers: &mut Headers, name: &str, value: impl Into<String>) {
    headers.0.insert(0, rsip::headers::make_header(name, value.into()));
}

/// Replaces the first header called `name`, or adds it.
pub fn set(headers: &mut Headers, name: &str, value: impl Into<String>) {
    let header = rsip::headers::make_header(name, value.into());
    let position = headers.0.iter().position(|h| same_name(h.name(), name));
    match position {
        Some(i) => headers.0[i] = header,
        None => headers.push(header),
    }
}

/// Removes every header called `name`.
pub fn remove_all(headers: &mut Headers, name: &str) {
    headers.0.retain(|h| !same_name(h.name(), name));
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:alice%40home@example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK-1;rport, SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK-0\r\n\
        Max-Forwards: 70\r\n\
        From: \"Bob, Jr\" <sip:bob@example.com>;tag=abc\r\n\
        To: <sip:alice@example.com>\r\n\
        Call-ID: 1@h\r\n\
        CSeq: 1 INVITE\r\n\
        Route: <sip:127.0.0.1:5060;lr>, <sip:p@10.0.0.2;lr;transport=tls>\r\n\
        Content-Length: 4\r\n\r\nv=0\n";

    fn request(text: &str) -> Request {
        match parse(text.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keeps_the_request_uri_and_reads_routing_fields() {
        let r = request(INVITE);
        assert_eq!(r.uri, "sip:alice%40home@example.com");
        assert_eq!(r.branch().as_deref(), Some("z9hG4bK-1"));
        assert_eq!(cseq(&r.headers), Some((1, "INVITE".into())));
        assert_eq!(all_values(&r.headers, "Via").len(), 2);
        assert_eq!(all_values(&r.headers, "Route")[1], "<sip:p@10.0.0.2;lr;transport=tls>");
        let again = request(std::str::from_utf8(&r.to_bytes()).expect("utf8"));
        assert_eq!(again, r);
    }

    #[test]
    fn a_response_copies_the_transaction_headers_and_adds_a_tag() {
        let r = request(INVITE);
        let resp = r.response(180, "Ringing", Some("xyz"));
        let text = String::from_utf8(resp.to_bytes()).expect("utf8");
        assert!(text.starts_with("SIP/2.0 180 Ringing\r\n"), "{text}");
        assert!(text.contains("To: <sip:alice@example.com>;tag=xyz\r\n"), "{text}");
        assert!(text.contains("Content-Length: 0\r\n\r\n"), "{text}");
        match parse(&resp.to_bytes()) {
            Ok(Message::Response(p)) => assert_eq!(p.branch().as_deref(), Some("z9hG4bK-1")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_what_a_proxy_cannot_route() {
        let no_call_id = INVITE.replace("Call-ID: 1@h\r\n", "");
        assert_eq!(parse(no_call_id.as_bytes()), Err(ParseError::Header("Call-ID")));
        let negative = INVITE.replace("Content-Length: 4", "Content-Length: -999");
        assert!(matches!(parse(negative.as_bytes()), Err(ParseError::ContentLength(_))));
        let short = INVITE.replace("Content-Length: 4", "Content-Length: 40");
        assert!(matches!(parse(short.as_bytes()), Err(ParseError::ContentLength(_))));
        let mismatch = INVITE.replace("CSeq: 1 INVITE", "CSeq: 1 BYE");
        assert!(matches!(
            parse(mismatch.as_bytes()),
            Err(ParseError::CSeqMismatch { .. })
        ));
        let huge_mf = INVITE.replace("Max-Forwards: 70", "Max-Forwards: 7000");
        assert_eq!(parse(huge_mf.as_bytes()), Err(ParseError::Header("Max-Forwards")));
    }

    #[test]
    fn uris_come_apart() {
        let u = SipUri::parse("sip:bob:pw@[2001:db8::1]:5070;transport=TCP;lr?x=y").expect("uri");
        assert_eq!(u.user.as_deref(), Some("bob"));
        assert_eq!(u.host, "[2001:db8::1]");
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.transport(), "tcp");
        assert_eq!(u.param("lr"), Some(None));
        assert_eq!(u.socket_addr(), Some("[2001:db8::1]:5070".parse().expect("addr")));
        assert!(SipUri::parse("tel:+1555").is_none());
        assert!(SipUri::parse("sip:@").is_none());
        assert_eq!(uri_of("\"A <b>\" <sip:a@b>;tag=1"), "sip:a@b");
    }

    #[test]
    fn parameters_after_quoted_angle_brackets() {
        let contact = "<sip:a@127.0.0.1:5071>;+sip.instance=\"<urn:uuid:1;x>\";expires=60";
        assert_eq!(param(contact, "expires").as_deref(), Some("60"));
        assert_eq!(param(contact, "x"), None);
        assert_eq!(param("sip:a@h;transport=tcp;lr", "transport").as_deref(), Some("tcp"));
        assert_eq!(param("\"a>b\" <sip:a@h;lr>;tag=9", "tag").as_deref(), Some("9"));
        assert_eq!(param("\"a>b\" <sip:a@h;lr>;tag=9", "lr"), None);
    }

    #[test]
    fn the_top_via_learns_where_the_request_came_from() {
        let mut r = request(INVITE);
        stamp_received(&mut r.headers, "192.0.2.7:40000".parse().expect("addr"));
        let vias = all_values(&r.headers, "Via");
        assert_eq!(
            vias[0],
            "SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK-1;rport=40000;received=192.0.2.7"
        );
        assert_eq!(vias[1], "SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK-0");
    }

    #[test]
    fn removing_one_list_element_keeps_the_rest() {
        let mut r = request(INVITE);
        remove_value(&mut r.headers, "Route", "<sip:127.0.0.1:5060;lr>");
        assert_eq!(
            all_values(&r.headers, "Route"),
            vec!["<sip:p@10.0.0.2;lr;transport=tls>"]
        );
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_or_fail_cleanly(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn mutated_invites_parse_or_fail_cleanly(pos in 0usize..400, byte in proptest::num::u8::ANY) {
            let mut b = INVITE.as_bytes().to_vec();
            let p = pos % b.len();
            b[p] = byte;
            let _ = parse(&b);
        }
    }
}
