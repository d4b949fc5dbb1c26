//! The Cargo plugin: builds the test binaries once in the source, lists each
//! binary's tests, and runs every test as its own process
//! `BINARY --exact NAME --nocapture` inside a workspace.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use cargo_metadata::{Artifact, Message, TargetKind};
use rayon::prelude::*;

use super::{DiscoverContext, Plugin, Registration};
use crate::config::{CargoOptions, IgnoredMode};
use crate::error::{Error, Kind, Result};
use crate::model::{EnvValue, Invocation, TestCase};

pub struct CargoPlugin;

inventory::submit!(Registration(&CargoPlugin));

impl Plugin for CargoPlugin {
    fn name(&self) -> &'static str {
        "cargo"
    }

    fn description(&self) -> &'static str {
        "Rust tests: builds with `cargo test --no-run`, runs each libtest test as its own process"
    }

    fn detects(&self, source: &Path) -> bool {
        source.join("Cargo.toml").is_file()
    }

    fn discover(&self, ctx: &DiscoverContext<'_>) -> Result<Vec<TestCase>> {
        let binaries = build(ctx)?;
        let listed: Vec<Result<Vec<TestCase>>> = binaries
            .par_iter()
            .map(|binary| list_tests(binary, ctx))
            .collect();
        let mut tests = Vec::new();
        for result in listed {
            tests.extend(result?);
        }
        Ok(tests)
    }
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
}

/// Runs `cargo test --no-run` with the user's Cargo options and returns the test binaries.
fn build(ctx: &DiscoverContext<'_>) -> Result<Vec<TestBinary>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .args([
            "test",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .args(cargo_args(ctx.cargo))
        .current_dir(ctx.source);
    let output = ctx
        .watchdog
        .capture(command, ctx.verbose_build)
        .map_err(|e| {
            Error::with_cause(
                Kind::CannotRun,
                format!("cannot run `{}`", cargo.to_string_lossy()),
                e,
            )
        })?;
    if !output.status.success() {
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        return Err(Error::cannot_run(format!(
            "`cargo test --no-run` failed ({}): the tests could not be built",
            output.status
        )));
    }
    let mut binaries = Vec::new();
    for message in Message::parse_stream(output.stdout.as_slice()) {
        let message = message
            .map_err(|e| Error::with_cause(Kind::CannotRun, "cannot read cargo's output", e))?;
        if let Message::CompilerArtifact(artifact) = message
            && let Some(binary) = test_binary(&artifact, ctx.source)
        {
            binaries.push(binary);
        }
    }
    binaries.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(binaries)
}

/// Cargo's own flags for the options the user gave.
fn cargo_args(options: &CargoOptions) -> Vec<OsString> {
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
fn list_tests(binary: &TestBinary, ctx: &DiscoverContext<'_>) -> Result<Vec<TestCase>> {
    let all = run_list(binary, ctx, false)?;
    let ignored: std::collections::HashSet<String> =
        run_list(binary, ctx, true)?.into_iter().collect();
    let env = test_env(binary);
    Ok(all
        .into_iter()
        .map(|name| {
            let is_ignored = ignored.contains(&name);
            let mut args: Vec<OsString> =
                vec!["--exact".into(), (&name).into(), "--nocapture".into()];
            if is_ignored && ctx.ignored != IgnoredMode::Skip {
                args.push("--ignored".into());
            }
            args.extend(ctx.test_args.iter().map(OsString::from));
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
        .collect())
}

/// The environment `cargo test` gives a test, with paths pointing into the workspace.
fn test_env(binary: &TestBinary) -> Vec<(String, EnvValue)> {
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
            "CARGO_PKG_NAME".to_string(),
            EnvValue::Literal(binary.package_name.clone().into()),
        ),
        (
            "CARGO_PKG_VERSION".to_string(),
            EnvValue::Literal(binary.package_version.clone().into()),
        ),
        (
            "CARGO_CRATE_NAME".to_string(),
            EnvValue::Literal(binary.package_name.replace('-', "_").into()),
        ),
    ];
    // Tests linked against dylibs (or `-C prefer-dynamic`) find them where cargo would.
    if let Some(deps) = binary.executable.parent() {
        let mut paths = vec![deps.to_path_buf()];
        paths.extend(deps.parent().map(Path::to_path_buf));
        paths.extend(
            std::env::var_os("LD_LIBRARY_PATH")
                .iter()
                .flat_map(std::env::split_paths),
        );
        if let Ok(joined) = std::env::join_paths(paths) {
            env.push(("LD_LIBRARY_PATH".to_string(), EnvValue::Literal(joined)));
        }
    }
    env
}

fn run_list(binary: &TestBinary, ctx: &DiscoverContext<'_>, ignored: bool) -> Result<Vec<String>> {
    let (source, watchdog) = (ctx.source, ctx.watchdog);
    let mut command = Command::new(&binary.executable);
    command.args(["--list", "--format", "terse"]);
    if ignored {
        command.arg("--ignored");
    }
    let cwd = source.join(&binary.package_dir);
    command.current_dir(&cwd).env("CARGO_MANIFEST_DIR", &cwd);
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
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_string)
        .collect())
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
