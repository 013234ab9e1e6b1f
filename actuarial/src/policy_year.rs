//! A policy year drawn from a scenario's morbidity model: members in the scenario's group mix,
//! and each member's claims with the day of service and the day the claim is reported.
//!
//! This is the "known truth" of the closed loop: a year of synthetic claims whose morbidity is
//! known, to be settled by the claims engine and studied by the experience study, so that what
//! the study and the renewal recover can be compared with what was drawn.
//!
//! Pure: days are counted from the first day of the policy period; the caller turns them into
//! dates, resident IDs and requests. The year is drawn at the risk factors' means (a factor is
//! the uncertainty of a year's morbidity across years, not part of the model the year is drawn
//! from).
//!
//! - Inpatient: admissions per member-year by the group's frequency, each on a day uniform over
//!   the period, with an out-of-pocket cost (after basic medical insurance) by the group's
//!   severity. The hospital reports the claim after a delay with an exponential distribution of
//!   the given mean (an assumption of the caller's: reporting delays are not in the docs/domain
//!   statistics beyond the paid-to-date shares).
//! - Specialty drugs: a member needs the drugs in the year with the group's need rate; the
//!   annual cost, by the group's cost distribution, is dispensed in twelve equal monthly
//!   dispensings over the period (a course through the year), each reported by the pharmacy on
//!   the day it is dispensed. Spreading the cost evenly keeps a part-year's cost proportional to
//!   its exposure, as the study's expected values assume.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Gamma, LogNormal, Poisson};

use crate::dist::{Frequency, Severity};
use crate::scenario::Scenario;

/// Monthly dispensings of a year's drug course.
pub const DISPENSINGS_PER_YEAR: u32 = 12;

/// What to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct YearSpec {
    /// Members enrolled, spread over the scenario's groups in proportion to its members.
    pub members: u64,
    /// Days in the policy period.
    pub period_days: u32,
    /// Mean delay, in days, from an admission to the hospital's claim.
    pub mean_report_delay_days: f64,
    pub seed: u64,
}

/// A scenario group read as a pricing group.
#[derive(Debug, Clone, PartialEq)]
pub struct DrawnGroup {
    /// The scenario's id, `AGE/SEX/CONDITION` (e.g. `65-74/M/preexisting`).
    pub id: String,
    /// Youngest and oldest age of the band at the period start (`85+` is 85 to 99).
    pub ages: (u32, u32),
    /// `M` or `F`.
    pub male: bool,
    pub preexisting: bool,
    pub members: u64,
}

/// One member: the group and the age at the period start, with how many days before the
/// period start their last birthday fell (0 to 364).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrawnMember {
    pub group: usize,
    pub age: u32,
    pub days_since_birthday: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimKind {
    Inpatient,
    SpecialtyDrug,
}

/// One claim: whose, which benefit, its service and report days (from the period start), and
/// its cost in CNY: for a stay the out-of-pocket cost after basic medical insurance, for a
/// dispensing its price.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrawnClaim {
    pub member: usize,
    pub kind: ClaimKind,
    pub service_day: u32,
    pub report_day: u32,
    pub cost: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DrawnYear {
    pub groups: Vec<DrawnGroup>,
    pub members: Vec<DrawnMember>,
    /// In order of report day, then service day.
    pub claims: Vec<DrawnClaim>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyYearError {
    #[error("members: must be at least 1")]
    NoMembers,
    #[error("the policy period must have at least {DISPENSINGS_PER_YEAR} days")]
    ShortPeriod,
    #[error("mean report delay: {0} is not a finite number of days >= 0")]
    Delay(f64),
    #[error(
        "group `{0}`: not a pricing group `AGE/SEX/CONDITION` (age band like 65-74 or 85+, sex M \
         or F, condition standard or preexisting); a policy year is drawn from a scenario on a \
         morbidity table"
    )]
    NotAPricingGroup(String),
    #[error("the scenario has no members to take the group mix from")]
    EmptyScenario,
}

/// Reads `65-74/M/preexisting` as a pricing group.
fn pricing_group(id: &str, preexisting: bool) -> Option<(u32, u32, bool)> {
    let mut parts = id.split('/');
    let (band, sex, condition) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || condition
            != if preexisting {
                "preexisting"
            } else {
                "standard"
            }
    {
        return None;
    }
    let ages = match band.strip_suffix('+') {
        Some(low) => {
            let low: u32 = low.parse().ok()?;
            (low, low.max(99))
        }
        None => {
            let (low, high) = band.split_once('-')?;
            (low.parse().ok()?, high.parse().ok()?)
        }
    };
    let male = match sex {
        "M" => true,
        "F" => false,
        _ => return None,
    };
    (ages.0 <= ages.1).then_some((ages.0, ages.1, male))
}

/// `total` split in proportion to `weights` by largest remainders: the parts sum to `total`.
fn apportion(total: u64, weights: &[u64]) -> Vec<u64> {
    let sum: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<(u64, u128)> = weights
        .iter()
        .map(|&w| {
            let scaled = u128::from(total) * u128::from(w);
            ((scaled / sum) as u64, scaled % sum)
        })
        .collect();
    let mut parts: Vec<u64> = exact.iter().map(|e| e.0).collect();
    let short = total - parts.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| exact[b].1.cmp(&exact[a].1).then(a.cmp(&b)));
    for &i in order.iter().take(short as usize) {
        parts[i] += 1;
    }
    parts
}

fn count(frequency: &Frequency, rng: &mut ChaCha8Rng) -> u64 {
    let poisson = |mean: f64, rng: &mut ChaCha8Rng| {
        if mean > 0.0 {
            Poisson::new(mean).map_or(0, |p| p.sample(rng) as u64)
        } else {
            0
        }
    };
    match *frequency {
        Frequency::Poisson { mean } => poisson(mean, rng),
        Frequency::NegativeBinomial { mean, variance } => {
            // A gamma-mixed Poisson: shape r = mean^2 / (variance - mean), mean `mean`.
            let r = mean * mean / (variance - mean);
            let lambda = Gamma::new(r, mean / r).map_or(mean, |g| g.sample(rng));
            poisson(lambda, rng)
        }
        Frequency::Bernoulli { p } => u64::from(rng.random::<f64>() < p),
    }
}

fn cost(severity: &Severity, rng: &mut ChaCha8Rng) -> f64 {
    match *severity {
        Severity::Lognormal { mean, cv } => {
            let sigma2 = cv.mul_add(cv, 1.0).ln();
            LogNormal::new(mean.ln() - 0.5 * sigma2, sigma2.sqrt()).map_or(mean, |d| d.sample(rng))
        }
        Severity::Gamma { mean, cv } => {
            Gamma::new(1.0 / (cv * cv), mean * cv * cv).map_or(mean, |d| d.sample(rng))
        }
        Severity::Pareto { alpha, theta } => {
            // Inverse of P(X > x) = (theta / (theta + x))^alpha.
            let u: f64 = 1.0 - rng.random::<f64>();
            theta * (u.powf(-1.0 / alpha) - 1.0)
        }
    }
}

/// Draws the year. The same scenario, spec and seed give the same year.
pub fn draw_year(scenario: &Scenario, spec: &YearSpec) -> Result<DrawnYear, PolicyYearError> {
    if spec.members == 0 {
        return Err(PolicyYearError::NoMembers);
    }
    if spec.period_days < DISPENSINGS_PER_YEAR {
        return Err(PolicyYearError::ShortPeriod);
    }
    if !(spec.mean_report_delay_days.is_finite() && spec.mean_report_delay_days >= 0.0) {
        return Err(PolicyYearError::Delay(spec.mean_report_delay_days));
    }
    let source = scenario.groups();
    let weights: Vec<u64> = source.iter().map(|g| g.members).collect();
    if weights.iter().all(|&w| w == 0) {
        return Err(PolicyYearError::EmptyScenario);
    }
    let counts = apportion(spec.members, &weights);
    let groups = source
        .iter()
        .zip(&counts)
        .map(|(g, &members)| {
            let (low, high, male) = pricing_group(&g.id, g.preexisting)
                .ok_or_else(|| PolicyYearError::NotAPricingGroup(g.id.clone()))?;
            Ok(DrawnGroup {
                id: g.id.clone(),
                ages: (low, high),
                male,
                preexisting: g.preexisting,
                members,
            })
        })
        .collect::<Result<Vec<_>, PolicyYearError>>()?;

    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let delay = (spec.mean_report_delay_days > 0.0)
        .then(|| Exp::new(1.0 / spec.mean_report_delay_days).ok())
        .flatten();
    let days = spec.period_days;
    let mut members = Vec::with_capacity(spec.members as usize);
    let mut claims = Vec::new();
    for (index, (group, drawn)) in source.iter().zip(&groups).enumerate() {
        for _ in 0..drawn.members {
            let member = members.len();
            members.push(DrawnMember {
                group: index,
                age: rng.random_range(drawn.ages.0..=drawn.ages.1),
                days_since_birthday: rng.random_range(0..365),
            });
            if let Some(risk) = &group.inpatient {
                for _ in 0..count(&risk.frequency, &mut rng) {
                    let service_day = rng.random_range(0..days);
                    let lag = delay.map_or(0.0, |d| d.sample(&mut rng)).round();
                    claims.push(DrawnClaim {
                        member,
                        kind: ClaimKind::Inpatient,
                        service_day,
                        report_day: service_day + lag.min(f64::from(u32::MAX / 2)) as u32,
                        cost: cost(&risk.severity, &mut rng),
                    });
                }
            }
            if let Some(risk) = &group.specialty_drug
                && rng.random::<f64>() < risk.need_rate
            {
                let annual = cost(&risk.cost, &mut rng);
                for k in 0..DISPENSINGS_PER_YEAR {
                    let service_day = k * days / DISPENSINGS_PER_YEAR;
                    claims.push(DrawnClaim {
                        member,
                        kind: ClaimKind::SpecialtyDrug,
                        service_day,
                        report_day: service_day,
                        cost: annual / f64::from(DISPENSINGS_PER_YEAR),
                    });
                }
            }
        }
    }
    claims.sort_by_key(|c| (c.report_day, c.service_day, c.member));
    Ok(DrawnYear {
        groups,
        members,
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BuiltinTables;

    const SCENARIO: &str = r#"
name = "policy year"
seed = 1
simulations = 1000
[benefits.inpatient]
deductible = 0
coinsurance = 0.8
coinsurance_preexisting = 0.5
annual_limit = 100000
[benefits.specialty_drug]
deductible = 0
coinsurance = 0.7
coinsurance_preexisting = 0.3
annual_limit = 1000000
[population]
table = "morbidity_default.csv"
size = 1_000_000
drug_cost_cv = 0.8
take_up = 0.25
[pricing]
expense_ratio = 0.1
cost_of_capital = 0.06
risk_measure = "tvar"
level = 0.995
target_loss_ratio = 0.85
"#;

    fn scenario() -> Scenario {
        Scenario::from_toml_str(SCENARIO, "policy-year.toml", &BuiltinTables).unwrap()
    }

    #[test]
    fn apportioning_keeps_the_total_and_the_proportions() {
        assert_eq!(apportion(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(apportion(7, &[0, 5, 0]), vec![0, 7, 0]);
        let parts = apportion(1_000, &[123, 456, 789]);
        assert_eq!(parts.iter().sum::<u64>(), 1_000);
        assert_eq!(parts, vec![90, 333, 577]);
    }

    #[test]
    fn pricing_groups_are_read_from_their_ids() {
        assert_eq!(
            pricing_group("65-74/M/standard", false),
            Some((65, 74, true))
        );
        assert_eq!(
            pricing_group("85+/F/preexisting", true),
            Some((85, 99, false))
        );
        assert_eq!(pricing_group("85+/F/preexisting", false), None);
        assert_eq!(pricing_group("urban", false), None);
        assert_eq!(pricing_group("65-74/X/standard", false), None);
    }

    /// The drawn counts and costs recover the model: admissions per member against the
    /// frequency within 4 Poisson standard errors, the mean cost against the severity's mean
    /// within 4 standard errors (lognormal, cv from the table), and the need rate likewise.
    #[test]
    fn a_drawn_year_recovers_its_model() {
        let scenario = scenario();
        let spec = YearSpec {
            members: 200_000,
            period_days: 365,
            mean_report_delay_days: 40.0,
            seed: 9,
        };
        let year = draw_year(&scenario, &spec).unwrap();
        assert_eq!(year.members.len(), 200_000);
        assert_eq!(year.groups.iter().map(|g| g.members).sum::<u64>(), 200_000);

        let (mut expected_admissions, mut admissions) = (0.0, 0u64);
        let (mut expected_cost, mut cost_sum, mut cost_var) = (0.0, 0.0, 0.0);
        let (mut expected_needs, mut dispensings) = (0.0, 0u64);
        for (g, drawn) in scenario.groups().iter().zip(&year.groups) {
            let n = drawn.members as f64;
            let inpatient = g.inpatient.as_ref().unwrap();
            let lambda = inpatient.frequency.mean();
            expected_admissions += n * lambda;
            let Severity::Lognormal { mean, cv } = inpatient.severity else {
                panic!("the table's severities are lognormal")
            };
            expected_cost += n * lambda * mean;
            // Var of a compound Poisson sum: lambda E[X^2].
            cost_var += n * lambda * mean * mean * (1.0 + cv * cv);
            expected_needs += n * g.specialty_drug.as_ref().unwrap().need_rate;
        }
        let mut lags = 0.0;
        for c in &year.claims {
            assert!(c.report_day >= c.service_day && c.service_day < 365);
            match c.kind {
                ClaimKind::Inpatient => {
                    admissions += 1;
                    cost_sum += c.cost;
                    lags += f64::from(c.report_day - c.service_day);
                }
                ClaimKind::SpecialtyDrug => dispensings += 1,
            }
        }
        let z = (admissions as f64 - expected_admissions) / expected_admissions.sqrt();
        assert!(
            z.abs() < 4.0,
            "admissions {admissions} against {expected_admissions}"
        );
        let z = (cost_sum - expected_cost) / cost_var.sqrt();
        assert!(z.abs() < 4.0, "cost {cost_sum} against {expected_cost}");
        assert_eq!(dispensings % u64::from(DISPENSINGS_PER_YEAR), 0);
        let needs = (dispensings / u64::from(DISPENSINGS_PER_YEAR)) as f64;
        let z = (needs - expected_needs) / expected_needs.sqrt();
        assert!(z.abs() < 4.0, "needs {needs} against {expected_needs}");
        // Exponential delays: the mean lag within 4 SE (sd = mean) of 40, rounding to days
        // shifts it by less than 0.5.
        let mean_lag = lags / admissions as f64;
        assert!((mean_lag - 40.0).abs() < 4.0 * 40.0 / (admissions as f64).sqrt() + 0.5);
        // Sorted by report day.
        assert!(
            year.claims
                .windows(2)
                .all(|w| w[0].report_day <= w[1].report_day)
        );
    }

    #[test]
    fn the_same_seed_draws_the_same_year_and_bad_specs_are_refused() {
        let scenario = scenario();
        let spec = YearSpec {
            members: 2_000,
            period_days: 365,
            mean_report_delay_days: 30.0,
            seed: 3,
        };
        assert_eq!(draw_year(&scenario, &spec), draw_year(&scenario, &spec));
        let bad = YearSpec {
            members: 0,
            ..spec.clone()
        };
        assert_eq!(draw_year(&scenario, &bad), Err(PolicyYearError::NoMembers));
        let bad = YearSpec {
            mean_report_delay_days: f64::NAN,
            ..spec
        };
        assert!(matches!(
            draw_year(&scenario, &bad),
            Err(PolicyYearError::Delay(_))
        ));
    }
}
