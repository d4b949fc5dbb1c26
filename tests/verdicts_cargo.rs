//! Every Cargo verdict is libtest's own: what `--` selects, an empty run,
//! reports of runs that could not happen, panic messages, the environment
//! of `cargo test`, Cargo's package selection, and counts that agree
//! between the console, the JSON events, the step summary and the JUnit file.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use cargo_paratest::libtest;
use common::{Project, assert_schema_valid, case_shapes, read_junit};

fn json_run(project: &Project, args: &[&str]) -> common::Run {
    project
        .paratest()
        .args(["-j", "2", "--message-format", "json"])
        .args(args)
        .run()
}

fn results(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(id, result)| (id.to_string(), result.to_string()))
        .collect()
}

/// `list --message-format json` ids.
fn listed(project: &Project, args: &[&str]) -> Vec<String> {
    let run = project
        .paratest()
        .args(["list", "--message-format", "json"])
        .args(args)
        .run()
        .expect(0);
    run.events()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn skip_after_the_double_dash_leaves_tests_out_of_run_and_list() {
    let project = Project::copy("faults");
    let skip = [
        "--",
        "--skip",
        "always_fails",
        "--skip=hangs_with_child",
        "--skip",
        "flaky",
    ];
    let run = json_run(&project, &skip).expect(0);
    assert_eq!(
        run.results(),
        results(&[
            ("faults::faults garbage_output", "passed"),
            ("faults::faults ignored_test", "skipped"),
            ("faults::faults passes", "passed"),
        ]),
        "{}",
        run.stderr()
    );
    assert_eq!(
        listed(&project, &skip),
        ["faults::faults garbage_output", "faults::faults passes"]
    );
    // `--exact`: only the names equal to a pattern are skipped.
    let exact = ["--", "--exact", "--skip", "passe", "--skip", "passes"];
    assert!(!listed(&project, &exact).contains(&"faults::faults passes".to_string()));
    let substring = listed(&project, &["--", "--skip", "garbage"]);
    assert!(!substring.iter().any(|id| id.contains("garbage")));
    // Our own flag means the same.
    assert_eq!(
        listed(
            &project,
            &[
                "--skip",
                "always_fails",
                "--skip",
                "hangs",
                "--skip",
                "flaky"
            ]
        ),
        ["faults::faults garbage_output", "faults::faults passes"]
    );
}

#[test]
fn ignored_after_the_double_dash_runs_the_ignored_tests_only() {
    let project = Project::copy("faults");
    let run = json_run(&project, &["--", "--ignored"]).expect(0);
    assert_eq!(
        run.results(),
        results(&[("faults::faults ignored_test", "passed")]),
        "{}",
        run.stderr()
    );
    assert_eq!(run.finished()["passed"], 1);
    assert_eq!(
        listed(&project, &["--", "--ignored"]),
        ["faults::faults ignored_test"]
    );

    let run = json_run(
        &project,
        &[
            "--",
            "--include-ignored",
            "--skip",
            "hangs",
            "--skip",
            "always",
            "--skip",
            "flaky",
        ],
    )
    .expect(0);
    assert_eq!(
        run.results(),
        results(&[
            ("faults::faults garbage_output", "passed"),
            ("faults::faults ignored_test", "passed"),
            ("faults::faults passes", "passed"),
        ])
    );
    // Other arguments still reach every test process; `--nocapture`, which
    // every process already gets, is not given twice (libtest refuses that).
    let run = json_run(
        &project,
        &["passes", "--", "--test-threads", "1", "--nocapture"],
    )
    .expect(0);
    assert_eq!(
        run.results(),
        results(&[("faults::faults passes", "passed")])
    );
}

#[test]
fn a_process_that_never_reports_its_test_is_an_error_and_no_timing() {
    let project = Project::copy("verdicts");
    let run = json_run(&project, &["exits_early"]).expect(1);
    assert_eq!(
        run.results(),
        results(&[("verdicts::verdicts exits_early", "failed")])
    );
    let finished = run
        .events()
        .into_iter()
        .find(|e| e["event"] == "test-finished" && e["id"] == "verdicts::verdicts exits_early")
        .unwrap();
    let message = finished["message"].as_str().unwrap();
    assert!(
        message.contains("exit status 0 before libtest reported a result"),
        "{message}"
    );
    let timings = project.path.join(".paratest/timings.json");
    let text = std::fs::read_to_string(&timings).unwrap_or_default();
    assert!(
        !text.contains("exits_early"),
        "a false pass was timed: {text}"
    );
}

#[test]
fn an_empty_selection_exits_4_unless_no_tests_says_otherwise() {
    let project = Project::copy("verdicts");
    let run = project.paratest().args(["no_such_test"]).run().expect(4);
    assert!(run.stderr().contains("no tests to run"), "{}", run.stderr());
    project
        .paratest()
        .args(["no_such_test", "--no-tests", "pass"])
        .run()
        .expect(0);
    let run = project
        .paratest()
        .args(["no_such_test", "--no-tests", "warn"])
        .run()
        .expect(0);
    assert!(
        run.stderr().contains("warning: no tests to run"),
        "{}",
        run.stderr()
    );
    // As a setting of the environment and of paratest.toml too.
    project
        .paratest()
        .args(["no_such_test"])
        .env("PARATEST_NO_TESTS", "pass")
        .run()
        .expect(0);
    std::fs::write(
        project.path.join("paratest.toml"),
        "[profile.default]\nno-tests = \"warn\"\n",
    )
    .unwrap();
    project.paratest().args(["no_such_test"]).run().expect(0);
    project
        .paratest()
        .args(["no_such_test", "--no-tests", "fail"])
        .run()
        .expect(4);
    std::fs::remove_file(project.path.join("paratest.toml")).unwrap();
    let run = project
        .paratest()
        .args(["--no-tests", "sometimes"])
        .run()
        .expect(2);
    assert!(run.stderr().contains("--no-tests"), "{}", run.stderr());

    // Only ignored tests selected: nothing runs.
    let run = json_run(&project, &["ignored_one"]).expect(4);
    assert_eq!(run.finished()["exit_code"], 4);

    // A mistyped subcommand becomes a filter: say so, and name the subcommands.
    let run = project.paratest().args(["lsit"]).run().expect(4);
    let stderr = run.stderr();
    assert!(stderr.contains("`lsit`"), "{stderr}");
    assert!(
        stderr.contains("list") && stderr.contains("plugins") && stderr.contains("timings"),
        "{stderr}"
    );

    // A shard that gets none of a non-empty suite only warns.
    let run = project
        .paratest()
        .args(["passes", "--partition", "2/2"])
        .run()
        .expect(0);
    assert!(
        run.stderr().contains("warning: shard 2/2"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_failed_build_replaces_the_earlier_report_with_an_error_naming_it() {
    let project = Project::copy("failing");
    let junit = project.path.join(".paratest/junit.xml");
    project.paratest().args(["-j", "2"]).run().expect(1);
    assert_eq!(read_junit(&junit).tests, 5);

    let lib = project.path.join("src/lib.rs");
    let mut source = std::fs::read_to_string(&lib).unwrap();
    source.push_str("\npub fn broken() -> u32 { \"not a number\" }\n");
    std::fs::write(&lib, source).unwrap();
    project.paratest().args(["-j", "2"]).run().expect(3);
    assert_schema_valid(&junit);
    let report = read_junit(&junit);
    assert_eq!((report.tests, report.errors), (1, 1));
    let shapes = case_shapes(&report);
    let (key, shape) = shapes.iter().next().unwrap();
    assert_eq!(key, "cargo-paratest build");
    assert!(shape.starts_with("error:0:"), "{shape}");
    assert!(shape.contains("error[E0308]: mismatched types"), "{shape}");
    let text = std::fs::read_to_string(&junit).unwrap();
    assert!(text.contains("src/lib.rs"), "{text}");
}

#[test]
fn a_failed_setup_or_no_workspace_writes_an_error_report() {
    let project = Project::copy("verdicts");
    let junit = project.path.join(".paratest/junit.xml");
    project.paratest().args(["passes"]).run().expect(0);
    assert_eq!(read_junit(&junit).tests, 1);

    project
        .paratest()
        .args(["passes", "--setup", "echo database is down >&2; exit 7"])
        .run()
        .expect(3);
    assert_schema_valid(&junit);
    let shapes = case_shapes(&read_junit(&junit));
    assert_eq!(shapes.len(), 1, "{shapes:?}");
    let shape = &shapes["cargo-paratest setup"];
    assert!(shape.starts_with("error:0:"), "{shape}");
    let text = std::fs::read_to_string(&junit).unwrap();
    assert!(text.contains("database is down"), "{text}");

    project
        .paratest()
        .args([
            "passes",
            "--setup-workspace",
            "echo no disk left >&2; exit 1",
        ])
        .run()
        .expect(3);
    assert_schema_valid(&junit);
    let report = read_junit(&junit);
    let shapes = case_shapes(&report);
    assert!(
        shapes["cargo-paratest workspaces"].starts_with("error:0:"),
        "{shapes:?}"
    );
    assert_eq!(report.errors, 1);

    // A usage error once the source is known replaces the report too.
    project.paratest().args(["passes"]).run().expect(0);
    project.paratest().args(["-j", "0"]).run().expect(2);
    let shapes = case_shapes(&read_junit(&junit));
    assert!(
        shapes["cargo-paratest usage"].contains("--workers"),
        "{shapes:?}"
    );
}

#[test]
fn the_failure_message_is_the_panic_message_with_its_location() {
    let project = Project::copy("verdicts");
    let junit = project.path.join(".paratest/junit.xml");
    let run = project
        .paratest()
        .args(["-j", "2", "fails_assert_eq"])
        .env("RUST_BACKTRACE", "1")
        .run()
        .expect(1);
    assert_schema_valid(&junit);
    let report = read_junit(&junit);
    let case = &report.test_suites[0].test_cases[0];
    let quick_junit::TestCaseStatus::NonSuccess {
        message,
        description,
        ..
    } = &case.status
    else {
        panic!("not a failure: {:?}", case.status)
    };
    let message = message.as_ref().unwrap().as_str();
    assert_eq!(
        message,
        "assertion `left == right` failed: expected 2, got 3\n  left: 2\n right: 3"
    );
    let trace = description.as_ref().unwrap().as_str();
    assert!(trace.contains("tests/verdicts.rs:9:5"), "{trace}");

    // The console's failure block starts with the panic, backtrace or not.
    let stderr = run.stderr();
    let block: Vec<&str> = stderr
        .lines()
        .skip_while(|line| !line.starts_with("--- FAILED"))
        .take(4)
        .collect();
    assert!(
        block[0].ends_with("assertion `left == right` failed: expected 2, got 3"),
        "{stderr}"
    );
    assert!(
        block[1..].iter().any(|line| line.contains("left: 2")),
        "{stderr}"
    );
}

/// The parser against what this machine's libtest prints, not a copy of it.
#[test]
fn the_libtest_parser_reads_the_installed_toolchain() {
    let project = Project::copy("verdicts");
    let target = project.scratch("target");
    let build = Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
        .args(["test", "--no-run", "--message-format=json"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(&project.path)
        .output()
        .unwrap();
    assert!(build.status.success());
    let executable = String::from_utf8_lossy(&build.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["target"]["name"] == "verdicts" && m["target"]["kind"][0] == "test")
        .find_map(|m| m["executable"].as_str().map(String::from))
        .unwrap();
    let run = |args: &[&str], backtrace: &str| {
        let output = Command::new(&executable)
            .args(args)
            .env("RUST_BACKTRACE", backtrace)
            .current_dir(&project.path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status, stdout, stderr)
    };
    let (_, list, _) = run(&["--list", "--format", "terse"], "0");
    assert_eq!(
        libtest::read_list(&list),
        [
            "exits_early",
            "fails_assert_eq",
            "ignored_one",
            "passes",
            "returns_err"
        ]
    );
    let (_, list, _) = run(&["--list", "--format", "terse", "--ignored"], "0");
    assert_eq!(libtest::read_list(&list), ["ignored_one"]);
    for backtrace in ["0", "1"] {
        let (status, stdout, stderr) =
            run(&["--exact", "fails_assert_eq", "--nocapture"], backtrace);
        let report = libtest::read_run(&stdout);
        assert_eq!(report.running, Some(1));
        assert_eq!(
            report.results,
            [("fails_assert_eq".to_string(), libtest::LineResult::Failed)]
        );
        let summary = report.summary.unwrap();
        assert_eq!(
            (summary.passed, summary.failed, summary.filtered_out),
            (0, 1, 4)
        );
        let panic = libtest::test_panic("fails_assert_eq", &[&stderr, &stdout]).unwrap();
        assert_eq!(
            panic.message,
            "assertion `left == right` failed: expected 2, got 3\n  left: 2\n right: 3"
        );
        assert_eq!(panic.location().as_deref(), Some("tests/verdicts.rs:9:5"));
        let (verdict, message) = libtest::judge("fails_assert_eq", status, &stdout, &stderr);
        assert_eq!(verdict, cargo_paratest::model::AttemptStatus::Failed);
        assert_eq!(message, panic.message);
    }
    // Captured (no --nocapture): the panic is in libtest's failures section.
    let (_, stdout, stderr) = run(&["--exact", "fails_assert_eq"], "0");
    let panic = libtest::test_panic("fails_assert_eq", &[&stderr, &stdout]).unwrap();
    assert!(
        panic
            .message
            .starts_with("assertion `left == right` failed")
    );

    for extra in ["--quiet", "--show-output"] {
        let (status, stdout, stderr) = run(&["--exact", "passes", "--nocapture", extra], "0");
        assert_eq!(
            libtest::judge("passes", status, &stdout, &stderr).0,
            cargo_paratest::model::AttemptStatus::Passed,
            "{extra}: {stdout}"
        );
    }
    // Asked for one test, told about none: an error, not a pass.
    let (status, stdout, stderr) = run(&["--exact", "passes", "--skip", "passes"], "0");
    assert!(status.success());
    let (verdict, message) = libtest::judge("passes", status, &stdout, &stderr);
    assert_eq!(verdict, cargo_paratest::model::AttemptStatus::Failed);
    assert!(message.contains("libtest ran no test"), "{message}");
    let (status, stdout, stderr) = run(&["--exact", "returns_err", "--nocapture"], "0");
    assert_eq!(
        libtest::judge("returns_err", status, &stdout, &stderr),
        (
            cargo_paratest::model::AttemptStatus::Failed,
            "Error: \"the answer is not 42\"".to_string()
        )
    );
    let (status, stdout, stderr) = run(&["--exact", "exits_early"], "0");
    assert!(status.success());
    assert_eq!(
        libtest::judge("exits_early", status, &stdout, &stderr).0,
        cargo_paratest::model::AttemptStatus::Failed
    );
}

fn read_dump(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_test_sees_the_environment_of_cargo_test() {
    let project = Project::copy("cargo-env");
    let cargo_dump = project.scratch("cargo-dump");
    let ours_dump = project.scratch("ours-dump");
    let cargo_test = Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
        .args(["test", "--test", "dump", "--", "--exact", "dumps_env"])
        .env("ENV_DUMP", &cargo_dump)
        .env_remove("CARGO_TARGET_DIR")
        .current_dir(&project.path)
        .output()
        .unwrap();
    assert!(cargo_test.status.success(), "{cargo_test:?}");
    let json = project
        .paratest()
        .args(["-j", "1", "--message-format", "json"])
        .env("ENV_DUMP", &ours_dump)
        .run()
        .expect(0);
    assert_eq!(json.results()["cargo-env::dump runs_the_binary"], "passed");

    let theirs = read_dump(&cargo_dump.join("dump.env"));
    let ours = read_dump(&ours_dump.join("dump.env"));
    // Paths into the package (the source's or the workspace's copy) are
    // compared relative to it.
    let source = project.path.display().to_string();
    let relative = |dump: &BTreeMap<String, String>, value: &str| -> String {
        value
            .replace(dump["CWD"].as_str(), "<package>")
            .replace(source.as_str(), "<package>")
    };
    for (key, value) in &theirs {
        if !key.starts_with("CARGO") {
            continue;
        }
        let Some(our_value) = ours.get(key) else {
            panic!(
                "cargo test sets {key}, cargo-paratest does not\ncargo: {theirs:#?}\nours: {ours:#?}"
            )
        };
        assert_eq!(
            relative(&ours, our_value),
            relative(&theirs, value),
            "{key}"
        );
    }
    for key in [
        "CARGO_BIN_EXE_env-tool",
        "CARGO_BIN_EXE_second",
        "CARGO_PKG_VERSION_PRE",
        "CARGO_PKG_RUST_VERSION",
        "CARGO_PKG_AUTHORS",
        "CARGO_MANIFEST_PATH",
    ] {
        assert!(ours.contains_key(key), "{key} missing: {ours:#?}");
    }
    assert_eq!(ours["CARGO_PKG_VERSION_PRE"], "beta.4");
    assert_eq!(ours["CARGO_PKG_RUST_VERSION"], "1.70");
    assert_eq!(ours["CARGO_CRATE_NAME"], "dump");
    assert_eq!(ours["CARGO_PRIMARY_PACKAGE"], "1");
    assert!(Path::new(&ours["CARGO_BIN_EXE_second"]).is_file());
    assert!(
        ours["CARGO_TARGET_TMPDIR"].ends_with("target/tmp"),
        "{ours:#?}"
    );
    // The working directory is the workspace's copy, and PWD says so.
    assert_eq!(ours["PWD"], ours["CWD"]);
    assert_eq!(ours["CARGO_MANIFEST_DIR"], ours["CWD"]);
    assert_ne!(
        ours["CWD"], theirs["CWD"],
        "ran in a workspace, not the source"
    );
}

/// Ids of the tests a run ran (JSON), from `dir`.
fn ran_from(dir: &Path, args: &[&str]) -> Vec<String> {
    let run = common::Paratest::new(dir)
        .args(["-j", "2", "--message-format", "json"])
        .args(args)
        .run()
        .expect(0);
    run.results().into_keys().collect()
}

#[test]
fn cargo_package_selection_follows_cargo_test() {
    let project = Project::copy("workspace");
    let alpha = project.path.join("crates/alpha");
    let only = |ids: &[String], package: &str| ids.iter().all(|id| id.starts_with(package));
    let ids = ran_from(&alpha, &[]);
    assert!(ids.len() == 4 && only(&ids, "alpha"), "{ids:?}");
    assert_eq!(ran_from(&alpha, &["--workspace"]).len(), 8);
    let ids = ran_from(&alpha, &["-p", "beta"]);
    assert!(ids.len() == 4 && only(&ids, "beta"), "{ids:?}");
    assert_eq!(ran_from(&project.path, &[]).len(), 8);
    let ids = ran_from(&project.path, &["--workspace", "--exclude", "alpha"]);
    assert!(ids.len() == 4 && only(&ids, "beta"), "{ids:?}");
    let ids = ran_from(
        &project.path,
        &["--manifest-path", "crates/beta/Cargo.toml"],
    );
    assert!(ids.len() == 4 && only(&ids, "beta"), "{ids:?}");
}

/// `N passed, N failed, ..., N skipped` from the console's summary line.
fn console_counts(stderr: &str) -> BTreeMap<String, u64> {
    let line = stderr
        .lines()
        .find(|line| line.starts_with("Summary ["))
        .unwrap_or_else(|| panic!("no summary line: {stderr}"));
    let counts = line.split_once("tests run: ").unwrap().1;
    counts
        .split(", ")
        .map(|part| {
            let (number, what) = part.split_once(' ').unwrap();
            (what.replace(' ', "_"), number.parse().unwrap())
        })
        .collect()
}

#[test]
fn one_report_with_the_same_numbers_everywhere() {
    let project = Project::copy("faults");
    let summary = project.scratch("summary").join("step.md");
    let junit = project.path.join(".paratest/junit.xml");
    let started = Instant::now();
    let run = project
        .paratest()
        .args(["-j", "2", "--message-format", "json"])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args(["--", "--skip", "hangs_with_child"])
        .run()
        .expect(1);
    let elapsed = started.elapsed().as_secs_f64();

    let finished = run.finished();
    let json = |key: &str| finished[key].as_u64().unwrap();
    let (passed, failed, skipped) = (json("passed"), json("failed"), json("skipped"));
    // passes, garbage_output; flaky_once and always_fails; ignored_test.
    assert_eq!((passed, failed, skipped), (2, 2, 1), "{finished}");

    let console = console_counts(&run.stderr());
    assert_eq!(
        (console["passed"], console["failed"], console["skipped"]),
        (passed, failed, skipped)
    );

    let markdown = std::fs::read_to_string(&summary).unwrap();
    let row = markdown
        .lines()
        .skip_while(|line| !line.starts_with("|---"))
        .nth(1)
        .unwrap();
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    // | passed | failed | timed out | flaky | skipped | not run | time |
    assert_eq!(
        (cells[1], cells[2], cells[5]),
        (
            passed.to_string().as_str(),
            failed.to_string().as_str(),
            skipped.to_string().as_str()
        ),
        "{markdown}"
    );

    assert_schema_valid(&junit);
    let report = read_junit(&junit);
    let shapes = case_shapes(&report);
    let count = |prefix: &str| shapes.values().filter(|s| s.starts_with(prefix)).count() as u64;
    assert_eq!(
        (count("passed"), count("failed"), count("skipped")),
        (passed, failed, skipped),
        "{shapes:?}"
    );
    assert_eq!(report.tests as u64, passed + failed + skipped);
    assert_eq!(report.failures as u64, failed);
    // Skipped testcases took no time; the root's time is the run's wall clock.
    for suite in &report.test_suites {
        for case in &suite.test_cases {
            if matches!(case.status, quick_junit::TestCaseStatus::Skipped { .. }) {
                assert_eq!(case.time, Some(std::time::Duration::ZERO), "{case:?}");
            }
        }
    }
    let root = report.time.unwrap().as_secs_f64();
    let wall = finished["duration"].as_f64().unwrap();
    assert!((root - wall).abs() < 0.001, "root {root} vs run {wall}");
    let seconds = |text: &str| -> f64 { text.trim_end_matches('s').parse().unwrap() };
    let stderr = run.stderr();
    let console_wall = stderr
        .lines()
        .find_map(|line| line.strip_prefix("Summary ["))
        .and_then(|rest| rest.split_once(']'))
        .map(|(time, _)| seconds(time))
        .unwrap();
    assert!(
        (console_wall - wall).abs() < 0.001,
        "console {console_wall} vs run {wall}"
    );
    assert!(
        (seconds(cells[7]) - wall).abs() < 0.001,
        "step summary {} vs run {wall}",
        cells[7]
    );
    let tests: f64 = report
        .test_suites
        .iter()
        .map(|s| s.time.unwrap_or_default().as_secs_f64())
        .sum();
    assert!(
        root > tests && root <= elapsed,
        "root {root}, tests {tests}, elapsed {elapsed}"
    );
}
