//! The renewal scenario: the basis scenario's own file with next year's morbidity table,
//! enrolment and risk factors, written as TOML and CSV, and the premiums of the steps from
//! the basis to it (each priced by `crate::price` on the scenario text itself, so the file
//! written is the one priced).

use std::collections::BTreeMap;

use toml::Value;

use super::{Assumptions, Blend, StepPremiums};
use crate::table::{COLUMNS, MorbidityRow, ResolvedTable, TableError, TableResolver};
use crate::{RunOptions, Scenario, price};

/// A written renewal scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct RenewalScenario {
    pub toml: String,
    pub table_csv: String,
}

/// Resolves the one table a renewal scenario names, from memory.
struct OwnTable<'a> {
    name: &'a str,
    csv: &'a str,
}

impl TableResolver for OwnTable<'_> {
    fn resolve(&self, table: &str) -> Result<ResolvedTable, TableError> {
        if table == self.name {
            Ok(ResolvedTable {
                name: table.to_string(),
                text: self.csv.to_string(),
            })
        } else {
            Err(TableError::NotAllowed(table.to_string()))
        }
    }
}

/// What a step changes from the basis.
#[derive(Debug, Clone, Copy)]
struct Step {
    experience: bool,
    next_pool: bool,
    trend: bool,
    uncertainty: bool,
}

/// The pieces a renewal is built from.
pub struct RenewalBasis<'a> {
    /// The basis scenario file as a value tree (it must use `[population]`).
    pub tree: &'a Value,
    pub basis: &'a Scenario,
    pub table: &'a [MorbidityRow],
    pub name: &'a str,
    /// File name of the table written next to the scenario.
    pub table_file: &'a str,
}

fn number(x: f64) -> Value {
    Value::Float(x)
}

fn table_csv(rows: &[MorbidityRow]) -> String {
    let mut out = COLUMNS.join(",");
    out.push('\n');
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\n",
            r.age_band,
            r.sex,
            if r.preexisting {
                "preexisting"
            } else {
                "standard"
            },
            r.population_share,
            r.annual_hospitalization_rate,
            r.mean_oop_cost_per_admission,
            r.cv_cost,
            r.targeted_drug_need_rate,
            r.mean_annual_drug_cost,
        ));
    }
    out
}

/// The scenario of one step.
fn build(
    b: &RenewalBasis<'_>,
    blend: &Blend,
    assumptions: &Assumptions,
    step: Step,
) -> Result<RenewalScenario, String> {
    let by_group: BTreeMap<&str, &super::GroupCredibility> =
        blend.groups.iter().map(|g| (g.group.as_str(), g)).collect();
    let growth = 1.0 + assumptions.trend;
    let rows: Vec<MorbidityRow> = b
        .table
        .iter()
        .map(|row| {
            let mut r = row.clone();
            if step.experience
                && let Some(g) = by_group.get(row.id().as_str())
            {
                r.annual_hospitalization_rate *= g.admissions.blended_ae;
                r.targeted_drug_need_rate =
                    (r.targeted_drug_need_rate * g.drug.blended_ae).min(1.0);
            }
            if step.trend {
                r.mean_oop_cost_per_admission *= growth;
                r.mean_annual_drug_cost *= growth;
            }
            r
        })
        .collect();
    let mut tree = b.tree.clone();
    let root = tree
        .as_table_mut()
        .ok_or("the basis scenario is not a table")?;
    for key in ["product", "sweep", "adverse_selection", "benefits"] {
        root.remove(key);
    }
    root.insert("name".into(), Value::String(b.name.to_string()));
    root.insert("benefits".into(), benefits(b.basis));
    let population = root
        .get_mut("population")
        .and_then(Value::as_table_mut)
        .ok_or("the renewal needs a basis with a [population] table")?;
    population.remove("elasticity");
    population.insert("table".into(), Value::String(b.table_file.to_string()));
    let size = population
        .get("size")
        .and_then(|v| v.as_float().or(v.as_integer().map(|i| i as f64)))
        .ok_or("population.size missing")?;
    let mut take_up = toml::map::Map::new();
    take_up.insert("default".into(), number(0.0));
    // The portfolio's parameter uncertainty: sum of (E x se)^2 and sum of E x blended over
    // groups and benefits, E the group's expected payout of the benefit next year on the basis.
    let (mut variance, mut mean) = (0.0, 0.0);
    for row in b.table {
        let id = row.id();
        let eligible = size * row.population_share;
        let members = by_group.get(id.as_str()).map_or(0, |g| {
            if step.next_pool {
                g.next_members
            } else {
                g.members
            }
        });
        if members > 0 && eligible > 0.0 {
            take_up.insert(id.clone(), number((members as f64 / eligible).min(1.0)));
        }
        if step.uncertainty
            && let Some(g) = by_group.get(id.as_str())
            && members > 0
            && g.member_years > 0.0
        {
            for b in [&g.admissions, &g.drug] {
                let expected = b.expected_payout / g.member_years * members as f64;
                variance += (expected * b.blended_ae_se).powi(2);
                mean += expected * b.blended_ae;
            }
        }
    }
    population.insert("take_up".into(), Value::Table(take_up));
    if mean > 0.0 && variance.sqrt() / mean > 1e-6 {
        let list = root
            .entry("risk_factors")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = list {
            add_uncertainty(list, (variance.sqrt() / mean).min(2.0));
        }
    }
    let toml = toml::to_string(&tree).map_err(|e| e.to_string())?;
    Ok(RenewalScenario {
        toml,
        table_csv: table_csv(&rows),
    })
}

const FREQUENCIES: [&str; 2] = ["inpatient.frequency", "specialty_drug.need_rate"];

/// Adds the parameter uncertainty of the credibility estimates to the risk factors, as a
/// factor on every group's frequencies with coefficient of variation `cv`:
/// cv^2 = sum (E_gb se_gb)^2 / (sum E_gb blended_gb)^2 over groups g and benefits b, E_gb the
/// group's expected payout of the benefit next year on the basis, which gives the portfolio's expected payout the variance its independent group
/// estimates give it (a thin group's larger se weighs in). One factor per group would be up to
/// 28, and a grid of so many factors' nodes cannot be priced; so the uncertainty is folded
/// into the basis's factor on every group's frequencies when it has one (independent factors
/// multiply: the product's cv^2 is (1 + a^2)(1 + b^2) - 1, matched by a factor of the basis's
/// family, exact for lognormals), and added as a gamma factor otherwise.
fn add_uncertainty(factors: &mut Vec<Value>, cv: f64) {
    let on_every_frequency = |f: &Value| {
        let targets: Vec<&str> = f
            .get("applies_to")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let all_groups = f
            .get("groups")
            .and_then(Value::as_array)
            .is_none_or(|g| g.len() == 1 && g[0].as_str() == Some("*"));
        all_groups && targets.len() == 2 && FREQUENCIES.iter().all(|t| targets.contains(t))
    };
    if let Some(Value::Table(factor)) = factors.iter_mut().find(|f| on_every_frequency(f))
        && let Some(Value::Table(d)) = factor.get_mut("distribution")
        && let Some(a) = d
            .get("cv")
            .and_then(|v| v.as_float().or(v.as_integer().map(|i| i as f64)))
    {
        let combined = ((1.0 + a * a) * (1.0 + cv * cv) - 1.0).sqrt();
        d.insert("cv".into(), number(combined));
        let id = factor
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("frequency")
            .to_string();
        factor.insert("id".into(), Value::String(format!("{id} and credibility")));
        return;
    }
    let mut f = toml::map::Map::new();
    f.insert("id".into(), Value::String("credibility".into()));
    f.insert(
        "applies_to".into(),
        Value::Array(
            FREQUENCIES
                .iter()
                .map(|t| Value::String((*t).into()))
                .collect(),
        ),
    );
    let mut d = toml::map::Map::new();
    d.insert("distribution".into(), Value::String("gamma".into()));
    d.insert("mean".into(), number(1.0));
    d.insert("cv".into(), number(cv));
    f.insert("distribution".into(), Value::Table(d));
    factors.push(Value::Table(f));
}

/// The basis's benefit terms written out (a product file it took them from is not next year's).
fn benefits(basis: &Scenario) -> Value {
    let mut out = toml::map::Map::new();
    for (key, terms) in [
        ("inpatient", basis.benefits().inpatient.as_ref()),
        ("specialty_drug", basis.benefits().specialty_drug.as_ref()),
    ] {
        if let Some(t) = terms {
            let mut m = toml::map::Map::new();
            m.insert("deductible".into(), number(t.deductible));
            m.insert("coinsurance".into(), number(t.coinsurance));
            m.insert(
                "coinsurance_preexisting".into(),
                number(t.coinsurance_preexisting),
            );
            m.insert("annual_limit".into(), number(t.annual_limit));
            out.insert(key.into(), Value::Table(m));
        }
    }
    Value::Table(out)
}

/// The flat premium and its Monte Carlo standard error (0 when priced exactly).
fn flat_premium(s: &RenewalScenario, table_file: &str) -> Result<(f64, f64), String> {
    let resolver = OwnTable {
        name: table_file,
        csv: &s.table_csv,
    };
    let scenario = Scenario::from_toml_str(&s.toml, "renewal scenario", &resolver)
        .map_err(|e| e.to_string())?;
    let results = price(&scenario, &RunOptions::default()).map_err(|e| e.to_string())?;
    Ok((
        results.premium.flat_premium_per_member,
        results.premium.flat_premium_per_member_se,
    ))
}

/// Writes the renewal scenario and prices the steps to it.
pub fn price_renewal(
    b: &RenewalBasis<'_>,
    blend: &Blend,
    assumptions: &Assumptions,
) -> Result<(RenewalScenario, StepPremiums), String> {
    let step = |experience, next_pool, trend, uncertainty| Step {
        experience,
        next_pool,
        trend,
        uncertainty,
    };
    let priced = |s: Step| -> Result<(RenewalScenario, (f64, f64)), String> {
        let written = build(b, blend, assumptions, s)?;
        let premium = flat_premium(&written, b.table_file)?;
        Ok((written, premium))
    };
    let (_, (basis, _)) = priced(step(false, false, false, false))?;
    let (_, (experience, _)) = priced(step(true, false, false, false))?;
    let (_, (next_pool, _)) = priced(step(true, true, false, false))?;
    let (_, (trended, _)) = priced(step(true, true, true, false))?;
    let (written, (with_uncertainty, with_uncertainty_se)) = priced(step(true, true, true, true))?;
    Ok((
        written,
        StepPremiums {
            basis,
            experience,
            next_pool,
            trended,
            with_uncertainty,
            with_uncertainty_se,
        },
    ))
}
