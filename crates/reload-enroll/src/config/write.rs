//! Writing the configuration document (RFC 6940 §11.1) as XML, by careful string
//! building: every value is checked to be representable and escaped, and the bytes
//! of each `<kind>` and `<configuration>` element are known exactly when they are
//! signed.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reload_core::storage::AccessPolicy;
use reload_trust::NodeIdDigest;
use reload_wire::{DataModel, KindId, hex};

use super::sign::ConfigSigner;
use super::{
    ConfigError, Configuration, DEFAULT_RELIABILITY_TIMER_MS, KindSpec, MIN_RELIABILITY_TIMER_MS, NODE_ID_LENGTH,
    NS_BASE, NS_CHORD, NS_SIP, TOPOLOGY_PLUGIN, registered_by_id, registered_by_name,
};

/// Base64 longer than this is wrapped, 64 characters a line.
const BASE64_LINE: usize = 64;

/// Whether every character of `s` may appear in an XML 1.0 document (§2.2 of XML
/// 1.0: no control characters other than tab, newline and carriage return, and not
/// U+FFFE or U+FFFF).
fn xml_chars(s: &str) -> bool {
    s.chars()
        .all(|c| matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}' && c != '\u{7F}'))
}

/// Text content with `&`, `<` and `>` escaped.
fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // A literal CR would be normalized to LF by the reader (XML 1.0 §2.11).
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// An attribute value (in double quotes) with its special characters escaped;
/// white space other than the space is written as character references, since a
/// reader normalizes literal tabs and newlines in attributes to spaces.
fn escape_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// `<name>base64</name>` at `indent`, wrapped when long.
fn base64_element(out: &mut String, indent: &str, name: &str, data: &[u8]) {
    let b64 = BASE64.encode(data);
    if b64.len() <= BASE64_LINE {
        let _ = writeln!(out, "{indent}<{name}>{b64}</{name}>");
        return;
    }
    let _ = writeln!(out, "{indent}<{name}>");
    for line in b64.as_bytes().chunks(BASE64_LINE) {
        // Base64 is ASCII, so every chunk is a str.
        let _ = writeln!(out, "{indent}  {}", String::from_utf8_lossy(line));
    }
    let _ = writeln!(out, "{indent}</{name}>");
}

/// The `data-model` name (§7.2).
pub(super) fn data_model_name(m: DataModel) -> &'static str {
    match m {
        DataModel::Single => "SINGLE",
        DataModel::Array => "ARRAY",
        DataModel::Dictionary => "DICTIONARY",
    }
}

/// The `digest` attribute value (§11.1).
pub(super) fn digest_name(d: NodeIdDigest) -> &'static str {
    match d {
        NodeIdDigest::Sha1 => "sha1",
        NodeIdDigest::Sha256 => "sha256",
    }
}

fn invalid(what: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Write(format!("{what}: {}", reason.into()))
}

/// Largest value of the grammar's `xsd:int`.
const XSD_INT_MAX: u32 = i32::MAX as u32;

impl KindSpec {
    /// Checks that the Kind can be written and read back as the same Kind.
    fn check(&self) -> Result<(), ConfigError> {
        let what = format!("kind {}", self.id.0);
        if let Some(name) = &self.name {
            match registered_by_name(name) {
                Some(reg) if reg.1 == self.id => {}
                Some(reg) => {
                    return Err(invalid(
                        &what,
                        format!("{name} is Kind-ID {}, not {}", reg.1.0, self.id.0),
                    ));
                }
                None => return Err(invalid(&what, format!("{name:?} is not a registered Kind name"))),
            }
        } else if let Some(reg) = registered_by_id(self.id)
            && (reg.2 != self.data_model
                || std::mem::discriminant(&reg.3) != std::mem::discriminant(&self.access_control))
        {
            return Err(invalid(
                &what,
                format!("{} is registered with another data model or policy", reg.0),
            ));
        }
        if self.max_count > XSD_INT_MAX || self.max_size > XSD_INT_MAX {
            return Err(invalid(&what, "max-count and max-size must fit in 31 bits (xsd:int)"));
        }
        if let AccessPolicy::NodeMultiple { max: 0 } = self.access_control {
            return Err(invalid(
                &what,
                "max-node-multiple must be greater than 0 (RFC 6940 §11.1)",
            ));
        }
        if let Some(restriction) = &self.domain_restriction {
            if self.id != KindId::SIP_REGISTRATION {
                return Err(invalid(
                    &what,
                    "only SIP-REGISTRATION may have a sip:domain-restriction (RFC 7904 §3.4)",
                ));
            }
            if !restriction.enable && !restriction.patterns.is_empty() {
                return Err(invalid(
                    &what,
                    "sip:domain-restriction has patterns but enable is false; RFC 7904 §3.4 allows patterns only \
                     when enable is true",
                ));
            }
            for p in &restriction.patterns {
                // The reader trims a pattern's ends, so they must not be white space.
                if p.is_empty() || !xml_chars(p) || p.trim() != p {
                    return Err(invalid(
                        &what,
                        format!(
                            "sip:pattern {p:?} is not a domain pattern (not empty, no white space at its ends, \
                             no characters XML cannot carry)"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The `<kind>` element, from its `<` to its last `>`, its inner lines indented
    /// by `indent` plus two spaces: the exact bytes its kind-signature covers.
    pub(super) fn element(&self, indent: &str) -> String {
        let mut k = String::new();
        match &self.name {
            Some(name) => {
                let _ = writeln!(k, "<kind name=\"{}\">", escape_attr(name));
            }
            None => {
                let _ = writeln!(k, "<kind id=\"{}\">", self.id.0);
            }
        }
        let i = format!("{indent}  ");
        let _ = writeln!(k, "{i}<data-model>{}</data-model>", data_model_name(self.data_model));
        let _ = writeln!(k, "{i}<access-control>{}</access-control>", self.access_control.name());
        let _ = writeln!(k, "{i}<max-count>{}</max-count>", self.max_count);
        let _ = writeln!(k, "{i}<max-size>{}</max-size>", self.max_size);
        if let AccessPolicy::NodeMultiple { max } = self.access_control {
            let _ = writeln!(k, "{i}<max-node-multiple>{max}</max-node-multiple>");
        }
        // RFC 7904 §3.4. The sip prefix is declared on the element itself, so the
        // signed bytes of the kind carry their own namespace binding.
        if let Some(restriction) = &self.domain_restriction {
            let _ = write!(
                k,
                "{i}<sip:domain-restriction xmlns:sip=\"{NS_SIP}\" enable=\"{}\"",
                restriction.enable
            );
            if restriction.patterns.is_empty() {
                k.push_str("/>\n");
            } else {
                k.push_str(">\n");
                for p in &restriction.patterns {
                    let _ = writeln!(k, "{i}  <sip:pattern>{}</sip:pattern>", escape_text(p));
                }
                let _ = writeln!(k, "{i}</sip:domain-restriction>");
            }
        }
        let _ = write!(k, "{indent}</kind>");
        k
    }
}

impl Configuration {
    /// Checks that every value can be written and read back unchanged: the overlay
    /// name is not empty and has no white space or control characters, the sequence
    /// is below 2^16-1, enrollment servers are https URLs, the numbers are within
    /// the ranges §11.1 and the grammar allow, and the Kinds are consistent.
    pub fn check(&self) -> Result<(), ConfigError> {
        let name = &self.instance_name;
        if name.is_empty() || name.len() > 253 || !xml_chars(name) || name.chars().any(char::is_whitespace) {
            return Err(invalid(
                "instance-name",
                format!("{name:?} is not an overlay name (1 to 253 characters, no white space or control characters)"),
            ));
        }
        if self.sequence == u16::MAX {
            return Err(invalid("sequence", "must be between 0 and 2^16-2 (RFC 6940 §11.1)"));
        }
        if let Some(e) = self.expiration
            && time::OffsetDateTime::from_unix_timestamp(e).is_err()
        {
            return Err(invalid("expiration", format!("{e} is not a representable time")));
        }
        for url in &self.enrollment_servers {
            let ok = url.len() > "https://".len()
                && url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://"))
                && xml_chars(url)
                && !url.chars().any(char::is_whitespace);
            if !ok {
                return Err(invalid(
                    "enrollment-server",
                    format!("{url:?} is not an https: URL (RFC 6940 §11.1)"),
                ));
            }
        }
        for b in &self.bootstrap_nodes {
            if b.port() == 0 {
                return Err(invalid("bootstrap-node", format!("{b}: port 0")));
            }
        }
        if self.max_message_size == 0 {
            return Err(invalid("max-message-size", "must be greater than 0"));
        }
        if self.initial_ttl == 0 {
            return Err(invalid("initial-ttl", "must be greater than 0"));
        }
        if !(MIN_RELIABILITY_TIMER_MS..=XSD_INT_MAX).contains(&self.overlay_reliability_timer) {
            return Err(invalid(
                "overlay-reliability-timer",
                format!("must be at least {MIN_RELIABILITY_TIMER_MS} ms (RFC 6940 §11.1)"),
            ));
        }
        for (what, v) in [
            ("chord-update-interval", self.chord_update_interval),
            ("chord-ping-interval", self.chord_ping_interval),
        ] {
            if let Some(v) = v
                && !(1..=XSD_INT_MAX).contains(&v)
            {
                return Err(invalid(what, "must be between 1 and 2^31-1 seconds"));
            }
        }
        if let Some(s) = &self.shared_secret
            && !xml_chars(s)
        {
            return Err(invalid("shared-secret", "has characters XML cannot carry"));
        }
        for p in &self.link_protocols {
            let n = p.name();
            if n.is_empty() || !xml_chars(n) || n.chars().any(char::is_whitespace) {
                return Err(invalid(
                    "overlay-link-protocol",
                    format!("{n:?} is not a protocol name"),
                ));
            }
        }
        for ext in &self.mandatory_extensions {
            if ext.is_empty() || !xml_chars(ext) || ext.chars().any(char::is_whitespace) {
                return Err(invalid(
                    "mandatory-extension",
                    format!("{ext:?} is not a namespace name"),
                ));
            }
        }
        let mut ids = BTreeSet::new();
        for k in &self.required_kinds {
            k.check()?;
            if !ids.insert(k.id) {
                return Err(invalid("required-kinds", format!("kind {} is listed twice", k.id.0)));
            }
        }
        Ok(())
    }

    /// The `<configuration>` element, from its `<` to the `>` of
    /// `</configuration>`: the exact bytes its signature covers. Kinds are signed
    /// by `signer` if one is given.
    fn configuration_element(&self, signer: Option<&ConfigSigner>) -> Result<String, ConfigError> {
        let mut c = String::new();
        let _ = write!(
            c,
            "<configuration instance-name=\"{}\" sequence=\"{}\"",
            escape_attr(&self.instance_name),
            self.sequence
        );
        if let Some(e) = self.expiration {
            let t = time::OffsetDateTime::from_unix_timestamp(e)
                .ok()
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                .ok_or_else(|| invalid("expiration", format!("{e} is not a representable time")))?;
            let _ = write!(c, " expiration=\"{t}\"");
        }
        c.push_str(">\n");
        let i = "    ";
        let _ = writeln!(c, "{i}<topology-plugin>{TOPOLOGY_PLUGIN}</topology-plugin>");
        let _ = writeln!(c, "{i}<node-id-length>{NODE_ID_LENGTH}</node-id-length>");
        for root in &self.root_certs {
            base64_element(&mut c, i, "root-cert", root);
        }
        for url in &self.enrollment_servers {
            let _ = writeln!(c, "{i}<enrollment-server>{}</enrollment-server>", escape_text(url));
        }
        // §11.1: "Otherwise, it SHOULD be absent".
        if self.self_signed_permitted {
            let _ = writeln!(
                c,
                "{i}<self-signed-permitted digest=\"{}\">true</self-signed-permitted>",
                digest_name(self.self_signed_digest)
            );
        }
        for b in &self.bootstrap_nodes {
            // IpAddr's Display is RFC 5952's form, as §11.1 asks.
            let _ = writeln!(c, "{i}<bootstrap-node address=\"{}\" port=\"{}\"/>", b.ip(), b.port());
        }
        if let Some(t) = self.turn_density {
            let _ = writeln!(c, "{i}<turn-density>{t}</turn-density>");
        }
        let _ = writeln!(
            c,
            "{i}<clients-permitted>{}</clients-permitted>",
            self.clients_permitted
        );
        let _ = writeln!(c, "{i}<no-ice>{}</no-ice>", self.no_ice);
        if let Some(s) = self.chord_update_interval {
            let _ = writeln!(c, "{i}<chord:chord-update-interval>{s}</chord:chord-update-interval>");
        }
        if let Some(s) = self.chord_ping_interval {
            let _ = writeln!(c, "{i}<chord:chord-ping-interval>{s}</chord:chord-ping-interval>");
        }
        let _ = writeln!(
            c,
            "{i}<chord:chord-reactive>{}</chord:chord-reactive>",
            self.chord_reactive
        );
        if let Some(s) = &self.shared_secret {
            let _ = writeln!(c, "{i}<shared-secret>{}</shared-secret>", escape_text(s));
        }
        let _ = writeln!(c, "{i}<max-message-size>{}</max-message-size>", self.max_message_size);
        let _ = writeln!(c, "{i}<initial-ttl>{}</initial-ttl>", self.initial_ttl);
        // The RFC's grammar lacks this element (see grammar/reload-config.rng), so
        // it is written only when it says something.
        if self.overlay_reliability_timer != DEFAULT_RELIABILITY_TIMER_MS {
            let _ = writeln!(
                c,
                "{i}<overlay-reliability-timer>{}</overlay-reliability-timer>",
                self.overlay_reliability_timer
            );
        }
        for p in &self.link_protocols {
            let _ = writeln!(
                c,
                "{i}<overlay-link-protocol>{}</overlay-link-protocol>",
                escape_text(p.name())
            );
        }
        for (name, ids) in [
            ("configuration-signer", &self.configuration_signers),
            ("kind-signer", &self.kind_signers),
            ("bad-node", &self.bad_nodes),
        ] {
            for id in ids {
                let _ = writeln!(c, "{i}<{name}>{}</{name}>", hex::encode(id.as_bytes()));
            }
        }
        for ext in &self.mandatory_extensions {
            let _ = writeln!(c, "{i}<mandatory-extension>{}</mandatory-extension>", escape_text(ext));
        }
        if !self.required_kinds.is_empty() {
            let _ = writeln!(c, "{i}<required-kinds>");
            for kind in &self.required_kinds {
                let _ = writeln!(c, "{i}  <kind-block>");
                let element = kind.element(&format!("{i}    "));
                let _ = writeln!(c, "{i}    {element}");
                if let Some(signer) = signer {
                    let block = signer.security_block(element.as_bytes(), &self.root_certs)?;
                    base64_element(&mut c, &format!("{i}    "), "kind-signature", &block);
                }
                let _ = writeln!(c, "{i}  </kind-block>");
            }
            let _ = writeln!(c, "{i}</required-kinds>");
        }
        c.push_str("  </configuration>");
        Ok(c)
    }

    /// The whole document: an `<overlay>` holding this configuration and, if a
    /// signer is given, its `<signature>` and a `<kind-signature>` in every
    /// kind-block (§11.1). Without a signer the document is unsigned, for overlays
    /// whose configuration is distributed by other means and for tests.
    pub fn to_document(&self, signer: Option<&ConfigSigner>) -> Result<String, ConfigError> {
        self.check()?;
        let configuration = self.configuration_element(signer)?;
        let mut doc = String::with_capacity(configuration.len() + 512);
        doc.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(doc, "<overlay xmlns=\"{NS_BASE}\"\n    xmlns:chord=\"{NS_CHORD}\">");
        let _ = writeln!(doc, "  {configuration}");
        if let Some(signer) = signer {
            let block = signer.security_block(configuration.as_bytes(), &self.root_certs)?;
            base64_element(&mut doc, "  ", "signature", &block);
        }
        doc.push_str("</overlay>\n");
        Ok(doc)
    }
}
