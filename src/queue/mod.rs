//! A queue shared by every machine of one build, on Redis (`run --queue`,
//! `queue report`, `queue status`).
//!
//! Every machine discovers the tests; the first to arrive publishes them,
//! longest expected first; every worker of every machine then reserves one
//! test at a time with a lease that a heartbeat thread renews. A lapsed lease
//! puts the test back; the first recorded result wins; a machine that no
//! longer holds a test can neither acknowledge nor requeue it. Every state
//! change is one Lua script (see `scripts.lua` and the bodies below), and
//! every key of a build lives under `paratest:{BUILD}:` with a TTL.

pub mod report;
mod stored;

use stored::tail;
pub use stored::{StoredAttempt, StoredCase, StoredFrameworkCase, status_name, status_named};

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use redis::{Connection, Script};

use crate::error::{Error, Result};
use crate::exec::{Job, JobSource};
use crate::model::{Attempt, TestCase, TestResult};
use crate::process::Watchdog;

const PRELUDE: &str = include_str!("scripts.lua");

/// Publishes the list unless the build already has one. ARGV: ttl,
/// max-retries, then id/meta pairs in queue order.
const PUBLISH: &str = r#"
if redis.call('EXISTS', p .. 'created') == 1 then return 0 end
for i = 3, #ARGV, 2 do
  redis.call('RPUSH', p .. 'all', ARGV[i])
  redis.call('RPUSH', p .. 'queue', ARGV[i])
  redis.call('HSET', p .. 'cases', ARGV[i], ARGV[i + 1])
end
redis.call('SET', p .. 'created', now_ms())
redis.call('SET', p .. 'max_retries', ARGV[2])
touch('all', 'queue', 'cases', 'created', 'max_retries')
return 1
"#;

/// Reserves the next test for machine ARGV[2] with a lease of ARGV[3] ms.
/// Returns {id, attempt, failed-before}, {'', 0, 0} to wait (tests still
/// running elsewhere may come back), or {} when the build has nothing left.
const RESERVE: &str = r#"
local w, lease = ARGV[2], tonumber(ARGV[3])
local now = now_ms()
reclaim(now)
redis.call('HSET', p .. 'machines', w, now)
redis.call('HSET', p .. 'leases', w, lease)
if redis.call('HGET', p .. 'state', w) ~= 'running' then
  redis.call('HSET', p .. 'state', w, 'running')
end
touch('machines', 'leases', 'state')
local function take(id)
  local tries = tonumber(redis.call('HGET', p .. 'tries', id) or '0')
  redis.call('ZADD', p .. 'running', now + lease, id)
  redis.call('HSET', p .. 'owner', id, w)
  redis.call('SADD', p .. 'held:' .. w, id)
  touch('running', 'owner', 'held:' .. w)
  return {id, tries + 1, redis.call('HEXISTS', p .. 'failed', id)}
end
while true do
  local id = redis.call('LPOP', p .. 'queue')
  if not id then break end
  if redis.call('HEXISTS', p .. 'results', id) == 0
      and not redis.call('ZSCORE', p .. 'running', id) then
    return take(id)
  end
end
-- A retry goes to another machine than the one it failed on, unless no
-- other machine is alive.
local others = 0
local seen = redis.call('HGETALL', p .. 'machines')
for i = 1, #seen, 2 do
  local name, last = seen[i], tonumber(seen[i + 1])
  if name ~= w and now - last < lease and redis.call('HGET', p .. 'state', name) == 'running' then
    others = others + 1
  end
end
local retries = redis.call('LRANGE', p .. 'retry', 0, -1)
for _, id in ipairs(retries) do
  if redis.call('HGET', p .. 'avoid', id) ~= w or others == 0 then
    redis.call('LREM', p .. 'retry', 1, id)
    return take(id)
  end
end
if #retries > 0 or redis.call('ZCARD', p .. 'running') > 0 then return {'', 0, 0} end
return {}
"#;

/// Renews the leases of machine ARGV[2] on the ids it names (ARGV[4..]) for
/// ARGV[3] ms; a lease it no longer holds is not renewed.
const RENEW: &str = r#"
local w, lease = ARGV[2], tonumber(ARGV[3])
local now = now_ms()
redis.call('HSET', p .. 'machines', w, now)
touch('machines')
local renewed = 0
for i = 4, #ARGV do
  if redis.call('HGET', p .. 'owner', ARGV[i]) == w then
    redis.call('ZADD', p .. 'running', 'XX', now + lease, ARGV[i])
    renewed = renewed + 1
  end
end
return renewed
"#;

/// Machine ARGV[2] finished attempt ARGV[4] (JSON) of test ARGV[3]. ARGV[5]:
/// the final result, ARGV[6]: '1' when it asks for a retry. Returns
/// 'stale' (it does not hold the test), 'requeued', 'recorded' or 'duplicate'.
const ACK: &str = r#"
local w, id = ARGV[2], ARGV[3]
if redis.call('HGET', p .. 'owner', id) ~= w then return 'stale' end
drop_lease(id)
redis.call('HINCRBY', p .. 'tries', id, 1)
local history = redis.call('HGET', p .. 'history', id) or ''
redis.call('HSET', p .. 'history', id, history .. ARGV[4] .. '\n')
touch('tries', 'history')
local budget = tonumber(redis.call('GET', p .. 'max_retries') or '0')
if ARGV[6] == '1' and tonumber(redis.call('GET', p .. 'retries_used') or '0') < budget then
  redis.call('INCR', p .. 'retries_used')
  redis.call('HSET', p .. 'failed', id, 1)
  redis.call('HSET', p .. 'avoid', id, w)
  redis.call('RPUSH', p .. 'retry', id)
  touch('retries_used', 'failed', 'avoid', 'retry')
  return 'requeued'
end
if redis.call('HSETNX', p .. 'results', id, ARGV[5]) == 1 then
  touch('results')
  return 'recorded'
end
return 'duplicate'
"#;

/// Machine ARGV[2] gives back every test it holds (interrupt) and takes the
/// state ARGV[3] ('gone' or 'done').
const RELEASE: &str = r#"
local w = ARGV[2]
local held = redis.call('SMEMBERS', p .. 'held:' .. w)
local released = 0
for _, id in ipairs(held) do
  if redis.call('HGET', p .. 'owner', id) == w then
    drop_lease(id)
    redis.call('LPUSH', p .. 'queue', id)
    released = released + 1
  end
end
redis.call('DEL', p .. 'held:' .. w)
redis.call('HSET', p .. 'state', w, ARGV[3])
touch('queue', 'state')
return released
"#;

/// How long every key of a build lives after its last change.
const TTL: Duration = Duration::from_secs(24 * 3600);

/// The key prefix of a build.
pub fn prefix(build: &str) -> String {
    format!("paratest:{build}:")
}

/// Runs one script body against the build's prefix.
fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

/// Runs `body` on `conn` for the build's `prefix` with the keys' TTL and `args`.
fn invoke<T: redis::FromRedisValue>(
    conn: &mut Connection,
    prefix: &str,
    body: &str,
    args: &[String],
) -> redis::RedisResult<T> {
    let script = script(body);
    let mut invocation = script.key(prefix);
    invocation.arg(TTL.as_millis() as u64);
    for arg in args {
        invocation.arg(arg);
    }
    invocation.invoke(conn)
}

/// Opens a connection, with a deadline on connecting and on every reply.
pub fn connect(client: &redis::Client) -> redis::RedisResult<Connection> {
    let conn = client.get_connection_with_timeout(Duration::from_secs(3))?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    conn.set_write_timeout(Some(Duration::from_secs(10)))?;
    Ok(conn)
}

/// The URL's client and a first connection: an unreachable Redis is exit 3.
pub fn open(url: &str) -> Result<(redis::Client, Connection)> {
    if !url.starts_with("redis://") {
        return Err(Error::usage(format!(
            "--queue {url}: expected redis://HOST:PORT[/DB]"
        )));
    }
    let client = redis::Client::open(url).map_err(|e| {
        Error::usage(format!(
            "--queue {url}: expected redis://HOST:PORT[/DB]: {e}"
        ))
    })?;
    let mut conn = connect(&client)
        .map_err(|e| Error::cannot_run(format!("cannot reach the queue's Redis at {url}: {e}")))?;
    redis::cmd("PING").query::<String>(&mut conn).map_err(|e| {
        Error::cannot_run(format!("the queue's Redis at {url} does not answer: {e}"))
    })?;
    Ok((client, conn))
}

/// The build id: `--build-id`, else the CI's own variables.
pub fn build_id(given: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Result<String> {
    let var = |name: &str| env(name).filter(|v| !v.is_empty());
    let id = given.map(str::to_string).or_else(|| {
        var("GITHUB_RUN_ID")
            .map(|run| format!("{run}-{}", var("GITHUB_RUN_ATTEMPT").unwrap_or("1".into())))
            .or_else(|| var("CI_PIPELINE_ID"))
            .or_else(|| var("BUILDKITE_BUILD_ID"))
            .or_else(|| var("CIRCLE_WORKFLOW_ID"))
            .or_else(|| var("BUILD_TAG"))
    });
    match id {
        Some(id) if !id.is_empty() && !id.contains(char::is_whitespace) => Ok(id),
        Some(id) => Err(Error::usage(format!(
            "--build-id `{id}`: expected a non-empty id without spaces"
        ))),
        None => Err(Error::usage(
            "--queue needs --build-id ID: no CI build id found (GITHUB_RUN_ID, CI_PIPELINE_ID, \
             BUILDKITE_BUILD_ID, CIRCLE_WORKFLOW_ID, BUILD_TAG)",
        )),
    }
}

/// This machine's name in the queue: `--worker-id`, else host name and pid.
pub fn worker_id(given: Option<&str>) -> String {
    given.map(str::to_string).unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "machine".into());
        format!("{host}-{}", std::process::id())
    })
}

/// A duration from an environment variable (`2s`, `500ms`), for the knobs
/// tests and slow CI machines need.
fn env_duration(name: &str, default: Duration) -> Result<Duration> {
    match std::env::var(name) {
        Ok(text) if !text.is_empty() => humantime::parse_duration(&text)
            .ok()
            .filter(|d| *d >= Duration::from_millis(100))
            .ok_or_else(|| {
                Error::usage(format!(
                    "{name}={text}: expected a duration of at least 100ms"
                ))
            }),
        _ => Ok(default),
    }
}

/// This machine's side of a build's queue: the runner's [`JobSource`].
pub struct RedisQueue {
    client: redis::Client,
    conn: Mutex<Option<Connection>>,
    prefix: String,
    pub build: String,
    pub machine: String,
    lease: Duration,
    reconnect_for: Duration,
    ids: Vec<String>,
    index_of: HashMap<String, usize>,
    held: Mutex<HashSet<String>>,
    /// The connection could not be made again: the machine stops taking tests.
    lost: AtomicBool,
    /// The queue's URL, for messages.
    pub url: String,
    /// Warnings for the runner to report (see [`JobSource::take_warnings`]).
    warnings: Mutex<Vec<String>>,
}

/// What joining a build did.
pub enum Joined {
    Published,
    Joined,
}

impl RedisQueue {
    /// Connects, publishes `order` (indices into `tests`, longest first) or
    /// joins the published list; a list that differs is refused (exit 3).
    pub fn join(
        url: &str,
        build: String,
        machine: String,
        tests: &[TestCase],
        order: &[usize],
        retries: u32,
    ) -> Result<(RedisQueue, Joined)> {
        let (client, mut conn) = open(url)?;
        let prefix = prefix(&build);
        let max_retries = match std::env::var("PARATEST_QUEUE_MAX_RETRIES") {
            Ok(text) if !text.is_empty() => text.parse::<u64>().map_err(|_| {
                Error::usage(format!(
                    "PARATEST_QUEUE_MAX_RETRIES={text}: expected a whole number of retries"
                ))
            })?,
            _ => (order.len() as u64 / 10).max(10) * u64::from(retries.min(1)),
        };
        let publish = script(PUBLISH);
        let mut invocation = publish.key(&prefix);
        invocation.arg(TTL.as_millis() as u64).arg(max_retries);
        for &index in order {
            let case = StoredCase {
                group: tests[index].group.clone(),
                name: tests[index].name.clone(),
            };
            invocation
                .arg(&tests[index].id)
                .arg(serde_json::to_string(&case).expect("a case serializes"));
        }
        let fail = |e: redis::RedisError| Error::cannot_run(format!("queue {url}: {e}"));
        let published: i64 = invocation.invoke(&mut conn).map_err(fail)?;
        let queued: Vec<String> = redis::cmd("LRANGE")
            .arg(format!("{prefix}all"))
            .arg(0)
            .arg(-1)
            .query(&mut conn)
            .map_err(fail)?;
        let ours: BTreeSet<&str> = order.iter().map(|&i| tests[i].id.as_str()).collect();
        let theirs: BTreeSet<&str> = queued.iter().map(String::as_str).collect();
        if ours != theirs {
            return Err(Error::cannot_run(difference(&build, &ours, &theirs)));
        }
        let ids: Vec<String> = tests.iter().map(|t| t.id.clone()).collect();
        let index_of = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i))
            .collect();
        let queue = RedisQueue {
            client,
            conn: Mutex::new(Some(conn)),
            prefix,
            build,
            machine,
            lease: env_duration("PARATEST_QUEUE_LEASE", Duration::from_secs(30))?,
            reconnect_for: env_duration("PARATEST_QUEUE_RECONNECT", Duration::from_secs(30))?,
            ids,
            index_of,
            held: Mutex::new(HashSet::new()),
            lost: AtomicBool::new(false),
            url: url.to_string(),
            warnings: Mutex::new(Vec::new()),
        };
        Ok((
            queue,
            if published == 1 {
                Joined::Published
            } else {
                Joined::Joined
            },
        ))
    }

    /// The machine cannot take part any more (`why` is warned): it takes
    /// no more tests and exits 3, as when Redis is lost for good.
    pub fn lose(&self, why: String) {
        self.warn(format!("queue {}: {why}", self.url));
        self.lost.store(true, Ordering::SeqCst);
    }

    /// Whether the machine lost Redis for good during the run (exit 3).
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Runs a script on the shared connection, reconnecting with backoff for
    /// up to the reconnect window; after that the machine is lost.
    fn call<T: redis::FromRedisValue>(&self, body: &str, args: &[String]) -> Option<T> {
        if self.is_lost() {
            return None;
        }
        let mut conn = self.conn.lock().unwrap();
        let deadline = Instant::now() + self.reconnect_for;
        let mut backoff = Duration::from_millis(50);
        loop {
            if conn.is_none() {
                *conn = connect(&self.client).ok();
            }
            if let Some(c) = conn.as_mut() {
                match invoke::<T>(c, &self.prefix, body, args) {
                    Ok(value) => return Some(value),
                    Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => {
                        *conn = None;
                    }
                    Err(e) => {
                        self.warn(format!("queue {}: {e}", self.url));
                        *conn = None;
                    }
                }
            }
            if Instant::now() >= deadline {
                self.warn(format!(
                    "lost the queue's Redis at {} for {}: this machine takes no more tests \
                     and keeps its results in its own report",
                    self.url,
                    crate::words::limit(self.reconnect_for)
                ));
                self.lost.store(true, Ordering::SeqCst);
                return None;
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// Gives back every test this machine holds and marks it `state`.
    pub fn release(&self, state: &str) {
        self.held.lock().unwrap().clear();
        let _: Option<i64> = self.call(RELEASE, &[self.machine.clone(), state.to_string()]);
    }

    /// Renews this machine's leases until `stop` says so; on an interrupt it
    /// gives them back at once. Runs on a thread of its own with its own
    /// connection, so a busy worker never delays a renewal.
    pub fn heartbeat(&self, watchdog: &Watchdog, stop: &crossbeam_channel::Receiver<()>) {
        let mut conn = connect(&self.client).ok();
        // Renewed four times a lease; an interrupt is seen within a tick.
        let every = self.lease / 4;
        let tick = every.min(Duration::from_millis(100));
        let mut renewed: Option<Instant> = None;
        loop {
            if watchdog.is_interrupted() {
                self.release("gone");
                return;
            }
            if renewed.is_none_or(|at| at.elapsed() >= every) {
                let mut args = vec![self.machine.clone(), self.lease.as_millis().to_string()];
                args.extend(self.held.lock().unwrap().iter().cloned());
                if conn.is_none() {
                    conn = connect(&self.client).ok();
                }
                match conn
                    .as_mut()
                    .map(|c| invoke::<i64>(c, &self.prefix, RENEW, &args))
                {
                    Some(Ok(_)) => renewed = Some(Instant::now()),
                    _ => conn = None,
                }
            }
            match stop.recv_timeout(tick) {
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                _ => return,
            }
        }
    }

    fn warn(&self, message: String) {
        self.warnings.lock().unwrap().push(message);
    }

    fn lease_ms(&self) -> String {
        self.lease.as_millis().to_string()
    }
}

impl JobSource for RedisQueue {
    fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().unwrap())
    }

    fn next(&self, watchdog: &Watchdog) -> Option<Job> {
        loop {
            if watchdog.is_interrupted() {
                return None;
            }
            let reply: Vec<redis::Value> =
                self.call(RESERVE, &[self.machine.clone(), self.lease_ms()])?;
            let parsed: Option<(String, u32, i64)> =
                redis::from_redis_value(redis::Value::Array(reply.clone())).ok();
            let (id, attempt, failed) = match parsed {
                _ if reply.is_empty() => return None,
                Some(triple) => triple,
                None => return None,
            };
            if id.is_empty() {
                // Tests still run elsewhere and may come back: wait a little.
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            let Some(&index) = self.index_of.get(&id) else {
                self.warn(format!("queue: unknown test `{id}` handed out"));
                continue;
            };
            self.held.lock().unwrap().insert(id);
            return Some(Job {
                index,
                attempt,
                failed_before: failed == 1,
            });
        }
    }

    fn done(
        &self,
        job: &Job,
        attempt: &Attempt,
        result: TestResult,
        wants_retry: bool,
        interrupted: bool,
    ) -> bool {
        let id = &self.ids[job.index];
        if interrupted {
            // An interrupted attempt is no result: the test goes back.
            self.held.lock().unwrap().remove(id);
            return false;
        }
        let stored = StoredAttempt {
            number: job.attempt,
            status: status_name(attempt.status).to_string(),
            machine: self.machine.clone(),
            worker: attempt.worker,
            started_ms: attempt
                .started
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            duration_ms: attempt.duration.as_millis() as u64,
            message: attempt.message.clone(),
            stdout: tail(&attempt.stdout_path),
            stderr: tail(&attempt.stderr_path),
            cases: attempt.cases.iter().map(StoredFrameworkCase::of).collect(),
        };
        let reply: Option<String> = self.call(
            ACK,
            &[
                self.machine.clone(),
                id.clone(),
                serde_json::to_string(&stored).expect("an attempt serializes"),
                result.as_str().to_string(),
                if wants_retry { "1" } else { "0" }.to_string(),
            ],
        );
        self.held.lock().unwrap().remove(id);
        match reply.as_deref() {
            Some("requeued") => true,
            Some("stale") => {
                self.warn(format!(
                    "queue: {id}: this machine's lease had lapsed; its result stays in this \
                     machine's report only"
                ));
                false
            }
            _ => false,
        }
    }
}

/// The error for a machine whose test list is not the build's.
fn difference(build: &str, ours: &BTreeSet<&str>, theirs: &BTreeSet<&str>) -> String {
    let list = |set: Vec<&&str>| {
        let mut names: Vec<String> = set.iter().take(5).map(|s| format!("`{s}`")).collect();
        if set.len() > 5 {
            names.push(format!("and {} more", set.len() - 5));
        }
        names.join(", ")
    };
    let missing: Vec<&&str> = theirs.difference(ours).collect();
    let extra: Vec<&&str> = ours.difference(theirs).collect();
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!(
            "{} queued tests are not on this machine: {}",
            missing.len(),
            list(missing)
        ));
    }
    if !extra.is_empty() {
        parts.push(format!(
            "{} tests of this machine are not in the queue: {}",
            extra.len(),
            list(extra)
        ));
    }
    format!(
        "this machine's tests differ from the queue of build `{build}` (another commit, filter or \
         option?): {}",
        parts.join("; ")
    )
}

/// `run --queue`: joins the build (or publishes it) when asked to.
pub fn join_build(
    args: &crate::cli::RunArgs,
    partition: bool,
    tests: &[TestCase],
    order: &[usize],
    retries: u32,
) -> Result<Option<RedisQueue>> {
    let Some(url) = &args.queue else {
        return Ok(None);
    };
    if partition {
        return Err(Error::usage(
            "--queue and --partition do not go together: the queue splits the tests",
        ));
    }
    let build = build_id(args.build_id.as_deref(), |name| std::env::var(name).ok())?;
    let machine = worker_id(args.worker_id.as_deref());
    let (queue, joined) = RedisQueue::join(url, build, machine, tests, order, retries)?;
    eprintln!(
        "queue: {} build `{}` ({} tests) as `{}`",
        match joined {
            Joined::Published => "published",
            Joined::Joined => "joined",
        },
        queue.build,
        order.len(),
        queue.machine
    );
    Ok(Some(queue))
}

/// Runs `work` with the queue's heartbeat beside it, then marks the machine
/// done (or gone, giving its tests back, after an interrupt).
pub fn with_heartbeat<R>(
    queue: Option<&RedisQueue>,
    watchdog: &Watchdog,
    work: impl FnOnce() -> R,
) -> R {
    let Some(queue) = queue else {
        return work();
    };
    let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
    let result = std::thread::scope(|scope| {
        // No heartbeat thread to be had (out of threads): the machine takes
        // no test, since it could not keep a lease; the others run them.
        if let Err(e) = std::thread::Builder::new()
            .name("paratest-heartbeat".into())
            .spawn_scoped(scope, || queue.heartbeat(watchdog, &stopped))
        {
            queue.lose(format!("cannot start the heartbeat thread: {e}"));
        }
        let result = work();
        let _ = stop.send(());
        result
    });
    queue.release(if watchdog.is_interrupted() {
        "gone"
    } else {
        "done"
    });
    result
}

/// The tests a machine handed back to the queue (a retry queued for another
/// machine, or an attempt an interrupt cut short) leave its own report;
/// returns the unfinished tests that stay.
pub fn handed_over(
    queue: Option<&RedisQueue>,
    tests: &[TestCase],
    outcomes: &mut Vec<crate::model::TestOutcome>,
    unfinished: Vec<usize>,
) -> Vec<usize> {
    if queue.is_none() || unfinished.is_empty() {
        return unfinished;
    }
    let gone: HashSet<&str> = unfinished.iter().map(|&i| tests[i].id.as_str()).collect();
    outcomes.retain(|o| !gone.contains(o.test.id.as_str()));
    eprintln!(
        "queue: {} tests went back to the queue for another machine",
        gone.len()
    );
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_build_id_comes_from_the_flag_then_the_ci() {
        let github = [("GITHUB_RUN_ID", "991"), ("GITHUB_RUN_ATTEMPT", "2")];
        assert_eq!(build_id(Some("mine"), env(&github)).unwrap(), "mine");
        assert_eq!(build_id(None, env(&github)).unwrap(), "991-2");
        assert_eq!(
            build_id(None, env(&[("GITHUB_RUN_ID", "5")])).unwrap(),
            "5-1"
        );
        for name in [
            "CI_PIPELINE_ID",
            "BUILDKITE_BUILD_ID",
            "CIRCLE_WORKFLOW_ID",
            "BUILD_TAG",
        ] {
            assert_eq!(build_id(None, env(&[(name, "b-7")])).unwrap(), "b-7");
        }
        let none = build_id(None, env(&[("CI_PIPELINE_ID", "")])).unwrap_err();
        assert_eq!(none.exit_code(), crate::error::exit::USAGE);
        assert!(none.to_string().contains("--build-id"), "{none}");
        let spaced = build_id(Some("a b"), env(&[])).unwrap_err();
        assert_eq!(spaced.exit_code(), crate::error::exit::USAGE);
    }

    #[test]
    fn a_different_list_names_both_sides() {
        let ours: BTreeSet<&str> = ["a", "b", "c"].into();
        let theirs: BTreeSet<&str> = ["b", "c", "d", "e"].into();
        let message = difference("7", &ours, &theirs);
        assert!(
            message.contains("2 queued tests are not on this machine: `d`, `e`"),
            "{message}"
        );
        assert!(
            message.contains("1 tests of this machine are not in the queue: `a`"),
            "{message}"
        );
        let many: BTreeSet<String> = (0..8).map(|i| format!("t{i}")).collect();
        let many: BTreeSet<&str> = many.iter().map(String::as_str).collect();
        let message = difference("7", &BTreeSet::new(), &many);
        assert!(message.contains("and 3 more"), "{message}");
    }
}
