// UTF-8 helpers for the tokenizer: validation (HF tokenizers only ever see valid UTF-8, so a BPE
// tokenizer refuses anything else), encoding a code point, and NFC through utf8proc.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tinygpt::utf8 {

// Offset of the first byte that does not start a valid UTF-8 sequence (overlongs, surrogates and
// code points above U+10FFFF are invalid), or std::string_view::npos if `text` is valid.
size_t first_invalid(std::string_view text);

// Length of the valid UTF-8 sequence starting at text[i], or 0 if none starts there.
size_t valid_sequence_length(std::string_view text, size_t i);

// Appends the UTF-8 encoding of `cp` (assumed a valid scalar value).
void append(std::string& out, uint32_t cp);

// Decodes the code point at text[i] (text assumed valid) and advances i past it.
uint32_t next(std::string_view text, size_t& i);

// NFC of valid UTF-8 text. ASCII is returned as is without calling utf8proc.
std::string nfc(std::string_view text);

}  // namespace tinygpt::utf8
