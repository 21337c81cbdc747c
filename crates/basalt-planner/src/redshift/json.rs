//! Redshift's JSON functions over JSON text stored in VARCHAR columns:
//! JSON_EXTRACT_PATH_TEXT, JSON_EXTRACT_ARRAY_ELEMENT_TEXT, JSON_ARRAY_LENGTH, IS_VALID_JSON
//! and IS_VALID_JSON_ARRAY.
//!
//! The whole input must be valid JSON (RFC 8259) or the function fails — unless its optional
//! last argument `null_if_invalid` is true, in which case it returns NULL. Extracted strings
//! are unescaped; numbers, booleans, objects and arrays are returned exactly as written in the
//! input; a JSON `null` or a missing path yields SQL NULL.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int32Array};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{exec_datafusion_err, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::util::{coerce_integer, coerce_string, finish, string_array, strings, to_arrays};

/// The scalar functions of this module.
pub(crate) fn udfs() -> Vec<ScalarUDF> {
    [
        JsonFunction::ExtractPathText,
        JsonFunction::ExtractArrayElementText,
        JsonFunction::ArrayLength,
        JsonFunction::IsValidJson,
        JsonFunction::IsValidJsonArray,
    ]
    .into_iter()
    .map(|kind| {
        ScalarUDF::from(JsonUdf {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        })
    })
    .collect()
}

/// Nesting deeper than this is rejected as invalid rather than risking the stack.
const MAX_DEPTH: usize = 512;

// ---------------------------------------------------------------------------------------------
// A validating scanner that reports the byte span of each value
// ---------------------------------------------------------------------------------------------

type Span = (usize, usize);

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    fn at(text: &'a str, pos: usize) -> Self {
        Self {
            bytes: text.as_bytes(),
            pos,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.skip_ws();
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// Validates one value (after optional white space) and returns its span.
    fn value(&mut self, depth: usize) -> Option<Span> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_ws();
        let start = self.pos;
        match self.peek()? {
            b'"' => self.string()?,
            b'{' => {
                self.pos += 1;
                self.skip_ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                } else {
                    loop {
                        self.skip_ws();
                        self.string()?;
                        self.expect(b':')?;
                        self.value(depth + 1)?;
                        self.skip_ws();
                        match self.peek()? {
                            b',' => self.pos += 1,
                            b'}' => {
                                self.pos += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
            }
            b'[' => {
                self.pos += 1;
                self.skip_ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                } else {
                    loop {
                        self.value(depth + 1)?;
                        self.skip_ws();
                        match self.peek()? {
                            b',' => self.pos += 1,
                            b']' => {
                                self.pos += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
            }
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            _ => self.number()?,
        }
        Some((start, self.pos))
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.pos + word.len();
        (self.bytes.get(self.pos..end)? == word).then(|| self.pos = end)
    }

    fn string(&mut self) -> Option<()> {
        if self.peek()? != b'"' {
            return None;
        }
        self.pos += 1;
        loop {
            match self.peek()? {
                b'"' => {
                    self.pos += 1;
                    return Some(());
                }
                b'\\' => {
                    self.pos += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos += 1,
                        b'u' => {
                            let hex = self.bytes.get(self.pos + 1..self.pos + 5)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.pos += 5;
                        }
                        _ => return None,
                    }
                }
                0x00..=0x1f => return None,
                _ => self.pos += 1,
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek()? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }
}

/// Validates a whole document and returns the span of its top-level value.
fn parse_document(text: &str) -> Option<Span> {
    let mut scanner = Scanner::new(text);
    let span = scanner.value(0)?;
    scanner.skip_ws();
    (scanner.pos == text.len()).then_some(span)
}

/// Spans of the elements of the (validated) array at `span`.
fn array_elements(text: &str, span: Span) -> Option<Vec<Span>> {
    if text.as_bytes().get(span.0) != Some(&b'[') {
        return None;
    }
    let mut scanner = Scanner::at(text, span.0 + 1);
    let mut elements = Vec::new();
    scanner.skip_ws();
    if scanner.peek() == Some(b']') {
        return Some(elements);
    }
    loop {
        elements.push(scanner.value(0)?);
        scanner.skip_ws();
        match scanner.peek()? {
            b',' => scanner.pos += 1,
            _ => return Some(elements),
        }
    }
}

/// Span of the value of `key` in the (validated) object at `span`; the last one wins when a
/// key is repeated.
fn object_member(text: &str, span: Span, key: &str) -> Option<Span> {
    if text.as_bytes().get(span.0) != Some(&b'{') {
        return None;
    }
    let mut scanner = Scanner::at(text, span.0 + 1);
    let mut found = None;
    scanner.skip_ws();
    if scanner.peek() == Some(b'}') {
        return None;
    }
    loop {
        scanner.skip_ws();
        let key_start = scanner.pos;
        scanner.string()?;
        let matches = json_string(&text[key_start..scanner.pos]).is_some_and(|k| k == key);
        scanner.expect(b':')?;
        let value = scanner.value(0)?;
        if matches {
            found = Some(value);
        }
        scanner.skip_ws();
        match scanner.peek()? {
            b',' => scanner.pos += 1,
            _ => return found,
        }
    }
}

/// Unescapes a JSON string literal (quotes included).
fn json_string(raw: &str) -> Option<String> {
    if raw.contains('\\') {
        serde_json::from_str::<String>(raw).ok()
    } else {
        raw.get(1..raw.len().checked_sub(1)?).map(str::to_string)
    }
}

/// The SQL text of a JSON value: strings unescaped, `null` as NULL, the rest verbatim.
fn value_text(text: &str, span: Span) -> Option<String> {
    let raw = &text[span.0..span.1];
    match raw.as_bytes().first()? {
        b'"' => json_string(raw),
        b'n' => None,
        _ => Some(raw.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// The functions
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum JsonFunction {
    ExtractPathText,
    ExtractArrayElementText,
    ArrayLength,
    IsValidJson,
    IsValidJsonArray,
}

impl JsonFunction {
    fn sql_name(self) -> &'static str {
        match self {
            JsonFunction::ExtractPathText => "JSON_EXTRACT_PATH_TEXT",
            JsonFunction::ExtractArrayElementText => "JSON_EXTRACT_ARRAY_ELEMENT_TEXT",
            JsonFunction::ArrayLength => "JSON_ARRAY_LENGTH",
            JsonFunction::IsValidJson => "IS_VALID_JSON",
            JsonFunction::IsValidJsonArray => "IS_VALID_JSON_ARRAY",
        }
    }

    fn usage(self) -> &'static str {
        match self {
            JsonFunction::ExtractPathText => {
                "JSON_EXTRACT_PATH_TEXT(json_string, path_elem [, path_elem ...] [, null_if_invalid])"
            }
            JsonFunction::ExtractArrayElementText => {
                "JSON_EXTRACT_ARRAY_ELEMENT_TEXT(json_array, pos [, null_if_invalid])"
            }
            JsonFunction::ArrayLength => "JSON_ARRAY_LENGTH(json_array [, null_if_invalid])",
            JsonFunction::IsValidJson => "IS_VALID_JSON(json_string)",
            JsonFunction::IsValidJsonArray => "IS_VALID_JSON_ARRAY(json_string)",
        }
    }
}

/// One of the JSON functions (they share validation and argument handling).
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonUdf {
    kind: JsonFunction,
    signature: Signature,
}

/// Per-row failure: invalid JSON is an error unless `null_if_invalid` is set.
fn invalid(func: &str, null_if_invalid: bool, detail: &str) -> Result<Option<String>> {
    if null_if_invalid {
        Ok(None)
    } else {
        exec_err!("{func}: {detail}")
    }
}

impl JsonUdf {
    fn name_str(&self) -> &'static str {
        self.kind.sql_name()
    }

    /// Whether the last of `arg_types` is the optional `null_if_invalid` flag.
    fn has_flag(&self, arg_types: &[DataType]) -> bool {
        let min = match self.kind {
            JsonFunction::ExtractPathText | JsonFunction::ExtractArrayElementText => 2,
            JsonFunction::ArrayLength => 1,
            JsonFunction::IsValidJson | JsonFunction::IsValidJsonArray => return false,
        };
        arg_types.len() > min && arg_types.last() == Some(&DataType::Boolean)
    }

    fn extract_path(
        &self,
        json: &str,
        path: &[Option<&str>],
        null_if_invalid: bool,
    ) -> Result<Option<String>> {
        let Some(mut span) = parse_document(json) else {
            return invalid(self.name_str(), null_if_invalid, "invalid JSON string");
        };
        for elem in path {
            let Some(elem) = elem else {
                return Ok(None);
            };
            let next = match json.as_bytes().get(span.0) {
                Some(b'{') => object_member(json, span, elem),
                Some(b'[') => elem
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .and_then(|index| array_elements(json, span)?.get(index).copied()),
                _ => None,
            };
            match next {
                Some(next) => span = next,
                None => return Ok(None),
            }
        }
        Ok(value_text(json, span))
    }

    fn array(
        &self,
        json: &str,
        null_if_invalid: bool,
    ) -> Result<std::result::Result<Vec<Span>, Option<String>>> {
        let Some(span) = parse_document(json) else {
            return invalid(self.name_str(), null_if_invalid, "invalid JSON string").map(Err);
        };
        match array_elements(json, span) {
            Some(elements) => Ok(Ok(elements)),
            None => invalid(
                self.name_str(),
                null_if_invalid,
                "input is not a JSON array",
            )
            .map(Err),
        }
    }
}

impl ScalarUDFImpl for JsonUdf {
    fn name(&self) -> &str {
        match self.kind {
            JsonFunction::ExtractPathText => "json_extract_path_text",
            JsonFunction::ExtractArrayElementText => "json_extract_array_element_text",
            JsonFunction::ArrayLength => "json_array_length",
            JsonFunction::IsValidJson => "is_valid_json",
            JsonFunction::IsValidJsonArray => "is_valid_json_array",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let func = self.name_str();
        let flag = self.has_flag(arg_types);
        let plain = arg_types.len() - usize::from(flag);
        let ok = match self.kind {
            JsonFunction::ExtractPathText => plain >= 2,
            JsonFunction::ExtractArrayElementText => plain == 2,
            JsonFunction::ArrayLength
            | JsonFunction::IsValidJson
            | JsonFunction::IsValidJsonArray => plain == 1,
        };
        if !ok {
            return plan_err!(
                "{func} called with {} argument(s); usage: {}",
                arg_types.len(),
                self.kind.usage()
            );
        }
        let mut coerced = Vec::with_capacity(arg_types.len());
        coerced.push(coerce_string(func, "JSON argument", &arg_types[0])?);
        for dt in &arg_types[1..plain] {
            coerced.push(match self.kind {
                JsonFunction::ExtractArrayElementText => coerce_integer(func, "position", dt)?,
                _ if dt.is_integer() => DataType::Utf8,
                _ => coerce_string(func, "path element", dt)?,
            });
        }
        if flag {
            coerced.push(DataType::Boolean);
        }
        Ok(coerced)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            JsonFunction::ExtractPathText | JsonFunction::ExtractArrayElementText => DataType::Utf8,
            JsonFunction::ArrayLength => DataType::Int32,
            JsonFunction::IsValidJson | JsonFunction::IsValidJsonArray => DataType::Boolean,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let func = self.name_str();
        let types: Vec<DataType> = args.args.iter().map(|a| a.data_type()).collect();
        let flag = self.has_flag(&types);
        let (arrays, all_scalar) = to_arrays(&args.args)?;
        let (arrays, flags) = if flag {
            let (rest, last) = arrays.split_at(arrays.len() - 1);
            let flags = last[0]
                .as_boolean_opt()
                .ok_or_else(|| exec_datafusion_err!("{func}: null_if_invalid must be a boolean"))?;
            (rest, Some(flags))
        } else {
            (&arrays[..], None)
        };
        let docs = strings(func, &arrays[0])?;
        let rows = docs.len();
        let null_if_invalid = |i: usize| flags.is_some_and(|f| f.is_valid(i) && f.value(i));

        let result: ArrayRef = match self.kind {
            JsonFunction::ExtractPathText => {
                let paths = arrays[1..]
                    .iter()
                    .map(|a| strings(func, a))
                    .collect::<Result<Vec<_>>>()?;
                let mut out = Vec::with_capacity(rows);
                for i in 0..rows {
                    if docs.is_null(i) {
                        out.push(None);
                        continue;
                    }
                    let path: Vec<Option<&str>> = paths
                        .iter()
                        .map(|p| p.is_valid(i).then(|| p.value(i)))
                        .collect();
                    out.push(self.extract_path(docs.value(i), &path, null_if_invalid(i))?);
                }
                string_array(out)
            }
            JsonFunction::ExtractArrayElementText => {
                let positions = arrays[1]
                    .as_primitive_opt::<Int64Type>()
                    .ok_or_else(|| exec_datafusion_err!("{func}: expected an integer position"))?;
                let mut out = Vec::with_capacity(rows);
                for i in 0..rows {
                    if docs.is_null(i) || positions.is_null(i) {
                        out.push(None);
                        continue;
                    }
                    let json = docs.value(i);
                    out.push(match self.array(json, null_if_invalid(i))? {
                        Ok(elements) => usize::try_from(positions.value(i))
                            .ok()
                            .and_then(|p| elements.get(p))
                            .and_then(|span| value_text(json, *span)),
                        Err(none) => none,
                    });
                }
                string_array(out)
            }
            JsonFunction::ArrayLength => {
                let mut out = Vec::with_capacity(rows);
                for i in 0..rows {
                    if docs.is_null(i) {
                        out.push(None);
                        continue;
                    }
                    out.push(match self.array(docs.value(i), null_if_invalid(i))? {
                        Ok(elements) => Some(
                            i32::try_from(elements.len())
                                .map_err(|_| exec_datafusion_err!("{func}: array too long"))?,
                        ),
                        Err(_) => None,
                    });
                }
                Arc::new(Int32Array::from(out))
            }
            JsonFunction::IsValidJson | JsonFunction::IsValidJsonArray => {
                let want_array = self.kind == JsonFunction::IsValidJsonArray;
                let out: BooleanArray = docs
                    .iter()
                    .map(|doc| {
                        doc.map(|doc| {
                            parse_document(doc).is_some_and(|span| {
                                !want_array || doc.as_bytes().get(span.0) == Some(&b'[')
                            })
                        })
                    })
                    .collect();
                Arc::new(out)
            }
        };
        finish(result, all_scalar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanner_validates() {
        for ok in [
            r#"{"a": [1, 2.5e3, -0.1, true, false, null, "x\"\u00e9"]}"#,
            " [ ] ",
            "{}",
            "\"s\"",
            "0",
        ] {
            assert!(parse_document(ok).is_some(), "{ok}");
        }
        for bad in [
            r#"{"a": 1,}"#,
            "[1 2]",
            "01",
            "1.",
            "{'a': 1}",
            "[\"\t\"]",
            "\"\\x\"",
            "",
            "[1] x",
            "tru",
        ] {
            assert!(parse_document(bad).is_none(), "{bad}");
        }
        let deep = "[".repeat(MAX_DEPTH + 5) + &"]".repeat(MAX_DEPTH + 5);
        assert!(parse_document(&deep).is_none());
    }

    #[test]
    fn navigation() {
        let doc =
            r#"{"f2":{"f3":1},"f4":{"f5":99,"f6":"star"},"a":[10,{"b":"c"}],"k":"v1","k":"v2"}"#;
        let root = parse_document(doc).unwrap();
        let f4 = object_member(doc, root, "f4").unwrap();
        assert_eq!(&doc[f4.0..f4.1], r#"{"f5":99,"f6":"star"}"#);
        let k = object_member(doc, root, "k").unwrap();
        assert_eq!(value_text(doc, k).as_deref(), Some("v2"));
        let a = object_member(doc, root, "a").unwrap();
        assert_eq!(array_elements(doc, a).unwrap().len(), 2);
        assert_eq!(object_member(doc, root, "nope"), None);
    }
}
