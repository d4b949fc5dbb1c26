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

/// Tells libtest's lines from the tests' output and splits the output by test.
struct Splitter {
    tests: Vec<TestLog>,
    by_name: HashMap<String, usize>,
    current: Option<usize>,
    /// The unfinished last line of stdout.
    tail: Vec<u8>,
    /// Bytes of `tail` already written to the current test's log (a start line).
    tail_written: usize,
    /// The text after the start line, or the last complete line: where libtest's result ends.
    last_line: String,
    /// The line before a blank line: libtest's last result before its summary.
    before_blank: Option<(String, Instant)>,
    /// The result of the last test when libtest ended normally.
    last_result: Option<(String, Instant)>,
    summary: bool,
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
        Splitter {
            tests,
            by_name,
            current: None,
            tail: Vec::new(),
            tail_written: 0,
            last_line: String::new(),
            before_blank: None,
            last_result: None,
            summary: false,
            report,
            echo: true,
        }
    }

    fn current_started(&self) -> Option<Instant> {
        self.current.and_then(|i| self.tests[i].started)
    }

    /// `test NAME ... ` (or `test NAME - should panic ... `) of a test of the
    /// batch that has not started: the test and where its start line ends.
    fn start_line(&self, line: &[u8]) -> Option<(usize, usize)> {
        let text = std::str::from_utf8(line.strip_prefix(b"test ")?).ok()?;
        let (name, _) = text.split_once(" ... ")?;
        let name = name.strip_suffix(" - should panic").unwrap_or(name);
        let index = *self.by_name.get(name)?;
        let test = &self.tests[index];
        (test.started.is_none() && !test.done)
            .then_some((index, "test ".len() + text.find(" ... ")? + " ... ".len()))
    }

    fn stdout(&mut self, bytes: &[u8], now: Instant) -> io::Result<()> {
        if self.echo {
            io::stdout().write_all(bytes)?;
        }
        self.tail.extend_from_slice(bytes);
        while let Some(end) = memchr::memchr(b'\n', &self.tail) {
            let line: Vec<u8> = self.tail.drain(..=end).collect();
            let written = std::mem::take(&mut self.tail_written);
            let mut after_start = None;
            if written == 0 {
                if let Some((index, at)) = self.start_line(&line) {
                    self.start(index, now)?;
                    after_start = Some(at);
                }
            } else if let Some(at) = self.start_line_len(&line) {
                after_start = Some(at);
            }
            self.write_out(&line[written.min(line.len())..])?;
            let text = String::from_utf8_lossy(&line[after_start.unwrap_or(0)..]);
            self.line(text.trim_end().to_string(), now);
        }
        if self.tail_written == 0
            && !self.tail.is_empty()
            && let Some((index, _)) = self.start_line(&self.tail.clone())
        {
            self.start(index, now)?;
            let tail = std::mem::take(&mut self.tail);
            self.write_out(&tail)?;
            self.tail_written = tail.len();
            self.tail = tail;
        }
        Ok(())
    }

    /// Where the start line of the current test ends in `line`, when it starts with it.
    fn start_line_len(&self, line: &[u8]) -> Option<usize> {
        let text = std::str::from_utf8(line.strip_prefix(b"test ")?).ok()?;
        Some("test ".len() + text.find(" ... ")? + " ... ".len())
    }

    /// One complete line of stdout (after a start line: what follows it).
    fn line(&mut self, text: String, now: Instant) {
        if self.summary {
            return;
        }
        if text.is_empty() {
            self.before_blank = Some((std::mem::take(&mut self.last_line), now));
            return;
        }
        let ends = text == "failures:" || text == "successes:" || text.starts_with("test result: ");
        if ends
            && let Some((before, at)) = self.before_blank.take()
            && result_of(&before).is_some()
        {
            self.last_result = Some((before, at));
        }
        if text.starts_with("test result: ") && crate::libtest::read_run(&text).summary.is_some() {
            self.summary = true;
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
        if let Some(index) = self.current
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
            self.end(previous, &last, now)?;
        }
        let test = &mut self.tests[index];
        test.files = Some((
            File::create(&test.stdout_path)?,
            File::create(&test.stderr_path)?,
        ));
        test.started = Some(now);
        self.current = Some(index);
        self.before_blank = None;
        Ok(())
    }

    /// Reports the test at `index` when `last` ends with libtest's result.
    fn end(&mut self, index: usize, last: &str, now: Instant) -> io::Result<()> {
        let test = &mut self.tests[index];
        test.done = true;
        let Some(result) = result_of(last) else {
            return Ok(());
        };
        let seconds = test
            .started
            .map_or(0.0, |s| now.duration_since(s).as_secs_f64());
        let result = match result {
            LineResult::Ok => Outcome::Passed,
            LineResult::Failed => Outcome::Failed,
            LineResult::Ignored => Outcome::Ignored,
        };
        let name = test.name.clone();
        self.write_report(name, result, seconds)
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

    /// The current test ran past `limit`; the binary was killed.
    fn time_out(&mut self, limit: Duration) -> io::Result<()> {
        self.flush_tail()?;
        if let Some(index) = self.current.take() {
            self.tests[index].done = true;
            let name = self.tests[index].name.clone();
            self.write_report(name, Outcome::TimedOut, limit.as_secs_f64())?;
        }
        Ok(())
    }

    fn flush_tail(&mut self) -> io::Result<()> {
        let tail = std::mem::take(&mut self.tail);
        let written = std::mem::take(&mut self.tail_written);
        self.write_out(&tail[written.min(tail.len())..])
    }

    /// The binary exited: the test that was running counts only when
    /// libtest went on to print its summary and exited as libtest does.
    fn finish(mut self, status: ExitStatus) -> io::Result<()> {
        self.flush_tail()?;
        let normal = matches!(status.code(), Some(0 | 101));
        if let Some(index) = self.current.take()
            && self.summary
            && normal
            && let Some((last, at)) = self.last_result.take()
        {
            self.end(index, &last, at)?;
        }
        Ok(())
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
}
