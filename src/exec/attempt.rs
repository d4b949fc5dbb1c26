//! One attempt of a test (or of a batch of short ones): `--setup-test`,
//! the process, the plugin's verdict, `--teardown-test`, and the rerun one
//! by one of what a broken batch left unfinished.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::logs::log_paths;
use super::queue::Queue;
use super::{BATCH_TIMEOUT_VAR, INTERRUPTED, Job, Runner};
use crate::events::Event;
use crate::hooks::{Hook, Scope, run_hook};
use crate::model::{Attempt, AttemptStatus, EnvValue, Invocation, TestCase};
use crate::plugin::{Finished, Verdict};
use crate::process::Limits;

impl Runner<'_> {
    /// One attempt of `jobs` (one test, or a batch of short ones for a
    /// plugin that batches): `--setup-test`, the process, `--teardown-test`.
    /// Returns one attempt per job, in order.
    pub(super) fn attempt(
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
        let template = Attempt::starting(number, worker, (stdout_path, stderr_path));
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
                // A batch split per test (Cargo's) also keeps the verdicts its
                // tests reported, and what it did not finish runs again alone.
                let batch =
                    jobs.len() > 1 && self.plugin.splits_batch_output() && !exit.interrupted;
                rerun = self.keep_reported(
                    &tests,
                    &exit,
                    &template,
                    &report_path,
                    &mut attempts,
                    batch,
                );
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
    /// before one hung) are kept on its attempts. For a `batch` split per
    /// test, killed at the batch's limit (the backstop behind each test's
    /// own, which the batch process watches), the tests it reported also
    /// keep their verdicts, the first one it did not is the one that ran
    /// into the limit and stays timed out, and the rest are returned, to
    /// run again alone.
    fn keep_reported(
        &self,
        tests: &[&TestCase],
        exit: &crate::process::Exit,
        template: &Attempt,
        report_path: &Path,
        attempts: &mut [Attempt],
        batch: bool,
    ) -> Vec<usize> {
        let finished = Finished {
            status: exit.status,
            timed_out: true,
            stdout_path: &template.stdout_path,
            stderr_path: &template.stderr_path,
            report_path,
        };
        let unfinished = if batch {
            self.plugin.unfinished(tests, &finished)
        } else {
            Vec::new()
        };
        let verdicts = self.plugin.judge(tests, &finished);
        if verdicts.len() == attempts.len() {
            for (position, (attempt, verdict)) in attempts.iter_mut().zip(verdicts).enumerate() {
                if batch && !unfinished.contains(&position) {
                    attempt.status = verdict.status;
                    attempt.message = verdict.message;
                    attempt.duration = verdict.duration.unwrap_or(attempt.duration);
                }
                attempt.cases = verdict.cases;
            }
        }
        unfinished.into_iter().skip(1).collect()
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
        let invocation = self.plugin.invocation(tests, report_path);
        let mut command = test_command(&invocation, test, workspace, scope);
        command.stdin(Stdio::null());
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

/// Whether spawning failed for want of processes, memory or file descriptors.
fn is_resource_error(e: &std::io::Error) -> bool {
    use nix::errno::Errno;
    e.raw_os_error().is_some_and(|code| {
        [Errno::EAGAIN, Errno::ENOMEM, Errno::EMFILE, Errno::ENFILE]
            .contains(&Errno::from_raw(code))
    })
}

/// The process of a test as every test gets it, in a process of its own or
/// a serve session's: the invocation, cwd in the workspace, the worker's
/// `PARATEST_*` environment and the test's own variables.
pub(super) fn test_command(
    invocation: &Invocation,
    test: &TestCase,
    workspace: &Path,
    scope: Scope<'_>,
) -> Command {
    let mut command = match invocation {
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
        .envs(scope.env());
    for (name, value) in &test.env {
        let value: OsString = match value {
            EnvValue::Literal(value) => value.clone(),
            EnvValue::InWorkspace(path) => in_workspace(workspace, path).into(),
        };
        command.env(name, value);
    }
    command
}

/// `relative` inside `workspace`; an empty `relative` is the workspace itself
/// (`join("")` would add a trailing `/` that tests comparing paths trip on).
pub(super) fn in_workspace(workspace: &Path, relative: &Path) -> PathBuf {
    if relative.as_os_str().is_empty() {
        workspace.to_path_buf()
    } else {
        workspace.join(relative)
    }
}
