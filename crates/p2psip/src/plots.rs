//! `p2psip sim --plots DIR`: PNG charts of a simulation report.
//!
//! Four charts, each titled and captioned with the run's key parameters:
//! `hops.png` (hop-count histogram), `latency_cdf.png` (lookup latency CDF),
//! `success.png` (lookup success per simulated minute) and `ring.png` (ring
//! correctness and live peers over simulated time). A chart without data says
//! so instead.
//!
//! Text is drawn with a TrueType font read from the system's font directories
//! (DejaVu Sans, Debian's fonts-dejavu-core, or Liberation Sans) and rasterized
//! by ab_glyph in Rust. The program therefore links no font libraries: every
//! `p2psip peer` process would otherwise load fontconfig and FreeType (and their
//! expat, libpng, zlib and brotli) only to never draw a chart, at about 80 KiB of
//! private memory per process for their relocated data.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use reload_sim::{Latency, Report, SessionTimes};

/// Pixel size of every chart.
const SIZE: (u32, u32) = (1100, 680);
/// Font family the charts ask for; [`register_font`] gives it a font file.
const FONT: &str = "sans-serif";
/// Where a sans-serif TrueType font is looked for, in order.
const FONT_FILES: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];
/// Main series colour.
const MAIN: RGBColor = RGBColor(31, 119, 180);
/// Secondary series colour.
const SECOND: RGBColor = RGBColor(230, 120, 20);
/// Muted text and marker lines.
const MUTED: RGBColor = RGBColor(110, 110, 110);

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type Plot = fn(&Report, &Area) -> Result<()>;

/// Writes the four PNG charts of `report` into `dir` (created if missing) and
/// returns their paths.
pub fn write_plots(report: &Report, dir: &Path) -> Result<Vec<PathBuf>> {
    register_font()?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let params = run_parameters(report);
    let charts: [(&str, &str, Plot); 4] = [
        ("hops.png", "Overlay hops per answered lookup", hops),
        ("latency_cdf.png", "Lookup latency CDF", latency_cdf),
        ("success.png", "Lookup success rate over simulated time", success),
        ("ring.png", "Ring correctness over simulated time", ring),
    ];
    let mut written = Vec::with_capacity(charts.len());
    for (name, title, draw) in charts {
        let path = dir.join(name);
        chart(&path, title, &params, |area| draw(report, area))
            .with_context(|| format!("plotting {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Reads the first font of [`FONT_FILES`] that exists and registers it as
/// [`FONT`], once per process.
fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let (path, bytes) = FONT_FILES
                .iter()
                .find_map(|p| std::fs::read(p).ok().map(|b| (*p, b)))
                .ok_or_else(|| {
                    format!(
                        "no font to draw the charts' text with; install Debian's fonts-dejavu-core \
                         (looked for {})",
                        FONT_FILES.join(", ")
                    )
                })?;
            // plotters keeps registered fonts for the life of the process, so the
            // bytes must live as long: this runs once, and the charts need them
            // until the program ends.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font(FONT, FontStyle::Normal, bytes)
                .map_err(|_| format!("{path} is not a font plotters can read"))
        })
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

/// Opens a PNG, draws the title and the run's parameters, lets `body` draw the
/// rest, and writes the file.
fn chart(path: &Path, title: &str, params: &str, body: impl FnOnce(&Area) -> Result<()>) -> Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).context("filling the background")?;
    let area = root
        .margin(12, 4, 4, 4)
        .titled(title, (FONT, 30))
        .context("drawing the title")?;
    let area = area
        .titled(params, (FONT, 17).into_font().color(&MUTED))
        .context("drawing the caption")?;
    body(&area)?;
    root.present().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Says in the middle of the chart that there is nothing to plot.
fn no_data(area: &Area, what: &str) -> Result<()> {
    let (w, h) = area.dim_in_pixel();
    let style = (FONT, 28)
        .into_font()
        .color(&MUTED)
        .pos(Pos::new(HPos::Center, VPos::Center));
    area.draw_text(&format!("no data: {what}"), &style, (w as i32 / 2, h as i32 / 2))
        .context("drawing the no-data note")?;
    Ok(())
}

/// The run's key parameters, for the caption.
fn run_parameters(r: &Report) -> String {
    let c = &r.config;
    let mut parts = vec![format!("nodes {}", c.nodes), format!("seed {}", c.seed)];
    if c.clients > 0 {
        parts.push(format!("clients {}", c.clients));
    }
    parts.push(format!("{} lookups at {}/s", c.lookups, c.lookup_rate));
    parts.push(match &c.latency {
        Latency::Constant { ms } => format!("latency {ms} ms"),
        Latency::Uniform { min_ms, max_ms } => format!("latency {min_ms}-{max_ms} ms"),
        Latency::Matrix { ms } => format!("latency matrix {0}x{0}", ms.len()),
    });
    if c.loss > 0.0 {
        parts.push(format!("loss {}", c.loss));
    }
    match &c.churn {
        None => parts.push("no churn".into()),
        Some(ch) => {
            let sessions = match ch.sessions {
                SessionTimes::Exponential { median_s } => format!("exponential sessions, median {}", secs(median_s)),
                SessionTimes::Pareto { median_s, alpha } => {
                    format!("Pareto sessions (alpha {alpha}), median {}", secs(median_s))
                }
            };
            parts.push(format!(
                "churn: {sessions}, {:.0}% graceful",
                ch.graceful_fraction * 100.0
            ));
        }
    }
    if c.crash_fraction > 0.0 {
        parts.push(format!(
            "{:.0}% crash at +{}",
            c.crash_fraction * 100.0,
            secs(c.crash_at.as_secs_f64())
        ));
    }
    parts.join(", ")
}

/// A duration in seconds, in a readable unit.
fn secs(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

/// The unit of a time axis that ends at `end_s`: (seconds per unit, name).
fn time_unit(end_s: f64) -> (f64, &'static str) {
    if end_s <= 900.0 {
        (1.0, "s")
    } else if end_s <= 36_000.0 {
        (60.0, "min")
    } else {
        (3600.0, "h")
    }
}

/// A time-axis tick label: no decimals unless the ticks are close.
fn time_label(x: &f64) -> String {
    if x.fract().abs() < 1e-9 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// The bottom of a fraction axis: at most 0.9, below the lowest value, on a 0.05 step.
fn fraction_floor(values: impl Iterator<Item = f64>) -> f64 {
    let lowest = values.filter(|v| v.is_finite()).fold(0.9f64, f64::min);
    (((lowest - 0.02) * 20.0).floor() / 20.0).clamp(0.0, 0.9)
}

/// Hop-count histogram, bars labelled with their share.
fn hops(r: &Report, area: &Area) -> Result<()> {
    let hist = &r.lookups.hop_histogram;
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return no_data(area, "no lookup was answered");
    }
    let last = hist.len().saturating_sub(1) as u32;
    let top = hist.iter().copied().max().unwrap_or(1);
    let mut chart = ChartBuilder::on(area)
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d((0u32..last).into_segmented(), 0u64..top + top / 8 + 1)
        .context("building the chart")?;
    let h = &r.lookups.hops;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(hist.len() + 1)
        .x_desc(format!(
            "overlay hops (mean {:.2}, p50 {}, p95 {}, max {})",
            h.mean, h.p50, h.p95, h.max
        ))
        .y_desc("answered lookups")
        .axis_desc_style((FONT, 20))
        .label_style((FONT, 16))
        .draw()
        .context("drawing the axes")?;
    chart
        .draw_series(
            Histogram::vertical(&chart)
                .style(MAIN.mix(0.8).filled())
                .margin(10)
                .data(hist.iter().enumerate().map(|(hops, n)| (hops as u32, *n))),
        )
        .context("drawing the bars")?;
    let label = (FONT, 15)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    chart
        .draw_series(hist.iter().enumerate().filter(|(_, n)| **n > 0).map(|(hops, n)| {
            Text::new(
                format!("{:.1}%", *n as f64 * 100.0 / total as f64),
                (SegmentValue::CenterOf(hops as u32), *n),
                label.clone(),
            )
        }))
        .context("drawing the bar labels")?;
    Ok(())
}

/// Latency CDF: fraction of answered lookups at or below each latency.
fn latency_cdf(r: &Report, area: &Area) -> Result<()> {
    let cdf = &r.lookups.latency_cdf_ms;
    if cdf.is_empty() {
        return no_data(area, "no lookup was answered");
    }
    let max = cdf.iter().copied().filter(|v| v.is_finite()).fold(0.0f64, f64::max);
    // A long tail (a retransmitted lookup) would squash the curve: cut the axis
    // past the 99th percentile and say where the maximum is.
    let p99 = cdf.get(99).copied().unwrap_or(max);
    let clipped = p99 > 0.0 && max > 2.0 * p99;
    let x_end = match (clipped, max > 0.0) {
        (true, _) => p99 * 1.5,
        (false, true) => max * 1.05,
        (false, false) => 1.0,
    };
    let mut chart = ChartBuilder::on(area)
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(0f64..x_end, 0f64..1.02)
        .context("building the chart")?;
    chart
        .configure_mesh()
        .x_desc(if clipped {
            format!("lookup latency (ms); axis cut at 1.5 x p99, max {max:.1} ms")
        } else {
            "lookup latency (ms)".to_string()
        })
        .y_desc("fraction of answered lookups")
        .axis_desc_style((FONT, 20))
        .label_style((FONT, 16))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.1}"))
        .draw()
        .context("drawing the axes")?;
    chart
        .draw_series(LineSeries::new(
            cdf.iter().enumerate().map(|(p, ms)| (ms.min(x_end), p as f64 / 100.0)),
            MAIN.stroke_width(3),
        ))
        .context("drawing the CDF")?;
    let label = (FONT, 16)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Top));
    for p in [50usize, 95, 99] {
        let Some(ms) = cdf.get(p).copied() else { continue };
        let at = (ms, p as f64 / 100.0);
        chart
            .draw_series([
                Circle::new(at, 5, SECOND.filled()).into_dyn(),
                Text::new(format!("  p{p}: {ms:.1} ms"), at, label.clone()).into_dyn(),
            ])
            .context("marking the percentiles")?;
    }
    Ok(())
}

/// Lookup success per simulated minute, as steps over each minute's slice.
fn success(r: &Report, area: &Area) -> Result<()> {
    let samples = &r.lookups.success_over_time;
    if samples.is_empty() {
        return no_data(area, "no lookup finished");
    }
    const SLICE_S: f64 = 60.0;
    let first = samples.first().map_or(0.0, |s| s.t_s);
    let last = samples.last().map_or(0.0, |s| s.t_s) + SLICE_S;
    let (unit, unit_name) = time_unit(last);
    let (x0, x1) = (first / unit, last / unit);
    let y0 = fraction_floor(samples.iter().map(|s| s.success));
    let mut chart = ChartBuilder::on(area)
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(x0..x1, y0..1.005)
        .context("building the chart")?;
    chart
        .configure_mesh()
        .x_desc(format!(
            "simulated time ({unit_name}); one step per minute of finished lookups; overall {:.4}",
            r.lookups.success_rate
        ))
        .y_desc("fraction of lookups answered")
        .axis_desc_style((FONT, 20))
        .label_style((FONT, 16))
        .x_label_formatter(&time_label)
        .draw()
        .context("drawing the axes")?;
    let steps = samples
        .iter()
        .flat_map(|s| [(s.t_s / unit, s.success), ((s.t_s + SLICE_S) / unit, s.success)]);
    chart
        .draw_series(LineSeries::new(steps, MAIN.stroke_width(3)))
        .context("drawing the success rate")?
        .label("success rate")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], MAIN.stroke_width(3)));
    chart
        .draw_series(
            samples
                .iter()
                .map(|s| Circle::new(((s.t_s + SLICE_S / 2.0) / unit, s.success), 4, MAIN.filled())),
        )
        .context("drawing the slice markers")?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(MUTED)
        .draw()
        .context("drawing the legend")?;
    Ok(())
}

/// Fraction of live peers with the right successor and predecessor, and the live
/// peers on a secondary axis, with the start of the workload (and a scripted
/// crash) marked.
fn ring(r: &Report, area: &Area) -> Result<()> {
    let samples = &r.ring_correctness;
    if samples.is_empty() {
        return no_data(area, "no ring sample was taken");
    }
    let end = r.simulated_s.max(samples.last().map_or(0.0, |s| s.t_s)).max(1.0);
    let (unit, unit_name) = time_unit(end);
    let x1 = end / unit;
    let y0 = fraction_floor(samples.iter().map(|s| s.correct));
    let peers_max = samples.iter().map(|s| s.peers).max().unwrap_or(0).max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .right_y_label_area_size(90)
        .build_cartesian_2d(0f64..x1, y0..1.005)
        .context("building the chart")?
        .set_secondary_coord(0f64..x1, 0f64..peers_max * 1.15);
    chart
        .configure_mesh()
        .x_desc(format!("simulated time ({unit_name})"))
        .y_desc("fraction with correct successor and predecessor")
        .axis_desc_style((FONT, 20))
        .label_style((FONT, 16))
        .x_label_formatter(&time_label)
        .draw()
        .context("drawing the axes")?;
    chart
        .configure_secondary_axes()
        .y_desc("live peers")
        .axis_desc_style((FONT, 20))
        .label_style((FONT, 16))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .context("drawing the secondary axis")?;
    let mut marks = vec![(r.build_time_s, "workload starts".to_string())];
    if r.config.crash_fraction > 0.0 {
        marks.push((
            r.build_time_s + r.config.crash_at.as_secs_f64(),
            format!("{:.0}% crash", r.config.crash_fraction * 100.0),
        ));
    }
    // Mark labels sit low, beside their line, on the side with room.
    let label_y = y0 + (1.0 - y0) * 0.25;
    for (t, text) in marks {
        let x = t / unit;
        let (side, text) = if x > x1 * 0.7 {
            (HPos::Right, format!("{text} "))
        } else {
            (HPos::Left, format!(" {text}"))
        };
        let label = (FONT, 15).into_font().color(&MUTED).pos(Pos::new(side, VPos::Center));
        chart
            .draw_series(DashedLineSeries::new(
                [(x, y0), (x, 1.005)],
                6,
                4,
                MUTED.stroke_width(1),
            ))
            .context("marking the workload")?;
        chart
            .draw_series([Text::new(text, (x, label_y), label)])
            .context("labelling the mark")?;
    }
    chart
        .draw_secondary_series(LineSeries::new(
            samples.iter().map(|s| (s.t_s / unit, s.peers as f64)),
            SECOND.stroke_width(2),
        ))
        .context("drawing the live peers")?
        .label("live peers (right axis)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], SECOND.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(
            samples.iter().map(|s| (s.t_s / unit, s.correct)),
            MAIN.stroke_width(3),
        ))
        .context("drawing the ring correctness")?
        .label("ring correctness (left axis)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], MAIN.stroke_width(3)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(MUTED)
        .draw()
        .context("drawing the legend")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reload_sim::{SimConfig, Simulator};

    const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

    fn check_pngs(paths: &[PathBuf]) {
        for name in ["hops.png", "latency_cdf.png", "success.png", "ring.png"] {
            let path = paths
                .iter()
                .find(|p| p.file_name().is_some_and(|n| n == name))
                .unwrap_or_else(|| panic!("{name} not written"));
            let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            assert!(bytes.starts_with(&PNG_SIGNATURE), "{name} is not a PNG");
            assert!(bytes.len() > 8 * 1024, "{name} is only {} bytes", bytes.len());
        }
    }

    #[test]
    fn plots_of_a_tiny_run_are_pngs() {
        let report = Simulator::new(SimConfig {
            nodes: 10,
            lookups: 50,
            ..SimConfig::default()
        })
        .run(|_| {});
        let dir = std::env::temp_dir().join(format!("p2psip-plots-test-{}", std::process::id()));
        let written = write_plots(&report, &dir);
        let result = written.as_ref().map(|paths| check_pngs(paths));
        let _ = std::fs::remove_dir_all(&dir);
        match result {
            Ok(()) => {}
            Err(e) => panic!("write_plots failed: {e:#}"),
        }
        assert_eq!(written.map(|p| p.len()).unwrap_or(0), 4);
    }

    /// A small white PNG, with `title` drawn on it if there is one.
    fn banner(path: &Path, title: Option<&str>) -> Result<Vec<u8>> {
        {
            let root = BitMapBackend::new(path, (400, 80)).into_drawing_area();
            root.fill(&WHITE)?;
            if let Some(title) = title {
                root.titled(title, (FONT, 30))?;
            }
            root.present()?;
        }
        Ok(std::fs::read(path)?)
    }

    #[test]
    fn text_is_drawn_with_the_registered_system_font() -> Result<()> {
        register_font()?;
        let dir = tempfile::tempdir()?;
        let titled = banner(&dir.path().join("titled.png"), Some("Title"))?;
        let blank = banner(&dir.path().join("blank.png"), None)?;
        assert_ne!(titled, blank, "the title drew nothing");
        Ok(())
    }

    #[test]
    fn empty_report_plots_say_no_data() {
        let mut report = Simulator::new(SimConfig {
            nodes: 2,
            lookups: 0,
            ..SimConfig::default()
        })
        .run(|_| {});
        report.lookups.hop_histogram = vec![0];
        report.lookups.latency_cdf_ms.clear();
        report.lookups.success_over_time.clear();
        report.ring_correctness.clear();
        let dir = std::env::temp_dir().join(format!("p2psip-plots-empty-{}", std::process::id()));
        let written = write_plots(&report, &dir);
        let _ = std::fs::remove_dir_all(&dir);
        match written {
            Ok(paths) => assert_eq!(paths.len(), 4),
            Err(e) => panic!("write_plots failed on empty data: {e:#}"),
        }
    }

    #[test]
    fn fraction_axis_zooms_sensibly() {
        assert_eq!(fraction_floor([1.0, 1.0].into_iter()), 0.85);
        assert_eq!(fraction_floor([0.5, 1.0].into_iter()), 0.45);
        assert_eq!(fraction_floor([0.0].into_iter()), 0.0);
        assert_eq!(fraction_floor(std::iter::empty()), 0.85);
    }
}
