//! Postgres datetime template patterns (`'YYYY-MM-DD HH24:MI:SS'`): TO_CHAR for dates,
//! timestamps and times, and the translation of TO_DATE / TO_TIMESTAMP templates into the
//! chrono formats DataFusion's `to_date` / `to_timestamp` parse with.
//!
//! [`Template::parse`] splits a template the way Postgres does: the longest keyword wins
//! (`HH24` before `HH`, `MONTH` before `MON` before `MM`), a keyword may carry the `FM` (fill
//! mode: no padding, no leading zeros) or `TM` prefix and the `TH`/`th` (ordinal) suffix, text
//! in double quotes is literal (a backslash inside escapes the next character; outside, only
//! `\"` is special) and anything else is copied as is.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use datafusion::arrow::array::temporal_conversions::{
    date32_to_datetime, time64ns_to_time, time64us_to_time, timestamp_ms_to_datetime,
    timestamp_ns_to_datetime, timestamp_s_to_datetime, timestamp_us_to_datetime,
};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Time64MicrosecondType, Time64NanosecondType,
    TimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use datafusion::common::{exec_datafusion_err, exec_err, not_impl_err, plan_datafusion_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::util::{check_arg_count, coerce_string, finish, is_string, strings};

/// The scalar functions of this module.
pub(crate) fn udfs() -> Vec<ScalarUDF> {
    vec![ScalarUDF::from(ToChar::new())]
}

// ---------------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------------

/// Letter case of a name, taken from how its pattern is written (`MONTH`, `Month`, `month`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    Upper,
    Capitalized,
    Lower,
}

impl Case {
    /// Spells `name` (given capitalized, `March`) in this case.
    fn apply(self, name: &str) -> String {
        match self {
            Case::Upper => name.to_ascii_uppercase(),
            Case::Capitalized => name.to_string(),
            Case::Lower => name.to_ascii_lowercase(),
        }
    }
}

/// How a meridiem or era indicator is written: `AM`, `am`, `A.M.` or `a.m.`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Indicator {
    Upper,
    Lower,
    UpperDots,
    LowerDots,
}

impl Indicator {
    /// Spells a two-letter indicator given in capitals (`PM`) in this style.
    fn spell(self, letters: &str) -> String {
        let text: String = match self {
            Indicator::Upper | Indicator::Lower => letters.to_string(),
            Indicator::UpperDots | Indicator::LowerDots => {
                letters.chars().flat_map(|c| [c, '.']).collect()
            }
        };
        match self {
            Indicator::Lower | Indicator::LowerDots => text.to_ascii_lowercase(),
            Indicator::Upper | Indicator::UpperDots => text,
        }
    }
}

/// What a template keyword stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// `HH`, `HH12`: hour of the 12-hour clock (01–12).
    Hour12,
    /// `HH24`: hour of the day (00–23).
    Hour24,
    /// `MI`: minute (00–59).
    Minute,
    /// `SS`: second (00–59).
    Second,
    /// `MS`: millisecond (000–999).
    Millisecond,
    /// `US`: microsecond (000000–999999).
    Microsecond,
    /// `FF1`–`FF6`: the first n digits of the fraction of a second.
    Fraction(u8),
    /// `SSSS`, `SSSSS`: seconds past midnight.
    SecondsOfDay,
    /// `AM`, `PM`, `A.M.`, `P.M.` and their lower-case forms.
    Meridiem(Indicator),
    /// `AD`, `BC`, `A.D.`, `B.C.` and their lower-case forms.
    Era(Indicator),
    /// `Y,YYY`: the year with a comma.
    YearWithComma,
    /// `YYYY`, `YYY`, `YY`, `Y`: the last n digits of the year.
    Year(u8),
    /// `IYYY`, `IYY`, `IY`, `I`: the last n digits of the ISO 8601 week-numbering year.
    IsoYear(u8),
    /// `MONTH`, `Month`, `month`: the month name, blank-padded to 9 characters.
    MonthName(Case),
    /// `MON`, `Mon`, `mon`: the abbreviated month name.
    MonthAbbrev(Case),
    /// `MM`: month number (01–12).
    Month,
    /// `DAY`, `Day`, `day`: the day name, blank-padded to 9 characters.
    DayName(Case),
    /// `DY`, `Dy`, `dy`: the abbreviated day name.
    DayAbbrev(Case),
    /// `DDD`: day of the year (001–366).
    DayOfYear,
    /// `IDDD`: day of the ISO 8601 week-numbering year (001–371).
    IsoDayOfYear,
    /// `DD`: day of the month (01–31).
    DayOfMonth,
    /// `D`: day of the week, Sunday (1) to Saturday (7).
    DayOfWeek,
    /// `ID`: ISO 8601 day of the week, Monday (1) to Sunday (7).
    IsoDayOfWeek,
    /// `W`: week of the month (1–5), the first week starting on the first day of the month.
    WeekOfMonth,
    /// `WW`: week of the year (1–53), the first week starting on the first day of the year.
    WeekOfYear,
    /// `IW`: week of the ISO 8601 week-numbering year (01–53).
    IsoWeek,
    /// `CC`: century (21 for 2001–2100).
    Century,
    /// `J`: Julian day number.
    JulianDay,
    /// `Q`: quarter.
    Quarter,
    /// `RM`, `rm`: the month in Roman numerals, blank-padded to 4 characters.
    RomanMonth(Case),
    /// `TZ`, `tz`: the time zone abbreviation (`UTC` for a timestamp with time zone).
    TimeZone(Case),
    /// `TZH`: time zone hours (`+00`).
    TimeZoneHours,
    /// `TZM`: time zone minutes (`00`).
    TimeZoneMinutes,
    /// `OF`: time zone offset from UTC (`+00`).
    Offset,
    /// `FX`: fixed format, an option of TO_DATE; prints nothing.
    FixedFormat,
}

/// The template keywords, as Postgres spells them (case matters: `Month` and `month` differ,
/// `Mm` is no keyword). [`longest_keyword`] picks the longest one that matches.
const KEYWORDS: &[(&str, Pattern)] = {
    use Pattern::*;
    &[
        ("A.D.", Era(Indicator::UpperDots)),
        ("A.M.", Meridiem(Indicator::UpperDots)),
        ("AD", Era(Indicator::Upper)),
        ("AM", Meridiem(Indicator::Upper)),
        ("B.C.", Era(Indicator::UpperDots)),
        ("BC", Era(Indicator::Upper)),
        ("CC", Century),
        ("DAY", DayName(Case::Upper)),
        ("DDD", DayOfYear),
        ("DD", DayOfMonth),
        ("DY", DayAbbrev(Case::Upper)),
        ("Day", DayName(Case::Capitalized)),
        ("Dy", DayAbbrev(Case::Capitalized)),
        ("D", DayOfWeek),
        ("FF1", Fraction(1)),
        ("FF2", Fraction(2)),
        ("FF3", Fraction(3)),
        ("FF4", Fraction(4)),
        ("FF5", Fraction(5)),
        ("FF6", Fraction(6)),
        ("FX", FixedFormat),
        ("HH24", Hour24),
        ("HH12", Hour12),
        ("HH", Hour12),
        ("IDDD", IsoDayOfYear),
        ("ID", IsoDayOfWeek),
        ("IW", IsoWeek),
        ("IYYY", IsoYear(4)),
        ("IYY", IsoYear(3)),
        ("IY", IsoYear(2)),
        ("I", IsoYear(1)),
        ("J", JulianDay),
        ("MI", Minute),
        ("MM", Month),
        ("MONTH", MonthName(Case::Upper)),
        ("MON", MonthAbbrev(Case::Upper)),
        ("MS", Millisecond),
        ("Month", MonthName(Case::Capitalized)),
        ("Mon", MonthAbbrev(Case::Capitalized)),
        ("OF", Offset),
        ("P.M.", Meridiem(Indicator::UpperDots)),
        ("PM", Meridiem(Indicator::Upper)),
        ("Q", Quarter),
        ("RM", RomanMonth(Case::Upper)),
        ("SSSSS", SecondsOfDay),
        ("SSSS", SecondsOfDay),
        ("SS", Second),
        ("TZH", TimeZoneHours),
        ("TZM", TimeZoneMinutes),
        ("TZ", TimeZone(Case::Upper)),
        ("US", Microsecond),
        ("WW", WeekOfYear),
        ("W", WeekOfMonth),
        ("Y,YYY", YearWithComma),
        ("YYYY", Year(4)),
        ("YYY", Year(3)),
        ("YY", Year(2)),
        ("Y", Year(1)),
        ("a.d.", Era(Indicator::LowerDots)),
        ("a.m.", Meridiem(Indicator::LowerDots)),
        ("ad", Era(Indicator::Lower)),
        ("am", Meridiem(Indicator::Lower)),
        ("b.c.", Era(Indicator::LowerDots)),
        ("bc", Era(Indicator::Lower)),
        ("cc", Century),
        ("day", DayName(Case::Lower)),
        ("ddd", DayOfYear),
        ("dd", DayOfMonth),
        ("dy", DayAbbrev(Case::Lower)),
        ("d", DayOfWeek),
        ("ff1", Fraction(1)),
        ("ff2", Fraction(2)),
        ("ff3", Fraction(3)),
        ("ff4", Fraction(4)),
        ("ff5", Fraction(5)),
        ("ff6", Fraction(6)),
        ("fx", FixedFormat),
        ("hh24", Hour24),
        ("hh12", Hour12),
        ("hh", Hour12),
        ("iddd", IsoDayOfYear),
        ("id", IsoDayOfWeek),
        ("iw", IsoWeek),
        ("iyyy", IsoYear(4)),
        ("iyy", IsoYear(3)),
        ("iy", IsoYear(2)),
        ("i", IsoYear(1)),
        ("j", JulianDay),
        ("mi", Minute),
        ("mm", Month),
        ("month", MonthName(Case::Lower)),
        ("mon", MonthAbbrev(Case::Lower)),
        ("ms", Millisecond),
        ("of", Offset),
        ("p.m.", Meridiem(Indicator::LowerDots)),
        ("pm", Meridiem(Indicator::Lower)),
        ("q", Quarter),
        ("rm", RomanMonth(Case::Lower)),
        ("sssss", SecondsOfDay),
        ("ssss", SecondsOfDay),
        ("ss", Second),
        ("tzh", TimeZoneHours),
        ("tzm", TimeZoneMinutes),
        ("tz", TimeZone(Case::Lower)),
        ("us", Microsecond),
        ("ww", WeekOfYear),
        ("w", WeekOfMonth),
        ("y,yyy", YearWithComma),
        ("yyyy", Year(4)),
        ("yyy", Year(3)),
        ("yy", Year(2)),
        ("y", Year(1)),
    ]
};

/// The longest keyword at the start of `s`.
fn longest_keyword(s: &str) -> Option<(&'static str, Pattern)> {
    KEYWORDS
        .iter()
        .filter(|(keyword, _)| s.starts_with(keyword))
        .max_by_key(|(keyword, _)| keyword.len())
        .copied()
}

/// A template keyword with its modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) pattern: Pattern,
    /// The keyword as written (`Month`), for messages.
    pub(crate) keyword: &'static str,
    /// `FM`: no padding, no leading zeros.
    pub(crate) fill_mode: bool,
    /// `TH` ([`Case::Upper`]) or `th` ([`Case::Lower`]): an ordinal suffix (`5th`).
    pub(crate) ordinal: Option<Case>,
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    /// Text copied as is.
    Literal(String),
    /// A template pattern.
    Field(Field),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    nodes: Vec<Node>,
}

impl Template {
    /// Splits a template into literal text and fields. Every string is a template (unknown
    /// characters are literal text), so this cannot fail.
    pub(crate) fn parse(template: &str) -> Template {
        let mut nodes = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            let mut fill_mode = false;
            if let Some(after) = rest.strip_prefix("FM").or_else(|| rest.strip_prefix("fm")) {
                fill_mode = true;
                rest = after;
            } else if let Some(after) = rest.strip_prefix("TM").or_else(|| rest.strip_prefix("tm"))
            {
                // Translation mode: names are always English here.
                rest = after;
            }
            if let Some((keyword, pattern)) = longest_keyword(rest) {
                rest = &rest[keyword.len()..];
                let mut ordinal = None;
                if let Some(after) = rest.strip_prefix("TH") {
                    ordinal = Some(Case::Upper);
                    rest = after;
                } else if let Some(after) = rest.strip_prefix("th") {
                    ordinal = Some(Case::Lower);
                    rest = after;
                } else if let Some(after) = rest.strip_prefix("SP") {
                    // Spell mode: accepted and ignored, as in Postgres.
                    rest = after;
                }
                nodes.push(Node::Field(Field {
                    pattern,
                    keyword,
                    fill_mode,
                    ordinal,
                }));
                continue;
            }
            let mut chars = rest.chars();
            let Some(c) = chars.next() else {
                break;
            };
            if c == '"' {
                // Quoted text up to the closing quote; a backslash escapes the next character.
                // An unterminated quote runs to the end of the template.
                let mut text = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => text.push(chars.next().unwrap_or('\\')),
                        c => text.push(c),
                    }
                }
                push_literal(&mut nodes, &text);
                rest = chars.as_str();
            } else if c == '\\' && chars.as_str().starts_with('"') {
                push_literal(&mut nodes, "\"");
                rest = &chars.as_str()[1..];
            } else {
                let mut buf = [0; 4];
                push_literal(&mut nodes, c.encode_utf8(&mut buf));
                rest = chars.as_str();
            }
        }
        Template { nodes }
    }

    /// The pieces of the template.
    pub(crate) fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    fn fields(&self) -> impl Iterator<Item = &Field> {
        self.nodes.iter().filter_map(|node| match node {
            Node::Field(field) => Some(field),
            Node::Literal(_) => None,
        })
    }

    /// Appends `moment` formatted with this template to `out`.
    pub(crate) fn format(&self, moment: &Moment, out: &mut String) -> Result<()> {
        for node in &self.nodes {
            match node {
                Node::Literal(text) => out.push_str(text),
                Node::Field(field) => format_field(field, moment, out)?,
            }
        }
        Ok(())
    }
}

/// Appends literal text, merging it with a preceding literal.
fn push_literal(nodes: &mut Vec<Node>, text: &str) {
    if let Some(Node::Literal(last)) = nodes.last_mut() {
        last.push_str(text);
    } else {
        nodes.push(Node::Literal(text.to_string()));
    }
}

// ---------------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------------

const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Day names from Sunday.
const DAY_NAMES: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

const ROMAN_MONTHS: [&str; 12] = [
    "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII",
];

/// Julian day number of 0001-12-31 BC (the day before chrono's day 1 of the common era).
const JULIAN_DAY_OF_CE_DAY_ZERO: i64 = 1_721_425;

/// A value for TO_CHAR: a date-time, a date (at midnight) or a time of day alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Moment {
    date: Option<NaiveDate>,
    time: NaiveTime,
    /// A timestamp with time zone (shown in UTC).
    zoned: bool,
}

impl Moment {
    /// A timestamp; `zoned` for a timestamp with time zone, given in UTC.
    pub(crate) fn timestamp(value: NaiveDateTime, zoned: bool) -> Self {
        Moment {
            date: Some(value.date()),
            time: value.time(),
            zoned,
        }
    }

    /// A date, at midnight.
    pub(crate) fn date(date: NaiveDate) -> Self {
        Moment {
            date: Some(date),
            time: NaiveTime::MIN,
            zoned: false,
        }
    }

    /// A time of day (TIME), which has no date fields.
    pub(crate) fn time(time: NaiveTime) -> Self {
        Moment {
            date: None,
            time,
            zoned: false,
        }
    }
}

/// `value` with at least `width` digits, or as few as needed in fill mode.
fn number(value: i64, width: usize, fill_mode: bool) -> String {
    if fill_mode {
        value.to_string()
    } else {
        format!("{value:0width$}")
    }
}

/// `text` blank-padded to `width` characters, unless in fill mode.
fn padded(text: &str, width: usize, fill_mode: bool) -> String {
    if fill_mode {
        text.to_string()
    } else {
        format!("{text:<width$}")
    }
}

/// The English ordinal suffix for a number written as `digits` (`1st`, `12th`, `22nd`).
fn ordinal_suffix(digits: &str, case: Case) -> &'static str {
    let bytes = digits.as_bytes();
    let teen = bytes.len() > 1 && bytes[bytes.len() - 2] == b'1';
    let suffix = match bytes.last() {
        Some(b'1') if !teen => "st",
        Some(b'2') if !teen => "nd",
        Some(b'3') if !teen => "rd",
        _ => "th",
    };
    match (case, suffix) {
        (Case::Lower | Case::Capitalized, s) => s,
        (Case::Upper, "st") => "ST",
        (Case::Upper, "nd") => "ND",
        (Case::Upper, "rd") => "RD",
        (Case::Upper, _) => "TH",
    }
}

/// A year as printed: 1 BC is year 1 (chrono's year 0), as in Postgres.
fn era_year(year: i32) -> i64 {
    let year = i64::from(year);
    if year <= 0 { 1 - year } else { year }
}

/// The time zone abbreviation of a value shown in UTC: Postgres shows none for a timestamp
/// without time zone (or a date).
fn zone_name(moment: &Moment, case: Case) -> &'static str {
    match (moment.zoned, case) {
        (false, _) => "",
        (true, Case::Lower) => "utc",
        (true, _) => "UTC",
    }
}

/// Appends one field of `moment` to `out`.
fn format_field(field: &Field, moment: &Moment, out: &mut String) -> Result<()> {
    let fill = field.fill_mode;
    let time = moment.time;
    let hour = i64::from(time.hour());
    // Fraction of a second in microseconds (a leap second's extra second is dropped).
    let micros = i64::from(time.nanosecond() % 1_000_000_000 / 1_000);
    let date = || {
        moment.date.ok_or_else(|| {
            exec_datafusion_err!(
                "to_char: template pattern \"{}\" needs a date; a TIME value has none",
                field.keyword
            )
        })
    };
    // (text, whether it is a number that takes an ordinal suffix)
    let (text, numeric) = match field.pattern {
        Pattern::Hour12 => {
            let h = if hour % 12 == 0 { 12 } else { hour % 12 };
            (number(h, 2, fill), true)
        }
        Pattern::Hour24 => (number(hour, 2, fill), true),
        Pattern::Minute => (number(i64::from(time.minute()), 2, fill), true),
        Pattern::Second => (number(i64::from(time.second()), 2, fill), true),
        Pattern::Millisecond => (number(micros / 1_000, 3, false), true),
        Pattern::Microsecond => (number(micros, 6, false), true),
        Pattern::Fraction(digits) => {
            let digits = u32::from(digits.clamp(1, 6));
            let value = micros / 10_i64.pow(6 - digits);
            (number(value, digits as usize, false), true)
        }
        Pattern::SecondsOfDay => (
            i64::from(time.num_seconds_from_midnight()).to_string(),
            true,
        ),
        Pattern::Meridiem(style) => (style.spell(if hour >= 12 { "PM" } else { "AM" }), false),
        Pattern::Era(style) => (
            style.spell(if date()?.year() <= 0 { "BC" } else { "AD" }),
            false,
        ),
        Pattern::YearWithComma => {
            let year = era_year(date()?.year());
            (format!("{},{:03}", year / 1000, year % 1000), true)
        }
        Pattern::Year(digits) => (year_digits(era_year(date()?.year()), digits, fill), true),
        Pattern::IsoYear(digits) => (
            year_digits(era_year(date()?.iso_week().year()), digits, fill),
            true,
        ),
        Pattern::MonthName(case) => {
            let name = MONTH_NAMES[date()?.month0() as usize];
            (padded(&case.apply(name), 9, fill), false)
        }
        Pattern::MonthAbbrev(case) => {
            let name = MONTH_NAMES[date()?.month0() as usize];
            (case.apply(&name[..3]), false)
        }
        Pattern::Month => (number(i64::from(date()?.month()), 2, fill), true),
        Pattern::DayName(case) => {
            let name = DAY_NAMES[date()?.weekday().num_days_from_sunday() as usize];
            (padded(&case.apply(name), 9, fill), false)
        }
        Pattern::DayAbbrev(case) => {
            let name = DAY_NAMES[date()?.weekday().num_days_from_sunday() as usize];
            (case.apply(&name[..3]), false)
        }
        Pattern::DayOfYear => (number(i64::from(date()?.ordinal()), 3, fill), true),
        Pattern::IsoDayOfYear => {
            let date = date()?;
            let day = (i64::from(date.iso_week().week()) - 1) * 7
                + i64::from(date.weekday().number_from_monday());
            (number(day, 3, fill), true)
        }
        Pattern::DayOfMonth => (number(i64::from(date()?.day()), 2, fill), true),
        Pattern::DayOfWeek => (date()?.weekday().number_from_sunday().to_string(), true),
        Pattern::IsoDayOfWeek => (date()?.weekday().number_from_monday().to_string(), true),
        Pattern::WeekOfMonth => (((date()?.day() - 1) / 7 + 1).to_string(), true),
        Pattern::WeekOfYear => (
            number(i64::from((date()?.ordinal() - 1) / 7 + 1), 2, fill),
            true,
        ),
        Pattern::IsoWeek => (number(i64::from(date()?.iso_week().week()), 2, fill), true),
        Pattern::Century => {
            let year = i64::from(date()?.year());
            // Century 21 is 2001–2100; century -1 is 100 BC–1 BC.
            let century = if year > 0 {
                (year - 1) / 100 + 1
            } else {
                year / 100 - 1
            };
            let text = if (-99..=99).contains(&century) && !fill {
                if century < 0 {
                    format!("-{:02}", -century)
                } else {
                    format!("{century:02}")
                }
            } else {
                century.to_string()
            };
            (text, true)
        }
        Pattern::JulianDay => (
            (i64::from(date()?.num_days_from_ce()) + JULIAN_DAY_OF_CE_DAY_ZERO).to_string(),
            true,
        ),
        Pattern::Quarter => (((date()?.month0() / 3) + 1).to_string(), true),
        Pattern::RomanMonth(case) => {
            let numeral = case.apply(ROMAN_MONTHS[date()?.month0() as usize]);
            (padded(&numeral, 4, fill), false)
        }
        Pattern::TimeZone(case) => {
            date()?;
            (zone_name(moment, case).to_string(), false)
        }
        Pattern::TimeZoneHours => {
            date()?;
            ("+00".to_string(), false)
        }
        Pattern::TimeZoneMinutes => {
            date()?;
            ("00".to_string(), false)
        }
        Pattern::Offset => {
            date()?;
            (format!("+{}", number(0, 2, fill)), false)
        }
        Pattern::FixedFormat => (String::new(), false),
    };
    out.push_str(&text);
    if let (Some(case), true) = (field.ordinal, numeric) {
        out.push_str(ordinal_suffix(&text, case));
    }
    Ok(())
}

/// `YYYY` (at least 4 digits), `YYY`, `YY` and `Y` (the last 3, 2 or 1 digits).
fn year_digits(year: i64, digits: u8, fill_mode: bool) -> String {
    match digits {
        4 => number(year, 4, fill_mode),
        3 => number(year % 1000, 3, fill_mode),
        2 => number(year % 100, 2, fill_mode),
        _ => (year % 10).to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// TO_DATE / TO_TIMESTAMP
// ---------------------------------------------------------------------------------------------

/// Translates a Postgres template into the chrono format with which DataFusion's `to_date` /
/// `to_timestamp` (named by `func`, for messages) parse the same text. A pattern that chrono
/// cannot parse (`Q`, `W`, `J`, `CC`, `TH`...) is a planning error.
pub(crate) fn chrono_parse_format(func: &str, template: &str) -> Result<String> {
    let template = Template::parse(template);
    let unsupported = |pattern: &str| {
        plan_datafusion_err!("{func}: template pattern \"{pattern}\" is not supported")
    };
    let has_meridiem = template.fields().any(|f| {
        matches!(
            f.pattern,
            Pattern::Meridiem(Indicator::Upper | Indicator::Lower)
        )
    });
    let mut out = String::new();
    let mut zone_at = None;
    for node in template.nodes() {
        let field = match node {
            Node::Literal(text) => {
                out.push_str(&text.replace('%', "%%"));
                continue;
            }
            Node::Field(field) => field,
        };
        if let Some(case) = field.ordinal {
            return Err(unsupported(if case == Case::Upper { "TH" } else { "th" }));
        }
        let spec = match field.pattern {
            Pattern::Year(4) => "%Y",
            Pattern::Year(2) => "%y",
            Pattern::IsoYear(4) => "%G",
            Pattern::Month => "%m",
            Pattern::MonthAbbrev(_) => "%b",
            Pattern::MonthName(_) => "%B",
            Pattern::DayOfMonth => "%d",
            Pattern::DayOfYear => "%j",
            Pattern::IsoWeek => "%V",
            Pattern::IsoDayOfWeek => "%u",
            Pattern::DayAbbrev(_) => "%a",
            Pattern::DayName(_) => "%A",
            Pattern::Hour24 => "%H",
            Pattern::Hour12 if has_meridiem => "%I",
            Pattern::Hour12 => {
                return Err(plan_datafusion_err!(
                    "{func}: template pattern \"{}\" without AM or PM is not supported",
                    field.keyword
                ));
            }
            Pattern::Minute => "%M",
            Pattern::Second => "%S",
            // After a dot, any number of digits is a fraction (`.5` is 500 ms), as in Postgres.
            Pattern::Millisecond | Pattern::Microsecond | Pattern::Fraction(_)
                if out.ends_with('.') =>
            {
                out.pop();
                "%.f"
            }
            Pattern::Millisecond | Pattern::Fraction(3) => "%3f",
            Pattern::Microsecond | Pattern::Fraction(6) => "%6f",
            Pattern::Meridiem(Indicator::Upper | Indicator::Lower) => "%p",
            Pattern::TimeZone(_) => {
                zone_at = Some(out.len());
                "%Z"
            }
            Pattern::Offset => "%#z",
            Pattern::FixedFormat => "",
            _ => return Err(unsupported(field.keyword)),
        };
        out.push_str(spec);
    }
    // DataFusion reads a zone name only at the very end, after a space.
    if let Some(at) = zone_at
        && (at + 2 != out.len() || !out[..at].ends_with(' '))
    {
        return Err(plan_datafusion_err!(
            "{func}: template pattern \"TZ\" is supported only at the end of the template, \
             after a space"
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// TO_CHAR(value, format)
// ---------------------------------------------------------------------------------------------

const TIMESTAMP: DataType = DataType::Timestamp(TimeUnit::Microsecond, None);

/// `basalt_to_char(date | timestamp | time, format)`: Postgres's TO_CHAR for date-time values
/// (the rewrite of `to_char(x, format)`). Timestamps with a time zone are shown in UTC; strings
/// are read as timestamps; an empty format gives NULL. Numbers are not supported.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct ToChar {
    signature: Signature,
}

impl ToChar {
    const NAME: &'static str = "TO_CHAR";
    const USAGE: &'static str = "TO_CHAR(date | timestamp | time, format)";

    fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// Whether `dt` is a value type that TO_CHAR formats (after [`ToChar::coerce_types`]).
fn is_datetime(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Date32
            | DataType::Date64
            | DataType::Timestamp(_, _)
            | DataType::Time32(_)
            | DataType::Time64(_)
            | DataType::Null
    ) || is_string(dt)
}

/// The values of a date, timestamp or time array (`None` for NULL).
fn moments(array: &ArrayRef) -> Result<Vec<Option<Moment>>> {
    fn convert<T: ArrowPrimitiveType>(
        array: &ArrayRef,
        to_moment: impl Fn(T::Native) -> Option<Moment>,
    ) -> Result<Vec<Option<Moment>>> {
        let values = array
            .as_primitive_opt::<T>()
            .ok_or_else(|| exec_datafusion_err!("to_char: unexpected argument type"))?;
        values
            .iter()
            .map(|value| {
                value
                    .map(|v| {
                        to_moment(v)
                            .ok_or_else(|| exec_datafusion_err!("to_char: value out of range"))
                    })
                    .transpose()
            })
            .collect()
    }
    match array.data_type() {
        DataType::Date32 => convert::<Date32Type>(array, |v| {
            date32_to_datetime(v).map(|dt| Moment::date(dt.date()))
        }),
        DataType::Timestamp(unit, tz) => {
            let zoned = tz.is_some();
            let at = move |dt: NaiveDateTime| Moment::timestamp(dt, zoned);
            match unit {
                TimeUnit::Second => {
                    convert::<TimestampSecondType>(array, |v| timestamp_s_to_datetime(v).map(at))
                }
                TimeUnit::Millisecond => convert::<TimestampMillisecondType>(array, |v| {
                    timestamp_ms_to_datetime(v).map(at)
                }),
                TimeUnit::Microsecond => convert::<TimestampMicrosecondType>(array, |v| {
                    timestamp_us_to_datetime(v).map(at)
                }),
                TimeUnit::Nanosecond => convert::<TimestampNanosecondType>(array, |v| {
                    timestamp_ns_to_datetime(v).map(at)
                }),
            }
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            convert::<Time64MicrosecondType>(array, |v| time64us_to_time(v).map(Moment::time))
        }
        DataType::Time64(TimeUnit::Nanosecond) => {
            convert::<Time64NanosecondType>(array, |v| time64ns_to_time(v).map(Moment::time))
        }
        DataType::Null => Ok(vec![None; array.len()]),
        other => exec_err!("to_char: unexpected argument type {other}"),
    }
}

impl ScalarUDFImpl for ToChar {
    fn name(&self) -> &str {
        "basalt_to_char"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arg_count(Self::NAME, arg_types, 2..=2, Self::USAGE)?;
        let value = match &arg_types[0] {
            DataType::Date64 => DataType::Date32,
            DataType::Time32(_) => DataType::Time64(TimeUnit::Microsecond),
            DataType::Null => TIMESTAMP,
            dt if is_string(dt) => TIMESTAMP,
            // Dates, timestamps and times stay; anything else is refused by `return_type`
            // (an error here would lose its "not supported" kind).
            other => other.clone(),
        };
        Ok(vec![
            value,
            coerce_string(Self::NAME, "format", &arg_types[1])?,
        ])
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(dt) if dt.is_numeric() => not_impl_err!("to_char with a numeric argument"),
            Some(dt) if !is_datetime(dt) => not_impl_err!("to_char with a {dt} argument"),
            _ => Ok(DataType::Utf8),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [value, format] = args.args.as_slice() else {
            return exec_err!("{} called with {} argument(s)", Self::NAME, args.args.len());
        };
        let all_scalar = matches!(
            (value, format),
            (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_))
        );
        let rows = if all_scalar { 1 } else { args.number_rows };
        // A constant format is parsed once; a format column row by row (reusing the last).
        // An empty format gives NULL, as in Postgres.
        let (fixed, format_array) = match format {
            ColumnarValue::Scalar(scalar) => {
                let text = scalar
                    .try_as_str()
                    .ok_or_else(|| exec_datafusion_err!("TO_CHAR: expected a string format"))?;
                (
                    Some(text.filter(|t| !t.is_empty()).map(Template::parse)),
                    None,
                )
            }
            ColumnarValue::Array(array) => (None, Some(array)),
        };
        let formats = format_array
            .map(|array| strings(Self::NAME, array))
            .transpose()?;
        let moments = moments(&value.to_array(rows)?)?;
        let mut out = StringBuilder::with_capacity(moments.len(), moments.len() * 16);
        let mut last: Option<(String, Template)> = None;
        let mut text = String::new();
        for (row, moment) in moments.iter().enumerate() {
            let template = match (&fixed, formats) {
                (Some(template), _) => template.as_ref(),
                (None, Some(formats))
                    if formats.is_valid(row) && !formats.value(row).is_empty() =>
                {
                    let pattern = formats.value(row);
                    if last.as_ref().is_none_or(|(seen, _)| seen != pattern) {
                        last = Some((pattern.to_string(), Template::parse(pattern)));
                    }
                    last.as_ref().map(|(_, template)| template)
                }
                _ => None,
            };
            match (moment, template) {
                (Some(moment), Some(template)) => {
                    text.clear();
                    template.format(moment, &mut text)?;
                    out.append_value(&text);
                }
                _ => out.append_null(),
            }
        }
        finish(Arc::new(out.finish()), all_scalar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Formats `moment` with `template`.
    fn to_char(moment: &Moment, template: &str) -> Result<String> {
        let mut out = String::new();
        Template::parse(template).format(moment, &mut out)?;
        Ok(out)
    }

    fn ts(s: &str) -> Moment {
        let value = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap();
        Moment::timestamp(value, false)
    }

    fn date(y: i32, m: u32, d: u32) -> Moment {
        Moment::date(NaiveDate::from_ymd_opt(y, m, d).unwrap())
    }

    fn field(keyword: &'static str, pattern: Pattern) -> Node {
        Node::Field(Field {
            pattern,
            keyword,
            fill_mode: false,
            ordinal: None,
        })
    }

    fn literal(text: &str) -> Node {
        Node::Literal(text.to_string())
    }

    #[test]
    fn tokenizer_takes_the_longest_keyword() {
        let template = Template::parse("HH24HH12HH MONTHMONMM DDDDDD YYYYYY Y,YYY SSSSSSS");
        assert_eq!(
            template.nodes(),
            &[
                field("HH24", Pattern::Hour24),
                field("HH12", Pattern::Hour12),
                field("HH", Pattern::Hour12),
                literal(" "),
                field("MONTH", Pattern::MonthName(Case::Upper)),
                field("MON", Pattern::MonthAbbrev(Case::Upper)),
                field("MM", Pattern::Month),
                literal(" "),
                field("DDD", Pattern::DayOfYear),
                field("DDD", Pattern::DayOfYear),
                literal(" "),
                field("YYYY", Pattern::Year(4)),
                field("YY", Pattern::Year(2)),
                literal(" "),
                field("Y,YYY", Pattern::YearWithComma),
                literal(" "),
                field("SSSSS", Pattern::SecondsOfDay),
                field("SS", Pattern::Second),
            ]
        );
    }

    #[test]
    fn tokenizer_cases_prefixes_suffixes_and_quotes() {
        let template = Template::parse("FMMonth month Mon dy DDth FMDDTH \"of DD\" x\\\"k\\z");
        let nodes = template.nodes();
        assert_eq!(
            nodes[0],
            Node::Field(Field {
                pattern: Pattern::MonthName(Case::Capitalized),
                keyword: "Month",
                fill_mode: true,
                ordinal: None,
            })
        );
        assert_eq!(nodes[2], field("month", Pattern::MonthName(Case::Lower)));
        assert_eq!(
            nodes[4],
            field("Mon", Pattern::MonthAbbrev(Case::Capitalized))
        );
        assert_eq!(nodes[6], field("dy", Pattern::DayAbbrev(Case::Lower)));
        assert_eq!(
            nodes[8],
            Node::Field(Field {
                pattern: Pattern::DayOfMonth,
                keyword: "DD",
                fill_mode: false,
                ordinal: Some(Case::Lower),
            })
        );
        assert_eq!(
            nodes[10],
            Node::Field(Field {
                pattern: Pattern::DayOfMonth,
                keyword: "DD",
                fill_mode: true,
                ordinal: Some(Case::Upper),
            })
        );
        // Quoted text, `\"` outside quotes and a lone backslash are literal text.
        assert_eq!(nodes[11], literal(" of DD x\"k\\z"));
        assert_eq!(nodes.len(), 12);
        // Unknown letters, non-ASCII text and an unterminated quote are literal too.
        assert_eq!(Template::parse("zé\"ab").nodes(), &[literal("zéab")]);
        assert_eq!(Template::parse("").nodes(), &[]);
        assert_eq!(Template::parse("FM").nodes(), &[]);
    }

    #[test]
    fn formats_the_postgres_examples() {
        let t = ts("2024-03-05 14:07:09");
        let d = date(2024, 3, 5);
        let cases = [
            (t, "YYYY-MM-DD HH24:MI:SS", "2024-03-05 14:07:09"),
            (d, "YYYYMMDD", "20240305"),
            (t, "HH12:MI AM", "02:07 PM"),
            (t, "HH:MI pm", "02:07 pm"),
            (t, "HH12:MI A.M.", "02:07 P.M."),
            (d, "HH12:MI AM", "12:00 AM"),
            (d, "Month DD, YYYY", "March     05, 2024"),
            (d, "FMMonth FMDD, YYYY", "March 5, 2024"),
            (
                d,
                "MONTH|month|Mon|MON|mon",
                "MARCH    |march    |Mar|MAR|mar",
            ),
            (
                d,
                "DAY|Day|day|DY|Dy|dy",
                "TUESDAY  |Tuesday  |tuesday  |TUE|Tue|tue",
            ),
            (d, "FMDay", "Tuesday"),
            (d, "Dy Mon DDth \"of\" YYYY Q", "Tue Mar 05th of 2024 1"),
            (d, "D ID DDD WW IW", "3 2 065 10 10"),
            (d, "W J CC Y,YYY YYY YY Y", "1 2460375 21 2,024 024 24 4"),
            (d, "IYYY IYY IY I IDDD", "2024 024 24 4 065"),
            (d, "RM|rm|FMRM", "III |iii |III"),
            (d, "AD BC a.d. b.c.", "AD AD a.d. a.d."),
            (
                ts("2024-03-05 14:07:09.123456"),
                "SS.MS US FF1 FF3 FF6",
                "09.123 123456 1 123 123456",
            ),
            (t, "SSSS SSSSS", "50829 50829"),
            (t, "FMHH24:FMMI", "14:7"),
            (t, "TZ|tz|OF|TZH:TZM", "||+00|+00:00"),
            (t, "\"YYYY\" \\\"x", "YYYY \"x"),
            (d, "zz ! é", "zz ! é"),
        ];
        for (moment, pattern, expected) in cases {
            assert_eq!(to_char(&moment, pattern).unwrap(), expected, "{pattern}");
        }
    }

    #[test]
    fn ordinals() {
        let cases = [
            (1, "1st"),
            (2, "2nd"),
            (3, "3rd"),
            (4, "4th"),
            (11, "11th"),
            (12, "12th"),
            (13, "13th"),
            (21, "21st"),
            (22, "22nd"),
            (23, "23rd"),
            (31, "31st"),
        ];
        for (day, expected) in cases {
            assert_eq!(to_char(&date(2024, 1, day), "FMDDth").unwrap(), expected);
        }
        assert_eq!(to_char(&date(2024, 1, 1), "DDTH").unwrap(), "01ST");
        assert_eq!(to_char(&date(2024, 1, 2), "Monthth").unwrap(), "January  ");
    }

    #[test]
    fn bc_dates_and_zones() {
        // 44 BC is chrono's year -43.
        let bc = date(-43, 3, 15);
        assert_eq!(to_char(&bc, "YYYY BC CC").unwrap(), "0044 BC -01");
        assert_eq!(to_char(&date(2000, 1, 1), "CC").unwrap(), "20");
        assert_eq!(to_char(&date(2001, 1, 1), "CC").unwrap(), "21");
        let zoned = Moment::timestamp(
            NaiveDate::from_ymd_opt(2024, 3, 5)
                .unwrap()
                .and_hms_opt(1, 0, 0)
                .unwrap(),
            true,
        );
        assert_eq!(to_char(&zoned, "HH24 TZ tz OF").unwrap(), "01 UTC utc +00");
    }

    #[test]
    fn time_values_have_no_date() {
        let time = Moment::time(NaiveTime::from_hms_micro_opt(14, 7, 9, 5_000).unwrap());
        assert_eq!(
            to_char(&time, "HH12:MI:SS.MS PM").unwrap(),
            "02:07:09.005 PM"
        );
        let err = to_char(&time, "YYYY").unwrap_err().to_string();
        assert!(
            err.contains("template pattern \"YYYY\" needs a date"),
            "{err}"
        );
    }

    #[test]
    fn translates_templates_to_chrono() {
        let cases = [
            ("YYYY-MM-DD", "%Y-%m-%d"),
            ("DD/MM/YYYY", "%d/%m/%Y"),
            ("Mon DD YYYY", "%b %d %Y"),
            ("FMMonth FMDD, YY", "%B %d, %y"),
            ("YYYY-MM-DD HH24:MI:SS.US", "%Y-%m-%d %H:%M:%S%.f"),
            ("HH12:MI:SS.MS AM", "%I:%M:%S%.f %p"),
            ("HH24MISSMS US FF3", "%H%M%S%3f %6f %3f"),
            ("Dy, DDD DAY", "%a, %j %A"),
            ("IYYY-IW-ID", "%G-%V-%u"),
            ("YYYY-MM-DD HH24:MI:SS TZ", "%Y-%m-%d %H:%M:%S %Z"),
            ("YYYY-MM-DD HH24OF", "%Y-%m-%d %H%#z"),
            ("FXYYYY \"at\" % MM", "%Y at %% %m"),
        ];
        for (template, expected) in cases {
            assert_eq!(
                chrono_parse_format("to_date", template).unwrap(),
                expected,
                "{template}"
            );
        }
    }

    #[test]
    fn refuses_templates_chrono_cannot_parse() {
        let cases = [
            ("YYYY Q", "to_date: template pattern \"Q\" is not supported"),
            ("J", "to_date: template pattern \"J\" is not supported"),
            ("CC", "to_date: template pattern \"CC\" is not supported"),
            (
                "YYYY-WW",
                "to_date: template pattern \"WW\" is not supported",
            ),
            ("DDth", "to_date: template pattern \"th\" is not supported"),
            (
                "Y,YYY",
                "to_date: template pattern \"Y,YYY\" is not supported",
            ),
            (
                "HH12:MI",
                "template pattern \"HH12\" without AM or PM is not supported",
            ),
            (
                "TZ YYYY",
                "\"TZ\" is supported only at the end of the template",
            ),
        ];
        for (template, needle) in cases {
            let err = chrono_parse_format("to_date", template)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{template}: {err}");
        }
    }

    #[test]
    fn chrono_formats_parse_postgres_inputs() {
        let parse = |text: &str, template: &str| {
            let format = chrono_parse_format("to_date", template).unwrap();
            NaiveDate::parse_from_str(text, &format).unwrap()
        };
        let expected = NaiveDate::from_ymd_opt(2024, 3, 5).unwrap();
        assert_eq!(parse("2024-03-05", "YYYY-MM-DD"), expected);
        assert_eq!(parse("05/03/2024", "DD/MM/YYYY"), expected);
        assert_eq!(parse("5/3/2024", "DD/MM/YYYY"), expected);
        assert_eq!(parse("Mar 5 2024", "Mon DD YYYY"), expected);
        assert_eq!(parse("MARCH 05, 24", "Month DD, YY"), expected);
        assert_eq!(parse("20240305", "YYYYMMDD"), expected);
        let format = chrono_parse_format("to_timestamp", "YYYY-MM-DD HH12:MI:SS PM").unwrap();
        let parsed = NaiveDateTime::parse_from_str("2024-03-05 02:07:09 PM", &format).unwrap();
        assert_eq!(parsed, ts("2024-03-05 14:07:09").date_time());
        let format = chrono_parse_format("to_timestamp", "HH24:MI:SS.MS").unwrap();
        let parsed = NaiveTime::parse_from_str("14:07:09.5", &format).unwrap();
        assert_eq!(
            parsed,
            NaiveTime::from_hms_milli_opt(14, 7, 9, 500).unwrap()
        );
    }

    impl Moment {
        fn date_time(&self) -> NaiveDateTime {
            self.date.unwrap().and_time(self.time)
        }
    }
}
