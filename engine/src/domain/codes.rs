//! Clinical code systems: ICD-10 diagnoses and WHO ATC drug codes.
//!
//! Error messages deliberately do not repeat the submitted code: a diagnosis
//! is health data and error texts end up in logs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error(
        "not an ICD-10 code: expected a letter and two digits, optionally a dot and a subcategory \
         (C34, C34.1, C34.10) or the Chinese clinical extension (C34.100x001)"
    )]
    MalformedIcd10,
    #[error(
        "not an ICD-10 pattern: expected a code prefix (C34, N18.5) or a range (C00-C97) whose \
         start is not after its end"
    )]
    MalformedIcdPattern,
    #[error(
        "not a WHO ATC code: expected 7 characters, an anatomical group letter, 2 digits, \
         2 letters, 2 digits (L01EB04)"
    )]
    MalformedAtc,
}

impl CodeError {
    pub fn code(self) -> &'static str {
        match self {
            CodeError::MalformedIcd10 => "malformed_icd10",
            CodeError::MalformedIcdPattern => "malformed_icd_pattern",
            CodeError::MalformedAtc => "malformed_atc",
        }
    }
}

/// An ICD-10 diagnosis code, stored normalised: upper case, without the dot
/// (`C34.1` -> `C341`, `c34.100x001` -> `C34100X001`).
///
/// Accepted forms after the three-character category (letter + 2 digits),
/// with or without the dot:
/// - nothing (`C34`), one digit (`C34.1`) or two digits (`C34.10`): WHO and
///   common national 5-character codes;
/// - the Chinese national clinical edition (国家临床版 2.0 / 医保版): three
///   characters, the first of which may be the placeholder `x` for a category
///   without a WHO subdivision (`I10.x00`), optionally followed by `x` and a
///   three-digit extension (`C34.100x001`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Icd10Code(String);

impl Icd10Code {
    /// The normalised form (upper case, no dot).
    pub fn as_normalised(&self) -> &str {
        &self.0
    }

    /// The three-character category (`C34`).
    pub fn category(&self) -> &str {
        &self.0[..3]
    }
}

fn is_upper_letter(b: u8) -> bool {
    b.is_ascii_uppercase()
}

fn parse_icd10(input: &str) -> Result<String, CodeError> {
    let upper = input.trim().to_ascii_uppercase();
    let mut normalised = String::with_capacity(upper.len());
    let mut dots = 0;
    for (position, ch) in upper.char_indices() {
        if ch == '.' {
            // The only dot allowed sits right after the category.
            if position != 3 {
                return Err(CodeError::MalformedIcd10);
            }
            dots += 1;
        } else {
            normalised.push(ch);
        }
    }
    let bytes = normalised.as_bytes();
    if bytes.len() < 3
        || !is_upper_letter(bytes[0])
        || !bytes[1].is_ascii_digit()
        || !bytes[2].is_ascii_digit()
    {
        return Err(CodeError::MalformedIcd10);
    }
    let rest = &bytes[3..];
    if dots == 1 && rest.is_empty() {
        return Err(CodeError::MalformedIcd10);
    }
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let well_formed = match rest.len() {
        0 => true,
        1 | 2 => digits(rest),
        3 => (rest[0].is_ascii_digit() || rest[0] == b'X') && digits(&rest[1..]),
        7 => {
            (rest[0].is_ascii_digit() || rest[0] == b'X')
                && digits(&rest[1..3])
                && rest[3] == b'X'
                && digits(&rest[4..])
        }
        _ => false,
    };
    if well_formed {
        Ok(normalised)
    } else {
        Err(CodeError::MalformedIcd10)
    }
}

impl FromStr for Icd10Code {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_icd10(s).map(Icd10Code)
    }
}

impl fmt::Display for Icd10Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() == 3 {
            f.write_str(&self.0)
        } else {
            write!(f, "{}.{}", &self.0[..3], &self.0[3..])
        }
    }
}

impl fmt::Debug for Icd10Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Icd10Code({self})")
    }
}

/// A set of ICD-10 codes named in a product: a prefix (`C34` covers `C34.1`
/// and `C34.100x001`; `N18.5` covers `N18.500x001` but not `N18.6`) or an
/// inclusive range (`C00-C97`, `I20-I25`; ends may also carry subcategories,
/// `C34.1-C34.3`). Matching works on the normalised code, so case and dot do
/// not matter.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum IcdPattern {
    Prefix(Icd10Code),
    Range { first: Icd10Code, last: Icd10Code },
}

impl IcdPattern {
    pub fn matches(&self, code: &Icd10Code) -> bool {
        let code = code.as_normalised();
        match self {
            IcdPattern::Prefix(prefix) => code.starts_with(prefix.as_normalised()),
            IcdPattern::Range { first, last } => {
                // Compare the code cut to the precision of each end, so that
                // `C97` as the last end includes `C97.9` and `C00` as the
                // first end includes `C00.0`.
                let cut = |end: &str| &code[..code.len().min(end.len())];
                let first = first.as_normalised();
                let last = last.as_normalised();
                cut(first) >= first && cut(last) <= last
            }
        }
    }
}

impl FromStr for IcdPattern {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('-') {
            None => s
                .parse::<Icd10Code>()
                .map(IcdPattern::Prefix)
                .map_err(|_| CodeError::MalformedIcdPattern),
            Some((first, last)) => {
                let first: Icd10Code = first.parse().map_err(|_| CodeError::MalformedIcdPattern)?;
                let last: Icd10Code = last.parse().map_err(|_| CodeError::MalformedIcdPattern)?;
                if first.as_normalised() > last.as_normalised() {
                    return Err(CodeError::MalformedIcdPattern);
                }
                Ok(IcdPattern::Range { first, last })
            }
        }
    }
}

impl fmt::Display for IcdPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IcdPattern::Prefix(prefix) => write!(f, "{prefix}"),
            IcdPattern::Range { first, last } => write!(f, "{first}-{last}"),
        }
    }
}

impl fmt::Debug for IcdPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IcdPattern({self})")
    }
}

/// A WHO ATC code at the chemical-substance level (7 characters: anatomical
/// group letter, 2 digits, 2 letters, 2 digits, e.g. `L01EB04`), upper case.
/// The first letter must be one of the 14 ATC anatomical main groups.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AtcCode(String);

/// The ATC anatomical main groups (A, B, C, D, G, H, J, L, M, N, P, R, S, V).
const ATC_MAIN_GROUPS: &[u8] = b"ABCDGHJLMNPRSV";

impl AtcCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AtcCode {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        let b = upper.as_bytes();
        let well_formed = b.len() == 7
            && ATC_MAIN_GROUPS.contains(&b[0])
            && b[1].is_ascii_digit()
            && b[2].is_ascii_digit()
            && is_upper_letter(b[3])
            && is_upper_letter(b[4])
            && b[5].is_ascii_digit()
            && b[6].is_ascii_digit();
        if well_formed {
            Ok(AtcCode(upper))
        } else {
            Err(CodeError::MalformedAtc)
        }
    }
}

impl fmt::Display for AtcCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AtcCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AtcCode({})", self.0)
    }
}

macro_rules! serde_as_display_string {
    ($type:ty) => {
        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_display_string!(Icd10Code);
serde_as_display_string!(IcdPattern);
serde_as_display_string!(AtcCode);

/// An ICD-10 code as a submission may write it: any case, the dot after the
/// category optional, white space around ignored (what [`Icd10Code`]'s parser
/// takes).
pub const ICD10_INPUT_PATTERN: &str =
    r"[A-Za-z][0-9]{2}(\.?([0-9]{1,2}|[0-9Xx][0-9]{2}([Xx][0-9]{3})?))?";

/// An ICD-10 code as the server writes it (upper case, with the dot).
pub const ICD10_PATTERN: &str = r"^[A-Z][0-9]{2}(\.([0-9]{1,2}|[0-9X][0-9]{2}(X[0-9]{3})?))?$";

/// A WHO ATC code as a submission may write it (any case, trimmed).
pub const ATC_INPUT_PATTERN: &str = r"[ABCDGHJLMNPRSVabcdghjlmnprsv][0-9]{2}[A-Za-z]{2}[0-9]{2}";

/// A WHO ATC code as the server writes it.
pub const ATC_PATTERN: &str = r"^[ABCDGHJLMNPRSV][0-9]{2}[A-Z]{2}[0-9]{2}$";

/// The schema of an ICD-10 code in a request.
pub fn icd10_input_schema() -> utoipa::openapi::schema::Schema {
    super::wire::text(
        super::wire::trimmed(ICD10_INPUT_PATTERN),
        "ICD-10 code, e.g. `C34.1` or the Chinese clinical `C34.100x001` (any case, dot optional)",
    )
}

/// The schema of an ATC code in a request.
pub fn atc_input_schema() -> utoipa::openapi::schema::Schema {
    super::wire::text(
        super::wire::trimmed(ATC_INPUT_PATTERN),
        "WHO ATC code of 7 characters, e.g. `L01EB04` (any case)",
    )
}

macro_rules! string_schema {
    ($type:ty, $name:literal, $pattern:expr, $description:literal) => {
        impl utoipa::PartialSchema for $type {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                super::wire::text($pattern, $description).into()
            }
        }
        impl utoipa::ToSchema for $type {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed($name)
            }
        }
    };
}

string_schema!(
    Icd10Code,
    "Icd10Code",
    ICD10_PATTERN,
    "ICD-10 code, upper case, with the dot after the category"
);
string_schema!(
    AtcCode,
    "AtcCode",
    ATC_PATTERN,
    "WHO ATC code of 7 characters"
);
string_schema!(
    IcdPattern,
    "IcdPattern",
    format!(
        "^{c}(-{c})?$",
        c = &ICD10_PATTERN[1..ICD10_PATTERN.len() - 1]
    ),
    "An ICD-10 code prefix (`C34`) or an inclusive range (`C00-C97`)"
);

#[cfg(test)]
mod schema_tests {
    use super::*;
    use crate::domain::wire::testing::{agree, near, pattern_of};

    const ALPHABET: &[char] = &['C', 'x', 'X', '3', '0', '.', ' '];

    #[test]
    fn the_icd10_input_pattern_takes_what_the_parser_takes() {
        let inputs = near(
            &[
                "C34",
                "C34.1",
                "C34.10",
                "C34.100",
                "C34.100x001",
                "I10.x00",
                "C34100X001",
            ],
            ALPHABET,
            5,
        );
        let pattern = pattern_of(&icd10_input_schema());
        agree(&pattern, &inputs, |s| s.parse::<Icd10Code>().is_ok());
    }

    #[test]
    fn the_icd10_output_pattern_takes_every_code_as_written() {
        let inputs = near(&["C34.100x001", "I10.x00", "N18.5"], ALPHABET, 5);
        let pattern = pattern_of(&super::super::wire::testing::unref(
            <Icd10Code as utoipa::PartialSchema>::schema(),
        ));
        for input in inputs {
            if let Ok(code) = input.parse::<Icd10Code>() {
                assert!(pattern.is_match(&code.to_string()), "{code}");
            }
        }
        assert!(!pattern.is_match("c34.1"));
    }

    #[test]
    fn the_atc_input_pattern_takes_what_the_parser_takes() {
        let inputs = near(
            &["L01EB04", "l01fd01", "A10BA02"],
            &['L', 'E', 'e', '0', '1', ' '],
            4,
        );
        let pattern = pattern_of(&atc_input_schema());
        agree(&pattern, &inputs, |s| s.parse::<AtcCode>().is_ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn icd(s: &str) -> Icd10Code {
        s.parse().unwrap()
    }

    fn pattern(s: &str) -> IcdPattern {
        s.parse().unwrap()
    }

    #[test]
    fn icd10_accepts_who_and_chinese_clinical_forms() {
        for (input, normalised, shown) in [
            ("C34", "C34", "C34"),
            ("C34.1", "C341", "C34.1"),
            ("c34.1", "C341", "C34.1"),
            ("C341", "C341", "C34.1"),
            ("C34.10", "C3410", "C34.10"),
            ("C34.100", "C34100", "C34.100"),
            ("C34.100x001", "C34100X001", "C34.100X001"),
            ("c34100X001", "C34100X001", "C34.100X001"),
            ("I10.x00", "I10X00", "I10.X00"),
            ("I10.x00x002", "I10X00X002", "I10.X00X002"),
            (" N18.5 ", "N185", "N18.5"),
            ("Z94", "Z94", "Z94"),
        ] {
            let code = icd(input);
            assert_eq!(code.as_normalised(), normalised, "{input}");
            assert_eq!(code.to_string(), shown, "{input}");
            assert_eq!(code.category(), &normalised[..3]);
        }
        assert_eq!(icd("c34.1"), icd("C341"));
    }

    #[test]
    fn icd10_refuses_malformed_codes() {
        for bad in [
            "",
            "C",
            "C3",
            "34.1",
            "CC4",
            "C3A",
            "C34.",
            "C.34",
            "C34..1",
            "C34.1.0",
            "C34.1234",
            "C34.10000",
            "C34.X",
            "C34.1X0",
            "C34.100Y001",
            "C34.100X01",
            "C34.100X0001",
            "C34-1",
            "1C34",
            "C34 1",
            "Ç34",
        ] {
            assert_eq!(
                bad.parse::<Icd10Code>(),
                Err(CodeError::MalformedIcd10),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn prefix_patterns_match_codes_below_them() {
        let lung = pattern("C34");
        assert!(lung.matches(&icd("C34")));
        assert!(lung.matches(&icd("C34.1")));
        assert!(lung.matches(&icd("c34.100x001")));
        assert!(!lung.matches(&icd("C33")));
        assert!(!lung.matches(&icd("C35")));
        let esrd = pattern("N18.5");
        assert!(esrd.matches(&icd("N18.5")));
        assert!(esrd.matches(&icd("N18.500x001")));
        assert!(!esrd.matches(&icd("N18.6")));
        assert!(
            !esrd.matches(&icd("N18")),
            "a category is not inside its subcategory"
        );
    }

    #[test]
    fn range_patterns_are_inclusive_at_both_ends() {
        let malignant = pattern("C00-C97");
        assert!(malignant.matches(&icd("C00")));
        assert!(malignant.matches(&icd("C00.0")));
        assert!(malignant.matches(&icd("C50.9")));
        assert!(malignant.matches(&icd("C97")));
        assert!(malignant.matches(&icd("C97.x00x001")));
        assert!(!malignant.matches(&icd("D00")));
        assert!(!malignant.matches(&icd("B99")));
        let ihd = pattern("i20-I25");
        assert!(ihd.matches(&icd("I21.0")));
        assert!(ihd.matches(&icd("I25")));
        assert!(!ihd.matches(&icd("I26")));
        assert!(!ihd.matches(&icd("I19")));
        let sub = pattern("C34.1-C34.3");
        assert!(sub.matches(&icd("C34.2")));
        assert!(sub.matches(&icd("C34.30")));
        assert!(!sub.matches(&icd("C34.4")));
        assert!(!sub.matches(&icd("C34")));
    }

    #[test]
    fn patterns_refuse_malformed_or_reversed_ranges() {
        for bad in [
            "",
            "C",
            "C97-C00",
            "C00-",
            "-C97",
            "C00-C97-D00",
            "X",
            "C00-C9A",
        ] {
            assert_eq!(
                bad.parse::<IcdPattern>(),
                Err(CodeError::MalformedIcdPattern),
                "{bad:?}"
            );
        }
        assert_eq!(pattern("C00-C97").to_string(), "C00-C97");
        assert_eq!(pattern("n18.5").to_string(), "N18.5");
    }

    #[test]
    fn atc_codes_are_seven_characters_in_the_who_shape() {
        assert_eq!("l01eb04".parse::<AtcCode>().unwrap().as_str(), "L01EB04");
        assert_eq!("M09AX07".parse::<AtcCode>().unwrap().to_string(), "M09AX07");
        for bad in [
            "", "L01EB0", "L01EB044", "L01E B04", "101EB04", "LA1EB04", "L01E104", "L01EBA4",
            "X01EB04", "E01EB04", "L01EB0O",
        ] {
            assert_eq!(
                bad.parse::<AtcCode>(),
                Err(CodeError::MalformedAtc),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn codes_serialise_as_strings() {
        let code: Icd10Code = serde_json::from_str("\"c34.1\"").unwrap();
        assert_eq!(serde_json::to_string(&code).unwrap(), "\"C34.1\"");
        let range: IcdPattern = serde_json::from_str("\"C00-C97\"").unwrap();
        assert_eq!(serde_json::to_string(&range).unwrap(), "\"C00-C97\"");
        let drug: AtcCode = serde_json::from_str("\"l01fd01\"").unwrap();
        assert_eq!(serde_json::to_string(&drug).unwrap(), "\"L01FD01\"");
        assert!(serde_json::from_str::<AtcCode>("\"L01\"").is_err());
    }
}
