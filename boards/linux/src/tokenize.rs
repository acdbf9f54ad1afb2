//! `phi-edge tokenize`: a text's token ids, from an image or a GGUF file.

use std::path::Path;

use anyhow::{Context, Result};
use phi_edge::gguf::Gguf;
use phi_edge::pack::read_tokenizer;
use phi_edge::{Error, Limits, Tokenizer};

use crate::cli::TokenizeArgs;
use crate::model_file::{self, ImageBytes};

/// Prints the ids of `args.text`, space-separated on one line.
pub fn run(args: &TokenizeArgs) -> Result<()> {
    args.limits.check_text(args.text.len(), "text")?;
    let limits = args.limits.limits();
    let ids = with_tokenizer(&args.model, &limits, |t| {
        ids(t, args.text.as_bytes(), args.bos, args.special)
    })?;
    let line: Vec<String> = ids.iter().map(u32::to_string).collect();
    println!("{}", line.join(" "));
    Ok(())
}

/// Opens the tokenizer of `path`: a GGUF file's tables are built in memory
/// (no tensors needed), an image's are read in place.
fn with_tokenizer<T>(
    path: &Path,
    limits: &Limits,
    f: impl FnOnce(&Tokenizer<'_>) -> Result<T>,
) -> Result<T> {
    let map = model_file::map(path)?;
    let cannot = || format!("cannot read the tokenizer of {}", path.display());
    if map.starts_with(b"GGUF") {
        let g = Gguf::parse(&map).with_context(cannot)?;
        let owned = read_tokenizer(&g, None).with_context(cannot)?;
        limits
            .check_tokenizer(&owned.tables())
            .with_context(cannot)?;
        f(&Tokenizer::new(&owned.tables(), owned.name).with_context(cannot)?)
    } else {
        drop(map);
        let bytes = ImageBytes::open(path, limits)?;
        let model = bytes
            .model(limits)
            .with_context(|| format!("cannot open {}", path.display()))?;
        f(&Tokenizer::from_model(&model).with_context(cannot)?)
    }
}

/// The ids of `text` (llama_tokenize's add_special and parse_special).
pub fn ids(
    t: &Tokenizer<'_>,
    text: &[u8],
    add_special: bool,
    parse_special: bool,
) -> Result<Vec<u32>> {
    let need = t.work_bytes(text.len());
    let mut work = crate::commands::zeroed(need)
        .with_context(|| format!("cannot allocate {need} bytes to tokenize the text"))?;
    let mut out = vec![0u32; text.len() + 4];
    let n = match t.tokenize(text, add_special, parse_special, &mut out, &mut work) {
        Err(Error::BufferTooSmall { need, .. }) => {
            out.resize(need, 0);
            t.tokenize(text, add_special, parse_special, &mut out, &mut work)
        }
        r => r,
    }
    .context("cannot tokenize the text")?;
    out.truncate(n);
    Ok(out)
}
