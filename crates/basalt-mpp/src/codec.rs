//! How our plan nodes travel inside plan fragments.
//!
//! datafusion-distributed ships each fragment as datafusion-proto bytes; DataFusion's own nodes
//! encode themselves, ours go through [`BasaltCodec`]. A slice scan carries its table definition
//! (without the segment lists of other slices), the slices and segments each output partition
//! reads, and its zone-map filters as datafusion-proto logical expressions. A node-local
//! repartition carries its hashed column and partition count. Plan nodes of the crates above
//! this one (UNLOAD's file writer) travel as opaque bytes of their own codec, the
//! [`PlanExtension`] the node was started with.

use std::sync::Arc;

use basalt_catalog::{NodeId, SegmentMeta, SliceId, TableMeta};
use basalt_planner::distribution::NodeLocalRepartitionExec;
use basalt_planner::{SliceScanExec, SliceScanParts};
use basalt_storage::ComputeCluster;
use datafusion::common::{Result, internal_err};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::DefaultLogicalExtensionCodec;
use datafusion_proto::logical_plan::from_proto::parse_expr;
use datafusion_proto::logical_plan::to_proto::serialize_expr;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use datafusion_proto::protobuf::{LogicalExprNode, proto_error};
use prost::Message;
use serde::{Deserialize, Serialize};
use tracing::debug;

/// Version of our plan-node encoding. A compute node refuses a fragment of another version
/// (nodes of one cluster run one build; registration checks the protocol version first).
pub const PLAN_NODE_VERSION: u32 = 1;

#[derive(Clone, PartialEq, prost::Message)]
struct BasaltPlanNode {
    #[prost(uint32, tag = "1")]
    version: u32,
    #[prost(oneof = "Kind", tags = "2, 3, 4")]
    node: Option<Kind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Kind {
    #[prost(message, tag = "2")]
    SliceScan(SliceScanNode),
    #[prost(message, tag = "3")]
    NodeLocalRepartition(NodeLocalRepartitionNode),
    /// A node of the [`PlanExtension`], in its own encoding (which carries its own version).
    #[prost(bytes = "vec", tag = "4")]
    Extension(Vec<u8>),
}

/// The codec of plan nodes defined above this crate, which compute nodes must run too.
pub type PlanExtension = Arc<dyn PhysicalExtensionCodec>;

/// A [`NodeLocalRepartitionExec`]: the hashed column of its input and the partition count.
#[derive(Clone, PartialEq, prost::Message)]
struct NodeLocalRepartitionNode {
    #[prost(string, tag = "1")]
    column: String,
    #[prost(uint64, tag = "2")]
    column_index: u64,
    #[prost(uint64, tag = "3")]
    partitions: u64,
    #[prost(bool, tag = "4")]
    preserve_order: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SliceScanNode {
    /// [`ScanDescription`] as JSON: the catalog's own serde types.
    #[prost(bytes = "vec", tag = "1")]
    description: Vec<u8>,
    /// Zone-map filters, each a datafusion-proto `LogicalExprNode`.
    #[prost(bytes = "vec", repeated, tag = "2")]
    filters: Vec<Vec<u8>>,
}

#[derive(Serialize, Deserialize)]
struct ScanDescription {
    table: TableMeta,
    projection: Option<Vec<usize>>,
    limit: Option<usize>,
    row_ids: bool,
    partitions: Vec<Vec<(SliceId, Vec<SegmentMeta>)>>,
    node: Option<NodeId>,
    #[serde(default)]
    local_copy: bool,
    #[serde(default)]
    copies: Vec<(SliceId, Vec<SegmentMeta>)>,
}

/// Encodes and decodes BasaltDB's plan nodes. A compute node decodes scans that read through
/// its own view of the cluster (`compute`): local slices from its disk, others over the network.
#[derive(Debug, Clone)]
pub struct BasaltCodec {
    compute: Arc<ComputeCluster>,
    extension: Option<PlanExtension>,
}

impl BasaltCodec {
    pub fn new(compute: Arc<ComputeCluster>, extension: Option<PlanExtension>) -> Self {
        BasaltCodec { compute, extension }
    }
}

impl PhysicalExtensionCodec for BasaltCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let node = BasaltPlanNode::decode(buf).map_err(|e| proto_error(e.to_string()))?;
        if node.version != PLAN_NODE_VERSION {
            return internal_err!(
                "plan fragment encoded with plan-node version {}, this node reads version {PLAN_NODE_VERSION}",
                node.version
            );
        }
        match node.node {
            Some(Kind::SliceScan(scan)) => {
                let d: ScanDescription = serde_json::from_slice(&scan.description)
                    .map_err(|e| proto_error(format!("slice scan: {e}")))?;
                let parts = SliceScanParts {
                    table: Arc::new(d.table),
                    projection: d.projection,
                    filters: decode_filters(&scan.filters, ctx),
                    limit: d.limit,
                    row_ids: d.row_ids,
                    partitions: d.partitions,
                    node: d.node,
                    local_copy: d.local_copy,
                    copies: d.copies,
                };
                Ok(Arc::new(SliceScanExec::from_parts(
                    parts,
                    self.compute.clone(),
                )?))
            }
            Some(Kind::NodeLocalRepartition(r)) => {
                let [input] = inputs else {
                    return internal_err!("a node-local repartition has one input");
                };
                Ok(Arc::new(NodeLocalRepartitionExec::try_new(
                    Arc::clone(input),
                    Column::new(&r.column, r.column_index as usize),
                    r.partitions as usize,
                    r.preserve_order,
                )?))
            }
            Some(Kind::Extension(bytes)) => match &self.extension {
                Some(extension) => extension.try_decode(&bytes, inputs, ctx, converter),
                None => internal_err!("this node was started without the plan extension"),
            },
            None => Err(proto_error("empty BasaltDB plan node")),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some(local) = node.downcast_ref::<NodeLocalRepartitionExec>() {
            let (column, partitions) = local.key()?;
            let message = BasaltPlanNode {
                version: PLAN_NODE_VERSION,
                node: Some(Kind::NodeLocalRepartition(NodeLocalRepartitionNode {
                    column: column.name().to_string(),
                    column_index: column.index() as u64,
                    partitions: partitions as u64,
                    preserve_order: local.preserve_order(),
                })),
            };
            return message.encode(buf).map_err(|e| proto_error(e.to_string()));
        }
        let Some(scan) = node.downcast_ref::<SliceScanExec>() else {
            let Some(extension) = &self.extension else {
                return internal_err!("BasaltCodec cannot encode {}", node.name());
            };
            let mut bytes = vec![];
            extension.try_encode(node, &mut bytes, converter)?;
            let message = BasaltPlanNode {
                version: PLAN_NODE_VERSION,
                node: Some(Kind::Extension(bytes)),
            };
            return message.encode(buf).map_err(|e| proto_error(e.to_string()));
        };
        let parts = scan.parts();
        // The segment lists come with the partitions; the table's own copy of them (every
        // slice's) would only make the fragment bigger.
        let mut table = parts.table.as_ref().clone();
        table.data = Default::default();
        let description = ScanDescription {
            table,
            projection: parts.projection.clone(),
            limit: parts.limit,
            row_ids: parts.row_ids,
            partitions: parts.partitions.clone(),
            node: parts.node,
            local_copy: parts.local_copy,
            copies: parts.copies.clone(),
        };
        let message = BasaltPlanNode {
            version: PLAN_NODE_VERSION,
            node: Some(Kind::SliceScan(SliceScanNode {
                description: serde_json::to_vec(&description)
                    .map_err(|e| proto_error(format!("slice scan: {e}")))?,
                filters: encode_filters(&parts.filters),
            })),
        };
        message.encode(buf).map_err(|e| proto_error(e.to_string()))
    }
}

/// Filters only prune blocks (the plan applies them again), so one that cannot travel is
/// left out rather than failing the query.
pub(crate) fn encode_filters(filters: &[Expr]) -> Vec<Vec<u8>> {
    let codec = DefaultLogicalExtensionCodec {};
    filters
        .iter()
        .filter_map(|f| match serialize_expr(f, &codec) {
            Ok(node) => Some(node.encode_to_vec()),
            Err(e) => {
                debug!(filter = %f, error = %e, "zone-map filter not shipped");
                None
            }
        })
        .collect()
}

pub(crate) fn decode_filters(filters: &[Vec<u8>], ctx: &TaskContext) -> Vec<Expr> {
    let codec = DefaultLogicalExtensionCodec {};
    filters
        .iter()
        .filter_map(|bytes| {
            let node = LogicalExprNode::decode(bytes.as_slice()).ok()?;
            match parse_expr(&node, ctx, &codec) {
                Ok(e) => Some(e),
                Err(e) => {
                    debug!(error = %e, "zone-map filter not decoded");
                    None
                }
            }
        })
        .collect()
}
