//! The human view: one line per finished test (above a progress bar on a
//! terminal, plain lines in CI logs), then the summary. Everything goes to
//! stderr, so stdout stays free for `--message-format json`.

use std::io::IsTerminal;
use std::time::Duration;

use console::Style;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Counts, seconds, tail_lines};
use crate::events::{Event, WorkerStats};
use crate::model::{AttemptStatus, TestCase, TestOutcome, TestResult};

/// How many lines of a failed test's output the summary shows.
const FAILURE_TAIL_LINES: usize = 15;
/// How many of the slowest tests the summary lists.
const SLOWEST: usize = 5;

pub struct Console {
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
    /// A progress bar only on an interactive terminal; CI logs get plain lines.
    pub fn new(total: usize, retries: u32) -> Console {
        let colors = colors_enabled();
        console::set_colors_enabled_stderr(colors);
        let progress = std::io::stderr().is_terminal().then(|| {
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
        Console {
            progress,
            colors,
            retries,
            retries_by_test: Vec::new(),
            level: StatusLevel::Normal,
        }
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
            None => eprintln!("{text}"),
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

    pub fn event(&mut self, tests: &[TestCase], event: &Event) {
        match event {
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
            } => {
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
                            .get(*index)
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
                    printable(&tests[*index].id)
                ));
            }
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
            Event::WorkspaceReady { .. } | Event::WorkerFinished { .. } => {}
        }
    }

    /// Skipped (ignored) tests, one line each, as the run begins.
    pub fn skipped(&self, test: &TestCase) {
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
        eprintln!("{rule}");
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
            eprintln!("Slowest tests:");
            for outcome in slowest.iter().take(SLOWEST) {
                let longest = outcome
                    .attempts
                    .iter()
                    .map(|a| a.duration)
                    .max()
                    .unwrap_or_default();
                eprintln!("  {:>9} {}", seconds(longest), printable(&outcome.test.id));
            }
        }
        if !summary.workers.is_empty() && !quiet {
            eprintln!("Workers:");
            let mut workers = summary.workers.to_vec();
            workers.sort_by_key(|(worker, _)| *worker);
            for (worker, stats) in workers {
                eprintln!(
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
            eprintln!(
                "Makespan {} against a lower bound of {} ({ratio:.2}x)",
                seconds(makespan),
                seconds(lower_bound)
            );
        }
        for (what, path) in &summary.files {
            eprintln!("{what}: {}", path.display());
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
        eprintln!(
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
            eprintln!("{}", self.paint(Style::new().red().bold(), &title));
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
                    eprintln!("  {what} (last lines; full log {}):", log.display());
                    for line in &lines[lines.len().saturating_sub(FAILURE_TAIL_LINES)..] {
                        eprintln!("    {}", printable(line));
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
                eprintln!("  panic:");
                for line in panic.describe().lines() {
                    eprintln!("    {line}");
                }
            }
            for (stream, path) in [
                ("stdout", &attempt.stdout_path),
                ("stderr", &attempt.stderr_path),
            ] {
                let tail = tail_lines(path, FAILURE_TAIL_LINES);
                if !tail.trim().is_empty() {
                    eprintln!("  {stream} (last lines; full log {}):", path.display());
                    for line in tail.lines() {
                        eprintln!("    {line}");
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
