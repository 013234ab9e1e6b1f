//! The experience study's reads: exposure, claims and the payment triangle of one product,
//! aggregated in the database (GROUP BY), never by loading every claim; and a bulk loader that
//! fills a database with a synthetic portfolio for tests and benchmarks.
//!
//! Pricing groups are the morbidity table's: the age band at the start of the policy period
//! (from the birth date derived from the resident ID at enrolment), sex, and whether the member
//! declared a pre-existing condition. Payments are the ledger entries (decisions add them,
//! reversals add the negated entries), so summing a claim's entries nets its reversals. Dates are
//! China time: a ledger entry written at 17:00 UTC on 31 March belongs to 1 April.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Integer, Text, Timestamp};

use crate::db::{DbConn, write_transaction};
use crate::error::StoreError;
use crate::schema::{claims, enrollments, ledger_entries, members};
use crate::store::products::{self, StoredProduct};

/// Age bands of the pricing groups, as in the population morbidity table: (label, lowest age).
pub const AGE_BANDS: [(&str, u32); 7] = [
    ("0-17", 0),
    ("18-39", 18),
    ("40-54", 40),
    ("55-64", 55),
    ("65-74", 65),
    ("75-84", 75),
    ("85+", 85),
];

/// A pricing group: `age_band/sex/condition_group` as in the scenarios (sex `M` or `F`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PricingGroup {
    pub age_band: String,
    pub sex: String,
    pub preexisting: bool,
}

impl PricingGroup {
    pub fn id(&self) -> String {
        format!(
            "{}/{}/{}",
            self.age_band,
            self.sex,
            if self.preexisting {
                "preexisting"
            } else {
                "standard"
            }
        )
    }
}

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
}

/// Reads the aggregates of `product_id` up to and including `as_of` (China dates): three
/// GROUP BY queries, whose results are a few thousand rows whatever the portfolio's size.
pub fn read(
    conn: &mut DbConn,
    product_id: &str,
    as_of: NaiveDate,
) -> Result<ExperienceData, StoreError> {
    let product = products::current(conn, product_id)?;
    let reference = product.product.period_start;
    // First instant (UTC) after the as-of date in China.
    let cutoff = NaiveDateTime::new(as_of, NaiveTime::MIN) + Duration::hours(24 - 8);
    let band = age_band_sql(reference)?;
    let dialect = Dialect::of(conn);
    let p = |n: usize| dialect.placeholder(n);

    let enrolment_sql = format!(
        "SELECT {band} AS age_band, m.sex AS sex, \
           CASE WHEN e.declared_conditions <> '[]' THEN 1 ELSE 0 END AS preexisting, \
           e.coverage_start AS coverage_start, CAST(COUNT(*) AS BIGINT) AS members \
         FROM enrollments e JOIN members m ON m.id = e.member_id \
         WHERE e.product_id = {} AND e.coverage_start <= {} \
         GROUP BY 1, 2, 3, 4",
        p(1),
        p(2)
    );
    let claims_sql = format!(
        "SELECT {band} AS age_band, m.sex AS sex, \
           CASE WHEN e.declared_conditions <> '[]' THEN 1 ELSE 0 END AS preexisting, \
           x.benefit AS benefit, {service_month} AS service_month, \
           CAST(COUNT(*) AS BIGINT) AS claims, \
           CAST(SUM(CASE WHEN x.net > 0 THEN 1 ELSE 0 END) AS BIGINT) AS paid_claims, \
           CAST(SUM(x.net) AS BIGINT) AS paid_fen, \
           SUM(CAST(x.net AS {real}) * CAST(x.net AS {real})) AS paid_fen_squared \
         FROM (SELECT l.claim_id AS claim_id, l.benefit AS benefit, SUM(l.paid_fen) AS net \
               FROM ledger_entries l WHERE l.product_id = {} AND l.created_at < {} \
               GROUP BY l.claim_id, l.benefit) x \
         JOIN claims c ON c.id = x.claim_id \
         JOIN enrollments e ON e.id = c.enrollment_id \
         JOIN members m ON m.id = c.member_id \
         WHERE c.service_date <= {} \
         GROUP BY 1, 2, 3, 4, 5",
        p(1),
        p(2),
        p(3),
        service_month = dialect.month("c.service_date"),
        real = dialect.real(),
    );
    let payments_sql = format!(
        "SELECT {service_month} AS service_month, {payment_month} AS payment_month, \
           CAST(SUM(l.paid_fen) AS BIGINT) AS paid_fen \
         FROM ledger_entries l JOIN claims c ON c.id = l.claim_id \
         WHERE l.product_id = {} AND l.created_at < {} AND c.service_date <= {} \
         GROUP BY 1, 2",
        p(1),
        p(2),
        p(3),
        service_month = dialect.month("c.service_date"),
        payment_month = dialect.china_month("l.created_at"),
    );

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
    let (enrolment, claim_rows, payments) = conn.transaction::<_, StoreError, _>(|conn| {
        if let DbConn::Postgres(c) = conn {
            c.batch_execute("SET LOCAL work_mem = '256MB'")?;
        }
        let enrolment: Vec<EnrolmentRow> = on_backend!(conn, |c| diesel::sql_query(&enrolment_sql)
            .bind::<Text, _>(product_id)
            .bind::<diesel::sql_types::Date, _>(as_of)
            .load(c)?);
        let claim_rows: Vec<ClaimRow> = on_backend!(conn, |c| diesel::sql_query(&claims_sql)
            .bind::<Text, _>(product_id)
            .bind::<Timestamp, _>(cutoff)
            .bind::<diesel::sql_types::Date, _>(as_of)
            .load(c)?);
        let payments: Vec<PaymentRow> = on_backend!(conn, |c| diesel::sql_query(&payments_sql)
            .bind::<Text, _>(product_id)
            .bind::<Timestamp, _>(cutoff)
            .bind::<diesel::sql_types::Date, _>(as_of)
            .load(c)?);
        Ok((enrolment, claim_rows, payments))
    })?;
    let group = |age_band: String, sex: String, preexisting: i32| PricingGroup {
        age_band,
        sex: match sex.as_str() {
            "male" => "M".to_owned(),
            "female" => "F".to_owned(),
            _ => sex,
        },
        preexisting: preexisting != 0,
    };
    Ok(ExperienceData {
        product,
        as_of,
        enrolment: enrolment
            .into_iter()
            .map(|r| EnrolmentCell {
                group: group(r.age_band, r.sex, r.preexisting),
                coverage_start: r.coverage_start,
                members: r.members,
            })
            .collect(),
        claims: claim_rows
            .into_iter()
            .map(|r| ClaimCell {
                group: group(r.age_band, r.sex, r.preexisting),
                benefit: r.benefit,
                service_month: r.service_month,
                claims: r.claims,
                paid_claims: r.paid_claims,
                paid_fen: r.paid_fen,
                paid_fen_squared: r.paid_fen_squared,
            })
            .collect(),
        payments: payments
            .into_iter()
            .map(|r| PaymentCell {
                service_month: r.service_month,
                payment_month: r.payment_month,
                paid_fen: r.paid_fen,
            })
            .collect(),
    })
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

/// The few expressions the two backends spell differently.
#[derive(Clone, Copy)]
enum Dialect {
    Postgres,
    Sqlite,
}

impl Dialect {
    fn of(conn: &DbConn) -> Self {
        match conn {
            DbConn::Postgres(_) => Dialect::Postgres,
            DbConn::Sqlite(_) => Dialect::Sqlite,
        }
    }

    fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            Dialect::Sqlite => format!("?{n}"),
        }
    }

    fn month(self, date: &str) -> String {
        match self {
            Dialect::Postgres => format!("to_char({date}, 'YYYY-MM')"),
            Dialect::Sqlite => format!("strftime('%Y-%m', {date})"),
        }
    }

    /// The China-time month of a UTC timestamp.
    fn china_month(self, timestamp: &str) -> String {
        match self {
            Dialect::Postgres => format!("to_char({timestamp} + interval '8 hours', 'YYYY-MM')"),
            Dialect::Sqlite => format!("strftime('%Y-%m', {timestamp}, '+8 hours')"),
        }
    }

    fn real(self) -> &'static str {
        match self {
            Dialect::Postgres => "DOUBLE PRECISION",
            Dialect::Sqlite => "REAL",
        }
    }
}

/// `CASE` mapping a birth date to the age band reached by `reference`: a member is at least
/// `age` on that day when born on or before the same day `age` years earlier. The dates are
/// computed here and written as ISO literals, which compare as dates on PostgreSQL and as text
/// in SQLite's date columns alike.
fn age_band_sql(reference: NaiveDate) -> Result<String, StoreError> {
    let mut sql = String::from("CASE");
    for &(label, age) in AGE_BANDS.iter().rev() {
        if age == 0 {
            continue;
        }
        let born_by = years_before(reference, age).ok_or_else(|| {
            StoreError::integrity(format!("no date {age} years before {reference}"))
        })?;
        sql.push_str(&format!(
            " WHEN m.birth_date <= '{}' THEN '{label}'",
            born_by.format("%Y-%m-%d")
        ));
    }
    sql.push_str(&format!(" ELSE '{}' END", AGE_BANDS[0].0));
    Ok(sql)
}

/// The same day `years` years earlier (28 February for a 29 February in a common year).
pub fn years_before(date: NaiveDate, years: u32) -> Option<NaiveDate> {
    let year = date.year() - i32::try_from(years).ok()?;
    NaiveDate::from_ymd_opt(year, date.month(), date.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, date.month(), 28))
}

/// One synthetic member for [`bulk_load`].
#[derive(Debug, Clone)]
pub struct SyntheticMember {
    pub birth_date: NaiveDate,
    /// `male` or `female`, as stored from resident IDs.
    pub sex: &'static str,
    pub declared_conditions: &'static str,
    pub coverage_start: NaiveDate,
}

/// One synthetic claim for [`bulk_load`]: whose (index into the members), which benefit, when,
/// and its ledger payments (UTC time, fen; a reversal is a negative payment).
#[derive(Debug, Clone)]
pub struct SyntheticClaim {
    pub member: usize,
    pub benefit: &'static str,
    pub service_date: NaiveDate,
    pub payments: Vec<(NaiveDateTime, i64)>,
}

/// Rows per multi-row INSERT: at most 11 columns, far below both backends' bound-parameter
/// limits.
const BULK_ROWS: usize = 2_000;

/// Fills the database with a synthetic portfolio of `product_id` in bulk (multi-row INSERTs in
/// one transaction per chunk), without adjudicating: members, enrollments, claims and the
/// ledger entries the study reads. For tests and the experience benchmark, never for real data
/// (no audit events, no decisions). `serial` makes resident-ID hashes unique across calls.
pub fn bulk_load(
    conn: &mut DbConn,
    product_id: &str,
    serial: &str,
    synthetic_members: &[SyntheticMember],
    synthetic_claims: &[SyntheticClaim],
    now: NaiveDateTime,
) -> Result<(), StoreError> {
    let product = products::current(conn, product_id)?;
    let mut member_ids: Vec<i64> = Vec::with_capacity(synthetic_members.len());
    let mut enrollment_ids: Vec<i64> = Vec::with_capacity(synthetic_members.len());
    for (chunk_index, chunk) in synthetic_members.chunks(BULK_ROWS).enumerate() {
        let (ids, eids) = write_transaction(conn, |conn| {
            let base = chunk_index * BULK_ROWS;
            let hashes: Vec<String> = (0..chunk.len())
                .map(|i| format!("synthetic:{serial}:{}", base + i))
                .collect();
            let rows: Vec<_> = chunk
                .iter()
                .zip(&hashes)
                .map(|(m, hash)| {
                    (
                        members::resident_id_hash.eq(hash.as_str()),
                        members::resident_id_masked.eq("synthetic"),
                        members::name.eq("synthetic"),
                        members::phone.eq(""),
                        members::birth_date.eq(m.birth_date),
                        members::sex.eq(m.sex),
                        members::created_at.eq(now),
                    )
                })
                .collect();
            let ids: Vec<i64> = match conn {
                DbConn::Postgres(c) => diesel::insert_into(members::table)
                    .values(&rows)
                    .returning(members::id)
                    .get_results(c)?,
                DbConn::Sqlite(c) => diesel::insert_into(members::table)
                    .values(&rows)
                    .returning(members::id)
                    .get_results(c)?,
            };
            let rows: Vec<_> = chunk
                .iter()
                .zip(&ids)
                .map(|(m, &id)| {
                    (
                        enrollments::member_id.eq(id),
                        enrollments::product_id.eq(product_id),
                        enrollments::product_version_id.eq(product.version_id),
                        enrollments::insurance_type.eq("urban_employee"),
                        enrollments::declared_conditions.eq(m.declared_conditions),
                        enrollments::enrolled_on.eq(m.coverage_start),
                        enrollments::coverage_start.eq(m.coverage_start),
                        enrollments::waiting_waived.eq(false),
                        enrollments::enrolled_by.eq("synthetic"),
                        enrollments::created_at.eq(now),
                    )
                })
                .collect();
            let eids: Vec<i64> = match conn {
                DbConn::Postgres(c) => diesel::insert_into(enrollments::table)
                    .values(&rows)
                    .returning(enrollments::id)
                    .get_results(c)?,
                DbConn::Sqlite(c) => diesel::insert_into(enrollments::table)
                    .values(&rows)
                    .returning(enrollments::id)
                    .get_results(c)?,
            };
            Ok::<_, StoreError>((ids, eids))
        })?;
        member_ids.extend(ids);
        enrollment_ids.extend(eids);
    }
    for chunk in synthetic_claims.chunks(BULK_ROWS) {
        write_transaction(conn, |conn| {
            for c in chunk {
                if c.member >= member_ids.len() {
                    return Err(StoreError::integrity(format!(
                        "synthetic claim names member {} of {}",
                        c.member,
                        member_ids.len()
                    )));
                }
            }
            let rows: Vec<_> = chunk
                .iter()
                .map(|c| {
                    (
                        claims::member_id.eq(member_ids[c.member]),
                        claims::enrollment_id.eq(enrollment_ids[c.member]),
                        claims::product_version_id.eq(product.version_id),
                        claims::kind.eq(c.benefit),
                        claims::service_date.eq(c.service_date),
                        claims::provider_id.eq("synthetic"),
                        claims::submission.eq("{}"),
                        claims::submitted_by.eq("synthetic"),
                        claims::created_at.eq(now),
                    )
                })
                .collect();
            let ids: Vec<i64> = match conn {
                DbConn::Postgres(c) => diesel::insert_into(claims::table)
                    .values(&rows)
                    .returning(claims::id)
                    .get_results(c)?,
                DbConn::Sqlite(c) => diesel::insert_into(claims::table)
                    .values(&rows)
                    .returning(claims::id)
                    .get_results(c)?,
            };
            let ledger: Vec<_> = chunk
                .iter()
                .zip(&ids)
                .flat_map(|(c, &claim_id)| {
                    let member_id = member_ids[c.member];
                    c.payments.iter().map(move |&(at, paid)| {
                        (
                            ledger_entries::member_id.eq(member_id),
                            ledger_entries::product_id.eq(product_id),
                            ledger_entries::benefit.eq(c.benefit),
                            ledger_entries::claim_id.eq(claim_id),
                            ledger_entries::item_index.eq(0),
                            ledger_entries::deductible_fen.eq(0_i64),
                            ledger_entries::paid_fen.eq(paid),
                            ledger_entries::created_at.eq(at),
                        )
                    })
                })
                .collect();
            for part in ledger.chunks(BULK_ROWS) {
                match conn {
                    DbConn::Postgres(c) => diesel::insert_into(ledger_entries::table)
                        .values(part)
                        .execute(c)?,
                    DbConn::Sqlite(c) => diesel::insert_into(ledger_entries::table)
                        .values(part)
                        .execute(c)?,
                };
            }
            Ok::<_, StoreError>(())
        })?;
    }
    Ok(())
}
