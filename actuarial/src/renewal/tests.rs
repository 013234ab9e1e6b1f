use std::collections::BTreeMap;

use super::*;
use crate::Scenario;
use crate::experience::Expected;

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
                    },
                );
                (id.to_string(), (1000.0, by))
            })
            .collect(),
    }
}

fn cell(group: &str, month: &str, member_years: f64, paid: f64) -> MonthCell {
    MonthCell {
        group: group.into(),
        month: month.into(),
        member_years,
        paid,
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

/// Two groups over three months, by hand: group `a` costs what the basis expects (A/E 1 every
/// month), group `b` 1.5 to 2.5 times it. Weights are the expected amounts.
///
/// a: X = 1, 1, 1 with w = 100 each: mean 1, within SS 0.
/// b: X = 1.5, 2.0, 2.5 with w = 100 each: mean 2, within SS 100 (0.25 + 0 + 0.25) = 50.
/// sigma^2 = 50 / (2 + 2) = 12.5.
/// w = 600, weighted mean 1.5, spread 300 x 0.25 x 2 = 150, c = 600 - (300^2 x 2) / 600 = 300,
/// tau^2 = (150 - 12.5) / 300 = 0.458333...; k = 12.5 / tau^2 = 27.2727...;
/// Z = 300 / 327.2727 = 0.916667 for both; b's blend 1 + Z x 1 = 1.916667, a's 1.
#[test]
fn the_blend_moves_a_costlier_group_towards_its_experience_by_z() {
    let b = basis(&[("a", 10.0), ("b", 10.0)]);
    let mut cells = Vec::new();
    for (m, x) in [("2026-07", 1.5), ("2026-08", 2.0), ("2026-09", 2.5)] {
        cells.push(cell("a", m, 10.0, 100.0));
        cells.push(cell("b", m, 10.0, 100.0 * x));
    }
    let members: BTreeMap<String, u64> = [("a".to_string(), 120), ("b".to_string(), 40)].into();
    let blend = blend(&b, &cells, &BTreeMap::new(), &members, 0.9);
    let tau2 = 137.5 / 300.0;
    assert!((blend.within_variance - 12.5).abs() < 1e-12);
    assert!((blend.between_variance - tau2).abs() < 1e-12);
    let z = 300.0 / (300.0 + 12.5 / tau2);
    let (a, bb) = (&blend.groups[0], &blend.groups[1]);
    assert!((a.z - z).abs() < 1e-12 && (bb.z - z).abs() < 1e-12);
    assert!((a.blended_ae - 1.0).abs() < 1e-12);
    assert!((bb.blended_ae - (1.0 + z * (2.0 - 1.0))).abs() < 1e-12);
    assert!((bb.blended_ae_se - ((1.0 - z) * tau2).sqrt()).abs() < 1e-12);
    assert_eq!((a.next_members, bb.next_members), (108, 36));
    assert_eq!(bb.observed_ae, Some(2.0));
}

#[test]
fn completion_factors_raise_the_ultimate_of_immature_months() {
    let b = basis(&[("a", 10.0), ("b", 10.0)]);
    let cells = vec![
        cell("a", "2026-07", 10.0, 100.0),
        cell("a", "2026-08", 10.0, 50.0),
        cell("b", "2026-07", 10.0, 100.0),
        cell("b", "2026-08", 10.0, 50.0),
    ];
    let completion: BTreeMap<String, f64> = [("2026-08".to_string(), 2.0)].into();
    let blend = blend(&b, &cells, &completion, &BTreeMap::new(), 1.0);
    // Completed, every month is A/E 1: no spread within or between, hence no credibility.
    assert_eq!(blend.groups[0].ultimate, 200.0);
    assert_eq!(blend.groups[0].observed_ae, Some(1.0));
    assert_eq!(blend.within_variance, 0.0);
    assert_eq!(blend.groups[0].z, 0.0);
    assert_eq!(blend.groups[0].blended_ae, 1.0);
}

#[test]
fn without_repeated_months_there_is_no_credibility_and_it_says_why() {
    let b = basis(&[("a", 10.0)]);
    let blend = blend(
        &b,
        &[cell("a", "2026-07", 10.0, 300.0)],
        &BTreeMap::new(),
        &BTreeMap::new(),
        1.0,
    );
    assert!(blend.note.is_some());
    assert_eq!(blend.groups[0].z, 0.0);
    assert_eq!(blend.groups[0].blended_ae, 1.0);
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
    let blend = Blend {
        within_variance: 1.0,
        between_variance: 0.04,
        k: Some(25.0),
        note: None,
        groups: vec![
            GroupCredibility {
                group: old.into(),
                members: 400,
                next_members: 360,
                member_years: 200.0,
                expected: 1.0,
                ultimate: 1.0,
                observed_ae: Some(1.4),
                z: 0.5,
                blended_ae: 1.2,
                blended_ae_se: 0.1,
            },
            GroupCredibility {
                group: young.into(),
                members: 2000,
                next_members: 1500,
                member_years: 1000.0,
                expected: 1.0,
                ultimate: 1.0,
                observed_ae: Some(1.0),
                z: 0.9,
                blended_ae: 1.0,
                blended_ae_se: 0.06,
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
    // The table: the old group's frequencies x 1.2, every cost x 1.05.
    let rows = parse_morbidity(&ResolvedTable {
        name: "renewal.csv".into(),
        text: written.table_csv.clone(),
    })
    .unwrap();
    for (new, was) in rows.iter().zip(&table) {
        let c = if new.id() == old { 1.2 } else { 1.0 };
        assert!(
            (new.annual_hospitalization_rate - c * was.annual_hospitalization_rate).abs() < 1e-12
        );
        assert!((new.targeted_drug_need_rate - c * was.targeted_drug_need_rate).abs() < 1e-12);
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
