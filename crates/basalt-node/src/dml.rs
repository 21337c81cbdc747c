//! DML: INSERT, DELETE, UPDATE. Rows are conformed to the table's types (casts, NOT NULL,
//! lengths, defaults, IDENTITY), placed on slices by DISTSTYLE, and written by the compute
//! nodes as new segments; the transaction then points the table at them.
//!
//! DELETE finds rows by their row ids (a query over the table with its hidden row-id columns)
//! and marks them with delete vectors; UPDATE writes the new rows and deletes the old ones the
//! same way. Segments are never rewritten (see `docs/storage.md`).

use std::collections::BTreeMap;
use std::sync::Arc;

use basalt_catalog::{DistStyle, SegmentMeta, SliceId, SqlType, TableId, TableMeta, TableStats};
use basalt_sql::ParsedStatement;
use basalt_sql::sqlparser::ast::{
    AssignmentTarget, FromTable, Statement, TableFactor, TableObject, UpdateTableFromKind,
};
use basalt_storage::RoaringBitmap;
use basalt_storage::{ComputeCluster, WriteRequest, split_by_slice};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int16Array, Int32Array, Int64Array, RecordBatch, StringArray,
    new_null_array,
};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Int32Type, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::sql::parser::Statement as DFStatement;
use futures::StreamExt;
use tracing::{Instrument, info, warn};

use crate::session::{StatementOutput, ident_name, split_name};
use crate::stats::WriteStats;
use crate::{NodeError, Session};

/// Rows buffered per slice before a segment is written.
const FLUSH_ROWS: usize = 1 << 20;

const CAST: CastOptions<'static> = CastOptions {
    safe: false,
    format_options: datafusion::arrow::util::display::FormatOptions::new(),
};

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn table_ref(t: &TableMeta) -> String {
    format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.name))
}

/// The table with its row ids ([`basalt_storage::ROW_ID_COLUMNS`]) as SQL names it.
fn row_ids_ref(t: &TableMeta) -> String {
    format!(
        "{}.{}",
        quote_ident(&t.schema),
        quote_ident(&format!("{}{}", t.name, basalt_planner::ROW_IDS_SUFFIX))
    )
}

/// `"__basalt_slice", "__basalt_segment", "__basalt_row"`.
fn row_id_list() -> String {
    basalt_storage::ROW_ID_COLUMNS.map(quote_ident).join(", ")
}

/// How each table column is produced from a source batch.
#[derive(Debug, Clone)]
pub(crate) enum ColumnSource {
    /// Index into the source batch.
    Source(usize),
    Default(ScalarValue),
    Identity,
    Null,
}

impl Session {
    pub(crate) async fn dml(&mut self, ps: ParsedStatement) -> Result<StatementOutput, NodeError> {
        match ps.statement {
            Statement::Insert(ins) => {
                let TableObject::TableName(name) = &ins.table else {
                    return Err(NodeError::unsupported("INSERT INTO a table function"));
                };
                if ins.returning.is_some() {
                    return Err(NodeError::unsupported("INSERT ... RETURNING"));
                }
                if ins.on.is_some() {
                    return Err(NodeError::unsupported("INSERT ... ON CONFLICT"));
                }
                let state = self.txn_mut().txn.state().clone();
                let table = self.resolve_table(&state, name)?;
                let cols: Option<Vec<String>> = (!ins.columns.is_empty()).then(|| {
                    ins.columns
                        .iter()
                        .map(|c| split_name(c).map(|(_, n)| n).unwrap_or_default())
                        .collect()
                });
                let rows = match ins.source {
                    Some(mut q) => {
                        replace_default_keyword(&mut q, &table, cols.as_deref())?;
                        self.insert_query(table.id, cols, Statement::Query(q), false)
                            .await?
                    }
                    None => {
                        // INSERT ... DEFAULT VALUES
                        self.insert_query(
                            table.id,
                            Some(vec![]),
                            basalt_sql::parse("SELECT 1")?.remove(0).statement,
                            false,
                        )
                        .await?
                    }
                };
                Ok(StatementOutput::Command {
                    tag: "INSERT 0".into(),
                    rows: Some(rows),
                })
            }
            Statement::Delete(del) => {
                let tables = match &del.from {
                    FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
                };
                let [twj] = tables.as_slice() else {
                    return Err(NodeError::unsupported("DELETE from several tables"));
                };
                let TableFactor::Table { name, alias, .. } = &twj.relation else {
                    return Err(NodeError::unsupported("DELETE from a derived table"));
                };
                if del.returning.is_some() {
                    return Err(NodeError::unsupported("DELETE ... RETURNING"));
                }
                let state = self.txn_mut().txn.state().clone();
                let table = self.resolve_table(&state, name)?;
                // The rows to delete, by row id; the table is referred to by its own name
                // (or the statement's alias) in the predicate.
                let alias = match alias {
                    Some(a) => quote_ident(&ident_name(&a.name)),
                    None => quote_ident(&table.name),
                };
                let ids = row_ids_ref(&table);
                let find = match (&del.selection, &del.using) {
                    (None, None) => format!("SELECT {} FROM {ids} AS {alias}", row_id_list()),
                    (Some(pred), None) => format!(
                        "SELECT {} FROM {ids} AS {alias} WHERE ({pred}) IS TRUE",
                        row_id_list()
                    ),
                    (pred, Some(using)) => {
                        let using: Vec<String> = using.iter().map(|u| u.to_string()).collect();
                        let pred = pred
                            .as_ref()
                            .map(|p| p.to_string())
                            .unwrap_or_else(|| "TRUE".into());
                        format!(
                            "SELECT {} FROM {ids} AS {alias} WHERE EXISTS (SELECT 1 FROM {} WHERE {pred})",
                            row_id_list(),
                            using.join(", ")
                        )
                    }
                };
                let deleted = self.delete_found_rows(table.id, find).await?;
                Ok(StatementOutput::command_rows("DELETE", deleted))
            }
            Statement::Update(up) => {
                if up.returning.is_some() {
                    return Err(NodeError::unsupported("UPDATE ... RETURNING"));
                }
                let TableFactor::Table { name, alias, .. } = &up.table.relation else {
                    return Err(NodeError::unsupported("UPDATE of a derived table"));
                };
                let state = self.txn_mut().txn.state().clone();
                let table = self.resolve_table(&state, name)?;
                let mut assigned: BTreeMap<String, String> = BTreeMap::new();
                for a in &up.assignments {
                    let AssignmentTarget::ColumnName(c) = &a.target else {
                        return Err(NodeError::unsupported("UPDATE with tuple assignment"));
                    };
                    let col = split_name(c)?.1;
                    let Some(cm) = table.column(&col) else {
                        return Err(basalt_catalog::CatalogError::ColumnNotFound {
                            table: table.name.clone(),
                            column: col,
                        }
                        .into());
                    };
                    if cm.identity.as_ref().is_some_and(|i| !i.by_default) {
                        return Err(NodeError::invalid(
                            "428C9",
                            format!("cannot update identity column \"{col}\""),
                        ));
                    }
                    let value = if a.value.to_string().eq_ignore_ascii_case("default") {
                        cm.default.clone().unwrap_or_else(|| "NULL".into())
                    } else {
                        a.value.to_string()
                    };
                    assigned.insert(col, value);
                }
                // UPDATE is DELETE + INSERT: one query yields each updated row's new values
                // and the old row's id; the new rows are written as new segments and the old
                // ones deleted with delete vectors. The predicate stays in a WHERE clause,
                // where DataFusion plans any subquery it holds.
                let target = quote_ident(
                    &alias
                        .as_ref()
                        .map(|a| ident_name(&a.name))
                        .unwrap_or_else(|| table.name.clone()),
                );
                let from: String = match &up.from {
                    Some(UpdateTableFromKind::AfterSet(f) | UpdateTableFromKind::BeforeSet(f)) => {
                        f.iter().map(|t| format!(", {t}")).collect()
                    }
                    None => String::new(),
                };
                let hit = match &up.selection {
                    Some(p) => format!("({p}) IS TRUE"),
                    None => "TRUE".into(),
                };
                let mut projection: Vec<String> = table
                    .columns
                    .iter()
                    .map(|c| match assigned.get(&c.name) {
                        Some(v) => format!(
                            "CAST(({v}) AS {}) AS {}",
                            c.ty.cast_name(),
                            quote_ident(&c.name)
                        ),
                        None => format!("{target}.{}", quote_ident(&c.name)),
                    })
                    .collect();
                projection.extend(
                    basalt_storage::ROW_ID_COLUMNS.map(|c| format!("{target}.{}", quote_ident(c))),
                );
                let sql = format!(
                    "SELECT {} FROM {} AS {target}{from} WHERE {hit}",
                    projection.join(", "),
                    row_ids_ref(&table)
                );
                let updated = self.update_rows(table.id, sql).await?;
                Ok(StatementOutput::command_rows("UPDATE", updated))
            }
            other => Err(NodeError::unsupported(other.to_string())),
        }
    }

    /// Plan `source` and stream its rows.
    async fn source_stream(
        &mut self,
        mut source: Statement,
    ) -> Result<SendableRecordBatchStream, NodeError> {
        // Rows go in by position: let the query repeat an expression (`SELECT v, v`).
        crate::pg::postgres_column_names(&mut source);
        let (_state, pin) = self.refresh_view();
        let plan = self
            .ctx
            .state()
            .statement_to_plan(DFStatement::Statement(Box::new(source)))
            .await?;
        let df = self.ctx.execute_logical_plan(plan).await?;
        let stream = df.execute_stream().await?;
        let schema = stream.schema();
        // The pin lives as long as the stream reads the version's files.
        let stream = stream.map(move |b| {
            let _keep = &pin;
            b
        });
        Ok(Box::pin(
            datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(schema, stream),
        ))
    }

    /// INSERT the rows of a query into a table (also CTAS, which `gather_stats` of). Returns
    /// the row count.
    pub(crate) async fn insert_query(
        &mut self,
        table_id: TableId,
        columns: Option<Vec<String>>,
        source: Statement,
        gather_stats: bool,
    ) -> Result<u64, NodeError> {
        let table = self.txn_table(table_id);
        let stream = self.source_stream(source).await?;
        let width = stream.schema().fields().len();
        let targets: Vec<String> = match columns {
            Some(c) => c,
            None => table
                .columns
                .iter()
                .take(width)
                .map(|c| c.name.clone())
                .collect(),
        };
        if width > targets.len() && !targets.is_empty() {
            return Err(NodeError::invalid(
                "42601",
                "INSERT has more expressions than target columns",
            ));
        }
        if width < targets.len() && !targets.is_empty() {
            return Err(NodeError::invalid(
                "42601",
                "INSERT has more target columns than expressions",
            ));
        }
        let plan = self.column_plan(&table, &targets, false).await?;
        self.write_stream(table_id, stream, &plan, false, gather_stats)
            .await
    }

    /// A table as the open transaction sees it (starting one if needed). The id comes from a
    /// resolved name or a table this transaction created, so it exists.
    pub(crate) fn txn_table(&mut self, table_id: TableId) -> TableMeta {
        self.txn_mut()
            .txn
            .state()
            .tables
            .get(&table_id)
            .cloned()
            .expect("table exists in the transaction's catalog")
    }

    /// How each column of `table` is filled from source columns named `targets`: from the
    /// source, the next IDENTITY value, the DEFAULT, or NULL. Shared by INSERT and COPY.
    /// `explicit_ids`: a GENERATED ALWAYS identity column may be given values (Redshift
    /// COPY's EXPLICIT_IDS).
    pub(crate) async fn column_plan(
        &mut self,
        table: &TableMeta,
        targets: &[String],
        explicit_ids: bool,
    ) -> Result<Vec<ColumnSource>, NodeError> {
        for t in targets {
            if table.column(t).is_none() {
                return Err(basalt_catalog::CatalogError::ColumnNotFound {
                    table: table.name.clone(),
                    column: t.clone(),
                }
                .into());
            }
        }
        let mut plan = vec![];
        for c in &table.columns {
            plan.push(match targets.iter().position(|t| *t == c.name) {
                Some(_)
                    if !explicit_ids && c.identity.as_ref().is_some_and(|id| !id.by_default) =>
                {
                    return Err(NodeError::invalid(
                        "428C9",
                        format!("cannot set an identity column \"{}\" to a value", c.name),
                    ));
                }
                Some(i) => ColumnSource::Source(i),
                None if c.identity.is_some() => ColumnSource::Identity,
                None => match &c.default {
                    Some(d) => ColumnSource::Default(self.eval_default(d, &c.ty).await?),
                    None => ColumnSource::Null,
                },
            });
        }
        Ok(plan)
    }

    /// Evaluate a DEFAULT expression once per statement.
    pub(crate) async fn eval_default(
        &mut self,
        expr: &str,
        ty: &SqlType,
    ) -> Result<ScalarValue, NodeError> {
        let stmt = basalt_sql::parse(&format!("SELECT CAST(({expr}) AS {})", ty.cast_name()))?
            .remove(0)
            .statement;
        let batches = self.query(stmt).await?.collect().await?;
        let b = batches
            .first()
            .ok_or_else(|| NodeError::internal("default produced no row"))?;
        Ok(ScalarValue::try_from_array(b.column(0), 0)?)
    }

    /// Replace a table's rows by the rows of `select` (all current rows when None). Returns
    /// the new row count.
    pub(crate) async fn rewrite_table(
        &mut self,
        table_id: TableId,
        select: Option<String>,
    ) -> Result<u64, NodeError> {
        let table = self.txn_table(table_id);
        let sql = match select {
            Some(s) => s,
            None => format!("SELECT * FROM {}", table_ref(&table)),
        };
        let stmt = basalt_sql::parse(&sql)?.remove(0).statement;
        let stream = self.source_stream(stmt).await?;
        let plan: Vec<ColumnSource> = (0..table.columns.len()).map(ColumnSource::Source).collect();
        self.write_stream(table_id, stream, &plan, true, false)
            .await
    }

    /// Conform, place and write a stream of rows; `replace` swaps the table's data for them;
    /// `gather_stats`: a table filled from empty gets the statistics of the rows.
    async fn write_stream(
        &mut self,
        table_id: TableId,
        mut stream: SendableRecordBatchStream,
        plan: &[ColumnSource],
        replace: bool,
        gather_stats: bool,
    ) -> Result<u64, NodeError> {
        let mut w = TableWriter::new(self, table_id);
        if gather_stats {
            w.gather_stats()?;
        }
        let r: Result<(), NodeError> = async {
            while let Some(batch) = stream.next().await {
                w.push(&batch?, plan).await?;
            }
            Ok(())
        }
        .await;
        match r {
            Ok(()) => w.finish(self, replace).await,
            Err(e) => {
                w.abandon(self);
                Err(e)
            }
        }
    }

    /// Delete the rows `find` returns (a query whose columns are the row ids) with delete
    /// vectors: segments stay as they are, the table's next version lists which of their rows
    /// are gone. An ALL table's copies are written identically on every node, so the positions
    /// found on the copy the query read apply to each copy. Returns the rows deleted.
    pub(crate) async fn delete_found_rows(
        &mut self,
        table_id: TableId,
        find: String,
    ) -> Result<u64, NodeError> {
        let stmt = basalt_sql::parse(&find)?.remove(0).statement;
        let mut stream = self.source_stream(stmt).await?;
        let mut found = FoundRows::new();
        while let Some(batch) = stream.next().await {
            record_row_ids(&mut found, &batch?, 0, false)?;
        }
        drop(stream);
        self.apply_deletes(table_id, found).await
    }

    /// UPDATE: `sql` yields each updated row's new values (the table's columns) followed by
    /// the old row's id. Writes the new rows, then deletes the old ones. A row found twice
    /// (UPDATE ... FROM matching several FROM rows) would be updated ambiguously: 21000.
    async fn update_rows(&mut self, table_id: TableId, sql: String) -> Result<u64, NodeError> {
        let n = self.txn_table(table_id).columns.len();
        let stmt = basalt_sql::parse(&sql)?.remove(0).statement;
        let mut stream = self.source_stream(stmt).await?;
        let values: Vec<usize> = (0..n).collect();
        let plan: Vec<ColumnSource> = (0..n).map(ColumnSource::Source).collect();
        let mut found = FoundRows::new();
        let mut w = TableWriter::new(self, table_id);
        let r: Result<(), NodeError> = async {
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                record_row_ids(&mut found, &batch, n, true)?;
                w.push(&batch.project(&values)?, &plan).await?;
            }
            Ok(())
        }
        .await;
        drop(stream);
        match r {
            Ok(()) => {
                w.finish(self, false).await?;
            }
            Err(e) => {
                w.abandon(self);
                return Err(e);
            }
        }
        self.apply_deletes(table_id, found).await
    }

    /// Write delete vectors for `found` on every copy of the table and point the transaction's
    /// version of the table at them. Returns the rows deleted.
    async fn apply_deletes(
        &mut self,
        table_id: TableId,
        found: FoundRows,
    ) -> Result<u64, NodeError> {
        let deleted: u64 = found.values().map(|b| b.len()).sum();
        if deleted == 0 {
            return Ok(0);
        }
        let table = self.txn_table(table_id);
        let copies: Vec<SliceId> = match table.effective_diststyle() {
            basalt_catalog::DistStyle::All | basalt_catalog::DistStyle::Auto => {
                basalt_storage::target_slices(&table, &self.leader.compute().topology)
            }
            _ => vec![],
        };
        let mut per_slice: BTreeMap<SliceId, Vec<(usize, RoaringBitmap)>> = BTreeMap::new();
        for ((slice, seg), rows) in found {
            let targets = if copies.is_empty() {
                vec![slice]
            } else {
                copies.clone()
            };
            for target in targets {
                per_slice
                    .entry(target)
                    .or_default()
                    .push((seg, rows.clone()));
            }
        }
        let mut updated: Vec<(SliceId, usize, SegmentMeta)> = vec![];
        let mut result = Ok(());
        for (slice, deletes) in per_slice {
            let segs = table.data.slices.get(&slice).cloned().unwrap_or_default();
            let mut work = vec![];
            for (idx, rows) in &deletes {
                match segs.get(*idx) {
                    Some(seg) if rows.max().is_some_and(|m| u64::from(m) < seg.rows) => {
                        work.push((seg.clone(), rows.clone()))
                    }
                    _ => {
                        result = Err(NodeError::Internal {
                            message: format!(
                                "row ids of table {} do not match segment {idx} on slice {slice}",
                                table.qualified_name()
                            ),
                        });
                        break;
                    }
                }
            }
            if result.is_err() {
                break;
            }
            let node = self.leader.compute().node_for(slice)?;
            match node.delete_rows(table.id, slice, work).await {
                Ok(new) => updated.extend(
                    deletes
                        .iter()
                        .zip(new)
                        .map(|((idx, _), seg)| (slice, *idx, seg)),
                ),
                Err(e) => {
                    result = Err(e.into());
                    break;
                }
            }
        }
        let open = self.txn_mut();
        for (slice, _, seg) in &updated {
            if let Some(d) = &seg.deleted {
                open.written.insert((*slice, table.id, d.file.clone()));
            }
        }
        result?;
        let t = open.txn.table_mut(table.id).expect("table exists");
        for (slice, idx, seg) in updated {
            if let Some(s) = t.data.slices.get_mut(&slice).and_then(|v| v.get_mut(idx)) {
                *s = seg;
            }
        }
        t.version += 1;
        t.rows_changed += deleted;
        Ok(deleted)
    }
}

/// `VALUES (1, DEFAULT)`: the DEFAULT keyword takes the column's default (or NULL; IDENTITY
/// columns generate their next value, since NULLs are filled).
fn replace_default_keyword(
    q: &mut basalt_sql::sqlparser::ast::Query,
    table: &TableMeta,
    cols: Option<&[String]>,
) -> Result<(), NodeError> {
    use basalt_sql::sqlparser::ast::{Expr, SetExpr};
    let SetExpr::Values(values) = q.body.as_mut() else {
        return Ok(());
    };
    for row in values.rows.iter_mut() {
        for (i, e) in row.iter_mut().enumerate() {
            let is_default = matches!(e, Expr::Identifier(id) if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default"));
            if !is_default {
                continue;
            }
            let col = match cols {
                Some(c) => c.get(i).and_then(|n| table.column(n)),
                None => table.columns.get(i),
            };
            let text = match col {
                Some(c) => match &c.default {
                    Some(d) => format!("CAST(({d}) AS {})", c.ty.cast_name()),
                    None => format!("CAST(NULL AS {})", c.ty.cast_name()),
                },
                None => "NULL".to_string(),
            };
            let mut parsed = basalt_sql::parse(&format!("SELECT {text}"))?;
            if let Some(Statement::Query(pq)) = parsed.pop().map(|p| p.statement)
                && let SetExpr::Select(sel) = *pq.body
                && let Some(basalt_sql::sqlparser::ast::SelectItem::UnnamedExpr(x)) =
                    sel.projection.into_iter().next()
            {
                *e = x;
            }
        }
    }
    Ok(())
}

/// Segments one slice's flush wrote: the flush's number (segments join their slice in flush
/// order, whatever order the writes finish in), the slice, the segments.
/// A segment write done: its number, slice, segments, and the statistics of its rows when
/// the writer gathers them.
type Flushed = (u64, SliceId, Vec<SegmentMeta>, Option<WriteStats>);

/// Writes rows of one table: conform, place on slices, buffer per slice, write segments.
/// A slice's buffered rows are written (sorted, encoded, compressed) by a task of their own
/// while the writer takes more rows, up to one write per core at a time.
pub(crate) struct TableWriter {
    table: Arc<TableMeta>,
    /// Where the slices are: the leader's view of the cluster, or a compute node's.
    compute: Arc<ComputeCluster>,
    identity: BTreeMap<u32, i64>,
    /// IDENTITY values advance by this many steps: a COPY's shares on several nodes number
    /// their rows interleaved (unique, not consecutive, as Redshift's are).
    identity_stride: i64,
    pending: BTreeMap<SliceId, (Vec<RecordBatch>, usize)>,
    /// Segment writes under way.
    writing: tokio::task::JoinSet<Result<Flushed, NodeError>>,
    /// Flushes started so far.
    flushes: u64,
    written: BTreeMap<(u64, SliceId), Vec<SegmentMeta>>,
    rows: u64,
    rr: u64,
    /// An ENCODE AUTO table's first load: pick each column's encoding from the first rows.
    choose_encodings: bool,
    /// The table held no rows when the write began (a load into it updates its statistics).
    pub(crate) was_empty: bool,
    /// Statistics of the rows written so far, when gathered ([`TableWriter::gather_stats`]).
    stats: Option<WriteStats>,
}

/// Rows of a first load that ENCODE AUTO weighs encodings on.
const ENCODE_AUTO_SAMPLE_ROWS: usize = 50_000;

impl TableWriter {
    pub(crate) fn new(session: &mut Session, table_id: TableId) -> Self {
        let table = Arc::new(session.txn_table(table_id));
        let was_empty = table.data.slices.values().all(|s| s.is_empty());
        Self::with(
            table,
            session.leader.compute().clone(),
            session.rr,
            was_empty,
        )
    }

    /// A writer of `table`'s rows through `compute` (on a compute node, a share of a COPY),
    /// placing EVEN rows from `rr` on.
    pub(crate) fn with(
        table: Arc<TableMeta>,
        compute: Arc<ComputeCluster>,
        rr: u64,
        was_empty: bool,
    ) -> Self {
        TableWriter {
            identity: table.identity_next.clone(),
            identity_stride: 1,
            choose_encodings: table.encode_auto && was_empty,
            was_empty,
            table,
            compute,
            pending: BTreeMap::new(),
            writing: tokio::task::JoinSet::new(),
            flushes: 0,
            written: BTreeMap::new(),
            rows: 0,
            rr,
            stats: None,
        }
    }

    /// Gather the statistics of the rows written, as a load into an empty table keeps them
    /// (COPY, CTAS): the table's statistics once the writer finishes, without reading it back.
    /// A writer into a table that held rows gathers nothing: ANALYZE measures all its rows.
    pub(crate) fn gather_stats(&mut self) -> Result<(), NodeError> {
        if self.was_empty {
            self.stats = Some(WriteStats::new(&self.table.columns)?);
        }
        Ok(())
    }

    /// The statistics gathered (if [`TableWriter::gather_stats`] and the writes are done).
    pub(crate) fn take_stats(&mut self) -> Option<WriteStats> {
        self.stats.take()
    }

    /// Whether rows written to `slice` are counted in the statistics: every slice's, but an
    /// ALL table's copies only once, on the first slice.
    fn counts_rows_of(&self, slice: SliceId) -> bool {
        match self.table.effective_diststyle() {
            DistStyle::All | DistStyle::Auto => {
                self.compute.topology.first_slices().next() == Some(slice)
            }
            DistStyle::Even | DistStyle::Key => true,
        }
    }

    /// Write with the table's encodings as they are (COPY's COMPUPDATE OFF).
    pub(crate) fn keep_encodings(&mut self) {
        self.choose_encodings = false;
    }

    /// Number rows as share `share` of `shares` writing at once: this share's IDENTITY
    /// values start `share` steps on and advance `shares` steps at a time, so no two shares
    /// give out the same value.
    pub(crate) fn number_as_share(&mut self, share: usize, shares: usize) {
        let (share, shares) = (share as i64, shares.max(1) as i64);
        for c in &self.table.columns {
            if let Some(id) = &c.identity {
                let next = self.identity.get(&c.id).copied().unwrap_or(id.seed);
                self.identity
                    .insert(c.id, next.saturating_add(share.saturating_mul(id.step)));
            }
        }
        self.identity_stride = shares;
    }

    /// Rows pushed so far.
    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    /// Where EVEN placement goes on.
    pub(crate) fn rr(&self) -> u64 {
        self.rr
    }

    /// The next IDENTITY value of each identity column.
    pub(crate) fn identity(&self) -> &BTreeMap<u32, i64> {
        &self.identity
    }

    /// The table as written: with ENCODE AUTO's choices once made.
    pub(crate) fn table(&self) -> &Arc<TableMeta> {
        &self.table
    }

    /// Redshift's automatic compression: on an ENCODE AUTO table's first load, each column
    /// (but the sort key's, which stay as they are) takes the encoding that stores a sample
    /// of the rows smallest. Recorded in the catalog when the load commits.
    fn choose_encodings(&mut self, batch: &RecordBatch) -> Result<(), NodeError> {
        self.choose_encodings = false;
        let sample = batch.slice(0, batch.num_rows().min(ENCODE_AUTO_SAMPLE_ROWS));
        let sort_cols = self.table.sortkey_indices();
        let mut table = (*self.table).clone();
        for i in 0..table.columns.len() {
            if sort_cols.contains(&i) {
                continue;
            }
            let sizes = basalt_storage::encoded_sizes(&self.table, i, sample.column(i).clone())?;
            if let Some(&(best, _)) = sizes.iter().min_by_key(|(_, b)| *b) {
                table.columns[i].encoding = best;
            }
        }
        self.table = Arc::new(table);
        Ok(())
    }

    pub(crate) async fn push(
        &mut self,
        batch: &RecordBatch,
        plan: &[ColumnSource],
    ) -> Result<(), NodeError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let topology = self.compute.topology;
        let conformed = conform(
            &self.table,
            batch,
            plan,
            &mut self.identity,
            self.identity_stride,
        )?;
        if self.choose_encodings {
            self.choose_encodings(&conformed)?;
        }
        self.rows += conformed.num_rows() as u64;
        for (slice, part) in split_by_slice(&self.table, &topology, &conformed, &mut self.rr)? {
            let e = self.pending.entry(slice).or_default();
            e.1 += part.num_rows();
            e.0.push(part);
            if e.1 >= FLUSH_ROWS {
                let batches = std::mem::take(&mut e.0);
                e.1 = 0;
                self.start_write(slice, batches).await?;
            }
        }
        Ok(())
    }

    /// Start writing `batches` to `slice`, first waiting for a write to finish when as many
    /// as there are cores are under way.
    async fn start_write(
        &mut self,
        slice: SliceId,
        batches: Vec<RecordBatch>,
    ) -> Result<(), NodeError> {
        let most = std::thread::available_parallelism().map_or(2, |n| n.get());
        while self.writing.len() >= most {
            self.next_written().await?;
        }
        let node = self.compute.node_for(slice)?.clone();
        let (table, flush) = (self.table.clone(), self.flushes);
        self.flushes += 1;
        let sketch = self.stats.is_some() && self.counts_rows_of(slice);
        self.writing.spawn(
            async move {
                // The rows' statistics are taken beside their write.
                let stats = sketch.then(|| {
                    let (table, batches) = (table.clone(), batches.clone());
                    tokio::task::spawn_blocking(move || WriteStats::of(&table.columns, &batches))
                });
                let req = WriteRequest {
                    table,
                    slice,
                    batches,
                };
                let segments = node.write(req).await?;
                let stats = match stats {
                    Some(s) => Some(s.await.map_err(|e| NodeError::Internal {
                        message: format!("statistics of a segment write failed: {e}"),
                    })??),
                    None => None,
                };
                Ok((flush, slice, segments, stats))
            }
            .in_current_span(),
        );
        Ok(())
    }

    /// Wait for a write under way; its segments join `written`.
    async fn next_written(&mut self) -> Result<(), NodeError> {
        let Some(done) = self.writing.join_next().await else {
            return Ok(());
        };
        let (flush, slice, segs, stats) = done.map_err(|e| NodeError::Internal {
            message: format!("a segment write failed: {e}"),
        })??;
        self.written.insert((flush, slice), segs);
        if let (Some(all), Some(these)) = (&mut self.stats, stats) {
            all.merge(these)?;
        }
        Ok(())
    }

    /// Wait for every write under way, all of them even after one fails (so that each file
    /// written is known and a rollback removes it); the first failure is the result.
    async fn settle(&mut self) -> Result<(), NodeError> {
        let mut result = Ok(());
        while !self.writing.is_empty() {
            if let Err(e) = self.next_written().await
                && result.is_ok()
            {
                result = Err(e);
            }
        }
        result
    }

    fn record_files(&self, session: &mut Session) {
        let id = self.table.id;
        let open = session.txn.as_mut().expect("transaction open");
        for ((_, slice), segs) in &self.written {
            for s in segs {
                open.written.insert((*slice, id, s.file.clone()));
            }
        }
        session.rr = self.rr;
    }

    /// Write what is buffered and point the table at the new segments.
    pub(crate) async fn finish(
        mut self,
        session: &mut Session,
        replace: bool,
    ) -> Result<u64, NodeError> {
        let wrote = self.write_rest().await;
        self.record_files(session);
        wrote?;
        let written = self.take_written();
        let identity = std::mem::take(&mut self.identity);
        let stats = match self.stats.take() {
            Some(s) if self.rows > 0 => Some(s.finish(&self.table.columns)?),
            _ => None,
        };
        commit_written(
            session,
            &self.table,
            written,
            self.rows,
            identity,
            replace,
            stats,
        );
        Ok(self.rows)
    }

    /// Write what is buffered and wait for every write under way.
    pub(crate) async fn write_rest(&mut self) -> Result<(), NodeError> {
        let mut flush: Result<(), NodeError> = Ok(());
        for (slice, (batches, _)) in std::mem::take(&mut self.pending) {
            flush = self.start_write(slice, batches).await;
            if flush.is_err() {
                break;
            }
        }
        let settled = self.settle().await;
        flush?;
        settled
    }

    /// The segments written, per slice in the order written: the caller now answers for
    /// their files.
    pub(crate) fn take_written(&mut self) -> Vec<(SliceId, Vec<SegmentMeta>)> {
        std::mem::take(&mut self.written)
            .into_iter()
            .map(|((_, slice), segs)| (slice, segs))
            .collect()
    }

    /// Give up: the files written so far are deleted with the transaction; those of writes
    /// still under way, when they finish.
    pub(crate) fn abandon(mut self, session: &mut Session) {
        self.record_files(session);
        self.written.clear();
        // Writes still under way: dropping the writer removes their files when they end.
    }
}

/// A writer dropped with segments written (a failed or canceled share of a COPY on a
/// compute node, an abandoned write) removes their files, and those of the writes still
/// under way when they end: no version will name them.
impl Drop for TableWriter {
    fn drop(&mut self) {
        let table = self.table.id;
        for ((_, slice), segs) in std::mem::take(&mut self.written) {
            if let Ok(node) = self.compute.node_for(slice) {
                node.remove(slice, table, segs.into_iter().map(|s| s.file).collect());
            }
        }
        if self.writing.is_empty() {
            return;
        }
        let mut writing = std::mem::take(&mut self.writing);
        let compute = self.compute.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // Dropping them stops them; the next garbage collection removes what they wrote.
            warn!(table = %self.table.name, writes = writing.len(), "segment writes abandoned outside a runtime");
            return;
        };
        runtime.spawn(async move {
            while let Some(done) = writing.join_next().await {
                if let Ok(Ok((_, slice, segs, _))) = done
                    && let Ok(node) = compute.node_for(slice)
                {
                    node.remove(slice, table, segs.into_iter().map(|s| s.file).collect());
                }
            }
        });
    }
}

/// Point `table` at segments written for it, in the open transaction: the rows of a
/// [`TableWriter`] or of a COPY's shares on the compute nodes. `replace`: they are all the
/// table's rows now. `stats`: the table's statistics, gathered while its rows were written
/// (into an empty table).
pub(crate) fn commit_written(
    session: &mut Session,
    table: &TableMeta,
    written: Vec<(SliceId, Vec<SegmentMeta>)>,
    rows: u64,
    identity: BTreeMap<u32, i64>,
    replace: bool,
    stats: Option<TableStats>,
) {
    let open = session.txn.as_mut().expect("transaction open");
    let t = open.txn.table_mut(table.id).expect("table exists");
    if replace {
        t.data.slices.clear();
    }
    for (slice, segs) in written {
        t.data.slices.entry(slice).or_default().extend(segs);
    }
    t.identity_next = identity;
    t.version += 1;
    t.rows_changed += rows;
    if let Some(stats) = stats {
        info!(table = %t.qualified_name(), rows = stats.rows, "statistics gathered by the load");
        t.stats = Some(stats);
        t.rows_changed = 0;
    }
    if t.encode_auto && rows > 0 {
        for (c, chosen) in t.columns.iter_mut().zip(&table.columns) {
            c.encoding = chosen.encoding;
        }
    }
}

/// Row ids found by a DELETE or UPDATE: per (slice, index of the segment in the version read),
/// the row positions.
type FoundRows = BTreeMap<(SliceId, usize), RoaringBitmap>;

/// Add the row ids in columns `at..at + 3` of `batch` to `found`; with `unique`, a row id seen
/// before is an error (21000).
fn record_row_ids(
    found: &mut FoundRows,
    batch: &RecordBatch,
    at: usize,
    unique: bool,
) -> Result<(), NodeError> {
    let slices = batch.column(at).as_primitive::<Int32Type>();
    let segments = batch.column(at + 1).as_primitive::<Int32Type>();
    let rows = batch.column(at + 2).as_primitive::<Int64Type>();
    for i in 0..batch.num_rows() {
        let fresh = found
            .entry((SliceId(slices.value(i) as u32), segments.value(i) as usize))
            .or_default()
            .insert(rows.value(i) as u32);
        if unique && !fresh {
            return Err(NodeError::invalid(
                "21000",
                "UPDATE ... FROM matched a row with more than one row of the FROM clause",
            ));
        }
    }
    Ok(())
}

/// Build a batch in the table's column order and types from a source batch.
fn conform(
    table: &TableMeta,
    src: &RecordBatch,
    plan: &[ColumnSource],
    identity: &mut BTreeMap<u32, i64>,
    stride: i64,
) -> Result<RecordBatch, NodeError> {
    let n = src.num_rows();
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(table.columns.len());
    for (c, how) in table.columns.iter().zip(plan) {
        let target = c.ty.to_arrow();
        let arr: ArrayRef = match how {
            ColumnSource::Source(i) => {
                let a = src.column(*i);
                let a = if a.data_type() == &target {
                    a.clone()
                } else {
                    cast_value(a, &target, c)?
                };
                if let Some(id) = &c.identity
                    && a.null_count() > 0
                {
                    fill_identity(&a, c.id, id, stride, &c.ty, identity)?
                } else {
                    a
                }
            }
            ColumnSource::Default(v) => {
                let a = v.to_array_of_size(n)?;
                if a.data_type() == &target {
                    a
                } else {
                    cast_value(&a, &target, c)?
                }
            }
            ColumnSource::Null => new_null_array(&target, n),
            ColumnSource::Identity => {
                let id = c.identity.as_ref().expect("identity column");
                fill_identity(
                    &new_null_array(&target, n),
                    c.id,
                    id,
                    stride,
                    &c.ty,
                    identity,
                )?
            }
        };
        let arr = check_column(c, arr)?;
        cols.push(arr);
    }
    Ok(RecordBatch::try_new(table.arrow_schema(), cols)?)
}

pub(crate) fn cast_value(
    a: &ArrayRef,
    target: &DataType,
    c: &basalt_catalog::ColumnMeta,
) -> Result<ArrayRef, NodeError> {
    // Booleans stored into strings print as Postgres does.
    if a.data_type() == &DataType::Boolean && matches!(target, DataType::Utf8) {
        let b = a.as_boolean();
        return Ok(Arc::new(
            b.iter()
                .map(|v| v.map(|x| if x { "true" } else { "false" }))
                .collect::<StringArray>(),
        ));
    }
    // Text in the plain form (`-123.45`, as COPY FROM STDIN and INSERT send it) converts
    // without the general cast, which formats strings for every value.
    if let (DataType::Utf8, DataType::Decimal128(precision, scale)) = (a.data_type(), target)
        && let Some(d) = crate::convert::plain_decimals(a.as_string::<i32>(), *precision, *scale)
    {
        return Ok(Arc::new(d));
    }
    let text_to_datetime = matches!(
        a.data_type(),
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
    ) && matches!(target, DataType::Date32 | DataType::Timestamp(_, None));
    let cast = if text_to_datetime {
        basalt_planner::pg_semantics::text_to_datetime(a, target)
    } else {
        cast_with_options(a, target, &CAST)
    };
    cast.map_err(|e| {
        let msg = e.to_string();
        let (state, message) = crate::error::classify_cast(msg.trim_start_matches("Cast error: "));
        NodeError::invalid(
            state,
            format!(
                "column \"{}\" of type {}: {message}",
                c.name,
                c.ty.display_name()
            ),
        )
    })
}

/// Fill NULLs of an IDENTITY column with the next values, `stride` steps apart.
fn fill_identity(
    a: &ArrayRef,
    col: u32,
    id: &basalt_catalog::Identity,
    stride: i64,
    ty: &SqlType,
    next: &mut BTreeMap<u32, i64>,
) -> Result<ArrayRef, NodeError> {
    let mut v = *next.get(&col).unwrap_or(&id.seed);
    let step = id
        .step
        .checked_mul(stride)
        .ok_or_else(|| NodeError::invalid("22003", "IDENTITY value out of range"))?;
    let mut out: Vec<i64> = Vec::with_capacity(a.len());
    let as64 = cast_with_options(a, &DataType::Int64, &CAST)?;
    let as64 = as64.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
    for i in 0..a.len() {
        if as64.is_null(i) {
            out.push(v);
            v = v
                .checked_add(step)
                .ok_or_else(|| NodeError::invalid("22003", "IDENTITY value out of range"))?;
        } else {
            out.push(as64.value(i));
        }
    }
    next.insert(col, v);
    Ok(match ty {
        SqlType::SmallInt => Arc::new(Int16Array::from(
            out.iter()
                .map(|x| i16::try_from(*x).map_err(|_| identity_range()))
                .collect::<Result<Vec<_>, _>>()?,
        )),
        SqlType::Integer => Arc::new(Int32Array::from(
            out.iter()
                .map(|x| i32::try_from(*x).map_err(|_| identity_range()))
                .collect::<Result<Vec<_>, _>>()?,
        )),
        _ => Arc::new(Int64Array::from(out)),
    })
}

fn identity_range() -> NodeError {
    NodeError::invalid("22003", "IDENTITY value out of range for the column type")
}

/// NOT NULL and length checks; CHAR values lose trailing blanks (blank-padded semantics).
fn check_column(c: &basalt_catalog::ColumnMeta, a: ArrayRef) -> Result<ArrayRef, NodeError> {
    if !c.nullable && a.null_count() > 0 {
        return Err(NodeError::invalid(
            "23502",
            format!(
                "null value in column \"{}\" violates not-null constraint",
                c.name
            ),
        ));
    }
    match c.ty {
        SqlType::Varchar(n) => {
            let s = a.as_string::<i32>();
            if s.iter().flatten().any(|v| v.len() > n as usize) {
                return Err(NodeError::invalid(
                    "22001",
                    format!("value too long for type character varying({n})"),
                ));
            }
            Ok(a)
        }
        SqlType::Char(n) => {
            let s = a.as_string::<i32>();
            let trimmed: StringArray = s
                .iter()
                .map(|v| v.map(|x| x.trim_end_matches(' ')))
                .collect();
            if trimmed.iter().flatten().any(|v| v.len() > n as usize) {
                return Err(NodeError::invalid(
                    "22001",
                    format!("value too long for type character({n})"),
                ));
            }
            Ok(Arc::new(trimmed))
        }
        _ => Ok(a),
    }
}
