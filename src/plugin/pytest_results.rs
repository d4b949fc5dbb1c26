//! Reads the JSON lines that our pytest reporter (`pytest_reporter.py`)
//! writes, and turns each collected node into one case with pytest's own
//! verdict, in one pass over the file.
//!
//! The verdicts follow pytest's `--junitxml`: a failed call is a failure, a
//! failed setup or teardown an error, a skip or an xfail skipped (with the
//! reason as message), a strict xpass a failure, a non-strict xpass a pass.
//! A node that was collected but whose teardown was never reported (the
//! process died, a plugin swallowed it) is an error, never a silent gap.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::model::{AttemptStatus, CaseKind, CaseResult, SourceLocation};

/// A node's identity and JUnit attributes, as the reporter writes them.
#[derive(Debug, Clone, Deserialize)]
struct Node {
    node: String,
    classname: String,
    name: String,
    file: Option<String>,
    line: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
enum Line {
    Collected { nodes: Vec<Node> },
    Report(Box<Phase>),
}

/// One phase (setup, call, teardown) of one node, as pytest reported it.
#[derive(Debug, Deserialize)]
struct Phase {
    #[serde(flatten)]
    node: Node,
    when: String,
    outcome: String,
    #[serde(default)]
    xfail: bool,
    message: Option<String>,
    detail: Option<String>,
    /// Where a failed phase failed (see [`SourceLocation`]).
    #[serde(default)]
    failed_at: Option<SourceLocation>,
    #[serde(default)]
    duration: f64,
    stdout: Option<String>,
    stderr: Option<String>,
}

/// How the pytest process ended, for the nodes it never reported.
pub enum Ended {
    /// By itself or by a signal: how, as `pytest exited with 1`.
    Exited(String),
    /// Killed at its time limit.
    TimedOut,
}

/// What one node's reports added up to so far.
struct State {
    node: Node,
    /// The first failed phase: (when, message, traceback).
    failed: Option<(String, Option<String>, Option<String>)>,
    /// Where the first failed phase failed.
    failed_at: Option<SourceLocation>,
    /// A skip (or an xfail): (message, xfail).
    skipped: Option<(Option<String>, bool)>,
    /// Some phase of it was reported: it started.
    started: bool,
    torn_down: bool,
    duration: f64,
    stdout: Option<String>,
    stderr: Option<String>,
}

impl State {
    fn new(node: Node) -> State {
        State {
            node,
            failed: None,
            failed_at: None,
            skipped: None,
            started: false,
            torn_down: false,
            duration: 0.0,
            stdout: None,
            stderr: None,
        }
    }

    fn case(self, ended: &Ended) -> CaseResult {
        let (status, kind, message, detail) = match (self.failed, self.skipped) {
            (Some((when, message, detail)), _) if when == "call" => {
                (AttemptStatus::Failed, CaseKind::Plain, message, detail)
            }
            (Some((when, message, detail)), _) => (
                AttemptStatus::Failed,
                CaseKind::Error,
                Some(format!(
                    "failed on {when} with \"{}\"",
                    message.unwrap_or_default()
                )),
                detail,
            ),
            // A teardown never reported after a skip still leaves a skip:
            // pytest itself reports nothing more for it.
            (None, Some((message, xfail))) => (
                AttemptStatus::Skipped,
                if xfail {
                    CaseKind::ExpectedFailure
                } else {
                    CaseKind::Plain
                },
                message,
                None,
            ),
            (None, None) if !self.torn_down => match ended {
                Ended::Exited(exit) => (
                    AttemptStatus::Failed,
                    CaseKind::Error,
                    Some(format!(
                        "pytest collected this test but never reported its result ({exit})"
                    )),
                    None,
                ),
                Ended::TimedOut if self.started => (
                    AttemptStatus::TimedOut,
                    CaseKind::Plain,
                    Some("timed out: pytest was stopped at the time limit in this test".into()),
                    None,
                ),
                Ended::TimedOut => (
                    AttemptStatus::Failed,
                    CaseKind::Error,
                    Some("never ran: pytest was stopped at the time limit before it".into()),
                    None,
                ),
            },
            (None, None) => (AttemptStatus::Passed, CaseKind::Plain, None, None),
        };
        CaseResult {
            id: self.node.node,
            name: self.node.name,
            classname: Some(self.node.classname),
            status,
            kind,
            duration: Duration::from_secs_f64(self.duration.max(0.0)),
            message,
            detail,
            file: self.node.file,
            line: self.node.line,
            failed_at: self.failed_at.filter(|_| status == AttemptStatus::Failed),
            stdout: self.stdout.filter(|s| !s.is_empty()),
            stderr: self.stderr.filter(|s| !s.is_empty()),
        }
    }
}

/// One case per node collected or reported, in collection order. `ended`
/// tells how the process ended, for nodes it never reported.
/// `Err` when the file is missing (the process never got as far as writing it).
pub fn read(path: &Path, ended: &Ended) -> std::io::Result<Vec<CaseResult>> {
    let file = std::fs::File::open(path)?;
    let mut cases = Cases::default();
    for line in std::io::BufReader::new(file).lines() {
        let line = line?;
        // A line cut short by a killed process ends the results, it is not an error.
        if let Ok(parsed) = serde_json::from_str::<Line>(&line) {
            cases.add(parsed);
        }
    }
    Ok(cases.finish(ended))
}

/// The cases of `lines` (a pytest server's lines for one test, see
/// `pytest_reporter.py`'s `serve`): [`read`] of lines already read.
pub fn read_lines<'l>(lines: impl Iterator<Item = &'l str>, ended: &Ended) -> Vec<CaseResult> {
    let mut cases = Cases::default();
    for line in lines {
        if let Ok(parsed) = serde_json::from_str::<Line>(line) {
            cases.add(parsed);
        }
    }
    cases.finish(ended)
}

/// The nodes seen so far, in collection order, with a map to find each.
#[derive(Default)]
struct Cases {
    order: Vec<State>,
    index: HashMap<String, usize>,
}

impl Cases {
    fn slot(&mut self, node: Node) -> usize {
        match self.index.get(&node.node) {
            Some(&i) => i,
            None => {
                self.index.insert(node.node.clone(), self.order.len());
                self.order.push(State::new(node));
                self.order.len() - 1
            }
        }
    }

    fn add(&mut self, line: Line) {
        match line {
            Line::Collected { nodes } => {
                for node in nodes {
                    self.slot(node);
                }
            }
            Line::Report(phase) => {
                let Phase {
                    node,
                    when,
                    outcome,
                    xfail,
                    message,
                    detail,
                    failed_at,
                    duration,
                    stdout,
                    stderr,
                } = *phase;
                let at = self.slot(node);
                let state = &mut self.order[at];
                state.duration += duration;
                state.started = true;
                match outcome.as_str() {
                    "failed" if state.failed.is_none() => {
                        state.failed = Some((when.clone(), message, detail));
                        state.failed_at = failed_at;
                    }
                    "skipped" => state.skipped = Some((message, xfail)),
                    _ => {}
                }
                if when == "teardown" {
                    state.torn_down = true;
                }
                state.stdout = stdout;
                state.stderr = stderr;
            }
        }
    }

    fn finish(mut self, ended: &Ended) -> Vec<CaseResult> {
        // The reporter writes a test's lines once it is torn down, so the
        // test in flight when pytest was stopped has none: it is the first
        // that never started (tests run in collection order).
        if !self.order.iter().any(|s| s.started && !s.torn_down)
            && let Some(in_flight) = self.order.iter_mut().find(|s| !s.started)
        {
            in_flight.started = true;
        }
        self.order
            .into_iter()
            .map(|state| state.case(ended))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(node: &str, when: &str, outcome: &str, extra: &str) -> String {
        format!(
            r#"{{"event": "report", "node": "{node}", "classname": "c", "name": "n", "when": "{when}", "outcome": "{outcome}", "duration": 0.5{extra}}}"#
        )
    }

    #[test]
    fn phases_add_up_to_pytest_verdicts_and_unreported_nodes_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results");
        let collected = r#"{"event": "collected", "nodes": [{"node": "a", "classname": "c", "name": "a"}, {"node": "b", "classname": "c", "name": "b"}, {"node": "c", "classname": "c", "name": "c"}, {"node": "d", "classname": "c", "name": "d"}]}"#;
        let lines = [
            collected.to_string(),
            report("a", "setup", "passed", ""),
            report(
                "a",
                "call",
                "failed",
                r#", "message": "boom", "failed_at": {"file": "tests/test_a.py", "line": 7}"#,
            ),
            report(
                "a",
                "teardown",
                "failed",
                r#", "message": "later", "failed_at": {"file": "conftest.py", "line": 3}"#,
            ),
            report("b", "setup", "failed", r#", "message": "no db""#),
            report("b", "teardown", "passed", ""),
            report("c", "setup", "passed", ""),
            report(
                "c",
                "call",
                "skipped",
                r#", "message": "bug 1", "xfail": true"#,
            ),
            report("c", "teardown", "passed", r#", "stdout": "own output""#),
            report("d", "setup", "passed", ""),
            r#"{"event": "report", "node": "d", "#.to_string(),
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        let cases = read(&path, &Ended::Exited("ended by signal 9".into())).unwrap();
        let seen: Vec<(&str, AttemptStatus, CaseKind, Option<&str>)> = cases
            .iter()
            .map(|c| (c.id.as_str(), c.status, c.kind, c.message.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                ("a", AttemptStatus::Failed, CaseKind::Plain, Some("boom")),
                (
                    "b",
                    AttemptStatus::Failed,
                    CaseKind::Error,
                    Some("failed on setup with \"no db\"")
                ),
                (
                    "c",
                    AttemptStatus::Skipped,
                    CaseKind::ExpectedFailure,
                    Some("bug 1")
                ),
                (
                    "d",
                    AttemptStatus::Failed,
                    CaseKind::Error,
                    Some(
                        "pytest collected this test but never reported its result (ended by signal 9)"
                    )
                ),
            ]
        );
        assert_eq!(cases[0].duration, Duration::from_secs_f64(1.5));
        // The first failed phase says where it failed; a skip says nowhere.
        let at = cases[0].failed_at.as_ref().unwrap();
        assert_eq!((at.file.as_str(), at.line), ("tests/test_a.py", 7));
        assert_eq!(cases[2].failed_at, None);
        assert_eq!(cases[2].stdout.as_deref(), Some("own output"));
        let timed_out = read(&path, &Ended::TimedOut).unwrap();
        assert_eq!(
            timed_out[3].status,
            AttemptStatus::TimedOut,
            "d was running"
        );
        assert!(read(&dir.path().join("missing"), &Ended::TimedOut).is_err());
    }

    #[test]
    fn the_test_in_flight_at_a_time_limit_is_the_first_never_reported() {
        // The reporter writes a test's phases after its teardown: the one
        // running when pytest was killed left no line at all.
        let collected = r#"{"event": "collected", "nodes": [{"node": "a", "classname": "c", "name": "a"}, {"node": "b", "classname": "c", "name": "b"}, {"node": "c", "classname": "c", "name": "c"}]}"#;
        let lines = [
            collected.to_string(),
            report("a", "setup", "passed", ""),
            report("a", "call", "passed", ""),
            report("a", "teardown", "passed", ""),
        ];
        let cases = read_lines(lines.iter().map(String::as_str), &Ended::TimedOut);
        let statuses: Vec<AttemptStatus> = cases.iter().map(|c| c.status).collect();
        assert_eq!(
            statuses,
            [
                AttemptStatus::Passed,
                AttemptStatus::TimedOut,
                AttemptStatus::Failed
            ]
        );
        assert_eq!(
            cases[2].message.as_deref(),
            Some("never ran: pytest was stopped at the time limit before it")
        );
    }
}
