use std::path::PathBuf;

use basalt_catalog::{NodeId, SliceId};
use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;

/// Errors raised by slice storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("segment {file} of table {table} on slice {slice} is unreadable: {reason}")]
    Corrupt {
        /// The table's name (`schema.table`) where known, else its id.
        table: String,
        slice: SliceId,
        file: String,
        reason: String,
    },
    #[error("writing segment {path}: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    #[error("slice {slice} is not held by any compute node")]
    UnknownSlice { slice: SliceId },
    #[error("background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// A compute node reached over the network failed the request.
    #[error("compute node {node}: {message}")]
    Remote {
        node: NodeId,
        /// The SQLSTATE the node's error maps to.
        sqlstate: String,
        message: String,
    },
    /// A compute node could not be reached.
    #[error("compute node {node} is not reachable: {reason}")]
    NodeDown { node: NodeId, reason: String },
}

impl StorageError {
    pub fn sqlstate(&self) -> &'static str {
        match self {
            StorageError::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull => {
                "53100"
            }
            StorageError::Io { .. } => "58030",
            StorageError::Parquet { source, .. } if is_disk_full(source) => "53100",
            StorageError::Corrupt { .. } => "XX001",
            StorageError::Remote { sqlstate, .. } => match sqlstate.as_str() {
                "53100" => "53100",
                "58030" => "58030",
                "XX001" => "XX001",
                "58000" => "58000",
                _ => "XX000",
            },
            StorageError::NodeDown { .. } => "58000",
            _ => "XX000",
        }
    }
}

/// Whether a Parquet write failed because the disk is full.
fn is_disk_full(e: &parquet::errors::ParquetError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::StorageFull
        {
            return true;
        }
        source = err.source();
    }
    false
}
