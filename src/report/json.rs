//! `--message-format json`: one JSON object per line on stdout, flushed per
//! event so that a consumer sees tests as they finish.

use std::io::Write;

use serde_json::{Value, json};

use super::Counts;
use crate::events::Event;
use crate::model::{AttemptStatus, TestCase};

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
        } => {
            let attempt_result = match attempt.status {
                AttemptStatus::Passed => "passed",
                AttemptStatus::Failed => "failed",
                AttemptStatus::TimedOut => "timed-out",
                AttemptStatus::Skipped => "skipped",
            };
            json!({
                "event": "test-finished",
                "id": tests[*index].id,
                "group": tests[*index].group,
                "attempt": attempt.number,
                "worker": attempt.worker,
                "result": result.map_or(attempt_result, |r| r.as_str()),
                "retrying": result.is_none(),
                "duration": attempt.duration.as_secs_f64(),
                "message": attempt.message,
                "stdout": attempt.stdout_path,
                "stderr": attempt.stderr_path,
            })
        }
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
        "timed_out": counts.timed_out, "skipped": counts.skipped, "not_run": counts.not_run,
        "duration": duration, "exit_code": exit_code, "interrupted": interrupted,
        "junit": written.junit, "timings": written.timings,
    }));
}
