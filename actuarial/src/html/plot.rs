//! What every chart of the report shares: the SVG canvas, colours, number formats and ranges.
//!
//! Charts are drawn with plotters' SVG backend into a string. plotters is built without a font
//! feature: it sizes text with its built-in estimate and writes it as SVG `<text>`, which the
//! browser renders in its own sans-serif font.

use plotters::coord::Shift;
use plotters::prelude::*;

pub(crate) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
pub(crate) type Drawn = Result<(), Box<dyn std::error::Error>>;

pub(crate) const WIDTH: u32 = 900;
pub(crate) const HEIGHT: u32 = 380;
pub(crate) const FONT: &str = "sans-serif";

pub(crate) const FILL: RGBColor = RGBColor(70, 110, 170);
pub(crate) const MEAN: RGBColor = RGBColor(20, 20, 20);
pub(crate) const ALARM: RGBColor = RGBColor(200, 50, 40);
/// One colour per reported level, lightest for the lowest.
pub(crate) const LEVELS: [RGBColor; 3] = [
    RGBColor(230, 150, 30),
    RGBColor(200, 90, 20),
    RGBColor(150, 30, 110),
];

/// The chart `draw` makes on a white canvas of `width` x `height`, as an `<svg>` element; a
/// line saying why when plotters reports an error, never a panic.
pub(crate) fn svg(width: u32, height: u32, draw: impl FnOnce(&Area<'_>) -> Drawn) -> String {
    let mut out = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(Into::into)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(Into::into))
    };
    match drawn {
        Ok(()) => out,
        Err(e) => format!(
            "<p class=\"na\">The chart could not be drawn: {}</p>",
            super::escape(&e.to_string())
        ),
    }
}

/// A range with room on both sides that is never empty or infinite.
pub(crate) fn padded(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() {
        (lo.min(hi), lo.max(hi))
    } else {
        (0.0, 1.0)
    };
    let pad = if hi > lo {
        (hi - lo) * 0.05
    } else {
        lo.abs().max(1.0) * 0.05
    };
    (lo - pad)..(hi + pad)
}

/// Money axes in a unit that keeps labels short: (divisor, name of the unit).
pub(crate) fn money_unit(largest: f64, currency: &str) -> (f64, String) {
    let largest = largest.abs();
    if largest >= 1e9 {
        (1e9, format!("{currency} billion"))
    } else if largest >= 1e6 {
        (1e6, format!("{currency} million"))
    } else if largest >= 1e4 {
        (1e3, format!("{currency} thousand"))
    } else {
        (1.0, currency.to_string())
    }
}

/// A number with at most three significant decimals, for labels.
pub(crate) fn short(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let digits = (2 - x.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{x:.digits$}")
}

/// A vertical marker line across the chart's y range, with its legend entry.
pub(crate) fn vertical<DB: DrawingBackend>(
    x: f64,
    y: &std::ops::Range<f64>,
    color: RGBColor,
) -> LineSeries<DB, (f64, f64)> {
    LineSeries::new([(x, y.start), (x, y.end)], color.stroke_width(2))
}

/// The legend entry of a line of `color`.
pub(crate) fn legend(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2))
}
