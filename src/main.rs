//! `cargo-paratest`: the binary is a thin shell around the library.

fn main() {
    std::process::exit(cargo_paratest::commands::main(std::env::args_os()));
}
