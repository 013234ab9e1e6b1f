use std::process::ExitCode;

use clap::Parser;
use puhui::cli::{Cli, Command};
use puhui::commands;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    puhui::telemetry::init(cli.log_format);
    let result = match &cli.command {
        Command::Serve(args) => commands::serve::run(args),
        Command::Price(args) => commands::price::run(args).map_err(|e| e.to_string()),
        Command::Migrate(args) => commands::migrate::run(args),
        Command::Token(cmd) => commands::token::run(cmd),
        Command::Audit(cmd) => commands::audit::run(cmd),
        Command::Products(cmd) => commands::products::run(cmd),
        Command::Experience(args) => commands::experience::run(args),
        Command::Renew(args) => commands::renew::run(args),
        Command::Simulate(args) => commands::simulate::run(args),
        Command::Reserve(args) => commands::reserve::run(args).map_err(|e| e.to_string()),
        Command::Morbidity(cmd) => commands::morbidity::run(cmd),
        Command::Credibility(args) => commands::credibility::run(args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
