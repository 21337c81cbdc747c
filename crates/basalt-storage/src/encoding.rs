//! Column `ENCODE` → Parquet encoding and compression. The table of choices and why lives in
//! `docs/storage.md`.

use basalt_catalog::{Encoding, SqlType, TableMeta};
use parquet::basic::{Compression, Encoding as PqEncoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;

/// Rows per row group ("block"): each row group carries min/max/null-count zone maps.
pub const ROWS_PER_BLOCK: usize = 64 * 1024;
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
            Encoding::Lzo => (Compression::LZ4_RAW, true, None),
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
