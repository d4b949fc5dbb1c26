//! The timings store: past durations of each test, kept in
//! `.paratest/timings.json`, and the expected duration derived from them.
//!
//! On disk (`format_version` 1):
//!
//! ```json
//! {"format_version": 1,
//!  "tests": {"<test id>": {"samples": [{"duration": 0.25, "recorded": 1700000000}]}}}
//! ```
//!
//! `duration` is in seconds, `recorded` in Unix seconds; samples run oldest
//! to newest and only the last [`MAX_SAMPLES`] of a test are kept.
//!
//! What happens to a file we cannot trust, so that it is never overwritten
//! with less:
//! - **newer `format_version`**: ignored when loading, and never written:
//!   [`Timings::record`] and [`Timings::save_to`] refuse with a message. A
//!   newer cargo-paratest keeps its history; this one runs unordered.
//! - **corrupt or truncated**: ignored when loading; the next write first
//!   moves it aside to `timings.json.corrupt` (replacing an older backup)
//!   and then starts a fresh file. The bytes survive for a human to look at,
//!   and timings start working again without a manual `timings clear`.
//! - **not a timings file** (no `{"format_version"` in it: a user's notes
//!   given as `--timings` by mistake; anything in a `.paratest/` directory
//!   counts as ours, so corrupt at worst): ignored, and a run or `timings`
//!   command that would write it is refused (exit 2) unless
//!   `--overwrite-timings` asks for it to be replaced.
//! - **unreadable** (permissions, a directory, a FIFO or device, over
//!   [`MAX_FILE_SIZE`]): ignored, and not written.
//!
//! A backup of a corrupt file never replaces another file: it is the first
//! free name of `timings.json.corrupt`, `timings.json.corrupt.1`, ...
//! A timings path that is a symbolic link is read and written through it.
//!
//! Writers take an exclusive lock on a sibling `timings.json.lock`, re-read
//! the file under the lock, and replace it by renaming a temp file from the
//! same directory, so concurrent runs lose no samples and readers never see
//! half a file. The lock file is removed before it is unlocked (a locker
//! that then finds another file, or none, under the name tries again), so
//! none is left behind in a directory a CI job uploads.
//!
//! - [`store`]: the file format, loading, locked writing;
//! - [`learning`]: which samples count and what is expected of a test;
//! - [`import`]: stores from JUnit reports, and the merge of several stores.

pub(crate) mod import;
pub(crate) mod learning;
mod store;

pub use learning::DEFAULT_EXPECTED;
pub(crate) use learning::{samples_of, save_run};
pub use store::*;
