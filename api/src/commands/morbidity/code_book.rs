//! The product file read as the study's code book, through the claims engine's own code
//! matching.

use std::path::Path;

use actuarial::morbidity::{CodeBook, MalformedCode};
use engine::domain::product::Product;
use engine::domain::{AtcCode, Icd10Code};

/// The product's pre-existing groups and formulary, matched by the claims engine's rules.
pub struct ProductCodeBook {
    product: Product,
}

impl ProductCodeBook {
    pub fn from_path(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let product =
            Product::from_toml_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self { product })
    }

    /// Names the product and its content, so that partial statistics of different products
    /// are not merged.
    pub fn name(&self) -> String {
        let hash = self.product.content_hash();
        format!("{}@{}", self.product.id, &hash[..hash.len().min(12)])
    }
}

impl CodeBook for ProductCodeBook {
    fn preexisting(&self, icd10: &str) -> Result<bool, MalformedCode> {
        let code: Icd10Code = icd10.parse().map_err(|_| MalformedCode)?;
        Ok(self
            .product
            .preexisting_groups
            .iter()
            .any(|group| group.contains(&code)))
    }

    fn targeted_drug(&self, atc: &str) -> Result<bool, MalformedCode> {
        let code: AtcCode = atc.parse().map_err(|_| MalformedCode)?;
        Ok(self.product.formulary_drug(&code).is_some())
    }
}
