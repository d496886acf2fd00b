//! Canonical rendering of resource quantities (`resource.Quantity.String()`), so that
//! `1024Mi` prints as `1Gi` and `1000m` as `1`, whichever spelling was stored.
//!
//! Only formatting lives here; quantities that do not parse are shown as stored.

/// Suffix family of a quantity, which decides how it is written back.
#[derive(Clone, Copy, PartialEq)]
enum Format {
    BinarySi,
    DecimalSi,
    DecimalExponent,
}

/// A parsed quantity: `mantissa * 10^exp`, scaled by the binary factor already.
struct Parsed {
    mantissa: i128,
    exp: i32,
    format: Format,
}

/// The canonical form of a quantity value (a JSON string or number); `None` for null.
pub(crate) fn canonical(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(canonical_str(s)),
        serde_json::Value::Number(n) => Some(canonical_str(&n.to_string())),
        _ => None,
    }
}

/// The canonical form of a quantity string; unparseable input is returned unchanged.
pub(crate) fn canonical_str(s: &str) -> String {
    parse(s.trim())
        .and_then(render)
        .unwrap_or_else(|| s.to_string())
}

fn parse(s: &str) -> Option<Parsed> {
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(num_end);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut mantissa: i128 = 0;
    for c in int_part.bytes().chain(frac_part.bytes()) {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(i128::from(c - b'0'))?;
    }
    let mut exp = -i32::try_from(frac_part.len()).ok()?;
    let format = match suffix {
        "" => Format::DecimalSi,
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            let power = match suffix {
                "Ki" => 1,
                "Mi" => 2,
                "Gi" => 3,
                "Ti" => 4,
                "Pi" => 5,
                _ => 6,
            };
            mantissa = mantissa.checked_mul(1024i128.checked_pow(power)?)?;
            Format::BinarySi
        }
        "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E" => {
            exp += match suffix {
                "n" => -9,
                "u" => -6,
                "m" => -3,
                "k" => 3,
                "M" => 6,
                "G" => 9,
                "T" => 12,
                "P" => 15,
                _ => 18,
            };
            Format::DecimalSi
        }
        _ => {
            let e = suffix.strip_prefix(['e', 'E'])?;
            exp = exp.checked_add(e.parse::<i32>().ok()?)?;
            Format::DecimalExponent
        }
    };
    if negative {
        mantissa = -mantissa;
    }
    // upstream keeps nano precision at most, rounding up (away from zero)
    if exp < -9 {
        let div = 10i128.checked_pow(u32::try_from(-9 - exp).ok()?)?;
        let rounded = mantissa / div
            + if mantissa % div != 0 {
                mantissa.signum()
            } else {
                0
            };
        mantissa = rounded;
        exp = -9;
    }
    Some(Parsed {
        mantissa,
        exp,
        format,
    })
}

fn render(p: Parsed) -> Option<String> {
    let Parsed {
        mut mantissa,
        mut exp,
        mut format,
    } = p;
    if mantissa == 0 {
        return Some("0".into());
    }
    while mantissa % 10 == 0 {
        mantissa /= 10;
        exp += 1;
    }
    if format == Format::BinarySi {
        let integer = if exp >= 0 {
            mantissa.checked_mul(10i128.checked_pow(exp as u32)?)
        } else {
            None
        };
        match integer {
            Some(v) if v.abs() >= 1024 => return Some(render_binary(v)),
            _ => format = Format::DecimalSi,
        }
    }
    let rem = exp.rem_euclid(3);
    mantissa = mantissa.checked_mul(10i128.pow(rem as u32))?;
    exp -= rem;
    let suffix = match (format, exp) {
        (_, 0) => String::new(),
        (Format::DecimalSi, -9) => "n".into(),
        (Format::DecimalSi, -6) => "u".into(),
        (Format::DecimalSi, -3) => "m".into(),
        (Format::DecimalSi, 3) => "k".into(),
        (Format::DecimalSi, 6) => "M".into(),
        (Format::DecimalSi, 9) => "G".into(),
        (Format::DecimalSi, 12) => "T".into(),
        (Format::DecimalSi, 15) => "P".into(),
        (Format::DecimalSi, 18) => "E".into(),
        _ => format!("e{exp}"),
    };
    Some(format!("{mantissa}{suffix}"))
}

fn render_binary(mut v: i128) -> String {
    let mut power = 0;
    while power < 6 && v % 1024 == 0 {
        v /= 1024;
        power += 1;
    }
    let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
    format!("{v}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::canonical_str;

    #[test]
    fn canonical_forms() {
        let cases = [
            ("0", "0"),
            ("0Gi", "0"),
            ("1", "1"),
            ("1000m", "1"),
            ("1500m", "1500m"),
            ("0.5", "500m"),
            ("100m", "100m"),
            ("2000", "2k"),
            ("1500", "1500"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("512", "512"),
            ("1Ki", "1Ki"),
            ("10Gi", "10Gi"),
            ("1e3", "1e3"),
            ("1.5e3", "1500"),
            ("1E6", "1e6"),
            ("12e2", "1200"),
            ("1G", "1G"),
            ("-100m", "-100m"),
            ("1n", "1n"),
            ("0.1n", "1n"),
            ("junk", "junk"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical_str(input), want, "for {input}");
        }
    }
}
