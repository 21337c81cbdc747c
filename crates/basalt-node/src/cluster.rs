//! Compute nodes as separate processes: the leader's registry of nodes and its health
//! checks, and the compute process itself ([`run_compute`]).
//!
//! ```text
//!  basalt compute ──register(protocol, cluster, node?, url)──▶ leader (internal port)
//!                 ◀──────────── node id, topology, members ────
//!  leader ──ping(members) every second──▶ each node   (up/down, peers' addresses)
//! ```
//!
//! The slice map is fixed when the cluster is created: node i holds slices `[i*P, i*P+P)`.
//! A node's identity (cluster id and node id) is stored in its data directory, so a node
//! that restarts takes its place (and its slices) back; a new node takes the lowest id no
//! node has had. The leader refuses a node of another protocol version or cluster.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use basalt_catalog::{NodeId, Topology};
use basalt_mpp::{Membership, RegisterReply, RegisterRequest, Registrar, RemoteNode};
use basalt_storage::ComputeService;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::{Leader, NodeError};

/// Version of `cluster.json` and `node.json`.
const IDENTITY_FORMAT: u32 = 1;

/// How often the leader checks each node.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(1);

/// The leader's record of the cluster: its id and the node ids handed out so far.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ClusterFile {
    format: u32,
    cluster: String,
    assigned: BTreeSet<u32>,
}

/// The leader's registry of compute nodes.
pub(crate) struct NodeRegistry {
    path: PathBuf,
    file: Mutex<ClusterFile>,
    topology: Topology,
    membership: Membership,
    /// When each node id last registered: a node not yet pinged up is still held for as long
    /// as the heartbeat takes to find it down.
    registered: Mutex<std::collections::HashMap<u32, std::time::Instant>>,
}

impl NodeRegistry {
    /// Open (or start) the registry of the cluster whose leader keeps `data_dir`.
    pub(crate) fn open(
        data_dir: &Path,
        topology: Topology,
        membership: Membership,
    ) -> Result<Self, NodeError> {
        let path = data_dir.join("cluster.json");
        let file = match std::fs::read(&path) {
            Ok(bytes) => {
                let f: ClusterFile = serde_json::from_slice(&bytes)
                    .map_err(|e| NodeError::invalid("XX001", format!("{}: {e}", path.display())))?;
                if f.format != IDENTITY_FORMAT {
                    return Err(NodeError::invalid(
                        "XX001",
                        format!(
                            "{}: format {} is not {IDENTITY_FORMAT}",
                            path.display(),
                            f.format
                        ),
                    ));
                }
                f
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ClusterFile {
                format: IDENTITY_FORMAT,
                cluster: crate::leader::random_secret(),
                assigned: BTreeSet::new(),
            },
            Err(e) => {
                return Err(NodeError::invalid(
                    "58030",
                    format!("{}: {e}", path.display()),
                ));
            }
        };
        write_json(&path, &file)?;
        Ok(NodeRegistry {
            path,
            file: Mutex::new(file),
            topology,
            membership,
            registered: Default::default(),
        })
    }
}

/// Write `value` as JSON to `path` durably (temp file, fsync, rename).
fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), NodeError> {
    let io = |e: std::io::Error| NodeError::invalid("58030", format!("{}: {e}", path.display()));
    let tmp = path.with_extension("tmp");
    let bytes =
        serde_json::to_vec_pretty(value).map_err(|e| NodeError::invalid("XX000", e.to_string()))?;
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

#[async_trait]
impl Registrar for NodeRegistry {
    async fn register(&self, req: RegisterRequest) -> Result<RegisterReply, tonic::Status> {
        if req.protocol != basalt_mpp::PROTOCOL_VERSION {
            return Err(tonic::Status::failed_precondition(format!(
                "compute node speaks protocol {}, this leader {}: run the same BasaltDB build",
                req.protocol,
                basalt_mpp::PROTOCOL_VERSION
            )));
        }
        let url = url::Url::parse(&req.url)
            .map_err(|e| tonic::Status::invalid_argument(format!("address {}: {e}", req.url)))?;
        let (cluster, node) = {
            let mut file = self.file.lock();
            if let Some(c) = &req.cluster
                && *c != file.cluster
            {
                return Err(tonic::Status::permission_denied(format!(
                    "the node's data directory belongs to cluster {c}, this leader's is {}",
                    file.cluster
                )));
            }
            let node = match req.node {
                Some(n) if req.cluster.is_some() && n.0 < self.topology.nodes => n.0,
                _ => match (0..self.topology.nodes).find(|n| !file.assigned.contains(n)) {
                    Some(n) => n,
                    None => {
                        return Err(tonic::Status::resource_exhausted(format!(
                            "the cluster already has its {} compute nodes",
                            self.topology.nodes
                        )));
                    }
                },
            };
            // A node id answering heartbeats from another address (or registered from it too
            // recently to be found down) belongs to a live process: a second process on a
            // copy of its data directory must not take its slices.
            let held = !self.membership.down().contains(&(node as usize))
                || self
                    .registered
                    .lock()
                    .get(&node)
                    .is_some_and(|at| at.elapsed() < HEARTBEAT * (MISSES_BEFORE_DOWN + 1));
            if let Some(current) = self.membership.url(node as usize)
                && current != url
                && held
            {
                return Err(basalt_mpp::node_in_use(format!(
                    "compute node {node} is registered from {current} and answers heartbeats: \
                     another process already runs on this data directory (or a copy of it)"
                )));
            }
            if file.assigned.insert(node) {
                write_json(&self.path, &*file)
                    .map_err(|e| tonic::Status::internal(e.to_string()))?;
            }
            (file.cluster.clone(), node)
        };
        // Up once the heartbeat reaches it.
        self.membership.set(node as usize, Some(url.clone()), false);
        self.registered
            .lock()
            .insert(node, std::time::Instant::now());
        info!(node, %url, "compute node registered");
        Ok(RegisterReply {
            cluster,
            node: NodeId(node),
            topology: self.topology,
            members: members(&self.membership),
        })
    }
}

fn members(m: &Membership) -> Vec<Option<String>> {
    m.urls()
        .into_iter()
        .map(|u| u.map(|u| u.to_string()))
        .collect()
}

/// The leader's health checks: ping every registered node each [`HEARTBEAT`], mark it up or
/// down, and when a node comes up, remove its files the catalog does not reference and that
/// are older than this leader (newer ones may belong to an open transaction).
pub(crate) async fn heartbeat_loop(
    leader: Weak<Leader>,
    membership: Membership,
    nodes: Vec<RemoteNode>,
) {
    // Files written since the leader started may belong to a transaction still open; older
    // unreferenced ones are orphans (no transaction outlives the leader).
    let started = std::time::SystemTime::now();
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_up = vec![false; nodes.len()];
    let mut misses = vec![0u32; nodes.len()];
    loop {
        tick.tick().await;
        let Some(leader) = leader.upgrade() else {
            return;
        };
        let everyone = members(&membership);
        let pings = nodes.iter().enumerate().map(|(i, node)| {
            let everyone = everyone.clone();
            let registered = membership.url(i).is_some();
            async move {
                if !registered {
                    return None;
                }
                Some(tokio::time::timeout(HEARTBEAT * 2, node.ping(everyone)).await)
            }
        });
        let answers = futures::future::join_all(pings).await;
        for (i, ping) in answers.into_iter().enumerate() {
            let Some(ping) = ping else {
                continue;
            };
            let node = &nodes[i];
            let answered = matches!(&ping, Ok(Ok(reply)) if reply.node.0 as usize == i);
            // Nobody listening is final; a slow answer may be a busy node, so it takes
            // several in a row.
            let refused = matches!(&ping,
                Ok(Err(basalt_storage::StorageError::NodeDown { reason, .. })) if reason.contains("connect"));
            misses[i] = if answered { 0 } else { misses[i] + 1 };
            let up = answered || (!refused && misses[i] < MISSES_BEFORE_DOWN && was_up[i]);
            membership.set_up(i, up);
            if up && !was_up[i] {
                info!(node = i, "compute node up");
                let live = leader.catalog().snapshot().live_files();
                match node.collect_garbage(live, Some(started)).await {
                    Ok(n) if n > 0 => info!(node = i, files = n, "orphan files removed"),
                    Ok(_) => {}
                    Err(e) => warn!(node = i, error = %e, "orphan files not removed"),
                }
            } else if !up && was_up[i] {
                let why = match ping {
                    Err(_) => "no answer".to_string(),
                    Ok(Err(e)) => e.to_string(),
                    Ok(Ok(r)) => format!("answered as node {}", r.node),
                };
                warn!(node = i, reason = %why, "compute node down");
            }
            was_up[i] = up;
        }
    }
}

/// Unanswered pings in a row after which a node that still accepts connections is down.
const MISSES_BEFORE_DOWN: u32 = 3;

/// A compute node's identity, kept in its data directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct NodeFile {
    format: u32,
    cluster: String,
    node: NodeId,
}

/// Settings of a compute process.
#[derive(Debug, Clone)]
pub struct ComputeConfig {
    pub data_dir: PathBuf,
    /// The leader's internal address (`host:port`).
    pub leader: String,
    /// Where this node's internal server listens (loopback by default).
    pub listen: String,
    /// The address other nodes and the leader reach it at, when not the listening one.
    pub advertise: Option<String>,
    pub cluster_secret: String,
    /// TLS for the internal connections; the leader and every node must agree.
    pub tls: Option<basalt_mpp::TlsConfig>,
}

/// Run a compute node until `shutdown` resolves: register with the leader, open the node's
/// slices, serve fragments and the leader's requests, and register again whenever the
/// leader stops checking on it (a restarted leader).
pub async fn run_compute(
    config: ComputeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    let io = |what: &str, e: std::io::Error| NodeError::invalid("58030", format!("{what}: {e}"));
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| io(&config.data_dir.display().to_string(), e))?;
    let data_dir = config
        .data_dir
        .canonicalize()
        .map_err(|e| io(&config.data_dir.display().to_string(), e))?;
    let identity_path = data_dir.join("node.json");
    let identity: Option<NodeFile> = match std::fs::read(&identity_path) {
        Ok(b) => Some(serde_json::from_slice(&b).map_err(|e| {
            NodeError::invalid("XX001", format!("{}: {e}", identity_path.display()))
        })?),
        Err(_) => None,
    };
    let listener = std::net::TcpListener::bind(&config.listen)
        .map_err(|e| io(&format!("listening on {}", config.listen), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| io("listening address", e))?;
    let security = basalt_mpp::Security::new(&config.cluster_secret, config.tls.clone());
    let url = format!(
        "{}://{}",
        security.scheme(),
        config.advertise.clone().unwrap_or_else(|| addr.to_string())
    );
    let leader_url = url::Url::parse(&format!("{}://{}", security.scheme(), config.leader))
        .map_err(|e| NodeError::invalid("22023", format!("leader {}: {e}", config.leader)))?;
    let channels = security.channels();
    let request = RegisterRequest {
        protocol: basalt_mpp::PROTOCOL_VERSION,
        cluster: identity.as_ref().map(|i| i.cluster.clone()),
        node: identity.as_ref().map(|i| i.node),
        url: url.clone(),
    };
    let reply = register_until_accepted(&channels, &leader_url, &request).await?;
    write_json(
        &identity_path,
        &NodeFile {
            format: IDENTITY_FORMAT,
            cluster: reply.cluster.clone(),
            node: reply.node,
        },
    )?;
    let topology = reply.topology;
    let slices: Vec<_> = topology
        .slices()
        .filter(|s| topology.node_of(*s) == reply.node.0)
        .collect();
    let node = Arc::new(basalt_storage::ComputeNode::open(
        reply.node,
        &data_dir.join("data"),
        &slices,
    )?);
    let peers = Membership::unregistered(topology.nodes as usize);
    for (i, u) in reply.members.iter().enumerate() {
        peers.set(i, u.as_deref().and_then(|u| url::Url::parse(u).ok()), true);
    }
    let nodes: Vec<Arc<dyn ComputeService>> = (0..topology.nodes)
        .map(|i| {
            if i == reply.node.0 {
                node.clone() as Arc<dyn ComputeService>
            } else {
                Arc::new(RemoteNode::new(NodeId(i), peers.clone(), channels.clone()))
            }
        })
        .collect();
    let cluster = Arc::new(basalt_storage::ComputeCluster::from_nodes(
        topology,
        nodes,
        vec![node.clone()],
    ));
    let internal = basalt_mpp::InternalService::compute(
        node.clone(),
        peers.clone(),
        basalt_mpp::functions_context(),
    );
    let pinged = internal.pinged();
    let extension = crate::extension::plan_extension(cluster.clone());
    let server =
        basalt_mpp::ComputeServer::start(listener, cluster, &security, internal, Some(extension))
            .map_err(|e| NodeError::invalid("58030", e.to_string()))?;
    info!(
        node = reply.node.0,
        %url,
        slices = ?slices.iter().map(|s| s.0).collect::<Vec<_>>(),
        data_dir = %data_dir.display(),
        "compute node ready"
    );
    // A leader that stops pinging has restarted (or is gone): register again.
    let rejoin = async {
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tick.tick().await;
            if pinged.elapsed() > HEARTBEAT * 5 {
                warn!("no word from the leader; registering again");
                let again = RegisterRequest {
                    cluster: Some(reply.cluster.clone()),
                    node: Some(reply.node),
                    ..request.clone()
                };
                if let Err(e) = register_until_accepted(&channels, &leader_url, &again).await {
                    return e;
                }
                pinged.touch();
            }
        }
    };
    let result = tokio::select! {
        _ = shutdown => Ok(()),
        e = rejoin => Err(e),
    };
    server.stop().await;
    result
}

/// Register with the leader, retrying while it is unreachable; a refusal is final.
/// How long a compute node retries a claim of its node id that the leader still sees alive.
const CLAIM_WAIT: Duration = Duration::from_secs(10);

async fn register_until_accepted(
    channels: &basalt_mpp::NodeChannels,
    leader: &url::Url,
    request: &RegisterRequest,
) -> Result<RegisterReply, NodeError> {
    let mut wait = Duration::from_millis(100);
    let started = std::time::Instant::now();
    loop {
        match basalt_mpp::register(channels, leader, request).await {
            Ok(reply) => return Ok(reply),
            // This node restarted before the leader saw the old process die: it is marked
            // down after three missed heartbeats, then the claim succeeds.
            Err(basalt_storage::StorageError::Remote {
                sqlstate, message, ..
            }) if sqlstate == basalt_mpp::NODE_IN_USE && started.elapsed() < CLAIM_WAIT => {
                info!(%leader, reason = %message, "node id still held; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(basalt_storage::StorageError::NodeDown { reason, .. }) => {
                info!(%leader, %reason, "leader not reachable yet");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                return Err(NodeError::invalid(
                    "58000",
                    format!("the leader refused this node: {e}"),
                ));
            }
        }
    }
}
