//! Monte Carlo pricing of inclusive supplementary health insurance ("Huimin Bao").
//!
//! A scenario ([`Scenario`]) names risk groups with their morbidity (or a population morbidity
//! table), the benefit terms and the pricing basis. [`price`] simulates portfolio-years and
//! returns [`PricingResults`]: per-group payouts, the portfolio distribution (VaR, TVaR), the flat
//! premium with its build-up, the cross-subsidy table, and optionally adverse selection and a
//! sweep over terms. [`render_report`] formats them for people; their JSON form is for machines.

pub mod adverse;
pub mod alias;
pub mod calibration;
pub mod credibility;
mod csv_input;
pub mod dist;
pub mod engine;
pub mod exact;
pub mod experience;
pub mod factors;
pub mod fft;
pub mod html;
pub mod member;
pub mod model;
pub mod montecarlo;
pub mod morbidity;
pub mod policy_year;
pub mod premium;
pub mod renewal;
pub mod report;
pub mod reserve;
pub mod results;
pub mod scenario;
pub mod special;
pub mod stats;
pub mod sweep;
pub mod table;

pub use engine::{Cancellation, PricingError, RunOptions, price};
pub use montecarlo::BLOCK_YEARS;
pub use report::{render_report, sweep_csv};
pub use results::PricingResults;
pub use scenario::{
    MODEL_BUILD_MEMBER_YEARS, Method, Scenario, ScenarioError, ScenarioParts, WorkEstimate,
};
pub use table::{BuiltinTables, DirResolver, NoTables, TableResolver};
