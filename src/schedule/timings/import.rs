//! Import and merge: stores built from other sources (JUnit reports of any
//! tool, the stores of several shards), the newest samples winning.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::{MAX_DURATION, MAX_SAMPLES, Sample, Timings, unix_now};

impl Timings {
    /// Joins stores written by several shards or machines: per test the
    /// union of samples (an identical sample present in several inputs,
    /// such as history every shard restored from one cache, counts once),
    /// keeping the [`MAX_SAMPLES`] most recent by `recorded`.
    pub fn merge(inputs: &[Timings]) -> Timings {
        let mut tests: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
        for input in inputs {
            for (id, samples) in &input.tests {
                tests
                    .entry(id.clone())
                    .or_default()
                    .extend_from_slice(samples);
            }
        }
        Timings::normalized(tests)
    }

    /// Builds a store from imported durations: `(test id, duration,
    /// recorded)`, in any order; as in `merge`, the newest samples win.
    pub fn from_durations<I, S>(durations: I) -> Timings
    where
        I: IntoIterator<Item = (S, Duration, u64)>,
        S: Into<String>,
    {
        let mut tests: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
        for (id, duration, recorded) in durations {
            tests
                .entry(id.into())
                .or_default()
                .push(Sample { duration, recorded });
        }
        Timings::normalized(tests)
    }

    /// Orders each test's samples by time (then duration, so the result
    /// does not depend on input order), drops exact duplicates and keeps
    /// the newest.
    fn normalized(mut tests: BTreeMap<String, Vec<Sample>>) -> Timings {
        for samples in tests.values_mut() {
            samples.sort_unstable_by_key(|sample| (sample.recorded, sample.duration));
            samples.dedup();
            let excess = samples.len().saturating_sub(MAX_SAMPLES);
            samples.drain(..excess);
        }
        Timings {
            tests,
            problem: None,
        }
    }
}

/// Timings from JUnit reports: passing testcases only, as in a run. A
/// testcase's id is `SUITE NAME` (Cargo tests in our reports and nextest's:
/// suite = binary id); a pytest testcase (it has a `file` attribute, or its
/// suite is named after a `.py` file as in our reports) gives its node id
/// `FILE::NODE` and adds to its file's id `FILE`, the two granularities of
/// the pytest plugin. Times no test can take (negative,
/// NaN, over a week) are left out. The message of an error names the report.
pub fn from_reports(reports: &[PathBuf]) -> Result<Timings, String> {
    use crate::junit::read::{self as junit_read, ReadOutcome};
    let now = unix_now();
    let mut durations: Vec<(String, Duration, u64)> = Vec::new();
    for path in reports {
        let report = junit_read::read_report(path).map_err(|e| e.to_string())?;
        let mut files: BTreeMap<String, Duration> = BTreeMap::new();
        for suite in &report.suites {
            for case in suite
                .cases
                .iter()
                .filter(|c| c.outcome == ReadOutcome::Passed)
            {
                let Some(duration) = case.time.and_then(|t| Duration::try_from_secs_f64(t).ok())
                else {
                    continue;
                };
                if duration > MAX_DURATION {
                    continue;
                }
                // Ours name the suite after the test's file (a test inherited
                // from another file has that file as `file`); pytest's own
                // reports only have `file`.
                let file = match &case.file {
                    _ if suite.name.ends_with(".py") => Some(&suite.name),
                    file => file.as_ref(),
                };
                let pytest = file.map(|file| {
                    let node = crate::plugin::pytest::node_in_file(file, case);
                    (file.clone(), node)
                });
                match pytest {
                    Some((file, node)) => {
                        durations.push((format!("{file}::{node}"), duration, now));
                        *files.entry(file).or_default() += duration;
                    }
                    None => {
                        durations.push((format!("{} {}", suite.name, case.name), duration, now))
                    }
                }
            }
        }
        durations.extend(
            files
                .into_iter()
                .map(|(file, duration)| (file, duration, now)),
        );
    }
    Ok(Timings::from_durations(durations))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(value: f64) -> Duration {
        Duration::from_secs_f64(value)
    }

    #[test]
    fn merge_unions_dedups_and_keeps_the_newest() {
        let shared_history = [("t", secs(1.0), 10), ("t", secs(1.1), 20)];
        let shard_one = Timings::from_durations(shared_history.into_iter().chain([
            ("t", secs(1.2), 30),
            ("t", secs(1.3), 50),
            ("only_one", secs(7.0), 30),
        ]));
        let shard_two = Timings::from_durations(shared_history.into_iter().chain([
            ("t", secs(1.4), 40),
            ("t", secs(1.5), 60),
            ("only_two", secs(8.0), 31),
        ]));
        let merged = Timings::merge(&[shard_one.clone(), shard_two.clone()]);
        let recorded: Vec<u64> = merged
            .samples("t")
            .iter()
            .map(|sample| sample.recorded)
            .collect();
        assert_eq!(recorded, [20, 30, 40, 50, 60]);
        assert_eq!(merged.expected("only_one"), Some(secs(7.0)));
        assert_eq!(merged.expected("only_two"), Some(secs(8.0)));
        assert_eq!(Timings::merge(&[shard_two, shard_one]), merged);
        assert_eq!(Timings::merge(&[]), Timings::new());
    }

    #[test]
    fn from_durations_keeps_the_newest_five_in_time_order() {
        let timings = Timings::from_durations(
            (0..8u64)
                .rev()
                .map(|i| ("t".to_owned(), Duration::from_secs(i), i)),
        );
        let kept: Vec<u64> = timings
            .samples("t")
            .iter()
            .map(|sample| sample.recorded)
            .collect();
        assert_eq!(kept, [3, 4, 5, 6, 7]);
    }
}
