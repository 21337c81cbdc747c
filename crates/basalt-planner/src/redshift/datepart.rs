//! Redshift date part names ("Date parts for date or timestamp functions").
//!
//! Redshift accepts a long list of spellings for each date part (`year`, `years`, `y`, `yr`,
//! `yrs`, ...). Note that `m` is *minute* and `mon` is *month*, as in Redshift.

use datafusion::common::plan_datafusion_err;
use datafusion::error::{DataFusionError, Result};

/// A Redshift date part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum DatePart {
    Millennium,
    Century,
    Decade,
    Epoch,
    Year,
    Quarter,
    Month,
    Week,
    DayOfWeek,
    DayOfYear,
    Day,
    Hour,
    Minute,
    Second,
    Millisecond,
    Microsecond,
}

impl DatePart {
    /// Parses a date part name or abbreviation, case-insensitively.
    pub(crate) fn parse(name: &str) -> Option<DatePart> {
        let name = name.trim().to_ascii_lowercase();
        let part = match name.as_str() {
            "millennium" | "millennia" | "millenium" | "mil" | "mils" => DatePart::Millennium,
            "century" | "centuries" | "c" | "cent" | "cents" => DatePart::Century,
            "decade" | "decades" | "dec" | "decs" => DatePart::Decade,
            "epoch" => DatePart::Epoch,
            "year" | "years" | "y" | "yr" | "yrs" => DatePart::Year,
            "quarter" | "quarters" | "qtr" | "qtrs" => DatePart::Quarter,
            "month" | "months" | "mon" | "mons" => DatePart::Month,
            "week" | "weeks" | "w" => DatePart::Week,
            "dayofweek" | "dow" | "dw" | "weekday" => DatePart::DayOfWeek,
            "dayofyear" | "doy" | "dy" | "yearday" => DatePart::DayOfYear,
            "day" | "days" | "d" => DatePart::Day,
            "hour" | "hours" | "h" | "hr" | "hrs" => DatePart::Hour,
            "minute" | "minutes" | "m" | "min" | "mins" => DatePart::Minute,
            "second" | "seconds" | "s" | "sec" | "secs" => DatePart::Second,
            "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" | "msecond" | "mseconds"
            | "millisec" | "millisecs" | "millisecon" => DatePart::Millisecond,
            "microsecond" | "microseconds" | "microsec" | "microsecs" | "usecond" | "useconds"
            | "us" | "usec" | "usecs" => DatePart::Microsecond,
            _ => return None,
        };
        Some(part)
    }

    /// The canonical (PostgreSQL / DataFusion) name of this date part.
    pub(crate) fn canonical(self) -> &'static str {
        match self {
            DatePart::Millennium => "millennium",
            DatePart::Century => "century",
            DatePart::Decade => "decade",
            DatePart::Epoch => "epoch",
            DatePart::Year => "year",
            DatePart::Quarter => "quarter",
            DatePart::Month => "month",
            DatePart::Week => "week",
            DatePart::DayOfWeek => "dow",
            DatePart::DayOfYear => "doy",
            DatePart::Day => "day",
            DatePart::Hour => "hour",
            DatePart::Minute => "minute",
            DatePart::Second => "second",
            DatePart::Millisecond => "millisecond",
            DatePart::Microsecond => "microsecond",
        }
    }

    /// Whether DATEADD / DATEDIFF / ADD-style arithmetic accepts this part.
    pub(crate) fn is_interval_unit(self) -> bool {
        !matches!(
            self,
            DatePart::Epoch | DatePart::DayOfWeek | DatePart::DayOfYear
        )
    }

    /// Parses `name` as a date part usable by the interval arithmetic of `func`
    /// (DATEADD, DATEDIFF), with a planning error naming the function otherwise.
    pub(crate) fn parse_interval_unit(func: &str, name: &str) -> Result<DatePart> {
        match DatePart::parse(name) {
            Some(part) if part.is_interval_unit() => Ok(part),
            Some(_) => Err(plan_datafusion_err!(
                "datepart \"{name}\" is not supported for {func}"
            )),
            None => Err(invalid_datepart(func, name)),
        }
    }
}

/// The error for an unknown date part name.
pub(crate) fn invalid_datepart(func: &str, name: &str) -> DataFusionError {
    plan_datafusion_err!("invalid datepart \"{name}\" for {func}")
}

#[cfg(test)]
mod tests {
    use super::DatePart;

    #[test]
    fn datepart_abbreviations() {
        assert_eq!(DatePart::parse("YRS"), Some(DatePart::Year));
        assert_eq!(DatePart::parse("m"), Some(DatePart::Minute));
        assert_eq!(DatePart::parse("mon"), Some(DatePart::Month));
        assert_eq!(DatePart::parse("qtr"), Some(DatePart::Quarter));
        assert_eq!(DatePart::parse("us"), Some(DatePart::Microsecond));
        assert_eq!(DatePart::parse("ms"), Some(DatePart::Millisecond));
        assert_eq!(DatePart::parse("dow"), Some(DatePart::DayOfWeek));
        assert_eq!(DatePart::parse("fortnight"), None);
        assert!(DatePart::parse_interval_unit("DATEADD", "dow").is_err());
    }
}
