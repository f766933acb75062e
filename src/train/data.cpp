#include "train/data.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "util/error.h"

namespace tinygpt {

Corpus Corpus::load(const std::string& path) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) throw Error("corpus '" + path + "': " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) throw Error("corpus '" + path + "' is not a regular file");
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw Error("corpus '" + path + "': " + std::strerror(errno));
    Corpus corpus;
    corpus.path = path;
    corpus.bytes.resize(static_cast<size_t>(st.st_size));
    const size_t got =
        corpus.bytes.empty() ? 0 : std::fread(corpus.bytes.data(), 1, corpus.bytes.size(), f);
    const bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed || got != corpus.bytes.size())
        throw Error("corpus '" + path + "': read " + std::to_string(got) + " of " +
                    std::to_string(corpus.bytes.size()) + " bytes");
    if (corpus.bytes.empty()) throw Error("corpus '" + path + "' is empty");
    return corpus;
}

CorpusSplit split_corpus(const Corpus& corpus, double val_fraction, int ctx) {
    const size_t n = corpus.bytes.size();
    const size_t val = static_cast<size_t>(static_cast<double>(n) * val_fraction);
    CorpusSplit split;
    split.train = {corpus.bytes.data(), n - val};
    split.val = {corpus.bytes.data() + (n - val), val};
    const size_t need = static_cast<size_t>(ctx) + 1;
    if (split.train.size < need)
        throw Error("corpus '" + corpus.path + "' has " + std::to_string(split.train.size) +
                    " training bytes, fewer than ctx + 1 = " + std::to_string(need));
    if (val > 0 && split.val.size < need)
        throw Error("validation split of '" + corpus.path + "' has " + std::to_string(val) +
                    " bytes, fewer than ctx + 1 = " + std::to_string(need) +
                    " (raise --val-split or use a longer corpus)");
    return split;
}

void sample_batch(const TokenSpan& span, Rng& rng, int B, int T, int* inputs, int* targets) {
    const uint64_t starts = span.size - static_cast<size_t>(T);  // windows of T + 1 bytes
    for (int b = 0; b < B; ++b) {
        const size_t start = static_cast<size_t>(rng.uniform_index(starts));
        for (int t = 0; t < T; ++t) {
            inputs[b * T + t] = span.data[start + t];
            targets[b * T + t] = span.data[start + t + 1];
        }
    }
}

}  // namespace tinygpt
