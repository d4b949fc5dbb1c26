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

mod create;
mod unpack;

pub use create::{CreateRequest, create};
pub use unpack::{Unpacked, plugin, source_of, unpack};

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
