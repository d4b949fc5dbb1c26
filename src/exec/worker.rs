//! One worker: its workspace made and set up, the loop that takes jobs
//! and settles their attempts, the reset after a failure, and the teardown.

use std::path::PathBuf;
use std::time::Instant;

use crossbeam_channel::Sender;

use super::logs::hook_log_path;
use super::queue::Queue;
use super::workspace::Workspace;
use super::{Job, Runner, session};
use crate::config::Isolation;
use crate::events::{Event, WorkerStats};
use crate::model::{AttemptStatus, TestResult};

impl Runner<'_> {
    pub(super) fn worker(
        &self,
        worker: usize,
        queue: &Queue,
        events: &Sender<Event>,
        run_started: Instant,
    ) {
        let mut stats = WorkerStats::default();
        let setup_started = Instant::now();
        let mut workspace = Workspace::new(self, worker);
        let ready = workspace.prepare();
        stats.setup = setup_started.elapsed();
        match ready {
            Ok(()) => {
                let _ = events.send(Event::WorkspaceReady {
                    worker,
                    path: workspace.path().to_path_buf(),
                    took: stats.setup,
                });
                self.work(&mut workspace, queue, events, &mut stats);
            }
            Err(message) => {
                queue.lose_worker();
                // Ctrl-C stopped the copy: not a workspace failure.
                if !crate::process::interrupt_requested() {
                    let _ = events.send(Event::WorkspaceFailed { worker, message });
                }
            }
        }
        if let Err(message) = workspace.finish() {
            let _ = events.send(Event::Warning(message));
        }
        stats.idle = run_started
            .elapsed()
            .saturating_sub(stats.setup + stats.busy);
        let _ = events.send(Event::WorkerFinished { worker, stats });
    }

    fn work(
        &self,
        guard: &mut Workspace<'_, '_>,
        queue: &Queue,
        events: &Sender<Event>,
        stats: &mut WorkerStats,
    ) {
        let worker = guard.worker();
        let path = guard.path().to_path_buf();
        let workspace = path.as_path();
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
                guard.stop_services();
                guard.prepare()
            } else if any_failed && !interrupted && any_reset {
                guard.finish().and_then(|()| guard.prepare())
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

    /// The next attempts: from the [`super::JobSource`] when there is one, else
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

    pub(super) fn hook_log(&self, hook: &str, worker: usize) -> PathBuf {
        hook_log_path(&self.context.output, hook, Some(worker))
    }
}
