//! The command line: every clap type lives here (Cargo's own options in
//! [`cargo`]) and nowhere else. Parsing ends in a [`Profile`] layer plus
//! the few options that are not settings.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod cargo;
pub use cargo::CargoArgs;

use crate::config::{
    Choice, DEFAULT_DISCOVERY_TIMEOUT, DEFAULT_SLOW_TIMEOUT, FlakyResult, HumanDuration, Isolation,
    MessageFormat, NoTests, Profile, Request, WorkspaceReset,
};

/// The settings' choices, as clap values: their spellings and help come
/// from [`Choice::ALL`], so that `paratest.toml`, `PARATEST_*` and the flags
/// accept the same words.
macro_rules! value_enum {
    ($($name:ty),*) => {$(
        impl clap::ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                <$name as Choice>::VALUES
            }

            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                let (_, name, help) = <$name as Choice>::ALL.iter().find(|(v, _, _)| v == self)?;
                let help = help.trim().trim_end_matches('.');
                let value = clap::builder::PossibleValue::new(*name);
                Some(if help.is_empty() { value } else { value.help(help) })
            }
        }
    )*};
}

value_enum!(
    Isolation,
    FlakyResult,
    WorkspaceReset,
    MessageFormat,
    NoTests
);

/// Run a project's tests in parallel, each worker in its own isolated workspace.
#[derive(Debug, Parser)]
#[command(
    name = "cargo-paratest",
    bin_name = "cargo paratest",
    version = VERSION,
    about,
    after_help = TOP_HELP,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Color the output: `auto` (a terminal, unless NO_COLOR or CARGO_TERM_COLOR say otherwise), `always`, `never`.
    #[arg(long, value_name = "WHEN", global = true)]
    pub color: Option<ColorChoice>,
}

/// The version, with the git commit it was built from when that was known.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), env!("PARATEST_GIT_SUFFIX"));

/// The top-level help's footer: `run` is the default and what it is usually given.
const TOP_HELP: &str = "\
Without a subcommand, `run` is meant: `cargo paratest [OPTIONS] [FILTER]... [-- TEST-ARGS...]`.

Common options of `run` (see `cargo paratest run --help` for all):
  -j, --workers <N>          Number of workers, each in its own workspace
  -E, --filterset <EXPR>     Only the tests it selects (`test(/db_/) & package(app)`)
      --skip <PATTERN>       Leave out tests whose name contains PATTERN
      --retries <N>          Extra attempts for a failing test
      --timeout <DURATION>   Per-test limit (`90s`, `5m`)
      --partition <K/N>      Only shard K of N
      --no-capture           Stream each test's output live
  -p, --package <SPEC>       Package to test
      --locked               Require Cargo.lock to be up to date";

/// When to color the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the tests (the default subcommand).
    Run(Box<RunArgs>),
    /// List the tests with their expected durations.
    List(Box<ListArgs>),
    /// List the registered plugins, one line each.
    Plugins,
    /// Show, import, merge or clear the remembered test durations.
    Timings(TimingsArgs),
    /// Merge JUnit reports (shards of a run, or other tools') into one.
    Merge(MergeArgs),
    /// A build spread over machines by a Redis queue: its report or progress.
    Queue(QueueArgs),
    /// Build the tests once and write them, with their source, to one file that
    /// `run --archive-file` runs on another machine without cargo.
    Archive(Box<ArchiveArgs>),
    /// Print a shell completion script (`cargo paratest completions bash > ...`).
    Completions {
        /// The shell.
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct QueueArgs {
    #[command(subcommand)]
    pub action: QueueAction,

    /// The build's queue: redis://HOST:PORT[/DB].
    #[arg(long, value_name = "URL", global = true)]
    pub queue: Option<String>,

    /// The build [default: from the CI's variables].
    #[arg(long, value_name = "ID", global = true)]
    pub build_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum QueueAction {
    /// Wait until every test of the build has a final result, then write its
    /// report and timings; exit with the build's code.
    Report {
        /// The build's JUnit report [default: .paratest/queue-junit.xml].
        #[arg(long, value_name = "OUT")]
        junit: Option<PathBuf>,
        /// The build's timings file.
        #[arg(long, value_name = "OUT")]
        timings: Option<PathBuf>,
        /// Give up waiting after this long (exit 3).
        #[arg(long, value_name = "DURATION")]
        timeout: Option<HumanDuration>,
    },
    /// Print the build's progress.
    Status,
}

#[derive(Debug, Args)]
pub struct ArchiveArgs {
    #[command(flatten)]
    pub select: SelectArgs,

    /// Leave the source out of the archive: `run --archive-file` then needs `--source DIR`, a checkout.
    #[arg(long)]
    pub no_source: bool,
}

impl ArchiveArgs {
    pub fn profile(&self) -> Profile {
        self.select.profile()
    }
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The merged report.
    #[arg(short, long, value_name = "OUT.xml", required = true)]
    pub output: PathBuf,
    /// JUnit XML reports to merge.
    #[arg(required = true, value_name = "IN.xml")]
    pub inputs: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TimingsArgs {
    #[command(subcommand)]
    pub action: TimingsAction,

    /// Timings file [default: .paratest/timings.json in the source].
    #[arg(long, value_name = "PATH", global = true)]
    pub timings: Option<PathBuf>,

    /// The source whose timings file is meant [default: the Cargo workspace root, else the current directory].
    #[arg(long, value_name = "DIR", global = true)]
    pub source: Option<PathBuf>,

    /// Replace or clear a file that is not a timings file (refused otherwise).
    #[arg(long, global = true)]
    pub overwrite_timings: bool,
}

#[derive(Debug, Subcommand)]
pub enum TimingsAction {
    /// Tests slowest first, with their expected duration and number of samples.
    Show {
        /// `json`: one object per line.
        #[arg(long, value_name = "FORMAT")]
        message_format: Option<MessageFormat>,
    },
    /// Build timings from JUnit reports of any tool (ours, nextest, pytest, Surefire).
    Import {
        /// JUnit XML reports.
        #[arg(required = true, value_name = "REPORT.xml")]
        reports: Vec<PathBuf>,
        /// Write here instead of adding to the timings file.
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
    },
    /// Join the timings files written by several shards.
    Merge {
        /// Timings files.
        #[arg(required = true, value_name = "FILE.json")]
        inputs: Vec<PathBuf>,
        /// The merged file.
        #[arg(short, long, value_name = "OUT", required = true)]
        output: PathBuf,
    },
    /// Delete the timings file.
    Clear,
}

/// The names `run` is inserted before when no subcommand is given.
pub const SUBCOMMANDS: &[&str] = &[
    "run",
    "list",
    "plugins",
    "timings",
    "merge",
    "queue",
    "archive",
    "completions",
    "help",
];

impl Cli {
    /// Writes the completion script of `shell` to `out`.
    pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
        let mut command = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut command, "cargo-paratest", out);
    }

    /// Parses `cargo paratest ...` and `cargo-paratest ...` alike; `run` is the default.
    pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Cli, clap::Error> {
        let mut args: Vec<OsString> = args.into_iter().collect();
        // Cargo runs `cargo-paratest paratest ARGS...` for `cargo paratest ARGS...`.
        if args.get(1).is_some_and(|a| a == "paratest") {
            args.remove(1);
        }
        let needs_run = match args.get(1).and_then(|a| a.to_str()) {
            None => true,
            Some(first) => {
                !SUBCOMMANDS.contains(&first)
                    && !["-h", "--help", "-V", "--version"].contains(&first)
            }
        };
        if needs_run {
            args.insert(1.min(args.len()), "run".into());
        }
        Cli::try_parse_from(args)
    }
}

/// Options shared by `run` and `list`: what to test and where.
#[derive(Debug, Args)]
pub struct SelectArgs {
    /// Run only tests whose name contains one of these substrings.
    #[arg(value_name = "FILTER", help_heading = "Selection")]
    pub filters: Vec<String>,

    /// Filters match test names exactly.
    #[arg(long, help_heading = "Selection")]
    pub exact: bool,

    /// Run only ignored tests.
    #[arg(long, conflicts_with = "include_ignored", help_heading = "Selection")]
    pub ignored: bool,

    /// Run ignored tests too.
    #[arg(long, help_heading = "Selection")]
    pub include_ignored: bool,

    /// Only tests this filterset selects (nextest's grammar: `test(/db_/) & package(app)`); repeatable, the union.
    #[arg(
        short = 'E',
        long = "filterset",
        visible_alias = "filter-expr",
        value_name = "EXPR",
        help_heading = "Selection"
    )]
    pub filterset: Vec<String>,

    /// Leave out tests whose name contains PATTERN (equals it, with --exact); repeatable.
    #[arg(long, value_name = "PATTERN", help_heading = "Selection")]
    pub skip: Vec<String>,

    /// Plugin that discovers and runs tests [default: cargo where a Cargo.toml is found].
    #[arg(long, value_name = "NAME", help_heading = "Project")]
    pub plugin: Option<String>,

    /// Files that are tests, for the command plugin (glob, repeatable; overrides its `pattern`).
    #[arg(long, value_name = "GLOB", help_heading = "Selection")]
    pub test_pattern: Vec<String>,

    /// The source: the project directory [default: the Cargo workspace root, else the current directory].
    #[arg(long, value_name = "DIR", help_heading = "Project")]
    pub source: Option<PathBuf>,

    /// Profile from paratest.toml [default: `default`, or `ci` where CI is set and it is defined].
    #[arg(long, value_name = "NAME", help_heading = "Project")]
    pub profile: Option<String>,

    /// Timings file [default: .paratest/timings.json in the source].
    #[arg(long, value_name = "PATH", help_heading = "Reports")]
    pub timings: Option<PathBuf>,

    /// Only shard K of N (1-based), balanced by expected time; `auto` reads the CI's variables.
    #[arg(long, value_name = "K/N|auto", help_heading = "Selection")]
    pub partition: Option<String>,

    /// Console format: `json` prints one JSON object per line on stdout;
    /// `teamcity`, TeamCity service messages.
    #[arg(long, value_name = "FORMAT", help_heading = "Reports")]
    pub message_format: Option<MessageFormat>,

    /// `run`/`list`: the tests of this archive (from `cargo paratest archive`), no build;
    /// `archive`: the file to write.
    #[arg(long, value_name = "FILE", help_heading = "Project")]
    pub archive_file: Option<PathBuf>,

    // Time limit of a plugin's discovery (pytest collection, an external plugin's `discover`).
    #[arg(long, value_name = "DURATION", help_heading = "Project", help = format!(
        "Time limit of a plugin's discovery (pytest collection, an external plugin's `discover`) [default: {}]",
        crate::words::limit(DEFAULT_DISCOVERY_TIMEOUT)
    ))]
    pub discovery_timeout: Option<HumanDuration>,

    #[command(flatten)]
    pub cargo: CargoArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub select: SelectArgs,

    /// Number of workers = number of workspaces [default: available parallelism].
    #[arg(
        short = 'j',
        long,
        visible_short_alias = 'w',
        value_name = "N",
        allow_negative_numbers = true,
        help_heading = "Workers and isolation"
    )]
    pub workers: Option<usize>,

    // How each workspace is made.
    #[arg(long, value_name = "MODE", help_heading = "Workers and isolation", help = format!(
        "How each workspace is made [default: {}]", Isolation::default().name()
    ))]
    pub isolation: Option<Isolation>,

    /// Where workspaces are created [default: a fresh temporary directory].
    #[arg(long, value_name = "DIR", help_heading = "Workers and isolation")]
    pub workspace_root: Option<PathBuf>,

    /// Do not delete the workspaces at the end.
    #[arg(long, help_heading = "Workers and isolation")]
    pub keep_workspaces: bool,

    /// Shell command run once before discovery (cwd = the source).
    #[arg(long, value_name = "CMD", help_heading = "Hooks")]
    pub setup: Option<String>,
    /// Run once per workspace after it is created (cwd = the workspace).
    #[arg(long, value_name = "CMD", help_heading = "Hooks")]
    pub setup_workspace: Option<String>,
    /// Run before each test (cwd = the workspace).
    #[arg(long, value_name = "CMD", help_heading = "Hooks")]
    pub setup_test: Option<String>,
    /// Run after each test, pass or fail.
    #[arg(long, value_name = "CMD", help_heading = "Hooks")]
    pub teardown_test: Option<String>,
    /// Run once per workspace at the end, also after failures and interrupts.
    #[arg(long, value_name = "CMD", help_heading = "Hooks")]
    pub teardown_workspace: Option<String>,
    /// Run once at the end, also after failures and interrupts.
    #[arg(long, value_name = "CMD", help_heading = "Hooks")]
    pub teardown: Option<String>,

    /// Extra attempts for a failing test [default: 0].
    #[arg(
        long,
        visible_alias = "retry",
        value_name = "N",
        allow_negative_numbers = true,
        help_heading = "Retries and timeouts"
    )]
    pub retries: Option<u32>,

    /// Whether a flaky test fails the run [default: pass].
    #[arg(long, value_name = "RESULT", help_heading = "Retries and timeouts")]
    pub flaky_result: Option<FlakyResult>,

    /// Rebuild a worker's workspace after a failed attempt [default: never].
    #[arg(long, value_name = "WHEN", help_heading = "Retries and timeouts")]
    pub workspace_reset: Option<WorkspaceReset>,

    /// Per-test limit (`90s`, `5m`); the whole process tree is killed.
    #[arg(long, value_name = "DURATION", help_heading = "Retries and timeouts")]
    pub timeout: Option<HumanDuration>,

    // Print a notice for tests running longer than this.
    #[arg(long, value_name = "DURATION", help_heading = "Retries and timeouts", help = format!(
        "Print a notice for tests running longer than this [default: {}s]",
        DEFAULT_SLOW_TIMEOUT.as_secs()
    ))]
    pub slow_timeout: Option<HumanDuration>,

    /// Stop scheduling new tests after the first definite failure.
    #[arg(
        long,
        overrides_with = "no_fail_fast",
        help_heading = "Retries and timeouts"
    )]
    pub fail_fast: bool,

    /// Run every test whatever fails (the default; overrides an earlier --fail-fast).
    #[arg(
        long,
        overrides_with = "fail_fast",
        help_heading = "Retries and timeouts"
    )]
    pub no_fail_fast: bool,

    /// Stop scheduling new tests after N definite failures (1 = --fail-fast).
    #[arg(long, value_name = "N", help_heading = "Retries and timeouts")]
    pub max_fail: Option<std::num::NonZeroUsize>,

    /// Stream each test's output live, every line prefixed with the test's id.
    #[arg(long, visible_alias = "nocapture", help_heading = "Reports")]
    pub no_capture: bool,

    /// More status lines: also when each test starts (repeatable).
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet", help_heading = "Reports")]
    pub verbose: u8,

    /// Fewer status lines: only failures, retries and flaky tests, and a short summary.
    #[arg(short, long, help_heading = "Reports")]
    pub quiet: bool,

    /// Where this run writes its updated timings: what it read plus its new samples, always
    /// written [default: the timings file itself; a shard writes STEM.shard-K-of-N.json beside it].
    #[arg(long, value_name = "PATH", help_heading = "Reports")]
    pub timings_out: Option<PathBuf>,

    /// JUnit XML report [default: .paratest/junit.xml in the source].
    #[arg(long, value_name = "PATH", help_heading = "Reports")]
    pub junit: Option<PathBuf>,

    /// Directory for per-test logs [default: .paratest/runs/RUN-ID/ in the source, linked from .paratest/logs].
    #[arg(long, value_name = "DIR", help_heading = "Reports")]
    pub output: Option<PathBuf>,

    /// What an empty selection does [default: fail, exit 4; a shard of a non-empty suite warns].
    #[arg(long, value_name = "ACTION", help_heading = "Selection")]
    pub no_tests: Option<NoTests>,

    /// Replace a `--timings` file that is not a timings file (refused otherwise).
    #[arg(long, help_heading = "Reports")]
    pub overwrite_timings: bool,

    /// Take tests from the queue shared by every machine of one build.
    #[arg(long, value_name = "redis://HOST:PORT[/DB]", help_heading = "Queue")]
    pub queue: Option<String>,
    /// The build the queue belongs to [default: from the CI's variables].
    #[arg(long, value_name = "ID", help_heading = "Queue", requires = "queue")]
    pub build_id: Option<String>,
    /// This machine's name in the queue [default: host name and pid].
    #[arg(long, value_name = "ID", help_heading = "Queue", requires = "queue")]
    pub worker_id: Option<String>,

    /// Arguments for the test framework; for Cargo, `--skip`, `--ignored`,
    /// `--include-ignored`, `--exact` and free filters select tests as in
    /// `cargo test`, the rest goes to every test process.
    #[arg(last = true, value_name = "TEST-ARGS")]
    pub test_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub select: SelectArgs,

    /// Show the plan: which worker each test is expected to run on.
    #[arg(long)]
    pub plan: bool,

    /// Number of workers the plan assumes [default: available parallelism].
    #[arg(
        short = 'j',
        long,
        visible_short_alias = 'w',
        value_name = "N",
        allow_negative_numbers = true,
        help_heading = "Workers and isolation"
    )]
    pub workers: Option<usize>,

    /// Arguments for the test framework, as after `run --`: they select tests the same way.
    #[arg(last = true, value_name = "TEST-ARGS")]
    pub test_args: Vec<String>,
}

impl SelectArgs {
    /// Selection options that only name a source (for commands without tests).
    pub fn for_source(source: Option<PathBuf>) -> SelectArgs {
        let mut args = SelectArgs::parse_from_defaults();
        args.source = source;
        args
    }

    fn parse_from_defaults() -> SelectArgs {
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            select: SelectArgs,
        }
        Wrapper::parse_from(["select"]).select
    }

    /// What `config` needs to resolve this command's settings, with `cli` its top layer.
    pub fn request(&self, cli: Profile, unpacked_source: Option<PathBuf>) -> Request {
        Request {
            cli,
            profile: self.profile.clone(),
            source: self.source.clone(),
            manifest_path: self.cargo.manifest_path.clone(),
            unpacked_source,
        }
    }

    /// The settings this command line gives, as the top configuration layer.
    fn profile(&self) -> Profile {
        Profile {
            plugin: self.plugin.clone(),
            timings: self.timings.clone(),
            partition: self.partition.clone(),
            message_format: self.message_format,
            discovery_timeout: self.discovery_timeout,
            ..Profile::default()
        }
    }
}

impl RunArgs {
    /// The settings this command line gives; flags absent stay `None` so lower layers show through.
    pub fn profile(&self) -> Profile {
        Profile {
            workers: self.workers,
            isolation: self.isolation,
            workspace_root: self.workspace_root.clone(),
            keep_workspaces: self.keep_workspaces.then_some(true),
            setup: self.setup.clone(),
            setup_workspace: self.setup_workspace.clone(),
            setup_test: self.setup_test.clone(),
            teardown_test: self.teardown_test.clone(),
            teardown_workspace: self.teardown_workspace.clone(),
            teardown: self.teardown.clone(),
            retries: self.retries,
            timeout: self.timeout,
            slow_timeout: self.slow_timeout,
            junit: self.junit.clone(),
            timings_out: self.timings_out.clone(),
            output: self.output.clone(),
            fail_fast: if self.no_fail_fast {
                Some(false)
            } else {
                self.fail_fast.then_some(true)
            },
            max_fail: self.max_fail.map(std::num::NonZeroUsize::get),
            flaky_result: self.flaky_result,
            workspace_reset: self.workspace_reset,
            no_tests: self.no_tests,
            ..self.select.profile()
        }
    }
}

impl ListArgs {
    pub fn profile(&self) -> Profile {
        Profile {
            workers: self.workers,
            ..self.select.profile()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Cli {
        Cli::parse_args(line.split_whitespace().map(OsString::from)).unwrap()
    }

    #[test]
    fn run_is_the_default_subcommand_under_both_names() {
        for line in [
            "cargo-paratest paratest -j 4 foo",
            "cargo-paratest -j 4 foo",
            "cargo-paratest run -w 4 foo",
        ] {
            let Command::Run(run) = parse(line).command else {
                panic!("{line}: not run")
            };
            assert_eq!(run.workers, Some(4), "{line}");
            assert_eq!(run.select.filters, ["foo"], "{line}");
        }
        assert!(matches!(
            parse("cargo-paratest paratest").command,
            Command::Run(_)
        ));
        assert!(matches!(
            parse("cargo-paratest paratest list").command,
            Command::List(_)
        ));
    }

    #[test]
    fn test_args_follow_the_double_dash() {
        let Command::Run(run) = parse("cargo-paratest foo -- --test-threads 1").command else {
            panic!()
        };
        assert_eq!(run.test_args, ["--test-threads", "1"]);
    }

    #[test]
    fn retry_alias_and_durations() {
        let Command::Run(run) = parse("cargo-paratest --retry 2 --timeout 90s").command else {
            panic!()
        };
        assert_eq!(run.retries, Some(2));
        assert_eq!(run.timeout.unwrap().0.as_secs(), 90);
        assert!(
            Cli::parse_args(["cargo-paratest", "--timeout", "soon"].map(OsString::from)).is_err()
        );
        assert!(
            Cli::parse_args(["cargo-paratest", "--isolation", "docker"].map(OsString::from))
                .is_err()
        );
    }
}
