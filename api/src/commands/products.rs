//! `puhui products load`: store product files as new versions.

use std::path::PathBuf;
use std::process::ExitCode;

use engine::domain::product::Product;
use engine::store::products::LoadOutcome;

use crate::config::DatabaseArgs;

#[derive(Debug, clap::Subcommand)]
pub enum ProductsCommand {
    /// Load product TOML files; a changed file becomes the product's next version.
    Load(LoadArgs),
}

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Product files (TOML).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub db: DatabaseArgs,
}

pub fn run(command: &ProductsCommand) -> Result<ExitCode, String> {
    let ProductsCommand::Load(args) = command;
    // Parse every file first, so that one bad file loads nothing.
    let mut parsed = Vec::new();
    for path in &args.files {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let product =
            Product::from_toml_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        parsed.push((path, product));
    }
    let (db, keys) = args.db.open().map_err(|e| e.to_string())?;
    let mut conn = db.get().map_err(|e| e.to_string())?;
    let ctx = super::cli_context(&keys);
    for (path, product) in parsed {
        let (stored, outcome) = crate::basis::load_product(&mut conn, &ctx, &product)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let what = match outcome {
            LoadOutcome::NewVersion => "loaded as version",
            LoadOutcome::Unchanged => "unchanged, still version",
        };
        println!(
            "{}: product {} {what} {}",
            path.display(),
            stored.product.id,
            stored.version
        );
    }
    Ok(ExitCode::SUCCESS)
}
