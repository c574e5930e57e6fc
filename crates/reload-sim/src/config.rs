//! What to simulate.

use std::time::Duration;

use serde::Serialize;

/// Per-pair one-way latency.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum Latency {
    /// The same for every pair.
    Constant {
        /// One-way delay in milliseconds.
        ms: f64,
    },
    /// Drawn once per pair of nodes, uniformly in [min, max].
    Uniform {
        /// Smallest one-way delay, ms.
        min_ms: f64,
        /// Largest one-way delay, ms.
        max_ms: f64,
    },
    /// Nodes are placed in groups; the matrix gives one-way delay between groups.
    Matrix {
        /// Square matrix, ms.
        ms: Vec<Vec<f64>>,
    },
}

/// How long sessions last under churn.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "distribution", rename_all = "snake_case")]
pub enum SessionTimes {
    /// Exponential with this median.
    Exponential {
        /// Median session, seconds.
        median_s: f64,
    },
    /// Pareto (shape alpha) with this median.
    Pareto {
        /// Median session, seconds.
        median_s: f64,
        /// Shape.
        alpha: f64,
    },
}

/// Nodes coming and going while the workload runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Churn {
    /// Session length distribution; a node that ends a session is replaced by a new one.
    pub sessions: SessionTimes,
    /// Fraction of departures that are graceful Leaves rather than crashes.
    pub graceful_fraction: f64,
}

/// A simulation run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimConfig {
    /// Seed of everything random.
    pub seed: u64,
    /// Peers in the overlay.
    pub nodes: usize,
    /// Clients attached to the overlay.
    pub clients: usize,
    /// New peers per second while the ring is built.
    pub join_rate: f64,
    /// Lookups to run once the ring is built (0 with `duration` for time-bound runs).
    pub lookups: usize,
    /// Lookups per second across the overlay.
    pub lookup_rate: f64,
    /// Simulated time to run after the ring is built, if longer than the lookups need.
    pub duration: Duration,
    /// Latency model.
    pub latency: Latency,
    /// Extra random delay per message, uniform in [0, jitter].
    pub jitter_ms: f64,
    /// Probability that a message is lost.
    pub loss: f64,
    /// How long until a node notices that the far end of a link is gone (link-layer
    /// failure detection, §6.6.3.1: RTO 500 ms doubled three times).
    pub failure_detection: Duration,
    /// Churn while the workload runs.
    pub churn: Option<Churn>,
    /// Scripted crash: this fraction of peers crashes at `crash_at` after the ring is built.
    pub crash_fraction: f64,
    /// When the scripted crash happens, measured from the end of the build.
    pub crash_at: Duration,
    /// chord-update-interval.
    pub update_interval: Duration,
    /// chord-ping-interval.
    pub ping_interval: Duration,
    /// overlay-reliability-timer.
    pub reliability_timer: Duration,
    /// How often the report samples ring correctness.
    pub sample_interval: Duration,
    /// Time after the last join before the workload starts, for stabilization.
    pub settle: Duration,
    /// Link MTU: larger messages are fragmented (§6.7). `None`: stream links.
    pub mtu: Option<usize>,
    /// Padding bytes in each lookup's Ping (to exercise fragmentation).
    pub ping_padding: usize,
    /// How often each peer checks for a partition (§10.7.4.4).
    pub partition_check_interval: Duration,
    /// Values to store once the ring is built (TURN-SERVICE entries at H(Node-ID || i),
    /// NODE-MULTIPLE), from random peers; with `crash_fraction` the report says how
    /// many stay fetchable after the crash.
    pub values: usize,
    /// Link failures: expected failures per link per hour while the workload runs
    /// (both ends stay up; the link breaks and both notice after failure detection).
    pub link_failures_per_hour: f64,
    /// Peers persist what they store (in memory, as a real peer does on disk), so
    /// [`Simulator::restart_at`](crate::Simulator::restart_at) brings a crashed peer
    /// back with its data.
    pub persist: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            nodes: 100,
            clients: 0,
            join_rate: 100.0,
            lookups: 1000,
            lookup_rate: 1000.0,
            duration: Duration::ZERO,
            latency: Latency::Uniform {
                min_ms: 5.0,
                max_ms: 50.0,
            },
            jitter_ms: 1.0,
            loss: 0.0,
            failure_detection: Duration::from_millis(3500),
            churn: None,
            crash_fraction: 0.0,
            crash_at: Duration::from_secs(10),
            update_interval: Duration::from_secs(60),
            ping_interval: Duration::from_secs(300),
            reliability_timer: Duration::from_millis(3000),
            sample_interval: Duration::from_secs(10),
            settle: Duration::from_secs(30),
            mtu: None,
            ping_padding: 0,
            partition_check_interval: Duration::from_secs(300),
            link_failures_per_hour: 0.0,
            values: 0,
            persist: false,
        }
    }
}
