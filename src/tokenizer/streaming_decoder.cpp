// StreamingDecoder: token bytes are held back until they form whole UTF-8 characters, so a
// terminal never shows half a character; bytes that can never become valid are passed through.
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace tinygpt {

namespace {

// Could `tail` (fewer bytes than its lead byte announces) still become a valid sequence?
bool may_complete(std::string_view tail) {
    const auto lead = static_cast<unsigned char>(tail[0]);
    size_t need = 0;
    if (lead >= 0xC2 && lead <= 0xDF)
        need = 2;
    else if (lead >= 0xE0 && lead <= 0xEF)
        need = 3;
    else if (lead >= 0xF0 && lead <= 0xF4)
        need = 4;
    if (need == 0 || tail.size() >= need) return false;
    // Pad with the smallest continuation bytes that the lead allows and check validity.
    std::string probe(tail);
    while (probe.size() < need) {
        unsigned char pad = 0x80;
        if (probe.size() == 1 && lead == 0xE0) pad = 0xA0;
        if (probe.size() == 1 && lead == 0xF0) pad = 0x90;
        probe += static_cast<char>(pad);
    }
    return utf8::valid_sequence_length(probe, 0) == need;
}

}  // namespace

StreamingDecoder::StreamingDecoder(const Tokenizer& tok) : tok_(tok) {}

std::string StreamingDecoder::push(int id) {
    pending_ += tok_.token_bytes(id);
    // Emit everything up to the last position that starts an incomplete but still-valid
    // character; invalid bytes go out as they are.
    size_t i = 0, emit_end = 0;
    while (i < pending_.size()) {
        const size_t len = utf8::valid_sequence_length(pending_, i);
        if (len > 0) {
            i += len;
            emit_end = i;
            continue;
        }
        if (may_complete(std::string_view(pending_).substr(i))) break;
        ++i;
        emit_end = i;
    }
    std::string out = pending_.substr(0, emit_end);
    pending_.erase(0, emit_end);
    return out;
}

std::string StreamingDecoder::finish() {
    std::string out;
    out.swap(pending_);
    return out;
}

}  // namespace tinygpt
