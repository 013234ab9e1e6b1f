//! `[pricing]`, `[adverse_selection]` and `[sweep]`.

use super::*;

impl Parser<'_> {
    pub(super) fn pricing(&self, v: &Value, simulations: u64) -> Result<Pricing, ScenarioError> {
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
                "premium",
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
        // `number` already refuses values that are not finite.
        let premium = self.opt_f64(p, path, "premium")?;
        if let Some(x) = premium {
            self.in_range("pricing.premium", x, x > 0.0, "> 0 (per member and year)")?;
        }
        Ok(Pricing {
            expense_ratio,
            cost_of_capital,
            risk_measure,
            level,
            target_loss_ratio,
            premium,
        })
    }

    pub(super) fn adverse_selection(
        &self,
        v: &Value,
    ) -> Result<AdverseSelectionSpec, ScenarioError> {
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

    pub(super) fn sweep(
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
    pub(super) fn sweep_term_axes(
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
}
