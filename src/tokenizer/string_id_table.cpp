#include "tokenizer/string_id_table.h"

#include <functional>

#include "util/error.h"

namespace tinygpt {

uint64_t StringIdTable::hash(std::string_view key) {
    return std::hash<std::string_view>{}(key);
}

void StringIdTable::reserve(size_t keys) {
    size_t capacity = 16;
    while (capacity < keys * 2) capacity *= 2;  // at most half full: short probe runs
    if (capacity > slots_.size()) rehash(capacity);
    ids_.reserve(keys);
    offsets_.reserve(keys + 1);
}

void StringIdTable::rehash(size_t capacity) {
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    for (int32_t entry = 0; entry < static_cast<int32_t>(ids_.size()); ++entry) {
        const uint64_t h = hash(key_of(entry));
        size_t i = h & mask_;
        while (slots_[i].entry >= 0) i = (i + 1) & mask_;
        slots_[i] = {static_cast<uint32_t>(h >> 32), entry};
    }
}

bool StringIdTable::insert(std::string_view key, int id) {
    if ((ids_.size() + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 16 : slots_.size() * 2);
    if (bytes_.size() + key.size() > UINT32_MAX)
        throw Error("a vocabulary's tokens add up to more than 4 GB");
    const uint64_t h = hash(key);
    const uint32_t tag = static_cast<uint32_t>(h >> 32);
    size_t i = h & mask_;
    for (; slots_[i].entry >= 0; i = (i + 1) & mask_)
        if (slots_[i].tag == tag && key_of(slots_[i].entry) == key) return false;
    const int32_t entry = static_cast<int32_t>(ids_.size());
    bytes_.append(key);
    offsets_.push_back(static_cast<uint32_t>(bytes_.size()));
    ids_.push_back(id);
    slots_[i] = {tag, entry};
    return true;
}

}  // namespace tinygpt
