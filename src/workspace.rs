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

/// How the workspaces of a run are made.
#[derive(Debug, Clone)]
pub struct Layout {
    pub isolation: Isolation,
    pub source: PathBuf,
    /// The directory holding one subdirectory per workspace.
    pub root: PathBuf,
    /// Absolute paths inside the source that are not copied either (a target
    /// directory elsewhere in the tree, the workspace root itself).
    pub excluded: Vec<PathBuf>,
}

impl Layout {
    /// The path of worker `worker`'s workspace.
    pub fn path(&self, worker: usize) -> PathBuf {
        match self.isolation {
            Isolation::None => self.source.clone(),
            Isolation::Copy | Isolation::Empty => self.root.join(format!("w{worker}")),
        }
    }

    /// Makes worker `worker`'s workspace, replacing one a previous run left
    /// there. A directory there that this tool did not make (no marker
    /// beside it), or one holding the source, is never deleted: that is an
    /// error instead.
    pub fn create(&self, worker: usize) -> io::Result<PathBuf> {
        let path = self.path(worker);
        if self.isolation == Isolation::None {
            return Ok(path);
        }
        if self.source.starts_with(&path) {
            return Err(io::Error::other(format!(
                "{} would hold the source {}; choose another --workspace-root",
                path.display(),
                self.source.display()
            )));
        }
        self.remove(worker)?;
        if path.exists() {
            return Err(io::Error::other(format!(
                "{} exists and was not made by cargo-paratest; remove it or choose another --workspace-root",
                path.display()
            )));
        }
        fs::create_dir_all(&self.root)?;
        fs::write(
            self.marker(worker),
            "made by cargo-paratest; its sibling directory may be deleted\n",
        )?;
        match self.isolation {
            Isolation::Copy => copy_tree(&self.source, &path, &self.skip_list())?,
            _ => fs::create_dir_all(&path)?,
        }
        Ok(path)
    }

    /// Deletes a workspace this tool made (never the source, never a
    /// directory without the marker).
    pub fn remove(&self, worker: usize) -> io::Result<()> {
        if self.isolation == Isolation::None || !self.marker(worker).exists() {
            return Ok(());
        }
        remove_if_present(&self.path(worker))?;
        fs::remove_file(self.marker(worker))
    }

    /// `ROOT/.wN.paratest`: beside the workspace, so tests never see it.
    fn marker(&self, worker: usize) -> PathBuf {
        self.root.join(format!(".w{worker}.paratest"))
    }

    fn skip_list(&self) -> Vec<PathBuf> {
        let mut skip: Vec<PathBuf> = NEVER_COPIED
            .iter()
            .map(|name| self.source.join(name))
            .collect();
        skip.extend(self.excluded.iter().cloned());
        skip.push(self.root.clone());
        skip
    }
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

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

/// Copies `from` to `to` (which must not exist): directories and symlinks
/// first, in one walk, then the files in parallel as copy-on-write reflinks
/// where the filesystem has them, plain copies elsewhere. Permissions are kept.
pub fn copy_tree(from: &Path, to: &Path, skip: &[PathBuf]) -> io::Result<()> {
    let mut files = Vec::new();
    fs::create_dir_all(to)?;
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        check_interrupt()?;
        for entry in fs::read_dir(from.join(&relative))? {
            let entry = entry?;
            let path = entry.path();
            if skip.contains(&path) {
                continue;
            }
            let relative = relative.join(entry.file_name());
            let kind = entry.file_type()?;
            if kind.is_dir() && path.join(CACHE_TAG).is_file() {
                // A cache (Cargo's target directory wherever it is, .pytest_cache).
                continue;
            } else if kind.is_dir() {
                fs::create_dir(to.join(&relative))?;
                fs::set_permissions(to.join(&relative), entry.metadata()?.permissions())?;
                pending.push(relative);
            } else if kind.is_symlink() {
                std::os::unix::fs::symlink(fs::read_link(&path)?, to.join(&relative))?;
            } else if kind.is_file() {
                files.push(relative);
            }
            // Sockets, FIFOs and devices are not part of a project's files.
        }
    }
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
