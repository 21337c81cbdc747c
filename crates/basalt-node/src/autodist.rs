//! DISTSTYLE AUTO: a table starts as ALL (a copy on the first slice of every node) and, once
//! it holds more than [`crate::LeaderConfig::auto_all_max_rows`] rows, the leader moves it in
//! the background: to KEY on its primary key when that is a single column, otherwise to EVEN.
//!
//! The move is one transaction: it reads the rows of the version it starts from, writes them
//! placed the new way, and commits the table pointing at the new segments only. Readers see
//! the ALL table or the redistributed one, never a mix; a write that committed meanwhile
//! makes the move lose (40001) and it is tried again at the next round, and an append that
//! started before the move cannot be merged onto it (the catalog refuses to rebase an append
//! across a change of placement). Every step is recorded in SVL_AUTO_WORKER_ACTION.

use std::sync::Arc;

use basalt_catalog::{DistStyle, TableId, TableMeta};
use chrono::NaiveDateTime;
use datafusion::arrow::array::RecordBatch;
use parking_lot::Mutex;
use tracing::{info, warn};

use crate::dml::{ColumnSource, TableWriter};
use crate::{Leader, NodeError, Session};

/// Rows an AUTO table may hold and stay ALL, by default. Redshift does not publish its own
/// threshold; 100,000 rows keeps small dimensions (TPC-H's nation, region and supplier at
/// SF1) on every node and moves larger tables off the leader's broadcasts.
pub const DEFAULT_AUTO_ALL_MAX_ROWS: u64 = 100_000;

/// One row of SVL_AUTO_WORKER_ACTION.
#[derive(Debug, Clone)]
pub(crate) struct AutoAction {
    pub table: TableId,
    /// What kind of change (`distkey`, as Redshift names a change of distribution).
    pub kind: &'static str,
    /// `Start`, `Complete`, or `Abort: <reason>`.
    pub status: String,
    pub eventtime: NaiveDateTime,
    /// The n-th step of this change (0 for Start).
    pub sequence: i32,
    /// The placement before the change.
    pub previous_state: String,
}

/// The automatic worker's actions since the leader started.
#[derive(Debug, Default)]
pub(crate) struct AutoActions {
    actions: Mutex<Vec<AutoAction>>,
}

impl AutoActions {
    fn record(&self, table: TableId, status: String, sequence: i32, previous: &str) {
        self.actions.lock().push(AutoAction {
            table,
            kind: "distkey",
            status,
            eventtime: chrono::Utc::now().naive_utc(),
            sequence,
            previous_state: previous.to_string(),
        });
    }

    pub(crate) fn all(&self) -> Vec<AutoAction> {
        self.actions.lock().clone()
    }
}

/// The placement an AUTO table moves to: KEY on a one-column primary key, else EVEN.
fn target(table: &TableMeta) -> (DistStyle, Option<String>) {
    match table.constraints.primary_key.as_slice() {
        [one] => (DistStyle::Key, Some(one.clone())),
        _ => (DistStyle::Even, None),
    }
}

/// Rows of one copy of an ALL table.
fn copy_rows(table: &TableMeta) -> u64 {
    table
        .data
        .slices
        .values()
        .next()
        .map(|segs| segs.iter().map(|s| s.live_rows()).sum())
        .unwrap_or(0)
}

impl Leader {
    /// Move every AUTO table that outgrew ALL; returns how many moved.
    pub(crate) async fn auto_redistribute(self: &Arc<Self>) -> Result<usize, NodeError> {
        let threshold = self.config().auto_all_max_rows;
        let state = self.catalog().snapshot();
        let due: Vec<TableMeta> = state
            .tables
            .values()
            .filter(|t| {
                t.diststyle == DistStyle::Auto
                    && t.auto_style.is_none()
                    && !t.temporary
                    && copy_rows(t) > threshold
            })
            .cloned()
            .collect();
        let mut moved = 0;
        for table in due {
            let mut session = self.session(&self.config().superuser, &self.config().database)?;
            let previous = format!("DISTSTYLE {}", table.diststyle_text());
            let (style, key) = target(&table);
            let actions = self.auto_actions();
            actions.record(table.id, "Start".into(), 0, &previous);
            match session
                .redistribute_auto(table.id, style, key.clone())
                .await
            {
                Ok(rows) => {
                    let to = match &key {
                        Some(k) => format!("KEY({k})"),
                        None => style.as_str().to_string(),
                    };
                    info!(table = %table.qualified_name(), rows, to = %to, "AUTO table redistributed");
                    actions.record(table.id, format!("Complete: DISTSTYLE {to}"), 1, &previous);
                    moved += 1;
                }
                Err(e) => {
                    session.rollback_open();
                    warn!(table = %table.qualified_name(), error = %e, "AUTO redistribution put off");
                    actions.record(table.id, format!("Abort: {e}"), 1, &previous);
                }
            }
        }
        Ok(moved)
    }
}

impl Session {
    /// Rewrite an AUTO table with the placement `style` (on `key` for KEY) in one
    /// transaction; returns the rows moved.
    pub(crate) async fn redistribute_auto(
        &mut self,
        id: TableId,
        style: DistStyle,
        key: Option<String>,
    ) -> Result<u64, NodeError> {
        self.txn_mut();
        let table = self.txn_table(id);
        let columns = table.columns.len();
        let sql = format!(
            "select * from \"{}\".\"{}\"",
            table.schema.replace('"', "\"\""),
            table.name.replace('"', "\"\"")
        );
        let mut statements = basalt_sql::parse(&sql)?;
        let statement = statements
            .pop()
            .ok_or_else(|| NodeError::internal("empty redistribution query"))?;
        let batches: Vec<RecordBatch> = self.query(statement.statement).await?.collect().await?;
        let rows_changed = table.rows_changed;
        {
            let t = self
                .txn_mut()
                .txn
                .table_mut(id)
                .ok_or_else(|| NodeError::internal("table vanished during redistribution"))?;
            t.auto_style = Some(style);
            if key.is_some() {
                t.distkey = key;
            }
        }
        let plan: Vec<ColumnSource> = (0..columns).map(ColumnSource::Source).collect();
        let mut writer = TableWriter::new(self, id);
        for batch in &batches {
            if let Err(e) = writer.push(batch, &plan).await {
                writer.abandon(self);
                return Err(e);
            }
        }
        let rows = writer.finish(self, true).await?;
        // The rows moved; none changed.
        if let Some(t) = self.txn_mut().txn.table_mut(id) {
            t.rows_changed = rows_changed;
        }
        self.commit_open().await?;
        Ok(rows)
    }
}

/// Run [`Leader::auto_redistribute`] every `every` while the leader lives.
pub(crate) async fn auto_redistribute_loop(
    leader: std::sync::Weak<Leader>,
    every: std::time::Duration,
) {
    crate::leader::periodically(leader, every, |leader| async move {
        if let Err(e) = leader.auto_redistribute().await {
            warn!(error = %e, "automatic redistribution failed");
        }
    })
    .await
}
