//! Merges JUnit reports (shards of a run, or other tools') into one
//! schema-valid report.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestRerun, TestSuite};

use super::read::{ReadCase, ReadOutcome, ReadReport, ReadRerun, parse_timestamp};
use super::write::{ERROR_TYPE, FAILURE_TYPE, OUTPUT_LIMIT, bound_text, xml_safe};

/// Merges reports into one.
///
/// Suites with the same name are joined into one `<testsuite>`; suites are
/// sorted by name and cases by (name, classname); every count and the suite
/// times (sum of the case times) are recomputed; a joined suite's timestamp
/// is its earliest. Suite-level `<properties>` and output are dropped (they
/// describe one process, not the joined suite).
///
/// **Duplicates are an error.** The same test (suite name + classname + name)
/// found twice, in two files or in one, fails the merge with a message naming
/// the file(s): shards must not overlap, and silently keeping either copy
/// could hide a failure. (Retries belong inside one testcase, as
/// `<flakyFailure>`/`<rerunFailure>`, which this keeps.)
///
/// The result goes through the same schema-safe writer as our own report
/// (`junit::write_xml`); texts are cleaned and bounded the same way.
pub fn merge(reports: &[(PathBuf, ReadReport)]) -> Result<Report, String> {
    #[derive(Default)]
    struct Joined<'a> {
        timestamp: Option<DateTime<FixedOffset>>,
        cases: Vec<(&'a ReadCase, &'a Path)>,
    }
    let mut suites: BTreeMap<&str, Joined<'_>> = BTreeMap::new();
    let mut seen: HashMap<(&str, &str, &str), &Path> = HashMap::new();
    for (path, report) in reports {
        for suite in &report.suites {
            let joined = suites.entry(suite.name.as_str()).or_default();
            let timestamp = suite.timestamp.as_deref().and_then(parse_timestamp);
            joined.timestamp = match (joined.timestamp, timestamp) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            for case in &suite.cases {
                let classname = case.classname.as_deref().unwrap_or("");
                let key = (suite.name.as_str(), classname, case.name.as_str());
                if let Some(first) = seen.insert(key, path) {
                    let test = format!(
                        "suite `{}`, classname `{classname}`, name `{}`",
                        suite.name, case.name
                    );
                    return Err(if first == path.as_path() {
                        format!("test ({test}) appears twice in {}", path.display())
                    } else {
                        format!(
                            "test ({test}) appears in both {} and {}",
                            first.display(),
                            path.display()
                        )
                    });
                }
                joined.cases.push((case, path));
            }
        }
    }

    let mut names = reports.iter().map(|(_, report)| report.name.as_deref());
    let common_name = names
        .next()
        .flatten()
        .filter(|first| names.all(|name| name == Some(*first)));
    let mut report = match common_name {
        Some(name) => Report::new(xml_safe(name)),
        None => Report::unnamed(),
    };
    let mut total = Duration::ZERO;
    for (name, mut joined) in suites {
        joined.cases.sort_by(|(a, _), (b, _)| {
            (a.name.as_str(), a.classname.as_deref())
                .cmp(&(b.name.as_str(), b.classname.as_deref()))
        });
        let mut suite = TestSuite::new(xml_safe(name));
        if let Some(timestamp) = joined.timestamp {
            suite.set_timestamp(timestamp);
        }
        let mut time = Duration::ZERO;
        for (case, source) in joined.cases {
            let case = to_test_case(case, source);
            time += case.time.unwrap_or_default();
            suite.add_test_case(case);
        }
        suite.set_time(time);
        total += time;
        report.add_test_suite(suite);
    }
    report.set_time(total);
    Ok(report)
}

/// A read case as a `quick-junit` testcase, its texts cleaned and bounded.
fn to_test_case(case: &ReadCase, source: &Path) -> TestCase {
    let full_at = source.display().to_string();
    let text = |text: &Option<String>| {
        text.as_deref()
            .map(|text| bound_text(&xml_safe(text), OUTPUT_LIMIT, &full_at))
    };
    let rerun = |read: &ReadRerun| {
        let kind = if read.kind.is_error() {
            NonSuccessKind::Error
        } else {
            NonSuccessKind::Failure
        };
        let mut rerun = TestRerun::new(kind);
        let default_type = if read.kind.is_error() {
            ERROR_TYPE
        } else {
            FAILURE_TYPE
        };
        rerun.set_type(xml_safe(read.ty.as_deref().unwrap_or(default_type)));
        rerun.message = read.message.as_deref().map(|m| xml_safe(m).into());
        rerun.stack_trace = text(&read.stack_trace).map(Into::into);
        rerun.system_out = text(&read.system_out).map(Into::into);
        rerun.system_err = text(&read.system_err).map(Into::into);
        rerun.description = text(&read.text).map(Into::into);
        rerun
    };
    // The element family follows the testcase's outcome: reruns of a passing
    // case are flaky runs, reruns of a failing one are reruns.
    let mut status = match case.outcome {
        ReadOutcome::Passed => TestCaseStatus::success(),
        ReadOutcome::Failed => TestCaseStatus::non_success(NonSuccessKind::Failure),
        ReadOutcome::Error => TestCaseStatus::non_success(NonSuccessKind::Error),
        ReadOutcome::Skipped => TestCaseStatus::skipped(),
    };
    if case.outcome != ReadOutcome::Passed {
        if let Some(message) = &case.message {
            status.set_message(xml_safe(message));
        }
        if let Some(ty) = &case.ty {
            status.set_type(xml_safe(ty));
        }
        if let Some(detail) = text(&case.detail) {
            status.set_description(detail);
        }
    }
    status.add_reruns(case.reruns.iter().map(rerun));
    let mut test_case = TestCase::new(xml_safe(&case.name), status);
    if let Some(classname) = &case.classname {
        test_case.set_classname(xml_safe(classname));
    }
    if let Some(time) = case
        .time
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
    {
        test_case.set_time(time);
    }
    if let Some(out) = text(&case.system_out) {
        test_case.set_system_out(out);
    }
    if let Some(err) = text(&case.system_err) {
        test_case.set_system_err(err);
    }
    test_case
}
