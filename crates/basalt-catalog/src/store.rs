//! The durable catalog: one immutable [`CatalogState`] per committed version, persisted
//! atomically (write temp file, fsync, rename, fsync directory).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::table::{TableData, TableMeta};
use crate::{CATALOG_FORMAT_VERSION, CatalogError, SliceId, TableId};

/// A schema (namespace).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaMeta {
    pub name: String,
    pub owner: String,
}

/// A database user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserMeta {
    pub name: String,
    pub superuser: bool,
}

/// The fixed shape of the cluster, recorded when the data directory is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    pub nodes: u32,
    pub slices_per_node: u32,
}

impl Topology {
    pub fn slice_count(&self) -> u32 {
        self.nodes * self.slices_per_node
    }
    /// All slices, in order.
    pub fn slices(&self) -> impl Iterator<Item = SliceId> + use<> {
        (0..self.slice_count()).map(SliceId)
    }
    /// The node holding a slice.
    pub fn node_of(&self, slice: SliceId) -> u32 {
        slice.0 / self.slices_per_node
    }
    /// The first slice of each node: where DISTSTYLE ALL copies live.
    pub fn first_slices(&self) -> impl Iterator<Item = SliceId> + use<> {
        let per = self.slices_per_node;
        (0..self.nodes).map(move |n| SliceId(n * per))
    }
}

impl std::fmt::Display for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} node(s) x {} slice(s)",
            self.nodes, self.slices_per_node
        )
    }
}

/// A view: a named query, expanded into the statements that read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewMeta {
    pub schema: String,
    pub name: String,
    /// The defining query, as SQL text.
    pub query: String,
    /// The view's columns (names, after any column list, and types) when it was created.
    pub columns: Vec<(String, crate::SqlType)>,
    /// Whether `CREATE VIEW v (a, b)` named the columns (then they alias the query's).
    pub column_list: bool,
    /// `WITH NO SCHEMA BINDING` (Redshift's late-binding view): the tables it reads may be
    /// dropped or changed; it is checked only when queried.
    pub late_binding: bool,
    pub owner: String,
    pub created_at: String,
}

impl ViewMeta {
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    fn key(&self) -> (String, String) {
        (self.schema.clone(), self.name.clone())
    }
}

/// One committed version of the whole catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogState {
    /// Commit sequence number.
    pub version: u64,
    /// Bumped by every commit that changed schemas or table definitions.
    pub ddl_version: u64,
    pub topology: Topology,
    pub next_table_id: u64,
    pub schemas: BTreeMap<String, SchemaMeta>,
    pub tables: BTreeMap<TableId, TableMeta>,
    pub users: BTreeMap<String, UserMeta>,
    /// Views by (schema, name), persisted as a list. Absent in format version 1 files.
    #[serde(default, with = "views_as_list")]
    pub views: BTreeMap<(String, String), ViewMeta>,
}

mod views_as_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::ViewMeta;

    pub fn serialize<S: Serializer>(
        views: &BTreeMap<(String, String), ViewMeta>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        views.values().collect::<Vec<_>>().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<(String, String), ViewMeta>, D::Error> {
        Ok(Vec::<ViewMeta>::deserialize(d)?
            .into_iter()
            .map(|v| (v.key(), v))
            .collect())
    }
}

impl CatalogState {
    fn initial(topology: Topology, superuser: &str) -> Self {
        let mut schemas = BTreeMap::new();
        schemas.insert(
            "public".to_string(),
            SchemaMeta {
                name: "public".into(),
                owner: superuser.into(),
            },
        );
        let mut users = BTreeMap::new();
        users.insert(
            superuser.to_string(),
            UserMeta {
                name: superuser.into(),
                superuser: true,
            },
        );
        CatalogState {
            version: 0,
            ddl_version: 0,
            topology,
            next_table_id: 100_000,
            schemas,
            tables: BTreeMap::new(),
            users,
            views: BTreeMap::new(),
        }
    }

    pub fn view(&self, schema: &str, name: &str) -> Option<&ViewMeta> {
        self.views.get(&(schema.to_string(), name.to_string()))
    }

    pub fn table_by_name(&self, schema: &str, name: &str) -> Option<&TableMeta> {
        self.tables
            .values()
            .find(|t| t.schema == schema && t.name == name)
    }

    pub fn table_id_by_name(&self, schema: &str, name: &str) -> Option<TableId> {
        self.table_by_name(schema, name).map(|t| t.id)
    }

    /// Every segment file referenced by this version, as `(slice, table, file)`.
    pub fn live_files(&self) -> BTreeSet<(SliceId, TableId, String)> {
        let mut out = BTreeSet::new();
        for t in self.tables.values() {
            for (slice, segs) in &t.data.slices {
                for s in segs {
                    out.insert((*slice, t.id, s.file.clone()));
                    if let Some(d) = &s.deleted {
                        out.insert((*slice, t.id, d.file.clone()));
                    }
                }
            }
        }
        out
    }
}

/// Envelope of the persisted file: a format version and a checksum over the body.
#[derive(Serialize, Deserialize)]
struct CatalogFile {
    format: String,
    format_version: u32,
    crc32: u32,
    body: String,
}

const CATALOG_FILE: &str = "catalog.json";
const FORMAT_NAME: &str = "basalt-catalog";

/// The leader's catalog: the current committed state plus its durable file.
pub struct CatalogStore {
    dir: PathBuf,
    current: RwLock<Arc<CatalogState>>,
    commit_lock: Mutex<()>,
    /// Table ids are handed out globally, so concurrent CREATE TABLEs never collide.
    next_table_id: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for CatalogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogStore")
            .field("dir", &self.dir)
            .finish()
    }
}

impl CatalogStore {
    /// Open the catalog under `dir`, creating an empty one with `topology` if none exists.
    pub fn open(dir: &Path, topology: Topology, superuser: &str) -> Result<Self, CatalogError> {
        fs::create_dir_all(dir).map_err(|source| CatalogError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(CATALOG_FILE);
        let state = if path.exists() {
            let state = read_catalog(&path)?;
            if state.topology != topology {
                return Err(CatalogError::TopologyMismatch {
                    found: state.topology.to_string(),
                    asked: topology.to_string(),
                });
            }
            state
        } else {
            let state = CatalogState::initial(topology, superuser);
            write_catalog(dir, &state)?;
            state
        };
        Ok(CatalogStore {
            dir: dir.to_path_buf(),
            next_table_id: Arc::new(std::sync::atomic::AtomicU64::new(state.next_table_id)),
            current: RwLock::new(Arc::new(state)),
            commit_lock: Mutex::new(()),
        })
    }

    /// Read the topology recorded in an existing data directory, if any.
    pub fn recorded_topology(dir: &Path) -> Result<Option<Topology>, CatalogError> {
        let path = dir.join(CATALOG_FILE);
        if !path.exists() {
            return Ok(None);
        }
        Ok(Some(read_catalog(&path)?.topology))
    }

    /// The latest committed state.
    pub fn snapshot(&self) -> Arc<CatalogState> {
        self.current.read().clone()
    }

    /// Start a transaction on the latest committed state.
    pub fn begin(&self) -> Transaction {
        let base = self.snapshot();
        Transaction {
            working: (*base).clone(),
            base,
            touched: BTreeSet::new(),
            touched_schemas: BTreeSet::new(),
            touched_views: BTreeSet::new(),
            ddl: false,
            ids: self.next_table_id.clone(),
        }
    }

    /// Commit a transaction: check for write-write conflicts with commits made since it began,
    /// merge its changes into the newest committed state, persist atomically, then publish.
    pub fn commit(&self, txn: Transaction) -> Result<Arc<CatalogState>, CatalogError> {
        if !txn.is_dirty() {
            return Ok(self.snapshot());
        }
        let _guard = self.commit_lock.lock();
        let current = self.snapshot();
        // Write-write conflicts: something this transaction wrote was also changed by a commit
        // made after it began. The first committer wins (Redshift's serializable isolation).
        let mut rebased: BTreeMap<TableId, TableMeta> = BTreeMap::new();
        for id in &txn.touched {
            let before = txn.base.tables.get(id).map(|t| t.version);
            let now = current.tables.get(id).map(|t| t.version);
            if before != now {
                // Appending rows (INSERT, COPY) commits on top of what others committed.
                if let (Some(b), Some(w), Some(n)) = (
                    txn.base.tables.get(id),
                    txn.working.tables.get(id),
                    current.tables.get(id),
                ) && !txn.ddl
                    && let Some(merged) = rebase_append(b, w, n)
                {
                    rebased.insert(*id, merged);
                    continue;
                }
                let name = txn
                    .working
                    .tables
                    .get(id)
                    .or_else(|| txn.base.tables.get(id))
                    .map(|t| t.qualified_name())
                    .unwrap_or_else(|| id.to_string());
                return Err(CatalogError::SerializationConflict {
                    table: name,
                    detail: format!(
                        "a concurrent commit (version {}) changed it",
                        current.version
                    ),
                });
            }
        }
        for name in &txn.touched_schemas {
            if txn.base.schemas.get(name) != current.schemas.get(name) {
                return Err(CatalogError::SerializationConflict {
                    table: name.clone(),
                    detail: format!(
                        "a concurrent commit (version {}) changed the schema",
                        current.version
                    ),
                });
            }
        }
        for key in &txn.touched_views {
            if txn.base.views.get(key) != current.views.get(key) {
                return Err(CatalogError::SerializationConflict {
                    table: format!("{}.{}", key.0, key.1),
                    detail: format!(
                        "a concurrent commit (version {}) changed the view",
                        current.version
                    ),
                });
            }
        }
        let mut next = (*current).clone();
        for key in &txn.touched_views {
            match txn.working.views.get(key) {
                Some(v) => {
                    if next.table_by_name(&key.0, &key.1).is_some() {
                        return Err(CatalogError::TableExists {
                            name: v.name.clone(),
                        });
                    }
                    next.views.insert(key.clone(), v.clone())
                }
                None => next.views.remove(key),
            };
        }
        for name in &txn.touched_schemas {
            match txn.working.schemas.get(name) {
                Some(s) => next.schemas.insert(name.clone(), s.clone()),
                None => next.schemas.remove(name),
            };
        }
        for id in &txn.touched {
            if let Some(t) = rebased.remove(id) {
                next.tables.insert(*id, t);
                continue;
            }
            match txn.working.tables.get(id) {
                Some(t) => {
                    if next
                        .table_by_name(&t.schema, &t.name)
                        .is_some_and(|o| o.id != *id)
                        || next.view(&t.schema, &t.name).is_some()
                    {
                        return Err(CatalogError::TableExists {
                            name: t.name.clone(),
                        });
                    }
                    next.tables.insert(*id, t.clone())
                }
                None => next.tables.remove(id),
            };
        }
        // A schema dropped here while another transaction committed a table into it.
        for name in &txn.touched_schemas {
            if !next.schemas.contains_key(name) && next.tables.values().any(|t| &t.schema == name) {
                return Err(CatalogError::SerializationConflict {
                    table: name.clone(),
                    detail: "a concurrent commit created a table in the dropped schema".into(),
                });
            }
        }
        next.next_table_id = next.next_table_id.max(txn.working.next_table_id);
        if txn.ddl {
            next.ddl_version += 1;
        }
        next.version = current.version + 1;
        write_catalog(&self.dir, &next)?;
        let next = Arc::new(next);
        *self.current.write() = next.clone();
        Ok(next)
    }
}

/// `now` (the committed version of a table) with what a transaction that read `base` and
/// made `working` appended to it, if appending segments is all it did: no deletes (delete
/// vectors change existing segments), no DDL, no identity values, no statistics. Concurrent
/// appends then both commit, as concurrent INSERTs into one Redshift table do (there they
/// queue on the table's write lock).
fn rebase_append(base: &TableMeta, working: &TableMeta, now: &TableMeta) -> Option<TableMeta> {
    // Rows placed by the old placement cannot join a table placed another way since
    // (an AUTO table redistributed while the append ran).
    let placement = |t: &TableMeta| {
        (
            t.effective_diststyle(),
            t.distkey.clone(),
            t.hash_fingerprint,
        )
    };
    if placement(base) != placement(now) {
        return None;
    }
    let without_data = |t: &TableMeta| TableMeta {
        data: TableData::default(),
        version: 0,
        rows_changed: 0,
        ..t.clone()
    };
    if without_data(base) != without_data(working) {
        return None;
    }
    if base
        .data
        .slices
        .keys()
        .any(|s| !working.data.slices.contains_key(s))
    {
        return None;
    }
    let mut merged = now.clone();
    for (slice, segments) in &working.data.slices {
        let before = base
            .data
            .slices
            .get(slice)
            .map_or(&[][..], |v| v.as_slice());
        let added = segments.strip_prefix(before)?;
        if !added.is_empty() {
            merged
                .data
                .slices
                .entry(*slice)
                .or_default()
                .extend(added.iter().cloned());
        }
    }
    merged.rows_changed = now.rows_changed + working.rows_changed.saturating_sub(base.rows_changed);
    merged.version = now.version + 1;
    Some(merged)
}

/// A transaction's private view of the catalog. Edits are invisible to others until
/// [`CatalogStore::commit`].
#[derive(Debug, Clone)]
pub struct Transaction {
    base: Arc<CatalogState>,
    working: CatalogState,
    touched: BTreeSet<TableId>,
    touched_schemas: BTreeSet<String>,
    touched_views: BTreeSet<(String, String)>,
    ddl: bool,
    ids: Arc<std::sync::atomic::AtomicU64>,
}

impl Transaction {
    /// The state as this transaction sees it.
    pub fn state(&self) -> &CatalogState {
        &self.working
    }

    /// The committed version this transaction started from.
    pub fn base_version(&self) -> u64 {
        self.base.version
    }

    /// Mutable access to one table (DML, or DDL with [`Transaction::mark_ddl`]). Marks it written.
    pub fn table_mut(&mut self, id: TableId) -> Option<&mut TableMeta> {
        self.touched.insert(id);
        self.working.tables.get_mut(&id)
    }

    /// This transaction changes definitions (bumps the DDL version on commit).
    pub fn mark_ddl(&mut self) {
        self.ddl = true;
    }

    /// Add a new table (CREATE TABLE).
    pub fn insert_table(&mut self, table: TableMeta) {
        self.ddl = true;
        self.touched.insert(table.id);
        if let Some(s) = self.working.schemas.get(&table.schema).cloned() {
            // A concurrent DROP SCHEMA of the table's schema must conflict with this.
            self.touched_schemas.insert(s.name.clone());
        }
        self.working.tables.insert(table.id, table);
    }

    /// Remove a table (DROP TABLE).
    pub fn remove_table(&mut self, id: TableId) -> Option<TableMeta> {
        self.ddl = true;
        self.touched.insert(id);
        self.working.tables.remove(&id)
    }

    /// Add or replace a schema.
    pub fn put_schema(&mut self, schema: SchemaMeta) {
        self.ddl = true;
        self.touched_schemas.insert(schema.name.clone());
        self.working.schemas.insert(schema.name.clone(), schema);
    }

    /// Remove a schema.
    pub fn remove_schema(&mut self, name: &str) -> Option<SchemaMeta> {
        self.ddl = true;
        self.touched_schemas.insert(name.to_string());
        self.working.schemas.remove(name)
    }

    /// Add or replace a view (CREATE [OR REPLACE] VIEW).
    pub fn put_view(&mut self, view: ViewMeta) {
        self.ddl = true;
        self.touched_views.insert(view.key());
        if self.working.schemas.contains_key(&view.schema) {
            self.touched_schemas.insert(view.schema.clone());
        }
        self.working.views.insert(view.key(), view);
    }

    /// Remove a view (DROP VIEW).
    pub fn remove_view(&mut self, schema: &str, name: &str) -> Option<ViewMeta> {
        let key = (schema.to_string(), name.to_string());
        self.ddl = true;
        self.touched_views.insert(key.clone());
        self.working.views.remove(&key)
    }

    pub fn is_dirty(&self) -> bool {
        self.ddl
            || !self.touched.is_empty()
            || !self.touched_schemas.is_empty()
            || !self.touched_views.is_empty()
    }

    /// Allocate a new table id.
    pub fn allocate_table_id(&mut self) -> TableId {
        let id = self
            .ids
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .max(self.working.next_table_id);
        self.working.next_table_id = id + 1;
        TableId(id)
    }

    /// Files that this transaction's writes added and that are not in its base version: the
    /// files to delete if it rolls back.
    pub fn files_added(&self) -> BTreeSet<(SliceId, TableId, String)> {
        let before = self.base.live_files();
        self.working
            .live_files()
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect()
    }
}

fn read_catalog(path: &Path) -> Result<CatalogState, CatalogError> {
    let bytes = fs::read(path).map_err(|source| CatalogError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let corrupt = |reason: String| CatalogError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let file: CatalogFile =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("not a catalog file: {e}")))?;
    if file.format != FORMAT_NAME {
        return Err(corrupt(format!("unknown format {:?}", file.format)));
    }
    // Version 1 had no views, version 2 no delete vectors; their files read as version 3
    // with none.
    if !(1..=CATALOG_FORMAT_VERSION).contains(&file.format_version) {
        return Err(CatalogError::UnsupportedFormat {
            path: path.to_path_buf(),
            found: file.format_version,
            expected: CATALOG_FORMAT_VERSION,
        });
    }
    let crc = crc32fast::hash(file.body.as_bytes());
    if crc != file.crc32 {
        return Err(corrupt(format!(
            "checksum mismatch (stored {:08x}, computed {crc:08x})",
            file.crc32
        )));
    }
    serde_json::from_str(&file.body).map_err(|e| corrupt(format!("bad catalog body: {e}")))
}

fn write_catalog(dir: &Path, state: &CatalogState) -> Result<(), CatalogError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CatalogError::Io { path, source }
    };
    let body = serde_json::to_string(state).expect("catalog state serializes");
    let file = CatalogFile {
        format: FORMAT_NAME.into(),
        format_version: CATALOG_FORMAT_VERSION,
        crc32: crc32fast::hash(body.as_bytes()),
        body,
    };
    let bytes = serde_json::to_vec(&file).expect("catalog file serializes");
    let tmp = dir.join(format!("{CATALOG_FILE}.tmp"));
    let dst = dir.join(CATALOG_FILE);
    {
        let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    fs::rename(&tmp, &dst).map_err(io(&dst))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Constraints, TableData};
    use crate::types::{DistStyle, SqlType};
    use crate::{ColumnMeta, DeleteVectorMeta, Encoding, SegmentMeta};

    const TOPO: Topology = Topology {
        nodes: 1,
        slices_per_node: 2,
    };

    fn table(id: TableId, name: &str) -> TableMeta {
        TableMeta {
            id,
            schema: "public".into(),
            name: name.into(),
            columns: vec![ColumnMeta {
                id: 0,
                name: "a".into(),
                ty: SqlType::Integer,
                nullable: true,
                default: None,
                identity: None,
                encoding: Encoding::Az64,
            }],
            next_column_id: 1,
            diststyle: DistStyle::Even,
            distkey: None,
            sortkey: None,
            encode_auto: true,
            backup: true,
            temporary: false,
            constraints: Constraints::default(),
            owner: "basalt".into(),
            created_at: "2026-01-01 00:00:00".into(),
            hash_fingerprint: 0,
            identity_next: Default::default(),
            stats: None,
            rows_changed: 0,
            auto_style: None,
            loaded: Default::default(),
            version: 0,
            data: TableData::default(),
        }
    }

    #[test]
    fn commit_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = CatalogStore::open(dir.path(), TOPO, "basalt").unwrap();
        let mut txn = store.begin();
        let id = txn.allocate_table_id();
        txn.insert_table(table(id, "t"));
        store.commit(txn).unwrap();
        drop(store);
        let store = CatalogStore::open(dir.path(), TOPO, "basalt").unwrap();
        assert!(store.snapshot().table_by_name("public", "t").is_some());
    }

    #[test]
    fn write_write_conflict_aborts_second_committer() {
        let dir = tempfile::tempdir().unwrap();
        let store = CatalogStore::open(dir.path(), TOPO, "basalt").unwrap();
        let mut txn = store.begin();
        let id = txn.allocate_table_id();
        txn.insert_table(table(id, "t"));
        store.commit(txn).unwrap();

        let seg = |file: &str, deleted: u64| SegmentMeta {
            file: file.into(),
            rows: 10,
            bytes: 100,
            sorted: false,
            sorted_region: false,
            deleted: (deleted > 0).then(|| DeleteVectorMeta {
                file: format!("{file}.del"),
                rows: deleted,
            }),
            crc32: None,
        };
        let mut txn = store.begin();
        let t = txn.table_mut(id).unwrap();
        t.data.slices.insert(SliceId(0), vec![seg("s0", 0)]);
        t.version += 1;
        store.commit(txn).unwrap();

        // Two DELETEs of the same segment: the second committer loses.
        let mut a = store.begin();
        let mut b = store.begin();
        for (txn, n) in [(&mut a, 1), (&mut b, 2)] {
            let t = txn.table_mut(id).unwrap();
            t.data.slices.insert(SliceId(0), vec![seg("s0", n)]);
            t.version += 1;
        }
        store.commit(a).unwrap();
        let err = store.commit(b).unwrap_err();
        assert_eq!(err.sqlstate(), "40001");

        // Appends commit on top of a concurrent DELETE and of each other.
        let mut a = store.begin();
        let mut b = store.begin();
        let mut c = store.begin();
        for (txn, file) in [(&mut a, "a"), (&mut b, "b")] {
            let t = txn.table_mut(id).unwrap();
            t.data
                .slices
                .get_mut(&SliceId(0))
                .unwrap()
                .push(seg(file, 0));
            t.data
                .slices
                .insert(SliceId(1), vec![seg(&format!("{file}1"), 0)]);
            t.rows_changed += 20;
            t.version += 1;
        }
        let t = c.table_mut(id).unwrap();
        t.data.slices.insert(SliceId(0), vec![seg("s0", 5)]);
        t.version += 1;
        store.commit(c).unwrap();
        store.commit(a).unwrap();
        store.commit(b).unwrap();
        let now = store.snapshot();
        let t = &now.tables[&id];
        let files = |s: u32| -> Vec<String> {
            t.data.slices[&SliceId(s)]
                .iter()
                .map(|g| g.file.clone())
                .collect()
        };
        assert_eq!(files(0), ["s0", "a", "b"]);
        assert_eq!(files(1), ["a1", "b1"]);
        assert_eq!(
            t.data.slices[&SliceId(0)][0].deleted.as_ref().unwrap().rows,
            5
        );
        assert_eq!(t.rows_changed, 40);

        // An append that also changed the table's definition conflicts.
        let mut a = store.begin();
        let mut b = store.begin();
        a.table_mut(id).unwrap().version += 1;
        let t = b.table_mut(id).unwrap();
        t.identity_next.insert(0, 7);
        t.version += 1;
        store.commit(a).unwrap();
        assert_eq!(store.commit(b).unwrap_err().sqlstate(), "40001");
    }

    #[test]
    fn concurrent_creates_do_not_conflict_but_drop_schema_does() {
        let dir = tempfile::tempdir().unwrap();
        let store = CatalogStore::open(dir.path(), TOPO, "basalt").unwrap();
        let mut a = store.begin();
        let mut b = store.begin();
        let ia = a.allocate_table_id();
        let ib = b.allocate_table_id();
        assert_ne!(ia, ib);
        a.insert_table(table(ia, "a"));
        b.insert_table(table(ib, "b"));
        store.commit(a).unwrap();
        store.commit(b).unwrap();
        // A table created in a schema that a concurrent transaction drops.
        let mut c = store.begin();
        let mut d = store.begin();
        let ic = c.allocate_table_id();
        c.insert_table(table(ic, "c"));
        for id in [ia, ib] {
            d.remove_table(id);
        }
        d.remove_schema("public");
        store.commit(c).unwrap();
        assert_eq!(store.commit(d).unwrap_err().sqlstate(), "40001");
    }

    #[test]
    fn torn_file_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        CatalogStore::open(dir.path(), TOPO, "basalt").unwrap();
        let path = dir.path().join(CATALOG_FILE);
        let mut text = fs::read_to_string(&path).unwrap();
        text = text.replace("public", "publix");
        fs::write(&path, text).unwrap();
        let err = CatalogStore::open(dir.path(), TOPO, "basalt").unwrap_err();
        assert!(matches!(err, CatalogError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn topology_is_fixed_at_creation() {
        let dir = tempfile::tempdir().unwrap();
        CatalogStore::open(dir.path(), TOPO, "basalt").unwrap();
        let other = Topology {
            nodes: 2,
            slices_per_node: 2,
        };
        assert!(CatalogStore::open(dir.path(), other, "basalt").is_err());
    }

    /// A format-version-1 file (before views) still opens, with no views.
    #[test]
    fn reads_format_version_1() {
        let dir = tempfile::tempdir().unwrap();
        CatalogStore::open(dir.path(), TOPO, "basalt").unwrap();
        let path = dir.path().join(CATALOG_FILE);
        let file: CatalogFile = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        let mut body: serde_json::Value = serde_json::from_str(&file.body).unwrap();
        body.as_object_mut().unwrap().remove("views");
        let body = body.to_string();
        let old = CatalogFile {
            format: FORMAT_NAME.into(),
            format_version: 1,
            crc32: crc32fast::hash(body.as_bytes()),
            body,
        };
        fs::write(&path, serde_json::to_vec(&old).unwrap()).unwrap();
        let store = CatalogStore::open(dir.path(), TOPO, "basalt").unwrap();
        assert!(store.snapshot().views.is_empty());
        assert!(store.snapshot().schemas.contains_key("public"));
    }

    /// Freezes the persisted shape: if this fails, bump CATALOG_FORMAT_VERSION and update the
    /// expected text (and write a reader for the old version).
    #[test]
    fn frozen_format() {
        let mut state = CatalogState::initial(TOPO, "basalt");
        let mut t = table(TableId(100_000), "t");
        t.data.slices.insert(
            SliceId(1),
            vec![SegmentMeta {
                file: "s.parquet".into(),
                rows: 3,
                bytes: 10,
                sorted: false,
                sorted_region: false,
                deleted: Some(DeleteVectorMeta {
                    file: "s.1.del".into(),
                    rows: 1,
                }),
                crc32: Some(7),
            }],
        );
        state.tables.insert(t.id, t);
        state.views.insert(
            ("public".into(), "v".into()),
            ViewMeta {
                schema: "public".into(),
                name: "v".into(),
                query: "SELECT a FROM t".into(),
                columns: vec![("a".into(), SqlType::Integer)],
                column_list: false,
                late_binding: false,
                owner: "basalt".into(),
                created_at: "2026-01-01 00:00:00".into(),
            },
        );
        let json = serde_json::to_string(&state).unwrap();
        let expected = r#"{"version":0,"ddl_version":0,"topology":{"nodes":1,"slices_per_node":2},"next_table_id":100000,"schemas":{"public":{"name":"public","owner":"basalt"}},"tables":{"100000":{"id":100000,"schema":"public","name":"t","columns":[{"id":0,"name":"a","ty":"integer","nullable":true,"default":null,"identity":null,"encoding":"az64"}],"next_column_id":1,"diststyle":"even","distkey":null,"sortkey":null,"encode_auto":true,"backup":true,"temporary":false,"constraints":{"primary_key":[],"unique":[],"foreign_keys":[]},"owner":"basalt","created_at":"2026-01-01 00:00:00","hash_fingerprint":0,"identity_next":{},"version":0,"data":{"slices":{"1":[{"file":"s.parquet","rows":3,"bytes":10,"sorted":false,"sorted_region":false,"deleted":{"file":"s.1.del","rows":1},"crc32":7}]}},"stats":null,"rows_changed":0}},"users":{"basalt":{"name":"basalt","superuser":true}},"views":[{"schema":"public","name":"v","query":"SELECT a FROM t","columns":[["a","integer"]],"column_list":false,"late_binding":false,"owner":"basalt","created_at":"2026-01-01 00:00:00"}]}"#;
        assert_eq!(json, expected, "persisted catalog format changed");
        assert_eq!(CATALOG_FORMAT_VERSION, 5);
    }
}
