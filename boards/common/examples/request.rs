//! Writes a request blob for a board image.
//!
//! ```text
//! cargo run -p phi-edge-board --example request -- \
//!     --prompt "What is the capital of France?" --chat --temp 0 --max-tokens 16 --ctx 512 \
//!     -o target/request.bin
//! ```
//!
//! Options (defaults as `phi-edge run`'s, context 512): `--prompt P`
//! (required), `--system S`, `--chat`, `--max-tokens N`, `--temp T`,
//! `--seed S`, `--ctx N`, `--icount` (the board runs under QEMU's
//! `-icount shift=0`: report instructions per token), `-o FILE`
//! (required).

use std::process::ExitCode;

use phi_edge_board::Request;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut prompt, mut system, mut out) = (None, None, None);
    // Settings, applied to the request once the prompt is known.
    let mut defaults = Request::new("");
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        let switch = match flag {
            "--chat" => Some(&mut defaults.chat),
            "--icount" => Some(&mut defaults.icount),
            _ => None,
        };
        if let Some(on) = switch {
            *on = true;
            i += 1;
            continue;
        }
        let value = args.get(i + 1).ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag {
            "--prompt" => prompt = Some(value.clone()),
            "--system" => system = Some(value.clone()),
            "--max-tokens" => defaults.max_tokens = value.parse().map_err(|e| bad(&e))?,
            "--temp" => defaults.temperature = value.parse().map_err(|e| bad(&e))?,
            "--seed" => defaults.seed = value.parse().map_err(|e| bad(&e))?,
            "--ctx" => defaults.n_ctx = value.parse().map_err(|e| bad(&e))?,
            "-o" => out = Some(value.clone()),
            _ => return Err(format!("unknown option {flag}")),
        }
        i += 2;
    }
    let prompt = prompt.ok_or("--prompt is required")?;
    let out = out.ok_or("-o FILE is required")?;
    let mut req = Request::new(&prompt);
    req.system = system.as_deref();
    req.chat = defaults.chat;
    req.max_tokens = defaults.max_tokens;
    req.temperature = defaults.temperature;
    req.seed = defaults.seed;
    req.n_ctx = defaults.n_ctx;
    req.icount = defaults.icount;
    let mut buf = vec![0u8; prompt.len() + system.as_ref().map_or(0, String::len) + 64];
    let blob = req.encode(&mut buf).map_err(|e| e.to_string())?;
    std::fs::write(&out, &*blob).map_err(|e| format!("cannot write {out}: {e}"))?;
    eprintln!("wrote {out}: {} bytes", blob.len());
    Ok(())
}
