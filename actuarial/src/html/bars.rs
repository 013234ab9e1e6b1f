//! Bar charts by group and by risk factor: who pays for whom under the flat premium, and how
//! much of the variance of the total each common risk makes.

use plotters::prelude::*;

use super::plot::{self, Area, Drawn, FONT, WIDTH};
use crate::results::{FactorSummary, PricingResults};

/// Height of one bar's row, in pixels.
const ROW: u32 = 22;

/// Horizontal bars, one per label, from zero to the value; positive bars in `positive`,
/// negative ones in `negative`.
pub(crate) struct Bars<'a> {
    pub caption: String,
    pub x_desc: String,
    pub labels: Vec<String>,
    pub values: Vec<f64>,
    pub positive: RGBColor,
    pub negative: RGBColor,
    pub format: &'a dyn Fn(f64) -> String,
}

pub(crate) fn bar_chart(bars: &Bars<'_>) -> String {
    let rows = u32::try_from(bars.labels.len()).unwrap_or(u32::MAX).max(1);
    let height = (rows.saturating_mul(ROW)).saturating_add(110);
    plot::svg(WIDTH, height, |root| draw_bars(root, bars))
}

fn draw_bars(root: &Area<'_>, bars: &Bars<'_>) -> Drawn {
    let n = bars.labels.len();
    let lo = bars.values.iter().copied().fold(0.0, f64::min);
    let hi = bars.values.iter().copied().fold(0.0, f64::max);
    let label_width = bars
        .labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(4);
    let label_area = u32::try_from(label_width * 7 + 16).unwrap_or(300).min(360);
    let mut chart = ChartBuilder::on(root)
        .caption(&bars.caption, (FONT, 18))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(label_area)
        .build_cartesian_2d(plot::padded(lo, hi), (0..n).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n.max(1))
        .x_desc(bars.x_desc.as_str())
        .x_label_formatter(&|v| (bars.format)(*v))
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => bars.labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .draw()?;
    chart.draw_series(bars.values.iter().enumerate().map(|(i, &v)| {
        let color = if v >= 0.0 {
            bars.positive
        } else {
            bars.negative
        };
        let mut bar = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(i)),
                (v, SegmentValue::Exact(i + 1)),
            ],
            color.mix(0.8).filled(),
        );
        bar.set_margin(3, 3, 0, 0);
        bar
    }))?;
    Ok(())
}

/// Each group's subsidy: premium paid minus the premium its own expected payout would call
/// for under the same loadings (positive: the group pays for others).
pub(super) fn cross_subsidy_chart(r: &PricingResults) -> String {
    let rows: Vec<_> = r
        .premium
        .cross_subsidy
        .iter()
        .filter(|row| row.members > 0)
        .collect();
    let (unit, unit_name) = plot::money_unit(
        rows.iter().map(|row| row.subsidy.abs()).fold(0.0, f64::max),
        &r.currency,
    );
    let format = |v: f64| plot::short(v);
    bar_chart(&Bars {
        caption: "Cross-subsidy by group under the flat premium".into(),
        x_desc: format!("subsidy ({unit_name} a year): paid for others (right) or received (left)"),
        labels: rows.iter().map(|row| row.id.clone()).collect(),
        values: rows.iter().map(|row| row.subsidy / unit).collect(),
        positive: plot::FILL,
        negative: plot::ALARM,
        format: &format,
    })
}

/// The share of Var(total) that each factor explains, Var(E[total | factor]) / Var(total),
/// and the share member-level risk leaves, E[Var(total | factors)] / Var(total).
pub(super) fn variance_chart(factors: &FactorSummary) -> String {
    let mut labels: Vec<String> = factors.factors.iter().map(|f| f.id.clone()).collect();
    let mut values: Vec<f64> = factors
        .factors
        .iter()
        .map(|f| 100.0 * f.variance_explained)
        .collect();
    if factors.total_variance > 0.0 {
        labels.push("member-level (process) risk".into());
        values.push(100.0 * factors.process_variance / factors.total_variance);
    }
    let format = |v: f64| format!("{}%", plot::short(v));
    bar_chart(&Bars {
        caption: "Variance of the total explained by each risk factor".into(),
        x_desc: "share of the variance of the annual total (%)".into(),
        labels,
        values,
        positive: plot::FILL,
        negative: plot::ALARM,
        format: &format,
    })
}
