//! Placing rows on slices by DISTSTYLE.
//!
//! KEY uses DataFusion's repartition hash (`REPARTITION_RANDOM_STATE`) modulo the slice count,
//! the same function a hash exchange uses, so a scan of a KEY table is already hash-partitioned
//! on its distkey. [`hash_fingerprint`] detects a change of that function.

use std::sync::Arc;

use basalt_catalog::{DistStyle, SliceId, TableMeta, Topology};
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::common::hash_utils::create_hashes;
use datafusion::physical_plan::repartition::REPARTITION_RANDOM_STATE;

use crate::StorageError;

/// Fingerprint of the placement hash: hashes of fixed probe values. Stored per table at
/// creation; if a new build hashes differently, co-location is no longer guaranteed.
pub fn hash_fingerprint() -> u64 {
    let ints: ArrayRef = Arc::new(Int64Array::from(vec![0, 1, 42, -7, i64::MAX]));
    let strs: ArrayRef = Arc::new(StringArray::from(vec!["", "a", "basalt", "redshift", "é"]));
    let mut acc = 0u64;
    for arr in [ints, strs] {
        let mut hashes = vec![0u64; arr.len()];
        if create_hashes(&[arr], REPARTITION_RANDOM_STATE.random_state(), &mut hashes).is_ok() {
            for h in hashes {
                acc = acc.rotate_left(7) ^ h;
            }
        }
    }
    acc
}

/// The slices a table's rows live on: every slice for EVEN/KEY, the first slice of each node
/// for ALL (and AUTO, which starts as ALL).
pub fn target_slices(table: &TableMeta, topology: &Topology) -> Vec<SliceId> {
    match table.effective_diststyle() {
        DistStyle::All | DistStyle::Auto => topology.first_slices().collect(),
        DistStyle::Even | DistStyle::Key => topology.slices().collect(),
    }
}

/// Split a batch (logical column order) into per-slice batches.
///
/// `rr_start` is the round-robin position for EVEN; it is advanced by the number of rows.
pub fn split_by_slice(
    table: &TableMeta,
    topology: &Topology,
    batch: &RecordBatch,
    rr_start: &mut u64,
) -> Result<Vec<(SliceId, RecordBatch)>, StorageError> {
    let n = topology.slice_count() as u64;
    let rows = batch.num_rows();
    if rows == 0 {
        return Ok(vec![]);
    }
    match table.effective_diststyle() {
        DistStyle::All | DistStyle::Auto => Ok(topology
            .first_slices()
            .map(|s| (s, batch.clone()))
            .collect()),
        DistStyle::Even => {
            let mut idx: Vec<Vec<u32>> = vec![vec![]; n as usize];
            for r in 0..rows {
                idx[((*rr_start + r as u64) % n) as usize].push(r as u32);
            }
            *rr_start += rows as u64;
            take_groups(batch, idx)
        }
        DistStyle::Key => {
            let key = table
                .distkey_index()
                .expect("KEY table has a distkey column (checked at CREATE TABLE)");
            let mut hashes = vec![0u64; rows];
            create_hashes(
                &[batch.column(key).clone()],
                REPARTITION_RANDOM_STATE.random_state(),
                &mut hashes,
            )?;
            let mut idx: Vec<Vec<u32>> = vec![vec![]; n as usize];
            for (r, h) in hashes.iter().enumerate() {
                idx[(h % n) as usize].push(r as u32);
            }
            take_groups(batch, idx)
        }
    }
}

fn take_groups(
    batch: &RecordBatch,
    idx: Vec<Vec<u32>>,
) -> Result<Vec<(SliceId, RecordBatch)>, StorageError> {
    let mut out = vec![];
    for (slice, rows) in idx.into_iter().enumerate() {
        if rows.is_empty() {
            continue;
        }
        let b = if rows.len() == batch.num_rows() {
            batch.clone()
        } else {
            take_record_batch(batch, &UInt32Array::from(rows))?
        };
        out.push((SliceId(slice as u32), b));
    }
    Ok(out)
}
