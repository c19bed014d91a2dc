//! The seed notebook's figures as PNG: loss curve, generated samples, forward-process grid,
//! reverse-process grid, real vs generated (or any two labelled sets, e.g. a float model's
//! samples beside its integer model's).
//!
//! Drawn with plotters' bitmap backend and the DejaVu Sans font compiled in (registered once as
//! "sans-serif"), so no system font library is needed. Each figure is rendered into memory,
//! encoded as PNG and written atomically. The reverse-process grid shows intermediate states of
//! the chain, which the batched executor keeps for it ([`crate::batch::frames`]); this module
//! only draws.

use std::io;
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use tinyddpm_core::{NoiseStream, Schedule};

/// Why a figure could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The compiled-in font was rejected.
    #[error("cannot register the DejaVu Sans font")]
    Font,
    /// plotters or the PNG encoder failed.
    #[error("cannot draw {figure}: {message}")]
    Draw {
        /// Which figure.
        figure: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The PNG could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: io::Error,
    },
    /// No points or losses to draw.
    #[error("{0}: nothing to plot")]
    Empty(&'static str),
    /// A value is NaN or infinite: it has no place on the axes.
    #[error("{figure}: {what} is not finite")]
    NonFinite {
        /// Which figure.
        figure: &'static str,
        /// Which value, e.g. "point 3 of panel \"end: generated\"".
        what: String,
    },
}

/// The first non-finite point of `points`, as a [`PlotError::NonFinite`] naming it.
fn check_finite(figure: &'static str, panel: &str, points: &[[f32; 2]]) -> Result<(), PlotError> {
    match points.iter().position(|p| !p.iter().all(|v| v.is_finite())) {
        Some(i) => Err(PlotError::NonFinite {
            figure,
            what: format!("point {i}{panel} ({}, {})", points[i][0], points[i][1]),
        }),
        None => Ok(()),
    }
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Generated samples (matplotlib's first colour).
const BLUE: RGBColor = RGBColor(31, 119, 180);
/// True data (matplotlib's second colour).
const ORANGE: RGBColor = RGBColor(255, 127, 14);
/// Width and height of one scatter panel.
const PANEL: u32 = 340;
/// The fractions of T shown by the forward-process grid (the notebook's).
pub const FORWARD_FRACTIONS: [f64; 7] = [0.0, 0.02, 0.05, 0.10, 0.20, 0.50, 1.0];
/// The fractions of the reverse steps done shown by the reverse-process grid.
pub const REVERSE_FRACTIONS: [f64; 7] = [0.0, 0.5, 0.75, 0.9, 0.95, 0.98, 1.0];

fn font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .is_ok()
    });
    ok.then_some(()).ok_or(PlotError::Font)
}

/// Draws a `width`×`height` figure with `draw` and writes it to `path` as PNG, atomically.
fn render(
    path: &Path,
    figure: &'static str,
    (width, height): (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> DrawResult,
) -> Result<(), PlotError> {
    font()?;
    let failed = |message: String| PlotError::Draw { figure, message };
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| failed(e.to_string()))?;
        draw(&root).map_err(|e| failed(e.to_string()))?;
        root.present().map_err(|e| failed(e.to_string()))?;
    }
    let mut png_bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_bytes, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut w| w.write_image_data(&rgb))
        .map_err(|e| failed(e.to_string()))?;
    crate::atomic::write(path, &png_bytes).map_err(|source| PlotError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Half the side of a square view holding nearly all `points` (at least the data's ±1.1;
/// at most ±4.5 so a few far-flung points do not shrink the rest to a dot).
fn extent(points: &[[f32; 2]]) -> f32 {
    let mut r: Vec<f32> = points.iter().map(|p| p[0].abs().max(p[1].abs())).collect();
    r.sort_by(f32::total_cmp);
    let q = r
        .get(r.len() * 995 / 1000)
        .or(r.last())
        .copied()
        .unwrap_or(0.0);
    (q * 1.08).clamp(1.1, 4.5)
}

fn scatter_panel(
    area: &Area<'_>,
    points: &[[f32; 2]],
    title: &str,
    color: RGBColor,
    half: f32,
) -> DrawResult {
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(36)
        .build_cartesian_2d(-half..half, -half..half)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_labels(5)
        .y_labels(5)
        .label_style(("sans-serif", 12))
        .draw()?;
    // Fewer points get bigger, more opaque dots, as matplotlib's scatter looks at these sizes.
    let (radius, alpha) = if points.len() > 3000 {
        (1, 0.35)
    } else {
        (2, 0.6)
    };
    let style = color.mix(alpha).filled();
    chart.draw_series(
        points
            .iter()
            .filter(|p| p[0].abs() <= half && p[1].abs() <= half)
            .map(|p| Circle::new((p[0], p[1]), radius, style)),
    )?;
    Ok(())
}

/// The training loss per step (light) and its moving average (dark).
pub fn loss_curve(path: &Path, losses: &[(u64, f32)]) -> Result<(), PlotError> {
    if losses.is_empty() {
        return Err(PlotError::Empty("loss curve"));
    }
    if let Some((step, loss)) = losses.iter().find(|l| !l.1.is_finite()) {
        return Err(PlotError::NonFinite {
            figure: "loss curve",
            what: format!("the loss at step {step} ({loss})"),
        });
    }
    let window = (losses.len() / 100).max(1);
    let smooth: Vec<(u64, f32)> = losses
        .windows(window)
        .map(|w| {
            (
                w[w.len() - 1].0,
                w.iter().map(|l| l.1).sum::<f32>() / window as f32,
            )
        })
        .collect();
    let first = losses[0].0;
    let last = losses[losses.len() - 1].0.max(first.saturating_add(1));
    // Finite losses near f32::MAX must not make the axis infinite.
    let top = (losses.iter().map(|l| l.1).fold(0.0, f32::max) * 1.05).min(f32::MAX);
    render(path, "loss curve", (900, 500), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Training loss (MSE on the noise)", ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(first..last, 0f32..top.max(1e-6))?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc("step")
            .y_desc("loss")
            .label_style(("sans-serif", 14))
            .draw()?;
        chart.draw_series(LineSeries::new(
            losses.iter().copied(),
            BLUE.mix(0.25).stroke_width(1),
        ))?;
        chart
            .draw_series(LineSeries::new(smooth, BLUE.stroke_width(2)))?
            .label(format!("moving average over {window} steps"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()?;
        Ok(())
    })
}

/// A scatter plot of points (the notebook's "generated samples" figure).
pub fn samples(path: &Path, points: &[[f32; 2]], title: &str) -> Result<(), PlotError> {
    if points.is_empty() {
        return Err(PlotError::Empty("samples"));
    }
    check_finite("samples", "", points)?;
    render(path, "samples", (600, 600), |root| {
        scatter_panel(root, points, title, BLUE, extent(points))
    })
}

/// Two labelled point sets side by side, on the same axes: the notebook's real vs generated
/// figure, or the samples of two models (a float model and its integer model). Each panel's
/// title is its label and the number of points.
pub fn compare(
    path: &Path,
    (left_label, left): (&str, &[[f32; 2]]),
    (right_label, right): (&str, &[[f32; 2]]),
) -> Result<(), PlotError> {
    const FIGURE: &str = "comparison";
    if left.is_empty() || right.is_empty() {
        return Err(PlotError::Empty(FIGURE));
    }
    check_finite(FIGURE, &format!(" of {left_label:?}"), left)?;
    check_finite(FIGURE, &format!(" of {right_label:?}"), right)?;
    let half = extent(left).max(extent(right));
    render(path, FIGURE, (1100, 560), |root| {
        let panels = root.split_evenly((1, 2));
        let title = |label: &str, points: &[[f32; 2]]| format!("{label} ({} points)", points.len());
        scatter_panel(&panels[0], left, &title(left_label, left), ORANGE, half)?;
        scatter_panel(&panels[1], right, &title(right_label, right), BLUE, half)
    })
}

/// Panels of point sets in one row, each with its own title and scale.
fn grid(
    path: &Path,
    figure: &'static str,
    title: &str,
    frames: &[Frame],
    color: RGBColor,
) -> Result<(), PlotError> {
    if frames.iter().any(|f| f.points.is_empty()) || frames.is_empty() {
        return Err(PlotError::Empty(figure));
    }
    for frame in frames {
        check_finite(
            figure,
            &format!(" of panel {:?}", frame.label),
            &frame.points,
        )?;
    }
    let size = (PANEL * frames.len() as u32, PANEL + 40);
    render(path, figure, size, |root| {
        let root = root.titled(title, ("sans-serif", 24))?;
        let panels = root.split_evenly((1, frames.len()));
        for (area, frame) in panels.iter().zip(frames) {
            scatter_panel(
                area,
                &frame.points,
                &frame.label,
                color,
                extent(&frame.points),
            )?;
        }
        Ok(())
    })
}

/// One panel of a grid: a label and the points at that stage.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// Panel title.
    pub label: String,
    /// The points.
    pub points: Vec<[f32; 2]>,
}

/// The forward process applied to `data`: x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε at t = each of
/// [`FORWARD_FRACTIONS`] of T (clamped to T−1), with ε of point i from the noise stream
/// `(seed, i)`, the same ε at every t.
pub fn forward_frames<const T: usize>(
    data: &[[f32; 2]],
    schedule: &Schedule<T>,
    seed: u64,
) -> Vec<Frame> {
    let eps: Vec<[f32; 2]> = (0..data.len())
        .map(|i| NoiseStream::new(seed, i as u64).gaussian_pair())
        .collect();
    FORWARD_FRACTIONS
        .iter()
        .map(|&f| {
            let t = ((f * T as f64).round() as usize).min(T - 1);
            let (a, b) = schedule.forward_coefs(t);
            let points = data
                .iter()
                .zip(&eps)
                .map(|(x, e)| [a * x[0] + b * e[0], a * x[1] + b * e[1]])
                .collect();
            Frame {
                label: format!("t = {t} ({:.0}% of T)", f * 100.0),
                points,
            }
        })
        .collect()
}

/// The forward-process figure (see [`forward_frames`]).
pub fn forward_grid(path: &Path, frames: &[Frame]) -> Result<(), PlotError> {
    grid(
        path,
        "forward process",
        "Forward process: noising the Swiss roll",
        frames,
        ORANGE,
    )
}

/// The reverse-process figure (see [`reverse_frames`]); `sampler` names the reverse process.
pub fn reverse_grid(path: &Path, frames: &[Frame], sampler: &str) -> Result<(), PlotError> {
    let title = format!("Reverse process: from noise to the Swiss roll ({sampler})");
    grid(path, "reverse process", &title, frames, BLUE)
}

/// One sampler configuration's scores (means over seeds) for the quality figure.
#[derive(Clone, Debug, PartialEq)]
pub struct QualityRow {
    /// The sampler's name (a line of the figure), e.g. "dpmpp-2m".
    pub sampler: String,
    /// Network evaluations per sample (the x axis).
    pub evaluations: u32,
    /// Mean distance to the curve.
    pub mean_distance: f64,
    /// 95th percentile of the distance to the curve.
    pub p95_distance: f64,
}

/// Line colours after matplotlib's "tab10", blue and orange excepted (the data's colours).
const LINES: [RGBColor; 6] = [
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// Quality against network evaluations: mean and p95 distance to the curve (two panels, log
/// x axis), one line per sampler; the `reference` sampler (DDPM-1000) is drawn as a dashed
/// horizontal line — the level to reach.
pub fn quality(path: &Path, rows: &[QualityRow], reference: &str) -> Result<(), PlotError> {
    if rows.is_empty() {
        return Err(PlotError::Empty("quality"));
    }
    if let Some(r) = rows
        .iter()
        .find(|r| !(r.mean_distance.is_finite() && r.p95_distance.is_finite()))
    {
        return Err(PlotError::NonFinite {
            figure: "quality",
            what: format!(
                "the score of {} at {} evaluations",
                r.sampler, r.evaluations
            ),
        });
    }
    let mut samplers: Vec<&str> = Vec::new();
    for r in rows {
        if r.sampler != reference && !samplers.contains(&r.sampler.as_str()) {
            samplers.push(&r.sampler);
        }
    }
    let curves = rows.iter().filter(|r| r.sampler != reference);
    let evals = curves.clone().map(|r| r.evaluations.max(1) as f64);
    let (lo, hi) = evals.fold((f64::MAX, 1.0f64), |(lo, hi), e| (lo.min(e), hi.max(e)));
    let x_range = (lo.min(hi) * 0.8)..(hi * 1.25);
    render(path, "quality", (1200, 520), |root| {
        let panels = root.split_evenly((1, 2));
        type Score = fn(&QualityRow) -> f64;
        let scores: [(&str, Score); 2] = [
            ("mean distance to the curve", |r| r.mean_distance),
            ("95th-percentile distance", |r| r.p95_distance),
        ];
        for (area, (name, score)) in panels.iter().zip(scores) {
            // Log axes: the few-step samplers' worst scores are tens of times the best.
            let (bottom, top) = rows
                .iter()
                .map(score)
                .fold((f64::MAX, 0.0f64), |(b, t), v| (b.min(v), t.max(v)));
            let y_range = (bottom.max(1e-6) * 0.8)..(top.max(1e-6) * 1.25);
            let mut chart = ChartBuilder::on(area)
                .caption(name, ("sans-serif", 20))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(64)
                .build_cartesian_2d(x_range.clone().log_scale(), y_range.log_scale())?;
            chart
                .configure_mesh()
                .light_line_style(WHITE)
                .x_desc("network evaluations per sample")
                .x_labels(8)
                .y_labels(8)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_label_formatter(&|y| format!("{y:.3}"))
                .label_style(("sans-serif", 13))
                .draw()?;
            if let Some(r) = rows.iter().find(|r| r.sampler == reference) {
                let level = score(r);
                let dashes = (0..40).map(|i| {
                    let at = |j: f64| x_range.start * (x_range.end / x_range.start).powf(j / 80.0);
                    PathElement::new(
                        vec![
                            (at(2.0 * i as f64), level),
                            (at(2.0 * i as f64 + 1.0), level),
                        ],
                        BLACK,
                    )
                });
                chart
                    .draw_series(dashes)?
                    .label(format!("{reference}, {} evaluations", r.evaluations))
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
            }
            for (i, name) in samplers.iter().enumerate() {
                let color = LINES[i % LINES.len()];
                let mut line: Vec<(f64, f64)> = rows
                    .iter()
                    .filter(|r| r.sampler == *name)
                    .map(|r| (r.evaluations.max(1) as f64, score(r)))
                    .collect();
                line.sort_by(|a, b| a.0.total_cmp(&b.0));
                chart.draw_series(line.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
                chart
                    .draw_series(LineSeries::new(line, color.stroke_width(2)))?
                    .label(*name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 13))
                .draw()?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinyddpm_core::ScheduleKind;

    #[test]
    fn forward_frames_follow_the_schedule() {
        let schedule = Schedule::<1000>::new(ScheduleKind::SEED).unwrap();
        let data = [[0.5f32, -0.25], [0.0, 1.0]];
        let frames = forward_frames(&data, &schedule, 3);
        assert_eq!(frames[6].label, "t = 999 (100% of T)");
        let (a, b) = schedule.forward_coefs(50);
        let e = NoiseStream::new(3, 1).gaussian_pair();
        assert_eq!(
            frames[2].points[1],
            [a * 0.0 + b * e[0], a * 1.0 + b * e[1]]
        );
    }

    #[test]
    fn quality_figure_draws_lines_and_the_reference_and_rejects_nan() {
        let dir = tempfile::tempdir().unwrap();
        let row = |sampler: &str, evaluations, mean_distance| QualityRow {
            sampler: sampler.into(),
            evaluations,
            mean_distance,
            p95_distance: 3.0 * mean_distance,
        };
        let rows = [
            row("ddpm", 1000, 0.026),
            row("ddim", 10, 0.09),
            row("ddim", 20, 0.06),
            row("dpmpp-2m", 10, 0.04),
            row("dpmpp-2m", 20, 0.03),
        ];
        let path = dir.path().join("q.png");
        quality(&path, &rows, "ddpm").unwrap();
        assert_eq!(&std::fs::read(&path).unwrap()[..4], b"\x89PNG");
        let bad = [row("ddim", 5, f64::NAN)];
        assert!(matches!(
            quality(&path, &bad, "ddpm"),
            Err(PlotError::NonFinite { .. })
        ));
        assert!(matches!(
            quality(&path, &[], "ddpm"),
            Err(PlotError::Empty("quality"))
        ));
    }

    #[test]
    fn figures_are_png_files() {
        let dir = tempfile::tempdir().unwrap();
        let pts: Vec<[f32; 2]> = (0..50).map(|i| [i as f32 / 50.0, 0.5]).collect();
        let path = dir.path().join("s.png");
        samples(&path, &pts, "t").unwrap();
        assert_eq!(&std::fs::read(&path).unwrap()[..4], b"\x89PNG");
        let losses = [(0, 1.0), (1, 0.5), (2, 0.25)];
        loss_curve(&dir.path().join("l.png"), &losses).unwrap();
        assert!(matches!(
            samples(&path, &[], "t"),
            Err(PlotError::Empty("samples"))
        ));
    }

    #[test]
    fn values_that_are_not_finite_are_errors_and_huge_ones_are_drawn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.png");
        let e = samples(&path, &[[0.0, 1.0], [f32::NAN, 0.0]], "t").unwrap_err();
        assert_eq!(e.to_string(), "samples: point 1 (NaN, 0) is not finite");
        let frames = [Frame {
            label: "end".into(),
            points: vec![[f32::INFINITY, 0.0]],
        }];
        let e = reverse_grid(&path, &frames, "DDPM").unwrap_err();
        assert_eq!(
            e.to_string(),
            "reverse process: point 0 of panel \"end\" (inf, 0) is not finite"
        );
        let e = compare(&path, ("float", &[[0.0, 1.0]]), ("int", &[[f32::NAN, 0.0]]));
        assert_eq!(
            e.unwrap_err().to_string(),
            "comparison: point 0 of \"int\" (NaN, 0) is not finite"
        );
        let e = compare(&path, ("float", &[]), ("int", &[[0.0, 0.0]])).unwrap_err();
        assert_eq!(e.to_string(), "comparison: nothing to plot");
        let e = loss_curve(&path, &[(0, 1.0), (1, f32::NAN)]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "loss curve: the loss at step 1 (NaN) is not finite"
        );
        assert!(!path.exists());
        samples(&path, &[[3e38, -3e38], [0.0, 0.0]], "t").unwrap();
        loss_curve(&path, &[(u64::MAX - 1, f32::MAX), (u64::MAX, 0.0)]).unwrap();
    }
}
