#include "train/data.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "train/token_cache.h"
#include "util/error.h"

namespace tinygpt {

std::string read_corpus_text(const std::string& path) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) throw Error("corpus '" + path + "': " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) throw Error("corpus '" + path + "' is not a regular file");
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw Error("corpus '" + path + "': " + std::strerror(errno));
    // Read to the end rather than st_size bytes: /proc files report 0, and a file may grow.
    std::string text;
    text.reserve(static_cast<size_t>(st.st_size));
    std::vector<char> chunk(size_t{1} << 20);
    size_t got;
    while ((got = std::fread(chunk.data(), 1, chunk.size(), f)) > 0) text.append(chunk.data(), got);
    const bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed)
        throw Error("corpus '" + path + "': read error after " + std::to_string(text.size()) +
                    " bytes");
    if (text.empty()) throw Error("corpus '" + path + "' is empty");
    return text;
}

Corpus Corpus::load(const std::string& path, const Tokenizer& tokenizer, bool progress) {
    Corpus corpus;
    corpus.path = path;
    const std::string text = read_corpus_text(path);
    corpus.text_bytes = text.size();
    if (tokenizer.is_bytes()) {
        corpus.tokens.assign(text.size(), 0);
        for (size_t i = 0; i < text.size(); ++i)
            corpus.tokens[i] = static_cast<unsigned char>(text[i]);
    } else {
        corpus.tokens = cached_corpus_tokens(path, text, tokenizer, progress);
    }
    if (corpus.tokens.empty()) throw Error("corpus '" + path + "' encodes to no tokens");
    return corpus;
}

CorpusSplit split_corpus(const Corpus& corpus, double val_fraction, int ctx) {
    const size_t n = corpus.tokens.size();
    const size_t val = static_cast<size_t>(static_cast<double>(n) * val_fraction);
    CorpusSplit split;
    split.train = {corpus.tokens.data(), n - val};
    split.val = {corpus.tokens.data() + (n - val), val};
    const size_t need = static_cast<size_t>(ctx) + 1;
    if (split.train.size < need)
        throw Error("corpus '" + corpus.path + "' has " + std::to_string(split.train.size) +
                    " training tokens, fewer than ctx + 1 = " + std::to_string(need));
    if (val > 0 && split.val.size < need)
        throw Error("validation split of '" + corpus.path + "' has " + std::to_string(val) +
                    " tokens, fewer than ctx + 1 = " + std::to_string(need) +
                    " (raise --val-split or use a longer corpus)");
    return split;
}

void sample_batch(const TokenSpan& span, Rng& rng, int B, int T, int* inputs, int* targets) {
    const uint64_t starts = span.size - static_cast<size_t>(T);  // windows of T + 1 tokens
    for (int b = 0; b < B; ++b) {
        const size_t start = static_cast<size_t>(rng.uniform_index(starts));
        for (int t = 0; t < T; ++t) {
            inputs[b * T + t] = span.data[start + t];
            targets[b * T + t] = span.data[start + t + 1];
        }
    }
}

void skip_batch(const TokenSpan& span, Rng& rng, int B, int T) {
    const uint64_t starts = span.size - static_cast<size_t>(T);
    for (int b = 0; b < B; ++b) rng.uniform_index(starts);
}

}  // namespace tinygpt
