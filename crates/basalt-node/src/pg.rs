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
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

use crate::pg_overlay::PgCatalogOverlay;
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

/// `pg_last_query_id()`: the id of the session's last finished query (-1 before one), as
/// STL_QUERY and STL_SCAN know it.
pub(crate) fn last_query_id_udf(last: Arc<std::sync::atomic::AtomicI64>) -> ScalarUDF {
    create_udf(
        "pg_last_query_id",
        vec![],
        DataType::Int32,
        Volatility::Volatile,
        Arc::new(move |_args: &[ColumnarValue]| {
            let id = last.load(std::sync::atomic::Ordering::Relaxed);
            Ok(ColumnarValue::Scalar(ScalarValue::Int32(Some(id as i32))))
        }),
    )
}

/// The session's last COPY: `pg_last_copy_id()` (its query id, -1 before one) and
/// `pg_last_copy_count()` (the rows it loaded; 0 if it failed).
#[derive(Debug, Clone)]
pub(crate) struct LastCopy {
    id: Arc<std::sync::atomic::AtomicI64>,
    count: Arc<std::sync::atomic::AtomicI64>,
}

impl Default for LastCopy {
    fn default() -> Self {
        LastCopy {
            id: Arc::new(std::sync::atomic::AtomicI64::new(-1)),
            count: Arc::new(std::sync::atomic::AtomicI64::new(0)),
        }
    }
}

impl LastCopy {
    pub(crate) fn set(&self, id: i64, count: i64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.id.store(id, Relaxed);
        self.count.store(count, Relaxed);
    }

    pub(crate) fn udfs(&self) -> [ScalarUDF; 2] {
        let counter = |name: &str, value: Arc<std::sync::atomic::AtomicI64>, int: bool| {
            create_udf(
                name,
                vec![],
                if int {
                    DataType::Int32
                } else {
                    DataType::Int64
                },
                Volatility::Volatile,
                Arc::new(move |_args: &[ColumnarValue]| {
                    let v = value.load(std::sync::atomic::Ordering::Relaxed);
                    Ok(ColumnarValue::Scalar(if int {
                        ScalarValue::Int32(Some(v as i32))
                    } else {
                        ScalarValue::Int64(Some(v))
                    }))
                }),
            )
        };
        [
            counter("pg_last_copy_id", self.id.clone(), true),
            counter("pg_last_copy_count", self.count.clone(), false),
        ]
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
        .collect::<Vec<_>>();
    datafusion_pg_catalog::setup_pg_catalog(
        ctx,
        db,
        Roles {
            users: users.clone(),
        },
    )
    .map_err(|e| NodeError::internal(format!("pg_catalog setup: {e}")))?;
    let catalog = ctx
        .catalog(db)
        .ok_or_else(|| NodeError::internal(format!("catalog {db} is not registered")))?;
    let inner = catalog
        .schema("pg_catalog")
        .ok_or_else(|| NodeError::internal("pg_catalog was not registered"))?;
    let overlay = PgCatalogOverlay::new(inner, ctx.state().catalog_list().clone(), users, leader);
    catalog
        .register_schema("pg_catalog", Arc::new(overlay))
        .map_err(|e| NodeError::internal(format!("pg_catalog overlay: {e}")))?;
    ctx.register_udf(crate::pg_overlay::format_encoding_udf());
    ctx.register_udf(crate::pg_overlay::expandarray_udf());
    ctx.register_udf(crate::pg_overlay::int2vector_at_udf());
    ctx.register_udf(crate::pg_overlay::to_regtype_udf());
    for name in [
        "col_description",
        "obj_description",
        "shobj_description",
        "pg_get_viewdef",
        "pg_get_serial_sequence",
    ] {
        ctx.register_udf(crate::pg_overlay::NullText::udf(name));
    }
    ctx.register_udf(crate::pg_overlay::PgGetExpr::udf());
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

/// Marks a result column's alias as a repeat of an earlier column's name: DataFusion needs
/// unique names in a projection, Postgres allows `SELECT a, a` and `SELECT NULL, NULL`. The
/// marker and what follows are cut from the names clients see ([`output_schema`]).
pub(crate) const DUPLICATE_NAME_MARK: char = '\u{1}';

/// Name result columns the way Postgres does where DataFusion differs: `count(*)` → `count`,
/// `upper(name)` → `upper`, `CASE ...` → `case`, other expressions → `?column?`; and let
/// names repeat. Only the top-level select list (the leftmost of a set operation) is renamed.
pub(crate) fn postgres_column_names(stmt: &mut Statement) {
    use basalt_sql::sqlparser::ast::{Expr, Ident, SelectItem, SetExpr};
    let Statement::Query(q) = stmt else {
        return;
    };
    // The names of a set operation's result are those of its leftmost SELECT.
    let mut body = q.body.as_mut();
    loop {
        match body {
            SetExpr::SetOperation { left, .. } => body = left.as_mut(),
            SetExpr::Query(inner) => body = inner.body.as_mut(),
            _ => break,
        }
    }
    let SetExpr::Select(sel) = body else {
        return;
    };
    fn name_of(e: &Expr) -> Option<String> {
        match e {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => None,
            Expr::Function(f) => f.name.0.last().and_then(|p| p.as_ident()).map(|i| {
                match i.value.to_lowercase().as_str() {
                    // The Redshift rewrite ran first; show the name the user wrote.
                    "basalt_to_char" => "to_char".to_string(),
                    name => name.to_string(),
                }
            }),
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
    // The name each item shows, and whether we must alias it to get that name.
    let mut seen: Vec<String> = vec![];
    for item in sel.projection.iter_mut() {
        let (expr, shown, derived) = match &*item {
            SelectItem::UnnamedExpr(e @ Expr::Identifier(i)) => {
                (e.clone(), i.value.to_lowercase(), false)
            }
            SelectItem::UnnamedExpr(e @ Expr::CompoundIdentifier(p)) => (
                e.clone(),
                p.last().map(|i| i.value.to_lowercase()).unwrap_or_default(),
                false,
            ),
            SelectItem::UnnamedExpr(e) => match name_of(e) {
                Some(n) => (e.clone(), n, true),
                None => continue,
            },
            SelectItem::ExprWithAlias { expr, alias } => {
                let shown = if alias.quote_style.is_some() {
                    alias.value.clone()
                } else {
                    alias.value.to_lowercase()
                };
                (expr.clone(), shown, false)
            }
            // `*` expands to names we do not know here; DataFusion keeps them apart by
            // qualifier.
            _ => continue,
        };
        let repeats = seen.iter().filter(|n| **n == shown).count();
        seen.push(shown.clone());
        let alias = if repeats > 0 {
            format!("{shown}{DUPLICATE_NAME_MARK}{repeats}")
        } else if derived {
            shown
        } else {
            continue;
        };
        *item = SelectItem::ExprWithAlias {
            expr,
            alias: Ident::with_quote('"', alias),
        };
    }
}

/// A result column's name as clients see it (without a [`DUPLICATE_NAME_MARK`] suffix).
pub(crate) fn visible_name(name: &str) -> String {
    name.split(DUPLICATE_NAME_MARK)
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A result schema as clients see it: repeated names restored (see [`DUPLICATE_NAME_MARK`]).
/// None when no name carries the mark.
pub(crate) fn output_schema(
    schema: &datafusion::arrow::datatypes::SchemaRef,
) -> Option<datafusion::arrow::datatypes::SchemaRef> {
    use datafusion::arrow::datatypes::{Field, Schema};
    if !schema
        .fields()
        .iter()
        .any(|f| f.name().contains(DUPLICATE_NAME_MARK))
    {
        return None;
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let name = f
                .name()
                .split(DUPLICATE_NAME_MARK)
                .next()
                .unwrap_or_default();
            f.as_ref().clone().with_name(name)
        })
        .collect();
    Some(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

/// Replace the unqualified name `name` by the expression it aliases, in the WHERE clause and
/// select items of every SELECT that defines that alias (see `plan_statement`). True when
/// anything was replaced.
pub(crate) fn substitute_lateral_alias(stmt: &mut Statement, name: &str) -> bool {
    use basalt_sql::sqlparser::ast::{Expr, Select, SelectItem, visit_expressions_mut};
    use std::ops::ControlFlow;
    fn matches(ident: &basalt_sql::sqlparser::ast::Ident, name: &str) -> bool {
        if ident.quote_style.is_some() {
            ident.value == name
        } else {
            ident.value.to_lowercase() == name
        }
    }
    fn substitute(sel: &mut Select, name: &str) -> bool {
        let Some((pos, aliased)) =
            sel.projection
                .iter()
                .enumerate()
                .find_map(|(i, item)| match item {
                    SelectItem::ExprWithAlias { expr, alias } if matches(alias, name) => {
                        Some((i, expr.clone()))
                    }
                    _ => None,
                })
        else {
            return false;
        };
        let mut changed = false;
        let mut replace = |e: &mut Expr| {
            let _ = visit_expressions_mut(e, |x| {
                if let Expr::Identifier(i) = x
                    && matches(i, name)
                {
                    *x = Expr::Nested(Box::new(aliased.clone()));
                    changed = true;
                }
                ControlFlow::<()>::Continue(())
            });
        };
        if let Some(w) = sel.selection.as_mut() {
            replace(w);
        }
        // Later select items may use the alias; the aliased item itself may not.
        for item in sel.projection.iter_mut().skip(pos + 1) {
            if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
                replace(e);
            }
        }
        changed
    }
    let mut changed = false;
    visit_selects(stmt, &mut |sel| changed |= substitute(sel, name));
    changed
}

/// Call `f` on every SELECT body in a statement (top level, subqueries, CTEs, set operations).
fn visit_selects(stmt: &mut Statement, f: &mut dyn FnMut(&mut basalt_sql::sqlparser::ast::Select)) {
    use basalt_sql::sqlparser::ast::{Query, SetExpr, VisitMut, VisitorMut};
    use std::ops::ControlFlow;
    struct V<'a>(&'a mut dyn FnMut(&mut basalt_sql::sqlparser::ast::Select));
    impl VisitorMut for V<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            fn walk(
                body: &mut SetExpr,
                f: &mut dyn FnMut(&mut basalt_sql::sqlparser::ast::Select),
            ) {
                match body {
                    SetExpr::Select(s) => f(s),
                    SetExpr::SetOperation { left, right, .. } => {
                        walk(left, f);
                        walk(right, f);
                    }
                    _ => {}
                }
            }
            walk(q.body.as_mut(), self.0);
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut V(f));
}

thread_local! {
    static COMPAT: PostgresCompatibilityParser = PostgresCompatibilityParser::new();
}

/// datafusion-pg-catalog's rewrite rules, in its order, but without
/// `RemoveSubqueryFromProjection`: that one replaces every correlated scalar subquery in a
/// select list with NULL (psql `\d` would lose its Default column); DataFusion decorrelates
/// them once [`aggregate_scalar_subqueries`] has made them aggregates.
static REWRITE_RULES: std::sync::LazyLock<Vec<Box<dyn SqlStatementRewriteRule + Send + Sync>>> =
    std::sync::LazyLock::new(|| {
        use datafusion_pg_catalog::sql::rules::*;
        vec![
            Box::new(AliasDuplicatedProjectionRewrite),
            Box::new(ResolveUnqualifiedIdentifier),
            Box::new(RewriteArrayAnyAllOperation),
            Box::new(PrependUnqualifiedPgTableName),
            Box::new(StripCallableQualifier),
            Box::new(FixArrayLiteral),
            Box::new(CurrentUserVariableToSessionUserFunctionCall),
            Box::new(StripCollate),
            Box::new(RewritePgCatalogOperator),
            Box::new(RewriteRegCastToSubquery::new()),
            Box::new(FixVersionColumnName),
        ]
    });

/// Apply datafusion-pg-catalog's rewrites (regclass casts, OPERATOR(pg_catalog.~), ANY(array),
/// ...) to a catalog query.
pub(crate) fn rewrite(stmt: &mut Statement) {
    qualify_overlay_tables(stmt);
    late_binding_view_columns(stmt);
    regproc_literals_as_names(stmt);
    let mut s = stmt.clone();
    for rule in REWRITE_RULES.iter() {
        s = rule.rewrite(s);
    }
    *stmt = s;
    array_subquery_to_array_agg(stmt);
    expandarray_to_unnest(stmt);
    int2vector_subscripts(stmt);
    index_column_names(stmt);
    composite_field_access(stmt);
    plannable_scalar_subqueries(stmt);
}

/// Catalog relations only our overlay provides, which datafusion-pg-catalog's rewrite does
/// not know to qualify: `pg_user` → `pg_catalog.pg_user`, `svv_tables` → ... (pg_catalog is
/// always on the search path in Postgres and Redshift).
fn qualify_overlay_tables(stmt: &mut Statement) {
    use basalt_sql::sqlparser::ast::{Ident, ObjectNamePart, visit_relations_mut};
    let _ = visit_relations_mut(stmt, |name| {
        if let [ObjectNamePart::Identifier(id)] = name.0.as_slice()
            && crate::pg_overlay::OVERLAY_ONLY.contains(&id.value.to_ascii_lowercase().as_str())
        {
            name.0
                .insert(0, ObjectNamePart::Identifier(Ident::new("pg_catalog")));
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
}

/// `pg_get_late_binding_view_cols() lbv(schemaname name, ...)` (redshift_connector's
/// getColumns): Redshift's late-binding views have no counterpart here yet, so the function
/// yields no rows → an empty derived table with the declared columns.
fn late_binding_view_columns(stmt: &mut Statement) {
    use basalt_sql::sqlparser::ast::{TableFactor, VisitMut, VisitorMut};
    struct V;
    impl VisitorMut for V {
        type Break = ();
        fn pre_visit_table_factor(&mut self, t: &mut TableFactor) -> std::ops::ControlFlow<()> {
            if let TableFactor::Table {
                name,
                args: Some(_),
                alias: Some(alias),
                ..
            } = t
                && name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| {
                    i.value
                        .eq_ignore_ascii_case("pg_get_late_binding_view_cols")
                })
                && !alias.columns.is_empty()
                && alias.columns.iter().all(|c| c.data_type.is_some())
            {
                let columns: Vec<String> = alias
                    .columns
                    .iter()
                    .map(|c| {
                        let ty = match c.data_type.as_ref().map(|d| d.to_string().to_lowercase()) {
                            Some(t) if t == "name" || t == "text" => "VARCHAR".to_string(),
                            Some(t) => t,
                            None => "VARCHAR".into(),
                        };
                        format!("CAST(NULL AS {ty}) AS {}", c.name)
                    })
                    .collect();
                let sql = format!(
                    "SELECT * FROM (SELECT {} WHERE FALSE) AS {}",
                    columns.join(", "),
                    alias.name
                );
                if let Ok(mut parsed) = basalt_sql::parse(&sql)
                    && let Some(Statement::Query(q)) = parsed.pop().map(|p| p.statement)
                    && let basalt_sql::sqlparser::ast::SetExpr::Select(sel) = *q.body
                    && let Some(from) = sel.from.into_iter().next()
                {
                    *t = from.relation;
                }
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut V);
}

/// `typinput = 'pg_catalog.array_in'::regproc` (pgjdbc's type cache) → `typinput =
/// 'array_in'`: pg_type's `typinput`/`typoutput`/... hold function names in our pg_catalog,
/// not pg_proc OIDs.
fn regproc_literals_as_names(stmt: &mut Statement) {
    use basalt_sql::sqlparser::ast::{BinaryOperator, Expr, Value, visit_expressions_mut};
    fn is_typ_column(e: &Expr) -> bool {
        match e {
            Expr::Identifier(i) => i.value.to_ascii_lowercase().starts_with("typ"),
            Expr::CompoundIdentifier(p) => p
                .last()
                .is_some_and(|i| i.value.to_ascii_lowercase().starts_with("typ")),
            _ => false,
        }
    }
    fn regproc_name(e: &Expr) -> Option<String> {
        if let Expr::Cast {
            expr, data_type, ..
        } = e
            && data_type.to_string().eq_ignore_ascii_case("regproc")
            && let Expr::Value(v) = expr.as_ref()
            && let Value::SingleQuotedString(name) = &v.value
        {
            return Some(name.trim_start_matches("pg_catalog.").to_string());
        }
        None
    }
    let _ = visit_expressions_mut(stmt, |e| {
        if let Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq | BinaryOperator::NotEq,
            right,
        } = e
        {
            if is_typ_column(left)
                && let Some(name) = regproc_name(right)
            {
                **right = Expr::value(Value::SingleQuotedString(name));
            } else if is_typ_column(right)
                && let Some(name) = regproc_name(left)
            {
                **left = Expr::value(Value::SingleQuotedString(name));
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
}

/// `information_schema._pg_expandarray(a)`, a set-returning function of `(x, n)` records
/// (pgjdbc's primary-key and index metadata), → `unnest(basalt_expandarray(a))`.
fn expandarray_to_unnest(stmt: &mut Statement) {
    use basalt_sql::sqlparser::ast::{
        Expr, Function, FunctionArguments, Ident, ObjectName, visit_expressions_mut,
    };
    let _ = visit_expressions_mut(stmt, |e| {
        if let Expr::Function(f) = e
            && f.name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| i.value.eq_ignore_ascii_case("_pg_expandarray"))
            && let FunctionArguments::List(_) = &f.args
        {
            let mut inner = f.clone();
            inner.name = ObjectName::from(vec![Ident::new("basalt_expandarray")]);
            let mut unnest: Function = f.clone();
            unnest.name = ObjectName::from(vec![Ident::new("unnest")]);
            unnest.args =
                FunctionArguments::List(basalt_sql::sqlparser::ast::FunctionArgumentList {
                    duplicate_treatment: None,
                    args: vec![basalt_sql::sqlparser::ast::FunctionArg::Unnamed(
                        basalt_sql::sqlparser::ast::FunctionArgExpr::Expr(Expr::Function(inner)),
                    )],
                    clauses: vec![],
                });
            *e = Expr::Function(unnest);
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
}

/// `i.indkey[n]`: int2vector columns (pg_index's indkey, indoption, indclass, indcollation,
/// also under an alias ending in those names, as pgjdbc's `I_INDOPTION`) and pg_constraint's
/// int2[] conkey/confkey are text in our pg_catalog → `basalt_int2vector_at(i.indkey, n,
/// base)`, base 0 for int2vector and 1 for arrays.
fn int2vector_subscripts(stmt: &mut Statement) {
    use basalt_sql::sqlparser::ast::{AccessExpr, Expr, Subscript, visit_expressions_mut};
    let _ = visit_expressions_mut(stmt, |e| {
        if let Expr::CompoundFieldAccess { root, access_chain } = e
            && let Some((AccessExpr::Subscript(Subscript::Index { index }), path)) =
                access_chain.split_last()
        {
            // `i.indkey[0]` parses as root `i`, chain [.indkey, [0]].
            let mut idents = match root.as_ref() {
                Expr::Identifier(i) => vec![i.clone()],
                Expr::CompoundIdentifier(p) => p.clone(),
                _ => return std::ops::ControlFlow::<()>::Continue(()),
            };
            for part in path {
                match part {
                    AccessExpr::Dot(Expr::Identifier(i)) => idents.push(i.clone()),
                    _ => return std::ops::ControlFlow::Continue(()),
                }
            }
            let name = idents
                .last()
                .map(|i| i.value.to_ascii_lowercase())
                .unwrap_or_default();
            let base = if ["indkey", "indoption", "indclass", "indcollation"]
                .iter()
                .any(|v| name.ends_with(v))
            {
                0
            } else if name.ends_with("conkey") || name.ends_with("confkey") {
                1
            } else {
                return std::ops::ControlFlow::Continue(());
            };
            let column = if idents.len() == 1 {
                Expr::Identifier(idents.remove(0))
            } else {
                Expr::CompoundIdentifier(idents)
            };
            *e = call(
                "basalt_int2vector_at",
                vec![
                    column,
                    index.clone(),
                    Expr::value(basalt_sql::sqlparser::ast::Value::Number(
                        base.to_string(),
                        false,
                    )),
                ],
            );
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
}

/// `pg_get_indexdef(index, n, pretty)` with n > 0 is the name of the index's n-th column
/// (pgjdbc's getIndexInfo) → `(SELECT attname FROM pg_attribute WHERE attrelid = index AND
/// attnum = n)`; our indexes (primary keys) are plain column lists.
fn index_column_names(stmt: &mut Statement) {
    use basalt_sql::sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, FunctionArguments};
    let _ = basalt_sql::sqlparser::ast::visit_expressions_mut(stmt, |e| {
        if let Expr::Function(f) = e
            && f.name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| i.value.eq_ignore_ascii_case("pg_get_indexdef"))
            && let FunctionArguments::List(list) = &f.args
            && let [
                FunctionArg::Unnamed(FunctionArgExpr::Expr(index)),
                FunctionArg::Unnamed(FunctionArgExpr::Expr(n)),
                _,
            ] = list.args.as_slice()
            && let Ok(mut parsed) = basalt_sql::parse(&format!(
                "SELECT (SELECT a.attname FROM pg_catalog.pg_attribute a \
                 WHERE a.attrelid = {index} AND a.attnum = {n})"
            ))
            && let Some(Statement::Query(q)) = parsed.pop().map(|p| p.statement)
            && let basalt_sql::sqlparser::ast::SetExpr::Select(sel) = *q.body
            && let Some(basalt_sql::sqlparser::ast::SelectItem::UnnamedExpr(sub)) =
                sel.projection.into_iter().next()
        {
            *e = sub;
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
}

/// Composite field access `(expr).field` → `get_field(expr, 'field')`.
fn composite_field_access(stmt: &mut Statement) {
    use basalt_sql::sqlparser::ast::{AccessExpr, Expr, Value, visit_expressions_mut};
    let _ = visit_expressions_mut(stmt, |e| {
        if let Expr::CompoundFieldAccess { root, access_chain } = e
            && access_chain
                .iter()
                .all(|a| matches!(a, AccessExpr::Dot(Expr::Identifier(_))))
        {
            let mut out = root.as_ref().clone();
            while let Expr::Nested(inner) = out {
                out = *inner;
            }
            for access in access_chain.iter() {
                if let AccessExpr::Dot(Expr::Identifier(field)) = access {
                    out = call(
                        "get_field",
                        vec![
                            out,
                            Expr::value(Value::SingleQuotedString(field.value.clone())),
                        ],
                    );
                }
            }
            *e = out;
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
}

/// Make a catalog query's scalar subqueries plannable by DataFusion, which decorrelates a
/// scalar subquery only when it is an aggregate correlated by equalities:
///
/// - `(SELECT c.relkind = 'c' FROM pg_class c WHERE c.oid = t.typrelid)` (pgjdbc's
///   getTypeInfo) → `(SELECT max(...) ...)`: catalog subqueries select by a key, so they
///   yield at most one row and max() of it is the row itself;
/// - a condition on the outer row alone moves out: `(SELECT .. WHERE d.adrelid = a.attrelid
///   AND a.atthasdef)` (psql `\d`) → `CASE WHEN a.atthasdef THEN (SELECT .. WHERE ..) END`;
/// - a subquery correlated by anything but equalities becomes NULL, as datafusion-pg-catalog
///   does for those (psql's collation column: we have no collations).
fn plannable_scalar_subqueries(stmt: &mut Statement) {
    use basalt_sql::sqlparser::ast::{
        BinaryOperator, Expr, GroupByExpr, SelectItem, SetExpr, TableFactor, Value,
        visit_expressions, visit_expressions_mut,
    };
    const AGGREGATES: &[&str] = &[
        "count",
        "sum",
        "min",
        "max",
        "avg",
        "array_agg",
        "string_agg",
        "bool_and",
        "bool_or",
        "every",
        "listagg",
    ];
    fn qualifiers(e: &Expr) -> Vec<String> {
        let mut out = vec![];
        let _ = visit_expressions(e, |x| {
            if let Expr::CompoundIdentifier(parts) = x
                && parts.len() >= 2
            {
                out.push(parts[parts.len() - 2].value.to_ascii_lowercase());
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        out
    }
    fn conjuncts(e: Expr, out: &mut Vec<Expr>) {
        match e {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::And,
                right,
            } => {
                conjuncts(*left, out);
                conjuncts(*right, out);
            }
            Expr::Nested(inner)
                if matches!(
                    *inner,
                    Expr::BinaryOp {
                        op: BinaryOperator::And,
                        ..
                    }
                ) =>
            {
                conjuncts(*inner, out)
            }
            other => out.push(other),
        }
    }
    let _ = visit_expressions_mut(stmt, |e| {
        let Expr::Subquery(q) = e else {
            return std::ops::ControlFlow::<()>::Continue(());
        };
        if q.limit_clause.is_some() {
            return std::ops::ControlFlow::Continue(());
        }
        let SetExpr::Select(sel) = q.body.as_mut() else {
            return std::ops::ControlFlow::Continue(());
        };
        if !matches!(&sel.group_by, GroupByExpr::Expressions(g, _) if g.is_empty())
            || sel.having.is_some()
            || sel.projection.len() != 1
        {
            return std::ops::ControlFlow::Continue(());
        }
        // Names the subquery's FROM brings into scope.
        let mut inner: Vec<String> = vec![];
        for twj in &sel.from {
            for factor in
                std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation))
            {
                if let TableFactor::Table { name, alias, .. } = factor {
                    if let Some(a) = alias {
                        inner.push(a.name.value.to_ascii_lowercase());
                    }
                    if let Some(last) = name.0.last().and_then(|p| p.as_ident()) {
                        inner.push(last.value.to_ascii_lowercase());
                    }
                } else {
                    return std::ops::ControlFlow::Continue(());
                }
            }
        }
        // Split WHERE into conditions on the subquery's rows and conditions on the outer row.
        let mut outer_only = vec![];
        let mut kept = vec![];
        let mut decorrelatable = true;
        if let Some(selection) = sel.selection.take() {
            let mut all = vec![];
            conjuncts(selection, &mut all);
            for c in all {
                let qs = qualifiers(&c);
                let outer = qs.iter().filter(|q| !inner.contains(q)).count();
                if outer == 0 {
                    kept.push(c);
                } else if outer == qs.len() {
                    outer_only.push(c);
                } else {
                    if !matches!(
                        &c,
                        Expr::BinaryOp {
                            op: BinaryOperator::Eq,
                            ..
                        }
                    ) {
                        decorrelatable = false;
                    }
                    kept.push(c);
                }
            }
        }
        if !decorrelatable {
            *e = Expr::value(Value::Null);
            return std::ops::ControlFlow::Continue(());
        }
        sel.selection = kept.into_iter().reduce(|l, r| Expr::BinaryOp {
            left: Box::new(l),
            op: BinaryOperator::And,
            right: Box::new(r),
        });
        if let SelectItem::UnnamedExpr(x) | SelectItem::ExprWithAlias { expr: x, .. } =
            &mut sel.projection[0]
        {
            let mut aggregated = false;
            let _ = visit_expressions(&*x, |inner| {
                if let Expr::Function(f) = inner
                    && f.name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| {
                        AGGREGATES.contains(&i.value.to_ascii_lowercase().as_str())
                    })
                {
                    aggregated = true;
                }
                std::ops::ControlFlow::<()>::Continue(())
            });
            if !aggregated {
                *x = call("max", vec![x.clone()]);
            }
        }
        if let Some(condition) = outer_only.into_iter().reduce(|l, r| Expr::BinaryOp {
            left: Box::new(l),
            op: BinaryOperator::And,
            right: Box::new(r),
        }) {
            *e = Expr::Case {
                case_token:
                    basalt_sql::sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                end_token:
                    basalt_sql::sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                operand: None,
                conditions: vec![basalt_sql::sqlparser::ast::CaseWhen {
                    condition,
                    result: e.clone(),
                }],
                else_result: None,
            };
        }
        std::ops::ControlFlow::Continue(())
    });
}

use basalt_sql::build::call;

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

/// Parse with datafusion-pg-catalog's parser where it substitutes one of the few known
/// client queries DataFusion cannot plan (psql's `\d` policy/statistics/publication
/// queries, ...). `None` when it substitutes nothing: our own parse and rewrites are then
/// used, which keep correlated subqueries its rewrite rules would null out.
pub(crate) fn parse_fallback(sql: &str) -> Option<Vec<ParsedStatement>> {
    let stmts = COMPAT.with(|p| p.parse(sql)).ok()?;
    if let Ok(ours) = basalt_sql::parse(sql) {
        let unchanged = ours.len() == stmts.len()
            && ours
                .iter()
                .zip(&stmts)
                .all(|(o, s)| COMPAT.with(|p| p.rewrite(o.statement.clone())) == *s);
        if unchanged {
            return None;
        }
    }
    Some(
        stmts
            .into_iter()
            .map(|statement| ParsedStatement {
                sql: statement.to_string(),
                statement,
                table_attributes: None,
                compression: None,
                predicate_columns: false,
                copy_parameters: None,
                unload: None,
            })
            .collect(),
    )
}
