//! Crash safety: a peer killed with SIGKILL in the middle of a stream of stores
//! loses none of the stores it acknowledged (DESIGN.md: "Nothing is lost on
//! restart"; RFC 6940 §7.4.1.1: a StoreAns means the value is stored).
//!
//! The test binary runs itself again as the peer ([`child_store_stream`], selected
//! with `--exact` and given the database in [`CHILD_ENV`]). The child is a lone
//! reload-core peer, responsible for every Resource-ID, that stores one value after
//! another; after each store it makes the node's storage changes durable with
//! [`RedbBackend`] and only then reports the StoreAns, as `ACK <i>` on stdout. The
//! parent kills it after a random number of acknowledgements or a random delay,
//! reopens the database, restores it into a fresh node, and checks that every
//! acknowledged value is there with its content, and that nothing else is, except
//! the one store that may have been committed but not yet acknowledged. Several
//! rounds continue the same file, so it sees several crashes.
//!
//! `P2PSIP_CRASH_SEED=<n>` replays a run (the seed is printed).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reload_core::storage::{AccessPolicy, KindDef, StorageBackend};
use reload_core::{Event, Node, NodeConfig, StandInCrypto, State, Time, ring};
use reload_net::RedbBackend;
use reload_wire::{
    DataModel, DataValue, Destination, DictionaryKey, KindId, MessageBody, ModelSpecifier, NodeId, OverlayHash,
    ResourceId, Signature, StoreKindData, StoreReq, StoredData, StoredDataSpecifier, StoredDataValue,
};

/// Set in the child's environment: the database to store into.
const CHILD_ENV: &str = "P2PSIP_CRASH_CHILD_DB";
/// Set in the child's environment: the first value number of this round.
const CHILD_FIRST_ENV: &str = "P2PSIP_CRASH_CHILD_FIRST";
/// Overrides the random seed of the parent.
const SEED_ENV: &str = "P2PSIP_CRASH_SEED";

const OVERLAY: &str = "crash.test";
const NODE: NodeId = NodeId([0x42; 16]);
/// A dictionary Kind of this test; NODE-MULTIPLE lets the peer write under
/// H(node_id || i) for i in 1..=RESOURCES, so the values spread over several records.
const KIND: KindId = KindId(0xf000_c4a5);
const RESOURCES: u8 = 16;
/// Value numbers of round r start at r * ROUND_STRIDE, so rounds never collide.
const ROUND_STRIDE: u64 = 1_000_000;
/// The child stops by itself after this many stores (the parent kills it long before).
const CHILD_MAX_STORES: u64 = 20_000;
const ROUNDS: u64 = 16;
/// A round that has not reached its kill point by then fails.
const ROUND_TIMEOUT: Duration = Duration::from_secs(60);

fn now() -> Time {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    Time(u64::try_from(micros).unwrap_or(u64::MAX))
}

fn config() -> NodeConfig {
    let mut cfg = NodeConfig::new(OverlayHash::from_overlay_name(OVERLAY), NODE);
    cfg.persist_storage = true;
    cfg.kinds.add(KindDef {
        id: KIND,
        name: "crash-test-dictionary".into(),
        model: DataModel::Dictionary,
        policy: AccessPolicy::NodeMultiple { max: RESOURCES },
        max_count: 1_000_000,
        max_size: 1024,
    });
    cfg.data_models.insert(KIND, DataModel::Dictionary);
    cfg
}

fn node() -> Node {
    Node::new(config(), Box::new(StandInCrypto::new(NODE)), 7)
}

/// Where value `i` is stored: H(node_id || (i mod RESOURCES) + 1).
fn resource_of(i: u64) -> ResourceId {
    let mut name = NODE.0.to_vec();
    name.push(u8::try_from(i % u64::from(RESOURCES)).unwrap_or(0) + 1);
    ring::hash_resource_name(&name)
}

fn key_of(i: u64) -> Vec<u8> {
    i.to_be_bytes().to_vec()
}

/// The content of value `i`: distinct per value, of varying length.
fn content_of(i: u64) -> Vec<u8> {
    let mut v = format!("value {i} ").into_bytes();
    v.extend(std::iter::repeat_n(
        u8::try_from(i % 251).unwrap_or(0),
        usize::try_from(i % 64).unwrap_or(0),
    ));
    v
}

fn store_request(i: u64, at: Time) -> (ResourceId, MessageBody) {
    let resource = resource_of(i);
    let data = StoredData {
        storage_time: at.as_micros() / 1000,
        lifetime: 86_400,
        value: StoredDataValue::Dictionary {
            key: key_of(i),
            value: DataValue::new(content_of(i)),
        },
        signature: Signature::synthesized(),
    };
    let data = reload_core::crypto::sign_stored_data(&StandInCrypto::new(NODE), &resource, KIND, data)
        .expect("a small value signs");
    let body = MessageBody::StoreReq(StoreReq {
        resource: resource.clone(),
        replica_number: 0,
        kind_data: vec![StoreKindData {
            kind: KIND,
            generation_counter: 0,
            values: vec![data],
        }],
    });
    (resource, body)
}

/// The peer: only when the parent started this binary with [`CHILD_ENV`] set.
#[test]
fn child_store_stream() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let first: u64 = std::env::var(CHILD_FIRST_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("the parent gives the first value number");
    let mut backend = RedbBackend::open(Path::new(&path)).expect("the database opens");
    let mut node = node();
    let records = backend.load().expect("the database reads");
    let summary = node.restore_storage(now(), records);
    assert_eq!(summary.unreadable, 0, "{summary:?}");
    node.start(now(), Vec::new(), true);
    assert_eq!(
        node.state(),
        State::Joined,
        "a lone peer creating the overlay joins at once"
    );
    let mut out = std::io::stdout().lock();
    writeln!(out).expect("stdout");
    let mut pending: BTreeMap<reload_core::RequestId, u64> = BTreeMap::new();
    for i in first..first + CHILD_MAX_STORES {
        let t = now();
        if node.poll_timeout().is_some_and(|due| due <= t) {
            node.handle_timeout(t);
        }
        let (resource, body) = store_request(i, t);
        let request = node.request(t, Destination::resource(resource), body);
        pending.insert(request, i);
        // Durable first ...
        backend.apply(&node.take_storage_changes()).expect("the batch commits");
        // ... then whatever the node wants to send, and the answers.
        while node.poll_transmit().is_some() || node.poll_action().is_some() {}
        while let Some(event) = node.poll_event() {
            match event {
                Event::Response { request, result } => {
                    let Some(i) = pending.remove(&request) else { continue };
                    match result {
                        Ok(answer) if matches!(answer.body, MessageBody::StoreAns(_)) => {
                            writeln!(out, "ACK {i}").expect("stdout");
                            out.flush().expect("stdout");
                        }
                        other => panic!("store {i} failed: {other:?}"),
                    }
                }
                Event::Joined | Event::NeighborsChanged(_) | Event::ResponsibleRangeChanged { .. } => {}
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
    writeln!(out, "DONE").expect("stdout");
}

/// xorshift64*: enough randomness to vary kill points; the seed is printed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Kills and reaps the child however the round ends, so no process is left behind.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Debug)]
enum KillPoint {
    /// After this many acknowledgements.
    Acks(usize),
    /// This long after the first acknowledgement, wherever the child is.
    Delay(Duration),
}

/// What one round saw: the acknowledged values, in the order of their ACKs.
struct Round {
    acked: Vec<u64>,
}

fn run_round(db: &Path, first: u64, kill: &KillPoint) -> Round {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let child = Command::new(exe)
        .args(["--exact", "child_store_stream", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, db)
        .env(CHILD_FIRST_ENV, first.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the child starts");
    let mut child = Reaper(child);
    let stdout = child.0.stdout.take().expect("piped stdout");
    let mut stderr = child.0.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel::<u64>();
    let reader = thread::spawn(move || {
        let mut others = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest may print its own words on the same line first.
            match line
                .find("ACK ")
                .and_then(|at| line[at + 4..].trim().parse::<u64>().ok())
            {
                Some(i) => {
                    if tx.send(i).is_err() {
                        break;
                    }
                }
                None => others.push(line),
            }
        }
        others
    });
    let errors = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let deadline = Instant::now() + ROUND_TIMEOUT;
    let mut acked = Vec::new();
    let mut kill_at: Option<Instant> = None;
    let mut killed = false;
    loop {
        let wait = kill_at.unwrap_or(deadline).min(deadline);
        match rx.recv_timeout(wait.saturating_duration_since(Instant::now())) {
            Ok(i) => {
                acked.push(i);
                if let (KillPoint::Delay(d), None) = (kill, kill_at) {
                    kill_at = Some(Instant::now() + *d);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // The child ended by itself (finished or failed): no kill this round.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let due = match kill {
            KillPoint::Acks(n) => acked.len() >= *n,
            KillPoint::Delay(_) => kill_at.is_some_and(|at| Instant::now() >= at),
        };
        if due {
            child.0.kill().expect("SIGKILL the child");
            killed = true;
            break;
        }
        assert!(
            Instant::now() < deadline,
            "round from {first}: no kill point ({kill:?}) within {ROUND_TIMEOUT:?}, {} acks",
            acked.len()
        );
    }
    let status = child.0.wait().expect("reap the child");
    // Acknowledgements already written before the kill count as well.
    let others = reader.join().expect("stdout reader");
    acked.extend(rx.try_iter());
    let stderr = errors.join().expect("stderr reader");
    if !killed {
        panic!(
            "round from {first}: the child ended by itself ({status}) after {} acks\nstdout: {others:?}\nstderr: {stderr}",
            acked.len()
        );
    }
    Round { acked }
}

/// Opens the database as a restarting peer would and returns the values it holds.
fn values_after_restart(db: &Path) -> BTreeMap<u64, Vec<u8>> {
    let backend = RedbBackend::open(db).unwrap_or_else(|e| panic!("the database must open after a kill: {e}"));
    let loaded = backend.load_all().expect("the database reads after a kill");
    assert_eq!(loaded.invalid_keys, 0);
    let mut node = node();
    let t = now();
    let summary = node.restore_storage(t, loaded.records);
    assert_eq!(
        (summary.unreadable, summary.expired, summary.dropped_kinds),
        (0, 0, 0),
        "every record restores: {summary:?}"
    );
    let mut held = BTreeMap::new();
    for r in 1..=RESOURCES {
        let resource = resource_of(u64::from(r - 1));
        let spec = StoredDataSpecifier {
            kind: KIND,
            generation: 0,
            model_specifier: ModelSpecifier::Dictionary(Vec::new()),
        };
        for v in node.data_store().fetch(t, &resource, &spec).values {
            let StoredDataValue::Dictionary { key, value } = v.value else {
                panic!("a dictionary value");
            };
            let i = u64::from_be_bytes(key.as_slice().try_into().expect("an 8-byte key"));
            assert_eq!(resource_of(i), resource, "value {i} is under its own Resource-ID");
            assert!(value.exists);
            held.insert(i, value.value);
        }
    }
    // And one by one, as a Fetch for a single key asks.
    for (&i, content) in &held {
        let spec = StoredDataSpecifier {
            kind: KIND,
            generation: 0,
            model_specifier: ModelSpecifier::Dictionary(vec![DictionaryKey(key_of(i))]),
        };
        let got = node.data_store().fetch(t, &resource_of(i), &spec).values;
        assert_eq!(got.len(), 1);
        assert_eq!(&got[0].value.data_value().value, content);
    }
    held
}

#[test]
fn acknowledged_stores_survive_sigkill() {
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| now().as_micros() | 1);
    println!("crash_safety seed {seed} ({SEED_ENV}={seed} replays it)");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = dir.path().join("peer").join("store.redb");
    let mut all_acked = BTreeSet::new();
    // Values that may be present without an acknowledgement: per round, the store
    // after the last acknowledged one (committed, killed before its ACK).
    let mut maybe = BTreeSet::new();
    let mut committed_unacked = 0;
    for round in 0..ROUNDS {
        let first = round * ROUND_STRIDE;
        let kill = if rng.below(2) == 0 {
            KillPoint::Acks(1 + usize::try_from(rng.below(80)).unwrap_or(0))
        } else {
            KillPoint::Delay(Duration::from_micros(rng.below(30_000)))
        };
        let started = Instant::now();
        let r = run_round(&db, first, &kill);
        // Stores are acknowledged in order, each once.
        let expected: Vec<u64> = (first..first + r.acked.len() as u64).collect();
        assert_eq!(r.acked, expected, "round {round}: acknowledgements in order");
        all_acked.extend(r.acked.iter().copied());
        maybe.insert(first + r.acked.len() as u64);

        let reopened = Instant::now();
        let held = values_after_restart(&db);
        let reopened = reopened.elapsed();
        let lost: Vec<u64> = all_acked.iter().filter(|i| !held.contains_key(i)).copied().collect();
        assert!(lost.is_empty(), "round {round}: acknowledged values lost: {lost:?}");
        for (i, content) in &held {
            assert_eq!(content, &content_of(*i), "value {i} has its content");
        }
        let extra: Vec<u64> = held
            .keys()
            .filter(|i| !all_acked.contains(i) && !maybe.contains(i))
            .copied()
            .collect();
        assert!(
            extra.is_empty(),
            "round {round}: values that were never stored: {extra:?}"
        );
        let unacked = held.contains_key(&(first + r.acked.len() as u64));
        committed_unacked += usize::from(unacked);
        println!(
            "round {round}: kill {kill:?}, {} acks in {:?}, {} values held (the next store committed \
             but not acknowledged: {unacked}), reopen and check {reopened:?}",
            r.acked.len(),
            started.elapsed(),
            held.len()
        );
    }
    assert!(!all_acked.is_empty(), "the child acknowledged stores");
    println!(
        "{} stores acknowledged over {ROUNDS} kills; {committed_unacked} kills fell between a commit and its ACK",
        all_acked.len()
    );
}
