//! Rust's libtest, read and spoken in one place: what a test process said it
//! ran (`running 1 test`, `test NAME ... ok`, `test result: ...`), what each
//! panic said and where (`thread 'NAME' (123) panicked at FILE:LINE:COL:`),
//! and which arguments after `--` select tests the way `cargo test` reads
//! them. The Cargo plugin's verdicts, the JUnit report, the console and the
//! step summary all use this module, so they cannot disagree.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::ExitStatus;

use crate::model::AttemptStatus;

/// The bytes of a log read from each end: libtest's own lines sit at the
/// start and at the end of a test's output, whatever the test printed.
const WINDOW: u64 = 1024 * 1024;

/// What libtest printed on stdout about one process.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// `running N tests`.
    pub running: Option<usize>,
    /// `test NAME ... ok|FAILED|ignored`, in order (the pretty format only).
    pub results: Vec<(String, LineResult)>,
    /// The last `test result: ...` line.
    pub summary: Option<Summary>,
}

/// The result a `test NAME ... RESULT` line gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineResult {
    Ok,
    Failed,
    Ignored,
}

/// `test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 5 filtered out; ...`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub ignored: usize,
    pub measured: usize,
    pub filtered_out: usize,
}

impl Summary {
    /// Tests the process ran or reported as ignored.
    pub fn total(&self) -> usize {
        self.passed + self.failed + self.ignored + self.measured
    }
}

/// Reads libtest's lines from a test process's stdout. Lines a test printed
/// itself (with `--nocapture`) are told apart by libtest's exact shapes; the
/// last summary line wins, since libtest prints it last.
pub fn read_run(stdout: &str) -> RunReport {
    let mut report = RunReport::default();
    for line in stdout.lines() {
        let line = line.trim_end();
        if let Some(count) = line
            .strip_prefix("running ")
            .and_then(|rest| rest.strip_suffix(" tests").or(rest.strip_suffix(" test")))
            .and_then(|n| n.parse().ok())
        {
            report.running = Some(count);
        } else if let Some(summary) = line.strip_prefix("test result: ").and_then(summary) {
            report.summary = Some(summary);
        } else if let Some(result) = result_line(line) {
            report.results.push(result);
        }
    }
    report
}

fn result_line(line: &str) -> Option<(String, LineResult)> {
    let rest = line.strip_prefix("test ")?;
    let (name, result) = rest.rsplit_once(" ... ")?;
    // `--report-time` adds `<0.001s>`.
    let result = match result.rsplit_once(" <") {
        Some((result, time)) if time.ends_with("s>") => result,
        _ => result,
    };
    let result = match result {
        "ok" => LineResult::Ok,
        "FAILED" => LineResult::Failed,
        r if r == "ignored" || r.starts_with("ignored, ") => LineResult::Ignored,
        _ => return None,
    };
    let name = name.strip_suffix(" - should panic").unwrap_or(name);
    Some((name.to_string(), result))
}

/// `ok. 1 passed; 0 failed; ...` (also `FAILED. ...`).
fn summary(text: &str) -> Option<Summary> {
    let (_, counts) = text.split_once(". ")?;
    let mut summary = Summary::default();
    let mut seen = 0;
    for part in counts.split(';') {
        let mut words = part.split_whitespace();
        let Some(number) = words.next().and_then(|n| n.parse::<usize>().ok()) else {
            continue;
        };
        let field = match words.next() {
            Some("passed") => &mut summary.passed,
            Some("failed") => &mut summary.failed,
            Some("ignored") => &mut summary.ignored,
            Some("measured") => &mut summary.measured,
            Some("filtered") => &mut summary.filtered_out,
            _ => continue,
        };
        *field = number;
        seen += 1;
    }
    (seen >= 3).then_some(summary)
}

/// The test names of `BINARY --list --format terse` (`NAME: test` lines;
/// benchmarks, `NAME: bench`, are not tests).
pub fn read_list(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_string)
        .collect()
}

/// One panic as libtest's panic hook printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panic {
    /// The header line as printed (`thread 'NAME' (123) panicked at FILE:L:C:`).
    pub header: String,
    /// The thread's name: the test's name for the test's own thread.
    pub thread: String,
    /// Where it panicked, as printed (relative to the package for the package's own code).
    pub file: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// The panic message, every line of it (`assertion `left == right` failed`, `  left: 2`...).
    pub message: String,
}

impl Panic {
    /// `FILE:LINE:COL`, when known.
    pub fn location(&self) -> Option<String> {
        let file = self.file.as_deref()?;
        Some(match (self.line, self.column) {
            (Some(line), Some(column)) => format!("{file}:{line}:{column}"),
            (Some(line), None) => format!("{file}:{line}"),
            _ => file.to_string(),
        })
    }

    /// As libtest printed it: the header line, then the message.
    pub fn render(&self) -> String {
        if self.header.ends_with(':') {
            format!("{}\n{}", self.header, self.message)
        } else {
            // The old one-line header holds the message.
            self.header.clone()
        }
    }

    /// The message, then where: what a reader wants first.
    pub fn describe(&self) -> String {
        match self.location() {
            Some(at) => format!("{}\n  at {at}", self.message),
            None => self.message.clone(),
        }
    }
}

/// Every panic in a test's output, in order. Understands today's header
/// (`thread 'NAME' (12345) panicked at FILE:L:C:` + message lines), the
/// 1.73 to 1.88 one (no thread id), and the older one-line
/// `thread 'NAME' panicked at 'MESSAGE', FILE:L:C`. A message ends at the
/// backtrace, libtest's `note:` hint, the next panic or a blank line.
pub fn panics(output: &str) -> Vec<Panic> {
    let mut found: Vec<Panic> = Vec::new();
    let mut open = false;
    for line in output.lines() {
        if let Some(panic) = panic_header(line) {
            // The old one-line header holds its message; the others are followed by it.
            open = panic.message.is_empty();
            found.push(panic);
            continue;
        }
        if !open {
            continue;
        }
        let ends = line.trim().is_empty()
            || line.starts_with("stack backtrace:")
            || line.starts_with("note: ")
            || line.starts_with("test result: ");
        if ends {
            open = false;
            continue;
        }
        let panic = found.last_mut().expect("open only after a header");
        if !panic.message.is_empty() {
            panic.message.push('\n');
        }
        panic.message.push_str(line.trim_end());
    }
    found
}

fn panic_header(line: &str) -> Option<Panic> {
    let rest = line.strip_prefix("thread '")?;
    let (thread, rest) = rest.split_once('\'')?;
    // `(12345) ` since Rust 1.89.
    let rest = rest.trim_start();
    let rest = match rest.strip_prefix('(') {
        Some(after) => after.split_once(") ")?.1,
        None => rest,
    };
    let rest = rest.strip_prefix("panicked at ")?;
    let mut panic = Panic {
        header: line.trim_end().to_string(),
        thread: thread.to_string(),
        file: None,
        line: None,
        column: None,
        message: String::new(),
    };
    if let Some(quoted) = rest.strip_prefix('\'') {
        // Before 1.73: `'MESSAGE', FILE:L:C`.
        let (message, location) = quoted.rsplit_once("', ")?;
        panic.message = message.to_string();
        set_location(&mut panic, location);
    } else {
        set_location(
            &mut panic,
            rest.trim_end().strip_suffix(':').unwrap_or(rest),
        );
    }
    Some(panic)
}

fn set_location(panic: &mut Panic, location: &str) {
    let mut parts = location.rsplitn(3, ':');
    let (column, line, file) = (parts.next(), parts.next(), parts.next());
    match (
        file,
        line.and_then(|l| l.parse().ok()),
        column.and_then(|c| c.parse().ok()),
    ) {
        (Some(file), Some(line), Some(column)) => {
            panic.file = Some(file.to_string());
            panic.line = Some(line);
            panic.column = Some(column);
        }
        _ if !location.is_empty() => panic.file = Some(location.to_string()),
        _ => {}
    }
}

/// The panic that failed `test`: the one on its own thread (named after it),
/// else the first one.
pub fn test_panic(test: &str, outputs: &[&str]) -> Option<Panic> {
    let all: Vec<Panic> = outputs.iter().flat_map(|text| panics(text)).collect();
    let own = all.iter().position(|p| p.thread == test);
    let index = own.or((!all.is_empty()).then_some(0))?;
    all.into_iter().nth(index)
}

/// A log file as text, bounded: its first and last [`WINDOW`] bytes. Empty
/// when it cannot be read.
pub fn read_log(path: &Path) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut bytes = Vec::new();
    if length <= 2 * WINDOW {
        let _ = Read::by_ref(&mut file).take(length).read_to_end(&mut bytes);
    } else {
        let _ = Read::by_ref(&mut file).take(WINDOW).read_to_end(&mut bytes);
        bytes.push(b'\n');
        if file.seek(SeekFrom::Start(length - WINDOW)).is_ok() {
            let _ = file.take(WINDOW).read_to_end(&mut bytes);
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The verdict on a process that was asked to run the one test `name`
/// (`BINARY --exact NAME`): passed only when libtest says it ran exactly that
/// test and it passed. Anything else fails, with the reason.
pub fn judge(
    name: &str,
    status: ExitStatus,
    stdout: &str,
    stderr: &str,
) -> (AttemptStatus, String) {
    use std::os::unix::process::ExitStatusExt;
    let report = read_run(stdout);
    let panic = || test_panic(name, &[stderr, stdout]).map(|p| p.message);
    let exit = match (status.code(), status.signal()) {
        (_, Some(signal)) => format!("killed by signal {signal}"),
        (Some(code), _) => format!("exit status {code}"),
        _ => "exit status unknown".to_string(),
    };
    let Some(summary) = report.summary else {
        // No summary: the process died, or exited, before libtest finished.
        let reason = panic().unwrap_or_else(|| {
            let said = stderr
                .lines()
                .rev()
                .find(|line| !line.trim().is_empty())
                .map(|line| format!(": {}", line.trim()))
                .unwrap_or_default();
            format!("{exit} before libtest reported a result (the test process ended early){said}")
        });
        return (AttemptStatus::Failed, reason);
    };
    let ran = report.running.unwrap_or(summary.total());
    let named = report.results.iter().filter(|(n, _)| n == name).count();
    if ran != 1 || summary.total() != 1 || (!report.results.is_empty() && named != 1) {
        let what = match ran {
            0 => "no test".to_string(),
            1 => format!("1 test ({})", list(&report.results)),
            n => format!("{n} tests ({})", list(&report.results)),
        };
        return (
            AttemptStatus::Failed,
            format!(
                "error: libtest ran {what} where `{name}` alone was asked for \
                 ({} filtered out): the arguments after `--` changed what the process runs",
                summary.filtered_out
            ),
        );
    }
    if summary.passed == 1 && status.success() {
        (AttemptStatus::Passed, String::new())
    } else if summary.ignored == 1 && status.success() {
        (AttemptStatus::Skipped, "ignored".to_string())
    } else {
        // A test returning `Err(e)` prints `Error: {e:?}` instead of panicking.
        let returned = || {
            [stderr, stdout]
                .iter()
                .flat_map(|text| text.lines())
                .find(|line| line.starts_with("Error: "))
                .map(str::to_string)
        };
        (
            AttemptStatus::Failed,
            panic().or_else(returned).unwrap_or(exit),
        )
    }
}

fn list(results: &[(String, LineResult)]) -> String {
    if results.is_empty() {
        return "names not shown".to_string();
    }
    results
        .iter()
        .map(|(name, _)| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How the arguments after `--` select tests, as `cargo test` and nextest
/// read them; what is left goes to every test process.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TestArgs {
    /// Free arguments: name filters.
    pub filters: Vec<String>,
    /// `--skip PATTERN`, repeatable.
    pub skip: Vec<String>,
    pub exact: bool,
    pub ignored: bool,
    pub include_ignored: bool,
    /// Everything else, in order, for each test process.
    pub pass_on: Vec<String>,
}

/// libtest options that take a value (`--test-threads 2`): their value is
/// not a filter.
const TAKES_VALUE: &[&str] = &[
    "--test-threads",
    "--logfile",
    "--color",
    "--shuffle-seed",
    "-Z",
];

/// Splits the arguments after `--` into selection and arguments for the
/// processes.
pub fn split_test_args(args: &[String]) -> TestArgs {
    let mut split = TestArgs::default();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--exact" => split.exact = true,
            // Every test process already gets it, and libtest refuses it twice.
            "--nocapture" | "--no-capture" => {}
            // The verdict reads libtest's own (pretty or terse) lines.
            "--format" => {
                iter.next();
            }
            other if other.starts_with("--format=") => {}
            "--ignored" => split.ignored = true,
            "--include-ignored" => split.include_ignored = true,
            "--skip" => split.skip.extend(iter.next().cloned()),
            other if other.starts_with("--skip=") => {
                split.skip.push(other["--skip=".len()..].to_string());
            }
            other if TAKES_VALUE.contains(&other) => {
                split.pass_on.push(arg.clone());
                split.pass_on.extend(iter.next().cloned());
            }
            other if other.starts_with('-') => split.pass_on.push(arg.clone()),
            _ => split.filters.push(arg.clone()),
        }
    }
    split
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_after_the_double_dash_split_into_selection_and_the_rest() {
        let args: Vec<String> = [
            "--skip",
            "slow",
            "--skip=db",
            "--test-threads",
            "1",
            "--ignored",
            "--exact",
            "name",
            "--nocapture",
            "--show-output",
            "--format",
            "json",
            "--report-time",
        ]
        .map(String::from)
        .to_vec();
        let split = split_test_args(&args);
        assert_eq!(split.skip, ["slow", "db"]);
        assert_eq!(split.filters, ["name"]);
        assert!(split.exact && split.ignored && !split.include_ignored);
        assert_eq!(
            split.pass_on,
            ["--test-threads", "1", "--show-output", "--report-time"]
        );
    }
}
