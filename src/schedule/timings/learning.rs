//! Learning: which samples a run teaches the store, and what is expected
//! of a test from its samples (the median; see [`Timings::expected`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Timings, unix_now};
use crate::model::{AttemptStatus, TestCase, TestOutcome};
use crate::schedule::partition::Partition;

/// The expected duration of every test when nothing at all is known.
///
/// Its value barely matters: when no test has history every test gets the
/// same number, so the queue falls back to test-id order and a partition to
/// an even split by count. One second is simply a plausible figure to show
/// in `list`.
pub const DEFAULT_EXPECTED: Duration = Duration::from_secs(1);

impl Timings {
    /// The expected duration of one test: the median of its kept samples.
    ///
    /// Why the median: with five samples, one of them is often unlike the
    /// others (a cold disk cache, a first build of a fixture, a loaded CI
    /// machine). The median ignores one such outlier, or two, entirely. The
    /// mean (pytest-split) is dragged by it: one 60 s hang among 1 s runs
    /// makes the test look 13 s long for five runs. A high percentile (p85,
    /// gotestsum) is deliberately pessimistic, and over five samples it is
    /// practically the maximum, so every test is planned at its worst run
    /// and the split follows noise rather than the typical cost.
    pub fn expected(&self, id: &str) -> Option<Duration> {
        median(
            self.samples(id)
                .iter()
                .map(|sample| sample.duration)
                .collect(),
        )
    }

    /// Expected duration of each of `tests`, in the same order.
    ///
    /// A test never seen gets the median of the expected durations of the
    /// known tests in `tests` (the typical test of this run), else of every
    /// test in the store, else [`DEFAULT_EXPECTED`]. The median, not the
    /// mean, so that one very long known test does not make every new test
    /// look long.
    pub fn expected_durations(&self, tests: &[TestCase]) -> Vec<Duration> {
        let known: Vec<Option<Duration>> =
            tests.iter().map(|test| self.expected(&test.id)).collect();
        let fallback = median(known.iter().flatten().copied().collect())
            .or_else(|| {
                median(
                    self.tests
                        .keys()
                        .filter_map(|id| self.expected(id))
                        .collect(),
                )
            })
            .unwrap_or(DEFAULT_EXPECTED);
        known
            .into_iter()
            .map(|expected| expected.unwrap_or(fallback))
            .collect()
    }
}

/// Median; for an even count the mean of the two middle values.
fn median(mut durations: Vec<Duration>) -> Option<Duration> {
    if durations.is_empty() {
        return None;
    }
    durations.sort_unstable();
    let middle = durations.len() / 2;
    if durations.len() % 2 == 1 {
        Some(durations[middle])
    } else {
        Some((durations[middle - 1] + durations[middle]) / 2)
    }
}

/// What the run teaches the timings store. Only passing attempts count: a
/// failure is often fast, and would make the scheduler think the test is.
/// A plugin's framework cases (pytest tests inside a file) are recorded too,
/// under `GROUP::CASE` (pytest's node id), for a later finer granularity.
pub fn samples_of(outcomes: &[TestOutcome]) -> Vec<(String, Duration)> {
    let mut samples = Vec::new();
    for outcome in outcomes {
        for attempt in outcome
            .attempts
            .iter()
            .filter(|a| a.status == AttemptStatus::Passed)
        {
            samples.push((outcome.test.id.clone(), attempt.duration));
            for case in attempt
                .cases
                .iter()
                .filter(|c| c.status == AttemptStatus::Passed)
            {
                if case.id != outcome.test.id {
                    samples.push((case.id.clone(), case.duration));
                }
            }
        }
    }
    samples
}

/// Saves what the run learnt. With `--timings-out PATH` the run always
/// writes PATH: what it read plus its own samples (the one contract the CI
/// set-ups rely on: a shard's file is where it was told, on a first pipeline
/// too). Without it, an unpartitioned run adds its samples to the timings
/// file under its lock, and a shard never writes the file the split was
/// computed from (a later shard on the same machine would compute another
/// split and run tests twice): it writes `STEM.shard-K-of-N.json` beside it.
/// Returns the file written, if any.
pub fn save_run(
    path: &Path,
    out: Option<&Path>,
    read: &Timings,
    partition: Option<Partition>,
    samples: &[(String, Duration)],
) -> Result<Option<PathBuf>, String> {
    if let Some(out) = out.filter(|out| *out != path) {
        let mut updated = read.clone();
        updated.add(samples, unix_now());
        return updated.save_to(out).map(|()| Some(out.to_path_buf()));
    }
    if samples.is_empty() {
        return Ok(None);
    }
    // `--timings-out` naming the file read: the user's choice, under the lock.
    let partition = match partition {
        Some(partition) if out.is_none() => partition,
        _ => return Timings::record(path, samples).map(|()| Some(path.to_path_buf())),
    };
    let stem = path
        .file_stem()
        .map_or("timings".into(), |s| s.to_string_lossy().into_owned());
    let shard_path = path.with_file_name(format!(
        "{stem}.shard-{}-of-{}.json",
        partition.index, partition.total
    ));
    let mut shard = read.clone();
    shard.add(samples, unix_now());
    shard.save_to(&shard_path).map(|()| Some(shard_path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Invocation;

    fn secs(value: f64) -> Duration {
        Duration::from_secs_f64(value)
    }

    fn test_case(id: &str) -> TestCase {
        TestCase::new(id, "group", id, Invocation::Shell("true".to_owned()))
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        let odd = Timings::from_durations([
            ("t", secs(9.0), 1),
            ("t", secs(1.0), 2),
            ("t", secs(2.0), 3),
        ]);
        assert_eq!(odd.expected("t"), Some(secs(2.0)));
        let even = Timings::from_durations([
            ("t", secs(1.0), 1),
            ("t", secs(4.0), 2),
            ("t", secs(2.0), 3),
            ("t", secs(100.0), 4),
        ]);
        assert_eq!(even.expected("t"), Some(secs(3.0)));
        assert_eq!(even.expected("never"), None);
    }

    #[test]
    fn median_ignores_one_outlier() {
        let timings = Timings::from_durations(
            (0..5).map(|i| ("t", secs(if i == 2 { 60.0 } else { 1.0 }), i)),
        );
        assert_eq!(timings.expected("t"), Some(secs(1.0)));
    }

    #[test]
    fn unknown_tests_get_the_median_of_known_ones() {
        let timings = Timings::from_durations([
            ("a", secs(1.0), 1),
            ("b", secs(3.0), 1),
            ("c", secs(10.0), 1),
        ]);
        let tests: Vec<TestCase> = ["a", "new", "b", "c"].into_iter().map(test_case).collect();
        assert_eq!(
            timings.expected_durations(&tests),
            [secs(1.0), secs(3.0), secs(3.0), secs(10.0)]
        );
    }

    #[test]
    fn unknown_tests_fall_back_to_the_store_then_the_default() {
        let tests: Vec<TestCase> = ["x", "y"].into_iter().map(test_case).collect();
        let other = Timings::from_durations([("a", secs(2.0), 1), ("b", secs(4.0), 1)]);
        assert_eq!(other.expected_durations(&tests), [secs(3.0), secs(3.0)]);
        assert_eq!(
            Timings::new().expected_durations(&tests),
            [DEFAULT_EXPECTED, DEFAULT_EXPECTED]
        );
        assert!(Timings::new().expected_durations(&[]).is_empty());
    }
}
