//! `queue report` and `queue status`: a build's results, read back from its
//! queue.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use redis::Connection;

use super::{StoredAttempt, StoredCase, open, prefix};
use crate::error::{Error, Result, exit};
use crate::model::{Attempt, AttemptStatus, Invocation, TestCase, TestOutcome, TestResult};
use crate::report::Counts;
use crate::schedule::timings::{Timings, unix_now};

/// What the queue holds about a build at one moment.
pub struct Snapshot {
    pub created: bool,
    pub all: Vec<String>,
    pub cases: HashMap<String, String>,
    pub results: HashMap<String, String>,
    pub history: HashMap<String, String>,
    pub queued: usize,
    pub retries: usize,
    pub running: Vec<(String, String)>,
    /// Machine, state, milliseconds since it was last heard of, its lease in ms.
    pub machines: Vec<(String, String, u64, u64)>,
}

fn query<T: redis::FromRedisValue>(conn: &mut Connection, cmd: &mut redis::Cmd) -> Result<T> {
    cmd.query(conn)
        .map_err(|e| Error::cannot_run(format!("queue: {e}")))
}

impl Snapshot {
    pub fn read(conn: &mut Connection, build: &str) -> Result<Snapshot> {
        let p = prefix(build);
        let key = |name: &str| format!("{p}{name}");
        let created: bool = query(conn, redis::cmd("EXISTS").arg(key("created")))?;
        let all: Vec<String> = query(conn, redis::cmd("LRANGE").arg(key("all")).arg(0).arg(-1))?;
        let cases = query(conn, redis::cmd("HGETALL").arg(key("cases")))?;
        let results = query(conn, redis::cmd("HGETALL").arg(key("results")))?;
        let history = query(conn, redis::cmd("HGETALL").arg(key("history")))?;
        let queued = query(conn, redis::cmd("LLEN").arg(key("queue")))?;
        let retries = query(conn, redis::cmd("LLEN").arg(key("retry")))?;
        let owners: HashMap<String, String> = query(conn, redis::cmd("HGETALL").arg(key("owner")))?;
        let mut running: Vec<(String, String)> = owners.into_iter().collect();
        running.sort();
        let (secs, micros): (u64, u64) = query(conn, &mut redis::cmd("TIME"))?;
        let now = secs * 1000 + micros / 1000;
        let seen: HashMap<String, u64> = query(conn, redis::cmd("HGETALL").arg(key("machines")))?;
        let states: HashMap<String, String> = query(conn, redis::cmd("HGETALL").arg(key("state")))?;
        let leases: HashMap<String, u64> = query(conn, redis::cmd("HGETALL").arg(key("leases")))?;
        let mut machines: Vec<(String, String, u64, u64)> = seen
            .into_iter()
            .map(|(name, last)| {
                let state = states
                    .get(&name)
                    .cloned()
                    .unwrap_or_else(|| "running".into());
                let lease = leases.get(&name).copied().unwrap_or(30_000);
                (name, state, now.saturating_sub(last), lease)
            })
            .collect();
        machines.sort();
        Ok(Snapshot {
            created,
            all,
            cases,
            results,
            history,
            queued,
            retries,
            running,
            machines,
        })
    }

    pub fn finished(&self) -> bool {
        self.created && self.all.iter().all(|id| self.results.contains_key(id))
    }

    /// Every machine that ever joined is done, gone, or silent past its lease.
    pub fn machines_gone(&self) -> bool {
        !self.machines.is_empty()
            && self
                .machines
                .iter()
                .all(|(_, state, silent, lease)| state != "running" || silent > lease)
    }

    /// The build's outcomes (tests with a final result, in queue order) and
    /// how many tests have none.
    pub fn outcomes(&self, logs: &Path) -> (Vec<TestOutcome>, usize) {
        let mut outcomes = Vec::new();
        let mut not_run = 0;
        for id in &self.all {
            let Some(result) = self.results.get(id).and_then(|r| parse_result(r)) else {
                not_run += 1;
                continue;
            };
            let case: StoredCase = self
                .cases
                .get(id)
                .and_then(|c| serde_json::from_str(c).ok())
                .unwrap_or_else(|| StoredCase {
                    group: "queue".into(),
                    name: id.clone(),
                });
            let test = TestCase::new(id, case.group, case.name, Invocation::Shell(String::new()));
            let mut stored: Vec<StoredAttempt> = self
                .history
                .get(id)
                .map(|h| {
                    h.lines()
                        .filter_map(|l| serde_json::from_str(l).ok())
                        .collect()
                })
                .unwrap_or_default();
            stored.sort_by_key(|a| a.number);
            let attempts = stored
                .into_iter()
                .map(|a| attempt_of(id, a, logs))
                .collect();
            outcomes.push(TestOutcome {
                test,
                result,
                attempts,
            });
        }
        (outcomes, not_run)
    }
}

fn parse_result(text: &str) -> Option<TestResult> {
    [
        TestResult::Passed,
        TestResult::Flaky,
        TestResult::Failed,
        TestResult::TimedOut,
        TestResult::Skipped,
    ]
    .into_iter()
    .find(|r| r.as_str() == text)
}

fn attempt_of(id: &str, stored: StoredAttempt, logs: &Path) -> Attempt {
    let status = super::status_named(&stored.status);
    let (stdout_path, stderr_path) = crate::exec::logs::log_paths(logs, id, stored.number);
    let _ = std::fs::create_dir_all(logs);
    let _ = std::fs::write(&stdout_path, &stored.stdout);
    let _ = std::fs::write(&stderr_path, &stored.stderr);
    let message = match stored.message {
        Some(m) => Some(format!("{m} (on {})", stored.machine)),
        None if status != AttemptStatus::Passed => Some(format!("on {}", stored.machine)),
        None => None,
    };
    Attempt {
        number: stored.number,
        worker: stored.worker,
        status,
        started: SystemTime::UNIX_EPOCH + Duration::from_millis(stored.started_ms),
        duration: Duration::from_millis(stored.duration_ms),
        message,
        stdout_path,
        stderr_path,
        cases: stored.cases.iter().map(|c| c.case()).collect(),
    }
}

/// `queue report`: waits for the build, writes its report and timings.
pub fn report(
    url: &str,
    build: &str,
    junit: Option<&Path>,
    timings: Option<&Path>,
    timeout: Option<Duration>,
) -> Result<i32> {
    let (_, mut conn) = open(url)?;
    let started = Instant::now();
    let (snapshot, why) = loop {
        let snapshot = Snapshot::read(&mut conn, build)?;
        if snapshot.finished() {
            break (snapshot, None);
        }
        if snapshot.created && snapshot.machines_gone() {
            break (snapshot, Some("every machine of the build is gone"));
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            break (snapshot, Some("timed out waiting for the build"));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    if !snapshot.created {
        eprintln!(
            "error: queue: no build `{build}` in {url} ({})",
            why.unwrap_or("")
        );
        return Ok(exit::CANNOT_RUN);
    }
    let junit = junit.map_or_else(
        || PathBuf::from(".paratest/queue-junit.xml"),
        Path::to_path_buf,
    );
    let logs = junit.with_extension("logs");
    let (outcomes, not_run) = snapshot.outcomes(&logs);
    crate::report::junit_file::write_report(&junit, "cargo-paratest", &outcomes, SystemTime::now())
        .map_err(|e| Error::cannot_run(format!("cannot write {}: {e}", junit.display())))?;
    eprintln!("JUnit report: {}", junit.display());
    if let Some(path) = timings {
        let samples: Vec<(String, Duration)> = outcomes
            .iter()
            .flat_map(|o| {
                o.attempts
                    .iter()
                    .filter(|a| a.status == AttemptStatus::Passed)
                    .map(|a| (o.test.id.clone(), a.duration))
            })
            .collect();
        let mut recorded = Timings::default();
        recorded.add(&samples, unix_now());
        recorded.save_to(path).map_err(Error::cannot_run)?;
        eprintln!("Timings: {}", path.display());
    }
    let counts = Counts::of(&outcomes, not_run);
    println!(
        "build {build}: {} tests: {} passed, {} flaky, {} failed, {} timed out, {} skipped, {} not run; {} machines",
        snapshot.all.len(),
        counts.passed,
        counts.flaky,
        counts.failed,
        counts.timed_out,
        counts.skipped,
        not_run,
        snapshot.machines.len()
    );
    for outcome in outcomes.iter().filter(|o| o.result != TestResult::Passed) {
        println!("  {:<9} {}", outcome.result.as_str(), outcome.test.id);
    }
    if let Some(why) = why {
        eprintln!("error: {why}: {not_run} tests have no result");
    }
    Ok(if not_run > 0 {
        exit::CANNOT_RUN
    } else if counts.failed + counts.timed_out > 0 {
        exit::TESTS_FAILED
    } else {
        exit::OK
    })
}

/// `queue status`: the build's progress, one line per machine.
pub fn status(url: &str, build: &str) -> Result<i32> {
    let (_, mut conn) = open(url)?;
    let snapshot = Snapshot::read(&mut conn, build)?;
    if !snapshot.created {
        println!("build {build}: not published yet");
        return Ok(exit::OK);
    }
    println!(
        "build {build}: {}/{} tests done, {} running, {} queued, {} retries queued",
        snapshot.results.len(),
        snapshot.all.len(),
        snapshot.running.len(),
        snapshot.queued,
        snapshot.retries
    );
    for (machine, state, silent, _) in &snapshot.machines {
        let running: Vec<&str> = snapshot
            .running
            .iter()
            .filter(|(_, owner)| owner == machine)
            .map(|(id, _)| id.as_str())
            .collect();
        println!(
            "  {machine}: {state}, heard of {} ago, running {}",
            crate::words::tenths(std::time::Duration::from_millis(*silent)),
            if running.is_empty() {
                "nothing".to_string()
            } else {
                running.join(", ")
            }
        );
    }
    Ok(exit::OK)
}
