//! Enrollment, members and what is left of their cover.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::audit;
use crate::db::{DbConn, write_transaction};
use crate::domain::ValidationErrors;
use crate::domain::adjudication::{Balance, BenefitBalance, MemberCover};
use crate::domain::canonical::canonical_json;
use crate::domain::claim::BenefitKind;
use crate::domain::codes::Icd10Code;
use crate::domain::enrollment::{
    EnrollmentRequest, ValidEnrollment, check_enrollment_window, first_covered_day,
    validate_enrollment_details, waiting_waived,
};
use crate::domain::money::Fen;
use crate::domain::pricing_group::age_band_on;
use crate::domain::product::BenefitTerms;
use crate::error::StoreError;
use crate::schema::{enrollments, members};
use crate::store::authorizations::CourseCover;
use crate::store::ledger::{member_balances, terms_of};
use crate::store::products::StoredProduct;
use crate::store::{Recorded, WriteContext, idempotency, products};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = members)]
pub struct MemberRow {
    pub id: i64,
    pub resident_id_hash: String,
    pub resident_id_masked: String,
    pub name: String,
    pub phone: String,
    pub birth_date: NaiveDate,
    pub sex: String,
    pub created_at: NaiveDateTime,
}

/// Deserialize: the claim writer on PostgreSQL reads a batch's rows as JSON
/// (`json_agg` of whole rows, so the field names are the columns').
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Deserialize)]
#[diesel(table_name = enrollments)]
pub struct EnrollmentRow {
    pub id: i64,
    pub member_id: i64,
    pub product_id: String,
    pub product_version_id: i64,
    pub insurance_type: String,
    pub declared_conditions: String,
    pub enrolled_on: NaiveDate,
    pub coverage_start: NaiveDate,
    pub waiting_waived: bool,
    pub enrolled_by: String,
    pub created_at: NaiveDateTime,
}

impl EnrollmentRow {
    pub fn declared(&self) -> Result<Vec<Icd10Code>, StoreError> {
        Ok(serde_json::from_str(&self.declared_conditions)?)
    }

    /// What adjudication needs to know of this enrollment.
    pub fn cover(&self) -> Result<MemberCover, StoreError> {
        Ok(MemberCover {
            coverage_start: self.coverage_start,
            waiting_waived: self.waiting_waived,
            declared_conditions: self.declared()?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnrollmentView {
    pub id: i64,
    pub product_id: String,
    pub product_version_id: i64,
    #[schema(value_type = crate::domain::enrollment::InsuranceType)]
    pub insurance_type: String,
    pub declared_conditions: Vec<Icd10Code>,
    pub enrolled_on: NaiveDate,
    pub coverage_start: NaiveDate,
    pub coverage_end: NaiveDate,
    /// The first day claims are paid: after the waiting period, unless waived.
    pub first_covered_day: NaiveDate,
    pub waiting_waived: bool,
}

/// What the app shows about a member. The resident ID appears only masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberView {
    pub id: i64,
    pub resident_id_masked: String,
    pub name: String,
    pub phone: String,
    pub birth_date: NaiveDate,
    #[schema(pattern = "^(male|female)$")]
    pub sex: String,
    pub enrollments: Vec<EnrollmentView>,
}

/// The answer to an enrollment: the member with the new enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Enrolled {
    pub member: MemberView,
    pub enrollment_id: i64,
}

#[derive(Insertable)]
#[diesel(table_name = members)]
struct NewMember<'a> {
    resident_id_hash: &'a str,
    resident_id_masked: &'a str,
    name: &'a str,
    phone: &'a str,
    birth_date: NaiveDate,
    sex: &'a str,
    created_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = enrollments)]
struct NewEnrollment<'a> {
    member_id: i64,
    product_id: &'a str,
    product_version_id: i64,
    insurance_type: &'a str,
    declared_conditions: &'a str,
    enrolled_on: NaiveDate,
    coverage_start: NaiveDate,
    waiting_waived: bool,
    enrolled_by: &'a str,
    created_at: NaiveDateTime,
    /// The pricing group (see [`crate::domain::pricing_group`]).
    age_band: &'a str,
    sex: &'a str,
    preexisting: bool,
}

/// Enrols a person in a product. Returns the member view with the new
/// enrollment; a retry with the same idempotency key and request returns the
/// stored view. One enrollment per resident ID per product.
pub fn enroll(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    idempotency_key: &str,
    request: &EnrollmentRequest,
) -> Result<Recorded<Enrolled>, StoreError> {
    write_transaction(conn, |conn| {
        let product = match products::current(conn, &request.product_id) {
            Ok(p) => p,
            Err(StoreError::NotFound { .. }) => {
                return Err(StoreError::Validation(ValidationErrors::unknown_product(
                    "product_id",
                    &request.product_id,
                )));
            }
            Err(e) => return Err(e),
        };
        // The window is checked inside the effect, after the idempotency
        // key: a retry of an enrollment made while the window was open gets
        // the stored response, also once the window has closed.
        let today = ctx.today_china();
        let window = check_enrollment_window(&product.product, today);
        let valid = match validate_enrollment_details(request, &product.product, today) {
            Ok(valid) => valid,
            Err(details) => {
                let mut errors = window.err().unwrap_or_default();
                errors.extend(details);
                return Err(StoreError::Validation(errors));
            }
        };
        // Compared for idempotency with the ID number only as its keyed hash.
        let canonical = canonical_json(&valid.canonical_json(&ctx.keys.resident_id));
        idempotency::once(
            conn,
            ctx,
            idempotency_key,
            "enrollment",
            &canonical,
            |conn| {
                window.map_err(StoreError::Validation)?;
                store_enrollment(conn, ctx, &product, &valid)
            },
        )
    })
}

/// Finds or adds the member, then adds their enrollment in `product`.
fn store_enrollment(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    product: &StoredProduct,
    valid: &ValidEnrollment,
) -> Result<Enrolled, StoreError> {
    let id_hash = valid.resident_id.keyed_hash(&ctx.keys.resident_id);
    let now = audit::truncate_to_micros(ctx.now.naive_utc());
    let existing = members::table
        .filter(members::resident_id_hash.eq(&id_hash))
        .select(members::id)
        .first::<i64>(conn)
        .optional()?;
    let member_id = match existing {
        Some(id) => id,
        None => diesel::insert_into(members::table)
            .values(NewMember {
                resident_id_hash: &id_hash,
                resident_id_masked: &valid.resident_id.masked(),
                name: &valid.name,
                phone: &valid.phone,
                birth_date: valid.resident_id.birth_date(),
                sex: valid.resident_id.sex().as_str(),
                created_at: now,
            })
            .returning(members::id)
            .get_result(conn)?,
    };
    let enrolled_in: Vec<String> = enrollments::table
        .filter(enrollments::member_id.eq(member_id))
        .select(enrollments::product_id)
        .load(conn)?;
    if enrolled_in.contains(&product.product.id) {
        return Err(StoreError::conflict(
            "already_enrolled",
            format!(
                "this resident ID is already enrolled in product {}",
                product.product.id
            ),
        ));
    }
    let waiting_waived = waiting_waived(&product.product, enrolled_in.iter().map(String::as_str));
    let declared = serde_json::to_string(&valid.declared)?;
    let enrollment_id: i64 = diesel::insert_into(enrollments::table)
        .values(NewEnrollment {
            member_id,
            product_id: &product.product.id,
            product_version_id: product.version_id,
            insurance_type: valid.insurance_type.as_str(),
            declared_conditions: &declared,
            enrolled_on: ctx.today_china(),
            coverage_start: valid.coverage_start,
            waiting_waived,
            enrolled_by: ctx.actor,
            created_at: now,
            age_band: age_band_on(valid.resident_id.birth_date(), product.product.period_start),
            sex: valid.resident_id.sex().as_str(),
            preexisting: !valid.declared.is_empty(),
        })
        .returning(enrollments::id)
        .get_result(conn)?;
    audit::append(
        conn,
        &ctx.keys.audit,
        ctx.now,
        ctx.actor,
        "enrollment.created",
        &format!("member:{member_id}"),
        &serde_json::json!({
            "member_id": member_id,
            "enrollment_id": enrollment_id,
            "product_id": product.product.id,
            "product_version_id": product.version_id,
            "coverage_start": valid.coverage_start,
            "waiting_waived": waiting_waived,
            "new_member": existing.is_none(),
        }),
    )?;
    Ok(Enrolled {
        member: member(conn, member_id)?,
        enrollment_id,
    })
}

pub fn member_row(conn: &mut DbConn, member_id: i64) -> Result<MemberRow, StoreError> {
    members::table
        .find(member_id)
        .select(MemberRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| StoreError::not_found("member", member_id))
}

pub fn enrollment_rows(
    conn: &mut DbConn,
    member_id: i64,
) -> Result<Vec<EnrollmentRow>, StoreError> {
    Ok(enrollments::table
        .filter(enrollments::member_id.eq(member_id))
        .order(enrollments::id.asc())
        .select(EnrollmentRow::as_select())
        .load(conn)?)
}

fn enrollment_view(conn: &mut DbConn, row: &EnrollmentRow) -> Result<EnrollmentView, StoreError> {
    let product = products::current(conn, &row.product_id)?;
    enrollment_view_of(row, &product)
}

fn enrollment_view_of(
    row: &EnrollmentRow,
    product: &StoredProduct,
) -> Result<EnrollmentView, StoreError> {
    Ok(EnrollmentView {
        id: row.id,
        product_id: row.product_id.clone(),
        product_version_id: row.product_version_id,
        insurance_type: row.insurance_type.clone(),
        declared_conditions: row.declared()?,
        enrolled_on: row.enrolled_on,
        coverage_start: row.coverage_start,
        coverage_end: product.product.period_end,
        first_covered_day: first_covered_day(
            row.coverage_start,
            product.product.waiting_days,
            row.waiting_waived,
        ),
        waiting_waived: row.waiting_waived,
    })
}

pub fn member(conn: &mut DbConn, member_id: i64) -> Result<MemberView, StoreError> {
    let row = member_row(conn, member_id)?;
    let enrollments = enrollment_rows(conn, member_id)?
        .iter()
        .map(|e| enrollment_view(conn, e))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MemberView {
        id: row.id,
        resident_id_masked: row.resident_id_masked,
        name: row.name,
        phone: row.phone,
        birth_date: row.birth_date,
        sex: row.sex,
        enrollments,
    })
}

/// One benefit on the "my cover" screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BenefitCover {
    pub benefit: BenefitKind,
    pub deductible: Fen,
    pub deductible_met: Fen,
    pub deductible_left: Fen,
    pub annual_limit: Fen,
    pub limit_used: Fen,
    pub limit_left: Fen,
    /// The share the product pays, a decimal string in [0, 1].
    #[schema(value_type = String, pattern = r"^(0(\.[0-9]+)?|1(\.0+)?)$")]
    pub coinsurance: rust_decimal::Decimal,
    #[schema(value_type = String, pattern = r"^(0(\.[0-9]+)?|1(\.0+)?)$")]
    pub coinsurance_preexisting: rust_decimal::Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductCover {
    pub product_id: String,
    pub product_name: String,
    pub enrollment: EnrollmentView,
    pub benefits: Vec<BenefitCover>,
    /// The member's treatment courses under this product active on the day
    /// of the screen (empty from [`coverage`], which knows no day;
    /// see [`crate::store::authorizations::coverage_on`]).
    #[serde(default)]
    pub courses: Vec<CourseCover>,
    /// The case reserve of all the member's courses under this product as
    /// of that day, capped at the drug limit left (0 from [`coverage`]).
    #[serde(default)]
    pub case_reserve: Fen,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CoverageView {
    pub member_id: i64,
    pub products: Vec<ProductCover>,
}

fn benefit_cover(
    kind: BenefitKind,
    terms: &BenefitTerms,
    balance: Balance,
) -> Result<BenefitCover, StoreError> {
    // What is left is floored at zero: balances never exceed the terms (the
    // ledger is checked on every write), but a product version with lower
    // terms loaded later could make them.
    let cover = BenefitBalance::of(terms, balance).map_err(|e| {
        StoreError::integrity(format!("balance of {} overflows: {e}", kind.as_str()))
    })?;
    Ok(BenefitCover {
        benefit: kind,
        deductible: cover.deductible,
        deductible_met: cover.deductible_met,
        deductible_left: cover.deductible_left,
        annual_limit: cover.annual_limit,
        limit_used: cover.limit_used,
        limit_left: cover.limit_left,
        coinsurance: terms.coinsurance,
        coinsurance_preexisting: terms.coinsurance_preexisting,
    })
}

/// Deductible met and left, limit used and left, per benefit and product.
pub fn coverage(conn: &mut DbConn, member_id: i64) -> Result<CoverageView, StoreError> {
    Ok(coverage_with_rows(conn, member_id)?.0)
}

/// [`coverage`] with the enrollment rows and current products it was read
/// from, one per entry of `products`, for a caller that adds to the screen.
pub(crate) fn coverage_with_rows(
    conn: &mut DbConn,
    member_id: i64,
) -> Result<(CoverageView, Vec<(EnrollmentRow, StoredProduct)>), StoreError> {
    member_row(conn, member_id)?;
    let mut products_cover = Vec::new();
    let mut sources = Vec::new();
    for row in enrollment_rows(conn, member_id)? {
        let product = products::current(conn, &row.product_id)?;
        let balances = member_balances(conn, member_id, &row.product_id)?;
        let benefits = [BenefitKind::Inpatient, BenefitKind::SpecialtyDrug]
            .into_iter()
            .filter_map(|kind| {
                terms_of(&product, kind).map(|terms| benefit_cover(kind, terms, balances.of(kind)))
            })
            .collect::<Result<_, _>>()?;
        products_cover.push(ProductCover {
            product_id: row.product_id.clone(),
            product_name: product.product.name.clone(),
            enrollment: enrollment_view_of(&row, &product)?,
            benefits,
            courses: Vec::new(),
            case_reserve: Fen::ZERO,
        });
        sources.push((row, product));
    }
    let view = CoverageView {
        member_id,
        products: products_cover,
    };
    Ok((view, sources))
}
