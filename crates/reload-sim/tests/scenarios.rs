//! Deterministic scenarios in rings of 1 to 50 peers: join, stabilization, leave,
//! neighbor and finger failure, clients, and garbage fed to a node.

mod common;

use common::{secs, sim};
use std::time::Duration;

use reload_core::State;
use reload_sim::{SimConfig, Simulator};

/// Spawns `n` peers `gap` seconds apart, starting at `t0`.
fn spawn_peers(s: &mut Simulator, n: usize, t0: f64, gap: f64) -> Vec<usize> {
    (0..n).map(|i| s.spawn(secs(t0 + gap * i as f64), false)).collect()
}

/// Sends a lookup for each of `count` spread targets from rotating origins and
/// checks that the true owner answered every one.
fn lookups_reach_owners(s: &mut Simulator, origins: &[usize], count: usize) {
    let start = s.now();
    let before = s.lookup_outcomes().len();
    for i in 0..count {
        let target = (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
        let origin = origins[i % origins.len()];
        s.lookup_at(origin, target, start + Duration::from_millis(10 * i as u64));
    }
    s.run_until(start + Duration::from_secs(30));
    let outcomes = &s.lookup_outcomes()[before..];
    assert_eq!(outcomes.len(), count, "every lookup finished");
    for (origin, target, responder) in outcomes {
        assert_eq!(*responder, s.owner_of(*target), "lookup from {origin} for {target:#x}");
    }
}

#[test]
fn a_lone_peer_owns_the_whole_ring() {
    let mut s = sim(1);
    let a = s.spawn(secs(0.0), false);
    s.run_until(secs(5.0));
    assert_eq!(s.node(a).state(), State::Joined);
    assert!(s.ring_errors().is_empty());
    lookups_reach_owners(&mut s, &[a], 5);
}

#[test]
fn peers_joining_one_by_one_form_a_correct_ring() {
    for n in [2, 3, 5, 10, 50] {
        let mut s = sim(n as u64);
        let peers = spawn_peers(&mut s, n, 0.0, 2.0);
        s.run_until(secs(2.0 * n as f64 + 20.0));
        assert_eq!(s.ring_members().len(), n, "{n} peers joined");
        assert_eq!(s.ring_errors(), Vec::<usize>::new(), "ring of {n}");
        lookups_reach_owners(&mut s, &peers, 40);
    }
}

#[test]
fn simultaneous_joins_stabilize() {
    let mut s = sim(3);
    let first = s.spawn(secs(0.0), false);
    // Thirty peers join through the same bootstrap in the same 100 ms.
    let mut peers = vec![first];
    peers.extend(spawn_peers(&mut s, 30, 1.0, 0.003));
    // chord-update-interval is 60 s in the simulator; allow a few rounds.
    s.run_until(secs(300.0));
    assert_eq!(s.ring_members().len(), 31);
    assert_eq!(s.ring_errors(), Vec::<usize>::new());
    lookups_reach_owners(&mut s, &peers, 60);
}

#[test]
fn a_graceful_leave_heals_the_ring_at_once() {
    let mut s = sim(4);
    let peers = spawn_peers(&mut s, 20, 0.0, 1.0);
    s.run_until(secs(60.0));
    assert!(s.ring_errors().is_empty());
    let leaver = peers[7];
    s.leave_at(leaver, secs(61.0));
    // Well within one update interval: the Leave itself repairs the neighbors.
    s.run_until(secs(66.0));
    assert_eq!(s.ring_members().len(), 19);
    assert_eq!(s.ring_errors(), Vec::<usize>::new());
    let alive: Vec<usize> = peers.into_iter().filter(|p| *p != leaver).collect();
    lookups_reach_owners(&mut s, &alive, 40);
}

#[test]
fn a_crashed_neighbor_is_replaced() {
    let mut s = sim(5);
    let peers = spawn_peers(&mut s, 20, 0.0, 1.0);
    s.run_until(secs(60.0));
    let victim = peers[3];
    s.crash_at(victim, secs(61.0));
    // Failure detection takes 3.5 s; reactive recovery does the rest.
    s.run_until(secs(75.0));
    assert!(!s.is_alive(victim));
    assert_eq!(s.ring_errors(), Vec::<usize>::new());
    let alive: Vec<usize> = peers.into_iter().filter(|p| *p != victim).collect();
    lookups_reach_owners(&mut s, &alive, 40);
}

#[test]
fn crashes_of_many_fingers_and_neighbors_are_survived() {
    let mut s = sim(6);
    let peers = spawn_peers(&mut s, 50, 0.0, 0.5);
    s.run_until(secs(60.0));
    // Every third peer crashes at once: many fingers, and some adjacent neighbors.
    let victims: Vec<usize> = peers.iter().copied().step_by(3).collect();
    for v in &victims {
        s.crash_at(*v, secs(61.0));
    }
    s.run_until(secs(200.0));
    assert_eq!(s.ring_members().len(), 50 - victims.len());
    assert_eq!(s.ring_errors(), Vec::<usize>::new());
    let alive: Vec<usize> = peers.into_iter().filter(|p| !victims.contains(p)).collect();
    for p in &alive {
        // §10.7.2: no finger may point at a dead peer once failures are detected.
        for f in s.node(*p).fingers().into_iter().flatten() {
            assert!(
                !victims.iter().any(|v| s.node(*v).node_id() == f),
                "stale finger at {p}"
            );
        }
    }
    lookups_reach_owners(&mut s, &alive, 60);
}

#[test]
fn a_client_uses_the_overlay_without_joining_the_ring() {
    let mut s = sim(7);
    let peers = spawn_peers(&mut s, 10, 0.0, 1.0);
    let client = s.spawn(secs(20.0), true);
    s.run_until(secs(40.0));
    assert_eq!(s.node(client).state(), State::Joined);
    // A client is never a ring member: no peer routes through or stores at it.
    assert_eq!(s.ring_members().len(), 10);
    assert_eq!(s.ring_errors(), Vec::<usize>::new());
    for p in &peers {
        assert!(!s.node(*p).topology().contains(s.node(client).node_id()));
    }
    lookups_reach_owners(&mut s, &[client], 20);
}

#[test]
fn a_client_whose_peer_crashes_reattaches() {
    let mut s = sim(8);
    spawn_peers(&mut s, 10, 0.0, 1.0);
    let client = s.spawn(secs(20.0), true);
    s.run_until(secs(40.0));
    let attached_to: Vec<usize> = s
        .ring_members()
        .into_iter()
        .filter(|p| s.node(client).links().any(|(_, id)| id == s.node(*p).node_id()))
        .collect();
    assert_eq!(attached_to.len(), 1, "a client keeps one link");
    s.crash_at(attached_to[0], secs(41.0));
    s.run_until(secs(70.0));
    assert_eq!(s.node(client).state(), State::Joined);
    lookups_reach_owners(&mut s, &[client], 10);
}

#[test]
fn garbage_on_a_link_is_counted_and_dropped() {
    let mut s = sim(9);
    let peers = spawn_peers(&mut s, 5, 0.0, 1.0);
    s.run_until(secs(20.0));
    let (a, b) = (peers[0], peers[1]);
    let before = s.node(a).stats().clone();
    let mut valid = reload_wire::samples::all()[0].message.encode().expect("sample encodes");
    let mut t = 21.0;
    let mut feed = |s: &mut Simulator, bytes: Vec<u8>| {
        s.inject_at(a, b, bytes, secs(t));
        t += 0.01;
    };
    feed(&mut s, Vec::new());
    feed(&mut s, vec![0xd2, 0x45, 0x4c, 0x4f, 1, 2, 3]);
    feed(&mut s, vec![0xff; 6000]);
    // A whole message from another overlay.
    feed(&mut s, valid.clone());
    // Random bytes behind a valid header prefix.
    valid.truncate(60);
    feed(&mut s, valid);
    for i in 0..200u32 {
        feed(
            &mut s,
            (0..(i % 90)).map(|j| (i.wrapping_mul(31) ^ (j * 7)) as u8).collect(),
        );
    }
    s.run_until(secs(30.0));
    let after = s.node(a).stats();
    let dropped = (after.dropped_malformed - before.dropped_malformed)
        + (after.dropped_incompatible - before.dropped_incompatible);
    assert!(dropped >= 205, "every bad message is counted: {after:?}");
    // The node still works.
    assert_eq!(s.ring_errors(), Vec::<usize>::new());
    lookups_reach_owners(&mut s, &peers, 10);
}

#[test]
fn big_messages_are_fragmented_and_reassembled() {
    let mut s = Simulator::new(SimConfig {
        seed: 10,
        lookups: 0,
        mtu: Some(600),
        ping_padding: 2500,
        ..SimConfig::default()
    });
    let peers = spawn_peers(&mut s, 12, 0.0, 1.0);
    s.run_until(secs(30.0));
    assert_eq!(s.ring_errors(), Vec::<usize>::new());
    lookups_reach_owners(&mut s, &peers, 30);
    let sent: u64 = peers.iter().map(|p| s.node(*p).stats().fragments_sent).sum();
    let received: u64 = peers.iter().map(|p| s.node(*p).stats().fragments_received).sum();
    assert!(sent > 30 && received > 30, "fragments sent {sent}, received {received}");
}

#[test]
fn two_partitions_find_each_other_and_merge() {
    let mut s = sim(11);
    // Two overlays grow apart, each around its own first peer; every peer's
    // bootstrap list names both first peers, its own first (§10.7.4.4).
    let a0 = s.spawn_with(secs(0.0), vec![1], true);
    let b0 = s.spawn_with(secs(0.0), vec![0], true);
    let mut peers = vec![a0, b0];
    for i in 0..8 {
        peers.push(s.spawn_with(secs(1.0 + i as f64), vec![a0, b0], false));
        peers.push(s.spawn_with(secs(1.5 + i as f64), vec![b0, a0], false));
    }
    s.run_until(secs(60.0));
    assert!(
        !s.ring_errors().is_empty(),
        "two separate rings are not one correct ring"
    );
    // Partition checks run every 300 s (jittered); then stabilization merges the rings.
    s.run_until(secs(1500.0));
    let found: u64 = peers.iter().map(|p| s.node(*p).stats().partitions_detected).sum();
    assert!(found >= 1, "a partition check found the other overlay");
    assert_eq!(s.ring_members().len(), 18);
    assert_eq!(s.ring_errors(), Vec::<usize>::new());
    lookups_reach_owners(&mut s, &peers, 40);
}

/// A correctly signed request from `from` to `to`, built by hand.
fn signed_request(s: &Simulator, from: usize, to: usize, max_response_length: u32) -> Vec<u8> {
    use reload_wire::*;
    let mut header = ForwardingHeader::new(
        OverlayHash::from_overlay_name("sim.p2psip.invalid"),
        TransactionId(0x5eed),
        vec![Destination::node(s.node(to).node_id())],
    );
    header.max_response_length = max_response_length;
    let crypto = reload_core::StandInCrypto::new(s.node(from).node_id());
    let body = MessageBody::PingReq(PingReq::default());
    reload_core::crypto::signed_message(&crypto, header, body, 5000).expect("encodes")
}

#[test]
fn an_answer_over_max_response_length_becomes_an_error() {
    let mut s = sim(12);
    let peers = spawn_peers(&mut s, 3, 0.0, 1.0);
    s.run_until(secs(20.0));
    let (a, b, c) = (peers[0], peers[1], peers[2]);
    let (b0, c0) = (s.node(b).stats().clone(), s.node(c).stats().clone());
    let plain = signed_request(&s, a, b, 0);
    let limited = signed_request(&s, a, c, 20);
    let mut forged = signed_request(&s, a, b, 0);
    // The transaction id is part of the signature input (§6.3.4).
    forged[27] ^= 1;
    s.inject_at(b, a, plain, secs(21.0));
    s.inject_at(c, a, limited, secs(21.0));
    s.inject_at(b, a, forged, secs(21.5));
    s.run_until(secs(23.0));
    let (b1, c1) = (s.node(b).stats(), s.node(c).stats());
    assert_eq!(
        b1.requests_answered,
        b0.requests_answered + 1,
        "a valid request is answered"
    );
    assert_eq!(b1.errors_sent, b0.errors_sent);
    assert_eq!(
        b1.dropped_bad_signature,
        b0.dropped_bad_signature + 1,
        "a forged one is dropped"
    );
    // No answer of more than 20 bytes is wanted: Error_Response_Too_Large.
    assert_eq!(c1.errors_sent, c0.errors_sent + 1);
}

#[test]
fn silent_failures_are_found_by_updates_and_pings() {
    // The link layer never reports the crash: only the node's own Updates to its
    // neighbors and Pings to its fingers can find it (§10.7.1, §10.7.2, §6.5.3).
    let mut s = Simulator::new(SimConfig {
        seed: 13,
        lookups: 0,
        failure_detection: Duration::from_secs(100_000),
        ..SimConfig::default()
    });
    let peers = spawn_peers(&mut s, 30, 0.0, 0.5);
    s.run_until(secs(60.0));
    let victims: Vec<usize> = peers.iter().copied().skip(1).step_by(6).collect();
    for v in &victims {
        s.crash_at(*v, secs(61.0));
    }
    // A few update intervals (60 s, jittered) and the 15 s retransmission budget.
    s.run_until(secs(400.0));
    let alive: Vec<usize> = peers.iter().copied().filter(|p| !victims.contains(p)).collect();
    assert_eq!(s.ring_errors(), Vec::<usize>::new());
    for p in &alive {
        for f in s.node(*p).fingers().into_iter().flatten() {
            assert!(
                !victims.iter().any(|v| s.node(*v).node_id() == f),
                "stale finger at {p}"
            );
        }
    }
    lookups_reach_owners(&mut s, &alive, 30);
}

#[test]
fn a_stored_value_survives_the_crash_of_its_responsible_peer() {
    use reload_sim::StorageOutcome;
    let mut s = sim(14);
    let peers = spawn_peers(&mut s, 12, 0.0, 1.0);
    s.run_until(secs(40.0));
    let owner = peers[4];
    s.store_own_at(owner, secs(41.0));
    s.run_until(secs(45.0));
    // §10.4: the responsible peer took it and replicated it on its two successors.
    assert_eq!(
        s.storage_outcomes(),
        &[StorageOutcome::Stored {
            node: owner,
            replicas: 2
        }]
    );
    let resource =
        reload_core::ring::resource_point(&reload_core::ring::hash_resource_name(&s.node(owner).node_id().0));
    let responsible = s.owner_of(resource).expect("a responsible peer");
    assert_eq!(s.node(responsible).data_store().resource_count(), 1);
    s.crash_at(responsible, secs(46.0));
    // Failure detection (3.5 s) and reactive recovery make the first replica responsible.
    s.run_until(secs(70.0));
    let asker = peers
        .iter()
        .copied()
        .find(|p| *p != responsible && *p != owner)
        .expect("another peer");
    s.fetch_own_of_at(asker, owner, secs(71.0));
    s.run_until(secs(90.0));
    assert_eq!(
        s.storage_outcomes()[1],
        StorageOutcome::Fetched { node: asker, values: 1 }
    );
}
