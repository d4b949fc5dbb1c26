//! Scheduling: what each test is expected to cost and in which order the
//! shared queue hands tests out.
//!
//! [`timings`] remembers past durations and turns them into expected ones;
//! [`partition`] splits tests between CI machines and predicts the run.

pub mod partition;
pub mod timings;

use std::time::Duration;

use crate::model::TestCase;

/// Indices of `tests` longest expected first; equal durations by test id, so
/// the order is the same on every machine.
///
/// Longest first because the queue is shared: short tests started last fill
/// the gaps, while a long test started last keeps the run going after every
/// other worker is idle.
pub fn longest_first(tests: &[TestCase], expected: &[Duration]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..tests.len()).collect();
    order.sort_by(|&a, &b| {
        expected[b]
            .cmp(&expected[a])
            .then_with(|| tests[a].id.cmp(&tests[b].id))
    });
    order
}
