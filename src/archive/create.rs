//! Creating an archive: the test binaries, what they need at run time, and
//! the source, packed as [`super`] describes.

use super::*;

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
