//! The pricing basis a product names (`pricing_scenario`): the scenario file read and hashed
//! when the product is loaded, and read again, checked against that hash, by the experience
//! study and the renewal. The one place that decides where a product's basis comes from.
//!
//! The path is relative to the working directory (the repository root in the demo). The demo's
//! scenario is also built into the binary, so `serve` loads the demo product from any
//! directory; a file on disk at that path is preferred over the built-in copy, and either must
//! hash to what was stored.

use std::path::Path;

use actuarial::{BuiltinTables, DirResolver, Scenario, TableResolver};
use engine::DbConn;
use engine::StoreError;
use engine::domain::canonical::sha256_hex;
use engine::domain::product::Product;
use engine::store::products::{self, StoredProduct};

/// The demo's pricing scenario; the product file and table it names are `BuiltinTables`'.
const BUILTIN_SCENARIO: (&str, &str) = (
    "scenarios/xiamen-2026.toml",
    include_str!("../../scenarios/xiamen-2026.toml"),
);

#[derive(Debug, thiserror::Error)]
pub enum BasisError {
    #[error("pricing scenario `{path}` of product {product}: cannot read: {message}")]
    Unreadable {
        product: String,
        path: String,
        message: String,
    },
    #[error(
        "pricing scenario `{path}` of product {product} version {version} has changed since the \
         version was loaded (stored sha256 {stored}, the file now {found}); load the product \
         again (`puhui products load`) to price on the new file, or restore the old one"
    )]
    Changed {
        product: String,
        version: i32,
        path: String,
        stored: String,
        found: String,
    },
    #[error(
        "product {product} version {version} names pricing scenario `{path}` but no hash of it \
         was stored; load the product again"
    )]
    NoStoredHash {
        product: String,
        version: i32,
        path: String,
    },
    #[error("pricing scenario of product {product}: {message}")]
    Invalid { product: String, message: String },
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl BasisError {
    /// For the HTTP edge: a basis that cannot be used is a conflict with the stored product,
    /// not a fault of the request.
    pub fn into_store_error(self) -> StoreError {
        match self {
            BasisError::Store(e) => e,
            other => StoreError::Conflict {
                code: "pricing_basis_unavailable",
                detail: other.to_string(),
            },
        }
    }
}

/// A scenario's text and where it came from.
#[derive(Debug, Clone)]
pub struct ScenarioText {
    pub path: String,
    pub text: String,
    builtin: bool,
}

impl ScenarioText {
    pub fn sha256(&self) -> String {
        sha256_hex(self.text.as_bytes())
    }

    /// Parses the scenario; its tables and product file resolve next to the file (or, for the
    /// built-in copy, to the built-in demo product and default table: `BuiltinTables`).
    pub fn parse(&self) -> Result<Scenario, String> {
        let resolver = self.resolver();
        if self.path.ends_with(".json") {
            Scenario::from_json_str(&self.text, &self.path, resolver.as_ref())
        } else {
            Scenario::from_toml_str(&self.text, &self.path, resolver.as_ref())
        }
        .map_err(|e| e.to_string())
    }
}

impl ScenarioText {
    /// Where the files the scenario names (its table, its product file) are read from.
    pub fn resolver(&self) -> Box<dyn TableResolver> {
        if self.builtin {
            Box::new(BuiltinTables)
        } else {
            let base = Path::new(&self.path)
                .parent()
                .unwrap_or_else(|| Path::new("."));
            Box::new(DirResolver::new(base))
        }
    }
}

/// The text of the scenario a product names: the file at that path, or the built-in demo copy
/// when there is no such file.
pub fn read_scenario(product: &Product) -> Result<Option<ScenarioText>, BasisError> {
    let Some(path) = &product.pricing_scenario else {
        return Ok(None);
    };
    let unreadable = |message: String| BasisError::Unreadable {
        product: product.id.clone(),
        path: path.clone(),
        message,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(ScenarioText {
            path: path.clone(),
            text,
            builtin: false,
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && path == BUILTIN_SCENARIO.0 => {
            Ok(Some(ScenarioText {
                path: path.clone(),
                text: BUILTIN_SCENARIO.1.to_string(),
                builtin: true,
            }))
        }
        Err(e) => Err(unreadable(e.to_string())),
    }
}

/// Loads a product with the hash of the scenario it names; the scenario must parse, so that a
/// product is never stored on a basis that cannot be used.
pub fn load_product(
    conn: &mut DbConn,
    ctx: &engine::store::WriteContext<'_>,
    product: &Product,
) -> Result<(StoredProduct, products::LoadOutcome), BasisError> {
    let scenario = read_scenario(product)?;
    if let Some(text) = &scenario {
        text.parse().map_err(|message| BasisError::Invalid {
            product: product.id.clone(),
            message,
        })?;
    }
    let sha = scenario.as_ref().map(ScenarioText::sha256);
    Ok(products::load_priced(conn, ctx, product, sha.as_deref())?)
}

/// The scenario a stored product version names, checked against the hash stored with it;
/// `None` when the product names none.
pub fn product_basis(
    conn: &mut DbConn,
    stored: &StoredProduct,
) -> Result<Option<(ScenarioText, Scenario)>, BasisError> {
    let product = &stored.product;
    let Some(text) = read_scenario(product)? else {
        return Ok(None);
    };
    let Some(expected) = products::pricing_scenario_hash(conn, stored.version_id)? else {
        return Err(BasisError::NoStoredHash {
            product: product.id.clone(),
            version: stored.version,
            path: text.path,
        });
    };
    let found = text.sha256();
    if found != expected {
        return Err(BasisError::Changed {
            product: product.id.clone(),
            version: stored.version,
            path: text.path,
            stored: expected,
            found,
        });
    }
    let scenario = text.parse().map_err(|message| BasisError::Invalid {
        product: product.id.clone(),
        message,
    })?;
    Ok(Some((text, scenario)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_demo_scenario_takes_the_demo_products_terms() {
        let product =
            Product::from_toml_str(include_str!("../../products/xiamen-2026.toml")).unwrap();
        let text = ScenarioText {
            path: BUILTIN_SCENARIO.0.into(),
            text: BUILTIN_SCENARIO.1.into(),
            builtin: true,
        };
        let scenario = text.parse().unwrap();
        // The priced terms are the adjudicated terms, fen for fen.
        let fen = |f: f64| (f * 100.0).round() as i64;
        let rate = |d: rust_decimal::Decimal| d.to_string().parse::<f64>().unwrap();
        let inpatient = product.inpatient.as_ref().unwrap();
        let priced = scenario.benefits().inpatient.as_ref().unwrap();
        assert_eq!(fen(priced.deductible), inpatient.deductible.0);
        assert_eq!(fen(priced.annual_limit), inpatient.annual_limit.0);
        assert_eq!(priced.coinsurance, rate(inpatient.coinsurance));
        assert_eq!(
            priced.coinsurance_preexisting,
            rate(inpatient.coinsurance_preexisting)
        );
        let drug = &product.specialty_drug.as_ref().unwrap().terms;
        let priced = scenario.benefits().specialty_drug.as_ref().unwrap();
        assert_eq!(fen(priced.deductible), drug.deductible.0);
        assert_eq!(fen(priced.annual_limit), drug.annual_limit.0);
        assert_eq!(priced.coinsurance, rate(drug.coinsurance));
        assert_eq!(
            priced.coinsurance_preexisting,
            rate(drug.coinsurance_preexisting)
        );
        // The copy built in is the file in the repository.
        assert_eq!(
            std::fs::read_to_string("../scenarios/xiamen-2026.toml").unwrap(),
            BUILTIN_SCENARIO.1
        );
    }
}
