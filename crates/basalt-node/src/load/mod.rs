//! Redshift's `COPY table [(columns)] FROM '<location>' <parameters>`: every object under an
//! S3 prefix (or local path prefix), or the files a manifest lists, parsed as delimited text,
//! CSV or fixed-width text, decompressed, converted under the COPY's data conversion rules,
//! placed on the slices by DISTSTYLE, in one transaction.
//!
//! ```text
//!  parameters (basalt-sql lifts them) -> LoadOptions
//!  S3Settings: config file < AWS_* environment < the statement's credentials / REGION
//!  leader: list the prefix | read the manifest -> skip what the ledger holds -> LoadSpec
//!     -> a share of the files per compute node (exec.rs), or one on the leader
//!  each share: read each object (GZIP/BZIP2/ZSTD) in chunks -> parse (RowParser, with
//!     Redshift's row rules) -> convert (reject rows up to MAXERROR) -> TableWriter (place,
//!     write segments) -> events back to the leader
//!  leader: MAXERROR over all shares -> commit the segments, the ledger, STL_LOAD_COMMITS
//! ```
//!
//! A failure anywhere (a missing prefix, more bad rows than MAXERROR allows, a lost endpoint)
//! fails the statement and its transaction rolls back: nothing of the COPY is visible. The rows
//! it rejected stay in STL_LOAD_ERRORS either way; the files of a committed COPY are in
//! STL_LOAD_COMMITS.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use basalt_catalog::{Encoding, LoadedObject, SegmentMeta, SliceId, TableMeta};
use basalt_io::{Compression, Location, ObjectFile, S3Settings, Storage};
use basalt_sql::CopyParameter;
use basalt_sql::sqlparser::ast::{CopySource, CopyTarget, Statement};
use basalt_storage::ComputeCluster;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::Utc;
use futures::StreamExt;
use tokio::io::AsyncReadExt;
use tracing::{Instrument, info, info_span, warn};

use crate::convert::{LoadError, Rejects, Rules, TimeFormat};
use crate::copy::{
    CopyIn, Escapes, Format, ParsedChunk, ROWS_PER_BATCH, RedshiftRows, RowParser, complete_records,
};
use crate::dml::{ColumnSource, TableWriter};
use crate::json::JsonSpec;
use crate::loadlog::{FileCommit, LoadProgress, LoadRun};
use crate::session::StatementOutput;
use crate::stats::WriteStats;
use crate::{NodeError, Session};

mod exec;

pub(crate) use exec::{
    CopyPlanner, LoadEvent, Reporter, decode as decode_share, encode as encode_share,
};

/// Bytes read from an object at a time.
const READ_CHUNK: usize = 1 << 20;
/// Redshift's largest MAXERROR.
const MAXERROR_LIMIT: u64 = 100_000;

/// The layout of the files.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FileFormat {
    /// Redshift's delimited text (pipe by default).
    Delimited,
    Csv,
    /// `FIXEDWIDTH 'label:width,...'`: the widths in characters.
    FixedWidth(Vec<usize>),
    /// `JSON 'auto' | 'auto ignorecase' | 's3://jsonpaths'`; the paths file is read when the
    /// COPY starts.
    Json(JsonArg),
    /// Columns map by position.
    Parquet,
    /// `AVRO 'auto' | 'auto ignorecase'`: fields map to the columns of the same name.
    Avro {
        ignore_case: bool,
    },
}

/// JSON's argument as written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum JsonArg {
    Auto { ignore_case: bool },
    PathsFile(String),
}

impl FileFormat {
    /// Lines of text, which load in chunks parsed side by side.
    fn is_text(&self) -> bool {
        matches!(
            self,
            FileFormat::Delimited | FileFormat::Csv | FileFormat::FixedWidth(_)
        )
    }

    /// STL_LOAD_COMMITS.file_format.
    fn name(&self) -> &'static str {
        match self {
            FileFormat::Delimited => "Text",
            FileFormat::Csv => "Csv",
            FileFormat::FixedWidth(_) => "Fixed",
            FileFormat::Json(_) => "Json",
            FileFormat::Parquet => "Parquet",
            FileFormat::Avro { .. } => "Avro",
        }
    }
}

/// The parameters of a COPY from a location that this build applies.
#[derive(Debug)]
struct LoadOptions {
    format: FileFormat,
    delimiter: u8,
    quote: u8,
    null: String,
    escapes: bool,
    remove_quotes: bool,
    ignore_header: u64,
    compression: Compression,
    manifest: bool,
    max_errors: u64,
    fill_record: bool,
    accept_invchars: Option<char>,
    explicit_ids: bool,
    /// NOLOAD: check the files, load nothing.
    no_load: bool,
    /// FORCE: load objects the load ledger says were loaded already.
    force: bool,
    /// COMPUPDATE: OFF keeps the columns' encodings; unset or ON lets ENCODE AUTO choose on
    /// a load into an empty table.
    comp_update: Option<bool>,
    /// STATUPDATE: ON analyzes the table after the load, OFF never; unset, after a load into
    /// an empty table.
    stat_update: Option<bool>,
    rules: Rules,
    /// The statement's own credentials and region, over the environment's.
    settings: S3Settings,
}

fn one_byte(name: &str, value: &str) -> Result<u8, NodeError> {
    match value.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        // Redshift's tab: DELIMITER '\t'; octal: '\ddd'.
        b"\\t" => Ok(b'\t'),
        [b'\\', o @ ..] if o.len() == 3 && o.iter().all(|d| (b'0'..=b'7').contains(d)) => {
            u8::from_str_radix(&value[1..], 8)
                .ok()
                .filter(u8::is_ascii)
                .ok_or_else(|| bad_byte(name, value))
        }
        _ => Err(bad_byte(name, value)),
    }
}

/// `COMPUPDATE` / `STATUPDATE` `[ON | TRUE | OFF | FALSE]` (bare: ON). COMPUPDATE PRESET is
/// ON here: ENCODE AUTO's choice is the preset.
fn on_off(name: &str, value: Option<&str>) -> Result<bool, NodeError> {
    match value.map(str::to_ascii_uppercase).as_deref() {
        None | Some("ON" | "TRUE") => Ok(true),
        Some("PRESET") if name == "COMPUPDATE" => Ok(true),
        Some("OFF" | "FALSE") => Ok(false),
        Some(other) => Err(invalid(format!(
            "COPY {name} takes ON or OFF, not '{other}'"
        ))),
    }
}

fn bad_byte(name: &str, value: &str) -> NodeError {
    NodeError::invalid(
        "22023",
        format!("COPY {name} must be a single one-byte character, not '{value}'"),
    )
}

fn invalid(message: impl Into<String>) -> NodeError {
    NodeError::invalid("22023", message)
}

/// `FIXEDWIDTH 'id:4,name:10'` of `command` (COPY, UNLOAD): the widths, in characters.
pub(crate) fn fixed_widths(command: &str, spec: &str) -> Result<Vec<usize>, NodeError> {
    spec.split(',')
        .map(|part| {
            let (_, width) = part.rsplit_once(':').ok_or_else(|| {
                invalid(format!(
                    "{command} FIXEDWIDTH: '{part}' is not label:width (in '{spec}')"
                ))
            })?;
            width
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|w| *w > 0)
                .ok_or_else(|| invalid(format!("{command} FIXEDWIDTH: bad width in '{part}'")))
        })
        .collect()
}

impl LoadOptions {
    fn parse(params: &[CopyParameter]) -> Result<LoadOptions, NodeError> {
        let mut format = FileFormat::Delimited;
        let mut delimiter = None;
        let mut quote = None;
        let mut null = None;
        let mut escapes = false;
        let mut remove_quotes = false;
        let mut ignore_header = 0;
        let mut compression = Compression::None;
        let mut manifest = false;
        let mut max_errors = 0;
        let mut fill_record = false;
        let mut accept_invchars = None;
        let mut explicit_ids = false;
        let mut no_load = false;
        let mut force = false;
        let mut comp_update = None;
        let mut stat_update = None;
        let mut rules = Rules::default();
        let mut statement = S3Settings::default();
        let mut keys = false;
        let mut credentials = false;
        for p in params {
            let value = || p.value.clone().unwrap_or_default();
            let number = |what: &str| {
                value()
                    .parse::<u64>()
                    .map_err(|_| invalid(format!("COPY {what} takes a number")))
            };
            match p.name.as_str() {
                "CSV" => format = FileFormat::Csv,
                "FIXEDWIDTH" => format = FileFormat::FixedWidth(fixed_widths("COPY", &value())?),
                "PARQUET" => format = FileFormat::Parquet,
                "JSON" => {
                    let arg = p.value.clone().unwrap_or_else(|| "auto".into());
                    format = FileFormat::Json(match arg.to_ascii_lowercase().as_str() {
                        "auto" => JsonArg::Auto { ignore_case: false },
                        "auto ignorecase" => JsonArg::Auto { ignore_case: true },
                        "noshred" => {
                            return Err(NodeError::unsupported("COPY JSON 'noshred' (SUPER)"));
                        }
                        _ => JsonArg::PathsFile(arg),
                    })
                }
                "AVRO" => {
                    let arg = p.value.clone().unwrap_or_else(|| "auto".into());
                    format = FileFormat::Avro {
                        ignore_case: match arg.to_ascii_lowercase().as_str() {
                            "auto" => false,
                            "auto ignorecase" => true,
                            _ => {
                                return Err(NodeError::unsupported(
                                    "COPY AVRO with a JSONPaths file (use 'auto' or 'auto \
                                     ignorecase')",
                                ));
                            }
                        },
                    };
                }
                "ORC" => return Err(NodeError::unsupported("COPY from ORC files")),
                "DELIMITER" => delimiter = Some(one_byte("DELIMITER", &value())?),
                "QUOTE" => quote = Some(one_byte("QUOTE", &value())?),
                "NULL" => null = Some(value()),
                "ESCAPE" => escapes = true,
                "REMOVEQUOTES" => remove_quotes = true,
                "IGNOREHEADER" => ignore_header = number("IGNOREHEADER")?,
                "GZIP" => compression = Compression::Gzip,
                "BZIP2" => compression = Compression::Bzip2,
                "ZSTD" => compression = Compression::Zstd,
                "MANIFEST" => manifest = true,
                "MAXERROR" => {
                    max_errors = number("MAXERROR")?;
                    if max_errors > MAXERROR_LIMIT {
                        return Err(invalid(format!(
                            "COPY MAXERROR is at most {MAXERROR_LIMIT}, not {max_errors}"
                        )));
                    }
                }
                "IGNOREALLERRORS" => max_errors = u64::MAX,
                "FILLRECORD" => fill_record = true,
                "ACCEPTINVCHARS" => {
                    let c = p.value.as_deref().unwrap_or("?");
                    let mut chars = c.chars();
                    accept_invchars = match (chars.next(), chars.next()) {
                        (Some(c), None) if c.is_ascii() => Some(c),
                        _ => {
                            return Err(invalid(format!(
                                "COPY ACCEPTINVCHARS takes one ASCII character, not '{c}'"
                            )));
                        }
                    };
                }
                "EXPLICIT_IDS" => explicit_ids = true,
                "NOLOAD" => no_load = true,
                "FORCE" => force = true,
                "BLANKSASNULL" => rules.blanks_as_null = true,
                "EMPTYASNULL" => rules.empty_as_null = true,
                "TRIMBLANKS" => rules.trim_blanks = true,
                "TRUNCATECOLUMNS" => rules.truncate_columns = true,
                "ROUNDEC" => rules.round_decimals = true,
                "ACCEPTANYDATE" => rules.accept_any_date = true,
                "DATEFORMAT" => rules.date_format = TimeFormat::parse(&value(), true)?,
                "TIMEFORMAT" => rules.time_format = TimeFormat::parse(&value(), false)?,
                "ACCESS_KEY_ID" => {
                    keys = true;
                    statement.access_key_id = p.value.clone();
                }
                "SECRET_ACCESS_KEY" => {
                    keys = true;
                    statement.secret_access_key = p.value.clone();
                }
                "SESSION_TOKEN" => statement.session_token = p.value.clone(),
                "CREDENTIALS" => {
                    credentials = true;
                    let c = S3Settings::from_credentials(&value())?;
                    statement.access_key_id = c.access_key_id;
                    statement.secret_access_key = c.secret_access_key;
                    statement.session_token = c.session_token;
                }
                "REGION" => statement.region = p.value.clone(),
                // Accepted: the configured credentials stand for the role (no STS here).
                "IAM_ROLE" => {}
                "COMPUPDATE" => comp_update = Some(on_off("COMPUPDATE", p.value.as_deref())?),
                "STATUPDATE" => stat_update = Some(on_off("STATUPDATE", p.value.as_deref())?),
                // ENCODE AUTO weighs its first rows; blank lines are always skipped.
                "COMPROWS" | "IGNOREBLANKLINES" => {}
                "ENCODING" if value().eq_ignore_ascii_case("utf8") => {}
                other => {
                    return Err(NodeError::unsupported(format!(
                        "COPY parameter {other} (not yet)"
                    )));
                }
            }
        }
        if keys && (statement.access_key_id.is_none() || statement.secret_access_key.is_none()) {
            return Err(invalid("ACCESS_KEY_ID and SECRET_ACCESS_KEY go together"));
        }
        if keys && credentials {
            return Err(invalid(
                "CREDENTIALS cannot be combined with ACCESS_KEY_ID / SECRET_ACCESS_KEY",
            ));
        }
        let csv = format == FileFormat::Csv;
        let fixed = matches!(format, FileFormat::FixedWidth(_));
        for (set, what) in [(escapes, "ESCAPE"), (remove_quotes, "REMOVEQUOTES")] {
            if set && csv {
                return Err(invalid(format!("COPY: {what} cannot be used with CSV")));
            }
            if set && fixed {
                return Err(invalid(format!(
                    "COPY: {what} cannot be used with FIXEDWIDTH"
                )));
            }
        }
        let other = matches!(
            format,
            FileFormat::Json(_) | FileFormat::Parquet | FileFormat::Avro { .. }
        );
        if other
            && (escapes
                || remove_quotes
                || delimiter.is_some()
                || null.is_some()
                || fill_record
                || ignore_header > 0)
        {
            return Err(invalid(
                "COPY: ESCAPE, REMOVEQUOTES, DELIMITER, NULL AS, FILLRECORD and IGNOREHEADER \
                 apply to text files, not JSON, PARQUET or AVRO",
            ));
        }
        if matches!(format, FileFormat::Parquet | FileFormat::Avro { .. })
            && compression != Compression::None
        {
            return Err(invalid(format!(
                "COPY: {} files carry their own compression; GZIP, BZIP2 and ZSTD do not apply",
                format.name().to_ascii_uppercase()
            )));
        }
        if quote.is_some() && !csv {
            return Err(invalid("COPY: QUOTE is used only with CSV"));
        }
        if fixed && delimiter.is_some() {
            return Err(invalid("COPY: DELIMITER cannot be used with FIXEDWIDTH"));
        }
        Ok(LoadOptions {
            delimiter: delimiter.unwrap_or(if csv { b',' } else { b'|' }),
            quote: quote.unwrap_or(b'"'),
            // Redshift: `\N` in delimited text; in CSV an empty unquoted field.
            null: null.unwrap_or_else(|| if csv { String::new() } else { "\\N".into() }),
            format,
            escapes,
            remove_quotes,
            ignore_header,
            compression,
            manifest,
            max_errors,
            fill_record,
            accept_invchars,
            explicit_ids,
            no_load,
            force,
            comp_update,
            stat_update,
            rules,
            settings: statement,
        })
    }

    fn parser_format(&self, width: usize) -> Format {
        match &self.format {
            FileFormat::Csv => Format::Csv {
                delimiter: self.delimiter,
                quote: self.quote,
                escape: self.quote,
                null: self.null.clone(),
                force_not_null: vec![false; width],
                force_null: vec![false; width],
            },
            FileFormat::Delimited => Format::Text {
                delimiter: self.delimiter,
                null: self.null.clone(),
                escapes: if self.escapes {
                    Escapes::Redshift
                } else {
                    Escapes::None
                },
                remove_quotes: self.remove_quotes,
            },
            FileFormat::FixedWidth(widths) => Format::Fixed {
                widths: widths.clone(),
                null: self.null.clone(),
            },
            // Records arrive already split (JSON) or typed (Parquet); `,` joins fields in
            // STL_LOAD_ERRORS.raw_line.
            FileFormat::Json(_) | FileFormat::Parquet | FileFormat::Avro { .. } => Format::Csv {
                delimiter: b',',
                quote: b'"',
                escape: b'"',
                null: String::new(),
                force_not_null: vec![],
                force_null: vec![],
            },
        }
    }
}

/// Chunks read ahead of the one being written: enough to keep every core parsing.
pub(crate) fn chunks_ahead() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) + 1
}

/// What the reading task of a text load sends, in file order.
enum Chunk {
    /// A chunk of whole records of `files[file]`, being parsed on the blocking pool.
    Parsing {
        file: usize,
        parsing: tokio::task::JoinHandle<Result<ParsedChunk, NodeError>>,
    },
    /// `files[file]` was read to its end: its chunks were all sent.
    FileEnd { file: usize },
}

/// Aborts a task when the COPY waiting on it ends (a failure, a cancel).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads the files of a text load and cuts them into chunks of whole records, each parsed
/// by its own task. Records progress (bytes read, the file being read) as it goes.
struct ChunkReader {
    files: Vec<(Arc<Storage>, ObjectFile)>,
    compression: Compression,
    ignore_header: u64,
    /// The settings every chunk's parser copies.
    parser: RowParser,
    /// Bytes a chunk takes (whole records: a chunk grows until one ends).
    chunk_bytes: usize,
    progress: Arc<LoadProgress>,
    /// The files are Parquet: a chunk is a row group.
    parquet: bool,
}

impl ChunkReader {
    async fn run(self, tx: tokio::sync::mpsc::Sender<Result<Chunk, NodeError>>) {
        let mut bytes_done = 0;
        for (n, (storage, file)) in self.files.iter().enumerate() {
            self.progress.current_file.lock().clone_from(&file.url);
            let span = info_span!("copy_file", url = %file.url, size = file.size);
            let read = if self.parquet {
                self.read_parquet_file(n, storage, file, bytes_done, &tx)
                    .instrument(span)
                    .await
            } else {
                self.read_file(n, storage, file, bytes_done, &tx)
                    .instrument(span)
                    .await
            };
            let sent = match read {
                Ok(()) => tx.send(Ok(Chunk::FileEnd { file: n })).await,
                Err(e) => tx.send(Err(e)).await,
            };
            if sent.is_err() {
                // The COPY stopped waiting (it failed or was canceled).
                return;
            }
            bytes_done += file.size;
            self.progress
                .bytes_loaded
                .store(bytes_done, Ordering::Relaxed);
        }
    }

    /// Send the chunks of one file.
    async fn read_file(
        &self,
        n: usize,
        storage: &Storage,
        file: &ObjectFile,
        bytes_done: u64,
        tx: &tokio::sync::mpsc::Sender<Result<Chunk, NodeError>>,
    ) -> Result<(), NodeError> {
        let mut reader = storage.read(file, self.compression).await?;
        let format = self.parser.format();
        let read_size = READ_CHUNK.min(self.chunk_bytes);
        let mut pending: Vec<u8> = Vec::with_capacity(self.chunk_bytes + read_size);
        // Lines before `pending`; header lines still to skip (all in the file's first chunk).
        let (mut after, mut skip) = (0u64, self.ignore_header);
        let mut read_total = 0u64;
        loop {
            let start = pending.len();
            pending.resize(start + read_size, 0);
            let got = reader.read(&mut pending[start..]).await.map_err(|source| {
                basalt_io::IoError::Read {
                    url: file.url.clone(),
                    source,
                }
            })?;
            pending.truncate(start + got);
            // Progress in the object's bytes as stored: known as they are read when it is
            // not compressed, at its end when it is.
            read_total += got as u64;
            if self.compression == Compression::None {
                self.progress
                    .bytes_loaded
                    .store(bytes_done + read_total.min(file.size), Ordering::Relaxed);
            }
            let at_end = got == 0;
            let cut = if at_end {
                Some((0, pending.len()))
            } else if pending.len() >= self.chunk_bytes {
                match complete_records(format, &pending) {
                    (lines, end) if lines > skip => Some((lines, end)),
                    _ => None,
                }
            } else {
                None
            };
            let Some((lines, end)) = cut else {
                continue;
            };
            let rest = pending.split_off(end);
            let chunk = std::mem::replace(&mut pending, rest);
            pending.reserve(self.chunk_bytes + read_size);
            let parser = self.parser.for_chunk(&file.url);
            let parsing =
                tokio::task::spawn_blocking(move || parser.parse_chunk(chunk, after, skip, at_end));
            if tx
                .send(Ok(Chunk::Parsing { file: n, parsing }))
                .await
                .is_err()
                || at_end
            {
                return Ok(());
            }
            (after, skip) = (after + lines, 0);
        }
    }
}

impl ChunkReader {
    /// Send the row groups of one Parquet file, each read, decoded and converted by a task
    /// of its own.
    async fn read_parquet_file(
        &self,
        n: usize,
        storage: &Arc<Storage>,
        file: &ObjectFile,
        bytes_done: u64,
        tx: &tokio::sync::mpsc::Sender<Result<Chunk, NodeError>>,
    ) -> Result<(), NodeError> {
        let layout = storage.parquet_layout(file).await?;
        let (mut after, mut read) = (0u64, 0u64);
        for (group, (rows, bytes)) in layout.row_groups.iter().enumerate() {
            let batches = storage.parquet_row_group(file, &layout, group, ROWS_PER_BATCH)?;
            let parser = self.parser.for_chunk(&file.url);
            let url = file.url.clone();
            let parsing = tokio::spawn(
                parser
                    .convert_batches(batches, after, move |source| {
                        basalt_io::IoError::Parquet {
                            url: url.clone(),
                            source,
                        }
                        .into()
                    })
                    .in_current_span(),
            );
            if tx
                .send(Ok(Chunk::Parsing { file: n, parsing }))
                .await
                .is_err()
            {
                return Ok(());
            }
            after += rows;
            read += bytes;
            self.progress
                .bytes_loaded
                .store(bytes_done + read.min(file.size), Ordering::Relaxed);
        }
        Ok(())
    }
}

/// An error of one file's rows names the file.
fn name_file(e: NodeError, url: &str) -> NodeError {
    match e {
        NodeError::InvalidInput { sqlstate, message } if !message.contains(url) => {
            NodeError::InvalidInput {
                sqlstate,
                message: format!("{message} (file {url})"),
            }
        }
        other => other,
    }
}

/// A file loaded to its end: progress and the log line where the share runs; the leader
/// hears of it to write its STL_LOAD_COMMITS row.
async fn file_done(
    source: &Source,
    lines: u64,
    errors: usize,
    progress: &LoadProgress,
    report: &mut Reporter,
) -> Result<(), NodeError> {
    let done = progress.files_done.fetch_add(1, Ordering::Relaxed) + 1;
    progress.lines.fetch_add(lines, Ordering::Relaxed);
    info!(query = progress.run.query, file = %source.file.url, lines, errors, done, of = progress.files, "COPY file loaded");
    report
        .send(LoadEvent::File {
            index: source.index,
            lines,
            errors: errors as u64,
        })
        .await
}

/// One file to load, the bucket it is in, and its place in the COPY's list of files.
struct Source {
    storage: Arc<Storage>,
    /// The location the storage was opened at (the prefix, or the manifest's entry).
    location: String,
    file: ObjectFile,
    index: usize,
}

/// A manifest: `{"entries": [{"url": "s3://...", "mandatory": true}, ...]}`.
#[derive(serde::Deserialize)]
struct Manifest {
    entries: Vec<ManifestEntry>,
}

#[derive(serde::Deserialize)]
struct ManifestEntry {
    url: String,
    #[serde(default)]
    mandatory: bool,
}

/// Everything the shares of one COPY need, wherever they run: the leader builds it, and it
/// travels to the compute nodes inside [`exec::CopyLoadExec`].
pub(crate) struct LoadSpec {
    run: LoadRun,
    /// The COPY's parameters as written (each node parses them again).
    params: Vec<CopyParameter>,
    opts: LoadOptions,
    /// The leader's config, environment and statement credentials, layered.
    settings: S3Settings,
    /// The table as the COPY's transaction sees it, without its segment lists.
    table: Arc<TableMeta>,
    targets: Vec<String>,
    plan: Vec<ColumnSource>,
    json: Option<JsonSpec>,
    /// Every file of the COPY, in order: (the location its storage opens at, the file).
    files: Vec<(String, ObjectFile)>,
    chunk_bytes: usize,
    /// The table held no rows before (ENCODE AUTO chooses encodings on such a load).
    was_empty: bool,
}

impl std::fmt::Debug for LoadSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No parameters or settings: they may hold credentials.
        f.debug_struct("LoadSpec")
            .field("query", &self.run.query)
            .field("table", &self.table.name)
            .field("format", &self.opts.format)
            .field("files", &self.files.len())
            .finish_non_exhaustive()
    }
}

/// What the shares of a COPY brought back to the leader.
#[derive(Default)]
struct Collected {
    rejects: Vec<LoadError>,
    /// Files loaded: (index in the COPY's files, lines, rejected rows).
    files: Vec<(usize, u64, u64)>,
    /// Segments written, per task in the order written.
    written: BTreeMap<usize, Vec<(SliceId, Vec<SegmentMeta>)>>,
    /// What each task reported when it was done.
    done: BTreeMap<usize, ShareDone>,
}

/// A share's rows, next IDENTITY values, chosen encodings, EVEN position and the statistics
/// of its rows (encoded, base64).
struct ShareDone {
    rows: u64,
    identity: BTreeMap<u32, i64>,
    encodings: Vec<Encoding>,
    rr: u64,
    stats: Option<String>,
}

impl LoadSpec {
    /// The parser every chunk's parser copies.
    fn row_parser(&self) -> RowParser {
        let columns = self
            .targets
            .iter()
            .map(|t| self.table.column(t).cloned().expect("target columns exist"))
            .collect();
        let mut rows = RowParser::new(
            self.targets.len(),
            self.opts.parser_format(self.targets.len()),
        );
        rows.redshift = Some(RedshiftRows {
            rules: self.opts.rules.clone(),
            rejects: Rejects {
                max: self.opts.max_errors,
                table: self.table.name.clone(),
                found: vec![],
            },
            fill_record: self.opts.fill_record,
            accept_invchars: self.opts.accept_invchars,
            columns,
            file: String::new(),
        });
        rows
    }

    /// Whether the shares gather the statistics of the rows they write: the table was empty
    /// (they are all its rows) and STATUPDATE is not OFF. A COPY with STATUPDATE ON into a
    /// table with rows analyzes the whole table after the load instead.
    fn gathers_stats(&self) -> bool {
        self.was_empty && self.opts.stat_update != Some(false)
    }

    /// Whether the files can be parsed where the compute nodes are: in object storage, or
    /// on a disk every node shares with the leader (its own process's).
    fn on_nodes(&self, compute: &ComputeCluster) -> bool {
        let shared_disk = compute.local_nodes().len() == compute.nodes().len();
        let remote = self.files.iter().all(|(at, _)| at.starts_with("s3://"));
        shared_disk || remote
    }

    /// Load the files `share` (indices into the COPY's files) through `compute`, placing EVEN
    /// rows from `rr` on and numbering IDENTITY values as share `numbering.0` of
    /// `numbering.1`; tell `report` what was done. The segments written are the caller's
    /// once reported; on failure they are removed.
    pub(crate) async fn run_share(
        &self,
        share: &[usize],
        compute: Arc<ComputeCluster>,
        rr: u64,
        numbering: (usize, usize),
        report: &mut Reporter,
    ) -> Result<(), NodeError> {
        let mut stores: BTreeMap<&str, Arc<Storage>> = BTreeMap::new();
        let mut files = vec![];
        for &index in share {
            let (location, file) = &self.files[index];
            let storage = match stores.get(location.as_str()) {
                Some(s) => s.clone(),
                None => {
                    let s = Arc::new(Storage::open(&Location::parse(location)?, &self.settings)?);
                    stores.insert(location, s.clone());
                    s
                }
            };
            files.push(Source {
                storage,
                location: location.clone(),
                file: file.clone(),
                index,
            });
        }
        let mut writer = TableWriter::with(self.table.clone(), compute, rr, self.was_empty);
        writer.number_as_share(numbering.0, numbering.1);
        if self.opts.comp_update == Some(false) {
            writer.keep_encodings();
        }
        if self.gathers_stats() {
            writer.gather_stats()?;
        }
        let mut load = CopyIn::new(writer, self.plan.clone(), self.row_parser());
        load.check_only = self.opts.no_load;
        let total = files.iter().map(|f| f.file.size).sum();
        let progress = Arc::new(LoadProgress::new(
            Arc::new(self.run.clone()),
            files.len() as u64,
            total,
        ));
        let ticker = AbortOnDrop(tokio::spawn(report.progress_ticker(progress.clone())));
        let read = if self.opts.format.is_text() || self.opts.format == FileFormat::Parquet {
            load_text_files(
                &files,
                &self.opts,
                &mut load,
                &progress,
                self.chunk_bytes,
                report,
            )
            .await
        } else {
            load_each_file(&files, self, &mut load, &progress, report).await
        };
        // Rows rejected are reported whether or not the share goes on.
        report.rejects(&load).await?;
        read?;
        load.writer.write_rest().await?;
        drop(ticker);
        report.progress(&progress).await?;
        let (rows, rr) = (load.writer.rows(), load.writer.rr());
        let identity = load.writer.identity().clone();
        let encodings = load
            .writer
            .table()
            .columns
            .iter()
            .map(|c| c.encoding)
            .collect();
        let stats = match load.writer.take_stats() {
            Some(mut s) => Some(BASE64.encode(s.encode()?)),
            None => None,
        };
        for (slice, segments) in load.writer.take_written() {
            report.send(LoadEvent::Written { slice, segments }).await?;
        }
        report
            .send(LoadEvent::Done {
                rows,
                identity,
                encodings,
                rr,
                stats,
            })
            .await
    }
}

impl Session {
    /// Object storage settings for a statement: the config file's, under the `AWS_*`
    /// environment, under the statement's own credentials and region.
    pub(crate) fn s3_settings(&self, statement: &S3Settings) -> S3Settings {
        self.leader
            .config()
            .s3
            .overlaid_with(&S3Settings::from_env())
            .overlaid_with(statement)
    }

    /// `COPY table [(columns)] FROM '<location>' <parameters>`: load every object under the
    /// location's prefix (or in its manifest), in this statement's transaction. The COPY is
    /// in STL_QUERY (its text without credentials), under the id `pg_last_copy_id()` gives.
    pub(crate) async fn copy_from_location(
        &mut self,
        stmt: &Statement,
        params: &[CopyParameter],
    ) -> Result<StatementOutput, NodeError> {
        let query = self.leader.query_log().next_id();
        let start = Utc::now().naive_utc();
        let out = self.load_location(stmt, params, query).await;
        self.leader.query_log().record_statement(
            query,
            self.id as i32,
            &self.user,
            &self.statement_text,
            start,
            out.is_err(),
        );
        out
    }

    async fn load_location(
        &mut self,
        stmt: &Statement,
        params: &[CopyParameter],
        query: i64,
    ) -> Result<StatementOutput, NodeError> {
        let Statement::Copy {
            source:
                CopySource::Table {
                    table_name,
                    columns,
                },
            to: false,
            target: CopyTarget::File { filename },
            ..
        } = stmt
        else {
            return Err(NodeError::unsupported(
                "this form of COPY with Redshift parameters",
            ));
        };
        // PG_LAST_COPY_ID names this COPY from now on, even if it fails.
        self.last_copy.set(query, 0);
        let opts = LoadOptions::parse(params)?;
        let (table, targets, plan) = self
            .copy_target(table_name, columns, Some(opts.explicit_ids))
            .await?;
        let run = Arc::new(LoadRun {
            query,
            user: self.user.clone(),
            pid: self.id as i32,
            table_id: table.id.0,
            table: table.name.clone(),
            start: Utc::now().naive_utc(),
        });
        let location = Location::parse(filename)?;
        let settings = self.s3_settings(&opts.settings);
        let files = if opts.manifest {
            manifest_files(&location, &settings).await?
        } else {
            let storage = Arc::new(Storage::open(&location, &settings)?);
            let files = storage.list_prefix().await?;
            if files.is_empty() {
                return Err(NodeError::invalid(
                    "58P01",
                    format!(
                        "COPY: no objects match '{}' (the prefix must name at least one file)",
                        location.url()
                    ),
                ));
            }
            files
                .into_iter()
                .map(|file| Source {
                    storage: storage.clone(),
                    location: location.url(),
                    file,
                    index: 0,
                })
                .collect()
        };
        // The load ledger: objects loaded before (same URL, ETag and size) are skipped.
        let ledger = self.txn_table(table.id).loaded;
        let (mut files, skipped): (Vec<Source>, Vec<Source>) = files.into_iter().partition(|f| {
            opts.force
                || !ledger
                    .get(&f.file.url)
                    .is_some_and(|l| l.size == f.file.size && l.etag == f.file.etag)
        });
        if !skipped.is_empty() {
            let names: Vec<&str> = skipped
                .iter()
                .take(3)
                .map(|f| f.file.url.as_str())
                .collect();
            let more = if skipped.len() > 3 { ", ..." } else { "" };
            info!(table = %table.name, skipped = skipped.len(), "COPY skipped files already loaded");
            self.notice(format!(
                "COPY skipped {} file(s) already loaded into \"{}\" (same ETag and size): {}{more}; \
                 FORCE loads them again",
                skipped.len(),
                table.name,
                names.join(", ")
            ));
        }
        if files.is_empty() {
            return Ok(StatementOutput::command_rows("COPY", 0));
        }
        for (index, f) in files.iter_mut().enumerate() {
            f.index = index;
        }
        let json = match &opts.format {
            FileFormat::Json(JsonArg::Auto { ignore_case }) => Some(JsonSpec::Auto {
                ignore_case: *ignore_case,
            }),
            FileFormat::Json(JsonArg::PathsFile(url)) => {
                let at = Location::parse(url)?;
                let storage = Storage::open(&at, &settings)?;
                let object = storage.head().await?;
                let paths = crate::json::parse_paths_file(&storage.read_all(&object).await?, url)?;
                if paths.len() != targets.len() {
                    return Err(invalid(format!(
                        "COPY: the JSONPaths file {url} has {} expressions and the COPY loads {} \
                         columns",
                        paths.len(),
                        targets.len()
                    )));
                }
                Some(JsonSpec::Paths(paths))
            }
            _ => None,
        };
        let was_empty = table.data.slices.values().all(|s| s.is_empty());
        let mut bare = table.clone();
        bare.data = Default::default();
        let (no_load, format) = (opts.no_load, opts.format.name());
        let spec = Arc::new(LoadSpec {
            run: (*run).clone(),
            params: params.to_vec(),
            opts,
            settings,
            table: Arc::new(bare),
            targets,
            plan,
            json,
            files: files
                .iter()
                .map(|s| (s.location.clone(), s.file.clone()))
                .collect(),
            chunk_bytes: self.leader.config().copy_chunk_bytes,
            was_empty,
        });
        let total: u64 = files.iter().map(|f| f.file.size).sum();
        info!(query = run.query, table = %table.name, location = %location.url(), files = files.len(), bytes = total, "COPY started");
        let running = self
            .leader
            .load_log()
            .start(run.clone(), files.len() as u64, total);
        // Until the shares report, the COPY is reading its first file.
        running
            .progress
            .current_file
            .lock()
            .clone_from(&files[0].file.url);
        let mut got = Collected::default();
        let read = self.load_shares(&spec, &running.progress, &mut got).await;
        // Rejected rows are logged whether or not the COPY goes on to commit.
        let errors = got.rejects.len();
        self.leader
            .load_log()
            .record_errors(&run, std::mem::take(&mut got.rejects));
        read?;
        if no_load {
            info!(query = run.query, table = %table.name, errors, "COPY checked the files (NOLOAD)");
            return Ok(StatementOutput::command_rows("COPY", 0));
        }
        // The table as written: the encodings ENCODE AUTO chose (the first share's that
        // wrote rows), the IDENTITY values used.
        let mut written_table = table.clone();
        let mut identity = table.identity_next.clone();
        let mut rows = 0;
        let mut chosen = false;
        for done in got.done.values() {
            rows += done.rows;
            // The next value is past every share's last one.
            for (col, next) in &done.identity {
                let at = identity.entry(*col).or_insert(*next);
                let descending = table
                    .columns
                    .iter()
                    .find(|c| c.id == *col)
                    .and_then(|c| c.identity.as_ref())
                    .is_some_and(|id| id.step < 0);
                *at = if descending {
                    (*at).min(*next)
                } else {
                    (*at).max(*next)
                };
            }
            if !chosen && done.rows > 0 {
                chosen = true;
                for (c, e) in written_table.columns.iter_mut().zip(&done.encodings) {
                    c.encoding = *e;
                }
            }
        }
        // EVEN placement goes on from where the shares got to.
        if let Some(rr) = got.done.values().map(|d| d.rr).max() {
            self.rr = rr;
        }
        let written = std::mem::take(&mut got.written)
            .into_values()
            .flatten()
            .collect();
        // Redshift's COPY updates the statistics of a table it loads from empty (STATUPDATE
        // says otherwise): from the shares' statistics of their rows, or by analyzing the
        // table when it held rows before.
        let stats = match spec.gathers_stats() && rows > 0 {
            true => Some(share_stats(&written_table, got.done.values())?),
            false => None,
        };
        let analyze = rows > 0 && stats.is_none() && spec.opts.stat_update.unwrap_or(was_empty);
        crate::dml::commit_written(self, &written_table, written, rows, identity, false, stats);
        if analyze {
            self.analyze_after_load(table.id).await?;
        }
        self.last_copy.set(run.query, rows as i64);
        // The ledger commits with the rows.
        let loaded_at = Utc::now()
            .naive_utc()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        let t = self
            .txn_mut()
            .txn
            .table_mut(table.id)
            .expect("the loaded table exists");
        for source in &files {
            t.loaded.insert(
                source.file.url.clone(),
                LoadedObject {
                    etag: source.file.etag.clone(),
                    size: source.file.size,
                    query: run.query,
                    loaded_at: loaded_at.clone(),
                },
            );
        }
        got.files.sort_unstable();
        let at = Utc::now().naive_utc();
        let commits = got
            .files
            .iter()
            .map(|&(index, lines, errors)| FileCommit {
                file: files[index].file.url.clone(),
                bytes: files[index].file.size,
                lines,
                errors,
                format,
                at,
            })
            .collect();
        self.leader.load_log().record_commits(&run, commits);
        if errors > 0 {
            warn!(query = run.query, table = %table.name, rows, errors, "COPY done, rows rejected (STL_LOAD_ERRORS)");
        } else {
            info!(query = run.query, table = %table.name, rows, "COPY done");
        }
        Ok(StatementOutput::command_rows("COPY", rows))
    }

    /// Run the COPY's shares: one per compute node, each parsing its files where it runs,
    /// when the files can be read there; otherwise one, here. What they report lands in
    /// `got` (and the files they wrote in the transaction, to be removed if it rolls back);
    /// more rejected rows in all than MAXERROR allows fail the COPY.
    async fn load_shares(
        &mut self,
        spec: &Arc<LoadSpec>,
        progress: &LoadProgress,
        got: &mut Collected,
    ) -> Result<(), NodeError> {
        let compute = self.leader.compute().clone();
        let nodes = compute.topology.nodes as usize;
        let shares = if nodes > 1 && spec.on_nodes(&compute) {
            nodes
        } else {
            1
        };
        let work = Arc::new(exec::CopyWork::new(spec.clone(), shares, compute, self.rr));
        let mut stream = if shares > 1 {
            self.check_nodes_up()?;
            let plan = exec::CopyNode::plan(work)?;
            let df = self.ctx.execute_logical_plan(plan).await?;
            let task_ctx = Arc::new(df.task_ctx());
            let physical = df.create_physical_plan().await?;
            datafusion::physical_plan::execute_stream(physical, task_ctx)?
        } else {
            let whole = basalt_mpp::NodeWork::for_task(work.as_ref(), 0, 1)?;
            datafusion::physical_plan::execute_stream(whole, self.ctx.task_ctx())?
        };
        let mut rejects = Rejects {
            max: spec.opts.max_errors,
            table: spec.table.name.clone(),
            found: vec![],
        };
        let mut read: BTreeMap<usize, (u64, String)> = BTreeMap::new();
        let result = async {
            while let Some(batch) = stream.next().await {
                for (task, event) in exec::events_of(&batch?)? {
                    match event {
                        LoadEvent::Progress { bytes, file } => {
                            read.insert(task, (bytes, file));
                            let total = read.values().map(|(b, _)| b).sum();
                            progress.bytes_loaded.store(total, Ordering::Relaxed);
                            if let Some((_, file)) = read.get(&task) {
                                progress.current_file.lock().clone_from(file);
                            }
                        }
                        LoadEvent::Rejected(found) => {
                            for e in found {
                                rejects.reject(e.into())?;
                            }
                        }
                        LoadEvent::File {
                            index,
                            lines,
                            errors,
                        } => {
                            progress.files_done.fetch_add(1, Ordering::Relaxed);
                            progress.lines.fetch_add(lines, Ordering::Relaxed);
                            got.files.push((index, lines, errors));
                        }
                        LoadEvent::Written { slice, segments } => {
                            let open = self.txn.as_mut().expect("transaction open");
                            for s in &segments {
                                open.written.insert((slice, spec.table.id, s.file.clone()));
                            }
                            got.written.entry(task).or_default().push((slice, segments));
                        }
                        LoadEvent::Failed { sqlstate, message } => {
                            return Err(NodeError::invalid(
                                crate::error::known_sqlstate(&sqlstate),
                                message,
                            ));
                        }
                        LoadEvent::Done {
                            rows,
                            identity,
                            encodings,
                            rr,
                            stats,
                        } => {
                            got.done.insert(
                                task,
                                ShareDone {
                                    rows,
                                    identity,
                                    encodings,
                                    rr,
                                    stats,
                                },
                            );
                        }
                    }
                }
            }
            Ok::<(), NodeError>(())
        }
        .await;
        got.rejects = rejects.found;
        result
    }
}

/// The statistics of a table a COPY filled from empty: its shares' merged.
fn share_stats<'a>(
    table: &TableMeta,
    shares: impl Iterator<Item = &'a ShareDone>,
) -> Result<basalt_catalog::TableStats, NodeError> {
    let mut all = WriteStats::new(&table.columns)?;
    for share in shares {
        match &share.stats {
            Some(encoded) => {
                let bytes = BASE64.decode(encoded).map_err(|e| NodeError::Internal {
                    message: format!("the load statistics of a share are not base64: {e}"),
                })?;
                all.merge_encoded(&bytes)?;
            }
            None if share.rows == 0 => {}
            None => {
                return Err(NodeError::Internal {
                    message: "a share of the COPY wrote rows without their statistics".into(),
                });
            }
        }
    }
    all.finish(&table.columns)
}

/// Load JSON files one after another, each through `load`.
async fn load_each_file(
    files: &[Source],
    spec: &LoadSpec,
    load: &mut CopyIn,
    progress: &LoadProgress,
    report: &mut Reporter,
) -> Result<(), NodeError> {
    let mut bytes_done = 0;
    for source in files {
        let rejected_before = load.rows.rejected();
        progress.current_file.lock().clone_from(&source.file.url);
        load_file(source, spec, load)
            .instrument(info_span!("copy_file", url = %source.file.url, size = source.file.size))
            .await?;
        bytes_done += source.file.size;
        progress.bytes_loaded.store(bytes_done, Ordering::Relaxed);
        let errors = load.rows.rejected() - rejected_before;
        report.rejects(load).await?;
        file_done(source, load.rows.line, errors, progress, report).await?;
    }
    Ok(())
}

/// Load delimited, CSV, fixed-width or Parquet files: a reading task cuts them into chunks
/// of whole records (a Parquet file's chunks are its row groups), tasks parse or decode and
/// convert the chunks side by side, and here the chunks' rows are written (and their
/// rejects counted against MAXERROR) in file order, so a load's rows, errors and line
/// numbers do not depend on the timing.
async fn load_text_files(
    files: &[Source],
    opts: &LoadOptions,
    load: &mut CopyIn,
    progress: &Arc<LoadProgress>,
    chunk_bytes: usize,
    report: &mut Reporter,
) -> Result<(), NodeError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(chunks_ahead());
    let reading = ChunkReader {
        files: files
            .iter()
            .map(|s| (s.storage.clone(), s.file.clone()))
            .collect(),
        compression: opts.compression,
        ignore_header: opts.ignore_header,
        parser: load.rows.for_chunk(""),
        chunk_bytes,
        progress: progress.clone(),
        parquet: opts.format == FileFormat::Parquet,
    };
    let _reader = AbortOnDrop(tokio::spawn(
        reading.run(tx).instrument(tracing::Span::current()),
    ));
    let (mut line, mut ended, mut rejected_before) = (0, false, 0);
    while let Some(item) = rx.recv().await {
        match item? {
            Chunk::Parsing { file, parsing } => {
                let parsed = parsing
                    .await
                    .map_err(|e| NodeError::Internal {
                        message: format!("a COPY parser failed: {e}"),
                    })?
                    .map_err(|e| name_file(e, &files[file].file.url))?;
                if ended {
                    continue;
                }
                (line, ended) = (parsed.line, parsed.ended);
                if let Some(r) = &mut load.rows.redshift {
                    for e in parsed.rejects {
                        r.rejects.reject(e)?;
                    }
                }
                report.rejects(load).await?;
                for batch in &parsed.batches {
                    load.push_converted(batch).await?;
                }
            }
            Chunk::FileEnd { file } => {
                let errors = load.rows.rejected() - rejected_before;
                rejected_before = load.rows.rejected();
                file_done(&files[file], line, errors, progress, report).await?;
                (line, ended) = (0, false);
            }
        }
    }
    Ok(())
}

/// Feed one JSON object through the parser; errors name the object.
async fn load_file(source: &Source, spec: &LoadSpec, load: &mut CopyIn) -> Result<(), NodeError> {
    let file = &source.file;
    let named = |e: NodeError| name_file(e, &file.url);
    load.rows.next_input(spec.opts.ignore_header);
    if let Some(r) = &mut load.rows.redshift {
        r.file.clone_from(&file.url);
    }
    if let FileFormat::Avro { ignore_case } = spec.opts.format {
        return load_avro(source, spec, load, ignore_case)
            .await
            .map_err(named);
    }
    let Some(json) = &spec.json else {
        return Err(NodeError::Internal {
            message: format!("no JSON spec for a {} load", spec.opts.format.name()),
        });
    };
    let reader = source.storage.read(file, spec.opts.compression).await?;
    let read_size = READ_CHUNK.min(spec.chunk_bytes);
    load_json(reader, &file.url, read_size, json, &spec.targets, load)
        .await
        .map_err(named)
}

/// Load an Avro object container file: decoded block by block on the blocking pool (memory
/// holds a batch, not the file), its fields matched to the COPY's columns by name (`'auto'`;
/// `'auto ignorecase'`: whatever their case; a column without a field is NULL, a field
/// without a column is skipped), the values converted under the COPY's rules like
/// Parquet's, a row's number being its "line".
async fn load_avro(
    source: &Source,
    spec: &LoadSpec,
    load: &mut CopyIn,
    ignore_case: bool,
) -> Result<(), NodeError> {
    use datafusion::arrow::array::{ArrayRef, RecordBatch, new_null_array};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let url = source.file.url.clone();
    let reader = source.storage.read(&source.file, Compression::None).await?;
    let bad_file = |e: &dyn std::fmt::Display| {
        NodeError::invalid("22P04", format!("not a readable Avro file: {e}"))
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let input = std::io::BufReader::new(tokio_util::io::SyncIoBridge::new(reader));
    // Ends when the file does, or when the COPY stops receiving.
    tokio::task::spawn_blocking(move || {
        let batches = match arrow_avro::reader::ReaderBuilder::new()
            .with_batch_size(ROWS_PER_BATCH)
            .build(input)
        {
            Ok(b) => b,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        for batch in batches {
            if tx.blocking_send(batch).is_err() {
                return;
            }
        }
    });
    while let Some(batch) = rx.recv().await {
        let batch = batch.map_err(|e| bad_file(&e))?;
        let fields = batch.schema();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(spec.targets.len());
        let mut types = Vec::with_capacity(spec.targets.len());
        for target in &spec.targets {
            let found = fields.fields().iter().position(|f| {
                f.name() == target || (ignore_case && f.name().eq_ignore_ascii_case(target))
            });
            let column = match found {
                Some(i) => batch.column(i).clone(),
                None => new_null_array(&DataType::Utf8, batch.num_rows()),
            };
            types.push(Field::new(
                format!("c{}", types.len()),
                column.data_type().clone(),
                true,
            ));
            columns.push(column);
        }
        let picked = RecordBatch::try_new(Arc::new(Schema::new(types)), columns)?;
        let converted = load.rows.typed_batch(picked)?;
        load.push_converted(&converted).await?;
    }
    tracing::debug!(file = %url, "Avro file read");
    load.flush().await
}

/// Load the JSON values of a stream (the object at `url`) read `read_size` bytes at a time: memory holds the
/// values not yet parsed (the one being read, at least), never the whole file.
async fn load_json(
    mut reader: basalt_io::ObjectReader,
    url: &str,
    read_size: usize,
    spec: &JsonSpec,
    targets: &[String],
    load: &mut CopyIn,
) -> Result<(), NodeError> {
    // `buf[start..]`: input not yet parsed, whose first line is `start_line`.
    let (mut buf, mut start, mut start_line) = (Vec::<u8>::new(), 0usize, 1u64);
    let mut at_end = false;
    loop {
        // Read more: the first time, and when what is buffered ends inside a value.
        if !at_end {
            buf.drain(..start);
            start = 0;
            let from = buf.len();
            buf.resize(from + read_size.max(1), 0);
            let got =
                reader
                    .read(&mut buf[from..])
                    .await
                    .map_err(|source| basalt_io::IoError::Read {
                        url: url.to_string(),
                        source,
                    })?;
            buf.truncate(from + got);
            at_end = got == 0;
        }
        let bytes = &buf[..];
        let mut line = start_line;
        let mut values =
            serde_json::Deserializer::from_slice(&bytes[start..]).into_iter::<serde_json::Value>();
        let mut need_more = false;
        loop {
            let from = start + values.byte_offset();
            match values.next() {
                None => {
                    // Only blanks are left.
                    (start, start_line) = (bytes.len(), line);
                    need_more = !at_end;
                    break;
                }
                Some(Ok(_)) if !at_end && start + values.byte_offset() == bytes.len() => {
                    // A value reaching the end of what was read may go on (a number).
                    (start, start_line) = (from, line);
                    need_more = true;
                    break;
                }
                Some(Ok(value)) => {
                    let raw = &bytes[from..start + values.byte_offset()];
                    // The line the value ends on (STL_LOAD_ERRORS' rule for JSON).
                    line += memchr::memchr_iter(b'\n', raw).count() as u64;
                    let raw = raw.trim_ascii();
                    match crate::json::fields(&value, spec, targets) {
                        Ok(fields) => load.rows.push_record(line, raw, fields)?,
                        Err(reason) => load.rows.reject_record(line, raw, reason)?,
                    }
                    if load.rows.buffered() >= ROWS_PER_BATCH {
                        load.flush().await?;
                    }
                }
                Some(Err(e)) if e.is_eof() && !at_end => {
                    (start, start_line) = (from, line);
                    need_more = true;
                    break;
                }
                Some(Err(e)) => {
                    // Reject what is left of the line the error is on; go on after it.
                    let bad_line = start_line + e.line().saturating_sub(1) as u64;
                    let Some(next) = memchr::memchr_iter(b'\n', &bytes[start..])
                        .nth(e.line().saturating_sub(1))
                        .map(|i| start + i + 1)
                        .or(at_end.then_some(bytes.len()))
                    else {
                        // The line goes on past what was read.
                        need_more = true;
                        break;
                    };
                    let raw = bytes[from.min(next)..next].trim_ascii();
                    load.rows
                        .reject_record(bad_line, raw, format!("Invalid JSON: {e}"))?;
                    (start, start_line) = (next, bad_line + 1);
                    break;
                }
            }
        }
        if !need_more && at_end && start >= buf.len() {
            break;
        }
    }
    load.flush().await
}

/// The files a manifest lists. A missing `mandatory` file fails the COPY; a missing optional
/// one is skipped.
async fn manifest_files(
    location: &Location,
    settings: &S3Settings,
) -> Result<Vec<Source>, NodeError> {
    let storage = Storage::open(location, settings)?;
    let object = storage.head().await?;
    let bytes = storage.read_all(&object).await?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        NodeError::invalid(
            "22P02",
            format!("COPY: the manifest {} is not valid: {e}", object.url),
        )
    })?;
    let mut files = vec![];
    for entry in manifest.entries {
        let storage = Arc::new(Storage::open(&Location::parse(&entry.url)?, settings)?);
        match storage.head().await {
            Ok(file) => files.push(Source {
                storage,
                location: entry.url.clone(),
                file,
                index: 0,
            }),
            Err(e) if e.is_not_found() && !entry.mandatory => {
                warn!(url = %entry.url, manifest = %object.url, "COPY: optional manifest file not found, skipped");
            }
            Err(e) if e.is_not_found() => {
                return Err(NodeError::invalid(
                    "58P01",
                    format!(
                        "COPY: the mandatory file {} of manifest {} does not exist",
                        entry.url, object.url
                    ),
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if files.is_empty() {
        return Err(NodeError::invalid(
            "58P01",
            format!("COPY: manifest {} names no file that exists", object.url),
        ));
    }
    Ok(files)
}
