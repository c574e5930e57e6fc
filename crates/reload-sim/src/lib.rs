//! # reload-sim
//!
//! A discrete-event simulator for RELOAD overlays. Thousands of unmodified
//! [`reload_core::Node`]s run in one process on a virtual clock; the simulator
//! plays the network (latency, jitter, loss, link setup and failure detection),
//! the churn (joins, crashes, graceful leaves) and the workload (lookups), and
//! writes a report. One seed reproduces a run exactly.
//!
//! Security uses [`reload_core::StandInCrypto`], an insecure stand-in: the report says so.

pub mod config;
pub mod network;
pub mod report;
pub mod sim;

pub use config::{Churn, Latency, SessionTimes, SimConfig};
pub use report::{RecoverySample, Report, StorageReport};
pub use sim::{ScriptedStore, Simulator, StorageOutcome, Ticket};
