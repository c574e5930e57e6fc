//! # reload-core
//!
//! A RELOAD node (RFC 6940) as a sans-IO state machine, in the style of
//! quinn-proto: no sockets, no clock, no global randomness. The runtime (real
//! sockets, or the simulator) hands the [`Node`] what happened — a link came up, a
//! message arrived, a timer fired — and polls what the node wants done: messages
//! to send, links to open or close, events for the application.
//!
//! - [`node`]: message transport (§6.1, §6.2), transactions and retransmission,
//!   Attach, Join, Leave, Update, RouteQuery, Ping and Probe handling.
//! - [`chord`]: CHORD-RELOAD's routing state (§10).
//! - [`ring`]: 128-bit ring arithmetic and the Resource-ID hash.
//! - [`crypto`]: the signing trait, with an insecure stand-in for simulation.

pub mod chord;
pub mod config;
pub mod crypto;
pub mod fragmentation;
pub mod node;
pub mod ring;
pub mod stats;
pub mod storage;
pub mod time;
pub mod topology;

pub use chord::{Chord, NeighborTable};
pub use config::NodeConfig;
pub use crypto::{CertificateCrypto, MessageCrypto, StandInCrypto};
pub use node::{Action, Answer, Event, Failure, LinkId, Node, RequestId, State, Transmit};
pub use stats::Stats;
pub use time::Time;
pub use topology::{Interest, Topology};
