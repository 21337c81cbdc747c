//! Arrow → Postgres: column types (OID, typmod, typlen) and the encoding of values into
//! `DataRow`s, text or binary per column.

use std::panic::AssertUnwindSafe;

use basalt_catalog::{SQL_TYPE_METADATA_KEY, SqlType};
use basalt_node::NodeError;
use bytes::{BufMut, BytesMut};
use chrono::{DateTime, NaiveTime};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::*;
use datafusion::execution::SendableRecordBatchStream;
use futures::{Stream, StreamExt};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;
use postgres_types::ToSql;

use crate::handler::{panic_message, to_pg_error};
use basalt_node::pgtext as text;
use basalt_node::pgtext::{
    binary_value, date_days, decimal_parts, interval_parts, string_value, time_micros,
    timestamp_micros, write_padded,
};

/// Microseconds from 1970-01-01 to 2000-01-01, the Postgres binary epoch.
const PG_EPOCH_MICROS: i64 = 946_684_800 * text::MICROS_PER_SECOND;
/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;

/// How one result column goes on the wire.
#[derive(Debug, Clone)]
pub(crate) struct PgColumn {
    pub pg_type: Type,
    /// `atttypmod`; -1 when the type has none.
    pub typmod: i32,
    /// CHAR(n): text values are blank-padded to n characters.
    pub pad_to: Option<usize>,
}

impl PgColumn {
    fn plain(pg_type: Type) -> Self {
        PgColumn {
            pg_type,
            typmod: -1,
            pad_to: None,
        }
    }
}

/// The Postgres type of a column: from the SQL type BasaltDB keeps in the field metadata
/// (varchar(n), char(n), numeric(p,s)) when it still describes the values, else from the
/// Arrow type.
pub(crate) fn pg_column(field: &Field) -> PgColumn {
    let declared = field
        .metadata()
        .get(SQL_TYPE_METADATA_KEY)
        .and_then(|s| SqlType::from_metadata(s))
        .filter(|t| describes(t, field.data_type()));
    if let Some(t) = declared
        && let Some(pg_type) = Type::from_oid(t.pg_oid())
    {
        return PgColumn {
            pg_type,
            typmod: t.typmod(),
            pad_to: match t {
                SqlType::Char(n) => Some(n as usize),
                _ => None,
            },
        };
    }
    let dt = field.data_type();
    let typmod = match dt {
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s)
            if *s >= 0 && *p <= 38 =>
        {
            ((*p as i32) << 16 | *s as i32) + 4
        }
        _ => -1,
    };
    PgColumn {
        pg_type: arrow_to_pg(dt),
        typmod,
        pad_to: None,
    }
}

/// Does the declared SQL type still describe values of this Arrow type? (An expression such as
/// a cast can carry the metadata of its input.)
fn describes(t: &SqlType, dt: &DataType) -> bool {
    match (t, dt) {
        (SqlType::Char(_) | SqlType::Varchar(_), d) => {
            matches!(d, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
        }
        (SqlType::TimestampTz, DataType::Timestamp(_, Some(_))) => true,
        (SqlType::Timestamp, DataType::Timestamp(_, None)) => true,
        (SqlType::Time, DataType::Time32(_) | DataType::Time64(_)) => true,
        (SqlType::Date, DataType::Date32 | DataType::Date64) => true,
        (t, d) => &t.to_arrow() == d,
    }
}

/// The Postgres type an Arrow type is reported as.
pub(crate) fn arrow_to_pg(dt: &DataType) -> Type {
    match dt {
        DataType::Boolean => Type::BOOL,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => Type::INT2,
        DataType::Int32 | DataType::UInt16 => Type::INT4,
        DataType::Int64 | DataType::UInt32 => Type::INT8,
        DataType::UInt64 => Type::NUMERIC,
        DataType::Float16 | DataType::Float32 => Type::FLOAT4,
        DataType::Float64 => Type::FLOAT8,
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => Type::NUMERIC,
        DataType::Date32 | DataType::Date64 => Type::DATE,
        DataType::Timestamp(_, None) => Type::TIMESTAMP,
        DataType::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        DataType::Time32(_) | DataType::Time64(_) => Type::TIME,
        DataType::Interval(_) | DataType::Duration(_) => Type::INTERVAL,
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => Type::BYTEA,
        DataType::Dictionary(_, value) => arrow_to_pg(value),
        // Strings, NULL, lists (sent as array text) and everything else: text.
        _ => Type::TEXT,
    }
}

/// The Arrow type a client-declared parameter type suggests to the planner; None lets the
/// planner infer it (numeric: the precision comes from the context).
pub(crate) fn pg_to_arrow(t: &Type) -> Option<DataType> {
    Some(match *t {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON => DataType::Utf8,
        Type::DATE => DataType::Date32,
        Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        Type::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Type::TIME => DataType::Time64(TimeUnit::Microsecond),
        Type::BYTEA => DataType::Binary,
        Type::INTERVAL => DataType::Interval(IntervalUnit::MonthDayNano),
        // NUMERIC without a typmod, as the planner reads `CAST(x AS NUMERIC)`.
        Type::NUMERIC => DataType::Decimal128(38, 10),
        _ => return None,
    })
}

/// `pg_type.typlen` for the RowDescription.
fn type_size(t: &Type) -> i16 {
    match *t {
        Type::BOOL => 1,
        Type::INT2 => 2,
        Type::INT4 | Type::FLOAT4 | Type::DATE => 4,
        Type::INT8 | Type::FLOAT8 | Type::TIME | Type::TIMESTAMP | Type::TIMESTAMPTZ => 8,
        Type::INTERVAL => 16,
        _ => -1,
    }
}

/// The format of result column `idx`; a format list of the wrong length means text.
pub(crate) fn column_format(format: &Format, idx: usize) -> FieldFormat {
    match format {
        Format::UnifiedText => FieldFormat::Text,
        Format::UnifiedBinary => FieldFormat::Binary,
        Format::Individual(codes) => codes
            .get(idx)
            .map(|c| FieldFormat::from(*c))
            .unwrap_or(FieldFormat::Text),
    }
}

/// RowDescription fields for a schema, with the requested result formats.
pub(crate) fn field_infos(schema: &Schema, format: &Format) -> Vec<FieldInfo> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let col = pg_column(f);
            FieldInfo::new(
                f.name().clone(),
                None,
                None,
                col.pg_type.clone(),
                column_format(format, i),
            )
            .with_type_size(type_size(&col.pg_type))
            .with_type_modifier(col.typmod)
        })
        .collect()
}

/// Encode a record batch stream into DataRows one row at a time (never more than one batch is
/// held). A panic inside the engine's stream ends the stream with an internal error.
pub(crate) fn row_stream(
    schema: &Schema,
    batches: SendableRecordBatchStream,
    format: &Format,
) -> impl Stream<Item = PgWireResult<DataRow>> + Send + 'static {
    let types: Vec<PgColumn> = schema.fields().iter().map(|f| pg_column(f)).collect();
    let formats: Vec<FieldFormat> = (0..types.len()).map(|i| column_format(format, i)).collect();
    encode_rows(batches, move |columns, row| {
        let mut buf = BytesMut::with_capacity(64);
        encode_row(columns, row, &types, &formats, &mut buf)?;
        Ok(DataRow::new(buf, columns.len() as i16))
    })
    .map(|r| r.map_err(|e| to_pg_error(&e)))
}

/// Turn a record batch stream into one encoded item per row, batch by batch (never more than
/// one batch is held; dictionary columns are decoded first). The first error, from the engine
/// or from `encode`, ends the stream; a panic inside the engine's stream becomes an internal
/// error.
pub(crate) fn encode_rows<T, F>(
    batches: SendableRecordBatchStream,
    encode: F,
) -> impl Stream<Item = Result<T, NodeError>> + Send + 'static
where
    T: Send + 'static,
    F: FnMut(&[ArrayRef], usize) -> Result<T, NodeError> + Send + 'static,
{
    struct State<F> {
        batches: futures::stream::BoxStream<'static, Result<RecordBatch, NodeError>>,
        columns: Vec<ArrayRef>,
        rows: usize,
        next: usize,
        encode: F,
        done: bool,
    }
    let batches = AssertUnwindSafe(batches)
        .catch_unwind()
        .map(|r| match r {
            Ok(Ok(b)) => Ok(b),
            Ok(Err(e)) => Err(NodeError::from(e)),
            Err(panic) => Err(NodeError::internal(panic_message(panic.as_ref()))),
        })
        .boxed();
    let state = State {
        batches,
        columns: vec![],
        rows: 0,
        next: 0,
        encode,
        done: false,
    };
    futures::stream::unfold(state, |mut s| async move {
        loop {
            if s.done {
                return None;
            }
            if s.next < s.rows {
                let row = s.next;
                s.next += 1;
                let r = (s.encode)(&s.columns, row);
                if r.is_err() {
                    s.done = true;
                }
                return Some((r, s));
            }
            match s.batches.next().await {
                Some(Ok(batch)) => {
                    s.rows = batch.num_rows();
                    s.next = 0;
                    s.columns = batch.columns().iter().map(normalize).collect();
                }
                Some(Err(e)) => {
                    s.done = true;
                    return Some((Err(e), s));
                }
                None => return None,
            }
        }
    })
}

/// Dictionary columns are decoded to their value type once per batch.
fn normalize(array: &ArrayRef) -> ArrayRef {
    match array.data_type() {
        DataType::Dictionary(_, value) => cast(array, value).unwrap_or_else(|_| array.clone()),
        _ => array.clone(),
    }
}

fn encode_row(
    columns: &[ArrayRef],
    row: usize,
    types: &[PgColumn],
    formats: &[FieldFormat],
    buf: &mut BytesMut,
) -> Result<(), NodeError> {
    for (i, array) in columns.iter().enumerate() {
        let col = types.get(i).cloned().unwrap_or(PgColumn::plain(Type::TEXT));
        let format = formats.get(i).copied().unwrap_or(FieldFormat::Text);
        write_value(array.as_ref(), row, &col, format, buf)?;
    }
    Ok(())
}

/// Write one length-prefixed value (-1 for NULL).
pub(crate) fn write_value(
    array: &dyn Array,
    row: usize,
    col: &PgColumn,
    format: FieldFormat,
    buf: &mut BytesMut,
) -> Result<(), NodeError> {
    if array.data_type() == &DataType::Null || array.is_null(row) {
        buf.put_i32(-1);
        return Ok(());
    }
    let start = buf.len();
    buf.put_i32(0);
    match format {
        FieldFormat::Text => write_text(array, row, col, buf)?,
        FieldFormat::Binary => write_binary(array, row, col, buf)?,
    }
    let len = (buf.len() - start - 4) as i32;
    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// A value (not NULL) in Postgres' text output format.
pub(crate) fn write_text(
    array: &dyn Array,
    row: usize,
    col: &PgColumn,
    buf: &mut BytesMut,
) -> Result<(), NodeError> {
    let ok = match array.data_type() {
        DataType::List(_) => write_array(&array.as_list::<i32>().value(row), buf)?,
        DataType::LargeList(_) => write_array(&array.as_list::<i64>().value(row), buf)?,
        DataType::FixedSizeList(..) => write_array(&array.as_fixed_size_list().value(row), buf)?,
        _ => text::write_value(array, row, col.pad_to, buf),
    };
    if !ok {
        text::write_display(array, row, buf)?;
    }
    Ok(())
}

/// A list as a Postgres array literal: `{1,2,NULL}`, `{"a b",c}`, `{{1,2},{3,4}}`.
fn write_array(values: &ArrayRef, buf: &mut BytesMut) -> Result<bool, NodeError> {
    let values = normalize(values);
    let element = PgColumn::plain(arrow_to_pg(values.data_type()));
    let nested = matches!(
        values.data_type(),
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..)
    );
    buf.put_u8(b'{');
    for i in 0..values.len() {
        if i > 0 {
            buf.put_u8(b',');
        }
        if values.data_type() == &DataType::Null || values.is_null(i) {
            buf.put_slice(b"NULL");
        } else if nested {
            write_text(values.as_ref(), i, &element, buf)?;
        } else {
            let mut item = BytesMut::new();
            write_text(values.as_ref(), i, &element, &mut item)?;
            text::write_array_element(buf, &String::from_utf8_lossy(&item));
        }
    }
    buf.put_u8(b'}');
    Ok(true)
}

fn to_sql_err(e: Box<dyn std::error::Error + Sync + Send>) -> NodeError {
    NodeError::invalid(
        "22P03",
        format!("cannot encode value in binary format: {e}"),
    )
}

fn out_of_range(what: &str) -> NodeError {
    NodeError::invalid("22008", format!("{what} out of range"))
}

/// A value in Postgres' binary format for the column's announced type.
fn write_binary(
    array: &dyn Array,
    row: usize,
    col: &PgColumn,
    buf: &mut BytesMut,
) -> Result<(), NodeError> {
    let t = &col.pg_type;
    match array.data_type() {
        DataType::Boolean => array.as_boolean().value(row).to_sql(t, buf),
        DataType::Int8 => (array.as_primitive::<Int8Type>().value(row) as i16).to_sql(t, buf),
        DataType::UInt8 => (array.as_primitive::<UInt8Type>().value(row) as i16).to_sql(t, buf),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(row).to_sql(t, buf),
        DataType::UInt16 => (array.as_primitive::<UInt16Type>().value(row) as i32).to_sql(t, buf),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).to_sql(t, buf),
        DataType::UInt32 => (array.as_primitive::<UInt32Type>().value(row) as i64).to_sql(t, buf),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).to_sql(t, buf),
        DataType::Float16 => array
            .as_primitive::<Float16Type>()
            .value(row)
            .to_f32()
            .to_sql(t, buf),
        DataType::Float32 => array
            .as_primitive::<Float32Type>()
            .value(row)
            .to_sql(t, buf),
        DataType::Float64 => array
            .as_primitive::<Float64Type>()
            .value(row)
            .to_sql(t, buf),
        DataType::UInt64
        | DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => {
            if let Some((digits, scale)) = decimal_parts(array, row) {
                write_numeric_binary(buf, &digits, scale);
            }
            return Ok(());
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            write_padded(
                buf,
                string_value(array, row).unwrap_or_default(),
                col.pad_to,
            );
            return Ok(());
        }
        DataType::Date32 | DataType::Date64 => {
            let days = date_days(array, row);
            text::date_from_days(days)
                .ok_or_else(|| out_of_range("date"))?
                .to_sql(t, buf)
        }
        DataType::Timestamp(unit, tz) => {
            let micros = timestamp_micros(array, row, unit);
            let naive =
                DateTime::from_timestamp_micros(micros).ok_or_else(|| out_of_range("timestamp"))?;
            if tz.is_some() {
                naive.to_sql(t, buf)
            } else {
                naive.naive_utc().to_sql(t, buf)
            }
        }
        DataType::Time32(_) | DataType::Time64(_) => {
            let micros = time_micros(array, row);
            if micros == text::MICROS_PER_DAY {
                // 24:00:00 is a valid Postgres time but not a chrono one.
                buf.put_i64(micros);
                return Ok(());
            }
            let secs = micros.div_euclid(1_000_000) as u32;
            let nanos = (micros.rem_euclid(1_000_000) * 1_000) as u32;
            NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos)
                .ok_or_else(|| out_of_range("time"))?
                .to_sql(t, buf)
        }
        DataType::Interval(_) | DataType::Duration(_) => {
            // interval: i64 microseconds, i32 days, i32 months (no postgres-types impl).
            let (months, days, micros) = interval_parts(array, row);
            buf.put_i64(micros);
            buf.put_i32(days);
            buf.put_i32(months);
            return Ok(());
        }
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => {
            binary_value(array, row).unwrap_or_default().to_sql(t, buf)
        }
        // Announced as text: the binary form of text is its bytes.
        _ => return write_text(array, row, col, buf),
    }
    .map(|_| ())
    .map_err(to_sql_err)
}

/// Postgres' binary numeric: ndigits, weight, sign, dscale, then base-10000 digits.
/// (Written by hand: rust_decimal holds only 28 digits, numeric(38) needs more.)
pub(crate) fn write_numeric_binary(buf: &mut BytesMut, unscaled: &str, scale: i8) {
    let (negative, digits) = match unscaled.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, unscaled),
    };
    // Absolute value as integer and fraction digit strings.
    let (int_part, frac_part, dscale) = if scale <= 0 {
        let mut int = digits.to_string();
        if int != "0" {
            int.extend(std::iter::repeat_n('0', (-(scale as i32)) as usize));
        }
        (int, String::new(), 0u16)
    } else {
        let s = scale as usize;
        let padded = format!("{digits:0>width$}", width = s + 1);
        let (i, f) = padded.split_at(padded.len() - s);
        (i.to_string(), f.to_string(), s as u16)
    };
    let int_part = int_part.trim_start_matches('0');
    // Group the integer part in fours from the right, the fraction in fours from the left.
    let int_pad = (4 - int_part.len() % 4) % 4;
    let int_digits = format!("{}{}", "0".repeat(int_pad), int_part);
    let frac_pad = (4 - frac_part.len() % 4) % 4;
    let frac_digits = format!("{}{}", frac_part, "0".repeat(frac_pad));
    let group = |s: &str| -> Vec<i16> {
        s.as_bytes()
            .chunks(4)
            .map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + (d - b'0') as i16))
            .collect()
    };
    let int_groups = group(&int_digits);
    let frac_groups = group(&frac_digits);
    let mut weight = int_groups.len() as i16 - 1;
    let mut all: Vec<i16> = int_groups.into_iter().chain(frac_groups).collect();
    // Strip leading zero groups (each lowers the weight) and trailing zero groups.
    let leading = all.iter().take_while(|d| **d == 0).count();
    all.drain(..leading);
    weight -= leading as i16;
    while all.last() == Some(&0) {
        all.pop();
    }
    if all.is_empty() {
        weight = 0;
    }
    buf.put_i16(all.len() as i16);
    buf.put_i16(weight);
    buf.put_u16(if negative && !all.is_empty() {
        0x4000
    } else {
        0
    });
    buf.put_u16(dscale);
    for d in all {
        buf.put_i16(d);
    }
}

/// Microseconds since 1970-01-01 from microseconds since 2000-01-01.
pub(crate) fn micros_from_pg_epoch(pg_micros: i64) -> i64 {
    pg_micros.saturating_add(PG_EPOCH_MICROS)
}

/// Days since 1970-01-01 from days since 2000-01-01.
pub(crate) fn days_from_pg_epoch(pg_days: i32) -> i32 {
    pg_days.saturating_add(PG_EPOCH_DAYS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(unscaled: &str, scale: i8) -> Vec<u8> {
        let mut b = BytesMut::new();
        write_numeric_binary(&mut b, unscaled, scale);
        b.to_vec()
    }

    #[test]
    fn numeric_binary_layout() {
        // 1234.50 → digits [1234, 5000], weight 0, dscale 2
        assert_eq!(
            numeric("123450", 2),
            vec![0, 2, 0, 0, 0, 0, 0, 2, 0x04, 0xd2, 0x13, 0x88]
        );
        // -0.05 → digits [500], weight -1, negative, dscale 2
        assert_eq!(
            numeric("-5", 2),
            vec![0, 1, 0xff, 0xff, 0x40, 0, 0, 2, 0x01, 0xf4]
        );
        // 0.00 → no digits
        assert_eq!(numeric("0", 2), vec![0, 0, 0, 0, 0, 0, 0, 2]);
        // 10000 → [1], weight 1
        assert_eq!(numeric("10000", 0), vec![0, 1, 0, 1, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn metadata_wins_only_when_it_describes_the_values() {
        let meta = |t: SqlType| {
            [(SQL_TYPE_METADATA_KEY.to_string(), t.to_metadata())]
                .into_iter()
                .collect()
        };
        let f = Field::new("c", DataType::Utf8, true).with_metadata(meta(SqlType::Char(5)));
        let c = pg_column(&f);
        assert_eq!(c.pg_type, Type::BPCHAR);
        assert_eq!(c.typmod, 9);
        assert_eq!(c.pad_to, Some(5));
        let f = Field::new("c", DataType::Int64, true).with_metadata(meta(SqlType::Integer));
        assert_eq!(pg_column(&f).pg_type, Type::INT8);
        let f = Field::new("c", DataType::Decimal128(12, 2), true);
        let c = pg_column(&f);
        assert_eq!((c.pg_type, c.typmod), (Type::NUMERIC, (12 << 16 | 2) + 4));
    }
}
