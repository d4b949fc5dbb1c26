//! `paratest.toml`: its profiles (each a [`Profile`] layer, inheriting
//! `default`), per-test overrides, test groups and plugin tables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Origin, Override, Profile};
use crate::error::{Error, Kind, Result};

pub const CONFIG_FILE: &str = "paratest.toml";

/// `[test-groups.NAME]`: how many tests of the group may run at once.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TestGroup {
    /// At most this many of the group's tests at once, over all workers.
    pub max_threads: Option<usize>,
    /// A test of the group runs with no other test running at all.
    pub exclusive: Option<bool>,
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
}
