//! What a run measured, as a summary and as JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use reload_core::{Stats, Time};
use serde::Serialize;

use crate::config::SimConfig;

/// Counters and samples gathered during a run.
#[derive(Default)]
pub struct Metrics {
    pub(crate) build_time: Time,
    pub(crate) joined_at_build: usize,
    pub(crate) memory_per_node: Option<u64>,
    pub(crate) joins: u64,
    pub(crate) rejoins: u64,
    pub(crate) crashes: u64,
    pub(crate) leaves: u64,
    pub(crate) link_failures: u64,
    pub(crate) values_stored: u64,
    pub(crate) values_with_live_copy: u64,
    pub(crate) values_fetchable: u64,
    pub(crate) live_copies: u64,
    /// Stored values with a live copy right after the scripted crash.
    pub(crate) values_surviving: u64,
    /// Values acknowledged before the scripted crash.
    pub(crate) values_stored_before_crash: Option<u64>,
    /// Surviving values at the replica set's size when checked, without a crash
    /// (with one, the last recovery sample says).
    pub(crate) at_target_at_check: Option<u64>,
    recovery: Vec<RecoverySample>,
    /// When every surviving value was first back at the replica set's size.
    recovered_after: Option<Duration>,
    hops: Vec<u8>,
    latencies_us: Vec<u64>,
    lookups_ok: u64,
    lookups_correct: u64,
    lookups_timeout: u64,
    lookups_error: u64,
    pub(crate) lookups_abandoned: u64,
    /// (time, ok) of each finished lookup, for success over time.
    outcomes: Vec<(Time, bool)>,
    ring: Vec<RingSample>,
    traffic_since: Time,
    maintenance_msgs: u64,
    maintenance_bytes: u64,
    lookup_msgs: u64,
    lookup_bytes: u64,
    pub(crate) lost: u64,
    pub(crate) lost_to_dead: u64,
    pub(crate) sent_on_closed_link: u64,
}

impl Metrics {
    pub(crate) fn reset_traffic(&mut self, now: Time) {
        self.traffic_since = now;
        self.maintenance_msgs = 0;
        self.maintenance_bytes = 0;
        self.lookup_msgs = 0;
        self.lookup_bytes = 0;
    }

    pub(crate) fn count_traffic(&mut self, lookup: bool, bytes: usize) {
        if lookup {
            self.lookup_msgs += 1;
            self.lookup_bytes += bytes as u64;
        } else {
            self.maintenance_msgs += 1;
            self.maintenance_bytes += bytes as u64;
        }
    }

    pub(crate) fn lookup_ok(&mut self, now: Time, hops: u8, latency: Duration, correct: bool) {
        self.lookups_ok += 1;
        self.lookups_correct += u64::from(correct);
        self.hops.push(hops);
        self.latencies_us
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        self.outcomes.push((now, true));
    }

    pub(crate) fn lookup_failed(&mut self, now: Time, error: bool) {
        if error {
            self.lookups_error += 1;
        } else {
            self.lookups_timeout += 1;
        }
        self.outcomes.push((now, false));
    }

    /// One count of the surviving values' live copies, `since` the crash.
    pub(crate) fn copy_sample(&mut self, since: Duration, at_target: u64, without_copy: u64, surviving: u64) {
        if at_target == surviving && self.recovered_after.is_none() {
            self.recovered_after = Some(since);
        }
        self.at_target_at_check = Some(at_target);
        self.recovery.push(RecoverySample {
            t_s: since.as_secs_f64(),
            at_three_copies: at_target as f64 / surviving.max(1) as f64,
            without_copy,
        });
    }

    pub(crate) fn ring_sample(&mut self, now: Time, correct: f64, peers: usize) {
        self.ring.push(RingSample {
            t_s: now.as_micros() as f64 / 1e6,
            correct,
            peers,
        });
    }
}

/// Ring correctness at one moment.
#[derive(Clone, Debug, Serialize)]
pub struct RingSample {
    /// Simulated seconds.
    pub t_s: f64,
    /// Fraction of live peers whose successor and predecessor are right.
    pub correct: f64,
    /// Live joined peers.
    pub peers: usize,
}

/// The surviving values' copies at one moment after the scripted crash.
#[derive(Clone, Debug, Serialize)]
pub struct RecoverySample {
    /// Simulated seconds since the crash.
    pub t_s: f64,
    /// Fraction of the surviving values with three live copies (one per live
    /// peer if fewer than three peers are left).
    pub at_three_copies: f64,
    /// Surviving values that have no live copy any more.
    pub without_copy: u64,
}

/// Distribution summary.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

fn summarize(mut v: Vec<f64>) -> Summary {
    if v.is_empty() {
        return Summary::default();
    }
    v.sort_by(f64::total_cmp);
    let pick = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Summary {
        mean: v.iter().sum::<f64>() / v.len() as f64,
        p50: pick(0.5),
        p95: pick(0.95),
        p99: pick(0.99),
        max: v[v.len() - 1],
    }
}

/// Lookup outcomes.
#[derive(Clone, Debug, Serialize)]
pub struct Lookups {
    /// Lookups issued.
    pub issued: u64,
    /// Answered.
    pub succeeded: u64,
    /// No answer after every retransmission.
    pub timed_out: u64,
    /// Answered with an Error.
    pub errors: u64,
    /// Lost with their origin (it crashed first); not counted either way.
    pub abandoned: u64,
    /// succeeded / (succeeded + timed_out + errors).
    pub success_rate: f64,
    /// Fraction of answers that came from the truly responsible peer.
    pub correct_responder_rate: f64,
    /// Overlay hops of answered lookups.
    pub hops: Summary,
    /// Hop count histogram: index = hops.
    pub hop_histogram: Vec<u64>,
    /// Lookup latency in milliseconds.
    pub latency_ms: Summary,
    /// Latency CDF: the latency (ms) at each percentile 0, 1, ..., 100.
    pub latency_cdf_ms: Vec<f64>,
    /// Success rate over time: lookups grouped by the simulated minute they finished in.
    pub success_over_time: Vec<SuccessSample>,
}

/// Lookup success in one time slice.
#[derive(Clone, Debug, Serialize)]
pub struct SuccessSample {
    /// Start of the slice, simulated seconds.
    pub t_s: f64,
    /// Lookups that finished in the slice.
    pub finished: u64,
    /// The fraction of them answered.
    pub success: f64,
}

/// Traffic per live node per second during the workload.
#[derive(Clone, Debug, Serialize)]
pub struct Traffic {
    /// Maintenance messages (Attach, Join, Update, Leave...) per node per second.
    pub maintenance_msgs_per_node_s: f64,
    /// Maintenance bytes per node per second.
    pub maintenance_bytes_per_node_s: f64,
    /// Lookup messages (Ping) per node per second.
    pub lookup_msgs_per_node_s: f64,
    /// Lookup bytes per node per second.
    pub lookup_bytes_per_node_s: f64,
}

/// The report of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The configuration that ran.
    pub config: SimConfig,
    /// What stood in for the security layer.
    pub security: &'static str,
    /// Peers joined when the workload started.
    pub peers_joined_at_build: usize,
    /// Simulated seconds the build (joins and settling) took.
    pub build_time_s: f64,
    /// Simulated seconds in all.
    pub simulated_s: f64,
    /// Nodes ever created (peers, clients and churn newcomers).
    pub nodes_created: usize,
    /// Joins completed, rejoins, crashes and graceful leaves.
    pub joins: u64,
    /// Nodes that lost their place and joined again.
    pub rejoins: u64,
    /// Crashes.
    pub crashes: u64,
    /// Graceful leaves.
    pub leaves: u64,
    /// Links broken by the link failure model.
    pub link_failures: u64,
    /// The value workload, if any.
    pub storage: Option<StorageReport>,
    /// Lookups.
    pub lookups: Lookups,
    /// Traffic.
    pub traffic: Traffic,
    /// Ring correctness over time.
    pub ring_correctness: Vec<RingSample>,
    /// Messages the network lost (loss model) and sent to dead nodes.
    pub messages_lost: u64,
    /// Messages sent to nodes that had crashed.
    pub messages_to_dead_nodes: u64,
    /// Sum of every node's counters.
    pub node_totals: Stats,
    /// Measurements of the host running the simulation. Everything else in the
    /// report is a function of the configuration and seed; these are not.
    pub host: Host,
}

/// How stored values fared.
#[derive(Clone, Debug, Serialize)]
pub struct StorageReport {
    /// Values the responsible peers accepted.
    pub values_stored: u64,
    /// Values that still had a copy on a live peer when they were checked.
    pub with_live_copy: u64,
    /// Values a Fetch still found.
    pub fetchable: u64,
    /// fetchable / stored.
    pub fetchable_rate: f64,
    /// fetchable / with a live copy.
    pub fetchable_of_surviving: f64,
    /// Live copies per stored value when checked (3 when nothing was lost).
    pub mean_live_copies: f64,
    /// Values whose Store was acknowledged before the scripted crash (`None`
    /// without a crash).
    pub stored_before_crash: Option<u64>,
    /// Values that kept at least one live copy through the scripted crash; without
    /// a crash, the values with a live copy at the check.
    pub surviving: u64,
    /// Simulated seconds from the crash until every surviving value was first back
    /// at three live copies (or one per live peer if fewer than three are left),
    /// counted once a second (§10.4, §10.7.3). `None` without a crash, or if that
    /// did not happen by the check.
    pub recovery_to_three_copies_s: Option<f64>,
    /// Fraction of the surviving values with three live copies at the check.
    pub at_three_copies_at_check: f64,
    /// The surviving values' copies once a second from the crash to the check.
    pub recovery: Vec<RecoverySample>,
}

/// What the machine running the simulation measured.
#[derive(Clone, Debug, Serialize)]
pub struct Host {
    /// Wall-clock seconds of the run.
    pub wall_s: f64,
    /// Resident memory per node after the build, in bytes (process RSS / nodes).
    pub memory_per_node_bytes: Option<u64>,
}

pub(crate) fn add_stats(t: &mut Stats, s: &Stats) {
    macro_rules! sum {
        ($($f:ident),*) => { $( t.$f += s.$f; )* };
    }
    sum!(
        received,
        sent,
        local_deliveries,
        forwarded,
        retransmissions,
        requests_failed,
        requests_answered,
        errors_sent,
        updates_sent,
        attaches_sent,
        attach_refused,
        attach_tie_breaks,
        joins_admitted,
        join_refused,
        leaves_received,
        neighbor_failures,
        replica_stores_sent,
        replica_stores_failed,
        resyncs,
        fetched_values_rejected,
        resources_dropped,
        partitions_detected,
        links_pruned,
        bootstrap_failures,
        connect_failures,
        fragments_sent,
        fragments_received,
        dropped_reassembly,
        dropped_malformed,
        dropped_incompatible,
        dropped_ttl,
        dropped_loop,
        detours,
        dropped_no_route,
        dropped_bad_signature,
        dropped_unknown_link,
        dropped_unexpected_response,
        dropped_wrong_responder,
        send_no_route,
        send_too_large
    );
}

/// Resident memory of this process, from /proc (Linux); `None` elsewhere.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

impl Report {
    pub(crate) fn new(cfg: &SimConfig, m: Metrics, totals: Stats, end: Time, wall: Duration, created: usize) -> Self {
        let finished = m.lookups_ok + m.lookups_timeout + m.lookups_error;
        let mut histogram = vec![0u64; m.hops.iter().copied().max().map_or(0, usize::from) + 1];
        for h in &m.hops {
            histogram[usize::from(*h)] += 1;
        }
        let mut slices: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for (t, ok) in &m.outcomes {
            let e = slices.entry(t.as_micros() / 60_000_000).or_default();
            e.0 += 1;
            e.1 += u64::from(*ok);
        }
        let success_over_time = slices
            .into_iter()
            .map(|(minute, (n, ok))| SuccessSample {
                t_s: (minute * 60) as f64,
                finished: n,
                success: ok as f64 / n as f64,
            })
            .collect();
        let mut lat: Vec<f64> = m.latencies_us.iter().map(|l| *l as f64 / 1000.0).collect();
        lat.sort_by(f64::total_cmp);
        let latency_cdf_ms = if lat.is_empty() {
            Vec::new()
        } else {
            (0..=100).map(|p| lat[(lat.len() - 1) * p / 100]).collect()
        };
        let workload_s = end.since(m.traffic_since).as_secs_f64().max(1e-9);
        let live = m.ring.last().map_or(1, |s| s.peers.max(1)) as f64;
        let per = |x: u64| x as f64 / live / workload_s;
        Report {
            config: cfg.clone(),
            security: "stand-in (insecure, simulation only): messages carry a keyless 64-bit checksum instead of a signature",
            peers_joined_at_build: m.joined_at_build,
            build_time_s: m.build_time.as_micros() as f64 / 1e6,
            simulated_s: end.as_micros() as f64 / 1e6,
            nodes_created: created,
            joins: m.joins,
            rejoins: m.rejoins,
            crashes: m.crashes,
            leaves: m.leaves,
            link_failures: m.link_failures,
            storage: (cfg.values > 0).then(|| StorageReport {
                values_stored: m.values_stored,
                with_live_copy: m.values_with_live_copy,
                fetchable: m.values_fetchable,
                fetchable_rate: m.values_fetchable as f64 / m.values_stored.max(1) as f64,
                fetchable_of_surviving: m.values_fetchable as f64 / m.values_with_live_copy.max(1) as f64,
                mean_live_copies: m.live_copies as f64 / m.values_stored.max(1) as f64,
                stored_before_crash: m.values_stored_before_crash,
                surviving: m.values_surviving,
                recovery_to_three_copies_s: m.recovered_after.map(|d| d.as_secs_f64()),
                at_three_copies_at_check: if m.values_surviving == 0 {
                    // Nothing to bring back: vacuously complete.
                    1.0
                } else {
                    m.at_target_at_check.unwrap_or(0) as f64 / m.values_surviving as f64
                },
                recovery: m.recovery.clone(),
            }),
            lookups: Lookups {
                issued: finished + m.lookups_abandoned,
                succeeded: m.lookups_ok,
                timed_out: m.lookups_timeout,
                errors: m.lookups_error,
                abandoned: m.lookups_abandoned,
                success_rate: if finished == 0 {
                    0.0
                } else {
                    m.lookups_ok as f64 / finished as f64
                },
                correct_responder_rate: if m.lookups_ok == 0 {
                    0.0
                } else {
                    m.lookups_correct as f64 / m.lookups_ok as f64
                },
                hops: summarize(m.hops.iter().map(|h| f64::from(*h)).collect()),
                hop_histogram: histogram,
                latency_ms: summarize(lat),
                latency_cdf_ms,
                success_over_time,
            },
            traffic: Traffic {
                maintenance_msgs_per_node_s: per(m.maintenance_msgs),
                maintenance_bytes_per_node_s: per(m.maintenance_bytes),
                lookup_msgs_per_node_s: per(m.lookup_msgs),
                lookup_bytes_per_node_s: per(m.lookup_bytes),
            },
            ring_correctness: m.ring,
            messages_lost: m.lost,
            messages_to_dead_nodes: m.lost_to_dead + m.sent_on_closed_link,
            node_totals: totals,
            host: Host {
                wall_s: wall.as_secs_f64(),
                memory_per_node_bytes: m.memory_per_node,
            },
        }
    }

    /// The human summary.
    pub fn summary(&self) -> String {
        let l = &self.lookups;
        let last_ring = self.ring_correctness.last().map_or(0.0, |s| s.correct);
        format!(
            "peers {} (joined at build {}), simulated {:.0} s in {:.1} s wall, {} per node\n\
             lookups: {} issued, {:.4} success ({} timed out, {} errors, {} abandoned), {:.4} from the responsible peer\n\
             hops: mean {:.2}, p50 {}, p95 {}, max {}\n\
             latency ms: p50 {:.1}, p95 {:.1}, p99 {:.1}\n\
             traffic per node per s: maintenance {:.2} msgs / {:.0} B, lookups {:.2} msgs / {:.0} B\n\
             ring correct at end: {:.4}; joins {}, rejoins {}, crashes {}, leaves {}, link failures {}\n\
             security: {}\n",
            self.config.nodes,
            self.peers_joined_at_build,
            self.simulated_s,
            self.host.wall_s,
            self.host
                .memory_per_node_bytes
                .map_or("? B".into(), |b| format!("{} KiB", b / 1024)),
            l.issued,
            l.success_rate,
            l.timed_out,
            l.errors,
            l.abandoned,
            l.correct_responder_rate,
            l.hops.mean,
            l.hops.p50,
            l.hops.p95,
            l.hops.max,
            l.latency_ms.p50,
            l.latency_ms.p95,
            l.latency_ms.p99,
            self.traffic.maintenance_msgs_per_node_s,
            self.traffic.maintenance_bytes_per_node_s,
            self.traffic.lookup_msgs_per_node_s,
            self.traffic.lookup_bytes_per_node_s,
            last_ring,
            self.joins,
            self.rejoins,
            self.crashes,
            self.leaves,
            self.link_failures,
            self.security,
        )
    }

    /// The storage line of the summary, if values were stored.
    pub fn storage_summary(&self) -> Option<String> {
        let s = self.storage.as_ref()?;
        let recovery = match (s.stored_before_crash, s.recovery_to_three_copies_s) {
            (None, _) => format!("{} with a live copy (no crash)", s.surviving),
            (Some(before), Some(t)) => format!(
                "{} of the {before} stored before the crash survived it, all back to three copies {t:.0} s after it",
                s.surviving
            ),
            (Some(before), None) => format!(
                "{} of the {before} stored before the crash survived it, not all back to three copies by the check",
                s.surviving
            ),
        };
        Some(format!(
            "values: {} stored, {} with a live copy, {} fetchable ({:.4} of all, {:.4} of those with a copy), {:.2} live copies each\n\
             copies: {}; {:.4} of them at three copies at the check\n",
            s.values_stored,
            s.with_live_copy,
            s.fetchable,
            s.fetchable_rate,
            s.fetchable_of_surviving,
            s.mean_live_copies,
            recovery,
            s.at_three_copies_at_check,
        ))
    }

    /// The report as JSON without the host measurements: identical for identical
    /// configuration and seed.
    pub fn deterministic_json(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.remove("host");
        }
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}
