//! # basalt-mpp — fragments across compute nodes
//!
//! Stage on the query path: **distribute**. The leader's DataFusion plan is cut into
//! fragments at its exchanges, and each fragment runs as one task per compute node, next to
//! the slices it reads. The engine that cuts, ships and streams is `datafusion-distributed`
//! (pinned exactly, behind this crate: nothing else in the workspace names it). This crate
//! gives it what a shared-nothing warehouse needs:
//!
//! ```text
//!  leader: DataFusion physical plan (scans declare Hash(distkey) for KEY tables)
//!     │  datafusion-distributed: stages at hash repartitions, broadcasts, merges
//!     │    hooks (hooks.rs): task count per stage = nodes; task i's scan = node i's slices;
//!     │                      task i routed to node i
//!     │  codec.rs: SliceScanExec as datafusion-proto bytes (versioned)
//!     ▼  network.rs: gRPC channels stamped with the cluster secret
//!  compute node i (worker.rs): decodes the fragment, reads its slices locally,
//!     streams exchanges to the other nodes and results to the leader (Arrow Flight)
//! ```
//!
//! A stage with one task and no exchange below it runs on the leader itself; its scans then
//! read through the leader's view of the cluster.

mod codec;
mod error;
mod explain;
mod hooks;
mod network;
mod node_work;
mod replicated;
mod rpc;
mod worker;

use std::sync::Arc;

use basalt_storage::ComputeCluster;
use datafusion::execution::SessionStateBuilder;
use datafusion_distributed::{DistributedExt, SessionStateBuilderExt};

pub use codec::{BasaltCodec, PLAN_NODE_VERSION, PlanExtension};
/// What a [`PlanExtension`] implements.
pub use datafusion_proto::physical_plan::{
    PhysicalExtensionCodec, PhysicalProtoConverterExtension,
};
pub use error::MppError;
pub use explain::redshift_explain;
pub use network::{Membership, NodeChannels, SECRET_HEADER, Security, TlsConfig};
pub use node_work::{NodeWork, NodeWorkExec};
pub use rpc::{
    InternalService, NODE_IN_USE, PingReply, Pinged, RegisterReply, RegisterRequest, Registrar,
    RemoteNode, node_in_use, register,
};
pub use url::Url;
pub use worker::{ComputeServer, functions_context};

/// Version of the internal protocol (fragments, exchanges, node RPCs). Nodes of one cluster
/// must agree on it.
pub const PROTOCOL_VERSION: u32 = 1;

/// The leader's handle on the compute nodes' fragment servers.
#[derive(Debug, Clone)]
pub struct Mpp {
    membership: Membership,
    channels: NodeChannels,
    extension: Option<PlanExtension>,
}

impl Mpp {
    /// `extension` encodes the plan nodes of the crates above this one that fragments carry.
    pub fn new(
        membership: Membership,
        security: &Security,
        extension: Option<PlanExtension>,
    ) -> Self {
        Mpp {
            membership,
            channels: security.channels(),
            extension,
        }
    }

    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Plan the session's queries as distributed plans over the compute nodes. `compute` is
    /// the leader's view of the cluster, for stages that run on the leader.
    pub fn configure(
        &self,
        builder: SessionStateBuilder,
        compute: Arc<ComputeCluster>,
    ) -> Result<SessionStateBuilder, MppError> {
        let mut builder = builder
            .with_distributed_worker_resolver(self.membership.clone())
            .with_distributed_channel_resolver(self.channels.clone())
            .with_distributed_planner()
            .with_distributed_user_codec(BasaltCodec::new(compute, self.extension.clone()))
            .with_distributed_desired_task_count_handler(hooks::desired_task_count)
            .with_distributed_scale_up_leaf_node_handler(hooks::scale_up)
            .with_distributed_route_tasks_handler(hooks::route)
            // A union's branches each run on every node: a branch given a subset of the
            // tasks could not read the slices of the others' nodes locally.
            .with_distributed_children_isolator_unions(false)
            .map_err(MppError::Config)?;
        // Joins with ALL tables read each node's copy rather than a broadcast one.
        let inner = builder.query_planner().take();
        Ok(builder.with_query_planner(Arc::new(replicated::LocalCopies { inner })))
    }
}

/// A distributed physical plan as text: the head stage on the leader, then each stage with its
/// task count and per-task scans.
pub fn display_plan(plan: &dyn datafusion::physical_plan::ExecutionPlan) -> String {
    datafusion_distributed::display_plan_ascii(plan, false)
}

/// Whether `plan` runs as fragments on the compute nodes.
pub fn is_distributed(plan: &dyn datafusion::physical_plan::ExecutionPlan) -> bool {
    plan.is::<datafusion_distributed::DistributedExec>()
}

/// An executed distributed plan with the metrics its tasks reported, per task: each node of
/// a stage's plan carries the metrics of every task, labelled with [`task_of`]. Waits at most
/// `wait` for the tasks' reports; a plan that is not distributed is returned as it is.
pub async fn with_task_metrics(
    plan: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    wait: std::time::Duration,
) -> Arc<dyn datafusion::physical_plan::ExecutionPlan> {
    if !is_distributed(plan.as_ref()) {
        return plan;
    }
    let rewritten = tokio::time::timeout(
        wait,
        datafusion_distributed::rewrite_distributed_plan_with_metrics(
            plan.clone(),
            datafusion_distributed::DistributedMetricsFormat::PerTask,
        ),
    )
    .await;
    match rewritten {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "no task metrics for the query log");
            plan
        }
        Err(_) => {
            tracing::debug!("task metrics did not arrive in time for the query log");
            plan
        }
    }
}

/// The task a metric of [`with_task_metrics`]'s plan was measured in (0 on the leader).
pub fn task_of(metric: &datafusion::physical_plan::metrics::Metric) -> usize {
    metric
        .labels()
        .iter()
        .find(|l| l.name() == datafusion_distributed::DISTRIBUTED_DATAFUSION_TASK_ID_LABEL)
        .and_then(|l| l.value().parse().ok())
        .unwrap_or(0)
}

/// The slice scan a plan node is, with the variant each task ran when the scan was split
/// into per-task variants (empty otherwise).
pub fn slice_scan(
    plan: &dyn datafusion::physical_plan::ExecutionPlan,
) -> Option<(
    &basalt_planner::SliceScanExec,
    Vec<&basalt_planner::SliceScanExec>,
)> {
    use basalt_planner::SliceScanExec;
    if let Some(scan) = plan.downcast_ref::<SliceScanExec>() {
        return Some((scan, vec![]));
    }
    let leaf = plan.downcast_ref::<datafusion_distributed::DistributedLeafExec>()?;
    let scan = leaf.original().downcast_ref::<SliceScanExec>()?;
    let variants = leaf
        .variants()
        .iter()
        .filter_map(|v| v.downcast_ref::<SliceScanExec>())
        .collect();
    Some((scan, variants))
}

/// Start a fragment server for each node of an in-process cluster, on loopback ports of
/// their own: the same servers and channels as separate processes use. Every node reads
/// through `compute`, which holds them all.
pub fn start_in_process(
    compute: &Arc<ComputeCluster>,
    security: &Security,
    extension: Option<PlanExtension>,
) -> Result<(Mpp, Vec<ComputeServer>), MppError> {
    let mut servers = vec![];
    let mut urls = vec![];
    let ctx = functions_context();
    for node in compute.local_nodes() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(MppError::Listen)?;
        let internal = InternalService::compute(node.clone(), Membership::default(), ctx.clone());
        let server = ComputeServer::start(
            listener,
            compute.clone(),
            security,
            internal,
            extension.clone(),
        )?;
        urls.push(
            Url::parse(&format!("{}://{}", security.scheme(), server.addr()))
                .map_err(|e| MppError::Address(e.to_string()))?,
        );
        servers.push(server);
    }
    Ok((
        Mpp::new(Membership::new(urls), security, extension),
        servers,
    ))
}

/// Which task of its stage a fragment runs as, and how many tasks the stage has: (0, 1) for a
/// plan that is not distributed.
pub fn task_of_context(ctx: &Arc<datafusion::execution::TaskContext>) -> (usize, usize) {
    let task = datafusion_distributed::DistributedTaskContext::from_ctx(ctx);
    (task.task_index, task.task_count)
}
