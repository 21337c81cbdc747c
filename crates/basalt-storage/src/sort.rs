//! Row order inside segments: the table's sort key.
//!
//! A **COMPOUND** key sorts rows lexicographically by its columns: zone maps of the leading
//! column are narrow, later columns only narrow within runs of equal leading values. An
//! **INTERLEAVED** key (at most 8 columns) sorts rows in **z-order** (Morton order), which
//! gives every key column the same weight, so a predicate on any one of them skips blocks:
//!
//! 1. each key column's values become their dense rank among the rows being sorted (0 for the
//!    smallest; NULLs first, where the compound order puts them);
//! 2. each rank is scaled to `bits = min(64 / columns, 32)` bits, so that every column spans
//!    its whole range whatever its number of distinct values (a column of two values gets its
//!    top bit, one with more than `2^bits` values is bucketed);
//! 3. the bits of all columns are interleaved into one `u64`, most significant first and
//!    column 0's bit first in each round;
//! 4. rows sort by that key, ties in the compound order of the key columns.
//!
//! ```text
//!  a rank (2 bits): a1 a0     b rank: b1 b0     key: a1 b1 a0 b0
//! ```
//!
//! The ranks come from the rows being sorted: a new segment's own rows, or a whole slice when
//! VACUUM sorts it (REINDEX re-analyzing the distribution of the key values).

use std::sync::Arc;

use basalt_catalog::{SortKeyKind, TableMeta};
use datafusion::arrow::array::{
    Array, ArrayRef, RecordBatch, UInt32Array, UInt64Array, make_comparator,
};
use datafusion::arrow::compute::{SortOptions, sort_to_indices, take_record_batch};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};

use crate::StorageError;

/// How every sort key column orders its values: ascending, NULLs first (Arrow's default, which
/// the compound order has always used).
const KEY_ORDER: SortOptions = SortOptions {
    descending: false,
    nulls_first: true,
};

/// Most bits of the z-order key one column gets: ranks of at most `u32::MAX` rows fit in 32.
const MAX_BITS_PER_COLUMN: u32 = 32;

/// The permutation that puts `batch`'s rows (logical column order) in the table's sort-key
/// order, or `None` when there is nothing to sort (no sort key, fewer than two rows).
pub(crate) fn sort_indices(
    table: &TableMeta,
    batch: &RecordBatch,
) -> Result<Option<UInt32Array>, StorageError> {
    let key = table.sortkey_indices();
    if key.is_empty() || batch.num_rows() < 2 {
        return Ok(None);
    }
    let columns: Vec<ArrayRef> = key.iter().map(|&i| batch.column(i).clone()).collect();
    let interleaved = table
        .sortkey
        .as_ref()
        .is_some_and(|s| s.kind == SortKeyKind::Interleaved);
    let indices = if interleaved && columns.len() > 1 {
        let z = z_order_keys(&columns)?;
        compound_indices(Some(Arc::new(z)), &columns)?
    } else {
        // One interleaved column is its own z-order: plain ascending order.
        compound_indices(None, &columns)?
    };
    Ok(Some(indices))
}

/// The table's sort-key order as a DataFusion ordering over its logical columns, when that
/// order is lexicographic (a compound key, or an interleaved key of one column): segments in
/// that order can be merged as streams. `None` without a sort key, and for an interleaved key
/// of several columns, whose z-order ranks each value among all the rows sorted together.
pub(crate) fn merge_ordering(table: &TableMeta) -> Option<LexOrdering> {
    let key = table.sortkey_indices();
    let interleaved = table
        .sortkey
        .as_ref()
        .is_some_and(|s| s.kind == SortKeyKind::Interleaved);
    if interleaved && key.len() > 1 {
        return None;
    }
    let schema = table.arrow_schema();
    LexOrdering::new(key.into_iter().map(|i| {
        let name = schema.field(i).name();
        PhysicalSortExpr::new(Arc::new(Column::new(name, i)), KEY_ORDER)
    }))
}

/// `batch` in the table's sort-key order.
pub(crate) fn sort_batch(
    table: &TableMeta,
    batch: &RecordBatch,
) -> Result<RecordBatch, StorageError> {
    Ok(match sort_indices(table, batch)? {
        Some(indices) => take_record_batch(batch, &indices)?,
        None => batch.clone(),
    })
}

/// Lexicographic order by `lead` (if any), then `columns`.
fn compound_indices(
    lead: Option<ArrayRef>,
    columns: &[ArrayRef],
) -> Result<UInt32Array, ArrowError> {
    // One column: a plain sort (a lexicographic sort compares through a comparator per row
    // pair; a primitive column sorts its values directly).
    if lead.is_none()
        && let [column] = columns
    {
        return sort_to_indices(column, Some(KEY_ORDER), None);
    }
    // Several columns: each row's key columns as one byte string that compares as the
    // lexicographic order does (Arrow's row format), sorted with one memcmp per comparison
    // rather than a comparator call per column.
    let keys: Vec<ArrayRef> = lead.into_iter().chain(columns.iter().cloned()).collect();
    let converter = RowConverter::new(
        keys.iter()
            .map(|k| SortField::new_with_options(k.data_type().clone(), KEY_ORDER))
            .collect(),
    )?;
    let rows = converter.convert_columns(&keys)?;
    let n = rows.num_rows();
    // Keys of at most 16 bytes, all of one length (fixed-width columns: a date and a bigint
    // take 14), compare as big-endian u128s: the sort then compares integers inline instead
    // of calling memcmp (which took most of a sort by lineitem's key).
    let width = if n == 0 {
        0
    } else {
        rows.row(0).as_ref().len()
    };
    if width <= 16 && (0..n).all(|i| rows.row(i).as_ref().len() == width) {
        let mut keyed: Vec<(u128, u32)> = (0..n)
            .map(|i| {
                let mut key = [0u8; 16];
                key[..width].copy_from_slice(rows.row(i).as_ref());
                (u128::from_be_bytes(key), i as u32)
            })
            .collect();
        keyed.sort_unstable();
        return Ok(UInt32Array::from_iter_values(
            keyed.into_iter().map(|(_, i)| i),
        ));
    }
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_unstable_by(|&a, &b| rows.row(a as usize).cmp(&rows.row(b as usize)));
    Ok(UInt32Array::from(order))
}

/// Each row's z-order key over `columns` (two or more of equal length; see the module doc).
fn z_order_keys(columns: &[ArrayRef]) -> Result<UInt64Array, ArrowError> {
    let rows = columns[0].len();
    let ncols = columns.len() as u32;
    let bits = (u64::BITS / ncols).min(MAX_BITS_PER_COLUMN);
    let mut keys = vec![0u64; rows];
    let mut ranks = vec![0u32; rows];
    for (j, values) in columns.iter().enumerate() {
        let distinct = dense_ranks(values.as_ref(), &mut ranks)?;
        // Column j's bit is the (j+1)-th of each round of `ncols` bits, counting from the top.
        let lane = ncols - 1 - j as u32;
        for (key, &rank) in keys.iter_mut().zip(&ranks) {
            // rank < distinct <= 2^32 and bits <= 32, so the shift stays inside a u64 and the
            // quotient below 2^bits.
            let scaled = (u64::from(rank) << bits) / distinct;
            *key |= spread(scaled, bits, ncols) << lane;
        }
    }
    Ok(UInt64Array::from(keys))
}

/// Bit `k` of `v` (for `k < bits`) moved to bit `k * stride`.
fn spread(v: u64, bits: u32, stride: u32) -> u64 {
    (0..bits).fold(0, |out, k| out | (((v >> k) & 1) << (k * stride)))
}

/// Write each row's dense rank in `values` (0 for the smallest, NULLs first, equal values
/// equal ranks) into `ranks`; returns the number of distinct values (NULL counting as one).
fn dense_ranks(values: &dyn Array, ranks: &mut [u32]) -> Result<u64, ArrowError> {
    let order = sort_to_indices(values, Some(KEY_ORDER), None)?;
    let cmp = make_comparator(values, values, KEY_ORDER)?;
    let Some((&first, rest)) = order.values().split_first() else {
        return Ok(0);
    };
    let (mut prev, mut rank) = (first as usize, 0u32);
    ranks[prev] = 0;
    for &row in rest {
        let row = row as usize;
        if cmp(prev, row).is_ne() {
            rank += 1;
        }
        ranks[row] = rank;
        prev = row;
    }
    Ok(u64::from(rank) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ComputeNode, ScanCounters, ScanRequest};
    use basalt_catalog::{
        ColumnMeta, Constraints, DistStyle, Encoding, NodeId, SegmentMeta, SliceId, SortKey,
        SqlType, TableData, TableId,
    };
    use datafusion::arrow::array::{
        AsArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
        Int16Array, Int32Array, Int64Array, StringArray, Time64MicrosecondArray,
        TimestampMicrosecondArray,
    };
    use datafusion::arrow::compute::{concat_batches, take};
    use datafusion::arrow::datatypes::Int32Type;
    use datafusion::execution::TaskContext;
    use datafusion::logical_expr::{Expr, col, lit};

    fn table(columns: &[(&str, SqlType)], kind: SortKeyKind, key: &[&str]) -> TableMeta {
        TableMeta {
            id: TableId(100_000),
            schema: "public".into(),
            name: "t".into(),
            columns: columns
                .iter()
                .enumerate()
                .map(|(id, (name, ty))| ColumnMeta {
                    id: id as u32,
                    name: (*name).into(),
                    ty: *ty,
                    nullable: true,
                    default: None,
                    identity: None,
                    encoding: Encoding::Auto,
                })
                .collect(),
            next_column_id: columns.len() as u32,
            diststyle: DistStyle::Even,
            distkey: None,
            sortkey: Some(SortKey {
                kind,
                columns: key.iter().map(|c| (*c).into()).collect(),
            }),
            encode_auto: true,
            backup: true,
            temporary: false,
            constraints: Constraints::default(),
            owner: "basalt".into(),
            created_at: "2026-01-01 00:00:00".into(),
            hash_fingerprint: 0,
            identity_next: Default::default(),
            version: 0,
            data: TableData::default(),
            stats: None,
            rows_changed: 0,
            auto_style: None,
            loaded: Default::default(),
        }
    }

    fn grid_table(kind: SortKeyKind) -> TableMeta {
        table(
            &[("a", SqlType::Integer), ("b", SqlType::Integer)],
            kind,
            &["a", "b"],
        )
    }

    /// Every `(a, b)` with `a, b < side` (a power of two), in a scrambled order.
    fn grid(table: &TableMeta, side: i32) -> RecordBatch {
        let n = side * side;
        // 40503 is odd, so i -> i * 40503 mod n (n a power of two) is a permutation.
        let cell = |i: i32| (i64::from(i) * 40503 % i64::from(n)) as i32;
        let a: Int32Array = (0..n).map(|i| cell(i) / side).collect();
        let b: Int32Array = (0..n).map(|i| cell(i) % side).collect();
        RecordBatch::try_new(table.arrow_schema(), vec![Arc::new(a), Arc::new(b)]).unwrap()
    }

    /// Chunks of `chunk` consecutive rows whose min/max (a zone map) admit `value`.
    fn chunks_touched(values: &ArrayRef, chunk: usize, value: i32) -> usize {
        values
            .as_primitive::<Int32Type>()
            .values()
            .chunks(chunk)
            .filter(|c| c.iter().min() <= Some(&value) && Some(&value) <= c.iter().max())
            .count()
    }

    fn sorted(table: &TableMeta, batch: &RecordBatch) -> RecordBatch {
        sort_batch(table, batch).unwrap()
    }

    /// Both ways of sorting by several columns (integer keys packed into a u128, and the
    /// row format compared byte by byte for wider keys) give the lexicographic order, NULLs
    /// first, negatives before positives.
    #[test]
    fn compound_order_is_lexicographic_for_narrow_and_wide_keys() {
        use datafusion::arrow::array::{Int64Array, StringArray};
        use datafusion::arrow::compute::{SortColumn, lexsort_to_indices};
        let n = 5000u32;
        let a: ArrayRef = Arc::new(Int32Array::from_iter(
            (0..n).map(|i| (i % 7 != 0).then_some((i * 7919 % 61) as i32 - 30)),
        ));
        let b: ArrayRef =
            Arc::new(Int64Array::from_iter((0..n).map(|i| {
                (i % 11 != 0).then_some(i64::from(i * 104729 % 997) - 500)
            })));
        let c: ArrayRef = Arc::new(StringArray::from_iter(
            (0..n).map(|i| (i % 13 != 0).then(|| format!("s{}", i * 31 % 17))),
        ));
        for keys in [
            vec![a.clone(), b.clone()],
            vec![a.clone(), c.clone(), b.clone()],
        ] {
            let expected = lexsort_to_indices(
                &keys
                    .iter()
                    .map(|k| SortColumn {
                        values: k.clone(),
                        options: Some(KEY_ORDER),
                    })
                    .collect::<Vec<_>>(),
                None,
            )
            .unwrap();
            let got = compound_indices(None, &keys).unwrap();
            for k in &keys {
                assert_eq!(
                    take(k.as_ref(), &got, None).unwrap().as_ref(),
                    take(k.as_ref(), &expected, None).unwrap().as_ref()
                );
            }
        }
    }

    #[test]
    fn interleaved_order_narrows_every_key_column() {
        // 65,536 rows in 16 chunks of 4,096: z-order makes each chunk a 64 x 64 square of the
        // grid, so `a = v` and `b = v` each meet 4 chunks; compound order makes a chunk 16
        // values of `a` by all 256 of `b`.
        let chunk = 4096;
        let z = grid_table(SortKeyKind::Interleaved);
        let z = sorted(&z, &grid(&z, 256));
        let c = grid_table(SortKeyKind::Compound);
        let c = sorted(&c, &grid(&c, 256));
        for v in [0, 7, 100, 255] {
            assert_eq!(
                chunks_touched(z.column(0), chunk, v),
                4,
                "interleaved a = {v}"
            );
            assert_eq!(
                chunks_touched(z.column(1), chunk, v),
                4,
                "interleaved b = {v}"
            );
            assert_eq!(chunks_touched(c.column(0), chunk, v), 1, "compound a = {v}");
            assert_eq!(
                chunks_touched(c.column(1), chunk, v),
                16,
                "compound b = {v}"
            );
        }
        // The first rows walk the z curve: (0,0) (0,1) (1,0) (1,1) (0,2) ...
        let first = |b: &RecordBatch, i: usize| {
            b.column(i).as_primitive::<Int32Type>().values()[..5].to_vec()
        };
        assert_eq!(first(&z, 0), [0, 0, 1, 1, 0]);
        assert_eq!(first(&z, 1), [0, 1, 0, 1, 2]);
    }

    async fn scan(
        node: &ComputeNode,
        table: &TableMeta,
        segments: &[SegmentMeta],
        filter: Option<Expr>,
    ) -> (RecordBatch, ScanCounters) {
        let counters = ScanCounters::default();
        let stream = node
            .scan(
                ScanRequest {
                    table: Arc::new(table.clone()),
                    slice: SliceId(0),
                    segments: segments.to_vec(),
                    projection: None,
                    filters: filter.into_iter().collect(),
                    limit: None,
                    row_ids: false,
                    counters: Some(counters.clone()),
                },
                Arc::new(TaskContext::default()),
            )
            .unwrap();
        let batches: Vec<RecordBatch> = futures::TryStreamExt::try_collect(stream).await.unwrap();
        let all = concat_batches(&table.arrow_schema(), batches.iter()).unwrap();
        (all, counters)
    }

    #[tokio::test]
    async fn interleaved_segment_blocks_prune_on_every_key_column() {
        // 256 x 256 rows: one segment of 4 blocks (row groups of 16,384 rows).
        assert_eq!(crate::ROWS_PER_BLOCK, 16 * 1024);
        let dir = tempfile::tempdir().unwrap();
        let node = ComputeNode::open(NodeId(0), dir.path(), &[SliceId(0)]).unwrap();
        // (kind, blocks read for a = 7, for b = 7)
        for (kind, a_blocks, b_blocks) in [
            (SortKeyKind::Interleaved, 2, 2),
            (SortKeyKind::Compound, 1, 4),
        ] {
            let t = grid_table(kind);
            let seg = node
                .slice(SliceId(0))
                .unwrap()
                .write_segment(&t, &grid(&t, 256))
                .unwrap();
            for (column, blocks) in [("a", a_blocks), ("b", b_blocks)] {
                let (rows, counters) = scan(
                    &node,
                    &t,
                    std::slice::from_ref(&seg),
                    Some(col(column).eq(lit(7))),
                )
                .await;
                assert!(rows.num_rows() >= 256, "{kind:?} {column}");
                assert_eq!(
                    counters.blocks_read.value(),
                    blocks,
                    "{kind:?} {column} = 7"
                );
                assert_eq!(
                    counters.blocks_skipped.value(),
                    4 - blocks,
                    "{kind:?} {column} = 7"
                );
            }
        }
    }

    #[test]
    fn interleaved_order_ranks_strings_and_nulls_densely() {
        let t = table(
            &[("s", SqlType::Varchar(10)), ("n", SqlType::Integer)],
            SortKeyKind::Interleaved,
            &["s", "n"],
        );
        let (mut s, mut n) = (vec![], vec![]);
        // Each of the 9 pairs three times, in a scrambled order: ranks are dense (3 values per
        // column, NULL first), so duplicates do not shift them.
        for i in 0..27 {
            let cell = i * 5 % 27 % 9;
            s.push([None, Some("x"), Some("y")][cell / 3]);
            n.push([None, Some(1), Some(2)][cell % 3]);
        }
        let batch = RecordBatch::try_new(
            t.arrow_schema(),
            vec![
                Arc::new(StringArray::from(s)),
                Arc::new(Int32Array::from(n)),
            ],
        )
        .unwrap();
        let out = sorted(&t, &batch);
        let pairs: Vec<(Option<&str>, Option<i32>)> = out
            .column(0)
            .as_string::<i32>()
            .iter()
            .zip(out.column(1).as_primitive::<Int32Type>().iter())
            .step_by(3)
            .collect();
        // Ranks 0, 1, 2 scale to 00.., 01.., 10.. in their top bits; interleaved s1 n1 s0 n0.
        assert_eq!(
            pairs,
            [
                (None, None),
                (None, Some(1)),
                (Some("x"), None),
                (Some("x"), Some(1)),
                (None, Some(2)),
                (Some("x"), Some(2)),
                (Some("y"), None),
                (Some("y"), Some(1)),
                (Some("y"), Some(2)),
            ]
        );
        for i in 0..27 {
            assert_eq!(
                out.slice(i, 1),
                out.slice(i / 3 * 3, 1),
                "runs of equal pairs"
            );
        }
    }

    #[test]
    fn dense_ranks_put_nulls_first() {
        let values = StringArray::from(vec![Some("b"), None, Some("a"), Some("b"), None]);
        let mut ranks = vec![9; 5];
        assert_eq!(dense_ranks(&values, &mut ranks).unwrap(), 3);
        assert_eq!(ranks, [2, 0, 1, 2, 0]);
        let floats = Float64Array::from(vec![Some(1.5), Some(-0.5), None, Some(1.5)]);
        assert_eq!(dense_ranks(&floats, &mut ranks[..4]).unwrap(), 3);
        assert_eq!(ranks[..4], [2, 1, 0, 2]);
    }

    #[test]
    fn one_interleaved_column_is_compound_order() {
        let values: Int64Array = (0..5000i64)
            .map(|i| (i % 7 != 0).then_some((i * 7919) % 3001 - 1500))
            .collect();
        let z = table(&[("a", SqlType::BigInt)], SortKeyKind::Interleaved, &["a"]);
        let c = table(&[("a", SqlType::BigInt)], SortKeyKind::Compound, &["a"]);
        let batch = RecordBatch::try_new(z.arrow_schema(), vec![Arc::new(values)]).unwrap();
        assert_eq!(sorted(&z, &batch), sorted(&c, &batch));
    }

    #[test]
    fn every_key_type_z_orders() {
        // With the second key column constant, z-order is the first column's own order, for
        // every column type a table can have.
        let ints: Vec<Option<i32>> = (0..300)
            .map(|i| (i % 11 != 0).then_some((i * 37) % 101 - 50))
            .collect();
        let cases: Vec<(SqlType, ArrayRef)> = vec![
            (
                SqlType::SmallInt,
                Arc::new(Int16Array::from_iter(
                    ints.iter().map(|v| v.map(|v| v as i16)),
                )),
            ),
            (SqlType::Integer, Arc::new(Int32Array::from(ints.clone()))),
            (
                SqlType::BigInt,
                Arc::new(Int64Array::from_iter(ints.iter().map(|v| v.map(i64::from)))),
            ),
            (
                SqlType::Decimal {
                    precision: 12,
                    scale: 2,
                },
                Arc::new(
                    Decimal128Array::from_iter(ints.iter().map(|v| v.map(|v| i128::from(v) * 7)))
                        .with_precision_and_scale(12, 2)
                        .unwrap(),
                ),
            ),
            (
                SqlType::Real,
                Arc::new(Float32Array::from_iter(
                    ints.iter().map(|v| v.map(|v| v as f32 / 3.0)),
                )),
            ),
            (
                SqlType::Double,
                Arc::new(Float64Array::from_iter(
                    ints.iter().map(|v| v.map(|v| f64::from(v) / 3.0)),
                )),
            ),
            (
                SqlType::Boolean,
                Arc::new(BooleanArray::from_iter(
                    ints.iter().map(|v| v.map(|v| v % 2 == 0)),
                )),
            ),
            (
                SqlType::Char(8),
                Arc::new(StringArray::from_iter(
                    ints.iter().map(|v| v.map(|v| format!("c{v}"))),
                )),
            ),
            (
                SqlType::Varchar(8),
                Arc::new(StringArray::from_iter(
                    ints.iter().map(|v| v.map(|v| format!("{v}x"))),
                )),
            ),
            (SqlType::Date, Arc::new(Date32Array::from(ints.clone()))),
            (
                SqlType::Timestamp,
                Arc::new(TimestampMicrosecondArray::from_iter(
                    ints.iter().map(|v| v.map(|v| i64::from(v) * 1_000_003)),
                )),
            ),
            (
                SqlType::TimestampTz,
                Arc::new(
                    TimestampMicrosecondArray::from_iter(
                        ints.iter()
                            .map(|v| v.map(|v| i64::from(v) * 86_400_000_000)),
                    )
                    .with_timezone("UTC"),
                ),
            ),
            (
                SqlType::Time,
                Arc::new(Time64MicrosecondArray::from_iter(
                    ints.iter()
                        .map(|v| v.map(|v| i64::from(v + 50) * 60_000_000)),
                )),
            ),
        ];
        for (ty, values) in cases {
            let columns = [("x", ty), ("k", SqlType::Integer)];
            let z = table(&columns, SortKeyKind::Interleaved, &["x", "k"]);
            let c = table(&columns, SortKeyKind::Compound, &["x", "k"]);
            let k: ArrayRef = Arc::new(Int32Array::from(vec![1; values.len()]));
            let batch = RecordBatch::try_new(z.arrow_schema(), vec![values, k]).unwrap();
            let z_order = sort_indices(&z, &batch).unwrap().unwrap();
            let c_order = sort_indices(&c, &batch).unwrap().unwrap();
            assert_eq!(
                take(batch.column(0), &z_order, None).unwrap().as_ref(),
                take(batch.column(0), &c_order, None).unwrap().as_ref(),
                "{ty:?}"
            );
        }
    }

    #[test]
    fn nothing_to_sort() {
        let t = grid_table(SortKeyKind::Interleaved);
        let one = grid(&t, 1);
        assert!(sort_indices(&t, &one).unwrap().is_none());
        let mut unsorted = t.clone();
        unsorted.sortkey = None;
        assert!(sort_indices(&unsorted, &grid(&t, 4)).unwrap().is_none());
    }

    #[tokio::test]
    async fn vacuum_sort_z_orders_the_whole_slice() {
        let dir = tempfile::tempdir().unwrap();
        let node = ComputeNode::open(NodeId(0), dir.path(), &[SliceId(0)]).unwrap();
        let t = grid_table(SortKeyKind::Interleaved);
        let all = grid(&t, 64);
        let store = node.slice(SliceId(0)).unwrap();
        let segments = vec![
            store.write_segment(&t, &all.slice(0, 1000)).unwrap(),
            store
                .write_segment(&t, &all.slice(1000, all.num_rows() - 1000))
                .unwrap(),
        ];
        let out = node
            .rewrite(Arc::new(t.clone()), SliceId(0), segments, true)
            .await
            .unwrap();
        assert!(out.iter().all(|s| s.sorted && s.sorted_region));
        let (rows, _) = scan(&node, &t, &out, None).await;
        assert_eq!(rows, sorted(&t, &all));
    }

    #[tokio::test]
    async fn vacuum_sort_merges_compound_segments_into_one_order() {
        let dir = tempfile::tempdir().unwrap();
        let node = ComputeNode::open(NodeId(0), dir.path(), &[SliceId(0)]).unwrap();
        let t = table(
            &[("s", SqlType::Varchar(8)), ("a", SqlType::Integer)],
            SortKeyKind::Compound,
            &["s", "a"],
        );
        // Unique (s, a) pairs, NULL strings among them, in a scrambled order.
        let n = 3000;
        let cell = |i: i32| i * 1237 % n;
        let s: StringArray = (0..n)
            .map(|i| (cell(i) % 7 != 0).then(|| format!("k{:02}", cell(i) % 13)))
            .collect();
        let a: Int32Array = (0..n).map(cell).collect();
        let all = RecordBatch::try_new(t.arrow_schema(), vec![Arc::new(s), Arc::new(a)]).unwrap();
        let store = node.slice(SliceId(0)).unwrap();
        let segments = vec![
            store.write_segment(&t, &all.slice(0, 1000)).unwrap(),
            store.write_segment(&t, &all.slice(1000, 1500)).unwrap(),
            store.write_segment(&t, &all.slice(2500, 500)).unwrap(),
        ];
        assert!(merge_ordering(&t).is_some());
        let out = node
            .rewrite(Arc::new(t.clone()), SliceId(0), segments, true)
            .await
            .unwrap();
        assert_eq!(out.len(), 1);
        assert!(out[0].sorted && out[0].sorted_region);
        let (rows, _) = scan(&node, &t, &out, None).await;
        assert_eq!(rows, sorted(&t, &all));
    }

    #[tokio::test]
    async fn ordered_segment_keeps_the_given_order() {
        let dir = tempfile::tempdir().unwrap();
        let node = ComputeNode::open(NodeId(0), dir.path(), &[SliceId(0)]).unwrap();
        let t = grid_table(SortKeyKind::Interleaved);
        let rows = grid(&t, 16);
        let seg = node
            .slice(SliceId(0))
            .unwrap()
            .write_ordered_segment(&t, &rows)
            .unwrap();
        let (read, _) = scan(&node, &t, &[seg], None).await;
        assert_eq!(read, rows);
        assert_ne!(read, sorted(&t, &rows));
    }

    #[tokio::test]
    async fn footers_and_page_indexes_are_read_once_per_segment() {
        let dir = tempfile::tempdir().unwrap();
        let node = ComputeNode::open(NodeId(0), dir.path(), &[SliceId(0)]).unwrap();
        let t = grid_table(SortKeyKind::Compound);
        let seg = node
            .slice(SliceId(0))
            .unwrap()
            .write_segment(&t, &grid(&t, 256))
            .unwrap();
        let filter = || Some(col("a").eq(lit(7)));
        let segs = std::slice::from_ref(&seg);
        let cached = || node.cached_footer(SliceId(0), t.id, &seg.file);
        assert_eq!(cached(), None);
        let (first_rows, first) = scan(&node, &t, segs, filter()).await;
        // The first scan parsed the footer and the page index, and cached both: later scans
        // find the page index there rather than reading it from the file again.
        assert_eq!(cached(), Some(true));
        let (again_rows, again) = scan(&node, &t, segs, filter()).await;
        assert_eq!(first_rows, again_rows);
        let sevens = first_rows
            .column(0)
            .as_primitive::<Int32Type>()
            .iter()
            .filter(|a| *a == Some(7))
            .count();
        assert_eq!(sevens, 256);
        assert_eq!(first.bytes.value(), again.bytes.value());
        assert_eq!(first.blocks_read.value(), 1);
        // The page index skips inside the one block read: only the page of 8,192 rows that
        // holds a = 7 is decoded, not the block's 16,384.
        assert_eq!(again.rows_pre_filter.value(), 8192);
        node.remove(SliceId(0), t.id, std::slice::from_ref(&seg.file));
        assert_eq!(cached(), None);
    }
}
