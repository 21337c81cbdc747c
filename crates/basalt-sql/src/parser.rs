//! Splitting a query string into statements, lifting Redshift table attributes out, and
//! parsing the rest with sqlparser.

use sqlparser::ast::{ColumnOption, Statement};
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::{BasaltDialect, SqlError};

/// `[COMPOUND | INTERLEAVED] SORTKEY (cols)` or `SORTKEY AUTO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKeyStyle {
    Compound,
    Interleaved,
    Auto,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKeyAttr {
    pub style: SortKeyStyle,
    pub columns: Vec<String>,
}

/// Redshift table attributes lifted out of a CREATE TABLE statement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableAttributes {
    /// `DISTSTYLE AUTO|EVEN|KEY|ALL`, upper-cased.
    pub diststyle: Option<String>,
    pub distkey: Option<String>,
    pub sortkey: Option<SortKeyAttr>,
    pub backup: Option<bool>,
    /// `ENCODE AUTO` at table level.
    pub encode_auto: bool,
    /// `CREATE TABLE t (a, b) AS ...`: column names of a CTAS.
    pub ctas_columns: Vec<String>,
}

/// A Redshift column attribute carried by `ColumnOption::DialectSpecific`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnAttribute {
    Encode(String),
    DistKey,
    SortKey,
    Identity {
        seed: i64,
        step: i64,
        by_default: bool,
    },
}

/// Decode a column option produced by [`BasaltDialect`].
pub fn column_attribute(opt: &ColumnOption) -> Option<ColumnAttribute> {
    let ColumnOption::DialectSpecific(tokens) = opt else {
        return None;
    };
    let word = |i: usize| match tokens.get(i) {
        Some(Token::Word(w)) => Some(w.value.clone()),
        _ => None,
    };
    let number = |i: usize| match tokens.get(i) {
        Some(Token::Number(n, _)) => n.parse::<i64>().ok(),
        _ => None,
    };
    match word(0)?.as_str() {
        "ENCODE" => Some(ColumnAttribute::Encode(word(1)?)),
        "DISTKEY" => Some(ColumnAttribute::DistKey),
        "SORTKEY" => Some(ColumnAttribute::SortKey),
        "IDENTITY" => Some(ColumnAttribute::Identity {
            seed: number(1)?,
            step: number(2)?,
            by_default: word(3).is_some(),
        }),
        _ => None,
    }
}

/// One parsed statement with its source text.
#[derive(Debug, Clone)]
pub struct ParsedStatement {
    /// The statement's own text (without the trailing semicolon).
    pub sql: String,
    pub statement: Statement,
    /// Set for CREATE TABLE statements.
    pub table_attributes: Option<TableAttributes>,
    /// `ANALYZE COMPRESSION ...`: the statement is the ANALYZE of its table and columns.
    pub compression: Option<CompressionAnalysis>,
    /// `ANALYZE ... PREDICATE COLUMNS`.
    pub predicate_columns: bool,
    /// `COPY t FROM '<location>' <Redshift parameters>`: the parameters, lifted off the
    /// statement (sqlparser then sees `COPY t FROM '<location>'`).
    pub copy_parameters: Option<Vec<CopyParameter>>,
    /// `UNLOAD ('query') TO '<location>' <parameters>`: the statement is the query.
    pub unload: Option<Unload>,
}

/// Where and how an UNLOAD writes its query's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unload {
    pub location: String,
    pub parameters: Vec<CopyParameter>,
}

/// One parameter of a Redshift `COPY ... FROM '<location>'`, name upper-cased, with its
/// argument if it has one (`DELIMITER '|'`, `IGNOREHEADER 1`, `COMPUPDATE OFF`).
#[derive(Clone, PartialEq, Eq)]
pub struct CopyParameter {
    pub name: String,
    pub value: Option<String>,
}

impl CopyParameter {
    /// Parameters whose values are credentials, never shown.
    pub fn is_secret(name: &str) -> bool {
        matches!(
            name,
            "SECRET_ACCESS_KEY" | "SESSION_TOKEN" | "CREDENTIALS" | "ACCESS_KEY_ID"
        )
    }
}

impl std::fmt::Debug for CopyParameter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials never reach logs.
        let secret = CopyParameter::is_secret(&self.name);
        match (&self.value, secret) {
            (Some(_), true) => write!(f, "{} '***'", self.name),
            (Some(v), false) => write!(f, "{} '{v}'", self.name),
            (None, _) => write!(f, "{}", self.name),
        }
    }
}

/// Redshift COPY parameters: those that take no argument, and those whose argument is
/// optional (a word in `words`, or a literal).
const COPY_FLAGS: &[&str] = &[
    "CSV",
    "GZIP",
    "BZIP2",
    "ZSTD",
    "LZOP",
    "MANIFEST",
    "PARQUET",
    "ORC",
    "BLANKSASNULL",
    "EMPTYASNULL",
    "TRUNCATECOLUMNS",
    "ACCEPTANYDATE",
    "ESCAPE",
    "REMOVEQUOTES",
    "FILLRECORD",
    "TRIMBLANKS",
    "ROUNDEC",
    "EXPLICIT_IDS",
    // BasaltDB's own: load objects the load ledger says were loaded already.
    "FORCE",
    "IGNOREBLANKLINES",
    "NOLOAD",
    "IGNOREALLERRORS",
    "ENCRYPTED",
    "READRATIO",
];
const COPY_WITH_VALUE: &[&str] = &[
    "DELIMITER",
    "NULL",
    "QUOTE",
    "IGNOREHEADER",
    "MAXERROR",
    "DATEFORMAT",
    "TIMEFORMAT",
    "ACCESS_KEY_ID",
    "SECRET_ACCESS_KEY",
    "SESSION_TOKEN",
    "CREDENTIALS",
    "IAM_ROLE",
    "REGION",
    "FIXEDWIDTH",
    "ENCODING",
    "COMPROWS",
    "MASTER_SYMMETRIC_KEY",
];
/// Parameters whose argument may be absent, or a bare word.
const COPY_OPTIONAL_VALUE: &[&str] =
    &["JSON", "AVRO", "ACCEPTINVCHARS", "COMPUPDATE", "STATUPDATE"];

/// `ANALYZE COMPRESSION [t [(cols)]] [COMPROWS n]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompressionAnalysis {
    /// Rows to sample (`COMPROWS`).
    pub comprows: Option<u64>,
}

/// Parse a query string holding zero or more `;`-separated statements.
pub fn parse(sql: &str) -> Result<Vec<ParsedStatement>, SqlError> {
    let dialect = BasaltDialect;
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| SqlError::Syntax {
            position: char_position(sql, e.location.line, e.location.column),
            message: e.message,
        })?;
    let mut out = Vec::new();
    for mut stmt_tokens in split_statements(tokens) {
        if stmt_tokens.iter().all(|t| is_trivia(&t.token)) {
            continue;
        }
        let text = statement_text(sql, &stmt_tokens);
        if let Some((query, unload, redacted)) = lift_unload(&stmt_tokens)? {
            let mut inner = parse(&query)?;
            let statement = match (inner.pop(), inner.is_empty()) {
                (Some(q), true) if matches!(q.statement, Statement::Query(_)) => q.statement,
                _ => {
                    return Err(SqlError::Syntax {
                        message: "UNLOAD's query must be one SELECT".into(),
                        position: None,
                    });
                }
            };
            out.push(ParsedStatement {
                sql: redacted.unwrap_or(text),
                statement,
                table_attributes: None,
                compression: None,
                predicate_columns: false,
                copy_parameters: None,
                unload: Some(unload),
            });
            continue;
        }
        drop_approximate(&mut stmt_tokens);
        let no_schema_binding = lift_no_schema_binding(&mut stmt_tokens);
        let (compression, predicate_columns) = lift_analyze_options(&mut stmt_tokens)?;
        let (copy_parameters, redacted) = lift_copy_parameters(&mut stmt_tokens)?;
        // Credentials never reach logs or system tables (STL_QUERY shows `CREDENTIALS ''`).
        let text = redacted.unwrap_or(text);
        let table_attributes = lift_table_attributes(&mut stmt_tokens)?;
        let mut parser = Parser::new(&dialect).with_tokens_with_locations(stmt_tokens);
        let statement = parser
            .parse_statement()
            .and_then(|s| {
                // Anything left over (other than trivia) is a syntax error.
                let next = parser.peek_token();
                if next.token == Token::EOF {
                    Ok(s)
                } else {
                    Err(ParserError::ParserError(format!(
                        "Expected: end of statement, found: {} at Line: {}, Column: {}",
                        next.token, next.span.start.line, next.span.start.column
                    )))
                }
            })
            .map_err(|e| syntax_error(sql, e))?;
        let mut statement = statement;
        if no_schema_binding {
            match &mut statement {
                sqlparser::ast::Statement::CreateView(cv) => cv.with_no_schema_binding = true,
                _ => {
                    return Err(SqlError::Syntax {
                        message: "WITH NO SCHEMA BINDING applies only to CREATE VIEW".into(),
                        position: None,
                    });
                }
            }
        }
        out.push(ParsedStatement {
            sql: text,
            statement,
            table_attributes,
            compression,
            predicate_columns,
            copy_parameters,
            unload: None,
        });
    }
    Ok(out)
}

fn is_trivia(t: &Token) -> bool {
    matches!(t, Token::Whitespace(_) | Token::EOF | Token::SemiColon)
}

/// Split on top-level semicolons.
fn split_statements(tokens: Vec<TokenWithSpan>) -> Vec<Vec<TokenWithSpan>> {
    let mut out = vec![];
    let mut cur = vec![];
    let mut depth = 0i32;
    for t in tokens {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::SemiColon if depth <= 0 => {
                out.push(std::mem::take(&mut cur));
                depth = 0;
                continue;
            }
            Token::EOF => continue,
            _ => {}
        }
        cur.push(t);
    }
    out.push(cur);
    out
}

fn statement_text(sql: &str, tokens: &[TokenWithSpan]) -> String {
    let significant: Vec<_> = tokens.iter().filter(|t| !is_trivia(&t.token)).collect();
    let (Some(first), Some(last)) = (significant.first(), significant.last()) else {
        return String::new();
    };
    let start = byte_offset(sql, first.span.start.line, first.span.start.column);
    let end = byte_offset(sql, last.span.end.line, last.span.end.column);
    match (start, end) {
        (Some(s), Some(e)) if s <= e => sql[s..e].to_string(),
        _ => sql.to_string(),
    }
}

/// Byte offset of a 1-based (line, column) location, columns counted in characters.
fn byte_offset(sql: &str, line: u64, column: u64) -> Option<usize> {
    let mut cur_line = 1u64;
    let mut cur_col = 1u64;
    for (i, ch) in sql.char_indices() {
        if cur_line == line && cur_col == column {
            return Some(i);
        }
        if ch == '\n' {
            cur_line += 1;
            cur_col = 1;
        } else {
            cur_col += 1;
        }
    }
    (cur_line == line && cur_col == column).then_some(sql.len())
}

/// 1-based character position as Postgres reports it in ErrorResponse.
fn char_position(sql: &str, line: u64, column: u64) -> Option<usize> {
    let b = byte_offset(sql, line, column)?;
    Some(sql[..b].chars().count() + 1)
}

fn syntax_error(sql: &str, e: ParserError) -> SqlError {
    let msg = match e {
        ParserError::ParserError(m) | ParserError::TokenizerError(m) => m,
        ParserError::RecursionLimitExceeded => "statement is nested too deeply".to_string(),
    };
    // sqlparser appends " at Line: L, Column: C".
    let (message, position) = match msg.rfind(" at Line: ") {
        Some(idx) => {
            let loc = &msg[idx + " at Line: ".len()..];
            let mut parts = loc.split(", Column: ");
            let line = parts.next().and_then(|l| l.trim().parse::<u64>().ok());
            let col = parts.next().and_then(|c| c.trim().parse::<u64>().ok());
            let pos = match (line, col) {
                (Some(l), Some(c)) => char_position(sql, l, c),
                _ => None,
            };
            (msg[..idx].to_string(), pos)
        }
        None => (msg, None),
    };
    SqlError::Syntax { message, position }
}

/// Redshift's `APPROXIMATE COUNT(DISTINCT x)` / `APPROXIMATE PERCENTILE_DISC`: we answer
/// exactly, which is within any approximation's error bound.
fn drop_approximate(tokens: &mut [TokenWithSpan]) {
    let idx: Vec<usize> = significant_indices(tokens);
    for w in idx.windows(2) {
        if word_is(&tokens[w[0]].token, "APPROXIMATE")
            && (word_is(&tokens[w[1]].token, "COUNT")
                || word_is(&tokens[w[1]].token, "PERCENTILE_DISC"))
        {
            tokens[w[0]].token = Token::Whitespace(sqlparser::tokenizer::Whitespace::Space);
        }
    }
}

/// Redshift's `ANALYZE [VERBOSE] [t [(cols)]] [PREDICATE COLUMNS | ALL COLUMNS]`: sqlparser
/// reads the Postgres form only. VERBOSE changes nothing here. Returns ANALYZE COMPRESSION's
/// options, and whether PREDICATE COLUMNS was asked for.
fn lift_analyze_options(
    tokens: &mut [TokenWithSpan],
) -> Result<(Option<CompressionAnalysis>, bool), SqlError> {
    let idx = significant_indices(tokens);
    if idx.is_empty() || !word_is(&tokens[idx[0]].token, "ANALYZE") {
        return Ok((None, false));
    }
    let blank = |t: &mut TokenWithSpan| {
        t.token = Token::Whitespace(sqlparser::tokenizer::Whitespace::Space);
    };
    if idx.len() > 1 && word_is(&tokens[idx[1]].token, "COMPRESSION") {
        blank(&mut tokens[idx[1]]);
        let mut c = CompressionAnalysis::default();
        let n = idx.len();
        if n >= 3 && word_is(&tokens[idx[n - 2]].token, "COMPROWS") {
            let Token::Number(rows, _) = &tokens[idx[n - 1]].token else {
                return Err(SqlError::Syntax {
                    message: "COMPROWS takes a number of rows".into(),
                    position: None,
                });
            };
            c.comprows = Some(rows.parse().map_err(|_| SqlError::Syntax {
                message: format!("COMPROWS {rows} is not a row count"),
                position: None,
            })?);
            blank(&mut tokens[idx[n - 2]]);
            blank(&mut tokens[idx[n - 1]]);
        }
        return Ok((Some(c), false));
    }
    if idx.len() > 1 && word_is(&tokens[idx[1]].token, "VERBOSE") {
        blank(&mut tokens[idx[1]]);
    }
    let n = idx.len();
    let mut predicate = false;
    if n >= 3
        && (word_is(&tokens[idx[n - 2]].token, "PREDICATE")
            || word_is(&tokens[idx[n - 2]].token, "ALL"))
        && word_is(&tokens[idx[n - 1]].token, "COLUMNS")
    {
        predicate = word_is(&tokens[idx[n - 2]].token, "PREDICATE");
        blank(&mut tokens[idx[n - 2]]);
        blank(&mut tokens[idx[n - 1]]);
    }
    Ok((None, predicate))
}

/// `COPY t [(cols)] FROM '<location>' <parameters>`: take the Redshift parameters off the
/// statement. A COPY from STDIN (Postgres' form) is left as it is.
/// Also returns the statement's text with the values of its credentials blanked, if it has
/// any.
#[allow(clippy::type_complexity)]
fn lift_copy_parameters(
    tokens: &mut [TokenWithSpan],
) -> Result<(Option<Vec<CopyParameter>>, Option<String>), SqlError> {
    let idx = significant_indices(tokens);
    if idx.is_empty() || !word_is(&tokens[idx[0]].token, "COPY") {
        return Ok((None, None));
    }
    // FROM at the top level (not inside a column list), followed by a string literal.
    let mut depth = 0;
    let mut from = None;
    for (n, &i) in idx.iter().enumerate() {
        match &tokens[i].token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            t if depth == 0 && word_is(t, "FROM") => {
                from = Some(n);
                break;
            }
            _ => {}
        }
    }
    let Some(from) = from else {
        return Ok((None, None));
    };
    match idx.get(from + 1).map(|&i| &tokens[i].token) {
        Some(Token::SingleQuotedString(_)) => {}
        _ => return Ok((None, None)),
    }
    let rest = idx[from + 2..].to_vec();
    let (params, secrets) = redshift_parameters(tokens, &rest, Command::Copy)?;
    let redacted = redacted_text(tokens, &secrets);
    // sqlparser sees `COPY t [(cols)] FROM '<location>'`.
    for &i in &rest {
        tokens[i].token = Token::Whitespace(sqlparser::tokenizer::Whitespace::Space);
    }
    Ok((Some(params), redacted))
}

/// Which statement's parameters are being read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Command {
    Copy,
    Unload,
}

/// The text of a statement with the tokens at `secrets` (credential values) blanked to `''`.
fn redacted_text(tokens: &[TokenWithSpan], secrets: &[usize]) -> Option<String> {
    (!secrets.is_empty()).then(|| {
        tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if secrets.contains(&i) {
                    "''".to_string()
                } else {
                    t.token.to_string()
                }
            })
            .collect::<String>()
            .trim()
            .to_string()
    })
}

/// `UNLOAD ('select ...') TO '<location>' <parameters>`: the query's text, the location, the
/// parameters and the statement's text with credentials blanked.
#[allow(clippy::type_complexity)]
fn lift_unload(
    tokens: &[TokenWithSpan],
) -> Result<Option<(String, Unload, Option<String>)>, SqlError> {
    let idx = significant_indices(tokens);
    if idx.is_empty() || !word_is(&tokens[idx[0]].token, "UNLOAD") {
        return Ok(None);
    }
    let syntax = |message: &str| SqlError::Syntax {
        message: message.to_string(),
        position: None,
    };
    let at = |n: usize| idx.get(n).map(|&i| &tokens[i].token);
    let (Some(Token::LParen), Some(Token::SingleQuotedString(query)), Some(Token::RParen)) =
        (at(1), at(2), at(3))
    else {
        return Err(syntax(
            "UNLOAD takes its query as a string in parentheses: UNLOAD ('select ...') TO 's3://...'",
        ));
    };
    let (Some(to), Some(Token::SingleQuotedString(location))) = (at(4), at(5)) else {
        return Err(syntax(
            "UNLOAD needs TO 's3://bucket/prefix' after its query",
        ));
    };
    if !word_is(to, "TO") {
        return Err(syntax(
            "UNLOAD needs TO 's3://bucket/prefix' after its query",
        ));
    }
    let rest = idx[6..].to_vec();
    let (parameters, secrets) = redshift_parameters(tokens, &rest, Command::Unload)?;
    Ok(Some((
        query.clone(),
        Unload {
            location: location.clone(),
            parameters,
        },
        redacted_text(tokens, &secrets),
    )))
}

/// Read Redshift COPY / UNLOAD parameters from the tokens at `rest`; also returns the token
/// positions of credential values.
#[allow(clippy::type_complexity)]
fn redshift_parameters(
    tokens: &[TokenWithSpan],
    rest: &[usize],
    command: Command,
) -> Result<(Vec<CopyParameter>, Vec<usize>), SqlError> {
    let syntax = |message: String| SqlError::Syntax {
        message,
        position: None,
    };
    let literal = |t: &Token| match t {
        Token::SingleQuotedString(s) => Some(s.clone()),
        Token::Number(n, _) => Some(n.clone()),
        _ => None,
    };
    let mut params = vec![];
    let mut secrets = vec![];
    let mut k = 0;
    while k < rest.len() {
        let token = &tokens[rest[k]].token;
        k += 1;
        let name = match token {
            Token::Comma => continue,
            Token::Word(w) => w.value.to_ascii_uppercase(),
            other => return Err(syntax(format!("COPY: unexpected {other}"))),
        };
        // `[WITH] CREDENTIALS`, `FORMAT [AS] x`: keywords that only introduce the next one.
        if name == "WITH" || name == "FORMAT" {
            if k < rest.len() && word_is(&tokens[rest[k]].token, "AS") {
                k += 1;
            }
            continue;
        }
        let skip_as = |k: &mut usize| {
            if *k < rest.len() && word_is(&tokens[rest[*k]].token, "AS") {
                *k += 1;
            }
        };
        let name_str = name.as_str();
        if command == Command::Unload {
            match name_str {
                // PARTITION BY (a, b): the columns, comma-separated.
                "PARTITION" => {
                    if k < rest.len() && word_is(&tokens[rest[k]].token, "BY") {
                        k += 1;
                    }
                    if !matches!(rest.get(k).map(|&i| &tokens[i].token), Some(Token::LParen)) {
                        return Err(syntax("UNLOAD PARTITION BY needs (columns)".into()));
                    }
                    k += 1;
                    let mut cols = vec![];
                    while let Some(&i) = rest.get(k) {
                        k += 1;
                        match &tokens[i].token {
                            Token::RParen => break,
                            Token::Comma => {}
                            Token::Word(w) => cols.push(if w.quote_style.is_some() {
                                w.value.clone()
                            } else {
                                w.value.to_lowercase()
                            }),
                            other => {
                                return Err(syntax(format!(
                                    "UNLOAD PARTITION BY: unexpected {other}"
                                )));
                            }
                        }
                    }
                    params.push(CopyParameter {
                        name,
                        value: Some(cols.join(",")),
                    });
                    continue;
                }
                "MAXFILESIZE" | "ROWGROUPSIZE" => {
                    skip_as(&mut k);
                    let Some(n) = rest.get(k).and_then(|&i| literal(&tokens[i].token)) else {
                        return Err(syntax(format!("UNLOAD {name} needs a size")));
                    };
                    k += 1;
                    let unit = match rest.get(k).map(|&i| &tokens[i].token) {
                        Some(Token::Word(w))
                            if ["MB", "GB"].contains(&w.value.to_ascii_uppercase().as_str()) =>
                        {
                            k += 1;
                            w.value.to_ascii_uppercase()
                        }
                        _ => "MB".into(),
                    };
                    params.push(CopyParameter {
                        name,
                        value: Some(format!("{n} {unit}")),
                    });
                    continue;
                }
                "HEADER" | "ADDQUOTES" | "ALLOWOVERWRITE" | "CLEANPATH" | "INCLUDE" | "VERBOSE"
                | "JSON" => {
                    params.push(CopyParameter { name, value: None });
                    continue;
                }
                "PARALLEL" => {
                    let value = match rest.get(k).map(|&i| &tokens[i].token) {
                        Some(Token::Word(w))
                            if ["ON", "OFF", "TRUE", "FALSE"]
                                .contains(&w.value.to_ascii_uppercase().as_str()) =>
                        {
                            k += 1;
                            Some(w.value.to_ascii_uppercase())
                        }
                        _ => None,
                    };
                    params.push(CopyParameter { name, value });
                    continue;
                }
                "EXTENSION" | "KMS_KEY_ID" => {
                    skip_as(&mut k);
                    let Some(v) = rest.get(k).and_then(|&i| literal(&tokens[i].token)) else {
                        return Err(syntax(format!("UNLOAD {name} needs an argument")));
                    };
                    k += 1;
                    params.push(CopyParameter {
                        name,
                        value: Some(v),
                    });
                    continue;
                }
                _ => {}
            }
        }
        if COPY_FLAGS.contains(&name_str) {
            params.push(CopyParameter { name, value: None });
            continue;
        }
        if COPY_WITH_VALUE.contains(&name_str) {
            skip_as(&mut k);
            let value = rest.get(k).and_then(|&i| match &tokens[i].token {
                Token::Word(w) if name_str == "IAM_ROLE" || name_str == "ENCODING" => {
                    Some(w.value.clone())
                }
                t => literal(t),
            });
            let Some(value) = value else {
                return Err(syntax(format!("COPY {name} needs an argument")));
            };
            if CopyParameter::is_secret(&name) {
                secrets.push(rest[k]);
            }
            k += 1;
            params.push(CopyParameter {
                name,
                value: Some(value),
            });
            continue;
        }
        if COPY_OPTIONAL_VALUE.contains(&name_str) {
            skip_as(&mut k);
            let value = rest.get(k).and_then(|&i| match &tokens[i].token {
                Token::Word(w)
                    if ["ON", "OFF", "TRUE", "FALSE", "PRESET"]
                        .contains(&w.value.to_ascii_uppercase().as_str()) =>
                {
                    Some(w.value.to_ascii_uppercase())
                }
                t => literal(t),
            });
            if value.is_some() {
                k += 1;
            }
            params.push(CopyParameter { name, value });
            continue;
        }
        let what = if command == Command::Copy {
            "COPY"
        } else {
            "UNLOAD"
        };
        return Err(syntax(format!("{what} parameter {name} is not recognized")));
    }
    Ok((params, secrets))
}

/// Redshift's late-binding views end with `WITH NO SCHEMA BINDING`, which sqlparser accepts
/// only for its Redshift dialect: take it off the end of the statement and say so.
fn lift_no_schema_binding(tokens: &mut [TokenWithSpan]) -> bool {
    let idx = significant_indices(tokens);
    let n = idx.len();
    if n < 5
        || !word_is(&tokens[idx[0]].token, "CREATE")
        || !["WITH", "NO", "SCHEMA", "BINDING"]
            .iter()
            .zip(&idx[n - 4..])
            .all(|(w, &i)| word_is(&tokens[i].token, w))
    {
        return false;
    }
    for &i in &idx[n - 4..] {
        tokens[i].token = Token::Whitespace(sqlparser::tokenizer::Whitespace::Space);
    }
    true
}

fn significant_indices(tokens: &[TokenWithSpan]) -> Vec<usize> {
    tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t.token, Token::Whitespace(_)))
        .map(|(i, _)| i)
        .collect()
}

fn word_is(t: &Token, w: &str) -> bool {
    matches!(t, Token::Word(word) if word.quote_style.is_none() && word.value.eq_ignore_ascii_case(w))
}

fn word_value(t: &Token) -> Option<String> {
    match t {
        Token::Word(w) => Some(w.value.clone()),
        _ => None,
    }
}

/// Lift Redshift table attributes out of a CREATE TABLE token stream (any order, at top level
/// after the table name and before `AS`).
fn lift_table_attributes(
    tokens: &mut [TokenWithSpan],
) -> Result<Option<TableAttributes>, SqlError> {
    let idx = significant_indices(tokens);
    // CREATE [OR REPLACE] [LOCAL] [TEMP|TEMPORARY] TABLE
    let mut i = 0;
    if !idx
        .first()
        .is_some_and(|&p| word_is(&tokens[p].token, "CREATE"))
    {
        return Ok(None);
    }
    i += 1;
    while i < idx.len()
        && ["OR", "REPLACE", "LOCAL", "TEMP", "TEMPORARY"]
            .iter()
            .any(|w| word_is(&tokens[idx[i]].token, w))
    {
        i += 1;
    }
    if !(i < idx.len() && word_is(&tokens[idx[i]].token, "TABLE")) {
        return Ok(None);
    }
    i += 1;
    let mut attrs = TableAttributes::default();
    // CTAS column-name list: TABLE name ( a, b ) ... AS
    if let Some(name_end) = (i < idx.len()).then(|| i + 1) {
        let mut j = name_end;
        // skip a dotted name
        while j + 1 < idx.len() && tokens[idx[j]].token == Token::Period {
            j += 2;
        }
        if let Some((cols, next)) = paren_list(tokens, &idx, j) {
            let has_as = idx[next..].iter().any(|&p| word_is(&tokens[p].token, "AS"));
            if has_as {
                attrs.ctas_columns = cols;
                for &p in &idx[j..next] {
                    tokens[p].token = Token::Whitespace(sqlparser::tokenizer::Whitespace::Space);
                }
            }
        }
    }
    let mut depth = 0i32;
    let mut erase: Vec<usize> = vec![];
    let unexpected = |what: &str, t: Option<&TokenWithSpan>| SqlError::Syntax {
        message: format!(
            "Expected: {what}, found: {}",
            t.map(|t| t.token.to_string())
                .unwrap_or_else(|| "EOF".into())
        ),
        position: None,
    };
    while i < idx.len() {
        let tok = &tokens[idx[i]].token;
        match tok {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ => {}
        }
        if depth != 0 || !matches!(tok, Token::Word(_)) {
            i += 1;
            continue;
        }
        let at = |k: usize| idx.get(k).map(|&p| &tokens[p]);
        if word_is(tok, "AS") {
            break;
        } else if word_is(tok, "BACKUP") {
            let v = at(i + 1).ok_or_else(|| unexpected("YES or NO", None))?;
            attrs.backup = Some(if word_is(&v.token, "YES") {
                true
            } else if word_is(&v.token, "NO") {
                false
            } else {
                return Err(unexpected("YES or NO", Some(v)));
            });
            erase.extend([idx[i], idx[i + 1]]);
            i += 2;
        } else if word_is(tok, "DISTSTYLE") {
            let v = at(i + 1).ok_or_else(|| unexpected("AUTO, EVEN, KEY or ALL", None))?;
            let style = word_value(&v.token)
                .map(|s| s.to_ascii_uppercase())
                .filter(|s| ["AUTO", "EVEN", "KEY", "ALL"].contains(&s.as_str()))
                .ok_or_else(|| unexpected("AUTO, EVEN, KEY or ALL", Some(v)))?;
            attrs.diststyle = Some(style);
            erase.extend([idx[i], idx[i + 1]]);
            i += 2;
        } else if word_is(tok, "DISTKEY") {
            let (cols, next) = paren_list(tokens, &idx, i + 1)
                .ok_or_else(|| unexpected("( column )", at(i + 1)))?;
            if cols.len() != 1 {
                return Err(SqlError::Syntax {
                    message: "DISTKEY takes exactly one column".into(),
                    position: None,
                });
            }
            attrs.distkey = cols.into_iter().next();
            erase.extend(idx[i..next].iter().copied());
            i = next;
        } else if word_is(tok, "COMPOUND") || word_is(tok, "INTERLEAVED") || word_is(tok, "SORTKEY")
        {
            let mut j = i;
            let style = if word_is(tok, "SORTKEY") {
                SortKeyStyle::Compound
            } else {
                j += 1;
                if !at(j).is_some_and(|t| word_is(&t.token, "SORTKEY")) {
                    return Err(unexpected("SORTKEY", at(j)));
                }
                if word_is(tok, "INTERLEAVED") {
                    SortKeyStyle::Interleaved
                } else {
                    SortKeyStyle::Compound
                }
            };
            if at(j + 1).is_some_and(|t| word_is(&t.token, "AUTO")) {
                attrs.sortkey = Some(SortKeyAttr {
                    style: SortKeyStyle::Auto,
                    columns: vec![],
                });
                erase.extend(idx[i..j + 2].iter().copied());
                i = j + 2;
            } else {
                let (cols, next) = paren_list(tokens, &idx, j + 1)
                    .ok_or_else(|| unexpected("( column [, ...] )", at(j + 1)))?;
                attrs.sortkey = Some(SortKeyAttr {
                    style,
                    columns: cols,
                });
                erase.extend(idx[i..next].iter().copied());
                i = next;
            }
        } else if word_is(tok, "ENCODE") {
            if !at(i + 1).is_some_and(|t| word_is(&t.token, "AUTO")) {
                return Err(unexpected("AUTO", at(i + 1)));
            }
            attrs.encode_auto = true;
            erase.extend([idx[i], idx[i + 1]]);
            i += 2;
        } else {
            i += 1;
        }
    }
    for p in erase {
        tokens[p].token = Token::Whitespace(sqlparser::tokenizer::Whitespace::Space);
    }
    Ok(Some(attrs))
}

/// `( ident [, ident ...] )` starting at significant index `start`; returns the identifiers
/// (case-folded like Postgres unless quoted) and the significant index after `)`.
fn paren_list(
    tokens: &[TokenWithSpan],
    idx: &[usize],
    start: usize,
) -> Option<(Vec<String>, usize)> {
    let mut k = start;
    if tokens.get(*idx.get(k)?)?.token != Token::LParen {
        return None;
    }
    k += 1;
    let mut cols = vec![];
    loop {
        match &tokens[*idx.get(k)?].token {
            Token::Word(w) => cols.push(if w.quote_style.is_some() {
                w.value.clone()
            } else {
                w.value.to_lowercase()
            }),
            _ => return None,
        }
        k += 1;
        match &tokens[*idx.get(k)?].token {
            Token::Comma => k += 1,
            Token::RParen => return Some((cols, k + 1)),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redshift_copy_parameters_are_lifted() {
        let p = parse(
            "COPY s.t (a, b) FROM 's3://b/p/x' ACCESS_KEY_ID 'AK' SECRET_ACCESS_KEY 'SK' \
             FORMAT AS CSV QUOTE AS '%' DELIMITER ',' IGNOREHEADER 1 NULL AS 'nil' GZIP \
             MAXERROR 10 COMPUPDATE OFF ACCEPTINVCHARS REGION 'eu-west-1' IAM_ROLE default",
        )
        .unwrap();
        assert!(matches!(p[0].statement, Statement::Copy { .. }));
        let params = p[0].copy_parameters.as_ref().unwrap();
        let get = |n: &str| {
            params
                .iter()
                .find(|x| x.name == n)
                .unwrap_or_else(|| panic!("{n} in {params:?}"))
                .value
                .clone()
        };
        assert_eq!(get("QUOTE").as_deref(), Some("%"));
        assert_eq!(get("IGNOREHEADER").as_deref(), Some("1"));
        assert_eq!(get("NULL").as_deref(), Some("nil"));
        assert_eq!(get("COMPUPDATE").as_deref(), Some("OFF"));
        assert_eq!(get("ACCEPTINVCHARS"), None);
        assert_eq!(get("CSV"), None);
        assert_eq!(get("GZIP"), None);
        assert_eq!(get("IAM_ROLE").as_deref(), Some("default"));
        let shown = format!("{params:?}");
        assert!(!shown.contains("SK") && !shown.contains("'AK'"), "{shown}");
        // The statement's text (logs, STL_QUERY) has the credentials blanked.
        assert!(
            p[0].sql.starts_with(
                "COPY s.t (a, b) FROM 's3://b/p/x' ACCESS_KEY_ID '' SECRET_ACCESS_KEY ''"
            ),
            "{}",
            p[0].sql
        );
        let p2 = parse(
            "copy t from 's3://b/p' credentials 'aws_access_key_id=A;aws_secret_access_key=S'",
        )
        .unwrap();
        assert_eq!(p2[0].sql, "copy t from 's3://b/p' credentials ''");
        // Postgres' COPY FROM STDIN is sqlparser's.
        let p = parse("COPY t FROM STDIN WITH (FORMAT csv)").unwrap();
        assert!(p[0].copy_parameters.is_none());
        let e = parse("COPY t FROM 's3://b/p' BOGUS 1").unwrap_err();
        assert!(e.to_string().contains("BOGUS"), "{e}");
        let e = parse("COPY t FROM 's3://b/p' DELIMITER").unwrap_err();
        assert!(e.to_string().contains("DELIMITER"), "{e}");
    }

    #[test]
    fn redshift_analyze_forms() {
        for sql in [
            "ANALYZE",
            "ANALYZE VERBOSE",
            "ANALYZE t",
            "ANALYZE VERBOSE s.t (a, b) PREDICATE COLUMNS",
            "ANALYZE t ALL COLUMNS",
        ] {
            let p = parse(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
            assert!(
                matches!(p[0].statement, Statement::Analyze(_)),
                "{sql}: {:?}",
                p[0].statement
            );
        }
        let p = parse("ANALYZE COMPRESSION t (a) COMPROWS 5000").unwrap();
        assert_eq!(p[0].compression.as_ref().unwrap().comprows, Some(5000));
        assert!(matches!(p[0].statement, Statement::Analyze(_)));
        assert!(parse("ANALYZE t").unwrap()[0].compression.is_none());
    }

    #[test]
    fn splits_statements_and_skips_empty_ones() {
        let s = parse("select 1; ; select 2;").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].sql, "select 1");
        assert!(parse(";").unwrap().is_empty());
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn lifts_table_attributes_in_any_order() {
        let s = parse(
            "create table t (a int encode zstd distkey, b varchar(10) sortkey, c int identity(1, 2)) \
             interleaved sortkey (b, a) backup no diststyle key encode auto",
        )
        .unwrap();
        let attrs = s[0].table_attributes.clone().unwrap();
        assert_eq!(attrs.diststyle.as_deref(), Some("KEY"));
        assert_eq!(attrs.backup, Some(false));
        assert!(attrs.encode_auto);
        assert_eq!(
            attrs.sortkey,
            Some(SortKeyAttr {
                style: SortKeyStyle::Interleaved,
                columns: vec!["b".into(), "a".into()]
            })
        );
        let Statement::CreateTable(ct) = &s[0].statement else {
            panic!()
        };
        let a_attrs: Vec<_> = ct.columns[0]
            .options
            .iter()
            .filter_map(|o| column_attribute(&o.option))
            .collect();
        assert_eq!(
            a_attrs,
            vec![
                ColumnAttribute::Encode("zstd".into()),
                ColumnAttribute::DistKey
            ]
        );
        let c_attrs: Vec<_> = ct.columns[2]
            .options
            .iter()
            .filter_map(|o| column_attribute(&o.option))
            .collect();
        assert_eq!(
            c_attrs,
            vec![ColumnAttribute::Identity {
                seed: 1,
                step: 2,
                by_default: false
            }]
        );
    }

    #[test]
    fn ctas_attributes_before_as() {
        let s = parse("create table t2 distkey(a) sortkey(a) as select 1 as a").unwrap();
        let attrs = s[0].table_attributes.clone().unwrap();
        assert_eq!(attrs.distkey.as_deref(), Some("a"));
        assert!(matches!(s[0].statement, Statement::CreateTable(_)));
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse("select * fromm t").unwrap_err();
        assert_eq!(err.sqlstate(), "42601");
        // sqlparser reads `fromm` as an alias and stops at `t` (character 16).
        assert_eq!(err.position(), Some(16));
    }

    #[test]
    fn generated_by_default_identity() {
        let s = parse("create table t (id bigint generated by default as identity(0, 1), v int)")
            .unwrap();
        let Statement::CreateTable(ct) = &s[0].statement else {
            panic!()
        };
        assert!(ct.columns[0].options.iter().any(|o| matches!(
            column_attribute(&o.option),
            Some(ColumnAttribute::Identity {
                by_default: true,
                ..
            })
        )));
    }

    #[test]
    fn top_and_temp_names_parse() {
        parse("select top 5 * from #tmp").unwrap();
        parse("select approximate count(distinct a) from t").unwrap();
    }
}
