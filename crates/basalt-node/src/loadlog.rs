//! The leader's log of loads, behind Redshift's `STL_LOAD_ERRORS` (the rows a COPY rejected,
//! kept whether or not the COPY committed; `STL_LOADERROR_DETAIL` their fields) and `STL_LOAD_COMMITS` (each file a committed COPY
//! loaded). Like the query log it holds the most recent entries in memory.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDateTime;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{Result, ScalarValue};
use parking_lot::Mutex;

use crate::convert::LoadError;
use crate::system_tables::{batch, timestamp, ts_field};

/// Rejected rows and committed files the log keeps.
const KEEP: usize = 100_000;

/// What one COPY was, for its log entries.
#[derive(Debug, Clone)]
pub(crate) struct LoadRun {
    pub query: i64,
    pub user: String,
    pub pid: i32,
    /// The table's catalog id (shown as its pg_class oid).
    pub table_id: u64,
    pub table: String,
    pub start: NaiveDateTime,
}

/// One file of a committed COPY (a row of STL_LOAD_COMMITS).
#[derive(Debug, Clone)]
pub(crate) struct FileCommit {
    pub file: String,
    pub bytes: u64,
    pub lines: u64,
    pub errors: u64,
    pub format: &'static str,
    pub at: NaiveDateTime,
}

/// One file an UNLOAD wrote (a row of STL_UNLOAD_LOG).
#[derive(Debug, Clone)]
pub(crate) struct UnloadFile {
    pub url: String,
    pub rows: u64,
    /// Bytes written (before compression for text formats).
    pub bytes: u64,
    pub format: &'static str,
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
}

/// What one UNLOAD was.
#[derive(Debug, Clone)]
pub(crate) struct UnloadRun {
    pub query: i64,
    pub user: String,
    pub pid: i32,
}

/// A COPY in progress (a row of STV_LOAD_STATE), updated as it reads.
#[derive(Debug)]
pub(crate) struct LoadProgress {
    pub run: Arc<LoadRun>,
    pub files: u64,
    pub bytes_to_load: u64,
    pub files_done: AtomicU64,
    /// Bytes of the objects read so far (as stored, compressed or not).
    pub bytes_loaded: AtomicU64,
    pub lines: AtomicU64,
    pub current_file: Mutex<String>,
}

impl LoadProgress {
    /// A COPY (or a compute node's share of one) of `files` files, `bytes` bytes in all.
    pub(crate) fn new(run: Arc<LoadRun>, files: u64, bytes: u64) -> Self {
        LoadProgress {
            run,
            files,
            bytes_to_load: bytes,
            files_done: AtomicU64::new(0),
            bytes_loaded: AtomicU64::new(0),
            lines: AtomicU64::new(0),
            current_file: Mutex::new(String::new()),
        }
    }
}

/// Removes a COPY from STV_LOAD_STATE when it ends, however it ends.
pub(crate) struct Running {
    log: Arc<LoadLog>,
    pub progress: Arc<LoadProgress>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.log.running.lock().remove(&self.progress.run.query);
    }
}

#[derive(Debug, Default)]
pub(crate) struct LoadLog {
    running: Mutex<std::collections::BTreeMap<i64, Arc<LoadProgress>>>,
    errors: Mutex<VecDeque<(Arc<LoadRun>, LoadError)>>,
    commits: Mutex<VecDeque<(Arc<LoadRun>, FileCommit)>>,
    unloads: Mutex<VecDeque<(Arc<UnloadRun>, UnloadFile)>>,
}

fn push_all<T>(log: &Mutex<VecDeque<T>>, items: impl IntoIterator<Item = T>) {
    let mut log = log.lock();
    for item in items {
        if log.len() == KEEP {
            log.pop_front();
        }
        log.push_back(item);
    }
}

impl LoadLog {
    /// Show a COPY in STV_LOAD_STATE until the returned guard drops.
    pub(crate) fn start(self: &Arc<Self>, run: Arc<LoadRun>, files: u64, bytes: u64) -> Running {
        let progress = Arc::new(LoadProgress::new(run, files, bytes));
        self.running
            .lock()
            .insert(progress.run.query, progress.clone());
        Running {
            log: self.clone(),
            progress,
        }
    }

    pub(crate) fn record_errors(&self, run: &Arc<LoadRun>, errors: Vec<LoadError>) {
        push_all(&self.errors, errors.into_iter().map(|e| (run.clone(), e)));
    }

    pub(crate) fn record_unload(&self, run: UnloadRun, files: Vec<UnloadFile>) {
        let run = Arc::new(run);
        push_all(&self.unloads, files.into_iter().map(|f| (run.clone(), f)));
    }

    pub(crate) fn record_commits(&self, run: &Arc<LoadRun>, files: Vec<FileCommit>) {
        push_all(&self.commits, files.into_iter().map(|f| (run.clone(), f)));
    }
}

pub(crate) fn stl_load_errors_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("userid", DataType::Int32, true),
        Field::new("slice", DataType::Int32, true),
        Field::new("tbl", DataType::Int32, true),
        ts_field("starttime"),
        Field::new("session", DataType::Int32, true),
        Field::new("query", DataType::Int32, true),
        Field::new("filename", DataType::Utf8, true),
        Field::new("line_number", DataType::Int64, true),
        Field::new("colname", DataType::Utf8, true),
        Field::new("type", DataType::Utf8, true),
        Field::new("col_length", DataType::Utf8, true),
        Field::new("position", DataType::Int32, true),
        Field::new("raw_line", DataType::Utf8, true),
        Field::new("raw_field_value", DataType::Utf8, true),
        Field::new("err_code", DataType::Int32, true),
        Field::new("err_reason", DataType::Utf8, true),
        Field::new("is_partial", DataType::Int32, true),
        Field::new("start_offset", DataType::Int64, true),
    ]))
}

/// `userid`: a user's usesysid; `oid`: a table's pg_class oid by catalog id.
pub(crate) fn stl_load_errors(
    log: &LoadLog,
    userid: impl Fn(&str) -> Option<i32>,
    oid: impl Fn(u64) -> i32,
) -> Result<RecordBatch> {
    let rows = log
        .errors
        .lock()
        .iter()
        .map(|(run, e)| {
            vec![
                ScalarValue::Int32(userid(&run.user)),
                ScalarValue::Int32(Some(0)),
                ScalarValue::Int32(Some(oid(run.table_id))),
                timestamp(run.start),
                ScalarValue::Int32(Some(run.pid)),
                ScalarValue::Int32(Some(run.query as i32)),
                ScalarValue::from(e.file.as_str()),
                ScalarValue::Int64(Some(e.line as i64)),
                ScalarValue::from(e.column.as_str()),
                ScalarValue::from(e.ty.as_str()),
                ScalarValue::from(e.col_length.as_str()),
                ScalarValue::Int32(Some(0)),
                ScalarValue::from(e.raw_line.as_str()),
                ScalarValue::from(e.raw_value.as_str()),
                ScalarValue::Int32(Some(e.code)),
                ScalarValue::from(e.reason.as_str()),
                ScalarValue::Int32(Some(0)),
                ScalarValue::Int64(Some(0)),
            ]
        })
        .collect();
    batch(stl_load_errors_schema(), rows)
}

pub(crate) fn stl_loaderror_detail_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("userid", DataType::Int32, true),
        Field::new("slice", DataType::Int32, true),
        Field::new("session", DataType::Int32, true),
        Field::new("query", DataType::Int32, true),
        Field::new("filename", DataType::Utf8, true),
        Field::new("line_number", DataType::Int64, true),
        Field::new("field", DataType::Int32, true),
        Field::new("colname", DataType::Utf8, true),
        Field::new("value", DataType::Utf8, true),
        Field::new("is_null", DataType::Int32, true),
        Field::new("type", DataType::Utf8, true),
        Field::new("col_length", DataType::Int32, true),
    ]))
}

/// STL_LOADERROR_DETAIL: a row per field of each rejected row whose fields were parsed (an
/// error of a whole line, such as a wrong number of fields, has none), fields numbered from 1.
pub(crate) fn stl_loaderror_detail(
    log: &LoadLog,
    userid: impl Fn(&str) -> Option<i32>,
) -> Result<RecordBatch> {
    let rows = log
        .errors
        .lock()
        .iter()
        .flat_map(|(run, e)| {
            let userid = userid(&run.user);
            e.fields.iter().enumerate().map(move |(i, f)| {
                vec![
                    ScalarValue::Int32(userid),
                    ScalarValue::Int32(Some(0)),
                    ScalarValue::Int32(Some(run.pid)),
                    ScalarValue::Int32(Some(run.query as i32)),
                    ScalarValue::from(e.file.as_str()),
                    ScalarValue::Int64(Some(e.line as i64)),
                    ScalarValue::Int32(Some(i as i32 + 1)),
                    ScalarValue::from(f.colname.as_str()),
                    ScalarValue::from(f.value.as_str()),
                    ScalarValue::Int32(Some(i32::from(f.is_null))),
                    ScalarValue::from(f.ty.as_str()),
                    ScalarValue::Int32(Some(f.col_length)),
                ]
            })
        })
        .collect();
    batch(stl_loaderror_detail_schema(), rows)
}

pub(crate) fn stl_load_commits_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("userid", DataType::Int32, true),
        Field::new("query", DataType::Int32, true),
        Field::new("slice", DataType::Int32, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("filename", DataType::Utf8, true),
        Field::new("byte_offset", DataType::Int64, true),
        Field::new("lines_scanned", DataType::Int64, true),
        Field::new("errors", DataType::Int64, true),
        ts_field("curtime"),
        Field::new("status", DataType::Int32, true),
        Field::new("file_format", DataType::Utf8, true),
        Field::new("is_partial", DataType::Int32, true),
        Field::new("start_offset", DataType::Int64, true),
    ]))
}

pub(crate) fn stl_load_commits(
    log: &LoadLog,
    userid: impl Fn(&str) -> Option<i32>,
) -> Result<RecordBatch> {
    let rows = log
        .commits
        .lock()
        .iter()
        .map(|(run, f)| {
            vec![
                ScalarValue::Int32(userid(&run.user)),
                ScalarValue::Int32(Some(run.query as i32)),
                ScalarValue::Int32(Some(0)),
                ScalarValue::from(run.table.as_str()),
                ScalarValue::from(f.file.as_str()),
                ScalarValue::Int64(Some(f.bytes as i64)),
                ScalarValue::Int64(Some(f.lines as i64)),
                ScalarValue::Int64(Some(f.errors as i64)),
                timestamp(f.at),
                ScalarValue::Int32(Some(1)),
                ScalarValue::from(f.format),
                ScalarValue::Int32(Some(0)),
                ScalarValue::Int64(Some(0)),
            ]
        })
        .collect();
    batch(stl_load_commits_schema(), rows)
}

pub(crate) fn stl_unload_log_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("userid", DataType::Int32, true),
        Field::new("query", DataType::Int32, true),
        Field::new("slice", DataType::Int32, true),
        Field::new("pid", DataType::Int32, true),
        Field::new("path", DataType::Utf8, true),
        ts_field("start_time"),
        ts_field("end_time"),
        Field::new("line_count", DataType::Int64, true),
        Field::new("transfer_size", DataType::Int64, true),
        Field::new("file_format", DataType::Utf8, true),
    ]))
}

pub(crate) fn stl_unload_log(
    log: &LoadLog,
    userid: impl Fn(&str) -> Option<i32>,
) -> Result<RecordBatch> {
    let rows = log
        .unloads
        .lock()
        .iter()
        .map(|(run, f)| {
            // The slice is the one in the file's name (`0003_part_00`), else 0.
            let slice = f
                .url
                .rsplit('/')
                .next()
                .and_then(|name| name.split_once("_part_"))
                .and_then(|(head, _)| head.get(head.len().saturating_sub(4)..))
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            vec![
                ScalarValue::Int32(userid(&run.user)),
                ScalarValue::Int32(Some(run.query as i32)),
                ScalarValue::Int32(Some(slice)),
                ScalarValue::Int32(Some(run.pid)),
                ScalarValue::from(f.url.as_str()),
                timestamp(f.start),
                timestamp(f.end),
                ScalarValue::Int64(Some(f.rows as i64)),
                ScalarValue::Int64(Some(f.bytes as i64)),
                ScalarValue::from(f.format),
            ]
        })
        .collect();
    batch(stl_unload_log_schema(), rows)
}

pub(crate) fn stv_load_state_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("userid", DataType::Int32, true),
        Field::new("session", DataType::Int32, true),
        Field::new("query", DataType::Int32, true),
        Field::new("slice", DataType::Int32, true),
        Field::new("pid", DataType::Int32, true),
        ts_field("recordtime"),
        Field::new("bytes_to_load", DataType::Int64, true),
        Field::new("bytes_loaded", DataType::Int64, true),
        Field::new("bytes_to_load_compressed", DataType::Int64, true),
        Field::new("bytes_loaded_compressed", DataType::Int64, true),
        Field::new("lines", DataType::Int64, true),
        Field::new("num_files", DataType::Int32, true),
        Field::new("num_files_complete", DataType::Int32, true),
        Field::new("current_file", DataType::Utf8, true),
        Field::new("pct_complete", DataType::Int32, true),
    ]))
}

/// The COPYs running now, one row each, with how far they got.
pub(crate) fn stv_load_state(
    log: &LoadLog,
    userid: impl Fn(&str) -> Option<i32>,
) -> Result<RecordBatch> {
    let now = chrono::Utc::now().naive_utc();
    let rows = log
        .running
        .lock()
        .values()
        .map(|p| {
            let loaded = p.bytes_loaded.load(Ordering::Relaxed);
            let pct = (loaded * 100).checked_div(p.bytes_to_load).unwrap_or(0);
            vec![
                ScalarValue::Int32(userid(&p.run.user)),
                ScalarValue::Int32(Some(p.run.pid)),
                ScalarValue::Int32(Some(p.run.query as i32)),
                ScalarValue::Int32(Some(0)),
                ScalarValue::Int32(Some(p.run.pid)),
                timestamp(now),
                ScalarValue::Int64(Some(p.bytes_to_load as i64)),
                ScalarValue::Int64(Some(loaded as i64)),
                ScalarValue::Int64(Some(p.bytes_to_load as i64)),
                ScalarValue::Int64(Some(loaded as i64)),
                ScalarValue::Int64(Some(p.lines.load(Ordering::Relaxed) as i64)),
                ScalarValue::Int32(Some(p.files as i32)),
                ScalarValue::Int32(Some(p.files_done.load(Ordering::Relaxed) as i32)),
                ScalarValue::from(p.current_file.lock().as_str()),
                ScalarValue::Int32(Some(pct.min(100) as i32)),
            ]
        })
        .collect();
    batch(stv_load_state_schema(), rows)
}
