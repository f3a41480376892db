//! The `ecommerce` binary: [`ecommerce::cli`] on the process's arguments.
fn main() -> std::process::ExitCode {
    ecommerce::cli::main_with(std::env::args_os())
}
