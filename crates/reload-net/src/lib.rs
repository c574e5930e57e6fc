//! # reload-net
//!
//! The runtime around the sans-IO [`reload_core::Node`]. For now it holds the
//! peer's persistence: [`persist::RedbBackend`] keeps what the peer stores in a
//! redb database, so nothing is lost on restart (RFC 6940 §7; DESIGN.md: "Nothing
//! is lost on restart"). Sockets, links and timers come later.
//!
//! The rule the runtime follows with persistence on
//! ([`reload_core::NodeConfig::persist_storage`]):
//!
//! 1. after feeding the node anything (a message, a timeout, a request of the
//!    application), take [`reload_core::Node::take_storage_changes`];
//! 2. [`apply`](reload_core::storage::StorageBackend::apply) them to the backend,
//!    which returns once they are on disk;
//! 3. only then send the node's transmits and report its answers.
//!
//! On start, [`load`](reload_core::storage::StorageBackend::load) the records and
//! hand them to [`reload_core::Node::restore_storage`] before
//! [`reload_core::Node::start`].

pub mod dtls;
pub mod framed;
pub mod keylog;
pub mod link;
pub mod persist;
pub mod runtime;
pub mod security;
pub mod tls;

pub use persist::{Loaded, RedbBackend, RedbError};
