//! `cargo paratest run`: prepare, `--setup`, discover, schedule, run the
//! workers, report, save the timings, `--teardown`.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::prepare::{
    Prepared, by_priority, discover, ensure_paratest_dir, excluded_paths, find_source,
    load_timings, partition, prepare, selection, warn,
};
use super::supervise::{end_supervision, resource_error, supervised_watchdog};
use crate::cli::RunArgs;
use crate::config::{Hooks, Isolation, MessageFormat};
use crate::error::{Error, Result, exit};
use crate::events::Event;
use crate::exec::Runner;
use crate::hooks::{Hook, RunContext, Scope, run_hook};
use crate::model::TestCase;
use crate::overrides;
use crate::process::Watchdog;
use crate::report::console::{Console, StatusLevel};
use crate::report::{Counts, json};
use crate::runs::paratest_dir;
use crate::schedule;
use crate::schedule::partition::Partition;
use crate::schedule::timings::Timings;
use crate::verdict::{self, Ending};
use crate::workspace::Layout;

/// `run`, supervised: whatever it returns or however it ends (see
/// [`crate::supervisor`]), no process it started survives it.
pub(super) fn run(args: &RunArgs) -> Result<i32> {
    let (watchdog, run_id) = supervised_watchdog()?;
    // The run's directories outlive the last sweep: a straggler is killed
    // while its temp directory and the root's lock are still there.
    let mut dirs = None;
    let result = run_supervised(args, &watchdog, run_id.clone(), &mut dirs);
    end_supervision(&watchdog, &run_id);
    drop(dirs);
    // An interrupt during the last teardown still makes the run interrupted.
    match result {
        Err(e) if watchdog.is_interrupted() => {
            eprintln!("error: {e}");
            Ok(exit::INTERRUPTED)
        }
        other => other,
    }
}

fn run_supervised(
    args: &RunArgs,
    watchdog: &Watchdog,
    run_id: String,
    dirs_slot: &mut Option<crate::runs::RunDirs>,
) -> Result<i32> {
    let wall = Instant::now();
    let watchdog = watchdog.clone();
    let prepared = match prepare(&args.select, args.profile()) {
        Ok(prepared) => prepared,
        Err(e) => {
            if let Some(path) = unresolved_junit_path(args) {
                cannot_run_report(&path, "usage", &e.to_string(), MessageFormat::default());
            }
            return Err(e);
        }
    };
    let settings = &prepared.settings;
    let source = prepared.source.clone();
    let format = prepared.message_format;
    let junit_path = prepared.junit.clone();
    let checked = partition(&prepared)
        .and_then(|partition| prepared.check_isolation().map(|()| partition))
        .map(|partition| (prepared.workers, partition));
    let (workers, partition) = match checked {
        Ok(checked) => checked,
        Err(e) => {
            cannot_run_report(&junit_path, "usage", &e.to_string(), format);
            return Err(e);
        }
    };
    let hooks = prepared.hooks.clone();
    let timings_path = prepared.timings.clone();
    let opened = Timings::check_replaceable(&timings_path, args.overwrite_timings)
        .map_err(Error::usage)
        .and_then(|()| {
            ensure_paratest_dir(&source);
            crate::runs::RunDirs::open(&crate::runs::Request {
                source: &source,
                run_id: &run_id,
                output: settings.output.as_deref(),
                root: settings.workspace_root.as_deref(),
                keep_workspaces: prepared.keep_workspaces,
            })
        });
    let dirs = match opened {
        Ok(dirs) => &*dirs_slot.insert(dirs),
        Err(e) => {
            let stage = if e.exit_code() == exit::USAGE {
                "usage"
            } else {
                "workspaces"
            };
            cannot_run_report(&junit_path, stage, &e.to_string(), format);
            return Err(e);
        }
    };
    let output = log_dir(&prepared, &dirs.output);
    let context = RunContext {
        run_id,
        source: source.clone(),
        output: output.clone(),
        workers,
        partition: partition.map(|p| p.to_string()),
        temp_root: dirs.root.clone(),
    };

    // --setup runs before discovery; --teardown runs whatever happens after
    // it, and then what --setup left running is stopped.
    let services = match run_setup(&watchdog, &hooks, &context, &junit_path, format) {
        ControlFlow::Continue(services) => services,
        ControlFlow::Break(result) => return result,
    };
    let mut teardown = RunTeardown {
        watchdog: &watchdog,
        hooks: &hooks,
        context: &context,
        services,
        format,
        done: false,
    };
    let result = run_tests(
        args,
        &prepared,
        &context,
        &mut teardown,
        &timings_path,
        &junit_path,
        partition,
        wall,
    );
    teardown.run();
    if let Err(e) = &result {
        let stage = match (e.exit_code(), prepared.plugin.name()) {
            (exit::USAGE, _) => "usage",
            (_, "cargo") => "build",
            _ => "discovery",
        };
        cannot_run_report(&junit_path, stage, &e.to_string(), format);
    }
    // The run's directories (temp directory, fresh root, locks) go in `run`, after the last sweep.
    result
}

/// The log directory as the run names it: an archive's unpacked source's
/// logs by the path where they stay. `--output` inside the source is warned
/// about.
fn log_dir(prepared: &Prepared, opened: &Path) -> PathBuf {
    let (settings, source) = (&prepared.settings, &prepared.source);
    let mut output = opened.to_path_buf();
    if settings.output.is_none() && paratest_dir(source).is_symlink() {
        output = output.canonicalize().unwrap_or(output);
    }
    if settings.output.is_some() && crate::runs::resolved(&output).starts_with(source) {
        warn(
            prepared.message_format,
            None,
            &format!(
                "--output {} is inside the source: it is left out of the workspace copies and of test discovery",
                output.display()
            ),
        );
    }
    output
}

/// `--setup`: the service group it left running, else the run's result
/// once `--teardown` has run (interrupted, or exit 3 with the report).
fn run_setup(
    watchdog: &Watchdog,
    hooks: &Hooks,
    context: &RunContext,
    junit_path: &Path,
    format: MessageFormat,
) -> ControlFlow<Result<i32>, Option<u32>> {
    let Some(setup) = hooks.get(Hook::Setup) else {
        return ControlFlow::Continue(None);
    };
    let log = crate::exec::logs::hook_log_path(&context.output, "setup", None);
    match run_hook(
        watchdog,
        Hook::Setup,
        setup,
        Scope::run(context),
        &log,
        None,
    ) {
        Ok(services) => ControlFlow::Continue(services),
        Err(e) => {
            run_teardown(watchdog, hooks, context, None, format);
            if watchdog.is_interrupted() {
                cannot_run_report(junit_path, "setup", "interrupted during --setup", format);
                return ControlFlow::Break(Ok(exit::INTERRUPTED));
            }
            cannot_run_report(junit_path, "setup", &e, format);
            ControlFlow::Break(Err(Error::cannot_run(e)))
        }
    }
}

/// `--teardown` and the stop of what `--setup` left running, once: before
/// the summary when the run gets that far (so that an interrupt during it
/// is reported), else when `run` returns.
struct RunTeardown<'a> {
    watchdog: &'a Watchdog,
    hooks: &'a Hooks,
    context: &'a RunContext,
    services: Option<u32>,
    format: MessageFormat,
    done: bool,
}

impl RunTeardown<'_> {
    fn run(&mut self) {
        if !std::mem::replace(&mut self.done, true) {
            run_teardown(
                self.watchdog,
                self.hooks,
                self.context,
                self.services.take(),
                self.format,
            );
        }
    }
}

/// Where the report goes when the settings could not be resolved (a bad
/// value, a broken `paratest.toml`): the `--junit` typed, else the default
/// report of the source if one is there from an earlier run, so that no
/// earlier run's report survives a usage error; nothing new is created in a
/// directory that has no report yet.
fn unresolved_junit_path(args: &RunArgs) -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    if let Some(path) = &args.junit {
        return Some(cwd.join(path));
    }
    let source = find_source(&args.select, &cwd).ok()?;
    let default = paratest_dir(&source).join("junit.xml");
    default.is_file().then_some(default)
}

/// Writes the report of a run that could not happen, in place of any
/// earlier run's report at that path.
fn cannot_run_report(junit_path: &Path, stage: &str, cause: &str, format: MessageFormat) {
    if let Err(e) = crate::report::junit_file::write_error_report(
        junit_path,
        "cargo-paratest",
        stage,
        cause,
        &[],
        SystemTime::now(),
    ) {
        warn(
            format,
            None,
            &format!(
                "cannot write the JUnit report {}: {e}",
                junit_path.display()
            ),
        );
    }
}

fn run_teardown(
    watchdog: &Watchdog,
    hooks: &Hooks,
    context: &RunContext,
    services: Option<u32>,
    format: MessageFormat,
) {
    if let Some(teardown) = hooks.get(Hook::Teardown) {
        let log = crate::exec::logs::hook_log_path(&context.output, "teardown", None);
        if let Err(e) = run_hook(
            watchdog,
            Hook::Teardown,
            teardown,
            Scope::run(context),
            &log,
            None,
        ) {
            warn(format, None, &e);
        }
    }
    if let Some(group) = services {
        crate::process::stop_group(group);
    }
}

#[allow(clippy::too_many_arguments)]
fn run_tests(
    args: &RunArgs,
    prepared: &Prepared,
    context: &RunContext,
    teardown: &mut RunTeardown<'_>,
    timings_path: &Path,
    junit_path: &Path,
    partition: Option<Partition>,
    wall: Instant,
) -> Result<i32> {
    let (hooks, watchdog) = (teardown.hooks, teardown.watchdog);
    let settings = &prepared.settings;
    let format = prepared.message_format;
    let interactive_build = format == MessageFormat::Human;
    let selection = selection(prepared, &args.select, &args.test_args)?;
    let excluded = excluded_paths(Some(&context.output), &args.select);
    let tests = match discover(
        prepared,
        &args.select,
        &selection,
        interactive_build,
        watchdog,
        &excluded,
    ) {
        Err(_) if watchdog.is_interrupted() => {
            cannot_run_report(
                junit_path,
                "discovery",
                "interrupted before any test ran",
                format,
            );
            return Ok(exit::INTERRUPTED);
        }
        other => other?,
    };
    let timings = load_timings(timings_path, format);
    let mut shard = schedule::select(&tests, &timings, partition, |t| selection.skipped(t));
    let per_test = overrides::resolve(settings, &prepared.forced, prepared.plugin.name(), &tests)?;
    by_priority(&mut shard.run, &per_test);
    let groups = crate::schedule::groups::GroupLimits::new(
        per_test
            .iter()
            .map(|s| Some(s.test_group.as_str()).filter(|g| *g != overrides::GLOBAL_GROUP)),
        &prepared.project.test_groups,
    );
    let (order, skip) = (&shard.run, &shard.skip);
    let retries = prepared.retries;
    let remote = crate::queue::join_build(args, partition.is_some(), &tests, order, retries)?;
    let workers = context.workers.min(order.len()).max(1);
    let context = RunContext {
        workers,
        ..context.clone()
    };

    let reporters = reporters(args, prepared, &per_test, order.len(), junit_path);
    let mut pipeline = crate::report::Pipeline::new(&tests, reporters);
    pipeline.event(&Event::RunStarted(crate::events::RunStarted {
        run_id: context.run_id.clone(),
        tests: order.len(),
        skipped: skip.len(),
        workers,
        partition: context.partition.clone(),
        queue: remote.as_ref().map(|queue| queue.build.clone()),
        isolation: match prepared.isolation {
            Isolation::Copy => "copy",
            Isolation::None => "no",
            Isolation::Empty => "empty",
        },
    }));
    for &index in skip {
        pipeline.event(&Event::TestSkipped { index });
    }

    let workspace_root = context.temp_root.clone();
    // A fresh root is the run's own: the supervisor removes it if the run dies.
    if settings.workspace_root.is_none() && !prepared.keep_workspaces {
        crate::supervisor::tell(crate::supervisor::Message::Workspace(&workspace_root));
    }
    let layout = Layout {
        isolation: prepared.isolation,
        source: prepared.source.clone(),
        root: workspace_root.clone(),
        excluded,
    };
    let runner = Runner {
        tests: &tests,
        order: order.clone(),
        plugin: &*prepared.plugin,
        layout,
        context: context.clone(),
        hooks: hooks.clone(),
        retries,
        timeout: prepared.timeout,
        slow_timeout: Some(prepared.slow_timeout),
        fail_fast: prepared.fail_fast,
        max_fail: settings.max_fail,
        no_capture: args.no_capture,
        per_test: per_test.clone(),
        groups,
        workspace_reset: prepared.workspace_reset,
        keep_workspaces: prepared.keep_workspaces,
        watchdog: watchdog.clone(),
        expected: shard.expected.clone(),
        batching: prepared.plugin.batches()
            && hooks.setup_test.is_none()
            && hooks.teardown_test.is_none(),
        source: remote.as_ref().map(|q| q as &dyn crate::exec::JobSource),
    };
    let run_started = Instant::now();
    let stats = run_workers(&runner, &mut pipeline, remote.as_ref(), watchdog);
    let makespan = run_started.elapsed();
    teardown.run();
    let stats = stats.map_err(resource_error)?;

    let interrupted = watchdog.is_interrupted();
    let outcomes = settle_unfinished(&mut pipeline, remote.as_ref(), &tests);
    // What the reports count: the framework's own tests (a pytest file's
    // tests), while `outcomes` keeps the units the workers were handed.
    let reported = crate::report::cases::expand(&outcomes);
    let counts = Counts::of(&reported, stats.not_run);
    let mut files = Vec::new();
    // The run's wall-clock time, one figure for every report: the JUnit
    // root's time (not a sum of tests), the console, the step summary and
    // `run-finished`.
    let wall = wall.elapsed();
    files.push(("Logs", context.output.clone()));
    if runner.keep_workspaces {
        files.push(("Workspaces", workspace_root.clone()));
    }
    let timings_written = save_timings(
        &mut pipeline,
        prepared,
        timings_path,
        &timings,
        partition,
        &outcomes,
    );
    if let Some(path) = &timings_written {
        files.push(("Timings", path.clone()));
    }
    let bound = makespan_bound(&outcomes, &pipeline.collector.workers, workers);
    let ending = Ending {
        interrupted,
        resource_failure: stats.resource_failure.as_deref(),
        queue_lost: remote.as_ref().is_some_and(|q| q.is_lost()),
        failed: counts.failed + counts.timed_out > 0
            || verdict::flaky_fails(&outcomes, &tests, &per_test, prepared.flaky_result),
        workers_lost: stats.workers_lost,
        workers,
        to_run: order.len(),
    };
    let (exit_code, no_tests_line) = match ending.exit_code() {
        Some(code) => (code, None),
        None => {
            let (code, line) = verdict::no_tests(prepared.no_tests, partition, &tests, &selection);
            (code, Some(line))
        }
    };
    // The cause of an exit 3: a line before the summary, the JUnit report's `<error>`.
    let cannot_run = ending.cannot_run(exit_code, &pipeline.collector.workspace_failures);
    pipeline.finish(crate::events::RunFinished {
        counts,
        wall,
        exit_code,
        interrupted,
        error: cannot_run.as_ref().map(|c| format!("error: {}", c.line)),
        cannot_run: cannot_run.map(|c| (c.stage.to_string(), c.cause)),
        no_tests: no_tests_line,
        makespan: bound.map(|bound| (makespan, bound)),
        files,
        junit: None,
        timings: timings_written,
        not_annotated: Vec::new(),
    });
    Ok(exit_code)
}

/// The run's reporters: the console always, the `--message-format` stream
/// on stdout, the JUnit report, and on GitHub the annotations and the step
/// summary.
fn reporters(
    args: &RunArgs,
    prepared: &Prepared,
    per_test: &[overrides::TestSettings],
    tests: usize,
    junit_path: &Path,
) -> Vec<Box<dyn crate::report::Reporter>> {
    let console = Console::new(tests, prepared.retries)
        .with_retries_by_test(per_test.iter().map(|s| s.retries).collect())
        .with_status_level(if args.quiet {
            StatusLevel::Quiet
        } else if args.verbose > 0 {
            StatusLevel::Verbose
        } else {
            StatusLevel::Normal
        });
    let mut reporters: Vec<Box<dyn crate::report::Reporter>> = vec![Box::new(console)];
    match prepared.message_format {
        MessageFormat::Human => {}
        MessageFormat::Json => {
            reporters.push(Box::new(json::Json::new(Box::new(std::io::stdout()))))
        }
        MessageFormat::Teamcity => reporters.push(Box::new(
            crate::report::teamcity::TeamCity::new(Box::new(std::io::stdout())),
        )),
    }
    reporters.push(Box::new(crate::report::junit_file::JunitFile::new(
        junit_path.to_path_buf(),
    )));
    // GitHub's run page: annotations first, then the step summary that
    // names the failures beyond their cap.
    reporters.extend(
        crate::report::annotations::GithubAnnotations::from_env(&prepared.source)
            .map(|a| Box::new(a) as Box<dyn crate::report::Reporter>),
    );
    reporters.extend(
        crate::report::step_summary::StepSummary::from_env()
            .map(|s| Box::new(s) as Box<dyn crate::report::Reporter>),
    );
    reporters
}

/// The workers run; their events go to the pipeline on a thread of its own.
fn run_workers(
    runner: &Runner<'_>,
    pipeline: &mut crate::report::Pipeline<'_>,
    remote: Option<&crate::queue::RedisQueue>,
    watchdog: &Watchdog,
) -> std::io::Result<crate::exec::RunStats> {
    let (sender, receiver) = crossbeam_channel::unbounded::<Event>();
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("paratest-reporter".into())
            .spawn_scoped(scope, move || {
                for event in receiver {
                    pipeline.event(&event);
                }
            })?;
        let stats = crate::queue::with_heartbeat(remote, watchdog, || runner.run(&sender));
        drop(sender);
        Ok(stats)
    })
}

/// The outcomes of the run, once the tests it left unfinished are settled.
/// With a shared queue, a test whose retry went back to the queue is
/// another machine's now: it is in the build's report, not this one's.
/// Every test of ours ends with a final line and a final `test-finished`,
/// also those whose queued retry an interrupt cancelled.
fn settle_unfinished(
    pipeline: &mut crate::report::Pipeline<'_>,
    remote: Option<&crate::queue::RedisQueue>,
    tests: &[TestCase],
) -> Vec<crate::model::TestOutcome> {
    let mut outcomes = pipeline.collector.outcomes();
    let unfinished = pipeline.collector.unfinished();
    let ours = crate::queue::handed_over(remote, tests, &mut outcomes, unfinished.clone());
    for &index in unfinished.iter().filter(|i| !ours.contains(i)) {
        pipeline.collector.forget(index);
    }
    for index in ours {
        if let Some(result) = pipeline.collector.result_of(index) {
            pipeline.event(&Event::RetryCancelled { index, result });
        }
    }
    outcomes
}

/// Saves the run's samples (see [`crate::schedule::timings::save_run`]);
/// the file written, if any. A failure to save is a warning.
fn save_timings(
    pipeline: &mut crate::report::Pipeline<'_>,
    prepared: &Prepared,
    timings_path: &Path,
    timings: &Timings,
    partition: Option<Partition>,
    outcomes: &[crate::model::TestOutcome],
) -> Option<PathBuf> {
    let samples = crate::schedule::timings::samples_of(outcomes);
    match crate::schedule::timings::save_run(
        timings_path,
        prepared.settings.timings_out.as_deref(),
        timings,
        partition,
        &samples,
    ) {
        Ok(path) => path,
        Err(e) => {
            pipeline.event(&Event::Warning(format!("timings not saved: {e}")));
            None
        }
    }
}

/// The makespan's lower bound, when a test ran: the longest attempt, or the
/// workers' busy time spread evenly, whichever is more. It counts what the
/// workers were busy with (process start-ups included), not only what the
/// tests report about themselves.
fn makespan_bound(
    outcomes: &[crate::model::TestOutcome],
    workers_stats: &[(usize, crate::events::WorkerStats)],
    workers: usize,
) -> Option<Duration> {
    let longest = outcomes
        .iter()
        .flat_map(|o| o.attempts.iter().map(|a| a.duration))
        .max()?;
    let busy: Duration = workers_stats.iter().map(|(_, stats)| stats.busy).sum();
    Some(longest.max(busy / workers as u32))
}
