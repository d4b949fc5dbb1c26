//! The pytest plugin against a real pytest project: results read from
//! pytest's own report, one testcase per pytest test, retries, granularity,
//! batching of short files.

mod common;

use std::process::Command;

use common::Project;

fn junit(project: &Project) -> quick_junit::Report {
    common::read_junit(&project.path.join(".paratest/junit.xml"))
}

#[test]
fn files_run_in_workspaces_and_every_pytest_result_is_read() {
    if !common::have_pytest() {
        return;
    }
    let project = Project::copy("pytest-project");
    let run = project
        .paratest()
        .args(["--plugin", "pytest", "-j", "3", "--message-format", "json"])
        .run()
        .expect(1);
    let results = run.results();
    assert_eq!(results.len(), 15, "one result per pytest test: {results:?}");
    assert_eq!(results["tests/test_basic.py::test_fails"], "failed");
    assert_eq!(results["tests/test_marks.py::test_skipped"], "skipped");
    assert_eq!(results["tests/test_marks.py::test_xfail"], "skipped");
    let passed = results.values().filter(|r| *r == "passed").count();
    assert_eq!(passed, 12, "{results:?}");
    common::assert_schema_valid(&project.path.join(".paratest/junit.xml"));
    let cases = common::case_shapes(&junit(&project));
    assert_eq!(cases.len(), 15, "one testcase per pytest test: {cases:?}");
    assert!(
        cases["tests/test_basic.py test_fails"]
            .starts_with("failed:0:AssertionError: arithmetic is broken")
    );
    assert_eq!(cases["tests/test_basic.py test_in_class"], "passed");
    assert_eq!(
        cases["tests/test_marks.py test_skipped"],
        "skipped:not on this platform"
    );
    assert_eq!(
        cases["tests/test_marks.py test_xfail"], "skipped:known bug 123",
        "an xfail's message is its reason, as in pytest's own report"
    );
    assert_eq!(cases["tests/test_param.py test_square[-4-16]"], "passed");
    assert!(
        !project.path.join("out.txt").exists(),
        "the source was not written to"
    );
}

#[test]
fn retries_turn_a_failing_first_attempt_into_a_flaky_testcase() {
    if !common::have_pytest() {
        return;
    }
    let project = Project::copy("pytest-project");
    let run = project
        .paratest()
        .args([
            "--plugin",
            "pytest",
            "--retries",
            "1",
            "--message-format",
            "json",
            "test_flaky",
            "test_basic",
        ])
        .env("FLAKY_DEMO", "1")
        .run()
        .expect(1);
    assert_eq!(
        run.results()["tests/test_flaky.py::test_flaky_on_demand"],
        "flaky"
    );
    assert_eq!(run.results()["tests/test_basic.py::test_fails"], "failed");
    assert_eq!(run.results()["tests/test_basic.py::test_adds"], "passed");
    let cases = common::case_shapes(&junit(&project));
    assert_eq!(cases["tests/test_flaky.py test_flaky_on_demand"], "flaky:1");
    assert!(
        cases["tests/test_basic.py test_fails"].starts_with("failed:1:"),
        "{cases:?}"
    );
    assert_eq!(
        cases["tests/test_basic.py test_adds"], "passed",
        "a passing case of a retried file stays passed"
    );
}

#[test]
fn test_granularity_schedules_single_tests_and_timings_know_both() {
    if !common::have_pytest() {
        return;
    }
    let project = Project::copy("pytest-project");
    project
        .paratest()
        .args(["--plugin", "pytest", "test_param"])
        .run()
        .expect(0);
    let timings = project.read(".paratest/timings.json");
    assert!(timings.contains("\"tests/test_param.py\""), "per file");
    assert!(
        timings.contains("\"tests/test_param.py::test_square[2-4]\""),
        "per test"
    );
    std::fs::write(
        project.path.join("paratest.toml"),
        "[plugin.pytest]\ngranularity = \"test\"\n",
    )
    .unwrap();
    let run = project
        .paratest()
        .args(["--plugin", "pytest", "-j", "2", "--message-format", "json"])
        .run()
        .expect(1);
    let results = run.results();
    assert_eq!(results.len(), 15, "{results:?}");
    assert_eq!(results["tests/test_marks.py::test_xfail"], "skipped");
    assert_eq!(results["tests/test_basic.py::test_fails"], "failed");
    assert_eq!(
        results["tests/test_basic.py::TestGroup::test_in_class"],
        "passed"
    );
    std::fs::write(
        project.path.join("paratest.toml"),
        "[plugin.pytest]\ngranularity = \"class\"\n",
    )
    .unwrap();
    let bad = project
        .paratest()
        .args(["--plugin", "pytest"])
        .run()
        .expect(2);
    assert!(bad.stderr().contains("granularity"), "{}", bad.stderr());
}

#[test]
fn short_files_share_a_pytest_process_once_timings_are_known() {
    if !common::have_pytest() {
        return;
    }
    let project = Project::copy("pytest-project");
    // Batches are for processes per file: persistent workers have none.
    std::fs::write(
        project.path.join("paratest.toml"),
        "[plugin.pytest]\npersistent = false\n",
    )
    .unwrap();
    let args = [
        "--plugin",
        "pytest",
        "-j",
        "2",
        "test_basic",
        "test_marks",
        "test_param",
        "test_env",
        "test_flaky",
    ];
    project.paratest().args(args).run().expect(1);
    let warm = project
        .paratest()
        .args(args)
        .args(["--message-format", "json"])
        .run()
        .expect(1);
    assert_eq!(warm.results().len(), 12, "the tests of five files");
    let logs = std::fs::read_dir(project.path.join(".paratest/logs")).unwrap();
    let processes = logs
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "stdout")
        })
        .count();
    assert!(
        processes < 5,
        "five short files ran in {processes} pytest processes"
    );
}

#[test]
fn a_project_without_tests_is_not_a_crash() {
    if !common::have_pytest() {
        return;
    }
    let project = Project::copy("pytest-project");
    std::fs::remove_dir_all(project.path.join("tests")).unwrap();
    std::fs::create_dir(project.path.join("tests")).unwrap();
    let run = project
        .paratest()
        .args(["--plugin", "pytest"])
        .run()
        .expect(4);
    assert!(run.stderr().contains("no tests to run"), "{}", run.stderr());
}

#[test]
fn timings_import_reads_pytest_reports_as_node_ids_and_files() {
    if !common::have_pytest() {
        return;
    }
    let project = Project::copy("pytest-project");
    let report = project.path.join("pytest-report.xml");
    let status = Command::new("python3")
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "junit_family=xunit1",
        ])
        .arg(format!("--junitxml={}", report.display()))
        .current_dir(&project.path)
        .output()
        .unwrap()
        .status;
    assert_eq!(status.code(), Some(1), "test_fails fails");
    let ours = project.path.join("ours.json");
    project
        .paratest()
        .args(["timings", "import", "-o"])
        .arg_path(&ours)
        .arg_path(&report)
        .run()
        .expect(0);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&ours).unwrap()).unwrap();
    let ids = json["tests"].as_object().unwrap();
    assert!(
        ids.contains_key("tests/test_param.py::test_square[2-4]"),
        "{ids:?}"
    );
    assert!(ids.contains_key("tests/test_basic.py::TestGroup::test_in_class"));
    assert!(ids.contains_key("tests/test_param.py"), "per file too");
    assert!(
        !ids.contains_key("tests/test_basic.py::test_fails"),
        "failures teach nothing"
    );
    // Our own report of a pytest run maps the same way.
    project
        .paratest()
        .args(["--plugin", "pytest", "test_param"])
        .run()
        .expect(0);
    let again = project.path.join("again.json");
    project
        .paratest()
        .args(["timings", "import", "-o"])
        .arg_path(&again)
        .arg_path(&project.path.join(".paratest/junit.xml"))
        .run()
        .expect(0);
    assert!(
        std::fs::read_to_string(&again)
            .unwrap()
            .contains("\"tests/test_param.py::test_square[3-9]\"")
    );
}

#[test]
fn a_quiet_addopts_does_not_hide_the_tests() {
    if !common::have_pytest() {
        return;
    }
    let project = Project::copy("pytest-project");
    std::fs::write(
        project.path.join("pytest.ini"),
        "[pytest]\ntestpaths = tests\naddopts = -q\n",
    )
    .unwrap();
    let run = project
        .paratest()
        .args(["--plugin", "pytest", "--message-format", "json"])
        .run()
        .expect(1);
    assert_eq!(run.results().len(), 15, "{:?}", run.results());
    assert_eq!(run.results()["tests/test_basic.py::test_fails"], "failed");
}

#[test]
fn collection_is_reused_until_a_file_changes() {
    if !common::have_pytest() {
        return;
    }
    let project = Project::copy("pytest-project");
    let ids = |run: &common::Run| run.results().into_keys().collect::<Vec<_>>();
    let args = ["--plugin", "pytest", "--message-format", "json"];
    let first = project.paratest().args(args).run().expect(1);
    let cache_path = project.path.join(".paratest/pytest-collection.json");
    let mut cache: serde_json::Value =
        serde_json::from_str(&project.read(".paratest/pytest-collection.json")).unwrap();
    assert_eq!(cache["node_ids"].as_array().unwrap().len(), 15);
    // A cache that lost test_env's node shows the cache is what the next run uses.
    cache["node_ids"]
        .as_array_mut()
        .unwrap()
        .retain(|id| !id.as_str().unwrap().starts_with("tests/test_env.py"));
    std::fs::write(&cache_path, cache.to_string()).unwrap();
    let cached = project.paratest().args(args).run().expect(1);
    assert_eq!(
        ids(&cached).len(),
        ids(&first).len() - 1,
        "the cached collection was used"
    );
    // Hypothesis rewrites its database on every run: not source, the cache holds.
    std::fs::create_dir_all(project.path.join(".hypothesis/examples")).unwrap();
    std::fs::write(project.path.join(".hypothesis/examples/e1"), "x").unwrap();
    let still = project.paratest().args(args).run().expect(1);
    assert_eq!(
        ids(&still),
        ids(&cached),
        "a .hypothesis write kept the cache"
    );
    // A new test file invalidates it.
    std::fs::write(
        project.path.join("tests/test_new.py"),
        "def test_new():\n    pass\n",
    )
    .unwrap();
    let fresh = project.paratest().args(args).run().expect(1);
    assert_eq!(fresh.results()["tests/test_new.py::test_new"], "passed");
    assert_eq!(ids(&fresh).len(), ids(&first).len() + 1);
    // And it can be switched off.
    std::fs::write(
        project.path.join("paratest.toml"),
        "[plugin.pytest]\ncache-collection = false\n",
    )
    .unwrap();
    std::fs::write(&cache_path, "{}").unwrap();
    project.paratest().args(args).run().expect(1);
    assert_eq!(std::fs::read_to_string(&cache_path).unwrap(), "{}");
}

#[test]
fn discovery_lists_in_pytests_own_order() {
    if !common::have_pytest() {
        return;
    }
    // Discovery lists the node ids in the order of pytest's own collection.
    let project = Project::copy("pytest-project");
    std::fs::write(
        project.path.join("paratest.toml"),
        "[plugin.pytest]\ngranularity = \"test\"\n",
    )
    .unwrap();
    // pytest asks for a directory's files before its subdirectories' but
    // collects them in name order: `sub/` comes before `test_basic.py`.
    std::fs::create_dir(project.path.join("tests/sub")).unwrap();
    std::fs::write(
        project.path.join("tests/sub/test_deep.py"),
        "def test_deep():\n    pass\n",
    )
    .unwrap();
    project
        .paratest()
        .args(["list", "--plugin", "pytest"])
        .run()
        .expect(0);
    let cache: serde_json::Value =
        serde_json::from_str(&project.read(".paratest/pytest-collection.json")).unwrap();
    let ours: Vec<&str> = cache["node_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap())
        .collect();
    let theirs = plain_collection(&project);
    assert_eq!(ours.len(), 16);
    assert_eq!(ours, theirs);
}

#[test]
fn a_hook_over_all_items_selects_as_under_pytest() {
    if !common::have_pytest() {
        return;
    }
    // Discovery is one pytest collection of the whole suite, so that a hook
    // that looks at every item (deselecting, as pytest-split's) selects
    // what pytest would.
    let project = Project::copy("pytest-project");
    std::fs::write(
        project.path.join("conftest.py"),
        "def pytest_collection_modifyitems(config, items):\n    \
         keep, drop = items[:3], items[3:]\n    \
         config.hook.pytest_deselected(items=drop)\n    \
         items[:] = keep\n",
    )
    .unwrap();
    let mut theirs = plain_collection(&project);
    theirs.sort();
    let run = project
        .paratest()
        .args(["--plugin", "pytest", "--message-format", "json"])
        .run();
    let ours: Vec<String> = run.results().into_keys().collect();
    assert_eq!(ours, theirs, "{}", run.stderr());
    assert_eq!(ours.len(), 3);
}

/// The node ids plain pytest collects in `project`, in its order.
fn plain_collection(project: &Project) -> Vec<String> {
    let plain = std::process::Command::new("python3")
        .args([
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "--rootdir=.",
            "-p",
            "no:cacheprovider",
        ])
        .current_dir(&project.path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&plain.stdout)
        .lines()
        .filter(|l| l.contains("::"))
        .map(str::to_string)
        .collect()
}

#[test]
fn paths_and_node_ids_in_pytests_configuration_are_refused_not_run_beside_every_test() {
    if !common::have_pytest() {
        return;
    }
    // Every run adds pytest's configured paths and node ids to its own ids,
    // and pytest runs the union: `tests/test_basic.py::test_adds` would have
    // the file's process run test_fails too, which it leaves out.
    let project = Project::copy("pytest-project");
    let run_with = |toml: &str, env: Option<&str>| {
        std::fs::write(project.path.join("paratest.toml"), toml).unwrap();
        let mut paratest =
            project
                .paratest()
                .args(["--plugin", "pytest", "--message-format", "json"]);
        if let Some(addopts) = env {
            paratest = paratest.env("PYTEST_ADDOPTS", addopts);
        }
        paratest.run()
    };
    let refused = |toml: &str, env: Option<&str>| {
        let run = run_with(toml, env).expect(2);
        assert!(run.results().is_empty(), "{}", run.stdout());
        run.stderr()
    };
    let node = "[plugin.pytest]\nargs = [\"tests/test_basic.py::test_adds\"]\n";
    let stderr = refused(node, None);
    assert!(
        stderr.contains("selects `tests/test_basic.py::test_adds`") && stderr.contains("-k/-m"),
        "{stderr}"
    );
    refused(&format!("{node}granularity = \"test\"\n"), None);
    refused("[plugin.pytest]\nargs = [\"tests/test_param.py\"]\n", None);
    let stderr = refused("", Some("tests/test_param.py"));
    assert!(stderr.contains("selects `tests/test_param.py`"), "{stderr}");
    // Options, and pytest.ini's testpaths, select nothing by themselves.
    let run = run_with("[plugin.pytest]\nargs = [\"-k\", \"square\"]\n", None).expect(0);
    assert_eq!(run.results().len(), 4, "{:?}", run.results());
}
