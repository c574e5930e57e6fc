//! The access control policies (RFC 6940 §7.3): whether a signer may write a value
//! at a Resource-ID.

use reload_wire::{NodeId, ResourceId, StoredDataValue};

use crate::ring::hash_resource_name;

/// An access control policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessPolicy {
    /// §7.3.1: the Resource-ID is the hash of the signer's user name.
    UserMatch,
    /// §7.3.2: the Resource-ID is the hash of the signer's Node-ID.
    NodeMatch,
    /// §7.3.3: USER-MATCH, and the dictionary key is the signer's Node-ID.
    UserNodeMatch,
    /// §7.3.4: the Resource-ID is H(Node-ID || i) for some i in 1..=max.
    NodeMultiple {
        /// The largest i.
        max: u8,
    },
}

impl AccessPolicy {
    /// The policy's name in the configuration document (§14.4).
    pub fn name(self) -> &'static str {
        match self {
            AccessPolicy::UserMatch => "USER-MATCH",
            AccessPolicy::NodeMatch => "NODE-MATCH",
            AccessPolicy::UserNodeMatch => "USER-NODE-MATCH",
            AccessPolicy::NodeMultiple { .. } => "NODE-MULTIPLE",
        }
    }
}

/// Who signed, as the certificate behind the signature says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signer {
    /// The Node-ID the SignerIdentity indicates.
    pub node_id: NodeId,
    /// The certificate's user name (rfc822Name), if any.
    pub user: Option<String>,
}

/// Whether `signer` may write `value` at `resource` under `policy` (§7.3).
pub fn permits(policy: AccessPolicy, resource: &ResourceId, value: &StoredDataValue, signer: &Signer) -> bool {
    let user_matches = || {
        signer
            .user
            .as_deref()
            .is_some_and(|u| &hash_resource_name(u.as_bytes()) == resource)
    };
    match policy {
        AccessPolicy::UserMatch => user_matches(),
        AccessPolicy::NodeMatch => &hash_resource_name(&signer.node_id.0) == resource,
        AccessPolicy::UserNodeMatch => {
            user_matches()
                && matches!(value, StoredDataValue::Dictionary { key, .. } if key.as_slice() == signer.node_id.0)
        }
        AccessPolicy::NodeMultiple { max } => (1..=max).any(|i| {
            let mut name = signer.node_id.0.to_vec();
            // i is not on the wire (§7.3.4); TURN-SERVICE's is a one-byte iteration (§9).
            name.push(i);
            &hash_resource_name(&name) == resource
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reload_wire::DataValue;

    fn signer() -> Signer {
        Signer {
            node_id: NodeId([7; 16]),
            user: Some("alice@example.org".into()),
        }
    }

    fn single() -> StoredDataValue {
        StoredDataValue::Single {
            value: DataValue::new(b"v".to_vec()),
        }
    }

    #[test]
    fn user_match() {
        let r = hash_resource_name(b"alice@example.org");
        assert!(permits(AccessPolicy::UserMatch, &r, &single(), &signer()));
        let other = hash_resource_name(b"bob@example.org");
        assert!(!permits(AccessPolicy::UserMatch, &other, &single(), &signer()));
        let anonymous = Signer { user: None, ..signer() };
        assert!(!permits(AccessPolicy::UserMatch, &r, &single(), &anonymous));
    }

    #[test]
    fn node_match() {
        let r = hash_resource_name(&[7; 16]);
        assert!(permits(AccessPolicy::NodeMatch, &r, &single(), &signer()));
        assert!(!permits(
            AccessPolicy::NodeMatch,
            &hash_resource_name(&[8; 16]),
            &single(),
            &signer()
        ));
    }

    #[test]
    fn user_node_match_needs_the_node_id_as_key() {
        let r = hash_resource_name(b"alice@example.org");
        let entry = |key: Vec<u8>| StoredDataValue::Dictionary {
            key,
            value: DataValue::new(b"route".to_vec()),
        };
        assert!(permits(AccessPolicy::UserNodeMatch, &r, &entry(vec![7; 16]), &signer()));
        assert!(!permits(
            AccessPolicy::UserNodeMatch,
            &r,
            &entry(vec![8; 16]),
            &signer()
        ));
        assert!(
            !permits(AccessPolicy::UserNodeMatch, &r, &single(), &signer()),
            "dictionaries only"
        );
    }

    #[test]
    fn node_multiple_tries_every_i_up_to_the_maximum() {
        let mut name = vec![7; 16];
        name.push(5);
        let r = hash_resource_name(&name);
        assert!(permits(
            AccessPolicy::NodeMultiple { max: 20 },
            &r,
            &single(),
            &signer()
        ));
        assert!(!permits(
            AccessPolicy::NodeMultiple { max: 4 },
            &r,
            &single(),
            &signer()
        ));
    }
}
