//! The study as one self-contained HTML page: observed against credibility-weighted admission
//! rates by age (inline SVG, one panel per sex and condition group), and the exposure, counts
//! and credibility factors of every cell.

use super::finish::StudyReport;
use super::{AGE_BANDS, CONDITION_GROUPS, SEXES};

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: f64 = 420.0;
const H: f64 = 260.0;
const LEFT: f64 = 60.0;
const BOTTOM: f64 = 40.0;
const TOP: f64 = 30.0;

/// One panel: the observed rate (dots with +-2 SE bars) and the credibility value (line) per
/// age band.
fn panel(report: &StudyReport, sex: &str, condition: &str) -> String {
    let cells: Vec<_> = AGE_BANDS
        .iter()
        .filter_map(|band| {
            report
                .cells
                .iter()
                .find(|c| c.age_band == *band && c.sex == sex && c.condition_group == condition)
        })
        .collect();
    let top = cells
        .iter()
        .flat_map(|c| {
            let r = &c.hospitalization_rate;
            [
                r.value,
                r.observed.unwrap_or(0.0) + 2.0 * r.se.unwrap_or(0.0),
            ]
        })
        .fold(0.0_f64, f64::max)
        .max(1e-6)
        * 1.1;
    let x = |i: usize| LEFT + (i as f64 + 0.5) * (W - LEFT - 10.0) / AGE_BANDS.len() as f64;
    let y = |v: f64| TOP + (H - TOP - BOTTOM) * (1.0 - (v / top).clamp(0.0, 1.0));
    let mut svg = format!(
        "<svg width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\">\
         <text x=\"{}\" y=\"18\" font-size=\"13\" text-anchor=\"middle\">{sex}, {condition}</text>\
         <line x1=\"{LEFT}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#444\"/>\
         <line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{}\" stroke=\"#444\"/>",
        W / 2.0,
        H - BOTTOM,
        W - 10.0,
        H - BOTTOM,
        H - BOTTOM
    );
    for k in 0..=4 {
        let v = top * f64::from(k) / 4.0;
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{v:.3}</text>",
            LEFT - 4.0,
            y(v) + 3.0
        ));
    }
    let mut line = String::new();
    for (i, c) in cells.iter().enumerate() {
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
            x(i),
            H - BOTTOM + 14.0,
            escape(&c.age_band)
        ));
        let r = &c.hospitalization_rate;
        if let (Some(obs), Some(se)) = (r.observed, r.se) {
            svg.push_str(&format!(
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\" stroke=\"#888\"/>\
                 <circle cx=\"{0:.1}\" cy=\"{3:.1}\" r=\"3\" fill=\"#1f77b4\">\
                 <title>observed {4:.5} (se {5:.5}), {6:.0} person-years</title></circle>",
                x(i),
                y(obs - 2.0 * se),
                y(obs + 2.0 * se),
                y(obs),
                obs,
                se,
                c.exposure_person_years
            ));
        }
        line.push_str(&format!("{:.1},{:.1} ", x(i), y(r.value)));
    }
    svg.push_str(&format!(
        "<polyline points=\"{line}\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">age band</text></svg>",
        W / 2.0,
        H - 8.0
    ));
    svg
}

pub fn render_html(report: &StudyReport) -> String {
    let mut page = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Morbidity study</title><style>body{font-family:sans-serif;margin:2em}\
         table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;\
         padding:3px 6px;text-align:right}th{background:#f3f3f3}</style></head><body>",
    );
    page.push_str(&format!(
        "<h1>Morbidity study {}-{}</h1><p>{} persons, {} encounters used, {:.0} person-years; \
         product {}; pre-existing look-back {} years; costs trended at {} a year to {}; \
         {} bad rows.</p>",
        report.first_year,
        report.last_year,
        report.persons,
        report.encounters_used,
        report.exposure_person_years,
        escape(&report.code_book),
        report.lookback,
        report.trend,
        report.pricing_year,
        report.bad_rows.total()
    ));
    page.push_str(
        "<h2>Admissions per person-year by age</h2><p>Dots: observed, with bars of two \
         standard errors; line: credibility-weighted value written to the table.</p><div>",
    );
    for condition in CONDITION_GROUPS {
        for sex in SEXES {
            page.push_str(&panel(report, sex, condition));
        }
    }
    page.push_str(
        "</div><h2>Cells</h2><table><tr><th>cell</th><th>person-years</th>\
         <th>share</th><th>admissions</th><th>rate observed</th><th>se</th><th>Z</th>\
         <th>rate used</th><th>mean cost observed</th><th>se</th><th>Z</th><th>mean cost used</th>\
         <th>drug users</th><th>need rate used</th><th>drug cost used</th></tr>",
    );
    let opt = |v: Option<f64>, digits: usize| {
        v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
    };
    for c in &report.cells {
        let f = &c.hospitalization_rate;
        let s = &c.oop_cost_per_admission;
        page.push_str(&format!(
            "<tr><td style=\"text-align:left\">{}/{}/{}</td><td>{:.0}</td><td>{:.4}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.5}</td><td>{}</td><td>{}</td>\
             <td>{:.3}</td><td>{:.0}</td><td>{}</td><td>{:.6}</td><td>{:.0}</td></tr>",
            escape(&c.age_band),
            c.sex,
            c.condition_group,
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
        ));
    }
    page.push_str("</table></body></html>\n");
    page
}
