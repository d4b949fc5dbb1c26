//! The Cargo plugin: builds the test binaries once in the source, lists each
//! binary's tests, and runs every test as its own process
//! `BINARY --exact NAME --nocapture` inside a workspace, or, once timings
//! say they are short, several tests of one binary to a process (see
//! [`super::cargo_batch`]). The build itself, cargo's command line and the
//! packages' environment are [`super::cargo_build`]'s.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use rayon::prelude::*;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::cargo_batch::{self, Outcome};
use super::cargo_build::{PackageEnv, TestBinary, build};
pub(crate) use super::cargo_build::{cargo, metadata_command};
use super::{BatchKey, DiscoverContext, Finished, Plugin, Registration, Verdict};
use crate::config::IgnoredMode;
use crate::error::{Error, Kind, Result};
use crate::model::{AttemptStatus, EnvValue, Invocation, TestCase};

pub struct CargoPlugin;

/// `[plugin.cargo]` in `paratest.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Settings {
    /// Short tests of one binary share a process (`false`: one process per test).
    #[serde(default = "yes")]
    batch: bool,
    /// Globs on test names (or ids): these tests always run alone.
    #[serde(default)]
    alone: Vec<String>,
}

fn yes() -> bool {
    true
}

fn settings(table: Option<&toml::Table>) -> Result<Settings> {
    let table = table.cloned().unwrap_or_default();
    Settings::deserialize(toml::Value::Table(table))
        .map_err(|e| Error::usage(format!("invalid [plugin.cargo] in paratest.toml: {e}")))
}

/// What discovery learnt for batching: each binary's measured start-up (its
/// `--list` run), and the tests that run alone. Empty: nothing batches.
#[derive(Default)]
struct Batching {
    startup: HashMap<PathBuf, Duration>,
    alone: Option<globset::GlobSet>,
    driver: Option<PathBuf>,
}

static BATCHING: Mutex<Option<Batching>> = Mutex::new(None);

/// A batch is at least this many start-ups long (start-up is then at most
/// 5% of it), and a test longer than [`ALONE_ABOVE`] start-ups runs alone.
const MIN_BATCH: u32 = 20;
const ALONE_ABOVE: u32 = 50;

inventory::submit!(Registration {
    plugin: &CargoPlugin,
    detection_order: super::detection_order::CARGO,
});

impl Plugin for CargoPlugin {
    fn name(&self) -> &'static str {
        "cargo"
    }

    fn description(&self) -> &'static str {
        "Rust tests: builds with `cargo test --no-run`, runs libtest tests alone or short ones batched per binary"
    }

    fn detects(&self, source: &Path) -> bool {
        source.join("Cargo.toml").is_file()
    }

    fn discover(&self, ctx: &DiscoverContext<'_>) -> Result<Vec<TestCase>> {
        let settings = settings(ctx.settings)?;
        let alone = globs(&settings.alone)?;
        let binaries = build(ctx)?;
        let listed: Vec<Result<(Vec<TestCase>, Duration)>> = binaries
            .par_iter()
            .map(|(binary, env)| list_tests(binary, env, ctx))
            .collect();
        let mut tests = Vec::new();
        let mut startup = HashMap::new();
        for ((binary, _), result) in binaries.iter().zip(listed) {
            let (listed, took) = result?;
            startup.insert(binary.executable.clone(), took);
            tests.extend(listed);
        }
        *BATCHING.lock().unwrap() = settings.batch.then(|| Batching {
            startup,
            alone,
            driver: std::env::current_exe().ok(),
        });
        Ok(tests)
    }

    fn batches(&self) -> bool {
        true
    }

    /// Tests of one binary, with the same working directory, environment
    /// and arguments, may share a process; not with `batch = false`, nor
    /// the `alone` ones, nor when the arguments after `--` set the threads.
    fn batch_key(&self, test: &TestCase) -> Option<BatchKey> {
        let Invocation::Argv { program, args } = &test.invocation else {
            return None;
        };
        let batching = BATCHING.lock().unwrap();
        let batching = batching.as_ref()?;
        let startup = *batching.startup.get(program)?;
        batching.driver.as_ref()?;
        if batching
            .alone
            .as_ref()
            .is_some_and(|set| set.is_match(&test.name) || set.is_match(&test.id))
        {
            return None;
        }
        let threads = |a: &OsString| {
            a == "--test-threads" || a.to_string_lossy().starts_with("--test-threads=")
        };
        if args.len() < 2
            || args[0] != "--exact"
            || args[1] != *test.name
            || args.iter().any(threads)
        {
            return None;
        }
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (program, &args[2..], &test.cwd).hash(&mut hasher);
        for (name, value) in &test.env {
            name.hash(&mut hasher);
            format!("{value:?}").hash(&mut hasher);
        }
        let startup = startup.max(Duration::from_micros(200));
        Some(BatchKey {
            key: format!("{:016x}", hasher.finish()),
            min_batch: startup * MIN_BATCH,
            alone_above: startup * ALONE_ABOVE,
            startup,
        })
    }

    fn invocation(&self, tests: &[&TestCase], report_path: &Path) -> Invocation {
        let driver = BATCHING
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|b| b.driver.clone());
        match (&tests[0].invocation, driver) {
            (Invocation::Argv { program, args }, Some(driver)) if tests.len() > 1 => {
                cargo_batch::invocation(&driver, program, args, tests, report_path)
            }
            (invocation, _) => invocation.clone(),
        }
    }

    fn unfinished(&self, tests: &[&TestCase], finished: &Finished<'_>) -> Vec<usize> {
        let reported = cargo_batch::read_report(finished.report_path);
        (0..tests.len())
            .filter(|&i| !reported.contains_key(&tests[i].name))
            .collect()
    }

    fn splits_batch_output(&self) -> bool {
        true
    }

    /// Passed only when libtest says it ran this one test and it passed: a
    /// process that ran no test (or others) is an error, never a pass.
    fn judge(&self, tests: &[&TestCase], finished: &Finished<'_>) -> Vec<Verdict> {
        if tests.len() > 1 {
            return judge_batch(tests, finished);
        }
        let stdout = crate::libtest::read_log(finished.stdout_path);
        let stderr = crate::libtest::read_log(finished.stderr_path);
        tests
            .iter()
            .map(|test| {
                let (status, message) =
                    crate::libtest::judge(&test.name, finished.status, &stdout, &stderr);
                Verdict::new(status, (!message.is_empty()).then_some(message))
            })
            .collect()
    }
}

/// The verdicts of a batch from the driver's report: libtest's result for
/// each test it reported, the failure's panic from the test's own output.
/// A test it did not report fails here (the runner runs it again alone).
fn judge_batch(tests: &[&TestCase], finished: &Finished<'_>) -> Vec<Verdict> {
    let reported = cargo_batch::read_report(finished.report_path);
    let output = finished.report_path.parent().unwrap_or(Path::new("."));
    let (_, exit) = super::judge_by_exit_status(finished.status);
    tests
        .iter()
        .map(|test| {
            let Some(report) = reported.get(&test.name) else {
                let reason = exit
                    .as_ref()
                    .map_or_else(String::new, |r| format!(" ({r})"));
                return Verdict::new(
                    AttemptStatus::Failed,
                    Some(format!(
                        "its batch process ended before libtest reported a result{reason}"
                    )),
                );
            };
            let seconds = Duration::from_secs_f64(report.seconds.max(0.0));
            let mut verdict = match report.result {
                Outcome::Passed => Verdict::new(AttemptStatus::Passed, None),
                Outcome::Ignored => Verdict::new(AttemptStatus::Skipped, Some("ignored".into())),
                Outcome::TimedOut => Verdict::new(
                    AttemptStatus::TimedOut,
                    Some(format!(
                        "timed out after {}",
                        humantime::format_duration(Duration::from_millis(
                            seconds.as_millis() as u64
                        ))
                    )),
                ),
                Outcome::Failed => {
                    let (stdout, stderr) = crate::exec::logs::log_paths(output, &test.id, 1);
                    let (stdout, stderr) = (
                        crate::libtest::read_log(&stdout),
                        crate::libtest::read_log(&stderr),
                    );
                    let batch = crate::libtest::read_log(finished.stdout_path);
                    let message = crate::libtest::test_panic(&test.name, &[&stderr, &stdout])
                        .or_else(|| {
                            // Output split at the wrong moment: the batch's
                            // log still has the panic, on the test's thread.
                            crate::libtest::panics(&batch)
                                .into_iter()
                                .find(|p| p.thread == test.name)
                        })
                        .map(|p| p.message)
                        .or_else(|| {
                            [&stderr, &stdout]
                                .iter()
                                .flat_map(|text| text.lines())
                                .find(|line| line.starts_with("Error: "))
                                .map(str::to_string)
                        })
                        .unwrap_or_else(|| "libtest reported FAILED".to_string());
                    Verdict::new(AttemptStatus::Failed, Some(message))
                }
            };
            verdict.duration = Some(seconds);
            verdict
        })
        .collect()
}

fn globs(patterns: &[String]) -> Result<Option<globset::GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = globset::GlobSetBuilder::new();
    for pattern in patterns {
        let glob = globset::Glob::new(pattern).map_err(|e| {
            Error::usage(format!(
                "invalid [plugin.cargo] alone pattern `{pattern}`: {e}"
            ))
        })?;
        set.add(glob);
    }
    set.build()
        .map(Some)
        .map_err(|e| Error::usage(format!("invalid [plugin.cargo] alone: {e}")))
}

/// Lists one binary's tests with `--list --format terse`, ignored ones marked.
/// Also returns the binary's start-up cost: the quicker of its two `--list` runs.
fn list_tests(
    binary: &TestBinary,
    package: &PackageEnv,
    ctx: &DiscoverContext<'_>,
) -> Result<(Vec<TestCase>, Duration)> {
    let clock = Instant::now();
    let all = run_list(binary, package, ctx, false)?;
    let first = clock.elapsed();
    let clock = Instant::now();
    let ignored: std::collections::HashSet<String> =
        run_list(binary, package, ctx, true)?.into_iter().collect();
    let startup = first.min(clock.elapsed());
    let env = test_env(binary, package);
    let tests = all
        .into_iter()
        .map(|name| {
            let is_ignored = ignored.contains(&name);
            let args = libtest_args(&name, is_ignored, ctx);
            TestCase {
                id: format!("{} {name}", binary.id),
                group: binary.id.clone(),
                name,
                invocation: Invocation::Argv {
                    program: binary.executable.clone(),
                    args,
                },
                cwd: binary.package_dir.clone(),
                env: env.clone(),
                ignored: is_ignored,
            }
        })
        .collect();
    Ok((tests, startup))
}

/// The arguments that run the one libtest test `name` (shared with the
/// tests of an archive, whose arguments are made at run time).
pub(crate) fn libtest_args(name: &str, ignored: bool, ctx: &DiscoverContext<'_>) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["--exact".into(), name.into(), "--nocapture".into()];
    if ignored && ctx.ignored != IgnoredMode::Skip {
        args.push("--ignored".into());
    }
    args.extend(ctx.test_args.iter().map(OsString::from));
    args
}

/// The environment `cargo test` gives a test at run time, with paths
/// pointing into the workspace, plus `PWD` = the working directory.
fn test_env(binary: &TestBinary, package: &PackageEnv) -> Vec<(String, EnvValue)> {
    let mut env = vec![
        (
            "CARGO_MANIFEST_DIR".to_string(),
            EnvValue::InWorkspace(binary.package_dir.clone()),
        ),
        (
            "CARGO_MANIFEST_PATH".to_string(),
            EnvValue::InWorkspace(binary.package_dir.join("Cargo.toml")),
        ),
        (
            "PWD".to_string(),
            EnvValue::InWorkspace(binary.package_dir.clone()),
        ),
        (
            "CARGO_CRATE_NAME".to_string(),
            EnvValue::Literal(binary.crate_name.clone().into()),
        ),
    ];
    if package.vars.is_empty() {
        // No metadata for this package: name and version from its id.
        for (name, value) in [
            ("CARGO_PKG_NAME", &binary.package_name),
            ("CARGO_PKG_VERSION", &binary.package_version),
        ] {
            env.push((name.to_string(), EnvValue::Literal(value.into())));
        }
    }
    env.extend(
        package
            .vars
            .iter()
            .map(|(name, value)| (name.clone(), EnvValue::Literal(value.into()))),
    );
    if binary.integration
        && let Some(dir) = &package.target_tmpdir
    {
        env.push((
            "CARGO_TARGET_TMPDIR".to_string(),
            EnvValue::Literal(dir.clone().into()),
        ));
    }
    if let Some(dir) = &package.out_dir {
        env.push(("OUT_DIR".to_string(), EnvValue::Literal(dir.clone().into())));
    }
    if let Some(paths) = library_path(binary, package) {
        env.push(("LD_LIBRARY_PATH".to_string(), EnvValue::Literal(paths)));
    }
    env
}

/// Tests linked against dylibs (a `-sys` crate's, or `-C prefer-dynamic`)
/// find them where cargo would: the deps directory, its parent, the build
/// scripts' link-search directories, then the inherited `LD_LIBRARY_PATH`.
fn library_path(binary: &TestBinary, package: &PackageEnv) -> Option<OsString> {
    let deps = binary.executable.parent()?;
    let mut paths = vec![deps.to_path_buf()];
    paths.extend(deps.parent().map(Path::to_path_buf));
    paths.extend(package.library_dirs.iter().cloned());
    paths.extend(
        std::env::var_os("LD_LIBRARY_PATH")
            .iter()
            .flat_map(std::env::split_paths),
    );
    std::env::join_paths(paths).ok()
}

fn run_list(
    binary: &TestBinary,
    package: &PackageEnv,
    ctx: &DiscoverContext<'_>,
    ignored: bool,
) -> Result<Vec<String>> {
    let (source, watchdog) = (ctx.source, ctx.watchdog);
    let mut command = Command::new(&binary.executable);
    command.args(["--list", "--format", "terse"]);
    if ignored {
        command.arg("--ignored");
    }
    let cwd = source.join(&binary.package_dir);
    command.current_dir(&cwd).env("CARGO_MANIFEST_DIR", &cwd);
    if let Some(paths) = library_path(binary, package) {
        command.env("LD_LIBRARY_PATH", paths);
    }
    let output = watchdog.capture(command, false).map_err(|e| {
        Error::with_cause(
            Kind::CannotRun,
            format!("cannot list the tests of {}", binary.executable.display()),
            e,
        )
    })?;
    if !output.status.success() {
        return Err(Error::cannot_run(format!(
            "listing the tests of `{}` failed ({}):\n{}",
            binary.id,
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        )));
    }
    Ok(crate::libtest::read_list(&String::from_utf8_lossy(
        &output.stdout,
    )))
}
