//! The Cargo plugin: builds the test binaries once in the source, lists each
//! binary's tests, and runs every test as its own process
//! `BINARY --exact NAME --nocapture` inside a workspace, or, once timings
//! say they are short, several tests of one binary to a process (see
//! [`super::cargo_batch`]).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use cargo_metadata::{Artifact, Message, TargetKind};
use rayon::prelude::*;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::cargo_batch::{self, Outcome};
use super::{BatchKey, DiscoverContext, Finished, Plugin, Registration, Verdict};
use crate::config::{CargoOptions, IgnoredMode};
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

/// One test executable produced by `cargo test --no-run`.
#[derive(Debug)]
struct TestBinary {
    /// nextest's binary id: `pkg` (lib), `pkg::name` (integration test), `pkg::bin/name`, ...
    id: String,
    executable: PathBuf,
    package_name: String,
    package_version: String,
    /// The package directory, relative to the source when it is inside it.
    package_dir: PathBuf,
    /// Cargo's package id, to find the package's metadata and binaries.
    package_id: String,
    /// The crate's name (`CARGO_CRATE_NAME`): the target's, `-` made `_`.
    crate_name: String,
    /// An integration test or a bench: cargo gives it `CARGO_TARGET_TMPDIR`.
    integration: bool,
}

/// Lines of the build's first errors kept in the message of a failed build
/// (and so in the JUnit `<error>` of the run).
const BUILD_ERROR_LINES: usize = 20;

/// The cargo that runs us (`$CARGO`, as cargo sets it for a subcommand), else `cargo`.
fn cargo_program() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// A command of [`cargo_program`].
pub(crate) fn cargo() -> Command {
    Command::new(cargo_program())
}

/// `cargo metadata --no-deps` of the package at `source` (or `manifest_path`).
pub(crate) fn metadata_command(source: &Path, manifest_path: Option<&Path>) -> Command {
    let mut command = cargo();
    command
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(source);
    if let Some(path) = manifest_path {
        command.arg("--manifest-path").arg(path);
    }
    command
}

/// Runs `cargo test --no-run` with the user's Cargo options and returns the test binaries.
fn build(ctx: &DiscoverContext<'_>) -> Result<Vec<(TestBinary, PackageEnv)>> {
    let build_command = || {
        let mut command = cargo();
        // Plain `json`: the compiler's messages come on stdout, rendered, so
        // that a failed build can name its first errors.
        command
            .args(["test", "--no-run", "--message-format=json"])
            .args(cargo_args(ctx.cargo))
            .current_dir(ctx.source);
        command
    };
    let run_build = |show_stderr: bool| {
        // Our `--color` decides cargo's too; captured output (read into the
        // error report) has none.
        let colors = show_stderr && crate::report::console::colors_enabled();
        let mut command = build_command();
        command.args(["--color", if colors { "always" } else { "never" }]);
        ctx.watchdog.capture(command, show_stderr).map_err(|e| {
            Error::with_cause(
                Kind::CannotRun,
                format!("cannot run `{}`", cargo_program().to_string_lossy()),
                e,
            )
        })
    };
    let mut output = run_build(ctx.verbose_build)?;
    // Cargo's own errors (a stale Cargo.lock under --locked, a bad manifest)
    // come on stderr, which went to the terminal: such a failure comes before
    // any compiling, so asking again with stderr captured repeats it at once
    // and the report can say what it was.
    if ctx.verbose_build && !output.status.success() && !ctx.watchdog.is_interrupted() {
        let has_compiler_error = Message::parse_stream(output.stdout.as_slice())
            .flatten()
            .any(|m| matches!(m, Message::CompilerMessage(_)));
        if !has_compiler_error {
            output = run_build(false)?;
        }
    }
    let mut binaries = Vec::new();
    let mut bins: Vec<(String, String, PathBuf)> = Vec::new();
    // Build scripts' `cargo:rustc-link-search` directories: cargo test puts
    // those inside the target directory on the library path.
    let mut linked: Vec<PathBuf> = Vec::new();
    // Each package's build-script output: `cargo test` sets `OUT_DIR` to
    // it at run time too, not only while compiling.
    let mut out_dirs: std::collections::HashMap<String, PathBuf> = Default::default();
    let mut diagnostics = String::new();
    let mut errors: Vec<String> = Vec::new();
    for message in Message::parse_stream(output.stdout.as_slice()) {
        let message = message
            .map_err(|e| Error::with_cause(Kind::CannotRun, "cannot read cargo's output", e))?;
        match message {
            Message::CompilerArtifact(artifact) => {
                if let Some(path) = package_binary(&artifact) {
                    bins.push((
                        artifact.package_id.repr.clone(),
                        artifact.target.name.clone(),
                        path,
                    ));
                }
                binaries.extend(test_binary(&artifact, ctx.source));
            }
            Message::BuildScriptExecuted(script) => {
                out_dirs.insert(
                    script.package_id.repr.clone(),
                    script.out_dir.clone().into_std_path_buf(),
                );
                linked.extend(script.linked_paths.iter().map(|p| {
                    let p = p.as_str();
                    PathBuf::from(p.split_once('=').map_or(p, |(_, path)| path))
                }));
            }
            Message::CompilerMessage(compiler) => {
                let Some(rendered) = compiler.message.rendered.as_deref() else {
                    continue;
                };
                // A lib fails twice (as itself and as its unit-test binary): say it once.
                if diagnostics.contains(rendered) {
                    continue;
                }
                diagnostics.push_str(rendered);
                if compiler.message.level == cargo_metadata::diagnostic::DiagnosticLevel::Error
                    && errors.len() < BUILD_ERROR_LINES
                {
                    errors.extend(rendered.lines().map(str::to_string));
                }
            }
            _ => {}
        }
    }
    if !output.status.success() {
        // With `verbose_build` the user saw cargo's stderr as it came.
        if ctx.verbose_build {
            eprint!("{diagnostics}");
        } else {
            eprint!("{diagnostics}{}", String::from_utf8_lossy(&output.stderr));
        }
        // Cargo's own errors (a bad manifest) come on stderr, when it was captured.
        if errors.is_empty() {
            errors.extend(
                String::from_utf8_lossy(&output.stderr)
                    .lines()
                    .skip_while(|line| !line.starts_with("error"))
                    .map(str::to_string),
            );
        }
        errors.truncate(BUILD_ERROR_LINES);
        let detail = if errors.is_empty() {
            String::new()
        } else {
            format!(":\n{}", errors.join("\n").trim_end())
        };
        return Err(Error::cannot_run(format!(
            "`cargo test --no-run` failed ({}): the tests could not be built{detail}",
            output.status
        )));
    }
    if ctx.verbose_build {
        eprint!("{diagnostics}");
    }
    binaries.sort_by(|a, b| a.id.cmp(&b.id));
    let packages = package_env(ctx, &bins, &linked)?;
    Ok(binaries
        .into_iter()
        .map(|binary| {
            let mut env = packages
                .get(&binary.package_id)
                .cloned()
                .unwrap_or_default();
            env.out_dir = out_dirs.get(&binary.package_id).cloned();
            (binary, env)
        })
        .collect())
}

/// The executable of a package's binary target, built for its integration
/// tests (`CARGO_BIN_EXE_<name>`).
fn package_binary(artifact: &Artifact) -> Option<PathBuf> {
    let is_bin = artifact.target.kind.contains(&TargetKind::Bin);
    (is_bin && !artifact.profile.test)
        .then(|| artifact.executable.clone())
        .flatten()
        .map(|p| p.into_std_path_buf())
}

/// `CARGO_PKG_*`, `CARGO_BIN_EXE_*`, `CARGO_TARGET_TMPDIR`'s base and the
/// rest of what `cargo test` gives every test of a package at run time, by
/// package id, from `cargo metadata` (its values as the manifest writes them:
/// `rust-version = "1.70"` stays `1.70`).
fn package_env(
    ctx: &DiscoverContext<'_>,
    bins: &[(String, String, PathBuf)],
    linked: &[PathBuf],
) -> Result<std::collections::HashMap<String, PackageEnv>> {
    let mut command = metadata_command(ctx.source, ctx.cargo.manifest_path.as_deref());
    command.args(&ctx.cargo.global_flags);
    let output = ctx
        .watchdog
        .capture(command, false)
        .map_err(|e| Error::with_cause(Kind::CannotRun, "cannot run `cargo metadata`", e))?;
    if !output.status.success() {
        return Err(Error::cannot_run(format!(
            "`cargo metadata` failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        )));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| Error::with_cause(Kind::CannotRun, "cannot read `cargo metadata`", e))?;
    let target_dir = metadata["target_directory"].as_str().map(PathBuf::from);
    let cargo_path = cargo_executable(&cargo_program());
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")));
    let mut packages = std::collections::HashMap::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let Some(id) = package["id"].as_str() else {
            continue;
        };
        let text = |key: &str| package[key].as_str().unwrap_or("").to_string();
        let version = text("version");
        let (numbers, pre) = version.split_once('-').unwrap_or((&version, ""));
        let numbers = numbers.split('+').next().unwrap_or(numbers);
        let pre = pre.split('+').next().unwrap_or(pre);
        let mut parts = numbers.split('.');
        let authors: Vec<&str> = package["authors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str())
            .collect();
        let mut vars: Vec<(String, String)> = vec![
            ("CARGO_PKG_NAME".into(), text("name")),
            ("CARGO_PKG_VERSION".into(), version.clone()),
            (
                "CARGO_PKG_VERSION_MAJOR".into(),
                parts.next().unwrap_or("").into(),
            ),
            (
                "CARGO_PKG_VERSION_MINOR".into(),
                parts.next().unwrap_or("").into(),
            ),
            (
                "CARGO_PKG_VERSION_PATCH".into(),
                parts.next().unwrap_or("").into(),
            ),
            ("CARGO_PKG_VERSION_PRE".into(), pre.into()),
            ("CARGO_PKG_AUTHORS".into(), authors.join(":")),
            ("CARGO_PKG_DESCRIPTION".into(), text("description")),
            ("CARGO_PKG_HOMEPAGE".into(), text("homepage")),
            ("CARGO_PKG_REPOSITORY".into(), text("repository")),
            ("CARGO_PKG_LICENSE".into(), text("license")),
            ("CARGO_PKG_LICENSE_FILE".into(), text("license_file")),
            ("CARGO_PKG_RUST_VERSION".into(), text("rust_version")),
            ("CARGO_PKG_README".into(), text("readme")),
            ("CARGO_PRIMARY_PACKAGE".into(), "1".into()),
        ];
        if let Some(cargo) = &cargo_path {
            vars.push(("CARGO".into(), cargo.display().to_string()));
        }
        if let Some(home) = &cargo_home {
            vars.push(("CARGO_HOME".into(), home.display().to_string()));
        }
        for (package_id, name, path) in bins {
            if package_id == id {
                vars.push((format!("CARGO_BIN_EXE_{name}"), path.display().to_string()));
            }
        }
        packages.insert(
            id.to_string(),
            PackageEnv {
                vars,
                target_tmpdir: target_dir.as_ref().map(|d| d.join("tmp")),
                library_dirs: linked
                    .iter()
                    .filter(|dir| target_dir.as_ref().is_some_and(|t| dir.starts_with(t)))
                    .cloned()
                    .collect(),
                out_dir: None,
            },
        );
    }
    Ok(packages)
}

/// What every test binary of one package gets from its package.
#[derive(Debug, Clone, Default)]
struct PackageEnv {
    vars: Vec<(String, String)>,
    target_tmpdir: Option<PathBuf>,
    /// Build scripts' link-search directories inside the target directory.
    library_dirs: Vec<PathBuf>,
    /// The package's build-script output directory, if it has a build script.
    out_dir: Option<PathBuf>,
}

/// The absolute path of the cargo that runs, as `cargo test` gives it in `CARGO`.
fn cargo_executable(cargo: &std::ffi::OsStr) -> Option<PathBuf> {
    let path = Path::new(cargo);
    if path.is_absolute() {
        return Some(path.to_path_buf());
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(path))
        .find(|candidate| candidate.is_file())
}

/// Cargo's own flags for the options the user gave.
pub(crate) fn cargo_args(options: &CargoOptions) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut flag = |name: &str, value: Option<&OsString>| {
        args.push(name.into());
        if let Some(value) = value {
            args.push(value.clone());
        }
    };
    if let Some(path) = &options.manifest_path {
        flag("--manifest-path", Some(&path.into()));
    }
    for package in &options.packages {
        flag("--package", Some(&package.into()));
    }
    if options.workspace {
        flag("--workspace", None);
    }
    for package in &options.exclude {
        flag("--exclude", Some(&package.into()));
    }
    if !options.features.is_empty() {
        flag("--features", Some(&options.features.join(",").into()));
    }
    for (on, name) in [
        (options.all_features, "--all-features"),
        (options.no_default_features, "--no-default-features"),
        (options.release, "--release"),
        (options.lib, "--lib"),
        (options.bins, "--bins"),
        (options.tests, "--tests"),
    ] {
        if on {
            flag(name, None);
        }
    }
    if let Some(profile) = &options.cargo_profile {
        flag("--profile", Some(&profile.into()));
    }
    if let Some(target) = &options.target {
        flag("--target", Some(&target.into()));
    }
    if let Some(dir) = &options.target_dir {
        flag("--target-dir", Some(&dir.into()));
    }
    for test in &options.test {
        flag("--test", Some(&test.into()));
    }
    args.extend(options.global_flags.iter().map(OsString::from));
    args.extend(options.build_flags.iter().map(OsString::from));
    args
}

/// The test binary an artifact is, if it is one.
fn test_binary(artifact: &Artifact, source: &Path) -> Option<TestBinary> {
    if !artifact.profile.test {
        return None;
    }
    let executable = artifact.executable.clone()?.into_std_path_buf();
    let (package_name, package_version) = package_name_and_version(&artifact.package_id.repr);
    let target = &artifact.target;
    let kind = target.kind.first()?;
    let id = match kind {
        TargetKind::Lib
        | TargetKind::RLib
        | TargetKind::DyLib
        | TargetKind::CDyLib
        | TargetKind::StaticLib
        | TargetKind::ProcMacro => package_name.clone(),
        TargetKind::Test => format!("{package_name}::{}", target.name),
        TargetKind::Bin => format!("{package_name}::bin/{}", target.name),
        TargetKind::Example => format!("{package_name}::example/{}", target.name),
        TargetKind::Bench => format!("{package_name}::bench/{}", target.name),
        _ => format!("{package_name}::{}", target.name),
    };
    let manifest_dir = artifact.manifest_path.parent()?.as_std_path();
    let package_dir = relative_to(manifest_dir, source);
    Some(TestBinary {
        id,
        executable,
        package_name,
        package_version,
        package_dir,
        package_id: artifact.package_id.repr.clone(),
        crate_name: target.name.replace('-', "_"),
        integration: matches!(kind, TargetKind::Test | TargetKind::Bench),
    })
}

/// `path` relative to `base` when inside it, else `path` itself (absolute paths
/// stay absolute when joined to a workspace root).
fn relative_to(path: &Path, base: &Path) -> PathBuf {
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    match canonical(path).strip_prefix(canonical(base)) {
        Ok(relative) => relative.to_path_buf(),
        Err(_) => path.to_path_buf(),
    }
}

/// Name and version from a package id: `path+file:///p/basic#0.1.0`,
/// `path+file:///p/x#basic@0.1.0`, `registry+https://...#serde@1.0.0`.
fn package_name_and_version(repr: &str) -> (String, String) {
    let (url, fragment) = repr.rsplit_once('#').unwrap_or((repr, ""));
    match fragment.split_once('@') {
        Some((name, version)) => (name.to_string(), version.to_string()),
        None => {
            let name = url.trim_end_matches('/').rsplit('/').next().unwrap_or(url);
            (name.to_string(), fragment.to_string())
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_ids_of_every_shape() {
        assert_eq!(
            package_name_and_version("path+file:///p/basic#0.1.0"),
            ("basic".into(), "0.1.0".into())
        );
        assert_eq!(
            package_name_and_version("path+file:///p/dir#my-crate@0.2.0"),
            ("my-crate".into(), "0.2.0".into())
        );
        assert_eq!(
            package_name_and_version(
                "registry+https://github.com/rust-lang/crates.io-index#serde@1.0.1"
            ),
            ("serde".into(), "1.0.1".into())
        );
    }

    #[test]
    fn cargo_flags_keep_cargo_names() {
        let options = CargoOptions {
            packages: vec!["a".into()],
            features: vec!["x".into(), "y".into()],
            release: true,
            test: vec!["it".into()],
            cargo_profile: Some("ci".into()),
            ..Default::default()
        };
        let args: Vec<String> = cargo_args(&options)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "--package",
                "a",
                "--features",
                "x,y",
                "--release",
                "--profile",
                "ci",
                "--test",
                "it"
            ]
        );
    }
}
