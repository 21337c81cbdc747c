//! Small helpers shared by the Redshift function implementations.

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{ScalarValue, exec_datafusion_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::ColumnarValue;

/// Microseconds in a second, minute, hour and day.
pub(crate) const MICROS_PER_SECOND: i64 = 1_000_000;
pub(crate) const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;
pub(crate) const MICROS_PER_HOUR: i64 = 60 * MICROS_PER_MINUTE;
pub(crate) const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

pub(crate) fn is_string(dt: &DataType) -> bool {
    matches!(dt, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
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

/// Coerces a date, timestamp or string argument to a microsecond timestamp, keeping any
/// time zone of a timestamp.
pub(crate) fn coerce_timestamp(func: &str, dt: &DataType) -> Result<DataType> {
    match dt {
        DataType::Timestamp(_, tz) => Ok(DataType::Timestamp(TimeUnit::Microsecond, tz.clone())),
        DataType::Date32 | DataType::Date64 | DataType::Null => {
            Ok(DataType::Timestamp(TimeUnit::Microsecond, None))
        }
        dt if is_string(dt) => Ok(DataType::Timestamp(TimeUnit::Microsecond, None)),
        other => plan_err!("{func} expects a date or timestamp argument, got {other}"),
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
