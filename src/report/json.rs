//! `--message-format json`: one JSON object per line on stdout, flushed per
//! event so that a consumer sees tests as they finish.

use std::io::Write;

use serde_json::{Value, json};

use super::Counts;
use crate::events::Event;
use crate::model::{Attempt, AttemptStatus, CaseKind, TestCase, TestOutcome, TestResult};

/// Writes one event per line; an `id` names the test.
pub fn emit(value: Value) {
    let mut stdout = std::io::stdout().lock();
    // A closed stdout (`| head`) must not kill the run.
    let _ = writeln!(stdout, "{value}").and_then(|()| stdout.flush());
}

pub fn run_started(run_id: &str, tests: usize, workers: usize, partition: Option<&str>) {
    emit(
        json!({"event": "run-started", "run_id": run_id, "tests": tests, "workers": workers, "partition": partition}),
    );
}

pub fn skipped(test: &TestCase) {
    emit(json!({
        "event": "test-finished", "id": test.id, "group": test.group, "attempt": 0, "worker": null,
        "result": "skipped", "duration": 0.0,
    }));
}

/// The JSON form of a run event, if it has one.
pub fn event(tests: &[TestCase], event: &Event) {
    let value = match event {
        Event::TestStarted {
            index,
            worker,
            attempt,
        } => {
            json!({"event": "test-started", "id": tests[*index].id, "worker": worker, "attempt": attempt})
        }
        Event::TestSlow {
            index,
            worker,
            attempt,
            elapsed,
        } => json!({
            "event": "test-slow", "id": tests[*index].id, "worker": worker, "attempt": attempt,
            "elapsed": elapsed.as_secs_f64(),
        }),
        Event::AttemptFinished {
            index,
            attempt,
            result,
        } => test_finished(&tests[*index], attempt, *result),
        Event::WorkspaceReady { worker, path, took } => {
            json!({"event": "workspace-ready", "worker": worker, "path": path, "duration": took.as_secs_f64()})
        }
        Event::WorkspaceFailed { worker, message } => {
            json!({"event": "workspace-failed", "worker": worker, "message": message})
        }
        Event::Warning(message) => json!({"event": "warning", "message": message}),
        Event::WorkerFinished { .. } | Event::Output { .. } => return,
    };
    emit(value);
}

fn test_finished(test: &TestCase, attempt: &Attempt, result: Option<TestResult>) -> Value {
    let attempt_result = match attempt.status {
        AttemptStatus::Passed => "passed",
        AttemptStatus::Failed => "failed",
        AttemptStatus::TimedOut => "timed-out",
        AttemptStatus::Skipped => "skipped",
        AttemptStatus::Interrupted => "interrupted",
    };
    let mut value = json!({
        "event": "test-finished",
        "id": test.id,
        "group": test.group,
        "attempt": attempt.number,
        "worker": attempt.worker,
        "result": result.map_or(attempt_result, |r| r.as_str()),
        "retrying": result.is_none(),
        "duration": attempt.duration.as_secs_f64(),
        "message": attempt.message,
        "stdout": attempt.stdout_path,
        "stderr": attempt.stderr_path,
    });
    if let [case] = attempt.cases.as_slice() {
        match case.kind {
            CaseKind::Error => value["kind"] = "error".into(),
            CaseKind::ExpectedFailure => value["kind"] = "xfail".into(),
            CaseKind::Plain => {}
        }
    }
    value
}

/// Like [`event`], except that an attempt whose plugin reported framework
/// cases (the tests of a pytest file) is told as one `test-finished` per
/// case, with the case's node id and result. `attempts` are every attempt
/// of the event's test so far, this one last.
pub fn event_by_case(tests: &[TestCase], event: &Event, attempts: &[Attempt]) {
    let Event::AttemptFinished {
        index,
        attempt,
        result,
    } = event
    else {
        return self::event(tests, event);
    };
    if attempt.cases.is_empty() {
        return self::event(tests, event);
    }
    let outcome = TestOutcome {
        test: tests[*index].clone(),
        result: result.unwrap_or(TestResult::Failed),
        attempts: attempts.to_vec(),
    };
    for case in super::cases::split(&outcome) {
        if let Some(last) = case.attempts.last() {
            emit(test_finished(&case.test, last, result.map(|_| case.result)));
        }
    }
}

/// The files a run wrote, for `run-finished`.
pub struct Written<'a> {
    pub junit: Option<&'a std::path::Path>,
    /// The timings file written (`--timings-out`, else a shard's own
    /// `*.shard-K-of-N.json` when partitioned).
    pub timings: Option<&'a std::path::Path>,
}

pub fn run_finished(
    counts: &Counts,
    duration: f64,
    exit_code: i32,
    interrupted: bool,
    written: &Written<'_>,
) {
    emit(json!({
        "event": "run-finished", "passed": counts.passed, "failed": counts.failed, "flaky": counts.flaky,
        "timed_out": counts.timed_out, "skipped": counts.skipped, "xfailed": counts.xfailed,
        "not_run": counts.not_run, "interrupted_tests": counts.interrupted,
        "duration": duration, "exit_code": exit_code, "interrupted": interrupted,
        "junit": written.junit, "timings": written.timings,
    }));
}
