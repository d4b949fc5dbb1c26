//! One layer of settings ([`Profile`]: a `paratest.toml` profile, the
//! `PARATEST_*` environment, or the command line), how layers stack, and
//! each layer's validation (the error names the option as the user wrote it).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{FlakyResult, HumanDuration, Isolation, MessageFormat, NoTests, WorkspaceReset};
use crate::error::{Error, Kind, Result};

/// Defines [`Profile`], [`PROFILE_KEYS`] and [`Profile::overlay`] from one
/// table: a setting is one line here.
macro_rules! profile {
    ($( $(#[doc = $doc:literal])* $field:ident: $type:ty = $key:literal, )*) => {
        /// One layer of settings: a `paratest.toml` profile, the environment, or the command line.
        #[derive(Debug, Clone, Default, Deserialize, PartialEq)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        pub struct Profile {
            $( $(#[doc = $doc])* pub $field: Option<$type>, )*
            /// `[[profile.NAME.overrides]]`: per-test settings, first match wins per
            /// setting (a profile's before `default`'s; see [`super::ProjectConfig::profile`]).
            pub overrides: Option<Vec<Override>>,
        }

        /// Every key a profile accepts; also the `PARATEST_<KEY>` variables read.
        pub const PROFILE_KEYS: &[&str] = &[$( $key ),*];

        impl Profile {
            /// `self` wins over `lower` key by key (overrides too: a profile's
            /// are added to `default`'s by [`super::ProjectConfig::profile`]).
            pub fn overlay(self, lower: Profile) -> Profile {
                Profile {
                    $( $field: self.$field.or(lower.$field), )*
                    overrides: self.overrides.or(lower.overrides),
                }
            }
        }
    };
}

profile! {
    workers: usize = "workers",
    isolation: Isolation = "isolation",
    workspace_root: PathBuf = "workspace-root",
    keep_workspaces: bool = "keep-workspaces",
    setup: String = "setup",
    setup_workspace: String = "setup-workspace",
    setup_test: String = "setup-test",
    teardown_test: String = "teardown-test",
    teardown_workspace: String = "teardown-workspace",
    teardown: String = "teardown",
    retries: u32 = "retries",
    timeout: HumanDuration = "timeout",
    slow_timeout: HumanDuration = "slow-timeout",
    partition: String = "partition",
    timings: PathBuf = "timings",
    /// Where the run writes its updated timings (what it read plus its samples).
    timings_out: PathBuf = "timings-out",
    junit: PathBuf = "junit",
    output: PathBuf = "output",
    plugin: String = "plugin",
    fail_fast: bool = "fail-fast",
    /// Stop scheduling after this many definite failures.
    max_fail: usize = "max-fail",
    flaky_result: FlakyResult = "flaky-result",
    workspace_reset: WorkspaceReset = "workspace-reset",
    message_format: MessageFormat = "message-format",
    no_tests: NoTests = "no-tests",
    discovery_timeout: HumanDuration = "discovery-timeout",
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

/// Variables cargo-paratest itself sets for tests. Inside a test (`PARATEST=1`)
/// they describe the outer run, so a nested run must not read them as settings.
const SET_FOR_TESTS: &[&str] = &["workers", "output", "partition"];

impl Profile {
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
                    &crate::words::limit(duration),
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
