//! Which Resource Names a Kind admits by their domain: the AOR domain
//! restriction of RFC 7904 §3.3 and §3.4.
//!
//! A storing peer "MUST check that the AOR of the request is a valid Resource Name
//! with respect to the namespaces defined in the overlay configuration document"
//! (§3.3). Under USER-NODE-MATCH the AOR is the user name in the signer's
//! certificate, which the access policy has already tied to the Resource-ID, so
//! the check is on that name's domain: [`DomainRestriction::admits_name`].

use std::collections::HashSet;

/// Why a domain pattern is not understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("domain pattern {pattern:?}: {why}")]
pub struct PatternError {
    /// The pattern.
    pub pattern: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// One admissible domain: an exact domain name (`dht.example.com`), a glob for
/// its subdomains (`*.my.example`), or a POSIX extended regular expression as
/// RFC 7904 §3.4 writes them (`dht\.example\.com`, `.*\.my\.example`), matched
/// against the whole domain, ignoring case. Of the ERE syntax, literals, `\`
/// escapes, `.`, bracket expressions, the `*`, `+` and `?` quantifiers, `|`
/// between whole alternatives and the `^`/`$` anchors are understood; groups and
/// bounds are refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainPattern {
    source: String,
    kind: PatternKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum PatternKind {
    Exact(String),
    Subdomains(String),
    Regex(Vec<Vec<Piece>>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Atom {
    Any,
    Char(char),
    Class { negated: bool, ranges: Vec<(char, char)> },
}

impl Atom {
    fn matches(&self, c: char) -> bool {
        match self {
            Atom::Any => true,
            Atom::Char(x) => *x == c,
            Atom::Class { negated, ranges } => ranges.iter().any(|(a, b)| (*a..=*b).contains(&c)) != *negated,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Piece {
    atom: Atom,
    min: usize,
    max: Option<usize>,
}

impl DomainPattern {
    /// Reads a pattern (see the type's documentation).
    pub fn new(pattern: &str) -> Result<Self, PatternError> {
        let err = |why| PatternError {
            pattern: pattern.to_owned(),
            why,
        };
        let p = pattern.trim();
        if p.is_empty() {
            return Err(err("empty"));
        }
        let kind = if let Some(suffix) = p.strip_prefix("*.") {
            if suffix.contains(['*', '\\', '[', '|', '(', '+', '?']) {
                return Err(err("a '*.' glob is followed by a plain domain"));
            }
            PatternKind::Subdomains(format!(".{}", suffix.to_ascii_lowercase()))
        } else if p.contains(['\\', '*', '+', '?', '[', '|', '^', '$', '(', ')', '{', '}']) {
            PatternKind::Regex(compile(&p.to_lowercase()).map_err(err)?)
        } else {
            PatternKind::Exact(p.to_ascii_lowercase())
        };
        Ok(DomainPattern {
            source: pattern.to_owned(),
            kind,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `domain` matches, ignoring case.
    pub fn matches(&self, domain: &str) -> bool {
        let domain = domain.to_lowercase();
        match &self.kind {
            PatternKind::Exact(d) => *d == domain,
            PatternKind::Subdomains(suffix) => domain.len() > suffix.len() && domain.ends_with(suffix.as_str()),
            PatternKind::Regex(branches) => {
                let chars: Vec<char> = domain.chars().collect();
                // Domain names are short (255 bytes); longer input never matches.
                chars.len() <= 255 && branches.iter().any(|b| match_pieces(b, &chars))
            }
        }
    }
}

fn compile(p: &str) -> Result<Vec<Vec<Piece>>, &'static str> {
    let mut branches: Vec<Vec<Piece>> = vec![Vec::new()];
    let mut chars = p.chars().peekable();
    let mut at_start = true;
    while let Some(c) = chars.next() {
        let atom = match c {
            '^' if at_start => continue,
            '$' if chars.peek().is_none_or(|n| *n == '|') => continue,
            '|' => {
                branches.push(Vec::new());
                at_start = true;
                continue;
            }
            '(' | ')' | '{' | '}' => return Err("groups and bounds are not supported"),
            '*' | '+' | '?' => {
                let Some(last) = branches.last_mut().and_then(|b| b.last_mut()) else {
                    return Err("a quantifier follows nothing");
                };
                if last.min != 1 || last.max != Some(1) {
                    return Err("two quantifiers in a row");
                }
                (last.min, last.max) = match c {
                    '*' => (0, None),
                    '+' => (1, None),
                    _ => (0, Some(1)),
                };
                continue;
            }
            '.' => Atom::Any,
            '\\' => Atom::Char(chars.next().ok_or("a '\\' ends the pattern")?),
            '[' => {
                let negated = chars.peek() == Some(&'^');
                if negated {
                    chars.next();
                }
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    let c = chars.next().ok_or("'[' without ']'")?;
                    if c == ']' && !first {
                        break;
                    }
                    first = false;
                    if chars.peek() == Some(&'-') {
                        let mut ahead = chars.clone();
                        ahead.next();
                        if let Some(&end) = ahead.peek()
                            && end != ']'
                        {
                            chars.next();
                            chars.next();
                            if end < c {
                                return Err("a range ends before it starts");
                            }
                            ranges.push((c, end));
                            continue;
                        }
                    }
                    ranges.push((c, c));
                }
                Atom::Class { negated, ranges }
            }
            other => Atom::Char(other),
        };
        at_start = false;
        if let Some(b) = branches.last_mut() {
            b.push(Piece {
                atom,
                min: 1,
                max: Some(1),
            });
        }
    }
    Ok(branches)
}

/// Whether `pieces` match all of `s`: backtracking, with the failures remembered
/// so that no (piece, position) pair is tried twice.
fn match_pieces(pieces: &[Piece], s: &[char]) -> bool {
    fn go(pieces: &[Piece], s: &[char], i: usize, pos: usize, failed: &mut HashSet<(usize, usize)>) -> bool {
        let Some(p) = pieces.get(i) else {
            return pos == s.len();
        };
        if failed.contains(&(i, pos)) {
            return false;
        }
        let mut n = 0;
        while pos + n < s.len() && p.max.is_none_or(|m| n < m) && p.atom.matches(s[pos + n]) {
            n += 1;
        }
        let ok = n >= p.min && (p.min..=n).rev().any(|k| go(pieces, s, i + 1, pos + k, failed));
        if !ok {
            failed.insert((i, pos));
        }
        ok
    }
    go(pieces, s, 0, 0, &mut HashSet::new())
}

/// Which AOR domains the overlay serves (RFC 7904 §3.4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DomainRestriction {
    /// Any AOR (no `<domain-restriction>` element).
    #[default]
    Any,
    /// Only the overlay's own name, lowercase (`<domain-restriction enable="false">`).
    OverlayOnly(String),
    /// Only domains matching one of these patterns (`enable="true"`).
    Patterns(Vec<DomainPattern>),
}

impl DomainRestriction {
    /// The restriction a configuration document states (§3.4): no element, any
    /// AOR; `enable="false"`, the overlay's own name; `enable="true"`, the patterns.
    pub fn from_config(element: Option<(bool, &[String])>, overlay: &str) -> Result<Self, PatternError> {
        Ok(match element {
            None => DomainRestriction::Any,
            Some((false, _)) => DomainRestriction::OverlayOnly(overlay.to_ascii_lowercase()),
            Some((true, patterns)) => DomainRestriction::Patterns(
                patterns
                    .iter()
                    .map(|p| DomainPattern::new(p))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    /// Whether AORs of `domain` are admitted.
    pub fn admits_domain(&self, domain: &str) -> bool {
        match self {
            DomainRestriction::Any => true,
            DomainRestriction::OverlayOnly(overlay) => domain.eq_ignore_ascii_case(overlay),
            DomainRestriction::Patterns(p) => p.iter().any(|p| p.matches(domain)),
        }
    }

    /// Whether the Resource Name `name`, an AOR (`user@domain`), is admitted: its
    /// domain is what follows its last '@'. A name without one has no domain and
    /// passes only when any AOR does.
    pub fn admits_name(&self, name: &str) -> bool {
        match self {
            DomainRestriction::Any => true,
            _ => name.rsplit_once('@').is_some_and(|(_, d)| self.admits_domain(d)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_decides_what_is_admitted() {
        let patterns = [r"dht\.example\.com".to_string(), r".*\.my\.example".to_string()];
        let any = DomainRestriction::from_config(None, "overlay.example").expect("no element");
        assert!(any.admits_name("alice@anywhere.org"));
        assert!(any.admits_name("no-domain"));
        let own = DomainRestriction::from_config(Some((false, &[])), "Overlay.Example").expect("own name");
        assert!(own.admits_name("alice@overlay.example"));
        assert!(own.admits_name("alice@OVERLAY.example"));
        assert!(!own.admits_name("alice@other.example"));
        assert!(!own.admits_name("overlay.example"), "a name without '@' has no domain");
        let listed = DomainRestriction::from_config(Some((true, &patterns)), "overlay.example").expect("patterns");
        assert!(listed.admits_name("bob@dht.example.com"));
        assert!(listed.admits_name("carol@a.b.my.example"));
        assert!(!listed.admits_name("dave@overlay.example"));
        assert!(!listed.admits_name("eve@dhtxexample.com"), "'.' escaped is a dot");
        // A decoded user part may hold '@': the domain follows the last one.
        assert!(listed.admits_name("a@b@dht.example.com"));
        assert!(DomainRestriction::from_config(Some((true, &["(a|b)".to_string()])), "o").is_err());
    }
}
