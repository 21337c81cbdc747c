//! ANALYZE: per-column statistics the planner uses (row counts, NULLs, distinct values,
//! smallest and largest values), and `stats_off`.
//!
//! `ANALYZE [VERBOSE] [table [(columns)]] [PREDICATE COLUMNS | ALL COLUMNS]`. Like Redshift, a
//! table is skipped when fewer than `analyze_threshold_percent` (default 10) of its rows
//! changed since the last ANALYZE; `SET analyze_threshold_percent TO 0` analyzes every time.
//! The statistics come from one aggregate query over the table (distinct counts are
//! HyperLogLog estimates where DataFusion has them), and are committed with the table.

use basalt_catalog::{ColumnStats, SqlType, TableId, TableMeta, TableStats};
use basalt_sql::sqlparser::ast::Analyze;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use tracing::info;

use crate::session::{StatementOutput, ident_name};
use crate::{NodeError, Session};

/// Redshift's default `analyze_threshold_percent`.
const DEFAULT_THRESHOLD_PERCENT: f64 = 10.0;

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Types whose distinct count DataFusion estimates with HyperLogLog; others (floating
/// point, booleans) count exactly. An exact count of a decimal column hashes every value, and
/// a COPY into an empty table analyzes it (docs/benchmarks.md, session 11).
fn estimates_distinct(ty: &SqlType) -> bool {
    matches!(
        ty,
        SqlType::SmallInt
            | SqlType::Integer
            | SqlType::BigInt
            | SqlType::Decimal { .. }
            | SqlType::Char(_)
            | SqlType::Varchar(_)
            | SqlType::Date
            | SqlType::Timestamp
            | SqlType::TimestampTz
            | SqlType::Time
    )
}

/// Rows ANALYZE COMPRESSION samples by default (Redshift's COMPROWS default).
const DEFAULT_COMPROWS: u64 = 100_000;

impl Session {
    /// `ANALYZE COMPRESSION [t [(cols)]] [COMPROWS n]`: for each column, the encoding that
    /// stores a sample of its values smallest, and how much smaller than RAW it is. Reads a
    /// sample; changes nothing, so writers are never blocked.
    pub(crate) async fn analyze_compression(
        &mut self,
        a: &Analyze,
        comprows: Option<u64>,
    ) -> Result<StatementOutput, NodeError> {
        use datafusion::arrow::array::{Float64Builder, RecordBatch, StringBuilder};

        let (tables, only) = self.analyze_targets(a)?;
        let rows = comprows.unwrap_or(DEFAULT_COMPROWS);
        let (mut t_out, mut c_out, mut e_out) = (
            StringBuilder::new(),
            StringBuilder::new(),
            StringBuilder::new(),
        );
        let mut pct_out = Float64Builder::new();
        for table in tables {
            let sql = format!(
                "SELECT * FROM {}.{} LIMIT {rows}",
                quote(&table.schema),
                quote(&table.name)
            );
            let stmt = basalt_sql::parse(&sql)?.remove(0).statement;
            let batches = self.query(stmt).await?.collect().await?;
            let sample =
                datafusion::arrow::compute::concat_batches(&table.arrow_schema(), &batches)?;
            for (i, col) in table.columns.iter().enumerate() {
                if !only.is_empty() && !only.contains(&col.name) {
                    continue;
                }
                let sizes = basalt_storage::encoded_sizes(&table, i, sample.column(i).clone())?;
                let raw = sizes
                    .iter()
                    .find(|(e, _)| *e == basalt_catalog::Encoding::Raw)
                    .map(|(_, b)| *b);
                // The smallest; on a tie the earlier (preferred) candidate.
                let Some(&(best, bytes)) = sizes.iter().min_by_key(|(_, b)| *b) else {
                    continue;
                };
                let reduction = raw
                    .filter(|r| *r > 0)
                    .map(|r| {
                        ((100.0 * (r as f64 - bytes as f64) / r as f64) * 100.0).round() / 100.0
                    })
                    .unwrap_or(0.0);
                t_out.append_value(&table.name);
                c_out.append_value(&col.name);
                e_out.append_value(best.as_str());
                pct_out.append_value(reduction);
            }
        }
        let schema = compression_schema();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                std::sync::Arc::new(t_out.finish()),
                std::sync::Arc::new(c_out.finish()),
                std::sync::Arc::new(e_out.finish()),
                std::sync::Arc::new(pct_out.finish()),
            ],
        )?;
        Ok(StatementOutput::Rows {
            schema: schema.clone(),
            stream: Box::pin(
                datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
                    schema,
                    futures::stream::iter(vec![Ok(batch)]),
                ),
            ),
        })
    }

    /// The tables an ANALYZE names (every permanent table without a name) and its columns
    /// (empty: all), checked to exist.
    fn analyze_targets(&mut self, a: &Analyze) -> Result<(Vec<TableMeta>, Vec<String>), NodeError> {
        let state = self.txn_mut().txn.state().clone();
        let tables: Vec<TableMeta> = match &a.table_name {
            Some(name) => vec![self.resolve_table(&state, name)?],
            None => state
                .tables
                .values()
                .filter(|t| !t.temporary)
                .cloned()
                .collect(),
        };
        let columns: Vec<String> = a.columns.iter().map(ident_name).collect();
        for table in &tables {
            if let Some(missing) = columns.iter().find(|c| table.column(c).is_none()) {
                return Err(basalt_catalog::CatalogError::ColumnNotFound {
                    table: table.name.clone(),
                    column: missing.clone(),
                }
                .into());
            }
        }
        Ok((tables, columns))
    }

    pub(crate) async fn analyze(
        &mut self,
        a: &Analyze,
        predicate_columns: bool,
    ) -> Result<StatementOutput, NodeError> {
        let threshold = match self.settings.get("analyze_threshold_percent") {
            None => DEFAULT_THRESHOLD_PERCENT,
            Some(v) => v.trim().parse::<f64>().map_err(|_| {
                NodeError::invalid(
                    "22023",
                    format!("analyze_threshold_percent must be a number, not \"{v}\""),
                )
            })?,
        };
        let (tables, columns) = self.analyze_targets(a)?;
        for table in tables {
            let changed_percent = match &table.stats {
                Some(s) if s.rows > 0 => 100.0 * table.rows_changed as f64 / s.rows as f64,
                Some(_) | None => 100.0,
            };
            if table.stats.is_some() && changed_percent < threshold.max(f64::MIN_POSITIVE) {
                info!(table = %table.qualified_name(), changed_percent, "analyze skipped: few rows changed");
                continue;
            }
            let columns = if predicate_columns && columns.is_empty() {
                self.leader.predicate_columns(&table)
            } else {
                columns.clone()
            };
            let stats = self.table_stats(&table, &columns).await?;
            let t = self
                .txn_mut()
                .txn
                .table_mut(table.id)
                .expect("resolved table exists");
            let mut merged = t.stats.take().unwrap_or_default();
            merged.analyzed_at = stats.analyzed_at;
            merged.rows = stats.rows;
            merged.columns.extend(stats.columns);
            t.stats = Some(merged);
            t.rows_changed = 0;
            info!(table = %table.qualified_name(), rows = stats.rows, "analyzed");
        }
        Ok(StatementOutput::command("ANALYZE"))
    }

    /// Statistics for a table a load just filled (CTAS, COPY into an empty table), in the
    /// load's transaction, as Redshift keeps them without an ANALYZE.
    pub(crate) async fn analyze_after_load(&mut self, id: TableId) -> Result<(), NodeError> {
        let table = self.txn_table(id);
        let stats = self.table_stats(&table, &[]).await?;
        let t = self
            .txn_mut()
            .txn
            .table_mut(id)
            .expect("loaded table exists");
        info!(table = %table.qualified_name(), rows = stats.rows, "analyzed after load");
        t.stats = Some(stats);
        t.rows_changed = 0;
        Ok(())
    }

    /// Measure the table (all columns, or `only` these) with one aggregate query.
    async fn table_stats(
        &mut self,
        table: &TableMeta,
        only: &[String],
    ) -> Result<TableStats, NodeError> {
        let cols: Vec<_> = table
            .columns
            .iter()
            .filter(|c| only.is_empty() || only.contains(&c.name))
            .collect();
        let mut items = vec!["count(*)".to_string()];
        for c in &cols {
            let q = quote(&c.name);
            let distinct = if estimates_distinct(&c.ty) {
                format!("approx_distinct({q})")
            } else {
                format!("count(DISTINCT {q})")
            };
            items.push(format!("count({q})"));
            items.push(format!("CAST({distinct} AS bigint)"));
            items.push(format!("CAST(min({q}) AS varchar)"));
            items.push(format!("CAST(max({q}) AS varchar)"));
        }
        let sql = format!(
            "SELECT {} FROM {}.{}",
            items.join(", "),
            quote(&table.schema),
            quote(&table.name)
        );
        let stmt = basalt_sql::parse(&sql)?.remove(0).statement;
        let batches = self.query(stmt).await?.collect().await?;
        let Some(row) = batches.iter().find(|b| b.num_rows() > 0) else {
            return Err(NodeError::Internal {
                message: format!("ANALYZE of {} returned no row", table.qualified_name()),
            });
        };
        let int = |i: usize| -> Result<u64, NodeError> {
            let a = cast(row.column(i), &DataType::Int64)?;
            let a = a.as_primitive::<Int64Type>();
            Ok(if a.is_null(0) {
                0
            } else {
                a.value(0).max(0) as u64
            })
        };
        let text = |i: usize| crate::stats::first_as_text(row.column(i));
        let rows = int(0)?;
        let mut stats = crate::stats::measured_now(rows);
        for (k, c) in cols.iter().enumerate() {
            let at = 1 + 4 * k;
            let non_null = int(at)?;
            stats.columns.insert(
                c.id,
                ColumnStats {
                    nulls: rows - non_null.min(rows),
                    distinct: int(at + 1)?.min(non_null),
                    min: text(at + 2)?,
                    max: text(at + 3)?,
                },
            );
        }
        Ok(stats)
    }
}

/// ANALYZE COMPRESSION's result columns, as Redshift names them.
pub(crate) fn compression_schema() -> datafusion::arrow::datatypes::SchemaRef {
    use datafusion::arrow::datatypes::{Field, Schema};
    std::sync::Arc::new(Schema::new(vec![
        Field::new("Table", DataType::Utf8, false),
        Field::new("Column", DataType::Utf8, false),
        Field::new("Encoding", DataType::Utf8, false),
        Field::new("Est_reduction_pct", DataType::Float64, false),
    ]))
}

/// Columns of tables a query uses in filters, join conditions and GROUP BY: Redshift's
/// predicate columns, which `ANALYZE PREDICATE COLUMNS` measures. Read from the query's
/// unoptimized plan; a column is named by its table's reference as written.
pub(crate) fn predicate_columns(
    plan: &datafusion::logical_expr::LogicalPlan,
) -> Vec<(datafusion::common::TableReference, String)> {
    use std::collections::HashMap;

    use datafusion::common::TableReference;
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::{Expr, LogicalPlan};

    /// The table a plan reads when it is a chain of single-input nodes over one scan.
    fn base_table(plan: &LogicalPlan) -> Option<TableReference> {
        match plan {
            LogicalPlan::TableScan(ts) => Some(ts.table_name.clone()),
            p => match p.inputs().as_slice() {
                [one] => base_table(one),
                _ => None,
            },
        }
    }
    let mut aliases: HashMap<String, TableReference> = HashMap::new();
    let mut scans: Vec<TableReference> = vec![];
    let mut exprs: Vec<Expr> = vec![];
    let _ = plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::TableScan(ts) => scans.push(ts.table_name.clone()),
            LogicalPlan::SubqueryAlias(sa) => {
                if let Some(t) = base_table(&sa.input) {
                    aliases.insert(sa.alias.table().to_string(), t);
                }
            }
            LogicalPlan::Filter(f) => exprs.push(f.predicate.clone()),
            LogicalPlan::Join(j) => {
                for (l, r) in &j.on {
                    exprs.push(l.clone());
                    exprs.push(r.clone());
                }
                exprs.extend(j.filter.clone());
            }
            LogicalPlan::Aggregate(a) => exprs.extend(a.group_expr.iter().cloned()),
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    });
    let mut out = vec![];
    for e in &exprs {
        for c in e.column_refs() {
            let Some(r) = &c.relation else {
                continue;
            };
            let table = match (r.schema(), aliases.get(r.table())) {
                (None, Some(t)) => Some(t.clone()),
                _ => scans
                    .iter()
                    .find(|s| {
                        s.table() == r.table() && (r.schema().is_none() || s.schema() == r.schema())
                    })
                    .cloned(),
            };
            if let Some(t) = table {
                out.push((t, c.name.clone()));
            }
        }
    }
    out
}
