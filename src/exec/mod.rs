//! The runner: one worker thread per workspace, all pulling
//! from one queue, longest expected test first and retries behind first
//! attempts. Workers never print: they send [`Event`]s.
//!
//! `queue`: the run's own queue (order, groups, batches, retries,
//! `--max-fail`); `worker`: one worker's loop and its workspace; `attempt`:
//! one attempt (per-test hooks, the process, the plugin's verdict, the
//! rerun of a broken batch); `session`: a plugin's long-lived server;
//! `logs`: where output goes.

use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::config::{Hooks, WorkspaceReset};
use crate::events::Event;
use crate::hooks::RunContext;
use crate::model::{Attempt, TestCase, TestResult};
use crate::plugin::Plugin;
use crate::process::{Sweep, Watchdog};
use crate::schedule::groups::GroupLimits;
use crate::workspace::Layout;

mod attempt;
pub mod logs;
mod queue;
pub mod session;
mod worker;
mod workspace;

use queue::{BatchClass, Queue};

/// Everything a run needs once the tests are known.
pub struct Runner<'a> {
    pub tests: &'a [TestCase],
    /// Indices of the tests to run, in the order to hand them out.
    pub order: Vec<usize>,
    pub plugin: &'a dyn Plugin,
    pub layout: Layout,
    pub context: RunContext,
    pub hooks: Hooks,
    pub retries: u32,
    pub timeout: Option<Duration>,
    pub slow_timeout: Option<Duration>,
    pub fail_fast: bool,
    /// Stop scheduling after this many definite failures (`--max-fail`).
    pub max_fail: Option<usize>,
    /// Stream each test's output as events while it runs (`--no-capture`).
    pub no_capture: bool,
    /// Each test's settings after the overrides, by index (empty: the globals above).
    pub per_test: Vec<crate::overrides::TestSettings>,
    /// Test groups: which tests may run together.
    pub groups: GroupLimits,
    pub workspace_reset: WorkspaceReset,
    pub keep_workspaces: bool,
    pub watchdog: Watchdog,
    /// Expected duration of every test, by index.
    pub expected: Vec<Duration>,
    /// The plugin batches and no per-test hook is set: short first
    /// attempts are handed out together (see [`Queue::next`]).
    pub batching: bool,
    /// Where the next test comes from when not from this run's own queue
    /// (`--queue`: a build's queue shared by several machines).
    pub source: Option<&'a dyn JobSource>,
}

/// Where the next test comes from, when it is not this machine's own
/// queue: the seam `--queue` plugs into. One test per call, never batches.
pub trait JobSource: Sync {
    /// The next attempt to run; `None` when nothing is left for this machine.
    fn next(&self, watchdog: &Watchdog) -> Option<Job>;
    /// An attempt is over; `result` is its final result unless a retry is
    /// queued (`wants_retry` asks for one). Returns whether it was queued.
    fn done(
        &self,
        job: &Job,
        attempt: &Attempt,
        result: TestResult,
        wants_retry: bool,
        interrupted: bool,
    ) -> bool;
    /// What went wrong since the last call, for the run's warnings (a
    /// source never prints: the reporter thread owns the terminal).
    fn take_warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// What the run did besides the tests' own results.
#[derive(Debug, Default)]
pub struct RunStats {
    /// Tests never started: fail-fast, interrupt, or no worker left.
    pub not_run: usize,
    /// Workers that could not make or set up their workspace.
    pub workers_lost: usize,
    /// A thread or a process could not be had: the run stopped (exit 3).
    pub resource_failure: Option<String>,
}

/// One attempt waiting in the queue.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    pub index: usize,
    pub attempt: u32,
    /// An earlier attempt failed or timed out: a pass now is flaky.
    pub failed_before: bool,
}

impl Runner<'_> {
    fn retries_of(&self, index: usize) -> u32 {
        self.per_test.get(index).map_or(self.retries, |s| s.retries)
    }

    fn timeout_of(&self, index: usize) -> Option<Duration> {
        self.per_test.get(index).map_or(self.timeout, |s| s.timeout)
    }

    fn resets_on_failure(&self, index: usize) -> bool {
        self.per_test
            .get(index)
            .map_or(self.workspace_reset == WorkspaceReset::OnFailure, |s| {
                s.resets_on_failure()
            })
    }

    /// Which tests may share a process, by index (see [`Plugin::batch_key`]):
    /// the plugin's key, made apart by each test's own time limit, since a
    /// batch's process watches one limit for all its tests.
    fn batch_classes(&self) -> Vec<Option<BatchClass>> {
        if !self.batching {
            return Vec::new();
        }
        (0..self.tests.len())
            .map(|index| {
                let key = self.plugin.batch_key(&self.tests[index])?;
                Some(BatchClass {
                    key: format!("{}\0{:?}", key.key, self.timeout_of(index)),
                    min_batch: key.min_batch,
                    alone_above: key.alone_above,
                    startup: key.startup,
                })
            })
            .collect()
    }

    /// Runs every test in `order` and returns when all workers are done and
    /// every workspace is torn down.
    pub fn run(&self, events: &Sender<Event>) -> RunStats {
        if self.order.is_empty() {
            // Nothing to run: no workspace is made, no hook runs for it.
            return RunStats::default();
        }
        let jobs = self.order.iter().map(|&index| Job {
            index,
            attempt: 1,
            failed_before: false,
        });
        let queue = Queue::new(jobs, &self.expected)
            .with_groups(self.groups.clone())
            .with_batches(self.batch_classes());
        let workers = self.context.workers;
        let started = Instant::now();
        // Plain threads, not a rayon pool: a rayon thread that blocks inside
        // rayon (the parallel workspace copy) steals queued jobs, which would
        // run a whole second worker nested inside the first.
        std::thread::scope(|scope| {
            for worker in 1..=workers {
                let queue = &queue;
                let spawned = std::thread::Builder::new()
                    .name(format!("paratest-worker-{worker}"))
                    .spawn_scoped(scope, move || self.worker(worker, queue, events, started));
                if let Err(e) = spawned {
                    // The workers already started stop and tear down.
                    queue.fail(format!(
                        "out of resources: cannot start worker {worker} of {workers} ({e}); try fewer --workers"
                    ));
                    break;
                }
            }
        });
        let state = queue.state.into_inner().unwrap();
        RunStats {
            // Tests whose retry is still queued (an interrupt) keep their
            // failed attempt as their result: they are not "not run".
            // With a shared queue, what this machine did not run ran elsewhere.
            not_run: if self.source.is_some() {
                0
            } else {
                state.first.len()
            },
            workers_lost: state.lost,
            resource_failure: state.resource_failure,
        }
    }

    /// This worker's processes: those of the attempt of `test` (its
    /// `PARATEST_TEST`), or all of them.
    fn sweep<'s>(&'s self, worker: usize, test: Option<&'s str>) -> Sweep<'s> {
        Sweep {
            run_id: &self.context.run_id,
            worker: Some(worker),
            test,
        }
    }
}

/// The time limit of each test of a batch, in seconds, for the batch's process.
pub const BATCH_TIMEOUT_VAR: &str = "PARATEST_BATCH_TEST_TIMEOUT";

/// The message of an attempt that Ctrl-C or SIGTERM stopped.
pub const INTERRUPTED: &str = "interrupted (Ctrl-C or SIGTERM)";
