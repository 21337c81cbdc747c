//! Redshift functions and syntax rewrites.
//!
//! [`register`] adds Redshift's functions to a DataFusion session; [`rewrite`] turns
//! Redshift-only syntax in a parsed statement into SQL that DataFusion plans. Both are needed:
//! several functions are rewrites onto DataFusion built-ins.
//!
//! ## Date and time
//! * `GETDATE()` — the statement's start time truncated to whole seconds, as `TIMESTAMP`
//!   (without time zone) in the session time zone (UTC unless configured).
//! * `SYSDATE` — a bare keyword: the statement's start time with microseconds, as `TIMESTAMP`.
//!   Rewritten to the function `sysdate()`.
//! * `DATEADD(datepart, n, date|timestamp)` — adds `n` date parts, returns `TIMESTAMP`
//!   (`TIMESTAMPTZ` stays `TIMESTAMPTZ`). Month arithmetic clamps to the end of a shorter month.
//! * `DATEDIFF(datepart, start, end)` — `BIGINT` count of datepart *boundaries crossed*
//!   (`DATEDIFF(day, '2020-01-01 23:00', '2020-01-02 01:00')` = 1); weeks start on Monday.
//! * `DATE_TRUNC('part', ts)`, `DATE_PART(part, x)` / `PGDATE_PART` / `EXTRACT(part FROM x)` —
//!   DataFusion's functions; the date part may be a bare identifier and any Redshift
//!   abbreviation (`yr`, `mon`, `qtr`, `w`, `d`, `h`, `m` = minute, `s`, `ms`, `us`, `dow`...).
//!   DATE_TRUNC truncates weeks to Monday and does not support decade/century/millennium;
//!   DATE_PART returns DataFusion's types (integers, `DOUBLE` for `epoch`) rather than
//!   Redshift's `DOUBLE` throughout.
//! * `ADD_MONTHS(date|timestamp, n)` — `TIMESTAMP`; the last day of a month stays the last day.
//! * `TRUNC(date|timestamp)` — the `DATE`; `TRUNC(number [, digits])` is unchanged.
//! * `CONVERT_TIMEZONE(['source_tz',] 'target_tz', timestamp)` — reads the timestamp as
//!   wall-clock time in `source_tz` (default UTC) and returns the wall-clock `TIMESTAMP` in
//!   `target_tz`. Zones are IANA names (daylight saving aware), abbreviations such as
//!   `PST`/`EDT` (fixed offsets) or POSIX offsets (`UTC+3` is three hours *behind* UTC).
//!
//! * `TO_CHAR(date|timestamp|time, 'template')` — Postgres datetime template patterns
//!   (`YYYY-MM-DD HH24:MI:SS`, `FMMonth DDth`, `Dy`, `IW`, `"quoted text"`...); rewritten to
//!   `basalt_to_char`. Timestamps with time zone are shown in UTC. Numbers are not supported.
//! * `TO_DATE(text, 'template')`, `TO_TIMESTAMP(text, 'template')` — the template (a string
//!   literal) is translated into a chrono format for DataFusion's `to_date` / `to_timestamp`
//!   (`TO_TIMESTAMP` gives a `TIMESTAMPTZ` in the session time zone). Patterns chrono cannot
//!   parse (`Q`, `W`, `J`, `CC`, `TH`...) are planning errors; a template containing `%` is
//!   taken to be a chrono format already. `TO_TIMESTAMP(epoch)` is unchanged.
//!
//! In DATEADD, DATEDIFF, DATE_TRUNC and DATE_PART the datepart may be written as a bare
//! identifier (`dateadd(day, 1, d)`) or a string (`dateadd('day', 1, d)`); the rewrite turns an
//! identifier into a string. An unknown datepart is a planning error
//! (`invalid datepart "fortnight" for DATEADD`).
//!
//! ## Conditional
//! * `NVL(a, b, ...)` — `COALESCE` (registered as an alias of DataFusion's `coalesce`).
//! * `NVL2(expr, not_null_value, null_value)` — DataFusion's `nvl2`.
//! * `DECODE(expr, search1, result1 [, ...] [, default])` — rewritten to
//!   `CASE WHEN expr IS NOT DISTINCT FROM search1 THEN result1 ... ELSE default END`, so a NULL
//!   search matches a NULL expression. (Two-argument `decode` stays DataFusion's
//!   `decode(value, encoding)`.)
//!
//! ## Aggregates
//! * `LISTAGG([DISTINCT] expr [, delimiter]) [WITHIN GROUP (ORDER BY ...)] [OVER (PARTITION BY
//!   ...)]` — rewritten to `string_agg(expr, delimiter ORDER BY ...)`; the delimiter defaults
//!   to the empty string.
//! * `MEDIAN(x)` — DataFusion's `median` (integers are averaged as `DOUBLE`).
//! * `PERCENTILE_CONT(p) WITHIN GROUP (ORDER BY x)` — DataFusion's; also as a window function
//!   with `OVER (PARTITION BY ...)`, rewritten to `percentile_cont(x, p) OVER (...)`.
//! * `PERCENTILE_DISC(p) WITHIN GROUP (ORDER BY x)` — a UDAF: the first value whose cumulative
//!   distribution reaches `p`.
//! * `APPROXIMATE COUNT(DISTINCT x)` reaches us as `COUNT(DISTINCT x)` (exact).
//!
//! ## Strings and JSON
//! * `LEN(s)` — character length (an alias of `character_length`; CHAR values are stored
//!   without trailing blanks, so Redshift's trailing-blank rule holds).
//! * `CHARINDEX(substring, string)` — rewritten to `strpos(string, substring)`: 1-based
//!   character position, 0 when absent.
//! * `SPLIT_PART`, `LEFT`, `RIGHT`, `BTRIM` — DataFusion's. (DataFusion's `split_part` also
//!   accepts negative positions, counting from the end; Redshift rejects them.)
//! * `STRTOL(num_string, base)` — `BIGINT` parsed like C's `strtol` (base 2–36).
//! * `JSON_EXTRACT_PATH_TEXT(json, 'key1' [, 'key2' ...] [, null_if_invalid])` — the value at
//!   the path as `VARCHAR` (numeric path elements index arrays); NULL for a missing path or a
//!   JSON null; invalid JSON is an error unless `null_if_invalid` is true. Also
//!   `JSON_EXTRACT_ARRAY_ELEMENT_TEXT`, `JSON_ARRAY_LENGTH`, `IS_VALID_JSON` and
//!   `IS_VALID_JSON_ARRAY`.
//!
//! ## Syntax
//! * `SELECT TOP n ...` — moved into the query's `LIMIT n`, in nested queries too.

mod aggregates;
mod datepart;
mod datetime;
mod formatting;
mod json;
mod rewrite;
mod strings;
mod timezone;
mod util;

#[cfg(test)]
mod tests;

use datafusion::error::Result;
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;
use sqlparser::ast::Statement;

/// Redshift's scalar functions (and aliases of DataFusion's under Redshift's names).
pub fn udfs() -> Vec<ScalarUDF> {
    let mut out: Vec<ScalarUDF> = datetime::udfs()
        .into_iter()
        .chain(formatting::udfs())
        .chain(strings::udfs())
        .chain(json::udfs())
        .collect();
    // NVL takes any number of arguments in Redshift: it is COALESCE.
    out.push(ScalarUDF::clone(&datafusion::functions::core::coalesce()).with_aliases(["nvl"]));
    out.push(
        ScalarUDF::clone(&datafusion::functions::unicode::character_length()).with_aliases(["len"]),
    );
    out
}

/// Redshift's aggregate functions.
pub fn udafs() -> Vec<datafusion::logical_expr::AggregateUDF> {
    aggregates::udafs()
}

/// Register Redshift's scalar and aggregate functions on a session context.
pub fn register(ctx: &SessionContext) {
    for udf in udfs() {
        ctx.register_udf(udf);
    }
    for udaf in udafs() {
        ctx.register_udaf(udaf);
    }
}

/// Rewrite Redshift-only syntax in a parsed statement into what DataFusion plans.
pub fn rewrite(stmt: &mut Statement) -> Result<()> {
    rewrite::rewrite_statement(stmt)
}
