//! The study's page on the synthetic population of the study tests: every section and chart is
//! there, closed, self-contained, and carries the study's own numbers.

use super::html::{STUDY_SECTIONS, render_html};
use super::study_tests::population;
use super::{AGE_BANDS, CONDITION_GROUPS, SEXES};

fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("<section id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no section {id}"));
    let end = page[start..].find("</section>").expect("section closed") + start;
    &page[start..end]
}

#[test]
fn the_study_page_has_its_charts_and_numbers() {
    let (_, _, report) = population();
    let page = render_html(report);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.trim_end().ends_with("</html>"));
    assert!(!page.to_lowercase().contains("<script"));
    let stripped = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!stripped.contains("http://") && !stripped.contains("https://"));
    for tag in ["svg", "section", "table", "tr"] {
        assert_eq!(
            page.matches(&format!("<{tag}")).count(),
            page.matches(&format!("</{tag}>")).count(),
            "<{tag}> left open"
        );
    }
    for (id, title) in STUDY_SECTIONS {
        assert!(
            section(&page, id).contains(&format!("<h2>{title}</h2>")),
            "{id}"
        );
    }
    assert!(!page.contains("could not be drawn"));

    // One rate chart per condition group and sex, drawn by plotters, with its caption, the
    // age bands on the axis, one dot per cell with data plus the legend's, and the line.
    let rates = section(&page, "rates");
    assert_eq!(
        rates.matches("<svg").count(),
        CONDITION_GROUPS.len() * SEXES.len()
    );
    for condition in CONDITION_GROUPS {
        for sex in SEXES {
            assert!(
                rates.contains(&format!("{sex}, {condition}")),
                "{sex}, {condition}"
            );
        }
    }
    for band in AGE_BANDS {
        assert!(rates.contains(&format!(">\n{band}\n</text>")), "{band}");
    }
    let observed = report
        .cells
        .iter()
        .filter(|c| {
            c.hospitalization_rate.observed.is_some() && c.hospitalization_rate.se.is_some()
        })
        .count();
    assert!(observed > 20, "{observed}");
    assert_eq!(rates.matches("<circle").count(), observed + 4);
    assert!(rates.matches("<polyline").count() >= 4);
    assert!(rates.contains("credibility-weighted") && rates.contains("observed, +-2 SE"));

    // The exposure chart names every cell; the table carries every cell's person-years, Z and
    // rate used.
    let exposure = section(&page, "exposure");
    assert!(exposure.contains("<svg"));
    let cells = section(&page, "cells");
    for c in &report.cells {
        let id = format!("{}/{}/{}", c.age_band, c.sex, c.condition_group);
        assert!(
            exposure.contains(&format!(">\n{id}\n</text>")),
            "{id} not in the chart"
        );
        let row = format!(
            "<tr><td>{id}</td><td>{:.0}</td><td>{:.4}</td>",
            c.exposure_person_years, c.population_share
        );
        assert!(cells.contains(&row), "{row}");
        assert!(cells.contains(&format!("<td>{:.5}</td>", c.hospitalization_rate.value)));
    }
    let persons = format!("<p>{} persons,", report.persons);
    assert!(page.contains(&persons), "{persons}");
    let within = report
        .credibility
        .hospitalization_rate
        .cell_level
        .within_variance;
    assert!(section(&page, "credibility").contains(&format!("{within:.6e}")));
}
