//! # basalt-io — object storage for COPY and UNLOAD
//!
//! Stage on the query path: **load / export**. A COPY source or an UNLOAD target is a
//! [`Location`]: `s3://bucket/prefix` on any S3-compatible endpoint, or a local path
//! (`/dir/prefix`, `file:///dir/prefix`). Both go through the `object_store` crate, so the
//! same code lists, reads and writes them:
//!
//! ```text
//!  COPY t FROM 's3://b/p' ACCESS_KEY_ID .. GZIP
//!     │  S3Settings: environment (AWS_*) < config file < the statement's credentials
//!     ▼  Storage::open(location) -> object_store (S3 path-style, or the local file system)
//!  Storage::list_prefix  -> every object whose key starts with the prefix (Redshift's rule)
//!  Storage::read         -> the object's bytes as a stream, decompressed (GZIP/BZIP2/ZSTD)
//! ```
//!
//! Secrets never leave [`S3Settings`] in text: its `Debug` shows whether they are set, not
//! what they are.

mod settings;

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use tokio::io::{AsyncRead, BufReader};
use tokio_util::io::StreamReader;

pub use settings::S3Settings;

/// The record batches of a Parquet object.
pub type ParquetBatches = parquet::arrow::async_reader::ParquetRecordBatchStream<ParquetObject>;

/// A Parquet object's metadata ([`Storage::parquet_layout`]).
#[derive(Debug, Clone)]
pub struct ParquetLayout {
    metadata: ArrowReaderMetadata,
    /// Each row group's rows and compressed bytes.
    pub row_groups: Vec<(u64, u64)>,
}

/// `schema` with its top-level string and binary views as plain strings and binaries, if it
/// has any.
fn without_views(schema: &arrow::datatypes::SchemaRef) -> Option<arrow::datatypes::SchemaRef> {
    use arrow::datatypes::{DataType, Field, Schema};
    let plain = |f: &Arc<Field>| match f.data_type() {
        DataType::Utf8View => Some(f.as_ref().clone().with_data_type(DataType::Utf8)),
        DataType::BinaryView => Some(f.as_ref().clone().with_data_type(DataType::Binary)),
        _ => None,
    };
    if !schema.fields().iter().any(|f| plain(f).is_some()) {
        return None;
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| plain(f).unwrap_or_else(|| f.as_ref().clone()))
        .collect();
    Some(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

/// A Parquet object read by byte ranges: the footer first, then the column chunks.
pub struct ParquetObject {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    size: u64,
}

/// Bytes fetched with the footer, so small files need one request for their metadata.
const PARQUET_FOOTER_HINT: usize = 64 * 1024;

impl AsyncFileReader for ParquetObject {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> BoxFuture<'_, parquet::errors::Result<bytes::Bytes>> {
        async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<bytes::Bytes>>> {
        async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a parquet::arrow::arrow_reader::ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_prefetch_hint(Some(PARQUET_FOOTER_HINT))
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// Errors reaching or reading object storage.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// Not an `s3://` URL or a local path.
    #[error("invalid location '{location}': {reason}")]
    InvalidLocation { location: String, reason: String },
    /// A CREDENTIALS string that does not parse.
    #[error("invalid credentials: {0}")]
    Credentials(String),
    /// The store refused or failed a request.
    #[error("{url}: {source}")]
    Store {
        url: String,
        #[source]
        source: object_store::Error,
    },
    /// A Parquet file that cannot be read.
    #[error("{url}: {source}")]
    Parquet {
        url: String,
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Reading (or decompressing) an object's bytes failed.
    #[error("{url}: {source}")]
    Read {
        url: String,
        #[source]
        source: std::io::Error,
    },
}

impl IoError {
    /// The Postgres SQLSTATE of the error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            IoError::InvalidLocation { .. } | IoError::Credentials(_) => "22023",
            IoError::Parquet { .. } => "22P04",
            _ if self.is_not_found() => "58P01",
            _ if self.is_denied() => "42501",
            IoError::Store { .. } | IoError::Read { .. } => "58030",
        }
    }

    /// The object (or bucket) does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            IoError::Store {
                source: object_store::Error::NotFound { .. },
                ..
            } => true,
            IoError::Store { source, .. } => http_status(source) == Some(404),
            _ => false,
        }
    }

    /// The store refused the credentials.
    pub fn is_denied(&self) -> bool {
        match self {
            IoError::Store {
                source:
                    object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. },
                ..
            } => true,
            IoError::Store { source, .. } => matches!(http_status(source), Some(401 | 403)),
            _ => false,
        }
    }
}

/// The HTTP status of a failed S3 request that object_store reports as a generic error (its
/// list requests do): the status is only in the text of the error's source, whose type is
/// private to object_store.
fn http_status(e: &object_store::Error) -> Option<u16> {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        let text = err.to_string();
        if let Some(at) = text.find("status code: ") {
            let code = &text[at + "status code: ".len()..];
            if let Some(n) = code.get(..3).and_then(|c| c.parse().ok()) {
                return Some(n);
            }
        }
        source = err.source();
    }
    None
}

/// Where a COPY reads or an UNLOAD writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `s3://bucket/key-prefix`.
    S3 { bucket: String, key: String },
    /// A local path (absolute after parsing), given as a path or a `file://` URL.
    Local { path: PathBuf },
}

impl Location {
    /// Parse `s3://bucket/prefix`, `file:///path` or a path; relative paths are taken from
    /// the server's working directory.
    pub fn parse(text: &str) -> Result<Location, IoError> {
        let invalid = |reason: &str| IoError::InvalidLocation {
            location: text.to_string(),
            reason: reason.to_string(),
        };
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(invalid("no bucket name"));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                key: key.to_string(),
            });
        }
        let path = if text.starts_with("file:") {
            url::Url::parse(text)
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .ok_or_else(|| invalid("not a file URL with an absolute path"))?
        } else if text.contains("://") {
            return Err(invalid(
                "only s3:// URLs, file:// URLs and local paths are read",
            ));
        } else {
            let p = PathBuf::from(text);
            if p.is_absolute() {
                p
            } else {
                std::env::current_dir()
                    .map_err(|e| invalid(&e.to_string()))?
                    .join(p)
            }
        };
        Ok(Location::Local { path })
    }

    /// The location as a URL: `s3://bucket/key` or `file:///path`.
    pub fn url(&self) -> String {
        match self {
            Location::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
            Location::Local { path } => format!("file://{}", path.display()),
        }
    }
}

/// File compression of a COPY source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Bzip2,
    Zstd,
}

/// One object a COPY reads: its URL, key, size and entity tag (for the load ledger).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFile {
    pub url: String,
    pub path: ObjectPath,
    pub size: u64,
    pub etag: Option<String>,
}

/// A stream writing a new object (compressed as asked).
pub type ObjectWriter = Pin<Box<dyn tokio::io::AsyncWrite + Send>>;

/// The bytes an [`ObjectWriter`] has passed to the object so far: after compression, so
/// the object's size once the writer is shut down.
#[derive(Debug, Clone, Default)]
pub struct StoredBytes(Arc<std::sync::atomic::AtomicU64>);

impl StoredBytes {
    pub fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Counts the bytes written through it into a [`StoredBytes`].
struct Counted<W> {
    inner: W,
    count: StoredBytes,
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Counted<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &polled {
            self.count
                .0
                .fetch_add(*n as u64, std::sync::atomic::Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Bytes read from an object at a time.
const READ_BLOCK: usize = 1 << 20;

/// Bytes an object writer holds before it starts a multipart upload.
const WRITE_BUFFER: usize = 8 << 20;

/// A decompressed stream of an object's bytes.
pub type ObjectReader = Pin<Box<dyn AsyncRead + Send>>;

/// A bucket (or the local file system) and a location in it.
#[derive(Debug, Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    location: Location,
}

/// Retries of a failed request: few and short, so a wrong endpoint fails a statement in
/// seconds rather than minutes.
fn retry() -> RetryConfig {
    RetryConfig {
        max_retries: 2,
        retry_timeout: Duration::from_secs(10),
        ..Default::default()
    }
}

impl Storage {
    /// The store holding `location`, reached with `settings` (S3 only).
    pub fn open(location: &Location, settings: &S3Settings) -> Result<Storage, IoError> {
        let store: Arc<dyn ObjectStore> = match location {
            Location::Local { .. } => Arc::new(LocalFileSystem::new()),
            Location::S3 { bucket, .. } => {
                let mut b = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(settings.region.as_deref().unwrap_or("us-east-1"))
                    .with_virtual_hosted_style_request(false)
                    .with_retry(retry())
                    .with_client_options(
                        ClientOptions::new()
                            .with_connect_timeout(Duration::from_secs(5))
                            // Big objects stream for longer than any fixed request timeout.
                            .with_timeout_disabled()
                            .with_allow_http(
                                settings
                                    .endpoint
                                    .as_deref()
                                    .is_some_and(|e| e.starts_with("http://")),
                            ),
                    );
                if let Some(e) = &settings.endpoint {
                    b = b.with_endpoint(e);
                }
                if let Some(k) = &settings.access_key_id {
                    b = b.with_access_key_id(k);
                }
                if let Some(s) = &settings.secret_access_key {
                    b = b.with_secret_access_key(s);
                }
                if let Some(t) = &settings.session_token {
                    b = b.with_token(t);
                }
                if settings.access_key_id.is_none() {
                    // No credentials: anonymous requests (public buckets, local test servers).
                    b = b.with_skip_signature(true);
                }
                Arc::new(b.build().map_err(|source| IoError::Store {
                    url: location.url(),
                    source,
                })?)
            }
        };
        Ok(Storage {
            store,
            location: location.clone(),
        })
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The location's key (or absolute path) in its store.
    fn key(&self) -> Result<String, IoError> {
        match &self.location {
            Location::S3 { key, .. } => Ok(key.clone()),
            Location::Local { path } => {
                let p =
                    ObjectPath::from_absolute_path(path).map_err(|e| IoError::InvalidLocation {
                        location: path.display().to_string(),
                        reason: e.to_string(),
                    })?;
                // A trailing separator names a directory prefix.
                let trailing = path.to_string_lossy().ends_with('/');
                Ok(if trailing {
                    format!("{p}/")
                } else {
                    p.to_string()
                })
            }
        }
    }

    fn url_of(&self, path: &ObjectPath) -> String {
        match &self.location {
            Location::S3 { bucket, .. } => format!("s3://{bucket}/{path}"),
            Location::Local { .. } => format!("file:///{path}"),
        }
    }

    /// Every object whose key starts with the location's key (Redshift's prefix rule:
    /// `data/part` matches `data/part-0.csv` and `data/part/x.csv`), in key order.
    pub async fn list_prefix(&self) -> Result<Vec<ObjectFile>, IoError> {
        let prefix = self.key()?;
        // object_store lists whole path segments: list the prefix's directory, then keep
        // the keys that start with the prefix.
        let dir = prefix.rfind('/').map(|i| ObjectPath::from(&prefix[..i]));
        let mut files: Vec<ObjectFile> = self
            .store
            .list(dir.as_ref())
            .map_err(|source| IoError::Store {
                url: self.location.url(),
                source,
            })
            .try_filter_map(|meta| {
                let key = meta.location.to_string();
                let keep = key.starts_with(&prefix);
                async move {
                    Ok(keep.then(|| ObjectFile {
                        url: String::new(),
                        path: meta.location,
                        size: meta.size,
                        etag: meta.e_tag,
                    }))
                }
            })
            .try_collect()
            .await
            .or_else(|e| match e {
                // A local prefix whose directory does not exist matches nothing.
                IoError::Store {
                    source: object_store::Error::NotFound { .. },
                    ..
                } if matches!(self.location, Location::Local { .. }) => Ok(vec![]),
                e => Err(e),
            })?;
        files.sort_by(|a, b| a.path.as_ref().cmp(b.path.as_ref()));
        for f in &mut files {
            f.url = self.url_of(&f.path);
        }
        Ok(files)
    }

    /// The bytes of `file`, decompressed.
    /// The object at this location's exact key (not a prefix).
    pub async fn head(&self) -> Result<ObjectFile, IoError> {
        let path = ObjectPath::from(self.key()?.as_str());
        let meta = self
            .store
            .head(&path)
            .await
            .map_err(|source| IoError::Store {
                url: self.location.url(),
                source,
            })?;
        Ok(ObjectFile {
            url: self.url_of(&meta.location),
            path: meta.location,
            size: meta.size,
            etag: meta.e_tag,
        })
    }

    /// A Parquet object's metadata, read once, so that its row groups can be read (and
    /// decoded) side by side with [`Storage::parquet_row_group`].
    pub async fn parquet_layout(&self, file: &ObjectFile) -> Result<ParquetLayout, IoError> {
        let mut reader = ParquetObject {
            store: self.store.clone(),
            path: file.path.clone(),
            size: file.size,
        };
        let err = |source| IoError::Parquet {
            url: file.url.clone(),
            source,
        };
        let mut metadata =
            ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::default())
                .await
                .map_err(err)?;
        // Files written from Arrow's string views (as tpchgen's and DataFusion's are) read as
        // plain strings: decoding into views and converting them costs a copy of every value.
        if let Some(plain) = without_views(metadata.schema()) {
            let options = ArrowReaderOptions::new().with_schema(plain);
            metadata =
                ArrowReaderMetadata::try_new(metadata.metadata().clone(), options).map_err(err)?;
        }
        let row_groups = metadata
            .metadata()
            .row_groups()
            .iter()
            .map(|g| {
                (
                    g.num_rows().max(0) as u64,
                    g.compressed_size().max(0) as u64,
                )
            })
            .collect();
        Ok(ParquetLayout {
            metadata,
            row_groups,
        })
    }

    /// The rows of one row group of a Parquet object, in batches of `batch_rows`.
    pub fn parquet_row_group(
        &self,
        file: &ObjectFile,
        layout: &ParquetLayout,
        group: usize,
        batch_rows: usize,
    ) -> Result<ParquetBatches, IoError> {
        let reader = ParquetObject {
            store: self.store.clone(),
            path: file.path.clone(),
            size: file.size,
        };
        ParquetRecordBatchStreamBuilder::new_with_metadata(reader, layout.metadata.clone())
            .with_batch_size(batch_rows)
            .with_row_groups(vec![group])
            .build()
            .map_err(|source| IoError::Parquet {
                url: file.url.clone(),
                source,
            })
    }

    /// All of an object's bytes (a manifest, a Parquet file).
    pub async fn read_all(&self, file: &ObjectFile) -> Result<bytes::Bytes, IoError> {
        let err = |source| IoError::Store {
            url: file.url.clone(),
            source,
        };
        self.store
            .get(&file.path)
            .await
            .map_err(err)?
            .bytes()
            .await
            .map_err(err)
    }

    pub async fn read(
        &self,
        file: &ObjectFile,
        compression: Compression,
    ) -> Result<ObjectReader, IoError> {
        let got = self
            .store
            .get(&file.path)
            .await
            .map_err(|source| IoError::Store {
                url: file.url.clone(),
                source,
            })?;
        let raw: Pin<Box<dyn tokio::io::AsyncBufRead + Send>> = match got.payload {
            // A local file: read it in large blocks (object_store's stream reads 8 KiB at a
            // time, each on a blocking thread, which costs more than the parsing).
            object_store::GetResultPayload::File(file, _) => Box::pin(BufReader::with_capacity(
                READ_BLOCK,
                tokio::fs::File::from_std(file),
            )),
            object_store::GetResultPayload::Stream(stream) => {
                let bytes = stream.map(|r| r.map_err(|e| std::io::Error::other(e.to_string())));
                Box::pin(BufReader::with_capacity(
                    READ_BLOCK,
                    StreamReader::new(bytes),
                ))
            }
        };
        use async_compression::tokio::bufread::{BzDecoder, GzipDecoder, ZstdDecoder};
        Ok(match compression {
            Compression::None => Box::pin(raw),
            Compression::Gzip => {
                let mut d = GzipDecoder::new(raw);
                // `cat a.gz b.gz` is one valid gzip file.
                d.multiple_members(true);
                Box::pin(d)
            }
            Compression::Bzip2 => {
                let mut d = BzDecoder::new(raw);
                d.multiple_members(true);
                Box::pin(d)
            }
            Compression::Zstd => {
                let mut d = ZstdDecoder::new(raw);
                d.multiple_members(true);
                Box::pin(d)
            }
        })
    }

    /// Write `bytes` to `key` under this store (tests and UNLOAD).
    /// The path of the object named by this location's prefix followed by `suffix`
    /// (`unload/t_` + `0000_part_00`).
    pub fn path_with(&self, suffix: &str) -> Result<ObjectPath, IoError> {
        let key = format!("{}{suffix}", self.key()?);
        ObjectPath::parse(&key).map_err(|e| IoError::InvalidLocation {
            location: key.clone(),
            reason: e.to_string(),
        })
    }

    /// The URL of an object of this store.
    pub fn url(&self, path: &ObjectPath) -> String {
        self.url_of(path)
    }

    /// Write a new object as a stream, compressed with `compression`. The object appears
    /// only when the stream is shut down (an interrupted write leaves no object behind).
    /// The count is of the object's bytes written so far (compressed).
    pub fn create(
        &self,
        path: &ObjectPath,
        compression: Compression,
    ) -> (ObjectWriter, StoredBytes) {
        use async_compression::tokio::write::{BzEncoder, GzipEncoder, ZstdEncoder};
        let count = StoredBytes::default();
        let raw = Counted {
            inner: object_store::buffered::BufWriter::with_capacity(
                self.store.clone(),
                path.clone(),
                WRITE_BUFFER,
            ),
            count: count.clone(),
        };
        let out: ObjectWriter = match compression {
            Compression::None => Box::pin(raw),
            Compression::Gzip => Box::pin(GzipEncoder::new(raw)),
            Compression::Bzip2 => Box::pin(BzEncoder::new(raw)),
            Compression::Zstd => Box::pin(ZstdEncoder::new(raw)),
        };
        (out, count)
    }

    /// Delete an object.
    pub async fn delete(&self, path: &ObjectPath) -> Result<(), IoError> {
        self.store
            .delete(path)
            .await
            .map_err(|source| IoError::Store {
                url: self.url_of(path),
                source,
            })
    }

    pub async fn put(&self, path: &ObjectPath, bytes: bytes::Bytes) -> Result<(), IoError> {
        self.store
            .put(path, bytes.into())
            .await
            .map(|_| ())
            .map_err(|source| IoError::Store {
                url: self.url_of(path),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn locations_parse() {
        assert_eq!(
            Location::parse("s3://bucket/a/b").unwrap(),
            Location::S3 {
                bucket: "bucket".into(),
                key: "a/b".into()
            }
        );
        assert_eq!(
            Location::parse("file:///tmp/x").unwrap(),
            Location::Local {
                path: "/tmp/x".into()
            }
        );
        assert!(Location::parse("s3:///key").is_err());
        assert!(Location::parse("http://host/x").is_err());
    }

    #[tokio::test]
    async fn local_prefix_lists_matching_files_and_reads_them_decompressed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("part-0.csv"), "a\n").unwrap();
        std::fs::create_dir(dir.path().join("part")).unwrap();
        std::fs::write(dir.path().join("part/1.csv"), "b\n").unwrap();
        std::fs::write(dir.path().join("other.csv"), "c\n").unwrap();
        let mut gz = async_compression::tokio::write::GzipEncoder::new(vec![]);
        tokio::io::AsyncWriteExt::write_all(&mut gz, b"zipped\n")
            .await
            .unwrap();
        tokio::io::AsyncWriteExt::shutdown(&mut gz).await.unwrap();
        std::fs::write(dir.path().join("z.gz"), gz.into_inner()).unwrap();

        let loc = Location::parse(&format!("{}/part", dir.path().display())).unwrap();
        let storage = Storage::open(&loc, &S3Settings::default()).unwrap();
        let files = storage.list_prefix().await.unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| f.path.filename().unwrap().to_string())
            .collect();
        assert_eq!(names, ["part-0.csv", "1.csv"].map(String::from).to_vec());
        assert!(files[0].url.starts_with("file:///"));

        let loc = Location::parse(&format!("{}/z.gz", dir.path().display())).unwrap();
        let storage = Storage::open(&loc, &S3Settings::default()).unwrap();
        let files = storage.list_prefix().await.unwrap();
        let mut text = String::new();
        storage
            .read(&files[0], Compression::Gzip)
            .await
            .unwrap()
            .read_to_string(&mut text)
            .await
            .unwrap();
        assert_eq!(text, "zipped\n");

        let missing = Location::parse(&format!("{}/nope/x", dir.path().display())).unwrap();
        let storage = Storage::open(&missing, &S3Settings::default()).unwrap();
        assert!(storage.list_prefix().await.unwrap().is_empty());
    }
}
