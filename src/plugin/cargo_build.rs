//! The Cargo plugin's build: cargo's command line, `cargo test --no-run`
//! and its artifacts (the test binaries), and each package's environment.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use cargo_metadata::{Artifact, Message, TargetKind};

use super::DiscoverContext;
use crate::config::CargoOptions;
use crate::error::{Error, Kind, Result};

/// One test executable produced by `cargo test --no-run`.
#[derive(Debug)]
pub(super) struct TestBinary {
    /// nextest's binary id: `pkg` (lib), `pkg::name` (integration test), `pkg::bin/name`, ...
    pub(super) id: String,
    pub(super) executable: PathBuf,
    pub(super) package_name: String,
    pub(super) package_version: String,
    /// The package directory, relative to the source when it is inside it.
    pub(super) package_dir: PathBuf,
    /// Cargo's package id, to find the package's metadata and binaries.
    pub(super) package_id: String,
    /// The crate's name (`CARGO_CRATE_NAME`): the target's, `-` made `_`.
    pub(super) crate_name: String,
    /// An integration test or a bench: cargo gives it `CARGO_TARGET_TMPDIR`.
    pub(super) integration: bool,
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

/// Runs `cargo test --no-run` with the user's Cargo options and returns the
/// test binaries, each with its package's run-time environment.
pub(super) fn build(ctx: &DiscoverContext<'_>) -> Result<Vec<(TestBinary, PackageEnv)>> {
    std::thread::scope(|scope| {
        // `cargo metadata --no-deps` needs nothing the build makes: it runs
        // while Cargo builds (or finds everything fresh) instead of after.
        let metadata = scope.spawn(|| {
            let mut command = metadata_command(ctx.source, ctx.cargo.manifest_path.as_deref());
            command.args(&ctx.cargo.global_flags);
            ctx.watchdog.capture(command, false)
        });
        let built = compile(ctx)?;
        let metadata = metadata
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("`cargo metadata` panicked")));
        let packages = package_env(metadata, &built.bins, &built.linked)?;
        Ok(built
            .binaries
            .into_iter()
            .map(|binary| {
                let mut env = packages
                    .get(&binary.package_id)
                    .cloned()
                    .unwrap_or_default();
                env.out_dir = built.out_dirs.get(&binary.package_id).cloned();
                (binary, env)
            })
            .collect())
    })
}

/// What `cargo test --no-run` built: the test binaries, the packages'
/// executables (package id, target name, path), build scripts' link
/// directories and each package's `OUT_DIR`.
struct Built {
    binaries: Vec<TestBinary>,
    bins: Vec<(String, String, PathBuf)>,
    linked: Vec<PathBuf>,
    out_dirs: std::collections::HashMap<String, PathBuf>,
}

fn compile(ctx: &DiscoverContext<'_>) -> Result<Built> {
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
    Ok(Built {
        binaries,
        bins,
        linked,
        out_dirs,
    })
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
    metadata: std::io::Result<std::process::Output>,
    bins: &[(String, String, PathBuf)],
    linked: &[PathBuf],
) -> Result<std::collections::HashMap<String, PackageEnv>> {
    let output = metadata
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
pub(super) struct PackageEnv {
    pub(super) vars: Vec<(String, String)>,
    pub(super) target_tmpdir: Option<PathBuf>,
    /// Build scripts' link-search directories inside the target directory.
    pub(super) library_dirs: Vec<PathBuf>,
    /// The package's build-script output directory, if it has a build script.
    pub(super) out_dir: Option<PathBuf>,
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
