//! The three hooks that make datafusion-distributed place fragments where the slices are.
//!
//! - **Task count**: a stage that scans a KEY or EVEN table runs one task per compute node; a
//!   scan of an ALL table reads one copy, in one task. A [`NodeWorkExec`] asks for one task
//!   per node too.
//! - **Leaf variants**: task i's copy of a slice scan reads the slices of node i (see
//!   [`SliceScanExec::for_task`]); task i's share of a node work is the work's to give.
//! - **Routing**: task i of such a stage runs on node i, so every slice is read on the node
//!   that holds it. Stages without a slice scan or node work are routed by
//!   datafusion-distributed.

use std::sync::Arc;

use basalt_planner::SliceScanExec;

use crate::node_work::NodeWorkExec;
use datafusion::common::Result;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_distributed::{
    DesiredTaskCountEvent, DesiredTaskCountEventResponse, DistributedLeafExec, NetworkBoundaryExt,
    RouteTasksEvent, RouteTasksEventResponse, ScaleUpLeafNodeEvent, ScaleUpLeafNodeEventResponse,
    get_distributed_worker_resolver,
};

/// One task per compute node for a distributed table's scan, one for a replicated table's.
pub(crate) fn desired_task_count(
    ev: DesiredTaskCountEvent<'_>,
) -> Option<Result<DesiredTaskCountEventResponse>> {
    if let Some(work) = ev.plan.downcast_ref::<NodeWorkExec>() {
        return Some(Ok(DesiredTaskCountEventResponse::maximum(
            work.work().nodes().max(1),
        )));
    }
    let scan = ev.plan.downcast_ref::<SliceScanExec>()?;
    let tasks = if scan.is_replicated() {
        1
    } else {
        scan.topology().nodes as usize
    };
    Some(Ok(DesiredTaskCountEventResponse::maximum(tasks)))
}

/// Task i's variant of a slice scan reads the slices of the nodes it is given.
pub(crate) fn scale_up(
    ev: ScaleUpLeafNodeEvent<'_>,
) -> Option<Result<ScaleUpLeafNodeEventResponse>> {
    if let Some(work) = ev.plan.downcast_ref::<NodeWorkExec>() {
        let variants = (0..ev.task_count)
            .map(|task| work.work().for_task(task, ev.task_count))
            .collect::<Result<Vec<_>>>();
        return Some(variants.and_then(|variants| {
            DistributedLeafExec::try_new(Arc::clone(ev.plan), variants)
                .map(|leaf| ScaleUpLeafNodeEventResponse::new(Arc::new(leaf)))
        }));
    }
    let scan = ev.plan.downcast_ref::<SliceScanExec>()?;
    let variants = (0..ev.task_count)
        .map(|task| {
            scan.for_task(task, ev.task_count)
                .map(|v| Arc::new(v) as Arc<dyn ExecutionPlan>)
        })
        .collect::<Result<Vec<_>>>();
    Some(variants.and_then(|variants| {
        DistributedLeafExec::try_new(Arc::clone(ev.plan), variants)
            .map(|leaf| ScaleUpLeafNodeEventResponse::new(Arc::new(leaf)))
    }))
}

/// Route each task of a stage that scans slices to the node holding its slices, and task i
/// of a node work to node i.
pub(crate) fn route(ev: RouteTasksEvent<'_>) -> Option<Result<RouteTasksEventResponse>> {
    let mut nodes: Option<Vec<Option<usize>>> = None;
    let found = ev.plan.apply(|p| {
        if let Some(leaf) = p.downcast_ref::<DistributedLeafExec>()
            && leaf.original().is::<SliceScanExec>()
        {
            let pins: Vec<Option<usize>> = leaf
                .variants()
                .iter()
                .map(|v| {
                    v.downcast_ref::<SliceScanExec>()
                        .and_then(|s| s.parts().node)
                        .map(|n| n.0 as usize)
                })
                .collect();
            // Scans of one stage agree on their nodes; keep the first that names one.
            match &mut nodes {
                None => nodes = Some(pins),
                Some(have) => {
                    for (h, p) in have.iter_mut().zip(pins) {
                        if h.is_none() {
                            *h = p;
                        }
                    }
                }
            }
            return Ok(TreeNodeRecursion::Continue);
        }
        if let Some(leaf) = p.downcast_ref::<DistributedLeafExec>()
            && leaf.original().is::<NodeWorkExec>()
            && nodes.is_none()
        {
            nodes = Some((0..leaf.variants().len()).map(Some).collect());
            return Ok(TreeNodeRecursion::Continue);
        }
        // Other stages' scans are routed with their own stage.
        if p.is_network_boundary() {
            return Ok(TreeNodeRecursion::Jump);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    if let Err(e) = found {
        return Some(Err(e));
    }
    let nodes = nodes?;
    let urls = match get_distributed_worker_resolver(ev.task_ctx.session_config())
        .and_then(|r| r.get_urls())
    {
        Ok(urls) if !urls.is_empty() => urls,
        Ok(_) => return None,
        Err(e) => return Some(Err(e)),
    };
    if nodes.len() != ev.task_count {
        return None;
    }
    Some(Ok(RouteTasksEventResponse::new(
        nodes
            .iter()
            .enumerate()
            .map(|(task, node)| urls[node.unwrap_or(task) % urls.len()].clone())
            .collect(),
    )))
}
