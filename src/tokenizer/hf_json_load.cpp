// Tokenizer::from_hf_json: validates an HF tokenizer.json (+ tokenizer_config.json) and builds the
// tables. Everything a byte-level BPE can hold is accepted; anything that would make our ids
// differ from HF's (WordPiece, Unigram, byte_fallback, dropout, unknown normalizers...) is refused
// with an Error naming the field and its value.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "tokenizer/byte_level.h"
#include "tokenizer/hf_json_reader.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace tinygpt {

namespace {

using json = nlohmann::json;

// Ids above this are refused: they would make vocab_size() (and every table) absurdly large.
constexpr int64_t kMaxTokenId = (1 << 24) - 1;
// Every id below the largest costs a row in the tables (about 70 bytes), token or not, so ids
// may leave only so many unused: a 4 KB file naming id 16,777,215 would otherwise take 1.1 GB.
// Real tokenizers number their tokens densely (added tokens right after the vocabulary).
constexpr int64_t kMaxUnusedIds = 1 << 20;

class Loader {
  public:
    explicit Loader(std::string source) : source_(std::move(source)) {}

    [[noreturn]] void fail(const std::string& where, const std::string& what) const {
        throw Error(source_ + ": " + where + ": " + what);
    }

    static std::string type_name(const json& j) { return j.type_name(); }

    const json& require_object(const json& j, const std::string& where) const {
        if (!j.is_object()) fail(where, "expected an object, got " + type_name(j));
        return j;
    }

    bool get_bool(const json& obj, const char* key, bool fallback, const std::string& where) const {
        const auto it = obj.find(key);
        if (it == obj.end() || it->is_null()) return fallback;
        if (!it->is_boolean())
            fail(where + "." + key, "expected true or false, got " + type_name(*it));
        return it->get<bool>();
    }

    std::string get_string(const json& obj, const char* key, const std::string& where) const {
        const auto it = obj.find(key);
        if (it == obj.end()) fail(where, std::string("missing \"") + key + "\"");
        if (!it->is_string()) fail(where + "." + key, "expected a string, got " + type_name(*it));
        return it->get<std::string>();
    }

    int get_id(const json& value, const std::string& where) const {
        if (!value.is_number_integer())
            fail(where, "expected an integer id, got " +
                            (value.is_number() ? value.dump() : type_name(value)));
        const bool negative =
            value.is_number_integer() && !value.is_number_unsigned() && value.get<int64_t>() < 0;
        if (negative) fail(where, "negative id " + value.dump());
        const uint64_t id = value.get<uint64_t>();
        if (id > static_cast<uint64_t>(kMaxTokenId))
            fail(where, "id " + value.dump() + " is out of range (at most " +
                            std::to_string(kMaxTokenId) + ")");
        return static_cast<int>(id);
    }

    // Before tables of max_id + 1 rows are allocated for `tokens` numbered tokens (an upper
    // bound: an added token may reuse a vocabulary id).
    void check_unused_ids(int max_id, size_t tokens, const std::string& where) const {
        const int64_t unused = static_cast<int64_t>(max_id) + 1 - static_cast<int64_t>(tokens);
        if (unused > kMaxUnusedIds)
            fail(where, "id " + std::to_string(max_id) + " leaves " + std::to_string(unused) +
                            " ids below it without a token (at most " +
                            std::to_string(kMaxUnusedIds) + "; corrupted file?)");
    }

    // `added_tokens`: how many the file lists (the tables are sized for them).
    void load_model(const json& model, const TokenizerJson& doc, size_t added_tokens,
                    TokenizerImpl& t);
    void load_added_tokens(const json& root, TokenizerImpl& t);
    void load_normalizer(const json& n, TokenizerImpl& t, const std::string& where);
    void load_pre_tokenizer(const json& p, TokenizerImpl& t, const std::string& where,
                            bool& saw_byte_level);
    void check_decoder(const json& d, const std::string& where) const;
    void check_post_processor(const json& p, const std::string& where) const;
    void load_config(const std::string& config_text, const json& root, TokenizerImpl& t);

    std::string source_;
    size_t numbered_tokens_ = 0;  // vocabulary entries and added tokens read so far
};

void Loader::load_model(const json& model, const TokenizerJson& doc, size_t added_tokens,
                        TokenizerImpl& t) {
    require_object(model, "model");
    const auto type_it = model.find("type");
    if (type_it != model.end() && !(type_it->is_string() && *type_it == "BPE"))
        fail("model.type", type_it->dump() + " is not supported (only byte-level \"BPE\")");
    if (model.contains("dropout") && !model["dropout"].is_null())
        fail("model.dropout", model["dropout"].dump() +
                                  " is not supported (only null: dropout makes encoding random)");
    if (get_bool(model, "byte_fallback", false, "model"))
        fail("model.byte_fallback",
             "true is not supported (SentencePiece-style BPE; only byte-level BPE)");
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
        const auto it = model.find(key);
        if (it == model.end() || it->is_null()) continue;
        if (!it->is_string() || !it->get<std::string>().empty())
            fail(std::string("model.") + key, it->dump() + " is not supported (only null or \"\")");
        if (std::string(key) == "continuing_subword_prefix")
            t.continuing_prefix_empty_string = true;
    }
    t.bpe.ignore_merges = get_bool(model, "ignore_merges", false, "model");

    const auto vocab_it = model.find("vocab");
    if (vocab_it == model.end()) fail("model", "missing \"vocab\"");
    if (!vocab_it->is_object())
        fail("model.vocab", "expected an object of token: id, got " + type_name(*vocab_it));
    int max_id = -1;
    std::vector<std::pair<int, const std::string*>> entries;
    entries.reserve(doc.vocab.size());
    for (const TokenizerJson::VocabEntry& entry : doc.vocab) {
        // The error's location is spelled only for a bad id: building it for every one of
        // 150k tokens was a tenth of a large tokenizer's load.
        const json& value = entry.id;
        const int id = value.is_number_unsigned() && value.get<uint64_t>() <= kMaxTokenId
                           ? static_cast<int>(value.get<uint64_t>())
                           : get_id(value, "model.vocab[\"" + entry.spelling + "\"]");
        entries.emplace_back(id, &entry.spelling);
        max_id = std::max(max_id, id);
    }
    if (entries.empty()) fail("model.vocab", "is empty");
    numbered_tokens_ = entries.size();
    check_unused_ids(max_id, numbered_tokens_, "model.vocab");
    // Room for the added tokens too, which usually follow the vocabulary: growing these tables
    // for them moved every token's strings once more.
    const size_t rows = max_id + 1 + std::min<size_t>(added_tokens, kMaxUnusedIds);
    t.vocab_spelling.reserve(rows);
    t.token_bytes.reserve(rows);
    t.vocab_spelling.assign(max_id + 1, std::string());
    t.token_bytes.assign(max_id + 1, std::string());
    t.present.assign(max_id + 1, 0);
    t.added.assign(max_id + 1, 0);
    t.in_vocab.assign(max_id + 1, 0);
    std::vector<uint8_t> byte_level_ok(max_id + 1, 0);
    t.id_of_spelling.reserve(entries.size());
    t.bpe.id_of_bytes.reserve(entries.size());
    for (const auto& [id, spelling] : entries) {
        if (t.present[id])
            fail(
                "model.vocab[\"" + *spelling + "\"]",
                "id " + std::to_string(id) + " is also the id of \"" + t.vocab_spelling[id] + "\"");
        t.present[id] = 1;
        t.in_vocab[id] = 1;
        if (!t.id_of_spelling.insert(*spelling, id))
            fail("model.vocab[\"" + *spelling + "\"]", "is named twice");
        t.vocab_spelling[id] = *spelling;
        if (auto raw = byte_level::decode(*spelling)) {
            t.token_bytes[id] = std::move(*raw);
            byte_level_ok[id] = 1;
            t.bpe.id_of_bytes.insert(t.token_bytes[id], id);
        } else {
            // Not spelled in byte characters: unreachable by BPE; HF's ByteLevel decoder falls
            // back to the spelling's own UTF-8 bytes.
            t.token_bytes[id] = *spelling;
        }
    }
    for (int b = 0; b < 256; ++b) {
        const char byte = static_cast<char>(b);
        const int id = t.bpe.id_of_bytes.find(std::string_view(&byte, 1));
        if (id < 0) {
            char hex[8];
            std::snprintf(hex, sizeof(hex), "0x%02X", b);
            fail("model.vocab", std::string("has no token for byte ") + hex + " (spelled \"" +
                                    byte_level::encode(std::string(1, byte)) +
                                    "\"); a byte-level BPE needs all 256");
        }
        t.bpe.byte_id[b] = id;
    }

    const auto merges_it = model.find("merges");
    if (merges_it == model.end() || merges_it->is_null()) return;
    if (!merges_it->is_array())
        fail("model.merges", "expected an array, got " + type_name(*merges_it));
    const size_t merges = doc.merges.size() + (doc.malformed_merge ? 1 : 0);
    t.merge_pairs.reserve(merges);
    t.bpe.merges.reserve(merges);
    for (size_t i = 0; i < merges; ++i) {
        const auto where = [i] { return "model.merges[" + std::to_string(i) + "]"; };
        if (i == doc.merges.size()) fail(where(), *doc.malformed_merge);
        const TokenizerJson::Merge& merge = doc.merges[i];
        auto id_of = [&](std::string_view token, const char* role) {
            const int id = t.id_of_spelling.find(token);
            if (id < 0)
                fail(where(), std::string(role) + " token \"" + std::string(token) +
                                  "\" is not in model.vocab");
            return id;
        };
        const int a = id_of(merge.left(), "the left");
        const int b = id_of(merge.right(), "the right");
        const int result = id_of(merge.merged, "the merged");
        t.merge_pairs.emplace_back(a, b);
        if (byte_level_ok[a] && byte_level_ok[b])
            t.bpe.merges.insert(a, b, {static_cast<int32_t>(i), result});
    }
}

void Loader::load_added_tokens(const json& root, TokenizerImpl& t) {
    const auto it = root.find("added_tokens");
    if (it == root.end() || it->is_null()) return;
    if (!it->is_array()) fail("added_tokens", "expected an array, got " + type_name(*it));
    for (size_t i = 0; i < it->size(); ++i) {
        const std::string where = "added_tokens[" + std::to_string(i) + "]";
        const json& a = require_object((*it)[i], where);
        AddedToken token;
        if (!a.contains("id")) fail(where, "missing \"id\"");
        token.id = get_id(a["id"], where + ".id");
        token.content = get_string(a, "content", where);
        if (token.content.empty()) fail(where + ".content", "is empty");
        if (utf8::first_invalid(token.content) != std::string::npos)
            fail(where + ".content", "is not valid UTF-8");
        token.special = get_bool(a, "special", false, where);
        token.lstrip = get_bool(a, "lstrip", false, where);
        token.rstrip = get_bool(a, "rstrip", false, where);
        token.normalized = get_bool(a, "normalized", !token.special, where);
        token.single_word = get_bool(a, "single_word", false, where);
        if (token.single_word) fail(where + ".single_word", "true is not supported");
        if (t.id_of_added.count(token.content))
            fail(where + ".content", "\"" + token.content + "\" is added twice");
        ++numbered_tokens_;
        if (token.id >= static_cast<int>(t.present.size())) {
            check_unused_ids(token.id, numbered_tokens_, where + ".id");
            t.present.resize(token.id + 1, 0);
            t.token_bytes.resize(token.id + 1);
            t.vocab_spelling.resize(token.id + 1);
            t.added.resize(token.id + 1, 0);
            t.in_vocab.resize(token.id + 1, 0);
        }
        if (t.added[token.id])
            fail(where + ".id", std::to_string(token.id) + " is also the id of added token \"" +
                                    t.token_bytes[token.id] + "\"");
        t.present[token.id] = 1;
        t.added[token.id] = 1;
        t.token_bytes[token.id] = token.content;
        t.id_of_added.emplace(token.content, token.id);
        t.added_tokens.push_back(token);
    }
}

void Loader::load_normalizer(const json& n, TokenizerImpl& t, const std::string& where) {
    if (n.is_null()) return;
    require_object(n, where);
    const std::string type = get_string(n, "type", where);
    if (type == "NFC") {
        t.nfc = true;
    } else if (type == "Sequence") {
        const auto it = n.find("normalizers");
        if (it == n.end() || !it->is_array()) fail(where + ".normalizers", "expected an array");
        for (size_t i = 0; i < it->size(); ++i)
            load_normalizer((*it)[i], t, where + ".normalizers[" + std::to_string(i) + "]");
    } else {
        fail(where + ".type", "\"" + type + "\" is not supported (only NFC, or a Sequence of NFC)");
    }
}

void Loader::load_pre_tokenizer(const json& p, TokenizerImpl& t, const std::string& where,
                                bool& saw_byte_level) {
    require_object(p, where);
    const std::string type = get_string(p, "type", where);
    if (type == "Sequence") {
        const auto it = p.find("pretokenizers");
        if (it == p.end() || !it->is_array()) fail(where + ".pretokenizers", "expected an array");
        for (size_t i = 0; i < it->size(); ++i)
            load_pre_tokenizer((*it)[i], t, where + ".pretokenizers[" + std::to_string(i) + "]",
                               saw_byte_level);
        return;
    }
    // Our pieces are raw bytes, so a step after ByteLevel (which would see the byte characters)
    // cannot be run faithfully.
    if (saw_byte_level)
        fail(where,
             "\"" + type + "\" after ByteLevel is not supported (ByteLevel must be the last step)");
    PreTokenizerStep step;
    if (type == "ByteLevel") {
        saw_byte_level = true;
        step.kind = PreTokenizerStep::Kind::ByteLevel;
        step.add_prefix_space = get_bool(p, "add_prefix_space", true, where);
        if (get_bool(p, "use_regex", true, where))
            step.regex = std::make_shared<Regex>(kGpt2Pattern, source_ + ": " + where);
        if (step.add_prefix_space || step.regex) t.pre_tokenizer.add(std::move(step));
    } else if (type == "Split") {
        const auto pat = p.find("pattern");
        if (pat == p.end() || !pat->is_object())
            fail(where + ".pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
        if (pat->contains("Regex") && (*pat)["Regex"].is_string()) {
            step.regex = std::make_shared<Regex>((*pat)["Regex"].get<std::string>(),
                                                 source_ + ": " + where + ".pattern.Regex");
        } else if (pat->contains("String") && (*pat)["String"].is_string()) {
            step.literal = (*pat)["String"].get<std::string>();
            if (step.literal.empty()) fail(where + ".pattern.String", "is empty");
        } else {
            fail(where + ".pattern",
                 pat->dump() + " is neither {\"Regex\": string} nor {\"String\": string}");
        }
        const std::string behavior = get_string(p, "behavior", where);
        if (behavior == "Removed")
            step.behavior = SplitBehavior::Removed;
        else if (behavior == "Isolated")
            step.behavior = SplitBehavior::Isolated;
        else if (behavior == "MergedWithPrevious")
            step.behavior = SplitBehavior::MergedWithPrevious;
        else if (behavior == "MergedWithNext")
            step.behavior = SplitBehavior::MergedWithNext;
        else if (behavior == "Contiguous")
            step.behavior = SplitBehavior::Contiguous;
        else
            fail(where + ".behavior", "\"" + behavior + "\" is not a split behavior");
        step.invert = get_bool(p, "invert", false, where);
        t.pre_tokenizer.add(std::move(step));
    } else if (type == "Digits") {
        // HF splits on char::is_numeric, i.e. the Unicode N categories.
        step.regex = std::make_shared<Regex>("\\p{N}", source_ + ": " + where);
        step.behavior = get_bool(p, "individual_digits", false, where) ? SplitBehavior::Isolated
                                                                       : SplitBehavior::Contiguous;
        t.pre_tokenizer.add(std::move(step));
    } else {
        fail(where + ".type",
             "\"" + type + "\" is not supported (ByteLevel, Split, Digits, Sequence)");
    }
}

void Loader::check_decoder(const json& d, const std::string& where) const {
    if (d.is_null()) return;
    require_object(d, where);
    const std::string type = get_string(d, "type", where);
    if (type == "ByteLevel") return;
    if (type == "Sequence") {
        const auto it = d.find("decoders");
        if (it == d.end() || !it->is_array()) fail(where + ".decoders", "expected an array");
        for (size_t i = 0; i < it->size(); ++i)
            check_decoder((*it)[i], where + ".decoders[" + std::to_string(i) + "]");
        return;
    }
    fail(where + ".type", "\"" + type + "\" is not supported (only ByteLevel)");
}

// The post-processor only acts for add_special_tokens=True, which encode() does not do; it is
// checked for sanity and written back as it was.
void Loader::check_post_processor(const json& p, const std::string& where) const {
    if (p.is_null()) return;
    require_object(p, where);
    const std::string type = get_string(p, "type", where);
    if (type == "ByteLevel" || type == "TemplateProcessing") return;
    if (type == "Sequence") {
        const auto it = p.find("processors");
        if (it == p.end() || !it->is_array()) fail(where + ".processors", "expected an array");
        for (size_t i = 0; i < it->size(); ++i)
            check_post_processor((*it)[i], where + ".processors[" + std::to_string(i) + "]");
        return;
    }
    fail(where + ".type",
         "\"" + type + "\" is not supported (ByteLevel, TemplateProcessing, Sequence)");
}

void Loader::load_config(const std::string& config_text, const json& root, TokenizerImpl& t) {
    auto lookup = [&](const std::string& content) -> std::optional<int> {
        if (auto it = t.id_of_added.find(content); it != t.id_of_added.end()) return it->second;
        if (const int id = t.id_of_spelling.find(content); id >= 0) return id;
        return std::nullopt;
    };
    std::optional<bool> add_bos;
    if (!config_text.empty()) {
        json config;
        try {
            config = json::parse(config_text);
        } catch (const json::exception& e) {
            throw Error(source_ + ": tokenizer_config.json is not valid JSON: " + e.what());
        }
        if (!config.is_object())
            fail("tokenizer_config.json", "expected an object, got " + type_name(config));
        auto special = [&](const char* key) -> std::optional<int> {
            const auto it = config.find(key);
            if (it == config.end() || it->is_null()) return std::nullopt;
            std::string content;
            if (it->is_string())
                content = it->get<std::string>();
            else if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
                content = (*it)["content"].get<std::string>();
            else
                fail(std::string("tokenizer_config.json: ") + key,
                     "expected a string or {\"content\": string}, got " + it->dump());
            const auto id = lookup(content);
            if (!id)
                fail(std::string("tokenizer_config.json: ") + key,
                     "\"" + content + "\" is not a token of tokenizer.json");
            return id;
        };
        t.bos = special("bos_token");
        t.eos = special("eos_token");
        if (config.contains("add_bos_token") && !config["add_bos_token"].is_null()) {
            if (!config["add_bos_token"].is_boolean())
                fail("tokenizer_config.json: add_bos_token",
                     "expected true or false, got " + config["add_bos_token"].dump());
            add_bos = config["add_bos_token"].get<bool>();
        }
    }
    if (!t.eos)
        for (const char* name :
             {"<|endoftext|>", "<|end_of_text|>", "</s>", "<｜end▁of▁sentence｜>"})
            if (auto it = t.id_of_added.find(name); it != t.id_of_added.end()) {
                t.eos = it->second;
                break;
            }
    if (add_bos) {
        t.add_bos = *add_bos;
    } else if (t.bos) {
        // Without add_bos_token, HF's fast tokenizers add BOS through a TemplateProcessing
        // post-processor whose single-sequence template starts with it.
        const json& pp = t.post_processor_json.is_null() ? json() : json(t.post_processor_json);
        std::vector<json> processors;
        if (pp.is_object() && pp.value("type", "") == "Sequence" && pp.contains("processors") &&
            pp["processors"].is_array())
            for (const auto& x : pp["processors"]) processors.push_back(x);
        else
            processors.push_back(pp);
        for (const auto& x : processors)
            if (x.is_object() && x.value("type", "") == "TemplateProcessing" &&
                x.contains("single") && x["single"].is_array() && !x["single"].empty() &&
                x["single"][0].contains("SpecialToken") &&
                x["single"][0]["SpecialToken"].value("id", "") == t.token_bytes[*t.bos])
                t.add_bos = true;
    }
    (void)root;
}

// The bytes tokenizer's own serialisation reloads as the bytes tokenizer.
bool is_plain_bytes(const TokenizerImpl& t) {
    if (t.token_bytes.size() != 256 || !t.merge_pairs.empty() || !t.added_tokens.empty() || t.nfc ||
        t.bpe.ignore_merges || t.bos || t.eos || !t.pre_tokenizer.empty())
        return false;
    for (int b = 0; b < 256; ++b)
        if (t.token_bytes[b].size() != 1 || static_cast<unsigned char>(t.token_bytes[b][0]) != b)
            return false;
    const auto& p = t.pre_tokenizer_json;
    return p.is_object() && p.value("type", "") == "ByteLevel";
}

}  // namespace

Tokenizer Tokenizer::from_hf_json(const std::string& tokenizer_json,
                                  const std::string& tokenizer_config_json,
                                  const std::string& source) {
    TokenizerJson doc;
    try {
        doc = read_tokenizer_json(tokenizer_json);
    } catch (const json::exception& e) {
        throw Error(source + ": not valid JSON: " + e.what());
    }
    return tokenizer_from_json(doc, tokenizer_config_json, source);
}

Tokenizer tokenizer_from_json(const TokenizerJson& doc, const std::string& tokenizer_config_json,
                              const std::string& source) {
    Loader loader(source);
    const json& root = doc.root;
    if (!root.is_object())
        throw Error(source + ": expected a JSON object (tokenizer.json), got " +
                    std::string(root.type_name()));
    auto impl = std::make_shared<TokenizerImpl>();
    TokenizerImpl& t = *impl;
    try {
        if (!root.contains("model")) loader.fail("model", "missing (not a tokenizer.json?)");
        const auto added = root.find("added_tokens");
        loader.load_model(root["model"], doc,
                          added != root.end() && added->is_array() ? added->size() : 0, t);
        loader.load_added_tokens(root, t);
        const json none;
        const json& normalizer = root.contains("normalizer") ? root["normalizer"] : none;
        const json& pre = root.contains("pre_tokenizer") ? root["pre_tokenizer"] : none;
        const json& post = root.contains("post_processor") ? root["post_processor"] : none;
        const json& decoder = root.contains("decoder") ? root["decoder"] : none;
        loader.load_normalizer(normalizer, t, "normalizer");
        bool saw_byte_level = false;
        if (!pre.is_null()) loader.load_pre_tokenizer(pre, t, "pre_tokenizer", saw_byte_level);
        if (!saw_byte_level)
            loader.fail("pre_tokenizer",
                        "has no ByteLevel step (only byte-level BPE is supported)");
        loader.check_decoder(decoder, "decoder");
        loader.check_post_processor(post, "post_processor");
        t.normalizer_json = normalizer;
        t.pre_tokenizer_json = pre;
        t.post_processor_json = post;
        t.decoder_json = decoder;
        for (const AddedToken& a : t.added_tokens) {
            if (!a.normalized || (!t.nfc))
                t.raw_matcher.add(a.content, a.id, a.lstrip, a.rstrip);
            else
                t.normalized_matcher.add(utf8::nfc(a.content), a.id, a.lstrip, a.rstrip);
        }
        loader.load_config(tokenizer_config_json, root, t);
    } catch (const json::exception& e) {
        throw Error(source + ": malformed tokenizer.json: " + e.what());
    }
    if (is_plain_bytes(t)) return Tokenizer::bytes();
    return make_tokenizer(std::move(impl));
}

}  // namespace tinygpt
