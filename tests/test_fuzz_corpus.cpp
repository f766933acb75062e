// The fuzz seed corpora (fuzz/corpus/, docs/FUZZING.md) must stay real, loadable files: a seed
// that a format change has made invalid starts the fuzzer at an error instead of deep in the
// reader, and nothing else would notice. Regenerate them with fuzz/make_corpus.sh.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "load/model_source.h"
#include "tokenizer/tokenizer.h"

namespace tinygpt {
namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = fs::path(TINYGPT_SOURCE_DIR) / "fuzz" / "corpus";
// fuzz/fuzz_support.h: what separates the files inside one input of the multi-file targets.
constexpr std::string_view kPartSeparator = "\n#--tinygpt-fuzz-part--#\n";

std::vector<fs::path> seeds(const std::string& target) {
    std::vector<fs::path> files;
    for (const fs::directory_entry& e : fs::directory_iterator(kCorpus / target))
        files.push_back(e.path());
    EXPECT_FALSE(files.empty()) << "no seeds in " << (kCorpus / target);
    return files;
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::vector<std::string> split_parts(const std::string& input) {
    std::vector<std::string> parts;
    size_t begin = 0;
    for (size_t at; (at = input.find(kPartSeparator, begin)) != std::string::npos;
         begin = at + kPartSeparator.size())
        parts.push_back(input.substr(begin, at - begin));
    parts.push_back(input.substr(begin));
    return parts;
}

void write_file(const fs::path& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
}

TEST(FuzzCorpus, ModelFileAndGgufSeedsLoadAsModels) {
    for (const char* target : {"model_file", "model_file_v3", "gguf"})
        for (const fs::path& seed : seeds(target))
            EXPECT_NO_THROW(open_model(seed.string())) << seed;
}

TEST(FuzzCorpus, TokenizerSeedsLoad) {
    for (const fs::path& seed : seeds("tokenizer")) {
        const std::vector<std::string> parts = split_parts(read_file(seed));
        EXPECT_NO_THROW(
            Tokenizer::from_hf_json(parts[0], parts.size() > 1 ? parts[1] : "", seed.string()))
            << seed;
    }
}

// As fuzz_hf_model lays them out: config.json, model.safetensors, then optionally the index and
// the second shard, beside a byte-level tokenizer.json.
TEST(FuzzCorpus, HfSeedsLoadAsModels) {
    const fs::path dir =
        fs::temp_directory_path() / ("tinygpt-fuzz-corpus-" + std::to_string(getpid()));
    for (const fs::path& seed : seeds("hf_model")) {
        fs::remove_all(dir);
        fs::create_directories(dir);
        const std::vector<std::string> parts = split_parts(read_file(seed));
        ASSERT_GE(parts.size(), 2u) << seed;
        write_file(dir / "config.json", parts[0]);
        write_file(dir / "tokenizer.json", Tokenizer::bytes().to_hf_json());
        if (parts.size() == 2) {
            write_file(dir / "model.safetensors", parts[1]);
        } else {
            ASSERT_EQ(parts.size(), 4u) << seed;
            write_file(dir / "model-00001-of-00002.safetensors", parts[1]);
            write_file(dir / "model.safetensors.index.json", parts[2]);
            write_file(dir / "model-00002-of-00002.safetensors", parts[3]);
        }
        EXPECT_NO_THROW(open_model(dir.string())) << seed;
    }
    fs::remove_all(dir);
}

}  // namespace
}  // namespace tinygpt
