//! The published aggregates of real products, read from the TOML the repository ships
//! (`docs/domain/published-aggregates.toml`) or from a file of the same form, and checked.

use serde::{Deserialize, Serialize};

/// The file the program carries: every figure in it is cited in `docs/domain/`.
pub const SHIPPED_NAME: &str = "docs/domain/published-aggregates.toml";
pub const SHIPPED_TOML: &str = include_str!("../../../docs/domain/published-aggregates.toml");

/// One product's published figures for one period, as they appear in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PublishedProduct {
    pub id: String,
    pub name: String,
    pub period: String,
    pub insured: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimants: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_claims: Option<f64>,
    pub paid_cny: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub premium_cny: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub premium_per_member_cny: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preexisting_share_of_claimants: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aged_65_plus_share_of_claimants: Option<f64>,
    pub sources: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    product: Vec<PublishedProduct>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct PublishedError {
    pub file: String,
    pub message: String,
}

/// The shipped aggregates.
pub fn shipped() -> Result<Vec<PublishedProduct>, PublishedError> {
    parse(SHIPPED_TOML, SHIPPED_NAME)
}

/// Reads and checks a file of published aggregates; `name` is the file's name for errors.
pub fn parse(text: &str, name: &str) -> Result<Vec<PublishedProduct>, PublishedError> {
    let err = |message: String| PublishedError {
        file: name.to_string(),
        message,
    };
    let file: File = toml::from_str(text).map_err(|e| err(e.message().to_string()))?;
    if file.product.is_empty() {
        return Err(err("no [[product]]".into()));
    }
    for (i, p) in file.product.iter().enumerate() {
        check(p).map_err(|m| err(format!("product[{i}] ({}): {m}", p.id)))?;
    }
    Ok(file.product)
}

fn check(p: &PublishedProduct) -> Result<(), String> {
    let positive = |key: &str, x: f64| {
        if x.is_finite() && x > 0.0 {
            Ok(())
        } else {
            Err(format!("`{key}` must be a positive number, got {x}"))
        }
    };
    positive("insured", p.insured)?;
    if !(p.paid_cny.is_finite() && p.paid_cny >= 0.0) {
        return Err(format!("`paid_cny` must be 0 or more, got {}", p.paid_cny));
    }
    for (key, count) in [
        ("claimants", p.claimants),
        ("claims", p.claims),
        ("closed_claims", p.closed_claims),
    ] {
        if let Some(c) = count {
            positive(key, c)?;
        }
    }
    if let Some(c) = p.claimants
        && c > p.insured
    {
        return Err(format!(
            "`claimants` ({c}) exceeds `insured` ({})",
            p.insured
        ));
    }
    for (key, x) in [
        ("premium_cny", p.premium_cny),
        ("premium_per_member_cny", p.premium_per_member_cny),
    ] {
        if let Some(x) = x {
            positive(key, x)?;
        }
    }
    if p.premium_cny.is_some() && p.premium_per_member_cny.is_some() {
        return Err("give `premium_cny` or `premium_per_member_cny`, not both".into());
    }
    for (key, x) in [
        (
            "preexisting_share_of_claimants",
            p.preexisting_share_of_claimants,
        ),
        (
            "aged_65_plus_share_of_claimants",
            p.aged_65_plus_share_of_claimants,
        ),
    ] {
        if let Some(x) = x
            && !(0.0..=1.0).contains(&x)
        {
            return Err(format!("`{key}` must be between 0 and 1, got {x}"));
        }
    }
    if p.sources.is_empty() {
        return Err("`sources` is empty: every figure needs its source".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_reads_with_its_sources() {
        let products = shipped().unwrap();
        let xiamen = products.iter().find(|p| p.id == "xiamen-2022").unwrap();
        assert_eq!(xiamen.claimants, Some(20_000.0));
        assert_eq!(xiamen.preexisting_share_of_claimants, Some(0.5812));
        let shanghai = products
            .iter()
            .find(|p| p.id == "shanghai-huhuibao-2021")
            .unwrap();
        assert_eq!(shanghai.premium_cny, Some(850e6));
        assert!(products.iter().all(|p| !p.sources.is_empty()));
    }

    #[test]
    fn errors_name_the_product_and_the_key() {
        let base = SHIPPED_TOML;
        for (from, to, words) in [
            (
                "claimants = 20_000",
                "claimants = 2_000_000",
                "exceeds `insured`",
            ),
            (
                "preexisting_share_of_claimants = 0.5812",
                "preexisting_share_of_claimants = 58.12",
                "between 0 and 1",
            ),
            ("insured = 1_040_000", "insured = 0", "`insured`"),
            ("claims = 216_800", "claimz = 216_800", "claimz"),
        ] {
            let text = base.replacen(from, to, 1);
            assert_ne!(text, base, "{from}");
            let e = parse(&text, "f.toml").unwrap_err().to_string();
            assert!(e.starts_with("f.toml: ") && e.contains(words), "{e}");
        }
        let e = parse("", "f.toml").unwrap_err().to_string();
        assert!(e.contains("product"), "{e}");
    }
}
