//! The Postgres catalog clients query (pg_catalog, information_schema, catalog functions),
//! provided by `datafusion-pg-catalog` over our DataFusion catalog, plus the functions it
//! leaves to the server (`version()`, `current_user`, ...).

use std::sync::Arc;

use async_trait::async_trait;
use basalt_sql::ParsedStatement;
use basalt_sql::sqlparser::ast::Statement;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{ScalarUDF, Volatility, create_udf};
use datafusion::physical_plan::ColumnarValue;
use datafusion::prelude::SessionContext;
use datafusion_pg_catalog::pg_catalog::context::{PgCatalogContextProvider, Role};
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;

use crate::{Leader, NodeError};

/// Users and roles for pg_roles / pg_user.
#[derive(Debug, Clone)]
struct Roles {
    users: Vec<(String, bool)>,
}

#[async_trait]
impl PgCatalogContextProvider for Roles {
    async fn roles(&self) -> Vec<String> {
        self.users.iter().map(|u| u.0.clone()).collect()
    }

    async fn role(&self, name: &str) -> Option<Role> {
        self.users.iter().find(|u| u.0 == name).map(|(n, su)| Role {
            name: n.clone(),
            is_superuser: *su,
            can_login: true,
            can_create_db: *su,
            can_create_role: *su,
            can_create_user: *su,
            can_replication: false,
            grants: vec![],
            inherited_roles: vec![],
        })
    }
}

fn constant_udf(name: &str, value: String) -> ScalarUDF {
    create_udf(
        name,
        vec![],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |_args: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
                value.clone(),
            ))))
        }),
    )
}

/// Register pg_catalog and the session functions on a session's context.
pub(crate) fn setup(ctx: &SessionContext, db: &str, leader: &Leader) -> Result<(), NodeError> {
    let users = leader
        .catalog()
        .snapshot()
        .users
        .values()
        .map(|u| (u.name.clone(), u.superuser))
        .collect();
    datafusion_pg_catalog::setup_pg_catalog(ctx, db, Roles { users })
        .map_err(|e| NodeError::internal(format!("pg_catalog setup: {e}")))?;
    ctx.register_udf(constant_udf("version", crate::version_string()));
    Ok(())
}

/// Register the functions that depend on the session user.
pub(crate) fn setup_user(ctx: &SessionContext, user: &str) {
    for name in ["current_user", "user", "session_user", "current_role"] {
        ctx.register_udf(constant_udf(name, user.to_string()));
    }
}

thread_local! {
    static COMPAT: PostgresCompatibilityParser = PostgresCompatibilityParser::new();
}

/// Apply datafusion-pg-catalog's rewrites (regclass casts, OPERATOR(pg_catalog.~), ANY(array),
/// ...) to a catalog query.
pub(crate) fn rewrite(stmt: &mut Statement) {
    let s = stmt.clone();
    *stmt = COMPAT.with(|p| p.rewrite(s));
    array_subquery_to_array_agg(stmt);
}

/// `ARRAY(SELECT x FROM ...)` (psql's `\du`) → `(SELECT array_agg(x) FROM ...)`, a
/// (correlated) scalar subquery DataFusion decorrelates.
fn array_subquery_to_array_agg(stmt: &mut Statement) {
    use basalt_sql::sqlparser::ast::{
        Expr, FunctionArguments, SelectItem, SetExpr, visit_expressions_mut,
    };
    let _ = visit_expressions_mut(stmt, |e| {
        if let Expr::Function(f) = e
            && f.name.to_string().eq_ignore_ascii_case("array")
            && let FunctionArguments::Subquery(q) = &f.args
        {
            let mut q = q.clone();
            if let SetExpr::Select(sel) = q.body.as_mut()
                && let [item] = sel.projection.as_mut_slice()
            {
                let inner = match item {
                    SelectItem::UnnamedExpr(x) | SelectItem::ExprWithAlias { expr: x, .. } => {
                        x.clone()
                    }
                    _ => return std::ops::ControlFlow::<()>::Continue(()),
                };
                let agg = basalt_sql::parse(&format!("SELECT array_agg({inner})"))
                    .ok()
                    .and_then(|mut v| v.pop())
                    .and_then(|p| match p.statement {
                        Statement::Query(q) => match *q.body {
                            SetExpr::Select(s) => s.projection.into_iter().next(),
                            _ => None,
                        },
                        _ => None,
                    });
                if let Some(agg) = agg {
                    *item = agg;
                    *e = Expr::Subquery(q);
                }
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
}

/// Parse with datafusion-pg-catalog's parser, which substitutes a few known client queries
/// our grammar cannot take.
pub(crate) fn parse_fallback(sql: &str) -> Option<Vec<ParsedStatement>> {
    let stmts = COMPAT.with(|p| p.parse(sql)).ok()?;
    Some(
        stmts
            .into_iter()
            .map(|statement| ParsedStatement {
                sql: statement.to_string(),
                statement,
                table_attributes: None,
            })
            .collect(),
    )
}
