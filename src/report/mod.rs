//! Reporters: one [`Pipeline`] takes every [`Event`] of a run, records it
//! in the [`Collector`], then hands it to each [`Reporter`]: the console,
//! the JSON or TeamCity stream, the JUnit file and the step summary.

pub mod annotations;
pub mod cases;
pub mod console;
pub mod json;
pub mod junit_file;
pub mod step_summary;
pub mod teamcity;

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::events::{Event, RunFinished, WorkerStats};
use crate::model::{Attempt, CaseKind, TestCase, TestOutcome, TestResult};

/// A view of the run's events. `run` has recorded the event already.
pub trait Reporter: Send {
    fn event(&mut self, run: &Collector<'_>, event: &Event);
    /// The run is over and about to be told with `run-finished`: a reporter
    /// that writes a file writes it now and adds it to `end`. Returns the
    /// warnings it has (a file it could not write).
    fn finish(&mut self, _run: &Collector<'_>, _end: &mut RunFinished) -> Vec<String> {
        Vec::new()
    }
}

/// The one path of the events: the reporter thread feeds it during the
/// run, the main thread after the workers are done (the retries cancelled,
/// `run-finished`).
pub struct Pipeline<'a> {
    pub collector: Collector<'a>,
    reporters: Vec<Box<dyn Reporter + 'a>>,
}

impl<'a> Pipeline<'a> {
    pub fn new(tests: &'a [TestCase], reporters: Vec<Box<dyn Reporter + 'a>>) -> Self {
        Pipeline {
            collector: Collector::new(tests),
            reporters,
        }
    }

    pub fn event(&mut self, event: &Event) {
        self.collector.record(event);
        for reporter in &mut self.reporters {
            reporter.event(&self.collector, event);
        }
    }

    /// Lets the file writers write, tells their warnings, then `end`.
    pub fn finish(&mut self, mut end: RunFinished) {
        let mut warnings = Vec::new();
        for reporter in &mut self.reporters {
            warnings.extend(reporter.finish(&self.collector, &mut end));
        }
        for warning in warnings {
            self.event(&Event::Warning(warning));
        }
        self.event(&Event::RunFinished(Box::new(end)));
    }
}

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
            Event::TestSkipped { index } => self.results[*index] = Some(TestResult::Skipped),
            Event::RetryCancelled { index, result } => self.results[*index] = Some(*result),
            Event::RunStarted(_)
            | Event::RunFinished(_)
            | Event::WorkspaceReady { .. }
            | Event::TestStarted { .. }
            | Event::TestSlow { .. }
            | Event::Output { .. } => {}
        }
    }

    pub fn tests(&self) -> &'a [TestCase] {
        self.tests
    }

    /// Test `index` is another machine's now (its retry went back to a
    /// shared queue): it is in that build's report, not this run's.
    pub fn forget(&mut self, index: usize) {
        self.attempts[index].clear();
        self.results[index] = None;
    }

    /// The final result of a test whose last attempt is recorded (its
    /// retry may never have run): what [`Collector::outcomes`] gives it.
    pub fn result_of(&self, index: usize) -> Option<TestResult> {
        self.outcome_result(index)
    }

    /// Every attempt of test `index` recorded so far.
    pub fn attempts_of(&self, index: usize) -> &[Attempt] {
        &self.attempts[index]
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
        (0..self.tests.len())
            .filter_map(|index| {
                Some(TestOutcome {
                    test: self.tests[index].clone(),
                    result: self.outcome_result(index)?,
                    attempts: self.attempts[index].clone(),
                })
            })
            .collect()
    }

    fn outcome_result(&self, index: usize) -> Option<TestResult> {
        self.results[index].or_else(|| {
            use crate::model::AttemptStatus;
            // The last real failure decides; an interrupt is no verdict.
            let attempts = &self.attempts[index];
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
        })
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

/// What the reporters' unit tests share: a writer they can read back, a
/// suite, attempts.
#[cfg(test)]
pub(crate) mod testing {
    use std::io::Write;
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, SystemTime};

    use crate::model::{Attempt, AttemptStatus, Invocation, TestCase};

    /// A `Write` whose bytes the test reads after the reporter wrote them.
    #[derive(Clone, Default)]
    pub struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Buffer {
        pub fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    pub fn suite(names: &[&str]) -> Vec<TestCase> {
        names
            .iter()
            .map(|name| {
                let invocation = Invocation::Shell(String::new());
                TestCase::new(format!("group {name}"), "group", *name, invocation)
            })
            .collect()
    }

    pub fn attempt(
        number: u32,
        worker: usize,
        status: AttemptStatus,
        message: Option<&str>,
    ) -> Attempt {
        Attempt {
            number,
            worker,
            status,
            started: SystemTime::UNIX_EPOCH,
            duration: Duration::from_millis(1500),
            message: message.map(String::from),
            stdout_path: PathBuf::from("/logs/out"),
            stderr_path: PathBuf::from("/logs/err"),
            cases: Vec::new(),
        }
    }
}

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
