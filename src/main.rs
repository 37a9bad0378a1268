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
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(f) => {
            eprint!("{}", f.message);
            if !f.message.ends_with('\n') {
                eprintln!();
            }
            ExitCode::from(f.code)
        }
    }
}

#[cfg(feature = "gui")]
fn launch(args: &Cli) -> ExitCode {
    let options = implicit_em_lab::app::LaunchOptions {
        preset: args.preset.clone(),
        screenshot: args.screenshot.clone(),
        steps: args.steps,
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
