//! `[benefits]`: the benefit terms, and the frequency and severity tables of a risk.

use super::*;
use crate::dist::{Frequency, Severity};

impl Parser<'_> {
    pub(super) fn benefits(&self, v: &Value) -> Result<Benefits, ScenarioError> {
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

    pub(super) fn check_terms(&self, path: &str, t: &TermOverrides) -> Result<(), ScenarioError> {
        check::terms(t).map_err(|(key, m)| self.err(&join(path, key), m))
    }

    pub(super) fn overrides(
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

    pub(super) fn frequency(&self, v: &Value, path: &str) -> Result<Frequency, ScenarioError> {
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

    pub(super) fn severity(&self, v: &Value, path: &str) -> Result<Severity, ScenarioError> {
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
}
