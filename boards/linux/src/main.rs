//! `phi-edge`: the phi-edge command line for the host and Linux boards.
//!
//! Exit status: 0 on success, 2 on bad input (a missing or malformed file,
//! a bad token id, too many tokens for the context), with one line on
//! stderr saying what was wrong.

mod cli;
mod commands;
mod generate;
mod model_file;
mod npy;
mod perplexity;
mod progress;
mod tokenize;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        Err(e) => {
            // clap prints help/version to stdout (exit 0), usage errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match commands::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A core limit names the flag that raises it.
            let flag = e.chain().find_map(|c| match c.downcast_ref() {
                Some(phi_edge::Error::OverLimit { limit, .. }) => {
                    Some(cli::LimitArgs::flag(*limit))
                }
                _ => None,
            });
            match flag {
                Some(flag) => eprintln!("error: {e:#} (raise it with {flag})"),
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::from(2)
        }
    }
}
