#include "tokenizer/bpe_model.h"

#include <queue>

namespace tinygpt {

void PairRankMap::reserve(size_t n) {
    size_t capacity = 16;
    while (capacity < n * 2) capacity *= 2;
    if (capacity <= slots_.size()) return;
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    size_ = 0;
    for (const Slot& s : old)
        if (s.key != kEmpty)
            insert(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key & 0xffffffffu),
                   s.merge);
}

void PairRankMap::grow() {
    reserve(slots_.empty() ? 8 : slots_.size());
}

void PairRankMap::insert(int32_t left, int32_t right, Merge merge) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    const uint64_t key = pack(left, right);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
        Slot& s = slots_[i];
        if (s.key == key) {
            s.merge = merge;
            return;
        }
        if (s.key == kEmpty) {
            s.key = key;
            s.merge = merge;
            ++size_;
            return;
        }
    }
}

// Words this short are merged by rescanning the symbols after each merge: cheaper than a heap
// for the typical 2-10 byte word.
constexpr size_t kShortWord = 24;

void BpeModel::encode_word(std::string_view word, std::vector<int>& out) const {
    if (word.size() == 1) {
        out.push_back(byte_id[static_cast<unsigned char>(word[0])]);
        return;
    }
    if (ignore_merges) {
        // Llama 3: a pre-token that is itself in the vocabulary is emitted whole.
        if (const int id = id_of_bytes.find(word); id >= 0) {
            out.push_back(id);
            return;
        }
    }
    if (word.size() <= kShortWord)
        merge_short(word, out);
    else
        merge_long(word, out);
}

void BpeModel::merge_short(std::string_view word, std::vector<int>& out) const {
    int symbols[kShortWord];
    size_t n = word.size();
    for (size_t i = 0; i < n; ++i) symbols[i] = byte_id[static_cast<unsigned char>(word[i])];
    while (n > 1) {
        int32_t best_rank = INT32_MAX, best_result = -1;
        size_t best_at = 0;
        for (size_t i = 0; i + 1 < n; ++i) {
            const PairRankMap::Merge* m = merges.find(symbols[i], symbols[i + 1]);
            if (m && m->rank < best_rank) {
                best_rank = m->rank;
                best_result = m->result;
                best_at = i;
            }
        }
        if (best_result < 0) break;
        symbols[best_at] = best_result;
        for (size_t i = best_at + 1; i + 1 < n; ++i) symbols[i] = symbols[i + 1];
        --n;
    }
    out.insert(out.end(), symbols, symbols + n);
}

// O(n log n): symbols in a doubly linked list, candidate merges in a min-heap of (rank, position)
// invalidated lazily (a popped candidate is skipped if either symbol changed since it was pushed).
void BpeModel::merge_long(std::string_view word, std::vector<int>& out) const {
    const int n = static_cast<int>(word.size());
    std::vector<int> id(n), prev(n), next(n), version(n, 0);
    for (int i = 0; i < n; ++i) {
        id[i] = byte_id[static_cast<unsigned char>(word[i])];
        prev[i] = i - 1;
        next[i] = i + 1 < n ? i + 1 : -1;
    }
    struct Candidate {
        int32_t rank;
        int at;  // left symbol
        int left_version, right_version;
        bool operator>(const Candidate& o) const {
            return rank != o.rank ? rank > o.rank : at > o.at;
        }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
    auto push = [&](int left) {
        if (left < 0 || next[left] < 0) return;
        const int right = next[left];
        if (const PairRankMap::Merge* m = merges.find(id[left], id[right]))
            heap.push({m->rank, left, version[left], version[right]});
    };
    for (int i = 0; i + 1 < n; ++i) push(i);
    while (!heap.empty()) {
        const Candidate c = heap.top();
        heap.pop();
        const int right = next[c.at];
        if (id[c.at] < 0 || right < 0 || version[c.at] != c.left_version ||
            version[right] != c.right_version)
            continue;
        const PairRankMap::Merge* m = merges.find(id[c.at], id[right]);
        id[c.at] = m->result;
        ++version[c.at];
        id[right] = -1;  // removed
        next[c.at] = next[right];
        if (next[right] >= 0) prev[next[right]] = c.at;
        push(prev[c.at]);
        push(c.at);
    }
    for (int i = 0; i >= 0; i = next[i]) out.push_back(id[i]);
}

}  // namespace tinygpt
