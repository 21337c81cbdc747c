//! Joins with an ALL table read the table's copy on each node (Redshift's DS_DIST_ALL_NONE)
//! instead of broadcasting one copy over the network.
//!
//! datafusion-distributed turns the build side of every collecting join into a broadcast
//! stage. When that stage only reads a replicated table (a scan, perhaps filtered and
//! projected), [`LocalCopies`] takes the stage out again after distributed planning: the
//! consuming stage's tasks each read the copy on the node they run on.

use std::sync::Arc;

use async_trait::async_trait;
use basalt_planner::SliceScanExec;
use datafusion::catalog::Session;
use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use datafusion_distributed::{
    BroadcastExec, DistributedConfig, DistributedExec, DistributedLeafExec, NetworkBroadcastExec,
};

/// Wraps the distributed planner: broadcast stages of ALL-table reads become local reads.
#[derive(Debug)]
pub(crate) struct LocalCopies {
    pub(crate) inner: Option<Arc<dyn QueryPlanner + Send + Sync>>,
}

#[async_trait]
impl QueryPlanner for LocalCopies {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = match &self.inner {
            Some(inner) => inner.create_physical_plan(logical_plan, session).await?,
            None => {
                DefaultPhysicalPlanner::default()
                    .create_physical_plan(logical_plan, session)
                    .await?
            }
        };
        let Some(distributed) = plan.downcast_ref::<DistributedExec>() else {
            return Ok(plan);
        };
        let Some(head) = distributed.children().first().map(|c| Arc::clone(c)) else {
            return Ok(plan);
        };
        let rewritten = head.transform_down(|node| {
            if !node.is::<NetworkBroadcastExec>() {
                return Ok(Transformed::no(node));
            }
            match local_read(&node)? {
                Some(local) => Ok(Transformed::yes(local)),
                None => Ok(Transformed::no(node)),
            }
        })?;
        if !rewritten.transformed {
            return Ok(plan);
        }
        let collect = DistributedConfig::from_config_options(session.config_options())
            .map(|c| c.collect_metrics)
            .unwrap_or(true);
        Ok(Arc::new(
            DistributedExec::new(rewritten.data).with_metrics_collection(collect),
        ))
    }
}

/// The broadcast stage under `boundary` as a local read, when all it does is read an ALL
/// table's copy (through filters and projections).
fn local_read(boundary: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(stage) = boundary.children().first().map(|c| Arc::clone(c)) else {
        return Ok(None);
    };
    let Some(broadcast) = stage.downcast_ref::<BroadcastExec>() else {
        return Ok(None);
    };
    let Some(input) = broadcast.children().first().map(|c| Arc::clone(c)) else {
        return Ok(None);
    };
    let mut only_replicated = true;
    let replaced = input.transform_up(|node| {
        let scan = node
            .downcast_ref::<DistributedLeafExec>()
            .map(|leaf| leaf.original())
            .and_then(|o| o.downcast_ref::<SliceScanExec>())
            .or_else(|| node.downcast_ref::<SliceScanExec>());
        if let Some(scan) = scan {
            return Ok(match scan.reading_local_copy() {
                Some(local) => Transformed::yes(Arc::new(local) as Arc<dyn ExecutionPlan>),
                None => {
                    only_replicated = false;
                    Transformed::no(node)
                }
            });
        }
        if !matches!(
            node.name(),
            "FilterExec" | "ProjectionExec" | "CoalesceBatchesExec" | "CooperativeExec"
        ) {
            only_replicated = false;
        }
        Ok(Transformed::no(node))
    })?;
    if !only_replicated || !replaced.transformed {
        return Ok(None);
    }
    Ok(Some(replaced.data))
}
