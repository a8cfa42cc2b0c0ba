//! The `ledger` binary: reads the config file into the arguments, parses the
//! command line, sets up logging and runs the command.

use clap::Parser;

use ledger::cli::{self, Cli, Command, LogFormat};

/// The log filter when `LEDGER_LOG` is not set.
const DEFAULT_FILTER: &str = "info,fjall=warn,lsm_tree=warn";

fn main() {
    let (args, injected) = match cli::config::args_with_config(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(e) => fail(&e),
    };
    let parsed = match Cli::try_parse_from(args) {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = e.print();
            if let Some(note) = injected.note_for(&e.to_string()) {
                eprintln!("{note}");
            }
            std::process::exit(e.exit_code());
        }
    };
    let format = match &parsed.command {
        Command::Serve(args) => args.log_format,
        _ => LogFormat::Text,
    };
    if let Err(e) = init_logging(format) {
        fail(&e);
    }
    if let Err(e) = cli::run(parsed) {
        // A reader that went away (`| head`) is not an error.
        if e.chain()
            .any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
        {
            std::process::exit(0);
        }
        fail(&e);
    }
}

/// One line, the whole chain of causes; no backtrace for an operator's mistake.
fn fail(e: &anyhow::Error) -> ! {
    eprintln!("error: {}", cli::error_text(e));
    std::process::exit(1);
}

/// Logs to standard error as text (colours only on a terminal) or JSON lines.
/// An invalid `LEDGER_LOG` is an error, not silently the default.
fn init_logging(format: LogFormat) -> anyhow::Result<()> {
    let filter = match std::env::var("LEDGER_LOG") {
        Ok(spec) => log_filter(&spec)?,
        Err(_) => tracing_subscriber::EnvFilter::new(DEFAULT_FILTER),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // When the log cannot be written (its disk is full), drop the line: the
        // subscriber's own report of that would panic the task that logged.
        .log_internal_errors(false);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        // Colours only on a terminal: a log file or journal gets plain text.
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
    }
    Ok(())
}

/// `LEDGER_LOG` as a filter. A bare word is a target to the filter syntax,
/// so a misspelt level (`debg`) would silently log nothing: only levels and
/// module paths (`a::b`) stand alone; anything else is `target=level`.
fn log_filter(spec: &str) -> anyhow::Result<tracing_subscriber::EnvFilter> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let bare = spec.split(',').map(str::trim).find(|d| {
        !d.is_empty()
            && !d.contains('=')
            && !d.contains("::")
            && !d.contains('[')
            && !LEVELS.contains(&d.to_lowercase().as_str())
    });
    if let Some(word) = bare {
        anyhow::bail!(
            "LEDGER_LOG={spec:?}: {word:?} is not a level (trace, debug, info, warn, error, off); for one module \
             write module=level, e.g. LEDGER_LOG=info,ledger=debug"
        );
    }
    tracing_subscriber::EnvFilter::try_new(spec).map_err(|e| {
        anyhow::anyhow!(
            "LEDGER_LOG={spec:?} is not a log filter ({e}); e.g. LEDGER_LOG=info or LEDGER_LOG=debug,fjall=warn"
        )
    })
}
