//! # basalt-pgwire — the Postgres wire front end
//!
//! Stage on the query path: **wire → session**. [`PgServer`] accepts Postgres protocol 3
//! connections (pgwire 0.42) and drives one leader [`Session`](basalt_node::Session) per
//! connection:
//!
//! ```text
//!  client ─▶ SSLRequest ('N') ─▶ Startup ─▶ auth (trust / MD5 / SCRAM-SHA-256) ─▶ Leader::session
//!         ─▶ Query ──────────────▶ Session::execute ─────────┐
//!         ─▶ Parse ──────────────▶ Session::prepare           ├─▶ RecordBatch stream ─▶ DataRows
//!         ─▶ Bind/Execute(max_rows) ▶ Session::execute_prepared┘    (text or binary per column)
//!         ─▶ CancelRequest ──────▶ ConnectionManager ─▶ 57014 in the running statement
//!  COPY TO STDOUT: RecordBatch stream ─▶ CopyOutResponse, CopyData per row, CopyDone
//!  Describe/Execute/Close of a portal named like a SQL cursor (DECLARE) ─▶ that cursor
//! ```
//!
//! * `auth` — startup: authentication, the session, ParameterStatus, BackendKeyData.
//! * `handler` — simple and extended query protocol, cancellation, panic isolation,
//!   transaction status for ReadyForQuery, SQL cursors as portals.
//! * `types` — Arrow → Postgres type mapping (OID, typmod from the column's SQL type) and
//!   DataRow encoding; `text` — Postgres 15 text output formats.
//! * `params` — Bind parameters (text and binary) → `ScalarValue`.
//! * `copy_out` — COPY TO STDOUT rows as CopyData in text, CSV or binary COPY format.

mod auth;
mod copy_out;
mod handler;
mod params;
mod server;
mod types;

pub use server::PgServer;
