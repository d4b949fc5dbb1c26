//! Child processes in their own process groups, so that killing a test kills
//! everything it started, and one watchdog thread that enforces timeouts,
//! sends slow notices and kills every running group on interrupt.
//!
//! What leaves its group (`setsid`, a double-forked daemon) is found by a
//! sweep ([`Watchdog::sweep`]): on Linux this process is a child subreaper,
//! so every orphan of the run becomes our child, and each orphan's tree is
//! matched by the `PARATEST_*` variables it was started with.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// How long a group has between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// After a second Ctrl-C, how long a teardown hook may still run.
pub const FORCED_TEARDOWN_LIMIT: Duration = Duration::from_secs(5);

/// Ctrl-Cs (and SIGTERMs) received by this process. Global because a
/// signal is: the workspace copy and [`stop_group`] read it too.
static INTERRUPTS: AtomicU32 = AtomicU32::new(0);

/// Whether Ctrl-C or SIGTERM came: long work (a copy) stops at once.
pub fn interrupt_requested() -> bool {
    INTERRUPTS.load(Ordering::SeqCst) > 0
}

/// A second Ctrl-C came: nothing waits for a grace period any more.
pub fn forced() -> bool {
    INTERRUPTS.load(Ordering::SeqCst) > 1
}

/// Limits for one process.
#[derive(Default)]
pub struct Limits {
    pub timeout: Option<Duration>,
    /// After this long, `on_slow` is called once (from the watchdog thread).
    pub slow_after: Option<Duration>,
    pub on_slow: Option<Box<dyn FnOnce(Duration) + Send>>,
    /// A teardown: it may start after an interrupt (it is still killed by a later one).
    pub cleanup: bool,
    /// Leave what the process started running after it exits (a setup hook
    /// starting a server); the caller stops the group later with [`stop_group`].
    pub keep_group: bool,
}

/// How a watched process ended.
#[derive(Debug)]
pub struct Exit {
    pub status: ExitStatus,
    /// The watchdog killed it for running past its timeout.
    pub timed_out: bool,
    /// It was still running when Ctrl-C or SIGTERM came, and was stopped.
    pub interrupted: bool,
    pub duration: Duration,
    /// The process group it ran in (its pid).
    pub group: u32,
}

/// A process started by [`Watchdog::spawn`], not yet collected. Until
/// [`Watched::wait`] reaps it, its pid (and so its group id) cannot be
/// reused, so [`Watched::kill`] can never hit another process.
pub struct Watched {
    child: std::process::Child,
    started: Instant,
    keep_group: bool,
    shared: Arc<Shared>,
}

impl Watched {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child's stdin, when it was piped.
    pub fn stdin(&mut self) -> Option<std::process::ChildStdin> {
        self.child.stdin.take()
    }

    /// Whether the process has exited (it is left to [`Watched::wait`] to reap).
    pub fn exited(&self) -> bool {
        use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::WNOHANG;
        !matches!(
            waitid(Id::Pid(Pid::from_raw(self.pid() as i32)), flags),
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::EINTR)
        )
    }

    /// SIGKILL to its whole process group.
    pub fn kill(&self) {
        signal_group(self.pid(), Signal::SIGKILL);
    }

    /// Waits for the exit; what is left of the group is killed (unless kept).
    pub fn wait(mut self) -> io::Result<Exit> {
        let pid = self.child.id();
        // Wait for the exit without reaping: while the leader is a zombie
        // its pid, and so its group id, cannot be reused, so killing what is
        // left of the group can never hit another worker's new test.
        wait_for_exit(pid);
        let entry = self.shared.table.lock().unwrap().remove(&pid);
        if !self.keep_group {
            signal_group(pid, Signal::SIGKILL);
            crate::supervisor::tell(crate::supervisor::Message::GroupDone(pid));
        }
        let status = self.child.wait();
        self.shared.children.lock().unwrap().remove(&pid);
        Ok(Exit {
            status: status?,
            timed_out: entry.as_ref().is_some_and(|e| e.timed_out),
            interrupted: entry.is_some_and(|e| e.interrupted),
            duration: self.started.elapsed(),
            group: pid,
        })
    }
}

/// Watches the running process groups. Cheap to clone; all clones share one table.
#[derive(Clone)]
pub struct Watchdog {
    shared: Arc<Shared>,
}

struct Shared {
    table: Mutex<HashMap<u32, Entry>>,
    wake: Condvar,
    interrupted: AtomicBool,
    /// Children spawned here and not yet reaped: a sweep never reaps them
    /// (their `Child` does). Everything else that is our child is an orphan
    /// of the run that we adopted as subreaper.
    children: Mutex<HashSet<u32>>,
}

struct Entry {
    started: Instant,
    deadline: Option<Instant>,
    slow_at: Option<Instant>,
    on_slow: Option<Box<dyn FnOnce(Duration) + Send>>,
    /// SIGTERM was sent; SIGKILL follows at this instant.
    kill_at: Option<Instant>,
    timed_out: bool,
    interrupted: bool,
}

impl Watchdog {
    /// Starts the watchdog thread; it lives as long as the process.
    pub fn start() -> Watchdog {
        Watchdog::try_start().expect("cannot start the watchdog thread")
    }

    /// [`Watchdog::start`], or the error when no thread can be had.
    pub fn try_start() -> io::Result<Watchdog> {
        let shared = Arc::new(Shared {
            table: Mutex::new(HashMap::new()),
            wake: Condvar::new(),
            interrupted: AtomicBool::new(false),
            children: Mutex::new(HashSet::new()),
        });
        let watched = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("paratest-watchdog".into())
            .spawn(move || watch(&watched))?;
        Ok(Watchdog { shared })
    }

    /// Runs `command` in a new process group and waits for it. Whatever is
    /// left of the group when the main process exits is killed, so no test
    /// leaves a server or a `sleep` behind.
    pub fn run(&self, command: Command, limits: Limits) -> io::Result<Exit> {
        self.spawn(command, limits)?.wait()
    }

    /// [`Watchdog::run`] without the wait: the process runs under the same
    /// watch (timeouts, interrupts, the supervisor) and [`Watched::wait`]
    /// collects it. A long-lived process (a serve session) is spawned so.
    pub fn spawn(&self, mut command: Command, limits: Limits) -> io::Result<Watched> {
        let keep_group = limits.keep_group;
        command.process_group(0);
        let started = Instant::now();
        let mut timeout = limits.timeout;
        if limits.cleanup && forced() {
            timeout = Some(timeout.map_or(FORCED_TEARDOWN_LIMIT, |t| t.min(FORCED_TEARDOWN_LIMIT)));
        }
        // Holding the table lock over spawn means an interrupt either sees
        // this group or happens before it exists and is seen below.
        let mut table = self.shared.table.lock().unwrap();
        if self.is_interrupted() && !limits.cleanup {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
        }
        let mut children = self.shared.children.lock().unwrap();
        let child = command.spawn()?;
        children.insert(child.id());
        drop(children);
        crate::supervisor::tell(crate::supervisor::Message::Group(child.id()));
        table.insert(
            child.id(),
            Entry {
                started,
                deadline: timeout.map(|t| started + t),
                slow_at: limits.slow_after.map(|t| started + t),
                on_slow: limits.on_slow,
                kill_at: None,
                timed_out: false,
                interrupted: false,
            },
        );
        self.shared.wake.notify_all();
        Ok(Watched {
            child,
            started,
            keep_group,
            shared: Arc::clone(&self.shared),
        })
    }

    /// Starts the supervisor of this run (see [`crate::supervisor`]) and,
    /// on Linux, makes this process the subreaper of everything it starts.
    /// Without a supervisor (it could not start) the run goes on; only the
    /// SIGKILL guarantee is lost, and a warning says so.
    pub fn supervise(&self, run_id: &str) -> Result<(), String> {
        #[cfg(target_os = "linux")]
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| format!("cannot become a child subreaper: {e}"))?;
        crate::supervisor::start(run_id).map(drop)
    }

    /// Kills what is left of `scope` in this run: every process that left
    /// its group and was started with the scope's `PARATEST_*` variables,
    /// with all it started. Run when a test, a workspace or the run ends.
    /// With `grace`, SIGTERM first and SIGKILL after [`KILL_GRACE`].
    /// Returns how many processes were killed.
    pub fn sweep(&self, scope: &Sweep<'_>, grace: bool) -> usize {
        let table = ProcessTable::read();
        let found = self.escapees(scope, &table);
        if found.is_empty() {
            // What a stopped group left are zombies we adopted.
            self.reap_orphans(&table);
            return 0;
        }
        if grace && !forced() {
            for &pid in &found {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            }
            let deadline = Instant::now() + KILL_GRACE;
            while found.iter().any(|&pid| process_alive(pid))
                && Instant::now() < deadline
                && !forced()
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // New escapees may have been forked meanwhile: kill until none is left.
        let mut killed = HashSet::new();
        let mut round = found;
        for _ in 0..20 {
            if round.is_empty() {
                break;
            }
            for &pid in &round {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                killed.insert(pid);
            }
            let table = ProcessTable::read();
            self.reap_orphans(&table);
            round = self.escapees(scope, &table);
        }
        self.reap_orphans(&ProcessTable::read());
        killed.len()
    }

    /// Processes of `scope`, found in the trees of our adopted orphans (and,
    /// for the whole run, anywhere by `PARATEST_RUN_ID`).
    fn escapees(&self, scope: &Sweep<'_>, table: &ProcessTable) -> Vec<u32> {
        let me = std::process::id();
        let known = self.shared.children.lock().unwrap().clone();
        let supervisor = crate::supervisor::pid();
        let mut found = Vec::new();
        // At the end of the run every orphan we adopted is the run's,
        // whatever its environment.
        let whole_run = scope.worker.is_none() && scope.test.is_none();
        let mut pending: Vec<(u32, bool)> = table
            .children_of(me)
            .filter(|pid| !known.contains(pid) && Some(*pid) != supervisor)
            .map(|pid| (pid, whole_run))
            .collect();
        // A tree whose root belongs to the scope goes whole, whatever its
        // members did to their environment.
        while let Some((pid, inherited)) = pending.pop() {
            let ours = inherited || (table.alive(pid) && scope.matches(&environment(pid)));
            if ours && table.alive(pid) {
                found.push(pid);
            }
            pending.extend(table.children_of(pid).map(|child| (child, ours)));
        }
        if whole_run {
            for pid in table.pids() {
                if pid != me
                    && !found.contains(&pid)
                    && !known.contains(&pid)
                    && Some(pid) != supervisor
                    && table.alive(pid)
                    && scope.matches(&environment(pid))
                {
                    found.push(pid);
                }
            }
        }
        found
    }

    /// Reaps the zombies among our adopted orphans; never a child that a
    /// [`std::process::Child`] here still waits for.
    fn reap_orphans(&self, table: &ProcessTable) {
        use nix::sys::wait::{WaitPidFlag, waitpid};
        let known = self.shared.children.lock().unwrap();
        for pid in table.children_of(std::process::id()) {
            if !known.contains(&pid) && !table.alive(pid) {
                let _ = waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG));
            }
        }
    }

    /// Runs `command` to read its output, like [`Command::output`] but in its
    /// own process group under the watchdog, so that Ctrl-C or SIGTERM stops
    /// it (a build, a test listing, a plugin's discovery). The streams go
    /// through temporary files, so neither can fill a pipe and stall it;
    /// with `show_stderr` the child writes its stderr straight to ours.
    pub fn capture(
        &self,
        mut command: Command,
        show_stderr: bool,
    ) -> io::Result<std::process::Output> {
        let mut stdout = tempfile::tempfile()?;
        let mut stderr = tempfile::tempfile()?;
        command
            .stdin(std::process::Stdio::null())
            .stdout(stdout.try_clone()?);
        if show_stderr {
            command.stderr(std::process::Stdio::inherit());
        } else {
            command.stderr(stderr.try_clone()?);
        }
        let exit = self.run(command, Limits::default())?;
        let read = |file: &mut std::fs::File| -> io::Result<Vec<u8>> {
            use std::io::{Read, Seek};
            let mut bytes = Vec::new();
            file.rewind()?;
            file.read_to_end(&mut bytes)?;
            Ok(bytes)
        };
        Ok(std::process::Output {
            status: exit.status,
            stdout: read(&mut stdout)?,
            stderr: read(&mut stderr)?,
        })
    }

    /// Ctrl-C or SIGTERM. The first: every running group (a teardown's
    /// too) gets SIGTERM, then SIGKILL after the grace period; no new
    /// process starts but teardowns. The second and later: SIGKILL at once,
    /// and teardowns that start afterwards get [`FORCED_TEARDOWN_LIMIT`].
    pub fn interrupt(&self) {
        let mut table = self.shared.table.lock().unwrap();
        let count = INTERRUPTS.fetch_add(1, Ordering::SeqCst) + 1;
        self.shared.interrupted.store(true, Ordering::SeqCst);
        let now = Instant::now();
        for (&pid, entry) in table.iter_mut() {
            entry.interrupted = true;
            if count == 1 {
                signal_group(pid, Signal::SIGTERM);
                entry.kill_at.get_or_insert(now + KILL_GRACE);
            } else {
                signal_group(pid, Signal::SIGKILL);
                entry.kill_at = Some(now + KILL_GRACE);
            }
        }
        self.shared.wake.notify_all();
    }

    pub fn is_interrupted(&self) -> bool {
        self.shared.interrupted.load(Ordering::SeqCst)
    }
}

/// Blocks until the child `pid` has exited, leaving it to be reaped.
fn wait_for_exit(pid: u32) {
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
    while let Err(nix::errno::Errno::EINTR) = waitid(Id::Pid(Pid::from_raw(pid as i32)), flags) {}
}

/// Stops a group left running by a process run with `keep_group`: SIGTERM,
/// then SIGKILL if it is still there after the grace period.
/// After a second Ctrl-C it does not wait.
pub fn stop_group(group: u32) {
    signal_group(group, Signal::SIGTERM);
    let deadline = Instant::now() + KILL_GRACE;
    while group_alive(group) && Instant::now() < deadline && !forced() {
        std::thread::sleep(Duration::from_millis(20));
    }
    signal_group(group, Signal::SIGKILL);
    crate::supervisor::tell(crate::supervisor::Message::GroupDone(group));
}

/// Which processes a [`Watchdog::sweep`] kills, by the `PARATEST_*`
/// variables every test and hook is started with.
pub struct Sweep<'a> {
    pub run_id: &'a str,
    /// Only this worker's processes; `None`: the whole run's.
    pub worker: Option<usize>,
    /// Only what this attempt (its `PARATEST_TEST`, the test ids) started,
    /// not the workspace's services.
    pub test: Option<&'a str>,
}

impl Sweep<'_> {
    fn matches(&self, env: &HashMap<Vec<u8>, Vec<u8>>) -> bool {
        let is = |name: &str, value: &str| {
            env.get(name.as_bytes())
                .is_some_and(|v| v == value.as_bytes())
        };
        is("PARATEST_RUN_ID", self.run_id)
            && self
                .worker
                .is_none_or(|w| is("PARATEST_WORKER", &w.to_string()))
            && self.test.is_none_or(|ids| is("PARATEST_TEST", ids))
    }
}

/// The environment a process was started with (empty if unreadable: gone,
/// a zombie, or not ours to read).
pub fn environment(pid: u32) -> HashMap<Vec<u8>, Vec<u8>> {
    let bytes = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    bytes
        .split(|&b| b == 0)
        .filter_map(|pair| {
            let eq = pair.iter().position(|&b| b == b'=')?;
            Some((pair[..eq].to_vec(), pair[eq + 1..].to_vec()))
        })
        .collect()
}

/// One look at `/proc`: every process's parent, group and whether it is a zombie.
pub struct ProcessTable {
    /// pid -> (ppid, pgrp, alive: not a zombie)
    processes: HashMap<u32, (u32, u32, bool)>,
}

impl ProcessTable {
    pub fn read() -> ProcessTable {
        let mut processes = HashMap::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // After the command name: state, ppid, pgrp.
            let mut fields = stat.rsplit(')').next().unwrap_or("").split_whitespace();
            let state = fields.next().unwrap_or("Z");
            let mut number = || fields.next().and_then(|p| p.parse::<u32>().ok());
            let (Some(ppid), Some(pgrp)) = (number(), number()) else {
                continue;
            };
            processes.insert(pid, (ppid, pgrp, state != "Z" && state != "X"));
        }
        ProcessTable { processes }
    }

    pub fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.processes.keys().copied()
    }

    pub fn children_of(&self, parent: u32) -> impl Iterator<Item = u32> + '_ {
        self.processes
            .iter()
            .filter(move |(_, (ppid, _, _))| *ppid == parent)
            .map(|(&pid, _)| pid)
    }

    pub fn alive(&self, pid: u32) -> bool {
        self.processes.get(&pid).is_some_and(|&(_, _, alive)| alive)
    }

    /// Whether a group has a member that is not a zombie.
    pub fn group_alive(&self, group: u32) -> bool {
        self.processes
            .values()
            .any(|&(_, pgrp, alive)| alive && pgrp == group)
    }
}

/// The last process id the kernel handed out in this pid namespace (the
/// last field of `/proc/loadavg`), where the system says: equal before and
/// after a test, no process was started meanwhile. A sandbox that shows 0
/// there, or a `/proc/loadavg` mounted over the kernel's, says nothing.
pub fn last_pid() -> Option<u32> {
    // LXCFS (`lxcfs -l`) mounts its own `/proc/loadavg`, whose last field is
    // the container's largest pid of up to 5 s ago: no answer at all.
    static VIRTUAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let virtual_loadavg = *VIRTUAL.get_or_init(|| {
        std::fs::read_to_string("/proc/self/mountinfo").map_or(true, |mounts| {
            mounts
                .lines()
                .any(|line| line.split_whitespace().nth(4) == Some("/proc/loadavg"))
        })
    });
    if virtual_loadavg {
        return None;
    }
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace()
        .nth(4)?
        .parse()
        .ok()
        .filter(|&pid| pid != 0)
}

/// Whether a process exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next();
        !matches!(state, Some("Z") | Some("X") | None)
    })
}

/// Whether a process group has a member that is not a zombie. Zombies
/// count as gone: whoever adopted them may take a while to reap them.
fn group_alive(group: u32) -> bool {
    if killpg(Pid::from_raw(group as i32), None).is_err() {
        return false;
    }
    if std::fs::metadata("/proc/self/stat").is_err() {
        return true;
    }
    ProcessTable::read().group_alive(group)
}

fn signal_group(pid: u32, signal: Signal) {
    // ESRCH (the group is already gone) is the common, harmless case.
    let _ = killpg(Pid::from_raw(pid as i32), signal);
}

fn watch(shared: &Shared) {
    let mut table = shared.table.lock().unwrap();
    loop {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        for (&pid, entry) in table.iter_mut() {
            if let Some(kill_at) = entry.kill_at {
                if kill_at <= now {
                    signal_group(pid, Signal::SIGKILL);
                    entry.kill_at = Some(now + KILL_GRACE);
                }
            } else if entry.deadline.is_some_and(|d| d <= now) {
                entry.timed_out = true;
                signal_group(
                    pid,
                    if forced() {
                        Signal::SIGKILL
                    } else {
                        Signal::SIGTERM
                    },
                );
                entry.kill_at = Some(now + KILL_GRACE);
            }
            if entry.slow_at.is_some_and(|s| s <= now) {
                entry.slow_at = None;
                if let Some(on_slow) = entry.on_slow.take() {
                    on_slow(now - entry.started);
                }
            }
            for instant in [
                entry.kill_at,
                entry.deadline.filter(|_| entry.kill_at.is_none()),
                entry.slow_at,
            ]
            .into_iter()
            .flatten()
            {
                next = Some(next.map_or(instant, |n| n.min(instant)));
            }
        }
        table = match next {
            Some(next) => {
                shared
                    .wake
                    .wait_timeout(table, next.saturating_duration_since(now))
                    .unwrap()
                    .0
            }
            None => shared.wake.wait(table).unwrap(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    fn alive(pid: i32) -> bool {
        nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok()
    }

    /// The process whose pid a test script wrote is gone (a zombie counts
    /// as gone: whoever adopted it reaps it in its own time).
    fn assert_gone(pid_file: &std::path::Path) {
        let pid: i32 = std::fs::read_to_string(pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(!alive(pid) || is_zombie(pid), "process {pid} survived");
    }

    #[test]
    fn exit_status_is_reported() {
        let watchdog = Watchdog::start();
        let exit = watchdog.run(sh("exit 3"), Limits::default()).unwrap();
        assert_eq!(exit.status.code(), Some(3));
        assert!(!exit.timed_out);
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let watchdog = Watchdog::start();
        let script = format!("sleep 1000 & echo $! > {}; wait", pid_file.display());
        let limits = Limits {
            timeout: Some(Duration::from_millis(300)),
            ..Default::default()
        };
        let exit = watchdog.run(sh(&script), limits).unwrap();
        assert!(exit.timed_out);
        assert_gone(&pid_file);
    }

    #[test]
    fn leftover_children_are_killed_when_the_test_exits() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let watchdog = Watchdog::start();
        let script = format!("sleep 1000 & echo $! > {}", pid_file.display());
        let exit = watchdog.run(sh(&script), Limits::default()).unwrap();
        assert!(exit.status.success());
        assert_gone(&pid_file);
    }

    #[test]
    fn slow_notice_fires_once() {
        let watchdog = Watchdog::start();
        let (tx, rx) = std::sync::mpsc::channel();
        let limits = Limits {
            slow_after: Some(Duration::from_millis(50)),
            on_slow: Some(Box::new(move |elapsed| tx.send(elapsed).unwrap())),
            ..Default::default()
        };
        watchdog.run(sh("sleep 0.3"), limits).unwrap();
        assert!(rx.try_recv().unwrap() >= Duration::from_millis(50));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn the_last_pid_moves_when_a_process_starts() {
        let Some(before) = last_pid() else {
            return; // no /proc/loadavg here: every sweep scans
        };
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        assert_ne!(last_pid(), Some(before));
    }

    #[test]
    fn a_sweep_matches_its_run_its_worker_and_its_attempt() {
        let env = |pairs: &[(&str, &str)]| -> HashMap<Vec<u8>, Vec<u8>> {
            pairs
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect()
        };
        let test = env(&[
            ("PARATEST_RUN_ID", "r1"),
            ("PARATEST_WORKER", "2"),
            ("PARATEST_TEST", "a\nb"),
        ]);
        let service = env(&[("PARATEST_RUN_ID", "r1"), ("PARATEST_WORKER", "2")]);
        let other_run = env(&[("PARATEST_RUN_ID", "r2"), ("PARATEST_WORKER", "2")]);
        let sweep = |worker, test| Sweep {
            run_id: "r1",
            worker,
            test,
        };
        assert!(sweep(Some(2), Some("a\nb")).matches(&test));
        assert!(
            !sweep(Some(2), Some("a\nb")).matches(&service),
            "services outlive tests"
        );
        assert!(
            !sweep(Some(2), Some("c")).matches(&test),
            "another attempt's"
        );
        assert!(!sweep(Some(1), None).matches(&service), "another worker's");
        assert!(sweep(Some(2), None).matches(&service) && sweep(None, None).matches(&test));
        assert!(!sweep(None, None).matches(&other_run), "another run's");
    }

    #[test]
    fn the_environment_of_a_process_is_read() {
        let mut child = Command::new("sleep")
            .arg("5")
            .env("PARATEST_RUN_ID", "probe=1")
            .spawn()
            .unwrap();
        // The parent resumes while exec is still setting up the new stack.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut env = environment(child.id());
        while env.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            env = environment(child.id());
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            env.get(b"PARATEST_RUN_ID".as_slice()).map(Vec::as_slice),
            Some(b"probe=1".as_slice())
        );
    }

    fn is_zombie(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| {
                stat.rsplit(')')
                    .next()
                    .is_some_and(|rest| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(true)
    }
}
