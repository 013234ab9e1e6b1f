//! The shipped morbidity table against what Shanghai's Huhuibao published for its first year
//! (scenarios/shanghai-calibration.toml: the table at Huhuibao's take-up, without selection).
//!
//! The figures are exact expectations (no sampling error; the member-level discretisation
//! error is below 0.5%), so the bands below are the calibration's own accuracy, stated in
//! docs/domain/products-and-morbidity.md section 5: the table is revised until the figures the
//! model and Huhuibao measure alike agree within them. Figures Huhuibao measures differently
//! (claims, not claimants) are checked as the bounds they are.

mod common;

use std::path::PathBuf;

use actuarial::Scenario;
use actuarial::calibration::{compare, published};
use common::run;

fn published_value(c: &actuarial::calibration::CalibrationResult, q: &str) -> (f64, f64) {
    let row = c.rows.iter().find(|r| r.quantity == q).unwrap();
    let shanghai = row
        .published
        .iter()
        .find(|v| v.product == "shanghai-huhuibao-2021")
        .unwrap();
    (row.model.unwrap(), shanghai.value)
}

#[test]
fn the_default_table_prices_huhuibao_year_one_within_the_calibration_bands() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/shanghai-calibration.toml");
    let s = Scenario::from_path(&path).unwrap();
    let c = compare(&run(&s), &published::shipped().unwrap());

    // Paid per member and the premium: within 10% (the paid figure is to the report date, and
    // the take-up of the old and the pre-existing is not known).
    for q in ["paid_per_member", "premium_per_member"] {
        let (model, shanghai) = published_value(&c, q);
        assert!(
            (model / shanghai - 1.0).abs() <= 0.10,
            "{q}: model {model}, Huhuibao {shanghai}"
        );
    }
    // The share of claimants aged 65+: within 3 percentage points.
    let (model, shanghai) = published_value(&c, "aged_65_plus_share_of_claimants");
    assert!(
        (model - shanghai).abs() <= 0.03,
        "65+: {model} against {shanghai}"
    );
    // Huhuibao counts claims: claims per member bound claimants per member from above, and
    // paid per closed claim bounds paid per claimant from below.
    let (model, shanghai) = published_value(&c, "claimants_per_member");
    assert!(
        model < shanghai,
        "claimants per member {model} above {shanghai}"
    );
    let (model, shanghai) = published_value(&c, "paid_per_claimant");
    assert!(
        model > shanghai,
        "paid per claimant {model} below {shanghai}"
    );
}
