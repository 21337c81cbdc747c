//! DML: INSERT, DELETE, UPDATE. Rows are conformed to the table's types (casts, NOT NULL,
//! lengths, defaults, IDENTITY), placed on slices by DISTSTYLE, and written by the compute
//! nodes as new segments; the transaction then points the table at them.
//!
//! DELETE and UPDATE rewrite the table (correct now; delete vectors come with the storage
//! engine): the new version's rows are produced by a DataFusion query over the old version.

use std::collections::BTreeMap;
use std::sync::Arc;

use basalt_catalog::{SegmentMeta, SliceId, SqlType, TableId, TableMeta};
use basalt_sql::ParsedStatement;
use basalt_sql::sqlparser::ast::{
    AssignmentTarget, FromTable, Statement, TableFactor, TableObject, UpdateTableFromKind,
};
use basalt_storage::{WriteRequest, split_by_slice};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int16Array, Int32Array, Int64Array, RecordBatch, StringArray,
    new_null_array,
};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::sql::parser::Statement as DFStatement;
use futures::StreamExt;

use crate::session::{StatementOutput, ident_name, split_name};
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

/// How each table column is produced from a source batch.
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
                        self.insert_query(table.id, cols, Statement::Query(q))
                            .await?
                    }
                    None => {
                        // INSERT ... DEFAULT VALUES
                        self.insert_query(
                            table.id,
                            Some(vec![]),
                            basalt_sql::parse("SELECT 1")?.remove(0).statement,
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
                let alias = alias
                    .as_ref()
                    .map(|a| format!(" AS {}", quote_ident(&ident_name(&a.name))))
                    .unwrap_or_default();
                let before = table.data.row_count() / copies(&table, self) as u64;
                let keep = match (&del.selection, &del.using) {
                    (None, None) => Some(format!(
                        "SELECT * FROM {}{alias} WHERE FALSE",
                        table_ref(&table)
                    )),
                    (Some(pred), None) => Some(format!(
                        "SELECT * FROM {}{alias} WHERE ({pred}) IS NOT TRUE",
                        table_ref(&table)
                    )),
                    (pred, Some(using)) => {
                        let using: Vec<String> = using.iter().map(|u| u.to_string()).collect();
                        let pred = pred
                            .as_ref()
                            .map(|p| p.to_string())
                            .unwrap_or_else(|| "TRUE".into());
                        Some(format!(
                            "SELECT * FROM {}{alias} WHERE NOT EXISTS (SELECT 1 FROM {} WHERE {pred})",
                            table_ref(&table),
                            using.join(", ")
                        ))
                    }
                };
                let after = self.rewrite_table(table.id, keep).await?;
                Ok(StatementOutput::command_rows(
                    "DELETE",
                    before.saturating_sub(after),
                ))
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
                let alias_name = alias.as_ref().map(|a| ident_name(&a.name));
                // The row's own columns, qualified where FROM brings other tables in scope.
                let target = quote_ident(alias_name.as_deref().unwrap_or(&table.name));
                let from: Option<String> = match &up.from {
                    Some(UpdateTableFromKind::AfterSet(f) | UpdateTableFromKind::BeforeSet(f)) => {
                        Some(
                            f.iter()
                                .map(|t| t.to_string())
                                .collect::<Vec<_>>()
                                .join(", "),
                        )
                    }
                    None => None,
                };
                let qualify = |c: &str| match &from {
                    Some(_) => format!("{target}.{}", quote_ident(c)),
                    None => quote_ident(c),
                };
                let hit = match &up.selection {
                    Some(p) => format!("(({p}) IS TRUE)"),
                    None => "TRUE".into(),
                };
                // Updated rows UNION ALL untouched rows: the predicate stays in a WHERE clause,
                // where DataFusion plans any subquery it holds.
                let projection: Vec<String> = table
                    .columns
                    .iter()
                    .map(|c| match assigned.get(&c.name) {
                        Some(v) => format!(
                            "CAST(({v}) AS {}) AS {}",
                            c.ty.cast_name(),
                            quote_ident(&c.name)
                        ),
                        None => qualify(&c.name),
                    })
                    .collect();
                let alias = match (alias, &from) {
                    (Some(a), _) => format!(" AS {}", quote_ident(&ident_name(&a.name))),
                    // Name the target so `target.*` resolves next to the FROM tables.
                    (None, Some(_)) => format!(" AS {target}"),
                    (None, None) => String::new(),
                };
                if let Some(from) = &from {
                    // UPDATE ... FROM: rows with a match take the SET values computed from
                    // it; rows without one stay. A row matching several FROM rows would be
                    // updated ambiguously (Postgres picks one at random): refuse it.
                    let pred = up
                        .selection
                        .as_ref()
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "TRUE".into());
                    let t = table_ref(&table);
                    let matched = self
                        .count(&format!(
                            "SELECT count(*) FROM {t}{alias} WHERE EXISTS \
                             (SELECT 1 FROM {from} WHERE {pred})"
                        ))
                        .await?;
                    let joined = self
                        .count(&format!(
                            "SELECT count(*) FROM {t}{alias}, {from} WHERE {hit}"
                        ))
                        .await?;
                    if joined != matched {
                        return Err(NodeError::invalid(
                            "21000",
                            format!(
                                "UPDATE ... FROM matched a row of \"{}\" with more than one \
                                 row of the FROM clause",
                                table.name
                            ),
                        ));
                    }
                    let sql = format!(
                        "SELECT {} FROM {t}{alias}, {from} WHERE {hit} UNION ALL \
                         SELECT {target}.* FROM {t}{alias} WHERE NOT EXISTS \
                         (SELECT 1 FROM {from} WHERE {pred})",
                        projection.join(", ")
                    );
                    self.rewrite_table(table.id, Some(sql)).await?;
                    return Ok(StatementOutput::command_rows("UPDATE", matched));
                }
                let count_sql = format!(
                    "SELECT count(*) FROM {}{alias} WHERE {hit}",
                    table_ref(&table)
                );
                let updated = self.count(&count_sql).await?;
                let keep = match &up.selection {
                    Some(p) => format!("({p}) IS NOT TRUE"),
                    None => "FALSE".into(),
                };
                let sql = format!(
                    "SELECT {} FROM {t}{alias} WHERE {hit} UNION ALL SELECT * FROM {t}{alias} WHERE {keep}",
                    projection.join(", "),
                    t = table_ref(&table)
                );
                self.rewrite_table(table.id, Some(sql)).await?;
                Ok(StatementOutput::command_rows("UPDATE", updated))
            }
            other => Err(NodeError::unsupported(other.to_string())),
        }
    }

    async fn count(&mut self, sql: &str) -> Result<u64, NodeError> {
        let stmt = basalt_sql::parse(sql)?.remove(0).statement;
        let batches = self.query(stmt).await?.collect().await?;
        let v = batches
            .first()
            .and_then(|b| {
                b.column(0)
                    .as_primitive_opt::<datafusion::arrow::datatypes::Int64Type>()
                    .map(|a| a.value(0))
            })
            .unwrap_or(0);
        Ok(v as u64)
    }

    /// Plan `source` and stream its rows.
    async fn source_stream(
        &mut self,
        source: Statement,
    ) -> Result<SendableRecordBatchStream, NodeError> {
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

    /// INSERT the rows of a query into a table (also CTAS). Returns the row count.
    pub(crate) async fn insert_query(
        &mut self,
        table_id: TableId,
        columns: Option<Vec<String>>,
        source: Statement,
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
        let plan = self.column_plan(&table, &targets).await?;
        self.write_stream(table_id, stream, &plan, false).await
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
    pub(crate) async fn column_plan(
        &mut self,
        table: &TableMeta,
        targets: &[String],
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
                Some(_) if c.identity.as_ref().is_some_and(|id| !id.by_default) => {
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
        self.write_stream(table_id, stream, &plan, true).await
    }

    /// Conform, place and write a stream of rows; `replace` swaps the table's data for them.
    async fn write_stream(
        &mut self,
        table_id: TableId,
        mut stream: SendableRecordBatchStream,
        plan: &[ColumnSource],
        replace: bool,
    ) -> Result<u64, NodeError> {
        let mut w = TableWriter::new(self, table_id);
        let r: Result<(), NodeError> = async {
            while let Some(batch) = stream.next().await {
                w.push(self, &batch?, plan).await?;
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

    pub(crate) async fn write_slice(
        &self,
        table: &Arc<TableMeta>,
        slice: SliceId,
        batches: Vec<RecordBatch>,
    ) -> Result<Vec<SegmentMeta>, NodeError> {
        let node = self.leader.compute().node_for(slice)?;
        Ok(node
            .write(WriteRequest {
                table: table.clone(),
                slice,
                batches,
            })
            .await?)
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

/// Writes rows of one table: conform, place on slices, buffer per slice, write segments.
pub(crate) struct TableWriter {
    table: Arc<TableMeta>,
    identity: BTreeMap<u32, i64>,
    pending: BTreeMap<SliceId, (Vec<RecordBatch>, usize)>,
    written: BTreeMap<SliceId, Vec<SegmentMeta>>,
    rows: u64,
    rr: u64,
}

impl TableWriter {
    pub(crate) fn new(session: &mut Session, table_id: TableId) -> Self {
        let table = Arc::new(session.txn_table(table_id));
        TableWriter {
            identity: table.identity_next.clone(),
            table,
            pending: BTreeMap::new(),
            written: BTreeMap::new(),
            rows: 0,
            rr: session.rr,
        }
    }

    pub(crate) async fn push(
        &mut self,
        session: &Session,
        batch: &RecordBatch,
        plan: &[ColumnSource],
    ) -> Result<(), NodeError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let topology = session.leader.topology();
        let conformed = conform(&self.table, batch, plan, &mut self.identity)?;
        self.rows += conformed.num_rows() as u64;
        for (slice, part) in split_by_slice(&self.table, &topology, &conformed, &mut self.rr)? {
            let e = self.pending.entry(slice).or_default();
            e.1 += part.num_rows();
            e.0.push(part);
            if e.1 >= FLUSH_ROWS {
                let batches = std::mem::take(&mut e.0);
                e.1 = 0;
                let segs = session.write_slice(&self.table, slice, batches).await?;
                self.written.entry(slice).or_default().extend(segs);
            }
        }
        Ok(())
    }

    fn record_files(&self, session: &mut Session) {
        let id = self.table.id;
        let open = session.txn.as_mut().expect("transaction open");
        for (slice, segs) in &self.written {
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
        let flush: Result<(), NodeError> = async {
            for (slice, (batches, _)) in std::mem::take(&mut self.pending) {
                let segs = session.write_slice(&self.table, slice, batches).await?;
                self.written.entry(slice).or_default().extend(segs);
            }
            Ok(())
        }
        .await;
        self.record_files(session);
        flush?;
        let open = session.txn.as_mut().expect("transaction open");
        let t = open.txn.table_mut(self.table.id).expect("table exists");
        if replace {
            t.data.slices.clear();
        }
        for (slice, segs) in std::mem::take(&mut self.written) {
            t.data.slices.entry(slice).or_default().extend(segs);
        }
        t.identity_next = self.identity;
        t.version += 1;
        Ok(self.rows)
    }

    /// Give up: the files written so far are deleted with the transaction.
    pub(crate) fn abandon(self, session: &mut Session) {
        self.record_files(session);
    }
}

/// Number of stored copies of each row (ALL tables keep one per node).
fn copies(table: &TableMeta, session: &Session) -> usize {
    match table.effective_diststyle() {
        basalt_catalog::DistStyle::All | basalt_catalog::DistStyle::Auto => {
            session.leader.topology().nodes as usize
        }
        _ => 1,
    }
}

/// Build a batch in the table's column order and types from a source batch.
fn conform(
    table: &TableMeta,
    src: &RecordBatch,
    plan: &[ColumnSource],
    identity: &mut BTreeMap<u32, i64>,
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
                    let _ = id;
                    fill_identity(
                        &a,
                        c.id,
                        c.identity.as_ref().expect("identity"),
                        &c.ty,
                        identity,
                    )?
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
                fill_identity(&new_null_array(&target, n), c.id, id, &c.ty, identity)?
            }
        };
        let arr = check_column(c, arr)?;
        cols.push(arr);
    }
    Ok(RecordBatch::try_new(table.arrow_schema(), cols)?)
}

fn cast_value(
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

/// Fill NULLs of an IDENTITY column with the next values.
fn fill_identity(
    a: &ArrayRef,
    col: u32,
    id: &basalt_catalog::Identity,
    ty: &SqlType,
    next: &mut BTreeMap<u32, i64>,
) -> Result<ArrayRef, NodeError> {
    let mut v = *next.get(&col).unwrap_or(&id.seed);
    let mut out: Vec<i64> = Vec::with_capacity(a.len());
    let as64 = cast_with_options(a, &DataType::Int64, &CAST)?;
    let as64 = as64.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
    for i in 0..a.len() {
        if as64.is_null(i) {
            out.push(v);
            v = v
                .checked_add(id.step)
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
