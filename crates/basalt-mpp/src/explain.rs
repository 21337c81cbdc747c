//! `EXPLAIN` as Redshift prints it: a tree of `XN` steps with row and width estimates, each
//! join labelled with how its rows meet (Redshift's data-movement labels), and the network
//! steps between slices, nodes and the leader.
//!
//! | label | the join's rows |
//! | --- | --- |
//! | `DS_DIST_NONE` | both sides already on the same slices (distributed on the join key) |
//! | `DS_DIST_ALL_NONE` | the inner side is an ALL table, read where the outer side is |
//! | `DS_DIST_ALL_INNER` | the outer side is an ALL table read as one copy, in one task: the whole inner side goes there |
//! | `DS_DIST_INNER` | the inner side is redistributed on the join key |
//! | `DS_DIST_OUTER` | the outer side is redistributed on the join key |
//! | `DS_DIST_BOTH` | both sides are redistributed |
//! | `DS_BCAST_INNER` | the inner side is broadcast to every slice |
//!
//! The inner side is the hash table's (DataFusion's build, left, side); the outer side is
//! probed (DataFusion's right side).

use std::sync::Arc;

use basalt_planner::SliceScanExec;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::physical_expr::Partitioning;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::{
    CrossJoinExec, HashJoinExec, NestedLoopJoinExec, PartitionMode, SortMergeJoinExec,
};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};
use datafusion_distributed::{
    BroadcastExec, DistributedExec, DistributedLeafExec, NetworkBroadcastExec, NetworkCoalesceExec,
    NetworkShuffleExec,
};

/// The plan as Redshift's `EXPLAIN` lines.
pub fn redshift_explain(plan: &Arc<dyn ExecutionPlan>) -> Vec<String> {
    let mut out = vec![];
    for (i, step) in steps(plan).into_iter().enumerate() {
        render(&step, 0, i == 0, &mut out);
    }
    out
}

/// One line of the tree with its details and the steps under it.
struct Step {
    title: String,
    rows: Option<usize>,
    width: usize,
    details: Vec<String>,
    children: Vec<Step>,
}

/// An expression as text without DataFusion's column positions (`k@0` → `k`).
fn pretty(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '@' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            while chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn render(step: &Step, indent: usize, root: bool, out: &mut Vec<String>) {
    let rows = step.rows.map_or_else(|| "?".to_string(), |r| r.to_string());
    let (head, detail_indent) = if root {
        (String::new(), indent + 2)
    } else {
        (format!("{}->  ", " ".repeat(indent)), indent + 6)
    };
    out.push(format!(
        "{head}XN {}  (rows={rows} width={})",
        step.title, step.width
    ));
    for d in &step.details {
        out.push(format!("{}{}", " ".repeat(detail_indent), pretty(d)));
    }
    for child in &step.children {
        render(child, detail_indent, false, out);
    }
}

/// The steps a plan node shows as: its own, or those of its children when Redshift shows
/// no step for it (projections, batch coalescing, ...).
fn steps(plan: &Arc<dyn ExecutionPlan>) -> Vec<Step> {
    let children = || -> Vec<Step> { plan.children().into_iter().flat_map(steps).collect() };
    let step = |title: String, details: Vec<String>, children: Vec<Step>| Step {
        rows: estimated_rows(plan),
        width: width(&plan.schema()),
        title,
        details,
        children,
    };
    if let Some((scan, filter)) = scan_of(plan) {
        let mut details = vec![];
        if let Some(f) = filter {
            details.push(format!("Filter: {f}"));
        }
        return vec![step(
            format!("Seq Scan on {}", scan.table().name),
            details,
            vec![],
        )];
    }
    if plan.is::<DistributedExec>()
        || plan.is::<BroadcastExec>()
        || plan.is::<DistributedLeafExec>()
    {
        return children();
    }
    if plan.is::<NetworkCoalesceExec>() {
        return vec![step(
            "Network".into(),
            vec!["Send to leader".into()],
            children(),
        )];
    }
    if plan.is::<NetworkShuffleExec>() {
        // The hash repartition under the network step says on what; one step shows both.
        let mut details = vec![];
        let mut below = vec![];
        for child in plan.children() {
            match child.downcast_ref::<RepartitionExec>() {
                Some(r) if matches!(r.partitioning(), Partitioning::Hash(..)) => {
                    if let Partitioning::Hash(keys, _) = r.partitioning() {
                        details.push(format!("Distribute on: {}", exprs(keys)));
                    }
                    below.extend(steps(r.input()));
                }
                _ => below.extend(steps(child)),
            }
        }
        if details.is_empty() {
            details.push("Distribute".into());
        }
        return vec![step("Network".into(), details, below)];
    }
    if plan.is::<NetworkBroadcastExec>() {
        return vec![step("Network".into(), vec!["Broadcast".into()], children())];
    }
    if let Some(r) = plan.downcast_ref::<RepartitionExec>()
        && let Partitioning::Hash(keys, _) = r.partitioning()
    {
        return vec![step(
            "Network".into(),
            vec![format!("Distribute on: {}", exprs(keys))],
            children(),
        )];
    }
    if let Some(j) = plan.downcast_ref::<HashJoinExec>() {
        let label = join_label(j.left(), j.right(), j.mode == PartitionMode::CollectLeft);
        let cond = j
            .on()
            .iter()
            .map(|(l, r)| format!("({r} = {l})"))
            .collect::<Vec<_>>()
            .join(" AND ");
        let inner = Step {
            title: "Hash".into(),
            rows: estimated_rows(j.left()),
            width: width(&j.left().schema()),
            details: vec![],
            children: steps(j.left()),
        };
        let mut kids = steps(j.right());
        kids.push(inner);
        return vec![step(
            join_title("Hash", &j.join_type().to_string(), label),
            vec![format!("Hash Cond: {cond}")],
            kids,
        )];
    }
    if let Some(j) = plan.downcast_ref::<SortMergeJoinExec>() {
        let label = join_label(j.left(), j.right(), false);
        let mut kids = steps(j.right());
        kids.extend(steps(j.left()));
        return vec![step(
            join_title("Merge", &j.join_type().to_string(), label),
            vec![],
            kids,
        )];
    }
    if let Some(j) = plan.downcast_ref::<NestedLoopJoinExec>() {
        let label = join_label(j.left(), j.right(), true);
        let mut kids = steps(j.right());
        kids.extend(steps(j.left()));
        return vec![step(format!("Nested Loop {label}"), vec![], kids)];
    }
    if let Some(j) = plan.downcast_ref::<CrossJoinExec>() {
        let label = join_label(j.left(), j.right(), true);
        let mut kids = steps(j.right());
        kids.extend(steps(j.left()));
        return vec![step(format!("Nested Loop {label}"), vec![], kids)];
    }
    if let Some(a) = plan.downcast_ref::<AggregateExec>() {
        let groups = a.group_expr().expr();
        let (title, mut details) = if groups.is_empty() {
            ("Aggregate".to_string(), vec![])
        } else {
            let keys: Vec<String> = groups.iter().map(|(e, _)| e.to_string()).collect();
            (
                "HashAggregate".to_string(),
                vec![format!("Group By: {}", keys.join(", "))],
            )
        };
        let mode = format!("{:?}", a.mode());
        if !mode.starts_with("Single") {
            details.push(format!("Mode: {mode}"));
        }
        return vec![step(title, details, children())];
    }
    if let Some(s) = plan.downcast_ref::<SortExec>() {
        let mut details = vec![format!("Sort Key: {}", s.expr())];
        if let Some(n) = s.fetch() {
            details.push(format!("Top: {n}"));
        }
        return vec![step("Sort".into(), details, children())];
    }
    if let Some(m) = plan.downcast_ref::<SortPreservingMergeExec>() {
        return vec![step(
            "Merge".into(),
            vec![format!("Merge Key: {}", m.expr())],
            children(),
        )];
    }
    if let Some(f) = plan.downcast_ref::<FilterExec>() {
        return vec![step(
            "Filter".into(),
            vec![format!("Filter: {}", f.predicate())],
            children(),
        )];
    }
    match plan.name() {
        "GlobalLimitExec" | "LocalLimitExec" => {
            let limit = plan.fetch().map(|n| format!("Limit: {n}"));
            vec![step(
                "Limit".into(),
                limit.into_iter().collect(),
                children(),
            )]
        }
        "UnionExec" | "InterleaveExec" => vec![step("Append".into(), vec![], children())],
        "BoundedWindowAggExec" | "WindowAggExec" => {
            vec![step("Window".into(), vec![], children())]
        }
        "ProjectionExec"
        | "CoalesceBatchesExec"
        | "CoalescePartitionsExec"
        | "CooperativeExec"
        | "NodeLocalRepartitionExec"
        | "RepartitionExec" => children(),
        name if plan.children().is_empty() => {
            vec![step(
                name.trim_end_matches("Exec").to_string(),
                vec![],
                vec![],
            )]
        }
        name => vec![step(
            name.trim_end_matches("Exec").to_string(),
            vec![],
            children(),
        )],
    }
}

/// `Hash Join DS_..`, `Hash Left Join DS_..`: Postgres' join titles with Redshift's label.
fn join_title(method: &str, join_type: &str, label: &str) -> String {
    match join_type {
        "Inner" => format!("{method} Join {label}"),
        other => format!("{method} {other} Join {label}"),
    }
}

/// A slice scan (or its per-task variants), with the filter applied right on top of it.
fn scan_of(plan: &Arc<dyn ExecutionPlan>) -> Option<(&SliceScanExec, Option<String>)> {
    if let Some(f) = plan.downcast_ref::<FilterExec>()
        && let Some((scan, None)) = scan_of(f.input())
    {
        return Some((scan, Some(f.predicate().to_string())));
    }
    if let Some(scan) = plan.downcast_ref::<SliceScanExec>() {
        return Some((scan, None));
    }
    let leaf = plan.downcast_ref::<DistributedLeafExec>()?;
    Some((leaf.original().downcast_ref::<SliceScanExec>()?, None))
}

/// How a join input's rows reach the join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Movement {
    /// Read where they are.
    Stay,
    /// Rows of a replicated (ALL) table, read from the local copy.
    StayReplicated,
    /// Redistributed by a hash of the join key.
    Distribute,
    /// Sent whole to every slice.
    Broadcast,
}

fn movement(plan: &Arc<dyn ExecutionPlan>) -> Movement {
    if plan.is::<NetworkBroadcastExec>() {
        return Movement::Broadcast;
    }
    // A broadcast inside one stage (no network step above it) moves nothing between nodes.
    if let Some(b) = plan.downcast_ref::<BroadcastExec>() {
        return b.children().first().map_or(Movement::Stay, |c| movement(c));
    }
    // Gathered into the one task of its consumer, or redistributed by hash.
    if plan.is::<NetworkShuffleExec>() || plan.is::<NetworkCoalesceExec>() {
        return Movement::Distribute;
    }
    if let Some(r) = plan.downcast_ref::<RepartitionExec>() {
        if matches!(r.partitioning(), Partitioning::Hash(..)) {
            return Movement::Distribute;
        }
        return movement(r.input());
    }
    if let Some((scan, _)) = scan_of(plan) {
        return if scan.is_replicated() {
            Movement::StayReplicated
        } else {
            Movement::Stay
        };
    }
    let passes = plan.is::<CoalescePartitionsExec>()
        || matches!(
            plan.name(),
            "ProjectionExec" | "FilterExec" | "CoalesceBatchesExec" | "CooperativeExec"
        );
    match plan.children().as_slice() {
        [child] if passes => movement(child),
        _ => Movement::Stay,
    }
}

/// Redshift's label for a join of `inner` (the hash table's side) and `outer`; `collected`
/// when the join gathers its whole inner side in every task (a broadcast unless the inner
/// side is an ALL table's local copy).
fn join_label(
    inner: &Arc<dyn ExecutionPlan>,
    outer: &Arc<dyn ExecutionPlan>,
    collected: bool,
) -> &'static str {
    use Movement::*;
    match (movement(inner), movement(outer), collected) {
        // The outer side is one copy of an ALL table: the whole inner side goes to the one
        // task reading it.
        (Broadcast | Distribute, StayReplicated, _) => "DS_DIST_ALL_INNER",
        (Broadcast, _, _) => "DS_BCAST_INNER",
        (StayReplicated, _, _) => "DS_DIST_ALL_NONE",
        (_, _, true) => "DS_BCAST_INNER",
        (Distribute, Distribute, _) => "DS_DIST_BOTH",
        (Distribute, _, _) => "DS_DIST_INNER",
        (_, Distribute, _) => "DS_DIST_OUTER",
        _ => "DS_DIST_NONE",
    }
}

fn estimated_rows(plan: &Arc<dyn ExecutionPlan>) -> Option<usize> {
    // Network steps carry no statistics: estimate on the plan as if each exchange were its
    // input, and each scan split into per-task variants the scan it was split from.
    let local = Arc::clone(plan)
        .transform_up(|node| {
            if let Some(leaf) = node.downcast_ref::<DistributedLeafExec>() {
                return Ok(Transformed::yes(Arc::clone(leaf.original())));
            }
            let network = node.is::<NetworkShuffleExec>()
                || node.is::<NetworkCoalesceExec>()
                || node.is::<NetworkBroadcastExec>()
                || node.is::<BroadcastExec>();
            match node.children().as_slice() {
                [input] if network => Ok(Transformed::yes(Arc::clone(input))),
                _ => Ok(Transformed::no(node)),
            }
        })
        .ok()?
        .data;
    let stats = StatisticsContext::new()
        .compute(local.as_ref(), &StatisticsArgs::new())
        .ok()?;
    match stats.num_rows {
        Precision::Exact(n) | Precision::Inexact(n) => Some(n),
        Precision::Absent => None,
    }
}

/// Bytes of a row: fixed-width values at their width, variable ones at a typical size.
fn width(schema: &Schema) -> usize {
    schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => 16,
            DataType::Decimal128(..) => 8,
            t => t.primitive_width().unwrap_or(8),
        })
        .sum()
}

fn exprs(e: &[Arc<dyn datafusion::physical_expr::PhysicalExpr>]) -> String {
    e.iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
