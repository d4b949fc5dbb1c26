//! Running a plugin's discovery process with bounds: a time limit
//! (`discovery-timeout`), a cap on the stdout kept in memory and on the
//! stderr kept, and a short excerpt of it for error messages.

use std::io::{self, Read};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::DiscoverContext;
use crate::process::Limits;

/// The most of a discovery process's stdout (its list of tests) that is read.
pub const MAX_DISCOVERY_OUTPUT: usize = 64 << 20;
/// The most of its stderr that is kept.
pub const MAX_ERROR_TEXT: usize = 64 << 10;
/// What an error message shows of a plugin's text, in bytes and lines.
const SHOWN_BYTES: usize = 4 << 10;
const SHOWN_LINES: usize = 40;
/// How long the pipes may stay open after the process ended (a grandchild
/// holding them): their readers are then left behind, with what they read.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Runs `command` as [`crate::process::Watchdog::run`] does (stdin closed,
/// its own process group, Ctrl-C kills it), killed after the context's
/// `discovery_timeout`. Errors: `TimedOut` past the limit, `FileTooLarge`
/// when stdout passed [`MAX_DISCOVERY_OUTPUT`]. Stderr beyond
/// [`MAX_ERROR_TEXT`] is dropped.
pub fn capture(ctx: &DiscoverContext<'_>, mut command: Command) -> io::Result<Output> {
    let (stdout_reader, stdout_writer) = io::pipe()?;
    let (stderr_reader, stderr_writer) = io::pipe()?;
    command
        .stdin(Stdio::null())
        .stdout(stdout_writer)
        .stderr(stderr_writer);
    let stdout = drain(stdout_reader, MAX_DISCOVERY_OUTPUT);
    let stderr = drain(stderr_reader, MAX_ERROR_TEXT);
    let limits = Limits {
        timeout: Some(ctx.discovery_timeout),
        ..Limits::default()
    };
    // `command` owns our copies of the write ends: it must be gone before
    // the readers can see the end of the pipes.
    let exit = ctx.watchdog.run(command, limits);
    let (stdout, stdout_cut) = stdout.recv_timeout(DRAIN_GRACE).unwrap_or_default();
    let (stderr, _) = stderr.recv_timeout(DRAIN_GRACE).unwrap_or_default();
    let exit = exit?;
    if exit.timed_out {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "discovery did not finish within {} and was stopped (raise the limit with \
                 --discovery-timeout or `discovery-timeout` in paratest.toml)",
                crate::words::limit(ctx.discovery_timeout)
            ),
        ));
    }
    if stdout_cut {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!(
                "discovery printed more than {} MiB; not a list of tests",
                MAX_DISCOVERY_OUTPUT >> 20
            ),
        ));
    }
    Ok(Output {
        status: exit.status,
        stdout,
        stderr,
    })
}

/// Reads `reader` to its end on a thread, keeping the first `cap` bytes;
/// the rest is read and dropped so the writer never blocks. Sends the bytes
/// kept and whether any were dropped.
fn drain(mut reader: io::PipeReader, cap: usize) -> mpsc::Receiver<(Vec<u8>, bool)> {
    let (sender, receiver) = mpsc::channel();
    let spawned = thread::Builder::new()
        .name("paratest-discovery-output".into())
        .spawn(move || {
            let mut kept = Vec::new();
            let mut cut = false;
            let mut chunk = vec![0; 64 << 10];
            loop {
                match reader.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        let room = cap.saturating_sub(kept.len());
                        kept.extend_from_slice(&chunk[..n.min(room)]);
                        cut |= n > room;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = sender.send((kept, cut));
        });
    // Without a thread the pipe is dropped here: the process then sees a
    // closed pipe, and we see nothing.
    drop(spawned);
    receiver
}

/// A plugin's text for an error message: at most [`SHOWN_LINES`] lines and
/// [`SHOWN_BYTES`] bytes, control characters escaped, each line indented,
/// and how much was left out.
pub fn excerpt(text: &[u8], indent: &str) -> String {
    let text = String::from_utf8_lossy(text);
    let text = text.trim_end();
    let mut shown = String::new();
    let mut used = 0;
    for (lines, line) in text.lines().enumerate() {
        if lines == SHOWN_LINES || used + line.len() > SHOWN_BYTES {
            break;
        }
        shown.push_str(indent);
        shown.push_str(&crate::report::console::printable(line));
        shown.push('\n');
        used += line.len() + 1;
    }
    if used < text.len() {
        shown.push_str(&format!(
            "{indent}... ({} more bytes not shown)\n",
            text.len() - used.min(text.len())
        ));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_is_short_and_says_what_it_left_out() {
        let text = "x".repeat(100) + "\n";
        let long = text.repeat(3000);
        let shown = excerpt(long.as_bytes(), "  ");
        assert!(shown.len() < SHOWN_BYTES + 200, "{}", shown.len());
        assert!(shown.contains("more bytes not shown"), "{shown}");
        assert_eq!(excerpt(b"one\ntwo\n", "> "), "> one\n> two\n");
        assert_eq!(excerpt(b"bell\x07", ""), "bell\\u{7}\n");
    }
}
