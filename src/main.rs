//! The `ledger` binary: parses the command line and runs it.

use clap::Parser;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LEDGER_LOG")
                .unwrap_or_else(|_| "info,fjall=warn,lsm_tree=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file or journal gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // When the log cannot be written (its disk is full), drop the line: the
        // subscriber's own report of that would panic the task that logged.
        .log_internal_errors(false)
        .init();
    if let Err(e) = ledger::cli::run(ledger::cli::Cli::parse()) {
        // One line, the whole chain of causes; no backtrace for an operator's mistake.
        eprintln!("error: {}", ledger::cli::error_text(&e));
        std::process::exit(1);
    }
}
