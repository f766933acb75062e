// The pre-tokenizers llama.cpp knows by a tokenizer.ggml.pre name, grouped into families that
// run the same regexes, with the tokenizer.json blocks of the Hugging Face tokenizers they come
// from; llama.cpp's token types; and the texts it makes special whatever their type. Shared by
// the export (gguf_vocab_export.cpp) and the import (gguf_vocab_import.cpp) of a tokenizer;
// what llama.cpp does with these keys is in its src/llama-vocab.cpp and src/unicode.cpp.
#pragma once
#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_set>
#include <vector>

namespace tinygpt::gguf {

using ordered_json = nlohmann::ordered_json;

// llama.cpp's token types (LLAMA_TOKEN_TYPE_*), the values of tokenizer.ggml.token_type.
enum TokenType : int32_t {
    kUndefined = 0,
    kNormal = 1,
    kUnknown = 2,
    kControl = 3,
    kUserDefined = 4,
    kUnused = 5,
    kByte = 6,
};
const char* token_type_name(int64_t type);

// The regexes of the tokenizer.json pre-tokenizer steps that have none of their own: ByteLevel's
// (GPT-2's) and Digits' (each digit alone, or runs of digits).
const std::string& byte_level_regex();
const std::string& digits_regex(bool individual_digits);
// A regex as Hugging Face's tokenizer.json files spell it: llama.cpp's own spellings (where it
// rewrote "(?i:...)" for std::regex, or dropped GPT-2's redundant trailing "|\s+") become HF's.
std::string canonical_regex(const std::string& regex);

// A family of tokenizer.ggml.pre names that run the same regexes in llama.cpp, and the
// tokenizer.json blocks of the Hugging Face tokenizer they come from (so that a re-imported
// tokenizer serialises like the original where GGUF keeps enough to tell).
struct PreFamily {
    const char* label;                 // for messages
    std::vector<std::string> regexes;  // as the pre-tokenizer's steps, canonical spellings
    bool ignore_merges = false;        // llama.cpp sets ignore_merges for these names
    bool add_bos_default = false;      // add_bos when tokenizer.ggml.add_bos_token is absent
    bool bos_default_none = false;     // llama.cpp clears the default BOS id (11) for these names
    std::vector<std::string> names;    // every name llama.cpp maps to this family
    std::vector<std::string> clean_spaces_names;  // those whose llama_detokenize cleans up spaces
    std::string export_name;                      // the name tinygpt writes ("" = import only)
    // tokenizer.json blocks for import.
    ordered_json pre, post, decoder, normalizer;
    bool empty_string_affixes = false;  // continuing_subword_prefix / end_of_word_suffix ""

    bool has_name(const std::string& name) const {
        return std::find(names.begin(), names.end(), name) != names.end();
    }
    bool cleans_spaces(const std::string& name) const {
        return std::find(clean_spaces_names.begin(), clean_spaces_names.end(), name) !=
               clean_spaces_names.end();
    }
};

// Every family; each name llama.cpp knows belongs to one.
const std::vector<PreFamily>& families();
// "GPT-2's ByteLevel regex ("trillion"), ..." for messages: the families tinygpt exports.
std::string export_names_list();

// Texts that llama.cpp's loader turns into CONTROL tokens (end-of-turn / FIM / end-of-generation
// detection by text): a NORMAL vocabulary token spelled like this would be matched in the text
// as a special token by llama.cpp, never by us.
const std::unordered_set<std::string>& forced_control_texts();

}  // namespace tinygpt::gguf
