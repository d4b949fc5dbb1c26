//! The command line cargo and nextest users already type: cargo's own flags
//! reach the build, run flags, help text, filtersets and per-test overrides.

mod common;

use common::Project;

/// `--locked` reaches `cargo test --no-run`: a Cargo.lock that the manifest
/// no longer matches fails the build (exit 3, cargo's error in the report),
/// and the same project builds and passes without it.
#[test]
fn locked_fails_on_a_stale_lock_file_as_cargo_test_does() {
    let project = Project::copy("basic");
    let manifest = project.path.join("Cargo.toml");
    let text = project.read("Cargo.toml");
    std::fs::write(
        &manifest,
        text.replace("version = \"0.1.0\"", "version = \"0.2.0\""),
    )
    .unwrap();
    let junit = project.path.join("locked.xml");
    let run = project
        .paratest()
        .args(["--locked", "-j", "2"])
        .arg_path_pair("--junit", &junit)
        .run()
        .expect(3);
    assert!(
        run.stderr().contains("--locked"),
        "cargo's error names --locked: {}",
        run.stderr()
    );
    let report = std::fs::read_to_string(&junit).unwrap();
    assert!(
        report.contains("--locked"),
        "the report holds cargo's error: {report}"
    );

    project.paratest().args(["-j", "2"]).run().expect(0);
    // The plain build updated the lock file: now --locked builds too.
    project
        .paratest()
        .args(["--locked", "-j", "2"])
        .run()
        .expect(0);
}

/// Every cargo flag is accepted and given to cargo in cargo's spelling: a
/// `--config` value cargo reads changes where it builds.
#[test]
fn cargo_flags_reach_cargo() {
    let project = Project::copy("basic");
    let target = project.scratch("config-target");
    project
        .paratest()
        .args([
            "list",
            "--offline",
            "--frozen",
            "--build-jobs",
            "1",
            "--cargo-quiet",
        ])
        .arg_path_pair(
            "--config",
            std::path::Path::new(&format!("build.target-dir=\"{}\"", target.display())),
        )
        .run()
        .expect(0);
    assert!(
        target.join("debug").is_dir(),
        "--config build.target-dir was used"
    );

    let run = project
        .paratest()
        .args(["list", "--bin", "basic", "--message-format", "json"])
        .run()
        .expect(0);
    let groups: std::collections::BTreeSet<String> = run
        .events()
        .iter()
        .filter_map(|e| e["group"].as_str().map(str::to_string))
        .collect();
    assert_eq!(groups.into_iter().collect::<Vec<_>>(), ["basic::bin/basic"]);
}
