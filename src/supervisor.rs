//! The supervisor: a small process that outlives cargo-paratest if it dies
//! (SIGKILL, a panic, an abort) and then kills what the run started and
//! removes its workspaces.
//!
//! It is our own binary run with a hidden first argument
//! ([`SUBCOMMAND`]), in a process group of its own so that the terminal's
//! Ctrl-C does not reach it. The run writes one line per fact to its stdin:
//! the process groups it started and ended, the workspaces it made and
//! removed, and `exit` when it ends on its own. At end of file without
//! `exit` the run is dead: the supervisor kills every process started with
//! the run's `PARATEST_RUN_ID` and every group still recorded, then deletes
//! the workspaces still recorded. Only the run holds the pipe's write end
//! (it is close-on-exec), so its death is the end of file.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// The hidden first argument that makes the binary a supervisor.
pub const SUBCOMMAND: &str = "__paratest-supervise";

/// What the run tells its supervisor.
pub enum Message<'a> {
    /// A process group was started.
    Group(u32),
    /// A group is over (killed and reaped).
    GroupDone(u32),
    /// A workspace (or a workspace root) to remove should the run die.
    Workspace(&'a Path),
    /// That workspace was removed (or is to be kept).
    WorkspaceGone(&'a Path),
    /// The run ends on its own: nothing to clean.
    Exit,
}

/// The run's end of the pipe, and the supervisor's pid.
struct Link {
    stdin: ChildStdin,
    pid: u32,
}

static LINK: Mutex<Option<Link>> = Mutex::new(None);

/// Starts the supervisor of run `run_id`. Returns its pid.
pub fn start(run_id: &str) -> Result<u32, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find our own binary: {e}"))?;
    let mut child = Command::new(exe)
        .arg(SUBCOMMAND)
        .arg(run_id)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the supervisor: {e}"))?;
    let stdin = child.stdin.take().expect("stdin is piped");
    let pid = child.id();
    // Never waited for: it exits after we do. Dropping `child` neither waits nor kills.
    *LINK.lock().unwrap() = Some(Link { stdin, pid });
    Ok(pid)
}

/// The supervisor's pid, if one runs.
pub fn pid() -> Option<u32> {
    LINK.lock().unwrap().as_ref().map(|link| link.pid)
}

/// Tells the supervisor one fact; a no-op without a supervisor. A write
/// error (it died) is ignored: the run itself goes on.
pub fn tell(message: Message<'_>) {
    let mut line = match message {
        Message::Group(group) => format!("group {group}").into_bytes(),
        Message::GroupDone(group) => format!("done {group}").into_bytes(),
        Message::Workspace(path) => [b"path ", hex(path).as_bytes()].concat(),
        Message::WorkspaceGone(path) => [b"gone ", hex(path).as_bytes()].concat(),
        Message::Exit => b"exit".to_vec(),
    };
    line.push(b'\n');
    if let Some(link) = LINK.lock().unwrap().as_mut() {
        let _ = link.stdin.write_all(&line);
    }
}

/// Paths go as hex: a path may hold a newline.
fn hex(path: &Path) -> String {
    path.as_os_str()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn unhex(text: &str) -> Option<PathBuf> {
    let bytes = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some(OsString::from_vec(bytes).into())
}

/// The supervisor's own life: read until the end of file, then clean up
/// unless the run said `exit`. Returns the exit code.
pub fn main(run_id: &str) -> i32 {
    let mut groups = BTreeSet::new();
    let mut paths = BTreeSet::new();
    for line in std::io::stdin().lock().split(b'\n') {
        let Ok(line) = line else { break };
        let line = String::from_utf8_lossy(&line);
        let (word, rest) = line.split_once(' ').unwrap_or((&line, ""));
        match word {
            "group" => groups.extend(rest.parse::<u32>()),
            "done" => {
                if let Ok(group) = rest.parse::<u32>() {
                    groups.remove(&group);
                }
            }
            "path" => paths.extend(unhex(rest)),
            "gone" => {
                if let Some(path) = unhex(rest) {
                    paths.remove(&path);
                }
            }
            "exit" => return 0,
            _ => {}
        }
    }
    let killed = kill_run(run_id, &groups);
    let mut removed = 0;
    for path in &paths {
        if std::fs::remove_dir_all(path).is_ok() {
            removed += 1;
        }
    }
    eprintln!(
        "cargo-paratest: run {run_id} ended without cleaning up; its supervisor stopped {killed} processes and removed {removed} workspaces"
    );
    0
}

/// Kills every process started with `PARATEST_RUN_ID=run_id` and every
/// group in `groups`, until none is left (or 10 s have passed).
fn kill_run(run_id: &str, groups: &BTreeSet<u32>) -> usize {
    let me = std::process::id();
    let mut killed = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    // A process caught in the middle of an exec shows no environment yet:
    // only two empty looks in a row end the hunt.
    let mut empty_looks = 0;
    loop {
        let table = crate::process::ProcessTable::read();
        let found: Vec<u32> = table
            .pids()
            .filter(|&pid| pid != me && table.alive(pid))
            .filter(|&pid| {
                crate::process::environment(pid)
                    .get(b"PARATEST_RUN_ID".as_slice())
                    .is_some_and(|id| id == run_id.as_bytes())
            })
            .collect();
        let mut any = !found.is_empty();
        for pid in found {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            killed.insert(pid);
        }
        for &group in groups {
            if table.group_alive(group) {
                let _ = killpg(Pid::from_raw(group as i32), Signal::SIGKILL);
                any = true;
                killed.insert(group);
            }
        }
        empty_looks = if any { 0 } else { empty_looks + 1 };
        if empty_looks == 2 || Instant::now() > deadline {
            return killed.len();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_survive_the_wire() {
        let path = Path::new("/tmp/a b\nc/\u{e9}");
        assert_eq!(unhex(&hex(path)).unwrap(), path);
        assert!(unhex("zz").is_none());
    }
}
