//! The study as one self-contained HTML page, drawn with plotters like the pricing report
//! (`crate::html`): observed against credibility-weighted admission rates by age (one chart per
//! condition group and sex, observed dots with bars of two standard errors, the value written
//! to the table as a line), the exposure of every cell as bars, the credibility structure, and
//! a table of every cell's figures. No scripts; it opens offline.

use std::fmt::Write;

use plotters::prelude::*;

use super::finish::{CellReport, Estimate, QuantityCredibility, StudyReport};
use super::{AGE_BANDS, CONDITION_GROUPS, SEXES};
use crate::html::bars::{Bars, bar_chart};
use crate::html::escape;
use crate::html::plot::{self, Area, Drawn, FONT};

/// The sections of the page, in order: (element id, title).
pub const STUDY_SECTIONS: [(&str, &str); 4] = [
    (
        "rates",
        "Admissions per person-year by age: observed and credibility-weighted",
    ),
    ("exposure", "Exposure per cell"),
    ("credibility", "Credibility structure"),
    ("cells", "Cells"),
];

const CHART_WIDTH: u32 = 450;
const CHART_HEIGHT: u32 = 300;
const OBSERVED: RGBColor = plot::FILL;
const USED: RGBColor = plot::ALARM;

pub fn render_html(report: &StudyReport) -> String {
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Morbidity study {first}-{last}</title><style>{STYLE}</style></head><body>\
         <h1>Morbidity study {first}-{last}</h1>",
        first = report.first_year,
        last = report.last_year,
    );
    page += &summary(report);
    let bodies = [
        rate_charts(report),
        exposure_chart(report),
        credibility_tables(report),
        cell_table(report),
    ];
    for ((id, title), body) in STUDY_SECTIONS.iter().zip(bodies) {
        let _ = write!(
            page,
            "<section id=\"{id}\"><h2>{title}</h2>{body}</section>"
        );
    }
    page += "</body></html>\n";
    page
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:960px;color:#222}\
table{border-collapse:collapse;margin:0.5em 0;font-size:13px}td,th{border:1px solid #bbb;\
padding:3px 6px;text-align:right}th{background:#eee}td:first-child,th:first-child{text-align:left}\
.charts{display:flex;flex-wrap:wrap}.defs{font-size:0.9em;color:#444}svg{display:block}";

fn summary(r: &StudyReport) -> String {
    format!(
        "<p>{} persons, {} encounters used, {:.0} person-years; product {}; pre-existing \
         look-back {} years; costs trended at {} a year to {}; {} bad rows.</p>",
        r.persons,
        r.encounters_used,
        r.exposure_person_years,
        escape(&r.code_book),
        r.lookback,
        r.trend,
        r.pricing_year,
        r.bad_rows.total()
    )
}

fn cells_of<'a>(r: &'a StudyReport, sex: &str, condition: &str) -> Vec<&'a CellReport> {
    AGE_BANDS
        .iter()
        .filter_map(|band| {
            r.cells
                .iter()
                .find(|c| c.age_band == *band && c.sex == sex && c.condition_group == condition)
        })
        .collect()
}

fn rate_charts(r: &StudyReport) -> String {
    let mut html = String::from(
        "<p class=\"defs\">Dots: the cell's observed admissions per person-year, with bars of \
         two standard errors; line: the credibility-weighted rate written to the table (a cell \
         without data takes its parent's value).</p><div class=\"charts\">",
    );
    for condition in CONDITION_GROUPS {
        for sex in SEXES {
            let cells = cells_of(r, sex, condition);
            html += &plot::svg(CHART_WIDTH, CHART_HEIGHT, |root| {
                draw_rates(root, &format!("{sex}, {condition}"), &cells)
            });
        }
    }
    html + "</div>"
}

/// Bounds of an observed rate's two-standard-error bar.
fn two_se(e: &Estimate) -> Option<(f64, f64, f64)> {
    let (obs, se) = (e.observed?, e.se?);
    Some((obs, (obs - 2.0 * se).max(0.0), obs + 2.0 * se))
}

fn draw_rates(root: &Area<'_>, caption: &str, cells: &[&CellReport]) -> Drawn {
    let rates: Vec<&Estimate> = cells.iter().map(|c| &c.hospitalization_rate).collect();
    let top = rates
        .iter()
        .flat_map(|e| [Some(e.value), two_se(e).map(|b| b.2)])
        .flatten()
        .fold(0.0, f64::max);
    let y = plot::padded(0.0, top.max(1e-6));
    let n = cells.len();
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FONT, 15))
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(-0.5..(n as f64 - 0.5), y.clone())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n.max(1))
        .x_desc("age band")
        .y_desc("admissions per person-year")
        .x_label_formatter(&|v| {
            let i = v.round();
            if (v - i).abs() < 1e-9 && i >= 0.0 {
                cells
                    .get(i as usize)
                    .map_or_else(String::new, |c| c.age_band.clone())
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| plot::short(*v))
        .draw()?;
    let observed: Vec<(f64, (f64, f64, f64))> = rates
        .iter()
        .enumerate()
        .filter_map(|(i, e)| Some((i as f64, two_se(e)?)))
        .collect();
    chart.draw_series(
        observed.iter().map(|&(x, (_, lo, hi))| {
            PathElement::new([(x, lo), (x, hi)], OBSERVED.stroke_width(1))
        }),
    )?;
    chart
        .draw_series(
            observed
                .iter()
                .map(|&(x, (obs, _, _))| Circle::new((x, obs), 3, OBSERVED.filled())),
        )?
        .label("observed, +-2 SE")
        .legend(|(x, y)| Circle::new((x + 9, y), 3, OBSERVED.filled()));
    chart
        .draw_series(LineSeries::new(
            rates.iter().enumerate().map(|(i, e)| (i as f64, e.value)),
            USED.stroke_width(2),
        ))?
        .label("credibility-weighted")
        .legend(plot::legend(USED));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 11))
        .draw()?;
    Ok(())
}

fn cell_id(c: &CellReport) -> String {
    format!("{}/{}/{}", c.age_band, c.sex, c.condition_group)
}

fn exposure_chart(r: &StudyReport) -> String {
    let format = |v: f64| plot::short(v);
    let (unit, unit_name) = if r.cells.iter().any(|c| c.exposure_person_years >= 1e4) {
        (1e3, "thousand person-years")
    } else {
        (1.0, "person-years")
    };
    bar_chart(&Bars {
        caption: format!("Exposure per cell, {}-{}", r.first_year, r.last_year),
        x_desc: format!("exposure ({unit_name})"),
        labels: r.cells.iter().map(cell_id).collect(),
        values: r
            .cells
            .iter()
            .map(|c| c.exposure_person_years / unit)
            .collect(),
        positive: plot::FILL,
        negative: plot::ALARM,
        format: &format,
    })
}

fn credibility_tables(r: &StudyReport) -> String {
    let c = &r.credibility;
    let mut h = String::from(
        "<p class=\"defs\">Buhlmann-Straub over the calendar years: a cell (one sex) is blended \
         with its parent (the same age band and condition group, both sexes), the parent with \
         its condition group over all ages. k = within / between variance; Z = w / (w + k).</p>\
         <table><tr><th>quantity</th><th>level</th><th>within variance</th>\
         <th>between variance</th><th>k</th><th>collective</th></tr>",
    );
    let k = |x: Option<f64>| x.map_or_else(|| "- (every Z = 0)".into(), |k| format!("{k:.6e}"));
    for (name, q) in [
        ("admissions per person-year", &c.hospitalization_rate),
        ("cost per admission", &c.oop_cost_per_admission),
        ("drug need rate", &c.drug_need_rate),
        ("drug cost per user", &c.drug_cost_per_user),
    ] {
        let collective = collective(q);
        for (level, s) in [
            ("cell in parent", &q.cell_level),
            ("parent in group", &q.parent_level),
        ] {
            let _ = write!(
                h,
                "<tr><td>{name}</td><td>{level}</td><td>{:.6e}</td><td>{:.6e}</td><td>{}</td>\
                 <td>{collective}</td></tr>",
                s.within_variance,
                s.between_variance,
                k(s.k)
            );
        }
    }
    h + "</table>"
}

fn collective(q: &QuantityCredibility) -> String {
    q.collective
        .iter()
        .map(|(group, m)| format!("{group} {}", plot::short(*m)))
        .collect::<Vec<_>>()
        .join("; ")
}

fn cell_table(r: &StudyReport) -> String {
    let mut h = String::from(
        "<table><tr><th>cell</th><th>person-years</th><th>share</th><th>admissions</th>\
         <th>rate observed</th><th>se</th><th>Z</th><th>rate used</th>\
         <th>mean cost observed</th><th>se</th><th>Z</th><th>mean cost used</th>\
         <th>drug users</th><th>need rate used</th><th>drug cost used</th></tr>",
    );
    let opt = |v: Option<f64>, digits: usize| {
        v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
    };
    for c in &r.cells {
        let f = &c.hospitalization_rate;
        let s = &c.oop_cost_per_admission;
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{:.0}</td><td>{:.4}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{:.3}</td><td>{:.5}</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.0}</td>\
             <td>{}</td><td>{:.6}</td><td>{:.0}</td></tr>",
            escape(&cell_id(c)),
            c.exposure_person_years,
            c.population_share,
            f.count,
            opt(f.observed, 5),
            opt(f.se, 5),
            f.z,
            f.value,
            opt(s.observed, 0),
            opt(s.se, 0),
            s.z,
            s.value,
            c.drug_need_rate.count,
            c.drug_need_rate.value,
            c.drug_cost_per_user.value
        );
    }
    h + "</table>"
}
