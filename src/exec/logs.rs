//! Where output goes: an attempt's log files, a hook's log, and the file
//! name a test id gets.

use std::path::{Path, PathBuf};

/// Where a hook's output goes: `OUTPUT/hooks/HOOK[.wN].log`.
pub fn hook_log_path(output: &Path, hook: &str, worker: Option<usize>) -> PathBuf {
    let name = match worker {
        Some(worker) => format!("{hook}.w{worker}.log"),
        None => format!("{hook}.log"),
    };
    // A user's own `hooks/setup.log` in an `--output` directory is never replaced.
    crate::runs::claim(output.join("hooks").join(name), true)
}

/// Where an attempt's output goes: one file per stream, named after the test
/// id made safe for any filesystem.
pub fn log_paths(output: &Path, id: &str, attempt: u32) -> (PathBuf, PathBuf) {
    let stem = format!("{}.{attempt}", safe_file_name(id));
    let [stdout, stderr, report] =
        ["stdout", "stderr", "report"].map(|stream| output.join(format!("{stem}.{stream}")));
    for path in [&stdout, &stderr, &report] {
        crate::runs::record(path);
    }
    (stdout, stderr)
}

/// A file name for a test id: safe characters kept, the rest `_`, long ids
/// shortened, and a hash of the whole id so that different ids never collide.
pub fn safe_file_name(id: &str) -> String {
    let readable: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    // FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}-{:08x}", readable.trim_start_matches('.'), hash as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_file_names_are_distinct_and_tame() {
        let a = safe_file_name("crate::it tests::a/b");
        let b = safe_file_name("crate::it tests::a_b");
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "{a}"
        );
        assert!(!safe_file_name("../../etc/passwd").starts_with('.'));
        assert!(safe_file_name(&"x".repeat(1000)).len() < 140);
    }
}
