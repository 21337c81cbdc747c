//! Table provider and slice scan.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use basalt_catalog::{SegmentMeta, SliceId, TableMeta};
use basalt_storage::{ComputeCluster, ScanCounters, ScanRequest, target_slices};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{ColumnStatistics, ScalarValue, Statistics, internal_err};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{
    Count, ExecutionPlanMetricsSet, MetricBuilder, MetricValue, MetricsSet,
};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};

/// A view as the catalog lists it (pg_class, information_schema): its columns and its
/// definition. Statements never scan it: the session expands views into their queries
/// before planning.
#[derive(Debug)]
pub struct ViewStub {
    meta: Arc<basalt_catalog::ViewMeta>,
    schema: SchemaRef,
}

impl ViewStub {
    pub fn new(meta: Arc<basalt_catalog::ViewMeta>) -> Self {
        let fields: Vec<datafusion::arrow::datatypes::Field> = meta
            .columns
            .iter()
            .map(|(name, ty)| {
                datafusion::arrow::datatypes::Field::new(name, ty.to_arrow(), true).with_metadata(
                    [(
                        basalt_catalog::SQL_TYPE_METADATA_KEY.to_string(),
                        ty.to_metadata(),
                    )]
                    .into(),
                )
            })
            .collect();
        ViewStub {
            meta,
            schema: Arc::new(datafusion::arrow::datatypes::Schema::new(fields)),
        }
    }

    pub fn meta(&self) -> &Arc<basalt_catalog::ViewMeta> {
        &self.meta
    }
}

#[async_trait]
impl TableProvider for ViewStub {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn get_table_definition(&self) -> Option<&str> {
        Some(&self.meta.query)
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        internal_err!(
            "view {} is read through its definition and cannot be scanned",
            self.meta.qualified_name()
        )
    }
}

/// A BasaltDB table at the version the planning transaction sees.
#[derive(Debug)]
pub struct BasaltTable {
    meta: Arc<TableMeta>,
    compute: Arc<ComputeCluster>,
    /// Scans add [`basalt_storage::ROW_ID_COLUMNS`] after the table's columns (DELETE and
    /// UPDATE read the table this way).
    row_ids: bool,
}

impl BasaltTable {
    pub fn new(meta: Arc<TableMeta>, compute: Arc<ComputeCluster>) -> Self {
        BasaltTable {
            meta,
            compute,
            row_ids: false,
        }
    }

    /// The table with its row ids as three more columns.
    pub fn with_row_ids(meta: Arc<TableMeta>, compute: Arc<ComputeCluster>) -> Self {
        BasaltTable {
            meta,
            compute,
            row_ids: true,
        }
    }

    pub fn meta(&self) -> &Arc<TableMeta> {
        &self.meta
    }
}

#[async_trait]
impl TableProvider for BasaltTable {
    fn schema(&self) -> SchemaRef {
        table_schema(&self.meta, self.row_ids)
    }

    fn table_type(&self) -> TableType {
        if self.meta.temporary {
            TableType::Temporary
        } else {
            TableType::Base
        }
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Filters prune blocks by zone maps; DataFusion still applies them exactly.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    fn statistics(&self) -> Option<Statistics> {
        let mut s = Statistics::new_unknown(&self.schema());
        s.num_rows = Precision::Exact(logical_rows(&self.meta, &self.compute) as usize);
        s.column_statistics = column_statistics(&self.meta, self.row_ids);
        Some(s)
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(SliceScanExec::new(
            self.meta.clone(),
            self.compute.clone(),
            projection.cloned(),
            filters.to_vec(),
            limit,
            self.row_ids,
        )?))
    }
}

/// The table's columns, and its row ids after them when asked for.
fn table_schema(meta: &TableMeta, row_ids: bool) -> SchemaRef {
    let schema = meta.arrow_schema();
    if !row_ids {
        return schema;
    }
    let mut fields: Vec<_> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(basalt_storage::row_id_fields());
    Arc::new(datafusion::arrow::datatypes::Schema::new(fields))
}

/// Per-column statistics from the table's last ANALYZE (inexact: the table may have changed
/// since), in the provider's column order; unknown for columns never analyzed and row ids.
fn column_statistics(meta: &TableMeta, row_ids: bool) -> Vec<ColumnStatistics> {
    let mut out: Vec<ColumnStatistics> = meta
        .columns
        .iter()
        .map(|c| {
            let Some(cs) = meta.stats.as_ref().and_then(|s| s.columns.get(&c.id)) else {
                return ColumnStatistics::new_unknown();
            };
            let ty = c.ty.to_arrow();
            let value = |v: &Option<String>| {
                v.as_ref()
                    .and_then(|v| ScalarValue::try_from_string(v.clone(), &ty).ok())
                    .map_or(Precision::Absent, Precision::Inexact)
            };
            ColumnStatistics {
                null_count: Precision::Inexact(cs.nulls as usize),
                distinct_count: Precision::Inexact(cs.distinct as usize),
                min_value: value(&cs.min),
                max_value: value(&cs.max),
                ..ColumnStatistics::new_unknown()
            }
        })
        .collect();
    if row_ids {
        out.extend(
            (0..basalt_storage::ROW_ID_COLUMNS.len()).map(|_| ColumnStatistics::new_unknown()),
        );
    }
    out
}

/// Rows a query sees: one copy for ALL tables.
fn logical_rows(meta: &TableMeta, compute: &ComputeCluster) -> u64 {
    let slices = scan_slices(meta, compute);
    slices
        .iter()
        .map(|s| {
            meta.data
                .slices
                .get(s)
                .map(|v| v.iter().map(|g| g.live_rows()).sum::<u64>())
                .unwrap_or(0)
        })
        .sum()
}

/// Slices a scan reads: every slice holding rows, but for ALL tables only the first node's copy.
fn scan_slices(meta: &TableMeta, compute: &ComputeCluster) -> Vec<SliceId> {
    let targets = target_slices(meta, &compute.topology);
    match meta.effective_diststyle() {
        basalt_catalog::DistStyle::All | basalt_catalog::DistStyle::Auto => {
            targets.into_iter().take(1).collect()
        }
        _ => targets,
    }
}

/// Reads one table version: partition i scans the i-th slice holding the table, on the compute
/// node that owns that slice.
#[derive(Debug)]
pub struct SliceScanExec {
    meta: Arc<TableMeta>,
    compute: Arc<ComputeCluster>,
    projection: Option<Vec<usize>>,
    filters: Vec<Expr>,
    limit: Option<usize>,
    row_ids: bool,
    tasks: Vec<(SliceId, Vec<SegmentMeta>)>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    /// Per partition (slice): output rows, and the storage's [`ScanCounters`] as
    /// `blocks_read`, `blocks_skipped`, `rows_pre_filter` and `bytes_scanned`.
    metrics: ExecutionPlanMetricsSet,
}

impl SliceScanExec {
    pub fn new(
        meta: Arc<TableMeta>,
        compute: Arc<ComputeCluster>,
        projection: Option<Vec<usize>>,
        filters: Vec<Expr>,
        limit: Option<usize>,
        row_ids: bool,
    ) -> Result<Self> {
        let full = table_schema(&meta, row_ids);
        let schema = match &projection {
            Some(p) => Arc::new(full.project(p)?),
            None => full,
        };
        let tasks: Vec<(SliceId, Vec<SegmentMeta>)> = scan_slices(&meta, &compute)
            .into_iter()
            .map(|s| (s, meta.data.slices.get(&s).cloned().unwrap_or_default()))
            .collect();
        let partitions = tasks.len().max(1);
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(SliceScanExec {
            meta,
            compute,
            projection,
            filters,
            limit,
            row_ids,
            tasks,
            schema,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    pub fn table(&self) -> &Arc<TableMeta> {
        &self.meta
    }

    /// The slice partition `partition` reads, if any.
    pub fn slice_of(&self, partition: usize) -> Option<SliceId> {
        self.tasks.get(partition).map(|(s, _)| *s)
    }

    /// Whether zone maps restrict the scan (Redshift's `is_rrscan`).
    pub fn is_range_restricted(&self) -> bool {
        !self.filters.is_empty()
    }

    /// Counters registered in this plan's metrics for `partition`.
    fn counters(&self, partition: usize) -> ScanCounters {
        let count = |name: &'static str| {
            let c = Count::new();
            MetricBuilder::new(&self.metrics)
                .with_partition(partition)
                .build(MetricValue::Count {
                    name: name.into(),
                    count: c.clone(),
                });
            c
        };
        ScanCounters {
            blocks_read: count("blocks_read"),
            blocks_skipped: count("blocks_skipped"),
            rows_pre_filter: count("rows_pre_filter"),
            bytes: count("bytes_scanned"),
        }
    }
}

impl DisplayAs for SliceScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "SliceScanExec: table={} diststyle={} slices={} segments={}",
            self.meta.qualified_name(),
            self.meta.diststyle_text(),
            self.tasks.len(),
            self.tasks.iter().map(|(_, s)| s.len()).sum::<usize>()
        )?;
        if !self.filters.is_empty() {
            let f2: Vec<String> = self.filters.iter().map(|e| e.to_string()).collect();
            write!(f, " zone_map_filters=[{}]", f2.join(", "))?;
        }
        if let Some(l) = self.limit {
            write!(f, " limit={l}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for SliceScanExec {
    fn name(&self) -> &str {
        "SliceScanExec"
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
        if children.is_empty() {
            Ok(self)
        } else {
            internal_err!("SliceScanExec has no children")
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let Some((slice, segments)) = self.tasks.get(partition).cloned() else {
            return Ok(Box::pin(
                datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
                    self.schema.clone(),
                    futures::stream::empty(),
                ),
            ));
        };
        let node = self
            .compute
            .node_for(slice)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        // With row ids, the node returns the table columns asked for, then all three ids;
        // pick the columns in the order the plan asked for them.
        let columns = self.meta.columns.len();
        let (table_projection, pick) = match (&self.projection, self.row_ids) {
            (Some(p), true) => {
                let table: Vec<usize> = p.iter().copied().filter(|&i| i < columns).collect();
                let pick: Vec<usize> = p
                    .iter()
                    .map(|&i| match table.iter().position(|&t| t == i) {
                        Some(at) => at,
                        None => table.len() + (i - columns),
                    })
                    .collect();
                (Some(table), Some(pick))
            }
            (p, _) => (p.clone(), None),
        };
        let stream = node
            .scan(
                ScanRequest {
                    table: self.meta.clone(),
                    slice,
                    segments,
                    projection: table_projection,
                    filters: self.filters.clone(),
                    limit: self.limit,
                    row_ids: self.row_ids,
                    counters: Some(self.counters(partition)),
                },
                context,
            )
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let output_rows = MetricBuilder::new(&self.metrics).output_rows(partition);
        let schema = self.schema.clone();
        let picked = futures::StreamExt::map(stream, move |b| {
            let b = b?;
            let rows = b.num_rows();
            output_rows.add(rows);
            let Some(pick) = &pick else {
                return Ok(b);
            };
            Ok(datafusion::arrow::array::RecordBatch::try_new_with_options(
                schema.clone(),
                b.project(pick)?.columns().to_vec(),
                &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(rows)),
            )?)
        });
        Ok(Box::pin(
            datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
                self.schema.clone(),
                picked,
            ),
        ))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn partition_statistics(&self, partition: Option<usize>) -> Result<Arc<Statistics>> {
        let mut s = Statistics::new_unknown(&self.schema);
        if partition.is_none() {
            let all = column_statistics(&self.meta, self.row_ids);
            s.column_statistics = match &self.projection {
                Some(p) => p.iter().map(|&i| all[i].clone()).collect(),
                None => all,
            };
        }
        let rows: u64 = match partition {
            Some(p) => self
                .tasks
                .get(p)
                .map(|(_, segs)| segs.iter().map(|g| g.live_rows()).sum())
                .unwrap_or(0),
            None => self
                .tasks
                .iter()
                .flat_map(|(_, segs)| segs.iter().map(|g| g.live_rows()))
                .sum(),
        };
        s.num_rows = match self.limit {
            Some(l) => Precision::Inexact((rows as usize).min(l)),
            None => Precision::Exact(rows as usize),
        };
        Ok(Arc::new(s))
    }
}
