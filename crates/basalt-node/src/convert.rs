//! Redshift's COPY data conversion, one row at a time where it matters: the text of each
//! field becomes the column's type under the COPY's conversion parameters (BLANKSASNULL,
//! EMPTYASNULL, TRIMBLANKS, TRUNCATECOLUMNS, ROUNDEC, DATEFORMAT/TIMEFORMAT, ACCEPTANYDATE), and
//! a row that cannot be loaded is rejected with Redshift's load error code instead of failing
//! the whole batch. Rejected rows count against MAXERROR and go to STL_LOAD_ERRORS.
//!
//! A column converts in one vectorised cast when all its values are good (the usual case);
//! only a column with a bad value is looked at value by value, to find the rows to reject.

use std::sync::Arc;

use basalt_catalog::{ColumnMeta, SqlType};
use chrono::{NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::DataType;

use crate::NodeError;

/// Longest raw line and field value kept in STL_LOAD_ERRORS (Redshift's char(1024)).
const RAW_MAX: usize = 1024;
/// Longest error reason kept (Redshift's char(100)).
const REASON_MAX: usize = 100;

/// Redshift's load error codes (STL_LOAD_ERRORS.err_code).
pub(crate) mod code {
    pub const EXTRA_COLUMNS: i32 = 1202;
    pub const VALUE_OUT_OF_RANGE: i32 = 1204;
    pub const DATE_FORMAT: i32 = 1205;
    pub const TIMESTAMP_FORMAT: i32 = 1206;
    pub const INVALID_DIGIT: i32 = 1207;
    pub const FLOAT_FORMAT: i32 = 1208;
    pub const DECIMAL_FORMAT: i32 = 1209;
    pub const BOOLEAN_FORMAT: i32 = 1210;
    pub const NOT_NULL: i32 = 1213;
    pub const DELIMITER_NOT_FOUND: i32 = 1214;
    pub const INVALID_LINE: i32 = 1216;
    pub const INVALID_UTF8: i32 = 1220;
    pub const MALFORMED_JSON: i32 = 1224;
}

/// One rejected row (a row of STL_LOAD_ERRORS).
#[derive(Debug, Clone)]
pub(crate) struct LoadError {
    pub file: String,
    pub line: u64,
    /// The column the error is in (empty for an error of the whole line).
    pub column: String,
    /// Its type as Redshift names it (`int4`, `varchar`, ...).
    pub ty: String,
    pub col_length: String,
    pub raw_line: String,
    pub raw_value: String,
    pub code: i32,
    pub reason: String,
    /// The Postgres SQLSTATE of the error, for the statement's error when MAXERROR is passed.
    pub sqlstate: &'static str,
    /// Every field of the row as parsed, for STL_LOADERROR_DETAIL (none for an error of the
    /// whole line, whose fields did not match the columns).
    pub fields: Vec<FieldDetail>,
}

/// One field of a rejected row (a row of STL_LOADERROR_DETAIL).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct FieldDetail {
    pub colname: String,
    /// The field as parsed (empty for a NULL).
    pub value: String,
    pub is_null: bool,
    /// The column's type as Redshift names it, and its length (a string's characters, a
    /// decimal's precision, 0 otherwise).
    pub ty: String,
    pub col_length: i32,
}

impl LoadError {
    /// An error of a whole line (column count, encoding).
    pub(crate) fn line(
        file: &str,
        line: u64,
        raw_line: &str,
        code: i32,
        sqlstate: &'static str,
        reason: impl Into<String>,
    ) -> LoadError {
        LoadError {
            file: file.to_string(),
            line,
            column: String::new(),
            ty: String::new(),
            col_length: String::new(),
            raw_line: clip(raw_line, RAW_MAX),
            raw_value: String::new(),
            code,
            reason: clip(&reason.into(), REASON_MAX),
            sqlstate,
            fields: vec![],
        }
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Rejected rows whose fields are kept for STL_LOADERROR_DETAIL, per parser (a file's chunk):
/// Redshift keeps those of 20 rows per slice and load.
const DETAIL_ROWS: usize = 20;

/// The rejected rows of one load, and how many it may reject (MAXERROR).
#[derive(Debug)]
pub(crate) struct Rejects {
    pub max: u64,
    pub table: String,
    pub found: Vec<LoadError>,
}

impl Rejects {
    /// Reject a row; past MAXERROR the load fails with the first error's SQLSTATE.
    pub(crate) fn reject(&mut self, mut e: LoadError) -> Result<(), NodeError> {
        if self.found.len() >= DETAIL_ROWS {
            e.fields = vec![];
        }
        self.found.push(e);
        if self.found.len() as u64 > self.max {
            let first = &self.found[0];
            let column = if first.column.is_empty() {
                String::new()
            } else {
                format!(", column {}", first.column)
            };
            return Err(NodeError::invalid(
                first.sqlstate,
                format!(
                    "Load into table '{}' failed: {} (file {}, line {}{column}); {} error(s), \
                     MAXERROR {}. Check 'stl_load_errors' system table for details.",
                    self.table,
                    first.reason,
                    first.file,
                    first.line,
                    self.found.len(),
                    self.max
                ),
            ));
        }
        Ok(())
    }
}

/// A DATEFORMAT or TIMEFORMAT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TimeFormat {
    /// No format given: ISO text, as a cast reads it.
    Default,
    /// `'auto'`: the formats Redshift recognises.
    Auto,
    /// `'epochsecs'` / `'epochmillisecs'` (TIMEFORMAT only).
    Epoch { millis: bool },
    /// A Redshift format (`'MM/DD/YYYY'`), as a chrono format.
    Pattern(String),
}

impl TimeFormat {
    /// Parse a DATEFORMAT (`date`) or TIMEFORMAT.
    pub(crate) fn parse(spec: &str, date: bool) -> Result<TimeFormat, NodeError> {
        let lower = spec.to_ascii_lowercase();
        Ok(match lower.as_str() {
            "auto" => TimeFormat::Auto,
            "epochsecs" if !date => TimeFormat::Epoch { millis: false },
            "epochmillisecs" if !date => TimeFormat::Epoch { millis: true },
            _ => TimeFormat::Pattern(chrono_pattern(spec).ok_or_else(|| {
                NodeError::invalid(
                    "22023",
                    format!(
                        "COPY {}: '{spec}' is not a valid format",
                        if date { "DATEFORMAT" } else { "TIMEFORMAT" }
                    ),
                )
            })?),
        })
    }
}

/// A Redshift datetime format (`YYYY-MM-DD HH24:MI:SS`) as a chrono format string.
fn chrono_pattern(spec: &str) -> Option<String> {
    const TOKENS: &[(&str, &str)] = &[
        ("YYYY", "%Y"),
        ("MONTH", "%B"),
        ("MON", "%b"),
        ("HH24", "%H"),
        ("HH12", "%I"),
        ("YY", "%y"),
        ("MM", "%m"),
        ("DD", "%d"),
        ("HH", "%H"),
        ("MI", "%M"),
        ("SS", "%S"),
        ("AM", "%p"),
        ("PM", "%p"),
    ];
    let mut out = String::new();
    let mut rest = spec;
    let mut any = false;
    'outer: while !rest.is_empty() {
        let upper = rest.to_ascii_uppercase();
        for (t, f) in TOKENS {
            if upper.starts_with(t) {
                out.push_str(f);
                rest = &rest[t.len()..];
                any = true;
                // Fractional seconds: SS.SSS (any number of S).
                if *t == "SS" && upper[2..].starts_with(".S") {
                    out.push_str("%.f");
                    rest = rest[1..].trim_start_matches(['S', 's']);
                }
                continue 'outer;
            }
        }
        let c = rest.chars().next()?;
        if c.is_ascii_alphanumeric() {
            return None;
        }
        if c == '%' {
            out.push_str("%%");
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    any.then_some(out)
}

/// Redshift's data conversion parameters of one COPY.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    pub blanks_as_null: bool,
    pub empty_as_null: bool,
    pub trim_blanks: bool,
    pub truncate_columns: bool,
    pub round_decimals: bool,
    pub accept_any_date: bool,
    pub date_format: TimeFormat,
    pub time_format: TimeFormat,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            blanks_as_null: false,
            empty_as_null: false,
            trim_blanks: false,
            truncate_columns: false,
            round_decimals: false,
            accept_any_date: false,
            date_format: TimeFormat::Default,
            time_format: TimeFormat::Default,
        }
    }
}

/// The type of a column as STL_LOAD_ERRORS names it, and its `col_length`.
fn redshift_type(ty: &SqlType) -> (&'static str, String) {
    match ty {
        SqlType::SmallInt => ("int2", "0".into()),
        SqlType::Integer => ("int4", "0".into()),
        SqlType::BigInt => ("int8", "0".into()),
        SqlType::Decimal { precision, scale } => ("numeric", format!("{precision},{scale}")),
        SqlType::Real => ("float4", "0".into()),
        SqlType::Double => ("float8", "0".into()),
        SqlType::Boolean => ("bool", "0".into()),
        SqlType::Char(n) => ("bpchar", n.to_string()),
        SqlType::Varchar(n) => ("varchar", n.to_string()),
        SqlType::Date => ("date", "0".into()),
        SqlType::Timestamp => ("timestamp", "0".into()),
        SqlType::TimestampTz => ("timestamptz", "0".into()),
        SqlType::Time => ("time", "0".into()),
    }
}

/// The load error code of a value that does not convert to `ty`.
fn conversion_code(ty: &SqlType, sqlstate: &str) -> i32 {
    match ty {
        _ if sqlstate == "22003" => code::VALUE_OUT_OF_RANGE,
        SqlType::SmallInt | SqlType::Integer | SqlType::BigInt => code::INVALID_DIGIT,
        SqlType::Decimal { .. } => code::DECIMAL_FORMAT,
        SqlType::Real | SqlType::Double => code::FLOAT_FORMAT,
        SqlType::Boolean => code::BOOLEAN_FORMAT,
        SqlType::Date => code::DATE_FORMAT,
        SqlType::Timestamp | SqlType::TimestampTz | SqlType::Time => code::TIMESTAMP_FORMAT,
        SqlType::Char(_) | SqlType::Varchar(_) => code::VALUE_OUT_OF_RANGE,
    }
}

/// The rows of one batch of text fields being converted.
pub(crate) struct Rows<'a> {
    pub file: &'a str,
    /// The line each row came from.
    pub lines: &'a [u64],
    /// Joins a row's fields back into its line for STL_LOAD_ERRORS.
    pub delimiter: char,
}

impl Rows<'_> {
    fn raw_line(&self, batch: &RecordBatch, row: usize) -> String {
        let mut line = String::new();
        for (i, c) in batch.columns().iter().enumerate() {
            if i > 0 {
                line.push(self.delimiter);
            }
            line.push_str(&display(c, row));
        }
        line
    }
}

/// Convert a batch of text fields (one column per target column, `columns` their table
/// columns) to the columns' types under `rules`. Rows that cannot be loaded are rejected into
/// `rejects` and left out of the result.
pub(crate) fn convert(
    batch: &RecordBatch,
    columns: &[&ColumnMeta],
    rows: &Rows<'_>,
    rules: &Rules,
    rejects: &mut Rejects,
) -> Result<RecordBatch, NodeError> {
    let n = batch.num_rows();
    let mut bad = vec![false; n];
    let mut out: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    let mut errors: Vec<(usize, LoadError)> = vec![];
    for (i, c) in columns.iter().enumerate() {
        let input = batch.column(i);
        let (ty_name, col_length) = redshift_type(&c.ty);
        let fields = |row: usize| {
            columns
                .iter()
                .enumerate()
                .map(|(j, c)| {
                    let (ty, length) = redshift_type(&c.ty);
                    let value = batch.column(j);
                    FieldDetail {
                        colname: c.name.clone(),
                        value: clip(&display(value, row), RAW_MAX),
                        is_null: value.is_null(row),
                        ty: ty.to_string(),
                        col_length: length
                            .split(',')
                            .next()
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0),
                    }
                })
                .collect()
        };
        let error = |row: usize, raw: &str, code: i32, sqlstate, reason: String| LoadError {
            file: rows.file.to_string(),
            line: rows.lines[row],
            column: c.name.clone(),
            ty: ty_name.to_string(),
            col_length: col_length.clone(),
            raw_line: clip(&rows.raw_line(batch, row), RAW_MAX),
            raw_value: clip(raw, RAW_MAX),
            code,
            reason: clip(&reason, REASON_MAX),
            sqlstate,
            fields: fields(row),
        };
        let mut failed = vec![false; n];
        let converted = convert_any(input, c, rules, &mut |row, raw, sqlstate, reason| {
            failed[row] = true;
            errors.push((
                row,
                error(row, raw, conversion_code(&c.ty, sqlstate), sqlstate, reason),
            ));
        })?;
        if !c.nullable && converted.null_count() > 0 {
            let raw = batch.column(i).as_string::<i32>();
            for row in (0..n).filter(|r| converted.is_null(*r) && !failed[*r]) {
                let raw = if raw.is_valid(row) {
                    raw.value(row)
                } else {
                    ""
                };
                errors.push((
                    row,
                    error(
                        row,
                        raw,
                        code::NOT_NULL,
                        "23502",
                        "Missing data for not-null field".into(),
                    ),
                ));
            }
        }
        out.push(converted);
    }
    // One error per row (the first column's), in line order.
    errors.sort_by_key(|(row, _)| *row);
    for (row, e) in errors {
        if !bad[row] {
            bad[row] = true;
            rejects.reject(e)?;
        }
    }
    let converted = RecordBatch::try_new(
        Arc::new(datafusion::arrow::datatypes::Schema::new(
            columns
                .iter()
                .map(|c| datafusion::arrow::datatypes::Field::new(&c.name, c.ty.to_arrow(), true))
                .collect::<Vec<_>>(),
        )),
        out,
    )?;
    if !bad.contains(&true) {
        return Ok(converted);
    }
    let keep: BooleanArray = bad.iter().map(|b| Some(!b)).collect();
    Ok(filter_record_batch(&converted, &keep)?)
}

/// A value as text (empty for NULL), for STL_LOAD_ERRORS.
fn display(a: &ArrayRef, row: usize) -> String {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    if a.is_null(row) {
        return String::new();
    }
    ArrayFormatter::try_new(a.as_ref(), &FormatOptions::default())
        .map(|f| f.value(row).to_string())
        .unwrap_or_default()
}

/// Convert one input column of any type: text under the COPY's rules, typed values (Parquet)
/// by a cast, value by value where the cast fails.
fn convert_any(
    input: &ArrayRef,
    c: &ColumnMeta,
    rules: &Rules,
    reject: &mut dyn FnMut(usize, &str, &'static str, String),
) -> Result<ArrayRef, NodeError> {
    let target = c.ty.to_arrow();
    if matches!(input.data_type(), DataType::Utf8View | DataType::LargeUtf8) || c.ty.is_string() {
        let text = cast(input, &DataType::Utf8)?;
        let text = prepare(text.as_string::<i32>(), &c.ty, rules);
        return convert_column(&text, c, rules, reject);
    }
    if input.data_type() == &DataType::Utf8 {
        let text = prepare(input.as_string::<i32>(), &c.ty, rules);
        return convert_column(&text, c, rules, reject);
    }
    if input.data_type() == &target {
        return Ok(input.clone());
    }
    match crate::dml::cast_value(input, &target, c) {
        Ok(a) => Ok(a),
        Err(_) => {
            let mut keep = vec![true; input.len()];
            for (r, k) in keep.iter_mut().enumerate() {
                if input.is_valid(r)
                    && let Err(e) = crate::dml::cast_value(&input.slice(r, 1), &target, c)
                {
                    let (sqlstate, reason) = reason_of(e);
                    reject(r, &display(input, r), sqlstate, reason);
                    *k = false;
                }
            }
            let kept = datafusion::arrow::compute::nullif(
                input,
                &keep.iter().map(|k| Some(!k)).collect::<BooleanArray>(),
            )?;
            crate::dml::cast_value(&kept, &target, c)
        }
    }
}

/// Apply the text rules before conversion: TRIMBLANKS, BLANKSASNULL, EMPTYASNULL and
/// TRUNCATECOLUMNS for strings; blank fields of other types are NULL (as in Redshift), and their
/// values lose surrounding blanks; DECIMAL's extra scale is truncated unless ROUNDEC.
fn prepare(text: &StringArray, ty: &SqlType, rules: &Rules) -> StringArray {
    let string = ty.is_string();
    let scale = match ty {
        SqlType::Decimal { scale, .. } if !rules.round_decimals => Some(*scale as usize),
        _ => None,
    };
    let limit = match ty {
        SqlType::Varchar(n) | SqlType::Char(n) if rules.truncate_columns => Some(*n as usize),
        _ => None,
    };
    let fix = |v: &str| -> Option<Option<String>> {
        if string {
            let mut s = v;
            if rules.trim_blanks {
                s = s.trim_end();
            }
            if (rules.empty_as_null && s.is_empty())
                || (rules.blanks_as_null && s.trim().is_empty())
            {
                return Some(None);
            }
            if let Some(n) = limit
                && s.len() > n
            {
                return Some(Some(clip(s, n)));
            }
            (s.len() != v.len()).then(|| Some(s.to_string()))
        } else {
            let s = v.trim();
            if s.is_empty() {
                return Some(None);
            }
            if let Some(scale) = scale
                && let Some(t) = truncate_scale(s, scale)
            {
                return Some(Some(t));
            }
            (s.len() != v.len()).then(|| Some(s.to_string()))
        }
    };
    // Most columns need nothing: keep the array as it is then.
    let first = (0..text.len()).find(|&r| text.is_valid(r) && fix(text.value(r)).is_some());
    let Some(first) = first else {
        return text.clone();
    };
    (0..text.len())
        .map(|r| {
            if text.is_null(r) {
                None
            } else if r < first {
                Some(text.value(r).to_string())
            } else {
                match fix(text.value(r)) {
                    Some(changed) => changed,
                    None => Some(text.value(r).to_string()),
                }
            }
        })
        .collect()
}

/// `12.3456` at scale 2 is `12.34` (COPY truncates extra decimal digits unless ROUNDEC).
fn truncate_scale(s: &str, scale: usize) -> Option<String> {
    let (int, frac) = s.split_once('.')?;
    if frac.len() <= scale || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(if scale == 0 {
        int.to_string()
    } else {
        format!("{int}.{}", &frac[..scale])
    })
}

/// Convert one prepared column, rejecting values that do not convert through `reject(row,
/// raw value, sqlstate, reason)`.
fn convert_column(
    text: &StringArray,
    c: &ColumnMeta,
    rules: &Rules,
    reject: &mut dyn FnMut(usize, &str, &'static str, String),
) -> Result<ArrayRef, NodeError> {
    let target = c.ty.to_arrow();
    // Strings: lengths are checked here, so a long value rejects its row alone.
    if let SqlType::Varchar(n) | SqlType::Char(n) = c.ty {
        let what = if matches!(c.ty, SqlType::Char(_)) {
            "character"
        } else {
            "character varying"
        };
        for r in 0..text.len() {
            if text.is_valid(r) {
                let v = text.value(r);
                let len = if matches!(c.ty, SqlType::Char(_)) {
                    v.trim_end_matches(' ').len()
                } else {
                    v.len()
                };
                if len > n as usize {
                    reject(
                        r,
                        v,
                        "22001",
                        format!("String length exceeds DDL length ({what}({n}))"),
                    );
                }
            }
        }
        return Ok(Arc::new(text.clone()));
    }
    let format = match c.ty {
        SqlType::Date => &rules.date_format,
        SqlType::Timestamp | SqlType::TimestampTz => &rules.time_format,
        _ => &TimeFormat::Default,
    };
    if *format != TimeFormat::Default {
        return Ok(parse_datetimes(
            text,
            &c.ty,
            format,
            rules.accept_any_date,
            reject,
        ));
    }
    if let DataType::Decimal128(precision, scale) = target
        && let Some(a) = plain_decimals(text, precision, scale)
    {
        return Ok(Arc::new(a));
    }
    let input: ArrayRef = Arc::new(text.clone());
    match crate::dml::cast_value(&input, &target, c) {
        Ok(a) => Ok(a),
        Err(_) => {
            // Find the values that do not convert; the rest convert together.
            let mut kept: Vec<Option<&str>> = Vec::with_capacity(text.len());
            for r in 0..text.len() {
                if text.is_null(r) {
                    kept.push(None);
                    continue;
                }
                let one: ArrayRef = Arc::new(StringArray::from(vec![text.value(r)]));
                match crate::dml::cast_value(&one, &target, c) {
                    Ok(_) => kept.push(Some(text.value(r))),
                    Err(e) => {
                        let (sqlstate, reason) = reason_of(e);
                        reject(r, text.value(r), sqlstate, reason);
                        kept.push(None);
                    }
                }
            }
            let kept: ArrayRef = Arc::new(StringArray::from(kept));
            crate::dml::cast_value(&kept, &target, c)
        }
    }
}

/// DECIMAL columns in the plain form every exporter writes (`-123.45`) convert here, without
/// the general string cast (which formats a string per value and took a seventh of a CSV
/// load's time: docs/benchmarks.md). `None` when any value is in another form (an exponent,
/// blanks, more decimals than the scale, too many digits): the general cast then decides, and
/// reports the bad values.
pub(crate) fn plain_decimals(
    text: &StringArray,
    precision: u8,
    scale: i8,
) -> Option<Decimal128Array> {
    let scale_digits = usize::try_from(scale).ok()?;
    let limit = 10i128.checked_pow(u32::from(precision))?;
    let mut values = Vec::with_capacity(text.len());
    for r in 0..text.len() {
        if text.is_null(r) {
            values.push(0);
            continue;
        }
        let v = plain_decimal(text.value(r).as_bytes(), scale_digits)?;
        if v.unsigned_abs() >= limit.unsigned_abs() {
            return None;
        }
        values.push(v);
    }
    Decimal128Array::new(values.into(), text.nulls().cloned())
        .with_precision_and_scale(precision, scale)
        .ok()
}

/// `[+-]digits[.digits]`, at most `scale` decimals and 38 digits in all, as an integer of
/// `scale` decimals.
fn plain_decimal(b: &[u8], scale: usize) -> Option<i128> {
    let (negative, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    let (int, frac) = match memchr::memchr(b'.', digits) {
        Some(dot) => (&digits[..dot], &digits[dot + 1..]),
        None => (digits, &[][..]),
    };
    if int.is_empty() || frac.len() > scale || int.len() + scale > 38 {
        return None;
    }
    let mut v: i128 = 0;
    for &d in int.iter().chain(frac) {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i128::from(d - b'0');
    }
    v *= 10i128.pow((scale - frac.len()) as u32);
    Some(if negative { -v } else { v })
}

/// The SQLSTATE and reason of a value's conversion error, without the column prefix
/// `cast_value` puts on it (STL_LOAD_ERRORS has the column).
fn reason_of(e: NodeError) -> (&'static str, String) {
    match e {
        NodeError::InvalidInput { sqlstate, message } => {
            let reason = match message.split_once(": ") {
                Some((_, rest)) if message.starts_with("column ") => rest.to_string(),
                _ => message,
            };
            (sqlstate, reason)
        }
        other => (other.sqlstate(), other.to_string()),
    }
}

/// Dates and timestamps in a DATEFORMAT / TIMEFORMAT. With ACCEPTANYDATE a value that does
/// not match loads as NULL.
fn parse_datetimes(
    text: &StringArray,
    ty: &SqlType,
    format: &TimeFormat,
    accept_any: bool,
    reject: &mut dyn FnMut(usize, &str, &'static str, String),
) -> ArrayRef {
    let date = matches!(ty, SqlType::Date);
    let parsed = (0..text.len()).map(|r| {
        if text.is_null(r) {
            return None;
        }
        let v = text.value(r);
        let t = parse_datetime(v, format, date);
        if t.is_none() && !accept_any {
            let (what, fmt) = if date {
                ("date", "DATEFORMAT")
            } else {
                ("timestamp", "TIMEFORMAT")
            };
            reject(
                r,
                v,
                "22007",
                format!("Invalid {what} format - does not match the {fmt}"),
            );
        }
        t
    });
    if date {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
        Arc::new(
            parsed
                .map(|t| t.map(|t| (t.date() - epoch).num_days() as i32))
                .collect::<Date32Array>(),
        )
    } else {
        Arc::new(
            parsed
                .map(|t| t.map(|t| t.and_utc().timestamp_micros()))
                .collect::<TimestampMicrosecondArray>(),
        )
    }
}

/// Formats DATEFORMAT / TIMEFORMAT `'auto'` recognises, besides ISO 8601.
const AUTO_DATES: &[&str] = &[
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%Y%m%d",
    "%m/%d/%Y",
    "%m-%d-%Y",
    "%m.%d.%Y",
    "%m/%d/%y",
    "%d-%b-%Y",
    "%d %b %Y",
    "%b %d %Y",
    "%b %d, %Y",
    "%B %d %Y",
    "%B %d, %Y",
    "%d-%b-%y",
];
const AUTO_TIMES: &[&str] = &[
    "%H:%M:%S%.f",
    "%H:%M:%S",
    "%H:%M",
    "%I:%M:%S%.f %p",
    "%I:%M:%S %p",
    "%I:%M %p",
];

fn parse_datetime(v: &str, format: &TimeFormat, date: bool) -> Option<NaiveDateTime> {
    let v = v.trim();
    match format {
        TimeFormat::Default => None,
        TimeFormat::Epoch { millis } => {
            let n: i64 = v.parse().ok()?;
            let t = if *millis {
                chrono::DateTime::from_timestamp_millis(n)
            } else {
                chrono::DateTime::from_timestamp(n, 0)
            };
            t.map(|t| t.naive_utc())
        }
        TimeFormat::Pattern(p) => NaiveDateTime::parse_from_str(v, p).ok().or_else(|| {
            NaiveDate::parse_from_str(v, p)
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        }),
        TimeFormat::Auto => {
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
                return Some(t.naive_utc());
            }
            for d in AUTO_DATES {
                if let Ok(day) = NaiveDate::parse_from_str(v, d) {
                    return day.and_hms_opt(0, 0, 0);
                }
                if date {
                    continue;
                }
                for sep in [" ", "T"] {
                    for t in AUTO_TIMES {
                        if let Ok(ts) = NaiveDateTime::parse_from_str(v, &format!("{d}{sep}{t}")) {
                            return Some(ts);
                        }
                    }
                }
            }
            // A date with a time of day is still a date.
            if date {
                return parse_datetime(v, &TimeFormat::Auto, false);
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    /// The fields of the first DETAIL_ROWS rejected rows are kept, not those of the rest.
    #[test]
    fn rejected_rows_keep_their_fields_up_to_the_detail_limit() {
        let mut rejects = Rejects {
            max: 100,
            table: "t".into(),
            found: vec![],
        };
        for line in 1..=25 {
            let mut e = LoadError::line("f", line, "raw", code::INVALID_LINE, "22P04", "bad");
            e.fields = vec![FieldDetail {
                colname: "a".into(),
                value: line.to_string(),
                is_null: false,
                ty: "int4".into(),
                col_length: 0,
            }];
            rejects.reject(e).unwrap();
        }
        let kept: Vec<usize> = rejects.found.iter().map(|e| e.fields.len()).collect();
        assert_eq!(
            kept,
            [vec![1; DETAIL_ROWS], vec![0; 25 - DETAIL_ROWS]].concat()
        );
    }

    #[test]
    fn redshift_formats_become_chrono_formats() {
        assert_eq!(chrono_pattern("YYYY-MM-DD").unwrap(), "%Y-%m-%d");
        assert_eq!(chrono_pattern("MM/DD/YYYY").unwrap(), "%m/%d/%Y");
        assert_eq!(
            chrono_pattern("YYYY-MM-DD HH24:MI:SS.SSS").unwrap(),
            "%Y-%m-%d %H:%M:%S%.f"
        );
        assert_eq!(chrono_pattern("DD-MON-YY").unwrap(), "%d-%b-%y");
        assert_eq!(chrono_pattern("HH12:MI AM").unwrap(), "%I:%M %p");
        assert!(chrono_pattern("nonsense").is_none());
    }

    #[test]
    fn datetimes_in_each_format() {
        let fmt = TimeFormat::parse("MM/DD/YYYY", true).unwrap();
        assert_eq!(
            parse_datetime("12/31/2024", &fmt, true),
            Some(t("2024-12-31 00:00:00"))
        );
        assert_eq!(parse_datetime("2024-12-31", &fmt, true), None);
        let auto = TimeFormat::Auto;
        for v in [
            "2024-12-31",
            "20241231",
            "12/31/2024",
            "31-Dec-2024",
            "Dec 31, 2024",
        ] {
            assert_eq!(
                parse_datetime(v, &auto, true),
                Some(t("2024-12-31 00:00:00")),
                "{v}"
            );
        }
        assert_eq!(
            parse_datetime("2024-12-31T10:11:12Z", &auto, false),
            Some(t("2024-12-31 10:11:12"))
        );
        assert_eq!(
            parse_datetime("12/31/2024 01:02:03 PM", &auto, false),
            Some(t("2024-12-31 13:02:03"))
        );
        let epoch = TimeFormat::parse("epochsecs", false).unwrap();
        assert_eq!(
            parse_datetime("86400", &epoch, false),
            Some(t("1970-01-02 00:00:00"))
        );
        assert!(TimeFormat::parse("epochsecs", true).is_err());
    }

    #[test]
    fn plain_decimals_convert_as_the_cast_does() {
        assert_eq!(plain_decimal(b"-123.45", 2), Some(-12345));
        assert_eq!(plain_decimal(b"+7.5", 3), Some(7500));
        assert_eq!(plain_decimal(b"0042", 0), Some(42));
        // Other forms go to the general cast.
        for text in ["1e5", ".5", "1.234", " 1", "1.2.3", "", "-", "12a"] {
            assert_eq!(plain_decimal(text.as_bytes(), 2), None, "{text}");
        }
        let text = StringArray::from(vec![Some("1.5"), None, Some("-99.99")]);
        let d = plain_decimals(&text, 4, 2).unwrap();
        assert_eq!(d.value(0), 150);
        assert!(d.is_null(1));
        assert_eq!(d.value(2), -9999);
        // 100.00 needs precision 5: the cast reports it.
        assert!(plain_decimals(&StringArray::from(vec!["100"]), 4, 2).is_none());
    }

    #[test]
    fn extra_decimal_digits_are_truncated() {
        assert_eq!(truncate_scale("12.3456", 2).as_deref(), Some("12.34"));
        assert_eq!(truncate_scale("-0.999", 0).as_deref(), Some("-0"));
        assert_eq!(truncate_scale("12.3", 2), None);
        assert_eq!(truncate_scale("12", 2), None);
    }
}
