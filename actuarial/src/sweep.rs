//! The sweep: the scenario re-priced at every combination of the swept terms and enrolment.

use crate::adverse;
use crate::engine::{Cancellation, PricingError, RunOptions, distribution, summarise};
use crate::model::{FactorModels, GroupModel};
use crate::results::{SweepResult, SweepRow};
use crate::scenario::{Benefit, Scenario, ScenarioError, SweepKey, SweepSpec, TermKind};

/// The scenario at one sweep point: term values replace the scenario's and the groups' own;
/// `take_up_scale` scales the enrolment through the premium with the selection the groups'
/// elasticities imply ([`adverse::scale_enrolment`]; alike in every group, capped at its
/// eligible population, when no group responds). Built through [`Scenario::new`], so a point is
/// validated like a parsed scenario.
pub fn sweep_point(
    scenario: &Scenario,
    spec: &SweepSpec,
    values: &[f64],
) -> Result<Scenario, ScenarioError> {
    sweep_point_with_ratio(scenario, spec, values).map(|(s, _)| s)
}

/// [`sweep_point`] and, when enrolment is scaled through the premium, the premium relative to
/// the scenario's at which the point's enrolment forms.
fn sweep_point_with_ratio(
    scenario: &Scenario,
    spec: &SweepSpec,
    values: &[f64],
) -> Result<(Scenario, Option<f64>), ScenarioError> {
    let mut premium_ratio = None;
    let source = format!("{} (sweep point {values:?})", scenario.name());
    let mut parts = scenario.to_parts();
    parts.sweep = None;
    parts.adverse_selection = None;
    parts.simulations = spec.simulations;
    for (axis, &x) in spec.axes.iter().zip(values) {
        match axis.key {
            SweepKey::Term(b, kind) => {
                if let Some(t) = parts.benefits.get_mut(b) {
                    match kind {
                        TermKind::Deductible => t.deductible = x,
                        TermKind::Coinsurance => t.coinsurance = x,
                        TermKind::CoinsurancePreexisting => t.coinsurance_preexisting = x,
                        TermKind::AnnualLimit => t.annual_limit = x,
                    }
                }
                for g in &mut parts.groups {
                    let o = match b {
                        Benefit::Inpatient => g.inpatient.as_mut().map(|r| &mut r.overrides),
                        Benefit::SpecialtyDrug => {
                            g.specialty_drug.as_mut().map(|r| &mut r.overrides)
                        }
                    };
                    if let Some(o) = o {
                        match kind {
                            TermKind::Deductible => o.deductible = None,
                            TermKind::Coinsurance => o.coinsurance = None,
                            TermKind::CoinsurancePreexisting => o.coinsurance_preexisting = None,
                            TermKind::AnnualLimit => o.annual_limit = None,
                        }
                    }
                }
            }
            SweepKey::TakeUpScale => {
                let pool: Vec<(f64, f64, f64)> = parts
                    .groups
                    .iter()
                    .map(|g| (g.eligible, g.base_take_up, g.elasticity))
                    .collect();
                let (members, ratio) = adverse::scale_enrolment(&pool, x).map_err(|message| {
                    ScenarioError::Invalid {
                        source_name: source.clone(),
                        key: "sweep.take_up_scale".into(),
                        message: format!("take_up_scale = {x}: {message}"),
                    }
                })?;
                for (g, m) in parts.groups.iter_mut().zip(members) {
                    let scaled = m.round().min(g.eligible.floor().max(g.members as f64));
                    g.members = scaled.max(0.0) as u64;
                }
                premium_ratio = ratio;
            }
        }
    }
    Scenario::new(parts, &source).map(|s| (s, premium_ratio))
}

/// All combinations, first axis slowest.
pub fn sweep_combinations(spec: &SweepSpec) -> Vec<Vec<f64>> {
    let mut rows: Vec<Vec<f64>> = vec![Vec::new()];
    for axis in &spec.axes {
        rows = rows
            .into_iter()
            .flat_map(|r| {
                axis.values.iter().map(move |&v| {
                    let mut r = r.clone();
                    r.push(v);
                    r
                })
            })
            .collect();
    }
    rows
}

/// The models of `models` with the enrolment of `s` (the distributions depend only on the
/// terms, and are shared).
pub(crate) fn with_members(models: &FactorModels, s: &Scenario) -> FactorModels {
    let rows = models
        .models
        .iter()
        .map(|ms| {
            ms.iter()
                .zip(s.groups())
                .map(|(m, g)| {
                    GroupModel::new(g.members, m.inpatient.clone(), m.specialty_drug.clone())
                })
                .collect()
        })
        .collect();
    FactorModels {
        grid: models.grid.clone(),
        models: rows,
    }
}

/// The swept values other than enrolment, bit for bit: rows with the same key share their
/// member-level distributions.
fn term_key(spec: &SweepSpec, values: &[f64]) -> Vec<u64> {
    spec.axes
        .iter()
        .zip(values)
        .filter(|(a, _)| a.key != SweepKey::TakeUpScale)
        .map(|(_, v)| v.to_bits())
        .collect()
}

pub(crate) fn run(
    scenario: &Scenario,
    spec: &SweepSpec,
    options: &RunOptions<'_>,
) -> Result<SweepResult, PricingError> {
    let mut rows = Vec::new();
    // take_up_scale is the last axis, so consecutive rows often differ only in enrolment: the
    // member-level distributions of the previous row are then reused.
    let mut previous: Option<(Vec<u64>, FactorModels)> = None;
    for (row, values) in sweep_combinations(spec).into_iter().enumerate() {
        Cancellation::check(options.cancel)?;
        let (s, premium_ratio) = sweep_point_with_ratio(scenario, spec, &values)
            .map_err(|source| PricingError::SweepPoint { row, source })?;
        let key = term_key(spec, &values);
        let models = match previous.take() {
            Some((k, models)) if k == key => with_members(&models, &s),
            _ => FactorModels::build(&s, options.cancel)?,
        };
        // The same seed and streams at every point: common random numbers make differences
        // between rows much less noisy than the rows themselves.
        let run = distribution(&s, &models, options)?;
        let c = summarise(&s, &run);
        let t = c.pricing_tail;
        rows.push(SweepRow {
            values,
            members: s.total_members(),
            expected_payout: c.premium.expected_payout,
            expected_payout_se: c.premium.expected_payout_se,
            flat_premium_per_member: c.premium.flat_premium_per_member,
            flat_premium_per_member_se: c.premium.flat_premium_per_member_se,
            expected_loss_ratio: c.premium.expected_loss_ratio,
            var: t.var,
            var_se: t.var_se,
            tvar: t.tvar,
            tvar_se: t.tvar_se,
            prob_loss_ratio_above_100: c.premium.prob_loss_ratio_above_100,
            enrolment_premium_ratio: premium_ratio,
        });
        previous = Some((key, models));
    }
    Ok(SweepResult {
        simulations: spec.simulations,
        level: scenario.pricing().level,
        keys: spec.axes.iter().map(|a| a.key.name()).collect(),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::SweepAxis;
    use crate::table::NoTables;

    const BASE: &str = r#"
name = "sweep point"
seed = 1
simulations = 1000
[benefits.inpatient]
deductible = 20000
coinsurance = 0.8
annual_limit = 1000000
[[groups]]
id = "g"
members = 1000
take_up = 0.5
inpatient.frequency = { distribution = "poisson", mean = 0.1 }
inpatient.severity = { distribution = "lognormal", mean = 5000, cv = 1.5 }
inpatient.deductible = 10000
[pricing]
expense_ratio = 0.1
cost_of_capital = 0.06
risk_measure = "tvar"
level = 0.99
"#;

    fn spec(key: SweepKey, values: Vec<f64>) -> SweepSpec {
        SweepSpec {
            simulations: 1000,
            axes: vec![SweepAxis { key, values }],
        }
    }

    #[test]
    fn a_sweep_point_is_validated_like_a_scenario() {
        let s = Scenario::from_toml_str(BASE, "t.toml", &NoTables).unwrap();
        let coinsurance = SweepKey::Term(Benefit::Inpatient, TermKind::Coinsurance);
        let bad = spec(coinsurance, vec![1.5]);
        let e = sweep_point(&s, &bad, &[1.5]).unwrap_err();
        assert_eq!(e.key(), Some("benefits.inpatient.coinsurance"), "{e}");
        // A valid point replaces the scenario's term and clears the group's own.
        let deductible = SweepKey::Term(Benefit::Inpatient, TermKind::Deductible);
        let p = sweep_point(&s, &spec(deductible, vec![5000.0]), &[5000.0]).unwrap();
        assert_eq!(p.benefits().inpatient.unwrap().deductible, 5000.0);
        assert_eq!(p.groups()[0].inpatient.unwrap().overrides.deductible, None);
        // Enrolment scales up to the eligible population and no further.
        let p = sweep_point(&s, &spec(SweepKey::TakeUpScale, vec![3.0]), &[3.0]).unwrap();
        assert_eq!(p.groups()[0].members, 2000);
    }
}
