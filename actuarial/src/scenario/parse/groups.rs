//! `[[groups]]`: the explicit groups, their risks, and the per-group numbers of `[population]`.

use super::*;

impl Parser<'_> {
    pub(super) fn groups(&self, v: &Value) -> Result<Vec<Group>, ScenarioError> {
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
    pub(super) fn group(
        &self,
        i: usize,
        gv: &Value,
        before: &[Group],
    ) -> Result<Group, ScenarioError> {
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
        let id = self.group_id(g, &path, before)?;
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

    /// The id of a group: 1 to 200 characters, unlike those of the groups `before` it.
    fn group_id(
        &self,
        g: &Map<String, Value>,
        path: &str,
        before: &[Group],
    ) -> Result<String, ScenarioError> {
        let id = self.string(self.req(g, path, "id")?, &join(path, "id"))?;
        if id.trim().is_empty() || id.len() > 200 {
            return Err(self.err(&join(path, "id"), "must be 1 to 200 characters"));
        }
        if before.iter().any(|o| o.id == id) {
            return Err(self.err(&join(path, "id"), format!("duplicate group id `{id}`")));
        }
        Ok(id)
    }

    pub(super) fn group_inpatient(
        &self,
        v: &Value,
        p: &str,
    ) -> Result<InpatientRisk, ScenarioError> {
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

    pub(super) fn group_drug(&self, v: &Value, p: &str) -> Result<DrugRisk, ScenarioError> {
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
    pub(super) fn per_group(
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
}
