//! Placing rows on slices by DISTSTYLE.
//!
//! KEY uses DataFusion's repartition hash (`REPARTITION_RANDOM_STATE`), the same function a
//! hash exchange uses, so a scan of a KEY table is already hash-partitioned on its distkey.
//! [`hash_fingerprint`] detects a change of that function or of [`key_slice`].
//!
//! A hash exchange into a stage of T tasks with V partitions each sends a row of hash h to
//! partition `h % (T·V)`, which task `(h % (T·V)) / V` reads. KEY rows are placed the same way,
//! with V = [`placement_partitions`]: on a node with one slice, V is 2 (a task's partition
//! count), and the node's slice holds both of its "virtual slices". Rows of equal key then meet
//! on one node whether they were placed or sent by an exchange.

use std::sync::Arc;

use basalt_catalog::{DistStyle, SliceId, TableMeta, Topology};
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::common::hash_utils::create_hashes;
use datafusion::physical_plan::repartition::REPARTITION_RANDOM_STATE;

use crate::StorageError;

/// Version of the hash → slice mapping ([`key_slice`]), part of [`hash_fingerprint`]. 2: a node
/// with one slice places rows as two virtual slices.
const PLACEMENT_SCHEME: u64 = 2;

/// Fingerprint of the placement hash: hashes of fixed probe values and the placement scheme.
/// Stored per table at creation; if a new build places differently, co-location is no longer
/// guaranteed and plans redistribute the table's rows.
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
    acc.rotate_left(7) ^ PLACEMENT_SCHEME
}

/// The partitions per task of a stage that reads slices (DataFusion's target partitions): one
/// per slice, and at least 2, since DataFusion plans no exchange for a single partition.
pub fn placement_partitions(topology: &Topology) -> u64 {
    u64::from(topology.slices_per_node.max(2))
}

/// The slice a KEY row of hash `h` lives on: the node a hash exchange would send it to (see
/// the module comment), and on that node the slice of its exchange partition.
pub fn key_slice(h: u64, topology: &Topology) -> SliceId {
    let v = placement_partitions(topology);
    let virtual_slice = h % (u64::from(topology.nodes) * v);
    let node = virtual_slice / v;
    let slice = if topology.slices_per_node == 1 {
        node
    } else {
        virtual_slice
    };
    debug_assert_eq!(
        u64::from(topology.node_of(SliceId(slice as u32))),
        node,
        "a KEY row's slice is on the node its exchange partition goes to"
    );
    SliceId(slice as u32)
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
            for (r, &h) in hashes.iter().enumerate() {
                idx[key_slice(h, topology).0 as usize].push(r as u32);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A KEY row's slice is on the node, and in the partition, that a hash exchange into a
    /// stage of one task per node sends a row of the same hash to.
    #[test]
    fn key_rows_live_where_an_exchange_sends_their_key() {
        for (nodes, slices_per_node) in [(1, 1), (2, 1), (3, 1), (2, 2), (3, 2), (2, 3)] {
            let topology = Topology {
                nodes,
                slices_per_node,
            };
            let v = placement_partitions(&topology);
            let mut used = std::collections::BTreeSet::new();
            for h in (0..10_000u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) {
                let slice = key_slice(h, &topology);
                let exchange_partition = h % (u64::from(nodes) * v);
                assert_eq!(
                    u64::from(topology.node_of(slice)),
                    exchange_partition / v,
                    "{topology}: hash {h}"
                );
                if slices_per_node > 1 {
                    assert_eq!(u64::from(slice.0 % slices_per_node), exchange_partition % v);
                }
                used.insert(slice);
            }
            assert_eq!(used.len() as u32, topology.slice_count(), "{topology}");
        }
    }
}
