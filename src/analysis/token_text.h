// Tokens as `tinygpt experts` shows and groups them: a printable form of a token's bytes (for
// text, JSON and HTML alike) and the byte class the token belongs to.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace tinygpt {

// What a token's text starts with. A token is classed by its first byte that is not whitespace
// (so a BPE word piece " the" is Lower, as the byte 't' of a byte-vocabulary model is); a token
// that is whitespace only is Newline when it holds '\n' or '\r', else Space. Other: control
// bytes and the empty token.
enum class ByteClass : uint8_t { Upper, Lower, Digit, Space, Newline, Punct, NonAscii, Other };
inline constexpr int kByteClassCount = 8;
using ByteClassCounts = std::array<int64_t, kByteClassCount>;

const char* byte_class_name(ByteClass c);  // "upper", "lower", …, "non-ascii", "other"
ByteClass classify_token(std::string_view bytes);

// The bytes as valid, visible UTF-8 text: valid UTF-8 stays as it is, except '\' → "\\", newline
// → "\n", tab → "\t", carriage return → "\r"; other control bytes (C0 and DEL) and bytes that
// are not valid UTF-8 (half a character from a byte vocabulary) → "\xNN".
std::string printable_piece(std::string_view bytes);
// printable_piece in single quotes, as tables list tokens: ' the'.
std::string quoted_piece(std::string_view bytes);

}  // namespace tinygpt
