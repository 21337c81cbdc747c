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
use tracing::{Instrument, info, info_span};

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
        let plan = Plan {
            // RECLUSTER sorts (our sort merges the whole slice); REINDEX is FULL (interleaved
            // keys are stored in compound order until z-order arrives).
            sort: !v.delete_only,
            reclaim: !v.sort_only && !v.recluster,
            threshold,
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
        for id in tables {
            let r = self.vacuum_table(id, plan).await;
            match r {
                Ok(()) => self.commit_open().await?,
                Err(e) => {
                    self.rollback_open();
                    return Err(e);
                }
            }
        }
        Ok(StatementOutput::command("VACUUM"))
    }

    /// Vacuum every slice of one table inside the session's (implicit) transaction.
    async fn vacuum_table(&mut self, id: TableId, plan: Plan) -> Result<(), NodeError> {
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
            let mut changed = false;
            for (done, (slice, segments)) in slices.into_iter().enumerate() {
                let rows = SliceRows::of(&table, &segments);
                let sort = plan.sort
                    && rows.unsorted > 0
                    && (rows.sorted_percent() < plan.threshold || plan.threshold == 100);
                let reclaim = plan.reclaim
                    && rows.live < rows.stored
                    && (rows.live_percent() < plan.threshold || plan.threshold == 100);
                info!(%slice, step = done + 1, of = total, stored = rows.stored, live = rows.live,
                      unsorted = rows.unsorted, sort, reclaim, "vacuum slice");
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
                    continue;
                };
                let open = self.txn_mut();
                let t = open.txn.table_mut(id).expect("table exists");
                t.data.slices.insert(slice, new_segments);
                changed = true;
            }
            if changed {
                let open = self.txn_mut();
                let t = open.txn.table_mut(id).expect("table exists");
                t.version += 1;
            }
            Ok(())
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
