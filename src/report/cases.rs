//! From scheduled tests to the framework's own tests: a pytest file that ran
//! as one unit becomes one outcome per pytest test, so that the JUnit
//! report, the counts, the console summary, the JSON events and the step
//! summary all speak of the tests pytest speaks of.

use std::collections::HashMap;

use crate::model::{Attempt, AttemptStatus, CaseKind, TestOutcome, TestResult};

/// Every outcome, with those whose plugin reported framework cases split
/// into one outcome per case (see [`split`]); others kept as they are.
pub fn expand(outcomes: &[TestOutcome]) -> Vec<TestOutcome> {
    outcomes.iter().flat_map(split).collect()
}

/// One outcome per case of `outcome`, in the order the cases were first
/// reported; each of its attempts carries that one case. A case missing
/// from an attempt (the process timed out or crashed before reporting)
/// takes that attempt's own status and message. An outcome with no cases
/// stays as it is. Linear in the number of cases; splitting an outcome
/// that was already split gives it back unchanged.
pub fn split(outcome: &TestOutcome) -> Vec<TestOutcome> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut first_seen = Vec::new();
    for case in outcome.attempts.iter().flat_map(|attempt| &attempt.cases) {
        index.entry(case.id.as_str()).or_insert_with(|| {
            first_seen.push(case);
            first_seen.len() - 1
        });
    }
    if first_seen.is_empty() {
        return vec![outcome.clone()];
    }
    // Each attempt's case of each id, found by one pass over the attempt.
    let mut per_case: Vec<Vec<Attempt>> = vec![Vec::new(); first_seen.len()];
    for attempt in &outcome.attempts {
        let mut found: Vec<Option<&crate::model::CaseResult>> = vec![None; first_seen.len()];
        for case in &attempt.cases {
            found[index[case.id.as_str()]] = Some(case);
        }
        // Cloned per case without its cases: cloning those too would be quadratic.
        let bare = Attempt {
            cases: Vec::new(),
            message: None,
            ..attempt.clone_without_cases()
        };
        for (attempts, case) in per_case.iter_mut().zip(found) {
            attempts.push(match case {
                Some(case) => Attempt {
                    status: case.status,
                    duration: case.duration,
                    message: case.message.clone().or_else(|| attempt.message.clone()),
                    cases: vec![case.clone()],
                    ..bare.clone()
                },
                None => Attempt {
                    message: attempt.message.clone(),
                    ..bare.clone()
                },
            });
        }
    }
    first_seen
        .into_iter()
        .zip(per_case)
        .map(|(case, attempts)| TestOutcome {
            // What the test ran is the whole test's, not the case's: a
            // copy per case (the reporter's source, on pytest) costs gigabytes.
            test: crate::model::TestCase {
                id: case.id.clone(),
                group: outcome.test.group.clone(),
                name: case.name.clone(),
                invocation: crate::model::Invocation::Shell(String::new()),
                cwd: outcome.test.cwd.clone(),
                env: Vec::new(),
                ignored: outcome.test.ignored,
            },
            result: result(&attempts),
            attempts,
        })
        .collect()
}

/// A case's result over its attempts: the last one's, flaky when it passed
/// after a failure.
fn result(attempts: &[Attempt]) -> TestResult {
    let failed_before = attempts[..attempts.len().saturating_sub(1)]
        .iter()
        .any(|a| matches!(a.status, AttemptStatus::Failed | AttemptStatus::TimedOut));
    attempts.last().map_or(TestResult::Skipped, |last| {
        TestResult::of_last_attempt(last.status, failed_before)
    })
}

/// The framework's kind of the outcome's last attempt (an error, an xfail),
/// for outcomes that are one framework case.
pub fn kind(outcome: &TestOutcome) -> CaseKind {
    outcome
        .attempts
        .last()
        .and_then(|attempt| attempt.cases.first())
        .map_or(CaseKind::Plain, |case| case.kind)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::model::{CaseResult, Invocation, TestCase};

    fn case(id: &str, status: AttemptStatus) -> CaseResult {
        CaseResult {
            id: id.into(),
            name: id.rsplit("::").next().unwrap().into(),
            classname: Some("tests.test_a".into()),
            status,
            kind: CaseKind::Plain,
            duration: Duration::from_millis(5),
            message: None,
            detail: None,
            file: None,
            line: None,
            failed_at: None,
            stdout: None,
            stderr: None,
        }
    }

    fn attempt(number: u32, status: AttemptStatus, cases: Vec<CaseResult>) -> Attempt {
        Attempt {
            number,
            worker: 1,
            status,
            started: SystemTime::UNIX_EPOCH,
            duration: Duration::from_secs(1),
            message: Some(format!("attempt {number}")),
            stdout_path: "out".into(),
            stderr_path: "err".into(),
            cases,
        }
    }

    #[test]
    fn a_case_carries_its_tests_place_but_not_what_the_test_ran() {
        let mut file = TestCase::new(
            "tests/test_a.py",
            "tests/test_a.py",
            "tests/test_a.py",
            Invocation::Argv {
                program: "python3".into(),
                args: vec!["-c".into(), "x".repeat(15_000).into()],
            },
        );
        file.cwd = "sub".into();
        file.env = vec![("A".into(), crate::model::EnvValue::Literal("1".into()))];
        let outcome = TestOutcome {
            test: file,
            result: TestResult::Passed,
            attempts: vec![attempt(
                1,
                AttemptStatus::Passed,
                vec![case("tests/test_a.py::ok", AttemptStatus::Passed)],
            )],
        };
        let [case] = &split(&outcome)[..] else {
            panic!("one case")
        };
        assert_eq!(
            (case.test.group.as_str(), case.test.cwd.to_str()),
            ("tests/test_a.py", Some("sub"))
        );
        assert_eq!(case.test.invocation, Invocation::Shell(String::new()));
        assert!(case.test.env.is_empty());
    }

    #[test]
    fn a_file_splits_into_its_cases_with_their_own_results() {
        use AttemptStatus::*;
        let file = TestOutcome {
            test: TestCase::new(
                "tests/test_a.py",
                "tests/test_a.py",
                "tests/test_a.py",
                Invocation::Shell(String::new()),
            ),
            result: TestResult::Flaky,
            attempts: vec![
                attempt(
                    1,
                    Failed,
                    vec![
                        case("tests/test_a.py::ok", Passed),
                        case("tests/test_a.py::flaky", Failed),
                    ],
                ),
                attempt(2, TimedOut, vec![]),
                attempt(
                    3,
                    Passed,
                    vec![
                        case("tests/test_a.py::flaky", Passed),
                        case("tests/test_a.py::ok", Passed),
                    ],
                ),
            ],
        };
        let split = split(&file);
        let seen: Vec<(&str, &str, TestResult)> = split
            .iter()
            .map(|o| (o.test.id.as_str(), o.test.name.as_str(), o.result))
            .collect();
        assert_eq!(
            seen,
            [
                // The timed-out attempt reported no case: it counts against each.
                ("tests/test_a.py::ok", "ok", TestResult::Flaky),
                ("tests/test_a.py::flaky", "flaky", TestResult::Flaky),
            ]
        );
        let middle = &split[1].attempts[1];
        assert_eq!(
            (middle.status, middle.message.as_deref()),
            (TimedOut, Some("attempt 2"))
        );
        assert_eq!(split[1].attempts[2].duration, Duration::from_millis(5));
        let again: Vec<TestOutcome> = split.iter().flat_map(super::split).collect();
        assert_eq!(
            again
                .iter()
                .map(|o| (&o.test, o.result))
                .collect::<Vec<_>>(),
            split
                .iter()
                .map(|o| (&o.test, o.result))
                .collect::<Vec<_>>(),
            "splitting twice changes nothing"
        );
        let plain = TestOutcome {
            attempts: vec![attempt(1, Passed, vec![])],
            ..file.clone()
        };
        assert_eq!(expand(&[plain])[0].test, file.test);
    }
}
