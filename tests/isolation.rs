//! Isolation between runs, workers and the user's files: concurrent runs on
//! one source or one workspace root, per-worker temp directories, what is
//! ever deleted or replaced, and bounded inputs. Fixture: `isolation-suite`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{Paratest, Project, read_junit};

/// Waits for `condition`, failing the test after `seconds`.
fn wait_for(what: &str, seconds: u64, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {seconds}s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs to the end, or kills the run and fails after `seconds` (a run that
/// blocks on a FIFO or copies itself forever must not hang the suite).
fn run_within(paratest: Paratest, seconds: u64) -> Output {
    let mut child = paratest.spawn();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "still running after {seconds}s; stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_env(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The `system-out` of every testcase of a report, joined.
fn report_output(path: &Path) -> String {
    let report = read_junit(path);
    let mut out = String::new();
    for suite in &report.test_suites {
        for case in &suite.test_cases {
            if let Some(text) = &case.system_out {
                out.push_str(text.as_str());
            }
            if let Some(text) = &case.system_err {
                out.push_str(text.as_str());
            }
        }
    }
    out
}

#[test]
fn concurrent_runs_on_one_source_keep_their_own_logs_and_reports() {
    let project = Project::copy("isolation-suite");
    let barrier = project.scratch("barrier");
    let probe = project.scratch("probe");
    let reports = project.scratch("reports");
    let spawn = |mark: &str| {
        project
            .paratest()
            .args(["-j", "1", "tests/a.sh", "--junit"])
            .arg_path(&reports.join(format!("{mark}.xml")))
            .env("MARK", mark)
            .env("BARRIER", &barrier)
            .env("BARRIER_WAIT", "A.a B.a")
            .env("PROBE_DIR", &probe)
            .env("FAIL_AT_END", "1")
            .spawn()
    };
    let (a, b) = (spawn("A"), spawn("B"));
    for (mark, other, child) in [("A", "B", a), ("B", "A", b)] {
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "run {mark}:\n{stderr}");
        assert!(!stderr.contains("barrier:"), "the runs never overlapped");
        let text = report_output(&reports.join(format!("{mark}.xml")));
        assert!(
            text.contains(&format!("stdout of a in run {mark}"))
                && text.contains(&format!("end of a in run {mark}")),
            "run {mark}'s report lacks its own output:\n{text}"
        );
        assert!(
            !text.contains(&format!("in run {other}")),
            "run {mark}'s report holds run {other}'s output:\n{text}"
        );
    }
    let outputs: Vec<PathBuf> = ["A", "B"]
        .iter()
        .map(|mark| PathBuf::from(&read_env(&probe.join(format!("a.{mark}.env")))["OUTPUT"]))
        .collect();
    let runs = project.path.join(".paratest/runs").canonicalize().unwrap();
    assert_ne!(outputs[0], outputs[1], "both runs wrote one log directory");
    for output in &outputs {
        assert!(output.starts_with(&runs), "{}", output.display());
    }
    let latest = project.path.join(".paratest/logs").canonicalize().unwrap();
    assert!(
        outputs.contains(&latest),
        "{} is neither run",
        latest.display()
    );
}

#[test]
fn a_live_runs_workspace_root_is_never_touched_by_another_run() {
    let project = Project::copy("isolation-suite");
    let barrier = project.scratch("barrier");
    let root = project.scratch("root");
    let first = project
        .paratest()
        .args(["-j", "1", "tests/a.sh", "--workspace-root"])
        .arg_path(&root)
        .env("MARK", "A")
        .env("BARRIER", &barrier)
        .env("BARRIER_WAIT", "release")
        .spawn();
    wait_for("the first run's test", 120, || barrier.join("A.a").exists());
    let second = project
        .paratest()
        .args(["-j", "1", "tests/b.sh", "--workspace-root"])
        .arg_path(&root)
        .run();
    std::fs::write(barrier.join("release"), "").unwrap();
    let first = first.wait_with_output().unwrap();
    let second_err = second.stderr();
    assert_eq!(
        second.code(),
        2,
        "the second run was not refused:\n{second_err}"
    );
    assert!(
        second_err.contains("--workspace-root") && second_err.contains("in use"),
        "{second_err}"
    );
    assert_eq!(
        first.status.code(),
        Some(0),
        "the first run's workspace was touched:\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
}

#[test]
fn the_next_run_on_a_root_clears_what_dead_runs_marked_as_theirs() {
    let project = Project::copy("isolation-suite");
    let root = project.scratch("root");
    project
        .paratest()
        .args(["-j", "3", "--keep-workspaces", "--workspace-root"])
        .arg_path(&root)
        .run()
        .expect(0);
    for worker in 1..=3 {
        assert!(root.join(format!("w{worker}/probe.sh")).exists());
    }
    std::fs::create_dir_all(root.join("mine")).unwrap();
    std::fs::write(root.join("mine/keep.txt"), "mine").unwrap();
    project
        .paratest()
        .args(["-j", "1", "tests/a.sh", "--workspace-root"])
        .arg_path(&root)
        .run()
        .expect(0);
    for worker in 1..=3 {
        assert!(
            !root.join(format!("w{worker}")).exists(),
            "w{worker} of the earlier run is still there"
        );
    }
    assert_eq!(
        std::fs::read_to_string(root.join("mine/keep.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn a_killed_runs_fresh_workspace_root_is_removed_by_the_next_run() {
    let project = Project::copy("isolation-suite");
    let barrier = project.scratch("barrier");
    let probe = project.scratch("probe");
    let mut killed = project
        .paratest()
        .args(["-j", "1", "tests/a.sh"])
        .env("MARK", "A")
        .env("PROBE_DIR", &probe)
        .env("BARRIER", &barrier)
        .env("BARRIER_WAIT", "release")
        .spawn();
    wait_for("the test of the run to kill", 120, || {
        barrier.join("A.a").exists()
    });
    let workspace = PathBuf::from(&read_env(&probe.join("a.A.env"))["WORKSPACE"]);
    let root = workspace.parent().unwrap().to_path_buf();
    killed.kill().unwrap();
    killed.wait().unwrap();
    // Lets the test itself end, whatever became of it.
    std::fs::write(barrier.join("release"), "").unwrap();
    project
        .paratest()
        .args(["-j", "1", "tests/b.sh"])
        .run()
        .expect(0);
    assert!(
        !workspace.exists() && !root.exists(),
        "{} of the killed run is still there",
        root.display()
    );
}

#[test]
fn every_worker_and_hook_gets_a_private_temp_dir_removed_at_the_end() {
    let project = Project::copy("isolation-suite");
    let probe = project.scratch("probe");
    project
        .paratest()
        .args(["-j", "2", "--keep-workspaces", "--setup-workspace"])
        .args([
            r#"echo "$TMPDIR $TMP $TEMP $PARATEST_TMPDIR" > "$PROBE_DIR/hook.$PARATEST_WORKER""#,
        ])
        .args(["--setup"])
        .args([r#"test -d "$TMPDIR" && echo "$TMPDIR" > "$PROBE_DIR/setup""#])
        .env("PROBE_DIR", &probe)
        .run()
        .expect(0);
    let system_temp = std::env::temp_dir().canonicalize().unwrap();
    let mut by_worker: BTreeMap<String, String> = BTreeMap::new();
    for worker in ["1", "2"] {
        let line = std::fs::read_to_string(probe.join(format!("hook.{worker}"))).unwrap();
        let values: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(values.len(), 4, "{line}");
        assert!(values.iter().all(|v| *v == values[0]), "{line}");
        by_worker.insert(worker.to_string(), values[0].to_string());
    }
    assert_ne!(
        by_worker["1"], by_worker["2"],
        "two workers share a temp dir"
    );
    for name in ["a", "b", "c", "d"] {
        let env = read_env(&probe.join(format!("{name}.run.env")));
        let temp = &env["TMPDIR"];
        for key in ["TMP", "TEMP", "PARATEST_TMPDIR"] {
            assert_eq!(&env[key], temp, "{env:?}");
        }
        assert_eq!(env["TMP_USABLE"], "yes", "{env:?}");
        assert_eq!(temp, &by_worker[&env["WORKER"]], "{env:?}");
        assert_ne!(Path::new(temp), system_temp, "{env:?}");
    }
    let setup = std::fs::read_to_string(probe.join("setup")).unwrap();
    assert!(!by_worker.values().any(|t| t == setup.trim()));
    for temp in by_worker.values().map(String::as_str).chain([setup.trim()]) {
        assert!(!Path::new(temp).exists(), "{temp} is left after the run");
    }
}

#[test]
fn an_output_directory_loses_only_the_files_runs_wrote_there() {
    let project = Project::copy("isolation-suite");
    let out = project.scratch("out");
    let theirs = [
        ("hooks/setup.log", "my hook notes"),
        ("x.1.stdout", "my capture"),
        ("notes.txt", "my notes"),
    ];
    std::fs::create_dir_all(out.join("hooks")).unwrap();
    for (name, text) in theirs {
        std::fs::write(out.join(name), text).unwrap();
    }
    let logs_of = |test: &str| -> Vec<PathBuf> {
        std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains(&format!("tests_{test}.sh")))
            .collect()
    };
    project
        .paratest()
        .args([
            "-j",
            "1",
            "tests/a.sh",
            "--setup",
            "echo our setup",
            "--output",
        ])
        .arg_path(&out)
        .run()
        .expect(0);
    assert!(!logs_of("a").is_empty(), "no log of a in {}", out.display());
    let hook_logs: Vec<String> = std::fs::read_dir(out.join("hooks"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(
        hook_logs.iter().any(|text| text.contains("our setup")),
        "the setup hook's log is missing: {hook_logs:?}"
    );
    project
        .paratest()
        .args([
            "-j",
            "1",
            "tests/b.sh",
            "--setup",
            "echo our setup",
            "--output",
        ])
        .arg_path(&out)
        .run()
        .expect(0);
    assert!(logs_of("a").is_empty(), "the first run's logs stayed");
    assert!(!logs_of("b").is_empty());
    for (name, text) in theirs {
        assert_eq!(
            std::fs::read_to_string(out.join(name)).ok().as_deref(),
            Some(text),
            "{name} was deleted or changed"
        );
    }
}

#[test]
fn a_timings_path_that_is_not_a_timings_file_is_refused_unless_overwrite() {
    let project = Project::copy("isolation-suite");
    let dir = project.scratch("t");
    let notes = dir.join("notes.txt");
    std::fs::write(&notes, "my notes\n").unwrap();
    let run = project
        .paratest()
        .args(["-j", "1", "--timings"])
        .arg_path(&notes)
        .run()
        .expect(2);
    assert!(
        run.stderr().contains("--timings") && run.stderr().contains("--overwrite-timings"),
        "{}",
        run.stderr()
    );
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "my notes\n");
    assert!(!dir.join("notes.txt.corrupt").exists());
    project
        .paratest()
        .args(["-j", "1", "--overwrite-timings", "--timings"])
        .arg_path(&notes)
        .run()
        .expect(0);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&notes).unwrap()).unwrap();
    assert_eq!(json["format_version"], 1);
    assert!(json["tests"]["tests/a.sh"].is_object(), "{json}");
}

#[test]
fn a_corrupt_timings_file_is_moved_aside_without_replacing_a_backup() {
    let project = Project::copy("isolation-suite");
    let dir = project.scratch("t");
    let timings = dir.join("timings.json");
    let corrupt = "{\"format_version\": 1, \"tests\": {\"x\": ";
    std::fs::write(&timings, corrupt).unwrap();
    std::fs::write(dir.join("timings.json.corrupt"), "an older backup").unwrap();
    project
        .paratest()
        .args(["-j", "1", "--timings"])
        .arg_path(&timings)
        .run()
        .expect(0);
    assert_eq!(
        std::fs::read_to_string(dir.join("timings.json.corrupt")).unwrap(),
        "an older backup"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("timings.json.corrupt.1")).unwrap(),
        corrupt
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&timings).unwrap()).unwrap();
    assert!(json["tests"]["tests/b.sh"].is_object(), "{json}");
}

#[test]
fn a_symlinked_timings_file_is_updated_through_the_link() {
    let project = Project::copy("isolation-suite");
    let dir = project.scratch("t");
    let real = dir.join("real/timings.json");
    std::fs::create_dir_all(real.parent().unwrap()).unwrap();
    std::fs::write(&real, "{\"format_version\": 1, \"tests\": {}}\n").unwrap();
    let link = dir.join("link.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    project
        .paratest()
        .args(["-j", "1", "--timings"])
        .arg_path(&link)
        .run()
        .expect(0);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link was replaced by a file"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&real).unwrap()).unwrap();
    assert!(json["tests"]["tests/c.sh"].is_object(), "{json}");
}

#[test]
fn a_workspace_root_equal_to_or_inside_the_source_is_refused() {
    let project = Project::copy("isolation-suite");
    for root in [project.path.join("ws"), project.path.clone()] {
        let output = run_within(
            project
                .paratest()
                .args(["-j", "2", "--keep-workspaces", "--workspace-root"])
                .arg_path(&root),
            120,
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{}:\n{stderr}",
            root.display()
        );
        assert!(
            stderr.contains("--workspace-root") && stderr.contains("inside the source"),
            "{stderr}"
        );
    }
    assert!(!project.path.join("ws").exists());
    assert!(!project.path.join("w1").exists());
}

#[test]
fn the_command_plugin_discovers_exactly_the_files_a_workspace_holds() {
    let project = Project::copy("isolation-suite");
    let cache = project.path.join("tests/build-cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(
        cache.join("CACHEDIR.TAG"),
        "Signature: 8a477f597d28d172789f06886806bc55\n",
    )
    .unwrap();
    std::fs::write(cache.join("e.sh"), "exit 0\n").unwrap();
    std::fs::create_dir_all(project.path.join("tests/deep")).unwrap();
    std::fs::write(project.path.join("tests/deep/f.sh"), "exit 0\n").unwrap();
    let pattern = ["--test-pattern", "tests/**/*.sh"];
    let list = project
        .paratest()
        .args(["list", "--message-format", "json"])
        .args(pattern)
        .run()
        .expect(0);
    let ids: Vec<String> = list
        .events()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids.iter().collect::<std::collections::BTreeSet<_>>(),
        [
            "tests/a.sh",
            "tests/b.sh",
            "tests/c.sh",
            "tests/d.sh",
            "tests/deep/f.sh"
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .iter()
        .collect(),
        "listed {ids:?}"
    );
    let run = project
        .paratest()
        .args(["-j", "2", "--message-format", "json"])
        .args(pattern)
        .run()
        .expect(0);
    assert_eq!(run.results().len(), 5, "{:?}", run.results());
}

/// A project whose tests an external plugin `flood` discovers; `MODE` says how it misbehaves.
fn flooding_project() -> Project {
    let project = Project::copy("isolation-suite");
    std::fs::write(
        project.path.join("paratest.toml"),
        "[profile.default]\nplugin = \"flood\"\n\n[plugin.flood]\ncommand = \"sh flood.sh\"\n",
    )
    .unwrap();
    std::fs::write(
        project.path.join("flood.sh"),
        r#"case "$MODE" in
  out) head -c 200000000 /dev/zero | tr '\0' 'x' ;;
  err) i=0; while [ $i -lt 5000 ]; do echo "error line $i of a plugin that says far too much"; i=$((i + 1)); done >&2; exit 1 ;;
  hang) sleep 120 ;;
esac
"#,
    )
    .unwrap();
    project
}

#[test]
fn a_plugins_discovery_output_and_error_text_are_bounded() {
    let project = flooding_project();
    let output = run_within(project.paratest().args(["list"]).env("MODE", "out"), 120);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        &stderr[..stderr.len().min(2000)]
    );
    assert!(stderr.len() < 20_000, "{} bytes of error", stderr.len());
    assert!(stderr.contains("MiB"), "{stderr}");

    let output = run_within(project.paratest().args(["list"]).env("MODE", "err"), 120);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        &stderr[..stderr.len().min(2000)]
    );
    assert!(stderr.len() < 20_000, "{} bytes of error", stderr.len());
    assert!(
        stderr.contains("error line 0 ") && stderr.contains("more bytes not shown"),
        "{stderr}"
    );
}

#[test]
fn discovery_has_a_time_limit() {
    let project = flooding_project();
    let output = run_within(
        project
            .paratest()
            .args(["list", "--discovery-timeout", "2s"])
            .env("MODE", "hang"),
        100,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("did not finish within 2s") && stderr.contains("--discovery-timeout"),
        "{stderr}"
    );
}

#[test]
fn merge_and_timings_refuse_fifos_and_devices() {
    let project = Project::copy("isolation-suite");
    let dir = project.scratch("inputs");
    let fifo = dir.join("report.fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let out = dir.join("out");
    for input in [fifo.as_path(), Path::new("/dev/null")] {
        for args in [
            vec!["merge", "-o", out.to_str().unwrap()],
            vec!["timings", "import", "-o", out.to_str().unwrap()],
            vec!["timings", "merge", "-o", out.to_str().unwrap()],
        ] {
            let output = run_within(project.paratest().args(&args).arg_path(input), 60);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{args:?} {input:?}: {stderr}"
            );
            assert!(
                stderr.contains("not a regular file"),
                "{args:?} {input:?}: {stderr}"
            );
            assert!(!out.exists(), "{args:?} wrote {}", out.display());
        }
    }
}

#[test]
fn control_characters_in_test_ids_are_escaped_on_the_terminal() {
    let project = Project::copy("isolation-suite");
    std::fs::write(project.path.join("tests/red\x1b[31mx\x07.sh"), "").unwrap();
    let list = project.paratest().args(["list"]).run().expect(0);
    let run = project.paratest().args(["-j", "1"]).run().expect(0);
    for (what, text) in [("list stdout", list.stdout()), ("run stderr", run.stderr())] {
        assert!(
            !text.contains('\x1b') && !text.contains('\x07'),
            "{what}: {text:?}"
        );
        assert!(text.contains("red\\u{1b}[31mx\\u{7}.sh"), "{what}: {text}");
    }
}

#[test]
fn old_runs_are_pruned_to_a_bound_and_logs_links_to_the_latest() {
    let project = Project::copy("isolation-suite");
    let probe = project.scratch("probe");
    for run in 0..13 {
        project
            .paratest()
            .args(["-j", "1", "tests/a.sh"])
            .env("PROBE_DIR", &probe)
            .env("MARK", format!("r{run}"))
            .run()
            .expect(0);
    }
    let runs = project.path.join(".paratest/runs");
    let kept = std::fs::read_dir(&runs).unwrap().count();
    assert_eq!(kept, 10, "{kept} run directories in {}", runs.display());
    let last = PathBuf::from(&read_env(&probe.join("a.r12.env"))["OUTPUT"]);
    assert_eq!(
        project.path.join(".paratest/logs").canonicalize().unwrap(),
        last
    );
    assert!(last.exists(), "the latest run's logs were pruned");
}

#[test]
fn an_output_inside_the_source_is_left_out_of_workspaces_and_said_so() {
    let project = Project::copy("isolation-suite");
    let run = project
        .paratest()
        .args(["-j", "2", "--output", "logs-here", "--setup-workspace"])
        .args(["test ! -e logs-here || { echo 'logs-here was copied'; exit 1; }"])
        .run()
        .expect(0);
    assert!(
        run.stderr().contains("logs-here") && run.stderr().contains("inside the source"),
        "{}",
        run.stderr()
    );
    assert!(project.path.join("logs-here/.paratest-manifest").exists());
}

#[test]
fn a_run_that_ends_early_still_removes_its_temp_dirs_and_fresh_root() {
    let project = Project::copy("isolation-suite");
    let probe = project.scratch("probe");
    project
        .paratest()
        .args(["-j", "1", "--setup"])
        .args([r#"echo "$TMPDIR" > "$PROBE_DIR/setup"; exit 1"#])
        .env("PROBE_DIR", &probe)
        .run()
        .expect(3);
    let temp = PathBuf::from(std::fs::read_to_string(probe.join("setup")).unwrap().trim());
    let root = temp.parent().unwrap();
    assert!(
        temp.is_absolute() && !root.exists(),
        "{} is left after a failed --setup",
        root.display()
    );
}
