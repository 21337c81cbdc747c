//! Postgres semantics DataFusion does not have, applied to analyzed logical plans.
//!
//! - A cast from a fractional type to an integer rounds (Postgres and Redshift) where
//!   DataFusion truncates: numeric rounds half away from zero, double precision and real
//!   round half to even (`rint`).
//! - `round(double precision)` rounds half to even, as Postgres's does.

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result, ScalarValue, exec_err};
use datafusion::logical_expr::expr::{Cast, ScalarFunction, TryCast};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarUDF, Volatility, create_udf,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::prelude::SessionContext;

/// Register the rule and its functions on a session.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(rint());
    ctx.add_analyzer_rule(Arc::new(PostgresSemantics));
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
