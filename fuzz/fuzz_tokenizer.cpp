// tokenizer.json (src/tokenizer/): the input is split at kPartSeparator into tokenizer.json,
// tokenizer_config.json and a text. A tokenizer that loads encodes the text (or a fixed one),
// decodes the ids back, streams them through StreamingDecoder, decodes ids made from the text's
// bytes (most are out of range: a clean Error), and survives its own canonical serialisation.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace {

void exercise(const tinygpt::Tokenizer& tokenizer, std::string_view text) {
    const std::vector<int> ids = tokenizer.encode(text);
    tokenizer.decode(ids);
    tinygpt::StreamingDecoder stream(tokenizer);
    for (int id : ids) stream.push(id);
    stream.finish();
    std::vector<int> arbitrary_ids;
    for (size_t i = 0; i + 1 < text.size() && arbitrary_ids.size() < 16; i += 2)
        arbitrary_ids.push_back(static_cast<uint8_t>(text[i]) << 8 |
                                static_cast<uint8_t>(text[i + 1]));
    try {
        tokenizer.decode(arbitrary_ids);
    } catch (const tinygpt::Error&) {
        // An id outside the vocabulary: refused, as it should be.
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::vector<std::string_view> parts = tinygpt::fuzz::split_parts(data, size, 3);
    const std::string tokenizer_json(parts[0]);
    const std::string config_json(parts.size() >= 2 ? parts[1] : std::string_view());
    // Texts are kept short: encoding cost is not what is being tested.
    const std::string_view text =
        parts.size() >= 3 ? parts[2].substr(0, 256) : std::string_view("ROMEO: Hello, world! 123");
    tinygpt::Tokenizer tokenizer = tinygpt::Tokenizer::bytes();
    try {
        tokenizer = tinygpt::Tokenizer::from_hf_json(tokenizer_json, config_json, "fuzz");
    } catch (const tinygpt::Error&) {
        return 0;
    }
    try {
        exercise(tokenizer, text);
    } catch (const tinygpt::Error&) {
        // Invalid UTF-8 text is refused by BPE tokenizers.
    }
    // What a save stores must load again: a tokenizer we accept but cannot write back would make
    // a model file that its own tool refuses.
    const tinygpt::Tokenizer reloaded = tinygpt::Tokenizer::from_hf_json(
        tokenizer.to_hf_json(), tokenizer.to_hf_config_json(), "fuzz (canonical)");
    if (reloaded.fingerprint() != tokenizer.fingerprint()) std::abort();
    return 0;
}
