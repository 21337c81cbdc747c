//! # basalt-planner — DataFusion glue
//!
//! Stage on the query path: **plan**. BasaltDB tables appear to DataFusion as
//! [`BasaltTable`] providers whose scans are [`SliceScanExec`]s: one partition per slice
//! holding the table, each reading that slice's segments through its compute node. The
//! [`redshift`] module adds Redshift's functions and rewrites Redshift-only syntax into forms
//! DataFusion plans.

mod catalog;
pub mod distribution;
pub mod pg_semantics;
mod provider;
pub mod redshift;
pub mod subquery;

pub use catalog::{BasaltCatalog, CatalogView, ROW_IDS_SUFFIX};
pub use provider::{BasaltTable, SliceScanExec, SliceScanParts, ViewStub};
