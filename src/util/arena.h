// One allocation per buffer kind (llm.c style): a layout function takes typed slices from an
// Arena twice, first to measure (no memory), then to hand out pointers into one aligned block.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

namespace tinygpt {

class Arena {
  public:
    static constexpr size_t kAlign = 64;

    Arena() = default;  // measuring arena: take() returns nullptr and only counts bytes
    explicit Arena(std::byte* base) : base_(base) {}

    template <typename T>
    T* take(size_t count) {
        offset_ = (offset_ + kAlign - 1) / kAlign * kAlign;
        T* p = base_ ? reinterpret_cast<T*>(base_ + offset_) : nullptr;
        offset_ += count * sizeof(T);
        return p;
    }
    size_t bytes() const { return (offset_ + kAlign - 1) / kAlign * kAlign; }

  private:
    std::byte* base_ = nullptr;
    size_t offset_ = 0;
};

struct AlignedFree {
    void operator()(std::byte* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<std::byte[], AlignedFree>;

inline AlignedBuffer aligned_alloc_bytes(size_t bytes) {
    const size_t rounded = (bytes + Arena::kAlign - 1) / Arena::kAlign * Arena::kAlign;
    void* p = std::aligned_alloc(Arena::kAlign, rounded ? rounded : Arena::kAlign);
    if (!p) throw std::bad_alloc();
    return AlignedBuffer(static_cast<std::byte*>(p));
}

}  // namespace tinygpt
