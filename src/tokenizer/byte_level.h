// GPT-2's byte-to-unicode table ("bytes_to_unicode"): byte-level BPE vocabularies spell every
// byte as a printable character so that tokens are JSON-friendly strings. Printable Latin-1 bytes
// map to themselves; the other 68 bytes map to U+0100 onwards in byte order.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tinygpt::byte_level {

// The code point that spells byte `b`.
uint32_t char_of_byte(uint8_t b);

// The byte spelled by code point `cp`, if it is one of the 256 byte characters.
std::optional<uint8_t> byte_of_char(uint32_t cp);

// Raw bytes -> the byte-level spelling (UTF-8 of the mapped characters).
std::string encode(std::string_view bytes);

// Byte-level spelling -> raw bytes; nullopt if some character is not a byte character (or the
// text is not valid UTF-8).
std::optional<std::string> decode(std::string_view spelled);

}  // namespace tinygpt::byte_level
