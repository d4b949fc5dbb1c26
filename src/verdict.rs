//! A run's exit code and, for an exit 3, its cause: the rule, apart from the
//! run that gathers its inputs (see `commands::run`).

use crate::config::{FlakyResult, NoTests};
use crate::error::exit;
use crate::model::{TestCase, TestOutcome, TestResult};
use crate::overrides::TestSettings;
use crate::schedule::partition::Partition;
use crate::selection::Selection;

/// What a finished run's exit code depends on.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ending<'a> {
    /// Ctrl-C, SIGTERM or SIGHUP.
    pub interrupted: bool,
    /// A thread or a process could not be had.
    pub resource_failure: Option<&'a str>,
    /// The shared queue went away during the run.
    pub queue_lost: bool,
    /// A test failed or timed out, or was flaky where flaky counts as failed.
    pub failed: bool,
    /// Workers that could not make or set up their workspace, of `workers`.
    pub workers_lost: usize,
    pub workers: usize,
    /// Tests the run was to run.
    pub to_run: usize,
}

/// Why a run could not happen (exit 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CannotRun {
    /// The JUnit report's stage.
    pub stage: &'static str,
    /// The JUnit report's `<error>` text.
    pub cause: String,
    /// The line before the summary (without `error: `).
    pub line: String,
}

impl Ending<'_> {
    /// The exit code, in order: interrupted (130), cannot run (3), tests
    /// failed (1), every worker lost (3); `None` when there was nothing to
    /// run, which [`no_tests`] decides.
    pub fn exit_code(&self) -> Option<i32> {
        Some(if self.interrupted {
            exit::INTERRUPTED
        } else if self.resource_failure.is_some() || self.queue_lost {
            exit::CANNOT_RUN
        } else if self.failed {
            exit::TESTS_FAILED
        } else if self.workers_lost == self.workers && self.to_run > 0 {
            exit::CANNOT_RUN
        } else if self.to_run == 0 {
            return None;
        } else {
            exit::OK
        })
    }

    /// The cause of an exit 3 (`exit_code` is the code [`Self::exit_code`]
    /// gave): the resources, the queue, else the workspaces, with each
    /// worker's failure to make one.
    pub fn cannot_run(&self, exit_code: i32, workspace_failures: &[String]) -> Option<CannotRun> {
        if exit_code != exit::CANNOT_RUN {
            return None;
        }
        Some(if let Some(failure) = self.resource_failure {
            CannotRun {
                stage: "resources",
                cause: failure.to_string(),
                line: failure.to_string(),
            }
        } else if self.queue_lost {
            let cause = "lost the queue: this machine's results are in its own report only";
            CannotRun {
                stage: "queue",
                cause: cause.to_string(),
                line: cause.to_string(),
            }
        } else {
            let line = "no workspace could be made: every worker was dropped".to_string();
            let mut cause = line.clone();
            for failure in workspace_failures {
                cause.push('\n');
                cause.push_str(failure);
            }
            CannotRun {
                stage: "workspaces",
                cause,
                line,
            }
        })
    }
}

/// A flaky test counts as failed: its own `flaky-result`, else the run's.
pub(crate) fn flaky_fails(
    outcomes: &[TestOutcome],
    tests: &[TestCase],
    per_test: &[TestSettings],
    default: FlakyResult,
) -> bool {
    outcomes.iter().any(|o| {
        o.result == TestResult::Flaky
            && tests
                .iter()
                .position(|t| t.id == o.test.id)
                .and_then(|i| per_test.get(i))
                .map_or(default == FlakyResult::Fail, |s| s.flaky_fails())
    })
}

/// The exit code and the message of a run with nothing to run: exit 4
/// unless `--no-tests` says otherwise; a shard of a suite that has tests
/// elsewhere only warns (another shard runs them).
pub(crate) fn no_tests(
    no_tests: NoTests,
    partition: Option<Partition>,
    selected: &[TestCase],
    selection: &Selection,
) -> (i32, String) {
    let runnable = selected.iter().filter(|t| !selection.skipped(t)).count();
    if let Some(partition) = partition
        && runnable > 0
    {
        return (
            exit::OK,
            format!(
                "shard {partition} has no test to run (the other shards run the {runnable} selected)"
            ),
        );
    }
    let why = selection.why_empty(selected.len());
    match no_tests {
        NoTests::Fail => (
            exit::NO_TESTS,
            format!(
                "error: no tests to run (exit 4; `--no-tests warn` or `pass` allows it): {why}"
            ),
        ),
        NoTests::Warn => (exit::OK, format!("no tests to run: {why}")),
        NoTests::Pass => (exit::OK, String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ran(to_run: usize) -> Ending<'static> {
        Ending {
            workers: 2,
            to_run,
            ..Ending::default()
        }
    }

    #[test]
    fn a_clean_run_passes_and_an_empty_one_goes_to_the_no_tests_rule() {
        assert_eq!(ran(3).exit_code(), Some(exit::OK));
        assert_eq!(ran(0).exit_code(), None);
    }

    #[test]
    fn an_interrupt_outranks_everything() {
        let ending = Ending {
            interrupted: true,
            resource_failure: Some("no threads"),
            failed: true,
            ..ran(3)
        };
        assert_eq!(ending.exit_code(), Some(exit::INTERRUPTED));
        assert_eq!(ending.cannot_run(exit::INTERRUPTED, &[]), None);
    }

    #[test]
    fn resources_and_a_lost_queue_outrank_failed_tests() {
        let resources = Ending {
            resource_failure: Some("no threads"),
            failed: true,
            ..ran(3)
        };
        assert_eq!(resources.exit_code(), Some(exit::CANNOT_RUN));
        let cause = resources.cannot_run(exit::CANNOT_RUN, &[]).unwrap();
        assert_eq!(
            (cause.stage, cause.line.as_str()),
            ("resources", "no threads")
        );
        let queue = Ending {
            queue_lost: true,
            failed: true,
            ..ran(3)
        };
        assert_eq!(queue.exit_code(), Some(exit::CANNOT_RUN));
        assert_eq!(
            queue.cannot_run(exit::CANNOT_RUN, &[]).unwrap().stage,
            "queue"
        );
    }

    #[test]
    fn failed_tests_outrank_lost_workers() {
        let failed = Ending {
            failed: true,
            workers_lost: 2,
            ..ran(3)
        };
        assert_eq!(failed.exit_code(), Some(exit::TESTS_FAILED));
        assert_eq!(failed.cannot_run(exit::TESTS_FAILED, &[]), None);
    }

    #[test]
    fn every_worker_lost_cannot_run_and_names_each_failure() {
        let lost = Ending {
            workers_lost: 2,
            ..ran(3)
        };
        assert_eq!(lost.exit_code(), Some(exit::CANNOT_RUN));
        let failures = ["w0: disk full".to_string(), "w1: disk full".to_string()];
        let cause = lost.cannot_run(exit::CANNOT_RUN, &failures).unwrap();
        assert_eq!(cause.stage, "workspaces");
        assert_eq!(
            cause.cause,
            "no workspace could be made: every worker was dropped\nw0: disk full\nw1: disk full"
        );
        assert_eq!(
            cause.line,
            "no workspace could be made: every worker was dropped"
        );
        // One worker left is enough to run.
        let one_left = Ending {
            workers_lost: 1,
            ..ran(3)
        };
        assert_eq!(one_left.exit_code(), Some(exit::OK));
    }
}
