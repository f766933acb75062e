// A tokenizer -> tokenizer.ggml.* metadata (src/gguf/gguf_vocab.h). What llama.cpp does with these
// keys is in its src/llama-vocab.cpp (llama_vocab::impl::load, llm_tokenizer_bpe, token_to_piece,
// detokenize) and src/unicode.cpp (the regexes it implements by hand); the mapping below follows
// it, and docs/GGUF.md ("The tokenizer") explains every refusal.
#include <algorithm>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "gguf/gguf_pre_families.h"
#include "gguf/gguf_vocab.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer_impl.h"
#include "util/error.h"

namespace tinygpt::gguf {

namespace {

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
        if (flag("use_regex", true)) out.push_back(byte_level_regex());
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
        out.push_back(digits_regex(flag("individual_digits", false)));
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
    if (family->cleans_spaces(plan.pre))
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
        const int id = t.id_of_spelling.find(text);
        if (id < 0 || t.added[id]) continue;
        if (text == "</s>" && tool_response) continue;  // llama.cpp makes it normal again
        forced.push_back("\"" + text + "\" (id " + std::to_string(id) + ")");
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

}  // namespace tinygpt::gguf
