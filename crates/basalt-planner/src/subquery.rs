//! A scalar subquery returns at most one row, or the statement fails (SQLSTATE 21000).
//!
//! DataFusion checks that while executing an uncorrelated scalar subquery as its own plan.
//! A distributed plan cannot keep that node (its subquery results would have to cross
//! fragment boundaries), so distributed sessions have DataFusion rewrite such subqueries into
//! joins, which check nothing. [`SingleRowSubqueries`] restores the check first: the
//! subquery's value becomes `basalt_single_row_value(value)`, an aggregate over the
//! subquery's rows that yields the one value, NULL for no row, and the Postgres error for more.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, UInt64Type};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Expr, LogicalPlan, LogicalPlanBuilder, Signature,
    Subquery, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

/// Wraps each uncorrelated scalar subquery's value in [`single_row_value`].
#[derive(Debug, Default)]
pub struct SingleRowSubqueries;

impl AnalyzerRule for SingleRowSubqueries {
    fn name(&self) -> &str {
        "basalt_single_row_subqueries"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            node.map_expressions(|e| {
                e.transform_up(|e| match e {
                    Expr::ScalarSubquery(sq)
                        if sq.outer_ref_columns.is_empty() && !is_single_row(&sq.subquery) =>
                    {
                        let subquery = single_row(sq.subquery.as_ref().clone())?;
                        Ok(Transformed::yes(Expr::ScalarSubquery(Subquery {
                            subquery: Arc::new(subquery),
                            ..sq
                        })))
                    }
                    other => Ok(Transformed::no(other)),
                })
            })
        })
        .map(|t| t.data)
    }
}

/// Plans that can only produce one row: an aggregate without groups (or this rule's own).
fn is_single_row(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::Aggregate(a) => a.group_expr.is_empty(),
        LogicalPlan::Projection(p) => is_single_row(&p.input),
        LogicalPlan::SubqueryAlias(s) => is_single_row(&s.input),
        _ => false,
    }
}

/// `plan` (one column) aggregated to the one value it has.
fn single_row(plan: LogicalPlan) -> Result<LogicalPlan> {
    let schema = plan.schema().clone();
    if schema.fields().len() != 1 {
        // DataFusion reports a subquery of several columns itself.
        return Ok(plan);
    }
    let (qualifier, field) = schema.qualified_field(0);
    let value = Expr::Column(Column::new(qualifier.cloned(), field.name()));
    LogicalPlanBuilder::from(plan)
        .aggregate(
            Vec::<Expr>::new(),
            vec![
                Arc::new(single_row_value())
                    .call(vec![value])
                    .alias(field.name()),
            ],
        )?
        .build()
}

/// `basalt_single_row_value(x)`: the one value of x among the rows, NULL when there is none,
/// an error (21000) when there are more.
pub fn single_row_value() -> AggregateUDF {
    AggregateUDF::from(SingleRowValue {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SingleRowValue {
    signature: Signature,
}

impl AggregateUDFImpl for SingleRowValue {
    fn name(&self) -> &str {
        "basalt_single_row_value"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let value = args.return_field.data_type().clone();
        Ok(vec![
            Arc::new(Field::new(
                format_state_name(args.name, "value"),
                value,
                true,
            )),
            Arc::new(Field::new(
                format_state_name(args.name, "rows"),
                DataType::UInt64,
                false,
            )),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let value = ScalarValue::try_from(args.return_field.data_type())?;
        Ok(Box::new(SingleRowAccumulator { value, rows: 0 }))
    }
}

#[derive(Debug)]
struct SingleRowAccumulator {
    value: ScalarValue,
    rows: u64,
}

impl SingleRowAccumulator {
    fn add(&mut self, values: &ArrayRef, rows: u64) -> Result<()> {
        if rows == 0 {
            return Ok(());
        }
        self.rows += rows;
        if self.rows > 1 {
            return exec_err!("more than one row returned by a subquery used as an expression");
        }
        self.value = ScalarValue::try_from_array(values, 0)?;
        Ok(())
    }
}

impl Accumulator for SingleRowAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], values[0].len() as u64)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let counts = states[1].as_primitive::<UInt64Type>();
        for i in 0..counts.len() {
            let n = counts.value(i);
            if n > 0 {
                self.add(&states[0].slice(i, 1), n)?;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            self.value.clone(),
            ScalarValue::UInt64(Some(self.rows)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.value.clone())
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.value.size() - std::mem::size_of_val(&self.value)
    }
}
