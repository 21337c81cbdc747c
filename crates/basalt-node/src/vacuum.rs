//! VACUUM: rewrite segments to drop deleted rows and merge each slice into sort-key order.
//!
//! `VACUUM [FULL | SORT ONLY | DELETE ONLY | REINDEX | RECLUSTER] [table [TO n PERCENT]] [BOOST]`
//! with Redshift's meaning: plain VACUUM is FULL; the threshold (default 95) skips the sort
//! phase on a slice whose live rows are already at least that sorted, and the delete phase on a
//! slice whose rows are at least that live; a sort reclaims every deleted row it passes.
//! Each table is its own transaction, committed when its slices are done, so readers keep the
//! old version until then and an interrupted VACUUM leaves the table as it was. The work of a
//! slice runs on the compute node holding it ([`basalt_storage::ComputeNode::rewrite`]).

use std::sync::Arc;

use basalt_catalog::{SegmentMeta, SliceId, TableId, TableMeta};
use basalt_sql::sqlparser::ast::{VacuumStatement, Value};
use tracing::{Instrument, info, info_span, warn};

use crate::session::StatementOutput;
use crate::{NodeError, Session};

/// Redshift's default VACUUM threshold, in percent.
pub const DEFAULT_THRESHOLD: u64 = 95;

/// What one VACUUM does to each slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    sort: bool,
    reclaim: bool,
    threshold: u64,
    /// The variant as SYS_VACUUM_HISTORY names it (`FULL`, `DELETE ONLY`, ...).
    kind: &'static str,
    /// Started by the leader's background vacuum, not by a user.
    automatic: bool,
}

/// Times a table's VACUUM starts over after losing to a concurrent DELETE or UPDATE.
const MAX_ATTEMPTS: u32 = 3;

/// What VACUUM did to one slice: `before` (the segments it read) became `after`.
#[derive(Debug)]
struct SliceChange {
    slice: SliceId,
    before: Vec<SegmentMeta>,
    after: Vec<SegmentMeta>,
}

/// VACUUM runs kept for SYS_VACUUM_HISTORY.
const HISTORY: usize = 1000;

/// One table's VACUUM, running or finished.
#[derive(Debug, Clone)]
pub(crate) struct VacuumRun {
    pub user: String,
    pub schema: String,
    pub table: String,
    pub table_id: TableId,
    pub kind: &'static str,
    pub automatic: bool,
    pub start: chrono::NaiveDateTime,
    /// Redshift's phase names: `Initialize`, `Sort`, `Delete`, then `Complete` or `Failed`.
    pub status: &'static str,
    /// Rows stored (deleted ones included) before.
    pub rows_before: u64,
    pub rows_total: u64,
    /// Stored rows of the slices handled so far.
    pub rows_done: u64,
    pub rows_after: Option<u64>,
    /// Live rows in the sorted region after.
    pub sorted_after: Option<u64>,
}

/// What VACUUM is doing and has done: SVV_VACUUM_PROGRESS and SYS_VACUUM_HISTORY.
#[derive(Debug, Default)]
pub(crate) struct VacuumActivity {
    current: parking_lot::Mutex<Option<VacuumRun>>,
    /// Finished runs with their end time, oldest first.
    history: parking_lot::Mutex<std::collections::VecDeque<(VacuumRun, chrono::NaiveDateTime)>>,
}

impl VacuumActivity {
    fn start(&self, run: VacuumRun) {
        *self.current.lock() = Some(run);
    }

    fn update(&self, f: impl FnOnce(&mut VacuumRun)) {
        if let Some(r) = self.current.lock().as_mut() {
            f(r);
        }
    }

    fn take_current(&self) -> Option<VacuumRun> {
        self.current.lock().take()
    }

    fn finish(&self, mut run: VacuumRun, status: &'static str) {
        run.status = status;
        let mut h = self.history.lock();
        if h.len() == HISTORY {
            h.pop_front();
        }
        h.push_back((run, chrono::Utc::now().naive_utc()));
    }

    /// The running VACUUM, or else the last one (SVV_VACUUM_PROGRESS shows either).
    pub(crate) fn progress(&self) -> Option<(VacuumRun, Option<chrono::NaiveDateTime>)> {
        if let Some(r) = self.current.lock().clone() {
            return Some((r, None));
        }
        self.history
            .lock()
            .back()
            .map(|(r, end)| (r.clone(), Some(*end)))
    }

    pub(crate) fn history(&self) -> Vec<(VacuumRun, chrono::NaiveDateTime)> {
        self.history.lock().iter().cloned().collect()
    }
}

/// SVV_VACUUM_PROGRESS's estimate: the time so far per stored row handled, times the rows
/// left, as Redshift spells it (`5m 10s`).
pub(crate) fn time_remaining(run: &VacuumRun, now: chrono::NaiveDateTime) -> String {
    if run.rows_done == 0 || run.rows_done >= run.rows_total {
        return "0m 0s".into();
    }
    let elapsed = (now - run.start).num_milliseconds().max(0) as f64;
    let left = elapsed / run.rows_done as f64 * (run.rows_total - run.rows_done) as f64;
    let secs = (left / 1000.0).round() as u64;
    format!("{}m {}s", secs / 60, secs % 60)
}

impl crate::Leader {
    /// The background VACUUM DELETE ONLY: every table with a slice whose live rows fell below
    /// the default threshold (95%) of its stored rows. It never waits behind a user's VACUUM:
    /// when one runs, this round is skipped. Returns the number of tables vacuumed.
    pub(crate) async fn auto_vacuum_delete(self: &Arc<Self>) -> Result<usize, NodeError> {
        let state = self.catalog().snapshot();
        let due: Vec<TableId> = state
            .tables
            .values()
            .filter(|t| !t.temporary)
            .filter(|t| {
                t.data.slices.values().any(|segs| {
                    let r = SliceRows::of(t, segs);
                    r.live < r.stored && r.live_percent() < DEFAULT_THRESHOLD
                })
            })
            .map(|t| t.id)
            .collect();
        if due.is_empty() {
            return Ok(0);
        }
        let Some(_one_at_a_time) = self.try_vacuum_lock() else {
            return Ok(0);
        };
        let mut session = self.session(&self.config().superuser, &self.config().database)?;
        let plan = Plan {
            sort: false,
            reclaim: true,
            threshold: DEFAULT_THRESHOLD,
            kind: "DELETE ONLY",
            automatic: true,
        };
        session.vacuum_tables(&due, plan).await?;
        Ok(due.len())
    }
}

/// Run [`crate::Leader::auto_vacuum_delete`] every `every` while the leader lives.
pub(crate) async fn auto_vacuum_loop(
    leader: std::sync::Weak<crate::Leader>,
    every: std::time::Duration,
) {
    crate::leader::periodically(leader, every, |leader| async move {
        match leader.auto_vacuum_delete().await {
            Ok(0) => {}
            Ok(n) => info!(tables = n, "automatic vacuum delete"),
            Err(e) => warn!(error = %e, "automatic vacuum delete failed"),
        }
    })
    .await
}

/// Rows of a slice's part of a table, as VACUUM judges them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SliceRows {
    /// Rows stored, deleted ones included.
    pub stored: u64,
    /// Rows not deleted.
    pub live: u64,
    /// Live rows outside the sorted region (0 for a table without a sort key).
    pub unsorted: u64,
}

impl SliceRows {
    pub fn of(table: &TableMeta, segments: &[SegmentMeta]) -> Self {
        let sorted_key = table.sortkey.is_some();
        SliceRows {
            stored: segments.iter().map(|s| s.rows).sum(),
            live: segments.iter().map(|s| s.live_rows()).sum(),
            unsorted: segments
                .iter()
                .filter(|s| sorted_key && !s.sorted_region)
                .map(|s| s.live_rows())
                .sum(),
        }
    }

    /// Percent of live rows in the sorted region (100 when there are none).
    pub fn sorted_percent(&self) -> u64 {
        (100 * (self.live - self.unsorted))
            .checked_div(self.live)
            .unwrap_or(100)
    }

    /// Percent of stored rows that are live (100 when there are none).
    pub fn live_percent(&self) -> u64 {
        (100 * self.live).checked_div(self.stored).unwrap_or(100)
    }
}

impl Session {
    pub(crate) async fn vacuum(
        &mut self,
        v: &VacuumStatement,
    ) -> Result<StatementOutput, NodeError> {
        if self.txn.as_ref().is_some_and(|t| t.explicit) || self.in_block {
            return Err(NodeError::invalid(
                "25001",
                "VACUUM cannot run inside a transaction block",
            ));
        }
        let threshold = match &v.threshold {
            None => DEFAULT_THRESHOLD,
            Some(t) => {
                if v.table_name.is_none() {
                    return Err(NodeError::invalid(
                        "42601",
                        "VACUUM ... TO n PERCENT needs a table name",
                    ));
                }
                match &t.value {
                    Value::Number(n, _) => n.parse::<u64>().ok().filter(|n| *n <= 100),
                    _ => None,
                }
                .ok_or_else(|| {
                    NodeError::invalid(
                        "22023",
                        format!("VACUUM threshold must be a whole percent from 0 to 100, not {t}"),
                    )
                })?
            }
        };
        let kind = if v.delete_only {
            "DELETE ONLY"
        } else if v.sort_only {
            "SORT ONLY"
        } else if v.reindex {
            "REINDEX"
        } else if v.recluster {
            "RECLUSTER"
        } else {
            "FULL"
        };
        let plan = Plan {
            // RECLUSTER sorts (our sort merges the whole slice). REINDEX is FULL: the sort
            // phase z-orders an interleaved key with ranks computed over all of a slice's rows
            // (`ComputeNode::rewrite`), which is REINDEX's re-analysis of the key distribution;
            // new segments are z-ordered from their own rows only. REINDEX re-sorts an
            // interleaved table's slices even when they are all in the sorted region.
            sort: !v.delete_only,
            reclaim: !v.sort_only && !v.recluster,
            threshold,
            kind,
            automatic: false,
        };
        let tables: Vec<TableId> = match &v.table_name {
            Some(name) => {
                let state = self.leader.catalog().snapshot();
                vec![self.resolve_table(&state, name)?.id]
            }
            None => {
                let state = self.leader.catalog().snapshot();
                state
                    .tables
                    .values()
                    .filter(|t| !t.temporary)
                    .map(|t| t.id)
                    .collect()
            }
        };
        let _one_at_a_time = self.leader.vacuum_lock().await;
        self.vacuum_tables(&tables, plan).await?;
        Ok(StatementOutput::command("VACUUM"))
    }

    /// Vacuum `tables` one after the other, each in its own transaction. The caller holds the
    /// leader's VACUUM lock.
    async fn vacuum_tables(&mut self, tables: &[TableId], plan: Plan) -> Result<(), NodeError> {
        let activity = self.leader.vacuum_activity().clone();
        for &id in tables {
            let mut attempt = 1;
            loop {
                let (run, changes) = match self.vacuum_table(id, plan).await {
                    Ok(done) => done,
                    Err(e) => {
                        self.rollback_open();
                        if let Some(run) = activity.take_current() {
                            activity.finish(run, "Failed");
                        }
                        return Err(e);
                    }
                };
                match self.commit_vacuum(id, &changes) {
                    Ok(()) => {
                        activity.finish(run, "Complete");
                        break;
                    }
                    // A concurrent DELETE/UPDATE changed segments this VACUUM rewrote: do
                    // the table again from the new version.
                    Err(e) if e.sqlstate() == "40001" && attempt < MAX_ATTEMPTS => {
                        info!(table = %run.table, attempt, "vacuum lost to a concurrent write; again");
                        attempt += 1;
                    }
                    Err(e) => {
                        activity.finish(run, "Failed");
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    /// Commit a table's VACUUM. When another transaction committed changes to the table
    /// meanwhile, the VACUUM is rebased onto them: if every segment it rewrote is still there
    /// unchanged, its new segments replace them and segments added since (INSERT, COPY) stay;
    /// otherwise it is a serialization conflict (40001).
    fn commit_vacuum(&mut self, id: TableId, changes: &[SliceChange]) -> Result<(), NodeError> {
        let Some(open) = self.txn.take() else {
            return Ok(());
        };
        let written = open.written.clone();
        let catalog = self.leader.catalog();
        let old = catalog.snapshot();
        let conflict = match catalog.commit(open.txn) {
            Ok(new) => {
                self.leader.retire(&old, &new);
                return Ok(());
            }
            Err(e @ basalt_catalog::CatalogError::SerializationConflict { .. }) => e,
            Err(e) => {
                self.leader.delete_files(&written);
                return Err(e.into());
            }
        };
        let mut txn = catalog.begin();
        let rebased = txn.table_mut(id).is_some_and(|t| {
            for change in changes {
                let now = t
                    .data
                    .slices
                    .get(&change.slice)
                    .cloned()
                    .unwrap_or_default();
                if !change.before.iter().all(|s| now.contains(s)) {
                    return false;
                }
                let added = now.into_iter().filter(|s| !change.before.contains(s));
                let merged = change.after.iter().cloned().chain(added).collect();
                t.data.slices.insert(change.slice, merged);
            }
            t.version += 1;
            true
        });
        if !rebased {
            self.leader.delete_files(&written);
            return Err(conflict.into());
        }
        let old = catalog.snapshot();
        match catalog.commit(txn) {
            Ok(new) => {
                info!(table = id.0, "vacuum rebased onto concurrent writes");
                self.leader.retire(&old, &new);
                Ok(())
            }
            Err(e) => {
                self.leader.delete_files(&written);
                Err(e.into())
            }
        }
    }

    /// Vacuum every slice of one table inside the session's (implicit) transaction.
    async fn vacuum_table(
        &mut self,
        id: TableId,
        plan: Plan,
    ) -> Result<(VacuumRun, Vec<SliceChange>), NodeError> {
        let table = Arc::new(self.txn_table(id));
        let span = info_span!("vacuum", table = %table.qualified_name(), ?plan);
        async {
            let slices: Vec<(SliceId, Vec<SegmentMeta>)> = table
                .data
                .slices
                .iter()
                .map(|(s, segs)| (*s, segs.clone()))
                .collect();
            let total = slices.len();
            let before: Vec<SliceRows> = slices
                .iter()
                .map(|(_, segs)| SliceRows::of(&table, segs))
                .collect();
            let activity = self.leader.vacuum_activity().clone();
            activity.start(VacuumRun {
                user: self.user.clone(),
                schema: table.schema.clone(),
                table: table.name.clone(),
                table_id: table.id,
                kind: plan.kind,
                automatic: plan.automatic,
                start: chrono::Utc::now().naive_utc(),
                status: "Initialize",
                rows_before: before.iter().map(|r| r.stored).sum(),
                rows_total: before.iter().map(|r| r.stored).sum(),
                rows_done: 0,
                rows_after: None,
                sorted_after: None,
            });
            let mut changed = false;
            let mut changes = vec![];
            for (done, (slice, segments)) in slices.into_iter().enumerate() {
                let rows = SliceRows::of(&table, &segments);
                let reindex = plan.kind == "REINDEX"
                    && rows.live > 0
                    && table
                        .sortkey
                        .as_ref()
                        .is_some_and(|k| k.kind == basalt_catalog::SortKeyKind::Interleaved);
                let sort = plan.sort
                    && (reindex
                        || rows.unsorted > 0
                            && (rows.sorted_percent() < plan.threshold || plan.threshold == 100));
                let reclaim = plan.reclaim
                    && rows.live < rows.stored
                    && (rows.live_percent() < plan.threshold || plan.threshold == 100);
                info!(%slice, step = done + 1, of = total, stored = rows.stored, live = rows.live,
                      unsorted = rows.unsorted, sort, reclaim, "vacuum slice");
                activity.update(|r| {
                    r.status = if sort {
                        "Sort"
                    } else if reclaim {
                        "Delete"
                    } else {
                        r.status
                    }
                });
                let new_segments = if sort {
                    self.rewrite_segments(&table, slice, segments.clone(), true)
                        .await?
                } else if reclaim {
                    // Rewrite only the segments with deleted rows, each on its own, so the
                    // sorted region keeps its order.
                    let mut out = Vec::with_capacity(segments.len());
                    for seg in &segments {
                        if seg.deleted.is_none() {
                            out.push(seg.clone());
                            continue;
                        }
                        let region = seg.sorted_region;
                        let mut rewritten = self
                            .rewrite_segments(&table, slice, vec![seg.clone()], false)
                            .await?;
                        for r in &mut rewritten {
                            r.sorted_region = region;
                        }
                        out.extend(rewritten);
                    }
                    out
                } else {
                    activity.update(|r| r.rows_done += rows.stored);
                    continue;
                };
                activity.update(|r| r.rows_done += rows.stored);
                let open = self.txn_mut();
                let t = open.txn.table_mut(id).expect("table exists");
                t.data.slices.insert(slice, new_segments.clone());
                changes.push(SliceChange {
                    slice,
                    before: segments,
                    after: new_segments,
                });
                changed = true;
            }
            if changed {
                let open = self.txn_mut();
                let t = open.txn.table_mut(id).expect("table exists");
                t.version += 1;
            }
            let after = self.txn_table(id);
            let after: Vec<SliceRows> = after
                .data
                .slices
                .values()
                .map(|segs| SliceRows::of(&after, segs))
                .collect();
            let mut run = activity.take_current().expect("started above");
            run.rows_after = Some(after.iter().map(|r| r.stored).sum());
            run.sorted_after = Some(after.iter().map(|r| r.live - r.unsorted).sum());
            Ok((run, changes))
        }
        .instrument(span)
        .await
    }

    /// Rewrite `segments` of a slice on its compute node; the new files belong to the open
    /// transaction (deleted if it does not commit).
    async fn rewrite_segments(
        &mut self,
        table: &Arc<TableMeta>,
        slice: SliceId,
        segments: Vec<SegmentMeta>,
        sort: bool,
    ) -> Result<Vec<SegmentMeta>, NodeError> {
        let node = self.leader.compute().node_for(slice)?.clone();
        let r = node.rewrite(table.clone(), slice, segments, sort).await;
        let new = r?;
        let open = self.txn_mut();
        for s in &new {
            open.written.insert((slice, table.id, s.file.clone()));
        }
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages() {
        let r = SliceRows {
            stored: 200,
            live: 100,
            unsorted: 10,
        };
        assert_eq!(r.sorted_percent(), 90);
        assert_eq!(r.live_percent(), 50);
        assert_eq!(SliceRows::default().sorted_percent(), 100);
        assert_eq!(SliceRows::default().live_percent(), 100);
    }
}
