//! # basalt-storage — slices, segments and placement
//!
//! Stage on the query path: **compute-side storage**. A compute node holds a fixed set of
//! slices; on each slice a table is a set of immutable **segments**: Parquet files whose
//! columns are named `c<column id>`, written in sort-key order (z-order for an INTERLEAVED
//! key, see `sort.rs`), compressed per column `ENCODE`, with row-group and page statistics
//! (min, max, null count) acting as **zone maps** that scans use to skip blocks.
//!
//! ```text
//!  INSERT batch ─▶ placement::split_by_slice (KEY hash / EVEN round robin / ALL copies)
//!              ─▶ ComputeNode::write ─▶ SliceStore::write_segment (sort, encode, fsync)
//!  SELECT       ─▶ ComputeNode::scan  ─▶ DataSourceExec(Parquet, pruning by zone maps)
//! ```
//!
//! Files are made visible only by the leader's catalog commit; a file no committed version
//! references is garbage, removed by [`SliceStore::collect_garbage`] at start-up.

mod blocks;
mod budget;
mod compute;
mod deletes;
mod encoding;
mod error;
mod footers;
mod placement;
mod segment;
mod sort;

pub use blocks::BlockInfo;
pub use compute::{
    ComputeCluster, ComputeNode, ComputeService, ROW_ID_COLUMNS, ScanCounters, ScanRequest,
    WriteRequest, row_id_fields,
};
pub use deletes::{DELETE_VECTOR_FORMAT_VERSION, kept_rows};
pub use encoding::{ROWS_PER_BLOCK, candidate_encodings, encoded_sizes, writer_properties};
pub use error::StorageError;
pub use placement::{
    hash_fingerprint, key_slice, placement_partitions, split_by_slice, target_slices,
};
pub use roaring::RoaringBitmap;
pub use segment::{SEGMENT_FORMAT_VERSION, SliceStore};
