//! Test groups: `max-threads` caps how many of a group's tests run at once
//! over all workers, `exclusive` runs a test with nothing beside it. The
//! `groups` fixture's tests record their start and end times in a file
//! outside the workspace (`GROUPS_LOG`).

mod common;

use common::Project;

/// `(name, start, end)` of every test that ran, from the log.
fn intervals(log: &std::path::Path) -> Vec<(String, u128, u128)> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|line| {
            let mut parts = line.split_whitespace();
            let name = parts.next().unwrap().to_string();
            let start = parts.next().unwrap().parse().unwrap();
            let end = parts.next().unwrap().parse().unwrap();
            (name, start, end)
        })
        .collect()
}

fn overlap(a: &(String, u128, u128), b: &(String, u128, u128)) -> bool {
    a.1 < b.2 && b.1 < a.2
}

fn run_with(project: &Project, config: &str) -> Vec<(String, u128, u128)> {
    std::fs::write(project.path.join("paratest.toml"), config).unwrap();
    let log = project.scratch("log").join("times.log");
    let _ = std::fs::remove_file(&log);
    project
        .paratest()
        .env("GROUPS_LOG", &log)
        .args(["-j", "4"])
        .run()
        .expect(0);
    let times = intervals(&log);
    assert_eq!(times.len(), 9, "every test ran once: {times:?}");
    times
}

#[test]
fn a_group_with_max_threads_1_runs_one_test_at_a_time() {
    let project = Project::copy("groups");
    let times = run_with(
        &project,
        r#"
[[profile.default.overrides]]
filter = "test(/^db_/)"
test-group = "db"

[test-groups.db]
max-threads = 1
"#,
    );
    let db: Vec<_> = times.iter().filter(|t| t.0.starts_with("db_")).collect();
    assert_eq!(db.len(), 4);
    for (i, a) in db.iter().enumerate() {
        for b in &db[i + 1..] {
            assert!(!overlap(a, b), "{a:?} overlaps {b:?}");
        }
    }
    // The other workers were not idled while the group was full.
    let others: Vec<_> = times.iter().filter(|t| !t.0.starts_with("db_")).collect();
    assert!(
        others.iter().any(|o| db.iter().any(|d| overlap(o, d))),
        "tests outside the group ran beside it: {times:?}"
    );
}

#[test]
fn an_exclusive_test_overlaps_nothing() {
    let project = Project::copy("groups");
    let times = run_with(
        &project,
        r#"
[[profile.default.overrides]]
filter = "test(=solo)"
test-group = "alone"

[test-groups.alone]
exclusive = true
"#,
    );
    let solo = times.iter().find(|t| t.0 == "solo").unwrap();
    for other in times.iter().filter(|t| t.0 != "solo") {
        assert!(!overlap(solo, other), "{solo:?} overlaps {other:?}");
    }
    // Without the group, -j 4 runs the tests side by side.
    let free = times.iter().filter(|t| t.0 != "solo").collect::<Vec<_>>();
    assert!(
        free.iter()
            .enumerate()
            .any(|(i, a)| free[i + 1..].iter().any(|b| overlap(a, b))),
        "{times:?}"
    );
}

/// `group()` in `-E` selects by the test group the overrides give.
#[test]
fn group_predicate_selects_a_test_group() {
    let project = Project::copy("groups");
    std::fs::write(
        project.path.join("paratest.toml"),
        "[[profile.default.overrides]]\nfilter = \"test(/^db_/)\"\ntest-group = \"db\"\n\n[test-groups.db]\nmax-threads = 1\n",
    )
    .unwrap();
    let select = |expr: &str| -> Vec<String> {
        let mut names: Vec<String> = project
            .paratest()
            .args(["list", "--message-format", "json", "-E", expr])
            .run()
            .expect(0)
            .events()
            .iter()
            .map(|e| {
                e["id"]
                    .as_str()
                    .unwrap()
                    .rsplit(' ')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        names.sort();
        names
    };
    assert_eq!(select("group(db)"), ["db_1", "db_2", "db_3", "db_4"]);
    assert_eq!(select("group(=@global) & test(solo)"), ["solo"]);
}

/// `priority` puts a test ahead of the longest-first order (higher first).
#[test]
fn priority_orders_the_queue() {
    let project = Project::copy("groups");
    let order = |config: &str| -> Vec<String> {
        std::fs::write(project.path.join("paratest.toml"), config).unwrap();
        project
            .paratest()
            .args(["list", "--message-format", "json"])
            .run()
            .expect(0)
            .events()
            .iter()
            .map(|e| {
                e["id"]
                    .as_str()
                    .unwrap()
                    .rsplit(' ')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(order("")[0], "db_1", "equal durations go by id");
    let ordered = order(
        "[[profile.default.overrides]]\nfilter = \"test(=solo)\"\npriority = 50\n\n\
         [[profile.default.overrides]]\nfilter = \"test(=db_1)\"\npriority = -1\n",
    );
    assert_eq!(ordered.first().map(String::as_str), Some("solo"));
    assert_eq!(ordered.last().map(String::as_str), Some("db_1"));
}
