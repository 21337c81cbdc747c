//! `COPY table [(columns)] FROM STDIN` and `COPY {table [(columns)] | (query)} TO STDOUT` in
//! Postgres text or CSV format (psql `\copy`, psycopg `copy`, JDBC CopyManager); TO STDOUT
//! also in binary format. Amazon Redshift has neither; Postgres users expect both.
//!
//! FROM: data arrives in chunks; complete rows are parsed, conformed and written as they come,
//! and the whole COPY is one transaction. TO: the rows stream from the query as they are
//! produced; the wire layer encodes them with the same text output functions a SELECT uses.

use std::sync::Arc;

use std::borrow::Cow;

use basalt_catalog::{ColumnMeta, TableMeta};
use basalt_sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Ident, ObjectName,
    Statement,
};
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use crate::convert::{LoadError, Rejects, Rows, Rules, code, convert};
use crate::dml::{ColumnSource, TableWriter};
use crate::session::{StatementOutput, ident_name};
use crate::{NodeError, Session};

/// Rows parsed before they are handed to the writer.
pub(crate) const ROWS_PER_BATCH: usize = 64 * 1024;

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
    /// `FORCE_NOT_NULL (columns)`: an unquoted NULL string is a value in these columns.
    force_not_null: Vec<Ident>,
    /// `FORCE_NULL (columns)`: a quoted NULL string is NULL in these columns.
    force_null: Vec<Ident>,
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
        let mut force_not_null = vec![];
        let mut force_null = vec![];
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
                CopyOption::ForceNotNull(cols) => force_not_null = cols.clone(),
                CopyOption::ForceNull(cols) => force_null = cols.clone(),
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
                            CopyLegacyCsvOption::ForceNotNull(cols) => {
                                force_not_null = cols.clone()
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
        for (cols, what) in [
            (&force_not_null, "force not null"),
            (&force_null, "force null"),
        ] {
            only_csv(!cols.is_empty(), what)?;
            if to && !cols.is_empty() {
                return Err(NodeError::invalid(
                    "0A000",
                    format!("COPY {what} only available using COPY FROM"),
                ));
            }
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
            force_not_null,
            force_null,
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

/// Backslash escapes in delimited text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escapes {
    /// Redshift's default: a backslash is data.
    None,
    /// Postgres' text format: `\t`, `\n`, `\\`, octal, ...; a backslash before any other
    /// character stands for that character.
    Postgres,
    /// Redshift's ESCAPE: a backslash makes the next character data, whatever it is (a
    /// delimiter, a newline, a quote, a backslash).
    Redshift,
}

#[derive(Debug, Clone)]
pub(crate) enum Format {
    Text {
        delimiter: u8,
        null: String,
        escapes: Escapes,
        /// Redshift's REMOVEQUOTES: a field in double quotes loses them, and a delimiter
        /// inside them is data.
        remove_quotes: bool,
    },
    /// Redshift's FIXEDWIDTH: each field is so many characters of the line.
    Fixed { widths: Vec<usize>, null: String },
    Csv {
        delimiter: u8,
        quote: u8,
        escape: u8,
        null: String,
        /// Per target column: `FORCE_NOT_NULL`.
        force_not_null: Vec<bool>,
        /// Per target column: `FORCE_NULL`.
        force_null: Vec<bool>,
    },
}

/// How a Redshift COPY treats its rows: a row that cannot load is rejected (up to MAXERROR)
/// rather than failing the COPY, and text becomes values under the COPY's conversion rules.
/// COPY FROM STDIN (Postgres) has none of this: its first bad row fails it.
pub(crate) struct RedshiftRows {
    pub rules: Rules,
    pub rejects: Rejects,
    /// FILLRECORD: missing trailing fields are empty.
    pub fill_record: bool,
    /// ACCEPTINVCHARS: each byte of an invalid UTF-8 sequence becomes this character.
    pub accept_invchars: Option<char>,
    /// The table column each input field loads.
    pub columns: Vec<ColumnMeta>,
    /// The file being read.
    pub file: String,
}

/// Splits input into rows of text fields and, in a Redshift COPY, converts them to the
/// columns' types: for one input stream (COPY FROM STDIN, a JSON file), or for one chunk of
/// whole records of a file parsed beside other chunks (see `load.rs`).
pub(crate) struct RowParser {
    width: usize,
    format: Format,
    /// Header lines still to skip in the current input.
    pub(crate) skip_lines: u64,
    buf: Vec<u8>,
    /// The fields of the rows parsed and not yet taken, one builder per input column.
    fields: Vec<StringBuilder>,
    /// The line each of those rows came from.
    lines: Vec<u64>,
    /// Lines read of the current input.
    pub(crate) line: u64,
    /// The end-of-data marker `\.` was read: the rest of the input is ignored.
    pub(crate) ended: bool,
    pub(crate) redshift: Option<RedshiftRows>,
}

/// What a chunk's parser made of it.
pub(crate) struct ParsedChunk {
    /// Its rows, converted (none when all were rejected or skipped).
    pub batches: Vec<RecordBatch>,
    /// Its rejected rows, in line order.
    pub rejects: Vec<LoadError>,
    /// The file's last line read.
    pub line: u64,
    /// It held the end-of-data marker: what follows in the file is not data.
    pub ended: bool,
}

/// An open COPY FROM STDIN (or one file after another of a COPY from object storage).
pub(crate) struct CopyIn {
    pub(crate) writer: TableWriter,
    plan: Vec<ColumnSource>,
    pub(crate) rows: RowParser,
    /// NOLOAD: parse and convert, write nothing.
    pub(crate) check_only: bool,
    /// COPY FROM STDIN: the input cut into chunks of whole records, parsed side by side.
    chunks: Option<StdinChunks>,
}

/// The chunks of a COPY FROM STDIN: the client's data is cut into chunks of whole records,
/// each parsed and cast to the table's types by a task of its own on the blocking pool (as
/// the chunks of a file are, `load.rs`), and written in order as they come back.
struct StdinChunks {
    /// Data not yet in a chunk (the start of a record at least).
    pending: Vec<u8>,
    chunk_bytes: usize,
    /// Lines before `pending`; header lines still to skip (all in the first chunk).
    after: u64,
    skip: u64,
    /// A chunk held the end-of-data marker `\.`: what follows is not data.
    ended: bool,
    /// Chunks being parsed, oldest first.
    parsing: std::collections::VecDeque<tokio::task::JoinHandle<Result<ParsedChunk, NodeError>>>,
    /// For each input column, the table column it fills (its values are cast to that type
    /// where they are parsed).
    casts: Arc<Vec<Option<ColumnMeta>>>,
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
        let (table, targets, plan) = self.copy_target(table_name, columns, None).await?;
        // FORCE_NOT_NULL / FORCE_NULL columns → flags per target column.
        let flags = |cols: &[Ident], what: &str| -> Result<Vec<bool>, NodeError> {
            let mut flags = vec![false; targets.len()];
            for c in cols {
                let name = ident_name(c);
                match targets.iter().position(|t| *t == name) {
                    Some(i) => flags[i] = true,
                    None if table.column(&name).is_none() => {
                        return Err(NodeError::invalid(
                            "42703",
                            format!(
                                "column \"{name}\" of relation \"{}\" does not exist",
                                table.name
                            ),
                        ));
                    }
                    None => {
                        return Err(NodeError::invalid(
                            "42P10",
                            format!("{what} column \"{name}\" not referenced by COPY"),
                        ));
                    }
                }
            }
            Ok(flags)
        };
        let format = match opts.kind {
            Kind::Csv => Format::Csv {
                force_not_null: flags(&opts.force_not_null, "FORCE_NOT_NULL")?,
                force_null: flags(&opts.force_null, "FORCE_NULL")?,
                delimiter: opts.delimiter,
                quote: opts.quote,
                escape: opts.escape,
                null: opts.null,
            },
            // Binary was refused while parsing the options of a COPY FROM.
            Kind::Text | Kind::Binary => Format::Text {
                delimiter: opts.delimiter,
                null: opts.null,
                escapes: Escapes::Postgres,
                remove_quotes: false,
            },
        };
        // Redshift's COPY updates the statistics of a table it loads from empty.
        let mut writer = TableWriter::new(self, table.id);
        writer.gather_stats()?;
        let mut rows = RowParser::new(targets.len(), format);
        rows.skip_lines = u64::from(opts.header);
        let chunk_bytes = self.leader.config().copy_chunk_bytes;
        let table = writer.table().clone();
        self.copy_in = Some(CopyIn::new(writer, plan, rows).in_chunks(&table, chunk_bytes));
        Ok(StatementOutput::CopyIn {
            columns: targets.len(),
        })
    }

    /// The table a COPY FROM loads, its target columns (all, or those listed) and how each
    /// table column gets its value. `explicit_ids` is Redshift's rule for IDENTITY columns
    /// (None for Postgres' COPY FROM STDIN): without EXPLICIT_IDS they are generated, left out
    /// of the default column list and refused in a given one.
    pub(crate) async fn copy_target(
        &mut self,
        table_name: &ObjectName,
        columns: &[Ident],
        explicit_ids: Option<bool>,
    ) -> Result<(TableMeta, Vec<String>, Vec<ColumnSource>), NodeError> {
        let state = self.txn_mut().txn.state().clone();
        let table = self.resolve_table(&state, table_name)?;
        let generated = |name: &str| {
            explicit_ids == Some(false) && table.column(name).is_some_and(|c| c.identity.is_some())
        };
        let targets: Vec<String> = if columns.is_empty() {
            table
                .columns
                .iter()
                .map(|c| c.name.clone())
                .filter(|c| !generated(c))
                .collect()
        } else {
            columns.iter().map(ident_name).collect()
        };
        if let Some(c) = targets.iter().find(|c| generated(c)) {
            return Err(NodeError::invalid(
                "428C9",
                format!(
                    "COPY: column \"{c}\" is an IDENTITY column; load values into it with \
                     EXPLICIT_IDS, or leave it out of the column list"
                ),
            ));
        }
        let plan = self
            .column_plan(&table, &targets, explicit_ids == Some(true))
            .await?;
        Ok((table, targets, plan))
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
        match c.feed(data).await {
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
        if let Err(e) = c.end_input().await {
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

    /// Abandon an open COPY FROM STDIN whose client went away: the files it wrote join the
    /// transaction's, which the caller then rolls back. Whether a COPY was open.
    pub(crate) fn abandon_copy(&mut self) -> bool {
        match self.copy_in.take() {
            Some(c) => {
                c.writer.abandon(self);
                true
            }
            None => false,
        }
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
    /// A COPY into `writer`'s table, of the rows `rows` parses, placed by `plan`.
    pub(crate) fn new(writer: TableWriter, plan: Vec<ColumnSource>, rows: RowParser) -> Self {
        CopyIn {
            writer,
            plan,
            rows,
            check_only: false,
            chunks: None,
        }
    }

    /// Parse the input in chunks of about `chunk_bytes`, side by side (COPY FROM STDIN).
    pub(crate) fn in_chunks(mut self, table: &TableMeta, chunk_bytes: usize) -> Self {
        let mut casts = vec![None; self.rows.width];
        for (c, how) in table.columns.iter().zip(&self.plan) {
            if let ColumnSource::Source(i) = how
                && let Some(slot) = casts.get_mut(*i)
            {
                *slot = Some(c.clone());
            }
        }
        self.chunks = Some(StdinChunks {
            pending: vec![],
            chunk_bytes: chunk_bytes.max(1),
            after: 0,
            skip: self.rows.skip_lines,
            ended: false,
            parsing: Default::default(),
            casts: Arc::new(casts),
        });
        self
    }

    /// Take `data`, writing full batches of rows to the slices.
    /// (A COPY FROM STDIN, [`CopyIn::in_chunks`].)
    pub(crate) async fn feed(&mut self, data: &[u8]) -> Result<(), NodeError> {
        let Some(ch) = &mut self.chunks else {
            return Err(not_chunked());
        };
        if ch.ended {
            return Ok(());
        }
        ch.pending.extend_from_slice(data);
        if ch.pending.len() >= ch.chunk_bytes {
            return self.cut_chunk(false).await;
        }
        Ok(())
    }

    /// The input ended: parse and write what is left of it, and the chunks being parsed.
    pub(crate) async fn end_input(&mut self) -> Result<(), NodeError> {
        if self.chunks.is_none() {
            return Err(not_chunked());
        }
        self.cut_chunk(true).await?;
        while self
            .chunks
            .as_ref()
            .is_some_and(|ch| !ch.parsing.is_empty())
        {
            self.write_next_chunk().await?;
        }
        Ok(())
    }

    /// Start parsing the complete records of the pending data (all of it `at_end`), then
    /// write the oldest chunks while more are being parsed than there are cores.
    async fn cut_chunk(&mut self, at_end: bool) -> Result<(), NodeError> {
        let Some(ch) = &mut self.chunks else {
            return Ok(());
        };
        let (lines, end) = if at_end {
            (0, ch.pending.len())
        } else {
            match complete_records(self.rows.format(), &ch.pending) {
                (lines, end) if lines > ch.skip => (lines, end),
                _ => return Ok(()),
            }
        };
        if end > 0 && !ch.ended {
            let rest = ch.pending.split_off(end);
            let chunk = std::mem::replace(&mut ch.pending, rest);
            let parser = self.rows.for_chunk("");
            let (after, skip, casts) = (ch.after, ch.skip, ch.casts.clone());
            ch.parsing.push_back(tokio::task::spawn_blocking(move || {
                let mut parsed = parser.parse_chunk(chunk, after, skip, at_end)?;
                for b in &mut parsed.batches {
                    *b = cast_to_columns(b, &casts)?;
                }
                Ok(parsed)
            }));
            (ch.after, ch.skip) = (after + lines, 0);
        }
        let most = crate::load::chunks_ahead();
        while self
            .chunks
            .as_ref()
            .is_some_and(|ch| ch.parsing.len() > most)
        {
            self.write_next_chunk().await?;
        }
        Ok(())
    }

    /// Wait for the oldest chunk being parsed and write its rows (none after the end marker).
    async fn write_next_chunk(&mut self) -> Result<(), NodeError> {
        let Some(handle) = self.chunks.as_mut().and_then(|ch| ch.parsing.pop_front()) else {
            return Ok(());
        };
        let parsed = handle.await.map_err(|e| NodeError::Internal {
            message: format!("a COPY parser failed: {e}"),
        })??;
        let Some(ch) = &mut self.chunks else {
            return Ok(());
        };
        if ch.ended {
            return Ok(());
        }
        ch.ended = parsed.ended;
        if ch.ended {
            ch.pending.clear();
        }
        for batch in &parsed.batches {
            self.push_converted(batch).await?;
        }
        Ok(())
    }

    /// Write the buffered rows.
    pub(crate) async fn flush(&mut self) -> Result<(), NodeError> {
        match self.rows.take_batch()? {
            Some(batch) => self.push_converted(&batch).await,
            None => Ok(()),
        }
    }

    /// Write rows already converted (by a chunk's parser).
    pub(crate) async fn push_converted(&mut self, batch: &RecordBatch) -> Result<(), NodeError> {
        if self.check_only {
            return Ok(());
        }
        self.writer.push(batch, &self.plan).await
    }
}

/// Input fed to a [`CopyIn`] that does not cut it into chunks (a file load's, which reads
/// its files itself).
fn not_chunked() -> NodeError {
    NodeError::Internal {
        message: "COPY input fed to a load that reads its own files".into(),
    }
}

/// `batch`'s text columns cast to the types of the table columns they fill (`casts`, per
/// input column), as the table writer would cast them: done where a chunk is parsed, so the
/// writer finds them typed.
fn cast_to_columns(
    batch: &RecordBatch,
    casts: &[Option<ColumnMeta>],
) -> Result<RecordBatch, NodeError> {
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (i, (field, values)) in batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .enumerate()
    {
        let target = casts
            .get(i)
            .and_then(|c| c.as_ref().map(|c| (c, c.ty.to_arrow())));
        match target {
            Some((c, ty)) if values.data_type() != &ty => {
                fields.push(Field::new(field.name(), ty.clone(), true));
                columns.push(crate::dml::cast_value(values, &ty, c)?);
            }
            _ => {
                fields.push(field.as_ref().clone());
                columns.push(values.clone());
            }
        }
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

impl RowParser {
    /// A parser of rows of `width` input columns.
    pub(crate) fn new(width: usize, format: Format) -> Self {
        RowParser {
            width,
            format,
            skip_lines: 0,
            buf: vec![],
            fields: (0..width).map(|_| StringBuilder::new()).collect(),
            lines: vec![],
            line: 0,
            ended: false,
            redshift: None,
        }
    }

    /// A parser of one chunk of `file` with this one's settings: its rejects are its own, and
    /// unlimited (the COPY counts them against MAXERROR as the chunks come back in order).
    pub(crate) fn for_chunk(&self, file: &str) -> RowParser {
        let mut p = RowParser::new(self.width, self.format.clone());
        p.redshift = self.redshift.as_ref().map(|r| RedshiftRows {
            rules: r.rules.clone(),
            rejects: Rejects {
                max: u64::MAX,
                table: r.rejects.table.clone(),
                found: vec![],
            },
            fill_record: r.fill_record,
            accept_invchars: r.accept_invchars,
            columns: r.columns.clone(),
            file: file.to_string(),
        });
        p
    }

    /// Parse and convert `chunk`, whole records of a file whose first line is `after + 1`
    /// (`skip` of them header lines; `at_end`: the file's last chunk, whose last line may lack
    /// its newline).
    pub(crate) fn parse_chunk(
        mut self,
        chunk: Vec<u8>,
        after: u64,
        skip: u64,
        at_end: bool,
    ) -> Result<ParsedChunk, NodeError> {
        // Room for the chunk's fields up front (a builder grown by doubling copies its
        // values again at each step): the chunk's bytes spread over its columns, a row per
        // 16 bytes at most.
        let (bytes, rows) = (chunk.len() / self.width.max(1), chunk.len() / 16);
        self.fields = (0..self.width)
            .map(|_| StringBuilder::with_capacity(rows, bytes))
            .collect();
        self.buf = chunk;
        self.line = after;
        self.skip_lines = skip;
        self.parse_complete(at_end)?;
        let batches = self.take_batch()?.into_iter().collect();
        Ok(self.parsed(batches))
    }

    /// Convert the typed batches of a columnar file's rows after line `after` (a Parquet row
    /// group), as [`RowParser::parse_chunk`] does a chunk of text.
    pub(crate) async fn convert_batches<E>(
        mut self,
        mut batches: impl futures::Stream<Item = Result<RecordBatch, E>> + Unpin,
        after: u64,
        error: impl Fn(E) -> NodeError,
    ) -> Result<ParsedChunk, NodeError> {
        use futures::StreamExt;
        self.line = after;
        let mut converted = vec![];
        while let Some(batch) = batches.next().await {
            converted.push(self.typed_batch(batch.map_err(&error)?)?);
        }
        Ok(self.parsed(converted))
    }

    fn parsed(self, batches: Vec<RecordBatch>) -> ParsedChunk {
        let mut rejects = self.redshift.map(|r| r.rejects.found).unwrap_or_default();
        // Parsing rejects rows as it reads them, conversion a batch later: in line order,
        // as one parser reading the file would count them.
        rejects.sort_by_key(|e| e.line);
        ParsedChunk {
            batches,
            rejects,
            line: self.line,
            ended: self.ended,
        }
    }

    pub(crate) fn format(&self) -> &Format {
        &self.format
    }

    /// Start the next input (file): line numbers from 1, `skip` header lines.
    pub(crate) fn next_input(&mut self, skip: u64) {
        self.line = 0;
        self.skip_lines = skip;
        self.ended = false;
    }

    /// Parse every complete row in the buffer (all of it at the end).
    fn parse_complete(&mut self, at_end: bool) -> Result<(), NodeError> {
        if self.ended {
            self.buf.clear();
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let used = match self.format.clone() {
            Format::Text {
                delimiter,
                null,
                escapes,
                remove_quotes,
            } => self.parse_text(&buf, at_end, |line, out| {
                split_text(line, delimiter, escapes, remove_quotes, |raw, escaped| {
                    out.push(if raw == null {
                        None
                    } else if escaped {
                        Some(Cow::Owned(unescape(raw, escapes)))
                    } else {
                        Some(Cow::Borrowed(raw))
                    });
                })
            })?,
            Format::Fixed { widths, null } => self.parse_text(&buf, at_end, |line, out| {
                split_fixed(line, &widths, |raw| {
                    out.push((raw != null).then_some(Cow::Borrowed(raw)));
                })
            })?,
            Format::Csv {
                delimiter,
                quote,
                escape,
                null,
                force_not_null,
                force_null,
            } => {
                let mut fields: Vec<Option<Cow<'_, str>>> = Vec::with_capacity(self.width);
                let split =
                    split_csv(&buf, delimiter, quote, escape, at_end, |rec| {
                        self.line += 1;
                        if let [f] = rec
                            && !f.quoted
                            && *f.text == *b"\\."
                        {
                            self.ended = true;
                            return Ok(false);
                        }
                        if self.skip_lines > 0 {
                            self.skip_lines -= 1;
                            return Ok(true);
                        }
                        fields.clear();
                        let mut bad = None;
                        for (i, f) in rec.iter().enumerate() {
                            // As Postgres: only an unquoted field is the NULL string, unless
                            // FORCE_NOT_NULL; with FORCE_NULL a quoted one is too.
                            let is_null = if !f.quoted && *f.text == *null.as_bytes() {
                                !force_not_null.get(i).copied().unwrap_or(false)
                            } else {
                                f.quoted
                                    && f.text == null.as_bytes()
                                    && force_null.get(i).copied().unwrap_or(false)
                            };
                            if is_null {
                                fields.push(None);
                                continue;
                            }
                            let text = match &f.text {
                                Cow::Borrowed(b) => std::str::from_utf8(b).map(Cow::Borrowed),
                                Cow::Owned(o) => {
                                    std::str::from_utf8(o).map(|s| Cow::Owned(s.to_string()))
                                }
                            };
                            match text {
                                Ok(s) => fields.push(Some(s)),
                                Err(e) => {
                                    bad = Some(e);
                                    break;
                                }
                            }
                        }
                        if let Some(e) = bad {
                            let raw = csv_raw_line(rec, delimiter);
                            match self.invalid_utf8(&raw, e)? {
                                // Re-read the record with its bytes replaced.
                                Some(fixed) => {
                                    fields.clear();
                                    fields.extend(
                                        fixed
                                            .split(delimiter as char)
                                            .map(|f| Some(Cow::Owned(f.to_string()))),
                                    );
                                    if fields.len() != rec.len() {
                                        fields.clear();
                                        fields.extend(rec.iter().map(|f| {
                                            Some(Cow::Owned(self.replace_invalid(&f.text)))
                                        }));
                                    }
                                }
                                None => return Ok(true),
                            }
                        }
                        self.push_row(&|| Cow::Owned(csv_raw_line(rec, delimiter)), &mut fields)?;
                        Ok(true)
                    });
                match split {
                    Ok(end) => end,
                    Err(SplitError::Record(e)) => return Err(e),
                    // Redshift's COPY rejects what is left of the file, from the quote's
                    // record on, as one bad row (STL_LOAD_ERRORS, within MAXERROR).
                    Err(SplitError::Csv(e)) if self.redshift.is_some() => {
                        let rest = &buf[e.start..];
                        let line = self.line + 1;
                        self.line +=
                            memchr::memchr_iter(b'\n', rest.strip_suffix(b"\n").unwrap_or(rest))
                                .count() as u64
                                + 1;
                        self.reject_line(
                            line,
                            rest.trim_ascii_end(),
                            code::INVALID_LINE,
                            "22P04",
                            format!("Invalid input line: {e}"),
                        )?;
                        buf.len()
                    }
                    Err(SplitError::Csv(e)) => {
                        return Err(NodeError::invalid(
                            "22P04",
                            format!("COPY CSV, line {}: {e}", self.line + 1),
                        ));
                    }
                }
            }
        };
        if !self.ended {
            self.buf = buf[used..].to_vec();
        }
        Ok(())
    }

    /// Parse the complete lines of text at the start of `buf`, each split into fields by
    /// `split`; returns the bytes they span.
    fn parse_text<'b>(
        &mut self,
        buf: &'b [u8],
        at_end: bool,
        split: impl for<'l> Fn(&'l str, &mut Vec<Option<Cow<'l, str>>>),
    ) -> Result<usize, NodeError> {
        let escapes = match &self.format {
            Format::Text { escapes, .. } => *escapes,
            _ => Escapes::None,
        };
        let mut pos = 0;
        while pos < buf.len() {
            let rest = &buf[pos..];
            let (mut line, next) = match line_end(rest, escapes != Escapes::None) {
                Some(end) => (&rest[..end], end + 1),
                None if at_end => (rest, rest.len()),
                None => break,
            };
            pos += next;
            if let Some(l) = line.strip_suffix(b"\r") {
                line = l;
            }
            self.line += 1;
            if line.is_empty() {
                continue;
            }
            if line == b"\\." && escapes == Escapes::Postgres {
                self.ended = true;
                break;
            }
            if self.skip_lines > 0 {
                self.skip_lines -= 1;
                continue;
            }
            let text: Cow<'_, str> = match std::str::from_utf8(line) {
                Ok(s) => Cow::Borrowed(s),
                Err(e) => match self.invalid_utf8(line, e)? {
                    Some(fixed) => Cow::Owned(fixed),
                    None => continue,
                },
            };
            let mut fields: Vec<Option<Cow<'_, str>>> = Vec::with_capacity(self.width);
            split(&text, &mut fields);
            self.push_row(&|| Cow::Borrowed(text.as_bytes()), &mut fields)?;
        }
        Ok(pos)
    }

    /// Rows rejected so far.
    pub(crate) fn rejected(&self) -> usize {
        self.redshift.as_ref().map_or(0, |r| r.rejects.found.len())
    }

    /// A line that is not valid UTF-8: with ACCEPTINVCHARS its bad bytes are replaced; in a
    /// Redshift COPY it is rejected (`None`); in COPY FROM STDIN it fails the COPY.
    fn invalid_utf8(
        &mut self,
        bytes: &[u8],
        e: std::str::Utf8Error,
    ) -> Result<Option<String>, NodeError> {
        let line = self.line;
        match &mut self.redshift {
            None => Err(NodeError::invalid(
                "22021",
                format!("invalid byte sequence for encoding \"UTF8\" near line {line}: {e}"),
            )),
            Some(r) if r.accept_invchars.is_some() => Ok(Some(self.replace_invalid(bytes))),
            Some(r) => {
                let err = LoadError::line(
                    &r.file,
                    line,
                    &String::from_utf8_lossy(bytes),
                    code::INVALID_UTF8,
                    "22021",
                    format!("Invalid UTF8 byte sequence at byte {}", e.valid_up_to()),
                );
                r.rejects.reject(err)?;
                Ok(None)
            }
        }
    }

    /// ACCEPTINVCHARS: each byte of an invalid UTF-8 sequence becomes the replacement.
    fn replace_invalid(&self, bytes: &[u8]) -> String {
        let with = self
            .redshift
            .as_ref()
            .and_then(|r| r.accept_invchars)
            .unwrap_or('?');
        let mut out = String::with_capacity(bytes.len());
        for chunk in bytes.utf8_chunks() {
            out.push_str(chunk.valid());
            out.extend(std::iter::repeat_n(with, chunk.invalid().len()));
        }
        out
    }

    /// One parsed row: checked for its number of fields, then buffered. `raw` gives its line
    /// (built only for a row that is rejected).
    fn push_row<'r>(
        &mut self,
        raw: &dyn Fn() -> Cow<'r, [u8]>,
        fields: &mut Vec<Option<Cow<'_, str>>>,
    ) -> Result<(), NodeError> {
        if fields.len() != self.width {
            let Some(r) = &mut self.redshift else {
                return Err(NodeError::invalid(
                    "22P04",
                    format!(
                        "COPY line {}: expected {} columns, found {}",
                        self.line,
                        self.width,
                        fields.len()
                    ),
                ));
            };
            if fields.len() < self.width && r.fill_record {
                fields.resize(self.width, Some(Cow::Borrowed("")));
            } else {
                let (code, reason) = if fields.len() > self.width {
                    (code::EXTRA_COLUMNS, "Extra column(s) found")
                } else {
                    (code::DELIMITER_NOT_FOUND, "Delimiter not found")
                };
                let err = LoadError::line(
                    &r.file,
                    self.line,
                    &String::from_utf8_lossy(&raw()),
                    code,
                    "22P04",
                    format!(
                        "{reason}: expected {} columns, found {}",
                        self.width,
                        fields.len()
                    ),
                );
                return r.rejects.reject(err);
            }
        }
        for (b, f) in self.fields.iter_mut().zip(fields.iter()) {
            match f {
                Some(v) => b.append_value(v),
                None => b.append_null(),
            }
        }
        self.lines.push(self.line);
        Ok(())
    }

    /// The rows parsed so far, converted (in a Redshift COPY; rows that cannot load are
    /// rejected), or `None` when there are none.
    pub(crate) fn take_batch(&mut self) -> Result<Option<RecordBatch>, NodeError> {
        if self.lines.is_empty() {
            return Ok(None);
        }
        let lines = std::mem::take(&mut self.lines);
        let cols: Vec<ArrayRef> = self
            .fields
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let schema = Arc::new(Schema::new(
            (0..self.width)
                .map(|i| Field::new(format!("c{i}"), DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ));
        let batch = RecordBatch::try_new(schema, cols)?;
        self.convert(batch, &lines).map(Some)
    }

    /// Rows parsed and not yet written.
    pub(crate) fn buffered(&self) -> usize {
        self.lines.len()
    }

    /// One record of a format parsed elsewhere (JSON), ending on `line`: checked and buffered
    /// like a line of text.
    pub(crate) fn push_record(
        &mut self,
        line: u64,
        raw: &[u8],
        mut fields: Vec<Option<Cow<'_, str>>>,
    ) -> Result<(), NodeError> {
        self.line = line;
        self.push_row(&|| Cow::Borrowed(raw), &mut fields)
    }

    /// Reject a record of a format parsed elsewhere (JSON) that cannot load (1224).
    pub(crate) fn reject_record(
        &mut self,
        line: u64,
        raw: &[u8],
        reason: String,
    ) -> Result<(), NodeError> {
        self.line = line;
        self.reject_line(line, raw, code::MALFORMED_JSON, "22P02", reason)
    }

    /// Reject the record on `line` as a whole; without Redshift's rules, fail.
    fn reject_line(
        &mut self,
        line: u64,
        raw: &[u8],
        code: i32,
        sqlstate: &'static str,
        reason: String,
    ) -> Result<(), NodeError> {
        let Some(r) = &mut self.redshift else {
            return Err(NodeError::invalid(sqlstate, reason));
        };
        let err = LoadError::line(
            &r.file,
            line,
            &String::from_utf8_lossy(raw),
            code,
            sqlstate,
            reason,
        );
        r.rejects.reject(err)
    }

    /// A batch of typed columns (Parquet), one per input column, converted to the table's
    /// types with bad values rejected. Its rows are the next lines.
    pub(crate) fn typed_batch(&mut self, batch: RecordBatch) -> Result<RecordBatch, NodeError> {
        if batch.num_columns() != self.width {
            return Err(NodeError::invalid(
                "22P04",
                format!(
                    "the file has {} columns and the COPY loads {}: columnar files map \
                     columns by position",
                    batch.num_columns(),
                    self.width
                ),
            ));
        }
        let n = batch.num_rows() as u64;
        let lines: Vec<u64> = (self.line + 1..=self.line + n).collect();
        self.line += n;
        self.convert(batch, &lines)
    }

    /// Convert rows that came from `lines` under a Redshift COPY's rules (COPY FROM STDIN
    /// leaves them text: the writer casts them).
    fn convert(&mut self, batch: RecordBatch, lines: &[u64]) -> Result<RecordBatch, NodeError> {
        Ok(match &mut self.redshift {
            None => batch,
            Some(r) => {
                let delimiter = match &self.format {
                    Format::Text { delimiter, .. } | Format::Csv { delimiter, .. } => {
                        *delimiter as char
                    }
                    Format::Fixed { .. } => ' ',
                };
                let columns: Vec<&ColumnMeta> = r.columns.iter().collect();
                let rows = Rows {
                    file: &r.file,
                    lines,
                    delimiter,
                };
                convert(&batch, &columns, &rows, &r.rules, &mut r.rejects)?
            }
        })
    }
}

/// The records at the start of `buf` (which starts at a record's start) that end in it: the
/// lines the parser counts for them, and the byte after the last one's newline (0 when none
/// ends). How a file is cut into chunks of whole records for parsers running side by side.
pub(crate) fn complete_records(format: &Format, buf: &[u8]) -> (u64, usize) {
    match format {
        Format::Text {
            escapes: Escapes::None,
            ..
        }
        | Format::Fixed { .. } => {
            memchr::memchr_iter(b'\n', buf).fold((0, 0), |(n, _), at| (n + 1, at + 1))
        }
        Format::Text { .. } => {
            let (mut n, mut end) = (0, 0);
            while let Some(at) = line_end(&buf[end..], true) {
                n += 1;
                end += at + 1;
            }
            (n, end)
        }
        Format::Csv { quote, escape, .. } => csv_record_ends(buf, *quote, *escape),
    }
}

/// [`complete_records`] for CSV: a newline ends a record outside quotes, as [`split_csv`]
/// reads them.
fn csv_record_ends(buf: &[u8], quote: u8, escape: u8) -> (u64, usize) {
    let (mut n, mut end, mut i, mut in_quotes) = (0, 0, 0, false);
    while i < buf.len() {
        let rest = &buf[i..];
        if in_quotes {
            let Some(at) = memchr::memchr2(quote, escape, rest) else {
                break;
            };
            let p = i + at;
            i = match buf.get(p + 1) {
                Some(&next) if buf[p] == escape && (next == quote || next == escape) => p + 2,
                _ if buf[p] == quote => {
                    in_quotes = false;
                    p + 1
                }
                _ => p + 1,
            };
        } else {
            let Some(at) = memchr::memchr2(quote, b'\n', rest) else {
                break;
            };
            let p = i + at;
            if buf[p] == b'\n' {
                n += 1;
                end = p + 1;
            } else {
                in_quotes = true;
            }
            i = p + 1;
        }
    }
    (n, end)
}

/// The end of the first line of `buf` (the position of its newline); with escapes, a newline
/// after a backslash is data.
fn line_end(buf: &[u8], escapes: bool) -> Option<usize> {
    if !escapes {
        return memchr::memchr(b'\n', buf);
    }
    let mut from = 0;
    while let Some(i) = memchr::memchr2(b'\n', b'\\', &buf[from..]) {
        let at = from + i;
        if buf[at] == b'\n' {
            return Some(at);
        }
        from = at + 2;
        if from >= buf.len() {
            return None;
        }
    }
    None
}

/// Split one line of delimited text into fields, calling `field(raw, escaped)` for each:
/// `raw` is the field's text as written (without REMOVEQUOTES' quotes), `escaped` whether it
/// holds a backslash to undo.
fn split_text<'a>(
    line: &'a str,
    delimiter: u8,
    escapes: Escapes,
    remove_quotes: bool,
    mut field: impl FnMut(&'a str, bool),
) {
    let bytes = line.as_bytes();
    if escapes == Escapes::None && !remove_quotes {
        for f in line.split(delimiter as char) {
            field(f, false);
        }
        return;
    }
    let mut emit = |start: usize, end: usize, escaped: bool| {
        let mut f = &line[start..end];
        if remove_quotes && f.len() >= 2 && f.starts_with('"') && f.ends_with('"') {
            f = &f[1..f.len() - 1];
        }
        field(f, escaped);
    };
    let (mut start, mut escaped, mut quoted, mut i) = (0, false, false, 0);
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' && escapes != Escapes::None {
            escaped = true;
            i += 2;
        } else if remove_quotes && b == b'"' && (i == start || quoted) {
            quoted = !quoted;
            i += 1;
        } else if b == delimiter && !quoted {
            emit(start, i, escaped);
            (start, escaped) = (i + 1, false);
            i += 1;
        } else {
            i += 1;
        }
    }
    emit(start, bytes.len(), escaped);
}

/// Split a fixed-width line: each field is its width in characters; a short line has fewer
/// fields.
fn split_fixed<'a>(line: &'a str, widths: &[usize], mut field: impl FnMut(&'a str)) {
    let mut rest = line;
    for w in widths {
        if rest.is_empty() {
            return;
        }
        let end = rest.char_indices().nth(*w).map_or(rest.len(), |(i, _)| i);
        field(&rest[..end]);
        rest = &rest[end..];
    }
    if !rest.is_empty() {
        // More text than the widths cover: an extra field.
        field(rest);
    }
}

/// Undo backslash escapes.
fn unescape(f: &str, escapes: Escapes) -> String {
    match escapes {
        Escapes::Postgres => unescape_text(f),
        Escapes::None => f.to_string(),
        Escapes::Redshift => {
            let mut out = String::with_capacity(f.len());
            let mut chars = f.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    out.push(chars.next().unwrap_or('\\'));
                } else {
                    out.push(c);
                }
            }
            out
        }
    }
}

/// A CSV record's fields joined back into a line (for STL_LOAD_ERRORS).
fn csv_raw_line(rec: &[CsvField], delimiter: u8) -> Vec<u8> {
    let mut raw = vec![];
    for (i, f) in rec.iter().enumerate() {
        if i > 0 {
            raw.push(delimiter);
        }
        raw.extend_from_slice(&f.text);
    }
    raw
}

/// One CSV field as Postgres reads it: its bytes (borrowed from the input unless quotes or
/// escapes had to be taken out of the middle), and whether any of it was quoted (a quoted
/// field is never the NULL string, so `,"",` is an empty string where `,,` is NULL).
#[derive(Debug, Default, PartialEq, Eq)]
struct CsvField<'a> {
    text: Cow<'a, [u8]>,
    quoted: bool,
}

/// A CSV syntax error in the `record`-th record (from 0) of a buffer.
#[derive(Debug, PartialEq, Eq)]
struct CsvError {
    record: u64,
    message: &'static str,
    /// Where the record in error starts in the input.
    start: usize,
}

impl std::fmt::Display for CsvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message)
    }
}

/// The field being read: a range of the input while its bytes are contiguous there, else
/// its own copy.
struct FieldText {
    span: (usize, usize),
    owned: Option<Vec<u8>>,
}

impl FieldText {
    fn at(i: usize) -> Self {
        FieldText {
            span: (i, i),
            owned: None,
        }
    }

    /// Add bytes `from..to` of `buf`.
    fn push(&mut self, buf: &[u8], from: usize, to: usize) {
        if from == to {
            return;
        }
        match &mut self.owned {
            Some(o) => o.extend_from_slice(&buf[from..to]),
            None if self.span.0 == self.span.1 => self.span = (from, to),
            None if self.span.1 == from => self.span.1 = to,
            None => {
                let mut o = buf[self.span.0..self.span.1].to_vec();
                o.extend_from_slice(&buf[from..to]);
                self.owned = Some(o);
            }
        }
    }

    fn take<'a>(&mut self, buf: &'a [u8], next: usize) -> Cow<'a, [u8]> {
        let text = match self.owned.take() {
            Some(o) => Cow::Owned(o),
            None => Cow::Borrowed(&buf[self.span.0..self.span.1]),
        };
        self.span = (next, next);
        text
    }
}

/// Why [`split_csv`] stopped early.
#[derive(Debug)]
enum SplitError<E> {
    /// The CSV is malformed.
    Csv(CsvError),
    /// The caller's record handler failed.
    Record(E),
}

/// Split the complete CSV records at the start of `buf` into fields, as Postgres 15 reads
/// CSV, handing each record to `record` (which returns whether to go on): a record ends at a
/// newline (`\n` or `\r\n`) outside quotes; inside quotes the delimiter and newlines are
/// data, and `escape` followed by `quote` or `escape` stands for that character (with the
/// default escape, the quote itself, `""` is one `"`). Quoted and unquoted parts of a field
/// join (`a"b,c"d` is `ab,cd`). Returns the number of bytes of the records handed over. A
/// last record without a newline counts only `at_end`, where an open quote is an error.
/// Runs of plain bytes are skipped with `memchr`, and a field stays a slice of `buf` unless
/// quotes come out of its middle.
fn split_csv<'b, E>(
    buf: &'b [u8],
    delimiter: u8,
    quote: u8,
    escape: u8,
    at_end: bool,
    mut record: impl FnMut(&[CsvField<'b>]) -> Result<bool, E>,
) -> Result<usize, SplitError<E>> {
    let mut fields: Vec<CsvField<'b>> = vec![];
    let mut field = FieldText::at(0);
    let (mut quoted, mut in_quotes, mut i, mut consumed) = (false, false, 0, 0);
    let mut records = 0;
    let end_field = |fields: &mut Vec<CsvField<'b>>, field: &mut FieldText, next, quoted| {
        fields.push(CsvField {
            text: field.take(buf, next),
            quoted,
        });
    };
    while i < buf.len() {
        if in_quotes {
            let Some(at) = memchr::memchr2(quote, escape, &buf[i..]) else {
                break;
            };
            let p = i + at;
            field.push(buf, i, p);
            i = match buf.get(p + 1) {
                Some(&next) if buf[p] == escape && (next == quote || next == escape) => {
                    field.push(buf, p + 1, p + 2);
                    p + 2
                }
                _ if buf[p] == quote => {
                    in_quotes = false;
                    p + 1
                }
                _ => {
                    field.push(buf, p, p + 1);
                    p + 1
                }
            };
            continue;
        }
        let Some(at) = memchr::memchr3(delimiter, quote, b'\n', &buf[i..]) else {
            if at_end {
                // The last record lacks its newline; a lone `\r` ends it too.
                let end = if buf.ends_with(b"\r") {
                    buf.len() - 1
                } else {
                    buf.len()
                };
                field.push(buf, i, end.max(i));
            }
            break;
        };
        let p = i + at;
        if buf[p] == b'\n' {
            // `\r\n`: the `\r` belongs to the newline.
            let end = if p > i && buf[p - 1] == b'\r' {
                p - 1
            } else {
                p
            };
            field.push(buf, i, end);
            end_field(&mut fields, &mut field, p + 1, std::mem::take(&mut quoted));
            records += 1;
            let go_on = record(&fields).map_err(SplitError::Record)?;
            fields.clear();
            consumed = p + 1;
            if !go_on {
                return Ok(consumed);
            }
        } else if buf[p] == quote {
            field.push(buf, i, p);
            in_quotes = true;
            quoted = true;
        } else {
            field.push(buf, i, p);
            end_field(&mut fields, &mut field, p + 1, std::mem::take(&mut quoted));
        }
        i = p + 1;
    }
    if at_end && consumed < buf.len() {
        if in_quotes {
            return Err(SplitError::Csv(CsvError {
                record: records,
                message: "unterminated CSV quoted field",
                start: consumed,
            }));
        }
        end_field(&mut fields, &mut field, buf.len(), quoted);
        record(&fields).map_err(SplitError::Record)?;
        return Ok(buf.len());
    }
    Ok(consumed)
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

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::AsArray;

    /// Fields of `split_csv` with the default options, as (text, quoted).
    fn split(buf: &str, at_end: bool) -> (Vec<Vec<(String, bool)>>, usize) {
        let mut records = vec![];
        let n = split_csv::<()>(buf.as_bytes(), b',', b'"', b'"', at_end, |r| {
            records.push(
                r.iter()
                    .map(|f| (String::from_utf8(f.text.to_vec()).unwrap(), f.quoted))
                    .collect(),
            );
            Ok(true)
        })
        .unwrap();
        (records, n)
    }

    fn f(text: &str, quoted: bool) -> (String, bool) {
        (text.to_string(), quoted)
    }

    #[test]
    fn quoted_empty_field_is_not_the_null_string() {
        let (records, n) = split("1,,\"\"\n", false);
        assert_eq!(n, 6);
        assert_eq!(
            records,
            vec![vec![f("1", false), f("", false), f("", true)]]
        );
    }

    #[test]
    fn quotes_hold_delimiters_newlines_and_doubled_quotes() {
        let (records, _) = split("\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\"\r\nx\n", false);
        assert_eq!(
            records,
            vec![
                vec![f("a,b", true), f("say \"hi\"", true), f("two\nlines", true)],
                vec![f("x", false)],
            ]
        );
        // Quoted and unquoted parts of one field join, as in Postgres.
        assert_eq!(split("a\"b,c\"d\n", false).0, vec![vec![f("ab,cd", true)]]);
    }

    #[test]
    fn incomplete_records_wait_for_more_data() {
        // A newline inside quotes does not end the record.
        assert_eq!(split("1,\"open\n", false), (vec![], 0));
        // Only complete records are consumed.
        let (records, n) = split("1,a\n2,\"b", false);
        assert_eq!((records.len(), n), (1, 4));
        // At the end, the last record needs no newline, but an open quote is an error.
        assert_eq!(
            split("1,a", true).0,
            vec![vec![f("1", false), f("a", false)]]
        );
        let e = split_csv::<()>(b"1,a\n2,\"b", b',', b'"', b'"', true, |_| Ok(true));
        let Err(SplitError::Csv(e)) = e else {
            panic!("an open quote at the end is an error: {e:?}");
        };
        assert_eq!(e.record, 1);
        assert_eq!(e.message, "unterminated CSV quoted field");
    }

    /// Rows (as text) and the last line of `input` parsed by one parser from line `after`.
    fn parse_rows(format: &Format, input: &[u8], after: u64, at_end: bool) -> (Vec<String>, u64) {
        let mut p = RowParser::new(2, format.clone());
        p.buf = input.to_vec();
        p.line = after;
        p.parse_complete(at_end).unwrap();
        let lines = p.lines.clone();
        let rows = match p.take_batch().unwrap() {
            None => vec![],
            Some(b) => (0..b.num_rows())
                .map(|r| {
                    let col = |c: usize| b.column(c).as_string::<i32>().value(r).to_string();
                    format!("{}|{}@{}", col(0), col(1), lines[r])
                })
                .collect(),
        };
        (rows, p.line)
    }

    #[test]
    fn chunks_cut_at_record_ends_parse_as_the_whole_input_does() {
        let csv = Format::Csv {
            delimiter: b',',
            quote: b'"',
            escape: b'"',
            null: "NULL".into(),
            force_not_null: vec![],
            force_null: vec![],
        };
        let text = Format::Text {
            delimiter: b'|',
            null: "NULL".into(),
            escapes: Escapes::Redshift,
            remove_quotes: false,
        };
        let cases = [
            (
                csv,
                5,
                "1,\"a\nb\"\r\n2,\"say \"\"hi\"\"\n\"\n3,x\r\n4,\"\"\"\"\n5,y",
            ),
            (text, 4, "1|a\\\nb\n\n2|c\\\\\n3|d\\|e\n4|z"),
        ];
        for (format, rows, input) in &cases {
            let input = input.as_bytes();
            let whole = parse_rows(format, input, 0, true);
            assert_eq!(whole.0.len(), *rows, "{whole:?}");
            for cut in 0..=input.len() {
                let (lines, end) = complete_records(format, &input[..cut]);
                let (mut rows, line) = parse_rows(format, &input[..end], 0, false);
                assert_eq!(line, lines, "lines before byte {end}");
                let (rest, last) = parse_rows(format, &input[end..], lines, true);
                rows.extend(rest);
                assert_eq!((&rows, last), (&whole.0, whole.1), "cut at {cut}");
            }
        }
    }

    #[test]
    fn a_separate_escape_character() {
        let mut texts: Vec<Vec<u8>> = vec![];
        split_csv::<()>(
            b"\"a\\\"b\\\\c\",\"\\d\"\n",
            b',',
            b'"',
            b'\\',
            false,
            |r| {
                texts.extend(r.iter().map(|f| f.text.to_vec()));
                Ok(true)
            },
        )
        .unwrap();
        assert_eq!(texts, vec![b"a\"b\\c".to_vec(), b"\\d".to_vec()]);
    }
}
