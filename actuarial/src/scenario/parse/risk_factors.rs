//! `[[risk_factors]]`: the factors, their values and the groups they apply to.

use super::*;
use crate::factors::{FactorFamily, FactorTarget, RiskFactor};

impl Parser<'_> {
    pub(super) fn risk_factors(
        &self,
        v: &Value,
        groups: &[Group],
    ) -> Result<Vec<RiskFactor>, ScenarioError> {
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

    pub(super) fn risk_factor(
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
    pub(super) fn factor_groups(
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
}
