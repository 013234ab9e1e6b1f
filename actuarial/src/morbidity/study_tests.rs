//! The study on synthetic data from a known model.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::finish::{FinishOptions, StudyReport, finish, table_csv};
use super::study::{PartialStudy, StudyOptions, run};
use super::synth::{SynthCodes, SynthFormat, SynthOptions, SynthSummary, generate};
use super::{Partition, StudyError, cell_parts};
use crate::table::{ResolvedTable, TableError, TableResolver, parse_morbidity};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("puhui-morbidity-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn options(partition: Partition) -> StudyOptions {
    StudyOptions {
        first_year: 2019,
        last_year: 2023,
        lookback: 5,
        partition,
        strict: false,
        code_book: "synthetic".into(),
    }
}

const FINISH: FinishOptions = FinishOptions {
    trend: 0.0,
    pricing_year: 2024,
};

/// One synthetic population shared by the tests: 50,000 persons over 2015-2024.
pub(super) fn population() -> &'static (SynthSummary, PartialStudy, StudyReport) {
    static DATA: OnceLock<(SynthSummary, PartialStudy, StudyReport)> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = scratch("population");
        let summary = generate(
            &dir,
            &SynthOptions {
                persons: 50_000,
                first_year: 2015,
                last_year: 2024,
                seed: 11,
                format: SynthFormat::Csv,
            },
        )
        .unwrap();
        let partial = run(
            &summary.persons_file,
            &summary.encounters_file,
            &SynthCodes,
            &options(Partition::WHOLE),
        )
        .unwrap();
        let report = finish(&partial, &FINISH).unwrap();
        (summary, partial, report)
    })
}

fn truth(summary: &SynthSummary) -> Vec<crate::table::MorbidityRow> {
    let text = std::fs::read_to_string(&summary.truth_table).unwrap();
    parse_morbidity(&ResolvedTable {
        name: "truth.csv".into(),
        text,
    })
    .unwrap()
}

#[test]
fn true_rates_fall_within_two_standard_errors() {
    let (summary, partial, report) = population();
    assert_eq!(partial.bad_rows.total(), 0, "{:?}", partial.bad_rows);
    let truth = truth(summary);
    let (mut inside, mut checked) = (0, 0);
    for (cell, t) in report.cells.iter().zip(&truth) {
        for (estimate, true_value) in [
            (&cell.hospitalization_rate, t.annual_hospitalization_rate),
            (&cell.oop_cost_per_admission, t.mean_oop_cost_per_admission),
            (&cell.drug_need_rate, t.targeted_drug_need_rate),
            (&cell.drug_cost_per_user, t.mean_annual_drug_cost),
        ] {
            // A standard error from fewer than 20 events is itself too uncertain to test.
            let (Some(obs), Some(se)) = (estimate.observed, estimate.se) else {
                continue;
            };
            if estimate.count >= 20 {
                checked += 1;
                if (obs - true_value).abs() <= 2.0 * se {
                    inside += 1;
                }
            }
        }
    }
    let share = f64::from(inside) / f64::from(checked);
    // About 95% are expected; with ~50 checks, 85% is more than 3 binomial SEs below.
    eprintln!("coverage: {inside} of {checked} within 2 SE");
    assert!(checked >= 40, "{checked}");
    assert!(share >= 0.85, "{inside} of {checked} within 2 SE");
}

#[test]
fn credibility_pulls_thin_cells_towards_their_parents() {
    let (_, _, report) = population();
    let model = &report.credibility.hospitalization_rate;
    let mut thin = 0;
    for (c, cell) in report.cells.iter().enumerate() {
        let (band, _, pre) = cell_parts(c);
        let parent = model
            .parents
            .iter()
            .find(|p| {
                p.age_band == super::AGE_BANDS[band]
                    && p.condition_group == super::CONDITION_GROUPS[usize::from(pre)]
            })
            .unwrap();
        let f = &cell.hospitalization_rate;
        let k = model.cell_level.k.unwrap();
        // Z = w / (w + k) with the cell's person-years.
        assert!((f.z - f.weight / (f.weight + k)).abs() < 1e-9);
        let obs = f.observed.unwrap();
        // The value lies between the observation and the parent, at the share Z.
        let expected = f.z * obs + (1.0 - f.z) * parent.estimate;
        assert!((f.value - expected).abs() < 1e-12, "{c}");
        if f.z < 0.9 {
            thin += 1;
            assert!((f.value - parent.estimate).abs() < (obs - parent.estimate).abs());
        }
    }
    // The pre-existing cells of the young are a few hundred person-years.
    assert!(thin >= 1, "no thin cell");
    // Bigger cells get more credibility.
    let mut by_weight: Vec<(f64, f64)> = report
        .cells
        .iter()
        .map(|c| (c.hospitalization_rate.weight, c.hospitalization_rate.z))
        .collect();
    by_weight.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(by_weight.windows(2).all(|w| w[0].1 <= w[1].1));
}

#[test]
fn a_cell_without_data_takes_its_parent() {
    let (_, partial, _) = population();
    let mut emptied = partial.clone();
    // Remove the women aged 85+ with pre-existing conditions entirely.
    let cell = super::cell_index(6, 1, true);
    for y in &mut emptied.cells[cell] {
        *y = Default::default();
    }
    let report = finish(&emptied, &FINISH).unwrap();
    let c = &report.cells[cell];
    assert_eq!(c.population_share, 0.0);
    assert_eq!(c.hospitalization_rate.z, 0.0);
    assert_eq!(c.hospitalization_rate.observed, None);
    let parent = report
        .credibility
        .hospitalization_rate
        .parents
        .iter()
        .find(|p| p.age_band == "85+" && p.condition_group == "preexisting")
        .unwrap();
    assert_eq!(c.hospitalization_rate.value, parent.estimate);
    // The table still parses and prices: every cost column is positive.
    parse_morbidity(&ResolvedTable {
        name: "t.csv".into(),
        text: table_csv(&report),
    })
    .unwrap();
}

#[test]
fn partitions_merge_into_the_one_pass_study() {
    let summary = generate(
        &scratch("partitions"),
        &SynthOptions {
            persons: 8_000,
            first_year: 2015,
            last_year: 2024,
            seed: 2,
            format: SynthFormat::Csv,
        },
    )
    .unwrap();
    let summary = &summary;
    let whole = &run(
        &summary.persons_file,
        &summary.encounters_file,
        &SynthCodes,
        &options(Partition::WHOLE),
    )
    .unwrap();
    let report = &finish(whole, &FINISH).unwrap();
    let mut merged: Option<PartialStudy> = None;
    for i in 1..=3 {
        let part = run(
            &summary.persons_file,
            &summary.encounters_file,
            &SynthCodes,
            &options(Partition { index: i, count: 3 }),
        )
        .unwrap();
        assert!(part.persons < whole.persons);
        // Through the file format, as the command line does.
        let json = serde_json::to_string(&part).unwrap();
        let part: PartialStudy = serde_json::from_str(&json).unwrap();
        match &mut merged {
            None => merged = Some(part),
            Some(m) => m.merge(&part, "part").unwrap(),
        }
    }
    let merged = merged.unwrap();
    assert_eq!(merged.cells, whole.cells);
    assert_eq!(merged.persons, whole.persons);
    assert_eq!(merged.encounters_used, whole.encounters_used);
    assert_eq!(merged.bad_rows, whole.bad_rows);
    let merged_report = finish(&merged, &FINISH).unwrap();
    assert_eq!(table_csv(&merged_report), table_csv(report));
    assert_eq!(merged_report.cells, report.cells);

    // A partition twice, or one missing, is refused.
    let mut twice = merged.clone();
    assert!(twice.merge(&merged, "again").is_err());
    let one = run(
        &summary.persons_file,
        &summary.encounters_file,
        &SynthCodes,
        &options(Partition { index: 1, count: 3 }),
    )
    .unwrap();
    let err = finish(&one, &FINISH).unwrap_err();
    assert!(
        err.to_string().contains("partitions 2, 3 of 3 are missing"),
        "{err}"
    );
}

#[test]
fn csv_gzip_and_parquet_inputs_give_the_same_study() {
    let small = |format| SynthOptions {
        persons: 4_000,
        first_year: 2017,
        last_year: 2023,
        seed: 5,
        format,
    };
    let run_on = |summary: &SynthSummary| {
        run(
            &summary.persons_file,
            &summary.encounters_file,
            &SynthCodes,
            &options(Partition::WHOLE),
        )
        .unwrap()
    };
    let csv = run_on(&generate(&scratch("fmt-csv"), &small(SynthFormat::Csv)).unwrap());
    let gz = run_on(&generate(&scratch("fmt-gz"), &small(SynthFormat::CsvGz)).unwrap());
    let pq = run_on(&generate(&scratch("fmt-pq"), &small(SynthFormat::Parquet)).unwrap());
    assert!(csv.encounters_used > 1000);
    assert_eq!(csv, gz);
    assert_eq!(csv, pq);
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn bad_rows_are_counted_by_reason_with_their_lines() {
    let dir = scratch("bad");
    let persons = write(
        &dir,
        "persons.csv",
        "person_key,birth_year,sex,insurance_type,observed_from,observed_to\n\
         a,1960,M,urban_employee,2015-01-01,2024-12-31\n\
         b,1970,X,urban_employee,2015-01-01,2024-12-31\n\
         c,1980,F,urban_rural_resident,2015-01-01,2024-06-30\n\
         a,1960,M,urban_employee,2015-01-01,2024-12-31\n",
    );
    let encounters = write(
        &dir,
        "encounters.csv",
        "person_key,kind,start_date,diagnoses,total_cost,basic_paid,out_of_catalogue,atc\n\
         a,inpatient,2019-03-01,J18.9,10000.00,6000.00,0,\n\
         zz,inpatient,2019-03-01,J18.9,10000.00,6000.00,0,\n\
         a,inpatient,2019-02-30,J18.9,10000.00,6000.00,0,\n\
         a,inpatient,2019-03-01,XYZ,10000.00,6000.00,0,\n\
         a,inpatient,2019-03-01,J18.9,-1.00,0,0,\n\
         a,inpatient,2019-03-01,J18.9,100.00,200.00,0,\n\
         c,inpatient,2024-08-01,J18.9,100.00,20.00,0,\n\
         a,pharmacy,2019-03-01,C34.1,100.00,0,100.00,NOTATC\n\
         a,outpatient,2019-03-01,J18.9,100.00,0,0,\n\
         c,inpatient,2020-01-05,J18.9;C34.1,5000.00,3000.00,0,\n",
    );
    let partial = run(
        &persons,
        &encounters,
        &SynthCodes,
        &options(Partition::WHOLE),
    )
    .unwrap();
    let reasons = |m: &std::collections::BTreeMap<String, super::study::BadReason>| {
        m.iter()
            .map(|(k, v)| (k.clone(), v.count, v.first_lines.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        reasons(&partial.bad_rows.persons),
        vec![
            ("duplicate_person".to_string(), 1, vec![5]),
            ("malformed_sex".to_string(), 1, vec![3]),
        ]
    );
    assert_eq!(
        reasons(&partial.bad_rows.encounters),
        vec![
            ("basic_paid_exceeds_total".to_string(), 1, vec![7]),
            ("malformed_code".to_string(), 2, vec![5, 9]),
            ("malformed_date".to_string(), 1, vec![4]),
            ("malformed_kind".to_string(), 1, vec![10]),
            ("negative_amount".to_string(), 1, vec![6]),
            ("outside_observed_period".to_string(), 1, vec![8]),
            ("unknown_person".to_string(), 1, vec![3]),
        ]
    );
    assert_eq!(partial.encounters_used, 2);

    let strict = StudyOptions {
        strict: true,
        ..options(Partition::WHOLE)
    };
    let err = run(&persons, &encounters, &SynthCodes, &strict).unwrap_err();
    assert!(
        matches!(&err, StudyError::Row { line: 3, column, .. } if column == "sex"),
        "{err}"
    );
    assert!(
        err.to_string().contains("persons.csv: line 3: `sex`"),
        "{err}"
    );
    let good_persons = write(
        &dir,
        "persons-good.csv",
        "person_key,birth_year,sex,insurance_type,observed_from,observed_to\n\
         a,1960,M,urban_employee,2015-01-01,2024-12-31\n",
    );
    let err = run(&good_persons, &encounters, &SynthCodes, &strict).unwrap_err();
    assert!(
        err.to_string()
            .contains("encounters.csv: line 3: `person_key`"),
        "{err}"
    );
    let missing = write(&dir, "e.csv", "person_key,kind\n");
    let err = run(
        &good_persons,
        &missing,
        &SynthCodes,
        &options(Partition::WHOLE),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("missing column `start_date`"),
        "{err}"
    );
}

/// Serves the two tables to the scenario parser from memory.
struct Tables(Vec<(String, String)>);

impl TableResolver for Tables {
    fn resolve(&self, table: &str) -> Result<ResolvedTable, TableError> {
        self.0
            .iter()
            .find(|(name, _)| name == table)
            .map(|(name, text)| ResolvedTable {
                name: name.clone(),
                text: text.clone(),
            })
            .ok_or_else(|| TableError::NotAllowed(table.into()))
    }
}

/// Exact (discretised, no Monte Carlo error) expected payout per member of every group of a
/// table, by group id.
fn exact_group_payouts(table_csv: &str) -> std::collections::HashMap<String, (u64, f64)> {
    let scenario = "name = \"study check\"\nseed = 3\nsimulations = 1000\n\
        [benefits.inpatient]\ndeductible = 20000\ncoinsurance = 0.8\n\
        coinsurance_preexisting = 0.5\nannual_limit = 1000000\n\
        [benefits.specialty_drug]\ndeductible = 0\ncoinsurance = 0.7\n\
        coinsurance_preexisting = 0.3\nannual_limit = 1000000\n\
        [population]\ntable = \"t.csv\"\nsize = 20000\ndrug_cost_cv = 0.8\ntake_up = 0.25\n\
        [pricing]\nexpense_ratio = 0.1\ncost_of_capital = 0.06\nrisk_measure = \"tvar\"\n\
        level = 0.995\n";
    let tables = Tables(vec![("t.csv".into(), table_csv.into())]);
    let scenario = crate::Scenario::from_toml_str(scenario, "check.toml", &tables).unwrap();
    let results = crate::price(&scenario, &crate::RunOptions::default()).unwrap();
    results
        .groups
        .iter()
        .map(|g| (g.id.clone(), (g.members, g.exact.mean_payout_per_member)))
        .collect()
}

/// Rows of a table under a tag (appended to the age band, so that several variants of the
/// table can be priced in one run), with the frequency, severity and drug cost scaled.
fn variant(
    rows: &[crate::table::MorbidityRow],
    shares: &[f64],
    tag: &str,
    (freq, sev, drug): (f64, f64, f64),
) -> String {
    let mut out = String::new();
    for (r, share) in rows.iter().zip(shares) {
        out.push_str(&format!(
            "{}{tag},{},{},{share},{},{},{},{},{}\n",
            r.age_band,
            r.sex,
            if r.preexisting {
                "preexisting"
            } else {
                "standard"
            },
            r.annual_hospitalization_rate * freq,
            r.mean_oop_cost_per_admission * sev,
            r.cv_cost,
            r.targeted_drug_need_rate,
            r.mean_annual_drug_cost * drug
        ));
    }
    out
}

#[test]
fn pricing_the_built_table_reproduces_the_true_table() {
    let (summary, _, report) = population();
    let truth = truth(summary);
    let built = parse_morbidity(&ResolvedTable {
        name: "built.csv".into(),
        text: table_csv(report),
    })
    .unwrap();
    // Every variant with the built table's shares (the study measures the shares exactly), a
    // quarter of the population each.
    let shares: Vec<f64> = report
        .cells
        .iter()
        .map(|c| c.population_share / 4.0)
        .collect();
    // Slopes of each group's payout in its frequency and severity, by a 2% bump: the delta
    // method then turns the study's relative standard errors into one for the portfolio's
    // expected payout. (Each variant is 28 more groups to discretise, the costly part.)
    let h = 0.02;
    let mut table = String::from(
        "age_band,sex,condition_group,population_share,annual_hospitalization_rate,\
         mean_oop_cost_per_admission_cny,cv_cost,targeted_drug_need_rate,\
         mean_annual_drug_cost_cny\n",
    );
    table.push_str(&variant(&built, &shares, "~built", (1.0, 1.0, 1.0)));
    table.push_str(&variant(&truth, &shares, "", (1.0, 1.0, 1.0)));
    table.push_str(&variant(&truth, &shares, "~f", (1.0 + h, 1.0, 1.0)));
    table.push_str(&variant(&truth, &shares, "~s", (1.0, 1.0 + h, 1.0)));
    let payouts = exact_group_payouts(&table);
    let (mut total_true, mut total_built, mut var, mut members) = (0.0, 0.0, 0.0, 0.0);
    for (c, cell) in report.cells.iter().enumerate() {
        let id = super::cell_id(c);
        let tagged = |tag: &str| {
            let (band, rest) = id.split_once('/').unwrap();
            payouts[&format!("{band}{tag}/{rest}")]
        };
        let (members_true, p) = payouts[&id];
        assert_eq!(members_true, tagged("~built").0);
        // Weighted by the exposure share (member counts are rounded to whole persons).
        let m = cell.population_share;
        members += m;
        total_true += m * p;
        total_built += m * tagged("~built").1;
        // Payout change per unit of relative change in each input.
        let slope = |tag: &str| (tagged(tag).1 - p) / h;
        let rel = |e: &super::finish::Estimate| match (e.observed, e.se) {
            (Some(o), Some(se)) if o > 0.0 => se / o,
            _ => 0.0,
        };
        // The drug payout (no deductible, a limit far above the costs) is proportional to the
        // need rate and, nearly, to the mean cost: its slope in either is the payout itself.
        let coinsurance = if cell_parts(c).2 { 0.3 } else { 0.7 };
        let drug_payout = coinsurance * cell.drug_need_rate.value * cell.drug_cost_per_user.value;
        let var_cell = (slope("~f") * rel(&cell.hospitalization_rate)).powi(2)
            + (slope("~s") * rel(&cell.oop_cost_per_admission)).powi(2)
            + (drug_payout * rel(&cell.drug_cost_per_user)).powi(2)
            + (drug_payout * rel(&cell.drug_need_rate)).powi(2);
        var += m * m * var_cell;
    }
    let se = var.sqrt() / members;
    let (true_pp, built_pp) = (total_true / members, total_built / members);
    eprintln!("pricing: built {built_pp:.3} true {true_pp:.3} se {se:.3}");
    assert!(se > 0.0 && se < 0.1 * true_pp, "{se} {true_pp}");
    assert!(
        (built_pp - true_pp).abs() <= 2.0 * se,
        "built {built_pp:.3} true {true_pp:.3} se {se:.3}"
    );
}
