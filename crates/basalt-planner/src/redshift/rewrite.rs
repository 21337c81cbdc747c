//! The syntax rewrites: a [`VisitorMut`] pass over the parsed statement that turns
//! Redshift-only syntax into SQL DataFusion plans (see the module header of [`super`]).

use std::ops::ControlFlow;

use datafusion::common::plan_datafusion_err;
use datafusion::error::{DataFusionError, Result};
use sqlparser::ast::helpers::attached_token::AttachedToken;
use sqlparser::ast::{
    BinaryOperator, CaseWhen, DateTimeField, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentClause, FunctionArguments, Ident, LimitClause, ObjectName, ObjectNamePart,
    OrderByExpr, Query, SetExpr, Statement, TopQuantity, Value, VisitMut, VisitorMut, WindowFrame,
    WindowFrameBound, WindowFrameUnits, WindowType,
};

use super::datepart::{DatePart, invalid_datepart};
use super::formatting::chrono_parse_format;

/// Applies every rewrite to `stmt`, including nested queries and expressions.
pub(crate) fn rewrite_statement(stmt: &mut Statement) -> Result<()> {
    match stmt.visit(&mut Rewriter) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(err) => Err(err),
    }
}

struct Rewriter;

fn flow(result: Result<()>) -> ControlFlow<DataFusionError> {
    match result {
        Ok(()) => ControlFlow::Continue(()),
        Err(err) => ControlFlow::Break(err),
    }
}

impl VisitorMut for Rewriter {
    type Break = DataFusionError;

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<Self::Break> {
        flow(rewrite_top(query))
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<Self::Break> {
        flow(rewrite_expr(expr))
    }
}

// ---------------------------------------------------------------------------------------------
// SELECT TOP n
// ---------------------------------------------------------------------------------------------

/// Moves `SELECT TOP n` into the query's `LIMIT n`. A `TOP` on one side of a set operation
/// becomes a parenthesized query of its own.
fn rewrite_top(query: &mut Query) -> Result<()> {
    if let SetExpr::Select(select) = query.body.as_mut() {
        if let Some(limit) = take_top(select)? {
            if query.limit_clause.is_some() || query.fetch.is_some() {
                return Err(plan_datafusion_err!(
                    "SELECT TOP cannot be combined with LIMIT or FETCH"
                ));
            }
            query.limit_clause = Some(limit_clause(limit));
        }
        return Ok(());
    }
    rewrite_top_in_set_expr(query.body.as_mut())
}

fn rewrite_top_in_set_expr(set_expr: &mut SetExpr) -> Result<()> {
    match set_expr {
        SetExpr::SetOperation { left, right, .. } => {
            rewrite_top_in_set_expr(left)?;
            rewrite_top_in_set_expr(right)
        }
        SetExpr::Select(select) => {
            if let Some(limit) = take_top(select)? {
                let body = SetExpr::Select(select.clone());
                *set_expr = SetExpr::Query(Box::new(Query {
                    with: None,
                    body: Box::new(body),
                    order_by: None,
                    limit_clause: Some(limit_clause(limit)),
                    fetch: None,
                    locks: vec![],
                    for_clause: None,
                    settings: None,
                    format_clause: None,
                    pipe_operators: vec![],
                }));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Removes the `TOP` clause of `select`, returning its row count.
fn take_top(select: &mut sqlparser::ast::Select) -> Result<Option<Expr>> {
    let Some(top) = select.top.take() else {
        return Ok(None);
    };
    if top.percent {
        return Err(plan_datafusion_err!(
            "SELECT TOP ... PERCENT is not supported"
        ));
    }
    if top.with_ties {
        return Err(plan_datafusion_err!(
            "SELECT TOP ... WITH TIES is not supported"
        ));
    }
    match top.quantity {
        Some(TopQuantity::Constant(n)) => {
            Ok(Some(Expr::value(Value::Number(n.to_string(), false))))
        }
        Some(TopQuantity::Expr(expr)) => Ok(Some(expr)),
        None => Err(plan_datafusion_err!("SELECT TOP requires a row count")),
    }
}

fn limit_clause(limit: Expr) -> LimitClause {
    LimitClause::LimitOffset {
        limit: Some(limit),
        offset: None,
        limit_by: vec![],
    }
}

// ---------------------------------------------------------------------------------------------
// Expressions
// ---------------------------------------------------------------------------------------------

fn string_literal(s: impl Into<String>) -> Expr {
    Expr::value(Value::SingleQuotedString(s.into()))
}

fn unnamed(expr: Expr) -> FunctionArg {
    FunctionArg::Unnamed(FunctionArgExpr::Expr(expr))
}

use basalt_sql::build::call;

fn rewrite_expr(expr: &mut Expr) -> Result<()> {
    match expr {
        // SYSDATE is a bare keyword in Redshift.
        Expr::Identifier(ident)
            if ident.quote_style.is_none() && ident.value.eq_ignore_ascii_case("sysdate") =>
        {
            *expr = call("sysdate", vec![]);
        }
        Expr::Extract {
            field, expr: inner, ..
        } => {
            let name = match field {
                DateTimeField::Custom(ident) => ident.value.clone(),
                other => other.to_string(),
            };
            if let Some(part) = DatePart::parse(&name) {
                let inner = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
                *expr = date_part(part, inner);
            }
        }
        Expr::Function(func) => {
            if let Some(replacement) = rewrite_function(func)? {
                *expr = replacement;
            } else if simple_name(func).as_deref() == Some("date_part")
                && arg_list(func).is_some_and(|args| {
                    args.len() == 2
                        && matches!(arg_expr(&mut args[0]),
                            Some(Expr::Value(v)) if matches!(&v.value,
                                Value::SingleQuotedString(p) if p == "second"))
                })
            {
                let mut args = take_arg_exprs(func, "DATE_PART")?;
                *expr = date_part(DatePart::Second, args.remove(1));
            }
        }
        // CAST(x AS varchar(n) | char(n)) cuts the text to n characters (Postgres, Redshift);
        // DataFusion has no string lengths.
        Expr::Cast {
            expr: inner,
            data_type,
            ..
        } if string_length(data_type).is_some() => {
            let n = string_length(data_type).unwrap_or_default();
            let text = Expr::Cast {
                kind: sqlparser::ast::CastKind::Cast,
                expr: Box::new(std::mem::replace(inner.as_mut(), Expr::value(Value::Null))),
                data_type: sqlparser::ast::DataType::Text,
                array: false,
                format: None,
            };
            *expr = call(
                "left",
                vec![text, Expr::value(Value::Number(n.to_string(), false))],
            );
        }
        // n * INTERVAL '...' (either order): DataFusion cannot multiply an interval.
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Multiply,
            right,
        } if is_interval_literal(left) || is_interval_literal(right) => {
            let (iv, n) = if is_interval_literal(left) {
                (left.as_ref().clone(), right.as_ref().clone())
            } else {
                (right.as_ref().clone(), left.as_ref().clone())
            };
            let n = Expr::Cast {
                kind: sqlparser::ast::CastKind::Cast,
                expr: Box::new(n),
                data_type: sqlparser::ast::DataType::BigInt(None),
                array: false,
                format: None,
            };
            *expr = call("basalt_interval_times", vec![iv, n]);
        }
        // DATE '...' ± INTERVAL '...' is a timestamp (DataFusion keeps a date).
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Plus | BinaryOperator::Minus,
            right,
        } if is_date_literal(left) && is_interval_literal(right) => {
            let date = left.as_ref().clone();
            **left = Expr::Cast {
                kind: sqlparser::ast::CastKind::Cast,
                expr: Box::new(date),
                data_type: sqlparser::ast::DataType::Timestamp(
                    None,
                    sqlparser::ast::TimezoneInfo::None,
                ),
                array: false,
                format: None,
            };
        }
        // A quoted literal in arithmetic with a number literal is that number ('5' + 3).
        Expr::BinaryOp {
            left,
            op:
                BinaryOperator::Plus
                | BinaryOperator::Minus
                | BinaryOperator::Multiply
                | BinaryOperator::Divide,
            right,
        } if (is_string_literal(left) && is_number_literal(right))
            || (is_number_literal(left) && is_string_literal(right)) =>
        {
            let (text, number) = if is_string_literal(left) {
                (left, right)
            } else {
                (right, left)
            };
            let integer = matches!(number.as_ref(), Expr::Value(v)
                if matches!(&v.value, Value::Number(n, _) if n.bytes().all(|b| b.is_ascii_digit())));
            let target = if integer {
                sqlparser::ast::DataType::BigInt(None)
            } else {
                sqlparser::ast::DataType::Numeric(sqlparser::ast::ExactNumberInfo::None)
            };
            let inner = text.as_ref().clone();
            **text = Expr::Cast {
                kind: sqlparser::ast::CastKind::Cast,
                expr: Box::new(inner),
                data_type: target,
                array: false,
                format: None,
            };
        }
        // Postgres's prefix `@` (absolute value).
        Expr::UnaryOp {
            op: sqlparser::ast::UnaryOperator::PGAbs,
            expr: inner,
        } => {
            let inner = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
            *expr = call("abs", vec![inner]);
        }
        _ => {}
    }
    Ok(())
}

fn is_interval_literal(e: &Expr) -> bool {
    matches!(e, Expr::Interval(_))
}

fn is_date_literal(e: &Expr) -> bool {
    matches!(e, Expr::TypedString(t) if matches!(t.data_type, sqlparser::ast::DataType::Date))
}

fn is_string_literal(e: &Expr) -> bool {
    matches!(e, Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)))
}

fn is_number_literal(e: &Expr) -> bool {
    matches!(e, Expr::Value(v) if matches!(v.value, Value::Number(..)))
}

/// The lower-case name of a single-part function name.
fn simple_name(func: &Function) -> Option<String> {
    match func.name.0.as_slice() {
        [ObjectNamePart::Identifier(ident)] => Some(ident.value.to_ascii_lowercase()),
        _ => None,
    }
}

fn set_name(func: &mut Function, name: &str) {
    func.name = ObjectName::from(vec![Ident::new(name)]);
}

/// The positional argument list of a call, if it has one.
fn arg_list(func: &mut Function) -> Option<&mut Vec<FunctionArg>> {
    match &mut func.args {
        FunctionArguments::List(list) => Some(&mut list.args),
        _ => None,
    }
}

fn arg_expr(arg: &mut FunctionArg) -> Option<&mut Expr> {
    match arg {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => Some(expr),
        _ => None,
    }
}

/// The positional arguments of `func` as expressions (an error for `*` or named arguments).
fn take_arg_exprs(func: &mut Function, sql_name: &str) -> Result<Vec<Expr>> {
    let args = arg_list(func).map(std::mem::take).unwrap_or_default();
    args.into_iter()
        .map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => Ok(expr),
            other => Err(plan_datafusion_err!(
                "unsupported argument {other} to {sql_name}"
            )),
        })
        .collect()
}

/// `date_part(part, x)`; seconds keep their fraction (`17.5`), as in Postgres, where
/// DataFusion's `second` is a whole number.
fn date_part(part: DatePart, x: Expr) -> Expr {
    if part != DatePart::Second {
        return call("date_part", vec![string_literal(part.canonical()), x]);
    }
    let micros = Expr::Cast {
        kind: sqlparser::ast::CastKind::Cast,
        expr: Box::new(call("date_part", vec![string_literal("microsecond"), x])),
        data_type: sqlparser::ast::DataType::DoublePrecision,
        array: false,
        format: None,
    };
    Expr::BinaryOp {
        left: Box::new(micros),
        op: BinaryOperator::Divide,
        right: Box::new(Expr::value(Value::Number("1000000.0".into(), false))),
    }
}

/// The length of a `varchar(n)` / `char(n)` type.
fn string_length(t: &sqlparser::ast::DataType) -> Option<u64> {
    use sqlparser::ast::{CharacterLength, DataType as T};
    match t {
        T::Varchar(Some(CharacterLength::IntegerLength { length, .. }))
        | T::CharacterVarying(Some(CharacterLength::IntegerLength { length, .. }))
        | T::Char(Some(CharacterLength::IntegerLength { length, .. }))
        | T::Character(Some(CharacterLength::IntegerLength { length, .. }))
        | T::Nvarchar(Some(CharacterLength::IntegerLength { length, .. })) => Some(*length),
        _ => None,
    }
}

/// Returns a replacement expression, or edits `func` in place and returns `None`.
fn rewrite_function(func: &mut Function) -> Result<Option<Expr>> {
    let Some(name) = simple_name(func) else {
        return Ok(None);
    };
    match name.as_str() {
        "dateadd" => datepart_argument(func, "DATEADD", false)?,
        "datediff" => datepart_argument(func, "DATEDIFF", false)?,
        "date_trunc" => datepart_argument(func, "DATE_TRUNC", true)?,
        "date_part" | "datepart" => datepart_argument(func, "DATE_PART", true)?,
        "pgdate_part" => {
            set_name(func, "date_part");
            datepart_argument(func, "PGDATE_PART", true)?;
        }
        "decode" => return rewrite_decode(func),
        "charindex" => {
            let args = take_arg_exprs(func, "CHARINDEX")?;
            let [substring, string] = <[Expr; 2]>::try_from(args).map_err(|_| {
                plan_datafusion_err!("CHARINDEX takes 2 arguments: CHARINDEX(substring, string)")
            })?;
            return Ok(Some(call("strpos", vec![string, substring])));
        }
        "listagg" => rewrite_listagg(func)?,
        // Redshift's REGEXP_REPLACE(s, pattern) deletes every match (Postgres has no
        // two-argument form).
        "regexp_replace" if arg_list(func).is_some_and(|a| a.len() == 2) => {
            let mut args = take_arg_exprs(func, "REGEXP_REPLACE")?;
            args.push(string_literal(String::new()));
            args.push(string_literal("g"));
            return Ok(Some(call("regexp_replace", args)));
        }
        "regexp_substr" => return rewrite_regexp_substr(func).map(Some),
        // Postgres datetime templates; numeric TO_CHAR gets a "not supported" error there.
        "to_char" if arg_list(func).is_some_and(|a| a.len() == 2) => {
            let args = take_arg_exprs(func, "TO_CHAR")?;
            return Ok(Some(call("basalt_to_char", args)));
        }
        "to_date" | "to_timestamp" if arg_list(func).is_some_and(|a| a.len() == 2) => {
            translate_template(func, &name)?;
        }
        "percentile_cont" | "percentile_disc" => rewrite_windowed_percentile(func, &name)?,
        _ => {}
    }
    Ok(None)
}

/// `REGEXP_SUBSTR(s, pattern [, position])`: the first match, or NULL →
/// `regexp_match(substr(s, position), '(' || pattern || ')')[1]` (the outer group is the
/// whole match even when the pattern has groups of its own).
fn rewrite_regexp_substr(func: &mut Function) -> Result<Expr> {
    let mut args = take_arg_exprs(func, "REGEXP_SUBSTR")?;
    if !(2..=3).contains(&args.len()) {
        return Err(plan_datafusion_err!(
            "REGEXP_SUBSTR with occurrence or parameters is not supported; \
             use REGEXP_SUBSTR(source, pattern [, position])"
        ));
    }
    let position = (args.len() == 3).then(|| args.remove(2));
    let pattern = args.remove(1);
    let mut source = args.remove(0);
    if let Some(p) = position {
        source = call("substr", vec![source, p]);
    }
    let grouped = Expr::BinaryOp {
        left: Box::new(Expr::BinaryOp {
            left: Box::new(string_literal("(")),
            op: BinaryOperator::StringConcat,
            right: Box::new(pattern),
        }),
        op: BinaryOperator::StringConcat,
        right: Box::new(string_literal(")")),
    };
    Ok(call(
        "array_element",
        vec![
            call("regexp_match", vec![source, grouped]),
            Expr::value(Value::Number("1".into(), false)),
        ],
    ))
}

/// `TO_DATE(text, 'template')` / `TO_TIMESTAMP(text, 'template')`: replaces the Postgres
/// template with the equivalent chrono format of DataFusion's `to_date` / `to_timestamp`. A
/// template containing `%` is a chrono format already (DataFusion's spelling, or this rewrite
/// applied before: view text is stored rewritten) and stays.
fn translate_template(func: &mut Function, name: &str) -> Result<()> {
    let Some(template) = arg_list(func)
        .and_then(|args| args.get_mut(1))
        .and_then(arg_expr)
    else {
        return Ok(());
    };
    let text = match &*template {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => s.clone(),
            Value::DollarQuotedString(s) => s.value.clone(),
            _ => return Err(template_not_literal(name)),
        },
        _ => return Err(template_not_literal(name)),
    };
    if !text.contains('%') {
        *template = string_literal(chrono_parse_format(name, &text)?);
    }
    Ok(())
}

fn template_not_literal(name: &str) -> DataFusionError {
    plan_datafusion_err!("{name}: the format must be a string literal")
}

/// Date part names that DataFusion's `date_trunc` / `date_part` understand beyond Redshift's.
const EXTRA_DATEPARTS: &[&str] = &["isodow", "isoyear", "nanosecond", "nanoseconds", "julian"];

/// Turns a bare-identifier date part (`DATEADD(day, ...)`) into a string literal; with
/// `canonicalize`, also spells a known date part (identifier or literal) the way DataFusion
/// expects it (`'mon'` → `'month'`).
fn datepart_argument(func: &mut Function, sql_name: &str, canonicalize: bool) -> Result<()> {
    let Some(first) = arg_list(func)
        .and_then(|args| args.first_mut())
        .and_then(arg_expr)
    else {
        return Ok(());
    };
    let name = match &*first {
        Expr::Identifier(ident) => ident.value.clone(),
        Expr::Value(value) => match &value.value {
            Value::SingleQuotedString(s) if canonicalize => s.clone(),
            _ => return Ok(()),
        },
        _ => return Ok(()),
    };
    let name = if canonicalize {
        match DatePart::parse(&name) {
            Some(
                part @ (DatePart::Millennium
                | DatePart::Century
                | DatePart::Decade
                | DatePart::Epoch
                | DatePart::DayOfWeek
                | DatePart::DayOfYear),
            ) if sql_name == "DATE_TRUNC" => {
                return Err(plan_datafusion_err!(
                    "datepart \"{name}\" ({}) is not supported for DATE_TRUNC",
                    part.canonical()
                ));
            }
            Some(part) => part.canonical().to_string(),
            None if EXTRA_DATEPARTS.contains(&name.to_ascii_lowercase().as_str()) => name,
            None => return Err(invalid_datepart(sql_name, &name)),
        }
    } else {
        name
    };
    *first = string_literal(name);
    Ok(())
}

/// `DECODE(expr, search1, result1 [, search2, result2 ...] [, default])` becomes
/// `CASE WHEN expr IS NOT DISTINCT FROM search1 THEN result1 ... ELSE default END`, so that a
/// NULL search value matches a NULL `expr` as in Redshift. Calls with fewer than three
/// arguments are left to DataFusion's `decode(value, encoding)`.
fn rewrite_decode(func: &mut Function) -> Result<Option<Expr>> {
    if arg_list(func).is_none_or(|args| args.len() < 3) {
        return Ok(None);
    }
    let mut args = take_arg_exprs(func, "DECODE")?.into_iter();
    let Some(subject) = args.next() else {
        return Ok(None);
    };
    let rest: Vec<Expr> = args.collect();
    let mut conditions = Vec::with_capacity(rest.len() / 2);
    let mut pairs = rest.chunks_exact(2);
    for pair in pairs.by_ref() {
        conditions.push(CaseWhen {
            condition: Expr::IsNotDistinctFrom(
                Box::new(subject.clone()),
                Box::new(pair[0].clone()),
            ),
            result: pair[1].clone(),
        });
    }
    let else_result = pairs.remainder().first().cloned().map(Box::new);
    Ok(Some(Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions,
        else_result,
    }))
}

/// `ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING`
fn whole_partition() -> WindowFrame {
    WindowFrame {
        units: WindowFrameUnits::Rows,
        start_bound: WindowFrameBound::Preceding(None),
        end_bound: Some(WindowFrameBound::Following(None)),
    }
}

/// `LISTAGG([DISTINCT] expr [, delimiter]) [WITHIN GROUP (ORDER BY ...)] [OVER (...)]`
/// becomes `string_agg([DISTINCT] expr, delimiter [ORDER BY ...])`. The delimiter defaults to
/// the empty string. As a window function the WITHIN GROUP ordering becomes the window's
/// ordering over the whole partition.
fn rewrite_listagg(func: &mut Function) -> Result<()> {
    let args =
        arg_list(func).ok_or_else(|| plan_datafusion_err!("LISTAGG requires an argument"))?;
    match args.len() {
        1 => args.push(unnamed(string_literal(""))),
        2 => {
            if let Some(delimiter) = arg_expr(&mut args[1])
                && matches!(delimiter, Expr::Value(v) if v.value == Value::Null)
            {
                *delimiter = string_literal("");
            }
        }
        n => {
            return Err(plan_datafusion_err!(
                "LISTAGG takes 1 or 2 arguments, got {n}: LISTAGG(expr [, delimiter])"
            ));
        }
    }
    set_name(func, "string_agg");
    let ordering = std::mem::take(&mut func.within_group);
    if ordering.is_empty() {
        return Ok(());
    }
    match &mut func.over {
        None => {
            if let FunctionArguments::List(list) = &mut func.args {
                list.clauses.push(FunctionArgumentClause::OrderBy(ordering));
            }
            Ok(())
        }
        Some(WindowType::WindowSpec(spec)) => {
            if !spec.order_by.is_empty() || spec.window_frame.is_some() {
                return Err(plan_datafusion_err!(
                    "LISTAGG ... OVER cannot have ORDER BY or a frame in OVER; use WITHIN GROUP"
                ));
            }
            spec.order_by = ordering;
            spec.window_frame = Some(whole_partition());
            Ok(())
        }
        Some(WindowType::NamedWindow(_)) => Err(plan_datafusion_err!(
            "LISTAGG ... WITHIN GROUP cannot be used with a named window"
        )),
    }
}

/// `PERCENTILE_CONT(p) WITHIN GROUP (ORDER BY x) OVER (PARTITION BY ...)` (a Redshift window
/// function; DataFusion rejects WITHIN GROUP together with OVER) becomes
/// `percentile_cont(x, p) OVER (PARTITION BY ...)`, with `1 - p` for a descending order.
fn rewrite_windowed_percentile(func: &mut Function, name: &str) -> Result<()> {
    if func.over.is_none() || func.within_group.is_empty() {
        return Ok(());
    }
    let sql_name = name.to_ascii_uppercase();
    let mut ordering = std::mem::take(&mut func.within_group);
    let Some(OrderByExpr { expr, options, .. }) = ordering.pop().filter(|_| ordering.is_empty())
    else {
        return Err(plan_datafusion_err!(
            "{sql_name} WITHIN GROUP takes exactly one ordering expression"
        ));
    };
    match &func.over {
        Some(WindowType::WindowSpec(spec))
            if spec.order_by.is_empty() && spec.window_frame.is_none() => {}
        _ => {
            return Err(plan_datafusion_err!(
                "{sql_name} ... OVER accepts only PARTITION BY in its OVER clause"
            ));
        }
    }
    let mut args = take_arg_exprs(func, &sql_name)?;
    if args.len() != 1 {
        return Err(plan_datafusion_err!(
            "{sql_name} takes one percentile: {sql_name}(percentile) WITHIN GROUP (ORDER BY expr)"
        ));
    }
    let mut percentile = args.remove(0);
    if options.asc == Some(false) {
        if name == "percentile_disc" {
            return Err(plan_datafusion_err!(
                "PERCENTILE_DISC ... WITHIN GROUP (ORDER BY ... DESC) OVER (...) is not supported"
            ));
        }
        percentile = Expr::BinaryOp {
            left: Box::new(Expr::value(Value::Number("1".to_string(), false))),
            op: BinaryOperator::Minus,
            right: Box::new(Expr::Nested(Box::new(percentile))),
        };
    }
    if let Some(list) = arg_list(func) {
        *list = vec![unnamed(expr), unnamed(percentile)];
    }
    Ok(())
}
