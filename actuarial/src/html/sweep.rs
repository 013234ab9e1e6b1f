//! The sweep: every row as a table, and the flat premium per member as a heat map over the
//! swept values.

use plotters::prelude::*;

use super::escape;
use super::plot::{self, Area, Drawn, FONT, WIDTH};
use crate::results::SweepResult;

/// The sweep's rows as an HTML table, every column defined under it.
pub(super) fn sweep_table(sweep: &SweepResult, currency: &str) -> String {
    let mut html = String::from("<div class=\"wide\"><table><thead><tr>");
    for key in &sweep.keys {
        html += &format!("<th>{}</th>", escape(key));
    }
    for column in [
        "members",
        "expected payout",
        "flat premium per member",
        "expected loss ratio",
        "VaR",
        "TVaR",
        "P(loss ratio > 100%)",
    ] {
        html += &format!("<th>{column}</th>");
    }
    html += "</tr></thead><tbody>";
    for row in &sweep.rows {
        html += "<tr>";
        for v in &row.values {
            html += &format!("<td>{}</td>", plot::short(*v));
        }
        html += &format!(
            "<td>{}</td><td>{:.0}</td><td>{:.2}</td><td>{:.1}%</td><td>{:.0}</td><td>{:.0}</td>\
             <td>{:.2}%</td></tr>",
            row.members,
            row.expected_payout,
            row.flat_premium_per_member,
            100.0 * row.expected_loss_ratio,
            row.var,
            row.tvar,
            100.0 * row.prob_loss_ratio_above_100,
        );
    }
    html += "</tbody></table></div>";
    html += &format!(
        "<p class=\"defs\">The first {keys} column{s} give the swept values of the row. \
         <b>members</b>: members priced. <b>expected payout</b>: expected annual total \
         payout ({currency}). <b>flat premium per member</b>: the gross premium of the row's \
         pricing basis divided by its members ({currency}). <b>expected loss ratio</b>: \
         expected payout / gross premium. <b>VaR</b>, <b>TVaR</b>: of the annual total at the \
         pricing level {level} ({currency}). <b>P(loss ratio &gt; 100%)</b>: the probability \
         that a year's payout exceeds the gross premium.</p>",
        keys = sweep.keys.len(),
        s = if sweep.keys.len() == 1 { "" } else { "s" },
        currency = escape(currency),
        level = sweep.level,
    );
    html
}

/// The heat map's grid: the distinct values of the first key across, the distinct
/// combinations of the others down, and the row at each cell.
struct Grid {
    columns: Vec<f64>,
    row_labels: Vec<String>,
    cells: Vec<(usize, usize, f64)>,
}

fn grid(sweep: &SweepResult) -> Grid {
    let mut columns: Vec<f64> = Vec::new();
    let mut row_labels: Vec<String> = Vec::new();
    let mut cells = Vec::new();
    for row in &sweep.rows {
        let Some((&first, rest)) = row.values.split_first() else {
            continue;
        };
        let label = if rest.is_empty() {
            "all rows".to_string()
        } else {
            sweep.keys[1..]
                .iter()
                .zip(rest)
                .map(|(k, v)| format!("{k} = {}", plot::short(*v)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let x = columns.iter().position(|c| *c == first).unwrap_or_else(|| {
            columns.push(first);
            columns.len() - 1
        });
        let y = row_labels
            .iter()
            .position(|l| *l == label)
            .unwrap_or_else(|| {
                row_labels.push(label);
                row_labels.len() - 1
            });
        cells.push((x, y, row.flat_premium_per_member));
    }
    Grid {
        columns,
        row_labels,
        cells,
    }
}

/// From pale (lowest) to deep (highest).
fn shade(t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let mix = |a: u8, b: u8| (f64::from(a) + t * (f64::from(b) - f64::from(a))).round() as u8;
    RGBColor(mix(250, 160), mix(235, 30), mix(200, 40))
}

pub(super) fn sweep_heat_map(sweep: &SweepResult) -> String {
    let g = grid(sweep);
    let rows = u32::try_from(g.row_labels.len()).unwrap_or(u32::MAX).max(1);
    let height = rows.saturating_mul(40).saturating_add(130).min(4000);
    plot::svg(WIDTH, height, |root| draw_heat_map(root, sweep, &g))
}

fn draw_heat_map(root: &Area<'_>, sweep: &SweepResult, g: &Grid) -> Drawn {
    let lo = g.cells.iter().map(|c| c.2).fold(f64::INFINITY, f64::min);
    let hi = g
        .cells
        .iter()
        .map(|c| c.2)
        .fold(f64::NEG_INFINITY, f64::max);
    let label_width = g.row_labels.iter().map(|l| l.len()).max().unwrap_or(8);
    let mut chart = ChartBuilder::on(root)
        .caption("Sweep: flat premium per member", (FONT, 18))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(u32::try_from(label_width * 7 + 16).unwrap_or(300).min(360))
        .build_cartesian_2d(
            (0..g.columns.len()).into_segmented(),
            (0..g.row_labels.len()).into_segmented(),
        )?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(g.columns.len().max(1))
        .y_labels(g.row_labels.len().max(1))
        .x_desc(sweep.keys.first().map_or("", String::as_str))
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => g
                .columns
                .get(*i)
                .map(|c| plot::short(*c))
                .unwrap_or_default(),
            _ => String::new(),
        })
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => g.row_labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .draw()?;
    let t = |v: f64| if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
    chart.draw_series(g.cells.iter().map(|&(x, y, v)| {
        Rectangle::new(
            [
                (SegmentValue::Exact(x), SegmentValue::Exact(y)),
                (SegmentValue::Exact(x + 1), SegmentValue::Exact(y + 1)),
            ],
            shade(t(v)).filled(),
        )
    }))?;
    chart.draw_series(g.cells.iter().map(|&(x, y, v)| {
        let color = if t(v) > 0.6 { WHITE } else { BLACK };
        Text::new(
            format!("{v:.2}"),
            (SegmentValue::CenterOf(x), SegmentValue::CenterOf(y)),
            (FONT, 13)
                .into_font()
                .color(&color)
                .pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Center,
                )),
        )
    }))?;
    Ok(())
}
