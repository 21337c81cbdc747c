//! Statistics gathered while a load writes: the same figures ANALYZE computes (rows, NULLs,
//! distinct values, smallest and largest value per column), taken from the rows on their way
//! to the segments instead of by reading the table back after the load.
//!
//! Each segment write sketches its rows beside the write itself (on the writing task, so
//! slices sketch side by side); the sketches merge per writer, per share of a COPY on the
//! compute nodes, and on the leader. Distinct counts are DataFusion's `approx_distinct`
//! HyperLogLog (exact for booleans and small integers), the estimator ANALYZE uses, so
//! merging sketches gives the count one pass over all rows would.
//!
//! A sketch travels between nodes as its accumulators' states in one Arrow IPC row
//! ([`WriteStats::encode`]), inside the share's versioned event stream.

use std::sync::Arc;

use basalt_catalog::{ColumnMeta, ColumnStats, TableStats};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float32Array, Float64Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Float32Type, Float64Type, Schema};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::approx_distinct::approx_distinct_udaf;
use datafusion::functions_aggregate::min_max::{MaxAccumulator, MinAccumulator};
use datafusion::logical_expr::Accumulator;
use datafusion::logical_expr::function::AccumulatorArgs;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;

use crate::NodeError;

/// Statistics of `rows` rows, measured now, with no column's yet.
pub(crate) fn measured_now(rows: u64) -> TableStats {
    TableStats {
        analyzed_at: chrono::Utc::now()
            .naive_utc()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        rows,
        columns: Default::default(),
    }
}

/// The first value of `values` as the text statistics keep (its cast to text).
pub(crate) fn first_as_text(values: &ArrayRef) -> Result<Option<String>, NodeError> {
    let a = cast(values, &DataType::Utf8)?;
    let a = a.as_string::<i32>();
    Ok((!a.is_null(0)).then(|| a.value(0).to_string()))
}

/// One column's sketch: NULLs counted, and the distinct, smallest and largest value
/// accumulators (in that order).
#[derive(Debug)]
struct ColumnSketch {
    nulls: u64,
    accumulators: [Box<dyn Accumulator>; 3],
}

/// The statistics of rows written, mergeable with those of other writes of the same table.
#[derive(Debug)]
pub(crate) struct WriteStats {
    rows: u64,
    columns: Vec<ColumnSketch>,
}

/// The type a column's values are counted as distinct in: floating point as its bits
/// (HyperLogLog has no float hashing), anything else as it is.
fn distinct_type(ty: &DataType) -> DataType {
    match ty {
        DataType::Float32 => DataType::Int32,
        DataType::Float64 => DataType::Int64,
        other => other.clone(),
    }
}

/// `values` as [`distinct_type`] gives: a float's bits, with -0.0 as 0.0 and every NaN as one.
fn distinct_input(values: &ArrayRef) -> ArrayRef {
    fn bits64(v: f64) -> i64 {
        if v == 0.0 {
            0
        } else if v.is_nan() {
            f64::NAN.to_bits() as i64
        } else {
            v.to_bits() as i64
        }
    }
    fn bits32(v: f32) -> i32 {
        if v == 0.0 {
            0
        } else if v.is_nan() {
            f32::NAN.to_bits() as i32
        } else {
            v.to_bits() as i32
        }
    }
    match values.data_type() {
        DataType::Float64 => {
            let a: &Float64Array = values.as_primitive::<Float64Type>();
            Arc::new(a.unary::<_, datafusion::arrow::datatypes::Int64Type>(bits64)) as ArrayRef
        }
        DataType::Float32 => {
            let a: &Float32Array = values.as_primitive::<Float32Type>();
            Arc::new(a.unary::<_, datafusion::arrow::datatypes::Int32Type>(bits32)) as ArrayRef
        }
        _ => values.clone(),
    }
}

fn distinct_accumulator(ty: &DataType) -> Result<Box<dyn Accumulator>, NodeError> {
    let field = Arc::new(Field::new("v", distinct_type(ty), true));
    let schema = Schema::new(vec![field.as_ref().clone()]);
    let exprs: Vec<Arc<dyn PhysicalExpr>> = vec![Arc::new(Column::new("v", 0))];
    Ok(approx_distinct_udaf().accumulator(AccumulatorArgs {
        return_field: Arc::new(Field::new("approx_distinct", DataType::UInt64, false)),
        schema: &schema,
        ignore_nulls: false,
        order_bys: &[],
        is_reversed: false,
        name: "approx_distinct",
        is_distinct: false,
        exprs: &exprs,
        expr_fields: &[field],
    })?)
}

impl WriteStats {
    /// No rows yet, of a table with `columns`.
    pub(crate) fn new(columns: &[ColumnMeta]) -> Result<Self, NodeError> {
        let columns = columns
            .iter()
            .map(|c| {
                let ty = c.ty.to_arrow();
                Ok(ColumnSketch {
                    nulls: 0,
                    accumulators: [
                        distinct_accumulator(&ty)?,
                        Box::new(MinAccumulator::try_new(&ty)?),
                        Box::new(MaxAccumulator::try_new(&ty)?),
                    ],
                })
            })
            .collect::<Result<_, NodeError>>()?;
        Ok(WriteStats { rows: 0, columns })
    }

    /// The statistics of `batches` (all of the table's columns, in order).
    pub(crate) fn of(columns: &[ColumnMeta], batches: &[RecordBatch]) -> Result<Self, NodeError> {
        let mut stats = Self::new(columns)?;
        for b in batches {
            stats.update(b)?;
        }
        Ok(stats)
    }

    /// Take in the rows of `batch` (the table's columns in order).
    pub(crate) fn update(&mut self, batch: &RecordBatch) -> Result<(), NodeError> {
        self.rows += batch.num_rows() as u64;
        for (sketch, values) in self.columns.iter_mut().zip(batch.columns()) {
            sketch.nulls += values.null_count() as u64;
            let [distinct, min, max] = &mut sketch.accumulators;
            distinct.update_batch(&[distinct_input(values)])?;
            min.update_batch(std::slice::from_ref(values))?;
            max.update_batch(std::slice::from_ref(values))?;
        }
        Ok(())
    }

    /// The accumulators' states as one row: the row count, then per column its NULLs and
    /// each accumulator's state columns.
    fn states(&mut self) -> Result<RecordBatch, NodeError> {
        let mut fields = vec![Field::new("rows", DataType::UInt64, false)];
        let mut arrays: Vec<ArrayRef> = vec![ScalarValue::UInt64(Some(self.rows)).to_array()?];
        for (i, sketch) in self.columns.iter_mut().enumerate() {
            fields.push(Field::new(format!("c{i}_nulls"), DataType::UInt64, false));
            arrays.push(ScalarValue::UInt64(Some(sketch.nulls)).to_array()?);
            for (k, acc) in sketch.accumulators.iter_mut().enumerate() {
                for (j, state) in acc.state()?.into_iter().enumerate() {
                    let a = state.to_array()?;
                    fields.push(Field::new(
                        format!("c{i}_{k}_{j}"),
                        a.data_type().clone(),
                        true,
                    ));
                    arrays.push(a);
                }
            }
        }
        Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
    }

    /// Merge in states as [`WriteStats::states`] gives them.
    fn merge_states(&mut self, states: &RecordBatch) -> Result<(), NodeError> {
        let malformed = || NodeError::Internal {
            message: "load statistics of another node do not match the table".into(),
        };
        let count = |a: &ArrayRef| -> Result<u64, NodeError> {
            a.as_primitive_opt::<datafusion::arrow::datatypes::UInt64Type>()
                .filter(|a| a.len() == 1)
                .map(|a| a.value(0))
                .ok_or_else(malformed)
        };
        let cols = states.columns();
        let mut at = 1;
        let rows = count(cols.first().ok_or_else(malformed)?)?;
        for sketch in &mut self.columns {
            sketch.nulls += count(cols.get(at).ok_or_else(malformed)?)?;
            at += 1;
            for acc in &mut sketch.accumulators {
                let n = acc.state()?.len();
                let part = cols.get(at..at + n).ok_or_else(malformed)?;
                acc.merge_batch(part)?;
                at += n;
            }
        }
        if at != cols.len() {
            return Err(malformed());
        }
        self.rows += rows;
        Ok(())
    }

    /// Merge in the statistics of other rows of the same table.
    pub(crate) fn merge(&mut self, mut other: WriteStats) -> Result<(), NodeError> {
        let states = other.states()?;
        self.merge_states(&states)
    }

    /// The statistics as bytes to send to another node (Arrow IPC).
    pub(crate) fn encode(&mut self) -> Result<Vec<u8>, NodeError> {
        let states = self.states()?;
        let mut out = vec![];
        let mut w = StreamWriter::try_new(&mut out, &states.schema())?;
        w.write(&states)?;
        w.finish()?;
        drop(w);
        Ok(out)
    }

    /// Merge in statistics another node encoded.
    pub(crate) fn merge_encoded(&mut self, bytes: &[u8]) -> Result<(), NodeError> {
        for batch in StreamReader::try_new(bytes, None)? {
            self.merge_states(&batch?)?;
        }
        Ok(())
    }

    /// The statistics ANALYZE would record for a table with `columns` holding exactly the
    /// rows taken in.
    pub(crate) fn finish(mut self, columns: &[ColumnMeta]) -> Result<TableStats, NodeError> {
        let rows = self.rows;
        let mut stats = measured_now(rows);
        let text = |v: ScalarValue| -> Result<Option<String>, NodeError> {
            if v.is_null() {
                return Ok(None);
            }
            first_as_text(&v.to_array()?)
        };
        for (c, sketch) in columns.iter().zip(&mut self.columns) {
            let non_null = rows - sketch.nulls.min(rows);
            let [distinct, min, max] = &mut sketch.accumulators;
            let distinct = match distinct.evaluate()? {
                ScalarValue::UInt64(Some(n)) => n,
                _ => 0,
            };
            stats.columns.insert(
                c.id,
                ColumnStats {
                    nulls: sketch.nulls.min(rows),
                    distinct: distinct.min(non_null),
                    min: text(min.evaluate()?)?,
                    max: text(max.evaluate()?)?,
                },
            );
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_catalog::{Encoding, SqlType};
    use datafusion::arrow::array::{Decimal128Array, StringArray};

    fn columns() -> Vec<ColumnMeta> {
        let column = |id, name: &str, ty| ColumnMeta {
            id,
            name: name.into(),
            ty,
            nullable: true,
            default: None,
            identity: None,
            encoding: Encoding::Raw,
        };
        vec![
            column(1, "s", SqlType::Varchar(10)),
            column(2, "f", SqlType::Double),
            column(
                3,
                "d",
                SqlType::Decimal {
                    precision: 10,
                    scale: 2,
                },
            ),
        ]
    }

    fn batch(s: Vec<Option<&str>>, f: Vec<Option<f64>>, d: Vec<Option<i128>>) -> RecordBatch {
        let d = Decimal128Array::from(d)
            .with_precision_and_scale(10, 2)
            .unwrap();
        RecordBatch::try_from_iter([
            ("s", Arc::new(StringArray::from(s)) as ArrayRef),
            ("f", Arc::new(Float64Array::from(f)) as ArrayRef),
            ("d", Arc::new(d) as ArrayRef),
        ])
        .unwrap()
    }

    /// Sketches merged, in process or through bytes, give what one sketch of all rows gives.
    #[test]
    fn merged_sketches_measure_all_rows() {
        let t = columns();
        let a = batch(
            vec![Some("b"), None, Some("a")],
            vec![Some(-0.0), Some(2.5), None],
            vec![Some(150), Some(-3), None],
        );
        let b = batch(
            vec![Some("c"), Some("a")],
            vec![Some(0.0), Some(f64::NAN)],
            vec![Some(150), None],
        );
        let of = |b: &RecordBatch| WriteStats::of(&t, std::slice::from_ref(b)).unwrap();
        let whole = WriteStats::of(&t, &[a.clone(), b.clone()])
            .unwrap()
            .finish(&t)
            .unwrap();
        let mut merged = of(&a);
        merged.merge(of(&b)).unwrap();
        let mut via_bytes = WriteStats::new(&t).unwrap();
        via_bytes.merge_encoded(&of(&a).encode().unwrap()).unwrap();
        via_bytes.merge_encoded(&of(&b).encode().unwrap()).unwrap();
        assert_eq!(whole.rows, 5);
        let s = &whole.columns[&1];
        assert_eq!((s.nulls, s.distinct), (1, 3));
        assert_eq!((s.min.as_deref(), s.max.as_deref()), (Some("a"), Some("c")));
        let f = &whole.columns[&2];
        // -0.0 and 0.0 are one value.
        assert_eq!((f.nulls, f.distinct), (1, 3));
        assert_eq!(f.max.as_deref(), Some("NaN"));
        let d = &whole.columns[&3];
        assert_eq!((d.nulls, d.distinct), (2, 2));
        assert_eq!(
            (d.min.as_deref(), d.max.as_deref()),
            (Some("-0.03"), Some("1.50"))
        );
        for other in [merged.finish(&t).unwrap(), via_bytes.finish(&t).unwrap()] {
            assert_eq!(other.rows, whole.rows);
            assert_eq!(other.columns, whole.columns);
        }
    }

    /// Statistics of another table's columns are an error, not a wrong merge.
    #[test]
    fn foreign_states_are_refused() {
        let t = columns();
        let bytes = WriteStats::new(&t[..1]).unwrap().encode().unwrap();
        assert!(WriteStats::new(&t).unwrap().merge_encoded(&bytes).is_err());
    }
}
