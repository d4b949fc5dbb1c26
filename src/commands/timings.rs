//! `cargo paratest timings`: show, merge, import and clear the timings store.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use super::merge::check_input_file;
use super::prepare::find_source;
use crate::cli::{SelectArgs, TimingsAction, TimingsArgs};
use crate::config::MessageFormat;
use crate::error::{Error, Result, exit};
use crate::report::json;
use crate::runs::paratest_dir;
use crate::schedule::timings::Timings;
use crate::words::count;

pub(super) fn timings_command(args: &TimingsArgs) -> Result<i32> {
    let path = match &args.timings {
        Some(path) => path.clone(),
        None => {
            let cwd = std::env::current_dir().map_err(|e| {
                Error::with_cause(crate::error::Kind::Usage, "no current directory", e)
            })?;
            let select = SelectArgs::for_source(args.source.clone());
            paratest_dir(&find_source(&select, &cwd)?).join("timings.json")
        }
    };
    let fail = |e: String| Error::usage(e);
    match &args.action {
        TimingsAction::Show { message_format } => {
            let (timings, warning) = Timings::load(&path);
            if let Some(warning) = warning {
                return Err(Error::usage(warning));
            }
            let mut rows: Vec<(Duration, usize, &str)> = timings
                .iter()
                .map(|(id, samples)| (timings.expected(id).unwrap_or_default(), samples.len(), id))
                .collect();
            rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.2.cmp(b.2)));
            let mut stdout = std::io::stdout().lock();
            for (expected, samples, id) in &rows {
                let _ = if *message_format == Some(MessageFormat::Json) {
                    let row = json::TimedTest {
                        id,
                        expected_duration: expected.as_secs_f64(),
                        samples: *samples,
                    };
                    json::write_line(&mut stdout, &row);
                    Ok(())
                } else {
                    writeln!(
                        stdout,
                        "{:>9}  {}  {}",
                        crate::report::seconds(*expected),
                        count(*samples, "sample"),
                        crate::report::console::printable(id)
                    )
                };
            }
            eprintln!("{} in {}", count(rows.len(), "test"), path.display());
        }
        TimingsAction::Merge { inputs, output } => {
            Timings::check_replaceable(output, args.overwrite_timings).map_err(fail)?;
            let mut loaded = Vec::new();
            for input in inputs {
                let (timings, warning) = Timings::load(input);
                if let Some(warning) = warning {
                    return Err(Error::usage(format!("cannot merge: {warning}")));
                }
                if !input.exists() {
                    return Err(Error::usage(format!(
                        "cannot merge: {} does not exist",
                        input.display()
                    )));
                }
                loaded.push(timings);
            }
            let merged = Timings::merge(&loaded);
            merged.save_to(output).map_err(fail)?;
            eprintln!(
                "merged {}: {} in {}",
                count(inputs.len(), "file"),
                count(merged.len(), "test"),
                output.display()
            );
        }
        TimingsAction::Import { reports, output } => {
            let imported = import_timings(reports)?;
            let target = output.as_deref().unwrap_or(&path);
            Timings::check_replaceable(target, args.overwrite_timings).map_err(fail)?;
            let result = if output.is_some() {
                imported.clone()
            } else {
                let (existing, warning) = Timings::load(target);
                if let Some(warning) = warning {
                    return Err(Error::usage(format!("cannot import into it: {warning}")));
                }
                Timings::merge(&[existing, imported.clone()])
            };
            result.save_to(target).map_err(fail)?;
            eprintln!(
                "imported {} from {} into {}",
                count(imported.len(), "test"),
                count(reports.len(), "report"),
                target.display()
            );
        }
        TimingsAction::Clear => {
            Timings::check_replaceable(&path, args.overwrite_timings).map_err(fail)?;
            Timings::clear(&path).map_err(fail)?;
            eprintln!("cleared {}", path.display());
        }
    }
    Ok(exit::OK)
}

/// Timings from JUnit reports (see [`crate::schedule::timings::import`]).
fn import_timings(reports: &[PathBuf]) -> Result<Timings> {
    for path in reports {
        check_input_file(path)?;
    }
    crate::schedule::timings::import::from_reports(reports).map_err(Error::usage)
}
