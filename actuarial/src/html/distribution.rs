//! The charts of the portfolio total: its density, its exceedance curve in return periods, and
//! the loss ratio it makes at the premium.

use plotters::prelude::*;

use super::plot::{self, Area, Drawn, FONT, HEIGHT, WIDTH};
use crate::results::{PricingResults, TotalDistributionSummary};

/// Bin centres and densities.
fn density_points(d: &TotalDistributionSummary) -> Vec<(f64, f64)> {
    d.density
        .iter()
        .enumerate()
        .map(|(k, &y)| (d.density_start + (k as f64 + 0.5) * d.density_width, y))
        .collect()
}

/// The reported levels with their VaR and TVaR, ascending.
fn tail_marks(r: &PricingResults) -> Vec<(String, f64, f64)> {
    let mut marks: Vec<(String, f64, f64)> = r
        .portfolio
        .var
        .iter()
        .filter_map(|(level, &var)| Some((level.clone(), var, *r.portfolio.tvar.get(level)?)))
        .collect();
    marks.sort_by(|a, b| a.1.total_cmp(&b.1));
    marks
}

fn percent_level(level: &str) -> String {
    level
        .parse::<f64>()
        .map(|l| {
            let percent = format!("{:.1}", l * 100.0);
            format!("{}%", percent.trim_end_matches(".0"))
        })
        .unwrap_or_else(|_| level.to_string())
}

/// The density of the total, with the expected value and each reported level's VaR (dashed
/// in the legend's colour) and TVaR marked.
pub(super) fn density_chart(r: &PricingResults, d: &TotalDistributionSummary) -> String {
    plot::svg(WIDTH, HEIGHT, |root| draw_density(root, r, d))
}

fn draw_density(root: &Area<'_>, r: &PricingResults, d: &TotalDistributionSummary) -> Drawn {
    let marks = tail_marks(r);
    let points = density_points(d);
    let x_hi = marks
        .iter()
        .map(|m| m.2)
        .chain(points.last().map(|p| p.0))
        .fold(r.portfolio.mean, f64::max);
    let x_lo = points.first().map_or(r.portfolio.mean, |p| p.0);
    let (unit, unit_name) = plot::money_unit(x_hi, &r.currency);
    let pts: Vec<(f64, f64)> = points.iter().map(|&(x, y)| (x / unit, y * unit)).collect();
    let y_hi = pts.iter().map(|p| p.1).fold(0.0, f64::max);
    let y = 0.0..(y_hi * 1.1).max(f64::MIN_POSITIVE);
    let mut chart = ChartBuilder::on(root)
        .caption("Density of the annual portfolio total", (FONT, 18))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(70)
        .build_cartesian_2d(plot::padded(x_lo / unit, x_hi / unit), y.clone())?;
    chart
        .configure_mesh()
        .x_desc(format!("annual total payout ({unit_name})"))
        .y_desc(format!("probability per {unit_name}"))
        .y_label_formatter(&|v| plot::short(*v))
        .x_label_formatter(&|v| plot::short(*v))
        .draw()?;
    chart.draw_series(
        AreaSeries::new(pts, 0.0, plot::FILL.mix(0.25)).border_style(plot::FILL.stroke_width(2)),
    )?;
    chart
        .draw_series(plot::vertical(r.portfolio.mean / unit, &y, plot::MEAN))?
        .label(format!(
            "expected value {}",
            plot::short(r.portfolio.mean / unit)
        ))
        .legend(plot::legend(plot::MEAN));
    for ((level, var, tvar), color) in marks.iter().zip(plot::LEVELS.iter().cycle()) {
        let dashed = DashedLineSeries::new(
            [(var / unit, y.start), (var / unit, y.end)],
            6,
            4,
            color.stroke_width(2),
        );
        chart
            .draw_series(dashed)?
            .label(format!(
                "VaR {} {}",
                percent_level(level),
                plot::short(var / unit)
            ))
            .legend(plot::legend(*color));
        chart
            .draw_series(plot::vertical(tvar / unit, &y, *color))?
            .label(format!(
                "TVaR {} {}",
                percent_level(level),
                plot::short(tvar / unit)
            ))
            .legend(plot::legend(*color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 13))
        .draw()?;
    Ok(())
}

/// Return periods marked on the exceedance curve, in years.
pub(super) const RETURN_PERIODS: [f64; 3] = [10.0, 100.0, 200.0];

/// The total exceeded once in T years on average (P(total > x) = 1 / T), against T on a
/// logarithmic axis.
pub(super) fn exceedance_chart(r: &PricingResults, d: &TotalDistributionSummary) -> String {
    plot::svg(WIDTH, HEIGHT, |root| draw_exceedance(root, r, d))
}

fn draw_exceedance(root: &Area<'_>, r: &PricingResults, d: &TotalDistributionSummary) -> Drawn {
    let curve: Vec<(f64, f64)> = d
        .probabilities
        .iter()
        .zip(&d.quantiles)
        .filter(|(p, _)| **p >= 0.5)
        .map(|(p, q)| (1.0 / (1.0 - p), *q))
        .collect();
    let y_lo = curve.first().map_or(0.0, |c| c.1);
    let y_hi = curve.last().map_or(1.0, |c| c.1);
    let (unit, unit_name) = plot::money_unit(y_hi, &r.currency);
    let t_hi = curve.last().map_or(1000.0, |c| c.0).max(250.0);
    let y = plot::padded(y_lo / unit, y_hi / unit);
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Exceedance curve: the total exceeded once in T years",
            (FONT, 18),
        )
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(70)
        .build_cartesian_2d((2.0..t_hi).log_scale(), y.clone())?;
    chart
        .configure_mesh()
        .x_desc("return period T (years, logarithmic)")
        .y_desc(format!("annual total payout ({unit_name})"))
        .x_label_formatter(&|v| plot::short(*v))
        .y_label_formatter(&|v| plot::short(*v))
        .draw()?;
    chart.draw_series(LineSeries::new(
        curve.iter().map(|&(t, q)| (t, q / unit)),
        plot::FILL.stroke_width(2),
    ))?;
    for t in RETURN_PERIODS {
        let p = 1.0 - 1.0 / t;
        let Some(k) = d.probabilities.iter().position(|x| (x - p).abs() < 1e-9) else {
            continue;
        };
        let q = d.quantiles[k] / unit;
        chart.draw_series(DashedLineSeries::new(
            [(t, y.start), (t, q)],
            5,
            4,
            plot::MEAN.stroke_width(1),
        ))?;
        chart.draw_series([
            Circle::new((t, q), 4, plot::ALARM.filled()).into_dyn(),
            Text::new(
                format!("1 in {t} years: {}", plot::short(q)),
                (t, q),
                (FONT, 13).into_font(),
            )
            .into_dyn(),
        ])?;
    }
    Ok(())
}

/// The loss ratio (total / gross premium) as a density in percentage points, the part above
/// 100% shaded.
pub(super) fn loss_ratio_chart(r: &PricingResults, d: &TotalDistributionSummary) -> String {
    plot::svg(WIDTH, HEIGHT, |root| draw_loss_ratio(root, r, d))
}

fn draw_loss_ratio(root: &Area<'_>, r: &PricingResults, d: &TotalDistributionSummary) -> Drawn {
    let premium = r.premium.gross_premium;
    if premium <= 0.0 || !premium.is_finite() {
        return Err("the gross premium is not positive".into());
    }
    // x in percent of the premium; density per percentage point.
    let pts: Vec<(f64, f64)> = density_points(d)
        .into_iter()
        .map(|(x, y)| (100.0 * x / premium, y * premium / 100.0))
        .collect();
    let x_lo = pts.first().map_or(0.0, |p| p.0).min(95.0);
    let x_hi = pts.last().map_or(100.0, |p| p.0).max(105.0);
    let y_hi = pts.iter().map(|p| p.1).fold(0.0, f64::max);
    let y = 0.0..(y_hi * 1.1).max(f64::MIN_POSITIVE);
    let caption = format!(
        "Loss ratio at the premium of {} per member: P(loss ratio > 100%) = {}%",
        plot::short(r.premium.flat_premium_per_member),
        plot::short(100.0 * r.premium.prob_loss_ratio_above_100)
    );
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FONT, 18))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(70)
        .build_cartesian_2d(plot::padded(x_lo, x_hi), y.clone())?;
    chart
        .configure_mesh()
        .x_desc("loss ratio: annual total payout / gross premium (%)")
        .y_desc("probability per percentage point")
        .x_label_formatter(&|v| plot::short(*v))
        .y_label_formatter(&|v| plot::short(*v))
        .draw()?;
    chart.draw_series(
        AreaSeries::new(pts.clone(), 0.0, plot::FILL.mix(0.25))
            .border_style(plot::FILL.stroke_width(2)),
    )?;
    let above: Vec<(f64, f64)> = pts.into_iter().filter(|p| p.0 >= 100.0).collect();
    if !above.is_empty() {
        chart
            .draw_series(AreaSeries::new(above, 0.0, plot::ALARM.mix(0.45)))?
            .label("loss ratio above 100%")
            .legend(plot::legend(plot::ALARM));
    }
    chart
        .draw_series(plot::vertical(
            100.0 * r.premium.expected_loss_ratio,
            &y,
            plot::MEAN,
        ))?
        .label(format!(
            "expected loss ratio {}%",
            plot::short(100.0 * r.premium.expected_loss_ratio)
        ))
        .legend(plot::legend(plot::MEAN));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 13))
        .draw()?;
    Ok(())
}
