use basalt_catalog::CatalogError;
use basalt_sql::SqlError;
use basalt_storage::StorageError;
use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;

/// Every error a session can return to a client. [`NodeError::sqlstate`] gives the Postgres
/// SQLSTATE; the wire layer maps it once.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Sql(#[from] SqlError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{}", df_message(.0))]
    DataFusion(#[from] DataFusionError),
    #[error("{0}")]
    Arrow(#[from] ArrowError),
    /// Object storage (COPY sources, UNLOAD targets).
    #[error(transparent)]
    ObjectStorage(#[from] basalt_io::IoError),
    /// A feature BasaltDB does not support (yet); the message names it.
    #[error("{feature} is not supported")]
    Unsupported { feature: String },
    #[error("{message}")]
    InvalidInput {
        sqlstate: &'static str,
        message: String,
    },
    #[error("current transaction is aborted, commands ignored until end of transaction block")]
    TransactionAborted,
    #[error("database \"{name}\" does not exist")]
    UnknownDatabase { name: String },
    #[error("role \"{name}\" does not exist")]
    UnknownUser { name: String },
    #[error("canceling statement due to user request")]
    Canceled,
    #[error("internal error: {message}")]
    Internal { message: String },
}

/// An error of a plan node that may run on a compute node (UNLOAD's writer). Between nodes
/// an error travels as its text alone, so the text carries the SQLSTATE in front, `[58030]
/// ...`, which [`tagged`] reads back on the leader.
#[derive(Debug)]
pub(crate) struct FragmentError(pub NodeError);

impl std::fmt::Display for FragmentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.0.sqlstate(), self.0)
    }
}

impl std::error::Error for FragmentError {}

/// The SQLSTATEs a [`FragmentError`] can bring back from another node.
const FRAGMENT_SQLSTATES: &[&str] = &[
    "08P01", "0A000", "22000", "22001", "22003", "22007", "22008", "22012", "22021", "22023",
    "22P02", "22P04", "22P05", "23502", "28000", "42501", "42703", "42804", "42P01", "53100",
    "53200", "54000", "57014", "58000", "58030", "58P01", "58P02", "XX000",
];

/// A SQLSTATE read back from another node (a rejected row's); one this build does not know
/// reads as XX000.
pub(crate) fn known_sqlstate(code: &str) -> &'static str {
    FRAGMENT_SQLSTATES
        .iter()
        .find(|c| **c == code)
        .copied()
        .unwrap_or("XX000")
}

/// The SQLSTATE and message of a [`FragmentError`]'s text.
fn tagged(text: &str) -> Option<(&'static str, &str)> {
    let rest = text.strip_prefix('[')?;
    let (code, message) = rest.split_once("] ")?;
    let code = FRAGMENT_SQLSTATES.iter().find(|c| **c == code)?;
    Some((code, message))
}

/// Whether an error is the network between nodes failing: a compute node died or was cut
/// off while the query ran.
fn lost_node(e: &DataFusionError) -> bool {
    let text = e.to_string();
    [
        "h2 protocol error",
        "transport error",
        "tcp connect error",
        "error trying to connect",
        "broken pipe",
        "Connection refused",
        "connection reset",
    ]
    .iter()
    .any(|p| text.contains(p))
}

fn df_message(e: &DataFusionError) -> String {
    if let DataFusionError::External(inner) = e.find_root() {
        if let Some(f) = inner.downcast_ref::<FragmentError>() {
            return f.0.to_string();
        }
        if let Some((_, message)) = tagged(&inner.to_string()) {
            return message.to_string();
        }
    }
    if lost_node(e)
        && !matches!(e.find_root(), DataFusionError::External(inner) if inner.is::<StorageError>())
    {
        let text = e.find_root().to_string();
        // A gRPC status prints as `code: .., message: "..", source: ..`: keep the message.
        let reason = text
            .split_once("message: \"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map_or(text.as_str(), |(m, _)| m);
        return format!("a compute node stopped answering during the query ({reason})");
    }
    match e.find_root() {
        DataFusionError::External(inner) => inner.to_string(),
        DataFusionError::ArrowError(a, _) => arrow_message(a),
        DataFusionError::Plan(m) | DataFusionError::Execution(m) => postgres_wording(m),
        DataFusionError::SQL(p, _) => p.to_string(),
        DataFusionError::SchemaError(s, _) => match s.as_ref() {
            datafusion::common::SchemaError::FieldNotFound { field, .. } => {
                format!("column \"{}\" does not exist", field.name)
            }
            other => other.to_string(),
        },
        DataFusionError::NotImplemented(m) => format!("{m} is not supported"),
        other => other.to_string(),
    }
}

/// Say what Postgres says for the planner errors users meet most.
fn postgres_wording(m: &str) -> String {
    // "table 'dev.public.t' not found"
    if let Some(rest) = m.strip_prefix("table '")
        && let Some(name) = rest.strip_suffix("' not found")
    {
        let short = name.rsplit('.').next().unwrap_or(name);
        return format!("relation \"{short}\" does not exist");
    }
    m.to_string()
}

fn arrow_message(a: &ArrowError) -> String {
    classify_arrow(a).1
}

fn arrow_sqlstate(a: &ArrowError) -> &'static str {
    classify_arrow(a).0
}

/// The Postgres SQLSTATE and wording for an Arrow compute error (casts, arithmetic).
fn classify_arrow(a: &ArrowError) -> (&'static str, String) {
    match a {
        ArrowError::DivideByZero => ("22012", "division by zero".into()),
        ArrowError::ArithmeticOverflow(m) => ("22003", m.clone()),
        ArrowError::CastError(m) => classify_cast(m),
        ArrowError::ParseError(m) => classify_cast(m),
        ArrowError::InvalidArgumentError(m) if m.contains("too large to store in a Decimal") => {
            ("22003", "numeric field overflow".into())
        }
        ArrowError::ComputeError(m) if m.contains("Overflow") || m.contains("overflow") => {
            ("22003", m.clone())
        }
        ArrowError::ComputeError(m) | ArrowError::InvalidArgumentError(m) => ("XX000", m.clone()),
        other => ("XX000", other.to_string()),
    }
}

/// Postgres's name of an Arrow type in cast errors.
fn pg_type_name(arrow: &str) -> &str {
    match arrow {
        "Int16" => "smallint",
        "Int32" => "integer",
        "Int64" => "bigint",
        "Float32" => "real",
        "Float64" => "double precision",
        "Boolean" => "boolean",
        "Date32" => "date",
        t if t.starts_with("Decimal") => "numeric",
        t if t.starts_with("Timestamp") => "timestamp",
        t if t.starts_with("Time") => "time",
        other => other,
    }
}

/// Cast and parse failures: bad syntax is 22P02 (22007 for dates and times), a value that
/// parses but does not fit is 22003 (22008 for a date/time field out of range).
pub(crate) fn classify_cast(m: &str) -> (&'static str, String) {
    // "Cannot cast string '40000' to value of Int16 type"
    if let Some(rest) = m.strip_prefix("Cannot cast string '")
        && let Some((value, ty)) = rest.rsplit_once("' to value of ")
    {
        let ty = pg_type_name(ty.trim_end_matches(" type"));
        let numeric = {
            let v = value.trim();
            let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        };
        return match ty {
            "smallint" | "integer" | "bigint" if numeric => (
                "22003",
                format!("value \"{value}\" is out of range for type {ty}"),
            ),
            "date" | "timestamp" | "time" => datetime_error(ty, value),
            _ => (
                "22P02",
                format!("invalid input syntax for type {ty}: \"{value}\""),
            ),
        };
    }
    // "Can't cast value 40000 to type Int16"
    if let Some(rest) = m.strip_prefix("Can't cast value ")
        && let Some((_, ty)) = rest.rsplit_once(" to type ")
    {
        return ("22003", format!("{} out of range", pg_type_name(ty)));
    }
    // "Error parsing timestamp from '2024-01-01 10:99': error parsing time"
    if let Some(rest) = m
        .trim_start_matches("Parser error: ")
        .strip_prefix("Error parsing timestamp from '")
        && let Some((value, _)) = rest.split_once('\'')
    {
        return datetime_error("timestamp", value);
    }
    if m.contains("overflow") || m.contains("too large") || m.contains("out of range") {
        ("22003", m.to_string())
    } else {
        ("22P02", m.to_string())
    }
}

/// A date/time string that looks like a date (and time) but does not exist is 22008;
/// anything else is bad syntax, 22007.
fn datetime_error(ty: &str, value: &str) -> (&'static str, String) {
    let shaped = {
        let mut parts = value.trim().splitn(2, [' ', 'T']);
        let date = parts.next().unwrap_or("");
        let date_ok = {
            let f: Vec<&str> = date.split('-').collect();
            f.len() == 3
                && f.iter()
                    .all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
        };
        let time_ok = parts.next().is_none_or(|t| {
            t.split([':', '.'])
                .all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
        });
        date_ok && time_ok
    };
    if shaped {
        (
            "22008",
            format!("date/time field value out of range: \"{value}\""),
        )
    } else {
        (
            "22007",
            format!("invalid input syntax for type {ty}: \"{value}\""),
        )
    }
}

fn df_sqlstate(e: &DataFusionError) -> &'static str {
    if let DataFusionError::External(inner) = e.find_root() {
        if let Some(f) = inner.downcast_ref::<FragmentError>() {
            return f.0.sqlstate();
        }
        if let Some((code, _)) = tagged(&inner.to_string()) {
            return code;
        }
    }
    if lost_node(e) {
        return "58000";
    }
    match e.find_root() {
        DataFusionError::ArrowError(a, _) => arrow_sqlstate(a),
        DataFusionError::External(inner) => {
            if let Some(s) = inner.downcast_ref::<StorageError>() {
                s.sqlstate()
            } else if let Some(n) = inner.downcast_ref::<NodeError>() {
                n.sqlstate()
            } else if let Some(a) = inner.downcast_ref::<ArrowError>() {
                arrow_sqlstate(a)
            } else {
                "XX000"
            }
        }
        DataFusionError::SQL(_, _) => "42601",
        DataFusionError::NotImplemented(_) => "0A000",
        DataFusionError::SchemaError(s, _) => {
            use datafusion::common::SchemaError;
            match s.as_ref() {
                SchemaError::FieldNotFound { .. } => "42703",
                SchemaError::AmbiguousReference { .. } => "42702",
                SchemaError::DuplicateQualifiedField { .. }
                | SchemaError::DuplicateUnqualifiedField { .. } => "42701",
            }
        }
        DataFusionError::Plan(m) => plan_sqlstate(m),
        DataFusionError::Execution(m) => {
            if m.contains("Divide by zero") || m.contains("division by zero") {
                "22012"
            } else if m.contains("more than one row") {
                "21000"
            } else if m.contains("overflow") || m.contains("Overflow") {
                "22003"
            } else if m.contains("Cannot cast") || m.contains("Can't cast") || m.contains("parse") {
                "22P02"
            } else {
                "XX000"
            }
        }
        DataFusionError::ResourcesExhausted(_) => "53200",
        _ => "XX000",
    }
}

fn plan_sqlstate(m: &str) -> &'static str {
    if (m.contains("table") || m.contains("relation"))
        && (m.contains("not found") || m.contains("does not exist"))
    {
        "42P01"
    } else if m.contains("No field named") || m.contains("column") && m.contains("not found") {
        "42703"
    } else if m.contains("Invalid function") || m.contains("No function matches") {
        "42883"
    } else if m.contains("Cannot cast") || m.contains("Can't cast") {
        "42846"
    } else if m.contains("Divide by zero") {
        "22012"
    } else if m.contains("not supported") || m.contains("Unsupported") {
        "0A000"
    } else {
        "42601"
    }
}

impl NodeError {
    /// The Postgres SQLSTATE for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            NodeError::Sql(e) => e.sqlstate(),
            NodeError::Catalog(e) => e.sqlstate(),
            NodeError::Storage(e) => e.sqlstate(),
            NodeError::DataFusion(e) => df_sqlstate(e),
            NodeError::Arrow(a) => arrow_sqlstate(a),
            NodeError::ObjectStorage(e) => e.sqlstate(),
            NodeError::Unsupported { .. } => "0A000",
            NodeError::InvalidInput { sqlstate, .. } => sqlstate,
            NodeError::TransactionAborted => "25P02",
            NodeError::UnknownDatabase { .. } => "3D000",
            NodeError::UnknownUser { .. } => "28000",
            NodeError::Canceled => "57014",
            NodeError::Internal { .. } => "XX000",
        }
    }

    /// 1-based character position in the query text, for syntax errors.
    pub fn position(&self) -> Option<usize> {
        match self {
            NodeError::Sql(e) => e.position(),
            _ => None,
        }
    }

    pub fn invalid(sqlstate: &'static str, message: impl Into<String>) -> Self {
        NodeError::InvalidInput {
            sqlstate,
            message: message.into(),
        }
    }

    pub fn unsupported(feature: impl Into<String>) -> Self {
        NodeError::Unsupported {
            feature: feature.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        NodeError::Internal {
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error from a fragment on another node arrives as text only; its SQLSTATE and
    /// message come back out of it, and untagged text stays an internal error.
    #[test]
    fn fragment_errors_keep_their_sqlstate_across_nodes() {
        let e = FragmentError(NodeError::invalid("58030", "could not write s3://b/k"));
        let remote: Box<dyn std::error::Error + Send + Sync> = e.to_string().into();
        let err = NodeError::DataFusion(DataFusionError::External(remote));
        assert_eq!(err.sqlstate(), "58030");
        assert_eq!(err.to_string(), "could not write s3://b/k");
        let plain: Box<dyn std::error::Error + Send + Sync> = "[12345] no such state".into();
        assert_eq!(
            NodeError::DataFusion(DataFusionError::External(plain)).sqlstate(),
            "XX000"
        );
    }
}
