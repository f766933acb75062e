// A vocabulary's string -> id lookup: the keys' bytes in one buffer and an open-addressing array
// of (hash tag, entry) slots. A std::unordered_map<std::string, int> spent a node allocation per
// token and two or three cache misses per lookup; loading a 150k-token tokenizer makes ~750k
// such lookups and insertions (the vocabulary, then three lookups per merge), a quarter of its
// load time.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tinygpt {

class StringIdTable {
  public:
    // Room for `keys` keys without rehashing.
    void reserve(size_t keys);
    // Adds key -> id. False, and nothing changed, when the key is already present.
    bool insert(std::string_view key, int id);
    // The key's id, or -1.
    int find(std::string_view key) const {
        if (slots_.empty()) return -1;
        const uint64_t h = hash(key);
        const uint32_t tag = static_cast<uint32_t>(h >> 32);
        for (size_t i = h & mask_;; i = (i + 1) & mask_) {
            const Slot& s = slots_[i];
            if (s.entry < 0) return -1;
            if (s.tag == tag && key_of(s.entry) == key) return ids_[s.entry];
        }
    }
    bool contains(std::string_view key) const { return find(key) >= 0; }
    size_t size() const { return ids_.size(); }

  private:
    struct Slot {
        uint32_t tag = 0;    // the hash's high half: most mismatches end here
        int32_t entry = -1;  // index into ids_ / offsets_; -1: empty
    };
    static uint64_t hash(std::string_view key);
    std::string_view key_of(int32_t entry) const {
        return std::string_view(bytes_).substr(offsets_[entry],
                                               offsets_[entry + 1] - offsets_[entry]);
    }
    void rehash(size_t capacity);

    std::string bytes_;                 // every key, back to back
    std::vector<uint32_t> offsets_{0};  // entry i's key: [offsets_[i], offsets_[i + 1])
    std::vector<int32_t> ids_;
    std::vector<Slot> slots_;
    size_t mask_ = 0;
};

}  // namespace tinygpt
