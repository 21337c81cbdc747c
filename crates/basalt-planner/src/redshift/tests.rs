//! End-to-end tests: parse with the PostgreSQL dialect, rewrite, plan and execute.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DFStatement;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::{register, rewrite};

fn context() -> SessionContext {
    let ctx = SessionContext::new();
    register(&ctx);
    ctx
}

/// A context with a small table `t(g, x, s, d)`.
async fn context_with_table() -> SessionContext {
    let ctx = context();
    ctx.sql(
        "CREATE TABLE t AS SELECT * FROM (VALUES \
            ('a', 1, 'one', DATE '2020-01-31'), \
            ('a', 2, 'two', DATE '2020-02-29'), \
            ('a', 3, 'three', NULL), \
            ('a', 4, NULL, DATE '2021-01-03'), \
            ('b', 10, 'ten', DATE '2020-06-15'), \
            ('b', NULL, 'none', DATE '2020-06-16')\
         ) AS v(g, x, s, d)",
    )
    .await
    .unwrap()
    .collect()
    .await
    .unwrap();
    ctx
}

async fn batches(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .map_err(|e| DataFusionError::Plan(e.to_string()))?;
    assert_eq!(statements.len(), 1, "one statement expected");
    let mut statement = statements.remove(0);
    rewrite(&mut statement)?;
    let plan = ctx
        .state()
        .statement_to_plan(DFStatement::Statement(Box::new(statement)))
        .await?;
    ctx.execute_logical_plan(plan).await?.collect().await
}

async fn query(ctx: &SessionContext, sql: &str) -> Result<String> {
    Ok(pretty_format_batches(&batches(ctx, sql).await?)?.to_string())
}

/// Runs `sql` and compares the pretty-printed result with `expected` (one table line each).
async fn check(ctx: &SessionContext, sql: &str, expected: &[&str]) {
    let actual = query(ctx, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let actual: Vec<&str> = actual.lines().collect();
    assert_eq!(actual, expected, "\n{sql}\n{}", actual.join("\n"));
}

/// Runs `sql` expecting an error whose message contains `needle`.
async fn check_err(ctx: &SessionContext, sql: &str, needle: &str) {
    match query(ctx, sql).await {
        Ok(out) => panic!("{sql}: expected an error containing {needle:?}, got\n{out}"),
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains(needle),
                "{sql}: {message:?} lacks {needle:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GETDATE / SYSDATE
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn getdate_and_sysdate_types() {
    let ctx = context();
    let out = batches(&ctx, "SELECT getdate() AS g, sysdate AS s, SYSDATE AS s2")
        .await
        .unwrap();
    let schema = out[0].schema();
    for field in schema.fields() {
        assert_eq!(
            field.data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, None),
            "{}",
            field.name()
        );
    }
    check(
        &ctx,
        "SELECT date_trunc('second', sysdate) = getdate() AS same_second, \
                getdate() = getdate() AS stable, \
                date_part('millisecond', getdate()) % 1000 AS subsecond",
        &[
            "+-------------+--------+-----------+",
            "| same_second | stable | subsecond |",
            "+-------------+--------+-----------+",
            "| true        | true   | 0         |",
            "+-------------+--------+-----------+",
        ],
    )
    .await;
}

#[test]
fn sysdate_in_default_expression() {
    let sql =
        "CREATE TABLE events (id INT, at TIMESTAMP DEFAULT SYSDATE, day DATE DEFAULT GETDATE())";
    let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .unwrap()
        .remove(0);
    rewrite(&mut statement).unwrap();
    let text = statement.to_string();
    assert!(text.contains("DEFAULT sysdate()"), "{text}");
    assert!(text.contains("DEFAULT GETDATE()"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// DATEADD / DATEDIFF / ADD_MONTHS / TRUNC
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn dateadd_values() {
    let ctx = context();
    check(
        &ctx,
        "SELECT dateadd(day, 1, '2020-01-31') AS a, \
                dateadd('month', 1, DATE '2020-01-31') AS b, \
                dateadd(mon, -1, TIMESTAMP '2020-03-31 10:30:00') AS c, \
                dateadd(yr, 1, DATE '2020-02-29') AS d, \
                dateadd(qtr, 1, DATE '2020-11-30') AS e",
        &[
            "+---------------------+---------------------+---------------------+---------------------+---------------------+",
            "| a                   | b                   | c                   | d                   | e                   |",
            "+---------------------+---------------------+---------------------+---------------------+---------------------+",
            "| 2020-02-01T00:00:00 | 2020-02-29T00:00:00 | 2020-02-29T10:30:00 | 2021-02-28T00:00:00 | 2021-02-28T00:00:00 |",
            "+---------------------+---------------------+---------------------+---------------------+---------------------+",
        ],
    )
    .await;
    check(
        &ctx,
        "SELECT dateadd(h, 25, TIMESTAMP '2020-01-01 00:00:00') AS h, \
                dateadd(m, 90, TIMESTAMP '2020-01-01 00:00:00') AS m, \
                dateadd(w, 2, DATE '2020-01-01') AS w, \
                dateadd(ms, 1500, TIMESTAMP '2020-01-01 00:00:00') AS ms, \
                dateadd(us, 7, TIMESTAMP '2020-01-01 00:00:00') AS us",
        &[
            "+---------------------+---------------------+---------------------+-------------------------+----------------------------+",
            "| h                   | m                   | w                   | ms                      | us                         |",
            "+---------------------+---------------------+---------------------+-------------------------+----------------------------+",
            "| 2020-01-02T01:00:00 | 2020-01-01T01:30:00 | 2020-01-15T00:00:00 | 2020-01-01T00:00:01.500 | 2020-01-01T00:00:00.000007 |",
            "+---------------------+---------------------+---------------------+-------------------------+----------------------------+",
        ],
    )
    .await;
}

#[tokio::test]
async fn dateadd_nulls_and_columns() {
    let ctx = context_with_table().await;
    check(
        &ctx,
        "SELECT x, dateadd(day, x, d) AS r FROM t WHERE g = 'a' ORDER BY x",
        &[
            "+---+---------------------+",
            "| x | r                   |",
            "+---+---------------------+",
            "| 1 | 2020-02-01T00:00:00 |",
            "| 2 | 2020-03-02T00:00:00 |",
            "| 3 |                     |",
            "| 4 | 2021-01-07T00:00:00 |",
            "+---+---------------------+",
        ],
    )
    .await;
    check(
        &ctx,
        "SELECT dateadd(day, NULL, DATE '2020-01-01') AS a, dateadd(day, 1, NULL) AS b",
        &[
            "+---+---+",
            "| a | b |",
            "+---+---+",
            "|   |   |",
            "+---+---+",
        ],
    )
    .await;
}

#[tokio::test]
async fn dateadd_errors() {
    let ctx = context();
    check_err(
        &ctx,
        "SELECT dateadd(fortnight, 1, DATE '2020-01-01')",
        "invalid datepart \"fortnight\" for DATEADD",
    )
    .await;
    check_err(
        &ctx,
        "SELECT dateadd(dow, 1, DATE '2020-01-01')",
        "datepart \"dow\" is not supported for DATEADD",
    )
    .await;
    check_err(
        &ctx,
        "SELECT dateadd(day, 1.5, DATE '2020-01-01')",
        "DATEADD expects an integer interval",
    )
    .await;
    check_err(
        &ctx,
        "SELECT dateadd(day, 1)",
        "DATEADD called with 2 argument(s)",
    )
    .await;
    check_err(
        &ctx,
        "SELECT dateadd(year, 9000000, DATE '2020-01-01')",
        "DATEADD result is out of range",
    )
    .await;
}

#[tokio::test]
async fn datediff_counts_boundaries() {
    let ctx = context();
    check(
        &ctx,
        "SELECT datediff(day, '2020-01-01 23:00', '2020-01-02 01:00') AS d, \
                datediff(hour, '2020-01-01 23:59', '2020-01-02 00:01') AS h, \
                datediff(year, DATE '2008-12-31', DATE '2009-01-01') AS y, \
                datediff(week, '2009-01-01', '2009-12-31') AS w, \
                datediff(qtr, DATE '2020-03-31', DATE '2020-04-01') AS q, \
                datediff(mons, DATE '2020-03-31', DATE '2020-01-01') AS mo",
        &[
            "+---+---+---+----+---+----+",
            "| d | h | y | w  | q | mo |",
            "+---+---+---+----+---+----+",
            "| 1 | 1 | 1 | 52 | 1 | -2 |",
            "+---+---+---+----+---+----+",
        ],
    )
    .await;
    check(
        &ctx,
        "SELECT datediff('minute', TIMESTAMP '2020-01-01 10:00:59', TIMESTAMP '2020-01-01 10:01:00') AS mi, \
                datediff(s, TIMESTAMP '2020-01-01 10:00:00.9', TIMESTAMP '2020-01-01 10:00:01.1') AS s, \
                datediff(ms, TIMESTAMP '2020-01-01 10:00:00', TIMESTAMP '2020-01-01 10:00:01.5') AS ms, \
                datediff(us, TIMESTAMP '2020-01-01 10:00:00', TIMESTAMP '2020-01-01 10:00:00.000123') AS us, \
                datediff(w, DATE '2021-01-03', DATE '2021-01-04') AS sun_mon, \
                datediff(decade, DATE '2019-12-31', DATE '2020-01-01') AS dec",
        &[
            "+----+---+------+-----+---------+-----+",
            "| mi | s | ms   | us  | sun_mon | dec |",
            "+----+---+------+-----+---------+-----+",
            "| 1  | 1 | 1500 | 123 | 1       | 1   |",
            "+----+---+------+-----+---------+-----+",
        ],
    )
    .await;
    check(
        &ctx,
        "SELECT datediff(day, NULL, DATE '2020-01-01') AS a, \
                arrow_typeof(datediff(day, DATE '2020-01-01', DATE '2020-01-02')) AS t",
        &[
            "+---+-------+",
            "| a | t     |",
            "+---+-------+",
            "|   | Int64 |",
            "+---+-------+",
        ],
    )
    .await;
}

#[tokio::test]
async fn datediff_errors() {
    let ctx = context_with_table().await;
    check_err(
        &ctx,
        "SELECT datediff(fortnight, DATE '2020-01-01', DATE '2020-02-01')",
        "invalid datepart \"fortnight\" for DATEDIFF",
    )
    .await;
    // A per-row datepart is checked when executed.
    check_err(
        &ctx,
        "SELECT datediff(lower(s), DATE '2020-01-01', d) FROM t",
        "invalid datepart \"one\" for DATEDIFF",
    )
    .await;
    check_err(
        &ctx,
        "SELECT datediff(day, 1, DATE '2020-01-01')",
        "DATEDIFF expects a date or timestamp argument",
    )
    .await;
}

#[tokio::test]
async fn add_months_and_trunc() {
    let ctx = context();
    check(
        &ctx,
        "SELECT add_months(DATE '2020-04-30', 1) AS end_of_month, \
                add_months(TIMESTAMP '2020-01-31 08:00:00', 1) AS clamp, \
                add_months(DATE '2020-03-15', -3) AS back, \
                trunc(TIMESTAMP '2020-03-15 23:59:59') AS day, \
                trunc(12.345, 1) AS num",
        &[
            "+---------------------+---------------------+---------------------+------------+------+",
            "| end_of_month        | clamp               | back                | day        | num  |",
            "+---------------------+---------------------+---------------------+------------+------+",
            "| 2020-05-31T00:00:00 | 2020-02-29T08:00:00 | 2019-12-15T00:00:00 | 2020-03-15 | 12.3 |",
            "+---------------------+---------------------+---------------------+------------+------+",
        ],
    )
    .await;
    check(
        &ctx,
        "SELECT trunc(CAST(NULL AS TIMESTAMP)) AS n, arrow_typeof(trunc(TIMESTAMP '2020-01-01 10:00:00')) AS t",
        &[
            "+---+--------+",
            "| n | t      |",
            "+---+--------+",
            "|   | Date32 |",
            "+---+--------+",
        ],
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// DATE_TRUNC / DATE_PART / EXTRACT
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn date_trunc_and_date_part_identifiers() {
    let ctx = context();
    check(
        &ctx,
        "SELECT date_trunc(week, TIMESTAMP '2020-01-08 10:00:00') AS wk, \
                date_trunc('mon', TIMESTAMP '2020-01-08 10:00:00') AS mon, \
                date_part(dow, DATE '2021-01-03') AS dow, \
                date_part(yrs, DATE '2021-01-03') AS yr, \
                pgdate_part(m, TIMESTAMP '2020-01-08 10:42:00') AS minute, \
                extract(mon FROM DATE '2021-07-03') AS month, \
                extract(year FROM DATE '2021-07-03') AS year",
        &[
            "+---------------------+---------------------+-----+------+--------+-------+------+",
            "| wk                  | mon                 | dow | yr   | minute | month | year |",
            "+---------------------+---------------------+-----+------+--------+-------+------+",
            "| 2020-01-06T00:00:00 | 2020-01-01T00:00:00 | 0   | 2021 | 42     | 7     | 2021 |",
            "+---------------------+---------------------+-----+------+--------+-------+------+",
        ],
    )
    .await;
    check_err(
        &ctx,
        "SELECT date_trunc(fortnight, TIMESTAMP '2020-01-08 10:00:00')",
        "invalid datepart \"fortnight\" for DATE_TRUNC",
    )
    .await;
    check_err(
        &ctx,
        "SELECT date_part('fortnight', DATE '2020-01-08')",
        "invalid datepart \"fortnight\" for DATE_PART",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// NVL / NVL2 / DECODE
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn nvl_and_nvl2() {
    let ctx = context_with_table().await;
    check(
        &ctx,
        "SELECT nvl(NULL, NULL, 3) AS a, NVL(1, 2) AS b, nvl(NULL, 'x') AS c, \
                nvl2(NULL, 'set', 'unset') AS d, nvl2(5, 'set', 'unset') AS e",
        &[
            "+---+---+---+-------+-----+",
            "| a | b | c | d     | e   |",
            "+---+---+---+-------+-----+",
            "| 3 | 1 | x | unset | set |",
            "+---+---+---+-------+-----+",
        ],
    )
    .await;
    check(
        &ctx,
        "SELECT g, x FROM t WHERE nvl(s, 'missing') = 'missing' OR nvl(x, -1) = -1 ORDER BY g",
        &[
            "+---+---+",
            "| g | x |",
            "+---+---+",
            "| a | 4 |",
            "| b |   |",
            "+---+---+",
        ],
    )
    .await;
}

#[tokio::test]
async fn decode_matches_null() {
    let ctx = context_with_table().await;
    check(
        &ctx,
        "SELECT x, decode(x, 1, 'one', 2, 'two', NULL, 'null', 'other') AS with_default, \
                decode(x, 1, 'one') AS without_default \
         FROM t WHERE g = 'b' OR x < 3 ORDER BY x NULLS LAST",
        &[
            "+----+--------------+-----------------+",
            "| x  | with_default | without_default |",
            "+----+--------------+-----------------+",
            "| 1  | one          | one             |",
            "| 2  | two          |                 |",
            "| 10 | other        |                 |",
            "|    | null         |                 |",
            "+----+--------------+-----------------+",
        ],
    )
    .await;
    // Two arguments stay DataFusion's decode(value, encoding).
    check(
        &ctx,
        "SELECT arrow_cast(decode('616263', 'hex'), 'Utf8') AS bytes",
        &[
            "+-------+",
            "| bytes |",
            "+-------+",
            "| abc   |",
            "+-------+",
        ],
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Aggregates
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn listagg_aggregate_and_window() {
    let ctx = context_with_table().await;
    check(
        &ctx,
        "SELECT g, listagg(s, ', ') WITHIN GROUP (ORDER BY x DESC) AS names, \
                LISTAGG(s) WITHIN GROUP (ORDER BY x DESC) AS packed, \
                listagg(DISTINCT g, '-') AS groups \
         FROM t GROUP BY g ORDER BY g",
        &[
            "+---+-----------------+-------------+--------+",
            "| g | names           | packed      | groups |",
            "+---+-----------------+-------------+--------+",
            "| a | three, two, one | threetwoone | a      |",
            "| b | none, ten       | noneten     | b      |",
            "+---+-----------------+-------------+--------+",
        ],
    )
    .await;
    // As in Redshift, LISTAGGs of one query must share their WITHIN GROUP ordering.
    check_err(
        &ctx,
        "SELECT listagg(s) WITHIN GROUP (ORDER BY x), listagg(s) WITHIN GROUP (ORDER BY s) FROM t",
        "Conflicting ordering requirements",
    )
    .await;
    check(
        &ctx,
        "SELECT x, listagg(s, '|') WITHIN GROUP (ORDER BY x) OVER (PARTITION BY g) AS names \
         FROM t WHERE g = 'a' ORDER BY x",
        &[
            "+---+---------------+",
            "| x | names         |",
            "+---+---------------+",
            "| 1 | one|two|three |",
            "| 2 | one|two|three |",
            "| 3 | one|two|three |",
            "| 4 | one|two|three |",
            "+---+---------------+",
        ],
    )
    .await;
    check(
        &ctx,
        "SELECT listagg(s, ',') AS none FROM t WHERE x > 100",
        &["+------+", "| none |", "+------+", "|      |", "+------+"],
    )
    .await;
    check_err(
        &ctx,
        "SELECT listagg(s, ',', 'x') FROM t",
        "LISTAGG takes 1 or 2 arguments",
    )
    .await;
}

#[tokio::test]
async fn median_and_percentile_cont() {
    let ctx = context_with_table().await;
    check(
        &ctx,
        "SELECT g, median(x) AS med, \
                percentile_cont(0.5) WITHIN GROUP (ORDER BY x) AS p50, \
                percentile_cont(0.25) WITHIN GROUP (ORDER BY x DESC) AS p25_desc \
         FROM t GROUP BY g ORDER BY g",
        &[
            "+---+------+------+----------+",
            "| g | med  | p50  | p25_desc |",
            "+---+------+------+----------+",
            "| a | 2.5  | 2.5  | 3.25     |",
            "| b | 10.0 | 10.0 | 10.0     |",
            "+---+------+------+----------+",
        ],
    )
    .await;
    check(
        &ctx,
        "SELECT x, percentile_cont(0.5) WITHIN GROUP (ORDER BY x) OVER (PARTITION BY g) AS p50, \
                median(x) OVER (PARTITION BY g) AS med \
         FROM t WHERE g = 'a' ORDER BY x",
        &[
            "+---+-----+-----+",
            "| x | p50 | med |",
            "+---+-----+-----+",
            "| 1 | 2.5 | 2.5 |",
            "| 2 | 2.5 | 2.5 |",
            "| 3 | 2.5 | 2.5 |",
            "| 4 | 2.5 | 2.5 |",
            "+---+-----+-----+",
        ],
    )
    .await;
    check(
        &ctx,
        "SELECT median(x) AS m FROM t WHERE x IS NULL",
        &["+---+", "| m |", "+---+", "|   |", "+---+"],
    )
    .await;
}

#[tokio::test]
async fn percentile_disc_values() {
    let ctx = context_with_table().await;
    check(
        &ctx,
        "SELECT g, percentile_disc(0.5) WITHIN GROUP (ORDER BY x) AS p50, \
                percentile_disc(0.75) WITHIN GROUP (ORDER BY x) AS p75, \
                percentile_disc(0) WITHIN GROUP (ORDER BY x) AS p0, \
                percentile_disc(1) WITHIN GROUP (ORDER BY x) AS p100, \
                percentile_disc(0.5) WITHIN GROUP (ORDER BY x DESC) AS p50_desc, \
                percentile_disc(0.5) WITHIN GROUP (ORDER BY s) AS s50, \
                percentile_disc(0.5) WITHIN GROUP (ORDER BY d) AS d50 \
         FROM t GROUP BY g ORDER BY g",
        &[
            "+---+-----+-----+----+------+----------+-------+------------+",
            "| g | p50 | p75 | p0 | p100 | p50_desc | s50   | d50        |",
            "+---+-----+-----+----+------+----------+-------+------------+",
            "| a | 2   | 3   | 1  | 4    | 3        | three | 2020-02-29 |",
            "| b | 10  | 10  | 10 | 10   | 10       | none  | 2020-06-15 |",
            "+---+-----+-----+----+------+----------+-------+------------+",
        ],
    )
    .await;
}

#[tokio::test]
async fn percentile_disc_nulls_window_and_errors() {
    let ctx = context_with_table().await;
    check(
        &ctx,
        "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY x) AS p FROM t WHERE x IS NULL",
        &["+---+", "| p |", "+---+", "|   |", "+---+"],
    )
    .await;
    check(
        &ctx,
        "SELECT x, percentile_disc(0.5) WITHIN GROUP (ORDER BY x) OVER (PARTITION BY g) AS p \
         FROM t WHERE g = 'a' ORDER BY x",
        &[
            "+---+---+",
            "| x | p |",
            "+---+---+",
            "| 1 | 2 |",
            "| 2 | 2 |",
            "| 3 | 2 |",
            "| 4 | 2 |",
            "+---+---+",
        ],
    )
    .await;
    check_err(
        &ctx,
        "SELECT percentile_disc(1.5) WITHIN GROUP (ORDER BY x) FROM t",
        "must be between 0 and 1",
    )
    .await;
    check_err(
        &ctx,
        "SELECT percentile_disc(x) WITHIN GROUP (ORDER BY x) FROM t",
        "must be a constant",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// CONVERT_TIMEZONE
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn convert_timezone_values() {
    let ctx = context();
    check(
        &ctx,
        "SELECT convert_timezone('America/New_York', '2020-01-15 12:00:00') AS winter, \
                convert_timezone('America/New_York', TIMESTAMP '2020-07-15 12:00:00') AS summer, \
                convert_timezone('EST', 'PST', '2008-03-05 12:25:29') AS abbrevs, \
                convert_timezone('utc', 'Asia/Kolkata', TIMESTAMP '2020-01-01 00:00:00') AS kolkata, \
                convert_timezone('UTC+3', 'UTC', TIMESTAMP '2020-01-01 00:00:00') AS posix",
        &[
            "+---------------------+---------------------+---------------------+---------------------+---------------------+",
            "| winter              | summer              | abbrevs             | kolkata             | posix               |",
            "+---------------------+---------------------+---------------------+---------------------+---------------------+",
            "| 2020-01-15T07:00:00 | 2020-07-15T08:00:00 | 2008-03-05T09:25:29 | 2020-01-01T05:30:00 | 2020-01-01T03:00:00 |",
            "+---------------------+---------------------+---------------------+---------------------+---------------------+",
        ],
    )
    .await;
    check(
        &ctx,
        "SELECT convert_timezone('America/Los_Angeles', 'UTC', TIMESTAMP '2020-07-01 10:00:00') AS to_utc, \
                convert_timezone('PDT', CAST(NULL AS TIMESTAMP)) AS null_ts, \
                arrow_typeof(convert_timezone('PST', TIMESTAMP '2020-01-01 00:00:00')) AS t",
        &[
            "+---------------------+---------+---------------+",
            "| to_utc              | null_ts | t             |",
            "+---------------------+---------+---------------+",
            "| 2020-07-01T17:00:00 |         | Timestamp(µs) |",
            "+---------------------+---------+---------------+",
        ],
    )
    .await;
    check_err(
        &ctx,
        "SELECT convert_timezone('Mars/Olympus', TIMESTAMP '2020-01-01 00:00:00')",
        "invalid time zone \"Mars/Olympus\" for CONVERT_TIMEZONE",
    )
    .await;
    check_err(
        &ctx,
        "SELECT convert_timezone(TIMESTAMP '2020-01-01 00:00:00')",
        "CONVERT_TIMEZONE called with 1 argument(s)",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// TO_CHAR / TO_DATE / TO_TIMESTAMP
// ---------------------------------------------------------------------------------------------

/// Runs a one-row, one-column query and returns its value as the pretty printer shows it.
async fn single_value(ctx: &SessionContext, sql: &str) -> String {
    let out = query(ctx, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let line = out.lines().nth(3).unwrap_or_default();
    line.trim_start_matches('|')
        .trim_end_matches('|')
        .trim()
        .to_string()
}

#[tokio::test]
async fn to_char_datetime_templates() {
    let ctx = context();
    let cases = [
        (
            "to_char(TIMESTAMP '2024-03-05 14:07:09', 'YYYY-MM-DD HH24:MI:SS')",
            "2024-03-05 14:07:09",
        ),
        ("to_char(DATE '2024-03-05', 'YYYYMMDD')", "20240305"),
        (
            "to_char(TIMESTAMP '2024-03-05 14:07:09', 'HH12:MI AM')",
            "02:07 PM",
        ),
        (
            "to_char(DATE '2024-03-05', 'Month DD, YYYY') || '|'",
            "March     05, 2024|",
        ),
        (
            "to_char(DATE '2024-03-05', 'FMMonth FMDD, YYYY')",
            "March 5, 2024",
        ),
        (
            "to_char(DATE '2024-03-05', 'Dy Mon DDth \"of\" YYYY Q')",
            "Tue Mar 05th of 2024 1",
        ),
        (
            "to_char(DATE '2024-03-05', 'D ID DDD WW IW')",
            "3 2 065 10 10",
        ),
        (
            "to_char(TIMESTAMP '2024-03-05 14:07:09.123456', 'SS.MS US')",
            "09.123 123456",
        ),
        (
            "TO_CHAR(arrow_cast('2024-03-05T23:30:00Z', 'Timestamp(Microsecond, Some(\"UTC\"))'), 'DD HH24:MI TZ')",
            "05 23:30 UTC",
        ),
        (
            "to_char(arrow_cast(TIMESTAMP '2024-03-05 14:07:09', 'Timestamp(Second, None)'), 'HH24:MI:SS')",
            "14:07:09",
        ),
        ("to_char(TIME '14:07:09', 'HH12:MI:SS pm')", "02:07:09 pm"),
        ("to_char('2024-03-05 14:07:09', 'DD.MM.YYYY')", "05.03.2024"),
    ];
    for (expr, expected) in cases {
        let sql = format!("SELECT {expr} AS v");
        assert_eq!(single_value(&ctx, &sql).await, expected, "{sql}");
    }
}

#[tokio::test]
async fn to_char_columns_nulls_and_errors() {
    let ctx = context_with_table().await;
    check(
        &ctx,
        "SELECT x, to_char(d, 'FMDD Mon YYYY') AS day, \
                to_char(d, CASE WHEN x = 1 THEN 'YYYY' ELSE 'MM' END) AS per_row \
         FROM t WHERE g = 'a' ORDER BY x",
        &[
            "+---+-------------+---------+",
            "| x | day         | per_row |",
            "+---+-------------+---------+",
            "| 1 | 31 Jan 2020 | 2020    |",
            "| 2 | 29 Feb 2020 | 02      |",
            "| 3 |             |         |",
            "| 4 | 3 Jan 2021  | 01      |",
            "+---+-------------+---------+",
        ],
    )
    .await;
    check(
        &ctx,
        "SELECT to_char(CAST(NULL AS DATE), 'YYYY') AS a, \
                to_char(DATE '2024-03-05', NULL) AS b, \
                to_char(DATE '2024-03-05', '') AS c, \
                arrow_typeof(to_char(DATE '2024-03-05', 'YYYY')) AS t",
        &[
            "+---+---+---+------+",
            "| a | b | c | t    |",
            "+---+---+---+------+",
            "|   |   |   | Utf8 |",
            "+---+---+---+------+",
        ],
    )
    .await;
    let err = query(&ctx, "SELECT to_char(1234.5, '9999.99')")
        .await
        .unwrap_err();
    assert!(
        matches!(err.find_root(), DataFusionError::NotImplemented(m)
            if m == "to_char with a numeric argument"),
        "{err:?}"
    );
    check_err(
        &ctx,
        "SELECT to_char(TIME '10:00:00', 'YYYY')",
        "template pattern \"YYYY\" needs a date",
    )
    .await;
}

#[tokio::test]
async fn to_date_and_to_timestamp_with_templates() {
    let ctx = context();
    check(
        &ctx,
        "SELECT to_date('2024-03-05', 'YYYY-MM-DD') AS a, \
                to_date('05/03/2024', 'DD/MM/YYYY') AS b, \
                to_date('Mar 5 2024', 'Mon DD YYYY') AS c, \
                to_date('5/3/2024', 'DD/MM/YYYY') AS d, \
                to_date('20240305', 'YYYYMMDD') AS e",
        &[
            "+------------+------------+------------+------------+------------+",
            "| a          | b          | c          | d          | e          |",
            "+------------+------------+------------+------------+------------+",
            "| 2024-03-05 | 2024-03-05 | 2024-03-05 | 2024-03-05 | 2024-03-05 |",
            "+------------+------------+------------+------------+------------+",
        ],
    )
    .await;
    check(
        &ctx,
        "SELECT to_timestamp('2024-03-05 14:07:09', 'YYYY-MM-DD HH24:MI:SS') AS a, \
                to_timestamp('05.03.2024 02:07:09.5 PM', 'DD.MM.YYYY HH12:MI:SS.MS AM') AS b, \
                to_timestamp(0) AS epoch, \
                to_date('2024-03-05', '%Y-%m-%d') AS chrono",
        &[
            "+---------------------+-------------------------+---------------------+------------+",
            "| a                   | b                       | epoch               | chrono     |",
            "+---------------------+-------------------------+---------------------+------------+",
            "| 2024-03-05T14:07:09 | 2024-03-05T14:07:09.500 | 1970-01-01T00:00:00 | 2024-03-05 |",
            "+---------------------+-------------------------+---------------------+------------+",
        ],
    )
    .await;
    // With the session time zone BasaltDB sets, TO_TIMESTAMP gives a TIMESTAMPTZ.
    let mut config = datafusion::prelude::SessionConfig::new();
    config.options_mut().execution.time_zone = Some("+00:00".into());
    let utc = SessionContext::new_with_config(config);
    register(&utc);
    let out = batches(
        &utc,
        "SELECT to_timestamp('2024-03-05 14:07:09', 'YYYY-MM-DD HH24:MI:SS') AS t",
    )
    .await
    .unwrap();
    assert!(
        matches!(
            out[0].schema().field(0).data_type(),
            DataType::Timestamp(_, Some(_))
        ),
        "{:?}",
        out[0].schema()
    );
    check(
        &utc,
        "SELECT to_timestamp('2024-03-05 14:07:09', 'YYYY-MM-DD HH24:MI:SS') AS t",
        &[
            "+----------------------+",
            "| t                    |",
            "+----------------------+",
            "| 2024-03-05T14:07:09Z |",
            "+----------------------+",
        ],
    )
    .await;
}

#[tokio::test]
async fn to_date_template_errors() {
    let ctx = context_with_table().await;
    check_err(
        &ctx,
        "SELECT to_date('2024 1', 'YYYY Q')",
        "to_date: template pattern \"Q\" is not supported",
    )
    .await;
    check_err(
        &ctx,
        "SELECT to_timestamp('2459000', 'J')",
        "to_timestamp: template pattern \"J\" is not supported",
    )
    .await;
    check_err(
        &ctx,
        "SELECT to_date(s, s) FROM t",
        "to_date: the format must be a string literal",
    )
    .await;
    check_err(
        &ctx,
        "SELECT to_timestamp('02:07', 'HH12:MI')",
        "template pattern \"HH12\" without AM or PM is not supported",
    )
    .await;
}

#[test]
fn template_rewrites_are_idempotent() {
    // View text is stored rewritten and rewritten again when the view is read.
    let sql = "SELECT to_date(s, 'YYYY-MM-DD') AS a, to_timestamp(s, 'DD Mon YYYY HH24:MI') AS b, \
                      to_char(d, 'YYYY') AS c FROM t";
    let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .unwrap()
        .remove(0);
    rewrite(&mut statement).unwrap();
    let once = statement.to_string();
    assert!(once.contains("to_date(s, '%Y-%m-%d')"), "{once}");
    assert!(once.contains("to_timestamp(s, '%d %b %Y %H:%M')"), "{once}");
    assert!(once.contains("basalt_to_char(d, 'YYYY')"), "{once}");
    let mut again = Parser::parse_sql(&PostgreSqlDialect {}, &once)
        .unwrap()
        .remove(0);
    rewrite(&mut again).unwrap();
    assert_eq!(again.to_string(), once);
}

// ---------------------------------------------------------------------------------------------
// Strings
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn string_functions() {
    let ctx = context();
    check(
        &ctx,
        "SELECT split_part('abc$def$ghi', '$', 2) AS p2, \
                split_part('abc$def$ghi', '$', 4) AS p4, \
                split_part('abc$def$ghi', '#', 1) AS nodelim, \
                len('héllo') AS len, LEN('') AS empty, \
                charindex('dog', 'fox dog dog') AS found, charindex('cat', 'fox dog') AS absent, \
                left('redshift', 3) AS l, right('redshift', 5) AS r, btrim('  xy  ') AS b",
        &[
            "+-----+----+-------------+-----+-------+-------+--------+-----+-------+----+",
            "| p2  | p4 | nodelim     | len | empty | found | absent | l   | r     | b  |",
            "+-----+----+-------------+-----+-------+-------+--------+-----+-------+----+",
            "| def |    | abc$def$ghi | 5   | 0     | 5     | 0      | red | shift | xy |",
            "+-----+----+-------------+-----+-------+-------+--------+-----+-------+----+",
        ],
    )
    .await;
    check(
        &ctx,
        "SELECT len(NULL) AS l, charindex(NULL, 'x') AS c, split_part(NULL, ',', 1) AS s",
        &[
            "+---+---+---+",
            "| l | c | s |",
            "+---+---+---+",
            "|   |   |   |",
            "+---+---+---+",
        ],
    )
    .await;
    check_err(&ctx, "SELECT charindex('a')", "CHARINDEX takes 2 arguments").await;
    // DataFusion's split_part: a negative position counts from the end (Redshift rejects it),
    // zero is an error in both.
    check(
        &ctx,
        "SELECT split_part('a,b,c', ',', -1) AS last",
        &["+------+", "| last |", "+------+", "| c    |", "+------+"],
    )
    .await;
    check_err(&ctx, "SELECT split_part('a,b,c', ',', 0)", "zero").await;
}

#[tokio::test]
async fn strtol_values_and_errors() {
    let ctx = context();
    check(
        &ctx,
        "SELECT strtol('0xf', 16) AS hex, strtol('abcd1234', 16) AS big, strtol('110', 2) AS bin, \
                strtol(' -17', 10) AS neg, strtol('z', 36) AS b36, strtol(NULL, 10) AS n",
        &[
            "+-----+------------+-----+-----+-----+---+",
            "| hex | big        | bin | neg | b36 | n |",
            "+-----+------------+-----+-----+-----+---+",
            "| 15  | 2882343476 | 6   | -17 | 35  |   |",
            "+-----+------------+-----+-----+-----+---+",
        ],
    )
    .await;
    check_err(
        &ctx,
        "SELECT strtol('12', 1)",
        "STRTOL base must be between 2 and 36",
    )
    .await;
    check_err(
        &ctx,
        "SELECT strtol('ffffffffffffffffff', 16)",
        "out of range for type BIGINT",
    )
    .await;
    check_err(
        &ctx,
        "SELECT strtol(12, 10)",
        "STRTOL expects a string number",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn json_extract_path_text_values() {
    let ctx = context();
    check(
        &ctx,
        r#"SELECT json_extract_path_text('{"f2":{"f3":1},"f4":{"f5":99,"f6":"star"}}', 'f4', 'f6') AS star,
                  json_extract_path_text('{"f2":{"f3":1},"f4":{"f5":99,"f6":"star"}}', 'f4') AS obj,
                  json_extract_path_text('{"a":[10,{"b":"x\ty"}]}', 'a', '1', 'b') AS arr,
                  json_extract_path_text('{"a":[10, 2.50]}', 'a', '1') AS num,
                  json_extract_path_text('{"a":true}', 'a') AS bool"#,
        &[
            "+------+-----------------------+-----+------+------+",
            "| star | obj                   | arr | num  | bool |",
            "+------+-----------------------+-----+------+------+",
            "| star | {\"f5\":99,\"f6\":\"star\"} | x\ty | 2.50 | true |",
            "+------+-----------------------+-----+------+------+",
        ],
    )
    .await;
    check(
        &ctx,
        r#"SELECT json_extract_path_text('{"a":1}', 'b') AS missing,
                  json_extract_path_text('{"a":null}', 'a') AS json_null,
                  json_extract_path_text('{"a":[1]}', 'a', '5') AS out_of_range,
                  json_extract_path_text(NULL, 'a') AS null_doc,
                  json_extract_path_text('{"a":1', 'a', true) AS invalid"#,
        &[
            "+---------+-----------+--------------+----------+---------+",
            "| missing | json_null | out_of_range | null_doc | invalid |",
            "+---------+-----------+--------------+----------+---------+",
            "|         |           |              |          |         |",
            "+---------+-----------+--------------+----------+---------+",
        ],
    )
    .await;
    check_err(
        &ctx,
        r#"SELECT json_extract_path_text('{"f2":{"f3":1},"f4":{"f5":99,"f6":"star"}', 'f4', 'f6')"#,
        "JSON_EXTRACT_PATH_TEXT: invalid JSON string",
    )
    .await;
    check_err(
        &ctx,
        r#"SELECT json_extract_path_text('{"a":1}', 'a', false, 'b')"#,
        "JSON_EXTRACT_PATH_TEXT expects a string path element",
    )
    .await;
    check_err(
        &ctx,
        r#"SELECT json_extract_path_text('{"a":1}')"#,
        "JSON_EXTRACT_PATH_TEXT called with 1 argument(s)",
    )
    .await;
}

#[tokio::test]
async fn json_array_functions() {
    let ctx = context();
    check(
        &ctx,
        r#"SELECT json_extract_array_element_text('[111,112,113]', 2) AS e2,
                  json_extract_array_element_text('[111,"x"]', 1) AS e1,
                  json_extract_array_element_text('[1]', -1) AS neg,
                  json_array_length('[11,12,13,{"f1":21,"f2":[25,26]},14]') AS len,
                  json_array_length('{"a":1}', true) AS not_array,
                  is_valid_json('{"a":[1,2]}') AS valid,
                  is_valid_json('{"a":') AS invalid,
                  is_valid_json_array('[1]') AS arr,
                  is_valid_json_array('{}') AS obj"#,
        &[
            "+-----+----+-----+-----+-----------+-------+---------+------+-------+",
            "| e2  | e1 | neg | len | not_array | valid | invalid | arr  | obj   |",
            "+-----+----+-----+-----+-----------+-------+---------+------+-------+",
            "| 113 | x  |     | 5   |           | true  | false   | true | false |",
            "+-----+----+-----+-----+-----------+-------+---------+------+-------+",
        ],
    )
    .await;
    check_err(
        &ctx,
        "SELECT json_array_length('{\"a\":1}')",
        "JSON_ARRAY_LENGTH: input is not a JSON array",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// SELECT TOP
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn select_top() {
    let ctx = context_with_table().await;
    check(
        &ctx,
        "SELECT TOP 2 x FROM t ORDER BY x DESC NULLS LAST",
        &["+----+", "| x  |", "+----+", "| 10 |", "| 4  |", "+----+"],
    )
    .await;
    check(
        &ctx,
        "SELECT count(*) AS n FROM (SELECT TOP 3 x FROM t ORDER BY x) AS sub \
         WHERE x IN (SELECT TOP 1 x FROM t ORDER BY x)",
        &["+---+", "| n |", "+---+", "| 1 |", "+---+"],
    )
    .await;
    check(
        &ctx,
        "SELECT TOP 1 g FROM t WHERE g = 'a' UNION ALL SELECT TOP 1 g FROM t WHERE g = 'b' ORDER BY g",
        &["+---+", "| g |", "+---+", "| a |", "| b |", "+---+"],
    )
    .await;
    check_err(
        &ctx,
        "SELECT TOP 1 x FROM t LIMIT 2",
        "SELECT TOP cannot be combined with LIMIT",
    )
    .await;
}

#[tokio::test]
async fn time_zone_aware_inputs() {
    let ctx = context();
    check(
        &ctx,
        "SELECT convert_timezone('America/New_York', arrow_cast('2020-01-15T12:00:00Z', 'Timestamp(Microsecond, Some(\"UTC\"))')) AS ny, \
                dateadd(hour, 1, arrow_cast('2020-01-15T12:00:00Z', 'Timestamp(Microsecond, Some(\"UTC\"))')) AS plus, \
                date_trunc(week, DATE '2020-01-08') AS wk, \
                datediff(day, DATE '2020-01-01', TIMESTAMP '2020-01-03 05:00:00') AS mixed",
        &[
            "+---------------------+----------------------+---------------------+-------+",
            "| ny                  | plus                 | wk                  | mixed |",
            "+---------------------+----------------------+---------------------+-------+",
            "| 2020-01-15T07:00:00 | 2020-01-15T13:00:00Z | 2020-01-06T00:00:00 | 2     |",
            "+---------------------+----------------------+---------------------+-------+",
        ],
    )
    .await;
}

#[tokio::test]
async fn every_datepart_spelling_plans_as_identifier() {
    let ctx = context();
    let names = [
        "millennium",
        "millennia",
        "mil",
        "mils",
        "century",
        "centuries",
        "c",
        "cent",
        "cents",
        "decade",
        "decades",
        "dec",
        "decs",
        "year",
        "years",
        "y",
        "yr",
        "yrs",
        "quarter",
        "quarters",
        "qtr",
        "qtrs",
        "month",
        "months",
        "mon",
        "mons",
        "week",
        "weeks",
        "w",
        "day",
        "days",
        "d",
        "hour",
        "hours",
        "h",
        "hr",
        "hrs",
        "minute",
        "minutes",
        "m",
        "min",
        "mins",
        "second",
        "seconds",
        "s",
        "sec",
        "secs",
        "millisecond",
        "milliseconds",
        "ms",
        "msec",
        "msecs",
        "msecond",
        "mseconds",
        "millisec",
        "millisecs",
        "millisecon",
        "microsecond",
        "microseconds",
        "microsec",
        "microsecs",
        "usecond",
        "useconds",
        "us",
        "usec",
        "usecs",
    ];
    for name in names {
        let sql = format!(
            "SELECT datediff({name}, TIMESTAMP '2020-01-01 00:00:00', \
                    dateadd({name}, 2, TIMESTAMP '2020-01-01 00:00:00')) AS n"
        );
        let out = query(&ctx, &sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert!(out.contains("| 2 |"), "{sql}\n{out}");
    }
    for name in [
        "dow", "doy", "epoch", "year", "qtr", "mon", "w", "d", "h", "m", "s", "ms", "us",
    ] {
        let sql = format!(
            "SELECT date_part({name}, TIMESTAMP '2020-01-01 00:00:00') AS p, \
                    extract({name} FROM TIMESTAMP '2020-01-01 00:00:00') AS e"
        );
        query(&ctx, &sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    for name in ["year", "qtr", "mon", "w", "d", "h", "m", "s", "ms", "us"] {
        let sql = format!("SELECT date_trunc({name}, TIMESTAMP '2020-01-01 00:00:00') AS t");
        query(&ctx, &sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    check_err(
        &ctx,
        "SELECT date_trunc(decade, TIMESTAMP '2020-01-01 00:00:00')",
        "datepart \"decade\" (decade) is not supported for DATE_TRUNC",
    )
    .await;
}
