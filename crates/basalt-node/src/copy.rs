//! `COPY table [(columns)] FROM STDIN` in Postgres text or CSV format (psql `\copy`, psycopg
//! `copy`, JDBC CopyManager). Amazon Redshift has no COPY FROM STDIN; Postgres users expect it.
//! Data arrives in chunks; complete rows are parsed, conformed and written as they come, and
//! the whole COPY is one transaction.

use std::sync::Arc;

use basalt_sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Statement,
};
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use crate::dml::{ColumnSource, TableWriter};
use crate::session::{StatementOutput, ident_name};
use crate::{NodeError, Session};

/// Rows parsed before they are handed to the writer.
const ROWS_PER_BATCH: usize = 64 * 1024;

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
    /// Start a COPY FROM STDIN; the wire layer then feeds [`Session::copy_data`].
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
        if *to {
            return Err(NodeError::unsupported(
                "COPY ... TO (it arrives with UNLOAD)",
            ));
        }
        if !matches!(target, CopyTarget::Stdin) {
            return Err(NodeError::unsupported(
                "COPY FROM a file or object store (it arrives with S3 COPY); use COPY ... FROM STDIN",
            ));
        }
        let CopySource::Table {
            table_name,
            columns,
        } = source
        else {
            return Err(NodeError::unsupported("COPY (query) FROM"));
        };
        let mut csv = false;
        let mut delimiter = None;
        let mut null = None;
        let mut header = false;
        let mut quote = b'"';
        let mut escape = None;
        for o in options {
            match o {
                CopyOption::Format(f) => match f.value.to_ascii_lowercase().as_str() {
                    "csv" => csv = true,
                    "text" => csv = false,
                    other => return Err(NodeError::unsupported(format!("COPY FORMAT {other}"))),
                },
                CopyOption::Delimiter(c) => delimiter = Some(*c as u8),
                CopyOption::Null(n) => null = Some(n.clone()),
                CopyOption::Header(h) => header = *h,
                CopyOption::Quote(c) => quote = *c as u8,
                CopyOption::Escape(c) => escape = Some(*c as u8),
                CopyOption::Encoding(e)
                    if e.eq_ignore_ascii_case("utf8") || e.eq_ignore_ascii_case("utf-8") => {}
                other => return Err(NodeError::unsupported(format!("COPY option {other}"))),
            }
        }
        for o in legacy_options {
            match o {
                CopyLegacyOption::Csv(opts) => {
                    csv = true;
                    for c in opts {
                        match c {
                            CopyLegacyCsvOption::Header => header = true,
                            CopyLegacyCsvOption::Quote(q) => quote = *q as u8,
                            CopyLegacyCsvOption::Escape(e) => escape = Some(*e as u8),
                            other => {
                                return Err(NodeError::unsupported(format!(
                                    "COPY CSV option {other}"
                                )));
                            }
                        }
                    }
                }
                CopyLegacyOption::Delimiter(c) => delimiter = Some(*c as u8),
                CopyLegacyOption::Null(n) => null = Some(n.clone()),
                CopyLegacyOption::Header => header = true,
                CopyLegacyOption::IgnoreHeader(n) => header = *n > 0,
                other => return Err(NodeError::unsupported(format!("COPY option {other}"))),
            }
        }
        let state = self.txn_mut().txn.state().clone();
        let table = self.resolve_table(&state, table_name)?;
        let targets: Vec<String> = if columns.is_empty() {
            table.columns.iter().map(|c| c.name.clone()).collect()
        } else {
            columns.iter().map(ident_name).collect()
        };
        let plan = self.column_plan(&table, &targets).await?;
        let format = if csv {
            Format::Csv {
                delimiter: delimiter.unwrap_or(b','),
                quote,
                escape: escape.unwrap_or(quote),
                null: null.unwrap_or_default(),
            }
        } else {
            Format::Text {
                delimiter: delimiter.unwrap_or(b'\t'),
                null: null.unwrap_or_else(|| "\\N".into()),
            }
        };
        let writer = TableWriter::new(self, table.id);
        self.copy_in = Some(CopyIn {
            writer,
            plan,
            width: targets.len(),
            format,
            skip_header: header,
            buf: vec![],
            rows: vec![],
            line: 0,
        });
        Ok(StatementOutput::CopyIn {
            columns: targets.len(),
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
