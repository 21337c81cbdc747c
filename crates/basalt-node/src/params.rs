//! `$n` parameters of the extended protocol, substituted into the statement as typed literals
//! before planning, so every statement kind (queries, DML, DDL) takes parameters the same way.

use std::ops::ControlFlow;

use basalt_sql::sqlparser::ast::{
    Expr, Statement, Value, visit_expressions, visit_expressions_mut,
};
use basalt_sql::sqlparser::dialect::PostgreSqlDialect;
use basalt_sql::sqlparser::parser::Parser;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

use crate::NodeError;

fn placeholder_index(e: &Expr) -> Option<usize> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Placeholder(p) => p.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()),
            _ => None,
        },
        _ => None,
    }
}

/// The highest `$n` in a statement.
pub(crate) fn count_placeholders(stmt: &Statement) -> usize {
    let mut max = 0;
    let _ = visit_expressions(stmt, |e| {
        if let Some(n) = placeholder_index(e) {
            max = max.max(n);
        }
        ControlFlow::<()>::Continue(())
    });
    max
}

/// SQL type name used in the CAST of a parameter value.
fn sql_type(dt: &DataType) -> Option<String> {
    Some(match dt {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 | DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => "BIGINT".into(),
        DataType::Float16 | DataType::Float32 => "REAL".into(),
        DataType::Float64 => "DOUBLE PRECISION".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p},{s})"),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMPTZ".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        _ => return None,
    })
}

/// The SQL literal for a parameter value.
fn literal(v: &ScalarValue) -> Result<Expr, NodeError> {
    let dt = v.data_type();
    let text = if v.is_null() {
        match sql_type(&dt) {
            Some(t) if !matches!(dt, DataType::Utf8 | DataType::Null) => {
                format!("CAST(NULL AS {t})")
            }
            _ => "NULL".to_string(),
        }
    } else {
        match v {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)) => {
                format!("'{}'", s.replace('\'', "''"))
            }
            other => {
                let t = sql_type(&dt)
                    .ok_or_else(|| NodeError::unsupported(format!("parameters of type {dt}")))?;
                let s = match &dt {
                    // Display prints temporal values as raw integers; cast gives ISO text.
                    DataType::Timestamp(_, tz) => {
                        let naive = other.cast_to(&DataType::Timestamp(
                            datafusion::arrow::datatypes::TimeUnit::Microsecond,
                            None,
                        ))?;
                        let text = naive.cast_to(&DataType::Utf8)?.to_string();
                        if tz.is_some() {
                            format!("{text}+00")
                        } else {
                            text
                        }
                    }
                    DataType::Date32
                    | DataType::Date64
                    | DataType::Time32(_)
                    | DataType::Time64(_) => other.cast_to(&DataType::Utf8)?.to_string(),
                    _ => other.to_string(),
                };
                format!("CAST('{}' AS {t})", s.replace('\'', "''"))
            }
        }
    };
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&text)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| NodeError::internal(format!("parameter literal {text}: {e}")))
}

/// `$n` → `CAST($n AS type)` for every parameter whose type the client declared (other than
/// text, which clients also send for values of any type).
pub(crate) fn cast_declared(
    stmt: &mut Statement,
    declared: &[Option<DataType>],
) -> Result<(), NodeError> {
    let mut casts: Vec<Option<basalt_sql::sqlparser::ast::DataType>> = vec![];
    for d in declared {
        casts.push(match d {
            Some(dt) if !matches!(dt, DataType::Utf8 | DataType::Null) => match sql_type(dt) {
                Some(t) => Some(
                    Parser::new(&PostgreSqlDialect {})
                        .try_with_sql(&t)
                        .and_then(|mut p| p.parse_data_type())
                        .map_err(|e| NodeError::internal(format!("parameter type {t}: {e}")))?,
                ),
                None => None,
            },
            _ => None,
        });
    }
    let _ = visit_expressions_mut(stmt, |e| {
        if let Some(n) = placeholder_index(e)
            && let Some(Some(ty)) = n.checked_sub(1).and_then(|i| casts.get(i))
        {
            *e = Expr::Cast {
                kind: basalt_sql::sqlparser::ast::CastKind::Cast,
                expr: Box::new(e.clone()),
                data_type: ty.clone(),
                array: false,
                format: None,
            };
            return ControlFlow::<()>::Continue(());
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(())
}

/// Replace `$1..$n` by the given values.
pub(crate) fn substitute(stmt: &mut Statement, params: &[ScalarValue]) -> Result<(), NodeError> {
    let needed = count_placeholders(stmt);
    if params.len() < needed {
        return Err(NodeError::invalid(
            "08P01",
            format!(
                "bind message supplies {} parameters, but prepared statement requires {needed}",
                params.len()
            ),
        ));
    }
    let literals = params.iter().map(literal).collect::<Result<Vec<_>, _>>()?;
    let _ = visit_expressions_mut(stmt, |e| {
        if let Some(n) = placeholder_index(e)
            && let Some(l) = n.checked_sub(1).and_then(|i| literals.get(i))
        {
            *e = Expr::Nested(Box::new(l.clone()));
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(())
}
