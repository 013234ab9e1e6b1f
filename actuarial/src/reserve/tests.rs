use super::*;

const RAA: &str = include_str!("../../../docs/examples/raa.csv");
const RAA_PREMIUM: &str = include_str!("../../../docs/examples/raa-premium.csv");
const TAYLOR_ASHE: &str = include_str!("../../../docs/examples/taylor-ashe.csv");

fn triangle(text: &str) -> Triangle {
    Triangle::from_csv("t.csv", text).unwrap().0
}

fn assert_close(what: &str, got: f64, want: f64, rel: f64) {
    let tol = rel * want.abs().max(1.0);
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, want {want} (tolerance {tol})"
    );
}

/// Mack (1993) on the RAA triangle, as published by R's ChainLadder
/// (`MackChainLadder(RAA, est.sigma = "Mack")`, the package vignette): latest, ultimate, IBNR
/// and Mack S.E. per origin rounded to whole units, and the totals 160,987 / 213,122 / 52,135 /
/// 26,909.
#[test]
fn raa_matches_macks_published_figures() {
    let r = Reserve::chain_ladder(&triangle(RAA)).unwrap();
    #[rustfmt::skip]
    let published: [(&str, f64, f64, f64, f64); 10] = [
        ("1981", 18_834.0, 18_834.0, 0.0, 0.0),
        ("1982", 16_704.0, 16_858.0, 154.0, 206.0),
        ("1983", 23_466.0, 24_083.0, 617.0, 623.0),
        ("1984", 27_067.0, 28_703.0, 1_636.0, 747.0),
        ("1985", 26_180.0, 28_927.0, 2_747.0, 1_469.0),
        ("1986", 15_852.0, 19_501.0, 3_649.0, 2_002.0),
        ("1987", 12_314.0, 17_749.0, 5_435.0, 2_209.0),
        ("1988", 13_112.0, 24_019.0, 10_907.0, 5_358.0),
        ("1989", 5_395.0, 16_045.0, 10_650.0, 6_333.0),
        ("1990", 2_063.0, 18_402.0, 16_339.0, 24_566.0),
    ];
    assert_eq!(r.origins.len(), published.len());
    for (o, (origin, latest, ultimate, ibnr, se)) in r.origins.iter().zip(published) {
        assert_eq!(o.origin, origin);
        assert_eq!(o.latest, latest);
        // Published to the unit: the rounding is at most half a unit.
        assert!(
            (o.ultimate - ultimate).abs() <= 0.5,
            "{origin} ultimate {}",
            o.ultimate
        );
        assert!((o.ibnr - ibnr).abs() <= 0.5, "{origin} ibnr {}", o.ibnr);
        assert!(
            (o.mack_se - se).abs() <= 0.5,
            "{origin} mack_se {}",
            o.mack_se
        );
    }
    assert_eq!(r.latest_total, 160_987.0);
    assert!(
        (r.ultimate_total - 213_122.0).abs() <= 0.5,
        "{}",
        r.ultimate_total
    );
    assert!((r.ibnr_total - 52_135.0).abs() <= 0.5, "{}", r.ibnr_total);
    assert!(
        (r.mack_se_total - 26_909.0).abs() <= 0.5,
        "{}",
        r.mack_se_total
    );
}

/// The same triangle through the Python package `chainladder` 0.10.1
/// (`Development(sigma_interpolation="mack")`, `MackChainladder`), to ten digits: the two
/// implementations were written independently, so agreement to rounding error checks every
/// step, including the last sigma by Mack's rule (1.1590623217 = the period before's).
#[test]
fn raa_agrees_with_python_chainladder_to_rounding() {
    let r = Reserve::chain_ladder(&triangle(RAA)).unwrap();
    #[rustfmt::skip]
    let ldf = [2.9993586513, 1.6235227538, 1.270888115, 1.1716746331, 1.1133848862,
               1.0419346379, 1.0332635538, 1.016936481, 1.0092165899];
    #[rustfmt::skip]
    let sigma = [166.9834704216, 33.2945383829, 26.295299667, 7.8249597693, 10.9288175934,
                 6.3890423919, 1.1590623217, 2.8077043496, 1.1590623217];
    #[rustfmt::skip]
    let se = [0.0, 206.2200594011, 623.376672632, 747.1752250815, 1469.4571495894,
              2001.8569309319, 2209.2420936421, 5357.8692976971, 6333.1658657364,
              24566.2879109896];
    #[rustfmt::skip]
    let ibnr = [0.0, 153.9539170507, 617.3709238149, 1636.1421634209, 2746.7363434222,
                3649.1031839964, 5435.3025902952, 10907.1925095074, 10649.9841007021,
                16339.4425290004];
    for (k, (got, want)) in r.ldf.iter().zip(ldf).enumerate() {
        assert_close(&format!("ldf {k}"), *got, want, 1e-9);
    }
    for (k, (got, want)) in r.sigma.iter().zip(sigma).enumerate() {
        assert_close(&format!("sigma {k}"), *got, want, 1e-9);
    }
    for (o, (s, i)) in r.origins.iter().zip(se.iter().zip(ibnr)) {
        assert_close(&format!("{} mack_se", o.origin), o.mack_se, *s, 1e-9);
        assert_close(&format!("{} ibnr", o.origin), o.ibnr, i, 1e-9);
    }
    assert_close("total se", r.mack_se_total, 26909.011156, 1e-9);
    assert_close("cdf 1990", r.origins[9].cdf, 8.9202338968, 1e-9);
}

/// Mack's own example (1993, the Taylor-Ashe triangle): total reserve 18,680,856 with standard
/// error 2,447,095, and the per-origin standard errors of his table.
#[test]
fn taylor_ashe_matches_mack_1993() {
    let r = Reserve::chain_ladder(&triangle(TAYLOR_ASHE)).unwrap();
    #[rustfmt::skip]
    let se = [0.0, 75_535.0, 121_699.0, 133_549.0, 261_406.0, 411_010.0, 558_317.0,
              875_328.0, 971_258.0, 1_363_155.0];
    for (o, s) in r.origins.iter().zip(se) {
        assert!(
            (o.mack_se - s).abs() <= 0.5,
            "{} mack_se {}",
            o.origin,
            o.mack_se
        );
    }
    assert!(
        (r.ibnr_total - 18_680_856.0).abs() <= 0.5,
        "{}",
        r.ibnr_total
    );
    assert!(
        (r.mack_se_total - 2_447_095.0).abs() <= 0.5,
        "{}",
        r.mack_se_total
    );
}

/// BF on RAA with the premiums of `docs/examples/raa-premium.csv` and ELR 0.85, against
/// `chainladder.BornhuetterFerguson(apriori=0.85)` with those premiums as sample weights.
#[test]
fn bornhuetter_ferguson_agrees_with_python_chainladder() {
    let premiums = parse_premiums("p.csv", RAA_PREMIUM).unwrap();
    let r = Reserve::bornhuetter_ferguson(&triangle(RAA), &premiums, 0.85).unwrap();
    #[rustfmt::skip]
    let ibnr = [0.0, 143.6073059361, 414.0010321293, 944.8114148723, 1614.2338798202,
                3260.6167138954, 5466.1387816903, 8298.7362307183, 12412.271737584,
                16980.9979232201];
    for (o, i) in r.origins.iter().zip(ibnr) {
        assert_close(&format!("{} bf ibnr", o.origin), o.ibnr, i, 1e-9);
    }
    assert_close("bf total", r.ibnr_total, 49535.415019865875, 1e-9);
    assert_eq!(r.method, Method::Bf);
    assert_eq!(r.origins[9].premium, Some(22_500.0));
    assert_close(
        "prior",
        r.origins[9].prior_ultimate.unwrap(),
        19_125.0,
        1e-12,
    );
    // Closed form for the youngest origin: prior x (1 - 1/cdf).
    let youngest = &r.origins[9];
    assert_close(
        "bf closed form",
        youngest.ibnr,
        19_125.0 * (1.0 - 1.0 / youngest.cdf),
        1e-12,
    );
}

#[test]
fn bornhuetter_ferguson_needs_a_premium_for_every_origin_and_no_other() {
    let t = triangle(RAA);
    let mut premiums = parse_premiums("p.csv", RAA_PREMIUM).unwrap();
    premiums.remove("1984");
    let e = Reserve::bornhuetter_ferguson(&t, &premiums, 0.85).unwrap_err();
    assert_eq!(e.to_string(), "premium file: no premium for origin 1984");
    premiums.insert("1984".into(), 1.0);
    premiums.insert("1979".into(), 1.0);
    let e = Reserve::bornhuetter_ferguson(&t, &premiums, 0.85).unwrap_err();
    assert_eq!(
        e.to_string(),
        "premium file: origin 1979 is not in the triangle"
    );
    premiums.remove("1979");
    let e = Reserve::bornhuetter_ferguson(&t, &premiums, -0.1).unwrap_err();
    assert!(e.to_string().contains("positive"), "{e}");
}

/// A triangle whose every origin develops by exactly the same factors has no variability:
/// sigma and the standard errors are zero, and the ultimates are exact.
#[test]
fn an_exactly_multiplicative_triangle_has_no_error() {
    let factors = [2.0, 1.5, 1.1, 1.02];
    let base = [100.0, 80.0, 120.0, 90.0, 110.0];
    let rows: Vec<Vec<f64>> = base
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            let mut row = vec![b];
            for f in &factors[..factors.len() - i.min(factors.len())] {
                let last = row[row.len() - 1];
                row.push(last * f);
            }
            row
        })
        .collect();
    let origins = (1..=5).map(|i| i.to_string()).collect();
    let t = Triangle::from_cumulative("t", origins, rows).unwrap();
    let r = Reserve::chain_ladder(&t).unwrap();
    let product: f64 = factors.iter().product();
    for (o, b) in r.origins.iter().zip(base) {
        assert_close("ultimate", o.ultimate, b * product, 1e-12);
        assert!(o.mack_se.abs() < 1e-6, "{}", o.mack_se);
    }
    assert!(r.mack_se_total.abs() < 1e-6);
}

/// Scaling every amount by c scales the reserves and their standard errors by c (the Mack
/// model's variance is proportional to the amount), so the CVs do not depend on the currency.
#[test]
fn reserves_and_errors_scale_with_the_currency() {
    let t = triangle(RAA);
    let scaled_rows: Vec<Vec<f64>> = t
        .rows()
        .iter()
        .map(|r| r.iter().map(|v| v * 100.0).collect())
        .collect();
    let scaled = Triangle::from_cumulative("t", t.origins().to_vec(), scaled_rows).unwrap();
    let a = Reserve::chain_ladder(&t).unwrap();
    let b = Reserve::chain_ladder(&scaled).unwrap();
    assert_close("ibnr", b.ibnr_total, 100.0 * a.ibnr_total, 1e-12);
    assert_close("se", b.mack_se_total, 100.0 * a.mack_se_total, 1e-12);
    for (x, y) in a.ldf.iter().zip(&b.ldf) {
        assert_close("ldf", *y, *x, 1e-12);
    }
}

/// The total's variance exceeds the sum of the origins' (the shared estimated factors make the
/// origins' errors positively correlated) and is at most the square of the summed errors.
#[test]
fn the_total_error_lies_between_independence_and_full_correlation() {
    let r = Reserve::chain_ladder(&triangle(TAYLOR_ASHE)).unwrap();
    let independent: f64 = r
        .origins
        .iter()
        .map(|o| o.mack_se.powi(2))
        .sum::<f64>()
        .sqrt();
    let comonotone: f64 = r.origins.iter().map(|o| o.mack_se).sum();
    assert!(independent < r.mack_se_total && r.mack_se_total < comonotone);
}

#[test]
fn a_development_with_nothing_to_develop_from_has_no_factor() {
    let text = "origin,development,cumulative\n\
                2001,1,0\n2001,2,5\n2001,3,6\n2002,1,0\n2002,2,4\n2003,1,7\n";
    let e = Reserve::chain_ladder(&triangle(text)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "development 1 to 2 has no factor: every origin observed at 2 has cumulative 0 at 1 (2001, 2002)"
    );
}

#[test]
fn too_few_origins_for_a_sigma_is_an_error_naming_the_step() {
    let text = "origin,development,cumulative\n2001,1,10\n2001,2,15\n2002,1,12\n";
    let e = Reserve::chain_ladder(&triangle(text)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "development 1 to 2: a single origin, so nothing to estimate the variability of the factor from"
    );
}

/// Three months into a year: the second step has one origin and only one earlier sigma, which
/// it takes (R's ChainLadder does the same: its min over the periods that exist).
#[test]
fn a_three_origin_triangle_takes_the_earlier_sigma() {
    let text = "origin,development,cumulative\n\
                1,1,10\n1,2,20\n1,3,22\n2,1,12\n2,2,21\n3,1,9\n";
    let fit = ChainLadder::fit(&triangle(text)).unwrap();
    assert_eq!(fit.sigma2[1], fit.sigma2[0]);
    // f = 41/22; sigma^2 = sum C (F - f)^2 over the two origins, n - 1 = 1.
    let f: f64 = 41.0 / 22.0;
    let want = 10.0 * (2.0 - f).powi(2) + 12.0 * (21.0 / 12.0 - f).powi(2);
    assert_close("sigma2", fit.sigma2[0], want, 1e-12);
}

#[test]
fn the_last_sigma_follows_macks_rule() {
    // Mack's rule: min(s8^4 / s7^2, s7^2, s8^2) in his numbering, here the last three steps.
    let fit = ChainLadder::fit(&triangle(RAA)).unwrap();
    let n = fit.sigma2.len();
    let (a, b) = (fit.sigma2[n - 3], fit.sigma2[n - 2]);
    assert_eq!(fit.sigma2[n - 1], (b * b / a).min(a).min(b));
}

#[test]
fn json_carries_the_names_of_the_contract() {
    let r = Reserve::chain_ladder(&triangle(RAA)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&r.to_json_pretty().unwrap()).unwrap();
    for key in [
        "ldf",
        "origins",
        "ibnr_total",
        "ultimate_total",
        "mack_se_total",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    let first = &v["origins"][1];
    for key in ["origin", "latest", "ultimate", "ibnr", "mack_se"] {
        assert!(first.get(key).is_some(), "missing origins[].{key}");
    }
    assert_eq!(v["method"], "chain_ladder");
    assert_eq!(v["ldf"].as_array().map(Vec::len), Some(9));
}
