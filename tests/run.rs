//! `cargo paratest run` end to end against the fixture projects: isolation,
//! the environment tests see, hooks, failures, exit codes, interrupts.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Project, alive};

fn read_env_file(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter_map(|line| {
            line.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

#[test]
fn passing_project_exits_zero_and_reports_every_test() {
    let project = Project::copy("basic");
    let run = project
        .paratest()
        .args(["-j", "2", "--message-format", "json"])
        .run()
        .expect(0);
    let results = run.results();
    assert_eq!(results.len(), 11, "{results:?}");
    assert_eq!(results["basic::integration ignored_but_passes"], "skipped");
    assert_eq!(results.values().filter(|r| *r == "passed").count(), 10);
    // Human text goes to stderr only; stdout is pure JSON.
    assert!(
        run.stderr().contains("10 passed, 0 failed, 1 skipped"),
        "{}",
        run.stderr()
    );
    let events = run.events();
    assert_eq!(events.first().unwrap()["event"], "run-started");
    assert_eq!(events.last().unwrap()["event"], "run-finished");
    assert_eq!(project.read(".paratest/.gitignore"), "*\n");
}

#[test]
fn a_failing_test_exits_one_and_shows_its_output_and_log() {
    let project = Project::copy("failing");
    let run = project.paratest().args(["-j", "2"]).run().expect(1);
    let stderr = run.stderr();
    assert!(
        stderr.contains("FAIL") && stderr.contains("failing::checks fails_with_message"),
        "{stderr}"
    );
    assert!(stderr.contains("expected 2, got 3"), "{stderr}");
    assert!(stderr.contains("4 passed, 1 failed"), "{stderr}");
    // `.paratest/logs` links to this run's own directory.
    let log_dir = project.path.join(".paratest/logs").canonicalize().unwrap();
    let logs: Vec<_> = std::fs::read_dir(&log_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let failing_log = logs
        .iter()
        .find(|p| {
            p.to_string_lossy().contains("fails_with_message") && p.extension().unwrap() == "stderr"
        })
        .expect("a stderr log for the failing test");
    assert!(
        stderr.contains(&failing_log.display().to_string()),
        "the summary names the full log"
    );
    assert!(
        std::fs::read_to_string(failing_log)
            .unwrap()
            .contains("expected 2, got 3")
    );
}

#[test]
fn legacy_suite_sharing_a_file_passes_only_with_isolation() {
    let project = Project::copy("legacy");
    project
        .paratest()
        .args(["-j", "4", "--isolation", "copy"])
        .run()
        .expect(0);
    assert!(
        !project.path.join("state.txt").exists(),
        "the source was not written to"
    );
    let shared = project
        .paratest()
        .args(["-j", "4", "--isolation", "none"])
        .run()
        .expect(1);
    assert!(shared.stderr().contains("failed"), "{}", shared.stderr());
}

#[test]
fn tests_see_the_paratest_environment_and_run_in_their_workspace() {
    let project = Project::copy("probe");
    let probe = project.scratch("probe-out");
    project
        .paratest()
        .args(["-j", "2"])
        .env("PROBE_DIR", &probe)
        .run()
        .expect(0);
    let source = project.path.canonicalize().unwrap();
    let mut run_ids = std::collections::BTreeSet::new();
    for name in ["probe_a", "probe_b", "probe_c", "probe_d"] {
        let env = read_env_file(&probe.join(format!("{name}.env")));
        assert_eq!(env["PARATEST"], "1");
        assert_eq!(env["PARATEST_WORKERS"], "2");
        assert!(
            ["1", "2"].contains(&env["PARATEST_WORKER"].as_str()),
            "{env:?}"
        );
        assert_eq!(env["PARATEST_TEST"], format!("probe::env {name}"));
        assert_eq!(env["PARATEST_ATTEMPT"], "1");
        assert_eq!(Path::new(&env["PARATEST_SOURCE"]), source);
        assert_eq!(
            Path::new(&env["PARATEST_OUTPUT"]),
            source.join(".paratest/logs").canonicalize().unwrap()
        );
        let workspace = Path::new(&env["PARATEST_WORKSPACE"]);
        assert!(
            workspace.is_absolute() && !workspace.starts_with(&source),
            "{env:?}"
        );
        assert!(
            workspace.ends_with(format!("w{}", env["PARATEST_WORKER"])),
            "{env:?}"
        );
        assert_eq!(
            Path::new(&env["CWD"]),
            workspace,
            "cwd is the workspace's copy of the package"
        );
        assert_eq!(env["CARGO_MANIFEST_DIR"], env["CWD"]);
        assert!(!env.contains_key("PARATEST_PARTITION"));
        run_ids.insert(env["PARATEST_RUN_ID"].clone());
    }
    assert_eq!(run_ids.len(), 1, "one run id for the whole run");
}

#[test]
fn all_six_hooks_run_with_placeholders_and_environment() {
    let project = Project::copy("basic");
    let marks = project.scratch("marks");
    let log = |name: &str| {
        format!(
            "echo {name} {{id}} \"$PARATEST_WORKER\" {{test}} >> {}/hooks.log",
            marks.display()
        )
    };
    project
        .paratest()
        .args(["-j", "2", "--test", "other"])
        .args([
            "--setup",
            &format!("echo setup {{source}} > {}/setup.txt", marks.display()),
        ])
        .args([
            "--setup-workspace",
            &format!("{} && touch workspace-was-set-up", log("setup-workspace")),
        ])
        .args([
            "--setup-test",
            &format!("{} && test -f workspace-was-set-up", log("setup-test")),
        ])
        .args(["--teardown-test", &log("teardown-test")])
        .args(["--teardown-workspace", &log("teardown-workspace")])
        .args([
            "--teardown",
            &format!("echo teardown > {}/teardown.txt", marks.display()),
        ])
        .run()
        .expect(0);
    let source = project.path.canonicalize().unwrap();
    assert_eq!(
        std::fs::read_to_string(marks.join("setup.txt"))
            .unwrap()
            .trim(),
        format!("setup {}", source.display())
    );
    assert_eq!(
        std::fs::read_to_string(marks.join("teardown.txt"))
            .unwrap()
            .trim(),
        "teardown"
    );
    let lines = std::fs::read_to_string(marks.join("hooks.log")).unwrap();
    let count = |prefix: &str| lines.lines().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(count("setup-workspace "), 2, "{lines}");
    assert_eq!(count("teardown-workspace "), 2, "{lines}");
    assert_eq!(count("setup-test "), 2, "{lines}");
    assert_eq!(count("teardown-test "), 2, "{lines}");
    for line in lines.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields[1], fields[2], "{{id}} is PARATEST_WORKER: {line}");
    }
    assert!(
        lines.contains("setup-test 1 1 basic::other add_negative")
            || lines.contains("setup-test 2 2 basic::other add_negative"),
        "{lines}"
    );
}

#[test]
fn failing_setup_aborts_with_exit_three_and_still_tears_down() {
    let project = Project::copy("basic");
    let marks = project.scratch("marks");
    let run = project
        .paratest()
        .args(["--setup", "echo broken database >&2; exit 7"])
        .args([
            "--teardown",
            &format!("touch {}/teardown-ran", marks.display()),
        ])
        .run()
        .expect(3);
    assert!(
        run.stderr().contains("setup hook") && run.stderr().contains("broken database"),
        "{}",
        run.stderr()
    );
    assert!(marks.join("teardown-ran").exists());
}

#[test]
fn failing_setup_workspace_drops_that_worker_and_the_others_finish() {
    let project = Project::copy("basic");
    let run = project
        .paratest()
        .args([
            "-j",
            "2",
            "--setup-workspace",
            "test \"$PARATEST_WORKER\" != 1",
            "--message-format",
            "json",
        ])
        .run()
        .expect(0);
    assert!(run.stderr().contains("worker 1"), "{}", run.stderr());
    let results = run.results();
    assert_eq!(results.values().filter(|r| *r == "passed").count(), 10);
    assert!(
        run.events()
            .iter()
            .filter(|e| e["event"] == "test-started")
            .all(|e| e["worker"] == 2)
    );
}

#[test]
fn no_worker_left_is_exit_three() {
    let project = Project::copy("basic");
    let run = project
        .paratest()
        .args(["-j", "2", "--setup-workspace", "exit 1"])
        .run()
        .expect(3);
    assert!(
        run.stderr().contains("no workspace could be made"),
        "{}",
        run.stderr()
    );
}

#[test]
fn empty_isolation_is_filled_by_setup_workspace() {
    let project = Project::copy("basic");
    project
        .paratest()
        .args([
            "-j",
            "2",
            "--isolation",
            "empty",
            "--setup-workspace",
            "cp -R {source}/. {workspace}/",
        ])
        .run()
        .expect(0);
    let run = project
        .paratest()
        .args(["--isolation", "empty"])
        .run()
        .expect(2);
    assert!(
        run.stderr().contains("--setup-workspace"),
        "{}",
        run.stderr()
    );
}

#[test]
fn kept_workspaces_stay_at_the_given_root() {
    let project = Project::copy("basic");
    let root = project.scratch("workspaces");
    project
        .paratest()
        .args(["-j", "2", "--keep-workspaces", "--workspace-root"])
        .arg_path(&root)
        .run()
        .expect(0);
    for worker in ["w1", "w2"] {
        assert!(root.join(worker).join("Cargo.toml").exists(), "{worker}");
        assert!(
            !root.join(worker).join("target").exists(),
            "target/ is not copied"
        );
    }
    let root = project.scratch("workspaces2");
    project
        .paratest()
        .args(["-j", "2", "--workspace-root"])
        .arg_path(&root)
        .run()
        .expect(0);
    assert!(
        !root.join("w1").exists(),
        "workspaces are removed by default"
    );
}

#[test]
fn filters_exact_and_ignored_follow_cargo_test() {
    let project = Project::copy("basic");
    let ids = |args: &[&str]| -> Vec<String> {
        let run = project
            .paratest()
            .args(["--message-format", "json"])
            .args(args)
            .run()
            .expect(0);
        run.results()
            .into_iter()
            .filter(|(_, r)| r != "skipped")
            .map(|(id, _)| id)
            .collect()
    };
    assert_eq!(
        ids(&["add"]),
        [
            "basic tests::adds",
            "basic::integration add_works",
            "basic::other add_negative"
        ]
    );
    assert_eq!(
        ids(&["--exact", "add_works"]),
        ["basic::integration add_works"]
    );
    assert_eq!(
        ids(&["--ignored"]),
        ["basic::integration ignored_but_passes"]
    );
    assert_eq!(ids(&["--include-ignored"]).len(), 11);
    assert_eq!(ids(&["--lib"]).len(), 3);
}

#[test]
fn cargo_workspace_packages_run_in_their_own_directories() {
    let project = Project::copy("workspace");
    let run = project
        .paratest()
        .args(["-p", "beta", "--message-format", "json"])
        .run()
        .expect(0);
    let results = run.results();
    assert_eq!(results.len(), 4, "{results:?}");
    assert!(results.contains_key("beta::beta_it reads_fixtures_file"));
    let all = project
        .paratest()
        .args(["--workspace", "--message-format", "json"])
        .run()
        .expect(0);
    assert_eq!(all.results().len(), 8);
    // From inside a member, only that member's tests run, as with `cargo test`.
    let inner = common::Paratest::new(&project.path.join("crates/beta"))
        .args(["--message-format", "json"])
        .run()
        .expect(0);
    assert_eq!(inner.results().len(), 4);
    assert!(inner.results().keys().all(|id| id.starts_with("beta")));
}

#[test]
fn build_failure_shows_cargo_error_and_exits_three() {
    let project = Project::copy("basic");
    std::fs::write(project.path.join("tests/broken.rs"), "fn oops( {").unwrap();
    let run = project.paratest().run().expect(3);
    assert!(
        run.stderr().contains("could not be built"),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr().contains("broken.rs"),
        "cargo's own error is shown: {}",
        run.stderr()
    );
}

#[test]
fn usage_errors_exit_two() {
    let project = Project::copy("basic");
    let run = project.paratest().args(["--no-such-flag"]).run().expect(2);
    assert!(run.stderr().contains("--no-such-flag"));
    let run = project
        .paratest()
        .args(["--plugin", "cobol"])
        .run()
        .expect(2);
    assert!(
        run.stderr().contains("unknown plugin `cobol`") && run.stderr().contains("cargo"),
        "{}",
        run.stderr()
    );
    project.paratest().args(["-j", "0"]).run().expect(2);
    project
        .paratest()
        .args(["--timeout", "soon"])
        .run()
        .expect(2);
    project
        .paratest()
        .args(["--profile", "nope"])
        .run()
        .expect(2);
}

#[test]
fn broken_config_names_file_line_and_key() {
    let project = Project::copy("basic");
    std::fs::write(
        project.path.join("paratest.toml"),
        "[profile.default]\nworkers = 2\nretires = 3\n",
    )
    .unwrap();
    let run = project.paratest().run().expect(2);
    let stderr = run.stderr();
    assert!(
        stderr.contains("paratest.toml") && stderr.contains("line 3") && stderr.contains("retires"),
        "{stderr}"
    );
    std::fs::write(project.path.join("paratest.toml"), "[profile.default\n").unwrap();
    project.paratest().run().expect(2);
}

#[test]
fn config_profile_environment_and_flags_layer() {
    let project = Project::copy("probe");
    std::fs::write(
        project.path.join("paratest.toml"),
        "[profile.default]\nworkers = 1\n\n[profile.ci]\nworkers = 3\n",
    )
    .unwrap();
    let workers = |run: common::Run| run.events()[0]["workers"].as_u64().unwrap();
    let json = ["--message-format", "json"];
    assert_eq!(workers(project.paratest().args(json).run().expect(0)), 1);
    assert_eq!(
        workers(
            project
                .paratest()
                .args(json)
                .env("CI", "true")
                .run()
                .expect(0)
        ),
        3
    );
    assert_eq!(
        workers(
            project
                .paratest()
                .args(json)
                .env("PARATEST_WORKERS", "2")
                .run()
                .expect(0)
        ),
        2
    );
    assert_eq!(
        workers(
            project
                .paratest()
                .args(json)
                .args(["-j", "4"])
                .env("PARATEST_WORKERS", "2")
                .run()
                .expect(0)
        ),
        4
    );
}

#[test]
fn timeout_kills_the_test_and_its_child() {
    let project = Project::copy("faults");
    let probe = project.scratch("probe");
    let started = Instant::now();
    let run = project
        .paratest()
        .args([
            "hangs_with_child",
            "--timeout",
            "3s",
            "--message-format",
            "json",
        ])
        .env("PROBE_DIR", &probe)
        .run()
        .expect(1);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the run ended soon after the timeout"
    );
    // SIGTERM at 3 s, SIGKILL at most 2 s later: the attempt is over by then.
    let finished = run
        .events()
        .into_iter()
        .find(|e| e["event"] == "test-finished")
        .unwrap();
    let duration = finished["duration"].as_f64().unwrap();
    assert!(
        (3.0..5.5).contains(&duration),
        "the attempt took {duration} s"
    );
    assert_eq!(
        run.results()["faults::faults hangs_with_child"],
        "timed-out"
    );
    assert!(
        run.stderr().contains("timed out after 3s"),
        "{}",
        run.stderr()
    );
    let child: i32 = std::fs::read_to_string(probe.join("child.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(!alive(child), "the test's child {child} survived");
}

#[test]
fn interrupt_kills_tests_runs_teardowns_and_exits_130() {
    let project = Project::copy("faults");
    let probe = project.scratch("probe");
    let marks = project.scratch("marks");
    let child = project
        .paratest()
        .args(["-j", "2", "hangs_with_child", "passes"])
        .args([
            "--teardown-workspace",
            &format!(
                "touch {}/teardown-workspace-$PARATEST_WORKER",
                marks.display()
            ),
        ])
        .args(["--teardown", &format!("touch {}/teardown", marks.display())])
        .env("PROBE_DIR", &probe)
        .spawn();
    let pid_file = probe.join("child.pid");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !pid_file.exists() {
        assert!(Instant::now() < deadline, "the hanging test never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let grandchild: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("Interrupted"), "{stderr}");
    assert!(
        marks.join("teardown").exists(),
        "teardown ran after the interrupt"
    );
    assert!(
        marks.join("teardown-workspace-1").exists() && marks.join("teardown-workspace-2").exists()
    );
    let junit = std::fs::read_to_string(project.path.join(".paratest/junit.xml"))
        .expect("a partial report is written after an interrupt");
    assert!(
        junit.contains("name=\"hangs_with_child\""),
        "the interrupted test is reported: {junit}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !alive(grandchild),
        "the hanging test's child {grandchild} survived"
    );
}

#[test]
fn plugins_lists_cargo() {
    let run = common::Paratest::new(Path::new(env!("CARGO_MANIFEST_DIR")))
        .args(["plugins"])
        .run()
        .expect(0);
    assert!(
        run.stdout().lines().any(|l| l.starts_with("cargo ")),
        "{}",
        run.stdout()
    );
}

#[test]
fn list_prints_every_test() {
    let project = Project::copy("basic");
    let run = project
        .paratest()
        .args(["list", "--message-format", "json"])
        .run()
        .expect(0);
    let ids: Vec<String> = run
        .events()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids.len(),
        10,
        "ignored tests are not listed unless asked: {ids:?}"
    );
    assert!(
        run.events()
            .iter()
            .all(|e| e["expected_duration"].is_number() && e["group"].is_string())
    );
}

#[test]
fn a_test_that_deletes_its_workspace_does_not_break_the_next_ones() {
    let project = Project::copy("vandal");
    let run = project
        .paratest()
        .args(["-j", "1", "--message-format", "json"])
        .run()
        .expect(0);
    assert!(run.stderr().contains("disappeared"), "{}", run.stderr());
    assert_eq!(run.results().values().filter(|r| *r == "passed").count(), 3);
}

#[test]
fn workspace_reset_on_failure_gives_the_next_test_a_clean_copy() {
    let project = Project::copy("failing");
    let marks = project.scratch("marks");
    project
        .paratest()
        .args(["-j", "1", "--workspace-reset", "on-failure"])
        .args([
            "--setup-workspace",
            &format!("echo made >> {}/setups", marks.display()),
        ])
        .run()
        .expect(1);
    let setups = std::fs::read_to_string(marks.join("setups")).unwrap();
    assert_eq!(
        setups.lines().count(),
        2,
        "one set-up at the start, one after the failure"
    );
}

#[test]
fn github_step_summary_gets_a_markdown_summary() {
    let project = Project::copy("failing");
    let summary = project.scratch("gh").join("summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let run = project
        .paratest()
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("CI", "true")
        .run()
        .expect(1);
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(
        text.starts_with("earlier step\n"),
        "appended, not overwritten"
    );
    assert!(text.contains("fails_with_message"), "{text}");
    assert!(text.contains('|'), "a Markdown table: {text}");
    // CI logs get plain lines, no progress bar control sequences.
    assert!(!run.stderr().contains('\u{1b}'), "{}", run.stderr());
}

#[test]
fn a_relative_manifest_path_is_read_from_where_it_was_typed() {
    let project = Project::copy("basic");
    let parent = project.path.parent().unwrap();
    let run = common::Paratest::new(parent)
        .args([
            "--manifest-path",
            "basic/Cargo.toml",
            "--message-format",
            "json",
        ])
        .run()
        .expect(0);
    assert_eq!(run.results().len(), 11);
    assert!(
        project.path.join(".paratest/junit.xml").exists(),
        "the source is the manifest's project"
    );
}

#[test]
fn relative_paths_on_the_command_line_reach_tests_as_absolute_paths() {
    let project = Project::copy("probe");
    let probe = project.scratch("probe-out");
    project
        .paratest()
        .args([
            "-j",
            "1",
            "--workspace-root",
            "../ws",
            "--output",
            "../logs",
            "probe_a",
        ])
        .env("PROBE_DIR", &probe)
        .run()
        .expect(0);
    let env = read_env_file(&probe.join("probe_a.env"));
    let parent = project.path.parent().unwrap().canonicalize().unwrap();
    assert_eq!(
        Path::new(&env["PARATEST_WORKSPACE"]),
        parent.join("ws/w1"),
        "{env:?}"
    );
    assert_eq!(Path::new(&env["PARATEST_OUTPUT"]), parent.join("logs"));
    assert_eq!(env["CARGO_MANIFEST_DIR"], env["PARATEST_WORKSPACE"]);
}

#[test]
fn a_workspace_root_holding_the_source_is_refused_and_nothing_is_deleted() {
    let project = Project::copy("basic");
    let root = project.path.parent().unwrap().to_path_buf();
    std::fs::rename(&project.path, root.join("w1")).unwrap();
    let source = root.join("w1");
    let run = common::Paratest::new(&source)
        .args(["-j", "1", "--workspace-root"])
        .arg_path(&root)
        .run()
        .expect(3);
    assert!(
        run.stderr().contains("would hold the source"),
        "{}",
        run.stderr()
    );
    assert!(source.join("src/lib.rs").exists() && source.join("Cargo.toml").exists());
}

#[test]
fn services_started_by_setup_workspace_live_until_its_teardown() {
    let project = Project::copy("basic");
    let marks = project.scratch("marks");
    let pid_file = format!("{}/service-$PARATEST_WORKER", marks.display());
    project
        .paratest()
        .args(["-j", "2", "--test", "other"])
        .args([
            "--setup-workspace",
            &format!("sleep 300 & echo $! > {pid_file}"),
        ])
        .args(["--setup-test", &format!("kill -0 \"$(cat {pid_file})\"")])
        .args([
            "--setup",
            &format!("sleep 300 & echo $! > {}/run-service", marks.display()),
        ])
        .run()
        .expect(0);
    std::thread::sleep(Duration::from_millis(300));
    for entry in std::fs::read_dir(&marks).unwrap() {
        let pid: i32 = std::fs::read_to_string(entry.unwrap().path())
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(!alive(pid), "service {pid} outlived the run");
    }
}

#[test]
fn per_test_hooks_are_bound_by_the_timeout() {
    let project = Project::copy("basic");
    let started = Instant::now();
    let run = project
        .paratest()
        .args([
            "-j",
            "1",
            "--test",
            "other",
            "--timeout",
            "1s",
            "--setup-test",
            "sleep 100",
        ])
        .run()
        .expect(1);
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(
        run.stderr().contains("setup-test hook") && run.stderr().contains("timed out after 1s"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_target_directory_anywhere_in_the_source_is_not_copied() {
    let project = Project::copy("basic");
    let root = project.scratch("ws");
    project
        .paratest()
        .args(["-j", "1", "--keep-workspaces", "--workspace-root"])
        .arg_path(&root)
        .env("CARGO_TARGET_DIR", "build/cargo-target")
        .run()
        .expect(0);
    assert!(
        project
            .path
            .join("build/cargo-target/CACHEDIR.TAG")
            .exists(),
        "cargo built there"
    );
    assert!(root.join("w1/Cargo.toml").exists());
    assert!(
        !root.join("w1/build/cargo-target").exists(),
        "the target directory was copied"
    );
}

#[test]
fn nothing_to_run_makes_no_workspace() {
    let project = Project::copy("basic");
    let marks = project.scratch("marks");
    let run = project
        .paratest()
        .args([
            "no-test-has-this-name",
            "--setup-workspace",
            &format!("touch {}/made", marks.display()),
        ])
        .run()
        .expect(4);
    assert!(run.stderr().contains("no tests to run"), "{}", run.stderr());
    assert!(!marks.join("made").exists());
}

#[test]
fn sigterm_during_the_build_stops_cargo_and_exits_130() {
    let project = Project::copy("basic");
    let marks = project.scratch("marks");
    // A build script that takes a minute, and says when it started.
    std::fs::write(
        project.path.join("build.rs"),
        format!(
            "fn main() {{ std::fs::write({:?}, \"\").unwrap(); std::thread::sleep(std::time::Duration::from_secs(60)); }}",
            marks.join("building")
        ),
    )
    .unwrap();
    let child = project
        .paratest()
        .args(["--teardown", &format!("touch {}/teardown", marks.display())])
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !marks.join("building").exists() {
        assert!(Instant::now() < deadline, "the build never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let signalled = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        signalled.elapsed() < Duration::from_secs(30),
        "cargo was stopped, not waited for"
    );
    assert!(marks.join("teardown").exists());
}
