//! Redshift's `UNLOAD ('query') TO 's3://bucket/prefix' <parameters>`: the query's rows
//! written as files under the prefix, in delimited text (pipe by default), CSV, JSON lines or
//! Parquet, optionally compressed, partitioned into Hive-style folders, with a manifest.
//!
//! ```text
//!  PARALLEL ON:  UnloadExec above the query's plan (exec.rs): each partition of the last
//!                stage writes where it runs (on a cluster, the compute nodes)
//!                  ─▶ <prefix><slice>_part_<nn>, or <prefix>col=v/<slice>_part_<nn> with
//!                     PARTITION BY (each partition's rows sorted by the partition columns)
//!  PARALLEL OFF: the rows in the query's order, one writer on the leader ─▶ <prefix>000, 001, ...
//!                (PARTITION BY: sorted by the partition columns, a folder after another)
//!  MAXFILESIZE: a writer starts its next part when a file reaches it; MANIFEST: <prefix>manifest
//! ```
//!
//! Files appear only when complete (object storage commits an object when its upload ends).

mod exec;

use std::collections::HashSet;
use std::sync::Arc;

use basalt_io::{Compression, Location, ObjectWriter, S3Settings, Storage, StoredBytes};
use basalt_sql::CopyParameter;
use basalt_sql::sqlparser::ast::Statement;
use bytes::BytesMut;
use chrono::Utc;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::row::{RowConverter, SortField};
use futures::StreamExt;
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::Compression as ParquetCompression;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use tokio::io::AsyncWriteExt;
use tracing::{Instrument, info, info_span};

use crate::loadlog::UnloadFile;
use crate::session::StatementOutput;
use crate::{NodeError, Session};

pub(crate) use exec::{BasaltQueryPlanner, UnloadCodec};

const MB: u64 = 1 << 20;
/// Redshift's largest (and default) file size: 6.2 GB.
const MAX_FILE_SIZE: u64 = 6200 * MB;
/// Redshift's smallest MAXFILESIZE.
const MIN_FILE_SIZE: u64 = 5 * MB;
/// Rows per Parquet row group.
const ROW_GROUP_ROWS: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutFormat {
    Text,
    Csv,
    Json,
    Parquet,
}

#[derive(Debug, Clone)]
struct UnloadOptions {
    format: OutFormat,
    delimiter: u8,
    header: bool,
    add_quotes: bool,
    escape: bool,
    /// `FIXEDWIDTH 'label:width,...'` (text only): each column padded with spaces to its
    /// width in characters, no delimiter.
    fixed_widths: Option<Vec<usize>>,
    null: String,
    partition_by: Vec<String>,
    include: bool,
    parallel: bool,
    max_file_size: u64,
    /// `ROWGROUPSIZE`: a Parquet row group ends at this many bytes (encoded, estimated), or
    /// at ROW_GROUP_ROWS rows.
    row_group_bytes: Option<u64>,
    manifest: bool,
    verbose: bool,
    allow_overwrite: bool,
    clean_path: bool,
    extension: Option<String>,
    compression: Compression,
    settings: S3Settings,
}

fn invalid(message: impl Into<String>) -> NodeError {
    NodeError::invalid("22023", message)
}

/// `MAXFILESIZE 100 MB` (`what`'s value) as bytes.
fn size(what: &str, value: &str) -> Result<u64, NodeError> {
    let (n, unit) = value.split_once(' ').unwrap_or((value, "MB"));
    let n: f64 = n
        .parse()
        .map_err(|_| invalid(format!("UNLOAD {what}: '{n}' is not a number")))?;
    let bytes = if unit == "GB" { n * 1024.0 } else { n } * MB as f64;
    Ok(bytes as u64)
}

impl UnloadOptions {
    fn parse(params: &[CopyParameter]) -> Result<UnloadOptions, NodeError> {
        let mut o = UnloadOptions {
            format: OutFormat::Text,
            delimiter: b'|',
            header: false,
            add_quotes: false,
            escape: false,
            fixed_widths: None,
            null: String::new(),
            partition_by: vec![],
            include: false,
            parallel: true,
            max_file_size: MAX_FILE_SIZE,
            row_group_bytes: None,
            manifest: false,
            verbose: false,
            allow_overwrite: false,
            clean_path: false,
            extension: None,
            compression: Compression::None,
            settings: S3Settings::default(),
        };
        let (mut delimiter, mut null) = (None, None);
        let mut credentials = false;
        for p in params {
            let value = || p.value.clone().unwrap_or_default();
            match p.name.as_str() {
                "CSV" => o.format = OutFormat::Csv,
                "JSON" => o.format = OutFormat::Json,
                "PARQUET" => o.format = OutFormat::Parquet,
                "DELIMITER" => {
                    let v = value();
                    delimiter = Some(match v.as_bytes() {
                        [b] if b.is_ascii() => *b,
                        b"\\t" => b'\t',
                        _ => {
                            return Err(invalid(format!(
                                "UNLOAD DELIMITER must be one character, not '{v}'"
                            )));
                        }
                    });
                }
                "NULL" => null = Some(value()),
                "HEADER" => o.header = true,
                "ADDQUOTES" => o.add_quotes = true,
                "ESCAPE" => o.escape = true,
                "FIXEDWIDTH" => {
                    o.fixed_widths = Some(crate::load::fixed_widths("UNLOAD", &value())?);
                }
                "PARTITION" => {
                    o.partition_by = value().split(',').map(str::to_string).collect();
                }
                "INCLUDE" => o.include = true,
                "PARALLEL" => {
                    o.parallel = !matches!(p.value.as_deref(), Some("OFF" | "FALSE"));
                }
                "MAXFILESIZE" => {
                    o.max_file_size = size("MAXFILESIZE", &value())?;
                    if !(MIN_FILE_SIZE..=MAX_FILE_SIZE).contains(&o.max_file_size) {
                        return Err(invalid(
                            "UNLOAD MAXFILESIZE must be between 5 MB and 6.2 GB",
                        ));
                    }
                }
                "ROWGROUPSIZE" => {
                    let bytes = size("ROWGROUPSIZE", &value())?;
                    if !(32 * MB..=128 * MB).contains(&bytes) {
                        return Err(invalid(
                            "UNLOAD ROWGROUPSIZE must be between 32 MB and 128 MB",
                        ));
                    }
                    o.row_group_bytes = Some(bytes);
                }
                "MANIFEST" => o.manifest = true,
                "VERBOSE" => o.verbose = true,
                "ALLOWOVERWRITE" => o.allow_overwrite = true,
                "CLEANPATH" => o.clean_path = true,
                "EXTENSION" => o.extension = Some(value()),
                "GZIP" => o.compression = Compression::Gzip,
                "BZIP2" => o.compression = Compression::Bzip2,
                "ZSTD" => o.compression = Compression::Zstd,
                "ACCESS_KEY_ID" => o.settings.access_key_id = p.value.clone(),
                "SECRET_ACCESS_KEY" => o.settings.secret_access_key = p.value.clone(),
                "SESSION_TOKEN" => o.settings.session_token = p.value.clone(),
                "CREDENTIALS" => {
                    credentials = true;
                    let c = S3Settings::from_credentials(&value())?;
                    o.settings.access_key_id = c.access_key_id;
                    o.settings.secret_access_key = c.secret_access_key;
                    o.settings.session_token = c.session_token;
                }
                "REGION" => o.settings.region = p.value.clone(),
                "IAM_ROLE" => {}
                other => {
                    return Err(NodeError::unsupported(format!("UNLOAD parameter {other}")));
                }
            }
        }
        if credentials && params.iter().any(|p| p.name == "ACCESS_KEY_ID") {
            return Err(invalid(
                "CREDENTIALS cannot be combined with ACCESS_KEY_ID / SECRET_ACCESS_KEY",
            ));
        }
        let text_only = [
            (
                delimiter.is_some() && o.format != OutFormat::Csv,
                "DELIMITER",
            ),
            (o.header, "HEADER"),
            (o.add_quotes, "ADDQUOTES"),
            (o.escape, "ESCAPE"),
            (null.is_some(), "NULL AS"),
        ];
        for (set, what) in text_only {
            let refused = match o.format {
                OutFormat::Text => false,
                OutFormat::Csv => matches!(what, "ADDQUOTES" | "ESCAPE"),
                OutFormat::Json | OutFormat::Parquet => true,
            };
            if set && refused {
                return Err(invalid(format!(
                    "UNLOAD: {what} cannot be used with FORMAT {:?}",
                    o.format
                )));
            }
        }
        if o.fixed_widths.is_some() {
            let refused = [
                (o.format != OutFormat::Text, "CSV, JSON or PARQUET"),
                (delimiter.is_some(), "DELIMITER"),
                (o.header, "HEADER"),
                (o.add_quotes, "ADDQUOTES"),
                (o.escape, "ESCAPE"),
            ];
            if let Some((_, what)) = refused.iter().find(|(set, _)| *set) {
                return Err(invalid(format!(
                    "UNLOAD: FIXEDWIDTH cannot be used with {what}"
                )));
            }
        }
        if o.row_group_bytes.is_some() && o.format != OutFormat::Parquet {
            return Err(invalid(
                "UNLOAD: ROWGROUPSIZE applies to FORMAT PARQUET only",
            ));
        }
        if o.format == OutFormat::Parquet && o.compression != Compression::None {
            return Err(invalid(
                "UNLOAD: Parquet files are compressed inside (Snappy); GZIP, BZIP2 and ZSTD do \
                 not apply",
            ));
        }
        if o.allow_overwrite && o.clean_path {
            return Err(invalid(
                "UNLOAD: ALLOWOVERWRITE and CLEANPATH exclude each other",
            ));
        }
        if o.include && o.partition_by.is_empty() {
            return Err(invalid("UNLOAD: INCLUDE needs PARTITION BY"));
        }
        if o.verbose && !o.manifest {
            return Err(invalid("UNLOAD: VERBOSE needs MANIFEST"));
        }
        if let Some(d) = delimiter {
            o.delimiter = d;
        } else if o.format == OutFormat::Csv {
            o.delimiter = b',';
        }
        o.null = null.unwrap_or_default();
        Ok(o)
    }

    /// `.parquet`, `.gz`, ... and EXTENSION, after a file's name.
    fn suffix(&self) -> String {
        let mut s = String::new();
        if self.format == OutFormat::Parquet {
            s.push_str(".parquet");
        }
        if let Some(e) = &self.extension {
            s.push('.');
            s.push_str(e.trim_start_matches('.'));
        }
        s.push_str(match self.compression {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Bzip2 => ".bz2",
            Compression::Zstd => ".zst",
        });
        s
    }
}

/// One file being written.
enum FileSink {
    Text {
        out: ObjectWriter,
        buf: BytesMut,
        /// HEADER: the column names go before the first rows.
        header: bool,
    },
    Parquet(Box<AsyncArrowWriter<ObjectWriter>>),
}

/// Writes one stream of files: `<dir><name>` parts as they fill up.
struct Writer {
    storage: Arc<Storage>,
    opts: Arc<UnloadOptions>,
    /// The schema of the rows in the files.
    schema: SchemaRef,
    /// Where its files go, after the location's prefix (`col=v/` for a partition).
    dir: String,
    /// The file name for part n.
    name: Box<dyn Fn(u32) -> String + Send + Sync>,
    part: u32,
    /// The file being written, and the bytes of it stored so far (compressed).
    current: Option<(FileSink, UnloadFile, StoredBytes)>,
    done: Vec<UnloadFile>,
}

impl Writer {
    async fn write(&mut self, batch: &RecordBatch) -> Result<(), NodeError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.current.is_none() {
            self.open(batch)?;
        }
        let (sink, file, stored) = self.current.as_mut().expect("a file is open");
        file.rows += batch.num_rows() as u64;
        let written = match sink {
            FileSink::Text { out, buf, header } => {
                buf.clear();
                if std::mem::take(header) {
                    write_header(&self.schema, &self.opts, buf);
                }
                encode(batch, &self.opts, buf)?;
                out.write_all(buf)
                    .await
                    .map_err(|e| io_error(&file.url, e))?;
                // The file's size as stored: after GZIP/ZSTD/BZIP2 (less what the
                // compressor still holds).
                stored.get()
            }
            FileSink::Parquet(w) => {
                let batch = RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())?;
                w.write(&batch)
                    .await
                    .map_err(|e| parquet_error(&file.url, e))?;
                // Row groups written, and the encoded size of the one in memory.
                w.bytes_written() as u64 + w.in_progress_size() as u64
            }
        };
        if written >= self.opts.max_file_size {
            self.close().await?;
        }
        Ok(())
    }

    /// Open the next file, `first` being the first rows it will hold.
    fn open(&mut self, first: &RecordBatch) -> Result<(), NodeError> {
        let name = format!(
            "{}{}{}",
            self.dir,
            (self.name)(self.part),
            self.opts.suffix()
        );
        self.part += 1;
        let path = self.storage.path_with(&name)?;
        let url = self.storage.url(&path);
        let compression = match self.opts.format {
            OutFormat::Parquet => Compression::None,
            _ => self.opts.compression,
        };
        let (out, stored) = self.storage.create(&path, compression);
        let sink = match self.opts.format {
            OutFormat::Parquet => {
                let mut props = WriterProperties::builder()
                    .set_compression(ParquetCompression::SNAPPY)
                    .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                    .set_max_row_group_bytes(self.opts.row_group_bytes.map(|b| b as usize));
                for (field, column) in self.schema.fields().iter().zip(first.columns()) {
                    if !field.data_type().is_nested() {
                        props = props.set_column_dictionary_enabled(
                            ColumnPath::from(field.name().as_str()),
                            dictionary_pays(column),
                        );
                    }
                }
                let props = props.build();
                FileSink::Parquet(Box::new(
                    AsyncArrowWriter::try_new(out, self.schema.clone(), Some(props))
                        .map_err(|e| parquet_error(&url, e))?,
                ))
            }
            _ => FileSink::Text {
                out,
                buf: BytesMut::new(),
                header: self.opts.header,
            },
        };
        let now = Utc::now().naive_utc();
        let file = UnloadFile {
            url,
            rows: 0,
            bytes: 0,
            format: match self.opts.format {
                OutFormat::Text => "Text",
                OutFormat::Csv => "Csv",
                OutFormat::Json => "Json",
                OutFormat::Parquet => "Parquet",
            },
            start: now,
            end: now,
        };
        self.current = Some((sink, file, stored));
        Ok(())
    }

    async fn close(&mut self) -> Result<(), NodeError> {
        let Some((sink, mut file, stored)) = self.current.take() else {
            return Ok(());
        };
        match sink {
            FileSink::Text { mut out, .. } => {
                out.shutdown().await.map_err(|e| io_error(&file.url, e))?
            }
            FileSink::Parquet(w) => {
                w.close().await.map_err(|e| parquet_error(&file.url, e))?;
            }
        }
        file.bytes = stored.get();
        file.end = Utc::now().naive_utc();
        info!(file = %file.url, rows = file.rows, bytes = file.bytes, "UNLOAD file written");
        self.done.push(file);
        Ok(())
    }
}

/// Rows of a file's first batch that decide which columns get a Parquet dictionary.
const DICTIONARY_SAMPLE_ROWS: usize = 8192;

/// Whether a column's first rows repeat values enough for a Parquet dictionary to pay: fewer
/// than three in four of them distinct. Interning every value of a column of mostly distinct
/// values (keys, prices, comments) until its dictionary overflowed took a third of UNLOAD's
/// CPU for nothing (docs/benchmarks.md, session 12).
fn dictionary_pays(column: &ArrayRef) -> bool {
    let rows = column.len().min(DICTIONARY_SAMPLE_ROWS);
    let Ok(converter) = RowConverter::new(vec![SortField::new(column.data_type().clone())]) else {
        return true;
    };
    let Ok(converted) = converter.convert_columns(&[column.slice(0, rows)]) else {
        return true;
    };
    let distinct: HashSet<_> = converted.iter().collect();
    distinct.len() * 4 < rows * 3
}

fn io_error(url: &str, source: std::io::Error) -> NodeError {
    basalt_io::IoError::Read {
        url: url.to_string(),
        source,
    }
    .into()
}

fn parquet_error(url: &str, source: parquet::errors::ParquetError) -> NodeError {
    basalt_io::IoError::Parquet {
        url: url.to_string(),
        source,
    }
    .into()
}

/// A field in CSV: quoted when it holds the delimiter, a quote or a line break, or when it is
/// empty and NULL is written as nothing (so `""` reads back as an empty string).
fn csv_field(v: &[u8], delimiter: u8, null_is_empty: bool, out: &mut BytesMut) {
    if (v.is_empty() && null_is_empty)
        || v.iter()
            .any(|b| *b == delimiter || matches!(b, b'"' | b'\n' | b'\r'))
    {
        out.extend_from_slice(b"\"");
        for b in v {
            if *b == b'"' {
                out.extend_from_slice(b"\"");
            }
            out.extend_from_slice(&[*b]);
        }
        out.extend_from_slice(b"\"");
    } else {
        out.extend_from_slice(v);
    }
}

/// A text field: with ESCAPE a backslash goes before line breaks, the delimiter, backslashes
/// and (with ADDQUOTES) double quotes; ADDQUOTES puts the field in double quotes.
fn text_field(v: &[u8], opts: &UnloadOptions, out: &mut BytesMut) {
    if opts.add_quotes {
        out.extend_from_slice(b"\"");
    }
    if opts.escape {
        for b in v {
            if *b == opts.delimiter
                || matches!(b, b'\n' | b'\r' | b'\\')
                || (opts.add_quotes && *b == b'"')
            {
                out.extend_from_slice(b"\\");
            }
            out.extend_from_slice(&[*b]);
        }
    } else {
        out.extend_from_slice(v);
    }
    if opts.add_quotes {
        out.extend_from_slice(b"\"");
    }
}

fn write_header(schema: &Schema, opts: &UnloadOptions, out: &mut BytesMut) {
    for (i, f) in schema.fields().iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(&[opts.delimiter]);
        }
        match opts.format {
            OutFormat::Csv => csv_field(f.name().as_bytes(), opts.delimiter, false, out),
            _ => text_field(f.name().as_bytes(), opts, out),
        }
    }
    out.extend_from_slice(b"\n");
}

/// Whether a column's values are JSON numbers or booleans (written bare).
fn json_bare(t: &DataType) -> bool {
    t.is_numeric() || matches!(t, DataType::Boolean)
}

/// A value in Postgres' text output, into `value` (cleared first); false for a NULL.
fn text_value(col: &ArrayRef, row: usize, value: &mut BytesMut) -> Result<bool, NodeError> {
    value.clear();
    if col.is_null(row) || col.data_type() == &DataType::Null {
        return Ok(false);
    }
    if !crate::pgtext::write_value(col.as_ref(), row, None, value) {
        crate::pgtext::write_display(col.as_ref(), row, value)?;
    }
    Ok(true)
}

/// Rows as delimited text, CSV or JSON lines, values in Postgres' text output.
fn encode(batch: &RecordBatch, opts: &UnloadOptions, out: &mut BytesMut) -> Result<(), NodeError> {
    if let Some(widths) = &opts.fixed_widths {
        return fixed_width_rows(batch, widths, opts, out);
    }
    let schema = batch.schema();
    let names: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| serde_json::to_string(f.name()).unwrap_or_default())
        .collect();
    let mut value = BytesMut::new();
    for row in 0..batch.num_rows() {
        if opts.format == OutFormat::Json {
            out.extend_from_slice(b"{");
        }
        for (i, col) in batch.columns().iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(if opts.format == OutFormat::Json {
                    b","
                } else {
                    std::slice::from_ref(&opts.delimiter)
                });
            }
            let null = !text_value(col, row, &mut value)?;
            match opts.format {
                OutFormat::Json => {
                    out.extend_from_slice(names[i].as_bytes());
                    out.extend_from_slice(b":");
                    if null {
                        out.extend_from_slice(b"null");
                    } else if json_bare(col.data_type()) {
                        match col.data_type() {
                            DataType::Boolean => {
                                out.extend_from_slice(if col.as_boolean().value(row) {
                                    b"true"
                                } else {
                                    b"false"
                                })
                            }
                            // NaN and infinities are not JSON numbers.
                            _ if value.iter().any(|b| b.is_ascii_alphabetic() && *b != b'e') => {
                                let s = String::from_utf8_lossy(&value);
                                out.extend_from_slice(
                                    serde_json::to_string(&s).unwrap_or_default().as_bytes(),
                                );
                            }
                            _ => out.extend_from_slice(&value),
                        }
                    } else {
                        let s = String::from_utf8_lossy(&value);
                        out.extend_from_slice(
                            serde_json::to_string(&s).unwrap_or_default().as_bytes(),
                        );
                    }
                }
                OutFormat::Csv if null => out.extend_from_slice(opts.null.as_bytes()),
                OutFormat::Csv => csv_field(&value, opts.delimiter, opts.null.is_empty(), out),
                _ if null => out.extend_from_slice(opts.null.as_bytes()),
                _ => text_field(&value, opts, out),
            }
        }
        out.extend_from_slice(if opts.format == OutFormat::Json {
            b"}\n"
        } else {
            b"\n"
        });
    }
    Ok(())
}

/// Rows as FIXEDWIDTH text: each value (a NULL as NULL AS, or as spaces) padded with spaces
/// to its column's width in characters. A wider value is an error (22001): UNLOAD does not
/// cut values, as Redshift's does not.
fn fixed_width_rows(
    batch: &RecordBatch,
    widths: &[usize],
    opts: &UnloadOptions,
    out: &mut BytesMut,
) -> Result<(), NodeError> {
    let schema = batch.schema();
    let mut value = BytesMut::new();
    for row in 0..batch.num_rows() {
        for ((col, &width), field) in batch.columns().iter().zip(widths).zip(schema.fields()) {
            if !text_value(col, row, &mut value)? {
                value.extend_from_slice(opts.null.as_bytes());
            }
            let chars = String::from_utf8_lossy(&value).chars().count();
            if chars > width {
                return Err(NodeError::invalid(
                    "22001",
                    format!(
                        "UNLOAD FIXEDWIDTH: a value of column \"{}\" is {chars} characters, \
                         wider than its width {width}",
                        field.name()
                    ),
                ));
            }
            out.extend_from_slice(&value);
            out.resize(out.len() + (width - chars), b' ');
        }
        out.extend_from_slice(b"\n");
    }
    Ok(())
}

/// The rows of each partition value in a batch (sorted by the partition columns, so each
/// value's rows are together), with the folder they go to: `a=1/b=x/`.
fn split_partitions(
    batch: &RecordBatch,
    keys: &[usize],
) -> Result<Vec<(String, RecordBatch)>, NodeError> {
    let mut out: Vec<(String, Vec<u32>)> = vec![];
    let schema = batch.schema();
    let mut value = BytesMut::new();
    for row in 0..batch.num_rows() {
        let mut dir = String::new();
        for &k in keys {
            let col = batch.column(k);
            dir.push_str(schema.field(k).name());
            dir.push('=');
            if col.is_null(row) {
                dir.push_str("__HIVE_DEFAULT_PARTITION__");
            } else {
                value.clear();
                if !crate::pgtext::write_value(col.as_ref(), row, None, &mut value) {
                    crate::pgtext::write_display(col.as_ref(), row, &mut value)?;
                }
                for c in String::from_utf8_lossy(&value).chars() {
                    match c {
                        '/' | '\\' | '=' | '%' | '\n' | '\r' => {
                            dir.push_str(&format!("%{:02X}", c as u32))
                        }
                        c => dir.push(c),
                    }
                }
            }
            dir.push('/');
        }
        match out.last_mut() {
            Some((d, rows)) if *d == dir => rows.push(row as u32),
            _ => out.push((dir, vec![row as u32])),
        }
    }
    out.into_iter()
        .map(|(dir, rows)| Ok((dir, take_record_batch(batch, &UInt32Array::from(rows))?)))
        .collect()
}

impl Session {
    /// `UNLOAD ('query') TO '<location>' <parameters>`.
    pub(crate) async fn unload(
        &mut self,
        query: &Statement,
        location: &str,
        params: &[CopyParameter],
    ) -> Result<StatementOutput, NodeError> {
        let location = Location::parse(location)?;
        let spec = exec::UnloadSpec::new(location, params.to_vec(), |s| self.s3_settings(s))?;
        let query_id = self.leader.query_log().next_id();
        let start = Utc::now().naive_utc();
        let url = spec.location().url();
        let out = self
            .unload_to(query, spec)
            .instrument(info_span!("unload", query = query_id, location = %url))
            .await;
        let text = self.statement_text.clone();
        self.leader.query_log().record_statement(
            query_id,
            self.id as i32,
            &self.user,
            &text,
            start,
            out.is_err(),
        );
        let (rows, files) = out?;
        let run = crate::loadlog::UnloadRun {
            query: query_id,
            user: self.user.clone(),
            pid: self.id as i32,
        };
        self.leader.load_log().record_unload(run, files);
        Ok(StatementOutput::command_rows("UNLOAD", rows))
    }

    async fn unload_to(
        &mut self,
        query: &Statement,
        spec: exec::UnloadSpec,
    ) -> Result<(u64, Vec<UnloadFile>), NodeError> {
        let (location, storage, opts) = (
            spec.location().clone(),
            spec.storage().clone(),
            spec.opts().clone(),
        );
        let storage = &storage;
        // What is there already: refused, overwritten, or removed first (CLEANPATH).
        let existing = storage.list_prefix().await?;
        if !existing.is_empty() && !opts.allow_overwrite && !opts.clean_path {
            return Err(NodeError::invalid(
                "58P02",
                format!(
                    "UNLOAD: the destination '{}' is not empty ({} object(s), first {}); use \
                     ALLOWOVERWRITE or CLEANPATH, or another prefix",
                    location.url(),
                    existing.len(),
                    existing[0].url
                ),
            ));
        }
        if opts.clean_path {
            for f in &existing {
                storage.delete(&f.path).await?;
            }
        }
        if opts.parallel {
            // Written where the rows are: each slice's writer in its own files.
            let spec = Arc::new(spec);
            let planned = spec.clone();
            let wrap: crate::session::PlanWrap =
                Box::new(move |plan| exec::UnloadNode::plan(plan, planned));
            let StatementOutput::Rows { mut stream, .. } =
                self.query_wrapped(query.clone(), Some(wrap)).await?
            else {
                return Err(NodeError::invalid(
                    "42601",
                    "UNLOAD's query returns no rows",
                ));
            };
            let mut files = vec![];
            while let Some(batch) = stream.next().await {
                files.append(&mut exec::files_of(&batch?)?);
            }
            let rows = files.iter().map(|f| f.rows).sum();
            let schema = spec
                .file_schema()
                .ok_or_else(|| NodeError::internal("UNLOAD was not planned"))?;
            return self
                .finish_unload(storage, &opts, &schema, rows, files)
                .await;
        }
        // PARTITION BY: the rows sorted by the partition columns, so each folder's rows come
        // together.
        let query = if opts.partition_by.is_empty() {
            query.clone()
        } else {
            let sql = format!(
                "SELECT * FROM ({query}) AS unload_rows ORDER BY {}",
                opts.partition_by
                    .iter()
                    .map(|c| basalt_sql::sqlparser::ast::Ident::with_quote('"', c).to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            basalt_sql::parse(&sql)?
                .pop()
                .ok_or_else(|| NodeError::internal("UNLOAD partition rewrite"))?
                .statement
        };
        let StatementOutput::Rows { schema, mut stream } = self.query(query).await? else {
            return Err(NodeError::invalid(
                "42601",
                "UNLOAD's query returns no rows",
            ));
        };
        let (keys, kept, file_schema) = file_layout(&plain_schema(&schema), &opts)?;
        let writer = |dir: String, name: Box<dyn Fn(u32) -> String + Send + Sync>| Writer {
            storage: storage.clone(),
            opts: opts.clone(),
            schema: file_schema.clone(),
            dir,
            name,
            part: 0,
            current: None,
            done: vec![],
        };
        let mut rows = 0u64;
        let mut files = vec![];
        if !keys.is_empty() {
            // One writer at a time, a folder after another.
            let mut current: Option<Writer> = None;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                for (dir, part) in split_partitions(&batch, &keys)? {
                    if current.as_ref().is_some_and(|w| w.dir != dir) {
                        let mut w = current.take().expect("a writer");
                        w.close().await?;
                        files.append(&mut w.done);
                    }
                    let w = current.get_or_insert_with(|| {
                        writer(dir, Box::new(|n| format!("0000_part_{n:02}")))
                    });
                    w.write(&part.project(&kept)?).await?;
                }
            }
            if let Some(mut w) = current {
                w.close().await?;
                files.append(&mut w.done);
            }
        } else if !opts.parallel {
            // One stream of files in the query's order: 000, 001, ...
            let mut w = writer(String::new(), Box::new(|n| format!("{n:03}")));
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                w.write(&batch).await?;
            }
            w.close().await?;
            files.append(&mut w.done);
        }
        self.finish_unload(storage, &opts, &file_schema, rows, files)
            .await
    }

    /// The files in order, and the manifest.
    async fn finish_unload(
        &self,
        storage: &Storage,
        opts: &UnloadOptions,
        file_schema: &Schema,
        rows: u64,
        mut files: Vec<UnloadFile>,
    ) -> Result<(u64, Vec<UnloadFile>), NodeError> {
        files.sort_by(|a, b| a.url.cmp(&b.url));
        if opts.manifest {
            let path = storage.path_with("manifest")?;
            let body = manifest(&files, file_schema, opts.verbose);
            storage.put(&path, body.into()).await?;
        }
        info!(rows, files = files.len(), "UNLOAD done");
        Ok((rows, files))
    }
}

/// Where the PARTITION BY columns are in the query's result, the columns that go into the
/// files (INCLUDE keeps the partition columns), and the files' schema.
fn file_layout(
    schema: &Schema,
    opts: &UnloadOptions,
) -> Result<(Vec<usize>, Vec<usize>, SchemaRef), NodeError> {
    let keys: Vec<usize> = opts
        .partition_by
        .iter()
        .map(|c| {
            schema.index_of(c).map_err(|_| {
                NodeError::invalid(
                    "42703",
                    format!(
                        "column \"{c}\" does not exist in the result of UNLOAD's query \
                         (PARTITION BY)"
                    ),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    let kept: Vec<usize> = (0..schema.fields().len())
        .filter(|i| opts.include || !keys.contains(i))
        .collect();
    let file_schema = Arc::new(schema.project(&kept)?);
    if let Some(widths) = &opts.fixed_widths
        && widths.len() != file_schema.fields().len()
    {
        return Err(invalid(format!(
            "UNLOAD FIXEDWIDTH gives {} width(s) for {} column(s) in the files",
            widths.len(),
            file_schema.fields().len()
        )));
    }
    Ok((keys, kept, file_schema))
}

/// The query's schema without BasaltDB's field metadata, and with view types as plain
/// strings (what other engines read best).
fn plain_schema(schema: &Schema) -> Schema {
    Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), true))
            .collect::<Vec<_>>(),
    )
}

/// Redshift's manifest: the file URLs; VERBOSE adds each file's size and rows, the totals
/// and the columns.
fn manifest(files: &[UnloadFile], schema: &Schema, verbose: bool) -> Vec<u8> {
    use serde_json::json;
    let entries: Vec<_> = files
        .iter()
        .map(|f| {
            if verbose {
                json!({"url": f.url, "meta": {"content_length": f.bytes, "record_count": f.rows}})
            } else {
                json!({"url": f.url})
            }
        })
        .collect();
    let mut m = json!({ "entries": entries });
    if verbose {
        m["schema"] = json!({
            "elements": schema.fields().iter().map(|f| json!({
                "name": f.name(),
                "type": {"base": f.data_type().to_string()},
            })).collect::<Vec<_>>()
        });
        m["meta"] = json!({
            "content_length": files.iter().map(|f| f.bytes).sum::<u64>(),
            "record_count": files.iter().map(|f| f.rows).sum::<u64>(),
        });
    }
    serde_json::to_vec_pretty(&m).unwrap_or_default()
}
