//! Running external programs: echo the command on stderr, pass its output
//! through, and turn a failure into a [`Failure`] that says what ran.

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::process::{Command, Stdio};

use crate::{Failure, Result};

/// `cargo`, as the one running xtask (`$CARGO`) when there is one.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// The command line, shell-quoted where needed, for messages.
pub fn show(cmd: &Command) -> String {
    let mut parts = vec![quote(cmd.get_program())];
    parts.extend(cmd.get_args().map(quote));
    parts.join(" ")
}

fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Runs `cmd` with inherited stdio after echoing it; fails unless it exits 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    let line = show(cmd);
    eprintln!("$ {line}");
    let status = cmd
        .status()
        .map_err(|e| spawn_failure(&line, cmd.get_program(), &e))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::new(format!("`{line}` failed ({status})")))
    }
}

/// Runs `cmd` quietly and returns its stdout; its stderr is included in the
/// failure message.
pub fn capture(cmd: &mut Command) -> Result<String> {
    let line = show(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_failure(&line, cmd.get_program(), &e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(Failure::new(format!(
            "`{line}` failed ({}):\n{}",
            out.status,
            err.trim_end()
        )))
    }
}

/// `cargo run --quiet --release -p phi-edge-cli --` in the workspace: the
/// `phi-edge` command line, built on first use.
pub fn phi_edge(ws: &crate::Workspace) -> Command {
    let mut c = cargo();
    c.arg("run")
        .arg("--manifest-path")
        .arg(ws.root.join("Cargo.toml"))
        .args(["--quiet", "--release", "-p", "phi-edge-cli", "--"]);
    c
}

/// Whether `program` can be started at all (`program --version` runs).
pub fn available(program: impl AsRef<OsStr>) -> bool {
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn spawn_failure(line: &str, program: &OsStr, e: &std::io::Error) -> Failure {
    if e.kind() == ErrorKind::NotFound {
        Failure::new(format!(
            "`{}` not found (running `{line}`)",
            program.to_string_lossy()
        ))
    } else {
        Failure::new(format!("could not start `{line}`: {e}"))
    }
}
