//! `--no-capture`: a test's output as it is written. The test writes to its
//! log files as always; a follower thread reads what they grow by and sends
//! each complete line as an event, so the reporter prints whole lines only
//! and two tests' lines never interleave mid-line.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::events::Event;

/// How often the follower looks for new output.
const POLL: Duration = Duration::from_millis(50);

/// Follows one attempt's stdout and stderr logs until [`Follower::finish`].
pub struct Follower {
    done: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Follower {
    pub fn start(index: usize, logs: [&Path; 2], events: Sender<Event>) -> Follower {
        let done = Arc::new(AtomicBool::new(false));
        let paths: Vec<(PathBuf, &'static str)> = logs
            .iter()
            .map(|p| p.to_path_buf())
            .zip(["stdout", "stderr"])
            .collect();
        let finished = done.clone();
        let thread = std::thread::spawn(move || {
            let mut streams: Vec<Stream> = paths
                .into_iter()
                .map(|(path, name)| Stream {
                    path,
                    name,
                    file: None,
                    pending: Vec::new(),
                })
                .collect();
            loop {
                // Read once more after the process ended: what it wrote last.
                let last = finished.load(Ordering::Acquire);
                for stream in &mut streams {
                    stream.read_lines(index, &events, last);
                }
                if last {
                    return;
                }
                std::thread::sleep(POLL);
            }
        });
        Follower { done, thread }
    }

    /// The process has exited: send the rest of its output, then stop.
    pub fn finish(self) {
        self.done.store(true, Ordering::Release);
        let _ = self.thread.join();
    }
}

struct Stream {
    path: PathBuf,
    name: &'static str,
    file: Option<File>,
    /// Bytes after the last newline, waiting for the rest of their line.
    pending: Vec<u8>,
}

impl Stream {
    fn read_lines(&mut self, index: usize, events: &Sender<Event>, last: bool) {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        if let Some(file) = &mut self.file {
            let _ = file.read_to_end(&mut self.pending);
        }
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.send(index, events, &line[..line.len() - 1]);
        }
        if last && !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.send(index, events, &line);
        }
    }

    fn send(&self, index: usize, events: &Sender<Event>, line: &[u8]) {
        let _ = events.send(Event::Output {
            index,
            stream: self.name,
            line: String::from_utf8_lossy(line).into_owned(),
        });
    }
}
