//! Values in PostgreSQL 15's text output format (what `psql` shows), checked against a real
//! PostgreSQL 15 server: floats (`float8out`/`float4out` with `extra_float_digits = 1`), numeric,
//! dates and times (`DateStyle = ISO`), intervals (`IntervalStyle = postgres`) and bytea (hex).
//! The wire layer (result rows, COPY TO STDOUT) and UNLOAD write values with these.

use std::fmt::Write;

use bytes::{BufMut, BytesMut};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::*;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::NodeError;

use chrono::{Datelike, NaiveDate};

/// Days from 0001-01-01 (CE day 1) to 1970-01-01.
const UNIX_EPOCH_FROM_CE: i32 = 719_163;
pub const MICROS_PER_SECOND: i64 = 1_000_000;
pub const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;
const MICROS_PER_HOUR: i64 = 3_600 * MICROS_PER_SECOND;
const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;

/// `float8out`: shortest round-trip digits, fixed notation when the decimal exponent is in
/// [-4, 15), otherwise `d.ddde±XX`.
pub fn write_f64(out: &mut impl Write, v: f64) {
    if let Some(special) = special_float(v.is_nan(), v.is_infinite(), v < 0.0) {
        let _ = out.write_str(special);
    } else if v == 0.0 {
        let _ = out.write_str(if v.is_sign_negative() { "-0" } else { "0" });
    } else {
        write_shortest(out, &format!("{:e}", v.abs()), v < 0.0, 15);
    }
}

/// `float4out`: like [`write_f64`] with the fixed-notation range [-4, 6).
pub fn write_f32(out: &mut impl Write, v: f32) {
    if let Some(special) = special_float(v.is_nan(), v.is_infinite(), v < 0.0) {
        let _ = out.write_str(special);
    } else if v == 0.0 {
        let _ = out.write_str(if v.is_sign_negative() { "-0" } else { "0" });
    } else {
        write_shortest(out, &format!("{:e}", v.abs()), v < 0.0, 6);
    }
}

fn special_float(nan: bool, inf: bool, neg: bool) -> Option<&'static str> {
    match (nan, inf, neg) {
        (true, _, _) => Some("NaN"),
        (_, true, true) => Some("-Infinity"),
        (_, true, false) => Some("Infinity"),
        _ => None,
    }
}

/// Lay out Rust's shortest scientific form (`1.2345e-7`) the way Postgres does.
fn write_shortest(out: &mut impl Write, sci: &str, negative: bool, max_fixed_exp: i32) {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let n = digits.len() as i32;
    if negative {
        let _ = out.write_char('-');
    }
    if (-4..max_fixed_exp).contains(&exp) {
        if exp >= 0 {
            let int_len = exp + 1;
            if n <= int_len {
                let _ = out.write_str(&digits);
                for _ in 0..(int_len - n) {
                    let _ = out.write_char('0');
                }
            } else {
                let (int, frac) = digits.split_at(int_len as usize);
                let _ = write!(out, "{int}.{frac}");
            }
        } else {
            let _ = out.write_str("0.");
            for _ in 0..(-exp - 1) {
                let _ = out.write_char('0');
            }
            let _ = out.write_str(&digits);
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let _ = out.write_str(first);
        if !rest.is_empty() {
            let _ = write!(out, ".{rest}");
        }
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exp.abs());
    }
}

/// A decimal integer string (optionally signed) with `scale` implied fractional digits, as
/// numeric prints it: exactly `scale` digits after the point.
pub fn write_decimal(out: &mut impl Write, unscaled: &str, scale: i8) {
    let (negative, digits) = match unscaled.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, unscaled),
    };
    if negative {
        let _ = out.write_char('-');
    }
    if scale <= 0 {
        let _ = out.write_str(digits);
        if digits != "0" {
            for _ in 0..(-(scale as i32)) {
                let _ = out.write_char('0');
            }
        }
        return;
    }
    let scale = scale as usize;
    if digits.len() <= scale {
        let _ = out.write_str("0.");
        for _ in 0..(scale - digits.len()) {
            let _ = out.write_char('0');
        }
        let _ = out.write_str(digits);
    } else {
        let (int, frac) = digits.split_at(digits.len() - scale);
        let _ = write!(out, "{int}.{frac}");
    }
}

/// A date from days since 1970-01-01; None when outside chrono's range.
pub fn date_from_days(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(UNIX_EPOCH_FROM_CE)?)
}

/// `YYYY-MM-DD`; years before 1 CE print as `YYYY-MM-DD BC` (the caller appends " BC" via
/// the returned flag, after any time part, as Postgres does).
fn write_date_part(out: &mut impl Write, date: NaiveDate) -> bool {
    let year = date.year();
    let (shown, bc) = if year <= 0 {
        (1 - year, true)
    } else {
        (year, false)
    };
    let _ = write!(out, "{shown:04}-{:02}-{:02}", date.month(), date.day());
    bc
}

/// A date in ISO style. Returns false when the value is outside the representable range.
pub fn write_date(out: &mut impl Write, days: i32) -> bool {
    let Some(date) = date_from_days(days) else {
        return false;
    };
    if write_date_part(out, date) {
        let _ = out.write_str(" BC");
    }
    true
}

/// `HH:MM:SS[.ffffff]` with trailing zeros of the fraction trimmed.
pub fn write_time(out: &mut impl Write, micros_of_day: i64) {
    let secs = micros_of_day.div_euclid(MICROS_PER_SECOND);
    let frac = micros_of_day.rem_euclid(MICROS_PER_SECOND);
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    );
    write_fraction(out, frac);
}

fn write_fraction(out: &mut impl Write, frac_micros: i64) {
    if frac_micros != 0 {
        let s = format!("{frac_micros:06}");
        let _ = write!(out, ".{}", s.trim_end_matches('0'));
    }
}

/// A timestamp from microseconds since 1970-01-01 (UTC); `with_zone` appends `+00` (the
/// session time zone is always UTC). Returns false when out of range.
pub fn write_timestamp(out: &mut impl Write, micros: i64, with_zone: bool) -> bool {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let Some(date) = i32::try_from(days).ok().and_then(date_from_days) else {
        return false;
    };
    let bc = write_date_part(out, date);
    let _ = out.write_char(' ');
    write_time(out, micros.rem_euclid(MICROS_PER_DAY));
    if with_zone {
        let _ = out.write_str("+00");
    }
    if bc {
        let _ = out.write_str(" BC");
    }
    true
}

/// An interval in `IntervalStyle = postgres` (Postgres' `EncodeInterval`).
pub fn write_interval(out: &mut impl Write, months: i32, days: i32, micros: i64) {
    let mut is_zero = true;
    let mut is_before = false;
    let mut part = |out: &mut dyn Write, value: i64, unit: &str| {
        if value == 0 {
            return;
        }
        let _ = write!(
            out,
            "{}{}{} {}{}",
            if is_zero { "" } else { " " },
            if is_before && value > 0 { "+" } else { "" },
            value,
            unit,
            if value != 1 { "s" } else { "" }
        );
        is_before = value < 0;
        is_zero = false;
    };
    let mut buf = String::new();
    part(&mut buf, (months / 12) as i64, "year");
    part(&mut buf, (months % 12) as i64, "mon");
    part(&mut buf, days as i64, "day");
    let hour = micros / MICROS_PER_HOUR;
    let rest = micros % MICROS_PER_HOUR;
    let min = rest / MICROS_PER_MINUTE;
    let rest = rest % MICROS_PER_MINUTE;
    let sec = rest / MICROS_PER_SECOND;
    let fsec = rest % MICROS_PER_SECOND;
    if is_zero || micros != 0 {
        let minus = hour < 0 || min < 0 || sec < 0 || fsec < 0;
        let _ = write!(
            buf,
            "{}{}{:02}:{:02}:{:02}",
            if is_zero { "" } else { " " },
            if minus {
                "-"
            } else if is_before {
                "+"
            } else {
                ""
            },
            hour.abs(),
            min.abs(),
            sec.abs()
        );
        write_fraction(&mut buf, fsec.abs());
    }
    let _ = out.write_str(&buf);
}

/// bytea in hex output format: `\x0102`.
pub fn write_bytea(out: &mut impl Write, bytes: &[u8]) {
    let _ = out.write_str("\\x");
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

/// Quote one element of an array literal as `array_out` does, if needed.
pub fn write_array_element(out: &mut impl Write, text: &str) {
    let needs_quotes = text.is_empty()
        || text.eq_ignore_ascii_case("NULL")
        || text
            .chars()
            .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_ascii_whitespace());
    if !needs_quotes {
        let _ = out.write_str(text);
        return;
    }
    let _ = out.write_char('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            let _ = out.write_char('\\');
        }
        let _ = out.write_char(c);
    }
    let _ = out.write_char('"');
}

/// A scalar value (not NULL) in Postgres' text output format; CHAR(n) values are blank-padded
/// to `pad_to`. False for a type it does not know (lists, structs): the caller formats those.
pub fn write_value(
    array: &dyn Array,
    row: usize,
    pad_to: Option<usize>,
    buf: &mut BytesMut,
) -> bool {
    let dt = array.data_type();
    match dt {
        DataType::Boolean => {
            buf.put_u8(if array.as_boolean().value(row) {
                b't'
            } else {
                b'f'
            });
            true
        }
        DataType::Int8 => write!(buf, "{}", array.as_primitive::<Int8Type>().value(row)).is_ok(),
        DataType::Int16 => write!(buf, "{}", array.as_primitive::<Int16Type>().value(row)).is_ok(),
        DataType::Int32 => write!(buf, "{}", array.as_primitive::<Int32Type>().value(row)).is_ok(),
        DataType::Int64 => write!(buf, "{}", array.as_primitive::<Int64Type>().value(row)).is_ok(),
        DataType::UInt8 => write!(buf, "{}", array.as_primitive::<UInt8Type>().value(row)).is_ok(),
        DataType::UInt16 => {
            write!(buf, "{}", array.as_primitive::<UInt16Type>().value(row)).is_ok()
        }
        DataType::UInt32 => {
            write!(buf, "{}", array.as_primitive::<UInt32Type>().value(row)).is_ok()
        }
        DataType::UInt64 => {
            write!(buf, "{}", array.as_primitive::<UInt64Type>().value(row)).is_ok()
        }
        DataType::Float16 => {
            write_f32(buf, array.as_primitive::<Float16Type>().value(row).to_f32());
            true
        }
        DataType::Float32 => {
            write_f32(buf, array.as_primitive::<Float32Type>().value(row));
            true
        }
        DataType::Float64 => {
            write_f64(buf, array.as_primitive::<Float64Type>().value(row));
            true
        }
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => match decimal_parts(array, row) {
            Some((digits, scale)) => {
                write_decimal(buf, &digits, scale);
                true
            }
            None => false,
        },
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            match string_value(array, row) {
                Some(s) => {
                    write_padded(buf, s, pad_to);
                    true
                }
                None => false,
            }
        }
        DataType::Date32 | DataType::Date64 => write_date(buf, date_days(array, row)),
        DataType::Timestamp(unit, tz) => {
            write_timestamp(buf, timestamp_micros(array, row, unit), tz.is_some())
        }
        DataType::Time32(_) | DataType::Time64(_) => {
            write_time(buf, time_micros(array, row));
            true
        }
        DataType::Interval(_) | DataType::Duration(_) => {
            let (m, d, us) = interval_parts(array, row);
            write_interval(buf, m, d, us);
            true
        }
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => match binary_value(array, row) {
            Some(b) => {
                write_bytea(buf, b);
                true
            }
            None => false,
        },
        _ => false,
    }
}

/// Microseconds of a timestamp value, whatever its unit (nanoseconds are rounded).
pub fn timestamp_micros(array: &dyn Array, row: usize, unit: &TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => array
            .as_primitive::<TimestampSecondType>()
            .value(row)
            .saturating_mul(1_000_000),
        TimeUnit::Millisecond => array
            .as_primitive::<TimestampMillisecondType>()
            .value(row)
            .saturating_mul(1_000),
        TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(row),
        TimeUnit::Nanosecond => {
            round_nanos(array.as_primitive::<TimestampNanosecondType>().value(row))
        }
    }
}

fn round_nanos(ns: i64) -> i64 {
    (ns.saturating_add(500)).div_euclid(1_000)
}

pub fn time_micros(array: &dyn Array, row: usize) -> i64 {
    match array.data_type() {
        DataType::Time32(TimeUnit::Second) => {
            array.as_primitive::<Time32SecondType>().value(row) as i64 * 1_000_000
        }
        DataType::Time32(_) => {
            array.as_primitive::<Time32MillisecondType>().value(row) as i64 * 1_000
        }
        DataType::Time64(TimeUnit::Nanosecond) => {
            round_nanos(array.as_primitive::<Time64NanosecondType>().value(row))
        }
        _ => array.as_primitive::<Time64MicrosecondType>().value(row),
    }
}

/// (months, days, microseconds) of an interval or duration value.
pub fn interval_parts(array: &dyn Array, row: usize) -> (i32, i32, i64) {
    match array.data_type() {
        DataType::Interval(IntervalUnit::YearMonth) => (
            array.as_primitive::<IntervalYearMonthType>().value(row),
            0,
            0,
        ),
        DataType::Interval(IntervalUnit::DayTime) => {
            let v = array.as_primitive::<IntervalDayTimeType>().value(row);
            (0, v.days, v.milliseconds as i64 * 1_000)
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = array.as_primitive::<IntervalMonthDayNanoType>().value(row);
            (v.months, v.days, round_nanos(v.nanoseconds))
        }
        // A duration is what `timestamp - timestamp` gives; Postgres shows it with whole days
        // split off (`1 day 01:30:00`), both parts with the duration's sign.
        DataType::Duration(unit) => {
            let v = match unit {
                TimeUnit::Second => array
                    .as_primitive::<DurationSecondType>()
                    .value(row)
                    .saturating_mul(1_000_000),
                TimeUnit::Millisecond => array
                    .as_primitive::<DurationMillisecondType>()
                    .value(row)
                    .saturating_mul(1_000),
                TimeUnit::Microsecond => array.as_primitive::<DurationMicrosecondType>().value(row),
                TimeUnit::Nanosecond => {
                    round_nanos(array.as_primitive::<DurationNanosecondType>().value(row))
                }
            };
            const DAY: i64 = 86_400_000_000;
            (0, (v / DAY) as i32, v % DAY)
        }
        _ => (0, 0, 0),
    }
}

/// Days since 1970-01-01 of a date value.
pub fn date_days(array: &dyn Array, row: usize) -> i32 {
    match array.data_type() {
        DataType::Date64 => array
            .as_primitive::<Date64Type>()
            .value(row)
            .div_euclid(86_400_000) as i32,
        _ => array.as_primitive::<Date32Type>().value(row),
    }
}

/// The unscaled integer of a decimal value as a decimal string, and its scale.
pub fn decimal_parts(array: &dyn Array, row: usize) -> Option<(String, i8)> {
    Some(match array.data_type() {
        DataType::Decimal32(_, s) => (
            array.as_primitive::<Decimal32Type>().value(row).to_string(),
            *s,
        ),
        DataType::Decimal64(_, s) => (
            array.as_primitive::<Decimal64Type>().value(row).to_string(),
            *s,
        ),
        DataType::Decimal128(_, s) => (
            array
                .as_primitive::<Decimal128Type>()
                .value(row)
                .to_string(),
            *s,
        ),
        DataType::Decimal256(_, s) => (
            array
                .as_primitive::<Decimal256Type>()
                .value(row)
                .to_string(),
            *s,
        ),
        DataType::UInt64 => (array.as_primitive::<UInt64Type>().value(row).to_string(), 0),
        _ => return None,
    })
}

pub fn string_value(array: &dyn Array, row: usize) -> Option<&str> {
    Some(match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(row),
        DataType::LargeUtf8 => array.as_string::<i64>().value(row),
        DataType::Utf8View => array.as_string_view().value(row),
        _ => return None,
    })
}

pub fn binary_value(array: &dyn Array, row: usize) -> Option<&[u8]> {
    Some(match array.data_type() {
        DataType::Binary => array.as_binary::<i32>().value(row),
        DataType::LargeBinary => array.as_binary::<i64>().value(row),
        DataType::BinaryView => array.as_binary_view().value(row),
        DataType::FixedSizeBinary(_) => array.as_fixed_size_binary().value(row),
        _ => return None,
    })
}

pub fn write_padded(buf: &mut BytesMut, s: &str, pad_to: Option<usize>) {
    buf.put_slice(s.as_bytes());
    if let Some(n) = pad_to {
        let len = s.chars().count();
        for _ in len..n {
            buf.put_u8(b' ');
        }
    }
}

/// Any other type: Arrow's display formatting.
pub fn write_display(array: &dyn Array, row: usize, buf: &mut BytesMut) -> Result<(), NodeError> {
    let options = FormatOptions::default();
    let formatter = ArrayFormatter::try_new(array, &options)?;
    write!(buf, "{}", formatter.value(row))
        .map_err(|e| NodeError::internal(format!("formatting a value: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f8(v: f64) -> String {
        let mut s = String::new();
        write_f64(&mut s, v);
        s
    }

    fn f4(v: f32) -> String {
        let mut s = String::new();
        write_f32(&mut s, v);
        s
    }

    #[test]
    fn floats_match_postgres_15() {
        // Expected values printed by PostgreSQL 15.
        assert_eq!(f8(1e20), "1e+20");
        assert_eq!(f8(1e15), "1e+15");
        assert_eq!(f8(1e14), "100000000000000");
        assert_eq!(f8(123456789012345.0), "123456789012345");
        assert_eq!(f8(0.0001), "0.0001");
        assert_eq!(f8(0.00001), "1e-05");
        assert_eq!(f8(1.5e-7), "1.5e-07");
        assert_eq!(f8(1e100), "1e+100");
        assert_eq!(f8(f64::NAN), "NaN");
        assert_eq!(f8(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(f8(f64::INFINITY), "Infinity");
        assert_eq!(f8(0.1), "0.1");
        assert_eq!(f8(-0.0), "-0");
        assert_eq!(f8(0.0), "0");
        assert_eq!(f8(1.5e300), "1.5e+300");
        assert_eq!(f8(100.0), "100");
        assert_eq!(f8(2.5e15), "2.5e+15");
        assert_eq!(f8(-12.25), "-12.25");
        assert_eq!(f4(1e6), "1e+06");
        assert_eq!(f4(123456.0), "123456");
        assert_eq!(f4(1234567.0), "1.234567e+06");
        assert_eq!(f4(0.0001), "0.0001");
        assert_eq!(f4(0.00001234), "1.234e-05");
        assert_eq!(f4(1.23456), "1.23456");
        assert_eq!(f4(1.5), "1.5");
    }

    fn dec(v: &str, s: i8) -> String {
        let mut out = String::new();
        write_decimal(&mut out, v, s);
        out
    }

    #[test]
    fn decimals_keep_their_scale() {
        assert_eq!(dec("150", 2), "1.50");
        assert_eq!(dec("-5", 2), "-0.05");
        assert_eq!(dec("0", 2), "0.00");
        assert_eq!(dec("12345", 0), "12345");
        assert_eq!(dec("12", -2), "1200");
        assert_eq!(
            dec("-123456789012345678901234567890123456", 4),
            "-12345678901234567890123456789012.3456"
        );
    }

    fn iv(m: i32, d: i32, us: i64) -> String {
        let mut s = String::new();
        write_interval(&mut s, m, d, us);
        s
    }

    #[test]
    fn intervals_match_postgres_15() {
        let h = MICROS_PER_HOUR;
        assert_eq!(
            iv(14, 3, 4 * h + 5 * 60_000_000 + 6_500_000),
            "1 year 2 mons 3 days 04:05:06.5"
        );
        assert_eq!(iv(0, -1, 2 * h), "-1 days +02:00:00");
        assert_eq!(iv(0, 0, 0), "00:00:00");
        assert_eq!(iv(-3, -1, 0), "-3 mons -1 days");
        assert_eq!(iv(0, 1, -1_000_000), "1 day -00:00:01");
        assert_eq!(iv(0, 0, 27 * h), "27:00:00");
        assert_eq!(iv(-12, 0, 0), "-1 years");
        assert_eq!(iv(1, -1, 0), "1 mon -1 days");
        assert_eq!(iv(0, 0, 1), "00:00:00.000001");
        assert_eq!(iv(0, 0, -1_500_000), "-00:00:01.5");
    }

    #[test]
    fn dates_and_times() {
        let mut s = String::new();
        // 0044-03-15 BC is year -43 in the proleptic calendar.
        let days = NaiveDate::from_ymd_opt(-43, 3, 15)
            .expect("valid date")
            .num_days_from_ce()
            - UNIX_EPOCH_FROM_CE;
        assert!(write_date(&mut s, days));
        assert_eq!(s, "0044-03-15 BC");
        let mut s = String::new();
        let days = NaiveDate::from_ymd_opt(0, 1, 1)
            .expect("valid date")
            .num_days_from_ce()
            - UNIX_EPOCH_FROM_CE;
        let micros = days as i64 * MICROS_PER_DAY + 12 * MICROS_PER_HOUR + 500_000;
        assert!(write_timestamp(&mut s, micros, true));
        assert_eq!(s, "0001-01-01 12:00:00.5+00 BC");
        let mut s = String::new();
        assert!(write_timestamp(&mut s, 1_577_872_800_120_000, false));
        assert_eq!(s, "2020-01-01 10:00:00.12");
        let mut s = String::new();
        write_time(&mut s, 10 * MICROS_PER_HOUR + 100);
        assert_eq!(s, "10:00:00.0001");
        let mut s = String::new();
        write_time(&mut s, MICROS_PER_DAY);
        assert_eq!(s, "24:00:00");
    }

    #[test]
    fn array_elements_are_quoted_like_array_out() {
        let cases = [
            ("a b", "\"a b\""),
            ("", "\"\""),
            ("x\"y", "\"x\\\"y\""),
            ("NULL", "\"NULL\""),
            ("x", "x"),
        ];
        for (input, expected) in cases {
            let mut s = String::new();
            write_array_element(&mut s, input);
            assert_eq!(s, expected);
        }
    }
}
