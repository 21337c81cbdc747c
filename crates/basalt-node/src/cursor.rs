//! SQL-level cursors (`DECLARE c CURSOR FOR query`, `FETCH [FORWARD] n FROM c`, `CLOSE c`),
//! as psycopg's named cursors use them, and SQL-level prepared statements
//! (`PREPARE p AS ...`, `EXECUTE p (args)`, `DEALLOCATE p`), as psycopg2 uses them.

use std::ops::ControlFlow;
use std::sync::Arc;

use basalt_sql::ParsedStatement;
use basalt_sql::sqlparser::ast::{
    CloseCursor, Expr, FetchDirection, Statement, Value, visit_expressions_mut,
};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;

use crate::session::{StatementOutput, ident_name};
use crate::{NodeError, Session};

/// An open cursor: the query's stream and the rows read ahead of the client. The state is
/// shared with the row streams fetches hand out, so a FETCH streams its rows instead of
/// collecting them (the wire layer drains one fetch's stream before it starts the next).
pub(crate) struct Cursor {
    schema: SchemaRef,
    /// `DECLARE name BINARY CURSOR`: a protocol-level Execute sends binary values.
    binary: bool,
    state: Arc<tokio::sync::Mutex<CursorState>>,
}

struct CursorState {
    stream: SendableRecordBatchStream,
    /// The rest of a batch of which a fetch took only the first rows.
    buffered: Option<RecordBatch>,
}

impl Cursor {
    /// The next `limit` rows (None: all the rest), streamed batch by batch.
    fn rows(&self, limit: Option<usize>) -> SendableRecordBatchStream {
        let state = self.state.clone();
        let s = futures::stream::unfold((state, limit), |(state, left)| async move {
            if left == Some(0) {
                return None;
            }
            let mut st = state.clone().lock_owned().await;
            let batch = match st.buffered.take() {
                Some(b) => b,
                None => match st.stream.next().await {
                    Some(Ok(b)) => b,
                    // The cursor's query failed: this fetch fails (and with it the
                    // transaction block).
                    Some(Err(e)) => return Some((Err(e), (state, Some(0)))),
                    None => return None,
                },
            };
            let n = batch.num_rows();
            let take = left.map_or(n, |l| l.min(n));
            if take < n {
                st.buffered = Some(batch.slice(take, n - take));
            }
            drop(st);
            Some((Ok(batch.slice(0, take)), (state, left.map(|l| l - take))))
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), s))
    }
}

impl Session {
    pub(crate) async fn declare(&mut self, stmt: &Statement) -> Result<StatementOutput, NodeError> {
        let Statement::Declare { stmts } = stmt else {
            unreachable!("dispatch sends only DECLARE here");
        };
        for d in stmts {
            let Some(q) = &d.for_query else {
                return Err(NodeError::unsupported("DECLARE without a cursor query"));
            };
            let Some(name) = d.names.first().map(ident_name) else {
                return Err(NodeError::invalid("42601", "DECLARE needs a cursor name"));
            };
            if self.cursors.contains_key(&name) {
                return Err(NodeError::invalid(
                    "42P03",
                    format!("cursor \"{name}\" already exists"),
                ));
            }
            let out = self.query(Statement::Query(q.clone())).await?;
            let StatementOutput::Rows { schema, stream } = out else {
                return Err(NodeError::internal("cursor query returned no rows"));
            };
            self.cursors.insert(
                name,
                Cursor {
                    schema,
                    binary: d.binary == Some(true),
                    state: Arc::new(tokio::sync::Mutex::new(CursorState {
                        stream,
                        buffered: None,
                    })),
                },
            );
        }
        Ok(StatementOutput::command("DECLARE CURSOR"))
    }

    /// `FETCH [FORWARD] n | ALL | NEXT FROM name` (`name` already normalized).
    pub(crate) fn fetch(
        &mut self,
        name: &str,
        direction: &FetchDirection,
    ) -> Result<StatementOutput, NodeError> {
        let count = |v: &Option<basalt_sql::sqlparser::ast::ValueWithSpan>| -> Result<Option<usize>, NodeError> {
            match v {
                None => Ok(Some(1)),
                Some(v) => match &v.value {
                    Value::Number(n, _) => n
                        .parse::<usize>()
                        .map(Some)
                        .map_err(|_| NodeError::invalid("42601", format!("bad FETCH count {n}"))),
                    _ => Err(NodeError::invalid("42601", "bad FETCH count")),
                },
            }
        };
        let want: Option<usize> = match direction {
            FetchDirection::Count { limit } => count(&Some(limit.clone()))?,
            FetchDirection::Forward { limit } => count(limit)?,
            FetchDirection::Next => Some(1),
            FetchDirection::All | FetchDirection::ForwardAll => None,
            other => {
                return Err(NodeError::unsupported(format!(
                    "FETCH {other} (cursors are forward-only)"
                )));
            }
        };
        self.fetch_cursor(name, want)
    }

    /// The next `limit` rows (None: all) of the SQL cursor `name`, as a stream: a FETCH, or a
    /// protocol-level Execute of the portal a DECLARE created (in Postgres a SQL cursor *is*
    /// a portal).
    pub fn fetch_cursor(
        &mut self,
        name: &str,
        limit: Option<usize>,
    ) -> Result<StatementOutput, NodeError> {
        let Some(c) = self.cursors.get(name) else {
            return Err(cursor_missing(name));
        };
        Ok(StatementOutput::Rows {
            schema: c.schema.clone(),
            stream: c.rows(limit),
        })
    }

    /// Columns of the SQL cursor `name`, and whether it was declared BINARY; None if no such
    /// cursor is open (a protocol-level Describe of that portal).
    pub fn cursor_description(&self, name: &str) -> Option<(SchemaRef, bool)> {
        self.cursors.get(name).map(|c| (c.schema.clone(), c.binary))
    }

    /// Close the SQL cursor `name` (a protocol-level Close of that portal); false if none.
    pub fn close_cursor_named(&mut self, name: &str) -> bool {
        self.cursors.remove(name).is_some()
    }

    pub(crate) fn close_cursor(&mut self, cursor: &CloseCursor) -> StatementOutput {
        match cursor {
            CloseCursor::All => self.cursors.clear(),
            CloseCursor::Specific { name } => {
                self.cursors.remove(&ident_name(name));
            }
        }
        StatementOutput::command("CLOSE CURSOR")
    }

    pub(crate) fn prepare_sql(&mut self, name: &str, statement: &Statement) -> StatementOutput {
        self.sql_prepared
            .insert(name.to_lowercase(), statement.clone());
        StatementOutput::command("PREPARE")
    }

    /// `EXECUTE p (args)`: the arguments replace `$1..$n` as expressions.
    pub(crate) async fn execute_sql(
        &mut self,
        name: &str,
        args: &[Expr],
    ) -> Result<StatementOutput, NodeError> {
        let Some(mut stmt) = self.sql_prepared.get(&name.to_lowercase()).cloned() else {
            return Err(NodeError::invalid(
                "26000",
                format!("prepared statement \"{name}\" does not exist"),
            ));
        };
        let _ = visit_expressions_mut(&mut stmt, |e| {
            if let Expr::Value(v) = e
                && let Value::Placeholder(p) = &v.value
                && let Some(i) = p.strip_prefix('$').and_then(|n| n.parse::<usize>().ok())
                && let Some(a) = i.checked_sub(1).and_then(|i| args.get(i))
            {
                *e = Expr::Nested(Box::new(a.clone()));
            }
            ControlFlow::<()>::Continue(())
        });
        let sql = stmt.to_string();
        Box::pin(self.dispatch(ParsedStatement {
            sql,
            statement: stmt,
            table_attributes: None,
            compression: None,
            predicate_columns: false,
            copy_parameters: None,
            unload: None,
        }))
        .await
    }
}

fn cursor_missing(name: &str) -> NodeError {
    NodeError::invalid("34000", format!("cursor \"{name}\" does not exist"))
}
