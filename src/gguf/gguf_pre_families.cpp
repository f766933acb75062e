// The pre-tokenizer families, token types and special texts of gguf_pre_families.h.
#include "gguf/gguf_pre_families.h"

#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer_impl.h"

namespace tinygpt::gguf {

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

namespace {

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

}  // namespace

const std::string& byte_level_regex() {
    return kGpt2;
}

const std::string& digits_regex(bool individual_digits) {
    return individual_digits ? kDigit : kDigits;
}

std::string canonical_regex(const std::string& r) {
    if (r == kGpt2Llama) return kGpt2;
    if (r == kLlama3Llama) return kLlama3;
    if (r == kQwen2Llama) return kQwen2;
    if (r == kQwen35Llama) return kQwen35;
    return r;
}

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

std::string export_names_list() {
    std::string s;
    for (const auto& f : families()) {
        if (f.export_name.empty()) continue;
        if (!s.empty()) s += ", ";
        s += std::string(f.label) + " (\"" + f.export_name + "\")";
    }
    return s;
}

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

}  // namespace tinygpt::gguf
