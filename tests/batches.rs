//! Cargo batches: once timings say a binary's tests are short, several run
//! in one process. Each test of `fixtures/cargo-batches` records its PID,
//! so these tests count the processes; verdicts, output and time limits
//! stay per test.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Project, read_junit};

const TESTS: usize = 29;

/// Runs that record timings, so that the next one knows the tests are
/// short: the first runs each test alone (no timings yet), the second
/// learns each test's own time from its batch.
fn warm(project: &Project) {
    for _ in 0..2 {
        project
            .paratest()
            .args(["-j", "2"])
            .env("RUST_BACKTRACE", "0")
            .run();
    }
}

/// A `-j 2` JSON run with `extra` env; returns the run and each test's PID.
fn run_counting(
    project: &Project,
    env: &[(&str, &str)],
    args: &[&str],
) -> (common::Run, BTreeMap<String, Vec<u32>>) {
    let pids = project.scratch("pids").join("pids");
    let _ = std::fs::remove_file(&pids);
    let mut paratest = project
        .paratest()
        .args(["-j", "2", "--message-format", "json"])
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .env("BATCH_PIDS", &pids);
    for (name, value) in env {
        paratest = paratest.env(name, value);
    }
    let run = paratest.run();
    let text = std::fs::read_to_string(&pids).unwrap_or_default();
    // A test run again alone (after a crash in its batch) records two PIDs.
    let mut by_test: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for (name, pid) in text.lines().filter_map(|line| line.split_once(' ')) {
        by_test
            .entry(name.to_string())
            .or_default()
            .push(pid.parse().unwrap());
    }
    (run, by_test)
}

fn processes(pids: &BTreeMap<String, Vec<u32>>) -> usize {
    pids.values().flatten().collect::<BTreeSet<_>>().len()
}

fn id(name: &str) -> String {
    format!("cargo-batches tests::{name}")
}

fn message_of(run: &common::Run, name: &str) -> String {
    run.events()
        .iter()
        .rev()
        .find(|e| e["event"] == "test-finished" && e["id"] == id(name).as_str())
        .and_then(|e| e["message"].as_str().map(str::to_string))
        .unwrap_or_default()
}

fn shares_a_process(pids: &BTreeMap<String, Vec<u32>>, name: &str) -> bool {
    let own = pids.get(name).cloned().unwrap_or_default();
    pids.iter()
        .any(|(other, theirs)| other != name && theirs.iter().any(|pid| own.contains(pid)))
}

#[test]
fn short_tests_share_processes_and_keep_their_own_verdicts_output_and_times() {
    let project = Project::copy("cargo-batches");
    warm(&project);
    let (run, pids) = run_counting(&project, &[], &[]);
    let run = run.expect(1);
    let results = run.results();
    assert_eq!(results.len(), TESTS, "{results:?}");
    for (test, result) in &results {
        let want = if test == &id("panics") {
            "failed"
        } else {
            "passed"
        };
        assert_eq!(result, want, "{test}");
    }
    assert_eq!(pids.len(), TESTS, "every test ran: {pids:?}");
    // How many share depends on the measured start-up and times (a loaded
    // machine makes fewer, smaller batches); never one process per test.
    assert!(
        processes(&pids) < TESTS,
        "{} processes for {TESTS} short tests: {pids:?}",
        processes(&pids)
    );
    assert_eq!(message_of(&run, "panics"), "panics on purpose");
    // Each test's own output (stdout and stderr, in order), in its own log.
    let runs = project.path.join(".paratest/runs");
    let latest = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let own = std::fs::read_dir(&latest)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with("cargo-batches_tests__prints_output-") && name.ends_with(".1.stdout")
        })
        .expect("prints_output's own log");
    let out = std::fs::read_to_string(own).unwrap();
    assert!(out.contains("stdout of prints_output"), "{out}");
    assert!(out.contains("stderr of prints_output"), "{out}");
    for other in ["tests::s0", "tests::panics", "panics on purpose"] {
        assert!(!out.contains(other), "{out}");
    }
    let _ = read_junit(&project.path.join(".paratest/junit.xml"));
    let durations: BTreeMap<String, f64> = run
        .events()
        .iter()
        .filter(|e| e["event"] == "test-finished")
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_string(),
                e["duration"].as_f64().unwrap(),
            )
        })
        .collect();
    let distinct: BTreeSet<String> = durations.values().map(|d| format!("{d:.9}")).collect();
    assert!(
        distinct.len() > 1,
        "a batch's tests have their own times, not equal shares: {durations:?}"
    );
}

#[test]
fn a_crash_in_a_batch_names_the_culprit_and_the_others_keep_true_verdicts() {
    let project = Project::copy("cargo-batches");
    warm(&project);
    let (run, pids) = run_counting(&project, &[("BATCH_CRASH", "1")], &[]);
    let run = run.expect(1);
    let results = run.results();
    assert_eq!(results.len(), TESTS, "{results:?}");
    for (test, result) in &results {
        let failing = [id("panics"), id("crashes")];
        let want = if failing.contains(test) {
            "failed"
        } else {
            "passed"
        };
        assert_eq!(result, want, "{test}");
    }
    let message = message_of(&run, "crashes");
    assert!(message.contains("signal 6"), "{message}");
    // It crashed its batch, then ran again alone and was named; the tests
    // its batch had not finished ran alone too (one PID each, passed).
    assert_eq!(pids["crashes"].len(), 2, "{pids:?}");
    for (name, own) in &pids {
        if name != "crashes" {
            assert_eq!(own.len(), 1, "{name} ran once: {pids:?}");
        }
    }
}

#[test]
fn a_test_that_hangs_in_a_batch_times_out_by_its_own_limit() {
    let project = Project::copy("cargo-batches");
    warm(&project);
    let started = std::time::Instant::now();
    let (run, pids) = run_counting(&project, &[("BATCH_HANG", "1")], &["--timeout", "3s"]);
    let elapsed = started.elapsed();
    let run = run.expect(1);
    let results = run.results();
    assert_eq!(results[&id("hangs")], "timed-out");
    assert_eq!(message_of(&run, "hangs"), "timed out after 3s");
    for (test, result) in &results {
        let failing = [id("panics"), id("hangs")];
        if !failing.contains(test) {
            assert_eq!(result, "passed", "{test}");
        }
    }
    // Whether `hangs` itself shares a process depends on how the batches
    // fell on a loaded machine; the others do share.
    assert!(processes(&pids) < TESTS, "batches ran: {pids:?}");
    // Its own limit, not the batch's sum of limits.
    assert!(
        elapsed < std::time::Duration::from_secs(20),
        "took {elapsed:?}"
    );
}

#[test]
fn batch_false_and_alone_patterns_keep_a_process_per_test() {
    let project = Project::copy("cargo-batches");
    warm(&project);
    let (_, batched) = run_counting(&project, &[], &[]);
    assert!(processes(&batched) < TESTS, "{batched:?}");

    std::fs::write(
        project.path.join("paratest.toml"),
        "[plugin.cargo]\nbatch = false\n",
    )
    .unwrap();
    let (run, alone) = run_counting(&project, &[], &[]);
    assert_eq!(run.results().len(), TESTS);
    assert_eq!(processes(&alone), TESTS, "one process per test: {alone:?}");

    // Process-global state: `global_b` fails where `global_a` ran before it
    // in the same process; `alone` keeps those two apart.
    std::fs::write(
        project.path.join("paratest.toml"),
        "[plugin.cargo]\nalone = [\"tests::global_*\"]\n",
    )
    .unwrap();
    let (run, pids) = run_counting(&project, &[("BATCH_GLOBAL", "1")], &[]);
    let results = run.results();
    assert_eq!(results[&id("global_a")], "passed");
    assert_eq!(results[&id("global_b")], "passed");
    assert!(!shares_a_process(&pids, "global_a"), "{pids:?}");
    assert!(!shares_a_process(&pids, "global_b"), "{pids:?}");
    assert!(processes(&pids) < TESTS, "the others batch: {pids:?}");

    std::fs::write(
        project.path.join("paratest.toml"),
        "[plugin.cargo]\nbatch = 3\n",
    )
    .unwrap();
    let run = project.paratest().run().expect(2);
    assert!(run.stderr().contains("[plugin.cargo]"), "{}", run.stderr());
}

/// The tests `cargo test` fails with `env` set (the fixture's own verdicts).
fn failing(env: &str) -> Vec<String> {
    let mut failing = vec![id("panics")];
    if env == "BATCH_NOISE" {
        for name in ["b", "c", "d", "e", "f"] {
            failing.push(id(&format!("noise_{name}_fails")));
        }
    }
    failing
}

#[test]
fn a_noisy_background_thread_does_not_turn_failures_into_passes() {
    let project = Project::copy("cargo-batches");
    warm(&project);
    // `noise_a`'s thread prints `heartbeat ok` lines between libtest's
    // `FAILED` and the next start line of the failing tests after it.
    for _ in 0..3 {
        let run = project
            .paratest()
            .args(["-j", "1", "--message-format", "json"])
            .env("RUST_BACKTRACE", "0")
            .env("BATCH_NOISE", "1")
            .run()
            .expect(1);
        let results = run.results();
        assert_eq!(results.len(), TESTS, "{results:?}");
        let failing = failing("BATCH_NOISE");
        for (test, result) in &results {
            let want = if failing.contains(test) {
                "failed"
            } else {
                "passed"
            };
            assert_eq!(result, want, "{test}: {results:?}");
        }
    }
}

#[test]
fn a_test_printing_20_mb_without_a_newline_runs_in_bounded_memory() {
    let project = Project::copy("cargo-batches");
    warm(&project);
    // `long_line` fails when the driver of its batch held its output.
    let (run, pids) = run_counting(&project, &[("BATCH_LONG", "1")], &[]);
    let run = run.expect(1);
    let results = run.results();
    assert_eq!(results.len(), TESTS, "{results:?}");
    assert!(shares_a_process(&pids, "long_line"), "{pids:?}");
    assert_eq!(
        pids["long_line"].len(),
        1,
        "ran once, in its batch: {pids:?}"
    );
    let failing = failing("BATCH_LONG");
    for (test, result) in &results {
        let want = if failing.contains(test) {
            "failed"
        } else {
            "passed"
        };
        assert_eq!(result, want, "{test}: {}", message_of(&run, "long_line"));
    }
    // All of it is in its own log.
    let runs = project.path.join(".paratest/runs");
    let latest = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let log = std::fs::read_dir(&latest)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with("cargo-batches_tests__long_line-") && name.ends_with(".1.stdout")
        })
        .expect("long_line's own log");
    let size = std::fs::metadata(&log).unwrap().len();
    assert!(size >= 20 * 1024 * 1024, "{size} bytes in {log:?}");
}
