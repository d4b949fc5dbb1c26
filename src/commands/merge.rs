//! `cargo paratest merge`: JUnit reports into one.

use std::path::Path;

use crate::cli::MergeArgs;
use crate::error::{Error, Result, exit};
use crate::words::count;

/// `merge`: every input is read before anything is written, so a malformed
/// input (exit 2, naming the file and the position) leaves no output file.
pub(super) fn merge_reports(args: &MergeArgs) -> Result<i32> {
    use crate::junit::{merge, read as junit_read, write as junit};
    let mut reports = Vec::new();
    for path in &args.inputs {
        check_input_file(path)?;
        let report = junit_read::read_report(path).map_err(|e| Error::usage(e.to_string()))?;
        reports.push((path.clone(), report));
    }
    let merged = merge::merge(&reports).map_err(Error::usage)?;
    junit::write_xml(&args.output, &merged).map_err(|e| {
        Error::with_cause(
            crate::error::Kind::CannotRun,
            format!("cannot write {}", args.output.display()),
            e,
        )
    })?;
    eprintln!(
        "merged {}: {}, {}, {} into {}",
        count(args.inputs.len(), "report"),
        count(merged.tests, "test"),
        count(merged.failures, "failure"),
        count(merged.errors, "error"),
        args.output.display()
    );
    Ok(exit::OK)
}

/// The biggest report `merge` and `timings import` read (they hold it in memory).
const MAX_REPORT_SIZE: u64 = 512 << 20;

/// A report to read must be a regular file of a bounded size: a FIFO would
/// block and a device never ends. Checked before the file is opened.
pub(super) fn check_input_file(path: &Path) -> Result<()> {
    let metadata = std::fs::metadata(path).map_err(|e| {
        Error::with_cause(
            crate::error::Kind::Usage,
            format!("cannot read {}", path.display()),
            e,
        )
    })?;
    if !metadata.is_file() {
        return Err(Error::usage(format!(
            "cannot read {}: not a regular file (a FIFO, a device or a directory); give the path of a report file",
            path.display()
        )));
    }
    if metadata.len() > MAX_REPORT_SIZE {
        return Err(Error::usage(format!(
            "cannot read {}: it is {} MiB, over the limit of {} MiB for one report",
            path.display(),
            metadata.len() >> 20,
            MAX_REPORT_SIZE >> 20
        )));
    }
    Ok(())
}
