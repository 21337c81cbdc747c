//! Segment files on one slice.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use basalt_catalog::{SegmentMeta, SliceId, TableId, TableMeta};
use datafusion::arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use tracing::{debug, info};

use crate::budget::{Budgeted, WriteBudget};
use crate::{StorageError, writer_properties};

/// Version of the segment layout (Parquet with `c<id>` columns, zone maps in row-group and page
/// statistics). Recorded in each file's `created_by` and key-value metadata.
pub const SEGMENT_FORMAT_VERSION: u32 = 1;

/// One slice's directory of segment files: `<root>/t<table id>/<segment>.parquet`.
#[derive(Debug, Clone)]
pub struct SliceStore {
    pub slice: SliceId,
    root: PathBuf,
    /// Bytes segment writes may still use (unlimited unless a test sets it).
    pub(crate) budget: Arc<WriteBudget>,
    /// Segments whose checksum this process has checked (or written).
    verified: Arc<parking_lot::Mutex<std::collections::HashSet<String>>>,
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + use<> {
    let path = path.to_path_buf();
    move |source| StorageError::Io { path, source }
}

/// Make a fully written and fsynced `tmp` file visible as `path`, durably: rename, then fsync
/// the directory.
pub(crate) fn publish(tmp: &Path, path: &Path, dir: &Path) -> Result<(), StorageError> {
    fs::rename(tmp, path).map_err(io(path))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

impl SliceStore {
    pub fn open(slice: SliceId, root: PathBuf) -> Result<Self, StorageError> {
        fs::create_dir_all(&root).map_err(io(&root))?;
        Ok(SliceStore {
            slice,
            root,
            budget: Default::default(),
            verified: Default::default(),
        })
    }

    pub fn table_dir(&self, table: TableId) -> PathBuf {
        self.root.join(format!("t{}", table.0))
    }

    pub fn segment_path(&self, table: TableId, file: &str) -> PathBuf {
        self.table_dir(table).join(file)
    }

    /// Sort `batch` (logical column order) by the table's sort key (compound, or z-order for
    /// an interleaved key, ranked over `batch`'s rows) and write it durably as a new segment.
    /// The file is invisible until a catalog commit references it.
    pub fn write_segment(
        &self,
        table: &TableMeta,
        batch: &RecordBatch,
    ) -> Result<SegmentMeta, StorageError> {
        let sorted = crate::sort::sort_batch(table, batch)?;
        self.write_ordered_segment(table, &sorted)
    }

    /// Write `batch` as a new segment in the order given: its rows are already in sort-key
    /// order, part of a larger run (VACUUM's slice-wide order, which sorting each segment on its
    /// own would undo for an interleaved key).
    pub(crate) fn write_ordered_segment(
        &self,
        table: &TableMeta,
        batch: &RecordBatch,
    ) -> Result<SegmentMeta, StorageError> {
        let physical = RecordBatch::try_new(table.physical_schema(), batch.columns().to_vec())?;
        let dir = self.table_dir(table.id);
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let file = format!("{}.parquet", uuid::Uuid::new_v4().simple());
        let path = dir.join(&file);
        let tmp = dir.join(format!("{file}.tmp"));
        let crc32 = match self.write_file(table, &physical, &tmp) {
            Ok(crc) => crc,
            Err(e) => {
                // A failed write (a full disk, most likely) leaves nothing behind.
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        publish(&tmp, &path, &dir)?;
        self.verified.lock().insert(file.clone());
        let bytes = fs::metadata(&path).map_err(io(&path))?.len();
        debug!(slice = %self.slice, table = %table.id, file, rows = physical.num_rows(), bytes, "segment written");
        Ok(SegmentMeta {
            file,
            rows: physical.num_rows() as u64,
            bytes,
            sorted: !table.sortkey_indices().is_empty(),
            sorted_region: false,
            deleted: None,
            crc32: Some(crc32),
        })
    }

    /// Write `physical` as a Parquet file at `tmp` and fsync it; returns the file's CRC-32.
    fn write_file(
        &self,
        table: &TableMeta,
        physical: &RecordBatch,
        tmp: &Path,
    ) -> Result<u32, StorageError> {
        let f = fs::File::create(tmp).map_err(io(tmp))?;
        let pq = |source| StorageError::Parquet {
            path: tmp.to_path_buf(),
            source,
        };
        let out = Budgeted {
            inner: f.try_clone().map_err(io(tmp))?,
            budget: self.budget.clone(),
            crc: crc32fast::Hasher::new(),
        };
        let mut writer =
            ArrowWriter::try_new(out, physical.schema(), Some(writer_properties(table)))
                .map_err(pq)?;
        writer.append_key_value_metadata(parquet::file::metadata::KeyValue::new(
            "basalt.segment_format_version".into(),
            SEGMENT_FORMAT_VERSION.to_string(),
        ));
        writer.write(physical).map_err(pq)?;
        // finish() writes the footer and flushes, keeping the I/O error (a full disk is
        // 53100; into_inner() would turn a failed flush into text).
        writer.finish().map_err(pq)?;
        let crc = writer.inner().crc.clone().finalize();
        f.sync_all().map_err(io(tmp))?;
        Ok(crc)
    }

    /// The segments among `segments` with a checksum this process has not checked yet (and
    /// rows to read).
    pub(crate) fn unverified(&self, segments: &[SegmentMeta]) -> Vec<SegmentMeta> {
        let verified = self.verified.lock();
        segments
            .iter()
            .filter(|s| s.crc32.is_some() && s.live_rows() > 0 && !verified.contains(&s.file))
            .cloned()
            .collect()
    }

    /// Check the CRC-32 of each segment not checked yet in this process (segments never
    /// change, so once is enough); a mismatch is [`StorageError::Corrupt`].
    pub(crate) fn verify(
        &self,
        table: &TableMeta,
        segments: &[SegmentMeta],
    ) -> Result<(), StorageError> {
        for seg in segments {
            let Some(expected) = seg.crc32 else {
                continue;
            };
            if self.verified.lock().contains(&seg.file) {
                continue;
            }
            let path = self.segment_path(table.id, &seg.file);
            let corrupt = |reason: String| StorageError::Corrupt {
                table: table.qualified_name(),
                slice: self.slice,
                file: seg.file.clone(),
                reason,
            };
            let mut f = fs::File::open(&path).map_err(|e| corrupt(e.to_string()))?;
            let mut hasher = crc32fast::Hasher::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n =
                    std::io::Read::read(&mut f, &mut buf).map_err(|e| corrupt(e.to_string()))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            let actual = hasher.finalize();
            if actual != expected {
                return Err(corrupt(format!(
                    "checksum mismatch (CRC-32 {actual:08x}, expected {expected:08x})"
                )));
            }
            self.verified.lock().insert(seg.file.clone());
        }
        Ok(())
    }

    /// Delete segment files (after a rollback, or once no version references them).
    pub fn remove(&self, table: TableId, files: &[String]) {
        for f in files {
            let p = self.segment_path(table, f);
            if let Err(e) = fs::remove_file(&p)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %p.display(), error = %e, "could not remove segment");
            }
        }
    }

    /// Remove every file on this slice that `live` (`(table, file)` pairs of the committed
    /// catalog) does not reference: leftovers of crashed or rolled-back writes and dropped tables.
    pub fn collect_garbage(
        &self,
        live: &BTreeSet<(TableId, String)>,
        created_before: Option<std::time::SystemTime>,
    ) -> Result<usize, StorageError> {
        let mut removed = 0;
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io(&self.root)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io(&self.root))?;
            let name = entry.file_name().to_string_lossy().to_string();
            let Some(table) = name.strip_prefix('t').and_then(|n| n.parse::<u64>().ok()) else {
                continue;
            };
            let table = TableId(table);
            let dir = entry.path();
            let mut kept = 0;
            for f in fs::read_dir(&dir).map_err(io(&dir))? {
                let f = f.map_err(io(&dir))?;
                let fname = f.file_name().to_string_lossy().to_string();
                // A file newer than the cutoff may belong to a transaction still open.
                let recent = created_before.is_some_and(|cutoff| {
                    f.metadata()
                        .and_then(|m| m.modified())
                        .map_or(true, |t| t >= cutoff)
                });
                if recent || live.contains(&(table, fname.clone())) {
                    kept += 1;
                } else {
                    fs::remove_file(f.path()).map_err(io(&f.path()))?;
                    removed += 1;
                }
            }
            if kept == 0 && created_before.is_none() {
                let _ = fs::remove_dir(&dir);
            }
        }
        if removed > 0 {
            info!(slice = %self.slice, removed, "removed orphan segment files");
        }
        Ok(removed)
    }
}
