use super::*;

fn words(pre: PreTokenizer, s: &str) -> std::vec::Vec<&str> {
    let mut v = std::vec::Vec::new();
    pre.split(s.as_bytes(), &mut |a, b| {
        v.push(&s[a..b]);
        Ok(())
    })
    .unwrap();
    v
}

#[test]
fn gpt2_pattern() {
    assert_eq!(
        words(PreTokenizer::Gpt2, "Hello world's  end!!\n\n x 123"),
        ["Hello", " world", "'s", " ", " end", "!!", "\n\n", " x", " 123"]
    );
    assert_eq!(words(PreTokenizer::Gpt2, "a   "), ["a", "   "]);
}

#[test]
fn smollm_splits_numbers() {
    assert_eq!(
        words(PreTokenizer::SmolLm, "ab 123x"),
        ["ab", " ", "1", "2", "3", "x"]
    );
}

#[test]
fn llama3_groups_digits_and_keeps_newlines() {
    assert_eq!(
        words(PreTokenizer::Llama3, "I'M 1234567 x\r\n\n  y"),
        ["I", "'M", " ", "123", "456", "7", " x", "\r\n\n", " ", " y"]
    );
    assert_eq!(words(PreTokenizer::Qwen2, "12 ab"), ["1", "2", " ab"]);
    // Qwen3.5 keeps a combining mark with its letters.
    assert_eq!(
        words(PreTokenizer::Qwen35, "e\u{301}t\u{301}"),
        ["e\u{301}t\u{301}"]
    );
    assert_eq!(words(PreTokenizer::Qwen2, "e\u{301}t"), ["e", "\u{301}t"]);
}

#[test]
fn gpt4o_case_splits_as_llama_cpp_regex() {
    assert_eq!(
        words(PreTokenizer::Gpt4o, "HelloWorld HTTPServer I'LL"),
        ["Hello", "World", " HTTPServer", " I'LL"]
    );
    // A letter past ASCII is both upper and lower case to llama.cpp.
    assert_eq!(words(PreTokenizer::Gpt4o, "ÉCOLE"), ["É", "COLE"]);
    assert_eq!(
        words(PreTokenizer::Gpt4o, "a / b\n\n"),
        ["a", " /", " b", "\n\n"]
    );
}

#[test]
fn default_and_falcon_split_punctuation_and_digit_groups() {
    assert_eq!(
        words(PreTokenizer::Default, "x=12345, y"),
        ["x", "=", "123", "45", ",", " y"]
    );
    assert_eq!(
        words(PreTokenizer::Falcon, "a`b 12345"),
        ["a", "`", "b", " ", "123", "45"]
    );
}

#[test]
fn deepseek_patterns() {
    assert_eq!(
        words(PreTokenizer::DeepSeekLlm, "Hi 你好 123!\n  "),
        ["Hi", " ", "你好", " ", "123", "!", "\n", "  "]
    );
    assert_eq!(
        words(PreTokenizer::DeepSeekCoder, "if x: 42"),
        ["if", " x", ":", " ", "4", "2"]
    );
}
