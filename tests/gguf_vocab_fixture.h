// Shared by the tests of tokenizer.ggml.* metadata (test_gguf_vocab*.cpp): access to a metadata
// list by key, a small byte-level BPE built from words, the texts every round trip must encode
// alike, and the round-trip check itself.
#pragma once
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "gguf/gguf_vocab.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_files.h"
#include "util/error.h"

namespace tinygpt::gguf_vocab_test {

using OrderedJson = nlohmann::ordered_json;
using Metadata = std::vector<std::pair<std::string, io::GgufValue>>;

inline const io::GgufValue& value(const Metadata& md, const std::string& key) {
    for (const auto& [k, v] : md)
        if (k == key) return v;
    throw std::runtime_error("no key " + key);
}
inline bool has(const Metadata& md, const std::string& key) {
    for (const auto& kv : md)
        if (kv.first == key) return true;
    return false;
}
inline void set(Metadata& md, const std::string& key, io::GgufValue v) {
    for (auto& [k, old] : md)
        if (k == key) {
            old = std::move(v);
            return;
        }
    md.emplace_back(key, std::move(v));
}
inline void drop(Metadata& md, const std::string& key) {
    std::erase_if(md, [&](const auto& kv) { return kv.first == key; });
}
inline std::string str(const Metadata& md, const std::string& key) {
    return value(md, key).as_string(key);
}
inline std::vector<std::string> strings(const Metadata& md, const std::string& key) {
    return value(md, key).as_string_array(key);
}
inline std::vector<int64_t> ints(const Metadata& md, const std::string& key) {
    return value(md, key).as_int_array(key);
}

// The byte characters of GPT-2's byte-to-unicode map, in byte order.
inline std::string byte_char(int b) {
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

inline OrderedJson byte_level(bool add_prefix_space, bool use_regex) {
    return {{"type", "ByteLevel"},
            {"add_prefix_space", add_prefix_space},
            {"trim_offsets", true},
            {"use_regex", use_regex}};
}
inline OrderedJson split(const std::string& regex, const std::string& behavior = "Isolated") {
    return {{"type", "Split"},
            {"pattern", {{"Regex", regex}}},
            {"behavior", behavior},
            {"invert", false}};
}
inline OrderedJson added(int id, const std::string& content, bool special, bool lstrip = false) {
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

inline std::vector<std::string> test_texts() {
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

// A 400-token BPE trained on the test texts, with two special tokens.
inline Tokenizer trained_bpe() {
    std::string corpus;
    for (const std::string& t : test_texts()) corpus += t + "\n";
    for (int i = 0; i < 20; ++i) corpus += "the quick brown fox jumps over the lazy dog 12345\n";
    BpeTrainOptions options;
    options.vocab_size = 400;
    options.special_tokens = {"<|endoftext|>", "<|pad|>"};
    return train_bpe(corpus, options);
}

// The behaviour a GGUF round trip must keep: ids of every text, bytes of every id, specials.
// `skip`: texts where a caveat accepted on export makes them differ.
inline void expect_same_behaviour(const Tokenizer& a, const Tokenizer& b,
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
inline std::string error_of(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

inline Tokenizer import(const Metadata& md) {
    return gguf::tokenizer_from_gguf_metadata(md, "model.gguf");
}

}  // namespace tinygpt::gguf_vocab_test
