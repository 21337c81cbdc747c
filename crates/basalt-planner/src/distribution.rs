//! Distribution-aware physical planning: Redshift's choice of how a join's rows meet.
//!
//! DataFusion already avoids moving a side that is hash-partitioned on the join keys (a KEY
//! table's scan declares `Hash(distkey)`) and broadcasts a small build side. What it does not
//! know is that two tables distributed on the join key are joined best where they lie: it
//! broadcasts the smaller one whenever it is under its size threshold. [`CoLocatedJoinRule`]
//! turns such a join back into a partition-wise join with no movement (DS_DIST_NONE).
//!
//! On nodes of one slice a KEY scan has one partition per task, so it cannot declare itself
//! hash-partitioned over the task's two partitions, and DataFusion plans a hash repartition
//! on the distkey — which the distributed planner would turn into an exchange. The rows are
//! already on the node such an exchange would send them to (see `basalt_storage::key_slice`),
//! so [`NodeLocalRepartitionRule`] keeps that repartition inside the task
//! ([`NodeLocalRepartitionExec`]), and [`CoLocatedJoinRule`] does the same for both sides of a
//! join on the distkeys.

use std::sync::Arc;

use datafusion::common::Statistics;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, internal_err};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{
    Distribution, Partitioning, PartitioningSatisfaction, PhysicalExpr, PhysicalExprRef,
};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::execution_plan::CardinalityEffect;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::{
    CrossJoinExec, HashJoinExec, NestedLoopJoinExec, PartitionMode, SortMergeJoinExec,
};
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties,
    PlanProperties, ReplaceChildrenOptions, SendableRecordBatchStream,
};

use crate::SliceScanExec;

/// A hash join whose two sides are already hash-partitioned on its keys, over the same number
/// of partitions, joins partition by partition instead of collecting its build side.
#[derive(Debug, Default)]
pub struct CoLocatedJoinRule;

impl PhysicalOptimizerRule for CoLocatedJoinRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            if join.mode != PartitionMode::CollectLeft || join.null_aware {
                return Ok(Transformed::no(node));
            }
            // CollectLeft gathers its build side into one partition; look under that.
            let left = match join.left().downcast_ref::<CoalescePartitionsExec>() {
                Some(c) if c.fetch().is_none() => Arc::clone(c.input()),
                _ => Arc::clone(join.left()),
            };
            let right = Arc::clone(join.right());
            let (left_keys, right_keys): (Vec<PhysicalExprRef>, Vec<PhysicalExprRef>) =
                join.on().iter().cloned().unzip();
            let Some((left, right)) = co_located(left, right, &left_keys, &right_keys)? else {
                return Ok(Transformed::no(node));
            };
            let partitioned = join
                .builder()
                .with_new_children(vec![left, right])?
                .with_partition_mode(PartitionMode::Partitioned)
                .recompute_properties()
                .build_exec()?;
            Ok(Transformed::yes(partitioned))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "basalt_co_located_join"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A join's build and probe sides.
type JoinSides = (Arc<dyn ExecutionPlan>, Arc<dyn ExecutionPlan>);

/// Both sides hash-partitioned on their keys, key by key of one type (the same values hash
/// alike only in the same type), over the same partitions; or both placed on their node by
/// their single join key, then hash-partitioned inside the task. The sides to join, if so.
fn co_located(
    left: Arc<dyn ExecutionPlan>,
    right: Arc<dyn ExecutionPlan>,
    left_keys: &[PhysicalExprRef],
    right_keys: &[PhysicalExprRef],
) -> Result<Option<JoinSides>> {
    for (l, r) in left_keys.iter().zip(right_keys) {
        if l.data_type(&left.schema())? != r.data_type(&right.schema())? {
            return Ok(None);
        }
    }
    if let (Some(l), Some(r)) = (
        partitioned_in_place(&left, left_keys)?,
        partitioned_in_place(&right, right_keys)?,
    ) && l.output_partitioning().partition_count() == r.output_partitioning().partition_count()
    {
        return Ok(Some((l, r)));
    }
    let partitions = left.output_partitioning().partition_count();
    if partitions < 2 || right.output_partitioning().partition_count() != partitions {
        return Ok(None);
    }
    let hashed = |plan: &Arc<dyn ExecutionPlan>, keys: &[PhysicalExprRef]| {
        // Only an exact hash partitioning on the keys: a partitioning on a subset of them
        // would not put equal keys of the other side in the same partition.
        matches!(plan.output_partitioning(), Partitioning::Hash(..))
            && plan.output_partitioning().satisfaction(
                &Distribution::KeyPartitioned(keys.to_vec()),
                plan.equivalence_properties(),
                false,
            ) == PartitioningSatisfaction::Exact
    };
    Ok((hashed(&left, left_keys) && hashed(&right, right_keys)).then_some((left, right)))
}

/// The column of a one-column key (a join's or a hash partitioning's).
fn single_column(exprs: &[PhysicalExprRef]) -> Option<&Column> {
    match exprs {
        [key] => key.downcast_ref::<Column>(),
        _ => None,
    }
}

/// `plan` hash-partitioned inside its task on its one key, when its rows are placed on their
/// node by that key (and are not already hash-partitioned on it).
fn partitioned_in_place(
    plan: &Arc<dyn ExecutionPlan>,
    keys: &[PhysicalExprRef],
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(column) = single_column(keys) else {
        return Ok(None);
    };
    if matches!(plan.output_partitioning(), Partitioning::Hash(..)) {
        return Ok(None);
    }
    match placed_on(plan) {
        Some((index, partitions)) if index == column.index() => {
            let local = NodeLocalRepartitionExec::try_new(
                Arc::clone(plan),
                column.clone(),
                partitions,
                false,
            )?;
            Ok(Some(Arc::new(local)))
        }
        _ => Ok(None),
    }
}

/// The output column whose hash placed `plan`'s rows on the node running it, and the
/// partitions per task of that placement: a KEY scan's distkey, followed through the nodes
/// that keep rows where they are and the column where it is.
pub fn placed_on(plan: &Arc<dyn ExecutionPlan>) -> Option<(usize, usize)> {
    if let Some(scan) = plan.downcast_ref::<SliceScanExec>() {
        return scan.placed_on();
    }
    let column_index = |e: &Arc<dyn PhysicalExpr>| e.downcast_ref::<Column>().map(|c| c.index());
    if let Some(p) = plan.downcast_ref::<ProjectionExec>() {
        let (key, partitions) = placed_on(p.input())?;
        let at = p
            .expr()
            .iter()
            .position(|e| column_index(&e.expr) == Some(key))?;
        return Some((at, partitions));
    }
    if let Some(f) = plan.downcast_ref::<FilterExec>() {
        let (key, partitions) = placed_on(f.input())?;
        return match f.projection() {
            Some(projection) => Some((projection.iter().position(|&i| i == key)?, partitions)),
            None => Some((key, partitions)),
        };
    }
    if let Some(a) = plan.downcast_ref::<AggregateExec>() {
        if *a.mode() != AggregateMode::Partial || !a.group_expr().is_single() {
            return None;
        }
        let (key, partitions) = placed_on(a.input())?;
        let at = a
            .group_expr()
            .expr()
            .iter()
            .position(|(e, _)| column_index(e) == Some(key))?;
        return Some((at, partitions));
    }
    let keeps_rows_in_place = plan.is::<CooperativeExec>()
        || plan.is::<CoalescePartitionsExec>()
        || plan.is::<SortExec>()
        || plan.is::<NodeLocalRepartitionExec>()
        || plan
            .downcast_ref::<RepartitionExec>()
            .is_some_and(|r| !matches!(r.partitioning(), Partitioning::Hash(..)));
    match plan.children().as_slice() {
        [child] if keeps_rows_in_place => placed_on(child),
        _ => None,
    }
}

/// A hash repartition on the column that placed its input's rows on their node, into the
/// partitions per task that placement assumed, becomes a [`NodeLocalRepartitionExec`]: no row
/// needs to leave its node for it.
#[derive(Debug, Default)]
pub struct NodeLocalRepartitionRule;

impl PhysicalOptimizerRule for NodeLocalRepartitionRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(repartition) = node.downcast_ref::<RepartitionExec>() else {
                return Ok(Transformed::no(node));
            };
            let Partitioning::Hash(exprs, partitions) = repartition.partitioning() else {
                return Ok(Transformed::no(node));
            };
            let Some(column) = single_column(exprs) else {
                return Ok(Transformed::no(node));
            };
            if placed_on(repartition.input()) != Some((column.index(), *partitions)) {
                return Ok(Transformed::no(node));
            }
            let local = NodeLocalRepartitionExec::try_new(
                Arc::clone(repartition.input()),
                column.clone(),
                *partitions,
                repartition.preserve_order(),
            )?;
            Ok(Transformed::yes(Arc::new(local)))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "basalt_node_local_repartition"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A hash repartition that runs inside a task, never as an exchange between nodes: its input's
/// rows are already on the node that owns their hash (see [`placed_on`]). It runs DataFusion's
/// [`RepartitionExec`], which the distributed planner does not see: this node shows its
/// repartition's input as its child.
#[derive(Debug)]
pub struct NodeLocalRepartitionExec {
    repartition: RepartitionExec,
}

impl NodeLocalRepartitionExec {
    pub fn new(repartition: RepartitionExec) -> Self {
        NodeLocalRepartitionExec { repartition }
    }

    /// The hash repartition of `input` on column `key` into `partitions`, keeping the order
    /// of each input partition with `preserve_order`.
    pub fn try_new(
        input: Arc<dyn ExecutionPlan>,
        key: Column,
        partitions: usize,
        preserve_order: bool,
    ) -> Result<Self> {
        let mut repartition =
            RepartitionExec::try_new(input, Partitioning::Hash(vec![Arc::new(key)], partitions))?;
        if preserve_order {
            repartition = repartition.with_preserve_order();
        }
        Ok(Self::new(repartition))
    }

    pub fn preserve_order(&self) -> bool {
        self.repartition.preserve_order()
    }

    /// The column hashed and the partition count.
    pub fn key(&self) -> Result<(&Column, usize)> {
        if let Partitioning::Hash(exprs, n) = self.repartition.partitioning()
            && let Some(column) = single_column(exprs)
        {
            return Ok((column, *n));
        }
        internal_err!("a node-local repartition hashes one column")
    }
}

impl DisplayAs for NodeLocalRepartitionExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self.key() {
            Ok((key, n)) => write!(
                f,
                "NodeLocalRepartitionExec: partitioning=Hash([{key}], {n})"
            ),
            Err(_) => write!(f, "NodeLocalRepartitionExec"),
        }
    }
}

impl ExecutionPlan for NodeLocalRepartitionExec {
    fn name(&self) -> &str {
        "NodeLocalRepartitionExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.repartition.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.repartition.input()]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.repartition.apply_expressions(f)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return internal_err!("NodeLocalRepartitionExec has one child");
        }
        let mut repartition = RepartitionExec::try_new(
            children.swap_remove(0),
            self.repartition.partitioning().clone(),
        )?;
        if self.repartition.preserve_order() {
            repartition = repartition.with_preserve_order();
        }
        Ok(Arc::new(Self::new(repartition)))
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        self.repartition.benefits_from_input_partitioning()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        self.repartition.maintains_input_order()
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.repartition.execute(partition, context)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        self.repartition.metrics()
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        self.repartition.child_stats_requests(partition)
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        self.repartition.statistics_from_inputs(input_stats, args)
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        CardinalityEffect::Equal
    }
}

/// Every join's output goes through a [`CooperativeExec`], which yields to the runtime when
/// the task's budget runs out. A join can produce batch after batch from one input batch
/// without touching the runtime, and until its task yields, a cancelled query's fragment
/// cannot notice that nobody reads it any more: with this, a cancel, a statement timeout or
/// a dropped client stops the fragments on every node promptly.
#[derive(Debug, Default)]
pub struct CooperativeJoinsRule;

impl PhysicalOptimizerRule for CooperativeJoinsRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            // A join already wrapped has the wrapper as its parent: wrap joins only from
            // their parent, and the root on its own below.
            let mut changed = false;
            let children: Vec<Arc<dyn ExecutionPlan>> = node
                .children()
                .into_iter()
                .map(|c| {
                    if is_join(c) && !node.is::<CooperativeExec>() {
                        changed = true;
                        Arc::new(CooperativeExec::new(Arc::clone(c))) as Arc<dyn ExecutionPlan>
                    } else {
                        Arc::clone(c)
                    }
                })
                .collect();
            if changed {
                Ok(Transformed::yes(node.replace_children(
                    children,
                    ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
                )?))
            } else {
                Ok(Transformed::no(node))
            }
        })
        .map(|t| {
            if is_join(&t.data) {
                Arc::new(CooperativeExec::new(t.data)) as Arc<dyn ExecutionPlan>
            } else {
                t.data
            }
        })
    }

    fn name(&self) -> &str {
        "basalt_cooperative_joins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn is_join(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.is::<HashJoinExec>()
        || plan.is::<NestedLoopJoinExec>()
        || plan.is::<CrossJoinExec>()
        || plan.is::<SortMergeJoinExec>()
}
