//! Channels between the leader and the compute nodes, and between compute nodes, all
//! authenticated with the cluster secret.
//!
//! Every internal gRPC request carries the secret in the [`SECRET_HEADER`] metadata entry; a
//! node's server refuses a request without it (`UNAUTHENTICATED`). Channels connect lazily and
//! give up on an unreachable node within [`CONNECT_TIMEOUT`], so a query touching a dead node
//! fails within seconds instead of hanging.

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

/// The compute nodes' internal addresses, in node order: task i of a slice stage goes to
/// `urls[i]`.
#[derive(Debug, Clone, Default)]
pub struct Membership {
    urls: Arc<RwLock<Vec<Url>>>,
}

impl Membership {
    pub fn new(urls: Vec<Url>) -> Self {
        Membership {
            urls: Arc::new(RwLock::new(urls)),
        }
    }

    pub fn urls(&self) -> Vec<Url> {
        self.urls.read().clone()
    }
}

impl WorkerResolver for Membership {
    fn get_urls(&self) -> Result<Vec<Url>, DataFusionError> {
        Ok(self.urls())
    }
}

/// Cached channels to nodes, each request stamped with the cluster secret.
#[derive(Clone)]
pub struct NodeChannels {
    secret: Arc<str>,
    cache: Arc<Mutex<HashMap<Url, grpc::BoxCloneSyncChannel>>>,
}

impl std::fmt::Debug for NodeChannels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeChannels").finish_non_exhaustive()
    }
}

impl NodeChannels {
    pub fn new(secret: &str) -> Self {
        NodeChannels {
            secret: secret.into(),
            cache: Default::default(),
        }
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
