//! The run's settings: four layers (built-in defaults < `paratest.toml`
//! profile < `PARATEST_*` environment < command line) resolved into one
//! [`RunConfig`], validated once, shared by `run`, `list` and `archive`.
//!
//! - [`layers`]: one layer ([`Profile`], all `Option`s), the environment
//!   layer, and each layer's validation.
//! - [`file`]: `paratest.toml` (profiles, overrides, test groups, plugin tables).
//! - [`resolve`]: the layers of one command merged, the source found, defaults applied.
//!
//! A new setting is written in these places, and no others:
//! 1. its line in the `profile!` table of [`layers`] (the `paratest.toml`
//!    key, the `PARATEST_<KEY>` variable and the overlay all come from it);
//! 2. its flag in `cli.rs` and the flag's line in `RunArgs::profile()`;
//! 3. when it has a default, the field of [`RunConfig`] that applies it
//!    (defaults live here, beside the types: `#[default]` of a choice, or a
//!    `DEFAULT_*` constant that the flag's help text is built from);
//! 4. the README's table.
//!
//! clap never appears here: `cli` implements `clap::ValueEnum` for the
//! choices below from their [`Choice::ALL`] table.

pub mod file;
pub mod layers;
pub mod resolve;

use std::path::PathBuf;
use std::time::Duration;

pub use file::{CONFIG_FILE, ProjectConfig, TestGroup};
pub use layers::{Origin, Override, Profile};
pub use resolve::{Request, RunConfig};

/// How long a plugin's discovery may take unless `discovery-timeout` says otherwise.
pub const DEFAULT_DISCOVERY_TIMEOUT: Duration = Duration::from_secs(600);
/// The notice for a long test comes after this, unless `slow-timeout` says otherwise.
pub const DEFAULT_SLOW_TIMEOUT: Duration = Duration::from_secs(60);

/// A closed set of values a setting takes, each with its one spelling
/// (in `paratest.toml`, `PARATEST_*` and on the command line alike).
pub trait Choice: Sized + Copy + 'static {
    /// Every value: the value, its spelling, its help line (empty: none).
    const ALL: &'static [(Self, &'static str, &'static str)];
    /// The values, in order.
    const VALUES: &'static [Self];
    /// The spellings, in order (for "expected one of" errors).
    const NAMES: &'static [&'static str];

    /// The spelling of this value.
    fn name(self) -> &'static str;
}

/// Defines an enum of [`Choice`] values: the spelling and help of each
/// value and the default are written once, here.
macro_rules! choice {
    (
        $(#[$meta:meta])*
        pub enum $name:ident (default $default:ident) {
            $( $(#[doc = $doc:literal])* $variant:ident = $text:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $( $(#[doc = $doc])* $variant ),*
        }

        impl Default for $name {
            fn default() -> Self {
                $name::$default
            }
        }

        impl Choice for $name {
            const ALL: &'static [(Self, &'static str, &'static str)] =
                &[$( ($name::$variant, $text, concat!("" $(, $doc)*)) ),*];
            const VALUES: &'static [Self] = &[$( $name::$variant ),*];
            const NAMES: &'static [&'static str] = &[$( $text ),*];

            fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),*
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                <$name as Choice>::ALL
                    .iter()
                    .find(|(_, name, _)| *name == text)
                    .map(|(value, _, _)| *value)
                    .ok_or_else(|| serde::de::Error::unknown_variant(&text, <$name as Choice>::NAMES))
            }
        }
    };
}

choice! {
    /// Where each worker runs its tests.
    pub enum Isolation (default Copy) {
        /// A copy of the source without `target/`, `.paratest/`, `.git/`.
        Copy = "copy",
        /// The source itself, shared by all workers (no isolation).
        None = "none",
        /// An empty directory that `--setup-workspace` fills.
        Empty = "empty",
    }
}

choice! {
    /// What a flaky test does to the run's exit code.
    pub enum FlakyResult (default Pass) {
        Pass = "pass",
        Fail = "fail",
    }
}

choice! {
    /// When a workspace is rebuilt between tests.
    pub enum WorkspaceReset (default Never) {
        Never = "never",
        OnFailure = "on-failure",
    }
}

choice! {
    /// The console format.
    pub enum MessageFormat (default Human) {
        Human = "human",
        Json = "json",
        Teamcity = "teamcity",
    }
}

choice! {
    /// What a run whose selection is empty does (`--no-tests`).
    pub enum NoTests (default Fail) {
        /// Exit 4, "no tests to run" (nextest's code).
        Fail = "fail",
        /// A warning, exit 0.
        Warn = "warn",
        /// Exit 0.
        Pass = "pass",
    }
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

/// The six lifecycle hooks of the original ParaTest, by [`crate::hooks::Hook`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    pub setup: Option<String>,
    pub setup_workspace: Option<String>,
    pub setup_test: Option<String>,
    pub teardown_test: Option<String>,
    pub teardown_workspace: Option<String>,
    pub teardown: Option<String>,
}

impl Hooks {
    /// The command of `hook`, if one is set.
    pub fn get(&self, hook: crate::hooks::Hook) -> Option<&str> {
        use crate::hooks::Hook;
        match hook {
            Hook::Setup => &self.setup,
            Hook::SetupWorkspace => &self.setup_workspace,
            Hook::SetupTest => &self.setup_test,
            Hook::TeardownTest => &self.teardown_test,
            Hook::TeardownWorkspace => &self.teardown_workspace,
            Hook::Teardown => &self.teardown,
        }
        .as_deref()
    }
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

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spellings_round_trip<
        T: Choice + PartialEq + std::fmt::Debug + serde::de::DeserializeOwned,
    >() {
        for (value, name, _) in T::ALL {
            assert_eq!(value.name(), *name);
            let parsed: T = toml::Value::String(name.to_string()).try_into().unwrap();
            assert_eq!(parsed, *value, "{name}");
        }
        let err = toml::Value::String("nope".into())
            .try_into::<T>()
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("`{}`", T::NAMES[0])), "{err}");
    }

    #[test]
    fn every_choice_has_one_spelling_that_parses_back() {
        spellings_round_trip::<Isolation>();
        spellings_round_trip::<FlakyResult>();
        spellings_round_trip::<WorkspaceReset>();
        spellings_round_trip::<MessageFormat>();
        spellings_round_trip::<NoTests>();
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        assert_eq!(Isolation::default(), Isolation::Copy);
        assert_eq!(MessageFormat::default(), MessageFormat::Human);
        assert_eq!(NoTests::default(), NoTests::Fail);
        assert_eq!(FlakyResult::default(), FlakyResult::Pass);
        assert_eq!(WorkspaceReset::default(), WorkspaceReset::Never);
    }

    #[test]
    fn hooks_are_named_by_their_hook() {
        use crate::hooks::Hook;
        let hooks = Hooks {
            setup_test: Some("a".into()),
            teardown: Some("b".into()),
            ..Hooks::default()
        };
        assert_eq!(hooks.get(Hook::SetupTest), Some("a"));
        assert_eq!(hooks.get(Hook::Teardown), Some("b"));
        assert_eq!(hooks.get(Hook::Setup), None);
    }
}
