//! Scheduling: what each test is expected to cost and in which order the
//! shared queue hands tests out.
//!
//! [`timings`] remembers past durations and turns them into expected ones;
//! [`partition`] splits tests between CI machines and predicts the run.

pub(crate) mod groups;
pub mod partition;
pub mod timings;

use std::time::Duration;

use crate::model::TestCase;

/// Indices of `chosen` tests longest expected first; equal durations by
/// test id, so the order is the same on every machine.
///
/// Longest first because the queue is shared: short tests started last fill
/// the gaps, while a long test started last keeps the run going after every
/// other worker is idle.
pub fn longest_first(
    tests: &[TestCase],
    expected: &[Duration],
    chosen: impl IntoIterator<Item = usize>,
) -> Vec<usize> {
    let mut order: Vec<usize> = chosen.into_iter().collect();
    order.sort_by(|&a, &b| {
        expected[b]
            .cmp(&expected[a])
            .then_with(|| tests[a].id.cmp(&tests[b].id))
    });
    order
}

/// What one machine does with the discovered tests.
#[derive(Debug)]
pub struct Selection {
    /// Expected duration of every test, by index (0 for tests reported as skipped).
    pub expected: Vec<Duration>,
    /// Each test's 1-based shard, when partitioned.
    pub shard_of: Option<Vec<usize>>,
    /// This shard's tests to run, in queue order.
    pub run: Vec<usize>,
    /// This shard's tests reported as skipped without running (ignored ones).
    pub skip: Vec<usize>,
}

/// Expected durations, this machine's shard and the queue order. Tests
/// that will be skipped cost nothing, so they do not unbalance the shards.
pub fn select(
    tests: &[TestCase],
    timings: &timings::Timings,
    partition: Option<partition::Partition>,
    skipped: impl Fn(&TestCase) -> bool,
) -> Selection {
    let mut expected = timings.expected_durations(tests);
    for (test, expected) in tests.iter().zip(&mut expected) {
        if skipped(test) {
            *expected = Duration::ZERO;
        }
    }
    let shard_of = partition.map(|p| partition::shard_of(tests, &expected, p.total));
    let mine = (0..tests.len()).filter(|&i| match (&shard_of, partition) {
        (Some(shard_of), Some(p)) => shard_of[i] == p.index,
        _ => true,
    });
    let (skip, run): (Vec<usize>, Vec<usize>) = mine.partition(|&i| skipped(&tests[i]));
    let run = longest_first(tests, &expected, run);
    Selection {
        expected,
        shard_of,
        run,
        skip,
    }
}
