//! Which stage outputs an export shares between pipelines, decided before anything runs: pipelines
//! with a common prefix of stages run one after the other, each starting from the longest prefix
//! already computed, and an output is kept only while a pipeline still to run starts with it. A pure
//! function of the pipelines' prefix keys, so the plan is tested without running a stage.

use std::collections::BTreeSet;

/// One pipeline's turn in the export of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharingStep {
    /// The pipeline (its index).
    pub pipeline: usize,
    /// The kept outputs (prefix keys) still needed from this turn on; the rest are let go first.
    pub retain: BTreeSet<String>,
    /// How many of its first stages an earlier turn computed: it continues from that kept output
    /// (0: from the raw mosaic).
    pub from: usize,
    /// Its stage outputs (stage indices) that a later turn continues from: kept under their keys.
    pub keep: BTreeSet<usize>,
}

/// The turns for pipelines `todo`, where `keys[i][n - 1]` names pipeline `i`'s first `n` stages
/// (equal keys compute equal outputs): ordered by their whole key, so pipelines that share a prefix
/// are neighbours.
pub fn plan(keys: &[Vec<String>], todo: &[usize]) -> Vec<SharingStep> {
    let whole = |i: usize| keys[i].last().cloned().unwrap_or_default();
    let mut order = todo.to_vec();
    order.sort_by_key(|&i| whole(i));
    let mut cached: BTreeSet<String> = BTreeSet::new();
    let computed = |cached: &BTreeSet<String>, j: usize| {
        keys[j]
            .iter()
            .rposition(|key| cached.contains(key))
            .map_or(0, |k| k + 1)
    };
    let mut steps = Vec::with_capacity(order.len());
    for (position, &i) in order.iter().enumerate() {
        let retain: BTreeSet<String> = order[position..]
            .iter()
            .filter_map(|&j| computed(&cached, j).checked_sub(1).map(|k| keys[j][k].clone()))
            .collect();
        cached.retain(|key| retain.contains(key));
        let from = computed(&cached, i);
        let keep: BTreeSet<usize> = order[position + 1..]
            .iter()
            .map(|&j| keys[i].iter().zip(&keys[j]).take_while(|(a, b)| a == b).count())
            .filter(|&shared| shared > from)
            .map(|shared| shared - 1)
            .collect();
        cached.extend(keep.iter().map(|&k| keys[i][k].clone()));
        steps.push(SharingStep {
            pipeline: i,
            retain,
            from,
            keep,
        });
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prefix keys of pipelines written as stage lists: `["a", "b"]` → keys "a", "a|b".
    fn keys(pipelines: &[&[&str]]) -> Vec<Vec<String>> {
        pipelines
            .iter()
            .map(|stages| (1..=stages.len()).map(|n| stages[..n].join("|")).collect())
            .collect()
    }

    fn turns(steps: &[SharingStep]) -> Vec<(usize, usize, Vec<usize>)> {
        steps
            .iter()
            .map(|s| (s.pipeline, s.from, s.keep.iter().copied().collect()))
            .collect()
    }

    #[test]
    fn pipelines_sharing_a_prefix_run_in_turn_and_continue_from_its_output() {
        // 0 and 2 share `a|b`; 1 shares only `a` with them
        let keys = keys(&[&["a", "b", "c"], &["a", "x"], &["a", "b", "d"]]);
        let steps = plan(&keys, &[0, 1, 2]);
        // ordered by whole key: a|b|c, a|b|d, a|x
        assert_eq!(turns(&steps), [(0, 0, vec![0, 1]), (2, 2, vec![]), (1, 1, vec![])]);
        // `a|b` is let go once the last pipeline that starts with it has run
        assert!(
            steps[2].retain.contains("a") && !steps[2].retain.contains("a|b"),
            "{:?}",
            steps[2].retain
        );
    }

    #[test]
    fn unrelated_pipelines_share_nothing_and_keep_nothing() {
        let keys = keys(&[&["a", "b"], &["c", "d"]]);
        let steps = plan(&keys, &[1, 0]);
        assert_eq!(turns(&steps), [(0, 0, vec![]), (1, 0, vec![])]);
        assert!(steps.iter().all(|s| s.retain.is_empty()));
    }

    #[test]
    fn an_identical_pipeline_reuses_the_whole_output_and_only_what_is_to_do_is_planned() {
        let keys = keys(&[&["a", "b"], &["a", "b"], &["a", "c"]]);
        assert_eq!(turns(&plan(&keys, &[0, 1])), [(0, 0, vec![1]), (1, 2, vec![])]);
        // pipeline 0's outputs exist already (not to do): 1 and 2 still share `a`
        assert_eq!(turns(&plan(&keys, &[1, 2])), [(1, 0, vec![0]), (2, 1, vec![])]);
        assert!(plan(&keys, &[]).is_empty());
    }
}
