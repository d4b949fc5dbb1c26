//! The reporters' output pinned with snapshots: every JSON event kind of
//! `run` and `list` (keys and value types, with run-dependent values
//! masked) and the human console of a run with one test of each outcome
//! (`fixtures/reporting`: a pass, a fail, a flaky retry, a skip, a timeout).

mod common;

use common::{Project, Run};
use serde_json::Value;

/// A run of `fixtures/reporting` on one worker (a fixed order) with one retry.
fn outcomes_run(project: &Project, extra: &[&str]) -> Run {
    let marks = project.scratch("marks");
    project
        .paratest()
        .args([
            "run",
            "-j",
            "1",
            "--retries",
            "1",
            "--slow-timeout",
            "500ms",
        ])
        .args(extra)
        .env("FLAKY_MARKS", &marks)
        .run()
        .expect(1)
}

/// Replaces what differs between runs: numbers that measure time, paths,
/// the run id. Every other value is kept; keys are kept, sorted.
fn masked(value: &Value, key: &str) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), masked(v, k))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| masked(v, key)).collect()),
        Value::Number(n) if n.is_f64() => Value::String("<seconds>".into()),
        Value::String(_) if key == "run_id" => Value::String("<run-id>".into()),
        Value::String(s) => Value::String(
            regex::Regex::new(r"(^|\s)/[^\s:]+")
                .unwrap()
                .replace_all(s, "${1}<path>")
                .into_owned(),
        ),
        other => other.clone(),
    }
}

fn masked_events(run: &Run) -> String {
    run.events()
        .iter()
        .map(|event| serde_json::to_string(&masked(event, "")).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Cargo's build lines, durations (`1.234s`, libtest's `0.00s`), thread
/// ids, the makespan ratio and absolute paths; the slowest tests by name.
fn masked_console(text: &str) -> String {
    // Cargo's own build lines are not ours (and vary: "Blocking waiting for
    // file lock" when another test builds at the same time).
    let cargo = regex::Regex::new(
        r"^\s+(Compiling|Finished|Blocking|Downloading|Downloaded|Locking|Updating|Adding|Checking)\b",
    )
    .unwrap();
    let kept: Vec<&str> = text.lines().filter(|line| !cargo.is_match(line)).collect();
    let mut text = kept.join("\n");
    for (pattern, with) in [
        (r"\d+\.\d{2,3}s", "<secs>"),
        (r"\(\d+\.\d{2}x\)", "(<ratio>)"),
        (r"'(\w+)' \(\d+\)", "'$1' (<tid>)"),
        (r"(^|[\s(])/[^\s)]+", "${1}<path>"),
    ] {
        text = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&text, with)
            .into_owned();
    }
    // The slowest tests' order follows their measured times: sorted by name.
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    if let Some(start) = lines.iter().position(|l| l == "Slowest tests:") {
        let end = (start + 1..lines.len())
            .find(|&i| !lines[i].starts_with("     <secs>"))
            .unwrap_or(lines.len());
        lines[start + 1..end].sort();
    }
    lines.join("\n")
}

#[test]
fn run_json_events_keep_their_keys_and_types() {
    let project = Project::copy("reporting");
    let run = outcomes_run(&project, &["--message-format", "json"]);
    insta::assert_snapshot!("run_json_events", masked_events(&run));
}

/// `warning` (logs inside the source) and `workspace-failed`.
#[test]
fn run_json_warning_and_workspace_failed() {
    let project = Project::copy("reporting");
    let run = project
        .paratest()
        .args(["run", "-j", "1", "--message-format", "json"])
        .args([
            "--output",
            "logs",
            "--setup-workspace",
            "echo no space >&2; exit 1",
        ])
        .run()
        .expect(3);
    insta::assert_snapshot!("run_json_workspace_failed", masked_events(&run));
}

#[test]
fn list_json_keeps_its_keys_and_types() {
    let project = Project::copy("reporting");
    let run = project
        .paratest()
        .args(["list", "--message-format", "json", "--plan", "-j", "2"])
        .args(["--partition", "1/1"])
        .run()
        .expect(0);
    insta::assert_snapshot!("list_json", masked_events(&run));
}

#[test]
fn human_console_of_every_outcome() {
    let project = Project::copy("reporting");
    let run = outcomes_run(&project, &[]);
    assert_eq!(run.stdout(), "", "the console writes to stderr only");
    insta::assert_snapshot!("human_console", masked_console(&run.stderr()));
}
