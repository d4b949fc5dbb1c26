//! The GitHub Action's script (`scripts/action-run`, what `action.yml` runs)
//! run locally against fixture copies, with the `GITHUB_*` files pointed at
//! temporary files and the action's inputs given as `INPUT_*` variables.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::Project;

/// One run of `scripts/action-run MODE` from the fixture copy's parent (the
/// faked GitHub workspace), with `cargo-paratest` first on PATH.
struct Action {
    workspace: PathBuf,
    temp: tempfile::TempDir,
    command: Command,
}

impl Action {
    fn new(project: &Project, mode: &str) -> Action {
        let workspace = project.path.parent().unwrap().to_path_buf();
        let temp = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/action-run");
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_cargo-paratest"))
            .parent()
            .unwrap()
            .to_path_buf();
        let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )))
        .unwrap();
        let mut command = Command::new("bash");
        command
            .arg(script)
            .arg(mode)
            .current_dir(&workspace)
            .stdin(Stdio::null());
        // Neither an outer cargo-paratest run (this suite may run under one)
        // nor a real GitHub job may leak into the run under test.
        for (name, _) in std::env::vars_os() {
            let name_text = name.to_string_lossy();
            if ["PARATEST", "GITHUB_", "INPUT_", "RUNNER_"]
                .iter()
                .any(|prefix| name_text.starts_with(prefix))
            {
                command.env_remove(&name);
            }
        }
        command
            .env_remove("CI")
            .env_remove("CARGO_TARGET_DIR")
            .env("PATH", path)
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "0")
            .env("GITHUB_WORKSPACE", &workspace)
            .env("GITHUB_OUTPUT", temp.path().join("output"))
            .env("GITHUB_STEP_SUMMARY", temp.path().join("summary.md"))
            .env("RUNNER_TEMP", temp.path().join("runner-temp"))
            .env("INPUT_WORKING_DIRECTORY", project.path.file_name().unwrap());
        Action {
            workspace,
            temp,
            command,
        }
    }

    fn input(mut self, name: &str, value: &str) -> Action {
        self.command.env(format!("INPUT_{name}"), value);
        self
    }

    fn env(mut self, name: &str, value: &str) -> Action {
        self.command.env(name, value);
        self
    }

    fn env_remove(mut self, name: &str) -> Action {
        self.command.env_remove(name);
        self
    }

    fn run(mut self) -> Finished {
        let output = self.command.output().expect("cannot run bash");
        Finished {
            output,
            workspace: self.workspace,
            temp: self.temp,
        }
    }
}

struct Finished {
    output: Output,
    workspace: PathBuf,
    temp: tempfile::TempDir,
}

impl Finished {
    fn expect(self, code: i32) -> Finished {
        assert_eq!(
            self.output.status.code(),
            Some(code),
            "exit code\n--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout(),
            String::from_utf8_lossy(&self.output.stderr)
        );
        self
    }

    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// What was written to `$GITHUB_OUTPUT`, the last value of each key.
    fn outputs(&self) -> BTreeMap<String, String> {
        let text = std::fs::read_to_string(self.temp.path().join("output")).unwrap_or_default();
        text.lines()
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    fn summary(&self) -> String {
        std::fs::read_to_string(self.temp.path().join("summary.md")).unwrap_or_default()
    }
}

fn assert_outputs(outputs: &BTreeMap<String, String>, expected: &[(&str, &str)]) {
    for (key, value) in expected {
        assert_eq!(
            outputs.get(*key).map(String::as_str),
            Some(*value),
            "output {key} in {outputs:#?}"
        );
    }
}

#[test]
fn prepare_resolves_paths_names_and_the_binary_cache_key() {
    let project = Project::copy("basic");
    let prepared = Action::new(&project, "prepare")
        .input("PARTITION", "2/4")
        .run()
        .expect(0);
    let outputs = prepared.outputs();
    assert_outputs(
        &outputs,
        &[
            ("shard", "2-of-4"),
            ("artifact-name", "paratest-2-of-4"),
            ("timings-cache-path", "basic/.paratest/timings.json"),
            ("save-timings", "false"),
        ],
    );
    assert_eq!(
        Path::new(&outputs["timings"]),
        project.path.join(".paratest/timings.json")
    );
    assert_eq!(outputs["source-hash"].len(), 32, "{outputs:?}");

    // Unpartitioned: one artifact for everything, and the job saves timings.
    let outputs = Action::new(&project, "prepare")
        .input("ARTIFACT_NAME", "linux tests")
        .run()
        .expect(0)
        .outputs();
    assert_outputs(
        &outputs,
        &[
            ("shard", "all"),
            ("artifact-name", "linux tests"),
            ("save-timings", "true"),
        ],
    );
    assert!(outputs["artifact-dir"].ends_with("/paratest-artifact-linux-tests"));
}

#[test]
fn a_passing_run_writes_counts_report_and_artifact() {
    let project = Project::copy("basic");
    let action = Action::new(&project, "run").input("WORKERS", "2");
    std::fs::write(action.temp.path().join("summary.md"), "earlier step\n").unwrap();
    let finished = action.run().expect(0);
    assert_eq!(finished.workspace, project.path.parent().unwrap());
    let outputs = finished.outputs();
    assert_outputs(
        &outputs,
        &[
            ("passed", "10"),
            ("failed", "0"),
            ("flaky", "0"),
            ("skipped", "1"),
            ("timed-out", "0"),
            ("not-run", "0"),
            ("exit-code", "0"),
        ],
    );
    let report = PathBuf::from(&outputs["report"]);
    assert_eq!(report, project.path.join(".paratest/junit.xml"));
    assert!(report.is_file());
    assert_eq!(
        PathBuf::from(&outputs["timings"]),
        project.path.join(".paratest/timings.json")
    );
    let artifact = PathBuf::from(&outputs["artifact-dir"]);
    assert!(
        artifact.ends_with("paratest-artifact-paratest-all"),
        "{artifact:?}"
    );
    assert_eq!(
        std::fs::read_to_string(artifact.join("junit.xml")).unwrap(),
        std::fs::read_to_string(&report).unwrap()
    );
    assert!(artifact.join("timings.json").is_file());
    assert_eq!(
        std::fs::read_to_string(artifact.join("timings-before.sha256")).unwrap(),
        "none\n"
    );
    // Events stay out of the log; the summary is appended, once.
    assert!(
        !finished.stdout().contains("run-finished"),
        "{}",
        finished.stdout()
    );
    let summary = finished.summary();
    assert!(summary.starts_with("earlier step\n"), "{summary}");
    assert_eq!(summary.matches("cargo-paratest:").count(), 1, "{summary}");
    assert!(summary.contains("| 10 | 0 | 0 | 0 | 1 | 0 |"), "{summary}");

    // A second run splits by the timings the first one wrote.
    let second = Action::new(&project, "run").run().expect(0);
    let outputs = second.outputs();
    assert_ne!(
        std::fs::read_to_string(
            PathBuf::from(&outputs["artifact-dir"]).join("timings-before.sha256")
        )
        .unwrap(),
        "none\n"
    );
}

#[test]
fn a_failing_shard_exits_1_with_its_counts_and_annotations() {
    let project = Project::copy("failing");
    let finished = Action::new(&project, "run")
        .input("PARTITION", "1/1")
        .input("JUNIT", "target/shard-1.xml")
        .input("ARGS", "--retries 1 --slow-timeout '60s'")
        .env("GITHUB_ACTIONS", "true")
        .run()
        .expect(1);
    let outputs = finished.outputs();
    assert_outputs(
        &outputs,
        &[
            ("passed", "4"),
            ("failed", "1"),
            ("flaky", "0"),
            ("skipped", "0"),
            ("timed-out", "0"),
            ("exit-code", "1"),
        ],
    );
    let report = project.path.join("target/shard-1.xml");
    assert_eq!(PathBuf::from(&outputs["report"]), report);
    assert!(report.is_file());
    let artifact = PathBuf::from(&outputs["artifact-dir"]);
    assert!(
        artifact.ends_with("paratest-artifact-paratest-1-of-1"),
        "{artifact:?}"
    );
    assert!(artifact.join("junit.xml").is_file());
    assert_eq!(
        std::fs::read_to_string(artifact.join("partition")).unwrap(),
        "1/1\n"
    );

    // The annotation is cargo-paratest's own, on stderr, at the panic's line
    // (relative to the faked GitHub workspace); the script adds none.
    let stderr = finished.stderr();
    let annotations: Vec<&str> = stderr.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(
        annotations,
        ["::error file=failing/tests/checks.rs,line=19,col=5,\
          title=failed%3A failing%3A%3Achecks fails_with_message::\
          assertion `left == right` failed: expected 2, got 3%0A  left: 2%0A right: 3%0A(2 attempts)"],
        "{stderr}"
    );
    assert!(!finished.stdout().contains("::"), "{}", finished.stdout());
    let summary = finished.summary();
    assert!(summary.contains("fails_with_message"), "{summary}");
    assert!(summary.contains("| 4 | 1 | 0 | 0 | 0 | 0 |"), "{summary}");
    assert_eq!(summary.matches("cargo-paratest:").count(), 1, "{summary}");
}

#[test]
fn a_usage_error_exits_2_without_counts() {
    let project = Project::copy("basic");
    let finished = Action::new(&project, "run")
        .input("ARGS", "--no-such-flag")
        .run()
        .expect(2);
    let outputs = finished.outputs();
    assert_outputs(&outputs, &[("exit-code", "2"), ("report", "")]);
    assert!(!outputs.contains_key("passed"), "{outputs:?}");

    // Unbalanced quotes in `args` are the action's own usage error.
    Action::new(&project, "run")
        .input("ARGS", "--retries 'one")
        .run()
        .expect(2);
}

/// `action-run install` builds with stable whatever the caller's
/// `rust-toolchain.toml` pins (here nightly, which is not the toolchain the
/// action installs with), from outside the caller's directory. `cargo` is a
/// stand-in that records what the real rustup proxy would build with (a
/// real `cargo install` takes minutes); `rustc` is the real one.
#[test]
fn install_ignores_the_callers_rust_toolchain_file() {
    let rustup = Command::new("rustup").arg("--version").output();
    if rustup.is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "rustup is required under CI"
        );
        eprintln!("note: no rustup; toolchain check skipped");
        return;
    }
    let project = Project::copy("basic");
    let workspace = project.path.parent().unwrap().to_path_buf();
    std::fs::write(
        workspace.join("rust-toolchain.toml"),
        "[toolchain]\nchannel = \"nightly\"\n",
    )
    .unwrap();
    let shims = tempfile::tempdir().unwrap();
    let record = shims.path().join("record");
    let shim = shims.path().join("cargo");
    std::fs::write(
        &shim,
        "#!/bin/sh\n{ echo \"cwd=$(pwd)\"; echo \"args=$*\"; echo \"rustc=$(rustc --version 2>&1)\"; } >\"$SHIM_RECORD\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = std::env::join_paths(std::iter::once(shims.path().to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let stable = Command::new("rustc")
        .arg("--version")
        .env("RUSTUP_TOOLCHAIN", "stable")
        .output()
        .unwrap();
    let stable = String::from_utf8_lossy(&stable.stdout).trim().to_owned();

    Action::new(&project, "install")
        .env("PATH", path.to_str().unwrap())
        .env("SHIM_RECORD", record.to_str().unwrap())
        .env("RUSTUP_AUTO_INSTALL", "0")
        .env_remove("RUSTUP_TOOLCHAIN")
        .run()
        .expect(0);
    let recorded: BTreeMap<String, String> = std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    assert_eq!(recorded["rustc"], stable, "{recorded:#?}");
    assert!(
        !Path::new(&recorded["cwd"]).starts_with(&workspace),
        "cargo install ran in the caller's directory: {recorded:#?}"
    );
    assert_eq!(
        recorded["args"],
        format!(
            "install --locked --force --path {}",
            env!("CARGO_MANIFEST_DIR")
        )
    );
}

/// The binary cache is restored, and saved in a step of its own right after
/// the install whatever the tests do (`always()`): a red run no longer makes
/// the next job build cargo-paratest from source.
#[test]
fn action_saves_the_binary_cache_even_when_the_tests_fail() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml")).unwrap();
    let action = yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap()
        .remove(0);
    let steps = action["runs"]["steps"].as_vec().unwrap();
    let field = |step: &yaml_rust2::Yaml, key: &str| step[key].as_str().unwrap_or("").to_owned();
    let position = |wanted: &dyn Fn(&yaml_rust2::Yaml) -> bool| {
        steps
            .iter()
            .position(wanted)
            .unwrap_or_else(|| panic!("no such step in action.yml"))
    };
    let bin = "${{ steps.prepare.outputs.bin }}";
    assert!(
        !steps
            .iter()
            .any(|step| field(step, "uses").starts_with("actions/cache@")),
        "actions/cache saves only when the job succeeds"
    );
    let restore = position(&|step| {
        field(step, "uses").starts_with("actions/cache/restore@")
            && field(&step["with"], "path") == bin
    });
    let install = position(&|step| field(step, "id") == "install");
    let save = position(&|step| {
        field(step, "uses").starts_with("actions/cache/save@")
            && field(&step["with"], "path") == bin
    });
    let run = position(&|step| field(step, "id") == "run");
    assert!(
        restore < install && install < save && save < run,
        "{restore} {install} {save} {run}"
    );
    assert_eq!(field(&steps[restore], "id"), "bin-cache");
    assert!(field(&steps[install], "if").contains("steps.bin-cache.outputs.cache-hit != 'true'"));
    let save_if = field(&steps[save], "if");
    assert!(save_if.contains("always()"), "{save_if}");
    assert!(
        save_if.contains("steps.install.outcome == 'success'"),
        "{save_if}"
    );
    assert_eq!(
        field(&steps[save]["with"], "key"),
        "${{ steps.bin-cache.outputs.cache-primary-key }}"
    );
}

/// `rust-version` is declared, allowed by the edition (2024: 1.85) and no
/// lower than what any dependency that gets built declares.
#[test]
fn rust_version_is_declared_and_covers_the_dependencies() {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    // `1.91` is `1.91.0`.
    let version = |text: &str| -> Vec<u64> {
        let mut parts: Vec<u64> = text.split('.').map(|n| n.parse().unwrap()).collect();
        parts.resize(3, 0);
        parts
    };
    let packages: BTreeMap<&str, &serde_json::Value> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    let root = metadata["resolve"]["root"].as_str().unwrap();
    let ours = packages[root]["rust_version"]
        .as_str()
        .expect("Cargo.toml declares no rust-version");
    assert!(
        version(ours) >= vec![1, 85, 0],
        "edition 2024 needs 1.85, not {ours}"
    );
    // Normal and build dependencies, transitively: what `cargo install` builds.
    let nodes: BTreeMap<&str, &serde_json::Value> = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let (mut seen, mut todo) = (std::collections::BTreeSet::new(), vec![root]);
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let built = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|kind| kind["kind"].is_null() || kind["kind"] == "build");
            if built {
                todo.push(dep["pkg"].as_str().unwrap());
            }
        }
    }
    for id in seen {
        if let Some(theirs) = packages[id]["rust_version"].as_str() {
            assert!(
                version(theirs) <= version(ours),
                "{} needs Rust {theirs}, more than our rust-version {ours}",
                packages[id]["name"]
            );
        }
    }
}

/// The script reads only the `run-finished` event, in either key spelling
/// (snake_case today, kebab-case tolerated), with jq or, where jq does not
/// work, with sed; `args` is split into words with quotes kept and nothing
/// expanded. `cargo-paratest` is a stand-in that records its arguments and
/// prints a canned event stream.
#[test]
fn outputs_come_from_the_run_finished_event_with_or_without_jq() {
    let project = Project::copy("basic");
    let shims = tempfile::tempdir().unwrap();
    let record = shims.path().join("args");
    let report = project.path.join("report dir/junit.xml");
    std::fs::create_dir_all(report.parent().unwrap()).unwrap();
    std::fs::write(&report, "<testsuites/>").unwrap();
    let stub = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$@\" >'{}'\n\
         echo '{{\"event\":\"run-started\",\"tests\":9}}'\n\
         echo '{{\"event\": \"test-finished\", \"id\": \"x\", \"result\": \"failed\"}}'\n\
         echo '{{\"event\": \"run-finished\", \"passed\": 3, \"failed\": 1, \"flaky\": 2, \
         \"timed-out\": 1, \"skipped\": 4, \"not_run\": 0, \"duration\": 1.5, \
         \"junit\": \"{}\", \"timings\": null}}'\nexit 1\n",
        record.display(),
        report.display()
    );
    let shim = shims.path().join("cargo-paratest");
    std::fs::write(&shim, stub).unwrap();
    let broken_jq = shims.path().join("jq");
    std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path_with = |first: &Path| {
        std::env::join_paths(
            std::iter::once(first.to_path_buf()).chain(std::env::split_paths(
                &std::env::var_os("PATH").unwrap_or_default(),
            )),
        )
        .unwrap()
        .into_string()
        .unwrap()
    };
    let expected = [
        ("passed", "3"),
        ("failed", "1"),
        ("flaky", "2"),
        ("timed-out", "1"),
        ("skipped", "4"),
        ("not-run", "0"),
        ("duration", "1.5"),
        ("exit-code", "1"),
    ];
    for jq_works in [true, false] {
        if jq_works {
            if Command::new("jq").arg("--version").output().is_err() {
                eprintln!("note: no jq; only the sed reading is checked");
                continue;
            }
            let _ = std::fs::remove_file(&broken_jq);
        } else {
            std::fs::write(&broken_jq, "#!/bin/sh\nexit 127\n").unwrap();
            std::fs::set_permissions(
                &broken_jq,
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .unwrap();
        }
        let finished = Action::new(&project, "run")
            .env("PATH", &path_with(shims.path()))
            .input("ARGS", r#"--retries 2 --slow-timeout '1 m' -- "a b" c\ d"#)
            .run()
            .expect(1);
        let outputs = finished.outputs();
        assert_outputs(&outputs, &expected);
        assert_eq!(
            Path::new(&outputs["report"]),
            report,
            "jq works: {jq_works}"
        );
        let artifact = PathBuf::from(&outputs["artifact-dir"]);
        assert_eq!(
            std::fs::read_to_string(artifact.join("junit.xml")).unwrap(),
            "<testsuites/>"
        );
        let args = std::fs::read_to_string(&record).unwrap();
        assert!(
            args.ends_with("\n--retries\n2\n--slow-timeout\n1 m\n--\na b\nc d\n"),
            "{args}"
        );
        assert!(
            args.starts_with("paratest\nrun\n--message-format\njson\n"),
            "{args}"
        );
    }
}
