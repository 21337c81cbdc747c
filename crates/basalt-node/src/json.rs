//! COPY's JSON format: a file holds JSON objects one after another (newline-delimited or
//! not). `JSON 'auto'` loads each object's keys into the columns of the same name (`'auto
//! ignorecase'` ignoring case); a JSONPaths file (`{"jsonpaths": ["$.a", "$['b'][0]"]}`)
//! names, per column in order, the element to load. Strings load as they are, numbers and
//! booleans as their text, nested objects and arrays as JSON text, `null` and missing keys as
//! NULL. An object that is not valid JSON is a row error (1224).

use std::borrow::Cow;

use serde_json::Value;

use crate::NodeError;

/// How JSON objects map to columns.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum JsonSpec {
    Auto {
        ignore_case: bool,
    },
    /// One path per target column.
    Paths(Vec<JsonPath>),
}

/// One step of a JSONPath expression.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

pub(crate) type JsonPath = Vec<Step>;

/// Parse Redshift's JSONPath subset: `$` followed by `.name`, `['name']`, `["name"]` or
/// `[index]` steps.
pub(crate) fn parse_path(text: &str) -> Result<JsonPath, NodeError> {
    let bad = |why: &str| {
        NodeError::invalid(
            "22023",
            format!("COPY: invalid JSONPath expression '{text}': {why}"),
        )
    };
    let mut rest = text
        .trim()
        .strip_prefix('$')
        .ok_or_else(|| bad("it must start with $"))?;
    let mut path = vec![];
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(bad("empty name after '.'"));
            }
            path.push(Step::Key(r[..end].to_string()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']').ok_or_else(|| bad("unclosed '['"))?;
            let inner = r[..close].trim();
            let quoted = inner
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')));
            path.push(match quoted {
                Some(name) => Step::Key(name.to_string()),
                None => Step::Index(
                    inner
                        .parse()
                        .map_err(|_| bad("an index must be a number"))?,
                ),
            });
            rest = &r[close + 1..];
        } else {
            return Err(bad("expected '.' or '['"));
        }
    }
    Ok(path)
}

/// Parse a JSONPaths file.
pub(crate) fn parse_paths_file(bytes: &[u8], url: &str) -> Result<Vec<JsonPath>, NodeError> {
    #[derive(serde::Deserialize)]
    struct Paths {
        jsonpaths: Vec<String>,
    }
    let paths: Paths = serde_json::from_slice(bytes).map_err(|e| {
        NodeError::invalid(
            "22023",
            format!("COPY: the JSONPaths file {url} is not valid: {e}"),
        )
    })?;
    paths.jsonpaths.iter().map(|p| parse_path(p)).collect()
}

fn text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        other => Some(Cow::Owned(other.to_string())),
    }
}

/// The fields of one JSON value for `targets` (the target column names), or why it cannot
/// load.
pub(crate) fn fields<'v>(
    value: &'v Value,
    spec: &JsonSpec,
    targets: &[String],
) -> Result<Vec<Option<Cow<'v, str>>>, String> {
    match spec {
        JsonSpec::Auto { ignore_case } => {
            let Value::Object(map) = value else {
                return Err("JSON 'auto' needs an object at the top level".into());
            };
            Ok(targets
                .iter()
                .map(|t| {
                    let v = if *ignore_case {
                        map.iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(t))
                            .map(|(_, v)| v)
                    } else {
                        map.get(t)
                    };
                    v.and_then(text)
                })
                .collect())
        }
        JsonSpec::Paths(paths) => Ok(paths
            .iter()
            .map(|path| {
                let mut at = Some(value);
                for step in path {
                    at = match (at, step) {
                        (Some(Value::Object(m)), Step::Key(k)) => m.get(k),
                        (Some(Value::Array(a)), Step::Index(i)) => a.get(*i),
                        _ => None,
                    };
                }
                at.and_then(text)
            })
            .collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpaths_in_both_notations() {
        assert_eq!(
            parse_path("$.a.b[2]").unwrap(),
            vec![Step::Key("a".into()), Step::Key("b".into()), Step::Index(2)]
        );
        assert_eq!(
            parse_path("$['x y'][\"z\"]").unwrap(),
            vec![Step::Key("x y".into()), Step::Key("z".into())]
        );
        assert!(parse_path("a.b").is_err());
        assert!(parse_path("$[x]").is_err());
    }

    #[test]
    fn values_become_column_text() {
        let v: Value = serde_json::from_str(
            r#"{"id": 1, "Name": "a", "ok": true, "tags": [1, 2], "n": null}"#,
        )
        .unwrap();
        let targets: Vec<String> = ["id", "name", "ok", "tags", "n", "missing"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let got = fields(&v, &JsonSpec::Auto { ignore_case: true }, &targets).unwrap();
        let got: Vec<Option<&str>> = got.iter().map(|f| f.as_deref()).collect();
        assert_eq!(
            got,
            vec![
                Some("1"),
                Some("a"),
                Some("true"),
                Some("[1,2]"),
                None,
                None
            ]
        );
        // 'auto' matches keys exactly.
        let exact = fields(&v, &JsonSpec::Auto { ignore_case: false }, &targets).unwrap();
        assert!(exact[1].is_none());
        let paths = JsonSpec::Paths(vec![
            parse_path("$.tags[1]").unwrap(),
            parse_path("$.Name").unwrap(),
        ]);
        let got = fields(&v, &paths, &targets).unwrap();
        assert_eq!(got[0].as_deref(), Some("2"));
        assert_eq!(got[1].as_deref(), Some("a"));
        assert!(
            fields(
                &Value::from(3),
                &JsonSpec::Auto { ignore_case: false },
                &targets
            )
            .is_err()
        );
    }
}
