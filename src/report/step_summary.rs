//! A short Markdown summary of a run for CI pages: GitHub Actions shows the
//! file named by `GITHUB_STEP_SUMMARY` on the run's page. Several steps (or
//! several runs in one step) append to the same file, so this module only
//! ever appends.
//!
//! The summary holds a counts table, the failed and timed-out tests with
//! their message and the first lines of their panic, the flaky tests and
//! the slowest tests. It stays short: GitHub cuts a step's summary at 1 MiB,
//! so long lists are capped and say how many entries were left out.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use super::{Counts, seconds, tail_lines};
use crate::model::{AttemptStatus, TestOutcome, TestResult};

/// Failed tests listed in full; the rest are counted.
const MAX_FAILURES: usize = 30;
/// Flaky tests listed; the rest are counted.
const MAX_FLAKY: usize = 30;
/// Slowest tests listed.
const SLOWEST: usize = 5;
/// Lines of panic output shown under a failure.
const DETAIL_LINES: usize = 8;
/// Characters kept of a one-line message or a detail line.
const LINE_CHARS: usize = 300;
/// Lines of a failed attempt's log read when looking for its panic.
const LOG_TAIL_LINES: usize = 200;

/// The step summary as a reporter: appended to `GITHUB_STEP_SUMMARY`
/// (where GitHub Actions shows it on the run's page) once the run is over.
pub struct StepSummary {
    path: std::path::PathBuf,
}

impl StepSummary {
    /// When `GITHUB_STEP_SUMMARY` names a file.
    pub fn from_env() -> Option<StepSummary> {
        let path = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty())?;
        Some(StepSummary { path: path.into() })
    }
}

impl super::Reporter for StepSummary {
    fn event(&mut self, _run: &super::Collector<'_>, _event: &crate::events::Event) {}

    fn finish(
        &mut self,
        run: &super::Collector<'_>,
        end: &mut crate::events::RunFinished,
    ) -> Vec<String> {
        let reported = super::cases::expand(&run.outcomes());
        match write(
            &self.path,
            &end.counts,
            &reported,
            end.wall,
            &end.not_annotated,
        ) {
            Ok(()) => Vec::new(),
            Err(e) => vec![format!("cannot write GITHUB_STEP_SUMMARY: {e}")],
        }
    }
}

/// Appends the summary of one run to `path` (created if missing).
/// `not_annotated` are the failed tests beyond the GitHub annotations' cap
/// (see [`super::annotations`]), named below the failures.
pub fn write(
    path: &Path,
    counts: &Counts,
    outcomes: &[TestOutcome],
    wall: Duration,
    not_annotated: &[String],
) -> std::io::Result<()> {
    let text = render(counts, outcomes, wall, not_annotated);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.flush()
}

/// The Markdown text that [`write`] appends.
pub fn render(
    counts: &Counts,
    outcomes: &[TestOutcome],
    wall: Duration,
    not_annotated: &[String],
) -> String {
    let mut md = String::new();
    let failing = counts.failed + counts.timed_out;
    let mark = if failing > 0 { "❌" } else { "✅" };
    let _ = writeln!(
        md,
        "### {mark} cargo-paratest: {} run, {failing} failed in {}\n",
        counts.run(),
        seconds(wall)
    );
    // An xfailed column only where there are expected failures (pytest's xfail).
    let (xfail_head, xfail_rule, xfailed) = if counts.xfailed > 0 {
        (" xfailed |", "---:|", format!(" {} |", counts.xfailed))
    } else {
        ("", "", String::new())
    };
    let _ = writeln!(
        md,
        "| passed | failed | timed out | flaky | skipped |{xfail_head} not run | time |"
    );
    let _ = writeln!(md, "|---:|---:|---:|---:|---:|{xfail_rule}---:|---:|");
    let _ = writeln!(
        md,
        "| {} | {} | {} | {} | {} |{xfailed} {} | {} |\n",
        counts.passed,
        counts.failed,
        counts.timed_out,
        counts.flaky,
        counts.skipped,
        counts.not_run,
        seconds(wall)
    );

    let failures: Vec<&TestOutcome> = outcomes.iter().filter(|o| o.result.is_failure()).collect();
    if !failures.is_empty() {
        md.push_str("#### Failures\n\n");
        for outcome in failures.iter().take(MAX_FAILURES) {
            failure(&mut md, outcome);
        }
        more(&mut md, failures.len(), MAX_FAILURES);
        if !not_annotated.is_empty() {
            let names: Vec<String> = not_annotated
                .iter()
                .take(MAX_FAILURES)
                .map(|id| code(id))
                .collect();
            let rest = not_annotated.len().saturating_sub(MAX_FAILURES);
            let _ = writeln!(
                md,
                "\n{} more failures not annotated: {}{}",
                not_annotated.len(),
                names.join(", "),
                if rest > 0 {
                    format!(" and {rest} more")
                } else {
                    String::new()
                }
            );
        }
        md.push('\n');
    }

    let flaky: Vec<&TestOutcome> = outcomes
        .iter()
        .filter(|o| o.result == TestResult::Flaky)
        .collect();
    if !flaky.is_empty() {
        md.push_str("#### Flaky tests\n\n");
        for outcome in flaky.iter().take(MAX_FLAKY) {
            let failed = outcome
                .attempts
                .iter()
                .filter(|a| a.status != AttemptStatus::Passed)
                .count();
            let _ = write!(
                md,
                "- {}: passed on attempt {} after {failed} failed",
                code(&outcome.test.id),
                outcome.attempts.len()
            );
            if let Some(message) = outcome.attempts.iter().find_map(|a| a.message.as_deref()) {
                let _ = write!(md, " ({})", code(&one_line(message)));
            }
            md.push('\n');
        }
        more(&mut md, flaky.len(), MAX_FLAKY);
        md.push('\n');
    }

    let mut slowest: Vec<(&TestOutcome, Duration)> = outcomes
        .iter()
        .filter_map(|o| Some((o, o.attempts.iter().map(|a| a.duration).max()?)))
        .collect();
    // Longest first; ties by id so that the summary does not depend on order.
    slowest.sort_by(|(a, da), (b, db)| db.cmp(da).then_with(|| a.test.id.cmp(&b.test.id)));
    if !slowest.is_empty() {
        md.push_str("#### Slowest tests\n\n");
        md.push_str("| test | duration |\n|---|---:|\n");
        for (outcome, duration) in slowest.iter().take(SLOWEST) {
            let _ = writeln!(
                md,
                "| {} | {} |",
                code(&outcome.test.id).replace('|', "\\|"),
                seconds(*duration)
            );
        }
        md.push('\n');
    }
    md
}

/// One list item for a failed or timed-out test: id, result, message, and
/// the panic (or the log's last lines) in a code block.
fn failure(md: &mut String, outcome: &TestOutcome) {
    let last = outcome.attempts.last();
    let result = match outcome.result {
        TestResult::TimedOut => "timed out",
        _ => "failed",
    };
    let _ = write!(md, "- {} {result}", code(&outcome.test.id));
    if outcome.attempts.len() > 1 {
        let _ = write!(md, " ({} attempts)", outcome.attempts.len());
    }
    if let Some(message) = last.and_then(|a| a.message.as_deref()) {
        let _ = write!(md, ": {}", code(&one_line(message)));
    }
    md.push('\n');
    // The first attempt says what went wrong; later ones repeat it. A
    // plugin that reads the framework's own cases (pytest) says which
    // failed and why; otherwise the panic, or else the log's last lines.
    let detail = outcome
        .attempts
        .first()
        .map(|a| {
            let cases = case_lines(a);
            if !cases.is_empty() {
                return cases;
            }
            let stderr = tail_lines(&a.stderr_path, LOG_TAIL_LINES);
            let stdout = tail_lines(&a.stdout_path, LOG_TAIL_LINES);
            let panic = panic_lines(&stderr);
            if !panic.is_empty() {
                return panic;
            }
            let panic = panic_lines(&stdout);
            if !panic.is_empty() {
                return panic;
            }
            last_lines(if stderr.trim().is_empty() {
                &stdout
            } else {
                &stderr
            })
        })
        .unwrap_or_default();
    if !detail.is_empty() {
        fenced(md, &detail);
    }
    if let Some(attempt) = outcome.attempts.first() {
        let _ = writeln!(
            md,
            "  <sub>log: {}</sub>",
            code(&attempt.stderr_path.display().to_string())
        );
    }
}

/// The failed framework cases of an attempt: `name: message`, then the
/// first lines of the case's detail, capped as a whole.
fn case_lines(attempt: &crate::model::Attempt) -> Vec<String> {
    let mut lines = Vec::new();
    for case in attempt
        .cases
        .iter()
        .filter(|c| c.status == AttemptStatus::Failed)
    {
        let mut head = case.name.clone();
        if let Some(message) = &case.message {
            head = format!("{head}: {}", one_line(message));
        }
        lines.push(clip(&head));
        for line in case.detail.as_deref().unwrap_or("").lines().take(3) {
            lines.push(clip(&format!("    {line}")));
        }
    }
    lines.truncate(DETAIL_LINES);
    lines
}

/// The panics libtest printed (see [`crate::libtest::panics`]): each
/// one's header and message, no backtrace, capped.
fn panic_lines(output: &str) -> Vec<String> {
    let mut lines: Vec<String> = crate::libtest::panics(output)
        .iter()
        .flat_map(|panic| panic.render().lines().map(clip).collect::<Vec<_>>())
        .collect();
    lines.truncate(DETAIL_LINES);
    lines
}

/// The last non-empty lines of a log, when it holds no panic.
fn last_lines(output: &str) -> Vec<String> {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(DETAIL_LINES)..]
        .iter()
        .map(|l| clip(l))
        .collect()
}

/// A fenced code block inside a list item, with a fence longer than any
/// run of backticks in the text.
fn fenced(md: &mut String, lines: &[String]) {
    let longest = lines
        .iter()
        .flat_map(|l| l.split(|c| c != '`'))
        .map(str::len)
        .max()
        .unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let _ = writeln!(md, "\n  {fence}text");
    for line in lines {
        let _ = writeln!(md, "  {line}");
    }
    let _ = writeln!(md, "  {fence}\n");
}

/// An inline code span that survives backticks inside the text.
fn code(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let ticks = "`".repeat(longest + 1);
    // A span that starts or ends with a backtick needs a space to parse.
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{text}{pad}{ticks}")
}

/// A message on one line, cut to a readable length.
fn one_line(text: &str) -> String {
    clip(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn clip(line: &str) -> String {
    let mut clean: String = line
        .chars()
        .filter(|c| *c == '\t' || !c.is_control())
        .collect();
    if clean.chars().count() > LINE_CHARS {
        clean = clean.chars().take(LINE_CHARS).collect::<String>() + "…";
    }
    clean
}

fn more(md: &mut String, total: usize, shown: usize) {
    if total > shown {
        let _ = writeln!(md, "- … and {} more", total - shown);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attempt, CaseResult, Invocation, TestCase};
    use std::time::SystemTime;

    fn case(id: &str) -> TestCase {
        TestCase::new(id, "g", id, Invocation::Shell("true".to_string()))
    }

    fn attempt(number: u32, status: AttemptStatus, millis: u64, logs: &Path) -> Attempt {
        Attempt {
            number,
            worker: 1,
            status,
            started: SystemTime::UNIX_EPOCH,
            duration: Duration::from_millis(millis),
            message: (status != AttemptStatus::Passed).then(|| "exit status 101".to_string()),
            stdout_path: logs.join(format!("{number}.stdout")),
            stderr_path: logs.join(format!("{number}.stderr")),
            cases: Vec::new(),
        }
    }

    fn outcome(id: &str, result: TestResult, attempts: Vec<Attempt>) -> TestOutcome {
        TestOutcome {
            test: case(id),
            result,
            attempts,
        }
    }

    #[test]
    fn appends_counts_failures_flaky_and_slowest() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(
            logs.join("1.stderr"),
            "noise\nthread 'fails' (1234) panicked at tests/checks.rs:9:5:\nassertion `left == right` failed: expected 2, got 3\n  left: 2\n right: 3\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
        )
        .unwrap();
        let outcomes = vec![
            outcome(
                "crate::it fails",
                TestResult::Failed,
                vec![attempt(1, AttemptStatus::Failed, 30, &logs)],
            ),
            outcome(
                "crate::it flaky",
                TestResult::Flaky,
                vec![
                    attempt(1, AttemptStatus::Failed, 10, &logs),
                    attempt(2, AttemptStatus::Passed, 700, &logs),
                ],
            ),
            outcome(
                "crate::it slow",
                TestResult::Passed,
                vec![attempt(1, AttemptStatus::Passed, 2500, &logs)],
            ),
            outcome("crate::it ignored", TestResult::Skipped, Vec::new()),
        ];
        let counts = Counts::of(&outcomes, 2);
        let path = dir.path().join("summary.md");
        std::fs::write(&path, "earlier step\n").unwrap();
        write(&path, &counts, &outcomes, Duration::from_millis(3210), &[]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();

        assert!(
            text.starts_with("earlier step\n### ❌ cargo-paratest: 3 run, 1 failed in 3.210s"),
            "{text}"
        );
        assert!(
            text.contains("| 1 | 1 | 0 | 1 | 1 | 2 | 3.210s |"),
            "{text}"
        );
        assert!(
            text.contains("- `crate::it fails` failed: `exit status 101`"),
            "{text}"
        );
        assert!(
            text.contains("  thread 'fails' (1234) panicked at tests/checks.rs:9:5:\n"),
            "{text}"
        );
        assert!(
            text.contains("  assertion `left == right` failed: expected 2, got 3\n"),
            "{text}"
        );
        assert!(!text.contains("RUST_BACKTRACE"), "{text}");
        // The panic holds single backticks, so the fence is longer than that.
        assert!(text.contains("  ```text\n"), "{text}");
        assert!(
            text.contains("- `crate::it flaky`: passed on attempt 2 after 1 failed"),
            "{text}"
        );
        let slow = text.find("| `crate::it slow` | 2.500s |").expect(&text);
        let flaky = text.find("| `crate::it flaky` | 0.700s |").expect(&text);
        let fails = text.find("| `crate::it fails` | 0.030s |").expect(&text);
        assert!(slow < flaky && flaky < fails, "{text}");
        assert!(!text.contains("| `crate::it ignored`"), "{text}");

        // A second run appends below the first.
        write(&path, &counts, &outcomes, Duration::from_millis(1), &[]).unwrap();
        let again = std::fs::read_to_string(&path).unwrap();
        assert!(again.starts_with(&text));
        assert_eq!(again.matches("cargo-paratest:").count(), 2);
    }

    #[test]
    fn a_clean_run_is_short_and_keeps_only_five_slowest() {
        let dir = tempfile::tempdir().unwrap();
        let outcomes: Vec<TestOutcome> = (0..8)
            .map(|i| {
                outcome(
                    &format!("t{i}"),
                    TestResult::Passed,
                    vec![attempt(1, AttemptStatus::Passed, i * 100, dir.path())],
                )
            })
            .collect();
        let counts = Counts::of(&outcomes, 0);
        let path = dir.path().join("new").with_extension("md");
        write(&path, &counts, &outcomes, Duration::from_secs(1), &[]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("### ✅ cargo-paratest: 8 run, 0 failed in 1.000s"),
            "{text}"
        );
        assert!(
            !text.contains("Failures") && !text.contains("Flaky"),
            "{text}"
        );
        for kept in ["t7", "t6", "t5", "t4", "t3"] {
            assert!(text.contains(&format!("| `{kept}` |")), "{text}");
        }
        for left_out in ["t2", "t1", "t0"] {
            assert!(!text.contains(&format!("| `{left_out}` |")), "{text}");
        }
    }

    #[test]
    fn failures_without_a_panic_show_the_log_tail_and_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("1.stdout"),
            "step 1\nstep 2\nboom <b>|</b>\n",
        )
        .unwrap();
        let outcomes: Vec<TestOutcome> = (0..MAX_FAILURES + 3)
            .map(|i| {
                outcome(
                    &format!("id `with` ticks {i}"),
                    TestResult::TimedOut,
                    vec![attempt(1, AttemptStatus::TimedOut, 5, dir.path())],
                )
            })
            .collect();
        let text = render(&Counts::of(&outcomes, 0), &outcomes, Duration::ZERO, &[]);
        assert!(
            text.contains("- ``id `with` ticks 0`` timed out: `exit status 101`"),
            "{text}"
        );
        assert!(
            text.contains("  step 1\n  step 2\n  boom <b>|</b>\n"),
            "{text}"
        );
        assert!(text.contains("- … and 3 more"), "{text}");
        assert_eq!(text.matches(" timed out: ").count(), MAX_FAILURES);

        // Failures beyond the annotations' cap are named.
        let left = ["x `y`".to_string(), "z".to_string()];
        let text = render(&Counts::of(&outcomes, 0), &outcomes, Duration::ZERO, &left);
        assert!(
            text.contains("\n2 more failures not annotated: `` x `y` ``, `z`\n"),
            "{text}"
        );
    }

    #[test]
    fn failed_framework_cases_come_before_the_log() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1.stdout"), "log text\n").unwrap();
        let mut failed = attempt(1, AttemptStatus::Failed, 5, dir.path());
        let case = |name: &str, status, message: Option<&str>, detail: Option<&str>| CaseResult {
            id: format!("tests/test_x.py::{name}"),
            name: name.to_string(),
            classname: None,
            status,
            kind: crate::model::CaseKind::Plain,
            duration: Duration::ZERO,
            message: message.map(str::to_string),
            detail: detail.map(str::to_string),
            file: None,
            line: None,
            failed_at: None,
            stdout: None,
            stderr: None,
        };
        failed.cases = vec![
            case("test_ok", AttemptStatus::Passed, None, None),
            case(
                "test_bad",
                AttemptStatus::Failed,
                Some("AssertionError: assert 2 == 3"),
                Some("def test_bad():\n>       assert 2 == 3\nE       assert 2 == 3\nmore\n"),
            ),
        ];
        let outcomes = vec![outcome("tests/test_x.py", TestResult::Failed, vec![failed])];
        let text = render(&Counts::of(&outcomes, 0), &outcomes, Duration::ZERO, &[]);
        assert!(
            text.contains("  test_bad: AssertionError: assert 2 == 3\n      def test_bad():\n      >       assert 2 == 3\n      E       assert 2 == 3\n"),
            "{text}"
        );
        assert!(
            !text.contains("test_ok") && !text.contains("log text") && !text.contains("more"),
            "{text}"
        );
    }

    #[test]
    fn code_spans_and_lines_are_safe() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`a"), "`` `a ``");
        assert_eq!(one_line("a\n  b\tc\u{7}"), "a b c");
        assert_eq!(
            clip(&"x".repeat(LINE_CHARS + 5)).chars().count(),
            LINE_CHARS + 1
        );
    }
}
