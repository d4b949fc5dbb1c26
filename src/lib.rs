//! cargo-paratest: run a project's tests in parallel, each worker in its own
//! isolated workspace.
//!
//! The data flows one way:
//! `cli` -> `config` -> `plugin` (discover) -> `schedule` -> `workspace` ->
//! `exec` (queue, workers, workspaces, attempts; with `process` and `hooks`)
//! -> `events` -> `report` (console, JUnit, JSON) and the timings store.
//! `commands` strings the stages together, one file per command; `verdict`
//! is a run's exit code.

#![forbid(unsafe_code)]

// The library exists for the binary, `benches/scale.rs` and a few
// integration tests: `commands` (the binary's `main`), `model`, `schedule`
// (the bench), `libtest` and `process` (tests of the parser and of the
// process table). Everything else is the crate's own. (`events` stays
// public until the event-stream rework lands: its `Output::stream` is
// not read yet.)

pub(crate) mod archive;
pub(crate) mod atomic;
pub(crate) mod cli;
pub mod commands;
pub(crate) mod config;
pub(crate) mod error;
pub mod events;
pub(crate) mod exec;
pub(crate) mod filterset;
pub(crate) mod hooks;
pub(crate) mod junit;
pub mod libtest;
pub mod model;
pub(crate) mod overrides;
pub(crate) mod plugin;
pub mod process;
pub(crate) mod queue;
pub(crate) mod report;
pub(crate) mod runs;
pub mod schedule;
pub(crate) mod selection;
pub(crate) mod stream;
pub(crate) mod supervisor;
pub(crate) mod verdict;
pub(crate) mod words;
pub(crate) mod workspace;
