//! Nothing outlives a run: processes that left their group, services of the
//! hooks, everything after SIGKILL of cargo-paratest itself; Ctrl-C acts at
//! once at every stage and is reported honestly. The fixtures record the
//! pids they start; every check reads them back and waits with a deadline.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use common::{Project, alive, case_shapes, read_junit};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Waits for `path` to exist, for at most `limit`.
fn wait_for(path: &Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The probe directories a test used. When its thread ends, every process
/// still carrying one of them in `PROBE_DIR` is killed: a failing check (or
/// the original binary) leaves nothing behind either.
struct Recorded(std::cell::RefCell<Vec<PathBuf>>);

impl Drop for Recorded {
    fn drop(&mut self) {
        use std::os::unix::ffi::OsStrExt;
        let probes = self.0.borrow();
        if probes.is_empty() {
            return;
        }
        let table = cargo_paratest::process::ProcessTable::read();
        for pid in table.pids() {
            let env = cargo_paratest::process::environment(pid);
            if env
                .get(b"PROBE_DIR".as_slice())
                .is_some_and(|dir| probes.iter().any(|p| p.as_os_str().as_bytes() == dir))
            {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
    }
}

thread_local! {
    static RECORDED: Recorded = const { Recorded(std::cell::RefCell::new(Vec::new())) };
}

/// The pid a fixture wrote to `PROBE/NAME.pid` (waiting for it).
fn pid(probe: &Path, name: &str) -> i32 {
    let path = probe.join(format!("{name}.pid"));
    wait_for(&path, Duration::from_secs(60));
    let pid = std::fs::read_to_string(&path)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    RECORDED.with(|recorded| recorded.0.borrow_mut().push(probe.to_path_buf()));
    pid
}

/// Asserts that every process in `pids` is gone within `limit`.
fn assert_gone(pids: &[(&str, i32)], limit: Duration) {
    let deadline = Instant::now() + limit;
    while pids.iter().any(|&(_, pid)| alive(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let survivors: Vec<_> = pids.iter().filter(|&&(_, pid)| alive(pid)).collect();
    for &&(_, pid) in &survivors {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    assert!(survivors.is_empty(), "survived the run: {survivors:?}");
}

/// Polls for the exit of `child` until `limit`; `None` if it still runs.
fn exit_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (long) for `child`, killing it if it never ends, and returns its streams.
fn finish(mut child: Child) -> (ExitStatus, String, String) {
    let status = exit_within(&mut child, Duration::from_secs(120)).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("cargo-paratest did not end");
    });
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stdout, stderr)
}

fn sigint(child: &Child) {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
}

/// `echo $! > PROBE/NAME.pid`, atomically, as a shell snippet.
fn record(probe: &Path, name: &str, what: &str) -> String {
    let path = probe.join(name);
    format!(
        "echo {what} > {tmp} && mv {tmp} {pid}",
        tmp = path.with_extension("tmp").display(),
        pid = path.with_extension("pid").display()
    )
}

fn events(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect()
}

#[test]
fn processes_that_left_their_group_die_with_their_test() {
    let project = Project::copy("escapers");
    let probe = project.scratch("probe");
    // By the time the workspace ends, what its tests left must be gone.
    let check = format!(
        "for p in setsid daemon; do s=$(awk '{{print $3}}' /proc/$(cat {probe}/$p.pid)/stat 2>/dev/null); \
         [ -n \"$s\" ] && [ \"$s\" != Z ] && echo $p >> {probe}/alive-at-teardown; done; true",
        probe = probe.display()
    );
    project
        .paratest()
        .args([
            "-j",
            "1",
            "setsid",
            "daemon",
            "--teardown-workspace",
            &check,
        ])
        .env("PROBE_DIR", &probe)
        .run()
        .expect(0);
    let pids = [
        ("setsid", pid(&probe, "setsid")),
        ("daemon", pid(&probe, "daemon")),
    ];
    assert!(
        !probe.join("alive-at-teardown").exists(),
        "alive after their tests: {}",
        std::fs::read_to_string(probe.join("alive-at-teardown")).unwrap_or_default()
    );
    assert_gone(&pids, Duration::from_secs(5));
}

#[test]
fn the_escapee_of_a_timed_out_test_dies() {
    let project = Project::copy("escapers");
    let probe = project.scratch("probe");
    let run = project
        .paratest()
        .args(["-j", "1", "hangs", "--timeout", "1s"])
        .args(["--message-format", "json"])
        .env("PROBE_DIR", &probe)
        .run()
        .expect(1);
    assert_eq!(
        run.results().get("tests/hangs.sh").map(String::as_str),
        Some("timed-out")
    );
    assert_gone(
        &[
            ("test", pid(&probe, "hangs")),
            ("escapee", pid(&probe, "hangs-escapee")),
        ],
        Duration::from_secs(5),
    );
}

#[test]
fn a_pytest_child_in_its_own_session_dies() {
    let project = Project::copy("escapers");
    let probe = project.scratch("probe");
    let run = common::Paratest::new(&project.path.join("pytest"))
        .args(["-j", "1", "--message-format", "json"])
        .env("PROBE_DIR", &probe)
        .run()
        .expect(0);
    assert!(
        run.results().values().all(|r| r == "passed") && !run.results().is_empty(),
        "{}",
        run.stdout()
    );
    assert_gone(
        &[("pytest child", pid(&probe, "pytest"))],
        Duration::from_secs(5),
    );
}

#[test]
fn a_daemon_of_a_served_pytest_test_dies_before_the_next_test() {
    if !common::have_pytest() {
        return;
    }
    // One worker's server runs test_a, whose daemon leaves its session and
    // is adopted by cargo-paratest, then test_b, which waits for it to be
    // gone: only the sweep after test_a can have killed it by then.
    let project = Project::copy("escapers");
    let probe = project.scratch("probe");
    let tests = project.path.join("pytest/tests");
    std::fs::remove_file(tests.join("test_escape.py")).unwrap();
    std::fs::write(
        tests.join("test_a_daemon.py"),
        r#"import os, subprocess, time

def test_a_daemon():
    pid_file = os.path.join(os.environ["PROBE_DIR"], "daemon.pid")
    script = 'setsid sh -c \'sleep 300 & echo $! > "$1.tmp" && mv "$1.tmp" "$1"\' sh "$0" </dev/null >/dev/null 2>&1 &'
    subprocess.run(["sh", "-c", script, pid_file], check=True)
    deadline = time.monotonic() + 10
    while not os.path.exists(pid_file):
        assert time.monotonic() < deadline, "the daemon never wrote its pid"
        time.sleep(0.01)
"#,
    )
    .unwrap();
    std::fs::write(
        tests.join("test_b_after.py"),
        r#"import os, time

def gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True

def test_b_after():
    pid_file = os.path.join(os.environ["PROBE_DIR"], "daemon.pid")
    assert os.path.exists(pid_file), "test_a_daemon did not run first"
    pid = int(open(pid_file).read())
    deadline = time.monotonic() + 5
    while not gone(pid):
        assert time.monotonic() < deadline, "test_a_daemon's daemon %d is still running" % pid
        time.sleep(0.01)
"#,
    )
    .unwrap();
    let run = common::Paratest::new(&project.path.join("pytest"))
        .args(["-j", "1", "--message-format", "json"])
        .env("PROBE_DIR", &probe)
        .run();
    let results = run.results();
    assert_eq!(results.len(), 2, "{}", run.stdout());
    assert!(
        results.values().all(|r| r == "passed"),
        "{results:?}\n{}",
        run.stderr()
    );
}

#[test]
fn services_of_the_setup_hooks_that_left_their_group_are_stopped() {
    let project = Project::copy("escapers");
    let probe = project.scratch("probe");
    let setup = format!(
        "setsid sleep 300 >/dev/null 2>&1 & {}",
        record(&probe, "setup", "$!")
    );
    let setup_workspace = format!(
        "setsid sleep 300 >/dev/null 2>&1 & {}",
        record(&probe, "setup-workspace", "$!")
    );
    project
        .paratest()
        .args(["-j", "1", "setsid", "--setup", &setup])
        .args(["--setup-workspace", &setup_workspace])
        .env("PROBE_DIR", &probe)
        .run()
        .expect(0);
    assert_gone(
        &[
            ("--setup service", pid(&probe, "setup")),
            ("--setup-workspace service", pid(&probe, "setup-workspace")),
            ("test escapee", pid(&probe, "setsid")),
        ],
        Duration::from_secs(5),
    );
}

#[test]
fn a_rebuilt_workspace_stops_the_old_service_first() {
    let project = Project::copy("escapers");
    let probe = project.scratch("probe");
    // Each set-up notes whether the previous one's service still runs.
    let setup_workspace = format!(
        "if [ -f {probe}/service.pid ]; then s=$(awk '{{print $3}}' /proc/$(cat {probe}/service.pid)/stat 2>/dev/null); \
         [ -n \"$s\" ] && [ \"$s\" != Z ] && echo leaked >> {probe}/leaks; \
         cat {probe}/service.pid >> {probe}/services; fi; \
         sleep 300 >/dev/null 2>&1 & {record}",
        probe = probe.display(),
        record = record(&probe, "service", "$!")
    );
    let run = project
        .paratest()
        .args(["-j", "1", "vandal", "--setup-workspace", &setup_workspace])
        .env("PROBE_DIR", &probe)
        .run()
        .expect(0);
    assert!(run.stderr().contains("making it again"), "{}", run.stderr());
    let first: i32 = std::fs::read_to_string(probe.join("services"))
        .expect("the workspace was set up twice")
        .trim()
        .parse()
        .unwrap();
    assert!(
        !probe.join("leaks").exists(),
        "the first workspace's service {first} still ran when the workspace was made again"
    );
    assert_gone(
        &[
            ("first service", first),
            ("second service", pid(&probe, "service")),
        ],
        Duration::from_secs(5),
    );
}

#[test]
fn after_sigkill_of_cargo_paratest_nothing_it_started_survives() {
    nothing_survives_the_death_of_cargo_paratest(Signal::SIGKILL);
}

#[test]
fn after_an_abort_of_cargo_paratest_nothing_it_started_survives() {
    nothing_survives_the_death_of_cargo_paratest(Signal::SIGABRT);
}

fn nothing_survives_the_death_of_cargo_paratest(signal: Signal) {
    let project = Project::copy("escapers");
    let probe = project.scratch("probe");
    let setup = format!(
        "sleep 300 >/dev/null 2>&1 & {}",
        record(&probe, "setup", "$!")
    );
    let setup_workspace = format!(
        "setsid sleep 300 >/dev/null 2>&1 & {}",
        record(&probe, "setup-workspace-$PARATEST_WORKER", "$!")
    );
    let mut child = project
        .paratest()
        .args(["-j", "2", "hangs", "stubborn", "--setup", &setup])
        .args(["--setup-workspace", &setup_workspace])
        .env("PROBE_DIR", &probe)
        .spawn();
    let pids = [
        ("--setup service", pid(&probe, "setup")),
        ("worker 1 service", pid(&probe, "setup-workspace-1")),
        ("worker 2 service", pid(&probe, "setup-workspace-2")),
        ("hanging test", pid(&probe, "hangs")),
        ("its escapee", pid(&probe, "hangs-escapee")),
        ("stubborn test", pid(&probe, "stubborn")),
    ];
    let workspace = PathBuf::from(
        std::fs::read_to_string(probe.join("hangs-workspace"))
            .unwrap()
            .trim(),
    );
    assert!(workspace.is_dir());
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
    child.wait().unwrap();
    assert_gone(&pids, Duration::from_secs(15));
    let deadline = Instant::now() + Duration::from_secs(15);
    while workspace.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !workspace.exists(),
        "the workspace {} outlived the run",
        workspace.display()
    );
}

/// A command-plugin source whose copy takes long: `count` sparse files of
/// `size` bytes each.
fn large_source(dir: &Path, count: usize, size: u64) -> PathBuf {
    let source = dir.join("large");
    std::fs::create_dir_all(source.join("data")).unwrap();
    std::fs::create_dir_all(source.join("tests")).unwrap();
    std::fs::write(
        source.join("paratest.toml"),
        "[profile.default]\nplugin = \"command\"\n[plugin.command]\npattern = \"tests/*.sh\"\ncommand = \"sh {file}\"\n",
    )
    .unwrap();
    std::fs::write(source.join("tests/ok.sh"), "exit 0\n").unwrap();
    for i in 0..count {
        let file = std::fs::File::create(source.join(format!("data/f{i}"))).unwrap();
        file.set_len(size).unwrap();
    }
    source
}

#[test]
fn ctrl_c_during_the_workspace_copy_acts_at_once() {
    // 3.2 GB to write per workspace.
    ctrl_c_during_the_copy(200, 16 << 20, 2, "w1/data");
}

#[test]
fn ctrl_c_during_the_copy_of_one_big_file_acts_at_once() {
    // One file of 8 GiB.
    ctrl_c_during_the_copy(1, 8 << 30, 1, "w1/data/f0");
}

fn ctrl_c_during_the_copy(count: usize, size: u64, workers: usize, started: &str) {
    let dir = tempfile::tempdir().unwrap();
    let source = large_source(dir.path(), count, size);
    let root = dir.path().join("workspaces");
    let mut child = common::Paratest::new(&source)
        .args(["-j", &workers.to_string(), "--workspace-root"])
        .arg_path(&root)
        .spawn();
    wait_for(&root.join(started), Duration::from_secs(60));
    sigint(&child);
    let status = exit_within(&mut child, Duration::from_secs(5));
    let _ = child.kill();
    let status = status.expect("Ctrl-C during the copy did not end the run within 5 s");
    assert_eq!(status.code(), Some(130));
    assert!(
        !root.join("w1").exists(),
        "the partial copy was left behind"
    );
}

#[test]
fn ctrl_c_during_the_teardown_is_exit_130_and_reported() {
    let project = Project::copy("escapers");
    let probe = project.scratch("probe");
    let teardown = format!(
        "{}; sleep 60; touch {}/teardown.done",
        record(&probe, "teardown", "$$"),
        probe.display()
    );
    let mut child = project
        .paratest()
        .args(["-j", "1", "setsid", "--teardown", &teardown])
        .args(["--message-format", "json"])
        .env("PROBE_DIR", &probe)
        .spawn();
    pid(&probe, "teardown");
    sigint(&child);
    // Ctrl-C acts on a running teardown as on anything else.
    let ended = exit_within(&mut child, Duration::from_secs(5));
    let (status, stdout, stderr) = finish(child);
    assert!(
        ended.is_some(),
        "Ctrl-C during --teardown did not end the run within 5 s"
    );
    assert_eq!(status.code(), Some(130), "{stderr}");
    let finished = events(&stdout)
        .into_iter()
        .find(|e| e["event"] == "run-finished")
        .expect("a run-finished event");
    assert_eq!(finished["interrupted"], true, "{finished}");
    assert_eq!(finished["exit_code"], 130, "{finished}");
    assert!(!probe.join("teardown.done").exists());
}

#[test]
fn a_second_ctrl_c_kills_at_once_and_still_runs_the_teardowns() {
    let project = Project::copy("escapers");
    let probe = project.scratch("probe");
    // Services that ignore SIGTERM: only SIGKILL stops them.
    let stubborn = "sh -c 'trap \"\" TERM; while :; do sleep 0.1; done' >/dev/null 2>&1 &";
    let setup = format!("{stubborn} {}", record(&probe, "setup", "$!"));
    let setup_workspace = format!("{stubborn} {}", record(&probe, "setup-workspace", "$!"));
    let mut child = project
        .paratest()
        .args(["-j", "1", "stubborn", "--setup", &setup])
        .args(["--setup-workspace", &setup_workspace])
        .args([
            "--teardown-workspace",
            &format!("touch {}/teardown-workspace", probe.display()),
        ])
        .args(["--teardown", &format!("touch {}/teardown", probe.display())])
        .env("PROBE_DIR", &probe)
        .spawn();
    let pids = [
        ("test", pid(&probe, "stubborn")),
        ("--setup service", pid(&probe, "setup")),
        ("--setup-workspace service", pid(&probe, "setup-workspace")),
    ];
    sigint(&child);
    wait_for(&probe.join("stubborn.term"), Duration::from_secs(10));
    sigint(&child);
    // Three grace periods (the test's, each service's) would take 6 s.
    let status = exit_within(&mut child, Duration::from_secs(3));
    let _ = child.kill();
    let status = status.expect("a second Ctrl-C still waited for grace periods");
    assert_eq!(status.code(), Some(130));
    assert!(probe.join("teardown-workspace").exists() && probe.join("teardown").exists());
    assert_gone(&pids, Duration::from_secs(5));
}

#[test]
fn interrupted_tests_are_interrupted_not_failed_and_real_failures_stay() {
    let project = Project::copy("escapers");
    let probe = project.scratch("probe");
    let child = project
        .paratest()
        .args(["-j", "2", "hangs", "retried", "--retries", "1"])
        .args(["--message-format", "json"])
        .env("PROBE_DIR", &probe)
        .spawn();
    pid(&probe, "hangs");
    pid(&probe, "retried");
    sigint(&child);
    let (status, stdout, stderr) = finish(child);
    assert_eq!(status.code(), Some(130), "{stderr}");
    let results: std::collections::BTreeMap<String, (String, String)> = events(&stdout)
        .into_iter()
        .filter(|e| e["event"] == "test-finished" && e["retrying"] != true)
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_string(),
                (
                    e["result"].as_str().unwrap().to_string(),
                    e["message"].as_str().unwrap_or("").to_string(),
                ),
            )
        })
        .collect();
    assert_eq!(results["tests/hangs.sh"].0, "interrupted", "{results:?}");
    let finished = events(&stdout)
        .into_iter()
        .find(|e| e["event"] == "run-finished")
        .expect("a run-finished event");
    assert_eq!(finished["interrupted_tests"], 1, "{finished}");
    assert_eq!(finished["failed"], 1, "{finished}");
    assert_eq!(results["tests/retried.sh"].0, "failed", "{results:?}");
    assert!(stderr.contains("INTRPTD"), "{stderr}");
    let junit = project.path.join(".paratest/junit.xml");
    common::assert_schema_valid(&junit);
    let shapes = case_shapes(&read_junit(&junit));
    let hangs = &shapes["tests hangs.sh"];
    assert!(hangs.starts_with("error:0:interrupted"), "{shapes:?}");
    let retried = &shapes["tests retried.sh"];
    assert!(
        retried.starts_with("failed:") && !retried.contains("interrupted"),
        "the real failure's message was replaced: {retried}"
    );
}

/// A pids cgroup (v1) of `max` tasks for one test, if this machine lets us
/// make one (root, with the pids controller mounted).
struct PidsCgroup(PathBuf);

impl PidsCgroup {
    fn new(max: u32) -> Option<PidsCgroup> {
        let path = Path::new("/sys/fs/cgroup/pids")
            .join(format!("paratest-it-{}-{max}", std::process::id()));
        std::fs::create_dir(&path).ok()?;
        std::fs::write(path.join("pids.max"), max.to_string()).ok()?;
        Some(PidsCgroup(path))
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        // The supervisor may still be leaving.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::remove_dir(&self.0).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn running_out_of_processes_is_exit_3_runs_the_teardown_and_never_panics() {
    let Some(cgroup) = PidsCgroup::new(20) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "a pids cgroup is required under CI"
        );
        eprintln!("note: cannot make a pids cgroup here (not root?); check skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("many");
    std::fs::create_dir_all(source.join("tests")).unwrap();
    std::fs::write(
        source.join("paratest.toml"),
        "[profile.default]\nplugin = \"command\"\n[plugin.command]\npattern = \"tests/*.sh\"\ncommand = \"sh {file}\"\n",
    )
    .unwrap();
    for i in 0..120 {
        std::fs::write(source.join(format!("tests/t{i:03}.sh")), "sleep 0.2\n").unwrap();
    }
    let marker = dir.path().join("teardown-ran");
    // The shell joins the cgroup, then becomes cargo-paratest.
    let run = common::Paratest::new(&source)
        .args(["-j", "100", "--teardown"])
        .args([format!("touch {}", marker.display())])
        .wrap_in_shell(&format!(
            "echo $$ > {}/cgroup.procs && exec \"$@\"",
            cgroup.0.display()
        ))
        .run();
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(
        run.stderr().contains("out of resources"),
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains("panicked"), "{}", run.stderr());
    assert!(marker.exists(), "the teardown ran");
}

#[test]
fn sighup_is_an_interrupt_with_teardowns_not_a_sudden_death() {
    let project = Project::copy("escapers");
    let probe = project.scratch("probe");
    let child = project
        .paratest()
        .args(["-j", "1", "hangs"])
        .args(["--teardown", &format!("touch {}/teardown", probe.display())])
        .env("PROBE_DIR", &probe)
        .spawn();
    let pids = [
        ("test", pid(&probe, "hangs")),
        ("escapee", pid(&probe, "hangs-escapee")),
    ];
    kill(Pid::from_raw(child.id() as i32), Signal::SIGHUP).unwrap();
    let (status, _, stderr) = finish(child);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(probe.join("teardown").exists(), "the teardown ran");
    assert_gone(&pids, Duration::from_secs(5));
}
