//! The layers of one command resolved: the source found, `paratest.toml`
//! read, each layer validated, the layers stacked, and the defaults applied,
//! giving the one [`RunConfig`] that `run`, `list` and `archive` read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{
    CONFIG_FILE, DEFAULT_DISCOVERY_TIMEOUT, DEFAULT_SLOW_TIMEOUT, FlakyResult, Hooks, Isolation,
    MessageFormat, NoTests, Origin, Profile, ProjectConfig, WorkspaceReset,
};
use crate::error::{Error, Result};
use crate::schedule::partition::{self, Partition};

/// What the command line says about where and how to resolve, besides its
/// settings layer (built by `cli`, so that no clap type comes here).
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The command line's settings: the top layer.
    pub cli: Profile,
    /// `--profile`.
    pub profile: Option<String>,
    /// `--source`.
    pub source: Option<PathBuf>,
    /// `--manifest-path`.
    pub manifest_path: Option<PathBuf>,
    /// An archive's unpacked source (`run --archive-file` without `--source`):
    /// the reports then stay in the current directory.
    pub unpacked_source: Option<PathBuf>,
}

/// The resolved settings of one command: every layer applied, every value
/// checked, every default filled in.
#[derive(Debug)]
pub struct RunConfig {
    /// The project directory the tests come from.
    pub source: PathBuf,
    pub project: ProjectConfig,
    /// All layers stacked, still as written: per-test overrides resolve against it.
    pub settings: Profile,
    /// The command line over the environment: what per-test overrides cannot change.
    pub forced: Profile,
    pub workers: usize,
    pub isolation: Isolation,
    pub message_format: MessageFormat,
    pub retries: u32,
    pub timeout: Option<Duration>,
    pub slow_timeout: Duration,
    pub discovery_timeout: Duration,
    pub keep_workspaces: bool,
    pub fail_fast: bool,
    pub no_tests: NoTests,
    pub flaky_result: FlakyResult,
    pub workspace_reset: WorkspaceReset,
    pub hooks: Hooks,
    /// The JUnit report [default: `.paratest/junit.xml` in the source].
    pub junit: PathBuf,
    /// The timings file [default: `.paratest/timings.json` in the source].
    pub timings: PathBuf,
}

impl RunConfig {
    /// Resolves `request` in `cwd`, reading the environment through `env`.
    pub fn resolve(
        request: Request,
        cwd: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<RunConfig> {
        let source = match request.unpacked_source.clone() {
            Some(unpacked) => unpacked,
            None => find_source(
                request.source.as_deref(),
                request.manifest_path.as_deref(),
                request.cli.plugin.as_deref(),
                cwd,
            )?,
        };
        let project = ProjectConfig::load(&source)?;
        let ci = env("CI").is_some_and(|v| !v.is_empty() && v != "false");
        let cli_layer = request.cli.resolve_paths(cwd);
        cli_layer.validate(Origin::CommandLine)?;
        let env_layer = Profile::from_env(&env, cwd)?;
        env_layer.validate(Origin::Environment)?;
        let file_layer = project.profile(request.profile.as_deref(), ci)?;
        if let Some(path) = &project.path {
            file_layer.validate(Origin::File(path))?;
        }
        let forced = cli_layer.overlay(env_layer);
        let mut settings = forced.clone().overlay(file_layer);
        if request.unpacked_source.is_some() {
            // The unpacked source goes at the end: reports stay in the current directory.
            let local = crate::runs::paratest_dir(cwd);
            settings
                .junit
                .get_or_insert_with(|| local.join("junit.xml"));
            settings
                .timings
                .get_or_insert_with(|| local.join("timings.json"));
        }
        Ok(RunConfig::from_layers(source, project, forced, settings))
    }

    /// The defaults, applied once: the stacked layers become values.
    pub fn from_layers(
        source: PathBuf,
        project: ProjectConfig,
        forced: Profile,
        settings: Profile,
    ) -> RunConfig {
        let paratest = crate::runs::paratest_dir(&source);
        let s = &settings;
        RunConfig {
            workers: s.workers.unwrap_or_else(default_workers),
            isolation: s.isolation.unwrap_or_default(),
            message_format: s.message_format.unwrap_or_default(),
            retries: s.retries.unwrap_or(0),
            timeout: s.timeout.map(|t| t.0),
            slow_timeout: s.slow_timeout.map_or(DEFAULT_SLOW_TIMEOUT, |t| t.0),
            discovery_timeout: s
                .discovery_timeout
                .map_or(DEFAULT_DISCOVERY_TIMEOUT, |t| t.0),
            keep_workspaces: s.keep_workspaces.unwrap_or(false),
            fail_fast: s.fail_fast.unwrap_or(false),
            no_tests: s.no_tests.unwrap_or_default(),
            flaky_result: s.flaky_result.unwrap_or_default(),
            workspace_reset: s.workspace_reset.unwrap_or_default(),
            hooks: Hooks {
                setup: s.setup.clone(),
                setup_workspace: s.setup_workspace.clone(),
                setup_test: s.setup_test.clone(),
                teardown_test: s.teardown_test.clone(),
                teardown_workspace: s.teardown_workspace.clone(),
                teardown: s.teardown.clone(),
            },
            junit: s
                .junit
                .clone()
                .unwrap_or_else(|| paratest.join("junit.xml")),
            timings: s
                .timings
                .clone()
                .unwrap_or_else(|| paratest.join("timings.json")),
            source,
            project,
            forced,
            settings,
        }
    }

    /// The partition asked for, if any: `K/N`, or `auto` from the CI's
    /// variables (read here, when the run needs it, so that `list` and a
    /// run with no CI are not refused for a partition they do not use).
    pub fn partition(&self, env: impl Fn(&str) -> Option<String>) -> Result<Option<Partition>> {
        match self.settings.partition.as_deref() {
            None => Ok(None),
            Some("auto") => partition::from_ci_env(env).map(Some).map_err(Error::usage),
            Some(text) => text.parse().map(Some).map_err(Error::usage),
        }
    }

    /// `--isolation empty` is only useful with a hook that fills each workspace.
    pub fn check_isolation(&self) -> Result<()> {
        if self.isolation == Isolation::Empty && self.hooks.setup_workspace.is_none() {
            return Err(Error::usage(
                "--isolation empty needs --setup-workspace to fill each workspace",
            ));
        }
        Ok(())
    }
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `--source`, else the Cargo workspace root above the current directory (or
/// `--manifest-path`), else the current directory.
pub fn find_source(
    source: Option<&Path>,
    manifest_path: Option<&Path>,
    plugin: Option<&str>,
    cwd: &Path,
) -> Result<PathBuf> {
    if let Some(dir) = source {
        return dir.canonicalize().map_err(|e| {
            Error::with_cause(
                crate::error::Kind::Usage,
                format!("invalid --source {}", dir.display()),
                e,
            )
        });
    }
    // The nearest directory with a paratest.toml or a Cargo.toml decides: a
    // paratest.toml without Cargo.toml (a pytest or shell project inside a
    // Rust repository) is a source of its own.
    let nearest = cwd
        .ancestors()
        .find(|d| d.join(CONFIG_FILE).is_file() || d.join("Cargo.toml").is_file());
    if manifest_path.is_none()
        && let Some(dir) = nearest
        && !dir.join("Cargo.toml").is_file()
    {
        return Ok(dir.to_path_buf());
    }
    let has_manifest = manifest_path.is_some() || nearest.is_some();
    if has_manifest && plugin.is_none_or(|p| p == "cargo") {
        let manifest = match manifest_path {
            Some(manifest) => cwd.join(manifest),
            None => nearest.expect("has a manifest").join("Cargo.toml"),
        };
        if let Some(root) = certain_workspace_root(&manifest) {
            return Ok(root);
        }
        let mut command = crate::plugin::cargo::cargo();
        command.args(["locate-project", "--workspace", "--message-format", "plain"]);
        if let Some(manifest) = manifest_path {
            command.arg("--manifest-path").arg(manifest);
        }
        if let Ok(output) = command.output()
            && output.status.success()
        {
            let manifest = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
            if let Some(root) = manifest.parent() {
                return Ok(root.to_path_buf());
            }
        }
    }
    Ok(cwd.to_path_buf())
}

/// The workspace root of `manifest` where it is certain without asking
/// Cargo (`cargo locate-project` costs 30 ms of every run): a manifest with
/// a `[workspace]` table is the root of its own workspace, and so is one
/// with no `Cargo.toml` in any directory above it. Else `None`: a
/// `package.workspace` key, or a workspace above that may or may not list
/// this package, is Cargo's to decide.
fn certain_workspace_root(manifest: &Path) -> Option<PathBuf> {
    // Cargo resolves `..` by the letter, the filesystem through symbolic
    // links: a path with `..` is Cargo's to decide. `.` parts are dropped.
    if manifest
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        return None;
    }
    let manifest: PathBuf = manifest.components().collect();
    let dir = manifest.parent()?;
    let table: toml::Table = std::fs::read_to_string(&manifest).ok()?.parse().ok()?;
    let points_elsewhere = table
        .get("package")
        .is_some_and(|package| package.get("workspace").is_some());
    let own_root = table.contains_key("workspace")
        || (!points_elsewhere
            && !dir
                .ancestors()
                .skip(1)
                .any(|d| d.join("Cargo.toml").exists()));
    own_root.then(|| dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HumanDuration;

    #[test]
    fn a_workspace_root_is_found_without_cargo_only_where_it_is_certain() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        let package = "[package]\nname = \"a\"\nversion = \"0.1.0\"\n";
        write("ws/Cargo.toml", "[workspace]\nmembers = [\"member\"]\n");
        write("ws/member/Cargo.toml", package);
        write("ws/member/inner/Cargo.toml", "[workspace]\n");
        let root = |path: &str| certain_workspace_root(&dir.path().join(path));
        assert_eq!(root("ws/Cargo.toml"), Some(dir.path().join("ws")));
        assert_eq!(
            root("ws/member/inner/Cargo.toml"),
            Some(dir.path().join("ws/member/inner"))
        );
        assert_eq!(
            root("ws/member/Cargo.toml"),
            None,
            "a workspace above: Cargo decides"
        );
        write("alone/Cargo.toml", package);
        let alone = root("alone/Cargo.toml");
        // Only certain when no directory above the temporary one has a Cargo.toml.
        if !dir
            .path()
            .ancestors()
            .any(|d| d.join("Cargo.toml").exists())
        {
            assert_eq!(alone, Some(dir.path().join("alone")));
        }
        write(
            "pointer/Cargo.toml",
            &format!("{package}workspace = \"..\"\n"),
        );
        assert_eq!(
            root("pointer/Cargo.toml"),
            None,
            "package.workspace: Cargo decides"
        );
        write("broken/Cargo.toml", "[package\n");
        assert_eq!(root("broken/Cargo.toml"), None);
        // `..` after a symbolic link means one directory to Cargo and another
        // to the filesystem; `.` means nothing.
        assert_eq!(root("ws/member/../Cargo.toml"), None);
        assert_eq!(root("ws/./Cargo.toml"), Some(dir.path().join("ws")));
    }

    /// A source directory with this `paratest.toml`, resolved with these
    /// variables and this command line.
    fn resolve(toml: &str, vars: &[(&str, &str)], cli: Profile) -> Result<RunConfig> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), toml).unwrap();
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let request = Request {
            cli,
            source: Some(dir.path().to_path_buf()),
            ..Request::default()
        };
        RunConfig::resolve(request, dir.path(), |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn defaults_apply_where_no_layer_says() {
        let config = resolve("", &[], Profile::default()).unwrap();
        assert_eq!(config.isolation, Isolation::Copy);
        assert_eq!(config.message_format, MessageFormat::Human);
        assert_eq!(config.slow_timeout, DEFAULT_SLOW_TIMEOUT);
        assert_eq!(config.discovery_timeout, DEFAULT_DISCOVERY_TIMEOUT);
        assert_eq!((config.retries, config.timeout), (0, None));
        assert_eq!(config.no_tests, NoTests::Fail);
        assert!(config.workers >= 1);
        assert!(config.junit.ends_with(".paratest/junit.xml"));
        assert!(config.timings.ends_with(".paratest/timings.json"));
    }

    #[test]
    fn command_line_beats_environment_beats_file_beats_defaults() {
        let toml = "[profile.default]\nworkers = 8\nretries = 1\nisolation = \"none\"\nslow-timeout = \"5s\"\n";
        let vars = [("PARATEST_WORKERS", "3"), ("PARATEST_RETRIES", "2")];
        let cli = Profile {
            workers: Some(2),
            ..Profile::default()
        };
        let config = resolve(toml, &vars, cli).unwrap();
        assert_eq!(config.workers, 2, "command line over environment");
        assert_eq!(config.retries, 2, "environment over the file");
        assert_eq!(
            config.isolation,
            Isolation::None,
            "the file over the default"
        );
        assert_eq!(config.slow_timeout, Duration::from_secs(5));
        // What the command line and the environment set, overrides cannot change.
        assert_eq!(config.forced.retries, Some(2));
        assert_eq!(config.forced.isolation, None);
    }

    #[test]
    fn ci_chooses_the_ci_profile() {
        let toml = "[profile.default]\nretries = 1\n[profile.ci]\nretries = 3\n";
        assert_eq!(
            resolve(toml, &[("CI", "true")], Profile::default())
                .unwrap()
                .retries,
            3
        );
        assert_eq!(
            resolve(toml, &[("CI", "false")], Profile::default())
                .unwrap()
                .retries,
            1
        );
    }

    /// A `paratest.toml`, variables, a command line, and what the error names.
    type Case = (
        &'static str,
        &'static [(&'static str, &'static str)],
        Profile,
        &'static [&'static str],
    );

    /// Each out-of-range value is exit 2, naming the option as the layer
    /// spells it and the valid range.
    #[test]
    fn out_of_range_values_name_the_option_and_the_range() {
        let cases: [Case; 5] = [
            (
                "",
                &[],
                Profile {
                    workers: Some(0),
                    ..Profile::default()
                },
                &["--workers", "between 1 and 1024", "got 0"],
            ),
            (
                "",
                &[("PARATEST_RETRIES", "101")],
                Profile::default(),
                &["PARATEST_RETRIES", "between 0 and 100", "got 101"],
            ),
            (
                "[profile.default]\nmax-fail = 0\n",
                &[],
                Profile::default(),
                &["`max-fail` in", "paratest.toml", "at least 1"],
            ),
            (
                "",
                &[],
                Profile {
                    slow_timeout: Some(HumanDuration(Duration::ZERO)),
                    ..Profile::default()
                },
                &["--slow-timeout", "more than 0s and at most 7days"],
            ),
            (
                "",
                &[("PARATEST_PARTITION", "3/2")],
                Profile::default(),
                &["PARATEST_PARTITION"],
            ),
        ];
        for (toml, vars, cli, expected) in cases {
            let err = resolve(toml, vars, cli).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{err}");
            for part in expected {
                assert!(err.to_string().contains(part), "{part:?} not in: {err}");
            }
        }
    }

    #[test]
    fn empty_isolation_needs_a_setup_workspace_hook() {
        let cli = Profile {
            isolation: Some(Isolation::Empty),
            ..Profile::default()
        };
        let config = resolve("", &[], cli).unwrap();
        let err = config.check_isolation().unwrap_err();
        assert!(err.to_string().contains("--setup-workspace"), "{err}");
        assert_eq!(err.exit_code(), 2);
        let filled = resolve(
            "[profile.default]\nsetup-workspace = \"true\"\n",
            &[],
            Profile {
                isolation: Some(Isolation::Empty),
                ..Profile::default()
            },
        )
        .unwrap();
        assert!(filled.check_isolation().is_ok());
    }

    #[test]
    fn partition_auto_reads_the_ci_variables_when_asked() {
        let config = resolve(
            "[profile.default]\npartition = \"auto\"\n",
            &[],
            Profile::default(),
        )
        .unwrap();
        assert!(config.partition(|_| None).is_err());
        let shard = config
            .partition(|name| {
                [("CI_NODE_INDEX", "2"), ("CI_NODE_TOTAL", "3")]
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            })
            .unwrap();
        assert_eq!(shard.map(|p| p.to_string()).as_deref(), Some("2/3"));
    }
}
