//! Unpacking an archive safely, and running its tests as a plugin.

use super::*;

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
