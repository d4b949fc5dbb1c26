//! Child processes in their own process groups, so that killing a test kills
//! everything it started, and one watchdog thread that enforces timeouts,
//! sends slow notices and kills every running group on interrupt.

use std::collections::HashMap;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// How long a group has between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

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
    pub duration: Duration,
    /// The process group it ran in (its pid).
    pub group: u32,
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
}

struct Entry {
    started: Instant,
    deadline: Option<Instant>,
    slow_at: Option<Instant>,
    on_slow: Option<Box<dyn FnOnce(Duration) + Send>>,
    /// SIGTERM was sent; SIGKILL follows at this instant.
    kill_at: Option<Instant>,
    timed_out: bool,
}

impl Watchdog {
    /// Starts the watchdog thread; it lives as long as the process.
    pub fn start() -> Watchdog {
        let shared = Arc::new(Shared {
            table: Mutex::new(HashMap::new()),
            wake: Condvar::new(),
            interrupted: AtomicBool::new(false),
        });
        let watched = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("paratest-watchdog".into())
            .spawn(move || watch(&watched))
            .expect("cannot start the watchdog thread");
        Watchdog { shared }
    }

    /// Runs `command` in a new process group and waits for it. Whatever is
    /// left of the group when the main process exits is killed, so no test
    /// leaves a server or a `sleep` behind.
    pub fn run(&self, mut command: Command, limits: Limits) -> io::Result<Exit> {
        let limits_keep_group = limits.keep_group;
        command.process_group(0);
        let started = Instant::now();
        let mut child = {
            // Holding the table lock over spawn means an interrupt either sees
            // this group or happens before it exists and is seen below.
            let mut table = self.shared.table.lock().unwrap();
            if self.is_interrupted() && !limits.cleanup {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
            }
            let child = command.spawn()?;
            table.insert(
                child.id(),
                Entry {
                    started,
                    deadline: limits.timeout.map(|t| started + t),
                    slow_at: limits.slow_after.map(|t| started + t),
                    on_slow: limits.on_slow,
                    kill_at: None,
                    timed_out: false,
                },
            );
            self.shared.wake.notify_all();
            child
        };
        let pid = child.id();
        // Wait for the exit without reaping: while the leader is a zombie
        // its pid, and so its group id, cannot be reused, so killing what is
        // left of the group can never hit another worker's new test.
        wait_for_exit(pid);
        let entry = self.shared.table.lock().unwrap().remove(&pid);
        if !limits_keep_group {
            signal_group(pid, Signal::SIGKILL);
        }
        let status = child.wait();
        Ok(Exit {
            status: status?,
            timed_out: entry.is_some_and(|e| e.timed_out),
            duration: started.elapsed(),
            group: pid,
        })
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

    /// Ctrl-C or SIGTERM: every running group gets SIGTERM, then SIGKILL after
    /// the grace period; no new process starts.
    pub fn interrupt(&self) {
        let mut table = self.shared.table.lock().unwrap();
        self.shared.interrupted.store(true, Ordering::SeqCst);
        let kill_at = Instant::now() + KILL_GRACE;
        for (&pid, entry) in table.iter_mut() {
            signal_group(pid, Signal::SIGTERM);
            entry.kill_at.get_or_insert(kill_at);
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
pub fn stop_group(group: u32) {
    signal_group(group, Signal::SIGTERM);
    let deadline = Instant::now() + KILL_GRACE;
    while group_alive(group) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    signal_group(group, Signal::SIGKILL);
}

/// Whether a process group has a member that is not a zombie. Zombies
/// count as gone: whoever adopted them may take a while to reap them.
fn group_alive(group: u32) -> bool {
    if killpg(Pid::from_raw(group as i32), None).is_err() {
        return false;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    entries.flatten().any(|entry| {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // After the command name: state, ppid, pgrp.
        let mut fields = stat.rsplit(')').next().unwrap_or("").split_whitespace();
        let state = fields.next().unwrap_or("Z");
        let pgrp = fields.nth(1).and_then(|p| p.parse::<u32>().ok());
        state != "Z" && pgrp == Some(group)
    })
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
                signal_group(pid, Signal::SIGTERM);
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
