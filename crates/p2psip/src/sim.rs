//! `p2psip sim`: run a simulated overlay and report on it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use reload_sim::{Churn, Latency, SessionTimes, SimConfig, Simulator};

/// Arguments of `p2psip sim`.
#[derive(Args)]
pub struct SimArgs {
    /// Peers in the overlay (the ring is built by joins).
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Clients attached to the overlay.
    #[arg(long, default_value_t = 0)]
    clients: usize,
    /// Lookups to random Resource-IDs once the ring is built.
    #[arg(long, default_value_t = 10_000)]
    lookups: usize,
    /// Lookups per second across the overlay.
    #[arg(long, default_value_t = 1000.0)]
    lookup_rate: f64,
    /// Peers joining per second while the ring is built.
    #[arg(long, default_value_t = 50.0)]
    join_rate: f64,
    /// Simulated time to run the workload for (e.g. 1h, 90s); at least as long as the lookups take.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    duration: Duration,
    /// Seed: the same seed gives the same report.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// One-way latency: `constant:MS`, `uniform:MIN:MAX` (ms), or `matrix:FILE` (rows of ms).
    #[arg(long, default_value = "uniform:5:50")]
    latency: String,
    /// Extra random delay per message, ms.
    #[arg(long, default_value_t = 1.0)]
    jitter: f64,
    /// Probability that a message is lost.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Median session time under churn (e.g. 30m, 1.4m); no churn if absent.
    #[arg(long, value_parser = parse_duration)]
    churn_median: Option<Duration>,
    /// Session time distribution: exponential or pareto.
    #[arg(long, default_value = "exponential")]
    churn_distribution: String,
    /// Pareto shape, for --churn-distribution pareto.
    #[arg(long, default_value_t = 1.5)]
    pareto_alpha: f64,
    /// Fraction of departures that are graceful Leaves (the rest crash).
    #[arg(long, default_value_t = 0.0)]
    graceful: f64,
    /// Fraction of peers that crash at once at --crash-at.
    #[arg(long, default_value_t = 0.0)]
    crash_fraction: f64,
    /// When the scripted crash happens, after the ring is built.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    crash_at: Duration,
    /// chord-update-interval.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    update_interval: Duration,
    /// chord-ping-interval (finger refresh).
    #[arg(long, value_parser = parse_duration, default_value = "300s")]
    ping_interval: Duration,
    /// Values to store after the build. With --crash-fraction, their live copies are
    /// counted every second after the crash (the report gives the time until every
    /// surviving value is back to three copies) and 60 s after it every value is fetched.
    #[arg(long, default_value_t = 0)]
    values: usize,
    /// Link failures per link per hour (both ends stay up; the link breaks).
    #[arg(long, default_value_t = 0.0)]
    link_failures: f64,
    /// Link MTU in bytes: larger messages are fragmented (RFC 6940 §6.7).
    #[arg(long)]
    mtu: Option<usize>,
    /// How long the link layer takes to notice a dead peer.
    #[arg(long, value_parser = parse_duration, default_value = "3.5s")]
    failure_detection: Duration,
    /// Stabilization time between the last join and the workload.
    #[arg(long, value_parser = parse_duration, default_value = "300s")]
    settle: Duration,
    /// Write the report as JSON here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write PNG plots of the report (hops, latency CDF, success, ring) into this directory.
    #[arg(long, value_name = "DIR")]
    plots: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Parses `90`, `90s`, `1.4m`, `2h`, `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {s:?} (try 90s, 1.4m, 2h)"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("not a duration: {s:?}"));
    }
    Ok(Duration::from_secs_f64(v * scale))
}

fn parse_latency(s: &str) -> Result<Latency> {
    let parts: Vec<&str> = s.split(':').collect();
    let num = |p: &str| p.parse::<f64>().with_context(|| format!("bad latency number {p:?}"));
    Ok(match parts.as_slice() {
        ["constant", ms] => Latency::Constant { ms: num(ms)? },
        ["uniform", min, max] => Latency::Uniform {
            min_ms: num(min)?,
            max_ms: num(max)?,
        },
        ["matrix", path] => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
            let ms = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| l.split([',', ' ', '\t']).filter(|x| !x.is_empty()).map(num).collect())
                .collect::<Result<Vec<Vec<f64>>>>()?;
            if ms.is_empty() || ms.iter().any(|r| r.len() != ms.len()) {
                bail!("latency matrix in {path} must be square");
            }
            Latency::Matrix { ms }
        }
        _ => bail!("latency is constant:MS, uniform:MIN:MAX or matrix:FILE, not {s:?}"),
    })
}

/// Runs `p2psip sim`.
pub fn run(a: SimArgs) -> Result<()> {
    if !(0.0..=1.0).contains(&a.loss) || !(0.0..=1.0).contains(&a.crash_fraction) || !(0.0..=1.0).contains(&a.graceful)
    {
        bail!("--loss, --crash-fraction and --graceful are fractions between 0 and 1");
    }
    if a.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    let churn = match a.churn_median {
        None => None,
        Some(m) => Some(Churn {
            sessions: match a.churn_distribution.as_str() {
                "exponential" | "exp" => SessionTimes::Exponential {
                    median_s: m.as_secs_f64(),
                },
                "pareto" => SessionTimes::Pareto {
                    median_s: m.as_secs_f64(),
                    alpha: a.pareto_alpha,
                },
                other => bail!("--churn-distribution is exponential or pareto, not {other:?}"),
            },
            graceful_fraction: a.graceful,
        }),
    };
    let cfg = SimConfig {
        seed: a.seed,
        nodes: a.nodes,
        clients: a.clients,
        join_rate: a.join_rate,
        lookups: a.lookups,
        lookup_rate: a.lookup_rate,
        duration: a.duration,
        latency: parse_latency(&a.latency)?,
        jitter_ms: a.jitter,
        loss: a.loss,
        failure_detection: a.failure_detection,
        churn,
        crash_fraction: a.crash_fraction,
        crash_at: a.crash_at,
        update_interval: a.update_interval,
        ping_interval: a.ping_interval,
        settle: a.settle,
        link_failures_per_hour: a.link_failures,
        values: a.values,
        mtu: a.mtu,
        ..SimConfig::default()
    };
    let bar = (!a.quiet).then(|| {
        let bar = indicatif::ProgressBar::new(1000);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {percent}% {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message(format!("{} peers", a.nodes));
        bar
    });
    let report = Simulator::new(cfg).run(|f| {
        if let Some(b) = &bar {
            b.set_position((f * 1000.0) as u64);
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    print!("{}", report.summary());
    if let Some(line) = report.storage_summary() {
        print!("{line}");
    }
    if let Some(path) = &a.report {
        std::fs::write(path, report.to_json()).with_context(|| format!("writing {}", path.display()))?;
        println!("report written to {}", path.display());
    }
    if let Some(dir) = &a.plots {
        for path in crate::plots::write_plots(&report, dir)? {
            println!("plot written to {}", path.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.4m"), Ok(Duration::from_secs(84)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn latency_models_parse() {
        assert_eq!(parse_latency("constant:20").ok(), Some(Latency::Constant { ms: 20.0 }));
        assert!(parse_latency("uniform:5").is_err());
    }
}
