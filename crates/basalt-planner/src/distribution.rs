//! Distribution-aware physical planning: Redshift's choice of how a join's rows meet.
//!
//! DataFusion already avoids moving a side that is hash-partitioned on the join keys (a KEY
//! table's scan declares `Hash(distkey)`) and broadcasts a small build side. What it does not
//! know is that two tables distributed on the join key are joined best where they lie: it
//! broadcasts the smaller one whenever it is under its size threshold. [`CoLocatedJoinRule`]
//! turns such a join back into a partition-wise join with no movement (DS_DIST_NONE).

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::physical_expr::{
    Distribution, Partitioning, PartitioningSatisfaction, PhysicalExprRef,
};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::joins::{
    CrossJoinExec, HashJoinExec, NestedLoopJoinExec, PartitionMode, SortMergeJoinExec,
};
use datafusion::physical_plan::{
    ChildrenPropertiesMode, ExecutionPlan, ExecutionPlanProperties, ReplaceChildrenOptions,
};

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
            if !co_located(&left, &right, &left_keys, &right_keys)? {
                return Ok(Transformed::no(node));
            }
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

/// Both sides hash-partitioned on their keys, key by key of one type (the same values hash
/// alike only in the same type), over the same partitions.
fn co_located(
    left: &Arc<dyn ExecutionPlan>,
    right: &Arc<dyn ExecutionPlan>,
    left_keys: &[PhysicalExprRef],
    right_keys: &[PhysicalExprRef],
) -> Result<bool> {
    let partitions = left.output_partitioning().partition_count();
    if partitions < 2 || right.output_partitioning().partition_count() != partitions {
        return Ok(false);
    }
    for (l, r) in left_keys.iter().zip(right_keys) {
        if l.data_type(&left.schema())? != r.data_type(&right.schema())? {
            return Ok(false);
        }
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
    Ok(hashed(left, left_keys) && hashed(right, right_keys))
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
