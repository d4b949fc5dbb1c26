//! Build once, run elsewhere: `cargo paratest archive --archive-file FILE`
//! writes one zstd-compressed tar holding what the tests of a Cargo project
//! need at run time, and `run --archive-file FILE` runs them on a machine
//! with no cargo, no rustc and no target directory.
//!
//! Layout of the archive, in this order:
//! - `paratest-archive.json`: the [`Manifest`] (versioned by `format_version`),
//!   always the first entry, so that a foreign or newer archive is refused
//!   before anything else is read;
//! - `target/...`: the test binaries, the binaries integration tests run
//!   (`CARGO_BIN_EXE_*`), the build-script outputs (`OUT_DIR`) of the
//!   tested packages and the dynamic libraries the executables link,
//!   at their paths relative to the target directory;
//! - `source/...`: the source as a workspace copy holds it
//!   ([`crate::workspace::walk_source`]), unless `--no-source`.
//!
//! Unpacking refuses (exit 2) anything that would write outside its
//! directory: absolute paths, `..`, links that point out, hard links,
//! device files and FIFOs.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::CargoOptions;
use crate::error::{Error, Kind, Result};
use crate::model::{EnvValue, Invocation, TestCase};
use crate::plugin::{DiscoverContext, Finished, Plugin, Selected, Verdict};
use crate::process::Watchdog;

/// The manifest's name inside the archive.
pub const MANIFEST: &str = "paratest-archive.json";
/// What `format` says in every archive of ours.
const FORMAT: &str = "cargo-paratest-archive";
/// The layout this build writes and reads; a newer one is refused.
pub const FORMAT_VERSION: u32 = 1;
const SOURCE: &str = "source";
const TARGET: &str = "target";

/// What the archive holds besides the files: the tests and how to run them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    /// `cargo-paratest X.Y.Z` that wrote it.
    pub created_by: String,
    /// Whether `source/` is in the archive (not with `--no-source`).
    pub source_included: bool,
    /// One entry per test binary.
    pub binaries: Vec<Binary>,
}

/// One test binary and its tests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Binary {
    /// The report group: nextest's binary id (`pkg::name`).
    pub id: String,
    /// Path inside the archive (`target/debug/deps/...`).
    pub program: String,
    /// Working directory, relative to the source (the package directory).
    pub cwd: String,
    pub env: Vec<EnvEntry>,
    pub tests: Vec<ArchivedTest>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchivedTest {
    pub name: String,
    pub ignored: bool,
}

/// One environment variable of a binary's tests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvEntry {
    pub name: String,
    #[serde(flatten)]
    pub value: ArchivedValue,
}

/// An environment value, with the paths that must be remapped marked.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum ArchivedValue {
    /// Given as is.
    Literal(String),
    /// Relative to the worker's workspace (`CARGO_MANIFEST_DIR`).
    Workspace(String),
    /// Relative to the unpacked archive (`CARGO_BIN_EXE_*`, `OUT_DIR`).
    Archive(String),
    /// A search path (`LD_LIBRARY_PATH`) of directories in the unpacked
    /// archive, followed by the running machine's own value.
    ArchivePaths(Vec<String>),
}

/// The variables that hold search paths of dynamic libraries.
const LIBRARY_PATHS: &[&str] = &["LD_LIBRARY_PATH", "DYLD_FALLBACK_LIBRARY_PATH"];

// --------------------------------------------------------------------------
// creating

/// What `cargo paratest archive` needs beside the discovered tests.
pub struct CreateRequest<'a> {
    pub file: &'a Path,
    pub source: &'a Path,
    pub include_source: bool,
    /// What workspaces leave out of the source (the log directory, ...).
    pub excluded: &'a [PathBuf],
    pub cargo: &'a CargoOptions,
    pub watchdog: &'a Watchdog,
}

/// What [`create`] wrote, for the summary line.
pub struct Created {
    pub binaries: usize,
    pub tests: usize,
    pub files: usize,
    pub bytes: u64,
}

/// Writes the archive of `tests` (as the Cargo plugin discovered them).
pub fn create(request: &CreateRequest<'_>, tests: &[TestCase]) -> Result<Created> {
    let target = &target_dir(request, tests)?;
    let mut files: BTreeSet<PathBuf> = BTreeSet::new();
    let mut executables: Vec<PathBuf> = Vec::new();
    let mut library_dirs: BTreeSet<PathBuf> = BTreeSet::new();
    let mut binaries: BTreeMap<String, Binary> = BTreeMap::new();
    for test in tests {
        if let Some(binary) = binaries.get_mut(&test.group) {
            binary.tests.push(ArchivedTest {
                name: test.name.clone(),
                ignored: test.ignored,
            });
            continue;
        }
        let Invocation::Argv { program, .. } = &test.invocation else {
            return Err(Error::usage(format!(
                "`{}` is not run by a test binary: only the Cargo plugin's tests can be archived",
                test.id
            )));
        };
        let program_rel = in_target(program, target, "test binary")?;
        files.insert(program.clone());
        executables.push(program.clone());
        let cwd = utf8(test.cwd.as_os_str(), "package directory")?;
        if test.cwd.is_absolute() {
            return Err(Error::usage(format!(
                "the package of `{}` ({cwd}) is outside the source {}: it cannot be archived",
                test.group,
                request.source.display()
            )));
        }
        let mut env = Vec::new();
        for (name, value) in &test.env {
            let value = match value {
                EnvValue::InWorkspace(path) => {
                    ArchivedValue::Workspace(utf8(path.as_os_str(), name)?.to_string())
                }
                EnvValue::Literal(value) if LIBRARY_PATHS.contains(&name.as_str()) => {
                    let dirs: Vec<String> = std::env::split_paths(value)
                        .filter_map(|dir| in_target(&dir, target, name).ok())
                        .collect();
                    library_dirs.extend(dirs.iter().map(|d| target.join(strip_top(d))));
                    ArchivedValue::ArchivePaths(dirs)
                }
                EnvValue::Literal(value) => {
                    let text = utf8(value, name)?;
                    let path = Path::new(text);
                    if path.is_absolute() && path.starts_with(target) {
                        let rel = in_target(path, target, name)?;
                        // The build script's output travels whole.
                        if name == "OUT_DIR" && path.is_dir() {
                            add_tree(path, &mut files)?;
                        }
                        if path.is_file() {
                            files.insert(path.to_path_buf());
                            if name.starts_with("CARGO_BIN_EXE_") {
                                executables.push(path.to_path_buf());
                            }
                        }
                        ArchivedValue::Archive(rel)
                    } else {
                        ArchivedValue::Literal(text.to_string())
                    }
                }
            };
            env.push(EnvEntry {
                name: name.clone(),
                value,
            });
        }
        binaries.insert(
            test.group.clone(),
            Binary {
                id: test.group.clone(),
                program: program_rel,
                cwd: cwd.to_string(),
                env,
                tests: vec![ArchivedTest {
                    name: test.name.clone(),
                    ignored: test.ignored,
                }],
            },
        );
    }
    files.extend(linked_libraries(&library_dirs, &executables)?);

    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        created_by: format!("cargo-paratest {}", env!("CARGO_PKG_VERSION")),
        source_included: request.include_source,
        binaries: binaries.into_values().collect(),
    };
    // Written beside and renamed: a failed archive never replaces a good one.
    let mut count = 0;
    crate::atomic::write(request.file, |out| {
        let mut encoder = zstd::Encoder::new(out, 3)?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        encoder.multithread(threads)?;
        let mut tar = tar::Builder::new(encoder);
        tar.mode(tar::HeaderMode::Deterministic);
        // Plain entries for sparse binaries: any tar reads them, zstd squeezes the holes.
        tar.sparse(false);
        let json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(json.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, MANIFEST, json.as_slice())?;
        count = 1;
        for file in &files {
            let rel = file.strip_prefix(target).map_err(io::Error::other)?;
            tar.append_path_with_name(file, Path::new(TARGET).join(rel))?;
            count += 1;
        }
        if request.include_source {
            count += append_source(&mut tar, request.source, request.excluded)?;
        }
        tar.into_inner()?.finish()?;
        Ok(())
    })
    .map_err(|e| {
        Error::with_cause(
            Kind::CannotRun,
            format!("cannot write {}", request.file.display()),
            e,
        )
    })?;
    Ok(Created {
        binaries: manifest.binaries.len(),
        tests: tests.len(),
        files: count,
        bytes: fs::metadata(request.file).map_or(0, |m| m.len()),
    })
}

/// The target directory of the discovered test binaries, which sit at
/// `TARGET/[TRIPLE/]PROFILE/deps/NAME`. Everything else the archive needs
/// from the build is in the tests' environment, as the Cargo plugin set
/// it: `CARGO_BIN_EXE_*`, `OUT_DIR`, and the library path (which holds the
/// build scripts' link-search directories inside the target directory).
fn target_dir(ctx: &CreateRequest<'_>, tests: &[TestCase]) -> Result<PathBuf> {
    let guess = tests.iter().find_map(|test| match &test.invocation {
        Invocation::Argv { program, .. } => program.ancestors().nth(3).map(Path::to_path_buf),
        Invocation::Shell(_) => None,
    });
    match guess {
        Some(guess) => Ok(target_directory(ctx, guess)),
        None => Err(Error::cannot_run("cargo built no test binary to archive")),
    }
}

/// The target directory from `cargo metadata`, which knows it for certain;
/// `guess` (from a test binary's path, one level too deep with `--target`) if it fails.
fn target_directory(ctx: &CreateRequest<'_>, guess: PathBuf) -> PathBuf {
    let command =
        crate::plugin::cargo::metadata_command(ctx.source, ctx.cargo.manifest_path.as_deref());
    if let Some(dir) = &ctx.cargo.target_dir {
        return dir.clone();
    }
    let found = ctx
        .watchdog
        .capture(command, false)
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
        .and_then(|m| m["target_directory"].as_str().map(PathBuf::from));
    found.unwrap_or(guess)
}

/// `path` as `target/REL`, or an error when it is not in the target directory.
fn in_target(path: &Path, target: &Path, what: &str) -> Result<String> {
    let rel = path.strip_prefix(target).map_err(|_| {
        Error::usage(format!(
            "{what} {} is outside the target directory {}: it cannot be archived",
            path.display(),
            target.display()
        ))
    })?;
    Ok(format!("{TARGET}/{}", utf8(rel.as_os_str(), what)?))
}

/// `target/REL` without its first component.
fn strip_top(archived: &str) -> &str {
    archived
        .strip_prefix(TARGET)
        .map_or(archived, |r| r.trim_start_matches('/'))
}

fn utf8<'a>(text: &'a std::ffi::OsStr, what: &str) -> Result<&'a str> {
    text.to_str().ok_or_else(|| {
        Error::usage(format!(
            "{what} ({}) is not UTF-8: it cannot be archived",
            text.to_string_lossy()
        ))
    })
}

/// Every file under `dir`.
fn add_tree(dir: &Path, files: &mut BTreeSet<PathBuf>) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| {
        Error::with_cause(Kind::CannotRun, format!("cannot read {}", dir.display()), e)
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => add_tree(&path, files)?,
            Ok(kind) if kind.is_file() => {
                files.insert(path);
            }
            _ => {}
        }
    }
    Ok(())
}

/// The shared libraries in `dirs` that an executable links: those whose
/// file name is in one of them (its dynamic section names what it needs).
/// Proc-macro libraries, which only the compiler loads, are left out so.
fn linked_libraries(dirs: &BTreeSet<PathBuf>, executables: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut candidates = Vec::new();
    for dir in dirs {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let is_library =
                name.ends_with(".so") || name.contains(".so.") || name.ends_with(".dylib");
            if is_library && entry.file_type().is_ok_and(|t| t.is_file()) {
                candidates.push((entry.path(), name.into_owned()));
            }
        }
    }
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mut needed = vec![false; candidates.len()];
    for exe in executables {
        let bytes = fs::read(exe).map_err(|e| {
            Error::with_cause(Kind::CannotRun, format!("cannot read {}", exe.display()), e)
        })?;
        for (i, (_, name)) in candidates.iter().enumerate() {
            if !needed[i] && memchr::memmem::find(&bytes, name.as_bytes()).is_some() {
                needed[i] = true;
            }
        }
    }
    Ok(candidates
        .into_iter()
        .zip(needed)
        .filter_map(|((path, _), needed)| needed.then_some(path))
        .collect())
}

/// The source as a workspace copy holds it, under `source/`; the number of entries.
fn append_source<W: io::Write>(
    tar: &mut tar::Builder<W>,
    source: &Path,
    excluded: &[PathBuf],
) -> io::Result<usize> {
    let mut count = 0;
    crate::workspace::walk_source(source, excluded, &mut |rel, entry, kind| {
        let name = Path::new(SOURCE).join(rel);
        if kind.is_symlink() {
            let target = fs::read_link(entry.path())?;
            if !stays_inside(&name, &target) {
                return Err(io::Error::other(format!(
                    "the symbolic link {} points outside the source ({}): an archive cannot hold it",
                    entry.path().display(),
                    target.display()
                )));
            }
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            header.set_mode(0o777);
            tar.append_link(&mut header, &name, &target)?;
        } else if kind.is_dir() {
            tar.append_dir(&name, entry.path())?;
        } else if kind.is_file() {
            tar.append_path_with_name(entry.path(), &name)?;
        } else {
            return Ok(());
        }
        count += 1;
        Ok(())
    })?;
    Ok(count)
}

/// Whether the link at `link` (a relative path inside the archive) with
/// `target` points inside the archive's own directory, judged by its path.
fn stays_inside(link: &Path, target: &Path) -> bool {
    let mut depth = link.components().count() as isize - 1;
    for component in target.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 1 {
                    // At the top of the archive: `source/..` is the archive itself, which holds
                    // nothing a link may point at, so `..` may never climb that far.
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

// --------------------------------------------------------------------------
// unpacking

/// An unpacked archive: its directory, deleted when this is dropped.
pub struct Unpacked {
    dir: tempfile::TempDir,
    pub manifest: Manifest,
}

impl Unpacked {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The source the archive holds, if it holds one.
    pub fn source(&self) -> Option<PathBuf> {
        self.manifest
            .source_included
            .then(|| self.root().join(SOURCE))
    }
}

/// Unpacks `file` into a fresh directory, refusing anything unsafe; every
/// problem with the file is a usage error naming it.
pub fn unpack(file: &Path) -> Result<Unpacked> {
    let bad = |why: String| Error::usage(format!("--archive-file {}: {why}", file.display()));
    let opened = File::open(file).map_err(|e| {
        Error::with_cause(
            Kind::Usage,
            format!("--archive-file {}: cannot open it", file.display()),
            e,
        )
    })?;
    let decoder = zstd::Decoder::new(BufReader::new(opened)).map_err(|e| bad(e.to_string()))?;
    let mut archive = tar::Archive::new(decoder);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(false);
    let dir = tempfile::Builder::new()
        .prefix("paratest-archive-")
        .tempdir()
        .map_err(|e| {
            Error::with_cause(
                Kind::CannotRun,
                "cannot create a directory to unpack into",
                e,
            )
        })?;
    let root = dir.path().to_path_buf();
    // The supervisor removes it should cargo-paratest die (SIGKILL) before
    // the temporary directory's own clean-up runs.
    crate::supervisor::tell(crate::supervisor::Message::Workspace(&root));
    let corrupt = |e: io::Error| {
        bad(format!(
            "not a cargo-paratest archive, or corrupt or truncated (a zstd-compressed tar written by `cargo paratest archive`): {e}"
        ))
    };
    let mut entries = archive.entries().map_err(corrupt)?;
    let manifest: Manifest = {
        let first = entries
            .next()
            .ok_or_else(|| {
                bad("an empty archive: not one written by `cargo paratest archive`".into())
            })?
            .map_err(corrupt)?;
        let path = first.path().map_err(corrupt)?.into_owned();
        if path != Path::new(MANIFEST) {
            return Err(bad(format!(
                "not a cargo-paratest archive: it starts with `{}`, not `{MANIFEST}`",
                path.display()
            )));
        }
        let mut text = String::new();
        let mut first = first;
        first.read_to_string(&mut text).map_err(corrupt)?;
        read_manifest(&text).map_err(bad)?
    };
    for entry in entries {
        let mut entry = entry.map_err(corrupt)?;
        let path = entry.path().map_err(corrupt)?.into_owned();
        check_entry(&entry, &path)
            .map_err(|why| bad(format!("refused entry `{}`: {why}", path.display())))?;
        let unpacked = entry.unpack_in(&root).map_err(corrupt)?;
        if !unpacked {
            return Err(bad(format!(
                "refused entry `{}`: it would be written outside the unpacked directory",
                path.display()
            )));
        }
    }
    for binary in &manifest.binaries {
        let program = root.join(&binary.program);
        if !program.is_file() {
            return Err(bad(format!(
                "corrupt: the test binary `{}` of `{}` is missing",
                binary.program, binary.id
            )));
        }
        for entry in &binary.env {
            if entry.name == "CARGO_TARGET_TMPDIR"
                && let ArchivedValue::Archive(rel) = &entry.value
            {
                let _ = fs::create_dir_all(root.join(rel));
            }
        }
    }
    Ok(Unpacked { dir, manifest })
}

/// The source of a run from `unpacked` without `--source`: the archive's
/// own copy, whose `.paratest/` (reports, timings, logs) is the one in the
/// current directory, so that the run's files outlive the unpacked copy.
pub fn source_of(unpacked: &Unpacked, cwd: &Path) -> Result<PathBuf> {
    let Some(source) = unpacked.source() else {
        return Err(Error::usage(
            "--archive-file: this archive holds no source (it was made with --no-source): \
             give --source DIR, a checkout of the sources it was built from",
        ));
    };
    let local = cwd.join(".paratest");
    fs::create_dir_all(&local)
        .and_then(|()| std::os::unix::fs::symlink(&local, source.join(".paratest")))
        .map_err(|e| {
            Error::with_cause(
                Kind::CannotRun,
                format!("cannot create {}", local.display()),
                e,
            )
        })?;
    Ok(source)
}

/// The plugin of a run from `unpacked`; only the Cargo plugin's tests are archived.
pub fn plugin(unpacked: Unpacked, asked: Option<&str>) -> Result<Selected> {
    if let Some(name) = asked.filter(|name| *name != "cargo") {
        return Err(Error::usage(format!(
            "--plugin {name} with --archive-file: an archive holds the Cargo plugin's tests"
        )));
    }
    Ok(Selected::External(Box::new(ArchivePlugin { unpacked })))
}

/// The manifest, refused if foreign or newer than this build reads.
pub fn read_manifest(text: &str) -> std::result::Result<Manifest, String> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("not a cargo-paratest archive: its {MANIFEST} is not JSON ({e})"))?;
    if value["format"] != FORMAT {
        return Err(format!(
            "not a cargo-paratest archive: its {MANIFEST} has no `\"format\": \"{FORMAT}\"`"
        ));
    }
    let version = value["format_version"].as_u64().unwrap_or(0);
    if version > u64::from(FORMAT_VERSION) || version == 0 {
        return Err(format!(
            "archive format_version {} is not supported: this cargo-paratest {} reads format_version {FORMAT_VERSION}; \
             run the archive with the cargo-paratest that wrote it ({}) or newer",
            value["format_version"],
            env!("CARGO_PKG_VERSION"),
            value["created_by"].as_str().unwrap_or("unknown")
        ));
    }
    let manifest: Manifest = serde_json::from_value(value)
        .map_err(|e| format!("corrupt: its {MANIFEST} cannot be read ({e})"))?;
    for binary in &manifest.binaries {
        for path in std::iter::once(&binary.program).chain(std::iter::once(&binary.cwd)) {
            if !is_plain_relative(Path::new(path)) {
                return Err(format!(
                    "corrupt: `{}` names the path `{path}`, which leaves the archive",
                    binary.id
                ));
            }
        }
        for entry in &binary.env {
            let paths: Vec<&String> = match &entry.value {
                ArchivedValue::Literal(_) => Vec::new(),
                ArchivedValue::Workspace(p) | ArchivedValue::Archive(p) => vec![p],
                ArchivedValue::ArchivePaths(ps) => ps.iter().collect(),
            };
            if let Some(path) = paths.into_iter().find(|p| !is_plain_relative(Path::new(p))) {
                return Err(format!(
                    "corrupt: `{}` sets {} to `{path}`, which leaves the archive",
                    binary.id, entry.name
                ));
            }
        }
    }
    Ok(manifest)
}

/// Only plain names (and `.`): no root, no `..`.
fn is_plain_relative(path: &Path) -> bool {
    path.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Why an entry may not be unpacked, if it may not.
fn check_entry<R: Read>(entry: &tar::Entry<'_, R>, path: &Path) -> std::result::Result<(), String> {
    if !is_plain_relative(path) || path.as_os_str().is_empty() {
        return Err("an absolute path or one with `..` would leave the unpacked directory".into());
    }
    let top = path.components().next().map(|c| c.as_os_str().to_owned());
    if top != Some(OsString::from(SOURCE)) && top != Some(OsString::from(TARGET)) {
        return Err(format!("archives hold only `{SOURCE}/` and `{TARGET}/`"));
    }
    let kind = entry.header().entry_type();
    match kind {
        // A sparse file (large test binaries often are) is a regular file too.
        tar::EntryType::Regular | tar::EntryType::GNUSparse | tar::EntryType::Directory => Ok(()),
        tar::EntryType::Symlink => {
            let target = entry
                .link_name()
                .map_err(|e| e.to_string())?
                .ok_or("a symbolic link without a target")?;
            if stays_inside(path, &target) {
                Ok(())
            } else {
                Err(format!(
                    "a symbolic link to {}, outside the unpacked directory",
                    target.display()
                ))
            }
        }
        tar::EntryType::Link => Err("hard links are not allowed in an archive".into()),
        tar::EntryType::Char | tar::EntryType::Block => {
            Err("device files are not allowed in an archive".into())
        }
        tar::EntryType::Fifo => Err("FIFOs are not allowed in an archive".into()),
        other => Err(format!(
            "entries of type {other:?} are not allowed in an archive"
        )),
    }
}

// --------------------------------------------------------------------------
// running

/// The Cargo plugin for the tests of an unpacked archive: the tests come
/// from the manifest, paths point into the unpacked directory, and
/// verdicts are the Cargo plugin's.
pub struct ArchivePlugin {
    pub unpacked: Unpacked,
}

impl Plugin for ArchivePlugin {
    /// The Cargo plugin's name: libtest's selection rules and stages apply.
    fn name(&self) -> &'static str {
        "cargo"
    }

    fn description(&self) -> &'static str {
        "the Cargo tests of an archive made by `cargo paratest archive`"
    }

    fn discover(&self, ctx: &DiscoverContext<'_>) -> Result<Vec<TestCase>> {
        Ok(tests_of(&self.unpacked.manifest, self.unpacked.root(), ctx))
    }

    fn judge(&self, tests: &[&TestCase], finished: &Finished<'_>) -> Vec<Verdict> {
        crate::plugin::cargo::CargoPlugin.judge(tests, finished)
    }
}

/// The manifest's tests, with the archive's paths under `root`.
fn tests_of(manifest: &Manifest, root: &Path, ctx: &DiscoverContext<'_>) -> Vec<TestCase> {
    let mut tests = Vec::new();
    for binary in &manifest.binaries {
        let env: Vec<(String, EnvValue)> = binary
            .env
            .iter()
            .map(|entry| {
                let value = match &entry.value {
                    ArchivedValue::Literal(v) => EnvValue::Literal(v.into()),
                    ArchivedValue::Workspace(p) => EnvValue::InWorkspace(p.into()),
                    ArchivedValue::Archive(p) => EnvValue::Literal(root.join(p).into()),
                    ArchivedValue::ArchivePaths(ps) => {
                        let mut dirs: Vec<PathBuf> = ps.iter().map(|p| root.join(p)).collect();
                        dirs.extend(
                            std::env::var_os(&entry.name)
                                .iter()
                                .flat_map(std::env::split_paths),
                        );
                        EnvValue::Literal(std::env::join_paths(dirs).unwrap_or_default())
                    }
                };
                (entry.name.clone(), value)
            })
            .collect();
        let program = root.join(&binary.program);
        for test in &binary.tests {
            tests.push(TestCase {
                id: format!("{} {}", binary.id, test.name),
                group: binary.id.clone(),
                name: test.name.clone(),
                invocation: Invocation::Argv {
                    program: program.clone(),
                    args: crate::plugin::cargo::libtest_args(&test.name, test.ignored, ctx),
                },
                cwd: PathBuf::from(&binary.cwd),
                env: env.clone(),
                ignored: test.ignored,
            });
        }
    }
    tests
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_inside_and_out() {
        assert!(stays_inside(Path::new("source/a/l"), Path::new("../b")));
        assert!(stays_inside(Path::new("source/l"), Path::new("a/b")));
        assert!(!stays_inside(Path::new("source/l"), Path::new("../..")));
        assert!(!stays_inside(Path::new("source/l"), Path::new("..")));
        assert!(!stays_inside(Path::new("source/l"), Path::new("/etc")));
        assert!(!stays_inside(
            Path::new("source/a/l"),
            Path::new("../../../x")
        ));
    }

    #[test]
    fn newer_and_foreign_manifests_are_refused() {
        let newer = format!(r#"{{"format":"{FORMAT}","format_version":99,"created_by":"x"}}"#);
        assert!(
            read_manifest(&newer)
                .unwrap_err()
                .contains("format_version 99")
        );
        assert!(
            read_manifest(r#"{"format":"other"}"#)
                .unwrap_err()
                .contains("not a cargo-paratest")
        );
        let escape = format!(
            r#"{{"format":"{FORMAT}","format_version":1,"created_by":"x","source_included":true,
            "binaries":[{{"id":"b","program":"../../bin/sh","cwd":"","env":[],"tests":[]}}]}}"#
        );
        assert!(
            read_manifest(&escape)
                .unwrap_err()
                .contains("leaves the archive")
        );
    }
}
