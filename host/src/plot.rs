//! The seed notebook's figures as PNG: loss curve, generated samples, forward-process grid,
//! reverse-process grid, real vs generated (or any two labelled sets, e.g. a float model's
//! samples beside its integer model's).
//!
//! Drawn with plotters' bitmap backend and the DejaVu Sans font compiled in (registered once as
//! "sans-serif"), so no system font library is needed. Each figure is rendered into memory,
//! encoded as PNG and written atomically. The reverse-process grid shows intermediate states of
//! the chain, which the batched executor keeps for it ([`Prepared::frames`]); this module
//! only draws.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use tinyddpm_core::{NoiseStream, Sampler, Schedule};

use crate::batch::Prepared;
use crate::scores::Points;

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
    /// More of something than a figure can show.
    #[error("{figure}: {what}")]
    TooMany {
        /// Which figure.
        figure: &'static str,
        /// What, and the most drawn.
        what: String,
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

/// A square view of the plane: its center and half its side.
#[derive(Clone, Copy, Debug, PartialEq)]
struct View {
    center: [f32; 2],
    half: f32,
}

impl View {
    /// A square view holding nearly all `points`. Around the origin when 99.5 % of them lie
    /// within ±6 (the built-in sets, a model's own space): ±1.08 times that quantile, at
    /// least ±1.1 and at most ±4.5, so a few far-flung points do not shrink the rest to a
    /// dot. Otherwise (a file's points in their own units, far from the origin) around the
    /// middle of the central 99.5 % of each coordinate, 1.08 times its half-width.
    fn of(points: &[[f32; 2]]) -> Self {
        let mut r: Vec<f32> = points.iter().map(|p| p[0].abs().max(p[1].abs())).collect();
        r.sort_by(f32::total_cmp);
        let q = r
            .get(r.len() * 995 / 1000)
            .or(r.last())
            .copied()
            .unwrap_or(0.0);
        if q <= 6.0 || points.is_empty() {
            return Self {
                center: [0.0; 2],
                half: (q * 1.08).clamp(1.1, 4.5),
            };
        }
        let range = |c: usize| {
            let mut v: Vec<f32> = points.iter().map(|p| p[c]).collect();
            v.sort_by(f32::total_cmp);
            let cut = v.len() * 25 / 10_000;
            (v[cut], v[v.len() - 1 - cut])
        };
        let ((x0, x1), (y0, y1)) = (range(0), range(1));
        Self {
            center: [(x0 + x1) / 2.0, (y0 + y1) / 2.0],
            half: ((x1 - x0).max(y1 - y0) / 2.0 * 1.08).max(1.1),
        }
    }

    /// The square view holding both views (the same as the larger of two views around the
    /// origin).
    fn union(self, other: Self) -> Self {
        let lo = |c: usize| (self.center[c] - self.half).min(other.center[c] - other.half);
        let hi = |c: usize| (self.center[c] + self.half).max(other.center[c] + other.half);
        Self {
            center: [(lo(0) + hi(0)) / 2.0, (lo(1) + hi(1)) / 2.0],
            half: ((hi(0) - lo(0)) / 2.0).max((hi(1) - lo(1)) / 2.0),
        }
    }

    /// Coordinate `c`'s range.
    fn range(&self, c: usize) -> std::ops::Range<f32> {
        self.center[c] - self.half..self.center[c] + self.half
    }

    /// Whether `p` lies inside.
    fn holds(&self, p: [f32; 2]) -> bool {
        (p[0] - self.center[0]).abs() <= self.half && (p[1] - self.center[1]).abs() <= self.half
    }
}

/// A titled panel with light grid lines and five labels an axis: the axes every scatter and
/// histogram panel shares; `y_labels` is the width left for the y axis' labels.
fn panel<'a, 'b>(
    area: &'a Area<'b>,
    title: &str,
    (x, y): (std::ops::Range<f32>, std::ops::Range<f32>),
    y_labels: u32,
) -> Result<Chart<'a, 'b>, Box<dyn std::error::Error>> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(y_labels)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_labels(5)
        .y_labels(5)
        .label_style(("sans-serif", 12))
        .draw()?;
    Ok(chart)
}

/// A chart of f32 axes on a bitmap, as [`panel`] makes it.
type Chart<'a, 'b> = ChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf32, plotters::coord::types::RangedCoordf32>,
>;

fn scatter_panel(
    area: &Area<'_>,
    points: &[[f32; 2]],
    title: &str,
    color: RGBColor,
    view: View,
) -> DrawResult {
    let mut chart = panel(area, title, (view.range(0), view.range(1)), 36)?;
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
            .filter(|&&p| view.holds(p))
            .map(|p| Circle::new((p[0], p[1]), radius, style)),
    )?;
    Ok(())
}

/// The most points of a loss curve drawn: a figure 900 pixels wide shows no more, and a
/// loss log of any length (`train --steps 10000000`) is drawn in bounded memory.
pub const MAX_LOSS_BUCKETS: usize = 1 << 20;

/// One point of a [`LossSeries`]: consecutive rows of the log.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Bucket {
    /// The step of its last row.
    step: u64,
    /// The sum of its losses.
    sum: f64,
    /// Its rows.
    rows: u64,
}

/// A loss log as it is read, reduced for drawing: each row its own point up to
/// [`MAX_LOSS_BUCKETS`] rows; past that, adjacent points are merged pairwise (each then the
/// mean of twice as many consecutive rows), so memory stays bounded and every row is read
/// once.
#[derive(Clone, Debug, Default)]
pub struct LossSeries {
    buckets: Vec<Bucket>,
    rows_per_bucket: u64,
    rows: u64,
    first_step: u64,
    largest: f32,
    non_finite: Option<(u64, f32)>,
}

impl LossSeries {
    /// An empty series.
    pub fn new() -> Self {
        Self {
            rows_per_bucket: 1,
            ..Self::default()
        }
    }

    /// Adds the next row of the log.
    pub fn push(&mut self, step: u64, loss: f32) {
        if !loss.is_finite() {
            self.non_finite.get_or_insert((step, loss));
            return;
        }
        if self.rows == 0 {
            self.first_step = step;
        }
        self.rows += 1;
        self.largest = self.largest.max(loss);
        match self.buckets.last_mut() {
            Some(last) if last.rows < self.rows_per_bucket => {
                last.step = step;
                last.sum += f64::from(loss);
                last.rows += 1;
                return;
            }
            _ => {}
        }
        if self.buckets.len() == MAX_LOSS_BUCKETS {
            self.buckets = self
                .buckets
                .chunks(2)
                .map(|pair| Bucket {
                    step: pair[pair.len() - 1].step,
                    sum: pair.iter().map(|b| b.sum).sum(),
                    rows: pair.iter().map(|b| b.rows).sum(),
                })
                .collect();
            self.rows_per_bucket *= 2;
        }
        self.buckets.push(Bucket {
            step,
            sum: f64::from(loss),
            rows: 1,
        });
    }

    /// Rows pushed.
    pub fn rows(&self) -> u64 {
        self.rows
    }
}

impl FromIterator<(u64, f32)> for LossSeries {
    fn from_iter<I: IntoIterator<Item = (u64, f32)>>(rows: I) -> Self {
        let mut series = Self::new();
        rows.into_iter()
            .for_each(|(step, loss)| series.push(step, loss));
        series
    }
}

/// The training loss per step (light) and its moving average over a hundredth of the run
/// (dark), from a [`LossSeries`]. The average is a running sum: linear in the rows.
pub fn loss_curve(path: &Path, series: &LossSeries) -> Result<(), PlotError> {
    if let Some((step, loss)) = series.non_finite {
        return Err(PlotError::NonFinite {
            figure: "loss curve",
            what: format!("the loss at step {step} ({loss})"),
        });
    }
    let buckets = &series.buckets;
    if buckets.is_empty() {
        return Err(PlotError::Empty("loss curve"));
    }
    let mean = |b: &Bucket| (b.sum / b.rows as f64) as f32;
    // A hundredth of the rows, in whole buckets.
    let window = (buckets.len() / 100).max(1);
    let window_rows = series.rows / 100;
    let mut smooth = Vec::with_capacity(buckets.len() + 1 - window);
    let (mut sum, mut rows) = (0.0f64, 0u64);
    for (i, b) in buckets.iter().enumerate() {
        sum += b.sum;
        rows += b.rows;
        if i >= window {
            sum -= buckets[i - window].sum;
            rows -= buckets[i - window].rows;
        }
        if i + 1 >= window {
            smooth.push((b.step, (sum / rows as f64) as f32));
        }
    }
    let first = series.first_step;
    let last = buckets[buckets.len() - 1].step.max(first.saturating_add(1));
    // Finite losses near f32::MAX must not make the axis infinite.
    let top = (series.largest * 1.05).min(f32::MAX);
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
            buckets.iter().map(|b| (b.step, mean(b))),
            BLUE.mix(0.25).stroke_width(1),
        ))?;
        chart
            .draw_series(LineSeries::new(smooth, BLUE.stroke_width(2)))?
            .label(format!("moving average over {} steps", window_rows.max(1)))
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
        scatter_panel(root, points, title, BLUE, View::of(points))
    })
}

/// The most coordinates [`samples_of_any_dim`] pairs: the first five make ten panels.
pub const PAIR_COORDINATES: usize = 5;

/// Bars of the one-coordinate histogram.
const HISTOGRAM_BINS: usize = 60;

/// A figure of points of any D: the scatter plot for D = 2 ([`samples`]); for D ≥ 3 one
/// scatter panel per pair of coordinates (i < j) among the first [`PAIR_COORDINATES`], each
/// titled with its pair; for D = 1 a histogram. Nothing is cut silently: the title says
/// which coordinates are drawn.
pub fn samples_of_any_dim(path: &Path, points: &Points, title: &str) -> Result<(), PlotError> {
    let dim = points.dim();
    if points.is_empty() {
        return Err(PlotError::Empty("samples"));
    }
    match dim {
        1 => histogram(path, points.values(), title),
        2 => {
            let (pairs, _) = points.values().as_chunks::<2>();
            samples(path, pairs, title)
        }
        _ => {
            let shown = dim.min(PAIR_COORDINATES);
            let frames: Vec<Frame> = (0..shown)
                .flat_map(|i| (i + 1..shown).map(move |j| (i, j)))
                .map(|(i, j)| Frame {
                    label: format!("x{j} against x{i}"),
                    points: points.rows().map(|r| [r[i], r[j]]).collect(),
                })
                .collect();
            let title = match dim > shown {
                true => format!("{title}, coordinates x0 to x{} of {dim}", shown - 1),
                false => title.to_owned(),
            };
            grid(path, "samples", &title, (&frames, shown), BLUE)
        }
    }
}

/// A histogram of one coordinate: [`HISTOGRAM_BINS`] bars over the view [`View::of`] gives.
fn histogram(path: &Path, values: &[f32], title: &str) -> Result<(), PlotError> {
    let pairs = on_axis(values);
    check_finite("samples", "", &pairs)?;
    let view = View::of(&pairs);
    render(path, "samples", (600, 420), |root| {
        histogram_panel(root, values, title, (BLUE, view))
    })
}

/// One coordinate's values as points on the x axis (for [`View::of`] and the finiteness
/// check).
fn on_axis(values: &[f32]) -> Vec<[f32; 2]> {
    values.iter().map(|&v| [v, 0.0]).collect()
}

/// A histogram panel of `values` over the view's x range, [`HISTOGRAM_BINS`] bars.
fn histogram_panel(
    area: &Area<'_>,
    values: &[f32],
    title: &str,
    (color, view): (RGBColor, View),
) -> DrawResult {
    let (center, half) = (view.center[0], view.half);
    let (lo, width) = (center - half, 2.0 * half / HISTOGRAM_BINS as f32);
    let mut counts = [0u32; HISTOGRAM_BINS];
    for &v in values.iter().filter(|&&v| (v - center).abs() < half) {
        let bin = ((v - lo) / width) as usize;
        counts[bin.min(HISTOGRAM_BINS - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(0).max(1) as f32 * 1.05;
    let mut chart = panel(area, title, (view.range(0), 0f32..top), 48)?;
    let style = color.mix(0.6).filled();
    chart.draw_series(counts.iter().enumerate().map(|(b, &c)| {
        let x0 = lo + b as f32 * width;
        Rectangle::new([(x0, 0.0), (x0 + width, c as f32)], style)
    }))?;
    Ok(())
}

/// Two labelled point sets of one D, compared: [`compare`] for D = 2; for D = 1 their
/// histograms side by side over one range; for D ≥ 3 the pair panels of
/// [`samples_of_any_dim`] in two rows, `left` above `right`, each column (one pair of
/// coordinates) on one scale. The title says which coordinates are drawn.
pub fn compare_of_any_dim(
    path: &Path,
    (left_label, left): (&str, &Points),
    (right_label, right): (&str, &Points),
) -> Result<(), PlotError> {
    const FIGURE: &str = "comparison";
    if left.is_empty() || right.is_empty() {
        return Err(PlotError::Empty(FIGURE));
    }
    let title = |label: &str, points: &Points| format!("{label} ({} points)", points.len());
    let dim = left.dim();
    match dim {
        2 => {
            let pairs = |p: &Points| p.values().as_chunks::<2>().0.to_vec();
            compare(
                path,
                (left_label, &pairs(left)),
                (right_label, &pairs(right)),
            )
        }
        1 => {
            let view = View::of(&on_axis(left.values())).union(View::of(&on_axis(right.values())));
            render(path, FIGURE, (1100, 460), |root| {
                let panels = root.split_evenly((1, 2));
                let left_panel = (ORANGE, view);
                histogram_panel(
                    &panels[0],
                    left.values(),
                    &title(left_label, left),
                    left_panel,
                )?;
                let right_panel = (BLUE, view);
                histogram_panel(
                    &panels[1],
                    right.values(),
                    &title(right_label, right),
                    right_panel,
                )
            })
        }
        _ => {
            let shown = dim.min(PAIR_COORDINATES);
            let pairs: Vec<(usize, usize)> = (0..shown)
                .flat_map(|i| (i + 1..shown).map(move |j| (i, j)))
                .collect();
            let project = |p: &Points, (i, j): (usize, usize)| -> Vec<[f32; 2]> {
                p.rows().map(|r| [r[i], r[j]]).collect()
            };
            let columns = pairs.len() as u32;
            let heading = format!(
                "{} above, {} below; coordinates x0 to x{} of {dim}",
                title(left_label, left),
                title(right_label, right),
                shown - 1
            );
            render(path, FIGURE, (PANEL * columns, 2 * PANEL + 40), |root| {
                let root = root.titled(&heading, ("sans-serif", 20))?;
                let panels = root.split_evenly((2, pairs.len()));
                for (c, &(i, j)) in pairs.iter().enumerate() {
                    let (top, bottom) = (project(left, (i, j)), project(right, (i, j)));
                    let view = View::of(&top).union(View::of(&bottom));
                    let label = format!("x{j} against x{i}");
                    scatter_panel(&panels[c], &top, &label, ORANGE, view)?;
                    scatter_panel(&panels[pairs.len() + c], &bottom, &label, BLUE, view)?;
                }
                Ok(())
            })
        }
    }
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
    let view = View::of(left).union(View::of(right));
    render(path, FIGURE, (1100, 560), |root| {
        let panels = root.split_evenly((1, 2));
        let title = |label: &str, points: &[[f32; 2]]| format!("{label} ({} points)", points.len());
        scatter_panel(&panels[0], left, &title(left_label, left), ORANGE, view)?;
        scatter_panel(&panels[1], right, &title(right_label, right), BLUE, view)
    })
}

/// Panels of point sets, `columns` to a row, each with its own title and scale.
fn grid(
    path: &Path,
    figure: &'static str,
    title: &str,
    (frames, columns): (&[Frame], usize),
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
    let columns = columns.clamp(1, frames.len());
    let rows = frames.len().div_ceil(columns);
    let size = (PANEL * columns as u32, PANEL * rows as u32 + 40);
    render(path, figure, size, |root| {
        let root = root.titled(title, ("sans-serif", 24))?;
        let panels = root.split_evenly((rows, columns));
        for (area, frame) in panels.iter().zip(frames) {
            scatter_panel(
                area,
                &frame.points,
                &frame.label,
                color,
                View::of(&frame.points),
            )?;
        }
        Ok(())
    })
}

/// Class colours: matplotlib's "tab10" in its order.
const CLASS_COLORS: [RGBColor; 10] = [
    BLUE,
    ORANGE,
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// One panel of the guidance figure: a label and each class's samples (class k the k-th
/// list), drawn in the class's colour (tab10's, cycling past ten classes).
#[derive(Clone, Debug, PartialEq)]
pub struct ClassFrame {
    /// Panel title.
    pub label: String,
    /// The samples, class by class.
    pub classes: Vec<Vec<[f32; 2]>>,
}

/// The guidance figure: one panel per guidance weight, every class's samples in its colour
/// on the same axes (the view of all panels' points together).
pub fn guidance_grid(path: &Path, frames: &[ClassFrame], title: &str) -> Result<(), PlotError> {
    const FIGURE: &str = "guidance";
    let all: Vec<[f32; 2]> = frames
        .iter()
        .flat_map(|f| f.classes.iter().flatten().copied())
        .collect();
    if all.is_empty() {
        return Err(PlotError::Empty(FIGURE));
    }
    check_finite(FIGURE, "", &all)?;
    let view = View::of(&all);
    let columns = frames.len().min(6);
    let rows = frames.len().div_ceil(columns);
    let size = (PANEL * columns as u32, PANEL * rows as u32 + 40);
    render(path, FIGURE, size, |root| {
        let root = root.titled(title, ("sans-serif", 24))?;
        let panels = root.split_evenly((rows, columns));
        for (area, frame) in panels.iter().zip(frames) {
            let mut chart = panel(area, &frame.label, (view.range(0), view.range(1)), 36)?;
            for (k, points) in frame.classes.iter().enumerate() {
                let style = CLASS_COLORS[k % CLASS_COLORS.len()].mix(0.6).filled();
                chart.draw_series(
                    points
                        .iter()
                        .filter(|&&p| view.holds(p))
                        .map(|p| Circle::new((p[0], p[1]), 2, style)),
                )?;
            }
        }
        Ok(())
    })
}

/// Points of `d` coordinates, row-major, as a figure draws them: a point of D > 2 by its
/// first two coordinates, one of D = 1 at height 0.
pub fn drawn(rows: &[f32], d: usize) -> Vec<[f32; 2]> {
    rows.chunks_exact(d)
        .map(|p| [p[0], p.get(1).copied().unwrap_or(0.0)])
        .collect()
}

/// One panel of a grid: a label and the points at that stage.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// Panel title.
    pub label: String,
    /// The points.
    pub points: Vec<[f32; 2]>,
}

/// The reverse-process grid's frames for samples `0..count` of `seed` on `prepared` (from
/// noise): x_T and the state after each fraction of [`REVERSE_FRACTIONS`] of the sampler's
/// steps ([`Prepared::frames`]); the last frame is exactly what `tinyddpm sample` writes.
/// A point of D > 2 coordinates is drawn by its first two, one of D = 1 at height 0.
pub fn reverse_frames<const T: usize>(
    prepared: &Prepared,
    (schedule, sampler): (&Schedule<T>, &Sampler),
    seed: u64,
    count: usize,
) -> Vec<Frame> {
    let k_total = sampler.num_steps(T);
    let keep: Vec<usize> = REVERSE_FRACTIONS
        .iter()
        .map(|f| (f * k_total as f64).round() as usize)
        .collect();
    let d = prepared.dim();
    keep.iter()
        .zip(prepared.frames(seed, 0, count, &keep))
        .map(|(&k, rows)| {
            let label = match k {
                0 => "start: x_T ~ N(0, I)".to_string(),
                k if k == k_total => "end: generated".to_string(),
                k => format!("step {k}/{k_total} (t = {})", sampler.timestep(schedule, k)),
            };
            let points = drawn(&rows, d);
            Frame { label, points }
        })
        .collect()
}

/// The forward process applied to `data` (points of any D): x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε at
/// t = each of [`FORWARD_FRACTIONS`] of T (clamped to T−1), with ε of point i one draw of the
/// noise stream `(seed, i)` (`NoiseStream::fill_gaussians`: one Gaussian pair for D = 2),
/// the same ε at every t. A point of D > 2 coordinates is drawn by its first two, one of
/// D = 1 at height 0.
pub fn forward_frames<const T: usize>(
    data: &Points,
    schedule: &Schedule<T>,
    seed: u64,
) -> Vec<Frame> {
    let d = data.dim();
    let mut eps = vec![0.0f32; data.values().len()];
    for (i, e) in eps.chunks_exact_mut(d).enumerate() {
        NoiseStream::new(seed, i as u64).fill_gaussians(e);
    }
    FORWARD_FRACTIONS
        .iter()
        .map(|&f| {
            let t = ((f * T as f64).round() as usize).min(T - 1);
            let (a, b) = schedule.forward_coefs(t);
            let noised = |x: &[f32], e: &[f32], c: usize| match (x.get(c), e.get(c)) {
                (Some(x), Some(e)) => a * x + b * e,
                _ => 0.0,
            };
            let points = data
                .rows()
                .zip(eps.chunks_exact(d))
                .map(|(x, e)| [noised(x, e, 0), noised(x, e, 1)])
                .collect();
            Frame {
                label: format!("t = {t} ({:.0}% of T)", f * 100.0),
                points,
            }
        })
        .collect()
}

/// The forward-process figure (see [`forward_frames`]).
pub fn forward_grid(path: &Path, frames: &[Frame], data: &str) -> Result<(), PlotError> {
    let title = format!("Forward process: noising {data}");
    grid(
        path,
        "forward process",
        &title,
        (frames, frames.len()),
        ORANGE,
    )
}

/// Panels of the data sets (or of samples of each), five to a row.
pub fn sets_grid(path: &Path, frames: &[Frame], title: &str) -> Result<(), PlotError> {
    grid(path, "data sets", title, (frames, 5), BLUE)
}

/// The reverse-process figure (see [`reverse_frames`]); `sampler` names the reverse process.
pub fn reverse_grid(path: &Path, frames: &[Frame], sampler: &str) -> Result<(), PlotError> {
    let title = format!("Reverse process: from noise to samples ({sampler})");
    grid(
        path,
        "reverse process",
        &title,
        (frames, frames.len()),
        BLUE,
    )
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

/// Line colours after matplotlib's "tab10", blue and orange excepted (the data's colours),
/// and its grey and olive.
const LINES: [RGBColor; 6] = [
    CLASS_COLORS[2],
    CLASS_COLORS[3],
    CLASS_COLORS[4],
    CLASS_COLORS[5],
    CLASS_COLORS[6],
    CLASS_COLORS[9],
];

/// The most samplers the quality figure draws, each a line of its legend.
pub const MAX_QUALITY_LINES: usize = 24;

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
    // Each sampler's points, grouped in one pass (in the order the samplers first appear).
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut lines: Vec<(&str, Vec<&QualityRow>)> = Vec::new();
    for r in rows.iter().filter(|r| r.sampler != reference) {
        let at = *index.entry(&r.sampler).or_insert_with(|| {
            lines.push((&r.sampler, Vec::new()));
            lines.len() - 1
        });
        lines[at].1.push(r);
    }
    if lines.len() > MAX_QUALITY_LINES {
        return Err(PlotError::TooMany {
            figure: "quality",
            what: format!(
                "{} samplers: a legend of more than {MAX_QUALITY_LINES} lines cannot be read",
                lines.len()
            ),
        });
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
            for (i, (name, members)) in lines.iter().enumerate() {
                let color = LINES[i % LINES.len()];
                let mut line: Vec<(f64, f64)> = members
                    .iter()
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

    /// Points near the origin keep the origin-centred view (every built-in figure as
    /// before); points in their own units far from it get a view around them that holds
    /// nearly all of them; a union holds both views.
    #[test]
    fn views_hold_the_points_wherever_they_lie() {
        let roll = crate::data::true_samples(crate::data::DataSet::SwissRoll, 2000, 1);
        let view = View::of(&roll);
        let q = {
            let mut r: Vec<f32> = roll.iter().map(|p| p[0].abs().max(p[1].abs())).collect();
            r.sort_by(f32::total_cmp);
            r[r.len() * 995 / 1000]
        };
        assert_eq!(view.center, [0.0, 0.0]);
        assert_eq!(view.half, (q * 1.08).clamp(1.1, 4.5));
        // temperatures and humidities: 25 ± 3, 60 ± 10
        let far: Vec<[f32; 2]> = roll
            .iter()
            .map(|p| [25.0 + 3.0 * p[0], 60.0 + 10.0 * p[1]])
            .collect();
        let view = View::of(&far);
        let held = far.iter().filter(|&&p| view.holds(p)).count();
        assert!(held >= far.len() * 99 / 100, "{held} of {}", far.len());
        assert!(
            (view.center[1] - 60.0).abs() < 3.0 && view.half < 15.0,
            "{view:?}"
        );
        let both = View::of(&roll).union(view);
        for p in roll
            .iter()
            .chain(&far)
            .filter(|&&p| View::of(&roll).holds(p) || view.holds(p))
        {
            assert!(both.holds(*p), "{p:?} outside {both:?}");
        }
        let small = View {
            center: [0.0; 2],
            half: 2.0,
        };
        let large = View {
            center: [0.0; 2],
            half: 3.5,
        };
        assert_eq!(small.union(large), large);
    }

    #[test]
    fn forward_frames_follow_the_schedule() {
        let schedule = Schedule::<1000>::new(ScheduleKind::SEED).unwrap();
        let data = Points::from_pairs(&[[0.5f32, -0.25], [0.0, 1.0]]).unwrap();
        let frames = forward_frames(&data, &schedule, 3);
        assert_eq!(frames[6].label, "t = 999 (100% of T)");
        let (a, b) = schedule.forward_coefs(50);
        let e = NoiseStream::new(3, 1).gaussian_pair();
        assert_eq!(
            frames[2].points[1],
            [a * 0.0 + b * e[0], a * 1.0 + b * e[1]]
        );
        // three coordinates: the first two drawn, ε the stream's first two of three; one
        // coordinate: at height 0
        let three = Points::new(3, vec![0.5, -0.25, 9.0, 0.0, 1.0, 9.0]).unwrap();
        let frames = forward_frames(&three, &schedule, 3);
        let mut z = [0.0f32; 3];
        NoiseStream::new(3, 1).fill_gaussians(&mut z);
        assert_eq!(
            frames[2].points[1],
            [a * 0.0 + b * z[0], a * 1.0 + b * z[1]]
        );
        let one = Points::new(1, vec![0.5, 2.0]).unwrap();
        let frames = forward_frames(&one, &schedule, 3);
        let mut z = [0.0f32; 1];
        NoiseStream::new(3, 1).fill_gaussians(&mut z);
        assert_eq!(frames[2].points[1], [a * 2.0 + b * z[0], 0.0]);
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
        loss_curve(&dir.path().join("l.png"), &losses.into_iter().collect()).unwrap();
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
        let e = loss_curve(&path, &[(0, 1.0), (1, f32::NAN)].into_iter().collect()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "loss curve: the loss at step 1 (NaN) is not finite"
        );
        assert!(!path.exists());
        samples(&path, &[[3e38, -3e38], [0.0, 0.0]], "t").unwrap();
        let huge = [(u64::MAX - 1, f32::MAX), (u64::MAX, 0.0)];
        loss_curve(&path, &huge.into_iter().collect()).unwrap();
    }

    #[test]
    fn a_long_loss_log_is_merged_pairwise_keeping_every_rows_sum() {
        let n = MAX_LOSS_BUCKETS as u64 * 2 + 5;
        let loss = |i: u64| ((i * 2_654_435_761) % 1000) as f32 / 1000.0;
        let series: LossSeries = (0..n).map(|i| (i, loss(i))).collect();
        assert_eq!(series.rows(), n);
        assert_eq!(series.rows_per_bucket, 4);
        assert_eq!(series.buckets.len(), MAX_LOSS_BUCKETS / 2 + 2);
        // Every bucket holds the 4 rows before its step (the last one what is left), and the
        // sums are the rows' own (an f64 sum of f32 values of a few digits: exact).
        for (k, b) in series.buckets.iter().enumerate() {
            let rows = (4 * k as u64)..(4 * k as u64 + 4).min(n);
            assert_eq!(b.step, rows.end - 1);
            assert_eq!(b.rows, rows.end - rows.start);
            let want: f64 = rows.map(|i| f64::from(loss(i))).sum();
            assert!((b.sum - want).abs() < 1e-9, "{k}: {} vs {want}", b.sum);
        }
    }
}
