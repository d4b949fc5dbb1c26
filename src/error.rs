//! The one error type of the product, and the exit code each error maps to.

use std::fmt;

/// Exit codes of the product contract (SPEC "Exit codes").
pub mod exit {
    /// Every test passed (flaky counts as passed unless told otherwise).
    pub const OK: i32 = 0;
    /// At least one test failed or timed out.
    pub const TESTS_FAILED: i32 = 1;
    /// Usage or configuration error.
    pub const USAGE: i32 = 2;
    /// The run could not happen: build failed, `--setup` failed, no workspace.
    pub const CANNOT_RUN: i32 = 3;
    /// The selection is empty: no tests to run (see `--no-tests`).
    pub const NO_TESTS: i32 = 4;
    /// Interrupted by Ctrl-C or SIGTERM.
    pub const INTERRUPTED: i32 = 130;
}

/// Everything that can stop a command before or instead of a test result.
#[derive(Debug)]
pub enum Error {
    /// Bad flag value, bad `paratest.toml`, unknown plugin: exit 2.
    Usage(String),
    /// The run could not happen (build, discovery, `--setup`, workspaces): exit 3.
    CannotRun(String),
    /// Something failed with a cause worth showing: exit code of the kind.
    Context {
        kind: Kind,
        message: String,
        cause: String,
    },
}

/// Which exit code an [`Error::Context`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Usage,
    CannotRun,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage(message.into())
    }

    pub fn cannot_run(message: impl Into<String>) -> Self {
        Error::CannotRun(message.into())
    }

    /// An error of `kind` whose cause (an I/O or parse error) is shown under it.
    pub fn with_cause(kind: Kind, message: impl Into<String>, cause: impl fmt::Display) -> Self {
        Error::Context {
            kind,
            message: message.into(),
            cause: cause.to_string(),
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_)
            | Error::Context {
                kind: Kind::Usage, ..
            } => exit::USAGE,
            Error::CannotRun(_)
            | Error::Context {
                kind: Kind::CannotRun,
                ..
            } => exit::CANNOT_RUN,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(message) | Error::CannotRun(message) => f.write_str(message),
            Error::Context { message, cause, .. } => write!(f, "{message}\n  caused by: {cause}"),
        }
    }
}

impl std::error::Error for Error {}
