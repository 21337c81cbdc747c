//! The compute-node service: holds slices, writes segments, runs slice scans.
//!
//! In one process the leader calls these methods directly; the MPP issue puts the same service
//! behind RPC, so requests carry everything they need (table definition, segment list) and
//! nothing refers to leader memory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use basalt_catalog::{NodeId, SegmentMeta, SliceId, TableId, TableMeta, Topology};
use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::ParquetRowSelection;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::execution::cache::default_cache::DefaultCache;
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, col};
use datafusion::physical_expr::create_physical_expr;
use datafusion::physical_expr::execution_props::ExecutionProps;
use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, MetricValue,
};
use datafusion::physical_plan::sorts::streaming_merge::StreamingMergeBuilder;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use futures::StreamExt;
use tracing::instrument;

use crate::footers::SegmentReaderFactory;
use crate::{SliceStore, StorageError};

/// Rows per segment file when a write is large.
pub const MAX_SEGMENT_ROWS: usize = 1 << 20;

/// Hidden columns a scan adds with [`ScanRequest::row_ids`]: the slice, the segment's index in
/// the request's segment list, and the row's position in the segment file. DELETE and UPDATE
/// find the rows they change through them.
pub const ROW_ID_COLUMNS: [&str; 3] = ["__basalt_slice", "__basalt_segment", "__basalt_row"];

/// The schema of [`ROW_ID_COLUMNS`].
pub fn row_id_fields() -> Vec<Field> {
    vec![
        Field::new(ROW_ID_COLUMNS[0], DataType::Int32, false),
        Field::new(ROW_ID_COLUMNS[1], DataType::Int32, false),
        Field::new(ROW_ID_COLUMNS[2], DataType::Int64, false),
    ]
}

/// Write rows (logical column order) of one table to one slice.
pub struct WriteRequest {
    pub table: Arc<TableMeta>,
    pub slice: SliceId,
    pub batches: Vec<RecordBatch>,
}

/// Scan one table version on one slice.
#[derive(Debug, Clone)]
pub struct ScanRequest {
    pub table: Arc<TableMeta>,
    pub slice: SliceId,
    pub segments: Vec<SegmentMeta>,
    /// Indices into the table's columns.
    pub projection: Option<Vec<usize>>,
    /// Filters over logical column names, used to skip blocks by zone maps (inexact).
    pub filters: Vec<Expr>,
    pub limit: Option<usize>,
    /// Append [`ROW_ID_COLUMNS`] after the projected columns.
    pub row_ids: bool,
    /// Where the scan adds what it read, once its stream ends (or is dropped).
    pub counters: Option<ScanCounters>,
}

impl ScanRequest {
    /// The columns the scan returns: the projected ones in logical names, then the row ids
    /// when asked for.
    pub fn output_schema(&self) -> Result<SchemaRef, StorageError> {
        let logical = self.table.arrow_schema();
        let projected = match &self.projection {
            Some(p) => logical.project(p)?,
            None => logical.as_ref().clone(),
        };
        if !self.row_ids {
            return Ok(Arc::new(projected));
        }
        let mut fields: Vec<Field> = projected
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.extend(row_id_fields());
        Ok(Arc::new(Schema::new(fields)))
    }
}

/// What a slice scan read, for EXPLAIN ANALYZE and STL_SCAN. A block is a row group of up to
/// [`crate::ROWS_PER_BLOCK`] rows with its zone maps.
#[derive(Debug, Clone, Default)]
pub struct ScanCounters {
    /// Blocks whose rows were read.
    pub blocks_read: Count,
    /// Blocks not read: their zone maps ruled the filters out, or every row of their segment
    /// is deleted.
    pub blocks_skipped: Count,
    /// Rows decoded from the blocks read, before the query's filters.
    pub rows_pre_filter: Count,
    /// Bytes read from segment files.
    pub bytes: Count,
}

impl ScanCounters {
    /// Add what the finished scan `exec` reports.
    fn record(&self, exec: &dyn ExecutionPlan) {
        let Some(metrics) = exec.metrics() else {
            return;
        };
        let pruning = |name: &str| match metrics.sum_by_name(name) {
            Some(MetricValue::PruningMetrics {
                pruning_metrics, ..
            }) => (pruning_metrics.pruned(), pruning_metrics.matched()),
            _ => (0, 0),
        };
        let count = |name: &str| metrics.sum_by_name(name).map_or(0, |v| v.as_usize());
        let (pruned, matched) = pruning("row_groups_pruned_statistics");
        let dynamic = count("row_groups_pruned_dynamic_filter");
        self.blocks_skipped.add(pruned + dynamic);
        self.blocks_read.add(matched.saturating_sub(dynamic));
        self.rows_pre_filter.add(metrics.output_rows().unwrap_or(0));
        self.bytes.add(count("bytes_scanned"));
    }
}

/// A scan's stream that reports its counters when it ends or is dropped.
struct CountedScan {
    inner: SendableRecordBatchStream,
    exec: Arc<dyn ExecutionPlan>,
    counters: Option<ScanCounters>,
}

impl CountedScan {
    fn finish(&mut self) {
        if let Some(c) = self.counters.take() {
            c.record(self.exec.as_ref());
        }
    }
}

impl futures::Stream for CountedScan {
    type Item = datafusion::error::Result<RecordBatch>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let next = self.inner.poll_next_unpin(cx);
        if let std::task::Poll::Ready(None) = next {
            self.finish();
        }
        next
    }
}

impl datafusion::physical_plan::RecordBatchStream for CountedScan {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

impl Drop for CountedScan {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A compute node: the slices it holds.
#[derive(Debug)]
pub struct ComputeNode {
    pub id: NodeId,
    slices: BTreeMap<SliceId, SliceStore>,
    /// Parsed segment footers and page indexes, shared by every scan on this node.
    /// Segments are immutable and their file names are never reused, so an entry can
    /// only go stale by its file being removed, which drops it (see [`Self::remove`]).
    footers: Arc<FileMetadataCache>,
}

/// Memory the footer cache may hold per node. SF1 lineitem's footers and page
/// indexes take about 6 MB with 16K-row blocks.
pub const FOOTER_CACHE_BYTES: usize = 64 << 20;

impl ComputeNode {
    /// Open the node's slices under `data_dir/node-<id>/slice-<n>`.
    pub fn open(id: NodeId, data_dir: &Path, slices: &[SliceId]) -> Result<Self, StorageError> {
        let mut map = BTreeMap::new();
        for s in slices {
            let root = data_dir
                .join(format!("node-{}", id.0))
                .join(format!("slice-{}", s.0));
            map.insert(*s, SliceStore::open(*s, root)?);
        }
        let footers: Arc<FileMetadataCache> =
            Arc::new(DefaultCache::new(FOOTER_CACHE_BYTES).with_name("basalt segment footers"));
        Ok(ComputeNode {
            id,
            slices: map,
            footers,
        })
    }

    pub fn slice(&self, slice: SliceId) -> Result<&SliceStore, StorageError> {
        self.slices
            .get(&slice)
            .ok_or(StorageError::UnknownSlice { slice })
    }

    /// Durably write rows as one or more new segments.
    #[instrument(skip_all, fields(node = %self.id, slice = %req.slice, table = %req.table.id))]
    pub async fn write(&self, req: WriteRequest) -> Result<Vec<SegmentMeta>, StorageError> {
        let store = self.slice(req.slice)?.clone();
        tokio::task::spawn_blocking(move || {
            let schema = req.table.arrow_schema();
            let mut out = vec![];
            let mut pending: Vec<RecordBatch> = vec![];
            let mut pending_rows = 0;
            let flush = |pending: &mut Vec<RecordBatch>,
                         out: &mut Vec<SegmentMeta>|
             -> Result<(), StorageError> {
                if pending.is_empty() {
                    return Ok(());
                }
                let batch = concat_batches(&schema, pending.iter())?;
                pending.clear();
                out.push(store.write_segment(&req.table, &batch)?);
                Ok(())
            };
            for b in req.batches {
                if b.num_rows() == 0 {
                    continue;
                }
                pending_rows += b.num_rows();
                pending.push(b);
                if pending_rows >= MAX_SEGMENT_ROWS {
                    flush(&mut pending, &mut out)?;
                    pending_rows = 0;
                }
            }
            flush(&mut pending, &mut out)?;
            Ok(out)
        })
        .await?
    }

    /// Durably write delete vectors: for each segment (as the current version lists it), the
    /// positions to delete on top of its current ones. Returns the segments as the next version
    /// lists them, in the same order.
    #[instrument(skip_all, fields(node = %self.id, slice = %slice, table = %table))]
    pub async fn delete_rows(
        &self,
        table: TableId,
        slice: SliceId,
        deletes: Vec<(SegmentMeta, roaring::RoaringBitmap)>,
    ) -> Result<Vec<SegmentMeta>, StorageError> {
        let store = self.slice(slice)?.clone();
        tokio::task::spawn_blocking(move || {
            deletes
                .iter()
                .map(|(seg, rows)| store.delete_rows(table, seg, rows))
                .collect()
        })
        .await?
    }

    /// VACUUM's rewrite of some of a slice's segments: read their live rows and write them
    /// again as new segments of up to [`MAX_SEGMENT_ROWS`] rows, without the deleted rows. With
    /// `sort`, the rows are merged into one sort-key order across the segments first (for an
    /// interleaved key, the z-order ranked over all of the slice's rows, as REINDEX does) and
    /// the new segments form the slice's sorted region. Returns the new segments in order; the
    /// inputs stay until no version references them. On an error, the segments written so
    /// far are removed.
    ///
    /// Rows stream through: every segment is already in the table's key order, so for a
    /// compound key (or an interleaved key of one column) the segments are merged as sorted
    /// streams, holding a batch per segment and the segment being written in memory. An
    /// interleaved key of several columns holds the slice's rows in memory, because its
    /// z-order ranks each key value among all of them.
    #[instrument(skip_all, fields(node = %self.id, slice = %slice, table = %table.id, segments = segments.len(), sort))]
    pub async fn rewrite(
        &self,
        table: Arc<TableMeta>,
        slice: SliceId,
        segments: Vec<SegmentMeta>,
        sort: bool,
    ) -> Result<Vec<SegmentMeta>, StorageError> {
        let ctx = Arc::new(TaskContext::default());
        let scan = |segments: Vec<SegmentMeta>| {
            self.scan(
                ScanRequest {
                    table: table.clone(),
                    slice,
                    segments,
                    projection: None,
                    filters: vec![],
                    limit: None,
                    row_ids: false,
                    counters: None,
                },
                ctx.clone(),
            )
        };
        let keyed = sort && !table.sortkey_indices().is_empty();
        // A single input keeps its order: its rows are a subset of one segment's.
        let in_order = keyed || segments.len() == 1;
        let stream = match (keyed, crate::sort::merge_ordering(&table)) {
            (true, Some(ordering)) if segments.len() > 1 => {
                let streams = segments
                    .iter()
                    .map(|s| scan(vec![s.clone()]))
                    .collect::<Result<Vec<_>, _>>()?;
                StreamingMergeBuilder::new()
                    .with_streams(streams)
                    .with_schema(table.arrow_schema())
                    .with_expressions(&ordering)
                    .with_metrics(BaselineMetrics::new(&ExecutionPlanMetricsSet::new(), 0))
                    .with_batch_size(ctx.session_config().batch_size())
                    .with_reservation(
                        MemoryConsumer::new("vacuum merge").register(ctx.memory_pool()),
                    )
                    .build()?
            }
            (true, None) => {
                let batches: Vec<RecordBatch> =
                    futures::TryStreamExt::try_collect(scan(segments)?).await?;
                let t = table.clone();
                let sorted = tokio::task::spawn_blocking(move || {
                    let all = concat_batches(&t.arrow_schema(), batches.iter())?;
                    drop(batches);
                    crate::sort::sort_batch(&t, &all)
                })
                .await??;
                Box::pin(RecordBatchStreamAdapter::new(
                    table.arrow_schema(),
                    futures::stream::once(async { Ok(sorted) }),
                ))
            }
            _ => scan(segments)?,
        };
        let store = self.slice(slice)?.clone();
        let mut written = vec![];
        let result = write_stream(&store, &table, stream, in_order, keyed, &mut written).await;
        if result.is_err() {
            let files: Vec<String> = written.iter().map(|s| s.file.clone()).collect();
            self.remove(slice, table.id, &files);
        }
        result.map(|()| written)
    }

    /// Start a scan of one table version on one slice; batches come back in the table's
    /// logical column names.
    pub fn scan(
        &self,
        req: ScanRequest,
        ctx: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream, StorageError> {
        let store = self.slice(req.slice)?;
        let table = &req.table;
        let physical = table.physical_schema();
        let out_schema = req.output_schema()?;
        if req.segments.is_empty() {
            return Ok(Box::pin(RecordBatchStreamAdapter::new(
                out_schema,
                futures::stream::empty(),
            )));
        }
        let mut files = vec![];
        for (i, seg) in req.segments.iter().enumerate() {
            if seg.live_rows() == 0 {
                if let Some(c) = &req.counters {
                    c.blocks_skipped
                        .add((seg.rows as usize).div_ceil(crate::ROWS_PER_BLOCK));
                }
                continue;
            }
            let path = store.segment_path(table.id, &seg.file);
            let meta = std::fs::metadata(&path).map_err(|e| StorageError::Corrupt {
                table: table.qualified_name(),
                slice: req.slice,
                file: seg.file.clone(),
                reason: format!("segment file {}: {e}", path.display()),
            })?;
            let p = path.to_string_lossy();
            let mut file = PartitionedFile::new(p.trim_start_matches('/'), meta.len());
            if seg.deleted.is_some() {
                let deleted = store.read_deleted(table.id, seg)?;
                file = file.with_extension(ParquetRowSelection::new(crate::kept_rows(
                    &deleted, seg.rows,
                )));
            }
            if req.row_ids {
                file.partition_values = vec![
                    ScalarValue::Int32(Some(req.slice.0 as i32)),
                    ScalarValue::Int32(Some(i as i32)),
                ];
            }
            files.push(file);
        }
        let columns = physical.fields().len();
        let mut projection = req.projection.clone();
        let table_schema = if req.row_ids {
            let ids = row_id_fields();
            let mut p = projection.unwrap_or_else(|| (0..columns).collect());
            p.extend([columns, columns + 1, columns + 2]);
            projection = Some(p);
            TableSchema::builder(physical.clone())
                .with_table_partition_cols(vec![Arc::new(ids[0].clone()), Arc::new(ids[1].clone())])
                .with_virtual_columns(vec![Arc::new(
                    ids[2]
                        .clone()
                        .with_extension_type(parquet::arrow::RowNumber),
                )])
                .build()
        } else {
            TableSchema::builder(physical.clone()).build()
        };
        let object_store = ctx
            .runtime_env()
            .object_store(ObjectStoreUrl::local_filesystem())?;
        let mut source =
            ParquetSource::new(table_schema).with_parquet_file_reader_factory(Arc::new(
                SegmentReaderFactory::new(object_store, self.footers.clone()),
            ));
        if let Some(pred) = physical_predicate(table, &physical, &req.filters) {
            source = source.with_predicate(pred);
        }
        let config =
            FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), Arc::new(source))
                .with_file_group(FileGroup::new(files))
                .with_projection_indices(projection)?
                .with_limit(req.limit)
                .build();
        let exec: Arc<dyn ExecutionPlan> = DataSourceExec::from_data_source(config);
        let stream: SendableRecordBatchStream = Box::pin(CountedScan {
            inner: exec.execute(0, ctx)?,
            exec,
            counters: req.counters.clone(),
        });
        let (name, slice) = (table.qualified_name(), req.slice);
        let files: Vec<String> = req.segments.iter().map(|s| s.file.clone()).collect();
        let schema = out_schema.clone();
        let relabeled = stream.map(move |r| {
            let batch = r.map_err(|e| {
                let reason = e.to_string();
                // The reader names the file by path; name the segment by its file name.
                let file = files
                    .iter()
                    .find(|f| reason.contains(f.as_str()))
                    .cloned()
                    .unwrap_or_else(|| "(segment scan)".into());
                DataFusionError::External(Box::new(StorageError::Corrupt {
                    table: name.clone(),
                    slice,
                    file,
                    reason,
                }))
            })?;
            RecordBatch::try_new_with_options(
                schema.clone(),
                batch.columns().to_vec(),
                &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
            )
            .map_err(DataFusionError::from)
        });
        // Segments this process has not read yet have their checksums checked first.
        let unchecked = store.unverified(&req.segments);
        if unchecked.is_empty() {
            return Ok(Box::pin(RecordBatchStreamAdapter::new(
                out_schema, relabeled,
            )));
        }
        let (store, table) = (store.clone(), req.table.clone());
        let check = async move {
            let checked =
                tokio::task::spawn_blocking(move || store.verify(&table, &unchecked)).await;
            match checked {
                Ok(Ok(())) => Ok(relabeled),
                Ok(Err(e)) => Err(DataFusionError::External(Box::new(e))),
                Err(e) => Err(DataFusionError::External(Box::new(StorageError::from(e)))),
            }
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            out_schema,
            futures::TryStreamExt::try_flatten(futures::stream::once(check)),
        )))
    }

    pub fn remove(&self, slice: SliceId, table: TableId, files: &[String]) {
        if let Ok(s) = self.slice(slice) {
            for f in files {
                self.forget_footer(&s.segment_path(table, f));
            }
            s.remove(table, files)
        }
    }

    fn forget_footer(&self, path: &Path) {
        self.footers.remove(&footer_key(path));
    }

    /// Whether this node's footer cache holds a segment's metadata: `Some(true)` with its
    /// page index, `Some(false)` without it.
    #[cfg(test)]
    pub(crate) fn cached_footer(&self, slice: SliceId, table: TableId, file: &str) -> Option<bool> {
        use datafusion::datasource::physical_plan::parquet::metadata::CachedParquetMetaData;
        let path = self.slice(slice).ok()?.segment_path(table, file);
        let entry = self.footers.get(&footer_key(&path))?;
        let cached = entry.file_metadata.as_any();
        let meta = cached
            .downcast_ref::<CachedParquetMetaData>()?
            .parquet_metadata();
        Some(meta.column_index().is_some() && meta.offset_index().is_some())
    }

    /// Remove files on this node's slices that the committed catalog does not reference
    /// (with `created_before`, only those older than it).
    pub fn collect_garbage(
        &self,
        live: &BTreeSet<(SliceId, TableId, String)>,
        created_before: Option<std::time::SystemTime>,
    ) -> Result<usize, StorageError> {
        let mut n = 0;
        for (slice, store) in &self.slices {
            let mine: BTreeSet<(TableId, String)> = live
                .iter()
                .filter(|(s, _, _)| s == slice)
                .map(|(_, t, f)| (*t, f.clone()))
                .collect();
            n += store.collect_garbage(&mine, created_before)?;
        }
        Ok(n)
    }
}

/// Filters over logical names → one physical predicate over `c<id>` columns. Filters that do
/// not translate are skipped: pruning is an optimization, the plan re-applies every filter.
fn physical_predicate(
    table: &TableMeta,
    physical: &Arc<Schema>,
    filters: &[Expr],
) -> Option<Arc<dyn datafusion::physical_expr::PhysicalExpr>> {
    let renamed: Vec<Expr> = filters
        .iter()
        .filter_map(|f| {
            f.clone()
                .transform(|e| {
                    if let Expr::Column(c) = &e {
                        return match table.column(&c.name) {
                            Some(cm) => Ok(Transformed::yes(col(cm.physical_name()))),
                            None => Err(DataFusionError::Plan(format!("no column {}", c.name))),
                        };
                    }
                    Ok(Transformed::no(e))
                })
                .ok()
                .map(|t| t.data)
        })
        .collect();
    let expr = conjunction(renamed)?;
    let df_schema = DFSchema::try_from(physical.as_ref().clone()).ok()?;
    create_physical_expr(
        &expr,
        &df_schema,
        &ExecutionProps::new(),
        &PhysicalPlanningContext::default(),
    )
    .ok()
}

/// What the leader, and a fragment reading a slice, ask of a compute node. [`ComputeNode`]
/// answers for the slices on this process's disk; a node in another process answers over
/// the network (`basalt-mpp`'s remote node), with the same requests.
#[async_trait::async_trait]
pub trait ComputeService: Send + Sync + std::fmt::Debug {
    fn id(&self) -> NodeId;

    /// Durably write rows as one or more new segments of a slice.
    async fn write(&self, req: WriteRequest) -> Result<Vec<SegmentMeta>, StorageError>;

    /// Durably write delete vectors (see [`ComputeNode::delete_rows`]).
    async fn delete_rows(
        &self,
        table: TableId,
        slice: SliceId,
        deletes: Vec<(SegmentMeta, roaring::RoaringBitmap)>,
    ) -> Result<Vec<SegmentMeta>, StorageError>;

    /// VACUUM's rewrite of some of a slice's segments (see [`ComputeNode::rewrite`]).
    async fn rewrite(
        &self,
        table: Arc<TableMeta>,
        slice: SliceId,
        segments: Vec<SegmentMeta>,
        sort: bool,
    ) -> Result<Vec<SegmentMeta>, StorageError>;

    /// Start a scan of one table version on one slice.
    fn scan(
        &self,
        req: ScanRequest,
        ctx: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream, StorageError>;

    /// The blocks of a slice's segments, per column (STV_BLOCKLIST).
    async fn blocks(
        &self,
        table: Arc<TableMeta>,
        slice: SliceId,
        segments: Vec<SegmentMeta>,
    ) -> Result<Vec<crate::BlockInfo>, StorageError>;

    /// Delete files no version references any more. Best effort: what is left behind is
    /// garbage the node removes when it next starts.
    fn remove(&self, slice: SliceId, table: TableId, files: Vec<String>);

    /// Remove files on the node's slices that the committed catalog does not reference;
    /// with `created_before`, only files older than it (newer ones may belong to a
    /// transaction still open).
    async fn collect_garbage(
        &self,
        live: BTreeSet<(SliceId, TableId, String)>,
        created_before: Option<std::time::SystemTime>,
    ) -> Result<usize, StorageError>;
}

#[async_trait::async_trait]
impl ComputeService for ComputeNode {
    fn id(&self) -> NodeId {
        self.id
    }

    async fn write(&self, req: WriteRequest) -> Result<Vec<SegmentMeta>, StorageError> {
        ComputeNode::write(self, req).await
    }

    async fn delete_rows(
        &self,
        table: TableId,
        slice: SliceId,
        deletes: Vec<(SegmentMeta, roaring::RoaringBitmap)>,
    ) -> Result<Vec<SegmentMeta>, StorageError> {
        ComputeNode::delete_rows(self, table, slice, deletes).await
    }

    async fn rewrite(
        &self,
        table: Arc<TableMeta>,
        slice: SliceId,
        segments: Vec<SegmentMeta>,
        sort: bool,
    ) -> Result<Vec<SegmentMeta>, StorageError> {
        ComputeNode::rewrite(self, table, slice, segments, sort).await
    }

    fn scan(
        &self,
        req: ScanRequest,
        ctx: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream, StorageError> {
        ComputeNode::scan(self, req, ctx)
    }

    async fn blocks(
        &self,
        table: Arc<TableMeta>,
        slice: SliceId,
        segments: Vec<SegmentMeta>,
    ) -> Result<Vec<crate::BlockInfo>, StorageError> {
        ComputeNode::blocks(self, &table, slice, &segments)
    }

    fn remove(&self, slice: SliceId, table: TableId, files: Vec<String>) {
        ComputeNode::remove(self, slice, table, &files)
    }

    async fn collect_garbage(
        &self,
        live: BTreeSet<(SliceId, TableId, String)>,
        created_before: Option<std::time::SystemTime>,
    ) -> Result<usize, StorageError> {
        ComputeNode::collect_garbage(self, &live, created_before)
    }
}

/// A process's view of the cluster: the slice map, and for each node either the
/// [`ComputeNode`] on this process's disk or a handle on a node elsewhere.
#[derive(Debug)]
pub struct ComputeCluster {
    pub topology: Topology,
    nodes: Vec<Arc<dyn ComputeService>>,
    /// The nodes whose slices are on this process's disk.
    local: Vec<Arc<ComputeNode>>,
}

impl ComputeCluster {
    /// Open all nodes of an in-process cluster under `data_dir`.
    pub fn open(data_dir: &Path, topology: Topology) -> Result<Self, StorageError> {
        let mut local = vec![];
        for n in 0..topology.nodes {
            let slices: Vec<SliceId> = topology
                .slices()
                .filter(|s| topology.node_of(*s) == n)
                .collect();
            local.push(Arc::new(ComputeNode::open(NodeId(n), data_dir, &slices)?));
        }
        Ok(ComputeCluster {
            topology,
            nodes: local
                .iter()
                .map(|n| n.clone() as Arc<dyn ComputeService>)
                .collect(),
            local,
        })
    }

    /// A cluster whose nodes are `nodes`, in node order; `local` are those on this
    /// process's disk (also among `nodes`).
    pub fn from_nodes(
        topology: Topology,
        nodes: Vec<Arc<dyn ComputeService>>,
        local: Vec<Arc<ComputeNode>>,
    ) -> Self {
        ComputeCluster {
            topology,
            nodes,
            local,
        }
    }

    pub fn node_for(&self, slice: SliceId) -> Result<&Arc<dyn ComputeService>, StorageError> {
        self.nodes
            .get(self.topology.node_of(slice) as usize)
            .ok_or(StorageError::UnknownSlice { slice })
    }

    pub fn nodes(&self) -> &[Arc<dyn ComputeService>] {
        &self.nodes
    }

    /// The nodes whose slices are on this process's disk.
    pub fn local_nodes(&self) -> &[Arc<ComputeNode>] {
        &self.local
    }

    /// Let each local slice's segment writes use only `bytes` more bytes (`None`: no
    /// limit); past that they fail as on a full disk. For testing disk-full handling.
    #[doc(hidden)]
    pub fn limit_writes(&self, bytes: Option<u64>) {
        for node in &self.local {
            for store in node.slices.values() {
                store.budget.set(bytes);
            }
        }
    }

    /// Remove every file the committed catalog does not reference, on every node.
    pub async fn collect_garbage(
        &self,
        live: &BTreeSet<(SliceId, TableId, String)>,
    ) -> Result<usize, StorageError> {
        let mut n = 0;
        for node in &self.nodes {
            n += node.collect_garbage(live.clone(), None).await?;
        }
        Ok(n)
    }

    /// Remove every file the committed catalog does not reference, on this process's nodes.
    pub fn collect_local_garbage(
        &self,
        live: &BTreeSet<(SliceId, TableId, String)>,
    ) -> Result<usize, StorageError> {
        let mut n = 0;
        for node in &self.local {
            n += node.collect_garbage(live, None)?;
        }
        Ok(n)
    }
}

/// The footer cache's key for a segment file: its path as the scan's object store names it.
fn footer_key(path: &Path) -> datafusion::object_store::path::Path {
    let p = path.to_string_lossy();
    datafusion::object_store::path::Path::from(p.trim_start_matches('/'))
}

/// Write `stream`'s rows as segments of [`MAX_SEGMENT_ROWS`] rows, in the stream's order
/// (`in_order`) or each sorted by the table's key; `sorted_region` marks them as VACUUM's
/// sorted region. Each segment is pushed to `written` once it is durable.
async fn write_stream(
    store: &SliceStore,
    table: &Arc<TableMeta>,
    mut stream: SendableRecordBatchStream,
    in_order: bool,
    sorted_region: bool,
    written: &mut Vec<SegmentMeta>,
) -> Result<(), StorageError> {
    let write = |rows: Vec<RecordBatch>| {
        let (store, table) = (store.clone(), table.clone());
        tokio::task::spawn_blocking(move || {
            let rows = concat_batches(&table.arrow_schema(), rows.iter())?;
            let mut seg = if in_order {
                store.write_ordered_segment(&table, &rows)?
            } else {
                store.write_segment(&table, &rows)?
            };
            seg.sorted_region = sorted_region;
            Ok::<_, StorageError>(seg)
        })
    };
    let mut pending: Vec<RecordBatch> = vec![];
    let mut pending_rows = 0;
    while let Some(batch) = stream.next().await {
        let mut batch = batch?;
        while pending_rows + batch.num_rows() >= MAX_SEGMENT_ROWS {
            let take = MAX_SEGMENT_ROWS - pending_rows;
            pending.push(batch.slice(0, take));
            batch = batch.slice(take, batch.num_rows() - take);
            written.push(write(std::mem::take(&mut pending)).await??);
            pending_rows = 0;
        }
        if batch.num_rows() > 0 {
            pending_rows += batch.num_rows();
            pending.push(batch);
        }
    }
    if !pending.is_empty() {
        written.push(write(pending).await??);
    }
    Ok(())
}
