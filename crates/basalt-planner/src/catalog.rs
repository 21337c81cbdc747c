//! BasaltDB's catalog as a DataFusion `CatalogProvider`.
//!
//! A session plans every statement against a [`CatalogView`]: the catalog as its transaction
//! sees it, plus its temporary tables. The session swaps the view before each statement; the
//! providers read through it, so DataFusion never sees a half-applied catalog.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use basalt_catalog::{CatalogState, TableMeta};
use basalt_storage::ComputeCluster;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::error::{DataFusionError, Result};
use parking_lot::RwLock;

use crate::{BasaltTable, ViewStub};

/// The catalog a session plans against.
#[derive(Debug)]
pub struct CatalogView {
    state: RwLock<Arc<CatalogState>>,
    /// The session's temporary schema; its tables shadow tables of the same name in the
    /// default schema (Redshift puts the session's temp schema first on the search path).
    temp_schema: RwLock<Option<String>>,
}

impl CatalogView {
    pub fn new(state: Arc<CatalogState>) -> Self {
        CatalogView {
            state: RwLock::new(state),
            temp_schema: RwLock::new(None),
        }
    }

    pub fn set(&self, state: Arc<CatalogState>) {
        *self.state.write() = state;
    }

    pub fn get(&self) -> Arc<CatalogState> {
        self.state.read().clone()
    }

    pub fn set_temp_schema(&self, schema: Option<String>) {
        *self.temp_schema.write() = schema;
    }

    /// A temporary table of the session, by name.
    pub fn temp(&self, name: &str) -> Option<Arc<TableMeta>> {
        let schema = self.temp_schema.read().clone()?;
        self.get()
            .table_by_name(&schema, name)
            .cloned()
            .map(Arc::new)
    }
}

/// The `dev` database as DataFusion sees it.
#[derive(Debug)]
pub struct BasaltCatalog {
    view: Arc<CatalogView>,
    compute: Arc<ComputeCluster>,
    default_schema: String,
    /// Schemas served by other providers (pg_catalog, system tables).
    extra: RwLock<HashMap<String, Arc<dyn SchemaProvider>>>,
}

impl BasaltCatalog {
    pub fn new(view: Arc<CatalogView>, compute: Arc<ComputeCluster>) -> Self {
        BasaltCatalog {
            view,
            compute,
            default_schema: "public".into(),
            extra: RwLock::new(HashMap::new()),
        }
    }
}

impl CatalogProvider for BasaltCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.view.get().schemas.keys().cloned().collect();
        names.extend(self.extra.read().keys().cloned());
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if let Some(s) = self.extra.read().get(name) {
            return Some(s.clone());
        }
        if !self.view.get().schemas.contains_key(name) {
            return None;
        }
        Some(Arc::new(BasaltSchema {
            name: name.to_string(),
            is_default: name == self.default_schema,
            view: self.view.clone(),
            compute: self.compute.clone(),
        }))
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        Ok(self.extra.write().insert(name.to_string(), schema))
    }
}

/// Appended to a table's name, names the table with its row ids
/// ([`basalt_storage::ROW_ID_COLUMNS`] after its columns). No SQL a user types reaches it: the
/// suffix starts with a control character.
pub const ROW_IDS_SUFFIX: &str = "\u{1}rowids";

/// One schema of the catalog.
#[derive(Debug)]
pub struct BasaltSchema {
    name: String,
    is_default: bool,
    view: Arc<CatalogView>,
    compute: Arc<ComputeCluster>,
}

#[async_trait]
impl SchemaProvider for BasaltSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .view
            .get()
            .tables
            .values()
            .filter(|t| t.schema == self.name)
            .map(|t| t.name.clone())
            .collect();
        // Temporary tables are listed once, in their own schema (pg_temp_<session>); the
        // default schema only resolves their names first.
        names.extend(
            self.view
                .get()
                .views
                .values()
                .filter(|v| v.schema == self.name)
                .map(|v| v.name.clone()),
        );
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        let name = name.trim_start_matches('#');
        // `<table>` + ROW_IDS_SUFFIX: the table with its row ids (DELETE and UPDATE).
        let (name, row_ids) = match name.strip_suffix(ROW_IDS_SUFFIX) {
            Some(base) => (base, true),
            None => (name, false),
        };
        let provider = |t: Arc<TableMeta>| -> Arc<dyn TableProvider> {
            if row_ids {
                Arc::new(BasaltTable::with_row_ids(t, self.compute.clone()))
            } else {
                Arc::new(BasaltTable::new(t, self.compute.clone()))
            }
        };
        if self.is_default
            && let Some(t) = self.view.temp(name)
        {
            return Ok(Some(provider(t)));
        }
        let state = self.view.get();
        if let Some(t) = state.table_by_name(&self.name, name) {
            return Ok(Some(provider(Arc::new(t.clone()))));
        }
        if row_ids {
            return Ok(None);
        }
        Ok(state
            .view(&self.name, name)
            .map(|v| Arc::new(ViewStub::new(Arc::new(v.clone()))) as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        let name = name.trim_start_matches('#');
        let state = self.view.get();
        (self.is_default && self.view.temp(name).is_some())
            || state.table_by_name(&self.name, name).is_some()
            || state.view(&self.name, name).is_some()
    }
}
