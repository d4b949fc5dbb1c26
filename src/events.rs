//! The one event type: workers send these over a channel to the reporter
//! thread, which alone owns the terminal and the report files.

use std::path::PathBuf;
use std::time::Duration;

use crate::model::{Attempt, TestResult};

/// Something that happened during a run. Tests are named by their index in
/// the run's test list.
#[derive(Debug, Clone)]
pub enum Event {
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
