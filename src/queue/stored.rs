//! What the queue stores of a test and of each attempt: the records every
//! machine writes and `queue report` reads back into the build's report.

use std::time::Duration;

use crate::model::AttemptStatus;

/// What one attempt left in the queue (the build's report is made of these).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredAttempt {
    pub number: u32,
    pub status: String,
    pub machine: String,
    pub worker: usize,
    pub started_ms: u64,
    pub duration_ms: u64,
    pub message: Option<String>,
    pub stdout: String,
    pub stderr: String,
    /// The framework's own cases (pytest: the functions of a file).
    #[serde(default)]
    pub cases: Vec<StoredFrameworkCase>,
}

/// One framework case of an attempt, as the queue keeps it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredFrameworkCase {
    #[serde(default)]
    pub id: String,
    pub name: String,
    pub classname: Option<String>,
    pub status: String,
    #[serde(default)]
    pub kind: crate::model::CaseKind,
    pub duration_ms: u64,
    pub message: Option<String>,
    pub detail: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub line: Option<u64>,
    #[serde(default)]
    pub failed_at: Option<crate::model::SourceLocation>,
    #[serde(default)]
    pub stdout: Option<String>,
    #[serde(default)]
    pub stderr: Option<String>,
}

impl StoredFrameworkCase {
    pub(super) fn of(case: &crate::model::CaseResult) -> Self {
        StoredFrameworkCase {
            id: case.id.clone(),
            name: case.name.clone(),
            classname: case.classname.clone(),
            status: status_name(case.status).to_string(),
            kind: case.kind,
            duration_ms: case.duration.as_millis() as u64,
            message: case.message.clone(),
            detail: case.detail.clone(),
            file: case.file.clone(),
            line: case.line,
            failed_at: case.failed_at.clone(),
            stdout: case.stdout.clone(),
            stderr: case.stderr.clone(),
        }
    }

    pub fn case(&self) -> crate::model::CaseResult {
        crate::model::CaseResult {
            id: self.id.clone(),
            name: self.name.clone(),
            classname: self.classname.clone(),
            status: status_named(&self.status),
            kind: self.kind,
            duration: Duration::from_millis(self.duration_ms),
            message: self.message.clone(),
            detail: self.detail.clone(),
            file: self.file.clone(),
            line: self.line,
            failed_at: self.failed_at.clone(),
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone(),
        }
    }
}

/// A test's report identity, stored when the queue is published.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredCase {
    pub group: String,
    pub name: String,
}

/// How much of an attempt's output the queue keeps (the tail).
const STORED_OUTPUT: u64 = 16 * 1024;

pub(super) fn tail(path: &std::path::Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(STORED_OUTPUT)));
    let mut raw = Vec::new();
    let _ = file.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw).into_owned()
}

/// The status a stored name stands for; anything unknown is a failure.
pub fn status_named(name: &str) -> AttemptStatus {
    match name {
        "passed" => AttemptStatus::Passed,
        "timed-out" => AttemptStatus::TimedOut,
        "skipped" => AttemptStatus::Skipped,
        "interrupted" => AttemptStatus::Interrupted,
        _ => AttemptStatus::Failed,
    }
}

pub fn status_name(status: AttemptStatus) -> &'static str {
    match status {
        AttemptStatus::Passed => "passed",
        AttemptStatus::Failed => "failed",
        AttemptStatus::TimedOut => "timed-out",
        AttemptStatus::Skipped => "skipped",
        AttemptStatus::Interrupted => "interrupted",
    }
}
