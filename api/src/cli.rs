//! The `puhui` command line.

use clap::{Parser, Subcommand};

use crate::commands;
use crate::telemetry::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "puhui",
    version,
    about = "Claims and pricing engine for inclusive city health insurance",
    after_help = "Configuration: an option shown with [env: NAME] in a command's --help can \
                  also be set through that environment variable, for example DATABASE_URL \
                  (default sqlite://data/puhui.db), PUHUI_KEY_FILE or PUHUI_MASTER_KEY (hex), \
                  PUHUI_BIND, PUHUI_LOG_FORMAT=json. Log levels: RUST_LOG (default info)."
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "PUHUI_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (creates and migrates the database, loads the demo product).
    Serve(commands::serve::ServeArgs),
    /// Price a scenario file by Monte Carlo and print the report.
    Price(commands::price::PriceArgs),
    /// Apply pending database migrations.
    Migrate(commands::migrate::MigrateArgs),
    /// Issue API tokens.
    #[command(subcommand)]
    Token(commands::token::TokenCommand),
    /// Verify or export the audit log.
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
    /// The experience study of a product: exposure, claims, IBNR and actual against expected.
    Experience(commands::experience::ExperienceArgs),
    /// Claim reserves from a development triangle: chain ladder with Mack standard errors, or
    /// Bornhuetter-Ferguson.
    Reserve(commands::reserve::ReserveArgs),
    /// Next year's price of a product from its experience: credibility, trend, next year's
    /// enrolment; writes the renewal scenario and prices it.
    Renew(commands::renew::RenewArgs),
    /// Run a synthetic policy year of a product through the server: members enrolled and their
    /// claims submitted month by month, drawn from a known morbidity model.
    Simulate(commands::simulate::SimulateArgs),
    /// Load product files.
    #[command(subcommand)]
    Products(commands::products::ProductsCommand),
    /// Build the morbidity table from population records (build, merge, synth).
    #[command(subcommand)]
    Morbidity(commands::morbidity::MorbidityCommand),
    /// Bühlmann-Straub credibility on a table of group, period, value, weight.
    Credibility(commands::credibility::CredibilityArgs),
}
