//! Storage (RFC 6940 §7): Kinds and their limits, the access control policies, and
//! the local data store with the three data models.
//!
//! The store is pure state: it applies Store, Fetch, Stat and Find to what a peer
//! holds, after the caller has checked signatures and the access policy. Wiring
//! it into the node (responsibility, replication, hand-over) builds on it.

pub mod access;
pub mod domain_restriction;
pub mod kind;
pub mod persist;
pub mod store;

pub use access::{AccessPolicy, Signer};
pub use domain_restriction::{DomainPattern, DomainRestriction, PatternError};
pub use kind::{KindDef, KindRegistry};
pub use persist::{MemoryBackend, RestoreSummary, StorageBackend, StorageChange};
pub use store::{DataStore, StoreError};
