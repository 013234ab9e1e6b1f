//! Scenario files: parsing (TOML or JSON), validation into domain types, and the canonical hash.
//!
//! Both formats are read into one value tree and walked by hand, so that every error names the
//! file, the full key path and what is wrong, unknown keys are rejected (a typo in a term must
//! not silently price the default), and no input can panic.

use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::dist::{DistError, Frequency, Severity};
use crate::member::PayoutTerms;
use crate::table::{DirResolver, TableError, TableResolver, parse_morbidity};

/// Bounds that keep a single run's memory and time finite; the HTTP API applies tighter ones
/// through [`Scenario::work_units`].
pub const MAX_SIMULATIONS: u64 = 50_000_000;
pub const MAX_GROUPS: usize = 10_000;
pub const MAX_MEMBERS_PER_GROUP: u64 = 10_000_000_000;
pub const MAX_SWEEP_ROWS: usize = 10_000;
/// The tail beyond the highest reported level (0.995) must hold at least this many
/// portfolio-years, or VaR and TVaR there are not estimates at all.
pub const MIN_TAIL_YEARS: f64 = 5.0;
/// Levels at which VaR and TVaR are always reported.
pub const REPORT_LEVELS: [f64; 3] = [0.95, 0.99, 0.995];

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{source_name}: cannot read: {message}")]
    Io {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: {message}")]
    Syntax {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: `{key}`: {message}")]
    Invalid {
        source_name: String,
        key: String,
        message: String,
    },
}

impl ScenarioError {
    /// The key path the error is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Benefit {
    Inpatient,
    SpecialtyDrug,
}

impl Benefit {
    pub const ALL: [Benefit; 2] = [Benefit::Inpatient, Benefit::SpecialtyDrug];

    pub fn key(self) -> &'static str {
        match self {
            Self::Inpatient => "inpatient",
            Self::SpecialtyDrug => "specialty_drug",
        }
    }
}

/// Terms of a benefit at scenario level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BenefitTerms {
    pub deductible: f64,
    pub coinsurance: f64,
    pub coinsurance_preexisting: f64,
    pub annual_limit: f64,
}

impl BenefitTerms {
    pub fn apply(&self, overrides: &TermOverrides, preexisting: bool) -> PayoutTerms {
        let coinsurance = if preexisting {
            overrides
                .coinsurance_preexisting
                .unwrap_or(self.coinsurance_preexisting)
        } else {
            overrides.coinsurance.unwrap_or(self.coinsurance)
        };
        PayoutTerms {
            deductible: overrides.deductible.unwrap_or(self.deductible),
            coinsurance,
            annual_limit: overrides.annual_limit.unwrap_or(self.annual_limit),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct TermOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deductible: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coinsurance: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coinsurance_preexisting: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annual_limit: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Benefits {
    pub inpatient: Option<BenefitTerms>,
    pub specialty_drug: Option<BenefitTerms>,
}

impl Benefits {
    pub fn get(&self, benefit: Benefit) -> Option<&BenefitTerms> {
        match benefit {
            Benefit::Inpatient => self.inpatient.as_ref(),
            Benefit::SpecialtyDrug => self.specialty_drug.as_ref(),
        }
    }

    pub fn get_mut(&mut self, benefit: Benefit) -> Option<&mut BenefitTerms> {
        match benefit {
            Benefit::Inpatient => self.inpatient.as_mut(),
            Benefit::SpecialtyDrug => self.specialty_drug.as_mut(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct InpatientRisk {
    pub frequency: Frequency,
    pub severity: Severity,
    pub overrides: TermOverrides,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DrugRisk {
    pub need_rate: f64,
    pub cost: Severity,
    pub overrides: TermOverrides,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub id: String,
    /// Enrolled members at the base take-up.
    pub members: u64,
    pub preexisting: bool,
    /// Eligible population; members = eligible x base take-up.
    pub eligible: f64,
    pub base_take_up: f64,
    /// Take-up elasticity to (expected benefit / premium); 0 means enrolment does not respond.
    pub elasticity: f64,
    pub inpatient: Option<InpatientRisk>,
    pub specialty_drug: Option<DrugRisk>,
}

impl Group {
    /// The member-level frequency, severity and terms of a benefit for this group, or None when
    /// the scenario does not price it.
    pub fn benefit_model(
        &self,
        benefit: Benefit,
        benefits: &Benefits,
    ) -> Option<(Frequency, Severity, PayoutTerms)> {
        let terms = benefits.get(benefit)?;
        match benefit {
            Benefit::Inpatient => self.inpatient.as_ref().map(|r| {
                (
                    r.frequency,
                    r.severity,
                    terms.apply(&r.overrides, self.preexisting),
                )
            }),
            Benefit::SpecialtyDrug => self.specialty_drug.as_ref().map(|r| {
                // The need rate is a probability, so this cannot fail for a validated group;
                // the fallback only keeps the function total.
                let freq =
                    Frequency::bernoulli(r.need_rate).unwrap_or(Frequency::Bernoulli { p: 0.0 });
                (freq, r.cost, terms.apply(&r.overrides, self.preexisting))
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskMeasure {
    Tvar,
    Var,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pricing {
    pub expense_ratio: f64,
    pub cost_of_capital: f64,
    pub risk_measure: RiskMeasure,
    pub level: f64,
    pub target_loss_ratio: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AdverseSelectionSpec {
    /// Highest flat premium per member considered; above it the product is taken not to sell.
    pub max_premium: Option<f64>,
    /// Renewal years to project from the base premium.
    pub renewal_years: u32,
}

/// A swept quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum SweepKey {
    Term(Benefit, TermKind),
    TakeUpScale,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TermKind {
    Deductible,
    Coinsurance,
    CoinsurancePreexisting,
    AnnualLimit,
}

impl TermKind {
    pub const ALL: [TermKind; 4] = [
        TermKind::Deductible,
        TermKind::Coinsurance,
        TermKind::CoinsurancePreexisting,
        TermKind::AnnualLimit,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Self::Deductible => "deductible",
            Self::Coinsurance => "coinsurance",
            Self::CoinsurancePreexisting => "coinsurance_preexisting",
            Self::AnnualLimit => "annual_limit",
        }
    }
}

impl SweepKey {
    pub fn name(&self) -> String {
        match self {
            Self::Term(b, t) => format!("{}.{}", b.key(), t.key()),
            Self::TakeUpScale => "take_up_scale".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepAxis {
    pub key: SweepKey,
    pub values: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepSpec {
    pub simulations: u64,
    pub axes: Vec<SweepAxis>,
}

impl SweepSpec {
    pub fn rows(&self) -> usize {
        self.axes.iter().map(|a| a.values.len()).product()
    }
}

/// A validated scenario. Serialising it gives the canonical form that is hashed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    pub name: String,
    pub seed: u64,
    pub simulations: u64,
    pub currency: String,
    pub benefits: Benefits,
    pub groups: Vec<Group>,
    pub pricing: Pricing,
    pub adverse_selection: Option<AdverseSelectionSpec>,
    pub sweep: Option<SweepSpec>,
}

impl Scenario {
    /// Parses a TOML scenario. `source_name` is used in messages; tables are resolved by
    /// `resolver`.
    pub fn from_toml_str(
        text: &str,
        source_name: &str,
        resolver: &dyn TableResolver,
    ) -> Result<Self, ScenarioError> {
        let value: toml::Value = toml::from_str(text).map_err(|e| ScenarioError::Syntax {
            source_name: source_name.to_string(),
            message: format!("TOML syntax: {}", e.to_string().trim_end()),
        })?;
        let tree = serde_json::to_value(value).map_err(|e| ScenarioError::Syntax {
            source_name: source_name.to_string(),
            message: format!("unsupported TOML value: {e}"),
        })?;
        Self::from_value(&tree, source_name, resolver)
    }

    /// Parses a JSON scenario with the same structure as the TOML form.
    pub fn from_json_str(
        text: &str,
        source_name: &str,
        resolver: &dyn TableResolver,
    ) -> Result<Self, ScenarioError> {
        let tree: Value = serde_json::from_str(text).map_err(|e| ScenarioError::Syntax {
            source_name: source_name.to_string(),
            message: format!("JSON syntax: {e}"),
        })?;
        Self::from_value(&tree, source_name, resolver)
    }

    /// Reads a scenario file (JSON when the extension is `.json`, TOML otherwise), resolving
    /// tables relative to the file's directory.
    pub fn from_path(path: &Path) -> Result<Self, ScenarioError> {
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::Io {
            source_name: source_name.clone(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let resolver = DirResolver::new(base);
        let is_json = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if is_json {
            Self::from_json_str(&text, &source_name, &resolver)
        } else {
            Self::from_toml_str(&text, &source_name, &resolver)
        }
    }

    /// Validates an already parsed value tree.
    pub fn from_value(
        tree: &Value,
        source_name: &str,
        resolver: &dyn TableResolver,
    ) -> Result<Self, ScenarioError> {
        Parser { source_name }.scenario(tree, resolver)
    }

    /// SHA-256 of the canonical (validated, table-resolved) scenario, hex encoded.
    pub fn hash(&self) -> String {
        // Serialising plain structs of numbers, strings and enums cannot fail; an empty string
        // would still hash deterministically.
        let canonical = serde_json::to_string(self).unwrap_or_default();
        hex::encode(Sha256::digest(canonical.as_bytes()))
    }

    pub fn total_members(&self) -> u64 {
        self.groups.iter().map(|g| g.members).sum()
    }

    /// Upper bound on the work of a run, for admission control: per portfolio-year, one unit per
    /// group plus one per expected claim or drug need (payouts are sampled only for members with
    /// a payout, of which there are at most that many), summed over the main run and the sweep.
    pub fn work_units(&self) -> f64 {
        let per_year: f64 = self
            .groups
            .iter()
            .map(|g| {
                let mut events = 0.0;
                if let (Some(_), Some(r)) = (&self.benefits.inpatient, &g.inpatient) {
                    events += r.frequency.mean().min(1.0);
                }
                if let (Some(_), Some(r)) = (&self.benefits.specialty_drug, &g.specialty_drug) {
                    events += r.need_rate;
                }
                1.0 + g.members as f64 * events
            })
            .sum();
        per_year * self.progress_total() as f64
    }

    /// Portfolio-years simulated by a full run, the unit of progress reporting.
    pub fn progress_total(&self) -> u64 {
        let sweep = self
            .sweep
            .as_ref()
            .map_or(0, |s| s.simulations.saturating_mul(s.rows() as u64));
        self.simulations.saturating_add(sweep)
    }
}

struct Parser<'a> {
    source_name: &'a str,
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
        if ok {
            Ok(x)
        } else {
            Err(self.err(path, format!("must be {bound}, got {x}")))
        }
    }

    fn scenario(
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
            (Some(g), None) => self.groups(g, &benefits)?,
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
        Ok(Scenario {
            name,
            seed,
            simulations,
            currency,
            benefits,
            groups,
            pricing,
            adverse_selection,
            sweep,
        })
    }

    fn check_simulations(&self, n: u64, path: &str) -> Result<(), ScenarioError> {
        let highest = REPORT_LEVELS.iter().copied().fold(0.0, f64::max);
        let min = (MIN_TAIL_YEARS / (1.0 - highest)).ceil() as u64;
        if n < min {
            return Err(self.err(path, format!(
                "must be at least {min} so that the tail beyond {highest} holds {MIN_TAIL_YEARS} portfolio-years, got {n}"
            )));
        }
        if n > MAX_SIMULATIONS {
            return Err(self.err(path, format!("must be at most {MAX_SIMULATIONS}, got {n}")));
        }
        Ok(())
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
                self.check_terms(
                    &path,
                    &TermOverrides {
                        deductible: Some(deductible),
                        coinsurance: Some(coinsurance),
                        coinsurance_preexisting: Some(coinsurance_preexisting),
                        annual_limit: Some(annual_limit),
                    },
                )?;
                match b {
                    Benefit::Inpatient => out.inpatient = Some(terms),
                    Benefit::SpecialtyDrug => out.specialty_drug = Some(terms),
                }
            }
        }
        Ok(out)
    }

    fn check_terms(&self, path: &str, t: &TermOverrides) -> Result<(), ScenarioError> {
        if let Some(d) = t.deductible {
            self.in_range(&join(path, "deductible"), d, d >= 0.0, ">= 0")?;
        }
        for (key, c) in [
            ("coinsurance", t.coinsurance),
            ("coinsurance_preexisting", t.coinsurance_preexisting),
        ] {
            if let Some(c) = c {
                self.in_range(
                    &join(path, key),
                    c,
                    (0.0..=1.0).contains(&c),
                    "between 0 and 1",
                )?;
            }
        }
        if let Some(l) = t.annual_limit {
            self.in_range(&join(path, "annual_limit"), l, l > 0.0, "> 0")?;
        }
        Ok(())
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

    fn groups(&self, v: &Value, benefits: &Benefits) -> Result<Vec<Group>, ScenarioError> {
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
            if out.iter().any(|o| o.id == id) {
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

            let inpatient = match g.get("inpatient") {
                Some(v) => {
                    let p = join(&path, "inpatient");
                    let t = self.table(v, &p)?;
                    self.check_keys(
                        t,
                        &p,
                        &[
                            "frequency",
                            "severity",
                            "deductible",
                            "coinsurance",
                            "coinsurance_preexisting",
                            "annual_limit",
                        ],
                    )?;
                    Some(InpatientRisk {
                        frequency: self
                            .frequency(self.req(t, &p, "frequency")?, &join(&p, "frequency"))?,
                        severity: self
                            .severity(self.req(t, &p, "severity")?, &join(&p, "severity"))?,
                        overrides: self.overrides(t, &p)?,
                    })
                }
                None => None,
            };
            let specialty_drug = match g.get("specialty_drug") {
                Some(v) => {
                    let p = join(&path, "specialty_drug");
                    let t = self.table(v, &p)?;
                    self.check_keys(
                        t,
                        &p,
                        &[
                            "need_rate",
                            "cost",
                            "deductible",
                            "coinsurance",
                            "coinsurance_preexisting",
                            "annual_limit",
                        ],
                    )?;
                    let need_rate = self.req_f64(t, &p, "need_rate")?;
                    self.in_range(
                        &join(&p, "need_rate"),
                        need_rate,
                        (0.0..=1.0).contains(&need_rate),
                        "between 0 and 1",
                    )?;
                    Some(DrugRisk {
                        need_rate,
                        cost: self.severity(self.req(t, &p, "cost")?, &join(&p, "cost"))?,
                        overrides: self.overrides(t, &p)?,
                    })
                }
                None => None,
            };
            if benefits.inpatient.is_some() && inpatient.is_none() {
                return Err(self.err(
                    &join(&path, "inpatient"),
                    "missing: the scenario prices the inpatient benefit",
                ));
            }
            if benefits.specialty_drug.is_some() && specialty_drug.is_none() {
                return Err(self.err(
                    &join(&path, "specialty_drug"),
                    "missing: the scenario prices the specialty_drug benefit",
                ));
            }
            out.push(Group {
                id,
                members,
                preexisting,
                eligible: members as f64 / take_up,
                base_take_up: take_up,
                elasticity,
                inpatient,
                specialty_drug,
            });
        }
        Ok(out)
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
        let sev = |mean: f64, cv: f64| {
            if family == "gamma" {
                Severity::gamma(mean, cv)
            } else {
                Severity::lognormal(mean, cv)
            }
        };
        let mut groups = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let gpath = format!("population.table row {} ({})", i + 1, ids[i]);
            let eligible = size * row.population_share;
            let members = (eligible * take_up[i]).round() as u64;
            let rate = row.annual_hospitalization_rate;
            let frequency = match dispersion {
                Some(d) if rate > 0.0 => Frequency::negative_binomial(rate, rate * d),
                _ => Frequency::poisson(rate),
            }
            .map_err(|e| self.dist_err(&gpath, e))?;
            let severity = sev(row.mean_oop_cost_per_admission, row.cv_cost)
                .map_err(|e| self.dist_err(&gpath, e))?;
            let specialty_drug = match drug_cv {
                Some(cv) => Some(DrugRisk {
                    need_rate: row.targeted_drug_need_rate,
                    cost: sev(row.mean_annual_drug_cost, cv)
                        .map_err(|e| self.dist_err(&gpath, e))?,
                    overrides: TermOverrides::default(),
                }),
                None => None,
            };
            groups.push(Group {
                id: ids[i].clone(),
                members,
                preexisting: row.preexisting,
                eligible,
                base_take_up: take_up[i],
                elasticity: elasticity[i],
                inpatient: Some(InpatientRisk {
                    frequency,
                    severity,
                    overrides: TermOverrides::default(),
                }),
                specialty_drug,
            });
        }
        Ok(groups)
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
        let tail = simulations as f64 * (1.0 - level);
        if tail < MIN_TAIL_YEARS {
            return Err(self.err("pricing.level", format!(
                "leaves {tail:.1} portfolio-years in the tail with {simulations} simulations; at least {MIN_TAIL_YEARS} are needed"
            )));
        }
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
