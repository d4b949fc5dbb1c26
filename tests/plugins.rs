//! The `command` plugin and external plugins, end to end: results, isolation,
//! shell-quoting, settings errors, the external protocol and every way a
//! plugin's answer can be malformed.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{Paratest, Project};

/// `SUITE NAME` of every testcase of a JUnit report.
fn testcases(path: &Path) -> Vec<String> {
    common::read_junit(path)
        .test_suites
        .iter()
        .flat_map(|suite| {
            suite
                .test_cases
                .iter()
                .map(move |case| format!("{} {}", suite.name.as_str(), case.name.as_str()))
        })
        .collect()
}

fn results(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(id, result)| (id.to_string(), result.to_string()))
        .collect()
}

/// Every file under `dir` called `name`.
fn files_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name() == name {
            found.push(path.clone());
        }
        if entry.file_type().unwrap().is_dir() {
            found.extend(files_named(&path, name));
        }
    }
    found
}

/// A throwaway project holding `files`; `.sh` files and files under `bin/` are executable.
fn temp_project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("paratest-plugin-")
        .tempdir()
        .unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        if name.ends_with(".sh") || name.starts_with("bin/") {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    dir
}

/// `PATH` with `dir` in front.
fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

const INJECTION: &str = "tests/acceptance/a b;touch INJECTED.sh";

#[test]
fn command_plugin_runs_each_file_isolated_and_shell_quoted() {
    let project = Project::copy("shell-suite");
    let workspaces = project.scratch("workspaces");
    let run = project
        .paratest()
        .args(["-j", "3", "--message-format", "json", "--keep-workspaces"])
        .arg_path_pair("--workspace-root", &workspaces)
        .run()
        .expect(1);
    assert_eq!(
        run.results(),
        results(&[
            (INJECTION, "passed"),
            ("tests/acceptance/checkout/cart.sh", "passed"),
            ("tests/acceptance/fails.sh", "failed"),
            // Both write out.txt in their cwd at the same time: only isolation saves them.
            ("tests/acceptance/fixed_file_a.sh", "passed"),
            ("tests/acceptance/fixed_file_b.sh", "passed"),
            ("tests/acceptance/login.sh", "passed"),
            ("tests/acceptance/logout.sh", "passed"),
            ("tests/acceptance/worker.sh", "passed"),
        ])
    );
    let finished: Vec<_> = run
        .events()
        .into_iter()
        .filter(|e| e["event"] == "test-finished")
        .collect();
    let cart = finished
        .iter()
        .find(|e| e["id"] == "tests/acceptance/checkout/cart.sh")
        .unwrap();
    assert_eq!(cart["group"], "tests/acceptance/checkout");
    let root = project.path.parent().unwrap();
    assert_eq!(
        files_named(root, "INJECTED.sh"),
        Vec::<PathBuf>::new(),
        "a file name reached the shell unquoted"
    );
    let cases = testcases(&project.path.join(".paratest/junit.xml"));
    assert_eq!(cases.len(), 8, "{cases:?}");
    assert!(cases.contains(&"tests/acceptance a b;touch INJECTED.sh".to_string()));
}

#[test]
fn command_placeholders_reach_the_test() {
    let project = Project::copy("shell-suite");
    std::fs::write(
        project.path.join("paratest.toml"),
        "[plugin.command]\n\
         pattern = [\"tests/acceptance/worker.sh\", \"tests/smoke/*.sh\"]\n\
         command = \"bash {file} {name} {id} {workspace}\"\n",
    )
    .unwrap();
    let run = project
        .paratest()
        .args(["--plugin", "command", "-j", "2", "--message-format", "json"])
        .run()
        .expect(0);
    assert_eq!(
        run.results(),
        results(&[
            ("tests/acceptance/worker.sh", "passed"),
            ("tests/smoke/quick.sh", "passed"),
        ])
    );
}

#[test]
fn test_pattern_flag_overrides_the_configured_pattern() {
    let project = Project::copy("shell-suite");
    let run = project
        .paratest()
        .args(["--test-pattern", "tests/smoke/*.sh"])
        .args(["--test-pattern", "./tests/acceptance/log*.sh"])
        .args(["--message-format", "json"])
        .run()
        .expect(0);
    assert_eq!(
        run.results(),
        results(&[
            ("tests/acceptance/login.sh", "passed"),
            ("tests/acceptance/logout.sh", "passed"),
            ("tests/smoke/quick.sh", "passed"),
        ])
    );
    let run = project
        .paratest()
        .args(["--test-pattern", "nothing/**/*.sh"])
        .run()
        .expect(4);
    assert!(run.stderr().contains("no tests to run"), "{}", run.stderr());
}

#[test]
fn command_settings_errors_exit_two() {
    let project = Project::copy("shell-suite");
    std::fs::write(
        project.path.join("paratest.toml"),
        "[plugin.command]\npattern = \"tests/**/*.sh\"\ncomand = \"bash {file}\"\n",
    )
    .unwrap();
    let run = project
        .paratest()
        .args(["--plugin", "command"])
        .run()
        .expect(2);
    assert!(run.stderr().contains("`comand`"), "{}", run.stderr());

    std::fs::write(project.path.join("paratest.toml"), "").unwrap();
    let run = project
        .paratest()
        .args(["--plugin", "command"])
        .run()
        .expect(2);
    assert!(
        run.stderr().contains("pattern") && run.stderr().contains("--test-pattern"),
        "{}",
        run.stderr()
    );
}

#[test]
fn retries_and_junit_work_for_the_command_plugin() {
    let project = Project::copy("shell-suite");
    let run = project
        .paratest()
        .args(["--retries", "1", "--message-format", "json"])
        .args(["--test-pattern", "tests/acceptance/*.sh"])
        .run()
        .expect(1);
    let attempts = run
        .events()
        .into_iter()
        .filter(|e| e["event"] == "test-finished" && e["id"] == "tests/acceptance/fails.sh")
        .count();
    assert_eq!(attempts, 2);
    let report = common::read_junit(&project.path.join(".paratest/junit.xml"));
    assert_eq!(report.tests, 7);
    assert_eq!(report.failures, 1);
}

#[test]
fn plugins_lists_command() {
    let run = Paratest::new(Path::new(env!("CARGO_MANIFEST_DIR")))
        .args(["plugins"])
        .run()
        .expect(0);
    assert!(
        run.stdout().lines().any(|l| l.starts_with("command ")),
        "{}",
        run.stdout()
    );
}

#[test]
fn external_plugin_on_path_runs_its_tests_with_retries_and_junit() {
    let project = Project::copy("plugin-example");
    let run = Paratest::new(&project.path.join("project"))
        .env("PATH", path_with(&project.path.join("bin")))
        .args(["--plugin", "example", "-j", "2", "--retries", "1"])
        .args(["--message-format", "json"])
        .run()
        .expect(1);
    assert_eq!(
        run.results(),
        results(&[
            ("checks/adds.sh", "passed"),
            ("checks/fails.sh", "failed"),
            ("checks/reads_readme.sh", "passed"),
        ])
    );
    let report = common::read_junit(&project.path.join("project/.paratest/junit.xml"));
    assert_eq!(report.tests, 3);
    assert_eq!(report.test_suites.len(), 1);
    assert_eq!(report.test_suites[0].name.as_str(), "checks");
}

/// The example plugin with `serve = true`: one `paratest-plugin-example
/// serve` per worker answers every test, with the same verdicts.
#[test]
fn external_plugin_that_serves_gives_per_test_verdicts_from_one_process() {
    let project = Project::copy("plugin-example");
    let dir = project.path.join("project");
    let config = std::fs::read_to_string(dir.join("paratest.toml")).unwrap();
    std::fs::write(
        dir.join("paratest.toml"),
        format!("{config}\n[plugin.example]\nserve = true\n"),
    )
    .unwrap();
    let run = Paratest::new(&dir)
        .env("PATH", path_with(&project.path.join("bin")))
        .args(["--plugin", "example", "-j", "1", "--message-format", "json"])
        .run()
        .expect(1);
    assert_eq!(
        run.results(),
        results(&[
            ("checks/adds.sh", "passed"),
            ("checks/fails.sh", "failed"),
            ("checks/reads_readme.sh", "passed"),
        ])
    );
    let failed = run
        .events()
        .into_iter()
        .find(|e| e["event"] == "test-finished" && e["id"] == "checks/fails.sh")
        .unwrap();
    assert_eq!(failed["message"], "exit status 1", "{failed}");
    // Every test's log names the server that ran it: one for the worker.
    let logs = std::fs::read_dir(dir.join(".paratest/logs")).unwrap();
    let servers: std::collections::BTreeSet<String> = logs
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "stdout"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let line = text.lines().find(|l| l.starts_with("served by"));
            line.unwrap_or_else(|| panic!("{}: {text}", p.display()))
                .to_string()
        })
        .collect();
    assert_eq!(servers.len(), 1, "{servers:?}");
    let stderr = std::fs::read_dir(dir.join(".paratest/logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.to_string_lossy().contains("fails") && p.extension().is_some_and(|x| x == "stderr")
        })
        .unwrap();
    assert!(
        std::fs::read_to_string(stderr)
            .unwrap()
            .contains("always fails")
    );
}

/// A plugin configured with `[plugin.NAME] command`, answering with both
/// kinds of line; it checks its own cwd and `PARATEST_SOURCE`, and the tests
/// check that they run in their workspace with the arguments unchanged.
#[test]
fn external_plugin_from_config_command_runs_argv_and_shell_tests() {
    let plugin = r#"
[ "$1" = discover ] || exit 9
[ "$(pwd -P)" = "$(cd "$PARATEST_SOURCE" && pwd -P)" ] || { echo "cwd is not the source" >&2; exit 1; }
echo "$PARATEST_PLUGIN_SETTINGS" | grep -q '"flavour":"sour"' || { echo "settings: $PARATEST_PLUGIN_SETTINGS" >&2; exit 1; }
echo '{"id": "argv test", "argv": ["./check.sh", "a b;touch INJECTED"]}'
echo '{"id": "shell test", "group": "sh", "shell": "./check.sh \"a b;touch INJECTED\""}'
echo '{"id": "shell fails", "group": "sh", "shell": "exit 3"}'
"#;
    let check = r#"#!/bin/sh
[ "$1" = "a b;touch INJECTED" ] || { echo "argument: $1" >&2; exit 1; }
[ "$(pwd -P)" = "$(cd "$PARATEST_WORKSPACE" && pwd -P)" ] || { echo "cwd $(pwd)" >&2; exit 1; }
[ "$(pwd -P)" != "$(cd "$PARATEST_SOURCE" && pwd -P)" ]
"#;
    let dir = temp_project(&[
        ("tools/plugin.sh", plugin),
        ("check.sh", check),
        (
            "paratest.toml",
            "[plugin.mine]\ncommand = \"sh tools/plugin.sh\"\nflavour = \"sour\"\n",
        ),
    ]);
    let run = Paratest::new(dir.path())
        .args(["--plugin", "mine", "-j", "2", "--message-format", "json"])
        .run()
        .expect(1);
    assert_eq!(
        run.results(),
        results(&[
            ("argv test", "passed"),
            ("shell fails", "failed"),
            ("shell test", "passed"),
        ])
    );
    assert_eq!(files_named(dir.path(), "INJECTED"), Vec::<PathBuf>::new());
    let mut cases = testcases(&dir.path().join(".paratest/junit.xml"));
    cases.sort();
    assert_eq!(cases, ["mine argv test", "sh shell fails", "sh shell test"]);
}

/// Runs `--plugin bad` whose discovery prints `stdout` (then exits `code`)
/// and returns its stderr after checking the exit code is 2.
fn malformed(stdout: &str, code: i32) -> String {
    let script = format!(
        "cat <<'END_OF_ANSWER'\n{stdout}END_OF_ANSWER\necho 'note from the plugin' >&2\nexit {code}\n"
    );
    let dir = temp_project(&[
        ("plugin.sh", &script),
        (
            "paratest.toml",
            "[plugin.bad]\ncommand = \"sh plugin.sh\"\n",
        ),
    ]);
    let run = Paratest::new(dir.path())
        .args(["--plugin", "bad"])
        .run()
        .expect(2);
    let stderr = run.stderr();
    assert!(stderr.contains("note from the plugin"), "{stderr}");
    stderr
}

const GOOD: &str = "{\"id\": \"ok\", \"argv\": [\"true\"]}\n\n";

#[test]
fn every_malformed_answer_is_exit_two_naming_the_line() {
    for (bad_line, why) in [
        ("{\"id\": \"x\", \"argv\": [\"true\"]", "invalid JSON"),
        ("{\"argv\": [\"true\"]}", "missing `id`"),
        ("{\"id\": \"x\"}", "neither `argv` nor `shell`"),
        (
            "{\"id\": \"x\", \"argv\": [\"true\"], \"shell\": \"true\"}",
            "both `argv` and `shell`",
        ),
        ("{\"id\": \"x\", \"argv\": []}", "`argv` is empty"),
        ("{\"id\": \"ok\", \"shell\": \"true\"}", "duplicate id `ok`"),
    ] {
        let stderr = malformed(&format!("{GOOD}{bad_line}\n"), 0);
        assert!(stderr.contains("line 3"), "{bad_line}: {stderr}");
        assert!(stderr.contains(why), "{bad_line}: {stderr}");
    }
}

#[test]
fn a_failing_or_silent_plugin_is_exit_two_with_its_stderr() {
    let stderr = malformed(GOOD, 4);
    assert!(stderr.contains("exit status: 4"), "{stderr}");
    let stderr = malformed("\n\n", 0);
    assert!(stderr.contains("printed no test"), "{stderr}");
}

#[test]
fn a_plugin_that_cannot_start_is_exit_two() {
    let dir = temp_project(&[("bin/paratest-plugin-broken", "#!/nonexistent/interpreter\n")]);
    let run = Paratest::new(dir.path())
        .env("PATH", path_with(&dir.path().join("bin")))
        .args(["--plugin", "broken"])
        .run()
        .expect(2);
    assert!(run.stderr().contains("cannot start"), "{}", run.stderr());
}
