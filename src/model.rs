//! The nouns every stage shares: a discovered test, how to run it, and what
//! one attempt of it produced.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// One unit the scheduler hands out: for Cargo one libtest test, for pytest
/// one file (by default), for the command plugin one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    /// Unique over the run, stable between runs: the key of the timings file.
    pub id: String,
    /// The report group (JUnit `<testsuite>`): Cargo binary id, pytest file.
    pub group: String,
    /// The name inside its group (JUnit `<testcase name>`).
    pub name: String,
    /// What to execute.
    pub invocation: Invocation,
    /// Working directory, relative to the workspace root.
    pub cwd: PathBuf,
    /// Extra environment for the test process.
    pub env: Vec<(String, EnvValue)>,
    /// Marked ignored by the test framework and not asked for: reported as skipped, never run.
    pub ignored: bool,
}

impl TestCase {
    /// A test run from the workspace root with no extra environment.
    pub fn new(
        id: impl Into<String>,
        group: impl Into<String>,
        name: impl Into<String>,
        invocation: Invocation,
    ) -> Self {
        TestCase {
            id: id.into(),
            group: group.into(),
            name: name.into(),
            invocation,
            cwd: PathBuf::new(),
            env: Vec::new(),
            ignored: false,
        }
    }
}

/// How a test process is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// A program and its arguments, never seen by a shell.
    Argv {
        program: PathBuf,
        args: Vec<OsString>,
    },
    /// A shell string written by the user or a plugin, run with `sh -c`.
    Shell(String),
}

/// An environment value that may need to point into the worker's workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    Literal(OsString),
    /// A path relative to the workspace root, made absolute per workspace.
    InWorkspace(PathBuf),
}

/// The result of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttemptStatus {
    Passed,
    Failed,
    TimedOut,
    Skipped,
    /// Still running when Ctrl-C or SIGTERM came, and stopped: no verdict.
    Interrupted,
}

/// The final result of a test over all its attempts (SPEC "Retries and results").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TestResult {
    Passed,
    Flaky,
    Failed,
    TimedOut,
    Skipped,
    /// Its only attempts were cut short by Ctrl-C or SIGTERM (a real
    /// failure before them makes it `Failed`).
    Interrupted,
}

impl TestResult {
    pub fn as_str(self) -> &'static str {
        match self {
            TestResult::Passed => "passed",
            TestResult::Flaky => "flaky",
            TestResult::Failed => "failed",
            TestResult::TimedOut => "timed-out",
            TestResult::Skipped => "skipped",
            TestResult::Interrupted => "interrupted",
        }
    }

    /// The final result of a test whose last attempt ended with `last`,
    /// `failed_before` telling whether an earlier attempt failed or timed
    /// out: flaky when it then passed; an interrupt, or a retry that never
    /// started, is no verdict, so an earlier real failure stays the result.
    pub fn of_last_attempt(last: AttemptStatus, failed_before: bool) -> TestResult {
        match last {
            AttemptStatus::Passed if failed_before => TestResult::Flaky,
            AttemptStatus::Passed => TestResult::Passed,
            AttemptStatus::Failed => TestResult::Failed,
            AttemptStatus::TimedOut => TestResult::TimedOut,
            // A retry that never started (Ctrl-C, no process to be had)
            // leaves the earlier real failure standing.
            AttemptStatus::Skipped if failed_before => TestResult::Failed,
            AttemptStatus::Skipped => TestResult::Skipped,
            AttemptStatus::Interrupted if failed_before => TestResult::Failed,
            AttemptStatus::Interrupted => TestResult::Interrupted,
        }
    }

    /// Failed or timed out: what makes the run exit 1.
    pub fn is_failure(self) -> bool {
        matches!(self, TestResult::Failed | TestResult::TimedOut)
    }
}

/// Everything known about one finished attempt of one test.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// 1 for the first attempt, 2 for the first retry, ...
    pub number: u32,
    /// 1-based worker that ran it.
    pub worker: usize,
    pub status: AttemptStatus,
    pub started: SystemTime,
    pub duration: Duration,
    /// A one-line reason when not passed ("exit status 101", "timed out after 5s").
    pub message: Option<String>,
    /// Log files holding the attempt's full output.
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    /// The framework's own test cases inside this test, when the plugin
    /// reads them (pytest: the functions of a file). Empty for Cargo.
    pub cases: Vec<CaseResult>,
}

impl Attempt {
    /// An attempt starting now, failed until its verdict says otherwise.
    pub fn starting(
        number: u32,
        worker: usize,
        (stdout_path, stderr_path): (PathBuf, PathBuf),
    ) -> Attempt {
        Attempt {
            number,
            worker,
            status: AttemptStatus::Failed,
            started: SystemTime::now(),
            duration: Duration::ZERO,
            message: None,
            stdout_path,
            stderr_path,
            cases: Vec::new(),
        }
    }

    /// A copy without its framework cases, which can be many.
    pub fn clone_without_cases(&self) -> Attempt {
        Attempt {
            number: self.number,
            worker: self.worker,
            status: self.status,
            started: self.started,
            duration: self.duration,
            message: self.message.clone(),
            stdout_path: self.stdout_path.clone(),
            stderr_path: self.stderr_path.clone(),
            cases: Vec::new(),
        }
    }
}

/// One framework test case inside a scheduled test, as its runner reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    /// The framework's own id (pytest's node id): unique over the run.
    pub id: String,
    /// The JUnit testcase name the framework gives it (`test_x[1-2]`).
    pub name: String,
    /// The JUnit classname the framework gives it (`tests.test_a.TestGroup`).
    pub classname: Option<String>,
    /// Passed, Failed (failures and errors) or Skipped (skips and expected failures).
    pub status: AttemptStatus,
    /// Which kind of failure or skip it was, where the framework tells.
    pub kind: CaseKind,
    pub duration: Duration,
    /// The runner's one-line message (`AssertionError: ...`, an xfail's reason).
    pub message: Option<String>,
    /// The traceback or longer text, if any.
    pub detail: Option<String>,
    /// Where the framework says the test is (pytest's `file`/`line`), to be reported as such.
    pub file: Option<String>,
    pub line: Option<u64>,
    /// Where a failed case failed, for annotations (see [`SourceLocation`]).
    pub failed_at: Option<SourceLocation>,
    /// The test's own captured output, when the framework captured it per test.
    pub stdout: Option<String>,
    pub stderr: Option<String>,
}

/// A line of a source file, the file relative to the source (the project
/// directory): pytest's deepest traceback line in the test's own file, else
/// the test's definition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceLocation {
    pub file: String,
    /// 1-based.
    pub line: u64,
}

/// What a framework says beyond passed, failed, skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaseKind {
    /// A plain pass, failure (the test's own assertion) or skip.
    #[default]
    Plain,
    /// Failed outside the test's body: in setup or teardown, or never reported (JUnit `<error>`).
    Error,
    /// Skipped because it failed as expected (pytest's xfail).
    ExpectedFailure,
}

/// A test with every attempt it had and its final result: what reports are made of.
#[derive(Debug, Clone)]
pub struct TestOutcome {
    pub test: TestCase,
    pub result: TestResult,
    /// In order; empty for a test that was skipped without running.
    pub attempts: Vec<Attempt>,
}

#[cfg(test)]
mod tests {
    use super::{AttemptStatus, TestResult};

    #[test]
    fn the_last_attempt_decides_but_no_verdict_hides_a_real_failure() {
        use AttemptStatus::*;
        let cases = [
            (Passed, false, TestResult::Passed),
            (Passed, true, TestResult::Flaky),
            (Failed, false, TestResult::Failed),
            (TimedOut, true, TestResult::TimedOut),
            (Skipped, false, TestResult::Skipped),
            // A retry that never started, or was cut short, after a failure.
            (Skipped, true, TestResult::Failed),
            (Interrupted, false, TestResult::Interrupted),
            (Interrupted, true, TestResult::Failed),
        ];
        for (last, failed_before, expected) in cases {
            assert_eq!(
                TestResult::of_last_attempt(last, failed_before),
                expected,
                "{last:?} after a failure: {failed_before}"
            );
        }
    }
}
