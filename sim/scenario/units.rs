//! Durations (`"200ms"`, `"1.5s"`) and rates (`"100Mbit"`) as people write them.
//!
//! Parsed exactly, digit by digit, into integer nanoseconds and bits per second: no
//! floating point, so `"0.1s"` is exactly 100 000 000 ns on every machine.

use crate::time::Dur;
use schemars::JsonSchema;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A duration written with a unit: `ns`, `us`, `ms`, `s`, `m`, `h` (`"0"` alone is allowed).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DurSpec(pub Dur);

/// A rate in bits per second written with a unit: `bit`, `kbit`, `Mbit`, `Gbit`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RateSpec(pub u64);

/// Why a duration or rate did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("empty value")]
    Empty,
    #[error("`{0}` is not a number followed by a unit")]
    NotANumber(String),
    #[error("`{value}` has unknown unit `{unit}` (expected one of {expected})")]
    UnknownUnit { value: String, unit: String, expected: &'static str },
    #[error("`{0}` is too large")]
    Overflow(String),
    #[error("`{0}` has more decimal places than the unit allows")]
    TooPrecise(String),
}

const DUR_UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];
const RATE_UNITS: &[(&str, u64)] =
    &[("bit", 1), ("kbit", 1_000), ("Mbit", 1_000_000), ("Gbit", 1_000_000_000)];

/// Splits `"12.5ms"` into ("12.5", "ms") and scales the decimal exactly by the unit's factor.
fn parse_scaled(s: &str, units: &[(&str, u64)], expected: &'static str) -> Result<u64, UnitError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(UnitError::Empty);
    }
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() || num.matches('.').count() > 1 || num.starts_with('.') || num.ends_with('.') {
        return Err(UnitError::NotANumber(s.to_string()));
    }
    if unit.is_empty() && num.bytes().all(|b| b == b'0' || b == b'.') {
        return Ok(0);
    }
    let factor = units.iter().find(|(u, _)| *u == unit).map(|(_, f)| *f).ok_or_else(|| {
        UnitError::UnknownUnit { value: s.to_string(), unit: unit.to_string(), expected }
    })?;
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let overflow = || UnitError::Overflow(s.to_string());
    let int: u64 = int.parse().map_err(|_| overflow())?;
    let mut total = int.checked_mul(factor).ok_or_else(overflow)?;
    let mut scale = factor;
    for d in frac.bytes() {
        if scale % 10 != 0 {
            return Err(UnitError::TooPrecise(s.to_string()));
        }
        scale /= 10;
        total = total.checked_add(u64::from(d - b'0') * scale).ok_or_else(overflow)?;
    }
    Ok(total)
}

impl std::str::FromStr for DurSpec {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        parse_scaled(s, DUR_UNITS, "ns, us, ms, s, m, h").map(|ns| DurSpec(Dur(ns)))
    }
}

impl std::str::FromStr for RateSpec {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        parse_scaled(s, RATE_UNITS, "bit, kbit, Mbit, Gbit").map(RateSpec)
    }
}

impl fmt::Display for DurSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0.as_nanos();
        match DUR_UNITS.iter().rev().find(|(_, k)| ns % k == 0 && ns != 0) {
            Some((u, k)) => write!(f, "{}{}", ns / k, u),
            None => f.write_str("0"),
        }
    }
}

impl fmt::Display for RateSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (u, k) = RATE_UNITS.iter().rev().find(|(_, k)| self.0 % k == 0).unwrap_or(&RATE_UNITS[0]);
        write!(f, "{}{}", self.0 / k, u)
    }
}

/// Serde and schema for a type written as one string in scenario files and parsed by its
/// `FromStr` (durations, rates, drawn values): the schema gives the pattern and what it is.
macro_rules! string_serde {
    ($t:ty, $what:literal, $pattern:literal) => {
        string_serde!($t, $what, $pattern, $what);
    };
    // `$noun` names the value in errors ("invalid duration: …") where the schema's
    // description (`$what`) says more.
    ($t:ty, $what:literal, $pattern:literal, $noun:literal) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse::<$t>().map_err(|e| de::Error::custom(format!("invalid {}: {e}", $noun)))
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl JsonSchema for $t {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($t).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "pattern": $pattern, "description": $what })
            }
        }
    };
}

pub(crate) use string_serde;

string_serde!(DurSpec, "duration", "^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h)|0)$");
string_serde!(RateSpec, "rate", "^[0-9]+(\\.[0-9]+)?(bit|kbit|Mbit|Gbit)$");

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Result<u64, UnitError> {
        s.parse::<DurSpec>().map(|d| d.0.as_nanos())
    }

    #[test]
    fn durations_parse_exactly() {
        assert_eq!(d("200ms"), Ok(200_000_000));
        assert_eq!(d("1.5s"), Ok(1_500_000_000));
        assert_eq!(d("0.1s"), Ok(100_000_000));
        assert_eq!(d("2h"), Ok(7_200_000_000_000));
        assert_eq!(d("0"), Ok(0));
        assert_eq!(d("1.5ns"), Err(UnitError::TooPrecise("1.5ns".into())));
    }

    #[test]
    fn bad_durations_are_rejected() {
        assert!(matches!(d("5xs"), Err(UnitError::UnknownUnit { .. })));
        assert!(matches!(d("-1s"), Err(UnitError::NotANumber(_))));
        assert!(matches!(d("5"), Err(UnitError::UnknownUnit { .. })));
        assert!(matches!(d(""), Err(UnitError::Empty)));
        assert!(matches!(d("99999999999h"), Err(UnitError::Overflow(_))));
    }

    #[test]
    fn display_round_trips() {
        for s in ["200ms", "3s", "90us", "7ns", "2h"] {
            assert_eq!(s.parse::<DurSpec>().unwrap().to_string(), s);
        }
        assert_eq!("100Mbit".parse::<RateSpec>().unwrap(), RateSpec(100_000_000));
        assert_eq!(RateSpec(1_500_000).to_string(), "1500kbit");
    }
}
