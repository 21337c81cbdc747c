//! SQL-level cursors (`DECLARE c CURSOR FOR query`, `FETCH [FORWARD] n FROM c`, `CLOSE c`),
//! as psycopg's named cursors use them, and SQL-level prepared statements
//! (`PREPARE p AS ...`, `EXECUTE p (args)`, `DEALLOCATE p`), as psycopg2 uses them.

use std::collections::VecDeque;
use std::ops::ControlFlow;

use basalt_sql::ParsedStatement;
use basalt_sql::sqlparser::ast::{
    CloseCursor, Expr, FetchDirection, Statement, Value, visit_expressions_mut,
};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;

use crate::session::{StatementOutput, ident_name, rows_output};
use crate::{NodeError, Session};

/// An open cursor: the query's stream and rows read ahead of the client.
pub(crate) struct Cursor {
    schema: SchemaRef,
    /// In a mutex only so the session stays `Sync`; always reached through `get_mut`.
    stream: std::sync::Mutex<SendableRecordBatchStream>,
    buffered: VecDeque<RecordBatch>,
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
                    stream: std::sync::Mutex::new(stream),
                    buffered: VecDeque::new(),
                },
            );
        }
        Ok(StatementOutput::command("DECLARE CURSOR"))
    }

    pub(crate) async fn fetch(
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
        let name = name.to_lowercase();
        let Some(c) = self.cursors.get_mut(&name) else {
            return Err(NodeError::invalid(
                "34000",
                format!("cursor \"{name}\" does not exist"),
            ));
        };
        let mut out = vec![];
        let mut got = 0usize;
        while want.is_none_or(|w| got < w) {
            let batch = match c.buffered.pop_front() {
                Some(b) => b,
                None => match c
                    .stream
                    .get_mut()
                    .map_err(|_| NodeError::internal("cursor stream poisoned"))?
                    .next()
                    .await
                {
                    Some(b) => b?,
                    None => break,
                },
            };
            let take = match want {
                Some(w) => (w - got).min(batch.num_rows()),
                None => batch.num_rows(),
            };
            if take < batch.num_rows() {
                c.buffered
                    .push_front(batch.slice(take, batch.num_rows() - take));
            }
            got += take;
            out.push(batch.slice(0, take));
        }
        Ok(rows_output(c.schema.clone(), out))
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
        }))
        .await
    }
}
