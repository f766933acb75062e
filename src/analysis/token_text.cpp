#include "analysis/token_text.h"

#include <cstdio>

#include "tokenizer/utf8.h"

namespace tinygpt {

const char* byte_class_name(ByteClass c) {
    switch (c) {
        case ByteClass::Upper:
            return "upper";
        case ByteClass::Lower:
            return "lower";
        case ByteClass::Digit:
            return "digit";
        case ByteClass::Space:
            return "space";
        case ByteClass::Newline:
            return "newline";
        case ByteClass::Punct:
            return "punct";
        case ByteClass::NonAscii:
            return "non-ascii";
        case ByteClass::Other:
            return "other";
    }
    return "other";
}

namespace {

bool is_whitespace(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

ByteClass classify_byte(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return ByteClass::Upper;
    if (c >= 'a' && c <= 'z') return ByteClass::Lower;
    if (c >= '0' && c <= '9') return ByteClass::Digit;
    if (c >= 0x80) return ByteClass::NonAscii;
    if (c > 0x20 && c < 0x7F) return ByteClass::Punct;  // the printable ASCII left
    return ByteClass::Other;
}

}  // namespace

ByteClass classify_token(std::string_view bytes) {
    bool newline = false;
    for (const char ch : bytes) {
        const auto c = static_cast<unsigned char>(ch);
        if (!is_whitespace(c)) return classify_byte(c);
        newline = newline || c == '\n' || c == '\r';
    }
    if (bytes.empty()) return ByteClass::Other;
    return newline ? ByteClass::Newline : ByteClass::Space;
}

std::string printable_piece(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size());
    for (size_t i = 0; i < bytes.size();) {
        const auto c = static_cast<unsigned char>(bytes[i]);
        const size_t len = utf8::valid_sequence_length(bytes, i);
        if (len > 1 || (len == 1 && c >= 0x20 && c != 0x7F && c != '\\')) {
            out.append(bytes.substr(i, len));
            i += len;
            continue;
        }
        i += 1;
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\r':
                out += "\\r";
                break;
            default: {
                char hex[8];
                std::snprintf(hex, sizeof hex, "\\x%02X", c);
                out += hex;
            }
        }
    }
    return out;
}

std::string quoted_piece(std::string_view bytes) {
    std::string out = "'";
    out += printable_piece(bytes);
    out += '\'';
    return out;
}

}  // namespace tinygpt
