//! The supervision of a command that starts processes: the watchdog, the
//! signal handler, the supervisor, and the sweep at the end.

use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::process::Watchdog;

/// Installs the Ctrl-C / SIGTERM handler: the watchdog kills running tests
/// and the workers stop taking new ones.
pub(super) fn handle_interrupts(watchdog: &Watchdog) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    // SIGHUP (the terminal went away) too: the teardowns still run.
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]).map_err(resource_error)?;
    let watchdog = watchdog.clone();
    std::thread::Builder::new()
        .name("paratest-signals".into())
        .spawn(move || {
            for _ in signals.forever() {
                watchdog.interrupt();
            }
        })
        .map_err(resource_error)?;
    Ok(())
}

pub(super) fn run_id() -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{:x}-{:x}", now.as_millis(), std::process::id())
}

/// The watchdog of a command that starts processes, its Ctrl-C handler,
/// the subreaper and the supervisor; and the run's id.
pub(super) fn supervised_watchdog() -> Result<(Watchdog, String)> {
    let watchdog = Watchdog::try_start().map_err(resource_error)?;
    let run_id = run_id();
    if let Err(e) = watchdog.supervise(&run_id) {
        eprintln!("warning: {e}; processes may outlive a crash of cargo-paratest");
    }
    handle_interrupts(&watchdog)?;
    Ok((watchdog, run_id))
}

/// The run is over: kill what is left of it, then let the supervisor go.
pub(super) fn end_supervision(watchdog: &Watchdog, run_id: &str) {
    let everything = crate::process::Sweep {
        run_id,
        worker: None,
        test: None,
    };
    watchdog.sweep(&everything, true);
    crate::supervisor::tell(crate::supervisor::Message::Exit);
}

/// A resource the run needs (a thread, a pipe, a process) could not be had: exit 3.
pub(super) fn resource_error(e: std::io::Error) -> Error {
    Error::with_cause(
        crate::error::Kind::CannotRun,
        "out of resources (processes, threads or open files; see `ulimit -a`)",
        e,
    )
}
