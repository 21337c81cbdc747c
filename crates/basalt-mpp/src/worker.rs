//! The compute side: a node's gRPC server running the fragments the leader sends.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use basalt_storage::ComputeCluster;
use datafusion::common::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion_distributed::{DistributedExt, Worker, WorkerQueryContext, WorkerSessionBuilder};
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tracing::{info, warn};

use crate::codec::{BasaltCodec, PlanExtension};
use crate::network::{NodeChannels, SecretCheck, Security};
use crate::rpc::InternalService;
use crate::{MppError, PROTOCOL_VERSION};
use arrow_flight::flight_service_server::FlightServiceServer;

/// The functions a fragment may call besides DataFusion's own: Redshift's, and those the
/// Postgres-semantics rewrites insert.
pub(crate) fn plan_functions() -> (Vec<Arc<ScalarUDF>>, Vec<Arc<AggregateUDF>>) {
    let scalars = basalt_planner::redshift::udfs()
        .into_iter()
        .chain(basalt_planner::pg_semantics::plan_udfs())
        .map(Arc::new)
        .collect();
    let aggregates = basalt_planner::redshift::udafs()
        .into_iter()
        .chain([basalt_planner::subquery::single_row_value()])
        .map(Arc::new)
        .collect();
    (scalars, aggregates)
}

/// Builds the DataFusion session a fragment runs in on a compute node.
struct FragmentSessions {
    compute: Arc<ComputeCluster>,
    extension: Option<PlanExtension>,
    channels: NodeChannels,
    scalars: Vec<Arc<ScalarUDF>>,
    aggregates: Vec<Arc<AggregateUDF>>,
}

#[async_trait]
impl WorkerSessionBuilder for FragmentSessions {
    async fn build_session_state(
        &self,
        ctx: WorkerQueryContext,
    ) -> Result<SessionState, DataFusionError> {
        let mut builder = ctx
            .builder
            .with_distributed_user_codec(BasaltCodec::new(
                self.compute.clone(),
                self.extension.clone(),
            ))
            .with_distributed_channel_resolver(self.channels.clone());
        builder
            .scalar_functions()
            .get_or_insert_default()
            .extend(self.scalars.iter().cloned());
        builder
            .aggregate_functions()
            .get_or_insert_default()
            .extend(self.aggregates.iter().cloned());
        Ok(builder.build())
    }
}

/// A task context with the functions fragments call, for the internal requests of a node
/// (zone-map filters of remote slice scans).
pub fn functions_context() -> Arc<datafusion::execution::TaskContext> {
    let (scalars, aggregates) = plan_functions();
    let mut builder = datafusion::execution::SessionStateBuilder::new().with_default_features();
    builder
        .scalar_functions()
        .get_or_insert_default()
        .extend(scalars);
    builder
        .aggregate_functions()
        .get_or_insert_default()
        .extend(aggregates);
    builder.build().task_ctx()
}

/// A compute node's fragment server, listening on an address of its own.
pub struct ComputeServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ComputeServer {
    /// Serve fragments on `listener`, reading slices through `compute` (this node's view of
    /// the cluster), and the node's internal requests, accepting only requests that carry
    /// `secret`. `extension` decodes the plan nodes of the crates above this one.
    pub fn start(
        listener: std::net::TcpListener,
        compute: Arc<ComputeCluster>,
        security: &Security,
        internal: InternalService,
        extension: Option<PlanExtension>,
    ) -> Result<Self, MppError> {
        let (scalars, aggregates) = plan_functions();
        let worker = Worker::from_session_builder(FragmentSessions {
            compute,
            extension,
            channels: security.channels(),
            scalars,
            aggregates,
        })
        .with_version(PROTOCOL_VERSION.to_string());
        Self::serve(listener, Some(worker), security, internal)
    }

    /// The leader's internal server: compute nodes register with it.
    pub fn start_leader(
        listener: std::net::TcpListener,
        security: &Security,
        internal: InternalService,
    ) -> Result<Self, MppError> {
        Self::serve(listener, None, security, internal)
    }

    fn serve(
        listener: std::net::TcpListener,
        worker: Option<Worker>,
        security: &Security,
        internal: InternalService,
    ) -> Result<Self, MppError> {
        let secret = security.secret.as_str();
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = &security.tls {
            builder = builder
                .tls_config(tonic::transport::ServerTlsConfig::new().identity(
                    tonic::transport::Identity::from_pem(&tls.cert_pem, &tls.key_pem),
                ))
                .map_err(|e| MppError::Tls(e.to_string()))?;
        }
        let addr = listener.local_addr().map_err(MppError::Listen)?;
        listener.set_nonblocking(true).map_err(MppError::Listen)?;
        let fragments = worker.map(|w| {
            tonic::service::interceptor::InterceptedService::new(
                w.into_worker_server(),
                SecretCheck::new(secret),
            )
        });
        let internal = tonic::service::interceptor::InterceptedService::new(
            FlightServiceServer::new(internal)
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
            SecretCheck::new(secret),
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let listener = match TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => {
                    warn!(%addr, error = %e, "internal server could not listen");
                    return;
                }
            };
            info!(%addr, "internal server listening");
            // Without TCP_NODELAY a reply's last small frame waits for the peer's delayed ACK
            // (about 40 ms on Linux): the end of every fragment stream, once per query.
            let incoming = TcpListenerStream::new(listener).map(|socket| {
                if let Ok(s) = &socket {
                    let _ = s.set_nodelay(true);
                }
                socket
            });
            let served = builder
                .add_optional_service(fragments)
                .add_service(internal)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = served {
                warn!(%addr, error = %e, "internal server stopped");
            }
        });
        Ok(ComputeServer {
            addr,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting fragments and wait for the server to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for ComputeServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
