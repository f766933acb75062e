// Canonical tokenizer.json / tokenizer_config.json text. The vocabulary and merges are written by
// hand (one per line, in id / rank order) because a JSON library's ordered object is quadratic at
// 150k entries; the configuration blocks are written as they were loaded.
#include <nlohmann/json.hpp>
#include <string>

#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer_impl.h"

namespace tinygpt {

namespace {

using ordered_json = nlohmann::ordered_json;

std::string quoted(const std::string& s) {
    return ordered_json(s).dump(-1, ' ', false);
}

}  // namespace

ordered_json byte_level_json(bool add_prefix_space, bool trim_offsets, bool use_regex) {
    ordered_json j;
    j["type"] = "ByteLevel";
    j["add_prefix_space"] = add_prefix_space;
    j["trim_offsets"] = trim_offsets;
    j["use_regex"] = use_regex;
    return j;
}

std::string write_hf_json(const TokenizerImpl& t) {
    std::string out;
    out.reserve(64 + t.token_bytes.size() * 40);
    out += "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n";
    out += "  \"added_tokens\": [";
    for (size_t i = 0; i < t.added_tokens.size(); ++i) {
        const AddedToken& a = t.added_tokens[i];
        ordered_json j;
        j["id"] = a.id;
        j["content"] = a.content;
        j["single_word"] = a.single_word;
        j["lstrip"] = a.lstrip;
        j["rstrip"] = a.rstrip;
        j["normalized"] = a.normalized;
        j["special"] = a.special;
        out += i ? ",\n    " : "\n    ";
        out += j.dump(-1, ' ', false);
    }
    out += t.added_tokens.empty() ? "],\n" : "\n  ],\n";
    const ordered_json pre =
        t.bytes_kind ? byte_level_json(false, true, false) : t.pre_tokenizer_json;
    const ordered_json decoder =
        t.bytes_kind ? byte_level_json(false, true, false) : t.decoder_json;
    out += "  \"normalizer\": " + t.normalizer_json.dump(-1, ' ', false) + ",\n";
    out += "  \"pre_tokenizer\": " + pre.dump(-1, ' ', false) + ",\n";
    out += "  \"post_processor\": " + t.post_processor_json.dump(-1, ' ', false) + ",\n";
    out += "  \"decoder\": " + decoder.dump(-1, ' ', false) + ",\n";
    out +=
        "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": "
        "null,\n";
    const char* affix = t.continuing_prefix_empty_string ? "\"\"" : "null";
    out += std::string("    \"continuing_subword_prefix\": ") + affix + ",\n";
    out += std::string("    \"end_of_word_suffix\": ") + affix + ",\n";
    out += "    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n";
    out +=
        std::string("    \"ignore_merges\": ") + (t.bpe.ignore_merges ? "true" : "false") + ",\n";
    out += "    \"vocab\": {";
    bool first = true;
    for (size_t id = 0; id < t.vocab_spelling.size(); ++id) {
        // Ids that exist only as added tokens are not part of the model's vocab.
        if (!t.in_vocab[id]) continue;
        out += first ? "\n      " : ",\n      ";
        first = false;
        out += quoted(t.vocab_spelling[id]) + ": " + std::to_string(id);
    }
    out += "\n    },\n    \"merges\": [";
    for (size_t i = 0; i < t.merge_pairs.size(); ++i) {
        out += i ? ",\n      [" : "\n      [";
        out += quoted(t.vocab_spelling[t.merge_pairs[i].first]) + ", " +
               quoted(t.vocab_spelling[t.merge_pairs[i].second]) + "]";
    }
    out += t.merge_pairs.empty() ? "]\n  }\n}\n" : "\n    ]\n  }\n}\n";
    return out;
}

std::string write_hf_config_json(const TokenizerImpl& t) {
    ordered_json j;
    j["add_bos_token"] = t.add_bos;
    j["add_eos_token"] = false;
    auto content = [&](const std::optional<int>& id) -> ordered_json {
        if (!id) return nullptr;
        return t.added[*id] ? t.token_bytes[*id] : t.vocab_spelling[*id];
    };
    j["bos_token"] = content(t.bos);
    j["eos_token"] = content(t.eos);
    // Our decode is byte-exact; transformers' space clean-up (" ." -> ".") would not be.
    j["clean_up_tokenization_spaces"] = false;
    j["tokenizer_class"] = "PreTrainedTokenizerFast";
    return j.dump(2, ' ', false) + "\n";
}

}  // namespace tinygpt
