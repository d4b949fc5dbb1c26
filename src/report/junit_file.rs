//! The JUnit report as a reporter: written once the run is over, from what
//! the collector holds; with one `<error>` naming the cause when the run
//! could not happen (exit 3).

use std::path::PathBuf;
use std::time::SystemTime;

use super::{Collector, Reporter};
use crate::events::{Event, RunFinished};

pub struct JunitFile {
    path: PathBuf,
}

impl JunitFile {
    pub fn new(path: PathBuf) -> JunitFile {
        JunitFile { path }
    }
}

impl Reporter for JunitFile {
    fn event(&mut self, _run: &Collector<'_>, _event: &Event) {}

    fn finish(&mut self, run: &Collector<'_>, end: &mut RunFinished) -> Vec<String> {
        let outcomes = run.outcomes();
        let written = match &end.cannot_run {
            Some((stage, cause)) => super::junit::write_error_report(
                &self.path,
                "cargo-paratest",
                stage,
                cause,
                &outcomes,
                SystemTime::now(),
            ),
            None => {
                let started_at = SystemTime::now()
                    .checked_sub(end.wall)
                    .unwrap_or_else(SystemTime::now);
                let mut report =
                    super::junit::build_report("cargo-paratest", &outcomes, started_at);
                // The run's wall-clock time, not a sum of tests.
                report.set_time(end.wall);
                super::junit::write_xml(&self.path, &report)
            }
        };
        match written {
            Ok(()) => {
                end.files.insert(0, ("JUnit report", self.path.clone()));
                end.junit = Some(self.path.clone());
                Vec::new()
            }
            Err(e) => vec![format!(
                "cannot write the JUnit report {}: {e}",
                self.path.display()
            )],
        }
    }
}
