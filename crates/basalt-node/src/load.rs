//! Redshift's `COPY table [(columns)] FROM '<location>' <parameters>`: every object under an
//! S3 prefix (or local path prefix), parsed as delimited text or CSV, decompressed, placed on
//! the slices by DISTSTYLE, in one transaction.
//!
//! ```text
//!  parameters (basalt-sql lifts them) -> LoadOptions
//!  S3Settings: config file < AWS_* environment < the statement's credentials / REGION
//!  basalt-io: list the prefix -> read each object (GZIP/BZIP2/ZSTD) -> CopyIn (the parser of
//!             COPY FROM STDIN) -> TableWriter (conform, place, write segments)
//! ```
//!
//! A failure anywhere (a missing prefix, a bad row, a lost endpoint) fails the statement and
//! its transaction rolls back: nothing of the COPY is visible.

use basalt_io::{Compression, Location, S3Settings, Storage};
use basalt_sql::CopyParameter;
use basalt_sql::sqlparser::ast::{CopySource, CopyTarget, Statement};
use tokio::io::AsyncReadExt;
use tracing::{Instrument, info, info_span};

use crate::copy::{CopyIn, Format};
use crate::dml::TableWriter;
use crate::session::StatementOutput;
use crate::{NodeError, Session};

/// Bytes read from an object at a time.
const READ_CHUNK: usize = 1 << 20;

/// The parameters of a COPY from a location that this build applies.
#[derive(Debug)]
struct LoadOptions {
    csv: bool,
    delimiter: u8,
    quote: u8,
    null: String,
    escapes: bool,
    ignore_header: u64,
    compression: Compression,
    /// The statement's own credentials and region, over the environment's.
    settings: S3Settings,
}

fn one_byte(name: &str, value: &str) -> Result<u8, NodeError> {
    match value.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        // Redshift's tab: DELIMITER '\t'.
        b"\\t" => Ok(b'\t'),
        _ => Err(NodeError::invalid(
            "22023",
            format!("COPY {name} must be a single one-byte character, not '{value}'"),
        )),
    }
}

impl LoadOptions {
    fn parse(params: &[CopyParameter]) -> Result<LoadOptions, NodeError> {
        let mut csv = false;
        let mut delimiter = None;
        let mut quote = b'"';
        let mut null = None;
        let mut escapes = false;
        let mut ignore_header = 0;
        let mut compression = Compression::None;
        let mut statement = S3Settings::default();
        let mut keys = false;
        let mut credentials = false;
        for p in params {
            let value = || p.value.clone().unwrap_or_default();
            match p.name.as_str() {
                "CSV" => csv = true,
                "DELIMITER" => delimiter = Some(one_byte("DELIMITER", &value())?),
                "QUOTE" => quote = one_byte("QUOTE", &value())?,
                "NULL" => null = Some(value()),
                "ESCAPE" => escapes = true,
                "IGNOREHEADER" => {
                    ignore_header = value().parse().map_err(|_| {
                        NodeError::invalid("22023", "IGNOREHEADER takes a number of lines")
                    })?
                }
                "GZIP" => compression = Compression::Gzip,
                "BZIP2" => compression = Compression::Bzip2,
                "ZSTD" => compression = Compression::Zstd,
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
                // Encodings and statistics are chosen as for any load.
                "COMPUPDATE" | "STATUPDATE" | "COMPROWS" => {}
                "ENCODING" if value().eq_ignore_ascii_case("utf8") => {}
                other => {
                    return Err(NodeError::unsupported(format!(
                        "COPY parameter {other} (not yet)"
                    )));
                }
            }
        }
        if keys && (statement.access_key_id.is_none() || statement.secret_access_key.is_none()) {
            return Err(NodeError::invalid(
                "22023",
                "ACCESS_KEY_ID and SECRET_ACCESS_KEY go together",
            ));
        }
        if keys && credentials {
            return Err(NodeError::invalid(
                "22023",
                "CREDENTIALS cannot be combined with ACCESS_KEY_ID / SECRET_ACCESS_KEY",
            ));
        }
        if csv && escapes {
            return Err(NodeError::invalid(
                "22023",
                "COPY: ESCAPE cannot be used with CSV",
            ));
        }
        Ok(LoadOptions {
            csv,
            delimiter: delimiter.unwrap_or(if csv { b',' } else { b'|' }),
            quote,
            // Redshift: `\N` in delimited text; in CSV an empty unquoted field.
            null: null.unwrap_or_else(|| if csv { String::new() } else { "\\N".into() }),
            escapes,
            ignore_header,
            compression,
            settings: statement,
        })
    }

    fn format(&self, width: usize) -> Format {
        if self.csv {
            Format::Csv {
                delimiter: self.delimiter,
                quote: self.quote,
                escape: self.quote,
                null: self.null.clone(),
                force_not_null: vec![false; width],
                force_null: vec![false; width],
            }
        } else {
            Format::Text {
                delimiter: self.delimiter,
                null: self.null.clone(),
                escapes: self.escapes,
            }
        }
    }
}

impl Session {
    /// `COPY table [(columns)] FROM '<location>' <parameters>`: load every object under the
    /// location's prefix, in this statement's transaction.
    pub(crate) async fn copy_from_location(
        &mut self,
        stmt: &Statement,
        params: &[CopyParameter],
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
        let opts = LoadOptions::parse(params)?;
        let location = Location::parse(filename)?;
        let settings = self
            .leader
            .config()
            .s3
            .overlaid_with(&S3Settings::from_env())
            .overlaid_with(&opts.settings);
        let storage = Storage::open(&location, &settings)?;
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
        let (table, targets, plan) = self.copy_target(table_name, columns).await?;
        let writer = TableWriter::new(self, table.id);
        let mut load = CopyIn::new(writer, plan, targets.len(), opts.format(targets.len()));
        let total: u64 = files.iter().map(|f| f.size).sum();
        info!(table = %table.name, location = %location.url(), files = files.len(), bytes = total, "COPY started");
        for (n, file) in files.iter().enumerate() {
            let read = self
                .load_file(&storage, file, &opts, &mut load)
                .instrument(info_span!("copy_file", url = %file.url, size = file.size))
                .await;
            if let Err(e) = read {
                load.writer.abandon(self);
                return Err(e);
            }
            info!(file = %file.url, done = n + 1, of = files.len(), "COPY file loaded");
        }
        let (table_id, was_empty) = (load.writer.table_id(), load.writer.was_empty);
        let rows = load.writer.finish(self, false).await?;
        // Redshift's COPY updates the statistics of a table it loads from empty.
        if was_empty && rows > 0 {
            self.analyze_after_load(table_id).await?;
        }
        info!(table = %table.name, rows, "COPY done");
        Ok(StatementOutput::command_rows("COPY", rows))
    }

    /// Feed one object through the parser; errors name the object.
    async fn load_file(
        &mut self,
        storage: &Storage,
        file: &basalt_io::ObjectFile,
        opts: &LoadOptions,
        load: &mut CopyIn,
    ) -> Result<(), NodeError> {
        let named = |e: NodeError| match e {
            NodeError::InvalidInput { sqlstate, message } => NodeError::InvalidInput {
                sqlstate,
                message: format!("{message} (file {})", file.url),
            },
            other => other,
        };
        load.next_input(opts.ignore_header);
        let mut reader = storage.read(file, opts.compression).await?;
        let mut chunk = vec![0u8; READ_CHUNK];
        loop {
            let n = reader
                .read(&mut chunk)
                .await
                .map_err(|source| basalt_io::IoError::Read {
                    url: file.url.clone(),
                    source,
                })?;
            if n == 0 {
                break;
            }
            load.feed(self, &chunk[..n]).await.map_err(named)?;
        }
        load.end_input(self).await.map_err(named)
    }
}
