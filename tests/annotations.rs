//! GitHub annotations (`::error file=...,line=...`) printed by the binary
//! under `GITHUB_ACTIONS=true`, checked on real failing Rust, pytest and
//! command-plugin tests: the file relative to the repository, the line,
//! GitHub's escaping, and the cap of 10 with the rest in the step summary.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::{Project, Run};

/// A run of `project` as a GitHub Actions step: the fixture copy's parent is
/// the GitHub workspace, the step summary a file beside it.
fn github_run(project: &Project, args: &[&str]) -> (Run, String) {
    let workspace = project.path.parent().unwrap();
    let summary = workspace.join("summary.md");
    let run = project
        .paratest()
        .args(args)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", workspace)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .run();
    let summary = std::fs::read_to_string(&summary).unwrap_or_default();
    (run, summary)
}

/// The workflow commands a run printed, on either stream.
fn commands(text: &str) -> Vec<&str> {
    text.lines().filter(|line| line.starts_with("::")).collect()
}

/// Makes `dir` a Git repository, the root annotations are relative to; false
/// (and a note) when git is missing.
fn git_init(dir: &Path) -> bool {
    let Ok(output) = Command::new("git")
        .args(["init", "-q"])
        .current_dir(dir)
        .output()
    else {
        assert!(std::env::var_os("CI").is_none(), "git is required under CI");
        eprintln!("note: git missing; test skipped");
        return false;
    };
    assert!(output.status.success(), "{output:?}");
    true
}

#[test]
fn a_failing_rust_test_is_annotated_at_its_panic_on_stderr_only() {
    let project = Project::copy("failing");
    let (run, summary) = github_run(&project, &["run", "--message-format", "json"]);
    let run = run.expect(1);
    // stdout stays JSON lines only (events() parses every line).
    assert_eq!(run.finished()["failed"], 1);
    assert!(commands(&run.stdout()).is_empty(), "{}", run.stdout());
    assert_eq!(
        commands(&run.stderr()),
        ["::error file=failing/tests/checks.rs,line=19,col=5,\
             title=failed%3A failing%3A%3Achecks fails_with_message::\
             assertion `left == right` failed: expected 2, got 3%0A  left: 2%0A right: 3"],
        "{}",
        run.stderr()
    );
    assert!(!summary.contains("not annotated"), "{summary}");

    // Outside GitHub Actions, no annotation.
    let run = project
        .paratest()
        .args(["run"])
        .env("GITHUB_ACTIONS", "false")
        .env(
            "GITHUB_STEP_SUMMARY",
            project.scratch("none").join("summary.md"),
        )
        .run()
        .expect(1);
    assert!(commands(&run.stderr()).is_empty(), "{}", run.stderr());
    assert!(commands(&run.stdout()).is_empty(), "{}", run.stdout());
}

/// A workspace member's panic names its file from the workspace root; the
/// repository is the Git top level (here the project itself, although
/// GITHUB_WORKSPACE is its parent); at most 10 errors, the rest named in the
/// step summary.
#[test]
fn workspace_members_are_annotated_escaped_and_capped_at_ten() {
    let project = Project::copy("annotations");
    if !git_init(&project.path) {
        return;
    }
    let (run, summary) = github_run(&project, &["run", "-j", "2"]);
    let run = run.expect(1);
    let stderr = run.stderr();
    let errors = commands(&stderr);
    assert_eq!(errors.len(), 10, "{stderr}");
    let escapes = "::error file=crates/gadgets/src/lib.rs,line=10,col=9,\
                   title=failed%3A gadgets tests%3A%3Aescapes::100%25 broken: a, b%0Asecond line";
    assert!(errors.contains(&escapes), "{stderr}");

    let mut annotated = BTreeSet::new();
    for line in &errors {
        let Some(rest) = line.strip_prefix("::error file=crates/gadgets/tests/many.rs,line=")
        else {
            assert_eq!(*line, escapes);
            annotated.insert("gadgets tests::escapes".to_string());
            continue;
        };
        // `fail_NN` panics on line 5 * NN, column 5.
        let (line_number, rest) = rest
            .split_once(",col=5,title=failed%3A gadgets%3A%3Amany fail_")
            .unwrap();
        let (number, message) = rest.split_once("::").unwrap();
        assert_eq!(
            line_number.parse::<u32>().unwrap(),
            5 * number.parse::<u32>().unwrap(),
            "{line}"
        );
        assert_eq!(message, format!("failure {number}"));
        annotated.insert(format!("gadgets::many fail_{number}"));
    }
    assert_eq!(annotated.len(), 10, "{stderr}");

    let line = summary
        .lines()
        .find(|l| l.starts_with("2 more failures not annotated: "))
        .unwrap_or_else(|| panic!("{summary}"));
    let named: BTreeSet<String> = line
        .trim_start_matches("2 more failures not annotated: ")
        .split(", ")
        .map(|id| id.trim_matches('`').to_string())
        .collect();
    let mut all: BTreeSet<String> = (1..=11)
        .map(|n| format!("gadgets::many fail_{n:02}"))
        .collect();
    all.insert("gadgets tests::escapes".to_string());
    assert!(named.is_disjoint(&annotated), "{named:?} {annotated:?}");
    assert_eq!(
        named.union(&annotated).cloned().collect::<BTreeSet<_>>(),
        all
    );
}

/// A command-plugin test is its file: annotated there, with no line.
#[test]
fn a_command_test_is_annotated_at_its_file() {
    let project = Project::copy("annotations");
    let (run, _) = github_run(
        &project,
        &[
            "run",
            "--plugin",
            "command",
            "--test-pattern",
            "checks/*.sh",
        ],
    );
    let run = run.expect(1);
    assert_eq!(
        commands(&run.stderr()),
        ["::error file=annotations/checks/fails.sh,title=failed%3A checks/fails.sh::exit status 1"],
        "{}",
        run.stderr()
    );
}

/// A pytest failure points at the deepest traceback line in the test's own
/// file (an inherited test's is its base class's file), an error in a
/// fixture at the test's definition.
#[test]
fn failing_pytest_tests_are_annotated_at_their_traceback_line() {
    if !common::have_pytest() {
        return;
    }
    let project = Project::copy("pytest-verdicts");
    let (run, _) = github_run(&project, &["run", "--plugin", "pytest"]);
    let run = run.expect(1);
    let stderr = run.stderr();
    let errors = commands(&stderr);
    assert_eq!(errors.len(), 7, "{stderr}");
    for expected in [
        "::error file=pytest-verdicts/tests/test_phases.py,line=7,\
         title=failed%3A tests/test_phases.py%3A%3Atest_fails::AssertionError: arithmetic is broken%0A",
        "::error file=pytest-verdicts/tests/base_checks.py,line=12,\
         title=failed%3A tests/test_inherit.py%3A%3ATestChild%3A%3Atest_inherited_fails::AssertionError: expected is 2",
        "::error file=pytest-verdicts/tests/test_phases.py,line=10,\
         title=failed%3A tests/test_phases.py%3A%3Atest_setup_error::failed on setup with \"RuntimeError: setup exploded\"",
    ] {
        assert!(
            errors.iter().any(|line| line.starts_with(expected)),
            "{expected}\nnot in\n{stderr}"
        );
    }
}
