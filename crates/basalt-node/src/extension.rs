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
use basalt_io::S3Settings;
use basalt_sql::CopyParameter;
use serde::{Deserialize, Serialize};

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

/// The S3 settings a leader resolved, as they travel inside a plan node (credentials too: on
/// the cluster's internal connections only).
#[derive(Serialize, Deserialize)]
pub(crate) struct WireSettings {
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
}

impl From<&S3Settings> for WireSettings {
    fn from(s: &S3Settings) -> Self {
        let s = s.clone();
        WireSettings {
            endpoint: s.endpoint,
            region: s.region,
            access_key_id: s.access_key_id,
            secret_access_key: s.secret_access_key,
            session_token: s.session_token,
        }
    }
}

impl From<WireSettings> for S3Settings {
    fn from(w: WireSettings) -> Self {
        S3Settings {
            endpoint: w.endpoint,
            region: w.region,
            access_key_id: w.access_key_id,
            secret_access_key: w.secret_access_key,
            session_token: w.session_token,
        }
    }
}

/// A statement's parameters as they travel: (name, value) pairs.
pub(crate) fn wire_params(params: &[CopyParameter]) -> Vec<(String, Option<String>)> {
    params
        .iter()
        .map(|p| (p.name.clone(), p.value.clone()))
        .collect()
}

pub(crate) fn params_of(wire: Vec<(String, Option<String>)>) -> Vec<CopyParameter> {
    wire.into_iter()
        .map(|(name, value)| CopyParameter { name, value })
        .collect()
}
