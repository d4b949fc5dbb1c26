//! Per-test settings: the profile's values, changed for the tests an
//! `[[profile.NAME.overrides]]` filter matches. For each setting the first
//! matching override that sets it wins (nextest's rule).

use std::time::Duration;

use crate::config::{Choice, DEFAULT_SLOW_TIMEOUT, Profile};
use crate::error::{Error, Result};
use crate::filterset::{Filterset, TestFacts};
use crate::model::TestCase;

/// The group of tests no override puts in a group (nextest's name).
pub const GLOBAL_GROUP: &str = "@global";

/// One test's effective settings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TestSettings {
    pub retries: u32,
    #[serde(serialize_with = "seconds")]
    pub timeout: Option<Duration>,
    #[serde(serialize_with = "seconds")]
    pub slow_timeout: Option<Duration>,
    pub flaky_result: &'static str,
    pub workspace_reset: &'static str,
    pub test_group: String,
    pub priority: i32,
}

fn seconds<S: serde::Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(duration) => s.serialize_some(&duration.as_secs_f64()),
        None => s.serialize_none(),
    }
}

impl TestSettings {
    pub fn flaky_fails(&self) -> bool {
        self.flaky_result == "fail"
    }

    pub fn resets_on_failure(&self) -> bool {
        self.workspace_reset == "on-failure"
    }
}

/// The facts a filterset sees of `test` under `plugin`.
pub fn facts<'a>(test: &'a TestCase, plugin: &str, group: &'a str) -> TestFacts<'a> {
    if plugin == "cargo" {
        TestFacts::cargo(test, group)
    } else {
        TestFacts::other(test, group)
    }
}

/// Every test's settings, by index: `forced` (the command line and the
/// environment) first, then the first matching override, then `settings`
/// (the whole profile). Filters were checked when the file was read; here
/// they must also suit the plugin.
pub fn resolve(
    settings: &Profile,
    forced: &Profile,
    plugin: &str,
    tests: &[TestCase],
) -> Result<Vec<TestSettings>> {
    let rules = settings.overrides.as_deref().unwrap_or_default();
    let mut filters = Vec::with_capacity(rules.len());
    for rule in rules {
        let filter = Filterset::parse(rule.filter.get_ref())
            .map_err(|e| Error::usage(format!("invalid override filter: {e}")))?;
        filter
            .check_plugin(plugin)
            .map_err(|e| Error::usage(format!("invalid override filter: {e}")))?;
        filters.push(filter);
    }
    Ok(tests
        .iter()
        .map(|test| {
            let facts = facts(test, plugin, GLOBAL_GROUP);
            let matching: Vec<_> = rules
                .iter()
                .zip(&filters)
                .filter(|(_, filter)| filter.matches(&facts))
                .map(|(rule, _)| rule)
                .collect();
            let flaky = forced
                .flaky_result
                .or_else(|| matching.iter().find_map(|r| r.flaky_result))
                .or(settings.flaky_result)
                .unwrap_or_default();
            let reset = forced
                .workspace_reset
                .or_else(|| matching.iter().find_map(|r| r.workspace_reset))
                .or(settings.workspace_reset)
                .unwrap_or_default();
            TestSettings {
                retries: forced
                    .retries
                    .or_else(|| matching.iter().find_map(|r| r.retries))
                    .or(settings.retries)
                    .unwrap_or(0),
                timeout: forced
                    .timeout
                    .or_else(|| matching.iter().find_map(|r| r.timeout))
                    .or(settings.timeout)
                    .map(|t| t.0),
                slow_timeout: Some(
                    forced
                        .slow_timeout
                        .or_else(|| matching.iter().find_map(|r| r.slow_timeout))
                        .or(settings.slow_timeout)
                        .map_or(DEFAULT_SLOW_TIMEOUT, |t| t.0),
                ),
                flaky_result: flaky.name(),
                workspace_reset: reset.name(),
                test_group: matching
                    .iter()
                    .find_map(|r| r.test_group.clone())
                    .unwrap_or_else(|| GLOBAL_GROUP.to_string()),
                priority: matching.iter().find_map(|r| r.priority).unwrap_or(0),
            }
        })
        .collect())
}
