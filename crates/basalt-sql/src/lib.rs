//! # basalt-sql — Redshift SQL in, typed statements out
//!
//! Stage on the query path: **parse**. We tokenize and parse with `sqlparser` through our
//! [`BasaltDialect`] (PostgreSQL's grammar, which every Postgres client's catalog queries
//! need, plus Redshift's: `#temp` names, `TOP n`, column `ENCODE`/`DISTKEY`/`SORTKEY`/
//! `IDENTITY(seed, step)`). Redshift's table attributes (`DISTSTYLE`, `DISTKEY(..)`,
//! `[COMPOUND|INTERLEAVED] SORTKEY(..)`, `ENCODE AUTO`, `BACKUP`) may come in any order, which
//! sqlparser does not accept, so [`parse`] lifts them out of the token stream into
//! [`TableAttributes`] before handing the rest to sqlparser (as DataFusion's `DFParser` handles
//! a few statements itself and delegates the rest).

pub mod build;
mod dialect;
mod error;
mod parser;

pub use dialect::BasaltDialect;
pub use error::SqlError;
pub use parser::{
    ColumnAttribute, CompressionAnalysis, CopyParameter, ParsedStatement, SortKeyAttr,
    SortKeyStyle, TableAttributes, Unload, column_attribute, parse,
};
pub use sqlparser;
