//! `cargo paratest list`: the tests a run would run, in its order.

use std::io::Write;
use std::time::Duration;

use super::prepare::{
    by_priority, discover, excluded_paths, load_timings, partition, prepare, selection,
};
use super::supervise::{end_supervision, supervised_watchdog};
use crate::cli::ListArgs;
use crate::config::MessageFormat;
use crate::error::{Result, exit};
use crate::overrides;
use crate::report::json;
use crate::schedule::{self, partition};
use crate::words::count;

pub(super) fn list(args: &ListArgs) -> Result<i32> {
    let prepared = prepare(&args.select, args.profile())?;
    let format = prepared.message_format;
    let selection = selection(&prepared, &args.select, &args.test_args)?;
    let excluded = excluded_paths(prepared.settings.output.as_deref(), &args.select);
    let (watchdog, run_id) = supervised_watchdog()?;
    let tests = discover(
        &prepared,
        &args.select,
        &selection,
        false,
        &watchdog,
        &excluded,
    );
    end_supervision(&watchdog, &run_id);
    let tests = match tests {
        Err(_) if watchdog.is_interrupted() => return Ok(exit::INTERRUPTED),
        other => other?,
    };
    let timings = load_timings(&prepared.timings, format);
    let partition = partition(&prepared)?;
    let mut shard = schedule::select(&tests, &timings, partition, |t| selection.skipped(t));
    let settings = overrides::resolve(
        &prepared.settings,
        &prepared.forced,
        prepared.plugin.name(),
        &tests,
    )?;
    by_priority(&mut shard.run, &settings);
    let order = &shard.run;
    let workers = prepared.workers;
    let in_order: Vec<Duration> = order.iter().map(|&i| shard.expected[i]).collect();
    let plan = partition::plan(&in_order, workers);
    let mut stdout = std::io::stdout().lock();
    for (position, &index) in order.iter().enumerate() {
        let test = &tests[index];
        let expected = shard.expected[index];
        if format == MessageFormat::Json {
            let listed = json::ListedTest {
                id: &test.id,
                group: &test.group,
                expected_duration: expected.as_secs_f64(),
                shard: shard.shard_of.as_ref().map(|shard_of| shard_of[index]),
                worker: args.plan.then(|| plan.worker_of[position]),
                settings: &settings[index],
            };
            json::write_line(&mut stdout, &listed);
        } else if args.plan {
            let _ = writeln!(
                stdout,
                "w{:<3} {:>9}  {}",
                plan.worker_of[position],
                crate::report::seconds(expected),
                crate::report::console::printable(&test.id)
            );
        } else {
            let _ = writeln!(
                stdout,
                "{:>9}  {}",
                crate::report::seconds(expected),
                crate::report::console::printable(&test.id)
            );
        }
    }
    if format != MessageFormat::Json {
        let shard_note = partition
            .map(|p| format!(" in shard {p}"))
            .unwrap_or_default();
        eprintln!("{}{shard_note}", count(order.len(), "test"));
        if args.plan {
            eprintln!(
                "expected makespan {} with {}; lower bound {} ({:.2}x)",
                crate::report::seconds(plan.makespan),
                count(workers, "worker"),
                crate::report::seconds(plan.lower_bound),
                plan.ratio()
            );
        }
    }
    Ok(exit::OK)
}
