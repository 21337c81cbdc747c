//! `COPY ... TO STDOUT`: result rows as CopyData payloads in Postgres' text, CSV or binary COPY
//! format, one payload per row as Postgres sends them (psycopg's `Copy.rows()` parses each
//! message as one row).
//!
//! Values are rendered by the functions that render DataRow values ([`write_text`],
//! [`write_value`]), so COPY prints exactly what a SELECT returns in text format; this module
//! only adds COPY's escaping and quoting (Postgres' `CopyAttributeOutText` and
//! `CopyAttributeOutCSV` in `copyto.c`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use basalt_node::{CopyFormat, NodeError};
use bytes::{BufMut, Bytes, BytesMut};
use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::execution::SendableRecordBatchStream;
use futures::stream::BoxStream;
use futures::{StreamExt, stream};
use pgwire::api::results::FieldFormat;
use pgwire::messages::copy::CopyOutResponse;

use crate::types::{PgColumn, encode_rows, pg_column, write_text, write_value};

/// The binary COPY signature, flags (none) and header extension length (0).
const BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The binary COPY trailer: a tuple with -1 fields.
const BINARY_TRAILER: &[u8] = &[0xff, 0xff];

/// One CopyData payload.
pub(crate) struct CopyChunk {
    pub data: Bytes,
    /// A data row (counted in the `COPY n` tag), not the header line or the binary trailer.
    pub is_row: bool,
}

/// A COPY TO STDOUT ready to send: the CopyOutResponse, then every payload of `data`.
pub(crate) struct CopyOut {
    pub response: CopyOutResponse,
    pub data: BoxStream<'static, Result<CopyChunk, NodeError>>,
}

/// Encode a result stream for COPY TO STDOUT; rows are encoded as the stream yields them.
pub(crate) fn copy_out(
    schema: &Schema,
    batches: SendableRecordBatchStream,
    format: CopyFormat,
) -> CopyOut {
    let columns: Vec<PgColumn> = schema.fields().iter().map(|f| pg_column(f)).collect();
    let binary = matches!(format, CopyFormat::Binary);
    let column_format = i16::from(binary);
    let response = CopyOutResponse::new(
        column_format as i8,
        columns.len() as i16,
        vec![column_format; columns.len()],
    );
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let header = header_line(&names, &format).map(|data| CopyChunk {
        data: data.freeze(),
        is_row: false,
    });
    // Binary: the signature goes with the first row, as Postgres sends it (psycopg expects
    // it there), or with the trailer when there are no rows.
    let signature_pending = Arc::new(AtomicBool::new(binary));
    let mut encoder = RowEncoder {
        columns,
        format,
        value: BytesMut::new(),
        signature_pending: signature_pending.clone(),
    };
    let rows = encode_rows(batches, move |arrays, row| {
        let mut out = BytesMut::with_capacity(64);
        encoder.row(arrays, row, &mut out)?;
        Ok(CopyChunk {
            data: out.freeze(),
            is_row: true,
        })
    });
    let trailer = stream::iter(binary.then_some(())).map(move |()| {
        let mut data = BytesMut::new();
        if signature_pending.swap(false, Ordering::Relaxed) {
            data.put_slice(BINARY_HEADER);
        }
        data.put_slice(BINARY_TRAILER);
        Ok(CopyChunk {
            data: data.freeze(),
            is_row: false,
        })
    });
    let data = stream::iter(header.map(Ok))
        .chain(rows)
        .chain(trailer)
        .boxed();
    CopyOut { response, data }
}

/// The HEADER line: column names, escaped or quoted like values.
fn header_line(names: &[&str], format: &CopyFormat) -> Option<BytesMut> {
    let mut out = BytesMut::new();
    match format {
        CopyFormat::Text {
            delimiter,
            header: true,
            ..
        } => {
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    out.put_u8(*delimiter);
                }
                text_field(name.as_bytes(), *delimiter, &mut out);
            }
        }
        CopyFormat::Csv {
            header: true,
            delimiter,
            ..
        } => {
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    out.put_u8(*delimiter);
                }
                csv_field(name.as_bytes(), false, names.len() == 1, format, &mut out);
            }
        }
        _ => return None,
    }
    out.put_u8(b'\n');
    Some(out)
}

struct RowEncoder {
    columns: Vec<PgColumn>,
    format: CopyFormat,
    /// Scratch space for one value's text.
    value: BytesMut,
    signature_pending: Arc<AtomicBool>,
}

impl RowEncoder {
    /// One row: its fields, then a newline (text, CSV) or a binary tuple.
    fn row(
        &mut self,
        arrays: &[ArrayRef],
        row: usize,
        out: &mut BytesMut,
    ) -> Result<(), NodeError> {
        let RowEncoder {
            columns,
            format,
            value,
            signature_pending,
        } = self;
        let format = &*format;
        let (delimiter, null, force_quote) = match format {
            CopyFormat::Binary => {
                if signature_pending.swap(false, Ordering::Relaxed) {
                    out.put_slice(BINARY_HEADER);
                }
                out.put_i16(arrays.len() as i16);
                for (array, col) in arrays.iter().zip(columns.iter()) {
                    write_value(array.as_ref(), row, col, FieldFormat::Binary, out)?;
                }
                return Ok(());
            }
            CopyFormat::Text {
                delimiter, null, ..
            } => (*delimiter, null.as_bytes(), None),
            CopyFormat::Csv {
                delimiter,
                null,
                force_quote,
                ..
            } => (*delimiter, null.as_bytes(), Some(force_quote)),
        };
        for (i, (array, col)) in arrays.iter().zip(columns.iter()).enumerate() {
            if i > 0 {
                out.put_u8(delimiter);
            }
            if array.data_type() == &DataType::Null || array.is_null(row) {
                out.put_slice(null);
                continue;
            }
            value.clear();
            write_text(array.as_ref(), row, col, value)?;
            match force_quote {
                Some(force) => {
                    let force = force.get(i).copied().unwrap_or(false);
                    csv_field(value, force, arrays.len() == 1, format, out);
                }
                None => text_field(value, delimiter, out),
            }
        }
        out.put_u8(b'\n');
        Ok(())
    }
}

/// A value in text format: backslash before a backslash or the delimiter, `\n`-style escapes
/// for the control characters that have one (Postgres' `CopyAttributeOutText`).
fn text_field(value: &[u8], delimiter: u8, out: &mut BytesMut) {
    for &b in value {
        let escaped = match b {
            b'\x08' => Some(b'b'),
            b'\x0c' => Some(b'f'),
            b'\n' => Some(b'n'),
            b'\r' => Some(b'r'),
            b'\t' => Some(b't'),
            b'\x0b' => Some(b'v'),
            b'\\' => Some(b'\\'),
            _ if b == delimiter => Some(b),
            _ => None,
        };
        match escaped {
            Some(e) => {
                out.put_u8(b'\\');
                out.put_u8(e);
            }
            None => out.put_u8(b),
        }
    }
}

/// A value in CSV: quoted when forced, when it equals the NULL string, when it contains the
/// delimiter, the quote character, CR or LF, or when it is `\.` alone on a line; inside
/// quotes, the escape character precedes each quote and escape character (Postgres'
/// `CopyAttributeOutCSV`).
fn csv_field(
    value: &[u8],
    force: bool,
    single_column: bool,
    format: &CopyFormat,
    out: &mut BytesMut,
) {
    let CopyFormat::Csv {
        delimiter,
        quote,
        escape,
        null,
        ..
    } = format
    else {
        return;
    };
    let quoted = force
        || value == null.as_bytes()
        || (single_column && value == b"\\.")
        || value
            .iter()
            .any(|b| b == delimiter || b == quote || *b == b'\n' || *b == b'\r');
    if !quoted {
        out.put_slice(value);
        return;
    }
    out.put_u8(*quote);
    for b in value {
        if b == quote || b == escape {
            out.put_u8(*escape);
        }
        out.put_u8(*b);
    }
    out.put_u8(*quote);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(force_quote: bool, single: bool, value: &str, escape: u8) -> String {
        let format = CopyFormat::Csv {
            delimiter: b',',
            quote: b'"',
            escape,
            null: String::new(),
            header: false,
            force_quote: vec![],
        };
        let mut out = BytesMut::new();
        csv_field(value.as_bytes(), force_quote, single, &format, &mut out);
        String::from_utf8(out.to_vec()).expect("utf8")
    }

    #[test]
    fn text_escapes_like_postgres() {
        let mut out = BytesMut::new();
        text_field(
            "a\tb\n\r\\|\u{8}\u{c}\u{b}\u{1}é".as_bytes(),
            b'|',
            &mut out,
        );
        assert_eq!(&out[..], "a\\tb\\n\\r\\\\\\|\\b\\f\\v\u{1}é".as_bytes());
    }

    #[test]
    fn csv_quotes_like_postgres() {
        assert_eq!(csv(false, false, "plain", b'"'), "plain");
        // Equal to the NULL string (empty), so quoted to stay distinct from NULL.
        assert_eq!(csv(false, false, "", b'"'), "\"\"");
        assert_eq!(csv(false, false, "a,b", b'"'), "\"a,b\"");
        assert_eq!(csv(false, false, "say \"hi\"", b'"'), "\"say \"\"hi\"\"\"");
        assert_eq!(csv(false, false, "cr\r", b'"'), "\"cr\r\"");
        assert_eq!(csv(true, false, "1", b'"'), "\"1\"");
        // `\.` is only ambiguous alone on a line.
        assert_eq!(csv(false, true, "\\.", b'"'), "\"\\.\"");
        assert_eq!(csv(false, false, "\\.", b'"'), "\\.");
        // With ESCAPE, the escape character precedes quotes and itself, inside quotes only.
        assert_eq!(csv(false, false, "a\\\"b", b'\\'), "\"a\\\\\\\"b\"");
        assert_eq!(csv(false, false, "a\\b", b'\\'), "a\\b");
    }
}
