//! `puhui renew`'s shell: the experience study of a product from the database, against the
//! pricing scenario the product names, turned into the pure renewal's input; the renewal
//! scenario and its table written next to each other.

use std::collections::BTreeMap;
use std::path::Path;

use actuarial::experience::study;
use actuarial::renewal::{
    self, Assumptions, MonthCell, RenewalBasis, RenewalReport, RenewalScenario,
};
use actuarial::scenario::Benefit;
use actuarial::table::parse_morbidity;
use chrono::NaiveDate;
use engine::DbConn;
use engine::store::experience;
use engine::store::products;

use crate::basis;
use crate::experience::{exposure_by_group_month, product_basis, study_input};

/// Where the renewal goes: the scenario, and its morbidity table next to it.
pub struct Output<'a> {
    pub scenario: &'a Path,
}

impl Output<'_> {
    /// `scenarios/xiamen-2027.toml` -> `xiamen-2027-morbidity.csv`, in the same directory.
    pub fn table_file(&self) -> String {
        let stem = self
            .scenario
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("renewal");
        format!("{stem}-morbidity.csv")
    }
}

/// Runs the renewal of `product_id` and writes its scenario; returns the report.
pub fn run(
    conn: &mut DbConn,
    product_id: &str,
    as_of: NaiveDate,
    assumptions: &Assumptions,
    out: &Output<'_>,
) -> Result<RenewalReport, String> {
    let stored = products::current(conn, product_id).map_err(|e| e.to_string())?;
    let (text, scenario) = basis::product_basis(conn, &stored)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "product {product_id} names no pricing scenario (`pricing_scenario` in its file): \
                 the renewal needs the basis it was priced on"
            )
        })?;
    let tree: toml::Value = toml::from_str(&text.text)
        .map_err(|e| format!("{}: the renewal needs a TOML basis: {e}", text.path))?;
    let table_name = tree
        .get("population")
        .and_then(|p| p.get("table"))
        .and_then(toml::Value::as_str)
        .ok_or_else(|| {
            format!(
                "{}: the renewal needs a basis with a [population] table",
                text.path
            )
        })?;
    let table = text
        .resolver()
        .resolve(table_name)
        .and_then(|t| parse_morbidity(&t))
        .map_err(|e| format!("{}: {e}", text.path))?;

    let basis = product_basis(conn, product_id).map_err(|e| e.to_string())?;
    let data = experience::read(conn, product_id, as_of).map_err(|e| e.to_string())?;
    let input = study_input(&data);
    let study = study(&input, &basis);

    // The chain ladder's factor to ultimate per service month completes each month's payments.
    let completion: BTreeMap<String, f64> = study
        .chain_ladder
        .as_ref()
        .map(|r| {
            r.origins
                .iter()
                .map(|o| (o.origin.clone(), o.cdf))
                .collect()
        })
        .unwrap_or_default();
    let mut cells: BTreeMap<(String, String), MonthCell> = exposure_by_group_month(&data)
        .into_iter()
        .map(|((group, month), member_years)| {
            let cell = MonthCell {
                group: group.clone(),
                month: month.clone(),
                member_years,
                admissions: 0.0,
                inpatient_paid: 0.0,
                drug_paid: 0.0,
            };
            ((group, month), cell)
        })
        .collect();
    for claim in &input.claims {
        if let Some(cell) = cells.get_mut(&(claim.group.clone(), claim.service_month.clone())) {
            if claim.benefit == Benefit::Inpatient.key() {
                cell.admissions += claim.claims as f64;
                cell.inpatient_paid += claim.paid;
            } else if claim.benefit == Benefit::SpecialtyDrug.key() {
                cell.drug_paid += claim.paid;
            }
        }
    }
    let members: BTreeMap<String, u64> = input
        .groups
        .iter()
        .map(|g| (g.group.clone(), g.members))
        .collect();
    let cells: Vec<MonthCell> = cells.into_values().collect();
    let blend = renewal::blend(
        &basis,
        &cells,
        &completion,
        &members,
        assumptions.renewal_rate,
    );
    if blend.groups.iter().all(|g| g.next_members == 0) {
        return Err(format!(
            "product {product_id} has no members enrolled by {as_of} to renew"
        ));
    }

    let table_file = out.table_file();
    let name = format!("Renewal of {product_id} from its experience as of {as_of}");
    let pieces = RenewalBasis {
        tree: &tree,
        basis: &scenario,
        table: &table,
        name: &name,
        table_file: &table_file,
    };
    let (written, steps) = renewal::price_renewal(&pieces, &blend, assumptions)?;
    let table_path = write(out, &written, &table_file)?;
    Ok(RenewalReport {
        product_id: product_id.to_string(),
        as_of: as_of.to_string(),
        basis: format!("{} ({})", scenario.name(), text.path),
        scenario: out.scenario.display().to_string(),
        table: table_path,
        assumptions: *assumptions,
        credibility: blend,
        decomposition: renewal::decompose(input.premium, &steps, assumptions.margin),
        steps,
    })
}

fn write(out: &Output<'_>, written: &RenewalScenario, table_file: &str) -> Result<String, String> {
    let dir = out.scenario.parent().unwrap_or_else(|| Path::new(""));
    let table_path = dir.join(table_file);
    let header = format!(
        "# Written by `puhui renew`: the renewal scenario of the product, priced with `puhui price {}`.\n\
         # Its morbidity table is {table_file}, next to it.\n\n",
        out.scenario.display()
    );
    std::fs::write(&table_path, &written.table_csv)
        .map_err(|e| format!("{}: {e}", table_path.display()))?;
    std::fs::write(out.scenario, format!("{header}{}", written.toml))
        .map_err(|e| format!("{}: {e}", out.scenario.display()))?;
    Ok(table_path.display().to_string())
}
