//! pytest's verdicts are pytest's verdicts, test by test: our JUnit report of
//! `fixtures/pytest-verdicts` is compared with the one pytest itself writes
//! for the same project, case by case, and the counts of every other view
//! (console, JSON events, step summary) with the report.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::Project;
use quick_junit::{NonSuccessKind, Report, TestCaseStatus};

/// One testcase as the comparison sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Case {
    /// `passed`, `failure`, `error` or `skipped`.
    verdict: &'static str,
    /// The message, whitespace runs made one space (XML writers differ on
    /// newlines in attributes: pytest escapes them, quick-junit does not).
    message: Option<String>,
    file: Option<String>,
    line: Option<String>,
    system_out: Option<String>,
    system_err: Option<String>,
}

/// Every testcase of a report by (classname, name); two for one key fail.
fn cases(report: &Report) -> BTreeMap<(String, String), Case> {
    let squash = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut cases = BTreeMap::new();
    for suite in &report.test_suites {
        for case in &suite.test_cases {
            let (verdict, message) = match &case.status {
                TestCaseStatus::Success { .. } => ("passed", None),
                TestCaseStatus::NonSuccess { kind, message, .. } => (
                    match kind {
                        NonSuccessKind::Failure => "failure",
                        NonSuccessKind::Error => "error",
                    },
                    message.as_ref(),
                ),
                TestCaseStatus::Skipped { message, .. } => ("skipped", message.as_ref()),
            };
            let attribute = |name: &str| {
                case.extra
                    .iter()
                    .find(|(key, _)| key.as_str() == name)
                    .map(|(_, value)| value.as_str().to_string())
            };
            let key = (
                case.classname
                    .as_ref()
                    .map_or(String::new(), |c| c.as_str().to_string()),
                case.name.as_str().to_string(),
            );
            let value = Case {
                verdict,
                message: message.map(|m| squash(m.as_str())),
                file: attribute("file"),
                line: attribute("line"),
                system_out: case.system_out.as_ref().map(|s| s.as_str().to_string()),
                system_err: case.system_err.as_ref().map(|s| s.as_str().to_string()),
            };
            assert!(
                cases.insert(key.clone(), value).is_none(),
                "two testcases for {key:?}"
            );
        }
    }
    cases
}

/// Plain pytest on the project, writing its own JUnit report to `report`.
fn pytest_junit(project: &Path, report: &Path, env: &[(&str, &str)]) -> (i32, Report) {
    let output = Command::new("python3")
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(format!("--junitxml={}", report.display()))
        .envs(env.iter().copied())
        .current_dir(project)
        .output()
        .unwrap();
    (output.status.code().unwrap(), common::read_junit(report))
}

fn our_junit(project: &Project) -> Report {
    common::read_junit(&project.path.join(".paratest/junit.xml"))
}

#[test]
fn our_report_equals_pytests_own_case_by_case() {
    if !common::have_pytest() {
        return;
    }
    let project = Project::copy("pytest-verdicts");
    let theirs_path = project.scratch("pytest").join("junit.xml");
    let (their_code, theirs) = pytest_junit(&project.path, &theirs_path, &[]);
    assert_eq!(their_code, 1, "pytest says the fixture fails");
    let summary = project.scratch("summary").join("step-summary.md");
    // No --plugin: pytest is found in pyproject.toml.
    let run = project
        .paratest()
        .args(["-j", "2", "--message-format", "json"])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .run()
        .expect(1);
    let theirs = cases(&theirs);
    let ours = cases(&our_junit(&project));
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "the same testcases, named as pytest names them"
    );
    for (key, their) in &theirs {
        let our = &ours[key];
        assert_eq!(
            (our.verdict, &our.message, &our.file, &our.line),
            (their.verdict, &their.message, &their.file, &their.line),
            "{key:?}"
        );
    }
    // The cases this fixture is about, spelled out.
    let case = |classname: &str, name: &str| &ours[&(classname.to_string(), name.to_string())];
    let inherited = case("tests.test_inherit.TestChild", "test_inherited_fails");
    assert_eq!(
        inherited.verdict, "failure",
        "an inherited failing test is kept"
    );
    assert_eq!(inherited.file.as_deref(), Some("tests/base_checks.py"));
    assert_eq!(
        case("tests.test_phases", "test_setup_error").verdict,
        "error"
    );
    assert_eq!(
        case("tests.test_phases", "test_teardown_error").verdict,
        "error"
    );
    assert_eq!(
        case("tests.test_nested.TestOuter.TestInner", "test_deep").verdict,
        "passed"
    );
    let xfail = case("tests.test_marks", "test_xfail");
    assert_eq!(
        (xfail.verdict, xfail.message.as_deref()),
        ("skipped", Some("known bug 123"))
    );
    assert_eq!(
        case("tests.test_marks", "test_xpass_strict").verdict,
        "failure"
    );
    assert_eq!(
        case("tests.test_marks", "test_xpass_loose").verdict,
        "passed"
    );
    assert_eq!(
        case("tests.test_params", "test_ids[x::y]").verdict,
        "passed"
    );
    assert_eq!(
        case("tests.test_params", "test_ids[a/b]").verdict,
        "failure"
    );

    // Each testcase carries its own output only: every marker in it is its own.
    let mut with_output = 0;
    for ((_, name), our) in &ours {
        if our.verdict == "failure" || our.verdict == "error" {
            assert!(
                our.system_out.is_some() && our.system_err.is_some(),
                "{name}: no output"
            );
        }
        for (text, mark) in [
            (&our.system_out, "OUT-MARK "),
            (&our.system_err, "ERR-MARK "),
        ] {
            let Some(text) = text else { continue };
            with_output += 1;
            let owners: std::collections::BTreeSet<&str> = text
                .lines()
                .filter_map(|line| line.strip_prefix(mark))
                .collect();
            assert_eq!(owners.len(), 1, "{name}: {text}");
            let owner = owners.into_iter().next().unwrap();
            assert!(
                owner.ends_with(&format!("::{name}")),
                "{name} carries {owner}'s output"
            );
        }
    }
    assert!(with_output >= 14, "7 failing tests, two streams each");

    // Suite counts are exact, and every view counts pytest's tests.
    let report = our_junit(&project);
    let verdicts = |verdict: &str| ours.values().filter(|c| c.verdict == verdict).count();
    assert_eq!(
        (report.tests, report.failures, report.errors),
        (ours.len(), verdicts("failure"), verdicts("error"))
    );
    assert_eq!((report.tests, report.failures, report.errors), (33, 5, 2));
    for suite in &report.test_suites {
        let count = |verdict: &str| {
            suite
                .test_cases
                .iter()
                .filter(|c| match (&c.status, verdict) {
                    (TestCaseStatus::NonSuccess { kind, .. }, "error") => {
                        *kind == NonSuccessKind::Error
                    }
                    (TestCaseStatus::NonSuccess { kind, .. }, "failure") => {
                        *kind == NonSuccessKind::Failure
                    }
                    (TestCaseStatus::Skipped { .. }, "skipped") => true,
                    _ => false,
                })
                .count()
        };
        assert_eq!(
            (suite.tests, suite.failures, suite.errors, suite.skipped),
            (
                suite.test_cases.len(),
                count("failure"),
                count("error"),
                count("skipped")
            ),
            "{}",
            suite.name.as_str()
        );
    }
    let finished = run.finished();
    let counts = [
        "passed",
        "failed",
        "flaky",
        "timed_out",
        "skipped",
        "xfailed",
    ]
    .map(|key| finished[key].as_u64().unwrap());
    assert_eq!(counts, [21, 7, 0, 0, 3, 2], "{finished}");
    let results = run.results();
    assert_eq!(
        results.len(),
        33,
        "one test-finished per pytest test: {results:?}"
    );
    assert_eq!(
        results["tests/test_inherit.py::TestChild::test_inherited_fails"],
        "failed"
    );
    assert!(
        run.stderr()
            .contains("28 tests run: 21 passed, 7 failed, 3 skipped, 2 xfailed"),
        "{}",
        run.stderr()
    );
    // Our report maps back to node ids for `timings import`, classes included.
    let imported = project.scratch("import").join("timings.json");
    project
        .paratest()
        .args(["timings", "import", "-o"])
        .arg_path(&imported)
        .arg_path(&project.path.join(".paratest/junit.xml"))
        .run()
        .expect(0);
    let imported: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&imported).unwrap()).unwrap();
    for id in [
        "tests/test_nested.py::TestOuter::TestInner::test_deep",
        "tests/test_inherit.py::TestChild::test_inherited_passes",
        "tests/test_params.py::test_ids[x::y]",
        "tests/test_inherit.py",
    ] {
        assert!(imported["tests"].get(id).is_some(), "{id}: {imported}");
    }
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(
        summary.contains("| passed | failed | timed out | flaky | skipped | xfailed | not run |")
            && summary.contains("| 21 | 7 | 0 | 0 | 3 | 2 | 0 |"),
        "{summary}"
    );
}

#[test]
fn without_xunit1_there_is_no_location_as_in_pytests_report_and_the_schema_holds() {
    if !common::have_pytest() {
        return;
    }
    let project = Project::copy("pytest-verdicts");
    let pyproject = project.read("pyproject.toml");
    std::fs::write(
        project.path.join("pyproject.toml"),
        pyproject.replace("junit_family = \"xunit1\"", ""),
    )
    .unwrap();
    let theirs_path = project.scratch("pytest").join("junit.xml");
    let (_, theirs) = pytest_junit(&project.path, &theirs_path, &[]);
    project.paratest().args(["-j", "2"]).run().expect(1);
    let (theirs, ours) = (cases(&theirs), cases(&our_junit(&project)));
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    assert!(
        theirs
            .values()
            .all(|c| c.file.is_none() && c.line.is_none())
    );
    assert!(ours.values().all(|c| c.file.is_none() && c.line.is_none()));
    common::assert_schema_valid(&project.path.join(".paratest/junit.xml"));
}

#[test]
fn a_test_pytest_collected_but_never_reported_is_an_error() {
    if !common::have_pytest() {
        return;
    }
    let project = Project::copy("pytest-verdicts");
    // A conftest hook makes pytest skip `test_unreported`: pytest's own
    // report silently leaves it out and pytest exits 0 for its file.
    let theirs_path = project.scratch("pytest").join("junit.xml");
    let unreported = [("PV_UNREPORTED", "1")];
    let (_, theirs) = pytest_junit(&project.path, &theirs_path, &unreported);
    let missing = (
        "tests.test_phases".to_string(),
        "test_unreported".to_string(),
    );
    assert!(!cases(&theirs).contains_key(&missing), "pytest drops it");
    project
        .paratest()
        .args(["test_phases"])
        .env("PV_UNREPORTED", "1")
        .run()
        .expect(1);
    let ours = cases(&our_junit(&project));
    let case = &ours[&missing];
    assert_eq!(case.verdict, "error");
    assert!(
        case.message
            .as_deref()
            .unwrap()
            .contains("pytest collected this test but never reported its result"),
        "{case:?}"
    );

    // A pytest process killed mid-file: what it reported stands, the rest
    // are errors that say how it ended.
    let run = project
        .paratest()
        .args(["test_zkill", "--message-format", "json"])
        .env("PV_KILL", "1")
        .run()
        .expect(1);
    let ours = cases(&our_junit(&project));
    let zkill = |name: &str| &ours[&("tests.test_zkill".to_string(), name.to_string())];
    assert_eq!(zkill("test_before_kill").verdict, "passed");
    for name in ["test_kills", "test_hangs", "test_after_kill"] {
        let case = zkill(name);
        assert_eq!(case.verdict, "error", "{name}");
        assert!(
            case.message.as_deref().unwrap().contains("signal"),
            "{case:?}"
        );
    }
    let finished = run.finished();
    assert_eq!(
        (finished["passed"].as_u64(), finished["failed"].as_u64()),
        (Some(1), Some(3)),
        "{finished}"
    );
}

#[test]
fn a_file_that_times_out_keeps_what_pytest_reported_before_the_limit() {
    if !common::have_pytest() {
        return;
    }
    let project = Project::copy("pytest-verdicts");
    let run = project
        .paratest()
        .args(["test_zkill", "--timeout", "5s", "--message-format", "json"])
        .env("PV_HANG", "1")
        .run()
        .expect(1);
    let ours = cases(&our_junit(&project));
    let zkill = |name: &str| &ours[&("tests.test_zkill".to_string(), name.to_string())];
    assert_eq!(zkill("test_before_kill").verdict, "passed");
    assert_eq!(zkill("test_kills").verdict, "passed");
    let hung = zkill("test_hangs");
    assert_eq!(hung.verdict, "failure");
    assert!(
        hung.message.as_deref().unwrap().contains("timed out"),
        "{hung:?}"
    );
    let after = zkill("test_after_kill");
    assert_eq!(after.verdict, "error");
    assert!(
        after.message.as_deref().unwrap().contains("never ran"),
        "{after:?}"
    );
    let finished = run.finished();
    assert_eq!(
        ["passed", "failed", "timed_out"].map(|key| finished[key].as_u64().unwrap()),
        [2, 1, 1],
        "{finished}"
    );
}

#[test]
fn a_collection_error_shows_the_error_not_the_collection_tree() {
    if !common::have_pytest() {
        return;
    }
    let project = Project::copy("pytest-verdicts");
    std::fs::write(
        project.path.join("tests/test_broken.py"),
        "import module_that_is_not_there\n",
    )
    .unwrap();
    let run = project.paratest().run().expect(3);
    let stderr = run.stderr();
    assert!(
        stderr.contains("ERROR collecting tests/test_broken.py")
            && stderr.contains("No module named 'module_that_is_not_there'"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("<Module") && !stderr.contains("<Function"),
        "the collection tree is not shown: {stderr}"
    );
    // The reporter's own error, not the end of pytest's output.
    assert!(
        !stderr.contains("short test summary info") && !stderr.contains("Interrupted:"),
        "{stderr}"
    );
}

#[test]
fn pytest_is_detected_in_pyproject_setup_cfg_and_tox_ini() {
    if !common::have_pytest() {
        return;
    }
    let project = Project::copy("pytest-verdicts");
    let listed = |project: &Project| -> Vec<String> {
        let run = project
            .paratest()
            .args(["list", "--message-format", "json"])
            .run()
            .expect(0);
        run.events()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    let from_pyproject = listed(&project);
    assert!(
        from_pyproject.contains(&"tests/test_inherit.py".to_string()),
        "{from_pyproject:?}"
    );
    std::fs::remove_file(project.path.join("pyproject.toml")).unwrap();
    for (file, text) in [
        (
            "setup.cfg",
            "[metadata]\nname = demo\n\n[tool:pytest]\ntestpaths = tests\n",
        ),
        (
            "tox.ini",
            "[tox]\nenv_list = py3\n\n[pytest]\ntestpaths = tests\n",
        ),
    ] {
        std::fs::write(project.path.join(file), text).unwrap();
        assert_eq!(listed(&project), from_pyproject, "{file}");
        std::fs::remove_file(project.path.join(file)).unwrap();
    }
    let none = project.paratest().args(["list"]).run().expect(2);
    assert!(
        none.stderr().contains("choose one with --plugin"),
        "{}",
        none.stderr()
    );
}
