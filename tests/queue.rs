//! `run --queue`: machines of one build share a real Redis queue
//! (`fixtures/queue-suite`, one source copy per machine). Each test starts
//! its own `redis-server` on a free loopback port.

mod common;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use common::{Project, RedisServer, case_shapes, read_junit, wait_until};

const LONG: Duration = Duration::from_secs(120);

/// One machine of a build: its own copy of the fixture.
struct Machine {
    name: String,
    project: Project,
}

impl Machine {
    fn new(name: &str) -> Machine {
        Machine {
            name: name.to_string(),
            project: Project::copy("queue-suite"),
        }
    }

    /// `run --queue` with one worker, a 2 s lease (short, for the tests
    /// where one lapses; renewed every 0.5 s) and the probe directory.
    fn run(&self, redis: &RedisServer, build: &str, probe: &Path) -> common::Paratest {
        self.project
            .paratest()
            .args(["run", "--queue", &redis.url(), "--build-id", build])
            .args(["--worker-id", &self.name, "-j", "1"])
            .env("MACHINE", &self.name)
            .env("QUEUE_PROBE", probe)
            .env("PARATEST_QUEUE_LEASE", "2s")
    }

    fn log(&self) -> PathBuf {
        self.project.path.parent().unwrap().join("machine.log")
    }

    fn spawn(&self, redis: &RedisServer, build: &str, probe: &Path, args: &[&str]) -> Child {
        self.run(redis, build, probe)
            .args(args)
            .spawn_logged(&self.log())
    }

    /// Waits for the machine's exit and returns its code, showing its log
    /// when it is not `expected`.
    fn expect(&self, child: &mut Child, expected: i32) {
        let status = child.wait().unwrap();
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        assert_eq!(status.code(), Some(expected), "{}:\n{log}", self.name);
    }
}

/// `(machine, attempt)` of every run of `test` the probe saw.
fn runs_of(probe: &Path, test: &str) -> Vec<(String, u32)> {
    let mut runs: Vec<(String, u32)> = std::fs::read_dir(probe)
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let mut parts = name.splitn(3, '.');
            let (t, machine, attempt) = (parts.next()?, parts.next()?, parts.next()?);
            let attempt: u32 = attempt.parse().ok()?;
            (t == test).then(|| (machine.to_string(), attempt))
        })
        .collect();
    runs.sort();
    runs
}

/// `queue report` for `build`: its exit code and the report's shapes.
fn report(
    redis: &RedisServer,
    build: &str,
    dir: &Path,
) -> (i32, std::collections::BTreeMap<String, String>, String) {
    let junit = dir.join(format!("{build}.xml"));
    let run = common::Paratest::new(dir)
        .args([
            "queue",
            "report",
            "--queue",
            &redis.url(),
            "--build-id",
            build,
        ])
        .arg_path_pair("--junit", &junit)
        .arg_path_pair("--timings", &dir.join(format!("{build}.json")))
        .args(["--timeout", "60s"])
        .run();
    let shapes = if junit.exists() {
        common::assert_schema_valid(&junit);
        case_shapes(&read_junit(&junit))
    } else {
        Default::default()
    };
    (run.code(), shapes, run.stdout() + &run.stderr())
}

fn expected_shapes(names: &[&str]) -> std::collections::BTreeMap<String, String> {
    names
        .iter()
        .map(|name| (format!("tests {name}.sh"), "passed".to_string()))
        .collect()
}

const EIGHT: [&str; 8] = ["t01", "t02", "t03", "t04", "t05", "t06", "t07", "t08"];

#[test]
fn a_killed_machine_s_test_runs_on_another_and_the_report_holds_every_test_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let probe = tempfile::tempdir().unwrap();
    let machines: Vec<Machine> = ["m1", "m2", "m3"].iter().map(|n| Machine::new(n)).collect();
    let filters = ["t0", "hold"];
    let mut children: Vec<Child> = machines
        .iter()
        .map(|m| m.spawn(&redis, "kill", probe.path(), &filters))
        .collect();
    wait_until("some machine runs hold.sh", LONG, || {
        !runs_of(probe.path(), "hold").is_empty()
    });
    let victim = runs_of(probe.path(), "hold")[0].0.clone();
    let at = machines.iter().position(|m| m.name == victim).unwrap();
    children[at].kill().unwrap();
    children[at].wait().unwrap();
    std::fs::write(probe.path().join("release"), "").unwrap();
    for (i, machine) in machines.iter().enumerate() {
        if i != at {
            machine.expect(&mut children[i], 0);
        }
    }
    let elsewhere: Vec<String> = runs_of(probe.path(), "hold")
        .into_iter()
        .map(|(machine, _)| machine)
        .filter(|m| *m != victim)
        .collect();
    assert_eq!(elsewhere.len(), 1, "hold.sh ran again on one other machine");
    let (code, shapes, output) = report(&redis, "kill", probe.path());
    assert_eq!(code, 0, "{output}");
    let mut names = EIGHT.to_vec();
    names.push("hold");
    assert_eq!(shapes, expected_shapes(&names), "{output}");
}

#[test]
fn a_failing_test_is_retried_on_another_machine() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let probe = tempfile::tempdir().unwrap();
    let machines = [Machine::new("m1"), Machine::new("m2")];
    let args = ["--retries", "1", "flaky", "t0"];
    let mut children: Vec<Child> = machines
        .iter()
        .map(|m| {
            m.run(&redis, "retry", probe.path())
                .env("QUEUE_SLEEP", "0.5")
                .args(args)
                .spawn_logged(&m.log())
        })
        .collect();
    for (machine, child) in machines.iter().zip(&mut children) {
        machine.expect(child, 0);
    }
    let runs = runs_of(probe.path(), "flaky");
    assert_eq!(runs.len(), 2, "{runs:?}");
    let first = runs.iter().find(|r| r.1 == 1).expect("a first attempt");
    let second = runs.iter().find(|r| r.1 == 2).expect("a retry");
    assert_ne!(first.0, second.0, "the retry ran on another machine");
    let (code, shapes, output) = report(&redis, "retry", probe.path());
    assert_eq!(code, 0, "{output}");
    assert_eq!(shapes["tests flaky.sh"], "flaky:1", "{output}");
    assert_eq!(shapes.len(), 9, "{shapes:?}");
}

#[test]
fn two_builds_on_one_redis_do_not_mix() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let probe = tempfile::tempdir().unwrap();
    let (a, b) = (Machine::new("a"), Machine::new("b"));
    let mut first = a.spawn(&redis, "one", probe.path(), &["t01", "t02", "t03"]);
    let mut second = b.spawn(&redis, "two", probe.path(), &["t06", "t07", "t08"]);
    a.expect(&mut first, 0);
    b.expect(&mut second, 0);
    let (code, one, output) = report(&redis, "one", probe.path());
    assert_eq!(code, 0, "{output}");
    assert_eq!(one, expected_shapes(&["t01", "t02", "t03"]));
    let (code, two, output) = report(&redis, "two", probe.path());
    assert_eq!(code, 0, "{output}");
    assert_eq!(two, expected_shapes(&["t06", "t07", "t08"]));
    let status = common::Paratest::new(probe.path())
        .args([
            "queue",
            "status",
            "--queue",
            &redis.url(),
            "--build-id",
            "two",
        ])
        .run()
        .expect(0);
    let stdout = status.stdout();
    assert!(stdout.contains("build two: 3/3 tests done"), "{stdout}");
    assert!(stdout.contains("  b: done"), "{stdout}");
    for test in ["t01", "t02", "t03"] {
        assert_eq!(runs_of(probe.path(), test), [("a".to_string(), 1)]);
    }
}

#[test]
fn a_machine_with_another_test_list_is_refused_naming_the_difference() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let probe = tempfile::tempdir().unwrap();
    let (a, b) = (Machine::new("a"), Machine::new("b"));
    a.run(&redis, "diff", probe.path())
        .args(["t01", "t02"])
        .run()
        .expect(0);
    let refused = b
        .run(&redis, "diff", probe.path())
        .args(["t01", "t03"])
        .run()
        .expect(3);
    let stderr = refused.stderr();
    assert!(
        stderr.contains("`tests/t02.sh`") && stderr.contains("`tests/t03.sh`"),
        "{stderr}"
    );
    assert!(runs_of(probe.path(), "t03").is_empty(), "nothing ran on b");
}

#[test]
fn a_machine_joining_late_still_gets_work() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let probe = tempfile::tempdir().unwrap();
    let (early, late) = (Machine::new("early"), Machine::new("late"));
    let mut first = early
        .run(&redis, "late", probe.path())
        .env("QUEUE_SLEEP", "0.5")
        .args(["t0"])
        .spawn_logged(&early.log());
    wait_until("the early machine finished a test", LONG, || {
        EIGHT
            .iter()
            .filter(|t| !runs_of(probe.path(), t).is_empty())
            .count()
            >= 2
    });
    let mut second = late
        .run(&redis, "late", probe.path())
        .env("QUEUE_SLEEP", "0.5")
        .args(["t0"])
        .spawn_logged(&late.log());
    early.expect(&mut first, 0);
    late.expect(&mut second, 0);
    let on_late = EIGHT
        .iter()
        .filter(|t| runs_of(probe.path(), t).iter().any(|r| r.0 == "late"))
        .count();
    assert!(on_late >= 1, "the late machine ran nothing");
    let (code, shapes, output) = report(&redis, "late", probe.path());
    assert_eq!(code, 0, "{output}");
    assert_eq!(shapes, expected_shapes(&EIGHT));
}

#[test]
fn an_interrupted_machine_gives_its_test_back_at_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let probe = tempfile::tempdir().unwrap();
    let (a, b) = (Machine::new("a"), Machine::new("b"));
    // A lease far longer than the test waits: only a release frees the test.
    let mut first = a
        .run(&redis, "int", probe.path())
        .env("PARATEST_QUEUE_LEASE", "10m")
        .args(["hold"])
        .spawn_logged(&a.log());
    wait_until("a runs hold.sh", LONG, || {
        !runs_of(probe.path(), "hold").is_empty()
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    a.expect(&mut first, 130);
    std::fs::write(probe.path().join("release"), "").unwrap();
    let started = std::time::Instant::now();
    b.run(&redis, "int", probe.path())
        .env("PARATEST_QUEUE_LEASE", "10m")
        .args(["hold"])
        .run()
        .expect(0);
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(runs_of(probe.path(), "hold").last().unwrap().0, "b");
    let (code, shapes, output) = report(&redis, "int", probe.path());
    assert_eq!(code, 0, "{output}");
    assert_eq!(shapes, expected_shapes(&["hold"]));
}

#[test]
fn the_report_exits_3_when_every_machine_died_with_tests_left() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let probe = tempfile::tempdir().unwrap();
    let only = Machine::new("only");
    let mut child = only.spawn(&redis, "dead", probe.path(), &["hold", "t01"]);
    wait_until("it runs hold.sh", LONG, || {
        !runs_of(probe.path(), "hold").is_empty()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let (code, shapes, output) = report(&redis, "dead", probe.path());
    assert_eq!(code, 3, "{output}");
    assert!(
        output.contains("every machine of the build is gone"),
        "{output}"
    );
    assert!(!shapes.contains_key("tests hold.sh"), "{shapes:?}");
}

#[test]
fn an_unreachable_redis_is_exit_3_with_a_clear_message() {
    let project = Project::copy("queue-suite");
    let url = format!("redis://127.0.0.1:{}", common::free_port());
    let run = project
        .paratest()
        .args(["run", "--queue", &url, "--build-id", "x"])
        .run()
        .expect(3);
    assert!(
        run.stderr().contains("cannot reach the queue's Redis"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_queue_outside_ci_needs_a_build_id() {
    let project = Project::copy("queue-suite");
    let mut paratest = project
        .paratest()
        .args(["run", "--queue", "redis://127.0.0.1:1"]);
    for name in [
        "GITHUB_RUN_ID",
        "CI_PIPELINE_ID",
        "BUILDKITE_BUILD_ID",
        "CIRCLE_WORKFLOW_ID",
        "BUILD_TAG",
    ] {
        paratest = paratest.env_remove(name);
    }
    let run = paratest.run().expect(2);
    assert!(run.stderr().contains("--build-id"), "{}", run.stderr());
}

#[test]
fn a_stale_machine_cannot_record_a_test_it_no_longer_holds() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let probe = tempfile::tempdir().unwrap();
    let (a, b) = (Machine::new("a"), Machine::new("b"));
    let mut first = a.spawn(&redis, "stale", probe.path(), &["hold"]);
    wait_until("a runs hold.sh", LONG, || {
        !runs_of(probe.path(), "hold").is_empty()
    });
    // a hangs (heartbeat included): its lease lapses and b takes the test.
    let pid = Pid::from_raw(first.id() as i32);
    kill(pid, Signal::SIGSTOP).unwrap();
    std::fs::write(probe.path().join("release"), "").unwrap();
    let run = b
        .run(&redis, "stale", probe.path())
        .args(["hold"])
        .run()
        .expect(0);
    assert!(run.stderr().contains("PASS"), "{}", run.stderr());
    kill(pid, Signal::SIGCONT).unwrap();
    a.expect(&mut first, 0);
    let log = std::fs::read_to_string(a.log()).unwrap();
    assert!(log.contains("lease had lapsed"), "{log}");
    let (code, shapes, output) = report(&redis, "stale", probe.path());
    assert_eq!(code, 0, "{output}");
    assert_eq!(shapes, expected_shapes(&["hold"]));
    assert_eq!(
        runs_of(probe.path(), "hold"),
        [("a".to_string(), 1), ("b".to_string(), 1)]
    );
}

#[test]
fn the_global_retry_bound_stops_retries() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let probe = tempfile::tempdir().unwrap();
    let only = Machine::new("only");
    only.run(&redis, "bound", probe.path())
        .env("PARATEST_QUEUE_MAX_RETRIES", "0")
        .args(["--retries", "1", "flaky"])
        .run()
        .expect(1);
    assert_eq!(runs_of(probe.path(), "flaky"), [("only".to_string(), 1)]);
    let (code, shapes, output) = report(&redis, "bound", probe.path());
    assert_eq!(code, 1, "{output}");
    assert!(
        shapes["tests flaky.sh"].starts_with("failed:0:"),
        "{shapes:?}"
    );
}

#[test]
fn a_dropped_connection_is_made_again() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let probe = tempfile::tempdir().unwrap();
    let only = Machine::new("only");
    let mut child = only.spawn(&redis, "drop", probe.path(), &["hold", "t01"]);
    wait_until("it runs hold.sh", LONG, || {
        !runs_of(probe.path(), "hold").is_empty()
    });
    let killed = common::redis_command(redis.port, &["CLIENT", "KILL", "TYPE", "normal"]);
    assert!(killed.starts_with(':'), "{killed}");
    assert_ne!(killed, ":0", "the machine had connections to drop");
    std::fs::write(probe.path().join("release"), "").unwrap();
    only.expect(&mut child, 0);
    let (code, shapes, output) = report(&redis, "drop", probe.path());
    assert_eq!(code, 0, "{output}");
    assert_eq!(shapes, expected_shapes(&["hold", "t01"]));
}

#[test]
fn a_machine_that_loses_redis_keeps_its_results_and_exits_3() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let probe = tempfile::tempdir().unwrap();
    let only = Machine::new("only");
    let mut child = only
        .run(&redis, "lost", probe.path())
        .env("PARATEST_QUEUE_RECONNECT", "1s")
        .args(["hold", "t01"])
        .spawn_logged(&only.log());
    wait_until("it runs hold.sh", LONG, || {
        !runs_of(probe.path(), "hold").is_empty()
    });
    drop(redis);
    std::fs::write(probe.path().join("release"), "").unwrap();
    only.expect(&mut child, 3);
    let log = std::fs::read_to_string(only.log()).unwrap();
    assert!(log.contains("lost the queue"), "{log}");
    let shapes = case_shapes(&read_junit(&only.project.path.join(".paratest/junit.xml")));
    assert_eq!(shapes["tests hold.sh"], "passed", "{shapes:?}");
}

#[test]
fn a_queue_url_that_is_not_redis_is_a_usage_error() {
    let project = Project::copy("queue-suite");
    let run = project
        .paratest()
        .args(["run", "--queue", "http://127.0.0.1:1", "--build-id", "x"])
        .run()
        .expect(2);
    assert!(
        run.stderr()
            .contains("--queue http://127.0.0.1:1: expected redis://HOST:PORT[/DB]"),
        "{}",
        run.stderr()
    );
    let run = project
        .paratest()
        .args([
            "run",
            "--queue",
            "redis://127.0.0.1:1",
            "--build-id",
            "x",
            "--partition",
            "1/2",
        ])
        .run()
        .expect(2);
    assert!(run.stderr().contains("--partition"), "{}", run.stderr());
}

/// A pytest file's own test functions reach the build's report as they
/// reach the machine's: one machine alone gives the same two reports.
#[test]
fn the_build_report_keeps_a_plugin_s_framework_cases() {
    let have_pytest = std::process::Command::new("python3")
        .args(["-c", "import pytest"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_pytest {
        assert!(
            std::env::var_os("CI").is_none(),
            "pytest is required under CI"
        );
        eprintln!("SKIPPED: pytest missing");
        return;
    }
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let project = Project::copy("pytest-project");
    let run = project
        .paratest()
        .args([
            "run",
            "--plugin",
            "pytest",
            "-j",
            "2",
            "--queue",
            &redis.url(),
        ])
        .args(["--build-id", "py", "test_basic", "test_marks", "test_param"])
        .run()
        .expect(1);
    let own = case_shapes(&read_junit(&project.path.join(".paratest/junit.xml")));
    assert!(own.len() >= 9, "{own:?}\n{}", run.stderr());
    let (code, build, output) = report(&redis, "py", project.path.parent().unwrap());
    assert_eq!(code, 1, "{output}");
    assert_eq!(build, own, "{output}");
}
