//! Redshift aggregate functions missing from DataFusion: PERCENTILE_DISC.
//!
//! (MEDIAN and PERCENTILE_CONT are DataFusion's own; LISTAGG is rewritten to `string_agg`.)

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{SortOptions, concat, filter, is_not_null, sort_to_indices, take};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema};
use datafusion::common::utils::SingleRowListArrayBuilder;
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, Signature, Volatility,
};
use datafusion::physical_expr::PhysicalExpr;

/// The aggregate functions of this module.
pub(crate) fn udafs() -> Vec<AggregateUDF> {
    vec![AggregateUDF::from(PercentileDisc::new())]
}

/// `PERCENTILE_DISC(p) WITHIN GROUP (ORDER BY x [ASC|DESC])`: the first value of `x`, in the
/// given order, whose cumulative distribution reaches `p` — that is the value at 1-based
/// position `max(1, ceil(p × n))` of the `n` non-NULL values. Returns the type of `x`;
/// NULL when there are no non-NULL values. `p` must be a constant between 0 and 1.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct PercentileDisc {
    signature: Signature,
}

impl PercentileDisc {
    const NAME: &'static str = "PERCENTILE_DISC";

    fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// Reads the constant percentile argument.
fn percentile_literal(expr: &Arc<dyn PhysicalExpr>) -> Result<f64> {
    let batch = RecordBatch::new_empty(Arc::new(Schema::empty()));
    let value = match expr.evaluate(&batch) {
        Ok(ColumnarValue::Scalar(value)) => value,
        _ => return plan_err!("the percentile of PERCENTILE_DISC must be a constant"),
    };
    let percentile = match value.cast_to(&DataType::Float64) {
        Ok(ScalarValue::Float64(Some(p))) => p,
        _ => return plan_err!("the percentile of PERCENTILE_DISC must be a non-NULL number"),
    };
    if !(0.0..=1.0).contains(&percentile) {
        return plan_err!(
            "the percentile of PERCENTILE_DISC must be between 0 and 1, got {percentile}"
        );
    }
    Ok(percentile)
}

impl AggregateUDFImpl for PercentileDisc {
    fn name(&self) -> &str {
        "percentile_disc"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [value, percentile] = arg_types else {
            return plan_err!(
                "{} takes one percentile: PERCENTILE_DISC(percentile) WITHIN GROUP (ORDER BY expr)",
                Self::NAME
            );
        };
        if !(percentile.is_numeric() || percentile.is_null()) {
            return plan_err!(
                "the percentile of PERCENTILE_DISC must be a number, got {percentile}"
            );
        }
        let value = match value {
            DataType::Null => DataType::Float64,
            DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(_, _)
            | DataType::Struct(_)
            | DataType::Map(_, _) => {
                return plan_err!("PERCENTILE_DISC cannot order values of type {value}");
            }
            other => other.clone(),
        };
        Ok(vec![value, DataType::Float64])
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let item = Field::new_list_field(args.input_fields[0].data_type().clone(), true);
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "percentile_disc"),
            DataType::List(Arc::new(item)),
            true,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let percentile = percentile_literal(&args.exprs[1])?;
        let descending = args
            .order_bys
            .first()
            .is_some_and(|sort| sort.options.descending);
        Ok(Box::new(PercentileDiscAccumulator {
            data_type: args.expr_fields[0].data_type().clone(),
            percentile,
            descending,
            values: Vec::new(),
        }))
    }

    fn supports_within_group_clause(&self) -> bool {
        true
    }
}

#[derive(Debug)]
struct PercentileDiscAccumulator {
    data_type: DataType,
    percentile: f64,
    descending: bool,
    /// Non-NULL input values seen so far, batch by batch.
    values: Vec<ArrayRef>,
}

impl PercentileDiscAccumulator {
    fn push(&mut self, array: &ArrayRef) -> Result<()> {
        let array = if array.null_count() > 0 {
            filter(array, &is_not_null(array)?)?
        } else {
            Arc::clone(array)
        };
        if !array.is_empty() {
            self.values.push(array);
        }
        Ok(())
    }

    fn all_values(&self) -> Result<ArrayRef> {
        let arrays: Vec<&dyn Array> = self.values.iter().map(|a| a.as_ref()).collect();
        if arrays.is_empty() {
            return Ok(datafusion::arrow::array::new_empty_array(&self.data_type));
        }
        Ok(concat(&arrays)?)
    }
}

impl Accumulator for PercentileDiscAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.push(&values[0])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for list in lists.iter().flatten() {
            self.push(&list)?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values = self.all_values()?;
        self.values = vec![Arc::clone(&values)];
        Ok(vec![
            SingleRowListArrayBuilder::new(values).build_list_scalar(),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let values = self.all_values()?;
        let n = values.len();
        if n == 0 {
            return ScalarValue::try_from(&self.data_type);
        }
        let options = SortOptions {
            descending: self.descending,
            nulls_first: false,
        };
        let position = ((self.percentile * n as f64).ceil() as usize).clamp(1, n);
        let order = sort_to_indices(&values, Some(options), Some(position))?;
        let index = UInt32Array::from(vec![order.value(position - 1)]);
        ScalarValue::try_from_array(take(&values, &index, None)?.as_ref(), 0)
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + self
                .values
                .iter()
                .map(|a| a.get_array_memory_size())
                .sum::<usize>()
    }
}
