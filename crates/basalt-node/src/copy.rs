//! `COPY table [(columns)] FROM STDIN` and `COPY {table [(columns)] | (query)} TO STDOUT` in
//! Postgres text or CSV format (psql `\copy`, psycopg `copy`, JDBC CopyManager); TO STDOUT
//! also in binary format. Amazon Redshift has neither; Postgres users expect both.
//!
//! FROM: data arrives in chunks; complete rows are parsed, conformed and written as they come,
//! and the whole COPY is one transaction. TO: the rows stream from the query as they are
//! produced; the wire layer encodes them with the same text output functions a SELECT uses.

use std::sync::Arc;

use basalt_sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Ident, Statement,
};
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use crate::dml::{ColumnSource, TableWriter};
use crate::session::{StatementOutput, ident_name};
use crate::{NodeError, Session};

/// Rows parsed before they are handed to the writer.
const ROWS_PER_BATCH: usize = 64 * 1024;

/// How `COPY ... TO STDOUT` writes rows, with Postgres' defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyFormat {
    /// Text format: `delimiter`-separated fields, NULL as `null`, backslash escapes.
    Text {
        delimiter: u8,
        null: String,
        /// A first line with the column names (Postgres 15 allows it in text format).
        header: bool,
    },
    /// CSV: fields quoted when they contain the delimiter, the quote character, CR or LF, or
    /// equal the NULL string; `escape` precedes a quote or escape character inside quotes.
    Csv {
        delimiter: u8,
        quote: u8,
        escape: u8,
        null: String,
        header: bool,
        /// Per output column: always quote non-NULL values (`FORCE_QUOTE`).
        force_quote: Vec<bool>,
    },
    /// Postgres' binary COPY format (signature, tuples of length-prefixed binary values,
    /// trailer).
    Binary,
}

/// The format of a COPY as its options spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Csv,
    Binary,
}

/// The options of a COPY statement (new `WITH (...)` and old `WITH CSV HEADER` syntax),
/// checked as Postgres 15 checks them.
#[derive(Debug, Clone)]
struct CopyOptions {
    kind: Kind,
    delimiter: u8,
    null: String,
    header: bool,
    quote: u8,
    escape: u8,
    /// `FORCE_QUOTE (columns)` (sqlparser does not accept `FORCE_QUOTE *` yet).
    force_quote: Vec<Ident>,
}

/// A COPY option must be one one-byte character.
fn one_byte(c: char, what: &str) -> Result<u8, NodeError> {
    if c.is_ascii() {
        Ok(c as u8)
    } else {
        Err(NodeError::invalid(
            "0A000",
            format!("COPY {what} must be a single one-byte character"),
        ))
    }
}

impl CopyOptions {
    fn parse(
        options: &[CopyOption],
        legacy: &[CopyLegacyOption],
        to: bool,
    ) -> Result<Self, NodeError> {
        let mut kind = Kind::Text;
        let mut delimiter = None;
        let mut null = None;
        let mut header = false;
        let mut quote = None;
        let mut escape = None;
        let mut force_quote = vec![];
        let from_only = |what: &str| {
            if to {
                NodeError::invalid(
                    "0A000",
                    format!("COPY {what} only available using COPY FROM"),
                )
            } else {
                NodeError::unsupported(format!("COPY {}", what.to_uppercase()))
            }
        };
        for o in options {
            match o {
                CopyOption::Format(f) => {
                    kind = match f.value.to_ascii_lowercase().as_str() {
                        "csv" => Kind::Csv,
                        "text" => Kind::Text,
                        "binary" if to => Kind::Binary,
                        "binary" => {
                            return Err(NodeError::unsupported("COPY FROM in binary format"));
                        }
                        other => {
                            return Err(NodeError::invalid(
                                "22023",
                                format!("COPY format \"{other}\" not recognized"),
                            ));
                        }
                    }
                }
                CopyOption::Delimiter(c) => delimiter = Some(one_byte(*c, "delimiter")?),
                CopyOption::Null(n) => null = Some(n.clone()),
                CopyOption::Header(h) => header = *h,
                CopyOption::Quote(c) => quote = Some(one_byte(*c, "quote")?),
                CopyOption::Escape(c) => escape = Some(one_byte(*c, "escape")?),
                CopyOption::ForceQuote(cols) => force_quote = cols.clone(),
                CopyOption::ForceNotNull(_) => return Err(from_only("force not null")),
                CopyOption::ForceNull(_) => return Err(from_only("force null")),
                CopyOption::Encoding(e)
                    if e.eq_ignore_ascii_case("utf8") || e.eq_ignore_ascii_case("utf-8") => {}
                other => return Err(NodeError::unsupported(format!("COPY option {other}"))),
            }
        }
        for o in legacy {
            match o {
                CopyLegacyOption::Csv(opts) => {
                    kind = Kind::Csv;
                    for c in opts {
                        match c {
                            CopyLegacyCsvOption::Header => header = true,
                            CopyLegacyCsvOption::Quote(q) => quote = Some(one_byte(*q, "quote")?),
                            CopyLegacyCsvOption::Escape(e) => {
                                escape = Some(one_byte(*e, "escape")?)
                            }
                            CopyLegacyCsvOption::ForceQuote(cols) => force_quote = cols.clone(),
                            CopyLegacyCsvOption::ForceNotNull(_) => {
                                return Err(from_only("force not null"));
                            }
                        }
                    }
                }
                CopyLegacyOption::Binary if to => kind = Kind::Binary,
                CopyLegacyOption::Delimiter(c) => delimiter = Some(one_byte(*c, "delimiter")?),
                CopyLegacyOption::Null(n) => null = Some(n.clone()),
                CopyLegacyOption::Header => header = true,
                // Redshift's spelling, for COPY FROM.
                CopyLegacyOption::IgnoreHeader(n) if !to => header = *n > 0,
                other => return Err(NodeError::unsupported(format!("COPY option {other}"))),
            }
        }
        let csv = kind == Kind::Csv;
        if kind == Kind::Binary {
            if delimiter.is_some() {
                return Err(NodeError::invalid(
                    "42601",
                    "cannot specify DELIMITER in BINARY mode",
                ));
            }
            if null.is_some() {
                return Err(NodeError::invalid(
                    "42601",
                    "cannot specify NULL in BINARY mode",
                ));
            }
            if header {
                return Err(NodeError::invalid(
                    "0A000",
                    "cannot specify HEADER in BINARY mode",
                ));
            }
        }
        let only_csv = |set: bool, what: &str| {
            if set && !csv {
                Err(NodeError::invalid(
                    "0A000",
                    format!("COPY {what} available only in CSV mode"),
                ))
            } else {
                Ok(())
            }
        };
        only_csv(quote.is_some(), "quote")?;
        only_csv(escape.is_some(), "escape")?;
        only_csv(!force_quote.is_empty(), "force quote")?;
        if !to && !force_quote.is_empty() {
            return Err(NodeError::invalid(
                "0A000",
                "COPY force quote only available using COPY TO",
            ));
        }
        let delimiter = delimiter.unwrap_or(if csv { b',' } else { b'\t' });
        let null = null.unwrap_or_else(|| if csv { String::new() } else { "\\N".into() });
        let quote = quote.unwrap_or(b'"');
        let escape = escape.unwrap_or(quote);
        if kind != Kind::Binary {
            if delimiter == b'\n' || delimiter == b'\r' {
                return Err(NodeError::invalid(
                    "22023",
                    "COPY delimiter cannot be newline or carriage return",
                ));
            }
            if null.contains(['\n', '\r']) {
                return Err(NodeError::invalid(
                    "22023",
                    "COPY null representation cannot use newline or carriage return",
                ));
            }
            if !csv && b"\\.abcdefghijklmnopqrstuvwxyz0123456789".contains(&delimiter) {
                return Err(NodeError::invalid(
                    "22023",
                    format!("COPY delimiter cannot be \"{}\"", delimiter as char),
                ));
            }
            if csv && delimiter == quote {
                return Err(NodeError::invalid(
                    "22023",
                    "COPY delimiter and quote must be different",
                ));
            }
            if null.as_bytes().contains(&delimiter) {
                return Err(NodeError::invalid(
                    "0A000",
                    "COPY delimiter must not appear in the NULL specification",
                ));
            }
            if csv && null.as_bytes().contains(&quote) {
                return Err(NodeError::invalid(
                    "0A000",
                    "CSV quote character must not appear in the NULL specification",
                ));
            }
        }
        Ok(CopyOptions {
            kind,
            delimiter,
            null,
            header,
            quote,
            escape,
            force_quote,
        })
    }
}

/// Where a COPY reads or writes: only the client (`STDIN` / `STDOUT`, which Postgres accepts in
/// either direction) is supported.
fn check_client_target(target: &CopyTarget, to: bool) -> Result<(), NodeError> {
    match target {
        CopyTarget::Stdin | CopyTarget::Stdout => Ok(()),
        CopyTarget::File { .. } if to => Err(NodeError::invalid(
            "0A000",
            "COPY TO a file on the server is not supported; use COPY ... TO STDOUT \
             (psql's \\copy)",
        )),
        CopyTarget::Program { .. } if to => Err(NodeError::unsupported("COPY TO PROGRAM")),
        CopyTarget::Program { .. } => Err(NodeError::unsupported("COPY FROM PROGRAM")),
        CopyTarget::File { .. } => Err(NodeError::unsupported(
            "COPY FROM a file or object store (it arrives with S3 COPY); use COPY ... FROM STDIN",
        )),
    }
}

#[derive(Debug, Clone)]
enum Format {
    Text {
        delimiter: u8,
        null: String,
    },
    Csv {
        delimiter: u8,
        quote: u8,
        escape: u8,
        null: String,
    },
}

/// An open COPY FROM STDIN.
pub(crate) struct CopyIn {
    writer: TableWriter,
    plan: Vec<ColumnSource>,
    width: usize,
    format: Format,
    skip_header: bool,
    buf: Vec<u8>,
    rows: Vec<Vec<Option<String>>>,
    line: u64,
}

impl Session {
    /// Start a COPY: FROM STDIN (the wire layer then feeds [`Session::copy_data`]) or TO
    /// STDOUT (rows to stream).
    pub(crate) async fn copy(&mut self, stmt: &Statement) -> Result<StatementOutput, NodeError> {
        let Statement::Copy {
            source,
            to,
            target,
            options,
            legacy_options,
            ..
        } = stmt
        else {
            unreachable!("dispatch sends only COPY here");
        };
        check_client_target(target, *to)?;
        let opts = CopyOptions::parse(options, legacy_options, *to)?;
        if *to {
            return self.copy_to(source, opts).await;
        }
        let CopySource::Table {
            table_name,
            columns,
        } = source
        else {
            return Err(NodeError::unsupported("COPY (query) FROM"));
        };
        let state = self.txn_mut().txn.state().clone();
        let table = self.resolve_table(&state, table_name)?;
        let targets: Vec<String> = if columns.is_empty() {
            table.columns.iter().map(|c| c.name.clone()).collect()
        } else {
            columns.iter().map(ident_name).collect()
        };
        let plan = self.column_plan(&table, &targets).await?;
        let format = match opts.kind {
            Kind::Csv => Format::Csv {
                delimiter: opts.delimiter,
                quote: opts.quote,
                escape: opts.escape,
                null: opts.null,
            },
            // Binary was refused while parsing the options of a COPY FROM.
            Kind::Text | Kind::Binary => Format::Text {
                delimiter: opts.delimiter,
                null: opts.null,
            },
        };
        let writer = TableWriter::new(self, table.id);
        self.copy_in = Some(CopyIn {
            writer,
            plan,
            width: targets.len(),
            format,
            skip_header: opts.header,
            buf: vec![],
            rows: vec![],
            line: 0,
        });
        Ok(StatementOutput::CopyIn {
            columns: targets.len(),
        })
    }

    /// `COPY {table [(columns)] | (query)} TO STDOUT`: the rows of the query (for a table,
    /// `SELECT columns FROM table`), streamed.
    async fn copy_to(
        &mut self,
        source: &CopySource,
        opts: CopyOptions,
    ) -> Result<StatementOutput, NodeError> {
        let query = match source {
            CopySource::Query(q) => Statement::Query(q.clone()),
            CopySource::Table {
                table_name,
                columns,
            } => {
                // Check the name the way COPY FROM does (temp tables first), then read it.
                let (state, _pin) = self.refresh_view();
                let table = self.resolve_table(&state, table_name)?;
                let names: Vec<String> = if columns.is_empty() {
                    table.columns.iter().map(|c| c.name.clone()).collect()
                } else {
                    let mut names = vec![];
                    for c in columns {
                        let name = ident_name(c);
                        if !table.columns.iter().any(|tc| tc.name == name) {
                            return Err(NodeError::invalid(
                                "42703",
                                format!(
                                    "column \"{name}\" of relation \"{}\" does not exist",
                                    table.name
                                ),
                            ));
                        }
                        names.push(name);
                    }
                    names
                };
                let select = format!(
                    "SELECT {} FROM {}",
                    names
                        .iter()
                        .map(|n| Ident::with_quote('"', n).to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    table_name
                );
                let mut parsed = basalt_sql::parse(&select)?;
                parsed
                    .pop()
                    .ok_or_else(|| NodeError::internal("COPY TO rewrite"))?
                    .statement
            }
        };
        let StatementOutput::Rows { schema, stream } = self.query(query).await? else {
            return Err(NodeError::internal("COPY TO query returned no rows"));
        };
        let format = match opts.kind {
            Kind::Text => CopyFormat::Text {
                delimiter: opts.delimiter,
                null: opts.null,
                header: opts.header,
            },
            Kind::Csv => {
                let mut force_quote = vec![false; schema.fields().len()];
                for c in &opts.force_quote {
                    let name = ident_name(c);
                    let Some(i) = schema.fields().iter().position(|f| *f.name() == name) else {
                        return Err(NodeError::invalid(
                            "42703",
                            format!("FORCE_QUOTE column \"{name}\" not referenced by COPY"),
                        ));
                    };
                    force_quote[i] = true;
                }
                CopyFormat::Csv {
                    delimiter: opts.delimiter,
                    quote: opts.quote,
                    escape: opts.escape,
                    null: opts.null,
                    header: opts.header,
                    force_quote,
                }
            }
            Kind::Binary => CopyFormat::Binary,
        };
        Ok(StatementOutput::CopyOut {
            schema,
            stream,
            format,
        })
    }

    /// Feed bytes of an open COPY FROM STDIN.
    pub async fn copy_data(&mut self, data: &[u8]) -> Result<(), NodeError> {
        let Some(mut c) = self.copy_in.take() else {
            return Err(NodeError::invalid("08P01", "no COPY in progress"));
        };
        c.buf.extend_from_slice(data);
        let r = c.parse_complete(false);
        let r = match r {
            Ok(()) if c.rows.len() >= ROWS_PER_BATCH => c.flush(self).await,
            other => other,
        };
        match r {
            Ok(()) => {
                self.copy_in = Some(c);
                Ok(())
            }
            Err(e) => {
                c.writer.abandon(self);
                self.end_copy_failed();
                Err(e)
            }
        }
    }

    /// The client finished sending: write the rest and commit (outside a transaction block).
    /// Returns the number of rows copied.
    pub async fn copy_done(&mut self) -> Result<u64, NodeError> {
        let Some(mut c) = self.copy_in.take() else {
            return Err(NodeError::invalid("08P01", "no COPY in progress"));
        };
        let r = match c.parse_complete(true) {
            Ok(()) => c.flush(self).await,
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            c.writer.abandon(self);
            self.end_copy_failed();
            return Err(e);
        }
        let rows = match c.writer.finish(self, false).await {
            Ok(n) => n,
            Err(e) => {
                self.end_copy_failed();
                return Err(e);
            }
        };
        if self.txn.as_ref().is_some_and(|t| !t.explicit) {
            self.commit_open().await?;
        }
        Ok(rows)
    }

    /// The client aborted the COPY.
    pub fn copy_fail(&mut self, message: &str) -> NodeError {
        if let Some(c) = self.copy_in.take() {
            c.writer.abandon(self);
        }
        self.end_copy_failed();
        NodeError::invalid("57014", format!("COPY from stdin failed: {message}"))
    }

    fn end_copy_failed(&mut self) {
        if self.txn.as_ref().is_some_and(|t| !t.explicit) {
            self.rollback_open();
        } else if let Some(t) = &mut self.txn {
            t.failed = true;
        }
    }
}

impl CopyIn {
    /// Parse every complete row in the buffer (all of it at the end).
    fn parse_complete(&mut self, at_end: bool) -> Result<(), NodeError> {
        let end = match &self.format {
            Format::Text { .. } => match self.buf.iter().rposition(|b| *b == b'\n') {
                Some(p) => p + 1,
                None if at_end => self.buf.len(),
                None => return Ok(()),
            },
            Format::Csv { quote, .. } => {
                let mut in_quotes = false;
                let mut last = None;
                for (i, b) in self.buf.iter().enumerate() {
                    if b == quote {
                        in_quotes = !in_quotes;
                    } else if *b == b'\n' && !in_quotes {
                        last = Some(i + 1);
                    }
                }
                match last {
                    Some(p) if !at_end => p,
                    _ if at_end => self.buf.len(),
                    _ => return Ok(()),
                }
            }
        };
        let chunk: Vec<u8> = self.buf.drain(..end).collect();
        let text = std::str::from_utf8(&chunk).map_err(|e| {
            NodeError::invalid(
                "22021",
                format!(
                    "invalid byte sequence for encoding \"UTF8\" near line {}: {e}",
                    self.line + 1
                ),
            )
        })?;
        match self.format.clone() {
            Format::Text { delimiter, null } => {
                for line in text.split('\n') {
                    let line = line.strip_suffix('\r').unwrap_or(line);
                    if line.is_empty() {
                        continue;
                    }
                    self.line += 1;
                    if line == "\\." {
                        break;
                    }
                    if self.skip_header {
                        self.skip_header = false;
                        continue;
                    }
                    let fields: Vec<Option<String>> = line
                        .split(delimiter as char)
                        .map(|f| {
                            if f == null {
                                None
                            } else {
                                Some(unescape_text(f))
                            }
                        })
                        .collect();
                    self.push_row(fields)?;
                }
            }
            Format::Csv {
                delimiter,
                quote,
                escape,
                null,
            } => {
                let mut rdr = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .delimiter(delimiter)
                    .quote(quote)
                    .escape((escape != quote).then_some(escape))
                    .double_quote(escape == quote)
                    .flexible(true)
                    .from_reader(text.as_bytes());
                for rec in rdr.records() {
                    let rec = rec.map_err(|e| {
                        NodeError::invalid(
                            "22P04",
                            format!("COPY CSV, line {}: {e}", self.line + 1),
                        )
                    })?;
                    self.line += 1;
                    if rec.len() == 1 && &rec[0] == "\\." {
                        break;
                    }
                    if self.skip_header {
                        self.skip_header = false;
                        continue;
                    }
                    let fields = rec
                        .iter()
                        .map(|f| if f == null { None } else { Some(f.to_string()) })
                        .collect();
                    self.push_row(fields)?;
                }
            }
        }
        Ok(())
    }

    fn push_row(&mut self, fields: Vec<Option<String>>) -> Result<(), NodeError> {
        if fields.len() != self.width {
            return Err(NodeError::invalid(
                "22P04",
                format!(
                    "COPY line {}: expected {} columns, found {}",
                    self.line,
                    self.width,
                    fields.len()
                ),
            ));
        }
        self.rows.push(fields);
        Ok(())
    }

    async fn flush(&mut self, session: &Session) -> Result<(), NodeError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        let cols: Vec<ArrayRef> = (0..self.width)
            .map(|i| {
                Arc::new(
                    rows.iter()
                        .map(|r| r[i].as_deref())
                        .collect::<StringArray>(),
                ) as ArrayRef
            })
            .collect();
        let schema = Arc::new(Schema::new(
            (0..self.width)
                .map(|i| Field::new(format!("c{i}"), DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ));
        let batch = RecordBatch::try_new(schema, cols)?;
        self.writer.push(session, &batch, &self.plan).await
    }
}

/// Postgres text-format escapes: `\t`, `\n`, `\r`, `\\`, `\b`, `\f`, `\v`, octal.
fn unescape_text(f: &str) -> String {
    if !f.contains('\\') {
        return f.to_string();
    }
    let mut out = String::with_capacity(f.len());
    let mut chars = f.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('v') => out.push('\u{b}'),
            Some(d @ '0'..='7') => {
                let mut v = d.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(x) => {
                            v = v * 8 + x;
                            chars.next();
                        }
                        None => break,
                    }
                }
                out.push(char::from_u32(v).unwrap_or('?'));
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}
