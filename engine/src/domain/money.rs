//! Money in integer fen (1 CNY = 100 fen).
//!
//! Amounts are stored and summed as whole fen so that no arithmetic on a
//! balance can lose a fraction. `Decimal` appears only where a rate multiplies
//! an amount (coinsurance), and the result comes back to fen through
//! [`round_to_fen`], the single rounding rule of the engine.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest amount a submission may carry: 100,000,000.00 CNY.
pub const MAX_SUBMITTED_AMOUNT: Fen = Fen(10_000_000_000);

/// An amount of Chinese yuan in fen. Serialised as a decimal string with two
/// decimals (`"1234.50"`), so that JSON consumers never see a float.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fen(pub i64);

/// Overflow or sign errors in money arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount arithmetic overflowed")]
    Overflow,
    #[error("amount has a fraction of a fen")]
    FractionOfFen,
    #[error("amounts are inconsistent: the result would be negative")]
    Negative,
}

impl Fen {
    pub const ZERO: Fen = Fen(0);

    /// Whole yuan to fen; `None` on overflow.
    pub fn from_yuan(yuan: i64) -> Option<Fen> {
        yuan.checked_mul(100).map(Fen)
    }

    /// The amount in yuan as an exact decimal with scale 2.
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, 2)
    }

    /// Converts an exact yuan decimal; refuses a leftover fraction of a fen
    /// instead of rounding it away (submitted amounts are taken as they are).
    pub fn from_decimal_exact(yuan: Decimal) -> Result<Fen, MoneyError> {
        let fen = yuan
            .checked_mul(Decimal::ONE_HUNDRED)
            .ok_or(MoneyError::Overflow)?;
        if !fen.fract().is_zero() {
            return Err(MoneyError::FractionOfFen);
        }
        decimal_whole_to_i64(fen)
            .map(Fen)
            .ok_or(MoneyError::Overflow)
    }

    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }

    pub fn checked_sub(self, other: Fen) -> Option<Fen> {
        self.0.checked_sub(other.0).map(Fen)
    }

    pub fn checked_mul(self, factor: i64) -> Option<Fen> {
        self.0.checked_mul(factor).map(Fen)
    }

    pub fn checked_neg(self) -> Option<Fen> {
        self.0.checked_neg().map(Fen)
    }

    /// `self + other`, or [`MoneyError::Overflow`].
    pub fn try_add(self, other: Fen) -> Result<Fen, MoneyError> {
        self.checked_add(other).ok_or(MoneyError::Overflow)
    }

    /// `self - other`, or [`MoneyError::Overflow`].
    pub fn try_sub(self, other: Fen) -> Result<Fen, MoneyError> {
        self.checked_sub(other).ok_or(MoneyError::Overflow)
    }

    /// `self - other`, floored at zero: what is left of an allowance.
    pub fn remaining_after(self, used: Fen) -> Result<Fen, MoneyError> {
        Ok(self.try_sub(used)?.max(Fen::ZERO))
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Checked sum of a sequence of amounts.
    pub fn try_sum<I: IntoIterator<Item = Fen>>(amounts: I) -> Result<Fen, MoneyError> {
        amounts
            .into_iter()
            .try_fold(Fen::ZERO, |acc, amount| acc.try_add(amount))
    }
}

fn decimal_whole_to_i64(whole: Decimal) -> Option<i64> {
    let whole = whole.trunc();
    // `mantissa / 10^scale` is exact here because the value has no fraction.
    let scale = whole.scale();
    let divisor = 10i128.checked_pow(scale)?;
    i64::try_from(whole.mantissa() / divisor).ok()
}

/// THE rounding rule: to the fen, half away from zero (0.005 -> 0.01,
/// -0.005 -> -0.01). Saturates at the `i64` range, which no amount derived
/// from validated input can reach (see [`try_round_to_fen`] for the checked
/// form used in adjudication).
pub fn round_to_fen(yuan: Decimal) -> Fen {
    try_round_to_fen(yuan).unwrap_or(if yuan.is_sign_negative() {
        Fen(i64::MIN)
    } else {
        Fen(i64::MAX)
    })
}

/// [`round_to_fen`] that reports overflow instead of saturating.
pub fn try_round_to_fen(yuan: Decimal) -> Result<Fen, MoneyError> {
    let rounded = yuan.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    Fen::from_decimal_exact(rounded)
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", magnitude / 100, magnitude % 100)
    }
}

impl Serialize for Fen {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Reading back a stored amount: a signed decimal string with at most two
/// decimals (`"-12.30"`), a whole number of yuan, or a float taken by its
/// shortest decimal representation (TOML `20000.5`). Signs are allowed here
/// because ledger deltas can be negative; submissions go through
/// [`parse_amount`] instead, which refuses them.
impl<'de> Deserialize<'de> for Fen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FenVisitor;
        impl Visitor<'_> for FenVisitor {
            type Value = Fen;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an amount in CNY such as \"1234.50\" or 1234")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Fen, E> {
                v.parse::<Fen>().map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Fen, E> {
                Fen::from_yuan(v).ok_or_else(|| E::custom("amount too large"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Fen, E> {
                i64::try_from(v)
                    .ok()
                    .and_then(Fen::from_yuan)
                    .ok_or_else(|| E::custom("amount too large"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Fen, E> {
                if !v.is_finite() {
                    return Err(E::custom("amount is not a finite number"));
                }
                format!("{v}").parse::<Fen>().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(FenVisitor)
    }
}

/// Error for a signed amount string that is not of the form `-?\d+(\.\d{1,2})?`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an amount with at most two decimals")]
pub struct FenParseError(String);

impl FromStr for Fen {
    type Err = FenParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (negative, unsigned) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let fen = parse_unsigned_decimal(unsigned)
            .ok()
            .ok_or_else(|| FenParseError(s.to_owned()))?;
        Ok(if negative { Fen(-fen) } else { Fen(fen) })
    }
}

/// Why a submitted amount was refused; `code()` is the stable API code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount must not be negative")]
    Negative,
    #[error("amount must have at most two decimals")]
    TooManyDecimals,
    #[error("amount must not exceed 100000000.00")]
    TooLarge,
    #[error("amount must be a number or a numeric string")]
    NotANumber,
}

impl AmountError {
    pub fn code(self) -> &'static str {
        match self {
            AmountError::Negative => "negative_amount",
            AmountError::TooManyDecimals => "too_many_decimals",
            AmountError::TooLarge => "amount_too_large",
            AmountError::NotANumber => "not_a_number",
        }
    }
}

/// Parses a submitted amount in CNY: a JSON number or a numeric string of
/// plain digits with an optional fraction (`"1234.5"`, `1234.50`). Trailing
/// zeros do not count as decimals (`"1.100"` is 1.10). Exponents, signs other
/// than a leading minus (refused as negative), `NaN`, `Infinity`, booleans,
/// arrays and objects are not amounts.
pub fn parse_amount(value: &serde_json::Value) -> Result<Fen, AmountError> {
    let fen = match value {
        serde_json::Value::String(text) => {
            if let Some(rest) = text.strip_prefix('-') {
                // Only call it negative if the rest is a number; "-abc" is not.
                return match parse_unsigned_decimal(rest) {
                    Ok(0) => Ok(Fen::ZERO),
                    Ok(_) | Err(AmountError::TooManyDecimals | AmountError::TooLarge) => {
                        Err(AmountError::Negative)
                    }
                    Err(other) => Err(other),
                };
            }
            parse_unsigned_decimal(text)?
        }
        serde_json::Value::Number(number) => {
            if let Some(whole) = number.as_i64() {
                if whole < 0 {
                    return Err(AmountError::Negative);
                }
                whole.checked_mul(100).ok_or(AmountError::TooLarge)?
            } else if number.is_u64() {
                // A u64 that does not fit i64 is far above the ceiling.
                return Err(AmountError::TooLarge);
            } else {
                let float = number.as_f64().ok_or(AmountError::NotANumber)?;
                if float.is_nan() {
                    return Err(AmountError::NotANumber);
                }
                if float < 0.0 {
                    return Err(AmountError::Negative);
                }
                if float.is_infinite() {
                    return Err(AmountError::TooLarge);
                }
                // Rust's `Display` for f64 prints the shortest decimal that
                // reads back as the same float and never uses an exponent, so
                // the JSON text `1234.5` is checked as the digits "1234.5".
                parse_unsigned_decimal(&format!("{float}"))?
            }
        }
        _ => return Err(AmountError::NotANumber),
    };
    let fen = Fen(fen);
    if fen > MAX_SUBMITTED_AMOUNT {
        return Err(AmountError::TooLarge);
    }
    Ok(fen)
}

/// `\d+(\.\d+)?` with at most two significant decimals, to fen.
fn parse_unsigned_decimal(text: &str) -> Result<i64, AmountError> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || !all_digits(whole)
        || !all_digits(fraction)
        || (text.contains('.') && fraction.is_empty())
    {
        return Err(AmountError::NotANumber);
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > 2 {
        return Err(AmountError::TooManyDecimals);
    }
    let whole = whole.trim_start_matches('0');
    // 18 digits of yuan already exceed what i64 fen can hold.
    if whole.len() > 16 {
        return Err(AmountError::TooLarge);
    }
    let whole_yuan: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| AmountError::TooLarge)?
    };
    let mut cents = 0i64;
    for (position, digit) in fraction.bytes().enumerate() {
        let digit = i64::from(digit - b'0');
        cents += if position == 0 { digit * 10 } else { digit };
    }
    whole_yuan
        .checked_mul(100)
        .and_then(|fen| fen.checked_add(cents))
        .ok_or(AmountError::TooLarge)
}

/// An amount as the server writes it: CNY with exactly two decimals.
pub const AMOUNT_PATTERN: &str = r"^-?[0-9]+\.[0-9]{2}$";

/// A submitted amount written as a string, as [`parse_amount`] takes it:
/// digits with an optional fraction of at most two significant decimals,
/// at most 100000000.00; a minus sign only on a zero.
pub const AMOUNT_INPUT_PATTERN: &str =
    r"^(0*([0-9]{1,8}(\.[0-9]{1,2}0*)?|100000000(\.0+)?)|-0+(\.0+)?)$";

impl utoipa::PartialSchema for Fen {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        super::wire::text(
            AMOUNT_PATTERN,
            "CNY as a decimal string with two decimals, e.g. `1234.50`",
        )
        .into()
    }
}

impl utoipa::ToSchema for Fen {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Amount")
    }
}

/// The schema of a submitted amount: a decimal string or a JSON number.
pub fn amount_input_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::Type;
    use utoipa::openapi::schema::ObjectBuilder;
    let max_yuan = MAX_SUBMITTED_AMOUNT.0 / 100;
    super::wire::one_of(
        [
            super::wire::text(
                AMOUNT_INPUT_PATTERN,
                "CNY as a decimal string, at most two decimals",
            ),
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .minimum(Some(0))
                .maximum(Some(max_yuan))
                .description(Some("CNY as a number, at most two decimals"))
                .into(),
        ],
        "An amount in CNY from 0 to 100000000.00 with at most two decimals, as a string or a number",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;

    #[test]
    fn display_pads_fen_and_keeps_sign() {
        assert_eq!(Fen(123_450).to_string(), "1234.50");
        assert_eq!(Fen(5).to_string(), "0.05");
        assert_eq!(Fen(0).to_string(), "0.00");
        assert_eq!(Fen(-1230).to_string(), "-12.30");
        assert_eq!(Fen(-5).to_string(), "-0.05");
        assert_eq!(Fen(i64::MIN).to_string(), "-92233720368547758.08");
    }

    #[test]
    fn serialises_as_decimal_string_and_reads_back() {
        let encoded = serde_json::to_string(&Fen(123_450)).unwrap();
        assert_eq!(encoded, "\"1234.50\"");
        let decoded: Fen = serde_json::from_str(&encoded).unwrap();
        assert_eq!(decoded, Fen(123_450));
        let negative: Fen = serde_json::from_str("\"-0.05\"").unwrap();
        assert_eq!(negative, Fen(-5));
        let whole_yuan: Fen = serde_json::from_str("20000").unwrap();
        assert_eq!(whole_yuan, Fen(2_000_000));
        let float: Fen = serde_json::from_str("0.1").unwrap();
        assert_eq!(float, Fen(10));
        assert!(serde_json::from_str::<Fen>("\"1.234\"").is_err());
        assert!(serde_json::from_str::<Fen>("\"abc\"").is_err());
    }

    #[test]
    fn rounding_is_half_away_from_zero_at_the_half_fen() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(round_to_fen(d("0.005")), Fen(1));
        assert_eq!(round_to_fen(d("0.0049999")), Fen(0));
        assert_eq!(round_to_fen(d("2.675")), Fen(268));
        assert_eq!(round_to_fen(d("2.665")), Fen(267), "not banker's rounding");
        assert_eq!(round_to_fen(d("-0.005")), Fen(-1));
        assert_eq!(round_to_fen(d("-2.665")), Fen(-267));
        assert_eq!(round_to_fen(d("7")), Fen(700));
    }

    #[test]
    fn exact_conversion_refuses_a_fraction_of_a_fen() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(Fen::from_decimal_exact(d("12.30")), Ok(Fen(1230)));
        assert_eq!(
            Fen::from_decimal_exact(d("12.301")),
            Err(MoneyError::FractionOfFen)
        );
        assert_eq!(
            Fen::from_decimal_exact(d("1e20")),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn checked_arithmetic_reports_overflow() {
        assert_eq!(Fen(i64::MAX).checked_add(Fen(1)), None);
        assert_eq!(Fen(i64::MIN).checked_sub(Fen(1)), None);
        assert_eq!(Fen(i64::MIN).checked_neg(), None);
        assert_eq!(Fen(3).checked_mul(4), Some(Fen(12)));
        assert_eq!(Fen::try_sum([Fen(1), Fen(2)]), Ok(Fen(3)));
        assert_eq!(
            Fen::try_sum([Fen(i64::MAX), Fen(1)]),
            Err(MoneyError::Overflow)
        );
        assert_eq!(Fen(500).remaining_after(Fen(700)), Ok(Fen::ZERO));
        assert_eq!(Fen(500).remaining_after(Fen(200)), Ok(Fen(300)));
    }

    #[test]
    fn parse_amount_accepts_numbers_and_numeric_strings() {
        assert_eq!(parse_amount(&json!(1234)), Ok(Fen(123_400)));
        assert_eq!(parse_amount(&json!(1234.5)), Ok(Fen(123_450)));
        assert_eq!(parse_amount(&json!(0.1)), Ok(Fen(10)));
        assert_eq!(parse_amount(&json!(0.29)), Ok(Fen(29)));
        assert_eq!(parse_amount(&json!("1234.56")), Ok(Fen(123_456)));
        assert_eq!(parse_amount(&json!("007.5")), Ok(Fen(750)));
        assert_eq!(parse_amount(&json!("1.100")), Ok(Fen(110)));
        assert_eq!(parse_amount(&json!(0)), Ok(Fen(0)));
        assert_eq!(parse_amount(&json!("-0")), Ok(Fen(0)));
        assert_eq!(
            parse_amount(&json!("100000000.00")),
            Ok(MAX_SUBMITTED_AMOUNT)
        );
        assert_eq!(parse_amount(&json!(100_000_000)), Ok(MAX_SUBMITTED_AMOUNT));
    }

    #[test]
    fn parse_amount_refuses_with_the_right_code() {
        let code = |v: serde_json::Value| parse_amount(&v).map_err(AmountError::code);
        assert_eq!(code(json!(-1)), Err("negative_amount"));
        assert_eq!(code(json!(-0.01)), Err("negative_amount"));
        assert_eq!(code(json!("-5.00")), Err("negative_amount"));
        assert_eq!(code(json!(1.234)), Err("too_many_decimals"));
        assert_eq!(code(json!("1.234")), Err("too_many_decimals"));
        assert_eq!(code(json!("0.001")), Err("too_many_decimals"));
        assert_eq!(code(json!("100000000.01")), Err("amount_too_large"));
        assert_eq!(code(json!(100_000_000.01)), Err("amount_too_large"));
        assert_eq!(code(json!(u64::MAX)), Err("amount_too_large"));
        assert_eq!(code(json!(1e300)), Err("amount_too_large"));
        assert_eq!(
            code(json!("99999999999999999999999")),
            Err("amount_too_large")
        );
        for not_a_number in [
            json!("NaN"),
            json!("Infinity"),
            json!("-Infinity"),
            json!("1e5"),
            json!("+5"),
            json!(" 5"),
            json!(""),
            json!("."),
            json!("5."),
            json!(".5"),
            json!("1,000"),
            json!("0x10"),
            json!("-abc"),
            json!(true),
            json!(null),
            json!([1]),
            json!({"amount": 1}),
        ] {
            assert_eq!(
                code(not_a_number.clone()),
                Err("not_a_number"),
                "{not_a_number}"
            );
        }
    }

    #[test]
    fn the_amount_input_pattern_takes_the_strings_parse_amount_takes() {
        use crate::domain::wire::testing::{agree, near, pattern_of};
        let Schema::OneOf(one_of) = amount_input_schema() else {
            panic!("amounts are a string or a number");
        };
        let RefOr::T(text) = &one_of.items[0] else {
            panic!("the string form comes first");
        };
        let pattern = pattern_of(text);
        let inputs = near(
            &[
                "100000000.00",
                "99999999.99",
                "0100000000.000",
                "-0.00",
                "1.230",
            ],
            &['1', '0', '5', '.', '-'],
            5,
        );
        agree(&pattern, &inputs, |s| {
            parse_amount(&serde_json::Value::String(s.to_owned())).is_ok()
        });
        let wire = pattern_of(&crate::domain::wire::testing::unref(
            <Fen as utoipa::PartialSchema>::schema(),
        ));
        for fen in [0, 5, -5, 123_450, i64::MAX, i64::MIN] {
            assert!(wire.is_match(&Fen(fen).to_string()), "{fen}");
        }
    }
}
