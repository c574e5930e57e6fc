//! Storage in small simulated rings (RFC 6940 §7.4, §10.4, §10.7.3): values move to
//! a peer that joins in front of them, survive the crash of one or two of their
//! holders, expire everywhere, and keep their generation counters and storage times
//! consistent across the replica set. One test checks the value workload's
//! report: how long copies take to return to three after a mass crash.
//!
//! Values are TURN-SERVICE entries (single value, NODE-MULTIPLE, §9) or
//! CERTIFICATE_BY_NODE arrays (NODE-MATCH, §8): the only Kinds a node signed by the
//! simulator's stand-in may write, each at Resource-IDs derived from its own Node-ID.

mod common;

use common::{secs, sim};

use reload_core::{Answer, Failure, ring};
use reload_sim::{ScriptedStore, SimConfig, Simulator, Ticket};
use reload_wire::storage::ARRAY_APPEND;
use reload_wire::{
    ArrayRange, DataValue, Destination, ErrorCode, KindId, MessageBody, ModelSpecifier, NodeId, ResourceId, Signature,
    StoreKindData, StoreReq, StoredData, StoredDataSpecifier, StoredDataValue,
};

/// `n` peers joining a second apart, settled into a correct ring by `n + 30` s.
fn ring_of(s: &mut Simulator, n: usize) -> Vec<usize> {
    let peers: Vec<usize> = (0..n).map(|i| s.spawn(secs(i as f64), false)).collect();
    s.run_until(secs(n as f64 + 30.0));
    assert_eq!(s.ring_members().len(), n, "every peer joined");
    assert_eq!(s.ring_errors(), Vec::<usize>::new(), "the ring is correct");
    peers
}

fn single(bytes: &[u8]) -> StoredDataValue {
    StoredDataValue::Single {
        value: DataValue::new(bytes.to_vec()),
    }
}

fn turn_spec() -> StoredDataSpecifier {
    StoredDataSpecifier {
        kind: KindId::TURN_SERVICE,
        generation: 0,
        model_specifier: ModelSpecifier::Single,
    }
}

fn whole_array_spec() -> StoredDataSpecifier {
    StoredDataSpecifier {
        kind: KindId::CERTIFICATE_BY_NODE,
        generation: 0,
        model_specifier: ModelSpecifier::Array(vec![ArrayRange {
            first: 0,
            last: ARRAY_APPEND,
        }]),
    }
}

/// The peers that should hold `resource`: the live peer responsible for it and its
/// two successors, in ring order (§10.4).
fn replica_set(s: &Simulator, resource: &ResourceId) -> Vec<usize> {
    let members = s.ring_members();
    let owner = s.owner_of(ring::resource_point(resource)).expect("a responsible peer");
    let at = members.iter().position(|m| *m == owner).expect("the owner is a member");
    (0..members.len().min(3))
        .map(|i| members[(at + i) % members.len()])
        .collect()
}

fn sorted(mut v: Vec<usize>) -> Vec<usize> {
    v.sort_unstable();
    v
}

/// The answer a ticket came to; panics if it is still pending.
fn outcome(s: &Simulator, t: Ticket) -> Result<Answer, Failure> {
    s.outcome(t).cloned().expect("the request was answered or failed")
}

/// The generation a StoreAns gave the Kind.
fn stored_generation(s: &Simulator, t: Ticket) -> u64 {
    match outcome(s, t) {
        Ok(Answer {
            body: MessageBody::StoreAns(a),
            ..
        }) => a.kind_responses[0].generation_counter,
        other => panic!("expected a StoreAns, got {other:?}"),
    }
}

/// Who answered a Fetch, the Kind's generation, and the values.
fn fetched(s: &Simulator, t: Ticket) -> (NodeId, u64, Vec<StoredData>) {
    match outcome(s, t) {
        Ok(Answer {
            responder,
            body: MessageBody::FetchAns(a),
            ..
        }) => {
            let k = a
                .kind_responses
                .into_iter()
                .next()
                .expect("one Kind asked, one answered");
            (responder, k.generation, k.values)
        }
        other => panic!("expected a FetchAns, got {other:?}"),
    }
}

/// What peer `idx` holds at `resource` for `spec`, read locally: (generation, values).
fn held(s: &Simulator, idx: usize, resource: &ResourceId, spec: &StoredDataSpecifier) -> (u64, Vec<StoredData>) {
    let f = s.node(idx).data_store().fetch(s.now(), resource, spec);
    (f.generation, f.values)
}

/// A peer that is not among the first `n` holders of its own TURN-SERVICE value
/// (H(Node-ID || 1)), so that crashing those leaves the writer alive.
fn writer_outside(s: &Simulator, peers: &[usize], n: usize) -> usize {
    peers
        .iter()
        .copied()
        .find(|w| !replica_set(s, &s.node_multiple_resource(*w, 1))[..n].contains(w))
        .expect("a writer outside the first holders of its value")
}

/// A TURN-SERVICE value stored by `writer` at t = 41 s and acknowledged: the
/// Resource-ID and the value.
fn store_turn_value(s: &mut Simulator, writer: usize, bytes: &[u8]) -> ResourceId {
    let resource = s.node_multiple_resource(writer, 1);
    let t = s.store_at(
        writer,
        secs(41.0),
        ScriptedStore::new(resource.clone(), KindId::TURN_SERVICE, single(bytes)),
    );
    s.run_until(secs(45.0));
    assert_eq!(stored_generation(s, t), 1, "the first write makes generation 1");
    assert_eq!(
        sorted(s.holders(&resource)),
        sorted(replica_set(s, &resource)),
        "§10.4: the responsible peer and its two successors hold it"
    );
    resource
}

#[test]
fn a_peer_joining_between_a_value_and_its_responsible_peer_takes_it_over() {
    let mut s = sim(21);
    let peers = ring_of(&mut s, 8);
    let writer = peers[0];
    let resource = store_turn_value(&mut s, writer, b"turn-a");
    let old = replica_set(&s, &resource);
    let (responsible, first_succ, second_succ) = (old[0], old[1], old[2]);
    // A Node-ID half-way from the Resource-ID to its responsible peer: the newcomer
    // becomes responsible for the value.
    let k = ring::resource_point(&resource);
    let gap = ring::distance(k, ring::point(s.node(responsible).node_id()));
    assert!(gap > 2, "room for a Node-ID between the value and its peer");
    let newcomer = s.spawn_with_id(secs(46.0), ring::node_at(k.wrapping_add(gap / 2)));
    s.run_until(secs(60.0));
    assert_eq!(
        s.owner_of(k),
        Some(newcomer),
        "the newcomer joined in front of the value"
    );
    // §10.5 step 6, §10.7.3: the old responsible peer handed the value over.
    assert!(
        s.node(newcomer).data_store().holds(&resource),
        "the newcomer holds the value"
    );
    let asker = peers
        .iter()
        .copied()
        .find(|p| !old.contains(p) && *p != writer)
        .expect("a peer outside the replica set");
    let t = s.fetch_at(asker, secs(61.0), resource.clone(), vec![turn_spec()]);
    s.run_until(secs(70.0));
    let (responder, generation, values) = fetched(&s, t);
    assert_eq!(responder, s.node(newcomer).node_id(), "the newcomer answers the Fetch");
    assert_eq!(generation, 1, "the generation counter came along");
    assert_eq!(values.len(), 1);
    assert_eq!(values[0].value, single(b"turn-a"));
    // After stabilization: the newcomer and its two successors, and nobody else;
    // the old second successor is outside the replica set now and dropped it.
    s.run_until(secs(200.0));
    assert_eq!(s.ring_errors(), Vec::<usize>::new());
    assert_eq!(
        sorted(s.holders(&resource)),
        sorted(vec![newcomer, responsible, first_succ]),
        "exactly the new replica set holds the value"
    );
    assert!(!s.node(second_succ).data_store().holds(&resource));
}

#[test]
fn a_value_is_back_to_three_copies_after_its_responsible_peer_crashes() {
    let mut s = sim(22);
    let peers = ring_of(&mut s, 10);
    let writer = writer_outside(&s, &peers, 1);
    let resource = store_turn_value(&mut s, writer, b"turn-b");
    let responsible = replica_set(&s, &resource)[0];
    s.crash_at(responsible, secs(46.0));
    // Failure detection (3.5 s), reactive recovery, re-replication (§10.7.3).
    s.run_until(secs(80.0));
    let now_set = replica_set(&s, &resource);
    assert!(!now_set.contains(&responsible));
    assert_eq!(
        sorted(s.holders(&resource)),
        sorted(now_set.clone()),
        "three copies again: the first replica, now responsible, and its two successors"
    );
    let t = s.fetch_at(writer, secs(81.0), resource, vec![turn_spec()]);
    s.run_until(secs(90.0));
    let (responder, generation, values) = fetched(&s, t);
    assert_eq!(responder, s.node(now_set[0]).node_id());
    assert_eq!(generation, 1);
    assert_eq!(values.first().map(|v| v.value.clone()), Some(single(b"turn-b")));
}

#[test]
fn a_value_survives_the_crash_of_its_responsible_peer_and_first_successor_at_once() {
    let mut s = sim(23);
    let peers = ring_of(&mut s, 10);
    let writer = writer_outside(&s, &peers, 2);
    let resource = store_turn_value(&mut s, writer, b"turn-c");
    let old = replica_set(&s, &resource);
    s.crash_at(old[0], secs(46.0));
    s.crash_at(old[1], secs(46.0));
    s.run_until(secs(100.0));
    assert_eq!(s.ring_errors(), Vec::<usize>::new());
    let now_set = replica_set(&s, &resource);
    assert_eq!(
        now_set[0], old[2],
        "the second successor, the last copy, is responsible now"
    );
    assert_eq!(
        sorted(s.holders(&resource)),
        sorted(now_set.clone()),
        "back to three copies from the one that was left"
    );
    let asker = peers
        .iter()
        .copied()
        .find(|p| s.is_alive(*p) && !now_set.contains(p))
        .expect("a live peer outside the replica set");
    let t = s.fetch_at(asker, secs(101.0), resource, vec![turn_spec()]);
    s.run_until(secs(110.0));
    let (responder, _, values) = fetched(&s, t);
    assert_eq!(responder, s.node(old[2]).node_id());
    assert_eq!(values.first().map(|v| v.value.clone()), Some(single(b"turn-c")));
}

#[test]
fn an_expired_value_is_gone_from_the_responsible_peer_and_both_replicas() {
    let mut s = sim(24);
    let peers = ring_of(&mut s, 8);
    let writer = peers[1];
    let resource = s.node_multiple_resource(writer, 1);
    let mut store = ScriptedStore::new(resource.clone(), KindId::TURN_SERVICE, single(b"short"));
    store.lifetime = 20;
    let stored = s.store_at(writer, secs(41.0), store);
    s.run_until(secs(45.0));
    assert_eq!(stored_generation(&s, stored), 1);
    let set = replica_set(&s, &resource);
    assert_eq!(sorted(s.holders(&resource)), sorted(set.clone()));
    let before = s.fetch_at(writer, secs(50.0), resource.clone(), vec![turn_spec()]);
    s.run_until(secs(55.0));
    assert!(fetched(&s, before).2[0].value.data_value().exists);
    // The lifetime runs out at about 61 s; each peer sweeps what expired every
    // 15 s (the request lifetime), so by 80 s nobody holds it.
    s.run_until(secs(80.0));
    assert_eq!(s.holders(&resource), Vec::<usize>::new(), "expired on every holder");
    for p in &set {
        assert_eq!(s.node(*p).data_store().resource_count(), 0, "peer {p} dropped it");
    }
    // §7.4.2.2: a Fetch of a single value that does not exist gets a synthesized
    // one with exists = false.
    let after = s.fetch_at(writer, secs(81.0), resource, vec![turn_spec()]);
    s.run_until(secs(90.0));
    let (responder, _, values) = fetched(&s, after);
    assert_eq!(responder, s.node(set[0]).node_id());
    assert_eq!(values.len(), 1, "one synthesized value");
    assert!(!values[0].value.data_value().exists);
    assert!(values[0].signature.is_anonymous());
}

#[test]
fn an_expired_value_is_absent_to_a_fetch_before_it_is_swept() {
    let mut s = sim(25);
    let peers = ring_of(&mut s, 6);
    let writer = peers[1];
    let resource = s.node_multiple_resource(writer, 1);
    let mut store = ScriptedStore::new(resource.clone(), KindId::TURN_SERVICE, single(b"short"));
    store.lifetime = 20;
    s.store_at(writer, secs(41.0), store);
    s.run_until(secs(62.0));
    let responsible = replica_set(&s, &resource)[0];
    // The precondition of this scenario: expired, not yet swept.
    assert!(s.node(responsible).data_store().holds(&resource));
    let t = s.fetch_at(writer, secs(62.0), resource, vec![turn_spec()]);
    s.run_until(secs(63.0));
    let (_, _, values) = fetched(&s, t);
    assert_eq!(
        values.len(),
        1,
        "§7.4.2.2: an expired single value is answered as a synthesized absent one"
    );
    assert!(!values[0].value.data_value().exists);
}

#[test]
fn of_two_racing_stores_with_the_same_generation_exactly_one_wins() {
    let mut s = sim(26);
    let peers = ring_of(&mut s, 8);
    let writer = peers[3];
    let resource = store_turn_value(&mut s, writer, b"v1");
    // Both writers read the current generation (§7.4.1.1: like an HTTP ETag).
    // Under NODE-MULTIPLE only the writer's Node-ID may write here, so the two
    // racing writers are two requests of the same node.
    let read = s.fetch_at(writer, secs(46.0), resource.clone(), vec![turn_spec()]);
    s.run_until(secs(50.0));
    let (_, generation, _) = fetched(&s, read);
    assert_eq!(generation, 1);
    let store = |bytes: &[u8]| {
        let mut st = ScriptedStore::new(resource.clone(), KindId::TURN_SERVICE, single(bytes));
        st.generation_counter = generation;
        st
    };
    let a = s.store_at(writer, secs(51.0), store(b"from-a"));
    let b = s.store_at(writer, secs(51.0), store(b"from-b"));
    s.run_until(secs(60.0));
    let results = [(outcome(&s, a), b"from-a"), (outcome(&s, b), b"from-b")];
    let winners: Vec<&[u8; 6]> = results
        .iter()
        .filter(|(r, _)| {
            matches!(
                r,
                Ok(Answer {
                    body: MessageBody::StoreAns(_),
                    ..
                })
            )
        })
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one store wins: {results:?}");
    let winner = single(winners[0]);
    for (r, _) in &results {
        match r {
            Ok(Answer {
                body: MessageBody::StoreAns(ans),
                ..
            }) => assert_eq!(ans.kind_responses[0].generation_counter, 2),
            Err(Failure::Error { error, .. }) => {
                assert_eq!(error.error_code, ErrorCode::GENERATION_COUNTER_TOO_LOW);
                // §7.4.1.2: the error_info is a StoreAns with the current counters.
                let current = error.decode_generation_counters().expect("error_info is a StoreAns");
                assert_eq!(current.kind_responses.len(), 1);
                assert_eq!(current.kind_responses[0].kind, KindId::TURN_SERVICE);
                assert_eq!(current.kind_responses[0].generation_counter, 2);
                assert!(current.kind_responses[0].replicas.is_empty());
            }
            other => panic!("neither a StoreAns nor an error: {other:?}"),
        }
    }
    // The replicas took the winner's value and the responsible peer's counter.
    let set = replica_set(&s, &resource);
    assert_eq!(sorted(s.holders(&resource)), sorted(set.clone()));
    for p in set {
        let (generation, values) = held(&s, p, &resource, &turn_spec());
        assert_eq!(generation, 2, "peer {p}");
        assert_eq!(values.len(), 1);
        assert_eq!(values[0].value, winner, "peer {p} holds the winner's value");
    }
}

#[test]
fn a_replica_keeps_the_newest_value_when_an_older_one_arrives() {
    let mut s = sim(27);
    let peers = ring_of(&mut s, 8);
    let writer = peers[5];
    let resource = s.node_multiple_resource(writer, 1);
    let at = |time: u64, bytes: &[u8]| {
        let mut st = ScriptedStore::new(resource.clone(), KindId::TURN_SERVICE, single(bytes));
        st.storage_time = Some(time);
        st
    };
    let first = s.store_at(writer, secs(41.0), at(41_000, b"old"));
    let second = s.store_at(writer, secs(42.0), at(42_000, b"new"));
    s.run_until(secs(46.0));
    assert_eq!((stored_generation(&s, first), stored_generation(&s, second)), (1, 2));
    let set = replica_set(&s, &resource);
    let (responsible, replica) = (set[0], set[1]);
    // The older value reaches the replica again, as a replica store from the
    // responsible peer (a late or reordered copy, or a re-replication).
    let old = s
        .sign_value(
            writer,
            &resource,
            KindId::TURN_SERVICE,
            StoredData {
                storage_time: 41_000,
                lifetime: 86_000,
                value: single(b"old"),
                signature: Signature::synthesized(),
            },
        )
        .expect("signs");
    let body = MessageBody::StoreReq(StoreReq {
        resource: resource.clone(),
        replica_number: 1,
        kind_data: vec![StoreKindData {
            kind: KindId::TURN_SERVICE,
            generation_counter: 1,
            values: vec![old],
        }],
    });
    let late = s.request_at(
        responsible,
        secs(47.0),
        Destination::node(s.node(replica).node_id()),
        body,
    );
    s.run_until(secs(50.0));
    match outcome(&s, late) {
        Err(Failure::Error { responder, error }) => {
            assert_eq!(responder, s.node(replica).node_id());
            assert_eq!(error.error_code, ErrorCode::DATA_TOO_OLD, "§7.4.1.1: storage time");
        }
        other => panic!("the older value was not refused: {other:?}"),
    }
    let (generation, values) = held(&s, replica, &resource, &turn_spec());
    assert_eq!(generation, 2, "the refused store left the counter alone");
    assert_eq!(values.len(), 1, "one value, no duplicate");
    assert_eq!(
        (values[0].storage_time, values[0].value.clone()),
        (42_000, single(b"new"))
    );
    assert_eq!(
        sorted(s.holders(&resource)),
        sorted(set),
        "still exactly the three copies of the replica set"
    );
}

#[test]
fn replicas_of_appended_array_entries_mirror_the_responsible_peer() {
    // Two entries appended at once (§7.4.1.1: index 0xffffffff appends); each
    // replica must hold each entry at the index the responsible peer chose, once.
    // The simulator's per-message jitter can reorder the two replica Stores on the
    // responsible peer's link to a successor, as a datagram link (DTLS) or a
    // retransmission after a loss can.
    for seed in 30..40 {
        let mut s = sim(seed);
        let peers = ring_of(&mut s, 6);
        let writer = peers[0];
        let resource = ring::hash_resource_name(&s.node(writer).node_id().0);
        let entry = |time: u64, bytes: &[u8]| {
            let mut st = ScriptedStore::new(
                resource.clone(),
                KindId::CERTIFICATE_BY_NODE,
                StoredDataValue::Array {
                    index: ARRAY_APPEND,
                    value: DataValue::new(bytes.to_vec()),
                },
            );
            st.storage_time = Some(time);
            st
        };
        let a = s.store_at(writer, secs(41.0), entry(41_000, b"first"));
        let b = s.store_at(writer, secs(41.0), entry(41_001, b"second"));
        s.run_until(secs(50.0));
        assert!(outcome(&s, a).is_ok() && outcome(&s, b).is_ok(), "seed {seed}");
        let set = replica_set(&s, &resource);
        assert_eq!(sorted(s.holders(&resource)), sorted(set.clone()), "seed {seed}");
        let (generation, want) = held(&s, set[0], &resource, &whole_array_spec());
        assert_eq!(want.len(), 2, "seed {seed}: two entries at the responsible peer");
        for p in &set[1..] {
            let got = held(&s, *p, &resource, &whole_array_spec());
            assert_eq!(
                got,
                (generation, want.clone()),
                "seed {seed}: replica {p} differs from the responsible peer"
            );
        }
    }
}

#[test]
fn the_report_times_the_recovery_to_three_copies_after_a_crash() {
    let cfg = SimConfig {
        nodes: 60,
        lookups: 0,
        values: 400,
        crash_fraction: 0.25,
        seed: 5,
        ..SimConfig::default()
    };
    let r = Simulator::new(cfg.clone()).run(|_| {});
    let st = r.storage.clone().expect("a storage report");
    eprintln!("{}", r.storage_summary().unwrap_or_default());
    // The crash waits until every value is stored.
    assert_eq!(st.stored_before_crash, Some(st.values_stored));
    assert_eq!(st.values_stored, 400);
    // A quarter of the peers crash: a value loses all three holders with a chance
    // of about 1.5 %.
    assert!(st.surviving <= st.values_stored && st.surviving > st.values_stored * 9 / 10);
    assert_eq!(st.with_live_copy, st.surviving, "no survivor lost its copies later");
    assert_eq!(st.fetchable, st.surviving);
    // Right after the crash some survivors are short of copies; re-replication
    // (§10.7.3) brings all of them back within the 60 s before the check.
    assert!(st.recovery[0].at_three_copies < 1.0);
    assert_eq!(st.recovery.len(), 61, "a sample a second, the last at the check");
    let t = st.recovery_to_three_copies_s.expect("recovered before the check");
    assert!((3.5..60.0).contains(&t), "not before failures are detected: {t}");
    assert_eq!(st.at_three_copies_at_check, 1.0);
    let first_full = st.recovery.iter().find(|s| s.at_three_copies == 1.0).map(|s| s.t_s);
    assert_eq!(first_full, Some(t));
    assert!(r.storage_summary().is_some_and(|s| s.contains("back to three copies")));
    assert_eq!(
        r.deterministic_json(),
        Simulator::new(cfg).run(|_| {}).deterministic_json()
    );
}

#[test]
fn a_peer_whose_replica_store_is_refused_as_too_old_takes_the_newer_value() {
    let mut s = sim(28);
    let peers = ring_of(&mut s, 10);
    let writer = writer_outside(&s, &peers, 2);
    let resource = s.node_multiple_resource(writer, 1);
    let mut old = ScriptedStore::new(resource.clone(), KindId::TURN_SERVICE, single(b"old"));
    old.storage_time = Some(41_000);
    let stored = s.store_at(writer, secs(41.0), old);
    s.run_until(secs(43.0));
    assert_eq!(stored_generation(&s, stored), 1);
    let set = replica_set(&s, &resource);
    let members = s.ring_members();
    let at = members.iter().position(|m| *m == set[2]).expect("a member");
    let third = members[(at + 1) % members.len()];
    // The peer after the replica set holds a newer value (as after a partition
    // heals, §7.4.1.1), handed to it by its predecessor, the second replica.
    let newer = s
        .sign_value(
            writer,
            &resource,
            KindId::TURN_SERVICE,
            StoredData {
                storage_time: 43_000,
                lifetime: 86_000,
                value: single(b"newer"),
                signature: Signature::synthesized(),
            },
        )
        .expect("signs");
    let body = MessageBody::StoreReq(StoreReq {
        resource: resource.clone(),
        replica_number: 2,
        kind_data: vec![StoreKindData {
            kind: KindId::TURN_SERVICE,
            generation_counter: 5,
            values: vec![newer],
        }],
    });
    let push = s.request_at(set[2], secs(43.0), Destination::node(s.node(third).node_id()), body);
    s.run_until(secs(43.5));
    assert!(outcome(&s, push).is_ok(), "the newer value was taken");
    // The first replica crashes: the responsible peer's replica set now takes in the
    // peer with the newer value, and its Store of the old one is refused as too old.
    let sent_before = s.node(set[0]).stats().replica_stores_sent;
    s.crash_at(set[1], secs(43.5));
    s.run_until(secs(80.0));
    assert_eq!(replica_set(&s, &resource), vec![set[0], set[2], third]);
    assert!(
        s.node(set[0]).stats().replica_stores_sent > sent_before,
        "the responsible peer stored the old value on its new second successor"
    );
    let (generation, values) = held(&s, third, &resource, &turn_spec());
    assert_eq!(
        (generation, values.first().map(|v| v.storage_time)),
        (5, Some(43_000)),
        "that Store was refused as too old: the newer value stays"
    );
    let (_, values) = held(&s, set[0], &resource, &turn_spec());
    assert_eq!(
        values.first().map(|v| (v.storage_time, v.value.clone())),
        Some((43_000, single(b"newer"))),
        "§7.4.1.1: after Error_Data_Too_Old the storing peer MUST fetch the newer data and replace its own copy"
    );
}

/// A crashed peer restarts from what it persisted (DESIGN.md: nothing is lost on
/// restart): it loads its values, purging one whose lifetime ran out while it was
/// down, joins again under the same Node-ID, takes its range back with the newest
/// data (a value updated while it was down replaces its stale copy, §10.5 step 6,
/// §7.4.1.1), and afterwards every value has exactly three copies.
#[test]
fn a_restarted_peer_reloads_its_values_and_reconciles_with_its_neighbors() {
    let mut s = Simulator::new(SimConfig {
        seed: 40,
        lookups: 0,
        persist: true,
        ..SimConfig::default()
    });
    let peers = ring_of(&mut s, 10);
    let writer = writer_outside(&s, &peers, 3);
    let kept = store_turn_value(&mut s, writer, b"before");
    let p = replica_set(&s, &kept)[0];
    // A short-lived value that p holds too.
    let (short, _) = (2..=20)
        .map(|i| s.node_multiple_resource(writer, i))
        .map(|r| {
            let set = replica_set(&s, &r);
            (r, set)
        })
        .find(|(_, set)| set.contains(&p) && !set.contains(&writer))
        .expect("a value of the writer that p holds");
    let mut brief = ScriptedStore::new(short.clone(), KindId::TURN_SERVICE, single(b"brief"));
    brief.lifetime = 20;
    let t = s.store_at(writer, secs(46.0), brief);
    s.run_until(secs(48.0));
    assert_eq!(stored_generation(&s, t), 1);
    assert!(s.node(p).data_store().holds(&short) && s.node(p).data_store().holds(&kept));

    s.crash_at(p, secs(50.0));
    s.run_until(secs(59.0));
    // While p is down the value changes (the new responsible peer takes the Store).
    let update = s.store_at(
        writer,
        secs(60.0),
        ScriptedStore::new(kept.clone(), KindId::TURN_SERVICE, single(b"after")),
    );
    s.run_until(secs(80.0));
    assert_eq!(stored_generation(&s, update), 2);
    assert!(s.holders(&short).is_empty(), "the short-lived value expired everywhere");

    s.restart_at(p, secs(80.0));
    s.run_until(secs(150.0));
    assert_eq!(s.ring_errors(), Vec::<usize>::new(), "p is back in a correct ring");
    let restores = s.restores();
    assert_eq!(restores.len(), 1);
    let (who, summary) = restores[0];
    assert_eq!(who, p);
    assert!(summary.values >= 1, "p reloaded what it held: {summary:?}");
    assert!(summary.expired >= 1, "and purged what expired meanwhile: {summary:?}");
    assert_eq!(summary.unreadable, 0);

    assert_eq!(replica_set(&s, &kept)[0], p, "p is responsible again");
    let (generation, values) = held(&s, p, &kept, &turn_spec());
    assert_eq!(generation, 2, "p took the newer generation");
    assert_eq!(values.len(), 1);
    assert_eq!(values[0].value, single(b"after"), "the stale copy was replaced");
    assert_eq!(
        sorted(s.holders(&kept)),
        sorted(replica_set(&s, &kept)),
        "exactly three copies: none lost, none kept twice"
    );
    assert!(s.holders(&short).is_empty(), "the expired value did not come back");

    let asker = peers
        .iter()
        .copied()
        .find(|x| *x != p && *x != writer)
        .expect("another peer");
    let f = s.fetch_at(asker, secs(151.0), kept.clone(), vec![turn_spec()]);
    s.run_until(secs(160.0));
    let (responder, generation, values) = fetched(&s, f);
    assert_eq!(responder, s.node(p).node_id());
    assert_eq!(generation, 2);
    assert_eq!(values[0].value, single(b"after"));
}
