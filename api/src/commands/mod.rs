//! The `puhui` subcommands.

pub mod audit;
pub mod credibility;
pub mod experience;
pub mod migrate;
pub mod morbidity;
pub mod price;
pub mod products;
pub mod renew;
pub mod reserve;
pub mod serve;
pub mod simulate;
pub mod token;

use engine::store::{Keys, WriteContext};

/// The actor recorded in the audit log for command-line operations.
pub const CLI_ACTOR: &str = "cli";

pub fn cli_context(keys: &Keys) -> WriteContext<'_> {
    WriteContext {
        keys,
        actor: CLI_ACTOR,
        now: chrono::Utc::now(),
    }
}
