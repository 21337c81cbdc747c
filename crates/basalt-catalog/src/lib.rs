//! # basalt-catalog — the leader's durable catalog
//!
//! Stage on the query path: **catalog**. Every table, schema and user lives here, together
//! with each table's current **version**: the list of immutable segment files per slice that
//! make up its rows. Only the leader commits a new version, atomically, after the compute
//! nodes have durably written the files it references.
//!
//! ```text
//!  session ──begin──▶ Transaction (private copy of CatalogState)
//!     │                  │  DDL / DML edit the copy, new segment files written by compute
//!     └──commit────────▶ CatalogStore::commit ── conflict check ── fsync(tmp) ── rename ── swap
//! ```
//!
//! The persisted file carries a format version and a CRC32 of its body, so a torn or
//! foreign file is detected, never half-read.

mod error;
mod store;
mod table;
mod types;

pub use error::CatalogError;
pub use store::{
    CatalogState, CatalogStore, SchemaMeta, Topology, Transaction, UserMeta, ViewMeta,
};
pub use table::{
    ColumnMeta, ColumnStats, Constraints, DeleteVectorMeta, ForeignKey, Identity, LoadedObject,
    SegmentMeta, SortKey, SortKeyKind, TableData, TableMeta, TableStats,
};
pub use types::{CHAR_MAX, DistStyle, Encoding, SQL_TYPE_METADATA_KEY, SqlType, VARCHAR_MAX};

/// Identifier of a table; stable for the table's lifetime and never reused.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct TableId(pub u64);

/// Identifier of a slice: the unit of data placement and of parallelism.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct SliceId(pub u32);

/// Identifier of a compute node.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct NodeId(pub u32);

impl std::fmt::Display for TableId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl std::fmt::Display for SliceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Format version of the persisted catalog file. Bump on any change to the persisted structs;
/// `tests::frozen_format` fails when the serialized shape changes without a bump.
/// Version 2 added views, 3 delete vectors, 4 segment checksums (`SegmentMeta::crc32`), 5 the
/// load ledger (`TableMeta::loaded`); files of versions 1 to 4 are still read.
pub const CATALOG_FORMAT_VERSION: u32 = 5;
