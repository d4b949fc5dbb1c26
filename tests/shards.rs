//! Timings, longest-first order, partitions across machines, and merging
//! the shards' reports and timings: the flow a sharded CI pipeline runs.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::Project;

fn timings_ids(path: &Path) -> BTreeSet<String> {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(json["format_version"], 1);
    json["tests"].as_object().unwrap().keys().cloned().collect()
}

/// The ids `list --partition K/N` puts in shard K (checking each event says so).
fn listed_shard(project: &Project, k: usize, n: usize) -> BTreeSet<String> {
    let partition = format!("{k}/{n}");
    let run = project
        .paratest()
        .args([
            "list",
            "--partition",
            &partition,
            "--message-format",
            "json",
        ])
        .run()
        .expect(0);
    run.events()
        .iter()
        .inspect(|e| assert_eq!(e["shard"], k))
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn timings_are_remembered_and_the_longest_test_goes_first() {
    let project = Project::copy("skewed");
    let json = ["--message-format", "json", "-j", "4"];
    let cold = project.paratest().args(json).run().expect(0);
    // Cold: no timings, id order, and the 4 s test sorts last.
    assert_eq!(cold.started().last().unwrap(), "skewed::durations z_long");
    let timings = project.path.join(".paratest/timings.json");
    assert_eq!(timings_ids(&timings).len(), 17);
    let warm = project.paratest().args(json).run().expect(0);
    assert_eq!(warm.started()[0], "skewed::durations z_long");
    let show = project.paratest().args(["timings", "show"]).run().expect(0);
    let first = show.stdout().lines().next().unwrap().to_string();
    assert!(
        first.contains("z_long") && first.contains("2 samples"),
        "{first}"
    );
    let list = project
        .paratest()
        .args(["list", "--plan", "-j", "4", "--message-format", "json"])
        .run()
        .expect(0);
    let events = list.events();
    assert_eq!(events[0]["id"], "skewed::durations z_long");
    assert!(events[0]["expected_duration"].as_f64().unwrap() > 3.5);
    assert!(
        events
            .iter()
            .all(|e| (1..=4).contains(&e["worker"].as_u64().unwrap()))
    );
    project
        .paratest()
        .args(["timings", "clear"])
        .run()
        .expect(0);
    assert!(!timings.exists());
}

#[test]
fn failures_do_not_teach_the_scheduler() {
    let project = Project::copy("failing");
    project.paratest().run().expect(1);
    let ids = timings_ids(&project.path.join(".paratest/timings.json"));
    assert!(!ids.contains("failing::checks fails_with_message"));
    assert!(ids.contains("failing::checks passes_one"));
}

#[test]
fn a_corrupt_timings_file_is_a_warning_and_is_kept_aside() {
    let project = Project::copy("basic");
    let timings = project.path.join(".paratest/timings.json");
    std::fs::create_dir_all(timings.parent().unwrap()).unwrap();
    std::fs::write(&timings, "{\"format_version\": 1, \"tests\": {\"x\": ").unwrap();
    let run = project.paratest().run().expect(0);
    assert!(
        run.stderr().contains("warning") && run.stderr().contains("timings.json"),
        "{}",
        run.stderr()
    );
    assert!(
        project.path.join(".paratest/timings.json.corrupt").exists(),
        "the corrupt bytes are kept"
    );
    assert_eq!(timings_ids(&timings).len(), 10);
    std::fs::write(&timings, "not json").unwrap();
    let json = project
        .paratest()
        .args(["--message-format", "json"])
        .run()
        .expect(0);
    assert!(
        json.events()
            .iter()
            .any(|e| e["event"] == "warning"
                && e["message"].as_str().unwrap().contains("timings.json")),
        "JSON consumers get the warning as an event"
    );
}

#[test]
fn a_newer_timings_format_is_never_overwritten() {
    let project = Project::copy("basic");
    let timings = project.path.join(".paratest/timings.json");
    std::fs::create_dir_all(timings.parent().unwrap()).unwrap();
    let newer = "{\"format_version\": 99, \"tests\": {}}";
    std::fs::write(&timings, newer).unwrap();
    let run = project.paratest().run().expect(0);
    assert!(run.stderr().contains("warning"), "{}", run.stderr());
    assert_eq!(std::fs::read_to_string(&timings).unwrap(), newer);
}

#[test]
fn partitions_are_disjoint_complete_and_checked() {
    let project = Project::copy("skewed");
    let shard_ids = |k: usize| listed_shard(&project, k, 3);
    let shards: Vec<BTreeSet<String>> = (1..=3).map(shard_ids).collect();
    let union: BTreeSet<String> = shards.iter().flatten().cloned().collect();
    assert_eq!(union.len(), 17);
    assert_eq!(
        shards.iter().map(BTreeSet::len).sum::<usize>(),
        17,
        "every test in exactly one shard"
    );
    for bad in ["0/3", "4/3", "3/2", "x/y", "1/0", "1"] {
        let run = project
            .paratest()
            .args(["list", "--partition", bad])
            .run()
            .expect(2);
        assert!(
            run.stderr().contains("partition"),
            "{bad}: {}",
            run.stderr()
        );
    }
    let run = project
        .paratest()
        .args(["list", "--partition", "auto"])
        .run()
        .expect(2);
    for variable in [
        "CI_NODE_INDEX",
        "CIRCLE_NODE_INDEX",
        "BUILDKITE_PARALLEL_JOB",
    ] {
        assert!(run.stderr().contains(variable), "{}", run.stderr());
    }
    let gitlab = project
        .paratest()
        .args(["list", "--partition", "auto", "--message-format", "json"])
        .env("CI_NODE_INDEX", "2")
        .env("CI_NODE_TOTAL", "3")
        .run()
        .expect(0);
    assert!(gitlab.events().iter().all(|e| e["shard"] == 2));
}

#[test]
fn an_empty_shard_passes_with_a_note() {
    let project = Project::copy("basic");
    let run = project
        .paratest()
        .args(["--partition", "5/40", "add_works"])
        .run()
        .expect(0);
    assert!(run.stderr().contains("no test"), "{}", run.stderr());
}

/// The CI flow: each machine runs its shard on the same timings, then one
/// job merges the reports and the timings.
#[test]
fn sharded_runs_merge_into_one_report_and_one_timings_file() {
    let project = Project::copy("faults");
    let artifacts = project.scratch("artifacts");
    for k in 1..=3 {
        let junit = artifacts.join(format!("junit-{k}.xml"));
        let timings = artifacts.join(format!("timings-{k}.json"));
        let run = project
            .paratest()
            .args([
                "--partition",
                &format!("{k}/3"),
                "--retries",
                "1",
                "--timeout",
                "2s",
                "--message-format",
                "json",
            ])
            .arg_path_pair("--junit", &junit)
            .arg_path_pair("--timings", &timings)
            .run();
        assert!([0, 1].contains(&run.code()), "{}", run.stderr());
        assert!(
            run.events()
                .iter()
                .all(|e| e["event"] != "test-started" || e["id"].is_string())
        );
    }
    let merged = artifacts.join("merged.xml");
    let inputs: Vec<_> = (1..=3)
        .map(|k| artifacts.join(format!("junit-{k}.xml")))
        .collect();
    project
        .paratest()
        .args(["merge", "-o"])
        .arg_path(&merged)
        .args(&inputs)
        .run()
        .expect(0);
    let report =
        quick_junit::Report::deserialize_from_str(&std::fs::read_to_string(&merged).unwrap())
            .unwrap();
    let mut names: Vec<String> = report
        .test_suites
        .iter()
        .flat_map(|s| s.test_cases.iter().map(|c| c.name.as_str().to_string()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "always_fails",
            "flaky_once",
            "garbage_output",
            "hangs_with_child",
            "ignored_test",
            "passes"
        ]
    );
    assert_eq!((report.tests, report.failures), (6, 2));

    let merged_timings = artifacts.join("timings.json");
    // A shard writes its own file beside the one it read.
    let timing_inputs: Vec<_> = (1..=3)
        .map(|k| artifacts.join(format!("timings-{k}.shard-{k}-of-3.json")))
        .filter(|p| p.exists())
        .collect();
    assert!(!timing_inputs.is_empty());
    project
        .paratest()
        .args(["timings", "merge", "-o"])
        .arg_path(&merged_timings)
        .args(&timing_inputs)
        .run()
        .expect(0);
    let ids = timings_ids(&merged_timings);
    for passing in ["flaky_once", "garbage_output", "passes"] {
        assert!(
            ids.contains(&format!("faults::faults {passing}")),
            "{ids:?}"
        );
    }
}

#[test]
fn merge_rejects_a_malformed_report_and_writes_nothing() {
    let project = Project::copy("basic");
    let fixtures = common::fixtures_dir().join("junit");
    let out = project.path.join("merged.xml");
    let run = project
        .paratest()
        .args(["merge", "-o"])
        .arg_path(&out)
        .arg_path(&fixtures.join("shard-1.xml"))
        .arg_path(&fixtures.join("malformed-truncated.xml"))
        .run()
        .expect(2);
    assert!(
        run.stderr().contains("malformed-truncated.xml"),
        "{}",
        run.stderr()
    );
    assert!(!out.exists());
    project
        .paratest()
        .args(["merge", "-o"])
        .arg_path(&out)
        .args(["nextest.xml", "pytest.xml", "jest-junit.xml"].map(|f| fixtures.join(f)))
        .run()
        .expect(0);
    assert!(out.exists());
}

#[test]
fn timings_import_reads_junit_reports_of_any_tool() {
    let project = Project::copy("basic");
    project.paratest().run().expect(0);
    let out = project.path.join("imported.json");
    project
        .paratest()
        .args(["timings", "import", "-o"])
        .arg_path(&out)
        .arg_path(&project.path.join(".paratest/junit.xml"))
        .arg_path(&common::fixtures_dir().join("junit/nextest.xml"))
        .run()
        .expect(0);
    let ids = timings_ids(&out);
    assert!(
        ids.contains("basic::integration add_works"),
        "our ids round-trip: {ids:?}"
    );
    let run = project
        .paratest()
        .args(["timings", "import"])
        .arg_path(&common::fixtures_dir().join("junit/malformed-truncated.xml"))
        .run()
        .expect(2);
    assert!(run.stderr().contains("malformed-truncated.xml"));
}

#[test]
fn absurd_durations_are_a_warning_not_a_panic() {
    let project = Project::copy("basic");
    let timings = project.path.join(".paratest/timings.json");
    std::fs::create_dir_all(timings.parent().unwrap()).unwrap();
    let huge = r#"{"format_version": 1, "tests": {"basic tests::adds": {"samples": [{"duration": 1.5e19, "recorded": 1}]}}}"#;
    std::fs::write(&timings, huge).unwrap();
    let run = project.paratest().run().expect(0);
    assert!(run.stderr().contains("warning"), "{}", run.stderr());
    let report = project.path.join("absurd.xml");
    std::fs::write(
        &report,
        r#"<testsuites><testsuite name="s" tests="2"><testcase name="a" time="1e30"/><testcase name="b" time="-3"/><testcase name="c" time="0.5"/></testsuite></testsuites>"#,
    )
    .unwrap();
    let out = project.path.join("imported.json");
    project
        .paratest()
        .args(["timings", "import", "-o"])
        .arg_path(&out)
        .arg_path(&report)
        .run()
        .expect(0);
    assert_eq!(timings_ids(&out), BTreeSet::from(["s c".to_string()]));
}

#[test]
fn shards_sharing_one_timings_file_never_change_each_others_split() {
    let project = Project::copy("basic");
    project.paratest().run().expect(0);
    let split = |k: usize| listed_shard(&project, k, 3);
    let before: Vec<_> = (1..=3).map(split).collect();
    let timings = project.path.join(".paratest/timings.json");
    let read = std::fs::read_to_string(&timings).unwrap();
    let mut ran = Vec::new();
    for k in 1..=3 {
        let run = project
            .paratest()
            .args(["--partition", &format!("{k}/3"), "--message-format", "json"])
            .run()
            .expect(0);
        ran.extend(
            run.results()
                .into_iter()
                .filter(|(_, r)| r != "skipped")
                .map(|(id, _)| id),
        );
        let finished = run.finished();
        assert!(
            finished["timings"]
                .as_str()
                .unwrap()
                .ends_with(&format!("timings.shard-{k}-of-3.json"))
        );
    }
    assert_eq!(
        std::fs::read_to_string(&timings).unwrap(),
        read,
        "the file the split came from is untouched"
    );
    assert_eq!((1..=3).map(split).collect::<Vec<_>>(), before);
    ran.sort();
    let unique: BTreeSet<_> = ran.iter().cloned().collect();
    assert_eq!(ran.len(), unique.len(), "no test ran twice");
    assert_eq!(unique.len(), 10);
}
