// A corpus encoded with a BPE tokenizer, cached beside it (`.NAME.<tokenizer>.tokens`) so that
// training again on the same text costs no second encode. The cache is keyed by the corpus's
// contents (size and xxh3) and the tokenizer's fingerprint, and checksummed: a stale, corrupt or
// foreign cache is rebuilt, never trusted. An unwritable directory only costs the cache.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tinygpt {

class Tokenizer;

std::vector<int32_t> cached_corpus_tokens(const std::string& corpus_path, const std::string& text,
                                          const Tokenizer& tokenizer, bool progress);

// Where the cache of `corpus_path` for this tokenizer lives.
std::string token_cache_path(const std::string& corpus_path, const Tokenizer& tokenizer);

}  // namespace tinygpt
