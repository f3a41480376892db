//! The `drone-delivery` binary: [`drone_delivery::cli`] on the process's arguments.
fn main() -> std::process::ExitCode {
    drone_delivery::cli::main_with(std::env::args_os())
}
