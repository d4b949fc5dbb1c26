//! What `run`, `list` and `archive` share: the resolved settings and the
//! plugin, discovery and the selection.

use std::path::{Path, PathBuf};

use crate::cli::SelectArgs;
use crate::config::{MessageFormat, Profile, RunConfig};
use crate::error::{Error, Result};
use crate::filterset::Filterset;
use crate::model::TestCase;
use crate::overrides;
use crate::plugin::{self, DiscoverContext};
use crate::process::Watchdog;
use crate::report::console::Console;
use crate::report::json;
use crate::runs::paratest_dir;
use crate::schedule::timings::Timings;
use crate::selection::Selection;

/// What `run` and `list` share: the resolved settings and the plugin.
pub(super) struct Prepared {
    pub(super) config: RunConfig,
    pub(super) plugin: plugin::Selected,
}

/// `prepared.source`, `prepared.settings`, ...: the config's fields are the
/// prepared command's.
impl std::ops::Deref for Prepared {
    type Target = RunConfig;
    fn deref(&self) -> &RunConfig {
        &self.config
    }
}

/// `run` and `list`: with `--archive-file`, the archive is unpacked and its
/// tests are the ones run.
pub(super) fn prepare(select: &SelectArgs, cli_layer: Profile) -> Result<Prepared> {
    let unpacked = match &select.archive_file {
        Some(file) => Some(crate::archive::unpack(file)?),
        None => None,
    };
    prepare_in(select, cli_layer, unpacked)
}

pub(super) fn prepare_in(
    select: &SelectArgs,
    cli_layer: Profile,
    unpacked: Option<crate::archive::Unpacked>,
) -> Result<Prepared> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::with_cause(crate::error::Kind::Usage, "no current directory", e))?;
    let unpacked_source = match &unpacked {
        Some(unpacked) if select.source.is_none() => {
            Some(crate::archive::source_of(unpacked, &cwd)?)
        }
        _ => None,
    };
    let config = RunConfig::resolve(select.request(cli_layer, unpacked_source), &cwd, |name| {
        std::env::var(name).ok()
    })?;
    let plugin = match unpacked {
        Some(unpacked) => crate::archive::plugin(unpacked, config.settings.plugin.as_deref())?,
        None => plugin::select(
            config.settings.plugin.as_deref(),
            &config.source,
            &config.project.plugins,
        )?,
    };
    Ok(Prepared { config, plugin })
}

/// `--source`, else the Cargo workspace root above the current directory (or
/// `--manifest-path`), else the current directory.
pub(super) fn find_source(select: &SelectArgs, cwd: &Path) -> Result<PathBuf> {
    crate::config::resolve::find_source(
        select.source.as_deref(),
        select.cargo.manifest_path.as_deref(),
        select.plugin.as_deref(),
        cwd,
    )
}

/// Creates `.paratest/` with a `.gitignore` that ignores it whole.
pub(super) fn ensure_paratest_dir(source: &Path) {
    let dir = paratest_dir(source);
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = crate::runs::ignore_in_git(&dir);
    }
}

/// What workspaces and discovery leave out of the source besides the
/// fixed names: the log directory and a `--target-dir` inside it.
pub(super) fn excluded_paths(output: Option<&Path>, select: &SelectArgs) -> Vec<PathBuf> {
    output
        .map(Path::to_path_buf)
        .into_iter()
        .chain(
            select
                .cargo
                .target_dir
                .iter()
                .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone())),
        )
        .collect()
}

pub(super) fn discover(
    prepared: &Prepared,
    select: &SelectArgs,
    selection: &Selection,
    verbose_build: bool,
    watchdog: &Watchdog,
    excluded: &[PathBuf],
) -> Result<Vec<TestCase>> {
    let cargo = cargo_options(prepared, select);
    let ctx = DiscoverContext {
        source: &prepared.source,
        cargo: &cargo,
        ignored: selection.ignored,
        settings: prepared.project.plugins.get(prepared.plugin.name()),
        test_args: &selection.test_args,
        // `--cargo-verbose` asks to see cargo's own output, also for `list`.
        verbose_build: verbose_build || select.cargo.cargo_verbose > 0,
        patterns: &select.test_pattern,
        watchdog,
        excluded,
        discovery_timeout: prepared.discovery_timeout,
    };
    // A malformed expression is a usage error before anything is built.
    let filtersets = select
        .filterset
        .iter()
        .map(|text| {
            let filterset = Filterset::parse(text).map_err(|e| Error::usage(format!("-E: {e}")))?;
            filterset
                .check_plugin(prepared.plugin.name())
                .map_err(|e| Error::usage(format!("-E: {e}")))?;
            Ok(filterset)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut tests = prepared.plugin.discover(&ctx)?;
    tests.retain(|test| selection.matches(test));
    if !filtersets.is_empty() {
        let plugin = prepared.plugin.name();
        let settings = overrides::resolve(&prepared.settings, &prepared.forced, plugin, &tests)?;
        let keep: Vec<bool> = tests
            .iter()
            .zip(&settings)
            .map(|(test, settings)| {
                let facts = overrides::facts(test, plugin, &settings.test_group);
                filtersets.iter().any(|f| f.matches(&facts))
            })
            .collect();
        let mut keep = keep.into_iter();
        tests.retain(|_| keep.next().unwrap_or(false));
    }
    tests.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(pair) = tests.windows(2).find(|pair| pair[0].id == pair[1].id) {
        return Err(Error::cannot_run(format!(
            "plugin `{}` reported the test `{}` twice",
            prepared.plugin.name(),
            pair[0].id
        )));
    }
    Ok(tests)
}

/// Cargo's options, with the member directory the command runs in.
pub(super) fn cargo_options(
    prepared: &Prepared,
    select: &SelectArgs,
) -> crate::config::CargoOptions {
    let mut cargo = select.cargo.options();
    if prepared.plugin.name() == "cargo" && select.source.is_none() {
        cargo.manifest_path = cargo
            .manifest_path
            .or_else(|| member_manifest(&prepared.source));
    }
    cargo
}

/// `cargo test`'s rule: run from a member directory of a Cargo workspace,
/// only that member is tested. The source is the workspace root, so the
/// member's manifest (the nearest `Cargo.toml` above the current
/// directory, when it is not the root's) goes to cargo as `--manifest-path`;
/// `-p`, `--workspace` and `--exclude` then keep cargo's meaning.
pub(super) fn member_manifest(source: &Path) -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    let nearest = cwd
        .ancestors()
        .map(|dir| dir.join("Cargo.toml"))
        .find(|manifest| manifest.is_file())?;
    let root = source.join("Cargo.toml");
    let same = |a: &Path, b: &Path| a.canonicalize().ok() == b.canonicalize().ok();
    let inside = nearest
        .canonicalize()
        .ok()
        .zip(source.canonicalize().ok())
        .is_some_and(|(manifest, source)| manifest.starts_with(source));
    (inside && !same(&nearest, &root)).then_some(nearest)
}

/// The selection of `run` or `list`: libtest's selection arguments after
/// `--` count for the Cargo plugin.
pub(super) fn selection(
    prepared: &Prepared,
    select: &SelectArgs,
    test_args: &[String],
) -> Result<Selection> {
    Selection::new(select, test_args, prepared.plugin.name() == "cargo")
}

/// Higher `priority` first; within one priority the order stays (longest first).
pub(super) fn by_priority(order: &mut [usize], settings: &[overrides::TestSettings]) {
    order.sort_by_key(|&index| std::cmp::Reverse(settings[index].priority));
}

/// The partition asked for, if any (see [`RunConfig::partition`]).
pub(super) fn partition(
    config: &RunConfig,
) -> Result<Option<crate::schedule::partition::Partition>> {
    config.partition(|name| std::env::var(name).ok())
}

/// A problem that does not stop the command: a line on stderr (above the
/// progress bar when there is one) and, in JSON mode, a `warning` event.
pub(super) fn warn(format: MessageFormat, console: Option<&Console>, message: &str) {
    match console {
        Some(console) => console.line(&format!("warning: {message}")),
        None => eprintln!("warning: {message}"),
    }
    match format {
        MessageFormat::Human => {}
        MessageFormat::Json => json::print(&json::JsonEvent::Warning { message }),
        MessageFormat::Teamcity => crate::report::teamcity::print_warning(message),
    }
}

pub(super) fn load_timings(path: &Path, format: MessageFormat) -> Timings {
    let (timings, warning) = Timings::load(path);
    if let Some(warning) = warning {
        warn(format, None, &warning);
    }
    timings
}
