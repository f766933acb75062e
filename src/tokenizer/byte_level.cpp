#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/utf8.h"

namespace tinygpt::byte_level {

namespace {

struct Tables {
    std::array<uint32_t, 256> char_of{};
    std::array<int16_t, 512> byte_of{};  // every byte character is below U+0200

    Tables() {
        byte_of.fill(-1);
        auto printable = [](int b) {
            return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        };
        uint32_t next_extra = 256;
        for (int b = 0; b < 256; ++b) {
            char_of[b] = printable(b) ? static_cast<uint32_t>(b) : next_extra++;
            byte_of[char_of[b]] = static_cast<int16_t>(b);
        }
    }
};

const Tables& tables() {
    static const Tables t;
    return t;
}

}  // namespace

uint32_t char_of_byte(uint8_t b) {
    return tables().char_of[b];
}

std::optional<uint8_t> byte_of_char(uint32_t cp) {
    if (cp >= 512) return std::nullopt;
    const int16_t b = tables().byte_of[cp];
    if (b < 0) return std::nullopt;
    return static_cast<uint8_t>(b);
}

std::string encode(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char b : bytes) utf8::append(out, char_of_byte(b));
    return out;
}

std::optional<std::string> decode(std::string_view spelled) {
    if (utf8::first_invalid(spelled) != std::string_view::npos) return std::nullopt;
    std::string out;
    out.reserve(spelled.size());
    for (size_t i = 0; i < spelled.size();) {
        const auto b = byte_of_char(utf8::next(spelled, i));
        if (!b) return std::nullopt;
        out += static_cast<char>(*b);
    }
    return out;
}

}  // namespace tinygpt::byte_level
