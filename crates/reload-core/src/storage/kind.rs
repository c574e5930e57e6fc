//! Kinds (RFC 6940 §7.4.5, §11.1): what may be stored under a Kind-ID, in which
//! data model, by whom, and how much.

use std::collections::BTreeMap;

use reload_wire::{DataModel, DataModels, KindId};

use super::access::AccessPolicy;
use super::domain_restriction::DomainRestriction;

/// A Kind's definition, as the configuration document gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindDef {
    /// The Kind-ID.
    pub id: KindId,
    /// Its registered name, if any.
    pub name: String,
    /// The data model.
    pub model: DataModel,
    /// Who may write.
    pub policy: AccessPolicy,
    /// Most values per Resource-ID (`max-count`).
    pub max_count: u32,
    /// Largest value in bytes (`max-size`).
    pub max_size: u32,
}

/// The Kinds an overlay defines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KindRegistry {
    kinds: BTreeMap<KindId, KindDef>,
    /// Kinds whose Resource Names must be AORs of admitted domains (RFC 7904 §3.3,
    /// §3.4: SIP-REGISTRATION's `<sip:domain-restriction>`).
    domains: BTreeMap<KindId, DomainRestriction>,
}

impl KindRegistry {
    /// The Kinds of RFC 6940 itself: CERTIFICATE_BY_NODE and CERTIFICATE_BY_USER
    /// (§8, arrays, NODE-MATCH and USER-MATCH) and TURN-SERVICE (§9, single value,
    /// NODE-MULTIPLE with at most 20). Limits are generous defaults that a
    /// configuration document overrides.
    pub fn builtin() -> Self {
        let mut r = KindRegistry::default();
        r.add(KindDef {
            id: KindId::CERTIFICATE_BY_NODE,
            name: "CERTIFICATE_BY_NODE".into(),
            model: DataModel::Array,
            policy: AccessPolicy::NodeMatch,
            max_count: 10,
            max_size: 8192,
        });
        r.add(KindDef {
            id: KindId::CERTIFICATE_BY_USER,
            name: "CERTIFICATE_BY_USER".into(),
            model: DataModel::Array,
            policy: AccessPolicy::UserMatch,
            max_count: 10,
            max_size: 8192,
        });
        r.add(KindDef {
            id: KindId::TURN_SERVICE,
            name: "TURN-SERVICE".into(),
            model: DataModel::Single,
            policy: AccessPolicy::NodeMultiple { max: 20 },
            max_count: 1,
            max_size: 100,
        });
        r
    }

    /// Adds or replaces a Kind (a usage registering its Kind, or a ConfigUpdate).
    pub fn add(&mut self, kind: KindDef) {
        self.kinds.insert(kind.id, kind);
    }

    /// Restricts the domains of `id`'s Resource Names (RFC 7904 §3.4); applies to
    /// Kinds whose access policy names a user (USER-MATCH, USER-NODE-MATCH), whose
    /// user name is the Resource Name.
    pub fn restrict_domains(&mut self, id: KindId, restriction: DomainRestriction) {
        if restriction == DomainRestriction::Any {
            self.domains.remove(&id);
        } else {
            self.domains.insert(id, restriction);
        }
    }

    /// The domain restriction of `id`'s Resource Names; `Any` unless one was set.
    pub fn domain_restriction(&self, id: KindId) -> &DomainRestriction {
        static ANY: DomainRestriction = DomainRestriction::Any;
        self.domains.get(&id).unwrap_or(&ANY)
    }

    /// The definition of `id`.
    pub fn get(&self, id: KindId) -> Option<&KindDef> {
        self.kinds.get(&id)
    }

    /// Every Kind.
    pub fn iter(&self) -> impl Iterator<Item = &KindDef> {
        self.kinds.values()
    }

    /// The data models, as the codec needs them.
    pub fn data_models(&self) -> DataModels {
        let mut m = DataModels::empty();
        for k in self.kinds.values() {
            m.insert(k.id, k.model);
        }
        m
    }
}
