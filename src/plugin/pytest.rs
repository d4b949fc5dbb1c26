//! The pytest plugin: discovers with pytest's own collection, schedules a
//! file (or one test) at a time, and reads every result from a small pytest
//! plugin of ours (`pytest_reporter.py`) that writes one JSON line per phase
//! of each test: pytest's own verdicts, classnames, locations and each
//! test's own captured output, as its `--junitxml` would report them.
//!
//! A pytest process costs about half a second before its first test, so
//! this plugin batches: the runner hands one process several short files
//! (see `exec::queue::Queue::next`), and long ones run alone.

use serde::Deserialize;
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::pytest_results::Ended;
use super::{DiscoverContext, Finished, Plugin, Registration, Verdict};
use crate::error::{Error, Kind, Result};
use crate::junit::read::ReadCase;
use crate::model::{AttemptStatus, CaseResult, Invocation, TestCase};

pub struct PytestPlugin;

inventory::submit!(Registration {
    plugin: &PytestPlugin,
    detection_order: super::detection_order::PYTEST,
});

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
    /// One long-lived pytest process per worker that collects once and
    /// runs the tests as they come (`false`: a process per file or batch).
    #[serde(default = "yes")]
    persistent: bool,
}

/// `persistent` of this run's `[plugin.pytest]`, as discovery read it.
static PERSISTENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

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

/// Our side of every pytest process: `collect` for discovery, `run` for
/// tests (see the file's own doc). Discovery prints node ids behind a mark,
/// since parsing `--collect-only -q` breaks when the project's `addopts`
/// has `-q` too (pytest then prints per-file counts, and nothing would run).
const REPORTER: &str = include_str!("pytest_reporter.py");

/// Where a run's argv holds the reporter's source. Each discovered test's
/// argv has [`REPORTER_PLACE`] there, and the argv of a process the
/// reporter itself: a copy of its 15 kB in every test of a 100,000-case
/// suite (and in each of its cases' report outcomes) cost gigabytes.
const REPORTER_ARG: usize = 1;
const REPORTER_PLACE: &str = "(the reporter)";

/// What the reporter prints before each collected node id.
const NODE_MARK: &str = "paratest-node ";
/// What it prints before the paths and node ids pytest's configuration
/// selected (a JSON list), when it had any.
const ARGS_MARK: &str = "paratest-args ";
/// What it prints before each collection error (a JSON object).
const COLLECT_ERROR_MARK: &str = "paratest-collect-error ";
/// Where a run's argv holds the path of its results file, set per attempt.
const RESULTS_ARG: usize = 3;

/// pytest's exit code when it collected no test: not a crash.
const NO_TESTS_COLLECTED: i32 = 5;

impl Plugin for PytestPlugin {
    fn name(&self) -> &'static str {
        "pytest"
    }

    fn description(&self) -> &'static str {
        "Python tests with pytest: one persistent pytest per worker running files (or tests), pytest's own verdicts per test"
    }

    fn detects(&self, source: &Path) -> bool {
        configured(source)
    }

    fn discover(&self, ctx: &DiscoverContext<'_>) -> Result<Vec<TestCase>> {
        let settings = settings(ctx.settings)?;
        PERSISTENT.store(settings.persistent, std::sync::atomic::Ordering::Relaxed);
        let python = python(&settings);
        let Collection {
            node_ids,
            selecting_args,
        } = collect(ctx, &settings, &python)?;
        check_selecting_args(&selecting_args)?;
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
        args[REPORTER_ARG] = REPORTER.into();
        args[RESULTS_ARG] = report_path.into();
        args.extend(tests.iter().map(|t| OsString::from(&t.id)));
        Invocation::Argv {
            program: program.clone(),
            args,
        }
    }

    /// One pytest per worker: the reporter's `serve` mode, collecting the
    /// files of the selection once (session fixtures then run once per worker).
    fn serve(&self, tests: &[&TestCase]) -> Option<Invocation> {
        if !PERSISTENT.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        let Invocation::Argv { program, args } = &tests.first()?.invocation else {
            return None;
        };
        // The discovered argv: `-c REPORTER run RESULTS -q ARGS... ID`.
        let mut args: Vec<OsString> = args[..args.len() - 1].to_vec();
        args[REPORTER_ARG] = REPORTER.into();
        args.remove(RESULTS_ARG);
        args[2] = "serve".into();
        let mut files = std::collections::HashSet::new();
        for test in tests {
            if files.insert(test.group.as_str()) {
                args.push(test.group.clone().into());
            }
        }
        Some(Invocation::Argv {
            program: program.clone(),
            args,
        })
    }

    fn served(&self, _test: &TestCase, answer: &str, progress: &[String]) -> Verdict {
        use std::os::unix::process::ExitStatusExt;
        let ended = Ended::Exited("the pytest server went on".into());
        let cases = super::pytest_results::read_lines(progress.iter().map(String::as_str), &ended);
        if cases.is_empty() {
            // No node for this id (a file that failed to collect): the answer says why.
            return crate::exec::session::verdict_of(answer);
        }
        verdict(cases, std::process::ExitStatus::from_raw(0))
    }

    fn served_cases(
        &self,
        _test: &TestCase,
        progress: &[String],
        ended: &Ended,
    ) -> Vec<CaseResult> {
        super::pytest_results::read_lines(progress.iter().map(String::as_str), ended)
    }

    fn judge(&self, tests: &[&TestCase], finished: &Finished<'_>) -> Vec<Verdict> {
        let code = finished.status.code();
        let ended = if finished.timed_out {
            Ended::TimedOut
        } else {
            Ended::Exited(format!("pytest {}", describe(finished.status)))
        };
        let exit = format!("pytest {}", describe(finished.status));
        let cases = match super::pytest_results::read(finished.report_path, &ended) {
            Ok(cases) => cases,
            Err(_) => {
                let (status, message) = match code {
                    Some(NO_TESTS_COLLECTED) => (
                        AttemptStatus::Skipped,
                        "pytest collected no test".to_string(),
                    ),
                    _ => (
                        AttemptStatus::Failed,
                        format!("{exit} before it reported any test"),
                    ),
                };
                return vec![Verdict::new(status, Some(message)); tests.len()];
            }
        };
        // A case belongs to the test of its node id (granularity `test`),
        // else to the test of its file.
        let by_id: HashMap<&str, usize> = tests
            .iter()
            .enumerate()
            .map(|(i, test)| (test.id.as_str(), i))
            .collect();
        let mut mine: Vec<Vec<CaseResult>> = vec![Vec::new(); tests.len()];
        for case in cases {
            let file = case
                .id
                .split_once("::")
                .map_or(case.id.as_str(), |(f, _)| f);
            if let Some(&i) = by_id.get(case.id.as_str()).or_else(|| by_id.get(file)) {
                mine[i].push(case);
            }
        }
        mine.into_iter()
            .map(|cases| verdict(cases, finished.status))
            .collect()
    }
}

/// Whether `source` configures pytest, in any of the files pytest reads its
/// configuration from (or has a root `conftest.py`).
fn configured(source: &Path) -> bool {
    let read = |name: &str| std::fs::read_to_string(source.join(name)).ok();
    let has_section = |name: &str, section: &str| {
        read(name).is_some_and(|text| text.lines().any(|line| line.trim() == section))
    };
    let in_pyproject = read("pyproject.toml")
        .and_then(|text| text.parse::<toml::Table>().ok())
        .is_some_and(|table| {
            table
                .get("tool")
                .and_then(|tool| tool.get("pytest"))
                .is_some()
        });
    [
        "pytest.ini",
        ".pytest.ini",
        "pytest.toml",
        ".pytest.toml",
        "conftest.py",
    ]
    .iter()
    .any(|f| source.join(f).is_file())
        || in_pyproject
        || has_section("tox.ini", "[pytest]")
        || has_section("setup.cfg", "[tool:pytest]")
}

/// What discovery's collection found: the node ids, and the paths or node
/// ids that `args`, `addopts` or `PYTEST_ADDOPTS` selected them with.
#[derive(Debug)]
struct Collection {
    node_ids: Vec<String>,
    selecting_args: Vec<String>,
}

/// The node ids pytest collects, from the cache when nothing in the source
/// changed since it was written (collection imports every test module,
/// which on a large suite costs seconds before any test can start).
fn collect(ctx: &DiscoverContext<'_>, settings: &Settings, python: &str) -> Result<Collection> {
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
        .args(["-c", REPORTER, "collect", "--collect-only"])
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
    let collection = match output.status.code() {
        Some(0) | Some(NO_TESTS_COLLECTED) => Collection {
            node_ids: stdout
                .lines()
                .filter_map(|line| line.strip_prefix(NODE_MARK))
                .map(str::to_string)
                .collect(),
            selecting_args: stdout
                .lines()
                .filter_map(|line| line.strip_prefix(ARGS_MARK))
                .find_map(|json| serde_json::from_str(json).ok())
                .unwrap_or_default(),
        },
        _ => {
            return Err(Error::cannot_run(format!(
                "`{python} -m pytest --collect-only` failed ({}):\n{}",
                output.status,
                collection_errors(&stdout, &String::from_utf8_lossy(&output.stderr))
            )));
        }
    };
    if let Some(fingerprint) = fingerprint {
        let cache = serde_json::json!({
            "fingerprint": fingerprint,
            "node_ids": collection.node_ids,
            "selecting_args": collection.selecting_args,
        });
        // A cache that cannot be written only costs the next run its collection.
        let _ = crate::atomic::write(&cache_path, |w| {
            serde_json::to_writer(w, &cache).map_err(std::io::Error::from)
        });
    }
    Ok(collection)
}

/// What to show of a failed collection: each collection error pytest
/// reported, not the collection tree around it (tens of thousands of lines
/// on a large suite); else, when pytest failed before collecting (a bad
/// option, a broken `conftest.py`), its stderr and the end of its stdout.
fn collection_errors(stdout: &str, stderr: &str) -> String {
    let errors: Vec<String> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix(COLLECT_ERROR_MARK))
        .filter_map(|json| serde_json::from_str::<serde_json::Value>(json).ok())
        .map(|error| {
            format!(
                "ERROR collecting {}\n{}",
                error["node"].as_str().unwrap_or(""),
                error["detail"].as_str().unwrap_or("").trim_end()
            )
        })
        .collect();
    if !errors.is_empty() {
        return errors.join("\n\n");
    }
    let lines: Vec<&str> = stdout.trim_end().lines().collect();
    let tail = lines[lines.len().saturating_sub(COLLECTION_TAIL_LINES)..].join("\n");
    format!("{}\n{tail}", stderr.trim_end()).trim().to_string()
}

/// Lines of pytest's stdout shown when collection failed without a collection error.
const COLLECTION_TAIL_LINES: usize = 20;

/// Where [`collect`] keeps the last collection, in the source's `.paratest/`.
const COLLECTION_CACHE: &str = "pytest-collection.json";

fn read_cache(path: &Path, fingerprint: &str) -> Option<Collection> {
    let cache: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    if cache["fingerprint"].as_str()? != fingerprint {
        return None;
    }
    let strings = |key: &str| -> Option<Vec<String>> {
        cache[key]
            .as_array()?
            .iter()
            .map(|id| id.as_str().map(str::to_string))
            .collect()
    };
    Some(Collection {
        node_ids: strings("node_ids")?,
        // A cache from before this key was written selected nothing it knew of.
        selecting_args: strings("selecting_args").unwrap_or_default(),
    })
}

/// Paths and node ids in pytest's configuration select at discovery, but
/// they would be passed to every run too, beside the runner's own ids, and
/// pytest runs the union: a file's process would run tests of the file that
/// a node id left out, and a process per file or batch (`persistent =
/// false`, `--no-capture`) every configured path. So they are refused, with
/// what to write instead (`testpaths` is not affected: pytest uses it only
/// when no path is given).
fn check_selecting_args(selecting: &[String]) -> Result<()> {
    match selecting.first() {
        None => Ok(()),
        Some(first) => Err(Error::usage(format!(
            "pytest's configuration selects `{first}` (a path or node id in [plugin.pytest] \
             args, addopts or PYTEST_ADDOPTS), which every run would add to its own tests; \
             select with paratest's filters (`cargo paratest run tests/unit`, -E), pytest's \
             -k/-m, or `testpaths` in pytest's configuration"
        ))),
    }
}

/// What collection depends on, as a hash: the size, modification time and
/// path of every file of the source (caches, `.git` and `.paratest` aside),
/// the Python, the plugin's settings, `PYTEST_ADDOPTS` and our reporter. Any
/// edit, new or deleted file changes it.
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
    // What the reporter prints (a new version may print more) is the cache's too.
    REPORTER.hash(&mut hasher);
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

/// A run's argv after the program: the reporter ([`REPORTER_ARG`], put in
/// by [`Plugin::invocation`] and [`Plugin::serve`]), the results file
/// ([`RESULTS_ARG`], set per attempt), pytest's arguments, the test ids last.
fn run_args(settings: &Settings, ids: &[&str]) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["-c", REPORTER_PLACE, "run", "", "-q"]
        .map(OsString::from)
        .to_vec();
    args.extend(common_args(settings).into_iter().map(OsString::from));
    args.extend(ids.iter().map(OsString::from));
    args
}

/// The part of a case's node id after `file`: `TestGroup::test_in_class`,
/// `test_square[1-1]`. The classname is the module path, plus the class.
pub fn node_in_file(file: &str, case: &ReadCase) -> String {
    let module = file.trim_end_matches(".py").replace('/', ".");
    let classes = case
        .classname
        .as_deref()
        .and_then(|c| c.strip_prefix(&module))
        .unwrap_or("");
    let mut node: Vec<&str> = classes.split('.').filter(|part| !part.is_empty()).collect();
    node.push(&case.name);
    node.join("::")
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
    let message = failed.map(|c| format!("{}: {}", c.id, c.message.as_deref().unwrap_or("failed")));
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
    use std::time::Duration;

    fn case(classname: &str, name: &str, file: &str) -> ReadCase {
        ReadCase {
            name: name.into(),
            classname: Some(classname.into()),
            file: Some(file.into()),
            ..ReadCase::default()
        }
    }

    #[test]
    fn only_a_process_argv_holds_the_reporter_not_every_discovered_test() {
        let settings = settings(None).unwrap();
        let test = TestCase::new(
            "tests/test_a.py",
            "tests/test_a.py",
            "tests/test_a.py",
            Invocation::Argv {
                program: "python3".into(),
                args: run_args(&settings, &["tests/test_a.py"]),
            },
        );
        let Invocation::Argv { args, .. } = &test.invocation else {
            unreachable!()
        };
        assert!(
            args.iter().map(|a| a.len()).sum::<usize>() < 200,
            "{args:?}"
        );
        let Invocation::Argv { args, .. } =
            PytestPlugin.invocation(&[&test], Path::new("/r/results.jsonl"))
        else {
            unreachable!()
        };
        assert_eq!(args[REPORTER_ARG], REPORTER);
        assert_eq!(args[RESULTS_ARG], "/r/results.jsonl");
        assert_eq!(args.last().unwrap(), "tests/test_a.py");
        if let Some(Invocation::Argv { args, .. }) = PytestPlugin.serve(&[&test]) {
            assert_eq!(
                (args[REPORTER_ARG].to_str(), args[2].to_str()),
                (Some(REPORTER), Some("serve"))
            );
        }
    }

    #[test]
    fn node_ids_come_back_from_classnames() {
        let file = "tests/test_a.py";
        assert_eq!(
            node_in_file(file, &case("tests.test_a", "test_x[1-2]", file)),
            "test_x[1-2]"
        );
        assert_eq!(
            node_in_file(file, &case("tests.test_a.TestGroup.Inner", "test_y", file)),
            "TestGroup::Inner::test_y"
        );
        let inherited = case("tests.test_a.TestChild", "test_base", "tests/base.py");
        assert_eq!(node_in_file(file, &inherited), "TestChild::test_base");
    }

    #[test]
    fn a_file_fails_if_one_case_fails_and_is_skipped_if_all_are() {
        use std::os::unix::process::ExitStatusExt;
        let exit = std::process::ExitStatus::from_raw(1 << 8);
        let result = |status| CaseResult {
            id: "f.py::t".into(),
            name: "t".into(),
            classname: None,
            status,
            kind: crate::model::CaseKind::Plain,
            duration: Duration::from_millis(10),
            message: Some("boom".into()),
            detail: None,
            file: None,
            line: None,
            failed_at: None,
            stdout: None,
            stderr: None,
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
    fn pytest_is_detected_in_every_file_it_reads_its_configuration_from() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("pyproject.toml", "[project]\nname = \"x\"\n");
        write("setup.cfg", "[metadata]\nname = x\n");
        write("tox.ini", "[tox]\nenv_list = py3\n");
        assert!(!configured(dir.path()), "no pytest section anywhere");
        for (name, text) in [
            (
                "pyproject.toml",
                "[tool.pytest.ini_options]\naddopts = \"-q\"\n",
            ),
            ("pyproject.toml", "[tool.pytest]\nminversion = \"9.0\"\n"),
            (
                "setup.cfg",
                "[metadata]\nname = x\n[tool:pytest]\ntestpaths = t\n",
            ),
            ("tox.ini", "[tox]\n\n[pytest]\naddopts = -q\n"),
            ("pytest.toml", "[pytest]\n"),
        ] {
            let before = std::fs::read_to_string(dir.path().join(name)).ok();
            write(name, text);
            assert!(configured(dir.path()), "{name}: {text}");
            match before {
                Some(before) => write(name, &before),
                None => std::fs::remove_file(dir.path().join(name)).unwrap(),
            }
        }
    }

    #[test]
    fn a_collection_error_shows_the_error_not_the_tree() {
        let tree: String = (0..5000)
            .map(|i| format!("<Function test_{i}>\n"))
            .collect();
        let error = serde_json::json!({"node": "tests/test_bad.py", "detail": "ImportError while importing test module\nE   ModuleNotFoundError: No module named 'nope'"});
        let stdout = format!("{tree}{COLLECT_ERROR_MARK}{error}\n{tree}");
        let shown = collection_errors(&stdout, "");
        assert_eq!(
            shown,
            "ERROR collecting tests/test_bad.py\nImportError while importing test module\nE   ModuleNotFoundError: No module named 'nope'"
        );
        let usage = collection_errors(&tree, "ERROR: usage: unrecognized arguments: --bad");
        assert!(usage.starts_with("ERROR: usage"), "{usage}");
        assert_eq!(usage.lines().count(), 1 + COLLECTION_TAIL_LINES);
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
