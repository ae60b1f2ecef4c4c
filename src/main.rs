//! The `runproof` binary: everything lives in the library; see `cli`.

fn main() -> std::process::ExitCode {
    runproof::cli::main()
}
