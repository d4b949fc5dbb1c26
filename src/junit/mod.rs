//! The JUnit XML format, knowing nothing of runs: [`write`] (schema-valid
//! output), [`read`] (anyone's reports, tolerantly) and [`merge`].
//! `report::junit_file` turns a run's results into a report with it.

pub mod merge;
pub mod read;
pub mod write;
