//! The internal requests besides fragments, over Arrow Flight: what the leader asks of a
//! compute node in another process (write, delete, rewrite, scan a slice, list blocks,
//! remove files, health), and a compute node's registration with the leader.
//!
//! | request | Flight call | body |
//! | --- | --- | --- |
//! | write rows to a slice | `DoPut` | descriptor: [`WriteHeader`]; then Arrow batches; reply: segments |
//! | scan a slice | `DoGet` | ticket: [`ScanTicket`]; reply: Arrow batches |
//! | delete rows, rewrite, blocks, remove, garbage, ping | `DoAction` | JSON request and reply |
//! | register (to the leader) | `DoAction` | [`RegisterRequest`] → [`RegisterReply`] |
//!
//! Every request carries the cluster secret (see `network.rs`); a node's error comes back
//! as a gRPC status whose `x-basalt-sqlstate` metadata keeps the SQLSTATE it maps to.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use async_trait::async_trait;
use basalt_catalog::{NodeId, SegmentMeta, SliceId, TableId, TableMeta, Topology};
use basalt_storage::{
    BlockInfo, ComputeNode, ComputeService, RoaringBitmap, ScanRequest, StorageError, WriteRequest,
};
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{Stream, StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, instrument};

use crate::network::{Membership, NodeChannels};
use crate::{PROTOCOL_VERSION, codec};

/// gRPC metadata entry with the SQLSTATE of a node's error.
const SQLSTATE_HEADER: &str = "x-basalt-sqlstate";

const DELETE_ROWS: &str = "delete_rows";
const REWRITE: &str = "rewrite";
const BLOCKS: &str = "blocks";
const REMOVE: &str = "remove";
const GARBAGE: &str = "collect_garbage";
const PING: &str = "ping";
const REGISTER: &str = "register";

/// The header of a write: the table and the slice its rows go to.
#[derive(Serialize, Deserialize)]
pub struct WriteHeader {
    table: TableMeta,
    slice: SliceId,
}

/// A slice scan asked of the node that holds the slice.
#[derive(Serialize, Deserialize)]
pub struct ScanTicket {
    table: TableMeta,
    slice: SliceId,
    segments: Vec<SegmentMeta>,
    projection: Option<Vec<usize>>,
    /// Zone-map filters as datafusion-proto logical expressions.
    filters: Vec<Vec<u8>>,
    limit: Option<usize>,
    row_ids: bool,
}

#[derive(Serialize, Deserialize)]
struct DeleteRowsRequest {
    table: TableId,
    slice: SliceId,
    /// Segments with the rows to delete, as serialized Roaring bitmaps.
    deletes: Vec<(SegmentMeta, Vec<u8>)>,
}

#[derive(Serialize, Deserialize)]
struct RewriteRequest {
    table: TableMeta,
    slice: SliceId,
    segments: Vec<SegmentMeta>,
    sort: bool,
}

#[derive(Serialize, Deserialize)]
struct BlocksRequest {
    table: TableMeta,
    slice: SliceId,
    segments: Vec<SegmentMeta>,
}

#[derive(Serialize, Deserialize)]
struct RemoveRequest {
    slice: SliceId,
    table: TableId,
    files: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct GarbageRequest {
    live: Vec<(SliceId, TableId, String)>,
    /// Keep files created at or after this time (milliseconds since the Unix epoch).
    created_before_ms: Option<u64>,
}

/// The leader's health check, carrying the addresses of every node so that each compute
/// node can reach the others.
#[derive(Serialize, Deserialize)]
pub struct PingRequest {
    pub members: Vec<Option<String>>,
}

#[derive(Serialize, Deserialize)]
pub struct PingReply {
    pub node: NodeId,
    pub protocol: u32,
}

/// A compute node introducing itself to the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// [`PROTOCOL_VERSION`] of the node's build: the leader refuses another.
    pub protocol: u32,
    /// The cluster the node's data directory belongs to, once it has joined one.
    pub cluster: Option<String>,
    /// The node it was, for a node coming back.
    pub node: Option<NodeId>,
    /// Where its internal server listens.
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterReply {
    pub cluster: String,
    pub node: NodeId,
    pub topology: Topology,
    pub members: Vec<Option<String>>,
}

/// What the leader does when a compute node registers.
#[async_trait]
pub trait Registrar: Send + Sync {
    async fn register(&self, req: RegisterRequest) -> Result<RegisterReply, Status>;
}

/// When the leader last checked on this node.
#[derive(Debug, Clone)]
pub struct Pinged(Arc<parking_lot::Mutex<std::time::Instant>>);

impl Pinged {
    fn new() -> Self {
        Pinged(Arc::new(parking_lot::Mutex::new(std::time::Instant::now())))
    }

    pub fn touch(&self) {
        *self.0.lock() = std::time::Instant::now();
    }

    pub fn elapsed(&self) -> std::time::Duration {
        self.0.lock().elapsed()
    }
}

/// A node's internal Flight service: the node requests when it holds slices (`node`), the
/// registration when it is the leader (`registrar`).
#[derive(Clone)]
pub struct InternalService {
    pinged: Pinged,
    node: Option<Arc<ComputeNode>>,
    /// The compute node's knowledge of its peers, refreshed by the leader's pings.
    peers: Option<Membership>,
    registrar: Option<Arc<dyn Registrar>>,
    /// Runs slice scans and decodes their filters (Redshift's functions registered).
    ctx: Arc<TaskContext>,
}

impl InternalService {
    pub fn compute(node: Arc<ComputeNode>, peers: Membership, ctx: Arc<TaskContext>) -> Self {
        InternalService {
            pinged: Pinged::new(),
            node: Some(node),
            peers: Some(peers),
            registrar: None,
            ctx,
        }
    }

    pub fn leader(registrar: Arc<dyn Registrar>, ctx: Arc<TaskContext>) -> Self {
        InternalService {
            pinged: Pinged::new(),
            node: None,
            peers: None,
            registrar: Some(registrar),
            ctx,
        }
    }

    /// When the leader last pinged this node.
    pub fn pinged(&self) -> Pinged {
        self.pinged.clone()
    }

    fn node(&self) -> Result<&Arc<ComputeNode>, Status> {
        self.node
            .as_ref()
            .ok_or_else(|| Status::unimplemented("this process holds no slices"))
    }

    async fn act(&self, action: Action) -> Result<Vec<u8>, Status> {
        let body = action.body.as_ref();
        match action.r#type.as_str() {
            DELETE_ROWS => {
                let r: DeleteRowsRequest = parse(body)?;
                let mut deletes = vec![];
                for (seg, bits) in r.deletes {
                    let rows = RoaringBitmap::deserialize_from(bits.as_slice())
                        .map_err(|e| Status::invalid_argument(format!("delete bitmap: {e}")))?;
                    deletes.push((seg, rows));
                }
                let out = self
                    .node()?
                    .delete_rows(r.table, r.slice, deletes)
                    .await
                    .map_err(storage_status)?;
                reply(&out)
            }
            REWRITE => {
                let r: RewriteRequest = parse(body)?;
                let out = self
                    .node()?
                    .rewrite(Arc::new(r.table), r.slice, r.segments, r.sort)
                    .await
                    .map_err(storage_status)?;
                reply(&out)
            }
            BLOCKS => {
                let r: BlocksRequest = parse(body)?;
                let out = self
                    .node()?
                    .blocks(&r.table, r.slice, &r.segments)
                    .map_err(storage_status)?;
                reply(&out)
            }
            REMOVE => {
                let r: RemoveRequest = parse(body)?;
                self.node()?.remove(r.slice, r.table, &r.files);
                reply(&())
            }
            GARBAGE => {
                let r: GarbageRequest = parse(body)?;
                let live: BTreeSet<_> = r.live.into_iter().collect();
                let cutoff = r
                    .created_before_ms
                    .map(|ms| std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms));
                let n = self
                    .node()?
                    .collect_garbage(&live, cutoff)
                    .map_err(storage_status)?;
                reply(&n)
            }
            PING => {
                let r: PingRequest = parse(body)?;
                let node = self.node()?;
                self.pinged.touch();
                if let Some(peers) = &self.peers {
                    for (i, url) in r.members.iter().enumerate() {
                        let url = url.as_deref().and_then(|u| url::Url::parse(u).ok());
                        let up = url.is_some();
                        peers.set(i, url, up);
                    }
                }
                reply(&PingReply {
                    node: node.id,
                    protocol: PROTOCOL_VERSION,
                })
            }
            REGISTER => {
                let registrar = self
                    .registrar
                    .as_ref()
                    .ok_or_else(|| Status::unimplemented("not the leader"))?;
                let r: RegisterRequest = parse(body)?;
                reply(&registrar.register(r).await?)
            }
            other => Err(Status::unimplemented(format!("unknown action {other}"))),
        }
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Status> {
    serde_json::from_slice(body).map_err(|e| Status::invalid_argument(format!("request: {e}")))
}

fn reply<T: Serialize>(value: &T) -> Result<Vec<u8>, Status> {
    serde_json::to_vec(value).map_err(|e| Status::internal(format!("reply: {e}")))
}

/// SQLSTATE (object_in_use) of a registration refused because a live process holds the node.
pub const NODE_IN_USE: &str = "55006";

/// The leader's refusal of a node id that another live process holds.
pub fn node_in_use(message: String) -> Status {
    let mut status = Status::already_exists(message);
    status.metadata_mut().insert(
        SQLSTATE_HEADER,
        tonic::metadata::MetadataValue::from_static(NODE_IN_USE),
    );
    status
}

/// A storage error as a status that keeps its SQLSTATE.
fn storage_status(e: StorageError) -> Status {
    let mut status = Status::internal(e.to_string());
    if let Ok(v) = e.sqlstate().parse() {
        status.metadata_mut().insert(SQLSTATE_HEADER, v);
    }
    status
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[async_trait]
impl FlightService for InternalService {
    type HandshakeStream = BoxStream<HandshakeResponse>;
    type ListFlightsStream = BoxStream<FlightInfo>;
    type DoGetStream = BoxStream<FlightData>;
    type DoPutStream = BoxStream<PutResult>;
    type DoExchangeStream = BoxStream<FlightData>;
    type DoActionStream = BoxStream<arrow_flight::Result>;
    type ListActionsStream = BoxStream<ActionType>;

    async fn handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        Err(Status::unimplemented("handshake"))
    }

    async fn list_flights(
        &self,
        _request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        Err(Status::unimplemented("list_flights"))
    }

    async fn get_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Err(Status::unimplemented("get_flight_info"))
    }

    async fn poll_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        Err(Status::unimplemented("poll_flight_info"))
    }

    async fn get_schema(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        Err(Status::unimplemented("get_schema"))
    }

    /// Scan a slice on this node.
    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let t: ScanTicket = parse(&request.into_inner().ticket)?;
        let req = ScanRequest {
            table: Arc::new(t.table),
            slice: t.slice,
            segments: t.segments,
            projection: t.projection,
            filters: codec::decode_filters(&t.filters, &self.ctx),
            limit: t.limit,
            row_ids: t.row_ids,
            counters: None,
        };
        let stream = self
            .node()?
            .scan(req, self.ctx.clone())
            .map_err(storage_status)?;
        let encoded = FlightDataEncoderBuilder::new()
            .build(stream.map_err(|e| FlightError::ExternalError(Box::new(e))))
            .map_err(|e| Status::internal(e.to_string()));
        Ok(Response::new(Box::pin(encoded)))
    }

    /// Write rows to a slice on this node.
    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        let mut messages = request.into_inner();
        let first = messages
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty write"))?;
        let header: WriteHeader = parse(
            first
                .flight_descriptor
                .as_ref()
                .map(|d| d.cmd.as_ref())
                .unwrap_or_default(),
        )?;
        let batches: Vec<_> = FlightRecordBatchStream::new_from_flight_data(
            futures::stream::once(async { Ok(first) }).chain(messages.map_err(FlightError::from)),
        )
        .try_collect()
        .await
        .map_err(|e| Status::invalid_argument(format!("write rows: {e}")))?;
        let segments = self
            .node()?
            .write(WriteRequest {
                table: Arc::new(header.table),
                slice: header.slice,
                batches,
            })
            .await
            .map_err(storage_status)?;
        let result = PutResult {
            app_metadata: reply(&segments)?.into(),
        };
        Ok(Response::new(Box::pin(futures::stream::once(async {
            Ok(result)
        }))))
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(Status::unimplemented("do_exchange"))
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        let body = self.act(request.into_inner()).await?;
        let result = arrow_flight::Result { body: body.into() };
        Ok(Response::new(Box::pin(futures::stream::once(async {
            Ok(result)
        }))))
    }

    async fn list_actions(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        Err(Status::unimplemented("list_actions"))
    }
}

/// A compute node in another process, reached over its internal Flight service.
#[derive(Debug, Clone)]
pub struct RemoteNode {
    id: NodeId,
    membership: Membership,
    channels: NodeChannels,
}

impl RemoteNode {
    pub fn new(id: NodeId, membership: Membership, channels: NodeChannels) -> Self {
        RemoteNode {
            id,
            membership,
            channels,
        }
    }

    fn client(
        &self,
    ) -> Result<FlightServiceClient<datafusion_distributed::grpc::BoxCloneSyncChannel>, StorageError>
    {
        let url =
            self.membership
                .url(self.id.0 as usize)
                .ok_or_else(|| StorageError::NodeDown {
                    node: self.id,
                    reason: "it has not registered with the leader".into(),
                })?;
        let channel = self
            .channels
            .channel(&url)
            .map_err(|e| StorageError::NodeDown {
                node: self.id,
                reason: e.to_string(),
            })?;
        Ok(FlightServiceClient::new(channel)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX))
    }

    /// A failed request as a storage error: the node's own error, or the node being away.
    fn error(&self, status: Status) -> StorageError {
        remote_error(self.id, status)
    }

    async fn action<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        kind: &str,
        req: &Req,
    ) -> Result<Resp, StorageError> {
        let body = serde_json::to_vec(req)
            .map_err(|e| failure(self.id, format!("encoding {kind}: {e}")))?;
        let mut results = self
            .client()?
            .do_action(Action {
                r#type: kind.into(),
                body: body.into(),
            })
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        let first = results
            .message()
            .await
            .map_err(|s| self.error(s))?
            .ok_or_else(|| failure(self.id, format!("no reply to {kind}")))?;
        serde_json::from_slice(&first.body)
            .map_err(|e| failure(self.id, format!("reply to {kind}: {e}")))
    }

    /// The leader's health check: the node answers with its id and protocol.
    pub async fn ping(&self, members: Vec<Option<String>>) -> Result<PingReply, StorageError> {
        self.action(PING, &PingRequest { members }).await
    }
}

/// A request to node `node` that failed on this side (encoding, an empty or garbled reply).
fn failure(node: NodeId, message: impl Into<String>) -> StorageError {
    StorageError::Remote {
        node,
        sqlstate: "XX000".into(),
        message: message.into(),
    }
}

/// A gRPC status from node `node` as a storage error.
pub(crate) fn remote_error(node: NodeId, status: Status) -> StorageError {
    use tonic::Code;
    match status.code() {
        Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded => StorageError::NodeDown {
            node,
            reason: status.message().to_string(),
        },
        Code::Unknown if status.message().contains("transport") => StorageError::NodeDown {
            node,
            reason: status.message().to_string(),
        },
        _ => StorageError::Remote {
            node,
            sqlstate: status
                .metadata()
                .get(SQLSTATE_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("XX000")
                .to_string(),
            message: status.message().to_string(),
        },
    }
}

#[async_trait]
impl ComputeService for RemoteNode {
    fn id(&self) -> NodeId {
        self.id
    }

    #[instrument(skip_all, fields(node = %self.id, slice = %req.slice, table = %req.table.id))]
    async fn write(&self, req: WriteRequest) -> Result<Vec<SegmentMeta>, StorageError> {
        let header = serde_json::to_vec(&WriteHeader {
            table: req.table.as_ref().clone(),
            slice: req.slice,
        })
        .map_err(|e| failure(self.id, format!("encoding a write: {e}")))?;
        let schema = req.table.arrow_schema();
        let batches = futures::stream::iter(req.batches.into_iter().map(Ok));
        let data: Vec<FlightData> = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .with_flight_descriptor(Some(FlightDescriptor::new_cmd(header)))
            .build(batches)
            .try_collect()
            .await
            .map_err(|e| failure(self.id, format!("encoding rows: {e}")))?;
        let mut results = self
            .client()?
            .do_put(futures::stream::iter(data))
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        let result = results
            .message()
            .await
            .map_err(|s| self.error(s))?
            .ok_or_else(|| failure(self.id, "no reply to a write"))?;
        serde_json::from_slice(&result.app_metadata)
            .map_err(|e| failure(self.id, format!("reply to a write: {e}")))
    }

    async fn delete_rows(
        &self,
        table: TableId,
        slice: SliceId,
        deletes: Vec<(SegmentMeta, RoaringBitmap)>,
    ) -> Result<Vec<SegmentMeta>, StorageError> {
        let mut encoded = vec![];
        for (seg, rows) in deletes {
            let mut bits = vec![];
            rows.serialize_into(&mut bits)
                .map_err(|e| failure(self.id, format!("encoding deleted rows: {e}")))?;
            encoded.push((seg, bits));
        }
        self.action(
            DELETE_ROWS,
            &DeleteRowsRequest {
                table,
                slice,
                deletes: encoded,
            },
        )
        .await
    }

    async fn rewrite(
        &self,
        table: Arc<TableMeta>,
        slice: SliceId,
        segments: Vec<SegmentMeta>,
        sort: bool,
    ) -> Result<Vec<SegmentMeta>, StorageError> {
        self.action(
            REWRITE,
            &RewriteRequest {
                table: table.as_ref().clone(),
                slice,
                segments,
                sort,
            },
        )
        .await
    }

    fn scan(
        &self,
        req: ScanRequest,
        _ctx: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream, StorageError> {
        let schema = req.output_schema()?;
        let ticket = ScanTicket {
            table: req.table.as_ref().clone(),
            slice: req.slice,
            segments: req.segments,
            projection: req.projection,
            filters: codec::encode_filters(&req.filters),
            limit: req.limit,
            row_ids: req.row_ids,
        };
        let ticket = serde_json::to_vec(&ticket)
            .map_err(|e| failure(self.id, format!("encoding a scan: {e}")))?;
        let mut client = self.client()?;
        let node = self.id;
        debug!(%node, slice = %req.slice, "slice read from another node");
        let batches = futures::stream::once(async move {
            let response = client
                .do_get(Ticket {
                    ticket: ticket.into(),
                })
                .await
                .map_err(|s| to_df(remote_error(node, s)))?;
            Ok::<_, DataFusionError>(
                FlightRecordBatchStream::new_from_flight_data(
                    response.into_inner().map_err(FlightError::from),
                )
                .map_err(move |e| match e {
                    FlightError::Tonic(s) => to_df(remote_error(node, *s)),
                    other => DataFusionError::External(Box::new(other)),
                }),
            )
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }

    async fn blocks(
        &self,
        table: Arc<TableMeta>,
        slice: SliceId,
        segments: Vec<SegmentMeta>,
    ) -> Result<Vec<BlockInfo>, StorageError> {
        self.action(
            BLOCKS,
            &BlocksRequest {
                table: table.as_ref().clone(),
                slice,
                segments,
            },
        )
        .await
    }

    fn remove(&self, slice: SliceId, table: TableId, files: Vec<String>) {
        let this = self.clone();
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            let r: Result<(), StorageError> = this
                .action(
                    REMOVE,
                    &RemoveRequest {
                        slice,
                        table,
                        files,
                    },
                )
                .await;
            if let Err(e) = r {
                debug!(node = %this.id, error = %e, "files left for the node's next start");
            }
        });
    }

    async fn collect_garbage(
        &self,
        live: BTreeSet<(SliceId, TableId, String)>,
        created_before: Option<std::time::SystemTime>,
    ) -> Result<usize, StorageError> {
        self.action(
            GARBAGE,
            &GarbageRequest {
                live: live.into_iter().collect(),
                created_before_ms: created_before.and_then(|t| {
                    t.duration_since(std::time::UNIX_EPOCH)
                        .ok()
                        .map(|d| d.as_millis() as u64)
                }),
            },
        )
        .await
    }
}

fn to_df(e: StorageError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// Ask the leader at `leader` to take this node into the cluster.
pub async fn register(
    channels: &NodeChannels,
    leader: &url::Url,
    req: &RegisterRequest,
) -> Result<RegisterReply, StorageError> {
    let node = req.node.unwrap_or(NodeId(u32::MAX));
    let channel = channels
        .channel(leader)
        .map_err(|e| StorageError::NodeDown {
            node,
            reason: e.to_string(),
        })?;
    let body = serde_json::to_vec(req).map_err(|e| failure(node, e.to_string()))?;
    let mut results = FlightServiceClient::new(channel)
        .do_action(Action {
            r#type: REGISTER.into(),
            body: body.into(),
        })
        .await
        .map_err(|s| remote_error(node, s))?
        .into_inner();
    let first = results
        .message()
        .await
        .map_err(|s| remote_error(node, s))?
        .ok_or_else(|| failure(node, "no reply to registration"))?;
    serde_json::from_slice(&first.body)
        .map_err(|e| failure(node, format!("registration reply: {e}")))
}
