//! Small helpers shared by the Redshift function implementations.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::compute::kernels::cast_utils::string_to_datetime;
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{ScalarValue, exec_datafusion_err, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::ColumnarValue;

/// Microseconds in a second, minute, hour and day.
pub(crate) const MICROS_PER_SECOND: i64 = 1_000_000;
pub(crate) const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;
pub(crate) const MICROS_PER_HOUR: i64 = 60 * MICROS_PER_MINUTE;
pub(crate) const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

pub(crate) fn is_string(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

pub(crate) fn is_integer(dt: &DataType) -> bool {
    dt.is_integer()
}

/// Coerces a string-like argument (or NULL) to `Utf8`.
pub(crate) fn coerce_string(func: &str, what: &str, dt: &DataType) -> Result<DataType> {
    if is_string(dt) || dt.is_null() {
        Ok(DataType::Utf8)
    } else {
        plan_err!("{func} expects a string {what}, got {dt}")
    }
}

/// Coerces an integer argument (or NULL) to `Int64`.
pub(crate) fn coerce_integer(func: &str, what: &str, dt: &DataType) -> Result<DataType> {
    if is_integer(dt) || dt.is_null() {
        Ok(DataType::Int64)
    } else {
        plan_err!("{func} expects an integer {what}, got {dt}")
    }
}

/// Coerces a date or timestamp argument to a microsecond timestamp, keeping any time zone of
/// a timestamp. Strings stay `Utf8` and are parsed by [`timestamp_input`], which accepts more
/// spellings than a cast (`'2020-01-01 23:00'`, `'20080305 12:25:29'`).
pub(crate) fn coerce_timestamp(func: &str, dt: &DataType) -> Result<DataType> {
    match dt {
        DataType::Timestamp(_, tz) => Ok(DataType::Timestamp(TimeUnit::Microsecond, tz.clone())),
        DataType::Date32 | DataType::Date64 | DataType::Null => {
            Ok(DataType::Timestamp(TimeUnit::Microsecond, None))
        }
        dt if is_string(dt) => Ok(DataType::Utf8),
        other => plan_err!("{func} expects a date or timestamp argument, got {other}"),
    }
}

/// Date-time spellings accepted for string arguments, tried in order.
const TIMESTAMP_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y%m%d %H:%M:%S%.f",
    "%Y%m%d %H:%M",
];

/// Parses a timestamp or date string; strings with a UTC offset are converted to UTC.
pub(crate) fn parse_timestamp(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    TIMESTAMP_FORMATS
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(s, format).ok())
        .or_else(|| {
            ["%Y-%m-%d", "%Y%m%d"]
                .iter()
                .find_map(|format| NaiveDate::parse_from_str(s, format).ok())
                .and_then(|date| date.and_hms_opt(0, 0, 0))
        })
        .or_else(|| string_to_datetime(&Utc, s).ok().map(|dt| dt.naive_utc()))
}

/// A microsecond timestamp argument as coerced by [`coerce_timestamp`]: timestamps as they are,
/// strings parsed (an unparseable string is an error).
pub(crate) fn timestamp_input(func: &str, array: &ArrayRef) -> Result<TimestampMicrosecondArray> {
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Ok(array.as_primitive::<TimestampMicrosecondType>().clone())
        }
        DataType::Utf8 => strings(func, array)?
            .iter()
            .map(|value| {
                value
                    .map(|text| {
                        parse_timestamp(text)
                            .and_then(naive_to_micros)
                            .ok_or_else(|| {
                                exec_datafusion_err!("{func}: invalid timestamp \"{text}\"")
                            })
                    })
                    .transpose()
            })
            .collect(),
        other => exec_err!("{func}: expected a timestamp argument, got {other}"),
    }
}

/// Checks the argument count of `func`.
pub(crate) fn check_arg_count(
    func: &str,
    arg_types: &[DataType],
    allowed: std::ops::RangeInclusive<usize>,
    usage: &str,
) -> Result<()> {
    if allowed.contains(&arg_types.len()) {
        Ok(())
    } else {
        plan_err!(
            "{func} called with {} argument(s); usage: {usage}",
            arg_types.len()
        )
    }
}

/// Evaluates every argument to an array of the same length (scalars are broadcast) and tells
/// whether all arguments were scalars, so that the result can be returned as a scalar.
pub(crate) fn to_arrays(args: &[ColumnarValue]) -> Result<(Vec<ArrayRef>, bool)> {
    let all_scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    Ok((ColumnarValue::values_to_arrays(args)?, all_scalar))
}

/// Wraps a result array, turning a one-row array back into a scalar when every input was one.
pub(crate) fn finish(array: ArrayRef, all_scalar: bool) -> Result<ColumnarValue> {
    if all_scalar && array.len() == 1 {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            array.as_ref(),
            0,
        )?))
    } else {
        Ok(ColumnarValue::Array(array))
    }
}

/// Borrows a `Utf8` array (what [`coerce_string`] coerces to).
pub(crate) fn strings<'a>(func: &str, array: &'a ArrayRef) -> Result<&'a StringArray> {
    array
        .as_string_opt::<i32>()
        .ok_or_else(|| exec_datafusion_err!("{func}: expected a Utf8 argument"))
}

/// Microseconds since the epoch → date-time.
pub(crate) fn micros_to_naive(micros: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_micros(micros).map(|dt| dt.naive_utc())
}

/// Date-time → microseconds since the epoch.
pub(crate) fn naive_to_micros(ndt: NaiveDateTime) -> Option<i64> {
    let utc = ndt.and_utc();
    utc.timestamp()
        .checked_mul(MICROS_PER_SECOND)?
        .checked_add(i64::from(utc.timestamp_subsec_micros()))
}

/// A `Utf8` result array.
pub(crate) fn string_array(values: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}
