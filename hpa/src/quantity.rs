//! Minimal Kubernetes resource quantity handling: parsing to milli-units and
//! formatting a milli-value the way a `DecimalSI` quantity is serialized.

use serde_json::Value;

/// Parses a Kubernetes quantity (`"250m"`, `"1"`, `"1500u"`, `"128Mi"`, `"1G"`,
/// `"1e3"`, `"0.5"`) with `machinery`'s quantity parser and returns its value in
/// milli-units, rounded up like `Quantity.MilliValue()`. Returns `None` for malformed
/// input or values that do not fit in an `i64`.
pub fn parse_milli(s: &str) -> Option<i64> {
    let nanos = machinery::quantity::Quantity::parse(s.trim())?.nanos();
    let milli = nanos.div_euclid(1_000_000) + i128::from(nanos.rem_euclid(1_000_000) != 0);
    i64::try_from(milli).ok()
}

/// Reads a quantity from JSON: strings are parsed, plain JSON numbers are accepted too.
pub fn milli_from_value(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => parse_milli(s),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.checked_mul(1000)
            } else {
                n.as_f64().and_then(|f| {
                    let m = (f * 1000.0).ceil();
                    if m.is_finite() && m.abs() < 9.0e18 {
                        Some(m as i64)
                    } else {
                        None
                    }
                })
            }
        }
        _ => None,
    }
}

/// Formats a milli-value as the canonical string of a `DecimalSI` quantity
/// (what `resource.NewMilliQuantity(v, resource.DecimalSI)` serializes to):
/// `250` -> `"250m"`, `1000` -> `"1"`, `2000000000` -> `"2M"`.
pub fn format_milli(milli: i64) -> String {
    if milli == 0 {
        return "0".to_string();
    }
    let negative = milli < 0;
    let mut mantissa: i128 = (milli as i128).abs();
    // exponent of 10 relative to base units
    let mut exp: i32 = -3;
    while mantissa % 10 == 0 {
        mantissa /= 10;
        exp += 1;
    }
    // Pick the largest multiple of 3 not above exp (bounded by the SI table).
    let mut e3 = exp.div_euclid(3) * 3;
    e3 = e3.clamp(-9, 18);
    if e3 < -3 {
        e3 = -3; // milli-values never need finer suffixes
    }
    let shift = exp - e3;
    let mantissa = mantissa * 10i128.pow(shift.max(0) as u32);
    let suffix = match e3 {
        -3 => "m",
        0 => "",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        _ => "E",
    };
    format!("{}{}{}", if negative { "-" } else { "" }, mantissa, suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_quantities() {
        assert_eq!(parse_milli("250m"), Some(250));
        assert_eq!(parse_milli("1"), Some(1000));
        assert_eq!(parse_milli("0.5"), Some(500));
        assert_eq!(parse_milli("1500u"), Some(2));
        assert_eq!(parse_milli("250000000n"), Some(250));
        assert_eq!(parse_milli("1n"), Some(1));
        assert_eq!(parse_milli("128Mi"), Some(134_217_728_000));
        assert_eq!(parse_milli("1Ki"), Some(1_024_000));
        assert_eq!(parse_milli("1G"), Some(1_000_000_000_000));
        assert_eq!(parse_milli("1e3"), Some(1_000_000));
        assert_eq!(parse_milli("1.5k"), Some(1_500_000));
        assert_eq!(parse_milli(""), None);
        assert_eq!(parse_milli("abc"), None);
        assert_eq!(parse_milli("1Zi"), None);
        assert_eq!(parse_milli("1.2.3"), None);
    }

    #[test]
    fn formats_decimal_si() {
        assert_eq!(format_milli(250), "250m");
        assert_eq!(format_milli(1000), "1");
        assert_eq!(format_milli(1500), "1500m");
        assert_eq!(format_milli(2_000_000), "2k");
        assert_eq!(format_milli(134_217_728_000), "134217728");
        assert_eq!(format_milli(200_000_000_000), "200M");
        assert_eq!(format_milli(0), "0");
    }
}
