//! `cargo paratest archive`: build, discover, and write the archive.

use std::time::Instant;

use super::prepare::{cargo_options, discover, excluded_paths, prepare_in, selection};
use super::supervise::{end_supervision, supervised_watchdog};
use crate::cli::ArchiveArgs;
use crate::config::MessageFormat;
use crate::error::{Error, Result, exit};
use crate::report::json;

/// `cargo paratest archive --archive-file FILE`: builds and discovers as
/// `run` does, then writes the archive (see [`crate::archive`]).
pub(super) fn archive(args: &ArchiveArgs) -> Result<i32> {
    let started = Instant::now();
    let Some(file) = args.select.archive_file.clone() else {
        return Err(Error::usage(
            "`cargo paratest archive` needs --archive-file FILE, the archive to write",
        ));
    };
    let file = std::path::absolute(&file).unwrap_or(file);
    let prepared = prepare_in(&args.select, args.profile(), None)?;
    if prepared.plugin.name() != "cargo" {
        return Err(Error::usage(format!(
            "--plugin {}: only the Cargo plugin's tests can be archived",
            prepared.plugin.name()
        )));
    }
    let format = prepared.message_format;
    let selection = selection(&prepared, &args.select, &[])?;
    let mut excluded = excluded_paths(None, &args.select);
    excluded.push(file.clone());
    // Supervised as `run` is: a build or listing killed with us dies too.
    let (watchdog, run_id) = supervised_watchdog()?;
    let cargo = cargo_options(&prepared, &args.select);
    let created = discover(
        &prepared,
        &args.select,
        &selection,
        format == MessageFormat::Human,
        &watchdog,
        &excluded,
    )
    .and_then(|tests| {
        crate::archive::create(
            &crate::archive::CreateRequest {
                file: &file,
                source: &prepared.source,
                include_source: !args.no_source,
                excluded: &excluded,
                cargo: &cargo,
                watchdog: &watchdog,
            },
            &tests,
        )
    });
    end_supervision(&watchdog, &run_id);
    let created = match created {
        Err(_) if watchdog.is_interrupted() => return Ok(exit::INTERRUPTED),
        other => other?,
    };
    let elapsed = started.elapsed();
    if format == MessageFormat::Json {
        json::print(&json::Archived {
            kind: "archive",
            path: &file,
            tests: created.tests,
            binaries: created.binaries,
            entries: created.files,
            bytes: created.bytes,
            seconds: elapsed.as_secs_f64(),
            source_included: !args.no_source,
        });
    } else {
        eprintln!(
            "Archived {} tests of {} binaries ({} entries{}, {:.1} MB) to {} in {}",
            created.tests,
            created.binaries,
            created.files,
            if args.no_source {
                ", no source"
            } else {
                ", with the source"
            },
            created.bytes as f64 / 1e6,
            file.display(),
            crate::words::tenths(elapsed)
        );
    }
    Ok(exit::OK)
}
