//! `puhui token create`: issue an API token from the command line.

use std::process::ExitCode;

use engine::db::write_transaction;
use engine::store::tokens::{self, Role};

use crate::config::DatabaseArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    Enrollee,
    Provider,
    Insurer,
    Auditor,
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once (only its hash is stored).
    Create(CreateArgs),
    /// Revoke a token: it stops working (at once for new server processes;
    /// a running server forgets it within 5 seconds). The row stays, and the
    /// revocation is audited.
    Revoke(RevokeArgs),
}

#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// The token's id, as printed by `token create` or returned by sign-up as `token_id`.
    #[arg(value_name = "TOKEN_ID", required_unless_present = "id")]
    pub token_id: Option<i64>,
    /// The same, as a flag.
    #[arg(long, conflicts_with = "token_id")]
    pub id: Option<i64>,
    #[command(flatten)]
    pub db: DatabaseArgs,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// What the token may do: `insurer` (runs the plan: every read,
    /// enrolment on a member's behalf, reversals, pricing runs), `auditor`
    /// (read-only: members, claims, pricing runs and the audit log), `provider` (submit claims under its own
    /// provider id; needs --provider-id), `enrollee` (one member's own cover
    /// and claims; needs --member-id).
    #[arg(long, value_enum)]
    pub role: RoleArg,
    /// The member an enrollee token is bound to (required with --role enrollee).
    #[arg(long, required_if_eq("role", "enrollee"))]
    pub member_id: Option<i64>,
    /// The designated provider id a provider token acts for, e.g. XM-PH-001
    /// (required with --role provider).
    #[arg(long, required_if_eq("role", "provider"))]
    pub provider_id: Option<String>,
    /// A note to say whom the token is for.
    #[arg(long, default_value = "issued from the command line")]
    pub label: String,
    #[command(flatten)]
    pub db: DatabaseArgs,
}

pub fn run(command: &TokenCommand) -> Result<ExitCode, String> {
    match command {
        TokenCommand::Create(args) => create(args),
        TokenCommand::Revoke(args) => revoke(args),
    }
}

fn revoke(args: &RevokeArgs) -> Result<ExitCode, String> {
    let token_id = args
        .token_id
        .or(args.id)
        .ok_or("the token id is required")?;
    let (db, keys) = args.db.open().map_err(|e| e.to_string())?;
    let mut conn = db.get().map_err(|e| e.to_string())?;
    let ctx = super::cli_context(&keys);
    let outcome = write_transaction(&mut conn, |conn| tokens::revoke(conn, &ctx, token_id))
        .map_err(|e| e.to_string())?;
    match outcome {
        tokens::Revocation::Revoked => eprintln!("revoked token {token_id}"),
        tokens::Revocation::AlreadyRevoked => eprintln!("token {token_id} was already revoked"),
    }
    Ok(ExitCode::SUCCESS)
}

fn create(args: &CreateArgs) -> Result<ExitCode, String> {
    let role = match (args.role, args.member_id, &args.provider_id) {
        (RoleArg::Enrollee, Some(member_id), _) => Role::Enrollee { member_id },
        (RoleArg::Provider, _, Some(provider_id)) if !provider_id.trim().is_empty() => {
            Role::Provider {
                provider_id: provider_id.trim().to_owned(),
            }
        }
        (RoleArg::Insurer, _, _) => Role::Insurer,
        (RoleArg::Auditor, _, _) => Role::Auditor,
        _ => return Err("--member-id (enrollee) or --provider-id (provider) is required".into()),
    };
    let (db, keys) = args.db.open().map_err(|e| e.to_string())?;
    let mut conn = db.get().map_err(|e| e.to_string())?;
    let secret = crate::auth::new_token_secret();
    let ctx = super::cli_context(&keys);
    let principal = write_transaction(&mut conn, |conn| {
        tokens::create(conn, &ctx, &secret, &role, &args.label)
    })
    .map_err(|e| e.to_string())?;
    eprintln!(
        "created {} token {} (shown once; only its hash is stored):",
        role.name(),
        principal.token_id
    );
    println!("{secret}");
    Ok(ExitCode::SUCCESS)
}
