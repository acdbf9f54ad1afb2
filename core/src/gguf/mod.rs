//! GGUF v2/v3 reader (host only).
