//! `cargo-paratest`: the binary is a thin shell around the library.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // A Cargo batch's process (see `plugin::cargo_batch`).
    if let Some(code) = cargo_paratest::plugin::cargo_batch::main(&args) {
        std::process::exit(code);
    }
    std::process::exit(cargo_paratest::app::main(args));
}
