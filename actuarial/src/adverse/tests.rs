//! The take-up curve, the solve and the refinement against closed forms.

use super::*;

fn two_groups() -> Vec<PoolGroup> {
    vec![
        PoolGroup {
            eligible: 1000.0,
            take_up: 1.0,
            observed_at: 100.0,
            elasticity: 0.0,
            pure_premium: 100.0,
            variance: 0.0,
        },
        PoolGroup {
            eligible: 1000.0,
            // Observed 50% at a premium of 10: take-up 5 / P.
            take_up: 0.5,
            observed_at: 10.0,
            elasticity: 1.0,
            pure_premium: 10.0,
            variance: 0.0,
        },
    ]
}

#[test]
fn known_equilibrium() {
    // n_B(P) = 1000 * 5 / P for P >= 5, so P = (100000 + 50000 / P) / (1000 + 5000 / P),
    // i.e. P^2 - 95 P - 50 = 0.
    let params = PoolParams {
        expense_ratio: 0.0,
        cost_of_capital: 0.0,
        risk_factor: 0.0,
        max_premium: 1000.0,
    };
    let expected = (95.0 + (95.0_f64 * 95.0 + 200.0).sqrt()) / 2.0;
    match solve(&two_groups(), &params) {
        Outcome::Equilibrium { premium, members } => {
            assert!((premium - expected).abs() < 1e-9, "{premium} vs {expected}");
            assert!((members - (1000.0 + 5000.0 / expected)).abs() < 1e-6);
        }
        Outcome::NoEquilibrium => panic!("an equilibrium exists"),
    }
    // The renewal path converges to it from the base premium.
    let path = renewal_path(&two_groups(), 55.0, 30, |p| {
        Ok::<_, ()>(required_premium(&two_groups(), &params, p))
    })
    .unwrap();
    let last = path.last().unwrap().premium_per_member;
    assert!((last - expected).abs() < 1e-6, "{last}");
    // Expenses scale the equilibrium: with a 10% expense ratio the pool needs
    // P = (100000 + 50000/P) / 0.9 / (1000 + 5000/P): 0.9 P^2 - 95.5 P - 50 = 0.
    let with_expenses = PoolParams {
        expense_ratio: 0.1,
        ..params
    };
    let expected = (95.5 + (95.5_f64 * 95.5 + 4.0 * 0.9 * 50.0).sqrt()) / 1.8;
    match solve(&two_groups(), &with_expenses) {
        Outcome::Equilibrium { premium, .. } => assert!((premium - expected).abs() < 1e-9),
        Outcome::NoEquilibrium => panic!("an equilibrium exists"),
    }
}

#[test]
fn enrolment_scales_through_the_premium() {
    // Group A does not respond; B's take-up is 0.5 s with s = P0 / P. Halving today's 1,500
    // members is impossible (A keeps 1,000 at any premium); 1,250 needs B at 250, s = 0.5.
    let groups = [(1000.0, 1.0, 0.0), (1000.0, 0.5, 1.0)];
    let (members, ratio) = scale_enrolment(&groups, 1250.0 / 1500.0).unwrap();
    assert!((members[0] - 1000.0).abs() < 1e-9);
    assert!((members[1] - 250.0).abs() < 1e-6, "{members:?}");
    assert!((ratio.unwrap() - 2.0).abs() < 1e-9, "premium twice today's");
    let e = scale_enrolment(&groups, 0.5).unwrap_err();
    assert!(e.contains("between 1000"), "{e}");
    // Everyone enrolled (2,000) is the most: 1.4 x 1,500 = 2,100 is out of reach.
    assert!(scale_enrolment(&groups, 1.4).is_err());
    // Equal elasticities and no cap reached: every group scales alike.
    let equal = [(1000.0, 0.2, 0.7), (4000.0, 0.1, 0.7)];
    let (m, _) = scale_enrolment(&equal, 1.5).unwrap();
    assert!(
        (m[0] - 300.0).abs() < 1e-6 && (m[1] - 600.0).abs() < 1e-6,
        "{m:?}"
    );
    // No elasticity: scaled alike, capped at the eligible.
    let (m, ratio) = scale_enrolment(&[(1000.0, 0.6, 0.0), (10.0, 0.5, 0.0)], 2.0).unwrap();
    assert_eq!((m, ratio), (vec![1000.0, 10.0], None));
}

#[test]
fn the_refinement_finds_the_fixed_point_of_a_pricing_it_cannot_see_inside() {
    // R(P) = 60 + 2000 / P: the fixed point is P^2 - 60 P - 2000 = 0, P = 30 + sqrt(2900).
    let expected = 30.0 + 2900.0_f64.sqrt();
    let (p, gap) = refine_equilibrium(70.0, 1000.0, |p| Ok::<_, ()>(Some(60.0 + 2000.0 / p)))
        .unwrap()
        .unwrap();
    assert!((p - expected).abs() < 1e-6 * expected, "{p} vs {expected}");
    assert!(gap <= 1e-6 * p);
    // Nobody enrols: nothing to refine.
    assert_eq!(
        refine_equilibrium(70.0, 1000.0, |_| Ok::<_, ()>(None)),
        Ok(None)
    );
}

#[test]
fn none_below_the_ceiling() {
    let params = PoolParams {
        expense_ratio: 0.0,
        cost_of_capital: 0.0,
        risk_factor: 0.0,
        max_premium: 90.0,
    };
    assert_eq!(solve(&two_groups(), &params), Outcome::NoEquilibrium);
}

#[test]
fn risk_margin_can_make_every_pool_too_expensive() {
    // One group leaving fast (elasticity 3): the fewer members, the larger the risk margin
    // per member, which grows like P^1.5 and outruns the premium. Check the pool never pays
    // for itself on a fine grid and that the solver agrees.
    let g = [PoolGroup {
        eligible: 100.0,
        take_up: 1.0,
        observed_at: 50.0,
        elasticity: 3.0,
        pure_premium: 50.0,
        variance: 1e8,
    }];
    let params = PoolParams {
        expense_ratio: 0.1,
        cost_of_capital: 0.1,
        risk_factor: 3.0,
        max_premium: 1e6,
    };
    for i in 0..10_000 {
        let p = 1e-3 * (1e9_f64).powf(i as f64 / 10_000.0);
        if let Some(r) = required_premium(&g, &params, p) {
            assert!(r > p, "pays for itself at {p}");
        }
    }
    assert_eq!(solve(&g, &params), Outcome::NoEquilibrium);
}
