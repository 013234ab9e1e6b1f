//! `[product] file = "../products/xiamen-2026.toml"`: the benefit terms taken from the product
//! file the claims engine adjudicates with, so that the priced terms and the paid terms are one
//! text. Only the four money terms of `[inpatient]` and `[specialty_drug]` are read here; the
//! rest of the product file (dates, formulary, ...) is the engine's and is left alone.

use super::*;
use crate::table::TableResolver;

/// The benefit keys of a product file and the scenario benefit each prices.
const PRODUCT_BENEFITS: [(&str, Benefit); 2] = [
    ("inpatient", Benefit::Inpatient),
    ("specialty_drug", Benefit::SpecialtyDrug),
];

impl Parser<'_> {
    /// The benefits from `[benefits]` or from `[product] file`, exactly one of them.
    pub(super) fn benefits_or_product(
        &self,
        root: &Map<String, Value>,
        resolver: &dyn TableResolver,
    ) -> Result<Benefits, ScenarioError> {
        match (root.get("benefits"), root.get("product")) {
            (Some(b), None) => self.benefits(b),
            (None, Some(p)) => self.product_benefits(p, resolver),
            (Some(_), Some(_)) => Err(self.err(
                "benefits",
                "give either [benefits] or [product] file, not both: the product file already \
                 states the benefit terms",
            )),
            (None, None) => Err(self.err(
                "benefits",
                "missing: give [benefits] or [product] file = \"...\"",
            )),
        }
    }

    fn product_benefits(
        &self,
        v: &Value,
        resolver: &dyn TableResolver,
    ) -> Result<Benefits, ScenarioError> {
        let map = self.table(v, "product")?;
        self.check_keys(map, "product", &["file"])?;
        let file = self.string(self.req(map, "product", "file")?, "product.file")?;
        let resolved = resolver
            .resolve(&file)
            .map_err(|e| self.err("product.file", e.to_string()))?;
        let product: toml::Value = toml::from_str(&resolved.text).map_err(|e| {
            self.err(
                "product.file",
                format!(
                    "{}: TOML syntax: {}",
                    resolved.name,
                    e.to_string().trim_end()
                ),
            )
        })?;
        let product = product
            .as_table()
            .ok_or_else(|| self.err("product.file", format!("{}: not a table", resolved.name)))?;
        let mut out = Benefits::default();
        for (key, benefit) in PRODUCT_BENEFITS {
            let Some(section) = product.get(key) else {
                continue;
            };
            let terms = self.product_terms(section, key, &resolved.name)?;
            self.check_terms(
                &format!("product.file {}: {key}", resolved.name),
                &terms.as_overrides(),
            )?;
            match benefit {
                Benefit::Inpatient => out.inpatient = Some(terms),
                Benefit::SpecialtyDrug => out.specialty_drug = Some(terms),
            }
        }
        Ok(out)
    }

    /// One benefit's terms as the product file writes them: amounts and rates as decimal
    /// strings (`"20000.00"`, `"0.70"`) or numbers.
    fn product_terms(
        &self,
        section: &toml::Value,
        key: &str,
        file: &str,
    ) -> Result<BenefitTerms, ScenarioError> {
        let term = |name: &str| -> Result<f64, ScenarioError> {
            let at = || format!("product.file {file}: {key}.{name}");
            let value = section
                .get(name)
                .ok_or_else(|| self.err(&at(), "missing"))?;
            let x = match value {
                toml::Value::String(s) => s.trim().parse::<f64>().ok(),
                toml::Value::Integer(i) => Some(*i as f64),
                toml::Value::Float(f) => Some(*f),
                _ => None,
            };
            match x {
                Some(x) if x.is_finite() => Ok(x),
                _ => Err(self.err(&at(), format!("expected a decimal amount, found {value}"))),
            }
        };
        Ok(BenefitTerms {
            deductible: term("deductible")?,
            coinsurance: term("coinsurance")?,
            coinsurance_preexisting: term("coinsurance_preexisting")?,
            annual_limit: term("annual_limit")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::table::{DEFAULT_TABLE_CSV, ResolvedTable, TableError, TableResolver};
    use crate::{RunOptions, Scenario, price};

    /// The demo product and the default table, from memory.
    struct Files;

    const PRODUCT: &str = include_str!("../../../../products/xiamen-2026.toml");

    impl TableResolver for Files {
        fn resolve(&self, name: &str) -> Result<ResolvedTable, TableError> {
            let text = match name {
                "../products/xiamen-2026.toml" => PRODUCT,
                "morbidity_default.csv" => DEFAULT_TABLE_CSV,
                other => return Err(TableError::NotAllowed(other.to_string())),
            };
            Ok(ResolvedTable {
                name: name.to_string(),
                text: text.to_string(),
            })
        }
    }

    const REST: &str = r#"
name = "t"
seed = 7
simulations = 2000
method = "exact"
[population]
table = "morbidity_default.csv"
size = 100_000
drug_cost_cv = 0.8
take_up = 0.3
[pricing]
expense_ratio = 0.1
cost_of_capital = 0.06
risk_measure = "tvar"
level = 0.995
"#;

    /// The demo product's terms written out by hand, as a scenario repeating them would.
    const INLINE: &str = r#"
[benefits.inpatient]
deductible = 20000
coinsurance = 0.70
coinsurance_preexisting = 0.50
annual_limit = 1500000
[benefits.specialty_drug]
deductible = 0
coinsurance = 0.70
coinsurance_preexisting = 0.30
annual_limit = 3000000
"#;

    const LINKED: &str = "[product]\nfile = \"../products/xiamen-2026.toml\"\n";

    fn scenario(terms: &str) -> Result<Scenario, crate::ScenarioError> {
        Scenario::from_toml_str(&format!("{REST}{terms}"), "t.toml", &Files)
    }

    #[test]
    fn a_product_linked_scenario_prices_as_the_inline_copy_of_its_terms() {
        let linked = scenario(LINKED).unwrap();
        let inline = scenario(INLINE).unwrap();
        assert_eq!(linked.benefits(), inline.benefits());
        let (a, b) = (
            price(&linked, &RunOptions::default()).unwrap(),
            price(&inline, &RunOptions::default()).unwrap(),
        );
        // Same terms, same seed, same method: the same figures to the last bit.
        assert_eq!(
            a.premium.flat_premium_per_member,
            b.premium.flat_premium_per_member
        );
        assert_eq!(a.portfolio, b.portfolio);
        assert!(a.premium.flat_premium_per_member > 0.0);
    }

    #[test]
    fn terms_given_twice_or_a_bad_product_file_are_errors_naming_the_key() {
        let both = scenario(&format!("{LINKED}{INLINE}")).unwrap_err();
        assert_eq!(both.key(), Some("benefits"), "{both}");
        let missing = Scenario::from_toml_str(
            &format!("{REST}[product]\nfile = \"nope.toml\"\n"),
            "t.toml",
            &Files,
        )
        .unwrap_err();
        assert_eq!(missing.key(), Some("product.file"), "{missing}");
        let typo = scenario("[product]\nfiles = \"x\"\n").unwrap_err();
        assert_eq!(typo.key(), Some("product.files"), "{typo}");
    }
}
