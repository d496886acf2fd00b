//! The JSON text forms of `meta.v1.Time`, `meta.v1.MicroTime` and `meta.v1.Duration`, as
//! upstream's Go marshallers write them: RFC 3339 in UTC (seconds, or six fractional
//! digits for MicroTime) and Go's `time.Duration` string (`1h2m3.5s`, `300ms`, `0s`).

use chrono::{DateTime, SecondsFormat, Utc};

/// Seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z), which upstream writes as `null`.
pub(crate) const GO_ZERO_SECONDS: i64 = -62_135_596_800;

/// Formats Unix seconds as `2024-01-02T03:04:05Z`.
pub(crate) fn format_time(seconds: i64) -> Option<String> {
    let t = DateTime::<Utc>::from_timestamp(seconds, 0)?;
    Some(t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// Formats Unix seconds and nanoseconds as `2024-01-02T03:04:05.123456Z` (microseconds,
/// always six digits, as upstream's RFC3339Micro layout).
pub(crate) fn format_micro_time(seconds: i64, nanos: i32) -> Option<String> {
    let nanos = u32::try_from(nanos).ok().filter(|n| *n < 1_000_000_000)?;
    let t = DateTime::<Utc>::from_timestamp(seconds, nanos - nanos % 1000)?;
    Some(t.to_rfc3339_opts(SecondsFormat::Micros, true))
}

/// Parses an RFC 3339 timestamp into Unix (seconds, nanoseconds).
pub(crate) fn parse_time(text: &str) -> Option<(i64, i32)> {
    let t = DateTime::parse_from_rfc3339(text).ok()?;
    let nanos = i32::try_from(t.timestamp_subsec_nanos()).ok()?;
    Some((t.timestamp(), nanos))
}

/// Formats nanoseconds as Go's `time.Duration.String()` does.
pub(crate) fn format_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    if u < 1_000_000_000 {
        let (unit, scale) = match u {
            0..1_000 => ("ns", 1),
            1_000..1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{sign}{}{unit}", decimal(u, scale));
    }
    let secs = u / 1_000_000_000;
    let frac = u % 1_000_000_000;
    let seconds = decimal((secs % 60) * 1_000_000_000 + frac, 1_000_000_000);
    let minutes = secs / 60;
    if minutes == 0 {
        return format!("{sign}{seconds}s");
    }
    let hours = minutes / 60;
    if hours == 0 {
        return format!("{sign}{}m{seconds}s", minutes % 60);
    }
    format!("{sign}{hours}h{}m{seconds}s", minutes % 60)
}

/// `value / scale` with the fraction's trailing zeros (and a bare `.`) removed.
fn decimal(value: u64, scale: u64) -> String {
    let whole = value / scale;
    let frac = value % scale;
    if frac == 0 {
        return whole.to_string();
    }
    let width = scale.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Parses a Go duration string (`1h2m3s`, `1.5s`, `-300ms`, `0`) into nanoseconds.
pub(crate) fn parse_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(after) => after.split_at(after.bytes().take_while(u8::is_ascii_digit).count()),
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let whole: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().ok()?
        };
        total = total.checked_add(whole.checked_mul(scale)?)?;
        // Go keeps at most the precision that still fits; 18 digits is ample for ns.
        let frac_digits = &frac_part[..frac_part.len().min(18)];
        if !frac_digits.is_empty() {
            let frac: i128 = frac_digits.parse().ok()?;
            total += frac * scale / 10i128.pow(frac_digits.len() as u32);
        }
        if total > i128::from(i64::MAX) + 1 {
            return None;
        }
        rest = after;
    }
    let total = if negative { -total } else { total };
    i64::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_match_go() {
        for (ns, text) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (300_000_000, "300ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (90_000_000_000, "1m30s"),
            (3_723_000_000_000, "1h2m3s"),
            (3_600_000_000_000, "1h0m0s"),
            (-30_000_000_000, "-30s"),
        ] {
            assert_eq!(format_duration(ns), text);
            assert_eq!(parse_duration(text), Some(ns), "{text}");
        }
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration(".5s"), Some(500_000_000));
        assert_eq!(parse_duration("2us"), Some(2_000));
        for bad in ["", "1", "s", "1x", "-", "1.s5", "99999999999999999999h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(format_duration(i64::MIN), "-2562047h47m16.854775808s");
    }

    #[test]
    fn times_match_go() {
        assert_eq!(
            format_time(1_704_164_645).as_deref(),
            Some("2024-01-02T03:04:05Z")
        );
        assert_eq!(
            format_micro_time(1_704_164_645, 123_456_789).as_deref(),
            Some("2024-01-02T03:04:05.123456Z")
        );
        assert_eq!(parse_time("2024-01-02T03:04:05Z"), Some((1_704_164_645, 0)));
        assert_eq!(
            parse_time("2024-01-02T05:04:05+02:00"),
            Some((1_704_164_645, 0))
        );
        assert_eq!(
            parse_time("2024-01-02T03:04:05.123456Z"),
            Some((1_704_164_645, 123_456_000))
        );
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(format_time(i64::MAX), None);
    }
}
