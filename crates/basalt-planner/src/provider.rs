//! Table provider and slice scan.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use basalt_catalog::{DistStyle, NodeId, SegmentMeta, SliceId, TableMeta};
use basalt_storage::{ComputeCluster, ScanCounters, ScanRequest, target_slices};
use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{ColumnStatistics, ScalarValue, Statistics, internal_err};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{
    Count, ExecutionPlanMetricsSet, MetricBuilder, MetricValue, MetricsSet,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use futures::StreamExt;

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
        DistStyle::All | DistStyle::Auto => targets.into_iter().take(1).collect(),
        _ => targets,
    }
}

/// The slices each output partition of a scan reads in the plan the leader builds.
///
/// With P slices per node, partition p reads every slice s with `s % P == p`. A KEY table's
/// row lives on slice `hash % N`, and P divides N, so partition p holds exactly the rows with
/// `hash % P == p`: what DataFusion's hash repartitioning into P partitions would produce. A
/// per-task variant (see [`SliceScanExec::for_task`]) keeps that property.
///
/// A stage on several nodes must never see a single-partition scan: DataFusion would then plan
/// single-partition operators (a final aggregate, a limit) right on top of it, and each task
/// would apply them to its own slices only. So with one slice per node the scan gets a second,
/// empty partition.
fn partition_slices(slices: &[SliceId], per_node: usize) -> Vec<Vec<SliceId>> {
    if slices.len() <= 1 {
        return vec![slices.to_vec()];
    }
    let mut out: Vec<Vec<SliceId>> = (0..per_node)
        .map(|p| {
            slices
                .iter()
                .copied()
                .filter(|s| s.0 as usize % per_node == p)
                .collect()
        })
        .collect();
    if out.len() == 1 {
        out.push(vec![]);
    }
    out
}

/// What a [`SliceScanExec`] reads, without the cluster handle it reads through: what a plan
/// fragment carries to the compute node that runs it.
#[derive(Debug, Clone)]
pub struct SliceScanParts {
    pub table: Arc<TableMeta>,
    /// Indices into the table's columns (then its row ids, with `row_ids`).
    pub projection: Option<Vec<usize>>,
    /// Filters over the table's column names, for zone maps (inexact).
    pub filters: Vec<Expr>,
    pub limit: Option<usize>,
    pub row_ids: bool,
    /// Output partition p reads the slices `partitions[p]`, with the segments of the version
    /// the statement reads.
    pub partitions: Vec<Vec<(SliceId, Vec<SegmentMeta>)>>,
    /// The compute node holding every slice this task's variant reads; `None` in the plan the
    /// leader builds (which reads all of them).
    pub node: Option<NodeId>,
    /// A replicated (ALL) table read from the copy on the node running the scan, whichever
    /// it is: every task of a stage reads a whole copy where it runs (Redshift's
    /// DS_DIST_ALL_NONE). `copies` lists each node's copy; `partitions` is used where no
    /// copy is local (on the leader).
    pub local_copy: bool,
    pub copies: Vec<(SliceId, Vec<SegmentMeta>)>,
}

/// Reads one table version: output partition p reads the slices of `partitions[p]`, each on the
/// compute node that owns it.
///
/// The scan declares `Hash(distkey)` partitioning for a KEY table whose rows were placed with
/// the running build's hash (see [`basalt_storage::hash_fingerprint`]), so DataFusion plans
/// co-located joins and aggregates on the distkey without a repartition; otherwise its
/// partitioning is unknown and joins redistribute (always correct).
#[derive(Debug)]
pub struct SliceScanExec {
    parts: SliceScanParts,
    compute: Arc<ComputeCluster>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    /// Per slice (the metric's partition is the slice id): output rows, and the storage's
    /// [`ScanCounters`] as `blocks_read`, `blocks_skipped`, `rows_pre_filter` and
    /// `bytes_scanned`.
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
        let slices = scan_slices(&meta, &compute);
        let per_node = compute.topology.slices_per_node as usize;
        let partitions = partition_slices(&slices, per_node)
            .into_iter()
            .map(|group| {
                group
                    .into_iter()
                    .map(|s| (s, meta.data.slices.get(&s).cloned().unwrap_or_default()))
                    .collect()
            })
            .collect();
        let copies = match meta.effective_diststyle() {
            DistStyle::All | DistStyle::Auto => target_slices(&meta, &compute.topology)
                .into_iter()
                .map(|s| (s, meta.data.slices.get(&s).cloned().unwrap_or_default()))
                .collect(),
            _ => vec![],
        };
        Self::from_parts(
            SliceScanParts {
                table: meta,
                projection,
                filters,
                limit,
                row_ids,
                partitions,
                node: None,
                local_copy: false,
                copies,
            },
            compute,
        )
    }

    /// The scan described by `parts`, reading through `compute` (a compute node decoding a
    /// fragment gives its own view of the cluster).
    pub fn from_parts(parts: SliceScanParts, compute: Arc<ComputeCluster>) -> Result<Self> {
        let full = table_schema(&parts.table, parts.row_ids);
        let schema = match &parts.projection {
            Some(p) => Arc::new(full.project(p)?),
            None => full,
        };
        let partitions = parts.partitions.len().max(1);
        // Partition p holds the rows with hash % P == p only when there are P partitions.
        let hashed = partitions == compute.topology.slices_per_node as usize;
        let partitioning = match distkey_column(&parts, &schema).filter(|_| hashed) {
            Some(key) => Partitioning::Hash(vec![key], partitions),
            None => Partitioning::UnknownPartitioning(partitions),
        };
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            partitioning,
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(SliceScanExec {
            parts,
            compute,
            schema,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    pub fn parts(&self) -> &SliceScanParts {
        &self.parts
    }

    pub fn table(&self) -> &Arc<TableMeta> {
        &self.parts.table
    }

    /// The shape of the cluster the scan reads.
    pub fn topology(&self) -> basalt_catalog::Topology {
        self.compute.topology
    }

    /// This scan of a replicated table reading the copy on whichever node runs it, if it is
    /// one (and not a DML scan, whose row ids name the first copy).
    pub fn reading_local_copy(&self) -> Option<Self> {
        if !self.is_replicated() || self.parts.row_ids || self.parts.copies.is_empty() {
            return None;
        }
        Self::from_parts(
            SliceScanParts {
                local_copy: true,
                ..self.parts.clone()
            },
            self.compute.clone(),
        )
        .ok()
    }

    /// The output column whose hash places the scan's rows on nodes, with the partitions per
    /// task that placement assumes ([`basalt_storage::placement_partitions`]): a KEY table
    /// placed by this build. A hash repartition on that column alone, into that many
    /// partitions, then moves no row off its node.
    pub fn placed_on(&self) -> Option<(usize, usize)> {
        let key = distkey_column(&self.parts, &self.schema)?;
        let index = key.downcast_ref::<Column>()?.index();
        Some((
            index,
            basalt_storage::placement_partitions(&self.compute.topology) as usize,
        ))
    }

    /// Whether a scan reads a single copy of a replicated (ALL) table: it then runs as one task.
    pub fn is_replicated(&self) -> bool {
        matches!(
            self.parts.table.effective_diststyle(),
            DistStyle::All | DistStyle::Auto
        )
    }

    /// The variant of this scan that task `task` of `tasks` runs. Task j reads the slices of
    /// the nodes i with `i % tasks == j`, keeping P partitions with partition p reading slice
    /// `i * P + p` of each: when `tasks` divides the node count this is the layout a hash
    /// shuffle into `P * tasks` buckets gives consumer task j (bucket `j * P + p`), so the
    /// scan stays co-located with redistributed inputs. With one task per node, task i reads
    /// exactly node i's slices, and is routed there.
    pub fn for_task(&self, task: usize, tasks: usize) -> Result<Self> {
        let topology = self.compute.topology;
        let nodes = topology.nodes as usize;
        if tasks == 0 || !nodes.is_multiple_of(tasks) {
            return internal_err!(
                "a scan of {} cannot run on {tasks} task(s) of a {nodes}-node cluster",
                self.parts.table.qualified_name()
            );
        }
        let mine = |s: &SliceId| topology.node_of(*s) as usize % tasks == task;
        let partitions: Vec<Vec<(SliceId, Vec<SegmentMeta>)>> = self
            .parts
            .partitions
            .iter()
            .map(|group| group.iter().filter(|(s, _)| mine(s)).cloned().collect())
            .collect();
        let owners: BTreeSet<u32> = partitions
            .iter()
            .flatten()
            .map(|(s, _)| topology.node_of(*s))
            .collect();
        let node = match (owners.len(), tasks == nodes) {
            (1, _) => owners.first().map(|n| NodeId(*n)),
            (0, true) => Some(NodeId(task as u32)),
            _ => None,
        };
        Self::from_parts(
            SliceScanParts {
                partitions,
                node,
                ..self.parts.clone()
            },
            self.compute.clone(),
        )
    }

    /// Every slice the scan reads, in partition order.
    pub fn slices(&self) -> Vec<SliceId> {
        self.parts
            .partitions
            .iter()
            .flatten()
            .map(|(s, _)| *s)
            .collect()
    }

    /// The slices output partition `partition` reads.
    pub fn slices_of(&self, partition: usize) -> Vec<SliceId> {
        self.parts
            .partitions
            .get(partition)
            .map(|g| g.iter().map(|(s, _)| *s).collect())
            .unwrap_or_default()
    }

    /// Whether zone maps restrict the scan (Redshift's `is_rrscan`).
    pub fn is_range_restricted(&self) -> bool {
        !self.parts.filters.is_empty()
    }

    /// Counters registered in this plan's metrics for `slice`.
    fn counters(&self, slice: SliceId) -> ScanCounters {
        let count = |name: &'static str| {
            let c = Count::new();
            MetricBuilder::new(&self.metrics)
                .with_partition(slice.0 as usize)
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

    /// Start reading one slice.
    fn scan_slice(
        &self,
        slice: SliceId,
        segments: Vec<SegmentMeta>,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let node = self
            .compute
            .node_for(slice)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        // With row ids, the node returns the table columns asked for, then all three ids;
        // pick the columns in the order the plan asked for them.
        let columns = self.parts.table.columns.len();
        let (table_projection, pick) = match (&self.parts.projection, self.parts.row_ids) {
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
                    table: self.parts.table.clone(),
                    slice,
                    segments,
                    projection: table_projection,
                    filters: self.parts.filters.clone(),
                    limit: self.parts.limit,
                    row_ids: self.parts.row_ids,
                    counters: Some(self.counters(slice)),
                },
                context,
            )
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let output_rows = MetricBuilder::new(&self.metrics).output_rows(slice.0 as usize);
        let schema = self.schema.clone();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            stream.map(move |b| {
                let b = b?;
                let rows = b.num_rows();
                output_rows.add(rows);
                let Some(pick) = &pick else {
                    return Ok(b);
                };
                Ok(RecordBatch::try_new_with_options(
                    schema.clone(),
                    b.project(pick)?.columns().to_vec(),
                    &RecordBatchOptions::new().with_row_count(Some(rows)),
                )?)
            }),
        )))
    }
}

/// The distkey as a column of the scan's output, when the scan may declare itself
/// hash-partitioned on it: a KEY table whose rows were placed with this build's hash.
fn distkey_column(parts: &SliceScanParts, schema: &SchemaRef) -> Option<Arc<dyn PhysicalExpr>> {
    let table = &parts.table;
    if table.effective_diststyle() != DistStyle::Key
        || table.hash_fingerprint != basalt_storage::hash_fingerprint()
    {
        return None;
    }
    let key = table.distkey_index()?;
    let at = match &parts.projection {
        Some(p) => p.iter().position(|&i| i == key)?,
        None => key,
    };
    Some(Arc::new(Column::new(schema.field(at).name(), at)))
}

impl DisplayAs for SliceScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let parts = &self.parts;
        write!(
            f,
            "SliceScanExec: table={} diststyle={} slices={} segments={}",
            parts.table.qualified_name(),
            parts.table.diststyle_text(),
            parts.partitions.iter().map(|g| g.len()).sum::<usize>(),
            parts
                .partitions
                .iter()
                .flatten()
                .map(|(_, s)| s.len())
                .sum::<usize>()
        )?;
        if let Some(node) = parts.node {
            write!(f, " node={}", node.0)?;
        }
        if parts.local_copy {
            write!(f, " local_copy")?;
        }
        if !parts.filters.is_empty() {
            let f2: Vec<String> = parts.filters.iter().map(|e| e.to_string()).collect();
            write!(f, " zone_map_filters=[{}]", f2.join(", "))?;
        }
        if let Some(l) = parts.limit {
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
        let local = self
            .compute
            .local_nodes()
            .first()
            .map(|n| n.id)
            .filter(|_| self.parts.local_copy);
        let group = match local {
            // The copy on this process's node.
            Some(node) if partition == 0 => self
                .parts
                .copies
                .iter()
                .find(|(s, _)| self.compute.topology.node_of(*s) == node.0)
                .cloned()
                .into_iter()
                .collect(),
            Some(_) => vec![],
            None => self
                .parts
                .partitions
                .get(partition)
                .cloned()
                .unwrap_or_default(),
        };
        // The partition's slices are read one after another.
        let streams = group
            .into_iter()
            .map(|(slice, segments)| self.scan_slice(slice, segments, context.clone()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures::stream::iter(streams).flatten(),
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn partition_statistics(&self, partition: Option<usize>) -> Result<Arc<Statistics>> {
        let mut s = Statistics::new_unknown(&self.schema);
        if partition.is_none() {
            let all = column_statistics(&self.parts.table, self.parts.row_ids);
            s.column_statistics = match &self.parts.projection {
                Some(p) => p.iter().map(|&i| all[i].clone()).collect(),
                None => all,
            };
        }
        let live = |group: &Vec<(SliceId, Vec<SegmentMeta>)>| -> u64 {
            group
                .iter()
                .flat_map(|(_, segs)| segs.iter().map(|g| g.live_rows()))
                .sum()
        };
        let rows: u64 = match partition {
            Some(p) => self.parts.partitions.get(p).map(live).unwrap_or(0),
            None => self.parts.partitions.iter().map(live).sum(),
        };
        s.num_rows = match self.parts.limit {
            Some(l) => Precision::Inexact((rows as usize).min(l)),
            None => Precision::Exact(rows as usize),
        };
        Ok(Arc::new(s))
    }
}
