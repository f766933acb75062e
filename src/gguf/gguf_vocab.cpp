// Tokenizer <-> tokenizer.ggml.* metadata (src/gguf/gguf_vocab.h). What llama.cpp does with these
// keys is in its src/llama-vocab.cpp (llama_vocab::impl::load, llm_tokenizer_bpe, token_to_piece,
// detokenize) and src/unicode.cpp (the regexes it implements by hand); the mapping below follows
// it, and docs/GGUF.md ("The tokenizer") explains every refusal.
#include "gguf/gguf_vocab.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "tokenizer/byte_level.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace tinygpt::gguf {

namespace {

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

const char* token_type_name(int64_t type) {
    switch (type) {
        case kUndefined:
            return "UNDEFINED";
        case kNormal:
            return "NORMAL";
        case kUnknown:
            return "UNKNOWN";
        case kControl:
            return "CONTROL";
        case kUserDefined:
            return "USER_DEFINED";
        case kUnused:
            return "UNUSED";
        case kByte:
            return "BYTE";
        default:
            return "not a llama.cpp token type";
    }
}

// ---- The pre-tokenizers both sides know ------------------------------------------------------

// Regexes as Hugging Face's tokenizer.json files spell them. llama.cpp's own spellings (where it
// rewrote "(?i:...)" for std::regex, or dropped GPT-2's redundant trailing "|\s+") are mapped to
// these before comparing.
const std::string kGpt2 = kGpt2Pattern;
const std::string kGpt2Llama =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
const std::string kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const std::string kLlama3Llama =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const std::string kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const std::string kQwen2Llama =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const std::string kQwen35 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const std::string kQwen35Llama =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const std::string kDigit = R"(\p{N})";
const std::string kDigits = R"(\p{N}+)";
const std::string kDigits3 = R"(\p{N}{1,3})";
// DeepSeek-V3's three splits (the CR and LF in the last one are real characters, as in its
// tokenizer.json and in llama.cpp).
const std::string kDeepSeek3Cjk = "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+";
const std::string kDeepSeek3Main =
    "[!\"#$%&'()*+,\\-./"
    ":;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
    " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";
// llama.cpp's "default" (tokenizer.ggml.pre missing or "default").
const std::string kDefaultPunct = R"([\p{P}\$\+<=>\^~\|]+)";
const std::string kThreeAsciiDigits = "[0-9][0-9][0-9]";

std::string canonical_regex(const std::string& r) {
    if (r == kGpt2Llama) return kGpt2;
    if (r == kLlama3Llama) return kLlama3;
    if (r == kQwen2Llama) return kQwen2;
    if (r == kQwen35Llama) return kQwen35;
    return r;
}

ordered_json split_json(const std::string& regex) {
    ordered_json j;
    j["type"] = "Split";
    j["pattern"]["Regex"] = regex;
    j["behavior"] = "Isolated";
    j["invert"] = false;
    return j;
}

ordered_json sequence_json(std::vector<ordered_json> steps) {
    ordered_json j;
    j["type"] = "Sequence";
    j["pretokenizers"] = std::move(steps);
    return j;
}

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
};

const std::vector<PreFamily>& families() {
    static const std::vector<PreFamily> all = [] {
        std::vector<PreFamily> f;
        {
            PreFamily p;
            p.label = "GPT-2's ByteLevel regex";
            p.regexes = {kGpt2};
            p.names = {"gpt-2",      "phi-2",           "mpt",      "olmo",       "jais",
                       "trillion",   "granite-docling", "gigachat", "a.x-4.0",    "mellum",
                       "exaone4",    "jina-es",         "jina-de",  "jina-v1-en", "roberta-bpe",
                       "modern-bert"};
            p.clean_spaces_names = {"gpt-2",       "phi-2",      "mpt",     "olmo",
                                    "jais",        "gigachat",   "a.x-4.0", "mellum",
                                    "exaone4",     "jina-es",    "jina-de", "jina-v1-en",
                                    "roberta-bpe", "modern-bert"};
            // GPT-2's regex without the space clean-up on detokenize.
            p.export_name = "trillion";
            p.pre = byte_level_json(false, true, true);
            p.post = nullptr;
            p.decoder = byte_level_json(false, true, true);
            p.normalizer = nullptr;
            f.push_back(std::move(p));
        }
        {
            PreFamily p;
            p.label = "single digits, then GPT-2's ByteLevel regex";
            p.regexes = {kDigit, kGpt2};
            p.names = {"starcoder", "refact", "command-r",  "smollm",
                       "codeshell", "exaone", "minerva-7b", "mellum2"};
            p.clean_spaces_names = {"starcoder", "refact",     "codeshell",
                                    "exaone",    "minerva-7b", "mellum2"};
            p.export_name = "smollm";
            ordered_json digits;
            digits["type"] = "Digits";
            digits["individual_digits"] = true;
            p.pre = sequence_json({digits, byte_level_json(false, true, true)});
            p.post = nullptr;
            p.decoder = byte_level_json(false, true, true);
            p.normalizer = nullptr;
            f.push_back(std::move(p));
        }
        for (const bool ignore : {true, false}) {
            PreFamily p;
            p.label = ignore ? "Llama 3's regex with ignore_merges" : "Llama 3's regex";
            p.regexes = {kLlama3};
            p.ignore_merges = ignore;
            if (ignore) {
                p.add_bos_default = true;
                p.names = {"llama3",  "llama-v3", "llama-bpe", "falcon3",     "falcon-h1",
                           "pixtral", "midm-2.0", "lfm2",      "jina-v5-nano"};
                p.export_name = "llama-bpe";
            } else {
                p.names = {"dbrx", "smaug-bpe", "glm4", "chatglm-bpe"};
                p.export_name = "smaug-bpe";
            }
            p.clean_spaces_names = p.names;  // every one of them
            p.pre = sequence_json({split_json(kLlama3), byte_level_json(false, true, false)});
            p.post = byte_level_json(true, false, true);
            p.decoder = byte_level_json(true, true, true);
            p.normalizer = nullptr;
            f.push_back(std::move(p));
        }
        {
            PreFamily p;
            p.label = "Qwen2's regex";
            p.regexes = {kQwen2};
            p.names = {"qwen2",   "deepseek-r1-qwen", "kormo",  "f2llmv2", "stablelm2",
                       "hunyuan", "solar-open",       "grok-2", "megrez"};
            p.clean_spaces_names = {"stablelm2", "megrez"};
            p.export_name = "qwen2";
            p.pre = sequence_json({split_json(kQwen2), byte_level_json(false, false, false)});
            p.post = byte_level_json(false, false, false);
            p.decoder = byte_level_json(false, false, false);
            p.normalizer = nullptr;  // Qwen's NFC: llama.cpp does not apply it
            p.empty_string_affixes = true;
            f.push_back(std::move(p));
        }
        {
            PreFamily p;
            p.label = "Qwen3.5's regex";
            p.regexes = {kQwen35};
            p.names = {"qwen35"};
            p.export_name = "qwen35";
            p.pre = sequence_json({split_json(kQwen35), byte_level_json(false, false, false)});
            p.post = byte_level_json(false, false, false);
            p.decoder = byte_level_json(false, false, false);
            p.normalizer = nullptr;
            p.empty_string_affixes = true;
            f.push_back(std::move(p));
        }
        {
            PreFamily p;
            p.label = "DeepSeek-V3's regexes";
            p.regexes = {kDigits3, kDeepSeek3Cjk, kDeepSeek3Main};
            p.names = {"deepseek-v3", "hunyuan-dense", "joyai-llm"};
            p.export_name = "deepseek-v3";
            p.pre =
                sequence_json({split_json(kDigits3), split_json(kDeepSeek3Cjk),
                               split_json(kDeepSeek3Main), byte_level_json(false, true, false)});
            p.post = byte_level_json(true, false, true);
            p.decoder = byte_level_json(true, true, true);
            ordered_json n;
            n["type"] = "Sequence";
            n["normalizers"] = ordered_json::array();
            p.normalizer = n;
            f.push_back(std::move(p));
        }
        {
            PreFamily p;
            p.label = "llama.cpp's default regexes";
            p.regexes = {kDefaultPunct, kGpt2, kDigits, kThreeAsciiDigits};
            p.names = {"default", ""};
            p.clean_spaces_names = p.names;
            p.pre =
                sequence_json({split_json(kDefaultPunct), split_json(kGpt2), split_json(kDigits),
                               split_json(kThreeAsciiDigits), byte_level_json(false, true, false)});
            p.post = nullptr;
            p.decoder = byte_level_json(false, true, true);
            p.normalizer = nullptr;
            f.push_back(std::move(p));
        }
        for (auto& p : f)
            if (std::find(p.names.begin(), p.names.end(), "glm4") != p.names.end())
                p.bos_default_none = true;  // CHATGLM4: special_bos_id = LLAMA_TOKEN_NULL
        return f;
    }();
    return all;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

std::string export_names_list() {
    std::string s;
    for (const auto& f : families()) {
        if (f.export_name.empty()) continue;
        if (!s.empty()) s += ", ";
        s += std::string(f.label) + " (\"" + f.export_name + "\")";
    }
    return s;
}

// ---- Texts llama.cpp treats specially whatever their token type ------------------------------

// Texts that llama.cpp's loader turns into CONTROL tokens (end-of-turn / FIM / end-of-generation
// detection by text): a NORMAL vocabulary token spelled like this would be matched in the text
// as a special token by llama.cpp, never by us.
const std::unordered_set<std::string>& forced_control_texts() {
    static const std::unordered_set<std::string> s = {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
        "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>", "<|eom_id|>",
        "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>",
        "<|code_prefix|>", "<|prefix|>", "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
        "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>", "<|fim_middle|>",
        "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>",
        "<|middle|>", "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", "<|fim_repo|>",
        "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", "<|file_sep|>", "<|return|>",
        "<|call|>", "<|flush|>", "<|calls|>", "</s>", "[EOS]", "<eos>", "<turn|>",
        "<|tool_response>", "[e~[",
        // gpt-oss: forced to USER_DEFINED, which is matched in the text as well
        "<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"};
    return s;
}

// ---- Export ----------------------------------------------------------------------------------

struct VocabExportPlan {
    std::string pre;  // tokenizer.ggml.pre
    std::vector<std::string> caveats;
};

[[noreturn]] void refuse_vocab(const std::string& why) {
    throw Error("cannot write this tokenizer as GGUF tokenizer.ggml.* metadata for llama.cpp: " +
                why);
}

// The regexes a tokenizer.json pre_tokenizer applies, in order, as llama.cpp would need them
// (each one isolating its matches, pieces kept).
void collect_regexes(const ordered_json& p, std::vector<std::string>& out) {
    const std::string type = p.value("type", "");
    auto flag = [&](const char* key, bool fallback) {
        const auto it = p.find(key);
        return (it == p.end() || it->is_null()) ? fallback : it->get<bool>();
    };
    if (type == "Sequence") {
        for (const auto& step : p.at("pretokenizers")) collect_regexes(step, out);
    } else if (type == "ByteLevel") {
        if (flag("add_prefix_space", true))
            refuse_vocab(
                "its ByteLevel pre-tokenizer adds a prefix space (add_prefix_space = true); "
                "llama.cpp adds none for BPE vocabularies");
        if (flag("use_regex", true)) out.push_back(kGpt2);
    } else if (type == "Split") {
        const auto& pattern = p.at("pattern");
        if (!pattern.contains("Regex"))
            refuse_vocab("its Split pre-tokenizer splits on a literal string (" + pattern.dump() +
                         "); llama.cpp's pre-tokenizers are regexes");
        const std::string behavior = p.value("behavior", "");
        if (behavior != "Isolated" || flag("invert", false))
            refuse_vocab(
                "its Split pre-tokenizer has behavior \"" + behavior + "\"" +
                (flag("invert", false) ? " with invert = true" : "") +
                "; llama.cpp's regexes isolate their matches (\"Isolated\", invert = false)");
        out.push_back(canonical_regex(pattern.at("Regex").get<std::string>()));
    } else if (type == "Digits") {
        out.push_back(flag("individual_digits", false) ? kDigit : kDigits);
    } else {
        refuse_vocab("its pre-tokenizer step \"" + type + "\" has no llama.cpp equivalent");
    }
}

VocabExportPlan plan_export(const Tokenizer& tok) {
    VocabExportPlan plan;
    if (tok.is_bytes()) {
        // With no merges every piece becomes its bytes: any regex does; this name keeps spaces.
        plan.pre = "qwen2";
        return plan;
    }
    const TokenizerImpl& t = tok.impl();
    std::vector<std::string> regexes;
    collect_regexes(t.pre_tokenizer_json, regexes);
    const PreFamily* family = nullptr;
    for (const auto& f : families())
        if (!f.export_name.empty() && f.regexes == regexes &&
            f.ignore_merges == t.bpe.ignore_merges)
            family = &f;
    if (!family) {
        for (const auto& f : families())
            if (!f.export_name.empty() && f.regexes == regexes)
                refuse_vocab(std::string("its model has ignore_merges = ") +
                             (t.bpe.ignore_merges ? "true" : "false") +
                             " but llama.cpp's names for " + f.label +
                             " have ignore_merges = " + (f.ignore_merges ? "true" : "false"));
        refuse_vocab("its pre-tokenizer " + t.pre_tokenizer_json.dump() +
                     " is not one that a llama.cpp tokenizer.ggml.pre name runs; tinygpt exports " +
                     export_names_list());
    }
    plan.pre = family->export_name;
    if (contains(family->clean_spaces_names, plan.pre))
        plan.caveats.push_back(
            "llama.cpp has no tokenizer.ggml.pre name for " + std::string(family->label) +
            " that keeps spaces when detokenizing: with \"" + plan.pre +
            "\", llama_detokenize drops the space in \" .\", \" ,\", \" !\", \" ?\", \" 's\", "
            "\" 'm\", \" 're\", \" 've\" and around a lone \" ' \" (tokenizing, and token_to_piece "
            "as used when generating, are exact)");
    if (t.nfc)
        plan.caveats.push_back(
            "the tokenizer NFC-normalises text (normalizer NFC) and llama.cpp applies no "
            "normaliser to BPE vocabularies: text that is not in NFC (a decomposed \"e\" + "
            "U+0301, ...) gets other ids; text in NFC gets the same ids");
    // Texts llama.cpp makes special whatever their token type (matched in the text as one token).
    const bool tool_response = tok.token_id("<|tool_response>").has_value();
    std::vector<std::string> forced;
    for (const std::string& text : forced_control_texts()) {
        const auto it = t.id_of_spelling.find(text);
        if (it == t.id_of_spelling.end() || t.added[it->second]) continue;
        if (text == "</s>" && tool_response) continue;  // llama.cpp makes it normal again
        forced.push_back("\"" + text + "\" (id " + std::to_string(it->second) + ")");
    }
    std::sort(forced.begin(), forced.end());
    if (!forced.empty()) {
        std::string list;
        for (const std::string& f : forced) list += (list.empty() ? "" : ", ") + f;
        plan.caveats.push_back(
            "llama.cpp treats tokens spelled like end-of-generation or fill-in-the-middle markers "
            "as special whatever their type: the normal token" +
            std::string(forced.size() > 1 ? "s " : " ") + list +
            " would be matched in the text as one token (tinygpt and HF split such text like "
            "any other)");
    }
    if (const auto s_end = t.id_of_added.find("</s>");
        s_end != t.id_of_added.end() && tool_response)
        plan.caveats.push_back(
            "llama.cpp turns \"</s>\" into a normal token when \"<|tool_response>\" exists: text "
            "containing \"</s>\" would be split like any other");
    return plan;
}

// Added tokens: what GGUF cannot say (lstrip / rstrip) and matching orders that differ.
// llama.cpp matches added tokens longest first over the whole text; HF (and we) leftmost-longest,
// raw tokens before normalised ones when there is a normaliser. Both agree when no two tokens
// overlap (a proper suffix of one is a proper prefix of another) and, with a normaliser, no raw
// token lies inside a normalised one.
void check_added_tokens(const TokenizerImpl& t) {
    std::vector<std::string> contents;
    for (const AddedToken& a : t.added_tokens) {
        if (a.lstrip || a.rstrip)
            refuse_vocab("added token " + std::to_string(a.id) + " \"" + a.content + "\" has " +
                         (a.lstrip ? "lstrip" : "rstrip") +
                         " = true; GGUF has no key for it (llama.cpp strips spaces around special "
                         "tokens only for a few models it knows by name)");
        contents.push_back(a.content);
    }
    std::sort(contents.begin(), contents.end());
    for (const std::string& a : contents)
        for (size_t k = 1; k < a.size(); ++k) {
            const std::string suffix = a.substr(k);
            auto it = std::lower_bound(contents.begin(), contents.end(), suffix);
            if (it != contents.end() && *it == suffix) ++it;
            if (it != contents.end() && it->compare(0, suffix.size(), suffix) == 0)
                refuse_vocab(
                    "added tokens \"" + a + "\" and \"" + *it +
                    "\" overlap; llama.cpp matches added tokens longest first, not leftmost "
                    "first, and would split some texts differently");
        }
    if (t.nfc)
        for (const AddedToken& a : t.added_tokens) {
            if (!a.normalized) continue;
            for (const AddedToken& b : t.added_tokens)
                if (!b.normalized && b.content != a.content &&
                    a.content.find(b.content) != std::string::npos)
                    refuse_vocab(
                        "added token \"" + b.content +
                        "\" (matched before normalisation) lies inside \"" + a.content +
                        "\" (matched after); llama.cpp matches both in one pass, longest first");
        }
    if (t.bpe.ignore_merges)
        for (const AddedToken& a : t.added_tokens) {
            if (a.id < static_cast<int>(t.in_vocab.size()) && t.in_vocab[a.id]) continue;
            const auto raw = byte_level::decode(a.content);
            if (raw && *raw != a.content)
                refuse_vocab(
                    "added token \"" + a.content +
                    "\" is spelled in byte-level characters; with ignore_merges, llama.cpp "
                    "would give its id to the text \"" +
                    *raw + "\"");
        }
}

std::string pad_name(int id, const std::unordered_set<std::string>& taken) {
    std::string name = "[PAD" + std::to_string(id) + "]";
    while (taken.count(name)) name.insert(name.size() - 1, "_");
    return name;
}

}  // namespace

std::vector<std::string> tokenizer_gguf_caveats(const Tokenizer& tok) {
    VocabExportPlan plan = plan_export(tok);
    if (!tok.is_bytes()) check_added_tokens(tok.impl());
    return plan.caveats;
}

std::vector<std::pair<std::string, io::GgufValue>> tokenizer_metadata(const Tokenizer& tok,
                                                                      int vocab,
                                                                      bool accept_caveats) {
    if (vocab < tok.vocab_size())
        throw Error("GGUF vocabulary of " + std::to_string(vocab) +
                    " tokens is smaller than the tokenizer's " + std::to_string(tok.vocab_size()));
    const VocabExportPlan plan = plan_export(tok);
    if (!tok.is_bytes()) check_added_tokens(tok.impl());
    if (!plan.caveats.empty() && !accept_caveats) {
        std::string why = "llama.cpp would not reproduce it exactly: ";
        for (size_t i = 0; i < plan.caveats.size(); ++i) why += (i ? "; " : "") + plan.caveats[i];
        refuse_vocab(why + " (accept_caveats exports it anyway)");
    }

    std::vector<std::string> tokens(vocab);
    std::vector<int32_t> types(vocab, kUnused);
    std::vector<std::string> merges;
    std::unordered_set<std::string> taken;
    taken.reserve(static_cast<size_t>(vocab) * 2);
    auto claim = [&](int id, std::string text, int32_t type) {
        if (!taken.insert(text).second) {
            const auto other = std::find(tokens.begin(), tokens.end(), text) - tokens.begin();
            refuse_vocab(
                "tokens " + std::to_string(other) + " and " + std::to_string(id) +
                " are both spelled \"" + text +
                "\" in tokenizer.ggml.tokens; llama.cpp needs every token text to be unique");
        }
        tokens[id] = std::move(text);
        types[id] = type;
    };

    if (tok.is_bytes()) {
        for (int b = 0; b < 256; ++b)
            claim(b, byte_level::encode(std::string(1, static_cast<char>(b))), kNormal);
    } else {
        const TokenizerImpl& t = tok.impl();
        std::unordered_map<int, const AddedToken*> added;
        for (const AddedToken& a : t.added_tokens) added[a.id] = &a;
        for (int id = 0; id < tok.vocab_size(); ++id) {
            if (!t.present[id]) continue;
            if (t.added[id]) {
                const AddedToken* a = added.at(id);
                if (t.in_vocab[id] && t.vocab_spelling[id] != a->content)
                    refuse_vocab("token " + std::to_string(id) +
                                 " is both the vocabulary token \"" + t.vocab_spelling[id] +
                                 "\" and the added token \"" + a->content +
                                 "\"; GGUF holds one text per id");
                claim(id, a->content, a->special ? kControl : kUserDefined);
            } else {
                if (!byte_level::decode(t.vocab_spelling[id]))
                    refuse_vocab("vocabulary token " + std::to_string(id) + " \"" +
                                 t.vocab_spelling[id] +
                                 "\" is not spelled in byte-level characters; llama.cpp would "
                                 "detokenize it as [UNK_BYTE_...]");
                claim(id, t.vocab_spelling[id], kNormal);
            }
        }
        // Ranks: HF (and tinygpt) keep the last of repeated merges, llama.cpp the first; only
        // the last one is written.
        std::unordered_map<uint64_t, size_t> last;
        auto key = [](const std::pair<int, int>& m) {
            return (static_cast<uint64_t>(static_cast<uint32_t>(m.first)) << 32) |
                   static_cast<uint32_t>(m.second);
        };
        for (size_t i = 0; i < t.merge_pairs.size(); ++i) last[key(t.merge_pairs[i])] = i;
        merges.reserve(t.merge_pairs.size());
        for (size_t i = 0; i < t.merge_pairs.size(); ++i) {
            if (last[key(t.merge_pairs[i])] != i) continue;
            merges.push_back(t.vocab_spelling[t.merge_pairs[i].first] + " " +
                             t.vocab_spelling[t.merge_pairs[i].second]);
        }
    }
    for (int id = 0; id < vocab; ++id)
        if (types[id] == kUnused && tokens[id].empty()) {
            tokens[id] = pad_name(id, taken);
            taken.insert(tokens[id]);
        }

    // BOS/EOS: llama.cpp defaults both to id 11 for "gpt2" vocabularies, so they are always
    // written; a tokenizer without one gets the token of byte 0x00 (a byte no text holds, and a
    // normal token, which tokenizer_from_gguf reads back as "none").
    const int nul = tok.is_bytes() ? 0 : *tok.token_id(byte_level::encode(std::string(1, '\0')));
    const int bos = tok.bos_id().value_or(nul);
    const int eos = tok.eos_id().value_or(nul);

    std::vector<std::pair<std::string, io::GgufValue>> md;
    md.emplace_back("tokenizer.ggml.model", io::GgufValue::string("gpt2"));
    md.emplace_back("tokenizer.ggml.pre", io::GgufValue::string(plan.pre));
    md.emplace_back("tokenizer.ggml.tokens", io::GgufValue::string_array(std::move(tokens)));
    md.emplace_back("tokenizer.ggml.token_type", io::GgufValue::i32_array(std::move(types)));
    md.emplace_back("tokenizer.ggml.merges", io::GgufValue::string_array(std::move(merges)));
    md.emplace_back("tokenizer.ggml.bos_token_id", io::GgufValue::u32(static_cast<uint32_t>(bos)));
    md.emplace_back("tokenizer.ggml.eos_token_id", io::GgufValue::u32(static_cast<uint32_t>(eos)));
    md.emplace_back("tokenizer.ggml.add_bos_token",
                    io::GgufValue::boolean(tok.add_bos() && tok.bos_id().has_value()));
    md.emplace_back("tokenizer.ggml.add_eos_token", io::GgufValue::boolean(false));
    return md;
}

// ---- Import ----------------------------------------------------------------------------------

namespace {

class Reader {
  public:
    Reader(const std::vector<std::pair<std::string, io::GgufValue>>& metadata, std::string source)
        : source_(std::move(source)) {
        for (const auto& [k, v] : metadata) keys_.emplace(k, &v);
    }

    [[noreturn]] void fail(const std::string& what) const { throw Error(source_ + ": " + what); }

    const io::GgufValue* find(const std::string& key) const {
        const auto it = keys_.find(key);
        return it == keys_.end() ? nullptr : it->second;
    }
    const io::GgufValue& at(const std::string& key) const {
        const io::GgufValue* v = find(key);
        if (!v) fail("metadata key '" + key + "' is missing");
        return *v;
    }
    std::string what(const std::string& key) const { return source_ + ": " + key; }
    const std::string& source() const { return source_; }

  private:
    std::string source_;
    std::unordered_map<std::string, const io::GgufValue*> keys_;
};

std::string json_string(const std::string& s) {
    return nlohmann::json(s).dump();
}

// llama.cpp's llama_unescape_rwkv_token, byte for byte (lowercase hex only, as it parses it).
std::string unescape_rwkv(const std::string& escaped) {
    std::string out;
    bool escaping = false;
    int hex_remaining = 0;
    uint8_t hex_acc = 0;
    for (const char c : escaped) {
        if (hex_remaining != 0) {
            const uint8_t value = static_cast<uint8_t>((c >= 'a') ? (c - 'a' + 10) : (c - '0'));
            hex_acc = static_cast<uint8_t>((hex_acc << 4) + value);
            if (--hex_remaining == 0) {
                out.push_back(static_cast<char>(hex_acc));
                hex_acc = 0;
            }
            continue;
        }
        if (escaping) {
            if (c == 't')
                out.push_back('\t');
            else if (c == 'n')
                out.push_back('\n');
            else if (c == 'r')
                out.push_back('\r');
            else if (c == 'x')
                hex_remaining = 2;
            else
                out.push_back(c);
            escaping = false;
            continue;
        }
        if (c == '\\') {
            escaping = true;
            continue;
        }
        out.push_back(c);
    }
    return out;
}

// llama.cpp sets lstrip / rstrip on some special tokens by model or tokenizer name
// (llama_vocab::impl::load, "per token attributes"): not representable from the keys.
void check_name_quirks(const Reader& r, const std::unordered_set<std::string>& texts) {
    auto lower = [&](const char* key) {
        std::string s;
        if (const io::GgufValue* v = r.find(key); v && v->type() == io::GgufType::String)
            s = v->as_string(r.what(key));
        for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return s;
    };
    const std::string name = lower("general.name");
    const std::string arch = lower("general.architecture");
    if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos)
        r.fail("general.name \"" + name +
               "\": llama.cpp strips the spaces after special tokens of Phi-3 models; tinygpt "
               "does not reproduce that");
    if ((name.find("modern-bert") != std::string::npos && texts.count("[MASK]")) ||
        ((arch.find("nomic-bert-moe") != std::string::npos ||
          arch.find("jina-bert-v3") != std::string::npos) &&
         texts.count("<mask>")))
        r.fail(
            "general.name / general.architecture: llama.cpp strips the spaces before the mask "
            "token of this model; tinygpt does not reproduce that");
}

Tokenizer import_rwkv(const Reader& r, const std::vector<std::string>& tokens,
                      const std::vector<int64_t>& types) {
    bool bytes = tokens.size() == 256;
    for (size_t i = 0; bytes && i < tokens.size(); ++i) {
        const std::string raw = unescape_rwkv(tokens[i]);
        bytes = raw.size() == 1 && static_cast<unsigned char>(raw[0]) == i &&
                (types.empty() || types[i] == kNormal);
    }
    if (!bytes)
        r.fail(
            "tokenizer.ggml.model \"rwkv\": only the 256-byte vocabulary (token i = byte i, all "
            "NORMAL) is supported; a larger RWKV vocabulary is a greedy longest-match trie, not a "
            "BPE");
    return Tokenizer::bytes();
}

}  // namespace

Tokenizer tokenizer_from_gguf_metadata(
    const std::vector<std::pair<std::string, io::GgufValue>>& metadata, const std::string& source) {
    const Reader r(metadata, source);
    const std::string model =
        r.at("tokenizer.ggml.model").as_string(r.what("tokenizer.ggml.model"));
    if (model != "gpt2" && model != "rwkv") {
        std::string what = "tokenizer.ggml.model \"" + model + "\" is not supported";
        if (model == "llama")
            what +=
                " (a SentencePiece vocabulary: spaces become U+2581 and llama.cpp adds a "
                "leading space)";
        else if (model == "bert")
            what += " (WordPiece)";
        else if (model == "t5")
            what += " (Unigram)";
        else if (model == "none" || model == "no_vocab")
            what += " (no vocabulary)";
        r.fail(what +
               "; tinygpt reads byte-level BPE vocabularies (\"gpt2\") and the 256-byte \"rwkv\" "
               "vocabulary");
    }

    const std::vector<std::string>& tokens =
        r.at("tokenizer.ggml.tokens").as_string_array(r.what("tokenizer.ggml.tokens"));
    const size_t n = tokens.size();
    if (n == 0) r.fail("tokenizer.ggml.tokens is empty");
    std::vector<int64_t> types;
    if (const io::GgufValue* v = r.find("tokenizer.ggml.token_type")) {
        types = v->as_int_array(r.what("tokenizer.ggml.token_type"));
        if (types.size() != n)
            r.fail("tokenizer.ggml.token_type has " + std::to_string(types.size()) +
                   " entries for " + std::to_string(n) + " tokens");
    }
    if (const io::GgufValue* v = r.find("tokenizer.ggml.scores")) {
        const size_t scores = v->as_float_array(r.what("tokenizer.ggml.scores")).size();
        if (scores != n)
            r.fail("tokenizer.ggml.scores has " + std::to_string(scores) + " entries for " +
                   std::to_string(n) + " tokens");
    }
    if (model == "rwkv") return import_rwkv(r, tokens, types);

    // Token texts: valid UTF-8, non-empty, unique (llama.cpp asserts the last).
    std::unordered_map<std::string, int> id_of;
    id_of.reserve(n * 2);
    std::unordered_set<std::string> texts;
    for (size_t i = 0; i < n; ++i) {
        const std::string where = "tokenizer.ggml.tokens[" + std::to_string(i) + "]";
        if (tokens[i].empty()) r.fail(where + " is empty");
        if (utf8::first_invalid(tokens[i]) != std::string::npos)
            r.fail(where + " is not valid UTF-8");
        if (!id_of.emplace(tokens[i], static_cast<int>(i)).second)
            r.fail(where + " \"" + tokens[i] + "\" is also token " +
                   std::to_string(id_of[tokens[i]]));
        texts.insert(tokens[i]);
    }
    std::vector<int32_t> type(n, kNormal);
    for (size_t i = 0; i < types.size(); ++i) {
        const int64_t t = types[i];
        if (t != kNormal && t != kControl && t != kUserDefined && t != kUnused)
            r.fail("tokenizer.ggml.token_type[" + std::to_string(i) + "] = " + std::to_string(t) +
                   " (" + token_type_name(t) + ", token \"" + tokens[i] +
                   "\"): a byte-level BPE has NORMAL, CONTROL, USER_DEFINED and UNUSED tokens");
        type[i] = static_cast<int32_t>(t);
    }
    // What llama.cpp does to some texts whatever their type: end-of-generation and FIM markers
    // become special (matched in the text; they stay in the vocabulary, as GPT-2's
    // <|endoftext|> is), and "</s>" becomes normal when "<|tool_response>" exists.
    const bool tool_response = texts.count("<|tool_response>") > 0;
    std::vector<uint8_t> forced(n, 0);
    for (size_t i = 0; i < n; ++i) {
        if (tool_response && tokens[i] == "</s>") {
            type[i] = kNormal;
        } else if (type[i] == kNormal && forced_control_texts().count(tokens[i])) {
            const auto raw = byte_level::decode(tokens[i]);
            if (!raw || *raw != tokens[i])
                r.fail("tokenizer.ggml.tokens[" + std::to_string(i) + "] \"" + tokens[i] +
                       "\" is NORMAL, and llama.cpp makes tokens spelled so special");
            forced[i] = 1;
        }
    }
    check_name_quirks(r, texts);

    // The pre-tokenizer.
    std::string pre;
    if (const io::GgufValue* v = r.find("tokenizer.ggml.pre"))
        pre = v->as_string(r.what("tokenizer.ggml.pre"));
    const PreFamily* family = nullptr;
    for (const auto& f : families())
        if (contains(f.names, pre)) family = &f;

    // Merges ("a b", split at the first space after the first byte, as llama.cpp does).
    const io::GgufValue* merges_value = r.find("tokenizer.ggml.merges");
    if (!merges_value)
        r.fail(
            "metadata key 'tokenizer.ggml.merges' is missing (llama.cpp requires it for "
            "\"gpt2\" vocabularies)");
    const std::vector<std::string>& merges =
        merges_value->as_string_array(r.what("tokenizer.ggml.merges"));

    // The byte vocabulary: the 256 byte characters in byte order, no merges, padding after.
    bool bytes = n >= 256 && merges.empty();
    for (size_t i = 0; bytes && i < n; ++i)
        bytes = i < 256 ? (type[i] == kNormal &&
                           tokens[i] == byte_level::encode(std::string(1, static_cast<char>(i))))
                        : type[i] == kUnused;
    if (bytes) return Tokenizer::bytes();

    if (!family) {
        std::string known;
        for (const auto& f : families())
            for (const auto& name : f.names)
                if (!name.empty()) known += (known.empty() ? "\"" : ", \"") + name + "\"";
        r.fail("tokenizer.ggml.pre \"" + pre +
               "\" is not supported: tinygpt runs the pre-tokenizers of " + known);
    }

    const io::GgufValue* add_eos = r.find("tokenizer.ggml.add_eos_token");
    if (add_eos && add_eos->as_bool(r.what("tokenizer.ggml.add_eos_token")))
        r.fail("tokenizer.ggml.add_eos_token = true: tinygpt's tokenizers never append EOS");

    // Vocabulary and added tokens.
    for (int b = 0; b < 256; ++b) {
        const std::string spelled = byte_level::encode(std::string(1, static_cast<char>(b)));
        const auto it = id_of.find(spelled);
        if (it == id_of.end() || type[it->second] != kNormal) {
            char hex[8];
            std::snprintf(hex, sizeof(hex), "0x%02X", b);
            r.fail(std::string("tokenizer.ggml.tokens has no NORMAL token for byte ") + hex +
                   " (spelled \"" + spelled + "\"); a byte-level BPE needs all 256");
        }
    }
    std::string vocab_text, added_text;
    for (size_t i = 0; i < n; ++i) {
        const int id = static_cast<int>(i);
        if (type[i] == kUnused) continue;
        if (type[i] == kNormal) {
            if (!byte_level::decode(tokens[i]))
                r.fail("tokenizer.ggml.tokens[" + std::to_string(i) + "] \"" + tokens[i] +
                       "\" is a NORMAL token not spelled in byte-level characters (llama.cpp "
                       "detokenizes it as [UNK_BYTE_...])");
            vocab_text +=
                (vocab_text.empty() ? "" : ",") + json_string(tokens[i]) + ":" + std::to_string(id);
        }
        if (type[i] != kNormal || forced[i]) {
            ordered_json a;
            a["id"] = id;
            a["content"] = tokens[i];
            a["single_word"] = false;
            a["lstrip"] = false;
            a["rstrip"] = false;
            a["normalized"] = false;  // llama.cpp matches them in the raw text
            a["special"] = type[i] != kUserDefined;
            added_text += (added_text.empty() ? "" : ",") + a.dump();
        }
    }

    std::string merges_text;
    std::set<std::pair<std::string, std::string>> seen;  // llama.cpp keeps the first of repeats
    for (size_t i = 0; i < merges.size(); ++i) {
        const std::string& m = merges[i];
        const std::string where = "tokenizer.ggml.merges[" + std::to_string(i) + "] \"" + m + "\"";
        const size_t space = m.find(' ', 1);
        if (space == std::string::npos || m.find(' ', space + 1) != std::string::npos)
            r.fail(where + " is not two tokens separated by one space");
        std::string left = m.substr(0, space), right = m.substr(space + 1);
        for (const std::string* part : {&left, &right}) {
            const auto it = id_of.find(*part);
            if (it == id_of.end() || type[it->second] != kNormal)
                r.fail(where + ": \"" + *part + "\" is not a NORMAL token");
        }
        const auto merged = id_of.find(left + right);
        if (merged == id_of.end() || type[merged->second] != kNormal)
            r.fail(where + ": the merged token \"" + left + right + "\" is not a NORMAL token");
        if (!seen.emplace(left, right).second) continue;
        merges_text +=
            (merges_text.empty() ? "[" : ",[") + json_string(left) + "," + json_string(right) + "]";
    }

    // BOS / EOS / add_bos as llama.cpp reads them (-1: none).
    auto id_key = [&](const char* key) -> int {
        const io::GgufValue* v = r.find(key);
        if (!v) return -1;
        const uint64_t id = v->as_uint(r.what(key));
        if (id >= n || type[id] == kUnused)
            r.fail(std::string(key) + " = " + std::to_string(id) + " is not a token (" +
                   std::to_string(n) + " tokens" + (id < n ? ", and that one is UNUSED)" : ")"));
        return static_cast<int>(id);
    };
    int bos = id_key("tokenizer.ggml.bos_token_id");
    int eos = id_key("tokenizer.ggml.eos_token_id");
    constexpr int kLlamaDefault = 11;  // llama.cpp's default BOS and EOS for "gpt2"
    const bool default_usable = n > kLlamaDefault && type[kLlamaDefault] != kUnused;
    if (bos < 0 && !family->bos_default_none && default_usable) bos = kLlamaDefault;
    if (eos < 0 && default_usable) eos = kLlamaDefault;
    bool add_bos = family->add_bos_default;
    if (const io::GgufValue* v = r.find("tokenizer.ggml.add_bos_token"))
        add_bos = v->as_bool(r.what("tokenizer.ggml.add_bos_token"));
    if (add_bos && bos < 0) r.fail("tokenizer.ggml.add_bos_token = true without a BOS token");
    // A normal token as BOS/EOS is how tokenizer_metadata writes "none" (and llama.cpp's default
    // 11); it is kept only where it acts: BOS added to every text.
    if (bos >= 0 && type[bos] == kNormal && !forced[bos] && !add_bos) bos = -1;
    if (eos >= 0 && type[eos] == kNormal && !forced[eos]) eos = -1;

    std::string text;
    text.reserve(vocab_text.size() + merges_text.size() + added_text.size() + 1024);
    text += "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[";
    text += added_text;
    text += "],\"normalizer\":" + family->normalizer.dump();
    text += ",\"pre_tokenizer\":" + family->pre.dump();
    text += ",\"post_processor\":" + family->post.dump();
    text += ",\"decoder\":" + family->decoder.dump();
    const char* affix = family->empty_string_affixes ? "\"\"" : "null";
    text += ",\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,";
    text += std::string("\"continuing_subword_prefix\":") + affix +
            ",\"end_of_word_suffix\":" + affix +
            ",\"fuse_unk\":false,\"byte_fallback\":false,\"ignore_merges\":" +
            (family->ignore_merges ? "true" : "false") + ",\"vocab\":{";
    text += vocab_text;
    text += "},\"merges\":";
    text += "[" + merges_text + "]";
    text += "}}";

    ordered_json config;
    config["add_bos_token"] = add_bos;
    config["bos_token"] = bos >= 0 ? ordered_json(tokens[bos]) : ordered_json(nullptr);
    config["eos_token"] = eos >= 0 ? ordered_json(tokens[eos]) : ordered_json(nullptr);
    return Tokenizer::from_hf_json(text, config.dump(), source + " (tokenizer.ggml.*)");
}

Tokenizer tokenizer_from_gguf(const io::GgufFile& file) {
    return tokenizer_from_gguf_metadata(file.metadata(), file.path());
}

}  // namespace tinygpt::gguf
