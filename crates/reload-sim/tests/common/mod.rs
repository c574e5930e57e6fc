//! Helpers the simulator's scenario tests share.

use std::time::Duration;

use reload_core::Time;
use reload_sim::{SimConfig, Simulator};

/// A simulator with the default network and no lookup workload: the test scripts
/// everything.
pub fn sim(seed: u64) -> Simulator {
    Simulator::new(SimConfig {
        seed,
        lookups: 0,
        ..SimConfig::default()
    })
}

/// `s` seconds into the simulation.
pub fn secs(s: f64) -> Time {
    Time::ZERO + Duration::from_secs_f64(s)
}
