//! Postgres semantics DataFusion does not have, applied to analyzed logical plans.
//!
//! - A cast from a fractional type to an integer rounds (Postgres and Redshift) where
//!   DataFusion truncates: numeric rounds half away from zero, double precision and real
//!   round half to even (`rint`).
//! - `round(double precision)` rounds half to even, as Postgres's does.
//! - A string literal compared with a boolean is read as a boolean (`indisprimary = 't'`):
//!   Postgres types such a literal from the other side; DataFusion cannot compare them.
//! - An integer literal in AND/OR is a boolean, as Redshift allows (`WHERE 1 AND ...`).
//! - `sum(bigint)` is numeric (Postgres, Redshift), so it cannot overflow.
//! - Numeric division keeps up to 20 fractional digits (Postgres shows at least 16 significant
//!   digits; DataFusion keeps only the dividend's scale + 4).
//! - Floating-point division by zero is an error (22012), not Infinity or NaN.

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{DataType, Float64Type, IntervalUnit, TimeUnit};
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
use datafusion::optimizer::{AnalyzerRule, OptimizerConfig, OptimizerRule};
use datafusion::prelude::SessionContext;

/// Register the rule and its functions on a session.
pub fn register(ctx: &SessionContext) -> Result<()> {
    ctx.register_udf(rint());
    ctx.register_udf(interval_times());
    ctx.add_analyzer_rule(Arc::new(PostgresSemantics));
    ctx.add_optimizer_rule(Arc::new(DateComparisons));
    let state = ctx.state_ref();
    let mut state = state.write();
    state.register_function_rewrite(Arc::new(UnknownLiterals))?;
    state.register_function_rewrite(Arc::new(NumericTypes))
}

/// The functions this module's rewrites put into plans, which a compute node decoding a plan
/// fragment looks up by name.
pub fn plan_udfs() -> Vec<ScalarUDF> {
    let mut out = vec![
        checked_arithmetic(Operator::Plus),
        checked_arithmetic(Operator::Minus),
        checked_arithmetic(Operator::Multiply),
        checked_arithmetic(Operator::Divide),
        lenient_datetime_cast(DataType::Date32),
        timestamp_text(),
        rint(),
        interval_times(),
    ];
    for unit in [
        TimeUnit::Second,
        TimeUnit::Millisecond,
        TimeUnit::Microsecond,
        TimeUnit::Nanosecond,
    ] {
        out.push(lenient_datetime_cast(DataType::Timestamp(unit, None)));
    }
    out
}

/// Runs before type coercion, so the types it picks flow into every schema above:
/// `sum(bigint)` sums numeric(38,0), and numeric division gets a wider dividend scale.
#[derive(Debug)]
struct NumericTypes;

/// Fractional digits numeric division aims for (when the precision leaves room for them).
const DIVISION_SCALE: i16 = 20;

/// The numeric type an operand of numeric arithmetic has after coercion.
fn as_decimal(t: &DataType) -> Option<(u8, i8)> {
    match t {
        DataType::Decimal128(p, s) => Some((*p, *s)),
        DataType::Int8 => Some((3, 0)),
        DataType::Int16 => Some((5, 0)),
        DataType::Int32 => Some((10, 0)),
        DataType::Int64 => Some((20, 0)),
        _ => None,
    }
}

impl FunctionRewrite for NumericTypes {
    fn name(&self) -> &str {
        "basalt_numeric_types"
    }

    fn rewrite(
        &self,
        expr: Expr,
        schema: &DFSchema,
        _config: &ConfigOptions,
    ) -> Result<Transformed<Expr>> {
        match expr {
            Expr::AggregateFunction(mut f)
                if f.func.name() == "sum"
                    && f.params.args.len() == 1
                    && matches!(
                        f.params.args[0].get_type(schema),
                        Ok(DataType::Int64 | DataType::UInt64)
                    ) =>
            {
                let arg = f.params.args.remove(0);
                f.params.args.push(Expr::Cast(Cast::new(
                    Box::new(arg),
                    DataType::Decimal128(38, 0),
                )));
                Ok(Transformed::yes(Expr::AggregateFunction(f)))
            }
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Divide,
                right,
            }) => {
                let (lt, rt) = (left.get_type(schema), right.get_type(schema));
                let decimal = matches!(lt, Ok(DataType::Decimal128(..)))
                    || matches!(rt, Ok(DataType::Decimal128(..)));
                let (Some((p1, s1)), Some((p2, s2))) = (
                    lt.ok().as_ref().and_then(as_decimal),
                    rt.ok().as_ref().and_then(as_decimal),
                ) else {
                    return Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr {
                        left,
                        op: Operator::Divide,
                        right,
                    })));
                };
                // Arrow's quotient has the dividend's scale + 4 and at most p1 - s1 + s2
                // integer digits; widen the dividend's scale so the quotient gets
                // DIVISION_SCALE digits where 38 digits of precision allow.
                let int_digits = p1 as i16 - s1 as i16 + s2 as i16;
                let scale = DIVISION_SCALE.min(38 - int_digits);
                let dividend_scale = scale - 4;
                if !decimal || dividend_scale <= s1 as i16 {
                    return Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr {
                        left,
                        op: Operator::Divide,
                        right,
                    })));
                }
                let dividend = DataType::Decimal128(
                    (p1 as i16 - s1 as i16 + dividend_scale) as u8,
                    dividend_scale as i8,
                );
                Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                    left: Box::new(Expr::Cast(Cast::new(left, dividend))),
                    op: Operator::Divide,
                    right: Box::new(Expr::Cast(Cast::new(right, DataType::Decimal128(p2, s2)))),
                })))
            }
            other => Ok(Transformed::no(other)),
        }
    }
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
        let ty = |e: &Expr| e.get_type(schema).ok();
        // date ± interval is a timestamp (Postgres, Redshift); DataFusion keeps a date.
        if matches!(op, Operator::Plus | Operator::Minus) {
            let (lt, rt) = (ty(&left), ty(&right));
            let as_ts = |e: Box<Expr>| {
                Box::new(Expr::Cast(Cast::new(
                    e,
                    DataType::Timestamp(TimeUnit::Microsecond, None),
                )))
            };
            match (&lt, &rt) {
                (Some(DataType::Date32), Some(DataType::Interval(_))) => {
                    return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                        left: as_ts(left),
                        op,
                        right,
                    })));
                }
                (Some(DataType::Interval(_)), Some(DataType::Date32)) if op == Operator::Plus => {
                    return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                        left,
                        op,
                        right: as_ts(right),
                    })));
                }
                _ => {}
            }
        }
        // Redshift reads an integer literal as a boolean in AND/OR (`WHERE 1 AND ...`).
        if matches!(op, Operator::And | Operator::Or) {
            let int_lit = |e: &Expr| match e {
                // `CAST(1 AS integer)`: the session types small integer literals int4.
                Expr::Cast(Cast { expr, .. }) if matches!(expr.as_ref(), Expr::Literal(v, _) if v.data_type().is_integer()) => {
                    match expr.as_ref() {
                        Expr::Literal(v, _) if !v.is_null() => {
                            Some(v != &ScalarValue::new_zero(&v.data_type()).ok()?)
                        }
                        _ => None,
                    }
                }
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

/// `basalt_checked_{add,sub,mul}(a, b)`: integer arithmetic that fails with an overflow error
/// (22003) instead of wrapping; Arrow's non-wrapping kernels. `basalt_checked_div(a, b)`:
/// floating-point division that fails on a zero divisor (22012).
/// A function's result: one value when every argument was one (so constant folding keeps a
/// scalar), else the array.
fn columnar(out: datafusion::arrow::array::ArrayRef, scalar: bool) -> Result<ColumnarValue> {
    Ok(if scalar {
        ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
    } else {
        ColumnarValue::Array(out)
    })
}

fn checked_arithmetic(op: Operator) -> ScalarUDF {
    use datafusion::logical_expr::{ScalarUDFImpl, Signature};
    #[derive(Debug, PartialEq, Eq, Hash)]
    struct Checked {
        name: &'static str,
        op: u8,
        signature: Signature,
    }
    impl ScalarUDFImpl for Checked {
        fn name(&self) -> &str {
            self.name
        }
        fn signature(&self) -> &Signature {
            &self.signature
        }
        fn return_type(&self, args: &[DataType]) -> Result<DataType> {
            Ok(args[0].clone())
        }
        fn invoke_with_args(
            &self,
            args: datafusion::logical_expr::ScalarFunctionArgs,
        ) -> Result<ColumnarValue> {
            use datafusion::arrow::compute::kernels::numeric;
            let [a, b] = [&args.args[0], &args.args[1]];
            let scalars =
                matches!(a, ColumnarValue::Scalar(_)) && matches!(b, ColumnarValue::Scalar(_));
            let (a, b) = (a.to_array(args.number_rows)?, b.to_array(args.number_rows)?);
            let out = match self.op {
                0 => numeric::add(&a, &b),
                1 => numeric::sub(&a, &b),
                2 => numeric::mul(&a, &b),
                _ => {
                    let zero = ScalarValue::new_zero(b.data_type())?.to_scalar()?;
                    let zeros = datafusion::arrow::compute::kernels::cmp::eq(&b, &zero)?;
                    if zeros.true_count() > 0 {
                        return Err(datafusion::arrow::error::ArrowError::DivideByZero.into());
                    }
                    numeric::div(&a, &b)
                }
            }
            .map_err(|e| match e {
                datafusion::arrow::error::ArrowError::ArithmeticOverflow(_) => {
                    datafusion::arrow::error::ArrowError::ArithmeticOverflow(format!(
                        "{} out of range",
                        match a.data_type() {
                            DataType::Int16 => "smallint",
                            DataType::Int32 => "integer",
                            _ => "bigint",
                        }
                    ))
                }
                other => other,
            })?;
            columnar(out, scalars)
        }
    }
    let (name, code) = match op {
        Operator::Plus => ("basalt_checked_add", 0),
        Operator::Minus => ("basalt_checked_sub", 1),
        Operator::Multiply => ("basalt_checked_mul", 2),
        _ => ("basalt_checked_div", 3),
    };
    ScalarUDF::new_from_impl(Checked {
        name,
        op: code,
        signature: Signature::any(2, Volatility::Immutable),
    })
}

/// `basalt_timestamp_text(ts)`: a timestamp (µs) as Postgres prints it: `YYYY-MM-DD
/// HH:MM:SS[.ffffff]`, fraction without trailing zeros, `+00` for timestamptz (UTC).
/// Text to `date` or `timestamp` (any unit, no zone) as Postgres reads it: Arrow's cast first,
/// on the whole array; only when it fails are values read one by one, also taking one-digit
/// fields and no seconds (`2024-1-5 7:05`). A value neither reads keeps Arrow's error.
pub fn text_to_datetime(
    input: &dyn datafusion::arrow::array::Array,
    target: &DataType,
) -> std::result::Result<datafusion::arrow::array::ArrayRef, datafusion::arrow::error::ArrowError> {
    use datafusion::arrow::array::{Array, ArrayRef, Date32Builder, TimestampMicrosecondBuilder};
    use datafusion::arrow::compute::{CastOptions, cast_with_options};
    fn parse_naive(s: &str) -> Option<chrono::NaiveDateTime> {
        let s = s.trim();
        for f in [
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M",
        ] {
            if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
                return Some(t);
            }
        }
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    }
    let strict = CastOptions {
        safe: false,
        ..Default::default()
    };
    let first = match cast_with_options(input, target, &strict) {
        Ok(a) => return Ok(a),
        Err(e) => e,
    };
    let text = cast_with_options(input, &DataType::Utf8, &strict)?;
    let text = text.as_string::<i32>();
    let mut values = Vec::with_capacity(text.len());
    for i in 0..text.len() {
        if text.is_null(i) {
            values.push(None);
        } else {
            match parse_naive(text.value(i)) {
                Some(t) => values.push(Some(t)),
                None => return Err(first),
            }
        }
    }
    let out: ArrayRef = if *target == DataType::Date32 {
        let mut b = Date32Builder::with_capacity(values.len());
        for v in values {
            b.append_option(v.map(|t| {
                t.date()
                    .signed_duration_since(chrono::NaiveDate::default())
                    .num_days() as i32
            }));
        }
        Arc::new(b.finish())
    } else {
        let mut b = TimestampMicrosecondBuilder::with_capacity(values.len());
        for v in values {
            b.append_option(v.map(|t| t.and_utc().timestamp_micros()));
        }
        cast_with_options(&b.finish(), target, &strict)?
    };
    Ok(out)
}

/// `basalt_text_to_{timestamp,date}(text)`: [`text_to_datetime`] as a function, for casts.
fn lenient_datetime_cast(target: DataType) -> ScalarUDF {
    use datafusion::logical_expr::{ScalarUDFImpl, Signature};
    #[derive(Debug, PartialEq, Eq, Hash)]
    struct Lenient {
        name: &'static str,
        target: DataType,
        signature: Signature,
    }
    impl ScalarUDFImpl for Lenient {
        fn name(&self) -> &str {
            self.name
        }
        fn signature(&self) -> &Signature {
            &self.signature
        }
        fn return_type(&self, _: &[DataType]) -> Result<DataType> {
            Ok(self.target.clone())
        }
        fn invoke_with_args(
            &self,
            args: datafusion::logical_expr::ScalarFunctionArgs,
        ) -> Result<ColumnarValue> {
            let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
            let input = args.args[0].to_array(args.number_rows)?;
            let out = text_to_datetime(&input, &self.target)?;
            columnar(out, scalar)
        }
    }
    // One name per target type: a plan fragment names the function, and a compute node
    // finds it by that name.
    let name = match &target {
        DataType::Timestamp(TimeUnit::Second, _) => "basalt_text_to_timestamp_s",
        DataType::Timestamp(TimeUnit::Millisecond, _) => "basalt_text_to_timestamp_ms",
        DataType::Timestamp(TimeUnit::Microsecond, _) => "basalt_text_to_timestamp",
        DataType::Timestamp(TimeUnit::Nanosecond, _) => "basalt_text_to_timestamp_ns",
        _ => "basalt_text_to_date",
    };
    ScalarUDF::new_from_impl(Lenient {
        name,
        target,
        signature: Signature::any(1, Volatility::Immutable),
    })
}

fn timestamp_text() -> ScalarUDF {
    use datafusion::arrow::array::{Array, StringBuilder};
    use datafusion::arrow::datatypes::TimestampMicrosecondType;
    use datafusion::logical_expr::{ScalarUDFImpl, Signature};
    #[derive(Debug, PartialEq, Eq, Hash)]
    struct TimestampText(Signature);
    impl ScalarUDFImpl for TimestampText {
        fn name(&self) -> &str {
            "basalt_timestamp_text"
        }
        fn signature(&self) -> &Signature {
            &self.0
        }
        fn return_type(&self, _: &[DataType]) -> Result<DataType> {
            Ok(DataType::Utf8)
        }
        fn invoke_with_args(
            &self,
            args: datafusion::logical_expr::ScalarFunctionArgs,
        ) -> Result<ColumnarValue> {
            let arrays = ColumnarValue::values_to_arrays(&args.args)?;
            let Some(ts) = arrays[0].as_primitive_opt::<TimestampMicrosecondType>() else {
                return exec_err!("basalt_timestamp_text of {}", arrays[0].data_type());
            };
            let tz = matches!(arrays[0].data_type(), DataType::Timestamp(_, Some(_)));
            let mut out = StringBuilder::new();
            for i in 0..ts.len() {
                if ts.is_null(i) {
                    out.append_null();
                    continue;
                }
                let us = ts.value(i);
                let Some(dt) = chrono::DateTime::from_timestamp_micros(us) else {
                    return exec_err!("timestamp out of range");
                };
                let mut text = dt.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string();
                let frac = us.rem_euclid(1_000_000);
                if frac != 0 {
                    let f = format!(".{frac:06}");
                    text.push_str(f.trim_end_matches('0'));
                }
                if tz {
                    text.push_str("+00");
                }
                out.append_value(text);
            }
            Ok(ColumnarValue::Array(Arc::new(out.finish())))
        }
    }
    ScalarUDF::new_from_impl(TimestampText(Signature::any(1, Volatility::Immutable)))
}

/// `basalt_interval_times(interval, n)`: the interval n times (each field scaled); the
/// Redshift rewrite turns `n * INTERVAL '...'` into it.
pub fn interval_times() -> ScalarUDF {
    use datafusion::arrow::array::{Array, IntervalMonthDayNanoArray};
    use datafusion::arrow::datatypes::{Int64Type, IntervalMonthDayNano, IntervalMonthDayNanoType};
    create_udf(
        "basalt_interval_times",
        vec![
            DataType::Interval(IntervalUnit::MonthDayNano),
            DataType::Int64,
        ],
        DataType::Interval(IntervalUnit::MonthDayNano),
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let iv = arrays[0].as_primitive::<IntervalMonthDayNanoType>();
            let n = arrays[1].as_primitive::<Int64Type>();
            let overflow = || {
                datafusion::error::DataFusionError::ArrowError(
                    Box::new(datafusion::arrow::error::ArrowError::ArithmeticOverflow(
                        "interval out of range".into(),
                    )),
                    None,
                )
            };
            let mut out = Vec::with_capacity(iv.len());
            for i in 0..iv.len() {
                if iv.is_null(i) || n.is_null(i) {
                    out.push(None);
                    continue;
                }
                let (v, k) = (iv.value(i), n.value(i));
                let k32 = i32::try_from(k).map_err(|_| overflow())?;
                out.push(Some(IntervalMonthDayNano::new(
                    v.months.checked_mul(k32).ok_or_else(overflow)?,
                    v.days.checked_mul(k32).ok_or_else(overflow)?,
                    v.nanoseconds.checked_mul(k).ok_or_else(overflow)?,
                )));
            }
            Ok(ColumnarValue::Array(Arc::new(
                out.into_iter().collect::<IntervalMonthDayNanoArray>(),
            )))
        }),
    )
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

/// `CAST(date_col AS timestamp) <op> <midnight timestamp literal>` → `date_col <op> <date>`:
/// the same answer (a date is its midnight), and the column keeps its zone maps and type.
/// Comes from `d <= DATE '1998-12-01' - INTERVAL '90' DAY`, a timestamp in Postgres.
fn date_comparison(left: &Expr, op: Operator, right: &Expr, schema: &DFSchema) -> Option<Expr> {
    let Expr::Cast(Cast { expr: col, .. }) = left else {
        return None;
    };
    if !matches!(col.get_type(schema), Ok(DataType::Date32)) {
        return None;
    }
    let per_day: i64 = 86_400;
    let days = match right {
        Expr::Literal(ScalarValue::TimestampNanosecond(Some(v), None), _) => {
            let d = per_day * 1_000_000_000;
            (v % d == 0).then(|| v / d)
        }
        Expr::Literal(ScalarValue::TimestampMicrosecond(Some(v), None), _) => {
            let d = per_day * 1_000_000;
            (v % d == 0).then(|| v / d)
        }
        Expr::Literal(ScalarValue::TimestampMillisecond(Some(v), None), _) => {
            let d = per_day * 1_000;
            (v % d == 0).then(|| v / d)
        }
        Expr::Literal(ScalarValue::TimestampSecond(Some(v), None), _) => {
            (v % per_day == 0).then(|| v / per_day)
        }
        _ => None,
    }?;
    let days = i32::try_from(days).ok()?;
    Some(Expr::BinaryExpr(BinaryExpr {
        left: col.clone(),
        op,
        right: Box::new(Expr::Literal(ScalarValue::Date32(Some(days)), None)),
    }))
}

/// Runs last among the optimizer rules, once constants are folded: date comparisons with
/// midnight timestamps become date comparisons (see [`date_comparison`]), in filters and in
/// the filters pushed into table scans (which prune by zone maps).
#[derive(Debug, Default)]
pub struct DateComparisons;

impl OptimizerRule for DateComparisons {
    fn name(&self) -> &str {
        "basalt_date_comparisons"
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        plan.transform_up_with_subqueries(|node| {
            let schema = match node.inputs().as_slice() {
                [] => match &node {
                    LogicalPlan::TableScan(scan) => scan
                        .source
                        .schema()
                        .as_ref()
                        .clone()
                        .try_into()
                        .map(|s: DFSchema| s.replace_qualifier(scan.table_name.clone()))?,
                    _ => DFSchema::empty(),
                },
                inputs => merge_schema(inputs),
            };
            node.map_expressions(|e| {
                e.transform_up(|e| match e {
                    Expr::BinaryExpr(BinaryExpr { left, op, right })
                        if matches!(
                            op,
                            Operator::Eq
                                | Operator::NotEq
                                | Operator::Lt
                                | Operator::LtEq
                                | Operator::Gt
                                | Operator::GtEq
                        ) =>
                    {
                        if let Some(e) = date_comparison(&left, op, &right, &schema) {
                            return Ok(Transformed::yes(e));
                        }
                        if let Some(swapped) = op.swap()
                            && let Some(e) = date_comparison(&right, swapped, &left, &schema)
                        {
                            return Ok(Transformed::yes(e));
                        }
                        Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr {
                            left,
                            op,
                            right,
                        })))
                    }
                    other => Ok(Transformed::no(other)),
                })
            })
        })
    }
}

fn rewrite_expr(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    match e {
        // Integer + - * raise 22003 on overflow (Postgres, Redshift); DataFusion wraps.
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if matches!(op, Operator::Plus | Operator::Minus | Operator::Multiply)
                && matches!(
                    (left.get_type(schema), right.get_type(schema)),
                    (Ok(l), Ok(r)) if l == r && is_integer(&l)
                ) =>
        {
            Ok(Transformed::yes(Expr::ScalarFunction(
                ScalarFunction::new_udf(Arc::new(checked_arithmetic(op)), vec![*left, *right]),
            )))
        }
        // Floating-point division by zero is 22012 (Postgres, Redshift); Arrow gives Infinity.
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Divide,
            right,
        }) if matches!(
            (left.get_type(schema), right.get_type(schema)),
            (Ok(l), Ok(r)) if l == r && l.is_floating()
        ) =>
        {
            Ok(Transformed::yes(Expr::ScalarFunction(
                ScalarFunction::new_udf(
                    Arc::new(checked_arithmetic(Operator::Divide)),
                    vec![*left, *right],
                ),
            )))
        }
        // Text read as a date or timestamp also takes one-digit fields (`2024-1-5 7:05`).
        Expr::Cast(Cast { expr, field })
            if matches!(
                field.data_type(),
                DataType::Date32 | DataType::Timestamp(_, None)
            ) && matches!(
                expr.get_type(schema),
                Ok(DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
            ) =>
        {
            Ok(Transformed::yes(Expr::ScalarFunction(
                ScalarFunction::new_udf(
                    Arc::new(lenient_datetime_cast(field.data_type().clone())),
                    vec![*expr],
                ),
            )))
        }
        // Timestamps as text read as Postgres writes them (`2024-01-15 08:00:00`, no `T`).
        Expr::Cast(Cast { expr, field })
            if matches!(
                field.data_type(),
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
            ) && matches!(expr.get_type(schema), Ok(DataType::Timestamp(_, _))) =>
        {
            let us = Expr::Cast(Cast::new(
                expr.clone(),
                match expr.get_type(schema)? {
                    DataType::Timestamp(_, tz) => DataType::Timestamp(TimeUnit::Microsecond, tz),
                    other => other,
                },
            ));
            let text = Expr::ScalarFunction(ScalarFunction::new_udf(
                Arc::new(timestamp_text()),
                vec![us],
            ));
            Ok(Transformed::yes(Expr::Cast(Cast {
                expr: Box::new(text),
                field,
            })))
        }
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
