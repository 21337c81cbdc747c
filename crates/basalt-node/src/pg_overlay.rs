//! BasaltDB's facts layered over datafusion-pg-catalog's `pg_catalog` tables.
//!
//! datafusion-pg-catalog derives `pg_attribute` from Arrow types alone, so `VARCHAR(10)`
//! shows as `text` and `DECIMAL(18,4)` as bare `numeric`, and it knows nothing of defaults,
//! informational primary keys, distribution or encodings. This overlay keeps its rows (and
//! its OIDs, which other tables join on) and corrects or extends them from our catalog:
//!
//! - `pg_attribute`: type OID and typmod from the column's SQL type, NOT NULL, `atthasdef`,
//!   plus Redshift's `attisdistkey`, `attsortkeyord` and `attencodingtype`;
//! - `pg_class`: Redshift's `reldiststyle`, the owner, and one index row per primary key;
//! - `pg_index`: the primary keys (what JDBC's `getPrimaryKeys` reads);
//! - `pg_attrdef`: DEFAULT and IDENTITY expressions;
//! - `pg_settings`: every setting `SHOW` knows, with its default;
//! - `pg_user`: Redshift's user view;
//! - Redshift's `svv_tables`, `svv_all_tables`, `svv_external_schemas` and
//!   `svv_external_tables` (no external schemas until Spectrum arrives).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use basalt_catalog::TableMeta;
use basalt_planner::BasaltTable;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int16Array, Int32Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::{concat, concat_batches};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use datafusion::catalog::{CatalogProviderList, SchemaProvider, Session, TableProvider};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::{ExecutionPlan, collect};

/// OIDs of the index rows we add for primary keys: far above the OIDs datafusion-pg-catalog
/// hands out (it counts up from 16384), so they never collide.
const PK_INDEX_OID_BASE: i32 = 0x7000_0000;
/// OIDs of our `pg_attrdef` rows.
const ATTRDEF_OID_BASE: i32 = 0x6000_0000;
/// `pg_am` OID of btree, which clients expect on an index.
const BTREE_AM_OID: i32 = 403;
/// `usesysid` of the first user, as in Redshift.
const FIRST_USESYSID: i32 = 100;

/// The `pg_catalog` schema: datafusion-pg-catalog's, with our tables in front.
#[derive(Debug)]
pub(crate) struct PgCatalogOverlay {
    inner: Arc<dyn SchemaProvider>,
    catalogs: Arc<dyn CatalogProviderList>,
    /// (name, superuser), sorted by name; a user's `usesysid` is its position + 100.
    users: Vec<(String, bool)>,
    /// The cluster's slice map (STV_SLICES).
    topology: basalt_catalog::Topology,
    /// Recent queries (STL_QUERY, STL_SCAN, SVL_QUERY_SUMMARY).
    query_log: Arc<crate::querylog::QueryLog>,
    /// COPYs' rejected rows and committed files (STL_LOAD_ERRORS, STL_LOAD_COMMITS).
    load_log: Arc<crate::loadlog::LoadLog>,
    /// Running and recent VACUUMs (SVV_VACUUM_PROGRESS, SYS_VACUUM_HISTORY).
    vacuum: Arc<crate::vacuum::VacuumActivity>,
    /// The compute nodes (STV_BLOCKLIST reads segment footers).
    compute: Arc<basalt_storage::ComputeCluster>,
    /// The automatic worker's actions (SVL_AUTO_WORKER_ACTION).
    auto_actions: Arc<crate::autodist::AutoActions>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Attribute,
    Class,
    Index,
    Attrdef,
    Settings,
    User,
    SvvTables,
    SvvAllTables,
    SvvExternalSchemas,
    SvvExternalTables,
    SvvExternalColumns,
    SvvTableInfo,
    PgTableDef,
    StvSlices,
    StlQuery,
    StlScan,
    StlDist,
    StlBcast,
    StlReturn,
    StlLoadErrors,
    StlLoadErrorDetail,
    StlLoadCommits,
    StlUnloadLog,
    StvLoadState,
    SvlQuerySummary,
    SvvVacuumProgress,
    SysVacuumHistory,
    StvBlocklist,
    SvvDiskusage,
    SvlAutoWorkerAction,
}

/// Relations only the overlay has (clients name them without `pg_catalog.`).
pub(crate) const OVERLAY_ONLY: &[&str] = &[
    "pg_user",
    "svv_tables",
    "svv_all_tables",
    "svv_external_schemas",
    "svv_external_tables",
    "svv_external_columns",
    "svv_table_info",
    "pg_table_def",
    "stv_slices",
    "stl_query",
    "stl_scan",
    "stl_dist",
    "stl_bcast",
    "stl_return",
    "stl_load_errors",
    "stl_loaderror_detail",
    "stl_load_commits",
    "stl_unload_log",
    "stv_load_state",
    "svl_query_summary",
    "svv_vacuum_progress",
    "sys_vacuum_history",
    "stv_blocklist",
    "svv_diskusage",
    "svl_auto_worker_action",
];

impl Kind {
    fn of(name: &str) -> Option<Kind> {
        Some(match name {
            "pg_attribute" => Kind::Attribute,
            "pg_class" => Kind::Class,
            "pg_index" => Kind::Index,
            "pg_attrdef" => Kind::Attrdef,
            "pg_user" => Kind::User,
            "pg_settings" => Kind::Settings,
            "svv_tables" => Kind::SvvTables,
            "svv_all_tables" => Kind::SvvAllTables,
            "svv_external_schemas" => Kind::SvvExternalSchemas,
            "svv_external_tables" => Kind::SvvExternalTables,
            "svv_external_columns" => Kind::SvvExternalColumns,
            "svv_table_info" => Kind::SvvTableInfo,
            "pg_table_def" => Kind::PgTableDef,
            "stv_slices" => Kind::StvSlices,
            "stl_query" => Kind::StlQuery,
            "stl_scan" => Kind::StlScan,
            "stl_dist" => Kind::StlDist,
            "stl_bcast" => Kind::StlBcast,
            "stl_return" => Kind::StlReturn,
            "stl_load_errors" => Kind::StlLoadErrors,
            "stl_loaderror_detail" => Kind::StlLoadErrorDetail,
            "stl_load_commits" => Kind::StlLoadCommits,
            "stl_unload_log" => Kind::StlUnloadLog,
            "stv_load_state" => Kind::StvLoadState,
            "svl_query_summary" => Kind::SvlQuerySummary,
            "svv_vacuum_progress" => Kind::SvvVacuumProgress,
            "sys_vacuum_history" => Kind::SysVacuumHistory,
            "stv_blocklist" => Kind::StvBlocklist,
            "svv_diskusage" => Kind::SvvDiskusage,
            "svl_auto_worker_action" => Kind::SvlAutoWorkerAction,
            _ => return None,
        })
    }
}

impl PgCatalogOverlay {
    pub(crate) fn new(
        inner: Arc<dyn SchemaProvider>,
        catalogs: Arc<dyn CatalogProviderList>,
        mut users: Vec<(String, bool)>,
        leader: &crate::Leader,
    ) -> Self {
        users.sort();
        PgCatalogOverlay {
            inner,
            catalogs,
            users,
            topology: leader.compute().topology,
            query_log: leader.query_log().clone(),
            load_log: leader.load_log().clone(),
            vacuum: leader.vacuum_activity().clone(),
            compute: leader.compute().clone(),
            auto_actions: leader.auto_actions().clone(),
        }
    }

    /// The pg_class OID of each table the session sees, by catalog id (the system logs name
    /// tables by catalog id).
    async fn oids_by_table_id(&self, state: &dyn Session) -> Result<HashMap<u64, i32>> {
        Ok(self
            .tables_with_oids(state)
            .await?
            .iter()
            .map(|(oid, t)| (t.id.0, *oid))
            .collect())
    }

    /// The tables the session sees with their pg_class OIDs, ordered by schema and name.
    async fn tables_with_oids(&self, state: &dyn Session) -> Result<Vec<(i32, Arc<TableMeta>)>> {
        let oids = self.relation_oids(state).await?;
        let mut tables: Vec<_> = self.tables().await?.into_iter().collect();
        tables.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(tables
            .into_iter()
            .map(|(key, t)| (oids.get(&key).copied().unwrap_or(0), t))
            .collect())
    }

    /// The database's name.
    fn database(&self) -> String {
        self.catalogs
            .catalog_names()
            .into_iter()
            .next()
            .unwrap_or_default()
    }

    fn usesysid(&self, user: &str) -> i32 {
        self.users
            .iter()
            .position(|u| u.0 == user)
            .map_or(FIRST_USESYSID, |i| FIRST_USESYSID + i as i32)
    }

    /// Our tables as the session sees them, keyed by (schema, table) as pg_namespace and
    /// pg_class name them.
    async fn tables(&self) -> Result<HashMap<(String, String), Arc<TableMeta>>> {
        Ok(self.relations().await?.0)
    }

    /// Our tables and views as the session sees them.
    async fn relations(
        &self,
    ) -> Result<(
        HashMap<(String, String), Arc<TableMeta>>,
        HashMap<(String, String), Arc<basalt_catalog::ViewMeta>>,
    )> {
        let mut out = HashMap::new();
        let mut views = HashMap::new();
        for catalog_name in self.catalogs.catalog_names() {
            let Some(catalog) = self.catalogs.catalog(&catalog_name) else {
                continue;
            };
            for schema_name in catalog.schema_names() {
                if schema_name == "pg_catalog" || schema_name == "information_schema" {
                    continue;
                }
                let Some(schema) = catalog.schema(&schema_name) else {
                    continue;
                };
                for table_name in schema.table_names() {
                    let Some(table) = schema.table(&table_name).await? else {
                        continue;
                    };
                    if let Some(t) = table.downcast_ref::<BasaltTable>() {
                        out.insert((schema_name.clone(), table_name), t.meta().clone());
                    } else if let Some(v) = table.downcast_ref::<basalt_planner::ViewStub>() {
                        views.insert((schema_name.clone(), table_name), v.meta().clone());
                    }
                }
            }
        }
        Ok((out, views))
    }

    /// Relation OIDs as datafusion-pg-catalog assigned them: (schema, relation) → oid.
    async fn relation_oids(&self, state: &dyn Session) -> Result<HashMap<(String, String), i32>> {
        let namespaces = self.scan_inner("pg_namespace", state).await?;
        let nsp_oid = int32(&namespaces, "oid")?;
        let nsp_name = utf8(&namespaces, "nspname")?;
        let names: HashMap<i32, String> = (0..namespaces.num_rows())
            .map(|i| (nsp_oid.value(i), nsp_name.value(i).to_string()))
            .collect();
        let classes = self.scan_inner("pg_class", state).await?;
        let oid = int32(&classes, "oid")?;
        let relname = utf8(&classes, "relname")?;
        let relnamespace = int32(&classes, "relnamespace")?;
        Ok((0..classes.num_rows())
            .filter_map(|i| {
                let nsp = names.get(&relnamespace.value(i))?;
                Some(((nsp.clone(), relname.value(i).to_string()), oid.value(i)))
            })
            .collect())
    }

    async fn scan_inner(&self, name: &str, state: &dyn Session) -> Result<RecordBatch> {
        let table =
            self.inner.table(name).await?.ok_or_else(|| {
                DataFusionError::Internal(format!("pg_catalog.{name} is missing"))
            })?;
        scan_all(&table, state).await
    }

    async fn build(
        &self,
        kind: Kind,
        schema: &SchemaRef,
        state: &dyn Session,
    ) -> Result<RecordBatch> {
        match kind {
            Kind::User => self.pg_user(schema),
            Kind::Settings => pg_settings(schema),
            Kind::SvvTables | Kind::SvvAllTables => self.svv_tables(schema).await,
            Kind::SvvExternalSchemas | Kind::SvvExternalTables | Kind::SvvExternalColumns => {
                Ok(RecordBatch::new_empty(schema.clone()))
            }
            Kind::SvvTableInfo => crate::system_tables::svv_table_info(
                &self.database(),
                &self.tables_with_oids(state).await?,
            ),
            Kind::PgTableDef => {
                crate::system_tables::pg_table_def(&self.tables_with_oids(state).await?)
            }
            Kind::StvSlices => crate::system_tables::stv_slices(&self.topology),
            Kind::StlQuery => crate::querylog::stl_query(&self.query_log, &self.database(), |u| {
                Some(self.usesysid(u))
            }),
            Kind::StlScan | Kind::SvlQuerySummary => {
                let oids = self.oids_by_table_id(state).await?;
                let oid = |id: u64| oids.get(&id).copied().unwrap_or(id as i32);
                let userid = |u: &str| Some(self.usesysid(u));
                if kind == Kind::StlScan {
                    crate::querylog::stl_scan(&self.query_log, userid, oid)
                } else {
                    crate::querylog::svl_query_summary(&self.query_log, userid, oid)
                }
            }
            Kind::StlDist | Kind::StlBcast | Kind::StlReturn => {
                let movement = match kind {
                    Kind::StlDist => crate::querylog::Movement::Dist,
                    Kind::StlBcast => crate::querylog::Movement::Bcast,
                    _ => crate::querylog::Movement::Return,
                };
                crate::querylog::stl_movement(
                    &self.query_log,
                    movement,
                    self.topology.slices_per_node,
                    |u| Some(self.usesysid(u)),
                )
            }
            Kind::StlLoadErrors => {
                let oids = self.oids_by_table_id(state).await?;
                crate::loadlog::stl_load_errors(
                    &self.load_log,
                    |u| Some(self.usesysid(u)),
                    |id| oids.get(&id).copied().unwrap_or(id as i32),
                )
            }
            Kind::StlLoadErrorDetail => {
                crate::loadlog::stl_loaderror_detail(&self.load_log, |u| Some(self.usesysid(u)))
            }
            Kind::StlLoadCommits => {
                crate::loadlog::stl_load_commits(&self.load_log, |u| Some(self.usesysid(u)))
            }
            Kind::StlUnloadLog => {
                crate::loadlog::stl_unload_log(&self.load_log, |u| Some(self.usesysid(u)))
            }
            Kind::StvLoadState => {
                crate::loadlog::stv_load_state(&self.load_log, |u| Some(self.usesysid(u)))
            }
            Kind::SvvVacuumProgress => crate::system_tables::svv_vacuum_progress(&self.vacuum),
            Kind::StvBlocklist | Kind::SvvDiskusage => {
                crate::system_tables::blocklist(
                    &self.compute,
                    &self.tables_with_oids(state).await?,
                    kind == Kind::SvvDiskusage,
                )
                .await
            }
            Kind::SvlAutoWorkerAction => {
                crate::system_tables::svl_auto_worker_action(&self.auto_actions.all())
            }
            Kind::SysVacuumHistory => {
                crate::system_tables::sys_vacuum_history(&self.vacuum, &self.database(), |u| {
                    self.usesysid(u)
                })
            }
            Kind::Attribute => self.pg_attribute(schema, state).await,
            Kind::Class => self.pg_class(schema, state).await,
            Kind::Index => self.pg_index(schema, state).await,
            Kind::Attrdef => self.pg_attrdef(schema, state).await,
        }
    }

    /// `svv_tables` / `svv_all_tables`: the user tables the session can see.
    async fn svv_tables(&self, schema: &SchemaRef) -> Result<RecordBatch> {
        let (tables, views) = self.relations().await?;
        let mut tables: Vec<((String, String), &str)> = tables
            .into_keys()
            .map(|k| (k, "BASE TABLE"))
            .chain(views.into_keys().map(|k| (k, "VIEW")))
            .collect();
        tables.sort();
        let db = self
            .catalogs
            .catalog_names()
            .into_iter()
            .next()
            .unwrap_or_default();
        let rows = tables
            .iter()
            .map(|((schema_name, table), kind)| {
                vec![
                    ("table_catalog", ScalarValue::from(db.as_str())),
                    ("database_name", ScalarValue::from(db.as_str())),
                    ("table_schema", ScalarValue::from(schema_name.as_str())),
                    ("schema_name", ScalarValue::from(schema_name.as_str())),
                    ("table_name", ScalarValue::from(table.as_str())),
                    ("table_type", ScalarValue::from(*kind)),
                    ("table_acl", ScalarValue::Utf8(None)),
                    ("remarks", ScalarValue::Utf8(None)),
                ]
            })
            .collect::<Vec<_>>();
        append_rows(&RecordBatch::new_empty(schema.clone()), &rows)
    }

    fn pg_user(&self, schema: &SchemaRef) -> Result<RecordBatch> {
        let rows = self
            .users
            .iter()
            .map(|(name, superuser)| {
                vec![
                    ("usename", ScalarValue::from(name.as_str())),
                    ("usesysid", ScalarValue::Int32(Some(self.usesysid(name)))),
                    ("usecreatedb", ScalarValue::Boolean(Some(*superuser))),
                    ("usesuper", ScalarValue::Boolean(Some(*superuser))),
                    ("usecatupd", ScalarValue::Boolean(Some(*superuser))),
                    ("passwd", ScalarValue::from("********")),
                ]
            })
            .collect::<Vec<_>>();
        append_rows(&RecordBatch::new_empty(schema.clone()), &rows)
    }

    async fn pg_attribute(&self, schema: &SchemaRef, state: &dyn Session) -> Result<RecordBatch> {
        let base = self.scan_inner("pg_attribute", state).await?;
        let (tables, views) = self.relations().await?;
        let oids = self.relation_oids(state).await?;
        let view_by_oid: HashMap<i32, &Arc<basalt_catalog::ViewMeta>> = oids
            .iter()
            .filter_map(|(key, oid)| views.get(key).map(|v| (*oid, v)))
            .collect();
        let by_oid: HashMap<i32, &Arc<TableMeta>> = oids
            .iter()
            .filter_map(|(key, oid)| tables.get(key).map(|t| (*oid, t)))
            .collect();

        let attrelid = int32(&base, "attrelid")?;
        let attname = utf8(&base, "attname")?;
        let mut typid: Vec<i32> = int32(&base, "atttypid")?.values().to_vec();
        let mut typmod: Vec<i32> = int32(&base, "atttypmod")?.values().to_vec();
        let mut notnull: Vec<bool> = bools(&base, "attnotnull")?;
        let mut hasdef: Vec<bool> = bools(&base, "atthasdef")?;
        let mut distkey = vec![false; base.num_rows()];
        let mut sortkeyord = vec![0i32; base.num_rows()];
        let mut encoding = vec![0i16; base.num_rows()];
        for i in 0..base.num_rows() {
            if let Some(view) = view_by_oid.get(&attrelid.value(i))
                && let Some((_, ty)) = view.columns.iter().find(|c| c.0 == attname.value(i))
            {
                typid[i] = ty.pg_oid() as i32;
                typmod[i] = ty.typmod();
                continue;
            }
            let Some(meta) = by_oid.get(&attrelid.value(i)) else {
                continue;
            };
            let name = attname.value(i);
            let Some(col) = meta.columns.iter().find(|c| c.name == name) else {
                continue;
            };
            typid[i] = col.ty.pg_oid() as i32;
            typmod[i] = col.ty.typmod();
            notnull[i] = !col.nullable;
            hasdef[i] = col.default.is_some() || col.identity.is_some();
            distkey[i] = meta.distkey.as_deref() == Some(name);
            if let Some(sk) = &meta.sortkey
                && let Some(pos) = sk.columns.iter().position(|c| c == name)
            {
                let ord = pos as i32 + 1;
                sortkeyord[i] = match sk.kind {
                    basalt_catalog::SortKeyKind::Compound => ord,
                    basalt_catalog::SortKeyKind::Interleaved => -ord,
                };
            }
            encoding[i] = col.encoding.code();
        }
        let mut columns = base.columns().to_vec();
        let fields = base.schema();
        let replace = |columns: &mut Vec<ArrayRef>, name: &str, array: ArrayRef| -> Result<()> {
            let idx = fields.index_of(name)?;
            columns[idx] = array;
            Ok(())
        };
        replace(&mut columns, "atttypid", Arc::new(Int32Array::from(typid)))?;
        replace(
            &mut columns,
            "atttypmod",
            Arc::new(Int32Array::from(typmod)),
        )?;
        replace(
            &mut columns,
            "attnotnull",
            Arc::new(BooleanArray::from(notnull)),
        )?;
        replace(
            &mut columns,
            "atthasdef",
            Arc::new(BooleanArray::from(hasdef)),
        )?;
        columns.push(Arc::new(BooleanArray::from(distkey)));
        columns.push(Arc::new(Int32Array::from(sortkeyord)));
        columns.push(Arc::new(Int16Array::from(encoding)));
        let patched = RecordBatch::try_new(schema.clone(), columns)?;
        // The primary-key index relations have the key columns as attributes (psqlODBC's
        // SQLPrimaryKeys reads them).
        let mut index_rows = vec![];
        for (key, oid) in &oids {
            let Some(meta) = tables.get(key) else {
                continue;
            };
            for (n, name) in meta.constraints.primary_key.iter().enumerate() {
                let Some(col) = meta.columns.iter().find(|c| &c.name == name) else {
                    continue;
                };
                index_rows.push(vec![
                    (
                        "attrelid",
                        ScalarValue::Int32(Some(PK_INDEX_OID_BASE + oid)),
                    ),
                    ("attname", ScalarValue::from(name.as_str())),
                    ("atttypid", ScalarValue::Int32(Some(col.ty.pg_oid() as i32))),
                    ("atttypmod", ScalarValue::Int32(Some(col.ty.typmod()))),
                    ("attnum", ScalarValue::Int16(Some(n as i16 + 1))),
                    ("attstattarget", ScalarValue::Int32(Some(-1))),
                    ("attlen", ScalarValue::Int16(Some(-1))),
                    ("attcacheoff", ScalarValue::Int32(Some(-1))),
                    ("attnotnull", ScalarValue::Boolean(Some(true))),
                    ("attislocal", ScalarValue::Boolean(Some(true))),
                    ("attalign", ScalarValue::from("i")),
                    ("attstorage", ScalarValue::from("p")),
                ]);
            }
        }
        append_rows(&patched, &index_rows)
    }

    async fn pg_class(&self, schema: &SchemaRef, state: &dyn Session) -> Result<RecordBatch> {
        let base = self.scan_inner("pg_class", state).await?;
        let tables = self.tables().await?;
        let oids = self.relation_oids(state).await?;
        let by_oid: HashMap<i32, &Arc<TableMeta>> = oids
            .iter()
            .filter_map(|(key, oid)| tables.get(key).map(|t| (*oid, t)))
            .collect();
        let oid = int32(&base, "oid")?;
        let mut owner: Vec<i32> = int32(&base, "relowner")?.values().to_vec();
        let mut diststyle: Vec<Option<i32>> = vec![None; base.num_rows()];
        let mut pk_rows = vec![];
        let relnamespace = int32(&base, "relnamespace")?;
        for i in 0..base.num_rows() {
            let Some(meta) = by_oid.get(&oid.value(i)) else {
                continue;
            };
            owner[i] = self.usesysid(&meta.owner);
            diststyle[i] = Some(meta.diststyle.reldiststyle());
            if !meta.constraints.primary_key.is_empty() {
                pk_rows.push(vec![
                    (
                        "oid",
                        ScalarValue::Int32(Some(PK_INDEX_OID_BASE + oid.value(i))),
                    ),
                    ("relname", ScalarValue::from(format!("{}_pkey", meta.name))),
                    (
                        "relnamespace",
                        ScalarValue::Int32(Some(relnamespace.value(i))),
                    ),
                    ("relowner", ScalarValue::Int32(Some(owner[i]))),
                    ("relam", ScalarValue::Int32(Some(BTREE_AM_OID))),
                    ("relkind", ScalarValue::from("i")),
                    ("relpersistence", ScalarValue::from("p")),
                    (
                        "relnatts",
                        ScalarValue::Int16(Some(meta.constraints.primary_key.len() as i16)),
                    ),
                    ("relispopulated", ScalarValue::Boolean(Some(true))),
                    ("relreplident", ScalarValue::from("n")),
                ]);
            }
        }
        let mut columns = base.columns().to_vec();
        let idx = base.schema().index_of("relowner")?;
        columns[idx] = Arc::new(Int32Array::from(owner));
        columns.push(Arc::new(Int32Array::from(diststyle)));
        // No GRANTs yet: every relation has its default privileges (NULL acl).
        columns.push(datafusion::arrow::array::new_null_array(
            &DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            base.num_rows(),
        ));
        let patched = RecordBatch::try_new(schema.clone(), columns)?;
        append_rows(&patched, &pk_rows)
    }

    async fn pg_index(&self, schema: &SchemaRef, state: &dyn Session) -> Result<RecordBatch> {
        let base = self.scan_inner("pg_index", state).await?;
        let tables = self.tables().await?;
        let oids = self.relation_oids(state).await?;
        let mut rows = vec![];
        for (key, meta) in &tables {
            let pk = &meta.constraints.primary_key;
            let Some(oid) = oids.get(key) else { continue };
            if pk.is_empty() {
                continue;
            }
            let attnums: Vec<String> = pk
                .iter()
                .filter_map(|c| meta.columns.iter().position(|m| &m.name == c))
                .map(|p| (p + 1).to_string())
                .collect();
            let zeros = vec!["0"; attnums.len()].join(" ");
            rows.push(vec![
                (
                    "indexrelid",
                    ScalarValue::Int32(Some(PK_INDEX_OID_BASE + oid)),
                ),
                ("indrelid", ScalarValue::Int32(Some(*oid))),
                ("indnatts", ScalarValue::Int16(Some(attnums.len() as i16))),
                (
                    "indnkeyatts",
                    ScalarValue::Int16(Some(attnums.len() as i16)),
                ),
                ("indisunique", ScalarValue::Boolean(Some(true))),
                ("indisprimary", ScalarValue::Boolean(Some(true))),
                ("indimmediate", ScalarValue::Boolean(Some(true))),
                ("indisvalid", ScalarValue::Boolean(Some(true))),
                ("indisready", ScalarValue::Boolean(Some(true))),
                ("indislive", ScalarValue::Boolean(Some(true))),
                ("indkey", ScalarValue::from(attnums.join(" "))),
                ("indcollation", ScalarValue::from(zeros.as_str())),
                ("indclass", ScalarValue::from(zeros.as_str())),
                ("indoption", ScalarValue::from(zeros.as_str())),
            ]);
        }
        let base = RecordBatch::try_new(schema.clone(), base.columns().to_vec())?;
        append_rows(&base, &rows)
    }

    async fn pg_attrdef(&self, schema: &SchemaRef, state: &dyn Session) -> Result<RecordBatch> {
        let inner = self.scan_inner("pg_attrdef", state).await?;
        let mut columns = inner.columns().to_vec();
        columns.push(datafusion::arrow::array::new_null_array(
            &DataType::Utf8,
            inner.num_rows(),
        ));
        let base = RecordBatch::try_new(schema.clone(), columns)?;
        let tables = self.tables().await?;
        let oids = self.relation_oids(state).await?;
        let mut rows = vec![];
        let mut next = ATTRDEF_OID_BASE;
        for (key, meta) in &tables {
            let Some(oid) = oids.get(key) else { continue };
            for (pos, col) in meta.columns.iter().enumerate() {
                let expr = match (&col.identity, &col.default) {
                    (Some(id), _) => format!(
                        "\"identity\"({}, {}, '{},{}'::text)",
                        oid, pos, id.seed, id.step
                    ),
                    (None, Some(default)) => default.clone(),
                    (None, None) => continue,
                };
                next += 1;
                rows.push(vec![
                    ("oid", ScalarValue::Int32(Some(next))),
                    ("adrelid", ScalarValue::Int32(Some(*oid))),
                    ("adnum", ScalarValue::Int16(Some(pos as i16 + 1))),
                    ("adbin", ScalarValue::from(expr.clone())),
                    ("adsrc", ScalarValue::from(expr)),
                ]);
            }
        }
        append_rows(&base, &rows)
    }

    /// The schema of an overlaid table: the inner table's, plus Redshift's extra columns.
    async fn overlay_schema(&self, kind: Kind) -> Result<SchemaRef> {
        let extra: Vec<Field> = match kind {
            Kind::User => {
                return Ok(Arc::new(Schema::new(vec![
                    Field::new("usename", DataType::Utf8, false),
                    Field::new("usesysid", DataType::Int32, false),
                    Field::new("usecreatedb", DataType::Boolean, false),
                    Field::new("usesuper", DataType::Boolean, false),
                    Field::new("usecatupd", DataType::Boolean, false),
                    Field::new("passwd", DataType::Utf8, true),
                    Field::new("valuntil", DataType::Utf8, true),
                    Field::new("useconfig", DataType::Utf8, true),
                ])));
            }
            Kind::SvvTableInfo => return Ok(crate::system_tables::svv_table_info_schema()),
            Kind::PgTableDef => return Ok(crate::system_tables::pg_table_def_schema()),
            Kind::StvSlices => return Ok(crate::system_tables::stv_slices_schema()),
            Kind::StlQuery => return Ok(crate::querylog::stl_query_schema()),
            Kind::StlScan => return Ok(crate::querylog::stl_scan_schema()),
            Kind::StlDist | Kind::StlBcast | Kind::StlReturn => {
                return Ok(crate::querylog::stl_movement_schema());
            }
            Kind::SvlQuerySummary => return Ok(crate::querylog::svl_query_summary_schema()),
            Kind::StlLoadErrors => return Ok(crate::loadlog::stl_load_errors_schema()),
            Kind::StlLoadErrorDetail => {
                return Ok(crate::loadlog::stl_loaderror_detail_schema());
            }
            Kind::StlLoadCommits => return Ok(crate::loadlog::stl_load_commits_schema()),
            Kind::StlUnloadLog => return Ok(crate::loadlog::stl_unload_log_schema()),
            Kind::StvLoadState => return Ok(crate::loadlog::stv_load_state_schema()),
            Kind::SvvVacuumProgress => {
                return Ok(crate::system_tables::svv_vacuum_progress_schema());
            }
            Kind::SysVacuumHistory => return Ok(crate::system_tables::sys_vacuum_history_schema()),
            Kind::StvBlocklist => return Ok(crate::system_tables::stv_blocklist_schema()),
            Kind::SvvDiskusage => return Ok(crate::system_tables::svv_diskusage_schema()),
            Kind::SvlAutoWorkerAction => {
                return Ok(crate::system_tables::svl_auto_worker_action_schema());
            }
            Kind::SvvTables => {
                return Ok(utf8_schema(&[
                    "table_catalog",
                    "table_schema",
                    "table_name",
                    "table_type",
                    "remarks",
                ]));
            }
            Kind::SvvAllTables => {
                return Ok(utf8_schema(&[
                    "database_name",
                    "schema_name",
                    "table_name",
                    "table_type",
                    "table_acl",
                    "remarks",
                ]));
            }
            Kind::SvvExternalSchemas => {
                return Ok(Arc::new(Schema::new(vec![
                    Field::new("esoid", DataType::Int32, true),
                    Field::new("eskind", DataType::Int16, true),
                    Field::new("schemaname", DataType::Utf8, true),
                    Field::new("esowner", DataType::Int32, true),
                    Field::new("databasename", DataType::Utf8, true),
                    Field::new("esoptions", DataType::Utf8, true),
                ])));
            }
            Kind::SvvExternalTables => {
                return Ok(utf8_schema(&[
                    "schemaname",
                    "tablename",
                    "location",
                    "input_format",
                    "output_format",
                    "serialization_lib",
                    "serde_parameters",
                    "compressed",
                    "parameters",
                    "tabletype",
                ]));
            }
            Kind::SvvExternalColumns => {
                return Ok(Arc::new(Schema::new(vec![
                    Field::new("schemaname", DataType::Utf8, true),
                    Field::new("tablename", DataType::Utf8, true),
                    Field::new("columnname", DataType::Utf8, true),
                    Field::new("external_type", DataType::Utf8, true),
                    Field::new("columnnum", DataType::Int32, true),
                    Field::new("part_key", DataType::Int32, true),
                    Field::new("is_nullable", DataType::Utf8, true),
                ])));
            }
            Kind::Attribute => vec![
                Field::new("attisdistkey", DataType::Boolean, false),
                Field::new("attsortkeyord", DataType::Int32, false),
                Field::new("attencodingtype", DataType::Int16, false),
            ],
            Kind::Class => vec![
                Field::new("reldiststyle", DataType::Int32, true),
                Field::new(
                    "relacl",
                    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                    true,
                ),
            ],
            Kind::Attrdef => vec![Field::new("adsrc", DataType::Utf8, true)],
            Kind::Index | Kind::Settings => vec![],
        };
        let name = match kind {
            Kind::Attribute => "pg_attribute",
            Kind::Class => "pg_class",
            Kind::Index => "pg_index",
            Kind::Attrdef => "pg_attrdef",
            Kind::Settings => "pg_settings",
            _ => unreachable!("handled above"),
        };
        let inner =
            self.inner.table(name).await?.ok_or_else(|| {
                DataFusionError::Internal(format!("pg_catalog.{name} is missing"))
            })?;
        let mut fields: Vec<Field> = inner
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.extend(extra);
        Ok(Arc::new(Schema::new(fields)))
    }
}

#[async_trait]
impl SchemaProvider for PgCatalogOverlay {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.inner.table_names();
        names.extend(OVERLAY_ONLY.iter().map(|n| n.to_string()));
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(kind) = Kind::of(&name.to_ascii_lowercase()) else {
            return self.inner.table(name).await;
        };
        let schema = self.overlay_schema(kind).await?;
        Ok(Some(Arc::new(OverlayTable {
            kind,
            schema,
            overlay: Arc::new(PgCatalogOverlay {
                inner: self.inner.clone(),
                catalogs: self.catalogs.clone(),
                users: self.users.clone(),
                topology: self.topology,
                query_log: self.query_log.clone(),
                load_log: self.load_log.clone(),
                vacuum: self.vacuum.clone(),
                compute: self.compute.clone(),
                auto_actions: self.auto_actions.clone(),
            }),
        })))
    }

    fn table_exist(&self, name: &str) -> bool {
        Kind::of(&name.to_ascii_lowercase()).is_some() || self.inner.table_exist(name)
    }
}

#[derive(Debug)]
struct OverlayTable {
    kind: Kind,
    schema: SchemaRef,
    overlay: Arc<PgCatalogOverlay>,
}

#[async_trait]
impl TableProvider for OverlayTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = self.overlay.build(self.kind, &self.schema, state).await?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.schema.clone(),
            projection.cloned(),
        )?)
    }
}

fn utf8_schema(names: &[&str]) -> SchemaRef {
    Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ))
}

fn pg_settings(schema: &SchemaRef) -> Result<RecordBatch> {
    let rows = crate::settings::DEFAULTS
        .iter()
        .map(|(name, default, desc)| {
            vec![
                ("name", ScalarValue::from(*name)),
                ("setting", ScalarValue::from(*default)),
                ("short_desc", ScalarValue::from(*desc)),
                ("reset_val", ScalarValue::from(*default)),
                ("boot_val", ScalarValue::from(*default)),
                ("source", ScalarValue::from("default")),
                ("context", ScalarValue::from("user")),
                ("vartype", ScalarValue::from("string")),
            ]
        })
        .collect::<Vec<_>>();
    append_rows(&RecordBatch::new_empty(schema.clone()), &rows)
}

async fn scan_all(table: &Arc<dyn TableProvider>, state: &dyn Session) -> Result<RecordBatch> {
    let plan = table.scan(state, None, &[], None).await?;
    let batches = collect(plan, state.task_ctx()).await?;
    Ok(concat_batches(&table.schema(), &batches)?)
}

/// `batch` with `rows` appended; columns a row leaves out are NULL, or the type's default
/// (0, '', false) where the column is NOT NULL.
fn append_rows(batch: &RecordBatch, rows: &[Vec<(&str, ScalarValue)>]) -> Result<RecordBatch> {
    if rows.is_empty() {
        return Ok(batch.clone());
    }
    let schema = batch.schema();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        let values = rows
            .iter()
            .map(
                |row| match row.iter().find(|(name, _)| *name == field.name()) {
                    Some((_, v)) => v.cast_to(field.data_type()),
                    None if field.is_nullable() => ScalarValue::try_from(field.data_type()),
                    None => ScalarValue::new_default(field.data_type()),
                },
            )
            .collect::<Result<Vec<_>>>()?;
        let added = ScalarValue::iter_to_array(values)?;
        columns.push(concat(&[batch.column(i).as_ref(), added.as_ref()])?);
    }
    Ok(RecordBatch::try_new(schema, columns)?)
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| DataFusionError::Internal(format!("pg_catalog column {name} is missing")))
}

fn int32<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Int32Array> {
    column(batch, name)?
        .as_primitive_opt::<Int32Type>()
        .ok_or_else(|| DataFusionError::Internal(format!("pg_catalog column {name} is not int4")))
}

fn utf8<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray> {
    column(batch, name)?
        .as_string_opt::<i32>()
        .ok_or_else(|| DataFusionError::Internal(format!("pg_catalog column {name} is not text")))
}

fn bools(batch: &RecordBatch, name: &str) -> Result<Vec<bool>> {
    let a = column(batch, name)?.as_boolean_opt().ok_or_else(|| {
        DataFusionError::Internal(format!("pg_catalog column {name} is not bool"))
    })?;
    Ok((0..a.len()).map(|i| a.is_valid(i) && a.value(i)).collect())
}

/// `format_encoding(attencodingtype)`: the ENCODE name of a column (Redshift).
pub(crate) fn format_encoding_udf() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    create_udf(
        "format_encoding",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let codes = ColumnarValue::values_to_arrays(args)?;
            let codes = codes[0].as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            let names: StringArray = codes
                .iter()
                .map(|c| {
                    c.and_then(basalt_catalog::Encoding::from_code)
                        .map(|e| e.as_str())
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(names)))
        }),
    )
}

/// `basalt_expandarray(int2vector)`: the `(x, n)` records of `_pg_expandarray`, as a list
/// the caller unnests. An int2vector is text in our pg_catalog (`'1 3'`).
pub(crate) fn expandarray_udf() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::arrow::array::{ListBuilder, StructBuilder};
    use datafusion::arrow::datatypes::Fields;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    let fields = Fields::from(vec![
        Field::new("x", DataType::Int32, true),
        Field::new("n", DataType::Int32, true),
    ]);
    let item = Field::new("item", DataType::Struct(fields.clone()), true);
    create_udf(
        "basalt_expandarray",
        vec![DataType::Utf8],
        DataType::List(Arc::new(item.clone())),
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let input = ColumnarValue::values_to_arrays(args)?;
            let text = input[0].as_string::<i32>();
            let mut out = ListBuilder::new(StructBuilder::from_fields(fields.clone(), 0))
                .with_field(item.clone());
            for value in text.iter() {
                let Some(value) = value else {
                    out.append_null();
                    continue;
                };
                let entries = out.values();
                for (n, x) in value.split_whitespace().enumerate() {
                    let x: i32 = x.parse().map_err(|_| {
                        DataFusionError::Execution(format!("invalid int2vector \"{value}\""))
                    })?;
                    entries
                        .field_builder::<datafusion::arrow::array::Int32Builder>(0)
                        .expect("x is int4")
                        .append_value(x);
                    entries
                        .field_builder::<datafusion::arrow::array::Int32Builder>(1)
                        .expect("n is int4")
                        .append_value(n as i32 + 1);
                    entries.append(true);
                }
                out.append(true);
            }
            Ok(ColumnarValue::Array(Arc::new(out.finish())))
        }),
    )
}

/// `basalt_int2vector_at(v, i, base)`: element `i` of an int2vector or int2[] column, which
/// are text in our pg_catalog (`'1 3'`, `'[1, 3]'`), counting from `base` (0 for int2vector,
/// 1 for arrays, as Postgres subscripts them); NULL past the ends.
pub(crate) fn int2vector_at_udf() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::arrow::datatypes::Int64Type;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    create_udf(
        "basalt_int2vector_at",
        vec![DataType::Utf8, DataType::Int64, DataType::Int64],
        DataType::Int16,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let text = arrays[0].as_string::<i32>();
            let index = arrays[1].as_primitive::<Int64Type>();
            let base = arrays[2].as_primitive::<Int64Type>();
            let out: Int16Array = (0..text.len())
                .map(|row| {
                    if text.is_null(row) || index.is_null(row) || base.is_null(row) {
                        return None;
                    }
                    let i = usize::try_from(index.value(row) - base.value(row)).ok()?;
                    text.value(row)
                        .split(|c: char| !(c.is_ascii_digit() || c == '-'))
                        .filter(|t| !t.is_empty())
                        .nth(i)?
                        .parse::<i16>()
                        .ok()
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    )
}

/// `pg_get_expr(expr, relation [, pretty])`: our catalogs store expressions (pg_attrdef's
/// `adbin`) as SQL text already, so this returns it as it is.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct PgGetExpr {
    signature: datafusion::logical_expr::Signature,
}

impl PgGetExpr {
    pub(crate) fn udf() -> datafusion::logical_expr::ScalarUDF {
        use datafusion::logical_expr::{Signature, TypeSignature, Volatility};
        datafusion::logical_expr::ScalarUDF::new_from_impl(PgGetExpr {
            signature: Signature::one_of(
                vec![TypeSignature::Any(2), TypeSignature::Any(3)],
                Volatility::Stable,
            ),
        })
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for PgGetExpr {
    fn name(&self) -> &str {
        "pg_get_expr"
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> Result<datafusion::logical_expr::ColumnarValue> {
        use datafusion::logical_expr::ColumnarValue;
        Ok(match &args.args[0] {
            ColumnarValue::Scalar(s) => ColumnarValue::Scalar(s.cast_to(&DataType::Utf8)?),
            ColumnarValue::Array(a) => {
                ColumnarValue::Array(datafusion::arrow::compute::cast(a, &DataType::Utf8)?)
            }
        })
    }
}

/// `to_regtype(name)`: the OID of a type by name, NULL when there is none (SQLAlchemy asks
/// for `hstore` on connect).
pub(crate) fn to_regtype_udf() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    fn oid(name: &str) -> Option<i32> {
        let name = name
            .trim()
            .trim_start_matches("pg_catalog.")
            .to_ascii_lowercase();
        Some(match name.as_str() {
            "bool" | "boolean" => 16,
            "bytea" => 17,
            "\"char\"" => 18,
            "name" => 19,
            "int8" | "bigint" => 20,
            "int2" | "smallint" => 21,
            "int4" | "integer" | "int" => 23,
            "text" => 25,
            "oid" => 26,
            "json" => 114,
            "float4" | "real" => 700,
            "float8" | "double precision" => 701,
            "bpchar" | "char" | "character" => 1042,
            "varchar" | "character varying" => 1043,
            "date" => 1082,
            "time" | "time without time zone" => 1083,
            "timestamp" | "timestamp without time zone" => 1114,
            "timestamptz" | "timestamp with time zone" => 1184,
            "interval" => 1186,
            "numeric" | "decimal" => 1700,
            "uuid" => 2950,
            "jsonb" => 3802,
            _ => return None,
        })
    }
    create_udf(
        "to_regtype",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Stable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let out: Int32Array = arrays[0]
                .as_string::<i32>()
                .iter()
                .map(|n| n.and_then(oid))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    )
}

/// Catalog functions whose answer is always NULL here: comments (`col_description`,
/// `obj_description`; COMMENT ON is not supported yet), view definitions (no views yet),
/// serial sequences (SERIAL columns are identity columns).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct NullText {
    name: String,
    signature: datafusion::logical_expr::Signature,
}

impl NullText {
    pub(crate) fn udf(name: &str) -> datafusion::logical_expr::ScalarUDF {
        use datafusion::logical_expr::{Signature, Volatility};
        datafusion::logical_expr::ScalarUDF::new_from_impl(NullText {
            name: name.to_string(),
            signature: Signature::variadic_any(Volatility::Stable),
        })
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for NullText {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(
        &self,
        _args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> Result<datafusion::logical_expr::ColumnarValue> {
        Ok(datafusion::logical_expr::ColumnarValue::Scalar(
            ScalarValue::Utf8(None),
        ))
    }
}
