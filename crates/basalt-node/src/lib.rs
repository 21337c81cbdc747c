//! # basalt-node — the leader and compute roles
//!
//! Stage on the query path: **session → plan → execute → commit**. The [`Leader`] owns the
//! catalog and the sessions; each [`Session`] parses a query string (basalt-sql), runs
//! utility statements itself (transactions, SET/SHOW, DDL), plans queries with DataFusion over
//! BasaltDB table providers (basalt-planner), and writes through the compute service
//! (basalt-storage), committing a new table version at the end of each transaction.
//!
//! ```text
//!  wire ─▶ Session::execute ─▶ parse ─┬─ BEGIN/COMMIT/SET/SHOW ─▶ session state
//!                                     ├─ DDL ─▶ Transaction (catalog copy)
//!                                     ├─ INSERT/UPDATE/DELETE ─▶ plan source ─▶ place ─▶ compute.write
//!                                     └─ SELECT/EXPLAIN ─▶ DataFusion ─▶ slice scans ─▶ batches
//! ```

mod analyze;
mod autodist;
mod cluster;
mod config;
mod convert;
mod copy;
mod cursor;
mod ddl;
mod dml;
mod error;
mod extension;
mod json;
mod leader;
mod load;
mod loadlog;
mod params;
mod pg;
mod pg_overlay;
pub mod pgtext;
mod querylog;
mod session;
mod settings;
mod stats;
mod system_tables;
#[cfg(test)]
mod tests;
mod unload;
mod vacuum;
mod view;

pub use autodist::DEFAULT_AUTO_ALL_MAX_ROWS;
pub use cluster::{ComputeConfig, run_compute};
pub use config::{AuthMethod, DEFAULT_COPY_CHUNK_BYTES, LeaderConfig};
pub use copy::CopyFormat;
pub use error::NodeError;
pub use leader::Leader;
pub use session::{Prepared, Session, StatementOutput, TransactionStatus};

/// `server_version` reported to clients. PEP 440-parseable (redshift_connector parses it), and
/// 15 rather than Redshift's 8.0.2 so psql 15 and pgjdbc pick the catalog queries our
/// pg_catalog answers (see docs/decisions/0002-server-version.md).
pub const SERVER_VERSION: &str = "15.0";

/// `SELECT version()`.
pub fn version_string() -> String {
    format!(
        "PostgreSQL {SERVER_VERSION} on x86_64-pc-linux-gnu, compiled by rustc, Redshift 1.0.0 (BasaltDB {})",
        env!("CARGO_PKG_VERSION")
    )
}
