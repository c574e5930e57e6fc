//! Whole-overlay behaviour in the simulator.

use reload_sim::{SimConfig, Simulator};

fn run(nodes: usize, lookups: usize, seed: u64) -> reload_sim::Report {
    let cfg = SimConfig {
        nodes,
        lookups,
        seed,
        ..SimConfig::default()
    };
    Simulator::new(cfg).run(|_| {})
}

#[test]
fn a_small_ring_answers_every_lookup_from_the_responsible_peer() {
    let r = run(50, 500, 7);
    eprintln!(
        "{}\n{:#?}\n{:?}\n{:?}",
        r.summary(),
        r.node_totals,
        r.lookups.success_over_time,
        r.ring_correctness
    );
    assert_eq!(r.peers_joined_at_build, 50);
    assert_eq!(r.lookups.succeeded, 500, "{}", r.summary());
    assert_eq!(r.lookups.correct_responder_rate, 1.0, "{}", r.summary());
    assert_eq!(r.ring_correctness.last().map(|s| s.correct), Some(1.0));
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let cfg = SimConfig {
        nodes: 40,
        lookups: 300,
        seed: 11,
        loss: 0.01,
        churn: Some(reload_sim::Churn {
            sessions: reload_sim::SessionTimes::Exponential { median_s: 60.0 },
            graceful_fraction: 0.3,
        }),
        duration: std::time::Duration::from_secs(120),
        lookup_rate: 5.0,
        ..SimConfig::default()
    };
    let a = Simulator::new(cfg.clone()).run(|_| {}).deterministic_json();
    let b = Simulator::new(cfg.clone()).run(|_| {}).deterministic_json();
    assert_eq!(a, b);
    let other = Simulator::new(SimConfig { seed: 12, ..cfg })
        .run(|_| {})
        .deterministic_json();
    assert_ne!(a, other, "another seed is another run");
}

#[test]
fn broken_links_between_live_peers_are_repaired() {
    let r = Simulator::new(SimConfig {
        nodes: 60,
        lookups: 600,
        lookup_rate: 1.0,
        seed: 21,
        link_failures_per_hour: 6.0,
        duration: std::time::Duration::from_secs(600),
        ..SimConfig::default()
    })
    .run(|_| {});
    assert!(r.link_failures > 100, "{}", r.summary());
    assert!(r.lookups.success_rate >= 0.99, "{}", r.summary());
    assert_eq!(
        r.ring_correctness.last().map(|s| s.correct),
        Some(1.0),
        "{}",
        r.summary()
    );
}

#[test]
fn every_value_with_a_surviving_copy_is_fetchable_after_a_crash() {
    let r = Simulator::new(SimConfig {
        nodes: 100,
        lookups: 0,
        values: 500,
        crash_fraction: 0.2,
        seed: 31,
        ..SimConfig::default()
    })
    .run(|_| {});
    let s = r.storage.clone().expect("a storage report");
    assert!(s.values_stored >= 490, "{s:?}");
    assert_eq!(s.fetchable, s.with_live_copy, "{s:?}");
    assert!(s.fetchable_rate > 0.97, "{s:?}");
    // §10.7.3: the survivors re-replicate, so values are back to about three copies.
    assert!(s.mean_live_copies > 2.9, "{s:?}");
}
