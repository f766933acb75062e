// The training corpus as token ids (bytes for byte-level models, BPE ids otherwise), its
// train/validation split, and batches of random contiguous windows drawn from a seeded
// generator. Encoding a corpus with a BPE tokenizer is done once and cached (train/token_cache.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "util/rng.h"

namespace tinygpt {

class Tokenizer;

// A file's raw bytes. Throws tinygpt::Error for a missing, unreadable, non-regular or empty file.
std::string read_corpus_text(const std::string& path);

struct Corpus {
    std::string path;
    std::vector<int32_t> tokens;
    uint64_t text_bytes = 0;  // the size of the text the tokens encode

    // Reads and tokenizes `path`: bytes directly; BPE through the token cache beside the corpus
    // (encoded in parallel with a progress line on stderr when `progress` is set).
    static Corpus load(const std::string& path, const Tokenizer& tokenizer, bool progress = false);
};

struct TokenSpan {
    const int32_t* data = nullptr;
    size_t size = 0;
};

struct CorpusSplit {
    TokenSpan train, val;
};

// The last `val_fraction` of the tokens is held out. Throws if either part is shorter than
// ctx + 1 tokens (one window plus its next-token target).
CorpusSplit split_corpus(const Corpus& corpus, double val_fraction, int ctx);

// inputs/targets [B, T]: B windows with uniformly random starts; targets are shifted by one.
void sample_batch(const TokenSpan& span, Rng& rng, int B, int T, int* inputs, int* targets);
// Advances `rng` exactly as sample_batch would, without copying (another rank's batch).
void skip_batch(const TokenSpan& span, Rng& rng, int B, int T);

}  // namespace tinygpt
