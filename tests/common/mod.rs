//! The integration-test harness: copies a fixture project to a temporary
//! directory (the originals are never touched) and runs the real
//! `cargo-paratest` binary against it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A private copy of one fixture project.
pub struct Project {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Project {
    pub fn copy(fixture: &str) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("paratest-it-")
            .tempdir()
            .unwrap();
        let path = dir.path().join(fixture);
        copy_dir(&fixtures_dir().join(fixture), &path);
        Project { _dir: dir, path }
    }

    /// A sibling directory of the project, for markers the tests leave.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let path = self.path.parent().unwrap().join(name);
        std::fs::create_dir_all(&path).unwrap();
        path
    }

    pub fn paratest(&self) -> Paratest {
        Paratest::new(&self.path)
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path.join(relative))
            .unwrap_or_else(|e| panic!("{relative}: {e}"))
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name == ".paratest" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// One invocation of the binary under test.
pub struct Paratest {
    command: Command,
}

impl Paratest {
    pub fn new(cwd: &Path) -> Paratest {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cargo-paratest"));
        command
            .arg("paratest")
            .current_dir(cwd)
            .stdin(Stdio::null());
        // When this suite itself runs under cargo-paratest, the outer run's
        // variables must not configure the runs under test.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PARATEST") {
                command.env_remove(&name);
            }
        }
        // cargo sets OUT_DIR for this crate's own tests (it has a build
        // script): a user's shell has none, and fixtures must not see ours.
        command.env_remove("OUT_DIR");
        command
            .env_remove("CI")
            .env_remove("CARGO_TARGET_DIR")
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "0");
        Paratest { command }
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command.args(args);
        self
    }

    pub fn arg_path(mut self, path: &Path) -> Self {
        self.command.arg(path);
        self
    }

    /// `--flag PATH`.
    pub fn arg_path_pair(mut self, flag: &str, path: &Path) -> Self {
        self.command.arg(flag).arg(path);
        self
    }

    pub fn env(mut self, name: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.env(name, value);
        self
    }

    pub fn run(mut self) -> Run {
        let output = self.command.output().expect("cannot run cargo-paratest");
        Run { output }
    }

    pub fn spawn(mut self) -> std::process::Child {
        self.command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run cargo-paratest")
    }
}

/// What one invocation printed and returned.
pub struct Run {
    pub output: Output,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output.status.code().expect("killed by a signal")
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Asserts the exit code, showing both streams when it differs.
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code(),
            code,
            "exit code\n--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }

    /// The `--message-format json` events.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stdout()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
            .collect()
    }

    /// Ids of the tests started, in the order they started.
    pub fn started(&self) -> Vec<String> {
        self.events()
            .iter()
            .filter(|e| e["event"] == "test-started")
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// The closing `run-finished` event.
    pub fn finished(&self) -> serde_json::Value {
        self.events()
            .into_iter()
            .find(|e| e["event"] == "run-finished")
            .expect("a run-finished event")
    }

    /// `test-finished` events that carry a final result, by test id.
    pub fn results(&self) -> std::collections::BTreeMap<String, String> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == "test-finished" && e["retrying"] != true)
            .map(|e| {
                (
                    e["id"].as_str().unwrap().to_string(),
                    e["result"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

/// Whether a process is alive (zombies count as gone).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// A JUnit report read back with a parser (never compared as bytes).
pub fn read_junit(path: &Path) -> quick_junit::Report {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    quick_junit::Report::deserialize_from_str(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Validates against `../shared/junit/junit-10.xsd` with xmllint. Where
/// `PARATEST_REQUIRE_SCHEMA=1` (`.ci/run` sets it when `../shared` is
/// there) a missing xmllint or schema fails; elsewhere, such as a clone
/// with no `../shared` beside it, the check is skipped with a note.
pub fn assert_schema_valid(path: &Path) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/junit/junit-10.xsd");
    if !schema.exists() || Command::new("xmllint").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("PARATEST_REQUIRE_SCHEMA").is_none_or(|v| v != "1"),
            "xmllint and {} are required (PARATEST_REQUIRE_SCHEMA=1)",
            schema.display()
        );
        eprintln!(
            "note: xmllint or {} missing; schema check skipped",
            schema.display()
        );
        return;
    }
    let output = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "schema errors:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every testcase of a report as `SUITE NAME` -> its shape: `passed`,
/// `flaky:N` (N flakyFailures), `failed:N:MESSAGE` (N rerunFailures),
/// `error:N:MESSAGE`, `skipped:MESSAGE`. Two testcases for one test fail.
pub fn case_shapes(report: &quick_junit::Report) -> std::collections::BTreeMap<String, String> {
    use quick_junit::{NonSuccessKind, TestCaseStatus};
    let text = |value: &Option<quick_junit::XmlString>| {
        value
            .as_ref()
            .map_or(String::new(), |v| v.as_str().to_string())
    };
    let mut shapes = std::collections::BTreeMap::new();
    for suite in &report.test_suites {
        for case in &suite.test_cases {
            let shape = match &case.status {
                TestCaseStatus::Success { flaky_runs } if flaky_runs.is_empty() => {
                    "passed".to_string()
                }
                TestCaseStatus::Success { flaky_runs } => format!("flaky:{}", flaky_runs.len()),
                TestCaseStatus::NonSuccess {
                    kind,
                    reruns,
                    message,
                    ..
                } => {
                    let kind = if *kind == NonSuccessKind::Failure {
                        "failed"
                    } else {
                        "error"
                    };
                    format!("{kind}:{}:{}", reruns.runs.len(), text(message))
                }
                TestCaseStatus::Skipped { message, .. } => format!("skipped:{}", text(message)),
            };
            let key = format!("{} {}", suite.name.as_str(), case.name.as_str());
            assert!(
                shapes.insert(key.clone(), shape).is_none(),
                "two testcases for {key}"
            );
        }
    }
    shapes
}

/// pytest must be importable; under CI a missing pytest fails the test.
pub fn have_pytest() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import pytest"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok || std::env::var_os("CI").is_none(),
        "pytest is required under CI (.ci/run installs it)"
    );
    if !ok {
        eprintln!("note: pytest missing; test skipped");
    }
    ok
}

impl Paratest {
    /// Runs the binary through `sh -c SCRIPT sh BINARY ARGS...`: the
    /// script sets something up (a limit, a cgroup) and ends in `exec "$@"`.
    pub fn wrap_in_shell(mut self, script: &str) -> Self {
        let mut wrapped = Command::new("sh");
        wrapped.arg("-c").arg(script).arg("sh");
        wrapped.arg(self.command.get_program());
        wrapped.args(self.command.get_args());
        if let Some(dir) = self.command.get_current_dir() {
            wrapped.current_dir(dir);
        }
        for (name, value) in self.command.get_envs() {
            match value {
                Some(value) => wrapped.env(name, value),
                None => wrapped.env_remove(name),
            };
        }
        wrapped.stdin(Stdio::null());
        self.command = wrapped;
        self
    }
}

impl Paratest {
    pub fn env_remove(mut self, name: &str) -> Self {
        self.command.env_remove(name);
        self
    }

    /// Starts the run in the background, its stdout and stderr going to
    /// `log` (a pipe nobody reads could fill up and stall it).
    pub fn spawn_logged(mut self, log: &Path) -> std::process::Child {
        let file = std::fs::File::create(log).unwrap();
        self.command
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("cannot run cargo-paratest")
    }
}

/// Polls `condition` every 20 ms until it holds; panics with `what` after
/// `limit`.
pub fn wait_until(what: &str, limit: std::time::Duration, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A real `redis-server` on a free loopback port, in a temporary directory,
/// killed when dropped. `None` (with a visible note) where redis-server is
/// not installed, unless `PARATEST_REQUIRE_REDIS=1` makes that a failure.
pub struct RedisServer {
    child: std::process::Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> Option<RedisServer> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(
                std::env::var("PARATEST_REQUIRE_REDIS").as_deref() != Ok("1"),
                "redis-server is required (PARATEST_REQUIRE_REDIS=1) but not installed"
            );
            eprintln!("SKIPPED: redis-server is not installed; the queue test did not run");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start redis-server");
        let server = RedisServer {
            child,
            port,
            _dir: dir,
        };
        wait_until(
            "redis-server answers PING",
            std::time::Duration::from_secs(20),
            || ping(port),
        );
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether a Redis answers PING on the loopback port.
pub fn ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(1)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// Sends one command to the Redis on the loopback `port` and returns the
/// first line of its reply.
pub fn redis_command(port: u16, args: &[&str]) -> String {
    use std::io::{BufRead, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes()).unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut line)
        .unwrap();
    line.trim_end().to_string()
}
