use std::path::PathBuf;

/// Errors raised by the catalog. Each maps to one Postgres SQLSTATE via [`CatalogError::sqlstate`].
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("relation \"{name}\" does not exist")]
    TableNotFound { name: String },
    #[error("relation \"{name}\" already exists")]
    TableExists { name: String },
    #[error("schema \"{name}\" does not exist")]
    SchemaNotFound { name: String },
    #[error("schema \"{name}\" already exists")]
    SchemaExists { name: String },
    #[error("cannot drop schema {name} because other objects depend on it")]
    SchemaNotEmpty { name: String },
    #[error("column \"{column}\" of relation \"{table}\" does not exist")]
    ColumnNotFound { table: String, column: String },
    #[error("column \"{column}\" of relation \"{table}\" already exists")]
    ColumnExists { table: String, column: String },
    #[error(
        "1023 Serializable isolation violation on table - {table}, transactions forming the cycle are: {detail}"
    )]
    SerializationConflict { table: String, detail: String },
    #[error("catalog file {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("catalog file {path} has format version {found}, this build reads version {expected}")]
    UnsupportedFormat {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("catalog I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cluster shape mismatch: data directory was created with {found}, asked for {asked}")]
    TopologyMismatch { found: String, asked: String },
}

impl CatalogError {
    /// The Postgres SQLSTATE a client sees for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            CatalogError::TableNotFound { .. } => "42P01",
            CatalogError::TableExists { .. } => "42P07",
            CatalogError::SchemaNotFound { .. } => "3F000",
            CatalogError::SchemaExists { .. } => "42P06",
            CatalogError::SchemaNotEmpty { .. } => "2BP01",
            CatalogError::ColumnNotFound { .. } => "42703",
            CatalogError::ColumnExists { .. } => "42701",
            CatalogError::SerializationConflict { .. } => "40001",
            CatalogError::Corrupt { .. } | CatalogError::UnsupportedFormat { .. } => "XX001",
            CatalogError::Io { .. } => "58030",
            CatalogError::TopologyMismatch { .. } => "55000",
        }
    }
}
