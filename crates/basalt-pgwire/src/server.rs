//! The listener: accepts TCP connections and runs pgwire's connection loop on each, then
//! ends the connection's session (however the connection ended: Terminate, a dropped
//! socket, an error, or server shutdown).

use std::fmt::Debug;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use basalt_node::Leader;
use futures::Sink;
use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use pgwire::api::copy::CopyHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::{ClientInfo, ConnectionManager, PgWireServerHandlers};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::auth::BasaltStartup;
use crate::handler::{Conn, QueryHandler};

/// The handlers shared by all connections.
struct Shared {
    query: Arc<QueryHandler>,
    startup: Arc<BasaltStartup>,
    cancel: Arc<DefaultCancelHandler>,
}

/// One connection's handler set: the shared handlers, with a startup handler that keeps the
/// connection's [`Conn`] so its session can be ended after pgwire's loop returns (pgwire
/// keeps it in the client's extensions, which are gone by then).
struct Handlers {
    query: Arc<QueryHandler>,
    startup: Arc<ConnStartup>,
    cancel: Arc<DefaultCancelHandler>,
}

/// Where the startup handler leaves the connection's [`Conn`] once it has a session.
type ConnSlot = Arc<std::sync::Mutex<Option<Arc<Conn>>>>;

/// [`BasaltStartup`] for one connection: notes the [`Conn`] it opened in the slot.
struct ConnStartup {
    inner: Arc<BasaltStartup>,
    slot: ConnSlot,
}

#[async_trait]
impl StartupHandler for ConnStartup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let r = self.inner.on_startup(client, message).await;
        // Also when completing the startup failed after the session was opened.
        if let Some(conn) = client.session_extensions().get::<Conn>() {
            // A poisoned lock only means a panic while storing an Arc; the value is fine.
            *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn);
        }
        r
    }
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
    shared: Arc<Shared>,
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
        let shared = Arc::new(Shared {
            query: Arc::new(QueryHandler::default()),
            startup: Arc::new(BasaltStartup::new(leader, connections.clone())),
            cancel: Arc::new(DefaultCancelHandler::new(connections)),
        });
        Ok(PgServer {
            listener,
            local_addr,
            shared,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Accept connections until `shutdown` resolves; then stop accepting, end every open
    /// connection (as Postgres' fast shutdown does: running statements stop, open
    /// transactions roll back, temporary tables are dropped) and return once all have ended.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        info!(addr = %self.local_addr, "accepting Postgres connections");
        tokio::pin!(shutdown);
        let (stop, stopping) = watch::channel(false);
        // Dropping the set (if this future is dropped) aborts the connections; their
        // sessions then clean up when dropped.
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(ended) = connections.join_next(), if !connections.is_empty() => {
                    if let Err(e) = ended {
                        warn!(error = %e, "connection task failed");
                    }
                }
                accepted = self.listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        // As Postgres does: replies are flushed whole, so Nagle only adds delay.
                        let _ = socket.set_nodelay(true);
                        connections.spawn(connection(
                            self.shared.clone(),
                            socket,
                            peer,
                            stopping.clone(),
                        ));
                    }
                    Err(e) => {
                        // Out of file descriptors and similar: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
        info!(
            addr = %self.local_addr,
            open = connections.len(),
            "stopped accepting connections; ending open ones"
        );
        let _ = stop.send(true);
        while let Some(ended) = connections.join_next().await {
            if let Err(e) = ended {
                warn!(error = %e, "connection task failed");
            }
        }
        Ok(())
    }
}

/// Run one connection until the client leaves, it fails, or the server stops; then end its
/// session.
async fn connection(
    shared: Arc<Shared>,
    socket: TcpStream,
    peer: SocketAddr,
    mut stopping: watch::Receiver<bool>,
) {
    debug!(%peer, "connection accepted");
    let slot = ConnSlot::default();
    let handlers = Arc::new(Handlers {
        query: shared.query.clone(),
        startup: Arc::new(ConnStartup {
            inner: shared.startup.clone(),
            slot: slot.clone(),
        }),
        cancel: shared.cancel.clone(),
    });
    tokio::select! {
        ended = pgwire::tokio::process_socket(socket, None, handlers) => match ended {
            Ok(()) => debug!(%peer, "connection closed"),
            Err(e) => debug!(%peer, error = %e, "connection ended with an error"),
        },
        // Dropping pgwire's loop drops the socket and any statement in progress.
        _ = stopping.wait_for(|stop| *stop) => debug!(%peer, "connection ended by shutdown"),
    }
    let conn = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(conn) = conn {
        conn.close().await;
    }
}
