//! What tests and hooks see: the `PARATEST_*` environment, the ParaTest
//! placeholders (`{id}`, `{workspace}`, ...) and running a hook with `sh -c`.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::process::{Limits, Watchdog};

/// Facts about the run that every test and hook sees.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub run_id: String,
    pub source: PathBuf,
    pub output: PathBuf,
    pub workers: usize,
    pub partition: Option<String>,
    /// The workspace root: it holds each worker's private temp directory
    /// ([`crate::workspace::temp_dir`]) and the run hooks' own.
    pub temp_root: PathBuf,
}

/// Where a command runs: the run itself, a worker's workspace, or one test attempt in it.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub run: &'a RunContext,
    pub worker: Option<(usize, &'a Path)>,
    pub test: Option<(&'a str, u32)>,
}

impl<'a> Scope<'a> {
    pub fn run(run: &'a RunContext) -> Self {
        Scope {
            run,
            worker: None,
            test: None,
        }
    }

    pub fn worker(run: &'a RunContext, worker: usize, workspace: &'a Path) -> Self {
        Scope {
            run,
            worker: Some((worker, workspace)),
            test: None,
        }
    }

    pub fn test(self, id: &'a str, attempt: u32) -> Self {
        Scope {
            test: Some((id, attempt)),
            ..self
        }
    }

    /// The `PARATEST_*` variables (SPEC "What tests and hooks see").
    pub fn env(&self) -> Vec<(&'static str, OsString)> {
        let run = self.run;
        let mut env = vec![
            ("PARATEST", "1".into()),
            ("PARATEST_WORKERS", run.workers.to_string().into()),
            ("PARATEST_SOURCE", run.source.clone().into()),
            ("PARATEST_OUTPUT", run.output.clone().into()),
            ("PARATEST_RUN_ID", run.run_id.clone().into()),
        ];
        if let Some(partition) = &run.partition {
            env.push(("PARATEST_PARTITION", partition.into()));
        }
        if let Some((worker, workspace)) = self.worker {
            env.push(("PARATEST_WORKER", worker.to_string().into()));
            env.push(("PARATEST_WORKSPACE", workspace.into()));
        }
        // Tests that share the system temp directory collide across workers.
        let temp = crate::workspace::temp_dir(&run.temp_root, self.worker.map(|(n, _)| n));
        for name in ["TMPDIR", "TMP", "TEMP", "PARATEST_TMPDIR"] {
            env.push((name, temp.clone().into()));
        }
        if let Some((id, attempt)) = self.test {
            env.push(("PARATEST_TEST", id.into()));
            env.push(("PARATEST_ATTEMPT", attempt.to_string().into()));
        }
        env
    }

    /// Replaces the ParaTest placeholders, each value shell-quoted. A
    /// placeholder whose value this scope lacks (`{test}` in a run hook) is
    /// replaced by an empty quoted string.
    pub fn expand(&self, template: &str) -> String {
        let env = self.env();
        let values: Vec<(&str, String)> = PLACEHOLDERS
            .iter()
            .map(|(placeholder, variable)| {
                let value = env
                    .iter()
                    .find(|(name, _)| name == variable)
                    .map(|(_, value)| value.to_string_lossy().into_owned());
                (*placeholder, value.unwrap_or_default())
            })
            .collect();
        substitute(template, &values)
    }

    /// The directory hooks of this scope run in: the workspace, else the source.
    pub fn cwd(&self) -> &Path {
        self.worker
            .map_or(&self.run.source, |(_, workspace)| workspace)
    }
}

/// The ParaTest placeholders of hooks and of the command plugin's
/// `command`, each with the `PARATEST_*` variable that holds its value in a
/// test or hook process: the one table of what a placeholder means.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    ("{id}", "PARATEST_WORKER"),
    ("{workspace}", "PARATEST_WORKSPACE"),
    ("{path}", "PARATEST_WORKSPACE"),
    ("{source}", "PARATEST_SOURCE"),
    ("{output}", "PARATEST_OUTPUT"),
    ("{test}", "PARATEST_TEST"),
];

/// Replaces every `{name}` in `template` with the shell-quoted value, in one
/// left-to-right pass so that a value containing `{id}` is never expanded again.
pub fn substitute(template: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    'scan: while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        for (name, value) in values {
            if let Some(after) = tail.strip_prefix(name) {
                out.push_str(&shell_words::quote(value));
                rest = after;
                continue 'scan;
            }
        }
        out.push('{');
        rest = &tail[1..];
    }
    out.push_str(rest);
    out
}

/// The six lifecycle hooks of the original ParaTest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Setup,
    SetupWorkspace,
    SetupTest,
    TeardownTest,
    TeardownWorkspace,
    Teardown,
}

impl Hook {
    pub fn name(self) -> &'static str {
        match self {
            Hook::Setup => "setup",
            Hook::SetupWorkspace => "setup-workspace",
            Hook::SetupTest => "setup-test",
            Hook::TeardownTest => "teardown-test",
            Hook::TeardownWorkspace => "teardown-workspace",
            Hook::Teardown => "teardown",
        }
    }

    /// `--setup` and `--setup-workspace` may start services (`server &`)
    /// that live until their teardown; what other hooks leave is killed.
    fn starts_services(self) -> bool {
        matches!(self, Hook::Setup | Hook::SetupWorkspace)
    }

    /// Teardowns run after an interrupt too.
    fn is_teardown(self) -> bool {
        matches!(
            self,
            Hook::TeardownTest | Hook::TeardownWorkspace | Hook::Teardown
        )
    }
}

/// Runs one hook with `sh -c` in its scope, for at most `timeout`. Output
/// goes to `log` (appended); a failure is returned as a message holding the
/// exit status and the log's tail. A setup hook that succeeds returns the
/// process group of what it left running, to be stopped with
/// [`crate::process::stop_group`] after the matching teardown.
pub fn run_hook(
    watchdog: &Watchdog,
    hook: Hook,
    template: &str,
    scope: Scope<'_>,
    log: &Path,
    timeout: Option<std::time::Duration>,
) -> Result<Option<u32>, String> {
    let name = hook.name();
    let command_line = scope.expand(template);
    let fail = |why: String| format!("{name} hook `{template}` {why}");
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    }
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| fail(format!("cannot open its log {}: {e}", log.display())))?;
    let err = out.try_clone().map_err(|e| fail(e.to_string()))?;
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(&command_line)
        .current_dir(scope.cwd())
        .envs(scope.env())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let limits = Limits {
        timeout,
        cleanup: hook.is_teardown(),
        keep_group: hook.starts_services(),
        ..Limits::default()
    };
    let exit = watchdog
        .run(command, limits)
        .map_err(|e| fail(format!("could not start: {e}")))?;
    if exit.status.success() && !exit.timed_out {
        return Ok(hook.starts_services().then_some(exit.group));
    }
    if hook.starts_services() {
        crate::process::stop_group(exit.group);
    }
    let tail = crate::report::tail_lines(log, 10);
    let why = match timeout {
        Some(limit) if exit.timed_out => {
            format!("timed out after {}", crate::words::limit(limit))
        }
        _ => format!("failed ({})", exit.status),
    };
    Err(fail(format!("{why}; log {}:\n{tail}", log.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> RunContext {
        RunContext {
            run_id: "r1".into(),
            source: "/src dir".into(),
            output: "/out".into(),
            workers: 3,
            partition: None,
            temp_root: "/ws".into(),
        }
    }

    #[test]
    fn placeholders_are_shell_quoted_and_expanded_once() {
        let run = context();
        let workspace = PathBuf::from("/ws/w 2");
        let scope = Scope::worker(&run, 2, &workspace).test("a b;rm -rf x {id}", 1);
        assert_eq!(
            scope.expand("cd {workspace} && echo {id} {test} {source} {unknown} {"),
            "cd '/ws/w 2' && echo 2 'a b;rm -rf x {id}' '/src dir' {unknown} {"
        );
        assert_eq!(scope.expand("{path}"), "'/ws/w 2'");
    }

    #[test]
    fn quoted_values_survive_a_real_shell() {
        let run = context();
        let workspace = PathBuf::from("/tmp");
        let nasty = "it's \"$HOME\" `x` ; $(y) \\ *";
        let scope = Scope::worker(&run, 1, &workspace).test(nasty, 1);
        let output = Command::new("sh")
            .arg("-c")
            .arg(scope.expand("printf %s {test}"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(output.stdout).unwrap(), nasty);
    }

    #[test]
    fn env_grows_with_the_scope() {
        let run = context();
        let workspace = PathBuf::from("/ws/w1");
        let names = |scope: Scope<'_>| scope.env().into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert!(!names(Scope::run(&run)).contains(&"PARATEST_WORKER"));
        let test = names(Scope::worker(&run, 1, &workspace).test("t", 2));
        for name in [
            "PARATEST",
            "PARATEST_WORKER",
            "PARATEST_WORKSPACE",
            "PARATEST_TEST",
            "PARATEST_ATTEMPT",
        ] {
            assert!(test.contains(&name), "{name}");
        }
    }
}
