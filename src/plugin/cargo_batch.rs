//! Cargo batches: several short tests of one libtest binary in one process,
//! `BINARY --exact a b c --nocapture --test-threads 1`, one after another.
//!
//! The process is started by a small driver, this binary run as
//! `cargo-paratest __paratest-libtest-batch ...`, which reads the test
//! binary's output (stdout and stderr on one pipe, in order) as it arrives. With one test thread libtest
//! prints `test NAME ... ` (flushed) when a test starts and its result when
//! it ends, so the driver knows which test runs at every moment: it splits
//! the output into each test's own log files, times each test from its
//! start line to its result, stops a test that runs past its own time limit
//! ([`crate::exec::BATCH_TIMEOUT_VAR`]); a test's own log has its stdout
//! and stderr together, in the order written and writes one JSON line per
//! finished test to the attempt's report. A test that libtest did not report
//! is absent from the report: the runner runs it again alone.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufRead, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde::{Deserialize, Serialize};

use crate::libtest::LineResult;
use crate::model::{Invocation, TestCase};

/// The first argument that makes this binary the batch driver.
pub const DRIVER: &str = "__paratest-libtest-batch";

/// How long the driver still reads after the test binary exited (what it
/// started may hold the pipes open).
const DRAIN: Duration = Duration::from_millis(500);

/// One finished test, as the driver reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reported {
    pub name: String,
    pub result: Outcome,
    /// From its start line to its result (a timed-out test: its limit).
    pub seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Passed,
    Failed,
    Ignored,
    TimedOut,
}

/// The driver's command for `tests` (all with `template`'s program and
/// arguments but the name), each test's output going to its own
/// [`crate::exec::logs::log_paths`] next to `report`.
pub fn invocation(
    driver: &Path,
    program: &Path,
    template: &[OsString],
    tests: &[&TestCase],
    report: &Path,
) -> Invocation {
    let output = report.parent().unwrap_or(Path::new("."));
    let mut args: Vec<OsString> =
        vec![DRIVER.into(), report.into(), tests.len().to_string().into()];
    for test in tests {
        let (stdout, stderr) = crate::exec::logs::log_paths(output, &test.id, 1);
        args.extend([test.name.clone().into(), stdout.into(), stderr.into()]);
    }
    args.extend(["--".into(), program.into(), "--exact".into()]);
    args.extend(tests.iter().map(|t| OsString::from(&t.name)));
    args.extend(template.iter().skip(2).cloned());
    args.extend(["--test-threads".into(), "1".into()]);
    Invocation::Argv {
        program: driver.to_path_buf(),
        args,
    }
}

/// What the driver reported, by test name. A missing or unreadable report is empty.
pub fn read_report(path: &Path) -> HashMap<String, Reported> {
    let Ok(file) = File::open(path) else {
        return HashMap::new();
    };
    io::BufReader::new(file)
        .lines()
        .map_while(|line| line.ok())
        .filter_map(|line| serde_json::from_str::<Reported>(&line).ok())
        .map(|reported| (reported.name.clone(), reported))
        .collect()
}

/// Runs the driver when `args` ask for it (`BIN __paratest-libtest-batch ...`):
/// returns its exit code, else `None`.
pub fn main(args: &[OsString]) -> Option<i32> {
    if args.get(1).map(OsString::as_os_str) != Some(OsStr::new(DRIVER)) {
        return None;
    }
    Some(match parse(&args[2..]) {
        Some((report, tests, program, program_args)) => {
            match drive(&report, tests, &program, program_args) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("cargo-paratest: the batch driver failed: {e}");
                    3
                }
            }
        }
        None => {
            eprintln!("cargo-paratest: {DRIVER}: bad arguments (an internal command)");
            2
        }
    })
}

type Parsed<'a> = (PathBuf, Vec<TestLog>, OsString, &'a [OsString]);

fn parse(args: &[OsString]) -> Option<Parsed<'_>> {
    let report = PathBuf::from(args.first()?);
    let count: usize = args.get(1)?.to_str()?.parse().ok()?;
    let mut tests = Vec::with_capacity(count);
    for i in 0..count {
        let at = 2 + 3 * i;
        tests.push(TestLog {
            name: args.get(at)?.to_str()?.to_string(),
            stdout_path: args.get(at + 1)?.into(),
            stderr_path: args.get(at + 2)?.into(),
            files: None,
            started: None,
            done: false,
        });
    }
    let rest = args.get(2 + 3 * count..)?;
    if rest.first()? != "--" {
        return None;
    }
    Some((report, tests, rest.get(1)?.clone(), &rest[2..]))
}

struct TestLog {
    name: String,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    files: Option<(File, File)>,
    started: Option<Instant>,
    done: bool,
}

fn drive(report: &Path, tests: Vec<TestLog>, program: &OsStr, args: &[OsString]) -> io::Result<()> {
    let limit = std::env::var(crate::exec::BATCH_TIMEOUT_VAR)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64);
    // One pipe for both streams: what a test wrote, to either, stays in
    // order with libtest's start and result lines, so each byte goes to the
    // test that was running (two pipes cannot tell which came first).
    let (reader, writer) = io::pipe()?;
    let mut command = Command::new(program);
    command
        .args(args)
        .env_remove(crate::exec::BATCH_TIMEOUT_VAR)
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer);
    let mut child = command.spawn()?;
    // Only the child holds the write end now: its exit closes the pipe.
    drop(command);
    let mut splitter = Splitter::new(tests, File::create(report)?);
    let status = pump(&mut child, reader, &mut splitter, limit)?;
    splitter.finish(status)
}

/// Reads the output until the pipe closes (or a while after the exit).
fn pump(
    child: &mut Child,
    output: io::PipeReader,
    splitter: &mut Splitter,
    limit: Option<Duration>,
) -> io::Result<ExitStatus> {
    let mut stdout = Some(output);
    let mut stderr: Option<io::PipeReader> = None;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut exited: Option<(ExitStatus, Instant)> = None;
    loop {
        let now = Instant::now();
        if let (Some(limit), Some(started)) = (limit, splitter.current_started())
            && exited.is_none()
            && now.duration_since(started) >= limit
        {
            let _ = child.kill();
            splitter.time_out(limit)?;
            return child.wait();
        }
        if (stdout.is_none() && stderr.is_none())
            || exited.is_some_and(|(_, at)| now.duration_since(at) >= DRAIN)
        {
            break;
        }
        let mut wait = Duration::from_millis(100);
        if let (Some(limit), Some(started)) = (limit, splitter.current_started()) {
            wait = wait.min((started + limit).saturating_duration_since(now));
        }
        let (err_ready, out_ready) = {
            let mut fds = Vec::new();
            let flags = PollFlags::POLLIN | PollFlags::POLLHUP;
            if let Some(err) = &stderr {
                fds.push(PollFd::new(err.as_fd(), flags));
            }
            if let Some(out) = &stdout {
                fds.push(PollFd::new(out.as_fd(), flags));
            }
            let ms = PollTimeout::from(wait.as_millis().clamp(1, 1000) as u16);
            match poll(&mut fds, ms) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            let ready =
                |fd: Option<&PollFd>| fd.and_then(PollFd::revents).is_some_and(|r| !r.is_empty());
            let mut fds = fds.iter();
            let err_ready = stderr.is_some() && ready(fds.next());
            let out_ready = stdout.is_some() && ready(fds.next());
            (err_ready, out_ready)
        };
        let now = Instant::now();
        if err_ready && let Some(err) = &mut stderr {
            match err.read(&mut buffer)? {
                0 => stderr = None,
                n => splitter.stderr(&buffer[..n])?,
            }
        }
        if out_ready && let Some(out) = &mut stdout {
            match out.read(&mut buffer)? {
                0 => stdout = None,
                n => splitter.stdout(&buffer[..n], now)?,
            }
        }
        if exited.is_none()
            && let Some(status) = child.try_wait()?
        {
            exited = Some((status, Instant::now()));
        }
    }
    match exited {
        Some((status, _)) => Ok(status),
        None => child.wait(),
    }
}

/// How much of one line the driver keeps to read libtest's lines from; the
/// rest of a longer line goes straight to the test's log.
const LINE_CAP: usize = 64 * 1024;

/// How much of the end of a longer line is kept (libtest's result may follow a test's output).
const LINE_END: usize = 1024;

/// A test's result as its output suggests, before libtest's summary confirms it.
struct Pending {
    index: usize,
    result: LineResult,
    seconds: f64,
    /// Exactly one line since its start line looked like a result, and it
    /// was exactly libtest's: trusted without a summary.
    sure: bool,
}

/// Tells libtest's lines from the tests' output and splits the output by test.
struct Splitter {
    tests: Vec<TestLog>,
    by_name: HashMap<String, usize>,
    /// Each test's place in the order libtest runs them (by name).
    rank: Vec<usize>,
    /// The rank a start line must reach: libtest runs the tests in order.
    next_rank: usize,
    /// The longest start line of the batch.
    start_max: usize,
    current: Option<usize>,
    /// The first bytes of the unfinished line, while it may be a start line.
    head: Vec<u8>,
    /// The unfinished line's first bytes are decided and written.
    head_done: bool,
    /// The unfinished line after its start line: its first [`LINE_CAP`]
    /// bytes, or of a longer one its last [`LINE_END`].
    line_text: Vec<u8>,
    line_long: bool,
    /// Lines shaped like a result since the current test's start line.
    results_seen: usize,
    /// The text after the start line, or the last complete line: where libtest's result ends.
    last_line: String,
    /// The line before a blank line: libtest's last result before its summary.
    before_blank: Option<(String, Instant, usize)>,
    /// The result of the last test when libtest ended normally.
    last_result: Option<(String, Instant, usize)>,
    /// libtest's `test result:` counts.
    summary: Option<crate::libtest::Summary>,
    /// Names libtest's summary gives as failed (`---- NAME stdout ----` and
    /// the last `failures:` list).
    failures: std::collections::HashSet<String>,
    listed: Vec<String>,
    pending: Vec<Pending>,
    report: File,
    /// Copy everything to this process's own stdout and stderr (the batch's log).
    echo: bool,
}

impl Splitter {
    fn new(tests: Vec<TestLog>, report: File) -> Splitter {
        let by_name = tests
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        let mut order: Vec<usize> = (0..tests.len()).collect();
        order.sort_by(|a, b| tests[*a].name.cmp(&tests[*b].name));
        let mut rank = vec![0; tests.len()];
        for (place, index) in order.into_iter().enumerate() {
            rank[index] = place;
        }
        let start_max = tests
            .iter()
            .map(|t| "test  - should panic ... ".len() + t.name.len())
            .max()
            .unwrap_or(0);
        Splitter {
            tests,
            by_name,
            rank,
            next_rank: 0,
            start_max,
            current: None,
            head: Vec::new(),
            head_done: false,
            line_text: Vec::new(),
            line_long: false,
            results_seen: 0,
            last_line: String::new(),
            before_blank: None,
            last_result: None,
            summary: None,
            failures: Default::default(),
            listed: Vec::new(),
            pending: Vec::new(),
            report,
            echo: true,
        }
    }

    fn current_started(&self) -> Option<Instant> {
        self.current.and_then(|i| self.tests[i].started)
    }

    /// `test NAME ... ` (or `test NAME - should panic ... `) at the start
    /// of `line`, of a test of the batch that libtest runs after the last
    /// one started: the test and where its start line ends.
    fn start_line(&self, line: &[u8]) -> Option<(usize, usize)> {
        let rest = line.strip_prefix(b"test ")?;
        let dots = memchr::memmem::find(rest, b" ... ")?;
        let name = std::str::from_utf8(&rest[..dots]).ok()?;
        let name = name.strip_suffix(" - should panic").unwrap_or(name);
        let index = *self.by_name.get(name)?;
        let test = &self.tests[index];
        (test.started.is_none() && !test.done && self.rank[index] >= self.next_rank)
            .then_some((index, "test ".len() + dots + " ... ".len()))
    }

    fn stdout(&mut self, bytes: &[u8], now: Instant) -> io::Result<()> {
        if self.echo {
            io::stdout().write_all(bytes)?;
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            let (piece, complete) = match memchr::memchr(b'\n', rest) {
                Some(end) => (&rest[..=end], true),
                None => (rest, false),
            };
            rest = &rest[piece.len()..];
            self.piece(piece, complete, now)?;
        }
        Ok(())
    }

    /// Part of one line (`complete`: up to its newline). Only a line's first
    /// bytes are held back, until they are known to be a start line or not.
    fn piece(&mut self, mut piece: &[u8], complete: bool, now: Instant) -> io::Result<()> {
        if !self.head_done {
            let take = piece
                .len()
                .min(self.start_max.saturating_sub(self.head.len()));
            self.head.extend_from_slice(&piece[..take]);
            piece = &piece[take..];
            let head = std::mem::take(&mut self.head);
            if let Some((index, at)) = self.start_line(&head) {
                self.start(index, now)?;
                self.write_out(&head)?;
                self.keep(&head[at..]);
                self.head_done = true;
            } else if complete
                || head.len() >= self.start_max
                || !b"test ".starts_with(&head[..head.len().min(5)])
            {
                self.write_out(&head)?;
                self.keep(&head);
                self.head_done = true;
            } else {
                // Undecided: `piece` is all in `head`.
                self.head = head;
                return Ok(());
            }
        }
        self.write_out(piece)?;
        self.keep(piece);
        if complete {
            let text = String::from_utf8_lossy(&self.line_text)
                .trim_end()
                .to_string();
            self.line_text.clear();
            self.line_long = false;
            self.head_done = false;
            self.line(text, now);
        }
        Ok(())
    }

    /// Keeps what libtest's lines are read from, within [`LINE_CAP`].
    fn keep(&mut self, bytes: &[u8]) {
        if !self.line_long && self.line_text.len() + bytes.len() <= LINE_CAP {
            self.line_text.extend_from_slice(bytes);
            return;
        }
        self.line_long = true;
        let from = bytes.len().saturating_sub(LINE_END);
        self.line_text.extend_from_slice(&bytes[from..]);
        let over = self.line_text.len().saturating_sub(LINE_END);
        self.line_text.drain(..over);
    }

    /// One complete line of stdout (after a start line: what follows it).
    fn line(&mut self, text: String, now: Instant) {
        if self.summary.is_some() {
            return;
        }
        if text.is_empty() {
            self.before_blank = Some((std::mem::take(&mut self.last_line), now, self.results_seen));
            return;
        }
        if self.current.is_some() && result_of(&text).is_some() {
            self.results_seen += 1;
        }
        let ends = text == "failures:" || text == "successes:" || text.starts_with("test result: ");
        if ends
            && let Some((before, at, seen)) = self.before_blank.take()
            && result_of(&before).is_some()
        {
            self.last_result = Some((before, at, seen));
        }
        if text == "failures:" {
            // The last `failures:` heading is followed by the list of names.
            self.listed.clear();
        } else if let Some(name) = text.strip_prefix("    ")
            && self.by_name.contains_key(name)
        {
            self.listed.push(name.to_string());
        } else if let Some(name) = text
            .strip_prefix("---- ")
            .and_then(|t| t.strip_suffix(" stdout ----"))
            && self.by_name.contains_key(name)
        {
            self.failures.insert(name.to_string());
        }
        if text.starts_with("test result: ")
            && let Some(summary) = crate::libtest::read_run(&text).summary
        {
            self.summary = Some(summary);
            self.failures.extend(std::mem::take(&mut self.listed));
        }
        self.before_blank = None;
        self.last_line = text;
    }

    fn stderr(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.echo {
            io::stderr().write_all(bytes)?;
        }
        if let Some(index) = self.current
            && let Some((_, err)) = &mut self.tests[index].files
        {
            err.write_all(bytes)?;
        }
        Ok(())
    }

    fn write_out(&mut self, bytes: &[u8]) -> io::Result<()> {
        if !bytes.is_empty()
            && let Some(index) = self.current
            && let Some((out, _)) = &mut self.tests[index].files
        {
            out.write_all(bytes)?;
        }
        Ok(())
    }

    /// The test at `index` starts: the one before it ended with the result
    /// on its last line.
    fn start(&mut self, index: usize, now: Instant) -> io::Result<()> {
        if let Some(previous) = self.current.take() {
            let last = std::mem::take(&mut self.last_line);
            let seen = std::mem::take(&mut self.results_seen);
            self.end(previous, &last, now, seen);
        }
        let test = &mut self.tests[index];
        test.files = Some((
            File::create(&test.stdout_path)?,
            File::create(&test.stderr_path)?,
        ));
        test.started = Some(now);
        self.current = Some(index);
        self.next_rank = self.rank[index] + 1;
        self.results_seen = 0;
        self.before_blank = None;
        Ok(())
    }

    /// Keeps the result `last` suggests for the test at `index`, until
    /// libtest's summary confirms it.
    fn end(&mut self, index: usize, last: &str, now: Instant, seen: usize) {
        let test = &mut self.tests[index];
        test.done = true;
        let Some(result) = result_of(last) else {
            return;
        };
        let seconds = test
            .started
            .map_or(0.0, |s| now.duration_since(s).as_secs_f64());
        let exact = matches!(last, "ok" | "FAILED" | "ignored") || last.starts_with("ignored, ");
        self.pending.push(Pending {
            index,
            result,
            seconds,
            sure: seen == 1 && exact,
        });
    }

    fn write_report(&mut self, name: String, result: Outcome, seconds: f64) -> io::Result<()> {
        let line = serde_json::to_string(&Reported {
            name,
            result,
            seconds,
        })?;
        writeln!(self.report, "{line}")?;
        self.report.flush()
    }

    /// Reports the pending results: all when libtest's summary agrees with
    /// each of them (`confirmed`), else only the sure ones (no summary) or
    /// none (a summary that disagrees).
    fn report_pending(&mut self, confirmed: Option<bool>) -> io::Result<()> {
        for pending in std::mem::take(&mut self.pending) {
            if !confirmed.unwrap_or(pending.sure) {
                continue;
            }
            let result = match pending.result {
                LineResult::Ok => Outcome::Passed,
                LineResult::Failed => Outcome::Failed,
                LineResult::Ignored => Outcome::Ignored,
            };
            let name = self.tests[pending.index].name.clone();
            self.write_report(name, result, pending.seconds)?;
        }
        Ok(())
    }

    /// Whether libtest's summary agrees with every pending result: the
    /// failed ones and only those in its failures, and its counts.
    fn summary_agrees(&self) -> bool {
        let Some(summary) = self.summary else {
            return false;
        };
        let count = |want: LineResult| self.pending.iter().filter(|p| p.result == want).count();
        let each = self.pending.iter().all(|p| {
            self.failures.contains(&self.tests[p.index].name) == (p.result == LineResult::Failed)
        });
        each && (summary.passed, summary.failed, summary.ignored)
            == (
                count(LineResult::Ok),
                count(LineResult::Failed),
                count(LineResult::Ignored),
            )
    }

    /// The current test ran past `limit`; the binary was killed.
    fn time_out(&mut self, limit: Duration) -> io::Result<()> {
        self.flush_tail()?;
        self.report_pending(None)?;
        if let Some(index) = self.current.take() {
            self.tests[index].done = true;
            let name = self.tests[index].name.clone();
            self.write_report(name, Outcome::TimedOut, limit.as_secs_f64())?;
        }
        Ok(())
    }

    fn flush_tail(&mut self) -> io::Result<()> {
        let head = std::mem::take(&mut self.head);
        self.write_out(&head)
    }

    /// The binary exited: the test that was running counts only when
    /// libtest went on to print its summary and exited as libtest does.
    /// With a summary, every result is reported when it agrees with all
    /// and none when not (the runner runs them again alone); without one,
    /// only the sure ones.
    fn finish(mut self, status: ExitStatus) -> io::Result<()> {
        self.flush_tail()?;
        let normal = matches!(status.code(), Some(0 | 101));
        if let Some(index) = self.current.take()
            && self.summary.is_some()
            && normal
            && let Some((last, at, seen)) = self.last_result.take()
        {
            self.end(index, &last, at, seen);
        }
        let confirmed = (self.summary.is_some() && normal).then(|| self.summary_agrees());
        self.report_pending(confirmed)
    }
}

/// libtest's result at the end of a line: a test's output may come before it on the line.
fn result_of(line: &str) -> Option<LineResult> {
    let line = line.trim_end();
    if line.ends_with("FAILED") {
        Some(LineResult::Failed)
    } else if line.ends_with("ok") {
        Some(LineResult::Ok)
    } else if line == "ignored" || line.starts_with("ignored, ") || line.ends_with(" ignored") {
        Some(LineResult::Ignored)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn splitter(dir: &Path, names: &[&str]) -> Splitter {
        let tests = names
            .iter()
            .map(|name| TestLog {
                name: name.to_string(),
                stdout_path: dir.join(format!("{name}.out")),
                stderr_path: dir.join(format!("{name}.err")),
                files: None,
                started: None,
                done: false,
            })
            .collect();
        let mut splitter = Splitter::new(tests, File::create(dir.join("report")).unwrap());
        splitter.echo = false;
        splitter
    }

    #[test]
    fn output_is_split_by_start_lines_and_results_read_from_line_ends() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = splitter(dir.path(), &["a", "b", "c"]);
        let now = Instant::now();
        for chunk in [
            "\nrunning 3 tests\ntest a ... ",
            "hello from a\n",
            "ok\ntest b ... ",
            "FAILED\ntest c ... partial",
            " line\nok\n\nfailures:\n\nfailures:\n    b\n\ntest result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\n",
        ] {
            s.stdout(chunk.as_bytes(), now).unwrap();
        }
        use std::os::unix::process::ExitStatusExt;
        s.finish(ExitStatus::from_raw(101 << 8)).unwrap();
        let report = read_report(&dir.path().join("report"));
        let result = |n: &str| report[n].result;
        assert_eq!(result("a"), Outcome::Passed);
        assert_eq!(result("b"), Outcome::Failed);
        assert_eq!(result("c"), Outcome::Passed);
        let out = std::fs::read_to_string(dir.path().join("a.out")).unwrap();
        assert_eq!(out, "test a ... hello from a\nok\n");
        let out = std::fs::read_to_string(dir.path().join("c.out")).unwrap();
        assert!(out.starts_with("test c ... partial line\nok\n"), "{out}");
    }

    #[test]
    fn a_test_that_crashed_is_not_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = splitter(dir.path(), &["a", "b"]);
        let now = Instant::now();
        s.stdout(b"\nrunning 2 tests\ntest a ... ok\ntest b ... ok\n\n", now)
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        // Killed by SIGABRT before the summary: `b` printed `ok` itself.
        s.finish(ExitStatus::from_raw(6)).unwrap();
        let report = read_report(&dir.path().join("report"));
        assert_eq!(report["a"].result, Outcome::Passed);
        assert!(!report.contains_key("b"), "{report:?}");
    }

    #[test]
    fn output_after_a_result_that_disagrees_with_the_summary_reports_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = splitter(dir.path(), &["a", "b", "c"]);
        let now = Instant::now();
        s.stdout(
            b"\nrunning 3 tests\ntest a ... ok\ntest b ... FAILED\nheartbeat ok\n\
              test c ... ok\n\nfailures:\n\nfailures:\n    b\n\n\
              test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n",
            now,
        )
        .unwrap();
        use std::os::unix::process::ExitStatusExt;
        s.finish(ExitStatus::from_raw(101 << 8)).unwrap();
        let report = read_report(&dir.path().join("report"));
        assert!(report.is_empty(), "{report:?}");
    }

    #[test]
    fn start_lines_count_only_in_libtests_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = splitter(dir.path(), &["b", "a"]);
        let now = Instant::now();
        s.stdout(b"test b ... test a ... \nok\n", now).unwrap();
        assert_eq!(s.current, Some(0), "{:?}", s.current);
        s.stdout(b"test a ... ok\n", now).unwrap();
        assert_eq!(s.current, Some(0), "a runs before b: {:?}", s.current);
    }

    #[test]
    fn a_long_line_is_streamed_not_held() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = splitter(dir.path(), &["a"]);
        let now = Instant::now();
        s.stdout(b"test a ... ", now).unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..64 {
            s.stdout(&chunk, now).unwrap();
            assert!(s.line_text.len() <= LINE_CAP + chunk.len());
        }
        s.stdout(
            b"ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n",
            now,
        )
        .unwrap();
        use std::os::unix::process::ExitStatusExt;
        s.finish(ExitStatus::from_raw(0)).unwrap();
        let report = read_report(&dir.path().join("report"));
        assert_eq!(report["a"].result, Outcome::Passed);
        let size = std::fs::metadata(dir.path().join("a.out")).unwrap().len();
        // Then libtest's summary, as the last test's output.
        assert!(size as usize > "test a ... ".len() + 64 * chunk.len() + "ok\n".len());
    }
}
