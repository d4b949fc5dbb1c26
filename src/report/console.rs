//! The human view: one line per finished test (above a progress bar on a
//! terminal, plain lines in CI logs), then the summary. Everything goes to
//! its writer (stderr in the binary), so stdout stays free for
//! `--message-format json` and `teamcity`.

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use console::Style;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Collector, Counts, Reporter, seconds, tail_lines};
use crate::events::{Event, RunFinished, RunStarted, WorkerStats};
use crate::model::{AttemptStatus, TestCase, TestOutcome, TestResult};

impl Reporter for Console {
    fn event(&mut self, run: &Collector<'_>, event: &Event) {
        match event {
            Event::RetryCancelled { index, result } => {
                if let Some(last) = run.attempts_of(*index).last() {
                    self.attempt(run.tests(), *index, last, Some(*result));
                }
            }
            Event::RunFinished(end) => self.finished(run, end),
            other => self.show(run.tests(), other),
        }
    }
}

/// How many lines of a failed test's output the summary shows.
const FAILURE_TAIL_LINES: usize = 15;
/// How many of the slowest tests the summary lists.
const SLOWEST: usize = 5;

/// A line to the console's writer.
macro_rules! say {
    ($console:expr, $($arg:tt)*) => {
        $console.write_line(&format!($($arg)*))
    };
}

pub struct Console {
    /// Where the lines go; a closed one (`2>&-`) must not stop the run.
    out: RefCell<Box<dyn Write + Send>>,
    progress: Option<ProgressBar>,
    colors: bool,
    retries: u32,
    /// Each test's retries after the overrides, by index (empty: `retries`).
    retries_by_test: Vec<u32>,
    level: StatusLevel,
}

/// Which results get a line during the run, and how long the summary is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StatusLevel {
    /// `-q`: failures, retries and flaky tests; the summary without the slowest tests and workers.
    Quiet,
    /// Every finished test.
    Normal,
    /// `-v`: also each test as it starts.
    Verbose,
}

/// `--color always|never`, over the environment; `None` = decide from it.
static COLOR_OVERRIDE: std::sync::OnceLock<Option<bool>> = std::sync::OnceLock::new();

/// Records `--color` (once, at start-up).
pub fn set_color_override(colors: Option<bool>) {
    let _ = COLOR_OVERRIDE.set(colors);
}

/// Whether to color stderr: `--color`, then `CARGO_TERM_COLOR`, then `NO_COLOR`, then whether it is a terminal.
pub fn colors_enabled() -> bool {
    if let Some(Some(colors)) = COLOR_OVERRIDE.get() {
        return *colors;
    }
    match std::env::var("CARGO_TERM_COLOR").as_deref() {
        Ok("always") => true,
        Ok("never") => false,
        _ => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stderr().is_terminal()
        }
    }
}

impl Console {
    /// On stderr, with a progress bar only on an interactive terminal; CI
    /// logs get plain lines.
    pub fn new(total: usize, retries: u32) -> Console {
        let colors = colors_enabled();
        console::set_colors_enabled_stderr(colors);
        let mut console = Console::to_writer(Box::new(std::io::stderr()), retries);
        console.colors = colors;
        console.progress = std::io::stderr().is_terminal().then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}",
                )
                .expect("valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        console
    }

    /// Plain lines to `out`, no colors, no progress bar.
    pub fn to_writer(out: Box<dyn Write + Send>, retries: u32) -> Console {
        Console {
            out: RefCell::new(out),
            progress: None,
            colors: false,
            retries,
            retries_by_test: Vec::new(),
            level: StatusLevel::Normal,
        }
    }

    fn write_line(&self, text: &str) {
        let mut out = self.out.borrow_mut();
        let _ = writeln!(out, "{text}").and_then(|()| out.flush());
    }

    /// Per-test retries, for "attempt K of N" when overrides change them.
    pub fn with_retries_by_test(mut self, retries: Vec<u32>) -> Console {
        self.retries_by_test = retries;
        self
    }

    pub fn with_status_level(mut self, level: StatusLevel) -> Console {
        self.level = level;
        self
    }

    /// A line above the progress bar (or on stderr).
    pub fn line(&self, text: &str) {
        match &self.progress {
            Some(bar) => bar.println(text),
            None => self.write_line(text),
        }
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.colors {
            // Decided already (`--color`, the environment): console's own
            // check looks at stdout, which may be a pipe for JSON.
            style.force_styling(true).apply_to(text).to_string()
        } else {
            text.to_string()
        }
    }

    /// The `Starting N tests on W workers` line.
    fn started(&self, started: &RunStarted) {
        let shard_note = match (&started.queue, &started.partition) {
            (Some(build), _) => format!(" (of build `{build}`, from its queue)"),
            (None, Some(p)) => format!(" (shard {p})"),
            (None, None) => String::new(),
        };
        self.line(&format!(
            "Starting {}{shard_note} on {} ({} isolation), {} skipped",
            crate::words::count(started.tests, "test"),
            crate::words::count(started.workers, "worker"),
            started.isolation,
            started.skipped
        ));
    }

    /// The closing lines: the cause of an exit 3, the summary, why nothing ran.
    fn finished(&self, run: &Collector<'_>, end: &RunFinished) {
        if let Some(error) = &end.error {
            self.line(error);
        }
        let reported = super::cases::expand(&run.outcomes());
        self.summary(&Summary {
            counts: end.counts,
            outcomes: &reported,
            workers: &run.workers,
            wall: end.wall,
            makespan: end.makespan,
            files: end.files.clone(),
            interrupted: end.interrupted,
        });
        match end.no_tests.as_deref() {
            Some(line) if line.starts_with("error: ") => self.write_line(line),
            Some("") | None => {}
            Some(line) => self.write_line(&format!("warning: {line}")),
        }
    }

    fn show(&mut self, tests: &[TestCase], event: &Event) {
        match event {
            Event::RunStarted(started) => self.started(started),
            Event::TestSkipped { index } => self.skipped(&tests[*index]),
            Event::TestStarted {
                index,
                worker,
                attempt,
            } => {
                if let Some(bar) = &self.progress {
                    bar.set_message(format!("w{worker}: {}", printable(&tests[*index].id)));
                }
                if self.level == StatusLevel::Verbose {
                    let label = self.paint(Style::new().cyan().bold(), "   START");
                    self.line(&format!(
                        "{label} [{:>8}] w{worker} {} (attempt {attempt})",
                        "",
                        printable(&tests[*index].id)
                    ));
                }
            }
            Event::TestSlow {
                index,
                worker,
                elapsed,
                ..
            } => {
                let label = self.paint(Style::new().yellow(), "    SLOW");
                self.line(&format!(
                    "{label} [>{:>7}] w{worker} {}",
                    seconds(*elapsed),
                    printable(&tests[*index].id)
                ));
            }
            Event::AttemptFinished {
                index,
                attempt,
                result,
            } => self.attempt(tests, *index, attempt, *result),
            Event::WorkspaceFailed { message, .. } => {
                let label = self.paint(Style::new().red().bold(), "   ERROR");
                self.line(&format!("{label} {message}"));
            }
            Event::Warning(message) => {
                let label = self.paint(Style::new().yellow().bold(), " WARNING");
                self.line(&format!("{label} {message}"));
            }
            Event::Output { index, line, .. } => {
                self.line(&format!(
                    "{}: {}",
                    self.paint(Style::new().dim(), &printable(&tests[*index].id)),
                    printable(line)
                ));
            }
            Event::RetryCancelled { .. }
            | Event::RunFinished(_)
            | Event::WorkspaceReady { .. }
            | Event::WorkerFinished { .. } => {}
        }
    }

    /// One finished attempt: its final line, or `RETRY` when another follows.
    fn attempt(
        &self,
        tests: &[TestCase],
        index: usize,
        attempt: &crate::model::Attempt,
        result: Option<TestResult>,
    ) {
        let (label, style) = match (result, attempt.status) {
            (None, _) => ("   RETRY", Style::new().magenta()),
            (Some(TestResult::Flaky), _) => ("   FLAKY", Style::new().yellow()),
            (Some(TestResult::Passed), _) => ("    PASS", Style::new().green()),
            (Some(TestResult::Skipped), _) => ("    SKIP", Style::new().dim()),
            (Some(TestResult::TimedOut), _) | (_, AttemptStatus::TimedOut) => {
                (" TIMEOUT", Style::new().red())
            }
            (Some(TestResult::Failed), _) => ("    FAIL", Style::new().red()),
            (Some(TestResult::Interrupted), _) => (" INTRPTD", Style::new().yellow()),
        };
        let retry_note = match result {
            None => format!(
                " (attempt {} of {} failed)",
                attempt.number,
                self.retries_by_test
                    .get(index)
                    .copied()
                    .unwrap_or(self.retries)
                    + 1
            ),
            Some(TestResult::Flaky) => format!(" (passed on attempt {})", attempt.number),
            _ => String::new(),
        };
        let quiet_about = matches!(result, Some(TestResult::Passed | TestResult::Skipped));
        if let (Some(bar), Some(_)) = (&self.progress, result) {
            bar.inc(1);
        }
        if self.level == StatusLevel::Quiet && quiet_about {
            return;
        }
        let label = self.paint(style.bold(), label);
        self.line(&format!(
            "{label} [{:>8}] w{} {}{retry_note}",
            seconds(attempt.duration),
            attempt.worker,
            printable(&tests[index].id)
        ));
    }

    /// Skipped (ignored) tests, one line each, as the run begins.
    fn skipped(&self, test: &TestCase) {
        if self.level == StatusLevel::Quiet {
            return;
        }
        let label = self.paint(Style::new().dim().bold(), "    SKIP");
        self.line(&format!("{label} [{:>8}]    {}", "", printable(&test.id)));
    }

    pub fn finish_progress(&self) {
        if let Some(bar) = &self.progress {
            bar.finish_and_clear();
        }
    }

    /// The closing summary: counts, failures with the tail of their output,
    /// the slowest tests and where each worker's time went.
    pub fn summary(&self, summary: &Summary<'_>) {
        self.finish_progress();
        let counts = summary.counts;
        let rule = "─".repeat(60);
        say!(self, "{rule}");
        for outcome in summary
            .outcomes
            .iter()
            .filter(|o| o.result.is_failure() || o.result == TestResult::Flaky)
        {
            self.failure(outcome);
        }
        let mut slowest: Vec<&TestOutcome> = summary
            .outcomes
            .iter()
            .filter(|o| !o.attempts.is_empty())
            .collect();
        slowest.sort_by_key(|o| std::cmp::Reverse(o.attempts.iter().map(|a| a.duration).max()));
        let quiet = self.level == StatusLevel::Quiet;
        if slowest.len() > 1 && !quiet {
            say!(self, "Slowest tests:");
            for outcome in slowest.iter().take(SLOWEST) {
                let longest = outcome
                    .attempts
                    .iter()
                    .map(|a| a.duration)
                    .max()
                    .unwrap_or_default();
                say!(
                    self,
                    "  {:>9} {}",
                    seconds(longest),
                    printable(&outcome.test.id)
                );
            }
        }
        if !summary.workers.is_empty() && !quiet {
            say!(self, "Workers:");
            let mut workers = summary.workers.to_vec();
            workers.sort_by_key(|(worker, _)| *worker);
            for (worker, stats) in workers {
                say!(
                    self,
                    "  w{worker:<3} {:>9}  busy {:>9}  idle {:>9}  workspace {:>9}",
                    crate::words::count(stats.tests, "test"),
                    seconds(stats.busy),
                    seconds(stats.idle),
                    seconds(stats.setup)
                );
            }
        }
        if let Some((makespan, lower_bound)) = summary.makespan {
            let ratio = makespan.as_secs_f64() / lower_bound.as_secs_f64().max(1e-9);
            say!(
                self,
                "Makespan {} against a lower bound of {} ({ratio:.2}x)",
                seconds(makespan),
                seconds(lower_bound)
            );
        }
        for (what, path) in &summary.files {
            say!(self, "{what}: {}", path.display());
        }
        let mut parts = vec![
            format!("{} passed", counts.passed),
            format!("{} failed", counts.failed),
        ];
        if counts.flaky > 0 {
            parts.push(format!("{} flaky", counts.flaky));
        }
        if counts.timed_out > 0 {
            parts.push(format!("{} timed out", counts.timed_out));
        }
        parts.push(format!("{} skipped", counts.skipped));
        if counts.xfailed > 0 {
            parts.push(format!("{} xfailed", counts.xfailed));
        }
        if counts.interrupted > 0 {
            parts.push(format!("{} interrupted", counts.interrupted));
        }
        if counts.not_run > 0 {
            parts.push(format!("{} not run", counts.not_run));
        }
        let failed = counts.failed + counts.timed_out > 0;
        let style = if failed || summary.interrupted {
            Style::new().red().bold()
        } else {
            Style::new().green().bold()
        };
        let head = if summary.interrupted {
            "Interrupted"
        } else {
            "Summary"
        };
        let label = self.paint(style, head);
        say!(
            self,
            "{label} [{}] {} run: {}",
            seconds(summary.wall),
            crate::words::count(counts.run(), "test"),
            parts.join(", ")
        );
    }

    /// One title line per failed attempt; the output tail of the last one
    /// only (a flaky test's failure is shown by its title alone).
    fn failure(&self, outcome: &TestOutcome) {
        let last = outcome.attempts.len();
        for attempt in &outcome.attempts {
            if attempt.status == AttemptStatus::Passed {
                continue;
            }
            let title = format!(
                "--- {} {} (attempt {}, worker {}): {}",
                outcome.result.as_str().to_uppercase(),
                printable(&outcome.test.id),
                attempt.number,
                attempt.worker,
                // The first line: the whole panic follows below.
                attempt
                    .message
                    .as_deref()
                    .and_then(|m| m.lines().next())
                    .unwrap_or("failed")
            );
            say!(self, "{}", self.paint(Style::new().red().bold(), &title));
            if outcome.result == TestResult::Flaky || attempt.number as usize != last {
                continue;
            }
            if let [case] = attempt.cases.as_slice() {
                // A framework case (a pytest test): its own traceback and
                // output, not its whole file's log.
                for (what, text, log) in [
                    ("traceback", &case.detail, &attempt.stdout_path),
                    ("stdout", &case.stdout, &attempt.stdout_path),
                    ("stderr", &case.stderr, &attempt.stderr_path),
                ] {
                    let Some(text) = text.as_deref().filter(|t| !t.trim().is_empty()) else {
                        continue;
                    };
                    let lines: Vec<&str> = text.trim_end().lines().collect();
                    say!(self, "  {what} (last lines; full log {}):", log.display());
                    for line in &lines[lines.len().saturating_sub(FAILURE_TAIL_LINES)..] {
                        say!(self, "    {}", printable(line));
                    }
                }
                continue;
            }
            // The panic first: with RUST_BACKTRACE=1 the tail is all frames.
            let logs =
                [&attempt.stderr_path, &attempt.stdout_path].map(|p| crate::libtest::read_log(p));
            if let Some(panic) =
                crate::libtest::test_panic(&outcome.test.name, &[&logs[0], &logs[1]])
            {
                say!(self, "  panic:");
                for line in panic.describe().lines() {
                    say!(self, "    {line}");
                }
            }
            for (stream, path) in [
                ("stdout", &attempt.stdout_path),
                ("stderr", &attempt.stderr_path),
            ] {
                let tail = tail_lines(path, FAILURE_TAIL_LINES);
                if !tail.trim().is_empty() {
                    say!(
                        self,
                        "  {stream} (last lines; full log {}):",
                        path.display()
                    );
                    for line in tail.lines() {
                        say!(self, "    {line}");
                    }
                }
            }
        }
    }
}

/// `text` as it may go to a terminal: control characters (escape
/// sequences, carriage returns, NUL) become Rust escapes such as `\u{1b}`,
/// so that a test id cannot move the cursor, recolour or hide a line.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(char::is_control) {
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

/// What the closing summary shows.
pub struct Summary<'a> {
    pub counts: Counts,
    pub outcomes: &'a [TestOutcome],
    pub workers: &'a [(usize, WorkerStats)],
    pub wall: Duration,
    /// The run's makespan and its lower bound, max(longest test, total / workers).
    pub makespan: Option<(Duration, Duration)>,
    pub files: Vec<(&'static str, std::path::PathBuf)>,
    pub interrupted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Pipeline;
    use crate::report::testing::{Buffer, attempt, suite};

    #[test]
    fn lines_go_to_the_given_writer() {
        let tests = suite(&["flaky", "ignored", "ok"]);
        let buffer = Buffer::default();
        let console = Console::to_writer(Box::new(buffer.clone()), 1);
        let mut pipeline = Pipeline::new(&tests, vec![Box::new(console)]);
        pipeline.event(&Event::RunStarted(RunStarted {
            run_id: "r".into(),
            tests: 2,
            skipped: 1,
            workers: 2,
            partition: Some("1/2".into()),
            queue: None,
            isolation: "copy",
        }));
        pipeline.event(&Event::TestSkipped { index: 1 });
        pipeline.event(&Event::AttemptFinished {
            index: 0,
            attempt: attempt(1, 2, AttemptStatus::Failed, Some("boom")),
            result: None,
        });
        pipeline.event(&Event::AttemptFinished {
            index: 0,
            attempt: attempt(2, 1, AttemptStatus::Passed, None),
            result: Some(TestResult::Flaky),
        });
        pipeline.event(&Event::AttemptFinished {
            index: 2,
            attempt: attempt(1, 1, AttemptStatus::Passed, None),
            result: Some(TestResult::Passed),
        });
        assert_eq!(
            buffer.text(),
            "Starting 2 tests (shard 1/2) on 2 workers (copy isolation), 1 skipped\n\
             \x20   SKIP [        ]    group ignored\n\
             \x20  RETRY [  1.500s] w2 group flaky (attempt 1 of 2 failed)\n\
             \x20  FLAKY [  1.500s] w1 group flaky (passed on attempt 2)\n\
             \x20   PASS [  1.500s] w1 group ok\n"
        );
    }

    #[test]
    fn the_summary_ends_with_the_counts_and_why_nothing_ran() {
        let tests = suite(&[]);
        let buffer = Buffer::default();
        let console = Console::to_writer(Box::new(buffer.clone()), 0);
        let mut pipeline = Pipeline::new(&tests, vec![Box::new(console)]);
        pipeline.finish(RunFinished {
            counts: Counts::default(),
            wall: Duration::from_secs(2),
            exit_code: 4,
            interrupted: false,
            cannot_run: None,
            error: Some("error: it broke".into()),
            no_tests: Some("error: no tests to run".into()),
            makespan: None,
            files: vec![("Logs", "/logs".into())],
            junit: None,
            timings: None,
            not_annotated: Vec::new(),
        });
        let text = buffer.text();
        assert!(text.starts_with("error: it broke\n"), "{text}");
        assert!(text.contains("Logs: /logs\n"), "{text}");
        assert!(
            text.ends_with(
                "Summary [2.000s] 0 tests run: 0 passed, 0 failed, 0 skipped\nerror: no tests to run\n"
            ),
            "{text}"
        );
    }
}
