//! Two `FramedLink`s talking through a simulated network that loses, delays and
//! reorders frames (RFC 6940 §6.6.3): every message gets through unless the
//! sender declares the link failed, nothing arrives that was not sent, and nothing
//! panics. A virtual clock drives both ends, so the runs are deterministic.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use reload_net::framed::{FramedEvent, FramedLink, Reliability};

/// A small deterministic generator (xorshift64*), so that a proptest case is
/// reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Side {
    link: FramedLink,
    /// Messages still to hand to the link, by the virtual time they are due.
    to_send: Vec<(Duration, Vec<u8>)>,
    sent: Vec<Vec<u8>>,
    delivered: Vec<Vec<u8>>,
    failed: bool,
    suspects: usize,
}

struct Outcome {
    sides: [Side; 2],
}

/// Runs the pair until neither end has anything left to do.
fn simulate(
    reliability: Reliability,
    seed: u64,
    loss_percent: u64,
    max_latency_ms: u64,
    counts: [usize; 2],
) -> Outcome {
    let t0 = Instant::now();
    let mut rng = Rng(seed | 1);
    let mut sides = [0usize, 1].map(|i| Side {
        link: FramedLink::new(reliability, 1000, t0),
        to_send: (0..counts[i])
            .map(|n| {
                let at = Duration::from_millis(rng.below(2000));
                let mut m = vec![u8::try_from(i).unwrap_or(0)];
                m.extend_from_slice(&u32::try_from(n).unwrap_or(0).to_be_bytes());
                m.resize(5 + usize::try_from(rng.below(40)).unwrap_or(0), 0xa5);
                (at, m)
            })
            .collect(),
        sent: Vec::new(),
        delivered: Vec::new(),
        failed: false,
        suspects: 0,
    });
    for s in &mut sides {
        s.to_send.sort_by_key(|(at, _)| *at);
        s.to_send.reverse();
    }
    // The network: frames in transit, by arrival time (and a counter, so equal
    // times keep their order), with their destination.
    let mut network: BTreeMap<(Instant, u64), (usize, Vec<u8>)> = BTreeMap::new();
    let mut counter = 0u64;
    let mut now = t0;
    for _step in 0..200_000 {
        // Put what each side wrote on the wire, losing some.
        for (from, side) in sides.iter_mut().enumerate() {
            while let Some(frame) = side.link.poll_frame() {
                if rng.below(100) < loss_percent {
                    continue;
                }
                let latency = Duration::from_millis(1 + rng.below(max_latency_ms));
                counter += 1;
                network.insert((now + latency, counter), (1 - from, frame));
            }
            while let Some(ev) = side.link.poll_event() {
                match ev {
                    FramedEvent::Failed(_) => side.failed = true,
                    FramedEvent::Suspect => side.suspects += 1,
                    FramedEvent::Rtt(_) | FramedEvent::Recovered => {}
                }
            }
        }
        // The next thing to happen.
        let mut next: Option<Instant> = network.keys().next().map(|k| k.0);
        for s in &sides {
            for t in [s.link.poll_timeout(), s.to_send.last().map(|(at, _)| t0 + *at)]
                .into_iter()
                .flatten()
            {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        let Some(t) = next else { break };
        now = now.max(t);
        // Deliver due frames.
        while let Some(entry) = network.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (to, frame) = entry.remove();
            match sides[to].link.handle_frame(now, &frame) {
                Ok(Some(m)) => sides[to].delivered.push(m),
                Ok(None) => {}
                Err(e) => assert!(sides[to].failed, "our own frames are valid: {e}"),
            }
        }
        for s in &mut sides {
            while s.to_send.last().is_some_and(|(at, _)| t0 + *at <= now) {
                let Some((_, m)) = s.to_send.pop() else { break };
                if s.link.send(now, m.clone()).is_ok() {
                    s.sent.push(m);
                }
            }
            if s.link.poll_timeout().is_some_and(|d| d <= now) {
                s.link.handle_timeout(now);
            }
        }
    }
    Outcome { sides }
}

fn check(outcome: &Outcome) {
    for (i, side) in outcome.sides.iter().enumerate() {
        let other = &outcome.sides[1 - i];
        let sent: HashSet<&Vec<u8>> = side.sent.iter().collect();
        let delivered: HashSet<&Vec<u8>> = other.delivered.iter().collect();
        // Nothing arrives that was not sent.
        assert!(
            delivered.is_subset(&sent),
            "side {} received a message never sent",
            1 - i
        );
        // Everything arrives, unless the sender gave the link up (§6.6.3.1).
        if !side.failed {
            assert_eq!(delivered.len(), sent.len(), "side {i} lost messages on a live link");
            assert_eq!(side.link.queued(), 0);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn simple_reliability_delivers_or_fails_over_a_lossy_channel(
        seed in any::<u64>(),
        loss in 0u64..60,
        latency in 1u64..80,
        a in 0usize..40,
        b in 0usize..40,
    ) {
        let outcome = simulate(Reliability::SimpleReliability, seed, loss, latency, [a, b]);
        check(&outcome);
    }

    #[test]
    fn frames_from_anywhere_never_panic(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..64)) {
        let t0 = Instant::now();
        for reliability in [Reliability::Stream, Reliability::SimpleReliability] {
            let mut link = FramedLink::new(reliability, 32, t0);
            let _ = link.send(t0, b"pending".to_vec());
            for (i, f) in frames.iter().enumerate() {
                let now = t0 + Duration::from_millis(u64::try_from(i).unwrap_or(0) * 300);
                let _ = link.handle_frame(now, f);
                link.handle_timeout(now);
                while link.poll_frame().is_some() {}
                while link.poll_event().is_some() {}
            }
        }
    }
}

#[test]
fn without_loss_nothing_fails_and_nothing_is_suspect() {
    for reliability in [Reliability::Stream, Reliability::SimpleReliability] {
        let outcome = simulate(reliability, 7, 0, 20, [50, 50]);
        check(&outcome);
        for s in &outcome.sides {
            assert!(!s.failed);
            assert_eq!(s.suspects, 0);
            assert_eq!(s.sent.len(), 50);
        }
    }
}

#[test]
fn a_dead_channel_fails_the_simple_reliability_link() {
    let outcome = simulate(Reliability::SimpleReliability, 11, 100, 10, [3, 0]);
    assert!(outcome.sides[0].failed);
    assert_eq!(outcome.sides[0].suspects, 1);
    assert!(outcome.sides[1].delivered.is_empty());
}
