//! Redshift's storage system tables, computed from the catalog the session sees:
//! `SVV_TABLE_INFO`, `PG_TABLE_DEF` and `STV_SLICES` (served through the pg_catalog overlay,
//! so clients name them without a schema).

use std::sync::Arc;

use basalt_catalog::{Encoding, SqlType, TableMeta, Topology};
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{Result, ScalarValue};

use crate::vacuum::{SliceRows, VacuumActivity, time_remaining};

/// Redshift's block size, the unit of `SVV_TABLE_INFO.size`.
const BLOCK_BYTES: u64 = 1 << 20;

pub(crate) fn svv_table_info_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("database", DataType::Utf8, true),
        Field::new("schema", DataType::Utf8, true),
        Field::new("table_id", DataType::Int32, true),
        Field::new("table", DataType::Utf8, true),
        Field::new("encoded", DataType::Utf8, true),
        Field::new("diststyle", DataType::Utf8, true),
        Field::new("sortkey1", DataType::Utf8, true),
        Field::new("max_varchar", DataType::Int32, true),
        Field::new("sortkey1_enc", DataType::Utf8, true),
        Field::new("sortkey_num", DataType::Int32, true),
        Field::new("size", DataType::Int64, true),
        Field::new("pct_used", DataType::Float64, true),
        Field::new("empty", DataType::Int64, true),
        Field::new("unsorted", DataType::Float64, true),
        Field::new("stats_off", DataType::Float64, true),
        Field::new("tbl_rows", DataType::Float64, true),
        Field::new("skew_sortkey1", DataType::Float64, true),
        Field::new("skew_rows", DataType::Float64, true),
        Field::new("estimated_visible_rows", DataType::Float64, true),
        Field::new("risk_event", DataType::Utf8, true),
        Field::new("vacuum_sort_benefit", DataType::Float64, true),
        Field::new("create_time", DataType::Utf8, true),
    ]))
}

/// One row per table with data (Redshift omits empty tables). `tables`: (oid, table).
pub(crate) fn svv_table_info(db: &str, tables: &[(i32, Arc<TableMeta>)]) -> Result<RecordBatch> {
    let rows: Vec<Vec<ScalarValue>> = tables
        .iter()
        .filter(|(_, t)| t.data.slices.values().any(|s| !s.is_empty()))
        .map(|(oid, t)| {
            let per_slice: Vec<SliceRows> = t
                .data
                .slices
                .values()
                .map(|segs| SliceRows::of(t, segs))
                .collect();
            let stored: u64 = per_slice.iter().map(|r| r.stored).sum();
            let live: u64 = per_slice.iter().map(|r| r.live).sum();
            let unsorted: u64 = per_slice.iter().map(|r| r.unsorted).sum();
            let bytes = t.data.byte_count();
            let sortkey = t
                .sortkey
                .as_ref()
                .map(|k| k.columns.clone())
                .unwrap_or_default();
            let first_sort = sortkey.first().and_then(|c| t.column(c));
            let max_varchar = t
                .columns
                .iter()
                .filter_map(|c| match c.ty {
                    SqlType::Varchar(n) => Some(n as i32),
                    _ => None,
                })
                .max();
            let counts: Vec<u64> = per_slice.iter().map(|r| r.stored).collect();
            let skew = match (counts.iter().max(), counts.iter().min()) {
                (Some(&max), Some(&min)) if min > 0 => Some(max as f64 / min as f64),
                _ => None,
            };
            let encoded = if t.encode_auto {
                "Y, AUTO(ENCODE)"
            } else if t.columns.iter().any(|c| c.encoding != Encoding::Raw) {
                "Y"
            } else {
                "N"
            };
            vec![
                ScalarValue::from(db),
                ScalarValue::from(t.schema.as_str()),
                ScalarValue::Int32(Some(*oid)),
                ScalarValue::from(t.name.as_str()),
                ScalarValue::from(encoded),
                ScalarValue::from(t.diststyle_text()),
                ScalarValue::Utf8(first_sort.map(|c| c.name.clone())),
                ScalarValue::Int32(max_varchar),
                ScalarValue::Utf8(first_sort.map(|c| c.encoding.as_str().to_string())),
                ScalarValue::Int32(Some(sortkey.len() as i32)),
                ScalarValue::Int64(Some(bytes.div_ceil(BLOCK_BYTES) as i64)),
                ScalarValue::Float64(None),
                ScalarValue::Int64(Some(0)),
                ScalarValue::Float64(
                    (!sortkey.is_empty())
                        .then(|| round2(100.0 * unsorted as f64 / (live.max(1)) as f64)),
                ),
                ScalarValue::Float64(Some(t.stats_off() as f64)),
                ScalarValue::Float64(Some(stored as f64)),
                ScalarValue::Float64(None),
                ScalarValue::Float64(skew.map(round2)),
                ScalarValue::Float64(Some(live as f64)),
                ScalarValue::Utf8(None),
                ScalarValue::Float64(None),
                ScalarValue::from(t.created_at.as_str()),
            ]
        })
        .collect();
    batch(svv_table_info_schema(), rows)
}

pub(crate) fn pg_table_def_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("schemaname", DataType::Utf8, true),
        Field::new("tablename", DataType::Utf8, true),
        Field::new("column", DataType::Utf8, true),
        Field::new("type", DataType::Utf8, true),
        Field::new("encoding", DataType::Utf8, true),
        Field::new("distkey", DataType::Boolean, true),
        Field::new("sortkey", DataType::Int32, true),
        Field::new("notnull", DataType::Boolean, true),
    ]))
}

/// One row per column of each table the session sees.
pub(crate) fn pg_table_def(tables: &[(i32, Arc<TableMeta>)]) -> Result<RecordBatch> {
    let mut rows = vec![];
    for (_, t) in tables {
        for c in &t.columns {
            let sortkey = t
                .sortkey
                .as_ref()
                .and_then(|k| {
                    let pos = k.columns.iter().position(|n| n == &c.name)? as i32 + 1;
                    Some(match k.kind {
                        basalt_catalog::SortKeyKind::Interleaved => -pos,
                        basalt_catalog::SortKeyKind::Compound => pos,
                    })
                })
                .unwrap_or(0);
            rows.push(vec![
                ScalarValue::from(t.schema.as_str()),
                ScalarValue::from(t.name.as_str()),
                ScalarValue::from(c.name.as_str()),
                ScalarValue::from(c.ty.display_name()),
                ScalarValue::from(c.encoding.as_str()),
                ScalarValue::Boolean(Some(t.distkey.as_deref() == Some(c.name.as_str()))),
                ScalarValue::Int32(Some(sortkey)),
                ScalarValue::Boolean(Some(!c.nullable)),
            ]);
        }
    }
    batch(pg_table_def_schema(), rows)
}

pub(crate) fn stv_slices_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("node", DataType::Int32, false),
        Field::new("slice", DataType::Int32, false),
        Field::new("localslice", DataType::Int32, false),
        Field::new("type", DataType::Utf8, false),
    ]))
}

/// The slice map: every slice, its compute node and its number on that node.
pub(crate) fn stv_slices(topology: &Topology) -> Result<RecordBatch> {
    let rows = topology
        .slices()
        .map(|s| {
            vec![
                ScalarValue::Int32(Some(topology.node_of(s) as i32)),
                ScalarValue::Int32(Some(s.0 as i32)),
                ScalarValue::Int32(Some((s.0 % topology.slices_per_node) as i32)),
                ScalarValue::from("D"),
            ]
        })
        .collect();
    batch(stv_slices_schema(), rows)
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

pub(crate) fn batch(schema: SchemaRef, rows: Vec<Vec<ScalarValue>>) -> Result<RecordBatch> {
    if rows.is_empty() {
        return Ok(RecordBatch::new_empty(schema));
    }
    let columns = (0..schema.fields().len())
        .map(|i| {
            let ty = schema.field(i).data_type().clone();
            let values = rows
                .iter()
                .map(|r| r[i].cast_to(&ty))
                .collect::<Result<Vec<_>>>()?;
            ScalarValue::iter_to_array(values)
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// A timestamp without time zone, as Redshift's system tables show times.
pub(crate) fn timestamp(t: chrono::NaiveDateTime) -> ScalarValue {
    ScalarValue::TimestampMicrosecond(Some(t.and_utc().timestamp_micros()), None)
}

pub(crate) fn ts_field(name: &str) -> Field {
    Field::new(
        name,
        DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None),
        true,
    )
}

pub(crate) fn svv_vacuum_progress_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("table_name", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, true),
        Field::new("time_remaining_estimate", DataType::Utf8, true),
    ]))
}

/// The running VACUUM's table, phase and estimated time left; else the last VACUUM's.
pub(crate) fn svv_vacuum_progress(activity: &VacuumActivity) -> Result<RecordBatch> {
    let rows = match activity.progress() {
        None => vec![],
        Some((run, end)) => {
            let remaining = match end {
                Some(_) => "0m 0s".to_string(),
                None => time_remaining(&run, chrono::Utc::now().naive_utc()),
            };
            vec![vec![
                ScalarValue::from(run.table.as_str()),
                ScalarValue::from(run.status),
                ScalarValue::from(remaining),
            ]]
        }
    };
    batch(svv_vacuum_progress_schema(), rows)
}

pub(crate) fn sys_vacuum_history_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Int32, true),
        Field::new("database_name", DataType::Utf8, true),
        Field::new("schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, true),
        Field::new("table_id", DataType::Int32, true),
        Field::new("vacuum_type", DataType::Utf8, true),
        Field::new("is_automatic", DataType::Boolean, true),
        Field::new("status", DataType::Utf8, true),
        ts_field("start_time"),
        ts_field("end_time"),
        Field::new("duration", DataType::Int64, true),
        Field::new("rows_before_vacuum", DataType::Int64, true),
        Field::new("reclaimed_rows", DataType::Int64, true),
        Field::new("sortedrows", DataType::Int64, true),
    ]))
}

/// Finished VACUUMs, one row per table (`duration` in microseconds).
pub(crate) fn sys_vacuum_history(
    activity: &VacuumActivity,
    database: &str,
    userid: impl Fn(&str) -> i32,
) -> Result<RecordBatch> {
    let rows = activity
        .history()
        .into_iter()
        .map(|(run, end)| {
            vec![
                ScalarValue::Int32(Some(userid(&run.user))),
                ScalarValue::from(database),
                ScalarValue::from(run.schema.as_str()),
                ScalarValue::from(run.table.as_str()),
                ScalarValue::Int32(Some(run.table_id.0 as i32)),
                ScalarValue::from(run.kind),
                ScalarValue::Boolean(Some(run.automatic)),
                ScalarValue::from(run.status),
                timestamp(run.start),
                timestamp(end),
                ScalarValue::Int64((end - run.start).num_microseconds()),
                ScalarValue::Int64(Some(run.rows_before as i64)),
                ScalarValue::Int64(
                    run.rows_after
                        .map(|after| run.rows_before.saturating_sub(after) as i64),
                ),
                ScalarValue::Int64(run.sorted_after.map(|n| n as i64)),
            ]
        })
        .collect();
    batch(sys_vacuum_history_schema(), rows)
}

/// STV_BLOCKLIST's columns; SVV_DISKUSAGE has the same after `db_id` and `name`, without
/// `extended_limits` and the last four.
fn blocklist_fields(diskusage: bool) -> Vec<Field> {
    let int = |n: &str| Field::new(n, DataType::Int32, true);
    let big = |n: &str| Field::new(n, DataType::Int64, true);
    let mut f = vec![];
    if diskusage {
        f.push(int("db_id"));
        f.push(Field::new("name", DataType::Utf8, true));
    }
    f.extend([
        int("slice"),
        int("col"),
        int("tbl"),
        int("blocknum"),
        int("num_values"),
    ]);
    if !diskusage {
        f.push(int("extended_limits"));
    }
    f.extend([
        big("minvalue"),
        big("maxvalue"),
        int("sb_pos"),
        int("pinned"),
        int("on_disk"),
        int("modified"),
        int("hdr_modified"),
        int("unsorted"),
        int("tombstone"),
        int("preferred_diskno"),
        int("temporary"),
        Field::new("newblock", DataType::Int32, true),
    ]);
    if !diskusage {
        f.extend([
            int("num_readers"),
            big("id"),
            int("flags"),
            // BasaltDB's own: the column chunk's compressed size.
            big("bytes"),
        ]);
    }
    f
}

pub(crate) fn stv_blocklist_schema() -> SchemaRef {
    Arc::new(Schema::new(blocklist_fields(false)))
}

pub(crate) fn svv_diskusage_schema() -> SchemaRef {
    Arc::new(Schema::new(blocklist_fields(true)))
}

/// One row per column per block of every table the session sees (`tables`: (oid, table)):
/// STV_BLOCKLIST, or with `diskusage` SVV_DISKUSAGE.
pub(crate) async fn blocklist(
    compute: &basalt_storage::ComputeCluster,
    tables: &[(i32, Arc<TableMeta>)],
    diskusage: bool,
) -> Result<RecordBatch> {
    let mut rows = vec![];
    let mut id: i64 = 0;
    for (oid, t) in tables {
        for (slice, segments) in &t.data.slices {
            let node = compute
                .node_for(*slice)
                .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
            let blocks = node
                .blocks(t.clone(), *slice, segments.clone())
                .await
                .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
            for b in blocks {
                let mut row = vec![];
                if diskusage {
                    row.push(ScalarValue::Int32(Some(1)));
                    row.push(ScalarValue::from(t.name.as_str()));
                }
                row.extend([
                    ScalarValue::Int32(Some(slice.0 as i32)),
                    ScalarValue::Int32(Some(b.column as i32)),
                    ScalarValue::Int32(Some(*oid)),
                    ScalarValue::Int32(Some(b.block as i32)),
                    ScalarValue::Int32(Some(b.rows as i32)),
                ]);
                if !diskusage {
                    row.push(ScalarValue::Int32(Some(0)));
                }
                row.extend([
                    ScalarValue::Int64(b.min),
                    ScalarValue::Int64(b.max),
                    ScalarValue::Int32(Some(0)),
                    ScalarValue::Int32(Some(0)),
                    ScalarValue::Int32(Some(1)),
                    ScalarValue::Int32(Some(0)),
                    ScalarValue::Int32(Some(0)),
                    ScalarValue::Int32(Some(b.unsorted as i32)),
                    ScalarValue::Int32(Some(0)),
                    ScalarValue::Int32(Some(0)),
                    ScalarValue::Int32(Some(t.temporary as i32)),
                    ScalarValue::Int32(Some(0)),
                ]);
                if !diskusage {
                    id += 1;
                    row.extend([
                        ScalarValue::Int32(Some(0)),
                        ScalarValue::Int64(Some(id)),
                        ScalarValue::Int32(Some(0)),
                        ScalarValue::Int64(Some(b.bytes as i64)),
                    ]);
                }
                rows.push(row);
            }
        }
    }
    let schema = if diskusage {
        svv_diskusage_schema()
    } else {
        stv_blocklist_schema()
    };
    batch(schema, rows)
}

pub(crate) fn svl_auto_worker_action_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("table_id", DataType::Int32, true),
        Field::new("type", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, true),
        ts_field("eventtime"),
        Field::new("sequence", DataType::Int32, true),
        Field::new("previous_state", DataType::Utf8, true),
    ]))
}

/// What the automatic worker did: a row per step of each change (SVL_AUTO_WORKER_ACTION).
pub(crate) fn svl_auto_worker_action(
    actions: &[crate::autodist::AutoAction],
) -> Result<RecordBatch> {
    let rows = actions
        .iter()
        .map(|a| {
            vec![
                ScalarValue::Int32(Some(a.table.0 as i32)),
                ScalarValue::from(a.kind),
                ScalarValue::from(a.status.as_str()),
                timestamp(a.eventtime),
                ScalarValue::Int32(Some(a.sequence)),
                ScalarValue::from(a.previous_state.as_str()),
            ]
        })
        .collect();
    batch(svl_auto_worker_action_schema(), rows)
}
