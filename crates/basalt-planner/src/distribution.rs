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
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};

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
