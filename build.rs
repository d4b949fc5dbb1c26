//! Puts the git commit the binary is built from into `--version`, when the
//! source is a git checkout with git installed; otherwise nothing.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
}

fn main() {
    let suffix = git(&["rev-parse", "--short=12", "HEAD"])
        .map(|hash| format!(" ({hash})"))
        .unwrap_or_default();
    println!("cargo:rustc-env=PARATEST_GIT_SUFFIX={suffix}");
    // A commit moves HEAD or the branch it names (a worktree has its own HEAD).
    for (flag, files) in [
        ("--git-dir", &["HEAD"][..]),
        ("--git-common-dir", &["refs/heads", "packed-refs"][..]),
    ] {
        if let Some(dir) = git(&["rev-parse", flag]) {
            for file in files {
                let path = std::path::Path::new(&dir).join(file);
                if path.exists() {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
