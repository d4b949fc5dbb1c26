//! A worker's workspace as a guard: made and set up (`--setup-workspace`),
//! torn down and removed, and the owner of the process group the setup
//! left running, so that no path forgets to stop it: [`Workspace::finish`]
//! stops it, and so does dropping the guard (an early return, a panic).

use std::path::{Path, PathBuf};

use super::Runner;
use crate::config::Isolation;
use crate::hooks::{Hook, Scope, run_hook};
use crate::supervisor::{Message, tell};

pub(super) struct Workspace<'r, 'a> {
    runner: &'r Runner<'a>,
    worker: usize,
    path: PathBuf,
    /// The process group `--setup-workspace` left running.
    services: Option<u32>,
}

impl<'r, 'a> Workspace<'r, 'a> {
    /// Worker `worker`'s workspace, not made yet (see [`Self::prepare`]).
    pub(super) fn new(runner: &'r Runner<'a>, worker: usize) -> Self {
        Workspace {
            runner,
            worker,
            path: runner.layout.path(worker),
            services: None,
        }
    }

    pub(super) fn worker(&self) -> usize {
        self.worker
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    fn scope(&self) -> Scope<'_> {
        Scope::worker(&self.runner.context, self.worker, &self.path)
    }

    /// Makes the workspace and runs `--setup-workspace` in it; what that
    /// hook leaves running is kept until [`Self::finish`].
    pub(super) fn prepare(&mut self) -> Result<(), String> {
        let (runner, worker) = (self.runner, self.worker);
        runner.layout.create(worker).map_err(|e| {
            format!(
                "worker {worker}: cannot make its workspace {}: {e}",
                self.path.display()
            )
        })?;
        if !runner.keep_workspaces && runner.layout.isolation != Isolation::None {
            tell(Message::Workspace(&self.path));
        }
        if let Some(hook) = &runner.hooks.setup_workspace {
            let log = runner.hook_log("setup-workspace", worker);
            self.services = run_hook(
                &runner.watchdog,
                Hook::SetupWorkspace,
                hook,
                self.scope(),
                &log,
                None,
            )
            .map_err(|e| format!("worker {worker}: {e}"))?;
        }
        Ok(())
    }

    /// Runs `--teardown-workspace`, stops what `--setup-workspace` left
    /// running, and removes the workspace unless kept.
    pub(super) fn finish(&mut self) -> Result<(), String> {
        let (runner, worker) = (self.runner, self.worker);
        let mut problems = Vec::new();
        if let Some(hook) = &runner.hooks.teardown_workspace {
            let log = runner.hook_log("teardown-workspace", worker);
            if let Err(e) = run_hook(
                &runner.watchdog,
                Hook::TeardownWorkspace,
                hook,
                self.scope(),
                &log,
                None,
            ) {
                problems.push(format!("worker {worker}: {e}"));
            }
        }
        self.stop_services();
        let removed = if runner.keep_workspaces {
            runner.layout.remove_temp(worker)
        } else {
            runner
                .layout
                .remove(worker)
                .map(|()| tell(Message::WorkspaceGone(&self.path)))
        };
        if let Err(e) = removed {
            problems.push(format!("worker {worker}: cannot remove its workspace: {e}"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    /// Stops what `--setup-workspace` left running and every other process
    /// of this worker that is still alive.
    pub(super) fn stop_services(&mut self) {
        if let Some(group) = self.services.take() {
            crate::process::stop_group(group);
        }
        let runner = self.runner;
        runner
            .watchdog
            .sweep(&runner.sweep(self.worker, None), true);
    }
}

/// A guard dropped before [`Workspace::finish`] (an early return, a panic)
/// still stops the services it owns.
impl Drop for Workspace<'_, '_> {
    fn drop(&mut self) {
        if let Some(group) = self.services.take() {
            crate::process::stop_group(group);
        }
    }
}
