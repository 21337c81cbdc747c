//! Query handling: simple and extended protocol over a leader [`Session`], with cancellation,
//! panic isolation and transaction status.
//!
//! Every Query / Execute message gets a fresh cancel receiver from pgwire's
//! `ConnectionHandle`; the session call *and* every wait for the next row race against it.
//! Session calls run under `catch_unwind`, so a panic in the engine becomes an `XX000` error
//! and the connection stays usable.

use std::any::Any;
use std::fmt::Debug;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_trait::async_trait;
use basalt_node::{NodeError, Prepared, Session, StatementOutput, TransactionStatus};
use datafusion::arrow::datatypes::DataType;
use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use pgwire::api::copy::{CopyHandler, send_copy_in_response};
use pgwire::api::portal::{Format, Portal, PortalExecutionState};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{CopyResponse, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionHandle, DEFAULT_NAME, PgWireConnectionState, Type,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::data::{DataRow, NoData, ParameterDescription, RowDescription};
use pgwire::messages::extendedquery::{
    Close, CloseComplete, Describe, Execute, PortalSuspended, TARGET_TYPE_BYTE_PORTAL,
    TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::response::{
    EmptyQueryResponse, ReadyForQuery, TransactionStatus as PgTransactionStatus,
};
use pgwire::messages::simplequery::Query;
use tracing::{debug, warn};

use crate::copy_out::{CopyOut, copy_out};
use crate::params::decode_params;
use crate::types::{arrow_to_pg, field_infos, pg_to_arrow, row_stream};

/// A cancel signal: resolves when a CancelRequest for this connection arrives.
pub(crate) type CancelSignal = Shared<BoxFuture<'static, ()>>;

fn never() -> CancelSignal {
    futures::future::pending().boxed().shared()
}

/// Per-connection state, kept in pgwire's session extensions.
pub(crate) struct Conn {
    session: tokio::sync::Mutex<Session>,
    /// The cancel signal of the message being processed.
    cancel: std::sync::Mutex<CancelSignal>,
    /// A COPY FROM STDIN that failed on some CopyData: the rest of its data is discarded and
    /// the error reported at CopyDone / CopyFail, as Postgres does.
    copy_error: std::sync::Mutex<Option<NodeError>>,
}

impl Conn {
    pub(crate) fn new(session: Session) -> Self {
        Conn {
            session: tokio::sync::Mutex::new(session),
            cancel: std::sync::Mutex::new(never()),
            copy_error: std::sync::Mutex::new(None),
        }
    }

    /// Start processing a Query or Execute: install a fresh cancel receiver.
    async fn begin<C: ClientInfo + ?Sized>(&self, client: &C) -> CancelSignal {
        let signal = match client.session_extensions().get::<Arc<ConnectionHandle>>() {
            Some(handle) => {
                let rx = handle.start_query().await;
                // A dropped sender (replaced by the next query) is not a cancel.
                async move {
                    if rx.await.is_err() {
                        futures::future::pending::<()>().await;
                    }
                }
                .boxed()
                .shared()
            }
            None => never(),
        };
        *self.lock_cancel() = signal.clone();
        signal
    }

    fn signal(&self) -> CancelSignal {
        self.lock_cancel().clone()
    }

    fn lock_cancel(&self) -> std::sync::MutexGuard<'_, CancelSignal> {
        // A poisoned lock only means a panic while cloning a future handle; the value is fine.
        self.cancel.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn copy_error(&self) -> std::sync::MutexGuard<'_, Option<NodeError>> {
        // Poisoning cannot leave the Option in a bad state.
        self.copy_error.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The status for ReadyForQuery.
    async fn status(&self) -> PgTransactionStatus {
        match self.session.lock().await.transaction_status() {
            TransactionStatus::Idle => PgTransactionStatus::Idle,
            TransactionStatus::InTransaction => PgTransactionStatus::Transaction,
            TransactionStatus::Failed => PgTransactionStatus::Error,
        }
    }

    /// The connection ended: end its session (roll back, close cursors, drop its temporary
    /// tables).
    pub(crate) async fn close(&self) {
        let mut session = self.session.lock().await;
        if let Err(e) = session.close().await {
            warn!(session = session.id(), error = %e, "could not end the session cleanly");
        }
    }

    /// A statement failed where the session could not see it (in its result stream, while
    /// decoding parameters, or by cancellation): an open explicit transaction becomes failed,
    /// as in Postgres.
    async fn fail_transaction(&self) {
        self.session.lock().await.fail_transaction();
    }
}

fn conn<C: ClientInfo + ?Sized>(client: &C) -> PgWireResult<Arc<Conn>> {
    client.session_extensions().get::<Conn>().ok_or_else(|| {
        to_pg_error(&NodeError::internal(
            "connection has no session (startup incomplete)",
        ))
    })
}

/// Run a session call, racing it against the cancel signal and turning a panic into an
/// internal error.
async fn guarded<T>(
    cancel: &CancelSignal,
    fut: impl Future<Output = Result<T, NodeError>>,
) -> Result<T, NodeError> {
    let fut = AssertUnwindSafe(fut).catch_unwind();
    tokio::select! {
        biased;
        r = fut => r.unwrap_or_else(|p| Err(NodeError::internal(panic_message(p.as_ref())))),
        _ = cancel.clone() => Err(NodeError::Canceled),
    }
}

pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string());
    tracing::error!(panic = %what, "panic in query processing");
    format!("panic in query processing: {what}")
}

/// ErrorResponse fields for a session error (logged here, once).
pub(crate) fn error_info(e: &NodeError) -> ErrorInfo {
    debug!(sqlstate = e.sqlstate(), error = %e, "statement failed");
    let mut info = ErrorInfo::new("ERROR".into(), e.sqlstate().into(), e.to_string());
    info.position = e.position().map(|p| p.to_string());
    info
}

pub(crate) fn to_pg_error(e: &NodeError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(e)))
}

fn command_tag(tag: &str, rows: Option<u64>) -> Tag {
    match rows {
        Some(n) => Tag::new(tag).with_rows(n as usize),
        None => Tag::new(tag),
    }
}

fn is_empty_query(sql: &str) -> bool {
    sql.chars().all(|c| c == ';' || c.is_whitespace())
}

fn row_description(fields: &[FieldInfo]) -> RowDescription {
    RowDescription::new(fields.iter().map(Into::into).collect())
}

/// Tell the client how an Execute that sent rows ended: CommandComplete, PortalSuspended, or
/// the error (which fails the transaction).
async fn end_fetch<C>(client: &mut C, conn: &Conn, fetched: Fetch) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    match fetched {
        Fetch::Done(n) => {
            let tag = Tag::new("SELECT").with_rows(n);
            client
                .feed(PgWireBackendMessage::CommandComplete(tag.into()))
                .await?;
        }
        Fetch::Suspended => {
            client
                .feed(PgWireBackendMessage::PortalSuspended(PortalSuspended::new()))
                .await?;
        }
        Fetch::Failed(e) => {
            conn.fail_transaction().await;
            return Err(e);
        }
    }
    Ok(())
}

/// How sending rows from a result stream ended.
enum Fetch {
    /// The stream ended after this many rows.
    Done(usize),
    /// `max_rows` rows were sent and more remain.
    Suspended,
    /// The query failed (or was canceled) while producing rows.
    Failed(PgWireError),
}

/// Feed up to `max_rows` rows (0: all) to the client. The outer error is a broken connection.
async fn send_rows<C, S>(
    client: &mut C,
    rows: &mut S,
    max_rows: usize,
    cancel: &CancelSignal,
) -> PgWireResult<Fetch>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    S: Stream<Item = PgWireResult<DataRow>> + Unpin,
{
    let mut sent = 0;
    while max_rows == 0 || sent < max_rows {
        let next = tokio::select! {
            r = rows.next() => r,
            _ = cancel.clone() => Some(Err(to_pg_error(&NodeError::Canceled))),
        };
        match next {
            Some(Ok(row)) => {
                client.feed(PgWireBackendMessage::DataRow(row)).await?;
                sent += 1;
            }
            Some(Err(e)) => return Ok(Fetch::Failed(e)),
            None => return Ok(Fetch::Done(sent)),
        }
    }
    Ok(Fetch::Suspended)
}

/// A statement prepared through the extended protocol.
#[derive(Debug, Clone)]
pub(crate) struct BasaltStatement {
    pub prepared: Arc<Prepared>,
}

/// Prepares statements on the connection's session.
#[derive(Debug, Default)]
pub(crate) struct BasaltParser;

#[async_trait]
impl QueryParser for BasaltParser {
    type Statement = BasaltStatement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<BasaltStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let conn = conn(client)?;
        let hints: Vec<Option<DataType>> = types
            .iter()
            .map(|t| t.as_ref().and_then(pg_to_arrow))
            .collect();
        let prepared = guarded(&never(), async {
            conn.session.lock().await.prepare(sql, &hints).await
        })
        .await;
        match prepared {
            Ok(p) => Ok(Some(BasaltStatement {
                prepared: Arc::new(p),
            })),
            Err(e) => {
                conn.fail_transaction().await;
                Err(to_pg_error(&e))
            }
        }
    }

    fn get_parameter_types(&self, stmt: &BasaltStatement) -> PgWireResult<Vec<Type>> {
        Ok(stmt.prepared.param_types.iter().map(arrow_to_pg).collect())
    }

    fn get_result_schema(
        &self,
        stmt: &BasaltStatement,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        Ok(match &stmt.prepared.result_schema {
            Some(schema) => field_infos(schema, format.unwrap_or(&Format::UnifiedText)),
            None => vec![],
        })
    }
}

/// The simple and extended query handler.
#[derive(Debug, Default)]
pub(crate) struct QueryHandler {
    parser: Arc<BasaltParser>,
}

impl QueryHandler {
    /// Statement outputs of a simple query, sent one Response after the other; stops at the
    /// first error (including one raised while streaming rows) and at a COPY FROM STDIN,
    /// whose data comes next. Returns whether a COPY started.
    async fn send_outputs<C>(
        &self,
        client: &mut C,
        conn: &Conn,
        outputs: Vec<Result<StatementOutput, NodeError>>,
        cancel: &CancelSignal,
    ) -> PgWireResult<bool>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if outputs.is_empty() {
            client
                .feed(PgWireBackendMessage::EmptyQueryResponse(
                    EmptyQueryResponse::new(),
                ))
                .await?;
        }
        for output in outputs {
            match output {
                Ok(StatementOutput::Rows { schema, stream }) => {
                    let fields = field_infos(&schema, &Format::UnifiedText);
                    client
                        .feed(PgWireBackendMessage::RowDescription(row_description(
                            &fields,
                        )))
                        .await?;
                    let mut rows = Box::pin(row_stream(&schema, stream, &Format::UnifiedText));
                    match send_rows(client, &mut rows, 0, cancel).await? {
                        Fetch::Done(n) => {
                            let tag = Tag::new("SELECT").with_rows(n);
                            client
                                .feed(PgWireBackendMessage::CommandComplete(tag.into()))
                                .await?;
                        }
                        Fetch::Failed(e) => {
                            conn.fail_transaction().await;
                            let info: ErrorInfo = e.into();
                            client
                                .feed(PgWireBackendMessage::ErrorResponse(info.into()))
                                .await?;
                            return Ok(false);
                        }
                        // max_rows 0: the stream always runs to its end.
                        Fetch::Suspended => {}
                    }
                }
                Ok(StatementOutput::Command { tag, rows }) => {
                    send_notices(client, conn).await?;
                    client
                        .feed(PgWireBackendMessage::CommandComplete(
                            command_tag(&tag, rows).into(),
                        ))
                        .await?;
                }
                Ok(StatementOutput::CopyIn { columns }) => {
                    send_copy_in_response(client, copy_in(columns)).await?;
                    client.set_state(PgWireConnectionState::CopyInProgress(false));
                    return Ok(true);
                }
                Ok(StatementOutput::CopyOut {
                    schema,
                    stream,
                    format,
                }) => {
                    let copy = copy_out(&schema, stream, format);
                    if let Fetch::Failed(e) = send_copy_out(client, copy, cancel).await? {
                        conn.fail_transaction().await;
                        let info: ErrorInfo = e.into();
                        client
                            .feed(PgWireBackendMessage::ErrorResponse(info.into()))
                            .await?;
                        return Ok(false);
                    }
                }
                Err(e) => {
                    client
                        .feed(PgWireBackendMessage::ErrorResponse(error_info(&e).into()))
                        .await?;
                    return Ok(false);
                }
            }
        }
        Ok(false)
    }

    /// Run an Execute: start the portal on its first Execute, then send up to `max_rows`
    /// rows, ending with PortalSuspended or CommandComplete.
    async fn run_portal<C>(
        &self,
        client: &mut C,
        conn: &Conn,
        portal: &Portal<BasaltStatement>,
        max_rows: usize,
        cancel: &CancelSignal,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = BasaltStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let state = portal.state();
        let mut state = state.lock().await;
        if matches!(*state, PortalExecutionState::Initial) {
            match start_portal(conn, portal).await? {
                StatementOutput::Rows { schema, stream } => {
                    let format = &portal.result_column_format;
                    let fields = Arc::new(field_infos(&schema, format));
                    let rows = row_stream(&schema, stream, format);
                    *state = PortalExecutionState::Suspended(QueryResponse::new(fields, rows));
                }
                // A prepared comment-only query has nothing to run.
                StatementOutput::Command { tag, .. } if tag.is_empty() => {
                    client
                        .feed(PgWireBackendMessage::EmptyQueryResponse(
                            EmptyQueryResponse::new(),
                        ))
                        .await?;
                    return Ok(());
                }
                StatementOutput::Command { tag, rows } => {
                    send_notices(client, conn).await?;
                    client
                        .feed(PgWireBackendMessage::CommandComplete(
                            command_tag(&tag, rows).into(),
                        ))
                        .await?;
                    return Ok(());
                }
                StatementOutput::CopyIn { columns } => {
                    client.set_state(PgWireConnectionState::CopyInProgress(true));
                    send_copy_in_response(client, copy_in(columns)).await?;
                    return Ok(());
                }
                // COPY TO STDOUT ignores max_rows, as in Postgres.
                StatementOutput::CopyOut {
                    schema,
                    stream,
                    format,
                } => {
                    *state = PortalExecutionState::Finished;
                    let copy = copy_out(&schema, stream, format);
                    return match send_copy_out(client, copy, cancel).await? {
                        Fetch::Failed(e) => {
                            conn.fail_transaction().await;
                            Err(e)
                        }
                        Fetch::Done(_) | Fetch::Suspended => Ok(()),
                    };
                }
            }
        }
        let fetched = match &mut *state {
            PortalExecutionState::Suspended(response) => {
                send_rows(client, response.data_rows(), max_rows, cancel).await?
            }
            _ => Fetch::Done(0),
        };
        let suspended = matches!(fetched, Fetch::Suspended);
        let done = end_fetch(client, conn, fetched).await;
        if !suspended {
            *state = PortalExecutionState::Finished;
        }
        done
    }

    /// Execute on a portal that is a SQL cursor (`DECLARE name CURSOR FOR ...`): up to
    /// `max_rows` (0: all) of its next rows, then PortalSuspended if that many were sent,
    /// else CommandComplete. The rows stream from the cursor's query.
    async fn run_cursor<C>(
        &self,
        client: &mut C,
        conn: &Conn,
        name: &str,
        max_rows: usize,
        cancel: &CancelSignal,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (rows, binary) = {
            let mut session = conn.session.lock().await;
            if session.transaction_status() == TransactionStatus::Failed {
                return Err(to_pg_error(&NodeError::TransactionAborted));
            }
            let Some((_, binary)) = session.cursor_description(name) else {
                return Err(portal_not_found(name));
            };
            let limit = (max_rows > 0).then_some(max_rows);
            (session.fetch_cursor(name, limit), binary)
        };
        let (schema, stream) = match rows {
            Ok(StatementOutput::Rows { schema, stream }) => (schema, stream),
            Ok(other) => {
                return Err(to_pg_error(&NodeError::internal(format!(
                    "cursor fetch returned {other:?}"
                ))));
            }
            Err(e) => {
                conn.fail_transaction().await;
                return Err(to_pg_error(&e));
            }
        };
        let format = if binary {
            Format::UnifiedBinary
        } else {
            Format::UnifiedText
        };
        let mut rows = Box::pin(row_stream(&schema, stream, &format));
        let fetched = send_rows(client, &mut rows, max_rows, cancel).await?;
        end_fetch(client, conn, fetched).await
    }
}

/// Neither a bound portal nor a SQL cursor has this name (Postgres: 34000, not pgwire's 26000).
fn portal_not_found(name: &str) -> PgWireError {
    to_pg_error(&NodeError::invalid(
        "34000",
        format!("portal \"{name}\" does not exist"),
    ))
}

/// Start a bound portal: decode its parameters and execute its statement on the session.
/// The session's queued NOTICEs (a COPY that skipped files it had loaded), as
/// NoticeResponses.
async fn send_notices<C>(client: &mut C, conn: &Conn) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let notices = conn.session.lock().await.take_notices();
    for n in notices {
        let info = ErrorInfo::new("NOTICE".into(), "00000".into(), n);
        client
            .feed(PgWireBackendMessage::NoticeResponse(info.into()))
            .await?;
    }
    Ok(())
}

async fn start_portal(
    conn: &Conn,
    portal: &Portal<BasaltStatement>,
) -> PgWireResult<StatementOutput> {
    let stored = &portal.statement;
    let prepared = stored.statement.prepared.clone();
    let statement_name = if stored.id == DEFAULT_NAME {
        ""
    } else {
        stored.id.as_str()
    };
    let result = match decode_params(
        &portal.parameters,
        &portal.parameter_format,
        &stored.parameter_types,
        &prepared.param_types,
        statement_name,
    ) {
        Ok(params) => {
            guarded(&conn.signal(), async {
                conn.session
                    .lock()
                    .await
                    .execute_prepared(&prepared, params)
                    .await
            })
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(out) => Ok(out),
        Err(e) => {
            conn.fail_transaction().await;
            Err(to_pg_error(&e))
        }
    }
}

/// A COPY TO STDOUT as a pgwire [`CopyResponse`] (for the trait-level `do_query` API).
fn copy_out_response(copy: CopyOut) -> CopyResponse {
    let data_stream = copy.data.map(|r| match r {
        Ok(chunk) => Ok(CopyData::new(chunk.data)),
        Err(e) => Err(to_pg_error(&e)),
    });
    // Created as text and then marked binary: `CopyResponse::new` would append a second
    // binary trailer to the one our stream ends with.
    let mut response = CopyResponse::new(0, copy.response.columns as usize, data_stream);
    response.format = copy.response.format;
    response
}

/// Send a COPY TO STDOUT: CopyOutResponse, one CopyData per payload, CopyDone and `COPY n`.
/// An error while rows stream (or a cancel) ends the COPY without CopyDone; the caller sends
/// the ErrorResponse, as Postgres does. The outer error is a broken connection.
async fn send_copy_out<C>(
    client: &mut C,
    copy: CopyOut,
    cancel: &CancelSignal,
) -> PgWireResult<Fetch>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let CopyOut { response, mut data } = copy;
    client
        .feed(PgWireBackendMessage::CopyOutResponse(response))
        .await?;
    let mut rows = 0;
    loop {
        let next = tokio::select! {
            r = data.next() => r,
            _ = cancel.clone() => Some(Err(NodeError::Canceled)),
        };
        match next {
            Some(Ok(chunk)) => {
                rows += usize::from(chunk.is_row);
                client
                    .feed(PgWireBackendMessage::CopyData(CopyData::new(chunk.data)))
                    .await?;
            }
            Some(Err(e)) => return Ok(Fetch::Failed(to_pg_error(&e))),
            None => break,
        }
    }
    client
        .feed(PgWireBackendMessage::CopyDone(CopyDone::new()))
        .await?;
    let tag = Tag::new("COPY").with_rows(rows);
    client
        .feed(PgWireBackendMessage::CommandComplete(tag.into()))
        .await?;
    Ok(Fetch::Done(rows))
}

#[async_trait]
impl SimpleQueryHandler for QueryHandler {
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        let conn = conn(client)?;
        client.set_state(PgWireConnectionState::QueryInProgress);
        let cancel = conn.begin(client).await;
        let sql = query.query;
        let outputs = if is_empty_query(&sql) {
            Ok(vec![])
        } else {
            guarded(&cancel, async {
                Ok(conn.session.lock().await.execute(&sql).await)
            })
            .await
        };
        let sent = match outputs {
            Ok(outputs) => self.send_outputs(client, &conn, outputs, &cancel).await,
            Err(e) => {
                conn.fail_transaction().await;
                client
                    .feed(PgWireBackendMessage::ErrorResponse(error_info(&e).into()))
                    .await
                    .map(|()| false)
                    .map_err(Into::into)
            }
        };
        let status = conn.status().await;
        client.set_transaction_status(status);
        if sent? {
            // CopyDone / CopyFail end the COPY and send ReadyForQuery.
            return Ok(());
        }
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client
            .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                status,
            )))
            .await?;
        Ok(())
    }

    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // Not used by `on_query` above (which streams and tracks failures itself); kept
        // functional for callers of the trait API.
        let conn = conn(client)?;
        let outputs = guarded(&conn.signal(), async {
            Ok(conn.session.lock().await.execute(query).await)
        })
        .await
        .map_err(|e| to_pg_error(&e))?;
        if outputs.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        Ok(outputs
            .into_iter()
            .map(|o| match o {
                Ok(StatementOutput::Rows { schema, stream }) => {
                    let fields = Arc::new(field_infos(&schema, &Format::UnifiedText));
                    let rows = row_stream(&schema, stream, &Format::UnifiedText);
                    Response::Query(QueryResponse::new(fields, rows))
                }
                Ok(StatementOutput::Command { tag, rows }) => {
                    Response::Execution(command_tag(&tag, rows))
                }
                Ok(StatementOutput::CopyIn { columns }) => Response::CopyIn(copy_in(columns)),
                Ok(StatementOutput::CopyOut {
                    schema,
                    stream,
                    format,
                }) => Response::CopyOut(copy_out_response(copy_out(&schema, stream, format))),
                Err(e) => Response::Error(Box::new(error_info(&e))),
            })
            .collect())
    }
}

#[async_trait]
impl ExtendedQueryHandler for QueryHandler {
    type Statement = BasaltStatement;
    type QueryParser = BasaltParser;

    fn query_parser(&self) -> Arc<BasaltParser> {
        self.parser.clone()
    }

    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        let conn = conn(client)?;
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal = match client.portal_store().get_portal(name) {
            Some(Entry::Value(portal)) => Some(portal),
            Some(Entry::Empty) => {
                client
                    .feed(PgWireBackendMessage::EmptyQueryResponse(
                        EmptyQueryResponse::new(),
                    ))
                    .await?;
                return Ok(());
            }
            // In Postgres a SQL cursor is a portal: psycopg's named cursors DECLARE one, then
            // Describe (and may Execute) it by name.
            None => None,
        };
        let max_rows = message.max_rows.max(0) as usize;
        let cancel = conn.begin(client).await;
        client.set_state(PgWireConnectionState::QueryInProgress);
        let result = match portal {
            Some(portal) => {
                self.run_portal(client, &conn, &portal, max_rows, &cancel)
                    .await
            }
            None => {
                self.run_cursor(client, &conn, name, max_rows, &cancel)
                    .await
            }
        };
        if !matches!(client.state(), PgWireConnectionState::CopyInProgress(_)) {
            client.set_state(PgWireConnectionState::ReadyForQuery);
        }
        let status = conn.status().await;
        client.set_transaction_status(status);
        result
    }

    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // pgwire's default answers a command with parameters with an empty RowDescription;
        // Postgres (and JDBC) expect NoData.
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let (params, fields) = match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => match client.portal_store().get_statement(name) {
                Some(Entry::Value(stmt)) => (
                    Some(describe_params(&stmt)),
                    stmt.statement
                        .prepared
                        .result_schema
                        .as_ref()
                        .map(|s| field_infos(s, &Format::UnifiedText)),
                ),
                Some(Entry::Empty) => (Some(vec![]), None),
                None => return Err(PgWireError::StatementNotFound(name.to_owned())),
            },
            TARGET_TYPE_BYTE_PORTAL => match client.portal_store().get_portal(name) {
                Some(Entry::Value(portal)) => (
                    None,
                    portal
                        .statement
                        .statement
                        .prepared
                        .result_schema
                        .as_ref()
                        .map(|s| field_infos(s, &portal.result_column_format)),
                ),
                Some(Entry::Empty) => (None, None),
                // A SQL cursor (see on_execute).
                None => match conn(client)?.session.lock().await.cursor_description(name) {
                    Some((schema, binary)) => {
                        let format = if binary {
                            Format::UnifiedBinary
                        } else {
                            Format::UnifiedText
                        };
                        (None, Some(field_infos(&schema, &format)))
                    }
                    None => return Err(portal_not_found(name)),
                },
            },
            other => return Err(PgWireError::InvalidTargetType(other)),
        };
        if let Some(params) = params {
            client
                .feed(PgWireBackendMessage::ParameterDescription(
                    ParameterDescription::new(params.iter().map(|t| t.oid()).collect()),
                ))
                .await?;
        }
        match fields {
            Some(fields) => {
                client
                    .feed(PgWireBackendMessage::RowDescription(row_description(
                        &fields,
                    )))
                    .await?
            }
            None => {
                client
                    .feed(PgWireBackendMessage::NoData(NoData::new()))
                    .await?
            }
        }
        Ok(())
    }

    async fn on_close<C>(&self, client: &mut C, message: Close) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => client.portal_store().rm_statement(name),
            TARGET_TYPE_BYTE_PORTAL if client.portal_store().get_portal(name).is_some() => {
                client.portal_store().rm_portal(name)
            }
            // Closing the portal of a SQL cursor closes the cursor, as in Postgres.
            TARGET_TYPE_BYTE_PORTAL if name != DEFAULT_NAME => {
                conn(client)?.session.lock().await.close_cursor_named(name);
            }
            _ => {}
        }
        client
            .send(PgWireBackendMessage::CloseComplete(CloseComplete::new()))
            .await?;
        Ok(())
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<BasaltStatement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = conn(client)?;
        Ok(match start_portal(&conn, portal).await? {
            StatementOutput::Rows { schema, stream } => {
                let format = &portal.result_column_format;
                let fields = Arc::new(field_infos(&schema, format));
                let rows = row_stream(&schema, stream, format);
                Response::Query(QueryResponse::new(fields, rows))
            }
            // A prepared comment-only query has nothing to run.
            StatementOutput::Command { tag, .. } if tag.is_empty() => Response::EmptyQuery,
            StatementOutput::Command { tag, rows } => Response::Execution(command_tag(&tag, rows)),
            StatementOutput::CopyIn { columns } => Response::CopyIn(copy_in(columns)),
            StatementOutput::CopyOut {
                schema,
                stream,
                format,
            } => Response::CopyOut(copy_out_response(copy_out(&schema, stream, format))),
        })
    }
}

/// CopyInResponse for COPY FROM STDIN in text format.
fn copy_in(columns: usize) -> CopyResponse {
    CopyResponse::new(0, columns, futures::stream::empty())
}

#[async_trait]
impl CopyHandler for QueryHandler {
    async fn on_copy_data<C>(&self, client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = conn(client)?;
        if conn.copy_error().is_some() {
            return Ok(());
        }
        let r = guarded(&never(), async {
            conn.session.lock().await.copy_data(&copy_data.data).await
        })
        .await;
        if let Err(e) = r {
            *conn.copy_error() = Some(e);
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = conn(client)?;
        let failed = conn.copy_error().take();
        let r = match failed {
            Some(e) => Err(e),
            None => {
                guarded(&never(), async {
                    conn.session.lock().await.copy_done().await
                })
                .await
            }
        };
        let status = conn.status().await;
        client.set_transaction_status(status);
        let rows = r.map_err(|e| to_pg_error(&e))?;
        let tag = Tag::new("COPY").with_rows(rows as usize);
        client
            .feed(PgWireBackendMessage::CommandComplete(tag.into()))
            .await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = match conn(client) {
            Ok(conn) => conn,
            Err(e) => return e,
        };
        let failed = conn.copy_error().take();
        let e = match failed {
            Some(e) => e,
            None => conn.session.lock().await.copy_fail(&fail.message),
        };
        let status = conn.status().await;
        client.set_transaction_status(status);
        to_pg_error(&e)
    }
}

/// Parameter types for Describe statement: the client's declared types, else ours.
fn describe_params(stmt: &StoredStatement<BasaltStatement>) -> Vec<Type> {
    let ours = &stmt.statement.prepared.param_types;
    (0..ours.len().max(stmt.parameter_types.len()))
        .map(|i| {
            stmt.parameter_types
                .get(i)
                .cloned()
                .flatten()
                .or_else(|| ours.get(i).map(arrow_to_pg))
                .unwrap_or(Type::UNKNOWN)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn panics_become_internal_errors() {
        let r: Result<(), NodeError> = guarded(&never(), async { panic!("boom") }).await;
        let e = r.unwrap_err();
        assert_eq!(e.sqlstate(), "XX000");
        assert!(e.to_string().contains("boom"), "{e}");
    }

    #[tokio::test]
    async fn cancel_wins_over_a_pending_call() {
        let cancel: CancelSignal = futures::future::ready(()).boxed().shared();
        let r: Result<(), NodeError> =
            guarded(&cancel, futures::future::pending::<Result<(), NodeError>>()).await;
        assert_eq!(r.unwrap_err().sqlstate(), "57014");
    }
}
