//! HTTP Digest authentication for SIP (RFC 3261 §22, RFC 2617).
//!
//! Only what a SIP registrar/proxy and a simple phone need: the `MD5`
//! algorithm with `qop=auth` (RFC 2617 §3.2.2), and the older RFC 2069 form
//! without `qop` that RFC 3261 §22.4 still requires servers to accept.
//!
//! * [`DigestServer`] issues challenges (`WWW-Authenticate` /
//!   `Proxy-Authenticate` values) with a *stateless* nonce — a timestamp and a
//!   keyed MD5 MAC over it — and verifies `Authorization` /
//!   `Proxy-Authorization` values. Replayed credentials are refused: it keeps the
//!   nonce counts it has accepted for each nonce in use (RFC 2617 §3.2.2).
//! * [`authorization`] answers a challenge on the client side.
//!
//! Every parser here takes untrusted text: bad input gives a [`DigestError`],
//! never a panic.

use std::collections::{HashMap, VecDeque};

use md5::{Digest, Md5};

/// How long a nonce issued by [`DigestServer`] stays fresh by default, in
/// seconds. Older nonces give [`DigestError::StaleNonce`].
pub const DEFAULT_NONCE_TTL_SECS: u64 = 300;

/// How far in the future a nonce's timestamp may lie (clock steps), seconds.
const NONCE_FUTURE_SKEW_SECS: u64 = 5;

/// Nonces whose use [`DigestServer`] tracks at most. Only nonces of accepted
/// credentials are tracked, so strangers cannot fill the table; when it is full,
/// the oldest nonce is forgotten and from then on treated as stale.
const MAX_TRACKED_NONCES: usize = 16 * 1024;

/// How far below the highest nonce count seen a request may still arrive (UDP
/// reorders), as in IPsec's anti-replay window (RFC 4303 §3.4.3).
const NC_WINDOW: u32 = 64;

/// Length of our nonces: 16 hex digits of issue time, 16 of salt, 32 of MAC.
const NONCE_LEN: usize = 64;

/// Longest header value the parser looks at; longer ones are refused.
const MAX_HEADER_LEN: usize = 8 * 1024;

/// Why a Digest challenge or credential was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The value does not parse as `Digest` followed by `name=value` pairs.
    #[error("malformed digest header: {0}")]
    Malformed(String),
    /// The authentication scheme is not `Digest`.
    #[error("authentication scheme is not Digest")]
    NotDigest,
    /// A parameter the check needs is missing.
    #[error("digest parameter {0:?} missing")]
    MissingParam(&'static str),
    /// The credentials name a realm other than ours (RFC 2617 §3.2.2).
    #[error("digest realm does not match")]
    RealmMismatch,
    /// The `algorithm` is neither absent nor `MD5` (nor `MD5-sess` on the
    /// client side).
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The `qop` is not `auth` (server side) or the challenge offers no `auth`
    /// (client side).
    #[error("unsupported digest qop {0:?}")]
    UnsupportedQop(String),
    /// The nonce was not issued by this server (bad format or MAC).
    #[error("digest nonce is not ours")]
    InvalidNonce,
    /// The nonce is authentic and the response right, but the nonce is too
    /// old: challenge again with `stale=true` (RFC 2617 §3.2.1).
    #[error("digest nonce is stale")]
    StaleNonce,
    /// The password lookup knows no such user.
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// The `response` does not match the password.
    #[error("digest response does not match")]
    BadResponse,
    /// The credentials are right but were used before: the same nonce count
    /// again, a count too far below the highest one seen, or a nonce without
    /// `qop` (which has no count) a second time (RFC 2617 §3.2.2, "if the same
    /// nc-value is seen twice, then the request is a replay"). Challenge again
    /// with `stale=true`, so an honest client retries with a fresh nonce.
    #[error("digest credentials replayed")]
    Replayed,
}

/// The server side: makes challenges and verifies credentials.
///
/// The nonce is stateless (RFC 2617 §3.2.1 suggests a timestamp plus a
/// private key hash): 16 hex digits of issue time in seconds, 16 of random
/// salt, and the hex HMAC-MD5 (RFC 2104) of `realm:time-salt` under `secret`.
/// The salt makes every challenge's nonce unique. The nonces of
/// accepted credentials and their nonce counts are remembered until the nonce
/// goes stale, so a replay is refused ([`DigestError::Replayed`]).
#[derive(Clone)]
pub struct DigestServer {
    /// The protection realm, sent in challenges and required in credentials.
    pub realm: String,
    /// The key of the nonce MAC. Keep it secret; random bytes are best.
    pub secret: Vec<u8>,
    /// Nonces older than this many seconds are stale.
    pub nonce_ttl_secs: u64,
    /// The use made of each nonce that credentials were accepted with.
    used: NonceUse,
}

/// The nonces accepted credentials came with and the nonce counts seen with
/// each (RFC 2617 §3.2.2), bounded by [`MAX_TRACKED_NONCES`].
#[derive(Clone, Default)]
struct NonceUse {
    /// Nonce → its counts.
    counts: HashMap<String, NcWindow>,
    /// Nonces in the order they were first accepted, with their issue time.
    order: VecDeque<(u64, String)>,
    /// Nonces issued at or before this time were forgotten to keep the table
    /// bounded; they count as stale.
    forgotten_up_to: Option<u64>,
}

/// The highest nonce count seen with a nonce and which of the [`NC_WINDOW`]
/// counts below it were seen too (bit `i` is `highest - 1 - i`).
#[derive(Clone, Copy)]
struct NcWindow {
    highest: u32,
    below: u64,
}

impl NcWindow {
    fn new(nc: u32) -> Self {
        NcWindow { highest: nc, below: 0 }
    }

    /// Records `nc`; false if it was seen before or is too old to tell.
    fn accept(&mut self, nc: u32) -> bool {
        if nc > self.highest {
            let shift = nc - self.highest;
            self.below = if shift > NC_WINDOW {
                0
            } else {
                // The old highest becomes bit `shift - 1`.
                (self.below << (shift - 1) << 1) | (1 << (shift - 1))
            };
            self.highest = nc;
            return true;
        }
        let back = self.highest - nc;
        if back == 0 || back > NC_WINDOW {
            return false;
        }
        let bit = 1u64 << (back - 1);
        if self.below & bit != 0 {
            return false;
        }
        self.below |= bit;
        true
    }
}

impl NonceUse {
    /// Records one use of `nonce` (issued at `issued`) with count `nc` (`None`
    /// without `qop`, where a nonce may serve once); false for a replay.
    fn accept(&mut self, nonce: &str, issued: u64, nc: Option<u32>, stale_before: u64) -> bool {
        if self.forgotten_up_to.is_some_and(|t| issued <= t) {
            return false;
        }
        if let Some(window) = self.counts.get_mut(nonce) {
            return nc.is_some_and(|nc| window.accept(nc));
        }
        self.forget_stale(stale_before);
        if self.order.len() >= MAX_TRACKED_NONCES {
            if let Some((t, old)) = self.order.pop_front() {
                self.counts.remove(&old);
                self.forgotten_up_to = Some(self.forgotten_up_to.map_or(t, |f| f.max(t)));
            }
            if self.forgotten_up_to.is_some_and(|t| issued <= t) {
                return false;
            }
        }
        // Without qop the nonce has no count: any second use is a replay.
        let window = NcWindow::new(nc.unwrap_or(u32::MAX));
        self.counts.insert(nonce.to_owned(), window);
        self.order.push_back((issued, nonce.to_owned()));
        true
    }

    /// Drops nonces issued before `stale_before`: they are refused as stale anyway.
    fn forget_stale(&mut self, stale_before: u64) {
        while let Some((t, _)) = self.order.front() {
            if *t >= stale_before {
                break;
            }
            if let Some((_, old)) = self.order.pop_front() {
                self.counts.remove(&old);
            }
        }
    }
}

impl std::fmt::Debug for DigestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestServer")
            .field("realm", &self.realm)
            .field("secret", &"<redacted>")
            .field("nonce_ttl_secs", &self.nonce_ttl_secs)
            .field("tracked_nonces", &self.used.order.len())
            .finish()
    }
}

impl DigestError {
    /// Whether this is [`DigestError::StaleNonce`]: challenge again with
    /// `stale=true`.
    pub fn is_stale(&self) -> bool {
        matches!(self, DigestError::StaleNonce | DigestError::Replayed)
    }
}

impl DigestServer {
    /// A server for `realm` whose nonces are keyed with `secret`, with the
    /// default nonce lifetime [`DEFAULT_NONCE_TTL_SECS`].
    pub fn new(realm: impl Into<String>, secret: impl Into<Vec<u8>>) -> Self {
        Self {
            realm: realm.into(),
            secret: secret.into(),
            nonce_ttl_secs: DEFAULT_NONCE_TTL_SECS,
            used: NonceUse::default(),
        }
    }

    /// A fresh nonce for time `now_secs` (seconds since the Unix epoch): the
    /// time, a random salt (so that every challenge has a nonce of its own,
    /// even many in one second: nonce counts are tracked per nonce), and the
    /// MAC over both.
    pub fn nonce(&self, now_secs: u64) -> String {
        let stamp = format!("{now_secs:016x}{:016x}", rand::random::<u64>());
        let mac = self.nonce_mac(&stamp);
        format!("{stamp}{mac}")
    }

    /// The MAC of a nonce's time and salt, `realm:time-salt` under the secret.
    fn nonce_mac(&self, stamp_hex: &str) -> String {
        let mut msg = Vec::with_capacity(self.realm.len() + 1 + stamp_hex.len());
        msg.extend_from_slice(self.realm.as_bytes());
        msg.push(b':');
        msg.extend_from_slice(stamp_hex.as_bytes());
        hex(&hmac_md5(&self.secret, &msg))
    }

    /// The value of a `WWW-Authenticate` (registrar, 401) or
    /// `Proxy-Authenticate` (proxy, 407) header: a Digest challenge with a
    /// fresh nonce, `algorithm=MD5` and `qop="auth"` (RFC 3261 §22.1,
    /// RFC 2617 §3.2.1). Set `stale` when [`verify`](Self::verify) returned
    /// [`DigestError::StaleNonce`], so the client retries without asking
    /// its user.
    pub fn challenge(&self, now_secs: u64, stale: bool) -> String {
        let mut s = format!(
            "Digest realm={}, nonce=\"{}\", algorithm=MD5, qop=\"auth\"",
            quote(&self.realm),
            self.nonce(now_secs)
        );
        if stale {
            s.push_str(", stale=true");
        }
        s
    }

    /// Checks the nonce: `Ok((issued_at, age_is_fine))` when we issued it.
    fn check_nonce(&self, nonce: &str, now_secs: u64) -> Result<(u64, bool), DigestError> {
        if nonce.len() != NONCE_LEN || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DigestError::InvalidNonce);
        }
        let (stamp_hex, mac) = nonce.split_at(32);
        let expected = self.nonce_mac(stamp_hex);
        let ts_hex = &stamp_hex[..16];
        if !ct_eq(expected.as_bytes(), mac.to_ascii_lowercase().as_bytes()) {
            return Err(DigestError::InvalidNonce);
        }
        let ts = u64::from_str_radix(ts_hex, 16).map_err(|_| DigestError::InvalidNonce)?;
        if ts > now_secs.saturating_add(NONCE_FUTURE_SKEW_SECS) {
            return Err(DigestError::InvalidNonce);
        }
        Ok((ts, now_secs.saturating_sub(ts) <= self.nonce_ttl_secs))
    }

    /// Verifies an `Authorization` / `Proxy-Authorization` header value for a
    /// request with `method` (RFC 2617 §3.2.2, RFC 3261 §22.4) and returns
    /// the authenticated user name.
    ///
    /// `password_lookup` maps a user name to its password. The nonce must be
    /// one of ours; an authentic nonce older than
    /// [`nonce_ttl_secs`](Self::nonce_ttl_secs) gives
    /// [`DigestError::StaleNonce`] — but only when the response is otherwise
    /// right, as RFC 2617 §3.2.1 asks for `stale=true`. `qop=auth` and no
    /// `qop` (RFC 2069) are accepted; `algorithm` must be absent or `MD5`.
    /// The `uri` must be present (comparing it with the Request-URI is left
    /// to the caller, who has the request).
    ///
    /// Right credentials used before give [`DigestError::Replayed`]: with
    /// `qop=auth` each nonce count is accepted once per nonce (counts may arrive
    /// out of order by up to 64); without `qop` a nonce is accepted once.
    pub fn verify(
        &mut self,
        method: &str,
        authorization: &str,
        password_lookup: impl Fn(&str) -> Option<String>,
        now_secs: u64,
    ) -> Result<String, DigestError> {
        let params = parse_digest(authorization)?;
        let username = params.get("username")?;
        let realm = params.get("realm")?;
        let nonce = params.get("nonce")?;
        params.get("uri")?;
        let response = params.get("response")?;
        if realm != self.realm {
            return Err(DigestError::RealmMismatch);
        }
        if let Some(alg) = params.opt("algorithm")
            && !alg.eq_ignore_ascii_case("MD5")
        {
            return Err(DigestError::UnsupportedAlgorithm(alg.to_string()));
        }
        let (issued, fresh) = self.check_nonce(nonce, now_secs)?;
        let password = password_lookup(username).ok_or_else(|| DigestError::UnknownUser(username.into()))?;
        let expected = expected_response(&params, method, &password)?;
        if !ct_eq(expected.as_bytes(), response.to_ascii_lowercase().as_bytes()) {
            return Err(DigestError::BadResponse);
        }
        if !fresh {
            return Err(DigestError::StaleNonce);
        }
        // `expected_response` checked that a qop request has 8 hex digits of nc.
        let nc = match params.opt("qop") {
            Some(_) => Some(u32::from_str_radix(params.get("nc")?, 16).map_err(|_| malformed("nc is not hex"))?),
            None => None,
        };
        let stale_before = now_secs.saturating_sub(self.nonce_ttl_secs);
        if !self.used.accept(nonce, issued, nc, stale_before) {
            return Err(DigestError::Replayed);
        }
        Ok(username.to_string())
    }
}

/// The `response` that credentials `params` must carry for a request with
/// `method` and the user's `password` (RFC 2617 §3.2.2.1, with the RFC 2069
/// form when there is no `qop`).
fn expected_response(params: &DigestParams, method: &str, password: &str) -> Result<String, DigestError> {
    let username = params.get("username")?;
    let realm = params.get("realm")?;
    let nonce = params.get("nonce")?;
    let uri = params.get("uri")?;
    let ha1 = md5_hex(format!("{username}:{realm}:{password}").as_bytes());
    let ha2 = md5_hex(format!("{method}:{uri}").as_bytes());
    match params.opt("qop") {
        None => Ok(md5_hex(format!("{ha1}:{nonce}:{ha2}").as_bytes())),
        Some(q) if q.eq_ignore_ascii_case("auth") => {
            let nc = params.get("nc")?;
            let cnonce = params.get("cnonce")?;
            if nc.len() != 8 || !nc.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(DigestError::Malformed("nc is not 8 hex digits".into()));
            }
            Ok(md5_hex(format!("{ha1}:{nonce}:{nc}:{cnonce}:{q}:{ha2}").as_bytes()))
        }
        Some(q) => Err(DigestError::UnsupportedQop(q.to_string())),
    }
}

/// The client side: the `Authorization` (after a 401) or
/// `Proxy-Authorization` (after a 407) header value answering `challenge`
/// (the `WWW-Authenticate` / `Proxy-Authenticate` value) for a request with
/// `method` and Request-URI `uri` (RFC 3261 §22.2, §22.3; RFC 2617 §3.2.2).
///
/// Uses `qop=auth` with `nc=00000001` and `cnonce` when the challenge offers
/// `auth`, and the RFC 2069 form when it offers no `qop`. `MD5` and
/// `MD5-sess` are supported; `opaque` is echoed.
pub fn authorization(
    challenge: &str,
    method: &str,
    uri: &str,
    user: &str,
    password: &str,
    cnonce: &str,
) -> Result<String, DigestError> {
    authorization_counted(challenge, method, uri, user, password, cnonce, 1)
}

/// [`authorization`] for the `nc`-th request (counting from 1) made with the
/// challenge's nonce: a client that reuses a nonce counts up, or the server takes
/// the request for a replay (RFC 2617 §3.2.2).
pub fn authorization_counted(
    challenge: &str,
    method: &str,
    uri: &str,
    user: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> Result<String, DigestError> {
    let params = parse_digest(challenge)?;
    let realm = params.get("realm")?;
    let nonce = params.get("nonce")?;
    let opaque = params.opt("opaque");
    let sess = match params.opt("algorithm") {
        None => false,
        Some(a) if a.eq_ignore_ascii_case("MD5") => false,
        Some(a) if a.eq_ignore_ascii_case("MD5-sess") => true,
        Some(a) => return Err(DigestError::UnsupportedAlgorithm(a.to_string())),
    };
    // qop-options is a quoted, comma-separated list (RFC 2617 §3.2.1).
    let use_qop = match params.opt("qop") {
        None => false,
        Some(list) => {
            if list.split(',').any(|q| q.trim().eq_ignore_ascii_case("auth")) {
                true
            } else {
                return Err(DigestError::UnsupportedQop(list.to_string()));
            }
        }
    };
    if (use_qop || sess) && cnonce.is_empty() {
        return Err(DigestError::MissingParam("cnonce"));
    }
    let nc = format!("{nc:08x}");
    let mut ha1 = md5_hex(format!("{user}:{realm}:{password}").as_bytes());
    if sess {
        ha1 = md5_hex(format!("{ha1}:{nonce}:{cnonce}").as_bytes());
    }
    let ha2 = md5_hex(format!("{method}:{uri}").as_bytes());
    let response = if use_qop {
        md5_hex(format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}").as_bytes())
    } else {
        md5_hex(format!("{ha1}:{nonce}:{ha2}").as_bytes())
    };
    let mut out = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\", algorithm={}",
        quote(user),
        quote(realm),
        quote(nonce),
        quote(uri),
        if sess { "MD5-sess" } else { "MD5" },
    );
    if use_qop || sess {
        out.push_str(&format!(", cnonce={}", quote(cnonce)));
    }
    if use_qop {
        out.push_str(&format!(", qop=auth, nc={nc}"));
    }
    if let Some(o) = opaque {
        out.push_str(&format!(", opaque={}", quote(o)));
    }
    Ok(out)
}

/// The parameters of a Digest challenge or credentials, names lower-cased.
#[derive(Debug)]
struct DigestParams(Vec<(String, String)>);

impl DigestParams {
    fn opt(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn get(&self, name: &'static str) -> Result<&str, DigestError> {
        self.opt(name).ok_or(DigestError::MissingParam(name))
    }
}

/// Parses `Digest name=value, name="quoted \"value\"", ...`
/// (RFC 2617 §1.2 `auth-param`, RFC 3261 §25.1 `quoted-string`): any order,
/// case-insensitive names and scheme, empty list elements and linear white
/// space tolerated, unknown parameters kept (and ignored by the callers),
/// duplicate parameters refused.
fn parse_digest(value: &str) -> Result<DigestParams, DigestError> {
    if value.len() > MAX_HEADER_LEN {
        return Err(DigestError::Malformed("header too long".into()));
    }
    let s = value.trim_start();
    let scheme_end = s
        .find(|c: char| c.is_whitespace())
        .ok_or_else(|| malformed("no parameters after the scheme"))?;
    let (scheme, rest) = s.split_at(scheme_end);
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(DigestError::NotDigest);
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut i = 0;
    let mut params: Vec<(String, String)> = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    loop {
        // Skip white space and empty list elements (RFC 2616 §2.1 `#rule`).
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let start = i;
        while i < chars.len() && is_tchar(chars[i]) {
            i += 1;
        }
        if i == start {
            return Err(malformed("expected a parameter name"));
        }
        let name: String = chars[start..i].iter().collect::<String>().to_ascii_lowercase();
        skip_ws(&mut i);
        if i >= chars.len() || chars[i] != '=' {
            return Err(malformed("expected '=' after a parameter name"));
        }
        i += 1;
        skip_ws(&mut i);
        let mut val = String::new();
        if i < chars.len() && chars[i] == '"' {
            i += 1;
            let mut closed = false;
            while i < chars.len() {
                match chars[i] {
                    '\\' => {
                        // quoted-pair (RFC 3261 §25.1).
                        i += 1;
                        match chars.get(i) {
                            Some(c) => val.push(*c),
                            None => return Err(malformed("dangling escape")),
                        }
                    }
                    '"' => {
                        closed = true;
                        i += 1;
                        break;
                    }
                    c => val.push(c),
                }
                i += 1;
            }
            if !closed {
                return Err(malformed("unterminated quoted string"));
            }
        } else {
            // A token; be lenient and take anything up to a separator, since
            // some clients leave URIs unquoted.
            let vstart = i;
            while i < chars.len() && chars[i] != ',' && !chars[i].is_whitespace() {
                if chars[i] == '"' || chars[i] == '=' {
                    return Err(malformed("unexpected character in a token"));
                }
                i += 1;
            }
            if i == vstart {
                return Err(malformed("empty parameter value"));
            }
            val = chars[vstart..i].iter().collect();
        }
        skip_ws(&mut i);
        if i < chars.len() && chars[i] != ',' {
            return Err(malformed("expected ',' between parameters"));
        }
        if params.iter().any(|(n, _)| *n == name) {
            return Err(DigestError::Malformed(format!("duplicate parameter {name}")));
        }
        params.push((name, val));
    }
    if params.is_empty() {
        return Err(malformed("no parameters"));
    }
    Ok(DigestParams(params))
}

/// Shorthand for building [`DigestError::Malformed`].
fn malformed(why: &str) -> DigestError {
    DigestError::Malformed(why.to_string())
}

/// RFC 2616 §2.2 token characters.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// A quoted-string with `"` and `\` escaped (RFC 3261 §25.1).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        // CR and LF cannot appear in a header value.
        if c != '\r' && c != '\n' {
            out.push(c);
        }
    }
    out.push('"');
    out
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Lower-case hex MD5, the `H`/`KD` building block of RFC 2617 §3.2.1.
fn md5_hex(data: &[u8]) -> String {
    hex(Md5::digest(data).as_slice())
}

/// HMAC-MD5 (RFC 2104), block size 64.
fn hmac_md5(key: &[u8], msg: &[u8]) -> [u8; 16] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..16].copy_from_slice(Md5::digest(key).as_slice());
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Md5::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let inner = inner.finalize();
    let mut outer = Md5::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.as_slice());
    let mut out = [0u8; 16];
    out.copy_from_slice(outer.finalize().as_slice());
    out
}

/// Comparison whose time does not depend on where the inputs differ.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 2617 §3.5: the example request and its expected response.
    const RFC2617_AUTH: &str = r#"Digest username="Mufasa",
                 realm="testrealm@host.com",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 uri="/dir/index.html",
                 qop=auth,
                 nc=00000001,
                 cnonce="0a4f113b",
                 response="6629fae49393a05397450978507c4ef1",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#;

    const RFC2617_CHALLENGE: &str = r#"Digest
                 realm="testrealm@host.com",
                 qop="auth,auth-int",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#;

    fn lookup(user: &str) -> Option<String> {
        match user {
            "alice" => Some("secret".into()),
            "Mufasa" => Some("Circle Of Life".into()),
            _ => None,
        }
    }

    fn server() -> DigestServer {
        DigestServer::new("overlay.test", b"k3y".to_vec())
    }

    fn nonce_of(challenge: &str) -> String {
        parse_digest(challenge).unwrap().get("nonce").unwrap().to_string()
    }

    #[test]
    fn rfc2617_example_client() {
        let auth = authorization(
            RFC2617_CHALLENGE,
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle Of Life",
            "0a4f113b",
        )
        .unwrap();
        let p = parse_digest(&auth).unwrap();
        assert_eq!(p.get("response").unwrap(), "6629fae49393a05397450978507c4ef1");
        assert_eq!(p.get("qop").unwrap(), "auth");
        assert_eq!(p.get("nc").unwrap(), "00000001");
        assert_eq!(p.get("opaque").unwrap(), "5ccc069c403ebaf9f0171e9517f40e41");
    }

    #[test]
    fn rfc2617_example_parses_and_response_checks() {
        // The server-side computation gives the RFC's response...
        let p = parse_digest(RFC2617_AUTH).unwrap();
        assert_eq!(p.get("username").unwrap(), "Mufasa");
        assert_eq!(p.get("uri").unwrap(), "/dir/index.html");
        assert_eq!(
            expected_response(&p, "GET", "Circle Of Life").unwrap(),
            p.get("response").unwrap()
        );
        // ...but the RFC's nonce is not one of ours, so verify() refuses it.
        let mut s = DigestServer::new("testrealm@host.com", b"x".to_vec());
        assert_eq!(s.verify("GET", RFC2617_AUTH, lookup, 0), Err(DigestError::InvalidNonce));
    }

    #[test]
    fn round_trip_qop_auth() {
        let mut s = server();
        let ch = s.challenge(1000, false);
        let auth = authorization(&ch, "REGISTER", "sip:overlay.test", "alice", "secret", "c1").unwrap();
        assert_eq!(s.verify("REGISTER", &auth, lookup, 1010).unwrap(), "alice");
        // Wrong method (HA2 differs).
        assert_eq!(s.verify("INVITE", &auth, lookup, 1010), Err(DigestError::BadResponse));
        // Wrong password.
        let bad = authorization(&ch, "REGISTER", "sip:overlay.test", "alice", "nope", "c1").unwrap();
        assert_eq!(s.verify("REGISTER", &bad, lookup, 1010), Err(DigestError::BadResponse));
        // Unknown user.
        let who = authorization(&ch, "REGISTER", "sip:overlay.test", "eve", "x", "c1").unwrap();
        assert_eq!(
            s.verify("REGISTER", &who, lookup, 1010),
            Err(DigestError::UnknownUser("eve".into()))
        );
    }

    #[test]
    fn a_nonce_count_is_accepted_once() {
        let mut s = server();
        let ch = s.challenge(1000, false);
        let auth = |nc| authorization_counted(&ch, "REGISTER", "sip:overlay.test", "alice", "secret", "c1", nc);
        assert_eq!(s.verify("REGISTER", &auth(1).unwrap(), lookup, 1001).unwrap(), "alice");
        // The same credentials again: a replay, answered as stale so an honest
        // client takes a fresh nonce.
        let replayed = s.verify("REGISTER", &auth(1).unwrap(), lookup, 1002);
        assert_eq!(replayed, Err(DigestError::Replayed));
        assert!(replayed.is_err_and(|e| e.is_stale()));
        // Counting up is fine, and a count that UDP delivered late still counts once.
        assert!(s.verify("REGISTER", &auth(3).unwrap(), lookup, 1003).is_ok());
        assert!(s.verify("REGISTER", &auth(2).unwrap(), lookup, 1003).is_ok());
        assert_eq!(
            s.verify("REGISTER", &auth(2).unwrap(), lookup, 1003),
            Err(DigestError::Replayed)
        );
        assert_eq!(
            s.verify("REGISTER", &auth(3).unwrap(), lookup, 1003),
            Err(DigestError::Replayed)
        );
        // A jump, then a count too far below the highest to tell.
        assert!(s.verify("REGISTER", &auth(3 + 200).unwrap(), lookup, 1004).is_ok());
        assert_eq!(
            s.verify("REGISTER", &auth(4).unwrap(), lookup, 1004),
            Err(DigestError::Replayed)
        );
        assert!(s.verify("REGISTER", &auth(203 - 64).unwrap(), lookup, 1004).is_ok());
        // Wrong credentials are refused as wrong, never recorded.
        let bad = authorization_counted(&ch, "REGISTER", "sip:overlay.test", "alice", "x", "c1", 500).unwrap();
        assert_eq!(s.verify("REGISTER", &bad, lookup, 1004), Err(DigestError::BadResponse));
        assert!(s.verify("REGISTER", &auth(500).unwrap(), lookup, 1004).is_ok());
        // Another nonce has counts of its own.
        let ch2 = s.challenge(1005, false);
        let other = authorization(&ch2, "REGISTER", "sip:overlay.test", "alice", "secret", "c2").unwrap();
        assert!(s.verify("REGISTER", &other, lookup, 1005).is_ok());
    }

    #[test]
    fn the_nonce_count_window_slides() {
        let mut w = NcWindow::new(1);
        assert!(!w.accept(1));
        assert!(w.accept(1 + NC_WINDOW));
        // 1 is exactly NC_WINDOW below the highest: still known as seen.
        assert!(!w.accept(1));
        assert!(w.accept(2));
        assert!(w.accept(2 + 2 * NC_WINDOW));
        // Everything older than the window is refused.
        assert!(!w.accept(2 + NC_WINDOW - 1));
        assert!(w.accept(2 + NC_WINDOW));
        assert!(w.accept(u32::MAX));
        assert!(!w.accept(u32::MAX));
    }

    #[test]
    fn tracked_nonces_are_bounded_and_forgotten_ones_count_as_stale() {
        let mut s = server();
        let mut first = None;
        for i in 0..=MAX_TRACKED_NONCES as u64 {
            let ch = s.challenge(1000 + i / 64, false);
            let auth = authorization(&ch, "REGISTER", "sip:overlay.test", "alice", "secret", "c").unwrap();
            assert!(s.verify("REGISTER", &auth, lookup, 1000 + i / 64).is_ok(), "nonce {i}");
            first.get_or_insert(ch);
        }
        assert_eq!(s.used.order.len(), MAX_TRACKED_NONCES);
        assert_eq!(s.used.counts.len(), MAX_TRACKED_NONCES);
        // The first nonce was forgotten to make room: a later count with it is
        // refused rather than taken as new.
        let ch = first.unwrap();
        let again = authorization_counted(&ch, "REGISTER", "sip:overlay.test", "alice", "secret", "c", 2).unwrap();
        assert_eq!(s.verify("REGISTER", &again, lookup, 1300), Err(DigestError::Replayed));
        // Once nonces go stale they leave the table.
        let late = 1000 + DEFAULT_NONCE_TTL_SECS + 1000;
        let ch = s.challenge(late, false);
        let auth = authorization(&ch, "REGISTER", "sip:overlay.test", "alice", "secret", "c").unwrap();
        assert!(s.verify("REGISTER", &auth, lookup, late).is_ok());
        assert_eq!(s.used.order.len(), 1);
    }

    #[test]
    fn rfc2069_without_qop_is_accepted() {
        let mut s = server();
        let nonce = s.nonce(50);
        let ch = format!("Digest realm=\"overlay.test\", nonce=\"{nonce}\"");
        let auth = authorization(&ch, "INVITE", "sip:bob@overlay.test", "alice", "secret", "").unwrap();
        assert!(!auth.contains("qop"));
        assert_eq!(s.verify("INVITE", &auth, lookup, 60).unwrap(), "alice");
        // Without qop there is no count to tell requests apart: a nonce serves once.
        assert_eq!(s.verify("INVITE", &auth, lookup, 61), Err(DigestError::Replayed));
    }

    #[test]
    fn stale_and_forged_nonces() {
        let mut s = server();
        let ch = s.challenge(1000, false);
        let auth = authorization(&ch, "REGISTER", "sip:overlay.test", "alice", "secret", "c").unwrap();
        let later = 1000 + DEFAULT_NONCE_TTL_SECS + 1;
        assert_eq!(s.verify("REGISTER", &auth, lookup, later), Err(DigestError::StaleNonce));
        // A stale nonce with a wrong password is not "stale", just wrong.
        let bad = authorization(&ch, "REGISTER", "sip:overlay.test", "alice", "x", "c").unwrap();
        assert_eq!(s.verify("REGISTER", &bad, lookup, later), Err(DigestError::BadResponse));
        // From the future.
        assert_eq!(s.verify("REGISTER", &auth, lookup, 900), Err(DigestError::InvalidNonce));
        // Another server's nonce (different secret).
        let mut other = DigestServer::new("overlay.test", b"other".to_vec());
        assert_eq!(
            other.verify("REGISTER", &auth, lookup, 1000),
            Err(DigestError::InvalidNonce)
        );
        // Tampered timestamp.
        let nonce = nonce_of(&ch);
        let forged = nonce.replacen(&nonce[..16], &format!("{:016x}", 2000u64), 1);
        let forged_auth = auth.replace(&nonce, &forged);
        assert_eq!(
            s.verify("REGISTER", &forged_auth, lookup, 2000),
            Err(DigestError::InvalidNonce)
        );
        assert!(s.challenge(5, true).ends_with("stale=true"));
    }

    #[test]
    fn realm_algorithm_qop_checks() {
        let mut s = server();
        let n = s.nonce(10);
        let other_realm =
            format!("Digest username=\"alice\", realm=\"x\", nonce=\"{n}\", uri=\"sip:a\", response=\"00\"");
        assert_eq!(
            s.verify("REGISTER", &other_realm, lookup, 10),
            Err(DigestError::RealmMismatch)
        );
        let sha = format!(
            "Digest username=\"alice\", realm=\"overlay.test\", nonce=\"{n}\", uri=\"sip:a\", response=\"00\", algorithm=SHA-256"
        );
        assert!(matches!(
            s.verify("REGISTER", &sha, lookup, 10),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
        let authint = format!(
            "Digest username=\"alice\", realm=\"overlay.test\", nonce=\"{n}\", uri=\"sip:a\", response=\"00\", qop=auth-int, nc=00000001, cnonce=\"x\""
        );
        assert!(matches!(
            s.verify("REGISTER", &authint, lookup, 10),
            Err(DigestError::UnsupportedQop(_))
        ));
        let no_nc = format!(
            "Digest username=\"alice\", realm=\"overlay.test\", nonce=\"{n}\", uri=\"sip:a\", response=\"00\", qop=auth, cnonce=\"x\""
        );
        assert_eq!(
            s.verify("REGISTER", &no_nc, lookup, 10),
            Err(DigestError::MissingParam("nc"))
        );
        let no_uri = format!("Digest username=\"alice\", realm=\"overlay.test\", nonce=\"{n}\", response=\"00\"");
        assert_eq!(
            s.verify("REGISTER", &no_uri, lookup, 10),
            Err(DigestError::MissingParam("uri"))
        );
    }

    #[test]
    fn parser_order_case_escapes_and_unknowns() {
        let mut s = DigestServer::new("we\"ird\\realm", b"k".to_vec());
        let ch = s.challenge(7, false);
        assert!(ch.contains(r#"realm="we\"ird\\realm""#));
        let auth = authorization(&ch, "MESSAGE", "sip:b@x", "alice", "secret", "cn").unwrap();
        // Reverse the parameter order, upper-case the names and add junk.
        let body = auth.trim_start_matches("Digest ");
        let mut parts: Vec<String> = split_top(body)
            .into_iter()
            .map(|p| {
                let (n, v) = p.split_once('=').unwrap();
                format!("{}={}", n.trim().to_ascii_uppercase(), v)
            })
            .collect();
        parts.reverse();
        parts.push("x-unknown=\"a, b = c\"".into());
        parts.push("tok=1".into());
        let shuffled = format!("dIgEsT   ,{} ,", parts.join(" ,\t "));
        assert_eq!(s.verify("MESSAGE", &shuffled, lookup, 8).unwrap(), "alice");
    }

    /// Splits on commas outside quotes (test helper).
    fn split_top(s: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut q = false;
        let mut esc = false;
        for c in s.chars() {
            if esc {
                esc = false;
            } else if c == '\\' && q {
                esc = true;
            } else if c == '"' {
                q = !q;
            } else if c == ',' && !q {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            cur.push(c);
        }
        out.push(cur);
        out
    }

    #[test]
    fn malformed_headers_are_errors() {
        let mut s = server();
        for bad in [
            "",
            "Digest",
            "Digest ",
            "Basic dXNlcjpwYXNz",
            "Digest username",
            "Digest username=",
            "Digest username=\"alice",
            "Digest username=\"alice\\",
            "Digest username=\"a\" realm=\"b\"",
            "Digest =x",
            "Digest a=b=c",
            "Digest a=\"1\", a=\"2\"",
            "Digest ,,,",
            "Digest username=\"é\", realm=\"ü\"",
        ] {
            assert!(s.verify("REGISTER", bad, lookup, 0).is_err(), "{bad:?}");
            assert!(
                authorization(bad, "REGISTER", "sip:x", "u", "p", "c").is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(
            s.verify("REGISTER", "Basic abc", lookup, 0),
            Err(DigestError::NotDigest)
        );
        let long = format!("Digest a=\"{}\"", "x".repeat(MAX_HEADER_LEN));
        assert!(matches!(
            s.verify("REGISTER", &long, lookup, 0),
            Err(DigestError::Malformed(_))
        ));
    }

    #[test]
    fn client_refuses_unsupported_challenges() {
        assert!(matches!(
            authorization(
                "Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"",
                "INVITE",
                "sip:x",
                "u",
                "p",
                "c"
            ),
            Err(DigestError::UnsupportedQop(_))
        ));
        assert!(matches!(
            authorization(
                "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512",
                "INVITE",
                "sip:x",
                "u",
                "p",
                "c"
            ),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
        assert_eq!(
            authorization("Digest realm=\"r\"", "INVITE", "sip:x", "u", "p", "c"),
            Err(DigestError::MissingParam("nonce"))
        );
    }

    #[test]
    fn md5_sess_client() {
        // HA1 = MD5(MD5(user:realm:pass):nonce:cnonce) (RFC 2617 §3.2.2.2).
        let auth = authorization(
            "Digest realm=\"r\", nonce=\"n\", algorithm=MD5-sess, qop=\"auth\"",
            "INVITE",
            "sip:x",
            "u",
            "p",
            "c",
        )
        .unwrap();
        let ha1 = md5_hex(format!("{}:n:c", md5_hex(b"u:r:p")).as_bytes());
        let ha2 = md5_hex(b"INVITE:sip:x");
        let want = md5_hex(format!("{ha1}:n:00000001:c:auth:{ha2}").as_bytes());
        assert!(auth.contains(&format!("response=\"{want}\"")));
    }

    #[test]
    fn hmac_md5_rfc2202_vector() {
        // RFC 2202 §2 test case 2.
        assert_eq!(
            hex(&hmac_md5(b"Jefe", b"what do ya want for nothing?")),
            "750c783e6ab0b503eaa86e310a5db738"
        );
    }

    proptest! {
        #[test]
        fn random_strings_never_panic(s in ".{0,300}", m in "[A-Z]{0,8}") {
            let mut srv = server();
            let _ = srv.verify(&m, &s, lookup, 1);
            let _ = authorization(&s, &m, "sip:x", "u", "p", "c");
            let with_prefix = format!("Digest {s}");
            let _ = srv.verify(&m, &with_prefix, lookup, 1);
            let _ = authorization(&with_prefix, &m, "sip:x", "u", "p", "c");
        }

        #[test]
        fn digest_like_strings_never_panic(
            s in r#"Digest( ?[a-zA-Z]{1,9} ?= ?("([^"\\]|\\.){0,12}"|[a-z0-9]{0,12}) ?,?){0,9}"#
        ) {
            let mut srv = server();
            let _ = srv.verify("REGISTER", &s, lookup, 1);
            let _ = authorization(&s, "REGISTER", "sip:x", "u", "p", "c");
        }
    }
}
