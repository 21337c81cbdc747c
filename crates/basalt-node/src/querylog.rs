//! The leader's log of recent queries, behind Redshift's `STL_QUERY`, `STL_SCAN` and
//! `SVL_QUERY_SUMMARY`: what each query ran, and per step and per slice scan what it produced
//! and read (blocks read and skipped by zone maps).
//!
//! A query is recorded when its result stream ends (or is dropped: a cancelled or abandoned
//! query is `aborted`). The log keeps the most recent [`KEEP`] queries in memory; Redshift
//! keeps days of them on disk, which a restart here forgets.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::task::{Context, Poll};

use chrono::{NaiveDateTime, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::metrics::{MetricValue, MetricsSet};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlan, RecordBatchStream};
use futures::{FutureExt, Stream, StreamExt};
use parking_lot::Mutex;

use crate::system_tables::{batch, timestamp, ts_field};

/// Queries the log keeps.
pub(crate) const KEEP: usize = 10_000;

/// The log, shared by every session of a leader.
#[derive(Debug, Default)]
pub(crate) struct QueryLog {
    next: AtomicI64,
    records: Mutex<VecDeque<Arc<QueryRecord>>>,
}

/// One finished query.
#[derive(Debug)]
pub(crate) struct QueryRecord {
    pub query: i64,
    pub pid: i32,
    pub user: String,
    pub text: String,
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
    pub aborted: bool,
    pub steps: Vec<StepRecord>,
    pub scans: Vec<ScanRecord>,
    /// Rows moved between nodes (STL_DIST, STL_BCAST, STL_RETURN).
    pub moves: Vec<MoveRecord>,
}

/// How a network step moved rows: redistributed by hash, broadcast to every node, or
/// returned to the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Movement {
    Dist,
    Bcast,
    Return,
}

impl Movement {
    fn of(operator: &str) -> Option<Movement> {
        match operator {
            "NetworkShuffleExec" => Some(Movement::Dist),
            "NetworkBroadcastExec" => Some(Movement::Bcast),
            "NetworkCoalesceExec" => Some(Movement::Return),
            _ => None,
        }
    }
}

/// What one receiving task of a network step got (a row of STL_DIST / STL_BCAST /
/// STL_RETURN).
#[derive(Debug)]
pub(crate) struct MoveRecord {
    pub step: i32,
    pub movement: Movement,
    /// The receiving task: 0 on the leader; in a stage of one task per node, task i runs on
    /// node i.
    pub task: usize,
    pub rows: i64,
    pub bytes: i64,
    /// Arrow Flight messages received.
    pub packets: i64,
}

/// One operator of the query's plan (SVL_QUERY_SUMMARY's step).
#[derive(Debug)]
pub(crate) struct StepRecord {
    pub step: i32,
    /// The operator's label; a scan's gets its table (`scan   tbl=<oid> name=<name>`) when
    /// shown, from `scan_of`.
    pub label: String,
    /// For a table scan: the table's catalog id and name.
    pub scan_of: Option<(u64, String)>,
    pub rows: i64,
    pub bytes: Option<i64>,
    /// Compute time of the slowest and the average partition, in microseconds.
    pub maxtime: i64,
    pub avgtime: i64,
    pub is_rrscan: bool,
    pub rows_pre_filter: Option<i64>,
}

/// One slice's part of a table scan (STL_SCAN's row).
#[derive(Debug)]
pub(crate) struct ScanRecord {
    pub step: i32,
    pub slice: i32,
    /// The table's catalog id (shown as its pg_class oid).
    pub tbl: u64,
    pub table: String,
    /// Rows the scan step returned: after the query's filters.
    pub rows: i64,
    pub rows_pre_filter: i64,
    pub bytes: i64,
    pub is_rrscan: bool,
    pub blocks_read: i64,
    pub blocks_skipped: i64,
}

impl QueryLog {
    /// A new query id.
    pub(crate) fn next_id(&self) -> i64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn push(&self, record: QueryRecord) {
        let mut records = self.records.lock();
        if records.len() == KEEP {
            records.pop_front();
        }
        records.push_back(Arc::new(record));
    }

    /// Record a statement that runs no query plan of its own (a COPY): its text, user and
    /// times, with no steps.
    pub(crate) fn record_statement(
        &self,
        query: i64,
        pid: i32,
        user: &str,
        text: &str,
        start: NaiveDateTime,
        aborted: bool,
    ) {
        self.push(QueryRecord {
            query,
            pid,
            user: user.to_string(),
            text: text.to_string(),
            start,
            end: Utc::now().naive_utc(),
            aborted,
            steps: vec![],
            scans: vec![],
            moves: vec![],
        });
    }

    /// The recorded queries, oldest first.
    pub(crate) fn records(&self) -> Vec<Arc<QueryRecord>> {
        self.records.lock().iter().cloned().collect()
    }
}

/// A query being run: recorded in the log when its stream ends.
pub(crate) struct QueryRun {
    pub log: Arc<QueryLog>,
    pub query: i64,
    pub pid: i32,
    pub user: String,
    pub text: String,
    pub start: NaiveDateTime,
    pub plan: Arc<dyn ExecutionPlan>,
    /// The session's `pg_last_query_id()`, set when the query ends.
    pub last_query: Arc<AtomicI64>,
}

impl QueryRun {
    fn finish(self, aborted: bool) {
        let mut steps = vec![];
        let mut scans = vec![];
        let mut moves = vec![];
        walk(&self.plan, &mut vec![], &mut steps, &mut scans, &mut moves);
        self.last_query.store(self.query, Ordering::Relaxed);
        self.log.push(QueryRecord {
            query: self.query,
            pid: self.pid,
            user: self.user,
            text: self.text,
            start: self.start,
            end: Utc::now().naive_utc(),
            aborted,
            steps,
            scans,
            moves,
        });
    }
}

/// Wraps a query's result stream to record the query when the stream ends.
pub(crate) fn logged(
    stream: SendableRecordBatchStream,
    run: QueryRun,
) -> SendableRecordBatchStream {
    Box::pin(LoggedStream {
        inner: stream,
        run: Some(run),
        failed: false,
        recording: None,
    })
}

struct LoggedStream {
    inner: SendableRecordBatchStream,
    run: Option<QueryRun>,
    failed: bool,
    /// Recording a distributed query: the metrics its tasks report are gathered first, so
    /// the log holds them by the time the client sees the end of the rows.
    recording: Option<futures::future::BoxFuture<'static, ()>>,
}

/// How long the end of a distributed query's rows may wait for its tasks' metrics.
const TASK_METRICS_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

impl Stream for LoggedStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(recording) = &mut self.recording {
            return match recording.poll_unpin(cx) {
                Poll::Ready(()) => {
                    self.recording = None;
                    Poll::Ready(None)
                }
                Poll::Pending => Poll::Pending,
            };
        }
        let next = self.inner.poll_next_unpin(cx);
        match &next {
            Poll::Ready(Some(Err(_))) => self.failed = true,
            Poll::Ready(None) => {
                let failed = self.failed;
                if let Some(mut run) = self.run.take() {
                    if failed || !basalt_mpp::is_distributed(run.plan.as_ref()) {
                        run.finish(failed);
                    } else {
                        let mut recording = Box::pin(async move {
                            run.plan =
                                basalt_mpp::with_task_metrics(run.plan.clone(), TASK_METRICS_WAIT)
                                    .await;
                            run.finish(false);
                        });
                        if recording.poll_unpin(cx).is_pending() {
                            self.recording = Some(recording);
                            return Poll::Pending;
                        }
                    }
                }
            }
            _ => {}
        }
        next
    }
}

impl RecordBatchStream for LoggedStream {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

impl Drop for LoggedStream {
    fn drop(&mut self) {
        // Dropped before its end: cancelled, failed, or the client stopped reading.
        if let Some(run) = self.run.take() {
            run.finish(true);
        }
    }
}

/// Record `plan` and its children in pre-order: a step per operator, and a scan record per
/// slice of each table scan.
fn walk(
    plan: &Arc<dyn ExecutionPlan>,
    ancestors: &mut Vec<Arc<dyn ExecutionPlan>>,
    steps: &mut Vec<StepRecord>,
    scans: &mut Vec<ScanRecord>,
    moves: &mut Vec<MoveRecord>,
) {
    let step = steps.len() as i32;
    let metrics = plan.metrics().unwrap_or_default();
    let times = per_partition(&metrics, |v| match v {
        MetricValue::ElapsedCompute(t) => Some(t.value() / 1000),
        _ => None,
    });
    let maxtime = times.iter().map(|(_, t)| *t).max().unwrap_or(0) as i64;
    let avgtime = if times.is_empty() {
        0
    } else {
        (times.iter().map(|(_, t)| *t).sum::<usize>() / times.len()) as i64
    };
    let rows = metrics.output_rows().unwrap_or(0) as i64;
    let named = |name: &str| metrics.sum_by_name(name).map(|v| v.as_usize() as i64);
    match basalt_mpp::slice_scan(plan.as_ref()) {
        Some((scan, variants)) => {
            let table = scan.table();
            steps.push(StepRecord {
                step,
                label: "scan".into(),
                scan_of: Some((table.id.0, table.name.clone())),
                rows,
                bytes: named("bytes_scanned"),
                maxtime,
                avgtime,
                is_rrscan: scan.is_range_restricted(),
                rows_pre_filter: named("rows_pre_filter"),
            });
            // The rows a scan step returns are those its filter keeps: per slice when the
            // filter reads the scan's partitions, in total when it reads a redistribution
            // of a one-slice scan; otherwise the rows the scan produced.
            let partitions = scan.properties().partitioning.partition_count();
            let filtered = match ancestors.last() {
                Some(p) if p.downcast_ref::<FilterExec>().is_some() => p.metrics(),
                Some(p) if p.downcast_ref::<RepartitionExec>().is_some() && partitions == 1 => {
                    ancestors
                        .iter()
                        .rev()
                        .nth(1)
                        .filter(|f| f.downcast_ref::<FilterExec>().is_some())
                        .and_then(|f| f.metrics())
                        .map(|m| m.aggregate_by_name())
                }
                _ => None,
            };
            // The slices partition p of a task read: the task's own variant of the scan
            // when it ran on the compute nodes.
            let slices_of = |task: usize, p: usize| match variants.get(task) {
                Some(v) => v.slices_of(p),
                None if variants.is_empty() => scan.slices_of(p),
                None => vec![],
            };
            // A filter's partition that read one slice tells that slice's rows.
            let mut kept: std::collections::BTreeMap<basalt_catalog::SliceId, i64> =
                Default::default();
            for m in filtered.iter().flat_map(|f| f.iter()) {
                if let MetricValue::OutputRows(c) = m.value()
                    && let [slice] =
                        slices_of(basalt_mpp::task_of(m), m.partition().unwrap_or(0)).as_slice()
                {
                    *kept.entry(*slice).or_default() += c.value() as i64;
                }
            }
            let per = |set: &MetricsSet, name: &str| {
                per_partition(set, |v| match v {
                    MetricValue::Count { name: n, count } if n == name => Some(count.value()),
                    MetricValue::OutputRows(c) if name == "output_rows" => Some(c.value()),
                    _ => None,
                })
            };
            // The scan's own metrics are kept per slice (their partition is the slice).
            let own_rows = per(&metrics, "output_rows");
            let pre = per(&metrics, "rows_pre_filter");
            let bytes = per(&metrics, "bytes_scanned");
            let read = per(&metrics, "blocks_read");
            let skipped = per(&metrics, "blocks_skipped");
            let at = |v: &[(usize, usize)], p: usize| {
                v.iter()
                    .filter(|(q, _)| *q == p)
                    .map(|(_, n)| *n)
                    .sum::<usize>() as i64
            };
            for slice in scan.slices() {
                let s = slice.0 as usize;
                scans.push(ScanRecord {
                    step,
                    slice: slice.0 as i32,
                    tbl: table.id.0,
                    table: table.name.clone(),
                    rows: match kept.get(&slice) {
                        Some(n) => *n,
                        None if filtered.is_some() && !kept.is_empty() => 0,
                        None => at(&own_rows, s),
                    },
                    rows_pre_filter: at(&pre, s),
                    bytes: at(&bytes, s),
                    is_rrscan: scan.is_range_restricted(),
                    blocks_read: at(&read, s),
                    blocks_skipped: at(&skipped, s),
                });
            }
        }
        None => {
            let movement = Movement::of(plan.name());
            if let Some(movement) = movement {
                moves.extend(moved(&metrics, step, movement));
            }
            steps.push(StepRecord {
                step,
                label: label(plan.name()),
                scan_of: None,
                rows,
                // A network step's bytes are those it received over the network.
                bytes: match movement {
                    Some(_) => named("bytes_transferred"),
                    None => metrics
                        .sum(|m| matches!(m.value(), MetricValue::OutputBytes(_)))
                        .map(|v| v.as_usize() as i64),
                },
                maxtime,
                avgtime,
                is_rrscan: false,
                rows_pre_filter: None,
            })
        }
    }
    ancestors.push(plan.clone());
    for child in plan.children() {
        walk(child, ancestors, steps, scans, moves);
    }
    ancestors.pop();
}

/// A network step's rows, bytes and messages, per receiving task.
fn moved(metrics: &MetricsSet, step: i32, movement: Movement) -> Vec<MoveRecord> {
    let mut by_task: std::collections::BTreeMap<usize, MoveRecord> = Default::default();
    for m in metrics.iter() {
        let task = basalt_mpp::task_of(m);
        let record = by_task.entry(task).or_insert(MoveRecord {
            step,
            movement,
            task,
            rows: 0,
            bytes: 0,
            packets: 0,
        });
        match m.value() {
            MetricValue::OutputRows(c) => record.rows += c.value() as i64,
            v if v.name() == "bytes_transferred" => record.bytes += v.as_usize() as i64,
            v if v.name() == "msg_count" => record.packets += v.as_usize() as i64,
            _ => {}
        }
    }
    by_task.into_values().collect()
}

/// The values a metric kind takes, by partition.
fn per_partition(
    metrics: &MetricsSet,
    value: impl Fn(&MetricValue) -> Option<usize>,
) -> Vec<(usize, usize)> {
    metrics
        .iter()
        .filter_map(|m| Some((m.partition().unwrap_or(0), value(m.value())?)))
        .collect()
}

/// Redshift's step label for a DataFusion operator; other operators keep their own name.
fn label(operator: &str) -> String {
    let redshift = match operator {
        "HashJoinExec" => "hjoin",
        "SortMergeJoinExec" => "mjoin",
        "NestedLoopJoinExec" | "CrossJoinExec" => "nloop",
        "AggregateExec" => "aggr",
        "SortExec" => "sort",
        "SortPreservingMergeExec" | "CoalescePartitionsExec" => "merge",
        "RepartitionExec" | "NodeLocalRepartitionExec" | "NetworkShuffleExec" => "dist",
        "NetworkBroadcastExec" => "bcast",
        "NetworkCoalesceExec" => "return",
        "ProjectionExec" => "project",
        "FilterExec" => "filter",
        "GlobalLimitExec" | "LocalLimitExec" => "limit",
        "UnionExec" | "InterleaveExec" => "append",
        "WindowAggExec" | "BoundedWindowAggExec" => "window",
        "AnalyzeExec" => "analyze",
        other => return other.to_string(),
    };
    redshift.to_string()
}

pub(crate) fn stl_query_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("userid", DataType::Int32, true),
        Field::new("query", DataType::Int32, true),
        Field::new("label", DataType::Utf8, true),
        Field::new("xid", DataType::Int64, true),
        Field::new("pid", DataType::Int32, true),
        Field::new("database", DataType::Utf8, true),
        Field::new("querytxt", DataType::Utf8, true),
        ts_field("starttime"),
        ts_field("endtime"),
        Field::new("aborted", DataType::Int32, true),
        Field::new("insert_pristine", DataType::Int32, true),
        Field::new("concurrency_scaling_status", DataType::Int32, true),
    ]))
}

/// `userid`: a user's `usesysid`.
pub(crate) fn stl_query(
    log: &QueryLog,
    database: &str,
    userid: impl Fn(&str) -> Option<i32>,
) -> Result<RecordBatch> {
    let rows = log
        .records()
        .iter()
        .map(|q| {
            vec![
                ScalarValue::Int32(userid(&q.user)),
                ScalarValue::Int32(Some(q.query as i32)),
                ScalarValue::from("default"),
                ScalarValue::Int64(None),
                ScalarValue::Int32(Some(q.pid)),
                ScalarValue::from(database),
                ScalarValue::from(q.text.as_str()),
                timestamp(q.start),
                timestamp(q.end),
                ScalarValue::Int32(Some(q.aborted as i32)),
                ScalarValue::Int32(Some(0)),
                ScalarValue::Int32(Some(0)),
            ]
        })
        .collect();
    batch(stl_query_schema(), rows)
}

/// The columns Redshift's per-step logs (STL_SCAN, STL_DIST, ...) start with.
fn step_log_fields() -> Vec<Field> {
    vec![
        Field::new("userid", DataType::Int32, true),
        Field::new("query", DataType::Int32, true),
        Field::new("slice", DataType::Int32, true),
        Field::new("segment", DataType::Int32, true),
        Field::new("step", DataType::Int32, true),
        ts_field("starttime"),
        ts_field("endtime"),
        Field::new("tasknum", DataType::Int32, true),
        Field::new("rows", DataType::Int64, true),
        Field::new("bytes", DataType::Int64, true),
    ]
}

pub(crate) fn stl_scan_schema() -> SchemaRef {
    let mut fields = step_log_fields();
    fields.extend([
        Field::new("fetches", DataType::Int64, true),
        Field::new("type", DataType::Int32, true),
        Field::new("tbl", DataType::Int32, true),
        Field::new("is_rrscan", DataType::Utf8, true),
        Field::new("is_delayed_scan", DataType::Utf8, true),
        Field::new("rows_pre_filter", DataType::Int64, true),
        Field::new("rows_pre_user_filter", DataType::Int64, true),
        Field::new("perm_table_name", DataType::Utf8, true),
        // BasaltDB's own: blocks (row groups with zone maps) read and skipped.
        Field::new("blocks_read", DataType::Int64, true),
        Field::new("blocks_skipped", DataType::Int64, true),
    ]);
    Arc::new(Schema::new(fields))
}

/// Redshift's STL_SCAN `type` for a scan of a permanent user table.
const SCAN_TYPE_PERMANENT: i32 = 2;

/// `oid`: the pg_class oid of a table by catalog id (a dropped table keeps its id).
pub(crate) fn stl_scan(
    log: &QueryLog,
    userid: impl Fn(&str) -> Option<i32>,
    oid: impl Fn(u64) -> i32,
) -> Result<RecordBatch> {
    let mut rows = vec![];
    for q in log.records() {
        for s in &q.scans {
            rows.push(vec![
                ScalarValue::Int32(userid(&q.user)),
                ScalarValue::Int32(Some(q.query as i32)),
                ScalarValue::Int32(Some(s.slice)),
                ScalarValue::Int32(Some(0)),
                ScalarValue::Int32(Some(s.step)),
                timestamp(q.start),
                timestamp(q.end),
                ScalarValue::Int32(Some(0)),
                ScalarValue::Int64(Some(s.rows)),
                ScalarValue::Int64(Some(s.bytes)),
                ScalarValue::Int64(Some(0)),
                ScalarValue::Int32(Some(SCAN_TYPE_PERMANENT)),
                ScalarValue::Int32(Some(oid(s.tbl))),
                ScalarValue::from(if s.is_rrscan { "t" } else { "f" }),
                ScalarValue::from("f"),
                ScalarValue::Int64(Some(s.rows_pre_filter)),
                ScalarValue::Int64(Some(s.rows_pre_filter)),
                ScalarValue::from(s.table.as_str()),
                ScalarValue::Int64(Some(s.blocks_read)),
                ScalarValue::Int64(Some(s.blocks_skipped)),
            ]);
        }
    }
    batch(stl_scan_schema(), rows)
}

/// STL_DIST, STL_BCAST and STL_RETURN: Redshift's columns.
pub(crate) fn stl_movement_schema() -> SchemaRef {
    let mut fields = step_log_fields();
    fields.push(Field::new("packets", DataType::Int64, true));
    Arc::new(Schema::new(fields))
}

/// The rows of one of STL_DIST / STL_BCAST / STL_RETURN: per network step and receiving task,
/// what it received. `slice` is the first slice of the receiving task's node (one task per
/// node), or -1 for the leader.
pub(crate) fn stl_movement(
    log: &QueryLog,
    movement: Movement,
    slices_per_node: u32,
    userid: impl Fn(&str) -> Option<i32>,
) -> Result<RecordBatch> {
    let mut rows = vec![];
    for q in log.records() {
        for m in q.moves.iter().filter(|m| m.movement == movement) {
            let slice = match movement {
                Movement::Return => -1,
                _ => (m.task as u32 * slices_per_node) as i32,
            };
            rows.push(vec![
                ScalarValue::Int32(userid(&q.user)),
                ScalarValue::Int32(Some(q.query as i32)),
                ScalarValue::Int32(Some(slice)),
                ScalarValue::Int32(Some(0)),
                ScalarValue::Int32(Some(m.step)),
                timestamp(q.start),
                timestamp(q.end),
                ScalarValue::Int32(Some(m.task as i32)),
                ScalarValue::Int64(Some(m.rows)),
                ScalarValue::Int64(Some(m.bytes)),
                ScalarValue::Int64(Some(m.packets)),
            ]);
        }
    }
    batch(stl_movement_schema(), rows)
}

pub(crate) fn svl_query_summary_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("userid", DataType::Int32, true),
        Field::new("query", DataType::Int32, true),
        Field::new("stm", DataType::Int32, true),
        Field::new("seg", DataType::Int32, true),
        Field::new("step", DataType::Int32, true),
        Field::new("maxtime", DataType::Int64, true),
        Field::new("avgtime", DataType::Int64, true),
        Field::new("rows", DataType::Int64, true),
        Field::new("bytes", DataType::Int64, true),
        Field::new("rate_row", DataType::Float64, true),
        Field::new("rate_byte", DataType::Float64, true),
        Field::new("label", DataType::Utf8, true),
        Field::new("is_diskbased", DataType::Utf8, true),
        Field::new("workmem", DataType::Int64, true),
        Field::new("is_rrscan", DataType::Utf8, true),
        Field::new("is_delayed_scan", DataType::Utf8, true),
        Field::new("rows_pre_filter", DataType::Int64, true),
    ]))
}

pub(crate) fn svl_query_summary(
    log: &QueryLog,
    userid: impl Fn(&str) -> Option<i32>,
    oid: impl Fn(u64) -> i32,
) -> Result<RecordBatch> {
    let mut rows = vec![];
    for q in log.records() {
        for s in &q.steps {
            let rate = |n: i64| (s.maxtime > 0).then(|| n as f64 / (s.maxtime as f64 / 1e6));
            rows.push(vec![
                ScalarValue::Int32(userid(&q.user)),
                ScalarValue::Int32(Some(q.query as i32)),
                ScalarValue::Int32(Some(0)),
                ScalarValue::Int32(Some(0)),
                ScalarValue::Int32(Some(s.step)),
                ScalarValue::Int64(Some(s.maxtime)),
                ScalarValue::Int64(Some(s.avgtime)),
                ScalarValue::Int64(Some(s.rows)),
                ScalarValue::Int64(s.bytes),
                ScalarValue::Float64(rate(s.rows)),
                ScalarValue::Float64(s.bytes.and_then(rate)),
                ScalarValue::from(match &s.scan_of {
                    Some((id, name)) => format!("scan   tbl={} name={name}", oid(*id)),
                    None => s.label.clone(),
                }),
                ScalarValue::from("f"),
                ScalarValue::Int64(Some(0)),
                ScalarValue::from(if s.is_rrscan { "t" } else { "f" }),
                ScalarValue::from("f"),
                ScalarValue::Int64(s.rows_pre_filter),
            ]);
        }
    }
    batch(svl_query_summary_schema(), rows)
}
