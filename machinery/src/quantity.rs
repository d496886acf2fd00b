//! `resource.Quantity` arithmetic as quota needs it: parsing the serialized forms
//! (`500m`, `1.5Gi`, `2e3`), adding, comparing, and printing the canonical form upstream's
//! `Quantity.String()` prints (`1500m`, `1536Mi`, `0`).
//!
//! Values are held exactly in nano-units (upstream rounds anything finer up to `1n` when
//! parsing). The sum of quantities keeps the format of its first non-zero term, as
//! upstream's `Quantity.Add` does, so `512Mi + 512Mi` prints `1Gi` and `1 + 500m` prints
//! `1500m`.

use std::cmp::Ordering;
use std::fmt;

/// How a quantity prints: with decimal SI suffixes, binary (`Ki`, `Mi`) suffixes, or a
/// decimal exponent (`e3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

/// One quantity: an exact amount in nano-units and the format it prints in.
#[derive(Clone, Copy, Debug)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

const NANO: i128 = 1_000_000_000;

impl PartialEq for Quantity {
    /// Equal amounts are equal whatever their format (upstream's `Cmp`).
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl Default for Quantity {
    fn default() -> Self {
        Self::zero()
    }
}

/// Decimal SI suffixes by power of ten.
const DECIMAL_SUFFIXES: &[(&str, i32)] = &[
    ("n", -9),
    ("u", -6),
    ("m", -3),
    ("", 0),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];

/// Binary SI suffixes by power of 1024.
const BINARY_SUFFIXES: &[(&str, u32)] = &[
    ("", 0),
    ("Ki", 1),
    ("Mi", 2),
    ("Gi", 3),
    ("Ti", 4),
    ("Pi", 5),
    ("Ei", 6),
];

/// What a suffix means: a power of ten or of 1024, and the format it implies.
fn interpret_suffix(suffix: &str) -> Option<(u32, i32, Format)> {
    if let Some((_, e)) = DECIMAL_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
        return Some((10, *e, Format::DecimalSi));
    }
    if let Some((_, e)) = BINARY_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
        return Some((2, (*e * 10) as i32, Format::BinarySi));
    }
    let exp = suffix
        .strip_prefix('e')
        .or_else(|| suffix.strip_prefix('E'))?;
    let e: i32 = exp.parse().ok()?;
    Some((10, e, Format::DecimalExponent))
}

/// `n / d`, rounded away from zero (upstream rounds sub-nano precision up).
fn div_round_up(n: i128, d: i128) -> i128 {
    let q = n / d;
    if n % d == 0 {
        q
    } else if n > 0 {
        q + 1
    } else {
        q - 1
    }
}

impl Quantity {
    /// Zero, printed as `0`.
    pub fn zero() -> Self {
        Self {
            nanos: 0,
            format: Format::DecimalSi,
        }
    }

    /// A plain count (`resource.NewQuantity(n, DecimalSI)`).
    pub fn count(n: i64) -> Self {
        Self {
            nanos: i128::from(n) * NANO,
            format: Format::DecimalSi,
        }
    }

    /// Parses a serialized quantity; `None` when it is not one (or is too large).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (negative, rest) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(split);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return None;
        }
        let (base, exponent, format) = interpret_suffix(suffix)?;
        // digits as one integer, then scale by the suffix and the fraction's length
        let digits = format!("{whole}{fraction}");
        let significant = digits.trim_start_matches('0');
        let mut mantissa: i128 = if significant.is_empty() {
            0
        } else {
            significant.parse().ok()?
        };
        let mut divisor: i128 = 1;
        let frac_len = i32::try_from(fraction.len()).ok()?;
        // value = mantissa * base^exponent / 10^frac_len, in nanos (* 10^9)
        let mut ten_exp = 9 - frac_len;
        if base == 2 {
            mantissa = mantissa.checked_mul(1i128.checked_shl(exponent as u32)?)?;
        } else {
            ten_exp += exponent;
        }
        if ten_exp >= 0 {
            mantissa = mantissa.checked_mul(10i128.checked_pow(ten_exp as u32)?)?;
        } else {
            divisor = 10i128.checked_pow(ten_exp.unsigned_abs())?;
        }
        let mut nanos = div_round_up(mantissa, divisor);
        if negative {
            nanos = -nanos;
        }
        Some(Self { nanos, format })
    }

    /// The exact amount in nano-units (added for the LimitRanger, whose constraints
    /// compare and divide amounts exactly).
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// Adds `other`; a zero sum takes the other's format (upstream's `Quantity.Add`).
    pub fn add(&mut self, other: &Quantity) {
        if self.nanos == 0 {
            self.format = other.format;
        }
        self.nanos = self.nanos.saturating_add(other.nanos);
    }

    /// Rounds up to a whole number of units (upstream's `RoundUp(0)`), as storage quota
    /// counts whole bytes.
    pub fn round_up_to_units(&self) -> Self {
        Self {
            nanos: div_round_up(self.nanos, NANO) * NANO,
            format: self.format,
        }
    }

    /// The canonical decimal form: mantissa and a power of ten that is a multiple of 3.
    fn decimal_parts(&self) -> (i128, i32) {
        let mut mantissa = self.nanos;
        let mut exponent: i32 = -9;
        while mantissa != 0 && mantissa % 10 == 0 {
            mantissa /= 10;
            exponent += 1;
        }
        match exponent.rem_euclid(3) {
            1 => (mantissa * 10, exponent - 1),
            2 => (mantissa * 100, exponent - 2),
            _ => (mantissa, exponent),
        }
    }
}

impl fmt::Display for Quantity {
    /// Upstream's canonical form (`Quantity.String()` of a computed quantity).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let mut format = self.format;
        if format == Format::BinarySi && (self.nanos.abs() < 1024 * NANO || self.nanos % NANO != 0)
        {
            // small or fractional binary amounts print in decimal, without rounding
            format = Format::DecimalSi;
        }
        match format {
            Format::BinarySi => {
                let mut value = self.nanos / NANO;
                let mut power = 0;
                while power < 6 && value % 1024 == 0 {
                    value /= 1024;
                    power += 1;
                }
                write!(f, "{value}{}", BINARY_SUFFIXES[power].0)
            }
            Format::DecimalSi => {
                let (mantissa, exponent) = self.decimal_parts();
                match DECIMAL_SUFFIXES.iter().find(|(_, e)| *e == exponent) {
                    Some((suffix, _)) => write!(f, "{mantissa}{suffix}"),
                    None => write!(f, "{mantissa}e{exponent}"),
                }
            }
            Format::DecimalExponent => {
                let (mantissa, exponent) = self.decimal_parts();
                if exponent == 0 {
                    write!(f, "{mantissa}")
                } else {
                    write!(f, "{mantissa}e{exponent}")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|| panic!("quantity {s}"))
    }

    fn sum(items: &[&str]) -> String {
        let mut total = Quantity::zero();
        for i in items {
            total.add(&q(i));
        }
        total.to_string()
    }

    #[test]
    fn parses_and_prints_canonically() {
        for (input, canonical) in [
            ("500m", "500m"),
            ("1", "1"),
            ("1000m", "1"),
            ("0.5", "500m"),
            ("1.5", "1500m"),
            ("1500", "1500"),
            ("1000", "1k"),
            ("1500000", "1500k"),
            ("1Gi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Ki", "512"),
            ("1024", "1024"),
            ("100M", "100M"),
            ("1e3", "1e3"),
            ("1E", "1E"),
            ("0.1m", "100u"),
            ("0.0000000001", "1n"),
            ("0", "0"),
            ("0Gi", "0"),
            ("-1", "-1"),
        ] {
            assert_eq!(q(input).to_string(), canonical, "{input}");
        }
        for bad in ["", "abc", "1.2.3", "1Qi", "Gi", "1 Gi"] {
            assert!(Quantity::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn sums_keep_the_first_nonzero_format() {
        assert_eq!(sum(&["1", "500m"]), "1500m");
        assert_eq!(sum(&["500m", "500m", "1"]), "2");
        assert_eq!(sum(&["512Mi", "512Mi"]), "1Gi");
        assert_eq!(sum(&["0", "1Gi"]), "1Gi");
        assert_eq!(sum(&["1G", "500M"]), "1500M");
        assert_eq!(sum(&["1Gi", "1G"]), "2073741824");
        assert_eq!(sum(&[]), "0");
    }

    #[test]
    fn compares_by_amount() {
        assert_eq!(q("1Ki"), q("1024"));
        assert!(q("1") > q("999m"));
        assert_eq!(q("1.5").round_up_to_units().to_string(), "2");
        assert_eq!(q("1Gi").round_up_to_units().to_string(), "1Gi");
    }
}
