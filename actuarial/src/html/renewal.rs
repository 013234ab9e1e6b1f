//! The adverse-selection path: premium, members and expected loss ratio over renewal years.

use plotters::prelude::*;

use super::plot::{self, Area, Drawn, FONT, WIDTH};
use crate::adverse::RenewalYear;

/// Three panels over the renewal years: each year the pool re-forms at that year's premium.
pub(super) fn renewal_chart(path: &[RenewalYear], currency: &str) -> String {
    plot::svg(WIDTH, 320, |root| draw_renewal(root, path, currency))
}

type Pick = fn(&RenewalYear) -> f64;

fn draw_renewal(root: &Area<'_>, path: &[RenewalYear], currency: &str) -> Drawn {
    let root = root.titled("Adverse selection over renewal years", (FONT, 18))?;
    let panels = root.split_evenly((1, 3));
    let premium = format!("premium per member ({currency})");
    let series: [(&str, Pick, f64); 3] = [
        (premium.as_str(), |y| y.premium_per_member, 1.0),
        ("members (thousands)", |y| y.members, 1e-3),
        ("expected loss ratio (%)", |y| y.expected_loss_ratio, 100.0),
    ];
    let last_year = path.last().map_or(1, |y| y.year).max(1);
    for (panel, (title, pick, scale)) in panels.iter().zip(series) {
        let points: Vec<(f64, f64)> = path
            .iter()
            .map(|y| (f64::from(y.year), pick(y) * scale))
            .collect();
        let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        let mut chart = ChartBuilder::on(panel)
            .caption(title, (FONT, 14))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.2..f64::from(last_year) + 0.2, plot::padded(lo, hi))?;
        chart
            .configure_mesh()
            .x_desc("renewal year")
            .x_labels(usize::try_from(last_year + 1).unwrap_or(10).min(12))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| plot::short(*v))
            .draw()?;
        chart.draw_series(LineSeries::new(points.clone(), plot::FILL.stroke_width(2)))?;
        chart.draw_series(
            points
                .iter()
                .map(|&p| Circle::new(p, 3, plot::FILL.filled())),
        )?;
    }
    Ok(())
}
