//! Keeping concurrent runs apart, and deleting only what is ours.
//!
//! - Every run has its own directory `.paratest/runs/<run-id>/` in the
//!   source, locked (`.lock`) for as long as the run lives. It holds the
//!   run's logs unless `--output` is given, and `.paratest/logs` is a
//!   symbolic link to the latest run's. Of the runs no process holds, the
//!   newest [`KEEP_RUNS`] are kept and older ones deleted.
//! - A workspace root is locked for the whole run
//!   (`ROOT/.paratest-root.lock`): a second run on it is refused (exit 2).
//!   Taking the lock clears what dead runs left there with our marker.
//!   A fresh root in the system temp directory is recorded in the run's
//!   directory, so that the next run on the source removes it if its run
//!   died before it could.
//! - An explicit `--output DIR` is locked the same way, and every file a
//!   run writes there is first listed in `DIR/.paratest-manifest`: the next
//!   run removes those files and nothing else.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::error::{Error, Kind, Result};

/// Finished runs whose directory (logs) is kept in `.paratest/runs/`.
pub const KEEP_RUNS: usize = 10;
/// In a run's directory: held locked while the run lives.
const RUN_LOCK: &str = ".lock";
/// In a run's directory: the fresh workspace root it made.
const ROOT_RECORD: &str = ".workspace-root";
/// In a workspace root: held locked by the run using it.
pub const ROOT_LOCK: &str = ".paratest-root.lock";
/// In an explicit `--output` directory: held locked by the run writing it.
const OUTPUT_LOCK: &str = ".paratest-output.lock";
/// In an explicit `--output` directory: the files runs wrote there.
pub const MANIFEST: &str = ".paratest-manifest";

/// The source's own directory for reports, timings and runs: `.paratest/`.
pub fn paratest_dir(source: &Path) -> PathBuf {
    source.join(PARATEST_DIR)
}

/// The name of [`paratest_dir`].
pub const PARATEST_DIR: &str = ".paratest";

/// Keeps `.paratest/` (`dir`) out of git without asking the user to edit
/// their own `.gitignore`: a `.gitignore` of `*` inside it, written once (one
/// already there is ours, or the user's to keep).
pub fn ignore_in_git(dir: &Path) -> io::Result<()> {
    let gitignore = dir.join(".gitignore");
    match File::options()
        .write(true)
        .create_new(true)
        .open(&gitignore)
    {
        Ok(mut file) => file.write_all(b"*\n"),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
    .map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("cannot write {}: {error}", gitignore.display()),
        )
    })
}

/// The directories of one run, locked until it is dropped.
pub struct RunDirs {
    /// `.paratest/runs/<run-id>/`.
    pub run_dir: PathBuf,
    /// Where logs go: the run directory, or `--output`.
    pub output: PathBuf,
    /// The workspace root (`--workspace-root`, or a fresh temp directory).
    pub root: PathBuf,
    fresh_root: bool,
    keep_workspaces: bool,
    _locks: Vec<File>,
}

/// What [`RunDirs::open`] needs to know.
pub struct Request<'a> {
    pub source: &'a Path,
    pub run_id: &'a str,
    /// `--output`, absolute.
    pub output: Option<&'a Path>,
    /// `--workspace-root`, absolute.
    pub root: Option<&'a Path>,
    /// `--keep-workspaces`: a fresh root outlives the run.
    pub keep_workspaces: bool,
}

impl RunDirs {
    /// Makes and locks this run's directories; removes what earlier runs
    /// that are gone left behind (see the module doc). A root or output
    /// directory another live run holds is a usage error.
    pub fn open(request: &Request<'_>) -> Result<RunDirs> {
        let failed = |what: String| move |e: io::Error| Error::with_cause(Kind::CannotRun, what, e);
        let runs = paratest_dir(request.source).join("runs");
        let run_dir = runs.join(request.run_id);
        fs::create_dir_all(&runs).map_err(failed(format!("cannot create {}", runs.display())))?;
        fs::create_dir(&run_dir).map_err(failed(format!("cannot create {}", run_dir.display())))?;
        let mut locks = vec![
            try_lock(&run_dir.join(RUN_LOCK), true)
                .map_err(failed(format!("cannot lock {}", run_dir.display())))?
                .ok_or_else(|| Error::cannot_run("another run holds this run's own lock"))?,
        ];
        prune(&runs, request.run_id);

        let output = match request.output {
            Some(dir) => {
                locks.push(lock_shared_dir(dir, OUTPUT_LOCK, "--output")?);
                clear_listed(dir).map_err(failed(format!(
                    "cannot clear the previous run's logs in {}",
                    dir.display()
                )))?;
                start_manifest(dir).map_err(failed(format!(
                    "cannot write {}",
                    dir.join(MANIFEST).display()
                )))?;
                dir.to_path_buf()
            }
            None => {
                point_logs_at(request.source, request.run_id);
                run_dir.clone()
            }
        };

        let (root, fresh_root) = match request.root {
            Some(root) => {
                refuse_inside(root, request.source)?;
                locks.push(lock_shared_dir(root, ROOT_LOCK, "--workspace-root")?);
                crate::workspace::clear_leftovers(root).map_err(failed(format!(
                    "cannot clear the workspaces a previous run left in {}",
                    root.display()
                )))?;
                (root.to_path_buf(), false)
            }
            None => {
                let root = tempfile::Builder::new()
                    .prefix("paratest-")
                    .tempdir()
                    .map_err(failed("cannot create the workspace root".into()))?
                    .keep();
                locks.push(
                    try_lock(&root.join(ROOT_LOCK), true)
                        .map_err(failed(format!("cannot lock {}", root.display())))?
                        .ok_or_else(|| Error::cannot_run("a fresh workspace root is locked"))?,
                );
                let _ = fs::write(
                    run_dir.join(ROOT_RECORD),
                    root.as_os_str().as_encoded_bytes(),
                );
                (root, true)
            }
        };
        let run_temp = crate::workspace::temp_dir(&root, None);
        fs::create_dir_all(&run_temp)
            .map_err(failed(format!("cannot create {}", run_temp.display())))?;
        Ok(RunDirs {
            run_dir,
            output,
            root,
            fresh_root,
            keep_workspaces: request.keep_workspaces,
            _locks: locks,
        })
    }
}

impl Drop for RunDirs {
    /// The end of the run, however it ends: the run's temp directory goes,
    /// and a fresh root too unless the workspaces are kept; then the locks.
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(crate::workspace::temp_dir(&self.root, None));
        if self.fresh_root && !self.keep_workspaces {
            let _ = fs::remove_dir_all(&self.root);
        }
        let _ = fs::remove_file(self.run_dir.join(ROOT_RECORD));
        stop_manifest();
    }
}

/// Opens (creating it if asked) and tries to lock `path`: `None` when
/// another process holds the lock.
fn try_lock(path: &Path, create: bool) -> io::Result<Option<File>> {
    let file = OpenOptions::new()
        .create(create)
        .truncate(false)
        .write(true)
        .open(path)?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => Ok(Some(file)),
        Err(fs4::TryLockError::WouldBlock) => Ok(None),
        Err(fs4::TryLockError::Error(e)) => Err(e),
    }
}

/// Creates `dir` and takes its lock, or says which option to change.
fn lock_shared_dir(dir: &Path, lock: &str, option: &str) -> Result<File> {
    fs::create_dir_all(dir).map_err(|e| {
        Error::with_cause(
            Kind::Usage,
            format!("invalid {option} {}", dir.display()),
            e,
        )
    })?;
    match try_lock(&dir.join(lock), true) {
        Ok(Some(file)) => Ok(file),
        Ok(None) => Err(Error::usage(format!(
            "{option} {} is in use by another cargo-paratest run; wait for it to end or give \
             this run another {option}",
            dir.display()
        ))),
        Err(e) => Err(Error::with_cause(
            Kind::Usage,
            format!("invalid {option} {}: cannot lock it", dir.display()),
            e,
        )),
    }
}

/// A workspace root equal to the source or inside it would copy itself
/// into every workspace, deeper each time.
fn refuse_inside(root: &Path, source: &Path) -> Result<()> {
    let root = resolved(root);
    let source = resolved(source);
    if root.starts_with(&source) {
        return Err(Error::usage(format!(
            "invalid --workspace-root {}: it is inside the source {}, so every workspace \
             would copy it; choose a directory outside the source",
            root.display(),
            source.display()
        )));
    }
    Ok(())
}

/// `path` with symbolic links resolved as far as it exists.
pub fn resolved(path: &Path) -> PathBuf {
    let mut existing = path;
    let mut rest = Vec::new();
    while !existing.exists() {
        let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
            return path.to_path_buf();
        };
        rest.push(name);
        existing = parent;
    }
    let mut resolved = existing
        .canonicalize()
        .unwrap_or_else(|_| existing.to_path_buf());
    resolved.extend(rest.into_iter().rev());
    resolved
}

/// Makes `.paratest/logs` a link to `runs/<run-id>`, replacing the link
/// atomically. A real directory there (written by an older version) is
/// moved into `runs/` first, where pruning will reach it.
fn point_logs_at(source: &Path, run_id: &str) {
    let paratest = paratest_dir(source);
    let logs = paratest.join("logs");
    if fs::symlink_metadata(&logs).is_ok_and(|m| m.is_dir()) {
        let moved = paratest.join("runs").join(format!("0-old-logs-{run_id}"));
        if fs::rename(&logs, &moved).is_ok() {
            let _ = File::create(moved.join(RUN_LOCK));
        }
    }
    let temp = paratest.join(format!(".logs.{run_id}.tmp"));
    let _ = fs::remove_file(&temp);
    if std::os::unix::fs::symlink(Path::new("runs").join(run_id), &temp).is_ok()
        && fs::rename(&temp, &logs).is_err()
    {
        let _ = fs::remove_file(&temp);
    }
}

/// Deletes the directories of runs that are gone, except the newest
/// [`KEEP_RUNS`], and the fresh workspace roots they left behind.
fn prune(runs: &Path, own: &str) {
    let Ok(entries) = fs::read_dir(runs) else {
        return;
    };
    let mut dead = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name() == own || !path.is_dir() {
            continue;
        }
        // A directory without its lock file is a run just starting.
        let Ok(Some(lock)) = try_lock(&path.join(RUN_LOCK), false) else {
            continue;
        };
        if let Ok(root) = fs::read(path.join(ROOT_RECORD)) {
            let root = PathBuf::from(std::ffi::OsString::from_vec(root));
            if remove_dead_root(&root) {
                let _ = fs::remove_file(path.join(ROOT_RECORD));
            }
        }
        let modified = entry
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        dead.push((modified, path, lock));
    }
    dead.sort_by_key(|(modified, _, _)| std::cmp::Reverse(*modified));
    for (_, path, _lock) in dead.into_iter().skip(KEEP_RUNS.saturating_sub(1)) {
        let _ = fs::remove_dir_all(&path);
    }
}

/// Removes a fresh workspace root a dead run left: what carries our marker,
/// then the directory itself if nothing else is in it.
fn remove_dead_root(root: &Path) -> bool {
    match try_lock(&root.join(ROOT_LOCK), false) {
        Ok(Some(_lock)) => {
            let _ = crate::workspace::clear_leftovers(root);
            let _ = fs::remove_file(root.join(ROOT_LOCK));
            let _ = fs::remove_dir(root);
            true
        }
        // Gone already, or not a root of ours any more.
        Err(e) if e.kind() == io::ErrorKind::NotFound => true,
        _ => false,
    }
}

/// The manifest of the `--output` directory this run writes, if any.
static ACTIVE: Mutex<Option<Manifest>> = Mutex::new(None);

struct Manifest {
    dir: PathBuf,
    file: File,
    listed: HashSet<PathBuf>,
}

/// Lists `path` in the active manifest before it is written, if it lies in
/// the explicit `--output` directory. Called by whatever names a log file.
pub fn record(path: &Path) {
    claim(path.to_path_buf(), false);
}

/// The path to write a log at: `path`, unless it lies in the explicit
/// `--output` directory and a file no run listed (a user's) is there; then
/// the first free `PATH.1`, `PATH.2`, ... when `dodge` (else the user's
/// file would be replaced). Listed in the manifest before it is returned.
pub fn claim(path: PathBuf, dodge: bool) -> PathBuf {
    let mut active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(manifest) = active.as_mut() else {
        return path;
    };
    let mut candidate = path.clone();
    for n in 1.. {
        let Ok(relative) = candidate.strip_prefix(&manifest.dir) else {
            return candidate;
        };
        if manifest.listed.contains(relative) {
            return candidate;
        }
        if !dodge || fs::symlink_metadata(&candidate).is_err() {
            if let Some(line) = relative.to_str().filter(|l| !l.contains('\n')) {
                let _ = writeln!(manifest.file, "{line}");
            }
            manifest.listed.insert(relative.to_path_buf());
            return candidate;
        }
        let mut name = path.clone().into_os_string();
        name.push(format!(".{n}"));
        candidate = PathBuf::from(name);
    }
    unreachable!("an unbounded loop returns")
}

fn start_manifest(dir: &Path) -> io::Result<()> {
    let file = File::create(dir.join(MANIFEST))?;
    *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = Some(Manifest {
        dir: dir.to_path_buf(),
        file,
        listed: HashSet::new(),
    });
    Ok(())
}

fn stop_manifest() {
    *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Removes the files the manifest of `dir` lists (plain files and links
/// only, and only inside `dir`), and directories they leave empty.
pub fn clear_listed(dir: &Path) -> io::Result<()> {
    let text = match fs::read_to_string(dir.join(MANIFEST)) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut parents = HashSet::new();
    for line in text.lines() {
        let relative = Path::new(line);
        let plain = !line.is_empty()
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !plain {
            continue;
        }
        let path = dir.join(relative);
        if fs::symlink_metadata(&path).is_ok_and(|m| !m.is_dir()) {
            fs::remove_file(&path)?;
        }
        if let Some(parent) = relative.parent().filter(|p| !p.as_os_str().is_empty()) {
            parents.insert(dir.join(parent));
        }
    }
    for parent in parents {
        // Only succeeds when empty: a user's file in there keeps it.
        let _ = fs::remove_dir(parent);
    }
    fs::remove_file(dir.join(MANIFEST))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_files_inside_the_directory_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("hooks")).unwrap();
        for name in [
            "ours.1.stdout",
            "hooks/setup.log",
            "x.1.stdout",
            "notes.txt",
        ] {
            fs::write(d.join(name), "").unwrap();
        }
        let outside = tempfile::NamedTempFile::new().unwrap();
        fs::write(
            d.join(MANIFEST),
            format!(
                "ours.1.stdout\nhooks/setup.log\n../{}\n{}\n\n",
                outside.path().file_name().unwrap().to_str().unwrap(),
                outside.path().display()
            ),
        )
        .unwrap();
        clear_listed(d).unwrap();
        assert!(!d.join("ours.1.stdout").exists());
        assert!(!d.join("hooks").exists(), "hooks/ was left empty");
        assert!(d.join("x.1.stdout").exists() && d.join("notes.txt").exists());
        assert!(outside.path().exists());
        assert!(!d.join(MANIFEST).exists());
    }

    #[test]
    fn resolved_follows_links_of_the_existing_part() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        assert_eq!(
            resolved(&dir.path().join("link/not/yet")),
            real.canonicalize().unwrap().join("not/yet")
        );
    }
}
