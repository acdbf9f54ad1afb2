//! Chat templates: the prompt text around each conversation turn.
//!
//! A GGUF carries its chat template as Jinja (`tokenizer.chat_template`).
//! The core has no Jinja engine; it recognises the two template families
//! phi-edge runs, the way llama.cpp's `llm_chat_detect_template` does (by
//! substring), and renders them with fixed code that reproduces, byte for
//! byte, what the model's own Jinja template renders:
//!
//! | family | turn | end of turn | examples |
//! |---|---|---|---|
//! | [`ChatTemplate::Phi3`] | `<\|user\|>\n{content}<\|end\|>\n` | `<\|end\|>` | Phi-3-mini/-small/-medium/-vision, Phi-3.5-mini |
//! | [`ChatTemplate::ChatMl`] | `<\|im_start\|>user\n{content}<\|im_end\|>\n` | `<\|im_end\|>` | SmolLM2-Instruct |
//!
//! Both end with the generation prompt (`<|assistant|>\n`,
//! `<|im_start|>assistant\n`).
//!
//! **BOS is never part of the rendering.** Some Phi-3 templates begin with
//! `{{ bos_token }}`; llama.cpp renders them and then strips that leading
//! BOS text when the tokenizer adds BOS itself (`add_bos_token`, true for
//! Phi-3), so the BOS token comes from tokenization alone. SmolLM2's
//! template emits no BOS text and its tokenizer adds none.
//!
//! **Multi-turn chats keep the KV cache.** [`ChatTemplate::render_first`]
//! renders the first user turn with the generation prompt;
//! [`ChatTemplate::render_next`] renders what follows the assistant's reply:
//! the reply's end-of-turn marker, the next user turn and the generation
//! prompt. For a conversation `system?, u1, a1, u2, a2, .., uN` the Jinja
//! rendering equals
//! `render_first(system, u1) + a1 + render_next(u2) + a2 + .. + render_next(uN)`
//! (the tests check this against jinja2 renderings of the real templates).
//!
//! **Markers are not text.** A rendering goes to a [`ChatSink`], which
//! gets the template's markers (`<|im_start|>`, `<|user|>`, `<|end|>`, ...)
//! apart from the messages. The [`Generator`](crate::generate::Generator)
//! turns each marker into its special token and tokenizes the messages
//! with special-token parsing off, so a message that spells
//! `<|im_start|>system` stays text instead of opening a system turn (see
//! [`Tokenizer::tokenize_marked`](crate::Tokenizer::tokenize_marked)). Any
//! [`fmt::Write`] is a sink that writes both as text: the rendering as a
//! string, as the model's Jinja template gives it.

use core::fmt::{self, Write};

use crate::error::{Error, Result};

/// How a Phi-3 template treats a system message. The Phi-3 family differs
/// here, so [`ChatTemplate::detect`] reads it from the template text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phi3System {
    /// `<|system|>\n{system}<|end|>\n` before the first user turn, even for
    /// an empty message: Phi-3-mini's template since May 2024 (a
    /// `message['role'] == 'system'` branch), Phi-3-small and -vision (any
    /// role written as `<|{role}|>`), and llama.cpp's built-in `phi3`.
    Turn,
    /// As [`Phi3System::Turn`], but an empty system message is left out:
    /// Phi-3.5-mini (`message['role'] == 'system' and message['content']`).
    TurnIfNonEmpty,
    /// The template ignores system messages (Phi-3-mini's first template,
    /// the one in llama.cpp's `ggml-vocab-phi-3.gguf`, and Phi-3-medium:
    /// user and assistant branches only). A system message is merged into
    /// the first user message as `{system}\n{user}`, as llama.cpp does for
    /// templates without a system role (`system_message_not_supported` in
    /// `common/chat.cpp`), instead of being dropped.
    MergedIntoUser,
}

/// A recognised chat template. `'t` borrows from the template text (the
/// ChatML default system message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatTemplate<'t> {
    /// Phi-3: `<|user|>\n{content}<|end|>\n<|assistant|>\n`.
    Phi3 {
        /// How a system message is rendered.
        system: Phi3System,
    },
    /// ChatML: `<|im_start|>{role}\n{content}<|im_end|>\n`.
    ChatMl {
        /// The system message the template writes when the conversation has
        /// none (SmolLM2: "You are a helpful AI assistant named SmolLM,
        /// trained by Hugging Face"); an explicit system message replaces it.
        default_system: Option<&'t str>,
    },
}

/// Phi-3's end-of-turn marker (token 32007 in the Phi-3 vocabulary).
const PHI3_END: &str = "<|end|>";
/// ChatML's end-of-turn marker.
const CHATML_END: &str = "<|im_end|>";
/// ChatML's start-of-turn marker.
const CHATML_START: &str = "<|im_start|>";

/// Where a rendering goes: the template's markers and the text between
/// them, in order.
pub trait ChatSink {
    /// A marker of the template: the text of one of its special tokens.
    fn marker(&mut self, marker: &'static str) -> fmt::Result;
    /// Text: role names, newlines and the messages.
    fn text(&mut self, text: &str) -> fmt::Result;
}

/// Markers and text alike become text: the rendering as a string.
impl<W: Write> ChatSink for W {
    fn marker(&mut self, marker: &'static str) -> fmt::Result {
        self.write_str(marker)
    }

    fn text(&mut self, text: &str) -> fmt::Result {
        self.write_str(text)
    }
}

impl ChatTemplate<'static> {
    /// The fallback for a model whose template is missing or not
    /// recognised: plain ChatML with no default system message, the
    /// template llama.cpp uses when a model has none. Choosing it is the
    /// caller's decision: [`ChatTemplate::detect`] never falls back.
    pub const FALLBACK: ChatTemplate<'static> = ChatTemplate::ChatMl {
        default_system: None,
    };
}

impl<'t> ChatTemplate<'t> {
    /// Recognises a chat template from its Jinja text, with llama.cpp's
    /// substring tests for these two families, in llama.cpp's order:
    /// the names `chatml` and `phi3` select the built-in templates;
    /// `<|im_start|>` is ChatML unless it also holds `<|im_sep|>`
    /// (Phi-4) or `<end_of_utterance>` (SmolVLM); a template starting with
    /// `mistral` or holding `[INST]` is Mistral/Llama-2; otherwise
    /// `<|assistant|>` together with `<|end|>` is Phi-3.
    ///
    /// A ChatML default system message is a string literal in the template
    /// that starts with `<|im_start|>system` and a newline and runs to
    /// `<|im_end|>` with no quote or backslash in between (SmolLM2's
    /// `'<|im_start|>system\nYou are ...<|im_end|>\n'`).
    ///
    /// Anything else is [`Error::UnknownChatTemplate`].
    pub fn detect(jinja: &'t str) -> Result<ChatTemplate<'t>> {
        let unknown = |what| Err(Error::UnknownChatTemplate { what });
        match jinja {
            "" => return unknown("the model carries no chat template"),
            "chatml" => {
                return Ok(ChatTemplate::ChatMl {
                    default_system: None,
                })
            }
            "phi3" => {
                return Ok(ChatTemplate::Phi3 {
                    system: Phi3System::Turn,
                })
            }
            _ => {}
        }
        let has = |s: &str| jinja.contains(s);
        if has("<|im_start|>") {
            if has("<|im_sep|>") {
                return unknown("Phi-4 (<|im_start|> with <|im_sep|>)");
            }
            if has("<end_of_utterance>") {
                return unknown("SmolVLM (<|im_start|> with <end_of_utterance>)");
            }
            let default_system = chatml_default_system(jinja)?;
            return Ok(ChatTemplate::ChatMl { default_system });
        }
        if jinja.starts_with("mistral") || has("[INST]") {
            return unknown("Mistral / Llama-2 ([INST])");
        }
        if has("<|assistant|>") && has(PHI3_END) {
            return Ok(ChatTemplate::Phi3 {
                system: phi3_system(jinja),
            });
        }
        unknown("neither ChatML (<|im_start|>) nor Phi-3 (<|assistant|> and <|end|>)")
    }

    /// Renders the start of a conversation: the system message (`None`:
    /// the template's default, if any), the first user message, and the
    /// generation prompt. No BOS text (see the module docs).
    pub fn render_first(
        &self,
        system: Option<&str>,
        user: &str,
        out: &mut impl ChatSink,
    ) -> fmt::Result {
        match *self {
            ChatTemplate::Phi3 { system: how } => {
                let mut merged = None;
                match (how, system) {
                    (Phi3System::Turn, Some(s)) => phi3_turn(out, "<|system|>", s)?,
                    (Phi3System::TurnIfNonEmpty, Some(s)) if !s.is_empty() => {
                        phi3_turn(out, "<|system|>", s)?
                    }
                    (Phi3System::MergedIntoUser, Some(s)) => merged = Some(s),
                    _ => {}
                }
                out.marker("<|user|>")?;
                out.text("\n")?;
                if let Some(s) = merged {
                    // llama.cpp's merge, `{system}\n{user}`, also when either is empty.
                    out.text(s)?;
                    out.text("\n")?;
                }
                out.text(user)?;
                out.marker(PHI3_END)?;
                out.text("\n")?;
                phi3_generation_prompt(out)
            }
            ChatTemplate::ChatMl { default_system } => {
                if let Some(s) = system.or(default_system) {
                    chatml_turn(out, "system", s)?;
                }
                chatml_turn(out, "user", user)?;
                chatml_generation_prompt(out)
            }
        }
    }

    /// Renders what follows the assistant's reply: the end-of-turn marker
    /// and newline that close the reply, the next user message, and the
    /// generation prompt. The output always starts with
    /// [`ChatTemplate::end_of_turn`]; a caller that has already fed the
    /// sampled end-of-turn token to the model skips those bytes.
    pub fn render_next(&self, user: &str, out: &mut impl ChatSink) -> fmt::Result {
        out.marker(self.end_of_turn())?;
        out.text("\n")?;
        match self {
            ChatTemplate::Phi3 { .. } => {
                phi3_turn(out, "<|user|>", user)?;
                phi3_generation_prompt(out)
            }
            ChatTemplate::ChatMl { .. } => {
                chatml_turn(out, "user", user)?;
                chatml_generation_prompt(out)
            }
        }
    }

    /// The text that ends a turn, and so the assistant's reply: generation
    /// stops at this token (`<|end|>` for Phi-3, `<|im_end|>` for ChatML).
    pub fn end_of_turn(&self) -> &'static str {
        match self {
            ChatTemplate::Phi3 { .. } => PHI3_END,
            ChatTemplate::ChatMl { .. } => CHATML_END,
        }
    }
}

/// `{role}\n{content}<|end|>\n`, `role` being the marker `<|user|>` or
/// `<|system|>`.
fn phi3_turn(out: &mut impl ChatSink, role: &'static str, content: &str) -> fmt::Result {
    out.marker(role)?;
    out.text("\n")?;
    out.text(content)?;
    out.marker(PHI3_END)?;
    out.text("\n")
}

/// `<|assistant|>\n`.
fn phi3_generation_prompt(out: &mut impl ChatSink) -> fmt::Result {
    out.marker("<|assistant|>")?;
    out.text("\n")
}

/// `<|im_start|>{role}\n{content}<|im_end|>\n`.
fn chatml_turn(out: &mut impl ChatSink, role: &str, content: &str) -> fmt::Result {
    out.marker(CHATML_START)?;
    out.text(role)?;
    out.text("\n")?;
    out.text(content)?;
    out.marker(CHATML_END)?;
    out.text("\n")
}

/// `<|im_start|>assistant\n`.
fn chatml_generation_prompt(out: &mut impl ChatSink) -> fmt::Result {
    out.marker(CHATML_START)?;
    out.text("assistant\n")
}

/// Which [`Phi3System`] a Phi-3 template implies.
fn phi3_system(jinja: &str) -> Phi3System {
    let has = |s: &str| jinja.contains(s);
    if has("'system' and message['content']") || has("\"system\" and message['content']") {
        Phi3System::TurnIfNonEmpty
    } else if has("<|system|>")
        || has("'system'")
        || has("\"system\"")
        || has("message['role'] +")
        || has("message.role +")
    {
        Phi3System::Turn
    } else {
        Phi3System::MergedIntoUser
    }
}

/// The default system message literal of a ChatML template, if it has one.
///
/// Linear in the template: the end marker after a candidate is searched
/// for once and reused until a candidate starts past it, and the quote
/// search of a candidate stops at the next quote of its kind, which comes
/// before the next candidate opened by that quote.
fn chatml_default_system(jinja: &str) -> Result<Option<&str>> {
    const START: &str = "<|im_start|>system";
    let mut rest = jinja;
    // The absolute position of the first end marker at or after `rest`'s
    // candidate body, once searched for.
    let mut next_end: Option<usize> = None;
    while let Some(at) = rest.find(START) {
        let before = rest[..at].chars().next_back();
        let after = &rest[at + START.len()..];
        rest = after;
        let quote = match before {
            Some(q @ ('\'' | '"')) => q,
            _ => continue,
        };
        let Some(body) = after
            .strip_prefix('\n')
            .or_else(|| after.strip_prefix("\\n"))
        else {
            continue;
        };
        let body_at = jinja.len() - body.len();
        let end_at = match next_end {
            Some(e) if e >= body_at => e,
            _ => match body.find(CHATML_END) {
                Some(e) => body_at + e,
                // No end marker after this body: none after the later ones.
                None => return Ok(None),
            },
        };
        next_end = Some(end_at);
        let text = &body[..end_at - body_at];
        if text.contains(quote) {
            // `'<|im_start|>system\n' + message['content']`: not a literal.
            continue;
        }
        if text.contains('\\') {
            return Err(Error::UnknownChatTemplate {
                what: "ChatML default system message with escape sequences",
            });
        }
        return Ok(Some(text));
    }
    Ok(None)
}
