//! PRC resident identity numbers (居民身份证号码, GB 11643-1999).
//!
//! The number is personal data: it is kept only inside [`ResidentId`], whose
//! `Debug` prints the masked form, and leaves this module either masked or as
//! a keyed hash.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
}

impl Sex {
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
        }
    }
}

/// Why an ID number was refused. The messages never contain the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResidentIdError {
    #[error("a resident ID number has 18 characters")]
    WrongLength,
    #[error("the first 17 characters of a resident ID number are digits")]
    NotDigits,
    #[error("the last character of a resident ID number is a digit or X")]
    BadCheckCharacter,
    #[error("the check character does not match (GB 11643, ISO 7064 MOD 11-2)")]
    CheckDigitMismatch,
    #[error("the birth date in the resident ID number is not a calendar date")]
    InvalidBirthDate,
    #[error("the birth date in the resident ID number is before 1900-01-01 or in the future")]
    BirthDateOutOfRange,
}

impl ResidentIdError {
    pub fn code(self) -> &'static str {
        "invalid_resident_id"
    }
}

/// A validated 18-character resident ID number, upper case (`x` read as `X`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResidentId {
    normalised: String,
    birth_date: NaiveDate,
    sex: Sex,
}

/// ISO 7064 MOD 11-2 weights: 2^(17 - i) mod 11 for positions 0..17.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for each value of (weighted sum mod 11).
const CHECK_CHARACTERS: [u8; 11] = *b"10X98765432";

/// The GB 11643 check character for the first 17 digits, or `None` when the
/// input is not exactly 17 ASCII digits. Public so that tests and fixtures can
/// build valid numbers.
pub fn check_character(first_17_digits: &str) -> Option<char> {
    let bytes = first_17_digits.as_bytes();
    if bytes.len() != 17 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = bytes
        .iter()
        .zip(WEIGHTS)
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    let index = usize::try_from(sum % 11).ok()?;
    CHECK_CHARACTERS.get(index).map(|&c| char::from(c))
}

fn earliest_birth_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN)
}

impl ResidentId {
    /// Parses and validates a number against today's date (China time): length,
    /// digits, check character, and a real birth date between 1900-01-01 and
    /// `today`. Surrounding whitespace is ignored.
    pub fn parse(input: &str, today: NaiveDate) -> Result<ResidentId, ResidentIdError> {
        let normalised = input.trim().to_ascii_uppercase();
        if normalised.chars().count() != 18 || normalised.len() != 18 {
            return Err(ResidentIdError::WrongLength);
        }
        let (body, check) = normalised.split_at(17);
        if !body.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ResidentIdError::NotDigits);
        }
        let check = check.chars().next().ok_or(ResidentIdError::WrongLength)?;
        if !(check.is_ascii_digit() || check == 'X') {
            return Err(ResidentIdError::BadCheckCharacter);
        }
        if check_character(body) != Some(check) {
            return Err(ResidentIdError::CheckDigitMismatch);
        }
        let number = |range: std::ops::Range<usize>| -> Result<u32, ResidentIdError> {
            body[range]
                .parse::<u32>()
                .map_err(|_| ResidentIdError::NotDigits)
        };
        let year = i32::try_from(number(6..10)?).map_err(|_| ResidentIdError::InvalidBirthDate)?;
        let birth_date = NaiveDate::from_ymd_opt(year, number(10..12)?, number(12..14)?)
            .ok_or(ResidentIdError::InvalidBirthDate)?;
        if birth_date < earliest_birth_date() || birth_date > today {
            return Err(ResidentIdError::BirthDateOutOfRange);
        }
        // The 17th digit is the sequence code's last digit: odd for men.
        let sex = if number(16..17)? % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        };
        Ok(ResidentId {
            normalised,
            birth_date,
            sex,
        })
    }

    pub fn birth_date(&self) -> NaiveDate {
        self.birth_date
    }

    pub fn sex(&self) -> Sex {
        self.sex
    }

    /// Age in whole years on `date`.
    pub fn age_on(&self, date: NaiveDate) -> u32 {
        date.years_since(self.birth_date).unwrap_or(0)
    }

    /// First 4 and last 4 characters with 10 stars between: `3502**********123X`.
    pub fn masked(&self) -> String {
        format!(
            "{}**********{}",
            &self.normalised[..4],
            &self.normalised[14..]
        )
    }

    /// Hex HMAC-SHA-256 of the normalised number under `key`: the only form in
    /// which the number is stored (uniqueness and look-up). Keyed, because the
    /// space of valid numbers is small enough to enumerate against a plain hash.
    pub fn keyed_hash(&self, key: &[u8]) -> String {
        let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
            Ok(mac) => mac,
            // HMAC hashes over-long keys and pads short ones: every length works.
            Err(_) => unreachable!("HMAC-SHA-256 accepts keys of any length"),
        };
        mac.update(self.normalised.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Region code (first 6 digits, the administrative division at issue).
    pub fn region_code(&self) -> &str {
        &self.normalised[..6]
    }

    /// Year of birth, e.g. for age bands in statistics.
    pub fn birth_year(&self) -> i32 {
        self.birth_date.year()
    }
}

impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResidentId({})", self.masked())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid number for the region, birth date and sequence given.
    pub(crate) fn valid_id(region: &str, birth: &str, sequence: &str) -> String {
        let body = format!("{region}{birth}{sequence}");
        let check = check_character(&body).unwrap();
        format!("{body}{check}")
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
    }

    #[test]
    fn check_character_matches_the_standard_example() {
        // The worked example of GB 11643-1999, annex: 11010519491231002X.
        assert_eq!(check_character("11010519491231002"), Some('X'));
        // A second published example: 440524188001010014.
        assert_eq!(check_character("44052418800101001"), Some('4'));
        assert_eq!(check_character("1101051949123100"), None);
        assert_eq!(check_character("1101051949123100A"), None);
    }

    #[test]
    fn parses_a_valid_number_and_derives_birth_date_and_sex() {
        let id = ResidentId::parse("11010519491231002X", today()).unwrap();
        assert_eq!(
            id.birth_date(),
            NaiveDate::from_ymd_opt(1949, 12, 31).unwrap()
        );
        assert_eq!(id.sex(), Sex::Female, "17th digit 2 is even");
        assert_eq!(id.masked(), "1101**********002X");
        assert_eq!(id.region_code(), "110105");
        assert_eq!(id.age_on(today()), 76);

        let man = valid_id("350203", "19800215", "123");
        let id = ResidentId::parse(&man, today()).unwrap();
        assert_eq!(id.sex(), Sex::Male, "17th digit 3 is odd");
        assert_eq!(id.birth_year(), 1980);
    }

    #[test]
    fn lower_case_x_is_read_as_upper_case() {
        let lower = ResidentId::parse("11010519491231002x", today()).unwrap();
        let upper = ResidentId::parse("11010519491231002X", today()).unwrap();
        assert_eq!(lower, upper);
        assert_eq!(lower.keyed_hash(b"k"), upper.keyed_hash(b"k"));
    }

    #[test]
    fn every_single_digit_change_breaks_the_check() {
        let valid = valid_id("350203", "19800215", "123");
        for position in 0..17 {
            let mut bytes = valid.clone().into_bytes();
            bytes[position] = if bytes[position] == b'9' {
                b'0'
            } else {
                bytes[position] + 1
            };
            let altered = String::from_utf8(bytes).unwrap();
            assert!(
                ResidentId::parse(&altered, today()).is_err(),
                "position {position} changed but still accepted"
            );
        }
    }

    #[test]
    fn refusals_say_why() {
        let parse = |s: &str| ResidentId::parse(s, today()).err();
        assert_eq!(
            parse("1101051949123100"),
            Some(ResidentIdError::WrongLength)
        );
        assert_eq!(
            parse("11010519491231002X1"),
            Some(ResidentIdError::WrongLength)
        );
        assert_eq!(
            parse("1101051949123100AX"),
            Some(ResidentIdError::NotDigits)
        );
        assert_eq!(
            parse("11010519491231002Y"),
            Some(ResidentIdError::BadCheckCharacter)
        );
        assert_eq!(
            parse("110105194912310021"),
            Some(ResidentIdError::CheckDigitMismatch)
        );
        assert_eq!(
            parse(&valid_id("350203", "20230230", "123")),
            Some(ResidentIdError::InvalidBirthDate)
        );
        assert_eq!(
            parse(&valid_id("350203", "18991231", "123")),
            Some(ResidentIdError::BirthDateOutOfRange)
        );
        assert_eq!(
            parse(&valid_id("350203", "20261129", "123")),
            Some(ResidentIdError::BirthDateOutOfRange)
        );
        assert!(
            parse(&valid_id("350203", "20261128", "123")).is_none(),
            "born today"
        );
        assert!(parse(&valid_id("350203", "19000101", "123")).is_none());
        assert_eq!(
            parse("１１０１０５１９４９１２３１００２Ｘ"),
            Some(ResidentIdError::WrongLength)
        );
    }

    #[test]
    fn debug_never_shows_the_number() {
        let id = ResidentId::parse("11010519491231002X", today()).unwrap();
        let shown = format!("{id:?}");
        assert!(!shown.contains("11010519491231002X"));
        assert!(shown.contains("1101**********002X"));
    }

    #[test]
    fn keyed_hash_depends_on_the_key() {
        let id = ResidentId::parse("11010519491231002X", today()).unwrap();
        let first = id.keyed_hash(b"key one");
        assert_eq!(first.len(), 64);
        assert_eq!(first, id.keyed_hash(b"key one"));
        assert_ne!(first, id.keyed_hash(b"key two"));
        // RFC 4231-style cross-check against an independent HMAC computation.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key one").unwrap();
        mac.update(b"11010519491231002X");
        assert_eq!(first, hex::encode(mac.finalize().into_bytes()));
    }
}
