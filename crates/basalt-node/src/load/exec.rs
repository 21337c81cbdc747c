//! A COPY's files parsed where the compute nodes are: the leader plans a [`CopyNode`], the
//! distributed planner runs one [`CopyLoadExec`] per node (a [`basalt_mpp::NodeWork`]), and
//! each reads its share of the files, parses and converts them, places the rows on their
//! slices (its own node's, or another's over the internal connections) and writes them.
//! Only what the leader needs to commit comes back: the files done, rows rejected, segments
//! written, progress.
//!
//! ```text
//!  leader:   LoadSpec ─▶ CopyWork (files to nodes by size) ─▶ CopyNode ─▶ NodeWorkExec
//!  node i:   CopyLoadExec(share i): files ─▶ chunks ─▶ parse ─▶ place ─▶ write segments
//!            └─▶ events: Progress, Rejected, File, Written, Done (one JSON per row)
//!  leader:   events ─▶ MAXERROR over all shares, STV_LOAD_STATE, STL_LOAD_COMMITS,
//!            the segments join the table in the COPY's transaction
//! ```
//!
//! A share that fails or is canceled removes the segments it wrote; those it reported are
//! in the leader's transaction, which removes them when it rolls back.
//!
//! The node travels inside plan fragments as versioned JSON, with the S3 settings the leader
//! resolved (credentials included, on the cluster's internal connections only; never in
//! EXPLAIN, logs or system tables) and the DEFAULT values as an Arrow IPC row.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use basalt_catalog::{Encoding, SegmentMeta, SliceId, TableMeta};
use basalt_io::{ObjectFile, S3Settings};
use basalt_mpp::{NodeWork, NodeWorkExec};
use basalt_storage::ComputeCluster;
use chrono::DateTime;
use datafusion::arrow::array::{Array, AsArray, RecordBatch, StringArray, UInt32Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session as DfSession;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, DFSchemaRef, DataFusionError, Result, ScalarValue};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{
    Expr, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::Sender;
use tracing::{Instrument, info_span};

use super::{LoadOptions, LoadSpec};
use crate::NodeError;
use crate::convert::{FieldDetail, LoadError};
use crate::copy::CopyIn;
use crate::dml::ColumnSource;
use crate::extension::{WireSettings, params_of, wire_params};
use crate::json::JsonSpec;
use crate::loadlog::{LoadProgress, LoadRun};

/// Version of [`CopyLoadExec`]'s encoding inside plan fragments.
const COPY_NODE_VERSION: u32 = 4;

/// How often a share reports the bytes it has read.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// What a share of a COPY tells the leader, in the order it happens.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum LoadEvent {
    /// Bytes of its files read so far (as stored), and the file being read.
    Progress { bytes: u64, file: String },
    /// Rows rejected since the last report.
    Rejected(Vec<RejectedRow>),
    /// A file loaded to its end: its index in the COPY's files, lines read, rows rejected.
    File {
        index: usize,
        lines: u64,
        errors: u64,
    },
    /// Segments written to a slice.
    Written {
        slice: SliceId,
        segments: Vec<SegmentMeta>,
    },
    /// The share failed (more rows rejected than MAXERROR, an unreadable file, ...): the
    /// COPY fails with this error. Sent in order after everything the share did before, so
    /// the rows it rejected reach the leader first (an error of the stream itself could
    /// overtake them).
    Failed { sqlstate: String, message: String },
    /// The share is done: its rows, the next IDENTITY values, the encodings it wrote with,
    /// where EVEN placement got to, and the statistics of its rows when the COPY gathers
    /// them ([`crate::stats::WriteStats::encode`], base64).
    Done {
        rows: u64,
        identity: BTreeMap<u32, i64>,
        encodings: Vec<Encoding>,
        rr: u64,
        stats: Option<String>,
    },
}

/// A [`LoadError`] as it travels.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RejectedRow {
    file: String,
    line: u64,
    column: String,
    ty: String,
    col_length: String,
    raw_line: String,
    raw_value: String,
    code: i32,
    reason: String,
    sqlstate: String,
    /// The row's fields (since COPY node version 4).
    fields: Vec<FieldDetail>,
}

impl From<&LoadError> for RejectedRow {
    fn from(e: &LoadError) -> Self {
        RejectedRow {
            file: e.file.clone(),
            line: e.line,
            column: e.column.clone(),
            ty: e.ty.clone(),
            col_length: e.col_length.clone(),
            raw_line: e.raw_line.clone(),
            raw_value: e.raw_value.clone(),
            code: e.code,
            reason: e.reason.clone(),
            sqlstate: e.sqlstate.to_string(),
            fields: e.fields.clone(),
        }
    }
}

impl From<RejectedRow> for LoadError {
    fn from(r: RejectedRow) -> Self {
        LoadError {
            file: r.file,
            line: r.line,
            column: r.column,
            ty: r.ty,
            col_length: r.col_length,
            raw_line: r.raw_line,
            raw_value: r.raw_value,
            code: r.code,
            reason: r.reason,
            sqlstate: crate::error::known_sqlstate(&r.sqlstate),
            fields: r.fields,
        }
    }
}

/// The events' rows: the task that sent each, and the event as JSON.
fn events_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("task", DataType::UInt32, false),
        Field::new("event", DataType::Utf8, false),
    ]))
}

/// The events of a batch a share sent.
pub(crate) fn events_of(batch: &RecordBatch) -> Result<Vec<(usize, LoadEvent)>, NodeError> {
    let bad = |why: String| NodeError::internal(format!("a COPY share's report: {why}"));
    let (Some(tasks), Some(events)) = (
        batch
            .column(0)
            .as_primitive_opt::<datafusion::arrow::datatypes::UInt32Type>(),
        batch.column(1).as_string_opt::<i32>(),
    ) else {
        return Err(bad("unexpected columns".into()));
    };
    (0..batch.num_rows())
        .map(|i| {
            let event = serde_json::from_str(events.value(i)).map_err(|e| bad(e.to_string()))?;
            Ok((tasks.value(i) as usize, event))
        })
        .collect()
}

/// Sends a share's events to whoever runs it (the leader, through the plan's stream).
pub(crate) struct Reporter {
    tx: Sender<Result<RecordBatch>>,
    task: u32,
    /// Rejected rows of the share's parser already reported.
    rejects_sent: usize,
}

impl Reporter {
    pub(crate) async fn send(&self, event: LoadEvent) -> Result<(), NodeError> {
        let json = serde_json::to_string(&event)
            .map_err(|e| NodeError::internal(format!("a COPY share's report: {e}")))?;
        let batch = RecordBatch::try_new(
            events_schema(),
            vec![
                Arc::new(UInt32Array::from(vec![self.task])),
                Arc::new(StringArray::from(vec![json])),
            ],
        )?;
        self.tx
            .send(Ok(batch))
            .await
            .map_err(|_| NodeError::invalid("57014", "COPY canceled"))
    }

    /// Report the rows `load` rejected since the last report.
    pub(crate) async fn rejects(&mut self, load: &CopyIn) -> Result<(), NodeError> {
        let Some(r) = &load.rows.redshift else {
            return Ok(());
        };
        let new = &r.rejects.found[self.rejects_sent.min(r.rejects.found.len())..];
        if new.is_empty() {
            return Ok(());
        }
        self.rejects_sent = r.rejects.found.len();
        self.send(LoadEvent::Rejected(
            new.iter().map(RejectedRow::from).collect(),
        ))
        .await
    }

    pub(crate) async fn progress(&self, progress: &LoadProgress) -> Result<(), NodeError> {
        let file = progress.current_file.lock().clone();
        self.send(LoadEvent::Progress {
            bytes: progress.bytes_loaded.load(Ordering::Relaxed),
            file,
        })
        .await
    }

    /// Reports the bytes read and the file being read every [`PROGRESS_EVERY`], when they
    /// changed.
    pub(crate) fn progress_ticker(
        &self,
        progress: Arc<LoadProgress>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let ticker = Reporter {
            tx: self.tx.clone(),
            task: self.task,
            rejects_sent: 0,
        };
        async move {
            let mut last = (u64::MAX, String::new());
            let mut tick = tokio::time::interval(PROGRESS_EVERY);
            loop {
                tick.tick().await;
                let now = (
                    progress.bytes_loaded.load(Ordering::Relaxed),
                    progress.current_file.lock().clone(),
                );
                if now != last {
                    last = now;
                    if ticker.progress(&progress).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// A COPY's files, divided among the compute nodes: whole files, the largest first, each to
/// the node with the fewest bytes so far (a file is one node's: its lines are numbered in
/// order).
#[derive(Debug)]
pub(crate) struct CopyWork {
    spec: Arc<LoadSpec>,
    /// The node each file goes to.
    node_of: Vec<usize>,
    nodes: usize,
    compute: Arc<ComputeCluster>,
    rr: u64,
}

impl CopyWork {
    pub(crate) fn new(
        spec: Arc<LoadSpec>,
        nodes: usize,
        compute: Arc<ComputeCluster>,
        rr: u64,
    ) -> Self {
        let mut by_size: Vec<usize> = (0..spec.files.len()).collect();
        by_size.sort_by_key(|&i| (std::cmp::Reverse(spec.files[i].1.size), i));
        let mut load = vec![0u64; nodes.max(1)];
        let mut node_of = vec![0; spec.files.len()];
        for i in by_size {
            let least = (0..load.len()).min_by_key(|&n| (load[n], n)).unwrap_or(0);
            load[least] += spec.files[i].1.size;
            node_of[i] = least;
        }
        CopyWork {
            spec,
            node_of,
            nodes: nodes.max(1),
            compute,
            rr,
        }
    }
}

impl NodeWork for CopyWork {
    fn nodes(&self) -> usize {
        self.nodes
    }

    fn for_task(&self, task: usize, count: usize) -> Result<Arc<dyn ExecutionPlan>> {
        let count = count.max(1);
        let share = (0..self.spec.files.len())
            .filter(|&i| self.node_of[i] % count == task)
            .collect();
        // The tasks with files number IDENTITY values interleaved; one alone numbers them
        // consecutively.
        let busy: BTreeSet<usize> = self.node_of.iter().map(|n| n % count).collect();
        let numbering = (busy.range(..task).count(), busy.len());
        Ok(Arc::new(CopyLoadExec::new(
            self.spec.clone(),
            share,
            (task, numbering),
            self.rr + task as u64,
            self.compute.clone(),
        )))
    }
}

/// The logical plan of a COPY whose files are parsed on the compute nodes.
pub(crate) struct CopyNode {
    work: Arc<CopyWork>,
    schema: DFSchemaRef,
}

impl CopyNode {
    pub(crate) fn plan(work: Arc<CopyWork>) -> Result<LogicalPlan, NodeError> {
        let schema = Arc::new(DFSchema::try_from(events_schema().as_ref().clone())?);
        Ok(LogicalPlan::Extension(
            datafusion::logical_expr::Extension {
                node: Arc::new(CopyNode { work, schema }),
            },
        ))
    }
}

impl fmt::Debug for CopyNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Copy: {} file(s)", self.work.spec.files.len())
    }
}

// One COPY node is only ever equal to itself.
impl PartialEq for CopyNode {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.work, &other.work)
    }
}

impl Eq for CopyNode {}

impl PartialOrd for CopyNode {
    fn partial_cmp(&self, _other: &Self) -> Option<std::cmp::Ordering> {
        None
    }
}

impl Hash for CopyNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.work).hash(state);
    }
}

impl UserDefinedLogicalNodeCore for CopyNode {
    fn name(&self) -> &str {
        "Copy"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{self:?}")
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, _inputs: Vec<LogicalPlan>) -> Result<Self> {
        Ok(CopyNode {
            work: self.work.clone(),
            schema: self.schema.clone(),
        })
    }
}

/// Plans a [`CopyNode`] as a [`NodeWorkExec`] of its [`CopyWork`].
#[derive(Debug)]
pub(crate) struct CopyPlanner;

#[async_trait]
impl ExtensionPlanner for CopyPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        _physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn DfSession,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(copy) = node.as_any().downcast_ref::<CopyNode>() else {
            return Ok(None);
        };
        let work: Arc<dyn NodeWork> = copy.work.clone();
        Ok(Some(Arc::new(NodeWorkExec::try_new(work)?)))
    }
}

/// Errors keep their SQLSTATE when they come back from a compute node.
fn to_df(e: NodeError) -> DataFusionError {
    DataFusionError::External(Box::new(crate::error::FragmentError(e)))
}

/// One share of a COPY: loads the files `share` and streams its [`LoadEvent`]s.
#[derive(Debug)]
pub(crate) struct CopyLoadExec {
    spec: Arc<LoadSpec>,
    /// Indices into the COPY's files.
    share: Vec<usize>,
    task: usize,
    /// This share's place among the shares with files, and how many there are: how it
    /// numbers IDENTITY values.
    numbering: (usize, usize),
    rr: u64,
    compute: Arc<ComputeCluster>,
    properties: Arc<PlanProperties>,
}

impl CopyLoadExec {
    fn new(
        spec: Arc<LoadSpec>,
        share: Vec<usize>,
        (task, numbering): (usize, (usize, usize)),
        rr: u64,
        compute: Arc<ComputeCluster>,
    ) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(events_schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        CopyLoadExec {
            spec,
            share,
            task,
            numbering,
            rr,
            compute,
            properties,
        }
    }
}

impl DisplayAs for CopyLoadExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "CopyLoadExec: table={} files={} of {}",
            self.spec.table.qualified_name(),
            self.share.len(),
            self.spec.files.len()
        )
    }
}

impl ExecutionPlan for CopyLoadExec {
    fn name(&self) -> &str {
        "CopyLoadExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !children.is_empty() {
            return datafusion::common::internal_err!("CopyLoadExec has no children");
        }
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return datafusion::common::internal_err!("CopyLoadExec has one partition");
        }
        let mut builder = RecordBatchReceiverStreamBuilder::new(events_schema(), 16);
        let mut report = Reporter {
            tx: builder.tx(),
            task: self.task as u32,
            rejects_sent: 0,
        };
        let (spec, share, compute, rr, numbering) = (
            self.spec.clone(),
            self.share.clone(),
            self.compute.clone(),
            self.rr,
            self.numbering,
        );
        let span = info_span!(
            "copy_share",
            query = spec.run.query,
            task = self.task,
            files = share.len()
        );
        builder.spawn(
            async move {
                let Err(e) = spec
                    .run_share(&share, compute, rr, numbering, &mut report)
                    .await
                else {
                    return Ok(());
                };
                let failed = LoadEvent::Failed {
                    sqlstate: e.sqlstate().to_string(),
                    message: e.to_string(),
                };
                match report.send(failed).await {
                    Ok(()) => Ok(()),
                    // No one is listening: the COPY was canceled.
                    Err(_) => Err(to_df(e)),
                }
            }
            .instrument(span),
        );
        Ok(builder.build())
    }
}

/// A column's source as it travels: DEFAULT values go in the IPC row beside.
#[derive(Serialize, Deserialize)]
enum EncodedSource {
    Source(usize),
    Default,
    Identity,
    Null,
}

#[derive(Serialize, Deserialize)]
struct EncodedFile {
    location: String,
    url: String,
    path: String,
    size: u64,
    etag: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct EncodedCopy {
    version: u32,
    query: i64,
    user: String,
    pid: i32,
    table_id: u64,
    table_name: String,
    start_micros: i64,
    params: Vec<(String, Option<String>)>,
    #[serde(flatten)]
    settings: WireSettings,
    table: TableMeta,
    targets: Vec<String>,
    plan: Vec<EncodedSource>,
    /// The DEFAULT values in plan order, one row of Arrow IPC.
    defaults: Vec<u8>,
    json: Option<JsonSpec>,
    files: Vec<EncodedFile>,
    chunk_bytes: usize,
    was_empty: bool,
    share: Vec<usize>,
    task: usize,
    numbering: (usize, usize),
    rr: u64,
}

fn codec_error(e: impl fmt::Display) -> DataFusionError {
    DataFusionError::Internal(format!("COPY plan node: {e}"))
}

/// The DEFAULT values of a column plan as one row of Arrow IPC.
fn encode_defaults(plan: &[ColumnSource]) -> Result<Vec<u8>> {
    let values: Vec<&ScalarValue> = plan
        .iter()
        .filter_map(|s| match s {
            ColumnSource::Default(v) => Some(v),
            _ => None,
        })
        .collect();
    if values.is_empty() {
        return Ok(vec![]);
    }
    let columns = values
        .iter()
        .map(|v| v.to_array_of_size(1))
        .collect::<Result<Vec<_>>>()?;
    let fields: Vec<Field> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| Field::new(format!("d{i}"), c.data_type().clone(), true))
        .collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
    let mut out = vec![];
    let mut writer =
        datafusion::arrow::ipc::writer::StreamWriter::try_new(&mut out, &batch.schema())?;
    writer.write(&batch)?;
    writer.finish()?;
    drop(writer);
    Ok(out)
}

fn decode_defaults(bytes: &[u8]) -> Result<Vec<ScalarValue>> {
    if bytes.is_empty() {
        return Ok(vec![]);
    }
    let reader = datafusion::arrow::ipc::reader::StreamReader::try_new(bytes, None)?;
    let mut values = vec![];
    for batch in reader {
        let batch = batch?;
        for c in batch.columns() {
            values.push(ScalarValue::try_from_array(c, 0)?);
        }
    }
    Ok(values)
}

/// Encodes a [`CopyLoadExec`] for the plan extension.
pub(crate) fn encode(node: &dyn ExecutionPlan, buf: &mut Vec<u8>) -> Option<Result<()>> {
    let copy = node.downcast_ref::<CopyLoadExec>()?;
    Some(encode_copy(copy, buf))
}

fn encode_copy(copy: &CopyLoadExec, buf: &mut Vec<u8>) -> Result<()> {
    let spec = &copy.spec;
    let e = EncodedCopy {
        version: COPY_NODE_VERSION,
        query: spec.run.query,
        user: spec.run.user.clone(),
        pid: spec.run.pid,
        table_id: spec.run.table_id,
        table_name: spec.run.table.clone(),
        start_micros: spec.run.start.and_utc().timestamp_micros(),
        params: wire_params(&spec.params),
        settings: WireSettings::from(&spec.settings),
        table: spec.table.as_ref().clone(),
        targets: spec.targets.clone(),
        plan: spec
            .plan
            .iter()
            .map(|p| match p {
                ColumnSource::Source(i) => EncodedSource::Source(*i),
                ColumnSource::Default(_) => EncodedSource::Default,
                ColumnSource::Identity => EncodedSource::Identity,
                ColumnSource::Null => EncodedSource::Null,
            })
            .collect(),
        defaults: encode_defaults(&spec.plan)?,
        json: spec.json.clone(),
        files: spec
            .files
            .iter()
            .map(|(location, f)| EncodedFile {
                location: location.clone(),
                url: f.url.clone(),
                path: f.path.to_string(),
                size: f.size,
                etag: f.etag.clone(),
            })
            .collect(),
        chunk_bytes: spec.chunk_bytes,
        was_empty: spec.was_empty,
        share: copy.share.clone(),
        task: copy.task,
        numbering: copy.numbering,
        rr: copy.rr,
    };
    serde_json::to_writer(buf, &e).map_err(codec_error)
}

/// Decodes a [`CopyLoadExec`] that will write through `compute`.
pub(crate) fn decode(bytes: &[u8], compute: Arc<ComputeCluster>) -> Result<Arc<dyn ExecutionPlan>> {
    let e: EncodedCopy = serde_json::from_slice(bytes).map_err(codec_error)?;
    if e.version != COPY_NODE_VERSION {
        return Err(codec_error(format!(
            "encoded with version {}, this node reads version {COPY_NODE_VERSION}",
            e.version
        )));
    }
    let params = params_of(e.params);
    let opts = LoadOptions::parse(&params).map_err(to_df)?;
    let mut defaults = decode_defaults(&e.defaults)?.into_iter();
    let plan = e
        .plan
        .into_iter()
        .map(|p| {
            Ok(match p {
                EncodedSource::Source(i) => ColumnSource::Source(i),
                EncodedSource::Default => ColumnSource::Default(
                    defaults
                        .next()
                        .ok_or_else(|| codec_error("a DEFAULT value is missing"))?,
                ),
                EncodedSource::Identity => ColumnSource::Identity,
                EncodedSource::Null => ColumnSource::Null,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let start = DateTime::from_timestamp_micros(e.start_micros)
        .ok_or_else(|| codec_error("bad start time"))?
        .naive_utc();
    let spec = LoadSpec {
        run: LoadRun {
            query: e.query,
            user: e.user,
            pid: e.pid,
            table_id: e.table_id,
            table: e.table_name,
            start,
        },
        params,
        opts,
        settings: S3Settings::from(e.settings),
        table: Arc::new(e.table),
        targets: e.targets,
        plan,
        json: e.json,
        files: e
            .files
            .into_iter()
            .map(|f| {
                (
                    f.location,
                    ObjectFile {
                        url: f.url,
                        path: f.path.into(),
                        size: f.size,
                        etag: f.etag,
                    },
                )
            })
            .collect(),
        chunk_bytes: e.chunk_bytes,
        was_empty: e.was_empty,
    };
    Ok(Arc::new(CopyLoadExec::new(
        Arc::new(spec),
        e.share,
        (e.task, e.numbering),
        e.rr,
        compute,
    )))
}
