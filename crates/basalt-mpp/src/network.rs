//! Channels between the leader and the compute nodes, and between compute nodes, all
//! authenticated with the cluster secret.
//!
//! Every internal gRPC request carries the secret in the [`SECRET_HEADER`] metadata entry; a
//! node's server refuses a request without it (`UNAUTHENTICATED`). With [`TlsConfig`], every
//! internal connection is TLS: each node serves its certificate and trusts the cluster's CA.
//! Channels connect lazily and give up on an unreachable node within [`CONNECT_TIMEOUT`], so a
//! query touching a dead node fails within seconds instead of hanging.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::common::DataFusionError;
use datafusion_distributed::{ChannelResolver, WorkerChannel, WorkerResolver, grpc};
use parking_lot::{Mutex, RwLock};
use tonic::transport::{Channel, Endpoint};
use url::Url;

/// gRPC metadata entry carrying the cluster secret.
pub const SECRET_HEADER: &str = "x-basalt-cluster-secret";

/// How long a connection attempt to a node may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// HTTP/2 keep-alive pings on idle and busy connections find a node that died mid-query.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(3);

/// The compute nodes' internal addresses, in node order (task i of a slice stage goes to
/// node i), and whether the leader last found each one up.
#[derive(Debug, Clone, Default)]
pub struct Membership {
    nodes: Arc<RwLock<Vec<Member>>>,
}

#[derive(Debug, Clone, Default)]
struct Member {
    url: Option<Url>,
    up: bool,
}

impl Membership {
    /// Nodes at known addresses, all up (an in-process cluster).
    pub fn new(urls: Vec<Url>) -> Self {
        Membership {
            nodes: Arc::new(RwLock::new(
                urls.into_iter()
                    .map(|u| Member {
                        url: Some(u),
                        up: true,
                    })
                    .collect(),
            )),
        }
    }

    /// `nodes` nodes, none registered yet.
    pub fn unregistered(nodes: usize) -> Self {
        Membership {
            nodes: Arc::new(RwLock::new(vec![Member::default(); nodes])),
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where node `node` listens, once it registered.
    pub fn url(&self, node: usize) -> Option<Url> {
        self.nodes.read().get(node).and_then(|m| m.url.clone())
    }

    /// Every node's address, as the leader last told (unknown ones `None`).
    pub fn urls(&self) -> Vec<Option<Url>> {
        self.nodes.read().iter().map(|m| m.url.clone()).collect()
    }

    /// Record a node's address (and it being up or not).
    pub fn set(&self, node: usize, url: Option<Url>, up: bool) {
        let mut nodes = self.nodes.write();
        if node >= nodes.len() {
            nodes.resize(node + 1, Member::default());
        }
        nodes[node] = Member { url, up };
    }

    pub fn set_up(&self, node: usize, up: bool) {
        if let Some(m) = self.nodes.write().get_mut(node) {
            m.up = up;
        }
    }

    /// The nodes not known to be up.
    pub fn down(&self) -> Vec<usize> {
        self.nodes
            .read()
            .iter()
            .enumerate()
            .filter(|(_, m)| !m.up || m.url.is_none())
            .map(|(i, _)| i)
            .collect()
    }
}

/// Where tasks go for a node that has no address yet: a port nothing listens on, so a
/// request fails at once (queries check the nodes are up before they start).
const NOWHERE: &str = "http://127.0.0.1:9";

impl WorkerResolver for Membership {
    fn get_urls(&self) -> Result<Vec<Url>, DataFusionError> {
        self.urls()
            .into_iter()
            .map(|u| match u {
                Some(u) => Ok(u),
                None => {
                    Url::parse(NOWHERE).map_err(|e| DataFusionError::Configuration(e.to_string()))
                }
            })
            .collect()
    }
}

/// TLS for the internal connections: this node's certificate and key, and the CA that signed
/// every node's certificate (PEM).
#[derive(Clone)]
pub struct TlsConfig {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub ca_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Read the certificate, key and CA from PEM files.
    pub fn from_files(
        cert: &std::path::Path,
        key: &std::path::Path,
        ca: &std::path::Path,
    ) -> std::io::Result<Self> {
        let read = |p: &std::path::Path| {
            std::fs::read(p)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))
        };
        Ok(TlsConfig {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
            ca_pem: read(ca)?,
        })
    }
}

/// How a node's internal traffic is protected: the cluster secret on every request, and TLS
/// when configured.
#[derive(Debug, Clone)]
pub struct Security {
    pub secret: String,
    pub tls: Option<Arc<TlsConfig>>,
}

impl Security {
    pub fn new(secret: &str, tls: Option<TlsConfig>) -> Self {
        Security {
            secret: secret.to_string(),
            tls: tls.map(Arc::new),
        }
    }

    /// `https` with TLS, else `http`: the scheme of this cluster's internal addresses.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    pub fn channels(&self) -> NodeChannels {
        NodeChannels {
            secret: self.secret.as_str().into(),
            tls: self.tls.clone(),
            cache: Default::default(),
        }
    }
}

/// Cached channels to nodes, each request stamped with the cluster secret.
#[derive(Clone)]
pub struct NodeChannels {
    secret: Arc<str>,
    tls: Option<Arc<TlsConfig>>,
    cache: Arc<Mutex<HashMap<Url, grpc::BoxCloneSyncChannel>>>,
}

impl std::fmt::Debug for NodeChannels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeChannels").finish_non_exhaustive()
    }
}

impl NodeChannels {
    pub fn new(secret: &str) -> Self {
        Security::new(secret, None).channels()
    }

    /// A channel to `url`, connected on first use.
    pub fn channel(&self, url: &Url) -> Result<grpc::BoxCloneSyncChannel, DataFusionError> {
        if let Some(c) = self.cache.lock().get(url) {
            return Ok(c.clone());
        }
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| DataFusionError::Configuration(format!("node address {url}: {e}")))?
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true)
            .tcp_nodelay(true);
        let endpoint = match &self.tls {
            Some(tls) => endpoint
                .tls_config(
                    tonic::transport::ClientTlsConfig::new()
                        .ca_certificate(tonic::transport::Certificate::from_pem(&tls.ca_pem)),
                )
                .map_err(|e| DataFusionError::Configuration(format!("TLS to {url}: {e}")))?,
            None => endpoint,
        };
        let channel: Channel = endpoint.connect_lazy();
        let secret = http::HeaderValue::from_str(&self.secret)
            .map_err(|e| DataFusionError::Configuration(format!("cluster secret: {e}")))?;
        let stamped = tower::ServiceBuilder::new()
            .map_request(move |mut req: http::Request<tonic::body::Body>| {
                req.headers_mut().insert(SECRET_HEADER, secret.clone());
                req
            })
            .service(channel);
        let boxed = grpc::BoxCloneSyncChannel::new(stamped);
        self.cache.lock().insert(url.clone(), boxed.clone());
        Ok(boxed)
    }
}

#[async_trait]
impl ChannelResolver for NodeChannels {
    async fn get_worker_client_for_url(
        &self,
        url: &Url,
    ) -> Result<Box<dyn WorkerChannel>, DataFusionError> {
        Ok(grpc::create_worker_client(self.channel(url)?))
    }
}

/// A server-side check of the cluster secret, for [`tonic::service::interceptor`].
#[derive(Clone)]
pub struct SecretCheck {
    secret: Arc<str>,
}

impl SecretCheck {
    pub fn new(secret: &str) -> Self {
        SecretCheck {
            secret: secret.into(),
        }
    }
}

impl tonic::service::Interceptor for SecretCheck {
    fn call(&mut self, req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let given = req
            .metadata()
            .get(SECRET_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if constant_time_eq(given, self.secret.as_bytes()) {
            Ok(req)
        } else {
            Err(tonic::Status::unauthenticated(
                "internal request without the cluster secret",
            ))
        }
    }
}

/// Compare without returning early, so timing tells nothing about the secret.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    #[test]
    fn secret_check_refuses_missing_and_wrong_secrets() {
        let mut check = SecretCheck::new("s3cret");
        assert!(check.call(tonic::Request::new(())).is_err());
        let mut wrong = tonic::Request::new(());
        wrong
            .metadata_mut()
            .insert(SECRET_HEADER, "s3creT".parse().unwrap());
        assert_eq!(
            check.call(wrong).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        let mut right = tonic::Request::new(());
        right
            .metadata_mut()
            .insert(SECRET_HEADER, "s3cret".parse().unwrap());
        assert!(check.call(right).is_ok());
    }
}
