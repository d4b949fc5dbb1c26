//! The command line cargo and nextest users already type: cargo's own flags
//! reach the build, run flags, help text, filtersets and per-test overrides.

mod common;

use common::Project;

/// `--locked` reaches `cargo test --no-run`: a Cargo.lock that the manifest
/// no longer matches fails the build (exit 3, cargo's error in the report),
/// and the same project builds and passes without it.
#[test]
fn locked_fails_on_a_stale_lock_file_as_cargo_test_does() {
    let project = Project::copy("basic");
    let manifest = project.path.join("Cargo.toml");
    let text = project.read("Cargo.toml");
    std::fs::write(
        &manifest,
        text.replace("version = \"0.1.0\"", "version = \"0.2.0\""),
    )
    .unwrap();
    let junit = project.path.join("locked.xml");
    let run = project
        .paratest()
        .args(["--locked", "-j", "2"])
        .arg_path_pair("--junit", &junit)
        .run()
        .expect(3);
    assert!(
        run.stderr().contains("--locked"),
        "cargo's error names --locked: {}",
        run.stderr()
    );
    let report = std::fs::read_to_string(&junit).unwrap();
    assert!(
        report.contains("--locked"),
        "the report holds cargo's error: {report}"
    );

    project.paratest().args(["-j", "2"]).run().expect(0);
    // The plain build updated the lock file: now --locked builds too.
    project
        .paratest()
        .args(["--locked", "-j", "2"])
        .run()
        .expect(0);
}

/// Every cargo flag is accepted and given to cargo in cargo's spelling: a
/// `--config` value cargo reads changes where it builds.
#[test]
fn cargo_flags_reach_cargo() {
    let project = Project::copy("basic");
    let target = project.scratch("config-target");
    project
        .paratest()
        .args([
            "list",
            "--offline",
            "--frozen",
            "--build-jobs",
            "1",
            "--cargo-quiet",
        ])
        .arg_path_pair(
            "--config",
            std::path::Path::new(&format!("build.target-dir=\"{}\"", target.display())),
        )
        .run()
        .expect(0);
    assert!(
        target.join("debug").is_dir(),
        "--config build.target-dir was used"
    );

    let run = project
        .paratest()
        .args(["list", "--bin", "basic", "--message-format", "json"])
        .run()
        .expect(0);
    let groups: std::collections::BTreeSet<String> = run
        .events()
        .iter()
        .filter_map(|e| e["group"].as_str().map(str::to_string))
        .collect();
    assert_eq!(groups.into_iter().collect::<Vec<_>>(), ["basic::bin/basic"]);

    // Cargo's -v: its own log, which is otherwise kept back for `list`.
    let verbose = project
        .paratest()
        .args(["list", "--cargo-verbose"])
        .run()
        .expect(0);
    assert!(
        verbose.stderr().contains("Fresh basic") || verbose.stderr().contains("Running `"),
        "{}",
        verbose.stderr()
    );
}

/// Final results by test id of a `--message-format json` run.
fn failures(run: &common::Run) -> usize {
    run.results().values().filter(|r| *r == "failed").count()
}

/// `--max-fail N` stops scheduling at the Nth definite failure; `-j 1` makes
/// the count exact. `--no-fail-fast` is accepted and undoes `--fail-fast`.
#[test]
fn max_fail_and_no_fail_fast() {
    let project = Project::copy("faults");
    let run = |extra: &[&str]| {
        project
            .paratest()
            .args([
                "-j",
                "1",
                "--skip",
                "hangs_with_child",
                "--message-format",
                "json",
            ])
            .args(extra)
            .run()
            .expect(1)
    };
    assert_eq!(failures(&run(&["--max-fail", "1"])), 1);
    assert_eq!(failures(&run(&["--max-fail", "2"])), 2);
    assert_eq!(failures(&run(&["--fail-fast"])), 1);
    let all = run(&["--fail-fast", "--no-fail-fast"]);
    assert_eq!(failures(&all), 2);
    assert_eq!(
        all.results().len(),
        5,
        "every test ran: {:?}",
        all.results()
    );
    assert_eq!(all.finished()["not_run"], 0, "{:?}", all.finished());
    let bad = project.paratest().args(["--max-fail", "0"]).run().expect(2);
    assert!(bad.stderr().contains("--max-fail"), "{}", bad.stderr());
}

/// `--no-capture` streams each line of a test's output as it comes, whole
/// and prefixed with the test's id, while the logs keep it as before.
#[test]
fn no_capture_streams_prefixed_lines() {
    let project = Project::copy("failing");
    let run = project
        .paratest()
        .args(["--no-capture", "-j", "2"])
        .run()
        .expect(1);
    let stderr = run.stderr();
    for line in [
        "stdout line 1 from prints_then_passes",
        "stdout line 2 from prints_then_passes",
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l == format!("failing::checks prints_then_passes: {line}")),
            "{line} streamed with its prefix:\n{stderr}"
        );
    }
    // No line of one test's output is ever cut or joined with another's.
    for line in stderr
        .lines()
        .filter(|l| l.contains("from prints_then_passes"))
    {
        assert!(
            line.starts_with("failing::checks prints_then_passes: "),
            "{line}"
        );
    }
    let quiet = project.paratest().args(["-j", "2"]).run().expect(1);
    assert!(
        !quiet.stderr().contains("prints_then_passes: stdout line 1"),
        "captured without the flag"
    );
}

/// `-q` leaves out passing tests' lines, `-v` adds a line per start; `--color`
/// wins over NO_COLOR and CARGO_TERM_COLOR.
#[test]
fn status_levels_and_color() {
    let project = Project::copy("failing");
    let normal = project.paratest().args(["-j", "2"]).run().expect(1);
    assert!(normal.stderr().contains("PASS"), "{}", normal.stderr());
    assert!(!normal.stderr().contains("START"));
    let quiet = project.paratest().args(["-j", "2", "-q"]).run().expect(1);
    assert!(!quiet.stderr().contains("PASS"), "{}", quiet.stderr());
    assert!(quiet.stderr().contains("FAIL"), "{}", quiet.stderr());
    assert!(!quiet.stderr().contains("Slowest tests"));
    let verbose = project.paratest().args(["-j", "2", "-v"]).run().expect(1);
    assert_eq!(
        verbose.stderr().matches("START").count(),
        5,
        "{}",
        verbose.stderr()
    );
    // The harness sets NO_COLOR=1.
    let always = project
        .paratest()
        .args(["-j", "2", "--color", "always"])
        .run()
        .expect(1);
    assert!(always.stderr().contains("\x1b["), "{}", always.stderr());
    assert!(!normal.stderr().contains("\x1b["));
    let never = project
        .paratest()
        .env("CARGO_TERM_COLOR", "always")
        .args(["-j", "2", "--color", "never"])
        .run()
        .expect(1);
    assert!(!never.stderr().contains("\x1b["));
    let env = project
        .paratest()
        .env("CARGO_TERM_COLOR", "always")
        .args(["-j", "2"])
        .run()
        .expect(1);
    assert!(env.stderr().contains("\x1b["));
}

/// One test on one worker is "1 test" and "1 worker".
#[test]
fn messages_count_in_the_singular() {
    let project = Project::copy("basic");
    let run = project
        .paratest()
        .args(["--exact", "tests::adds"])
        .run()
        .expect(0);
    let stderr = run.stderr();
    assert!(stderr.contains("Starting 1 test on 1 worker ("), "{stderr}");
    assert!(stderr.contains("] 1 test run: 1 passed"), "{stderr}");
    assert!(!stderr.contains("1 tests") && !stderr.contains("1 workers"));
    let list = project
        .paratest()
        .args(["list", "--exact", "tests::adds"])
        .run()
        .expect(0);
    assert!(list.stderr().contains("1 test\n"), "{}", list.stderr());
    let ignored = project
        .paratest()
        .args(["ignored_but_passes"])
        .run()
        .expect(4);
    assert!(
        ignored.stderr().contains("the 1 test selected is ignored"),
        "{}",
        ignored.stderr()
    );
    let auto = project
        .paratest()
        .args(["list", "--partition", "auto"])
        .run()
        .expect(2);
    assert!(
        !auto.stderr().contains("--partition auto: --partition auto"),
        "{}",
        auto.stderr()
    );
}

/// The help text, pinned: `run` is the default, the headings are honest.
/// (A snapshot shows a reviewer the whole text a user reads; a change to it
/// is then a visible diff in `tests/snapshots/`.)
#[test]
fn help_text() {
    let help = |args: &[&str]| {
        let project_dir = tempfile::tempdir().unwrap();
        common::Paratest::new(project_dir.path())
            .env("COLUMNS", "100")
            .args(args)
            .run()
            .expect(0)
            .stdout()
    };
    let top = help(&["--help"]);
    assert!(top.contains("Without a subcommand, `run` is meant"));
    insta::assert_snapshot!("top_help", top);
    let run = help(&["run", "--help"]);
    for heading in [
        "Selection:",
        "Workers and isolation:",
        "Hooks:",
        "Retries and timeouts:",
        "Reports:",
        "Cargo:",
    ] {
        assert!(run.contains(heading), "{heading}");
    }
    // From the heading to the next one.
    let cargo_section: String = run[run.find("\nCargo:").unwrap() + 1..]
        .lines()
        .skip(1)
        .take_while(|line| line.is_empty() || line.starts_with(' '))
        .collect::<Vec<_>>()
        .join("\n");
    for own in ["--workers", "--retries", "--junit", "--timeout"] {
        assert!(!cargo_section.contains(own), "{own} is not a Cargo option");
    }
    insta::assert_snapshot!("run_help", run);
}

/// `completions SHELL` prints a script naming our flags; `--version` names the commit.
#[test]
fn completions_and_version() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let script = common::Paratest::new(dir.path())
            .args(["completions", shell])
            .run()
            .expect(0)
            .stdout();
        assert!(script.contains("max-fail"), "{shell}: {script}");
    }
    let bad = common::Paratest::new(dir.path())
        .args(["completions", "tcsh"])
        .run()
        .expect(2);
    assert!(bad.stderr().contains("bash"), "{}", bad.stderr());
    let version = common::Paratest::new(dir.path())
        .arg_path(std::path::Path::new("--version"))
        .run()
        .expect(0)
        .stdout();
    assert!(version.starts_with(&format!("cargo-paratest {}", env!("CARGO_PKG_VERSION"))));
    // The commit the build script saw (this test is built by the same
    // build): a live `git rev-parse HEAD` would differ after a commit made
    // while the suite runs.
    let built_from = env!("PARATEST_GIT_SUFFIX");
    assert!(
        version.contains(built_from),
        "{version} lacks {built_from:?}"
    );
    let in_git = std::process::Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .is_ok_and(|o| o.status.success());
    if in_git {
        let hash = built_from
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')');
        let is_commit = std::process::Command::new("git")
            .args(["cat-file", "-e", &format!("{hash}^{{commit}}")])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            hash.len() == 12 && is_commit,
            "{version}: a git checkout gives --version its commit"
        );
    }
}

/// The selected test ids (`BINARY-ID NAME`) of `cargo nextest list -E`.
fn nextest_selection(project: &Project, target: &std::path::Path, expr: &str) -> Vec<String> {
    let output = std::process::Command::new("cargo")
        .args(["nextest", "list", "--workspace", "-E", expr])
        .args(["--message-format", "json"])
        .env("CARGO_TARGET_DIR", target)
        .env("NO_COLOR", "1")
        .current_dir(&project.path)
        .output()
        .expect("cargo nextest is installed");
    assert!(
        output.status.success(),
        "nextest {expr}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut ids = Vec::new();
    for suite in list["rust-suites"].as_object().unwrap().values() {
        let binary_id = suite["binary-id"].as_str().unwrap();
        for (name, case) in suite["testcases"].as_object().unwrap() {
            if case["filter-match"]["status"] == "matches" {
                ids.push(format!("{binary_id} {name}"));
            }
        }
    }
    ids.sort();
    ids
}

/// The same expression selects the same Cargo tests as nextest's, on a
/// workspace of two packages with lib and integration-test binaries.
#[test]
fn filtersets_select_what_nextest_selects() {
    let project = Project::copy("workspace");
    let target = project.scratch("nextest-target");
    let table = [
        "all()",
        "none()",
        "test(doubles)",
        "test(=tests::doubles)",
        "test(/^tests::/)",
        "test(#*_works)",
        "package(alpha)",
        "package(=beta) and kind(test)",
        "kind(lib)",
        "binary(alpha_it) | binary(beta_it)",
        "binary_id(beta::*)",
        "binary_id(=alpha)",
        "not package(alpha) - test(shout)",
        "(test(even) or test(shout)) & !kind(lib)",
        "package(a*) & (test(~cwd) + test(/double/))",
    ];
    for expr in table {
        let ours: Vec<String> = {
            let mut ids: Vec<String> = project
                .paratest()
                .args([
                    "list",
                    "--workspace",
                    "--message-format",
                    "json",
                    "-E",
                    expr,
                ])
                .run()
                .expect(0)
                .events()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string())
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(
            ours,
            nextest_selection(&project, &target, expr),
            "-E {expr}"
        );
    }
    // Two -E are their union.
    let union = project
        .paratest()
        .args([
            "list",
            "--message-format",
            "json",
            "-E",
            "test(doubles)",
            "-E",
            "test(shouts)",
        ])
        .run()
        .expect(0)
        .events();
    assert_eq!(union.len(), 2);
}

/// A malformed expression is exit 2 with the position marked, before any build.
#[test]
fn a_malformed_filterset_is_a_usage_error_with_a_caret() {
    let project = Project::copy("workspace");
    let run = project
        .paratest()
        .args(["list", "-E", "test(a) & packge(b)"])
        .run()
        .expect(2);
    let stderr = run.stderr();
    assert!(stderr.contains("unknown predicate `packge()`"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    let expr_line = lines
        .iter()
        .position(|l| l.trim() == "test(a) & packge(b)")
        .unwrap();
    let caret = lines[expr_line + 1];
    assert_eq!(
        caret.find('^'),
        Some(lines[expr_line].find("packge").unwrap()),
        "{stderr}"
    );
    assert!(!project.path.join("target").exists(), "nothing was built");

    let pytest_like = Project::copy("shell-suite");
    let run = pytest_like
        .paratest()
        .args(["list", "--plugin", "command", "-E", "package(x)"])
        .run()
        .expect(2);
    assert!(
        run.stderr().contains("`package()` needs Cargo tests")
            && run.stderr().contains("`command`"),
        "{}",
        run.stderr()
    );
}

/// An override gives one flaky test retries while the others keep none; the
/// first matching override wins per setting; `list` shows the settings.
#[test]
fn an_override_retries_one_flaky_test() {
    let project = Project::copy("faults");
    std::fs::write(
        project.path.join("paratest.toml"),
        r#"
[[profile.default.overrides]]
filter = "test(flaky_once)"
retries = 1

[[profile.default.overrides]]
filter = "all()"
retries = 3
timeout = "7s"
priority = 5
"#,
    )
    .unwrap();
    let list = project
        .paratest()
        .args(["list", "--message-format", "json"])
        .run()
        .expect(0);
    let settings: std::collections::BTreeMap<String, serde_json::Value> = list
        .events()
        .into_iter()
        .map(|e| (e["id"].as_str().unwrap().to_string(), e["settings"].clone()))
        .collect();
    let flaky = &settings["faults::faults flaky_once"];
    assert_eq!(flaky["retries"], 1, "the first match wins: {flaky}");
    assert_eq!(
        flaky["timeout"], 7.0,
        "a later match still sets what the first did not"
    );
    assert_eq!(settings["faults::faults passes"]["retries"], 3);

    std::fs::write(
        project.path.join("paratest.toml"),
        "[[profile.default.overrides]]\nfilter = \"test(=flaky_once)\"\nretries = 1\n",
    )
    .unwrap();
    let run = project
        .paratest()
        .args([
            "-j",
            "2",
            "--skip",
            "hangs_with_child",
            "--message-format",
            "json",
        ])
        .run()
        .expect(1);
    let results = run.results();
    assert_eq!(results["faults::faults flaky_once"], "flaky", "{results:?}");
    assert_eq!(results["faults::faults always_fails"], "failed");
    let attempts = |id: &str| {
        run.events()
            .iter()
            .filter(|e| e["event"] == "test-started" && e["id"] == id)
            .count()
    };
    assert_eq!(attempts("faults::faults flaky_once"), 2);
    assert_eq!(
        attempts("faults::faults always_fails"),
        1,
        "no global retries"
    );
    let human = project
        .paratest()
        .args(["-j", "2", "--skip", "hangs_with_child"])
        .run()
        .expect(1);
    assert!(
        human
            .stderr()
            .contains("faults::faults flaky_once (attempt 1 of 2 failed)"),
        "{}",
        human.stderr()
    );
}

/// Unknown keys and bad filters in an override name the file, the line and the key.
#[test]
fn override_errors_name_file_line_and_key() {
    let project = Project::copy("faults");
    for (text, needles) in [
        (
            "[profile.default]\n\n[[profile.default.overrides]]\nfilter = \"all()\"\nretires = 1\n",
            &["paratest.toml", "line 5", "retires"][..],
        ),
        (
            "[[profile.default.overrides]]\nfilter = \"test(a\"\n",
            &["paratest.toml:2", "filter", "^"][..],
        ),
        (
            "[[profile.default.overrides]]\nfilter = \"all()\"\ntest-group = \"db\"\n",
            &["paratest.toml:2", "`db` is not defined"][..],
        ),
        (
            "[[profile.default.overrides]]\nfilter = \"all()\"\nretries = 1000\n",
            &["paratest.toml:2", "retries", "between 0 and"][..],
        ),
    ] {
        std::fs::write(project.path.join("paratest.toml"), text).unwrap();
        let run = project.paratest().args(["list"]).run().expect(2);
        for needle in needles {
            assert!(run.stderr().contains(needle), "{needle}: {}", run.stderr());
        }
    }
}

/// For the command plugin `test()` matches the test id.
#[test]
fn filtersets_match_ids_of_other_plugins() {
    let project = Project::copy("shell-suite");
    let ids: Vec<String> = project
        .paratest()
        .args([
            "list",
            "--message-format",
            "json",
            "-E",
            "test(~log) - test(logout)",
        ])
        .run()
        .expect(0)
        .events()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["tests/acceptance/login.sh"]);
}

/// Override timeouts and flaky results reach the runner per test: only the
/// hanging test gets a short limit, and only the flaky one fails the run.
#[test]
fn override_timeout_and_flaky_result_apply_per_test() {
    let project = Project::copy("faults");
    std::fs::write(
        project.path.join("paratest.toml"),
        r#"
[[profile.default.overrides]]
filter = "test(=hangs_with_child)"
timeout = "1s"

[[profile.default.overrides]]
filter = "test(=flaky_once)"
retries = 1
flaky-result = "fail"
"#,
    )
    .unwrap();
    let run = project
        .paratest()
        .args(["-j", "2", "--message-format", "json"])
        .args(["-E", "test(hangs_with_child) | test(=passes)"])
        .run()
        .expect(1);
    let results = run.results();
    assert_eq!(results["faults::faults hangs_with_child"], "timed-out");
    assert_eq!(results["faults::faults passes"], "passed");
    // The message names the limit that applied: the override's.
    let timed_out = run
        .stdout()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|e| e["event"] == "test-finished" && e["result"] == "timed-out")
        .expect("a timed-out test-finished event");
    assert_eq!(timed_out["message"], "timed out after 1s", "{timed_out}");

    let flaky = |extra: &[&str]| {
        project
            .paratest()
            .args(["-j", "2", "-E", "test(=flaky_once) | test(=passes)"])
            .args(extra)
            .run()
    };
    flaky(&[]).expect(1);
    // The command line wins over the overrides, as nextest's --retries does.
    flaky(&["--flaky-result", "pass"]).expect(0);
    std::fs::write(
        project.path.join("paratest.toml"),
        "[[profile.default.overrides]]\nfilter = \"test(=flaky_once)\"\nretries = 1\n",
    )
    .unwrap();
    flaky(&[]).expect(0);
}

/// A word that is no subcommand is a filter, and an empty selection says so.
#[test]
fn an_unknown_subcommand_is_not_a_silent_filter() {
    let project = Project::copy("basic");
    let run = project.paratest().args(["frobnicate"]).run().expect(4);
    assert!(
        run.stderr()
            .contains("`frobnicate` was read as a test filter: it is not a subcommand"),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("completions"), "{}", run.stderr());
}
