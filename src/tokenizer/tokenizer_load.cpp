// Tokenizer::load: a tokenizer.json, an HF directory, or GPT-2's encoder.json + vocab.bpe pair
// (read as the tokenizer.json that HF's GPT2TokenizerFast builds from it).
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string_view>

#include "io/read_file.h"
#include "tokenizer/hf_json_reader.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace tinygpt {

namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& path) {
    return read_file_bytes(path.string());
}

// GPT-2's tokenizer as HF's tokenizer.json spells it: no normalizer, ByteLevel pre-tokenizer with
// GPT-2's regex and no prefix space, <|endoftext|> as the special added token (bos = eos). The
// pair goes straight into the reader's arrays (encoder.json read as a vocabulary, vocab.bpe's
// lines as merges), without a tokenizer.json text to write and parse again.
Tokenizer load_gpt2_pair(const fs::path& encoder_path, const fs::path& merges_path) {
    TokenizerJson doc;
    try {
        doc = read_vocab_json(read_text(encoder_path));
    } catch (const nlohmann::json::exception& e) {
        throw Error(encoder_path.string() + ": not valid JSON: " + e.what());
    }
    if (!doc.root.is_object())
        throw Error(encoder_path.string() + ": expected an object of token: id");
    const std::string merges_text = read_text(merges_path);
    size_t line_no = 0;
    for (size_t at = 0; at < merges_text.size();) {
        size_t end = merges_text.find('\n', at);
        if (end == std::string::npos) end = merges_text.size();
        std::string_view line(merges_text.data() + at, end - at);
        at = end + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
        auto merge = TokenizerJson::Merge::from_text(line);
        if (!merge)
            throw Error(merges_path.string() + ": line " + std::to_string(line_no) +
                        ": expected two tokens separated by one space");
        doc.merges.push_back(std::move(*merge));
    }
    const nlohmann::json byte_level = {{"type", "ByteLevel"},
                                       {"add_prefix_space", false},
                                       {"trim_offsets", true},
                                       {"use_regex", true}};
    // model.vocab and model.merges are there, empty: the reader's arrays hold them.
    doc.root = {{"version", "1.0"},
                {"added_tokens", nlohmann::json::array()},
                {"normalizer", nullptr},
                {"pre_tokenizer", byte_level},
                {"post_processor", byte_level},
                {"decoder", byte_level},
                {"model",
                 {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"vocab", nlohmann::json::object()},
                  {"merges", nlohmann::json::array()}}}};
    std::string config;
    for (const TokenizerJson::VocabEntry& entry : doc.vocab) {
        if (entry.spelling != "<|endoftext|>") continue;
        doc.root["added_tokens"].push_back({{"id", entry.id},
                                            {"content", "<|endoftext|>"},
                                            {"single_word", false},
                                            {"lstrip", false},
                                            {"rstrip", false},
                                            {"normalized", true},
                                            {"special", true}});
        config =
            R"({"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "add_bos_token": false})";
        break;
    }
    return tokenizer_from_json(
        doc, config, encoder_path.parent_path().string() + " (GPT-2 encoder.json + vocab.bpe)");
}

}  // namespace

Tokenizer Tokenizer::load(const std::string& path_text) {
    const fs::path path(path_text);
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
        if (fs::exists(path / "tokenizer.json")) {
            const fs::path config = path / "tokenizer_config.json";
            return from_hf_json(read_text(path / "tokenizer.json"),
                                fs::exists(config) ? read_text(config) : std::string(),
                                (path / "tokenizer.json").string());
        }
        if (fs::exists(path / "encoder.json") && fs::exists(path / "vocab.bpe"))
            return load_gpt2_pair(path / "encoder.json", path / "vocab.bpe");
        throw Error(path_text +
                    ": no tokenizer.json, nor encoder.json + vocab.bpe, in this directory");
    }
    if (!fs::exists(path, ec)) throw Error(path_text + ": no such file or directory");
    const std::string name = path.filename().string();
    if (name == "encoder.json" || name == "vocab.bpe") {
        const fs::path dir = path.parent_path();
        if (!fs::exists(dir / "encoder.json") || !fs::exists(dir / "vocab.bpe"))
            throw Error(path_text +
                        ": GPT-2's tokenizer needs both encoder.json and vocab.bpe in " +
                        (dir.empty() ? std::string(".") : dir.string()));
        return load_gpt2_pair(dir / "encoder.json", dir / "vocab.bpe");
    }
    // A tokenizer.json; its tokenizer_config.json is picked up from the same directory.
    const fs::path config = path.parent_path() / "tokenizer_config.json";
    const bool has_config = name == "tokenizer.json" && fs::exists(config, ec);
    return from_hf_json(read_text(path), has_config ? read_text(config) : std::string(), path_text);
}

}  // namespace tinygpt
