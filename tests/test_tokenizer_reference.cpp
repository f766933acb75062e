// Exactness against the real thing: ids of the real Qwen3, Llama 3 and GPT-2 tokenizers on a
// varied text set, compared with fixtures made by the reference encoder (transformers.js's
// tokenizers, tools/tokenizer-reference/reference_ids.mjs); byte-exact round trips; and decode of
// random id sequences as the reference decodes them.
#include <gtest/gtest.h>

#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "tokenizer_files.h"

namespace tinygpt::test {
namespace {

// What a JavaScript string makes of bytes (TextDecoder): each maximal invalid subpart -> U+FFFD.
std::string lossy_utf8(std::string_view bytes) {
    std::string out;
    for (size_t i = 0; i < bytes.size();) {
        const size_t len = utf8::valid_sequence_length(bytes, i);
        if (len > 0) {
            out.append(bytes.substr(i, len));
            i += len;
            continue;
        }
        out += "\xEF\xBF\xBD";
        const auto lead = static_cast<unsigned char>(bytes[i]);
        size_t need = lead >= 0xC2 && lead <= 0xDF   ? 2
                      : lead >= 0xE0 && lead <= 0xEF ? 3
                      : lead >= 0xF0 && lead <= 0xF4 ? 4
                                                     : 1;
        size_t j = i + 1;
        for (size_t k = 1; k < need && j < bytes.size(); ++k, ++j) {
            const auto c = static_cast<unsigned char>(bytes[j]);
            unsigned lo = 0x80, hi = 0xBF;
            if (k == 1 && lead == 0xE0) lo = 0xA0;
            if (k == 1 && lead == 0xED) hi = 0x9F;
            if (k == 1 && lead == 0xF0) lo = 0x90;
            if (k == 1 && lead == 0xF4) hi = 0x8F;
            if (c < lo || c > hi) break;
        }
        i = j;
    }
    return out;
}

class RealTokenizer : public ::testing::TestWithParam<std::string> {};

TEST_P(RealTokenizer, EncodesLikeTheReference) {
    const Tokenizer& tok = real_tokenizer(GetParam());
    const auto fixture = read_json_file(std::string(TINYGPT_TEST_DATA) + "/tokenizer/" +
                                        GetParam() + ".reference.json");
    const auto texts = tokenizer_texts();
    ASSERT_EQ(fixture["encode"].size(), texts.size())
        << "regenerate the fixtures (reference_ids.mjs --write)";
    for (const auto& [name, text_json] : texts.items()) {
        const std::string text = text_json.get<std::string>();
        const auto expected = fixture["encode"][name].get<std::vector<int>>();
        const std::vector<int> ids = tok.encode(text);
        EXPECT_EQ(ids, expected) << GetParam() << ", text \"" << name << "\"";
        // Qwen3 normalises to NFC: its round trip gives NFC(x), as HF's does.
        const std::string round_trip = GetParam() == "qwen3" ? utf8::nfc(text) : text;
        EXPECT_EQ(tok.decode(ids), round_trip)
            << GetParam() << ": decode(encode(x)) != x for \"" << name << "\"";
        EXPECT_EQ(tok.encode_parallel(text, 2), ids) << name;
    }
}

TEST_P(RealTokenizer, DecodesRandomIdsLikeTheReference) {
    const Tokenizer& tok = real_tokenizer(GetParam());
    const auto fixture = read_json_file(std::string(TINYGPT_TEST_DATA) + "/tokenizer/" +
                                        GetParam() + ".reference.json");
    ASSERT_GE(fixture["decode"].size(), 100u);
    for (const auto& sample : fixture["decode"]) {
        const auto ids = sample["ids"].get<std::vector<int>>();
        EXPECT_EQ(lossy_utf8(tok.decode(ids)), sample["text"].get<std::string>())
            << sample["ids"].dump();
    }
}

TEST_P(RealTokenizer, SerialisationReloadsIdentically) {
    const Tokenizer& tok = real_tokenizer(GetParam());
    const Tokenizer again =
        Tokenizer::from_hf_json(tok.to_hf_json(), tok.to_hf_config_json(), "reloaded");
    EXPECT_EQ(again.fingerprint(), tok.fingerprint());
    EXPECT_EQ(again.vocab_size(), tok.vocab_size());
    EXPECT_EQ(again.bos_id(), tok.bos_id());
    EXPECT_EQ(again.eos_id(), tok.eos_id());
    const auto texts = tokenizer_texts();
    for (const auto& [name, text] : texts.items())
        EXPECT_EQ(again.encode(text.get<std::string>()), tok.encode(text.get<std::string>()))
            << name;
}

TEST_P(RealTokenizer, ParallelEncodeOfALargeTextMatchesSerial) {
    const Tokenizer& tok = real_tokenizer(GetParam());
    std::string big;
    const auto texts = tokenizer_texts();
    for (int i = 0; big.size() < (600u << 10); ++i)
        for (const auto& [name, text] : texts.items())
            big += text.get<std::string>() + (i % 3 ? "\n" : " ");
    size_t last_done = 0;
    const auto parallel = tok.encode_parallel(big, 2, [&](size_t done, size_t total) {
        EXPECT_LE(done, total);
        last_done = done;
    });
    EXPECT_EQ(parallel, tok.encode(big));
    EXPECT_EQ(last_done, big.size());
}

// Named by tokenizer (…/qwen3, not …/0), so a filter can pick them by name.
INSTANTIATE_TEST_SUITE_P(Tokenizer, RealTokenizer, ::testing::Values("qwen3", "llama3", "gpt2"),
                         [](const ::testing::TestParamInfo<std::string>& named) {
                             return named.param;
                         });

TEST(RealTokenizers, KnownIdsAndSpecials) {
    const Tokenizer& qwen = real_tokenizer("qwen3");
    EXPECT_EQ(qwen.encode("Hello world"), (std::vector<int>{9707, 1879}));
    EXPECT_EQ(qwen.token_id("<|im_start|>"), 151644);
    EXPECT_EQ(qwen.eos_id(), 151645);  // tokenizer_config eos_token <|im_end|>
    EXPECT_FALSE(qwen.bos_id().has_value());
    const Tokenizer& gpt2 = real_tokenizer("gpt2");
    EXPECT_EQ(gpt2.encode("Hello world"), (std::vector<int>{15496, 995}));
    EXPECT_EQ(gpt2.eos_id(), 50256);
    EXPECT_EQ(gpt2.vocab_size(), 50257);
    const Tokenizer& llama = real_tokenizer("llama3");
    EXPECT_EQ(llama.bos_id(), 128000);
    EXPECT_EQ(llama.vocab_size(), 128256);
}

}  // namespace
}  // namespace tinygpt::test
