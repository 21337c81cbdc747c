//! Views: `CREATE [OR REPLACE] VIEW`, `DROP VIEW`, and their expansion.
//!
//! A view is stored as its query text. Before a statement is planned, every reference to a
//! view in a FROM clause is replaced by the view's query as a derived table (named like the
//! view, with the view's column names), repeatedly, so views over views expand too. Bound
//! views are checked when created, and a table or view they read cannot be dropped without
//! CASCADE; late-binding views (`WITH NO SCHEMA BINDING`, Redshift) are checked only when
//! queried.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use basalt_catalog::{CatalogError, CatalogState, SqlType, ViewMeta};
use basalt_sql::sqlparser::ast::{
    CreateView, Ident, ObjectName, Query, Statement, TableAlias, TableAliasColumnDef, TableFactor,
    VisitMut, Visitor, VisitorMut,
};

use crate::session::{StatementOutput, split_name};
use crate::{NodeError, Session};

/// How deep views may nest before expansion gives up (a view cannot refer to itself).
const MAX_VIEW_DEPTH: usize = 32;

impl Session {
    /// Replace every view a statement reads by its query.
    pub(crate) fn expand_views(&self, stmt: &mut Statement) -> Result<(), NodeError> {
        let state = match &self.txn {
            Some(t) => t.txn.state().clone(),
            None => (*self.leader.catalog().snapshot()).clone(),
        };
        if state.views.is_empty() {
            return Ok(());
        }
        let temp = self.temp_schema();
        for _ in 0..MAX_VIEW_DEPTH {
            let ctes = cte_names(stmt);
            let mut expander = Expander {
                state: &state,
                temp: &temp,
                ctes: &ctes,
                changed: false,
                error: None,
            };
            let _ = stmt.visit(&mut expander);
            if let Some(e) = expander.error {
                return Err(e);
            }
            if !expander.changed {
                return Ok(());
            }
        }
        Err(NodeError::invalid(
            "42P17",
            format!(
                "infinite recursion detected in views (nested more than {MAX_VIEW_DEPTH} deep)"
            ),
        ))
    }

    pub(crate) async fn create_view(
        &mut self,
        cv: &CreateView,
    ) -> Result<StatementOutput, NodeError> {
        if cv.materialized {
            return Err(NodeError::unsupported("CREATE MATERIALIZED VIEW"));
        }
        if cv.temporary {
            return Err(NodeError::unsupported("CREATE TEMPORARY VIEW"));
        }
        let (schema, name) = split_name(&cv.name)?;
        let schema = schema.unwrap_or_else(|| "public".to_string());
        let state = self.txn_mut().txn.state().clone();
        if !state.schemas.contains_key(&schema) {
            return Err(CatalogError::SchemaNotFound { name: schema }.into());
        }
        if state.table_by_name(&schema, &name).is_some() {
            return Err(CatalogError::TableExists { name: name.clone() }.into());
        }
        if state.view(&schema, &name).is_some() && !cv.or_replace {
            if cv.if_not_exists {
                return Ok(StatementOutput::command("CREATE VIEW"));
            }
            return Err(CatalogError::TableExists { name: name.clone() }.into());
        }
        let listed: Vec<String> = cv
            .columns
            .iter()
            .map(|c| crate::session::ident_name(&c.name))
            .collect();
        // Plan the query to learn (and, for a bound view, check) its columns.
        let mut query = Statement::Query(cv.query.clone());
        basalt_planner::redshift::rewrite(&mut query)?;
        let planned = async {
            self.expand_views(&mut query)?;
            let (_state, _pin) = self.refresh_view();
            let plan = crate::session::plan_statement(&self.ctx.state(), query).await?;
            Ok::<_, NodeError>(plan.schema().as_arrow().clone())
        }
        .await;
        let columns = match planned {
            Ok(schema) => {
                if listed.len() > schema.fields().len() {
                    return Err(NodeError::invalid(
                        "42601",
                        "CREATE VIEW specifies more column names than columns",
                    ));
                }
                let names: Vec<String> = schema
                    .fields()
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        listed
                            .get(i)
                            .cloned()
                            .unwrap_or_else(|| crate::pg::visible_name(f.name()))
                    })
                    .collect();
                let mut seen = BTreeSet::new();
                for n in &names {
                    if !seen.insert(n) {
                        return Err(NodeError::invalid(
                            "42701",
                            format!("column \"{n}\" specified more than once"),
                        ));
                    }
                }
                names
                    .into_iter()
                    .zip(schema.fields().iter())
                    .map(|(n, f)| {
                        let ty = f
                            .metadata()
                            .get(basalt_catalog::SQL_TYPE_METADATA_KEY)
                            .and_then(|m| SqlType::from_metadata(m))
                            .or_else(|| SqlType::from_arrow(f.data_type()))
                            .unwrap_or(SqlType::Varchar(basalt_catalog::VARCHAR_MAX));
                        (n, ty)
                    })
                    .collect()
            }
            // A late-binding view may read tables that do not exist yet.
            Err(_) if cv.with_no_schema_binding => vec![],
            Err(e) => return Err(e),
        };
        let view = ViewMeta {
            schema,
            name,
            query: cv.query.to_string(),
            columns,
            column_list: !listed.is_empty(),
            late_binding: cv.with_no_schema_binding,
            owner: self.user.clone(),
            created_at: chrono::Utc::now()
                .format("%Y-%m-%d %H:%M:%S%.6f")
                .to_string(),
        };
        self.txn_mut().txn.put_view(view);
        Ok(StatementOutput::command("CREATE VIEW"))
    }

    pub(crate) fn drop_views(
        &mut self,
        names: &[ObjectName],
        if_exists: bool,
        cascade: bool,
    ) -> Result<StatementOutput, NodeError> {
        for n in names {
            let (schema, name) = split_name(n)?;
            let schema = schema.unwrap_or_else(|| "public".to_string());
            let state = self.txn_mut().txn.state().clone();
            if state.view(&schema, &name).is_none() {
                if state.table_by_name(&schema, &name).is_some() {
                    return Err(NodeError::invalid(
                        "42809",
                        format!("\"{name}\" is not a view"),
                    ));
                }
                if if_exists {
                    continue;
                }
                return Err(NodeError::invalid(
                    "42P01",
                    format!("view \"{name}\" does not exist"),
                ));
            }
            self.drop_dependents(&state, &schema, &name, cascade)?;
            self.txn_mut().txn.remove_view(&schema, &name);
        }
        Ok(StatementOutput::command("DROP VIEW"))
    }

    /// Before dropping relation `schema.name`: the bound views reading it block the drop, or
    /// with CASCADE are dropped first (and views reading them, and so on).
    pub(crate) fn drop_dependents(
        &mut self,
        state: &CatalogState,
        schema: &str,
        name: &str,
        cascade: bool,
    ) -> Result<(), NodeError> {
        let mut pending = vec![(schema.to_string(), name.to_string())];
        let mut dropped = BTreeSet::new();
        while let Some(target) = pending.pop() {
            for v in state.views.values() {
                let key = (v.schema.clone(), v.name.clone());
                if v.late_binding || dropped.contains(&key) || key == target {
                    continue;
                }
                if !view_reads(v, &target.0, &target.1) {
                    continue;
                }
                if !cascade {
                    let kind = if state.view(&target.0, &target.1).is_some() {
                        "view"
                    } else {
                        "table"
                    };
                    return Err(NodeError::invalid(
                        "2BP01",
                        format!(
                            "cannot drop {kind} {} because other objects depend on it",
                            target.1
                        ),
                    ));
                }
                dropped.insert(key.clone());
                pending.push(key);
            }
        }
        for (s, n) in dropped {
            self.txn_mut().txn.remove_view(&s, &n);
        }
        Ok(())
    }
}

impl Session {
    /// A table renamed under bound views: they follow it, as Postgres views (bound by OID)
    /// do; their stored queries name the new table.
    pub(crate) fn rename_in_views(
        &mut self,
        state: &CatalogState,
        schema: &str,
        old: &str,
        new: &str,
    ) -> Result<(), NodeError> {
        for v in state.views.values() {
            if v.late_binding || !view_reads(v, schema, old) {
                continue;
            }
            let Some(Statement::Query(mut query)) =
                basalt_sql::parse(&v.query)?.pop().map(|p| p.statement)
            else {
                continue;
            };
            // The reference keeps its old name as an alias, so `old.column` still resolves.
            struct Rename<'a> {
                schema: &'a str,
                old: &'a str,
                new: &'a str,
            }
            impl VisitorMut for Rename<'_> {
                type Break = ();
                fn pre_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
                    if let TableFactor::Table { name, alias, .. } = t
                        && let Ok((s, n)) = split_name(name)
                        && n == self.old
                        && s.as_deref().unwrap_or("public") == self.schema
                        && let Some(last) = name.0.last_mut()
                    {
                        *last = basalt_sql::sqlparser::ast::ObjectNamePart::Identifier(
                            Ident::with_quote('"', self.new),
                        );
                        if alias.is_none() {
                            *alias = Some(TableAlias {
                                explicit: true,
                                name: Ident::with_quote('"', self.old),
                                columns: vec![],
                                at: None,
                            });
                        }
                    }
                    ControlFlow::Continue(())
                }
            }
            let _ = query.visit(&mut Rename { schema, old, new });
            let mut renamed = v.clone();
            renamed.query = query.to_string();
            self.txn_mut().txn.put_view(renamed);
        }
        Ok(())
    }
}

/// Does a view's query name relation `schema.name` (unqualified names are in `public`)?
fn view_reads(view: &ViewMeta, schema: &str, name: &str) -> bool {
    let Ok(parsed) = basalt_sql::parse(&view.query) else {
        return false;
    };
    let mut found = false;
    for p in parsed {
        let _ = basalt_sql::sqlparser::ast::visit_relations(&p.statement, |rel| {
            if let Ok((s, n)) = split_name(rel)
                && n == name
                && s.as_deref().unwrap_or("public") == schema
            {
                found = true;
            }
            ControlFlow::<()>::Continue(())
        });
    }
    found
}

/// Names of every CTE in a statement: a FROM reference to one is not a view.
fn cte_names(stmt: &Statement) -> BTreeSet<String> {
    struct V(BTreeSet<String>);
    impl Visitor for V {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            if let Some(with) = &q.with {
                for cte in &with.cte_tables {
                    self.0.insert(crate::session::ident_name(&cte.alias.name));
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut v = V(BTreeSet::new());
    let _ = basalt_sql::sqlparser::ast::Visit::visit(stmt, &mut v);
    v.0
}

struct Expander<'a> {
    state: &'a CatalogState,
    temp: &'a str,
    ctes: &'a BTreeSet<String>,
    changed: bool,
    error: Option<NodeError>,
}

impl Expander<'_> {
    fn view_for(&self, name: &ObjectName) -> Option<&ViewMeta> {
        let (schema, table) = split_name(name).ok()?;
        match schema {
            Some(s) => self.state.view(&s, &table),
            None => {
                if self.ctes.contains(&table)
                    || self.state.table_by_name(self.temp, &table).is_some()
                {
                    return None;
                }
                self.state.view("public", &table)
            }
        }
    }
}

impl VisitorMut for Expander<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } = t
        else {
            return ControlFlow::Continue(());
        };
        let Some(view) = self.view_for(name) else {
            return ControlFlow::Continue(());
        };
        let mut query = match basalt_sql::parse(&view.query).map(|mut v| v.pop()) {
            Ok(Some(p)) => match p.statement {
                Statement::Query(q) => q,
                _ => return ControlFlow::Continue(()),
            },
            Ok(None) => return ControlFlow::Continue(()),
            Err(e) => {
                self.error = Some(e.into());
                return ControlFlow::Break(());
            }
        };
        let mut wrapped = Statement::Query(query.clone());
        if let Err(e) = basalt_planner::redshift::rewrite(&mut wrapped) {
            self.error = Some(e.into());
            return ControlFlow::Break(());
        }
        if let Statement::Query(q) = wrapped {
            query = q;
        }
        // The derived table is named like the reference; the view's column list (or a
        // column list on the reference) names its columns.
        let mut alias = alias.clone().unwrap_or_else(|| TableAlias {
            explicit: true,
            name: Ident::with_quote('"', view.name.clone()),
            columns: vec![],
            at: None,
        });
        if alias.columns.is_empty() && view.column_list {
            alias.columns = view
                .columns
                .iter()
                .map(|(n, _)| TableAliasColumnDef {
                    name: Ident::with_quote('"', n.clone()),
                    data_type: None,
                })
                .collect();
        }
        *t = TableFactor::Derived {
            lateral: false,
            subquery: query,
            alias: Some(alias),
            sample: None,
        };
        self.changed = true;
        ControlFlow::Continue(())
    }
}
