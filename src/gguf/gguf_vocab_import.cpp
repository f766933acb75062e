// tokenizer.ggml.* metadata -> a Tokenizer (src/gguf/gguf_vocab.h), reading the keys as llama.cpp
// does (src/llama-vocab.cpp, llama_vocab::impl::load); docs/GGUF.md ("The tokenizer") explains
// every refusal.
#include <cctype>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "gguf/gguf_pre_families.h"
#include "gguf/gguf_vocab.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace tinygpt::gguf {

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
        if (f.has_name(pre)) family = &f;

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