//! The plugin seam: a plugin discovers tests and says how to run each; the
//! core does everything else (workspaces, scheduling, retries, reports).
//!
//! In-tree plugins register themselves with [`inventory::submit!`]; the set is
//! listed by `cargo paratest plugins` and checked by a test that loops over
//! [`registered`]. `inventory`'s order is undefined, so auto-detection goes
//! by each registration's explicit [`detection_order`].

pub mod capture;
pub mod cargo;
pub mod cargo_batch;
mod cargo_build;
pub mod command;
pub mod external;
pub mod pytest;
pub mod pytest_results;

use std::path::Path;
use std::process::ExitStatus;

use crate::config::{CargoOptions, IgnoredMode};
use crate::error::Result;
use std::time::Duration;

use crate::model::{AttemptStatus, CaseResult, Invocation, TestCase};

/// What a plugin gets to discover tests with.
pub struct DiscoverContext<'a> {
    /// The source: the project directory the user points at.
    pub source: &'a Path,
    /// Cargo's own options (`-p`, `--features`, ...), for plugins that build with Cargo.
    pub cargo: &'a CargoOptions,
    /// Whether ignored tests are skipped, run alone, or run too.
    pub ignored: IgnoredMode,
    /// `[plugin.NAME]` from `paratest.toml`, if any.
    pub settings: Option<&'a toml::Table>,
    /// Arguments after `--`, for the test processes.
    pub test_args: &'a [String],
    /// Whether to show the build tool's progress (human output on a terminal).
    pub verbose_build: bool,
    /// `--test-pattern` globs from the command line (the command plugin's `pattern`).
    pub patterns: &'a [String],
    /// Runs discovery's own processes ([`Watchdog::capture`]), so that
    /// Ctrl-C or SIGTERM stops a build or a plugin that hangs.
    pub watchdog: &'a crate::process::Watchdog,
    /// Absolute paths inside the source that workspaces leave out (the log
    /// directory, a target directory): discovery leaves them out too.
    pub excluded: &'a [std::path::PathBuf],
    /// How long a discovery process may run ([`capture::capture`]).
    pub discovery_timeout: Duration,
}

/// A finished test process, as a plugin sees it to judge it.
pub struct Finished<'a> {
    pub status: ExitStatus,
    /// Killed for running past its time limit: a plugin may still say what
    /// it reported before (its cases are kept; the attempt stays timed out).
    pub timed_out: bool,
    pub stdout_path: &'a Path,
    pub stderr_path: &'a Path,
    /// The report the plugin asked the process to write (see [`Plugin::invocation`]), if it did.
    pub report_path: &'a Path,
}

/// A plugin's judgement of one test of a finished process.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub status: AttemptStatus,
    pub message: Option<String>,
    /// This test's own share of the process's time, when the runner reports it.
    pub duration: Option<Duration>,
    pub cases: Vec<CaseResult>,
}

impl Verdict {
    pub fn new(status: AttemptStatus, message: Option<String>) -> Verdict {
        Verdict {
            status,
            message,
            duration: None,
            cases: Vec::new(),
        }
    }
}

/// A language or test framework.
///
/// Only [`Plugin::name`], [`Plugin::description`] and [`Plugin::discover`] are
/// required; the defaults fit any runner whose exit code 0 means "passed".
pub trait Plugin: Sync {
    /// The name users type after `--plugin`: lowercase ASCII, digits and `-`.
    fn name(&self) -> &'static str;

    /// One line for `cargo paratest plugins`.
    fn description(&self) -> &'static str;

    /// Whether this plugin is the natural default for `source` (Cargo: a
    /// `Cargo.toml` is there). Of the plugins that say yes, the first in
    /// [`detection_order`] wins.
    fn detects(&self, _source: &Path) -> bool {
        false
    }

    /// Finds the tests. Errors are usage (exit 2) or build failures (exit 3).
    fn discover(&self, ctx: &DiscoverContext<'_>) -> Result<Vec<TestCase>>;

    /// Whether one process may run several short tests (when its start-up
    /// costs more than they do, as pytest's does). The runner then hands
    /// [`Plugin::invocation`] a batch of first attempts; retries run alone.
    fn batches(&self) -> bool {
        false
    }

    /// Which tests may share a process, when [`Plugin::batches`]: `None`
    /// runs `test` alone; tests whose keys are equal may share one. By
    /// default every test may share with every other, and a batch is at
    /// least [`BatchKey::min_batch`] long (pytest's start-up costs ~0.5 s).
    fn batch_key(&self, _test: &TestCase) -> Option<BatchKey> {
        Some(BatchKey::default())
    }

    /// After [`Plugin::judge`] on a batch: the positions of the tests the
    /// process did not finish (it crashed or was stopped before them). The
    /// runner runs each of them again alone, so that the culprit of a
    /// crash is named and the others get their own verdicts.
    fn unfinished(&self, _tests: &[&TestCase], _finished: &Finished<'_>) -> Vec<usize> {
        Vec::new()
    }

    /// Whether a batch wrote each test's output to its own files (those of
    /// [`crate::exec::logs::log_paths`] for the test's id and attempt), which
    /// its attempts then point at; otherwise they share the batch's log.
    fn splits_batch_output(&self) -> bool {
        false
    }

    /// The process that runs `tests` (one test, or a batch when
    /// [`Plugin::batches`]). `report_path` is a fresh per-attempt path where
    /// the process may write a report for [`Plugin::judge`] to read.
    fn invocation(&self, tests: &[&TestCase], _report_path: &Path) -> Invocation {
        tests[0].invocation.clone()
    }

    /// Whether this plugin serves, and how: the command of one long-lived
    /// process per worker that reads test ids and writes one JSON result
    /// per test (the protocol: [`crate::exec::session`]). `tests` are the
    /// run's whole selection. `None` (the default): a process per test or batch.
    fn serve(&self, _tests: &[&TestCase]) -> Option<Invocation> {
        None
    }

    /// A served test's verdict, from the answer its server wrote and the
    /// other lines it wrote during the test (`progress`). By default the
    /// answer's own fields: `status`, `message`, `duration`.
    fn served(&self, _test: &TestCase, answer: &str, _progress: &[String]) -> Verdict {
        crate::exec::session::verdict_of(answer)
    }

    /// What a server reported of a test before it died or was killed at
    /// its time limit (`timed_out`): kept as the failed attempt's cases.
    fn served_cases(
        &self,
        _test: &TestCase,
        _progress: &[String],
        _ended: &pytest_results::Ended,
    ) -> Vec<CaseResult> {
        Vec::new()
    }

    /// One verdict per test of the finished process, in order. By default
    /// exit 0 passes them all.
    fn judge(&self, tests: &[&TestCase], finished: &Finished<'_>) -> Vec<Verdict> {
        let (status, message) = judge_by_exit_status(finished.status);
        vec![Verdict::new(status, message); tests.len()]
    }
}

/// Tests with equal keys may share a process (see [`Plugin::batch_key`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BatchKey {
    /// Same program, working directory, environment and arguments but the names.
    pub key: String,
    /// The smallest batch worth a process start-up.
    pub min_batch: Duration,
    /// A test expected to take longer runs alone.
    pub alone_above: Duration,
    /// The process start-up a test's expected time includes when it ran
    /// alone: in a batch it costs that much less.
    pub startup: Duration,
}

impl Default for BatchKey {
    fn default() -> BatchKey {
        BatchKey {
            key: String::new(),
            min_batch: Duration::from_secs(1),
            alone_above: Duration::MAX,
            startup: Duration::ZERO,
        }
    }
}

/// Exit 0 passes; anything else fails with the exit code or signal as the reason.
pub fn judge_by_exit_status(status: ExitStatus) -> (AttemptStatus, Option<String>) {
    use std::os::unix::process::ExitStatusExt;
    if status.success() {
        (AttemptStatus::Passed, None)
    } else if let Some(signal) = status.signal() {
        (
            AttemptStatus::Failed,
            Some(format!("killed by signal {signal}")),
        )
    } else {
        let code = status.code().unwrap_or(-1);
        (AttemptStatus::Failed, Some(format!("exit status {code}")))
    }
}

/// One entry of the in-tree registry.
pub struct Registration {
    pub plugin: &'static dyn Plugin,
    /// Where the plugin comes in auto-detection: lower is asked first.
    pub detection_order: u32,
}

inventory::collect!(Registration);

/// The auto-detection order of the in-tree plugins, in one place. Cargo comes
/// first: this is a Cargo subcommand, and a project with a `Cargo.toml` and a
/// pytest configuration (a PyO3 or maturin crate) is tested as Rust unless
/// `--plugin pytest` says otherwise. The command plugin detects nothing (it
/// needs a `pattern`); it comes last.
pub mod detection_order {
    pub const CARGO: u32 = 10;
    pub const PYTEST: u32 = 20;
    pub const COMMAND: u32 = 30;
}

/// Every in-tree plugin, in a stable order (by name).
pub fn registered() -> Vec<&'static dyn Plugin> {
    let mut plugins = in_detection_order();
    plugins.sort_by_key(|p| p.name());
    plugins
}

/// Every in-tree plugin, in [`detection_order`].
fn in_detection_order() -> Vec<&'static dyn Plugin> {
    let mut registrations: Vec<&Registration> =
        inventory::iter::<Registration>.into_iter().collect();
    registrations.sort_by_key(|r| (r.detection_order, r.plugin.name()));
    registrations.into_iter().map(|r| r.plugin).collect()
}

/// The plugin called `name`.
pub fn find(name: &str) -> Option<&'static dyn Plugin> {
    registered().into_iter().find(|p| p.name() == name)
}

/// The plugin of a run: an in-tree one, or an external executable.
pub enum Selected {
    Registered(&'static dyn Plugin),
    External(Box<dyn Plugin>),
}

impl std::ops::Deref for Selected {
    type Target = dyn Plugin;

    fn deref(&self) -> &(dyn Plugin + 'static) {
        match self {
            Selected::Registered(plugin) => *plugin,
            Selected::External(plugin) => plugin.as_ref(),
        }
    }
}

/// Plugin selection: the named in-tree plugin, else an external one of that
/// name (`paratest-plugin-NAME` on `PATH`, or `[plugin.NAME] command`); with
/// no name, the first in-tree plugin that detects the source.
pub fn select(
    name: Option<&str>,
    source: &Path,
    plugins: &std::collections::BTreeMap<String, toml::Table>,
) -> Result<Selected> {
    match name {
        Some(name) => {
            if let Some(plugin) = find(name) {
                return Ok(Selected::Registered(plugin));
            }
            if let Some(plugin) = external::ExternalPlugin::find(name, plugins.get(name))? {
                return Ok(Selected::External(Box::new(plugin)));
            }
            let known: Vec<_> = registered().iter().map(|p| p.name()).collect();
            Err(crate::error::Error::usage(format!(
                "unknown plugin `{name}`: no in-tree plugin of that name (known: {}), \
                 no `paratest-plugin-{name}` on PATH and no `command` in [plugin.{name}]",
                known.join(", ")
            )))
        }
        None => in_detection_order()
            .into_iter()
            .find(|p| p.detects(source))
            .map(Selected::Registered)
            .ok_or_else(|| {
                crate::error::Error::usage(format!(
                    "no plugin recognises {} (no Cargo.toml there); choose one with --plugin",
                    source.display()
                ))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_unique_and_valid() {
        let plugins = registered();
        assert!(!plugins.is_empty());
        let mut seen = std::collections::HashSet::new();
        for plugin in plugins {
            let name = plugin.name();
            assert!(seen.insert(name), "plugin `{name}` registered twice");
            assert!(!name.is_empty());
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "plugin name `{name}` must be lowercase ASCII, digits or `-`"
            );
            let description = plugin.description();
            assert!(
                !description.is_empty() && !description.contains('\n'),
                "`{name}`: one-line description"
            );
        }
    }

    #[test]
    fn detection_order_is_explicit_and_unique() {
        let mut orders: Vec<u32> = inventory::iter::<Registration>
            .into_iter()
            .map(|r| r.detection_order)
            .collect();
        orders.sort_unstable();
        let count = orders.len();
        orders.dedup();
        assert_eq!(orders.len(), count, "two plugins share a detection order");
        let names: Vec<&str> = in_detection_order().iter().map(|p| p.name()).collect();
        assert_eq!(names, ["cargo", "pytest", "command"]);
    }

    #[test]
    fn cargo_wins_over_pytest_where_both_are_configured() {
        let dir = tempfile::tempdir().unwrap();
        let none = std::collections::BTreeMap::new();
        std::fs::write(dir.path().join("pytest.ini"), "[pytest]\n").unwrap();
        assert_eq!(select(None, dir.path(), &none).unwrap().name(), "pytest");
        std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
        assert_eq!(select(None, dir.path(), &none).unwrap().name(), "cargo");
        assert_eq!(
            select(Some("pytest"), dir.path(), &none).unwrap().name(),
            "pytest",
            "--plugin still chooses"
        );
    }

    #[test]
    fn cargo_is_registered_and_detects_cargo_projects() {
        let dir = tempfile::tempdir().unwrap();
        let none = std::collections::BTreeMap::new();
        assert!(select(None, dir.path(), &none).is_err());
        std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
        assert_eq!(select(None, dir.path(), &none).unwrap().name(), "cargo");
        let Err(err) = select(Some("nope-not-on-path"), dir.path(), &none) else {
            panic!("an unknown plugin was found")
        };
        assert!(err.to_string().contains("cargo"), "{err}");
        assert_eq!(err.exit_code(), 2);
    }
}
