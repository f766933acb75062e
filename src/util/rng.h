// Portable seeded random numbers: xoshiro256** seeded by splitmix64. The standard library's
// distributions differ between libstdc++ and libc++, so everything here is hand-written to give
// the same numbers on Linux and macOS. The whole state is four words, so it can be saved.
#pragma once
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace tinygpt {

class Rng {
  public:
    explicit Rng(uint64_t seed = 0) { reseed(seed); }

    void reseed(uint64_t seed) {
        for (auto& word : state_) {
            seed += 0x9E3779B97F4A7C15ull;
            uint64_t z = seed;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            word = z ^ (z >> 31);
        }
    }

    uint64_t next_u64() {
        const uint64_t result = rotl(state_[1] * 5, 7) * 9;
        const uint64_t t = state_[1] << 17;
        state_[2] ^= state_[0];
        state_[3] ^= state_[1];
        state_[1] ^= state_[2];
        state_[0] ^= state_[3];
        state_[2] ^= t;
        state_[3] = rotl(state_[3], 45);
        return result;
    }

    // Uniform in [0, bound) without modulo bias (rejects the few values below 2^64 mod bound).
    uint64_t uniform_index(uint64_t bound) {
        if (bound <= 1) return 0;
        const uint64_t threshold = (0 - bound) % bound;
        for (;;) {
            const uint64_t r = next_u64();
            if (r >= threshold) return r % bound;
        }
    }

    // Uniform in [0, 1) with 53 random bits.
    double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

    // Standard normal (Box-Muller; one value per call keeps the state simple to save).
    double normal() {
        double u1 = uniform();
        while (u1 <= 0.0) u1 = uniform();
        const double u2 = uniform();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }

    // Advances the state as n calls of normal() would, without computing them.
    void discard_normals(size_t n) {
        for (size_t i = 0; i < n; ++i) {
            while (uniform() <= 0.0) {  // u1, drawn again as normal() does
            }
            next_u64();  // u2
        }
    }

    const std::array<uint64_t, 4>& state() const { return state_; }
    void set_state(const std::array<uint64_t, 4>& s) { state_ = s; }

  private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    std::array<uint64_t, 4> state_{};
};

}  // namespace tinygpt
