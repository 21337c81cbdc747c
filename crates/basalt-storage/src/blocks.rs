//! The blocks of a slice's segments as Redshift's STV_BLOCKLIST and SVV_DISKUSAGE list them:
//! one entry per column per block (row group), with its zone map, read from segment footers.

use basalt_catalog::{SegmentMeta, SliceId, TableMeta};
use parquet::file::metadata::ParquetMetaDataReader;
use parquet::file::statistics::Statistics;

use crate::StorageError;
use crate::compute::ComputeNode;

/// One column's part of one block.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlockInfo {
    /// Index of the column in the table.
    pub column: usize,
    /// Block number within the slice's part of the column, in segment order.
    pub block: usize,
    pub rows: u64,
    /// The zone map as Redshift shows it: the value as a 64-bit integer (integers, dates and
    /// timestamps as stored, decimals unscaled, floating point truncated, text as its first
    /// eight bytes big-endian); `None` without statistics or for all-NULL blocks.
    pub min: Option<i64>,
    pub max: Option<i64>,
    /// Compressed bytes of the column chunk.
    pub bytes: u64,
    /// The block's segment is outside the slice's sorted region.
    pub unsorted: bool,
}

impl ComputeNode {
    /// Every block of `segments` (one slice's part of `table`), column by column.
    pub fn blocks(
        &self,
        table: &TableMeta,
        slice: SliceId,
        segments: &[SegmentMeta],
    ) -> Result<Vec<BlockInfo>, StorageError> {
        let store = self.slice(slice)?;
        let mut out = vec![];
        let mut next_block = vec![0usize; table.columns.len()];
        for seg in segments {
            let path = store.segment_path(table.id, &seg.file);
            let corrupt = |reason: String| StorageError::Corrupt {
                table: table.qualified_name(),
                slice,
                file: seg.file.clone(),
                reason,
            };
            let file = std::fs::File::open(&path).map_err(|e| corrupt(e.to_string()))?;
            let meta = ParquetMetaDataReader::new()
                .parse_and_finish(&file)
                .map_err(|e| corrupt(e.to_string()))?;
            let unsorted = table.sortkey.is_some() && !seg.sorted_region;
            for rg in meta.row_groups() {
                for chunk in rg.columns() {
                    let name = chunk.column_descr().name();
                    let Some(column) = table.columns.iter().position(|c| c.physical_name() == name)
                    else {
                        continue;
                    };
                    let (min, max) = chunk.statistics().map(zone_map).unwrap_or((None, None));
                    out.push(BlockInfo {
                        column,
                        block: next_block[column],
                        rows: rg.num_rows() as u64,
                        min,
                        max,
                        bytes: chunk.compressed_size() as u64,
                        unsorted,
                    });
                    next_block[column] += 1;
                }
            }
        }
        Ok(out)
    }
}

/// A column chunk's min and max as 64-bit integers.
fn zone_map(stats: &Statistics) -> (Option<i64>, Option<i64>) {
    fn bytes(b: &[u8]) -> i64 {
        let mut buf = [0u8; 8];
        let n = b.len().min(8);
        buf[..n].copy_from_slice(&b[..n]);
        i64::from_be_bytes(buf)
    }
    // Fixed-length decimals are big-endian two's complement: keep the low 8 bytes.
    fn decimal(b: &[u8]) -> i64 {
        let mut buf = [if b.first().is_some_and(|x| x & 0x80 != 0) {
            0xff
        } else {
            0
        }; 8];
        let n = b.len().min(8);
        buf[8 - n..].copy_from_slice(&b[b.len() - n..]);
        i64::from_be_bytes(buf)
    }
    match stats {
        Statistics::Boolean(s) => (
            s.min_opt().map(|v| *v as i64),
            s.max_opt().map(|v| *v as i64),
        ),
        Statistics::Int32(s) => (
            s.min_opt().map(|v| *v as i64),
            s.max_opt().map(|v| *v as i64),
        ),
        Statistics::Int64(s) => (s.min_opt().copied(), s.max_opt().copied()),
        Statistics::Int96(_) => (None, None),
        Statistics::Float(s) => (
            s.min_opt().map(|v| *v as i64),
            s.max_opt().map(|v| *v as i64),
        ),
        Statistics::Double(s) => (
            s.min_opt().map(|v| *v as i64),
            s.max_opt().map(|v| *v as i64),
        ),
        Statistics::ByteArray(s) => (
            s.min_opt().map(|v| bytes(v.data())),
            s.max_opt().map(|v| bytes(v.data())),
        ),
        Statistics::FixedLenByteArray(s) => (
            s.min_opt().map(|v| decimal(v.data())),
            s.max_opt().map(|v| decimal(v.data())),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::statistics::ValueStatistics;

    #[test]
    fn zone_maps_as_integers() {
        let ints = Statistics::Int32(ValueStatistics::new(
            Some(-3),
            Some(9),
            None,
            Some(0),
            false,
        ));
        assert_eq!(zone_map(&ints), (Some(-3), Some(9)));
        let text = Statistics::ByteArray(ValueStatistics::new(
            Some("ab".as_bytes().to_vec().into()),
            Some("abcdefghij".as_bytes().to_vec().into()),
            None,
            Some(0),
            false,
        ));
        let (min, max) = zone_map(&text);
        assert_eq!(min, Some(i64::from_be_bytes(*b"ab\0\0\0\0\0\0")));
        assert_eq!(max, Some(i64::from_be_bytes(*b"abcdefgh")));
        let neg = Statistics::FixedLenByteArray(ValueStatistics::new(
            Some(vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe].into()),
            Some(vec![0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00].into()),
            None,
            Some(0),
            false,
        ));
        assert_eq!(zone_map(&neg), (Some(-2), Some(256)));
    }
}
