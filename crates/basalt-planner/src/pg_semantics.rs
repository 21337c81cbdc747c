//! Postgres semantics DataFusion does not have, applied to analyzed logical plans.
//!
//! - A cast from a fractional type to an integer rounds (Postgres and Redshift) where
//!   DataFusion truncates: numeric rounds half away from zero, double precision and real
//!   round half to even (`rint`).
//! - `round(double precision)` rounds half to even, as Postgres's does.
//! - A string literal compared with a boolean is read as a boolean (`indisprimary = 't'`):
//!   Postgres types such a literal from the other side; DataFusion cannot compare them.
//! - An integer literal in AND/OR is a boolean, as Redshift allows (`WHERE 1 AND ...`).

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result, ScalarValue, exec_err};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::expr::{Cast, ScalarFunction, TryCast};
use datafusion::logical_expr::expr_rewriter::FunctionRewrite;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarUDF, Volatility,
    create_udf,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::prelude::SessionContext;

/// Register the rule and its functions on a session.
pub fn register(ctx: &SessionContext) -> Result<()> {
    ctx.register_udf(rint());
    ctx.add_analyzer_rule(Arc::new(PostgresSemantics));
    ctx.state_ref()
        .write()
        .register_function_rewrite(Arc::new(UnknownLiterals))
}

/// Runs before type coercion: a string literal compared with a boolean (`=`, `<>`, or as a
/// WHEN of `CASE <boolean>`) becomes a boolean.
#[derive(Debug)]
struct UnknownLiterals;

impl FunctionRewrite for UnknownLiterals {
    fn name(&self) -> &str {
        "basalt_unknown_literals"
    }

    fn rewrite(
        &self,
        expr: Expr,
        schema: &DFSchema,
        _config: &ConfigOptions,
    ) -> Result<Transformed<Expr>> {
        // CASE <boolean> WHEN 'false' THEN ...
        if let Expr::Case(mut case) = expr {
            let boolean = case
                .expr
                .as_ref()
                .is_some_and(|e| matches!(e.get_type(schema), Ok(DataType::Boolean)));
            let mut changed = false;
            if boolean {
                for (when, _) in case.when_then_expr.iter_mut() {
                    if let Expr::Literal(ScalarValue::Utf8(Some(s)), _) = when.as_ref()
                        && let Some(b) = parse_bool(s)
                    {
                        **when = lit_bool(b);
                        changed = true;
                    } else if let Expr::Literal(ScalarValue::Utf8(None) | ScalarValue::Null, _) =
                        when.as_ref()
                    {
                        **when = Expr::Literal(ScalarValue::Boolean(None), None);
                        changed = true;
                    }
                }
            }
            let case = Expr::Case(case);
            return Ok(if changed {
                Transformed::yes(case)
            } else {
                Transformed::no(case)
            });
        }
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = expr else {
            return Ok(Transformed::no(expr));
        };
        // Redshift reads an integer literal as a boolean in AND/OR (`WHERE 1 AND ...`).
        if matches!(op, Operator::And | Operator::Or) {
            let int_lit = |e: &Expr| match e {
                Expr::Literal(v, _) if v.data_type().is_integer() && !v.is_null() => {
                    Some(v != &ScalarValue::new_zero(&v.data_type()).ok()?)
                }
                _ => None,
            };
            let (l, r) = (int_lit(&left), int_lit(&right));
            if l.is_some() || r.is_some() {
                let left = l.map(|b| Box::new(lit_bool(b))).unwrap_or(left);
                let right = r.map(|b| Box::new(lit_bool(b))).unwrap_or(right);
                return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                    left,
                    op,
                    right,
                })));
            }
        }
        if !matches!(
            op,
            Operator::Eq | Operator::NotEq | Operator::IsDistinctFrom | Operator::IsNotDistinctFrom
        ) {
            return Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr {
                left,
                op,
                right,
            })));
        }
        let is_bool = |e: &Expr| matches!(e.get_type(schema), Ok(DataType::Boolean));
        let as_bool = |e: &Expr| match e {
            Expr::Literal(ScalarValue::Utf8(Some(s)), _) => parse_bool(s),
            _ => None,
        };
        let (left, right) = match (as_bool(&left), as_bool(&right)) {
            (None, Some(b)) if is_bool(&left) => (left, Box::new(lit_bool(b))),
            (Some(b), None) if is_bool(&right) => (Box::new(lit_bool(b)), right),
            _ => {
                return Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr {
                    left,
                    op,
                    right,
                })));
            }
        };
        Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
            left,
            op,
            right,
        })))
    }
}

fn lit_bool(b: bool) -> Expr {
    Expr::Literal(ScalarValue::Boolean(Some(b)), None)
}

/// Postgres's boolean input syntax.
fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "y" | "yes" | "on" | "1" => Some(true),
        "f" | "false" | "n" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// The analyzer rule; runs after DataFusion's type coercion, so every expression is typed.
#[derive(Debug, Default)]
pub struct PostgresSemantics;

impl AnalyzerRule for PostgresSemantics {
    fn name(&self) -> &str {
        "basalt_postgres_semantics"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            let schema = match node.inputs().as_slice() {
                [] => DFSchema::empty(),
                inputs => merge_schema(inputs),
            };
            // Rewritten expressions keep their names, which the node's schema records.
            let names = NamePreserver::new(&node);
            node.map_expressions(|e| {
                let saved = names.save(&e);
                let t = e.transform_up(|e| rewrite_expr(e, &schema))?;
                Ok(if t.transformed {
                    t.update_data(|e| saved.restore(e))
                } else {
                    t
                })
            })
        })
        .map(|t| t.data)
    }
}

fn is_integer(t: &DataType) -> bool {
    matches!(t, DataType::Int16 | DataType::Int32 | DataType::Int64)
}

fn rewrite_expr(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    match e {
        Expr::Cast(Cast { expr, field }) if is_integer(field.data_type()) => {
            let expr = round_for_integer(*expr, schema)?;
            Ok(Transformed::yes(Expr::Cast(Cast { expr, field })))
        }
        Expr::TryCast(TryCast { expr, field }) if is_integer(field.data_type()) => {
            let expr = round_for_integer(*expr, schema)?;
            Ok(Transformed::yes(Expr::TryCast(TryCast { expr, field })))
        }
        Expr::ScalarFunction(mut f) if f.func.name() == "round" && f.args.len() == 1 => {
            match f.args[0].get_type(schema) {
                Ok(ty @ (DataType::Float32 | DataType::Float64)) => {
                    Ok(Transformed::yes(rint_expr(f.args.remove(0), &ty)))
                }
                _ => Ok(Transformed::no(Expr::ScalarFunction(f))),
            }
        }
        other => Ok(Transformed::no(other)),
    }
}

/// The cast's input, rounded the Postgres way when it is fractional.
fn round_for_integer(expr: Expr, schema: &DFSchema) -> Result<Box<Expr>> {
    let Ok(ty) = expr.get_type(schema) else {
        return Ok(Box::new(expr));
    };
    Ok(Box::new(match ty {
        DataType::Float32 | DataType::Float64 => rint_expr(expr, &ty),
        DataType::Decimal128(_, s) | DataType::Decimal256(_, s) if s > 0 => Expr::ScalarFunction(
            ScalarFunction::new_udf(datafusion::functions::math::round(), vec![expr]),
        ),
        _ => expr,
    }))
}

/// `rint(x)`: round half to even, Postgres's rounding of double precision.
pub fn rint() -> ScalarUDF {
    create_udf(
        "basalt_rint",
        vec![DataType::Float64],
        DataType::Float64,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            Ok(match &args[0] {
                ColumnarValue::Scalar(ScalarValue::Float64(v)) => {
                    ColumnarValue::Scalar(ScalarValue::Float64(v.map(f64::round_ties_even)))
                }
                ColumnarValue::Array(a) => match a.as_primitive_opt::<Float64Type>() {
                    Some(a) => ColumnarValue::Array(Arc::new(
                        a.unary::<_, Float64Type>(f64::round_ties_even),
                    )),
                    None => return exec_err!("rint of {}", a.data_type()),
                },
                other => return exec_err!("rint of {other:?}"),
            })
        }),
    )
}

/// `rint(x)` for a float expression, in the expression's own type.
fn rint_expr(expr: Expr, ty: &DataType) -> Expr {
    let as_f64 = match ty {
        DataType::Float64 => expr,
        _ => Expr::Cast(Cast::new(Box::new(expr), DataType::Float64)),
    };
    let rounded = Expr::ScalarFunction(ScalarFunction::new_udf(Arc::new(rint()), vec![as_f64]));
    match ty {
        DataType::Float64 => rounded,
        other => Expr::Cast(Cast::new(Box::new(rounded), other.clone())),
    }
}
