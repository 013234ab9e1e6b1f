use std::collections::BTreeMap;

use super::*;
use crate::Scenario;
use crate::experience::Expected;

/// Cost per admission of the test basis: `rate` CNY per member-year is `rate / 1000` admissions.
const COST_PER_ADMISSION: f64 = 1000.0;
/// Expected drug payout per member-year of every group of the test basis.
const DRUG_RATE: f64 = 5.0;

fn basis(rates: &[(&str, f64)]) -> Basis {
    Basis {
        name: "t".into(),
        expected_loss_ratio: Some(0.85),
        groups: rates
            .iter()
            .map(|(id, mean)| {
                let mut by = BTreeMap::new();
                by.insert(
                    "inpatient".to_string(),
                    Expected {
                        mean: *mean,
                        second_moment: mean * mean * 10.0,
                        claims: mean / COST_PER_ADMISSION,
                    },
                );
                by.insert(
                    "specialty_drug".to_string(),
                    Expected {
                        mean: DRUG_RATE,
                        second_moment: 1.0e4,
                        claims: 0.001,
                    },
                );
                (id.to_string(), (1000.0, by))
            })
            .collect(),
    }
}

/// A month of `admissions` stays at the basis's cost each and `drug_ae` times the expected drug
/// payout.
fn cell(group: &str, month: &str, member_years: f64, admissions: f64, drug_ae: f64) -> MonthCell {
    MonthCell {
        group: group.into(),
        month: month.into(),
        member_years,
        admissions,
        inpatient_paid: admissions * COST_PER_ADMISSION,
        drug_paid: drug_ae * DRUG_RATE * member_years,
    }
}

#[test]
fn the_parts_sum_to_the_change_and_each_is_its_step() {
    let steps = StepPremiums {
        basis: 120.0,
        experience: 132.0,
        next_pool: 135.0,
        trended: 141.75,
        with_uncertainty: 143.0,
        with_uncertainty_se: 0.5,
    };
    let d = decompose(129.0, &steps, 0.02);
    // recommended = 143 x 1.02 = 145.86; this year's margin over the model 129 - 120 = 9,
    // next year's 145.86 - 141.75 = 4.11.
    assert!((d.recommended - 145.86).abs() < 1e-9);
    assert!((d.experience - 12.0).abs() < 1e-9);
    assert!((d.mix_and_selection - 3.0).abs() < 1e-9);
    assert!((d.trend - 6.75).abs() < 1e-9);
    assert!((d.margin - (4.11 - 9.0)).abs() < 1e-9);
    assert!((d.parameter_uncertainty - 1.25).abs() < 1e-9);
    let sum = d.experience + d.mix_and_selection + d.trend + d.margin;
    assert!((sum - d.total_change).abs() < 1e-9);
    assert!((d.total_change - 16.86).abs() < 1e-9);
}

/// Two groups over three months, by hand: group `a` is admitted as the basis expects (A/E 1
/// every month), group `b` 1.5 to 2.5 times as often. Weights are the expected admissions
/// (10,000 member-years at 0.01 a month: 100).
///
/// a: X = 1, 1, 1 with w = 100 each: mean 1, within SS 0.
/// b: X = 1.5, 2.0, 2.5 with w = 100 each: mean 2, within SS 100 (0.25 + 0 + 0.25) = 50.
/// sigma^2 = 50 / (2 + 2) = 12.5.
/// w = 600, weighted mean 1.5, spread 300 x 0.25 x 2 = 150, c = 600 - (300^2 x 2) / 600 = 300,
/// tau^2 = (150 - 12.5) / 300 = 0.458333...; k = 12.5 / tau^2 = 27.2727...;
/// Z = 300 / 327.2727 = 0.916667 for both; b's blend 1 + Z x 1 = 1.916667, a's 1.
/// The drugs cost what the basis expects in every month: no spread, no credibility, A/E 1.
#[test]
fn the_blend_moves_a_group_admitted_more_often_towards_its_experience_by_z() {
    let b = basis(&[("a", 10.0), ("b", 10.0)]);
    let mut cells = Vec::new();
    for (m, x) in [("2026-07", 1.5), ("2026-08", 2.0), ("2026-09", 2.5)] {
        cells.push(cell("a", m, 10_000.0, 100.0, 1.0));
        cells.push(cell("b", m, 10_000.0, 100.0 * x, 1.0));
    }
    let members: BTreeMap<String, u64> = [("a".to_string(), 120), ("b".to_string(), 40)].into();
    let blend = blend(&b, &cells, &BTreeMap::new(), &members, 0.9);
    let tau2 = 137.5 / 300.0;
    assert!((blend.admissions.within_variance - 12.5).abs() < 1e-9);
    assert!((blend.admissions.between_variance - tau2).abs() < 1e-9);
    let z = 300.0 / (300.0 + 12.5 / tau2);
    let (a, bb) = (&blend.groups[0].admissions, &blend.groups[1].admissions);
    assert!((a.z - z).abs() < 1e-9 && (bb.z - z).abs() < 1e-9);
    assert!((a.blended_ae - 1.0).abs() < 1e-9);
    assert!((bb.blended_ae - (1.0 + z * (2.0 - 1.0))).abs() < 1e-9);
    assert!((bb.blended_ae_se - ((1.0 - z) * tau2).sqrt()).abs() < 1e-9);
    assert!((bb.observed_ae.unwrap() - 2.0).abs() < 1e-12);
    assert_eq!((bb.expected, bb.ultimate), (300.0, 600.0));
    assert_eq!(bb.expected_payout, 300_000.0);
    let (groups_a, groups_b) = (&blend.groups[0], &blend.groups[1]);
    assert_eq!((groups_a.next_members, groups_b.next_members), (108, 36));
    // Payout totals over both benefits: b's stays cost 600 x 1,000, its drugs 3 x 50,000.
    assert_eq!(groups_b.ultimate, 600_000.0 + 150_000.0);
    assert_eq!(groups_b.expected, 300_000.0 + 150_000.0);
    for g in &blend.groups {
        assert_eq!(g.drug.z, 0.0);
        assert_eq!(g.drug.blended_ae, 1.0);
        assert_eq!(g.drug.observed_ae, Some(1.0));
    }
}

/// The drugs are reported but not blended: group b's drug payout is 1.5 to 2.5 times the
/// basis's, and its admissions as expected.
#[test]
fn the_drugs_are_reported_and_not_blended() {
    let b = basis(&[("a", 10.0), ("b", 10.0)]);
    let mut cells = Vec::new();
    for (m, x) in [("2026-07", 1.5), ("2026-08", 2.0), ("2026-09", 2.5)] {
        cells.push(cell("a", m, 10_000.0, 100.0, 1.0));
        cells.push(cell("b", m, 10_000.0, 100.0, x));
    }
    let blend = blend(&b, &cells, &BTreeMap::new(), &BTreeMap::new(), 1.0);
    assert!(blend.drug.note.as_deref().unwrap().contains("not blended"));
    let drug = &blend.groups[1].drug;
    assert!((drug.observed_ae.unwrap() - 2.0).abs() < 1e-12);
    assert_eq!(
        (drug.z, drug.blended_ae, drug.blended_ae_se),
        (0.0, 1.0, 0.0)
    );
    assert_eq!(drug.expected, 150_000.0);
    assert_eq!(blend.groups[1].admissions.blended_ae, 1.0);
}

#[test]
fn completion_factors_raise_the_ultimate_of_immature_months() {
    let b = basis(&[("a", 10.0), ("b", 10.0)]);
    let cells = vec![
        cell("a", "2026-07", 1000.0, 10.0, 1.0),
        cell("a", "2026-08", 1000.0, 5.0, 0.5),
        cell("b", "2026-07", 1000.0, 10.0, 1.0),
        cell("b", "2026-08", 1000.0, 5.0, 0.5),
    ];
    let completion: BTreeMap<String, f64> = [("2026-08".to_string(), 2.0)].into();
    let blend = blend(&b, &cells, &completion, &BTreeMap::new(), 1.0);
    // Completed, every month is A/E 1: no spread within or between, hence no credibility.
    let a = &blend.groups[0];
    assert_eq!(a.admissions.ultimate, 20.0);
    assert_eq!(a.ultimate, 20_000.0 + 10_000.0);
    assert_eq!(a.admissions.observed_ae, Some(1.0));
    assert_eq!(a.drug.observed_ae, Some(1.0));
    // The immature month weighs what it has seen: 10 + 5 expected admissions reported.
    assert_eq!(a.admissions.weight, 15.0);
    assert_eq!(blend.admissions.within_variance, 0.0);
    assert_eq!(a.admissions.z, 0.0);
    assert_eq!(a.admissions.blended_ae, 1.0);
}

#[test]
fn without_repeated_months_there_is_no_credibility_and_it_says_why() {
    let b = basis(&[("a", 10.0)]);
    let blend = blend(
        &b,
        &[cell("a", "2026-07", 1000.0, 30.0, 3.0)],
        &BTreeMap::new(),
        &BTreeMap::new(),
        1.0,
    );
    assert!(blend.admissions.note.is_some() && blend.drug.note.is_some());
    assert_eq!(blend.groups[0].admissions.z, 0.0);
    assert_eq!(blend.groups[0].admissions.blended_ae, 1.0);
    assert_eq!(blend.groups[0].drug.blended_ae, 1.0);
}

const BASIS: &str = r#"
name = "small basis"
seed = 11
simulations = 2000
[benefits.inpatient]
deductible = 20000
coinsurance = 0.7
coinsurance_preexisting = 0.5
annual_limit = 1500000
[benefits.specialty_drug]
deductible = 0
coinsurance = 0.7
coinsurance_preexisting = 0.3
annual_limit = 3000000
[population]
table = "morbidity_default.csv"
size = 200_000
drug_cost_cv = 0.8
take_up = 0.25
[pricing]
expense_ratio = 0.10
cost_of_capital = 0.06
risk_measure = "tvar"
level = 0.995
target_loss_ratio = 0.85
[[risk_factors]]
id = "morbidity"
applies_to = ["inpatient.frequency", "specialty_drug.need_rate"]
distribution = { distribution = "gamma", mean = 1.0, cv = 0.10 }
"#;

#[test]
fn the_written_scenario_loads_prices_and_carries_the_blend_into_its_table() {
    use crate::table::{BuiltinTables, DEFAULT_TABLE_CSV, ResolvedTable, parse_morbidity};
    let tree: toml::Value = toml::from_str(BASIS).unwrap();
    let scenario = Scenario::from_toml_str(BASIS, "basis.toml", &BuiltinTables).unwrap();
    let table = parse_morbidity(&ResolvedTable {
        name: "t".into(),
        text: DEFAULT_TABLE_CSV.into(),
    })
    .unwrap();
    let old = "75-84/M/standard";
    let young = "18-39/F/standard";
    let structure = BlendStructure {
        within_variance: 1.0,
        between_variance: 0.04,
        k: Some(25.0),
        note: None,
    };
    let benefit = |observed: f64, z: f64, blended: f64, se: f64| BenefitCredibility {
        expected: 1.0,
        ultimate: observed,
        expected_payout: 100.0,
        weight: 1.0,
        observed_ae: Some(observed),
        z,
        blended_ae: blended,
        blended_ae_se: se,
    };
    let blend = Blend {
        admissions: structure.clone(),
        drug: structure,
        groups: vec![
            GroupCredibility {
                group: old.into(),
                members: 400,
                next_members: 360,
                member_years: 200.0,
                expected: 200.0,
                ultimate: 240.0,
                admissions: benefit(1.4, 0.5, 1.2, 0.1),
                drug: benefit(0.8, 0.5, 0.9, 0.1),
            },
            GroupCredibility {
                group: young.into(),
                members: 2000,
                next_members: 1500,
                member_years: 1000.0,
                expected: 200.0,
                ultimate: 200.0,
                admissions: benefit(1.0, 0.9, 1.0, 0.06),
                drug: benefit(1.0, 0.9, 1.0, 0.06),
            },
        ],
    };
    let assumptions = Assumptions {
        renewal_rate: 0.9,
        trend: 0.05,
        margin: 0.0,
    };
    let b = RenewalBasis {
        tree: &tree,
        basis: &scenario,
        table: &table,
        name: "renewal",
        table_file: "renewal.csv",
    };
    let (written, steps) = price_renewal(&b, &blend, &assumptions).unwrap();
    // The table: the old group's admissions x 1.2 and drug need x 0.9, every cost x 1.05.
    let rows = parse_morbidity(&ResolvedTable {
        name: "renewal.csv".into(),
        text: written.table_csv.clone(),
    })
    .unwrap();
    for (new, was) in rows.iter().zip(&table) {
        let (a, d) = if new.id() == old {
            (1.2, 0.9)
        } else {
            (1.0, 1.0)
        };
        assert!(
            (new.annual_hospitalization_rate - a * was.annual_hospitalization_rate).abs() < 1e-12
        );
        assert!((new.targeted_drug_need_rate - d * was.targeted_drug_need_rate).abs() < 1e-12);
        assert!(
            (new.mean_oop_cost_per_admission - 1.05 * was.mean_oop_cost_per_admission).abs() < 1e-9
        );
    }
    // The scenario: next year's members, the estimates' uncertainty as a factor.
    assert!(written.toml.contains("credibility"), "{}", written.toml);
    let resolver = |csv: String| {
        move |name: &str| -> Result<ResolvedTable, crate::table::TableError> {
            assert_eq!(name, "renewal.csv");
            Ok(ResolvedTable {
                name: name.into(),
                text: csv.clone(),
            })
        }
    };
    struct R<F>(F);
    impl<F: Fn(&str) -> Result<ResolvedTable, crate::table::TableError>> crate::TableResolver for R<F> {
        fn resolve(&self, t: &str) -> Result<ResolvedTable, crate::table::TableError> {
            (self.0)(t)
        }
    }
    let renewal = Scenario::from_toml_str(
        &written.toml,
        "renewal.toml",
        &R(resolver(written.table_csv)),
    )
    .unwrap();
    let members: BTreeMap<&str, u64> = renewal
        .groups()
        .iter()
        .map(|g| (g.id.as_str(), g.members))
        .collect();
    assert_eq!(members[old], 360);
    assert_eq!(members[young], 1500);
    assert_eq!(members.values().sum::<u64>(), 1860);
    // More morbidity among the old costs more; trend costs more.
    assert!(steps.experience > steps.basis, "{steps:?}");
    assert!(steps.trended > steps.next_pool, "{steps:?}");
    // The uncertainty adds variance, so it cannot lower the premium beyond the simulation's
    // own error (4 standard errors).
    assert!(steps.with_uncertainty_se > 0.0, "{steps:?}");
    assert!(
        steps.with_uncertainty > steps.trended - 4.0 * steps.with_uncertainty_se,
        "{steps:?}"
    );
}
