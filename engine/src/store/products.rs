//! Products are stored versioned: loading a changed file adds a version, and
//! every enrollment and decision records the version it was made under.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::audit;
use crate::db::DbConn;
use crate::domain::product::Product;
use crate::error::StoreError;
use crate::schema::product_versions;
use crate::store::WriteContext;

/// Deserialize: the claim writer on PostgreSQL reads a batch's rows as JSON.
#[derive(Debug, Clone, Queryable, Selectable, Deserialize)]
#[diesel(table_name = product_versions)]
pub struct ProductVersionRow {
    pub id: i64,
    pub product_id: String,
    pub version: i32,
    pub content_hash: String,
    pub period_start: chrono::NaiveDate,
    pub period_end: chrono::NaiveDate,
    pub body: String,
    pub loaded_by: String,
    pub loaded_at: NaiveDateTime,
}

/// A stored product version with its decoded terms.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredProduct {
    pub version_id: i64,
    pub version: i32,
    pub content_hash: String,
    #[serde(with = "crate::store::utc")]
    #[schema(value_type = String, format = DateTime)]
    pub loaded_at: NaiveDateTime,
    #[serde(flatten)]
    #[schema(schema_with = product_fields)]
    pub product: Product,
}

/// [`Product`]'s schema as a part of [`StoredProduct`]'s: on its own it has
/// no other fields (it is read with `deny_unknown_fields`), here the
/// version's sit beside them.
fn product_fields() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;
    let mut schema = <Product as utoipa::PartialSchema>::schema();
    if let RefOr::T(Schema::Object(object)) = &mut schema {
        object.additional_properties = None;
    }
    schema
}

impl TryFrom<ProductVersionRow> for StoredProduct {
    type Error = StoreError;

    fn try_from(row: ProductVersionRow) -> Result<Self, StoreError> {
        let product = match decoded::get(&row.body, &row.content_hash) {
            Some(product) => product,
            None => {
                let product: Product = serde_json::from_str(&row.body)?;
                if product.content_hash() != row.content_hash {
                    return Err(StoreError::integrity(format!(
                        "product {} version {} does not match its content hash",
                        row.product_id, row.version
                    )));
                }
                decoded::put(&row.body, &row.content_hash, &product);
                product
            }
        };
        Ok(StoredProduct {
            version_id: row.id,
            version: row.version,
            content_hash: row.content_hash,
            loaded_at: row.loaded_at,
            product,
        })
    }
}

/// Products decoded and checked against their content hash, by stored body.
///
/// Every claim reads the terms it is decided under; decoding the JSON and
/// recomputing the SHA-256 content hash each time cost more than the rest of
/// the adjudication. A body that was decoded and verified once decodes to
/// the same product again, so the cache is keyed by the body text itself:
/// a row whose body or hash was changed in the database misses the cache and
/// is verified afresh, and one process may serve several databases.
mod decoded {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};

    use crate::domain::product::Product;

    /// Product versions are few; past this the cache starts over.
    const CAPACITY: usize = 256;

    /// Body text -> (content hash it was verified against, product).
    type Cache = Mutex<HashMap<Arc<str>, (String, Product)>>;

    fn cache() -> &'static Cache {
        static CACHE: OnceLock<Cache> = OnceLock::new();
        CACHE.get_or_init(|| Mutex::new(HashMap::new()))
    }

    /// The product of a body already verified against `content_hash`.
    pub(super) fn get(body: &str, content_hash: &str) -> Option<Product> {
        // A poisoned lock only means another thread panicked while holding
        // it; every entry in the map is complete, so it is still usable.
        let map = cache().lock().unwrap_or_else(|p| p.into_inner());
        map.get(body)
            .filter(|(hash, _)| hash == content_hash)
            .map(|(_, product)| product.clone())
    }

    pub(super) fn put(body: &str, content_hash: &str, product: &Product) {
        let mut map = cache().lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(Arc::from(body), (content_hash.to_owned(), product.clone()));
    }
}

#[derive(Insertable)]
#[diesel(table_name = product_versions)]
struct NewProductVersion<'a> {
    product_id: &'a str,
    version: i32,
    content_hash: &'a str,
    period_start: chrono::NaiveDate,
    period_end: chrono::NaiveDate,
    body: &'a str,
    loaded_by: &'a str,
    loaded_at: NaiveDateTime,
    pricing_scenario_sha256: Option<&'a str>,
}

/// Whether `load` stored a new version or found the same terms already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadOutcome {
    NewVersion,
    Unchanged,
}

/// Stores `product` as its next version, unless the newest stored version has
/// the same content. Runs in its own write transaction. For a product that
/// names no pricing scenario; see [`load_priced`].
pub fn load(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    product: &Product,
) -> Result<(StoredProduct, LoadOutcome), StoreError> {
    load_priced(conn, ctx, product, None)
}

/// Stores `product` with the SHA-256 of the pricing scenario file it names
/// (read by the caller: the store does no file I/O), as its next version
/// unless the newest stored version has the same content and the same
/// scenario hash. A changed scenario file is a new version: the basis the
/// product was priced on is part of what was loaded.
pub fn load_priced(
    conn: &mut DbConn,
    ctx: &WriteContext<'_>,
    product: &Product,
    pricing_scenario_sha256: Option<&str>,
) -> Result<(StoredProduct, LoadOutcome), StoreError> {
    if product.pricing_scenario.is_some() != pricing_scenario_sha256.is_some() {
        return Err(StoreError::integrity(format!(
            "product {}: a pricing scenario and its hash go together",
            product.id
        )));
    }
    crate::db::write_transaction(conn, |conn| {
        let hash = product.content_hash();
        let latest = latest_row(conn, &product.id)?;
        let next_version = latest.as_ref().map_or(1, |r| r.version + 1);
        if let Some(current) = latest
            && current.content_hash == hash
            && pricing_scenario_hash(conn, current.id)?.as_deref() == pricing_scenario_sha256
        {
            return Ok((StoredProduct::try_from(current)?, LoadOutcome::Unchanged));
        }
        let body = serde_json::to_string(product)?;
        let loaded_at = audit::truncate_to_micros(ctx.now.naive_utc());
        let id: i64 = diesel::insert_into(product_versions::table)
            .values(NewProductVersion {
                product_id: &product.id,
                version: next_version,
                content_hash: &hash,
                period_start: product.period_start,
                period_end: product.period_end,
                body: &body,
                loaded_by: ctx.actor,
                loaded_at,
                pricing_scenario_sha256,
            })
            .returning(product_versions::id)
            .get_result(conn)?;
        let row: ProductVersionRow = product_versions::table
            .find(id)
            .select(ProductVersionRow::as_select())
            .first(conn)?;
        audit::append(
            conn,
            &ctx.keys.audit,
            ctx.now,
            ctx.actor,
            "product.loaded",
            &format!("product:{}", product.id),
            &load_event(&product.id, &row, &hash, pricing_scenario_sha256),
        )?;
        Ok((StoredProduct::try_from(row)?, LoadOutcome::NewVersion))
    })
}

/// The audit payload of a load; the scenario hash only when there is one, so
/// that products without keep their events as before.
fn load_event(
    product_id: &str,
    row: &ProductVersionRow,
    hash: &str,
    pricing_scenario_sha256: Option<&str>,
) -> serde_json::Value {
    let mut event = serde_json::json!({
        "product_id": product_id,
        "version": row.version,
        "version_id": row.id,
        "content_hash": hash,
    });
    if let Some(sha) = pricing_scenario_sha256 {
        event["pricing_scenario_sha256"] = sha.into();
    }
    event
}

/// The SHA-256 of the pricing scenario stored with a product version, if it names one.
pub fn pricing_scenario_hash(
    conn: &mut DbConn,
    version_id: i64,
) -> Result<Option<String>, StoreError> {
    Ok(product_versions::table
        .find(version_id)
        .select(product_versions::pricing_scenario_sha256)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten())
}

fn latest_row(
    conn: &mut DbConn,
    product_id: &str,
) -> Result<Option<ProductVersionRow>, StoreError> {
    Ok(product_versions::table
        .filter(product_versions::product_id.eq(product_id))
        .order(product_versions::version.desc())
        .select(ProductVersionRow::as_select())
        .first(conn)
        .optional()?)
}

/// The newest version of a product.
pub fn current(conn: &mut DbConn, product_id: &str) -> Result<StoredProduct, StoreError> {
    latest_row(conn, product_id)?
        .ok_or_else(|| StoreError::not_found("product", product_id))?
        .try_into()
}

/// A specific stored version (the one a decision was made under).
pub fn version(conn: &mut DbConn, version_id: i64) -> Result<StoredProduct, StoreError> {
    product_versions::table
        .find(version_id)
        .select(ProductVersionRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| StoreError::not_found("product version", version_id))?
        .try_into()
}

/// The newest version of every product, ordered by period then id.
pub fn list_current(conn: &mut DbConn) -> Result<Vec<StoredProduct>, StoreError> {
    let rows: Vec<ProductVersionRow> = product_versions::table
        .select(ProductVersionRow::as_select())
        .order((
            product_versions::product_id.asc(),
            product_versions::version.desc(),
        ))
        .load(conn)?;
    let mut newest: Vec<ProductVersionRow> = Vec::new();
    for row in rows {
        if newest
            .last()
            .is_none_or(|last| last.product_id != row.product_id)
        {
            newest.push(row);
        }
    }
    let mut products = newest
        .into_iter()
        .map(StoredProduct::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    products.sort_by(|a, b| {
        (a.product.period_start, &a.product.id).cmp(&(b.product.period_start, &b.product.id))
    });
    Ok(products)
}
