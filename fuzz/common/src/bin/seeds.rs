//! Writes the seed corpora: `seeds DIR [TARGET...]` fills `DIR/<target>/`
//! for the targets named (default: all); `seeds --list` prints each
//! target and its `-max_len`, fastest first.

use std::path::PathBuf;
use std::process::ExitCode;

use phi_edge_fuzz_common::seeds::{max_len, write, TARGETS};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: seeds DIR [TARGET...] | seeds --list");
        return ExitCode::from(2);
    };
    if dir == "--list" {
        for t in TARGETS {
            println!("{t} {}", max_len(t));
        }
        return ExitCode::SUCCESS;
    }
    let named: Vec<&str> = args[1..].iter().map(String::as_str).collect();
    if let Some(bad) = named.iter().find(|t| !TARGETS.contains(t)) {
        eprintln!(
            "seeds: unknown target `{bad}` (targets: {})",
            TARGETS.join(", ")
        );
        return ExitCode::from(2);
    }
    let targets = if named.is_empty() {
        TARGETS.to_vec()
    } else {
        named
    };
    match write(&PathBuf::from(dir), &targets) {
        Ok(n) => {
            eprintln!("seeds: {n} files for {} in {dir}", targets.join(", "));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("seeds: {dir}: {e}");
            ExitCode::FAILURE
        }
    }
}
