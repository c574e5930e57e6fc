//! The node's registrar for its local phones (RFC 3261 §10.3): which contacts
//! each AOR has on this node, and when the AOR's SIP-REGISTRATION value in the
//! overlay must be stored again or removed (RFC 7904 §3).
//!
//! One value per AOR per node goes into the overlay (the dictionary key is the
//! Node-ID, RFC 7904 §3.2); the node forks to the AOR's contacts itself. So the
//! overlay value is stored when an AOR gets its first contact, re-stored only
//! when its overlay lifetime would run out before a contact's expiry, and
//! removed when the last contact goes.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::proxy::Peer;

/// Longest registration accepted, in seconds; a phone asking for more gets this.
pub const MAX_EXPIRES: u32 = 86_400;
/// Default registration expiry when the phone names none (RFC 3261 §10.2.1.1).
pub const DEFAULT_EXPIRES: u32 = 3_600;

/// One contact of an AOR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The contact URI as the phone gave it.
    pub uri: String,
    /// Where the REGISTER came from: requests for the contact go there, which
    /// also works through a NAT (RFC 5626 §5).
    pub source: Peer,
    /// When it expires.
    pub expires_at: Instant,
    /// Call-ID of the REGISTER that made or refreshed it (RFC 3261 §10.3 step 7).
    pub call_id: String,
    /// Its CSeq.
    pub cseq: u32,
}

/// What the overlay value of an AOR needs after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlayAction {
    /// Nothing: the stored value still covers every contact.
    None,
    /// Store (or re-store) the value with this lifetime, in seconds.
    Store(u32),
    /// Remove the value: the AOR has no contacts left.
    Remove,
}

/// A REGISTER's contact, as the registrar takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactUpdate {
    /// The contact URI.
    pub uri: String,
    /// Seconds; 0 removes.
    pub expires: u32,
}

#[derive(Debug, Default)]
struct Aor {
    bindings: Vec<Binding>,
    /// Until when the overlay holds our value, if it does.
    stored_until: Option<Instant>,
}

/// Who sent a REGISTER, and in which order (RFC 3261 §10.3 step 7).
#[derive(Debug, Clone)]
pub struct RegisterFrom<'a> {
    /// Where it came from.
    pub source: &'a Peer,
    /// Its Call-ID.
    pub call_id: &'a str,
    /// Its CSeq number.
    pub cseq: u32,
}

/// Why a REGISTER changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// Same Call-ID with a CSeq not above the binding's (RFC 3261 §10.3 step 7).
    #[error("CSeq {0} is not above the registration's {1} for this Call-ID")]
    OutOfOrder(u32, u32),
}

/// The local bindings of every AOR this node serves.
#[derive(Debug, Default)]
pub struct Bindings {
    aors: HashMap<String, Aor>,
    /// When some binding of an AOR expires, earliest first; an entry may be
    /// stale (the binding was refreshed), which costs one look.
    expiries: BTreeSet<(Instant, String)>,
}

impl Bindings {
    /// The live contacts of `aor`.
    pub fn contacts(&self, aor: &str, now: Instant) -> Vec<Binding> {
        self.aors
            .get(aor)
            .map(|a| a.bindings.iter().filter(|b| b.expires_at > now).cloned().collect())
            .unwrap_or_default()
    }

    /// Whether any AOR has a live contact with this URI's host and port; the
    /// binding found.
    pub fn by_contact(&self, matches: impl Fn(&Binding) -> bool, now: Instant) -> Option<Binding> {
        self.aors
            .values()
            .flat_map(|a| a.bindings.iter())
            .find(|b| b.expires_at > now && matches(b))
            .cloned()
    }

    /// Applies a REGISTER (RFC 3261 §10.3 steps 6–8). `remove_all` is `Contact: *`.
    pub fn register(
        &mut self,
        now: Instant,
        aor: &str,
        from: &RegisterFrom<'_>,
        contacts: &[ContactUpdate],
        remove_all: bool,
    ) -> Result<OverlayAction, RegisterError> {
        let entry = self.aors.entry(aor.to_owned()).or_default();
        if remove_all {
            entry.bindings.clear();
        }
        for c in contacts {
            if let Some(b) = entry.bindings.iter().find(|b| b.uri == c.uri)
                && b.call_id == from.call_id
                && from.cseq <= b.cseq
            {
                return Err(RegisterError::OutOfOrder(from.cseq, b.cseq));
            }
        }
        for c in contacts {
            entry.bindings.retain(|b| b.uri != c.uri);
            if c.expires > 0 {
                let expires_at = now + Duration::from_secs(u64::from(c.expires.min(MAX_EXPIRES)));
                self.expiries.insert((expires_at, aor.to_owned()));
                entry.bindings.push(Binding {
                    uri: c.uri.clone(),
                    source: from.source.clone(),
                    expires_at,
                    call_id: from.call_id.to_owned(),
                    cseq: from.cseq,
                });
            }
        }
        Ok(self.overlay_action(aor, now))
    }

    /// Drops expired contacts; returns the AORs whose overlay value must go.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let mut gone = Vec::new();
        while let Some((at, aor)) = self.expiries.first().cloned() {
            if at > now {
                break;
            }
            self.expiries.pop_first();
            let Some(a) = self.aors.get_mut(&aor) else {
                continue;
            };
            a.bindings.retain(|b| b.expires_at > now);
            if a.bindings.is_empty() {
                if a.stored_until.is_some() {
                    gone.push(aor);
                } else {
                    self.aors.remove(&aor);
                }
            }
        }
        gone
    }

    /// The earliest contact expiry, for the sweep timer.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.expiries.first().map(|(at, _)| *at)
    }

    /// Records that the overlay now holds the AOR's value for `lifetime` seconds.
    pub fn stored(&mut self, aor: &str, now: Instant, lifetime: u32) {
        if let Some(a) = self.aors.get_mut(aor) {
            a.stored_until = Some(now + Duration::from_secs(u64::from(lifetime)));
        }
    }

    /// Records that the overlay no longer holds the AOR's value.
    pub fn removed(&mut self, aor: &str) {
        if let Some(a) = self.aors.get_mut(aor) {
            a.stored_until = None;
            if a.bindings.is_empty() {
                self.aors.remove(aor);
            }
        }
    }

    /// What the overlay value needs now. The value is stored for twice the
    /// longest contact's remaining time, so a phone refreshing on schedule
    /// re-signs and re-stores every other refresh at most, never on each one.
    fn overlay_action(&self, aor: &str, now: Instant) -> OverlayAction {
        let Some(a) = self.aors.get(aor) else {
            return OverlayAction::None;
        };
        let Some(last) = a.bindings.iter().map(|b| b.expires_at).max() else {
            return match a.stored_until {
                Some(_) => OverlayAction::Remove,
                None => OverlayAction::None,
            };
        };
        let remaining = last.saturating_duration_since(now).as_secs().max(1);
        match a.stored_until {
            Some(until) if until >= last => OverlayAction::None,
            _ => OverlayAction::Store(u32::try_from(remaining * 2).unwrap_or(u32::MAX)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::Transport;

    fn phone() -> Peer {
        Peer::Sip {
            transport: Transport::Udp,
            addr: "127.0.0.1:5071".parse().expect("addr"),
        }
    }

    fn from(source: &Peer, cseq: u32) -> RegisterFrom<'_> {
        RegisterFrom {
            source,
            call_id: "c1",
            cseq,
        }
    }

    fn contact(uri: &str, expires: u32) -> ContactUpdate {
        ContactUpdate {
            uri: uri.into(),
            expires,
        }
    }

    #[test]
    fn a_refresh_within_the_stored_lifetime_stores_nothing() {
        let mut b = Bindings::default();
        let p = phone();
        let t0 = Instant::now();
        let first = b.register(t0, "a@x", &from(&p, 1), &[contact("sip:a@h", 3600)], false);
        assert_eq!(first, Ok(OverlayAction::Store(7200)));
        b.stored("a@x", t0, 7200);
        let refresh = b.register(
            t0 + Duration::from_secs(1800),
            "a@x",
            &from(&p, 2),
            &[contact("sip:a@h", 3600)],
            false,
        );
        assert_eq!(refresh, Ok(OverlayAction::None));
        // Past the stored lifetime's reach, it is stored again.
        let late = b.register(
            t0 + Duration::from_secs(3700),
            "a@x",
            &from(&p, 3),
            &[contact("sip:a@h", 3600)],
            false,
        );
        assert_eq!(late, Ok(OverlayAction::Store(7200)));
    }

    #[test]
    fn the_last_contact_going_removes_the_value() {
        let mut b = Bindings::default();
        let p = phone();
        let t0 = Instant::now();
        let _ = b.register(
            t0,
            "a@x",
            &from(&p, 1),
            &[contact("sip:a@h", 60), contact("sip:a@k", 60)],
            false,
        );
        b.stored("a@x", t0, 120);
        assert_eq!(b.contacts("a@x", t0).len(), 2);
        let one = b.register(t0, "a@x", &from(&p, 2), &[contact("sip:a@h", 0)], false);
        assert_eq!(one, Ok(OverlayAction::None));
        let all = b.register(t0, "a@x", &from(&p, 3), &[], true);
        assert_eq!(all, Ok(OverlayAction::Remove));
        assert!(b.contacts("a@x", t0).is_empty());
    }

    #[test]
    fn expiry_and_order() {
        let mut b = Bindings::default();
        let p = phone();
        let t0 = Instant::now();
        let _ = b.register(t0, "a@x", &from(&p, 5), &[contact("sip:a@h", 10)], false);
        b.stored("a@x", t0, 20);
        assert_eq!(
            b.register(t0, "a@x", &from(&p, 4), &[contact("sip:a@h", 10)], false),
            Err(RegisterError::OutOfOrder(4, 5))
        );
        assert_eq!(b.next_expiry(), Some(t0 + Duration::from_secs(10)));
        assert_eq!(b.expire(t0 + Duration::from_secs(11)), vec!["a@x".to_owned()]);
        b.removed("a@x");
        assert_eq!(b.next_expiry(), None);
    }
}
