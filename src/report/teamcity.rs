//! `--message-format teamcity`: TeamCity service messages on stdout
//! (<https://www.jetbrains.com/help/teamcity/service-messages.html>).
//!
//! Each worker is one flow (`flowId='wN'`), so that TeamCity pairs the
//! messages of tests running at the same time. A flow opens the suite of
//! its test's group (`testSuiteStarted`) and closes it when its next test
//! is of another group or the worker is done. Every attempt is one
//! `testStarted` .. `testFinished`, told together when the attempt is over
//! (so that the tests of a batch never overlap in their flow), and a pytest
//! file's attempt one such pair per pytest test; `testRetrySupport` makes
//! TeamCity count a test that failed and then passed as passed (flaky), as we do.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;

use super::{Collector, Reporter, tail_lines};
use crate::events::Event;
use crate::model::{Attempt, AttemptStatus, CaseResult, TestCase, TestOutcome, TestResult};

/// Lines of a failed attempt's logs given as `details`, `testStdOut` and `testStdErr`.
const LOG_LINES: usize = 100;
/// The flow of what no worker does: skipped tests, warnings before the run.
const MAIN_FLOW: &str = "main";

/// TeamCity's escaping of an attribute value: `|` is the escape
/// character; quotes, brackets and line breaks are escaped, and so is
/// every other control character and Unicode line or paragraph separator
/// (`|0xNNNN`), so that a message stays on one line.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' => escaped.push_str("||"),
            '\'' => escaped.push_str("|'"),
            '[' => escaped.push_str("|["),
            ']' => escaped.push_str("|]"),
            '\n' => escaped.push_str("|n"),
            '\r' => escaped.push_str("|r"),
            '\t' => escaped.push('\t'),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
                let _ = write!(escaped, "|0x{:04X}", c as u32);
            }
            c => escaped.push(c),
        }
    }
    escaped
}

/// One service message: `##teamcity[NAME key='value' ...]`.
pub fn message(name: &str, attributes: &[(&str, &str)]) -> String {
    let mut line = format!("##teamcity[{name}");
    for (key, value) in attributes {
        let _ = write!(line, " {key}='{}'", escape(value));
    }
    line.push(']');
    line
}

pub struct TeamCity {
    out: Box<dyn Write + Send>,
    /// The suite each flow has open.
    open: BTreeMap<String, String>,
}

impl TeamCity {
    pub fn new(out: Box<dyn Write + Send>) -> TeamCity {
        TeamCity {
            out,
            open: BTreeMap::new(),
        }
    }

    fn send(&mut self, name: &str, attributes: &[(&str, &str)]) {
        let line = message(name, attributes);
        // A closed stdout (`| head`) must not kill the run.
        let _ = writeln!(self.out, "{line}").and_then(|()| self.out.flush());
    }

    /// Opens `group` in `flow`, closing the suite open there before.
    fn enter(&mut self, flow: &str, group: &str) {
        if self.open.get(flow).is_some_and(|open| open == group) {
            return;
        }
        self.leave(flow);
        self.send("testSuiteStarted", &[("name", group), ("flowId", flow)]);
        self.open.insert(flow.to_string(), group.to_string());
    }

    fn leave(&mut self, flow: &str) {
        if let Some(group) = self.open.remove(flow) {
            self.send("testSuiteFinished", &[("name", &group), ("flowId", flow)]);
        }
    }

    fn skipped(&mut self, test: &TestCase, reason: &str) {
        self.enter(MAIN_FLOW, &test.group);
        let flow = [("flowId", MAIN_FLOW)];
        let name = ("name", test.name.as_str());
        self.send("testIgnored", &[name, ("message", reason), flow[0]]);
    }

    /// An attempt, told when it is over: `testStarted`, its output and
    /// verdict, `testFinished` with its real duration, one after the other
    /// in its worker's flow. Told as it starts, the tests of a batch (one
    /// process running several) would all be open at once in one flow,
    /// which TeamCity reads as one test inside another. An attempt whose
    /// plugin reported framework cases (the tests of a pytest file) is
    /// told as one test per case.
    fn finished(&mut self, test: &TestCase, attempt: &Attempt) {
        let flow = format!("w{}", attempt.worker);
        self.enter(&flow, &test.group);
        if attempt.cases.is_empty() {
            return self.told(&flow, &test.name, attempt, None);
        }
        let outcome = TestOutcome {
            test: test.clone(),
            result: TestResult::Failed,
            attempts: vec![attempt.clone()],
        };
        for case in super::cases::split(&outcome) {
            if let Some(last) = case.attempts.last() {
                let name = case_name(&test.group, &case.test.id);
                self.told(&flow, name, last, last.cases.first());
            }
        }
    }

    /// One test's messages. `case` is the framework case the attempt is,
    /// whose own message, traceback and output are told; without it, the
    /// ends of the attempt's logs.
    fn told(&mut self, flow: &str, name: &str, attempt: &Attempt, case: Option<&CaseResult>) {
        self.send("testStarted", &[("name", name), ("flowId", flow)]);
        match attempt.status {
            AttemptStatus::Passed => {}
            AttemptStatus::Skipped => {
                let reason = attempt.message.as_deref().unwrap_or("skipped");
                self.send(
                    "testIgnored",
                    &[("name", name), ("message", reason), ("flowId", flow)],
                );
            }
            AttemptStatus::Failed | AttemptStatus::TimedOut | AttemptStatus::Interrupted => {
                let (stdout, stderr) = match case {
                    Some(case) => (
                        case.stdout.clone().unwrap_or_default(),
                        case.stderr.clone().unwrap_or_default(),
                    ),
                    None => (
                        tail_lines(&attempt.stdout_path, LOG_LINES),
                        tail_lines(&attempt.stderr_path, LOG_LINES),
                    ),
                };
                if !stdout.is_empty() {
                    let attributes = [("name", name), ("out", &stdout), ("flowId", flow)];
                    self.send("testStdOut", &attributes);
                }
                if !stderr.is_empty() {
                    let attributes = [("name", name), ("out", &stderr), ("flowId", flow)];
                    self.send("testStdErr", &attributes);
                }
                let reason = attempt.message.as_deref().unwrap_or(match attempt.status {
                    AttemptStatus::TimedOut => "timed out",
                    AttemptStatus::Interrupted => "interrupted",
                    _ => "failed",
                });
                let details = match case.and_then(|case| case.detail.as_deref()) {
                    Some(detail) => detail,
                    None if stderr.is_empty() => &stdout,
                    None => &stderr,
                };
                self.send(
                    "testFailed",
                    &[
                        ("name", name),
                        ("message", reason),
                        ("details", details),
                        ("flowId", flow),
                    ],
                );
            }
        }
        let duration = attempt.duration.as_millis().to_string();
        self.send(
            "testFinished",
            &[("name", name), ("duration", &duration), ("flowId", flow)],
        );
    }
}

/// A framework case's name inside its group's suite: its id without the
/// group (`TestGroup::test_x[1-2]` of `tests/test_a.py::TestGroup::test_x[1-2]`),
/// else the whole id.
fn case_name<'a>(group: &str, id: &'a str) -> &'a str {
    id.strip_prefix(group)
        .and_then(|rest| rest.strip_prefix("::"))
        .filter(|rest| !rest.is_empty())
        .unwrap_or(id)
}

impl Reporter for TeamCity {
    fn event(&mut self, run: &Collector<'_>, event: &Event) {
        let tests = run.tests();
        match event {
            Event::RunStarted(_) => self.send("testRetrySupport", &[("enabled", "true")]),
            Event::TestSkipped { index } => self.skipped(&tests[*index], "ignored"),
            Event::AttemptFinished { index, attempt, .. } => self.finished(&tests[*index], attempt),
            Event::WorkerFinished { worker, .. } => self.leave(&format!("w{worker}")),
            Event::Warning(text) => {
                self.send("message", &[("text", text), ("status", "WARNING")]);
            }
            Event::WorkspaceFailed { message, .. } => {
                self.send("message", &[("text", message), ("status", "ERROR")]);
            }
            Event::RunFinished(_) => {
                let flows: Vec<String> = self.open.keys().cloned().collect();
                for flow in flows {
                    self.leave(&flow);
                }
            }
            // A cancelled retry's failure was told with its attempt.
            Event::RetryCancelled { .. }
            | Event::TestStarted { .. }
            | Event::TestSlow { .. }
            | Event::Output { .. }
            | Event::WorkspaceReady { .. } => {}
        }
    }
}

/// A warning before the run's reporters exist, as a service message on stdout.
pub fn print_warning(text: &str) {
    println!(
        "{}",
        message("message", &[("text", text), ("status", "WARNING")])
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TestResult;
    use crate::report::Pipeline;
    use crate::report::testing::{Buffer, attempt, suite};

    #[test]
    fn escapes_what_the_grammar_reserves() {
        assert_eq!(
            escape("it's [a|b]\r\nnext\u{2028}\u{85}\x1b é"),
            "it|'s |[a||b|]|r|nnext|0x2028|0x0085|0x001B é"
        );
        assert_eq!(
            message("testStarted", &[("name", "a'b"), ("flowId", "w1")]),
            "##teamcity[testStarted name='a|'b' flowId='w1']"
        );
    }

    #[test]
    fn a_skipped_test_is_ignored_in_the_main_flow() {
        let tests = suite(&["ignored"]);
        let buffer = Buffer::default();
        let reporter = TeamCity::new(Box::new(buffer.clone()));
        let mut pipeline = Pipeline::new(&tests, vec![Box::new(reporter)]);
        pipeline.event(&Event::TestSkipped { index: 0 });
        assert_eq!(
            buffer.text(),
            "##teamcity[testSuiteStarted name='group' flowId='main']\n\
             ##teamcity[testIgnored name='ignored' message='ignored' flowId='main']\n"
        );
    }

    #[test]
    fn a_flaky_test_fails_then_passes_in_its_worker_flow_inside_its_suite() {
        let tests = suite(&["flaky"]);
        let buffer = Buffer::default();
        let mut pipeline = Pipeline::new(
            &tests,
            vec![Box::new(TeamCity::new(Box::new(buffer.clone())))],
        );
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
        pipeline.event(&Event::TestStarted {
            index: 0,
            worker: 2,
            attempt: 2,
        });
        pipeline.event(&Event::AttemptFinished {
            index: 0,
            attempt: attempt(2, 2, AttemptStatus::Passed, None),
            result: Some(TestResult::Flaky),
        });
        pipeline.event(&Event::WorkerFinished {
            worker: 2,
            stats: Default::default(),
        });
        assert_eq!(
            buffer.text(),
            "##teamcity[testSuiteStarted name='group' flowId='w2']\n\
             ##teamcity[testStarted name='flaky' flowId='w2']\n\
             ##teamcity[testFailed name='flaky' message='boom' details='' flowId='w2']\n\
             ##teamcity[testFinished name='flaky' duration='1500' flowId='w2']\n\
             ##teamcity[testStarted name='flaky' flowId='w2']\n\
             ##teamcity[testFinished name='flaky' duration='1500' flowId='w2']\n\
             ##teamcity[testSuiteFinished name='group' flowId='w2']\n"
        );
    }

    #[test]
    fn the_tests_of_a_batch_are_told_one_after_the_other_in_their_flow() {
        let tests = suite(&["a", "b"]);
        let buffer = Buffer::default();
        let mut pipeline = Pipeline::new(
            &tests,
            vec![Box::new(TeamCity::new(Box::new(buffer.clone())))],
        );
        for index in 0..2 {
            pipeline.event(&Event::TestStarted {
                index,
                worker: 1,
                attempt: 1,
            });
        }
        for index in 0..2 {
            pipeline.event(&Event::AttemptFinished {
                index,
                attempt: attempt(1, 1, AttemptStatus::Passed, None),
                result: Some(TestResult::Passed),
            });
        }
        assert_eq!(
            buffer.text(),
            "##teamcity[testSuiteStarted name='group' flowId='w1']\n\
             ##teamcity[testStarted name='a' flowId='w1']\n\
             ##teamcity[testFinished name='a' duration='1500' flowId='w1']\n\
             ##teamcity[testStarted name='b' flowId='w1']\n\
             ##teamcity[testFinished name='b' duration='1500' flowId='w1']\n"
        );
    }

    #[test]
    fn a_file_with_framework_cases_is_one_test_per_case_with_its_own_traceback() {
        let mut tests = suite(&["test_a.py"]);
        tests[0].group = "tests/test_a.py".into();
        let case = |name: &str, status, message: Option<&str>, detail: Option<&str>| {
            crate::model::CaseResult {
                id: format!("tests/test_a.py::{name}"),
                name: name.rsplit("::").next().unwrap().into(),
                classname: None,
                status,
                kind: crate::model::CaseKind::Plain,
                duration: std::time::Duration::from_millis(7),
                message: message.map(String::from),
                detail: detail.map(String::from),
                file: None,
                line: None,
                failed_at: None,
                stdout: None,
                stderr: None,
            }
        };
        let buffer = Buffer::default();
        let mut pipeline = Pipeline::new(
            &tests,
            vec![Box::new(TeamCity::new(Box::new(buffer.clone())))],
        );
        let mut file = attempt(1, 1, AttemptStatus::Failed, Some("exit status 1"));
        file.cases = vec![
            case("T::test_ok", AttemptStatus::Passed, None, None),
            case(
                "test_bad",
                AttemptStatus::Failed,
                Some("AssertionError"),
                Some("> assert 1 == 2"),
            ),
        ];
        pipeline.event(&Event::AttemptFinished {
            index: 0,
            attempt: file,
            result: Some(TestResult::Failed),
        });
        assert_eq!(
            buffer.text(),
            "##teamcity[testSuiteStarted name='tests/test_a.py' flowId='w1']\n\
             ##teamcity[testStarted name='T::test_ok' flowId='w1']\n\
             ##teamcity[testFinished name='T::test_ok' duration='7' flowId='w1']\n\
             ##teamcity[testStarted name='test_bad' flowId='w1']\n\
             ##teamcity[testFailed name='test_bad' message='AssertionError' details='> assert 1 == 2' flowId='w1']\n\
             ##teamcity[testFinished name='test_bad' duration='7' flowId='w1']\n"
        );
    }
}
