//! Errors of the MPP layer.

use datafusion::error::DataFusionError;

#[derive(Debug, thiserror::Error)]
pub enum MppError {
    /// A node's internal listener could not be opened.
    #[error("internal listener: {0}")]
    Listen(#[source] std::io::Error),
    /// A node address that is not a URL.
    #[error("node address: {0}")]
    Address(String),
    /// The TLS certificate or key could not be used.
    #[error("internal TLS: {0}")]
    Tls(String),
    /// The distributed planner refused its configuration.
    #[error("distributed planner configuration: {0}")]
    Config(#[source] DataFusionError),
}
