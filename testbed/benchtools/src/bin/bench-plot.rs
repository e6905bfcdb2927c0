//! `bench-plot BENCH_JSON OUT_PNG [--font TTF]`: the scaling curve of a `testbed/bench` run as a PNG: CPU
//! seconds (left) and peak RSS (right) of the speakers and the controller against the Service count, log-log,
//! one line per implementation, family and process, with a grey "linear" line through the first speaker CPU
//! point of each curve. The text is drawn with the font file (default: DejaVu Sans of fonts-dejavu-core, which
//! `testbed/lab deps` installs).

use anyhow::{Context, bail};
use ferrolb_benchtools::{Measure, Process, Series, log_keys, scaling_series, tick};
use plotters::coord::combinators::BindKeyPoints;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const COLORS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (mut paths, mut font) = (Vec::new(), DEFAULT_FONT.to_owned());
    let mut it = argv.into_iter();
    while let Some(a) = it.next() {
        if a == "--font" {
            font = it.next().context("--font needs a file")?;
        } else {
            paths.push(a);
        }
    }
    let [json, out] = paths.as_slice() else {
        bail!("usage: bench-plot BENCH_JSON OUT_PNG [--font TTF]");
    };
    let bytes = std::fs::read(&font).with_context(|| {
        format!("font {font} (install fonts-dejavu-core: testbed/lab deps, or pass --font)")
    })?;
    register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(bytes.into_boxed_slice()),
    )
    .map_err(|_| anyhow::anyhow!("font {font} is not a TrueType/OpenType font"))?;
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(json).with_context(|| format!("reading {json}"))?,
    )
    .with_context(|| format!("{json} is not JSON"))?;
    let series = scaling_series(&doc)?;
    draw(&series, out).map_err(|e| anyhow::anyhow!("drawing {out}: {e}"))?;
    Ok(())
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw(series: &[Series], out: &str) -> DrawResult {
    let root = BitMapBackend::new(out, (1400, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(700);
    // CPU log-log (linear growth has the grey line's slope); RSS on a linear axis from 0 (it has a floor).
    let cpu = bounds(values(series, Measure::CpuSeconds));
    panel(
        &left,
        series,
        Measure::CpuSeconds,
        "CPU until converged (s)",
        (cpu.0..cpu.1)
            .log_scale()
            .with_key_points(log_keys(cpu.0, cpu.1, &[1, 2, 5])),
    )?;
    let rss = bounds(values(series, Measure::PeakRssMb)).1;
    panel(
        &right,
        series,
        Measure::PeakRssMb,
        "peak RSS (MB)",
        0.0..rss,
    )?;
    root.present()?;
    Ok(())
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| *v > 0.0)
        .fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(v), h.max(v)));
    if lo > hi {
        (0.1, 1.0)
    } else {
        (lo / 1.5, hi * 1.5)
    }
}

fn values(series: &[Series], measure: Measure) -> impl Iterator<Item = f64> + '_ {
    series
        .iter()
        .filter(move |s| s.measure == measure)
        .flat_map(|s| s.points.iter().map(|p| p.1))
}

fn panel<DB: DrawingBackend, Y>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    series: &[Series],
    measure: Measure,
    title: &str,
    y: Y,
) -> DrawResult
where
    DB::ErrorType: 'static,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mine: Vec<&Series> = series.iter().filter(|s| s.measure == measure).collect();
    let (x0, x1) = bounds(
        mine.iter()
            .flat_map(|s| s.points.iter().map(|p| p.0 as f64)),
    );
    let log_y = measure == Measure::CpuSeconds;
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{title} against Services"), ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((x0..x1).log_scale(), y)?;
    chart
        .configure_mesh()
        .x_desc("Services (N)")
        .y_desc(title)
        .x_labels(20)
        .y_labels(30)
        .x_label_formatter(&|x| tick(*x, &[1, 3]))
        .y_label_formatter(&|y| {
            if log_y {
                tick(*y, &[1, 2, 5])
            } else {
                format!("{y:.0}")
            }
        })
        .label_style(("sans-serif", 14))
        // Only the labelled lines: the log axes' fine mesh drew a line every few pixels.
        .light_line_style(TRANSPARENT)
        .draw()?;
    for (k, s) in mine.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let width = if s.process == Process::Speaker { 3 } else { 1 };
        chart
            .draw_series(LineSeries::new(
                s.points.iter().map(|&(n, v)| (n as f64, v)),
                color.stroke_width(width),
            ))?
            .label(s.label())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width))
            });
        chart.draw_series(
            s.points
                .iter()
                .map(|&(n, v)| Circle::new((n as f64, v), 4, color.filled())),
        )?;
        if measure == Measure::CpuSeconds && s.process == Process::Speaker {
            let (n0, v0) = s.points[0];
            let last = s.points[s.points.len() - 1].0;
            chart
                .draw_series(LineSeries::new(
                    [(n0 as f64, v0), (last as f64, v0 * last as f64 / n0 as f64)],
                    RGBColor(0xa0, 0xa0, 0xa0).stroke_width(1),
                ))?
                .label(format!("linear from {} ({})", s.implementation, s.family))
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], RGBColor(0xa0, 0xa0, 0xa0))
                });
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
