//! Serve sessions: a plugin that serves ([`crate::plugin::Plugin::serve`]) gets one
//! long-lived process per worker instead of a process per test, so its
//! start-up (pytest's import and collection) is paid once per worker.
//!
//! The protocol, in JSON lines:
//! - The server starts in the worker's workspace with the worker's
//!   environment (`PARATEST_WORKER`, ...) and `PARATEST_SERVE_FD=3`: results
//!   go to file descriptor 3, a pipe of their own, so nothing a test prints
//!   (on fd 1 or 2, or garbage) can corrupt them. Its stdout and stderr go
//!   to a log; each test's attempt logs get the part written during it.
//! - Requests, on the server's stdin, one a line: `{"id": ID, "attempt": N}`
//!   runs the test `ID` (the id discovery gave it); `{"shutdown": true}` (or
//!   the end of stdin) ends the session: the server tears down what it kept
//!   (pytest's session fixtures) and exits. Several ids may be sent ahead;
//!   the runner sends the next one once the last is answered. The server
//!   must keep its stdin from its tests (give them `/dev/null`, as the
//!   pytest server and the example plugin do): a test that read it would
//!   eat the requests.
//! - Responses, on fd 3, one per request, in order:
//!   `{"id": ID, "status": "passed"|"failed"|"skipped"|"error",
//!   "duration": SECONDS, "message": "...", "stdout": "...", "stderr": "..."}`
//!   (all but `id` and `status` optional; a plugin may add its own fields,
//!   as pytest's `events`, and read them in [`crate::plugin::Plugin::served`]).
//!
//! A server that dies (a segfault, `os._exit`) fails the test in flight
//! with how it ended and is started again for the next test; one past its
//! test's `--timeout` is killed with its whole process group, the test
//! times out, and the next test gets a new server. The server runs under
//! the run's [`crate::process::Watchdog`] and supervisor, so Ctrl-C, SIGTERM or the death of
//! the run stop it as they stop any test.

use std::io::{BufRead, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Stdio};
use std::time::{Duration, Instant};

use command_fds::{CommandFdExt, FdMapping};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde::Deserialize;

use super::attempt::test_command;
use super::logs::log_paths;
use super::{INTERRUPTED, Job, Runner};
use crate::events::Event;
use crate::hooks::{Hook, Scope, run_hook};
use crate::model::{Attempt, AttemptStatus, Invocation, TestCase};
use crate::plugin::Verdict;
use crate::plugin::pytest_results::Ended;
use crate::process::{Limits, Watched};

/// The file descriptor the server writes its results to.
pub const RESULTS_FD: i32 = 3;
/// The variable that tells the server [`RESULTS_FD`].
pub const FD_VARIABLE: &str = "PARATEST_SERVE_FD";
/// How long a server may take to tear down and exit after `shutdown`.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How often a wait for a result looks at the server and the clock.
const TICK: Duration = Duration::from_millis(50);
/// How long a server that exited may take to have its last lines read.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// The protocol's own fields of a response.
#[derive(Debug, Deserialize)]
struct Response {
    status: Option<String>,
    message: Option<String>,
    duration: Option<f64>,
    stdout: Option<String>,
    stderr: Option<String>,
}

/// The verdict of a response's own fields (the default [`Plugin::served`]).
///
/// [`Plugin::served`]: crate::plugin::Plugin::served
pub fn verdict_of(line: &str) -> Verdict {
    let response: Response = match serde_json::from_str(line) {
        Ok(response) => response,
        Err(e) => {
            return Verdict::new(
                AttemptStatus::Failed,
                Some(format!("the server's result is not valid: {e}")),
            );
        }
    };
    let status = match response.status.as_deref() {
        Some("passed") => AttemptStatus::Passed,
        Some("skipped") => AttemptStatus::Skipped,
        Some("failed" | "error") => AttemptStatus::Failed,
        other => {
            return Verdict::new(
                AttemptStatus::Failed,
                Some(format!(
                    "the server answered an unknown status {other:?} (passed, failed, skipped or error)"
                )),
            );
        }
    };
    let mut verdict = Verdict::new(status, response.message);
    verdict.duration = response
        .duration
        .filter(|d| d.is_finite() && *d >= 0.0)
        .map(Duration::from_secs_f64);
    verdict
}

/// When to call a notice that a test is slow, and the notice.
type SlowNotice<'a> = Option<(Duration, Box<dyn FnOnce(Duration) + 'a>)>;

/// How a wait for one result ended.
enum Outcome {
    /// The answer; the other lines the server wrote meanwhile are in `progress`.
    Answered(String),
    Died(std::process::ExitStatus),
    TimedOut(Duration),
    Interrupted,
}

/// One running server.
struct Session {
    watched: Watched,
    stdin: ChildStdin,
    lines: Receiver<String>,
    stdout_log: PathBuf,
    stderr_log: PathBuf,
}

impl Session {
    /// Sends a request line; `false` when the server no longer reads.
    fn send(&mut self, request: &serde_json::Value) -> bool {
        let mut line = request.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .and_then(|()| self.stdin.flush())
            .is_ok()
    }

    /// Waits for the answer to `id`, the server's death, the time limit or an interrupt.
    fn wait(
        &mut self,
        id: &str,
        runner: &Runner<'_>,
        timeout: Option<Duration>,
        mut on_slow: SlowNotice<'_>,
        progress: &mut Vec<String>,
    ) -> Outcome {
        let started = Instant::now();
        loop {
            match self.lines.recv_timeout(TICK) {
                Ok(line) => {
                    if answers(&line, id) {
                        return Outcome::Answered(line);
                    }
                    progress.push(line);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return self.died(id, runner),
                Err(RecvTimeoutError::Timeout) => {}
            }
            if self.watched.exited() {
                // What the server wrote before it exited may still be in the
                // pipe or on its way through the reader thread: read on until
                // the pipe closes, or for a short grace (a child of the
                // server may hold the pipe open), then it is over.
                let grace = Instant::now() + EXIT_GRACE;
                loop {
                    let left = grace.saturating_duration_since(Instant::now());
                    match self.lines.recv_timeout(left) {
                        Ok(line) if answers(&line, id) => return Outcome::Answered(line),
                        Ok(line) => progress.push(line),
                        Err(_) => break,
                    }
                }
                return self.died(id, runner);
            }
            let elapsed = started.elapsed();
            if let Some(limit) = timeout
                && elapsed >= limit
                && !runner.watchdog.is_interrupted()
            {
                self.watched.kill();
                return Outcome::TimedOut(limit);
            }
            if on_slow.as_ref().is_some_and(|(after, _)| elapsed >= *after)
                && let Some((_, notify)) = on_slow.take()
            {
                notify(elapsed);
            }
        }
    }

    fn died(&mut self, _id: &str, runner: &Runner<'_>) -> Outcome {
        if runner.watchdog.is_interrupted() {
            return Outcome::Interrupted;
        }
        // The pipe closed: the server is exiting, or it closed fd 3 itself.
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while !self.watched.exited() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.watched.kill();
        Outcome::Died(wait_status(&self.watched))
    }

    fn output_lengths(&self) -> (u64, u64) {
        let len = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
        (len(&self.stdout_log), len(&self.stderr_log))
    }

    /// Asks the server to finish, waits a while, then kills what is left.
    fn shutdown(mut self) {
        let _ = self.send(&serde_json::json!({"shutdown": true}));
        drop(self.stdin);
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while !self.watched.exited() && Instant::now() < deadline && !crate::process::forced() {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.watched.kill();
        let _ = self.watched.wait();
    }

    /// Kills the server (it died, or it timed out) and collects it.
    fn kill(self) {
        self.watched.kill();
        let _ = self.watched.wait();
    }
}

/// The exit status of a server that has exited, without reaping it.
fn wait_status(watched: &Watched) -> std::process::ExitStatus {
    use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
    use std::os::unix::process::ExitStatusExt;
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
    let id = Id::Pid(nix::unistd::Pid::from_raw(watched.pid() as i32));
    match waitid(id, flags) {
        Ok(WaitStatus::Exited(_, code)) => std::process::ExitStatus::from_raw((code & 0xff) << 8),
        Ok(WaitStatus::Signaled(_, signal, _)) => std::process::ExitStatus::from_raw(signal as i32),
        _ => std::process::ExitStatus::from_raw(9),
    }
}

/// Whether a result line is the answer to `id` (lines that are not JSON are skipped).
fn answers(line: &str, id: &str) -> bool {
    // Most lines of a chatty server (pytest's, one per phase) are no answer.
    if !line.contains("\"id\"") {
        return false;
    }
    #[derive(Deserialize)]
    struct Id<'a> {
        #[serde(borrow)]
        id: std::borrow::Cow<'a, str>,
    }
    serde_json::from_str::<Id<'_>>(line).is_ok_and(|answer| answer.id == id)
}

/// A worker's serve session: the server, started when the first test
/// comes and again after it died, timed out or its workspace was reset.
pub(super) struct Served<'r, 'a> {
    runner: &'r Runner<'a>,
    worker: usize,
    workspace: PathBuf,
    invocation: Invocation,
    /// The first test of the selection: its `cwd` and `env` are the server's.
    first: &'a TestCase,
    session: Option<Session>,
    starts: u32,
}

impl<'r, 'a> Served<'r, 'a> {
    /// The worker's session, when the plugin serves. `--no-capture` keeps a
    /// process per test (its output is followed live per process).
    pub(super) fn new(runner: &'r Runner<'a>, worker: usize, workspace: &Path) -> Option<Self> {
        if runner.no_capture || runner.order.is_empty() {
            return None;
        }
        let tests: Vec<&TestCase> = runner.order.iter().map(|&i| &runner.tests[i]).collect();
        let invocation = runner.plugin.serve(&tests)?;
        Some(Served {
            runner,
            worker,
            workspace: workspace.to_path_buf(),
            invocation,
            first: tests[0],
            session: None,
            starts: 0,
        })
    }

    /// Ends the server (before its workspace is reset, or at the end).
    pub(super) fn stop(&mut self) {
        if let Some(session) = self.session.take() {
            session.shutdown();
        }
    }

    /// Starts the server unless it runs.
    fn start(&mut self) -> std::io::Result<()> {
        if self.session.is_some() {
            return Ok(());
        }
        let runner = self.runner;
        self.starts += 1;
        let logs = runner.context.output.join("serve");
        std::fs::create_dir_all(&logs)?;
        let stem = format!("w{}.{}", self.worker, self.starts);
        let [stdout_log, stderr_log] = ["stdout", "stderr"].map(|stream| {
            let path = logs.join(format!("{stem}.{stream}"));
            crate::runs::record(&path);
            path
        });
        let (reader, writer) = std::io::pipe()?;
        let scope = Scope::worker(&runner.context, self.worker, &self.workspace);
        let mut command = test_command(&self.invocation, self.first, &self.workspace, scope);
        command
            .env(FD_VARIABLE, RESULTS_FD.to_string())
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&stdout_log)?)
            .stderr(std::fs::File::create(&stderr_log)?);
        command
            .fd_mappings(vec![FdMapping {
                parent_fd: writer.into(),
                child_fd: RESULTS_FD,
            }])
            .map_err(std::io::Error::other)?;
        // The command holds the pipe's write end: it goes with the command,
        // so that the pipe ends when the server (and what it started) does.
        let mut watched = runner.watchdog.spawn(command, Limits::default())?;
        let stdin = watched.stdin().expect("stdin is piped");
        let (sender, lines) = crossbeam_channel::unbounded();
        let read = std::thread::Builder::new()
            .name(format!("paratest-serve-{}", self.worker))
            .spawn(move || {
                for line in std::io::BufReader::new(reader).lines() {
                    let Ok(line) = line else { break };
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        if let Err(e) = read {
            watched.kill();
            let _ = watched.wait();
            return Err(e);
        }
        self.session = Some(Session {
            watched,
            stdin,
            lines,
            stdout_log,
            stderr_log,
        });
        Ok(())
    }

    /// One attempt of `job` on the server: `--setup-test`, the request,
    /// its answer (or the server's death, or the time limit), `--teardown-test`.
    pub(super) fn attempt(
        &mut self,
        job: &Job,
        events: &crossbeam_channel::Sender<Event>,
    ) -> Attempt {
        let runner = self.runner;
        let index = job.index;
        let test = &runner.tests[index];
        let number = job.attempt;
        let workspace = self.workspace.clone();
        let scope = Scope::worker(&runner.context, self.worker, &workspace).test(&test.id, number);
        let (stdout_path, stderr_path) = log_paths(&runner.context.output, &test.id, number);
        let clock = Instant::now();
        let pids_before = crate::process::last_pid();
        let mut attempt = Attempt::starting(number, self.worker, (stdout_path, stderr_path));
        let hook_log = runner.hook_log("test", self.worker);
        if let Some(hook) = &runner.hooks.setup_test
            && let Err(e) = run_hook(
                &runner.watchdog,
                Hook::SetupTest,
                hook,
                scope,
                &hook_log,
                runner.timeout,
            )
        {
            attempt.message = Some(e);
            attempt.duration = clock.elapsed();
            return attempt;
        }
        self.run(job, test, events, &mut attempt);
        if attempt.duration.is_zero() {
            attempt.duration = clock.elapsed();
        }
        if let Some(hook) = &runner.hooks.teardown_test
            && let Err(e) = run_hook(
                &runner.watchdog,
                Hook::TeardownTest,
                hook,
                scope,
                &hook_log,
                runner.timeout,
            )
        {
            let _ = events.send(Event::Warning(e));
        }
        // What the test started and left running (the server marks its
        // children with the test's `PARATEST_TEST`). Such a process was
        // started during the test: where none was, the scan of every
        // process on the machine is skipped (it was 5% of the CPU of attrs'
        // 1,386 tests under granularity = "test").
        if pids_before.is_none() || crate::process::last_pid() != pids_before {
            runner
                .watchdog
                .sweep(&runner.sweep(self.worker, Some(&test.id)), false);
        }
        attempt
    }

    fn run(
        &mut self,
        job: &Job,
        test: &TestCase,
        events: &crossbeam_channel::Sender<Event>,
        attempt: &mut Attempt,
    ) {
        let runner = self.runner;
        let plugin = runner.plugin.name();
        match self.start() {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                attempt.status = AttemptStatus::Skipped;
                attempt.message = Some("not run: interrupted".into());
                return;
            }
            Err(e) => {
                attempt.message = Some(format!("could not start the {plugin} server: {e}"));
                return;
            }
        }
        let session = self.session.as_mut().expect("started");
        let before = session.output_lengths();
        let request = serde_json::json!({"id": test.id, "attempt": job.attempt});
        let (index, worker, number) = (job.index, attempt.worker, attempt.number);
        let slow_after = runner
            .per_test
            .get(index)
            .map_or(runner.slow_timeout, |s| s.slow_timeout);
        let on_slow = slow_after.map(|after| {
            let events = events.clone();
            let notify: Box<dyn FnOnce(Duration)> = Box::new(move |elapsed| {
                let _ = events.send(Event::TestSlow {
                    index,
                    worker,
                    attempt: number,
                    elapsed,
                });
            });
            (after, notify)
        });
        let mut progress = Vec::new();
        let outcome = if session.send(&request) {
            session.wait(
                &test.id,
                runner,
                runner.timeout_of(index),
                on_slow,
                &mut progress,
            )
        } else {
            session.died(&test.id, runner)
        };
        let (stdout_log, stderr_log) = (session.stdout_log.clone(), session.stderr_log.clone());
        let mut extra = (None, None);
        match outcome {
            Outcome::Answered(line) => {
                let verdict = runner.plugin.served(test, &line, &progress);
                if let Ok(response) = serde_json::from_str::<Response>(&line) {
                    extra = (response.stdout, response.stderr);
                }
                attempt.status = verdict.status;
                attempt.message = verdict.message;
                attempt.cases = verdict.cases;
                attempt.duration = verdict.duration.unwrap_or_default();
                if attempt.status != AttemptStatus::Passed && runner.watchdog.is_interrupted() {
                    attempt.status = AttemptStatus::Interrupted;
                    attempt.message = Some(INTERRUPTED.to_string());
                }
            }
            Outcome::Died(status) => {
                self.session.take().expect("running").kill();
                let (_, how) = crate::plugin::judge_by_exit_status(status);
                let died = format!(
                    "the {plugin} worker died while running this test: {}",
                    how.unwrap_or_else(|| "exit status 0".into())
                );
                let ended = Ended::Exited(died.clone());
                attempt.cases = runner.plugin.served_cases(test, &progress, &ended);
                attempt.message = Some(died);
            }
            Outcome::TimedOut(limit) => {
                self.session.take().expect("running").kill();
                attempt.status = AttemptStatus::TimedOut;
                attempt.cases = runner
                    .plugin
                    .served_cases(test, &progress, &Ended::TimedOut);
                attempt.message = Some(format!(
                    "timed out after {}",
                    humantime::format_duration(limit)
                ));
            }
            Outcome::Interrupted => {
                if let Some(session) = self.session.take() {
                    session.kill();
                }
                attempt.status = AttemptStatus::Interrupted;
                attempt.message = Some(INTERRUPTED.to_string());
            }
        }
        let _ = copy_since(&stdout_log, before.0, &attempt.stdout_path, extra.0);
        let _ = copy_since(&stderr_log, before.1, &attempt.stderr_path, extra.1);
    }
}

/// Writes what `log` got past `offset` (the server's output during one
/// test), then `extra` (the output the server captured), to `to`.
fn copy_since(log: &Path, offset: u64, to: &Path, extra: Option<String>) -> std::io::Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut out = std::fs::File::create(to)?;
    let mut file = std::fs::File::open(log)?;
    file.seek(std::io::SeekFrom::Start(offset))?;
    std::io::copy(&mut file, &mut out)?;
    if let Some(extra) = extra {
        out.write_all(extra.as_bytes())?;
    }
    Ok(())
}
