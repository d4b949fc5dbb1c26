//! The commands, end to end: `run`, `list`, `plugins`. This is the only place
//! that knows the order of the stages; each stage lives in its own module.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::cli::{
    ArchiveArgs, Cli, Command as Subcommand, ListArgs, MergeArgs, RunArgs, SelectArgs,
    TimingsAction, TimingsArgs,
};
use crate::config::{Hooks, Isolation, MessageFormat, NoTests, Profile, RunConfig};
use crate::error::{Error, Result, exit};
use crate::events::Event;
use crate::filterset::Filterset;
use crate::hooks::{Hook, RunContext, Scope, run_hook};
use crate::model::TestCase;
use crate::overrides;
use crate::plugin::{self, DiscoverContext};
use crate::process::Watchdog;
use crate::report::console::Console;
use crate::report::console::StatusLevel;
use crate::report::{Counts, json};
use crate::runner::Runner;
use crate::schedule;
use crate::schedule::partition::{self, Partition};
use crate::schedule::timings::Timings;
use crate::selection::Selection;
use crate::words::count;
use crate::workspace::Layout;

/// Runs the command line and returns the process exit code.
pub fn main(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    let args: Vec<std::ffi::OsString> = args.into_iter().collect();
    if args
        .get(1)
        .is_some_and(|a| a == crate::supervisor::SUBCOMMAND)
    {
        let run_id = args.get(2).map(|a| a.to_string_lossy().into_owned());
        return crate::supervisor::main(&run_id.unwrap_or_default());
    }
    // A Cargo batch's process (see `plugin::cargo_batch`).
    if let Some(code) = crate::plugin::cargo_batch::main(&args) {
        return code;
    }
    let cli = match Cli::parse_args(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
        }
    };
    crate::report::console::set_color_override(match cli.color {
        Some(crate::cli::ColorChoice::Always) => Some(true),
        Some(crate::cli::ColorChoice::Never) => Some(false),
        Some(crate::cli::ColorChoice::Auto) | None => None,
    });
    let result = match cli.command {
        Subcommand::Run(args) => run(&args),
        Subcommand::List(args) => list(&args),
        Subcommand::Plugins => plugins(),
        Subcommand::Timings(args) => timings_command(&args),
        Subcommand::Merge(args) => merge_reports(&args),
        Subcommand::Queue(args) => queue_command(&args),
        Subcommand::Archive(args) => archive(&args),
        Subcommand::Completions { shell } => {
            Cli::write_completions(shell, &mut std::io::stdout());
            Ok(exit::OK)
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        e.exit_code()
    })
}

fn queue_command(args: &crate::cli::QueueArgs) -> Result<i32> {
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

fn plugins() -> Result<i32> {
    let mut stdout = std::io::stdout().lock();
    for plugin in plugin::registered() {
        let _ = writeln!(stdout, "{:<10} {}", plugin.name(), plugin.description());
    }
    Ok(exit::OK)
}

fn timings_command(args: &TimingsArgs) -> Result<i32> {
    let path = match &args.timings {
        Some(path) => path.clone(),
        None => {
            let cwd = std::env::current_dir().map_err(|e| {
                Error::with_cause(crate::error::Kind::Usage, "no current directory", e)
            })?;
            let select = SelectArgs::for_source(args.source.clone());
            paratest_dir(&find_source(&select, &cwd)?).join("timings.json")
        }
    };
    let fail = |e: String| Error::usage(e);
    match &args.action {
        TimingsAction::Show { message_format } => {
            let (timings, warning) = Timings::load(&path);
            if let Some(warning) = warning {
                return Err(Error::usage(warning));
            }
            let mut rows: Vec<(Duration, usize, &str)> = timings
                .iter()
                .map(|(id, samples)| (timings.expected(id).unwrap_or_default(), samples.len(), id))
                .collect();
            rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.2.cmp(b.2)));
            let mut stdout = std::io::stdout().lock();
            for (expected, samples, id) in &rows {
                let _ = if *message_format == Some(MessageFormat::Json) {
                    let row = json::TimedTest {
                        id,
                        expected_duration: expected.as_secs_f64(),
                        samples: *samples,
                    };
                    json::write_line(&mut stdout, &row);
                    Ok(())
                } else {
                    writeln!(
                        stdout,
                        "{:>9}  {}  {}",
                        crate::report::seconds(*expected),
                        count(*samples, "sample"),
                        crate::report::console::printable(id)
                    )
                };
            }
            eprintln!("{} in {}", count(rows.len(), "test"), path.display());
        }
        TimingsAction::Merge { inputs, output } => {
            Timings::check_replaceable(output, args.overwrite_timings).map_err(fail)?;
            let mut loaded = Vec::new();
            for input in inputs {
                let (timings, warning) = Timings::load(input);
                if let Some(warning) = warning {
                    return Err(Error::usage(format!("cannot merge: {warning}")));
                }
                if !input.exists() {
                    return Err(Error::usage(format!(
                        "cannot merge: {} does not exist",
                        input.display()
                    )));
                }
                loaded.push(timings);
            }
            let merged = Timings::merge(&loaded);
            merged.save_to(output).map_err(fail)?;
            eprintln!(
                "merged {}: {} in {}",
                count(inputs.len(), "file"),
                count(merged.len(), "test"),
                output.display()
            );
        }
        TimingsAction::Import { reports, output } => {
            let imported = import_timings(reports)?;
            let target = output.as_deref().unwrap_or(&path);
            Timings::check_replaceable(target, args.overwrite_timings).map_err(fail)?;
            let result = if output.is_some() {
                imported.clone()
            } else {
                let (existing, warning) = Timings::load(target);
                if let Some(warning) = warning {
                    return Err(Error::usage(format!("cannot import into it: {warning}")));
                }
                Timings::merge(&[existing, imported.clone()])
            };
            result.save_to(target).map_err(fail)?;
            eprintln!(
                "imported {} from {} into {}",
                count(imported.len(), "test"),
                count(reports.len(), "report"),
                target.display()
            );
        }
        TimingsAction::Clear => {
            Timings::check_replaceable(&path, args.overwrite_timings).map_err(fail)?;
            Timings::clear(&path).map_err(fail)?;
            eprintln!("cleared {}", path.display());
        }
    }
    Ok(exit::OK)
}

/// `merge`: every input is read before anything is written, so a malformed
/// input (exit 2, naming the file and the position) leaves no output file.
fn merge_reports(args: &MergeArgs) -> Result<i32> {
    use crate::junit::{merge, read as junit_read, write as junit};
    let mut reports = Vec::new();
    for path in &args.inputs {
        check_input_file(path)?;
        let report = junit_read::read_report(path).map_err(|e| Error::usage(e.to_string()))?;
        reports.push((path.clone(), report));
    }
    let merged = merge::merge(&reports).map_err(Error::usage)?;
    junit::write_xml(&args.output, &merged).map_err(|e| {
        Error::with_cause(
            crate::error::Kind::CannotRun,
            format!("cannot write {}", args.output.display()),
            e,
        )
    })?;
    eprintln!(
        "merged {}: {}, {}, {} into {}",
        count(args.inputs.len(), "report"),
        count(merged.tests, "test"),
        count(merged.failures, "failure"),
        count(merged.errors, "error"),
        args.output.display()
    );
    Ok(exit::OK)
}

/// The biggest report `merge` and `timings import` read (they hold it in memory).
const MAX_REPORT_SIZE: u64 = 512 << 20;

/// A report to read must be a regular file of a bounded size: a FIFO would
/// block and a device never ends. Checked before the file is opened.
fn check_input_file(path: &Path) -> Result<()> {
    let metadata = std::fs::metadata(path).map_err(|e| {
        Error::with_cause(
            crate::error::Kind::Usage,
            format!("cannot read {}", path.display()),
            e,
        )
    })?;
    if !metadata.is_file() {
        return Err(Error::usage(format!(
            "cannot read {}: not a regular file (a FIFO, a device or a directory); give the path of a report file",
            path.display()
        )));
    }
    if metadata.len() > MAX_REPORT_SIZE {
        return Err(Error::usage(format!(
            "cannot read {}: it is {} MiB, over the limit of {} MiB for one report",
            path.display(),
            metadata.len() >> 20,
            MAX_REPORT_SIZE >> 20
        )));
    }
    Ok(())
}

/// Timings from JUnit reports (see [`crate::schedule::timings::import`]).
fn import_timings(reports: &[PathBuf]) -> Result<Timings> {
    for path in reports {
        check_input_file(path)?;
    }
    crate::schedule::timings::import::from_reports(reports).map_err(Error::usage)
}

/// What `run` and `list` share: the resolved settings and the plugin.
struct Prepared {
    config: RunConfig,
    plugin: plugin::Selected,
}

/// `prepared.source`, `prepared.settings`, ...: the config's fields are the
/// prepared command's.
impl std::ops::Deref for Prepared {
    type Target = RunConfig;
    fn deref(&self) -> &RunConfig {
        &self.config
    }
}

/// `run` and `list`: with `--archive-file`, the archive is unpacked and its
/// tests are the ones run.
fn prepare(select: &SelectArgs, cli_layer: Profile) -> Result<Prepared> {
    let unpacked = match &select.archive_file {
        Some(file) => Some(crate::archive::unpack(file)?),
        None => None,
    };
    prepare_in(select, cli_layer, unpacked)
}

fn prepare_in(
    select: &SelectArgs,
    cli_layer: Profile,
    unpacked: Option<crate::archive::Unpacked>,
) -> Result<Prepared> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::with_cause(crate::error::Kind::Usage, "no current directory", e))?;
    let unpacked_source = match &unpacked {
        Some(unpacked) if select.source.is_none() => {
            Some(crate::archive::source_of(unpacked, &cwd)?)
        }
        _ => None,
    };
    let config = RunConfig::resolve(select.request(cli_layer, unpacked_source), &cwd, |name| {
        std::env::var(name).ok()
    })?;
    let plugin = match unpacked {
        Some(unpacked) => crate::archive::plugin(unpacked, config.settings.plugin.as_deref())?,
        None => plugin::select(
            config.settings.plugin.as_deref(),
            &config.source,
            &config.project.plugins,
        )?,
    };
    Ok(Prepared { config, plugin })
}

/// `--source`, else the Cargo workspace root above the current directory (or
/// `--manifest-path`), else the current directory.
fn find_source(select: &SelectArgs, cwd: &Path) -> Result<PathBuf> {
    crate::config::resolve::find_source(
        select.source.as_deref(),
        select.cargo.manifest_path.as_deref(),
        select.plugin.as_deref(),
        cwd,
    )
}

use crate::runs::paratest_dir;

/// Creates `.paratest/` with a `.gitignore` that ignores it whole.
fn ensure_paratest_dir(source: &Path) {
    let dir = paratest_dir(source);
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = crate::runs::ignore_in_git(&dir);
    }
}

/// What workspaces and discovery leave out of the source besides the
/// fixed names: the log directory and a `--target-dir` inside it.
fn excluded_paths(output: Option<&Path>, select: &SelectArgs) -> Vec<PathBuf> {
    output
        .map(Path::to_path_buf)
        .into_iter()
        .chain(
            select
                .cargo
                .target_dir
                .iter()
                .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone())),
        )
        .collect()
}

fn discover(
    prepared: &Prepared,
    select: &SelectArgs,
    selection: &Selection,
    verbose_build: bool,
    watchdog: &Watchdog,
    excluded: &[PathBuf],
) -> Result<Vec<TestCase>> {
    let cargo = cargo_options(prepared, select);
    let ctx = DiscoverContext {
        source: &prepared.source,
        cargo: &cargo,
        ignored: selection.ignored,
        settings: prepared.project.plugins.get(prepared.plugin.name()),
        test_args: &selection.test_args,
        // `--cargo-verbose` asks to see cargo's own output, also for `list`.
        verbose_build: verbose_build || select.cargo.cargo_verbose > 0,
        patterns: &select.test_pattern,
        watchdog,
        excluded,
        discovery_timeout: prepared.discovery_timeout,
    };
    // A malformed expression is a usage error before anything is built.
    let filtersets = select
        .filterset
        .iter()
        .map(|text| {
            let filterset = Filterset::parse(text).map_err(|e| Error::usage(format!("-E: {e}")))?;
            filterset
                .check_plugin(prepared.plugin.name())
                .map_err(|e| Error::usage(format!("-E: {e}")))?;
            Ok(filterset)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut tests = prepared.plugin.discover(&ctx)?;
    tests.retain(|test| selection.matches(test));
    if !filtersets.is_empty() {
        let plugin = prepared.plugin.name();
        let settings = overrides::resolve(&prepared.settings, &prepared.forced, plugin, &tests)?;
        let keep: Vec<bool> = tests
            .iter()
            .zip(&settings)
            .map(|(test, settings)| {
                let facts = overrides::facts(test, plugin, &settings.test_group);
                filtersets.iter().any(|f| f.matches(&facts))
            })
            .collect();
        let mut keep = keep.into_iter();
        tests.retain(|_| keep.next().unwrap_or(false));
    }
    tests.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(pair) = tests.windows(2).find(|pair| pair[0].id == pair[1].id) {
        return Err(Error::cannot_run(format!(
            "plugin `{}` reported the test `{}` twice",
            prepared.plugin.name(),
            pair[0].id
        )));
    }
    Ok(tests)
}

/// Cargo's options, with the member directory the command runs in.
fn cargo_options(prepared: &Prepared, select: &SelectArgs) -> crate::config::CargoOptions {
    let mut cargo = select.cargo.options();
    if prepared.plugin.name() == "cargo" && select.source.is_none() {
        cargo.manifest_path = cargo
            .manifest_path
            .or_else(|| member_manifest(&prepared.source));
    }
    cargo
}

/// `cargo paratest archive --archive-file FILE`: builds and discovers as
/// `run` does, then writes the archive (see [`crate::archive`]).
fn archive(args: &ArchiveArgs) -> Result<i32> {
    let started = Instant::now();
    let Some(file) = args.select.archive_file.clone() else {
        return Err(Error::usage(
            "`cargo paratest archive` needs --archive-file FILE, the archive to write",
        ));
    };
    let file = std::path::absolute(&file).unwrap_or(file);
    let prepared = prepare_in(&args.select, args.profile(), None)?;
    if prepared.plugin.name() != "cargo" {
        return Err(Error::usage(format!(
            "--plugin {}: only the Cargo plugin's tests can be archived",
            prepared.plugin.name()
        )));
    }
    let format = prepared.message_format;
    let selection = selection(&prepared, &args.select, &[])?;
    let mut excluded = excluded_paths(None, &args.select);
    excluded.push(file.clone());
    // Supervised as `run` is: a build or listing killed with us dies too.
    let (watchdog, run_id) = supervised_watchdog()?;
    let cargo = cargo_options(&prepared, &args.select);
    let created = discover(
        &prepared,
        &args.select,
        &selection,
        format == MessageFormat::Human,
        &watchdog,
        &excluded,
    )
    .and_then(|tests| {
        crate::archive::create(
            &crate::archive::CreateRequest {
                file: &file,
                source: &prepared.source,
                include_source: !args.no_source,
                excluded: &excluded,
                cargo: &cargo,
                watchdog: &watchdog,
            },
            &tests,
        )
    });
    end_supervision(&watchdog, &run_id);
    let created = match created {
        Err(_) if watchdog.is_interrupted() => return Ok(exit::INTERRUPTED),
        other => other?,
    };
    let elapsed = started.elapsed();
    if format == MessageFormat::Json {
        json::print(&json::Archived {
            kind: "archive",
            path: &file,
            tests: created.tests,
            binaries: created.binaries,
            entries: created.files,
            bytes: created.bytes,
            seconds: elapsed.as_secs_f64(),
            source_included: !args.no_source,
        });
    } else {
        eprintln!(
            "Archived {} tests of {} binaries ({} entries{}, {:.1} MB) to {} in {}",
            created.tests,
            created.binaries,
            created.files,
            if args.no_source {
                ", no source"
            } else {
                ", with the source"
            },
            created.bytes as f64 / 1e6,
            file.display(),
            crate::words::tenths(elapsed)
        );
    }
    Ok(exit::OK)
}

/// `cargo test`'s rule: run from a member directory of a Cargo workspace,
/// only that member is tested. The source is the workspace root, so the
/// member's manifest (the nearest `Cargo.toml` above the current
/// directory, when it is not the root's) goes to cargo as `--manifest-path`;
/// `-p`, `--workspace` and `--exclude` then keep cargo's meaning.
fn member_manifest(source: &Path) -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    let nearest = cwd
        .ancestors()
        .map(|dir| dir.join("Cargo.toml"))
        .find(|manifest| manifest.is_file())?;
    let root = source.join("Cargo.toml");
    let same = |a: &Path, b: &Path| a.canonicalize().ok() == b.canonicalize().ok();
    let inside = nearest
        .canonicalize()
        .ok()
        .zip(source.canonicalize().ok())
        .is_some_and(|(manifest, source)| manifest.starts_with(source));
    (inside && !same(&nearest, &root)).then_some(nearest)
}

/// The selection of `run` or `list`: libtest's selection arguments after
/// `--` count for the Cargo plugin.
fn selection(prepared: &Prepared, select: &SelectArgs, test_args: &[String]) -> Result<Selection> {
    Selection::new(select, test_args, prepared.plugin.name() == "cargo")
}

/// Higher `priority` first; within one priority the order stays (longest first).
fn by_priority(order: &mut [usize], settings: &[overrides::TestSettings]) {
    order.sort_by_key(|&index| std::cmp::Reverse(settings[index].priority));
}

/// The partition asked for, if any (see [`RunConfig::partition`]).
fn partition(config: &RunConfig) -> Result<Option<crate::schedule::partition::Partition>> {
    config.partition(|name| std::env::var(name).ok())
}

/// A problem that does not stop the command: a line on stderr (above the
/// progress bar when there is one) and, in JSON mode, a `warning` event.
fn warn(format: MessageFormat, console: Option<&Console>, message: &str) {
    match console {
        Some(console) => console.line(&format!("warning: {message}")),
        None => eprintln!("warning: {message}"),
    }
    match format {
        MessageFormat::Human => {}
        MessageFormat::Json => json::print(&json::JsonEvent::Warning { message }),
        MessageFormat::Teamcity => crate::report::teamcity::print_warning(message),
    }
}

fn load_timings(path: &Path, format: MessageFormat) -> Timings {
    let (timings, warning) = Timings::load(path);
    if let Some(warning) = warning {
        warn(format, None, &warning);
    }
    timings
}

fn list(args: &ListArgs) -> Result<i32> {
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

/// Installs the Ctrl-C / SIGTERM handler: the watchdog kills running tests
/// and the workers stop taking new ones.
fn handle_interrupts(watchdog: &Watchdog) -> Result<()> {
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

fn run_id() -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{:x}-{:x}", now.as_millis(), std::process::id())
}

/// `run`, supervised: whatever it returns or however it ends (see
/// [`crate::supervisor`]), no process it started survives it.
fn run(args: &RunArgs) -> Result<i32> {
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

/// The watchdog of a command that starts processes, its Ctrl-C handler,
/// the subreaper and the supervisor; and the run's id.
fn supervised_watchdog() -> Result<(Watchdog, String)> {
    let watchdog = Watchdog::try_start().map_err(resource_error)?;
    let run_id = run_id();
    if let Err(e) = watchdog.supervise(&run_id) {
        eprintln!("warning: {e}; processes may outlive a crash of cargo-paratest");
    }
    handle_interrupts(&watchdog)?;
    Ok((watchdog, run_id))
}

/// The run is over: kill what is left of it, then let the supervisor go.
fn end_supervision(watchdog: &Watchdog, run_id: &str) {
    let everything = crate::process::Sweep {
        run_id,
        worker: None,
        test: None,
    };
    watchdog.sweep(&everything, true);
    crate::supervisor::tell(crate::supervisor::Message::Exit);
}

/// A resource the run needs (a thread, a pipe, a process) could not be had: exit 3.
pub fn resource_error(e: std::io::Error) -> Error {
    Error::with_cause(
        crate::error::Kind::CannotRun,
        "out of resources (processes, threads or open files; see `ulimit -a`)",
        e,
    )
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
    let mut output = dirs.output.clone();
    if settings.output.is_none() && paratest_dir(&source).is_symlink() {
        // An archive's unpacked source: name the logs where they stay.
        output = output.canonicalize().unwrap_or(output);
    }
    if settings.output.is_some() && crate::runs::resolved(&output).starts_with(&source) {
        warn(
            format,
            None,
            &format!(
                "--output {} is inside the source: it is left out of the workspace copies and of test discovery",
                output.display()
            ),
        );
    }
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
    let services = match hooks.get(Hook::Setup) {
        None => None,
        Some(setup) => {
            let log = crate::runner::hook_log_path(&output, "setup", None);
            match run_hook(
                &watchdog,
                Hook::Setup,
                setup,
                Scope::run(&context),
                &log,
                None,
            ) {
                Ok(services) => services,
                Err(e) => {
                    run_teardown(&watchdog, &hooks, &context, None, format);
                    if watchdog.is_interrupted() {
                        cannot_run_report(
                            &junit_path,
                            "setup",
                            "interrupted during --setup",
                            format,
                        );
                        return Ok(exit::INTERRUPTED);
                    }
                    cannot_run_report(&junit_path, "setup", &e, format);
                    return Err(Error::cannot_run(e));
                }
            }
        }
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
        let log = crate::runner::hook_log_path(&context.output, "teardown", None);
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

/// The exit code and the message of a run with nothing to run: exit 4
/// unless `--no-tests` says otherwise; a shard of a suite that has tests
/// elsewhere only warns (another shard runs them).
fn no_tests(
    no_tests: NoTests,
    partition: Option<Partition>,
    selected: &[TestCase],
    selection: &Selection,
) -> (i32, String) {
    let runnable = selected.iter().filter(|t| !selection.skipped(t)).count();
    if let Some(partition) = partition
        && runnable > 0
    {
        return (
            exit::OK,
            format!(
                "shard {partition} has no test to run (the other shards run the {runnable} selected)"
            ),
        );
    }
    let why = selection.why_empty(selected.len());
    match no_tests {
        NoTests::Fail => (
            exit::NO_TESTS,
            format!(
                "error: no tests to run (exit 4; `--no-tests warn` or `pass` allows it): {why}"
            ),
        ),
        NoTests::Warn => (exit::OK, format!("no tests to run: {why}")),
        NoTests::Pass => (exit::OK, String::new()),
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

    let console = Console::new(order.len(), retries)
        .with_retries_by_test(per_test.iter().map(|s| s.retries).collect())
        .with_status_level(if args.quiet {
            StatusLevel::Quiet
        } else if args.verbose > 0 {
            StatusLevel::Verbose
        } else {
            StatusLevel::Normal
        });
    let mut reporters: Vec<Box<dyn crate::report::Reporter>> = vec![Box::new(console)];
    match format {
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
        source: remote.as_ref().map(|q| q as &dyn crate::runner::JobSource),
    };
    let run_started = Instant::now();
    let (sender, receiver) = crossbeam_channel::unbounded::<Event>();
    let stats = std::thread::scope(|scope| {
        let pipeline = &mut pipeline;
        std::thread::Builder::new()
            .name("paratest-reporter".into())
            .spawn_scoped(scope, move || {
                for event in receiver {
                    pipeline.event(&event);
                }
            })?;
        let stats = crate::queue::with_heartbeat(remote.as_ref(), watchdog, || runner.run(&sender));
        drop(sender);
        Ok(stats)
    });
    let makespan = run_started.elapsed();
    teardown.run();
    let stats = stats.map_err(resource_error)?;

    let interrupted = watchdog.is_interrupted();
    let mut outcomes = pipeline.collector.outcomes();
    // With a shared queue, a test whose retry went back to the queue is
    // another machine's now: it is in the build's report, not this one's.
    let unfinished = pipeline.collector.unfinished();
    let ours =
        crate::queue::handed_over(remote.as_ref(), &tests, &mut outcomes, unfinished.clone());
    for &index in unfinished.iter().filter(|i| !ours.contains(i)) {
        pipeline.collector.forget(index);
    }
    // Every test ends with a final line and a final `test-finished`, also
    // those whose queued retry an interrupt cancelled.
    for index in ours {
        if let Some(result) = pipeline.collector.result_of(index) {
            pipeline.event(&Event::RetryCancelled { index, result });
        }
    }
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
    let samples = crate::schedule::timings::samples_of(&outcomes);
    let timings_written = match crate::schedule::timings::save_run(
        timings_path,
        settings.timings_out.as_deref(),
        &timings,
        partition,
        &samples,
    ) {
        Ok(path) => path,
        Err(e) => {
            pipeline.event(&Event::Warning(format!("timings not saved: {e}")));
            None
        }
    };
    if let Some(path) = &timings_written {
        files.push(("Timings", path.clone()));
    }
    // The bound counts what the workers were busy with (process start-ups
    // included), not only what the tests report about themselves.
    let longest = outcomes
        .iter()
        .flat_map(|o| o.attempts.iter().map(|a| a.duration))
        .max();
    let busy: Duration = pipeline
        .collector
        .workers
        .iter()
        .map(|(_, stats)| stats.busy)
        .sum();
    let lower_bound = longest.unwrap_or_default().max(busy / workers as u32);
    let mut no_tests_line = None;
    let exit_code = if interrupted {
        exit::INTERRUPTED
    } else if stats.resource_failure.is_some() || remote.as_ref().is_some_and(|q| q.is_lost()) {
        exit::CANNOT_RUN
    } else if counts.failed + counts.timed_out > 0
        || outcomes.iter().any(|o| {
            o.result == crate::model::TestResult::Flaky
                && tests
                    .iter()
                    .position(|t| t.id == o.test.id)
                    .and_then(|i| per_test.get(i))
                    .map_or(
                        prepared.flaky_result == crate::config::FlakyResult::Fail,
                        |s| s.flaky_fails(),
                    )
        })
    {
        exit::TESTS_FAILED
    } else if stats.workers_lost == workers && !order.is_empty() {
        exit::CANNOT_RUN
    } else if order.is_empty() {
        let (code, line) = no_tests(prepared.no_tests, partition, &tests, &selection);
        no_tests_line = Some(line);
        code
    } else {
        exit::OK
    };
    // The cause of an exit 3: a line before the summary, the JUnit report's `<error>`.
    let cannot_run = (exit_code == exit::CANNOT_RUN).then(|| {
        if let Some(failure) = &stats.resource_failure {
            ("resources".to_string(), failure.clone(), failure.clone())
        } else if remote.as_ref().is_some_and(|q| q.is_lost()) {
            let cause = "lost the queue: this machine's results are in its own report only";
            ("queue".to_string(), cause.to_string(), cause.to_string())
        } else {
            let line = "no workspace could be made: every worker was dropped".to_string();
            let mut cause = line.clone();
            for failure in &pipeline.collector.workspace_failures {
                cause.push('\n');
                cause.push_str(failure);
            }
            ("workspaces".to_string(), cause, line)
        }
    });
    pipeline.finish(crate::events::RunFinished {
        counts,
        wall,
        exit_code,
        interrupted,
        error: cannot_run
            .as_ref()
            .map(|(_, _, line)| format!("error: {line}")),
        cannot_run: cannot_run.map(|(stage, cause, _)| (stage, cause)),
        no_tests: no_tests_line,
        makespan: longest.map(|_| (makespan, lower_bound)),
        files,
        junit: None,
        timings: timings_written,
        not_annotated: Vec::new(),
    });
    Ok(exit_code)
}
