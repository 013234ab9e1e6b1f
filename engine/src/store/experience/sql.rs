//! The SQL of the study's three aggregates, in each backend's spelling.

use crate::db::DbConn;

/// The three aggregate queries of [`super::read`]; placeholders: product id, the cutoff instant
/// (UTC) and the as-of date, in that order (the enrolment query takes the product id and date).
pub(super) struct Queries {
    pub(super) enrolment: String,
    pub(super) claims: String,
    pub(super) payments: String,
    /// The members with a course under the product: their pricing group, declared conditions
    /// and drug benefit paid before the cutoff (placeholders: product id, cutoff).
    pub(super) course_members: String,
    /// The cycles of the product's courses paid by the cutoff on claims not reversed by then
    /// (placeholders: product id, cutoff).
    pub(super) dispensed: String,
}

impl Queries {
    pub(super) fn new(dialect: Dialect) -> Self {
        let p = |n: usize| dialect.placeholder(n);

        // The pricing group as recorded on each enrollment: exposure is one GROUP BY over the
        // enrollments index `enrollments_exposure`, which holds every column it reads.
        let enrolment = format!(
            "SELECT e.age_band AS age_band, e.sex AS sex, \
               CASE WHEN e.preexisting THEN 1 ELSE 0 END AS preexisting, \
               e.coverage_start AS coverage_start, CAST(COUNT(*) AS BIGINT) AS members \
             FROM enrollments e \
             WHERE e.product_id = {} AND e.coverage_start <= {} \
             GROUP BY e.age_band, e.sex, e.preexisting, e.coverage_start",
            p(1),
            p(2)
        );
        let claims = format!(
            "SELECT e.age_band AS age_band, e.sex AS sex, \
               CASE WHEN e.preexisting THEN 1 ELSE 0 END AS preexisting, \
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
             WHERE c.service_date <= {} \
             GROUP BY 1, 2, 3, 4, 5",
            p(1),
            p(2),
            p(3),
            service_month = dialect.month("c.service_date"),
            real = dialect.real(),
        );
        let payments = format!(
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
        let course_members = format!(
            "SELECT e.member_id AS member_id, e.age_band AS age_band, e.sex AS sex, \
               CASE WHEN e.preexisting THEN 1 ELSE 0 END AS preexisting, \
               e.declared_conditions AS declared_conditions, \
               CAST(COALESCE((SELECT SUM(l.paid_fen) FROM ledger_entries l \
                 WHERE l.member_id = e.member_id AND l.product_id = e.product_id \
                   AND l.benefit = 'specialty_drug' AND l.created_at < {cutoff}), 0) AS BIGINT) \
                 AS drug_paid_fen \
             FROM enrollments e \
             WHERE e.product_id = {product} \
               AND e.member_id IN (SELECT a.member_id FROM authorizations a \
                                   WHERE a.product_id = {product})",
            product = p(1),
            cutoff = p(2),
        );
        let dispensed = format!(
            "SELECT p.authorization_id AS authorization_id, p.cycle AS cycle \
             FROM paid_items p \
             JOIN authorizations a ON a.id = p.authorization_id \
             JOIN decisions d ON d.id = p.decision_id \
             WHERE a.product_id = {product} AND p.cycle IS NOT NULL AND d.created_at < {cutoff} \
               AND NOT EXISTS (SELECT 1 FROM reversals r \
                               WHERE r.claim_id = p.claim_id AND r.created_at < {cutoff})",
            product = p(1),
            cutoff = p(2),
        );
        Queries {
            enrolment,
            claims,
            payments,
            course_members,
            dispensed,
        }
    }
}

/// The few expressions the two backends spell differently.
#[derive(Clone, Copy)]
pub(super) enum Dialect {
    Postgres,
    Sqlite,
}

impl Dialect {
    pub(super) fn of(conn: &DbConn) -> Self {
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
