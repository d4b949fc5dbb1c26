//! The pytest plugin: discovers with `pytest --collect-only -q`, schedules a
//! file (or one test) at a time, and reads every result from pytest's own
//! JUnit report, so skips, xfails and errors are read, not guessed.
//!
//! A pytest process costs about half a second before its first test, so
//! this plugin batches: the runner hands one process several short files
//! (see `runner::Queue::next`), and long ones run alone.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use super::{DiscoverContext, Finished, Plugin, Registration, Verdict};
use crate::error::{Error, Kind, Result};
use crate::model::{AttemptStatus, CaseResult, Invocation, TestCase};
use crate::report::junit_read::{self, ReadCase, ReadOutcome};

pub struct PytestPlugin;

inventory::submit!(Registration(&PytestPlugin));

/// `[plugin.pytest]` in `paratest.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Settings {
    /// The Python to run pytest with [default: the active virtualenv's, else `python3`].
    python: Option<String>,
    /// What the scheduler hands out: a file (default) or a single test.
    #[serde(default)]
    granularity: Granularity,
    /// Extra arguments for every pytest process (`["-x", "--strict-markers"]`).
    #[serde(default)]
    args: Vec<String>,
    /// Reuse the last collection while no file of the source changed.
    #[serde(default = "yes")]
    cache_collection: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Granularity {
    #[default]
    File,
    Test,
}

/// Discovery: pytest's own collection, with a tiny plugin printing every
/// collected node id behind a mark. Parsing `--collect-only -q` instead
/// breaks when the project's `addopts` has `-q` too (pytest then prints
/// per-file counts, and nothing would run).
const COLLECT: &str = "\
import sys, pytest
class NodeIds:
    def pytest_collection_finish(self, session):
        for item in session.items:
            print('paratest-node ' + item.nodeid)
sys.exit(int(pytest.main(sys.argv[1:], plugins=[NodeIds()])))
";

/// What [`COLLECT`] prints before each node id.
const NODE_MARK: &str = "paratest-node ";

/// pytest's exit code when it collected no test: not a crash.
const NO_TESTS_COLLECTED: i32 = 5;

impl Plugin for PytestPlugin {
    fn name(&self) -> &'static str {
        "pytest"
    }

    fn description(&self) -> &'static str {
        "Python tests with pytest: a file per test (or one test), results read from pytest's JUnit report"
    }

    fn detects(&self, source: &Path) -> bool {
        ["pytest.ini", "conftest.py"]
            .iter()
            .any(|f| source.join(f).is_file())
    }

    fn discover(&self, ctx: &DiscoverContext<'_>) -> Result<Vec<TestCase>> {
        let settings = settings(ctx.settings)?;
        let python = python(&settings);
        let node_ids = collect(ctx, &settings, &python)?;
        let node_ids = node_ids
            .iter()
            .map(String::as_str)
            .filter(|id| id.contains("::"));
        let mut tests: Vec<TestCase> = Vec::new();
        for node_id in node_ids {
            let (file, inside) = node_id.split_once("::").expect("filtered on ::");
            let (id, name) = match settings.granularity {
                Granularity::File => (file, file),
                Granularity::Test => (node_id, inside),
            };
            if tests.last().is_some_and(|last| last.id == id) {
                continue;
            }
            tests.push(TestCase {
                id: id.to_string(),
                group: file.to_string(),
                name: name.to_string(),
                invocation: Invocation::Argv {
                    program: python.clone().into(),
                    args: run_args(&settings, &[id]),
                },
                cwd: PathBuf::new(),
                env: Vec::new(),
                ignored: false,
            });
        }
        Ok(tests)
    }

    fn batches(&self) -> bool {
        true
    }

    fn invocation(&self, tests: &[&TestCase], report_path: &Path) -> Invocation {
        let Invocation::Argv { program, args } = &tests[0].invocation else {
            unreachable!("pytest tests are argv invocations")
        };
        // The discovered argv ends with the test's own id; swap in the batch's.
        let mut args: Vec<OsString> = args[..args.len() - 1].to_vec();
        args.push(format!("--junitxml={}", report_path.display()).into());
        args.extend(tests.iter().map(|t| OsString::from(&t.id)));
        Invocation::Argv {
            program: program.clone(),
            args,
        }
    }

    fn judge(&self, tests: &[&TestCase], finished: &Finished<'_>) -> Vec<Verdict> {
        let code = finished.status.code();
        let report = match junit_read::read_report(finished.report_path) {
            Ok(report) => report,
            Err(e) => {
                let message = match code {
                    Some(NO_TESTS_COLLECTED) => "pytest collected no test".to_string(),
                    _ => format!(
                        "pytest {} and wrote no report ({e})",
                        describe(finished.status)
                    ),
                };
                let status = if code == Some(NO_TESTS_COLLECTED) {
                    AttemptStatus::Skipped
                } else {
                    AttemptStatus::Failed
                };
                return vec![Verdict::new(status, Some(message)); tests.len()];
            }
        };
        let cases: Vec<&ReadCase> = report
            .suites
            .iter()
            .flat_map(|suite| &suite.cases)
            .collect();
        tests
            .iter()
            .map(|test| {
                let mine: Vec<CaseResult> = cases
                    .iter()
                    .filter_map(|case| {
                        let node = node_in_file(case)?;
                        let file = case.file.as_deref()?;
                        let belongs = file == test.group
                            && (test.id == test.group || test.id == format!("{file}::{node}"));
                        belongs.then(|| case_result(case, node))
                    })
                    .collect();
                verdict(mine, finished.status)
            })
            .collect()
    }
}

/// The node ids pytest collects, from the cache when nothing in the source
/// changed since it was written (collection imports every test module,
/// which on a large suite costs seconds before any test can start).
fn collect(ctx: &DiscoverContext<'_>, settings: &Settings, python: &str) -> Result<Vec<String>> {
    let cache_path = ctx.source.join(".paratest").join(COLLECTION_CACHE);
    let fingerprint = settings
        .cache_collection
        .then(|| fingerprint(ctx.source, python, settings));
    if let Some(fingerprint) = &fingerprint
        && let Some(cached) = read_cache(&cache_path, fingerprint)
    {
        return Ok(cached);
    }
    let mut command = Command::new(python);
    command
        .args(["-c", COLLECT, "--collect-only"])
        .args(common_args(settings))
        .current_dir(ctx.source);
    let output = super::capture::capture(ctx, command).map_err(|e| {
        Error::with_cause(
            Kind::CannotRun,
            format!("cannot run `{python} -m pytest`"),
            e,
        )
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let node_ids: Vec<String> = match output.status.code() {
        Some(0) => stdout
            .lines()
            .filter_map(|line| line.strip_prefix(NODE_MARK))
            .map(str::to_string)
            .collect(),
        Some(NO_TESTS_COLLECTED) => Vec::new(),
        _ => {
            return Err(Error::cannot_run(format!(
                "`{python} -m pytest --collect-only` failed ({}):\n{}{}",
                output.status,
                stdout.trim_end(),
                String::from_utf8_lossy(&output.stderr).trim_end()
            )));
        }
    };
    if let Some(fingerprint) = fingerprint {
        let cache = serde_json::json!({"fingerprint": fingerprint, "node_ids": node_ids});
        // A cache that cannot be written only costs the next run its collection.
        let _ = crate::atomic::write(&cache_path, |w| {
            serde_json::to_writer(w, &cache).map_err(std::io::Error::from)
        });
    }
    Ok(node_ids)
}

/// Where [`collect`] keeps the last collection, in the source's `.paratest/`.
const COLLECTION_CACHE: &str = "pytest-collection.json";

fn read_cache(path: &Path, fingerprint: &str) -> Option<Vec<String>> {
    let cache: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    if cache["fingerprint"].as_str()? != fingerprint {
        return None;
    }
    cache["node_ids"]
        .as_array()?
        .iter()
        .map(|id| id.as_str().map(str::to_string))
        .collect()
}

/// What collection depends on, as a hash: the size, modification time and
/// path of every file of the source (caches, `.git` and `.paratest` aside),
/// the Python, the plugin's settings and `PYTEST_ADDOPTS`. Any edit, new or
/// deleted file changes it.
fn fingerprint(source: &Path, python: &str, settings: &Settings) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    (
        python,
        &settings.args,
        settings.granularity == Granularity::Test,
    )
        .hash(&mut hasher);
    std::env::var_os("PYTEST_ADDOPTS").hash(&mut hasher);
    crate::workspace::hash_source(source, &[], &mut hasher);
    format!("{:016x}", hasher.finish())
}

fn settings(table: Option<&toml::Table>) -> Result<Settings> {
    let table = table.cloned().unwrap_or_default();
    Settings::deserialize(toml::Value::Table(table))
        .map_err(|e| Error::usage(format!("invalid [plugin.pytest] in paratest.toml: {e}")))
}

/// The configured Python, else the active virtualenv's, else `python3`.
fn python(settings: &Settings) -> String {
    if let Some(python) = &settings.python {
        return python.clone();
    }
    match std::env::var_os("VIRTUAL_ENV") {
        Some(venv) if Path::new(&venv).join("bin/python").is_file() => Path::new(&venv)
            .join("bin/python")
            .to_string_lossy()
            .into_owned(),
        _ => "python3".to_string(),
    }
}

/// Arguments for discovery and runs alike: ids relative to the directory
/// pytest runs in (so a batch's report matches what discovery listed), and
/// no cache written into workspaces.
fn common_args(settings: &Settings) -> Vec<String> {
    let mut args = vec![
        "--rootdir=.".to_string(),
        "-p".to_string(),
        "no:cacheprovider".to_string(),
    ];
    args.extend(settings.args.iter().cloned());
    args
}

/// A run's argv after the program; the test ids come last.
fn run_args(settings: &Settings, ids: &[&str]) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["-m", "pytest", "-q", "-o", "junit_family=xunit1"]
        .map(OsString::from)
        .to_vec();
    args.extend(common_args(settings).into_iter().map(OsString::from));
    args.extend(ids.iter().map(OsString::from));
    args
}

/// The part of a case's node id after its file: `TestGroup::test_in_class`,
/// `test_square[1-1]`. The classname is the module path, plus the class.
pub fn node_in_file(case: &ReadCase) -> Option<String> {
    let file = case.file.as_deref()?;
    let module = file.trim_end_matches(".py").replace('/', ".");
    let classes = case
        .classname
        .as_deref()
        .and_then(|c| c.strip_prefix(&module))
        .unwrap_or("");
    let mut node: Vec<&str> = classes.split('.').filter(|part| !part.is_empty()).collect();
    node.push(&case.name);
    Some(node.join("::"))
}

fn case_result(case: &ReadCase, node: String) -> CaseResult {
    let (status, message) = match case.outcome {
        ReadOutcome::Passed => (AttemptStatus::Passed, None),
        ReadOutcome::Failed => (AttemptStatus::Failed, case.message.clone()),
        ReadOutcome::Error => (
            AttemptStatus::Failed,
            Some(format!("error: {}", case.message.as_deref().unwrap_or(""))),
        ),
        ReadOutcome::Skipped if case.ty.as_deref() == Some("pytest.xfail") => (
            AttemptStatus::Skipped,
            Some(format!("xfail: {}", case.message.as_deref().unwrap_or(""))),
        ),
        ReadOutcome::Skipped => (AttemptStatus::Skipped, case.message.clone()),
    };
    CaseResult {
        name: node,
        classname: case.classname.clone(),
        status,
        duration: Duration::from_secs_f64(case.time.unwrap_or(0.0).max(0.0)),
        message,
        detail: case.detail.clone(),
    }
}

/// A test's result from its cases: failed if one failed, skipped if all
/// were skipped; its duration is theirs (the process start-up is shared).
fn verdict(cases: Vec<CaseResult>, status: std::process::ExitStatus) -> Verdict {
    if cases.is_empty() {
        let message = format!(
            "pytest {} and reported no result for this test",
            describe(status)
        );
        return Verdict::new(AttemptStatus::Failed, Some(message));
    }
    let failed = cases.iter().find(|c| c.status == AttemptStatus::Failed);
    let overall = if failed.is_some() {
        AttemptStatus::Failed
    } else if cases.iter().all(|c| c.status == AttemptStatus::Skipped) {
        AttemptStatus::Skipped
    } else {
        AttemptStatus::Passed
    };
    let message =
        failed.map(|c| format!("{}: {}", c.name, c.message.as_deref().unwrap_or("failed")));
    Verdict {
        status: overall,
        message,
        duration: Some(cases.iter().map(|c| c.duration).sum()),
        cases,
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exited with {code}"),
        None => format!("ended by {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(classname: &str, name: &str, file: &str) -> ReadCase {
        ReadCase {
            name: name.into(),
            classname: Some(classname.into()),
            file: Some(file.into()),
            ..ReadCase::default()
        }
    }

    #[test]
    fn node_ids_come_back_from_classnames() {
        assert_eq!(
            node_in_file(&case("tests.test_a", "test_x[1-2]", "tests/test_a.py")).unwrap(),
            "test_x[1-2]"
        );
        assert_eq!(
            node_in_file(&case(
                "tests.test_a.TestGroup.Inner",
                "test_y",
                "tests/test_a.py"
            ))
            .unwrap(),
            "TestGroup::Inner::test_y"
        );
        assert!(node_in_file(&ReadCase::default()).is_none());
    }

    #[test]
    fn a_file_fails_if_one_case_fails_and_is_skipped_if_all_are() {
        use std::os::unix::process::ExitStatusExt;
        let exit = std::process::ExitStatus::from_raw(1 << 8);
        let result = |status| CaseResult {
            name: "t".into(),
            classname: None,
            status,
            duration: Duration::from_millis(10),
            message: Some("boom".into()),
            detail: None,
        };
        let mixed = verdict(
            vec![result(AttemptStatus::Passed), result(AttemptStatus::Failed)],
            exit,
        );
        assert_eq!(mixed.status, AttemptStatus::Failed);
        assert_eq!(mixed.duration, Some(Duration::from_millis(20)));
        let skipped = verdict(vec![result(AttemptStatus::Skipped)], exit);
        assert_eq!(skipped.status, AttemptStatus::Skipped);
        assert_eq!(verdict(Vec::new(), exit).status, AttemptStatus::Failed);
    }

    #[test]
    fn settings_reject_unknown_keys() {
        let table: toml::Table = toml::from_str("granularity = \"test\"\npython = \"py\"").unwrap();
        let settings = settings(Some(&table)).unwrap();
        assert_eq!(settings.granularity, Granularity::Test);
        let table: toml::Table = toml::from_str("granularty = \"test\"").unwrap();
        assert!(
            self::settings(Some(&table))
                .unwrap_err()
                .to_string()
                .contains("granularty")
        );
    }
}
