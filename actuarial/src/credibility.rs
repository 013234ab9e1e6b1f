//! Bühlmann-Straub credibility with the unbiased estimators of Bühlmann and Gisler (2005),
//! "A Course in Credibility Theory and its Applications", sections 4.8 and 6.6.
//!
//! The data are ratios `value` observed per `group` and `period`, each with its `weight` (the
//! volume behind the ratio: person-years for a rate, admissions for a mean cost). The model:
//! given the group's risk profile, a ratio has mean `mu_i` and variance `sigma^2 / weight`; the
//! `mu_i` vary between groups around the collective mean with variance `tau^2`.
//!
//! - within variance `sigma^2`: pooled over the groups,
//!   `sum_i sum_t w_it (X_it - X_iw)^2 / sum_i (n_i - 1)`;
//! - between variance `tau^2`: `(sum_i w_i (X_iw - X_ww)^2 - (I - 1) sigma^2) / c` with
//!   `c = w - sum_i w_i^2 / w`, set to 0 (and then every Z to 0) when negative. With several
//!   collectives sharing one `sigma^2` and `tau^2` (the cells of many parents), the Bühlmann-Gisler
//!   hierarchical estimator averages `max(A_h / c_h, 0)` over the collectives;
//! - `k = sigma^2 / tau^2`, `Z_i = w_i / (w_i + k)`;
//! - the collective mean is weighted by Z (`sum Z_i X_iw / sum Z_i`), or is the parent's estimate
//!   when the groups are blended towards a known parent.
//!
//! Observations with weight 0 carry no information and are ignored; a group left without any
//! weight takes the collective mean with Z = 0.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CredibilityError {
    #[error("{input}: line {line}: `{column}` {message}")]
    Row {
        input: String,
        line: u64,
        column: String,
        message: String,
    },
    #[error("{input}: {message}")]
    Table { input: String, message: String },
    #[error(
        "no group has observations in two periods, so the within-group variance cannot be estimated"
    )]
    NoRepeatedPeriods,
    #[error("no observation carries a positive weight")]
    NoWeight,
}

/// One ratio: `value` per unit of `weight` for `group` in `period`.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub group: String,
    pub period: String,
    pub value: f64,
    pub weight: f64,
}

/// What the estimators need from one group's observations (weight 0 ones left out).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct GroupSummary {
    /// Sum of the weights.
    pub weight: f64,
    /// Weighted mean of the values (0 when the weight is 0).
    pub mean: f64,
    /// Periods with a positive weight.
    pub periods: u32,
    /// `sum_t w_t (X_t - mean)^2`.
    pub within_ss: f64,
}

impl GroupSummary {
    /// Summarises `(value, weight)` pairs, ignoring those of weight 0.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (f64, f64)> + Clone) -> Self {
        let (mut weight, mut weighted, mut periods) = (0.0, 0.0, 0u32);
        for (value, w) in pairs.clone() {
            if w > 0.0 {
                weight += w;
                weighted += w * value;
                periods += 1;
            }
        }
        if weight <= 0.0 {
            return Self::default();
        }
        let mean = weighted / weight;
        let within_ss = pairs
            .into_iter()
            .filter(|(_, w)| *w > 0.0)
            .map(|(value, w)| w * (value - mean) * (value - mean))
            .sum();
        Self {
            weight,
            mean,
            periods,
            within_ss,
        }
    }

    pub fn has_data(&self) -> bool {
        self.weight > 0.0
    }
}

/// The structural parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Structure {
    pub within_variance: f64,
    pub between_variance: f64,
}

impl Structure {
    /// `sigma^2 / tau^2`; `None` (infinite) when the between variance is 0.
    pub fn k(&self) -> Option<f64> {
        (self.between_variance > 0.0).then(|| self.within_variance / self.between_variance)
    }

    /// `w / (w + k)`, 0 when the between variance is 0 or the weight is 0.
    pub fn z(&self, weight: f64) -> f64 {
        match self.k() {
            Some(k) if weight > 0.0 => weight / (weight + k),
            _ => 0.0,
        }
    }
}

/// Estimates sigma^2 and tau^2 from one or more collectives of groups that share them. A
/// collective with fewer than two groups with data says nothing about tau^2 and is left out of
/// its average.
pub fn estimate_structure(
    collectives: &[Vec<GroupSummary>],
) -> Result<Structure, CredibilityError> {
    let groups = || collectives.iter().flatten().filter(|g| g.has_data());
    if groups().next().is_none() {
        return Err(CredibilityError::NoWeight);
    }
    let degrees: u32 = groups().map(|g| g.periods - 1).sum();
    if degrees == 0 {
        return Err(CredibilityError::NoRepeatedPeriods);
    }
    let within = groups().map(|g| g.within_ss).sum::<f64>() / f64::from(degrees);
    let mut taus = Vec::new();
    for collective in collectives {
        let with_data: Vec<&GroupSummary> = collective.iter().filter(|g| g.has_data()).collect();
        if with_data.len() < 2 {
            continue;
        }
        let w: f64 = with_data.iter().map(|g| g.weight).sum();
        let mean_ww = with_data.iter().map(|g| g.weight * g.mean).sum::<f64>() / w;
        let spread: f64 = with_data
            .iter()
            .map(|g| g.weight * (g.mean - mean_ww) * (g.mean - mean_ww))
            .sum();
        let c = w - with_data.iter().map(|g| g.weight * g.weight).sum::<f64>() / w;
        let a = (spread - (with_data.len() - 1) as f64 * within) / c;
        taus.push(a.max(0.0));
    }
    let between = if taus.is_empty() {
        0.0
    } else {
        taus.iter().sum::<f64>() / taus.len() as f64
    };
    Ok(Structure {
        within_variance: within,
        between_variance: between,
    })
}

/// Credibility factor and estimate of one group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Blended {
    pub z: f64,
    pub estimate: f64,
}

/// Blends each group's mean with `towards` (a parent's estimate) or, when `None`, with the
/// Z-weighted collective mean of the groups (the weight-weighted mean if every Z is 0). Returns
/// the collective used and one [`Blended`] per group, in order.
pub fn blend(
    groups: &[GroupSummary],
    structure: &Structure,
    towards: Option<f64>,
) -> (f64, Vec<Blended>) {
    let zs: Vec<f64> = groups.iter().map(|g| structure.z(g.weight)).collect();
    let collective = towards.unwrap_or_else(|| {
        let z_sum: f64 = zs.iter().sum();
        if z_sum > 0.0 {
            groups.iter().zip(&zs).map(|(g, z)| z * g.mean).sum::<f64>() / z_sum
        } else {
            let w: f64 = groups.iter().map(|g| g.weight).sum();
            if w > 0.0 {
                groups.iter().map(|g| g.weight * g.mean).sum::<f64>() / w
            } else {
                0.0
            }
        }
    });
    let blended = groups
        .iter()
        .zip(zs)
        .map(|(g, z)| Blended {
            z,
            estimate: z * g.mean + (1.0 - z) * collective,
        })
        .collect();
    (collective, blended)
}

/// One group in a [`CredibilityReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupCredibility {
    pub group: String,
    pub weight: f64,
    /// The group's weighted mean; `null` when it has no weight.
    pub mean: Option<f64>,
    pub z: f64,
    pub estimate: f64,
}

/// The `puhui credibility --json` contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CredibilityReport {
    pub collective: f64,
    pub within_variance: f64,
    pub between_variance: f64,
    /// `within / between`; `null` when the between variance is 0 (every Z is 0).
    pub k: Option<f64>,
    pub groups: Vec<GroupCredibility>,
}

/// The Bühlmann-Straub model on one collective of groups. Groups are reported in the order of
/// their first appearance.
pub fn buhlmann_straub(
    observations: &[Observation],
) -> Result<CredibilityReport, CredibilityError> {
    let mut order: Vec<&str> = Vec::new();
    let mut by_group: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for o in observations {
        let entry = by_group.entry(o.group.as_str()).or_default();
        if entry.is_empty() && !order.contains(&o.group.as_str()) {
            order.push(o.group.as_str());
        }
        entry.push((o.value, o.weight));
    }
    let summaries: Vec<GroupSummary> = order
        .iter()
        .map(|g| GroupSummary::from_pairs(by_group[g].iter().copied()))
        .collect();
    let structure = estimate_structure(std::slice::from_ref(&summaries))?;
    let (collective, blended) = blend(&summaries, &structure, None);
    Ok(CredibilityReport {
        collective,
        within_variance: structure.within_variance,
        between_variance: structure.between_variance,
        k: structure.k(),
        groups: order
            .iter()
            .zip(&summaries)
            .zip(blended)
            .map(|((group, s), b)| GroupCredibility {
                group: (*group).to_string(),
                weight: s.weight,
                mean: s.has_data().then_some(s.mean),
                z: b.z,
                estimate: b.estimate,
            })
            .collect(),
    })
}

/// Largest credibility table read, so that a mistaken file cannot exhaust memory.
pub const MAX_CREDIBILITY_ROWS: usize = 1_000_000;

/// Reads `group,period,value,weight` CSV (extra columns ignored). `input` names the file in
/// errors.
pub fn parse_observations(input: &str, text: &str) -> Result<Vec<Observation>, CredibilityError> {
    let table_err = |message: String| CredibilityError::Table {
        input: input.to_string(),
        message,
    };
    let (mut reader, headers) = crate::csv_input::open_with_header(text).map_err(table_err)?;
    let columns = ["group", "period", "value", "weight"];
    let mut index = [0usize; 4];
    for (slot, column) in index.iter_mut().zip(columns) {
        *slot = headers
            .iter()
            .position(|h| h == column)
            .ok_or_else(|| table_err(format!("missing column `{column}`")))?;
    }
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for record in reader.records() {
        let record = record.map_err(|e| table_err(e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        let row_err = |column: &str, message: String| CredibilityError::Row {
            input: input.to_string(),
            line,
            column: column.to_string(),
            message,
        };
        if out.len() >= MAX_CREDIBILITY_ROWS {
            return Err(table_err(format!("more than {MAX_CREDIBILITY_ROWS} rows")));
        }
        let field = |i: usize| record.get(index[i]).unwrap_or("");
        let text_field = |i: usize| -> Result<String, CredibilityError> {
            let v = field(i);
            if v.is_empty() {
                Err(row_err(columns[i], "is empty".into()))
            } else {
                Ok(v.to_string())
            }
        };
        let number = |i: usize| -> Result<f64, CredibilityError> {
            let raw = field(i);
            let v: f64 = raw
                .parse()
                .map_err(|_| row_err(columns[i], format!("is not a number: `{raw}`")))?;
            if v.is_finite() {
                Ok(v)
            } else {
                Err(row_err(columns[i], format!("is not finite: `{raw}`")))
            }
        };
        let group = text_field(0)?;
        let period = text_field(1)?;
        let value = number(2)?;
        let weight = number(3)?;
        if weight < 0.0 {
            return Err(row_err("weight", format!("must be >= 0, got {weight}")));
        }
        if !seen.insert((group.clone(), period.clone())) {
            return Err(row_err(
                "period",
                format!("group `{group}` has period `{period}` twice"),
            ));
        }
        out.push(Observation {
            group,
            period,
            value,
            weight,
        });
    }
    if out.is_empty() {
        return Err(table_err("no rows".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hachemeister (1975): average claim amounts (ratios) and claim numbers (weights) of five
    /// US states over 12 quarters, as shipped in R actuar (`data(hachemeister)`).
    const RATIOS: [[f64; 12]; 5] = [
        [
            1738., 1642., 1794., 2051., 2079., 2234., 2032., 2035., 2115., 2262., 2267., 2517.,
        ],
        [
            1364., 1408., 1597., 1444., 1342., 1675., 1470., 1448., 1464., 1831., 1612., 1471.,
        ],
        [
            1759., 1685., 1479., 1763., 1674., 2103., 1502., 1622., 1828., 2155., 2233., 2059.,
        ],
        [
            1223., 1146., 1010., 1257., 1426., 1532., 1953., 1123., 1343., 1243., 1762., 1306.,
        ],
        [
            1456., 1499., 1609., 1741., 1482., 1572., 1606., 1735., 1607., 1573., 1613., 1690.,
        ],
    ];
    const WEIGHTS: [[f64; 12]; 5] = [
        [
            7861., 9251., 8706., 8575., 7917., 8263., 9456., 8003., 7365., 7832., 7849., 9077.,
        ],
        [
            1622., 1742., 1523., 1515., 1622., 1602., 1964., 1515., 1527., 1748., 1654., 1861.,
        ],
        [
            1147., 1357., 1329., 1204., 998., 1077., 1277., 1218., 896., 1003., 1108., 1121.,
        ],
        [
            407., 396., 348., 341., 315., 328., 352., 331., 287., 384., 321., 342.,
        ],
        [
            2902., 3172., 3046., 3068., 2693., 2910., 3275., 2697., 2663., 3017., 3242., 3425.,
        ],
    ];

    fn hachemeister() -> Vec<Observation> {
        let mut out = Vec::new();
        for state in 0..5 {
            for quarter in 0..12 {
                out.push(Observation {
                    group: format!("{}", state + 1),
                    period: format!("{}", quarter + 1),
                    value: RATIOS[state][quarter],
                    weight: WEIGHTS[state][quarter],
                });
            }
        }
        out
    }

    /// `cm(~state, hachemeister, ratios = ratio.1:ratio.12, weights = weight.1:weight.12)` in R
    /// actuar (Dutang, Goulet, Milhaud and Pigeon, "Credibility theory features of actuar", the
    /// package vignette) prints: collective premium 1684, between state variance 89639, within
    /// state variance 139120026, and `predict(fit)` gives the credibility premiums
    /// 2055 1524 1793 1443 1603. The state weights (100155, 19895, 13735, 4152, 36110) and means
    /// (2061, 1511, 1806, 1353, 1600) are printed in its hierarchical example. The figures are
    /// printed to 4-5 significant digits, hence the tolerance of half a unit in the last digit.
    #[test]
    fn hachemeister_matches_actuar_cm() {
        let r = buhlmann_straub(&hachemeister()).unwrap();
        assert!((r.collective - 1684.0).abs() < 0.5, "{}", r.collective);
        assert!(
            (r.between_variance - 89639.0).abs() < 0.5,
            "{}",
            r.between_variance
        );
        assert!(
            (r.within_variance - 139_120_026.0).abs() < 0.5,
            "{}",
            r.within_variance
        );
        let premiums = [2055.0, 1524.0, 1793.0, 1443.0, 1603.0];
        let weights = [100155.0, 19895.0, 13735.0, 4152.0, 36110.0];
        let means = [2061.0, 1511.0, 1806.0, 1353.0, 1600.0];
        for (i, g) in r.groups.iter().enumerate() {
            assert_eq!(g.group, format!("{}", i + 1));
            assert!((g.estimate - premiums[i]).abs() < 0.5, "{g:?}");
            assert_eq!(g.weight, weights[i]);
            assert!((g.mean.unwrap() - means[i]).abs() < 0.5, "{g:?}");
            // Z = w / (w + k), and the estimate is the blend it defines.
            let k = r.k.unwrap();
            assert!((g.z - g.weight / (g.weight + k)).abs() < 1e-12);
            let blended = g.z * g.mean.unwrap() + (1.0 - g.z) * r.collective;
            assert!((g.estimate - blended).abs() < 1e-9);
        }
        // The collective is the Z-weighted mean of the state means.
        let z_sum: f64 = r.groups.iter().map(|g| g.z).sum();
        let zm: f64 = r.groups.iter().map(|g| g.z * g.mean.unwrap()).sum();
        assert!((r.collective - zm / z_sum).abs() < 1e-9);
    }

    #[test]
    fn negative_between_variance_gives_every_z_zero() {
        // Two groups with the same mean and noisy periods: the spread between groups is smaller
        // than the within noise predicts.
        let obs = |group: &str, period: &str, value: f64| Observation {
            group: group.into(),
            period: period.into(),
            value,
            weight: 10.0,
        };
        let r = buhlmann_straub(&[
            obs("a", "1", 1.0),
            obs("a", "2", 3.0),
            obs("b", "1", 3.0),
            obs("b", "2", 1.0),
        ])
        .unwrap();
        assert_eq!(r.between_variance, 0.0);
        assert_eq!(r.k, None);
        assert!(r.groups.iter().all(|g| g.z == 0.0 && g.estimate == 2.0));
        assert_eq!(r.collective, 2.0);
    }

    #[test]
    fn group_without_weight_takes_the_collective() {
        let mut data = hachemeister();
        for o in data.iter_mut().filter(|o| o.group == "4") {
            o.weight = 0.0;
        }
        let r = buhlmann_straub(&data).unwrap();
        let g4 = &r.groups[3];
        assert_eq!((g4.z, g4.mean, g4.weight), (0.0, None, 0.0));
        assert_eq!(g4.estimate, r.collective);
    }

    #[test]
    fn one_period_per_group_is_an_error() {
        let data: Vec<Observation> = hachemeister()
            .into_iter()
            .filter(|o| o.period == "1")
            .collect();
        assert_eq!(
            buhlmann_straub(&data),
            Err(CredibilityError::NoRepeatedPeriods)
        );
    }

    #[test]
    fn csv_rows_are_checked_with_line_and_column() {
        let ok = parse_observations("t.csv", "group,period,value,weight\na,1,0.5,10\n").unwrap();
        assert_eq!(ok.len(), 1);
        let err = parse_observations("t.csv", "group,period,value,weight\na,1,x,10\n").unwrap_err();
        assert!(err.to_string().contains("t.csv: line 2: `value`"), "{err}");
        let err = parse_observations("t.csv", "group,period,value,weight\na,1,1,-1\n").unwrap_err();
        assert!(err.to_string().contains("`weight` must be >= 0"), "{err}");
        let err = parse_observations("t.csv", "group,period,value,weight\na,1,1,1\na,1,2,1\n")
            .unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        let err = parse_observations("t.csv", "group,value,weight\n").unwrap_err();
        assert!(err.to_string().contains("missing column `period`"), "{err}");
    }
}
