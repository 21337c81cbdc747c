//! A client session: statement dispatch, transactions, settings, query execution.

use std::collections::BTreeSet;
use std::sync::Arc;

use basalt_catalog::{CatalogState, SliceId, TableId, TableMeta, Transaction};
use basalt_planner::{BasaltCatalog, CatalogView};
use basalt_sql::ParsedStatement;
use basalt_sql::sqlparser::ast::{
    ObjectName, ObjectType, Reset, Set, Statement, TransactionModifier,
};
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::SessionStateBuilder;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DFStatement;
use futures::StreamExt;
use tracing::{debug, warn};

use crate::copy::CopyFormat;
use crate::leader::VersionPin;
use crate::settings::Settings;
use crate::{Leader, NodeError, params};

/// What a statement returns.
pub enum StatementOutput {
    /// Rows, streamed as they are produced.
    Rows {
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
    },
    /// The server is ready for `COPY ... FROM STDIN` data with this many columns; feed it with
    /// [`Session::copy_data`] and finish with [`Session::copy_done`] or [`Session::copy_fail`].
    CopyIn { columns: usize },
    /// `COPY ... TO STDOUT`: the rows to send to the client as COPY data in `format`,
    /// streamed as they are produced.
    CopyOut {
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
        format: CopyFormat,
    },
    /// A command completion: `tag` as Postgres spells it (`INSERT`, `CREATE TABLE`, ...) and
    /// the row count where the tag carries one.
    Command { tag: String, rows: Option<u64> },
}

impl std::fmt::Debug for StatementOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatementOutput::Rows { schema, .. } => write!(f, "Rows({schema:?})"),
            StatementOutput::Command { tag, rows } => write!(f, "Command({tag}, {rows:?})"),
            StatementOutput::CopyIn { columns } => write!(f, "CopyIn({columns})"),
            StatementOutput::CopyOut { schema, format, .. } => {
                write!(f, "CopyOut({format:?}, {schema:?})")
            }
        }
    }
}

impl StatementOutput {
    pub(crate) fn command(tag: &str) -> Self {
        StatementOutput::Command {
            tag: tag.to_string(),
            rows: None,
        }
    }
    pub(crate) fn command_rows(tag: &str, rows: u64) -> Self {
        StatementOutput::Command {
            tag: tag.to_string(),
            rows: Some(rows),
        }
    }

    /// Collect all rows (for tests and the embedding API).
    pub async fn collect(self) -> Result<Vec<RecordBatch>, NodeError> {
        match self {
            StatementOutput::Rows { stream, .. } | StatementOutput::CopyOut { stream, .. } => {
                let batches: Vec<_> = stream.collect().await;
                Ok(batches.into_iter().collect::<Result<Vec<_>, _>>()?)
            }
            StatementOutput::Command { .. } | StatementOutput::CopyIn { .. } => Ok(vec![]),
        }
    }
}

/// Transaction state as the wire protocol reports it in ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    Idle,
    InTransaction,
    Failed,
}

/// A statement prepared by the extended protocol.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub sql: String,
    /// Types of `$1..$n`.
    pub param_types: Vec<DataType>,
    /// Columns the statement returns; None for commands.
    pub result_schema: Option<SchemaRef>,
    pub(crate) statement: Option<ParsedStatement>,
}

pub(crate) type FileSet = BTreeSet<(SliceId, TableId, String)>;

/// An open transaction of a session.
pub(crate) struct OpenTxn {
    pub txn: Transaction,
    pub explicit: bool,
    pub failed: bool,
    pub savepoints: Vec<(String, Transaction)>,
    /// Every file written in this transaction (some may be superseded before commit).
    pub written: FileSet,
    /// Keeps the files of the version this transaction reads until it ends.
    pub _pin: VersionPin,
}

/// A client session on the leader.
pub struct Session {
    pub(crate) id: u32,
    pub(crate) leader: Arc<Leader>,
    pub(crate) user: String,
    pub(crate) ctx: SessionContext,
    pub(crate) view: Arc<CatalogView>,
    pub(crate) txn: Option<OpenTxn>,
    pub(crate) settings: Settings,
    /// Round-robin position for EVEN placement.
    pub(crate) rr: u64,
    /// An open COPY FROM STDIN.
    pub(crate) copy_in: Option<crate::copy::CopyIn>,
    /// Open SQL cursors (DECLARE ... CURSOR FOR).
    pub(crate) cursors: std::collections::HashMap<String, crate::cursor::Cursor>,
    /// SQL-level prepared statements (PREPARE name AS ...).
    pub(crate) sql_prepared: std::collections::HashMap<String, Statement>,
    /// Running the statements of one multi-statement query string: outside an explicit
    /// transaction they form one implicit transaction, as in Postgres.
    pub(crate) in_block: bool,
    /// [`Session::close`] has run (it logs once; a later drop only cleans what is left).
    closed: bool,
    /// The id of this session's last finished query (`pg_last_query_id()`), -1 before one.
    last_query: Arc<std::sync::atomic::AtomicI64>,
    /// `pg_last_copy_id()` and `pg_last_copy_count()`.
    pub(crate) last_copy: crate::pg::LastCopy,
    /// The text of the statement running (STL_QUERY's `querytxt`).
    pub(crate) statement_text: String,
    /// NOTICE messages for the client, sent before the statement's completion.
    notices: Vec<String>,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Err(e) = self.end() {
            warn!(session = self.id, error = %e, "could not drop the temporary tables of a session");
        }
    }
}

/// The schema of a session's temporary tables.
fn temp_schema(session: u32) -> String {
    format!("{}{session}", crate::leader::TEMP_SCHEMA_PREFIX)
}

/// `CREATE TABLE #name` (and `SELECT ... INTO #name`) makes a Redshift temporary table:
/// mark it `TEMP` here, since [`split_name`] strips the `#` before the DDL code sees the name.
fn hash_name_is_temporary(stmt: &mut Statement) {
    if let Statement::CreateTable(ct) = stmt
        && let [part] = ct.name.0.as_slice()
        && part.as_ident().is_some_and(|i| i.value.starts_with('#'))
    {
        ct.temporary = true;
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("id", &self.id).finish()
    }
}

/// Does the statement read the Postgres catalog (client metadata queries)? Those get
/// datafusion-pg-catalog's rewrites, which are meant for catalog SQL only.
/// Characters of a query's text STL_QUERY keeps (Redshift's `querytxt` is 4,000).
const QUERYTXT_CHARS: usize = 4000;

/// Name prefixes of Redshift's system tables and views.
const REDSHIFT_SYSTEM_PREFIXES: &[&str] = &["svv_", "stv_", "stl_", "svl_", "sys_"];

fn is_catalog_query(sql: &str) -> bool {
    let s = sql.to_ascii_lowercase();
    s.contains("pg_")
        || REDSHIFT_SYSTEM_PREFIXES.iter().any(|p| s.contains(p))
        || s.contains("information_schema")
        || s.contains("::reg")
        || s.contains("current_schemas")
        || s.contains("format_type")
}

/// Does a parsed statement read Postgres catalog relations (`pg_catalog.*`, `pg_*`,
/// `information_schema.*`, Redshift's `svv_*`), call `pg_catalog.` functions or use `::reg*`
/// casts?
fn references_catalog(stmt: &Statement) -> bool {
    let text = stmt.to_string().to_ascii_lowercase();
    // `::regclass` casts and `pg_catalog.version()`-style qualified function calls.
    let mut found = text.contains("::reg") || text.contains("pg_catalog.");
    let _ = basalt_sql::sqlparser::ast::visit_relations(stmt, |name| {
        let parts: Vec<String> = name
            .0
            .iter()
            .map(|p| p.to_string().trim_matches('"').to_ascii_lowercase())
            .collect();
        if parts
            .iter()
            .any(|p| p == "pg_catalog" || p == "information_schema")
            || parts.last().is_some_and(|p| {
                p.starts_with("pg_") || REDSHIFT_SYSTEM_PREFIXES.iter().any(|x| p.starts_with(x))
            })
        {
            found = true;
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    found
}

/// Puts a query's logical plan under a node of its own.
pub(crate) type PlanWrap = Box<
    dyn FnOnce(
            datafusion::logical_expr::LogicalPlan,
        ) -> datafusion::common::Result<datafusion::logical_expr::LogicalPlan>
        + Send,
>;

impl Session {
    pub(crate) fn new(leader: Arc<Leader>, id: u32, user: String) -> Result<Self, NodeError> {
        let db = leader.config().database.clone();
        let mut config = SessionConfig::new()
            .with_default_catalog_and_schema(&db, "public")
            .with_information_schema(true)
            // Each node runs a task with one partition per slice it holds; a KEY table's
            // scan is hash-partitioned over exactly that many partitions.
            .with_target_partitions(leader.topology().slices_per_node.max(2) as usize);
        {
            let opts = config.options_mut();
            opts.sql_parser.parse_float_as_decimal = true;
            opts.sql_parser.map_string_types_to_utf8view = false;
            opts.execution.time_zone = Some("+00:00".into());
        }
        let mut builder = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(
                basalt_planner::distribution::NodeLocalRepartitionRule,
            ))
            .with_physical_optimizer_rule(Arc::new(basalt_planner::distribution::CoLocatedJoinRule))
            .with_physical_optimizer_rule(Arc::new(
                basalt_planner::distribution::CooperativeJoinsRule,
            ))
            // Before the distributed planner, which wraps it.
            .with_query_planner(Arc::new(crate::unload::BasaltQueryPlanner));
        if let Some(mpp) = leader.mpp() {
            builder = mpp
                .configure(builder, leader.compute().clone())
                .map_err(|e| NodeError::Internal {
                    message: e.to_string(),
                })?;
        }
        let ctx = SessionContext::new_with_state(builder.build());
        let view = Arc::new(CatalogView::new(leader.catalog().snapshot()));
        view.set_temp_schema(Some(temp_schema(id)));
        ctx.register_catalog(
            &db,
            Arc::new(BasaltCatalog::new(view.clone(), leader.compute().clone())),
        );
        crate::pg::setup(&ctx, &db, &leader)?;
        crate::pg::setup_user(&ctx, &user, &leader.config().superuser);
        basalt_planner::redshift::register(&ctx);
        basalt_planner::pg_semantics::register(&ctx)?;
        if leader.mpp().is_some() {
            // Distributed plans turn scalar subqueries into joins, which would not check
            // that the subquery returns one row.
            ctx.add_analyzer_rule(Arc::new(basalt_planner::subquery::SingleRowSubqueries));
        }
        let last_query = Arc::new(std::sync::atomic::AtomicI64::new(-1));
        ctx.register_udf(crate::pg::last_query_id_udf(last_query.clone()));
        let last_copy = crate::pg::LastCopy::default();
        for udf in last_copy.udfs() {
            ctx.register_udf(udf);
        }
        Ok(Session {
            id,
            settings: Settings::new(&user),
            leader,
            user,
            ctx,
            view,
            txn: None,
            rr: id as u64,
            copy_in: None,
            cursors: Default::default(),
            in_block: false,
            sql_prepared: Default::default(),
            closed: false,
            last_query,
            last_copy,
            statement_text: String::new(),
            notices: vec![],
        })
    }

    /// Queue a NOTICE for the client.
    pub(crate) fn notice(&mut self, message: String) {
        self.notices.push(message);
    }

    /// The NOTICEs queued by the statements run since the last call.
    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    /// End the session the way a Postgres backend ends when its client goes away (Terminate,
    /// a dropped socket, server shutdown): abandon an open COPY, roll back the open
    /// transaction (deleting the segment files it wrote), close cursors, forget prepared
    /// statements, and drop the session's temporary tables (schema `pg_temp_<id>`),
    /// committing that on its own so the tables and their files are gone for everyone.
    ///
    /// Idempotent: a second call finds nothing left to clean. Dropping a session runs the
    /// same cleanup, so a session that is never closed still leaves nothing behind; calling
    /// `close` first lets the caller see a failure to drop the temporary tables (they are
    /// dropped at the latest when the leader next opens the data directory).
    pub async fn close(&mut self) -> Result<(), NodeError> {
        self.end()
    }

    fn end(&mut self) -> Result<(), NodeError> {
        let copy_aborted = self.abandon_copy();
        let rolled_back = self.txn.as_ref().map(|t| t.written.len());
        let cursors_closed = self.cursors.len();
        self.rollback_open(); // closes the cursors too
        self.sql_prepared.clear();
        let temp = self.leader.drop_temporary(Some(&self.temp_schema()));
        let cleaned = copy_aborted
            || rolled_back.is_some()
            || cursors_closed > 0
            || temp.as_ref().map_or(true, |n| *n > 0);
        if !self.closed || cleaned {
            debug!(
                session = self.id,
                user = %self.user,
                copy_aborted,
                rolled_back = rolled_back.is_some(),
                files_deleted = rolled_back.unwrap_or(0),
                cursors_closed,
                temp_tables_dropped = temp.as_ref().ok(),
                "session closed"
            );
        }
        self.closed = true;
        temp.map(|_| ())
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// A session setting (`SHOW name`).
    pub fn setting(&self, name: &str) -> Option<String> {
        self.settings.get(name).map(|s| s.to_string())
    }

    pub fn transaction_status(&self) -> TransactionStatus {
        match &self.txn {
            Some(t) if t.failed => TransactionStatus::Failed,
            Some(t) if t.explicit => TransactionStatus::InTransaction,
            _ => TransactionStatus::Idle,
        }
    }

    /// Mark the current statement as failed from outside the session (an error while rows
    /// streamed, a cancel, a bad parameter): an explicit transaction block becomes failed
    /// (25P02 until it ends), an implicit one rolls back.
    pub fn fail_transaction(&mut self) {
        match &self.txn {
            Some(t) if t.explicit => self.mark_failed(),
            Some(_) => self.rollback_open(),
            None => {}
        }
    }

    /// Run every statement of a query string, stopping at the first error (whose result is
    /// the last element).
    pub async fn execute(&mut self, sql: &str) -> Vec<Result<StatementOutput, NodeError>> {
        let statements = match self.parse(sql) {
            Ok(s) => s,
            Err(e) => {
                self.mark_failed();
                return vec![Err(e)];
            }
        };
        if statements.len() < 2 {
            let mut out = vec![];
            for stmt in statements {
                out.push(self.run(stmt).await);
            }
            return out;
        }
        // Several statements in one query string run as one implicit transaction (unless
        // they open an explicit one): an error stops the rest and undoes what the string did
        // so far. Their rows are collected as they run, so an error while producing rows
        // stops the block in order too.
        self.in_block = true;
        let mut out = vec![];
        for stmt in statements {
            let r = match self.run(stmt).await {
                Ok(StatementOutput::Rows { schema, stream }) => {
                    let collected: Result<Vec<RecordBatch>, _> =
                        stream.collect::<Vec<_>>().await.into_iter().collect();
                    match collected {
                        Ok(batches) => Ok(rows_output(schema, batches)),
                        Err(e) => {
                            self.fail_transaction();
                            Err(e.into())
                        }
                    }
                }
                other => other,
            };
            let stop = match &r {
                Err(_) => true,
                // COPY FROM STDIN continues with the client's data: it ends the block.
                Ok(StatementOutput::CopyIn { .. }) => true,
                Ok(_) => false,
            };
            out.push(r);
            if stop {
                break;
            }
        }
        self.in_block = false;
        let copying = matches!(out.last(), Some(Ok(StatementOutput::CopyIn { .. })));
        if !copying
            && self.txn.as_ref().is_some_and(|t| !t.explicit)
            && let Err(e) = self.commit_open().await
        {
            out.push(Err(e));
        }
        out
    }

    /// Parse one statement for the extended protocol and describe its parameters and result.
    pub async fn prepare(
        &mut self,
        sql: &str,
        param_types: &[Option<DataType>],
    ) -> Result<Prepared, NodeError> {
        let mut statements = self.parse(sql)?;
        if statements.len() > 1 {
            return Err(NodeError::invalid(
                "42601",
                "cannot insert multiple commands into a prepared statement",
            ));
        }
        let Some(stmt) = statements.pop() else {
            return Ok(Prepared {
                sql: sql.to_string(),
                param_types: vec![],
                result_schema: None,
                statement: None,
            });
        };
        let mut stmt = stmt;
        // A type the client declared in Parse is the parameter's type (as in Postgres), not
        // a hint the planner may override from context.
        params::cast_declared(&mut stmt.statement, param_types)?;
        let n = params::count_placeholders(&stmt.statement);
        let (inferred, result_schema) = self.describe(&stmt, n, param_types).await?;
        let param_types = (0..n)
            .map(|i| {
                param_types
                    .get(i)
                    .cloned()
                    .flatten()
                    .or_else(|| inferred.get(i).cloned().flatten())
                    .unwrap_or(DataType::Utf8)
            })
            .collect();
        Ok(Prepared {
            sql: sql.to_string(),
            param_types,
            result_schema,
            statement: Some(stmt),
        })
    }

    /// Execute a prepared statement with parameter values.
    pub async fn execute_prepared(
        &mut self,
        prepared: &Prepared,
        params: Vec<ScalarValue>,
    ) -> Result<StatementOutput, NodeError> {
        let Some(stmt) = &prepared.statement else {
            return Ok(StatementOutput::command(""));
        };
        let mut stmt = stmt.clone();
        params::substitute(&mut stmt.statement, &params)?;
        let out = self.run(stmt).await?;
        Ok(match (out, &prepared.result_schema) {
            (StatementOutput::Rows { schema, stream }, Some(described)) if schema != *described => {
                conform_stream(stream, described.clone())
            }
            (out, _) => out,
        })
    }

    fn parse(&self, sql: &str) -> Result<Vec<ParsedStatement>, NodeError> {
        // Client catalog queries go through datafusion-pg-catalog's parser first: it substitutes
        // a few known client queries (psql's \du ARRAY(subquery), ...) with plannable ones.
        let catalog = is_catalog_query(sql);
        let mut statements = match catalog.then(|| crate::pg::parse_fallback(sql)).flatten() {
            Some(s) => s,
            None => basalt_sql::parse(sql)?,
        };
        for s in &mut statements {
            if is_catalog_query(&s.sql) && references_catalog(&s.statement) {
                crate::pg::rewrite(&mut s.statement);
            }
            basalt_planner::redshift::rewrite(&mut s.statement)?;
            crate::pg::postgres_column_names(&mut s.statement);
            exponent_literals_as_double(&mut s.statement);
            int4_literals(&mut s.statement);
        }
        Ok(statements)
    }

    fn mark_failed(&mut self) {
        if let Some(t) = &mut self.txn
            && t.explicit
        {
            t.failed = true;
        }
    }

    /// Run one statement, handling the implicit transaction around it and failure state.
    async fn run(&mut self, stmt: ParsedStatement) -> Result<StatementOutput, NodeError> {
        debug!(session = self.id, sql = %stmt.sql, "statement");
        self.statement_text = stmt.sql.chars().take(QUERYTXT_CHARS).collect();
        let is_txn_control = matches!(
            stmt.statement,
            Statement::Commit { .. } | Statement::Rollback { .. }
        );
        if self.txn.as_ref().is_some_and(|t| t.failed) && !is_txn_control {
            return Err(NodeError::TransactionAborted);
        }
        let timeout_ms = self.settings.statement_timeout_ms();
        let r = if timeout_ms > 0 {
            let deadline =
                tokio::time::Instant::now() + std::time::Duration::from_millis(timeout_ms);
            match tokio::time::timeout_at(deadline, self.dispatch(stmt)).await {
                Ok(Ok(StatementOutput::Rows { schema, stream })) => Ok(StatementOutput::Rows {
                    schema: schema.clone(),
                    stream: with_deadline(stream, schema, deadline),
                }),
                Ok(Ok(StatementOutput::CopyOut {
                    schema,
                    stream,
                    format,
                })) => Ok(StatementOutput::CopyOut {
                    schema: schema.clone(),
                    stream: with_deadline(stream, schema, deadline),
                    format,
                }),
                Ok(other) => other,
                Err(_) => Err(NodeError::invalid(
                    "57014",
                    "canceling statement due to statement timeout",
                )),
            }
        } else {
            self.dispatch(stmt).await
        };
        match &r {
            // The COPY's transaction ends when its data does.
            Ok(StatementOutput::CopyIn { .. }) => {}
            Ok(_) => {
                if !self.in_block && self.txn.as_ref().is_some_and(|t| !t.explicit) {
                    self.commit_open().await?;
                }
            }
            Err(_) => {
                if self.txn.as_ref().is_some_and(|t| !t.explicit) {
                    self.rollback_open();
                } else {
                    self.mark_failed();
                }
            }
        }
        r
    }

    pub(crate) async fn dispatch(
        &mut self,
        mut ps: ParsedStatement,
    ) -> Result<StatementOutput, NodeError> {
        hash_name_is_temporary(&mut ps.statement);
        // A view's stored query stays as written; everything else reads views expanded.
        if !matches!(ps.statement, Statement::CreateView(_)) {
            self.expand_views(&mut ps.statement)?;
        }
        if let Some(u) = &ps.unload {
            return self.unload(&ps.statement, &u.location, &u.parameters).await;
        }
        let stmt = &ps.statement;
        match stmt {
            Statement::StartTransaction { modifier, .. } => {
                if matches!(
                    modifier,
                    Some(TransactionModifier::Try | TransactionModifier::Catch)
                ) {
                    return Err(NodeError::unsupported("BEGIN TRY/CATCH"));
                }
                self.begin_explicit();
                Ok(StatementOutput::command("BEGIN"))
            }
            Statement::Commit { .. } => self.commit_explicit().await,
            Statement::Rollback { savepoint, .. } => match savepoint {
                Some(sp) => self.rollback_to_savepoint(&sp.value),
                None => {
                    self.rollback_open();
                    Ok(StatementOutput::command("ROLLBACK"))
                }
            },
            Statement::Savepoint { name } => self.savepoint(&name.value),
            Statement::ReleaseSavepoint { name } => self.release_savepoint(&name.value),
            Statement::Set(set) => self.set(set),
            Statement::ShowVariable { variable } => self.show(variable),
            Statement::Reset(r) => {
                match &r.reset {
                    Reset::ALL => self.settings.reset_all(),
                    Reset::ConfigurationParameter(name) => {
                        self.settings.reset(&object_name_text(name))
                    }
                }
                Ok(StatementOutput::command("RESET"))
            }
            Statement::Discard { .. } => {
                self.cursors.clear();
                self.sql_prepared.clear();
                Ok(StatementOutput::command("DISCARD ALL"))
            }
            Statement::Deallocate { name, .. } => {
                if name.value.eq_ignore_ascii_case("all") {
                    self.sql_prepared.clear();
                } else {
                    self.sql_prepared.remove(&name.value.to_lowercase());
                }
                Ok(StatementOutput::command("DEALLOCATE"))
            }
            Statement::Declare { .. } => self.declare(&ps.statement).await,
            Statement::Fetch {
                name, direction, ..
            } => {
                let name = ident_name(name);
                self.fetch(&name, direction)
            }
            Statement::Close { cursor } => Ok(self.close_cursor(cursor)),
            Statement::Prepare {
                name, statement, ..
            } => Ok(self.prepare_sql(&name.value, statement)),
            Statement::Execute {
                name: Some(name),
                parameters,
                ..
            } => {
                let name = object_name_text(name);
                self.execute_sql(&name, parameters).await
            }
            Statement::Query(q) if select_into(q).is_some() => {
                // SELECT ... INTO t: CREATE TABLE t AS SELECT ...
                let mut q = q.clone();
                let into = take_select_into(&mut q).expect("checked above");
                let ctas = format!(
                    "CREATE {}TABLE {} AS {q}",
                    if into.temporary { "TEMP " } else { "" },
                    into.name
                );
                let mut stmts = basalt_sql::parse(&ctas)?;
                let mut ps = stmts
                    .pop()
                    .ok_or_else(|| NodeError::internal("SELECT INTO rewrite"))?;
                hash_name_is_temporary(&mut ps.statement);
                self.ddl(ps).await
            }
            Statement::Query(q) if pg_sleep_seconds(q).is_some() => {
                // `SELECT pg_sleep(n)`: an asynchronous sleep, so cancel and timeouts end it.
                let secs = pg_sleep_seconds(q).filter(|s| s.is_finite()).unwrap_or(0.0);
                tokio::time::sleep(std::time::Duration::from_secs_f64(
                    secs.clamp(0.0, 86_400.0),
                ))
                .await;
                let schema = Arc::new(Schema::new(vec![Field::new(
                    "pg_sleep",
                    DataType::Utf8,
                    true,
                )]));
                let batch = RecordBatch::try_new(
                    schema.clone(),
                    vec![Arc::new(StringArray::from(vec![Some("")]))],
                )?;
                Ok(rows_output(schema, vec![batch]))
            }
            Statement::Query(_) | Statement::Explain { .. } => self.query(ps.statement).await,
            Statement::CreateSchema { .. }
            | Statement::CreateTable(_)
            | Statement::AlterTable(_)
            | Statement::Truncate(_) => self.ddl(ps).await,
            Statement::Drop {
                object_type: ObjectType::Table | ObjectType::Schema,
                ..
            } => self.ddl(ps).await,
            Statement::CreateView(cv) => self.create_view(cv).await,
            Statement::Drop {
                object_type: ObjectType::View,
                names,
                if_exists,
                cascade,
                ..
            } => self.drop_views(names, *if_exists, *cascade),
            Statement::Insert(_) | Statement::Delete(_) | Statement::Update(_) => {
                self.dml(ps).await
            }
            Statement::Copy { .. } => match &ps.copy_parameters {
                Some(params) => self.copy_from_location(&ps.statement, params).await,
                None => self.copy(&ps.statement).await,
            },
            Statement::Analyze(a) => match &ps.compression {
                Some(c) => self.analyze_compression(a, c.comprows).await,
                None => self.analyze(a, ps.predicate_columns).await,
            },
            Statement::Vacuum(v) => self.vacuum(v).await,
            other => Err(NodeError::unsupported(statement_kind(other))),
        }
    }

    // ---- transactions ----

    fn begin_explicit(&mut self) {
        match &mut self.txn {
            Some(t) => {
                // Postgres: WARNING there is already a transaction in progress.
                t.explicit = true;
            }
            None => {
                let (txn, pin) = self.begin_pinned();
                self.txn = Some(OpenTxn {
                    txn,
                    explicit: true,
                    failed: false,
                    savepoints: vec![],
                    written: FileSet::new(),
                    _pin: pin,
                });
            }
        }
    }

    /// The open transaction, starting an implicit one if needed.
    pub(crate) fn txn_mut(&mut self) -> &mut OpenTxn {
        if self.txn.is_none() {
            let (txn, pin) = self.begin_pinned();
            self.txn = Some(OpenTxn {
                txn,
                explicit: false,
                failed: false,
                savepoints: vec![],
                written: FileSet::new(),
                _pin: pin,
            });
        }
        self.txn.as_mut().expect("just set")
    }

    /// Begin a catalog transaction on a pinned version.
    fn begin_pinned(&self) -> (Transaction, VersionPin) {
        loop {
            let txn = self.leader.catalog().begin();
            let pin = self.leader.pin(txn.base_version());
            if self.leader.catalog().snapshot().version == txn.base_version() {
                return (txn, pin);
            }
        }
    }

    async fn commit_explicit(&mut self) -> Result<StatementOutput, NodeError> {
        match &self.txn {
            Some(t) if t.failed => {
                self.rollback_open();
                Ok(StatementOutput::command("ROLLBACK"))
            }
            Some(_) => {
                self.commit_open().await?;
                Ok(StatementOutput::command("COMMIT"))
            }
            None => Ok(StatementOutput::command("COMMIT")),
        }
    }

    /// Commit the open transaction: publish the new catalog version, then reclaim files.
    pub(crate) async fn commit_open(&mut self) -> Result<(), NodeError> {
        let Some(open) = self.txn.take() else {
            return Ok(());
        };
        if open.explicit {
            // Cursors are WITHOUT HOLD: they end with the transaction block.
            self.cursors.clear();
        }
        let old = self.leader.catalog().snapshot();
        let written = open.written.clone();
        match self.leader.catalog().commit(open.txn) {
            Ok(new) => {
                // Files written but superseded inside the transaction were never visible.
                let live = new.live_files();
                let superseded: FileSet =
                    written.into_iter().filter(|f| !live.contains(f)).collect();
                self.leader.delete_files(&superseded);
                self.leader.retire(&old, &new);
                Ok(())
            }
            Err(e) => {
                self.leader.delete_files(&written);
                Err(e.into())
            }
        }
    }

    pub(crate) fn rollback_open(&mut self) {
        self.cursors.clear();
        if let Some(open) = self.txn.take() {
            self.leader.delete_files(&open.written);
        }
    }

    fn savepoint(&mut self, name: &str) -> Result<StatementOutput, NodeError> {
        let Some(t) = self.txn.as_mut().filter(|t| t.explicit) else {
            return Err(NodeError::invalid(
                "25P01",
                "SAVEPOINT can only be used in transaction blocks",
            ));
        };
        let snap = t.txn.clone();
        t.savepoints.push((name.to_string(), snap));
        Ok(StatementOutput::command("SAVEPOINT"))
    }

    fn release_savepoint(&mut self, name: &str) -> Result<StatementOutput, NodeError> {
        let Some(t) = self.txn.as_mut().filter(|t| t.explicit) else {
            return Err(NodeError::invalid(
                "25P01",
                "RELEASE SAVEPOINT can only be used in transaction blocks",
            ));
        };
        let Some(pos) = t.savepoints.iter().rposition(|(n, _)| n == name) else {
            return Err(NodeError::invalid(
                "3B001",
                format!("savepoint \"{name}\" does not exist"),
            ));
        };
        t.savepoints.truncate(pos);
        Ok(StatementOutput::command("RELEASE"))
    }

    fn rollback_to_savepoint(&mut self, name: &str) -> Result<StatementOutput, NodeError> {
        let Some(t) = self.txn.as_mut().filter(|t| t.explicit) else {
            return Err(NodeError::invalid(
                "25P01",
                "ROLLBACK TO SAVEPOINT can only be used in transaction blocks",
            ));
        };
        let Some(pos) = t.savepoints.iter().rposition(|(n, _)| n == name) else {
            return Err(NodeError::invalid(
                "3B001",
                format!("savepoint \"{name}\" does not exist"),
            ));
        };
        t.savepoints.truncate(pos + 1);
        t.txn = t.savepoints[pos].1.clone();
        t.failed = false;
        Ok(StatementOutput::command("ROLLBACK"))
    }

    // ---- catalog view ----

    /// The catalog as the current statement sees it, installed in the planner's view, and a
    /// pin that keeps its files alive while the statement (or its result stream) runs.
    pub(crate) fn refresh_view(&mut self) -> (Arc<CatalogState>, VersionPin) {
        let (state, version) = match &self.txn {
            Some(t) => (Arc::new(t.txn.state().clone()), t.txn.base_version()),
            None => {
                let (s, pin) = self.leader.pinned_snapshot();
                self.view.set(s.clone());
                return (s, pin);
            }
        };
        self.view.set(state.clone());
        (state, self.leader.pin(version))
    }

    /// Resolve a table name as the session sees it (temp tables first for unqualified names).
    pub(crate) fn resolve_table(
        &self,
        state: &CatalogState,
        name: &ObjectName,
    ) -> Result<TableMeta, NodeError> {
        let (schema, table) = split_name(name)?;
        let found = match &schema {
            Some(s) => state.table_by_name(s, &table),
            None => state
                .table_by_name(&self.temp_schema(), &table)
                .or_else(|| state.table_by_name("public", &table)),
        };
        found.cloned().ok_or_else(|| {
            basalt_catalog::CatalogError::TableNotFound {
                name: match schema {
                    Some(s) => format!("{s}.{table}"),
                    None => table,
                },
            }
            .into()
        })
    }

    pub(crate) fn temp_schema(&self) -> String {
        temp_schema(self.id)
    }

    // ---- queries ----

    /// Plan and start a query; rows stream from the slices.
    pub(crate) async fn query(&mut self, stmt: Statement) -> Result<StatementOutput, NodeError> {
        self.query_wrapped(stmt, None).await
    }

    /// Run a query, its logical plan first put under `wrap`'s node (UNLOAD's writer).
    pub(crate) async fn query_wrapped(
        &mut self,
        stmt: Statement,
        wrap: Option<PlanWrap>,
    ) -> Result<StatementOutput, NodeError> {
        let (state, pin) = self.refresh_view();
        let plan = plan_statement(&self.ctx.state(), stmt).await?;
        self.record_predicate_columns(&state, &plan);
        if let datafusion::logical_expr::LogicalPlan::Explain(explain) = &plan
            && !explain.verbose
        {
            return self.explain(&explain.plan).await;
        }
        let plan = match wrap {
            Some(wrap) => wrap(plan)?,
            None => plan,
        };
        let df = self.ctx.execute_logical_plan(plan).await?;
        let task_ctx = Arc::new(df.task_ctx());
        let physical = df.create_physical_plan().await?;
        if basalt_mpp::is_distributed(physical.as_ref()) {
            self.check_nodes_up()?;
        }
        let stream = datafusion::physical_plan::execute_stream(physical.clone(), task_ctx)?;
        let log = self.leader.query_log().clone();
        let stream = crate::querylog::logged(
            stream,
            crate::querylog::QueryRun {
                query: log.next_id(),
                log,
                pid: self.id as i32,
                user: self.user.clone(),
                text: self.statement_text.clone(),
                start: chrono::Utc::now().naive_utc(),
                plan: physical,
                last_query: self.last_query.clone(),
            },
        );
        // The executed plan's schema: analysis may retype columns (`sum(bigint)` is numeric).
        let planned: SchemaRef = stream.schema();
        let renamed = crate::pg::output_schema(&planned);
        let schema = renamed.clone().unwrap_or(planned);
        let stream = stream.map(move |b| {
            let _keep = &pin;
            match (&renamed, b) {
                (Some(s), Ok(b)) => Ok(RecordBatch::try_new(s.clone(), b.columns().to_vec())?),
                (_, b) => b,
            }
        });
        Ok(StatementOutput::Rows {
            schema: schema.clone(),
            stream: Box::pin(RecordBatchStreamAdapter::new(schema, stream)),
        })
    }

    /// Fails with 58000 while a compute node is down: work that runs on every node would
    /// fail on it.
    pub(crate) fn check_nodes_up(&self) -> Result<(), NodeError> {
        let down = self.leader.nodes_down();
        if down.is_empty() {
            return Ok(());
        }
        let nodes: Vec<String> = down.iter().map(|n| n.to_string()).collect();
        let (which, verb) = match nodes.as_slice() {
            [one] => (format!("compute node {one}"), "is"),
            many => (format!("compute nodes {}", many.join(", ")), "are"),
        };
        Err(NodeError::invalid(
            "58000",
            format!("{which} {verb} down: queries that read its slices fail until it is back"),
        ))
    }

    /// EXPLAIN as Redshift prints it: `XN` steps with row and width estimates, the data
    /// movement of every join (DS_DIST_NONE, DS_BCAST_INNER, ...) and the network steps, a
    /// row per line in one `QUERY PLAN` column. (`EXPLAIN VERBOSE` shows DataFusion's plans.)
    async fn explain(
        &self,
        plan: &datafusion::logical_expr::LogicalPlan,
    ) -> Result<StatementOutput, NodeError> {
        let physical = self.ctx.state().create_physical_plan(plan).await?;
        let lines = basalt_mpp::redshift_explain(&physical);
        let schema = Arc::new(Schema::new(vec![Field::new(
            "QUERY PLAN",
            DataType::Utf8,
            false,
        )]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(lines))])?;
        Ok(rows_output(schema, vec![batch]))
    }

    /// Remember the columns `plan` uses as predicates, per table (ANALYZE PREDICATE COLUMNS).
    fn record_predicate_columns(
        &self,
        state: &CatalogState,
        plan: &datafusion::logical_expr::LogicalPlan,
    ) {
        let mut by_table: std::collections::BTreeMap<TableId, Vec<String>> = Default::default();
        for (table, column) in crate::analyze::predicate_columns(plan) {
            let found = match table.schema() {
                Some(s) => state.table_by_name(s, table.table()),
                None => state
                    .table_by_name(&self.temp_schema(), table.table())
                    .or_else(|| state.table_by_name("public", table.table())),
            };
            if let Some(t) = found {
                by_table.entry(t.id).or_default().push(column);
            }
        }
        for (id, columns) in by_table {
            self.leader.record_predicate_columns(id, columns);
        }
    }

    /// Parameter types and result columns of a statement, without running it.
    async fn describe(
        &mut self,
        stmt: &ParsedStatement,
        n: usize,
        given: &[Option<DataType>],
    ) -> Result<(Vec<Option<DataType>>, Option<SchemaRef>), NodeError> {
        let mut expanded = stmt.clone();
        if !matches!(expanded.statement, Statement::CreateView(_)) {
            self.expand_views(&mut expanded.statement)?;
        }
        let stmt = &expanded;
        if stmt.compression.is_some() {
            return Ok((vec![], Some(crate::analyze::compression_schema())));
        }
        // UNLOAD returns no rows.
        if stmt.unload.is_some() {
            return Ok((vec![], None));
        }
        match &stmt.statement {
            Statement::ShowVariable { variable } => {
                let name = variable
                    .iter()
                    .map(|i| i.value.clone())
                    .collect::<Vec<_>>()
                    .join(" ");
                Ok((vec![], Some(show_schema(&name))))
            }
            // The columns of the cursor it reads (psycopg's named cursors FETCH through the
            // extended protocol and need a RowDescription).
            Statement::Fetch { name, .. } => Ok((
                vec![],
                self.cursor_description(&ident_name(name)).map(|(s, _)| s),
            )),
            Statement::Query(q) if pg_sleep_seconds(q).is_some() => Ok((
                vec![],
                Some(Arc::new(Schema::new(vec![Field::new(
                    "pg_sleep",
                    DataType::Utf8,
                    true,
                )]))),
            )),
            Statement::Query(_) | Statement::Explain { .. } => {
                self.refresh_view();
                let state = self.ctx.state();
                let planned = plan_statement(&state, stmt.statement.clone()).await;
                // A result column typed only by an untyped parameter (`SELECT $1`) has no
                // type yet: describe it as the fallback below does.
                let planned = planned.and_then(|plan| {
                    if n > 0
                        && plan
                            .schema()
                            .fields()
                            .iter()
                            .any(|f| f.data_type() == &DataType::Null)
                    {
                        Err(datafusion::error::DataFusionError::Plan(
                            "untyped parameter in the result".into(),
                        ))
                    } else {
                        Ok(plan)
                    }
                });
                match planned {
                    Ok(plan) => {
                        let types = plan.get_parameter_types().unwrap_or_default();
                        let inferred = (1..=n)
                            .map(|i| types.get(&format!("${i}")).cloned().flatten())
                            .collect();
                        let schema = analyzed_schema(&state, plan);
                        let schema = crate::pg::output_schema(&schema).unwrap_or(schema);
                        Ok((inferred, Some(schema)))
                    }
                    Err(first) => {
                        // Untyped parameters DataFusion cannot infer: plan with typed NULLs.
                        let mut s = stmt.statement.clone();
                        let nulls: Vec<ScalarValue> = (0..n)
                            .map(|i| {
                                ScalarValue::try_from(
                                    given.get(i).cloned().flatten().unwrap_or(DataType::Utf8),
                                )
                                .unwrap_or(ScalarValue::Null)
                            })
                            .collect();
                        params::substitute(&mut s, &nulls)?;
                        let plan = plan_statement(&state, s).await.map_err(|_| first)?;
                        let schema = analyzed_schema(&state, plan);
                        let schema = crate::pg::output_schema(&schema).unwrap_or(schema);
                        Ok((vec![], Some(schema)))
                    }
                }
            }
            Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => {
                self.refresh_view();
                let planned = self
                    .ctx
                    .state()
                    .statement_to_plan(DFStatement::Statement(Box::new(stmt.statement.clone())))
                    .await;
                let inferred = match planned {
                    Ok(plan) => {
                        let types = plan.get_parameter_types().unwrap_or_default();
                        (1..=n)
                            .map(|i| types.get(&format!("${i}")).cloned().flatten())
                            .collect()
                    }
                    Err(_) => vec![],
                };
                Ok((inferred, None))
            }
            _ => Ok((vec![], None)),
        }
    }

    // ---- settings ----

    fn set(&mut self, set: &Set) -> Result<StatementOutput, NodeError> {
        match set {
            Set::SingleAssignment {
                variable, values, ..
            } => {
                let name = object_name_text(variable);
                let value = values
                    .iter()
                    .map(expr_setting_text)
                    .collect::<Vec<_>>()
                    .join(", ");
                self.settings.set(&name, &value);
            }
            Set::SetTimeZone { value, .. } => {
                self.settings.set("timezone", &expr_setting_text(value));
            }
            Set::SetNames { charset_name, .. } => {
                self.settings.set("client_encoding", &charset_name.value);
            }
            Set::MultipleAssignments { assignments } => {
                for a in assignments {
                    self.settings
                        .set(&object_name_text(&a.name), &expr_setting_text(&a.value));
                }
            }
            Set::SetTransaction { .. } | Set::SetSessionParam(_) | Set::SetRole { .. } => {}
            Set::SetSessionAuthorization(_) => {}
            other => {
                warn!(statement = %other, "ignored SET form");
            }
        }
        Ok(StatementOutput::command("SET"))
    }

    fn show(
        &mut self,
        variable: &[basalt_sql::sqlparser::ast::Ident],
    ) -> Result<StatementOutput, NodeError> {
        let name = variable
            .iter()
            .map(|i| i.value.to_ascii_lowercase())
            .collect::<Vec<_>>()
            .join(" ");
        if name == "all" {
            let all = self.settings.all();
            let schema = Arc::new(Schema::new(vec![
                Field::new("name", DataType::Utf8, false),
                Field::new("setting", DataType::Utf8, false),
                Field::new("description", DataType::Utf8, false),
            ]));
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from_iter_values(
                        all.iter().map(|r| r.0.clone()),
                    )),
                    Arc::new(StringArray::from_iter_values(
                        all.iter().map(|r| r.1.clone()),
                    )),
                    Arc::new(StringArray::from_iter_values(
                        all.iter().map(|r| r.2.clone()),
                    )),
                ],
            )?;
            return Ok(rows_output(schema, vec![batch]));
        }
        let Some(value) = self.settings.get(&name).map(|s| s.to_string()) else {
            return Err(NodeError::invalid(
                "42704",
                format!("unrecognized configuration parameter \"{name}\""),
            ));
        };
        let schema = show_schema(&name);
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(vec![value]))],
        )?;
        Ok(rows_output(schema, vec![batch]))
    }
}

/// Numeric literals are exact DECIMALs (as in Postgres), except ones written with an exponent
/// (`1e300`), which Postgres reads as exact too but DataFusion cannot hold as a decimal; they
/// become DOUBLE PRECISION.
fn exponent_literals_as_double(stmt: &mut Statement) {
    use basalt_sql::sqlparser::ast::{Expr, Value, visit_expressions_mut};
    let _ = visit_expressions_mut(stmt, |e| {
        if let Expr::Value(v) = e
            && let Value::Number(n, _) = &v.value
            && n.contains(['e', 'E'])
            && let Ok(mut p) =
                basalt_sql::sqlparser::parser::Parser::new(&basalt_sql::BasaltDialect)
                    .try_with_sql(&format!("CAST('{n}' AS DOUBLE PRECISION)"))
            && let Ok(cast) = p.parse_expr()
        {
            *e = cast;
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
}

/// Integer literals that fit in 32 bits are `integer`, as in Postgres (`SELECT 1` is int4;
/// DataFusion types every integer literal int8). Not in places that need a plain number:
/// ORDER BY / GROUP BY ordinals, LIMIT / OFFSET / FETCH / TOP, and the arguments of table
/// and window functions that read constants (generate_series, lag, lead, ntile, nth_value).
fn int4_literals(stmt: &mut Statement) {
    use basalt_sql::sqlparser::ast::{
        CastKind, DataType as SqlDataType, Expr, GroupByExpr, OrderByKind, Query, Select,
        TableFactor, Value, VisitMut, VisitorMut,
    };
    use std::ops::ControlFlow;
    const CONSTANT_ARGS: &[&str] = &[
        "generate_series",
        "range",
        "lag",
        "lead",
        "ntile",
        "nth_value",
        "basalt_interval_times",
        "basalt_int2vector_at",
        "pg_sleep",
        // Their result type depends on the literal scale argument.
        "round",
        "trunc",
    ];
    // A setting's value is text to the setting, not an expression to type.
    if matches!(stmt, Statement::Set(_)) {
        return;
    }
    fn constant_args(e: &Expr) -> bool {
        matches!(e, Expr::Function(f) if f.name.0.last().and_then(|p| p.as_ident())
            .is_some_and(|i| CONSTANT_ARGS.contains(&i.value.to_ascii_lowercase().as_str())))
    }
    struct Typer {
        skip: usize,
    }
    impl VisitorMut for Typer {
        type Break = ();
        fn pre_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
            if matches!(
                t,
                TableFactor::Table { args: Some(_), .. } | TableFactor::Function { .. }
            ) {
                self.skip += 1;
            }
            ControlFlow::Continue(())
        }
        fn post_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
            if matches!(
                t,
                TableFactor::Table { args: Some(_), .. } | TableFactor::Function { .. }
            ) {
                self.skip -= 1;
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if constant_args(e) {
                self.skip += 1;
            }
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if constant_args(e) {
                self.skip -= 1;
                return ControlFlow::Continue(());
            }
            if self.skip == 0
                && let Expr::Value(v) = e
                && let Value::Number(n, false) = &v.value
                && n.bytes().all(|b| b.is_ascii_digit())
                && n.parse::<i32>().is_ok()
            {
                *e = Expr::Cast {
                    kind: CastKind::Cast,
                    expr: Box::new(e.clone()),
                    data_type: SqlDataType::Integer(None),
                    array: false,
                    format: None,
                };
            }
            ControlFlow::Continue(())
        }
    }
    /// Undo the typing where a plain number is required.
    struct Ordinals;
    fn plain(e: &mut Expr) {
        if let Expr::Cast {
            expr,
            data_type: SqlDataType::Integer(None),
            ..
        } = e
            && matches!(expr.as_ref(), Expr::Value(v) if matches!(v.value, Value::Number(..)))
        {
            *e = expr.as_ref().clone();
        }
    }
    impl VisitorMut for Ordinals {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            if let Some(ob) = &mut q.order_by
                && let OrderByKind::Expressions(exprs) = &mut ob.kind
            {
                for o in exprs {
                    plain(&mut o.expr);
                }
            }
            if let Some(limit) = &mut q.limit_clause {
                match limit {
                    basalt_sql::sqlparser::ast::LimitClause::LimitOffset {
                        limit,
                        offset,
                        limit_by,
                    } => {
                        if let Some(l) = limit {
                            plain(l);
                        }
                        if let Some(o) = offset {
                            plain(&mut o.value);
                        }
                        limit_by.iter_mut().for_each(plain);
                    }
                    basalt_sql::sqlparser::ast::LimitClause::OffsetCommaLimit { offset, limit } => {
                        plain(offset);
                        plain(limit);
                    }
                }
            }
            if let Some(f) = &mut q.fetch
                && let Some(n) = &mut f.quantity
            {
                plain(n);
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            // Window frame offsets (`ROWS BETWEEN 1 PRECEDING ...`).
            if let Expr::Function(f) = e
                && let Some(basalt_sql::sqlparser::ast::WindowType::WindowSpec(spec)) = &mut f.over
                && let Some(frame) = &mut spec.window_frame
            {
                use basalt_sql::sqlparser::ast::WindowFrameBound;
                let bounds =
                    std::iter::once(&mut frame.start_bound).chain(frame.end_bound.as_mut());
                for b in bounds {
                    if let WindowFrameBound::Preceding(Some(x))
                    | WindowFrameBound::Following(Some(x)) = b
                    {
                        plain(x);
                    }
                }
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_select(&mut self, s: &mut Select) -> ControlFlow<()> {
            if let GroupByExpr::Expressions(exprs, _) = &mut s.group_by {
                exprs.iter_mut().for_each(plain);
            }
            if let Some(top) = &mut s.top
                && let Some(basalt_sql::sqlparser::ast::TopQuantity::Expr(e)) = &mut top.quantity
            {
                plain(e);
            }
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut Typer { skip: 0 });
    let _ = stmt.visit(&mut Ordinals);
}

/// `SELECT pg_sleep(<number>)` → the number of seconds.
fn pg_sleep_seconds(q: &basalt_sql::sqlparser::ast::Query) -> Option<f64> {
    use basalt_sql::sqlparser::ast::{
        Expr, FunctionArg, FunctionArgExpr, FunctionArguments, SelectItem, SetExpr,
    };
    let SetExpr::Select(s) = q.body.as_ref() else {
        return None;
    };
    if !s.from.is_empty() {
        return None;
    }
    let [item] = s.projection.as_slice() else {
        return None;
    };
    let e = match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return None,
    };
    let Expr::Function(f) = e else { return None };
    if !f
        .name
        .to_string()
        .to_ascii_lowercase()
        .ends_with("pg_sleep")
    {
        return None;
    }
    let FunctionArguments::List(args) = &f.args else {
        return None;
    };
    match args.args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v)))] => {
            v.value.to_string().trim_matches('\'').parse().ok()
        }
        _ => None,
    }
}

fn select_into(
    q: &basalt_sql::sqlparser::ast::Query,
) -> Option<&basalt_sql::sqlparser::ast::SelectInto> {
    match q.body.as_ref() {
        basalt_sql::sqlparser::ast::SetExpr::Select(s) => s.into.as_ref(),
        _ => None,
    }
}

fn take_select_into(
    q: &mut basalt_sql::sqlparser::ast::Query,
) -> Option<basalt_sql::sqlparser::ast::SelectInto> {
    match q.body.as_mut() {
        basalt_sql::sqlparser::ast::SetExpr::Select(s) => s.into.take(),
        _ => None,
    }
}

/// The column SHOW returns: named like the setting, as Postgres does.
fn show_schema(name: &str) -> SchemaRef {
    let col = match name.to_ascii_lowercase().as_str() {
        "time zone" => "TimeZone".to_string(),
        "transaction isolation level" => "transaction_isolation".to_string(),
        other => other.to_string(),
    };
    Arc::new(Schema::new(vec![Field::new(col, DataType::Utf8, false)]))
}

/// End a result stream with 57014 once the statement timeout passes.
fn with_deadline(
    stream: SendableRecordBatchStream,
    schema: SchemaRef,
    deadline: tokio::time::Instant,
) -> SendableRecordBatchStream {
    let s = futures::stream::unfold(Some(stream), move |st| async move {
        let mut st = st?;
        match tokio::time::timeout_at(deadline, st.next()).await {
            Ok(Some(item)) => Some((item, Some(st))),
            Ok(None) => None,
            Err(_) => Some((
                Err(datafusion::error::DataFusionError::External(Box::new(
                    NodeError::invalid("57014", "canceling statement due to statement timeout"),
                ))),
                None,
            )),
        }
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, s))
}

pub(crate) fn rows_output(schema: SchemaRef, batches: Vec<RecordBatch>) -> StatementOutput {
    let stream = futures::stream::iter(batches.into_iter().map(Ok));
    StatementOutput::Rows {
        schema: schema.clone(),
        stream: Box::pin(RecordBatchStreamAdapter::new(schema, stream)),
    }
}

/// Cast a result stream to the schema announced by Describe.
/// Plan a statement. A name that is no column but an output alias of the same SELECT
/// refers to that alias's expression, as Redshift allows in WHERE and later select items
/// (lateral column aliases): `SELECT a + 1 AS b FROM t WHERE b > 2`. Columns win, so
/// aliases are substituted only for names the planner could not resolve.
pub(crate) async fn plan_statement(
    state: &datafusion::execution::SessionState,
    mut stmt: Statement,
) -> Result<datafusion::logical_expr::LogicalPlan, datafusion::error::DataFusionError> {
    for _ in 0..16 {
        match state
            .statement_to_plan(DFStatement::Statement(Box::new(stmt.clone())))
            .await
        {
            Ok(plan) => return Ok(plan),
            Err(e) => {
                let missing = match e.find_root() {
                    datafusion::error::DataFusionError::SchemaError(s, _) => match s.as_ref() {
                        datafusion::common::SchemaError::FieldNotFound { field, .. }
                            if field.relation.is_none() =>
                        {
                            Some(field.name.clone())
                        }
                        _ => None,
                    },
                    _ => None,
                };
                match missing {
                    Some(name) if crate::pg::substitute_lateral_alias(&mut stmt, &name) => {}
                    _ => return Err(e),
                }
            }
        }
    }
    state
        .statement_to_plan(DFStatement::Statement(Box::new(stmt)))
        .await
}

fn conform_stream(stream: SendableRecordBatchStream, target: SchemaRef) -> StatementOutput {
    let t = target.clone();
    let s = stream.map(move |b| {
        let b = b?;
        let cols = b
            .columns()
            .iter()
            .zip(t.fields())
            .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(t.clone(), cols)?)
    });
    StatementOutput::Rows {
        schema: target.clone(),
        stream: Box::pin(RecordBatchStreamAdapter::new(target, s)),
    }
}

pub(crate) fn object_name_text(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|p| {
            p.as_ident()
                .map(|i| i.value.clone())
                .unwrap_or_else(|| p.to_string())
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn expr_setting_text(e: &basalt_sql::sqlparser::ast::Expr) -> String {
    use basalt_sql::sqlparser::ast::{Expr, Value};
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        Expr::Identifier(i) => i.value.clone(),
        other => other.to_string(),
    }
}

/// Normalize an identifier as Postgres does: lower-case unless quoted.
pub(crate) fn ident_name(i: &basalt_sql::sqlparser::ast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

/// Split `[schema.]table` into normalized parts (a leading database part is accepted).
pub(crate) fn split_name(name: &ObjectName) -> Result<(Option<String>, String), NodeError> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| {
            p.as_ident()
                .map(ident_name)
                .unwrap_or_else(|| p.to_string())
        })
        .collect();
    match parts.as_slice() {
        // `#name`: a Redshift temporary table.
        [t] => Ok((None, t.trim_start_matches('#').to_string())),
        [s, t] => Ok((Some(s.clone()), t.clone())),
        [_db, s, t] => Ok((Some(s.clone()), t.clone())),
        _ => Err(NodeError::invalid(
            "42601",
            format!("improper qualified name (too many dotted names): {name}"),
        )),
    }
}

fn statement_kind(s: &Statement) -> String {
    let text = s.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    words.join(" ").to_uppercase()
}

/// The result columns a plan will produce once analyzed (analysis may retype a column, e.g.
/// `sum(bigint)` is numeric); the planned schema when analysis needs parameter values.
fn analyzed_schema(
    state: &datafusion::execution::SessionState,
    plan: datafusion::logical_expr::LogicalPlan,
) -> SchemaRef {
    let planned = Arc::new(plan.schema().as_arrow().clone());
    state
        .analyzer()
        .execute_and_check(plan, state.config_options(), |_, _| {})
        .map(|p| Arc::new(p.schema().as_arrow().clone()))
        .unwrap_or(planned)
}
