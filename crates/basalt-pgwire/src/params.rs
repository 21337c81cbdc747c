//! Bind parameters → DataFusion `ScalarValue`s: text or binary format, decoded by the type
//! the client declared (or the one we described), then cast to the type the planner expects.

use basalt_node::NodeError;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use datafusion::arrow::datatypes::{DataType, IntervalMonthDayNano, TimeUnit};
use datafusion::common::ScalarValue;
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::FieldFormat;
use postgres_types::FromSql;

use crate::types::{arrow_to_pg, column_format, days_from_pg_epoch, micros_from_pg_epoch};

/// Decode the parameters of a Bind for a statement whose planner types are `targets`.
/// `declared` are the types the client named in Parse (None: unspecified).
pub(crate) fn decode_params(
    values: &[Option<bytes::Bytes>],
    format: &Format,
    declared: &[Option<Type>],
    targets: &[DataType],
    statement_name: &str,
) -> Result<Vec<ScalarValue>, NodeError> {
    if values.len() != targets.len() {
        return Err(NodeError::invalid(
            "08P01",
            format!(
                "bind message supplies {} parameters, but prepared statement \"{}\" requires {}",
                values.len(),
                statement_name,
                targets.len()
            ),
        ));
    }
    values
        .iter()
        .zip(targets)
        .enumerate()
        .map(|(i, (raw, target))| {
            let pg = declared
                .get(i)
                .cloned()
                .flatten()
                .unwrap_or_else(|| arrow_to_pg(target));
            let binary = column_format(format, i) == FieldFormat::Binary;
            decode_param(raw.as_deref(), binary, &pg, target).map(as_node_literal)
        })
        .collect()
}

/// Workaround for basalt-node's parameter substitution, which renders values with
/// `ScalarValue`'s `Display`: timestamps and times print as raw integers there
/// (`CAST('946684799999999' AS TIMESTAMP)` fails). Send those as their ISO text instead; the
/// planner coerces the string literal to the column's type.
fn as_node_literal(v: ScalarValue) -> ScalarValue {
    let mut text = String::new();
    match &v {
        ScalarValue::TimestampSecond(Some(_), tz)
        | ScalarValue::TimestampMillisecond(Some(_), tz)
        | ScalarValue::TimestampMicrosecond(Some(_), tz)
        | ScalarValue::TimestampNanosecond(Some(_), tz) => {
            let micros = match v.cast_to(&DataType::Timestamp(TimeUnit::Microsecond, tz.clone())) {
                Ok(ScalarValue::TimestampMicrosecond(Some(us), _)) => us,
                _ => return v,
            };
            if !basalt_node::pgtext::write_timestamp(&mut text, micros, tz.is_some()) {
                return v;
            }
        }
        ScalarValue::Time32Second(Some(_))
        | ScalarValue::Time32Millisecond(Some(_))
        | ScalarValue::Time64Microsecond(Some(_))
        | ScalarValue::Time64Nanosecond(Some(_)) => {
            match v.cast_to(&DataType::Time64(TimeUnit::Microsecond)) {
                Ok(ScalarValue::Time64Microsecond(Some(us))) => {
                    basalt_node::pgtext::write_time(&mut text, us)
                }
                _ => return v,
            }
        }
        _ => return v,
    }
    ScalarValue::Utf8(Some(text))
}

/// One parameter. A planner type of Utf8 is the planner's "could not infer" default, so a
/// value the client sent with a more specific type keeps that type.
pub(crate) fn decode_param(
    raw: Option<&[u8]>,
    binary: bool,
    pg: &Type,
    target: &DataType,
) -> Result<ScalarValue, NodeError> {
    let keep_client_type = target == &DataType::Utf8;
    let Some(raw) = raw else {
        let dt = match crate::types::pg_to_arrow(pg) {
            Some(natural) if keep_client_type => natural,
            _ => target.clone(),
        };
        return Ok(ScalarValue::try_from(&dt).unwrap_or(ScalarValue::Null));
    };
    let value = if binary {
        decode_binary(raw, pg)?
    } else {
        let text = std::str::from_utf8(raw).map_err(|_| {
            NodeError::invalid("22021", "invalid byte sequence for encoding \"UTF8\"")
        })?;
        decode_text(text, pg)?
    };
    if &value.data_type() == target || keep_client_type {
        return Ok(value);
    }
    value.cast_to(target).map_err(|_| {
        NodeError::invalid(
            "22P02",
            format!(
                "invalid input syntax for type {}: \"{}\"",
                type_name(&arrow_to_pg(target)),
                value
            ),
        )
    })
}

/// The name Postgres uses in input-syntax errors.
fn type_name(t: &Type) -> &str {
    match *t {
        Type::BOOL => "boolean",
        Type::INT2 => "smallint",
        Type::INT4 => "integer",
        Type::INT8 => "bigint",
        Type::FLOAT4 => "real",
        Type::FLOAT8 => "double precision",
        Type::TIMESTAMP => "timestamp",
        Type::TIMESTAMPTZ => "timestamp with time zone",
        Type::TIME => "time",
        _ => t.name(),
    }
}

fn syntax(t: &Type, text: &str) -> NodeError {
    NodeError::invalid(
        "22P02",
        format!("invalid input syntax for type {}: \"{text}\"", type_name(t)),
    )
}

fn utc() -> Option<std::sync::Arc<str>> {
    Some("UTC".into())
}

fn decode_text(s: &str, t: &Type) -> Result<ScalarValue, NodeError> {
    let trimmed = s.trim();
    let int = |bits: u32| -> Result<i64, NodeError> {
        let v: i64 = trimmed.parse().map_err(|_| syntax(t, s))?;
        if bits < 64 && (v > (1i64 << (bits - 1)) - 1 || v < -(1i64 << (bits - 1))) {
            return Err(NodeError::invalid(
                "22003",
                format!("value \"{s}\" is out of range for type {}", type_name(t)),
            ));
        }
        Ok(v)
    };
    Ok(match *t {
        Type::BOOL => ScalarValue::Boolean(Some(parse_bool(trimmed).ok_or_else(|| syntax(t, s))?)),
        Type::INT2 => ScalarValue::Int16(Some(int(16)? as i16)),
        Type::INT4 => ScalarValue::Int32(Some(int(32)? as i32)),
        Type::INT8 | Type::OID => ScalarValue::Int64(Some(int(64)?)),
        Type::FLOAT4 => ScalarValue::Float32(Some(trimmed.parse().map_err(|_| syntax(t, s))?)),
        Type::FLOAT8 => ScalarValue::Float64(Some(trimmed.parse().map_err(|_| syntax(t, s))?)),
        Type::NUMERIC => parse_numeric(trimmed).ok_or_else(|| syntax(t, s))?,
        Type::DATE => {
            // pgjdbc sends `setDate` values as "2024-02-29 +00".
            let day = trimmed.split_whitespace().next().unwrap_or(trimmed);
            let d = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| syntax(t, s))?;
            ScalarValue::Date32(Some(days_since_unix_epoch(d)))
        }
        Type::TIMESTAMP => {
            // pgjdbc sends `setTimestamp` values with an offset ("... +00"); a timestamp
            // without time zone ignores it, as Postgres does.
            let micros = match parse_naive_timestamp(trimmed) {
                Some(ts) => ts.and_utc().timestamp_micros(),
                None => {
                    let naive = trimmed
                        .rfind(['+', '-'])
                        .filter(|&i| i > 10)
                        .map(|i| trimmed[..i].trim_end())
                        .unwrap_or(trimmed);
                    parse_naive_timestamp(naive)
                        .ok_or_else(|| syntax(t, s))?
                        .and_utc()
                        .timestamp_micros()
                }
            };
            ScalarValue::TimestampMicrosecond(Some(micros), None)
        }
        Type::TIMESTAMPTZ => {
            let micros = parse_timestamptz(trimmed).ok_or_else(|| syntax(t, s))?;
            ScalarValue::TimestampMicrosecond(Some(micros), utc())
        }
        Type::TIME => {
            let time = ["%H:%M:%S%.f", "%H:%M"]
                .iter()
                .find_map(|f| NaiveTime::parse_from_str(trimmed, f).ok())
                .ok_or_else(|| syntax(t, s))?;
            let micros = time.num_seconds_from_midnight() as i64 * 1_000_000
                + (time.nanosecond() / 1_000) as i64;
            ScalarValue::Time64Microsecond(Some(micros))
        }
        Type::BYTEA => ScalarValue::Binary(Some(parse_bytea(s).ok_or_else(|| syntax(t, s))?)),
        Type::INTERVAL => ScalarValue::Utf8(Some(s.to_string()))
            .cast_to(&DataType::Interval(
                datafusion::arrow::datatypes::IntervalUnit::MonthDayNano,
            ))
            .map_err(|_| syntax(t, s))?,
        _ => ScalarValue::Utf8(Some(s.to_string())),
    })
}

fn days_since_unix_epoch(d: NaiveDate) -> i32 {
    (d - NaiveDate::default()).num_days() as i32
}

/// Postgres' boolean input: t/true/yes/on/1 and f/false/no/off/0 (case-insensitive, unique
/// prefixes).
fn parse_bool(s: &str) -> Option<bool> {
    let s = s.to_ascii_lowercase();
    if s.is_empty() {
        return None;
    }
    let is_prefix = |word: &str, min: usize| s.len() >= min && word.starts_with(s.as_str());
    if is_prefix("true", 1) || is_prefix("yes", 1) || is_prefix("on", 2) || s == "1" {
        Some(true)
    } else if is_prefix("false", 1) || is_prefix("no", 1) || is_prefix("off", 2) || s == "0" {
        Some(false)
    } else {
        None
    }
}

/// `[-+]digits[.digits][e[-+]digits]` → Decimal128(38, scale); NaN/Infinity → Float64.
fn parse_numeric(s: &str) -> Option<ScalarValue> {
    match s.to_ascii_lowercase().as_str() {
        "nan" => return Some(ScalarValue::Float64(Some(f64::NAN))),
        "infinity" | "+infinity" | "inf" => return Some(ScalarValue::Float64(Some(f64::INFINITY))),
        "-infinity" | "-inf" => return Some(ScalarValue::Float64(Some(f64::NEG_INFINITY))),
        _ => {}
    }
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (negative, mantissa) = match mantissa.as_bytes().first() {
        Some(b'-') => (true, &mantissa[1..]),
        Some(b'+') => (false, &mantissa[1..]),
        _ => (false, mantissa),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut digits = format!("{int}{frac}");
    let mut scale = frac.len() as i32 - exp;
    if scale < 0 {
        digits.extend(std::iter::repeat_n('0', (-scale) as usize));
        scale = 0;
    }
    decimal_scalar(negative, &digits, scale)
}

/// Decimal128(38, scale) from an unscaled digit string, if it fits.
fn decimal_scalar(negative: bool, digits: &str, scale: i32) -> Option<ScalarValue> {
    let digits = digits.trim_start_matches('0');
    if digits.len() > 38 || scale > 38 {
        return None;
    }
    let v: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    Some(ScalarValue::Decimal128(
        Some(if negative { -v } else { v }),
        38,
        scale as i8,
    ))
}

fn parse_naive_timestamp(s: &str) -> Option<NaiveDateTime> {
    const FORMATS: [&str; 4] = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ];
    FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

/// A timestamp with an optional offset (none means UTC, the session time zone).
fn parse_timestamptz(s: &str) -> Option<i64> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_micros());
    }
    const FORMATS: [&str; 4] = [
        "%Y-%m-%d %H:%M:%S%.f%#z",
        "%Y-%m-%dT%H:%M:%S%.f%#z",
        "%Y-%m-%d %H:%M:%S%.f %#z",
        "%Y-%m-%d %H:%M%#z",
    ];
    if let Some(dt) = FORMATS
        .iter()
        .find_map(|f| DateTime::parse_from_str(s, f).ok())
    {
        return Some(dt.timestamp_micros());
    }
    let naive = s
        .strip_suffix(" UTC")
        .or_else(|| s.strip_suffix('Z'))
        .unwrap_or(s);
    parse_naive_timestamp(naive).map(|t| t.and_utc().timestamp_micros())
}

/// bytea input: hex (`\x0102`) or the raw bytes.
fn parse_bytea(s: &str) -> Option<Vec<u8>> {
    let Some(hex) = s.strip_prefix("\\x") else {
        return Some(s.as_bytes().to_vec());
    };
    let hex: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

fn binary_err(t: &Type) -> NodeError {
    NodeError::invalid(
        "22P03",
        format!(
            "incorrect binary data format in bind parameter of type {}",
            type_name(t)
        ),
    )
}

fn fixed<const N: usize>(raw: &[u8], t: &Type) -> Result<[u8; N], NodeError> {
    raw.try_into().map_err(|_| binary_err(t))
}

fn decode_binary(raw: &[u8], t: &Type) -> Result<ScalarValue, NodeError> {
    let from_sql = |e: Box<dyn std::error::Error + Sync + Send>| {
        NodeError::invalid("22P03", format!("incorrect binary data format: {e}"))
    };
    Ok(match *t {
        Type::BOOL => ScalarValue::Boolean(Some(bool::from_sql(t, raw).map_err(from_sql)?)),
        Type::INT2 => ScalarValue::Int16(Some(i16::from_sql(t, raw).map_err(from_sql)?)),
        Type::INT4 => ScalarValue::Int32(Some(i32::from_sql(t, raw).map_err(from_sql)?)),
        Type::INT8 => ScalarValue::Int64(Some(i64::from_sql(t, raw).map_err(from_sql)?)),
        Type::OID => ScalarValue::Int64(Some(u32::from_sql(t, raw).map_err(from_sql)? as i64)),
        Type::FLOAT4 => ScalarValue::Float32(Some(f32::from_sql(t, raw).map_err(from_sql)?)),
        Type::FLOAT8 => ScalarValue::Float64(Some(f64::from_sql(t, raw).map_err(from_sql)?)),
        Type::NUMERIC => decode_numeric_binary(raw).ok_or_else(|| binary_err(t))?,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON => {
            ScalarValue::Utf8(Some(String::from_sql(&Type::TEXT, raw).map_err(from_sql)?))
        }
        Type::JSONB => match raw.split_first() {
            Some((1, rest)) => ScalarValue::Utf8(Some(
                String::from_utf8(rest.to_vec()).map_err(|_| binary_err(t))?,
            )),
            _ => return Err(binary_err(t)),
        },
        Type::BYTEA => ScalarValue::Binary(Some(raw.to_vec())),
        Type::DATE => {
            ScalarValue::Date32(Some(days_from_pg_epoch(i32::from_be_bytes(fixed(raw, t)?))))
        }
        Type::TIMESTAMP => ScalarValue::TimestampMicrosecond(
            Some(micros_from_pg_epoch(i64::from_be_bytes(fixed(raw, t)?))),
            None,
        ),
        Type::TIMESTAMPTZ => ScalarValue::TimestampMicrosecond(
            Some(micros_from_pg_epoch(i64::from_be_bytes(fixed(raw, t)?))),
            utc(),
        ),
        Type::TIME => ScalarValue::Time64Microsecond(Some(i64::from_be_bytes(fixed(raw, t)?))),
        Type::INTERVAL => {
            let b: [u8; 16] = fixed(raw, t)?;
            let micros = i64::from_be_bytes(fixed(&b[0..8], t)?);
            let days = i32::from_be_bytes(fixed(&b[8..12], t)?);
            let months = i32::from_be_bytes(fixed(&b[12..16], t)?);
            ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(
                months,
                days,
                micros.saturating_mul(1_000),
            )))
        }
        _ => {
            return Err(NodeError::invalid(
                "0A000",
                format!(
                    "binary format for parameters of type {} is not supported",
                    t.name()
                ),
            ));
        }
    })
}

/// Postgres' binary numeric → Decimal128(38, dscale) when it fits, else its text as Utf8.
fn decode_numeric_binary(raw: &[u8]) -> Option<ScalarValue> {
    let word =
        |i: usize| -> Option<u16> { Some(u16::from_be_bytes(raw.get(i..i + 2)?.try_into().ok()?)) };
    let ndigits = word(0)? as usize;
    let weight = word(2)? as i16 as i32;
    let sign = word(4)?;
    let dscale = word(6)? as usize;
    match sign {
        0xC000 => return Some(ScalarValue::Float64(Some(f64::NAN))),
        0xD000 => return Some(ScalarValue::Float64(Some(f64::INFINITY))),
        0xF000 => return Some(ScalarValue::Float64(Some(f64::NEG_INFINITY))),
        0 | 0x4000 => {}
        _ => return None,
    }
    let mut all = String::with_capacity(ndigits * 4);
    for i in 0..ndigits {
        let d = word(8 + i * 2)?;
        if d > 9999 {
            return None;
        }
        all.push_str(&format!("{d:04}"));
    }
    // The decimal point sits after (weight + 1) groups.
    let point = (weight + 1) * 4;
    let (int, frac) = if point <= 0 {
        (
            String::new(),
            format!("{}{}", "0".repeat((-point) as usize), all),
        )
    } else if point as usize >= all.len() {
        (
            format!("{all}{}", "0".repeat(point as usize - all.len())),
            String::new(),
        )
    } else {
        let (i, f) = all.split_at(point as usize);
        (i.to_string(), f.to_string())
    };
    let mut frac: String = frac.chars().take(dscale).collect();
    while frac.len() < dscale {
        frac.push('0');
    }
    let negative = sign == 0x4000;
    decimal_scalar(negative, &format!("{int}{frac}"), dscale as i32).or_else(|| {
        let int = if int.is_empty() { "0".to_string() } else { int };
        let sign = if negative { "-" } else { "" };
        let text = if frac.is_empty() {
            format!("{sign}{int}")
        } else {
            format!("{sign}{int}.{frac}")
        };
        Some(ScalarValue::Utf8(Some(text)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    #[test]
    fn numeric_round_trips_through_binary() {
        for (unscaled, scale) in [
            ("123450", 2i8),
            ("-5", 2),
            ("0", 2),
            ("10000", 0),
            ("1", 10),
        ] {
            let mut b = BytesMut::new();
            crate::types::write_numeric_binary(&mut b, unscaled, scale);
            let v = decode_numeric_binary(&b).expect("decodes");
            assert_eq!(
                v,
                ScalarValue::Decimal128(Some(unscaled.parse().expect("int")), 38, scale)
            );
        }
    }

    #[test]
    fn text_parameters() {
        assert_eq!(
            decode_param(
                Some(b"12.50"),
                false,
                &Type::NUMERIC,
                &DataType::Decimal128(12, 2)
            )
            .expect("numeric"),
            ScalarValue::Decimal128(Some(1250), 12, 2)
        );
        assert_eq!(
            decode_param(Some(b"42"), false, &Type::UNKNOWN, &DataType::Int32).expect("int"),
            ScalarValue::Int32(Some(42))
        );
        assert_eq!(
            decode_param(Some(b"yes"), false, &Type::BOOL, &DataType::Boolean).expect("bool"),
            ScalarValue::Boolean(Some(true))
        );
        assert_eq!(
            decode_param(None, false, &Type::INT8, &DataType::Utf8).expect("null"),
            ScalarValue::Int64(None)
        );
        let e = decode_param(Some(b"abc"), false, &Type::INT4, &DataType::Int32).unwrap_err();
        assert_eq!(e.sqlstate(), "22P02");
        assert_eq!(
            decode_param(
                Some(b"2020-01-02 03:04:05.5+01"),
                false,
                &Type::TIMESTAMPTZ,
                &DataType::Timestamp(TimeUnit::Microsecond, utc())
            )
            .expect("timestamptz"),
            ScalarValue::TimestampMicrosecond(Some(1_577_930_645_500_000), utc())
        );
    }
}
