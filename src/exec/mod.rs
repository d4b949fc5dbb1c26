//! The runner: one worker thread per workspace, all pulling
//! from one queue, longest expected test first and retries behind first
//! attempts. Workers never print: they send [`Event`]s.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Sender;

use crate::config::{Hooks, Isolation, WorkspaceReset};
use crate::events::{Event, WorkerStats};
use crate::hooks::{Hook, RunContext, Scope, run_hook};
use crate::model::{Attempt, AttemptStatus, EnvValue, Invocation, TestCase, TestResult};
use crate::plugin::{Finished, Plugin, Verdict};
use crate::process::{Limits, Sweep, Watchdog};
use crate::schedule::groups::GroupLimits;
use crate::supervisor::{Message, tell};
use crate::workspace::Layout;

pub mod session;

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

    fn worker(&self, worker: usize, queue: &Queue, events: &Sender<Event>, run_started: Instant) {
        let mut stats = WorkerStats::default();
        let setup_started = Instant::now();
        let workspace = self.layout.path(worker);
        let scope = Scope::worker(&self.context, worker, &workspace);
        let mut services = None;
        let ready = self.prepare(worker, scope, &mut services);
        stats.setup = setup_started.elapsed();
        match ready {
            Ok(()) => {
                let _ = events.send(Event::WorkspaceReady {
                    worker,
                    path: workspace.clone(),
                    took: stats.setup,
                });
                self.work(worker, &workspace, queue, events, &mut stats, &mut services);
            }
            Err(message) => {
                queue.lose_worker();
                // Ctrl-C stopped the copy: not a workspace failure.
                if !crate::process::interrupt_requested() {
                    let _ = events.send(Event::WorkspaceFailed { worker, message });
                }
            }
        }
        if let Err(message) = self.finish(worker, scope, &mut services) {
            let _ = events.send(Event::Warning(message));
        }
        stats.idle = run_started
            .elapsed()
            .saturating_sub(stats.setup + stats.busy);
        let _ = events.send(Event::WorkerFinished { worker, stats });
    }

    fn work(
        &self,
        worker: usize,
        workspace: &Path,
        queue: &Queue,
        events: &Sender<Event>,
        stats: &mut WorkerStats,
        services: &mut Option<u32>,
    ) {
        let scope = Scope::worker(&self.context, worker, workspace);
        // A plugin that serves runs every test on one long-lived process (see `session`).
        let mut served = session::Served::new(self, worker, workspace);
        let batch_workers = (self.batching && served.is_none()).then_some(self.context.workers);
        while let Some(jobs) = self.next_jobs(queue, batch_workers, events) {
            let started = Instant::now();
            for job in &jobs {
                let (index, attempt) = (job.index, job.attempt);
                let _ = events.send(Event::TestStarted {
                    index,
                    worker,
                    attempt,
                });
            }
            let attempts = match &mut served {
                Some(served) => jobs.iter().map(|job| served.attempt(job, events)).collect(),
                None => self.attempt(worker, workspace, &jobs, events, queue),
            };
            stats.busy += started.elapsed();
            stats.tests += jobs.len();
            let interrupted = self.watchdog.is_interrupted();
            let mut any_failed = false;
            let mut any_reset = false;
            for (job, attempt) in jobs.iter().zip(attempts) {
                let failed = matches!(
                    attempt.status,
                    AttemptStatus::Failed | AttemptStatus::TimedOut
                );
                any_failed |= failed;
                any_reset |= failed && self.resets_on_failure(job.index);
                queue.release(job.index);
                let wants_retry =
                    failed && job.attempt <= self.retries_of(job.index) && !interrupted;
                let next = wants_retry.then_some(Job {
                    attempt: job.attempt + 1,
                    failed_before: true,
                    ..*job
                });
                let last = TestResult::of_last_attempt(attempt.status, job.failed_before);
                // The queue refuses a retry once fail-fast has stopped it: the
                // attempt is then this test's last.
                let failure_limit = if self.fail_fast {
                    Some(1)
                } else {
                    self.max_fail
                };
                let retried = match self.source {
                    Some(source) => {
                        // A test this machine could not start (out of
                        // resources) goes back to the build, as an
                        // interrupted one does: it has no verdict.
                        let not_run =
                            queue.is_stopped() && attempt.status == AttemptStatus::Skipped;
                        let retried =
                            source.done(job, &attempt, last, wants_retry, interrupted || not_run);
                        self.source_warnings(events);
                        retried
                    }
                    None => queue.done(next, failure_limit.filter(|_| failed)),
                };
                let result = (!retried).then_some(last);
                let _ = events.send(Event::AttemptFinished {
                    index: job.index,
                    attempt,
                    result,
                });
            }
            // A test that deleted its workspace must not fail every test after it.
            let vanished = self.layout.isolation != Isolation::None && !workspace.exists();
            if let Some(served) = served.as_mut().filter(|_| vanished || any_reset) {
                served.stop();
            }
            let reset = if vanished {
                let _ = events.send(Event::Warning(format!(
                    "worker {worker}: its workspace {} disappeared during {}; making it again",
                    workspace.display(),
                    self.tests[jobs[0].index].id
                )));
                // The old workspace's services go first: the new one starts its own.
                self.stop_services(worker, services);
                self.prepare(worker, scope, services)
            } else if any_failed && !interrupted && any_reset {
                self.finish(worker, scope, services)
                    .and_then(|()| self.prepare(worker, scope, services))
            } else {
                Ok(())
            };
            if let Err(message) = reset {
                queue.lose_worker();
                let _ = events.send(Event::WorkspaceFailed { worker, message });
                break;
            }
        }
        if let Some(served) = &mut served {
            served.stop();
        }
    }

    /// The next attempts: from the [`JobSource`] when there is one, else
    /// from this run's own queue.
    fn next_jobs(
        &self,
        queue: &Queue,
        batch_workers: Option<usize>,
        events: &Sender<Event>,
    ) -> Option<Vec<Job>> {
        let Some(source) = self.source else {
            return queue.next(&self.watchdog, batch_workers, &self.expected);
        };
        // A run stopped by a resource failure takes nothing more from the
        // build's queue: the other machines run what is left.
        if queue.is_stopped() {
            return None;
        }
        let job = source.next(&self.watchdog);
        self.source_warnings(events);
        job.map(|job| vec![job])
    }

    fn source_warnings(&self, events: &Sender<Event>) {
        for warning in self.source.map(|s| s.take_warnings()).unwrap_or_default() {
            let _ = events.send(Event::Warning(warning));
        }
    }

    /// Makes the workspace and runs `--setup-workspace` in it; what that
    /// hook leaves running is kept in `services` until [`Runner::finish`].
    fn prepare(
        &self,
        worker: usize,
        scope: Scope<'_>,
        services: &mut Option<u32>,
    ) -> Result<(), String> {
        self.layout.create(worker).map_err(|e| {
            format!(
                "worker {worker}: cannot make its workspace {}: {e}",
                self.layout.path(worker).display()
            )
        })?;
        if !self.keep_workspaces && self.layout.isolation != Isolation::None {
            tell(Message::Workspace(&self.layout.path(worker)));
        }
        if let Some(hook) = &self.hooks.setup_workspace {
            let log = self.hook_log("setup-workspace", worker);
            *services = run_hook(
                &self.watchdog,
                Hook::SetupWorkspace,
                hook,
                scope,
                &log,
                None,
            )
            .map_err(|e| format!("worker {worker}: {e}"))?;
        }
        Ok(())
    }

    /// Runs `--teardown-workspace`, stops what `--setup-workspace` left
    /// running, and removes the workspace unless kept.
    fn finish(
        &self,
        worker: usize,
        scope: Scope<'_>,
        services: &mut Option<u32>,
    ) -> Result<(), String> {
        let mut problems = Vec::new();
        if let Some(hook) = &self.hooks.teardown_workspace {
            let log = self.hook_log("teardown-workspace", worker);
            if let Err(e) = run_hook(
                &self.watchdog,
                Hook::TeardownWorkspace,
                hook,
                scope,
                &log,
                None,
            ) {
                problems.push(format!("worker {worker}: {e}"));
            }
        }
        self.stop_services(worker, services);
        let removed = if self.keep_workspaces {
            self.layout.remove_temp(worker)
        } else {
            self.layout
                .remove(worker)
                .map(|()| tell(Message::WorkspaceGone(&self.layout.path(worker))))
        };
        if let Err(e) = removed {
            problems.push(format!("worker {worker}: cannot remove its workspace: {e}"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    fn hook_log(&self, hook: &str, worker: usize) -> PathBuf {
        hook_log_path(&self.context.output, hook, Some(worker))
    }

    /// One attempt of `jobs` (one test, or a batch of short ones for a
    /// plugin that batches): `--setup-test`, the process, `--teardown-test`.
    /// Returns one attempt per job, in order.
    fn attempt(
        &self,
        worker: usize,
        workspace: &Path,
        jobs: &[Job],
        events: &Sender<Event>,
        queue: &Queue,
    ) -> Vec<Attempt> {
        let tests: Vec<&TestCase> = jobs.iter().map(|job| &self.tests[job.index]).collect();
        // A batch's tests are all first attempts; PARATEST_TEST lists their ids, one per line.
        let ids = tests
            .iter()
            .map(|t| t.id.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let number = jobs[0].attempt;
        let scope = Scope::worker(&self.context, worker, workspace).test(&ids, number);
        // A batch's own log is apart from its tests' (which a plugin that
        // splits the output writes, and which a rerun alone uses).
        let log_id = match tests.len() {
            1 => tests[0].id.clone(),
            n => format!("{} and {} more (batch)", tests[0].id, n - 1),
        };
        let (stdout_path, stderr_path) = log_paths(&self.context.output, &log_id, number);
        let report_path = stdout_path.with_extension("report");
        let _ = std::fs::remove_file(&report_path);
        let clock = Instant::now();
        let template = Attempt {
            number,
            worker,
            status: AttemptStatus::Failed,
            started: SystemTime::now(),
            duration: Duration::ZERO,
            message: None,
            stdout_path,
            stderr_path,
            cases: Vec::new(),
        };
        let split = jobs.len() > 1 && self.plugin.splits_batch_output();
        // Each test's attempt, its own log files when the batch split them.
        let own = |job: &Job| -> Attempt {
            let mut attempt = Attempt {
                number: job.attempt,
                ..template.clone()
            };
            if split {
                let (stdout, stderr) =
                    log_paths(&self.context.output, &self.tests[job.index].id, job.attempt);
                (attempt.stdout_path, attempt.stderr_path) = (stdout, stderr);
            }
            attempt
        };
        let every = |status: AttemptStatus, message: String, duration: Duration| -> Vec<Attempt> {
            let share = duration / jobs.len() as u32;
            let message = Some(message);
            jobs.iter()
                .map(|job| Attempt {
                    status,
                    duration: share,
                    message: message.clone(),
                    ..own(job)
                })
                .collect()
        };
        let mut rerun = Vec::new();
        let hook_log = self.hook_log("test", worker);
        if let Some(hook) = &self.hooks.setup_test
            && let Err(e) = run_hook(
                &self.watchdog,
                Hook::SetupTest,
                hook,
                scope,
                &hook_log,
                self.timeout,
            )
        {
            return every(AttemptStatus::Failed, e, clock.elapsed());
        }
        let spawned = self.spawn(
            jobs[0].index,
            &tests,
            workspace,
            scope,
            &template,
            &report_path,
            events,
        );
        let attempts = match spawned {
            // Taken from the queue just as Ctrl-C came: it never ran.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => every(
                AttemptStatus::Skipped,
                "not run: interrupted".to_string(),
                Duration::ZERO,
            ),
            // The machine is out of processes or files: no verdict on the test.
            Err(e) if is_resource_error(&e) => {
                let message = format!("out of resources: cannot start a test process ({e})");
                queue.fail(message.clone());
                every(
                    AttemptStatus::Skipped,
                    format!("not run: {message}"),
                    Duration::ZERO,
                )
            }
            Err(e) => every(
                AttemptStatus::Failed,
                format!("could not start the test: {e}"),
                clock.elapsed(),
            ),
            Ok(exit) if exit.timed_out => {
                // The limit the watchdog applied (see `spawn`): the first
                // test's own, per-test overrides included.
                let limit = humantime::format_duration(
                    self.timeout_of(jobs[0].index).unwrap_or_default() * jobs.len() as u32,
                );
                let mut attempts = every(
                    AttemptStatus::TimedOut,
                    format!("timed out after {limit}"),
                    exit.duration,
                );
                self.keep_reported_cases(&tests, &exit, &template, &report_path, &mut attempts);
                attempts
            }
            Ok(exit) => {
                let finished = Finished {
                    status: exit.status,
                    timed_out: false,
                    stdout_path: &template.stdout_path,
                    stderr_path: &template.stderr_path,
                    report_path: &report_path,
                };
                let mut verdicts = self.plugin.judge(&tests, &finished);
                if jobs.len() > 1 && !exit.interrupted {
                    rerun = self.plugin.unfinished(&tests, &finished);
                }
                if verdicts.len() != jobs.len() {
                    let message = format!(
                        "plugin `{}` judged {} of {} tests",
                        self.plugin.name(),
                        verdicts.len(),
                        jobs.len()
                    );
                    verdicts = vec![Verdict::new(AttemptStatus::Failed, Some(message)); jobs.len()];
                }
                let share = exit.duration / jobs.len() as u32;
                jobs.iter()
                    .zip(verdicts)
                    .map(|(job, verdict)| {
                        let mut message = verdict.message;
                        let mut status = verdict.status;
                        // Only what the interrupt stopped is interrupted: a
                        // test that failed on its own keeps its failure.
                        if status != AttemptStatus::Passed && exit.interrupted {
                            status = AttemptStatus::Interrupted;
                            message = Some(INTERRUPTED.to_string());
                        }
                        Attempt {
                            status,
                            duration: verdict.duration.unwrap_or(share),
                            message,
                            cases: verdict.cases,
                            ..own(job)
                        }
                    })
                    .collect()
            }
        };
        if let Some(hook) = &self.hooks.teardown_test
            && let Err(e) = run_hook(
                &self.watchdog,
                Hook::TeardownTest,
                hook,
                scope,
                &hook_log,
                self.timeout,
            )
        {
            let _ = events.send(Event::Warning(e));
        }
        // What the attempt started and left running outside its group.
        self.watchdog.sweep(&self.sweep(worker, Some(&ids)), false);
        // What a crashed or stopped batch did not finish runs again, one
        // test per process: the culprit is named, the others judged alone.
        let mut attempts = attempts;
        for position in rerun {
            if self.watchdog.is_interrupted() || position >= jobs.len() {
                break;
            }
            let job = &jobs[position..=position];
            if let Some(alone) = self.attempt(worker, workspace, job, events, queue).pop() {
                attempts[position] = alone;
            }
        }
        attempts
    }

    /// A process killed at its time limit stays timed out, but the cases
    /// its framework reported before (pytest: the tests of a file that ran
    /// before one hung) are kept on its attempts.
    fn keep_reported_cases(
        &self,
        tests: &[&TestCase],
        exit: &crate::process::Exit,
        template: &Attempt,
        report_path: &Path,
        attempts: &mut [Attempt],
    ) {
        let finished = Finished {
            status: exit.status,
            timed_out: true,
            stdout_path: &template.stdout_path,
            stderr_path: &template.stderr_path,
            report_path,
        };
        let verdicts = self.plugin.judge(tests, &finished);
        if verdicts.len() == attempts.len() {
            for (attempt, verdict) in attempts.iter_mut().zip(verdicts) {
                attempt.cases = verdict.cases;
            }
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

    /// Stops what `--setup-workspace` left running and every other process
    /// of this worker that is still alive.
    fn stop_services(&self, worker: usize, services: &mut Option<u32>) {
        if let Some(group) = services.take() {
            crate::process::stop_group(group);
        }
        self.watchdog.sweep(&self.sweep(worker, None), true);
    }

    #[allow(clippy::too_many_arguments)]
    fn spawn(
        &self,
        index: usize,
        tests: &[&TestCase],
        workspace: &Path,
        scope: Scope<'_>,
        attempt: &Attempt,
        report_path: &Path,
        events: &Sender<Event>,
    ) -> std::io::Result<crate::process::Exit> {
        let test = tests[0];
        let mut command = match self.plugin.invocation(tests, report_path) {
            Invocation::Argv { program, args } => {
                let mut command = Command::new(program);
                command.args(args);
                command
            }
            Invocation::Shell(line) => {
                let mut command = Command::new("sh");
                command.arg("-c").arg(line);
                command
            }
        };
        command
            .current_dir(in_workspace(workspace, &test.cwd))
            .envs(scope.env())
            .stdin(Stdio::null());
        for (name, value) in &test.env {
            let value: OsString = match value {
                EnvValue::Literal(value) => value.clone(),
                EnvValue::InWorkspace(path) => in_workspace(workspace, path).into(),
            };
            command.env(name, value);
        }
        if let Some(dir) = attempt.stdout_path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // A batch's process watches each test's own limit (see `Queue::next`:
        // a batch's tests share one).
        if tests.len() > 1
            && let Some(limit) = self.timeout_of(index)
        {
            command.env(BATCH_TIMEOUT_VAR, limit.as_secs_f64().to_string());
        }
        command
            .stdout(File::create(&attempt.stdout_path)?)
            .stderr(File::create(&attempt.stderr_path)?);
        let (worker, number) = (attempt.worker, attempt.number);
        let slow_events = events.clone();
        let limits = Limits {
            timeout: self.timeout_of(index).map(|t| t * tests.len() as u32),
            slow_after: self
                .per_test
                .get(index)
                .map_or(self.slow_timeout, |s| s.slow_timeout),
            on_slow: Some(Box::new(move |elapsed| {
                let _ = slow_events.send(Event::TestSlow {
                    index,
                    worker,
                    attempt: number,
                    elapsed,
                });
            })),
            cleanup: false,
            keep_group: false,
        };
        let follower = self.no_capture.then(|| {
            crate::stream::Follower::start(
                index,
                [&attempt.stdout_path, &attempt.stderr_path],
                events.clone(),
            )
        });
        let exit = self.watchdog.run(command, limits);
        if let Some(follower) = follower {
            follower.finish();
        }
        exit
    }
}

/// The time limit of each test of a batch, in seconds, for the batch's process.
pub const BATCH_TIMEOUT_VAR: &str = "PARATEST_BATCH_TEST_TIMEOUT";

/// The most tests one batch runs (a crash reruns what is left one by one).
const MAX_BATCH_TESTS: usize = 256;

/// Which tests may share a process, for the queue (see [`Runner::batch_classes`]).
#[derive(Debug, Clone)]
struct BatchClass {
    key: String,
    min_batch: Duration,
    alone_above: Duration,
    startup: Duration,
}

/// Whether spawning failed for want of processes, memory or file descriptors.
fn is_resource_error(e: &std::io::Error) -> bool {
    use nix::errno::Errno;
    e.raw_os_error().is_some_and(|code| {
        [Errno::EAGAIN, Errno::ENOMEM, Errno::EMFILE, Errno::ENFILE]
            .contains(&Errno::from_raw(code))
    })
}

/// `relative` inside `workspace`; an empty `relative` is the workspace itself
/// (`join("")` would add a trailing `/` that tests comparing paths trip on).
fn in_workspace(workspace: &Path, relative: &Path) -> PathBuf {
    if relative.as_os_str().is_empty() {
        workspace.to_path_buf()
    } else {
        workspace.join(relative)
    }
}

/// Where a hook's output goes: `OUTPUT/hooks/HOOK[.wN].log`.
pub fn hook_log_path(output: &Path, hook: &str, worker: Option<usize>) -> PathBuf {
    let name = match worker {
        Some(worker) => format!("{hook}.w{worker}.log"),
        None => format!("{hook}.log"),
    };
    // A user's own `hooks/setup.log` in an `--output` directory is never replaced.
    crate::runs::claim(output.join("hooks").join(name), true)
}

/// Where an attempt's output goes: one file per stream, named after the test
/// id made safe for any filesystem.
pub fn log_paths(output: &Path, id: &str, attempt: u32) -> (PathBuf, PathBuf) {
    let stem = format!("{}.{attempt}", safe_file_name(id));
    let [stdout, stderr, report] =
        ["stdout", "stderr", "report"].map(|stream| output.join(format!("{stem}.{stream}")));
    for path in [&stdout, &stderr, &report] {
        crate::runs::record(path);
    }
    (stdout, stderr)
}

/// A file name for a test id: safe characters kept, the rest `_`, long ids
/// shortened, and a hash of the whole id so that different ids never collide.
pub fn safe_file_name(id: &str) -> String {
    let readable: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    // FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}-{:08x}", readable.trim_start_matches('.'), hash as u32)
}

/// The shared queue: first attempts in order, then retries.
struct Queue {
    state: Mutex<QueueState>,
    changed: Condvar,
    /// Which tests may share a process, by index; empty: any.
    classes: Vec<Option<BatchClass>>,
}

struct QueueState {
    first: VecDeque<Job>,
    retries: VecDeque<Job>,
    /// Attempts handed out and not yet done: they may still queue a retry.
    in_flight: usize,
    stopped: bool,
    /// Definite failures so far, for `--max-fail` and `--fail-fast`.
    failures: usize,
    lost: usize,
    resource_failure: Option<String>,
    /// Expected time of the first attempts still queued.
    remaining: Duration,
    /// Test groups: a queued test waits while its group is full.
    groups: GroupLimits,
}

impl QueueState {
    /// With test groups: the first queued attempt whose group has room
    /// (first attempts, longest first, then retries), so a worker never
    /// idles while some test could start. Grouped runs are not batched.
    fn next_in_groups(&mut self) -> Option<Job> {
        let groups = &self.groups;
        let job = if let Some(position) = self.first.iter().position(|j| groups.can_start(j.index))
        {
            self.first.remove(position)
        } else {
            let position = self
                .retries
                .iter()
                .position(|j| groups.can_start(j.index))?;
            self.retries.remove(position)
        }?;
        self.groups.started(job.index);
        self.in_flight += 1;
        Some(job)
    }
}

/// The message of an attempt that Ctrl-C or SIGTERM stopped.
pub const INTERRUPTED: &str = "interrupted (Ctrl-C or SIGTERM)";

/// The smallest batch worth a process start-up (pytest's costs about 0.5 s).
const MIN_BATCH: Duration = Duration::from_secs(1);

impl Queue {
    fn new(jobs: impl IntoIterator<Item = Job>, expected: &[Duration]) -> Queue {
        let first: VecDeque<Job> = jobs.into_iter().collect();
        let remaining = first.iter().filter_map(|job| expected.get(job.index)).sum();
        Queue {
            state: Mutex::new(QueueState {
                first,
                remaining,
                retries: VecDeque::new(),
                in_flight: 0,
                stopped: false,
                failures: 0,
                lost: 0,
                resource_failure: None,
                groups: GroupLimits::default(),
            }),
            changed: Condvar::new(),
            classes: Vec::new(),
        }
    }

    /// Batches only join tests of one class (see [`Runner::batch_classes`]).
    fn with_batches(mut self, classes: Vec<Option<BatchClass>>) -> Queue {
        self.classes = classes;
        self
    }

    /// The class of the test at `index`: `None` runs alone.
    fn class(&self, index: usize) -> Option<&BatchClass> {
        if self.classes.is_empty() {
            static ANY: std::sync::OnceLock<BatchClass> = std::sync::OnceLock::new();
            return Some(ANY.get_or_init(|| BatchClass {
                key: String::new(),
                min_batch: MIN_BATCH,
                alone_above: Duration::MAX,
                startup: Duration::ZERO,
            }));
        }
        self.classes.get(index)?.as_ref()
    }

    /// The next attempt, waiting while a running attempt may still queue a
    /// retry. When batching for `workers`, a first attempt comes with the
    /// first attempts after it up to a target of expected time: the
    /// remaining work over 4 x workers (guided self-scheduling: big batches
    /// while much is left, small ones at the end so the workers finish
    /// together), and at least [`MIN_BATCH`] so tiny tests share a start-up.
    fn next(
        &self,
        watchdog: &Watchdog,
        workers: Option<usize>,
        expected: &[Duration],
    ) -> Option<Vec<Job>> {
        let mut state = self.state.lock().unwrap();
        loop {
            if state.stopped || watchdog.is_interrupted() {
                return None;
            }
            if state.groups.is_active() {
                if let Some(job) = state.next_in_groups() {
                    return Some(vec![job]);
                }
            } else if let Some(job) = state.first.pop_front() {
                let mut batch = vec![job];
                let time = |index: usize| expected.get(index).copied().unwrap_or_default();
                let mut total = time(job.index);
                if let Some(workers) = workers
                    && let Some(class) = self.class(job.index)
                    && total.saturating_sub(class.startup) <= class.alone_above
                {
                    total = total.saturating_sub(class.startup);
                    let target =
                        (state.remaining / (4 * workers.max(1) as u32)).max(class.min_batch);
                    // The queued first attempts of the same class that fit,
                    // in queue order (longest first).
                    let mut position = 0;
                    while position < state.first.len()
                        && total < target
                        && batch.len() < MAX_BATCH_TESTS
                    {
                        let next = state.first[position].index;
                        // What it costs in a batch: no start-up of its own.
                        let cost = time(next).saturating_sub(class.startup);
                        let fits = self
                            .class(next)
                            .is_some_and(|c| c.key == class.key && cost <= c.alone_above)
                            && total + cost <= target;
                        if fits {
                            total += cost;
                            batch.extend(state.first.remove(position));
                        } else {
                            position += 1;
                        }
                    }
                }
                state.remaining = state.remaining.saturating_sub(total);
                state.in_flight += batch.len();
                return Some(batch);
            }
            if !state.groups.is_active()
                && let Some(job) = state.retries.pop_front()
            {
                state.in_flight += 1;
                return Some(vec![job]);
            }
            if state.first.is_empty() && state.retries.is_empty() && state.in_flight == 0 {
                return None;
            }
            // The timeout lets an interrupt end the wait without a wake-up.
            state = self
                .changed
                .wait_timeout(state, Duration::from_millis(100))
                .unwrap()
                .0;
        }
    }

    /// An attempt is over; `retry` goes behind the first attempts.
    /// An attempt is over. Its `retry` is queued unless the queue has
    /// stopped; an attempt that failed under a `failure_limit` with no retry
    /// queued is a definite failure, and the queue stops at the limit's
    /// (fail-fast: 1; `--max-fail N`). Returns whether the retry was queued.
    fn done(&self, retry: Option<Job>, failure_limit: Option<usize>) -> bool {
        let mut state = self.state.lock().unwrap();
        state.in_flight -= 1;
        let queued = retry.is_some() && !state.stopped;
        if queued {
            state.retries.extend(retry);
        } else if let Some(limit) = failure_limit {
            state.failures += 1;
            if state.failures >= limit {
                state.stopped = true;
            }
        }
        self.changed.notify_all();
        queued
    }

    /// The run cannot go on (no thread or process to be had): nothing new
    /// starts; the first such failure is the one reported.
    fn fail(&self, message: String) {
        let mut state = self.state.lock().unwrap();
        state.stopped = true;
        state.resource_failure.get_or_insert(message);
    }

    /// Stopped by a resource failure (or fail-fast): nothing new starts.
    fn is_stopped(&self) -> bool {
        self.state.lock().unwrap().stopped
    }

    /// Test groups apply to the run's tests.
    fn with_groups(self, groups: GroupLimits) -> Queue {
        self.state.lock().unwrap().groups = groups;
        self
    }

    /// A test's attempt is over: its group has room again.
    fn release(&self, index: usize) {
        self.state.lock().unwrap().groups.finished(index);
        self.changed.notify_all();
    }

    fn lose_worker(&self) {
        self.state.lock().unwrap().lost += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_file_names_are_distinct_and_tame() {
        let a = safe_file_name("crate::it tests::a/b");
        let b = safe_file_name("crate::it tests::a_b");
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "{a}"
        );
        assert!(!safe_file_name("../../etc/passwd").starts_with('.'));
        assert!(safe_file_name(&"x".repeat(1000)).len() < 140);
    }

    #[test]
    fn batches_shrink_as_the_queue_drains() {
        let watchdog = Watchdog::start();
        // One 10 s test, then forty 0.5 s tests: 30 s in all, 2 workers.
        let mut expected = vec![Duration::from_secs(10)];
        expected.extend(std::iter::repeat_n(Duration::from_millis(500), 40));
        let jobs = (0..expected.len()).map(|index| Job {
            index,
            attempt: 1,
            failed_before: false,
        });
        let queue = Queue::new(jobs, &expected);
        let mut sizes = Vec::new();
        while let Some(batch) = queue.next(&watchdog, Some(2), &expected) {
            sizes.push(batch.len());
            queue.state.lock().unwrap().in_flight -= batch.len();
        }
        assert_eq!(sizes[0], 1, "a long test runs alone");
        assert_eq!(
            sizes.iter().sum::<usize>(),
            41,
            "every test handed out once"
        );
        assert!(
            sizes[1] > *sizes.last().unwrap(),
            "batches shrink: {sizes:?}"
        );
        assert!(
            sizes.iter().skip(1).all(|&n| n >= 2),
            "short tests share a start-up: {sizes:?}"
        );
    }

    #[test]
    fn fail_fast_refuses_retries_once_stopped() {
        let watchdog = Watchdog::start();
        let job = |index| Job {
            index,
            attempt: 1,
            failed_before: false,
        };
        let queue = Queue::new([job(0), job(1), job(2)], &[]);
        let a = queue.next(&watchdog, None, &[]).unwrap()[0];
        let b = queue.next(&watchdog, None, &[]).unwrap()[0];
        // `a` fails for good: the queue stops.
        assert!(!queue.done(None, Some(1)));
        // `b` failed too and wants a retry: refused, so its attempt is final.
        assert!(!queue.done(
            Some(Job {
                attempt: 2,
                failed_before: true,
                ..b
            }),
            Some(1)
        ));
        assert!(queue.next(&watchdog, None, &[]).is_none());
        let _ = a;
    }

    #[test]
    fn max_fail_stops_at_the_nth_definite_failure() {
        let watchdog = Watchdog::start();
        let job = |index| Job {
            index,
            attempt: 1,
            failed_before: false,
        };
        let queue = Queue::new([job(0), job(1), job(2)], &[]);
        let _ = queue.next(&watchdog, None, &[]).unwrap();
        queue.done(None, Some(2));
        assert!(
            queue.next(&watchdog, None, &[]).is_some(),
            "one failure of two"
        );
        queue.done(None, Some(2));
        assert!(queue.next(&watchdog, None, &[]).is_none(), "stopped at two");
    }

    #[test]
    fn retries_come_after_first_attempts() {
        let watchdog = Watchdog::start();
        let job = |index| Job {
            index,
            attempt: 1,
            failed_before: false,
        };
        let queue = Queue::new([job(0), job(1)], &[]);
        let next = |queue: &Queue| queue.next(&watchdog, None, &[]).map(|jobs| jobs[0]);
        let first = next(&queue).unwrap();
        assert!(queue.done(
            Some(Job {
                attempt: 2,
                failed_before: true,
                ..first
            }),
            None
        ));
        assert_eq!(next(&queue).unwrap().index, 1);
        queue.done(None, None);
        let retry = next(&queue).unwrap();
        assert_eq!((retry.index, retry.attempt), (0, 2));
        queue.done(None, Some(1));
        assert!(next(&queue).is_none());
    }
}
