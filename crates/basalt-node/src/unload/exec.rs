//! UNLOAD written where the rows are: an [`UnloadExec`] above the query's plan writes each
//! of its input partitions to files of their own, so on a cluster the compute nodes write
//! their slices' rows in parallel, and only the list of files comes back to the leader.
//!
//! ```text
//!  leader:   UnloadNode (logical) ─▶ UnloadPlanner ─▶ UnloadExec ─▶ distributed planner
//!  compute:  task i, partition p: rows ─▶ Writer ─▶ <prefix><i·P+p>_part_<nn>  (or col=v/ folders)
//!            └─▶ one batch per partition: the files it wrote (url, rows, bytes, times)
//!  leader:   files ─▶ manifest, STL_UNLOAD_LOG
//! ```
//!
//! With PARTITION BY the plan sorts each partition's rows by the partition columns (the
//! exec's required input ordering), so a writer finishes one folder before the next.
//!
//! The node travels to compute nodes through [`UnloadCodec`] (the plan extension of
//! `basalt-mpp`'s codec): the UNLOAD's location, its parameters as written, the S3 settings
//! the leader resolved (credentials included, on the cluster's internal connections only;
//! never in EXPLAIN, logs or system tables) and the names of the result's columns.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use async_trait::async_trait;
use basalt_io::{Location, S3Settings, Storage};
use basalt_mpp::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use basalt_sql::CopyParameter;
use chrono::{DateTime, NaiveDateTime};
use datafusion::arrow::array::{AsArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::catalog::Session as DfSession;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, DFSchemaRef, DataFusionError, Result, internal_err};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{
    Expr, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{
    EquivalenceProperties, LexRequirement, OrderingRequirements, PhysicalExpr,
    PhysicalSortRequirement,
};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties, SendableRecordBatchStream,
};
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tracing::{Instrument, info_span};

use super::{UnloadOptions, Writer, file_layout, plain_schema, split_partitions};
use crate::NodeError;
use crate::extension::{WireSettings, params_of, wire_params};
use crate::loadlog::UnloadFile;

/// Version of [`UnloadExec`]'s encoding inside plan fragments.
const UNLOAD_NODE_VERSION: u32 = 1;

/// Everything a writer of one UNLOAD needs, wherever it runs.
pub(crate) struct UnloadSpec {
    location: Location,
    params: Vec<CopyParameter>,
    /// The leader's config, environment and statement credentials, layered.
    settings: S3Settings,
    opts: Arc<UnloadOptions>,
    storage: Arc<Storage>,
    /// The files' columns, once planned.
    file_schema: std::sync::OnceLock<SchemaRef>,
}

impl fmt::Debug for UnloadSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No parameters: they may hold credentials.
        f.debug_struct("UnloadSpec")
            .field("location", &self.location.url())
            .field("format", &self.opts.format)
            .finish_non_exhaustive()
    }
}

impl UnloadSpec {
    /// The UNLOAD's options from its parameters, and its storage with the S3 settings
    /// `resolve` makes of the statement's own.
    pub(crate) fn new(
        location: Location,
        params: Vec<CopyParameter>,
        resolve: impl FnOnce(&S3Settings) -> S3Settings,
    ) -> Result<UnloadSpec, NodeError> {
        let opts = Arc::new(UnloadOptions::parse(&params)?);
        let settings = resolve(&opts.settings);
        let storage = Arc::new(Storage::open(&location, &settings)?);
        Ok(UnloadSpec {
            location,
            params,
            settings,
            opts,
            storage,
            file_schema: Default::default(),
        })
    }

    pub(crate) fn location(&self) -> &Location {
        &self.location
    }

    pub(crate) fn opts(&self) -> &Arc<UnloadOptions> {
        &self.opts
    }

    pub(crate) fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }

    pub(crate) fn file_schema(&self) -> Option<SchemaRef> {
        self.file_schema.get().cloned()
    }
}

/// The schema of what an [`UnloadExec`] returns: a row per file written.
fn files_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("url", DataType::Utf8, false),
        Field::new("rows", DataType::Int64, false),
        Field::new("bytes", DataType::Int64, false),
        Field::new("format", DataType::Utf8, false),
        Field::new("start_us", DataType::Int64, false),
        Field::new("end_us", DataType::Int64, false),
    ]))
}

fn files_batch(files: &[UnloadFile]) -> Result<RecordBatch, NodeError> {
    let micros = |t: &NaiveDateTime| t.and_utc().timestamp_micros();
    Ok(RecordBatch::try_new(
        files_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(files.iter().map(|f| &f.url))),
            Arc::new(Int64Array::from_iter_values(
                files.iter().map(|f| f.rows as i64),
            )),
            Arc::new(Int64Array::from_iter_values(
                files.iter().map(|f| f.bytes as i64),
            )),
            Arc::new(StringArray::from_iter_values(
                files.iter().map(|f| f.format),
            )),
            Arc::new(Int64Array::from_iter_values(
                files.iter().map(|f| micros(&f.start)),
            )),
            Arc::new(Int64Array::from_iter_values(
                files.iter().map(|f| micros(&f.end)),
            )),
        ],
    )?)
}

/// The files an [`UnloadExec`] reported, back as [`UnloadFile`]s.
pub(crate) fn files_of(batch: &RecordBatch) -> Result<Vec<UnloadFile>, NodeError> {
    if batch.num_columns() != 6 {
        return Err(NodeError::internal("UNLOAD file list has the wrong shape"));
    }
    let text = |i: usize| batch.column(i).as_string_opt::<i32>().cloned();
    let number = |i: usize| batch.column(i).as_primitive_opt::<Int64Type>().cloned();
    let (Some(url), Some(rows), Some(bytes), Some(format), Some(start), Some(end)) =
        (text(0), number(1), number(2), text(3), number(4), number(5))
    else {
        return Err(NodeError::internal("UNLOAD file list has the wrong types"));
    };
    let time = |us: i64| {
        DateTime::from_timestamp_micros(us)
            .unwrap_or_default()
            .naive_utc()
    };
    Ok((0..batch.num_rows())
        .map(|i| UnloadFile {
            url: url.value(i).to_string(),
            rows: rows.value(i) as u64,
            bytes: bytes.value(i) as u64,
            format: match format.value(i) {
                "Csv" => "Csv",
                "Json" => "Json",
                "Parquet" => "Parquet",
                _ => "Text",
            },
            start: time(start.value(i)),
            end: time(end.value(i)),
        })
        .collect())
}

/// The logical UNLOAD: its input is the query.
#[derive(Debug)]
pub(crate) struct UnloadNode {
    input: LogicalPlan,
    spec: Arc<UnloadSpec>,
    schema: DFSchemaRef,
}

impl UnloadNode {
    pub(crate) fn plan(input: LogicalPlan, spec: Arc<UnloadSpec>) -> Result<LogicalPlan> {
        let schema = Arc::new(DFSchema::try_from(files_schema().as_ref().clone())?);
        Ok(LogicalPlan::Extension(
            datafusion::logical_expr::Extension {
                node: Arc::new(UnloadNode {
                    input,
                    spec,
                    schema,
                }),
            },
        ))
    }
}

// One UNLOAD node is only ever equal to itself.
impl PartialEq for UnloadNode {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.spec, &other.spec) && self.input == other.input
    }
}

impl Eq for UnloadNode {}

impl PartialOrd for UnloadNode {
    fn partial_cmp(&self, _other: &Self) -> Option<std::cmp::Ordering> {
        None
    }
}

impl Hash for UnloadNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.spec).hash(state);
        self.input.hash(state);
    }
}

impl UserDefinedLogicalNodeCore for UnloadNode {
    fn name(&self) -> &str {
        "Unload"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Unload: {}", self.spec.location.url())
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        let Some(input) = inputs.pop() else {
            return internal_err!("Unload has one input");
        };
        Ok(UnloadNode {
            input,
            spec: self.spec.clone(),
            schema: self.schema.clone(),
        })
    }
}

/// Plans an [`UnloadNode`] as an [`UnloadExec`].
#[derive(Debug)]
pub(crate) struct UnloadPlanner;

#[async_trait]
impl ExtensionPlanner for UnloadPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn DfSession,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(unload) = node.as_any().downcast_ref::<UnloadNode>() else {
            return Ok(None);
        };
        let [input] = physical_inputs else {
            return internal_err!("Unload has one input");
        };
        // The names clients see (repeated names restored).
        let names = crate::pg::output_schema(&input.schema())
            .unwrap_or_else(|| input.schema())
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        Ok(Some(Arc::new(
            UnloadExec::try_new(input.clone(), unload.spec.clone(), names).map_err(to_df)?,
        )))
    }
}

/// Errors keep their SQLSTATE when they come back from a compute node.
fn to_df(e: NodeError) -> DataFusionError {
    DataFusionError::External(Box::new(crate::error::FragmentError(e)))
}

/// Writes each input partition's rows to files of its own; returns, per partition, a batch
/// listing them.
#[derive(Debug)]
pub(crate) struct UnloadExec {
    input: Arc<dyn ExecutionPlan>,
    spec: Arc<UnloadSpec>,
    /// The query's column names as clients see them.
    names: Vec<String>,
    /// PARTITION BY columns, as indices into the input.
    keys: Vec<usize>,
    /// The input columns that go into the files (INCLUDE keeps the partition columns).
    kept: Vec<usize>,
    file_schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl UnloadExec {
    fn try_new(
        input: Arc<dyn ExecutionPlan>,
        spec: Arc<UnloadSpec>,
        names: Vec<String>,
    ) -> Result<UnloadExec, NodeError> {
        let input_schema = input.schema();
        if names.len() != input_schema.fields().len() {
            return Err(NodeError::internal("UNLOAD: a name for every column"));
        }
        let renamed = Schema::new(
            input_schema
                .fields()
                .iter()
                .zip(&names)
                .map(|(f, n)| f.as_ref().clone().with_name(n))
                .collect::<Vec<_>>(),
        );
        let (keys, kept, file_schema) = file_layout(&plain_schema(&renamed), &spec.opts)?;
        let _ = spec.file_schema.set(file_schema.clone());
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(files_schema()),
            Partitioning::UnknownPartitioning(input.output_partitioning().partition_count()),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Ok(UnloadExec {
            input,
            spec,
            names,
            keys,
            kept,
            file_schema,
            properties,
        })
    }
}

impl DisplayAs for UnloadExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "UnloadExec: {} format={:?}",
            self.spec.location.url(),
            self.spec.opts.format
        )?;
        if !self.keys.is_empty() {
            write!(f, " partition_by={:?}", self.spec.opts.partition_by)?;
        }
        Ok(())
    }
}

impl ExecutionPlan for UnloadExec {
    fn name(&self) -> &str {
        "UnloadExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        let schema = self.input.schema();
        let keys = self.keys.iter().map(|&k| {
            PhysicalSortRequirement::new(
                Arc::new(Column::new(schema.field(k).name(), k)),
                Some(SortOptions::default()),
            )
        });
        vec![LexRequirement::new(keys).map(OrderingRequirements::new)]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    // Each partition is a writer; more of them would only make more, smaller files.
    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return internal_err!("UnloadExec has one child");
        }
        Ok(Arc::new(
            UnloadExec::try_new(
                children.swap_remove(0),
                self.spec.clone(),
                self.names.clone(),
            )
            .map_err(to_df)?,
        ))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let (task, _) = basalt_mpp::task_of_context(&context);
        let partitions = self.input.output_partitioning().partition_count();
        // Files are numbered by the slice-like position of this partition in the cluster.
        let slice = task * partitions + partition;
        let mut input = self.input.execute(partition, context)?;
        let (spec, keys, kept, file_schema) = (
            self.spec.clone(),
            self.keys.clone(),
            self.kept.clone(),
            self.file_schema.clone(),
        );
        let writer = move |dir: String| Writer {
            storage: spec.storage.clone(),
            opts: spec.opts.clone(),
            schema: file_schema.clone(),
            dir,
            name: Box::new(move |n| format!("{slice:04}_part_{n:02}")),
            part: 0,
            current: None,
            done: vec![],
        };
        let write = async move {
            let mut files = vec![];
            let mut current: Option<Writer> = None;
            while let Some(batch) = input.next().await {
                let batch = batch?;
                if keys.is_empty() {
                    current
                        .get_or_insert_with(|| writer(String::new()))
                        .write(&batch)
                        .await?;
                    continue;
                }
                for (dir, part) in split_partitions(&batch, &keys)? {
                    if current.as_ref().is_some_and(|w| w.dir != dir) {
                        let mut w = current.take().expect("a writer");
                        w.close().await?;
                        files.append(&mut w.done);
                    }
                    current
                        .get_or_insert_with(|| writer(dir))
                        .write(&part.project(&kept)?)
                        .await?;
                }
            }
            if let Some(mut w) = current {
                w.close().await?;
                files.append(&mut w.done);
            }
            files_batch(&files)
        };
        let write =
            async move { write.await.map_err(to_df) }.instrument(info_span!("unload_task", slice));
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            files_schema(),
            futures::stream::once(write),
        )))
    }
}

/// An [`UnloadExec`] inside a plan fragment.
#[derive(Serialize, Deserialize)]
struct EncodedUnload {
    version: u32,
    location: String,
    params: Vec<(String, Option<String>)>,
    #[serde(flatten)]
    settings: WireSettings,
    names: Vec<String>,
}

/// Encodes [`UnloadExec`] for `basalt-mpp`'s codec.
#[derive(Debug)]
pub(crate) struct UnloadCodec;

impl PhysicalExtensionCodec for UnloadCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let e: EncodedUnload = serde_json::from_slice(buf)
            .map_err(|e| DataFusionError::Internal(format!("UNLOAD plan node: {e}")))?;
        if e.version != UNLOAD_NODE_VERSION {
            return internal_err!(
                "UNLOAD plan node of version {}, this node reads version {UNLOAD_NODE_VERSION}",
                e.version
            );
        }
        let [input] = inputs else {
            return internal_err!("UnloadExec has one input");
        };
        let settings = S3Settings::from(e.settings);
        let params = params_of(e.params);
        let location = Location::parse(&e.location).map_err(|e| to_df(e.into()))?;
        // The leader resolved the settings; the statement's own are in them.
        let spec = UnloadSpec::new(location, params, |_| settings).map_err(to_df)?;
        Ok(Arc::new(
            UnloadExec::try_new(input.clone(), Arc::new(spec), e.names).map_err(to_df)?,
        ))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let Some(unload) = node.downcast_ref::<UnloadExec>() else {
            return internal_err!("BasaltDB's plan extension cannot encode {}", node.name());
        };
        let spec = &unload.spec;
        let e = EncodedUnload {
            version: UNLOAD_NODE_VERSION,
            location: spec.location.url(),
            params: wire_params(&spec.params),
            settings: WireSettings::from(&spec.settings),
            names: unload.names.clone(),
        };
        serde_json::to_writer(buf, &e)
            .map_err(|e| DataFusionError::Internal(format!("UNLOAD plan node: {e}")))
    }
}

/// The session's physical planner: DataFusion's, planning [`UnloadNode`]s and COPY's
/// [`crate::load::CopyNode`]s too.
#[derive(Debug)]
pub(crate) struct BasaltQueryPlanner;

#[async_trait]
impl datafusion::execution::context::QueryPlanner for BasaltQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn DfSession,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        datafusion::physical_planner::DefaultPhysicalPlanner::with_extension_planners(vec![
            Arc::new(UnloadPlanner),
            Arc::new(crate::load::CopyPlanner),
        ])
        .create_physical_plan(logical_plan, session)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_lists_survive_the_trip_back() {
        let t = DateTime::from_timestamp_micros(1_700_000_000_123_456)
            .unwrap()
            .naive_utc();
        let files = vec![UnloadFile {
            url: "s3://b/p0000_part_00.parquet".into(),
            rows: 7,
            bytes: 1234,
            format: "Parquet",
            start: t,
            end: t,
        }];
        let back = files_of(&files_batch(&files).unwrap()).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(
            (
                back[0].url.as_str(),
                back[0].rows,
                back[0].bytes,
                back[0].format,
                back[0].start
            ),
            ("s3://b/p0000_part_00.parquet", 7, 1234, "Parquet", t)
        );
    }
}
