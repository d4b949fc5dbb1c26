//! `cargo paratest queue`: the report and the status of a shared queue's build.

use crate::error::{Error, Result};

pub(super) fn queue_command(args: &crate::cli::QueueArgs) -> Result<i32> {
    use crate::cli::QueueAction;
    let url = args
        .queue
        .as_deref()
        .ok_or_else(|| Error::usage("queue: --queue redis://HOST:PORT[/DB] is required"))?;
    let build = crate::queue::build_id(args.build_id.as_deref(), |name| std::env::var(name).ok())?;
    crate::queue::open(url)?;
    match &args.action {
        QueueAction::Report {
            junit,
            timings,
            timeout,
        } => crate::queue::report::report(
            url,
            &build,
            junit.as_deref(),
            timings.as_deref(),
            timeout.map(|t| t.0),
        ),
        QueueAction::Status => crate::queue::report::status(url, &build),
    }
}
