//! `[population]`: the groups of a morbidity table, with the distributions it asks for.

use super::*;
use crate::dist::{Frequency, Severity};
use crate::table::{MorbidityRow, TableError, parse_morbidity};

/// How `[population]` turns table rows into distributions.
struct PopulationModel {
    gamma_severity: bool,
    /// Variance / mean of the admission count, when negative binomial.
    dispersion: Option<f64>,
    drug_cost_cv: Option<f64>,
}

impl PopulationModel {
    fn severity(&self, mean: f64, cv: f64) -> Result<Severity, DistError> {
        if self.gamma_severity {
            Severity::gamma(mean, cv)
        } else {
            Severity::lognormal(mean, cv)
        }
    }

    /// The inpatient risk of a table row, and its drug risk when the drug benefit is priced.
    fn risks(&self, row: &MorbidityRow) -> Result<(InpatientRisk, Option<DrugRisk>), DistError> {
        let rate = row.annual_hospitalization_rate;
        let frequency = match self.dispersion {
            Some(d) if rate > 0.0 => Frequency::negative_binomial(rate, rate * d),
            _ => Frequency::poisson(rate),
        }?;
        let inpatient = InpatientRisk {
            frequency,
            severity: self.severity(row.mean_oop_cost_per_admission, row.cv_cost)?,
            overrides: TermOverrides::default(),
        };
        let drug = match self.drug_cost_cv {
            Some(cv) => Some(DrugRisk {
                need_rate: row.targeted_drug_need_rate,
                cost: self.severity(row.mean_annual_drug_cost, cv)?,
                overrides: TermOverrides::default(),
            }),
            None => None,
        };
        Ok((inpatient, drug))
    }
}

impl Parser<'_> {
    pub(super) fn population(
        &self,
        v: &Value,
        benefits: &Benefits,
        resolver: &dyn TableResolver,
    ) -> Result<Vec<Group>, ScenarioError> {
        let path = "population";
        let p = self.table(v, path)?;
        self.check_keys(
            p,
            path,
            &[
                "table",
                "size",
                "take_up",
                "elasticity",
                "drug_cost_cv",
                "inpatient_frequency",
                "inpatient_dispersion",
                "severity",
            ],
        )?;
        let table_name = self.string(self.req(p, path, "table")?, "population.table")?;
        let table_err = |e: TableError| self.err("population.table", e.to_string());
        let resolved = resolver.resolve(&table_name).map_err(table_err)?;
        let rows = parse_morbidity(&resolved).map_err(table_err)?;
        let size = self.req_f64(p, path, "size")?;
        self.in_range(
            "population.size",
            size,
            size > 0.0 && size <= 2e9,
            "in (0, 2e9]",
        )?;
        let ids: Vec<String> = rows.iter().map(|r| r.id()).collect();
        let take_up = self.per_group(
            p.get("take_up"),
            "population.take_up",
            &ids,
            None,
            &|k, x| self.in_range(k, x, (0.0..=1.0).contains(&x), "between 0 and 1"),
        )?;
        let elasticity = self.per_group(
            p.get("elasticity"),
            "population.elasticity",
            &ids,
            Some(0.0),
            &|k, x| self.in_range(k, x, (0.0..=20.0).contains(&x), "between 0 and 20"),
        )?;
        let model = self.population_model(p, benefits)?;
        let mut groups = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let gpath = format!("population.table row {} ({})", i + 1, ids[i]);
            let eligible = size * row.population_share;
            let members = (eligible * take_up[i]).round() as u64;
            let (inpatient, specialty_drug) =
                model.risks(row).map_err(|e| self.dist_err(&gpath, e))?;
            groups.push(Group {
                id: ids[i].clone(),
                members,
                preexisting: row.preexisting,
                eligible,
                base_take_up: take_up[i],
                elasticity: elasticity[i],
                inpatient: Some(inpatient),
                specialty_drug,
            });
        }
        Ok(groups)
    }

    /// The distribution choices of `[population]` that apply to every row.
    fn population_model(
        &self,
        p: &Map<String, Value>,
        benefits: &Benefits,
    ) -> Result<PopulationModel, ScenarioError> {
        let path = "population";
        let family = match p.get("severity") {
            None => "lognormal".to_string(),
            Some(v) => self.string(v, "population.severity")?,
        };
        if family != "lognormal" && family != "gamma" {
            return Err(self.err("population.severity", format!("unknown severity distribution `{family}` (the table gives mean and cv: lognormal or gamma)")));
        }
        let freq_kind = match p.get("inpatient_frequency") {
            None => "poisson".to_string(),
            Some(v) => self.string(v, "population.inpatient_frequency")?,
        };
        let dispersion = self.opt_f64(p, path, "inpatient_dispersion")?;
        match (freq_kind.as_str(), dispersion) {
            ("poisson", None) => {}
            ("poisson", Some(_)) => {
                return Err(self.err(
                    "population.inpatient_dispersion",
                    "only applies to inpatient_frequency = \"negative_binomial\"",
                ));
            }
            ("negative_binomial", Some(d)) => {
                self.in_range(
                    "population.inpatient_dispersion",
                    d,
                    d > 1.0,
                    "> 1 (variance / mean)",
                )?;
            }
            ("negative_binomial", None) => {
                return Err(self.err(
                    "population.inpatient_dispersion",
                    "missing: negative_binomial needs variance / mean",
                ));
            }
            (other, _) => {
                return Err(self.err("population.inpatient_frequency", format!("unknown frequency distribution `{other}` (expected poisson or negative_binomial)")));
            }
        }
        let drug_cv = if benefits.specialty_drug.is_some() {
            let cv = self.req_f64(p, path, "drug_cost_cv")?;
            Some(self.in_range("population.drug_cost_cv", cv, cv > 0.0, "> 0")?)
        } else {
            self.opt_f64(p, path, "drug_cost_cv")?
        };
        Ok(PopulationModel {
            gamma_severity: family == "gamma",
            dispersion,
            drug_cost_cv: drug_cv,
        })
    }
}
