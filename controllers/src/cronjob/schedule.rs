//! Cron schedules as CronJobs take them (the standard 5-field syntax of the cron library
//! upstream uses): minute, hour, day of month, month, day of week, each a `*`, `?`,
//! number, name (`JAN`, `MON`), range `a-b`, step `/n` or comma list; and the
//! descriptors `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`,
//! `@hourly`. When both day fields are restricted a day matching either is due; when
//! one is `*` both must match. Times are evaluated in a time zone (the CronJob's
//! `timeZone`, else the controller's local zone).

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    dom: u64,
    months: u64,
    dow: u64,
    dom_star: bool,
    dow_star: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn number(s: &str, names: &[&str], offset: u32) -> Result<u32, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(i as u32 + offset);
    }
    s.parse::<u32>()
        .map_err(|_| format!("failed to parse int from {s}"))
}

/// One field: its bit mask and whether it was an unrestricted `*`/`?`.
fn field(
    expr: &str,
    min: u32,
    max: u32,
    names: &[&str],
    offset: u32,
) -> Result<(u64, bool), String> {
    let mut mask = 0u64;
    let mut star = false;
    for part in expr.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (part, None),
        };
        let step = match step {
            Some(s) => s
                .parse::<u32>()
                .map_err(|_| format!("failed to parse int from {s}"))?,
            None => 1,
        };
        if step == 0 {
            return Err(format!("step of range should be a positive number: {part}"));
        }
        let (start, end) = if range == "*" || range == "?" {
            star |= step == 1;
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (number(a, names, offset)?, number(b, names, offset)?)
        } else {
            let n = number(range, names, offset)?;
            (n, if step > 1 { max } else { n })
        };
        if start < min {
            return Err(format!(
                "beginning of range ({start}) below minimum ({min}): {part}"
            ));
        }
        if end > max {
            return Err(format!(
                "end of range ({end}) above maximum ({max}): {part}"
            ));
        }
        if start > end {
            return Err(format!(
                "beginning of range ({start}) beyond end of range ({end}): {part}"
            ));
        }
        let mut v = start;
        while v <= end {
            mask |= 1 << v;
            v += step;
        }
    }
    Ok((mask, star))
}

impl Schedule {
    /// Parses a schedule; errors say what is wrong, as the cron library does.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        let expanded = match spec {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            s if s.starts_with('@') => return Err(format!("unrecognized descriptor: {s}")),
            s => s,
        };
        let f: Vec<&str> = expanded.split_whitespace().collect();
        if f.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {}: {spec}",
                f.len()
            ));
        }
        let (minutes, _) = field(f[0], 0, 59, &[], 0)?;
        let (hours, _) = field(f[1], 0, 23, &[], 0)?;
        let (dom, dom_star) = field(f[2], 1, 31, &[], 0)?;
        let (months, _) = field(f[3], 1, 12, &MONTHS, 1)?;
        let (dow, dow_star) = field(f[4], 0, 6, &DAYS, 0)?;
        Ok(Schedule {
            minutes,
            hours,
            dom,
            months,
            dow,
            dom_star,
            dow_star,
        })
    }

    fn day_matches(&self, d: Date) -> bool {
        let dom = self.dom & (1 << d.day()) != 0;
        let dow = self.dow & (1 << d.weekday().to_sunday_zero_offset()) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first activation strictly after `t`, in `tz`; None if there is none within
    /// five years (e.g. `0 0 30 2 *`).
    pub fn next_after(&self, t: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let local = t.to_zoned(tz.clone()).datetime();
        let mut dt = DateTime::from_parts(
            local.date(),
            local
                .time()
                .with()
                .second(0)
                .subsec_nanosecond(0)
                .build()
                .ok()?,
        )
        .checked_add(1.minute())
        .ok()?;
        let limit = dt.year() + 5;
        while dt.year() <= limit {
            let date = dt.date();
            if self.months & (1 << date.month()) == 0 {
                dt = date
                    .last_of_month()
                    .tomorrow()
                    .ok()?
                    .to_datetime(Default::default());
            } else if !self.day_matches(date) {
                dt = date.tomorrow().ok()?.to_datetime(Default::default());
            } else if self.hours & (1 << dt.hour()) == 0 {
                dt = date.at(dt.hour(), 0, 0, 0).checked_add(1.hour()).ok()?;
            } else if self.minutes & (1 << dt.minute()) == 0 {
                dt = dt.checked_add(1.minute()).ok()?;
            } else {
                let ts = dt.to_zoned(tz.clone()).ok()?.timestamp();
                if ts > t {
                    return Some(ts);
                }
                dt = dt.checked_add(1.minute()).ok()?;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn next(spec: &str, from: &str) -> String {
        let s = Schedule::parse(spec).expect("schedule");
        s.next_after(ts(from), &TimeZone::UTC)
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn standard_fields() {
        assert_eq!(
            next("*/15 * * * *", "2024-03-01T10:07:30Z"),
            "2024-03-01T10:15:00Z"
        );
        assert_eq!(
            next("0 * * * *", "2024-03-01T10:00:00Z"),
            "2024-03-01T11:00:00Z"
        );
        assert_eq!(
            next("30 2 * * *", "2024-03-01T03:00:00Z"),
            "2024-03-02T02:30:00Z"
        );
        assert_eq!(
            next("0 0 1 1 *", "2024-03-01T00:00:00Z"),
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(
            next("5-10/5 9 * * MON-FRI", "2024-03-01T09:06:00Z"),
            "2024-03-01T09:10:00Z"
        );
        // Friday 1 March 2024 -> next Monday
        assert_eq!(
            next("0 9 * * mon", "2024-03-01T10:00:00Z"),
            "2024-03-04T09:00:00Z"
        );
        assert_eq!(
            next("0 0 * JAN,jun *", "2024-03-01T00:00:00Z"),
            "2024-06-01T00:00:00Z"
        );
    }

    #[test]
    fn restricted_day_fields_are_ored() {
        // the 15th, or any Sunday (3 March 2024 is a Sunday)
        assert_eq!(
            next("0 0 15 * 0", "2024-03-01T00:00:00Z"),
            "2024-03-03T00:00:00Z"
        );
        assert_eq!(
            next("0 0 15 * *", "2024-03-01T00:00:00Z"),
            "2024-03-15T00:00:00Z"
        );
    }

    #[test]
    fn descriptors_and_errors() {
        assert_eq!(
            next("@hourly", "2024-03-01T10:30:00Z"),
            "2024-03-01T11:00:00Z"
        );
        assert_eq!(
            next("@daily", "2024-03-01T10:30:00Z"),
            "2024-03-02T00:00:00Z"
        );
        assert_eq!(
            next("@weekly", "2024-03-01T10:30:00Z"),
            "2024-03-03T00:00:00Z"
        );
        assert_eq!(
            next("@monthly", "2024-03-01T10:30:00Z"),
            "2024-04-01T00:00:00Z"
        );
        assert_eq!(
            next("@yearly", "2024-03-01T10:30:00Z"),
            "2025-01-01T00:00:00Z"
        );
        assert!(Schedule::parse("* * * *").is_err());
        assert!(Schedule::parse("60 * * * *").is_err());
        assert!(Schedule::parse("@sometimes").is_err());
        assert!(Schedule::parse("*/0 * * * *").is_err());
        assert_eq!(next("0 0 30 2 *", "2024-03-01T00:00:00Z"), "");
    }

    #[test]
    fn time_zones() {
        let tz = TimeZone::get("America/New_York").expect("tz database");
        let s = Schedule::parse("0 9 * * *").expect("schedule");
        let t = s.next_after(ts("2024-07-01T00:00:00Z"), &tz).expect("next");
        assert_eq!(t.to_string(), "2024-07-01T13:00:00Z"); // 09:00 EDT
    }
}
