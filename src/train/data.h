// The training corpus (raw bytes = byte-level tokens), its train/validation split, and batches
// of random contiguous windows drawn from a seeded generator.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "util/rng.h"

namespace tinygpt {

struct Corpus {
    std::string path;
    std::vector<uint8_t> bytes;

    // Throws tinygpt::Error for a missing, unreadable, non-regular or empty file.
    static Corpus load(const std::string& path);
};

struct TokenSpan {
    const uint8_t* data = nullptr;
    size_t size = 0;
};

struct CorpusSplit {
    TokenSpan train, val;
};

// The last `val_fraction` of the bytes is held out. Throws if either part is shorter than
// ctx + 1 bytes (one window plus its next-byte target).
CorpusSplit split_corpus(const Corpus& corpus, double val_fraction, int ctx);

// inputs/targets [B, T]: B windows with uniformly random starts; targets are shifted by one.
void sample_batch(const TokenSpan& span, Rng& rng, int B, int T, int* inputs, int* targets);

}  // namespace tinygpt
