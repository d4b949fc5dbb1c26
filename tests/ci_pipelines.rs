//! The shipped CI set-ups (`ci/`) run as their CI would run them: two
//! consecutive pipelines of GitLab CI, CircleCI, Buildkite and Jenkins on a
//! real fixture project (`fixtures/ci-pipeline`, twelve tests of distinct
//! durations).
//!
//! Every job runs on its own "machine": a fresh copy of the repository (the
//! fixture with this repository's `ci/` directory) in a directory of its own,
//! the CI's own variables set (GitLab's `CI_NODE_INDEX` 1-based, CircleCI's
//! `CIRCLE_NODE_INDEX` and Buildkite's `BUILDKITE_PARALLEL_JOB` 0-based, ...),
//! and only what that CI hands on between jobs reaching it: GitLab artifacts
//! through `needs:`, CircleCI's workspace and cache, Buildkite artifacts,
//! Jenkins stashes and archived artifacts. The CI's services are played by
//! this file (cache, workspace, stash, Copy Artifact) or by small stand-ins
//! on `PATH` (`tests/ci-standins/`: `curl` for GitLab's artifacts API,
//! `buildkite-agent artifact`, `aws s3 cp`). The set-ups' line that installs
//! cargo-paratest (`cargo install ... cargo-paratest`) is replaced by the
//! binary under test, first on `PATH`. Jenkins' Groovy cannot run here: its
//! shell steps live in `ci/paratest-shard` and `ci/paratest-merge`, which the
//! simulation runs in the stages the `Jenkinsfile` names.
//!
//! Checked for each CI: every job is green; each test is in exactly one
//! shard's report and once in the merged report; the timings handed to the
//! second pipeline hold every test with the first pipeline's samples, and
//! its merge adds the new ones; the second pipeline's shards are balanced by
//! expected time (max shard / mean <= 1.05); no `*.lock` file is in
//! anything handed on.
//!
//! The queue set-ups (`ci/gitlab-queue.yml`, `ci/github-queue.yml`) run
//! once each, their machines and report job at the same time, on a real
//! `redis-server` standing in for the shared Redis.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use yaml_rust2::{Yaml, YamlLoader};

/// The fixture's tests and their durations: see `fixtures/README.md`.
const DURATIONS_MS: [u32; 12] = [400, 370, 340, 310, 280, 250, 220, 190, 160, 130, 100, 70];
const SHARDS: usize = 3;
const BRANCH: &str = "main";

fn test_ids() -> BTreeSet<String> {
    DURATIONS_MS
        .iter()
        .map(|ms| format!("ci-pipeline::durations takes_{ms:03}ms"))
        .collect()
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One simulation at a time: each one already runs three shards of two
/// workers at once, and the second pipeline's balance is judged on
/// durations measured by the first, which a machine loaded four times over
/// makes noisier than any CI machine.
static ONE_SIMULATION: Mutex<()> = Mutex::new(());

/// One job as it ran.
struct Job {
    name: String,
    ok: bool,
    log: String,
}

/// What a pipeline handed on, under the set-ups' common names.
struct Pipeline {
    jobs: Vec<Job>,
    /// The timings every shard read (`ci-timings/timings.json`), if any.
    handed: Option<PathBuf>,
    /// Each shard's `junit.xml` and `timings.json`, as handed to the merge.
    shards: Vec<(PathBuf, PathBuf)>,
    /// `merged/`, as kept for the next pipeline.
    merged: PathBuf,
    /// Every directory something was handed on in (artifacts, caches, stashes).
    handed_on: Vec<PathBuf>,
}

/// The machines, the CI's storage and the stand-ins of one simulation.
struct Sim {
    temp: tempfile::TempDir,
    path: OsString,
    machines: AtomicUsize,
    installs_replaced: AtomicUsize,
}

impl Sim {
    fn new() -> Sim {
        let temp = tempfile::Builder::new()
            .prefix("paratest-ci-")
            .tempdir()
            .unwrap();
        let bin = temp.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_cargo-paratest"),
            bin.join("cargo-paratest"),
        )
        .unwrap();
        for standin in ["curl", "buildkite-agent", "aws"] {
            std::os::unix::fs::symlink(
                repo().join("tests/ci-standins").join(standin),
                bin.join(standin),
            )
            .unwrap();
        }
        let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )))
        .unwrap();
        Sim {
            temp,
            path,
            machines: AtomicUsize::new(0),
            installs_replaced: AtomicUsize::new(0),
        }
    }

    /// A directory of the CI's own storage (created).
    fn store(&self, relative: &str) -> PathBuf {
        let path = self.temp.path().join("ci").join(relative);
        std::fs::create_dir_all(&path).unwrap();
        path
    }

    /// A new machine's empty working directory.
    fn machine(&self, label: &str) -> PathBuf {
        let number = self.machines.fetch_add(1, Ordering::SeqCst);
        let label: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let path = self
            .temp
            .path()
            .join("machines")
            .join(format!("{number:03}-{label}"))
            .join("project");
        std::fs::create_dir_all(&path).unwrap();
        path
    }

    /// A new machine with a fresh copy of the repository.
    fn checkout(&self, label: &str) -> PathBuf {
        let path = self.machine(label);
        checkout_into(&path);
        path
    }

    /// The set-up's line that installs cargo-paratest becomes a no-op: the
    /// binary under test is first on PATH already.
    fn replace_install(&self, line: &str) -> String {
        let trimmed = line.trim_start();
        if trimmed.starts_with("cargo install") && trimmed.contains("cargo-paratest") {
            self.installs_replaced.fetch_add(1, Ordering::SeqCst);
            "echo 'simulated: the cargo-paratest under test is on PATH'".to_owned()
        } else {
            line.to_owned()
        }
    }

    /// Runs `script` with `shell` (the CI's own way: `bash -eo pipefail -c`
    /// and so on) in `cwd`, with the CI's variables.
    fn run(
        &self,
        name: &str,
        shell: &[&str],
        cwd: &Path,
        script: &str,
        env: &[(&str, String)],
    ) -> Job {
        let mut command = Command::new(shell[0]);
        command
            .args(&shell[1..])
            .arg(script)
            .current_dir(cwd)
            .stdin(Stdio::null());
        // Nothing of an outer CI job or cargo-paratest run may leak in.
        for (variable, _) in std::env::vars_os() {
            let text = variable.to_string_lossy();
            if [
                "PARATEST",
                "CI_",
                "GITLAB",
                "CIRCLE",
                "BUILDKITE",
                "JENKINS",
                "GITHUB_",
                "RUNNER_",
            ]
            .iter()
            .any(|prefix| text.starts_with(prefix))
                || [
                    "CI",
                    "CARGO_TARGET_DIR",
                    "BUILD_NUMBER",
                    "JOB_NAME",
                    "WORKSPACE",
                ]
                .contains(&text.as_ref())
            {
                command.env_remove(&variable);
            }
        }
        command
            .env("PATH", &self.path)
            .env("NO_COLOR", "1")
            .env("SIM_S3", self.store("s3"));
        for (variable, value) in env {
            command.env(variable, value);
        }
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {shell:?}: {e}"));
        Job {
            name: name.to_owned(),
            ok: output.status.success(),
            log: format!(
                "--- {name} in {} ({}):\n$ {script}\n{}{}",
                cwd.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    }
}

/// The fixture project, with this repository's `ci/` as its own.
fn checkout_into(path: &Path) {
    copy_into(&repo().join("fixtures/ci-pipeline"), path);
    copy_into(&repo().join("ci"), &path.join("ci"));
}

/// Copies a file or a directory tree into `to` (merging directories), as
/// artifacts, caches and stashes are unpacked. Skips `target/`.
fn copy_into(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name() != "target" {
                copy_into(&entry.path(), &to.join(entry.file_name()));
            }
        }
    } else if from.is_file() {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
}

/// Copies `relative` (a file or a directory) of `dir` to the same place under `store`.
fn save(dir: &Path, relative: &str, store: &Path) {
    let relative = relative.trim_end_matches('/');
    copy_into(&dir.join(relative), &store.join(relative));
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(files_under(&path));
            } else {
                files.push(path);
            }
        }
    }
    files
}

fn load_yaml(relative: &str) -> Yaml {
    let text = std::fs::read_to_string(repo().join(relative)).unwrap();
    YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{relative}: {e}"))
        .remove(0)
}

/// A YAML string or list of strings, as lines.
fn lines(value: &Yaml) -> Vec<String> {
    match value {
        Yaml::String(line) => vec![line.clone()],
        Yaml::Array(items) => items
            .iter()
            .map(|item| item.as_str().expect("a script line").to_owned())
            .collect(),
        Yaml::BadValue | Yaml::Null => Vec::new(),
        other => panic!("not a script: {other:?}"),
    }
}

/// Runs `count` copies of a job at once, each on its own machine.
fn parallel<T: Send>(count: usize, job: impl Fn(usize) -> T + Sync) -> Vec<T> {
    std::thread::scope(|scope| {
        let job = &job;
        let handles: Vec<_> = (0..count)
            .map(|index| scope.spawn(move || job(index)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

// ---------------------------------------------------------------- GitLab CI

const GITLAB_KEYWORDS: &[&str] = &[
    "stages",
    "default",
    "variables",
    "workflow",
    "include",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
];

/// One GitLab pipeline of `ci/gitlab-ci.yml`: stages in order, `parallel:`
/// copies with `CI_NODE_INDEX` 1..N, artifacts of `needs:` (else of every
/// earlier stage) unpacked into each job's fresh clone, `artifacts:when`
/// honoured; the server keeps the newest `merge` job's artifacts of the
/// default branch for its artifacts API.
fn gitlab_pipeline(sim: &Sim, config: &Yaml, number: usize) -> Pipeline {
    let server = sim.store("gitlab/server");
    let pipeline_dir = sim.store(&format!("gitlab/pipeline-{number}"));
    let mut stages = vec![".pre".to_owned()];
    stages.extend(lines(&config["stages"]));
    stages.push(".post".to_owned());
    let jobs: Vec<(String, &Yaml)> = config
        .as_hash()
        .unwrap()
        .iter()
        .map(|(key, job)| (key.as_str().unwrap().to_owned(), job))
        .filter(|(name, _)| !GITLAB_KEYWORDS.contains(&name.as_str()) && !name.starts_with('.'))
        .collect();
    // Job name -> the artifact directories of its instances.
    let mut artifacts: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut ran = Vec::new();
    let mut failed = false;
    let mut earlier: Vec<String> = Vec::new();
    for stage in &stages {
        let in_stage: Vec<&(String, &Yaml)> = jobs
            .iter()
            .filter(|(_, job)| job["stage"].as_str().unwrap_or("test") == stage)
            .collect();
        let mut stage_failed = false;
        for (name, job) in in_stage {
            let when = job["when"].as_str().unwrap_or("on_success");
            assert!(
                failed || when != "on_failure",
                "{name}: when: on_failure is not simulated"
            );
            if failed && when != "always" {
                ran.push(Job {
                    name: name.clone(),
                    ok: false,
                    log: format!("--- {name}: skipped after a failure"),
                });
                continue;
            }
            let needs = if job["needs"].is_badvalue() {
                earlier.clone()
            } else {
                lines(&job["needs"])
            };
            let before = if job["before_script"].is_badvalue() {
                &config["default"]["before_script"]
            } else {
                &job["before_script"]
            };
            let script: Vec<String> = lines(before)
                .iter()
                .chain(&lines(&job["script"]))
                .map(|line| sim.replace_install(line))
                .collect();
            let total = job["parallel"].as_i64().map_or(1, |n| n as usize);
            let artifact_when = job["artifacts"]["when"].as_str().unwrap_or("on_success");
            let paths = lines(&job["artifacts"]["paths"]);
            let results = parallel(total, |index| {
                let instance = if total > 1 {
                    format!("{name} {}/{total}", index + 1)
                } else {
                    name.clone()
                };
                let dir = sim.checkout(&format!("gitlab-{number}-{instance}"));
                for needed in &needs {
                    for from in artifacts.get(needed).into_iter().flatten() {
                        copy_into(from, &dir);
                    }
                }
                let mut env = vec![
                    ("CI", "true".to_owned()),
                    ("GITLAB_CI", "true".to_owned()),
                    ("CI_JOB_NAME", instance.clone()),
                    ("CI_PIPELINE_ID", number.to_string()),
                    ("CI_PROJECT_ID", "42".to_owned()),
                    ("CI_API_V4_URL", "https://gitlab.sim/api/v4".to_owned()),
                    ("CI_JOB_TOKEN", format!("token-{number}-{index}")),
                    ("CI_DEFAULT_BRANCH", BRANCH.to_owned()),
                    ("CI_COMMIT_REF_NAME", BRANCH.to_owned()),
                    ("SIM_GITLAB_SERVER", server.display().to_string()),
                ];
                if total > 1 {
                    env.push(("CI_NODE_INDEX", (index + 1).to_string()));
                    env.push(("CI_NODE_TOTAL", total.to_string()));
                }
                let result = sim.run(
                    &instance,
                    &["bash", "-eo", "pipefail", "-c"],
                    &dir,
                    &script.join("\n"),
                    &env,
                );
                let kept = pipeline_dir.join(instance.replace([' ', '/'], "-"));
                std::fs::create_dir_all(&kept).unwrap();
                if artifact_when == "always" || result.ok {
                    for path in &paths {
                        save(&dir, path, &kept);
                    }
                }
                (result, kept)
            });
            for (result, kept) in results {
                stage_failed |= !result.ok;
                ran.push(result);
                artifacts.entry(name.clone()).or_default().push(kept);
            }
            earlier.push(name.clone());
        }
        failed |= stage_failed;
    }
    // GitLab serves the newest successful job of that name on the branch.
    let merge_ok = ran.iter().any(|job| job.name == "merge" && job.ok);
    if merge_ok {
        let kept = server.join(BRANCH).join("merge");
        let _ = std::fs::remove_dir_all(&kept);
        copy_into(&artifacts["merge"][0], &kept);
    }
    let handed = artifacts["timings"][0].join("ci-timings/timings.json");
    Pipeline {
        jobs: ran,
        handed: handed.exists().then_some(handed),
        shards: artifacts["test"]
            .iter()
            .enumerate()
            .map(|(index, dir)| shard_files(dir, index + 1))
            .collect(),
        merged: artifacts["merge"][0].join("merged"),
        handed_on: vec![pipeline_dir, server],
    }
}

fn shard_files(dir: &Path, shard: usize) -> (PathBuf, PathBuf) {
    let shard = dir.join("shards").join(shard.to_string());
    (shard.join("junit.xml"), shard.join("timings.json"))
}

#[test]
fn gitlab_ci_two_pipelines() {
    let _alone = ONE_SIMULATION.lock().unwrap_or_else(|e| e.into_inner());
    let sim = Sim::new();
    let config = load_yaml("ci/gitlab-ci.yml");
    let first = gitlab_pipeline(&sim, &config, 1);
    let second = gitlab_pipeline(&sim, &config, 2);
    assert!(
        sim.installs_replaced.load(Ordering::SeqCst) > 0,
        "no install line found"
    );
    check_two_pipelines("GitLab", &first, &second);
}

// ----------------------------------------------------------------- CircleCI

/// CircleCI's cache: shared storage, immutable per key, restored by prefix
/// (the newest entry wins). Entries in the order they were saved.
#[derive(Default)]
struct CircleCache {
    entries: Mutex<Vec<(String, PathBuf)>>,
}

/// One workflow of `ci/circleci.yml`: jobs in workflow order (`requires`
/// checked), `parallelism:` copies with `CIRCLE_NODE_INDEX` 0..N-1, each
/// job's steps in a fresh working directory (`checkout` copies the
/// repository), `commands:` expanded, the workspace and cache handed on.
/// `{{ epoch }}` is a simulated clock an hour further per pipeline.
fn circleci_pipeline(sim: &Sim, config: &Yaml, cache: &CircleCache, number: usize) -> Pipeline {
    let workspace = sim.store(&format!("circleci/workflow-{number}/workspace"));
    let stored = sim.store(&format!("circleci/workflow-{number}/artifacts"));
    let workflow = &config["workflows"]["tests"]["jobs"];
    let mut ran: Vec<Job> = Vec::new();
    let mut done: Vec<String> = Vec::new();
    let mut restored: Vec<Option<String>> = Vec::new();
    for entry in workflow.as_vec().unwrap() {
        let (name, requires) = match entry {
            Yaml::String(name) => (name.clone(), Vec::new()),
            Yaml::Hash(hash) => {
                let (name, settings) = hash.iter().next().unwrap();
                (
                    name.as_str().unwrap().to_owned(),
                    lines(&settings["requires"]),
                )
            }
            other => panic!("workflow job {other:?}"),
        };
        for required in &requires {
            assert!(
                done.contains(required),
                "{name} requires {required}, which has not run"
            );
        }
        let required_ok = ran
            .iter()
            .filter(|job| requires.iter().any(|r| job.name.starts_with(r.as_str())))
            .all(|job| job.ok);
        let job = &config["jobs"][name.as_str()];
        let total = job["parallelism"].as_i64().map_or(1, |n| n as usize);
        if !required_ok {
            ran.push(Job {
                name: name.clone(),
                ok: false,
                log: format!("--- {name}: not run, a required job failed"),
            });
            done.push(name);
            continue;
        }
        let steps = circle_steps(config, &job["steps"]);
        let results = parallel(total, |index| {
            let instance = format!("{name} {index}");
            let dir = sim.machine(&format!("circleci-{number}-{instance}"));
            let env = vec![
                ("CI", "true".to_owned()),
                ("CIRCLECI", "true".to_owned()),
                ("CIRCLE_BRANCH", BRANCH.to_owned()),
                ("CIRCLE_JOB", name.clone()),
                ("CIRCLE_BUILD_NUM", format!("{number}{index}")),
                ("CIRCLE_NODE_INDEX", index.to_string()),
                ("CIRCLE_NODE_TOTAL", total.to_string()),
            ];
            let expand = |key: &str| {
                key.replace("{{ .Branch }}", BRANCH)
                    .replace("{{ epoch }}", &(1_800_000_000 + 3600 * number).to_string())
            };
            let mut log = String::new();
            let mut restored_key = None;
            let mut ok = true;
            for (step, value) in &steps {
                match step.as_str() {
                    "checkout" => checkout_into(&dir),
                    "run" => {
                        let command = value["command"].as_str().or(value.as_str()).unwrap();
                        let script = command
                            .lines()
                            .map(|l| sim.replace_install(l))
                            .collect::<Vec<_>>();
                        let result = sim.run(
                            &instance,
                            &["bash", "-eo", "pipefail", "-c"],
                            &dir,
                            &script.join("\n"),
                            &env,
                        );
                        log.push_str(&result.log);
                        ok = result.ok;
                    }
                    "restore_cache" => {
                        let entries = cache.entries.lock().unwrap();
                        let found = lines(&value["keys"]).iter().find_map(|key| {
                            let prefix = expand(key);
                            entries
                                .iter()
                                .rev()
                                .find(|(saved, _)| saved.starts_with(&prefix))
                        });
                        if let Some((key, from)) = found {
                            copy_into(from, &dir);
                            restored_key = Some(key.clone());
                        }
                        log.push_str(&format!("--- restore_cache: {restored_key:?}\n"));
                    }
                    "save_cache" => {
                        let key = expand(value["key"].as_str().unwrap());
                        let mut entries = cache.entries.lock().unwrap();
                        if !entries.iter().any(|(saved, _)| *saved == key) {
                            let into = sim.store(&format!("circleci/cache/{}", entries.len()));
                            for path in lines(&value["paths"]) {
                                save(&dir, &path, &into);
                            }
                            entries.push((key, into));
                        }
                    }
                    "persist_to_workspace" => {
                        let root = dir.join(value["root"].as_str().unwrap());
                        for path in lines(&value["paths"]) {
                            save(&root, &path, &workspace);
                        }
                    }
                    "attach_workspace" => {
                        copy_into(&workspace, &dir.join(value["at"].as_str().unwrap()));
                    }
                    "store_test_results" | "store_artifacts" => {
                        let path = value["path"].as_str().unwrap();
                        save(&dir, path, &stored.join(instance.replace(' ', "-")));
                    }
                    other => panic!("step {other} is not simulated"),
                }
                if !ok {
                    break;
                }
            }
            (
                Job {
                    name: instance,
                    ok,
                    log,
                },
                restored_key,
            )
        });
        for (job, key) in results {
            ran.push(job);
            if name == "test" {
                restored.push(key);
            }
        }
        done.push(name);
    }
    let restored: BTreeSet<Option<String>> = restored.into_iter().collect();
    assert_eq!(
        restored.len(),
        1,
        "the shards restored different caches: {restored:?}"
    );
    let handed = restored.into_iter().next().unwrap().map(|key| {
        let entries = cache.entries.lock().unwrap();
        let (_, dir) = entries.iter().find(|(saved, _)| *saved == key).unwrap();
        dir.join("ci-timings/timings.json")
    });
    Pipeline {
        jobs: ran,
        handed,
        shards: (0..SHARDS)
            .map(|index| shard_files(&workspace, index))
            .collect(),
        merged: stored.join("merge-0/merged"),
        handed_on: vec![workspace, stored, sim.store("circleci/cache")],
    }
}

/// A job's steps as (name, settings), with the config's `commands:` expanded.
fn circle_steps(config: &Yaml, steps: &Yaml) -> Vec<(String, Yaml)> {
    let mut expanded = Vec::new();
    for step in steps.as_vec().unwrap() {
        let (name, value) = match step {
            Yaml::String(name) => (name.clone(), Yaml::Null),
            Yaml::Hash(hash) => {
                let (name, value) = hash.iter().next().unwrap();
                (name.as_str().unwrap().to_owned(), value.clone())
            }
            other => panic!("step {other:?}"),
        };
        let command = &config["commands"][name.as_str()];
        if command.is_badvalue() {
            expanded.push((name, value));
        } else {
            expanded.extend(circle_steps(config, &command["steps"]));
        }
    }
    expanded
}

#[test]
fn circleci_two_pipelines() {
    let _alone = ONE_SIMULATION.lock().unwrap_or_else(|e| e.into_inner());
    let sim = Sim::new();
    let config = load_yaml("ci/circleci.yml");
    let cache = CircleCache::default();
    let first = circleci_pipeline(&sim, &config, &cache, 1);
    let second = circleci_pipeline(&sim, &config, &cache, 2);
    assert!(
        sim.installs_replaced.load(Ordering::SeqCst) > 0,
        "no install line found"
    );
    check_two_pipelines("CircleCI", &first, &second);
}

// ---------------------------------------------------------------- Buildkite

/// One build of `ci/buildkite.yml`: steps in order, `parallelism:` copies
/// with `BUILDKITE_PARALLEL_JOB` 0..N-1, each in a fresh checkout, `$$`
/// turned into `$` as `pipeline upload` does, `artifact_paths` uploaded
/// after each job, `wait` blocking after a failure unless
/// `continue_on_failure`. The S3 bucket outlives builds.
fn buildkite_build(sim: &Sim, config: &Yaml, number: usize) -> Pipeline {
    let artifacts = sim.store(&format!("buildkite/build-{number}/artifacts"));
    let mut ran: Vec<Job> = Vec::new();
    let mut blocked = false;
    for step in config["steps"].as_vec().unwrap() {
        if !step["wait"].is_badvalue() {
            let failed = ran.iter().any(|job| !job.ok);
            blocked |= failed && !step["continue_on_failure"].as_bool().unwrap_or(false);
            continue;
        }
        let label = step["label"].as_str().unwrap().to_owned();
        if blocked {
            ran.push(Job {
                name: label.clone(),
                ok: false,
                log: format!("--- {label}: blocked by a failure before a wait"),
            });
            continue;
        }
        let raw = step["command"].as_str().unwrap();
        assert!(
            !raw.replace("$$", "").contains('$'),
            "{label}: a single `$` is interpolated at upload time, not at run time:\n{raw}"
        );
        let command = raw.replace("$$", "$");
        let total = step["parallelism"].as_i64().map_or(1, |n| n as usize);
        let artifact_paths = step["artifact_paths"].as_str().map(str::to_owned);
        let results = parallel(total, |index| {
            let name = format!("{label} {}/{total}", index + 1);
            let dir = sim.checkout(&format!(
                "buildkite-{number}-{}-{index}",
                step["key"].as_str().unwrap_or("step")
            ));
            let env = vec![
                ("CI", "true".to_owned()),
                ("BUILDKITE", "true".to_owned()),
                ("BUILDKITE_BRANCH", BRANCH.to_owned()),
                ("BUILDKITE_PIPELINE_DEFAULT_BRANCH", BRANCH.to_owned()),
                ("BUILDKITE_BUILD_NUMBER", number.to_string()),
                ("BUILDKITE_LABEL", label.clone()),
                ("BUILDKITE_PARALLEL_JOB", index.to_string()),
                ("BUILDKITE_PARALLEL_JOB_COUNT", total.to_string()),
                ("SIM_BUILDKITE_ARTIFACTS", artifacts.display().to_string()),
            ];
            let env: Vec<_> = env
                .into_iter()
                .filter(|(name, _)| total > 1 || !name.starts_with("BUILDKITE_PARALLEL"))
                .collect();
            let mut job = sim.run(&name, &["bash", "-e", "-c"], &dir, &command, &env);
            // The agent uploads the step's artifact_paths whatever the exit.
            if let Some(paths) = &artifact_paths {
                let upload = sim.run(
                    &name,
                    &["bash", "-e", "-c"],
                    &dir,
                    &format!("buildkite-agent artifact upload '{paths}'"),
                    &env,
                );
                job.log.push_str(&upload.log);
                job.ok &= upload.ok;
            }
            job
        });
        ran.extend(results);
    }
    let handed = artifacts.join("ci-timings/timings.json");
    Pipeline {
        jobs: ran,
        handed: handed.exists().then_some(handed),
        shards: (0..SHARDS)
            .map(|index| shard_files(&artifacts, index))
            .collect(),
        merged: artifacts.join("merged"),
        handed_on: vec![artifacts, sim.store("s3")],
    }
}

#[test]
fn buildkite_two_builds() {
    let _alone = ONE_SIMULATION.lock().unwrap_or_else(|e| e.into_inner());
    let sim = Sim::new();
    let config = load_yaml("ci/buildkite.yml");
    let first = buildkite_build(&sim, &config, 1);
    let second = buildkite_build(&sim, &config, 2);
    check_two_pipelines("Buildkite", &first, &second);
}

// ------------------------------------------------------------------ Jenkins

/// One build of `ci/Jenkinsfile`, whose stages the simulation plays: the
/// `Timings` stage copies `merged/timings.json` of the newest earlier build
/// with artifacts (Copy Artifact, flattened into `ci-timings/`) and stashes
/// it; each shard stage, on its own agent, unstashes it, runs
/// `ci/paratest-shard K 3` with `sh`'s `sh -xe` and stashes `shards/K/**`;
/// the merge stage unstashes all three, runs `ci/paratest-merge` and
/// archives `merged/**`.
fn jenkins_build(sim: &Sim, number: usize) -> Pipeline {
    let builds = sim.store("jenkins/builds");
    let stashes = sim.store(&format!("jenkins/stashes-{number}"));
    let archive = builds.join(number.to_string()).join("archive");
    let env = |stage: &str, dir: &Path| {
        vec![
            ("JENKINS_URL", "https://jenkins.sim/".to_owned()),
            ("JOB_NAME", "paratest".to_owned()),
            ("BUILD_NUMBER", number.to_string()),
            ("STAGE_NAME", stage.to_owned()),
            ("WORKSPACE", dir.display().to_string()),
        ]
    };
    let mut ran = Vec::new();

    // Timings: copyArtifacts (lastWithArtifacts, optional) and a stash.
    let dir = sim.checkout(&format!("jenkins-{number}-timings"));
    let last = (1..number)
        .rev()
        .map(|build| builds.join(build.to_string()).join("archive"))
        .find(|archive| !files_under(archive).is_empty());
    if let Some(last) = last {
        copy_into(
            &last.join("merged/timings.json"),
            &dir.join("ci-timings/timings.json"),
        );
    }
    save(&dir, "ci-timings", &stashes.join("timings"));
    ran.push(Job {
        name: "Timings".to_owned(),
        ok: true,
        log: String::new(),
    });

    let shards = parallel(SHARDS, |index| {
        let shard = index + 1;
        let stage = format!("Shard {shard}");
        let dir = sim.checkout(&format!("jenkins-{number}-shard-{shard}"));
        copy_into(&stashes.join("timings"), &dir);
        let job = sim.run(
            &stage,
            &["sh", "-xe", "-c"],
            &dir,
            &format!("ci/paratest-shard {shard} {SHARDS}"),
            &env(&stage, &dir),
        );
        // post { always { stash ... } }
        save(
            &dir,
            &format!("shards/{shard}"),
            &stashes.join(format!("shard-{shard}")),
        );
        job
    });
    ran.extend(shards);

    let dir = sim.checkout(&format!("jenkins-{number}-merge"));
    for shard in 1..=SHARDS {
        copy_into(&stashes.join(format!("shard-{shard}")), &dir);
    }
    ran.push(sim.run(
        "Merge",
        &["sh", "-xe", "-c"],
        &dir,
        "ci/paratest-merge",
        &env("Merge", &dir),
    ));
    save(&dir, "merged", &archive);

    let handed = stashes.join("timings/ci-timings/timings.json");
    Pipeline {
        jobs: ran,
        handed: handed.exists().then_some(handed),
        shards: (1..=SHARDS)
            .map(|shard| shard_files(&stashes.join(format!("shard-{shard}")), shard))
            .collect(),
        merged: archive.join("merged"),
        handed_on: vec![stashes, archive],
    }
}

#[test]
fn jenkins_two_builds() {
    // The stages simulated are the Jenkinsfile's: its shell steps, stashes
    // and artifacts are the ones named here.
    let jenkinsfile = std::fs::read_to_string(repo().join("ci/Jenkinsfile")).unwrap();
    let sh_steps: Vec<&str> = jenkinsfile
        .match_indices("sh '")
        .filter(|(at, _)| !jenkinsfile[..*at].ends_with(|c: char| c.is_alphanumeric()))
        .map(|(at, _)| jenkinsfile[at + 4..].split('\'').next().unwrap())
        .collect();
    let mut expected: Vec<String> = (1..=SHARDS)
        .map(|shard| format!("ci/paratest-shard {shard} {SHARDS}"))
        .collect();
    expected.push("ci/paratest-merge".to_owned());
    assert_eq!(sh_steps, expected);
    let mut named = vec![
        "filter: 'merged/timings.json', target: 'ci-timings'".to_owned(),
        "flatten: true".to_owned(),
        "stash name: 'timings', includes: 'ci-timings/**'".to_owned(),
        "archiveArtifacts artifacts: 'merged/**'".to_owned(),
    ];
    for shard in 1..=SHARDS {
        named.push(format!(
            "stash name: 'shard-{shard}', includes: 'shards/{shard}/**'"
        ));
        named.push(format!("unstash 'shard-{shard}'"));
    }
    for text in named {
        assert!(
            jenkinsfile.contains(&text),
            "the Jenkinsfile no longer says {text}"
        );
    }

    let _alone = ONE_SIMULATION.lock().unwrap_or_else(|e| e.into_inner());
    let sim = Sim::new();
    let first = jenkins_build(&sim, 1);
    let second = jenkins_build(&sim, 2);
    check_two_pipelines("Jenkins", &first, &second);
}

// ------------------------------------------------------------------- checks

/// Samples per test of a timings file: id -> [(duration, recorded)].
fn samples(path: &Path) -> BTreeMap<String, Vec<(f64, u64)>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["format_version"], 1, "{}", path.display());
    value["tests"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(id, test)| {
            let samples = test["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        s["duration"].as_f64().unwrap(),
                        s["recorded"].as_u64().unwrap(),
                    )
                })
                .collect();
            (id.clone(), samples)
        })
        .collect()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// The tests of one report, each once.
fn report_tests(path: &Path) -> BTreeMap<String, String> {
    common::case_shapes(&common::read_junit(path))
}

fn check_pipeline(ci: &str, number: usize, pipeline: &Pipeline) {
    let failed: Vec<&Job> = pipeline.jobs.iter().filter(|job| !job.ok).collect();
    assert!(
        failed.is_empty(),
        "{ci} pipeline {number}: jobs failed: {:?}\n{}",
        failed.iter().map(|job| &job.name).collect::<Vec<_>>(),
        failed
            .iter()
            .map(|job| job.log.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let all = test_ids();
    // Each test in exactly one shard, and once in the merged report.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (junit, _) in &pipeline.shards {
        for id in report_tests(junit).into_keys() {
            *seen.entry(id).or_default() += 1;
        }
    }
    let expected_once: BTreeMap<String, usize> = all.iter().map(|id| (id.clone(), 1)).collect();
    assert_eq!(
        seen, expected_once,
        "{ci} pipeline {number}: tests per shard"
    );
    let merged = report_tests(&pipeline.merged.join("junit.xml"));
    let passed: BTreeMap<String, String> = all
        .iter()
        .map(|id| (id.clone(), "passed".to_owned()))
        .collect();
    assert_eq!(merged, passed, "{ci} pipeline {number}: merged report");
    common::assert_schema_valid(&pipeline.merged.join("junit.xml"));

    // The merge keeps every shard's samples, and only the newest five.
    let merged_timings = samples(&pipeline.merged.join("timings.json"));
    assert_eq!(
        merged_timings.keys().cloned().collect::<BTreeSet<_>>(),
        all,
        "{ci} pipeline {number}: merged timings"
    );
    for (_, timings) in &pipeline.shards {
        for (id, shard_samples) in samples(timings) {
            for sample in shard_samples {
                assert!(
                    merged_timings[&id].contains(&sample),
                    "{ci} pipeline {number}: {id}'s sample {sample:?} of {} is not in the merged timings",
                    timings.display()
                );
            }
        }
    }

    // Nothing handed on holds a lock file.
    for dir in &pipeline.handed_on {
        let locks: Vec<PathBuf> = files_under(dir)
            .into_iter()
            .filter(|file| file.extension().is_some_and(|e| e == "lock"))
            .collect();
        assert!(
            locks.is_empty(),
            "{ci} pipeline {number}: lock files handed on: {locks:?}"
        );
    }
}

fn check_two_pipelines(ci: &str, first: &Pipeline, second: &Pipeline) {
    check_pipeline(ci, 1, first);
    check_pipeline(ci, 2, second);
    assert_eq!(first.handed, None, "{ci}: the first pipeline found timings");

    // The second pipeline reads what the first one merged, with one sample
    // per test (its own), and merges one more.
    let handed = second
        .handed
        .as_ref()
        .unwrap_or_else(|| panic!("{ci}: the second pipeline got no timings"));
    let handed_samples = samples(handed);
    assert_eq!(
        handed_samples,
        samples(&first.merged.join("timings.json")),
        "{ci}: the second pipeline did not get the first one's merged timings"
    );
    for (id, kept) in &handed_samples {
        assert_eq!(kept.len(), 1, "{ci}: {id} after one pipeline: {kept:?}");
    }
    for (id, kept) in samples(&second.merged.join("timings.json")) {
        assert_eq!(kept.len(), 2, "{ci}: {id} after two pipelines: {kept:?}");
        assert!(
            kept.contains(&handed_samples[&id][0]),
            "{ci}: {id} lost its history"
        );
    }

    // Balanced by what the second pipeline expected.
    let expected: BTreeMap<&String, f64> = handed_samples
        .iter()
        .map(|(id, kept)| (id, median(kept.iter().map(|s| s.0).collect())))
        .collect();
    let loads: Vec<f64> = second
        .shards
        .iter()
        .map(|(junit, _)| report_tests(junit).keys().map(|id| expected[id]).sum())
        .collect();
    let mean = loads.iter().sum::<f64>() / loads.len() as f64;
    let max = loads.iter().copied().fold(0.0, f64::max);
    eprintln!(
        "{ci}: second pipeline's shards expected {loads:.3?} s, max/mean {:.3}",
        max / mean
    );
    assert!(
        max / mean <= 1.05,
        "{ci}: the second pipeline's shards are unbalanced: {loads:?} (max/mean {:.3})",
        max / mean
    );
}

// ------------------------------------------------------- the timings contract

/// `--timings-out` (also `PARATEST_TIMINGS_OUT` and `timings-out` in a
/// profile) is where a run writes what it read plus its own samples: on a
/// shard, on a first run with nothing to read, and never beside the file read.
#[test]
fn timings_out_names_the_file_a_run_writes() {
    let project = common::Project::copy("ci-pipeline");
    let read = project.path.join("ci-timings/timings.json");

    // A first shard: nothing to read, its own file where it was told.
    project
        .paratest()
        .args(["--partition", "1/3", "--timings"])
        .arg_path(&read)
        .args(["--timings-out", "shards/1/timings.json"])
        .run()
        .expect(0);
    let first = samples(&project.path.join("shards/1/timings.json"));
    assert_eq!(first.len(), 4, "{first:?}");
    assert!(!read.exists(), "the file read was written");
    let left: Vec<PathBuf> = files_under(&project.path.join("shards"));
    assert_eq!(left, [project.path.join("shards/1/timings.json")]);

    // From the environment, reading the first shard's file: its history
    // and the new samples; the file read is left alone.
    std::fs::create_dir_all(read.parent().unwrap()).unwrap();
    std::fs::copy(project.path.join("shards/1/timings.json"), &read).unwrap();
    let before = std::fs::read(&read).unwrap();
    project
        .paratest()
        .args(["--partition", "1/1", "--timings"])
        .arg_path(&read)
        .env("PARATEST_TIMINGS_OUT", "from-env.json")
        .run()
        .expect(0);
    assert_eq!(std::fs::read(&read).unwrap(), before);
    let second = samples(&project.path.join("from-env.json"));
    assert_eq!(second.len(), 12);
    for (id, kept) in &first {
        assert_eq!(second[id].len(), 2, "{id}: {:?}", second[id]);
        assert!(second[id].contains(&kept[0]), "{id} lost its history");
    }
    assert!(
        !project
            .path
            .join("ci-timings/timings.shard-1-of-1.json")
            .exists(),
        "a shard file beside the file read"
    );

    // From a profile, relative to the source, and the command line wins.
    std::fs::write(
        project.path.join("paratest.toml"),
        "[profile.default]\ntimings-out = \"profile/timings.json\"\n",
    )
    .unwrap();
    project
        .paratest()
        .args(["--partition", "2/3"])
        .run()
        .expect(0);
    assert_eq!(samples(&project.path.join("profile/timings.json")).len(), 4);
    project
        .paratest()
        .args(["--partition", "3/3", "--timings-out", "cli.json"])
        .run()
        .expect(0);
    assert_eq!(samples(&project.path.join("cli.json")).len(), 4);
    assert_eq!(samples(&project.path.join("profile/timings.json")).len(), 4);
}

// ------------------------------------------------- GitLab CI, with the queue

/// `ci/gitlab-queue.yml` as GitLab runs it: the `parallel:` copies of
/// `test` on machines of their own and `report` (`needs: []`: from the
/// pipeline's start) at the same time, all reaching one Redis, a real
/// `redis-server` standing in for the shared one `PARATEST_QUEUE_URL` names.
/// Checked: every job is green, the machines' own reports split the tests
/// (each in exactly one), and the build's report holds each test once.
#[test]
fn gitlab_queue_pipeline() {
    let Some(redis) = common::RedisServer::start() else {
        return;
    };
    let _alone = ONE_SIMULATION.lock().unwrap_or_else(|e| e.into_inner());
    let sim = Sim::new();
    let config = load_yaml("ci/gitlab-queue.yml");
    let before = lines(&config["default"]["before_script"]);
    let script = |job: &str| -> String {
        before
            .iter()
            .chain(&lines(&config[job]["script"]))
            .map(|line| sim.replace_install(line))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(lines(&config["report"]["needs"]), Vec::<String>::new());
    let total = config["test"]["parallel"].as_i64().unwrap() as usize;
    let env = |name: String, index: Option<usize>| {
        let mut env = vec![
            ("CI", "true".to_owned()),
            ("GITLAB_CI", "true".to_owned()),
            ("CI_JOB_NAME", name),
            ("CI_PIPELINE_ID", "7".to_owned()),
            ("PARATEST_QUEUE_URL", redis.url()),
        ];
        if let Some(index) = index {
            env.push(("CI_NODE_INDEX", (index + 1).to_string()));
            env.push(("CI_NODE_TOTAL", total.to_string()));
        }
        env
    };
    let shell = ["bash", "-eo", "pipefail", "-c"];
    let jobs = parallel(total + 1, |index| {
        if index == total {
            let dir = sim.checkout("gitlab-queue-report");
            let job = sim.run(
                "report",
                &shell,
                &dir,
                &script("report"),
                &env("report".into(), None),
            );
            (job, dir.join("merged/junit.xml"))
        } else {
            let name = format!("test {}/{total}", index + 1);
            let dir = sim.checkout(&format!("gitlab-queue-{name}"));
            let job = sim.run(
                &name,
                &shell,
                &dir,
                &script("test"),
                &env(name.clone(), Some(index)),
            );
            (job, dir.join(format!("machines/{}/junit.xml", index + 1)))
        }
    });
    for (job, _) in &jobs {
        assert!(job.ok, "{}", job.log);
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (_, junit) in &jobs[..total] {
        for id in report_tests(junit).into_keys() {
            *seen.entry(id).or_default() += 1;
        }
    }
    let once: BTreeMap<String, usize> = test_ids().into_iter().map(|id| (id, 1)).collect();
    assert_eq!(seen, once, "tests per machine");
    let build = &jobs[total].1;
    common::assert_schema_valid(build);
    let passed: BTreeMap<String, String> = test_ids()
        .into_iter()
        .map(|id| (id, "passed".to_owned()))
        .collect();
    assert_eq!(report_tests(build), passed, "the build's report");
}

// -------------------------------------------- GitHub Actions, with the queue

/// `ci/github-queue.yml` as Actions runs it: each machine of the matrix runs
/// the action's step (`scripts/action-run`, what `action.yml` runs) with
/// the step's inputs, the `report` job's script runs beside them, and a
/// real `redis-server` stands in for the shared Redis of the
/// `PARATEST_QUEUE_URL` secret. Checked as for GitLab, plus the timings the
/// report job saves for the next run hold every test.
#[test]
fn github_queue_workflow() {
    let Some(redis) = common::RedisServer::start() else {
        return;
    };
    let _alone = ONE_SIMULATION.lock().unwrap_or_else(|e| e.into_inner());
    let sim = Sim::new();
    let config = load_yaml("ci/github-queue.yml");
    let jobs = &config["jobs"];
    let machines: Vec<String> = jobs["test"]["strategy"]["matrix"]["machine"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|m| m.as_i64().unwrap().to_string())
        .collect();
    let action = jobs["test"]["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|step| {
            step["uses"]
                .as_str()
                .is_some_and(|u| u.contains("cargo-paratest"))
        })
        .expect("the action's step");
    let report = jobs["report"]["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|step| !step["run"].is_badvalue())
        .expect("the report's script");
    let expand = |text: &str, machine: &str| {
        let text = text
            .replace("${{ secrets.PARATEST_QUEUE_URL }}", &redis.url())
            .replace("${{ matrix.machine }}", machine);
        assert!(!text.contains("${{"), "unsimulated expression in {text}");
        text
    };
    let github = |dir: &Path| {
        vec![
            ("CI", "true".to_owned()),
            ("GITHUB_ACTIONS", "true".to_owned()),
            ("GITHUB_RUN_ID", "4242".to_owned()),
            ("GITHUB_RUN_ATTEMPT", "1".to_owned()),
            ("GITHUB_WORKSPACE", dir.display().to_string()),
            (
                "RUNNER_TEMP",
                dir.with_file_name("runner-temp").display().to_string(),
            ),
            (
                "GITHUB_OUTPUT",
                dir.with_file_name("output").display().to_string(),
            ),
        ]
    };
    let action_run = repo().join("scripts/action-run");
    let ran = parallel(machines.len() + 1, |index| {
        if index == machines.len() {
            let dir = sim.checkout("github-queue-report");
            let mut env = github(&dir);
            env.push((
                "PARATEST_QUEUE_URL",
                expand(report["env"]["PARATEST_QUEUE_URL"].as_str().unwrap(), ""),
            ));
            let script = report["run"].as_str().unwrap();
            (
                sim.run("report", &["bash", "-e", "-c"], &dir, script, &env),
                dir,
            )
        } else {
            let machine = &machines[index];
            let name = format!("test ({machine})");
            let dir = sim.checkout(&format!("github-queue-{machine}"));
            let inputs: Vec<(String, String)> = action["with"]
                .as_hash()
                .unwrap()
                .iter()
                .map(|(input, value)| {
                    let input = input.as_str().unwrap().replace('-', "_").to_uppercase();
                    (
                        format!("INPUT_{input}"),
                        expand(value.as_str().unwrap(), machine),
                    )
                })
                .collect();
            let mut env = github(&dir);
            env.extend(
                inputs
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.clone())),
            );
            let script = format!("bash {} run", action_run.display());
            (sim.run(&name, &["bash", "-c"], &dir, &script, &env), dir)
        }
    });
    for (job, _) in &ran {
        assert!(job.ok, "{}", job.log);
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (_, dir) in &ran[..machines.len()] {
        for id in report_tests(&dir.join(".paratest/junit.xml")).into_keys() {
            *seen.entry(id).or_default() += 1;
        }
    }
    let once: BTreeMap<String, usize> = test_ids().into_iter().map(|id| (id, 1)).collect();
    assert_eq!(seen, once, "tests per machine");
    let report_dir = &ran[machines.len()].1;
    let build = report_dir.join("merged/junit.xml");
    common::assert_schema_valid(&build);
    let passed: BTreeMap<String, String> = test_ids()
        .into_iter()
        .map(|id| (id, "passed".to_owned()))
        .collect();
    assert_eq!(report_tests(&build), passed, "the build's report");
    let saved = samples(&report_dir.join(".paratest/timings.json"));
    assert_eq!(
        saved.keys().cloned().collect::<BTreeSet<_>>(),
        test_ids(),
        "the timings saved for the next run"
    );
}
