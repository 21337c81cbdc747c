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
pub(crate) fn setup_user(ctx: &SessionContext, user: &str, owner: &str) {
    for name in ["current_user", "user", "session_user", "current_role"] {
        ctx.register_udf(constant_udf(name, user.to_string()));
    }
    // Every object is owned by the superuser until users and GRANTs arrive.
    let owner = owner.to_string();
    ctx.register_udf(create_udf(
        "pg_get_userbyid",
        vec![DataType::Int32],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| {
            let n = match &args[0] {
                ColumnarValue::Array(a) => Some(a.len()),
                ColumnarValue::Scalar(_) => None,
            };
            Ok(match n {
                Some(n) => ColumnarValue::Array(Arc::new(
                    datafusion::arrow::array::StringArray::from(vec![owner.clone(); n]),
                )),
                None => ColumnarValue::Scalar(ScalarValue::Utf8(Some(owner.clone()))),
            })
        }),
    ));
}

/// Name result columns the way Postgres does where DataFusion differs: `count(*)` → `count`,
/// `upper(name)` → `upper`, `CASE ...` → `case`, other expressions → `?column?`. Only
/// top-level select lists are renamed, and only where the names stay unique.
pub(crate) fn postgres_column_names(stmt: &mut Statement) {
    use basalt_sql::sqlparser::ast::{Expr, Ident, SelectItem, SetExpr};
    let Statement::Query(q) = stmt else {
        return;
    };
    let SetExpr::Select(sel) = q.body.as_mut() else {
        return;
    };
    fn name_of(e: &Expr) -> Option<String> {
        match e {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => None,
            Expr::Function(f) => f
                .name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(|i| i.value.to_lowercase()),
            Expr::Cast { expr, .. } => match expr.as_ref() {
                Expr::Identifier(i) => Some(i.value.to_lowercase()),
                Expr::CompoundIdentifier(p) => p.last().map(|i| i.value.to_lowercase()),
                inner => name_of(inner),
            },
            Expr::Nested(inner) => name_of(inner),
            Expr::Case { .. } => Some("case".into()),
            Expr::Exists { .. } => Some("exists".into()),
            Expr::Extract { .. } => Some("extract".into()),
            Expr::Substring { .. } => Some("substring".into()),
            Expr::Trim { .. } => Some("btrim".into()),
            Expr::Position { .. } => Some("position".into()),
            _ => Some("?column?".into()),
        }
    }
    let mut names: Vec<Option<String>> = sel
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(e) => name_of(e),
            _ => None,
        })
        .collect();
    // Keep DataFusion's names where ours would collide (it requires unique names).
    let explicit: Vec<String> = sel
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.to_lowercase()),
            SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(i.value.to_lowercase()),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(p)) => {
                p.last().map(|i| i.value.to_lowercase())
            }
            _ => None,
        })
        .collect();
    let all: Vec<String> = names
        .iter()
        .flatten()
        .cloned()
        .chain(explicit.iter().cloned())
        .collect();
    for n in names.iter_mut() {
        if let Some(v) = n
            && all.iter().filter(|x| *x == v).count() > 1
        {
            *n = None;
        }
    }
    for (item, name) in sel.projection.iter_mut().zip(names) {
        if let (SelectItem::UnnamedExpr(e), Some(name)) = (&*item, name) {
            *item = SelectItem::ExprWithAlias {
                expr: e.clone(),
                alias: Ident::with_quote('"', name),
            };
        }
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
