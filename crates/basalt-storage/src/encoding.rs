//! Column `ENCODE` → Parquet encoding and compression. The table of choices and why lives in
//! `docs/storage.md`.

use basalt_catalog::{Encoding, SqlType, TableMeta};
use parquet::basic::{Compression, Encoding as PqEncoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;

/// Rows per row group ("block"): each row group carries min/max/null-count zone maps. 16K
/// rows lets a 1% range of a sorted table read under 3% of its blocks (docs/benchmarks.md);
/// compression is per page, so smaller blocks cost little space.
pub const ROWS_PER_BLOCK: usize = 16 * 1024;
/// Rows per data page; page statistics give finer-grained zone maps.
pub const ROWS_PER_PAGE: usize = 8 * 1024;

fn is_integer_like(ty: &SqlType) -> bool {
    matches!(
        ty,
        SqlType::SmallInt
            | SqlType::Integer
            | SqlType::BigInt
            | SqlType::Date
            | SqlType::Timestamp
            | SqlType::TimestampTz
            | SqlType::Time
    )
}

/// Writer properties for a table's segments, one setting per column ENCODE.
pub fn writer_properties(table: &TableMeta) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_2_0)
        .set_max_row_group_row_count(Some(ROWS_PER_BLOCK))
        .set_data_page_row_count_limit(ROWS_PER_PAGE)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_created_by(format!(
            "basaltdb segment v{}",
            crate::SEGMENT_FORMAT_VERSION
        ));
    for col in &table.columns {
        let path = ColumnPath::from(col.physical_name());
        let ints = is_integer_like(&col.ty);
        let (compression, dictionary, encoding) = match col.encoding {
            Encoding::Raw => (Compression::UNCOMPRESSED, false, None),
            Encoding::Az64 if ints => (
                Compression::ZSTD(ZstdLevel::default()),
                false,
                Some(PqEncoding::DELTA_BINARY_PACKED),
            ),
            Encoding::Az64 => (Compression::ZSTD(ZstdLevel::default()), false, None),
            Encoding::Bytedict | Encoding::Text255 | Encoding::Text32k => {
                (Compression::LZ4_RAW, true, None)
            }
            Encoding::Delta
            | Encoding::Delta32k
            | Encoding::Mostly8
            | Encoding::Mostly16
            | Encoding::Mostly32
                if ints =>
            {
                (
                    Compression::LZ4_RAW,
                    false,
                    Some(PqEncoding::DELTA_BINARY_PACKED),
                )
            }
            Encoding::Delta
            | Encoding::Delta32k
            | Encoding::Mostly8
            | Encoding::Mostly16
            | Encoding::Mostly32 => (Compression::LZ4_RAW, false, None),
            // A byte compression, as Redshift's LZO is: no dictionary (one per 16k-row block
            // interns every value, and of a column of mostly distinct text it keeps them all).
            Encoding::Lzo => (Compression::LZ4_RAW, false, None),
            Encoding::Runlength => (Compression::UNCOMPRESSED, true, None),
            Encoding::Zstd => (
                Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()),
                true,
                None,
            ),
            Encoding::Auto => (Compression::ZSTD(ZstdLevel::default()), true, None),
        };
        b = b
            .set_column_compression(path.clone(), compression)
            .set_column_dictionary_enabled(path.clone(), dictionary);
        if let Some(enc) = encoding {
            b = b.set_column_encoding(path, enc);
        }
    }
    b.build()
}

/// The encodings ANALYZE COMPRESSION (and ENCODE AUTO) weigh for a column of type `ty`, the
/// first being the one preferred on a tie (Redshift's choice for the type).
pub fn candidate_encodings(ty: &SqlType) -> &'static [Encoding] {
    match ty {
        SqlType::TimestampTz => &[
            Encoding::Az64,
            Encoding::Zstd,
            Encoding::Bytedict,
            Encoding::Runlength,
            Encoding::Lzo,
            Encoding::Raw,
        ],
        SqlType::Time => &[
            Encoding::Az64,
            Encoding::Zstd,
            Encoding::Runlength,
            Encoding::Raw,
        ],
        SqlType::SmallInt
        | SqlType::Integer
        | SqlType::BigInt
        | SqlType::Decimal { .. }
        | SqlType::Date
        | SqlType::Timestamp => &[
            Encoding::Az64,
            Encoding::Zstd,
            Encoding::Bytedict,
            Encoding::Delta,
            Encoding::Runlength,
            Encoding::Lzo,
            Encoding::Raw,
        ],
        SqlType::Varchar(_) => &[
            Encoding::Lzo,
            Encoding::Zstd,
            Encoding::Bytedict,
            Encoding::Text255,
            Encoding::Runlength,
            Encoding::Raw,
        ],
        SqlType::Char(_) => &[
            Encoding::Lzo,
            Encoding::Zstd,
            Encoding::Bytedict,
            Encoding::Runlength,
            Encoding::Raw,
        ],
        SqlType::Real | SqlType::Double => &[
            Encoding::Raw,
            Encoding::Zstd,
            Encoding::Runlength,
            Encoding::Bytedict,
        ],
        SqlType::Boolean => &[Encoding::Raw, Encoding::Zstd, Encoding::Runlength],
    }
}

/// Bytes one column's values (`values`, in the column's type) take in a segment written with
/// each candidate encoding: the measure behind ANALYZE COMPRESSION. Written to memory.
pub fn encoded_sizes(
    table: &TableMeta,
    column: usize,
    values: datafusion::arrow::array::ArrayRef,
) -> Result<Vec<(Encoding, u64)>, crate::StorageError> {
    let mut out = vec![];
    for &enc in candidate_encodings(&table.columns[column].ty) {
        let mut one = table.clone();
        let mut col = table.columns[column].clone();
        col.encoding = enc;
        one.columns = vec![col];
        one.encode_auto = false;
        let schema = one.physical_schema();
        let batch =
            datafusion::arrow::array::RecordBatch::try_new(schema.clone(), vec![values.clone()])?;
        let mut buf: Vec<u8> = vec![];
        let mut w =
            parquet::arrow::ArrowWriter::try_new(&mut buf, schema, Some(writer_properties(&one)))
                .map_err(|source| crate::StorageError::Parquet {
                path: "(memory)".into(),
                source,
            })?;
        w.write(&batch)
            .map_err(|source| crate::StorageError::Parquet {
                path: "(memory)".into(),
                source,
            })?;
        w.close().map_err(|source| crate::StorageError::Parquet {
            path: "(memory)".into(),
            source,
        })?;
        out.push((enc, buf.len() as u64));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_encodings_the_type_accepts() {
        let types = [
            SqlType::SmallInt,
            SqlType::Integer,
            SqlType::BigInt,
            SqlType::Decimal {
                precision: 12,
                scale: 2,
            },
            SqlType::Real,
            SqlType::Double,
            SqlType::Boolean,
            SqlType::Char(4),
            SqlType::Varchar(8),
            SqlType::Date,
            SqlType::Timestamp,
            SqlType::TimestampTz,
            SqlType::Time,
        ];
        for ty in types {
            let candidates = candidate_encodings(&ty);
            assert_eq!(candidates[0], ty.default_encoding(), "{ty:?}");
            for enc in candidates {
                assert!(enc.accepts(&ty), "{enc:?} on {ty:?}");
            }
        }
    }
}
