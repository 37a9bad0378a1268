use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use implicit_em_lab::cli::{self, Action, Cli};

fn main() -> ExitCode {
    let args = Cli::parse();
    let result = match &args.command {
        Some(Action::Run(run)) => cli::run(run, &mut std::io::stderr()),
        Some(Action::Check(check)) => cli::check(check),
        Some(Action::Bench(b)) => cli::bench(b),
        None => return launch(&args),
    };
    match result {
        Ok(text) => match write_out(&text) {
            Ok(()) => ExitCode::SUCCESS,
            // The reader had enough (`run … | head -1`): end quietly.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "cannot write the output: {e}");
                ExitCode::from(cli::EXIT_BAD_INPUT)
            }
        },
        Err(f) => {
            // Best effort: an unwritable stderr must not turn the exit code into a panic's.
            let mut err = std::io::stderr().lock();
            let newline = if f.message.ends_with('\n') { "" } else { "\n" };
            let _ = write!(err, "{}{newline}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// Writes a command's text to standard output (`print!` would panic on a closed pipe or a full
/// disk).
fn write_out(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

#[cfg(feature = "gui")]
fn launch(args: &Cli) -> ExitCode {
    let options = implicit_em_lab::app::LaunchOptions {
        preset: args.preset.clone(),
        screenshot: args.screenshot.clone(),
        steps: args.steps,
        figure: args.figure.clone(),
        figure_options: implicit_em_lab::app::figure::FigureOptions {
            width: args.size.0,
            height: args.size.1,
            dark: args.theme == cli::ThemeArg::Dark,
        },
    };
    match implicit_em_lab::app::launch(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(cli::EXIT_BAD_INPUT)
        }
    }
}

#[cfg(not(feature = "gui"))]
fn launch(_args: &Cli) -> ExitCode {
    eprintln!("this build has no window (built without the `gui` feature); use `run` or `check`, see --help");
    ExitCode::from(cli::EXIT_BAD_INPUT)
}
