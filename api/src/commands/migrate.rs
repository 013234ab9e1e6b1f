//! `puhui migrate`: apply pending migrations and say which.

use std::process::ExitCode;

use engine::db::{DatabaseTarget, migrate};

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Database to migrate: `sqlite://path`, a bare file path, or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = engine::db::DEFAULT_DATABASE_URL)]
    pub database_url: String,
}

pub fn run(args: &MigrateArgs) -> Result<ExitCode, String> {
    let target = DatabaseTarget::parse(&args.database_url).map_err(|e| e.to_string())?;
    if let DatabaseTarget::Sqlite(path) = &target
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {dir:?}: {e}"))?;
    }
    let mut conn = target.connect().map_err(|e| e.to_string())?;
    let applied = migrate(&mut conn).map_err(|e| e.to_string())?;
    if applied.is_empty() {
        println!("{} database is up to date", target.backend().name());
    } else {
        for version in applied {
            println!("applied {version}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
