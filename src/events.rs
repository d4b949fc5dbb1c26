//! The one event type: workers send these over a channel to the reporter
//! thread, which alone owns the terminal and the report files.

use std::path::PathBuf;
use std::time::Duration;

use crate::model::{Attempt, TestResult};
use crate::report::Counts;

/// Something that happened during a run. Tests are named by their index in
/// the run's test list.
#[derive(Debug, Clone)]
pub enum Event {
    /// The first event: what is about to run.
    RunStarted(RunStarted),
    /// A test reported without running (an ignored one), before the first test starts.
    TestSkipped { index: usize },
    WorkspaceReady {
        worker: usize,
        path: PathBuf,
        took: Duration,
    },
    /// The worker is out of the run (its `--setup-workspace` failed, or its copy).
    WorkspaceFailed { worker: usize, message: String },
    /// One line a running test wrote (`--no-capture`), without its newline.
    Output {
        index: usize,
        stream: &'static str,
        line: String,
    },
    TestStarted {
        index: usize,
        worker: usize,
        attempt: u32,
    },
    TestSlow {
        index: usize,
        worker: usize,
        attempt: u32,
        elapsed: Duration,
    },
    /// One attempt ended. `result` is the test's final result when no attempt follows.
    AttemptFinished {
        index: usize,
        attempt: Attempt,
        result: Option<TestResult>,
    },
    /// A worker has nothing left to do.
    WorkerFinished { worker: usize, stats: WorkerStats },
    /// Something went wrong that does not stop the run (a failed teardown hook).
    Warning(String),
    /// A test's queued retry never ran (the run was interrupted or stopped
    /// first): its last attempt's failure is its final result.
    RetryCancelled { index: usize, result: TestResult },
    /// The last event: how the run ended and what it wrote.
    RunFinished(Box<RunFinished>),
}

#[derive(Debug, Clone)]
pub struct RunStarted {
    pub run_id: String,
    /// Tests to run (skipped ones aside).
    pub tests: usize,
    pub skipped: usize,
    pub workers: usize,
    /// `--partition K/N`, as given after `auto` was resolved.
    pub partition: Option<String>,
    /// The build whose shared queue the tests come from.
    pub queue: Option<String>,
    /// `copy`, `no` or `empty`.
    pub isolation: &'static str,
}

#[derive(Debug, Clone)]
pub struct RunFinished {
    pub counts: Counts,
    /// The run's wall-clock time, the one figure every report gives.
    pub wall: Duration,
    pub exit_code: i32,
    pub interrupted: bool,
    /// Why the run could not happen (exit 3): the JUnit report's stage and cause.
    pub cannot_run: Option<(String, String)>,
    /// A line for the reader before the summary (the cause of exit 3).
    pub error: Option<String>,
    /// After the summary: why nothing ran (`error: ...`, else a warning).
    pub no_tests: Option<String>,
    /// The makespan and its lower bound, when a test ran.
    pub makespan: Option<(Duration, Duration)>,
    /// What the run wrote, for the summary, in order; reporters that write
    /// a file add theirs when the run finishes.
    pub files: Vec<(&'static str, PathBuf)>,
    /// The JUnit report, if it was written.
    pub junit: Option<PathBuf>,
    /// The timings file written (`--timings-out`, else a shard's own
    /// `*.shard-K-of-N.json` when partitioned).
    pub timings: Option<PathBuf>,
    /// Failed tests beyond the GitHub annotations' cap, for the step summary.
    pub not_annotated: Vec<String>,
}

/// Where a worker's time went, for the summary (ParaTest printed idle time).
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkerStats {
    /// Making the workspace and running `--setup-workspace`.
    pub setup: Duration,
    /// Running tests and their per-test hooks.
    pub busy: Duration,
    /// Waiting for the queue (retries) and after the last test, until the run ended.
    pub idle: Duration,
    pub tests: usize,
}
