//! The leader: catalog owner, session factory, and reclaimer of retired segment files.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use basalt_catalog::{
    CatalogError, CatalogState, CatalogStore, SliceId, TableId, TableMeta, Topology,
};
use basalt_storage::ComputeCluster;
use parking_lot::Mutex;
use tracing::info;

use crate::{LeaderConfig, NodeError, Session};

type FileSet = BTreeSet<(SliceId, TableId, String)>;

/// A session's temporary tables live in schema `pg_temp_<session id>`, as in Postgres.
pub(crate) const TEMP_SCHEMA_PREFIX: &str = "pg_temp_";

/// Segment files no longer referenced by the newest version, kept until no statement still
/// reads a version that references them.
#[derive(Default)]
struct Reclaimer {
    /// Catalog version → number of statements reading it.
    pins: BTreeMap<u64, usize>,
    /// (version that retired them, files)
    retired: Vec<(u64, FileSet)>,
}

/// The leader node.
pub struct Leader {
    config: LeaderConfig,
    catalog: CatalogStore,
    compute: Arc<ComputeCluster>,
    next_session: AtomicU32,
    reclaimer: Mutex<Reclaimer>,
    /// One VACUUM runs at a time in the cluster (as in Redshift).
    vacuum: Arc<tokio::sync::Mutex<()>>,
    /// Recent queries, for STL_QUERY, STL_SCAN and SVL_QUERY_SUMMARY.
    query_log: Arc<crate::querylog::QueryLog>,
    /// Rejected rows and committed files of COPYs (STL_LOAD_ERRORS, STL_LOAD_COMMITS).
    load_log: Arc<crate::loadlog::LoadLog>,
    /// The running and recent VACUUMs (SVV_VACUUM_PROGRESS, SYS_VACUUM_HISTORY).
    vacuum_activity: Arc<crate::vacuum::VacuumActivity>,
    /// Per table, the columns queries used in filters, joins and GROUP BY since the start
    /// (ANALYZE PREDICATE COLUMNS).
    predicate_columns:
        Mutex<std::collections::HashMap<TableId, std::collections::BTreeSet<String>>>,
    /// The compute nodes' fragment servers, when queries run distributed (more than one node,
    /// and a runtime to serve them on).
    mpp: Option<basalt_mpp::Mpp>,
    /// Fragment servers this process runs for an in-process cluster.
    servers: Mutex<Vec<basalt_mpp::ComputeServer>>,
    /// What the automatic worker did (SVL_AUTO_WORKER_ACTION).
    auto_actions: Arc<crate::autodist::AutoActions>,
}

impl std::fmt::Debug for Leader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leader")
            .field("data_dir", &self.config.data_dir)
            .finish()
    }
}

/// Keeps one catalog version's files alive while a statement reads them.
pub struct VersionPin {
    leader: Arc<Leader>,
    version: u64,
}

impl Drop for VersionPin {
    fn drop(&mut self) {
        self.leader.unpin(self.version);
    }
}

impl Leader {
    /// Open (or create) the warehouse under `config.data_dir`: catalog, compute nodes, and
    /// recovery (drop temporary tables of dead sessions, remove orphan files).
    pub fn open(mut config: LeaderConfig) -> Result<Arc<Leader>, NodeError> {
        // Segment paths go to DataFusion's local object store, which resolves from `/`.
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            NodeError::invalid(
                "58030",
                format!("creating {}: {e}", config.data_dir.display()),
            )
        })?;
        config.data_dir = config.data_dir.canonicalize().map_err(|e| {
            NodeError::invalid(
                "58030",
                format!("resolving {}: {e}", config.data_dir.display()),
            )
        })?;
        let topology = Topology {
            nodes: config.nodes.max(1),
            slices_per_node: config.slices_per_node.max(1),
        };
        let catalog = CatalogStore::open(
            &config.data_dir.join("catalog"),
            topology,
            &config.superuser,
        )?;
        let (compute, mpp, servers, remotes) = match &config.internal_listen {
            Some(listen) => {
                let (compute, mpp, server, remotes) = remote_cluster(&config, topology, listen)?;
                (compute, Some(mpp), vec![server], remotes)
            }
            None => {
                let compute = Arc::new(ComputeCluster::open(
                    &config.data_dir.join("data"),
                    topology,
                )?);
                let (mpp, servers) = start_fragment_servers(&config, &compute)?;
                (compute, mpp, servers, vec![])
            }
        };
        let leader = Arc::new(Leader {
            config,
            catalog,
            compute,
            mpp,
            servers: Mutex::new(servers),
            auto_actions: Default::default(),
            next_session: AtomicU32::new(1),
            reclaimer: Mutex::new(Reclaimer::default()),
            vacuum: Arc::new(tokio::sync::Mutex::new(())),
            query_log: Default::default(),
            load_log: Default::default(),
            vacuum_activity: Default::default(),
            predicate_columns: Default::default(),
        });
        // The background VACUUM DELETE, where there is a runtime to run it (the server and
        // the embedding API; a leader opened outside one has none).
        if let (Some(every), Ok(rt)) = (
            leader.config.auto_vacuum_interval,
            tokio::runtime::Handle::try_current(),
        ) {
            rt.spawn(crate::vacuum::auto_vacuum_loop(
                Arc::downgrade(&leader),
                every,
            ));
        }
        // DISTSTYLE AUTO tables move off ALL as they grow.
        if let (Some(every), Ok(rt)) = (
            leader.config.auto_dist_interval,
            tokio::runtime::Handle::try_current(),
        ) {
            rt.spawn(crate::autodist::auto_redistribute_loop(
                Arc::downgrade(&leader),
                every,
            ));
        }
        // Separate compute nodes: check on them, and clean their disks as they come up.
        if let (Some(mpp), false) = (&leader.mpp, remotes.is_empty()) {
            tokio::spawn(crate::cluster::heartbeat_loop(
                Arc::downgrade(&leader),
                mpp.membership().clone(),
                remotes,
            ));
        }
        // Temporary tables belong to sessions, and no session survives a restart.
        let temp_dropped = leader.drop_temporary_tables()?;
        let state = leader.catalog.snapshot();
        let removed = leader.compute.collect_local_garbage(&state.live_files())?;
        info!(
            data_dir = %leader.config.data_dir.display(),
            %topology,
            version = state.version,
            tables = state.tables.len(),
            temp_dropped,
            orphans_removed = removed,
            "leader opened catalog"
        );
        Ok(leader)
    }

    /// Drop every session's temporary tables and `pg_temp_*` schemas. For when no session
    /// will use them again: at startup (no session survives a restart) and at shutdown.
    /// Returns the number of tables dropped.
    pub fn drop_temporary_tables(&self) -> Result<usize, NodeError> {
        self.drop_temporary(None)
    }

    /// Drop the temporary tables in `schema` (one session's `pg_temp_<id>`) and the schema
    /// itself, or with `None` every session's. The catalog change commits on its own; the
    /// tables' segment files are deleted once no statement still reads a version that has
    /// them. Returns the number of tables dropped.
    pub(crate) fn drop_temporary(&self, schema: Option<&str>) -> Result<usize, NodeError> {
        let is_temp_schema = |s: &str| match schema {
            Some(only) => s == only,
            None => s.starts_with(TEMP_SCHEMA_PREFIX),
        };
        // Nobody else writes a session's temporary schema, so a conflict needs another
        // session to touch `pg_temp_<id>.t` by its qualified name; retry a few times.
        let mut attempts = 0;
        loop {
            let mut txn = self.catalog.begin();
            let tables: Vec<TableId> = txn
                .state()
                .tables
                .values()
                .filter(|t| is_temp_schema(&t.schema) || (schema.is_none() && t.temporary))
                .map(|t| t.id)
                .collect();
            let schemas: Vec<String> = txn
                .state()
                .schemas
                .keys()
                .filter(|s| is_temp_schema(s))
                .cloned()
                .collect();
            if tables.is_empty() && schemas.is_empty() {
                return Ok(0);
            }
            for id in &tables {
                txn.remove_table(*id);
            }
            for s in &schemas {
                txn.remove_schema(s);
            }
            let old = self.catalog.snapshot();
            match self.catalog.commit(txn) {
                Ok(new) => {
                    self.retire(&old, &new);
                    return Ok(tables.len());
                }
                Err(CatalogError::SerializationConflict { .. }) if attempts < 3 => {
                    attempts += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub fn config(&self) -> &LeaderConfig {
        &self.config
    }

    /// How queries reach the compute nodes' fragment servers, when they run distributed.
    pub(crate) fn mpp(&self) -> Option<&basalt_mpp::Mpp> {
        self.mpp.as_ref()
    }

    /// The compute nodes not known to be up (always none in one process).
    pub fn nodes_down(&self) -> Vec<usize> {
        self.mpp
            .as_ref()
            .map(|m| m.membership().down())
            .unwrap_or_default()
    }

    /// Stop the fragment servers of an in-process cluster.
    pub async fn stop_compute(&self) {
        let servers = std::mem::take(&mut *self.servers.lock());
        for s in servers {
            s.stop().await;
        }
    }

    pub fn catalog(&self) -> &CatalogStore {
        &self.catalog
    }

    pub fn compute(&self) -> &Arc<ComputeCluster> {
        &self.compute
    }

    /// Held for the duration of a VACUUM.
    pub(crate) async fn vacuum_lock(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.vacuum.clone().lock_owned().await
    }

    /// The VACUUM lock if no VACUUM holds it.
    pub(crate) fn try_vacuum_lock(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        self.vacuum.clone().try_lock_owned().ok()
    }

    /// Note that queries used these columns of `table` as predicates.
    pub(crate) fn record_predicate_columns(
        &self,
        table: TableId,
        columns: impl IntoIterator<Item = String>,
    ) {
        self.predicate_columns
            .lock()
            .entry(table)
            .or_default()
            .extend(columns);
    }

    /// The columns `ANALYZE PREDICATE COLUMNS` measures on `table`: those queries used as
    /// predicates, and the distribution and sort keys; empty (every column, as in Redshift)
    /// when no query has used any yet.
    pub(crate) fn predicate_columns(&self, table: &TableMeta) -> Vec<String> {
        let used = self.predicate_columns.lock().get(&table.id).cloned();
        let Some(mut used) = used.filter(|u| !u.is_empty()) else {
            return vec![];
        };
        used.extend(table.distkey.clone());
        used.extend(table.sortkey.iter().flat_map(|k| k.columns.clone()));
        table
            .columns
            .iter()
            .filter(|c| used.contains(&c.name))
            .map(|c| c.name.clone())
            .collect()
    }

    pub(crate) fn auto_actions(&self) -> &Arc<crate::autodist::AutoActions> {
        &self.auto_actions
    }

    pub(crate) fn vacuum_activity(&self) -> &Arc<crate::vacuum::VacuumActivity> {
        &self.vacuum_activity
    }

    pub(crate) fn load_log(&self) -> &Arc<crate::loadlog::LoadLog> {
        &self.load_log
    }

    pub(crate) fn query_log(&self) -> &Arc<crate::querylog::QueryLog> {
        &self.query_log
    }

    pub fn topology(&self) -> Topology {
        self.compute.topology
    }

    /// Start a session for `user` connected to `database`.
    pub fn session(self: &Arc<Self>, user: &str, database: &str) -> Result<Session, NodeError> {
        if !database.eq_ignore_ascii_case(&self.config.database) {
            return Err(NodeError::UnknownDatabase {
                name: database.to_string(),
            });
        }
        if !self.user_exists(user) {
            return Err(NodeError::UnknownUser {
                name: user.to_string(),
            });
        }
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        Session::new(self.clone(), id, user.to_string())
    }

    pub fn user_exists(&self, user: &str) -> bool {
        self.catalog.snapshot().users.contains_key(user)
    }

    /// The configured password of a user, if any.
    pub fn user_password(&self, user: &str) -> Option<String> {
        (user == self.config.superuser)
            .then(|| self.config.password.clone())
            .flatten()
    }

    /// The newest committed state, pinned: its files stay until the pin drops. Retries if a
    /// commit lands between reading the state and pinning it.
    pub(crate) fn pinned_snapshot(self: &Arc<Self>) -> (Arc<CatalogState>, VersionPin) {
        loop {
            let s = self.catalog.snapshot();
            let pin = self.pin(s.version);
            if self.catalog.snapshot().version == s.version {
                return (s, pin);
            }
        }
    }

    /// Pin a catalog version for the life of a statement.
    pub(crate) fn pin(self: &Arc<Self>, version: u64) -> VersionPin {
        *self.reclaimer.lock().pins.entry(version).or_default() += 1;
        VersionPin {
            leader: self.clone(),
            version,
        }
    }

    fn unpin(&self, version: u64) {
        let mut r = self.reclaimer.lock();
        if let Some(n) = r.pins.get_mut(&version) {
            *n -= 1;
            if *n == 0 {
                r.pins.remove(&version);
            }
        }
        self.reclaim(&mut r);
    }

    /// Record files that `new` no longer references (compared with `old`) for deletion once no
    /// statement reads a version older than `new`.
    pub(crate) fn retire(&self, old: &CatalogState, new: &CatalogState) {
        let live = new.live_files();
        let gone: FileSet = old
            .live_files()
            .into_iter()
            .filter(|f| !live.contains(f))
            .collect();
        let mut r = self.reclaimer.lock();
        if !gone.is_empty() {
            r.retired.push((new.version, gone));
        }
        self.reclaim(&mut r);
    }

    fn reclaim(&self, r: &mut Reclaimer) {
        let oldest_pin = r.pins.keys().next().copied().unwrap_or(u64::MAX);
        let (ready, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut r.retired)
            .into_iter()
            .partition(|(v, _)| oldest_pin >= *v);
        r.retired = keep;
        for (_, files) in ready {
            self.delete_files(&files);
        }
    }

    /// Delete files straight away (files of a rolled-back transaction, never visible).
    pub(crate) fn delete_files(&self, files: &FileSet) {
        let mut by: BTreeMap<(SliceId, TableId), Vec<String>> = BTreeMap::new();
        for (s, t, f) in files {
            by.entry((*s, *t)).or_default().push(f.clone());
        }
        for ((slice, table), files) in by {
            if let Ok(node) = self.compute.node_for(slice) {
                node.remove(slice, table, files);
            }
        }
    }
}

/// An in-process cluster of several nodes serves each node's fragments on a loopback port of
/// its own, so queries run distributed through the same servers and channels as a cluster
/// of processes. One node (or no runtime to serve on) plans every query locally.
fn start_fragment_servers(
    config: &LeaderConfig,
    compute: &Arc<ComputeCluster>,
) -> Result<(Option<basalt_mpp::Mpp>, Vec<basalt_mpp::ComputeServer>), NodeError> {
    if compute.topology.nodes < 2 || tokio::runtime::Handle::try_current().is_err() {
        return Ok((None, vec![]));
    }
    let secret = config.cluster_secret.clone().unwrap_or_else(random_secret);
    let security = basalt_mpp::Security::new(&secret, config.internal_tls.clone());
    let (mpp, servers) = basalt_mpp::start_in_process(
        compute,
        &security,
        Some(crate::extension::plan_extension(compute.clone())),
    )
    .map_err(|e| NodeError::invalid("58030", format!("starting the compute nodes: {e}")))?;
    info!(
        nodes = servers.len(),
        "compute nodes serving fragments on loopback"
    );
    Ok((Some(mpp), servers))
}

/// 128 random bits as hex, from the standard library's per-process random hasher keys.
pub(crate) fn random_secret() -> String {
    use std::hash::{BuildHasher, Hasher};
    (0..2)
        .map(|i| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(i);
            format!("{:016x}", h.finish())
        })
        .collect()
}

/// The leader of compute nodes in processes of their own: a remote handle per node, the
/// node registry, and the internal server they register with.
#[allow(clippy::type_complexity)]
fn remote_cluster(
    config: &LeaderConfig,
    topology: Topology,
    listen: &str,
) -> Result<
    (
        Arc<ComputeCluster>,
        basalt_mpp::Mpp,
        basalt_mpp::ComputeServer,
        Vec<basalt_mpp::RemoteNode>,
    ),
    NodeError,
> {
    let secret = config.cluster_secret.clone().ok_or_else(|| {
        NodeError::invalid(
            "22023",
            "compute nodes in other processes need a cluster secret (BASALT_CLUSTER_SECRET)",
        )
    })?;
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(NodeError::invalid(
            "XX000",
            "a leader of separate compute nodes needs a tokio runtime",
        ));
    }
    let membership = basalt_mpp::Membership::unregistered(topology.nodes as usize);
    let security = basalt_mpp::Security::new(&secret, config.internal_tls.clone());
    let channels = security.channels();
    let remotes: Vec<basalt_mpp::RemoteNode> = (0..topology.nodes)
        .map(|i| {
            basalt_mpp::RemoteNode::new(
                basalt_catalog::NodeId(i),
                membership.clone(),
                channels.clone(),
            )
        })
        .collect();
    let compute = Arc::new(ComputeCluster::from_nodes(
        topology,
        remotes
            .iter()
            .map(|r| Arc::new(r.clone()) as Arc<dyn basalt_storage::ComputeService>)
            .collect(),
        vec![],
    ));
    let registry =
        crate::cluster::NodeRegistry::open(&config.data_dir, topology, membership.clone())?;
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|e| NodeError::invalid("58030", format!("listening on {listen}: {e}")))?;
    let server = basalt_mpp::ComputeServer::start_leader(
        listener,
        &security,
        basalt_mpp::InternalService::leader(Arc::new(registry), basalt_mpp::functions_context()),
    )
    .map_err(|e| NodeError::invalid("58030", e.to_string()))?;
    info!(%listen, nodes = topology.nodes, "waiting for compute nodes to register");
    let extension = crate::extension::plan_extension(compute.clone());
    Ok((
        compute,
        basalt_mpp::Mpp::new(membership, &security, Some(extension)),
        server,
        remotes,
    ))
}

/// Run `work` every `every` while the leader lives, the first time one interval after the
/// start (the leader's background workers: VACUUM DELETE, AUTO redistribution).
pub(crate) async fn periodically<F, Fut>(
    leader: std::sync::Weak<Leader>,
    every: std::time::Duration,
    work: F,
) where
    F: Fn(Arc<Leader>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(leader) = leader.upgrade() else {
            return;
        };
        work(leader).await;
    }
}
