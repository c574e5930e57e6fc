//! Hand-over of stored data while peers join (RFC 6940 §10.5 step 6, §10.7.3):
//! after many joins around stored values, each value sits on the peer now
//! responsible for it and on exactly two more (its replicas), nowhere else.

mod common;

use common::{secs, sim};
use reload_core::ring;

/// Eight peers store a value each, then forty more join one by one.
fn values_after_joins(seed: u64) {
    let mut s = sim(seed);
    let first: Vec<usize> = (0..8).map(|i| s.spawn(secs(i as f64), false)).collect();
    s.run_until(secs(30.0));
    for (k, p) in first.iter().enumerate() {
        s.store_own_at(*p, secs(31.0 + 0.1 * k as f64));
    }
    s.run_until(secs(40.0));
    for i in 0..40 {
        s.spawn(secs(41.0 + i as f64), false);
    }
    s.run_until(secs(150.0));
    assert!(s.ring_errors().is_empty(), "seed {seed}: the ring is correct");
    for p in &first {
        let r = ring::hash_resource_name(&s.node(*p).node_id().0);
        let owner = s.owner_of(ring::resource_point(&r)).expect("an owner");
        let holders: Vec<usize> = s
            .ring_members()
            .into_iter()
            .filter(|m| s.node(*m).data_store().holds(&r))
            .collect();
        assert!(
            s.node(owner).data_store().holds(&r),
            "seed {seed}: the responsible peer {owner} took the value of {p} over; holders {holders:?}"
        );
        assert_eq!(
            holders.len(),
            3,
            "seed {seed}: the value of {p} has three copies: {holders:?}"
        );
    }
}

#[test]
fn joining_peers_take_over_their_values_and_copies_stay_three() {
    for seed in 5..9 {
        values_after_joins(seed);
    }
}
