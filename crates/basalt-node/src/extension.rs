//! The plan extension every compute node and the leader's sessions are started with: the
//! plan nodes of this crate that run inside fragments on the compute nodes, UNLOAD's file
//! writer and a COPY's share. Each travels as a tag byte and its own versioned encoding.

use std::sync::Arc;

use basalt_mpp::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use basalt_storage::ComputeCluster;
use datafusion::common::{Result, internal_err};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;

use crate::unload::UnloadCodec;

const UNLOAD: u8 = 1;
const COPY: u8 = 2;

/// Encodes and decodes UNLOAD's and COPY's plan nodes; a decoded COPY share writes through
/// `compute`, the view of the cluster of the process it runs in.
#[derive(Debug)]
struct NodeCodec {
    compute: Arc<ComputeCluster>,
}

impl PhysicalExtensionCodec for NodeCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match buf.split_first() {
            Some((&UNLOAD, rest)) => UnloadCodec.try_decode(rest, inputs, ctx, converter),
            Some((&COPY, rest)) => crate::load::decode_share(rest, self.compute.clone()),
            _ => internal_err!("unknown BasaltDB plan extension node"),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let mut bytes = vec![];
        if let Some(copy) = crate::load::encode_share(node.as_ref(), &mut bytes) {
            copy?;
            buf.push(COPY);
        } else {
            UnloadCodec.try_encode(node, &mut bytes, converter)?;
            buf.push(UNLOAD);
        }
        buf.extend_from_slice(&bytes);
        Ok(())
    }
}

/// The plan extension of a process whose view of the cluster is `compute`.
pub(crate) fn plan_extension(compute: Arc<ComputeCluster>) -> basalt_mpp::PlanExtension {
    Arc::new(NodeCodec { compute })
}
