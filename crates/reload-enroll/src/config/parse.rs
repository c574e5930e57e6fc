//! Reading a configuration document (RFC 6940 §11.1) from untrusted bytes.
//!
//! roxmltree builds the tree (no DTDs, a bounded node count); this module walks only
//! the fixed levels §11.1 defines — overlay, configuration, its parameters,
//! required-kinds, kind-block, kind, and RFC 7904 §3.4's `<sip:domain-restriction>`
//! in a kind — and never descends into extension elements, so a deeply nested
//! document costs nothing here.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reload_core::storage::AccessPolicy;
use reload_trust::{CertInfo, NodeIdDigest, TrustAnchors};
use reload_wire::{DataModel, KindId, NodeId};
use roxmltree::{Document, Node, ParsingOptions};

use super::{
    ConfigError, Configuration, DEFAULT_BOOTSTRAP_PORT, DomainRestrictionSpec, KindSpec, LinkProtocol,
    MAX_DOCUMENT_SIZE, MIN_RELIABILITY_TIMER_MS, NODE_ID_LENGTH, NS_BASE, NS_CHORD, NS_SIP, SUPPORTED_EXTENSIONS,
    SignedConfiguration, SignedKind, TOPOLOGY_PLUGIN, registered_by_id, registered_by_name,
};

/// Most XML nodes a document may have (elements, attributes' owners, text).
const NODES_LIMIT: u32 = 100_000;

/// A value as shown in an error: at most 60 characters of it.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    format!("{out:?}")
}

/// The document and the helpers that need it (for line numbers and byte spans).
struct Reader<'a, 'i> {
    doc: &'a Document<'i>,
    text: &'i str,
}

impl<'a, 'i> Reader<'a, 'i> {
    fn line(&self, node: Node<'_, '_>) -> u32 {
        self.doc.text_pos_at(node.range().start).row
    }

    fn invalid(&self, node: Node<'_, '_>, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            element: node.tag_name().name().to_owned(),
            line: self.line(node),
            reason: reason.into(),
        }
    }

    fn unsupported(&self, node: Node<'_, '_>, reason: impl Into<String>) -> ConfigError {
        ConfigError::Unsupported {
            element: node.tag_name().name().to_owned(),
            line: self.line(node),
            reason: reason.into(),
        }
    }

    fn unexpected(&self, node: Node<'_, '_>, parent: Node<'_, '_>) -> ConfigError {
        ConfigError::Unexpected {
            what: describe(node),
            parent: parent.tag_name().name().to_owned(),
            line: self.line(node),
        }
    }

    fn missing(&self, what: impl Into<String>, parent: Node<'_, '_>) -> ConfigError {
        ConfigError::Missing {
            what: what.into(),
            parent: parent.tag_name().name().to_owned(),
            line: self.line(parent),
        }
    }

    /// The exact bytes of an element, from its `<` to its last `>`.
    fn bytes(&self, node: Node<'_, '_>) -> Result<Vec<u8>, ConfigError> {
        self.text
            .as_bytes()
            .get(node.range())
            .map(<[u8]>::to_vec)
            .ok_or_else(|| self.invalid(node, "its position in the document is unknown"))
    }

    /// The text of an element that holds only text.
    fn text_of(&self, node: Node<'_, '_>) -> Result<String, ConfigError> {
        let mut s = String::new();
        for c in node.children() {
            if c.is_element() {
                return Err(self.invalid(
                    node,
                    format!("holds element <{}> where text was expected", c.tag_name().name()),
                ));
            }
            if let Some(t) = c.text()
                && c.is_text()
            {
                s.push_str(t);
            }
        }
        Ok(s)
    }

    /// The text with XML Schema's white space collapsed at the ends (the `collapse`
    /// facet of the grammar's numeric, boolean and base64 types).
    fn token(&self, node: Node<'_, '_>) -> Result<String, ConfigError> {
        Ok(self.text_of(node)?.trim().to_owned())
    }

    fn number<T: FromStr>(&self, node: Node<'_, '_>, range: &str) -> Result<T, ConfigError> {
        let t = self.token(node)?;
        t.parse::<T>()
            .map_err(|_| self.invalid(node, format!("{} is not an integer {range}", shown(&t))))
    }

    /// An `xsd:boolean`: `true`, `1`, `false` or `0` (§11.1).
    fn boolean(&self, node: Node<'_, '_>) -> Result<bool, ConfigError> {
        match self.token(node)?.as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            other => Err(self.invalid(node, format!("{} is not true, false, 1 or 0", shown(other)))),
        }
    }

    /// An `xsd:base64Binary`, white space anywhere ignored.
    fn base64(&self, node: Node<'_, '_>) -> Result<Vec<u8>, ConfigError> {
        let t: String = self
            .text_of(node)?
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        BASE64
            .decode(t.as_bytes())
            .map_err(|e| self.invalid(node, format!("not base64: {e}")))
    }

    fn node_id(&self, node: Node<'_, '_>) -> Result<NodeId, ConfigError> {
        let t = self.token(node)?;
        NodeId::from_hex(&t).ok_or_else(|| {
            self.invalid(
                node,
                format!(
                    "{} is not a Node-ID ({} hexadecimal digits)",
                    shown(&t),
                    2 * NODE_ID_LENGTH
                ),
            )
        })
    }
}

/// A child node as an error names it: `text "..."`, or `element <name>` with its
/// namespace if that is not the base one.
fn describe(node: Node<'_, '_>) -> String {
    if node.is_text() {
        format!("text {}", shown(node.text().unwrap_or("").trim()))
    } else {
        let n = node.tag_name();
        match n.namespace() {
            // roxmltree gives an element undeclared by xmlns="" the namespace "".
            None | Some("") => format!("element <{}> in no namespace", n.name()),
            Some(ns) if ns != NS_BASE => format!("element <{}> of namespace {ns}", n.name()),
            Some(_) => format!("element <{}>", n.name()),
        }
    }
}

/// Whether `node` is an element named `name` in `ns`.
fn is(node: Node<'_, '_>, ns: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().namespace() == Some(ns) && node.tag_name().name() == name
}

/// What a child node is, for the walk.
enum Child<'a> {
    /// White space, comments, processing instructions.
    Skip,
    /// Text that is not white space.
    Text,
    /// An element of a RELOAD namespace (base, chord, or RFC 7904's sip), or of none.
    Ours(Option<&'a str>, &'a str),
    /// An element of another namespace: an extension, skipped.
    Foreign,
}

/// Whether `ns` is one of the namespaces this module reads: RFC 6940's base and
/// chord ones and RFC 7904's sip one. The grammar's foreign-elements and
/// foreign-attributes exclude the same three (grammar/reload-config.rng).
fn is_ours(ns: &str) -> bool {
    ns == NS_BASE || ns == NS_CHORD || ns == NS_SIP
}

fn classify<'a>(node: Node<'a, '_>) -> Child<'a> {
    if node.is_text() {
        return if node.text().is_some_and(|t| t.trim().is_empty()) {
            Child::Skip
        } else {
            Child::Text
        };
    }
    if !node.is_element() {
        return Child::Skip;
    }
    let n = node.tag_name();
    match n.namespace() {
        Some(ns) if is_ours(ns) => Child::Ours(Some(ns), n.name()),
        None => Child::Ours(None, n.name()),
        Some(_) => Child::Foreign,
    }
}

/// Refuses attributes of `node` in no namespace or a RELOAD one, other than
/// `allowed`; others are extensions (§11.1 grammar: foreign-attributes).
fn check_attributes(r: &Reader<'_, '_>, node: Node<'_, '_>, allowed: &[&str]) -> Result<(), ConfigError> {
    for a in node.attributes() {
        let ours = match a.namespace() {
            None => !allowed.contains(&a.name()),
            Some(ns) => is_ours(ns),
        };
        if ours {
            return Err(ConfigError::Unexpected {
                what: format!("attribute {}", a.name()),
                parent: node.tag_name().name().to_owned(),
                line: r.line(node),
            });
        }
    }
    Ok(())
}

/// Reads the document into its configurations.
pub(super) fn parse_document(bytes: &[u8]) -> Result<Vec<SignedConfiguration>, ConfigError> {
    if bytes.len() > MAX_DOCUMENT_SIZE {
        return Err(ConfigError::TooLarge {
            size: bytes.len(),
            max: MAX_DOCUMENT_SIZE,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| ConfigError::NotUtf8(e.to_string()))?;
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: NODES_LIMIT,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(text, options).map_err(|e| ConfigError::Xml(e.to_string()))?;
    let r = Reader { doc: &doc, text };
    let root = doc.root_element();
    if !is(root, NS_BASE, "overlay") {
        let n = root.tag_name();
        return Err(ConfigError::NotAnOverlay {
            found: match n.namespace() {
                Some(ns) => format!("<{}> in namespace {ns}", n.name()),
                None => format!("<{}> in no namespace", n.name()),
            },
        });
    }
    check_attributes(&r, root, &[])?;
    let mut entries: Vec<SignedConfiguration> = Vec::new();
    for child in root.children() {
        match classify(child) {
            Child::Skip | Child::Foreign => {}
            Child::Text => return Err(r.unexpected(child, root)),
            Child::Ours(Some(NS_BASE), "configuration") => entries.push(configuration(&r, child)?),
            Child::Ours(Some(NS_BASE), "signature") => {
                check_attributes(&r, child, &["algorithm"])?;
                let block = r.base64(child)?;
                // §11.1: signature elements follow the configuration they sign.
                let last = entries.last_mut().ok_or_else(|| ConfigError::Unexpected {
                    what: "<signature> before any <configuration>".into(),
                    parent: "overlay".into(),
                    line: r.line(child),
                })?;
                last.signatures.push(block);
            }
            Child::Ours(..) => return Err(r.unexpected(child, root)),
        }
    }
    if entries.is_empty() {
        return Err(ConfigError::NoConfiguration);
    }
    Ok(entries)
}

/// Records that a once-only element was seen, or fails if it was already.
fn once(r: &Reader<'_, '_>, seen: &mut BTreeSet<String>, node: Node<'_, '_>, parent: &str) -> Result<(), ConfigError> {
    if seen.insert(node.tag_name().name().to_owned()) {
        Ok(())
    } else {
        Err(ConfigError::Duplicate {
            element: node.tag_name().name().to_owned(),
            parent: parent.to_owned(),
            line: r.line(node),
        })
    }
}

/// One `<configuration>` element.
fn configuration(r: &Reader<'_, '_>, node: Node<'_, '_>) -> Result<SignedConfiguration, ConfigError> {
    check_attributes(r, node, &["instance-name", "expiration", "sequence"])?;
    let name = node
        .attribute("instance-name")
        .ok_or_else(|| r.missing("instance-name attribute", node))?;
    let mut c = Configuration::new(name.trim());
    if c.instance_name.is_empty() {
        return Err(r.invalid(node, "instance-name is empty"));
    }
    if let Some(s) = node.attribute("sequence") {
        let s = s.trim();
        c.sequence = s
            .parse::<u16>()
            .ok()
            .filter(|v| *v < u16::MAX)
            .ok_or_else(|| r.invalid(node, format!("sequence {} is not between 0 and 2^16-2", shown(s))))?;
    }
    if let Some(s) = node.attribute("expiration") {
        let t = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339).map_err(|e| {
            r.invalid(
                node,
                format!("expiration {} is not an RFC 3339 date-time: {e}", shown(s)),
            )
        })?;
        c.expiration = Some(t.unix_timestamp());
    }
    let mut seen = BTreeSet::new();
    let mut kinds = Vec::new();
    for child in node.children() {
        let (ns, name) = match classify(child) {
            Child::Skip | Child::Foreign => continue,
            Child::Text => return Err(r.unexpected(child, node)),
            Child::Ours(ns, name) => (ns, name),
        };
        match (ns, name) {
            (Some(NS_BASE), "topology-plugin") => {
                once(r, &mut seen, child, "configuration")?;
                let t = r.token(child)?;
                if t != TOPOLOGY_PLUGIN {
                    return Err(r.unsupported(child, format!("only {TOPOLOGY_PLUGIN} is supported, not {}", shown(&t))));
                }
            }
            (Some(NS_BASE), "node-id-length") => {
                once(r, &mut seen, child, "configuration")?;
                let n: i64 = r.number(child, "(16 to 20)")?;
                if n != NODE_ID_LENGTH as i64 {
                    return Err(if (16..=20).contains(&n) {
                        r.unsupported(
                            child,
                            format!("only {NODE_ID_LENGTH}-byte Node-IDs are supported, not {n}"),
                        )
                    } else {
                        r.invalid(child, format!("{n} is not between 16 and 20 (RFC 6940 §11.1)"))
                    });
                }
            }
            (Some(NS_BASE), "root-cert") => {
                let der = r.base64(child)?;
                CertInfo::parse(&der).map_err(|e| r.invalid(child, format!("not a certificate: {e}")))?;
                TrustAnchors::new(vec![der.clone()])
                    .map_err(|e| r.invalid(child, format!("not usable as a trust anchor: {e}")))?;
                c.root_certs.push(der);
            }
            (Some(NS_BASE), "enrollment-server") => {
                let url = r.token(child)?;
                let https = url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")) && url.len() > 8;
                if !https || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(r.invalid(child, format!("{} is not an https: URL (RFC 6940 §11.1)", shown(&url))));
                }
                c.enrollment_servers.push(url);
            }
            (Some(NS_BASE), "self-signed-permitted") => {
                once(r, &mut seen, child, "configuration")?;
                check_attributes(r, child, &["digest"])?;
                let digest = child
                    .attribute("digest")
                    .ok_or_else(|| r.missing("digest attribute", child))?;
                c.self_signed_digest = NodeIdDigest::from_config_name(digest.trim())
                    .ok_or_else(|| r.unsupported(child, format!("digest {} is not sha1 or sha256", shown(digest))))?;
                c.self_signed_permitted = r.boolean(child)?;
            }
            (Some(NS_BASE), "bootstrap-node") => {
                check_attributes(r, child, &["address", "port"])?;
                let a = child
                    .attribute("address")
                    .ok_or_else(|| r.missing("address attribute", child))?;
                let ip = IpAddr::from_str(a.trim())
                    .map_err(|_| r.invalid(child, format!("address {} is not an IPv4 or IPv6 address", shown(a))))?;
                let port = match child.attribute("port") {
                    None => DEFAULT_BOOTSTRAP_PORT,
                    Some(p) => p
                        .trim()
                        .parse::<u16>()
                        .ok()
                        .filter(|p| *p != 0)
                        .ok_or_else(|| r.invalid(child, format!("port {} is not between 1 and 65535", shown(p))))?,
                };
                c.bootstrap_nodes.push(SocketAddr::new(ip, port));
            }
            (Some(NS_BASE), "turn-density") => {
                once(r, &mut seen, child, "configuration")?;
                c.turn_density = Some(r.number(child, "from 0 to 255")?);
            }
            (Some(NS_BASE), "clients-permitted") => {
                once(r, &mut seen, child, "configuration")?;
                c.clients_permitted = r.boolean(child)?;
            }
            (Some(NS_BASE), "no-ice") => {
                once(r, &mut seen, child, "configuration")?;
                c.no_ice = r.boolean(child)?;
            }
            (Some(NS_BASE), "shared-secret") => {
                once(r, &mut seen, child, "configuration")?;
                c.shared_secret = Some(r.text_of(child)?);
            }
            (Some(NS_BASE), "max-message-size") => {
                once(r, &mut seen, child, "configuration")?;
                let n: u32 = r.number(child, "from 1 to 2^32-1")?;
                if n == 0 {
                    return Err(r.invalid(child, "must be greater than 0"));
                }
                c.max_message_size = n;
            }
            (Some(NS_BASE), "initial-ttl") => {
                once(r, &mut seen, child, "configuration")?;
                let n: u8 = r.number(child, "from 1 to 255")?;
                if n == 0 {
                    return Err(r.invalid(child, "must be greater than 0"));
                }
                c.initial_ttl = n;
            }
            (Some(NS_BASE), "overlay-reliability-timer") => {
                once(r, &mut seen, child, "configuration")?;
                let n: u32 = r.number(child, "of milliseconds")?;
                if n < MIN_RELIABILITY_TIMER_MS || n > i32::MAX as u32 {
                    return Err(r.invalid(
                        child,
                        format!("{n} ms: it must be at least {MIN_RELIABILITY_TIMER_MS} ms (RFC 6940 §11.1)"),
                    ));
                }
                c.overlay_reliability_timer = n;
            }
            (Some(NS_BASE), "overlay-link-protocol") => {
                let t = r.token(child)?;
                if t.is_empty() {
                    return Err(r.invalid(child, "is empty"));
                }
                c.link_protocols.push(LinkProtocol::from_name(&t));
            }
            (Some(NS_BASE), "configuration-signer") => c.configuration_signers.push(r.node_id(child)?),
            (Some(NS_BASE), "kind-signer") => c.kind_signers.push(r.node_id(child)?),
            (Some(NS_BASE), "bad-node") => c.bad_nodes.push(r.node_id(child)?),
            (Some(NS_BASE), "mandatory-extension") => {
                // §11.1: the namespace is case-sensitive, and a node MUST support it.
                let ns = r.token(child)?;
                if !SUPPORTED_EXTENSIONS.contains(&ns.as_str()) {
                    return Err(r.unsupported(
                        child,
                        format!(
                            "the overlay requires extension {}, which this implementation does not support",
                            shown(&ns)
                        ),
                    ));
                }
                c.mandatory_extensions.push(ns);
            }
            (Some(NS_BASE), "required-kinds") => {
                once(r, &mut seen, child, "configuration")?;
                required_kinds(r, child, &mut c.required_kinds, &mut kinds)?;
            }
            (Some(NS_CHORD), "chord-update-interval") => {
                once(r, &mut seen, child, "configuration")?;
                c.chord_update_interval = Some(positive_int(r, child)?);
            }
            (Some(NS_CHORD), "chord-ping-interval") => {
                once(r, &mut seen, child, "configuration")?;
                c.chord_ping_interval = Some(positive_int(r, child)?);
            }
            (Some(NS_CHORD), "chord-reactive") => {
                once(r, &mut seen, child, "configuration")?;
                c.chord_reactive = r.boolean(child)?;
            }
            _ => return Err(r.unexpected(child, node)),
        }
    }
    Ok(SignedConfiguration {
        configuration: c,
        signed: r.bytes(node)?,
        signatures: Vec::new(),
        kinds,
    })
}

/// A CHORD-RELOAD interval in seconds: an `xsd:int` greater than 0.
fn positive_int(r: &Reader<'_, '_>, node: Node<'_, '_>) -> Result<u32, ConfigError> {
    let n: u32 = r.number(node, "of seconds")?;
    if n == 0 || n > i32::MAX as u32 {
        return Err(r.invalid(node, format!("{n} is not between 1 and 2^31-1 seconds")));
    }
    Ok(n)
}

/// `<required-kinds>`: its kind-blocks.
fn required_kinds(
    r: &Reader<'_, '_>,
    node: Node<'_, '_>,
    specs: &mut Vec<KindSpec>,
    signed: &mut Vec<SignedKind>,
) -> Result<(), ConfigError> {
    for child in node.children() {
        match classify(child) {
            Child::Skip | Child::Foreign => {}
            Child::Ours(Some(NS_BASE), "kind-block") => {
                let (spec, kind) = kind_block(r, child)?;
                if specs.iter().any(|s| s.id == spec.id) {
                    return Err(ConfigError::Duplicate {
                        element: format!("kind {}", spec.id.0),
                        parent: "required-kinds".into(),
                        line: r.line(child),
                    });
                }
                specs.push(spec);
                signed.push(kind);
            }
            _ => return Err(r.unexpected(child, node)),
        }
    }
    Ok(())
}

/// `<kind-block>`: one `<kind>` and its `<kind-signature>`.
fn kind_block(r: &Reader<'_, '_>, node: Node<'_, '_>) -> Result<(KindSpec, SignedKind), ConfigError> {
    let mut kind = None;
    let mut signature = None;
    let mut seen = BTreeSet::new();
    for child in node.children() {
        match classify(child) {
            Child::Skip | Child::Foreign => {}
            Child::Ours(Some(NS_BASE), "kind") => {
                once(r, &mut seen, child, "kind-block")?;
                kind = Some((kind_element(r, child)?, r.bytes(child)?));
            }
            Child::Ours(Some(NS_BASE), "kind-signature") => {
                once(r, &mut seen, child, "kind-block")?;
                check_attributes(r, child, &["algorithm"])?;
                signature = Some(r.base64(child)?);
            }
            _ => return Err(r.unexpected(child, node)),
        }
    }
    let (spec, bytes) = kind.ok_or_else(|| r.missing("<kind>", node))?;
    let signed = SignedKind {
        id: spec.id,
        signed: bytes,
        signature,
    };
    Ok((spec, signed))
}

/// A `<kind>` element.
fn kind_element(r: &Reader<'_, '_>, node: Node<'_, '_>) -> Result<KindSpec, ConfigError> {
    check_attributes(r, node, &["name", "id"])?;
    let mut model = None;
    let mut access = None;
    let mut max_count = None;
    let mut max_size = None;
    let mut max_node_multiple = None;
    let mut restriction = None;
    let mut seen = BTreeSet::new();
    let non_negative = |child: Node<'_, '_>| -> Result<u32, ConfigError> {
        let n: i64 = r.number(child, "")?;
        u32::try_from(n)
            .ok()
            .filter(|n| *n <= i32::MAX as u32)
            .ok_or_else(|| r.invalid(child, format!("{n} is not between 0 and 2^31-1")))
    };
    for child in node.children() {
        let name = match classify(child) {
            Child::Skip | Child::Foreign => continue,
            Child::Ours(Some(NS_BASE), name) => name,
            Child::Ours(Some(NS_SIP), "domain-restriction") => {
                once(r, &mut seen, child, "kind")?;
                restriction = Some((domain_restriction(r, child)?, child));
                continue;
            }
            _ => return Err(r.unexpected(child, node)),
        };
        match name {
            "data-model" => {
                once(r, &mut seen, child, "kind")?;
                model = Some(match r.token(child)?.as_str() {
                    "SINGLE" => DataModel::Single,
                    "ARRAY" => DataModel::Array,
                    "DICTIONARY" => DataModel::Dictionary,
                    other => return Err(r.unsupported(child, format!("data model {} is not supported", shown(other)))),
                });
            }
            "access-control" => {
                once(r, &mut seen, child, "kind")?;
                let t = r.token(child)?;
                match t.as_str() {
                    "USER-MATCH" | "NODE-MATCH" | "USER-NODE-MATCH" | "NODE-MULTIPLE" => access = Some((t, child)),
                    other => {
                        return Err(r.unsupported(child, format!("access control {} is not supported", shown(other))));
                    }
                }
            }
            "max-count" => {
                once(r, &mut seen, child, "kind")?;
                max_count = Some(non_negative(child)?);
            }
            "max-size" => {
                once(r, &mut seen, child, "kind")?;
                max_size = Some(non_negative(child)?);
            }
            "max-node-multiple" => {
                once(r, &mut seen, child, "kind")?;
                let n = non_negative(child)?;
                // AccessPolicy holds it in a byte; TURN-SERVICE's i is one byte (§9).
                let n = u8::try_from(n)
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| r.invalid(child, format!("{n} is not between 1 and 255")))?;
                max_node_multiple = Some(n);
            }
            _ => return Err(r.unexpected(child, node)),
        }
    }
    let model = model.ok_or_else(|| r.missing("<data-model>", node))?;
    let (access_name, access_node) = access.ok_or_else(|| r.missing("<access-control>", node))?;
    let max_count = max_count.ok_or_else(|| r.missing("<max-count>", node))?;
    let max_size = max_size.ok_or_else(|| r.missing("<max-size>", node))?;
    let policy = match access_name.as_str() {
        "USER-MATCH" => AccessPolicy::UserMatch,
        "NODE-MATCH" => AccessPolicy::NodeMatch,
        "USER-NODE-MATCH" => AccessPolicy::UserNodeMatch,
        _ => AccessPolicy::NodeMultiple {
            // §11.1: "If the access control is NODE-MULTIPLE, this element MUST be included."
            max: max_node_multiple
                .ok_or_else(|| r.missing("<max-node-multiple> (NODE-MULTIPLE needs it)", access_node))?,
        },
    };

    let registered = match (node.attribute("name"), node.attribute("id")) {
        (Some(_), Some(_)) => return Err(r.invalid(node, "has both a name and an id attribute; it may have one")),
        (None, None) => return Err(r.missing("name or id attribute", node)),
        (Some(name), None) => {
            let name = name.trim();
            Some(registered_by_name(name).ok_or_else(|| {
                r.unsupported(
                    node,
                    format!(
                        "Kind {} is not a registered Kind this implementation knows (SIP-REGISTRATION, TURN-SERVICE, \
                         CERTIFICATE_BY_NODE, CERTIFICATE_BY_USER); a private Kind is named by its id",
                        shown(name)
                    ),
                )
            })?)
        }
        (None, Some(id)) => {
            let id = id.trim().parse::<u32>().map_err(|_| {
                r.invalid(
                    node,
                    format!("id {} is not a Kind-ID (an unsigned 32-bit integer)", shown(id)),
                )
            })?;
            match registered_by_id(KindId(id)) {
                Some(reg) => Some(reg),
                None => {
                    return Ok(KindSpec {
                        id: KindId(id),
                        name: None,
                        data_model: model,
                        access_control: policy,
                        max_count,
                        max_size,
                        domain_restriction: sip_registration_only(r, KindId(id), restriction)?,
                    });
                }
            }
        }
    };
    let &(reg_name, id, reg_model, reg_policy) = registered.ok_or_else(|| r.missing("name or id attribute", node))?;
    // §11.1: for a registered Kind the document's data-model and access-control MUST
    // match the registration, and clients MUST ignore them in favor of it.
    if reg_model != model || std::mem::discriminant(&reg_policy) != std::mem::discriminant(&policy) {
        tracing::warn!(
            kind = reg_name,
            "the configuration gives a registered Kind another data model or access control; using the registration's"
        );
    }
    let access_control = match reg_policy {
        AccessPolicy::NodeMultiple { max } => AccessPolicy::NodeMultiple {
            max: max_node_multiple.unwrap_or(max),
        },
        other => other,
    };
    Ok(KindSpec {
        id,
        name: node.attribute("name").map(|_| reg_name.to_owned()),
        data_model: reg_model,
        access_control,
        max_count,
        max_size,
        domain_restriction: sip_registration_only(r, id, restriction)?,
    })
}

/// The `<sip:domain-restriction>` of a kind, if it had one, provided the kind is
/// SIP-REGISTRATION: RFC 7904 §3.4 defines it as a kind-parameter of the SIP
/// usage's Kind, and says nothing of what it would mean for another.
fn sip_registration_only(
    r: &Reader<'_, '_>,
    id: KindId,
    restriction: Option<(DomainRestrictionSpec, Node<'_, '_>)>,
) -> Result<Option<DomainRestrictionSpec>, ConfigError> {
    match restriction {
        None => Ok(None),
        Some((spec, _)) if id == KindId::SIP_REGISTRATION => Ok(Some(spec)),
        Some((_, element)) => {
            let kind = match registered_by_id(id) {
                Some(reg) => format!("{} (Kind-ID {})", reg.0, id.0),
                None => format!("kind {}", id.0),
            };
            Err(r.invalid(
                element,
                format!(
                    "RFC 7904 §3.4 defines it for the SIP-REGISTRATION Kind (Kind-ID {}) only, not for {kind}",
                    KindId::SIP_REGISTRATION.0
                ),
            ))
        }
    }
}

/// RFC 7904 §3.4: `<sip:domain-restriction enable="...">` and its `<sip:pattern>`s.
///
/// `enable` is an `xsd:boolean`; when it is absent the element means what
/// `enable="false"` does ("If the element is included and the enable attribute is
/// not set or set to false, the overlay MUST only accept AORs that match the domain
/// name of the overlay"). Patterns are kept as written, less white space at their
/// ends; an empty one, patterns under `enable="false"` ("A <pattern> element MAY be
/// present if the enable attribute of its parent element is set to true"), and any
/// child other than `<sip:pattern>` are refused.
fn domain_restriction(r: &Reader<'_, '_>, node: Node<'_, '_>) -> Result<DomainRestrictionSpec, ConfigError> {
    check_attributes(r, node, &["enable"])?;
    let enable = match node.attribute("enable") {
        None => false,
        Some(v) => match v.trim() {
            "true" | "1" => true,
            "false" | "0" => false,
            other => {
                return Err(r.invalid(node, format!("enable {} is not true, false, 1 or 0", shown(other))));
            }
        },
    };
    let mut patterns = Vec::new();
    for child in node.children() {
        match classify(child) {
            Child::Skip => {}
            Child::Ours(Some(NS_SIP), "pattern") => {
                check_attributes(r, child, &[])?;
                let pattern = r.token(child)?;
                if pattern.is_empty() {
                    return Err(r.invalid(
                        child,
                        "is empty; RFC 7904 §3.4 makes each pattern a regular expression for admissible AOR domains",
                    ));
                }
                if let Err(e) = reload_core::storage::DomainPattern::new(&pattern) {
                    return Err(r.invalid(child, format!("cannot be used: {}", e.why)));
                }
                patterns.push(pattern);
            }
            _ => {
                // Name the namespace even when it is the base one: a <pattern>
                // there is the likely mistake.
                let what = match child.tag_name().namespace() {
                    Some(NS_BASE) if child.is_element() => {
                        format!("element <{}> of namespace {NS_BASE}", child.tag_name().name())
                    }
                    _ => describe(child),
                };
                return Err(ConfigError::Invalid {
                    element: node.tag_name().name().to_owned(),
                    line: r.line(child),
                    reason: format!("holds {what}; RFC 7904 §3.4 allows only <sip:pattern> elements in it"),
                });
            }
        }
    }
    if !enable && !patterns.is_empty() {
        return Err(r.invalid(
            node,
            format!(
                "has {} <pattern> element(s) but enable is false or absent; RFC 7904 §3.4 allows patterns only when \
                 enable is true (otherwise only AORs in the overlay's own domain are accepted)",
                patterns.len()
            ),
        ));
    }
    Ok(DomainRestrictionSpec { enable, patterns })
}
