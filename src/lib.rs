//! # BasaltDB — a columnar MPP SQL warehouse that speaks Redshift
//!
//! The embedding API: start the same leader and compute services the `basalt` binary runs,
//! inside your program or test, and talk to them with SQL (Arrow batches back) or through
//! the Postgres wire protocol with any Postgres client.
//!
//! ```no_run
//! # async fn demo() -> Result<(), basaltdb::Error> {
//! let cluster = basaltdb::Cluster::builder().nodes(2).slices_per_node(2).start().await?;
//! let mut session = cluster.session()?;
//! session.sql("create table t (a int) diststyle even").await?;
//! session.sql("insert into t values (1), (2)").await?;
//! let batches = session.sql("select sum(a) from t").await?;
//! println!("psql: {}", cluster.connection_string());
//! session.close().await?;
//! cluster.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! The query path, from the wire to the slices, is described in `docs/architecture.md`.

pub mod config;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use basalt_node::{
    AuthMethod, DEFAULT_COPY_CHUNK_BYTES, Leader, LeaderConfig, NodeError, StatementOutput,
};
use datafusion::arrow::array::RecordBatch;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Errors of the embedding API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Builder for an in-process cluster.
#[derive(Debug, Clone)]
pub struct ClusterBuilder {
    data_dir: Option<PathBuf>,
    nodes: u32,
    slices_per_node: u32,
    host: String,
    port: u16,
    password: Option<String>,
    auth: Option<AuthMethod>,
    s3: basalt_io::S3Settings,
    copy_chunk_bytes: usize,
}

impl Default for ClusterBuilder {
    fn default() -> Self {
        ClusterBuilder {
            data_dir: None,
            nodes: 1,
            slices_per_node: 2,
            host: "127.0.0.1".into(),
            port: 0,
            password: None,
            auth: None,
            s3: Default::default(),
            copy_chunk_bytes: basalt_node::DEFAULT_COPY_CHUNK_BYTES,
        }
    }
}

impl ClusterBuilder {
    /// Bytes of a text file one COPY parser takes at a time (default 8 MiB). Tiny chunks
    /// make every load cross chunk boundaries: tests use them.
    pub fn copy_chunk_bytes(mut self, bytes: usize) -> Self {
        self.copy_chunk_bytes = bytes.max(1);
        self
    }

    /// Keep data under `dir` (default: a temporary directory removed on shutdown).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }
    /// Number of compute nodes (default 1).
    pub fn nodes(mut self, n: u32) -> Self {
        self.nodes = n;
        self
    }
    /// Slices per compute node (default 2).
    pub fn slices_per_node(mut self, n: u32) -> Self {
        self.slices_per_node = n;
        self
    }
    /// Postgres wire address (default 127.0.0.1 on an ephemeral port).
    pub fn listen(mut self, host: impl Into<String>, port: u16) -> Self {
        self.host = host.into();
        self.port = port;
        self
    }
    /// Require this password for the superuser (MD5 unless `auth` says otherwise).
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }
    pub fn auth(mut self, auth: AuthMethod) -> Self {
        self.auth = Some(auth);
        self
    }
    /// S3 endpoint and credentials for COPY and UNLOAD (under the `AWS_*` environment).
    pub fn s3(mut self, settings: basalt_io::S3Settings) -> Self {
        self.s3 = settings;
        self
    }

    /// Start the leader, the compute nodes and the Postgres listener.
    pub async fn start(self) -> Result<Cluster, Error> {
        let (dir, tmp) = match self.data_dir {
            Some(d) => (d, None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("basalt-")
                    .tempdir()
                    .map_err(|source| Error::Io {
                        context: "creating a temporary data directory".into(),
                        source,
                    })?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let mut config = LeaderConfig::new(dir);
        config.nodes = self.nodes.max(1);
        config.slices_per_node = self.slices_per_node.max(1);
        config.auth = match (self.auth, &self.password) {
            (Some(a), _) => a,
            (None, Some(_)) => AuthMethod::Md5,
            (None, None) => AuthMethod::Trust,
        };
        config.password = self.password;
        config.s3 = self.s3;
        config.copy_chunk_bytes = self.copy_chunk_bytes;
        let leader = Leader::open(config)?;
        let addr = format!("{}:{}", self.host, self.port);
        let server = basalt_pgwire::PgServer::bind(leader.clone(), &addr)
            .await
            .map_err(|source| Error::Io {
                context: format!("binding {addr}"),
                source,
            })?;
        let pg_addr = server.local_addr();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            server
                .serve(async {
                    let _ = rx.await;
                })
                .await
        });
        Ok(Cluster {
            leader,
            pg_addr,
            shutdown: Some(tx),
            server: Some(handle),
            _tmp: tmp,
        })
    }
}

/// A running BasaltDB cluster in this process.
pub struct Cluster {
    leader: Arc<Leader>,
    pg_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    _tmp: Option<tempfile::TempDir>,
}

impl Cluster {
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    /// Address of the Postgres wire listener.
    pub fn pg_addr(&self) -> SocketAddr {
        self.pg_addr
    }

    /// A libpq-style connection string for this cluster.
    pub fn connection_string(&self) -> String {
        format!(
            "host={} port={} user={} dbname={}",
            self.pg_addr.ip(),
            self.pg_addr.port(),
            self.leader.config().superuser,
            self.leader.config().database
        )
    }

    pub fn leader(&self) -> &Arc<Leader> {
        &self.leader
    }

    /// A SQL session as the superuser.
    pub fn session(&self) -> Result<Session, Error> {
        let cfg = self.leader.config();
        Ok(Session {
            inner: self.leader.session(&cfg.superuser, &cfg.database)?,
        })
    }

    /// Stop accepting connections, end the open ones (their transactions roll back) and
    /// drop every temporary table, including those of embedded [`Session`]s still alive
    /// (the cluster is going away, and with it every session). Dropping a `Cluster` without
    /// this only signals the listener to stop.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        self.stop().await
    }

    async fn stop(&mut self) -> Result<(), Error> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            match h.await {
                Ok(r) => r.map_err(|source| Error::Io {
                    context: "postgres listener".into(),
                    source,
                })?,
                Err(e) => {
                    return Err(Error::Config(format!("listener task failed: {e}")));
                }
            }
        }
        // The listener has ended its connections' sessions; these are embedded ones.
        let dropped = self.leader.drop_temporary_tables()?;
        self.leader.stop_compute().await;
        tracing::debug!(temp_tables_dropped = dropped, "cluster stopped");
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A SQL session of the embedding API.
///
/// End it with [`Session::close`], which reports a failure to clean up. Dropping it cleans up
/// too (synchronously, in `Drop`): the open transaction rolls back and the session's
/// temporary tables are dropped, as when a Postgres client disconnects.
pub struct Session {
    inner: basalt_node::Session,
}

impl Session {
    /// Run one or more `;`-separated statements; returns the rows of the last statement that
    /// returns rows (empty for commands).
    pub async fn sql(&mut self, sql: &str) -> Result<Vec<RecordBatch>, Error> {
        let mut last = vec![];
        for r in self.inner.execute(sql).await {
            let out = r?;
            if matches!(out, StatementOutput::Rows { .. }) {
                last = out.collect().await?;
            }
        }
        Ok(last)
    }

    /// End the session: roll back an open transaction, close cursors and drop the session's
    /// temporary tables (and their files).
    pub async fn close(mut self) -> Result<(), Error> {
        Ok(self.inner.close().await?)
    }

    /// The underlying leader session (prepared statements, transaction status).
    pub fn inner(&mut self) -> &mut basalt_node::Session {
        &mut self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_tables(leader: &Leader) -> Vec<String> {
        let state = leader.catalog().snapshot();
        state
            .tables
            .values()
            .filter(|t| t.temporary)
            .map(|t| t.qualified_name())
            .chain(
                state
                    .schemas
                    .keys()
                    .filter(|s| s.starts_with("pg_temp_"))
                    .cloned(),
            )
            .collect()
    }

    /// Embedded sessions drop their temporary tables when closed or dropped; shutdown drops
    /// those of sessions still open and ends wire connections.
    #[tokio::test]
    async fn sessions_and_shutdown_drop_temporary_tables() {
        let cluster = Cluster::builder().start().await.expect("starts");
        let leader = cluster.leader().clone();
        let create = "create temp table t (a int); insert into t values (1)";

        let mut closed = cluster.session().expect("session");
        closed.sql(create).await.expect("create");
        assert_eq!(temp_tables(&leader).len(), 2, "{:?}", temp_tables(&leader));
        closed.close().await.expect("close");
        assert_eq!(temp_tables(&leader), Vec::<String>::new());

        let mut dropped = cluster.session().expect("session");
        dropped.sql(create).await.expect("create");
        drop(dropped);
        assert_eq!(temp_tables(&leader), Vec::<String>::new());

        let mut open = cluster.session().expect("session");
        open.sql(create).await.expect("create");
        let (client, connection) =
            tokio_postgres::connect(&cluster.connection_string(), tokio_postgres::NoTls)
                .await
                .expect("connects");
        tokio::spawn(connection);
        client.batch_execute(create).await.expect("create");
        assert_eq!(temp_tables(&leader).len(), 4, "{:?}", temp_tables(&leader));
        cluster.shutdown().await.expect("shutdown");
        assert_eq!(temp_tables(&leader), Vec::<String>::new());
        drop(open);
    }
}
