//! Cargo's own options on our command line, with Cargo's meaning, and how
//! they are given back to cargo.

use std::path::PathBuf;

use clap::Args;

use crate::config::CargoOptions;

/// Cargo's options, with Cargo's meaning.
#[derive(Debug, Args)]
#[command(next_help_heading = "Cargo")]
pub struct CargoArgs {
    /// Path to Cargo.toml.
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// Package to test (repeatable).
    #[arg(short, long = "package", value_name = "SPEC")]
    pub package: Vec<String>,
    /// Test all packages of the Cargo workspace.
    #[arg(long)]
    pub workspace: bool,
    /// Exclude packages (with --workspace).
    #[arg(long, value_name = "SPEC")]
    pub exclude: Vec<String>,
    /// Features to activate (space or comma separated).
    #[arg(short = 'F', long, value_name = "FEATURES")]
    pub features: Vec<String>,
    /// Activate all features.
    #[arg(long)]
    pub all_features: bool,
    /// Do not activate the `default` feature.
    #[arg(long)]
    pub no_default_features: bool,
    /// Build in release mode.
    #[arg(long)]
    pub release: bool,
    /// Cargo build profile.
    #[arg(long, value_name = "NAME")]
    pub cargo_profile: Option<String>,
    /// Build for the target triple.
    #[arg(long, value_name = "TRIPLE")]
    pub target: Option<String>,
    /// Cargo's target directory.
    #[arg(long, value_name = "DIR")]
    pub target_dir: Option<PathBuf>,
    /// Test only the library.
    #[arg(long)]
    pub lib: bool,
    /// Test all binaries.
    #[arg(long)]
    pub bins: bool,
    /// Test all integration tests.
    #[arg(long)]
    pub tests: bool,
    /// Test only this integration test (repeatable).
    #[arg(long, value_name = "NAME")]
    pub test: Vec<String>,
    /// Test only this binary's unit tests (repeatable).
    #[arg(long, value_name = "NAME")]
    pub bin: Vec<String>,
    /// Test this example (repeatable).
    #[arg(long, value_name = "NAME")]
    pub example: Vec<String>,
    /// Test all examples.
    #[arg(long)]
    pub examples: bool,
    /// Test all targets (lib, bins, tests, benches, examples).
    #[arg(long)]
    pub all_targets: bool,
    /// Require Cargo.lock to be up to date (cargo's `--locked`).
    #[arg(long)]
    pub locked: bool,
    /// Require Cargo.lock and the cache to be up to date (cargo's `--frozen`).
    #[arg(long)]
    pub frozen: bool,
    /// Run cargo without accessing the network.
    #[arg(long)]
    pub offline: bool,
    /// Override a cargo configuration value (`KEY=VALUE` or a file; repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub cargo_config: Vec<String>,
    /// Unstable (nightly-only) flag for cargo (repeatable).
    #[arg(short = 'Z', value_name = "FLAG")]
    pub unstable_flags: Vec<String>,
    /// Number of parallel build jobs (cargo's `-j`; `-j` here is the number of workers).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub build_jobs: Option<std::num::NonZeroI32>,
    /// Cargo's own verbose output (cargo's `-v`; repeat for `-vv`); the build log is shown.
    #[arg(long, action = clap::ArgAction::Count, conflicts_with = "cargo_quiet")]
    pub cargo_verbose: u8,
    /// Cargo's `--quiet`: no build progress.
    #[arg(long)]
    pub cargo_quiet: bool,
}

impl CargoArgs {
    /// Cargo's options, with paths made absolute: cargo runs in the source,
    /// not necessarily where the user typed them.
    pub fn options(&self) -> CargoOptions {
        let absolute = |path: &PathBuf| std::path::absolute(path).unwrap_or_else(|_| path.clone());
        CargoOptions {
            manifest_path: self.manifest_path.as_ref().map(absolute),
            packages: self.package.clone(),
            workspace: self.workspace,
            exclude: self.exclude.clone(),
            features: self.features.clone(),
            all_features: self.all_features,
            no_default_features: self.no_default_features,
            release: self.release,
            cargo_profile: self.cargo_profile.clone(),
            target: self.target.clone(),
            target_dir: self.target_dir.as_ref().map(absolute),
            lib: self.lib,
            bins: self.bins,
            tests: self.tests,
            test: self.test.clone(),
            global_flags: self.global_flags(),
            build_flags: self.build_flags(),
        }
    }

    /// Flags every cargo command takes, in cargo's spelling.
    fn global_flags(&self) -> Vec<String> {
        let mut flags: Vec<String> = [
            (self.locked, "--locked"),
            (self.frozen, "--frozen"),
            (self.offline, "--offline"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| name.to_string())
        .collect();
        for value in &self.cargo_config {
            flags.extend(["--config".to_string(), value.clone()]);
        }
        for value in &self.unstable_flags {
            flags.extend(["-Z".to_string(), value.clone()]);
        }
        flags
    }

    /// Target selection and build flags, in cargo's spelling.
    fn build_flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        for name in &self.bin {
            flags.extend(["--bin".to_string(), name.clone()]);
        }
        for name in &self.example {
            flags.extend(["--example".to_string(), name.clone()]);
        }
        for (on, name) in [
            (self.examples, "--examples"),
            (self.all_targets, "--all-targets"),
            (self.cargo_quiet, "--quiet"),
        ] {
            if on {
                flags.push(name.to_string());
            }
        }
        if self.cargo_verbose > 0 {
            flags.push(format!("-{}", "v".repeat(self.cargo_verbose.into())));
        }
        if let Some(jobs) = self.build_jobs {
            flags.extend(["--jobs".to_string(), jobs.to_string()]);
        }
        flags
    }
}
