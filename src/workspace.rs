//! Workspaces: one worker's isolated copy of the source (or an empty
//! directory, or the source itself), made on demand and removed at the end.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::config::Isolation;

/// A directory holding this file is a cache (<https://bford.info/cachedir/>):
/// Cargo marks every target directory so, wherever `CARGO_TARGET_DIR` or
/// `.cargo/config.toml` puts it. Caches are never copied into workspaces.
pub const CACHE_TAG: &str = "CACHEDIR.TAG";

/// Top-level entries of the source never copied into a workspace.
pub const NEVER_COPIED: &[&str] = &["target", ".paratest", ".git"];

/// Entries left out at any depth: version control and Python's byte code.
const NEVER_COPIED_ANYWHERE: &[&str] = &[".git", "__pycache__"];

/// How the workspaces of a run are made.
#[derive(Debug, Clone)]
pub struct Layout {
    pub isolation: Isolation,
    pub source: PathBuf,
    /// The directory holding one subdirectory per workspace.
    pub root: PathBuf,
    /// Absolute paths inside the source that are not copied either (a target
    /// directory elsewhere in the tree, the log directory).
    pub excluded: Vec<PathBuf>,
}

/// The private temp directory of worker `worker` (`None`: of the run's own
/// hooks, `--setup` and `--teardown`) under a workspace root: `ROOT/.wN.tmp`,
/// `ROOT/.run.tmp`. Tests and hooks get it as `TMPDIR`, `TMP`, `TEMP`.
pub fn temp_dir(root: &Path, worker: Option<usize>) -> PathBuf {
    match worker {
        Some(worker) => root.join(format!(".w{worker}.tmp")),
        None => root.join(".run.tmp"),
    }
}

impl Layout {
    /// The path of worker `worker`'s workspace.
    pub fn path(&self, worker: usize) -> PathBuf {
        match self.isolation {
            Isolation::None => self.source.clone(),
            Isolation::Copy | Isolation::Empty => self.root.join(format!("w{worker}")),
        }
    }

    /// Makes worker `worker`'s workspace and its empty temp directory,
    /// replacing those a previous run left there. A directory there that
    /// this tool did not make (no marker beside it), or one holding the
    /// source, is never deleted: that is an error instead.
    pub fn create(&self, worker: usize) -> io::Result<PathBuf> {
        let path = self.path(worker);
        let copied = self.isolation != Isolation::None;
        if copied && self.source.starts_with(&path) {
            return Err(io::Error::other(format!(
                "{} would hold the source {}; choose another --workspace-root",
                path.display(),
                self.source.display()
            )));
        }
        self.remove(worker)?;
        let temp = temp_dir(&self.root, Some(worker));
        for ours in [Some(&path).filter(|_| copied), Some(&temp)]
            .into_iter()
            .flatten()
        {
            if ours.exists() {
                return Err(io::Error::other(format!(
                    "{} exists and was not made by cargo-paratest; remove it or choose another --workspace-root",
                    ours.display()
                )));
            }
        }
        fs::create_dir_all(&self.root)?;
        fs::write(
            self.marker(worker),
            "made by cargo-paratest; its sibling directories wN and .wN.tmp may be deleted\n",
        )?;
        fs::create_dir(&temp)?;
        match self.isolation {
            Isolation::Copy => copy_tree(&self.source, &path, &self.skip_list())?,
            Isolation::Empty => fs::create_dir_all(&path)?,
            Isolation::None => {}
        }
        Ok(path)
    }

    /// Deletes a workspace and temp directory this tool made (never the
    /// source, never a directory without the marker).
    pub fn remove(&self, worker: usize) -> io::Result<()> {
        if !self.marker(worker).exists() {
            return Ok(());
        }
        if self.isolation != Isolation::None {
            remove_if_present(&self.path(worker))?;
        }
        remove_if_present(&temp_dir(&self.root, Some(worker)))?;
        fs::remove_file(self.marker(worker))
    }

    /// Empties and removes the worker's temp directory only (a kept workspace stays).
    pub fn remove_temp(&self, worker: usize) -> io::Result<()> {
        if !self.marker(worker).exists() {
            return Ok(());
        }
        remove_if_present(&temp_dir(&self.root, Some(worker)))
    }

    /// `ROOT/.wN.paratest`: beside the workspace, so tests never see it.
    fn marker(&self, worker: usize) -> PathBuf {
        marker(&self.root, worker)
    }

    fn skip_list(&self) -> Vec<PathBuf> {
        let mut skip = self.excluded.clone();
        skip.push(self.root.clone());
        skip
    }
}

fn marker(root: &Path, worker: usize) -> PathBuf {
    root.join(format!(".w{worker}.paratest"))
}

/// Removes what earlier runs left under `root` and marked as theirs (every
/// `wN` and `.wN.tmp` with a `.wN.paratest` marker beside it, and the run
/// temp directory). Only called while holding the root's lock, so no live
/// run owns them. Returns how many workspaces were removed.
pub fn clear_leftovers(root: &Path) -> io::Result<usize> {
    let mut removed = 0;
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let name = entry?.file_name();
        let Some(worker) = name
            .to_str()
            .and_then(|n| n.strip_prefix(".w")?.strip_suffix(".paratest"))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        remove_if_present(&root.join(format!("w{worker}")))?;
        remove_if_present(&temp_dir(root, Some(worker)))?;
        fs::remove_file(marker(root, worker))?;
        removed += 1;
    }
    remove_if_present(&temp_dir(root, None))?;
    Ok(removed)
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The one walk of the source, shared by the workspace copy, the command
/// plugin's discovery and the pytest collection fingerprint, so that all
/// three see the same files. Calls `visit(relative path, entry, type)` for
/// every entry a workspace copy holds, in name order within a directory,
/// and descends into directories (never through a symbolic link). Left
/// out: `target/`, `.paratest/` and `.git/` at the top, `.git` and
/// `__pycache__` at any depth, caches (a directory holding `CACHEDIR.TAG`,
/// such as any Cargo target directory or `.pytest_cache`), and `excluded`
/// (absolute paths: the log directory, another target directory).
pub fn walk_source(
    source: &Path,
    excluded: &[PathBuf],
    visit: &mut dyn FnMut(&Path, &fs::DirEntry, fs::FileType) -> io::Result<()>,
) -> io::Result<()> {
    walk_dir(source, Path::new(""), excluded, visit)
}

fn walk_dir(
    source: &Path,
    relative: &Path,
    excluded: &[PathBuf],
    visit: &mut dyn FnMut(&Path, &fs::DirEntry, fs::FileType) -> io::Result<()>,
) -> io::Result<()> {
    let at_top = relative.as_os_str().is_empty();
    let mut entries = fs::read_dir(source.join(relative))?.collect::<io::Result<Vec<_>>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let name = entry.file_name();
        if NEVER_COPIED_ANYWHERE.iter().any(|n| name == *n)
            || (at_top && NEVER_COPIED.iter().any(|n| name == *n))
        {
            continue;
        }
        let path = entry.path();
        if excluded.contains(&path) {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() && path.join(CACHE_TAG).is_file() {
            continue;
        }
        let child = relative.join(&name);
        visit(&child, &entry, kind)?;
        if kind.is_dir() {
            walk_dir(source, &child, excluded, visit)?;
        }
    }
    Ok(())
}

/// Adds the path, size and modification time of every file the walk sees
/// to `hasher`: any edit, new or deleted file changes the hash. Left out:
/// [`TOOL_STATE`], what a tool rewrites on every run and no collection reads.
pub fn hash_source(source: &Path, excluded: &[PathBuf], hasher: &mut impl std::hash::Hasher) {
    use std::hash::Hash;
    let _ = walk_source(source, excluded, &mut |relative, entry, kind| {
        if relative
            .iter()
            .any(|part| TOOL_STATE.iter().any(|n| part == *n))
        {
            return Ok(());
        }
        if !kind.is_dir()
            && let Ok(metadata) = entry.metadata()
        {
            relative.hash(hasher);
            metadata.len().hash(hasher);
            metadata.modified().ok().hash(hasher);
        }
        Ok(())
    });
}

/// Directories that [`hash_source`] leaves out, at any depth: Hypothesis's
/// example database, which Hypothesis rewrites whenever pytest starts with
/// it, discovery's own collection included (the cache never held on such a
/// suite). pytest never collects from it; copies keep it, for the tests.
const TOOL_STATE: &[&str] = &[".hypothesis"];

/// Copying runs on its own pool: the worker threads are busy waiting on
/// tests. `None` when no thread could be had: files are then copied one by one.
fn copy_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism()
            .map_or(4, |n| n.get())
            .clamp(2, 16);
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("paratest-copy-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// Files up to this size are copied in one call; bigger ones in pieces of
/// it, so that Ctrl-C stops the copy of a big file too.
const COPY_CHUNK: u64 = 64 << 20;

/// `fs::copy`, interruptible between chunks of [`COPY_CHUNK`]. The mode is kept.
fn copy_file(source: &Path, target: &Path) -> io::Result<()> {
    let metadata = fs::metadata(source)?;
    if metadata.len() <= COPY_CHUNK {
        return fs::copy(source, target).map(drop);
    }
    let mut reader = fs::File::open(source)?;
    let mut writer = fs::File::create(target)?;
    // `io::copy` of a `Take<File>` into a `File` still uses copy_file_range.
    while io::copy(&mut io::Read::take(&mut reader, COPY_CHUNK), &mut writer)? > 0 {
        check_interrupt()?;
    }
    fs::set_permissions(target, metadata.permissions())
}

/// Ctrl-C stops a copy between two files (or two chunks of a big one).
fn check_interrupt() -> io::Result<()> {
    if crate::process::interrupt_requested() {
        return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
    }
    Ok(())
}

/// Copies what [`walk_source`] sees of `from` to `to` (which must not
/// exist): directories and symlinks first, in one walk, then the files in
/// parallel as copy-on-write reflinks where the filesystem has them, plain
/// copies elsewhere. Permissions are kept.
pub fn copy_tree(from: &Path, to: &Path, excluded: &[PathBuf]) -> io::Result<()> {
    let mut files = Vec::new();
    fs::create_dir_all(to)?;
    walk_source(from, excluded, &mut |relative, entry, kind| {
        check_interrupt()?;
        if kind.is_dir() {
            fs::create_dir(to.join(relative))?;
            fs::set_permissions(to.join(relative), entry.metadata()?.permissions())?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path())?, to.join(relative))?;
        } else if kind.is_file() {
            files.push(relative.to_path_buf());
        }
        // Sockets, FIFOs and devices are not part of a project's files.
        Ok(())
    })?;
    // Probe reflinks on the first file only: where the filesystem lacks them
    // (ext4), a failed attempt per file costs a create and a delete, which
    // made copying 1.5x slower than `cp -r`.
    let copy_one = |relative: &PathBuf, reflink: bool| -> io::Result<()> {
        check_interrupt()?;
        let (source, target) = (from.join(relative), to.join(relative));
        // `fs::copy` keeps the mode; a reflink does not, so it is set after.
        let copied = if reflink {
            reflink_copy::reflink(&source, &target)
                .and_then(|()| fs::set_permissions(&target, fs::metadata(&source)?.permissions()))
        } else {
            copy_file(&source, &target)
        };
        copied
            .map_err(|e| io::Error::new(e.kind(), format!("cannot copy {}: {e}", source.display())))
    };
    let Some((first, rest)) = files.split_first() else {
        return Ok(());
    };
    let reflink = copy_one(first, true).is_ok();
    if !reflink {
        let _ = fs::remove_file(to.join(first));
        copy_one(first, false)?;
    }
    match copy_pool() {
        Some(pool) => pool.install(|| {
            rest.par_iter()
                .try_for_each(|relative| copy_one(relative, reflink))
        }),
        None => rest
            .iter()
            .try_for_each(|relative| copy_one(relative, reflink)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_source_hash_sees_every_edit_but_not_the_hypothesis_database() {
        use std::hash::Hasher;
        let source = tempfile::tempdir().unwrap();
        let s = source.path();
        let hash = || {
            let mut hasher = std::hash::DefaultHasher::new();
            hash_source(s, &[], &mut hasher);
            hasher.finish()
        };
        fs::create_dir_all(s.join("sub/.hypothesis/examples")).unwrap();
        fs::create_dir_all(s.join("gen")).unwrap();
        // A directory git ignores may still hold tests or their data.
        fs::write(s.join("gen/.gitignore"), "*\n").unwrap();
        fs::write(s.join("test_a.py"), "def test_a(): pass\n").unwrap();
        let before = hash();
        fs::write(s.join("sub/.hypothesis/examples/e1"), "replayed example").unwrap();
        assert_eq!(hash(), before, "the Hypothesis database is left out");
        fs::write(s.join("gen/test_g.py"), "def test_g(): pass\n").unwrap();
        let with_gen = hash();
        assert_ne!(with_gen, before, "an ignored directory's files count");
        fs::write(s.join("test_a.py"), "def test_a(): assert 1\n").unwrap();
        assert_ne!(hash(), with_gen, "an edit changes the hash");
    }

    #[test]
    fn copy_skips_build_state_and_keeps_modes_and_links() {
        let source = tempfile::tempdir().unwrap();
        let s = source.path();
        for dir in [
            "src/deep",
            "target/debug",
            ".git",
            ".paratest",
            "other-target",
        ] {
            fs::create_dir_all(s.join(dir)).unwrap();
        }
        fs::write(s.join("src/deep/a.txt"), "a").unwrap();
        fs::write(s.join("run.sh"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(s.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(s.join("target/debug/big"), "x").unwrap();
        fs::create_dir_all(s.join("build-cache/deep")).unwrap();
        fs::write(
            s.join("build-cache/CACHEDIR.TAG"),
            "Signature: 8a477f597d28d172789f06886806bc55",
        )
        .unwrap();
        std::os::unix::fs::symlink("src/deep/a.txt", s.join("link")).unwrap();
        let root = tempfile::tempdir().unwrap();
        let layout = Layout {
            isolation: Isolation::Copy,
            source: s.to_path_buf(),
            root: root.path().to_path_buf(),
            excluded: vec![s.join("other-target")],
        };
        let w = layout.create(3).unwrap();
        assert_eq!(w, root.path().join("w3"));
        assert_eq!(fs::read_to_string(w.join("src/deep/a.txt")).unwrap(), "a");
        assert_eq!(fs::read_to_string(w.join("link")).unwrap(), "a");
        assert_eq!(
            fs::metadata(w.join("run.sh")).unwrap().permissions().mode() & 0o777,
            0o755
        );
        for skipped in ["target", ".git", ".paratest", "other-target", "build-cache"] {
            assert!(!w.join(skipped).exists(), "{skipped} was copied");
        }
        // A second create replaces the dirty copy.
        fs::write(w.join("dirt"), "").unwrap();
        layout.create(3).unwrap();
        assert!(!w.join("dirt").exists());
        layout.remove(3).unwrap();
        assert!(!w.exists());
    }

    #[test]
    fn a_directory_not_made_by_us_is_never_deleted() {
        let root = tempfile::tempdir().unwrap();
        let source = root.path().join("w1");
        fs::create_dir_all(source.join("src")).unwrap();
        fs::write(source.join("src/lib.rs"), "").unwrap();
        let layout = |root: &Path| Layout {
            isolation: Isolation::Copy,
            source: source.clone(),
            root: root.to_path_buf(),
            excluded: vec![],
        };
        // The source is where worker 1's workspace would go.
        assert!(
            layout(root.path())
                .create(1)
                .unwrap_err()
                .to_string()
                .contains("would hold the source")
        );
        // Someone else's directory named w2.
        assert!(layout(root.path()).create(2).is_ok(), "w2 is free");
        let other = tempfile::tempdir().unwrap();
        fs::create_dir_all(other.path().join("w1/precious")).unwrap();
        let err = layout(other.path()).create(1).unwrap_err();
        assert!(
            err.to_string().contains("not made by cargo-paratest"),
            "{err}"
        );
        layout(other.path()).remove(1).unwrap();
        assert!(other.path().join("w1/precious").exists());
        assert!(source.join("src/lib.rs").exists());
    }

    #[test]
    fn none_is_the_source_and_is_never_removed() {
        let source = tempfile::tempdir().unwrap();
        let layout = Layout {
            isolation: Isolation::None,
            source: source.path().to_path_buf(),
            root: source.path().join("unused"),
            excluded: vec![],
        };
        assert_eq!(layout.create(1).unwrap(), source.path());
        layout.remove(1).unwrap();
        assert!(source.path().exists());
    }

    #[test]
    fn workspace_root_inside_the_source_is_not_copied_into_itself() {
        let source = tempfile::tempdir().unwrap();
        fs::write(source.path().join("f"), "").unwrap();
        let layout = Layout {
            isolation: Isolation::Copy,
            source: source.path().to_path_buf(),
            root: source.path().join("ws"),
            excluded: vec![],
        };
        let w1 = layout.create(1).unwrap();
        let w2 = layout.create(2).unwrap();
        assert!(w1.join("f").exists() && w2.join("f").exists());
        assert!(!w2.join("ws").exists());
    }
}
