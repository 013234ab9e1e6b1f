//! `puhui audit verify | head | export`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use engine::audit::{self, ChainHead, EventQuery};

use crate::config::DatabaseArgs;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain; exits 1 and names the first broken event if it fails.
    Verify(VerifyArgs),
    /// Print the current head (sequence and hash) as JSON, to keep off-box.
    Head(HeadArgs),
    /// Export events as JSON Lines.
    Export(ExportArgs),
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// A head exported earlier by `puhui audit head` (a JSON file): detects
    /// deletion of the newest events.
    #[arg(long)]
    pub head: Option<PathBuf>,
    #[command(flatten)]
    pub db: DatabaseArgs,
}

#[derive(Debug, clap::Args)]
pub struct HeadArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Only events after this sequence number.
    #[arg(long)]
    pub after_seq: Option<i64>,
    /// Only events up to this sequence number.
    #[arg(long)]
    pub until_seq: Option<i64>,
    /// Write to this file instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub db: DatabaseArgs,
}

pub fn run(command: &AuditCommand) -> Result<ExitCode, String> {
    match command {
        AuditCommand::Verify(args) => {
            let head: Option<ChainHead> = match &args.head {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    Some(
                        serde_json::from_str(&text)
                            .map_err(|e| format!("{}: {e}", path.display()))?,
                    )
                }
                None => None,
            };
            let (db, keys) = args.db.open().map_err(|e| e.to_string())?;
            let mut conn = db.get().map_err(|e| e.to_string())?;
            let report =
                audit::verify(&mut conn, &keys.audit, head.as_ref()).map_err(|e| e.to_string())?;
            println!(
                "{}",
                serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
            );
            Ok(if report.valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        AuditCommand::Head(args) => {
            let (db, _) = args.db.open().map_err(|e| e.to_string())?;
            let mut conn = db.get().map_err(|e| e.to_string())?;
            let head = audit::head(&mut conn).map_err(|e| e.to_string())?;
            println!(
                "{}",
                serde_json::to_string(&head).map_err(|e| e.to_string())?
            );
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Export(args) => {
            let (db, _) = args.db.open().map_err(|e| e.to_string())?;
            let mut conn = db.get().map_err(|e| e.to_string())?;
            let mut out: Box<dyn std::io::Write> = match &args.output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let query = EventQuery {
                after_seq: args.after_seq,
                until_seq: args.until_seq,
                ..Default::default()
            };
            let mut write_error = None;
            audit::for_each_event(&mut conn, query, |event| {
                if write_error.is_none() {
                    let line = serde_json::to_string(event)?;
                    if let Err(e) = writeln!(out, "{line}") {
                        write_error = Some(e);
                    }
                }
                Ok(())
            })
            .map_err(|e| e.to_string())?;
            if let Some(e) = write_error {
                return Err(format!("writing the export: {e}"));
            }
            out.flush()
                .map_err(|e| format!("writing the export: {e}"))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
