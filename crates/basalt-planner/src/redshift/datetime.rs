//! Redshift date and time functions: GETDATE, SYSDATE, DATEADD, DATEDIFF, ADD_MONTHS,
//! CONVERT_TIMEZONE and the date form of TRUNC.

use std::sync::Arc;

use chrono::{Datelike, Months, NaiveDateTime, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Int64Array, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::{ScalarValue, exec_datafusion_err, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::type_coercion::functions::fields_with_udf;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use super::datepart::DatePart;
use super::timezone::Zone;
use super::util::{
    MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_MINUTE, MICROS_PER_SECOND, check_arg_count,
    coerce_integer, coerce_string, coerce_timestamp, finish, micros_to_naive, naive_to_micros,
    strings, timestamp_input, to_arrays,
};

/// The scalar functions of this module.
pub(crate) fn udfs() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(CurrentTimestamp::getdate()),
        ScalarUDF::from(CurrentTimestamp::sysdate()),
        ScalarUDF::from(DateAdd::new()),
        ScalarUDF::from(DateDiff::new()),
        ScalarUDF::from(AddMonths::new()),
        ScalarUDF::from(ConvertTimezone::new()),
        ScalarUDF::from(Trunc::new()),
    ]
}

const TIMESTAMP: DataType = DataType::Timestamp(TimeUnit::Microsecond, None);

fn timestamp_tz(dt: &DataType) -> Option<Arc<str>> {
    match dt {
        DataType::Timestamp(_, tz) => tz.clone(),
        _ => None,
    }
}

/// A date part given per row, parsed once per distinct spelling in a row run.
struct PartCache {
    func: &'static str,
    last: Option<(String, DatePart)>,
}

impl PartCache {
    fn new(func: &'static str) -> Self {
        Self { func, last: None }
    }

    fn get(&mut self, name: &str) -> Result<DatePart> {
        if let Some((last, part)) = &self.last
            && last == name
        {
            return Ok(*part);
        }
        let part = DatePart::parse_interval_unit(self.func, name)?;
        self.last = Some((name.to_string(), part));
        Ok(part)
    }
}

/// Validates a literal date part at planning time.
fn check_literal_part(func: &str, scalar: Option<&ScalarValue>) -> Result<()> {
    if let Some(Some(name)) = scalar.and_then(|s| s.try_as_str()) {
        DatePart::parse_interval_unit(func, name)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// GETDATE() / SYSDATE
// ---------------------------------------------------------------------------------------------

/// `GETDATE()` (statement start, whole seconds) and `SYSDATE` (statement start, microseconds),
/// both `TIMESTAMP` without time zone in the session time zone (UTC unless configured).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct CurrentTimestamp {
    name: &'static str,
    whole_seconds: bool,
    signature: Signature,
}

impl CurrentTimestamp {
    fn getdate() -> Self {
        Self {
            name: "getdate",
            whole_seconds: true,
            signature: Signature::nullary(Volatility::Stable),
        }
    }

    fn sysdate() -> Self {
        Self {
            name: "sysdate",
            whole_seconds: false,
            signature: Signature::nullary(Volatility::Stable),
        }
    }

    fn value_at(&self, now: chrono::DateTime<Utc>, config: &ConfigOptions) -> Result<i64> {
        let mut local = now.naive_utc();
        if let Some(zone) = config
            .execution
            .time_zone
            .as_deref()
            .and_then(Zone::parse_session)
        {
            local = zone.local_from_utc(local);
        }
        let micros = naive_to_micros(local)
            .ok_or_else(|| exec_datafusion_err!("{}: current time out of range", self.name))?;
        Ok(if self.whole_seconds {
            micros - micros.rem_euclid(MICROS_PER_SECOND)
        } else {
            micros
        })
    }
}

impl ScalarUDFImpl for CurrentTimestamp {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(TIMESTAMP)
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(self.name, TIMESTAMP, false)))
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        let Some(start) = info.query_execution_start_time() else {
            return Ok(ExprSimplifyResult::Original(args));
        };
        let value = self.value_at(start, info.config_options())?;
        Ok(ExprSimplifyResult::Simplified(Expr::Literal(
            ScalarValue::TimestampMicrosecond(Some(value), None),
            None,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let value = self.value_at(Utc::now(), &args.config_options)?;
        Ok(ColumnarValue::Scalar(ScalarValue::TimestampMicrosecond(
            Some(value),
            None,
        )))
    }
}

// ---------------------------------------------------------------------------------------------
// DATEADD(datepart, interval, date | timestamp)
// ---------------------------------------------------------------------------------------------

/// `DATEADD(datepart, n, date|timestamp)`: adds `n` date parts; returns a `TIMESTAMP`
/// (a `TIMESTAMPTZ` input keeps its zone). Months, quarters and years clamp the day to the
/// end of a shorter month (`DATEADD(month, 1, '2020-01-31')` = `2020-02-29`).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct DateAdd {
    signature: Signature,
}

impl DateAdd {
    const NAME: &'static str = "DATEADD";
    const USAGE: &'static str = "DATEADD(datepart, interval, date | timestamp)";

    fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// Adds `months` calendar months, clamping the day of month.
fn add_months(ts: i64, months: i64) -> Option<i64> {
    let ndt = micros_to_naive(ts)?;
    let magnitude = Months::new(u32::try_from(months.unsigned_abs()).ok()?);
    let moved = if months >= 0 {
        ndt.checked_add_months(magnitude)?
    } else {
        ndt.checked_sub_months(magnitude)?
    };
    naive_to_micros(moved)
}

fn fixed_step(step: i64, n: i64, ts: i64) -> Option<i64> {
    n.checked_mul(step)?.checked_add(ts)
}

/// `ts + n × part`, or `None` when out of range.
fn date_add(part: DatePart, n: i64, ts: i64) -> Option<i64> {
    match part {
        DatePart::Millennium => add_months(ts, n.checked_mul(12_000)?),
        DatePart::Century => add_months(ts, n.checked_mul(1_200)?),
        DatePart::Decade => add_months(ts, n.checked_mul(120)?),
        DatePart::Year => add_months(ts, n.checked_mul(12)?),
        DatePart::Quarter => add_months(ts, n.checked_mul(3)?),
        DatePart::Month => add_months(ts, n),
        DatePart::Week => fixed_step(7 * MICROS_PER_DAY, n, ts),
        DatePart::Day => fixed_step(MICROS_PER_DAY, n, ts),
        DatePart::Hour => fixed_step(MICROS_PER_HOUR, n, ts),
        DatePart::Minute => fixed_step(MICROS_PER_MINUTE, n, ts),
        DatePart::Second => fixed_step(MICROS_PER_SECOND, n, ts),
        DatePart::Millisecond => fixed_step(1_000, n, ts),
        DatePart::Microsecond => fixed_step(1, n, ts),
        DatePart::Epoch | DatePart::DayOfWeek | DatePart::DayOfYear => None,
    }
}

impl ScalarUDFImpl for DateAdd {
    fn name(&self) -> &str {
        "dateadd"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arg_count(Self::NAME, arg_types, 3..=3, Self::USAGE)?;
        Ok(vec![
            coerce_string(Self::NAME, "datepart", &arg_types[0])?,
            coerce_integer(Self::NAME, "interval", &arg_types[1])?,
            coerce_timestamp(Self::NAME, &arg_types[2])?,
        ])
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Timestamp(
            TimeUnit::Microsecond,
            arg_types.get(2).and_then(timestamp_tz),
        ))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        check_literal_part(Self::NAME, args.scalar_arguments.first().copied().flatten())?;
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        Ok(Arc::new(Field::new(
            self.name(),
            self.return_type(&types)?,
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let tz = timestamp_tz(args.return_field.data_type());
        let (arrays, all_scalar) = to_arrays(&args.args)?;
        let parts = strings(Self::NAME, &arrays[0])?;
        let counts = arrays[1]
            .as_primitive_opt::<datafusion::arrow::datatypes::Int64Type>()
            .ok_or_else(|| exec_datafusion_err!("DATEADD: expected an integer interval"))?;
        let stamps = timestamp_input(Self::NAME, &arrays[2])?;
        let mut cache = PartCache::new(Self::NAME);
        let mut out = Vec::with_capacity(stamps.len());
        for i in 0..stamps.len() {
            if parts.is_null(i) || counts.is_null(i) || stamps.is_null(i) {
                out.push(None);
                continue;
            }
            let part = cache.get(parts.value(i))?;
            let value = date_add(part, counts.value(i), stamps.value(i))
                .ok_or_else(|| exec_datafusion_err!("DATEADD result is out of range"))?;
            out.push(Some(value));
        }
        let array = TimestampMicrosecondArray::from(out).with_timezone_opt(tz);
        finish(Arc::new(array), all_scalar)
    }
}

// ---------------------------------------------------------------------------------------------
// DATEDIFF(datepart, start, end)
// ---------------------------------------------------------------------------------------------

/// `DATEDIFF(datepart, start, end)`: the number of `datepart` boundaries crossed going from
/// `start` to `end`, as `BIGINT` (negative when `end` is earlier). Weeks start on Monday.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct DateDiff {
    signature: Signature,
}

impl DateDiff {
    const NAME: &'static str = "DATEDIFF";
    const USAGE: &'static str = "DATEDIFF(datepart, date | timestamp, date | timestamp)";

    fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// The index of the `part` period containing `ts`, counted from a fixed origin, such that
/// the difference of two indexes is the number of boundaries crossed.
fn period_index(part: DatePart, ts: i64) -> Option<i64> {
    let calendar = |f: fn(&NaiveDateTime) -> i64| micros_to_naive(ts).map(|ndt| f(&ndt));
    match part {
        DatePart::Millennium => calendar(|d| (i64::from(d.year()) - 1).div_euclid(1000)),
        DatePart::Century => calendar(|d| (i64::from(d.year()) - 1).div_euclid(100)),
        DatePart::Decade => calendar(|d| i64::from(d.year()).div_euclid(10)),
        DatePart::Year => calendar(|d| i64::from(d.year())),
        DatePart::Quarter => calendar(|d| i64::from(d.year()) * 4 + i64::from(d.month0() / 3)),
        DatePart::Month => calendar(|d| i64::from(d.year()) * 12 + i64::from(d.month0())),
        // 1970-01-01 was a Thursday: shift so that periods start on Mondays.
        DatePart::Week => Some((ts.div_euclid(MICROS_PER_DAY) + 3).div_euclid(7)),
        DatePart::Day => Some(ts.div_euclid(MICROS_PER_DAY)),
        DatePart::Hour => Some(ts.div_euclid(MICROS_PER_HOUR)),
        DatePart::Minute => Some(ts.div_euclid(MICROS_PER_MINUTE)),
        DatePart::Second => Some(ts.div_euclid(MICROS_PER_SECOND)),
        DatePart::Millisecond => Some(ts.div_euclid(1_000)),
        DatePart::Microsecond => Some(ts),
        DatePart::Epoch | DatePart::DayOfWeek | DatePart::DayOfYear => None,
    }
}

impl ScalarUDFImpl for DateDiff {
    fn name(&self) -> &str {
        "datediff"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arg_count(Self::NAME, arg_types, 3..=3, Self::USAGE)?;
        Ok(vec![
            coerce_string(Self::NAME, "datepart", &arg_types[0])?,
            coerce_timestamp(Self::NAME, &arg_types[1])?,
            coerce_timestamp(Self::NAME, &arg_types[2])?,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        check_literal_part(Self::NAME, args.scalar_arguments.first().copied().flatten())?;
        Ok(Arc::new(Field::new(self.name(), DataType::Int64, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (arrays, all_scalar) = to_arrays(&args.args)?;
        let parts = strings(Self::NAME, &arrays[0])?;
        let starts = timestamp_input(Self::NAME, &arrays[1])?;
        let ends = timestamp_input(Self::NAME, &arrays[2])?;
        let mut cache = PartCache::new(Self::NAME);
        let mut out = Vec::with_capacity(starts.len());
        for i in 0..starts.len() {
            if parts.is_null(i) || starts.is_null(i) || ends.is_null(i) {
                out.push(None);
                continue;
            }
            let part = cache.get(parts.value(i))?;
            let diff = period_index(part, ends.value(i))
                .zip(period_index(part, starts.value(i)))
                .and_then(|(end, start)| end.checked_sub(start))
                .ok_or_else(|| exec_datafusion_err!("DATEDIFF result is out of range"))?;
            out.push(Some(diff));
        }
        finish(Arc::new(Int64Array::from(out)), all_scalar)
    }
}

// ---------------------------------------------------------------------------------------------
// ADD_MONTHS(date | timestamp, n)
// ---------------------------------------------------------------------------------------------

/// `ADD_MONTHS(date|timestamp, n)`: adds `n` months and returns a `TIMESTAMP`. Unlike
/// DATEADD, the last day of a month maps to the last day of the result month
/// (`ADD_MONTHS('2020-04-30', 1)` = `2020-05-31`).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct AddMonths {
    signature: Signature,
}

impl AddMonths {
    const NAME: &'static str = "ADD_MONTHS";
    const USAGE: &'static str = "ADD_MONTHS(date | timestamp, integer)";

    fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

fn is_last_day_of_month(ndt: &NaiveDateTime) -> bool {
    ndt.date().succ_opt().is_some_and(|next| next.day() == 1)
}

fn add_months_end_aware(ts: i64, months: i64) -> Option<i64> {
    let ndt = micros_to_naive(ts)?;
    let moved = micros_to_naive(add_months(ts, months)?)?;
    if !is_last_day_of_month(&ndt) {
        return naive_to_micros(moved);
    }
    // Move to the last day of the result month, keeping the time of day.
    let mut end = moved;
    while !is_last_day_of_month(&end) {
        end = end.checked_add_signed(chrono::TimeDelta::days(1))?;
    }
    naive_to_micros(end)
}

impl ScalarUDFImpl for AddMonths {
    fn name(&self) -> &str {
        "add_months"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arg_count(Self::NAME, arg_types, 2..=2, Self::USAGE)?;
        Ok(vec![
            coerce_timestamp(Self::NAME, &arg_types[0])?,
            coerce_integer(Self::NAME, "number of months", &arg_types[1])?,
        ])
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Timestamp(
            TimeUnit::Microsecond,
            arg_types.first().and_then(timestamp_tz),
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let tz = timestamp_tz(args.return_field.data_type());
        let (arrays, all_scalar) = to_arrays(&args.args)?;
        let stamps = timestamp_input(Self::NAME, &arrays[0])?;
        let months = arrays[1]
            .as_primitive_opt::<datafusion::arrow::datatypes::Int64Type>()
            .ok_or_else(|| exec_datafusion_err!("ADD_MONTHS: expected an integer"))?;
        let mut out = Vec::with_capacity(stamps.len());
        for i in 0..stamps.len() {
            if stamps.is_null(i) || months.is_null(i) {
                out.push(None);
                continue;
            }
            let value = add_months_end_aware(stamps.value(i), months.value(i))
                .ok_or_else(|| exec_datafusion_err!("ADD_MONTHS result is out of range"))?;
            out.push(Some(value));
        }
        let array = TimestampMicrosecondArray::from(out).with_timezone_opt(tz);
        finish(Arc::new(array), all_scalar)
    }
}

// ---------------------------------------------------------------------------------------------
// CONVERT_TIMEZONE(['source_tz',] 'target_tz', timestamp)
// ---------------------------------------------------------------------------------------------

/// `CONVERT_TIMEZONE(['source_tz',] 'target_tz', timestamp)`: reads `timestamp` as wall-clock
/// time in `source_tz` (UTC by default; a `TIMESTAMPTZ` is an instant already) and returns
/// the wall-clock time in `target_tz` as a `TIMESTAMP` without time zone.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct ConvertTimezone {
    signature: Signature,
}

impl ConvertTimezone {
    const NAME: &'static str = "CONVERT_TIMEZONE";
    const USAGE: &'static str =
        "CONVERT_TIMEZONE(['source_timezone',] 'target_timezone', timestamp)";

    fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// Zones given per row, resolved once per distinct name in a row run.
struct ZoneCache {
    last: Option<(String, Zone)>,
}

impl ZoneCache {
    fn get(&mut self, name: &str) -> Result<Zone> {
        if let Some((last, zone)) = &self.last
            && last == name
        {
            return Ok(*zone);
        }
        let zone = Zone::parse(ConvertTimezone::NAME, name)?;
        self.last = Some((name.to_string(), zone));
        Ok(zone)
    }
}

impl ScalarUDFImpl for ConvertTimezone {
    fn name(&self) -> &str {
        "convert_timezone"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arg_count(Self::NAME, arg_types, 2..=3, Self::USAGE)?;
        let (zones, stamp) = arg_types.split_at(arg_types.len() - 1);
        let mut coerced = zones
            .iter()
            .map(|dt| coerce_string(Self::NAME, "time zone", dt))
            .collect::<Result<Vec<_>>>()?;
        let stamp = match &stamp[0] {
            // With an explicit source zone the value is read as wall-clock time.
            DataType::Timestamp(_, Some(_)) if zones.len() == 2 => TIMESTAMP,
            other => coerce_timestamp(Self::NAME, other)?,
        };
        coerced.push(stamp);
        Ok(coerced)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(TIMESTAMP)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let zone_count = args.scalar_arguments.len().saturating_sub(1);
        for scalar in args.scalar_arguments.iter().take(zone_count) {
            if let Some(Some(name)) = scalar.and_then(|s| s.try_as_str()) {
                Zone::parse(Self::NAME, name)?;
            }
        }
        Ok(Arc::new(Field::new(self.name(), TIMESTAMP, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (arrays, all_scalar) = to_arrays(&args.args)?;
        let (zone_arrays, stamp_array) = arrays.split_at(arrays.len() - 1);
        let stamps = timestamp_input(Self::NAME, &stamp_array[0])?;
        let is_instant = timestamp_tz(stamp_array[0].data_type()).is_some();
        let (sources, targets) = match zone_arrays {
            [source, target] => (
                Some(strings(Self::NAME, source)?),
                strings(Self::NAME, target)?,
            ),
            [target] => (None, strings(Self::NAME, target)?),
            _ => return exec_err!("{}: wrong number of arguments", Self::NAME),
        };
        let mut source_cache = ZoneCache { last: None };
        let mut target_cache = ZoneCache { last: None };
        let mut out = Vec::with_capacity(stamps.len());
        for i in 0..stamps.len() {
            if stamps.is_null(i) || targets.is_null(i) || sources.is_some_and(|s| s.is_null(i)) {
                out.push(None);
                continue;
            }
            let out_of_range = || exec_datafusion_err!("{} result is out of range", Self::NAME);
            let value = micros_to_naive(stamps.value(i)).ok_or_else(out_of_range)?;
            let utc = match sources {
                Some(sources) if !is_instant => source_cache
                    .get(sources.value(i))?
                    .utc_from_local(value)
                    .ok_or_else(out_of_range)?,
                _ => value,
            };
            let local = target_cache.get(targets.value(i))?.local_from_utc(utc);
            out.push(Some(naive_to_micros(local).ok_or_else(out_of_range)?));
        }
        finish(Arc::new(TimestampMicrosecondArray::from(out)), all_scalar)
    }
}

// ---------------------------------------------------------------------------------------------
// TRUNC(timestamp) → date, TRUNC(number [, digits]) as before
// ---------------------------------------------------------------------------------------------

/// `TRUNC(timestamp)` returns the `DATE` of a date or timestamp; with a number it is the usual
/// numeric truncation (DataFusion's `trunc`, to which this delegates).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Trunc {
    numeric: Arc<ScalarUDF>,
    signature: Signature,
}

impl Trunc {
    fn new() -> Self {
        Self {
            numeric: datafusion::functions::math::trunc(),
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    fn is_temporal(arg_types: &[DataType]) -> bool {
        matches!(
            arg_types,
            [DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64]
        )
    }
}

impl ScalarUDFImpl for Trunc {
    fn name(&self) -> &str {
        self.numeric.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if Self::is_temporal(arg_types) {
            return Ok(vec![coerce_timestamp("TRUNC", &arg_types[0])?]);
        }
        let fields: Vec<FieldRef> = arg_types
            .iter()
            .map(|dt| Arc::new(Field::new("arg", dt.clone(), true)))
            .collect();
        Ok(fields_with_udf(&fields, self.numeric.as_ref())?
            .iter()
            .map(|f| f.data_type().clone())
            .collect())
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if Self::is_temporal(arg_types) {
            Ok(DataType::Date32)
        } else {
            self.numeric.return_type(arg_types)
        }
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        if Self::is_temporal(&types) {
            Ok(Arc::new(Field::new(self.name(), DataType::Date32, true)))
        } else {
            self.numeric.return_field_from_args(args)
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let types: Vec<DataType> = args.args.iter().map(|a| a.data_type()).collect();
        if !Self::is_temporal(&types) {
            return self.numeric.invoke_with_args(args);
        }
        let (arrays, all_scalar) = to_arrays(&args.args)?;
        let stamps = timestamp_input("TRUNC", &arrays[0])?;
        let days: Date32Array = stamps
            .iter()
            .map(|v| v.map(|v| v.div_euclid(MICROS_PER_DAY)))
            .map(|d| d.and_then(|d| i32::try_from(d).ok()))
            .collect();
        if days.null_count() != stamps.null_count() {
            return exec_err!("TRUNC: date out of range");
        }
        finish(Arc::new(days) as ArrayRef, all_scalar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn ts(y: i32, m: u32, d: u32, h: u32, mi: u32) -> i64 {
        let ndt = NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap();
        naive_to_micros(ndt).unwrap()
    }

    #[test]
    fn boundaries() {
        let diff = |part, a, b| period_index(part, b).unwrap() - period_index(part, a).unwrap();
        let a = ts(2020, 1, 1, 23, 0);
        let b = ts(2020, 1, 2, 1, 0);
        assert_eq!(diff(DatePart::Day, a, b), 1);
        assert_eq!(diff(DatePart::Hour, a, b), 2);
        assert_eq!(
            diff(DatePart::Year, ts(2008, 12, 31, 0, 0), ts(2009, 1, 1, 0, 0)),
            1
        );
        // Sunday 2021-01-03 → Monday 2021-01-04 crosses a week boundary.
        assert_eq!(
            diff(DatePart::Week, ts(2021, 1, 3, 0, 0), ts(2021, 1, 4, 0, 0)),
            1
        );
        assert_eq!(
            diff(DatePart::Week, ts(2021, 1, 4, 0, 0), ts(2021, 1, 10, 0, 0)),
            0
        );
        assert_eq!(
            diff(DatePart::Week, ts(2009, 1, 1, 0, 0), ts(2009, 12, 31, 0, 0)),
            52
        );
        assert_eq!(
            diff(
                DatePart::Quarter,
                ts(2020, 3, 31, 0, 0),
                ts(2020, 4, 1, 0, 0)
            ),
            1
        );
        assert_eq!(
            diff(DatePart::Day, ts(1969, 12, 31, 23, 0), ts(1970, 1, 1, 1, 0)),
            1
        );
    }

    #[test]
    fn current_timestamp_in_session_zone() {
        let now = NaiveDate::from_ymd_opt(2020, 7, 1)
            .unwrap()
            .and_hms_micro_opt(12, 0, 30, 123_456)
            .unwrap()
            .and_utc();
        let mut config = ConfigOptions::default();
        let getdate = CurrentTimestamp::getdate();
        let sysdate = CurrentTimestamp::sysdate();
        let noon = ts(2020, 7, 1, 12, 0);
        assert_eq!(getdate.value_at(now, &config).unwrap(), noon + 30_000_000);
        assert_eq!(sysdate.value_at(now, &config).unwrap(), noon + 30_123_456);
        config.execution.time_zone = Some("America/New_York".to_string());
        assert_eq!(
            getdate.value_at(now, &config).unwrap(),
            ts(2020, 7, 1, 8, 0) + 30_000_000
        );
        config.execution.time_zone = Some("+05:30".to_string());
        assert_eq!(
            getdate.value_at(now, &config).unwrap(),
            ts(2020, 7, 1, 17, 30) + 30_000_000
        );
    }

    #[test]
    fn month_arithmetic() {
        let jan31 = ts(2020, 1, 31, 10, 0);
        assert_eq!(
            date_add(DatePart::Month, 1, jan31),
            Some(ts(2020, 2, 29, 10, 0))
        );
        let apr30 = ts(2020, 4, 30, 0, 0);
        assert_eq!(
            date_add(DatePart::Month, 1, apr30),
            Some(ts(2020, 5, 30, 0, 0))
        );
        assert_eq!(add_months_end_aware(apr30, 1), Some(ts(2020, 5, 31, 0, 0)));
        assert_eq!(
            add_months_end_aware(jan31, -2),
            Some(ts(2019, 11, 30, 10, 0))
        );
        assert_eq!(date_add(DatePart::Year, i64::MAX, jan31), None);
    }
}
