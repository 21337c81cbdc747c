//! Leaves whose work divides among the compute nodes by something other than slices: COPY's
//! files, say. The crate that defines the work gives each task its share
//! ([`NodeWork::for_task`]); the hooks run one task per node, task i on node i.
//!
//! ```text
//!  leader:  NodeWorkExec(work) ──distributed planner──▶ DistributedLeafExec
//!              variants: work.for_task(0, n) … work.for_task(n-1, n)
//!  node i:  runs variant i (decoded by the plan extension)
//! ```
//!
//! A stage of one task (a one-node cluster) runs the whole work, [`NodeWork::for_task`]`(0, 1)`,
//! wherever datafusion-distributed puts it.

use std::fmt;
use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, EmptyRecordBatchStream, ExecutionPlan, Partitioning,
    PlanProperties, SendableRecordBatchStream,
};

/// Work that divides among the compute nodes.
pub trait NodeWork: fmt::Debug + Send + Sync {
    /// The tasks the work asks for: one per compute node.
    fn nodes(&self) -> usize;

    /// The plan that does task `task`'s share when the work runs as `count` tasks. Every
    /// share has the same schema and partition count; all shares together do the work once.
    fn for_task(&self, task: usize, count: usize) -> Result<Arc<dyn ExecutionPlan>>;
}

/// A leaf doing a [`NodeWork`]: on its own, all of it; under the distributed planner, one
/// share per task, task i routed to node i.
///
/// It shows one partition more than the work has: a plan whose root has a single partition
/// stays on the leader, one with more is gathered by the distributed planner through a
/// network boundary, which is what brings the shares' output from the nodes. The extra
/// partition is empty.
#[derive(Debug)]
pub struct NodeWorkExec {
    work: Arc<dyn NodeWork>,
    /// The whole work as one plan.
    whole: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl NodeWorkExec {
    pub fn try_new(work: Arc<dyn NodeWork>) -> Result<Self> {
        let whole = work.for_task(0, 1)?;
        let partitions = whole.properties().partitioning.partition_count() + 1;
        let properties = Arc::new(
            whole
                .properties()
                .as_ref()
                .clone()
                .with_partitioning(Partitioning::UnknownPartitioning(partitions)),
        );
        Ok(NodeWorkExec {
            work,
            whole,
            properties,
        })
    }

    pub fn work(&self) -> &Arc<dyn NodeWork> {
        &self.work
    }
}

impl DisplayAs for NodeWorkExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "NodeWorkExec: nodes={}, ", self.work.nodes())?;
        self.whole.fmt_as(t, f)
    }
}

impl ExecutionPlan for NodeWorkExec {
    fn name(&self) -> &str {
        "NodeWorkExec"
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
        if !children.is_empty() {
            return datafusion::common::internal_err!("NodeWorkExec has no children");
        }
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition < self.whole.properties().partitioning.partition_count() {
            return self.whole.execute(partition, context);
        }
        Ok(Box::pin(EmptyRecordBatchStream::new(self.whole.schema())))
    }
}
