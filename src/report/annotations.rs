//! GitHub annotations: with `GITHUB_ACTIONS=true`, one `::error` workflow
//! command per failed or timed-out test (and one `::warning` per flaky
//! test), pointing at the line that failed, so that GitHub shows it on the
//! run's page and beside the pull request's diff.
//!
//! GitHub shows at most 10 annotations of each kind per step, so no more
//! are printed; the failures left out are named in the step summary.
//!
//! The commands go to stderr: GitHub's runner reads workflow commands from
//! both streams of a step, and stdout may be the JSON event stream
//! (`--message-format json`), which must hold JSON lines only.
//!
//! Where a test failed, in this order:
//! - the framework's own location of a failed case (pytest: the deepest
//!   traceback line in the test's file, else the test's definition);
//! - the panic libtest printed (`panicked at src/lib.rs:12:5:`): Cargo gives
//!   rustc paths relative to the Cargo workspace root, so the file is looked
//!   up from the package's directory upwards (a workspace member's panic
//!   says `crates/a/src/lib.rs`);
//! - the test's id, when it names a file of the source (the command
//!   plugin's tests are files): the file, no line.
//!
//! A failure with none of these is still annotated, without `file` and
//! `line`: GitHub then shows it on the run's page only, which still beats
//! no annotation for a failure.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::model::{Attempt, AttemptStatus, TestOutcome, TestResult};

/// Annotations of one kind (errors, warnings) per run: what GitHub shows per step.
pub const MAX_PER_KIND: usize = 10;
/// Lines and characters of a message kept in an annotation.
const MESSAGE_LINES: usize = 30;
const MESSAGE_CHARS: usize = 4000;

/// Whether this run is a GitHub Actions step (`GITHUB_ACTIONS=true`).
pub fn enabled() -> bool {
    std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true")
}

/// The annotations as a reporter: printed on stderr once the run is over,
/// the failures beyond the cap handed on to the step summary
/// ([`RunFinished::not_annotated`](crate::events::RunFinished)).
pub struct GithubAnnotations {
    source: PathBuf,
}

impl GithubAnnotations {
    /// When this run is a GitHub Actions step ([`enabled`]).
    pub fn from_env(source: &Path) -> Option<GithubAnnotations> {
        enabled().then(|| GithubAnnotations {
            source: source.to_path_buf(),
        })
    }
}

impl super::Reporter for GithubAnnotations {
    fn event(&mut self, _run: &super::Collector<'_>, _event: &crate::events::Event) {}

    fn finish(
        &mut self,
        run: &super::Collector<'_>,
        end: &mut crate::events::RunFinished,
    ) -> Vec<String> {
        let reported = super::cases::expand(&run.outcomes());
        end.not_annotated = emit(&self.source, &reported);
        Vec::new()
    }
}

/// Prints the annotations of `outcomes` on stderr; returns the ids of the
/// failed tests left out by the cap.
fn emit(source: &Path, outcomes: &[TestOutcome]) -> Vec<String> {
    let annotated = |o: &TestOutcome| o.result.is_failure() || o.result == TestResult::Flaky;
    if !outcomes.iter().any(annotated) {
        return Vec::new();
    }
    let root = repository_root(source);
    let annotations = render(&root, source, outcomes);
    let mut stderr = std::io::stderr().lock();
    for line in &annotations.lines {
        let _ = writeln!(stderr, "{line}");
    }
    let _ = stderr.flush();
    annotations.not_annotated
}

/// The workflow commands of a run, and the failures left out.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Annotations {
    pub lines: Vec<String>,
    /// Ids of failed or timed-out tests beyond [`MAX_PER_KIND`].
    pub not_annotated: Vec<String>,
}

/// The annotations of `outcomes`, paths relative to `root` (the repository),
/// test locations relative to `source`.
pub fn render(root: &Path, source: &Path, outcomes: &[TestOutcome]) -> Annotations {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut annotations = Annotations::default();
    let failures = outcomes.iter().filter(|o| o.result.is_failure());
    for (shown, outcome) in failures.enumerate() {
        if shown >= MAX_PER_KIND {
            annotations.not_annotated.push(outcome.test.id.clone());
            continue;
        }
        let Some(attempt) = outcome.attempts.last() else {
            continue;
        };
        let result = match outcome.result {
            TestResult::TimedOut => "timed out",
            _ => "failed",
        };
        let mut message = attempt.message.clone().unwrap_or_else(|| result.into());
        if outcome.attempts.len() > 1 {
            message.push_str(&format!("\n({} attempts)", outcome.attempts.len()));
        }
        let title = format!("{result}: {}", outcome.test.id);
        let at = location(&root, source, outcome, attempt);
        annotations
            .lines
            .push(command("error", at.as_ref(), &title, &message));
    }
    let flaky = outcomes.iter().filter(|o| o.result == TestResult::Flaky);
    for outcome in flaky.take(MAX_PER_KIND) {
        let Some(failed) = outcome
            .attempts
            .iter()
            .find(|a| matches!(a.status, AttemptStatus::Failed | AttemptStatus::TimedOut))
        else {
            continue;
        };
        let mut message = format!("passed on attempt {} after failing", outcome.attempts.len());
        if let Some(reason) = &failed.message {
            message.push_str(": ");
            message.push_str(reason);
        }
        let title = format!("flaky: {}", outcome.test.id);
        let at = location(&root, source, outcome, failed);
        annotations
            .lines
            .push(command("warning", at.as_ref(), &title, &message));
    }
    annotations
}

/// A file relative to the repository root, `/`-separated, and where in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: Option<u64>,
    pub column: Option<u64>,
}

/// Where `attempt` of `outcome` failed, when that is a file of the repository.
fn location(
    root: &Path,
    source: &Path,
    outcome: &TestOutcome,
    attempt: &Attempt,
) -> Option<Location> {
    let in_repository = |path: &Path, line: Option<u64>, column: Option<u64>| {
        let path = path.canonicalize().ok().filter(|p| p.is_file())?;
        let relative = path.strip_prefix(root).ok()?;
        let file = relative
            .components()
            .map(|c| c.as_os_str().to_str())
            .collect::<Option<Vec<_>>>()?
            .join("/");
        Some(Location { file, line, column })
    };
    if let [case] = attempt.cases.as_slice()
        && let Some(at) = &case.failed_at
        && let Some(found) = in_repository(&source.join(&at.file), Some(at.line), None)
    {
        return Some(found);
    }
    let logs = [&attempt.stderr_path, &attempt.stdout_path].map(|p| crate::libtest::read_log(p));
    if let Some(panic) = crate::libtest::test_panic(&outcome.test.name, &[&logs[0], &logs[1]])
        && let Some(file) = &panic.file
        && let Some(path) = panic_file(&source.join(&outcome.test.cwd), Path::new(file))
        && let Some(found) = in_repository(
            &path,
            panic.line.map(u64::from),
            panic.column.map(u64::from),
        )
    {
        return Some(found);
    }
    in_repository(&source.join(&outcome.test.id), None, None)
}

/// The file a panic names: an absolute path as it is; a relative one
/// (relative to the Cargo workspace root, which is the package's directory
/// or one above it) under the nearest ancestor of `package_dir` that holds it.
fn panic_file(package_dir: &Path, file: &Path) -> Option<PathBuf> {
    if file.is_absolute() {
        return Some(file.to_path_buf());
    }
    package_dir
        .ancestors()
        .map(|dir| dir.join(file))
        .find(|path| path.is_file())
}

/// The directory annotation paths are relative to: the Git top level of the
/// source (GitHub names files relative to the repository, also when
/// `actions/checkout` put it in a subdirectory of the workspace), else
/// `GITHUB_WORKSPACE` when the source is inside it, else the source.
pub fn repository_root(source: &Path) -> PathBuf {
    let git = Command::new("git")
        .args(["rev-parse", "--show-toplevel"])
        .current_dir(source)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    if let Ok(output) = git
        && output.status.success()
    {
        let top = String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_string();
        if !top.is_empty() {
            return PathBuf::from(top);
        }
    }
    let source = source
        .canonicalize()
        .unwrap_or_else(|_| source.to_path_buf());
    std::env::var_os("GITHUB_WORKSPACE")
        .filter(|w| !w.is_empty())
        .and_then(|w| Path::new(&w).canonicalize().ok())
        .filter(|workspace| source.starts_with(workspace))
        .unwrap_or(source)
}

/// One workflow command: `::KIND file=F,line=L,col=C,title=T::MESSAGE`.
pub fn command(kind: &str, at: Option<&Location>, title: &str, message: &str) -> String {
    let mut properties = Vec::new();
    if let Some(at) = at {
        properties.push(format!("file={}", property(&at.file)));
        if let Some(line) = at.line {
            properties.push(format!("line={line}"));
            if let Some(column) = at.column {
                properties.push(format!("col={column}"));
            }
        }
    }
    properties.push(format!("title={}", property(title)));
    format!(
        "::{kind} {}::{}",
        properties.join(","),
        data(&clip(message))
    )
}

/// A message cut to what an annotation should hold.
fn clip(message: &str) -> String {
    let mut kept: String = message
        .trim_end()
        .lines()
        .take(MESSAGE_LINES)
        .collect::<Vec<_>>()
        .join("\n");
    if kept.chars().count() > MESSAGE_CHARS {
        kept = kept.chars().take(MESSAGE_CHARS).collect::<String>() + "…";
    }
    kept
}

/// GitHub's escaping of a command's data (the message).
pub fn data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// GitHub's escaping of a property value: the data's, and `:` and `,`,
/// which end a property.
pub fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CaseKind, CaseResult, Invocation, SourceLocation, TestCase};
    use std::time::{Duration, SystemTime};

    fn attempt(status: AttemptStatus, message: &str, logs: &Path) -> Attempt {
        Attempt {
            number: 1,
            worker: 1,
            status,
            started: SystemTime::UNIX_EPOCH,
            duration: Duration::ZERO,
            message: Some(message.to_string()),
            stdout_path: logs.join("out"),
            stderr_path: logs.join("err"),
            cases: Vec::new(),
        }
    }

    fn outcome(id: &str, name: &str, result: TestResult, attempts: Vec<Attempt>) -> TestOutcome {
        TestOutcome {
            test: TestCase::new(id, "g", name, Invocation::Shell("true".into())),
            result,
            attempts,
        }
    }

    #[test]
    fn escaping_follows_github() {
        assert_eq!(data("100% a:b,c\r\nnext"), "100%25 a:b,c%0D%0Anext");
        assert_eq!(property("100% a:b,c\nx"), "100%25 a%3Ab%2Cc%0Ax");
        let at = Location {
            file: "a,b:c.rs".into(),
            line: Some(3),
            column: Some(7),
        };
        assert_eq!(
            command("error", Some(&at), "failed: t", "boom"),
            "::error file=a%2Cb%3Ac.rs,line=3,col=7,title=failed%3A t::boom"
        );
        assert_eq!(command("error", None, "t", ""), "::error title=t::");
    }

    #[test]
    fn panics_point_at_the_workspace_members_file_and_the_rest_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let member = root.join("crates/alpha");
        std::fs::create_dir_all(member.join("tests")).unwrap();
        std::fs::write(member.join("tests/it.rs"), "").unwrap();
        std::fs::write(
            root.join("err"),
            "thread 'fails' (7) panicked at crates/alpha/tests/it.rs:9:5:\nboom\n",
        )
        .unwrap();
        let mut failed = outcome(
            "alpha::it fails",
            "fails",
            TestResult::Failed,
            vec![attempt(AttemptStatus::Failed, "boom", root)],
        );
        failed.test.cwd = PathBuf::from("crates/alpha");
        let mut outcomes = vec![failed];
        for i in 0..MAX_PER_KIND + 1 {
            outcomes.push(outcome(
                &format!("t{i}"),
                "t",
                TestResult::TimedOut,
                vec![attempt(
                    AttemptStatus::TimedOut,
                    "timed out after 1s",
                    Path::new("/none"),
                )],
            ));
        }
        let annotations = render(root, root, &outcomes);
        assert_eq!(annotations.lines.len(), MAX_PER_KIND);
        assert_eq!(
            annotations.lines[0],
            "::error file=crates/alpha/tests/it.rs,line=9,col=5,title=failed%3A alpha%3A%3Ait fails::boom"
        );
        assert_eq!(
            annotations.lines[1],
            "::error title=timed out%3A t0::timed out after 1s"
        );
        assert_eq!(annotations.not_annotated, ["t9", "t10"]);
    }

    #[test]
    fn cases_and_command_files_give_their_location() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("py");
        std::fs::create_dir_all(source.join("tests")).unwrap();
        std::fs::write(source.join("tests/test_a.py"), "").unwrap();
        std::fs::write(source.join("tests/t.sh"), "").unwrap();
        let mut failed = attempt(AttemptStatus::Failed, "AssertionError", dir.path());
        failed.cases = vec![CaseResult {
            id: "tests/test_a.py::test_x".into(),
            name: "test_x".into(),
            classname: None,
            status: AttemptStatus::Failed,
            kind: CaseKind::Plain,
            duration: Duration::ZERO,
            message: None,
            detail: None,
            file: None,
            line: None,
            failed_at: Some(SourceLocation {
                file: "tests/test_a.py".into(),
                line: 4,
            }),
            stdout: None,
            stderr: None,
        }];
        let flaky = vec![
            attempt(AttemptStatus::Failed, "exit status 1", dir.path()),
            attempt(AttemptStatus::Passed, "", dir.path()),
        ];
        let outcomes = [
            outcome(
                "tests/test_a.py::test_x",
                "test_x",
                TestResult::Failed,
                vec![failed],
            ),
            outcome("tests/t.sh", "t.sh", TestResult::Flaky, flaky),
        ];
        let annotations = render(dir.path(), &source, &outcomes);
        assert_eq!(
            annotations.lines,
            [
                "::error file=py/tests/test_a.py,line=4,title=failed%3A tests/test_a.py%3A%3Atest_x::AssertionError",
                "::warning file=py/tests/t.sh,title=flaky%3A tests/t.sh::passed on attempt 2 after failing: exit status 1",
            ]
        );
    }
}
