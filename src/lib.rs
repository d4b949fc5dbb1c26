//! cargo-paratest: run a project's tests in parallel, each worker in its own
//! isolated workspace.
//!
//! The data flows one way:
//! `cli` -> `config` -> `plugin` (discover) -> `schedule` -> `workspace` ->
//! `runner` (with `process` and `hooks`) -> `events` -> `report` (console,
//! JUnit, JSON) and the timings store. `app` strings the stages together.

#![forbid(unsafe_code)]

pub mod app;
pub mod archive;
pub mod atomic;
pub mod cli;
pub mod config;
pub mod error;
pub mod events;
pub mod filterset;
pub mod hooks;
pub mod junit;
pub mod libtest;
pub mod model;
pub mod overrides;
pub mod plugin;
pub mod process;
pub mod queue;
pub mod report;
pub mod runner;
pub mod runs;
pub mod schedule;
pub mod selection;
pub mod stream;
pub mod supervisor;
pub mod words;
pub mod workspace;
