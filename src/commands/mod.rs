//! The commands, one file each: the order of the stages of each command,
//! no policy (that lives in `config`, `schedule`, `report`, ...).

mod archive;
mod list;
mod merge;
mod plugins;
mod prepare;
mod queue;
mod run;
mod supervise;
mod timings;

use crate::cli::{Cli, Command as Subcommand};
use crate::error::exit;

/// Runs the command line and returns the process exit code.
pub fn main(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    let args: Vec<std::ffi::OsString> = args.into_iter().collect();
    if args
        .get(1)
        .is_some_and(|a| a == crate::supervisor::SUBCOMMAND)
    {
        let run_id = args.get(2).map(|a| a.to_string_lossy().into_owned());
        return crate::supervisor::main(&run_id.unwrap_or_default());
    }
    // A Cargo batch's process (see `plugin::cargo_batch`).
    if let Some(code) = crate::plugin::cargo_batch::main(&args) {
        return code;
    }
    let cli = match Cli::parse_args(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
        }
    };
    crate::report::console::set_color_override(match cli.color {
        Some(crate::cli::ColorChoice::Always) => Some(true),
        Some(crate::cli::ColorChoice::Never) => Some(false),
        Some(crate::cli::ColorChoice::Auto) | None => None,
    });
    let result = match cli.command {
        Subcommand::Run(args) => run::run(&args),
        Subcommand::List(args) => list::list(&args),
        Subcommand::Plugins => plugins::plugins(),
        Subcommand::Timings(args) => timings::timings_command(&args),
        Subcommand::Merge(args) => merge::merge_reports(&args),
        Subcommand::Queue(args) => queue::queue_command(&args),
        Subcommand::Archive(args) => archive::archive(&args),
        Subcommand::Completions { shell } => {
            Cli::write_completions(shell, &mut std::io::stdout());
            Ok(exit::OK)
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        e.exit_code()
    })
}
