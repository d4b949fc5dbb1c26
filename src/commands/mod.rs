//! The commands, one file each.

mod run;

pub use run::main;
