//! `cargo paratest plugins`: the registered plugins, one a line.

use std::io::Write;

use crate::error::{Result, exit};
use crate::plugin;

pub(super) fn plugins() -> Result<i32> {
    let mut stdout = std::io::stdout().lock();
    for plugin in plugin::registered() {
        let _ = writeln!(stdout, "{:<10} {}", plugin.name(), plugin.description());
    }
    Ok(exit::OK)
}
