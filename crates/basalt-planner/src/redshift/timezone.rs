//! Time zone names as Redshift (PostgreSQL) accepts them.
//!
//! A zone is, in the order PostgreSQL tries them:
//! 1. a time zone *abbreviation* such as `PST` or `CEST`: a fixed offset that never follows
//!    daylight saving time;
//! 2. an IANA time zone *name* such as `America/New_York` (matched case-insensitively), which
//!    follows the zone's daylight saving rules;
//! 3. a POSIX-style offset such as `UTC+3`, `GMT-05:30` or `+8`, where — as in PostgreSQL —
//!    a positive offset is *west* of Greenwich (`UTC+3` is three hours behind UTC).

use std::str::FromStr;

use chrono::{FixedOffset, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone};
use datafusion::common::plan_datafusion_err;
use datafusion::error::Result;

/// A resolved time zone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Zone {
    /// A fixed UTC offset (abbreviations and numeric offsets).
    Fixed(FixedOffset),
    /// An IANA zone with its daylight saving rules.
    Named(chrono_tz::Tz),
}

/// Fixed-offset abbreviations (seconds east of UTC), a common subset of PostgreSQL's
/// default `pg_timezone_abbrevs`.
const ABBREVIATIONS: &[(&str, i32)] = &[
    ("UTC", 0),
    ("UT", 0),
    ("GMT", 0),
    ("Z", 0),
    ("ZULU", 0),
    ("WET", 0),
    ("WEST", 3600),
    ("BST", 3600),
    ("CET", 3600),
    ("CEST", 7200),
    ("MET", 3600),
    ("MEST", 7200),
    ("EET", 7200),
    ("EEST", 10800),
    ("MSK", 10800),
    ("IST", 7200),
    ("PKT", 18000),
    ("ICT", 25200),
    ("WIB", 25200),
    ("SGT", 28800),
    ("HKT", 28800),
    ("AWST", 28800),
    ("JST", 32400),
    ("KST", 32400),
    ("ACST", 34200),
    ("ACDT", 37800),
    ("AEST", 36000),
    ("AEDT", 39600),
    ("NZST", 43200),
    ("NZDT", 46800),
    ("NST", -12600),
    ("NDT", -9000),
    ("AST", -14400),
    ("ADT", -10800),
    ("EST", -18000),
    ("EDT", -14400),
    ("CST", -21600),
    ("CDT", -18000),
    ("MST", -25200),
    ("MDT", -21600),
    ("PST", -28800),
    ("PDT", -25200),
    ("AKST", -32400),
    ("AKDT", -28800),
    ("HST", -36000),
];

impl Zone {
    /// Resolves a time zone name for `func`, failing with a planning error naming both.
    pub(crate) fn parse(func: &str, name: &str) -> Result<Zone> {
        Zone::try_parse(name)
            .ok_or_else(|| plan_datafusion_err!("invalid time zone \"{name}\" for {func}"))
    }

    fn try_parse(name: &str) -> Option<Zone> {
        let trimmed = name.trim();
        if trimmed.is_empty() {
            return None;
        }
        let upper = trimmed.to_ascii_uppercase();
        if let Some((_, secs)) = ABBREVIATIONS.iter().find(|(abbr, _)| *abbr == upper) {
            return FixedOffset::east_opt(*secs).map(Zone::Fixed);
        }
        if let Ok(tz) = chrono_tz::Tz::from_str(trimmed) {
            return Some(Zone::Named(tz));
        }
        if let Some(tz) = chrono_tz::TZ_VARIANTS
            .iter()
            .find(|tz| tz.name().eq_ignore_ascii_case(trimmed))
        {
            return Some(Zone::Named(*tz));
        }
        parse_posix_offset(&upper).map(Zone::Fixed)
    }

    /// Parses the session time zone of DataFusion's configuration (`+05:00` style offsets,
    /// east positive, or IANA names).
    pub(crate) fn parse_session(name: &str) -> Option<Zone> {
        let trimmed = name.trim();
        if let Some(secs) = parse_signed_hhmm(trimmed) {
            return FixedOffset::east_opt(secs).map(Zone::Fixed);
        }
        Zone::try_parse(trimmed)
    }

    /// Converts a UTC date-time into this zone's wall-clock time.
    pub(crate) fn local_from_utc(&self, utc: NaiveDateTime) -> NaiveDateTime {
        match self {
            Zone::Fixed(offset) => offset.from_utc_datetime(&utc).naive_local(),
            Zone::Named(tz) => tz.from_utc_datetime(&utc).naive_local(),
        }
    }

    /// Converts a wall-clock time in this zone into UTC.
    ///
    /// Like PostgreSQL, a time that occurs twice (when clocks go back) is read with the offset
    /// in force after the transition, and a time skipped by a forward jump is read with the
    /// offset in force before it.
    pub(crate) fn utc_from_local(&self, local: NaiveDateTime) -> Option<NaiveDateTime> {
        let offset = match self {
            Zone::Fixed(offset) => *offset,
            Zone::Named(tz) => match tz.offset_from_local_datetime(&local) {
                LocalResult::Single(offset) => offset.fix(),
                LocalResult::Ambiguous(_, later) => later.fix(),
                LocalResult::None => tz
                    .offset_from_local_datetime(&local.checked_sub_signed(TimeDelta::hours(3))?)
                    .earliest()?
                    .fix(),
            },
        };
        local.checked_sub_signed(TimeDelta::seconds(i64::from(offset.local_minus_utc())))
    }
}

/// `[UTC|GMT]±h[h][:mm]`, POSIX sign convention (positive = west of Greenwich).
fn parse_posix_offset(upper: &str) -> Option<FixedOffset> {
    let rest = upper
        .strip_prefix("UTC")
        .or_else(|| upper.strip_prefix("GMT"))
        .unwrap_or(upper);
    let secs = parse_signed_hhmm(rest)?;
    FixedOffset::east_opt(-secs)
}

/// `±h[h][:mm]` as seconds, sign as written.
fn parse_signed_hhmm(s: &str) -> Option<i32> {
    let (sign, digits) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (hours, minutes) = match digits.split_once(':') {
        Some((h, m)) => (h, m),
        None => (digits, "0"),
    };
    if hours.is_empty() || hours.len() > 2 || !hours.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if minutes.is_empty() || minutes.len() > 2 || !minutes.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = minutes.parse().ok()?;
    if hours > 15 || minutes > 59 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::Zone;
    use chrono::{FixedOffset, NaiveDate};

    #[test]
    fn zone_names() {
        assert_eq!(
            Zone::parse("T", "pst").unwrap(),
            Zone::Fixed(FixedOffset::west_opt(8 * 3600).unwrap())
        );
        assert_eq!(
            Zone::parse("T", "america/new_york").unwrap(),
            Zone::Named(chrono_tz::America::New_York)
        );
        assert_eq!(
            Zone::parse("T", "UTC+3").unwrap(),
            Zone::Fixed(FixedOffset::west_opt(3 * 3600).unwrap())
        );
        assert!(Zone::parse("T", "Mars/Olympus").is_err());
        assert_eq!(
            Zone::parse_session("+05:30"),
            Some(Zone::Fixed(FixedOffset::east_opt(5 * 3600 + 1800).unwrap()))
        );
    }

    #[test]
    fn dst_transitions() {
        let ny = Zone::Named(chrono_tz::America::New_York);
        let day = NaiveDate::from_ymd_opt(2021, 3, 14).unwrap();
        // 02:30 does not exist on 2021-03-14 in New York: read as EST (UTC-5).
        let gap = day.and_hms_opt(2, 30, 0).unwrap();
        assert_eq!(
            ny.utc_from_local(gap),
            Some(day.and_hms_opt(7, 30, 0).unwrap())
        );
        // 01:30 occurs twice on 2021-11-07: read as EST (after the transition).
        let fall = NaiveDate::from_ymd_opt(2021, 11, 7).unwrap();
        let twice = fall.and_hms_opt(1, 30, 0).unwrap();
        assert_eq!(
            ny.utc_from_local(twice),
            Some(fall.and_hms_opt(6, 30, 0).unwrap())
        );
    }
}
