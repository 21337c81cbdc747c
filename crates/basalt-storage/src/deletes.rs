//! Delete vectors: the positions of a segment's deleted rows.
//!
//! DELETE and UPDATE never rewrite a segment. They write a small immutable file beside it,
//! `<segment>.<uuid>.del`, holding a Roaring bitmap of deleted row positions (0-based, in file
//! order); the table's next version points the segment at that file. A later DELETE on the same
//! segment writes a new file with the old positions and the new ones, so a version always names
//! at most one delete vector per segment and older versions keep theirs until they are
//! reclaimed. Scans turn the bitmap into a Parquet row selection, so deleted rows are skipped
//! while decoding, not filtered afterwards.
//!
//! File layout (little endian): magic `BSDV`, format version (u32), deleted row count (u64),
//! CRC-32 of the payload (u32), payload (Roaring portable serialization).

use std::fs;
use std::io::Write;
use std::ops::Range;

use basalt_catalog::{DeleteVectorMeta, SegmentMeta, TableId};
use parquet::arrow::arrow_reader::RowSelection;
use roaring::RoaringBitmap;
use tracing::debug;

use crate::segment::{io, publish};
use crate::{SliceStore, StorageError};

/// Version of the delete-vector file layout.
pub const DELETE_VECTOR_FORMAT_VERSION: u32 = 1;

const MAGIC: &[u8; 4] = b"BSDV";
const HEADER: usize = 4 + 4 + 8 + 4;

/// Serialize a bitmap with its header.
pub fn encode(deleted: &RoaringBitmap) -> Vec<u8> {
    let mut payload = Vec::with_capacity(deleted.serialized_size());
    deleted
        .serialize_into(&mut payload)
        .expect("writing to a Vec cannot fail");
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&DELETE_VECTOR_FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&deleted.len().to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Read a bitmap written by [`encode`], checking magic, version, checksum and count.
pub fn decode(bytes: &[u8]) -> Result<RoaringBitmap, String> {
    if bytes.len() < HEADER || &bytes[..4] != MAGIC {
        return Err("not a delete vector file".into());
    }
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let version = word(4);
    if version != DELETE_VECTOR_FORMAT_VERSION {
        return Err(format!(
            "delete vector format version {version}, expected {DELETE_VECTOR_FORMAT_VERSION}"
        ));
    }
    let count = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let payload = &bytes[HEADER..];
    let crc = crc32fast::hash(payload);
    if crc != word(16) {
        return Err(format!(
            "checksum mismatch (stored {:08x}, computed {crc:08x})",
            word(16)
        ));
    }
    let bitmap = RoaringBitmap::deserialize_from(payload).map_err(|e| e.to_string())?;
    if bitmap.len() != count {
        return Err(format!("holds {} rows, header says {count}", bitmap.len()));
    }
    Ok(bitmap)
}

/// The rows of a segment of `rows` rows that survive `deleted`, as a Parquet row selection.
pub fn kept_rows(deleted: &RoaringBitmap, rows: u64) -> RowSelection {
    let mut kept: Vec<Range<usize>> = vec![];
    let mut start = 0u64;
    for d in deleted.iter().map(u64::from).take_while(|d| *d < rows) {
        if d > start {
            kept.push(start as usize..d as usize);
        }
        start = d + 1;
    }
    if start < rows {
        kept.push(start as usize..rows as usize);
    }
    RowSelection::from_consecutive_ranges(kept.into_iter(), rows as usize)
}

impl SliceStore {
    /// The segment's deleted rows in the version that `seg` describes (empty without a
    /// delete vector).
    pub fn read_deleted(
        &self,
        table: TableId,
        seg: &SegmentMeta,
    ) -> Result<RoaringBitmap, StorageError> {
        let Some(dv) = &seg.deleted else {
            return Ok(RoaringBitmap::new());
        };
        let path = self.segment_path(table, &dv.file);
        let bytes = fs::read(&path).map_err(|e| StorageError::Corrupt {
            table: format!("id {table}"),
            slice: self.slice,
            file: dv.file.clone(),
            reason: format!("delete vector {}: {e}", path.display()),
        })?;
        decode(&bytes).map_err(|reason| StorageError::Corrupt {
            table: format!("id {table}"),
            slice: self.slice,
            file: dv.file.clone(),
            reason,
        })
    }

    /// Durably write a delete vector for `seg` holding its current deletions plus `rows`;
    /// returns the segment as the next version will list it. The file is invisible until a
    /// catalog commit references it.
    pub fn delete_rows(
        &self,
        table: TableId,
        seg: &SegmentMeta,
        rows: &RoaringBitmap,
    ) -> Result<SegmentMeta, StorageError> {
        let mut deleted = self.read_deleted(table, seg)?;
        let before = deleted.len();
        deleted |= rows;
        if deleted.max().is_some_and(|m| u64::from(m) >= seg.rows) {
            return Err(StorageError::Corrupt {
                table: format!("id {table}"),
                slice: self.slice,
                file: seg.file.clone(),
                reason: format!("row position past the segment's {} rows", seg.rows),
            });
        }
        if deleted.len() == before {
            return Ok(seg.clone());
        }
        let dir = self.table_dir(table);
        let stem = seg.file.trim_end_matches(".parquet");
        let file = format!("{stem}.{}.del", uuid::Uuid::new_v4().simple());
        let path = dir.join(&file);
        let tmp = dir.join(format!("{file}.tmp"));
        {
            let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
            f.write_all(&encode(&deleted)).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        publish(&tmp, &path, &dir)?;
        debug!(slice = %self.slice, %table, segment = seg.file, file, deleted = deleted.len(), "delete vector written");
        Ok(SegmentMeta {
            deleted: Some(DeleteVectorMeta {
                file,
                rows: deleted.len(),
            }),
            ..seg.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::RowSelector;

    #[test]
    fn round_trip_and_corruption() {
        let b: RoaringBitmap = [1u32, 5, 6, 1000].into_iter().collect();
        let bytes = encode(&b);
        assert_eq!(decode(&bytes).unwrap(), b);
        let mut bad = bytes.clone();
        *bad.last_mut().unwrap() ^= 0xff;
        assert!(decode(&bad).unwrap_err().contains("checksum"));
        assert!(decode(&bytes[..10]).is_err());
        let mut newer = bytes;
        newer[4] = 9;
        assert!(decode(&newer).unwrap_err().contains("version 9"));
    }

    /// Freezes the file layout: if this fails, bump DELETE_VECTOR_FORMAT_VERSION.
    #[test]
    fn frozen_format() {
        let b: RoaringBitmap = [0u32, 2].into_iter().collect();
        let bytes = encode(&b);
        assert_eq!(&bytes[..16], b"BSDV\x01\0\0\0\x02\0\0\0\0\0\0\0");
        assert_eq!(DELETE_VECTOR_FORMAT_VERSION, 1);
    }

    #[test]
    fn kept_rows_skip_deleted_positions() {
        let b: RoaringBitmap = [0u32, 3, 4, 9].into_iter().collect();
        let sel: Vec<RowSelector> = kept_rows(&b, 10).into();
        assert_eq!(
            sel,
            vec![
                RowSelector::skip(1),
                RowSelector::select(2),
                RowSelector::skip(2),
                RowSelector::select(4),
                RowSelector::skip(1),
            ]
        );
        let none: Vec<RowSelector> = kept_rows(&RoaringBitmap::new(), 3).into();
        assert_eq!(none, vec![RowSelector::select(3)]);
    }
}
