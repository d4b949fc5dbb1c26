//! One worker: its workspace made and set up, the loop that takes jobs
//! and settles their attempts, the reset after a failure, and the teardown.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crossbeam_channel::Sender;

use super::logs::hook_log_path;
use super::queue::Queue;
use super::{Job, Runner, session};
use crate::config::Isolation;
use crate::events::{Event, WorkerStats};
use crate::hooks::{Hook, Scope, run_hook};
use crate::model::{AttemptStatus, TestResult};
use crate::supervisor::{Message, tell};

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

    pub(super) fn hook_log(&self, hook: &str, worker: usize) -> PathBuf {
        hook_log_path(&self.context.output, hook, Some(worker))
    }

    /// Stops what `--setup-workspace` left running and every other process
    /// of this worker that is still alive.
    pub(super) fn stop_services(&self, worker: usize, services: &mut Option<u32>) {
        if let Some(group) = services.take() {
            crate::process::stop_group(group);
        }
        self.watchdog.sweep(&self.sweep(worker, None), true);
    }
}
