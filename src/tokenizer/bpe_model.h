// The BPE merge loop over raw bytes: a word starts as one token per byte and the adjacent pair
// of lowest merge rank is merged (leftmost first among equal ranks) until no pair has a rank,
// exactly as HF tokenizers' BPE (without dropout) does.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/string_id_table.h"

namespace tinygpt {

// Open-addressing hash map from a pair of token ids to (rank, merged id): the hot lookup of the
// merge loop, so no node allocations and one probe in the common case.
class PairRankMap {
  public:
    struct Merge {
        int32_t rank;
        int32_t result;
    };
    void reserve(size_t n);
    // A pair already present gets the new value (HF: a repeated merge takes its later rank).
    void insert(int32_t left, int32_t right, Merge merge);
    const Merge* find(int32_t left, int32_t right) const {
        if (slots_.empty()) return nullptr;
        const uint64_t key = pack(left, right);
        for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
            const Slot& s = slots_[i];
            if (s.key == key) return &s.merge;
            if (s.key == kEmpty) return nullptr;
        }
    }
    size_t size() const { return size_; }

  private:
    static constexpr uint64_t kEmpty = ~0ull;
    struct Slot {
        uint64_t key = kEmpty;
        Merge merge{};
    };
    static uint64_t pack(int32_t a, int32_t b) {
        return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
    }
    static uint64_t hash(uint64_t k) {
        k ^= k >> 33;
        k *= 0xff51afd7ed558ccdull;
        k ^= k >> 33;
        return k;
    }
    void grow();
    std::vector<Slot> slots_;
    size_t mask_ = 0, size_ = 0;
};

struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct BpeModel {
    // Raw bytes of a vocab token -> id (model vocab only, not added tokens).
    StringIdTable id_of_bytes;
    int byte_id[256] = {};  // the token of each single byte
    PairRankMap merges;
    bool ignore_merges = false;

    // Appends the ids of `word` (non-empty raw bytes) to `out`.
    void encode_word(std::string_view word, std::vector<int>& out) const;

  private:
    void merge_short(std::string_view word, std::vector<int>& out) const;
    void merge_long(std::string_view word, std::vector<int>& out) const;
};

}  // namespace tinygpt
