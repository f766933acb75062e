// tokenizer.json read in one pass (nlohmann's SAX interface): a DOM of everything except the two
// large tables, model.vocab (150k entries in Qwen3's file) and model.merges (150k pairs), which go
// straight into flat arrays. As DOM nodes they were most of a large tokenizer's load time: a
// std::map node per vocabulary entry, a heap string per merge token, then a second pass over
// both, and all of it freed again.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace tinygpt {

struct TokenizerJson {
    // The document, with model.vocab and model.merges left empty when they were read into the
    // arrays below (an object and an array as the file has them: the loader's checks of their
    // presence and type see the file's own).
    nlohmann::json root;

    struct VocabEntry {
        std::string spelling;
        nlohmann::json id;  // as written: the loader checks that it is an id
    };
    std::vector<VocabEntry> vocab;  // in file order; a spelling named twice is there twice

    // A merge "a b" or ["a", "b"] as the spelling of its result, "ab", and where it splits.
    struct Merge {
        std::string merged;
        uint32_t left_length;
        std::string_view left() const { return std::string_view(merged).substr(0, left_length); }
        std::string_view right() const { return std::string_view(merged).substr(left_length); }
        // A merge written "a b" (tokenizer.json, GPT-2's vocab.bpe); nullopt unless the text has
        // exactly one space.
        static std::optional<Merge> from_text(std::string_view text);
    };
    std::vector<Merge> merges;  // up to the first malformed one
    // What is wrong with the first merge that is neither form; its index is merges.size().
    std::optional<std::string> malformed_merge;
};

// Both throw nlohmann::json::exception (what json::parse throws) for text that is not JSON.
TokenizerJson read_tokenizer_json(const std::string& text);
// GPT-2's encoder.json, an object of token: id, read into `vocab` (`root` is left an empty
// object when the text is one, and is the value itself otherwise).
TokenizerJson read_vocab_json(const std::string& text);

// The tokenizer a read tokenizer.json describes (Tokenizer::from_hf_json is read_tokenizer_json
// and this), with tokenizer_config.json's text (may be empty); errors name `source`.
Tokenizer tokenizer_from_json(const TokenizerJson& doc, const std::string& tokenizer_config_json,
                              const std::string& source);

}  // namespace tinygpt
