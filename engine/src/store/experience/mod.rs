//! The experience study's reads: exposure, claims and the payment triangle of one product,
//! aggregated in the database (GROUP BY), never by loading every claim; and a bulk loader that
//! fills a database with a synthetic portfolio for tests and benchmarks.
//!
//! Pricing groups are the morbidity table's, recorded on each enrollment when it is made (see
//! `domain::pricing_group`): the age band at the start of the policy period, sex, and whether
//! the member declared a pre-existing condition. Payments are the ledger entries (decisions add them,
//! reversals add the negated entries), so summing a claim's entries nets its reversals. Dates are
//! China time: a ledger entry written at 17:00 UTC on 31 March belongs to 1 April.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Integer, Text, Timestamp};

use crate::db::DbConn;
use crate::error::StoreError;
use crate::store::products::{self, StoredProduct};

mod case_reserve;
mod sql;
mod synthetic;

pub use case_reserve::CaseReserveCell;

pub use crate::domain::pricing_group::{AGE_BANDS, PricingGroup, years_before};
use sql::{Dialect, Queries};
pub use synthetic::{SyntheticClaim, SyntheticMember, bulk_load};

/// Members of a group whose cover started on one day.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrolmentCell {
    pub group: PricingGroup,
    pub coverage_start: NaiveDate,
    pub members: i64,
}

/// Claims of a group and benefit whose service fell in one month (`YYYY-MM`), with their
/// payments to the as-of date netted per claim.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimCell {
    pub group: PricingGroup,
    pub benefit: String,
    pub service_month: String,
    /// Claims with a ledger entry by the as-of date (paid, or counted towards the deductible).
    pub claims: i64,
    /// Of those, claims with a positive net payment.
    pub paid_claims: i64,
    pub paid_fen: i64,
    /// Sum over claims of the squared net payment, in fen squared (a statistic, not money).
    pub paid_fen_squared: f64,
}

/// Net payments made in one month on claims of one service month.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentCell {
    pub service_month: String,
    pub payment_month: String,
    pub paid_fen: i64,
}

/// Everything the study reads from the database.
#[derive(Debug, Clone)]
pub struct ExperienceData {
    pub product: StoredProduct,
    pub as_of: NaiveDate,
    pub enrolment: Vec<EnrolmentCell>,
    pub claims: Vec<ClaimCell>,
    pub payments: Vec<PaymentCell>,
    /// The case reserve of the product's treatment courses as of the date, by group.
    pub case_reserves: Vec<CaseReserveCell>,
}

/// Reads the aggregates of `product_id` up to and including `as_of` (China dates): three
/// GROUP BY queries, whose results are a few thousand rows whatever the portfolio's size.
pub fn read(
    conn: &mut DbConn,
    product_id: &str,
    as_of: NaiveDate,
) -> Result<ExperienceData, StoreError> {
    let product = products::current(conn, product_id)?;
    // First instant (UTC) after the as-of date in China.
    let cutoff = NaiveDateTime::new(as_of, NaiveTime::MIN) + Duration::hours(24 - 8);
    let queries = Queries::new(Dialect::of(conn));

    macro_rules! on_backend {
        ($conn:expr, |$c:ident| $body:expr) => {
            match $conn {
                DbConn::Postgres($c) => $body,
                DbConn::Sqlite($c) => $body,
            }
        };
    }
    // One read transaction, so the three aggregates see the same data; on PostgreSQL with room
    // for the hash joins and aggregates over a city's enrollments in memory rather than in
    // temporary files (the default work_mem is 4 MB).
    let (enrolment, claim_rows, payments, case_reserves) =
        conn.transaction::<_, StoreError, _>(|conn| {
            if let DbConn::Postgres(c) = conn {
                c.batch_execute("SET LOCAL work_mem = '256MB'")?;
            }
            let enrolment: Vec<EnrolmentRow> =
                on_backend!(conn, |c| diesel::sql_query(&queries.enrolment)
                    .bind::<Text, _>(product_id)
                    .bind::<diesel::sql_types::Date, _>(as_of)
                    .load(c)?);
            let claim_rows: Vec<ClaimRow> =
                on_backend!(conn, |c| diesel::sql_query(&queries.claims)
                    .bind::<Text, _>(product_id)
                    .bind::<Timestamp, _>(cutoff)
                    .bind::<diesel::sql_types::Date, _>(as_of)
                    .load(c)?);
            let payments: Vec<PaymentRow> =
                on_backend!(conn, |c| diesel::sql_query(&queries.payments)
                    .bind::<Text, _>(product_id)
                    .bind::<Timestamp, _>(cutoff)
                    .bind::<diesel::sql_types::Date, _>(as_of)
                    .load(c)?);
            let case_reserves =
                case_reserve::read(conn, &product.product, &queries, as_of, cutoff)?;
            Ok((enrolment, claim_rows, payments, case_reserves))
        })?;
    Ok(ExperienceData {
        product,
        as_of,
        enrolment: enrolment.into_iter().map(EnrolmentCell::from).collect(),
        claims: claim_rows.into_iter().map(ClaimCell::from).collect(),
        payments: payments.into_iter().map(PaymentCell::from).collect(),
        case_reserves,
    })
}

/// A group as read: the sex as stored from resident IDs (`male`, `female`), the pre-existing flag
/// as 0 or 1.
fn pricing_group(age_band: String, sex: String, preexisting: i32) -> PricingGroup {
    PricingGroup {
        age_band,
        sex: match sex.as_str() {
            "male" => "M".to_owned(),
            "female" => "F".to_owned(),
            _ => sex,
        },
        preexisting: preexisting != 0,
    }
}

impl From<EnrolmentRow> for EnrolmentCell {
    fn from(r: EnrolmentRow) -> Self {
        EnrolmentCell {
            group: pricing_group(r.age_band, r.sex, r.preexisting),
            coverage_start: r.coverage_start,
            members: r.members,
        }
    }
}

impl From<ClaimRow> for ClaimCell {
    fn from(r: ClaimRow) -> Self {
        ClaimCell {
            group: pricing_group(r.age_band, r.sex, r.preexisting),
            benefit: r.benefit,
            service_month: r.service_month,
            claims: r.claims,
            paid_claims: r.paid_claims,
            paid_fen: r.paid_fen,
            paid_fen_squared: r.paid_fen_squared,
        }
    }
}

impl From<PaymentRow> for PaymentCell {
    fn from(r: PaymentRow) -> Self {
        PaymentCell {
            service_month: r.service_month,
            payment_month: r.payment_month,
            paid_fen: r.paid_fen,
        }
    }
}

#[derive(QueryableByName)]
struct EnrolmentRow {
    #[diesel(sql_type = Text)]
    age_band: String,
    #[diesel(sql_type = Text)]
    sex: String,
    #[diesel(sql_type = Integer)]
    preexisting: i32,
    #[diesel(sql_type = diesel::sql_types::Date)]
    coverage_start: NaiveDate,
    #[diesel(sql_type = BigInt)]
    members: i64,
}

#[derive(QueryableByName)]
struct ClaimRow {
    #[diesel(sql_type = Text)]
    age_band: String,
    #[diesel(sql_type = Text)]
    sex: String,
    #[diesel(sql_type = Integer)]
    preexisting: i32,
    #[diesel(sql_type = Text)]
    benefit: String,
    #[diesel(sql_type = Text)]
    service_month: String,
    #[diesel(sql_type = BigInt)]
    claims: i64,
    #[diesel(sql_type = BigInt)]
    paid_claims: i64,
    #[diesel(sql_type = BigInt)]
    paid_fen: i64,
    #[diesel(sql_type = Double)]
    paid_fen_squared: f64,
}

#[derive(QueryableByName)]
struct PaymentRow {
    #[diesel(sql_type = Text)]
    service_month: String,
    #[diesel(sql_type = Text)]
    payment_month: String,
    #[diesel(sql_type = BigInt)]
    paid_fen: i64,
}
