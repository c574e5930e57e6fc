//! A real overlay of `p2psip` processes on 127.0.0.1: one enrollment server, ten
//! peers enrolled through it, a client; 1,000 values stored through the peers and
//! fetched through other peers and through the client; three peers killed with
//! SIGKILL, every value still fetchable; the three restarted from their data
//! directories, rejoining and serving what they stored. Once over TLS and once
//! over DTLS (the configuration's overlay-link-protocol chooses).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Overlay, Proc};
use serde_json::json;

const PEERS: usize = 10;
const VALUES: usize = 1000;

fn ok(answer: &serde_json::Value, what: &str) {
    assert_eq!(answer["ok"], json!(true), "{what}: {answer}");
}

/// The value stored as number `v`, and where: peer `v % PEERS`, iteration `v / PEERS + 1`.
fn placement(v: usize) -> (usize, usize) {
    (v % PEERS, v / PEERS + 1)
}

fn fetched_value(answer: &serde_json::Value) -> Option<String> {
    answer["values"]
        .as_array()?
        .iter()
        .find(|v| v["exists"] == json!(true))
        .and_then(|v| v["value"].as_str().map(str::to_owned))
}

/// Fetches value `v` through `via`, retrying (bounded) while the overlay repairs.
fn fetch_eventually(via: &mut Proc, node_ids: &[String], v: usize, limit: Duration) -> Option<String> {
    let (p, i) = placement(v);
    let deadline = Instant::now() + limit;
    loop {
        let a = via.ask(&json!({"op": "get", "resource": format!("node:{}/{i}", node_ids[p])}));
        if let Some(value) = fetched_value(&a) {
            return Some(value);
        }
        if Instant::now() > deadline {
            eprintln!("value {v} through {}: {a}", via.name);
            return None;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Three peers to kill, none of them the bootstrap peer, spread around the ring:
/// positions k, k+3 and k+6 in Node-ID order. A value lives on its responsible peer
/// and that peer's two successors (RFC 6940 §10.4), so three consecutive peers dying
/// at once lose the responsible range of the first of them by design; any other
/// three must lose nothing.
fn spread_in_ring(node_ids: &[String]) -> [usize; 3] {
    let mut ring: Vec<usize> = (0..node_ids.len()).collect();
    ring.sort_by(|a, b| node_ids[*a].cmp(&node_ids[*b]));
    let n = ring.len();
    (0..n)
        .map(|k| [ring[k], ring[(k + 3) % n], ring[(k + 6) % n]])
        .find(|set| !set.contains(&0))
        .expect("ten peers leave a choice without the bootstrap peer")
}

fn overlay_survives_kills_and_restarts(link: &str) {
    let started = Instant::now();
    let ov = Overlay::new(&format!("{link}-processes.test"), link);
    let data: Vec<_> = (0..PEERS).map(|i| ov.enroll(&format!("peer{i}"))).collect();
    let client_data = ov.enroll("carol");

    let mut peers: Vec<Option<Proc>> = Vec::new();
    let mut node_ids = Vec::new();
    let mut addrs = Vec::new();
    for (i, d) in data.iter().enumerate() {
        let listen = if i == 0 {
            ov.bootstrap.to_string()
        } else {
            "127.0.0.1:0".to_owned()
        };
        let mut p = ov.peer(&format!("peer{i}"), d, &listen);
        let (id, addr) = p.listening();
        // The control channel answers once the peer has joined.
        let status = p.ask(&json!({"op": "status"}));
        ok(&status, &format!("peer{i} status"));
        assert_eq!(
            status["detail"]["state"],
            json!("Joined"),
            "peer{i}: {status}\n{}",
            ov.log(&format!("peer{i}"))
        );
        node_ids.push(id);
        addrs.push(addr);
        peers.push(Some(p));
    }
    let mut client = ov.client("carol", &client_data);
    client.listening();
    eprintln!("{link}: {PEERS} peers and a client up in {:?}", started.elapsed());

    // Store 1,000 values, each through the peer whose NODE-MULTIPLE slot it uses.
    let t = Instant::now();
    for v in 0..VALUES {
        let (p, i) = placement(v);
        let peer = peers[p].as_mut().unwrap();
        let a = peer.ask(&json!({"op": "put", "resource": format!("self/{i}"), "value": format!("value-{v}")}));
        ok(&a, &format!("put {v} through peer{p}"));
    }
    eprintln!("{link}: {VALUES} puts in {:?}", t.elapsed());

    // Fetch each through another peer, and every tenth through the client.
    let t = Instant::now();
    for v in 0..VALUES {
        let (p, _) = placement(v);
        let via = peers[(p + 3) % PEERS].as_mut().unwrap();
        assert_eq!(
            fetch_eventually(via, &node_ids, v, Duration::ZERO),
            Some(format!("value-{v}"))
        );
        if v % 10 == 0 {
            assert_eq!(
                fetch_eventually(&mut client, &node_ids, v, Duration::ZERO),
                Some(format!("value-{v}"))
            );
        }
    }
    eprintln!("{link}: {} gets in {:?}", VALUES + VALUES / 10, t.elapsed());

    // kill -9 three peers; every value must still be fetchable once the ring repairs.
    let killed = spread_in_ring(&node_ids);
    for k in killed {
        peers[k].take().unwrap().kill9();
    }
    // Read half of the values through a surviving peer other than the bootstrap peer.
    let survivor = (1..PEERS).find(|i| !killed.contains(i)).expect("seven peers survive");
    let t = Instant::now();
    let mut missing = Vec::new();
    for v in 0..VALUES {
        let via = if v % 2 == 0 {
            peers[survivor].as_mut().expect("a survivor is running")
        } else {
            &mut client
        };
        if fetch_eventually(via, &node_ids, v, Duration::from_secs(20)) != Some(format!("value-{v}")) {
            missing.push(v);
        }
    }
    assert!(missing.is_empty(), "{link}: values lost after the kills: {missing:?}");
    eprintln!(
        "{link}: every value fetchable after 3 kills, checked in {:?}",
        t.elapsed()
    );

    // Restart the three from their data directories: they rejoin and serve their data.
    for k in killed {
        let mut p = ov.peer(&format!("peer{k}-again"), &data[k], "127.0.0.1:0");
        let (id, _) = p.listening();
        assert_eq!(id, node_ids[k], "peer{k} came back under another Node-ID");
        let status = p.ask(&json!({"op": "status"}));
        if status["detail"]["state"] != json!("Joined") {
            // The control channel reported the failed join first; the status follows.
            let status = p.line(Duration::from_secs(10));
            panic!(
                "peer{k} again did not join: {status}\n{}",
                ov.log(&format!("peer{k}-again"))
            );
        }
        peers[k] = Some(p);
    }
    for k in killed {
        let p = peers[k].as_mut().unwrap();
        for v in (0..VALUES).filter(|v| placement(*v).0 == k).step_by(7) {
            assert_eq!(
                fetch_eventually(p, &node_ids, v, Duration::from_secs(20)),
                Some(format!("value-{v}")),
                "through restarted peer{k}"
            );
        }
    }
    let restored: u64 = killed
        .iter()
        .map(|k| {
            let s = peers[*k].as_mut().unwrap().ask(&json!({"op": "status"}));
            s["detail"]["stored_resources"].as_u64().unwrap_or(0)
        })
        .sum();
    assert!(restored > 0, "the restarted peers hold no values");
    eprintln!("{link}: whole run {:?}", started.elapsed());

    for p in peers.into_iter().flatten() {
        p.finish(Duration::from_secs(5));
    }
    client.finish(Duration::from_secs(5));
}

#[test]
fn a_tls_overlay_of_processes_survives_kills_and_restarts() {
    overlay_survives_kills_and_restarts("tls");
}

#[test]
fn a_dtls_overlay_of_processes_survives_kills_and_restarts() {
    overlay_survives_kills_and_restarts("dtls");
}
