//! Property: whatever sequence of joins, leaves and crashes happens, once the
//! overlay has had time to stabilize the ring is correct, and every Resource-ID is
//! owned by exactly one live peer.

use std::time::Duration;

use proptest::prelude::*;
use reload_core::{Time, ring};
use reload_sim::{SimConfig, Simulator};

#[derive(Clone, Debug)]
enum Op {
    Join,
    Leave(usize),
    Crash(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Join),
        1 => any::<usize>().prop_map(Op::Leave),
        2 => any::<usize>().prop_map(Op::Crash),
    ]
}

fn at(s: f64) -> Time {
    Time::ZERO + Duration::from_secs_f64(s)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn any_churn_ends_in_a_correct_ring(seed in any::<u64>(), ops in proptest::collection::vec(op(), 1..20)) {
        let mut s = Simulator::new(SimConfig { seed, lookups: 0, ..SimConfig::default() });
        let mut alive: Vec<usize> = (0..5).map(|i| s.spawn(at(i as f64), false)).collect();
        let mut t = 10.0;
        s.run_until(at(t));
        for op in ops {
            t += 1.5;
            match &op {
                Op::Join => alive.push(s.spawn(at(t), false)),
                // Some ring member must survive to bootstrap from: if every peer a
                // node could bootstrap through is gone, it cannot rejoin (§11.4).
                Op::Leave(i) | Op::Crash(i) if s.ring_members().len() > 2 => {
                    let ring = s.ring_members();
                    let v = ring[*i % ring.len()];
                    alive.retain(|a| *a != v);
                    if matches!(op, Op::Leave(_)) {
                        s.leave_at(v, at(t));
                    } else {
                        s.crash_at(v, at(t));
                    }
                }
                _ => {}
            }
            s.run_until(at(t));
        }
        // Several update intervals (60 s, jittered) and finger refreshes.
        s.run_until(at(t + 600.0));
        let members = s.ring_members();
        let states: Vec<String> = alive
            .iter()
            .filter(|a| !members.contains(a))
            .map(|a| format!("{a}: {:?} {:?}", s.node(*a).state(), s.node(*a).stats()))
            .collect();
        prop_assert_eq!(members.len(), alive.len(), "every live peer is in the ring; outside: {:#?}", states);
        prop_assert_eq!(s.ring_errors(), Vec::<usize>::new());
        // Exactly one owner for points spread over the ring and at every peer's edge.
        let mut points: Vec<u128> = (0..64u128).map(|i| i.wrapping_mul(0x0400_0000_0000_0000_0000_0000_0000_0001)).collect();
        for m in &members {
            let p = ring::point(s.node(*m).node_id());
            points.extend([p, p.wrapping_add(1), p.wrapping_sub(1)]);
        }
        for p in points {
            let r = ring::resource_at(p);
            let owners = members.iter().filter(|m| s.node(**m).is_responsible(&r)).count();
            prop_assert_eq!(owners, 1, "point {:#x}", p);
        }
    }
}
