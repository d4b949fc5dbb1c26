//! Splitting the tests between CI machines (`--partition K/N`) by expected
//! time, and predicting how one machine's workers will share its queue.
//!
//! Shards are packed by expected duration (LPT: longest processing time
//! first), not by count or hash as nextest does, because one long test can
//! otherwise leave its shard running long after the others finished. Every
//! machine computes the split on its own, so it must depend only on the test
//! ids and timings: never on discovery order, thread timing or the host.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::model::TestCase;

/// Shard `index` of `total`, both counted from 1 as users write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Partition {
    pub index: usize,
    pub total: usize,
}

/// The most shards a suite may be split into: far more than any CI runs,
/// and small enough that per-shard bookkeeping stays cheap.
pub const MAX_SHARDS: usize = 100_000;

impl Partition {
    /// A checked partition; the error says which bound is broken.
    pub fn new(index: usize, total: usize) -> Result<Partition, String> {
        if total == 0 {
            Err("N, the number of shards, must be at least 1".to_owned())
        } else if total > MAX_SHARDS {
            Err(format!(
                "N, the number of shards, must be between 1 and {MAX_SHARDS}; got {total}"
            ))
        } else if index == 0 {
            Err(format!("K is 1-based: shards are numbered 1 to {total}"))
        } else if index > total {
            Err(format!(
                "there is no shard {index} of {total}: K must be between 1 and {total}"
            ))
        } else {
            Ok(Partition { index, total })
        }
    }
}

impl FromStr for Partition {
    type Err = String;

    /// Parses `K/N`. `auto` is not handled here: it needs the environment,
    /// see [`from_ci_env`].
    fn from_str(text: &str) -> Result<Partition, String> {
        let invalid = |why: &str| format!("invalid partition `{text}`: {why}");
        let Some((index, total)) = text.trim().split_once('/') else {
            return Err(invalid(
                "expected K/N (shard K of N, counted from 1), for example 1/3",
            ));
        };
        let (Ok(index), Ok(total)) = (index.trim().parse::<usize>(), total.trim().parse::<usize>())
        else {
            return Err(invalid("K and N must be whole numbers, for example 1/3"));
        };
        Partition::new(index, total).map_err(|why| invalid(&why))
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

/// A CI system's pair of shard variables.
struct CiVariables {
    index: &'static str,
    total: &'static str,
    /// The number the system gives the first shard.
    first: usize,
}

const CI_VARIABLES: [CiVariables; 3] = [
    // GitLab
    CiVariables {
        index: "CI_NODE_INDEX",
        total: "CI_NODE_TOTAL",
        first: 1,
    },
    // CircleCI
    CiVariables {
        index: "CIRCLE_NODE_INDEX",
        total: "CIRCLE_NODE_TOTAL",
        first: 0,
    },
    // Buildkite
    CiVariables {
        index: "BUILDKITE_PARALLEL_JOB",
        total: "BUILDKITE_PARALLEL_JOB_COUNT",
        first: 0,
    },
];

/// `--partition auto`: the shard this CI job is, from the variables of
/// GitLab, CircleCI or Buildkite (checked in that order). `get` reads one
/// environment variable; it is a parameter so tests need not touch the
/// process environment.
pub fn from_ci_env(get: impl Fn(&str) -> Option<String>) -> Result<Partition, String> {
    // CI templates often export a variable as empty rather than leaving it unset.
    let get = |name: &str| get(name).filter(|value| !value.trim().is_empty());
    for variables in &CI_VARIABLES {
        match (get(variables.index), get(variables.total)) {
            (Some(index), Some(total)) => return variables.partition(&index, &total),
            (None, None) => {}
            // GitLab sets CI_NODE_TOTAL=1 on every job without `parallel:`
            // and CI_NODE_INDEX only on parallel ones: one shard of one.
            (None, Some(total)) if variables.first == 1 && total.trim() == "1" => {
                return Ok(Partition { index: 1, total: 1 });
            }
            (None, Some(_)) => {
                return Err(format!(
                    "--partition auto: {} is set but {} is not",
                    variables.total, variables.index
                ));
            }
            (Some(_), None) => {
                return Err(format!(
                    "--partition auto: {} is set but {} is not",
                    variables.index, variables.total
                ));
            }
        }
    }
    Err("--partition auto found no CI shard variables: it reads CI_NODE_INDEX/CI_NODE_TOTAL (GitLab), \
         CIRCLE_NODE_INDEX/CIRCLE_NODE_TOTAL (CircleCI) and BUILDKITE_PARALLEL_JOB/BUILDKITE_PARALLEL_JOB_COUNT \
         (Buildkite); set them or pass --partition K/N"
        .to_owned())
}

impl CiVariables {
    fn partition(&self, index: &str, total: &str) -> Result<Partition, String> {
        let number = |name: &str, value: &str| {
            value
                .trim()
                .parse::<usize>()
                .map_err(|_| format!("--partition auto: {name}=`{value}` is not a whole number"))
        };
        let index_value = number(self.index, index)?;
        let total_value = number(self.total, total)?;
        if total_value == 0 {
            return Err(format!(
                "--partition auto: {}=0, there must be at least one shard",
                self.total
            ));
        }
        let last = total_value - 1 + self.first;
        if index_value < self.first || index_value > last {
            return Err(format!(
                "--partition auto: {}={index_value} is out of range for {}={total_value} (expected {} to {last})",
                self.index, self.total, self.first
            ));
        }
        Partition::new(index_value - self.first + 1, total_value)
            .map_err(|why| format!("--partition auto: {}={total_value}: {why}", self.total))
    }
}

/// The 1-based shard of each test (same order as `tests`), by
/// deterministic LPT bin packing into `total` shards.
///
/// Longest expected first, equal durations by test id; each test goes to
/// the shard with the least expected time so far, then the fewest tests,
/// then the lowest number. The test-count tie-break only matters for
/// tests expected to take no time at all, which would otherwise all pile
/// onto one shard. Only ids and durations are looked at, so the discovery
/// order cannot change the split.
///
/// Panics if `total` is 0 or the slices differ in length: both are bugs of
/// the caller ([`Partition`] cannot hold 0).
pub fn shard_of(tests: &[TestCase], expected: &[Duration], total: usize) -> Vec<usize> {
    assert!(total > 0, "a partition has at least one shard");
    assert_eq!(
        tests.len(),
        expected.len(),
        "one expected duration per test"
    );
    let mut order: Vec<usize> = (0..tests.len()).collect();
    order.sort_unstable_by(|&a, &b| {
        expected[b]
            .cmp(&expected[a])
            .then_with(|| tests[a].id.cmp(&tests[b].id))
            .then(a.cmp(&b))
    });
    // (expected load, test count, shard number), least first.
    let mut shards: BinaryHeap<Reverse<(Duration, usize, usize)>> = (1..=total)
        .map(|shard| Reverse((Duration::ZERO, 0, shard)))
        .collect();
    let mut shard_of = vec![0; tests.len()];
    for test in order {
        let Reverse((load, count, shard)) = shards.pop().expect("total > 0 shards");
        shard_of[test] = shard;
        shards.push(Reverse((load + expected[test], count + 1, shard)));
    }
    shard_of
}

/// Expected time of each shard (index 0 is shard 1), from [`shard_of`]'s
/// result: what `list --plan` and the balance benchmark report.
pub fn shard_loads(expected: &[Duration], shard_of: &[usize], total: usize) -> Vec<Duration> {
    let mut loads = vec![Duration::ZERO; total];
    for (duration, &shard) in expected.iter().zip(shard_of) {
        loads[shard - 1] += *duration;
    }
    loads
}

/// How one machine's run is expected to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The 1-based worker of each test, in queue order.
    pub worker_of: Vec<usize>,
    /// When the last worker is expected to finish.
    pub makespan: Duration,
    /// No schedule can finish sooner: see [`lower_bound`].
    pub lower_bound: Duration,
}

impl Plan {
    /// Makespan over lower bound: 1.0 is perfect. 1.0 for an empty run.
    pub fn ratio(&self) -> f64 {
        if self.lower_bound.is_zero() {
            1.0
        } else {
            self.makespan.as_secs_f64() / self.lower_bound.as_secs_f64()
        }
    }
}

/// Simulates the shared queue: tests are taken in the given order, each by
/// the worker that becomes free first (the lowest number on a tie), as the
/// runner's workers pull them. Workspace set-up and per-test overhead are
/// not modelled.
///
/// Panics if `workers` is 0.
pub fn plan(expected_in_queue_order: &[Duration], workers: usize) -> Plan {
    assert!(workers > 0, "a run has at least one worker");
    let mut free_at: BinaryHeap<Reverse<(Duration, usize)>> = (1..=workers)
        .map(|worker| Reverse((Duration::ZERO, worker)))
        .collect();
    let mut worker_of = Vec::with_capacity(expected_in_queue_order.len());
    let mut makespan = Duration::ZERO;
    for &duration in expected_in_queue_order {
        let Reverse((start, worker)) = free_at.pop().expect("workers > 0");
        let end = start + duration;
        makespan = makespan.max(end);
        worker_of.push(worker);
        free_at.push(Reverse((end, worker)));
    }
    Plan {
        worker_of,
        makespan,
        lower_bound: lower_bound(expected_in_queue_order, workers),
    }
}

/// The shortest any schedule can take: no sooner than the longest test,
/// and no sooner than the total work spread perfectly over `workers`.
pub fn lower_bound(expected: &[Duration], workers: usize) -> Duration {
    assert!(workers > 0, "a run has at least one worker");
    let longest = expected.iter().copied().max().unwrap_or_default();
    let total: Duration = expected.iter().sum();
    let spread = Duration::from_nanos(
        (total.as_nanos() / workers as u128)
            .try_into()
            .unwrap_or(u64::MAX),
    );
    longest.max(spread)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Invocation;
    use crate::schedule::longest_first;
    use std::collections::HashMap;

    /// Indices of the tests in `partition`'s shard, in their input order
    /// (what `schedule::select` keeps).
    fn select(tests: &[TestCase], expected: &[Duration], partition: Partition) -> Vec<usize> {
        let shards = shard_of(tests, expected, partition.total);
        (0..tests.len())
            .filter(|&i| shards[i] == partition.index)
            .collect()
    }

    fn test_case(id: &str) -> TestCase {
        TestCase::new(id, "group", id, Invocation::Shell("true".to_owned()))
    }

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    /// A fixed-seed generator (Knuth's MMIX LCG): reproducible without a dependency.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }
    }

    /// `count` tests with skewed durations (many short, a few long).
    fn suite(count: usize, seed: u64) -> (Vec<TestCase>, Vec<Duration>) {
        let mut random = Lcg(seed);
        let tests = (0..count)
            .map(|i| test_case(&format!("crate::module_{}::test_{i}", i % 17)))
            .collect();
        let expected = (0..count)
            .map(|_| {
                let base = random.next() % 1000;
                ms(if random.next().is_multiple_of(20) {
                    base * 20
                } else {
                    base
                } + 1)
            })
            .collect();
        (tests, expected)
    }

    #[test]
    fn parses_and_displays_k_of_n() {
        assert_eq!(
            "2/3".parse::<Partition>(),
            Ok(Partition { index: 2, total: 3 })
        );
        assert_eq!(
            " 1 / 1 ".parse::<Partition>(),
            Ok(Partition { index: 1, total: 1 })
        );
        assert_eq!("3/3".parse::<Partition>().unwrap().to_string(), "3/3");
    }

    #[test]
    fn rejects_bad_partitions_with_clear_messages() {
        let error = |text: &str| text.parse::<Partition>().unwrap_err();
        assert_eq!(
            error("1/0"),
            "invalid partition `1/0`: N, the number of shards, must be at least 1"
        );
        assert_eq!(
            error("0/3"),
            "invalid partition `0/3`: K is 1-based: shards are numbered 1 to 3"
        );
        assert_eq!(
            error("3/2"),
            "invalid partition `3/2`: there is no shard 3 of 2: K must be between 1 and 2"
        );
        assert!(error("x/y").contains("whole numbers"));
        assert!(error("-1/2").contains("whole numbers"));
        assert!(error("1/2/3").contains("whole numbers"));
        assert!(error("3").contains("expected K/N"));
        assert!(error("").contains("expected K/N"));
        assert!(error("auto").contains("expected K/N"));
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn gitlab_is_one_based() {
        let partition = from_ci_env(env(&[("CI_NODE_INDEX", "1"), ("CI_NODE_TOTAL", "4")]));
        assert_eq!(partition, Ok(Partition { index: 1, total: 4 }));
        let partition = from_ci_env(env(&[("CI_NODE_INDEX", "4"), ("CI_NODE_TOTAL", "4")]));
        assert_eq!(partition, Ok(Partition { index: 4, total: 4 }));
        let error =
            from_ci_env(env(&[("CI_NODE_INDEX", "0"), ("CI_NODE_TOTAL", "4")])).unwrap_err();
        assert!(
            error.contains("CI_NODE_INDEX=0") && error.contains("1 to 4"),
            "{error}"
        );
    }

    #[test]
    fn gitlab_job_without_parallel_is_one_shard() {
        assert_eq!(
            from_ci_env(env(&[("CI_NODE_TOTAL", "1")])),
            Ok(Partition { index: 1, total: 1 })
        );
        let error = from_ci_env(env(&[("CI_NODE_TOTAL", "3")])).unwrap_err();
        assert!(error.contains("CI_NODE_INDEX"), "{error}");
    }

    #[test]
    fn circleci_is_zero_based() {
        let partition = from_ci_env(env(&[
            ("CIRCLE_NODE_INDEX", "0"),
            ("CIRCLE_NODE_TOTAL", "3"),
        ]));
        assert_eq!(partition, Ok(Partition { index: 1, total: 3 }));
        let partition = from_ci_env(env(&[
            ("CIRCLE_NODE_INDEX", "2"),
            ("CIRCLE_NODE_TOTAL", "3"),
        ]));
        assert_eq!(partition, Ok(Partition { index: 3, total: 3 }));
        let error = from_ci_env(env(&[
            ("CIRCLE_NODE_INDEX", "3"),
            ("CIRCLE_NODE_TOTAL", "3"),
        ]))
        .unwrap_err();
        assert!(
            error.contains("CIRCLE_NODE_INDEX=3") && error.contains("0 to 2"),
            "{error}"
        );
    }

    #[test]
    fn buildkite_is_zero_based() {
        let partition = from_ci_env(env(&[
            ("BUILDKITE_PARALLEL_JOB", "1"),
            ("BUILDKITE_PARALLEL_JOB_COUNT", "2"),
        ]));
        assert_eq!(partition, Ok(Partition { index: 2, total: 2 }));
    }

    #[test]
    fn malformed_ci_values_name_the_variable() {
        let error = from_ci_env(env(&[
            ("CIRCLE_NODE_INDEX", "first"),
            ("CIRCLE_NODE_TOTAL", "3"),
        ]))
        .unwrap_err();
        assert!(error.contains("CIRCLE_NODE_INDEX=`first`"), "{error}");
        let error = from_ci_env(env(&[
            ("BUILDKITE_PARALLEL_JOB", "0"),
            ("BUILDKITE_PARALLEL_JOB_COUNT", "0"),
        ]))
        .unwrap_err();
        assert!(error.contains("BUILDKITE_PARALLEL_JOB_COUNT=0"), "{error}");
        let error = from_ci_env(env(&[("BUILDKITE_PARALLEL_JOB", "0")])).unwrap_err();
        assert!(error.contains("BUILDKITE_PARALLEL_JOB_COUNT"), "{error}");
    }

    #[test]
    fn no_ci_variables_is_an_error_naming_them_all() {
        for no_ci in [
            env(&[]),
            env(&[("CI_NODE_INDEX", ""), ("CIRCLE_NODE_TOTAL", " ")]),
        ] {
            let error = from_ci_env(no_ci).unwrap_err();
            for name in [
                "CI_NODE_INDEX",
                "CI_NODE_TOTAL",
                "CIRCLE_NODE_INDEX",
                "CIRCLE_NODE_TOTAL",
                "BUILDKITE_PARALLEL_JOB",
                "BUILDKITE_PARALLEL_JOB_COUNT",
            ] {
                assert!(error.contains(name), "{name} missing from: {error}");
            }
        }
    }

    #[test]
    fn lpt_packs_longest_first_into_the_least_loaded_shard() {
        let tests: Vec<TestCase> = ["a", "b", "c", "d", "e"]
            .into_iter()
            .map(test_case)
            .collect();
        let expected = [ms(7), ms(5), ms(4), ms(3), ms(1)];
        // a(7)->1, b(5)->2, c(4)->2 (9), d(3)->1 (10), e(1)->2 (10).
        assert_eq!(shard_of(&tests, &expected, 2), [1, 2, 2, 1, 2]);
        assert_eq!(
            shard_loads(&expected, &shard_of(&tests, &expected, 2), 2),
            [ms(10), ms(10)]
        );
    }

    #[test]
    fn ties_go_by_test_id_then_lowest_shard() {
        let tests: Vec<TestCase> = ["d", "b", "a", "c"].into_iter().map(test_case).collect();
        let expected = [ms(5); 4];
        // Sorted a, b, c, d; shards 1, 2, 3, then the earliest least-loaded: 1.
        assert_eq!(shard_of(&tests, &expected, 3), [1, 2, 1, 3]);
    }

    #[test]
    fn zero_duration_tests_are_spread_by_count() {
        let tests: Vec<TestCase> = (0..9).map(|i| test_case(&format!("t{i}"))).collect();
        let shards = shard_of(&tests, &[Duration::ZERO; 9], 3);
        for shard in 1..=3 {
            assert_eq!(shards.iter().filter(|&&s| s == shard).count(), 3);
        }
    }

    #[test]
    fn split_does_not_depend_on_input_order() {
        let (tests, expected) = suite(200, 7);
        let by_id = |tests: &[TestCase], shards: Vec<usize>| -> HashMap<String, usize> {
            tests
                .iter()
                .map(|test| test.id.clone())
                .zip(shards)
                .collect()
        };
        let reference = by_id(&tests, shard_of(&tests, &expected, 4));
        let mut random = Lcg(99);
        for _ in 0..5 {
            let mut pairs: Vec<(TestCase, Duration)> = tests
                .iter()
                .cloned()
                .zip(expected.iter().copied())
                .collect();
            // Fisher-Yates with the fixed-seed generator.
            for i in (1..pairs.len()).rev() {
                pairs.swap(i, (random.next() % (i as u64 + 1)) as usize);
            }
            let (shuffled, durations): (Vec<TestCase>, Vec<Duration>) = pairs.into_iter().unzip();
            assert_eq!(
                by_id(&shuffled, shard_of(&shuffled, &durations, 4)),
                reference
            );
        }
        assert_eq!(
            shard_of(&tests, &expected, 4),
            shard_of(&tests, &expected, 4)
        );
    }

    #[test]
    fn every_test_is_in_exactly_one_shard() {
        let (tests, expected) = suite(101, 3);
        let total = 4;
        let mut seen = vec![0; tests.len()];
        for index in 1..=total {
            for test in select(&tests, &expected, Partition { index, total }) {
                seen[test] += 1;
            }
        }
        assert!(seen.iter().all(|&count| count == 1));
        let shards = shard_of(&tests, &expected, total);
        assert!(shards.iter().all(|&shard| (1..=total).contains(&shard)));
        let first = select(&tests, &expected, Partition { index: 1, total });
        assert!(
            first.windows(2).all(|pair| pair[0] < pair[1]),
            "select keeps input order"
        );
    }

    #[test]
    fn three_shards_of_three_hundred_tests_are_balanced() {
        let (tests, expected) = suite(300, 42);
        let loads = shard_loads(&expected, &shard_of(&tests, &expected, 3), 3);
        let max = loads.iter().max().unwrap().as_secs_f64();
        let mean = loads.iter().sum::<Duration>().as_secs_f64() / 3.0;
        assert!(
            max / mean <= 1.05,
            "loads {loads:?}: max/mean {}",
            max / mean
        );
    }

    #[test]
    fn unknown_tests_with_the_fallback_duration_spread_evenly() {
        use crate::schedule::timings::Timings;
        let tests: Vec<TestCase> = (0..12).map(|i| test_case(&format!("t{i:02}"))).collect();
        let known = Timings::from_durations([
            ("t00", ms(6000), 1),
            ("t01", ms(1000), 1),
            ("t02", ms(1000), 1),
        ]);
        let expected = known.expected_durations(&tests);
        let shards = shard_of(&tests, &expected, 3);
        // t00 alone fills shard 1 (6 s); the ten 1 s tests balance the rest.
        assert_eq!(shards[0], 1);
        let loads = shard_loads(&expected, &shards, 3);
        assert_eq!(loads, [ms(6000), ms(6000), ms(5000)]);
    }

    #[test]
    fn empty_list_and_more_shards_than_tests() {
        assert!(shard_of(&[], &[], 3).is_empty());
        assert!(select(&[], &[], Partition { index: 2, total: 3 }).is_empty());
        let tests: Vec<TestCase> = ["a", "b"].into_iter().map(test_case).collect();
        let expected = [ms(1), ms(2)];
        assert_eq!(shard_of(&tests, &expected, 5), [2, 1]);
        assert!(select(&tests, &expected, Partition { index: 5, total: 5 }).is_empty());
    }

    #[test]
    fn plan_simulates_the_shared_queue() {
        // Longest first over 2 workers: 4 -> w1, 3 -> w2, 2 -> w2 (free at 3),
        // 2 -> w1 (free at 4), 1 -> w2 (free at 5).
        let queue = [ms(4), ms(3), ms(2), ms(2), ms(1)];
        let plan = plan(&queue, 2);
        assert_eq!(plan.worker_of, [1, 2, 2, 1, 2]);
        assert_eq!(plan.makespan, ms(6));
        assert_eq!(plan.lower_bound, ms(6));
        assert_eq!(plan.ratio(), 1.0);
    }

    #[test]
    fn a_long_test_last_in_the_queue_shows_in_the_plan() {
        // The skewed fixture of issue 3: sixteen 0.5 s tests and one 4 s test.
        let mut queue = vec![ms(500); 16];
        queue.push(ms(4000));
        let worst = plan(&queue, 4);
        assert_eq!(worst.makespan, ms(6000));
        queue.rotate_right(1);
        let best = plan(&queue, 4);
        assert_eq!(best.makespan, ms(4000));
        assert_eq!(best.lower_bound, ms(4000));
        assert!(worst.ratio() > 1.4);
    }

    #[test]
    fn lower_bound_is_the_longest_test_or_the_spread_work() {
        assert_eq!(lower_bound(&[], 4), Duration::ZERO);
        assert_eq!(lower_bound(&[ms(10), ms(1), ms(1)], 2), ms(10));
        assert_eq!(lower_bound(&[ms(3); 4], 2), ms(6));
        assert_eq!(lower_bound(&[ms(1); 3], 2), Duration::from_micros(1500));
        let empty = plan(&[], 3);
        assert_eq!((empty.makespan, empty.ratio()), (Duration::ZERO, 1.0));
    }

    #[test]
    fn more_workers_than_tests_use_the_lowest_numbers() {
        assert_eq!(plan(&[ms(2), ms(1)], 8).worker_of, [1, 2]);
    }

    #[test]
    fn plan_of_a_longest_first_queue_is_near_the_lower_bound() {
        let (tests, expected) = suite(300, 11);
        let queue: Vec<Duration> = longest_first(&tests, &expected, 0..tests.len())
            .into_iter()
            .map(|test| expected[test])
            .collect();
        let plan = plan(&queue, 4);
        assert!(plan.makespan >= plan.lower_bound);
        assert!(plan.ratio() <= 1.05, "ratio {}", plan.ratio());
    }

    /// 100,000 tests through a 10-way partition and the queue: it must merely
    /// finish here; how fast is the benchmark's to measure.
    #[test]
    fn scales_to_a_hundred_thousand_tests() {
        let (tests, expected) = suite(100_000, 5);
        let shards = shard_of(&tests, &expected, 10);
        let mine = select(
            &tests,
            &expected,
            Partition {
                index: 3,
                total: 10,
            },
        );
        assert_eq!(
            mine.len(),
            shards.iter().filter(|&&shard| shard == 3).count()
        );
        let order = longest_first(&tests, &expected, 0..tests.len());
        assert_eq!(order.len(), tests.len());
        let queue: Vec<Duration> = order.iter().map(|&test| expected[test]).collect();
        assert_eq!(plan(&queue, 16).worker_of.len(), tests.len());
    }
}
