//! Reporters: the thread that owns the terminal and collects every attempt
//! ([`Collector`]), the console and JSON views of the events, and the JUnit
//! report written from what was collected.

pub mod cases;
pub mod console;
pub mod json;
pub mod junit_file;
pub mod step_summary;

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::events::{Event, WorkerStats};
use crate::model::{Attempt, CaseKind, TestCase, TestOutcome, TestResult};

/// Everything the reporter thread learnt from the events of one run.
pub struct Collector<'a> {
    tests: &'a [TestCase],
    attempts: Vec<Vec<Attempt>>,
    results: Vec<Option<TestResult>>,
    pub workers: Vec<(usize, WorkerStats)>,
    pub workspace_failures: Vec<String>,
    pub warnings: Vec<String>,
}

impl<'a> Collector<'a> {
    pub fn new(tests: &'a [TestCase]) -> Self {
        Collector {
            tests,
            attempts: vec![Vec::new(); tests.len()],
            results: vec![None; tests.len()],
            workers: Vec::new(),
            workspace_failures: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub fn record(&mut self, event: &Event) {
        match event {
            Event::AttemptFinished {
                index,
                attempt,
                result,
            } => {
                self.attempts[*index].push(attempt.clone());
                self.results[*index] = *result;
            }
            Event::WorkerFinished { worker, stats } => self.workers.push((*worker, *stats)),
            Event::WorkspaceFailed { message, .. } => self.workspace_failures.push(message.clone()),
            Event::Warning(message) => self.warnings.push(message.clone()),
            Event::WorkspaceReady { .. }
            | Event::TestStarted { .. }
            | Event::TestSlow { .. }
            | Event::Output { .. } => {}
        }
    }

    /// Every attempt of test `index` recorded so far.
    pub fn attempts_of(&self, index: usize) -> &[Attempt] {
        &self.attempts[index]
    }

    /// Marks tests that are reported without running (ignored ones).
    pub fn skip(&mut self, index: usize) {
        self.results[index] = Some(TestResult::Skipped);
    }

    /// Tests whose retry never ran (the run was interrupted while it was
    /// queued): their last attempt's failure is their result.
    pub fn unfinished(&self) -> Vec<usize> {
        (0..self.tests.len())
            .filter(|&i| self.results[i].is_none() && !self.attempts[i].is_empty())
            .collect()
    }

    /// One outcome per test that has a result, in the test list's order. A
    /// test cut short by an interrupt or fail-fast after a failed attempt
    /// keeps that failure.
    pub fn outcomes(&self) -> Vec<TestOutcome> {
        self.tests
            .iter()
            .zip(&self.attempts)
            .zip(&self.results)
            .filter_map(|((test, attempts), result)| {
                let result = result.or_else(|| {
                    use crate::model::AttemptStatus;
                    // The last real failure decides; an interrupt is no verdict.
                    let last = attempts
                        .iter()
                        .rev()
                        .find(|a| a.status != AttemptStatus::Interrupted)
                        .or(attempts.last())?;
                    Some(match last.status {
                        AttemptStatus::TimedOut => TestResult::TimedOut,
                        AttemptStatus::Interrupted => TestResult::Interrupted,
                        _ => TestResult::Failed,
                    })
                })?;
                Some(TestOutcome {
                    test: test.clone(),
                    result,
                    attempts: attempts.clone(),
                })
            })
            .collect()
    }
}

/// Counts of final results, for the summary line and the exit code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub passed: usize,
    pub flaky: usize,
    pub failed: usize,
    pub timed_out: usize,
    /// Skipped, expected failures (pytest's xfail) aside.
    pub skipped: usize,
    /// Skipped because they failed as expected (pytest's xfail).
    pub xfailed: usize,
    pub not_run: usize,
    /// Cut short by Ctrl-C or SIGTERM, with no real failure before.
    pub interrupted: usize,
}

impl Counts {
    pub fn of(outcomes: &[TestOutcome], not_run: usize) -> Counts {
        let mut counts = Counts {
            not_run,
            ..Counts::default()
        };
        for outcome in outcomes {
            *match outcome.result {
                TestResult::Passed => &mut counts.passed,
                TestResult::Flaky => &mut counts.flaky,
                TestResult::Failed => &mut counts.failed,
                TestResult::TimedOut => &mut counts.timed_out,
                TestResult::Skipped if cases::kind(outcome) == CaseKind::ExpectedFailure => {
                    &mut counts.xfailed
                }
                TestResult::Skipped => &mut counts.skipped,
                TestResult::Interrupted => &mut counts.interrupted,
            } += 1;
        }
        counts
    }

    pub fn run(&self) -> usize {
        self.passed + self.flaky + self.failed + self.timed_out + self.interrupted
    }
}

/// The last `lines` lines of a log file, read from its end so that a huge
/// log costs no more than its tail. Invalid UTF-8 and control characters are
/// made harmless for a terminal.
pub fn tail_lines(path: &Path, lines: usize) -> String {
    const WINDOW: u64 = 64 * 1024;
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = length.saturating_sub(WINDOW);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    let mut tail = all[all.len().saturating_sub(lines)..].join("\n");
    tail.retain(|c| c == '\n' || c == '\t' || !c.is_control());
    tail
}

/// `1.234s` for the console and summaries.
pub use crate::words::seconds;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_reads_only_the_end_and_cleans_control_characters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut text: String = (0..50_000).map(|i| format!("line {i}\n")).collect();
        text.push_str("bell\x07 \x1b[31mred\n");
        std::fs::write(&path, text).unwrap();
        assert_eq!(tail_lines(&path, 2), "line 49999\nbell [31mred");
        assert_eq!(tail_lines(&dir.path().join("missing"), 2), "");
    }
}
