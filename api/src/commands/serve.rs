//! `puhui serve`: the HTTP server on the embedded default or PostgreSQL.

use std::io::Write as _;
use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;

use engine::db::write_transaction;
use engine::domain::product::Product;
use engine::store::products::LoadOutcome;
use engine::store::tokens::{self, Role};

use crate::clock::Clock;
use crate::config::DatabaseArgs;
use crate::metrics::Metrics;
use crate::pricing_runs::{DEFAULT_MAX_MEMBER_YEARS, PricingLimits, PricingRuns};
use crate::ratelimit::RateLimiter;
use crate::state::{AppState, Limits};
use crate::writer::ClaimWriter;

/// The demo product shipped with the binary, so `serve` works from any directory.
const DEMO_PRODUCTS: [(&str, &str); 2] = [
    (
        "products/xiamen-2025.toml",
        include_str!("../../../products/xiamen-2025.toml"),
    ),
    (
        "products/xiamen-2026.toml",
        include_str!("../../../products/xiamen-2026.toml"),
    ),
];

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, env = "PUHUI_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Largest number of pooled database connections.
    #[arg(long, env = "PUHUI_DB_POOL_SIZE", default_value_t = 8)]
    pub pool_size: u32,
    /// Largest accepted request body in bytes (larger ones get 413).
    #[arg(long, env = "PUHUI_BODY_LIMIT", default_value_t = 256 * 1024)]
    pub body_limit: usize,
    /// Seconds a request body may take to arrive; a slower one gets 408 and
    /// the connection is closed.
    #[arg(long, env = "PUHUI_BODY_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout: u64,
    /// Sign-ups allowed per client address per minute without a token.
    #[arg(long, env = "PUHUI_ENROLLMENTS_PER_MINUTE", default_value_t = 30)]
    pub enrollments_per_minute: u32,
    /// HTTP worker threads.
    #[arg(long, env = "PUHUI_WORKERS", default_value_t = 2)]
    pub workers: usize,
    /// Pricing runs allowed at once (more get 429).
    #[arg(long, env = "PUHUI_PRICING_CONCURRENCY", default_value_t = 1)]
    pub pricing_concurrency: usize,
    /// Largest pricing run accepted (larger ones get 422), as the member-years
    /// of work it needs: portfolio-years x (groups + members expected to claim),
    /// plus every group's model building for the main run and again for each
    /// sweep row. `scenarios/city-default.toml` at 20,000 portfolio-years is
    /// about 1e10.
    #[arg(
        long,
        env = "PUHUI_PRICING_MAX_MEMBER_YEARS",
        default_value_t = DEFAULT_MAX_MEMBER_YEARS
    )]
    pub pricing_max_member_years: u64,
    /// Seconds a pricing run may take; a longer one is stopped and stored as
    /// `timed_out`, and its slot is freed.
    #[arg(long, env = "PUHUI_PRICING_MAX_SECONDS", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub pricing_max_seconds: u64,
    /// Most claims decided in one write transaction (group commit); 1 commits
    /// each claim on its own. At most 1000, which keeps every statement of a
    /// batch within the databases' limits on bound parameters.
    #[arg(long, env = "PUHUI_CLAIM_BATCH", default_value_t = 32,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub claim_batch: u16,
    /// Claims allowed to wait for the writer; more get 503.
    #[arg(long, env = "PUHUI_CLAIM_QUEUE", default_value_t = 4096)]
    pub claim_queue: usize,
    /// Do not load the demo product at start-up.
    #[arg(long)]
    pub no_demo: bool,
    /// Run the server's clock this many days ahead of the system's (or
    /// behind, when negative): for demonstrations and end-to-end tests of
    /// journeys that span months, such as a treatment course. 0 in production.
    #[arg(long, env = "PUHUI_CLOCK_OFFSET_DAYS", default_value_t = 0, allow_hyphen_values = true,
          value_parser = clap::value_parser!(i64).range(-3660..=3660))]
    pub clock_offset_days: i64,
}

pub fn run(args: &ServeArgs) -> Result<ExitCode, String> {
    let (db, keys) = args
        .db
        .open_pool(args.pool_size)
        .map_err(|e| e.to_string())?;
    let first_start_tokens = prepare_database(&db, &keys, !args.no_demo)?;
    let listener = TcpListener::bind(&args.bind)
        .map_err(|e| format!("cannot listen on {}: {e}", args.bind))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let claims = ClaimWriter::start(
        db.clone(),
        keys.clone(),
        usize::from(args.claim_batch),
        args.claim_queue,
        Clock::offset_by_days(args.clock_offset_days),
    )
    .map_err(|e| format!("cannot start the claim writer: {e}"))?;
    let state = Arc::new(app_state(args, db, keys, claims));
    announce(&address, state.db.backend().name(), &first_start_tokens);
    if args.clock_offset_days != 0 {
        tracing::warn!(
            days = args.clock_offset_days,
            "the server's clock runs offset from the system's (--clock-offset-days)"
        );
    }
    actix_web::rt::System::new()
        .block_on(crate::server::run(state, listener, args.workers.max(1)))
        .map_err(|e| format!("server stopped: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

/// Loads the demo products (a new version only where the file changed).
pub(crate) fn load_demo_products(
    conn: &mut engine::DbConn,
    ctx: &engine::store::WriteContext<'_>,
) -> Result<(), String> {
    for (name, text) in DEMO_PRODUCTS {
        let product = Product::from_toml_str(text).map_err(|e| format!("{name}: {e}"))?;
        let (stored, outcome) =
            crate::basis::load_product(conn, ctx, &product).map_err(|e| format!("{name}: {e}"))?;
        if outcome == LoadOutcome::NewVersion {
            tracing::info!(product.id = %stored.product.id, product.version = stored.version, "demo product loaded");
        }
    }
    Ok(())
}

/// What start-up does to the database before serving: loads the demo
/// products, issues the first-start tokens (returned, to print once) and
/// marks the pricing runs a stopped server left behind.
fn prepare_database(
    db: &engine::Database,
    keys: &engine::store::Keys,
    load_demo: bool,
) -> Result<Vec<(&'static str, String)>, String> {
    let mut conn = db.get().map_err(|e| e.to_string())?;
    let ctx = super::cli_context(keys);
    if load_demo {
        load_demo_products(&mut conn, &ctx)?;
    }
    // First start: issue an insurer and an auditor token and print them once.
    let first_start = !tokens::any_with_role(&mut conn, "insurer").map_err(|e| e.to_string())?;
    let mut issued = Vec::new();
    if first_start {
        for (role, label) in [
            (Role::Insurer, "first-start insurer"),
            (Role::Auditor, "first-start auditor"),
        ] {
            let secret = crate::auth::new_token_secret();
            write_transaction(&mut conn, |conn| {
                tokens::create(conn, &ctx, &secret, &role, label)
            })
            .map_err(|e| e.to_string())?;
            issued.push((role.name(), secret));
        }
    }
    // Runs a stopped server left behind will never finish; say so.
    let interrupted = engine::store::pricing_runs::mark_interrupted(&mut conn, chrono::Utc::now())
        .map_err(|e| e.to_string())?;
    if interrupted > 0 {
        tracing::warn!(
            count = interrupted,
            "pricing runs interrupted by the last shutdown"
        );
    }
    Ok(issued)
}

fn app_state(
    args: &ServeArgs,
    db: engine::Database,
    keys: engine::store::Keys,
    claims: ClaimWriter,
) -> AppState {
    AppState {
        db,
        keys,
        limits: Limits {
            body_bytes: args.body_limit,
            body_deadline: std::time::Duration::from_secs(args.body_timeout),
            enrollments_per_minute: args.enrollments_per_minute,
        },
        metrics: Metrics::default(),
        pricing: Arc::new(PricingRuns::new(PricingLimits {
            concurrency: args.pricing_concurrency.max(1),
            max_member_years: args.pricing_max_member_years,
            max_run_time: std::time::Duration::from_secs(args.pricing_max_seconds),
        })),
        enrollment_limiter: RateLimiter::per_minute(args.enrollments_per_minute),
        claims,
        clock: Clock::offset_by_days(args.clock_offset_days),
        token_cache: Default::default(),
    }
}

/// The address and the first-start tokens, on stdout, where scripts read them.
fn announce(address: &std::net::SocketAddr, backend: &str, tokens: &[(&str, String)]) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "Puhui listening on http://{address} ({backend} database)"
    );
    for (role, secret) in tokens {
        let _ = writeln!(
            stdout,
            "{role} token (shown once, only its hash is stored): {secret}"
        );
    }
    let _ = stdout.flush();
}
