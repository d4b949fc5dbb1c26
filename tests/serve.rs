//! Persistent pytest workers (serve sessions): one pytest per worker that
//! collects once and runs the files as they come. The fixture's
//! `conftest.py` writes one line per pytest session to `PROBE/sessions`,
//! so every check can count the servers a run started.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Project, Run};

/// A fresh copy of the fixture and an empty probe directory beside it.
fn serve_project() -> (Project, PathBuf) {
    let project = Project::copy("pytest-serve");
    let probe = project.scratch("probe");
    (project, probe)
}

/// The pytest sessions a run started, one line each: `worker=N pid=P`.
fn sessions(probe: &Path) -> Vec<String> {
    std::fs::read_to_string(probe.join("sessions"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `(result, message)` of every final test-finished event, by case id.
fn outcomes(run: &Run) -> BTreeMap<String, (String, String)> {
    run.events()
        .into_iter()
        .filter(|e| e["event"] == "test-finished" && e["retrying"] != true)
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_string(),
                (
                    e["result"].as_str().unwrap_or("").to_string(),
                    e["message"].as_str().unwrap_or("").to_string(),
                ),
            )
        })
        .collect()
}

fn assert_passed(outcomes: &BTreeMap<String, (String, String)>, prefix: &str, count: usize) {
    let cases: Vec<_> = outcomes
        .iter()
        .filter(|(id, _)| id.starts_with(prefix))
        .collect();
    assert_eq!(cases.len(), count, "{prefix}: {outcomes:?}");
    for (id, (result, message)) in cases {
        assert_eq!(result, "passed", "{id}: {message}");
    }
}

#[test]
fn session_fixtures_run_once_per_worker_when_served_and_once_per_file_without() {
    if !common::have_pytest() {
        return;
    }
    let files = ["tests/test_a", "tests/test_b", "tests/test_c"];
    let (project, probe) = serve_project();
    project
        .paratest()
        .args(["--plugin", "pytest", "-j", "2"])
        .args(files)
        .env("SERVE_PROBE", &probe)
        .run()
        .expect(0);
    let served = sessions(&probe);
    assert!(
        !served.is_empty() && served.len() <= 2,
        "one session per worker at most: {served:?}"
    );
    let workers: std::collections::HashSet<_> = served
        .iter()
        .map(|line| line.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(workers.len(), served.len(), "one per worker: {served:?}");

    let (project, probe) = serve_project();
    std::fs::write(
        project.path.join("paratest.toml"),
        "[plugin.pytest]\npersistent = false\n",
    )
    .unwrap();
    project
        .paratest()
        .args(["--plugin", "pytest", "-j", "2"])
        .args(files)
        .env("SERVE_PROBE", &probe)
        .run()
        .expect(0);
    assert_eq!(sessions(&probe).len(), 3, "a process per file");
}

#[test]
fn a_dying_server_fails_only_the_test_in_flight_and_the_worker_goes_on() {
    if !common::have_pytest() {
        return;
    }
    for (how, ended) in [("exit", "exit status 3"), ("segv", "killed by signal 11")] {
        let (project, probe) = serve_project();
        let run = project
            .paratest()
            .args(["--plugin", "pytest", "-j", "1", "--message-format", "json"])
            .args(["tests/test_0_crash", "tests/test_a", "tests/test_b"])
            .env("SERVE_PROBE", &probe)
            .env("SERVE_CRASH", how)
            .run()
            .expect(1);
        let outcomes = outcomes(&run);
        let (result, message) = &outcomes["tests/test_0_crash.py::test_crash"];
        assert_eq!(result, "failed", "{how}");
        assert!(
            message.contains(&format!(
                "the pytest worker died while running this test: {ended}"
            )),
            "{how}: {message}"
        );
        assert_passed(&outcomes, "tests/test_0_crash.py::test_before", 1);
        assert_passed(&outcomes, "tests/test_a.py", 3);
        assert_passed(&outcomes, "tests/test_b.py", 3);
        assert_eq!(
            sessions(&probe).len(),
            2,
            "{how}: the crashed server and its replacement"
        );
    }
}

#[test]
fn a_hanging_test_times_out_and_a_new_server_runs_the_rest() {
    if !common::have_pytest() {
        return;
    }
    let (project, probe) = serve_project();
    let run = project
        .paratest()
        .args(["--plugin", "pytest", "-j", "1", "--timeout", "3s"])
        .args(["--message-format", "json"])
        .args(["tests/test_0_hang", "tests/test_a"])
        .env("SERVE_PROBE", &probe)
        .env("SERVE_HANG", "1")
        .run()
        .expect(1);
    let finished = run.finished();
    assert_eq!(finished["timed_out"], 1, "{finished}");
    let outcomes = outcomes(&run);
    let (result, message) = &outcomes["tests/test_0_hang.py::test_hangs"];
    assert_eq!(result, "timed-out", "{message}");
    assert_passed(&outcomes, "tests/test_a.py", 3);
    let started = std::fs::read_to_string(probe.join("hang.started")).unwrap();
    assert!(started.contains("serve_fd=3"), "served: {started}");
    assert_eq!(sessions(&probe).len(), 2, "the killed server and a new one");
}

#[test]
fn output_garbage_and_raw_fd_writes_do_not_break_the_protocol() {
    if !common::have_pytest() {
        return;
    }
    // Captured by pytest, then with `-s`: straight to the server's fd 1 and 2.
    for args in ["[]", "[\"-s\"]"] {
        let (project, probe) = serve_project();
        std::fs::write(
            project.path.join("paratest.toml"),
            format!("[plugin.pytest]\nargs = {args}\n"),
        )
        .unwrap();
        let run = project
            .paratest()
            .args(["--plugin", "pytest", "-j", "1", "--message-format", "json"])
            .args(["tests/test_noise", "tests/test_a", "tests/test_b"])
            .env("SERVE_PROBE", &probe)
            .run()
            .expect(0);
        let outcomes = outcomes(&run);
        assert_passed(&outcomes, "tests/test_noise.py", 1);
        assert_passed(&outcomes, "tests/test_a.py", 3);
        assert_passed(&outcomes, "tests/test_b.py", 3);
        assert_eq!(sessions(&probe).len(), 1, "{args}: one server for all");
        if args != "[]" {
            // The server's own output during the test is in the test's log.
            let logs = project.path.join(".paratest/logs");
            let log = std::fs::read_dir(&logs)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| {
                    let name = p.file_name().unwrap().to_string_lossy().into_owned();
                    name.contains("test_noise") && name.ends_with(".stdout")
                })
                .expect("a log of test_noise");
            let text = String::from_utf8_lossy(&std::fs::read(log).unwrap()).into_owned();
            assert!(text.contains("raw fd 1"), "{text}");
        }
    }
}

#[test]
fn workspace_reset_on_failure_restarts_the_server_in_a_fresh_workspace() {
    if !common::have_pytest() {
        return;
    }
    let (project, probe) = serve_project();
    let run = project
        .paratest()
        .args(["--plugin", "pytest", "-j", "1", "--message-format", "json"])
        .args(["--workspace-reset", "on-failure"])
        .args(["tests/test_0_dirty", "tests/test_a", "tests/test_b"])
        .env("SERVE_PROBE", &probe)
        .env("SERVE_DIRTY", "1")
        .run()
        .expect(1);
    let outcomes = outcomes(&run);
    assert_eq!(
        outcomes["tests/test_0_dirty.py::test_dirties_the_workspace_and_fails"].0,
        "failed"
    );
    // They read `data.txt` from their cwd: a fresh workspace, not the removed one.
    assert_passed(&outcomes, "tests/test_a.py", 3);
    assert_passed(&outcomes, "tests/test_b.py", 3);
    assert_eq!(
        sessions(&probe).len(),
        2,
        "the first server and the one in the new workspace"
    );
}

#[test]
fn a_retried_flaky_test_is_flaky_on_the_same_server() {
    if !common::have_pytest() {
        return;
    }
    let (project, probe) = serve_project();
    let run = project
        .paratest()
        .args(["--plugin", "pytest", "-j", "1", "--retries", "1"])
        .args([
            "--message-format",
            "json",
            "tests/test_flaky",
            "tests/test_a",
        ])
        .env("SERVE_PROBE", &probe)
        .run()
        .expect(0);
    assert_eq!(
        run.results()["tests/test_flaky.py::test_flaky"],
        "flaky",
        "{}",
        run.stdout()
    );
    assert_eq!(sessions(&probe).len(), 1, "the retry reuses the server");
}

#[test]
fn ctrl_c_while_a_served_test_runs_is_exit_130_and_nothing_survives() {
    if !common::have_pytest() {
        return;
    }
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let (project, probe) = serve_project();
    let log = project.scratch("logs").join("run.log");
    let mut child = project
        .paratest()
        .args(["--plugin", "pytest", "-j", "2"])
        .args(["tests/test_0_hang", "tests/test_a"])
        .env("SERVE_PROBE", &probe)
        .env("SERVE_HANG", "1")
        .spawn_logged(&log);
    // A failed check must not leave the run (and its 600 s test) behind.
    struct Stop(i32);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = kill(Pid::from_raw(self.0), Signal::SIGINT);
        }
    }
    let _stop = Stop(child.id() as i32);
    let started = probe.join("hang.started");
    common::wait_until("the hanging test started", Duration::from_secs(60), || {
        std::fs::read_to_string(&started).is_ok_and(|s| s.ends_with('\n'))
    });
    let line = std::fs::read_to_string(&started).unwrap();
    assert!(line.contains("serve_fd=3"), "a served test: {line}");
    let server: i32 = line.trim().rsplit("pid=").next().unwrap().parse().unwrap();
    let servers: Vec<i32> = sessions(&probe)
        .iter()
        .map(|l| l.rsplit("pid=").next().unwrap().parse().unwrap())
        .collect();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let mut status = None;
    common::wait_until("cargo-paratest exits", Duration::from_secs(15), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let output = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.unwrap().code(), Some(130), "{output}");
    common::wait_until("every server is gone", Duration::from_secs(5), || {
        !common::alive(server) && servers.iter().all(|&pid| !common::alive(pid))
    });
}
