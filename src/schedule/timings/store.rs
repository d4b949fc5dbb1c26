//! The store: the on-disk format of `timings.json`, loading it whatever is
//! in it, and writing it under a lock (see the module doc of
//! [`super`] for the rules).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The `format_version` this build reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// Samples kept per test: enough for a median to shrug off one bad run,
/// few enough that the expectation follows a test that got slower.
pub const MAX_SAMPLES: usize = 5;

/// The longest duration a sample may hold (a week). Anything longer is not a
/// test run but a damaged file, and summing such values would overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// One recorded passing attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub duration: Duration,
    /// When it was recorded, in Unix seconds: what `merge` keeps the newest by.
    pub recorded: u64,
}

/// Why a loaded file was ignored; it also decides what a later write may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadProblem {
    /// The file exists but could not be read.
    Unreadable(String),
    /// Ours but damaged: truncated, or not the shape of format 1.
    Corrupt(String),
    /// Not a timings file at all (a user's text, another tool's JSON):
    /// never moved, never replaced unless the user asks.
    Foreign(String),
    /// Written by a newer cargo-paratest: this is its `format_version`.
    Newer(u64),
}

/// Past durations by test id (ordered, so every output is deterministic).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timings {
    pub(super) tests: BTreeMap<String, Vec<Sample>>,
    pub(super) problem: Option<LoadProblem>,
}

#[derive(Serialize, Deserialize)]
struct RawSample {
    duration: f64,
    recorded: u64,
}

#[derive(Serialize, Deserialize)]
struct RawTest {
    samples: Vec<RawSample>,
}

/// Read first and alone, so that a newer format whose `tests` we could not
/// parse is still recognised as newer rather than called corrupt.
#[derive(Deserialize)]
struct RawHeader {
    format_version: u64,
}

#[derive(Deserialize)]
struct RawFile {
    tests: BTreeMap<String, RawTest>,
}

#[derive(Serialize)]
struct RawFileOut<'a> {
    format_version: u64,
    tests: BTreeMap<&'a str, RawTest>,
}

impl Timings {
    pub fn new() -> Timings {
        Timings::default()
    }

    /// Reads the store. A missing file is an empty store without a warning;
    /// a file that cannot be trusted is an empty store and a one-line
    /// warning naming the path and the reason.
    pub fn load(path: &Path) -> (Timings, Option<String>) {
        match read(path) {
            Ok(timings) => (timings, None),
            Err(problem) => {
                let warning = load_warning(path, &problem);
                (
                    Timings {
                        tests: BTreeMap::new(),
                        problem: Some(problem),
                    },
                    Some(warning),
                )
            }
        }
    }

    /// Why the file this came from was ignored, if it was.
    pub fn problem(&self) -> Option<&LoadProblem> {
        self.problem.as_ref()
    }

    pub fn len(&self) -> usize {
        self.tests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tests.is_empty()
    }

    /// Kept samples of one test, oldest first; empty when never seen.
    pub fn samples(&self, id: &str) -> &[Sample] {
        self.tests.get(id).map_or(&[], Vec::as_slice)
    }

    /// Every test with its samples, by id.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[Sample])> {
        self.tests
            .iter()
            .map(|(id, samples)| (id.as_str(), samples.as_slice()))
    }

    /// Appends one sample, dropping the oldest beyond [`MAX_SAMPLES`].
    pub fn push(&mut self, id: impl Into<String>, sample: Sample) {
        let samples = self.tests.entry(id.into()).or_default();
        samples.push(sample);
        if samples.len() > MAX_SAMPLES {
            samples.drain(..samples.len() - MAX_SAMPLES);
        }
    }

    /// Adds one sample per `(id, duration)`, all recorded at `recorded`.
    pub fn add(&mut self, samples: &[(String, Duration)], recorded: u64) {
        for (id, duration) in samples {
            self.push(
                id.clone(),
                Sample {
                    duration: *duration,
                    recorded,
                },
            );
        }
    }

    /// Adds the durations of passing attempts to the store at `path`, under
    /// its lock, and writes it back atomically. Also creates the directory
    /// and, for `.paratest/`, its `.gitignore`.
    ///
    /// The message of an error (read-only directory, newer-format file) is
    /// for the caller to show as a warning: losing timings never fails a run.
    pub fn record(path: &Path, samples: &[(String, Duration)]) -> Result<(), String> {
        Timings::record_at(path, samples, unix_now())
    }

    /// Refuses (the message is for an exit 2) a `path` that holds something
    /// that is not a timings file, unless `overwrite`, which removes it
    /// now so that the command's write replaces it.
    pub fn check_replaceable(path: &Path, overwrite: bool) -> Result<(), String> {
        let path = &through_link(path);
        let reason = match read(path) {
            Err(LoadProblem::Foreign(reason)) => reason,
            Err(LoadProblem::Unreadable(reason))
                if fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) =>
            {
                return Err(format!(
                    "invalid --timings {}: {reason}; give the path of a timings file",
                    path.display()
                ));
            }
            _ => return Ok(()),
        };
        if !overwrite {
            return Err(format!(
                "invalid --timings {}: it is not a timings file ({reason}); refusing to replace it. \
                 Give another --timings path, or pass --overwrite-timings to replace this file",
                path.display()
            ));
        }
        fs::remove_file(path).map_err(|error| format!("cannot replace {}: {error}", path.display()))
    }

    fn record_at(path: &Path, samples: &[(String, Duration)], recorded: u64) -> Result<(), String> {
        let path = &through_link(path);
        with_lock(path, || {
            let mut timings = read_for_update(path)?;
            timings.add(samples, recorded);
            timings.write(path)
        })
    }

    /// Writes these timings to `path` (the output of `timings merge` or
    /// `timings import`), replacing what is there, with the same lock, atomic
    /// rename and refusals as [`Timings::record`]. To add to an existing
    /// store rather than replace it, [`Timings::merge`] with it first.
    pub fn save_to(&self, path: &Path) -> Result<(), String> {
        let path = &through_link(path);
        with_lock(path, || {
            read_for_update(path)?;
            self.write(path)
        })
    }

    /// Removes the store (`timings clear`). A missing file is not an error.
    pub fn clear(path: &Path) -> Result<(), String> {
        if let Err(LoadProblem::Foreign(reason)) = read(path) {
            return Err(format!(
                "not removing {}: it is not a timings file ({reason})",
                path.display()
            ));
        }
        match fs::remove_file(path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(format!(
                "cannot remove timings file {}: {error}",
                path.display()
            )),
            _ => Ok(()),
        }
    }

    /// Replaces `path` by a temp file renamed over it. Only called under the
    /// lock, after `read_for_update` said writing is allowed.
    fn write(&self, path: &Path) -> Result<(), String> {
        let failed = |error: &dyn std::fmt::Display| {
            format!("cannot write timings file {}: {error}", path.display())
        };
        let tests = self
            .tests
            .iter()
            .map(|(id, samples)| {
                let samples = samples
                    .iter()
                    .map(|sample| RawSample {
                        duration: sample.duration.as_secs_f64(),
                        recorded: sample.recorded,
                    })
                    .collect();
                (id.as_str(), RawTest { samples })
            })
            .collect();
        let raw = RawFileOut {
            format_version: FORMAT_VERSION,
            tests,
        };
        crate::atomic::write(path, |writer| {
            serde_json::to_writer(&mut *writer, &raw)?;
            writer.write_all(b"\n")
        })
        .map_err(|error| failed(&error))
    }
}

/// Now, in Unix seconds: the `recorded` of new samples.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

fn load_warning(path: &Path, problem: &LoadProblem) -> String {
    let path = path.display();
    match problem {
        LoadProblem::Unreadable(reason) => format!("ignoring timings file {path}: {reason}"),
        LoadProblem::Foreign(reason) => {
            format!("ignoring {path}: it is not a timings file ({reason}); it will not be replaced")
        }
        LoadProblem::Corrupt(reason) => {
            format!(
                "ignoring timings file {path}: {reason}; it will be moved to {path}.corrupt (or the first free \
                 {path}.corrupt.N) on the next write"
            )
        }
        LoadProblem::Newer(version) => format!(
            "ignoring timings file {path}: format_version {version} is newer than this cargo-paratest \
             understands ({FORMAT_VERSION}); it will not be overwritten"
        ),
    }
}

/// Reads and checks a store; a missing file is an empty store.
fn read(path: &Path) -> Result<Timings, LoadProblem> {
    // Checked before opening: opening a FIFO blocks, reading a device never ends.
    match fs::metadata(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Timings::new()),
        Err(error) => return Err(LoadProblem::Unreadable(error.to_string())),
        Ok(metadata) if !metadata.is_file() => {
            return Err(LoadProblem::Unreadable("not a regular file".to_owned()));
        }
        Ok(metadata) if metadata.len() > MAX_FILE_SIZE => {
            return Err(LoadProblem::Unreadable(format!(
                "larger than {} MiB",
                MAX_FILE_SIZE >> 20
            )));
        }
        Ok(_) => {}
    }
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Timings::new()),
        Err(error) if error.kind() == io::ErrorKind::InvalidData => {
            return Err(LoadProblem::Foreign("not UTF-8 text".to_owned()));
        }
        Err(error) => return Err(LoadProblem::Unreadable(error.to_string())),
    };
    parse(&text).map_err(|problem| match problem {
        LoadProblem::Corrupt(reason) if !looks_like_timings(&text) && !in_our_directory(path) => {
            LoadProblem::Foreign(reason)
        }
        other => other,
    })
}

/// Whether `path` lies in a `.paratest/` directory, which only this tool
/// writes: whatever is there is ours, damaged at worst.
fn in_our_directory(path: &Path) -> bool {
    directory_of(path)
        .file_name()
        .is_some_and(|name| name == ".paratest")
}

/// The biggest timings file read: far above what 100,000 tests need.
pub const MAX_FILE_SIZE: u64 = 256 << 20;

/// Whether a file that does not parse was ever one of ours: a JSON object
/// naming `format_version`, as every version writes first.
fn looks_like_timings(text: &str) -> bool {
    text.trim_start().starts_with('{') && text.contains("\"format_version\"")
}

/// `path`, or where it leads when it is a symbolic link: a timings file
/// that is a link is updated through it, never replaced by a file.
fn through_link(path: &Path) -> PathBuf {
    if !fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return path.to_path_buf();
    }
    fs::canonicalize(path).unwrap_or_else(|_| match fs::read_link(path) {
        Ok(target) => directory_of(path).join(target),
        Err(_) => path.to_path_buf(),
    })
}

/// The first of `PATH.corrupt`, `PATH.corrupt.1`, ... that `path` can be
/// linked to without replacing anything; `path` is then removed.
fn move_aside(path: &Path) -> io::Result<PathBuf> {
    for n in 0..1000 {
        let backup = if n == 0 {
            with_suffix(path, ".corrupt")
        } else {
            with_suffix(path, &format!(".corrupt.{n}"))
        };
        match fs::hard_link(path, &backup) {
            Ok(()) => {
                fs::remove_file(path)?;
                return Ok(backup);
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        }
    }
    Err(io::Error::other(
        "every backup name up to .corrupt.999 is taken",
    ))
}

fn parse(text: &str) -> Result<Timings, LoadProblem> {
    let header: RawHeader =
        serde_json::from_str(text).map_err(|error| LoadProblem::Corrupt(json_reason(&error)))?;
    if header.format_version > FORMAT_VERSION {
        return Err(LoadProblem::Newer(header.format_version));
    }
    if header.format_version < FORMAT_VERSION {
        return Err(LoadProblem::Corrupt(format!(
            "unknown format_version {}",
            header.format_version
        )));
    }
    let raw: RawFile =
        serde_json::from_str(text).map_err(|error| LoadProblem::Corrupt(json_reason(&error)))?;
    let mut tests = BTreeMap::new();
    for (id, raw_test) in raw.tests {
        let mut samples = Vec::with_capacity(raw_test.samples.len());
        for raw_sample in raw_test.samples {
            let duration = Duration::try_from_secs_f64(raw_sample.duration)
                .ok()
                .filter(|d| *d <= MAX_DURATION)
                .ok_or(())
                .map_err(|()| {
                    LoadProblem::Corrupt(format!(
                        "test `{id}` has an invalid duration {}",
                        raw_sample.duration
                    ))
                })?;
            samples.push(Sample {
                duration,
                recorded: raw_sample.recorded,
            });
        }
        // A file edited by hand or by another tool may hold more.
        let excess = samples.len().saturating_sub(MAX_SAMPLES);
        samples.drain(..excess);
        tests.insert(id, samples);
    }
    Ok(Timings {
        tests,
        problem: None,
    })
}

fn json_reason(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match error.classify() {
        Category::Eof => "truncated (unexpected end of file)".to_owned(),
        Category::Syntax => format!("not valid JSON ({error})"),
        Category::Data => format!("not a timings file ({error})"),
        Category::Io => error.to_string(),
    }
}

/// The current store under the lock, as the starting point of a write; an
/// error when the file must not be replaced. A corrupt file is moved aside.
fn read_for_update(path: &Path) -> Result<Timings, String> {
    match read(path) {
        Ok(timings) => Ok(timings),
        Err(LoadProblem::Corrupt(_)) => {
            move_aside(path).map_err(|error| {
                format!(
                    "not updating corrupt timings file {}: cannot move it aside: {error}",
                    path.display(),
                )
            })?;
            Ok(Timings::new())
        }
        Err(LoadProblem::Foreign(reason)) => Err(format!(
            "not replacing {}: it is not a timings file ({reason})",
            path.display()
        )),
        Err(LoadProblem::Newer(version)) => Err(format!(
            "not updating timings file {}: it has format_version {version}, newer than this cargo-paratest \
             writes ({FORMAT_VERSION})",
            path.display()
        )),
        Err(LoadProblem::Unreadable(reason)) => Err(format!(
            "not updating timings file {}: cannot read it: {reason}",
            path.display()
        )),
    }
}

/// Runs `update` holding the exclusive lock of the store at `path`, after
/// making sure its directory exists.
fn with_lock<T>(path: &Path, update: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    prepare_directory(path)?;
    let lock_path = with_suffix(path, ".lock");
    let lock = acquire_lock(&lock_path)?;
    let result = update();
    // Removed while still held, so that no lock file is left in a directory
    // that a CI job uploads as an artifact; a waiter that had opened it
    // notices in `acquire_lock` and locks a fresh one.
    let _ = fs::remove_file(&lock_path);
    // Closing the file releases the lock too; this only makes the end of
    // the critical section visible.
    let _ = fs4::FileExt::unlock(&lock);
    result
}

/// Opens and locks `lock_path`, until the file locked is the one the path
/// still names: the holder before us removed it before unlocking.
fn acquire_lock(lock_path: &Path) -> Result<fs::File, String> {
    use std::os::unix::fs::MetadataExt;
    let failed = |what: &str, error: io::Error| {
        format!(
            "cannot write timings: cannot {what} lock file {}: {error}",
            lock_path.display()
        )
    };
    loop {
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path)
            .map_err(|error| failed("open", error))?;
        fs4::FileExt::lock(&lock).map_err(|error| failed("lock", error))?;
        let held = lock.metadata().map_err(|error| failed("inspect", error))?;
        match fs::metadata(lock_path) {
            Ok(named) if (named.dev(), named.ino()) == (held.dev(), held.ino()) => return Ok(lock),
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(failed("inspect", error)),
        }
    }
}

/// Creates the store's directory, and keeps `.paratest/` out of git without
/// asking the user to edit their own `.gitignore`.
fn prepare_directory(path: &Path) -> Result<(), String> {
    let directory = directory_of(path);
    fs::create_dir_all(directory).map_err(|error| {
        format!(
            "cannot write timings: cannot create {}: {error}",
            directory.display()
        )
    })?;
    if directory
        .file_name()
        .is_some_and(|name| name == crate::runs::PARATEST_DIR)
    {
        crate::runs::ignore_in_git(directory).map_err(|error| error.to_string())?;
    }
    Ok(())
}

fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn secs(value: f64) -> Duration {
        Duration::from_secs_f64(value)
    }

    fn store_in(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join(".paratest").join("timings.json")
    }

    fn record_one(path: &Path, id: &str, seconds: f64) {
        Timings::record(path, &[(id.to_owned(), secs(seconds))]).unwrap();
    }

    #[test]
    fn missing_file_is_empty_without_warning() {
        let dir = tempfile::tempdir().unwrap();
        let (timings, warning) = Timings::load(&store_in(&dir));
        assert!(timings.is_empty());
        assert_eq!(warning, None);
        assert_eq!(timings.problem(), None);
    }

    #[test]
    fn round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_in(&dir);
        let original = Timings::from_durations([
            ("a::one", secs(0.25), 100),
            ("a::one", secs(1.5), 200),
            ("b::two", secs(3.0), 150),
            ("ünïcode \"quoted\"", secs(0.0), 1),
        ]);
        original.save_to(&path).unwrap();
        let (loaded, warning) = Timings::load(&path);
        assert_eq!(warning, None);
        assert_eq!(loaded, original);
        assert_eq!(
            loaded.samples("a::one"),
            &[
                Sample {
                    duration: secs(0.25),
                    recorded: 100
                },
                Sample {
                    duration: secs(1.5),
                    recorded: 200
                }
            ]
        );
    }

    #[test]
    fn file_has_the_documented_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_in(&dir);
        Timings::record_at(&path, &[("t".to_owned(), secs(0.5))], 1_700_000_000).unwrap();
        let value: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"format_version": 1,
                "tests": {"t": {"samples": [{"duration": 0.5, "recorded": 1_700_000_000u64}]}}})
        );
    }

    #[test]
    fn record_keeps_the_last_five_samples() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_in(&dir);
        for second in 1..=7u64 {
            Timings::record_at(
                &path,
                &[("t".to_owned(), Duration::from_secs(second))],
                second,
            )
            .unwrap();
        }
        let (timings, _) = Timings::load(&path);
        let kept: Vec<u64> = timings
            .samples("t")
            .iter()
            .map(|sample| sample.duration.as_secs())
            .collect();
        assert_eq!(kept, [3, 4, 5, 6, 7]);
    }

    #[test]
    fn record_creates_the_directory_and_its_gitignore() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_in(&dir);
        record_one(&path, "t", 1.0);
        assert_eq!(
            fs::read_to_string(dir.path().join(".paratest/.gitignore")).unwrap(),
            "*\n"
        );
        assert!(Timings::load(&path).0.expected("t").is_some());
    }

    #[test]
    fn gitignore_of_the_user_is_kept_and_other_directories_get_none() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join(".paratest")).unwrap();
        fs::write(dir.path().join(".paratest/.gitignore"), "mine\n").unwrap();
        record_one(&store_in(&dir), "t", 1.0);
        assert_eq!(
            fs::read_to_string(dir.path().join(".paratest/.gitignore")).unwrap(),
            "mine\n"
        );

        let elsewhere = dir.path().join("ci").join("timings.json");
        record_one(&elsewhere, "t", 1.0);
        assert!(!dir.path().join("ci/.gitignore").exists());
    }

    #[test]
    fn unwritable_location_is_an_error_message() {
        // A regular file where the directory should be: fails even as root,
        // unlike a read-only directory.
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("blocker"), "").unwrap();
        let path = dir.path().join("blocker").join("timings.json");
        let error = Timings::record(&path, &[("t".to_owned(), secs(1.0))]).unwrap_err();
        assert!(error.contains("blocker"), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn corrupt_file_warns_and_is_backed_up_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_in(&dir);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let garbage = "{\"format_version\": 1, \"tests\": {\"a\": oops}}";
        fs::write(&path, garbage).unwrap();

        let (timings, warning) = Timings::load(&path);
        let warning = warning.unwrap();
        assert!(timings.is_empty());
        assert!(matches!(timings.problem(), Some(LoadProblem::Corrupt(_))));
        assert!(warning.contains(&path.display().to_string()), "{warning}");
        assert!(warning.contains("not valid JSON"), "{warning}");
        assert!(!warning.contains('\n'), "{warning}");

        record_one(&path, "new", 2.0);
        assert_eq!(
            fs::read_to_string(with_suffix(&path, ".corrupt")).unwrap(),
            garbage
        );
        let (after, warning) = Timings::load(&path);
        assert_eq!(warning, None);
        assert_eq!(after.expected("new"), Some(secs(2.0)));
    }

    #[test]
    fn truncated_file_is_reported_as_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_in(&dir);
        Timings::from_durations([("a", secs(1.0), 1), ("b", secs(2.0), 1)])
            .save_to(&path)
            .unwrap();
        let full = fs::read_to_string(&path).unwrap();
        fs::write(&path, &full[..full.len() / 2]).unwrap();

        let (timings, warning) = Timings::load(&path);
        assert!(timings.is_empty());
        assert!(warning.unwrap().contains("truncated"));
    }

    #[test]
    fn wrong_shapes_are_corrupt() {
        for text in [
            "",
            "[1, 2]",
            "42",
            "{}",
            "{\"format_version\": \"1\", \"tests\": {}}",
            "{\"format_version\": 0, \"tests\": {}}",
            "{\"format_version\": 1}",
            "{\"format_version\": 1, \"tests\": []}",
            "{\"format_version\": 1, \"tests\": {\"a\": {\"samples\": [{\"duration\": -1, \"recorded\": 0}]}}}",
            "{\"format_version\": 1, \"tests\": {\"a\": {\"samples\": [{\"duration\": 1}]}}}",
        ] {
            assert!(
                matches!(parse(text), Err(LoadProblem::Corrupt(_))),
                "accepted {text:?}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timings.json");
        fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
        assert!(Timings::load(&path).1.unwrap().contains("not UTF-8"));
    }

    #[test]
    fn unknown_fields_of_format_one_are_tolerated() {
        let text = "{\"format_version\": 1, \"written_by\": \"x\", \
                    \"tests\": {\"a\": {\"samples\": [{\"duration\": 2, \"recorded\": 5, \"worker\": 3}], \"note\": 1}}}";
        assert_eq!(parse(text).unwrap().expected("a"), Some(secs(2.0)));
    }

    #[test]
    fn newer_format_is_ignored_and_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_in(&dir);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let newer = "{\"format_version\": 2, \"tests\": [\"a shape we do not know\"]}";
        fs::write(&path, newer).unwrap();

        let (timings, warning) = Timings::load(&path);
        assert!(timings.is_empty());
        assert_eq!(timings.problem(), Some(&LoadProblem::Newer(2)));
        assert!(warning.unwrap().contains("format_version 2"));

        let error = Timings::record(&path, &[("t".to_owned(), secs(1.0))]).unwrap_err();
        assert!(error.contains("newer"), "{error}");
        let error = Timings::from_durations([("t", secs(1.0), 1)])
            .save_to(&path)
            .unwrap_err();
        assert!(error.contains("newer"), "{error}");
        assert_eq!(fs::read_to_string(&path).unwrap(), newer);
    }

    #[test]
    fn save_to_replaces_a_valid_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_in(&dir);
        record_one(&path, "old", 1.0);
        Timings::from_durations([("new", secs(2.0), 1)])
            .save_to(&path)
            .unwrap();
        let (timings, _) = Timings::load(&path);
        assert_eq!(timings.expected("old"), None);
        assert_eq!(timings.expected("new"), Some(secs(2.0)));
    }

    #[test]
    fn clear_removes_the_file_and_tolerates_its_absence() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_in(&dir);
        record_one(&path, "t", 1.0);
        Timings::clear(&path).unwrap();
        assert!(!path.exists());
        Timings::clear(&path).unwrap();
    }

    const CHILD_ENV: &str = "PARATEST_TIMINGS_TEST_WRITER";
    const WRITES: usize = 50;

    /// Writes `WRITES` samples under the name `writer`, each its own
    /// locked read-modify-write, plus one to a test every writer shares.
    fn write_many(path: &Path, writer: &str) {
        for i in 0..WRITES {
            let samples = [
                (format!("{writer}::{i}"), Duration::from_millis(i as u64)),
                ("shared".to_owned(), secs(1.0)),
            ];
            Timings::record(path, &samples).unwrap();
        }
    }

    /// The other process of `concurrent_writers_lose_nothing` (re-invoked
    /// test binary, as nextest does); a no-op in a normal run.
    #[test]
    fn concurrent_writer_child() {
        if let Some(spec) = std::env::var_os(CHILD_ENV) {
            let spec = spec.into_string().unwrap();
            let (writer, path) = spec.split_once('=').unwrap();
            write_many(Path::new(path), writer);
        }
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_in(&dir);
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = ["process-a", "process-b"]
            .into_iter()
            .map(|writer| {
                Command::new(&exe)
                    .args([
                        "--exact",
                        // This module's path without the crate's name, as libtest names tests.
                        &format!(
                            "{}::concurrent_writer_child",
                            module_path!().split_once("::").unwrap().1
                        ),
                        "--test-threads",
                        "1",
                    ])
                    .env(CHILD_ENV, format!("{writer}={}", path.display()))
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        std::thread::scope(|scope| {
            for writer in ["thread-a", "thread-b"] {
                let path = &path;
                scope.spawn(move || write_many(path, writer));
            }
        });
        for mut child in children {
            assert!(child.wait().unwrap().success());
        }

        let text = fs::read_to_string(&path).unwrap();
        let (timings, warning) = Timings::load(&path);
        assert_eq!(warning, None, "{text}");
        for writer in ["process-a", "process-b", "thread-a", "thread-b"] {
            for i in 0..WRITES {
                assert!(
                    !timings.samples(&format!("{writer}::{i}")).is_empty(),
                    "lost {writer}::{i}"
                );
            }
        }
        assert_eq!(timings.len(), 4 * WRITES + 1);
        assert_eq!(timings.samples("shared").len(), MAX_SAMPLES);
        assert!(!with_suffix(&path, ".corrupt").exists());
        // Only the store and the .gitignore: no temp file, no lock file left behind.
        let left: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }
}
