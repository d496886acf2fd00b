//! Human-readable durations, as kubectl shows ages: `HumanDuration` (2-3 significant
//! figures, e.g. `3m20s`, `2d3h`) and `ShortHumanDuration` (one unit, e.g. `5h`).
//!
//! Both tolerate up to one second of clock skew (a slightly negative duration prints
//! `0s`); anything further in the future prints `<invalid>`.

use chrono::TimeDelta;

/// `HumanDuration`: about two to three significant figures, switching units at the
/// same thresholds as upstream (seconds below 2m, `XmYs` below 10m, minutes below 3h,
/// `XhYm` below 8h, hours below 2d, `XdYh` below 8d, days below 2y, `XyYd` below 8y).
pub fn human_duration(d: TimeDelta) -> String {
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d.num_minutes();
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d.num_hours();
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        let days = hours / 24;
        return if h == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{h}h")
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let years = hours / 24 / 365;
        let days = (hours / 24) % 365;
        return if days == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{days}d")
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// `ShortHumanDuration`: a single unit (`s`, `m`, `h`, `d`, `y`), truncated.
pub fn short_human_duration(d: TimeDelta) -> String {
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 {
        return format!("{seconds}s");
    }
    let minutes = d.num_minutes();
    if minutes < 60 {
        return format!("{minutes}m");
    }
    let hours = d.num_hours();
    if hours < 24 {
        return format!("{hours}h");
    }
    if hours < 24 * 365 {
        return format!("{}d", hours / 24);
    }
    // upstream divides fractional hours here; truncation gives the same whole years
    format!("{}y", seconds / (3600 * 24 * 365))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: i64) -> TimeDelta {
        TimeDelta::seconds(s)
    }

    #[test]
    fn human_duration_boundaries() {
        let cases: &[(TimeDelta, &str)] = &[
            (secs(-2), "<invalid>"),
            (TimeDelta::milliseconds(-1999), "0s"),
            (TimeDelta::milliseconds(-1500), "0s"),
            (secs(-1), "0s"),
            (secs(0), "0s"),
            (TimeDelta::milliseconds(999), "0s"),
            (secs(5), "5s"),
            (secs(60), "60s"),
            (secs(119), "119s"),
            (secs(120), "2m"),
            (secs(200), "3m20s"),
            (secs(599), "9m59s"),
            (secs(600), "10m"),
            (secs(3 * 3600 - 1), "179m"),
            (secs(3 * 3600), "3h"),
            (secs(3 * 3600 + 60 * 5), "3h5m"),
            (secs(8 * 3600 - 1), "7h59m"),
            (secs(8 * 3600), "8h"),
            (secs(48 * 3600 - 1), "47h"),
            (secs(48 * 3600), "2d"),
            (secs(51 * 3600), "2d3h"),
            (secs(8 * 24 * 3600 - 1), "7d23h"),
            (secs(8 * 24 * 3600), "8d"),
            (secs(2 * 365 * 24 * 3600 - 1), "729d"),
            (secs(2 * 365 * 24 * 3600), "2y"),
            (secs((2 * 365 + 10) * 24 * 3600), "2y10d"),
            (secs(8 * 365 * 24 * 3600 - 1), "7y364d"),
            (secs(8 * 365 * 24 * 3600), "8y"),
            (secs(10 * 365 * 24 * 3600), "10y"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(*d), *want, "for {d:?}");
        }
    }

    #[test]
    fn short_human_duration_boundaries() {
        let cases: &[(TimeDelta, &str)] = &[
            (secs(-2), "<invalid>"),
            (secs(-1), "0s"),
            (secs(59), "59s"),
            (secs(60), "1m"),
            (secs(3599), "59m"),
            (secs(3600), "1h"),
            (secs(24 * 3600 - 1), "23h"),
            (secs(24 * 3600), "1d"),
            (secs(365 * 24 * 3600 - 1), "364d"),
            (secs(365 * 24 * 3600), "1y"),
            (secs(3 * 365 * 24 * 3600 + 5), "3y"),
        ];
        for (d, want) in cases {
            assert_eq!(short_human_duration(*d), *want, "for {d:?}");
        }
    }
}
