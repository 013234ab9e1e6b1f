//! Parsing a scenario's value tree into the validated model, with every error naming the file,
//! the full key path and what is wrong.

use serde_json::{Map, Value};

use super::*;
use crate::dist::{DistError, Frequency, Severity};
use crate::factors::{FactorFamily, FactorTarget, RiskFactor};
use crate::table::{MorbidityRow, TableError, TableResolver, parse_morbidity};

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

pub(super) struct Parser<'a> {
    pub(super) source_name: &'a str,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing (or a non-finite number)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

impl Parser<'_> {
    fn err(&self, key: &str, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            source_name: self.source_name.to_string(),
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn dist_err(&self, key: &str, e: DistError) -> ScenarioError {
        self.err(key, e.to_string())
    }

    fn table<'v>(&self, v: &'v Value, path: &str) -> Result<&'v Map<String, Value>, ScenarioError> {
        v.as_object()
            .ok_or_else(|| self.err(path, format!("expected a table, found {}", type_name(v))))
    }

    fn check_keys(
        &self,
        map: &Map<String, Value>,
        path: &str,
        allowed: &[&str],
    ) -> Result<(), ScenarioError> {
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                return Err(self.err(
                    &join(path, key),
                    format!("unknown key (expected one of: {})", allowed.join(", ")),
                ));
            }
        }
        Ok(())
    }

    fn number(&self, v: &Value, path: &str) -> Result<f64, ScenarioError> {
        match v.as_f64() {
            Some(x) if x.is_finite() => Ok(x),
            _ => Err(self.err(path, format!("expected a number, found {}", type_name(v)))),
        }
    }

    fn req<'v>(
        &self,
        map: &'v Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Result<&'v Value, ScenarioError> {
        map.get(key)
            .ok_or_else(|| self.err(&join(path, key), "missing"))
    }

    fn req_f64(
        &self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Result<f64, ScenarioError> {
        self.number(self.req(map, path, key)?, &join(path, key))
    }

    fn opt_f64(
        &self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Result<Option<f64>, ScenarioError> {
        map.get(key)
            .map(|v| self.number(v, &join(path, key)))
            .transpose()
    }

    fn integer(&self, v: &Value, path: &str) -> Result<u64, ScenarioError> {
        if let Some(n) = v.as_u64() {
            return Ok(n);
        }
        // 1e5 in JSON arrives as a float; accept it when it is a whole number in range.
        match v.as_f64() {
            Some(x) if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x < 1.8e19 => Ok(x as u64),
            _ => Err(self.err(
                path,
                format!(
                    "expected a non-negative whole number, found {}",
                    describe(v)
                ),
            )),
        }
    }

    fn string(&self, v: &Value, path: &str) -> Result<String, ScenarioError> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| self.err(path, format!("expected a string, found {}", type_name(v))))
    }

    fn in_range(&self, path: &str, x: f64, ok: bool, bound: &str) -> Result<f64, ScenarioError> {
        check::in_range(x, ok, bound).map_err(|m| self.err(path, m))
    }

    pub(super) fn scenario(
        &self,
        tree: &Value,
        resolver: &dyn TableResolver,
    ) -> Result<Scenario, ScenarioError> {
        let root = self.table(tree, "(top level)")?;
        self.check_keys(
            root,
            "",
            &[
                "name",
                "seed",
                "simulations",
                "currency",
                "benefits",
                "groups",
                "population",
                "pricing",
                "adverse_selection",
                "sweep",
                "risk_factors",
                "method",
            ],
        )?;
        let name = self.string(self.req(root, "", "name")?, "name")?;
        if name.trim().is_empty() || name.len() > 200 {
            return Err(self.err("name", "must be 1 to 200 characters"));
        }
        let seed = self.integer(self.req(root, "", "seed")?, "seed")?;
        let simulations = self.integer(self.req(root, "", "simulations")?, "simulations")?;
        self.check_simulations(simulations, "simulations")?;
        let currency = match root.get("currency") {
            Some(v) => self.string(v, "currency")?,
            None => "CNY".to_string(),
        };
        if currency.is_empty()
            || currency.len() > 8
            || !currency.chars().all(|c| c.is_ascii_uppercase())
        {
            return Err(self.err("currency", "must be an ISO 4217 code such as CNY"));
        }

        let benefits = self.benefits(self.req(root, "", "benefits")?)?;
        if benefits.inpatient.is_none() && benefits.specialty_drug.is_none() {
            return Err(self.err(
                "benefits",
                "no benefit to price: give benefits.inpatient and/or benefits.specialty_drug",
            ));
        }
        let groups = match (root.get("groups"), root.get("population")) {
            (Some(g), None) => self.groups(g)?,
            (None, Some(p)) => self.population(p, &benefits, resolver)?,
            (Some(_), Some(_)) => {
                return Err(self.err(
                    "population",
                    "give either [[groups]] or [population], not both",
                ));
            }
            (None, None) => {
                return Err(self.err("groups", "missing: give [[groups]] or a [population] table"));
            }
        };
        if groups.iter().map(|g| g.members).sum::<u64>() == 0 {
            return Err(self.err("groups", "no members enrolled in any group"));
        }
        let pricing = self.pricing(self.req(root, "", "pricing")?, simulations)?;
        let adverse_selection = root
            .get("adverse_selection")
            .map(|v| self.adverse_selection(v))
            .transpose()?;
        let sweep = root
            .get("sweep")
            .map(|v| self.sweep(v, simulations, &benefits, &pricing))
            .transpose()?;
        let risk_factors = match root.get("risk_factors") {
            Some(v) => self.risk_factors(v, &groups)?,
            None => Vec::new(),
        };
        let method = match root.get("method") {
            None => Method::Auto,
            Some(v) => match self.string(v, "method")?.as_str() {
                "auto" => Method::Auto,
                "exact" => Method::Exact,
                "monte_carlo" => Method::MonteCarlo,
                other => {
                    return Err(self.err(
                        "method",
                        format!("unknown method `{other}` (expected \"exact\", \"monte_carlo\" or \"auto\")"),
                    ));
                }
            },
        };
        let parts = ScenarioParts {
            name,
            seed,
            simulations,
            currency,
            benefits,
            groups,
            pricing,
            adverse_selection,
            sweep,
            risk_factors,
            method,
        };
        Scenario::new(parts, self.source_name)
    }

    fn check_simulations(&self, n: u64, path: &str) -> Result<(), ScenarioError> {
        check::simulations(n).map_err(|m| self.err(path, m))
    }

    fn benefits(&self, v: &Value) -> Result<Benefits, ScenarioError> {
        let map = self.table(v, "benefits")?;
        self.check_keys(map, "benefits", &["inpatient", "specialty_drug"])?;
        let mut out = Benefits::default();
        for b in Benefit::ALL {
            if let Some(v) = map.get(b.key()) {
                let path = join("benefits", b.key());
                let t = self.table(v, &path)?;
                self.check_keys(
                    t,
                    &path,
                    &[
                        "deductible",
                        "coinsurance",
                        "coinsurance_preexisting",
                        "annual_limit",
                    ],
                )?;
                let deductible = self.req_f64(t, &path, "deductible")?;
                let coinsurance = self.req_f64(t, &path, "coinsurance")?;
                // The products all state a pre-existing rate; when a scenario leaves it
                // out, pre-existing members get the standard rate.
                let coinsurance_preexisting = self
                    .opt_f64(t, &path, "coinsurance_preexisting")?
                    .unwrap_or(coinsurance);
                let annual_limit = self.req_f64(t, &path, "annual_limit")?;
                let terms = BenefitTerms {
                    deductible,
                    coinsurance,
                    coinsurance_preexisting,
                    annual_limit,
                };
                self.check_terms(&path, &terms.as_overrides())?;
                match b {
                    Benefit::Inpatient => out.inpatient = Some(terms),
                    Benefit::SpecialtyDrug => out.specialty_drug = Some(terms),
                }
            }
        }
        Ok(out)
    }

    fn check_terms(&self, path: &str, t: &TermOverrides) -> Result<(), ScenarioError> {
        check::terms(t).map_err(|(key, m)| self.err(&join(path, key), m))
    }

    fn overrides(
        &self,
        map: &Map<String, Value>,
        path: &str,
    ) -> Result<TermOverrides, ScenarioError> {
        let o = TermOverrides {
            deductible: self.opt_f64(map, path, "deductible")?,
            coinsurance: self.opt_f64(map, path, "coinsurance")?,
            coinsurance_preexisting: self.opt_f64(map, path, "coinsurance_preexisting")?,
            annual_limit: self.opt_f64(map, path, "annual_limit")?,
        };
        self.check_terms(path, &o)?;
        Ok(o)
    }

    fn frequency(&self, v: &Value, path: &str) -> Result<Frequency, ScenarioError> {
        let map = self.table(v, path)?;
        let kind = self.string(
            self.req(map, path, "distribution")?,
            &join(path, "distribution"),
        )?;
        let r = match kind.as_str() {
            "poisson" => {
                self.check_keys(map, path, &["distribution", "mean"])?;
                Frequency::poisson(self.req_f64(map, path, "mean")?)
            }
            "negative_binomial" => {
                self.check_keys(map, path, &["distribution", "mean", "variance"])?;
                Frequency::negative_binomial(
                    self.req_f64(map, path, "mean")?,
                    self.req_f64(map, path, "variance")?,
                )
            }
            "bernoulli" => {
                self.check_keys(map, path, &["distribution", "p"])?;
                Frequency::bernoulli(self.req_f64(map, path, "p")?)
            }
            other => {
                return Err(self.err(
                    &join(path, "distribution"),
                    format!("unknown frequency distribution `{other}` (expected poisson, negative_binomial or bernoulli)"),
                ));
            }
        };
        r.map_err(|e| self.dist_err(path, e))
    }

    fn severity(&self, v: &Value, path: &str) -> Result<Severity, ScenarioError> {
        let map = self.table(v, path)?;
        let kind = self.string(
            self.req(map, path, "distribution")?,
            &join(path, "distribution"),
        )?;
        let r = match kind.as_str() {
            "lognormal" | "gamma" => {
                self.check_keys(map, path, &["distribution", "mean", "cv"])?;
                let mean = self.req_f64(map, path, "mean")?;
                let cv = self.req_f64(map, path, "cv")?;
                if kind == "lognormal" {
                    Severity::lognormal(mean, cv)
                } else {
                    Severity::gamma(mean, cv)
                }
            }
            "pareto" => {
                self.check_keys(map, path, &["distribution", "alpha", "theta"])?;
                Severity::pareto(
                    self.req_f64(map, path, "alpha")?,
                    self.req_f64(map, path, "theta")?,
                )
            }
            other => {
                return Err(self.err(
                    &join(path, "distribution"),
                    format!("unknown severity distribution `{other}` (expected lognormal, gamma or pareto)"),
                ));
            }
        };
        r.map_err(|e| self.dist_err(path, e))
    }

    fn groups(&self, v: &Value) -> Result<Vec<Group>, ScenarioError> {
        let list = v.as_array().ok_or_else(|| {
            self.err(
                "groups",
                format!(
                    "expected an array of tables ([[groups]]), found {}",
                    type_name(v)
                ),
            )
        })?;
        if list.is_empty() {
            return Err(self.err("groups", "is empty"));
        }
        if list.len() > MAX_GROUPS {
            return Err(self.err("groups", format!("more than {MAX_GROUPS} groups")));
        }
        let mut out: Vec<Group> = Vec::with_capacity(list.len());
        for (i, gv) in list.iter().enumerate() {
            let group = self.group(i, gv, &out)?;
            out.push(group);
        }
        Ok(out)
    }

    /// Group `i` of `[[groups]]`; `before` are the groups read so far (ids are unique).
    fn group(&self, i: usize, gv: &Value, before: &[Group]) -> Result<Group, ScenarioError> {
        let path = format!("groups[{i}]");
        let g = self.table(gv, &path)?;
        self.check_keys(
            g,
            &path,
            &[
                "id",
                "members",
                "preexisting",
                "take_up",
                "take_up_elasticity",
                "inpatient",
                "specialty_drug",
            ],
        )?;
        let id = self.string(self.req(g, &path, "id")?, &join(&path, "id"))?;
        if id.trim().is_empty() || id.len() > 200 {
            return Err(self.err(&join(&path, "id"), "must be 1 to 200 characters"));
        }
        if before.iter().any(|o| o.id == id) {
            return Err(self.err(&join(&path, "id"), format!("duplicate group id `{id}`")));
        }
        // Name the group in later messages: `groups[3] (65-74 F)`.
        let path = format!("groups[{i}] ({id})");
        let members = self.integer(self.req(g, &path, "members")?, &join(&path, "members"))?;
        if members > MAX_MEMBERS_PER_GROUP {
            return Err(self.err(
                &join(&path, "members"),
                format!("must be at most {MAX_MEMBERS_PER_GROUP}"),
            ));
        }
        let preexisting = match g.get("preexisting") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(self.err(
                    &join(&path, "preexisting"),
                    format!("expected true or false, found {}", type_name(other)),
                ));
            }
        };
        let take_up = self.opt_f64(g, &path, "take_up")?.unwrap_or(1.0);
        self.in_range(
            &join(&path, "take_up"),
            take_up,
            take_up > 0.0 && take_up <= 1.0,
            "in (0, 1]",
        )?;
        let elasticity = self.opt_f64(g, &path, "take_up_elasticity")?.unwrap_or(0.0);
        self.in_range(
            &join(&path, "take_up_elasticity"),
            elasticity,
            (0.0..=20.0).contains(&elasticity),
            "between 0 and 20",
        )?;

        let inpatient = g
            .get("inpatient")
            .map(|v| self.group_inpatient(v, &join(&path, "inpatient")))
            .transpose()?;
        let specialty_drug = g
            .get("specialty_drug")
            .map(|v| self.group_drug(v, &join(&path, "specialty_drug")))
            .transpose()?;
        // A missing risk for a priced benefit is reported by Scenario::new (check::group).
        Ok(Group {
            id,
            members,
            preexisting,
            eligible: members as f64 / take_up,
            base_take_up: take_up,
            elasticity,
            inpatient,
            specialty_drug,
        })
    }

    fn group_inpatient(&self, v: &Value, p: &str) -> Result<InpatientRisk, ScenarioError> {
        let t = self.table(v, p)?;
        self.check_keys(
            t,
            p,
            &[
                "frequency",
                "severity",
                "deductible",
                "coinsurance",
                "coinsurance_preexisting",
                "annual_limit",
            ],
        )?;
        Ok(InpatientRisk {
            frequency: self.frequency(self.req(t, p, "frequency")?, &join(p, "frequency"))?,
            severity: self.severity(self.req(t, p, "severity")?, &join(p, "severity"))?,
            overrides: self.overrides(t, p)?,
        })
    }

    fn group_drug(&self, v: &Value, p: &str) -> Result<DrugRisk, ScenarioError> {
        let t = self.table(v, p)?;
        self.check_keys(
            t,
            p,
            &[
                "need_rate",
                "cost",
                "deductible",
                "coinsurance",
                "coinsurance_preexisting",
                "annual_limit",
            ],
        )?;
        let need_rate = self.req_f64(t, p, "need_rate")?;
        self.in_range(
            &join(p, "need_rate"),
            need_rate,
            (0.0..=1.0).contains(&need_rate),
            "between 0 and 1",
        )?;
        Ok(DrugRisk {
            need_rate,
            cost: self.severity(self.req(t, p, "cost")?, &join(p, "cost"))?,
            overrides: self.overrides(t, p)?,
        })
    }

    /// A per-group number given as one default, or as a table with `default` and group
    /// selectors `age_band/sex/condition_group` (any part may be `*`). The most specific
    /// selector wins; equally specific selectors that disagree are an error.
    fn per_group(
        &self,
        v: Option<&Value>,
        path: &str,
        ids: &[String],
        fallback: Option<f64>,
        check: &dyn Fn(&str, f64) -> Result<f64, ScenarioError>,
    ) -> Result<Vec<f64>, ScenarioError> {
        let Some(v) = v else {
            return match fallback {
                Some(x) => Ok(vec![x; ids.len()]),
                None => Err(self.err(path, "missing")),
            };
        };
        if let Some(map) = v.as_object() {
            let default = map
                .get("default")
                .map(|d| {
                    self.number(d, &join(path, "default"))
                        .and_then(|x| check(&join(path, "default"), x))
                })
                .transpose()?
                .or(fallback);
            let mut selectors: Vec<(String, [String; 3], f64)> = Vec::new();
            for (key, val) in map {
                if key == "default" {
                    continue;
                }
                let kp = join(path, &format!("\"{key}\""));
                let parts: Vec<&str> = key.split('/').collect();
                if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
                    return Err(self.err(&kp, "a selector must be `default` or age_band/sex/condition_group, with * for any"));
                }
                let x = check(&kp, self.number(val, &kp)?)?;
                let sel = [
                    parts[0].to_string(),
                    parts[1].to_string(),
                    parts[2].to_string(),
                ];
                if !ids.iter().any(|id| selector_matches(&sel, id)) {
                    return Err(self.err(&kp, "matches no group of the table"));
                }
                selectors.push((key.clone(), sel, x));
            }
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let mut best: Option<(usize, &str, f64)> = None;
                for (key, sel, x) in &selectors {
                    if !selector_matches(sel, id) {
                        continue;
                    }
                    let spec = sel.iter().filter(|p| p.as_str() != "*").count();
                    match best {
                        Some((s, other, y)) if s == spec && y != *x => {
                            return Err(self.err(path, format!(
                                "selectors `{other}` and `{key}` both match group `{id}` with different values"
                            )));
                        }
                        Some((s, _, _)) if s >= spec => {}
                        _ => best = Some((spec, key, *x)),
                    }
                }
                match best.map(|b| b.2).or(default) {
                    Some(x) => out.push(x),
                    None => {
                        return Err(
                            self.err(path, format!("no value for group `{id}` and no default"))
                        );
                    }
                }
            }
            Ok(out)
        } else {
            let x = check(path, self.number(v, path)?)?;
            Ok(vec![x; ids.len()])
        }
    }

    fn population(
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

    fn pricing(&self, v: &Value, simulations: u64) -> Result<Pricing, ScenarioError> {
        let path = "pricing";
        let p = self.table(v, path)?;
        self.check_keys(
            p,
            path,
            &[
                "expense_ratio",
                "cost_of_capital",
                "risk_measure",
                "level",
                "target_loss_ratio",
            ],
        )?;
        let expense_ratio = self.req_f64(p, path, "expense_ratio")?;
        self.in_range(
            "pricing.expense_ratio",
            expense_ratio,
            (0.0..0.95).contains(&expense_ratio),
            "in [0, 0.95)",
        )?;
        let cost_of_capital = self.req_f64(p, path, "cost_of_capital")?;
        self.in_range(
            "pricing.cost_of_capital",
            cost_of_capital,
            (0.0..=1.0).contains(&cost_of_capital),
            "between 0 and 1",
        )?;
        let measure = self.string(self.req(p, path, "risk_measure")?, "pricing.risk_measure")?;
        let risk_measure = match measure.as_str() {
            "tvar" => RiskMeasure::Tvar,
            "var" => RiskMeasure::Var,
            other => {
                return Err(self.err(
                    "pricing.risk_measure",
                    format!("unknown risk measure `{other}` (expected \"tvar\" or \"var\")"),
                ));
            }
        };
        let level = self.req_f64(p, path, "level")?;
        self.in_range(
            "pricing.level",
            level,
            level > 0.5 && level < 1.0,
            "in (0.5, 1)",
        )?;
        check::tail(simulations, level).map_err(|m| self.err("pricing.level", m))?;
        let target_loss_ratio = self.opt_f64(p, path, "target_loss_ratio")?;
        if let Some(t) = target_loss_ratio {
            self.in_range(
                "pricing.target_loss_ratio",
                t,
                t > 0.0 && t <= 1.0,
                "in (0, 1]",
            )?;
        }
        Ok(Pricing {
            expense_ratio,
            cost_of_capital,
            risk_measure,
            level,
            target_loss_ratio,
        })
    }

    fn adverse_selection(&self, v: &Value) -> Result<AdverseSelectionSpec, ScenarioError> {
        let path = "adverse_selection";
        let a = self.table(v, path)?;
        self.check_keys(a, path, &["max_premium", "renewal_years"])?;
        let max_premium = self.opt_f64(a, path, "max_premium")?;
        if let Some(m) = max_premium {
            self.in_range("adverse_selection.max_premium", m, m > 0.0, "> 0")?;
        }
        let renewal_years = match a.get("renewal_years") {
            Some(v) => self.integer(v, "adverse_selection.renewal_years")?,
            None => 5,
        };
        if renewal_years > 100 {
            return Err(self.err("adverse_selection.renewal_years", "must be at most 100"));
        }
        Ok(AdverseSelectionSpec {
            max_premium,
            renewal_years: renewal_years as u32,
        })
    }

    fn sweep(
        &self,
        v: &Value,
        simulations: u64,
        benefits: &Benefits,
        pricing: &Pricing,
    ) -> Result<SweepSpec, ScenarioError> {
        let path = "sweep";
        let s = self.table(v, path)?;
        self.check_keys(
            s,
            path,
            &[
                "simulations",
                "inpatient",
                "specialty_drug",
                "take_up_scale",
            ],
        )?;
        let sims = match s.get("simulations") {
            Some(v) => self.integer(v, "sweep.simulations")?,
            None => simulations,
        };
        self.check_simulations(sims, "sweep.simulations")?;
        if (sims as f64) * (1.0 - pricing.level) < MIN_TAIL_YEARS {
            return Err(self.err(
                "sweep.simulations",
                format!("too few for pricing.level {}", pricing.level),
            ));
        }
        let mut axes = self.sweep_term_axes(s, benefits)?;
        if let Some(v) = s.get("take_up_scale") {
            let values = self.values(v, "sweep.take_up_scale")?;
            for &x in &values {
                self.in_range(
                    "sweep.take_up_scale",
                    x,
                    x > 0.0 && x <= 100.0,
                    "in (0, 100]",
                )?;
            }
            axes.push(SweepAxis {
                key: SweepKey::TakeUpScale,
                values,
            });
        }
        if axes.is_empty() {
            return Err(self.err(path, "names no axis to sweep"));
        }
        let spec = SweepSpec {
            simulations: sims,
            axes,
        };
        let rows = spec
            .axes
            .iter()
            .try_fold(1usize, |acc, a| acc.checked_mul(a.values.len()))
            .unwrap_or(usize::MAX);
        if rows > MAX_SWEEP_ROWS {
            return Err(self.err(
                path,
                format!("{rows} combinations; at most {MAX_SWEEP_ROWS}"),
            ));
        }
        Ok(spec)
    }

    /// The swept terms of `[sweep.inpatient]` and `[sweep.specialty_drug]`, in benefit then term
    /// order.
    fn sweep_term_axes(
        &self,
        s: &Map<String, Value>,
        benefits: &Benefits,
    ) -> Result<Vec<SweepAxis>, ScenarioError> {
        let path = "sweep";
        let mut axes = Vec::new();
        for b in Benefit::ALL {
            let Some(bv) = s.get(b.key()) else { continue };
            let bpath = join(path, b.key());
            if benefits.get(b).is_none() {
                return Err(self.err(&bpath, "sweeps a benefit the scenario does not price"));
            }
            let t = self.table(bv, &bpath)?;
            self.check_keys(
                t,
                &bpath,
                &[
                    "deductible",
                    "coinsurance",
                    "coinsurance_preexisting",
                    "annual_limit",
                ],
            )?;
            for kind in TermKind::ALL {
                if let Some(values) = t.get(kind.key()) {
                    let kpath = join(&bpath, kind.key());
                    let values = self.values(values, &kpath)?;
                    for &x in &values {
                        let mut o = TermOverrides::default();
                        match kind {
                            TermKind::Deductible => o.deductible = Some(x),
                            TermKind::Coinsurance => o.coinsurance = Some(x),
                            TermKind::CoinsurancePreexisting => o.coinsurance_preexisting = Some(x),
                            TermKind::AnnualLimit => o.annual_limit = Some(x),
                        }
                        // Report the swept key itself rather than the benefit path.
                        self.check_terms(&bpath, &o)?;
                    }
                    axes.push(SweepAxis {
                        key: SweepKey::Term(b, kind),
                        values,
                    });
                }
            }
        }
        Ok(axes)
    }

    fn risk_factors(&self, v: &Value, groups: &[Group]) -> Result<Vec<RiskFactor>, ScenarioError> {
        let list = v.as_array().ok_or_else(|| {
            self.err(
                "risk_factors",
                format!(
                    "expected an array of tables ([[risk_factors]]), found {}",
                    type_name(v)
                ),
            )
        })?;
        if list.len() > 16 {
            return Err(self.err("risk_factors", "more than 16 risk factors"));
        }
        list.iter()
            .enumerate()
            .map(|(i, fv)| self.risk_factor(&format!("risk_factors[{i}]"), fv, groups))
            .collect()
    }

    fn risk_factor(
        &self,
        path: &str,
        v: &Value,
        groups: &[Group],
    ) -> Result<RiskFactor, ScenarioError> {
        let t = self.table(v, path)?;
        self.check_keys(t, path, &["id", "applies_to", "groups", "distribution"])?;
        let id = self.string(self.req(t, path, "id")?, &join(path, "id"))?;
        let path = &format!("{path} ({id})");
        let targets_path = join(path, "applies_to");
        let targets = self.req(t, path, "applies_to")?;
        let targets = targets.as_array().ok_or_else(|| {
            self.err(
                &targets_path,
                format!("expected an array of strings, found {}", type_name(targets)),
            )
        })?;
        let mut applies_to = Vec::new();
        for (i, tv) in targets.iter().enumerate() {
            let key = format!("{targets_path}[{i}]");
            let name = self.string(tv, &key)?;
            let target = FactorTarget::parse(&name).ok_or_else(|| {
                self.err(
                    &key,
                    format!(
                        "unknown target `{name}` (expected one of: {})",
                        FactorTarget::ALL.map(|t| t.key()).join(", ")
                    ),
                )
            })?;
            if !applies_to.contains(&target) {
                applies_to.push(target);
            }
        }
        let group_indices = self.factor_groups(t.get("groups"), &join(path, "groups"), groups)?;
        let dpath = join(path, "distribution");
        let d = self.table(self.req(t, path, "distribution")?, &dpath)?;
        self.check_keys(d, &dpath, &["distribution", "mean", "cv"])?;
        let family = match self
            .string(
                self.req(d, &dpath, "distribution")?,
                &join(&dpath, "distribution"),
            )?
            .as_str()
        {
            "gamma" => FactorFamily::Gamma,
            "lognormal" => FactorFamily::Lognormal,
            other => {
                return Err(self.err(
                    &join(&dpath, "distribution"),
                    format!("unknown factor distribution `{other}` (expected gamma or lognormal)"),
                ));
            }
        };
        let mean = self.opt_f64(d, &dpath, "mean")?.unwrap_or(1.0);
        self.in_range(&join(&dpath, "mean"), mean, mean > 0.0, "> 0")?;
        let cv = self.req_f64(d, &dpath, "cv")?;
        self.in_range(&join(&dpath, "cv"), cv, cv > 0.0 && cv <= 2.0, "in (0, 2]")?;
        Ok(RiskFactor {
            id,
            applies_to,
            groups: group_indices,
            family,
            mean,
            cv,
        })
    }

    /// Group selectors of a factor: `"*"`, a group id, or `age_band/sex/condition_group` with `*`
    /// for any part. All groups when absent. Returns sorted group indices.
    fn factor_groups(
        &self,
        v: Option<&Value>,
        path: &str,
        groups: &[Group],
    ) -> Result<Vec<usize>, ScenarioError> {
        let Some(v) = v else {
            return Ok((0..groups.len()).collect());
        };
        let list = v.as_array().ok_or_else(|| {
            self.err(
                path,
                format!(
                    "expected an array of group selectors, found {}",
                    type_name(v)
                ),
            )
        })?;
        if list.is_empty() {
            return Err(self.err(path, "is empty"));
        }
        let mut out = Vec::new();
        for (i, sv) in list.iter().enumerate() {
            let key = format!("{path}[{i}]");
            let sel = self.string(sv, &key)?;
            let parts: Vec<String> = sel.split('/').map(str::to_string).collect();
            let matched: Vec<usize> = groups
                .iter()
                .enumerate()
                .filter(|(_, g)| {
                    sel == "*"
                        || g.id == sel
                        || <[String; 3]>::try_from(parts.clone())
                            .is_ok_and(|p| selector_matches(&p, &g.id))
                })
                .map(|(i, _)| i)
                .collect();
            if matched.is_empty() {
                return Err(self.err(&key, format!("`{sel}` matches no group")));
            }
            out.extend(matched);
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn values(&self, v: &Value, path: &str) -> Result<Vec<f64>, ScenarioError> {
        let arr = v.as_array().ok_or_else(|| {
            self.err(
                path,
                format!("expected an array of numbers, found {}", type_name(v)),
            )
        })?;
        if arr.is_empty() {
            return Err(self.err(path, "is empty"));
        }
        arr.iter()
            .enumerate()
            .map(|(i, x)| self.number(x, &format!("{path}[{i}]")))
            .collect()
    }
}

fn selector_matches(sel: &[String; 3], id: &str) -> bool {
    let parts: Vec<&str> = id.split('/').collect();
    parts.len() == 3 && sel.iter().zip(parts).all(|(s, p)| s == "*" || s == p)
}

fn describe(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        other => type_name(other).to_string(),
    }
}
