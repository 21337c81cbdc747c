//! The listener: accepts TCP connections and runs pgwire's connection loop on each.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use basalt_node::Leader;
use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use pgwire::api::copy::CopyHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::{ConnectionManager, PgWireServerHandlers};
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::auth::BasaltStartup;
use crate::handler::QueryHandler;

/// The handler set shared by all connections.
struct Handlers {
    query: Arc<QueryHandler>,
    startup: Arc<BasaltStartup>,
    cancel: Arc<DefaultCancelHandler>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.query.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.query.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        self.query.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancel.clone()
    }
}

/// A Postgres wire-protocol server in front of a [`Leader`].
pub struct PgServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    handlers: Arc<Handlers>,
}

impl std::fmt::Debug for PgServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgServer")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl PgServer {
    /// Bind a listener (e.g. "127.0.0.1:5439"; port 0 = ephemeral).
    pub async fn bind(leader: Arc<Leader>, addr: &str) -> std::io::Result<PgServer> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let connections = Arc::new(ConnectionManager::new());
        let handlers = Arc::new(Handlers {
            query: Arc::new(QueryHandler::default()),
            startup: Arc::new(BasaltStartup::new(leader, connections.clone())),
            cancel: Arc::new(DefaultCancelHandler::new(connections)),
        });
        Ok(PgServer {
            listener,
            local_addr,
            handlers,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Accept connections until `shutdown` resolves; then stop accepting and return
    /// (connections already accepted keep running on their own tasks until they end).
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        info!(addr = %self.local_addr, "accepting Postgres connections");
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        let handlers = self.handlers.clone();
                        tokio::spawn(async move {
                            debug!(%peer, "connection accepted");
                            if let Err(e) = pgwire::tokio::process_socket(socket, None, handlers).await {
                                debug!(%peer, error = %e, "connection ended with an error");
                            }
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors and similar: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
        info!(addr = %self.local_addr, "stopped accepting connections");
        Ok(())
    }
}
