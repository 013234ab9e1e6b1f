//! The pricing group of an enrollment, as in the population morbidity table: the age band the
//! member has reached at the start of the product's period (from the birth date in the resident
//! ID), sex, and whether they declared a pre-existing condition. It is fixed when the member
//! enrols and recorded on the enrollment, so an experience study counts exposure by group from
//! the enrollments alone.

use chrono::{Datelike, NaiveDate};

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

/// The same day `years` years earlier (28 February for a 29 February in a common year).
pub fn years_before(date: NaiveDate, years: u32) -> Option<NaiveDate> {
    let year = date.year() - i32::try_from(years).ok()?;
    NaiveDate::from_ymd_opt(year, date.month(), date.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, date.month(), 28))
}

/// The band of the age reached by `reference`: a member is at least `age` on that day when born
/// on or before the same day `age` years earlier. A birth date after `reference` is in the
/// youngest band.
pub fn age_band_on(birth_date: NaiveDate, reference: NaiveDate) -> &'static str {
    AGE_BANDS
        .iter()
        .rev()
        .find(|&&(_, age)| {
            years_before(reference, age).is_some_and(|born_by| birth_date <= born_by)
        })
        .map_or(AGE_BANDS[0].0, |&(label, _)| label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn the_band_changes_on_the_birthday_reached_by_the_reference_day() {
        let start = date("2026-01-01");
        assert_eq!(age_band_on(date("1961-01-01"), start), "65-74");
        assert_eq!(age_band_on(date("1961-01-02"), start), "55-64");
        assert_eq!(age_band_on(date("2008-01-01"), start), "18-39");
        assert_eq!(age_band_on(date("2008-01-02"), start), "0-17");
        assert_eq!(age_band_on(date("1900-06-30"), start), "85+");
        assert_eq!(age_band_on(date("2026-06-30"), start), "0-17");
        // Born on 29 February: 18 on 1 March of a common year; on a 29 February
        // reference, whoever was born by 28 February 18 years before is 18.
        assert_eq!(age_band_on(date("2008-02-29"), date("2026-02-28")), "0-17");
        assert_eq!(age_band_on(date("2008-02-29"), date("2026-03-01")), "18-39");
        assert_eq!(age_band_on(date("2010-02-28"), date("2028-02-29")), "18-39");
        assert_eq!(age_band_on(date("2010-03-01"), date("2028-02-29")), "0-17");
    }
}
