//! Parsing a scenario's value tree into the validated model, with every error naming the file,
//! the full key path and what is wrong.

use serde_json::{Map, Value};

use super::*;
use crate::dist::DistError;
use crate::table::TableResolver;

mod benefits;
mod groups;
mod population;
mod pricing;
mod product;
mod risk_factors;

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
                "product",
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
        let currency = self.currency(root)?;
        let benefits = self.benefits_or_product(root, resolver)?;
        if benefits.inpatient.is_none() && benefits.specialty_drug.is_none() {
            return Err(self.err(
                "benefits",
                "no benefit to price: give benefits.inpatient and/or benefits.specialty_drug",
            ));
        }
        let groups = self.groups_or_population(root, &benefits, resolver)?;
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
        let method = self.method(root)?;
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

    /// `currency`, CNY when absent.
    fn currency(&self, root: &Map<String, Value>) -> Result<String, ScenarioError> {
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
        Ok(currency)
    }

    /// The groups, from `[[groups]]` or from a `[population]` table (exactly one of them).
    fn groups_or_population(
        &self,
        root: &Map<String, Value>,
        benefits: &Benefits,
        resolver: &dyn TableResolver,
    ) -> Result<Vec<Group>, ScenarioError> {
        let groups = match (root.get("groups"), root.get("population")) {
            (Some(g), None) => self.groups(g)?,
            (None, Some(p)) => self.population(p, benefits, resolver)?,
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
        Ok(groups)
    }

    /// `method`, auto when absent.
    fn method(&self, root: &Map<String, Value>) -> Result<Method, ScenarioError> {
        Ok(match root.get("method") {
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
        })
    }

    fn check_simulations(&self, n: u64, path: &str) -> Result<(), ScenarioError> {
        check::simulations(n).map_err(|m| self.err(path, m))
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
