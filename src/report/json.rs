//! `--message-format json`: one JSON object per line, flushed per event so
//! that a consumer sees tests as they finish. The schema is the types
//! below: an `event` tag in kebab-case, keys in snake_case (SPEC "Machine-
//! readable output"; `scripts/action-run` reads `run-finished`).

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use super::{Collector, Reporter};
use crate::events::{Event, RunFinished, RunStarted};
use crate::model::{Attempt, AttemptStatus, CaseKind, TestCase, TestOutcome, TestResult};

/// One line of `run --message-format json`.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum JsonEvent<'a> {
    RunStarted {
        run_id: &'a str,
        tests: usize,
        workers: usize,
        partition: Option<&'a str>,
    },
    TestStarted {
        id: &'a str,
        worker: usize,
        attempt: u32,
    },
    TestSlow {
        id: &'a str,
        worker: usize,
        attempt: u32,
        /// Seconds.
        elapsed: f64,
    },
    TestFinished(TestFinished<'a>),
    WorkspaceReady {
        worker: usize,
        path: &'a Path,
        /// Seconds.
        duration: f64,
    },
    WorkspaceFailed {
        worker: usize,
        message: &'a str,
    },
    Warning {
        message: &'a str,
    },
    RunFinished {
        passed: usize,
        failed: usize,
        flaky: usize,
        timed_out: usize,
        skipped: usize,
        xfailed: usize,
        not_run: usize,
        interrupted_tests: usize,
        /// The run's wall-clock seconds.
        duration: f64,
        exit_code: i32,
        interrupted: bool,
        junit: Option<&'a Path>,
        timings: Option<&'a Path>,
    },
}

/// An attempt's end; `retrying` says another attempt follows, else
/// `result` is the test's final result.
#[derive(Debug, Serialize)]
pub struct TestFinished<'a> {
    pub id: &'a str,
    pub group: &'a str,
    /// 0 for a test skipped without running.
    pub attempt: u32,
    pub worker: Option<usize>,
    pub result: &'static str,
    pub retrying: bool,
    /// Seconds.
    pub duration: f64,
    pub message: Option<&'a str>,
    pub stdout: Option<&'a Path>,
    pub stderr: Option<&'a Path>,
    /// `error` or `xfail`, for a framework case that is either.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
}

/// One line of `list --message-format json`.
#[derive(Debug, Serialize)]
pub struct ListedTest<'a> {
    pub id: &'a str,
    pub group: &'a str,
    /// Seconds.
    pub expected_duration: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<usize>,
    pub settings: &'a crate::overrides::TestSettings,
}

/// One line of `timings show --message-format json`.
#[derive(Debug, Serialize)]
pub struct TimedTest<'a> {
    pub id: &'a str,
    /// Seconds.
    pub expected_duration: f64,
    pub samples: usize,
}

/// The line of `archive --message-format json`.
#[derive(Debug, Serialize)]
pub struct Archived<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub path: &'a Path,
    pub tests: usize,
    pub binaries: usize,
    pub entries: usize,
    pub bytes: u64,
    pub seconds: f64,
    pub source_included: bool,
}

/// Writes `value` as one line to `out`; a closed output (`| head`) must
/// not kill the run.
pub fn write_line(out: &mut dyn Write, value: &impl Serialize) {
    if let Ok(line) = serde_json::to_string(value) {
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    }
}

/// One line on stdout, for the commands without a run (and the warnings
/// before a run starts).
pub fn print(value: &impl Serialize) {
    write_line(&mut std::io::stdout().lock(), value);
}

/// The JSON view of a run.
pub struct Json {
    out: Box<dyn Write + Send>,
}

impl Json {
    pub fn new(out: Box<dyn Write + Send>) -> Json {
        Json { out }
    }

    fn emit(&mut self, event: &JsonEvent<'_>) {
        write_line(&mut *self.out, event);
    }

    /// An attempt's `test-finished`: one per framework case when the plugin
    /// reported cases (the tests of a pytest file), with the case's node id
    /// and result. `attempts` are every attempt of the test so far, this one last.
    fn finished(
        &mut self,
        test: &TestCase,
        attempts: &[Attempt],
        attempt: &Attempt,
        result: Option<TestResult>,
    ) {
        if attempt.cases.is_empty() {
            return self.emit(&JsonEvent::TestFinished(test_finished(
                test, attempt, result,
            )));
        }
        let outcome = TestOutcome {
            test: test.clone(),
            result: result.unwrap_or(TestResult::Failed),
            attempts: attempts.to_vec(),
        };
        for case in super::cases::split(&outcome) {
            if let Some(last) = case.attempts.last() {
                let event = test_finished(&case.test, last, result.map(|_| case.result));
                self.emit(&JsonEvent::TestFinished(event));
            }
        }
    }

    fn run_started(&mut self, started: &RunStarted) {
        self.emit(&JsonEvent::RunStarted {
            run_id: &started.run_id,
            tests: started.tests,
            workers: started.workers,
            partition: started.partition.as_deref(),
        });
    }

    fn run_finished(&mut self, end: &RunFinished) {
        if let Some(line) = end.no_tests.as_deref()
            && !line.is_empty()
            && !line.starts_with("error: ")
        {
            self.emit(&JsonEvent::Warning { message: line });
        }
        let counts = &end.counts;
        self.emit(&JsonEvent::RunFinished {
            passed: counts.passed,
            failed: counts.failed,
            flaky: counts.flaky,
            timed_out: counts.timed_out,
            skipped: counts.skipped,
            xfailed: counts.xfailed,
            not_run: counts.not_run,
            interrupted_tests: counts.interrupted,
            duration: end.wall.as_secs_f64(),
            exit_code: end.exit_code,
            interrupted: end.interrupted,
            junit: end.junit.as_deref(),
            timings: end.timings.as_deref(),
        });
    }
}

impl Reporter for Json {
    fn event(&mut self, run: &Collector<'_>, event: &Event) {
        let tests = run.tests();
        let event = match event {
            Event::RunStarted(started) => return self.run_started(started),
            Event::RunFinished(end) => return self.run_finished(end),
            Event::TestSkipped { index } => JsonEvent::TestFinished(TestFinished {
                result: TestResult::Skipped.as_str(),
                ..not_run(&tests[*index])
            }),
            Event::TestStarted {
                index,
                worker,
                attempt,
            } => JsonEvent::TestStarted {
                id: &tests[*index].id,
                worker: *worker,
                attempt: *attempt,
            },
            Event::TestSlow {
                index,
                worker,
                attempt,
                elapsed,
            } => JsonEvent::TestSlow {
                id: &tests[*index].id,
                worker: *worker,
                attempt: *attempt,
                elapsed: elapsed.as_secs_f64(),
            },
            Event::AttemptFinished {
                index,
                attempt,
                result,
            } => return self.finished(&tests[*index], run.attempts_of(*index), attempt, *result),
            Event::RetryCancelled { index, result } => {
                let attempts = run.attempts_of(*index);
                if let Some(last) = attempts.last() {
                    self.finished(&tests[*index], attempts, last, Some(*result));
                }
                return;
            }
            Event::WorkspaceReady { worker, path, took } => JsonEvent::WorkspaceReady {
                worker: *worker,
                path,
                duration: took.as_secs_f64(),
            },
            Event::WorkspaceFailed { worker, message } => JsonEvent::WorkspaceFailed {
                worker: *worker,
                message,
            },
            Event::Warning(message) => JsonEvent::Warning { message },
            Event::WorkerFinished { .. } | Event::Output { .. } => return,
        };
        self.emit(&event);
    }
}

/// The `test-finished` of a test that never ran.
fn not_run(test: &TestCase) -> TestFinished<'_> {
    TestFinished {
        id: &test.id,
        group: &test.group,
        attempt: 0,
        worker: None,
        result: TestResult::Skipped.as_str(),
        retrying: false,
        duration: 0.0,
        message: None,
        stdout: None,
        stderr: None,
        kind: None,
    }
}

fn test_finished<'a>(
    test: &'a TestCase,
    attempt: &'a Attempt,
    result: Option<TestResult>,
) -> TestFinished<'a> {
    let attempt_result = match attempt.status {
        AttemptStatus::Passed => "passed",
        AttemptStatus::Failed => "failed",
        AttemptStatus::TimedOut => "timed-out",
        AttemptStatus::Skipped => "skipped",
        AttemptStatus::Interrupted => "interrupted",
    };
    let kind = match attempt.cases.as_slice() {
        [case] => match case.kind {
            CaseKind::Error => Some("error"),
            CaseKind::ExpectedFailure => Some("xfail"),
            CaseKind::Plain => None,
        },
        _ => None,
    };
    TestFinished {
        id: &test.id,
        group: &test.group,
        attempt: attempt.number,
        worker: Some(attempt.worker),
        result: result.map_or(attempt_result, |r| r.as_str()),
        retrying: result.is_none(),
        duration: attempt.duration.as_secs_f64(),
        message: attempt.message.as_deref(),
        stdout: Some(&attempt.stdout_path),
        stderr: Some(&attempt.stderr_path),
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Pipeline;
    use crate::report::testing::{Buffer, attempt, suite};

    fn lines(buffer: &Buffer) -> Vec<serde_json::Value> {
        buffer
            .text()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn a_retried_test_is_told_attempt_by_attempt_and_its_end_once() {
        let tests = suite(&["flaky", "ignored"]);
        let buffer = Buffer::default();
        let mut pipeline =
            Pipeline::new(&tests, vec![Box::new(Json::new(Box::new(buffer.clone())))]);
        pipeline.event(&Event::TestSkipped { index: 1 });
        pipeline.event(&Event::TestStarted {
            index: 0,
            worker: 2,
            attempt: 1,
        });
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
        let events = lines(&buffer);
        let kinds: Vec<&str> = events
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "test-finished",
                "test-started",
                "test-finished",
                "test-finished"
            ]
        );
        assert_eq!(events[0]["result"], "skipped");
        assert_eq!(events[0]["attempt"], 0);
        assert!(events[0]["worker"].is_null());
        assert_eq!(events[1]["worker"], 2);
        assert_eq!(events[2]["retrying"], true);
        assert_eq!(events[2]["result"], "failed");
        assert_eq!(events[2]["message"], "boom");
        assert_eq!(events[2]["duration"], 1.5);
        assert_eq!(events[3]["retrying"], false);
        assert_eq!(events[3]["result"], "flaky");
        assert_eq!(events[3]["stdout"], "/logs/out");
    }

    #[test]
    fn a_cancelled_retry_ends_the_test_with_its_last_failure() {
        let tests = suite(&["fails"]);
        let buffer = Buffer::default();
        let mut pipeline =
            Pipeline::new(&tests, vec![Box::new(Json::new(Box::new(buffer.clone())))]);
        pipeline.event(&Event::AttemptFinished {
            index: 0,
            attempt: attempt(1, 1, AttemptStatus::TimedOut, Some("timed out after 1s")),
            result: None,
        });
        let result = pipeline.collector.result_of(0).unwrap();
        assert_eq!(result, TestResult::TimedOut);
        pipeline.event(&Event::RetryCancelled { index: 0, result });
        let last = lines(&buffer).pop().unwrap();
        assert_eq!(last["result"], "timed-out");
        assert_eq!(last["retrying"], false);
        assert_eq!(last["attempt"], 1);
    }

    #[test]
    fn run_finished_keeps_the_keys_the_action_reads() {
        let tests = suite(&[]);
        let buffer = Buffer::default();
        let mut pipeline =
            Pipeline::new(&tests, vec![Box::new(Json::new(Box::new(buffer.clone())))]);
        pipeline.finish(RunFinished {
            counts: crate::report::Counts {
                passed: 3,
                timed_out: 1,
                ..Default::default()
            },
            wall: std::time::Duration::from_millis(2500),
            exit_code: 4,
            interrupted: false,
            cannot_run: None,
            error: None,
            no_tests: Some("no tests to run: none selected".into()),
            makespan: None,
            files: Vec::new(),
            junit: Some("/r/junit.xml".into()),
            timings: None,
            not_annotated: Vec::new(),
        });
        let events = lines(&buffer);
        assert_eq!(events[0]["event"], "warning");
        assert_eq!(events[0]["message"], "no tests to run: none selected");
        let end = &events[1];
        assert_eq!(end["event"], "run-finished");
        for (key, value) in [
            ("passed", serde_json::json!(3)),
            ("failed", 0.into()),
            ("flaky", 0.into()),
            ("timed_out", 1.into()),
            ("skipped", 0.into()),
            ("not_run", 0.into()),
            ("duration", 2.5.into()),
            ("exit_code", 4.into()),
            ("junit", "/r/junit.xml".into()),
            ("timings", serde_json::Value::Null),
        ] {
            assert_eq!(end[key], value, "{key}");
        }
    }
}
