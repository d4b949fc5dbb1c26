//! `cargo paratest archive` and `run --archive-file`: build once, run
//! elsewhere with no cargo, no rustc and no target directory (issue 13).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{Paratest, Project, case_shapes, read_junit};

/// A directory that holds only `sh`, to be the whole `PATH`: no cargo, no rustc.
fn bare_path(dir: &Path) -> PathBuf {
    let bin = dir.join("bare-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let sh = ["/bin/sh", "/usr/bin/sh"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap();
    std::os::unix::fs::symlink(sh, bin.join("sh")).unwrap();
    for tool in ["cargo", "rustc"] {
        assert!(!bin.join(tool).exists(), "{tool} in the bare PATH");
    }
    bin
}

/// Builds the archive of `project` into `file`.
fn make_archive(project: &Project, file: &Path, extra: &[&str]) -> common::Run {
    project
        .paratest()
        .args(["archive", "--archive-file"])
        .arg_path(file)
        .args(extra)
        .run()
        .expect(0)
}

/// Moves the project (its source and its target directory) away: the
/// build machine's paths no longer exist.
fn move_away(project: &Project) -> PathBuf {
    let moved = project.path.with_file_name("moved-away");
    std::fs::rename(&project.path, &moved).unwrap();
    assert!(!project.path.exists());
    moved
}

/// The archive of a fresh copy of `fixture`, with the copy moved away:
/// the copy (which owns the temporary directory), the scratch directory,
/// the archive, and a `PATH` without cargo.
fn archived_and_moved(fixture: &str) -> (Project, PathBuf, PathBuf, PathBuf) {
    let project = Project::copy(fixture);
    let scratch = project.scratch("scratch");
    let file = scratch.join("archive.tar.zst");
    make_archive(&project, &file, &[]);
    move_away(&project);
    let bin = bare_path(&scratch);
    (project, scratch, file, bin)
}

/// A run from the archive in `cwd`, with only `bin` on PATH.
fn from_archive(cwd: &Path, bin: &Path, file: &Path) -> Paratest {
    std::fs::create_dir_all(cwd).unwrap();
    Paratest::new(cwd)
        .env("PATH", bin)
        .args(["run", "--archive-file"])
        .arg_path(file)
}

#[test]
fn shards_from_an_archive_elsewhere_give_the_verdicts_of_a_normal_run() {
    let project = Project::copy("archive-suite");
    let scratch = project.scratch("scratch");
    let normal = project
        .paratest()
        .args(["run", "-j", "2", "--message-format", "json"])
        .run()
        .expect(1);
    let expected = normal.results();
    assert_eq!(expected.len(), 12, "{expected:?}");
    assert_eq!(expected["archive-suite tests::fails_on_purpose"], "failed");
    assert_eq!(expected["archive-suite tests::ignored_one"], "skipped");
    assert_eq!(expected["archive-suite::runs_binary greets_bob"], "passed");

    let file = scratch.join("suite.tar.zst");
    make_archive(&project, &file, &[]);
    let moved = move_away(&project);
    std::fs::remove_dir_all(moved.join("target")).unwrap();
    let bin = bare_path(&scratch);

    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for k in 1..=2 {
        let machine = scratch.join(format!("machine-{k}"));
        let junit = machine.join("junit.xml");
        let run = from_archive(&machine, &bin, &file)
            .args(["--partition", &format!("{k}/2"), "-j", "2"])
            .args(["--message-format", "json"])
            .arg_path_pair("--junit", &junit)
            .run();
        let results = run.results();
        let failed = results.values().any(|r| r == "failed");
        assert_eq!(
            run.code(),
            if failed { 1 } else { 0 },
            "shard {k}: {}",
            run.stderr()
        );
        let shapes = case_shapes(&read_junit(&junit));
        common::assert_schema_valid(&junit);
        for (id, result) in results {
            assert!(shapes.contains_key(&id), "{id} not in shard {k}'s JUnit");
            assert!(
                seen.insert(id.clone(), result).is_none(),
                "{id} ran in both shards"
            );
        }
    }
    assert_eq!(seen, expected, "verdicts from the archive differ");
}

#[test]
fn run_options_work_from_an_archive() {
    let (_project, scratch, file, bin) = archived_and_moved("archive-suite");
    let machine = scratch.join("machine");
    let marker = scratch.join("hook-marker");
    let timings_out = machine.join("out-timings.json");
    let run = from_archive(&machine, &bin, &file)
        .args(["-j", "2", "--retries", "1", "--message-format", "json"])
        .args(["--setup-test", "echo ran >> \"$HOOK_MARKER\""])
        .env("HOOK_MARKER", &marker)
        .arg_path_pair("--timings-out", &timings_out)
        .args(["--", "--include-ignored"])
        .run()
        .expect(1);
    let results = run.results();
    assert_eq!(results["archive-suite tests::ignored_one"], "passed");
    assert_eq!(results["archive-suite tests::fails_on_purpose"], "failed");
    // The default report is in the current directory, not in the unpacked copy.
    let shapes = case_shapes(&read_junit(&machine.join(".paratest/junit.xml")));
    assert!(
        shapes["archive-suite tests::fails_on_purpose"].starts_with("failed:1:"),
        "one retry: {shapes:?}"
    );
    // The logs too, and the events name them there (the unpacked copy is gone).
    let failed = run
        .events()
        .into_iter()
        .find(|e| {
            e["event"] == "test-finished" && e["id"] == "archive-suite tests::fails_on_purpose"
        })
        .unwrap();
    let log = PathBuf::from(failed["stdout"].as_str().unwrap());
    assert!(
        log.starts_with(machine.join(".paratest")),
        "{}",
        log.display()
    );
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("fails_on_purpose")
    );
    let hooks = std::fs::read_to_string(&marker).unwrap();
    // 12 tests, and one retry.
    assert_eq!(hooks.lines().count(), 13, "{hooks}");
    let timings: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&timings_out).unwrap()).unwrap();
    assert!(
        timings.to_string().contains("greets_alice"),
        "timings hold the tests: {timings}"
    );
}

#[test]
fn environment_points_into_the_workspace_and_the_unpacked_binaries() {
    let project = Project::copy("cargo-env");
    let scratch = project.scratch("scratch");
    let original = project.path.canonicalize().unwrap();
    let file = scratch.join("env.tar.zst");
    make_archive(&project, &file, &[]);
    move_away(&project);
    let bin = bare_path(&scratch);
    let dump = scratch.join("dump");
    std::fs::create_dir_all(&dump).unwrap();
    let root = scratch.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let run = from_archive(&scratch.join("machine"), &bin, &file)
        .env("ENV_DUMP", &dump)
        .args(["-j", "1", "--message-format", "json"])
        .arg_path_pair("--workspace-root", &root)
        .run()
        .expect(0);
    let results = run.results();
    assert_eq!(results["cargo-env::dump runs_the_binary"], "passed");
    assert_eq!(results["cargo-env::dump dumps_env"], "passed");
    let env: BTreeMap<String, String> = std::fs::read_to_string(dump.join("dump.env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let root = root.canonicalize().unwrap();
    for name in ["CARGO_MANIFEST_DIR", "CWD", "PWD"] {
        assert!(Path::new(&env[name]).starts_with(&root), "{name}: {env:?}");
    }
    assert_eq!(
        env["CARGO_MANIFEST_PATH"],
        format!("{}/Cargo.toml", env["CARGO_MANIFEST_DIR"])
    );
    for name in ["CARGO_BIN_EXE_env-tool", "CARGO_TARGET_TMPDIR"] {
        let value = &env[name];
        assert!(
            !value.starts_with(original.to_str().unwrap()),
            "{name}={value}"
        );
        assert!(value.contains("paratest-archive-"), "{name}={value}");
    }
    assert_eq!(env["CARGO_PKG_VERSION"], "1.2.3-beta.4");
}

/// A shared library a build script made (a `-sys` crate's) is archived and
/// found at run time, as `cargo test` finds it in the target directory.
#[test]
fn shared_libraries_the_tests_link_travel_with_the_archive() {
    let project = Project::copy("archive-dylib");
    let normal = project
        .paratest()
        .args(["run", "--message-format", "json"])
        .run()
        .expect(0);
    assert_eq!(normal.results().len(), 2);
    let scratch = project.scratch("scratch");
    let file = scratch.join("dylib.tar.zst");
    make_archive(&project, &file, &[]);
    let moved = move_away(&project);
    std::fs::remove_dir_all(moved.join("target")).unwrap();
    let bin = bare_path(&scratch);
    let run = from_archive(&scratch.join("machine"), &bin, &file)
        .args(["--message-format", "json"])
        .run()
        .expect(0);
    assert_eq!(run.results(), normal.results());
}

#[test]
fn an_archive_without_source_runs_against_a_checkout() {
    let project = Project::copy("archive-suite");
    let scratch = project.scratch("scratch");
    let file = scratch.join("nosrc.tar.zst");
    make_archive(&project, &file, &["--no-source"]);
    let moved = move_away(&project);
    std::fs::remove_dir_all(moved.join("target")).unwrap();
    let bin = bare_path(&scratch);
    let machine = scratch.join("machine");
    let refused = from_archive(&machine, &bin, &file).run().expect(2);
    assert!(
        refused.stderr().contains("--no-source") && refused.stderr().contains("--source DIR"),
        "{}",
        refused.stderr()
    );
    let run = from_archive(&machine, &bin, &file)
        .arg_path_pair("--source", &moved)
        .args(["--message-format", "json"])
        .run()
        .expect(1);
    let results = run.results();
    assert_eq!(results.len(), 12);
    assert_eq!(
        results["archive-suite::source_files reads_data_from_manifest_dir"],
        "passed"
    );
}

#[test]
fn list_reads_the_archive() {
    let (_project, scratch, file, bin) = archived_and_moved("archive-suite");
    let machine = scratch.join("machine");
    std::fs::create_dir_all(&machine).unwrap();
    let listed = Paratest::new(&machine)
        .env("PATH", &bin)
        .args(["list", "--message-format", "json", "--archive-file"])
        .arg_path(&file)
        .run()
        .expect(0);
    let ids: Vec<String> = listed
        .events()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 11, "the ignored test is not listed: {ids:?}");
    assert!(ids.contains(&"archive-suite::runs_binary greets_carol".to_string()));
}

// --------------------------------------------------------------------------
// hostile and broken archives

/// One raw tar entry, its header written byte by byte (the tar crate
/// refuses to build the hostile ones).
#[derive(Clone, Copy)]
struct Raw<'a> {
    path: &'a str,
    kind: tar::EntryType,
    link: &'a str,
    data: &'a [u8],
}

fn entry<'a>(path: &'a str, data: &'a [u8]) -> Raw<'a> {
    Raw {
        path,
        kind: tar::EntryType::Regular,
        link: "",
        data,
    }
}

const MANIFEST: &str = r#"{"format":"cargo-paratest-archive","format_version":1,"created_by":"test","source_included":true,"binaries":[]}"#;

fn tar_bytes(entries: &[Raw<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for raw in entries {
        let mut header = tar::Header::new_old();
        {
            let old = header.as_old_mut();
            old.name[..raw.path.len()].copy_from_slice(raw.path.as_bytes());
            old.linkname[..raw.link.len()].copy_from_slice(raw.link.as_bytes());
        }
        header.set_mode(0o644);
        header.set_size(raw.data.len() as u64);
        header.set_entry_type(raw.kind);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(raw.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn zstd_bytes(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// Runs `--archive-file` on `bytes` with TMPDIR in a scratch directory;
/// expects exit 2 with `reason` in the message, and nothing written
/// outside the unpacked directory (`escaped` must not appear).
fn refused(bytes: &[u8], reason: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.tar.zst");
    std::fs::write(&file, bytes).unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let cwd = dir.path().join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let run = Paratest::new(&cwd)
        .env("TMPDIR", &tmp)
        .args(["run", "--archive-file"])
        .arg_path(&file)
        .run()
        .expect(2);
    let stderr = run.stderr();
    assert!(stderr.contains("--archive-file"), "{stderr}");
    assert!(stderr.contains(reason), "expected `{reason}` in:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for place in [dir.path().join("escaped"), tmp.join("escaped")] {
        assert!(!place.exists(), "{} was written", place.display());
    }
    // The unpacked directory is gone too.
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

#[test]
fn foreign_corrupt_truncated_and_newer_archives_are_refused() {
    refused(b"PK\x03\x04 a zip file", "not a cargo-paratest archive");
    refused(
        &zstd_bytes(b"plain text, not a tar"),
        "not a cargo-paratest archive",
    );
    refused(
        &zstd_bytes(&tar_bytes(&[entry("README", b"hello")])),
        "starts with `README`",
    );
    let newer = MANIFEST.replace("\"format_version\":1", "\"format_version\":7");
    let newer = tar_bytes(&[Raw {
        data: newer.as_bytes(),
        ..entry("paratest-archive.json", b"")
    }]);
    refused(&zstd_bytes(&newer), "format_version 7 is not supported");
    let foreign = tar_bytes(&[entry("paratest-archive.json", b"{\"format\":\"other\"}")]);
    refused(&zstd_bytes(&foreign), "not a cargo-paratest archive");

    // A real archive cut short.
    let project = Project::copy("basic");
    let file = project.scratch("scratch").join("basic.tar.zst");
    make_archive(&project, &file, &[]);
    let whole = std::fs::read(&file).unwrap();
    refused(&whole[..whole.len() / 2], "corrupt or truncated");
}

fn hostile(entries: &[Raw<'_>], reason: &str) {
    let mut all = vec![entry("paratest-archive.json", MANIFEST.as_bytes())];
    all.extend(entries.iter().copied());
    refused(&zstd_bytes(&tar_bytes(&all)), reason);
}

#[test]
fn unpacking_never_writes_outside_its_directory() {
    hostile(&[entry("source/../../escaped", b"x")], "`..`");
    let dir = tempfile::tempdir().unwrap();
    let absolute = format!("{}/escaped", dir.path().display());
    hostile(&[entry(&absolute, b"x")], "absolute path");
    assert!(!Path::new(&absolute).exists());
    let link = |path, link| Raw {
        path,
        kind: tar::EntryType::Symlink,
        link,
        data: b"",
    };
    hostile(
        &[
            link("source/out", "../.."),
            entry("source/out/escaped", b"x"),
        ],
        "symbolic link to ../..",
    );
    hostile(&[link("source/etc", "/etc")], "symbolic link to /etc");
    hostile(
        &[Raw {
            kind: tar::EntryType::Link,
            ..link("target/passwd", "/etc/passwd")
        }],
        "hard links are not allowed",
    );
    hostile(
        &[Raw {
            kind: tar::EntryType::Char,
            ..entry("target/null", b"")
        }],
        "device files are not allowed",
    );
    hostile(
        &[Raw {
            kind: tar::EntryType::Fifo,
            ..entry("source/fifo", b"")
        }],
        "FIFOs are not allowed",
    );
    hostile(&[entry("escaped", b"x")], "only `source/` and `target/`");
}

// --------------------------------------------------------------------------
// the GitHub Action's shard step

/// `scripts/action-run run` with `INPUT_ARCHIVE_FILE`, as a matrix shard of
/// ci/github-sharded.yml runs it: a fresh GitHub workspace holding only the
/// downloaded archive, `cargo-paratest` on PATH and no cargo.
#[test]
fn the_action_runs_a_shard_from_the_archive_without_cargo() {
    let (_project, scratch, file, _) = archived_and_moved("archive-suite");
    let workspace = scratch.join("github-workspace");
    std::fs::create_dir_all(&workspace).unwrap();
    std::fs::copy(&file, workspace.join("paratest-archive.tar.zst")).unwrap();
    let bin = scratch.join("action-bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_cargo-paratest"),
        bin.join("cargo-paratest"),
    )
    .unwrap();
    // The system's tools (bash, python3, coreutils), not ~/.cargo/bin.
    let path = format!("{}:/usr/bin:/bin", bin.display());
    for dir in ["/usr/bin", "/bin"] {
        assert!(!Path::new(dir).join("cargo").exists(), "cargo in {dir}");
    }
    let github = scratch.join("github");
    std::fs::create_dir_all(&github).unwrap();
    let mut command = std::process::Command::new("bash");
    command
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/action-run"))
        .arg("run")
        .current_dir(&workspace)
        .env_clear()
        .env("PATH", &path)
        .env("HOME", &scratch)
        .env("NO_COLOR", "1")
        .env("GITHUB_WORKSPACE", &workspace)
        .env("GITHUB_OUTPUT", github.join("output"))
        .env("RUNNER_TEMP", github.join("runner-temp"))
        .env("INPUT_ARCHIVE_FILE", "paratest-archive.tar.zst")
        .env("INPUT_PARTITION", "1/2");
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let outputs: BTreeMap<String, String> = std::fs::read_to_string(github.join("output"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let count = |key: &str| outputs[key].parse::<usize>().unwrap();
    assert!(count("passed") > 0, "{outputs:?}\n{stderr}");
    let code: i32 = outputs["exit-code"].parse().unwrap();
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    assert_eq!(code, if count("failed") > 0 { 1 } else { 0 }, "{stderr}");
    // Shard 1 of 2 holds about half of the 11 tests that run.
    assert!(count("passed") + count("failed") < 11, "{outputs:?}");
    let artifact = PathBuf::from(&outputs["artifact-dir"]);
    let shapes = case_shapes(&read_junit(&artifact.join("junit.xml")));
    assert_eq!(
        shapes.len(),
        count("passed") + count("failed") + count("skipped")
    );
    assert!(artifact.join("timings.json").is_file());
}
