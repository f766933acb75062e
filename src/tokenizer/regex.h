// PCRE2 (UTF + UCP, JIT) for the pre-tokenizer patterns, which HF writes in Rust/Oniguruma syntax.
// `\s` / `\S` are rewritten to the Unicode White_Space set that Rust and Oniguruma use: PCRE2's
// own `\s` also matches U+180E (MONGOLIAN VOWEL SEPARATOR), which has not been White_Space since
// Unicode 6.3.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace tinygpt {

class Regex {
  public:
    // Throws Error("<where>: invalid regex ...: <PCRE2's message> at offset N").
    Regex(const std::string& pattern, const std::string& where);
    ~Regex();
    Regex(const Regex&) = delete;
    Regex& operator=(const Regex&) = delete;

    // The first match in text[from..] (text must be valid UTF-8, `from` on a character boundary):
    // sets [begin, end) and returns true, or returns false. Safe to call from several threads.
    bool find(std::string_view text, size_t from, size_t& begin, size_t& end) const;

    const std::string& pattern() const { return pattern_; }

  private:
    std::string pattern_;
    void* code_ = nullptr;  // pcre2_code_8*
};

// The pattern with `\s` and `\S` replaced by explicit White_Space classes (exposed for tests).
std::string with_rust_white_space(std::string_view pattern);

// Rust's char::is_whitespace (the Unicode White_Space property).
bool is_white_space(uint32_t cp);

}  // namespace tinygpt
