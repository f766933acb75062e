// What a Tokenizer holds; shared (immutable) by copies. Private to src/tokenizer/.
#pragma once
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace tinygpt {

// Receives pre-tokenized pieces (PieceSink::piece) and added tokens, in text order.
class EncodeSink : public PieceSink {
  public:
    virtual void token(int id) = 0;
};

// An HF ByteLevel block (pre-tokenizer, post-processor or decoder) as tokenizer.json spells it.
nlohmann::ordered_json byte_level_json(bool add_prefix_space, bool trim_offsets, bool use_regex);

struct TokenizerImpl {
    bool bytes_kind = false;

    // Per id (size = vocab_size()): raw bytes (vocab tokens: their byte-level spelling decoded;
    // added tokens: their content), and whether the id exists at all (ids may have gaps).
    std::vector<std::string> token_bytes;
    std::vector<uint8_t> present;
    std::vector<uint8_t> added;     // id is an added token (decoded as its content)
    std::vector<uint8_t> in_vocab;  // id is in the model's vocab

    // The model vocabulary as spelled in tokenizer.json, by id (empty for ids not in it).
    std::vector<std::string> vocab_spelling;
    StringIdTable id_of_spelling;
    std::vector<std::pair<int, int>> merge_pairs;  // (left id, right id), rank order

    BpeModel bpe;
    bool nfc = false;
    PreTokenizer pre_tokenizer;
    std::vector<AddedToken> added_tokens;  // in tokenizer.json order
    std::unordered_map<std::string, int, StringHash, std::equal_to<>> id_of_added;
    AddedTokenMatcher raw_matcher;         // tokens with normalized = false
    AddedTokenMatcher normalized_matcher;  // normalized = true: matched after NFC

    std::optional<int> bos, eos;
    bool add_bos = false;

    // The configuration blocks that are written back as they were read (validated).
    nlohmann::ordered_json normalizer_json, pre_tokenizer_json, post_processor_json, decoder_json;
    bool continuing_prefix_empty_string = false;  // keep "" vs null when writing back

    // Everything before BPE: added tokens, normalisation, pre-tokenization. The sink gets the
    // pieces and the added tokens' ids in order. Normalised text lives in `keep` when given (the
    // pieces then stay valid after the call), else in a buffer that dies with each stretch.
    void pre_tokenize(std::string_view text, EncodeSink& sink,
                      std::deque<std::string>* keep = nullptr) const;
    void pre_tokenize_stretch(std::string_view text, EncodeSink& sink,
                              std::deque<std::string>* keep) const;

    using WordCache =
        std::unordered_map<std::string, std::vector<int>, StringHash, std::equal_to<>>;
    // Appends the ids of one pre-token to `out`, through `cache` (one per thread).
    void encode_piece(std::string_view piece, std::vector<int>& out, WordCache& cache) const;

    // Canonical serialisation, made once on first use.
    const std::string& canonical_json() const;
    mutable std::once_flag canonical_once;
    mutable std::string canonical;
};

Tokenizer make_tokenizer(std::shared_ptr<const TokenizerImpl> impl);

// Checks that `text` is valid UTF-8 for a BPE tokenizer; the Error names the byte offset.
void require_valid_utf8(std::string_view text);

// Serialisation (hf_json_save.cpp).
std::string write_hf_json(const TokenizerImpl& impl);
std::string write_hf_config_json(const TokenizerImpl& impl);

}  // namespace tinygpt
