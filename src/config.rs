//! One `RunConfig` from four layers: command line > `PARATEST_*` environment
//! > `paratest.toml` profile (inheriting `default`) > built-in defaults.
//!
//! Every layer is the same [`Profile`] of `Option`s, so the precedence is one
//! `overlay` call per layer and a key means the same thing everywhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Kind, Result};

/// Where each worker runs its tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// A copy of the source without `target/`, `.paratest/`, `.git/`.
    Copy,
    /// The source itself, shared by all workers (no isolation).
    None,
    /// An empty directory that `--setup-workspace` fills.
    Empty,
}

/// What a flaky test does to the run's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum FlakyResult {
    Pass,
    Fail,
}

/// When a workspace is rebuilt between tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum WorkspaceReset {
    Never,
    OnFailure,
}

/// The console format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum MessageFormat {
    Human,
    Json,
    // TeamCity service messages on stdout (no doc comment: clap would
    // list every value on its own line in `--help`).
    Teamcity,
}

/// What a run whose selection is empty does (`--no-tests`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum NoTests {
    /// Exit 4, "no tests to run" (nextest's code).
    Fail,
    /// A warning, exit 0.
    Warn,
    /// Exit 0.
    Pass,
}

/// Which tests marked ignored take part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IgnoredMode {
    /// Ignored tests are reported as skipped (the `cargo test` default).
    #[default]
    Skip,
    /// Only ignored tests run (`--ignored`).
    Only,
    /// Ignored tests run too (`--include-ignored`).
    Include,
}

/// The six lifecycle hooks of the original ParaTest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    pub setup: Option<String>,
    pub setup_workspace: Option<String>,
    pub setup_test: Option<String>,
    pub teardown_test: Option<String>,
    pub teardown_workspace: Option<String>,
    pub teardown: Option<String>,
}

/// Cargo's own options, with Cargo's meaning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CargoOptions {
    pub manifest_path: Option<PathBuf>,
    pub packages: Vec<String>,
    pub workspace: bool,
    pub exclude: Vec<String>,
    pub features: Vec<String>,
    pub all_features: bool,
    pub no_default_features: bool,
    pub release: bool,
    pub cargo_profile: Option<String>,
    pub target: Option<String>,
    pub target_dir: Option<PathBuf>,
    pub lib: bool,
    pub bins: bool,
    pub tests: bool,
    pub test: Vec<String>,
    /// Flags every cargo command takes (`--locked`, `--frozen`, `--offline`,
    /// `--config`, `-Z`), in cargo's spelling: given to the build and to `cargo metadata`.
    pub global_flags: Vec<String>,
    /// Target selection and build flags (`--bin`, `--examples`, `-j`, `-v`, ...),
    /// in cargo's spelling: given to the build only.
    pub build_flags: Vec<String>,
}

/// A duration written the humantime way (`90s`, `5m`, `1h 30m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl std::str::FromStr for HumanDuration {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        humantime::parse_duration(text.trim())
            .map(HumanDuration)
            .map_err(|e| format!("invalid duration `{text}` ({e}); write e.g. `90s` or `5m`"))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One layer of settings: a `paratest.toml` profile, the environment, or the command line.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Profile {
    pub workers: Option<usize>,
    pub isolation: Option<Isolation>,
    pub workspace_root: Option<PathBuf>,
    pub keep_workspaces: Option<bool>,
    pub setup: Option<String>,
    pub setup_workspace: Option<String>,
    pub setup_test: Option<String>,
    pub teardown_test: Option<String>,
    pub teardown_workspace: Option<String>,
    pub teardown: Option<String>,
    pub retries: Option<u32>,
    pub timeout: Option<HumanDuration>,
    pub slow_timeout: Option<HumanDuration>,
    pub partition: Option<String>,
    pub timings: Option<PathBuf>,
    /// Where the run writes its updated timings (what it read plus its samples).
    pub timings_out: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub plugin: Option<String>,
    pub fail_fast: Option<bool>,
    /// Stop scheduling after this many definite failures.
    pub max_fail: Option<usize>,
    pub flaky_result: Option<FlakyResult>,
    pub workspace_reset: Option<WorkspaceReset>,
    pub message_format: Option<MessageFormat>,
    pub no_tests: Option<NoTests>,
    pub discovery_timeout: Option<HumanDuration>,
    /// `[[profile.NAME.overrides]]`: per-test settings, first match wins per
    /// setting (a profile's before `default`'s; see [`ProjectConfig::profile`]).
    pub overrides: Option<Vec<Override>>,
}

/// One `[[profile.NAME.overrides]]` table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Override {
    /// A filterset; its span gives the line for errors.
    pub filter: toml::Spanned<String>,
    pub retries: Option<u32>,
    pub timeout: Option<HumanDuration>,
    pub slow_timeout: Option<HumanDuration>,
    pub flaky_result: Option<FlakyResult>,
    pub workspace_reset: Option<WorkspaceReset>,
    pub test_group: Option<String>,
    /// Higher first; the default is 0 (nextest's range, -100 to 100).
    pub priority: Option<i32>,
}

/// `[test-groups.NAME]`: how many tests of the group may run at once.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TestGroup {
    /// At most this many of the group's tests at once, over all workers.
    pub max_threads: Option<usize>,
    /// A test of the group runs with no other test running at all.
    pub exclusive: Option<bool>,
}

/// Every key a profile accepts; also the `PARATEST_<KEY>` variables read.
pub const PROFILE_KEYS: &[&str] = &[
    "workers",
    "isolation",
    "workspace-root",
    "keep-workspaces",
    "setup",
    "setup-workspace",
    "setup-test",
    "teardown-test",
    "teardown-workspace",
    "teardown",
    "retries",
    "timeout",
    "slow-timeout",
    "partition",
    "timings",
    "timings-out",
    "junit",
    "output",
    "plugin",
    "fail-fast",
    "max-fail",
    "flaky-result",
    "workspace-reset",
    "message-format",
    "no-tests",
    "discovery-timeout",
];

/// Variables cargo-paratest itself sets for tests. Inside a test (`PARATEST=1`)
/// they describe the outer run, so a nested run must not read them as settings.
const SET_FOR_TESTS: &[&str] = &["workers", "output", "partition"];

macro_rules! overlay_fields {
    ($upper:ident, $lower:ident, $($field:ident),* $(,)?) => {
        Profile { $($field: $upper.$field.or($lower.$field)),* }
    };
}

impl Profile {
    /// `self` wins over `lower` key by key.
    pub fn overlay(self, lower: Profile) -> Profile {
        let upper = self;
        overlay_fields!(
            upper,
            lower,
            workers,
            isolation,
            workspace_root,
            keep_workspaces,
            setup,
            setup_workspace,
            setup_test,
            teardown_test,
            teardown_workspace,
            teardown,
            retries,
            timeout,
            slow_timeout,
            partition,
            timings,
            timings_out,
            junit,
            output,
            plugin,
            fail_fast,
            max_fail,
            flaky_result,
            workspace_reset,
            message_format,
            no_tests,
            discovery_timeout,
            overrides,
        )
    }

    /// Makes relative paths absolute against `base` (the current directory
    /// for the command line and the environment, the source for a profile).
    pub fn resolve_paths(mut self, base: &Path) -> Profile {
        for path in [
            &mut self.workspace_root,
            &mut self.timings,
            &mut self.timings_out,
            &mut self.junit,
            &mut self.output,
        ]
        .into_iter()
        .flatten()
        {
            *path = absolute_from(base, path);
        }
        self
    }

    /// The `PARATEST_<KEY>` layer. Values are read as TOML values when they
    /// parse as one (`4`, `true`), else as strings (`5m`, `copy`).
    pub fn from_env(get: impl Fn(&str) -> Option<String>, cwd: &Path) -> Result<Profile> {
        let inside_a_test = get("PARATEST").as_deref() == Some("1");
        let mut table = toml::Table::new();
        let mut names = Vec::new();
        for key in PROFILE_KEYS {
            if inside_a_test && SET_FOR_TESTS.contains(key) {
                continue;
            }
            let name = format!("PARATEST_{}", key.to_uppercase().replace('-', "_"));
            let Some(raw) = get(&name) else { continue };
            let value = format!("v = {raw}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .filter(|v| !v.is_table() && !v.is_array())
                .unwrap_or(toml::Value::String(raw));
            table.insert(key.to_string(), value);
            names.push(name);
        }
        let profile = Profile::deserialize(toml::Value::Table(table)).map_err(|e| {
            Error::with_cause(
                Kind::Usage,
                format!("invalid environment setting ({})", names.join(", ")),
                e,
            )
        })?;
        Ok(profile.resolve_paths(cwd))
    }
}

/// Where a layer of settings came from, so that an error names the option
/// the way the user wrote it.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    CommandLine,
    Environment,
    /// `paratest.toml` at this path.
    File(&'a Path),
}

impl Origin<'_> {
    /// `--workers`, `PARATEST_WORKERS` or `` `workers` in /s/paratest.toml ``.
    pub fn name(&self, key: &str) -> String {
        match self {
            Origin::CommandLine => format!("--{key}"),
            Origin::Environment => format!("PARATEST_{}", key.to_uppercase().replace('-', "_")),
            Origin::File(path) => format!("`{key}` in {}", path.display()),
        }
    }
}

/// The most workers (and workspaces) one run may have.
pub const MAX_WORKERS: usize = 1024;
/// The most extra attempts a failing test may get.
pub const MAX_RETRIES: u32 = 100;
/// The longest time limit any setting takes (a week): longer is a typo, and
/// far longer overflows the clock.
pub const MAX_TIME_LIMIT: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a plugin's discovery may take unless `discovery-timeout` says otherwise.
pub const DEFAULT_DISCOVERY_TIMEOUT: Duration = Duration::from_secs(600);

impl Profile {
    /// Checks every value of this layer against its valid range; the error
    /// names the option as `origin` spells it, the range and the value.
    pub fn validate(&self, origin: Origin<'_>) -> Result<()> {
        let out_of_range = |key: &str, range: &str, got: &dyn std::fmt::Display| {
            Error::usage(format!(
                "invalid {}: must be {range}; got {got}",
                origin.name(key)
            ))
        };
        if let Some(workers) = self.workers
            && !(1..=MAX_WORKERS).contains(&workers)
        {
            return Err(out_of_range(
                "workers",
                &format!("between 1 and {MAX_WORKERS}"),
                &workers,
            ));
        }
        if self.max_fail == Some(0) {
            return Err(out_of_range("max-fail", "at least 1", &0));
        }
        if let Some(retries) = self.retries
            && retries > MAX_RETRIES
        {
            return Err(out_of_range(
                "retries",
                &format!("between 0 and {MAX_RETRIES}"),
                &retries,
            ));
        }
        for (key, value) in [
            ("timeout", self.timeout),
            ("slow-timeout", self.slow_timeout),
            ("discovery-timeout", self.discovery_timeout),
        ] {
            if let Some(HumanDuration(duration)) = value
                && (duration.is_zero() || duration > MAX_TIME_LIMIT)
            {
                return Err(out_of_range(
                    key,
                    "more than 0s and at most 7days (one week)",
                    &humantime::format_duration(duration),
                ));
            }
        }
        if let Some(text) = self.partition.as_deref()
            && text != "auto"
        {
            text.parse::<crate::schedule::partition::Partition>()
                .map_err(|why| {
                    Error::usage(format!("invalid {}: {why}", origin.name("partition")))
                })?;
        }
        Ok(())
    }
}

/// `path` made absolute against `base`, with `.` and `..` resolved
/// lexically, so that tests see `/a/ws`, never `/a/b/../ws`.
pub fn absolute_from(base: &Path, path: &Path) -> PathBuf {
    use std::path::Component;
    let mut absolute = PathBuf::new();
    for component in base.join(path).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                absolute.pop();
            }
            other => absolute.push(other),
        }
    }
    absolute
}

/// `paratest.toml`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    profile: BTreeMap<String, Profile>,
    #[serde(default)]
    plugin: BTreeMap<String, toml::Table>,
    #[serde(default, rename = "test-groups")]
    test_groups: BTreeMap<String, TestGroup>,
}

/// The loaded `paratest.toml` of a source.
#[derive(Debug, Default)]
pub struct ProjectConfig {
    pub path: Option<PathBuf>,
    profiles: BTreeMap<String, Profile>,
    pub plugins: BTreeMap<String, toml::Table>,
    pub test_groups: BTreeMap<String, TestGroup>,
}

pub const CONFIG_FILE: &str = "paratest.toml";

impl ProjectConfig {
    /// Reads `paratest.toml` at the source root; no file is an empty config.
    pub fn load(source: &Path) -> Result<ProjectConfig> {
        let path = source.join(CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ProjectConfig::default());
            }
            Err(e) => {
                return Err(Error::with_cause(
                    Kind::Usage,
                    format!("cannot read {}", path.display()),
                    e,
                ));
            }
        };
        Self::parse(&text, &path, source)
    }

    pub fn parse(text: &str, path: &Path, source: &Path) -> Result<ProjectConfig> {
        // toml's message names the line, the column and the key.
        let file: ConfigFile = toml::from_str(text).map_err(|e| {
            Error::usage(format!(
                "invalid {}: {}",
                path.display(),
                e.to_string().trim_end()
            ))
        })?;
        let profiles: BTreeMap<String, Profile> = file
            .profile
            .into_iter()
            .map(|(name, profile)| (name, profile.resolve_paths(source)))
            .collect();
        check_overrides(text, path, &profiles, &file.test_groups)?;
        Ok(ProjectConfig {
            path: Some(path.to_path_buf()),
            profiles,
            plugins: file.plugin,
            test_groups: file.test_groups,
        })
    }

    /// The named profile over `default`. An explicitly named profile must
    /// exist; `ci` is used where `CI` is set only if it is defined.
    pub fn profile(&self, name: Option<&str>, ci: bool) -> Result<Profile> {
        let default = self.profiles.get("default").cloned().unwrap_or_default();
        let chosen = match name {
            Some("default") => return Ok(default),
            Some(name) => self.profiles.get(name).cloned().ok_or_else(|| {
                let known: Vec<_> = self.profiles.keys().map(String::as_str).collect();
                Error::usage(format!(
                    "profile `{name}` is not defined in {} (defined: {})",
                    self.path
                        .as_deref()
                        .unwrap_or(Path::new(CONFIG_FILE))
                        .display(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ))
            })?,
            None if ci => self.profiles.get("ci").cloned().unwrap_or_default(),
            None => Profile::default(),
        };
        // Overrides add up, the chosen profile's first (nextest's order).
        let overrides: Vec<Override> = [&chosen.overrides, &default.overrides]
            .into_iter()
            .flatten()
            .flatten()
            .cloned()
            .collect();
        let mut merged = chosen.overlay(default);
        merged.overrides = (!overrides.is_empty()).then_some(overrides);
        Ok(merged)
    }
}

/// Every override's filter parses, names no `group()` (groups come from
/// overrides), and its test group is defined; every group's limits make
/// sense. Errors name the file and the line.
fn check_overrides(
    text: &str,
    path: &Path,
    profiles: &BTreeMap<String, Profile>,
    groups: &BTreeMap<String, TestGroup>,
) -> Result<()> {
    let line_of = |offset: usize| text[..offset.min(text.len())].lines().count().max(1);
    for (name, group) in groups {
        if group.max_threads == Some(0) {
            return Err(Error::usage(format!(
                "invalid {}: `max-threads` of [test-groups.{name}] must be at least 1; got 0",
                path.display()
            )));
        }
    }
    for (profile, settings) in profiles {
        for rule in settings.overrides.iter().flatten() {
            let at = format!(
                "{}:{}: [[profile.{profile}.overrides]]",
                path.display(),
                line_of(rule.filter.span().start)
            );
            Profile {
                retries: rule.retries,
                timeout: rule.timeout,
                slow_timeout: rule.slow_timeout,
                ..Profile::default()
            }
            .validate(Origin::File(path))
            .map_err(|e| Error::usage(format!("{at}: {e}")))?;
            let filter = crate::filterset::Filterset::parse(rule.filter.get_ref())
                .map_err(|e| Error::usage(format!("invalid {at} `filter`: {e}")))?;
            if filter.uses_group() {
                return Err(Error::usage(format!(
                    "invalid {at} `filter`: `group()` cannot choose a test group's members"
                )));
            }
            if let Some(group) = &rule.test_group
                && group != "@global"
                && !groups.contains_key(group)
            {
                let known: Vec<&str> = groups.keys().map(String::as_str).collect();
                return Err(Error::usage(format!(
                    "invalid {at} `test-group`: `{group}` is not defined in [test-groups] (defined: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )));
            }
            if let Some(priority) = rule.priority
                && !(-100..=100).contains(&priority)
            {
                return Err(Error::usage(format!(
                    "invalid {at} `priority`: must be between -100 and 100; got {priority}"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn relative_paths_become_clean_absolute_paths() {
        assert_eq!(
            absolute_from(Path::new("/a/b"), Path::new("../ws/./x")),
            Path::new("/a/ws/x")
        );
        assert_eq!(
            absolute_from(Path::new("/a"), Path::new("/abs")),
            Path::new("/abs")
        );
        let cli = Profile {
            output: Some("logs".into()),
            ..Default::default()
        }
        .resolve_paths(Path::new("/cwd"));
        assert_eq!(cli.output.as_deref(), Some(Path::new("/cwd/logs")));
    }

    #[test]
    fn every_key_is_accepted_by_a_profile() {
        for key in PROFILE_KEYS {
            let err = toml::from_str::<Profile>(&format!("{key} = []"))
                .unwrap_err()
                .to_string();
            assert!(!err.contains("unknown field"), "{key}: {err}");
        }
    }

    #[test]
    fn profiles_inherit_default_and_ci_is_chosen_under_ci() {
        let text = "[profile.default]\nworkers = 4\nretries = 1\n[profile.ci]\nretries = 2\njunit = \"target/j.xml\"\n";
        let config =
            ProjectConfig::parse(text, Path::new("/s/paratest.toml"), Path::new("/s")).unwrap();
        let ci = config.profile(None, true).unwrap();
        assert_eq!((ci.workers, ci.retries), (Some(4), Some(2)));
        assert_eq!(ci.junit.as_deref(), Some(Path::new("/s/target/j.xml")));
        let local = config.profile(None, false).unwrap();
        assert_eq!((local.workers, local.retries), (Some(4), Some(1)));
        assert!(
            config
                .profile(Some("nope"), false)
                .unwrap_err()
                .to_string()
                .contains("ci, default")
        );
    }

    #[test]
    fn ci_profile_is_optional_under_ci() {
        let config = ProjectConfig::parse(
            "[profile.default]\nworkers = 3\n",
            Path::new("p"),
            Path::new("/s"),
        )
        .unwrap();
        assert_eq!(config.profile(None, true).unwrap().workers, Some(3));
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = "[profile.default]\nworkers = 2\nretrys = 3\n";
        let err =
            ProjectConfig::parse(text, Path::new("/s/paratest.toml"), Path::new("/s")).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("/s/paratest.toml"), "{message}");
        assert!(message.contains("line 3"), "{message}");
        assert!(message.contains("retrys"), "{message}");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn wrong_type_and_bad_duration_are_errors() {
        for text in [
            "[profile.default]\nworkers = \"four\"\n",
            "[profile.default]\ntimeout = \"soon\"\n",
            "[profile.default]\nisolation = \"docker\"\n",
        ] {
            let err = ProjectConfig::parse(text, Path::new("/s/paratest.toml"), Path::new("/s"))
                .unwrap_err();
            assert!(err.to_string().contains("line 2"), "{err}");
        }
    }

    #[test]
    fn command_line_beats_environment_beats_profile() {
        let profile = Profile {
            workers: Some(8),
            retries: Some(1),
            timeout: Some(HumanDuration(Duration::from_secs(60))),
            ..Default::default()
        };
        let from_env = Profile::from_env(
            env(&[("PARATEST_WORKERS", "3"), ("PARATEST_TIMEOUT", "5m")]),
            Path::new("/"),
        )
        .unwrap();
        let cli = Profile {
            workers: Some(2),
            ..Default::default()
        };
        let merged = cli.overlay(from_env).overlay(profile);
        assert_eq!(merged.workers, Some(2));
        assert_eq!(
            merged.timeout,
            Some(HumanDuration(Duration::from_secs(300)))
        );
        assert_eq!(merged.retries, Some(1));
    }

    #[test]
    fn environment_inside_a_test_does_not_leak_into_a_nested_run() {
        let vars = env(&[
            ("PARATEST", "1"),
            ("PARATEST_WORKERS", "7"),
            ("PARATEST_RETRIES", "2"),
        ]);
        let profile = Profile::from_env(vars, Path::new("/")).unwrap();
        assert_eq!((profile.workers, profile.retries), (None, Some(2)));
    }

    #[test]
    fn bad_environment_value_is_a_usage_error() {
        let err =
            Profile::from_env(env(&[("PARATEST_WORKERS", "lots")]), Path::new("/")).unwrap_err();
        assert!(err.to_string().contains("PARATEST_WORKERS"), "{err}");
        assert_eq!(err.exit_code(), 2);
    }
}
